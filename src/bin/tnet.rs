//! `tnet`: compress tensors and model weights with tensor-network formats.
//!
//! Run `tnet --help` and `tnet <command> --help` for the usage; the work is done by
//! [`tnet::compress`] and [`tnet::weights`].

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use serde_json::{Value, json};

use tnet::compress::{
    self, AnyCompressed, CompressOptions, CompressedFile, DecomposeOptions, MatrixModes,
    TensorReport,
};
use tnet::formats::bt::BtOptions;
use tnet::formats::{FormatKind, Method};
use tnet::linalg::Sketch;
use tnet::weights::{self, DenseArray, Dtype, Entry, FileKind, SafetensorsFile, Weight};
use tnet::{DimTree, Error, Truncation};

#[path = "tnet_cmd/train.rs"]
mod train_cmd;

#[derive(Parser)]
#[command(
    name = "tnet",
    version,
    about = "Compress tensors and model weights with tensor-network formats (HT, TT, TR, Tucker, block term)",
    long_about = "Compress tensors and model weights with tensor-network formats.\n\n\
        Inputs are .npy, .npz or .safetensors files (f16, bf16, f32 or f64). Compressed \
        results are .safetensors files holding the cores as tensors plus a JSON description \
        (format, tree, blocks, ranks, modes) under the metadata key \"tnet\"; `tnet reconstruct` \
        turns them back into dense arrays. Every output is written atomically.",
    after_help = "Examples:\n  \
        tnet decompose x.npy --format ht --rel-eps 1e-3 -o x.tnet.safetensors\n  \
        tnet decompose w.npy --rel-eps 1e-2 --out-modes 4,8,8 --in-modes 8,8,4 -o w.tnet.safetensors --json\n  \
        tnet decompose x.npy --format tt --rank 8 -o x.tt.safetensors\n  \
        tnet decompose x.npy --format bt --blocks 3 --rel-eps 1e-2 -o x.bt.safetensors\n  \
        tnet info x.tnet.safetensors\n  \
        tnet reconstruct x.tnet.safetensors -o x_approx.npy\n  \
        tnet compress model.safetensors --rel-eps 0.05 --include '*.weight' -o model.tnet.safetensors\n  \
        tnet reconstruct model.tnet.safetensors -o model_approx.safetensors"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Memory limit for sizes declared by files and options (e.g. 512M, 8G): a larger
    /// allocation is refused with an error instead of attempted [default: the environment
    /// variable TNET_MAX_MEMORY, else the machine's physical memory]
    #[arg(long, global = true, value_name = "SIZE", value_parser = parse_size)]
    max_memory: Option<u64>,
}

fn parse_size(s: &str) -> Result<u64, String> {
    match tnet::limits::parse_bytes(s) {
        Ok(0) => Err("the limit must be positive".into()),
        Ok(b) => Ok(b),
        Err(e) => Err(e.to_string()),
    }
}

#[derive(Subcommand)]
enum Command {
    /// Decompose one array (a plain tensor, or a 2-D weight tensorized by --out-modes/--in-modes).
    Decompose(DecomposeArgs),
    /// Turn a compressed file back into dense arrays (.npy for one array, .safetensors for all).
    Reconstruct(ReconstructArgs),
    /// Describe a compressed file (format, shape, tree, ranks, parameters, ratio, size), list a weight file, or describe the model of a run directory.
    Info(InfoArgs),
    /// Compress every matching 2-D weight of a model file (.safetensors or .npz).
    Compress(CompressArgs),
    /// Train a recurrent video classifier (FDHT-LSTM or a baseline) into a run directory.
    Train(train_cmd::TrainArgs),
    /// Evaluate a trained run: accuracy, confusion matrix, per-class accuracy.
    Eval(train_cmd::EvalArgs),
    /// Classify clip folders of frame images with a trained run: class probabilities.
    Predict(train_cmd::PredictArgs),
}

#[derive(Args)]
struct RuleArgs {
    /// Cap on every rank (bt: the block rank R of every mode).
    #[arg(long, value_name = "R")]
    rank: Option<usize>,
    /// Relative Frobenius error allowed: ‖X − Y‖ ≤ E‖X‖ (with --rank too, the cap wins).
    #[arg(long, value_name = "E", allow_negative_numbers = true)]
    rel_eps: Option<f64>,
}

