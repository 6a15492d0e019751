//! Compressing real weights: dense arrays and whole model files in, factorized weights out.
//!
//! This is the library side of the `tnet` command-line tool, usable on its own:
//!
//! - [`decompose`] turns one dense array into a [`CompressedTensor`]: either a plain tensor
//!   decomposed as it is, or a weight matrix `W` (`M x N`) **tensorized** by
//!   [`MatrixModes`] first: `M` is factored into output modes `m_1..m_d`, `N` into input
//!   modes `n_1..n_d` (zero padding when the products exceed `M` or `N`), and mode `k` of
//!   the tensor is the pair `(m_k, n_k)`:
//!
//!   ```text
//!   X[(i_1 j_1), .., (i_d j_d)] = W[(i_1..i_d), (j_1..j_d)]     (row-major multi-indices)
//!   ```
//!
//!   so that a low-rank structure *across* the pairs is what the format captures (the
//!   layout of TT-/HT-matrices, Novikov et al. 2015; Yin et al. 2021).
//! - [`compress_model`] does this for every matching 2-D weight of a safetensors file,
//!   choosing balanced modes automatically, and keeps everything else unchanged.
//! - [`CompressedFile`] is the container both write: a `.safetensors` file holding the
//!   cores as named tensors plus a JSON description under the `__metadata__` key `"tnet"`
//!   (format, tree, block count, ranks, modes, original dtype), so that
//!   [`CompressedFile::to_dense`] can rebuild the dense weights. On reading, every tensor
//!   is rebuilt through its format's checked constructor and checked against the
//!   description; anything inconsistent is [`Error::Corrupt`].
//!
//! Formats are chosen by [`FormatKind`]; [`Decomposition`] is the enum over the formats,
//! one match arm per format:
//!
//! | format | algorithm | cores, for an entry `{name}` | ranks in the description |
//! |---|---|---|---|
//! | `ht` | HT-SVD ([`HtTensor::from_dense`], on a dimension tree) | `{name}/ht/{node}` (pre-order) | one per node |
//! | `tt` | TT-SVD ([`TtTensor::from_dense`]) | `{name}/tt/{k}`, `(r_k, n_k, r_{k+1})` | `[1, r_1, .., 1]` |
//! | `tr` | TR-SVD ([`TrTensor::from_dense`]) | `{name}/tr/{k}`, `(r_k, n_k, r_{k+1})` | `[r_0, .., r_{d-1}]` |
//! | `tucker` | ST-HOSVD ([`TuckerTensor::from_dense`]) | `{name}/tucker/core`, `{name}/tucker/factor/{k}` | `[R_1, .., R_d]` |
//! | `bt` | BT-ALS ([`bt_als`](crate::algorithms::bt_als)), see [`BtOptions`] | `{name}/bt/{b}/core`, `{name}/bt/{b}/factor/{k}` | every block's `R_k`, block after block |
//!
//! # Error guarantee
//! With a relative tolerance `ε` and no binding rank cap, every HT, TT, TR and Tucker
//! weight satisfies `‖W − Ŵ‖_F ≤ ε ‖W‖_F` a priori (the zero padding changes neither
//! norm). BT-ALS has no a-priori bound: its block rank is searched until the fit meets
//! `ε` (always possible up to rounding without a cap, see [`BtOptions`]). For every
//! format the error is measured on the reconstruction and reported as
//! [`TensorReport::rel_error`].
//!
//! # Example
//! ```
//! use tnet::compress::{decompose, DecomposeOptions, FormatKind, MatrixModes};
//! use tnet::Truncation;
//! // A rank-2 weight 12 x 20, tensorized as (3·4) x (4·5).
//! let a = tnet::dense::random_normal::<f64>(&[12, 2], 1);
//! let b = tnet::dense::random_normal::<f64>(&[2, 20], 2);
//! let a = a.into_dimensionality::<ndarray::Ix2>().unwrap();
//! let b = b.into_dimensionality::<ndarray::Ix2>().unwrap();
//! let w = a.dot(&b).into_dyn();
//! for format in FormatKind::ALL {
//!     let opts = DecomposeOptions {
//!         matrix: Some(MatrixModes::new(12, 20, vec![3, 4], vec![4, 5]).unwrap()),
//!         ..DecomposeOptions::new(format, Truncation::rel(1e-8))
//!     };
//!     let (c, report) = decompose(w.view(), &opts).unwrap();
//!     assert!(report.rel_error <= 1e-8, "{format}");
//!     assert_eq!(c.to_dense().unwrap().shape(), &[12, 20]);
//! }
//! ```

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;
use std::time::Instant;

use ndarray::{ArrayD, ArrayViewD, IxDyn};
use serde::{Deserialize, Serialize};

use crate::algorithms::bt_als::bt_als;
use crate::algorithms::hooi::{AlsOptions, AlsReport};
use crate::weights::{self, DenseArray, Dtype, Entry, SafetensorsFile, Weight};
use crate::{
    BtTensor, DimTree, Error, Factorized, HtNode, HtTensor, Result, Scalar, TrTensor, Truncation,
    TtTensor, TuckerTensor,
};

/// Version of the compressed-file description written by this build.
pub const COMPRESSED_FORMAT_VERSION: u32 = 1;
const MAGIC: &str = "tnet-compressed";
/// The `__metadata__` key that holds the description.
pub const METADATA_KEY: &str = "tnet";

// ---------------------------------------------------------------------------------------
// formats
// ---------------------------------------------------------------------------------------

/// The tensor formats a weight can be compressed to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FormatKind {
    /// Hierarchical Tucker ([`HtTensor`]).
    Ht,
    /// Tensor train.
    Tt,
    /// Tensor ring.
    Tr,
    /// Tucker.
    Tucker,
    /// Block term.
    Bt,
}

impl FormatKind {
    /// Every format, in the order of the docs.
    pub const ALL: [FormatKind; 5] = [
        FormatKind::Ht,
        FormatKind::Tt,
        FormatKind::Tr,
        FormatKind::Tucker,
        FormatKind::Bt,
    ];

    /// The lowercase name (`"ht"`, `"tt"`, ...).
    pub fn name(self) -> &'static str {
        match self {
            FormatKind::Ht => "ht",
            FormatKind::Tt => "tt",
            FormatKind::Tr => "tr",
            FormatKind::Tucker => "tucker",
            FormatKind::Bt => "bt",
        }
    }
}

impl fmt::Display for FormatKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for FormatKind {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Self::ALL
            .into_iter()
            .find(|f| f.name().eq_ignore_ascii_case(s))
            .ok_or_else(|| {
                Error::param(
                    "format",
                    format!("unknown format '{s}' (expected ht, tt, tr, tucker or bt)"),
                )
            })
    }
}

