//! Training checkpoints: everything a killed run needs to end exactly as if it had not
//! been killed.
//!
//! A checkpoint holds the model's parameters (with its [`Architecture`]), the optimiser's
//! state (step count, moments or momentum buffers), the [`TrainState`] (epoch, position
//! in the epoch, step count, the epoch's running sums, the metrics history, the early
//! stopping state and the best parameters so far) and a [`RunFingerprint`] of the run's
//! settings.
//!
//! **Random state.** Every random draw of a run comes from a stream derived from the
//! run's seed and a counter: the epoch's shuffle from `(seed, epoch)`, a step's dropout
//! masks and frame sampling from `(seed, step)`. The counters in [`TrainState`] therefore
//! *are* the generator state, and a resumed run draws exactly what the uninterrupted run
//! drew. Values are stored bit for bit (binary container, see
//! [`models` I/O](crate::models::Lstm::save)), so resumed runs end with bitwise the same
//! weights.
//!
//! **History.** The metrics of the finished epochs live beside the checkpoint, one JSON
//! line per epoch in [`history_path`] (`<checkpoint>.history.jsonl`); the checkpoint
//! records how many lines (and bytes) of it are its own. A run appends only the epochs
//! since its last save, so saving costs the same at epoch 3,000 as at epoch 3 (when the
//! history was inside the checkpoint, 3,000 epochs spent 44 s saving it against 0.07 s for
//! 30). Lines beyond the recorded length (a kill between the append and the checkpoint's
//! rename) are ignored on load and cut by the next save. Checkpoints written before hold
//! their history inside and load as before.
//!
//! Files are written atomically ([`crate::io::write_atomic`]); loading validates the
//! container, the kind, the dtype, the version, the number and shapes of the tensors, and
//! the trainer checks the architecture and the fingerprint against the run being resumed,
//! refusing with an error that names the first difference.

use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use ndarray::ArrayD;
use serde::{Deserialize, Serialize};

use super::metrics::EpochMetrics;
use super::optim::OptimizerConfig;
use super::trainer::EarlyStopping;
use crate::models::{Architecture, parse_container, read_container, write_container};
use crate::{Error, Result, Scalar};

const CHECKPOINT_KIND: &str = "tnet-lstm-checkpoint";

/// Where a run stands.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainState {
    /// Current epoch (0-based).
    pub epoch: usize,
    /// Steps done in the current epoch.
    pub step_in_epoch: usize,
    /// Steps done in the run (the optimiser's step count).
    pub global_step: u64,
    /// Sum over the epoch's batches of `loss * batch size`.
    pub loss_sum: f64,
    /// Correct predictions in the epoch's batches.
    pub correct: usize,
    /// Clips seen in the epoch.
    pub seen: usize,
    /// Learning rate of the last step.
    pub last_lr: f64,
    /// Gradient norm of the last step.
    pub last_grad_norm: f64,
    /// Per parameter tensor, the sum over the epoch's steps of its squared gradient norm
    /// (empty in checkpoints written before the field existed).
    #[serde(default)]
    pub grad_sq_sums: Vec<f64>,
    /// Metrics of the finished epochs.
    pub history: Vec<EpochMetrics>,
    /// Factor on the optimiser's rate left by plateau decays (1 without; checkpoints
    /// written before the field existed read as 1).
    #[serde(default = "unit_scale")]
    pub lr_scale: f64,
    /// Best monitored score so far (lower is better).
    pub best_score: Option<f64>,
    /// Epoch of the best score.
    pub best_epoch: Option<usize>,
    /// Epochs since the best score.
    pub bad_epochs: usize,
    /// Whether early stopping ended the run.
    pub stopped_early: bool,
    /// Whether the run is over.
    pub finished: bool,
    /// Length of the metrics log when the checkpoint was written (a resumed run cuts
    /// the log back to it, so no epoch is logged twice).
    pub log_bytes: u64,
}

