//! Training: optimisers, the loop, overfitting, early stopping, checkpoints and resumption.

mod common;

use std::path::PathBuf;

use ndarray::{ArrayD, IxDyn};
use tnet::Error;
use tnet::models::{Lstm, LstmConfig, PadPosition, ParamSpec, Part, Gradients};
use tnet::train::{
    Checkpoint, EarlyStopping, InMemoryDataset, LrSchedule, Optimizer, OptimizerConfig,
    OptimizerKind, Split, TrainConfig, evaluate, fit,
};

fn tmp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("tnet_train_tests_{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join(name);
    let _ = std::fs::remove_file(&p);
    p
}

/// Both wirings fit a tiny synthetic dataset to 100% training accuracy (f64).
#[test]
fn overfits_tiny_dataset_both_wirings() {
    let data = InMemoryDataset::<f64>::synthetic(12, 3, 5, 8, 0.5, 1).unwrap();
    let cfg = LstmConfig::new(8, 8);
    let models = [
        Lstm::<f64>::dense(&cfg, 3, 2).unwrap(),
        Lstm::<f64>::dense_fused(&cfg, 3, 18, PadPosition::End, 2).unwrap(),
    ];
    for mut model in models {
        let tc = TrainConfig::new(60, 4, 3)
            .with_optimizer(OptimizerConfig::adam(0.02))
            .with_progress(false);
        let report = fit(&mut model, &data, &Split::all(12), &tc).unwrap();
        let all: Vec<usize> = (0..12).collect();
        let ev = evaluate(&model, &data, &all, 5).unwrap();
        println!("{:?} loss {} acc {}", model.wiring(), ev.loss, ev.accuracy);
        assert_eq!(ev.accuracy, 1.0, "{:?}: {:?}", model.wiring(), report.history.last());
    }
}
