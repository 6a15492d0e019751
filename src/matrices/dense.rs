//! The dense reference format: `W` stored as is, applied by one GEMM.

use ndarray::{Array2, ArrayD, ArrayView2};

use ndarray::{ArrayViewD, ArrayViewMutD};

use super::engine::{Engine, NetSpec};
use super::{ContractionPlan, LinearMap, TensorizedMatrix, gemm_par};
use super::{
    Init, MatrixFormat, MatrixShape, check_core, check_dense, core_sigma, normal_cores,
    normalize_variance,
};
use crate::dense::{check_backward, check_cols};
use crate::linalg::matmul_into;
use crate::{AsRule, Result, Scalar, TruncationInfo};

/// A dense weight matrix `W` (`M x N`): the map of the uncompressed LSTM and of the
/// classifier head, and the baseline every tensorized format is measured against.
/// `apply` is the single GEMM `X W^T`, split over the rayon threads when large; the
/// backward pass is `dX = dY W`, `dW = dY^T X`.
///
/// Parameters: `[W]` (shape `(M, N)`).
///
/// # Example
/// ```
/// use ndarray::array;
/// use tnet::matrices::{DenseMatrix, LinearMap};
/// let w = DenseMatrix::try_new(array![[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]]).unwrap();
/// let y = w.apply(array![[1.0, 1.0]].view()).unwrap();
/// assert_eq!(y, array![[3.0, 7.0, 11.0]]);
/// assert_eq!(w.n_params(), 6);
/// ```
#[derive(Clone, Debug)]
pub struct DenseMatrix<T: Scalar> {
    shape: MatrixShape,
    w: Vec<ArrayD<T>>,
    engine: Engine<T>,
}

impl<T: Scalar> DenseMatrix<T> {
    /// Wraps a dense matrix (shape `[M] <- [N]`).
    ///
    /// # Errors
    /// [`Error::Empty`](crate::Error::Empty) for an empty matrix,
    /// [`Error::NonFinite`](crate::Error::NonFinite) for NaN/Inf entries.
    pub fn try_new(w: Array2<T>) -> Result<Self> {
        let (m, n) = w.dim();
        let shape = MatrixShape::try_new(vec![m], vec![n])?;
        Self::with_shape(w, shape)
    }

    /// Wraps a dense matrix, recording a tensorized shape of the same lengths.
    ///
    /// # Errors
    /// As [`try_new`](Self::try_new); [`Error::ShapeMismatch`](crate::Error::ShapeMismatch)
    /// if the lengths differ from the shape's.
    pub fn with_shape(w: Array2<T>, shape: MatrixShape) -> Result<Self> {
        let (m, n) = (shape.n_out(), shape.n_in());
        let w = check_core("DenseMatrix (W must be M x N)", w.into_dyn(), &[m, n])?;
        let mut spec = NetSpec::default();
        let i = spec.label("i", m);
        let j = spec.label("j", n);
        spec.core("W", vec![i, j]);
        let engine = Engine::new(spec, &[j], &[i], 1)?;
        Ok(Self {
            shape,
            w: vec![w],
            engine,
        })
    }

    /// Glorot-uniform initialisation (variance preserving, Keras' default for LSTM
    /// kernels): entries i.i.d. uniform on `[-a, a]` with `a = sqrt(6 / (n_in + n_out))`,
    /// from a seed; shape `[n_out] <- [n_in]`.
    ///
    /// # Errors
    /// [`Error::Empty`](crate::Error::Empty) if `n_out` or `n_in` is zero;
    /// [`Error::TooLarge`](crate::Error::TooLarge) above the memory limit.
    pub fn glorot(n_out: usize, n_in: usize, seed: u64) -> Result<Self> {
        if n_out == 0 || n_in == 0 {
            return Err(crate::Error::Empty {
                context: "DenseMatrix::glorot",
                shape: vec![n_out, n_in],
            });
        }
        crate::limits::check_elements(
            "a dense weight matrix",
            &[n_out, n_in],
            std::mem::size_of::<T>(),
        )?;
        let a = (6.0 / (n_in + n_out) as f64).sqrt();
        let mut g = crate::dense::rng(seed);
        let w = Array2::from_shape_simple_fn((n_out, n_in), || {
            T::cast(a * (2.0 * rand::Rng::random::<f64>(&mut g) - 1.0))
        });
        Self::try_new(w)
    }

    /// Checks `X` (`B x N`) and `dY` (`B x M`) of a backward pass.
    fn check_backward(&self, x: &ArrayView2<'_, T>, dy: &ArrayView2<'_, T>) -> Result<()> {
        check_backward(
            [
                "DenseMatrix::backward input",
                "DenseMatrix::backward output gradient",
                "DenseMatrix::backward batch sizes",
            ],
            x,
            dy,
            self.n_in(),
            self.n_out(),
        )
    }

    /// `dW = dY^T X` (shapes checked by the caller).
    fn weight_gradient(&self, x: ArrayView2<'_, T>, dy: ArrayView2<'_, T>) -> ArrayD<T> {
        let (b, m, n) = (x.nrows(), self.n_out(), self.n_in());
        let mut dw = Array2::zeros((m, n));
        matmul_into(dw.view_mut(), dy.t(), x, T::one(), false, gemm_par(m, n, b));
        dw.into_dyn()
    }