impl RuleArgs {
    fn rule(&self) -> Result<Truncation, Failure> {
        let rule = match (self.rank, self.rel_eps) {
            (None, None) => {
                return Err(usage("give --rank R, --rel-eps E, or both"));
            }
            (Some(r), None) => Truncation::rank(r),
            (None, Some(e)) => Truncation::rel(e),
            (Some(r), Some(e)) => Truncation::rel(e).with_max_rank(r),
        };
        Ok(rule.check()?.truncation())
    }
}

#[derive(Args)]
struct DecomposeArgs {
    /// Input array: .npy, .npz or .safetensors.
    input: PathBuf,
    /// Tensor format.
    #[arg(long, value_enum, default_value = "ht")]
    format: FormatKind,
    #[command(flatten)]
    rule: RuleArgs,
    /// HT only: dimension tree as a nested spec over the modes, e.g. "((0,1),(2,3))" (default: balanced).
    #[arg(long, value_name = "SPEC")]
    tree: Option<String>,
    #[command(flatten)]
    bt: BtArgs,
    #[command(flatten)]
    method: MethodArgs,
    /// Output modes m_1..m_d of a 2-D weight W (M x N), e.g. 4,8,8 (product >= M; zero padding if above).
    #[arg(long, value_name = "M1,M2,..", requires = "in_modes")]
    out_modes: Option<String>,
    /// Input modes n_1..n_d, e.g. 8,8,4 (product >= N); mode k of the tensor is (m_k, n_k).
    #[arg(long, value_name = "N1,N2,..", requires = "out_modes")]
    in_modes: Option<String>,
    /// Tensorize a 2-D weight with balanced modes of this order instead of giving them.
    #[arg(long, value_name = "D", conflicts_with_all = ["out_modes", "in_modes"])]
    order: Option<usize>,
    /// Which array of a multi-array input (.npz member or safetensors entry).
    #[arg(long)]
    name: Option<String>,
    /// Output: the compressed .safetensors file.
    #[arg(short, long, value_name = "OUT")]
    output: PathBuf,
    /// Write into an existing output that is not a regular file (a FIFO, a device), which
    /// cannot be replaced atomically; without it such an output is refused.
    #[arg(long)]
    force: bool,
    /// Print the result as one JSON object.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct ReconstructArgs {
    /// A compressed file written by `tnet decompose` or `tnet compress`.
    input: PathBuf,
    /// Output: .npy (one array) or .safetensors (every array, in its original dtype).
    #[arg(short, long, value_name = "OUT")]
    output: PathBuf,
    /// Write into an existing output that is not a regular file (a FIFO, a device), which
    /// cannot be replaced atomically; without it such an output is refused.
    #[arg(long)]
    force: bool,
    /// Which array to write to .npy when the file holds several.
    #[arg(long)]
    name: Option<String>,
    /// Write the rebuilt arrays in this dtype (f16, bf16, f32, f64) instead of the one
    /// they were stored in (e.g. f32 when a rebuilt f16 weight exceeds the f16 range).
    #[arg(long, value_parser = parse_dtype)]
    dtype: Option<Dtype>,
}

fn parse_dtype(s: &str) -> Result<Dtype, String> {
    Dtype::from_name(s)
        .ok_or_else(|| format!("unknown dtype '{s}' (expected f16, bf16, f32 or f64)"))
}

