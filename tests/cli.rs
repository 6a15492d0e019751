//! End-to-end tests of the `tnet` binary on files the tests write in a temporary
//! directory: round trips within the requested tolerance, parseable JSON, and clear
//! non-zero exits (never a panic) on bad files and bad arguments.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use ndarray::{ArrayD, Dimension, IxDyn};
use serde_json::Value;
use tnet::compress::MatrixModes;
use tnet::weights::{self, DenseArray, Dtype, Entry, SafetensorsFile, Weight};
use tnet::{DimTree, Factorized, HtTensor};

fn tnet(args: &[&dyn AsRef<std::ffi::OsStr>]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_tnet"));
    for a in args {
        c.arg(a);
    }
    let out = c.output().expect("the binary runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "the tool panicked: {stderr}");
    out
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[track_caller]
fn ok(o: Output) -> Output {
    assert!(
        o.status.success(),
        "exit {:?}\nstdout: {}\nstderr: {}",
        o.status,
        stdout(&o),
        stderr(&o)
    );
    o
}

/// Asserts a non-zero exit with a message on stderr containing `needle`.
#[track_caller]
fn fails(o: Output, needle: &str) {
    assert!(
        !o.status.success(),
        "expected failure, got success: {}",
        stdout(&o)
    );
    let e = stderr(&o);
    assert!(
        e.to_lowercase().contains(&needle.to_lowercase()),
        "stderr does not mention {needle:?}: {e}"
    );
}

fn json(o: &Output) -> Value {
    serde_json::from_str(stdout(o).trim())
        .unwrap_or_else(|e| panic!("not one JSON object ({e}): {}", stdout(o)))
}

/// A smooth 4-D tensor (low HT ranks) as f64.
fn smooth(n: usize) -> ArrayD<f64> {
    ArrayD::from_shape_fn(IxDyn(&[n; 4]), |i| {
        1.0 / (1.0 + i.slice().iter().map(|&k| k as f64).sum::<f64>())
    })
}

/// A weight W (rows x cols) of tensorized HT rank `r` plus relative noise `noise`.
fn structured_weight(
    rows: usize,
    cols: usize,
    modes: &MatrixModes,
    r: usize,
    noise: f64,
    seed: u64,
) -> ArrayD<f64> {
    assert_eq!((modes.rows, modes.cols), (rows, cols));
    let shape = modes.tensor_shape();
    let x = HtTensor::<f64>::random(&DimTree::balanced(shape.len()).unwrap(), &shape, r, seed)
        .unwrap()
        .to_dense();
    let mut w = modes.matricize(x.view()).unwrap();
    let scale = tnet::dense::norm(w.view()) / (w.len() as f64).sqrt();
    let e = tnet::dense::random_normal::<f64>(&[rows, cols], seed + 1);
    w.zip_mut_with(&e, |a, &b| *a += noise * scale * b);
    w
}

fn save_npy(dir: &Path, name: &str, dtype: Dtype, data: DenseArray) -> PathBuf {
    let p = dir.join(format!("{name}.npy"));
    weights::write_npy(&p, &Weight::new(name, dtype, data)).unwrap();
    p
}

fn read_npy_f64(p: &Path) -> ArrayD<f64> {
    weights::read_npy(p).unwrap().data.into_array::<f64>()
}

fn rel_err(a: &ArrayD<f64>, b: &ArrayD<f64>) -> f64 {
    tnet::dense::rel_error(a.view(), b.view()).unwrap()
}

/// Temporary files left in a directory (atomic writes clean up after themselves).
fn leftovers(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".tmp-"))
        .collect()
}

/// A native `.npy` is decomposed from its mapping; a big-endian or `f16` one (which cannot
/// be borrowed) is decoded first: every path gives the same report for the same values,
/// and `--name` other than the file's stem is refused as before.
#[test]
fn decompose_mapped_and_decoded_npy_agree() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let x = smooth(6).mapv(|v| half::f16::from_f64(v).to_f64());
    let native = save_npy(d, "x", Dtype::F64, DenseArray::F64(x.clone()));
    let bytes = std::fs::read(&native).unwrap();
    let header_end = bytes.iter().position(|&b| b == b'\n').unwrap() + 1;
    let mut be = bytes[..header_end].to_vec();
    let at = be.windows(3).position(|w| w == b"<f8").unwrap();
    be[at] = b'>';
    for v in x.iter() {
        be.extend_from_slice(&v.to_be_bytes());
    }
    let big = d.join("big.npy");
    std::fs::write(&big, &be).unwrap();
    let half = save_npy(d, "half", Dtype::F16, DenseArray::F64(x.clone()));
    let run = |input: &Path| {
        let out = d.join("o.tnet.safetensors");
        json(&ok(tnet(&[
            &"decompose",
            &input,
            &"--format",
            &"tt",
            &"--rank",
            &"3",
            &"-o",
            &out,
            &"--force",
            &"--json",
        ])))
    };
    let (a, b, c) = (run(&native), run(&big), run(&half));
    assert_eq!(a["ranks"], b["ranks"]);
    assert_eq!(a["rel_error"], b["rel_error"], "{a}\n{b}");
    assert_eq!(a["ranks"], c["ranks"]);
    let (ea, ec) = (
        a["rel_error"].as_f64().unwrap(),
        c["rel_error"].as_f64().unwrap(),
    );
    assert!(
        (ea - ec).abs() <= 1e-5 * (1.0 + ea),
        "f64 {ea} against f16 (as f32) {ec}"
    );
    let out = d.join("o.tnet.safetensors");
    let e = tnet(&[
        &"decompose",
        &native,
        &"--name",
        &"y",
        &"--rank",
        &"3",
        &"-o",
        &out,
    ]);
    assert!(!e.status.success());
    assert!(stderr(&e).contains("no array named 'y'"), "{}", stderr(&e));
}

