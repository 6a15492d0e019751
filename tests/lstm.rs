//! The LSTM models: exact gradients, wirings, accounting, streaming, persistence, errors.

mod common;

use ndarray::{Array2, Array3, ArrayD, Ix3, s};
use proptest::prelude::*;
use tnet::matrices::{DenseMatrix, LinearMap};
use tnet::models::{
    Classifier, GateActivation, Lstm, LstmConfig, PadPosition, ParamCount, Part, Pooling, Wiring,
};
use tnet::{Error, Scalar};

fn clip<T: Scalar>(b: usize, t: usize, n: usize, seed: u64) -> Array3<T> {
    tnet::dense::random_normal::<T>(&[b, t, n], seed)
        .into_dimensionality::<Ix3>()
        .unwrap()
}

/// Largest |analytic - central difference| over every parameter entry, relative to
/// max(1, |analytic|). The central difference is Richardson-extrapolated
/// (`(4 D(ε/2) - D(ε)) / 3`, error `O(ε⁴)`): with gate normalisation over `H = 2` units the
/// loss can be so steep (a gate whose two pre-activations nearly agree) that a plain
/// central difference at `ε = 1e-6` is off by `4e-7` while the analytic gradient is exact
/// (the difference falls as `ε²`, and as `ε⁴` extrapolated: `9e-7` at `ε = 1e-6`, `4e-9`
/// at `1e-7`, in the worst case proptest found).
fn grad_check_error(
    model: &Lstm<f64>,
    x: &Array3<f64>,
    labels: &[usize],
    seed: Option<u64>,
) -> f64 {
    let out = model.loss_and_grad(x.view(), labels, seed).unwrap();
    let eps = 1e-7;
    let mut m = model.clone();
    let mut worst: f64 = 0.0;
    for (k, g) in out.grads.tensors.iter().enumerate() {
        for idx in 0..g.len() {
            let orig = m.params()[k].iter().nth(idx).copied().unwrap();
            let set = |m: &mut Lstm<f64>, v: f64| {
                let mut p = m.params_mut();
                *p[k].iter_mut().nth(idx).unwrap() = v;
            };
            let mut central = |h: f64| {
                set(&mut m, orig + h);
                let lp = m.loss(x.view(), labels, seed).unwrap();
                set(&mut m, orig - h);
                let lm = m.loss(x.view(), labels, seed).unwrap();
                set(&mut m, orig);
                (lp - lm) / (2.0 * h)
            };
            let fd = (4.0 * central(eps / 2.0) - central(eps)) / 3.0;
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
        base.clone()
            .with_pooling(Pooling::Mean)
            .with_dropout(0.25, 0.25)
            .with_forget_bias(0.5),
        base.clone().with_recurrent_gain(2.5),
        base.clone().with_dropout(0.2, 0.3).with_recurrent_gain(0.5),
        base.clone().with_gate_norm(true),
        base.with_gate_norm(true)
            .with_pooling(Pooling::Mean)
            .with_dropout(0.25, 0.3)
            .with_recurrent_gain(1.5),
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

/// With gate normalisation the model does not depend on the scale of its maps: scaling
/// every map (fused, or input and recurrent together) by any factor leaves the logits
/// unchanged up to the normalisation's `ε`; the gains, ones at the start, are saved and
/// loaded with the other parameters and counted as biases.
#[test]
fn gate_norm_removes_the_scale_of_the_maps() {
    let cfg = LstmConfig::new(6, 5).with_gate_norm(true);
    let x = clip::<f64>(4, 3, 6, 3);
    for fused in [false, true] {
        let m = if fused {
            Lstm::<f64>::dense_fused(&cfg, 3, 12, PadPosition::End, 8).unwrap()
        } else {
            Lstm::<f64>::dense(&cfg, 3, 8).unwrap()
        };
        assert!(m.gain().unwrap().iter().all(|&g| g == 1.0));
        let specs = m.param_specs();
        assert_eq!(specs.iter().filter(|s| s.part == Part::GateGain).count(), 1);
        let logits = m.logits(x.view()).unwrap();
        for factor in [0.2, 7.0, 300.0] {
            let mut scaled = m.clone();
            for (spec, mut p) in specs.iter().zip(scaled.params_mut()) {
                if matches!(
                    spec.part,
                    Part::InputMap | Part::RecurrentMap | Part::FusedMap
                ) {
                    p.mapv_inplace(|v| v * factor);
                }
            }
            let other = scaled.logits(x.view()).unwrap();
            let diff = (&other - &logits)
                .iter()
                .fold(0.0f64, |a, v| a.max(v.abs()));
            assert!(diff < 1e-3, "fused {fused}, factor {factor}: {diff:e}");
        }
        // Without the normalisation the same scaling changes the logits.
        let plain = if fused {
            Lstm::<f64>::dense_fused(&LstmConfig::new(6, 5), 3, 12, PadPosition::End, 8).unwrap()
        } else {
            Lstm::<f64>::dense(&LstmConfig::new(6, 5), 3, 8).unwrap()
        };
        let mut scaled = plain.clone();
        for (spec, mut p) in plain.param_specs().iter().zip(scaled.params_mut()) {
            if matches!(
                spec.part,
                Part::InputMap | Part::RecurrentMap | Part::FusedMap
            ) {
                p.mapv_inplace(|v| v * 7.0);
            }
        }
        let diff = (&scaled.logits(x.view()).unwrap() - &plain.logits(x.view()).unwrap())
            .iter()
            .fold(0.0f64, |a, v| a.max(v.abs()));
        assert!(diff > 1e-2, "fused {fused}: {diff:e}");
        assert_eq!(
            m.param_count().bias,
            plain.param_count().bias + 4 * 5,
            "the gains count with the biases"
        );
    }
}

/// A test-only format: `W = A B` (rank `r`), to check that any `LinearMap` plugs in.
#[derive(Clone)]
struct LowRank {
    a: ndarray::Array2<f64>,
    b: ndarray::Array2<f64>,
}

impl LowRank {
    fn random(m: usize, n: usize, r: usize, seed: u64) -> Self {
        let a = tnet::dense::random_normal::<f64>(&[m, r], seed) * (1.0 / (r as f64).sqrt());
        let b = tnet::dense::random_normal::<f64>(&[r, n], seed + 1) * (1.0 / (n as f64).sqrt());
        Self {
            a: a.into_dimensionality().unwrap(),
            b: b.into_dimensionality().unwrap(),
        }
    }
}

impl LinearMap<f64> for LowRank {
    fn n_in(&self) -> usize {
        self.b.ncols()
    }
    fn n_out(&self) -> usize {
        self.a.nrows()
    }
    fn n_params(&self) -> usize {
        self.a.len() + self.b.len()
    }
    fn apply(&self, x: ndarray::ArrayView2<'_, f64>) -> tnet::Result<Array2<f64>> {
        Ok(x.dot(&self.b.t()).dot(&self.a.t()))
    }
    fn backward(
        &self,
        x: ndarray::ArrayView2<'_, f64>,
        dy: ndarray::ArrayView2<'_, f64>,
    ) -> tnet::Result<(Array2<f64>, Vec<ArrayD<f64>>)> {
        let xb = x.dot(&self.b.t());
        let dya = dy.dot(&self.a);
        Ok((
            dya.dot(&self.b),
            vec![dy.t().dot(&xb).into_dyn(), dya.t().dot(&x).into_dyn()],
        ))
    }
    fn params(&self) -> Vec<ndarray::ArrayViewD<'_, f64>> {
        vec![self.a.view().into_dyn(), self.b.view().into_dyn()]
    }
    fn params_mut(&mut self) -> Vec<ndarray::ArrayViewMutD<'_, f64>> {
        vec![self.a.view_mut().into_dyn(), self.b.view_mut().into_dyn()]
    }
    fn describe(&self) -> String {
        format!(
            "low-rank {}x{} r={}",
            self.n_out(),
            self.n_in(),
            self.a.ncols()
        )
    }
    fn box_clone(&self) -> Box<dyn LinearMap<f64>> {
        Box::new(self.clone())
    }
}

/// Gradients are exact through a user-supplied (non-dense) map in both wirings, and the
/// parameter accounting counts its parameters per part.
#[test]
fn custom_map_plugs_in_with_exact_gradients() {
    let cfg = LstmConfig::new(6, 4).with_dropout(0.2, 0.2);
    let head = Classifier::dense(4, 3, 5).unwrap();
    let sep = Lstm::separate(
        &cfg,
        Box::new(LowRank::random(16, 6, 2, 1)),
        Box::new(DenseMatrix::glorot(16, 4, 2).unwrap()),
        head.clone(),
    )
    .unwrap();
    let fused = Lstm::fused(
        &cfg,
        Box::new(LowRank::random(16, 12, 3, 3)),
        PadPosition::AfterInput,
        head,
    )
    .unwrap();
    let x = clip::<f64>(2, 3, 6, 4);
    for m in [&sep, &fused] {
        let err = grad_check_error(m, &x, &[2, 0], Some(1));
        common::assert_within(err, 1e-7, &format!("{:?}", m.wiring()));
    }
    let p = sep.param_count();
    assert_eq!(
        (
            p.input_map,
            p.recurrent_map,
            p.fused_map,
            p.bias,
            p.classifier
        ),
        (16 * 2 + 2 * 6, 16 * 4, 0, 16, 3 * 4 + 3)
    );
    let q = fused.param_count();
    assert_eq!((q.input_map, q.fused_map), (0, 16 * 3 + 3 * 12));
    let dense = ParamCount::dense_lstm(6, 4, 3);
    let r = fused.compression_ratio();
    assert_eq!(r.without_classifier, dense.lstm() as f64 / q.lstm() as f64);
    assert_eq!(r.with_classifier, dense.total() as f64 / q.total() as f64);
    assert_eq!(fused.map_descriptions()[0], "low-rank 16x12 r=3");
}

/// The dense fused LSTM built from the same seed computes the same logits and the same
/// gradients as the separate dense LSTM (input and recurrent blocks of the fused
/// gradient equal W_x's and U's gradients, padding columns get zero gradient).
#[test]
fn fused_dense_equals_separate_dense() {
    let (n, h, p) = (5, 4, 12);
    for pad in [PadPosition::End, PadPosition::AfterInput] {
        let cfg = LstmConfig::new(n, h)
            .with_dropout(0.3, 0.3)
            .with_recurrent_gain(1.7);
        let sep = Lstm::<f64>::dense(&cfg, 3, 8).unwrap();
        let fus = Lstm::<f64>::dense_fused(&cfg, 3, p, pad, 8).unwrap();
        let x = clip::<f64>(4, 5, n, 9);
        let labels = [0, 1, 2, 1];
        let a = sep.loss_and_grad(x.view(), &labels, Some(3)).unwrap();
        let b = fus.loss_and_grad(x.view(), &labels, Some(3)).unwrap();
        let tol = 1e-13;
        assert!((a.loss - b.loss).abs() < tol);
        assert!((&a.logits - &b.logits).iter().all(|d| d.abs() < tol));
        let off = if pad == PadPosition::End { n } else { p - h };
        let gw = b.grads.tensors[0]
            .view()
            .into_dimensionality::<ndarray::Ix2>()
            .unwrap();
        let gx = a.grads.tensors[0]
            .view()
            .into_dimensionality::<ndarray::Ix2>()
            .unwrap();
        let gu = a.grads.tensors[1]
            .view()
            .into_dimensionality::<ndarray::Ix2>()
            .unwrap();
        assert!(
            (&gw.slice(s![.., 0..n]) - &gx)
                .iter()
                .all(|d| d.abs() < tol)
        );
        assert!(
            (&gw.slice(s![.., off..off + h]) - &gu)
                .iter()
                .all(|d| d.abs() < tol)
        );
        let pad_cols: f64 = (0..p)
            .filter(|&j| j >= n && !(off..off + h).contains(&j))
            .map(|j| gw.column(j).iter().map(|v| v.abs()).sum::<f64>())
            .sum();
        assert_eq!(pad_cols, 0.0);
        for k in 0..3 {
            let d = &a.grads.tensors[2 + k] - &b.grads.tensors[1 + k];
            assert!(d.iter().all(|v| v.abs() < tol), "tensor {k}");
        }
    }
}

/// f32 gradients agree with f64 gradients of the same model to f32 precision.
#[test]
fn f32_gradients_match_f64() {
    for fused in [false, true] {
        let cfg = LstmConfig::new(6, 5).with_pooling(Pooling::Mean);
        let build = |seed| {
            (
                if fused {
                    Lstm::<f32>::dense_fused(&cfg, 3, 12, PadPosition::End, seed).unwrap()
                } else {
                    Lstm::<f32>::dense(&cfg, 3, seed).unwrap()
                },
                if fused {
                    Lstm::<f64>::dense_fused(&cfg, 3, 12, PadPosition::End, seed).unwrap()
                } else {
                    Lstm::<f64>::dense(&cfg, 3, seed).unwrap()
                },
            )
        };
        let (m32, mut m64) = build(4);
        // Give the f64 model exactly the f32 model's parameters.
        let p32: Vec<ArrayD<f64>> = m32.params().iter().map(|p| p.mapv(|v| v as f64)).collect();
        m64.set_params(&p32).unwrap();
        let x64 = clip::<f64>(3, 4, 6, 5).mapv(|v| (v as f32) as f64);
        let x32 = x64.mapv(|v| v as f32);
        let g32 = m32.loss_and_grad(x32.view(), &[0, 1, 2], None).unwrap();
        let g64 = m64.loss_and_grad(x64.view(), &[0, 1, 2], None).unwrap();
        let tol = common::roundoff::<f32>(100);
        for (a, b) in g32.grads.tensors.iter().zip(&g64.grads.tensors) {
            let err = a
                .iter()
                .zip(b)
                .map(|(&a, &b)| (a as f64 - b).abs())
                .fold(0.0, f64::max);
            common::assert_within(err, tol, "f32 vs f64 gradient");
        }
        assert!((g32.loss - g64.loss).abs() < tol);
    }
}

fn small_case() -> impl Strategy<Value = (usize, usize, usize, usize, usize, bool, u64)> {
    (
        1usize..5,
        1usize..4,
        1usize..5,
        1usize..4,
        0usize..3,
        any::<bool>(),
        any::<u64>(),
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    /// For random small sizes (including T = 1 and H = 1) both wirings' gradients match
    /// central finite differences.
    #[test]
    fn gradients_match_for_random_sizes(
        (n, h, t, b, extra, mean, seed) in small_case()
    ) {
        let cfg = LstmConfig::new(n, h)
            .with_pooling(if mean { Pooling::Mean } else { Pooling::Last })
            .with_dropout(0.2, 0.2)
            .with_gate_norm(seed % 2 == 0);
        let x = clip::<f64>(b, t, n, seed);
        let labels: Vec<usize> = (0..b).map(|k| (k + seed as usize) % 2).collect();
        let sep = Lstm::<f64>::dense(&cfg, 2, seed).unwrap();
        let fus = Lstm::<f64>::dense_fused(&cfg, 2, n + h + extra, PadPosition::End, seed).unwrap();
        for m in [&sep, &fus] {
            let err = grad_check_error(m, &x, &labels, Some(seed ^ 1));
            prop_assert!(err <= 1e-7, "{:?}: {err:e}", m.wiring());
        }
    }
}

/// Dropout is active only with a seed, reproducible for a given seed, and different for
/// different seeds.
#[test]
fn dropout_is_seeded_and_training_only() {
    let cfg = LstmConfig::new(6, 5).with_dropout(0.5, 0.5);
    let m = Lstm::<f64>::dense(&cfg, 2, 1).unwrap();
    let x = clip::<f64>(3, 4, 6, 2);
    let y = [0, 1, 0];
    let eval = m.loss(x.view(), &y, None).unwrap();
    let plain = Lstm::<f64>::dense(&LstmConfig::new(6, 5), 2, 1).unwrap();
    assert_eq!(eval, plain.loss(x.view(), &y, None).unwrap());
    let a = m.loss(x.view(), &y, Some(7)).unwrap();
    assert_eq!(a, m.loss(x.view(), &y, Some(7)).unwrap());
    assert_ne!(a, m.loss(x.view(), &y, Some(8)).unwrap());
    assert_ne!(a, eval);
}

/// Streaming one frame at a time gives the logits of the whole-clip forward pass, for
/// both wirings and both poolings; the memory report follows its closed form.
#[test]
fn streaming_matches_batch_forward() {
    for (pooling, gain, norm) in [
        (Pooling::Last, 1.0, false),
        (Pooling::Mean, 1.0, false),
        (Pooling::Last, 1.7, false),
        (Pooling::Mean, 1.3, true),
    ] {
        let cfg = LstmConfig::new(7, 5)
            .with_pooling(pooling)
            .with_recurrent_gain(gain)
            .with_gate_norm(norm);
        let models = [
            Lstm::<f64>::dense(&cfg, 4, 3).unwrap(),
            Lstm::<f64>::dense_fused(&cfg, 4, 13, PadPosition::AfterInput, 3).unwrap(),
        ];
        for m in models {
            let x = clip::<f64>(3, 6, 7, 4);
            let mut st = m.zero_state(3);
            assert!(m.state_logits(&st).is_err());
            for t in 0..6 {
                m.step(&mut st, x.slice(s![.., t, ..])).unwrap();
            }
            let d = &m.state_logits(&st).unwrap() - &m.logits(x.view()).unwrap();
            common::assert_within(d.iter().fold(0.0, |a, v| a.max(v.abs())), 1e-13, "stream");
            let r = m.memory_report(2, 6);
            let mean = usize::from(pooling == Pooling::Mean);
            assert_eq!(r.params, m.n_params() * 8);
            assert_eq!(r.stream_state, (2 + mean) * 5 * 8);
            let map_in = if m.wiring() == Wiring::Separate {
                7
            } else {
                13
            };
            assert_eq!(r.stream_step, (map_in + 20 + 4) * 8);
            let per_step =
                30 + if m.wiring() == Wiring::Separate {
                    12
                } else {
                    13
                } + if norm { 24 } else { 0 };
            assert_eq!(r.training_activations, 2 * 6 * per_step * 8);
        }
    }
    let m = Lstm::<f64>::dense(&LstmConfig::new(3, 2), 2, 0).unwrap();
    let mut st = m.zero_state(1);
    assert!(matches!(
        m.step(&mut st, Array2::zeros((1, 4)).view()),
        Err(Error::ShapeMismatch { .. })
    ));
}

/// Parameter counts: the dense LSTM at UCF11 sizes in closed form (nothing allocated),
/// and a small dense model's counts per part equal the same closed form.
#[test]
fn parameter_accounting_closed_form() {
    let ucf = ParamCount::dense_lstm(57_600, 256, 0);
    assert_eq!(ucf.input_map, 58_982_400);
    assert_eq!(ucf.recurrent_map, 262_144);
    assert_eq!(ucf.weights(), 59_244_544);
    assert_eq!(ucf.bias, 1_024);
    assert_eq!(
        ParamCount::dense_lstm(57_600, 256, 11).classifier,
        11 * 256 + 11
    );
    for (n, h, c) in [(3, 2, 2), (10, 7, 5)] {
        let m = Lstm::<f32>::dense(&LstmConfig::new(n, h), c, 0).unwrap();
        assert_eq!(m.param_count(), ParamCount::dense_lstm(n, h, c));
        assert_eq!(m.n_params(), ParamCount::dense_lstm(n, h, c).total());
        let f = Lstm::<f32>::dense_fused(&LstmConfig::new(n, h), c, n + h + 3, PadPosition::End, 0)
            .unwrap();
        assert_eq!(f.param_count().fused_map, 4 * h * (n + h + 3));
        assert!(f.compression_ratio().with_classifier < 1.0);
    }
}

/// The forget-gate bias starts at the configured value and the other gates at zero.
#[test]
fn forget_bias_initialisation() {
    let m = Lstm::<f64>::dense(&LstmConfig::new(3, 4).with_forget_bias(1.0), 2, 0).unwrap();
    let b = m.bias();
    assert!(b.slice(s![0..4]).iter().all(|&v| v == 1.0));
    assert!(b.slice(s![4..16]).iter().all(|&v| v == 0.0));
}

/// Saved models load back bit for bit; loading into another architecture, a damaged
/// file, or a file of another dtype fails with a clear error.
#[test]
fn model_save_load_and_mismatches() {
    let dir = std::env::temp_dir().join(format!("tnet_lstm_tests_{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("m.bin");
    let cfg = LstmConfig::new(5, 4);
    let a = Lstm::<f32>::dense_fused(&cfg, 3, 10, PadPosition::End, 1).unwrap();
    a.save(&path).unwrap();
    let mut b = Lstm::<f32>::dense_fused(&cfg, 3, 10, PadPosition::End, 2).unwrap();
    assert_ne!(a.params(), b.params());
    b.load_params(&path).unwrap();
    assert_eq!(a.params(), b.params());

    let mut other =
        Lstm::<f32>::dense_fused(&LstmConfig::new(5, 3), 3, 10, PadPosition::End, 1).unwrap();
    let msg = other.load_params(&path).unwrap_err().to_string();
    assert!(
        msg.contains("hidden size H is 4 in the file but 3"),
        "{msg}"
    );
    let mut gained = Lstm::<f32>::dense_fused(
        &cfg.clone().with_recurrent_gain(2.0),
        3,
        10,
        PadPosition::End,
        1,
    )
    .unwrap();
    let msg = gained.load_params(&path).unwrap_err().to_string();
    assert!(msg.contains("recurrent gain"), "{msg}");
    let mut normed = Lstm::<f32>::dense_fused(
        &cfg.clone().with_gate_norm(true),
        3,
        10,
        PadPosition::End,
        1,
    )
    .unwrap();
    let msg = normed.load_params(&path).unwrap_err().to_string();
    assert!(msg.contains("gate normalisation"), "{msg}");
    let mut sep = Lstm::<f32>::dense(&cfg, 3, 1).unwrap();
    let msg = sep.load_params(&path).unwrap_err().to_string();
    assert!(msg.contains("wiring"), "{msg}");
    let mut wide = Lstm::<f64>::dense_fused(&cfg, 3, 10, PadPosition::End, 1).unwrap();
    assert!(matches!(
        wide.load_params(&path),
        Err(Error::Corrupt { .. })
    ));

    let mut bytes = std::fs::read(&path).unwrap();
    let mid = bytes.len() - 20;
    bytes[mid] ^= 1;
    std::fs::write(&path, &bytes).unwrap();
    let e = b.load_params(&path).unwrap_err();
    assert!(e.to_string().contains("checksum"), "{e}");
    std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
    assert!(matches!(b.load_params(&path), Err(Error::Corrupt { .. })));
    assert!(matches!(
        b.load_params(dir.join("missing.bin")),
        Err(Error::Io { .. })
    ));
}

/// Bad configurations and inputs give clear, structured errors.
#[test]
fn bad_configurations_are_rejected() {
    let e = Lstm::<f64>::dense(&LstmConfig::new(5, 0), 2, 0).unwrap_err();
    assert!(
        matches!(e, Error::InvalidParameter { name: "hidden", .. }),
        "{e}"
    );
    assert!(Lstm::<f64>::dense(&LstmConfig::new(0, 3), 2, 0).is_err());
    assert!(Lstm::<f64>::dense(&LstmConfig::new(5, 3).with_dropout(1.0, 0.0), 2, 0).is_err());
    assert!(Lstm::<f64>::dense(&LstmConfig::new(5, 3), 1, 0).is_err());
    for g in [0.0, -1.0, f64::NAN, f64::INFINITY] {
        let cfg = LstmConfig::new(5, 3).with_recurrent_gain(g);
        let e = Lstm::<f64>::dense_fused(&cfg, 2, 8, PadPosition::End, 0).unwrap_err();
        assert!(
            matches!(
                e,
                Error::InvalidParameter {
                    name: "recurrent_gain",
                    ..
                }
            ),
            "{e}"
        );
    }

    let cfg = LstmConfig::new(5, 3);
    let head = || Classifier::<f64>::dense(3, 2, 0).unwrap();
    let map = |m, n| -> Box<dyn LinearMap<f64>> { Box::new(DenseMatrix::glorot(m, n, 0).unwrap()) };
    let e = Lstm::separate(&cfg, map(12, 6), map(12, 3), head()).unwrap_err();
    assert!(
        matches!(&e, Error::ShapeMismatch { expected, got, .. } if *expected == vec![12, 5] && *got == vec![12, 6]),
        "{e}"
    );
    assert!(Lstm::separate(&cfg, map(12, 5), map(12, 4), head()).is_err());
    assert!(Lstm::separate(&cfg, map(11, 5), map(12, 3), head()).is_err());
    assert!(
        Lstm::separate(
            &cfg,
            map(12, 5),
            map(12, 3),
            Classifier::dense(4, 2, 0).unwrap()
        )
        .is_err()
    );
    let e = Lstm::fused(&cfg, map(12, 7), PadPosition::End, head()).unwrap_err();
    assert!(e.to_string().contains("P >= N + H"), "{e}");
    assert!(Lstm::<f64>::dense_fused(&cfg, 2, 7, PadPosition::End, 0).is_err());

    let m = Lstm::<f64>::dense(&cfg, 2, 0).unwrap();
    let x = clip::<f64>(2, 3, 5, 0);
    assert!(matches!(
        m.loss_and_grad(clip::<f64>(2, 3, 4, 0).view(), &[0, 1], None),
        Err(Error::ShapeMismatch { .. })
    ));
    assert!(matches!(
        m.loss_and_grad(x.view(), &[0], None),
        Err(Error::ShapeMismatch { .. })
    ));
    assert!(matches!(
        m.loss_and_grad(x.view(), &[0, 2], None),
        Err(Error::InvalidParameter { name: "labels", .. })
    ));
    assert!(matches!(
        m.logits(Array3::<f64>::zeros((0, 3, 5)).view()),
        Err(Error::Empty { .. })
    ));
    let mut bad = x.clone();
    bad[[1, 2, 3]] = f64::NAN;
    assert!(matches!(m.logits(bad.view()), Err(Error::NonFinite { .. })));
    assert!(DenseMatrix::<f64>::try_new(Array2::zeros((0, 3))).is_err());
    assert!(matches!(
        DenseMatrix::<f64>::glorot(3, 2, 0)
            .unwrap()
            .apply(Array2::zeros((1, 3)).view()),
        Err(Error::ShapeMismatch { .. })
    ));
}

fn linear_params_only<T: Scalar>() {
    use tnet::matrices::{Init, MatrixFormat, MatrixShape, Padded};
    use tnet::{HtMatrix, TtMatrix};
    let shape = MatrixShape::try_new(vec![4, 2, 2], vec![4, 5, 3]).unwrap();
    let tree = tnet::DimTree::balanced(3).unwrap();
    let maps: Vec<Box<dyn LinearMap<T>>> = vec![
        Box::new(DenseMatrix::<T>::glorot(16, 60, 1).unwrap()),
        Box::new(TtMatrix::<T>::random(&shape, &(), 3, Init::Glorot, 2).unwrap()),
        Box::new(
            Padded::new(
                HtMatrix::<T>::random(&shape, &tree, 3, Init::Glorot, 3).unwrap(),
                53,
            )
            .unwrap(),
        ),
    ];
    for map in &maps {
        for batch in [1, 17, 40] {
            let x: Array2<T> = tnet::dense::random_normal::<T>(&[batch, map.n_in()], 4)
                .into_dimensionality()
                .unwrap();
            let dy: Array2<T> = tnet::dense::random_normal::<T>(&[batch, map.n_out()], 5)
                .into_dimensionality()
                .unwrap();
            let (_, full) = map.backward(x.view(), dy.view()).unwrap();
            let params = map.backward_params(x.view(), dy.view()).unwrap();
            assert_eq!(params, full, "{} {} batch {batch}", map.describe(), T::NAME);
        }
        let bad: Array2<T> = Array2::zeros((2, map.n_in() + 1));
        let dy: Array2<T> = Array2::zeros((2, map.n_out()));
        assert!(map.backward_params(bad.view(), dy.view()).is_err());
    }
}

/// `LinearMap::backward_params` returns exactly (bitwise) the parameter gradients of
/// `backward` for the dense map and tensorized maps with and without padding, in f64 and
/// f32, and rejects a wrongly shaped input.
#[test]
fn linear_params_only_backward_equals_full_backward() {
    linear_params_only::<f64>();
    linear_params_only::<f32>();
}

/// The recurrent gain `γ`: the fused model computes `z_t = [x_t ; γ h_{t-1} ; 0]` (checked
/// against the recurrence written out by hand), and configurations saved before the field
/// existed read back with gain 1, the gain they were trained with.
#[test]
fn recurrent_gain_scales_the_recurrent_input_and_legacy_configs_read_back() {
    let (n, h, p) = (9, 4, 16);
    let cfg = LstmConfig::new(n, h).with_recurrent_gain(1.5);
    let fused = Lstm::<f64>::dense_fused(&cfg, 3, p, PadPosition::End, 5).unwrap();
    assert_eq!(fused.recurrent_gain(), 1.5);

    // Two steps by hand: a_t = W [x_t ; γ h_{t-1} ; 0] + b.
    let x = clip::<f64>(2, 2, n, 6);
    let w = fused.fused_map().unwrap().column_block(0, p).unwrap();
    let mut hs = Array2::<f64>::zeros((2, h));
    let mut cs = Array2::<f64>::zeros((2, h));
    let sig = |v: f64| 1.0 / (1.0 + (-v).exp());
    for t in 0..2 {
        let mut z = Array2::<f64>::zeros((2, p));
        z.slice_mut(s![.., 0..n]).assign(&x.slice(s![.., t, ..]));
        z.slice_mut(s![.., n..n + h]).assign(&(&hs * 1.5));
        let a = z.dot(&w.t()) + fused.bias();
        for b in 0..2 {
            for j in 0..h {
                let (f, i, g, o) = (
                    sig(a[[b, j]]),
                    sig(a[[b, h + j]]),
                    a[[b, 2 * h + j]].tanh(),
                    sig(a[[b, 3 * h + j]]),
                );
                cs[[b, j]] = f * cs[[b, j]] + i * g;
                hs[[b, j]] = o * cs[[b, j]].tanh();
            }
        }
    }
    let mut st = fused.zero_state(2);
    for t in 0..2 {
        fused.step(&mut st, x.slice(s![.., t, ..])).unwrap();
    }
    let d = (&st.h - &hs).iter().fold(0.0_f64, |m, v| m.max(v.abs()));
    common::assert_within(d, 1e-13, "h_T against the hand-written recurrence");
    // And the gain matters: the same weights with gain 1 compute something else.
    let mut plain =
        Lstm::<f64>::dense_fused(&LstmConfig::new(n, h), 3, p, PadPosition::End, 5).unwrap();
    for (mut q, v) in plain.params_mut().into_iter().zip(fused.params()) {
        q.assign(&v);
    }
    let x3 = clip::<f64>(2, 3, n, 7);
    let d = (&plain.logits(x3.view()).unwrap() - &fused.logits(x3.view()).unwrap())
        .iter()
        .fold(0.0_f64, |m, v| m.max(v.abs()));
    assert!(d > 1e-6, "gain 1.5 and gain 1 gave the same logits");

    let json = serde_json::to_value(&cfg).unwrap();
    assert_eq!(json["recurrent_gain"], 1.5);
    let mut legacy = json.clone();
    legacy.as_object_mut().unwrap().remove("recurrent_gain");
    let old: LstmConfig = serde_json::from_value(legacy).unwrap();
    assert_eq!(old.recurrent_gain, 1.0);
    let back: LstmConfig = serde_json::from_value(json).unwrap();
    assert_eq!(back, cfg);
}
