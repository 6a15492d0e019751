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
//! cargo run --release --example fdht_video              # default setting, about 3.5 min on 2 cores
//! cargo run --release --example fdht_video -- --quick   # a smoke run (CI)
//! cargo run --release --example fdht_video -- --full    # UCF11-sized: 160x120x3, 6 frames, 11 classes
//! ```
//! Options: `--epochs N`, `--seed S`, `--models fdht,tt,dense`, `--out DIR` (default
//! `target/fdht_video`). The run writes `results.json`, `curves.csv`,
//! `accuracy_curves.svg` and `accuracy_vs_params.svg` there.

use std::error::Error;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

use tnet::data::{SyntheticConfig, SyntheticVideo, VideoDataset, split};
use tnet::models::zoo::{ModelKind, ModelSpec, build};
use tnet::models::{LstmConfig, ParamCount};
use tnet::train::{EarlyStopping, Monitor, OptimizerConfig, Split, TrainConfig, evaluate, fit};

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
    /// Rank of every node of the FDHT-LSTM's HT matrix (the baselines use rank 4, as
    /// published).
    fdht_rank: usize,
}

impl Setting {
    /// The default (about 3.5 minutes on 2 cores), the CI smoke run, or the UCF11-sized one.
    fn new(quick: bool, full: bool) -> Self {
        if full {
            return Self {
                name: "full (UCF11-like: 160x120x3, 6 frames, 11 classes)",
                data: SyntheticConfig::ucf11_like(),
                hidden: 256,
                epochs: 30,
                batch: 16,
                lr: 1e-3,
                dropout: 0.0,
                fdht_rank: 8,
                patience: 8,
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
            hidden: 32,
            epochs,
            batch: 16,
            lr: 3e-3,
            dropout: 0.0,
            fdht_rank: 8,
            patience: 8,
        }
    }

    /// The model of each kind: the ranks of the paper's compact settings (FDHT ranks chosen
    /// for a few thousand parameters).
    fn spec(&self, kind: ModelKind) -> ModelSpec {
        let rank = match kind {
            ModelKind::Fdht => self.fdht_rank,
            _ => 4,
        };
        ModelSpec::new(kind, rank)
    }
}

/// What one model achieved.
struct Row {
    kind: ModelKind,
    params: ParamCount,
    ratio: f64,
    test_accuracy: f64,
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
    if let Some(r) = args.fdht_rank {
        setting.fdht_rank = r;
    }
    if let Some(lr) = args.lr {
        setting.lr = lr;
    }
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
        val: inner.test.iter().map(|&i| parts.train[i]).collect(),
    };
    let mut rows = Vec::new();
    for &kind in &args.models {
        let row = train_one(kind, &setting, &data, &split, &parts.test, args.seed)?;
        println!(
            "  {:<6} {:>9} params  test accuracy {:5.1} %  {:6.1} s/epoch, {} epochs",
            kind.to_string(),
            row.params.total(),
            100.0 * row.test_accuracy,
            row.secs_per_epoch,
            row.curve.len()
        );
        rows.push(row);
    }
    println!("\n{}", table(&rows, &setting, &data));
    std::fs::create_dir_all(&args.out)?;
    write_outputs(&args.out, &rows)?;
    println!(
        "results, curves and plots written to {}",
        args.out.display()
    );
    Ok(())
}

/// Builds and trains one model kind, then evaluates it on the test clips.
fn train_one(
    kind: ModelKind,
    setting: &Setting,
    data: &SyntheticVideo,
    split: &Split,
    test: &[usize],
    seed: u64,
) -> Result<Row, Box<dyn Error>> {
    let config = LstmConfig::new(data.frame_len(), setting.hidden)
        .with_dropout(setting.dropout, setting.dropout);
    let classes = VideoDataset::n_classes(data);
    let mut model = build::<f32>(&setting.spec(kind), &config, classes, seed)?;
    let train = TrainConfig::new(setting.epochs, setting.batch, seed)
        .with_optimizer(OptimizerConfig::adam(setting.lr))
        .with_early_stopping(EarlyStopping {
            monitor: Monitor::ValAccuracy,
            ..EarlyStopping::val_loss(setting.patience)
        })
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
        params: model.param_count(),
        ratio: model.compression_ratio().without_classifier,
        test_accuracy: test.accuracy,
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
            display_name(r.kind),
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
        ModelKind::Dense => "LSTM (dense)".into(),
        k => format!("{}-LSTM", k.to_string().to_uppercase()),
    }
}