fn unit_scale() -> f64 {
    1.0
}

impl TrainState {
    /// A copy without the history (which a checkpoint keeps in its history file).
    pub(crate) fn without_history(&self) -> Self {
        Self {
            epoch: self.epoch,
            step_in_epoch: self.step_in_epoch,
            global_step: self.global_step,
            loss_sum: self.loss_sum,
            correct: self.correct,
            seen: self.seen,
            last_lr: self.last_lr,
            last_grad_norm: self.last_grad_norm,
            grad_sq_sums: self.grad_sq_sums.clone(),
            history: Vec::new(),
            lr_scale: self.lr_scale,
            best_score: self.best_score,
            best_epoch: self.best_epoch,
            bad_epochs: self.bad_epochs,
            stopped_early: self.stopped_early,
            finished: self.finished,
            log_bytes: self.log_bytes,
        }
    }

    pub(crate) fn fresh() -> Self {
        Self {
            epoch: 0,
            step_in_epoch: 0,
            global_step: 0,
            loss_sum: 0.0,
            correct: 0,
            seen: 0,
            last_lr: 0.0,
            last_grad_norm: 0.0,
            grad_sq_sums: Vec::new(),
            history: Vec::new(),
            lr_scale: 1.0,
            best_score: None,
            best_epoch: None,
            bad_epochs: 0,
            stopped_early: false,
            finished: false,
            log_bytes: 0,
        }
    }
}

/// The settings that determine a run's trajectory; a checkpoint only resumes a run with
/// the same fingerprint.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunFingerprint {
    /// The run's seed.
    pub seed: u64,
    /// Epochs planned.
    pub epochs: usize,
    /// Training batch size.
    pub batch_size: usize,
    /// Evaluation batch size.
    pub eval_batch_size: usize,
    /// Optimiser settings.
    pub optimizer: OptimizerConfig,
    /// Early stopping settings.
    pub early_stopping: Option<EarlyStopping>,
    /// Dataset sizes `(clips, classes, T, N)`.
    pub data: [usize; 4],
    /// Number of training clips and a hash of their indices.
    pub train: (usize, u64),
    /// Number of validation clips and a hash of their indices.
    pub val: (usize, u64),
}

impl RunFingerprint {
    pub(crate) fn expect_same(&self, run: &RunFingerprint, path: &Path) -> Result<()> {
        let fields: [(&str, String, String); 8] = [
            ("the seed", self.seed.to_string(), run.seed.to_string()),
            (
                "the number of epochs",
                self.epochs.to_string(),
                run.epochs.to_string(),
            ),
            (
                "the batch size",
                self.batch_size.to_string(),
                run.batch_size.to_string(),
            ),
            (
                "the evaluation batch size",
                self.eval_batch_size.to_string(),
                run.eval_batch_size.to_string(),
            ),
            (
                "the optimiser",
                format!("{:?}", self.optimizer),
                format!("{:?}", run.optimizer),
            ),
            (
                "early stopping",
                format!("{:?}", self.early_stopping),
                format!("{:?}", run.early_stopping),
            ),
            (
                "the dataset sizes (clips, classes, T, N)",
                format!("{:?}", self.data),
                format!("{:?}", run.data),
            ),
            (
                "the split (count, hash of train; count, hash of val)",
                format!("{:?} {:?}", self.train, self.val),
                format!("{:?} {:?}", run.train, run.val),
            ),
        ];
        for (what, file, mine) in fields {
            if file != mine {
                return Err(Error::param(
                    "checkpoint",
                    format!(
                        "{} was written by a run with other settings: {what} is {file} in \
                         the checkpoint but {mine} in this run",
                        path.display()
                    ),
                ));
            }
        }
        Ok(())
    }
}

