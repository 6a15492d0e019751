//! The one linear-map interface: what a layer needs from a weight matrix `W`
//! (`n_out x n_in`) stored in any format.
//!
//! [`LinearMap`] is object safe and small: the row-batched product `Y = X W^T`, its
//! backward pass, the parameters. The models hold `Box<dyn LinearMap<T>>` without knowing
//! the format. Every tensorized matrix is one ([`TensorizedMatrix`](super::TensorizedMatrix)
//! extends it with the tensorized shape, plans, `W^T` and `to_dense`), as is
//! [`DenseMatrix`](super::DenseMatrix) and [`Padded`], a matrix used on inputs shorter
//! than its columns.
//!
//! Conventions: inputs are row batches, `X` of shape `(B, n_in)`; outputs `Y` of shape
//! `(B, n_out)`. The gradients returned by [`LinearMap::backward`] are those of a scalar
//! loss `L` given `dY = dL/dY`: `dX = dY W` and `dL/dθ` for every parameter tensor `θ`
//! in the order of [`LinearMap::params`].

use ndarray::{Array2, ArrayD, ArrayView2, ArrayViewD, ArrayViewMutD, s};

use super::TensorizedMatrix;
use crate::dense::check_cols;
use crate::linalg::Parallelism;
use crate::{Error, Result, Scalar};

/// A linear map `x -> W x` with `W` of shape `n_out x n_in`, applied to row batches.
///
/// Object safe: models hold `Box<dyn LinearMap<T>>`. Implementations must be
/// deterministic (the same inputs give bitwise the same outputs for a given rayon thread
/// count), since training runs are required to be reproducible.
pub trait LinearMap<T: Scalar>: Send + Sync {
    /// Input length `N` (columns of `W`).
    fn n_in(&self) -> usize;

    /// Output length `M` (rows of `W`).
    fn n_out(&self) -> usize;

    /// Number of stored scalars (the total length of [`params`](Self::params)).
    fn n_params(&self) -> usize {
        self.params().iter().map(|p| p.len()).sum()
    }

    /// `Y = X W^T` for `X` of shape `B x N`; `Y` is `B x M`.
    ///
    /// # Errors
    /// [`Error::ShapeMismatch`] if `X` has not `N` columns.
    fn apply(&self, x: ArrayView2<'_, T>) -> Result<Array2<T>>;

    /// The backward pass of `Y = X W^T`: given `X` and `dY = ∂L/∂Y`, returns
    /// `dX = dY W` and `∂L/∂θ` for every parameter array, in the order of
    /// [`params`](Self::params), with their shapes.
    ///
    /// # Errors
    /// [`Error::ShapeMismatch`] if `X` is not `B x N` or `dY` not `B x M` (same `B`).
    #[allow(clippy::type_complexity)]
    fn backward(
        &self,
        x: ArrayView2<'_, T>,
        dy: ArrayView2<'_, T>,
    ) -> Result<(Array2<T>, Vec<ArrayD<T>>)>;

    /// The parameter gradients of [`backward`](Self::backward) without `dX`: the same
    /// arrays (bitwise), for a layer whose input is data (the first layer of a network,
    /// the input-to-hidden map of an LSTM). Skipping `dX` saves one contraction with the
    /// batch, the largest of the backward pass for a wide input. The default calls
    /// `backward` and drops `dX`.
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

    /// The columns `start..start + len` of `W`, as a dense `M x len` block, without
    /// forming `W`: `W[:, start..start + len]`.
    ///
    /// This is what a model needs when only a few of the inputs change between products:
    /// the fully decomposed LSTM applies `W [x_t ; h_{t-1}] = W [x_t ; 0] + W_h h_{t-1}`
    /// with the `4H x H` block `W_h` formed once per batch.
    ///
    /// Cost: the engine formats (all of this crate's) slice every core along the input
    /// modes to the smallest box of multi-indices `J_1 x .. x J_d` holding the columns
    /// and contract that sub-network alone, `O(M * prod_k |J_k| * r^2)`-ish, the cost of
    /// `to_dense` of an `M x prod_k |J_k|` matrix (a contiguous block aligned to the
    /// trailing modes, such as the last `H` inputs, gives `prod_k |J_k| = len`). The
    /// default implementation applies the map to the `len` unit vectors (one
    /// [`apply`](Self::apply) to a batch of `len`, memory `len * N`).
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] if the range does not lie inside `0..N`.
    ///
    /// # Example
    /// ```
    /// use tnet::matrices::{Init, LinearMap, MatrixFormat, MatrixShape, TensorizedMatrix};
    /// use tnet::HtMatrix;
    /// let shape = MatrixShape::try_new(vec![2, 3], vec![4, 5]).unwrap();
    /// let tree = tnet::DimTree::balanced(2).unwrap();
    /// let w = HtMatrix::<f64>::random(&shape, &tree, 2, Init::Glorot, 0).unwrap();
    /// let block = w.column_block(15, 5).unwrap();
    /// let dense = w.to_dense();
    /// assert!((&block - &dense.slice(ndarray::s![.., 15..20])).iter().all(|d| d.abs() < 1e-12));
    /// ```
    fn column_block(&self, start: usize, len: usize) -> Result<Array2<T>> {
        crate::dense::check_col_range("column_block", start, len, self.n_in())?;
        crate::dense::columns_by_apply(self.n_in(), start, len, |x| self.apply(x))
    }

