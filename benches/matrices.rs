//! Tensorized matrices at the UCF11 input layer (Yang et al. 2017): `W` is 1,024 x 57,600
//! (output 16x4x4x4 = 4 gates x 256, input 8x20x20x18), a batch of 96 rows (16 videos x 6
//! frames), f32. Every format is compared with the dense GEMM of the same shape in the
//! same run: criterion reports the time and the throughput in flops (`Gelem/s` =
//! GFLOP/s); a summary table at the end gives parameters, flops, wall and CPU time,
//! achieved GFLOP/s and the speed-up over dense.
//!
//! `cargo bench --bench matrices` (add `-- --quick` for a short run).

mod common;

use std::hint::black_box;
use std::time::Duration;

use common::measure;
use criterion::{BenchmarkId, Criterion, Throughput};
use ndarray::Array2;
use tnet::DimTree;
use tnet::matrices::{DenseMatrix, Init, MatrixFormat, MatrixShape, TensorizedMatrix};
use tnet::{BtMatrix, HtMatrix, TrLayout, TrMatrix, TtMatrix};

type F = f32;
const BATCH: usize = 96;

fn formats() -> Vec<(&'static str, Box<dyn TensorizedMatrix<F>>)> {
    let shape = MatrixShape::try_new(vec![16, 4, 4, 4], vec![8, 20, 20, 18]).unwrap();
    let tree = DimTree::balanced(4).unwrap();
    let init = Init::Glorot;
    vec![
        (
            "dense",
            Box::new(DenseMatrix::<F>::random(&shape, &(), 1, init, 1).unwrap()),
        ),
        (
            "ht-r8",
            Box::new(HtMatrix::<F>::random(&shape, &tree, 8, init, 1).unwrap()),
        ),
        (
            "ht-r4",
            Box::new(HtMatrix::<F>::random(&shape, &tree, 4, init, 1).unwrap()),
        ),
        (
            "tt-r4",
            Box::new(TtMatrix::<F>::random(&shape, &(), 4, init, 1).unwrap()),
        ),
        (
            "tr-paired-r4",
            Box::new(TrMatrix::<F>::random(&shape, &TrLayout::Paired, 4, init, 1).unwrap()),
        ),
        (
            "tr-split-r4",
            Box::new(TrMatrix::<F>::random(&shape, &TrLayout::Split, 4, init, 1).unwrap()),
        ),
        (
            "bt-2x4",
            Box::new(BtMatrix::<F>::random(&shape, &2, 4, init, 1).unwrap()),
        ),
    ]
}

fn inputs() -> (Array2<F>, Array2<F>) {
    let x = tnet::dense::random_normal::<F>(&[BATCH, 57_600], 7)
        .into_dimensionality()
        .unwrap();
    let dy = tnet::dense::random_normal::<F>(&[BATCH, 1_024], 8)
        .into_dimensionality()
        .unwrap();
    (x, dy)
}

fn criterion_benches(c: &mut Criterion, formats: &[(&'static str, Box<dyn TensorizedMatrix<F>>)]) {
    let (x, dy) = inputs();
    let mut g = c.benchmark_group("matrices/forward");
    g.sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));
    for (name, w) in formats {
        g.throughput(Throughput::Elements(w.flops(BATCH)));
        g.bench_with_input(BenchmarkId::from_parameter(name), w, |b, w| {
            b.iter(|| black_box(w.apply(x.view()).unwrap()))
        });
    }
    g.finish();
    let mut g = c.benchmark_group("matrices/forward_backward");
    g.sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(5));
    for (name, w) in formats {
        g.throughput(Throughput::Elements(3 * w.flops(BATCH)));
        g.bench_with_input(BenchmarkId::from_parameter(name), w, |b, w| {
            b.iter(|| {
                let y = w.apply(x.view()).unwrap();
                black_box(y);
                black_box(w.backward(x.view(), dy.view()).unwrap())
            })
        });
    }
    g.finish();
}

fn summary(formats: &[(&'static str, Box<dyn TensorizedMatrix<F>>)]) {
    let (x, dy) = inputs();
    println!(
        "\nUCF11 input layer, batch {BATCH}, f32, {} rayon threads",
        rayon::current_num_threads()
    );
    println!(
        "{:<13} {:>10} {:>10} {:>9} {:>9} {:>8} {:>8} {:>9} {:>9} {:>8}",
        "format",
        "params",
        "MFLOP",
        "fwd ms",
        "fwd cpu",
        "GFLOP/s",
        "speedup",
        "f+b ms",
        "f+b cpu",
        "speedup"
    );
    let mut dense = None;
    for (name, w) in formats {
        let flops = w.flops(BATCH) as f64;
        let (t, cpu) = measure(|| {
            black_box(w.apply(x.view()).unwrap());
        });
        let (tb, cpub) = measure(|| {
            black_box(w.apply(x.view()).unwrap());
            black_box(w.backward(x.view(), dy.view()).unwrap());
        });
        let (dt, dtb) = *dense.get_or_insert((t, tb));
        let ms = |v: Option<f64>| v.map(|v| format!("{:.2}", v * 1e3)).unwrap_or("-".into());
        println!(
            "{:<13} {:>10} {:>10.1} {:>9.2} {:>9} {:>8.1} {:>7.1}x {:>9.2} {:>9} {:>7.1}x",
            name,
            w.n_params(),
            flops / 1e6,
            t * 1e3,
            ms(cpu),
            flops / t / 1e9,
            dt / t,
            tb * 1e3,
            ms(cpub),
            dtb / tb
        );
    }
    println!("(speed-ups are wall-clock ratios to the dense row; f+b = apply + backward)");
}

fn main() {
    let formats = formats();
    for (name, w) in &formats {
        if *name != "dense" {
            println!("{name}: {}", w.plan(BATCH));
        }
    }
    let mut c = Criterion::default().configure_from_args();
    criterion_benches(&mut c, &formats);
    summary(&formats);
    c.final_summary();
}
