//! One array in, one decomposition out: the format enum over the decompositions, the
//! block-term rank search, and the options and report of [`decompose`](super::decompose).

use std::time::Instant;

use ndarray::{ArrayD, ArrayViewD};
use serde::{Deserialize, Serialize};

use super::{MatrixModes, TensorMeta};
use crate::formats::bt::bt_als;
use crate::formats::{AlsOptions, AlsReport, FormatKind};
use crate::weights::Dtype;
use crate::{
    BtTensor, DimTree, Error, Factorized, HtTensor, Result, Scalar, TrTensor, Truncation, TtTensor,
    TuckerTensor,
};

/// Parameters of the block-term format (the other formats ignore them).
///
/// BT-ALS ([`bt_als`](fn@crate::formats::bt::bt_als)) fits `blocks` Tucker blocks of
/// equal ranks `(R, .., R)` (clipped to
/// [`TuckerTensor::admissible_ranks`]). The block rank comes from the [`Truncation`] rule:
/// - a rank cap without a tolerance fixes `R`;
/// - with a tolerance, `R` is the smallest block rank (up to the cap, or the largest
///   mode size) whose fit meets the error budget `rule.budget(‖X‖)`, found by doubling
///   and then bisecting `R` (one BT-ALS run per trial); at `R = max n_k` the first block
///   alone is exact, so without a cap the budget is always met up to rounding;
/// - with neither, `R = max n_k`.
///
/// # Example
/// ```
/// use tnet::compress::{decompose, BtOptions, DecomposeOptions};
/// use tnet::formats::FormatKind;
/// use tnet::{BtTensor, Factorized, Truncation};
/// let x = BtTensor::<f64>::random(&[5, 6, 7], &[2, 2, 2], 3, 1).unwrap().to_dense();
/// let opts = DecomposeOptions {
///     bt: BtOptions { blocks: 3, ..BtOptions::default() },
///     ..DecomposeOptions::new(FormatKind::Bt, Truncation::rel(1e-4))
/// };
/// let (c, report) = decompose(x.view(), &opts).unwrap();
/// assert!(report.rel_error <= 1e-4);
/// assert_eq!(c.decomposition.blocks(), Some(3));
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BtOptions {
    /// The number of blocks `N_b` (at least 1).
    pub blocks: usize,
    /// Sweep limit and stopping tolerance of each BT-ALS run.
    pub als: AlsOptions,
    /// Seed completing rank-deficient starts (see [`bt_als`](crate::formats::bt)).
    pub seed: u64,
}

impl Default for BtOptions {
    /// 2 blocks; at most 200 sweeps per run, stopping when a sweep lowers the error by
    /// less than `1e-7` relative; seed 0.
    fn default() -> Self {
        Self {
            blocks: 2,
            als: AlsOptions::default().with_max_iter(200).with_tol(1e-7),
            seed: 0,
        }
    }
}

impl BtOptions {
    /// Validates: at least one block, valid ALS options.
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] naming `blocks` or `tol`.
    pub fn check(&self) -> Result<Self> {
        if self.blocks == 0 {
            return Err(Error::param("blocks", "must be at least 1"));
        }
        self.als.check()?;
        Ok(*self)
    }
}

/// What a decomposition achieved besides the tensor itself.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DecompositionInfo<T> {
    /// Bound on `‖X − Y‖_F`: the a-priori bound of the SVD-based formats (HT, TT, TR,
    /// Tucker); for BT (no a-priori bound exists) the error BT-ALS computed for its
    /// result.
    pub error_bound: T,
    /// BT only: the sweeps of the BT-ALS run that was kept.
    pub sweeps: Option<usize>,
    /// BT only: whether that run stopped on its tolerance rather than the sweep limit.
    pub converged: Option<bool>,
    /// BT only: the number of BT-ALS runs of the block-rank search.
    pub trials: Option<usize>,
}

impl<T: Scalar> DecompositionInfo<T> {
    fn bound(error_bound: T) -> Self {
        Self {
            error_bound,
            sweeps: None,
            converged: None,
            trials: None,
        }
    }
}

/// A decomposed tensor in one of the formats: one variant per format.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum Decomposition<T> {
    /// Hierarchical Tucker, by HT-SVD.
    Ht(HtTensor<T>),
    /// Tensor train, by TT-SVD.
    Tt(TtTensor<T>),
    /// Tensor ring, by TR-SVD.
    Tr(TrTensor<T>),
    /// Tucker, by ST-HOSVD.
    Tucker(TuckerTensor<T>),
    /// Block term, by BT-ALS.
    Bt(BtTensor<T>),
}

