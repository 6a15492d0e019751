//! One training step (forward and backward through time) of the LSTM classifiers at the
//! UCF11 shape: batch 16, 6 frames, `N = 57,600`, `H = 256`, 11 classes, f32. Compares
//! FDHT-LSTM (one HT map on `[x ; h]` padded to 58,080 = 22x20x12x11, rank 6, 3,612
//! weights) and TT-LSTM (input modes 8x20x20x18, rank 4, dense recurrent map) with the
//! dense LSTM (59,244,544 weights) in the same run.
//!
//! `cargo bench --bench lstm` (add `-- --quick` for a short run).

use std::hint::black_box;
use std::time::Duration;

use criterion::Criterion;
use ndarray::{Array3, Ix3};
use tnet::models::zoo::{self, ModelKind, ModelSpec};
use tnet::models::{Lstm, LstmConfig};

type F = f32;
const BATCH: usize = 16;
const FRAMES: usize = 6;

fn models() -> Vec<(&'static str, Lstm<F>)> {
    let config = LstmConfig::new(57_600, 256);
    let out = vec![16, 4, 4, 4];
    let specs = [
        (
            "fdht-r6",
            ModelSpec::new(ModelKind::Fdht, 6).with_modes(out.clone(), vec![22, 20, 12, 11]),
        ),
        (
            "tt-r4",
            ModelSpec::new(ModelKind::Tt, 4).with_modes(out.clone(), vec![8, 20, 20, 18]),
        ),
        ("dense", ModelSpec::new(ModelKind::Dense, 1)),
    ];
    specs
        .into_iter()
        .map(|(name, spec)| (name, zoo::build::<F>(&spec, &config, 11, 0).unwrap()))
        .collect()
}

fn bench(c: &mut Criterion) {
    let x: Array3<F> = tnet::dense::random_normal::<F>(&[BATCH, FRAMES, 57_600], 3)
        .into_dimensionality::<Ix3>()
        .unwrap();
    let labels: Vec<usize> = (0..BATCH).map(|i| i % 11).collect();
    let mut group = c.benchmark_group("lstm_train_step_ucf11");
    group.sample_size(10);
    group.warm_up_time(Duration::from_secs(1));
    for (name, model) in models() {
        group.bench_function(name, |b| {
            b.iter(|| {
                black_box(
                    model
                        .loss_and_grad(black_box(x.view()), &labels, None)
                        .unwrap(),
                )
            })
        });
    }
    group.finish();
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    bench(&mut c);
    c.final_summary();
}
