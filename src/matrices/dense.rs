//! The dense reference format: `W` stored as is, applied by one GEMM.

use ndarray::{Array2, ArrayD, ArrayView2};

use super::engine::{Engine, NetSpec, delegate_to_engine};
use super::{
    FormatDescription, Init, MatrixFormat, MatrixShape, check_core, check_dense, core_sigma,
    normal_cores, normalize_variance,
};
use crate::{AsRule, Result, Scalar, TruncationInfo};

/// A dense weight matrix `W` (`M x N`): the baseline every tensorized format is measured
/// against. `apply` is the single GEMM `X W^T`, split over the rayon threads when large;
/// the backward pass is `dX = dY W`, `dW = dY^T X`.
///
/// Parameters: `[W]` (shape `(M, N)`).
///
/// # Example
/// ```
/// use ndarray::array;
/// use tnet::matrices::{DenseMatrix, TensorizedMatrix};
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

    /// The matrix.
    pub fn matrix(&self) -> ArrayView2<'_, T> {
        self.w[0]
            .view()
            .into_dimensionality()
            .expect("internal invariant: 2-D")
    }
}

delegate_to_engine!(
    DenseMatrix,
    w,
    flops = "`2 B M N`.",
    to_dense = |m| m.matrix().to_owned()
);

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

impl<T: Scalar> FormatDescription for DenseMatrix<T> {
    fn format_description(&self) -> String {
        "dense-matrix".into()
    }
}