impl<T: Scalar> Decomposition<T> {
    /// Decomposes a dense tensor into `format` under `rule`: HT-SVD (on `tree`, balanced
    /// by default), TT-SVD, TR-SVD, ST-HOSVD or BT-ALS (with `bt`, see [`BtOptions`]).
    /// Returns the decomposition and its error bound.
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] for an invalid rule or `bt`, or a `tree` with a
    /// format other than HT; the format's own errors (empty or non-finite input, a tree
    /// of the wrong order).
    pub fn decompose(
        format: FormatKind,
        x: ArrayViewD<'_, T>,
        tree: Option<&DimTree>,
        rule: &Truncation,
        bt: &BtOptions,
    ) -> Result<(Self, DecompositionInfo<T>)> {
        let rule = rule.check()?;
        if tree.is_some() && format != FormatKind::Ht {
            return Err(Error::param(
                "tree",
                format!("only the ht format has a dimension tree, not {format}"),
            ));
        }
        Ok(match format {
            FormatKind::Ht => {
                let balanced;
                let tree = match tree {
                    Some(t) => t,
                    None => {
                        balanced = DimTree::balanced(x.ndim().max(1))?;
                        &balanced
                    }
                };
                let (y, info) = HtTensor::from_dense(x, tree, &rule)?;
                (
                    Decomposition::Ht(y),
                    DecompositionInfo::bound(info.error_bound),
                )
            }
            FormatKind::Tt => {
                let (y, info) = TtTensor::from_dense(x, &rule)?;
                (
                    Decomposition::Tt(y),
                    DecompositionInfo::bound(info.error_bound),
                )
            }
            FormatKind::Tr => {
                let (y, info) = TrTensor::from_dense(x, &rule)?;
                (
                    Decomposition::Tr(y),
                    DecompositionInfo::bound(info.error_bound),
                )
            }
            FormatKind::Tucker => {
                let (y, info) = TuckerTensor::from_dense(x, &rule)?;
                (
                    Decomposition::Tucker(y),
                    DecompositionInfo::bound(info.error_bound),
                )
            }
            FormatKind::Bt => {
                let (y, info) = bt_search(x, &rule, &bt.check()?)?;
                (Decomposition::Bt(y), info)
            }
        })
    }

    /// The format.
    pub fn format(&self) -> FormatKind {
        match self {
            Decomposition::Ht(_) => FormatKind::Ht,
            Decomposition::Tt(_) => FormatKind::Tt,
            Decomposition::Tr(_) => FormatKind::Tr,
            Decomposition::Tucker(_) => FormatKind::Tucker,
            Decomposition::Bt(_) => FormatKind::Bt,
        }
    }

    /// The decomposition as the common trait object.
    pub fn as_factorized(&self) -> &dyn Factorized<T> {
        match self {
            Decomposition::Ht(x) => x,
            Decomposition::Tt(x) => x,
            Decomposition::Tr(x) => x,
            Decomposition::Tucker(x) => x,
            Decomposition::Bt(x) => x,
        }
    }

    /// The tree spec, for formats that have one (HT).
    pub fn tree(&self) -> Option<String> {
        match self {
            Decomposition::Ht(x) => Some(x.tree().to_string()),
            _ => None,
        }
    }

    /// The number of blocks, for the block-term format.
    pub fn blocks(&self) -> Option<usize> {
        match self {
            Decomposition::Bt(x) => Some(x.n_blocks()),
            _ => None,
        }
    }

    /// The ranks: HT one per node (pre-order, root first); TT `[1, r_1, .., r_{d-1}, 1]`;
    /// TR `[r_0, .., r_{d-1}]`; Tucker `[R_1, .., R_d]`; BT the Tucker ranks of every
    /// block, block after block (`blocks · d` entries).
    pub fn ranks(&self) -> Vec<usize> {
        match self {
            Decomposition::Ht(x) => x.ranks(),
            Decomposition::Tt(x) => x.ranks(),
            Decomposition::Tr(x) => x.ranks(),
            Decomposition::Tucker(x) => x.ranks(),
            Decomposition::Bt(x) => x.ranks().concat(),
        }
    }
}

