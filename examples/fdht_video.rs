//! FDHT-LSTM and its baselines on the built-in synthetic video: the experiment of
//! Yin et al., "Towards Extremely Compact RNNs for Video Recognition with Fully Decomposed
//! Hierarchical Tucker Structure" (CVPR 2021), on data that ships with the library.
//!
//! Every model is an LSTM classifier trained by the same code, on the same clips, with the
//! same seeds and schedule; only the weight format changes:
//!
//! | model | input-to-hidden `W_x` (4H x N) | hidden-to-hidden `U` (4H x H) |
//! |---|---|---|
//! | dense LSTM | dense | dense |
//! | TT-, TR-, BT-, HT-LSTM | tensor train / ring / block-term / HT matrix | dense |
//! | FDHT-LSTM | one HT matrix `W` (4H x P) applied to `[x_t ; h_{t-1} ; 0]` | (inside `W`) |
//!
//! The synthetic classes (left/right motion, approaching/receding, event order, ...) cannot
//! be told apart from any single frame, so a model must use time. The clips are split
//! 80/20 (stratified, seeded) into training and test clips, and 10 % of the training clips
//! are held out for validation: every model trains with Adam until its validation accuracy
//! has not improved for `patience` epochs (at most `epochs`), and the parameters of its best
//! validation epoch are kept. The test clips are used once, at the end. The table reports
//! the test accuracy, the parameters of the recurrent part and of the whole classifier, the
//! compression ratio against the dense LSTM of the same sizes, and the training time per
//! epoch.
//!
//! ```text
//! cargo run --release --example fdht_video              # default setting, about 17 min on 2 cores
//! cargo run --release --example fdht_video -- --quick   # a smoke run (CI)
//! cargo run --release --example fdht_video -- --full    # UCF11-like: 160x120x3, 6 frames, 11 classes, 16,500 clips
//! cargo run --release --example fdht_video -- --task hard   # speed, direction and event order
//! ```
//! Options: `--epochs N`, `--seed S`, `--models fdht,tt,dense`, `--lr LR`, `--fdht-ranks
//! 4,8,12` (one FDHT-LSTM per rank; the default setting trains ranks 4, 8 and 12),
//! `--rank R` (the baselines' rank, 4 as published), `--ht-layout kronecker|split|paired`
//! (the tree layout of the HT maps, `kronecker` by default, see `HtLayout`), `--task
//! default|hard` (`hard`: the classes of `SyntheticConfig::hard`, slow and fast motion to
//! either side and the event order),
//! `--balance` (rebalance the cores of every tensorized map after each step, see
//! `TensorizedMatrix::balance`),
//! `--fdht-modes AxBxCxD` (the input modes of the FDHT map, multiplying to at least
//! `N + H`; the output modes are the setting's),
//! `--clips-per-class C`, `--recurrent-gain G` (the gain on `h_{t-1}`, 1 by default, see
//! `LstmConfig::recurrent_gain`), `--dropout P` (dropout on the input and the recurrent
//! path while training; 0.1 by default, 0 at `--full`), `--cache` (render every clip once
//! and hold the set as `u8`: 5.7 GB at `--full`, against about 23 MB when rendered per batch; measured
//! there on a 2.3 GHz 2-core Xeon: 70 s per FDHT-LSTM epoch and 23 s per TR-LSTM epoch
//! with the cache; rendering per batch is about half of an uncached FDHT-LSTM profile),
//! `--out DIR` (default
//! `target/fdht_video`). The run writes there:
//!
//! | file | content |
//! |---|---|
//! | `<model>.jsonl` | per model, one line of metrics per epoch (loss, accuracies, time), appended as training runs: `tail -f` it to follow a long run |
//! | `results.json` | per model: parameters, compression, test accuracy (overall, per class, confusion matrix), time per epoch |
//! | `curves.csv` | per model and epoch: training and validation accuracy |
//! | `accuracy_curves.svg`, `.png` | validation accuracy (%) per epoch, one line per model |
//! | `accuracy_vs_params.svg`, `.png` | test accuracy (%) against LSTM parameters (log x) |
//!
//! Both plots are 800 x 500 and drawn by one function for both formats with `plotters` (a
//! dev-dependency, as is the embedded Noto Sans font the PNG text is rendered with); the
//! FDHT-LSTM is the thick red series and a dashed line marks chance accuracy.

use std::error::Error;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

use tnet::data::Split;
use tnet::data::{SyntheticConfig, SyntheticVideo, VideoDataset, split};
use tnet::models::zoo::{HtLayout, ModelKind, ModelSpec, build};
use tnet::models::{LstmConfig, ParamCount};
use tnet::train::{
    EarlyStopping, Monitor, OptimizerConfig, PlateauDecay, TrainConfig, evaluate, fit,
};

/// The files a run writes into the output directory, and what each holds.
const OUTPUTS: [(&str, &str); 5] = [
    (
        "<model>.jsonl",
        "one line of metrics per epoch, written as training runs (tail -f it)",
    ),
    (
        "results.json",
        "test accuracy, parameters, compression, s/epoch",
    ),
    ("curves.csv", "train and validation accuracy per epoch"),
    (
        "accuracy_curves.svg, accuracy_curves.png",
        "validation accuracy per epoch",
    ),
    (
        "accuracy_vs_params.svg, accuracy_vs_params.png",
        "test accuracy against LSTM parameters",
    ),
];

/// Each plateau decay multiplies the learning rate by this (`--decay`).
const DECAY_FACTOR: f64 = 0.3;
/// The decayed rate never falls below this fraction of `--lr`: four decays.
const DECAY_FLOOR: f64 = 0.3 * 0.3 * 0.3 * 0.3;

