//! The training loop.
//!
//! Epochs of seeded shuffled mini-batches; after each epoch an evaluation on the
//! validation clips (loss, accuracy, confusion matrix), early stopping on it, a line in
//! the metrics log and a checkpoint; checkpoints also every `checkpoint_every` steps.
//!
//! Reproducibility: for a given seed, dataset, configuration and rayon thread count, a
//! run gives bitwise the same weights, whether or not it was killed and resumed from a
//! checkpoint (see [`checkpoint`](super::checkpoint) for why).

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use rand::seq::SliceRandom;
use serde::{Deserialize, Serialize};

use super::checkpoint::{Checkpoint, HistoryCursor, RunFingerprint, TrainState};
use super::data::{Sampling, SequenceDataset, load_batch};
use super::metrics::{EpochMetrics, ParamStat, check_fits, evaluate};
use super::optim::{Optimizer, OptimizerConfig};
use crate::data::Split;
use crate::models::{Lstm, derive_seed};
use crate::{Error, Result, Scalar};

const STREAM_SHUFFLE: u64 = 0x5348_5546;
const STREAM_DROPOUT: u64 = 0x4452_4f50;
const STREAM_SAMPLING: u64 = 0x5341_4d50;

/// The validation quantity early stopping watches.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Monitor {
    /// Validation loss (lower is better).
    ValLoss,
    /// Validation accuracy (higher is better).
    ValAccuracy,
}

/// Early stopping on the validation split.
///
/// With a [`PlateauDecay`], a stalled score first lowers the learning rate; the run stops
/// only once the rate is at its floor and `patience` more epochs brought no improvement.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct EarlyStopping {
    /// Epochs without improvement after which training stops (at least 1).
    pub patience: usize,
    /// What is watched.
    pub monitor: Monitor,
    /// Smallest change that counts as an improvement.
    pub min_delta: f64,
    /// Whether the parameters of the best epoch are restored at the end (and, with a
    /// [`PlateauDecay`], at every decay).
    pub restore_best: bool,
    /// Lower the learning rate on a plateau before stopping (none: stop at once).
    /// Configurations saved before the field existed read as none.
    #[serde(default)]
    pub decay: Option<PlateauDecay>,
}

impl EarlyStopping {
    /// Stop after `patience` epochs without a lower validation loss; restore the best
    /// parameters.
    pub fn val_loss(patience: usize) -> Self {
        Self {
            patience,
            monitor: Monitor::ValLoss,
            min_delta: 0.0,
            restore_best: true,
            decay: None,
        }
    }

    /// Lowers the learning rate on plateaus (see [`PlateauDecay`]) before stopping.
    pub fn with_decay(mut self, decay: PlateauDecay) -> Self {
        self.decay = Some(decay);
        self
    }
}

/// Learning-rate decay on a validation plateau, the rule of Keras' `ReduceLROnPlateau`
/// with a return to the best parameters.
///
/// After `patience` epochs without improvement of the monitored score, the learning rate
/// is multiplied by `factor` (never below `min_factor` times the optimiser's rate), the
/// parameters of the best epoch are restored (when [`EarlyStopping::restore_best`]), and
/// the count of epochs without improvement starts again. Once the rate is at its floor,
/// [`EarlyStopping::patience`] epochs without improvement end the run. The factor
/// multiplies the optimiser's own [`LrSchedule`](super::LrSchedule); it is part of the
/// checkpoint, so a resumed run continues at the decayed rate.
///
/// Why: a constant Adam rate leaves the iterate wandering in a band whose width grows with
/// the rate, so which epoch early stopping keeps (and how good it is) varies from seed to
/// seed and from model to model; a rate that falls when progress stops settles the run
/// into the bottom of its basin (docs/results.md measures it on the flagship).
///
/// # Example
/// ```
/// use tnet::train::{EarlyStopping, Monitor, PlateauDecay, TrainConfig};
/// let stop = EarlyStopping { monitor: Monitor::ValAccuracy, ..EarlyStopping::val_loss(6) }
///     .with_decay(PlateauDecay::new(3, 0.3, 0.01));
/// TrainConfig::new(60, 16, 0).with_early_stopping(stop).check().unwrap();
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct PlateauDecay {
    /// Epochs without improvement before the rate is lowered (at least 1).
    pub patience: usize,
    /// Factor of each decay, in `(0, 1)`.
    pub factor: f64,
    /// Floor of the rate as a fraction of the optimiser's, in `(0, 1]`.
    pub min_factor: f64,
}

