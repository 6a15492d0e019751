//! The linear maps the recurrent models are built from.
//!
//! [`LinearMap`] is the small, object-safe interface an LSTM needs from a weight matrix
//! `W` of shape `n_out x n_in` (stored in any format): the row-batched product
//! `Y = X W^T` and its backward pass. Its method signatures are exactly those of the
//! tensorized-matrix trait of [`crate`]'s matrix formats, so every tensorized matrix
//! plugs in through one adapter ([`TensorizedLinear`](super::TensorizedLinear)), and the
//! models hold a `Box<dyn LinearMap<T>>` without knowing the format.
//!
//! [`DenseLinear`] is the plain dense matrix (the uncompressed LSTM and the classifier
//! head).
//!
//! Conventions: inputs are row batches, `X` of shape `(B, n_in)`; outputs `Y` of shape
//! `(B, n_out)`. The gradients returned by [`LinearMap::backward`] are those of a scalar
//! loss `L` given `dY = dL/dY`: `dX = dY W` and `dL/dθ` for every parameter tensor `θ`
//! in the order of [`LinearMap::params`].

use ndarray::{Array2, ArrayD, ArrayView2, ArrayViewD, ArrayViewMutD};
use rand::Rng;

use crate::dense::{check_backward, check_cols};
use crate::linalg::{Parallelism, matmul_into};
use crate::{Error, Result, Scalar};

/// A linear map `x -> W x` with `W` of shape `n_out x n_in`, applied to row batches.
///
/// Object safe: models hold `Box<dyn LinearMap<T>>`. Implementations must be
/// deterministic (the same inputs give bitwise the same outputs for a given rayon thread
/// count), since training runs are required to be reproducible.
pub trait LinearMap<T: Scalar>: Send + Sync {
    /// Number of input features `N` (columns of `W`).
    fn n_in(&self) -> usize;

    /// Number of outputs `M` (rows of `W`).
    fn n_out(&self) -> usize;

    /// Number of stored scalars (sum of the sizes of [`params`](Self::params)).
    fn n_params(&self) -> usize;

    /// `Y = X W^T` for a batch `X` of shape `(B, n_in)`; `Y` has shape `(B, n_out)`.
    ///
    /// # Errors
    /// [`Error::ShapeMismatch`] if `X` does not have `n_in` columns.
    fn apply(&self, x: ArrayView2<'_, T>) -> Result<Array2<T>>;

    /// Backward pass of [`apply`](Self::apply): given the batch `X` and `dY = dL/dY`
    /// (shape `(B, n_out)`), returns `dX = dY W` and the gradients of `L` with respect to
    /// each parameter tensor, in the order and shapes of [`params`](Self::params).
    ///
    /// # Errors
    /// [`Error::ShapeMismatch`] if the shapes of `X` and `dY` do not fit the map or each
    /// other.
    fn backward(
        &self,
        x: ArrayView2<'_, T>,
        dy: ArrayView2<'_, T>,
    ) -> Result<(Array2<T>, Vec<ArrayD<T>>)>;

    /// The parameter gradients of [`backward`](Self::backward) without `dX`, for a map
    /// whose input is data (an LSTM's input-to-hidden map): the same arrays, bitwise.
    /// The default calls `backward` and drops `dX`; implementations skip computing it.
    ///
    /// # Errors
    /// As [`backward`](Self::backward).
    fn backward_params(
        &self,
        x: ArrayView2<'_, T>,
        dy: ArrayView2<'_, T>,
    ) -> Result<Vec<ArrayD<T>>> {
        self.backward(x, dy).map(|(_, g)| g)
    }

    /// The columns `start..start + len` of `W` as a dense `n_out x len` block, e.g. the
    /// recurrent block `W_h` of a fully decomposed LSTM, formed once per batch. The
    /// default applies the map to the `len` unit vectors (one [`apply`](Self::apply) to
    /// a batch of `len`); the dense and tensorized maps slice their weights instead (see
    /// [`TensorizedMatrix::column_block`](crate::matrices::TensorizedMatrix::column_block)).
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] if the range does not lie inside `0..n_in`.
    fn column_block(&self, start: usize, len: usize) -> Result<Array2<T>> {
        crate::dense::check_col_range("LinearMap::column_block", start, len, self.n_in())?;
        crate::dense::columns_by_apply(self.n_in(), start, len, |x| self.apply(x))
    }

    /// Rescales the parameter tensors without changing the map (see
    /// [`TensorizedMatrix::balance`](crate::matrices::TensorizedMatrix::balance)); a dense
    /// map does nothing.
    fn balance(&mut self) {}

    /// Views of the parameter tensors, in a fixed order.
    fn params(&self) -> Vec<ArrayViewD<'_, T>>;

    /// Mutable views of the parameter tensors, in the order of [`params`](Self::params).
    fn params_mut(&mut self) -> Vec<ArrayViewMutD<'_, T>>;

    /// A short description of the format and its structure (e.g. `"dense 16x8"`), used in
    /// reports and to recognise a checkpoint written for another architecture.
    fn describe(&self) -> String;

    /// A boxed deep copy (the models are `Clone` through this).
    fn box_clone(&self) -> Box<dyn LinearMap<T>>;
}

impl<T: Scalar> Clone for Box<dyn LinearMap<T>> {
    fn clone(&self) -> Self {
        self.box_clone()
    }
}

impl<T: Scalar> std::fmt::Debug for dyn LinearMap<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "LinearMap({})", self.describe())
    }
}

