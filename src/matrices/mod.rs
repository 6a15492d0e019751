//! Tensorized weight matrices: applied, transposed and differentiated without forming `W`.
//!
//! A weight matrix `W` (`M x N`, [`MatrixShape`]: `M = m_1 ⋯ m_d`, `N = n_1 ⋯ n_d`) is held
//! as a small tensor network. A layer computes `Y = X W^T` for a batch `X` (`B x N`,
//! row-major, one sample per row, as in PyTorch's `Linear`), its transpose `dX = dY W`, and
//! the gradients of every core, all as sequences of pairwise contractions executed as GEMMs
//! with the batch folded in (see [`ContractionPlan`]); `W` itself is never formed.
//!
//! The formats implement these traits in their own folders (`formats/<fmt>/matrix.rs`:
//! [`HtMatrix`](crate::HtMatrix), [`TtMatrix`](crate::TtMatrix),
//! [`TrMatrix`](crate::TrMatrix), [`BtMatrix`](crate::BtMatrix)); their core layouts are
//! listed in [`formats`](crate::formats#matrix-forms-and-their-core-layouts). This module
//! holds what they share: the interface, [`MatrixShape`], [`DenseMatrix`], and the
//! contraction engine (plans and kernels) every format delegates to.
//!
//! # One interface
//! [`LinearMap`] (object safe) is what a layer needs: lengths, parameter count, `apply`,
//! `backward`, and the parameters as flat lists of arrays in one fixed order (`backward`
//! returns the gradients in that order, so an optimiser can zip them).
//! [`TensorizedMatrix`] extends it with the tensorized shape, flops and plans,
//! `apply_transpose` and `to_dense`. [`MatrixFormat`] adds the constructors that differ only in
//! their structure argument: [`from_dense`](MatrixFormat::from_dense) (decompose an
//! existing `W` under the shared [`Truncation`](crate::Truncation) rule) and
//! [`random`](MatrixFormat::random) (initialisation with a chosen variance of `W`'s
//! entries, see [`Init`]). [`TensorizedFormat`] says which tensor format a matrix form
//! is, so that `from_dense` is one function for all of them ([`decompose_tensorized`]:
//! tensorize `W`, decompose, reshape the cores).
//!
//! # Example
//! ```
//! use tnet::matrices::{Init, LinearMap, MatrixFormat, MatrixShape, TensorizedMatrix};
//! use tnet::HtMatrix;
//! use tnet::DimTree;
//! let shape = MatrixShape::try_new(vec![4, 4, 4], vec![5, 6, 5]).unwrap();
//! let tree = DimTree::balanced(3).unwrap();
//! let w = HtMatrix::<f64>::random(&shape, &tree, 3, Init::He, 7).unwrap();
//! let x = tnet::dense::random_normal::<f64>(&[10, 150], 1).into_dimensionality().unwrap();
//! let y = w.apply(x.view()).unwrap(); // 10 x 64, W never formed
//! let reference = x.dot(&w.to_dense().t());
//! assert!((&y - &reference).iter().all(|d| d.abs() < 1e-10));
//! println!("{}", w.plan(10)); // the contraction order chosen for batch 10
//! ```

mod dense;
pub(crate) mod engine;
mod kernel;
mod linear;
mod plan;
pub mod shape;

use std::sync::Arc;

use ndarray::{Array2, ArrayD, ArrayView2, ArrayViewMutD, IxDyn};
use rand_distr::{Distribution, StandardNormal};

use crate::{AsRule, Decompose, Error, Result, Scalar, TruncationInfo};

pub use dense::DenseMatrix;
pub(crate) use linear::gemm_par;
pub use linear::{LinearMap, Padded};
pub use plan::ContractionPlan;
pub use shape::{MAX_ORDER, MatrixShape, Padding, factorizations, factorize, pad_to_factorable};