/// Parameters of the block-term format (the other formats ignore them).
///
/// BT-ALS ([`bt_als`](fn@crate::algorithms::bt_als::bt_als)) fits `blocks` Tucker blocks of
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
/// use tnet::compress::{decompose, BtOptions, DecomposeOptions, FormatKind};
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
    /// Seed completing rank-deficient starts (see [`bt_als`](crate::algorithms::bt_als)).
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

    /// The names' suffixes of the cores, in the format's order (see [`CompressedFile`]).
    fn core_suffixes(&self) -> Vec<String> {
        let tucker = |prefix: &str, d: usize| {
            std::iter::once(format!("{prefix}/core"))
                .chain((0..d).map(move |k| format!("{prefix}/factor/{k}")))
                .collect::<Vec<_>>()
        };
        match self {
            Decomposition::Ht(x) => (0..x.nodes().len()).map(|t| format!("ht/{t}")).collect(),
            Decomposition::Tt(x) => (0..x.order()).map(|k| format!("tt/{k}")).collect(),
            Decomposition::Tr(x) => (0..x.order()).map(|k| format!("tr/{k}")).collect(),
            Decomposition::Tucker(x) => tucker("tucker", x.order()),
            Decomposition::Bt(x) => (0..x.n_blocks())
                .flat_map(|b| tucker(&format!("bt/{b}"), x.order()))
                .collect(),
        }
    }

    /// The cores, in the order of [`core_suffixes`](Self::core_suffixes), with them.
    fn cores(&self) -> Vec<(String, ArrayD<T>)> {
        let tucker = |t: &TuckerTensor<T>| {
            std::iter::once(t.core().clone())
                .chain(t.factors().iter().map(|u| u.clone().into_dyn()))
                .collect::<Vec<_>>()
        };
        let arrays: Vec<ArrayD<T>> = match self {
            Decomposition::Ht(x) => x
                .nodes()
                .iter()
                .map(|n| match n {
                    HtNode::Leaf(u) => u.clone().into_dyn(),
                    HtNode::Transfer(b) => b.clone().into_dyn(),
                })
                .collect(),
            Decomposition::Tt(x) => x.cores().iter().map(|g| g.clone().into_dyn()).collect(),
            Decomposition::Tr(x) => x.cores().iter().map(|g| g.clone().into_dyn()).collect(),
            Decomposition::Tucker(x) => tucker(x),
            Decomposition::Bt(x) => x.blocks().iter().flat_map(tucker).collect(),
        };
        self.core_suffixes().into_iter().zip(arrays).collect()
    }

    /// Rebuilds from the description and the cores, validated by the format's checked
    /// constructor; any inconsistency is [`Error::Corrupt`].
    fn from_cores(meta: &TensorMeta, cores: Vec<ArrayD<T>>) -> Result<Self> {
        let name = &meta.name;
        let d = meta.tensor_shape.len();
        let count = |want: Option<usize>, what: &str| match want {
            Some(n) if n == cores.len() => Ok(()),
            _ => Err(Error::corrupt(format!(
                "'{name}' has {} cores, which does not fit {what}",
                cores.len()
            ))),
        };
        let invalid = |e: Error| match e {
            Error::Corrupt { .. } => e,
            other => Error::corrupt(format!(
                "'{name}': the {} cores are invalid: {other}",
                meta.format
            )),
        };
        let shaped = |t: usize, a: ArrayD<T>, ndim: usize| {
            if a.ndim() == ndim {
                Ok(a)
            } else {
                Err(Error::corrupt(format!(
                    "core {t} of '{name}' has shape {:?}, expected {ndim} dimensions",
                    a.shape()
                )))
            }
        };
        let to3 = |t: usize, a: ArrayD<T>| -> Result<ndarray::Array3<T>> {
            Ok(shaped(t, a, 3)?
                .into_dimensionality()
                .expect("dimension checked"))
        };
        let to2 = |t: usize, a: ArrayD<T>| -> Result<ndarray::Array2<T>> {
            Ok(shaped(t, a, 2)?
                .into_dimensionality()
                .expect("dimension checked"))
        };
        // Tucker blocks from consecutive runs of `d + 1` cores: core, then factors.
        let tuckers = |cores: Vec<ArrayD<T>>| -> Result<Vec<TuckerTensor<T>>> {
            let mut it = cores.into_iter().enumerate();
            let mut blocks = Vec::new();
            while let Some((_, core)) = it.next() {
                let factors = it
                    .by_ref()
                    .take(d)
                    .map(|(t, u)| to2(t, u))
                    .collect::<Result<Vec<_>>>()?;
                blocks.push(TuckerTensor::try_new(core, factors).map_err(invalid)?);
            }
            Ok(blocks)
        };
        match meta.format {
            FormatKind::Ht => {
                let spec = meta
                    .tree
                    .as_deref()
                    .ok_or_else(|| Error::corrupt(format!("the HT tensor '{name}' has no tree")))?;
                let tree: DimTree = spec.parse().map_err(invalid)?;
                count(Some(tree.n_nodes()), "its tree")?;
                let nodes = cores
                    .into_iter()
                    .enumerate()
                    .map(|(t, a)| {
                        let shape = a.shape().to_vec();
                        let bad = |_| {
                            Error::corrupt(format!(
                                "core {t} of '{name}' has shape {shape:?}, which does not fit node {t}"
                            ))
                        };
                        if tree.is_leaf(t) {
                            a.into_dimensionality().map(HtNode::Leaf).map_err(bad)
                        } else {
                            a.into_dimensionality().map(HtNode::Transfer).map_err(bad)
                        }
                    })
                    .collect::<Result<Vec<_>>>()?;
                HtTensor::try_new(tree, meta.tensor_shape.clone(), nodes)
                    .map(Decomposition::Ht)
                    .map_err(invalid)
            }
            FormatKind::Tt | FormatKind::Tr => {
                count(Some(d), "its order")?;
                let cores = cores
                    .into_iter()
                    .enumerate()
                    .map(|(t, a)| to3(t, a))
                    .collect::<Result<Vec<_>>>()?;
                if meta.format == FormatKind::Tt {
                    TtTensor::try_new(cores).map(Decomposition::Tt)
                } else {
                    TrTensor::try_new(cores).map(Decomposition::Tr)
                }
                .map_err(invalid)
            }
            FormatKind::Tucker => {
                count(d.checked_add(1), "a core and one factor per mode")?;
                let mut t = tuckers(cores)?;
                Ok(Decomposition::Tucker(t.pop().expect("one block")))
            }
            FormatKind::Bt => {
                let blocks = meta.blocks.filter(|&b| b > 0).ok_or_else(|| {
                    Error::corrupt(format!("the BT tensor '{name}' has no block count"))
                })?;
                count(
                    d.checked_add(1).and_then(|n| n.checked_mul(blocks)),
                    "its blocks",
                )?;
                BtTensor::try_new(tuckers(cores)?)
                    .map(Decomposition::Bt)
                    .map_err(invalid)
            }
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

// ---------------------------------------------------------------------------------------
// tensorized matrices
// ---------------------------------------------------------------------------------------

/// How a weight matrix `W` (`rows x cols`) is tensorized: output modes `m_k` (factoring
/// `rows`) paired with input modes `n_k` (factoring `cols`); mode `k` of the tensor has
/// size `m_k n_k`. Products above `rows`/`cols` mean zero padding.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MatrixModes {
    /// `M`, the number of rows (outputs).
    pub rows: usize,
    /// `N`, the number of columns (inputs).
    pub cols: usize,
    /// `m_1..m_d`, with `prod m_k >= M`.
    pub out_modes: Vec<usize>,
    /// `n_1..n_d`, with `prod n_k >= N`.
    pub in_modes: Vec<usize>,
}

impl MatrixModes {
    /// Checked constructor.
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] unless both mode lists are non-empty, of equal length,
    /// free of zeros, and their products cover `rows` and `cols`.
    pub fn new(
        rows: usize,
        cols: usize,
        out_modes: Vec<usize>,
        in_modes: Vec<usize>,
    ) -> Result<Self> {
        let m = Self {
            rows,
            cols,
            out_modes,
            in_modes,
        };
        m.check()?;
        Ok(m)
    }

    fn check(&self) -> Result<()> {
        if self.out_modes.is_empty() || self.out_modes.len() != self.in_modes.len() {
            return Err(Error::param(
                "modes",
                format!(
                    "the output and input modes need the same non-zero count, got {:?} and {:?}",
                    self.out_modes, self.in_modes
                ),
            ));
        }
        if self.out_modes.contains(&0) || self.in_modes.contains(&0) {
            return Err(Error::param("modes", "every mode must be at least 1"));
        }
        for (what, modes, len) in [
            ("out", &self.out_modes, self.rows),
            ("in", &self.in_modes, self.cols),
        ] {
            let p = modes.iter().try_fold(1usize, |a, &k| a.checked_mul(k));
            match p {
                Some(p) if p >= len && p / 2 <= len => {}
                Some(p) if p >= len => {
                    return Err(Error::param(
                        "modes",
                        format!(
                            "the {what}-modes {modes:?} multiply to {p}, more than twice the \
                             length {len}: the weight would be mostly zero padding"
                        ),
                    ));
                }
                _ => {
                    return Err(Error::param(
                        "modes",
                        format!(
                            "the {what}-modes {modes:?} multiply to {}, less than the length {len}",
                            p.map_or("overflow".into(), |p| p.to_string())
                        ),
                    ));
                }
            }
        }
        let (mp, np) = self.padded();
        if mp
            .checked_mul(np)
            .is_none_or(|n| n > isize::MAX as usize / 8)
        {
            return Err(Error::param(
                "modes",
                format!("the padded matrix {mp} x {np} is too large"),
            ));
        }
        Ok(())
    }

    /// The padded lengths `(prod m_k, prod n_k)`.
    pub fn padded(&self) -> (usize, usize) {
        (
            self.out_modes.iter().product(),
            self.in_modes.iter().product(),
        )
    }

    /// The tensor shape `(m_1 n_1, .., m_d n_d)`.
    pub fn tensor_shape(&self) -> Vec<usize> {
        self.out_modes
            .iter()
            .zip(&self.in_modes)
            .map(|(m, n)| m * n)
            .collect()
    }

    /// Balanced modes of order `d` for a `rows x cols` matrix, with the smallest zero
    /// padding that factors well (see the module docs).
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] for `d == 0` or an empty matrix.
    pub fn balanced(rows: usize, cols: usize, d: usize) -> Result<Self> {
        if d == 0 || rows == 0 || cols == 0 {
            return Err(Error::param(
                "modes",
                format!("need d >= 1 and a non-empty matrix, got d = {d}, {rows} x {cols}"),
            ));
        }
        let (out_modes, _) = balanced_factors(rows, d);
        let (in_modes, _) = balanced_factors(cols, d);
        Self::new(rows, cols, out_modes, in_modes)
    }

    /// `W` (`rows x cols`) to the tensor of shape [`tensor_shape`](Self::tensor_shape).
    ///
    /// # Errors
    /// [`Error::ShapeMismatch`] if `w` is not `rows x cols`.
    pub fn tensorize<T: Scalar>(&self, w: ArrayViewD<'_, T>) -> Result<ArrayD<T>> {
        if w.shape() != [self.rows, self.cols] {
            return Err(Error::ShapeMismatch {
                context: "MatrixModes::tensorize",
                expected: vec![self.rows, self.cols],
                got: w.shape().to_vec(),
            });
        }
        let d = self.out_modes.len();
        let (mp, np) = self.padded();
        // Twice: the padded matrix and its permuted copy.
        crate::limits::check_elements(
            "the padded weight matrix",
            &[2, mp, np],
            std::mem::size_of::<T>(),
        )?;
        let mut padded = ArrayD::<T>::zeros(IxDyn(&[mp, np]));
        padded
            .slice_each_axis_mut(|ax| ndarray::Slice::from(0..w.shape()[ax.axis.index()]))
            .assign(&w);
        let split: Vec<usize> = self
            .out_modes
            .iter()
            .chain(&self.in_modes)
            .copied()
            .collect();
        let x = padded
            .into_shape_with_order(IxDyn(&split))
            .expect("sizes agree");
        let perm: Vec<usize> = (0..d).flat_map(|k| [k, d + k]).collect();
        let x = x.permuted_axes(IxDyn(&perm));
        Ok(x.as_standard_layout()
            .into_owned()
            .into_shape_with_order(IxDyn(&self.tensor_shape()))
            .expect("sizes agree"))
    }

    /// The inverse of [`tensorize`](Self::tensorize): the tensor back to `rows x cols`
    /// (padding dropped).
    ///
    /// # Errors
    /// [`Error::ShapeMismatch`] if `x` does not have the tensor shape.
    pub fn matricize<T: Scalar>(&self, x: ArrayViewD<'_, T>) -> Result<ArrayD<T>> {
        if x.shape() != self.tensor_shape().as_slice() {
            return Err(Error::ShapeMismatch {
                context: "MatrixModes::matricize",
                expected: self.tensor_shape(),
                got: x.shape().to_vec(),
            });
        }
        let d = self.out_modes.len();
        let pairs: Vec<usize> = (0..d)
            .flat_map(|k| [self.out_modes[k], self.in_modes[k]])
            .collect();
        let x = x
            .as_standard_layout()
            .into_owned()
            .into_shape_with_order(IxDyn(&pairs))
            .expect("sizes agree");
        let perm: Vec<usize> = (0..d)
            .map(|k| 2 * k)
            .chain((0..d).map(|k| 2 * k + 1))
            .collect();
        let (mp, np) = self.padded();
        let w = x
            .permuted_axes(IxDyn(&perm))
            .as_standard_layout()
            .into_owned()
            .into_shape_with_order(IxDyn(&[mp, np]))
            .expect("sizes agree");
        Ok(w.slice(ndarray::s![..self.rows, ..self.cols])
            .to_owned()
            .into_dyn())
    }
}

