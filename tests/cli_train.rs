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
    // A run.json without the fields added later (`recurrent_gain`, `gate_norm`), sealed
    // with its checksum as tnet writes it, evaluates as trained, with gain 1; the same
    // file without its checksum is refused.
    let run_json = straight.join("run.json");
    let mut spec: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&run_json).unwrap()).unwrap();
    assert_eq!(spec["recurrent_gain"], 1.0);
    assert_eq!(spec["gate_norm"], false);
    let fields = spec.as_object_mut().unwrap();
    fields.remove("recurrent_gain");
    fields.remove("gate_norm");
    fields.remove("checksum");
    std::fs::write(&run_json, serde_json::to_vec(&spec).unwrap()).unwrap();
    let unsealed = tnet().args(["eval", &s]).output().expect("tnet runs");
    assert!(!unsealed.status.success());
    assert!(String::from_utf8_lossy(&unsealed.stderr).contains("no checksum"));
    tnet::train::run::seal(&mut spec);
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
    let cases: [(&[&str], &str); 8] = [
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
        (
            &[
                "train",
                "--data",
                "synthetic",
                "--dropout",
                "1.5",
                "--epochs",
                "1",
                "-o",
                &dir,
            ],
            "dropout",
        ),
        // A huge order is refused before any work that grows with it (it overflowed the
        // stack in the factorization search).
        (
            &[
                "train",
                "--data",
                "synthetic",
                "--order",
                "1000000",
                "-o",
                &dir,
            ],
            "between 1 and 64",
        ),
        (
            &[
                "train",
                "--data",
                "synthetic",
                "--order",
                "1000000",
                "--params",
                "5000",
                "-o",
                &dir,
            ],
            "between 1 and 64",
        ),
    ];
    for (args, needle) in cases {
        let out = tnet().args(args).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} should fail");
        assert!(!err.contains("panicked"), "{args:?} panicked: {err}");
        assert!(err.contains(needle), "{args:?}: {err}");
    }
}

/// One epoch of a small FDHT-LSTM into `dir`, sized by `how` (`--params` or `--rank`),
/// with `extra` options.
fn one_epoch(how: &str, value: &str, dir: &Path, extra: &[&str]) -> serde_json::Value {
    let d = dir.display().to_string();
    let mut args = vec![
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
    args.extend_from_slice(extra);
    json(&run(&args))
}

/// `--dropout P` and `--ht-layout kronecker` (the flagship's protocol) are recorded in
/// run.json and read back by `eval`.
#[test]
fn train_with_dropout_and_the_kronecker_tree() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("kron");
    let result = one_epoch(
        "--rank",
        "3",
        &dir,
        &["--dropout", "0.1", "--ht-layout", "kronecker"],
    );
    assert!(result["params"]["lstm"].as_u64().unwrap() > 0);
    let spec: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("run.json")).unwrap()).unwrap();
    assert_eq!(spec["dropout"], 0.1);
    assert_eq!(spec["ht_layout"], "kronecker");
    let eval = json(&run(&["eval", &dir.display().to_string(), "--json"]));
    assert!(eval["accuracy"].as_f64().unwrap() >= 0.0);
}

/// `--gate-norm` trains with normalised gates: recorded in run.json, the gains are a
/// parameter tensor of their own in the report, and a budget counts them.
#[test]
fn train_with_gate_norm() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("norm");
    let result = one_epoch("--params", "1500", &dir, &["--gate-norm"]);
    assert!(result["params"]["lstm"].as_u64().unwrap() <= 1500);
    let spec: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("run.json")).unwrap()).unwrap();
    assert_eq!(spec["gate_norm"], true);
    let info = json(&run(&["info", &dir.display().to_string(), "--json"]));
    let tensors = info["last_epoch"]["tensors"].as_array().unwrap();
    assert!(tensors.iter().any(|t| t["name"] == "gain"), "{tensors:?}");
    let eval = json(&run(&["eval", &dir.display().to_string(), "--json"]));
    assert!(eval["accuracy"].as_f64().unwrap() >= 0.0);
}