/// The instruction set of the contraction kernel this process runs: `"avx512"`,
/// `"avx2"` or `"portable"` (the best the CPU offers, capped by the environment variable
/// `TNET_ISA=avx2` or `TNET_ISA=portable`, read once per process). faer's dense products
/// are not affected by the cap and need none: faer is built without its `x86-v4` feature,
/// so they run AVX2+FMA on every x86-64 CPU that has them.
///
/// ```
/// assert!(["avx512", "avx2", "portable"].contains(&tnet::matrices::kernel_isa()));
/// ```
pub fn kernel_isa() -> &'static str {
    kernel::isa_name()
}

/// A weight matrix `W` (`M x N`) held as a tensor network: a [`LinearMap`] with a
/// tensorized shape, contraction plans, `W^T` and the dense `W`.
///
/// Conventions: a batch is `B x N` with one sample per row; `apply` gives `Y = X W^T`
/// (`B x M`). All methods check shapes and return [`Error::ShapeMismatch`] on a mismatch;
/// NaN or Inf in the inputs propagate to the outputs.
pub trait TensorizedMatrix<T: Scalar>: LinearMap<T> {
    /// The tensorized shape (for [`DenseMatrix`], order 1: `[M] <- [N]`).
    fn shape(&self) -> &MatrixShape;

    /// `M N / n_params`.
    fn compression_ratio(&self) -> f64 {
        self.n_out() as f64 * self.n_in() as f64 / self.n_params() as f64
    }

    /// Flops of one [`apply`](LinearMap::apply) to a batch of `batch` rows (the backward pass
    /// costs twice as much).
    fn flops(&self, batch: usize) -> u64;

    /// The contraction order used by [`apply`](LinearMap::apply) for this batch size
    /// (cached; printable).
    fn plan(&self, batch: usize) -> Arc<ContractionPlan>;

    /// `dX = dY W` for `dY` of shape `B x M`; `dX` is `B x N`.
    ///
    /// # Errors
    /// [`Error::ShapeMismatch`] if `dY` has not `M` columns.
    fn apply_transpose(&self, dy: ArrayView2<'_, T>) -> Result<Array2<T>>;

    /// The dense matrix `W` (`M x N`). Memory `M N`.
    fn to_dense(&self) -> Array2<T>;

    /// `‖W‖_F`, accumulated in `f64`, without forming `W` when it is large: column blocks
    /// aligned to the trailing input modes, each of at most about `2^22` entries (one
    /// [`to_dense`](Self::to_dense) when `M N <= 2^24`).
    ///
    /// Cost: that of [`to_dense`](Self::to_dense); memory one block.
    ///
    /// # Example
    /// ```
    /// use tnet::matrices::{Init, LinearMap, MatrixFormat, MatrixShape, TensorizedMatrix};
    /// use tnet::TtMatrix;
    /// let shape = MatrixShape::try_new(vec![4, 4], vec![6, 5]).unwrap();
    /// let w = TtMatrix::<f64>::random(&shape, &(), 3, Init::Glorot, 0).unwrap();
    /// let dense = w.to_dense();
    /// let direct = dense.iter().map(|v| v * v).sum::<f64>().sqrt();
    /// assert!((w.frobenius_norm() - direct).abs() < 1e-12 * direct);
    /// ```
    fn frobenius_norm(&self) -> f64 {
        const WHOLE: usize = 1 << 24;
        const BLOCK: usize = 1 << 22;
        let (m, n) = (self.n_out(), self.n_in());
        let squares = |a: &Array2<T>| crate::dense::sum_of_squares(a.view().into_dyn());
        if m.saturating_mul(n) <= WHOLE {
            return squares(&self.to_dense()).sqrt();
        }
        let mut len = 1;
        for &nk in self.shape().in_modes().iter().rev() {
            if len > 1 && m * len * nk > BLOCK {
                break;
            }
            len *= nk;
        }
        let mut sum = 0.0;
        for start in (0..n).step_by(len) {
            let block = self
                .column_block(start, len.min(n - start))
                .expect("the range lies inside 0..N");
            sum += squares(&block);
        }
        sum.sqrt()
    }
}

/// Construction of a format: decomposition of a dense `W` and random initialisation.
///
/// `Structure` is what a format needs beyond the shape: `()` for dense and TT, a
/// [`DimTree`](crate::DimTree) for HT, a [`TrLayout`](crate::TrLayout) for TR, the number of blocks for BT.
pub trait MatrixFormat<T: Scalar>: TensorizedMatrix<T> + Sized {
    /// The structure argument of the format.
    type Structure: ?Sized;

