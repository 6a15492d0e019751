//! Training: optimisers, the loop, overfitting, early stopping, checkpoints and resumption.

mod common;

use std::path::PathBuf;

use ndarray::{ArrayD, IxDyn};
use proptest::prelude::*;
use tnet::Error;
use tnet::data::{Split, split};
use tnet::models::{Gradients, Lstm, LstmConfig, PadPosition, ParamSpec, Part};
use tnet::train::{
    Checkpoint, EarlyStopping, InMemoryDataset, LrSchedule, Monitor, Optimizer, OptimizerConfig,
    OptimizerKind, PlateauDecay, TrainConfig, evaluate, fit, history_path,
};

fn tmp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("tnet_train_tests_{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join(name);
    let _ = std::fs::remove_file(&p);
    p
}

fn all(n: usize) -> Vec<usize> {
    (0..n).collect()
}

/// Both wirings fit a tiny synthetic dataset to 100% training accuracy (f64).
#[test]
fn overfits_tiny_dataset_both_wirings() {
    let data = InMemoryDataset::<f64>::synthetic(12, 3, 5, 8, 0.5, 1).unwrap();
    let cfg = LstmConfig::new(8, 8);
    let models = [
        Lstm::<f64>::dense(&cfg, 3, 2).unwrap(),
        Lstm::<f64>::dense_fused(&cfg, 3, 18, PadPosition::AfterInput, 5).unwrap(),
    ];
    for mut model in models {
        let before = evaluate(&model, &data, &all(12), 5).unwrap();
        let tc = TrainConfig::new(40, 4, 3)
            .with_optimizer(OptimizerConfig::adam(0.02))
            .with_progress(false);
        let report = fit(&mut model, &data, &Split::all(12), &tc).unwrap();
        let after = evaluate(&model, &data, &all(12), 5).unwrap();
        assert_eq!(
            after.accuracy,
            1.0,
            "{:?}: {:?}",
            model.wiring(),
            report.history.last()
        );
        assert!(after.loss < before.loss / 10.0);
        assert_eq!(report.steps, 120);
    }
}

/// f32 training works: both wirings reach 100% training accuracy in single precision,
/// with dropout, SGD with Nesterov momentum, clipping and a cosine schedule.
#[test]
fn f32_training_overfits() {
    let data = InMemoryDataset::<f32>::synthetic(12, 3, 5, 8, 0.5, 7).unwrap();
    let cfg = LstmConfig::new(8, 10).with_dropout(0.1, 0.1);
    let models = [
        Lstm::<f32>::dense(&cfg, 3, 2).unwrap(),
        Lstm::<f32>::dense_fused(&cfg, 3, 20, PadPosition::End, 2).unwrap(),
    ];
    for mut model in models {
        let opt = OptimizerConfig {
            kind: OptimizerKind::Sgd {
                momentum: 0.9,
                nesterov: true,
            },
            ..OptimizerConfig::sgd(0.1, 0.9)
        }
        .with_clip_norm(5.0)
        .with_schedule(LrSchedule::Cosine { min_factor: 0.1 });
        let tc = TrainConfig::new(80, 4, 1)
            .with_optimizer(opt)
            .with_progress(false);
        fit(&mut model, &data, &Split::all(12), &tc).unwrap();
        let ev = evaluate(&model, &data, &all(12), 12).unwrap();
        assert_eq!(ev.accuracy, 1.0, "{:?}", model.wiring());
    }
}