/// The sizes and schedule of one experiment.
struct Setting {
    name: &'static str,
    data: SyntheticConfig,
    hidden: usize,
    epochs: usize,
    batch: usize,
    lr: f64,
    /// Dropout on the input and the recurrent path (training only).
    dropout: f64,
    /// Early stopping: epochs without a better validation accuracy before training stops.
    patience: usize,
    /// Learning-rate decay on a validation plateau before stopping (`--decay`).
    decay: Option<PlateauDecay>,
    /// Weight decay of Adam (`--weight-decay`).
    weight_decay: f64,
    /// Layer normalisation of the gate pre-activations (`--gate-norm`).
    gate_norm: bool,
    /// Ranks of the FDHT-LSTM's HT matrix: one FDHT-LSTM is trained per rank.
    fdht_ranks: Vec<usize>,
    /// Rank of the baselines' tensorized input maps (4, as published).
    rank: usize,
    /// Tree layout of the HT maps (FDHT-LSTM and HT-LSTM).
    ht_layout: HtLayout,
    /// Rebalance the tensorized maps' cores after every step (`--balance`).
    balance: bool,
    /// Relative step of the tensorized maps' cores (`--core-lr`, `OptimizerConfig::core_lr`).
    core_lr: Option<f64>,
    /// Steps of linear learning-rate warm-up (`--warmup`, `OptimizerConfig::warmup`).
    warmup: u64,
    /// Explicit `(output, input)` modes of the baselines' input map and of the FDHT map
    /// (`None`: the zoo's automatic factorization).
    modes: Option<Modes>,
    /// Gain on the recurrent input of every model.
    recurrent_gain: f64,
    /// Input modes of the fused maps, overriding `modes` (`--fdht-modes`).
    fdht_modes: Option<Vec<usize>>,
}

/// The tensorized shapes of the UCF11 setting.
#[derive(Clone)]
struct Modes {
    /// Output modes of every map, `4H` with the gate factor on the first.
    out: Vec<usize>,
    /// The baselines' input modes (the published `8x20x20x18`).
    input: Vec<usize>,
    /// The FDHT map's input modes (`N + H` padded), in increasing order: the contraction
    /// with `[x ; h]` then starts on the largest mode, 1.7x cheaper per step than the
    /// same factors in decreasing order (`benches/lstm.rs`).
    fused: Vec<usize>,
}

impl Setting {
    /// The default (about 17 minutes on 2 cores, measured on a slow day), the CI smoke
    /// run, or the UCF11-sized one.
    fn new(quick: bool, full: bool) -> Self {
        if full {
            return Self {
                name: "full (UCF11-like: 160x120x3, 6 frames, 11 classes, 16,500 clips)",
                // UCF11's 1,595 clips are too few for this task (every model memorises
                // them, docs/results.md); at 1,500 clips per class it is learnt.
                data: SyntheticConfig {
                    clips_per_class: 1500,
                    ..SyntheticConfig::ucf11_like()
                },
                hidden: 256,
                epochs: 30,
                batch: 16,
                lr: 1e-3,
                dropout: 0.0,
                fdht_ranks: vec![8],
                rank: 4,
                ht_layout: HtLayout::Kronecker,
                balance: false,
                core_lr: None,
                warmup: 0,
                patience: 8,
                decay: None,
                weight_decay: 0.0,
                gate_norm: false,
                modes: Some(Modes {
                    out: vec![16, 4, 4, 4],
                    input: vec![8, 20, 20, 18],
                    fused: vec![11, 12, 20, 22],
                }),
                recurrent_gain: 1.0,
                fdht_modes: None,
            };
        }
        let mut data = SyntheticConfig::quick();
        let (name, epochs) = if quick {
            data.clips_per_class = 40;
            ("quick (smoke run: 240 clips, 2 epochs)", 2)
        } else {
            data.clips_per_class = 2000;
            (
                "default: 32x24x3 frames, 6 frames, 6 classes, 12,000 clips",
                60,
            )
        };
        Self {
            name,
            data,
            hidden: 64,
            epochs,
            batch: 16,
            lr: 3e-3,
            // Every baseline gains from it (TT-LSTM 59.9 -> 78.8 % over three seeds), so the
            // models are compared regularised (docs/results.md).
            dropout: 0.1,
            fdht_ranks: if quick { vec![4, 8] } else { vec![4, 8, 12] },
            rank: 4,
            ht_layout: HtLayout::Kronecker,
            balance: false,
            core_lr: None,
            warmup: 0,
            patience: 8,
            decay: None,
            weight_decay: 0.0,
            gate_norm: false,
            modes: None,
            recurrent_gain: 1.0,
            fdht_modes: None,
        }
    }

    /// The model of `kind` at `rank` for `config`.
    fn spec(
        &self,
        kind: ModelKind,
        rank: usize,
        config: &LstmConfig,
    ) -> Result<ModelSpec, Box<dyn Error>> {
        let spec = ModelSpec::new(kind, rank).with_ht_layout(self.ht_layout);
        if let (true, Some(fused)) = (kind.is_fused(), &self.fdht_modes) {
            let out = match &self.modes {
                Some(m) if m.out.len() == fused.len() => m.out.clone(),
                // The zoo's own output modes for this order.
                _ => {
                    let auto = spec.clone().with_order(fused.len()).shape(config)?;
                    auto.ok_or("a fused kind has a tensorized shape")?
                        .out_modes()
                        .to_vec()
                }
            };
            return Ok(spec.with_modes(out, fused.clone()));
        }
        Ok(match &self.modes {
            Some(m) if kind.is_fused() => spec.with_modes(m.out.clone(), m.fused.clone()),
            Some(m) if kind != ModelKind::DENSE => spec.with_modes(m.out.clone(), m.input.clone()),
            _ => spec,
        })
    }
}

/// What one model achieved.
struct Row {
    kind: ModelKind,
    /// The name in the table and the plots (`FDHT-LSTM r8` when several FDHT ranks run).
    label: String,
    params: ParamCount,
    ratio: f64,
    test_accuracy: f64,
    /// Test confusion matrix, `confusion[true][predicted]`.
    confusion: Vec<Vec<usize>>,
    secs_per_epoch: f64,
    /// `(epoch, train accuracy, validation accuracy)` after every epoch.
    curve: Vec<(usize, f64, f64)>,
}

