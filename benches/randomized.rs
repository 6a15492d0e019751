//! Randomized against exact decompositions at a fixed rank, in the same run: time per call
//! (criterion, warm) and the error of each (printed before the timings).
//!
//! - `tt_8^8`: TT, rank 8, on the `8^8` tensor of the TT bench (a decaying sum of three
//!   trains of ranks 3, 3, 2, plus `1e-3` noise);
//! - `ht_8^8`: HT on the balanced tree, rank 8, on an HT tensor of rank 8 plus `1e-3`
//!   noise;
//! - `tucker_256^3`: ST-HOSVD, rank 8, on a Tucker tensor of ranks `(8, 8, 8)` plus `1e-3`
//!   noise (the same 16.8 M entries as `8^8`, with 256 rows per mode unfolding).
//!
//! Each group times `svd` (the exact method), `randomized` (the default sketch:
//! oversampling 10, one power iteration) and `randomized_q0` (no power iteration).
//! On `8^8` every unfolding that is sketched has at most 64 rows, where the exact
//! QR-based factor already costs about as much as the sketch's passes; the gain grows with
//! the rows (docs/formats.md, "Randomized decompositions").
//!
//! Run: `cargo bench --bench randomized -- --warm-up-time 1 --measurement-time 5`.
mod common;

use criterion::{Criterion, criterion_group, criterion_main};
use ndarray::ArrayD;
use tnet::formats::{Decomposition, FormatKind, Method};
use tnet::linalg::Sketch;
use tnet::{DimTree, Factorized, HtTensor, Truncation, TuckerTensor};

fn plus_noise(s: ArrayD<f64>, seed: u64) -> ArrayD<f64> {
    let g = tnet::dense::random_normal::<f64>(s.shape(), seed);
    let scale = 1e-3 * tnet::dense::norm(s.view()) / tnet::dense::norm(g.view());
    &s + &(g * scale)
}

fn methods() -> [(&'static str, Method); 3] {
    [
        ("svd", Method::Svd),
        ("randomized", Method::Randomized(Sketch::new(0))),
        (
            "randomized_q0",
            Method::Randomized(Sketch::new(0).with_power_iterations(0)),
        ),
    ]
}

fn group(c: &mut Criterion, name: &str, format: FormatKind, x: &ArrayD<f64>) {
    let rule = Truncation::rank(8);
    let bt = Default::default();
    let run = |m: Method| Decomposition::decompose_with(m, format, x.view(), None, &rule, &bt);
    let norm = tnet::dense::norm(x.view());
    let exact = run(Method::Svd).unwrap().0.distance(x.view()).unwrap() / norm;
    for (label, m) in methods() {
        let err = run(m).unwrap().0.distance(x.view()).unwrap() / norm;
        eprintln!(
            "{name} {label}: rel error {err:.4e} ({:.3}x the exact method's)",
            err / exact
        );
    }
    let mut g = c.benchmark_group(name);
    g.sample_size(10);
    for (label, m) in methods() {
        g.bench_function(label, |b| b.iter(|| run(m).unwrap()));
    }
    g.finish();
}

fn randomized_vs_exact(c: &mut Criterion) {
    group(
        c,
        "tt_8^8",
        FormatKind::Tt,
        &common::low_rank_trains_plus_noise(&[8; 8]),
    );
    let tree = DimTree::balanced(8).unwrap();
    let ht = HtTensor::<f64>::random(&tree, &[8; 8], 8, 5).unwrap();
    group(c, "ht_8^8", FormatKind::Ht, &plus_noise(ht.to_dense(), 6));
    let tucker = TuckerTensor::<f64>::random(&[256; 3], &[8; 3], 7).unwrap();
    group(
        c,
        "tucker_256^3",
        FormatKind::Tucker,
        &plus_noise(tucker.to_dense(), 8),
    );
}

criterion_group!(benches, randomized_vs_exact);
criterion_main!(benches);