#[derive(Args)]
struct InfoArgs {
    /// A compressed file, a plain .npy/.npz/.safetensors file to list, or a run directory of `tnet train`.
    input: PathBuf,
    /// Print the result as one JSON object.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct CompressArgs {
    /// The model: .safetensors (or .npz).
    model: PathBuf,
    /// Tensor format.
    #[arg(long, value_enum, default_value = "ht")]
    format: FormatKind,
    /// Relative Frobenius error allowed per weight: ‖W − Ŵ‖ ≤ E‖W‖.
    #[arg(long, value_name = "E", allow_negative_numbers = true)]
    rel_eps: f64,
    /// Optional cap on every rank (bt: on the block rank).
    #[arg(long, value_name = "R")]
    rank: Option<usize>,
    /// Compress only weights whose name matches: a glob with * and ? (whole name) or a substring. Repeatable.
    #[arg(long, value_name = "PATTERN")]
    include: Vec<String>,
    /// Keep weights with fewer entries dense.
    #[arg(long, value_name = "N", default_value_t = 4096)]
    min_size: usize,
    /// Number of mode pairs d of the tensorization (default: about log2(M·N)/6, between 2 and 6).
    #[arg(long, value_name = "D")]
    order: Option<usize>,
    #[command(flatten)]
    bt: BtArgs,
    /// Output: the compressed .safetensors file.
    #[arg(short, long, value_name = "OUT")]
    output: PathBuf,
    /// Write into an existing output that is not a regular file (a FIFO, a device), which
    /// cannot be replaced atomically; without it such an output is refused.
    #[arg(long)]
    force: bool,
    /// Print the result as one JSON object.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct MethodArgs {
    /// How the factors are found: exact truncated SVDs, or randomized range finders
    /// (ht, tt and tucker; faster on unfoldings with many more rows than the rank, with an
    /// a posteriori error bound).
    #[arg(long, value_enum, default_value = "svd")]
    method: MethodArg,
    /// randomized only: columns drawn beyond the rank (default 10).
    #[arg(long, value_name = "P")]
    oversample: Option<usize>,
    /// randomized only: power iterations (default 1; 0 reads each sketched unfolding
    /// twice instead of three times, at a larger error).
    #[arg(long, value_name = "Q")]
    power_iterations: Option<usize>,
    /// randomized only: seed of the random sketches (default 0).
    #[arg(long, value_name = "S")]
    seed: Option<u64>,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum MethodArg {
    Svd,
    Randomized,
}

impl MethodArgs {
    fn method(&self, format: FormatKind) -> Result<Method, Failure> {
        match self.method {
            MethodArg::Svd => {
                if self.oversample.is_some()
                    || self.power_iterations.is_some()
                    || self.seed.is_some()
                {
                    return Err(usage(
                        "--oversample, --power-iterations and --seed are only meaningful with --method randomized",
                    ));
                }
                Ok(Method::Svd)
            }
            MethodArg::Randomized => {
                if !matches!(format, FormatKind::Ht | FormatKind::Tt | FormatKind::Tucker) {
                    return Err(usage(format!(
                        "--method randomized exists for ht, tt and tucker, not {format}"
                    )));
                }
                let d = Sketch::default();
                Ok(Method::Randomized(Sketch {
                    oversample: self.oversample.unwrap_or(d.oversample),
                    power_iterations: self.power_iterations.unwrap_or(d.power_iterations),
                    seed: self.seed.unwrap_or(d.seed),
                }))
            }
        }
    }
}

#[derive(Args)]
struct BtArgs {
    /// bt only: number of Tucker blocks (default 2). The block rank is --rank, or with
    /// --rel-eps the smallest rank whose BT-ALS fit meets it.
    #[arg(long, value_name = "N")]
    blocks: Option<usize>,
}

impl BtArgs {
    fn options(&self, format: FormatKind) -> Result<BtOptions, Failure> {
        match self.blocks {
            Some(_) if format != FormatKind::Bt => Err(usage(
                "--blocks is only meaningful for --format bt (the number of block terms)",
            )),
            Some(0) => Err(usage("--blocks: need at least 1 block")),
            Some(b) => Ok(BtOptions {
                blocks: b,
                ..BtOptions::default()
            }),
            None => Ok(BtOptions::default()),
        }
    }
}

/// Why a command failed: the library's error, or a usage problem found by the tool.
enum Failure {
    Tnet(Error),
    Usage(String),
}

impl From<Error> for Failure {
    fn from(e: Error) -> Self {
        Failure::Tnet(e)
    }
}

fn usage(msg: impl Into<String>) -> Failure {
    Failure::Usage(msg.into())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // Ctrl-C or SIGTERM during a write: remove the half-written temporary file (the output
    // keeps its previous content) and exit as an interrupted process does.
    let _ = ctrlc::set_handler(|| {
        tnet::io::remove_temporaries_in_flight();
        std::process::exit(130);
    });
    if let Some(bytes) = cli.max_memory {
        tnet::limits::set_max_memory(bytes);
    }
    let result = match cli.command {
        Command::Decompose(a) => decompose(a),
        Command::Reconstruct(a) => reconstruct(a),
        Command::Info(a) => info(a),
        Command::Compress(a) => compress_cmd(a),
        Command::Train(a) => train_cmd::train(a),
        Command::Eval(a) => train_cmd::eval(a),
        Command::Predict(a) => train_cmd::predict(a),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Usage(msg)) => {
            eprintln!("tnet: error: {msg}");
            ExitCode::from(2)
        }
        Err(Failure::Tnet(e)) => {
            eprintln!("tnet: error: {e}");
            let mut src = std::error::Error::source(&e);
            while let Some(s) = src {
                eprintln!("  caused by: {s}");
                src = s.source();
            }
            ExitCode::FAILURE
        }
    }
}

