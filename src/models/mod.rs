//! Recurrent models: the LSTM classifier over any weight format, whose maps are
//! [`LinearMap`](crate::matrices::LinearMap)s (a tensorized matrix, [`Padded`](crate::matrices::Padded) to the
//! input length where needed, or a [`DenseMatrix`](crate::matrices::DenseMatrix)).
//!
//! | file | what lives there |
//! |---|---|
//! | `config.rs` | [`LstmConfig`], [`GateActivation`], [`Pooling`], [`Wiring`], [`PadPosition`] |
//! | `cell.rs` | the cell's elementwise forward and backward kernels |
//! | `lstm.rs` | [`Lstm`]: construction, parameters, forward, backpropagation through time |
//! | `head.rs` | [`Classifier`] and the softmax cross-entropy |
//! | `stream.rs` | streaming inference ([`Lstm::step`], [`LstmState`]) |
//! | `accounting.rs` | [`ParamCount`], [`CompressionRatio`], [`MemoryReport`] |
//! | `io.rs` | saving and loading models ([`Architecture`], the binary container) |
//! | [`zoo`] | [`zoo::build`] and [`zoo::compress_dense`] for every model kind of the FDHT-LSTM paper |
//!
//! The two wirings of the literature share one cell:
//! - **separate** ([`Lstm::separate`]): `a_t = W_x x_t + U h_{t-1} + b`, the dense LSTM
//!   and the TT-/TR-/BT-/HT-LSTM baselines (tensorized `W_x`, dense `U`);
//! - **fused** ([`Lstm::fused`]): `a_t = W [x_t ; h_{t-1} ; 0] + b` with one `4H x P` map,
//!   FDHT-LSTM (Yin et al., CVPR 2021: "integrate, then decompose") and its fully
//!   decomposed relatives.
//!
//! Gate order everywhere: forget, input, cell, output.

mod accounting;
mod cell;
mod config;
mod head;
mod io;
mod lstm;
mod stream;
pub mod zoo;

pub use accounting::{CompressionRatio, MemoryReport, ParamCount};
pub use config::{GateActivation, LstmConfig, PadPosition, Pooling, Wiring};
pub use head::Classifier;
pub use io::{Architecture, CONTAINER_VERSION};
pub use lstm::{Gradients, Lstm, ParamSpec, Part, StepOutput};
pub use stream::LstmState;

pub(crate) use io::{parse_container, read_container, write_container};

/// A seed for the `stream`-th independent random stream derived from `seed` (SplitMix64
/// finaliser of a combination of both), so that sub-seeds of nearby seeds do not collide.
pub(crate) fn derive_seed(seed: u64, stream: u64) -> u64 {
    let mut z = seed
        .wrapping_add(stream.wrapping_mul(0x9e37_79b9_7f4a_7c15))
        .wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}
