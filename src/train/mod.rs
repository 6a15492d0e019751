//! Training recurrent models: datasets, optimisers, the training loop, checkpoints.
//!
//! | file | what lives there |
//! |---|---|
//! | `data.rs` | [`SequenceDataset`] (the interface datasets implement), [`InMemoryDataset`], [`Sampling`] |
//! | `optim.rs` | [`Optimizer`]: Adam/AdamW and SGD with momentum, clipping, [`LrSchedule`] |
//! | `metrics.rs` | [`evaluate`], [`EvalReport`] (loss, accuracy, confusion), [`EpochMetrics`] |
//! | `trainer.rs` | [`fit`], [`TrainConfig`], [`EarlyStopping`], [`TrainReport`] |
//! | `checkpoint.rs` | [`Checkpoint`], [`TrainState`], [`RunFingerprint`] |
//!
//! A run is a pure function of its seed, dataset, configuration and rayon thread count:
//! every random draw comes from a stream derived from the seed and a counter (epoch or
//! step), so a run killed at any moment and resumed from its last checkpoint ends with
//! bitwise the same weights as one that never stopped.

mod checkpoint;
mod data;
mod metrics;
mod optim;
mod trainer;

pub mod run;

pub use checkpoint::{Checkpoint, RunFingerprint, TrainState, history_path};
pub use data::{InMemoryDataset, Sampling, SequenceDataset, load_batch};
pub use metrics::{EpochMetrics, EvalReport, ParamStat, evaluate};
pub use optim::{LrSchedule, Optimizer, OptimizerConfig, OptimizerKind, StepStats};
pub use trainer::{
    EarlyStopping, Monitor, PlateauDecay, TrainConfig, TrainReport, check_memory, fit,
};