/// Balanced factors of `len` into `d` factors (ascending), after the smallest zero padding
/// that makes `len` factor well: the largest factor at most twice `len'^(1/d)`.
/// Returns the factors and the padded length `len' >= len`.
fn balanced_factors(len: usize, d: usize) -> (Vec<usize>, usize) {
    let len = len.max(1);
    let ideal = |n: usize| (n as f64).powf(1.0 / d as f64);
    let window = (len / 8).max(16);
    let mut best: Option<(f64, Vec<usize>, usize)> = None;
    for n in len..=len.saturating_add(window) {
        let f = best_split(n, d);
        let score = *f.last().expect("d >= 1 factors") as f64 / ideal(n);
        if score <= 2.0 {
            return (f, n);
        }
        if best.as_ref().is_none_or(|b| score < b.0) {
            best = Some((score, f, n));
        }
    }
    let (_, f, n) = best.expect("the window is non-empty");
    (f, n)
}

/// The factorization of `n` into `d` ascending factors with the smallest largest factor
/// (ties: the largest smallest factor).
fn best_split(n: usize, d: usize) -> Vec<usize> {
    fn go(n: usize, d: usize, min: usize, cur: &mut Vec<usize>, best: &mut Option<Vec<usize>>) {
        if d == 1 {
            if n >= min {
                cur.push(n);
                let better = match best {
                    None => true,
                    Some(b) => {
                        let (bm, cm) = (b.last().copied(), cur.last().copied());
                        cm < bm || (cm == bm && cur[0] > b[0])
                    }
                };
                if better {
                    *best = Some(cur.clone());
                }
                cur.pop();
            }
            return;
        }
        let mut f = min.max(1);
        while f.saturating_pow(d as u32) <= n {
            if n % f == 0 {
                cur.push(f);
                go(n / f, d - 1, f, cur, best);
                cur.pop();
            }
            f += 1;
        }
    }
    let mut best = None;
    go(n, d, 1, &mut Vec::new(), &mut best);
    best.unwrap_or_else(|| {
        let mut v = vec![1; d - 1];
        v.push(n);
        v
    })
}

