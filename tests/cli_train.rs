//! `tnet train`, `tnet eval` and `tnet info` end to end on the built-in video: a run
//! killed at an arbitrary moment and resumed ends with the same model as an uninterrupted
//! run, and evaluation reproduces the run's own test result.

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

fn tnet() -> Command {
    Command::new(env!("CARGO_BIN_EXE_tnet"))
}

fn run(args: &[&str]) -> Output {
    let out = tnet().args(args).output().expect("tnet runs");
    assert!(
        out.status.success(),
        "tnet {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn json(out: &Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout).expect("one JSON object on stdout")
}

/// The arguments of a small run into `dir`.
fn train_args(dir: &Path) -> Vec<String> {
    [
        "train",
        "--data",
        "synthetic",
        "--model",
        "fdht",
        "--rank",
        "3",
        "--hidden",
        "8",
        "--epochs",
        "4",
        "--seed",
        "3",
        "--json",
        "-o",
    ]
    .iter()
    .map(|s| s.to_string())
    .chain([dir.display().to_string()])
    .collect()
}

/// A run killed as soon as its first checkpoint exists, then resumed, writes bitwise the
/// same model and the same test result as an uninterrupted run; `eval` reproduces the
/// test accuracy and `info` describes the model.
#[test]
fn train_kill_resume_eval_info() {
    let tmp = tempfile::tempdir().unwrap();
    let straight = tmp.path().join("straight");
    let killed = tmp.path().join("killed");
    let args = train_args(&straight);
    let out = run(&args.iter().map(String::as_str).collect::<Vec<_>>());
    let result = json(&out);
    assert_eq!(result["epochs_run"], 4);

    // Kill the second run once it has written a checkpoint (or when it ends by itself).
    let args = train_args(&killed);
    let mut child = tnet()
        .args(&args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while !killed.join("checkpoint.bin").exists() && start.elapsed() < Duration::from_secs(120) {
        std::thread::sleep(Duration::from_millis(2));
    }
    let _ = child.kill();
    let _ = child.wait();
    let mut resume = args.clone();
    resume.push("--resume".into());
    let resumed = json(&run(&resume.iter().map(String::as_str).collect::<Vec<_>>()));
    assert_eq!(
        std::fs::read(straight.join("model.bin")).unwrap(),
        std::fs::read(killed.join("model.bin")).unwrap(),
        "the resumed run must end with the same weights"
    );
    assert_eq!(resumed["accuracy"], result["accuracy"]);

    // Without --resume an existing run is not overwritten.
    let again = tnet().args(&args).output().expect("tnet runs");
    assert_eq!(again.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&again.stderr).contains("--resume"));

    let s = straight.display().to_string();
    let eval = json(&run(&["eval", &s, "--json"]));
    assert_eq!(eval["accuracy"], result["accuracy"]);
    let n = eval["clips"].as_u64().unwrap() as usize;
    let confusion: usize = eval["confusion"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|row| {
            row.as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_u64().unwrap() as usize)
        })
        .sum();
    assert_eq!(confusion, n);
    assert_eq!(eval["per_class_accuracy"].as_array().unwrap().len(), 6);

    let info = json(&run(&["info", &s, "--json"]));
    assert_eq!(info["model"], "fdht");
    let p = &info["params"];
    assert_eq!(
        p["total"].as_u64().unwrap(),
        p["lstm"].as_u64().unwrap() + p["classifier"].as_u64().unwrap()
    );
    assert!(info["compression"]["lstm"].as_f64().unwrap() > 10.0);
    // The per-tensor report of the last epoch: every parameter tensor, finite norms.
    let last = &info["last_epoch"];
    assert_eq!(last["epoch"], 3);
    let tensors = last["tensors"].as_array().unwrap();
    assert!(tensors.iter().any(|t| t["name"] == "fused[0]"));
    assert!(tensors.iter().any(|t| t["name"] == "classifier.bias"));
    assert!(
        tensors
            .iter()
            .all(|t| t["norm"].as_f64().unwrap() > 0.0
                && t["grad_norm"].as_f64().unwrap().is_finite())
    );
    let text = String::from_utf8(run(&["info", &s]).stdout).unwrap();
    assert!(
        text.contains("tensors") && text.contains("fused[0]"),
        "{text}"
    );
    // A run directory written before `--recurrent-gain` existed (no such field in its
    // run.json) evaluates as trained, with gain 1.
    let run_json = straight.join("run.json");
    let mut spec: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&run_json).unwrap()).unwrap();
    assert_eq!(spec["recurrent_gain"], 1.0);
    spec.as_object_mut().unwrap().remove("recurrent_gain");
    std::fs::write(&run_json, serde_json::to_vec(&spec).unwrap()).unwrap();
    let legacy = json(&run(&["eval", &s, "--json"]));
    assert_eq!(legacy["accuracy"], result["accuracy"]);

    // Human-readable output too.
    let text = String::from_utf8(run(&["eval", &s]).stdout).unwrap();
    assert!(text.contains("accuracy") && text.contains("right"));
}

