//! One way to build every model of the FDHT-LSTM comparison (Yin et al., CVPR 2021).
//!
//! | [`ModelKind`] | wiring | maps | paper |
//! |---|---|---|---|
//! | `dense` | separate | dense `W_x` (`4H x N`), dense `U` (`4H x H`) | the uncompressed LSTM |
//! | `tt` | separate | TT-matrix `W_x`, dense `U` | TT-LSTM (Yang et al., ICML 2017) |
//! | `tr` | separate | TR-matrix `W_x` (split layout), dense `U` | TR-LSTM (Pan et al., AAAI 2019) |
//! | `bt` | separate | block-term `W_x`, dense `U` | BT-LSTM (Ye et al., CVPR 2018) |
//! | `ht` | separate | HT-matrix `W_x` ([`HtLayout`]), dense `U` | HT-LSTM (Yin et al., 2020) |
//! | `fdht` | fused | one HT-matrix `W` (`4H x P`, [`HtLayout`]) on `[x ; h ; 0]` | FDHT-LSTM (Yin et al., CVPR 2021) |
//! | `fd-tt`, `fd-tr`, `fd-bt` | fused | one TT / TR (split) / BT matrix `W` | fully decomposed relatives |
//!
//! All use a dense classifier on the last hidden state (or the pooled states, see
//! [`LstmConfig`]).
//!
//! # Tensorized shapes
//! With `d = spec.order` modes, the output length `4H` is factored as
//! `(4 a_1, a_2, .., a_d)` with `(a_1 >= .. >= a_d) = factorize(H, d)`: the gate factor 4
//! sits on the first output mode (for `H = 256`, `d = 4`: `16x4x4x4`, as in TT-LSTM). The
//! input length (`N` separate, `N + H` fused) is factored by
//! [`pad_to_factorable`] with the bound
//! `max(2, ⌈2 L^{1/d}⌉)` on every factor: a length that factors well is kept, one with a
//! large prime factor is zero-padded to the next length that factors under the bound
//! (`N + H = 57,856 = 2^9 · 113` at `d = 4`, bound 31, pads to
//! `57,915 = 27x15x13x11`). Input
//! mode `k` is paired with output mode `k`. [`ModelSpec::with_modes`] sets both mode
//! lists explicitly (e.g. the published `8x20x20x18` input modes of UCF11).
//!
//! HT maps put these modes on a tree by [`ModelSpec::ht_layout`]: `Split` (the default)
//! on a balanced tree over `2d` leaves, input modes under one child of the root and
//! output modes under the other ([`MatrixShape::split`]); `Paired`, leaf `k` holding input
//! mode `k` and output mode `k` on a balanced tree over `d` leaves.
//!
//! Ranks: `spec.rank` for every bond (TT, TR), every HT node below the root (capped where
//! admissible, see [`HtMatrix::random`](crate::matrices::MatrixFormat::random)), every BT
//! mode rank with `spec.blocks` blocks. The maps are initialised by
//! [`MatrixFormat::random`] with `spec.init` (every draw scaled so that `‖W‖_F² = M N
//! Var` exactly); `U` is orthogonal and the classifier Glorot, as in [`Lstm::dense`], with
//! the same sub-seeds.
//!
//! # Parameter counts (UCF11 sizes: `N = 57,600`, `H = 256`, input modes `8x20x20x18`,
//! output `16x4x4x4`, rank 4)
//! TT `W_x`: `Σ_k r_{k-1} m_k n_k r_k = 3,360`; BT (2 blocks):
//! `N_b (Σ_k n_k m_k R + R^4) = 3,392`; both plus the dense `U` (262,144) and the bias.
//! FDHT with rank `r` over `d = 4` paired leaves: `r Σ_k n_k m_k + 2 r^3 + r^2` and the
//! bias; split (8 leaves, every rank admissible): `r (Σ_k n_k + Σ_k m_k) + 6 r^3 + r^2`.
//!
//! # Example
//! ```
//! use tnet::models::{LstmConfig, zoo::{self, ModelKind, ModelSpec}};
//! let config = LstmConfig::new(30, 8);
//! let spec = ModelSpec::new("fdht".parse().unwrap(), 3);
//! let model = zoo::build::<f64>(&spec, &config, 4, 0).unwrap();
//! let x = tnet::dense::random_normal::<f64>(&[2, 5, 30], 1).into_dimensionality().unwrap();
//! assert_eq!(model.logits(x.view()).unwrap().dim(), (2, 4));
//! assert_eq!(spec.kind, ModelKind::FDHT);
//! assert!(zoo::build::<f64>(&ModelSpec::new(ModelKind::TT, 0), &config, 4, 0).is_err());
//! ```

use std::fmt;
use std::str::FromStr;

use ndarray::{Array2, ArrayView2, s};
use serde::{Deserialize, Serialize};

