//! `tnet train` and `tnet eval`: recurrent video classifiers from the command line.
//!
//! A run directory holds everything a run needs to be resumed, evaluated or described:
//!
//! | file | what |
//! |---|---|
//! | `run.json` | the data source, model spec, sizes, schedule and seed, with a checksum (written first) |
//! | `checkpoint.bin` | the latest checkpoint (atomic; `--resume` continues from it) |
//! | `checkpoint.bin.history.jsonl` | the checkpoint's epoch history, appended at each save |
//! | `metrics.jsonl` | one JSON line per epoch |
//! | `model.bin` | the trained model |
//! | `results.json` | the test evaluation of the trained model |

use std::path::{Path, PathBuf};
use std::time::Instant;

use clap::Args;
use serde::Serialize;
use serde_json::json;

use tnet::data::Split;
use tnet::data::{
    FolderConfig, FolderDataset, GroupLevel, SyntheticConfig, SyntheticVideo, VideoDataset, split,
};
use tnet::models::zoo::{HtLayout, ModelKind, ModelSpec};
use tnet::models::{Lstm, LstmConfig};
use tnet::train::run::RunSpec;
use tnet::train::{
    EpochMetrics, EvalReport, OptimizerConfig, ParamStat, TrainConfig, check_memory, evaluate, fit,
};
use tnet::{Error, Result};

use super::{Failure, usage};

/// `tnet train`.
#[derive(Args)]
pub struct TrainArgs {
    /// `synthetic` (small built-in video), `synthetic-hard` (speed, direction and event
    /// order), `synthetic-full` (UCF11-sized built-in video),
    /// or a folder `class/[group/]clip/frame.{png,jpg}`.
    #[arg(long, value_name = "SOURCE")]
    data: String,
    /// Model: fdht, ht, tt, tr, bt, dense, or a fully decomposed fd-tt, fd-tr, fd-bt.
    #[arg(long, default_value = "fdht")]
    model: String,
    /// Rank of the tensorized maps (every rank of the format).
    #[arg(long, default_value_t = 4)]
    rank: usize,
    /// A budget of LSTM parameters (maps and gate bias), so that kinds can be compared at
    /// equal size: the number of modes (2-6, and with it the modes and the HT tree) and
    /// the rank whose model comes closest to N from below are used instead of --rank
    /// (with --order, only the rank is chosen).
    #[arg(long, value_name = "N")]
    params: Option<usize>,
    /// Number of modes of the tensorization [default: 4].
    #[arg(long)]
    order: Option<usize>,
    /// Blocks of the block-term maps.
    #[arg(long, default_value_t = 2)]
    blocks: usize,
    /// Hidden units H.
    #[arg(long, default_value_t = 32)]
    hidden: usize,
    /// Frames per clip T (folder data; the synthetic presets have their own).
    #[arg(long)]
    frames: Option<usize>,
    /// Frame size HxW for folder data (default 120x160, the UCF11 protocol).
    #[arg(long, value_name = "HxW")]
    size: Option<String>,
    /// Epochs.
    #[arg(long, default_value_t = 20)]
    epochs: usize,
    /// Adam learning rate.
    #[arg(long, default_value_t = 3e-3)]
    lr: f64,
    /// Gain on the recurrent input `h_{t-1}` (see `LstmConfig::recurrent_gain`).
    #[arg(long, value_name = "GAIN", default_value_t = 1.0)]
    recurrent_gain: f64,
    /// Layer-normalise the gate pre-activations (see `LstmConfig::gate_norm`).
    #[arg(long)]
    gate_norm: bool,
    /// Tree layout of the HT maps (ht, fdht): `split` (input and output modes under separate
    /// children of the root, W of rank at most r; learns fast), `kronecker` (W = sum_k A_k
    /// (x) B_k with split factors, full rank possible; better after long training, slow to
    /// start) or `paired` (leaf k pairs input and output mode k).
    #[arg(long, value_name = "LAYOUT", default_value = "split")]
    ht_layout: String,
    /// Dropout probability on the input and the recurrent path while training (the
    /// flagship uses 0.1; see `LstmConfig::with_dropout`).
    #[arg(long, value_name = "P", default_value_t = 0.0)]
    dropout: f64,
    /// Clips per batch.
    #[arg(long, default_value_t = 16)]
    batch: usize,
    /// Seed of the split, the initialisation and every draw of training.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Fraction of the clips held out for testing (by group for folder data with a group
    /// level, so no group is in both parts; stratified by class otherwise).
    #[arg(long, default_value_t = 0.2)]
    test_fraction: f64,
    /// Test clips from their own folder (a dataset that ships its split): every clip of
    /// --data trains, every clip of DIR tests (classes matched by name; a class the
    /// training data lacks is an error), and --test-fraction is not used.
    #[arg(long, value_name = "DIR")]
    test_data: Option<String>,
    /// Continue from the run directory's checkpoint (same settings required).
    #[arg(long)]
    resume: bool,
    /// Print the result as one JSON object.
    #[arg(long)]
    json: bool,
    /// The run directory.
    #[arg(short, long, value_name = "RUN_DIR")]
    output: PathBuf,
}