/// A training checkpoint (see the [module docs](crate::train)).
#[derive(Clone, Debug, PartialEq)]
pub struct Checkpoint<T> {
    /// The model's architecture.
    pub architecture: Architecture,
    /// The run's settings.
    pub run: RunFingerprint,
    /// Where the run stands.
    pub state: TrainState,
    /// The model's parameters (order of [`Lstm::params`](crate::models::Lstm::params)).
    pub params: Vec<ArrayD<T>>,
    /// The optimiser's step count.
    pub optimizer_step: u64,
    /// The optimiser's state tensors.
    pub optimizer_slots: Vec<ArrayD<T>>,
    /// The parameters at the best monitored epoch (when early stopping restores them).
    pub best_params: Option<Vec<ArrayD<T>>>,
}

#[derive(Serialize, Deserialize)]
struct Meta {
    architecture: Architecture,
    run: RunFingerprint,
    state: TrainState,
    optimizer_step: u64,
    n_params: usize,
    n_slots: usize,
    has_best: bool,
    /// The part of the history file that belongs to this checkpoint (`None`: the history
    /// is inside `state`, as written before the file existed).
    #[serde(default)]
    history: Option<HistoryCursor>,
}

/// How much of a history file a checkpoint owns: its first `len` lines, `bytes` bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct HistoryCursor {
    len: usize,
    bytes: u64,
}

/// The history file of the checkpoint at `path`: `<path>.history.jsonl`.
pub fn history_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".history.jsonl");
    path.with_file_name(name)
}

/// Brings the history file to `history`: keeps the `cursor.len` lines it already holds
/// (cutting anything after them), appends the rest, syncs, and advances `cursor`.
fn append_history(path: &Path, history: &[EpochMetrics], cursor: &mut HistoryCursor) -> Result<()> {
    let io = |source| Error::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(false)
        .open(path)
        .map_err(io)?;
    let len = f.metadata().map_err(io)?.len();
    if cursor.len > history.len() || len < cursor.bytes {
        *cursor = HistoryCursor::default(); // not what this run wrote: start over
    }
    f.set_len(cursor.bytes).map_err(io)?;
    f.seek(SeekFrom::End(0)).map_err(io)?;
    let mut text = Vec::new();
    for e in &history[cursor.len..] {
        serde_json::to_writer(&mut text, e).map_err(|e| Error::corrupt(e.to_string()))?;
        text.push(b'\n');
    }
    f.write_all(&text).map_err(io)?;
    f.sync_all().map_err(io)?;
    cursor.len = history.len();
    cursor.bytes += text.len() as u64;
    Ok(())
}

/// The first `cursor.len` epochs of the history file `path`.
fn read_history(path: &Path, cursor: HistoryCursor) -> Result<Vec<EpochMetrics>> {
    let corrupt = |reason: String| Error::Corrupt {
        path: Some(path.to_path_buf()),
        reason,
    };
    let bytes = crate::io::map(path)?;
    let owned = usize::try_from(cursor.bytes)
        .ok()
        .and_then(|n| bytes.get(..n))
        .ok_or_else(|| {
            corrupt(format!(
                "the checkpoint's history is {} bytes but the file holds {}",
                cursor.bytes,
                bytes.len()
            ))
        })?;
    let history = owned
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .enumerate()
        .map(|(k, l)| {
            serde_json::from_slice(l).map_err(|e| corrupt(format!("epoch line {}: {e}", k + 1)))
        })
        .collect::<Result<Vec<EpochMetrics>>>()?;
    if history.len() != cursor.len {
        return Err(corrupt(format!(
            "holds {} epochs where the checkpoint records {}",
            history.len(),
            cursor.len
        )));
    }
    Ok(history)
}

impl<T: Scalar> Checkpoint<T> {
    /// Writes the checkpoint to `path` atomically, its history to [`history_path`].
    ///
    /// # Errors
    /// [`Error::Io`] if a file cannot be written.
    pub fn save(&self, path: impl AsRef<Path>) -> Result<()> {
        self.save_appending(
            path.as_ref(),
            &self.state.history,
            &mut HistoryCursor::default(),
        )
    }