fn resume_setup(
    fused: bool,
    opt: OptimizerConfig,
) -> (InMemoryDataset<f64>, Lstm<f64>, Split, TrainConfig) {
    let data = InMemoryDataset::<f64>::synthetic(26, 3, 4, 6, 0.8, 11).unwrap();
    let cfg = LstmConfig::new(6, 5).with_dropout(0.25, 0.25);
    let model = if fused {
        Lstm::<f64>::dense_fused(&cfg, 3, 13, PadPosition::End, 4).unwrap()
    } else {
        Lstm::<f64>::dense(&cfg, 3, 4).unwrap()
    };
    let split = split::holdout(26, 0.25, 5, None).unwrap();
    let tc = TrainConfig::new(5, 4, 9)
        .with_optimizer(opt)
        // Nothing after the first epoch counts as an improvement, so the rate decays at
        // every epoch end until its floor, restoring the first epoch's parameters each
        // time: the decay state must survive the kills too.
        .with_early_stopping(EarlyStopping {
            patience: 100,
            monitor: Monitor::ValLoss,
            min_delta: 1e9,
            restore_best: true,
            decay: Some(PlateauDecay::new(1, 0.5, 0.2)),
        })
        .with_progress(false);
    (data, model, split, tc)
}

fn log_lines_without_time(path: &PathBuf) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| {
            let mut v: serde_json::Value = serde_json::from_str(l).unwrap();
            v.as_object_mut().unwrap().remove("elapsed_s");
            v
        })
        .collect()
}

/// A run killed at arbitrary steps (between checkpoints) and resumed from its last
/// checkpoint, possibly several times, ends with bitwise the same weights, history and
/// metrics log as an uninterrupted run with the same seed (both wirings, Adam and SGD,
/// dropout on, validation split, early-stopping state).
#[test]
fn kill_and_resume_is_bitwise_identical() {
    let opts = [
        OptimizerConfig::adam(0.01)
            .with_weight_decay(1e-3)
            .with_clip_norm(1.0),
        OptimizerConfig::sgd(0.05, 0.9).with_schedule(LrSchedule::Step {
            every: 7,
            gamma: 0.5,
        }),
    ];
    for (k, opt) in opts.into_iter().enumerate() {
        for fused in [false, true] {
            let tag = format!("{k}_{fused}");
            // Uninterrupted reference.
            let (data, mut reference, split, tc) = resume_setup(fused, opt.clone());
            let ref_log = tmp(&format!("ref_{tag}.jsonl"));
            let ref_tc = tc.clone().with_metrics_log(&ref_log);
            let ref_report = fit(&mut reference, &data, &split, &ref_tc).unwrap();
            assert_eq!(ref_report.steps, 25);
            let base = ref_report.history[0].lr;
            let scales: Vec<f64> = ref_report.history.iter().map(|e| e.lr / base).collect();
            let schedule = |e: usize| opt.schedule.factor((5 * e + 4) as u64, 25);
            for (e, want) in [1.0, 1.0, 0.5, 0.25, 0.2].into_iter().enumerate() {
                let got = scales[e] * schedule(0) / schedule(e);
                assert!((got - want).abs() < 1e-12, "{tag}: epoch {e} scale {got}");
            }

            // 19 training clips in batches of 4: 5 steps per epoch. Killed after step 5
            // (before the epoch-end checkpoint: the last one is at step 3) and after step
            // 13 (last checkpoint at 12), each time dropping the model and starting again
            // from a fresh one.
            let ck = tmp(&format!("run_{tag}.ckpt"));
            let log = tmp(&format!("run_{tag}.jsonl"));
            let run_tc = tc.clone().with_checkpoint(&ck, 3).with_metrics_log(&log);
            let mut resumed_from = Vec::new();
            let mut last = None;
            for halt in [Some(5), Some(13), None] {
                let (_, mut model, _, _) = resume_setup(fused, opt.clone());
                let mut c = run_tc.clone();
                c.halt_after_steps = halt;
                let r = fit(&mut model, &data, &split, &c).unwrap();
                assert_eq!(r.halted, halt.is_some());
                resumed_from.push(r.resumed_from_step);
                last = Some((model, r));
            }
            assert_eq!(resumed_from, vec![None, Some(3), Some(12)], "{tag}");
            let (model, report) = last.unwrap();
            let bits = |m: &Lstm<f64>| -> Vec<u64> {
                m.params()
                    .iter()
                    .flat_map(|p| p.iter().map(|v| v.to_bits()).collect::<Vec<_>>())
                    .collect()
            };
            assert_eq!(bits(&model), bits(&reference), "weights differ ({tag})");
            assert_eq!(report.history, ref_report.history, "{tag}");
            assert_eq!(
                log_lines_without_time(&log),
                log_lines_without_time(&ref_log),
                "{tag}"
            );
            assert_eq!(log_lines_without_time(&log).len(), 5);

            // A kill after the log got ahead of the last checkpoint (here: an older
            // checkpoint put back after the run went further) cuts the log back, so no
            // epoch is logged twice.
            let _ = std::fs::remove_file(&ck);
            let mut c = run_tc.clone();
            c.halt_after_steps = Some(13);
            fit(&mut resume_setup(fused, opt.clone()).1, &data, &split, &c).unwrap();
            let old = std::fs::read(&ck).unwrap();
            c.halt_after_steps = Some(22);
            fit(&mut resume_setup(fused, opt.clone()).1, &data, &split, &c).unwrap();
            assert_eq!(log_lines_without_time(&log).len(), 4);
            std::fs::write(&ck, old).unwrap();
            let mut m = resume_setup(fused, opt.clone()).1;
            fit(&mut m, &data, &split, &run_tc).unwrap();
            assert_eq!(bits(&m), bits(&reference));
            assert_eq!(
                log_lines_without_time(&log),
                log_lines_without_time(&ref_log),
                "{tag}"
            );

            // A finished run resumed again does nothing and keeps the weights.
            let (_, mut again, _, _) = resume_setup(fused, opt.clone());
            let r = fit(&mut again, &data, &split, &run_tc).unwrap();
            assert_eq!(r.resumed_from_step, Some(25));
            assert_eq!(bits(&again), bits(&reference));
        }
    }
}