/// `tnet eval`.
#[derive(Args)]
pub struct EvalArgs {
    /// A run directory written by `tnet train`.
    run: PathBuf,
    /// Evaluate on another source (every clip of it) instead of the run's test split.
    #[arg(long, value_name = "SOURCE")]
    data: Option<String>,
    /// With --data: accept data holding only some of the run's classes (scored against
    /// the run's labels); without it, missing classes are an error that lists them.
    #[arg(long, requires = "data")]
    subset: bool,
    /// Print the result as one JSON object.
    #[arg(long)]
    json: bool,
}

/// `tnet predict`.
#[derive(Args)]
pub struct PredictArgs {
    /// A run directory written by `tnet train`.
    run: PathBuf,
    /// Clip folders, each holding the frames of one clip as .png/.jpg files (in natural
    /// order); the run's number of frames is taken at uniform positions.
    #[arg(required = true, value_name = "CLIP_DIR")]
    clips: Vec<PathBuf>,
    /// Print the result as one JSON object.
    #[arg(long)]
    json: bool,
}

const RUN: &str = "run.json";
const CHECKPOINT: &str = "checkpoint.bin";
const METRICS: &str = "metrics.jsonl";
const MODEL: &str = "model.bin";
const RESULTS: &str = "results.json";

/// A data source of the command line: the built-in video or a frame-folder tree.
enum Source {
    Synthetic(SyntheticVideo),
    Folder(FolderDataset),
    /// `--test-data`: the clips of `train`, then those of `test`, whose labels `map` sends
    /// to the training classes of the same name.
    Joined {
        train: Box<Source>,
        test: Box<Source>,
        map: Vec<usize>,
    },
}

impl Source {
    /// The source holding clip `index`, and the index within it.
    fn part(&self, index: usize) -> (&dyn VideoDataset, usize) {
        match self {
            Source::Synthetic(d) => (d, index),
            Source::Folder(d) => (d, index),
            Source::Joined { train, test, .. } => match index.checked_sub(train.len()) {
                None => train.part(index),
                Some(i) => test.part(i),
            },
        }
    }

    /// The training source (itself unless joined).
    fn first(&self) -> &Source {
        match self {
            Source::Joined { train, .. } => train.first(),
            other => other,
        }
    }

