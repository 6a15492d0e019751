//! Tensor formats, one folder each: the type that holds a decomposed tensor and keeps its
//! invariants (`mod.rs`), the decomposition that produces it (`decompose.rs`, with the
//! [`Decompose`] impl), rounding (`round.rs`), arithmetic (`arith.rs`),
//! the tensorized-matrix form (`matrix.rs`) and file I/O (`io.rs`). [`FormatKind`] names
//! them.
//!
//! Core layout conventions, written once:
//! - HT leaf basis `U_t`: `(n_t, k_t)`; HT transfer tensor `B_t`: `(k_left, k_right, k_t)`,
//!   root rank `k_root = 1`.
//! - TT core `G_k`: `(r_k, n_k, r_{k+1})`, `r_0 = r_d = 1`; TR core `Z_k`: `(r_k, n_k,
//!   r_{k+1})` with `r_d = r_0` (the ring closes by a trace).
//! - Tucker core `G`: `(R_1, .., R_d)`; Tucker factor `U_k`: `(n_k, R_k)`; a block-term
//!   tensor is a list of such Tucker blocks.
//!
//! # Matrix forms and their core layouts
//! Indices: `i = (i_1..i_d)` over the output modes, `j = (j_1..j_d)` over the input modes
//! (both row-major, see [`shape`](crate::matrices::shape)).
//!
//! | type | cores (storage order) | `W[i, j]` | parameters |
//! |---|---|---|---|
//! | [`DenseMatrix`](crate::matrices::DenseMatrix) | `W (M, N)` | itself | `M N` |
//! | [`HtMatrix`](crate::HtMatrix) | leaf `U_k (n_k, m_k, r_k)`, transfer `B_t (r_l, r_r, r_t)` on a [`DimTree`], root rank 1 | the HT tensor with paired modes `(j_k, i_k)` | `Σ_k n_k m_k r_k + Σ_interior r_l r_r r_t` |
//! | [`TtMatrix`](crate::TtMatrix) | `G_k (r_{k-1}, m_k, n_k, r_k)`, `r_0 = r_d = 1` | `G_1[:, i_1, j_1, :] ⋯ G_d[:, i_d, j_d, :]` | `Σ_k r_{k-1} m_k n_k r_k` |
//! | [`TrMatrix`](crate::TrMatrix), paired | `G_k (r_{k-1}, m_k, n_k, r_k)`, `r_0 = r_d` | `Tr(G_1[:, i_1, j_1, :] ⋯ G_d[:, i_d, j_d, :])` | `Σ_k r_{k-1} m_k n_k r_k` |
//! | [`TrMatrix`](crate::TrMatrix), split (TR-LSTM) | inputs `I_k (r, n_k, r)`, then outputs `O_k (r, m_k, r)`, one ring | `Tr(I_1[j_1] ⋯ I_d[j_d] O_1[i_1] ⋯ O_d[i_d])` | `Σ_k r n_k r + Σ_k r m_k r` |
//! | [`BtMatrix`](crate::BtMatrix) | per block: factors `A_k (n_k m_k, R_k)`, core `G (R_1, .., R_d)` | `Σ_blocks Σ_r G[r] Π_k A_k[j_k m_k + i_k, r_k]` | `N_b (Σ_k n_k m_k R_k + Π_k R_k)` |
//!
//! HT and block-term matrices pair the modes as `(j_k, i_k)` (input index major, so a leaf
//! `(n_k, m_k, r_k)` is the HT leaf basis of the paired mode reshaped); TT and paired-TR
//! cores hold `(i_k, j_k)` in the TT-matrix order of Oseledets (2010) and `ttpy`.

mod als;
pub mod bt;
mod checks;
mod cores;
mod file;
pub mod ht;
pub mod tr;
pub mod tt;
pub mod tucker;

pub use als::{AlsOptions, AlsReport};
pub(crate) use file::StoredLayout;

use std::fmt;

use ndarray::{ArrayD, ArrayViewD};
use serde::{Deserialize, Serialize};

use crate::formats::bt::BtOptions;
use crate::formats::file::Stored;
use crate::linalg::Sketch;
use crate::{
    AsRule, BtTensor, CheckedRule, Decompose, DimTree, Error, Factorized, HtTensor, Result, Scalar,
    TrTensor, TruncationInfo, TtTensor, TuckerTensor,
};