use super::config::{LstmConfig, PadPosition, Wiring};
use super::derive_seed;
use super::head::Classifier;
use super::lstm::{Lstm, Part, h_offset};
use crate::matrices::{
    DenseMatrix, Init, LinearMap, MatrixFormat, MatrixShape, Padded, TensorizedMatrix, factorize,
    pad_to_factorable,
};
use crate::{AsRule, CheckedRule, DimTree, Error, FormatKind, Result, Scalar};
use crate::{BtMatrix, HtMatrix, TrLayout, TrMatrix, TtMatrix};

/// How a model's tensorized map is wired into the LSTM (the second half of a
/// [`ModelKind`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MapWiring {
    /// A tensorized input map `W_x` and a dense recurrent map `U` (TT-, TR-, BT-,
    /// HT-LSTM); for the dense kind, both maps dense.
    Separate,
    /// One tensorized map on `[x ; h]` (FDHT-LSTM and its relatives).
    Fused,
}

/// A model of the FDHT-LSTM comparison: a tensor format (none for the dense LSTM) and a
/// [`MapWiring`]. See the [module docs](self) for the nine kinds.
///
/// The kinds are written as names (`"dense"`, `"tt"`, `"tr"`, `"bt"`, `"ht"`, `"fdht"`,
/// `"fd-tt"`, `"fd-tr"`, `"fd-bt"`) by [`Display`](fmt::Display), [`FromStr`] and serde.
///
/// # Example
/// ```
/// use tnet::FormatKind;
/// use tnet::models::zoo::{MapWiring, ModelKind};
/// let k = ModelKind::new(Some(FormatKind::Ht), MapWiring::Fused).unwrap();
/// assert_eq!(k, ModelKind::FDHT);
/// assert_eq!(k.to_string(), "fdht");
/// assert_eq!("fd-tt".parse::<ModelKind>().unwrap().format(), Some(FormatKind::Tt));
/// // Tucker has no matrix layer; the dense LSTM has no fused form.
/// assert!(ModelKind::new(Some(FormatKind::Tucker), MapWiring::Separate).is_err());
/// assert!(ModelKind::new(None, MapWiring::Fused).is_err());
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub struct ModelKind {
    format: Option<FormatKind>,
    wiring: MapWiring,
}

impl ModelKind {
    const fn of(format: Option<FormatKind>, wiring: MapWiring) -> Self {
        Self { format, wiring }
    }

    /// The uncompressed LSTM.
    pub const DENSE: Self = Self::of(None, MapWiring::Separate);
    /// TT-LSTM: TT-matrix input map, dense recurrent map.
    pub const TT: Self = Self::of(Some(FormatKind::Tt), MapWiring::Separate);
    /// TR-LSTM: tensor-ring input map (split layout), dense recurrent map.
    pub const TR: Self = Self::of(Some(FormatKind::Tr), MapWiring::Separate);
    /// BT-LSTM: block-term input map, dense recurrent map.
    pub const BT: Self = Self::of(Some(FormatKind::Bt), MapWiring::Separate);
    /// HT-LSTM: HT-matrix input map, dense recurrent map.
    pub const HT: Self = Self::of(Some(FormatKind::Ht), MapWiring::Separate);
    /// FDHT-LSTM: one HT-matrix on `[x ; h]`.
    pub const FDHT: Self = Self::of(Some(FormatKind::Ht), MapWiring::Fused);
    /// Fully decomposed TT: one TT-matrix on `[x ; h]`.
    pub const FD_TT: Self = Self::of(Some(FormatKind::Tt), MapWiring::Fused);
    /// Fully decomposed TR: one TR-matrix (split layout) on `[x ; h]`.
    pub const FD_TR: Self = Self::of(Some(FormatKind::Tr), MapWiring::Fused);
    /// Fully decomposed BT: one block-term matrix on `[x ; h]`.
    pub const FD_BT: Self = Self::of(Some(FormatKind::Bt), MapWiring::Fused);

    /// Every kind, in the order of the module docs.
    pub const ALL: [ModelKind; 9] = [
        Self::DENSE,
        Self::TT,
        Self::TR,
        Self::BT,
        Self::HT,
        Self::FDHT,
        Self::FD_TT,
        Self::FD_TR,
        Self::FD_BT,
    ];