    /// Joins `test` to `train`, matching classes by name: a test class the training data
    /// lacks is an error naming it, and so (when `every_class`, as for a new run) is a
    /// training class the test data lacks; frames must have the same size.
    fn join(train: Source, test: Source, every_class: bool) -> std::result::Result<Self, Failure> {
        let absent = |missing: &str, ours: &str| {
            format!(
                "--test-data lacks classes of the training data: {missing} (the training \
                 classes are {ours}); every class needs test clips"
            )
        };
        let map = match_classes(
            &train.class_names(),
            &test.class_names(),
            |unknown, ours| {
                format!(
                    "--test-data has classes the training data lacks: {unknown}; the training \
                 classes are {ours}"
                )
            },
            every_class.then_some(&absent as Wording<'_>),
        )?;
        if (test.frames(), test.frame_len()) != (train.frames(), train.frame_len()) {
            return Err(usage(format!(
                "--test-data clips have {} frames of {} values, the training clips {} of {}",
                test.frames(),
                test.frame_len(),
                train.frames(),
                train.frame_len()
            )));
        }
        Ok(Source::Joined {
            train: Box::new(train),
            test: Box::new(test),
            map,
        })
    }
}

impl VideoDataset for Source {
    fn len(&self) -> usize {
        match self {
            Source::Joined { train, test, .. } => train.len() + test.len(),
            _ => self.part(0).0.len(),
        }
    }
    fn n_classes(&self) -> usize {
        self.first().part(0).0.n_classes()
    }
    fn class_names(&self) -> Vec<String> {
        self.first().part(0).0.class_names()
    }
    fn frames(&self) -> usize {
        self.first().part(0).0.frames()
    }
    fn frame_len(&self) -> usize {
        self.first().part(0).0.frame_len()
    }
    fn label(&self, index: usize) -> usize {
        match self {
            Source::Joined { train, test, map } => match index.checked_sub(train.len()) {
                None => train.label(index),
                Some(i) => map[test.label(i)],
            },
            _ => self.part(index).0.label(index),
        }
    }
    fn fill_clip(&self, index: usize, train: bool, epoch_seed: u64, out: &mut [f32]) -> Result<()> {
        let (source, i) = self.part(index);
        source.fill_clip(i, train, epoch_seed, out)
    }
}

/// Opens a data source: a built-in preset or a frame-folder tree.
fn open_data(
    source: &str,
    frames: Option<usize>,
    size: Option<(usize, usize)>,
    seed: u64,
) -> Result<Source> {
    match source {
        "synthetic" | "synthetic-hard" | "synthetic-full" => {
            let mut cfg = match source {
                "synthetic" => SyntheticConfig::quick(),
                "synthetic-hard" => SyntheticConfig::hard(),
                _ => SyntheticConfig::ucf11_like(),
            };
            cfg.seed = seed;
            if let Some(t) = frames {
                cfg.frames = t;
            }
            if let Some((h, w)) = size {
                (cfg.height, cfg.width) = (h, w);
            }
            Ok(Source::Synthetic(SyntheticVideo::new(cfg)?))
        }
        dir => {
            // UCF11's sizes and group numbering, with the layout found per folder:
            // class/clip/frames and class/group/clip/frames both work.
            let mut cfg = FolderConfig {
                groups: GroupLevel::Auto,
                ..FolderConfig::ucf11()
            };
            if let Some(t) = frames {
                cfg = cfg.with_frames(t);
            }
            if let Some((h, w)) = size {
                (cfg.height, cfg.width) = (h, w);
            }
            let data = FolderDataset::open(dir, &cfg)?;
            let report = data.report();
            if let Some(mixed) = &report.mixed_layout {
                eprintln!(
                    "tnet: warning: {dir} mixes layouts: {mixed}; a clip outside a group \
                     folder is its own group in the test split"
                );
            }
            if report.clips_skipped > 0 {
                eprintln!(
                    "tnet: warning: {} clips skipped ({} unreadable images); first issue: {:?}",
                    report.clips_skipped,
                    report.images_unreadable,
                    report.issues.first().map(|i| i.path.display().to_string())
                );
            }
            Ok(Source::Folder(data))
        }
    }
}

fn parse_size(s: &str) -> std::result::Result<(usize, usize), Failure> {
    let bad = || usage(format!("--size takes HxW, e.g. 120x160; got {s:?}"));
    let (h, w) = s.split_once(['x', 'X']).ok_or_else(bad)?;
    Ok((
        h.trim().parse().map_err(|_| bad())?,
        w.trim().parse().map_err(|_| bad())?,
    ))
}

/// Words a class-mismatch error from the offending classes and the run's classes.
type Wording<'a> = &'a dyn Fn(&str, &str) -> String;

/// The label in `ours` of every class of `theirs`, matched by name. `refuse(unknown,
/// ours)` words the error when `theirs` has classes `ours` lacks; `absent(missing,
/// ours)` the error when `theirs` lacks some of `ours` (`None`: a subset is allowed);
/// lists joined by commas.
fn match_classes(
    ours: &[String],
    theirs: &[String],
    refuse: impl FnOnce(&str, &str) -> String,
    absent: Option<Wording<'_>>,
) -> std::result::Result<Vec<usize>, Failure> {
    let not_in = |a: &[String], b: &[String]| -> Vec<String> {
        a.iter().filter(|c| !b.contains(c)).cloned().collect()
    };
    let unknown = not_in(theirs, ours);
    if !unknown.is_empty() {
        return Err(usage(refuse(&unknown.join(", "), &ours.join(", "))));
    }
    let missing = not_in(ours, theirs);
    if let (false, Some(absent)) = (missing.is_empty(), absent) {
        return Err(usage(absent(&missing.join(", "), &ours.join(", "))));
    }
    Ok(theirs
        .iter()
        .map(|c| ours.iter().position(|o| o == c).expect("checked above"))
        .collect())
}

/// The seeded hold-out split of a run: group-aware for folder data with a group level (no
/// group in both parts, UCF11's protocol), stratified by class otherwise; with
/// `--test-data`, the training source against the test source.
fn test_split(data: &Source, fraction: f64, seed: u64) -> Result<Split> {
    let parts = match data {
        Source::Joined { train, test, .. } => {
            let n = train.len();
            return Ok(Split {
                train: (0..n).collect(),
                test: (n..n + test.len()).collect(),
            });
        }
        Source::Folder(f) if f.has_group_folders() => {
            let groups: Vec<usize> = (0..f.len()).map(|i| f.group(i)).collect();
            split::group_holdout(&groups, fraction, seed)?
        }
        _ => {
            let labels = tnet::data::labels(data);
            split::holdout(data.len(), fraction, seed, Some(&labels))?
        }
    };
    Ok(Split {
        train: parts.train,
        test: parts.test,
    })
}

fn write_json(path: &Path, value: &impl Serialize) -> Result<()> {
    let text = serde_json::to_string_pretty(value).expect("plain data serialises");
    tnet::io::write_atomic(path, text.as_bytes())
}

/// The number of modes without `--order`.
const DEFAULT_ORDER: usize = 4;
/// The numbers of modes `--params` chooses from.
const BUDGET_ORDERS: std::ops::RangeInclusive<usize> = 2..=6;

pub fn train(a: TrainArgs) -> std::result::Result<(), Failure> {
    let kind: ModelKind = a
        .model
        .parse()
        .map_err(|e| usage(format!("--model: {e}")))?;
    let size = a.size.as_deref().map(parse_size).transpose()?;
    let dir = &a.output;
    let run_file = dir.join(RUN);
    if run_file.exists() && !a.resume {
        return Err(usage(format!(
            "{} already holds a run; pass --resume to continue it or choose another directory",
            dir.display()
        )));
    }
    // Everything is checked before the run directory is touched.
    let data = open_data(&a.data, a.frames, size, a.seed)?;
    let data = match &a.test_data {
        Some(dir) => Source::join(data, open_data(dir, a.frames, size, a.seed)?, true)?,
        None => data,
    };
    let ht_layout: HtLayout = a
        .ht_layout
        .parse()
        .map_err(|e: Error| usage(e.to_string()))?;
    let (rank, order) = match a.params {
        Some(budget) => {
            let base = ModelSpec::new(kind, 1)
                .with_order(a.order.unwrap_or(DEFAULT_ORDER))
                .with_blocks(a.blocks)
                .with_ht_layout(ht_layout);
            let config = LstmConfig::new(data.frame_len(), a.hidden).with_gate_norm(a.gate_norm);
            // An explicit --order is kept; otherwise the order is chosen with the rank.
            let spec = match a.order {
                Some(_) => base.with_budget(&config, budget)?,
                None => base.with_budget_over_orders(&config, budget, BUDGET_ORDERS)?,
            };
            (spec.rank, spec.order)
        }
        None => (a.rank, a.order.unwrap_or(DEFAULT_ORDER)),
    };
    let spec = RunSpec {
        data: a.data.clone(),
        frames: a.frames,
        size,
        model: kind.to_string(),
        rank,
        order,
        blocks: a.blocks,
        hidden: a.hidden,
        epochs: a.epochs,
        lr: a.lr,
        batch: a.batch,
        seed: a.seed,
        test_fraction: a.test_fraction,
        recurrent_gain: a.recurrent_gain,
        gate_norm: a.gate_norm,
        ht_layout,
        dropout: a.dropout,
        n_input: data.frame_len(),
        n_classes: VideoDataset::n_classes(&data),
        class_names: data.class_names(),
        clip_frames: data.frames(),
        test_data: a.test_data.clone(),
    };
    if a.resume && run_file.exists() {
        let old = RunSpec::read(&run_file)?;
        if old != spec {
            return Err(usage(format!(
                "--resume with other settings than the run in {} (see its {RUN})",
                dir.display()
            )));
        }
    }
    let split = test_split(&data, spec.test_fraction, spec.seed)?;
    let mut model = spec.model::<f32>()?;
    let config = TrainConfig::new(spec.epochs, spec.batch, spec.seed)
        .with_optimizer(OptimizerConfig::adam(spec.lr))
        .with_checkpoint(dir.join(CHECKPOINT), 0)
        .with_metrics_log(dir.join(METRICS))
        .with_progress(!a.json);
    config.check()?;
    check_memory(&model, spec.clip_frames, &config)?;
    std::fs::create_dir_all(dir).map_err(|source| Error::Io {
        path: dir.clone(),
        source,
    })?;
    spec.write(&run_file)?;
    if !a.json {
        let p = model.param_count();
        eprintln!(
            "training {} (H = {}, {} parameters: {} in the LSTM) on {} clips, testing on {}",
            kind,
            spec.hidden,
            p.total(),
            p.lstm(),
            split.train.len(),
            split.test.len()
        );
    }
    let start = Instant::now();
    let report = fit(&mut model, &data, &split, &config)?;
    let seconds = start.elapsed().as_secs_f64();
    model.save(dir.join(MODEL))?;
    let test = evaluate(&model, &data, &split.test, 64)?;
    let results = results_json(&model, &test, &data.class_names());
    write_json(&dir.join(RESULTS), &results)?;
    if a.json {
        let mut out = results;
        out["epochs_run"] = json!(report.history.len());
        out["seconds"] = json!(seconds);
        out["resumed_from_step"] = json!(report.resumed_from_step);
        println!("{out}");
    } else {
        for e in &report.history {
            let val = e.val.as_ref().map_or(f64::NAN, |v| v.accuracy);
            println!(
                "epoch {:>3}  loss {:.4}  train accuracy {:5.1} %  test accuracy {:5.1} %",
                e.epoch + 1,
                e.train_loss,
                100.0 * e.train_accuracy,
                100.0 * val
            );
        }
        print_eval(&test, &data.class_names());
        println!("run written to {} ({seconds:.1} s)", dir.display());
    }
    Ok(())
}

pub fn eval(a: EvalArgs) -> std::result::Result<(), Failure> {
    let spec = RunSpec::read(&a.run.join(RUN))?;
    let (data, indices) = match &a.data {
        Some(src) => {
            let data = open_data(src, spec.frames, spec.size, spec.seed)?;
            let all: Vec<usize> = (0..data.len()).collect();
            (data, all)
        }
        None => {
            let data = open_data(&spec.data, spec.frames, spec.size, spec.seed)?;
            let data = match &spec.test_data {
                Some(dir) => {
                    // A run's own test folder, as it was trained (runs of older versions
                    // may test on some of the classes only).
                    Source::join(
                        data,
                        open_data(dir, spec.frames, spec.size, spec.seed)?,
                        false,
                    )?
                }
                None => data,
            };
            let split = test_split(&data, spec.test_fraction, spec.seed)?;
            (data, split.test)
        }
    };
    let mut model = spec.model::<f32>()?;
    model.load_params(a.run.join(MODEL))?;
    let data = Relabelled::new(&data, &spec, a.subset)?;
    let test = evaluate(&model, &data, &indices, 64)?;
    if a.json {
        println!("{}", results_json(&model, &test, &data.names));
    } else {
        print_eval(&test, &data.names);
    }
    Ok(())
}

/// Data whose labels are the run's: each class of the data is matched to the run's class
/// of the same name.
struct Relabelled<'a> {
    data: &'a Source,
    /// Run label of every data label.
    map: Vec<usize>,
    /// The run's class names.
    names: Vec<String>,
}

