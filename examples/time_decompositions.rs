//! Time one decomposition of a `.npy` tensor and print the result as one JSON line.
//!
//! Run: `cargo run --release --example time_decompositions -- --input x.npy --method tt --rank 8`
//! (add `--rel-eps E` for a tolerance, `--repeat N` for the best of `N` calls), or
//! `cargo run --release --example time_decompositions -- --quick` for every method on a
//! small generated tensor (no input file needed; this is what CI runs).
//!
//! This is the tnet half of `scripts/compare_python.py`, which times TensorLy on the same
//! `.npy` files at the same ranks. The timed region is the decomposition call alone, on a
//! view of the loaded array (no copy, no file I/O); the relative error
//! `‖X − Y‖_F / ‖X‖_F` and the parameter count are computed afterwards, outside it.
//!
//! Methods (the library call timed):
//!
//! - `tt`: [`tt_svd`] (TT-SVD, Oseledets 2011);
//! - `tr`: [`tr_svd`] (TR-SVD, Zhao et al. 2016, Algorithm 1);
//! - `tucker`: [`st_hosvd`] (sequentially truncated HOSVD, tnet's default Tucker);
//! - `hosvd`: [`hosvd`] with [`HosvdVariant::Plain`] (every factor from the full tensor,
//!   De Lathauwer et al. 2000: the algorithm of TensorLy's `tucker(init="svd", n_iter_max=0)`);
//! - `ht`: [`HtTensor::from_dense`] on the balanced tree (HT-SVD, leaves to root).
//!
//! Thread count: tnet spreads independent matrices over the rayon pool, so set
//! `RAYON_NUM_THREADS` to compare at a fixed number of threads.
//!
//! Output fields: `method`, `dtype`, `shape`, `rank`, `rel_eps`, `repeat`, `seconds`
//! (best of the calls), `seconds_all`, `ranks`, `params`, `rel_error`, `rel_error_bound`.

use std::path::PathBuf;
use std::time::Instant;

use ndarray::{ArrayD, ArrayViewD};
use serde_json::{Value, json};
use tnet::formats::tr::tr_svd;
use tnet::formats::tt::tt_svd;
use tnet::formats::tucker::{HosvdOptions, HosvdVariant, hosvd, st_hosvd};
use tnet::weights::DenseArray;
use tnet::{DimTree, Factorized, HtTensor, Scalar, Truncation, TtTensor, dense};

const METHODS: [&str; 5] = ["tt", "tr", "tucker", "hosvd", "ht"];

const USAGE: &str = "usage: time_decompositions --input X.npy --method tt|tr|tucker|hosvd|ht \
    [--rank R] [--rel-eps E] [--repeat N]\n       time_decompositions --quick";

/// A decomposition as the common trait object, with its ranks and error bound.
struct Decomposed<T: Scalar> {
    y: Box<dyn Factorized<T>>,
    ranks: Vec<usize>,
    bound: f64,
}

fn main() {
    if let Err(e) = run() {
        eprintln!("time_decompositions: {e}");
        std::process::exit(1);
    }
}

fn run() -> Result<(), String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "--quick") {
        return quick();
    }
    let mut input: Option<PathBuf> = None;
    let mut method: Option<String> = None;
    let mut rank: Option<usize> = None;
    let mut rel_eps: Option<f64> = None;
    let mut repeat = 1usize;
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let mut value = || {
            it.next()
                .cloned()
                .ok_or_else(|| format!("{flag} needs a value\n{USAGE}"))
        };
        match flag.as_str() {
            "--input" => input = Some(PathBuf::from(value()?)),
            "--method" => method = Some(value()?),
            "--rank" => rank = Some(parse(&value()?, "--rank")?),
            "--rel-eps" => rel_eps = Some(parse(&value()?, "--rel-eps")?),
            "--repeat" => repeat = parse(&value()?, "--repeat")?,
            "-h" | "--help" => {
                println!("{USAGE}");
                return Ok(());
            }
            other => return Err(format!("unknown argument {other}\n{USAGE}")),
        }
    }
    let input = input.ok_or(format!("--input is required\n{USAGE}"))?;
    let method = method.ok_or(format!("--method is required\n{USAGE}"))?;
    if repeat == 0 {
        return Err("--repeat must be at least 1".into());
    }
    let rule = rule(rank, rel_eps)?;
    let w = tnet::weights::read_npy(&input).map_err(|e| e.to_string())?;
    let mut v = match w.data {
        DenseArray::F32(x) => time::<f32>(x.view(), &method, &rule, repeat)?,
        DenseArray::F64(x) => time::<f64>(x.view(), &method, &rule, repeat)?,
    };
    v["input"] = json!(input);
    v["rank"] = json!(rank);
    v["rel_eps"] = json!(rel_eps);
    println!("{v}");
    Ok(())
}

fn parse<V: std::str::FromStr>(s: &str, flag: &str) -> Result<V, String> {
    s.parse()
        .map_err(|_| format!("{flag}: cannot parse {s:?}\n{USAGE}"))
}

