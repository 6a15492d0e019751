//! Hostile inputs, generated here: files and options that declare sizes far beyond what
//! they hold, archives that inflate beyond their declarations, containers and run
//! directories edited after they were written, outputs that would destroy their input.
//! Every case must end in a clear error (never an abort, a hang or a wrong success).

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output};

use ndarray::{Array3, ArrayD, IxDyn};
use tnet::TtMatrix;
use tnet::compress::{AnyCompressed, CompressedFile, CompressedTensor, MatrixModes};
use tnet::formats::Decomposition;
use tnet::matrices::{Init, MatrixFormat, MatrixShape};
use tnet::models::LstmConfig;
use tnet::models::zoo::{self, ModelKind, ModelSpec};
use tnet::weights::{self, DenseArray, Dtype, Weight};
use tnet::{Error, TtTensor};

fn tnet(args: &[&dyn AsRef<std::ffi::OsStr>]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_tnet"));
    c.args(args);
    let out = c.output().expect("the binary runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !stderr.contains("panicked") && !stderr.contains("memory allocation"),
        "the tool aborted: {stderr}"
    );
    out
}

/// Asserts exit code 1 or 2 (an error, not a signal) with `needle` on stderr.
#[track_caller]
fn fails(o: Output, needle: &str) {
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(
        matches!(o.status.code(), Some(1 | 2)),
        "expected a clean error, got {:?}: {e}",
        o.status
    );
    assert!(
        e.contains(needle),
        "stderr does not mention {needle:?}: {e}"
    );
}

/// A rank-1 TT container of shape `1000^6` (48 KB of cores, 8 EB dense).
fn huge_container(path: &Path, value: f64) {
    let cores = (0..6)
        .map(|_| Array3::from_elem((1, 1000, 1), value))
        .collect();
    let tt = TtTensor::try_new(cores).unwrap();
    let c = CompressedTensor {
        shape: vec![1000; 6],
        dtype: Dtype::F64,
        matrix: None,
        decomposition: Decomposition::Tt(tt),
    };
    let file = CompressedFile {
        tensors: vec![("x".into(), AnyCompressed::F64(c))],
        ..CompressedFile::default()
    };
    file.write(path).unwrap();
}

#[test]
fn a_small_container_declaring_a_huge_tensor_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("huge.safetensors");
    huge_container(&path, 1.0);
    assert!(std::fs::metadata(&path).unwrap().len() < 100_000);
    let file = CompressedFile::read(&path).unwrap();
    match file.tensors[0].1.to_dense() {
        // The result and the partial product before it (`10^15` entries), 8 bytes each.
        Err(Error::TooLarge { bytes, .. }) => {
            assert_eq!(bytes, 8 * (10u128.pow(18) + 10u128.pow(15)))
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(file.to_dense(), Err(Error::TooLarge { .. })));
    // `info` describes it; `reconstruct` refuses at once with the size and the way out.
    let info = tnet(&[&"info", &path]);
    assert!(info.status.success());
    let out = dir.path().join("x.npy");
    fails(tnet(&[&"reconstruct", &path, &"-o", &out]), "memory limit");
    fails(
        tnet(&[&"reconstruct", &path, &"-o", &out, &"--max-memory", &"1M"]),
        "6.9 EiB",
    );
    assert!(!out.exists());
}

#[test]
fn cores_whose_product_overflows_are_not_rebuilt_as_infinities() {
    let cores = (0..3)
        .map(|_| Array3::from_elem((1, 2, 1), 1e200))
        .collect();
    let c = CompressedTensor {
        shape: vec![2; 3],
        dtype: Dtype::F64,
        matrix: None,
        decomposition: Decomposition::Tt(TtTensor::<f64>::try_new(cores).unwrap()),
    };
    assert!(matches!(c.to_dense(), Err(Error::NonFinite { .. })));
}

/// A stored `.npz` whose member's sizes (local header and central directory) declare
/// fewer bytes than its deflated stream holds.
fn lying_npz(path: &Path, declared: u32) {
    let dir = path.parent().unwrap();
    let npy = dir.join("member.npy");
    let w = Weight::new(
        "w",
        Dtype::F64,
        DenseArray::F64(ArrayD::zeros(IxDyn(&[64, 64]))),
    );
    weights::write_npy(&npy, &w).unwrap();
    let data = std::fs::read(&npy).unwrap();
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let opts = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    zip.start_file("w.npy", opts).unwrap();
    zip.write_all(&data).unwrap();
    let mut bytes = zip.finish().unwrap().into_inner();
    let real = (data.len() as u32).to_le_bytes();
    let fake = declared.to_le_bytes();
    // Local file header: uncompressed size at offset 22; central directory entry: 24.
    for (sig, off) in [(b"PK\x03\x04", 22), (b"PK\x01\x02", 24)] {
        let at = bytes.windows(4).position(|w| w == sig).unwrap();
        assert_eq!(bytes[at + off..at + off + 4], real);
        bytes[at + off..at + off + 4].copy_from_slice(&fake);
    }
    std::fs::write(path, bytes).unwrap();
}