    /// Rescales the cores without changing `W`: within each product term's set of cores
    /// (all cores for HT, TT and TR; each block's factors and core for BT) every core is
    /// multiplied by `g / rms_k`, with `rms_k` its root-mean-square entry and `g` their
    /// geometric mean, so the factors multiply to 1 and all cores end with the same entry
    /// scale. This is the gauge freedom of a tensor network; an optimiser that moves every
    /// entry by about the same amount (Adam) then changes every core by the same relative
    /// amount, where cores whose scales have drifted apart would otherwise see relative
    /// steps orders of magnitude apart. The default (dense) does nothing.
    ///
    /// Cost: one pass over the parameters.
    ///
    /// # Example
    /// ```
    /// use tnet::matrices::{Init, LinearMap, MatrixFormat, MatrixShape, TensorizedMatrix};
    /// use tnet::HtMatrix;
    /// let shape = MatrixShape::try_new(vec![4, 4], vec![6, 5]).unwrap();
    /// let tree = tnet::DimTree::balanced(2).unwrap();
    /// let mut w = HtMatrix::<f64>::random(&shape, &tree, 3, Init::Glorot, 0).unwrap();
    /// w.params_mut()[1].mapv_inplace(|v| 100.0 * v);
    /// w.params_mut()[2].mapv_inplace(|v| 0.01 * v);
    /// let before = w.to_dense();
    /// w.balance();
    /// assert!((&w.to_dense() - &before).iter().all(|d| d.abs() < 1e-12));
    /// ```
    fn balance(&mut self) {}

    /// The parameter arrays, in a fixed order documented by each format.
    fn params(&self) -> Vec<ArrayViewD<'_, T>>;

    /// Mutable views of the parameter arrays (same order), e.g. for an optimiser step.
    fn params_mut(&mut self) -> Vec<ArrayViewMutD<'_, T>>;

    /// A short description of the format, its structure, shape and cores (e.g.
    /// `"dense 16x8"`, `"tt 4x4 <- 4x8 cores [1x4x4x2, 2x4x8x1]"`), used in reports and
    /// to recognise a model file written for another architecture.
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

/// A tensorized matrix `W` (`M x P`) used as a linear map on inputs of length
/// `n_in <= P`, zero-padded at the end to `P`: `Y = [X 0] W^T`, so that an input length
/// with a bad factorization (a large prime factor) can be tensorized at a padded length.
/// `W` is never formed; the padding costs one copy of the batch per product (`B P`
/// entries).
///
/// Parameters: those of the matrix, in its order.
///
/// # Example
/// ```
/// use tnet::TtMatrix;
/// use tnet::matrices::{Init, LinearMap, MatrixFormat, MatrixShape, Padded, TensorizedMatrix};
/// // 4H = 16 outputs over 30 inputs, tensorized at the padded length 32 = 4 x 8.
/// let shape = MatrixShape::try_new(vec![4, 4], vec![4, 8]).unwrap();
/// let w = TtMatrix::<f64>::random(&shape, &(), 2, Init::Glorot, 0).unwrap();
/// let dense = w.to_dense();
/// let map = Padded::new(w, 30).unwrap();
/// assert_eq!((map.n_out(), map.n_in()), (16, 30));
/// let x = tnet::dense::random_normal::<f64>(&[3, 30], 1).into_dimensionality().unwrap();
/// let y = map.apply(x.view()).unwrap();
/// let reference = x.dot(&dense.slice(ndarray::s![.., 0..30]).t());
/// assert!((&y - &reference).iter().all(|d| d.abs() < 1e-12));
/// assert_eq!(map.describe(), "tt 4x4 <- 4x8 cores [1x4x4x2, 2x4x8x1] inputs 30 padded to 32");
/// ```
#[derive(Clone, Debug)]
pub struct Padded<M> {
    matrix: M,
    n_in: usize,
}

impl<M> Padded<M> {
    /// The matrix.
    pub fn matrix(&self) -> &M {
        &self.matrix
    }