fn parse_modes(s: &str, what: &str) -> Result<Vec<usize>, Failure> {
    s.split([',', 'x', 'X'])
        .map(|t| {
            t.trim().parse::<usize>().map_err(|_| {
                usage(format!(
                    "--{what}: expected a list of positive integers like 4,8,8, got '{s}'"
                ))
            })
        })
        .collect()
}

fn pick(mut ws: Vec<Weight>, name: Option<&str>, path: &Path) -> Result<Weight, Failure> {
    let names = |ws: &[Weight]| {
        ws.iter()
            .map(|w| w.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    match name {
        Some(n) => match ws.iter().position(|w| w.name == n) {
            Some(i) => Ok(ws.swap_remove(i)),
            None => Err(usage(format!(
                "{} has no array named '{n}' (it has: {})",
                path.display(),
                names(&ws)
            ))),
        },
        None if ws.len() == 1 => Ok(ws.pop().expect("one")),
        None if ws.is_empty() => Err(usage(format!("{} holds no arrays", path.display()))),
        None => Err(usage(format!(
            "{} holds {} arrays; choose one with --name (one of: {})",
            path.display(),
            ws.len(),
            names(&ws)
        ))),
    }
}

fn check_compressed_output(path: &Path) -> Result<(), Failure> {
    match FileKind::of(path) {
        Ok(FileKind::Npy) | Ok(FileKind::Npz) => Err(usage(format!(
            "{}: the compressed output is a .safetensors file (use `tnet reconstruct` to get a .npy)",
            path.display()
        ))),
        _ => Ok(()),
    }
}

/// Writes a `.safetensors` file to `path` (see [`write_bytes`]).
fn write_output(path: &Path, file: &SafetensorsFile, force: bool) -> Result<(), Failure> {
    let bytes = weights::encode_safetensors(file)?;
    write_bytes(path, &bytes, force)
}

/// Writes `bytes` to `path` atomically (temporary file, rename), or with `--force` into an
/// existing output that is not a regular file (a FIFO, a device), which cannot be
/// replaced atomically and which `io::write_atomic` refuses.
fn write_bytes(path: &Path, bytes: &[u8], force: bool) -> Result<(), Failure> {
    let special = std::fs::metadata(path).is_ok_and(|m| !m.is_file());
    if force && special {
        std::fs::write(path, bytes).map_err(|source| Error::Io {
            path: path.to_path_buf(),
            source,
        })?;
    } else {
        tnet::io::write_atomic(path, bytes)?;
    }
    Ok(())
}

/// Refuses an output path that names the input file (directly, through a link or
/// another spelling): the input would be replaced by its lossy or rebuilt form.
fn check_distinct(input: &Path, output: &Path) -> Result<(), Failure> {
    tnet::io::check_distinct(input, output).map_err(|e| match e {
        Error::InvalidParameter { reason, .. } => usage(reason),
        e => e.into(),
    })
}

fn fmt_shape(s: &[usize]) -> String {
    s.iter()
        .map(|k| k.to_string())
        .collect::<Vec<_>>()
        .join("x")
}

fn fmt_modes(m: &Option<MatrixModes>) -> String {
    match m {
        Some(m) => format!("{} | {}", fmt_shape(&m.out_modes), fmt_shape(&m.in_modes)),
        None => "-".into(),
    }
}

/// The ranks; for block terms one group per block.
fn fmt_ranks(ranks: &[usize], blocks: Option<usize>) -> String {
    match blocks {
        Some(b) if b > 0 && ranks.len() % b == 0 && !ranks.is_empty() => {
            let groups: Vec<_> = ranks.chunks(ranks.len() / b).collect();
            format!("{groups:?} ({b} blocks)")
        }
        _ => format!("{ranks:?}"),
    }
}

fn file_size(path: &Path) -> u64 {
    std::fs::metadata(path).map(|m| m.len()).unwrap_or(0)
}

/// The array `tnet decompose` works on: borrowed from a mapped file or a decoded weight.
enum Input<'a> {
    F32(ndarray::ArrayViewD<'a, f32>),
    F64(ndarray::ArrayViewD<'a, f64>),
}

impl<'a> Input<'a> {
    /// The data of a mapped `.npy` file, if it can be borrowed (f32/f64, native order).
    fn mapped(f: &'a weights::NpyFile) -> Option<Self> {
        f.view::<f64>()
            .map(Input::F64)
            .or_else(|| f.view::<f32>().map(Input::F32))
    }

    fn decoded(data: &'a DenseArray) -> Self {
        match data {
            DenseArray::F32(x) => Input::F32(x.view()),
            DenseArray::F64(x) => Input::F64(x.view()),
        }
    }

    fn shape(&self) -> &[usize] {
        match self {
            Input::F32(x) => x.shape(),
            Input::F64(x) => x.shape(),
        }
    }
}

fn decompose(a: DecomposeArgs) -> Result<(), Failure> {
    let format = a.format;
    let rule = a.rule.rule()?;
    let bt = a.bt.options(a.format)?;
    let method = a.method.method(a.format)?;
    if a.tree.is_some() && a.format != FormatKind::Ht {
        return Err(usage(format!(
            "--tree is only meaningful for --format ht (a dimension tree), not {format}"
        )));
    }
    check_compressed_output(&a.output)?;
    check_distinct(&a.input, &a.output)?;
    // A .npy file is memory-mapped and, when it holds f32/f64 in native byte order,
    // decomposed where it lies (no copy of the tensor); anything else is decoded.
    let npy = match FileKind::of(&a.input) {
        Ok(FileKind::Npy) => Some(weights::NpyFile::open(&a.input)?),
        _ => None,
    };
    let npy = npy.filter(|f| a.name.as_deref().is_none_or(|n| n == f.name()));
    let decoded = match &npy {
        Some(f) if Input::mapped(f).is_some() => None,
        Some(f) => Some(f.to_weight()?),
        None => Some(pick(
            weights::read_weights(&a.input)?,
            a.name.as_deref(),
            &a.input,
        )?),
    };
    let (name, dtype, x) = match (&decoded, &npy) {
        (Some(w), _) => (w.name.clone(), w.dtype, Input::decoded(&w.data)),
        (None, Some(f)) => (
            f.name().to_string(),
            f.dtype(),
            Input::mapped(f).expect("checked above"),
        ),
        (None, None) => unreachable!("a weight is decoded unless a .npy file is mapped"),
    };
    let shape = x.shape().to_vec();
    let matrix = match (&a.out_modes, &a.in_modes, a.order) {
        (Some(o), Some(i), _) => Some((parse_modes(o, "out-modes")?, parse_modes(i, "in-modes")?)),
        (_, _, Some(d)) => {
            if shape.len() != 2 {
                return Err(usage(format!(
                    "--order tensorizes a 2-D weight, but the array has shape {shape:?}"
                )));
            }
            let m = MatrixModes::balanced(shape[0], shape[1], d)?;
            Some((m.out_modes, m.in_modes))
        }
        _ => None,
    };
    let matrix = match matrix {
        Some((out_modes, in_modes)) => {
            if shape.len() != 2 {
                return Err(usage(format!(
                    "--out-modes/--in-modes tensorize a 2-D weight, but the array has shape {shape:?}"
                )));
            }
            Some(MatrixModes::new(shape[0], shape[1], out_modes, in_modes)?)
        }
        None => None,
    };
    let order = matrix.as_ref().map_or(shape.len(), |m| m.out_modes.len());
    let tree = match &a.tree {
        Some(spec) => {
            let t: DimTree = spec.parse()?;
            t.check_order(order)?;
            Some(t)
        }
        None => None,
    };
    let opts = DecomposeOptions {
        format,
        rule,
        tree,
        matrix,
        bt,
        method,
    };
    let (c, mut report): (AnyCompressed, TensorReport) = match x {
        Input::F32(x) => {
            let (mut c, r) = compress::decompose(x, &opts)?;
            c.dtype = dtype;
            (c.into(), r)
        }
        Input::F64(x) => {
            let (mut c, r) = compress::decompose(x, &opts)?;
            c.dtype = dtype;
            (c.into(), r)
        }
    };
    report.name = name.clone();
    let file = CompressedFile {
        tensors: vec![(name, c)],
        ..CompressedFile::default()
    };
    write_output(&a.output, &file.to_safetensors()?, a.force)?;
    let size = file_size(&a.output);
    if a.json {
        let mut v = serde_json::to_value(&report).expect("serialisable");
        v["input"] = json!(a.input);
        v["output"] = json!(a.output);
        v["file_size"] = json!(size);
        println!("{v}");
    } else {
        println!(
            "{} {} -> {} ({})",
            a.input.display(),
            fmt_shape(&report.shape),
            a.output.display(),
            format.name()
        );
        if let Some(m) = &report.modes {
            println!(
                "  modes       out {} | in {} (tensor {}, padding {} rows, {} cols)",
                fmt_shape(&m.out_modes),
                fmt_shape(&m.in_modes),
                fmt_shape(&m.tensor_shape()),
                report.padding[0],
                report.padding[1]
            );
        }
        if let Some(t) = &report.tree {
            println!("  tree        {t}");
        }
        if let Method::Randomized(k) = report.method {
            println!(
                "  method      randomized (oversampling {}, {} power iteration{}, seed {})",
                k.oversample,
                k.power_iterations,
                if k.power_iterations == 1 { "" } else { "s" },
                k.seed
            );
        }
        println!("  ranks       {}", fmt_ranks(&report.ranks, report.blocks));
        println!(
            "  parameters  {} (dense {})",
            report.params, report.dense_params
        );
        println!("  ratio       {:.2}x", report.ratio);
        match (report.sweeps, report.trials) {
            (Some(s), Some(t)) => println!(
                "  rel. error  {:.3e} (BT-ALS: {s} sweeps{} in the kept run, {t} block ranks tried)",
                report.rel_error,
                if report.converged == Some(false) {
                    ", the limit,"
                } else {
                    ""
                }
            ),
            _ => println!(
                "  rel. error  {:.3e} (bound {:.3e})",
                report.rel_error, report.rel_error_bound
            ),
        }
        println!("  time        {:.3} s", report.seconds);
        println!("  file size   {size} bytes");
    }
    Ok(())
}

fn reconstruct(a: ReconstructArgs) -> Result<(), Failure> {
    let kind = FileKind::of(&a.output).map_err(|_| {
        usage(format!(
            "{}: write .npy (one array) or .safetensors (all arrays)",
            a.output.display()
        ))
    })?;
    check_distinct(&a.input, &a.output)?;
    let file = CompressedFile::read(&a.input)?;
    match kind {
        FileKind::Safetensors => {
            let mut dense = file.to_dense()?;
            if let Some(dtype) = a.dtype {
                for e in &mut dense.entries {
                    if let Entry::Weight(w) = e
                        && file.tensors.iter().any(|(n, _)| *n == w.name)
                    {
                        w.dtype = dtype;
                    }
                }
            }
            write_output(&a.output, &dense, a.force)?;
            println!(
                "wrote {} ({} arrays, {} rebuilt from compressed form)",
                a.output.display(),
                dense.entries.len(),
                file.tensors.len()
            );
        }
        FileKind::Npy => {
            let names: Vec<&str> = file
                .tensors
                .iter()
                .map(|(n, _)| n.as_str())
                .chain(file.kept.iter().map(Entry::name))
                .collect();
            let chosen = match &a.name {
                Some(n) => n.clone(),
                None if file.tensors.len() == 1 => file.tensors[0].0.clone(),
                None => {
                    return Err(usage(format!(
                        "{} holds {} arrays; choose one with --name (one of: {}) or write .safetensors",
                        a.input.display(),
                        names.len(),
                        names.join(", ")
                    )));
                }
            };
            // Only the chosen array is rebuilt.
            let rebuilt = match file.tensors.iter().find(|(n, _)| *n == chosen) {
                Some((name, c)) => Some(Entry::Weight(Weight::new(
                    name.clone(),
                    a.dtype.unwrap_or(c.dtype()),
                    c.to_dense()?,
                ))),
                None => None,
            };
            let w = match rebuilt
                .as_ref()
                .or_else(|| file.kept.iter().find(|e| e.name() == chosen))
            {
                Some(Entry::Weight(w)) => w.clone(),
                Some(Entry::Raw(r)) => {
                    return Err(usage(format!(
                        "'{chosen}' has dtype {}, which .npy output does not support",
                        r.dtype_name()
                    )));
                }
                None => {
                    return Err(usage(format!(
                        "{} has no array named '{chosen}' (it has: {})",
                        a.input.display(),
                        names.join(", ")
                    )));
                }
            };
            write_bytes(&a.output, &weights::encode_npy(&w)?, a.force)?;
            println!(
                "wrote {} ({} {}, {})",
                a.output.display(),
                chosen,
                fmt_shape(w.data.shape()),
                w.dtype
            );
        }
        FileKind::Npz => {
            return Err(usage(format!(
                "{}: .npz output is not supported; write .npy or .safetensors",
                a.output.display()
            )));
        }
    }
    Ok(())
}

fn info(a: InfoArgs) -> Result<(), Failure> {
    if a.input.is_dir() {
        // A run directory of `tnet train`: describe its model.
        return train_cmd::info(&a.input, a.json);
    }
    let size = std::fs::metadata(&a.input)
        .map_err(|source| Error::Io {
            path: a.input.clone(),
            source,
        })?
        .len();
    let kind = FileKind::of(&a.input).ok();
    // A plain weight file (no tnet description): list it.
    let plain = match kind {
        Some(FileKind::Npy) | Some(FileKind::Npz) => Some(
            weights::read_weights(&a.input)?
                .into_iter()
                .map(Entry::Weight)
                .collect::<Vec<_>>(),
        ),
        _ => {
            let st = weights::read_safetensors(&a.input)?;
            if st.metadata.contains_key(compress::METADATA_KEY) {
                None
            } else {
                Some(st.entries)
            }
        }
    };
    if let Some(entries) = plain {
        let list: Vec<Value> = entries
            .iter()
            .map(|e| {
                let dtype = match e {
                    Entry::Weight(w) => w.dtype.name().to_string(),
                    Entry::Raw(r) => r.dtype_name(),
                };
                json!({"name": e.name(), "format": "dense", "dtype": dtype, "shape": e.shape(),
                       "params": e.shape().iter().product::<usize>()})
            })
            .collect();
        if a.json {
            println!(
                "{}",
                json!({"file": a.input, "file_size": size, "compressed": false, "tensors": list})
            );
        } else {
            println!(
                "{}: {} arrays, {size} bytes (not compressed)",
                a.input.display(),
                list.len()
            );
            for e in &entries {
                println!("  {:<40} {:>16}", e.name(), fmt_shape(e.shape()));
            }
        }
        return Ok(());
    }
    let file = CompressedFile::read(&a.input)?;
    let mut rows = Vec::new();
    let (mut dense_total, mut params_total) = (0usize, 0usize);
    for (name, c) in &file.tensors {
        let m = c.meta(name);
        let dense: usize = m.shape.iter().product();
        let params = c.n_params();
        dense_total += dense;
        params_total += params;
        rows.push(json!({
            "name": name, "format": m.format, "dtype": m.dtype, "precision": m.precision,
            "shape": m.shape, "tensor_shape": m.tensor_shape, "modes": m.matrix,
            "tree": m.tree, "blocks": m.blocks, "ranks": m.ranks, "params": params, "dense_params": dense,
            "ratio": dense as f64 / params as f64,
        }));
    }
    let kept: usize = file
        .kept
        .iter()
        .map(|e| e.shape().iter().product::<usize>())
        .sum();
    let total = json!({
        "compressed_tensors": file.tensors.len(), "kept_tensors": file.kept.len(),
        "dense_params": dense_total + kept, "params": params_total + kept,
        "ratio": (dense_total + kept) as f64 / (params_total + kept).max(1) as f64,
        "compressed_ratio": dense_total as f64 / params_total.max(1) as f64,
    });
    if a.json {
        println!(
            "{}",
            json!({"file": a.input, "file_size": size, "compressed": true, "tensors": rows, "totals": total})
        );
        return Ok(());
    }
    println!(
        "{}: {} compressed, {} kept, {size} bytes",
        a.input.display(),
        file.tensors.len(),
        file.kept.len()
    );
    for (r, (name, c)) in rows.iter().zip(&file.tensors) {
        let m = c.meta(name);
        println!("  {name}");
        println!(
            "    format      {} ({} cores, original {})",
            m.format, m.precision, m.dtype
        );
        println!("    shape       {}", fmt_shape(&m.shape));
        if m.matrix.is_some() {
            println!(
                "    modes       {} (tensor {})",
                fmt_modes(&m.matrix),
                fmt_shape(&m.tensor_shape)
            );
        }
        if let Some(t) = &m.tree {
            println!("    tree        {t}");
        }
        println!("    ranks       {}", fmt_ranks(&m.ranks, m.blocks));
        println!(
            "    parameters  {} (dense {})",
            r["params"], r["dense_params"]
        );
        println!("    ratio       {:.2}x", r["ratio"].as_f64().unwrap_or(0.0));
    }
    println!(
        "  total: {} parameters for {} dense ({:.2}x; compressed tensors alone {:.2}x)",
        total["params"],
        total["dense_params"],
        total["ratio"].as_f64().unwrap_or(0.0),
        total["compressed_ratio"].as_f64().unwrap_or(0.0)
    );
    Ok(())
}

fn compress_cmd(a: CompressArgs) -> Result<(), Failure> {
    let format = a.format;
    let bt = a.bt.options(a.format)?;
    let mut rule = Truncation::rel(a.rel_eps);
    if let Some(r) = a.rank {
        rule = rule.with_max_rank(r);
    }
    let rule = rule.check()?.truncation();
    check_compressed_output(&a.output)?;
    check_distinct(&a.model, &a.output)?;
    let model = compress::read_model(&a.model).map_err(|e| match e {
        Error::InvalidParameter { reason, .. } => usage(reason),
        e => e.into(),
    })?;
    let opts = CompressOptions {
        include: a.include.clone(),
        min_size: a.min_size,
        order: a.order,
        bt,
        ..CompressOptions::new(format, rule)
    };
    let (file, reports) = compress::compress_model(&model, &opts)?;
    write_output(&a.output, &file.to_safetensors()?, a.force)?;
    let totals = compress::totals(&reports);
    let size_in = file_size(&a.model);
    let size_out = file_size(&a.output);
    if a.json {
        println!(
            "{}",
            json!({"input": a.model, "output": a.output, "tensors": reports, "totals": totals,
                   "input_size": size_in, "output_size": size_out})
        );
        return Ok(());
    }
    println!(
        "{:<36} {:>11} {:>19} {:>10} {:>8} {:>9}",
        "name", "shape", "modes (out | in)", "params", "ratio", "rel.err"
    );
    for r in &reports {
        let modes = match (&r.kept_dense, &r.modes) {
            (Some(why), _) => format!("kept: {why}"),
            (None, m) => {
                let mut s = fmt_modes(m);
                if r.padding != [0, 0] {
                    s.push_str(&format!(" +pad {}/{}", r.padding[0], r.padding[1]));
                }
                s
            }
        };
        println!(
            "{:<36} {:>11} {:>19} {:>10} {:>7.2}x {:>9.2e}",
            r.name,
            fmt_shape(&r.shape),
            modes,
            r.params,
            r.ratio,
            r.rel_error
        );
    }
    println!(
        "total: {} of {} tensors compressed; {} parameters for {} dense ({:.2}x); relative error of all weights {:.2e}; {} -> {} bytes",
        totals.compressed,
        reports.len(),
        totals.params,
        totals.dense_params,
        totals.ratio,
        totals.rel_error,
        size_in,
        size_out
    );
    println!("wrote {}", a.output.display());
    Ok(())
}