/// decompose -> reconstruct of a plain tensor meets --rel-eps in both precisions, and the
/// printed figures agree with the files.
#[test]
fn decompose_reconstruct_plain_tensor() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let x = smooth(7);
    for (dtype, data, eps) in [
        (Dtype::F64, DenseArray::F64(x.clone()), 1e-6),
        (Dtype::F32, DenseArray::F32(x.mapv(|v| v as f32)), 1e-4),
    ] {
        let input = save_npy(d, &format!("x{dtype}"), dtype, data);
        let out = d.join("x.tnet.safetensors");
        let o = ok(tnet(&[
            &"decompose",
            &input,
            &"--format",
            &"ht",
            &"--rel-eps",
            &eps.to_string(),
            &"-o",
            &out,
            &"--json",
        ]));
        let v = json(&o);
        assert_eq!(v["format"], "ht");
        assert_eq!(v["shape"], serde_json::json!([7, 7, 7, 7]));
        assert!(v["rel_error"].as_f64().unwrap() <= eps, "{v}");
        assert!(v["ratio"].as_f64().unwrap() > 2.0, "{v}");
        assert!(v["params"].as_u64().unwrap() < 7u64.pow(4));
        for key in ["seconds", "tree", "ranks", "file_size"] {
            assert!(!v[key].is_null(), "{key} missing: {v}");
        }
        let recon = d.join("recon.npy");
        ok(tnet(&[&"reconstruct", &out, &"-o", &recon]));
        let back = weights::read_npy(&recon).unwrap();
        assert_eq!(back.dtype, dtype, "written back in the input's dtype");
        let err = rel_err(&x, &back.data.into_array());
        assert!(
            err <= eps + 1e-6 * (dtype == Dtype::F32) as u8 as f64,
            "{dtype}: {err}"
        );
        assert!(
            (err - v["rel_error"].as_f64().unwrap()).abs() <= 1e-6,
            "reported vs measured"
        );
    }
    assert!(leftovers(d).is_empty());
}

/// `--method randomized` meets the tolerance for HT, TT and Tucker, reports its sketch
/// (text and JSON), is reproducible from `--seed`, and its options are refused where
/// they mean nothing.
#[test]
fn decompose_randomized() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let x = smooth(30);
    let input = save_npy(d, "x", Dtype::F64, DenseArray::F64(x.clone()));
    let out = d.join("x.tnet.safetensors");
    let run = |format: &str, extra: &[&str]| {
        let mut args: Vec<&dyn AsRef<std::ffi::OsStr>> = vec![
            &"decompose",
            &input,
            &"--format",
            &format,
            &"--rel-eps",
            &"1e-4",
            &"--method",
            &"randomized",
            &"-o",
            &out,
            &"--force",
        ];
        for e in extra {
            args.push(e);
        }
        ok(tnet(&args))
    };
    for format in ["ht", "tt", "tucker"] {
        let v = json(&run(
            format,
            &["--json", "--seed", "7", "--power-iterations", "0"],
        ));
        assert_eq!(
            v["method"],
            serde_json::json!({"randomized": {"oversample": 10, "power_iterations": 0, "seed": 7}}),
            "{v}"
        );
        let err = v["rel_error"].as_f64().unwrap();
        assert!(
            err <= 1e-4 && err <= v["rel_error_bound"].as_f64().unwrap() + 1e-12,
            "{v}"
        );
        let first = std::fs::read(&out).unwrap();
        run(format, &["--seed", "7", "--power-iterations", "0"]);
        assert_eq!(
            first,
            std::fs::read(&out).unwrap(),
            "{format}: same seed, same file"
        );
    }
    let text = stdout(&run("tt", &["--oversample", "4"]));
    assert!(
        text.contains("method      randomized (oversampling 4, 1 power iteration, seed 0)"),
        "{text}"
    );
    fails(
        tnet(&[
            &"decompose",
            &input,
            &"--format",
            &"tr",
            &"--rank",
            &"2",
            &"--method",
            &"randomized",
            &"-o",
            &out,
            &"--force",
        ]),
        "--method randomized exists for ht, tt and tucker, not tr",
    );
    fails(
        tnet(&[
            &"decompose",
            &input,
            &"--format",
            &"tt",
            &"--rank",
            &"2",
            &"--seed",
            &"1",
            &"-o",
            &out,
            &"--force",
        ]),
        "only meaningful with --method randomized",
    );
    assert!(leftovers(d).is_empty());
}