/// The tensor formats: the one enum the compressed container, the command-line tool
/// (`--format`) and the model zoo ([`ModelKind`](crate::models::zoo::ModelKind)) use.
///
/// # Example
/// ```
/// use tnet::formats::FormatKind;
/// let f: FormatKind = "tt".parse().unwrap();
/// assert_eq!(f, FormatKind::Tt);
/// assert_eq!(f.to_string(), "tt");
/// assert!("cp".parse::<FormatKind>().is_err());
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
#[serde(rename_all = "lowercase")]
pub enum FormatKind {
    /// Hierarchical Tucker.
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
                let names: Vec<&str> = Self::ALL.iter().map(|f| f.name()).collect();
                Error::param(
                    "format",
                    format!(
                        "unknown format '{s}' (expected one of {})",
                        names.join(", ")
                    ),
                )
            })
    }
}

/// How a decomposition finds its factors.
///
/// # Example
/// ```
/// use tnet::formats::Method;
/// use tnet::linalg::Sketch;
/// assert_eq!(Method::default(), Method::Svd);
/// assert_eq!(Method::Randomized(Sketch::new(1)).name(), "randomized");
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    /// Truncated SVDs of the unfoldings (HT-SVD, TT-SVD, TR-SVD, ST-HOSVD; BT-ALS for BT).
    #[default]
    Svd,
    /// Randomized range finders with this sketch ([`ht::ht_randomized`],
    /// [`tt::tt_randomized`], [`tucker::st_hosvd_randomized`]); HT, TT and Tucker only.
    Randomized(Sketch),
}

impl Method {
    /// `"svd"` or `"randomized"`.
    pub fn name(&self) -> &'static str {
        match self {
            Method::Svd => "svd",
            Method::Randomized(_) => "randomized",
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
    /// Returns the decomposition and what was discarded (`error_bound`; for BT the
    /// achieved error and `fit`).
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] for an invalid rule or `bt`, or a `tree` with a
    /// format other than HT; the format's own errors (empty or non-finite input, a tree
    /// of the wrong order).
    pub fn decompose(
        format: FormatKind,
        x: ArrayViewD<'_, T>,
        tree: Option<&DimTree>,
        rule: &impl AsRule,
        bt: &BtOptions,
    ) -> Result<(Self, TruncationInfo<T>)> {
        Self::decompose_with(Method::Svd, format, x, tree, rule, bt)
    }