fn rule(rank: Option<usize>, rel_eps: Option<f64>) -> Result<Truncation, String> {
    let rule = match (rank, rel_eps) {
        (None, None) => return Err(format!("give --rank, --rel-eps or both\n{USAGE}")),
        (Some(r), None) => Truncation::rank(r),
        (None, Some(e)) => Truncation::rel(e),
        (Some(r), Some(e)) => Truncation::rel(e).with_max_rank(r),
    };
    rule.check()
        .map(|r| r.truncation())
        .map_err(|e| e.to_string())
}

/// One call of `method` on `x`.
fn decompose<T: Scalar>(
    x: ArrayViewD<'_, T>,
    method: &str,
    rule: &Truncation,
) -> Result<Decomposed<T>, String> {
    let err = |e: tnet::Error| e.to_string();
    Ok(match method {
        "tt" => {
            let (y, info) = tt_svd(x, rule).map_err(err)?;
            Decomposed {
                ranks: y.ranks(),
                bound: info.error_bound.as_f64(),
                y: Box::new(y),
            }
        }
        "tr" => {
            let (y, info) = tr_svd(x, rule).map_err(err)?;
            Decomposed {
                ranks: y.ranks(),
                bound: info.error_bound.as_f64(),
                y: Box::new(y),
            }
        }
        "tucker" => {
            let (y, info) = st_hosvd(x, rule).map_err(err)?;
            Decomposed {
                ranks: y.ranks(),
                bound: info.error_bound.as_f64(),
                y: Box::new(y),
            }
        }
        "hosvd" => {
            let plain = HosvdOptions::default().with_variant(HosvdVariant::Plain);
            let (y, info) = hosvd(x, rule, &plain).map_err(err)?;
            Decomposed {
                ranks: y.ranks(),
                bound: info.error_bound.as_f64(),
                y: Box::new(y),
            }
        }
        "ht" => {
            let tree = DimTree::balanced(x.ndim()).map_err(err)?;
            let (y, info) = HtTensor::from_dense(x, &tree, rule).map_err(err)?;
            Decomposed {
                ranks: y.ranks(),
                bound: info.error_bound.as_f64(),
                y: Box::new(y),
            }
        }
        other => {
            return Err(format!(
                "unknown method {other:?} (one of {})",
                METHODS.join(", ")
            ));
        }
    })
}

/// Best of `repeat` timed calls, then the error and size of the last result.
fn time<T: Scalar>(
    x: ArrayViewD<'_, T>,
    method: &str,
    rule: &Truncation,
    repeat: usize,
) -> Result<Value, String> {
    let mut seconds = Vec::with_capacity(repeat);
    let mut last = None;
    for _ in 0..repeat {
        drop(last.take());
        let start = Instant::now();
        let d = decompose(x.view(), method, rule)?;
        seconds.push(start.elapsed().as_secs_f64());
        last = Some(d);
    }
    let d = last.expect("repeat >= 1");
    let rel_error = dense::rel_error(x.view(), d.y.to_dense().view())
        .map_err(|e| e.to_string())?
        .as_f64();
    let norm = dense::norm(x.view()).as_f64();
    let best = seconds.iter().copied().fold(f64::INFINITY, f64::min);
    Ok(json!({
        "method": method,
        "dtype": T::NAME,
        "shape": x.shape(),
        "repeat": repeat,
        "seconds": best,
        "seconds_all": seconds,
        "ranks": d.ranks,
        "params": d.y.n_params(),
        "rel_error": rel_error,
        "rel_error_bound": if norm > 0.0 { d.bound / norm } else { d.bound },
    }))
}

/// Every method, both precisions, on a small TT-structured tensor plus noise.
fn quick() -> Result<(), String> {
    let shape = [6usize; 5];
    let t = TtTensor::<f64>::random(&shape, 3, 1).map_err(|e| e.to_string())?;
    let mut x = t.to_dense();
    let noise = dense::random_normal::<f64>(&shape, 2);
    let scale = 1e-3 * dense::norm(x.view()) / dense::norm(noise.view());
    x.scaled_add(scale, &noise);
    let x32: ArrayD<f32> = x.mapv(|v| v as f32);
    for method in METHODS {
        for (rank, rel_eps) in [(Some(3), None), (None, Some(1e-2))] {
            let rule = rule(rank, rel_eps)?;
            for v in [
                time::<f64>(x.view(), method, &rule, 2)?,
                time::<f32>(x32.view(), method, &rule, 2)?,
            ] {
                let err = v["rel_error"].as_f64().unwrap_or(f64::NAN);
                let bound = v["rel_error_bound"].as_f64().unwrap_or(f64::NAN);
                // The SVD-based methods guarantee their bound up to rounding; in f32 the
                // discarded norms are only accurate to about sqrt(eps_f32) ‖X‖ ≈ 3e-4 ‖X‖.
                let slack = if v["dtype"] == "f32" { 1e-3 } else { 1e-10 };
                if err.is_nan() || err > bound * 1.01 + slack {
                    return Err(format!("{method}: error {err:e} above its bound {bound:e}"));
                }
                if let Some(e) = rel_eps.filter(|&e| err > e * 1.01) {
                    return Err(format!("{method}: error {err:e} above the tolerance {e:e}"));
                }
                println!("{v}");
            }
        }
    }
    Ok(())
}