/// A rank cap and a custom tree are honoured; the text output names them.
#[test]
fn decompose_with_rank_and_tree() {
    let dir = tempfile::tempdir().unwrap();
    let input = save_npy(dir.path(), "x", Dtype::F64, DenseArray::F64(smooth(6)));
    let out = dir.path().join("x.ts");
    let o = ok(tnet(&[
        &"decompose",
        &input,
        &"--rank",
        &"2",
        &"--tree",
        &"(0,(1,(2,3)))",
        &"-o",
        &out,
    ]));
    let text = stdout(&o);
    assert!(text.contains("(0,(1,(2,3)))"), "{text}");
    for key in ["parameters", "ratio", "rel. error", "time"] {
        assert!(text.contains(key), "{key} missing: {text}");
    }
    let info = json(&ok(tnet(&[&"info", &out, &"--json"])));
    let t = &info["tensors"][0];
    assert_eq!(t["tree"], "(0,(1,(2,3)))");
    assert!(
        t["ranks"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r.as_u64().unwrap() <= 2),
        "{t}"
    );
}

/// A 2-D weight tensorized by --out-modes/--in-modes (with zero padding) is compressed
/// within the tolerance and reconstructs to the original shape; info reports the modes.
#[test]
fn decompose_tensorized_matrix_with_padding() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // 60 x 90 as (4·4·4) x (4·5·5): padded to 64 x 100.
    let exact = MatrixModes::new(64, 100, vec![4, 4, 4], vec![4, 5, 5]).unwrap();
    let w_full = structured_weight(64, 100, &exact, 3, 0.0, 7);
    let w = w_full.slice(ndarray::s![..60, ..90]).to_owned().into_dyn();
    let input = save_npy(d, "w", Dtype::F64, DenseArray::F64(w.clone()));
    let out = d.join("w.ts");
    let o = ok(tnet(&[
        &"decompose",
        &input,
        &"--rel-eps",
        &"1e-8",
        &"--out-modes",
        &"4,4,4",
        &"--in-modes",
        &"4x5x5",
        &"-o",
        &out,
        &"--json",
    ]));
    let v = json(&o);
    assert_eq!(v["padding"], serde_json::json!([4, 10]));
    assert_eq!(v["modes"]["out_modes"], serde_json::json!([4, 4, 4]));
    assert!(v["rel_error"].as_f64().unwrap() <= 1e-8, "{v}");
    assert!(v["ratio"].as_f64().unwrap() > 1.5, "{v}");
    let recon = d.join("r.npy");
    ok(tnet(&[&"reconstruct", &out, &"-o", &recon]));
    let back = read_npy_f64(&recon);
    assert_eq!(back.shape(), &[60, 90]);
    assert!(rel_err(&w, &back) <= 1e-8);
    let info = json(&ok(tnet(&[&"info", &out, &"--json"])));
    assert_eq!(
        info["tensors"][0]["tensor_shape"],
        serde_json::json!([16, 20, 20])
    );
    assert_eq!(
        info["tensors"][0]["modes"]["in_modes"],
        serde_json::json!([4, 5, 5])
    );
    assert!(info["file_size"].as_u64().unwrap() > 0);
    // --order picks balanced modes itself.
    let o = ok(tnet(&[
        &"decompose",
        &input,
        &"--rel-eps",
        &"1e-3",
        &"--order",
        &"2",
        &"-o",
        &out,
        &"--json",
    ]));
    assert_eq!(json(&o)["modes"]["out_modes"].as_array().unwrap().len(), 2);
}

const FORMATS: [&str; 5] = ["ht", "tt", "tr", "tucker", "bt"];

/// Runs decompose -> info --json -> reconstruct (.npy) and checks, for one format: the
/// measured error of the rebuilt array is at most `eps` (plus `slack` for an f32 input)
/// and agrees with the reported one, info repeats the format, ranks and block count.
/// Returns the decompose report.
#[track_caller]
fn round_trip(
    d: &Path,
    input: &Path,
    original: &ArrayD<f64>,
    fmt: &str,
    extra: &[&str],
    eps: f64,
    slack: f64,
) -> Value {
    let out = d.join(format!("{fmt}.ts"));
    let mut args: Vec<&dyn AsRef<std::ffi::OsStr>> = vec![
        &"decompose",
        &input,
        &"--format",
        &fmt,
        &"-o",
        &out,
        &"--json",
    ];
    for a in extra {
        args.push(a);
    }
    let v = json(&ok(tnet(&args)));
    assert_eq!(v["format"], fmt, "{v}");
    let info = json(&ok(tnet(&[&"info", &out, &"--json"])));
    let t = &info["tensors"][0];
    assert_eq!(t["format"], fmt, "{info}");
    assert_eq!(t["ranks"], v["ranks"], "{info}");
    assert_eq!(t["params"], v["params"], "{info}");
    assert_eq!(t["tree"].is_null(), fmt != "ht", "{info}");
    assert_eq!(t["blocks"].is_null(), fmt != "bt", "{info}");
    assert_eq!(v["sweeps"].is_null(), fmt != "bt", "{v}");
    let text = stdout(&ok(tnet(&[&"info", &out])));
    assert!(text.contains(&format!("format      {fmt}")), "{text}");
    let recon = d.join(format!("{fmt}.npy"));
    ok(tnet(&[&"reconstruct", &out, &"-o", &recon]));
    let back = read_npy_f64(&recon);
    assert_eq!(back.shape(), original.shape());
    let err = rel_err(original, &back);
    assert!(err <= eps + slack, "{fmt}: measured {err} > {eps}: {v}");
    let reported = v["rel_error"].as_f64().unwrap();
    assert!(reported <= eps, "{fmt}: reported {reported} > {eps}");
    assert!(
        (err - reported).abs() <= 1e-9 + slack,
        "{fmt}: reported {reported} vs measured {err}"
    );
    v
}