    /// Decomposes a dense `W` (`M x N`) under the truncation rule, returning what was
    /// discarded (see each format for the algorithm and its error bound).
    ///
    /// # Errors
    /// [`Error::ShapeMismatch`] if `W` is not `shape.n_out() x shape.n_in()`;
    /// [`Error::NonFinite`] for NaN/Inf entries; [`Error::InvalidParameter`] for an
    /// invalid rule or structure.
    fn from_dense(
        w: ArrayView2<'_, T>,
        shape: &MatrixShape,
        structure: &Self::Structure,
        rule: &impl AsRule,
    ) -> Result<(Self, TruncationInfo<T>)>;

    /// Random cores of rank `rank` (capped where a format requires) with i.i.d. normal
    /// entries, scaled so that every entry of `W` has variance `init.variance(N, M)`.
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] for `rank == 0` or an invalid `init`.
    fn random(
        shape: &MatrixShape,
        structure: &Self::Structure,
        rank: usize,
        init: Init,
        seed: u64,
    ) -> Result<Self>;
}

/// A matrix format whose `W` is a tensor format applied to a tensorization of `W`.
///
/// Its [`from_dense`](MatrixFormat::from_dense) is [`decompose_tensorized`]: `W` becomes
/// a tensor ([`tensorize`](Self::tensorize), by default the paired tensor of mode sizes
/// `m_k n_k`), the tensor format decomposes it under the rule ([`Decompose`]), and the
/// cores are reshaped into the matrix form ([`from_tensor`](Self::from_tensor)). Every
/// error bound of the tensor format holds for `W`: tensorizing is a permutation of the
/// entries, so it keeps the Frobenius norm.
pub trait TensorizedFormat<T: Scalar>: MatrixFormat<T> {
    /// The tensor format of the tensorized `W`.
    type Tensor: Decompose<T>;

    /// `W` (`M x N`, checked) as the tensor that [`Tensor`](Self::Tensor) decomposes. The
    /// default is the paired tensor, mode `k` = `(i_k, j_k)` of size `m_k n_k`.
    ///
    /// # Errors
    /// Whatever the format's tensorization checks (none by default).
    fn tensorize(
        w: ArrayView2<'_, T>,
        shape: &MatrixShape,
        _structure: &Self::Structure,
    ) -> Result<ArrayD<T>> {
        Ok(paired_tensor(&w, shape, false))
    }

    /// The structure the tensor format needs (a tree, block options).
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] or [`Error::InvalidTree`] for a structure that does
    /// not fit the shape.
    fn tensor_structure(
        shape: &MatrixShape,
        structure: &Self::Structure,
    ) -> Result<<Self::Tensor as Decompose<T>>::Structure>;

    /// The matrix whose tensorization is `t` (its cores reshaped).
    ///
    /// # Errors
    /// The checked constructor's errors (not expected for a decomposition of
    /// [`tensorize`](Self::tensorize)'s result).
    fn from_tensor(
        t: Self::Tensor,
        shape: &MatrixShape,
        structure: &Self::Structure,
    ) -> Result<Self>;
}