fn main() -> Result<(), Box<dyn Error>> {
    let args = Args::parse()?;
    let mut setting = Setting::new(args.quick, args.full);
    if let Some(e) = args.epochs {
        setting.epochs = e;
    }
    if let Some(r) = &args.fdht_ranks {
        setting.fdht_ranks = r.clone();
    }
    if let Some(r) = args.rank {
        setting.rank = r;
    }
    if let Some(l) = args.ht_layout {
        setting.ht_layout = l;
    }
    setting.balance |= args.balance;
    if args.hard {
        setting.name = if args.quick {
            "hard, quick (smoke run: 240 clips, 2 epochs)"
        } else {
            "hard: speed and direction of motion, event order; 32x24x3 frames, 6 frames, 6 classes, 12,000 clips"
        };
        setting.data.patterns = tnet::data::Pattern::HARD.to_vec();
    }
    setting.fdht_modes = args.fdht_modes.clone();
    if let Some(lr) = args.lr {
        setting.lr = lr;
    }
    if let Some(eta) = args.core_lr {
        setting.core_lr = eta;
    }
    if let Some(w) = args.warmup {
        setting.warmup = w;
    }
    if let Some(d) = args.decay {
        setting.decay = d;
    }
    if let Some(wd) = args.weight_decay {
        setting.weight_decay = wd;
    }
    if let Some(p) = args.patience {
        setting.patience = p;
    }
    if let Some(g) = args.gate_norm {
        setting.gate_norm = g;
    }
    if let Some(c) = args.clips_per_class {
        setting.data.clips_per_class = c;
    }
    if let Some(g) = args.recurrent_gain {
        setting.recurrent_gain = g;
    }
    if let Some(p) = args.dropout {
        setting.dropout = p;
    }
    setting.data.cache |= args.cache;
    setting.data.seed = args.seed;
    let data = SyntheticVideo::new(setting.data.clone())?;
    let labels = tnet::data::labels(&data);
    let parts = split::holdout(data.len(), 0.2, args.seed, Some(&labels))?;
    println!(
        "FDHT-LSTM on synthetic video, {}: {} clips ({} train / {} test), {} classes, \
         T = {}, N = {}, H = {}, {} epochs, Adam lr {}, dropout {}",
        setting.name,
        data.len(),
        parts.train.len(),
        parts.test.len(),
        VideoDataset::n_classes(&data),
        data.frames(),
        data.frame_len(),
        setting.hidden,
        setting.epochs,
        setting.lr,
        setting.dropout,
    );
    // Validation clips come out of the training clips; the test clips stay unseen.
    let train_labels: Vec<usize> = parts.train.iter().map(|&i| labels[i]).collect();
    let inner = split::holdout(parts.train.len(), 0.1, args.seed + 1, Some(&train_labels))?;
    let split = Split {
        train: inner.train.iter().map(|&i| parts.train[i]).collect(),
        test: inner.test.iter().map(|&i| parts.train[i]).collect(),
    };
    std::fs::create_dir_all(&args.out)?;
    let mut rows = Vec::new();
    for &kind in &args.models {
        let ranks = match kind {
            ModelKind::FDHT => setting.fdht_ranks.clone(),
            _ => vec![setting.rank],
        };
        for &rank in &ranks {
            // Several FDHT ranks: each has its own label and log.
            let suffix = if ranks.len() > 1 {
                format!("-r{rank}")
            } else {
                String::new()
            };
            let label = format!("{}{}", display_name(kind), suffix.replace('-', " "));
            let log = args.out.join(format!("{kind}{suffix}.jsonl"));
            let model = (kind, rank, label);
            let row = train_one(model, &setting, &data, &split, &parts.test, args.seed, &log)?;
            println!(
                "  {:<16} {:>9} params  test accuracy {:5.1} %  {:6.1} s/epoch, {} epochs",
                row.label,
                row.params.total(),
                100.0 * row.test_accuracy,
                row.secs_per_epoch,
                row.curve.len()
            );
            rows.push(row);
        }
    }
    println!("\n{}", table(&rows, &setting, &data));
    write_outputs(&args.out, &rows, VideoDataset::n_classes(&data))?;
    println!("\nwritten to {}:", args.out.display());
    for (file, what) in OUTPUTS {
        println!("  {file:<48} {what}");
    }
    Ok(())
}

/// Builds and trains one model (kind, rank, label), then evaluates it on the test clips.
fn train_one(
    (kind, rank, label): (ModelKind, usize, String),
    setting: &Setting,
    data: &SyntheticVideo,
    split: &Split,
    test: &[usize],
    seed: u64,
    log: &Path,
) -> Result<Row, Box<dyn Error>> {
    let config = LstmConfig::new(data.frame_len(), setting.hidden)
        .with_dropout(setting.dropout, setting.dropout)
        .with_recurrent_gain(setting.recurrent_gain)
        .with_gate_norm(setting.gate_norm);
    let classes = VideoDataset::n_classes(data);
    let mut model = build::<f32>(&setting.spec(kind, rank, &config)?, &config, classes, seed)?;
    let train = TrainConfig::new(setting.epochs, setting.batch, seed)
        .with_optimizer(OptimizerConfig {
            core_lr: setting.core_lr,
            warmup: setting.warmup,
            ..OptimizerConfig::adam(setting.lr)
                .with_weight_decay(setting.weight_decay)
                .with_balance_cores(setting.balance)
        })
        .with_early_stopping(EarlyStopping {
            monitor: Monitor::ValAccuracy,
            decay: setting.decay,
            ..EarlyStopping::val_loss(setting.patience)
        })
        .with_metrics_log(log)
        .with_progress(true);
    let start = Instant::now();
    let report = fit(&mut model, data, split, &train)?;
    let secs_per_epoch = start.elapsed().as_secs_f64() / report.history.len().max(1) as f64;
    let test = evaluate(&model, data, test, 64)?;
    let curve = report
        .history
        .iter()
        .map(|e| {
            let val = e.val.as_ref().map_or(f64::NAN, |v| v.accuracy);
            (e.epoch + 1, e.train_accuracy, val)
        })
        .collect();
    Ok(Row {
        kind,
        label,
        params: model.param_count(),
        ratio: model.compression_ratio().without_classifier,
        test_accuracy: test.accuracy,
        confusion: test.confusion,
        secs_per_epoch,
        curve,
    })
}

