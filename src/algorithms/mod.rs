//! The decompositions that produce the formats, one file per algorithm.

pub mod bt_als;
pub mod hooi;
pub mod hosvd;
pub mod ht_svd;
pub mod ht_truncate;
pub mod tr_als;
pub mod tr_round;
pub mod tr_svd;
pub mod tt_round;
pub mod tt_svd;