#[test]
fn an_npz_member_inflating_beyond_its_declared_size_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bomb.npz");
    lying_npz(&path, 512);
    match weights::read_npz(&path) {
        Err(Error::Corrupt { reason, .. }) => {
            assert!(
                reason.contains("declares 512 bytes but inflates to more"),
                "{reason}"
            )
        }
        other => panic!("{other:?}"),
    }
    fails(
        tnet(&[
            &"compress",
            &path,
            &"--rel-eps",
            &"0.1",
            &"-o",
            &dir.path().join("c.safetensors"),
        ]),
        "inflates to more",
    );
}

#[test]
fn sizes_asked_for_by_options_are_checked_before_allocation() {
    // Zero padding that multiplies the weight a million times over.
    assert!(matches!(
        MatrixModes::new(16, 16, vec![1000, 1000], vec![4, 4]),
        Err(Error::InvalidParameter { name: "modes", .. })
    ));
    // A billion blocks.
    let x = tnet::dense::random_normal::<f64>(&[8, 8, 8], 0);
    let r = tnet::formats::bt::bt_als(x.view(), 1_000_000_000, &[4, 4, 4], 0, &Default::default());
    assert!(matches!(r, Err(Error::TooLarge { .. })), "{r:?}");
    // A tensorized matrix whose cores alone exceed any memory.
    let shape = MatrixShape::try_new(vec![1 << 10; 4], vec![1 << 10; 4]).unwrap();
    let r = TtMatrix::<f32>::random(&shape, &(), 1 << 16, Init::Glorot, 0);
    assert!(matches!(r, Err(Error::TooLarge { .. })), "{r:?}");
    // A dense LSTM with a hundred million hidden units.
    let config = LstmConfig::new(100, 100_000_000);
    let spec = ModelSpec::new(ModelKind::DENSE, 1);
    let r = zoo::build::<f32>(&spec, &config, 3, 0);
    assert!(matches!(r, Err(Error::TooLarge { .. })), "{:?}", r.err());
}

/// A TT container of shape `n x n x 2` with a bond of rank `n` before the last mode:
/// `2 n^2` entries dense, an `n^2 x n` partial product on the way. Returns the tensor.
fn blow_up_container(path: &Path, n: usize) -> TtTensor<f64> {
    let cores = vec![
        Array3::from_elem((1, n, 1), 1.0),
        Array3::from_elem((1, n, n), 1e-3),
        Array3::from_elem((n, 2, 1), 1.0),
    ];
    let tt = TtTensor::try_new(cores).unwrap();
    let c = CompressedTensor {
        shape: vec![n, n, 2],
        dtype: Dtype::F64,
        matrix: None,
        decomposition: Decomposition::Tt(tt.clone()),
    };
    let file = CompressedFile {
        tensors: vec![("x".into(), AnyCompressed::F64(c))],
        ..CompressedFile::default()
    };
    file.write(path).unwrap();
    tt
}

/// A container whose dense tensor is small but whose cores pass through a huge partial
/// product on the way (a train of shape `200 x 200 x 2` with a bond of rank 200 before the
/// last mode: 80,000 entries, through a `40,000 x 200` matrix) is refused before that
/// product is allocated (`Factorized::dense_work`; TT here, every format counts its own).
#[test]
fn intermediates_of_a_small_tensor_are_checked_too() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let path = d.join("blow.safetensors");
    let tt = blow_up_container(&path, 200);
    // The 40,000 x 200 partial product beside the 80,000-entry result.
    assert_eq!(
        tnet::Factorized::<f64>::dense_work(&tt),
        200 * 200 * 200 + 200 * 200 * 2
    );
    // The result (640 KB) fits in 32 MiB; the 64 MB intermediate does not.
    let out = d.join("x.npy");
    fails(
        tnet(&[&"reconstruct", &path, &"-o", &out, &"--max-memory", &"32M"]),
        "intermediates",
    );
    assert!(!out.exists());
    assert!(
        tnet(&[&"reconstruct", &path, &"-o", &out, &"--max-memory", &"256M"])
            .status
            .success()
    );
}