    /// The kind of a format and a wiring.
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] for a format without a matrix layer (Tucker) or the
    /// dense LSTM fused.
    pub fn new(format: Option<FormatKind>, wiring: MapWiring) -> Result<Self> {
        match (format, wiring) {
            (Some(FormatKind::Tucker), _) => Err(Error::param(
                "model kind",
                "the tucker format has no matrix layer (use ht, tt, tr or bt)",
            )),
            (None, MapWiring::Fused) => Err(Error::param(
                "model kind",
                "the dense LSTM has no fused form",
            )),
            (None, MapWiring::Separate)
            | (Some(FormatKind::Ht | FormatKind::Tt | FormatKind::Tr | FormatKind::Bt), _) => {
                Ok(Self::of(format, wiring))
            }
        }
    }

    /// The format of the tensorized map, `None` for the dense LSTM.
    pub fn format(self) -> Option<FormatKind> {
        self.format
    }

    /// How the map is wired.
    pub fn wiring(self) -> MapWiring {
        self.wiring
    }

    /// The name used by [`Display`](fmt::Display), [`FromStr`] and serde: `"dense"`,
    /// `"tt"`, `"tr"`, `"bt"`, `"ht"`, `"fdht"`, `"fd-tt"`, `"fd-tr"`, `"fd-bt"`.
    pub fn name(self) -> &'static str {
        match (self.format, self.wiring) {
            (None, _) => "dense",
            (Some(f), MapWiring::Separate) => f.name(),
            (Some(FormatKind::Ht), MapWiring::Fused) => "fdht",
            (Some(FormatKind::Tt), MapWiring::Fused) => "fd-tt",
            (Some(FormatKind::Tr), MapWiring::Fused) => "fd-tr",
            (Some(FormatKind::Bt), MapWiring::Fused) => "fd-bt",
            (Some(FormatKind::Tucker), MapWiring::Fused) => {
                unreachable!("refused by ModelKind::new")
            }
        }
    }

    /// Whether the kind uses the fused wiring (one map on `[x ; h]`).
    pub fn is_fused(self) -> bool {
        self.wiring == MapWiring::Fused
    }
}

impl fmt::Display for ModelKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for ModelKind {
    type Err = Error;

    /// Parses a [`name`](ModelKind::name) (ASCII case-insensitive).
    fn from_str(s: &str) -> Result<Self> {
        ModelKind::ALL
            .into_iter()
            .find(|k| k.name().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| {
                let names: Vec<&str> = ModelKind::ALL.iter().map(|k| k.name()).collect();
                Error::param(
                    "model kind",
                    format!("unknown kind {s:?}; expected one of {}", names.join(", ")),
                )
            })
    }
}

impl From<ModelKind> for String {
    fn from(k: ModelKind) -> String {
        k.name().to_string()
    }
}

impl TryFrom<String> for ModelKind {
    type Error = Error;
    fn try_from(s: String) -> Result<Self> {
        s.parse()
    }
}

/// Where an HT map ([`ModelKind::HT`], [`ModelKind::FDHT`]) puts the input and output
/// modes of `W` on its dimension tree.
///
/// - `Paired`: leaf `k` holds input mode `n_k` *and* output mode `m_k` (`U_k` of shape
///   `(n_k, m_k, r)`) on a balanced tree over `d` leaves, the HT-matrix of the FDHT
///   paper's description. The output index then enters at every leaf: hidden unit `i`
///   has its own filter over the input, assembled from per-digit core slices selected by
///   `i`'s digits.
/// - `Split`: `2d` leaves, the input modes under one child of the root and the output
///   modes under the other ([`MatrixShape::split`] on a balanced tree over `2d` leaves).
///   Then `W = O B I` with `I` (`r x N`, an HT tensor over the input modes) a small set of
///   features shared by every gate and hidden unit, and `O` (`4H x r`) mixing them, the
///   shared-feature structure of the TR-LSTM's split ring. Same format, same algorithms;
///   only the tree differs. `W` has matrix rank at most `r`: every gate of every unit
///   reads `[x ; h]` through the same `r` features.
/// - `Kronecker`: `2d` leaves on [`MatrixShape::kronecker_split`]'s tree: the root
///   separates the first `ceil(d/2)` mode pairs from the rest, and each half is split
///   into its input and its output modes. Then `W = sum_{k<r} A_k (x) B_k` with every
///   `A_k`, `B_k` of rank at most `r`: the input is read through `r^2` features
///   (`V_A^T Z V_B` for `z` matricised by the two halves of its digits), `W` can have
///   full rank, and a step costs what the split tree's does. Same parameter count as
///   `Split` at the same rank.
///
/// **Measured**: on a speed-discrimination video task (four classes: slow or fast motion
/// to the left or right, 30x40x3 frames, 960 training clips) the paired FDHT-LSTM stayed
/// at 25-38 % test accuracy (chance 25 %) at ranks 4 and 12 and the split one reached
/// 62-83 % (seeds 1-3), against 78-90 % for the TR-LSTM with 5,088 parameters; the split
/// tree is also cheaper per step (the input is contracted with `r` features instead of
/// `m_1 r`). On the flagship's hard video task (`fdht_video --task hard`, 9,600 training
/// clips, up to 60 epochs, seeds 0-2) `Kronecker` beats `Split` at rank 8 (73.3 against
/// 70.2 % test accuracy; with dropout 0.1, 77.4 against 66.3 %), but most of its runs
/// start on a plateau at chance for 2-7 epochs, so on the short speed task of
/// `tests/video_learning.rs` (800 training clips, 25 epochs: 1,250 steps) it reaches only
/// 57.5 % (rank 4) and 45.0 % (rank 12) where `Split` passes its 75 %.
/// `Split` is the default of [`ModelSpec::new`]; the flagship example uses `Kronecker`
/// (docs/lstm.md, "The HT layout", item 9). `Paired` (the
/// [`Default`] of the enum, so that specs serialised before the field existed read back
/// as built) is kept for the paper's layout. Details in `docs/lstm.md`, "The HT layout".
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum HtLayout {
    /// Leaf `k` pairs input mode `k` with output mode `k` (`d` leaves).
    #[default]
    Paired,
    /// Input modes and output modes on separate leaves, split at the root (`2d` leaves).
    Split,
    /// `2d` leaves; the root separates the first half of the mode pairs from the second,
    /// and each half is split into its input and its output modes
    /// ([`MatrixShape::kronecker_split`]): `W = sum_{k<r} A_k (x) B_k`.
    Kronecker,
}