    /// The matrix `W` (`M x N`).
    pub fn matrix(&self) -> ArrayView2<'_, T> {
        self.w[0]
            .view()
            .into_dimensionality()
            .expect("internal invariant: 2-D")
    }
}

impl<T: Scalar> TensorizedMatrix<T> for DenseMatrix<T> {
    fn shape(&self) -> &MatrixShape {
        &self.shape
    }

    /// `2 B M N`.
    fn flops(&self, batch: usize) -> u64 {
        self.engine.flops(batch)
    }

    /// One GEMM.
    fn plan(&self, batch: usize) -> std::sync::Arc<ContractionPlan> {
        self.engine.plan(super::engine::Kind::Forward, batch)
    }

    fn apply_transpose(&self, dy: ArrayView2<'_, T>) -> Result<Array2<T>> {
        check_cols(
            "DenseMatrix::apply_transpose output gradient",
            &dy,
            self.n_out(),
        )?;
        let (b, m, n) = (dy.nrows(), self.n_out(), self.n_in());
        let mut dx = Array2::zeros((b, n));
        matmul_into(
            dx.view_mut(),
            dy,
            self.matrix(),
            T::one(),
            false,
            gemm_par(b, n, m),
        );
        Ok(dx)
    }

    fn to_dense(&self) -> Array2<T> {
        self.matrix().to_owned()
    }
}

/// One GEMM per product, split over the rayon threads when large (`X W^T`, `dY W`,
/// `dY^T X`).
impl<T: Scalar> LinearMap<T> for DenseMatrix<T> {
    fn n_in(&self) -> usize {
        self.shape.n_in()
    }

    fn n_out(&self) -> usize {
        self.shape.n_out()
    }

    fn apply(&self, x: ArrayView2<'_, T>) -> Result<Array2<T>> {
        check_cols("DenseMatrix::apply input", &x, self.n_in())?;
        let (b, m, n) = (x.nrows(), self.n_out(), self.n_in());
        let mut y = Array2::zeros((b, m));
        matmul_into(
            y.view_mut(),
            x,
            self.matrix().t(),
            T::one(),
            false,
            gemm_par(b, m, n),
        );
        Ok(y)
    }

    fn backward(
        &self,
        x: ArrayView2<'_, T>,
        dy: ArrayView2<'_, T>,
    ) -> Result<(Array2<T>, Vec<ArrayD<T>>)> {
        self.check_backward(&x, &dy)?;
        let (b, m, n) = (x.nrows(), self.n_out(), self.n_in());
        let mut dx = Array2::zeros((b, n));
        matmul_into(
            dx.view_mut(),
            dy,
            self.matrix(),
            T::one(),
            false,
            gemm_par(b, n, m),
        );
        Ok((dx, vec![self.weight_gradient(x, dy)]))
    }

    fn backward_params(
        &self,
        x: ArrayView2<'_, T>,
        dy: ArrayView2<'_, T>,
    ) -> Result<Vec<ArrayD<T>>> {
        self.check_backward(&x, &dy)?;
        Ok(vec![self.weight_gradient(x, dy)])
    }

    fn column_block(&self, start: usize, len: usize) -> Result<Array2<T>> {
        crate::dense::check_col_range("DenseMatrix::column_block", start, len, self.n_in())?;
        Ok(self
            .matrix()
            .slice(ndarray::s![.., start..start + len])
            .to_owned())
    }

    fn params(&self) -> Vec<ArrayViewD<'_, T>> {
        vec![self.w[0].view()]
    }

    fn params_mut(&mut self) -> Vec<ArrayViewMutD<'_, T>> {
        vec![self.w[0].view_mut()]
    }

    /// `"dense MxN"`.
    fn describe(&self) -> String {
        format!("dense {}x{}", self.n_out(), self.n_in())
    }

    fn box_clone(&self) -> Box<dyn LinearMap<T>> {
        Box::new(self.clone())
    }
}

impl<T: Scalar> MatrixFormat<T> for DenseMatrix<T> {
    type Structure = ();

    /// A copy of `W` (the rule is not used: nothing is discarded).
    fn from_dense(
        w: ArrayView2<'_, T>,
        shape: &MatrixShape,
        _structure: &(),
        rule: &impl AsRule,
    ) -> Result<(Self, TruncationInfo<T>)> {
        rule.as_rule()?;
        check_dense("DenseMatrix::from_dense", &w, shape)?;
        let norm = crate::dense::norm(w.into_dyn());
        let m = Self::with_shape(w.to_owned(), shape.clone())?;
        Ok((
            m,
            TruncationInfo::new(vec![Vec::new()], vec![T::zero()], norm),
        ))
    }

    /// i.i.d. normal entries scaled so that their mean square is exactly
    /// `init.variance(N, M)`, as for the other formats (`rank` is not used).
    fn random(
        shape: &MatrixShape,
        _structure: &(),
        _rank: usize,
        init: Init,
        seed: u64,
    ) -> Result<Self> {
        let (m, n) = (shape.n_out(), shape.n_in());
        let variance = init.variance(n, m)?;
        let sigma = core_sigma(variance, 1.0, 1);
        let w = normal_cores::<T>(&[vec![m, n]], sigma, seed)?.remove(0);
        let w = w.into_dimensionality().expect("2-D");
        Ok(normalize_variance(
            Self::with_shape(w, shape.clone())?,
            variance,
            1,
        ))
    }
}