/// SIGINT or SIGTERM while the output is being written: the process exits 130, the
/// half-written temporary file is removed and no output appears. The signal is sent when
/// the temporary file is seen (a 256 MiB `.npy` takes long enough to write); a run that
/// finished first is retried.
#[cfg(target_os = "linux")]
#[test]
fn a_signal_during_a_write_leaves_no_temporary_file() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let cores = vec![
        Array3::from_elem((1, 512, 1), 1.0),
        Array3::from_elem((1, 512, 1), 0.5),
        Array3::from_elem((1, 128, 1), 0.25),
    ];
    let c = CompressedTensor {
        shape: vec![512, 512, 128],
        dtype: Dtype::F64,
        matrix: None,
        decomposition: Decomposition::Tt(TtTensor::try_new(cores).unwrap()),
    };
    let file = CompressedFile {
        tensors: vec![("x".into(), AnyCompressed::F64(c))],
        ..CompressedFile::default()
    };
    let input = d.join("big.safetensors");
    file.write(&input).unwrap();
    let temporaries = |dir: &Path| {
        std::fs::read_dir(dir)
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .file_name()
                    .to_string_lossy()
                    .contains(".tmp-")
            })
            .count()
    };
    let mut interrupted = 0;
    for (attempt, signal) in ["-INT", "-TERM", "-INT", "-TERM", "-INT", "-TERM"]
        .into_iter()
        .enumerate()
    {
        let out_dir = d.join(format!("out{attempt}"));
        std::fs::create_dir(&out_dir).unwrap();
        let out = out_dir.join("x.npy");
        let mut child = Command::new(env!("CARGO_BIN_EXE_tnet"))
            .args([
                &"reconstruct" as &dyn AsRef<std::ffi::OsStr>,
                &input,
                &"-o",
                &out,
            ])
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let mut seen = false;
        while child.try_wait().unwrap().is_none() {
            if temporaries(&out_dir) > 0 {
                seen = true;
                let pid = child.id().to_string();
                Command::new("kill").args([signal, &pid]).status().unwrap();
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        let status = child.wait().unwrap();
        assert_eq!(
            temporaries(&out_dir),
            0,
            "{signal}: a temporary file was left"
        );
        if seen && status.code() == Some(130) {
            interrupted += 1;
            // Either no output, or (a signal just after the rename) the complete one.
            if out.exists() {
                let w = weights::read_npy(&out).unwrap();
                assert_eq!(w.data.shape(), [512, 512, 128], "{signal}");
            }
        } else {
            assert!(status.success(), "{signal}: {status:?}");
        }
        if interrupted >= 2 {
            break;
        }
    }
    assert!(
        interrupted >= 1,
        "no attempt was interrupted during its write"
    );
}

/// A weight stored as f16 whose rebuilt values exceed the f16 range is refused with the
/// way out (`--dtype f32`), never written as infinities.
#[test]
fn a_rebuilt_f16_weight_beyond_its_range_needs_a_wider_dtype() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let cores = vec![
        Array3::from_elem((1, 3, 1), 300.0),
        Array3::from_elem((1, 4, 1), 250.0),
    ];
    let c = CompressedTensor {
        shape: vec![3, 4],
        dtype: Dtype::F16,
        matrix: None,
        decomposition: Decomposition::Tt(TtTensor::try_new(cores).unwrap()),
    };
    let file = CompressedFile {
        tensors: vec![("w".into(), AnyCompressed::F64(c))],
        ..CompressedFile::default()
    };
    let path = d.join("w.safetensors");
    file.write(&path).unwrap();
    for out in [d.join("w.npy"), d.join("dense.safetensors")] {
        fails(
            tnet(&[&"reconstruct", &path, &"-o", &out]),
            "tnet reconstruct --dtype f32",
        );
        assert!(!out.exists());
        let ok = tnet(&[&"reconstruct", &path, &"-o", &out, &"--dtype", &"f32"]);
        assert!(
            ok.status.success(),
            "{}",
            String::from_utf8_lossy(&ok.stderr)
        );
    }
    let w = weights::read_npy(d.join("w.npy")).unwrap();
    assert_eq!(w.dtype, Dtype::F32);
    match w.data {
        DenseArray::F32(a) => assert!(a.iter().all(|&v| v == 75_000.0)),
        other => panic!("expected f32 values, got {other:?}"),
    }
    fails(
        tnet(&[
            &"reconstruct",
            &path,
            &"-o",
            &d.join("x.npy"),
            &"--dtype",
            &"f8",
        ]),
        "unknown dtype",
    );
}

