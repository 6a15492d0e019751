//! The model zoo: every kind of the FDHT-LSTM comparison builds, trains, round-trips
//! through files, has exact gradients and the published parameter counts.

use ndarray::{Array3, Ix3};
use tnet::data::Split;
use tnet::matrices::Init;
use tnet::models::zoo::{self, HtLayout, ModelKind, ModelSpec};
use tnet::models::{Lstm, LstmConfig, ParamCount, Wiring};
use tnet::train::{InMemoryDataset, OptimizerConfig, TrainConfig, fit};
use tnet::{Error, Scalar, Truncation};

fn clip<T: Scalar>(b: usize, t: usize, n: usize, seed: u64) -> Array3<T> {
    tnet::dense::random_normal::<T>(&[b, t, n], seed)
        .into_dimensionality::<Ix3>()
        .unwrap()
}

/// Largest |analytic - central difference| over every parameter entry, relative to
/// max(1, |analytic|).
fn grad_check_error(model: &Lstm<f64>, x: &Array3<f64>, labels: &[usize]) -> f64 {
    let out = model.loss_and_grad(x.view(), labels, None).unwrap();
    let eps = 1e-6;
    let mut m = model.clone();
    let mut worst: f64 = 0.0;
    for (k, g) in out.grads.tensors.iter().enumerate() {
        for (idx, &an) in g.iter().enumerate() {
            let orig = m.params()[k].iter().nth(idx).copied().unwrap();
            let set = |m: &mut Lstm<f64>, v: f64| {
                *m.params_mut()[k].iter_mut().nth(idx).unwrap() = v;
            };
            set(&mut m, orig + eps);
            let lp = m.loss(x.view(), labels, None).unwrap();
            set(&mut m, orig - eps);
            let lm = m.loss(x.view(), labels, None).unwrap();
            set(&mut m, orig);
            let fd = (lp - lm) / (2.0 * eps);
            worst = worst.max((an - fd).abs() / an.abs().max(1.0));
        }
    }
    worst
}

/// N = 7 (prime: padded to 8 separate, N + H = 11 padded to 12 fused), H = 4.
fn tiny_config() -> LstmConfig {
    LstmConfig::new(7, 4)
}

fn max_abs_diff<T: Scalar>(a: &ndarray::Array2<T>, b: &ndarray::Array2<T>) -> f64 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (x.as_f64() - y.as_f64()).abs())
        .fold(0.0, f64::max)
}

/// For every kind (the HT kinds in each [`HtLayout`]) and orders 2 and 3,
/// backpropagation through time over 3 steps matches central finite differences for every
/// parameter (padded input lengths included).
#[test]
fn gradients_match_finite_differences_every_kind() {
    let config = tiny_config();
    let x = clip::<f64>(2, 3, 7, 11);
    let labels = [0, 2];
    let all_layouts = [HtLayout::Paired, HtLayout::Split, HtLayout::Kronecker];
    for order in [2, 3] {
        for kind in ModelKind::ALL {
            let layouts = if kind == ModelKind::HT || kind == ModelKind::FDHT {
                &all_layouts[..]
            } else {
                &all_layouts[1..2]
            };
            for &layout in layouts {
                let spec = ModelSpec::new(kind, 2)
                    .with_order(order)
                    .with_ht_layout(layout);
                let model = zoo::build::<f64>(&spec, &config, 3, 5).unwrap();
                let err = grad_check_error(&model, &x, &labels);
                assert!(
                    err < 1e-6,
                    "{kind} ({layout}) order {order}: gradient error {err}"
                );
            }
        }
    }
}

/// Every kind fits a tiny separable dataset to 100% training accuracy (f32 and f64).
#[test]
fn every_kind_overfits_a_tiny_dataset() {
    fn run<T: Scalar>() {
        let (n, h, clips) = (12, 8, 8);
        let config = LstmConfig::new(n, h);
        let data = InMemoryDataset::<T>::synthetic(clips, 2, 3, n, 0.1, 3).unwrap();
        for kind in ModelKind::ALL {
            let spec = ModelSpec::new(kind, 3).with_order(2);
            let mut model = zoo::build::<T>(&spec, &config, 2, 1).unwrap();
            let cfg = TrainConfig::new(60, 4, 0)
                .with_optimizer(OptimizerConfig::adam(0.03))
                .with_progress(false);
            fit(&mut model, &data, &Split::all(clips), &cfg).unwrap();
            let report =
                tnet::train::evaluate(&model, &data, &(0..clips).collect::<Vec<_>>(), 4).unwrap();
            assert_eq!(report.accuracy, 1.0, "{kind} ({}): {report:?}", T::NAME);
        }
    }
    run::<f32>();
    run::<f64>();
}