/// `results.json`, `curves.csv` and the two SVG plots.
fn write_outputs(dir: &Path, rows: &[Row]) -> Result<(), Box<dyn Error>> {
    let mut csv = String::from("model,epoch,train_accuracy,val_accuracy\n");
    let mut results = Vec::new();
    for r in rows {
        results.push(serde_json::json!({
            "model": r.kind.to_string(),
            "lstm_params": r.params.lstm(),
            "total_params": r.params.total(),
            "compression": r.ratio,
            "test_accuracy": r.test_accuracy,
            "secs_per_epoch": r.secs_per_epoch,
            "epochs": r.curve.len(),
        }));
        for &(e, tr, va) in &r.curve {
            let _ = writeln!(csv, "{},{e},{tr:.4},{va:.4}", r.kind);
        }
    }
    let json = serde_json::to_string_pretty(&results)?;
    tnet::io::write_atomic(&dir.join("results.json"), json.as_bytes())?;
    tnet::io::write_atomic(&dir.join("curves.csv"), csv.as_bytes())?;
    let curves: Vec<Series> = rows
        .iter()
        .map(|r| Series {
            name: display_name(r.kind),
            points: r.curve.iter().map(|&(e, _, va)| (e as f64, va)).collect(),
        })
        .collect();
    let chart = svg::Chart {
        title: "Validation accuracy per epoch",
        x_label: "epoch",
        y_label: "validation accuracy",
        log_x: false,
        lines: true,
    };
    tnet::io::write_atomic(
        &dir.join("accuracy_curves.svg"),
        chart.render(&curves).as_bytes(),
    )?;
    let points: Vec<Series> = rows
        .iter()
        .map(|r| Series {
            name: display_name(r.kind),
            points: vec![(r.params.lstm() as f64, r.test_accuracy)],
        })
        .collect();
    let chart = svg::Chart {
        title: "Test accuracy against LSTM parameters",
        x_label: "LSTM parameters (log scale)",
        y_label: "test accuracy",
        log_x: true,
        lines: false,
    };
    tnet::io::write_atomic(
        &dir.join("accuracy_vs_params.svg"),
        chart.render(&points).as_bytes(),
    )?;
    Ok(())
}

/// One named set of points of a chart.
struct Series {
    name: String,
    points: Vec<(f64, f64)>,
}

/// A minimal SVG chart writer: axes with ticks, one colour per series, a legend.
mod svg {
    use std::fmt::Write as _;

    use super::Series;

    const COLOURS: [&str; 9] = [
        "#d62728", "#1f77b4", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
        "#17becf",
    ];
    /// Canvas size and margins, in pixels.
    const W: f64 = 720.0;
    const H: f64 = 440.0;
    const LEFT: f64 = 70.0;
    const RIGHT: f64 = 170.0;
    const TOP: f64 = 40.0;
    const BOTTOM: f64 = 50.0;