/// `--params N` trains the largest rank whose LSTM fits in `N` parameters, and records it.
#[test]
fn train_to_a_parameter_budget() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("budget");
    let result = one_epoch("--params", "1500", &dir, &[]);
    let lstm = result["params"]["lstm"].as_u64().unwrap();
    assert!(lstm <= 1500, "{lstm} LSTM parameters");
    let spec: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("run.json")).unwrap()).unwrap();
    let rank = spec["rank"].as_u64().unwrap();
    let order = spec["order"].as_u64().unwrap().to_string();
    assert!(rank > 1, "rank {rank}");
    assert_eq!(spec["ht_layout"], "split");
    // One rank more would not fit at the chosen order.
    let bigger = one_epoch(
        "--rank",
        &(rank + 1).to_string(),
        &tmp.path().join("above"),
        &["--order", &order],
    );
    assert!(bigger["params"]["lstm"].as_u64().unwrap() > 1500);
    // With the order fixed, only the rank is chosen, and the model is no larger.
    let fixed = one_epoch(
        "--params",
        "1500",
        &tmp.path().join("fixed"),
        &["--order", "4"],
    );
    let fixed_spec: serde_json::Value =
        serde_json::from_slice(&std::fs::read(tmp.path().join("fixed/run.json")).unwrap()).unwrap();
    assert_eq!(fixed_spec["order"], 4);
    assert!(fixed["params"]["lstm"].as_u64().unwrap() <= lstm);
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

/// A frame-folder tree of `classes`, each with 4 clips of 8 frames (a bright column that
/// moves right or left with the class index), flat (`class/clip/frames`) or with a group
/// level (`class/gK/clip/frames`, two groups of two clips).
fn frame_tree(root: &Path, classes: &[&str], grouped: bool) {
    for (c, class) in classes.iter().enumerate() {
        for clip in 0..4 {
            let dir = if grouped {
                root.join(class)
                    .join(format!("g{}", clip / 2 + 1))
                    .join(format!("clip{clip}"))
            } else {
                root.join(class).join(format!("clip{clip}"))
            };
            std::fs::create_dir_all(&dir).unwrap();
            for k in 0..8u32 {
                let col = if c % 2 == 0 { k } else { 7 - k };
                let pixels: Vec<u8> = (0..6 * 8u32)
                    .flat_map(|i| {
                        if i % 8 == col {
                            [230, 200, 40]
                        } else {
                            [20, 30, 40]
                        }
                    })
                    .collect();
                let png = tnet::data::image::encode_png(8, 6, 3, &pixels).unwrap();
                std::fs::write(dir.join(format!("{:04}.png", k + 1)), png).unwrap();
            }
        }
    }
}

/// A one-epoch TT run on the frame tree `data` (frames of 6x8) into `out`, JSON output,
/// with `extra` options.
fn folder_args(data: &Path, out: &Path, extra: &[&str]) -> Vec<String> {
    let (data, out) = (data.display().to_string(), out.display().to_string());
    let base = [
        "train", "--data", &data, "--size", "6x8", "--model", "tt", "--rank", "2", "--hidden", "4",
        "--epochs", "1", "--json", "-o", &out,
    ];
    base.iter().chain(extra).map(|s| s.to_string()).collect()
}