/// [`MatrixFormat::from_dense`] of every [`TensorizedFormat`]: checks `W`, tensorizes it,
/// decomposes the tensor and reshapes the cores. Cost: one copy of `W` plus the tensor
/// format's decomposition.
///
/// # Errors
/// [`Error::ShapeMismatch`] if `W` is not `shape.n_out() x shape.n_in()`;
/// [`Error::NonFinite`] for NaN/Inf entries; the decomposition's errors.
pub fn decompose_tensorized<T: Scalar, F: TensorizedFormat<T>>(
    w: ArrayView2<'_, T>,
    shape: &MatrixShape,
    structure: &F::Structure,
    rule: &impl AsRule,
) -> Result<(F, TruncationInfo<T>)> {
    let s = F::tensor_structure(shape, structure)?;
    decompose_tensorized_with(w, shape, structure, &s, rule)
}

/// [`decompose_tensorized`] with the tensor format's structure given (e.g. other fit
/// options than [`TensorizedFormat::tensor_structure`]'s).
///
/// # Errors
/// As [`decompose_tensorized`].
pub fn decompose_tensorized_with<T: Scalar, F: TensorizedFormat<T>>(
    w: ArrayView2<'_, T>,
    shape: &MatrixShape,
    structure: &F::Structure,
    tensor_structure: &<F::Tensor as Decompose<T>>::Structure,
    rule: &impl AsRule,
) -> Result<(F, TruncationInfo<T>)> {
    let rule = rule.as_rule()?;
    check_dense("from_dense (W must be M x N and finite)", &w, shape)?;
    let x = F::tensorize(w, shape, structure)?;
    let (t, info) = F::Tensor::decompose(x.view(), tensor_structure, &rule)?;
    Ok((F::from_tensor(t, shape, structure)?, info))
}

/// The variance given to every entry of `W` by [`MatrixFormat::random`].
///
/// The cores are i.i.d. zero-mean normal, one scale `σ` for all of them. An entry of `W`
/// is a sum over the bond indices of products of one entry per core; distinct terms are
/// uncorrelated and each has variance `σ^{2c}` (`c` cores), so
/// `Var(W_ij) = σ^{2c} · (number of terms)`:
///
/// | format | number of terms |
/// |---|---|
/// | TT | `Π_{k=1}^{d-1} r_k` |
/// | TR (both layouts) | `Π` over all bonds of the ring |
/// | HT | `Π` over all non-root nodes of `r_t` |
/// | BT | `N_b Π_k R_k` |
///
/// and `σ` is chosen so that `Var(W_ij)` equals the target. Glorot (Xavier) and He
/// (Kaiming, fan-in) use the lengths of `W` as fans, as `torch.nn.init` does for a dense
/// layer.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum Init {
    /// `Var(W_ij) = 2 / (N + M)` (Glorot and Bengio, 2010).
    Glorot,
    /// `Var(W_ij) = 2 / N` (He et al., 2015).
    He,
    /// A given variance (finite, > 0).
    Variance(f64),
}

impl Init {
    /// The target variance for a matrix with `n_in` columns and `n_out` rows.
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] for a variance that is not finite and positive.
    pub fn variance(self, n_in: usize, n_out: usize) -> Result<f64> {
        let v = match self {
            Init::Glorot => 2.0 / (n_in + n_out) as f64,
            Init::He => 2.0 / n_in as f64,
            Init::Variance(v) => v,
        };
        if !v.is_finite() || v <= 0.0 {
            return Err(Error::param(
                "init",
                format!("variance must be finite and > 0, got {v}"),
            ));
        }
        Ok(v)
    }
}

/// The most entries of `W` for which [`MatrixFormat::random`] measures the drawn matrix's
/// norm to give it exactly the target variance (`2^32`; the measurement costs `O(M N r)`).
pub const EXACT_NORM_ENTRIES: u128 = 1 << 32;

