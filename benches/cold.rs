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
//! The tensor is a decaying sum of low-rank trains plus 1e-3 relative noise (as in the
//! `tt_tr` bench), written once to the system's temporary directory.
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

/// The cases: name, format, rule.
fn cases() -> Vec<(&'static str, FormatKind, Truncation)> {
    vec![
        ("tt rank 8", FormatKind::Tt, Truncation::rank(8)),
        ("tt rel 1e-2", FormatKind::Tt, Truncation::rel(1e-2)),
        ("ht rel 1e-2", FormatKind::Ht, Truncation::rel(1e-2)),
        ("tucker rel 1e-2", FormatKind::Tucker, Truncation::rel(1e-2)),
        ("tr rel 1e-2", FormatKind::Tr, Truncation::rel(1e-2)),
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
    let path = std::env::temp_dir().join(format!("tnet_cold_8^{d}.npy"));
    write_tensor(&path, d);
    let me = std::env::current_exe().expect("the bench's own path");
    let mut names = vec!["baseline: one pass over the mapped file"];
    names.extend(cases().iter().map(|c| c.0));
    let mut samples = vec![Vec::new(); names.len()];
    for _ in 0..rounds {
        for (k, s) in samples.iter_mut().enumerate() {
            s.push(spawn(&me, &path, k));
        }
    }
    let median = |v: &[Sample], f: fn(&Sample) -> f64| {
        let mut x: Vec<f64> = v.iter().map(f).collect();
        x.sort_by(f64::total_cmp);
        x[x.len() / 2]
    };
    let size = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0) as f64 / 1e6;
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
            let (_, format, rule) = cases().swap_remove(k - 1);
            let opts = DecomposeOptions::new(format, rule);
            let (_, report) = compress::decompose(x, &opts).expect("decomposes");
            assert!(report.rel_error <= report.rel_error_bound * (1.0 + 1e-6) + 1e-12);
        }
        start.elapsed().as_secs_f64()
    };
    let first = call();
    let (faults, peak) = (minor_faults(), peak_kb());
    let warm = call();
    println!("{faults} {peak} {first} {warm}");
}

/// Minor page faults of this process so far (field 10 of `/proc/self/stat`; 0 elsewhere).
fn minor_faults() -> u64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // The command name (field 2) is in parentheses and may hold spaces.
    stat.rsplit_once(')')
        .and_then(|(_, rest)| rest.split_whitespace().nth(7)?.parse().ok())
        .unwrap_or(0)
}

/// Peak resident memory in KiB (`VmHWM` of `/proc/self/status`; 0 elsewhere).
fn peak_kb() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// Writes the test tensor of order `d` (mode size 8) unless it is already there.
fn write_tensor(path: &PathBuf, d: usize) {
    if NpyFile::open(path).is_ok_and(|f| f.shape() == vec![8; d].as_slice()) {
        return;
    }
    let x = common::low_rank_trains_plus_noise(&vec![8; d]);
    let w = Weight::new("x", Dtype::F64, DenseArray::F64(x));
    weights::write_npy(path, &w).expect("temporary directory writable");
}