impl<'a> Relabelled<'a> {
    /// Refuses data with a class the run was not trained on, naming it and the run's
    /// classes, and (unless `subset`) data lacking some of the run's classes. A run
    /// written before class names were recorded is matched by position when the number of
    /// classes agrees (with a warning).
    fn new(data: &'a Source, spec: &RunSpec, subset: bool) -> std::result::Result<Self, Failure> {
        let theirs = data.class_names();
        if spec.class_names.is_empty() {
            if theirs.len() != spec.n_classes {
                return Err(usage(format!(
                    "the data has {} classes but the model was trained on {}",
                    theirs.len(),
                    spec.n_classes
                )));
            }
            eprintln!(
                "tnet: warning: this run does not record its class names (written by an \
                 older tnet); classes are matched by their sorted position"
            );
            return Ok(Self {
                data,
                map: (0..theirs.len()).collect(),
                names: theirs,
            });
        }
        let ours = &spec.class_names;
        let absent = |missing: &str, ours: &str| {
            format!(
                "the data lacks classes the model was trained on: {missing} (the model knows \
                 {ours}); pass --subset to score it on the classes it has"
            )
        };
        let map = match_classes(
            ours,
            &theirs,
            |unknown, ours| {
                format!(
                    "the data has classes the model was not trained on: {unknown}; the model knows {ours}"
                )
            },
            (!subset).then_some(&absent as Wording<'_>),
        )?;
        Ok(Self {
            data,
            map,
            names: ours.clone(),
        })
    }
}

impl VideoDataset for Relabelled<'_> {
    fn len(&self) -> usize {
        self.data.len()
    }
    fn n_classes(&self) -> usize {
        self.names.len()
    }
    fn class_names(&self) -> Vec<String> {
        self.names.clone()
    }
    fn frames(&self) -> usize {
        self.data.frames()
    }
    fn frame_len(&self) -> usize {
        self.data.frame_len()
    }
    fn label(&self, index: usize) -> usize {
        self.map[self.data.label(index)]
    }
    fn fill_clip(&self, index: usize, train: bool, epoch_seed: u64, out: &mut [f32]) -> Result<()> {
        self.data.fill_clip(index, train, epoch_seed, out)
    }
}