/// With a two-thread pool and sizes large enough for the parallel kernels (cell, GEMM,
/// optimiser), two runs with the same seed give bitwise the same weights, and so does a
/// run killed and resumed.
#[test]
fn parallel_runs_are_deterministic() {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(2)
        .build()
        .unwrap();
    let data = InMemoryDataset::<f32>::synthetic(64, 4, 3, 16, 1.0, 3).unwrap();
    let cfg = LstmConfig::new(16, 512).with_dropout(0.2, 0.2);
    let tc = TrainConfig::new(2, 32, 5)
        .with_optimizer(OptimizerConfig::adam(1e-3))
        .with_progress(false);
    let run = |tc: &TrainConfig| {
        pool.install(|| {
            let mut m = Lstm::<f32>::dense(&cfg, 4, 1).unwrap();
            fit(&mut m, &data, &Split::all(64), tc).unwrap();
            m.params_owned()
        })
    };
    let a = run(&tc);
    let b = run(&tc);
    assert_eq!(a, b);
    let ck = tmp("parallel.ckpt");
    let mut killed = tc.clone().with_checkpoint(&ck, 1);
    killed.halt_after_steps = Some(3);
    run(&killed);
    killed.halt_after_steps = None;
    assert_eq!(run(&killed), a);
}

/// The epoch history lives beside the checkpoint and grows by appending: the checkpoint
/// itself does not grow with the epochs (saving stays linear in the run's length), the
/// history reads back exactly, a torn tail (a kill between the append and the
/// checkpoint's rename) is ignored, and a truncated history is an error.
#[test]
fn checkpoint_history_is_appended_not_rewritten() {
    let data = InMemoryDataset::<f64>::synthetic(8, 2, 3, 4, 0.5, 0).unwrap();
    let split = split::holdout(8, 0.25, 0, None).unwrap();
    let mut sizes = Vec::new();
    let mut last = None;
    for epochs in [1usize, 40] {
        let ck = tmp(&format!("history{epochs}.ckpt"));
        let tc = TrainConfig::new(epochs, 4, 0)
            .with_checkpoint(&ck, 0)
            .with_progress(false);
        let mut m = Lstm::<f64>::dense(&LstmConfig::new(4, 3), 2, 0).unwrap();
        let report = fit(&mut m, &data, &split, &tc).unwrap();
        let loaded = Checkpoint::<f64>::load(&ck).unwrap();
        assert_eq!(loaded.state.history, report.history);
        let text = std::fs::read_to_string(history_path(&ck)).unwrap();
        assert_eq!(text.lines().count(), epochs);
        sizes.push(std::fs::metadata(&ck).unwrap().len());
        last = Some((ck, report.history));
    }
    assert!(sizes[1] < sizes[0] + 64, "checkpoint sizes {sizes:?}");
    let (ck, history) = last.unwrap();
    let hist = history_path(&ck);
    let mut text = std::fs::read(&hist).unwrap();
    let whole = text.len();
    text.extend_from_slice(b"{\"epoch\": 40, \"step");
    std::fs::write(&hist, &text).unwrap();
    assert_eq!(Checkpoint::<f64>::load(&ck).unwrap().state.history, history);
    std::fs::write(&hist, &text[..whole / 2]).unwrap();
    let e = Checkpoint::<f64>::load(&ck).unwrap_err();
    assert!(matches!(e, Error::Corrupt { .. }), "{e}");
}