/// A saved model loads into a freshly built model of the same spec (bitwise equal
/// parameters and logits); a file of another kind, rank or order is refused with an
/// error naming the architecture.
#[test]
fn save_load_round_trip_and_mismatches() {
    fn run<T: Scalar>() {
        let dir = tempfile::tempdir().unwrap();
        let config = tiny_config();
        let x = clip::<T>(2, 3, 7, 4);
        for kind in ModelKind::ALL {
            let spec = ModelSpec::new(kind, 2).with_order(2);
            let a = zoo::build::<T>(&spec, &config, 3, 1).unwrap();
            let path = dir.path().join(format!("{kind}.bin"));
            a.save(&path).unwrap();
            let mut b = zoo::build::<T>(&spec, &config, 3, 2).unwrap();
            b.load_params(&path).unwrap();
            assert_eq!(a.params(), b.params(), "{kind}");
            assert_eq!(a.logits(x.view()).unwrap(), b.logits(x.view()).unwrap());
            for other in ModelKind::ALL.into_iter().filter(|&o| o != kind) {
                let mut c = zoo::build::<T>(&ModelSpec::new(other, 2).with_order(2), &config, 3, 2)
                    .unwrap();
                let e = c.load_params(&path).unwrap_err();
                assert!(
                    matches!(e, Error::InvalidParameter { .. }),
                    "{kind} into {other}: {e}"
                );
            }
            if kind != ModelKind::DENSE {
                for wrong in [
                    ModelSpec::new(kind, 3).with_order(2),
                    ModelSpec::new(kind, 2).with_order(3),
                ] {
                    let mut c = zoo::build::<T>(&wrong, &config, 3, 2).unwrap();
                    let e = c.load_params(&path).unwrap_err();
                    assert!(
                        e.to_string().contains("different model"),
                        "{kind} {wrong:?}: {e}"
                    );
                }
            }
        }
    }
    run::<f32>();
    run::<f64>();
}

fn ucf11() -> LstmConfig {
    LstmConfig::new(57_600, 256)
}

/// The published input-layer sizes at UCF11 (input modes 8x20x20x18, output 16x4x4x4,
/// rank 4): TT-LSTM 3,360, BT-LSTM (2 blocks) 3,392, TR-LSTM and HT-LSTM by their closed
/// forms; the separate kinds keep the dense recurrent map and the dense LSTM is the
/// closed form of the accounting module.
#[test]
fn parameter_counts_at_ucf11_sizes() {
    let (out, inp) = (vec![16, 4, 4, 4], vec![8, 20, 20, 18]);
    let pairs: usize = out.iter().zip(&inp).map(|(m, n)| m * n).sum();
    let expect = [
        (ModelKind::TT, 3_360),
        (ModelKind::BT, 3_392),
        // split ring, all ranks 4: r^2 (Σ n_k + Σ m_k)
        (ModelKind::TR, 16 * (66 + 28)),
        // balanced tree: r Σ n_k m_k + 2 r^3 + r^2
        (ModelKind::HT, 4 * pairs + 2 * 64 + 16),
    ];
    for (kind, n_params) in expect {
        let spec = ModelSpec::new(kind, 4)
            .with_modes(out.clone(), inp.clone())
            .with_ht_layout(HtLayout::Paired);
        let model = zoo::build::<f32>(&spec, &ucf11(), 11, 0).unwrap();
        let p = model.param_count();
        assert_eq!(p.input_map, n_params, "{kind}");
        assert_eq!(p.recurrent_map, 4 * 256 * 256, "{kind}");
        assert_eq!(p.bias, 1_024);
    }
    let dense = ParamCount::dense_lstm(57_600, 256, 0);
    assert_eq!((dense.weights(), dense.bias), (59_244_544, 1_024));
}