impl PlateauDecay {
    /// A decay by `factor` after `patience` stalled epochs, down to `min_factor` of the
    /// base rate.
    pub fn new(patience: usize, factor: f64, min_factor: f64) -> Self {
        Self {
            patience,
            factor,
            min_factor,
        }
    }

    /// The rate factor after one more decay from `scale`, or `None` at the floor.
    fn next(&self, scale: f64) -> Option<f64> {
        // A relative margin, so a floor reached by repeated multiplication counts as reached.
        (scale > self.min_factor * (1.0 + 1e-9)).then(|| (scale * self.factor).max(self.min_factor))
    }
}

/// Settings of a training run.
///
/// # Example
/// ```
/// use tnet::train::{EarlyStopping, OptimizerConfig, TrainConfig};
/// let c = TrainConfig::new(20, 16, 7)
///     .with_optimizer(OptimizerConfig::adam(1e-3))
///     .with_early_stopping(EarlyStopping::val_loss(3))
///     .with_checkpoint("run.ckpt", 100);
/// c.check().unwrap();
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct TrainConfig {
    /// Number of epochs.
    pub epochs: usize,
    /// Clips per training batch.
    pub batch_size: usize,
    /// Clips per evaluation batch.
    pub eval_batch_size: usize,
    /// Seed of every random draw of the run (shuffles, dropout, frame sampling).
    pub seed: u64,
    /// Optimiser settings.
    pub optimizer: OptimizerConfig,
    /// Early stopping (needs validation clips).
    pub early_stopping: Option<EarlyStopping>,
    /// Checkpoint file (written at every epoch end and every `checkpoint_every` steps).
    pub checkpoint: Option<PathBuf>,
    /// Steps between checkpoints inside an epoch (0: epoch ends only).
    pub checkpoint_every: u64,
    /// Resume from the checkpoint file if it exists.
    pub resume: bool,
    /// Metrics log (JSON lines, one per epoch).
    pub metrics_log: Option<PathBuf>,
    /// Show a progress bar (only ever drawn when stderr is a terminal).
    pub progress: bool,
    /// Stop abruptly after this many steps of the run, without writing a checkpoint, as
    /// if the process had been killed (for testing resumption).
    pub halt_after_steps: Option<u64>,
}

impl TrainConfig {
    /// `epochs` epochs of batches of `batch_size`, seed `seed`, Adam at `1e-3`, no early
    /// stopping, no checkpoint, no log, progress bar on (when on a terminal).
    pub fn new(epochs: usize, batch_size: usize, seed: u64) -> Self {
        Self {
            epochs,
            batch_size,
            eval_batch_size: batch_size.max(1),
            seed,
            optimizer: OptimizerConfig::adam(1e-3),
            early_stopping: None,
            checkpoint: None,
            checkpoint_every: 0,
            resume: true,
            metrics_log: None,
            progress: true,
            halt_after_steps: None,
        }
    }

    /// Sets the optimiser.
    pub fn with_optimizer(mut self, o: OptimizerConfig) -> Self {
        self.optimizer = o;
        self
    }

    /// Enables early stopping.
    pub fn with_early_stopping(mut self, e: EarlyStopping) -> Self {
        self.early_stopping = Some(e);
        self
    }

    /// Checkpoints to `path` at every epoch end and every `every` steps (0: epoch ends
    /// only), resuming from it if it exists.
    pub fn with_checkpoint(mut self, path: impl Into<PathBuf>, every: u64) -> Self {
        self.checkpoint = Some(path.into());
        self.checkpoint_every = every;
        self
    }

    /// Writes the metrics log to `path`.
    pub fn with_metrics_log(mut self, path: impl Into<PathBuf>) -> Self {
        self.metrics_log = Some(path.into());
        self
    }

    /// Shows or hides the progress bar.
    pub fn with_progress(mut self, show: bool) -> Self {
        self.progress = show;
        self
    }