/// Resuming from a checkpoint of another architecture or another run fails with an error
/// naming the difference; a damaged checkpoint is reported as corrupt.
#[test]
fn mismatched_checkpoints_are_rejected() {
    let data = InMemoryDataset::<f64>::synthetic(8, 2, 3, 4, 0.5, 0).unwrap();
    let ck = tmp("mismatch.ckpt");
    let tc = TrainConfig::new(1, 4, 0)
        .with_checkpoint(&ck, 0)
        .with_progress(false);
    let mut m = Lstm::<f64>::dense(&LstmConfig::new(4, 3), 2, 0).unwrap();
    fit(&mut m, &data, &Split::all(8), &tc).unwrap();

    let mut other = Lstm::<f64>::dense(&LstmConfig::new(4, 5), 2, 0).unwrap();
    let e = fit(&mut other, &data, &Split::all(8), &tc).unwrap_err();
    assert!(
        e.to_string()
            .contains("different model: the hidden size H is 3"),
        "{e}"
    );

    let mut fused =
        Lstm::<f64>::dense_fused(&LstmConfig::new(4, 3), 2, 7, PadPosition::End, 0).unwrap();
    let e = fit(&mut fused, &data, &Split::all(8), &tc).unwrap_err();
    assert!(e.to_string().contains("wiring"), "{e}");

    let mut same = Lstm::<f64>::dense(&LstmConfig::new(4, 3), 2, 0).unwrap();
    let mut reseeded = tc.clone();
    reseeded.seed = 1;
    let e = fit(&mut same, &data, &Split::all(8), &reseeded).unwrap_err();
    assert!(
        e.to_string()
            .contains("the seed is 0 in the checkpoint but 1"),
        "{e}"
    );
    let e = fit(
        &mut same,
        &data,
        &split::holdout(8, 0.25, 0, None).unwrap(),
        &tc,
    )
    .unwrap_err();
    assert!(e.to_string().contains("split"), "{e}");

    let f32ck = Checkpoint::<f32>::load(&ck).unwrap_err();
    assert!(matches!(f32ck, Error::Corrupt { .. }), "{f32ck}");
    let mut bytes = std::fs::read(&ck).unwrap();
    let n = bytes.len();
    bytes[n - 9] ^= 0x40;
    std::fs::write(&ck, &bytes).unwrap();
    let e = fit(&mut same, &data, &Split::all(8), &tc).unwrap_err();
    assert!(matches!(e, Error::Corrupt { .. }), "{e}");
    bytes[8] = 99;
    std::fs::write(&ck, &bytes).unwrap();
    assert!(matches!(
        Checkpoint::<f64>::load(&ck),
        Err(Error::Version { found: 99, .. })
    ));
}