/// The frame size `(H, W, channels)` a run's model was trained on.
fn frame_size(spec: &RunSpec) -> Result<(usize, usize, usize)> {
    let preset = match spec.data.as_str() {
        "synthetic" => Some(SyntheticConfig::quick()),
        "synthetic-hard" => Some(SyntheticConfig::hard()),
        "synthetic-full" => Some(SyntheticConfig::ucf11_like()),
        _ => None,
    };
    let (h, w, c) = match preset {
        Some(p) => {
            let (h, w) = spec.size.unwrap_or((p.height, p.width));
            (h, w, p.channels)
        }
        None => {
            let base = FolderConfig::ucf11();
            let (h, w) = spec.size.unwrap_or((base.height, base.width));
            (h, w, base.channels)
        }
    };
    if h * w * c != spec.n_input {
        return Err(Error::Corrupt {
            path: None,
            reason: format!(
                "run.json is inconsistent: frames of {h}x{w}x{c} values but a model input of {}",
                spec.n_input
            ),
        });
    }
    Ok((h, w, c))
}

/// Classifies clip folders with a trained run and prints each clip's class
/// probabilities.
pub fn predict(a: PredictArgs) -> std::result::Result<(), Failure> {
    let spec = RunSpec::read(&a.run.join(RUN))?;
    let mut model = spec.model::<f32>()?;
    model.load_params(a.run.join(MODEL))?;
    let (h, w, c) = frame_size(&spec)?;
    let cfg = FolderConfig {
        channels: c,
        ..FolderConfig::new(h, w, spec.clip_frames)
    };
    let names: Vec<String> = if spec.class_names.is_empty() {
        (0..spec.n_classes).map(|k| format!("class {k}")).collect()
    } else {
        spec.class_names.clone()
    };
    let mut rows = Vec::with_capacity(a.clips.len());
    for dir in &a.clips {
        let x = tnet::data::folder::read_clip(dir, &cfg)?;
        let (t, n) = x.dim();
        let x = x
            .into_shape_with_order((1, t, n))
            .expect("a fresh standard-layout array");
        let logits = model.logits(x.view())?;
        let z: Vec<f64> = logits.iter().map(|&v| f64::from(v)).collect();
        let top = z.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let e: Vec<f64> = z.iter().map(|v| (v - top).exp()).collect();
        let sum: f64 = e.iter().sum();
        let p: Vec<f64> = e.iter().map(|v| v / sum).collect();
        rows.push((dir, p));
    }
    let best = |p: &[f64]| (0..p.len()).fold(0, |b, k| if p[k] > p[b] { k } else { b });
    if a.json {
        let clips: Vec<serde_json::Value> = rows
            .iter()
            .map(|(dir, p)| {
                json!({
                    "clip": dir.display().to_string(),
                    "class": names[best(p)],
                    "probabilities": names.iter().zip(p).map(|(n, v)| (n.clone(), json!(v)))
                        .collect::<serde_json::Map<_, _>>(),
                })
            })
            .collect();
        println!("{}", json!({ "classes": names, "clips": clips }));
    } else {
        for (dir, p) in &rows {
            let mut order: Vec<usize> = (0..p.len()).collect();
            order.sort_by(|&i, &j| p[j].total_cmp(&p[i]));
            let top: Vec<String> = order
                .iter()
                .take(3)
                .map(|&k| format!("{} {:.1} %", names[k], 100.0 * p[k]))
                .collect();
            println!("{}: {}", dir.display(), top.join(", "));
        }
    }
    Ok(())
}