/// BT-ALS with the block rank chosen by `rule` (see [`BtOptions`]).
fn bt_search<T: Scalar>(
    x: ArrayViewD<'_, T>,
    rule: &Truncation,
    opts: &BtOptions,
) -> Result<(BtTensor<T>, DecompositionInfo<T>)> {
    crate::dense::check_tensor("block-term decomposition", &x)?;
    let norm = crate::dense::norm(x.view()).as_f64();
    let full = x.shape().iter().copied().max().unwrap_or(1).max(1);
    let cap = rule.max_rank().unwrap_or(full).min(full);
    let mut trials = 0;
    let mut run = |r: usize| -> Result<(BtTensor<T>, AlsReport<T>, f64)> {
        trials += 1;
        let ranks = vec![r; x.ndim()];
        let (y, report) = bt_als(x.view(), opts.blocks, &ranks, opts.seed, &opts.als)?;
        // `errors` are relative to ‖X‖ (absolute for X = 0).
        let err = report.final_error().as_f64() * if norm > 0.0 { norm } else { 1.0 };
        Ok((y, report, err))
    };
    let (y, report, err) = if rule.has_tolerance() {
        let budget = rule.budget(norm);
        // Doubling: the first rank meeting the budget, or the cap.
        let (mut lo, mut r) = (0, 1);
        let mut best = loop {
            let fit = run(r)?;
            if fit.2 <= budget || r == cap {
                break fit;
            }
            lo = r;
            r = (2 * r).min(cap);
        };
        // Bisection between the last failing and the first passing rank.
        if best.2 <= budget {
            let mut hi = r;
            while hi - lo > 1 {
                let mid = lo + (hi - lo) / 2;
                let fit = run(mid)?;
                if fit.2 <= budget {
                    hi = mid;
                    best = fit;
                } else {
                    lo = mid;
                }
            }
        }
        best
    } else {
        run(cap)?
    };
    Ok((
        y,
        DecompositionInfo {
            error_bound: T::cast(err),
            sweeps: Some(report.iterations),
            converged: Some(report.converged),
            trials: Some(trials),
        },
    ))
}

/// How to decompose one array.
#[derive(Clone, Debug, PartialEq)]
pub struct DecomposeOptions {
    /// The target format.
    pub format: FormatKind,
    /// The truncation rule.
    pub rule: Truncation,
    /// The dimension tree (tree formats); balanced when `None`.
    pub tree: Option<DimTree>,
    /// Tensorize a 2-D weight with these modes first; `None` decomposes the array as it is.
    pub matrix: Option<MatrixModes>,
    /// Block count and ALS settings of the block-term format.
    pub bt: BtOptions,
}

impl DecomposeOptions {
    /// A plain-tensor decomposition into `format` under `rule`, on the balanced tree.
    pub fn new(format: FormatKind, rule: Truncation) -> Self {
        Self {
            format,
            rule,
            tree: None,
            matrix: None,
            bt: BtOptions::default(),
        }
    }
}

/// A decomposed array together with what is needed to give the dense array back.
#[derive(Clone, Debug, PartialEq)]
pub struct CompressedTensor<T> {
    /// The original array's shape.
    pub shape: Vec<usize>,
    /// The dtype the original was stored in (the dense array is written back in it).
    pub dtype: Dtype,
    /// The tensorization, for a weight matrix.
    pub matrix: Option<MatrixModes>,
    /// The decomposition of the (tensorized) array.
    pub decomposition: Decomposition<T>,
}

impl<T: Scalar> CompressedTensor<T> {
    /// The dense array (matricized back and unpadded for a weight matrix).
    ///
    /// Memory: the tensor's `Π n_k` entries, three times over for a weight matrix (the
    /// tensor, its permutation and the unpadded copy), checked against the
    /// [memory limit](crate::limits) before anything is allocated.
    ///
    /// # Errors
    /// [`Error::TooLarge`] if that exceeds the limit (a small container may declare a huge
    /// shape); [`Error::NonFinite`] if the cores are finite but their product overflows
    /// the scalar type, which no dense array can hold.
    pub fn to_dense(&self) -> Result<ArrayD<T>> {
        let f = self.decomposition.as_factorized();
        let copies = if self.matrix.is_some() { 3 } else { 1 };
        let mut need = f.shape().to_vec();
        need.push(copies);
        crate::limits::check_elements("the rebuilt dense array", &need, std::mem::size_of::<T>())?;
        let x = f.to_dense();
        let x = match &self.matrix {
            Some(m) => m.matricize(x.view())?,
            None => x,
        };
        if let Some(index) = x.iter().position(|v| !v.is_finite()) {
            return Err(Error::NonFinite {
                context: "the rebuilt dense array (the cores are finite, their product overflows)",
                index,
            });
        }
        Ok(x)
    }