/// The setting of the early-stopping tests: an accuracy no epoch after the first can
/// improve on (`min_delta` 1.5), patience 2, the base configuration (20 epochs at most),
/// and the model trained for the first epoch alone (what restoring the best parameters
/// must give back).
fn stalled_setting() -> (
    InMemoryDataset<f64>,
    Split,
    EarlyStopping,
    TrainConfig,
    Lstm<f64>,
) {
    let data = InMemoryDataset::<f64>::synthetic(16, 2, 3, 4, 0.5, 2).unwrap();
    let split = split::holdout(16, 0.25, 1, None).unwrap();
    let es = EarlyStopping {
        patience: 2,
        monitor: Monitor::ValAccuracy,
        min_delta: 1.5,
        restore_best: true,
        decay: None,
    };
    let base = TrainConfig::new(20, 4, 3)
        .with_optimizer(OptimizerConfig::adam(0.05))
        .with_progress(false);
    let mut first = Lstm::<f64>::dense(&LstmConfig::new(4, 4), 2, 0).unwrap();
    let mut one = base.clone();
    one.epochs = 1;
    fit(&mut first, &data, &split, &one).unwrap();
    (data, split, es, base, first)
}

/// Early stopping that can never see an improvement stops after `patience` epochs past
/// the first and restores the first epoch's parameters.
#[test]
fn early_stopping_stops_and_restores_best() {
    let (data, split, es, base, first) = stalled_setting();
    let mut m = Lstm::<f64>::dense(&LstmConfig::new(4, 4), 2, 0).unwrap();
    let r = fit(&mut m, &data, &split, &base.with_early_stopping(es)).unwrap();
    assert!(r.stopped_early);
    assert_eq!(r.history.len(), 3);
    assert_eq!(r.best_epoch, Some(0));
    assert_eq!(m.params(), first.params());
}

/// A plateau decay lowers the rate by its factor after its patience, returns to the best
/// parameters, stops only at the floor, and is refused when out of range.
#[test]
fn plateau_decay_lowers_the_rate_then_stops() {
    // Decay after one stalled epoch to 0.5, then to the floor 0.25, then two more epochs
    // and stop.
    let (data, split, es, base, first) = stalled_setting();
    let es = es.with_decay(PlateauDecay::new(1, 0.5, 0.25));
    let mut m = Lstm::<f64>::dense(&LstmConfig::new(4, 4), 2, 0).unwrap();
    let r = fit(&mut m, &data, &split, &base.clone().with_early_stopping(es)).unwrap();
    assert!(r.stopped_early);
    let lrs: Vec<f64> = r.history.iter().map(|e| e.lr).collect();
    assert_eq!(lrs, vec![0.05, 0.05, 0.025, 0.0125, 0.0125]);
    assert_eq!(r.best_epoch, Some(0));
    // Every decay and the end went back to the first epoch's parameters.
    assert_eq!(m.params(), first.params());

    for (d, field) in [
        (
            PlateauDecay::new(0, 0.5, 0.1),
            "early_stopping.decay.patience",
        ),
        (
            PlateauDecay::new(2, 1.0, 0.1),
            "early_stopping.decay.factor",
        ),
        (
            PlateauDecay::new(2, f64::NAN, 0.1),
            "early_stopping.decay.factor",
        ),
        (
            PlateauDecay::new(2, 0.5, 0.0),
            "early_stopping.decay.min_factor",
        ),
        (
            PlateauDecay::new(2, 0.5, 1.5),
            "early_stopping.decay.min_factor",
        ),
    ] {
        let c = base.clone().with_early_stopping(es.with_decay(d));
        let e = fit(&mut m, &data, &split, &c).unwrap_err();
        assert!(
            matches!(&e, Error::InvalidParameter { name, .. } if *name == field),
            "{d:?}: {e}"
        );
    }
}

