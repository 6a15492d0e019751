//! Tensor formats: the types that hold decomposed tensors and keep their invariants.
//!
//! Core layout conventions, written once:
//! - HT leaf basis `U_t`: `(n_t, k_t)`; HT transfer tensor `B_t`: `(k_left, k_right, k_t)`,
//!   root rank `k_root = 1`.
//! - TT core `G_k`: `(r_k, n_k, r_{k+1})`, `r_0 = r_d = 1`; TR core `Z_k`: `(r_k, n_k,
//!   r_{k+1})` with `r_d = r_0` (the ring closes by a trace).
//! - Tucker core `G`: `(R_1, .., R_d)`; Tucker factor `U_k`: `(n_k, R_k)`; a block-term
//!   tensor is a list of such Tucker blocks.

pub mod bt;
pub(crate) mod checks;
pub(crate) mod cores;
pub(crate) mod file;
pub mod ht;
pub mod tr;
pub mod tt;
pub mod tucker;