    /// Number of stored scalars.
    pub fn n_params(&self) -> usize {
        self.decomposition.as_factorized().n_params()
    }

    /// Entries of the original array.
    pub fn dense_len(&self) -> usize {
        self.shape.iter().product()
    }

    /// `dense_len / n_params`.
    pub fn compression_ratio(&self) -> f64 {
        self.dense_len() as f64 / self.n_params() as f64
    }

    pub(super) fn meta(&self, name: &str) -> TensorMeta {
        TensorMeta {
            name: name.to_string(),
            format: self.decomposition.format(),
            precision: Dtype::from_name(T::NAME).expect("f32 or f64"),
            dtype: self.dtype,
            shape: self.shape.clone(),
            matrix: self.matrix.clone(),
            tensor_shape: self.decomposition.as_factorized().shape().to_vec(),
            tree: self.decomposition.tree(),
            blocks: self.decomposition.blocks(),
            ranks: self.decomposition.ranks(),
            cores: self
                .decomposition
                .core_suffixes()
                .into_iter()
                .map(|s| format!("{name}/{s}"))
                .collect(),
        }
    }

    pub(super) fn from_meta(meta: &TensorMeta, cores: Vec<ArrayD<T>>) -> Result<Self> {
        for shape in [&meta.shape, &meta.tensor_shape] {
            let fits = shape
                .iter()
                .try_fold(1usize, |a, &k| a.checked_mul(k))
                .is_some_and(|n| n <= isize::MAX as usize / 8);
            if !fits {
                return Err(Error::corrupt(format!(
                    "'{}': shape {shape:?} is too large",
                    meta.name
                )));
            }
        }
        let decomposition = Decomposition::from_cores(meta, cores)?;
        let expected = match &meta.matrix {
            Some(m) => {
                m.check().map_err(|e| Error::corrupt(e.to_string()))?;
                if meta.shape != [m.rows, m.cols] {
                    return Err(Error::corrupt(format!(
                        "'{}': shape {:?} does not match the modes of a {} x {} matrix",
                        meta.name, meta.shape, m.rows, m.cols
                    )));
                }
                m.tensor_shape()
            }
            None => meta.shape.clone(),
        };
        let shape = decomposition.as_factorized().shape();
        if shape != expected.as_slice() || shape != meta.tensor_shape.as_slice() {
            return Err(Error::corrupt(format!(
                "'{}': the decomposed tensor has shape {shape:?}, expected {expected:?} \
                 (tensor shape {:?} in the description)",
                meta.name, meta.tensor_shape
            )));
        }
        let names: Vec<String> = decomposition
            .core_suffixes()
            .into_iter()
            .map(|s| format!("{}/{s}", meta.name))
            .collect();
        let mismatch = if names != meta.cores {
            Some(format!("core names {:?}, expected {names:?}", meta.cores))
        } else if decomposition.ranks() != meta.ranks {
            Some(format!(
                "ranks {:?}, but the cores have ranks {:?}",
                meta.ranks,
                decomposition.ranks()
            ))
        } else if decomposition.tree() != meta.tree {
            Some(format!(
                "tree {:?} for the {} format",
                meta.tree, meta.format
            ))
        } else if decomposition.blocks() != meta.blocks {
            Some(format!(
                "block count {:?} for the {} format",
                meta.blocks, meta.format
            ))
        } else {
            None
        };
        if let Some(m) = mismatch {
            return Err(Error::corrupt(format!(
                "'{}': the description says {m}",
                meta.name
            )));
        }
        Ok(Self {
            shape: meta.shape.clone(),
            dtype: meta.dtype,
            matrix: meta.matrix.clone(),
            decomposition,
        })
    }
}