/// i.i.d. normal cores of the given shapes, all with standard deviation `sigma`.
///
/// # Errors
/// [`Error::TooLarge`] if the cores exceed the [memory limit](crate::limits).
pub(crate) fn normal_cores<T: Scalar>(
    shapes: &[Vec<usize>],
    sigma: f64,
    seed: u64,
) -> Result<Vec<ArrayD<T>>> {
    let total = shapes.iter().fold(0u128, |acc, s| {
        acc.saturating_add(crate::limits::elements(s))
    });
    crate::limits::check_bytes(
        "the tensorized matrix's cores",
        total.saturating_mul(std::mem::size_of::<T>() as u128),
    )?;
    let mut g = crate::dense::rng(seed);
    Ok(shapes
        .iter()
        .map(|s| {
            ArrayD::from_shape_simple_fn(IxDyn(s), || {
                let v: f64 = StandardNormal.sample(&mut g);
                T::cast(v * sigma)
            })
        })
        .collect())
}

/// The common scale `σ` of `n_cores` cores whose products have `terms` uncorrelated terms,
/// so that the sum has variance `target`.
pub(crate) fn core_sigma(target: f64, terms: f64, n_cores: usize) -> f64 {
    (target / terms).powf(0.5 / n_cores as f64)
}

/// Rescales every parameter array of `w` by the same factor `s` so that
/// `‖W‖_F² = M N variance` exactly, for a format in which every entry of `W` is a sum of
/// products of `degree` parameters (one per core of a product term): `W` scales by
/// `s^degree`. The cores keep their common entry scale (none is favoured by the
/// optimiser), and the realised mean square of `W`'s entries, hence the output variance
/// `E‖W x‖² / M` for isotropic unit-variance inputs, is the target for *this* draw, not
/// only on average over draws (a product of a few Gaussian cores has a heavy-tailed norm:
/// at rank 2 a draw's `‖W‖_F²` was measured 0.06x to 9.5x its mean).
///
/// Measuring `‖W‖_F` costs `O(M N r)`; above [`EXACT_NORM_ENTRIES`] entries of `W` the
/// draw is kept as it is (its variance is the target on average over draws).
pub(crate) fn normalize_variance<T: Scalar, M: TensorizedMatrix<T>>(
    mut w: M,
    variance: f64,
    degree: usize,
) -> M {
    if (w.n_out() as u128) * (w.n_in() as u128) > EXACT_NORM_ENTRIES {
        return w;
    }
    let target = (variance * w.n_out() as f64 * w.n_in() as f64).sqrt();
    let norm = w.frobenius_norm();
    if norm > 0.0 && norm.is_finite() && target.is_finite() {
        let s = T::cast((target / norm).powf(1.0 / degree.max(1) as f64));
        for mut p in w.params_mut() {
            p.mapv_inplace(|v| v * s);
        }
    }
    w
}

/// [`TensorizedMatrix::balance`] for parameters that form `groups` equal contiguous
/// groups, every term of `W` a product of one entry of each array of one group.
pub(crate) fn balance_groups<T: Scalar>(mut params: Vec<ArrayViewMutD<'_, T>>, groups: usize) {
    let size = params.len() / groups.max(1);
    if size < 2 {
        return;
    }
    for group in params.chunks_mut(size) {
        let rms: Vec<f64> = group
            .iter()
            .map(|p| (crate::dense::sum_of_squares(p.view()) / p.len().max(1) as f64).sqrt())
            .collect();
        if rms.iter().any(|r| !(r.is_finite() && *r > 0.0)) {
            continue;
        }
        let g = (rms.iter().map(|r| r.ln()).sum::<f64>() / rms.len() as f64).exp();
        for (p, r) in group.iter_mut().zip(&rms) {
            let s = T::cast(g / r);
            p.mapv_inplace(|v| v * s);
        }
    }
}

/// Checks a core's shape and entries and brings it to standard layout.
pub(crate) fn check_core<T: Scalar>(
    context: &'static str,
    core: ArrayD<T>,
    expected: &[usize],
) -> Result<ArrayD<T>> {
    if core.shape() != expected {
        return Err(Error::ShapeMismatch {
            context,
            expected: expected.to_vec(),
            got: core.shape().to_vec(),
        });
    }
    if let Some(index) = core.iter().position(|v| !v.is_finite()) {
        return Err(Error::NonFinite { context, index });
    }
    Ok(if core.is_standard_layout() {
        core
    } else {
        core.as_standard_layout().into_owned()
    })
}