    /// The matrix, unwrapped.
    pub fn into_inner(self) -> M {
        self.matrix
    }
}

impl<M> Padded<M> {
    /// `matrix` on inputs of length `n_in` (at most its columns).
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] if `n_in` is zero or exceeds the matrix's columns.
    pub fn new<T: Scalar>(matrix: M, n_in: usize) -> Result<Self>
    where
        M: TensorizedMatrix<T>,
    {
        if n_in == 0 || n_in > matrix.n_in() {
            return Err(Error::param(
                "n_in",
                format!(
                    "must be in 1..={} (the matrix's columns), got {n_in}",
                    matrix.n_in()
                ),
            ));
        }
        Ok(Self { matrix, n_in })
    }

    /// `X` zero-padded to the matrix's `P` columns, or `None` if no padding is needed.
    fn pad<T: Scalar>(&self, x: &ArrayView2<'_, T>, p: usize) -> Option<Array2<T>> {
        (self.n_in < p).then(|| {
            let mut xp = Array2::zeros((x.nrows(), p));
            xp.slice_mut(s![.., 0..self.n_in]).assign(x);
            xp
        })
    }
}

impl<T, M> LinearMap<T> for Padded<M>
where
    T: Scalar,
    M: TensorizedMatrix<T> + Clone + 'static,
{
    fn n_in(&self) -> usize {
        self.n_in
    }

    fn n_out(&self) -> usize {
        self.matrix.n_out()
    }

    fn n_params(&self) -> usize {
        self.matrix.n_params()
    }

    fn apply(&self, x: ArrayView2<'_, T>) -> Result<Array2<T>> {
        check_cols("Padded::apply input", &x, self.n_in)?;
        match self.pad(&x, self.matrix.n_in()) {
            Some(xp) => self.matrix.apply(xp.view()),
            None => self.matrix.apply(x),
        }
    }

    fn backward(
        &self,
        x: ArrayView2<'_, T>,
        dy: ArrayView2<'_, T>,
    ) -> Result<(Array2<T>, Vec<ArrayD<T>>)> {
        check_cols("Padded::backward input", &x, self.n_in)?;
        match self.pad(&x, self.matrix.n_in()) {
            Some(xp) => {
                let (dx, grads) = self.matrix.backward(xp.view(), dy)?;
                Ok((dx.slice(s![.., 0..self.n_in]).to_owned(), grads))
            }
            None => self.matrix.backward(x, dy),
        }
    }

    fn backward_params(
        &self,
        x: ArrayView2<'_, T>,
        dy: ArrayView2<'_, T>,
    ) -> Result<Vec<ArrayD<T>>> {
        check_cols("Padded::backward input", &x, self.n_in)?;
        match self.pad(&x, self.matrix.n_in()) {
            Some(xp) => self.matrix.backward_params(xp.view(), dy),
            None => self.matrix.backward_params(x, dy),
        }
    }

    fn column_block(&self, start: usize, len: usize) -> Result<Array2<T>> {
        crate::dense::check_col_range("Padded::column_block", start, len, self.n_in)?;
        self.matrix.column_block(start, len)
    }

    fn balance(&mut self) {
        self.matrix.balance();
    }

    fn params(&self) -> Vec<ArrayViewD<'_, T>> {
        self.matrix.params()
    }

    fn params_mut(&mut self) -> Vec<ArrayViewMutD<'_, T>> {
        self.matrix.params_mut()
    }

    /// The matrix's description and the padding: `"tt 4x4 <- 4x8 cores [..] inputs 30
    /// padded to 32"`.
    fn describe(&self) -> String {
        let mut d = self.matrix.describe();
        if self.n_in < self.matrix.n_in() {
            d.push_str(&format!(
                " inputs {} padded to {}",
                self.n_in,
                self.matrix.n_in()
            ));
        }
        d
    }

    fn box_clone(&self) -> Box<dyn LinearMap<T>> {
        Box::new(self.clone())
    }
}