impl HtLayout {
    /// `"paired"`, `"split"` or `"kronecker"`.
    pub fn name(self) -> &'static str {
        match self {
            HtLayout::Paired => "paired",
            HtLayout::Split => "split",
            HtLayout::Kronecker => "kronecker",
        }
    }
}

impl fmt::Display for HtLayout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for HtLayout {
    type Err = Error;

    /// Parses `"paired"`, `"split"` or `"kronecker"` (ASCII case-insensitive).
    fn from_str(s: &str) -> Result<Self> {
        [HtLayout::Paired, HtLayout::Split, HtLayout::Kronecker]
            .into_iter()
            .find(|l| l.name().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| {
                Error::param(
                    "ht layout",
                    format!("unknown layout {s:?}; expected paired, split or kronecker"),
                )
            })
    }
}

/// What to build: the kind, its rank, the number of modes, BT blocks, the layout of HT
/// maps, the initialisation and optionally explicit modes.
///
/// # Example
/// ```
/// use tnet::models::zoo::{ModelKind, ModelSpec};
/// let spec = ModelSpec::new(ModelKind::BT, 4).with_order(3).with_blocks(1);
/// assert_eq!((spec.rank, spec.order, spec.blocks), (4, 3, 1));
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ModelSpec {
    /// The model kind.
    pub kind: ModelKind,
    /// The rank of every bond (ignored by [`ModelKind::DENSE`], but must be >= 1).
    pub rank: usize,
    /// The number of modes `d` of the tensorized map.
    pub order: usize,
    /// The number of blocks of the block-term kinds.
    pub blocks: usize,
    /// The initialisation of the tensorized map (see [`Init`]).
    pub init: Init,
    /// Explicit `(output modes, input modes)` of the tensorized map, overriding the
    /// automatic factorization (see [`with_modes`](Self::with_modes)).
    pub modes: Option<(Vec<usize>, Vec<usize>)>,
    /// The tree layout of the HT kinds (ignored by the others). Specs serialised before
    /// the field existed read as [`HtLayout::Paired`], the layout they were built with.
    #[serde(default)]
    pub ht_layout: HtLayout,
}

impl ModelSpec {
    /// A spec with order 4, 2 blocks, Glorot initialisation, automatic modes and the
    /// [`Split`](HtLayout::Split) layout for HT maps.
    pub fn new(kind: ModelKind, rank: usize) -> Self {
        Self {
            kind,
            rank,
            order: 4,
            blocks: 2,
            init: Init::Glorot,
            modes: None,
            ht_layout: HtLayout::Split,
        }
    }

    /// Sets the tree layout of the HT kinds.
    pub fn with_ht_layout(mut self, layout: HtLayout) -> Self {
        self.ht_layout = layout;
        self
    }

