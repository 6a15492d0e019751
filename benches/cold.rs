//! Cold calls: one decomposition in a fresh process, as `tnet decompose` (or a script)
//! runs it, with the page faults and the peak memory beside the time.
//!
//! Every measurement is a new process (this bench re-executes itself as a child): it
//! opens an `.npy` file of an 8^8 `f64` tensor (134 MB; 8^7 with `--quick`), decomposes
//! it with [`compress::decompose`] as the command-line tool does (the true error measured
//! included) and reports its wall time, minor page faults and peak resident memory after
//! that first call (Linux: `/proc/self/stat`, `/proc/self/status`), then makes the same
//! call again in the same process: the ratio of the first call to that warm one is what
//! a fresh process pays beyond the work itself. The baseline, measured in the same run
//! and alternated with the cases, is the work no decomposition can avoid: one pass over
//! the tensor (the file mapped and summed). Ratios to it are printed; medians of
//! `--rounds` (5; 2 with `--quick`) rounds.
//!
//! The tensors are those of the `tt_tr` bench (a decaying sum of low-rank trains plus
//! 1e-3 relative noise; every case) and of the `ht` bench (HT rank 8 plus 1e-3 noise; the
//! HT cases marked "HT tensor"), written once to the system's temporary directory.
//!
//! Run: `cargo bench --bench cold` (`-- --quick` for a small tensor).

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use tnet::Truncation;
use tnet::compress::{self, DecomposeOptions};
use tnet::formats::FormatKind;
use tnet::weights::{self, DenseArray, Dtype, NpyFile, Weight};

/// The tensors: those of the `tt_tr` and `ht` benches, written once as `.npy` files.
#[derive(Clone, Copy)]
enum Data {
    /// `tt_tr`'s decaying sum of low-rank trains plus noise.
    Trains,
    /// `ht`'s HT rank-8 tensor plus noise.
    Ht,
}

impl Data {
    fn path(self, d: usize) -> PathBuf {
        let name = match self {
            Data::Trains => "trains",
            Data::Ht => "ht",
        };
        std::env::temp_dir().join(format!("tnet_cold_{name}_8^{d}.npy"))
    }

    fn tensor(self, d: usize) -> ndarray::ArrayD<f64> {
        match self {
            Data::Trains => common::low_rank_trains_plus_noise(&vec![8; d]),
            Data::Ht => common::ht_rank8_plus_noise(8, d),
        }
    }
}

/// The cases: name, tensor, format, rule.
fn cases() -> Vec<(&'static str, Data, FormatKind, Truncation)> {
    use Data::{Ht, Trains};
    vec![
        ("tt rank 8", Trains, FormatKind::Tt, Truncation::rank(8)),
        ("tt rel 1e-2", Trains, FormatKind::Tt, Truncation::rel(1e-2)),
        ("ht rel 1e-2", Trains, FormatKind::Ht, Truncation::rel(1e-2)),
        (
            "tucker rel 1e-2",
            Trains,
            FormatKind::Tucker,
            Truncation::rel(1e-2),
        ),
        ("tr rel 1e-2", Trains, FormatKind::Tr, Truncation::rel(1e-2)),
        (
            "ht rel 1e-2, HT tensor",
            Ht,
            FormatKind::Ht,
            Truncation::rel(1e-2),
        ),
        (
            "ht rank 8, HT tensor",
            Ht,
            FormatKind::Ht,
            Truncation::rank(8),
        ),
    ]
}