/// Orders far beyond any tensorization (`--order 1000000`) are refused before the
/// factor search, whose recursion is as deep as the order (it overflowed the stack).
#[test]
fn huge_orders_are_refused_not_recursed_into() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let w = tnet::dense::random_normal::<f64>(&[40, 60], 2);
    let npy = d.join("w.npy");
    weights::write_npy(&npy, &Weight::new("w", Dtype::F64, DenseArray::F64(w))).unwrap();
    let mut model = weights::SafetensorsFile::default();
    model.entries.push(weights::Entry::Weight(Weight::new(
        "layer.weight",
        Dtype::F32,
        DenseArray::F32(tnet::dense::random_normal::<f32>(&[64, 64], 3)),
    )));
    let st = d.join("model.safetensors");
    weights::write_safetensors(&st, &model).unwrap();
    for order in ["65", "1000000", "1000000000"] {
        let out = d.join("o.safetensors");
        fails(
            tnet(&[
                &"decompose",
                &npy,
                &"--rank",
                &"2",
                &"--order",
                &order,
                &"-o",
                &out,
            ]),
            "at most 64 are supported",
        );
        fails(
            tnet(&[
                &"compress",
                &st,
                &"--rel-eps",
                &"0.1",
                &"--order",
                &order,
                &"-o",
                &out,
            ]),
            "at most 64 are supported",
        );
        assert!(!out.exists());
    }
    assert!(matches!(
        MatrixModes::balanced(40, 60, 1_000_000),
        Err(Error::InvalidParameter { name: "modes", .. })
    ));
}

/// Under an address-space limit (`ulimit -v`) a request far beyond it ends in an error,
/// not in an allocation failure that aborts the process: options asking for huge models,
/// a small container declaring a huge tensor, and a container whose cores pass through a
/// huge partial product (before `dense_work`, such a file aborted on the allocation of
/// its partial product).
#[cfg(target_os = "linux")]
#[test]
fn requests_beyond_a_hard_memory_limit_end_in_errors() {
    let dir = tempfile::tempdir().unwrap();
    let bin = env!("CARGO_BIN_EXE_tnet");
    let run = dir.path().join("run");
    let huge = dir.path().join("huge.safetensors");
    huge_container(&huge, 1.0);
    // 8 MB of cores, 16 MB dense, an 8 GB partial product on the way.
    let blow = dir.path().join("blow.safetensors");
    blow_up_container(&blow, 1000);
    for cmd in [
        format!(
            "{bin} train --data synthetic --output {} --hidden 100000000 --max-memory 256M",
            run.display()
        ),
        format!(
            "{bin} train --data synthetic --output {} --model bt --blocks 1000000000 --max-memory 256M",
            run.display()
        ),
        format!(
            "{bin} reconstruct {} -o {} --max-memory 256M",
            huge.display(),
            dir.path().join("x.npy").display()
        ),
        format!(
            "{bin} reconstruct {} -o {} --max-memory 256M",
            blow.display(),
            dir.path().join("y.npy").display()
        ),
    ] {
        let out = Command::new("sh")
            .arg("-c")
            .arg(format!("ulimit -v 1048576 && exec {cmd}"))
            .output()
            .unwrap();
        let e = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{cmd}: {e}");
        assert!(e.contains("memory limit of 256.0 MiB"), "{cmd}: {e}");
        assert!(!run.exists(), "{cmd} left a run directory");
    }
}

#[test]
fn outputs_never_replace_their_input() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let x = tnet::dense::random_normal::<f64>(&[6, 6, 6], 1);
    let npy = d.join("x.npy");
    weights::write_npy(&npy, &Weight::new("x", Dtype::F64, DenseArray::F64(x))).unwrap();
    let ts = d.join("x.safetensors");
    assert!(
        tnet(&[&"decompose", &npy, &"--rank", &"2", &"-o", &ts])
            .status
            .success()
    );
    let before = std::fs::read(&ts).unwrap();
    // The same file by another spelling, and through a link.
    let spelled = d.join(".").join("x.safetensors");
    fails(
        tnet(&[&"reconstruct", &ts, &"-o", &spelled]),
        "the output is the input",
    );
    #[cfg(unix)]
    {
        let link = d.join("link.safetensors");
        std::os::unix::fs::symlink(&ts, &link).unwrap();
        fails(
            tnet(&[&"decompose", &ts, &"--rank", &"2", &"-o", &link]),
            "the output is the input",
        );
    }
    // A model file compressed onto itself, and a compressed file compressed again.
    fails(
        tnet(&[&"compress", &ts, &"--rel-eps", &"0.1", &"-o", &ts]),
        "the output is the input",
    );
    fails(
        tnet(&[
            &"compress",
            &ts,
            &"--rel-eps",
            &"0.1",
            &"-o",
            &d.join("again.safetensors"),
        ]),
        "already compressed by tnet",
    );
    assert_eq!(std::fs::read(&ts).unwrap(), before);
    assert!(!d.join("again.safetensors").exists());
}

