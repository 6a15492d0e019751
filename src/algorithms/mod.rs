//! The decompositions that produce the formats, one file per algorithm.

pub mod ht_svd;
pub mod ht_truncate;