/// Work (in multiply-adds) from which one dense product is spread over rayon's threads
/// inside faer. Below it, one thread is faster (see the measured faer notes); the split
/// is over output blocks, so the result does not depend on scheduling.
const PAR_GEMM_WORK: usize = 1 << 24;

/// The parallelism for a product of shape `(m x k) (k x n)`.
pub(crate) fn gemm_par(m: usize, n: usize, k: usize) -> Parallelism {
    if m.saturating_mul(n).saturating_mul(k) >= PAR_GEMM_WORK && rayon::current_num_threads() > 1 {
        Parallelism::rayon(0)
    } else {
        Parallelism::Seq
    }
}

/// A dense weight matrix `W` of shape `n_out x n_in`: the map of the uncompressed LSTM and
/// of the classifier head.
///
/// Parameters: one tensor, `W` itself (row-major, shape `[n_out, n_in]`).
///
/// # Example
/// ```
/// use tnet::models::{DenseLinear, LinearMap};
/// let w = ndarray::array![[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]];
/// let map = DenseLinear::try_new(w).unwrap();
/// let y = map.apply(ndarray::array![[1.0, -1.0]].view()).unwrap();
/// assert_eq!(y, ndarray::array![[-1.0, -1.0, -1.0]]);
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct DenseLinear<T> {
    w: Array2<T>,
}

impl<T: Scalar> DenseLinear<T> {
    /// Wraps a weight matrix of shape `(n_out, n_in)`.
    ///
    /// # Errors
    /// [`Error::Empty`] if a dimension is zero; [`Error::NonFinite`] for NaN or infinite
    /// entries.
    pub fn try_new(w: Array2<T>) -> Result<Self> {
        if w.is_empty() {
            return Err(Error::Empty {
                context: "DenseLinear::try_new",
                shape: w.shape().to_vec(),
            });
        }
        if let Some(index) = w.iter().position(|v| !v.is_finite()) {
            return Err(Error::NonFinite {
                context: "DenseLinear::try_new",
                index,
            });
        }
        Ok(Self {
            w: w.as_standard_layout().into_owned(),
        })
    }

    /// Glorot-uniform initialisation (variance preserving, Keras' default for LSTM
    /// kernels): entries i.i.d. uniform on `[-a, a]` with `a = sqrt(6 / (n_in + n_out))`,
    /// from a seed.
    ///
    /// # Errors
    /// [`Error::Empty`] if `n_out` or `n_in` is zero.
    pub fn glorot(n_out: usize, n_in: usize, seed: u64) -> Result<Self> {
        if n_out == 0 || n_in == 0 {
            return Err(Error::Empty {
                context: "DenseLinear::glorot",
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
            T::cast(a * (2.0 * g.random::<f64>() - 1.0))
        });
        Ok(Self { w })
    }

    /// The weight matrix, shape `(n_out, n_in)`.
    pub fn weights(&self) -> ArrayView2<'_, T> {
        self.w.view()
    }

    /// Checks `X` (`B x N`) and `dY` (`B x M`) of a backward pass.
    fn check_backward(&self, x: &ArrayView2<'_, T>, dy: &ArrayView2<'_, T>) -> Result<()> {
        check_backward(
            [
                "DenseLinear::backward input",
                "DenseLinear::backward output gradient",
                "DenseLinear::backward batch sizes",
            ],
            x,
            dy,
            self.n_in(),
            self.n_out(),
        )
    }
}

impl<T: Scalar> LinearMap<T> for DenseLinear<T> {
    fn n_in(&self) -> usize {
        self.w.ncols()
    }

    fn n_out(&self) -> usize {
        self.w.nrows()
    }

    fn n_params(&self) -> usize {
        self.w.len()
    }

    fn apply(&self, x: ArrayView2<'_, T>) -> Result<Array2<T>> {
        check_cols("DenseLinear::apply input", &x, self.n_in())?;
        let (b, m, n) = (x.nrows(), self.n_out(), self.n_in());
        let mut y = Array2::zeros((b, m));
        matmul_into(
            y.view_mut(),
            x,
            self.w.t(),
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
            self.w.view(),
            T::one(),
            false,
            gemm_par(b, n, m),
        );
        Ok((dx, self.backward_params(x, dy)?))
    }

    fn backward_params(
        &self,
        x: ArrayView2<'_, T>,
        dy: ArrayView2<'_, T>,
    ) -> Result<Vec<ArrayD<T>>> {
        self.check_backward(&x, &dy)?;
        let (b, m, n) = (x.nrows(), self.n_out(), self.n_in());
        let mut dw = Array2::zeros((m, n));
        matmul_into(dw.view_mut(), dy.t(), x, T::one(), false, gemm_par(m, n, b));
        Ok(vec![dw.into_dyn()])
    }

    fn column_block(&self, start: usize, len: usize) -> Result<Array2<T>> {
        crate::dense::check_col_range("DenseLinear::column_block", start, len, self.n_in())?;
        Ok(self.w.slice(ndarray::s![.., start..start + len]).to_owned())
    }

    fn params(&self) -> Vec<ArrayViewD<'_, T>> {
        vec![self.w.view().into_dyn()]
    }

    fn params_mut(&mut self) -> Vec<ArrayViewMutD<'_, T>> {
        vec![self.w.view_mut().into_dyn()]
    }

    fn describe(&self) -> String {
        format!("dense {}x{}", self.n_out(), self.n_in())
    }

    fn box_clone(&self) -> Box<dyn LinearMap<T>> {
        Box::new(self.clone())
    }
}
