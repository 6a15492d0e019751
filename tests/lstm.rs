//! The LSTM models: exact gradients, wirings, accounting, streaming, persistence, errors.

mod common;

use ndarray::{Array2, Array3, ArrayD, Ix3, s};
use proptest::prelude::*;
use tnet::models::{
    Classifier, DenseLinear, GateActivation, LinearMap, Lstm, LstmConfig, PadPosition,
    ParamCount, Pooling, Wiring,
};
use tnet::{Error, Scalar};

fn clip<T: Scalar>(b: usize, t: usize, n: usize, seed: u64) -> Array3<T> {
    tnet::dense::random_normal::<T>(&[b, t, n], seed)
        .into_dimensionality::<Ix3>()
        .unwrap()
}

/// Largest |analytic - central difference| over every parameter entry, relative to
/// max(1, |analytic|).
fn grad_check_error(model: &Lstm<f64>, x: &Array3<f64>, labels: &[usize], seed: Option<u64>) -> f64 {
    let out = model.loss_and_grad(x.view(), labels, seed).unwrap();
    let eps = 1e-6;
    let mut m = model.clone();
    let mut worst: f64 = 0.0;
    for (k, g) in out.grads.tensors.iter().enumerate() {
        for idx in 0..g.len() {
            let orig = m.params()[k].iter().nth(idx).copied().unwrap();
            let set = |m: &mut Lstm<f64>, v: f64| {
                let mut p = m.params_mut();
                *p[k].iter_mut().nth(idx).unwrap() = v;
            };
            set(&mut m, orig + eps);
            let lp = m.loss(x.view(), labels, seed).unwrap();
            set(&mut m, orig - eps);
            let lm = m.loss(x.view(), labels, seed).unwrap();
            set(&mut m, orig);
            let fd = (lp - lm) / (2.0 * eps);
            let an = *g.iter().nth(idx).unwrap();
            worst = worst.max((an - fd).abs() / an.abs().max(1.0));
        }
    }
    worst
}

fn configs() -> Vec<LstmConfig> {
    let base = LstmConfig::new(5, 3);
    vec![
        base.clone(),
        base.clone().with_pooling(Pooling::Mean),
        base.clone().with_gate(GateActivation::HardSigmoid),
        base.clone().with_dropout(0.3, 0.4),
        base.with_pooling(Pooling::Mean).with_dropout(0.25, 0.25).with_forget_bias(0.5),
    ]
}

/// Backpropagation through time matches central finite differences for every
/// parameter of the separate wiring, over 4 steps, for every gate/pooling/dropout option.
#[test]
fn gradients_separate_match_finite_differences() {
    for (k, cfg) in configs().iter().enumerate() {
        let model = Lstm::<f64>::dense(cfg, 3, 10 + k as u64).unwrap();
        let x = clip::<f64>(3, 4, 5, 20 + k as u64);
        let err = grad_check_error(&model, &x, &[0, 2, 1], Some(7));
        common::assert_within(err, 1e-7, &format!("separate, config {cfg:?}"));
    }
}

/// Backpropagation through time matches central finite differences for every
/// parameter of the fused wiring (padded, both pad positions), over 4 steps.
#[test]
fn gradients_fused_match_finite_differences() {
    for (k, cfg) in configs().iter().enumerate() {
        for pad in [PadPosition::End, PadPosition::AfterInput] {
            let model = Lstm::<f64>::dense_fused(cfg, 3, 5 + 3 + 2, pad, 30 + k as u64).unwrap();
            let x = clip::<f64>(3, 4, 5, 40 + k as u64);
            let err = grad_check_error(&model, &x, &[1, 0, 2], Some(9));
            common::assert_within(err, 1e-7, &format!("fused {pad:?}, config {cfg:?}"));
        }
    }
}