/// Bad settings and missing runs give clear errors and non-zero exits, never a panic.
#[test]
fn train_and_eval_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("r").display().to_string();
    let cases: [(&[&str], &str); 5] = [
        (
            &[
                "train",
                "--data",
                "synthetic",
                "--model",
                "lstm9",
                "-o",
                &dir,
            ],
            "model",
        ),
        (
            &[
                "train",
                "--data",
                "synthetic",
                "--rank",
                "0",
                "--epochs",
                "1",
                "-o",
                &dir,
            ],
            "rank",
        ),
        (
            &[
                "train",
                "--data",
                "synthetic",
                "--hidden",
                "0",
                "--epochs",
                "1",
                "-o",
                &dir,
            ],
            "hidden",
        ),
        (
            &[
                "train",
                "--data",
                "/nonexistent/frames",
                "--epochs",
                "1",
                "-o",
                &dir,
            ],
            "nonexistent",
        ),
        (&["eval", "/nonexistent/run"], "nonexistent"),
    ];
    for (args, needle) in cases {
        let out = tnet().args(args).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} should fail");
        assert!(!err.contains("panicked"), "{args:?} panicked: {err}");
        assert!(err.contains(needle), "{args:?}: {err}");
    }
}

/// One epoch of a small FDHT-LSTM into `dir`, sized by `how` (`--params` or `--rank`).
fn one_epoch(how: &str, value: &str, dir: &Path) -> serde_json::Value {
    let d = dir.display().to_string();
    let args = [
        "train",
        "--data",
        "synthetic",
        "--model",
        "fdht",
        how,
        value,
        "--hidden",
        "8",
        "--epochs",
        "1",
        "--json",
        "-o",
        &d,
    ];
    json(&run(&args))
}

/// `--params N` trains the largest rank whose LSTM fits in `N` parameters, and records it.
#[test]
fn train_to_a_parameter_budget() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("budget");
    let result = one_epoch("--params", "1500", &dir);
    let lstm = result["params"]["lstm"].as_u64().unwrap();
    assert!(lstm <= 1500, "{lstm} LSTM parameters");
    let spec: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("run.json")).unwrap()).unwrap();
    let rank = spec["rank"].as_u64().unwrap();
    assert!(rank > 1, "rank {rank}");
    assert_eq!(spec["ht_layout"], "split");
    // One rank more would not fit.
    let bigger = one_epoch("--rank", &(rank + 1).to_string(), &tmp.path().join("above"));
    assert!(bigger["params"]["lstm"].as_u64().unwrap() > 1500);
    // A budget below the smallest model is refused with the smallest count.
    let out = tnet()
        .args([
            "train",
            "--data",
            "synthetic",
            "--model",
            "tt",
            "--params",
            "100",
            "--hidden",
            "8",
            "-o",
        ])
        .arg(tmp.path().join("small"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("budget"));
}