    /// The same spec with the largest rank whose model has at most `budget` LSTM
    /// parameters (maps and gate bias, [`ParamCount::lstm`]; the classifier is the same for
    /// every kind and is not counted), so that kinds can be compared at equal size. The
    /// modes, tree layout and blocks are kept; the parameter count is non-decreasing in
    /// the rank, so the rank is found by doubling, then bisection, each probe building the
    /// model once (no dense `W` is formed beyond the recurrent `4H x H` of the separate
    /// kinds; `O(log rank)` builds). [`ModelKind::DENSE`] has no rank: it is returned
    /// unchanged if it fits.
    ///
    /// [`ParamCount::lstm`]: super::ParamCount::lstm
    ///
    /// # Errors
    /// As [`build`]; [`Error::InvalidParameter`] (`params`) if even rank 1 (or the dense
    /// LSTM) needs more than `budget`, with the smallest count in the message.
    ///
    /// # Example
    /// ```
    /// use tnet::models::{LstmConfig, zoo::{self, ModelKind, ModelSpec}};
    /// let config = LstmConfig::new(2_304, 64);
    /// let spec = ModelSpec::new(ModelKind::FDHT, 1).with_budget(&config, 5_000).unwrap();
    /// let lstm = zoo::build::<f32>(&spec, &config, 6, 0).unwrap().param_count().lstm();
    /// let above = zoo::build::<f32>(&ModelSpec { rank: spec.rank + 1, ..spec.clone() }, &config, 6, 0)
    ///     .unwrap()
    ///     .param_count()
    ///     .lstm();
    /// assert!(lstm <= 5_000 && above > 5_000);
    /// assert!(ModelSpec::new(ModelKind::TT, 1).with_budget(&config, 1_000).is_err());
    /// ```
    pub fn with_budget(self, config: &LstmConfig, budget: usize) -> Result<Self> {
        let count = |rank: usize| -> Result<usize> {
            let spec = ModelSpec {
                rank,
                ..self.clone()
            };
            Ok(build::<f32>(&spec, config, 2, 0)?.param_count().lstm())
        };
        let smallest = count(1)?;
        if smallest > budget {
            return Err(Error::param(
                "params",
                format!(
                    "a {} model of these sizes has at least {smallest} LSTM parameters, more \
                     than the budget {budget}",
                    self.kind
                ),
            ));
        }
        if self.kind == ModelKind::DENSE {
            return Ok(self);
        }
        // Doubling until the budget is exceeded (or the count stops growing: every rank
        // is capped), then bisection between the last fitting rank and the first not.
        let (mut lo, mut hi) = (1usize, None);
        let mut last = smallest;
        while hi.is_none() && lo < 1 << 12 {
            let next = count(2 * lo)?;
            if next > budget {
                hi = Some(2 * lo);
            } else if next == last {
                break;
            } else {
                lo *= 2;
                last = next;
            }
        }
        if let Some(mut hi) = hi {
            while hi - lo > 1 {
                let mid = lo + (hi - lo) / 2;
                if count(mid)? <= budget {
                    lo = mid;
                } else {
                    hi = mid;
                }
            }
        }
        Ok(ModelSpec { rank: lo, ..self })
    }

    /// The spec whose model comes closest to `budget` LSTM parameters from below over the
    /// number of modes `d` in `orders` *and* the rank: for each order, the automatic modes
    /// of that order (and for HT kinds the balanced tree over them) with the largest rank
    /// that fits ([`with_budget`](Self::with_budget)); of those, the one with the most
    /// parameters, ties going to the lower rank, then to the order of `self`. Orders whose
    /// modes cannot be formed (an input length or `H` without `d` factors) are skipped. A
    /// spec with explicit modes, or the dense kind, is only sized by its rank.
    ///
    /// Cost: `O(|orders| log rank)` model builds.
    ///
    /// # Errors
    /// As [`with_budget`](Self::with_budget) when no order fits: the error of `self`'s
    /// order.
    ///
    /// # Example
    /// ```
    /// use tnet::models::{LstmConfig, zoo::{self, ModelKind, ModelSpec}};
    /// let config = LstmConfig::new(2_304, 64);
    /// let budget = 3_000;
    /// let fixed = ModelSpec::new(ModelKind::FDHT, 1).with_budget(&config, budget);
    /// let best = ModelSpec::new(ModelKind::FDHT, 1).with_budget_over_orders(&config, budget, 2..=6).unwrap();
    /// let lstm = |s: &ModelSpec| zoo::build::<f32>(s, &config, 6, 0).unwrap().param_count().lstm();
    /// assert!(lstm(&best) <= budget);
    /// if let Ok(fixed) = fixed {
    ///     assert!(lstm(&best) >= lstm(&fixed));
    /// }
    /// ```
    pub fn with_budget_over_orders(
        self,
        config: &LstmConfig,
        budget: usize,
        orders: impl IntoIterator<Item = usize>,
    ) -> Result<Self> {
        let own = self.clone().with_budget(config, budget);
        if self.modes.is_some() || self.kind == ModelKind::DENSE {
            return own;
        }
        let lstm = |s: &ModelSpec| -> Result<usize> {
            Ok(build::<f32>(s, config, 2, 0)?.param_count().lstm())
        };
        // (parameters, lower rank first, own order first) ordering key.
        let key = |s: &ModelSpec, n: usize| (n, std::cmp::Reverse(s.rank), s.order == self.order);
        let mut best = match &own {
            Ok(s) => Some((key(s, lstm(s)?), s.clone())),
            Err(_) => None,
        };
        for order in orders {
            if order == self.order || order < 2 {
                continue;
            }
            let Ok(spec) = self.clone().with_order(order).with_budget(config, budget) else {
                continue;
            };
            let k = key(&spec, lstm(&spec)?);
            if best.as_ref().is_none_or(|(b, _)| k > *b) {
                best = Some((k, spec));
            }
        }
        match best {
            Some((_, spec)) => Ok(spec),
            None => own,
        }
    }