    /// Decomposes a dense tensor into `format` under `rule` by randomized range finders
    /// with `sketch`: [`ht::ht_randomized`] (on `tree`, balanced by default),
    /// [`tt::tt_randomized`] or [`tucker::st_hosvd_randomized`]. `info.error_bound` is
    /// an a posteriori bound computed from the sketches (see those functions).
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] for TR and BT (no randomized variant), an invalid
    /// rule, or a `tree` with a format other than HT; the format's own errors.
    pub fn decompose_randomized(
        format: FormatKind,
        x: ArrayViewD<'_, T>,
        tree: Option<&DimTree>,
        rule: &impl AsRule,
        sketch: &Sketch,
    ) -> Result<(Self, TruncationInfo<T>)> {
        let bt = BtOptions::default();
        Self::decompose_with(Method::Randomized(*sketch), format, x, tree, rule, &bt)
    }

    /// Decomposes with `method`: [`Decomposition::decompose`] or
    /// [`Decomposition::decompose_randomized`] (`bt` is used by BT only).
    ///
    /// # Errors
    /// As those.
    pub fn decompose_with(
        method: Method,
        format: FormatKind,
        x: ArrayViewD<'_, T>,
        tree: Option<&DimTree>,
        rule: &impl AsRule,
        bt: &BtOptions,
    ) -> Result<(Self, TruncationInfo<T>)> {
        let rule = &rule.as_rule()?;
        if tree.is_some() && format != FormatKind::Ht {
            return Err(Error::param(
                "tree",
                format!("only the ht format has a dimension tree, not {format}"),
            ));
        }
        let sketch = match method {
            Method::Svd => None,
            Method::Randomized(s) => Some(s),
        };
        if let Some(sketch) = sketch {
            return Ok(match format {
                FormatKind::Ht => {
                    let tree = match tree {
                        Some(t) => t.clone(),
                        None => DimTree::balanced(x.ndim())?,
                    };
                    let (y, info) = ht::ht_randomized(x, &tree, rule, &sketch)?;
                    (Decomposition::Ht(y), info)
                }
                FormatKind::Tt => {
                    let (y, info) = tt::tt_randomized(x, rule, &sketch)?;
                    (Decomposition::Tt(y), info)
                }
                FormatKind::Tucker => {
                    let (y, info) = tucker::st_hosvd_randomized(x, rule, &sketch)?;
                    (Decomposition::Tucker(y), info)
                }
                FormatKind::Tr | FormatKind::Bt => {
                    return Err(Error::param(
                        "method",
                        format!(
                            "the randomized method exists for ht, tt and tucker, not {format}; use the svd method"
                        ),
                    ));
                }
            });
        }
        /// The format's construction with the given structure, or its default.
        fn run<T: Scalar, F: Decompose<T>>(
            x: ArrayViewD<'_, T>,
            structure: Option<&F::Structure>,
            rule: &CheckedRule,
        ) -> Result<(F, TruncationInfo<T>)> {
            match structure {
                Some(s) => F::decompose(x, s, rule),
                None => {
                    let s = F::default_structure(x.ndim())?;
                    F::decompose(x, &s, rule)
                }
            }
        }
        Ok(match format {
            FormatKind::Ht => {
                let (y, info) = run::<T, HtTensor<T>>(x, tree, rule)?;
                (Decomposition::Ht(y), info)
            }
            FormatKind::Tt => {
                let (y, info) = run::<T, TtTensor<T>>(x, None, rule)?;
                (Decomposition::Tt(y), info)
            }
            FormatKind::Tr => {
                let (y, info) = run::<T, TrTensor<T>>(x, None, rule)?;
                (Decomposition::Tr(y), info)
            }
            FormatKind::Tucker => {
                let (y, info) = run::<T, TuckerTensor<T>>(x, None, rule)?;
                (Decomposition::Tucker(y), info)
            }
            FormatKind::Bt => {
                let (y, info) = run::<T, BtTensor<T>>(x, Some(bt), rule)?;
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

    /// `‖X − self‖_F` without forming `self` densely (see [`Factorized::distance`]).
    ///
    /// # Errors
    /// [`Error::ShapeMismatch`] if the shapes differ.
    pub fn distance(&self, x: ArrayViewD<'_, T>) -> Result<T> {
        match self {
            Decomposition::Ht(y) => y.distance(x),
            Decomposition::Tt(y) => y.distance(x),
            Decomposition::Tr(y) => y.distance(x),
            Decomposition::Tucker(y) => y.distance(x),
            Decomposition::Bt(y) => y.distance(x),
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

    /// The names of the cores in the compressed container, in the format's order
    /// (`"tt/0"`, `"ht/3"`, `"bt/1/factor/2"`, ..; see
    /// [`CompressedFile`](crate::compress::CompressedFile)).
    pub fn core_names(&self) -> Vec<String> {
        match self {
            Decomposition::Ht(x) => x.core_names(),
            Decomposition::Tt(x) => x.core_names(),
            Decomposition::Tr(x) => x.core_names(),
            Decomposition::Tucker(x) => x.core_names(),
            Decomposition::Bt(x) => x.core_names(),
        }
    }

    /// The cores in the order of [`core_names`](Self::core_names).
    pub fn core_arrays(&self) -> Vec<ArrayD<T>> {
        match self {
            Decomposition::Ht(x) => x.core_arrays(),
            Decomposition::Tt(x) => x.core_arrays(),
            Decomposition::Tr(x) => x.core_arrays(),
            Decomposition::Tucker(x) => x.core_arrays(),
            Decomposition::Bt(x) => x.core_arrays(),
        }
    }

    /// Rebuilds a tensor of `format` from its stored cores, validated by the format's
    /// checked constructor; anything inconsistent is [`Error::Corrupt`].
    pub(crate) fn from_stored(
        format: FormatKind,
        layout: &StoredLayout<'_>,
        cores: Vec<ArrayD<T>>,
    ) -> Result<Self> {
        Ok(match format {
            FormatKind::Ht => Decomposition::Ht(Stored::from_stored(layout, cores)?),
            FormatKind::Tt => Decomposition::Tt(Stored::from_stored(layout, cores)?),
            FormatKind::Tr => Decomposition::Tr(Stored::from_stored(layout, cores)?),
            FormatKind::Tucker => Decomposition::Tucker(Stored::from_stored(layout, cores)?),
            FormatKind::Bt => Decomposition::Bt(Stored::from_stored(layout, cores)?),
        })
    }
}