/// Every format: decompose -> info -> reconstruct of a plain tensor meets --rel-eps,
/// and --rank caps every rank (block ranks for bt, with --blocks honoured).
#[test]
fn every_format_plain_tensor() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let x = smooth(5);
    let input = save_npy(d, "x", Dtype::F64, DenseArray::F64(x.clone()));
    for fmt in FORMATS {
        for eps in [1e-2, 1e-6] {
            let v = round_trip(
                d,
                &input,
                &x,
                fmt,
                &["--rel-eps", &eps.to_string()],
                eps,
                0.0,
            );
            if eps == 1e-2 {
                assert!(v["ratio"].as_f64().unwrap() > 1.0, "{fmt}: {v}");
            }
        }
        let extra: &[&str] = if fmt == "bt" {
            &["--rank", "2", "--blocks", "3"]
        } else {
            &["--rank", "2"]
        };
        let v = round_trip(d, &input, &x, fmt, extra, 1.0, 0.0);
        let ranks = v["ranks"].as_array().unwrap();
        assert!(ranks.iter().all(|r| r.as_u64().unwrap() <= 2), "{fmt}: {v}");
        if fmt == "bt" {
            assert_eq!(v["blocks"], 3);
            assert_eq!(ranks.len(), 3 * 4);
        }
    }
    assert!(leftovers(d).is_empty());
}

/// Every format on a 2-D weight tensorized with zero padding (f32 input): the rebuilt
/// weight has the original shape and meets --rel-eps; info reports the modes.
#[test]
fn every_format_tensorized_matrix() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // 22 x 28 as (2·3·4) x (2·3·5): padded to 24 x 30.
    let exact = MatrixModes::new(24, 30, vec![2, 3, 4], vec![2, 3, 5]).unwrap();
    let w_full = structured_weight(24, 30, &exact, 2, 0.0, 11);
    let w32 = w_full
        .slice(ndarray::s![..22, ..28])
        .mapv(|v| v as f32)
        .into_dyn();
    let w = w32.mapv(f64::from);
    let input = save_npy(d, "w", Dtype::F32, DenseArray::F32(w32));
    let eps = 1e-3;
    for fmt in FORMATS {
        let v = round_trip(
            d,
            &input,
            &w,
            fmt,
            &[
                "--rel-eps",
                &eps.to_string(),
                "--out-modes",
                "2,3,4",
                "--in-modes",
                "2,3,5",
            ],
            eps,
            1e-5,
        );
        assert_eq!(v["padding"], serde_json::json!([2, 2]), "{fmt}: {v}");
        let info = json(&ok(tnet(&[
            &"info",
            &d.join(format!("{fmt}.ts")),
            &"--json",
        ])));
        assert_eq!(
            info["tensors"][0]["tensor_shape"],
            serde_json::json!([4, 9, 20])
        );
        assert_eq!(info["tensors"][0]["shape"], serde_json::json!([22, 28]));
    }
}

/// `compress --format F` for every format: the compressed weight meets --rel-eps after
/// reconstruct, the small one is kept bit for bit.
#[test]
fn compress_every_format() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let modes = MatrixModes::balanced(32, 48, 2).unwrap();
    let w = structured_weight(32, 48, &modes, 2, 0.001, 5);
    let small = tnet::dense::random_normal::<f64>(&[4, 4], 6);
    let model = d.join("m.safetensors");
    weights::write_safetensors(
        &model,
        &SafetensorsFile {
            entries: vec![
                Entry::Weight(Weight::new(
                    "fc.weight",
                    Dtype::F64,
                    DenseArray::F64(w.clone()),
                )),
                Entry::Weight(Weight::new(
                    "small.weight",
                    Dtype::F64,
                    DenseArray::F64(small.clone()),
                )),
            ],
            ..Default::default()
        },
    )
    .unwrap();
    let eps = 0.02;
    for fmt in FORMATS {
        let out = d.join(format!("m.{fmt}.ts"));
        let v = json(&ok(tnet(&[
            &"compress",
            &model,
            &"--format",
            &fmt,
            &"--rel-eps",
            &eps.to_string(),
            &"--min-size",
            &"100",
            &"--order",
            &"2",
            &"-o",
            &out,
            &"--json",
        ])));
        assert_eq!(v["totals"]["compressed"], 1, "{fmt}: {v}");
        let fc = &v["tensors"][0];
        assert_eq!(fc["format"], fmt, "{v}");
        let back = d.join("back.safetensors");
        ok(tnet(&[&"reconstruct", &out, &"-o", &back]));
        let back = weights::read_safetensors(&back).unwrap();
        let get = |n: &str| match back.get(n) {
            Some(Entry::Weight(w)) => w.data.clone().into_array::<f64>(),
            other => panic!("{n}: {other:?}"),
        };
        let err = rel_err(&w, &get("fc.weight"));
        assert!(err <= eps, "{fmt}: {err}");
        assert!((err - fc["rel_error"].as_f64().unwrap()).abs() <= 1e-9);
        assert_eq!(get("small.weight"), small);
    }
}

