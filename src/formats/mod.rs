//! Tensor formats: the types that hold decomposed tensors and keep their invariants.
//!
//! Core layout conventions, written once:
//! - HT leaf basis `U_t`: `(n_t, k_t)`; HT transfer tensor `B_t`: `(k_left, k_right, k_t)`,
//!   root rank `k_root = 1`.
//! - Tucker core `G`: `(R_1, .., R_d)`; Tucker factor `U_k`: `(n_k, R_k)`; a block-term
//!   tensor is a list of such Tucker blocks.

pub mod bt;
pub mod ht;
pub mod tucker;