/// The paper-style comparison table (Markdown, so it pastes into docs/results.md).
fn table(rows: &[Row], setting: &Setting, data: &SyntheticVideo) -> String {
    let dense = ParamCount::dense_lstm(
        data.frame_len(),
        setting.hidden,
        VideoDataset::n_classes(data),
    );
    let mut s = String::new();
    let _ = writeln!(
        s,
        "| model | LSTM parameters | with classifier | compression (LSTM) | test accuracy | s / epoch |"
    );
    let _ = writeln!(s, "|---|---:|---:|---:|---:|---:|");
    for r in rows {
        let _ = writeln!(
            s,
            "| {} | {} | {} | {:.0}x | {:.1} % | {:.1} |",
            r.label,
            r.params.lstm(),
            r.params.total(),
            r.ratio,
            100.0 * r.test_accuracy,
            r.secs_per_epoch
        );
    }
    let _ = write!(
        s,
        "\nThe dense LSTM of these sizes has {} LSTM parameters ({} weights + {} bias).",
        dense.lstm(),
        dense.weights(),
        dense.bias
    );
    s
}

fn display_name(kind: ModelKind) -> String {
    match kind {
        ModelKind::DENSE => "LSTM (dense)".into(),
        k => format!("{}-LSTM", k.to_string().to_uppercase()),
    }
}

/// Accuracy on the clips of each true class (rows of the confusion matrix).
fn per_class(confusion: &[Vec<usize>]) -> Vec<f64> {
    confusion
        .iter()
        .enumerate()
        .map(|(k, row)| row[k] as f64 / row.iter().sum::<usize>().max(1) as f64)
        .collect()
}

/// `results.json`, `curves.csv` and the two plots, each as SVG and PNG.
fn write_outputs(dir: &Path, rows: &[Row], n_classes: usize) -> Result<(), Box<dyn Error>> {
    let mut csv = String::from("model,epoch,train_accuracy,val_accuracy\n");
    let mut results = Vec::new();
    for r in rows {
        results.push(serde_json::json!({
            "model": r.kind.to_string(),
            "label": r.label,
            "lstm_params": r.params.lstm(),
            "total_params": r.params.total(),
            "compression": r.ratio,
            "test_accuracy": r.test_accuracy,
            "per_class_accuracy": per_class(&r.confusion),
            "confusion": r.confusion,
            "secs_per_epoch": r.secs_per_epoch,
            "epochs": r.curve.len(),
        }));
        for &(e, tr, va) in &r.curve {
            let _ = writeln!(csv, "{},{e},{tr:.4},{va:.4}", r.label);
        }
    }
    let json = serde_json::to_string_pretty(&results)?;
    tnet::io::write_atomic(&dir.join("results.json"), json.as_bytes())?;
    tnet::io::write_atomic(&dir.join("curves.csv"), csv.as_bytes())?;
    write_plots(dir, rows, n_classes)
}

/// `accuracy_curves.{svg,png}` and `accuracy_vs_params.{svg,png}`.
fn write_plots(dir: &Path, rows: &[Row], n_classes: usize) -> Result<(), Box<dyn Error>> {
    let chance = 100.0 / n_classes.max(1) as f64;
    let reference = Some((chance, format!("chance ({chance:.1} %)")));
    // One highlighted FDHT series in the comparison plots: the largest rank.
    let fdht = rows.iter().rposition(|r| r.kind == ModelKind::FDHT);
    let series = |point: &dyn Fn(&Row) -> Vec<(f64, f64)>| -> Vec<Series> {
        rows.iter()
            .enumerate()
            .map(|(i, r)| Series {
                name: r.label.clone(),
                points: point(r),
                highlight: Some(i) == fdht,
            })
            .collect()
    };
    let curves = series(&|r| {
        r.curve
            .iter()
            .map(|&(e, _, va)| (e as f64, 100.0 * va))
            .collect()
    });
    plot::Chart {
        title: "Validation accuracy per epoch",
        x_label: "epoch",
        y_label: "validation accuracy (%)",
        log_x: false,
        lines: true,
        reference: reference.clone(),
    }
    .save(&curves, dir, "accuracy_curves")?;
    let points = series(&|r| vec![(r.params.lstm() as f64, 100.0 * r.test_accuracy)]);
    plot::Chart {
        title: "Test accuracy against LSTM parameters",
        x_label: "LSTM parameters (count, log scale)",
        y_label: "test accuracy (%)",
        log_x: true,
        lines: false,
        reference,
    }
    .save(&points, dir, "accuracy_vs_params")?;
    // FDHT-LSTM at each rank: validation and training accuracy per epoch.
    let ranks: Vec<&Row> = rows.iter().filter(|r| r.kind == ModelKind::FDHT).collect();
    if ranks.len() > 1 {
        let mut by_rank = Vec::new();
        for r in ranks {
            type Accuracy = fn(&(usize, f64, f64)) -> f64;
            let curves: [(&str, Accuracy); 2] = [("val", |c| c.2), ("train", |c| c.1)];
            for (what, accuracy) in curves {
                by_rank.push(Series {
                    name: format!("{} ({what})", r.label),
                    points: r
                        .curve
                        .iter()
                        .map(|c| (c.0 as f64, 100.0 * accuracy(c)))
                        .collect(),
                    highlight: false,
                });
            }
        }
        plot::Chart {
            title: "FDHT-LSTM by rank: accuracy per epoch",
            x_label: "epoch",
            y_label: "accuracy (%)",
            log_x: false,
            lines: true,
            reference: Some((chance, format!("chance ({chance:.1} %)"))),
        }
        .save(&by_rank, dir, "fdht_ranks")?;
    }
    Ok(())
}

/// One named set of points of a chart.
struct Series {
    name: String,
    points: Vec<(f64, f64)>,
    /// Drawn thicker, in red and on top of the others (the FDHT-LSTM).
    highlight: bool,
}

/// The two figures, drawn with `plotters` by one function ([`plot::Chart::draw`]) onto
/// an SVG and a bitmap backend, so `NAME.svg` and `NAME.png` always show the same chart.
///
/// Bitmap text needs a font file: the Noto Sans regular and bold faces (SIL Open Font
/// License 1.1) come embedded from the `notosans` crate and are registered with plotters'
/// pure-Rust `ab_glyph` renderer, so nothing is read from the system (no fontconfig) or
/// downloaded. The SVG keeps its text as `<text font-family="sans-serif">`. Bold text is
/// asked for as `(FONT, size, FontStyle::Bold)`: in plotters 0.3.7, `FontDesc::style` changes
/// the style but keeps the regular face's glyphs.
mod plot {
    use std::error::Error;
    use std::path::Path;