/// Describes the model of a run directory: parameters per part, compression, memory.
pub fn info(run: &Path, json_out: bool) -> std::result::Result<(), Failure> {
    let spec = RunSpec::read(&run.join(RUN))?;
    let model = spec.model::<f32>()?;
    let p = model.param_count();
    let ratio = model.compression_ratio();
    let mem = model.memory_report(1, spec.clip_frames);
    let tensors = last_epoch_tensors(run)?;
    if json_out {
        println!(
            "{}",
            json!({
                "model": spec.model,
                "maps": model.map_descriptions(),
                "params": {"input_map": p.input_map, "recurrent_map": p.recurrent_map,
                           "fused_map": p.fused_map, "bias": p.bias,
                           "classifier": p.classifier, "lstm": p.lstm(), "total": p.total()},
                "compression": {"lstm": ratio.without_classifier,
                                "with_classifier": ratio.with_classifier},
                "memory_bytes": {"params": mem.params, "stream_state": mem.stream_state,
                                 "stream_step": mem.stream_step},
                "last_epoch": tensors.as_ref().map(|(e, t)| json!({"epoch": e, "tensors": t})),
            })
        );
    } else {
        println!(
            "model      {} ({})",
            spec.model,
            model.map_descriptions().join("; ")
        );
        println!(
            "parameters input map {}, recurrent map {}, fused map {}, bias {}, classifier {}",
            p.input_map, p.recurrent_map, p.fused_map, p.bias, p.classifier
        );
        println!(
            "           LSTM {} / total {}; {:.0}x smaller than the dense LSTM ({:.0}x with the classifier)",
            p.lstm(),
            p.total(),
            ratio.without_classifier,
            ratio.with_classifier
        );
        println!(
            "memory     parameters {} B, streaming state {} B, one streaming step {} B",
            mem.params, mem.stream_state, mem.stream_step
        );
        if let Some((epoch, stats)) = &tensors {
            println!(
                "tensors    at the end of epoch {} ({METRICS}): norm, RMS gradient norm over the epoch, their ratio",
                epoch + 1
            );
            let width = stats.iter().map(|t| t.name.len()).max().unwrap_or(4);
            for t in stats {
                println!(
                    "           {:<width$}  {:>10.4e}  {:>10.4e}  {:>10.4e}",
                    t.name,
                    t.norm,
                    t.grad_norm,
                    t.grad_norm / t.norm.max(f64::MIN_POSITIVE)
                );
            }
        }
    }
    Ok(())
}

