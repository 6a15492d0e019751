//! Measurement helpers shared by the benches' summary tables.

use std::time::{Duration, Instant};

/// CPU time of this process (all threads), from `/proc/self/stat` (Linux; `None`
/// elsewhere).
pub fn cpu_time() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let fields: Vec<&str> = stat.rsplit(')').next()?.split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(Duration::from_millis(ticks * 10)) // USER_HZ = 100 on Linux
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