/// `tnet train --data DIR --frames 8` on a flat `class/clip/frames` tree and on one with
/// a group level; asking for more frames than the clips hold names the longest clip;
/// `tnet eval --data OTHER` matches classes by name and refuses unknown ones by name.
#[test]
fn train_on_frame_folders_of_both_layouts() {
    let tmp = tempfile::tempdir().unwrap();
    for grouped in [false, true] {
        let data = tmp.path().join(format!("data_{grouped}"));
        frame_tree(&data, &["left", "right"], grouped);
        let out = tmp.path().join(format!("run_{grouped}"));
        let args = |frames: &str, out: &Path| {
            folder_args(&data, out, &["--frames", frames, "--test-fraction", "0.5"])
        };
        let a = args("8", &out);
        let result = json(&run(&a.iter().map(String::as_str).collect::<Vec<_>>()));
        assert!(result["accuracy"].as_f64().is_some(), "{result}");
        let spec: serde_json::Value =
            serde_json::from_slice(&std::fs::read(out.join("run.json")).unwrap()).unwrap();
        assert_eq!(spec["clip_frames"], 8);
        assert_eq!(spec["class_names"], serde_json::json!(["left", "right"]));

        let a = args("9", &tmp.path().join(format!("too_long_{grouped}")));
        let fail = tnet().args(&a).output().unwrap();
        assert!(!fail.status.success());
        let msg = String::from_utf8_lossy(&fail.stderr);
        assert!(
            msg.contains("the longest with 8") && msg.contains("9 frames"),
            "{msg}"
        );
    }
    // Evaluation on other data: data lacking some of the run's classes is refused with
    // the missing ones listed, and scored against the run's own labels with --subset; a
    // class the model never saw is refused by name.
    let run_dir = tmp.path().join("run_false").display().to_string();
    let subset = tmp.path().join("subset");
    frame_tree(&subset, &["right"], false);
    let missing = tnet()
        .args(["eval", &run_dir, "--data", &subset.display().to_string()])
        .output()
        .unwrap();
    assert!(!missing.status.success());
    let msg = String::from_utf8_lossy(&missing.stderr);
    assert!(
        msg.contains("lacks classes") && msg.contains("left") && msg.contains("--subset"),
        "{msg}"
    );
    let eval = json(&run(&[
        "eval",
        &run_dir,
        "--data",
        &subset.display().to_string(),
        "--subset",
        "--json",
    ]));
    let per_class = eval["per_class_accuracy"].as_array().unwrap();
    assert_eq!(per_class.len(), 2, "{eval}");
    // Prediction on clip folders outside any dataset: probabilities over the run's
    // classes; a folder with too few frames is refused by name.
    let clips = [
        subset.join("right/clip0").display().to_string(),
        tmp.path()
            .join("data_true/left/g1/clip1")
            .display()
            .to_string(),
    ];
    let pred = json(&run(&["predict", &run_dir, &clips[0], &clips[1], "--json"]));
    assert_eq!(pred["classes"], serde_json::json!(["left", "right"]));
    let rows = pred["clips"].as_array().unwrap();
    assert_eq!(rows.len(), 2);
    for row in rows {
        let p = row["probabilities"].as_object().unwrap();
        let sum: f64 = p.values().map(|v| v.as_f64().unwrap()).sum();
        assert!((sum - 1.0).abs() < 1e-9, "{row}");
        assert!(p.contains_key(row["class"].as_str().unwrap()), "{row}");
    }
    let text = String::from_utf8(run(&["predict", &run_dir, &clips[0]]).stdout).unwrap();
    assert!(text.contains("clip0") && text.contains('%'), "{text}");
    let short = tmp.path().join("short");
    std::fs::create_dir_all(&short).unwrap();
    let png = tnet::data::image::encode_png(8, 6, 3, &[9; 8 * 6 * 3]).unwrap();
    std::fs::write(short.join("1.png"), png).unwrap();
    let out = tnet()
        .args(["predict", &run_dir, &short.display().to_string()])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let msg = String::from_utf8_lossy(&out.stderr);
    assert!(msg.contains("short") && msg.contains("8 needed"), "{msg}");

    let other = tmp.path().join("other");
    frame_tree(&other, &["apple", "zebra"], false);
    let out = tnet()
        .args(["eval", &run_dir, "--data", &other.display().to_string()])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let msg = String::from_utf8_lossy(&out.stderr);
    assert!(
        msg.contains("apple, zebra") && msg.contains("left, right"),
        "{msg}"
    );
}

/// `--test-data DIR`: every clip of `--data` trains and every clip of DIR tests (a flat
/// training tree, a grouped test tree, classes matched by name); `eval` reopens both; a test class the training data lacks, and a training
/// class the test data lacks, are refused by name.
#[test]
fn train_with_a_separate_test_folder() {
    let tmp = tempfile::tempdir().unwrap();
    let train = tmp.path().join("train");
    let test = tmp.path().join("test");
    frame_tree(&train, &["left", "right"], false);
    frame_tree(&test, &["left", "right"], true);
    let out = tmp.path().join("run");
    let args = |test: &Path, out: &Path| {
        let test = test.display().to_string();
        folder_args(&train, out, &["--test-data", &test, "--frames", "8"])
    };
    let a = args(&test, &out);
    let trained = json(&run(&a.iter().map(String::as_str).collect::<Vec<_>>()));
    let eval = json(&run(&["eval", &out.display().to_string(), "--json"]));
    // The test tree's clips, four of each class, under the run's labels.
    assert_eq!(eval["clips"], 8, "{eval}");
    assert_eq!(eval["classes"], serde_json::json!(["left", "right"]));
    for row in eval["confusion"].as_array().unwrap() {
        let n: u64 = row
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap())
            .sum();
        assert_eq!(n, 4, "{eval}");
    }
    assert_eq!(eval["accuracy"], trained["accuracy"]);
    let spec: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("run.json")).unwrap()).unwrap();
    assert_eq!(spec["test_data"], test.display().to_string());

    let other = tmp.path().join("other");
    frame_tree(&other, &["left", "zebra"], false);
    let a = args(&other, &tmp.path().join("refused"));
    let fail = tnet().args(&a).output().unwrap();
    assert!(!fail.status.success());
    let msg = String::from_utf8_lossy(&fail.stderr);
    assert!(
        msg.contains("zebra") && msg.contains("left, right"),
        "{msg}"
    );
    assert!(!tmp.path().join("refused").exists());
    let partial = tmp.path().join("partial");
    frame_tree(&partial, &["right"], true);
    let a = args(&partial, &tmp.path().join("refused"));
    let fail = tnet().args(&a).output().unwrap();
    assert!(!fail.status.success());
    let msg = String::from_utf8_lossy(&fail.stderr);
    assert!(
        msg.contains("lacks classes") && msg.contains("left"),
        "{msg}"
    );
    assert!(!tmp.path().join("refused").exists());
}