    use plotters::coord::Shift;
    use plotters::coord::combinators::BindKeyPoints as _;
    use plotters::coord::ranged1d::{AsRangedCoord, ValueFormatter};
    use plotters::prelude::*;
    use plotters::style::FontStyle;

    use super::Series;

    /// Image size in pixels (the SVG's user units are the same pixels).
    pub const SIZE: (u32, u32) = (800, 500);
    /// Width of the legend panel at the right of the plotting area.
    const LEGEND_W: u32 = 170;
    const FONT: &str = "sans-serif";
    /// The highlighted series (FDHT) and the colours of the others (Tableau 10 without red).
    const HIGHLIGHT: RGBColor = RGBColor(0xd6, 0x27, 0x28);
    const COLOURS: [RGBColor; 8] = [
        RGBColor(0x1f, 0x77, 0xb4),
        RGBColor(0x2c, 0xa0, 0x2c),
        RGBColor(0xff, 0x7f, 0x0e),
        RGBColor(0x94, 0x67, 0xbd),
        RGBColor(0x8c, 0x56, 0x4b),
        RGBColor(0xe3, 0x77, 0xc2),
        RGBColor(0x7f, 0x7f, 0x7f),
        RGBColor(0x17, 0xbe, 0xcf),
    ];
    const GREY: RGBColor = RGBColor(0x60, 0x60, 0x60);