/// A non-HT compressed file whose description was edited (ranks, block count, format,
/// shape) or whose cores are damaged fails with a clear message and a non-zero exit: the
/// checksum refuses the edit, and so does a description whose checksum was removed (the
/// validation behind the checksum is tested with resealed descriptions in
/// `compress::tests::tampered_files_are_corrupt`).
#[test]
fn corrupt_non_ht_containers_fail_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let input = save_npy(d, "x", Dtype::F64, DenseArray::F64(smooth(4)));
    // (format, text in the description, same-length replacement)
    let cases = [
        ("tt", "ranks\\\":[1,", "ranks\\\":[7,"),
        ("tt", "format\\\":\\\"tt\\\"", "format\\\":\\\"tr\\\""),
        ("tt", "/tt/3", "/tt/9"),
        (
            "tr",
            "tensor_shape\\\":[4,4,4,4]",
            "tensor_shape\\\":[4,4,4,5]",
        ),
        (
            "tucker",
            "tensor_shape\\\":[4,4,4,4]",
            "tensor_shape\\\":[4,4,4]  ",
        ),
        (
            "tucker",
            "format\\\":\\\"tucker\\\"",
            "format\\\":\\\"tt\\\"    ",
        ),
        ("bt", "blocks\\\":2", "blocks\\\":3"),
        ("bt", "blocks\\\":2", "blocks\\\":0"),
        (
            "bt",
            "precision\\\":\\\"f64\\\"",
            "precision\\\":\\\"f32\\\"",
        ),
    ];
    for (fmt, from, to) in cases {
        let ts = d.join(format!("{fmt}.ts"));
        ok(tnet(&[
            &"decompose",
            &input,
            &"--format",
            &fmt,
            &"--rank",
            &"2",
            &"-o",
            &ts,
        ]));
        let mut bytes = std::fs::read(&ts).unwrap();
        // The checksum refuses any edit, and a description without one.
        let checked = d.join(format!("checked-{fmt}.ts"));
        std::fs::write(&checked, &bytes).unwrap();
        blank_checksum(&mut bytes);
        assert_eq!(from.len(), to.len());
        let at = bytes
            .windows(from.len())
            .position(|w| w == from.as_bytes())
            .unwrap_or_else(|| panic!("{fmt}: {from} not in the description"));
        bytes[at..at + to.len()].copy_from_slice(to.as_bytes());
        let bad = d.join(format!("bad-{fmt}.ts"));
        std::fs::write(&bad, &bytes).unwrap();
        let mut tampered = std::fs::read(&checked).unwrap();
        let at = tampered
            .windows(from.len())
            .position(|w| w == from.as_bytes())
            .unwrap();
        tampered[at..at + to.len()].copy_from_slice(to.as_bytes());
        std::fs::write(&checked, &tampered).unwrap();
        fails(tnet(&[&"info", &checked]), "checksum mismatch");
        fails(tnet(&[&"info", &bad]), "no checksum");
        fails(
            tnet(&[&"reconstruct", &bad, &"-o", &d.join("r.npy")]),
            "no checksum",
        );
        assert!(!d.join("r.npy").exists(), "{fmt}: {from}");
    }
    // A NaN in a core (the first entry of the first tensor's data).
    let ts = d.join("tucker.ts");
    ok(tnet(&[
        &"decompose",
        &input,
        &"--format",
        &"tucker",
        &"--rank",
        &"2",
        &"-o",
        &ts,
    ]));
    let mut bytes = std::fs::read(&ts).unwrap();
    let header = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    bytes[8 + header..8 + header + 8].copy_from_slice(&f64::NAN.to_le_bytes());
    let nan = d.join("nan.ts");
    std::fs::write(&nan, &bytes).unwrap();
    fails(tnet(&[&"info", &nan]), "invalid");
    fails(
        tnet(&[&"reconstruct", &nan, &"-o", &d.join("r.npy")]),
        "nan.ts",
    );
    assert!(leftovers(d).is_empty());
}