/// The metrics log has one JSON line per epoch with loss, accuracy and a confusion
/// matrix over the validation clips.
#[test]
fn metrics_log_and_evaluation() {
    let data = InMemoryDataset::<f64>::synthetic(20, 4, 3, 5, 0.3, 3).unwrap();
    let split = split::holdout(20, 0.3, 2, None).unwrap();
    let log = tmp("metrics.jsonl");
    let tc = TrainConfig::new(3, 5, 0)
        .with_metrics_log(&log)
        .with_progress(false);
    let mut m = Lstm::<f64>::dense(&LstmConfig::new(5, 6), 4, 0).unwrap();
    let r = fit(&mut m, &data, &split, &tc).unwrap();
    let lines = log_lines_without_time(&log);
    assert_eq!(lines.len(), 3);
    for (k, l) in lines.iter().enumerate() {
        assert_eq!(l["kind"], "epoch");
        assert_eq!(l["epoch"], k);
        let conf = l["val"]["confusion"].as_array().unwrap();
        assert_eq!(conf.len(), 4);
        let total: u64 = conf
            .iter()
            .flat_map(|r| r.as_array().unwrap())
            .map(|v| v.as_u64().unwrap())
            .sum();
        assert_eq!(total, 6);
        assert!(l["train_loss"].as_f64().unwrap().is_finite());
    }
    let ev = evaluate(&m, &data, &split.test, 4).unwrap();
    assert_eq!(Some(&ev), r.history.last().unwrap().val.as_ref());
    let diag: usize = (0..4).map(|k| ev.confusion[k][k]).sum();
    assert_eq!(ev.accuracy, diag as f64 / 6.0);
}

/// Invalid training settings, splits and datasets are rejected with clear errors.
#[test]
fn bad_training_configurations_are_rejected() {
    let data = InMemoryDataset::<f64>::synthetic(8, 2, 3, 4, 0.5, 0).unwrap();
    let mut m = Lstm::<f64>::dense(&LstmConfig::new(4, 3), 2, 0).unwrap();
    let ok = TrainConfig::new(1, 4, 0).with_progress(false);
    let name = |r: tnet::Result<_>| match r {
        Err(Error::InvalidParameter { name, .. }) => name,
        other => panic!("expected InvalidParameter, got {other:?}"),
    };
    assert_eq!(
        name(fit(
            &mut m,
            &data,
            &Split::all(8),
            &TrainConfig::new(0, 4, 0)
        )),
        "epochs"
    );
    assert_eq!(
        name(fit(
            &mut m,
            &data,
            &Split::all(8),
            &TrainConfig::new(1, 0, 0)
        )),
        "batch_size"
    );
    assert_eq!(
        name(fit(
            &mut m,
            &data,
            &Split::all(8),
            &ok.clone().with_early_stopping(EarlyStopping::val_loss(2))
        )),
        "early_stopping"
    );
    assert_eq!(name(fit(&mut m, &data, &Split::all(9), &ok)), "split");
    assert_eq!(
        name(fit(
            &mut m,
            &data,
            &Split::all(8),
            &ok.clone().with_optimizer(OptimizerConfig::adam(-1.0))
        )),
        "lr"
    );
    let wide = InMemoryDataset::<f64>::synthetic(8, 2, 3, 5, 0.5, 0).unwrap();
    assert_eq!(name(fit(&mut m, &wide, &Split::all(8), &ok)), "dataset");
    let many = InMemoryDataset::<f64>::synthetic(8, 3, 3, 4, 0.5, 0).unwrap();
    assert_eq!(name(fit(&mut m, &many, &Split::all(8), &ok)), "dataset");
    assert!(split::holdout(4, 1.0, 0, None).is_err());
    assert!(
        InMemoryDataset::<f64>::try_new(ndarray::Array3::zeros((2, 3, 4)), vec![0, 2], 2).is_err()
    );
    assert!(
        InMemoryDataset::<f64>::try_new(ndarray::Array3::zeros((2, 3, 4)), vec![0], 2).is_err()
    );
}

fn spec(name: &str, part: Part, shape: &[usize]) -> ParamSpec {
    ParamSpec {
        name: name.into(),
        part,
        shape: shape.to_vec(),
        core: false,
    }
}