    /// Validates the settings.
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] naming the offending setting.
    pub fn check(&self) -> Result<()> {
        if self.epochs == 0 {
            return Err(Error::param("epochs", "must be at least 1"));
        }
        if self.batch_size == 0 {
            return Err(Error::param("batch_size", "must be at least 1"));
        }
        if self.eval_batch_size == 0 {
            return Err(Error::param("eval_batch_size", "must be at least 1"));
        }
        if let Some(e) = &self.early_stopping {
            if e.patience == 0 {
                return Err(Error::param(
                    "early_stopping.patience",
                    "must be at least 1",
                ));
            }
            if !(e.min_delta >= 0.0 && e.min_delta.is_finite()) {
                return Err(Error::param(
                    "early_stopping.min_delta",
                    format!("must be non-negative and finite, got {}", e.min_delta),
                ));
            }
            if let Some(d) = &e.decay {
                if d.patience == 0 {
                    return Err(Error::param(
                        "early_stopping.decay.patience",
                        "must be at least 1",
                    ));
                }
                if !(d.factor > 0.0 && d.factor < 1.0) {
                    return Err(Error::param(
                        "early_stopping.decay.factor",
                        format!("must lie in (0, 1), got {}", d.factor),
                    ));
                }
                if !(d.min_factor > 0.0 && d.min_factor <= 1.0) {
                    return Err(Error::param(
                        "early_stopping.decay.min_factor",
                        format!("must lie in (0, 1], got {}", d.min_factor),
                    ));
                }
            }
        }
        self.optimizer.check()
    }
}

/// Checks that training `model` on clips of `seq_len` steps under `config` fits the
/// [memory limit](crate::limits): the parameters four times over (values, gradients, two
/// optimiser moments) plus the activations of the larger of a training and an evaluation
/// batch ([`Lstm::memory_report`]). [`fit`] checks it before it starts; call it to refuse
/// a run before writing anything.
///
/// # Errors
/// [`Error::TooLarge`] if it does not fit.
///
/// # Example
/// ```
/// use tnet::models::{Lstm, LstmConfig};
/// use tnet::train::{TrainConfig, check_memory};
/// let model = Lstm::<f32>::dense(&LstmConfig::new(64, 16), 3, 0).unwrap();
/// check_memory(&model, 8, &TrainConfig::new(5, 32, 0)).unwrap();
/// assert!(check_memory(&model, 8, &TrainConfig::new(5, usize::MAX / 2, 0)).is_err());
/// ```
pub fn check_memory<T: Scalar>(
    model: &Lstm<T>,
    seq_len: usize,
    config: &TrainConfig,
) -> Result<()> {
    let mem = model.memory_report(1, seq_len);
    let batch = config.batch_size.max(config.eval_batch_size) as u128;
    crate::limits::check_bytes(
        "training (parameters, gradients, optimiser state and one batch's activations)",
        (mem.params as u128 * 4)
            .saturating_add((mem.training_activations as u128).saturating_mul(batch)),
    )
}

/// What a run produced.
#[derive(Clone, Debug, PartialEq)]
pub struct TrainReport {
    /// Metrics of every finished epoch (including those before a resumption).
    pub history: Vec<EpochMetrics>,
    /// Steps taken in the run.
    pub steps: u64,
    /// Epoch of the best monitored score (with early stopping).
    pub best_epoch: Option<usize>,
    /// Whether early stopping ended the run.
    pub stopped_early: bool,
    /// Whether the run was halted by `halt_after_steps`.
    pub halted: bool,
    /// The step the run resumed from, if it did.
    pub resumed_from_step: Option<u64>,
}

#[derive(Serialize)]
struct LogLine<'a> {
    kind: &'static str,
    #[serde(flatten)]
    metrics: &'a EpochMetrics,
    elapsed_s: f64,
}

fn hash_indices(ix: &[usize]) -> u64 {
    ix.iter()
        .fold(0x6a09_e667_f3bc_c908, |h, &i| derive_seed(h, i as u64))
}

fn epoch_order(train: &[usize], seed: u64, epoch: usize) -> Vec<usize> {
    let mut order = train.to_vec();
    let s = derive_seed(derive_seed(seed, STREAM_SHUFFLE), epoch as u64);
    order.shuffle(&mut crate::dense::rng(s));
    order
}