/// The default number of modes for an `rows x cols` matrix: about one mode pair per 64
/// entries' worth of bits (`round(log2(rows·cols) / 6)`), between 2 and 6.
pub fn auto_order(rows: usize, cols: usize) -> usize {
    let bits = ((rows.max(1) as f64) * (cols.max(1) as f64)).log2();
    ((bits / 6.0).round() as usize).clamp(2, 6)
}

// ---------------------------------------------------------------------------------------
// one tensor
// ---------------------------------------------------------------------------------------

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

    fn meta(&self, name: &str) -> TensorMeta {
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

    fn from_meta(meta: &TensorMeta, cores: Vec<ArrayD<T>>) -> Result<Self> {
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

fn decompose_named<T: Scalar>(
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

// ---------------------------------------------------------------------------------------
// the container
// ---------------------------------------------------------------------------------------

/// The description of one compressed tensor in a [`CompressedFile`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TensorMeta {
    /// The original entry's name.
    pub name: String,
    /// The format.
    pub format: FormatKind,
    /// The precision of the cores (`f32` or `f64`).
    pub precision: Dtype,
    /// The dtype the original was stored in.
    pub dtype: Dtype,
    /// The original shape.
    pub shape: Vec<usize>,
    /// The tensorization, for a weight matrix.
    pub matrix: Option<MatrixModes>,
    /// The shape of the decomposed tensor.
    pub tensor_shape: Vec<usize>,
    /// The tree spec, for tree formats.
    #[serde(default)]
    pub tree: Option<String>,
    /// The number of blocks, for the block-term format.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blocks: Option<usize>,
    /// The ranks (see [`Decomposition::ranks`]).
    pub ranks: Vec<usize>,
    /// The names of the core entries, in the format's order.
    pub cores: Vec<String>,
}

#[derive(Serialize, Deserialize)]
struct ContainerMeta {
    format: String,
    version: u32,
    tensors: Vec<TensorMeta>,
    /// [`container_checksum`] of this description (without the checksum) and the file's
    /// entries and other metadata. Files written before it existed have none and are read
    /// unchecked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    checksum: Option<String>,
}

/// The checksum of a container: its description (the JSON without the checksum), the
/// other `__metadata__` pairs, and every entry by name (name, dtype, shape, the values bit
/// for bit).
fn container_checksum(
    description: &str,
    metadata: &BTreeMap<String, String>,
    entries: &[Entry],
) -> String {
    let mut sum = crate::io::Checksum::new();
    sum.field(description.as_bytes());
    for (k, v) in metadata.iter().filter(|(k, _)| k.as_str() != METADATA_KEY) {
        sum.field(k.as_bytes()).field(v.as_bytes());
    }
    let mut sorted: Vec<&Entry> = entries.iter().collect();
    sorted.sort_by(|a, b| a.name().cmp(b.name()));
    for e in sorted {
        sum.field(e.name().as_bytes());
        let shape: Vec<u8> = e
            .shape()
            .iter()
            .flat_map(|&n| (n as u64).to_le_bytes())
            .collect();
        match e {
            Entry::Weight(w) => {
                // The values as held (half precisions widened to f32, which is exact), bit
                // for bit: NaN or out-of-range values are damage to detect, not to refuse.
                let bits: Vec<u8> = match &w.data {
                    DenseArray::F32(a) => {
                        a.iter().flat_map(|v| v.to_bits().to_le_bytes()).collect()
                    }
                    DenseArray::F64(a) => {
                        a.iter().flat_map(|v| v.to_bits().to_le_bytes()).collect()
                    }
                };
                sum.field(w.dtype.name().as_bytes())
                    .field(&shape)
                    .field(&bits);
            }
            Entry::Raw(r) => {
                sum.field(r.dtype_name().as_bytes())
                    .field(&shape)
                    .field(&r.bytes);
            }
        }
    }
    sum.hex()
}

/// A compressed tensor of either precision.
#[derive(Clone, Debug, PartialEq)]
pub enum AnyCompressed {
    /// Single-precision cores.
    F32(CompressedTensor<f32>),
    /// Double-precision cores.
    F64(CompressedTensor<f64>),
}

impl AnyCompressed {
    /// The dtype the original array was stored in.
    pub fn dtype(&self) -> Dtype {
        match self {
            AnyCompressed::F32(c) => c.dtype,
            AnyCompressed::F64(c) => c.dtype,
        }
    }

    /// The dense array.
    ///
    /// # Errors
    /// As [`CompressedTensor::to_dense`].
    pub fn to_dense(&self) -> Result<DenseArray> {
        Ok(match self {
            AnyCompressed::F32(c) => DenseArray::F32(c.to_dense()?),
            AnyCompressed::F64(c) => DenseArray::F64(c.to_dense()?),
        })
    }

    /// Number of stored scalars.
    pub fn n_params(&self) -> usize {
        match self {
            AnyCompressed::F32(c) => c.n_params(),
            AnyCompressed::F64(c) => c.n_params(),
        }
    }

    /// The description as stored in the file.
    pub fn meta(&self, name: &str) -> TensorMeta {
        match self {
            AnyCompressed::F32(c) => c.meta(name),
            AnyCompressed::F64(c) => c.meta(name),
        }
    }
}

impl<T: Scalar> From<CompressedTensor<T>> for AnyCompressed {
    fn from(c: CompressedTensor<T>) -> Self {
        let mut slot = Some(c);
        let any: &mut dyn std::any::Any = &mut slot;
        if let Some(s) = any.downcast_mut::<Option<CompressedTensor<f32>>>() {
            return AnyCompressed::F32(s.take().expect("filled"));
        }
        if let Some(s) = any.downcast_mut::<Option<CompressedTensor<f64>>>() {
            return AnyCompressed::F64(s.take().expect("filled"));
        }
        unreachable!("Scalar is sealed to f32 and f64")
    }
}

/// A file of compressed tensors plus entries kept as they were: a `.safetensors` file with
/// the cores as tensors and the description under `__metadata__["tnet"]`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CompressedFile {
    /// The compressed tensors, by original name.
    pub tensors: Vec<(String, AnyCompressed)>,
    /// Entries kept unchanged (not matching, too small, not 2-D, non-float, no gain).
    pub kept: Vec<Entry>,
    /// Other `__metadata__` entries of the original file.
    pub metadata: BTreeMap<String, String>,
}

impl CompressedFile {
    /// The safetensors form: cores, kept entries and the description.
    ///
    /// # Errors
    /// [`Error::Corrupt`] if a core's name collides with a kept entry.
    pub fn to_safetensors(&self) -> Result<SafetensorsFile> {
        let mut file = SafetensorsFile {
            entries: self.kept.clone(),
            metadata: self.metadata.clone(),
        };
        let mut metas = Vec::new();
        for (name, c) in &self.tensors {
            metas.push(c.meta(name));
            let cores: Vec<(String, DenseArray)> = match c {
                AnyCompressed::F32(c) => cores_of(name, c),
                AnyCompressed::F64(c) => cores_of(name, c),
            };
            for (core_name, a) in cores {
                let dtype = a.precision();
                file.entries
                    .push(Entry::Weight(Weight::new(core_name, dtype, a)));
            }
        }
        let mut meta = ContainerMeta {
            format: MAGIC.into(),
            version: COMPRESSED_FORMAT_VERSION,
            tensors: metas,
            checksum: None,
        };
        let description =
            serde_json::to_string(&meta).map_err(|e| Error::corrupt(e.to_string()))?;
        meta.checksum = Some(container_checksum(
            &description,
            &file.metadata,
            &file.entries,
        ));
        file.metadata.insert(
            METADATA_KEY.into(),
            serde_json::to_string(&meta).map_err(|e| Error::corrupt(e.to_string()))?,
        );
        Ok(file)
    }

    /// Writes the file atomically.
    ///
    /// # Errors
    /// [`Error::Io`] if it cannot be written; [`Error::Corrupt`] for colliding names.
    pub fn write(&self, path: impl AsRef<Path>) -> Result<()> {
        let path = path.as_ref();
        let file = self
            .to_safetensors()
            .map_err(|e| weights::with_path(e, path))?;
        weights::write_safetensors(path, &file)
    }

    /// Parses a safetensors file written by [`write`](Self::write).
    ///
    /// # Errors
    /// [`Error::Corrupt`] if the description is missing or malformed, a core is missing,
    /// of the wrong precision or shape, or the tensors it describes are invalid;
    /// [`Error::Version`] for another version of the description.
    pub fn from_safetensors(mut file: SafetensorsFile) -> Result<Self> {
        let text = file.metadata.remove(METADATA_KEY).ok_or_else(|| {
            Error::corrupt(format!(
                "not a tnet compressed file (no '{METADATA_KEY}' entry in __metadata__)"
            ))
        })?;
        let mut meta: ContainerMeta = serde_json::from_str(&text)
            .map_err(|e| Error::corrupt(format!("malformed tnet description: {e}")))?;
        if meta.format != MAGIC {
            return Err(Error::corrupt(format!(
                "not a tnet compressed file (format tag {:?})",
                meta.format
            )));
        }
        if meta.version != COMPRESSED_FORMAT_VERSION {
            return Err(Error::Version {
                found: meta.version,
                supported: COMPRESSED_FORMAT_VERSION,
            });
        }
        if let Some(stored) = meta.checksum.take() {
            let description =
                serde_json::to_string(&meta).map_err(|e| Error::corrupt(e.to_string()))?;
            let computed = container_checksum(&description, &file.metadata, &file.entries);
            if computed != stored {
                return Err(Error::corrupt(format!(
                    "checksum mismatch (stored {stored}, computed {computed}): the description \
                     or the tensors were changed or damaged after tnet wrote the file"
                )));
            }
        }
        let mut by_name: BTreeMap<String, Entry> = file
            .entries
            .into_iter()
            .map(|e| (e.name().to_string(), e))
            .collect();
        let mut tensors = Vec::new();
        for m in &meta.tensors {
            let mut cores = Vec::with_capacity(m.cores.len());
            for core in &m.cores {
                match by_name.remove(core) {
                    Some(Entry::Weight(w)) if w.data.precision() == m.precision => {
                        cores.push(w.data)
                    }
                    Some(_) => {
                        return Err(Error::corrupt(format!(
                            "core '{core}' is not stored in {}",
                            m.precision
                        )));
                    }
                    None => return Err(Error::corrupt(format!("core '{core}' is missing"))),
                }
            }
            let c: AnyCompressed = match m.precision {
                Dtype::F64 => CompressedTensor::<f64>::from_meta(
                    m,
                    cores.into_iter().map(DenseArray::into_array).collect(),
                )?
                .into(),
                Dtype::F32 => CompressedTensor::<f32>::from_meta(
                    m,
                    cores.into_iter().map(DenseArray::into_array).collect(),
                )?
                .into(),
                other => {
                    return Err(Error::corrupt(format!(
                        "'{}': cores in {other} are not supported",
                        m.name
                    )));
                }
            };
            tensors.push((m.name.clone(), c));
        }
        Ok(Self {
            tensors,
            kept: by_name.into_values().collect(),
            metadata: file.metadata,
        })
    }

    /// Reads and validates a compressed file.
    ///
    /// # Errors
    /// [`Error::Io`] if unreadable; as [`read_safetensors`](weights::read_safetensors) and
    /// [`from_safetensors`](Self::from_safetensors), with the path attached.
    pub fn read(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        Self::from_safetensors(weights::read_safetensors(path)?)
            .map_err(|e| weights::with_path(e, path))
    }

    /// The dense file: every compressed tensor rebuilt in its original dtype, the kept
    /// entries unchanged, the tnet description dropped.
    ///
    /// # Errors
    /// [`Error::TooLarge`] if the dense arrays together exceed the
    /// [memory limit](crate::limits); as [`CompressedTensor::to_dense`].
    pub fn to_dense(&self) -> Result<SafetensorsFile> {
        let total = self.tensors.iter().fold(0u128, |acc, (_, c)| {
            let (shape, bytes) = match c {
                AnyCompressed::F32(c) => (&c.shape, 4),
                AnyCompressed::F64(c) => (&c.shape, 8),
            };
            acc.saturating_add(crate::limits::elements(shape).saturating_mul(bytes))
        });
        crate::limits::check_bytes("the rebuilt dense arrays", total)?;
        let mut entries = self.kept.clone();
        for (name, c) in &self.tensors {
            entries.push(Entry::Weight(Weight::new(
                name.clone(),
                c.dtype(),
                c.to_dense()?,
            )));
        }
        Ok(SafetensorsFile {
            entries,
            metadata: self.metadata.clone(),
        })
    }
}

fn cores_of<T: Scalar>(name: &str, c: &CompressedTensor<T>) -> Vec<(String, DenseArray)> {
    c.decomposition
        .cores()
        .into_iter()
        .map(|(s, a)| (format!("{name}/{s}"), DenseArray::from_array(a)))
        .collect()
}

// ---------------------------------------------------------------------------------------
// whole models
// ---------------------------------------------------------------------------------------

/// Which weights of a model to compress, and how.
#[derive(Clone, Debug, PartialEq)]
pub struct CompressOptions {
    /// The target format.
    pub format: FormatKind,
    /// The truncation rule applied to every weight.
    pub rule: Truncation,
    /// Name patterns: a weight is compressed if it matches any (all when empty). A pattern
    /// with `*` or `?` is a glob over the whole name, any other a substring.
    pub include: Vec<String>,
    /// Weights with fewer entries are kept dense.
    pub min_size: usize,
    /// Number of mode pairs `d` for the tensorization; [`auto_order`] when `None`.
    pub order: Option<usize>,
    /// Block count and ALS settings of the block-term format.
    pub bt: BtOptions,
}

impl CompressOptions {
    /// Compress every 2-D float weight of at least 4096 entries into `format` under `rule`.
    pub fn new(format: FormatKind, rule: Truncation) -> Self {
        Self {
            format,
            rule,
            include: Vec::new(),
            min_size: 4096,
            order: None,
            bt: BtOptions::default(),
        }
    }

    /// True when `name` matches the include patterns.
    pub fn matches(&self, name: &str) -> bool {
        self.include.is_empty() || self.include.iter().any(|p| pattern_matches(p, name))
    }
}

/// Glob (`*`, `?`) when the pattern has wildcards, else substring.
fn pattern_matches(pattern: &str, name: &str) -> bool {
    if !pattern.contains(['*', '?']) {
        return name.contains(pattern);
    }
    let p: Vec<char> = pattern.chars().collect();
    let s: Vec<char> = name.chars().collect();
    // Iterative wildcard matching with backtracking to the last '*'.
    let (mut i, mut j, mut star, mut mark) = (0, 0, None, 0);
    while j < s.len() {
        if i < p.len() && (p[i] == '?' || p[i] == s[j]) {
            i += 1;
            j += 1;
        } else if i < p.len() && p[i] == '*' {
            star = Some(i);
            mark = j;
            i += 1;
        } else if let Some(st) = star {
            i = st + 1;
            mark += 1;
            j = mark;
        } else {
            return false;
        }
    }
    p[i..].iter().all(|&c| c == '*')
}

/// Compresses every matching 2-D float weight of a model: balanced modes of order
/// `opts.order` (automatic by default), the format's decomposition under `opts.rule`,
/// the error measured. Weights that do not match, are smaller than `opts.min_size`, are
/// not 2-D or not float, or would not get smaller are kept unchanged.
///
/// Returns the compressed file and one report per entry (kept ones included, with
/// `format == None` and the reason).
///
/// # Errors
/// [`Error::InvalidParameter`] for an invalid rule or BT options, or
/// `order == Some(0)`; the format's errors for a weight with NaN/Inf entries (the report
/// names it).
pub fn compress_model(
    model: &SafetensorsFile,
    opts: &CompressOptions,
) -> Result<(CompressedFile, Vec<TensorReport>)> {
    opts.rule.check()?;
    opts.bt.check()?;
    if opts.order == Some(0) {
        return Err(Error::param("order", "must be at least 1"));
    }
    let mut out = CompressedFile {
        metadata: model.metadata.clone(),
        ..CompressedFile::default()
    };
    out.metadata.remove(METADATA_KEY);
    let mut reports = Vec::new();
    for entry in &model.entries {
        let keep = |why: String| TensorReport {
            name: entry.name().to_string(),
            format: None,
            shape: entry.shape().to_vec(),
            modes: None,
            padding: [0, 0],
            tree: None,
            blocks: None,
            ranks: Vec::new(),
            dense_params: entry.shape().iter().product(),
            params: entry.shape().iter().product(),
            ratio: 1.0,
            rel_error: 0.0,
            rel_error_bound: 0.0,
            sweeps: None,
            converged: None,
            trials: None,
            norm: match entry {
                Entry::Weight(w) => match &w.data {
                    DenseArray::F32(a) => crate::dense::norm(a.view()).as_f64(),
                    DenseArray::F64(a) => crate::dense::norm(a.view()),
                },
                Entry::Raw(_) => 0.0,
            },
            seconds: 0.0,
            kept_dense: Some(why),
        };
        let w = match entry {
            Entry::Raw(r) => {
                reports.push(keep(format!("dtype {}", r.dtype_name())));
                out.kept.push(entry.clone());
                continue;
            }
            Entry::Weight(w) => w,
        };
        let why = if !opts.matches(&w.name) {
            Some("not included".to_string())
        } else if w.data.is_empty() {
            Some("empty".to_string())
        } else if w.data.shape().len() != 2 {
            Some(format!("{}-D", w.data.shape().len()))
        } else if w.data.len() < opts.min_size {
            Some(format!("below --min-size {}", opts.min_size))
        } else {
            None
        };
        if let Some(why) = why {
            reports.push(keep(why));
            out.kept.push(entry.clone());
            continue;
        }
        let (rows, cols) = (w.data.shape()[0], w.data.shape()[1]);
        let d = opts.order.unwrap_or_else(|| auto_order(rows, cols));
        let dopts = DecomposeOptions {
            matrix: Some(MatrixModes::balanced(rows, cols, d)?),
            bt: opts.bt,
            ..DecomposeOptions::new(opts.format, opts.rule)
        };
        let named = |e: Error| match e {
            Error::NonFinite { context: _, index } => Error::param(
                "model",
                format!(
                    "weight '{}' has a non-finite value at flat index {index}",
                    w.name
                ),
            ),
            other => other,
        };
        let (c, report): (AnyCompressed, TensorReport) = match &w.data {
            DenseArray::F32(a) => {
                let (c, r) = decompose_named(&w.name, w.dtype, a.view(), &dopts).map_err(named)?;
                (c.into(), r)
            }
            DenseArray::F64(a) => {
                let (c, r) = decompose_named(&w.name, w.dtype, a.view(), &dopts).map_err(named)?;
                (c.into(), r)
            }
        };
        if report.params >= report.dense_params {
            reports.push(TensorReport {
                kept_dense: Some(format!("no gain ({} params compressed)", report.params)),
                ..keep(String::new())
            });
            out.kept.push(entry.clone());
            continue;
        }
        reports.push(report);
        out.tensors.push((w.name.clone(), c));
    }
    Ok((out, reports))
}

/// Totals over a set of reports.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Totals {
    /// Entries of all dense arrays.
    pub dense_params: usize,
    /// Stored scalars after compression (kept arrays counted in full).
    pub params: usize,
    /// `dense_params / params`.
    pub ratio: f64,
    /// Relative error of all weights together, `sqrt(Σ e_i² ‖W_i‖²) / sqrt(Σ ‖W_i‖²)`
    /// over the decoded float arrays (kept ones with `e_i = 0`).
    pub rel_error: f64,
    /// Number of compressed arrays.
    pub compressed: usize,
}