    /// The shape and dimension tree of the HT map for the tensorized `shape` (as
    /// [`shape`](Self::shape) returns it): `shape` on a balanced tree over `d` leaves
    /// when paired, [`MatrixShape::split`] on a balanced tree over `2d` leaves when split.
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] for order 0.
    pub fn ht_structure(&self, shape: &MatrixShape) -> Result<(MatrixShape, DimTree)> {
        Ok(match self.ht_layout {
            HtLayout::Paired => (shape.clone(), DimTree::balanced(shape.order())?),
            HtLayout::Split => (shape.split(), DimTree::balanced(2 * shape.order())?),
            HtLayout::Kronecker => {
                let (shape, groups) = shape.kronecker_split();
                (shape, DimTree::from_groups(&groups)?)
            }
        })
    }

    /// Sets the number of modes `d`.
    pub fn with_order(mut self, d: usize) -> Self {
        self.order = d;
        self
    }

    /// Sets the number of blocks of the block-term kinds.
    pub fn with_blocks(mut self, b: usize) -> Self {
        self.blocks = b;
        self
    }

    /// Sets the initialisation of the tensorized map.
    pub fn with_init(mut self, init: Init) -> Self {
        self.init = init;
        self
    }

    /// Sets the modes explicitly (and the order to their number): the output modes must
    /// multiply to `4H`, the input modes to at least the input length (`N` separate,
    /// `N + H` fused; a larger product zero-pads the input).
    pub fn with_modes(mut self, out_modes: Vec<usize>, in_modes: Vec<usize>) -> Self {
        self.order = out_modes.len();
        self.modes = Some((out_modes, in_modes));
        self
    }

    /// Checks the spec on its own.
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] for rank, order or blocks 0, an invalid `init`, or
    /// explicit modes whose number differs from `order`.
    pub fn check(&self) -> Result<()> {
        if self.rank == 0 {
            return Err(Error::param("rank", "must be at least 1"));
        }
        if self.order == 0 || self.order > crate::matrices::MAX_ORDER {
            return Err(Error::param(
                "order",
                format!(
                    "{} modes; the number of modes must be between 1 and {}",
                    self.order,
                    crate::matrices::MAX_ORDER
                ),
            ));
        }
        if self.blocks == 0 {
            return Err(Error::param("blocks", "must be at least 1"));
        }
        self.init.variance(1, 1)?;
        if let Some((o, i)) = &self.modes {
            if o.len() != self.order || i.len() != self.order {
                return Err(Error::param(
                    "modes",
                    format!(
                        "{} output and {} input modes for order {}",
                        o.len(),
                        i.len(),
                        self.order
                    ),
                ));
            }
        }
        Ok(())
    }

    /// The tensorized shape of the map the spec builds for `config` (`4H x N` separate,
    /// `4H x P` fused, `P >= N + H` the padded length), or `None` for
    /// [`ModelKind::DENSE`]. See the [module docs](self) for the factorization.
    ///
    /// # Errors
    /// As [`check`](Self::check); [`Error::InvalidParameter`] for an invalid `config`;
    /// [`Error::ShapeMismatch`] if explicit output modes do not multiply to `4H` or input
    /// modes to less than the input length.
    pub fn shape(&self, config: &LstmConfig) -> Result<Option<MatrixShape>> {
        self.check()?;
        config.check()?;
        if self.kind == ModelKind::DENSE {
            return Ok(None);
        }
        let (n, h, d) = (config.n_input, config.hidden, self.order);
        let len = if self.kind.is_fused() { n + h } else { n };
        let shape = match &self.modes {
            Some((o, i)) => {
                let s = MatrixShape::try_new(o.clone(), i.clone())?;
                if s.n_out() != 4 * h || s.n_in() < len {
                    return Err(Error::ShapeMismatch {
                        context: "ModelSpec::with_modes (output modes multiply to 4H, input \
                                  modes to at least the input length)",
                        expected: vec![4 * h, len],
                        got: vec![s.n_out(), s.n_in()],
                    });
                }
                s
            }
            None => {
                let mut out = factorize(h, d)?;
                out[0] *= 4;
                let bound = ((2.0 * (len as f64).powf(1.0 / d as f64)).ceil() as usize).max(2);
                let pad = pad_to_factorable(len, d, bound)?;
                MatrixShape::try_new(out, pad.factors)?
            }
        };
        Ok(Some(shape))
    }
}