/// The per-tensor report of the last epoch in the run's metrics log (`None` without a log
/// or for logs written before the report existed).
fn last_epoch_tensors(run: &Path) -> Result<Option<(usize, Vec<ParamStat>)>> {
    let path = run.join(METRICS);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => return Err(Error::Io { path, source }),
    };
    let Some(line) = text.lines().rev().find(|l| !l.trim().is_empty()) else {
        return Ok(None);
    };
    let m: EpochMetrics = serde_json::from_str(line).map_err(|e| Error::Corrupt {
        path: Some(path.clone()),
        reason: format!("last line: {e}"),
    })?;
    Ok((!m.params.is_empty()).then_some((m.epoch, m.params)))
}

fn per_class(test: &EvalReport) -> Vec<f64> {
    test.confusion
        .iter()
        .enumerate()
        .map(|(c, row)| {
            let n: usize = row.iter().sum();
            if n == 0 {
                f64::NAN
            } else {
                row[c] as f64 / n as f64
            }
        })
        .collect()
}

fn results_json(model: &Lstm<f32>, test: &EvalReport, names: &[String]) -> serde_json::Value {
    let p = model.param_count();
    json!({
        "accuracy": test.accuracy,
        "loss": test.loss,
        "clips": test.n,
        "classes": names,
        "per_class_accuracy": per_class(test),
        "confusion": test.confusion,
        "params": {"lstm": p.lstm(), "total": p.total()},
        "compression": model.compression_ratio().without_classifier,
    })
}

fn print_eval(test: &EvalReport, names: &[String]) {
    println!(
        "test: {} clips, accuracy {:.1} %, loss {:.4}",
        test.n,
        100.0 * test.accuracy,
        test.loss
    );
    let width = names.iter().map(String::len).max().unwrap_or(5).max(5);
    print!("{:>width$}  ", "true\\pred");
    for c in 0..names.len() {
        print!("{c:>5}");
    }
    println!("  accuracy");
    for ((c, row), acc) in test.confusion.iter().enumerate().zip(per_class(test)) {
        print!("{:>width$}  ", format!("{c} {}", names[c]));
        for v in row {
            print!("{v:>5}");
        }
        println!("  {:5.1} %", 100.0 * acc);
    }
}
