//! Tensor formats, one folder each: the type that holds a decomposed tensor and keeps its
//! invariants (`mod.rs`), the decomposition that produces it (`decompose.rs`, with the
//! [`Decompose`](crate::Decompose) impl), rounding (`round.rs`), arithmetic (`arith.rs`),
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
//! | [`HtMatrix`](crate::HtMatrix) | leaf `U_k (n_k, m_k, r_k)`, transfer `B_t (r_l, r_r, r_t)` on a [`DimTree`](crate::DimTree), root rank 1 | the HT tensor with paired modes `(j_k, i_k)` | `Σ_k n_k m_k r_k + Σ_interior r_l r_r r_t` |
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

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::{Error, Result};

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
                Error::param(
                    "format",
                    format!("unknown format '{s}' (expected ht, tt, tr, tucker or bt)"),
                )
            })
    }
}
