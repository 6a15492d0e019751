//! Measurement helpers and test data shared by the benches (each bench uses a part).
#![allow(dead_code)]

use std::time::{Duration, Instant};

use ndarray::ArrayD;
use tnet::{Factorized, TtTensor};

/// The HT benches' tensor: a random HT tensor of rank 8 on the balanced tree of order `d`
/// (mode size `n`) plus 1e-3 relative Gaussian noise.
pub fn ht_rank8_plus_noise(n: usize, d: usize) -> ArrayD<f64> {
    let tree = tnet::DimTree::balanced(d).unwrap();
    let shape = vec![n; d];
    let x = tnet::HtTensor::<f64>::random(&tree, &shape, 8, 1).unwrap();
    let mut dense = x.to_dense();
    let scale = 1e-3 * tnet::dense::norm(dense.view()) / (dense.len() as f64).sqrt();
    let noise = tnet::dense::random_normal::<f64>(&shape, 2);
    dense.zip_mut_with(&noise, |a, &b| *a += scale * b);
    dense
}

/// A tensor of the given shape that TT-SVD compresses well but not exactly: a decaying sum
/// of three random trains (ranks 3, 3, 2; weights 1, 0.3, 0.1) plus 1e-3 relative noise.
pub fn low_rank_trains_plus_noise(shape: &[usize]) -> ArrayD<f64> {
    let a = TtTensor::<f64>::random(shape, 3, 1).unwrap();
    let b = TtTensor::<f64>::random(shape, 3, 2).unwrap();
    let c = TtTensor::<f64>::random(shape, 2, 3).unwrap();
    let s = a
        .scale(1.0 / a.norm())
        .add(&b.scale(0.3 / b.norm()))
        .unwrap()
        .add(&c.scale(0.1 / c.norm()))
        .unwrap();
    let mut x = s.to_dense();
    let noise = tnet::dense::random_normal::<f64>(shape, 4);
    let scale = 1e-3 * tnet::dense::norm(x.view()) / tnet::dense::norm(noise.view());
    x.scaled_add(scale, &noise);
    x
}

/// CPU time of this process (all threads), from `/proc/self/stat` (Linux; `None`
/// elsewhere).
pub fn cpu_time() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let fields: Vec<&str> = stat.rsplit(')').next()?.split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(Duration::from_millis(ticks * 10)) // USER_HZ = 100 on Linux
}

/// Minor page faults of this process so far (field 10 of `/proc/self/stat`; 0 elsewhere).
pub fn minor_faults() -> u64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // The command name (field 2) is in parentheses and may hold spaces.
    stat.rsplit_once(')')
        .and_then(|(_, rest)| rest.split_whitespace().nth(7)?.parse().ok())
        .unwrap_or(0)
}

/// Peak resident memory of this process in KiB (`VmHWM` of `/proc/self/status`; 0
/// elsewhere).
pub fn peak_rss_kb() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// The SIMD width faer's matrix products run at in this process: `"avx2 (forced by
/// scripts/force-avx2)"` when that script patched faer's GEMM, else what the CPU offers
/// (faer's `private-gemm-x86` takes AVX-512 whenever `avx512f` is detected).
pub fn faer_gemm_isa() -> &'static str {
    if std::env::var_os("TNET_FORCED_AVX2").is_some() {
        return "avx2 (forced by scripts/force-avx2)";
    }
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") {
            return "avx512 (detected)";
        }
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
        {
            return "avx2 (detected)";
        }
    }
    "portable"
}

/// Median wall time and mean CPU time of `f`, over at least 5 runs and 1 s of CPU.
pub fn measure(mut f: impl FnMut()) -> (f64, Option<f64>) {
    f();
    let mut walls = Vec::new();
    let cpu0 = cpu_time();
    let start = Instant::now();
    while walls.len() < 5 || (start.elapsed() < Duration::from_secs(1) && walls.len() < 200) {
        let t = Instant::now();
        f();
        walls.push(t.elapsed().as_secs_f64());
    }
    let cpu = cpu0
        .zip(cpu_time())
        .map(|(a, b)| (b - a).as_secs_f64() / walls.len() as f64);
    walls.sort_by(|a, b| a.partial_cmp(b).unwrap());
    (walls[walls.len() / 2], cpu)
}