fn io_err(path: &Path) -> impl Fn(std::io::Error) -> Error + '_ {
    move |source| Error::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Trains `model` on the clips `split.train` of `data` (see the [module docs](crate::train)).
///
/// Each step: load the batch (frames sampled from a seed derived from the run seed and
/// the step), [`Lstm::loss_and_grad`] with dropout masks from another derived seed,
/// one [`Optimizer::step`]. Each epoch: evaluate on `split.test` (if any), log, update
/// early stopping, checkpoint.
///
/// With `config.resume` and an existing checkpoint file, the run continues from it:
/// parameters, optimiser state, position, history and log are restored, and the run
/// ends with bitwise the same weights as an uninterrupted one.
///
/// # Errors
/// [`Error::InvalidParameter`] for invalid settings, a split with indices out of range or
/// no training clips, early stopping without validation clips, a dataset that does not
/// fit the model, or a checkpoint written for another architecture or run (the message
/// names the difference); [`Error::NonFinite`] if the loss or gradients diverge; errors
/// of the dataset, the model and file I/O.
///
/// # Example
/// ```
/// use tnet::models::{Lstm, LstmConfig};
/// use tnet::data::Split;
/// use tnet::train::{InMemoryDataset, OptimizerConfig, TrainConfig, fit};
/// let data = InMemoryDataset::<f64>::synthetic(8, 2, 3, 4, 0.1, 0).unwrap();
/// let mut model = Lstm::<f64>::dense(&LstmConfig::new(4, 6), 2, 0).unwrap();
/// let cfg = TrainConfig::new(30, 4, 0)
///     .with_optimizer(OptimizerConfig::adam(0.05))
///     .with_progress(false);
/// let report = fit(&mut model, &data, &Split::all(8), &cfg).unwrap();
/// assert_eq!(report.steps, 60);
/// assert!(report.history.last().unwrap().train_loss < report.history[0].train_loss);
/// ```
pub fn fit<T: Scalar>(
    model: &mut Lstm<T>,
    data: &dyn SequenceDataset<T>,
    split: &Split,
    config: &TrainConfig,
) -> Result<TrainReport> {
    config.check()?;
    check_fits(model, data)?;
    check_memory(model, data.seq_len(), config)?;
    if split.train.is_empty() {
        return Err(Error::param("split", "no training clips"));
    }
    if let Some(&i) = split
        .train
        .iter()
        .chain(&split.test)
        .find(|&&i| i >= data.n_clips())
    {
        return Err(Error::param(
            "split",
            format!(
                "clip index {i} is out of range for {} clips",
                data.n_clips()
            ),
        ));
    }
    if config.early_stopping.is_some() && split.test.is_empty() {
        return Err(Error::param(
            "early_stopping",
            "early stopping needs validation clips, but the split has none",
        ));
    }
    let start = Instant::now();
    let bs = config.batch_size;
    let steps_per_epoch = split.train.len().div_ceil(bs);
    let total_steps = (config.epochs * steps_per_epoch) as u64;
    let run = RunFingerprint {
        seed: config.seed,
        epochs: config.epochs,
        batch_size: bs,
        eval_batch_size: config.eval_batch_size,
        optimizer: config.optimizer.clone(),
        early_stopping: config.early_stopping,
        data: [
            data.n_clips(),
            data.n_classes(),
            data.seq_len(),
            data.n_features(),
        ],
        train: (split.train.len(), hash_indices(&split.train)),
        val: (split.test.len(), hash_indices(&split.test)),
    };
    let mut opt = Optimizer::new(&config.optimizer, &model.param_specs())?;
    let mut state = TrainState::fresh();
    let mut best_params = None;
    let mut resumed_from_step = None;

    if let Some(path) = config
        .checkpoint
        .as_deref()
        .filter(|p| config.resume && p.exists())
    {
        let ck = Checkpoint::<T>::load(path)?;
        ck.architecture.expect_same(&model.architecture(), path)?;
        ck.run.expect_same(&run, path)?;
        model.set_params(&ck.params)?;
        opt.restore(ck.optimizer_step, ck.optimizer_slots)?;
        opt.set_lr_scale(ck.state.lr_scale);
        state = ck.state;
        best_params = ck.best_params;
        resumed_from_step = Some(state.global_step);
    }
    if let Some(log) = &config.metrics_log {
        let f = std::fs::OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(false)
            .open(log)
            .map_err(io_err(log))?;
        let len = f.metadata().map_err(io_err(log))?.len();
        let keep = if resumed_from_step.is_some() {
            state.log_bytes.min(len)
        } else {
            0
        };
        f.set_len(keep).map_err(io_err(log))?;
        state.log_bytes = keep;
    }

    let bar = Progress::new(
        total_steps,
        config.progress && std::io::stderr().is_terminal(),
    );
    bar.set_position(state.global_step);

    let report = |state: &TrainState, halted: bool| TrainReport {
        history: state.history.clone(),
        steps: state.global_step,
        best_epoch: state.best_epoch,
        stopped_early: state.stopped_early,
        halted,
        resumed_from_step,
    };
    // The epochs already in the checkpoint's history file (none yet in this process:
    // the first save writes the whole history, later saves append).
    let mut cursor = HistoryCursor::default();
    let mut save =
        |model: &Lstm<T>, opt: &Optimizer<T>, state: &TrainState, best: &Option<Vec<_>>| {
            match &config.checkpoint {
                Some(path) => Checkpoint {
                    architecture: model.architecture(),
                    run: run.clone(),
                    state: state.without_history(),
                    params: model.params_owned(),
                    optimizer_step: opt.step_count(),
                    optimizer_slots: opt.slots().to_vec(),
                    best_params: best.clone(),
                }
                .save_appending(path, &state.history, &mut cursor),
                None => Ok(()),
            }
        };

    while !state.finished && state.epoch < config.epochs {
        let order = epoch_order(&split.train, config.seed, state.epoch);
        while state.step_in_epoch < steps_per_epoch {
            let s = state.step_in_epoch;
            let idx = &order[s * bs..((s + 1) * bs).min(order.len())];
            let step = state.global_step;
            let sampling = Sampling::Train {
                seed: derive_seed(derive_seed(config.seed, STREAM_SAMPLING), step),
            };
            let (x, y) = load_batch(data, idx, sampling)?;
            let dropout = derive_seed(derive_seed(config.seed, STREAM_DROPOUT), step);
            let mut out = model.loss_and_grad(x.view(), &y, Some(dropout))?;
            if !out.loss.is_finite() {
                return Err(Error::NonFinite {
                    context: "training loss (the run diverged: lower the learning rate or clip \
                              the gradients); index = step",
                    index: step as usize,
                });
            }
            let norms = out.grads.norms();
            state.grad_sq_sums.resize(norms.len(), 0.0);
            for (acc, g) in state.grad_sq_sums.iter_mut().zip(&norms) {
                *acc += g * g;
            }
            let stats = opt.step(model.params_mut(), &mut out.grads, total_steps)?;
            if config.optimizer.balance_cores {
                model.balance_maps();
            }
            state.loss_sum += out.loss * idx.len() as f64;
            state.correct += out.correct;
            state.seen += idx.len();
            state.last_lr = stats.lr;
            state.last_grad_norm = stats.grad_norm;
            state.global_step += 1;
            state.step_in_epoch += 1;
            bar.set_position(state.global_step);
            bar.set_message(format!(
                "epoch {} loss {:.4}",
                state.epoch + 1,
                state.loss_sum / state.seen as f64
            ));
            if config.halt_after_steps == Some(state.global_step) {
                bar.finish_and_clear();
                return Ok(report(&state, true));
            }
            if config.checkpoint_every > 0 && state.global_step % config.checkpoint_every == 0 {
                save(model, &opt, &state, &best_params)?;
            }
        }

        let val = if split.test.is_empty() {
            None
        } else {
            Some(evaluate(model, data, &split.test, config.eval_batch_size)?)
        };
        let metrics = EpochMetrics {
            epoch: state.epoch,
            step: state.global_step,
            lr: state.last_lr,
            train_loss: state.loss_sum / state.seen.max(1) as f64,
            train_accuracy: state.correct as f64 / state.seen.max(1) as f64,
            grad_norm: state.last_grad_norm,
            val,
            params: param_stats(model, &state.grad_sq_sums, steps_per_epoch),
        };
        if let Some(log) = &config.metrics_log {
            let line = LogLine {
                kind: "epoch",
                metrics: &metrics,
                elapsed_s: start.elapsed().as_secs_f64(),
            };
            let mut text =
                serde_json::to_string(&line).map_err(|e| Error::corrupt(e.to_string()))?;
            text.push('\n');
            let mut f = std::fs::OpenOptions::new()
                .append(true)
                .open(log)
                .map_err(io_err(log))?;
            f.write_all(text.as_bytes()).map_err(io_err(log))?;
            f.flush().map_err(io_err(log))?;
            state.log_bytes = f.metadata().map_err(io_err(log))?.len();
        }
        if let (Some(es), Some(v)) = (&config.early_stopping, &metrics.val) {
            let score = match es.monitor {
                Monitor::ValLoss => v.loss,
                Monitor::ValAccuracy => -v.accuracy,
            };
            if state.best_score.is_none_or(|b| score < b - es.min_delta) {
                state.best_score = Some(score);
                state.best_epoch = Some(state.epoch);
                state.bad_epochs = 0;
                if es.restore_best {
                    best_params = Some(model.params_owned());
                }
            } else {
                state.bad_epochs += 1;
                match es.decay.map(|d| (d.patience, d.next(state.lr_scale))) {
                    // The rate can still fall: the decay's patience governs.
                    Some((patience, Some(scale))) => {
                        if state.bad_epochs >= patience {
                            state.lr_scale = scale;
                            opt.set_lr_scale(scale);
                            state.bad_epochs = 0;
                            if let (true, Some(best)) = (es.restore_best, &best_params) {
                                model.set_params(best)?;
                            }
                        }
                    }
                    _ => {
                        if state.bad_epochs >= es.patience {
                            state.stopped_early = true;
                            state.finished = true;
                        }
                    }
                }
            }
        }
        state.history.push(metrics);
        state.epoch += 1;
        state.step_in_epoch = 0;
        state.loss_sum = 0.0;
        state.correct = 0;
        state.seen = 0;
        state.grad_sq_sums.clear();
        if state.epoch == config.epochs {
            state.finished = true;
        }
        if state.finished {
            if let (Some(es), Some(best)) = (&config.early_stopping, &best_params) {
                if es.restore_best {
                    model.set_params(best)?;
                }
            }
        }
        save(model, &opt, &state, &best_params)?;
    }
    bar.finish_and_clear();
    Ok(report(&state, false))
}

