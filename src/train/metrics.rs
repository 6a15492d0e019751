//! Evaluation: loss, accuracy and confusion matrix; per-epoch metrics.

use serde::{Deserialize, Serialize};

use super::data::{Sampling, SequenceDataset, load_batch};
use crate::models::Lstm;
use crate::{Error, Result, Scalar};

/// Loss, accuracy and confusion matrix of a model on a set of clips (no dropout).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EvalReport {
    /// Mean softmax cross-entropy.
    pub loss: f64,
    /// Fraction of clips classified correctly.
    pub accuracy: f64,
    /// Number of clips.
    pub n: usize,
    /// `confusion[true][predicted]` counts (`C x C`).
    pub confusion: Vec<Vec<usize>>,
}

/// What one epoch of training produced.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EpochMetrics {
    /// The epoch (0-based).
    pub epoch: usize,
    /// Optimiser steps taken by the end of the epoch.
    pub step: u64,
    /// Learning rate of the epoch's last step.
    pub lr: f64,
    /// Mean training loss over the epoch's batches (with dropout, as trained).
    pub train_loss: f64,
    /// Training accuracy over the epoch's batches (with dropout, as trained).
    pub train_accuracy: f64,
    /// Gradient norm (before clipping) of the epoch's last step.
    pub grad_norm: f64,
    /// Evaluation on the validation clips, when there are any.
    pub val: Option<EvalReport>,
    /// Per parameter tensor (cores of the tensorized maps, bias, classifier): its norm at
    /// the end of the epoch and the root mean square of its gradient's norm over the
    /// epoch's steps. The diagnostic of a tensorized layer's conditioning: cores whose
    /// norms drift apart, or whose gradients are orders of magnitude apart, show here
    /// first (see `docs/lstm.md`, "Diagnosing a tensorized layer"). Empty in logs written
    /// before the field existed.
    #[serde(default)]
    pub params: Vec<ParamStat>,
}

/// The state of one parameter tensor at the end of an epoch (see
/// [`EpochMetrics::params`]).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ParamStat {
    /// The tensor's name (as in [`ParamSpec::name`](crate::models::ParamSpec)).
    pub name: String,
    /// Its Frobenius norm at the end of the epoch.
    pub norm: f64,
    /// `sqrt(mean over the epoch's steps of ‖∂L/∂θ‖²)`, before clipping.
    pub grad_norm: f64,
}

/// Evaluates `model` on the clips `indices` of `data` in batches of `batch_size`.
///
/// # Errors
/// [`Error::InvalidParameter`] for a zero batch size or a dataset whose sizes do not fit
/// the model; [`Error::Empty`] for no indices; errors of the dataset and the model.
///
/// # Example
/// ```
/// use tnet::models::{Lstm, LstmConfig};
/// use tnet::train::{InMemoryDataset, evaluate};
/// let data = InMemoryDataset::<f64>::synthetic(6, 2, 3, 4, 0.1, 0).unwrap();
/// let model = Lstm::<f64>::dense(&LstmConfig::new(4, 5), 2, 0).unwrap();
/// let r = evaluate(&model, &data, &[0, 1, 2, 3, 4, 5], 4).unwrap();
/// assert_eq!(r.confusion.iter().flatten().sum::<usize>(), 6);
/// ```
pub fn evaluate<T: Scalar>(
    model: &Lstm<T>,
    data: &dyn SequenceDataset<T>,
    indices: &[usize],
    batch_size: usize,
) -> Result<EvalReport> {
    if batch_size == 0 {
        return Err(Error::param("batch_size", "must be at least 1"));
    }
    if indices.is_empty() {
        return Err(Error::Empty {
            context: "evaluate indices",
            shape: vec![0],
        });
    }
    check_fits(model, data)?;
    let c = model.n_classes();
    let mut confusion = vec![vec![0; c]; c];
    let mut loss = 0.0;
    for chunk in indices.chunks(batch_size) {
        let (x, y) = load_batch(data, chunk, Sampling::Eval)?;
        loss += model.loss(x.view(), &y, None)? * chunk.len() as f64;
        for (p, &t) in model.predict(x.view())?.into_iter().zip(&y) {
            confusion[t][p] += 1;
        }
    }
    let correct: usize = (0..c).map(|k| confusion[k][k]).sum();
    Ok(EvalReport {
        loss: loss / indices.len() as f64,
        accuracy: correct as f64 / indices.len() as f64,
        n: indices.len(),
        confusion,
    })
}

/// Checks that the dataset's features and classes fit the model.
pub(crate) fn check_fits<T: Scalar>(model: &Lstm<T>, data: &dyn SequenceDataset<T>) -> Result<()> {
    if data.n_features() != model.config().n_input {
        return Err(Error::param(
            "dataset",
            format!(
                "the dataset has {} features per step but the model takes N = {}",
                data.n_features(),
                model.config().n_input
            ),
        ));
    }
    if data.n_classes() > model.n_classes() {
        return Err(Error::param(
            "dataset",
            format!(
                "the dataset has {} classes but the model's classifier only {}",
                data.n_classes(),
                model.n_classes()
            ),
        ));
    }
    if data.seq_len() == 0 {
        return Err(Error::param(
            "dataset",
            "clips must have at least one time step",
        ));
    }
    Ok(())
}