/// FDHT at UCF11 sizes: with the input [x ; h] (57,856) padded to 58,080 = 22x20x12x11
/// and rank 6, the one HT map has r Σ n_k m_k + 2 r^3 + r^2 = 3,612 parameters (in the
/// paper's 3,132-8,808 range), over 16,000x fewer weights than the dense LSTM; the other
/// fused kinds match their closed forms; the automatic factorization pads to modes at
/// most 31.
#[test]
fn fused_parameter_counts_at_ucf11_sizes() {
    let (out, inp) = (vec![16, 4, 4, 4], vec![22, 20, 12, 11]);
    let pairs: usize = out.iter().zip(&inp).map(|(m, n)| m * n).sum();
    let r = 6;
    let spec = ModelSpec::new(ModelKind::FDHT, r)
        .with_modes(out.clone(), inp.clone())
        .with_ht_layout(HtLayout::Paired);
    let fdht = zoo::build::<f32>(&spec, &ucf11(), 11, 0).unwrap();
    let p = fdht.param_count();
    assert_eq!(p.fused_map, r * pairs + 2 * r * r * r + r * r);
    assert_eq!(p.fused_map, 3_612);
    // The split layout (the default): input leaves (n_k, 1, 6); output leaves (1, m_k, r_k)
    // with r_k = min(6, m_k) (6 for m = 16, 4 for m = 4); transfers of the input
    // subtree (6, 6, 6) x 3; of the output subtree (6, 4, 6), (4, 4, 6), (6, 6, 6); root
    // (6, 6, 1).
    let split = zoo::build::<f32>(
        &ModelSpec::new(ModelKind::FDHT, r).with_modes(out.clone(), inp.clone()),
        &ucf11(),
        11,
        0,
    )
    .unwrap();
    let leaves = r * inp.iter().sum::<usize>() + 16 * 6 + 3 * 4 * 4;
    let transfers = 3 * 216 + 6 * 4 * 6 + 4 * 4 * 6 + 216 + 36;
    assert_eq!(split.param_count().fused_map, leaves + transfers);
    assert_eq!(split.param_count().fused_map, 1_674);
    assert_eq!((p.input_map, p.recurrent_map, p.bias), (0, 0, 1_024));
    assert_eq!(
        fdht.wiring(),
        Wiring::Fused {
            padded_len: 58_080,
            pad: tnet::models::PadPosition::End
        }
    );
    let dense = ParamCount::dense_lstm(57_600, 256, 0).weights();
    assert!(dense / p.fused_map > 16_000);

    let r = 4;
    let tt: usize = (0..4)
        .map(|k| {
            let (a, b) = (if k == 0 { 1 } else { r }, if k == 3 { 1 } else { r });
            a * out[k] * inp[k] * b
        })
        .sum();
    let tr = r * r * (inp.iter().sum::<usize>() + out.iter().sum::<usize>());
    let bt = 2 * (r * pairs + r.pow(4));
    for (kind, n_params) in [
        (ModelKind::FD_TT, tt),
        (ModelKind::FD_TR, tr),
        (ModelKind::FD_BT, bt),
    ] {
        let spec = ModelSpec::new(kind, r).with_modes(out.clone(), inp.clone());
        let model = zoo::build::<f32>(&spec, &ucf11(), 11, 0).unwrap();
        assert_eq!(model.param_count().fused_map, n_params, "{kind}");
    }

    let auto = ModelSpec::new(ModelKind::FDHT, 6)
        .shape(&ucf11())
        .unwrap()
        .unwrap();
    assert!(auto.n_in() >= 57_856 && auto.in_modes().iter().all(|&n| n <= 31));
    assert_eq!(auto.out_modes(), &[16, 4, 4, 4]);
}

/// Compressing a dense LSTM at relative tolerance 1e-12 with ranks that do not cap
/// reproduces its logits (every kind, f64): the decompositions are exact, biases and head
/// are copied, and the padding columns are zero.
#[test]
fn compress_dense_at_full_rank_reproduces_the_logits() {
    let config = tiny_config();
    let mut dense = Lstm::<f64>::dense(&config, 3, 2).unwrap();
    // A non-default gate bias, to see that it is carried over.
    let specs = dense.param_specs();
    for (s, mut p) in specs.iter().zip(dense.params_mut()) {
        if s.part == tnet::models::Part::Bias {
            p.iter_mut()
                .enumerate()
                .for_each(|(i, v)| *v = 0.1 * i as f64);
        }
    }
    let x = clip::<f64>(3, 3, 7, 8);
    let reference = dense.logits(x.view()).unwrap();
    for kind in ModelKind::ALL {
        for order in [2, 3] {
            let spec = ModelSpec::new(kind, 1_000).with_order(order).with_blocks(1);
            let model = zoo::compress_dense(&dense, &spec, &Truncation::rel(1e-12)).unwrap();
            assert_eq!(model.bias(), dense.bias());
            let d = max_abs_diff(&model.logits(x.view()).unwrap(), &reference);
            assert!(d < 1e-8, "{kind} order {order}: logits differ by {d}");
        }
    }
}