/// The per-tensor report of an epoch: norms now, RMS gradient norms over its `steps`.
fn param_stats<T: Scalar>(model: &Lstm<T>, grad_sq_sums: &[f64], steps: usize) -> Vec<ParamStat> {
    model
        .param_specs()
        .into_iter()
        .zip(model.params())
        .enumerate()
        .map(|(i, (spec, p))| ParamStat {
            name: spec.name,
            norm: crate::dense::sum_of_squares(p).sqrt(),
            grad_norm: (grad_sq_sums.get(i).copied().unwrap_or(0.0) / steps.max(1) as f64).sqrt(),
        })
        .collect()
}

/// The training progress bar: indicatif's under the `progress` feature, nothing without
/// it.
#[cfg(feature = "progress")]
struct Progress(indicatif::ProgressBar);

#[cfg(feature = "progress")]
impl Progress {
    fn new(total: u64, show: bool) -> Self {
        use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
        let target = if show {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        };
        let bar = ProgressBar::with_draw_target(Some(total), target);
        if let Ok(style) = ProgressStyle::with_template(
            "{bar:30} {pos}/{len} steps  {msg}  [{elapsed_precise} < {eta_precise}]",
        ) {
            bar.set_style(style);
        }
        Self(bar)
    }

    fn set_position(&self, pos: u64) {
        self.0.set_position(pos);
    }

    fn set_message(&self, msg: String) {
        self.0.set_message(msg);
    }

    fn finish_and_clear(&self) {
        self.0.finish_and_clear();
    }
}

/// The training progress bar: indicatif's under the `progress` feature, nothing without
/// it.
#[cfg(not(feature = "progress"))]
struct Progress;

#[cfg(not(feature = "progress"))]
impl Progress {
    fn new(_total: u64, _show: bool) -> Self {
        Self
    }

    fn set_position(&self, _pos: u64) {}

    fn set_message(&self, _msg: String) {}

    fn finish_and_clear(&self) {}
}