#[test]
fn a_run_is_refused_before_anything_is_written_and_an_edited_run_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    for (opt, value, needle) in [
        ("--batch", "0", "batch_size"),
        ("--lr", "NaN", "lr"),
        ("--batch", "1000000000000", "memory limit"),
    ] {
        fails(
            tnet(&[
                &"train",
                &"--data",
                &"synthetic",
                &"--output",
                &run,
                &opt,
                &value,
            ]),
            needle,
        );
        assert!(!run.exists(), "{opt} {value} left a run directory");
    }
    let ok = tnet(&[
        &"train",
        &"--data",
        &"synthetic",
        &"--output",
        &run,
        &"--epochs",
        &"1",
        &"--hidden",
        &"8",
        &"--json",
    ]);
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert!(tnet(&[&"eval", &run]).status.success());
    let spec = run.join("run.json");
    let text = std::fs::read_to_string(&spec).unwrap();
    for (from, to) in [
        ("\"test_fraction\": 0.2", "\"test_fraction\": 0.5"),
        ("\"model\": \"fdht\"", "\"model\": \"tt\""),
        ("\"clip_frames\": 6", "\"clip_frames\": 5"),
    ] {
        assert!(text.contains(from), "{from} not in {text}");
        std::fs::write(&spec, text.replace(from, to)).unwrap();
        fails(tnet(&[&"eval", &run]), "checksum mismatch");
        fails(tnet(&[&"info", &run]), "checksum mismatch");
    }
    // Without its checksum the run is refused too.
    let mut value: serde_json::Value = serde_json::from_str(&text).unwrap();
    value.as_object_mut().unwrap().remove("checksum");
    std::fs::write(&spec, value.to_string()).unwrap();
    fails(tnet(&[&"eval", &run]), "no checksum");
    // A run.json asking for a huge order, sealed with a valid checksum (an editor who knows
    // the scheme), ends in an error, not in a stack overflow.
    for order in [1_000_000u64, 1_000_000_000] {
        let mut v = value.clone();
        v["order"] = order.into();
        tnet::train::run::seal(&mut v);
        std::fs::write(&spec, v.to_string()).unwrap();
        fails(tnet(&[&"eval", &run]), "order");
        fails(tnet(&[&"info", &run]), "order");
    }
}

/// A FIFO at the output path is refused (it cannot be replaced atomically, and replacing it
/// by a regular file would make the write look successful); with `--force` the output is
/// written into it, byte for byte what a regular file receives.
#[cfg(unix)]
#[test]
fn non_regular_outputs_need_force() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let x = tnet::dense::random_normal::<f64>(&[5, 6, 7], 2);
    let npy = d.join("x.npy");
    weights::write_npy(&npy, &Weight::new("x", Dtype::F64, DenseArray::F64(x))).unwrap();
    let regular = d.join("regular.safetensors");
    let decompose = |out: &Path, force: bool| {
        let mut args: Vec<&dyn AsRef<std::ffi::OsStr>> =
            vec![&"decompose", &npy, &"--rank", &"2", &"-o", &out];
        if force {
            args.push(&"--force");
        }
        tnet(&args)
    };
    assert!(decompose(&regular, false).status.success());
    let fifo = d.join("pipe.safetensors");
    assert!(
        Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success()
    );
    fails(decompose(&fifo, false), "not a regular file");
    let copy = d.join("copy.safetensors");
    let reader = Command::new("sh")
        .arg("-c")
        .arg(format!("cat {} > {}", fifo.display(), copy.display()))
        .spawn()
        .unwrap();
    assert!(decompose(&fifo, true).status.success());
    assert!(reader.wait_with_output().unwrap().status.success());
    assert_eq!(
        std::fs::read(&copy).unwrap(),
        std::fs::read(&regular).unwrap()
    );
}