/// What a child reports.
#[derive(Clone, Copy, Default)]
struct Sample {
    /// Wall time of the whole process, its start and both calls included.
    seconds: f64,
    minor_faults: u64,
    peak_kb: u64,
    /// The first call inside the process (file opened, decomposition, true error).
    first: f64,
    /// The same call again in the same process (warm: pages mapped, allocator primed).
    warm: f64,
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--child") {
        child(&args[i + 1], &args[i + 2]);
        return;
    }
    // `cargo bench` passes `--bench`; filters are not supported.
    let quick = args.iter().any(|a| a == "--quick");
    let rounds = args
        .iter()
        .position(|a| a == "--rounds")
        .and_then(|i| args.get(i + 1)?.parse().ok())
        .unwrap_or(if quick { 2 } else { 5 });
    let d = if quick { 7 } else { 8 };
    for data in [Data::Trains, Data::Ht] {
        write_tensor(&data.path(d), &vec![8; d], || data.tensor(d));
    }
    let me = std::env::current_exe().expect("the bench's own path");
    let mut names = vec!["baseline: one pass over the mapped file"];
    let mut paths = vec![Data::Trains.path(d)];
    for (name, data, _, _) in cases() {
        names.push(name);
        paths.push(data.path(d));
    }
    let mut samples = vec![Vec::new(); names.len()];
    for _ in 0..rounds {
        for (k, s) in samples.iter_mut().enumerate() {
            s.push(spawn(&me, &paths[k], k));
        }
    }
    let median = |v: &[Sample], f: fn(&Sample) -> f64| {
        let mut x: Vec<f64> = v.iter().map(f).collect();
        x.sort_by(f64::total_cmp);
        x[x.len() / 2]
    };
    let size = std::fs::metadata(&paths[0]).map(|m| m.len()).unwrap_or(0) as f64 / 1e6;
    println!("\ncold calls on 8^{d} f64 ({size:.0} MB .npy), {rounds} rounds, medians");
    println!(
        "| case | fresh process s | vs baseline | first call s | warm call s | first / warm | minor faults | peak RSS MB | peak / file |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    // A fresh process's cost: its wall time without the warm repeat.
    let fresh = |s: &Sample| s.seconds - s.warm;
    let base = median(&samples[0], fresh);
    for (name, s) in names.iter().zip(&samples) {
        let t = median(s, fresh);
        let peak = median(s, |s| s.peak_kb as f64) / 1e3;
        println!(
            "| {name} | {t:.3} | {:.1}x | {:.3} | {:.3} | {:.2} | {:.0} | {peak:.0} | {:.2} |",
            t / base,
            median(s, |s| s.first),
            median(s, |s| s.warm),
            median(s, |s| s.first / s.warm),
            median(s, |s| s.minor_faults as f64),
            peak / size
        );
    }
}

/// Runs case `k` (0: the baseline) in a new process; its wall time includes the process's
/// start.
fn spawn(me: &Path, path: &Path, k: usize) -> Sample {
    let start = Instant::now();
    let out = Command::new(me)
        .args(["--child", &k.to_string()])
        .arg(path)
        .output()
        .expect("the bench runs itself");
    let seconds = start.elapsed().as_secs_f64();
    assert!(
        out.status.success(),
        "case {k} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let v: Vec<f64> = text
        .split_whitespace()
        .map(|v| v.parse().unwrap_or(0.0))
        .collect();
    Sample {
        seconds,
        minor_faults: v.first().copied().unwrap_or(0.0) as u64,
        peak_kb: v.get(1).copied().unwrap_or(0.0) as u64,
        first: v.get(2).copied().unwrap_or(0.0),
        warm: v.get(3).copied().unwrap_or(0.0),
    }
}

/// The child: one case, then its page faults and peak memory (after the first call) and
/// the times of the first and of a second, warm call on stdout.
fn child(case: &str, path: &str) {
    let k: usize = case.parse().expect("case number");
    let call = || {
        let start = Instant::now();
        let file = NpyFile::open(path).expect("the bench's tensor");
        let x = file.view::<f64>().expect("native f64");
        if k == 0 {
            let s: f64 = x.iter().sum();
            assert!(s.is_finite());
        } else {
            let (_, _, format, rule) = cases().swap_remove(k - 1);
            let opts = DecomposeOptions::new(format, rule);
            let (_, report) = compress::decompose(x, &opts).expect("decomposes");
            assert!(report.rel_error <= report.rel_error_bound * (1.0 + 1e-6) + 1e-12);
        }
        start.elapsed().as_secs_f64()
    };
    let first = call();
    let (faults, peak) = (common::minor_faults(), common::peak_rss_kb());
    let warm = call();
    println!("{faults} {peak} {first} {warm}");
}

/// Writes the tensor `make` builds to `path` unless a file of that shape is already there.
fn write_tensor(path: &Path, shape: &[usize], make: impl FnOnce() -> ndarray::ArrayD<f64>) {
    if NpyFile::open(path).is_ok_and(|f| f.shape() == shape) {
        return;
    }
    let w = Weight::new("x", Dtype::F64, DenseArray::F64(make()));
    weights::write_npy(path, &w).expect("temporary directory writable");
}
