//! Tensor formats: the types that hold decomposed tensors and keep their invariants.
//!
//! Core layout conventions, written once:
//! - HT leaf basis `U_t`: `(n_t, k_t)`; HT transfer tensor `B_t`: `(k_left, k_right, k_t)`,
//!   root rank `k_root = 1`.
//! - TT core `G_k`: `(r_k, n_k, r_{k+1})`, `r_0 = r_d = 1`; TR core `Z_k`: `(r_k, n_k,
//!   r_{k+1})` with `r_d = r_0` (the ring closes by a trace).
//! - Tucker core `G`: `(R_1, .., R_d)`; Tucker factor `U_k`: `(n_k, R_k)`; a block-term
//!   tensor is a list of such Tucker blocks.

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