    /// Labels and scales of a chart; the y axis is accuracy in `[0, 1]`.
    pub struct Chart<'a> {
        pub title: &'a str,
        pub x_label: &'a str,
        pub y_label: &'a str,
        pub log_x: bool,
        pub lines: bool,
    }

    impl Chart<'_> {
        pub fn render(&self, series: &[Series]) -> String {
            let tx = |x: f64| if self.log_x { x.max(1.0).log10() } else { x };
            let xs = series.iter().flat_map(|s| s.points.iter().map(|p| tx(p.0)));
            let (mut x0, mut x1) = xs.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), x| {
                (a.min(x), b.max(x))
            });
            if !x0.is_finite() {
                (x0, x1) = (0.0, 1.0);
            }
            if self.log_x {
                (x0, x1) = (x0.floor(), x1.ceil().max(x0.floor() + 1.0));
            } else if x1 <= x0 {
                x1 = x0 + 1.0;
            }
            let px = |x: f64| LEFT + (tx(x) - x0) / (x1 - x0) * (W - LEFT - RIGHT);
            let py = |y: f64| H - BOTTOM - y.clamp(0.0, 1.0) * (H - TOP - BOTTOM);
            let mut s = String::new();
            let _ = writeln!(
                s,
                r#"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" font-family="sans-serif" font-size="12">"#
            );
            let _ = writeln!(s, r#"<rect width="{W}" height="{H}" fill="white"/>"#);
            let _ = writeln!(
                s,
                r#"<text x="{}" y="22" text-anchor="middle" font-size="15">{}</text>"#,
                (LEFT + W - RIGHT) / 2.0,
                self.title
            );
            for k in 0..=5 {
                let y = k as f64 / 5.0;
                let _ = writeln!(
                    s,
                    r##"<line x1="{LEFT}" x2="{x2}" y1="{yy}" y2="{yy}" stroke="#ddd"/><text x="{tx}" y="{ty}" text-anchor="end">{y:.1}</text>"##,
                    x2 = W - RIGHT,
                    yy = py(y),
                    tx = LEFT - 6.0,
                    ty = py(y) + 4.0
                );
            }
            let ticks = if self.log_x {
                ((x0 as i32)..=(x1 as i32))
                    .map(|e| 10f64.powi(e))
                    .collect::<Vec<_>>()
            } else {
                let step = ((x1 - x0) / 8.0).ceil().max(1.0);
                (0..)
                    .map(|k| x0 + k as f64 * step)
                    .take_while(|&x| x <= x1 + 1e-9)
                    .collect()
            };
            for t in ticks {
                let label = if self.log_x {
                    format!("1e{}", t.log10().round())
                } else {
                    format!("{t}")
                };
                let _ = writeln!(
                    s,
                    r#"<text x="{}" y="{}" text-anchor="middle">{label}</text>"#,
                    px(t),
                    H - BOTTOM + 18.0
                );
            }
            let _ = writeln!(
                s,
                r#"<line x1="{LEFT}" x2="{0}" y1="{1}" y2="{1}" stroke="black"/><line x1="{LEFT}" x2="{LEFT}" y1="{TOP}" y2="{1}" stroke="black"/>"#,
                W - RIGHT,
                H - BOTTOM
            );
            let _ = writeln!(
                s,
                r#"<text x="{}" y="{}" text-anchor="middle">{}</text><text x="16" y="{}" text-anchor="middle" transform="rotate(-90 16 {3})">{}</text>"#,
                (LEFT + W - RIGHT) / 2.0,
                H - 10.0,
                self.x_label,
                (TOP + H - BOTTOM) / 2.0,
                self.y_label
            );
            for (i, ser) in series.iter().enumerate() {
                let c = COLOURS[i % COLOURS.len()];
                let pts: Vec<(f64, f64)> = ser
                    .points
                    .iter()
                    .filter(|p| p.1.is_finite())
                    .map(|&(x, y)| (px(x), py(y)))
                    .collect();
                if self.lines && pts.len() > 1 {
                    let path: Vec<String> =
                        pts.iter().map(|(x, y)| format!("{x:.1},{y:.1}")).collect();
                    let _ = writeln!(
                        s,
                        r#"<polyline fill="none" stroke="{c}" stroke-width="2" points="{}"/>"#,
                        path.join(" ")
                    );
                }
                for (x, y) in &pts {
                    let _ = writeln!(s, r#"<circle cx="{x:.1}" cy="{y:.1}" r="3.5" fill="{c}"/>"#);
                }
                let ly = TOP + 10.0 + 20.0 * i as f64;
                let _ = writeln!(
                    s,
                    r#"<rect x="{}" y="{}" width="14" height="4" fill="{c}"/><text x="{}" y="{}">{}</text>"#,
                    W - RIGHT + 14.0,
                    ly - 4.0,
                    W - RIGHT + 34.0,
                    ly + 1.0,
                    ser.name
                );
            }
            s.push_str("</svg>\n");
            s
        }
    }
}

/// Command-line options (std only, so the example reads top to bottom).
struct Args {
    quick: bool,
    full: bool,
    epochs: Option<usize>,
    fdht_rank: Option<usize>,
    lr: Option<f64>,
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
            fdht_rank: None,
            lr: None,
            seed: 0,
            models: vec![
                ModelKind::Fdht,
                ModelKind::Ht,
                ModelKind::Tt,
                ModelKind::Tr,
                ModelKind::Bt,
                ModelKind::Dense,
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
                "--fdht-rank" => a.fdht_rank = Some(value()?.parse()?),
                "--lr" => a.lr = Some(value()?.parse()?),
                "--out" => a.out = value()?.into(),
                "--models" => {
                    a.models = value()?
                        .split(',')
                        .map(str::parse)
                        .collect::<Result<_, _>>()?
                }
                "-h" | "--help" => {
                    println!(
                        "usage: fdht_video [--quick | --full] [--epochs N] [--lr LR] [--fdht-rank R] \
                         [--seed S] [--models fdht,ht,tt,tr,bt,dense] [--out DIR]"
                    );
                    std::process::exit(0);
                }
                other => return Err(format!("unknown option {other} (try --help)").into()),
            }
        }
        if a.quick && a.full {
            return Err("--quick and --full exclude each other".into());
        }
        Ok(a)
    }
}
