//! The tensorized weight matrices as LSTM maps.
//!
//! [`TensorizedLinear`] wraps any matrix of [`crate::matrices`] (TT, TR, HT, block-term,
//! dense) as a [`LinearMap`], optionally with zero padding of the input: a map of `n_in`
//! inputs over a matrix of `P >= n_in` columns computes `Y = [X 0] W^T`, so that an
//! input length with a bad factorization (a large prime factor) can be tensorized at the
//! padded length. `W` is never formed: `apply` and `backward` are the matrix's own
//! contractions. The padding costs one copy of the batch per product (`B P` entries).
//!
//! [`LinearMap::describe`] names the format, its structure (TR layout, HT tree, number of
//! BT blocks), the modes and the shape of every core (hence every rank) and the padding,
//! so that a model file written for one format or rank is refused by a model of another.

use ndarray::{Array2, ArrayD, ArrayView2, ArrayViewD, ArrayViewMutD, s};

use super::linear::LinearMap;
use crate::dense::check_cols;
use crate::matrices::{FormatDescription, TensorizedMatrix};
use crate::{Error, Result, Scalar};

/// A tensorized matrix `W` (`M x P`) used as a linear map on inputs of length
/// `n_in <= P` (zero-padded at the end to `P`).
///
/// Parameters: those of the matrix, in its order (see each format).
///
/// # Example
/// ```
/// use tnet::matrices::{Init, MatrixFormat, MatrixShape, TensorizedMatrix};
/// use tnet::TtMatrix;
/// use tnet::models::{LinearMap, TensorizedLinear};
/// // 4H = 16 outputs over 30 inputs, tensorized at the padded length 32 = 4 x 8.
/// let shape = MatrixShape::try_new(vec![4, 4], vec![4, 8]).unwrap();
/// let w = TtMatrix::<f64>::random(&shape, &(), 2, Init::Glorot, 0).unwrap();
/// let dense = w.to_dense();
/// let map = TensorizedLinear::padded(w, 30).unwrap();
/// assert_eq!((map.n_out(), map.n_in()), (16, 30));
/// let x = tnet::dense::random_normal::<f64>(&[3, 30], 1).into_dimensionality().unwrap();
/// let y = map.apply(x.view()).unwrap();
/// let reference = x.dot(&dense.slice(ndarray::s![.., 0..30]).t());
/// assert!((&y - &reference).iter().all(|d| d.abs() < 1e-12));
/// assert_eq!(map.describe(), "tt 4x4 <- 4x8 cores [1x4x4x2, 2x4x8x1] inputs 30 padded to 32");
/// ```
#[derive(Clone, Debug)]
pub struct TensorizedLinear<M> {
    matrix: M,
    n_in: usize,
}

impl<M> TensorizedLinear<M> {
    /// The wrapped matrix.
    pub fn matrix(&self) -> &M {
        &self.matrix
    }

    /// Unwraps the matrix.
    pub fn into_inner(self) -> M {
        self.matrix
    }
}

impl<M: FormatDescription> TensorizedLinear<M> {
    /// Wraps a matrix without padding (`n_in = P`).
    pub fn new<T: Scalar>(matrix: M) -> Self
    where
        M: TensorizedMatrix<T>,
    {
        let n_in = matrix.n_in();
        Self { matrix, n_in }
    }

    /// Wraps a matrix of `P` columns as a map on `n_in` inputs, `1 <= n_in <= P`; the
    /// last `P - n_in` columns of `W` see zeros.
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] if `n_in` is 0 or exceeds `P`.
    pub fn padded<T: Scalar>(matrix: M, n_in: usize) -> Result<Self>
    where
        M: TensorizedMatrix<T>,
    {
        if n_in == 0 || n_in > matrix.n_in() {
            return Err(Error::param(
                "n_in",
                format!(
                    "the map's input length must be in 1..={} (the matrix's columns), got {n_in}",
                    matrix.n_in()
                ),
            ));
        }
        Ok(Self { matrix, n_in })
    }
}

impl<M> TensorizedLinear<M> {
    /// `X` zero-padded to `p` columns (a copy), or `None` if no padding is needed.
    fn pad<T: Scalar>(&self, x: &ArrayView2<'_, T>, p: usize) -> Option<Array2<T>> {
        (self.n_in < p).then(|| {
            let mut xp = Array2::zeros((x.nrows(), p));
            xp.slice_mut(s![.., 0..self.n_in]).assign(x);
            xp
        })
    }
}

impl<T, M> LinearMap<T> for TensorizedLinear<M>
where
    T: Scalar,
    M: TensorizedMatrix<T> + FormatDescription + Clone + 'static,
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
        check_cols("TensorizedLinear::apply input", &x, self.n_in)?;
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
        check_cols("TensorizedLinear::backward input", &x, self.n_in)?;
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
        check_cols("TensorizedLinear::backward input", &x, self.n_in)?;
        match self.pad(&x, self.matrix.n_in()) {
            Some(xp) => self.matrix.backward_params(xp.view(), dy),
            None => self.matrix.backward_params(x, dy),
        }
    }

    fn column_block(&self, start: usize, len: usize) -> Result<Array2<T>> {
        crate::dense::check_col_range("TensorizedLinear::column_block", start, len, self.n_in)?;
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

    fn describe(&self) -> String {
        let cores: Vec<String> = self
            .matrix
            .params()
            .iter()
            .map(|p| {
                p.shape()
                    .iter()
                    .map(usize::to_string)
                    .collect::<Vec<_>>()
                    .join("x")
            })
            .collect();
        let mut d = format!(
            "{} {} cores [{}]",
            self.matrix.format_description(),
            self.matrix.shape(),
            cores.join(", ")
        );
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