/// Builds the model of `spec` for the sizes of `config` and `n_classes` classes, all
/// random draws from `seed` (see the [module docs](self) for shapes, ranks and
/// initialisation). [`ModelKind::DENSE`] is [`Lstm::dense`] with the same seed.
///
/// Cost: the random cores (no dense `W` is formed except for the dense kind and the dense
/// recurrent map `4H x H` of the separate kinds).
///
/// # Errors
/// As [`ModelSpec::shape`]; [`Error::InvalidParameter`] if `n_classes < 2`; errors of the
/// formats' constructors.
///
/// # Example
/// ```
/// use tnet::models::{LstmConfig, zoo::{self, ModelKind, ModelSpec}};
/// let config = LstmConfig::new(57_600, 256);
/// let spec = ModelSpec::new(ModelKind::TT, 4).with_modes(vec![16, 4, 4, 4], vec![8, 20, 20, 18]);
/// let model = zoo::build::<f32>(&spec, &config, 11, 0).unwrap();
/// assert_eq!(model.param_count().input_map, 3_360);
/// ```
pub fn build<T: Scalar>(
    spec: &ModelSpec,
    config: &LstmConfig,
    n_classes: usize,
    seed: u64,
) -> Result<Lstm<T>> {
    let shape = spec.shape(config)?;
    // The dense parts (all of `W_x` and `U` for the dense LSTM, `U` for the separate
    // wirings; the gate bias and the classifier) before anything is drawn; the cores are
    // checked as they are drawn.
    let (n, h, c) = (
        config.n_input as u128,
        config.hidden as u128,
        n_classes as u128,
    );
    let maps = match &shape {
        None => (4 * h).saturating_mul(n + h),
        Some(_) if !spec.kind.is_fused() => (4 * h).saturating_mul(h),
        Some(_) => 0,
    };
    let entries = maps
        .saturating_add(4 * h)
        .saturating_add(c.saturating_mul(h + 1));
    crate::limits::check_bytes(
        "the model's dense parameters",
        entries.saturating_mul(std::mem::size_of::<T>() as u128),
    )?;
    let Some(shape) = shape else {
        return Lstm::dense(config, n_classes, seed);
    };
    let head = Classifier::dense(config.hidden, n_classes, derive_seed(seed, 2))?;
    let (n, h) = (config.n_input, config.hidden);
    let s0 = derive_seed(seed, 0);
    let (r, init) = (spec.rank, spec.init);
    let fused = spec.kind.is_fused();
    let map_in = if fused { shape.n_in() } else { n };
    let map: Box<dyn LinearMap<T>> = match spec.kind.format() {
        Some(FormatKind::Tt) => wrap(TtMatrix::random(&shape, &(), r, init, s0)?, map_in)?,
        Some(FormatKind::Tr) => wrap(
            TrMatrix::random(&shape, &TrLayout::Split, r, init, s0)?,
            map_in,
        )?,
        Some(FormatKind::Bt) => wrap(BtMatrix::random(&shape, &spec.blocks, r, init, s0)?, map_in)?,
        Some(FormatKind::Ht) => {
            let (shape, tree) = spec.ht_structure(&shape)?;
            wrap(HtMatrix::random(&shape, &tree, r, init, s0)?, map_in)?
        }
        Some(FormatKind::Tucker) | None => unreachable!("no matrix layer: rejected above"),
    };
    if fused {
        Lstm::fused(config, map, PadPosition::End, head)
    } else {
        let mut g = crate::dense::rng(derive_seed(seed, 1));
        let u = crate::dense::random_orthonormal::<T, _>(4 * h, h, &mut g);
        Lstm::separate(config, map, Box::new(DenseMatrix::try_new(u)?), head)
    }
}

/// Boxes a matrix as a map on `n_in` inputs (zero-padded if it has more columns).
fn wrap<T, M>(matrix: M, n_in: usize) -> Result<Box<dyn LinearMap<T>>>
where
    T: Scalar,
    M: TensorizedMatrix<T> + Clone + 'static,
{
    Ok(Box::new(Padded::new(matrix, n_in)?))
}

/// Decomposes `w` into the format of `kind`.
fn decompose<T: Scalar>(
    spec: &ModelSpec,
    w: ArrayView2<'_, T>,
    shape: &MatrixShape,
    rule: &CheckedRule,
    n_in: usize,
) -> Result<Box<dyn LinearMap<T>>> {
    match spec.kind.format() {
        Some(FormatKind::Tt) => wrap(TtMatrix::from_dense(w, shape, &(), rule)?.0, n_in),
        Some(FormatKind::Tr) => wrap(
            TrMatrix::from_dense(w, shape, &TrLayout::Split, rule)?.0,
            n_in,
        ),
        Some(FormatKind::Bt) => wrap(BtMatrix::from_dense(w, shape, &spec.blocks, rule)?.0, n_in),
        Some(FormatKind::Ht) => {
            let (shape, tree) = spec.ht_structure(shape)?;
            wrap(HtMatrix::from_dense(w, &shape, &tree, rule)?.0, n_in)
        }
        Some(FormatKind::Tucker) | None => unreachable!("no matrix layer: not decomposed"),
    }
}

