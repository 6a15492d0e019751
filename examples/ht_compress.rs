//! Hierarchical Tucker compression of tensors that tnet generates itself.
//!
//! Run: `cargo run --release --example ht_compress` (add `-- --quick` for a small run).
//!
//! Prints, for a smooth function sampled on a grid and for a low-rank tensor hidden
//! under noise, the parameters, compression ratio, measured relative error, the error
//! bound HT-SVD guarantees, the largest rank and the time, at several tolerances; then
//! shows rounding after arithmetic and a save/load round trip.

use std::time::Instant;

use ndarray::{ArrayD, IxDyn};
use tnet::{DimTree, Factorized, HtTensor, Truncation};

fn main() -> tnet::Result<()> {
    let quick = std::env::args().any(|a| a == "--quick");
    let (d, n) = if quick { (5, 10) } else { (6, 16) };

    // 1. A smooth function on [0, 1]^d: f(x) = 1 / sqrt(1 + |x|^2).
    let grid = |i: usize| i as f64 / (n - 1) as f64;
    let smooth = ArrayD::from_shape_fn(IxDyn(&vec![n; d]), |idx| {
        let r2: f64 = (0..d).map(|k| grid(idx[k]).powi(2)).sum();
        1.0 / (1.0 + r2).sqrt()
    });
    // 2. A random HT tensor of rank 6 plus Gaussian noise of relative size 1e-6.
    let tree = DimTree::balanced(d)?;
    let hidden = HtTensor::<f64>::random(&tree, &vec![n; d], 6, 7)?.to_dense();
    let noise = tnet::dense::random_normal::<f64>(&vec![n; d], 8);
    let scale = 1e-6 * tnet::dense::norm(hidden.view()) / tnet::dense::norm(noise.view());
    let noisy = &hidden + &(&noise * scale);

    println!(
        "tnet HT-SVD on {d}-way tensors of size {n}^{d} = {} entries, balanced tree {tree}\n",
        n.pow(d as u32)
    );
    // Below the noise level (1e-6) nothing is low-rank any more, so the noisy tensor stops
    // at 1e-5.
    let cases = [
        (
            "smooth 1/sqrt(1+|x|^2)",
            &smooth,
            vec![1e-2, 1e-4, 1e-6, 1e-8],
        ),
        ("rank-6 HT + 1e-6 noise", &noisy, vec![1e-2, 1e-3, 1e-5]),
    ];
    for (name, x, tolerances) in cases {
        println!("{name}");
        println!(
            "  {:>8} {:>10} {:>12} {:>12} {:>12} {:>8} {:>9}",
            "rel eps", "params", "compression", "rel error", "bound", "max rank", "time"
        );
        for eps in tolerances {
            let start = Instant::now();
            let (ht, info) = HtTensor::from_dense(x.view(), &tree, &Truncation::rel(eps))?;
            let time = start.elapsed();
            let err = tnet::dense::rel_error(x.view(), ht.to_dense().view())?;
            println!(
                "  {eps:>8.0e} {:>10} {:>11.1}x {err:>12.2e} {:>12.2e} {:>8} {:>8.0?}",
                ht.n_params(),
                ht.compression_ratio(),
                info.rel_error_bound(),
                ht.max_rank(),
                time
            );
            assert!(
                err <= eps * (1.0 + 1e-10),
                "the guarantee ||X - Y|| <= eps ||X|| must hold"
            );
        }
        println!();
    }

    // Arithmetic raises ranks; truncation brings them back without forming the dense tensor.
    let (a, _) = HtTensor::from_dense(noisy.view(), &tree, &Truncation::rel(1e-4))?;
    let sum = a.add(&a.scale(0.5))?;
    let (rounded, info) = sum.truncate(&Truncation::rel(1e-10))?;
    println!(
        "rounding: 1.5 X as X + 0.5 X has max rank {}, truncated to 1e-10 it has max rank {} (error bound {:.1e})",
        sum.max_rank(),
        rounded.max_rank(),
        info.rel_error_bound()
    );
    let check = rounded.norm_diff(&a.scale(1.5))? / rounded.norm();
    println!("          ||rounded - 1.5 X|| / ||rounded|| = {check:.1e}");

    // Save and load (atomic write, validated load).
    let path = std::env::temp_dir().join(format!("tnet_example_{}.json", std::process::id()));
    rounded.save(&path)?;
    let back = HtTensor::<f64>::load(&path)?;
    std::fs::remove_file(&path).ok();
    println!("save/load round trip exact: {}", back == rounded);
    Ok(())
}