    /// Labels and scales of a chart; the y axis is accuracy in percent, `[0, 100]`.
    pub struct Chart<'a> {
        pub title: &'a str,
        pub x_label: &'a str,
        pub y_label: &'a str,
        /// Logarithmic x axis (parameter counts), else linear with integer ticks (epochs).
        pub log_x: bool,
        /// Join the points of a series by lines (curves), else markers only.
        pub lines: bool,
        /// A dashed horizontal reference line and its legend label (chance accuracy).
        pub reference: Option<(f64, String)>,
    }

    /// Registers the embedded regular and bold faces with plotters as `FONT` (cheap: it
    /// only reads the font's table directory, so it is simply done before every figure).
    fn register_fonts() -> Result<(), Box<dyn Error>> {
        let faces = [
            (FontStyle::Normal, notosans::REGULAR_TTF),
            (FontStyle::Bold, notosans::BOLD_TTF),
        ];
        for (style, bytes) in faces {
            plotters::style::register_font(FONT, style, bytes)
                .map_err(|_| "the embedded Noto Sans font does not parse")?;
        }
        Ok(())
    }

    impl Chart<'_> {
        /// Writes `dir/STEM.svg` and `dir/STEM.png` (both `SIZE`), each atomically.
        pub fn save(
            &self,
            series: &[Series],
            dir: &Path,
            stem: &str,
        ) -> Result<(), Box<dyn Error>> {
            register_fonts()?;
            let mut svg = String::new();
            {
                let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
                self.draw(&root, series)?;
                root.present()?;
            }
            tnet::io::write_atomic(&dir.join(format!("{stem}.svg")), svg.as_bytes())?;
            let (w, h) = SIZE;
            let mut rgb = vec![0u8; 3 * w as usize * h as usize];
            {
                let root = BitMapBackend::with_buffer(&mut rgb, SIZE).into_drawing_area();
                self.draw(&root, series)?;
                root.present()?;
            }
            let png = tnet::data::image::encode_png(w as usize, h as usize, 3, &rgb)?;
            tnet::io::write_atomic(&dir.join(format!("{stem}.png")), &png)?;
            Ok(())
        }

        /// Draws the whole figure (title, axes, series, legend) on any plotters backend.
        pub fn draw<DB>(
            &self,
            root: &DrawingArea<DB, Shift>,
            series: &[Series],
        ) -> Result<(), Box<dyn Error>>
        where
            DB: DrawingBackend,
            DB::ErrorType: 'static,
        {
            root.fill(&WHITE)?;
            let area = root.titled(self.title, (FONT, 26, FontStyle::Bold).into_font())?;
            let (plot_area, legend_area) = area.split_horizontally(SIZE.0 - LEGEND_W);
            let xs = series
                .iter()
                .flat_map(|s| s.points.iter().map(|p| p.0))
                .filter(|x| x.is_finite() && (!self.log_x || *x > 0.0));
            let (lo, hi) = xs.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), x| {
                (a.min(x), b.max(x))
            });
            let (lo, hi) = if lo.is_finite() { (lo, hi) } else { (1.0, 1.0) };
            if self.log_x {
                // Whole decades with some room, so no marker sits on the frame; labelled
                // grid lines at 1, 2, 5 x 10^k, light ones at the other integers.
                let e0 = (lo / 1.5).log10().floor() as i32;
                let e1 = ((hi * 1.5).log10().ceil() as i32).max(e0 + 1);
                let (lo, hi) = (10f64.powi(e0), 10f64.powi(e1));
                let ticks = |mantissas: &[f64]| -> Vec<f64> {
                    (e0..=e1)
                        .flat_map(|e| mantissas.iter().map(move |m| m * 10f64.powi(e)))
                        .filter(|&x| x <= hi * (1.0 + 1e-9))
                        .collect()
                };
                let x_spec = (lo..hi)
                    .log_scale()
                    .with_key_points(ticks(&[1.0, 2.0, 5.0]))
                    .with_light_points(ticks(&[3.0, 4.0, 6.0, 7.0, 8.0, 9.0]));
                self.draw_plot(&plot_area, x_spec, (lo, hi), 0, series, count_label)?;
            } else {
                // Epochs: integer ticks only (at most 12: steps of 1, 2, 5, 10, ...).
                let (lo, hi) = (lo.min(1.0) - 0.5, hi.max(lo + 1.0) + 0.5);
                let ticks = ((hi - lo).floor() as usize).clamp(1, 12);
                self.draw_plot(&plot_area, lo..hi, (lo, hi), ticks, series, integer_label)?;
            }
            self.draw_legend(&legend_area, series)
        }

        /// Axes, grid, reference line and series in `area`, with `x_spec` as the x axis
        /// (`x_ticks`: at most so many x labels, where plotters chooses them).
        fn draw_plot<DB, XS>(
            &self,
            area: &DrawingArea<DB, Shift>,
            x_spec: XS,
            (x0, x1): (f64, f64),
            x_ticks: usize,
            series: &[Series],
            x_format: fn(&f64) -> String,
        ) -> Result<(), Box<dyn Error>>
        where
            DB: DrawingBackend,
            DB::ErrorType: 'static,
            XS: AsRangedCoord<Value = f64>,
            XS::CoordDescType: ValueFormatter<f64>,
        {
            let mut chart = ChartBuilder::on(area)
                .margin_top(8)
                .margin_left(6)
                .margin_right(12)
                .x_label_area_size(48)
                .y_label_area_size(72)
                .build_cartesian_2d(x_spec, 0f64..100f64)?;
            chart
                .configure_mesh()
                .x_desc(self.x_label)
                .y_desc(self.y_label)
                .x_labels(x_ticks)
                .y_labels(11)
                .x_max_light_lines(if self.log_x { 9 } else { 0 })
                .y_max_light_lines(1)
                .x_label_formatter(&x_format)
                .y_label_formatter(&|y| format!("{y:.0}"))
                .label_style((FONT, 17))
                .axis_desc_style((FONT, 18))
                .light_line_style(RGBColor(0xf0, 0xf0, 0xf0))
                .bold_line_style(RGBColor(0xdc, 0xdc, 0xdc))
                .draw()?;
            if let Some((y, _)) = &self.reference {
                chart.draw_series(DashedLineSeries::new(
                    [(x0, *y), (x1, *y)],
                    8,
                    6,
                    GREY.stroke_width(2),
                ))?;
            }
            // The highlighted series last, so it stays on top.
            let mut order: Vec<usize> = (0..series.len()).collect();
            order.sort_by_key(|&i| series[i].highlight);
            for i in order {
                let s = &series[i];
                let (colour, width, radius) = self.style(series, i);
                let points: Vec<(f64, f64)> = s
                    .points
                    .iter()
                    .copied()
                    .filter(|&(x, y)| x.is_finite() && y.is_finite() && (!self.log_x || x > 0.0))
                    .collect();
                if self.lines {
                    chart.draw_series(
                        LineSeries::new(points.clone(), colour.stroke_width(width))
                            .point_size(radius),
                    )?;
                } else {
                    // Outlined, and translucent except the highlighted series (drawn last),
                    // so overlapping markers stay visible.
                    let (corners, outline) = marker(self.shape(series, i), radius);
                    let fill = colour.mix(if s.highlight { 1.0 } else { 0.7 }).filled();
                    chart.draw_series(points.iter().map(|&p| {
                        EmptyElement::at(p)
                            + Polygon::new(corners.clone(), fill)
                            + PathElement::new(outline.clone(), BLACK.stroke_width(1))
                    }))?;
                }
            }
            Ok(())
        }

        /// Colour, line width and marker radius of series `i`.
        fn style(&self, series: &[Series], i: usize) -> (RGBColor, u32, u32) {
            let (width, radius) = match (self.lines, series[i].highlight) {
                (true, true) => (4, 4),
                (true, false) => (2, 3),
                (false, true) => (1, 9),
                (false, false) => (1, 6),
            };
            if series[i].highlight {
                return (HIGHLIGHT, width, radius);
            }
            let k = series[..i].iter().filter(|s| !s.highlight).count();
            (COLOURS[k % COLOURS.len()], width, radius)
        }

        /// Marker shape of series `i` in a scatter chart: a circle for the highlighted
        /// series, then squares, triangles and diamonds, so nearly equal points of two
        /// models stay apart (markers are also translucent).
        fn shape(&self, series: &[Series], i: usize) -> Shape {
            if series[i].highlight {
                return Shape::Circle;
            }
            let k = series[..i].iter().filter(|s| !s.highlight).count();
            [
                Shape::Square,
                Shape::Triangle,
                Shape::Diamond,
                Shape::Circle,
            ][k % 4]
        }

        /// The legend panel: one entry per series (the highlighted one in bold) and the
        /// reference line.
        fn draw_legend<DB>(
            &self,
            area: &DrawingArea<DB, Shift>,
            series: &[Series],
        ) -> Result<(), Box<dyn Error>>
        where
            DB: DrawingBackend,
            DB::ErrorType: 'static,
        {
            let (x, mut y) = (8, 24);
            area.draw_text(
                "model",
                &(FONT, 18, FontStyle::Bold).into_font().color(&BLACK),
                (x, y - 8),
            )?;
            for i in 0..series.len() {
                y += 26;
                let (colour, width, radius) = self.style(series, i);
                let (mx, my) = (x + 16, y + 9);
                if self.lines {
                    area.draw(&PathElement::new(
                        [(x, my), (x + 32, my)],
                        colour.stroke_width(width),
                    ))?;
                }
                if self.lines {
                    area.draw(&Circle::new((mx, my), radius, colour.filled()))?;
                } else {
                    let (corners, outline) = marker(self.shape(series, i), radius.min(7));
                    area.draw(
                        &(EmptyElement::at((mx, my))
                            + Polygon::new(corners, colour.filled())
                            + PathElement::new(outline, BLACK.stroke_width(1))),
                    )?;
                }
                let font = if series[i].highlight {
                    (FONT, 17, FontStyle::Bold).into_font()
                } else {
                    (FONT, 17).into_font()
                };
                area.draw_text(&series[i].name, &font.color(&BLACK), (x + 42, y))?;
            }
            if let Some((_, label)) = &self.reference {
                y += 26;
                area.draw(&PathElement::new(
                    [(x, y + 9), (x + 12, y + 9)],
                    GREY.stroke_width(2),
                ))?;
                area.draw(&PathElement::new(
                    [(x + 20, y + 9), (x + 32, y + 9)],
                    GREY.stroke_width(2),
                ))?;
                area.draw_text(label, &(FONT, 17).into_font().color(&BLACK), (x + 42, y))?;
            }
            Ok(())
        }
    }

    /// Marker shapes of scatter charts.
    #[derive(Clone, Copy)]
    enum Shape {
        Circle,
        Square,
        Triangle,
        Diamond,
    }

    /// Pixel offsets of the corners of a polygon.
    type Pixels = Vec<(i32, i32)>;

    /// The corners of a marker of radius `r` pixels around the origin, and the same
    /// closed as an outline (every shape a polygon, the circle one of 24 corners).
    fn marker(shape: Shape, r: u32) -> (Pixels, Pixels) {
        let r = f64::from(r);
        let px = |v: f64| v.round() as i32;
        let corners: Pixels = match shape {
            Shape::Circle => (0..24)
                .map(|k| std::f64::consts::TAU * f64::from(k) / 24.0)
                .map(|t| (px(r * t.cos()), px(r * t.sin())))
                .collect(),
            Shape::Square => {
                let a = px(0.85 * r);
                vec![(-a, -a), (a, -a), (a, a), (-a, a)]
            }
            Shape::Triangle => {
                let (h, w) = (px(1.15 * r), px(1.1 * r));
                vec![(0, -h), (w, h * 2 / 3), (-w, h * 2 / 3)]
            }
            Shape::Diamond => {
                let h = px(1.15 * r);
                vec![(0, -h), (h, 0), (0, h), (-h, 0)]
            }
        };
        let mut outline = corners.clone();
        outline.push(corners[0]);
        (corners, outline)
    }

    /// A tick of a log axis of parameter counts, `m x 10^k` for a digit `m`: `500`,
    /// `2k`, `10k`, `50M`.
    fn count_label(x: &f64) -> String {
        let power = 10f64.powf(x.log10().floor());
        let mantissa = (x / power).round();
        let (unit, suffix) = match power {
            p if p >= 1e6 => (1e6, "M"),
            p if p >= 1e3 => (1e3, "k"),
            _ => (1.0, ""),
        };
        format!("{}{suffix}", mantissa * power / unit)
    }

    /// A tick of an epoch axis: the integer, nothing between integers.
    fn integer_label(x: &f64) -> String {
        if (x - x.round()).abs() < 1e-6 {
            format!("{}", x.round())
        } else {
            String::new()
        }
    }
}