/// Adam's first step moves every weight by about `lr` against its gradient's sign, and
/// its decoupled weight decay skips biases; SGD with momentum follows its closed form.
#[test]
fn optimizer_updates_follow_closed_forms() {
    let specs = [spec("w", Part::InputMap, &[3]), spec("b", Part::Bias, &[2])];
    let p0 = [
        ArrayD::from_shape_vec(IxDyn(&[3]), vec![1.0, -2.0, 0.5]).unwrap(),
        ArrayD::from_shape_vec(IxDyn(&[2]), vec![0.3, 0.7]).unwrap(),
    ];
    let g = Gradients {
        tensors: vec![
            ArrayD::from_shape_vec(IxDyn(&[3]), vec![0.2, -3.0, 1e-3]).unwrap(),
            ArrayD::from_shape_vec(IxDyn(&[2]), vec![-0.5, 0.0]).unwrap(),
        ],
    };
    // Adam, first step: p - lr (g/(|g| + eps') + wd p) for weights, no decay for biases.
    let cfg = OptimizerConfig::adam(0.1).with_weight_decay(0.01);
    let mut opt = Optimizer::<f64>::new(&cfg, &specs).unwrap();
    let mut p = p0.clone();
    let stats = opt
        .step(
            p.iter_mut().map(|a| a.view_mut()).collect(),
            &mut g.clone(),
            10,
        )
        .unwrap();
    assert_eq!(stats.lr, 0.1);
    for (k, (pk, gk)) in p.iter().zip(&g.tensors).enumerate() {
        for ((&new, &old), &gv) in pk.iter().zip(&p0[k]).zip(gk) {
            let wd = if k == 0 { 0.01 } else { 0.0 };
            let want = old - 0.1 * (gv / (gv.abs() + 1e-8) + wd * old);
            assert!((new - want).abs() < 1e-12, "{new} vs {want}");
        }
    }
    // SGD with momentum 0.5, two steps with the same gradient: u1 = g, u2 = 1.5 g.
    let mut opt = Optimizer::<f64>::new(&OptimizerConfig::sgd(0.1, 0.5), &specs).unwrap();
    let mut p = p0.clone();
    for _ in 0..2 {
        opt.step(
            p.iter_mut().map(|a| a.view_mut()).collect(),
            &mut g.clone(),
            10,
        )
        .unwrap();
    }
    for (k, pk) in p.iter().enumerate() {
        let want = &p0[k] - &(&g.tensors[k] * (0.1 * 2.5));
        assert!((pk - &want).iter().all(|d| d.abs() < 1e-15));
    }
    assert_eq!(opt.step_count(), 2);
    assert_eq!(opt.slots().len(), 2);
}

/// Clipping rescales the gradients to the requested global norm; non-finite gradients
/// are refused and leave the parameters unchanged; mismatched shapes are refused.
#[test]
fn clipping_and_bad_gradients() {
    let specs = [spec("w", Part::FusedMap, &[2])];
    let cfg = OptimizerConfig::sgd(1.0, 0.0).with_clip_norm(1.0);
    let mut opt = Optimizer::<f64>::new(&cfg, &specs).unwrap();
    let mut p = vec![ArrayD::zeros(IxDyn(&[2]))];
    let mut g = Gradients {
        tensors: vec![ArrayD::from_shape_vec(IxDyn(&[2]), vec![3.0, 4.0]).unwrap()],
    };
    let s = opt
        .step(p.iter_mut().map(|a| a.view_mut()).collect(), &mut g, 1)
        .unwrap();
    assert!(s.clipped && s.grad_norm == 5.0);
    assert!((g.global_norm() - 1.0).abs() < 1e-15);
    assert!((p[0][[0]] + 0.6).abs() < 1e-15 && (p[0][[1]] + 0.8).abs() < 1e-15);
    let before = p.clone();
    let mut bad = Gradients {
        tensors: vec![ArrayD::from_shape_vec(IxDyn(&[2]), vec![f64::NAN, 1.0]).unwrap()],
    };
    assert!(matches!(
        opt.step(p.iter_mut().map(|a| a.view_mut()).collect(), &mut bad, 1),
        Err(Error::NonFinite { index: 0, .. })
    ));
    assert_eq!(p, before);
    let mut wrong = Gradients {
        tensors: vec![ArrayD::zeros(IxDyn(&[3]))],
    };
    assert!(matches!(
        opt.step(p.iter_mut().map(|a| a.view_mut()).collect(), &mut wrong, 1),
        Err(Error::ShapeMismatch { .. })
    ));
}