/// Sums a set of reports.
pub fn totals(reports: &[TensorReport]) -> Totals {
    let dense_params: usize = reports.iter().map(|r| r.dense_params).sum();
    let params: usize = reports.iter().map(|r| r.params).sum();
    let err2: f64 = reports.iter().map(|r| (r.rel_error * r.norm).powi(2)).sum();
    let norm2: f64 = reports.iter().map(|r| r.norm * r.norm).sum();
    Totals {
        dense_params,
        params,
        ratio: dense_params as f64 / params.max(1) as f64,
        rel_error: if norm2 > 0.0 {
            (err2 / norm2).sqrt()
        } else {
            err2.sqrt()
        },
        compressed: reports.iter().filter(|r| r.format.is_some()).count(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Balanced factors multiply to the padded length, and that length is the input
    /// when it factors well; 57,856 = 2^9 * 113 gets padded.
    #[test]
    fn balanced_factors_pad_only_when_needed() {
        for (len, d) in [
            (1024, 4),
            (768, 3),
            (3072, 4),
            (57_600, 4),
            (7, 2),
            (1, 3),
            (57_856, 4),
        ] {
            let (f, padded) = balanced_factors(len, d);
            assert_eq!(f.len(), d);
            assert_eq!(f.iter().product::<usize>(), padded, "{len} {d}: {f:?}");
            assert!(padded >= len);
            assert!(f.windows(2).all(|w| w[0] <= w[1]));
        }
        assert_eq!(balanced_factors(1024, 4), (vec![4, 4, 8, 8], 1024));
        assert_eq!(balanced_factors(57_600, 4).1, 57_600);
        let (f, padded) = balanced_factors(57_856, 4);
        assert!(padded > 57_856 && padded - 57_856 < 1000, "{f:?} {padded}");
        assert!(*f.last().unwrap() as f64 <= 2.0 * (padded as f64).powf(0.25));
    }

    /// Globs match whole names, other patterns substrings.
    #[test]
    fn patterns() {
        assert!(pattern_matches("*.weight", "layers.0.fc.weight"));
        assert!(!pattern_matches("*.weight", "layers.0.fc.bias"));
        assert!(pattern_matches("layers.?.fc*", "layers.3.fc.weight"));
        assert!(!pattern_matches("layers.?.fc", "layers.3.fc.weight"));
        assert!(pattern_matches("fc", "layers.3.fc.weight"));
        assert!(pattern_matches("*", ""));
    }

    /// Tensorize and matricize are inverse, also with padding.
    #[test]
    fn tensorize_roundtrip() {
        let w = crate::dense::random_normal::<f64>(&[5, 7], 3);
        let m = MatrixModes::new(5, 7, vec![2, 3], vec![4, 2]).unwrap();
        let x = m.tensorize(w.view()).unwrap();
        assert_eq!(x.shape(), &[8, 6]);
        assert_eq!(m.matricize(x.view()).unwrap(), w);
        // Mode k pairs (m_k, n_k): X[(i1 j1), (i2 j2)] = W[i1*3 + i2, j1*2 + j2], here
        // (i1, j1, i2, j2) = (1, 2, 1, 1).
        assert_eq!(x[[4 + 2, 2 + 1]], w[[3 + 1, 2 * 2 + 1]]);
    }

    /// A file holding `x` decomposed into `format` under `rule`, as safetensors.
    fn container<T: Scalar>(
        x: &ArrayD<T>,
        format: FormatKind,
        rule: Truncation,
        matrix: Option<MatrixModes>,
    ) -> (CompressedTensor<T>, TensorReport, SafetensorsFile) {
        let opts = DecomposeOptions {
            matrix,
            ..DecomposeOptions::new(format, rule)
        };
        let (c, report) = decompose(x.view(), &opts).unwrap();
        let file = CompressedFile {
            tensors: vec![("w".into(), c.clone().into())],
            ..CompressedFile::default()
        };
        (c, report, file.to_safetensors().unwrap())
    }

    /// Every format, plain and tensorized, in `T`: the reported error is the measured
    /// one and meets the tolerance, and the container gives back the same decomposition.
    fn every_format_round_trips<T: Scalar>(eps: f64) {
        let x = crate::dense::random_normal::<T>(&[4, 5, 3], 1).mapv(|v| v * v);
        let w = crate::dense::random_normal::<T>(&[6, 10], 2);
        let modes = MatrixModes::new(6, 10, vec![2, 4], vec![3, 4]).unwrap();
        for format in FormatKind::ALL {
            for (input, matrix) in [(&x, None), (&w, Some(modes.clone()))] {
                let (c, report, file) = container(input, format, Truncation::rel(eps), matrix);
                let measured = crate::dense::rel_error(input.view(), c.to_dense().unwrap().view())
                    .unwrap()
                    .as_f64();
                assert_eq!(report.rel_error, measured);
                assert!(measured <= eps, "{format}: {measured}");
                assert_eq!(report.format, Some(format));
                assert_eq!(report.sweeps.is_some(), format == FormatKind::Bt);
                let back = CompressedFile::from_safetensors(file).unwrap();
                assert_eq!(back.tensors.len(), 1);
                assert_eq!(back.tensors[0].1, AnyCompressed::from(c.clone()));
                let meta = back.tensors[0].1.meta("w");
                assert_eq!(meta.ranks, report.ranks);
                assert_eq!(meta.blocks.is_some(), format == FormatKind::Bt);
            }
        }
    }

    /// Every format round-trips through the container within the tolerance, f64.
    #[test]
    fn every_format_round_trips_f64() {
        every_format_round_trips::<f64>(1e-6);
        every_format_round_trips::<f64>(0.3);
    }

    /// Every format round-trips through the container within the tolerance, f32.
    #[test]
    fn every_format_round_trips_f32() {
        every_format_round_trips::<f32>(1e-3);
        every_format_round_trips::<f32>(0.3);
    }

    /// The core names follow the documented scheme.
    #[test]
    fn core_names() {
        let x = crate::dense::random_normal::<f64>(&[3, 4, 5], 3);
        let names = |format| {
            let (_, _, file) = container(&x, format, Truncation::rank(2), None);
            let mut n: Vec<String> = file.entries.iter().map(|e| e.name().to_string()).collect();
            n.sort();
            n
        };
        assert_eq!(names(FormatKind::Tt), ["w/tt/0", "w/tt/1", "w/tt/2"]);
        assert_eq!(names(FormatKind::Tr), ["w/tr/0", "w/tr/1", "w/tr/2"]);
        assert_eq!(
            names(FormatKind::Tucker),
            [
                "w/tucker/core",
                "w/tucker/factor/0",
                "w/tucker/factor/1",
                "w/tucker/factor/2"
            ]
        );
        let bt = names(FormatKind::Bt);
        assert_eq!(bt.len(), 2 * 4);
        assert!(bt.contains(&"w/bt/1/factor/2".to_string()), "{bt:?}");
        assert!(bt.contains(&"w/bt/0/core".to_string()), "{bt:?}");
    }

    /// Edited descriptions and damaged cores are `Error::Corrupt` for every format,
    /// never a panic.
    #[test]
    fn tampered_files_are_corrupt() {
        let x = crate::dense::random_normal::<f64>(&[3, 4, 5], 4);
        type Edit = fn(&mut serde_json::Value);
        let edits: [(&str, Edit); 8] = [
            ("ranks", |m| m["ranks"][0] = 7.into()),
            ("ranks dropped", |m| {
                m["ranks"].as_array_mut().unwrap().pop();
            }),
            ("blocks", |m| m["blocks"] = 3.into()),
            ("tree", |m| m["tree"] = "((0,1),2)".into()),
            ("tensor shape", |m| m["tensor_shape"] = vec![3, 4].into()),
            ("format", |m| {
                let f = if m["format"] == "tucker" {
                    "bt"
                } else {
                    "tucker"
                };
                m["format"] = f.into();
            }),
            ("cores reversed", |m| {
                m["cores"].as_array_mut().unwrap().reverse();
            }),
            ("a core dropped", |m| {
                m["cores"].as_array_mut().unwrap().remove(0);
            }),
        ];
        for format in FormatKind::ALL {
            for (what, edit) in edits {
                let (_, _, mut file) = container(&x, format, Truncation::rank(2), None);
                let mut desc: serde_json::Value =
                    serde_json::from_str(&file.metadata[METADATA_KEY]).unwrap();
                let before = desc.clone();
                edit(&mut desc["tensors"][0]);
                if desc == before {
                    continue; // e.g. a tree already absent
                }
                // With the checksum the edit is refused as such; without it (files
                // written before it existed) the description's validation refuses it.
                let mut checked = file.clone();
                checked
                    .metadata
                    .insert(METADATA_KEY.into(), desc.to_string());
                let r = CompressedFile::from_safetensors(checked);
                assert!(
                    matches!(&r, Err(Error::Corrupt { reason, .. }) if reason.contains("checksum")),
                    "{format}, {what}: {r:?}"
                );
                desc.as_object_mut().unwrap().remove("checksum");
                file.metadata.insert(METADATA_KEY.into(), desc.to_string());
                let r = CompressedFile::from_safetensors(file);
                assert!(
                    matches!(r, Err(Error::Corrupt { .. })),
                    "{format}, {what}: {r:?}"
                );
            }
            // A core of another shape, or with a NaN.
            for damage in 0..2 {
                let (_, _, mut file) = container(&x, format, Truncation::rank(2), None);
                let Entry::Weight(w) = &mut file.entries[0] else {
                    unreachable!("cores are float weights")
                };
                let mut a = w.data.clone().into_array::<f64>();
                if damage == 0 {
                    a = a.insert_axis(ndarray::Axis(0));
                } else {
                    a.iter_mut().for_each(|v| *v = f64::NAN);
                }
                w.data = DenseArray::from_array(a);
                let r = CompressedFile::from_safetensors(file);
                assert!(
                    matches!(r, Err(Error::Corrupt { .. })),
                    "{format}, damage {damage}: {r:?}"
                );
            }
        }
    }

    /// A zero array and a one-entry array decompose exactly in every format and survive
    /// the container.
    #[test]
    fn degenerate_arrays() {
        let zero = ArrayD::<f64>::zeros(IxDyn(&[3, 4, 2]));
        let one = ArrayD::<f64>::from_elem(IxDyn(&[1]), 2.5);
        for format in FormatKind::ALL {
            for x in [&zero, &one] {
                let (c, report, file) = container(x, format, Truncation::rel(1e-6), None);
                assert_eq!(report.rel_error, 0.0, "{format}");
                assert_eq!(&c.to_dense().unwrap(), x);
                let back = CompressedFile::from_safetensors(file).unwrap();
                assert_eq!(
                    &back.tensors[0].1.to_dense().unwrap().into_array::<f64>(),
                    x
                );
            }
        }
    }

    /// A tree is an error for every format but HT; zero blocks is an error for BT.
    #[test]
    fn format_specific_options_are_checked() {
        let x = crate::dense::random_normal::<f64>(&[3, 4, 5], 5);
        for format in FormatKind::ALL {
            let opts = DecomposeOptions {
                tree: Some(DimTree::balanced(3).unwrap()),
                ..DecomposeOptions::new(format, Truncation::rank(2))
            };
            let r = decompose(x.view(), &opts);
            assert_eq!(r.is_ok(), format == FormatKind::Ht, "{format}");
        }
        let opts = DecomposeOptions {
            bt: BtOptions {
                blocks: 0,
                ..BtOptions::default()
            },
            ..DecomposeOptions::new(FormatKind::Bt, Truncation::rank(2))
        };
        assert!(matches!(
            decompose(x.view(), &opts),
            Err(Error::InvalidParameter { .. })
        ));
    }

    /// The block-rank search meets a tight tolerance on a block-term tensor, with the
    /// block count asked for; under a rank cap it reports the error it reached.
    #[test]
    fn bt_rank_search() {
        let x = BtTensor::<f64>::random(&[6, 6, 6], &[2, 2, 2], 2, 7)
            .unwrap()
            .to_dense();
        let opts = DecomposeOptions {
            bt: BtOptions {
                blocks: 2,
                ..BtOptions::default()
            },
            ..DecomposeOptions::new(FormatKind::Bt, Truncation::rel(1e-6))
        };
        let (c, report) = decompose(x.view(), &opts).unwrap();
        assert!(report.rel_error <= 1e-6, "{report:?}");
        assert_eq!(c.decomposition.blocks(), Some(2));
        assert!(report.trials.unwrap() >= 1);
        let capped = DecomposeOptions {
            rule: Truncation::rel(1e-6).with_max_rank(1),
            ..opts
        };
        let (c, report) = decompose(x.view(), &capped).unwrap();
        assert_eq!(c.decomposition.ranks(), vec![1; 6]);
        assert!(report.rel_error > 1e-6, "a rank-1 fit of rank-2 blocks");
        assert!((report.rel_error - report.rel_error_bound).abs() < 1e-9);
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(24))]
        /// For random shapes, formats and tolerances, the measured error of the
        /// reconstruction read back from the container is at most the tolerance.
        #[test]
        fn container_meets_tolerance(
            shape in proptest::collection::vec(1usize..5, 1..4),
            format in proptest::sample::select(FormatKind::ALL.to_vec()),
            eps in proptest::sample::select(vec![1e-8, 1e-3, 0.1, 0.5]),
            seed in 0u64..1000,
        ) {
            let x = crate::dense::random_normal::<f64>(&shape, seed);
            let (_, _, file) = container(&x, format, Truncation::rel(eps), None);
            let back = CompressedFile::from_safetensors(file).unwrap();
            let y = back.tensors[0].1.to_dense().unwrap().into_array::<f64>();
            let err = crate::dense::rel_error(x.view(), y.view()).unwrap();
            proptest::prop_assert!(err <= eps + 1e-12, "{} {:?}: {}", format, shape, err);
        }
    }
}