/// Command-line options (std only, so the example reads top to bottom).
struct Args {
    quick: bool,
    full: bool,
    epochs: Option<usize>,
    fdht_ranks: Option<Vec<usize>>,
    rank: Option<usize>,
    ht_layout: Option<HtLayout>,
    hard: bool,
    balance: bool,
    fdht_modes: Option<Vec<usize>>,
    lr: Option<f64>,
    core_lr: Option<Option<f64>>,
    warmup: Option<u64>,
    decay: Option<Option<PlateauDecay>>,
    weight_decay: Option<f64>,
    patience: Option<usize>,
    gate_norm: Option<bool>,
    clips_per_class: Option<usize>,
    recurrent_gain: Option<f64>,
    dropout: Option<f64>,
    cache: bool,
    seed: u64,
    models: Vec<ModelKind>,
    out: PathBuf,
}

impl Args {
    fn parse() -> Result<Self, Box<dyn Error>> {
        let mut a = Args {
            quick: false,
            full: false,
            epochs: None,
            fdht_ranks: None,
            rank: None,
            ht_layout: None,
            hard: false,
            balance: false,
            fdht_modes: None,
            lr: None,
            core_lr: None,
            warmup: None,
            decay: None,
            weight_decay: None,
            patience: None,
            gate_norm: None,
            clips_per_class: None,
            recurrent_gain: None,
            dropout: None,
            cache: false,
            seed: 0,
            models: vec![
                ModelKind::FDHT,
                ModelKind::HT,
                ModelKind::TT,
                ModelKind::TR,
                ModelKind::BT,
                ModelKind::DENSE,
            ],
            out: PathBuf::from("target/fdht_video"),
        };
        let mut it = std::env::args().skip(1);
        while let Some(flag) = it.next() {
            let mut value = || it.next().ok_or(format!("{flag} needs a value"));
            match flag.as_str() {
                "--quick" => a.quick = true,
                "--full" => a.full = true,
                "--epochs" => a.epochs = Some(value()?.parse()?),
                "--seed" => a.seed = value()?.parse()?,
                "--fdht-rank" | "--fdht-ranks" => {
                    let v = value()?;
                    let ranks = v.split(',').map(str::parse).collect::<Result<Vec<_>, _>>();
                    a.fdht_ranks = Some(
                        ranks.map_err(|_| format!("{flag} {v}: expected ranks such as 4,8,12"))?,
                    );
                }
                "--rank" => a.rank = Some(value()?.parse()?),
                "--balance" => a.balance = true,
                "--ht-layout" => a.ht_layout = Some(value()?.parse()?),
                "--task" => match value()?.as_str() {
                    "default" => a.hard = false,
                    "hard" => a.hard = true,
                    t => return Err(format!("--task {t}: expected default or hard").into()),
                },
                "--fdht-modes" => {
                    let v = value()?;
                    let modes = v.split('x').map(str::parse).collect::<Result<_, _>>();
                    a.fdht_modes = Some(modes.map_err(|_| {
                        format!("--fdht-modes {v}: expected modes such as 11x12x20x22")
                    })?);
                }
                "--lr" => a.lr = Some(value()?.parse()?),
                "--warmup" => a.warmup = Some(value()?.parse()?),
                "--core-lr" => {
                    a.core_lr = Some(match value()?.as_str() {
                        "off" => None,
                        v => Some(v.parse()?),
                    })
                }
                "--decay" => {
                    a.decay = Some(match value()?.as_str() {
                        "off" => None,
                        v => Some(PlateauDecay::new(
                            v.parse().map_err(|_| {
                                format!("--decay {v}: expected off or a patience in epochs")
                            })?,
                            DECAY_FACTOR,
                            DECAY_FLOOR,
                        )),
                    })
                }
                "--weight-decay" => a.weight_decay = Some(value()?.parse()?),
                "--patience" => a.patience = Some(value()?.parse()?),
                "--gate-norm" => {
                    a.gate_norm = Some(match value()?.as_str() {
                        "on" => true,
                        "off" => false,
                        v => return Err(format!("--gate-norm {v}: expected on or off").into()),
                    })
                }
                "--clips-per-class" => a.clips_per_class = Some(value()?.parse()?),
                "--recurrent-gain" => a.recurrent_gain = Some(value()?.parse()?),
                "--dropout" => a.dropout = Some(value()?.parse()?),
                "--cache" => a.cache = true,
                "--out" => a.out = value()?.into(),
                "--models" => {
                    a.models = value()?
                        .split(',')
                        .map(str::parse)
                        .collect::<Result<_, _>>()?
                }
                "-h" | "--help" => {
                    println!(
                        "usage: fdht_video [--quick | --full] [--task default|hard] [--epochs N] [--lr LR] [--core-lr ETA|off] [--decay P|off] [--patience P] [--weight-decay WD] [--gate-norm on|off] [--fdht-ranks R1,R2,..] [--rank R] \
                         [--ht-layout kronecker|split|paired] [--balance] [--fdht-modes AxBxCxD] \
                         [--clips-per-class C] [--recurrent-gain G] [--dropout P] [--cache] [--seed S] [--models fdht,ht,tt,tr,bt,dense] [--out DIR]"
                    );
                    std::process::exit(0);
                }
                other => return Err(format!("unknown option {other} (try --help)").into()),
            }
        }
        if a.quick && a.full {
            return Err("--quick and --full exclude each other".into());
        }
        if a.hard && a.full {
            return Err("--task hard is the default sizes' task; it excludes --full".into());
        }
        Ok(a)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A row of made-up results: `epochs` epochs of rising accuracy ending near `acc`.
    fn row(kind: ModelKind, lstm_params: usize, acc: f64, epochs: usize) -> Row {
        Row {
            kind,
            label: display_name(kind),
            params: ParamCount {
                input_map: lstm_params,
                recurrent_map: 0,
                fused_map: 0,
                bias: 0,
                classifier: 60,
            },
            ratio: 1.0,
            test_accuracy: acc,
            confusion: vec![vec![1, 0], vec![0, 1]],
            secs_per_epoch: 1.0,
            curve: (1..=epochs)
                .map(|e| {
                    let v = acc * e as f64 / epochs as f64;
                    (e, v, v)
                })
                .collect(),
        }
    }

    /// Checks that every start tag of `svg` is closed in order (comments, declarations and
    /// self-closing tags aside): a minimal well-formedness test without an XML parser.
    fn tags_balanced(svg: &str) -> bool {
        let mut stack = Vec::new();
        let mut rest = svg;
        while let Some(open) = rest.find('<') {
            let Some(close) = rest[open..].find('>') else {
                return false;
            };
            let tag = &rest[open + 1..open + close];
            rest = &rest[open + close + 1..];
            if tag.starts_with('?') || tag.starts_with('!') || tag.ends_with('/') {
                continue;
            }
            let name = tag.split_whitespace().next().unwrap_or("");
            if let Some(name) = name.strip_prefix('/') {
                if stack.pop() != Some(name) {
                    return false;
                }
            } else {
                stack.push(name);
            }
        }
        stack.is_empty()
    }

    /// Both plots of synthetic rows are written as 800x500 PNGs that show the red FDHT
    /// series and rendered title text, and as balanced SVG naming every series.
    #[test]
    fn plots_render_as_png_and_svg() {
        let rows = vec![
            row(ModelKind::FDHT, 1_200, 0.81, 12),
            row(ModelKind::TT, 2_500, 0.64, 9),
            row(ModelKind::DENSE, 16_000, 0.72, 12),
        ];
        let dir = tempfile::tempdir().unwrap();
        write_plots(dir.path(), &rows, 6).unwrap();
        for stem in ["accuracy_curves", "accuracy_vs_params"] {
            let bytes = std::fs::read(dir.path().join(format!("{stem}.png"))).unwrap();
            let png = tnet::data::image::decode(&bytes).unwrap().to_rgb();
            let size = (png.width() as u32, png.height() as u32);
            assert_eq!(size, plot::SIZE, "{stem}.png");
            let pixels: Vec<[u8; 3]> = png.pixels().chunks(3).map(|p| [p[0], p[1], p[2]]).collect();
            let is_white = |p: &[u8; 3]| *p == [255, 255, 255];
            let inked = pixels.iter().filter(|p| !is_white(p)).count();
            let total = pixels.len();
            assert!(
                inked > total / 100 && inked < total / 2,
                "{stem}.png: {inked} of {total} pixels not white"
            );
            // The FDHT series (pure highlight red).
            assert!(
                pixels.contains(&[0xd6, 0x27, 0x28]),
                "{stem}.png has no FDHT series"
            );
            // The title (dark text in the top 40 rows), so the embedded font rendered.
            let dark_in_title = (0..40)
                .flat_map(|y| (0..plot::SIZE.0).map(move |x| (x, y)))
                .filter(|&(x, y)| {
                    pixels[(y * plot::SIZE.0 + x) as usize]
                        .iter()
                        .all(|&c| c < 100)
                })
                .count();
            assert!(dark_in_title > 200, "{stem}.png: title not drawn");

            let svg = std::fs::read_to_string(dir.path().join(format!("{stem}.svg"))).unwrap();
            assert!(svg.trim_start().starts_with("<svg"), "{stem}.svg");
            assert!(svg.contains(r#"width="800" height="500""#), "{stem}.svg");
            assert!(tags_balanced(&svg), "{stem}.svg is not balanced XML");
            for name in ["FDHT-LSTM", "TT-LSTM", "LSTM (dense)", "chance (16.7 %)"] {
                assert!(svg.contains(name), "{stem}.svg lacks {name}");
            }
        }
        // Nothing but the four plots (no temporary files left behind).
        let mut files: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        files.sort();
        assert_eq!(
            files,
            [
                "accuracy_curves.png",
                "accuracy_curves.svg",
                "accuracy_vs_params.png",
                "accuracy_vs_params.svg"
            ]
        );
    }
}