/// Learning-rate schedules: step decay halves every `every` steps; cosine goes from 1 to
/// `min_factor` monotonically; invalid schedules are refused.
#[test]
fn schedules() {
    let s = LrSchedule::Step {
        every: 3,
        gamma: 0.5,
    };
    assert_eq!(
        (0..7).map(|t| s.factor(t, 10)).collect::<Vec<_>>(),
        vec![1.0, 1.0, 1.0, 0.5, 0.5, 0.5, 0.25]
    );
    let c = LrSchedule::Cosine { min_factor: 0.1 };
    assert_eq!(c.factor(0, 100), 1.0);
    assert!((c.factor(100, 100) - 0.1).abs() < 1e-15);
    assert!((c.factor(50, 100) - 0.55).abs() < 1e-15);
    assert!((1..=100).all(|t| c.factor(t, 100) <= c.factor(t - 1, 100)));
    assert_eq!(LrSchedule::Constant.factor(5, 10), 1.0);
    assert!(
        OptimizerConfig::adam(0.1)
            .with_schedule(LrSchedule::Step {
                every: 0,
                gamma: 0.5
            })
            .check()
            .is_err()
    );
    assert!(
        OptimizerConfig::adam(0.1)
            .with_schedule(LrSchedule::Cosine { min_factor: 2.0 })
            .check()
            .is_err()
    );
}

/// Warm-up raises the rate linearly over its steps, then the schedule alone rules; SGD
/// without momentum takes exactly those steps.
#[test]
fn warmup_ramps_the_rate() {
    let specs = [spec("w", Part::FusedMap, &[1])];
    let cfg = OptimizerConfig::sgd(0.8, 0.0).with_warmup(4);
    let mut opt = Optimizer::<f64>::new(&cfg, &specs).unwrap();
    let mut p = [ArrayD::zeros(IxDyn(&[1]))];
    let mut rates = Vec::new();
    for _ in 0..6 {
        rates.push(opt.next_lr(100));
        let mut g = Gradients {
            tensors: vec![ArrayD::from_elem(IxDyn(&[1]), 1.0)],
        };
        opt.step(p.iter_mut().map(|a| a.view_mut()).collect(), &mut g, 100)
            .unwrap();
    }
    assert_eq!(rates, vec![0.2, 0.4, 0.6000000000000001, 0.8, 0.8, 0.8]);
    assert!((p[0][[0]] + rates.iter().sum::<f64>()).abs() < 1e-12);
    // A configuration saved before the field existed reads as no warm-up.
    let json = serde_json::to_string(&OptimizerConfig::adam(0.1)).unwrap();
    assert!(json.contains(",\"warmup\":0"), "{json}");
    let old: OptimizerConfig = serde_json::from_str(&json.replace(",\"warmup\":0", "")).unwrap();
    assert_eq!(old.warmup, 0);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// A hold-out split is a partition of the clips with the requested validation size.
    #[test]
    fn random_split_is_a_partition(n in 2usize..200, f in 0.01f64..0.95, seed in any::<u64>()) {
        let held = ((n as f64) * f).round();
        prop_assume!(held >= 1.0 && held < n as f64);
        let s = split::holdout(n, f, seed, None).unwrap();
        let mut both: Vec<usize> = s.train.iter().chain(&s.test).copied().collect();
        both.sort_unstable();
        prop_assert_eq!(both, all(n));
        prop_assert_eq!(s.test.len(), ((n as f64) * f).round() as usize);
    }
}