/// Compression at a low rank gives a smaller model of the requested format; a model that
/// is not dense is refused.
#[test]
fn compress_dense_low_rank_and_refusals() {
    let config = LstmConfig::new(12, 4);
    let dense = Lstm::<f64>::dense(&config, 3, 0).unwrap();
    let spec = ModelSpec::new(ModelKind::FDHT, 2).with_order(2);
    let small = zoo::compress_dense(&dense, &spec, &Truncation::rel(1e-12)).unwrap();
    assert!(small.fused_map().unwrap().describe().starts_with("ht "));
    assert!(small.param_count().weights() < dense.param_count().weights());
    let tt = zoo::build::<f64>(&ModelSpec::new(ModelKind::TT, 2), &config, 3, 0).unwrap();
    assert!(matches!(
        zoo::compress_dense(&tt, &spec, &Truncation::rel(1e-3)),
        Err(Error::InvalidParameter { .. })
    ));
}

/// Names: Display, FromStr and serde agree on every kind; unknown names are errors.
#[test]
fn kind_names_round_trip() {
    let names = [
        "dense", "tt", "tr", "bt", "ht", "fdht", "fd-tt", "fd-tr", "fd-bt",
    ];
    for (kind, name) in ModelKind::ALL.into_iter().zip(names) {
        assert_eq!(kind.to_string(), name);
        assert_eq!(name.parse::<ModelKind>().unwrap(), kind);
        assert_eq!(
            name.to_uppercase().parse::<ModelKind>().unwrap(),
            kind,
            "case-insensitive"
        );
        let json = serde_json::to_string(&kind).unwrap();
        assert_eq!(json, format!("\"{name}\""));
        assert_eq!(serde_json::from_str::<ModelKind>(&json).unwrap(), kind);
        assert_eq!(kind.is_fused(), name.starts_with("fd"));
    }
    assert!(matches!(
        "fdtt".parse::<ModelKind>(),
        Err(Error::InvalidParameter { .. })
    ));
    let spec = ModelSpec::new(ModelKind::FD_BT, 3)
        .with_blocks(3)
        .with_init(Init::He);
    let json = serde_json::to_string(&spec).unwrap();
    assert_eq!(serde_json::from_str::<ModelSpec>(&json).unwrap(), spec);
}

/// Bad specs and sizes are errors, not panics.
#[test]
fn bad_specs_are_rejected() {
    // More modes than any length can use are refused (the factorization search recursed
    // once per mode and overflowed the stack at a million).
    for order in [65, 1_000_000] {
        let e = zoo::build::<f32>(
            &ModelSpec::new(ModelKind::FDHT, 2).with_order(order),
            &LstmConfig::new(30, 4),
            2,
            0,
        )
        .unwrap_err();
        assert!(e.to_string().contains("between 1 and 64"), "{e}");
        assert!(tnet::matrices::factorizations(64, order, usize::MAX).is_err());
    }
    let config = tiny_config();
    for kind in ModelKind::ALL {
        for spec in [
            ModelSpec::new(kind, 0),
            ModelSpec::new(kind, 2).with_order(0),
            ModelSpec::new(kind, 2).with_blocks(0),
            ModelSpec::new(kind, 2).with_init(Init::Variance(-1.0)),
        ] {
            assert!(
                matches!(
                    zoo::build::<f64>(&spec, &config, 3, 0),
                    Err(Error::InvalidParameter { .. })
                ),
                "{spec:?}"
            );
        }
        assert!(zoo::build::<f64>(&ModelSpec::new(kind, 2), &config, 1, 0).is_err());
        assert!(zoo::build::<f64>(&ModelSpec::new(kind, 2), &LstmConfig::new(7, 0), 3, 0).is_err());
    }
    for kind in ModelKind::ALL
        .into_iter()
        .filter(|&k| k != ModelKind::DENSE)
    {
        // Output modes not multiplying to 4H, input modes too short, a zero mode.
        for (o, i) in [
            (vec![4, 2], vec![4, 4]),
            (vec![8, 2], vec![2, 2]),
            (vec![16, 0], vec![4, 4]),
        ] {
            let spec = ModelSpec::new(kind, 2).with_modes(o, i);
            assert!(zoo::build::<f64>(&spec, &config, 3, 0).is_err(), "{spec:?}");
        }
        let mut spec = ModelSpec::new(kind, 2).with_modes(vec![8, 2], vec![4, 4]);
        spec.order = 3;
        assert!(zoo::build::<f64>(&spec, &config, 3, 0).is_err());
    }
}