/// Replaces the container's `,"checksum":"<hex>"` (JSON inside the safetensors header's
/// JSON, so escaped) by spaces of the same length.
fn blank_checksum(bytes: &mut [u8]) {
    let key = b",\\\"checksum\\\":\\\"";
    let at = bytes
        .windows(key.len())
        .position(|w| w == key)
        .expect("the description has a checksum");
    let end = at + key.len() + 16 + 2;
    assert_eq!(&bytes[end - 2..end], b"\\\"");
    bytes[at..end].fill(b' ');
}

/// compress -> reconstruct of a model: every matching weight within --rel-eps (plus the
/// rounding of writing bf16/f16 back), non-matching, small, 1-D and integer entries kept
/// bit for bit; the table and the JSON report agree.
#[test]
fn compress_reconstruct_model() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let eps = 0.05;
    let mut entries = Vec::new();
    let mut originals = Vec::new();
    for (i, (rows, cols, dtype)) in [
        (128, 96, Dtype::F32),
        (96, 128, Dtype::BF16),
        (64, 64, Dtype::F16),
    ]
    .into_iter()
    .enumerate()
    {
        let modes =
            MatrixModes::balanced(rows, cols, tnet::compress::auto_order(rows, cols)).unwrap();
        let w = structured_weight(rows, cols, &modes, 4, 0.005, 20 + i as u64).mapv(|v| v as f32);
        let name = format!("layers.{i}.weight");
        // What the file holds after narrowing, as f32.
        let stored = Weight::new(name.clone(), dtype, DenseArray::F32(w));
        entries.push(Entry::Weight(stored));
        originals.push(name);
    }
    entries.push(Entry::Weight(Weight::new(
        "layers.0.bias",
        Dtype::F32,
        DenseArray::F32(ArrayD::ones(IxDyn(&[128]))),
    )));
    entries.push(Entry::Weight(Weight::new(
        "head.weight",
        Dtype::F32,
        DenseArray::F32(tnet::dense::random_normal(&[80, 64], 3)),
    )));
    entries.push(Entry::Weight(Weight::new(
        "tiny.weight",
        Dtype::F32,
        DenseArray::F32(tnet::dense::random_normal(&[8, 8], 4)),
    )));
    let model = d.join("model.safetensors");
    weights::write_safetensors(
        &model,
        &SafetensorsFile {
            entries,
            metadata: [("format".into(), "pt".into())].into(),
        },
    )
    .unwrap();
    let original = weights::read_safetensors(&model).unwrap();

    let out = d.join("model.tnet.safetensors");
    let o = ok(tnet(&[
        &"compress",
        &model,
        &"--format",
        &"ht",
        &"--rel-eps",
        &eps.to_string(),
        &"--include",
        &"layers.*.weight",
        &"--min-size",
        &"1000",
        &"-o",
        &out,
        &"--json",
    ]));
    let v = json(&o);
    let reports = v["tensors"].as_array().unwrap();
    assert_eq!(reports.len(), 6);
    for r in reports {
        let name = r["name"].as_str().unwrap();
        if originals.iter().any(|n| n == name) {
            assert_eq!(r["format"], "ht", "{r}");
            assert!(r["rel_error"].as_f64().unwrap() <= eps, "{r}");
            assert!(r["ratio"].as_f64().unwrap() > 1.0, "{r}");
        } else {
            assert!(r["format"].is_null() && r["kept_dense"].is_string(), "{r}");
        }
    }
    assert_eq!(v["totals"]["compressed"], 3);
    assert!(v["totals"]["ratio"].as_f64().unwrap() > 1.0);

    // The text table lists every tensor and the totals.
    let text = stdout(&ok(tnet(&[
        &"compress",
        &model,
        &"--rel-eps",
        &eps.to_string(),
        &"--include",
        &"layers",
        &"-o",
        &out,
    ])));
    for n in [
        "layers.0.weight",
        "layers.2.weight",
        "head.weight",
        "total:",
    ] {
        assert!(text.contains(n), "{n} missing: {text}");
    }

    let recon = d.join("recon.safetensors");
    ok(tnet(&[&"reconstruct", &out, &"-o", &recon]));
    let back = weights::read_safetensors(&recon).unwrap();
    assert_eq!(back.entries.len(), original.entries.len());
    assert_eq!(back.metadata.get("format").map(String::as_str), Some("pt"));
    assert!(!back.metadata.contains_key("tnet"));
    for e in &original.entries {
        let b = back
            .get(e.name())
            .unwrap_or_else(|| panic!("{} missing", e.name()));
        let (Entry::Weight(a), Entry::Weight(b)) = (e, b) else {
            panic!("float entries")
        };
        assert_eq!(a.dtype, b.dtype, "{}: dtype kept", a.name);
        if originals.contains(&a.name) {
            let err = rel_err(&a.data.clone().into_array(), &b.data.clone().into_array());
            // bf16 keeps 8 bits: rounding the rebuilt weight adds up to 2^-9 relative.
            assert!(err <= eps + 2f64.powi(-8), "{}: {err}", a.name);
        } else {
            assert_eq!(a, b, "{} must be kept unchanged", a.name);
        }
    }
    // info on the compressed model, and on the plain one.
    let info = json(&ok(tnet(&[&"info", &out, &"--json"])));
    assert_eq!(info["compressed"], true);
    assert_eq!(info["totals"]["compressed_tensors"], 3);
    let plain = json(&ok(tnet(&[&"info", &model, &"--json"])));
    assert_eq!(plain["compressed"], false);
    assert_eq!(plain["tensors"].as_array().unwrap().len(), 6);
    // One array of a compressed model to .npy, by name.
    let one = d.join("one.npy");
    fails(tnet(&[&"reconstruct", &out, &"-o", &one]), "--name");
    ok(tnet(&[
        &"reconstruct",
        &out,
        &"-o",
        &one,
        &"--name",
        &"layers.1.weight",
    ]));
    assert_eq!(weights::read_npy(&one).unwrap().data.shape(), &[96, 128]);
    assert!(leftovers(d).is_empty());
}

