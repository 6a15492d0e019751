//! # tnet — tensor-network decompositions in pure Rust
//!
//! tnet makes tensors and weight matrices small without making them wrong. Its heart is
//! the **Hierarchical Tucker** (HT) format driven by a [`DimTree`], with the operations of
//! the MATLAB `htucker` toolbox (HT-SVD, truncation to ranks or a tolerance, rounding,
//! orthogonalisation, arithmetic and contraction) and stated, property-tested error
//! bounds.
//!
//! | module | what lives there |
//! |---|---|
//! | [`tree`] | [`DimTree`], the validated binary dimension tree (on petgraph) |
//! | [`truncation`] | the one [`Truncation`] rule shared by every format, what it guarantees, and the [`CheckedRule`] the algorithms take |
//! | [`mod@format`] | the two traits every format implements: [`Factorized`] (use) and [`Decompose`] (construction) |
//! | [`formats`] | one folder per format ([`formats::ht`], [`formats::tt`], [`formats::tr`], [`formats::tucker`], [`formats::bt`]): the type, its decomposition, rounding, arithmetic, matrix form and file I/O; [`FormatKind`], the one format enum |
//! | [`matrices`] | the tensorized-matrix interface and the contraction engine that applies any format without forming `W` (shape, plans, kernels); knows no format |
//! | [`dense`] | dense helpers: unfolding (defined once), mode products, errors, seeded random tensors |
//! | [`linalg`] | the only module that talks to faer: truncated SVD, QR, GEMM on views; randomized range finders ([`linalg::Sketch`]) |
//! | [`compress`] | compressing real weights: one array ([`compress::decompose`]), tensorized matrices, whole model files, the compressed container |
//! | [`weights`] | reading and writing dense weights: `.npy`, `.npz`, `.safetensors` |
//! | [`models`] | recurrent models: the LSTM classifier over any [`matrices::LinearMap`], separate or fused (FDHT-style) wiring, the model zoo |
//! | [`train`] | training: Adam/SGD, the training loop, checkpoints that resume bit for bit |
//! | [`data`] | video datasets for the models: the dataset trait and splits; the procedural renderer and image-folder loader under the `video` feature |
//! | [`io`] | atomic writes, checksums, the one file reader |
//! | [`limits`] | the memory limit that sizes declared by files and options are checked against |
//! | [`fuzzing`] | the entry points of the fuzz targets (`fuzz/`) and of the corpus replay |
//!
//! Cargo features: `video` (the video data, adds `png` and `zune-jpeg`), `progress` (a training progress
//! bar, adds `indicatif`), `cli` (the `tnet` tool; adds `clap` and `ctrlc`, implies both
//! others; the default). `--no-default-features` builds the numerical core alone.
//!
//! Everything is generic over the sealed [`Scalar`] (`f32` and `f64`) and returns
//! [`Result`] with the structured [`Error`].
//!
//! ## Example: compress a tensor to 1e-6 relative error
//! ```
//! use ndarray::Dimension;
//! use tnet::{DimTree, Factorized, HtTensor, Truncation};
//! // A smooth function sampled on an 8^5 grid has low HT ranks.
//! let x = ndarray::ArrayD::from_shape_fn(ndarray::IxDyn(&[8; 5]), |i| {
//!     1.0 / (1.0 + i.as_array_view().iter().map(|&k| k as f64).sum::<f64>())
//! });
//! let tree = DimTree::balanced(5).unwrap();
//! let (ht, info) = HtTensor::from_dense(x.view(), &tree, &Truncation::rel(1e-6)).unwrap();
//! let err = tnet::dense::rel_error(x.view(), ht.to_dense().view()).unwrap();
//! assert!(err <= 1e-6 && info.rel_error_bound() <= 1e-6);
//! assert!(ht.n_params() < x.len() / 10);
//! ```
#![warn(missing_docs)]

pub mod compress;
pub mod data;
pub mod dense;
mod error;
pub mod format;
pub mod formats;
pub mod fuzzing;
pub mod io;
pub mod limits;
pub mod linalg;
pub mod matrices;
pub mod models;
mod scalar;
pub mod train;
pub mod tree;
pub mod truncation;
pub mod weights;

pub use error::{Error, Result};
pub use format::{Decompose, Factorized};
pub use formats::FormatKind;
pub use formats::bt::BtTensor;
pub use formats::ht::{HtNode, HtTensor};
pub use formats::tr::TrTensor;
pub use formats::tt::TtTensor;
pub use formats::tucker::TuckerTensor;
pub use formats::{
    bt::BtMatrix,
    ht::HtMatrix,
    tr::{TrLayout, TrMatrix},
    tt::TtMatrix,
};
pub use scalar::Scalar;
pub use tree::DimTree;
pub use truncation::{AsRule, CheckedRule, FitSummary, Truncation, TruncationInfo};

/// The README's code blocks, compiled and run as doctests so the front page never rots.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