    /// Writes the checkpoint with the history `history` (`self.state.history` is not
    /// used), appending to the history file only what follows `cursor`.
    pub(crate) fn save_appending(
        &self,
        path: &Path,
        history: &[EpochMetrics],
        cursor: &mut HistoryCursor,
    ) -> Result<()> {
        append_history(&history_path(path), history, cursor)?;
        let meta = serde_json::to_value(Meta {
            architecture: self.architecture.clone(),
            run: self.run.clone(),
            state: self.state.without_history(),
            optimizer_step: self.optimizer_step,
            n_params: self.params.len(),
            n_slots: self.optimizer_slots.len(),
            has_best: self.best_params.is_some(),
            history: Some(*cursor),
        })
        .map_err(|e| Error::corrupt(e.to_string()))?;
        let mut views: Vec<_> = self.params.iter().map(|t| t.view()).collect();
        views.extend(self.optimizer_slots.iter().map(|t| t.view()));
        if let Some(b) = &self.best_params {
            views.extend(b.iter().map(|t| t.view()));
        }
        write_container(path, CHECKPOINT_KIND, meta, &views)
    }

    /// Reads and validates a checkpoint.
    ///
    /// # Errors
    /// [`Error::Io`] if unreadable; [`Error::Corrupt`] if damaged, of another kind or
    /// dtype, or inconsistent (tensor counts or shapes that do not match its own
    /// description); [`Error::Version`] for another container version.
    pub fn load(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let (meta, tensors) = read_container::<T>(path, CHECKPOINT_KIND)?;
        Self::from_container(meta, tensors, Some(&history_path(path)))
            .map_err(|e| crate::io::with_path(e, path))
    }

    /// A checkpoint from the bytes of a checkpoint file, without its history file (a
    /// checkpoint that records one is an error).
    pub(crate) fn from_bytes(bytes: &[u8]) -> Result<Self> {
        let (meta, tensors) = parse_container::<T>(bytes, CHECKPOINT_KIND)?;
        Self::from_container(meta, tensors, None)
    }

    fn from_container(
        meta: serde_json::Value,
        mut tensors: Vec<ArrayD<T>>,
        history: Option<&Path>,
    ) -> Result<Self> {
        let corrupt = |reason: String| Error::corrupt(reason);
        let mut meta: Meta = serde_json::from_value(meta)
            .map_err(|e| corrupt(format!("unreadable checkpoint description: {e}")))?;
        if let Some(cursor) = meta.history.filter(|c| c.len > 0) {
            let path =
                history.ok_or_else(|| corrupt("the history file is not available".into()))?;
            meta.state.history = read_history(path, cursor)?;
        }
        let n_best = if meta.has_best { meta.n_params } else { 0 };
        if tensors.len() != meta.n_params + meta.n_slots + n_best
            || meta.n_params != meta.architecture.params.len()
        {
            return Err(corrupt(format!(
                "holds {} tensors but describes {} parameters, {} optimiser slots and {} best \
                 parameters",
                tensors.len(),
                meta.architecture.params.len(),
                meta.n_slots,
                n_best
            )));
        }
        let best = tensors.split_off(meta.n_params + meta.n_slots);
        let slots = tensors.split_off(meta.n_params);
        let params = tensors;
        let shapes_ok = |ts: &[ArrayD<T>]| {
            ts.iter()
                .zip(&meta.architecture.params)
                .all(|(t, s)| t.shape() == s.shape.as_slice())
        };
        if !shapes_ok(&params) || (meta.has_best && !shapes_ok(&best)) {
            return Err(corrupt(
                "parameter shapes differ from the stored architecture".into(),
            ));
        }
        Ok(Self {
            architecture: meta.architecture,
            run: meta.run,
            state: meta.state,
            params,
            optimizer_step: meta.optimizer_step,
            optimizer_slots: slots,
            best_params: meta.has_best.then_some(best),
        })
    }
}