/// Bad files give a clear message naming the file and a non-zero exit, never a panic,
/// and leave no output behind.
#[test]
fn bad_files_fail_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let good = save_npy(
        d,
        "x",
        Dtype::F32,
        DenseArray::F32(smooth(4).mapv(|v| v as f32)),
    );
    let bytes = std::fs::read(&good).unwrap();
    let out = d.join("out.ts");

    fails(
        tnet(&[
            &"decompose",
            &d.join("missing.npy"),
            &"--rank",
            &"2",
            &"-o",
            &out,
        ]),
        "missing.npy",
    );
    let cut = d.join("cut.npy");
    std::fs::write(&cut, &bytes[..bytes.len() - 3]).unwrap();
    fails(
        tnet(&[&"decompose", &cut, &"--rank", &"2", &"-o", &out]),
        "cut.npy",
    );
    let hdr = d.join("hdr.npy");
    std::fs::write(&hdr, &bytes[..40]).unwrap();
    fails(
        tnet(&[&"decompose", &hdr, &"--rank", &"2", &"-o", &out]),
        "truncated",
    );
    let junk = d.join("junk.safetensors");
    std::fs::write(&junk, b"\xff\xff\xff\xff\xff\xff\xff\x7fjunk").unwrap();
    fails(
        tnet(&[&"compress", &junk, &"--rel-eps", &"0.1", &"-o", &out]),
        "junk.safetensors",
    );
    fails(tnet(&[&"info", &junk]), "junk.safetensors");
    let ints = d.join("ints.npy");
    let mut b = bytes.clone();
    let at = b.windows(3).position(|w| w == b"<f4").unwrap();
    b[at + 1] = b'i';
    std::fs::write(&ints, &b).unwrap();
    fails(
        tnet(&[&"decompose", &ints, &"--rank", &"2", &"-o", &out]),
        "<i4",
    );
    assert!(!out.exists(), "no output after a failure");

    // A compressed file: truncated, or with its description damaged, or a plain file.
    let ts = d.join("x.ts");
    ok(tnet(&[&"decompose", &good, &"--rank", &"3", &"-o", &ts]));
    let c = std::fs::read(&ts).unwrap();
    let trunc = d.join("trunc.ts");
    std::fs::write(&trunc, &c[..c.len() / 2]).unwrap();
    fails(
        tnet(&[&"reconstruct", &trunc, &"-o", &d.join("r.npy")]),
        "trunc.ts",
    );
    fails(tnet(&[&"info", &trunc]), "trunc.ts");
    // Change a rank in the description: the cores no longer fit.
    let text = String::from_utf8_lossy(&c).into_owned();
    let tampered = text.replacen(
        "tensor_shape\\\":[4,4,4,4]",
        "tensor_shape\\\":[4,4,4,5]",
        1,
    );
    assert_ne!(
        tampered, text,
        "the description is where the test expects it"
    );
    let bad = d.join("bad.ts");
    std::fs::write(&bad, tampered.as_bytes()).unwrap();
    fails(
        tnet(&[&"reconstruct", &bad, &"-o", &d.join("r.npy")]),
        "bad.ts",
    );
    let plain = d.join("plain.safetensors");
    weights::write_safetensors(
        &plain,
        &SafetensorsFile {
            entries: vec![Entry::Weight(weights::read_npy(&good).unwrap())],
            ..Default::default()
        },
    )
    .unwrap();
    fails(
        tnet(&[&"reconstruct", &plain, &"-o", &d.join("r.npy")]),
        "not a tnet compressed file",
    );
    assert!(!d.join("r.npy").exists());
    assert!(leftovers(d).is_empty());
}