/// Checks that `w` is `M x N` for the shape and finite.
pub(crate) fn check_dense<T: Scalar>(
    context: &'static str,
    w: &ArrayView2<'_, T>,
    shape: &MatrixShape,
) -> Result<()> {
    if w.dim() != (shape.n_out(), shape.n_in()) {
        return Err(Error::ShapeMismatch {
            context,
            expected: vec![shape.n_out(), shape.n_in()],
            got: w.shape().to_vec(),
        });
    }
    if let Some(index) = w.iter().position(|v| !v.is_finite()) {
        return Err(Error::NonFinite { context, index });
    }
    Ok(())
}

/// `W` as the order-`d` tensor of paired modes. With `input_major`, mode `k` is
/// `(j_k, i_k)` of size `n_k m_k` (index `j_k m_k + i_k`); otherwise `(i_k, j_k)`.
pub(crate) fn paired_tensor<T: Scalar>(
    w: &ArrayView2<'_, T>,
    shape: &MatrixShape,
    input_major: bool,
) -> ArrayD<T> {
    let d = shape.order();
    let full: Vec<usize> = shape
        .out_modes()
        .iter()
        .chain(shape.in_modes())
        .copied()
        .collect();
    let w = w.as_standard_layout();
    let t = w
        .view()
        .into_shape_with_order(IxDyn(&full))
        .expect("M N entries");
    let mut perm = Vec::with_capacity(2 * d);
    for k in 0..d {
        if input_major {
            perm.extend([d + k, k]);
        } else {
            perm.extend([k, d + k]);
        }
    }
    let p = t.permuted_axes(perm);
    let paired: Vec<usize> = shape.paired_modes();
    let data: Vec<T> = p.iter().copied().collect();
    ArrayD::from_shape_vec(IxDyn(&paired), data).expect("sizes agree")
}

/// `W^T` as the order-`2d` tensor `(n_1, .., n_d, m_1, .., m_d)`.
pub(crate) fn split_tensor<T: Scalar>(w: &ArrayView2<'_, T>, shape: &MatrixShape) -> ArrayD<T> {
    let d = shape.order();
    let full: Vec<usize> = shape
        .out_modes()
        .iter()
        .chain(shape.in_modes())
        .copied()
        .collect();
    let w = w.as_standard_layout();
    let t = w
        .view()
        .into_shape_with_order(IxDyn(&full))
        .expect("M N entries");
    let perm: Vec<usize> = (d..2 * d).chain(0..d).collect();
    let p = t.permuted_axes(perm);
    let out_shape: Vec<usize> = shape
        .in_modes()
        .iter()
        .chain(shape.out_modes())
        .copied()
        .collect();
    let data: Vec<T> = p.iter().copied().collect();
    ArrayD::from_shape_vec(IxDyn(&out_shape), data).expect("sizes agree")
}

/// What a tensorized format adds to its shape in a description: its name and structure.
///
/// Implemented by every matrix format (in its own `matrix.rs`); the format's
/// [`LinearMap::describe`] prefixes it to the modes and core shapes, so that a model file
/// written for one format or rank is refused by another.
pub trait FormatDescription {
    /// A short name with the structure beyond the shape, e.g. `"tt"`, `"tr split"`,
    /// `"ht tree ((0,1),(2,3))"`, `"bt 2 blocks"`.
    fn format_description(&self) -> String;
}

/// A tensorized matrix's [`LinearMap::describe`]: its format and structure, shape and
/// core shapes, e.g. `"tt 4x4 <- 4x8 cores [1x4x4x2, 2x4x8x1]"`.
pub(crate) fn describe_cores<T, M>(m: &M) -> String
where
    T: Scalar,
    M: TensorizedMatrix<T> + FormatDescription,
{
    let cores: Vec<String> = m
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
    format!(
        "{} {} cores [{}]",
        m.format_description(),
        m.shape(),
        cores.join(", ")
    )
}
