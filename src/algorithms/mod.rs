//! The decompositions that produce the formats, one file per algorithm.

pub mod bt_als;
pub mod hooi;
pub mod hosvd;
pub mod ht_svd;
pub mod ht_truncate;