/// Initialises a model of `spec` from a trained dense LSTM (as built by [`Lstm::dense`]):
/// its weights are decomposed with [`MatrixFormat::from_dense`] into the spec's format
/// and shape (`W_x` zero-padded for the separate kinds, keeping `U` dense; the fused
/// matrix `[W_x U 0]` for the fused kinds), and the gate bias and the classifier are
/// copied. The rule is applied with its rank cap lowered to `spec.rank`.
/// [`ModelKind::DENSE`] returns a copy.
///
/// Error: as each format's `from_dense` (e.g. `‖W − W̃‖_F ≤ ε ‖W‖_F` for TT, TR and HT
/// with a relative tolerance `ε`; block-term is a fit without a guarantee).
///
/// Cost: one decomposition of a `4H x N` (or `4H x P`) matrix, memory a few copies of it.
///
/// # Errors
/// [`Error::InvalidParameter`] if `dense` is not a dense separate LSTM or the rule is
/// invalid; as [`build`] for the spec; errors of `from_dense`.
///
/// # Example
/// ```
/// use tnet::models::{Lstm, LstmConfig, zoo::{self, ModelKind, ModelSpec}};
/// use tnet::Truncation;
/// let config = LstmConfig::new(12, 4);
/// let dense = Lstm::<f64>::dense(&config, 3, 0).unwrap();
/// let spec = ModelSpec::new(ModelKind::TT, 1_000).with_order(2);
/// let tt = zoo::compress_dense(&dense, &spec, &Truncation::rel(1e-12)).unwrap();
/// let x = tnet::dense::random_normal::<f64>(&[2, 3, 12], 1).into_dimensionality().unwrap();
/// let d = &dense.logits(x.view()).unwrap() - &tt.logits(x.view()).unwrap();
/// assert!(d.iter().all(|v| v.abs() < 1e-10));
/// ```
pub fn compress_dense<T: Scalar>(
    dense: &Lstm<T>,
    spec: &ModelSpec,
    rule: &impl AsRule,
) -> Result<Lstm<T>> {
    let not_dense = || {
        Error::param(
            "dense",
            "compress_dense needs a dense LSTM with separate maps (as built by Lstm::dense)",
        )
    };
    let (Some(input), Some(recurrent)) = (dense.input_map(), dense.recurrent_map()) else {
        return Err(not_dense());
    };
    if !input.describe().starts_with("dense ") || !recurrent.describe().starts_with("dense ") {
        return Err(not_dense());
    }
    let config = dense.config();
    let Some(shape) = spec.shape(config)? else {
        return Ok(dense.clone());
    };
    let rule = rule.as_rule()?.capped(spec.rank)?;
    let as_matrix = |m: &dyn LinearMap<T>| -> Result<Array2<T>> {
        m.params()[0]
            .to_owned()
            .into_dimensionality()
            .map_err(|_| not_dense())
    };
    let (wx, u) = (as_matrix(input)?, as_matrix(recurrent)?);
    let (n, h) = (config.n_input, config.hidden);
    let head = dense.classifier().clone();
    let mut w = Array2::zeros((4 * h, shape.n_in()));
    w.slice_mut(s![.., 0..n]).assign(&wx);
    let mut model = if spec.kind.is_fused() {
        let off = h_offset(n, h, shape.n_in(), PadPosition::End);
        w.slice_mut(s![.., off..off + h]).assign(&u);
        let map = decompose(spec, w.view(), &shape, &rule, shape.n_in())?;
        Lstm::fused(config, map, PadPosition::End, head)?
    } else {
        let map = decompose(spec, w.view(), &shape, &rule, n)?;
        Lstm::separate(config, map, Box::new(DenseMatrix::try_new(u)?), head)?
    };
    let specs = model.param_specs();
    for (spec, mut p) in specs.iter().zip(model.params_mut()) {
        match (spec.part, dense.gain()) {
            (Part::Bias, _) => p.assign(&dense.bias().view().into_dyn()),
            (Part::GateGain, Some(g)) => p.assign(&g.view().into_dyn()),
            _ => {}
        }
    }
    debug_assert!(matches!(
        (spec.kind.is_fused(), model.wiring()),
        (true, Wiring::Fused { .. }) | (false, Wiring::Separate)
    ));
    Ok(model)
}

#[cfg(test)]
mod kind_tests {
    use super::*;

    /// Every kind `ModelKind::new` accepts is in `ModelKind::ALL` (so it parses back from
    /// its name), and every name is distinct.
    #[test]
    fn all_holds_every_kind() {
        let formats = std::iter::once(None).chain(FormatKind::ALL.into_iter().map(Some));
        for f in formats {
            for w in [MapWiring::Separate, MapWiring::Fused] {
                if let Ok(k) = ModelKind::new(f, w) {
                    assert!(ModelKind::ALL.contains(&k), "{k:?} missing from ALL");
                    assert_eq!(k.name().parse::<ModelKind>().unwrap(), k);
                }
            }
        }
        let mut names: Vec<&str> = ModelKind::ALL.iter().map(|k| k.name()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), ModelKind::ALL.len());
    }
}