/// What decomposing one array achieved.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TensorReport {
    /// The array's name.
    pub name: String,
    /// The format (`None` when the weight was kept dense).
    pub format: Option<FormatKind>,
    /// The original shape.
    pub shape: Vec<usize>,
    /// The tensorization, for a weight matrix.
    pub modes: Option<MatrixModes>,
    /// Zero rows and columns added by the tensorization.
    pub padding: [usize; 2],
    /// The tree spec, for tree formats.
    pub tree: Option<String>,
    /// The number of blocks, for the block-term format.
    #[serde(default)]
    pub blocks: Option<usize>,
    /// The ranks (see [`Decomposition::ranks`]).
    pub ranks: Vec<usize>,
    /// Entries of the dense array.
    pub dense_params: usize,
    /// Stored scalars after compression.
    pub params: usize,
    /// `dense_params / params`.
    pub ratio: f64,
    /// Measured `‖W − Ŵ‖_F / ‖W‖_F` (of the reconstruction against the input).
    pub rel_error: f64,
    /// The format's bound on the relative error (see [`DecompositionInfo::error_bound`]:
    /// a-priori for HT, TT, TR and Tucker, the error BT-ALS computed for BT).
    pub rel_error_bound: f64,
    /// BT only: the sweeps of the BT-ALS run kept.
    #[serde(default)]
    pub sweeps: Option<usize>,
    /// BT only: whether that run stopped on its tolerance rather than the sweep limit.
    #[serde(default)]
    pub converged: Option<bool>,
    /// BT only: the number of BT-ALS runs of the block-rank search.
    #[serde(default)]
    pub trials: Option<usize>,
    /// `‖W‖_F` (0 for non-float entries).
    pub norm: f64,
    /// Wall-clock seconds for decomposing and measuring.
    pub seconds: f64,
    /// Why the weight was kept dense, when it was.
    pub kept_dense: Option<String>,
}

/// Decomposes one dense array (tensorized first when `opts.matrix` is set), measuring the
/// relative error of the reconstruction against the input.
///
/// # Errors
/// [`Error::InvalidParameter`] for an invalid rule or BT options, or a tree with a format
/// other than HT; [`Error::ShapeMismatch`] if the modes do not fit the array; the
/// format's errors (empty or non-finite input, a tree of the wrong order).
///
/// Cost: the format's decomposition of an array of `prod(m_k n_k)` entries (for BT, one
/// BT-ALS run per block rank tried, `O(log max n_k)` runs) plus one reconstruction to
/// measure the error.
pub fn decompose<T: Scalar>(
    x: ArrayViewD<'_, T>,
    opts: &DecomposeOptions,
) -> Result<(CompressedTensor<T>, TensorReport)> {
    decompose_named(
        "tensor",
        Dtype::from_name(T::NAME).expect("f32 or f64"),
        x,
        opts,
    )
}

pub(super) fn decompose_named<T: Scalar>(
    name: &str,
    dtype: Dtype,
    x: ArrayViewD<'_, T>,
    opts: &DecomposeOptions,
) -> Result<(CompressedTensor<T>, TensorReport)> {
    let start = Instant::now();
    if x.ndim() == 0 {
        return Err(Error::param(
            "array",
            "a 0-d array (a scalar) has nothing to decompose",
        ));
    }
    crate::dense::check_tensor("decompose", &x)?;
    let tensor = match &opts.matrix {
        Some(m) => m.tensorize(x.view())?,
        None => x.to_owned(),
    };
    let (decomposition, info) = Decomposition::decompose(
        opts.format,
        tensor.view(),
        opts.tree.as_ref(),
        &opts.rule,
        &opts.bt,
    )?;
    let bound = info.error_bound;
    drop(tensor);
    let c = CompressedTensor {
        shape: x.shape().to_vec(),
        dtype,
        matrix: opts.matrix.clone(),
        decomposition,
    };
    let rel_error = crate::dense::rel_error(x.view(), c.to_dense()?.view())?.as_f64();
    let norm = crate::dense::norm(x.view()).as_f64();
    let padding = match &c.matrix {
        Some(m) => {
            let (mp, np) = m.padded();
            [mp - m.rows, np - m.cols]
        }
        None => [0, 0],
    };
    let report = TensorReport {
        name: name.to_string(),
        format: Some(c.decomposition.format()),
        shape: c.shape.clone(),
        modes: c.matrix.clone(),
        padding,
        tree: c.decomposition.tree(),
        blocks: c.decomposition.blocks(),
        ranks: c.decomposition.ranks(),
        dense_params: c.dense_len(),
        params: c.n_params(),
        ratio: c.compression_ratio(),
        rel_error,
        rel_error_bound: if norm > 0.0 {
            bound.as_f64() / norm
        } else {
            bound.as_f64()
        },
        sweeps: info.sweeps,
        converged: info.converged,
        trials: info.trials,
        norm,
        seconds: start.elapsed().as_secs_f64(),
        kept_dense: None,
    };
    Ok((c, report))
}