/// Bad arguments give a usage message and a non-zero exit.
#[test]
fn bad_arguments_fail_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let x = save_npy(d, "x", Dtype::F64, DenseArray::F64(smooth(4)));
    let w = save_npy(
        d,
        "w",
        Dtype::F64,
        DenseArray::F64(tnet::dense::random_normal(&[12, 10], 1)),
    );
    let out = d.join("o.ts");
    for fmt in ["tt", "tr", "tucker", "bt"] {
        fails(
            tnet(&[
                &"decompose",
                &x,
                &"--format",
                &fmt,
                &"--rank",
                &"2",
                &"--tree",
                &"((0,1),(2,3))",
                &"-o",
                &out,
            ]),
            "--tree is only meaningful for --format ht",
        );
    }
    for fmt in ["ht", "tt", "tr", "tucker"] {
        fails(
            tnet(&[
                &"decompose",
                &x,
                &"--format",
                &fmt,
                &"--rank",
                &"2",
                &"--blocks",
                &"3",
                &"-o",
                &out,
            ]),
            "--blocks is only meaningful for --format bt",
        );
    }
    fails(
        tnet(&[
            &"decompose",
            &x,
            &"--format",
            &"bt",
            &"--rank",
            &"2",
            &"--blocks",
            &"0",
            &"-o",
            &out,
        ]),
        "at least 1 block",
    );
    fails(
        tnet(&[
            &"compress",
            &x,
            &"--format",
            &"tt",
            &"--blocks",
            &"2",
            &"--rel-eps",
            &"0.1",
            &"-o",
            &out,
        ]),
        "--blocks",
    );
    fails(
        tnet(&[
            &"decompose",
            &x,
            &"--format",
            &"cp",
            &"--rank",
            &"2",
            &"-o",
            &out,
        ]),
        "cp",
    );
    fails(tnet(&[&"decompose", &x, &"-o", &out]), "--rel-eps");
    fails(
        tnet(&[&"decompose", &x, &"--rel-eps", &"-1", &"-o", &out]),
        "rel_eps",
    );
    fails(
        tnet(&[&"decompose", &x, &"--rank", &"0", &"-o", &out]),
        "rank",
    );
    fails(
        tnet(&[
            &"decompose",
            &x,
            &"--rank",
            &"2",
            &"--tree",
            &"((0,1),2)",
            &"-o",
            &out,
        ]),
        "tree",
    );
    fails(
        tnet(&[
            &"decompose",
            &x,
            &"--rank",
            &"2",
            &"--tree",
            &"((0,1),(2,",
            &"-o",
            &out,
        ]),
        "parse",
    );
    fails(
        tnet(&[
            &"decompose",
            &x,
            &"--rank",
            &"2",
            &"--out-modes",
            &"2,2",
            &"--in-modes",
            &"2,2",
            &"-o",
            &out,
        ]),
        "2-D",
    );
    fails(
        tnet(&[
            &"decompose",
            &w,
            &"--rank",
            &"2",
            &"--out-modes",
            &"3,3",
            &"--in-modes",
            &"2,5",
            &"-o",
            &out,
        ]),
        "less than the length 12",
    );
    fails(
        tnet(&[
            &"decompose",
            &w,
            &"--rank",
            &"2",
            &"--out-modes",
            &"3,4",
            &"--in-modes",
            &"10",
            &"-o",
            &out,
        ]),
        "same",
    );
    fails(
        tnet(&[
            &"decompose",
            &w,
            &"--rank",
            &"2",
            &"--out-modes",
            &"3,a",
            &"--in-modes",
            &"2,5",
            &"-o",
            &out,
        ]),
        "positive integers",
    );
    fails(
        tnet(&[
            &"decompose",
            &w,
            &"--rank",
            &"2",
            &"--out-modes",
            &"3,4",
            &"-o",
            &out,
        ]),
        "--in-modes",
    );
    fails(
        tnet(&[&"decompose", &x, &"--rank", &"2", &"-o", &d.join("o.npy")]),
        "safetensors",
    );
    fails(
        tnet(&[&"decompose", &d.join("x.txt"), &"--rank", &"2", &"-o", &out]),
        "unknown file type",
    );
    fails(
        tnet(&[&"compress", &x, &"--rel-eps", &"0.1", &"-o", &out]),
        "decompose",
    );
    fails(tnet(&[&"frobnicate"]), "frobnicate");
    ok(tnet(&[&"decompose", &x, &"--rank", &"2", &"-o", &out]));
    fails(
        tnet(&[&"reconstruct", &out, &"-o", &d.join("r.npz")]),
        ".npz",
    );
    fails(
        tnet(&[
            &"reconstruct",
            &out,
            &"-o",
            &d.join("r.npy"),
            &"--name",
            &"nope",
        ]),
        "nope",
    );
    assert!(!out.with_file_name("o.npy").exists());
}

/// --help explains every command and its options.
#[test]
fn help_texts() {
    let top = stdout(&ok(tnet(&[&"--help"])));
    for c in ["decompose", "reconstruct", "info", "compress", "Examples"] {
        assert!(top.contains(c), "{c} missing from --help: {top}");
    }
    let dec = stdout(&ok(tnet(&[&"decompose", &"--help"])));
    for o in [
        "--format",
        "--rank",
        "--rel-eps",
        "--tree",
        "--in-modes",
        "--out-modes",
        "--json",
        "--blocks",
        "tucker",
    ] {
        assert!(dec.contains(o), "{o} missing from decompose --help: {dec}");
    }
    let comp = stdout(&ok(tnet(&[&"compress", &"--help"])));
    for o in ["--include", "--min-size", "--order", "--blocks", "glob"] {
        assert!(comp.contains(o), "{o} missing from compress --help: {comp}");
    }
}
