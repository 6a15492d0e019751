//! Saving and loading HT tensors: exact round trips, and every damaged file gives an
//! error (never a panic, never an invalid tensor); atomic writes leave nothing behind.
mod common;

use std::path::{Path, PathBuf};

use common::shape_and_tree;
use proptest::prelude::*;
use serde_json::Value;
use tnet::{DimTree, Error, HtTensor, Scalar};

/// A fresh, empty directory for one test, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        let p = std::env::temp_dir().join(format!("tnet-io-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
    fn path(&self, file: &str) -> PathBuf {
        self.0.join(file)
    }
    fn entries(&self) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(&self.0)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn sample<T: Scalar>() -> HtTensor<T> {
    HtTensor::<T>::random(&"((0,1),(2,3))".parse().unwrap(), &[2, 3, 4, 3], 2, 7).unwrap()
}

fn round_trip<T: Scalar>(x: &HtTensor<T>, dir: &TempDir, file: &str) {
    let p = dir.path(file);
    x.save(&p).unwrap();
    let y = HtTensor::<T>::load(&p).unwrap();
    assert_eq!(&y, x, "bit-exact round trip");
    // serde directly, too.
    let json = serde_json::to_string(x).unwrap();
    assert_eq!(&serde_json::from_str::<HtTensor<T>>(&json).unwrap(), x);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, .. ProptestConfig::default() })]

    /// save then load gives back the identical tensor, bit for bit, in f64 and f32, on
    /// random trees and ranks.
    #[test]
    fn save_load_round_trip((shape, tree) in shape_and_tree(1..=6, 1..=5, 5000), rank in 1usize..4, seed in any::<u64>()) {
        let dir = TempDir::new(&format!("rt-{seed}"));
        round_trip(&HtTensor::<f64>::random(&tree, &shape, rank, seed).unwrap(), &dir, "x64.json");
        round_trip(&HtTensor::<f32>::random(&tree, &shape, rank, seed).unwrap(), &dir, "x32.json");
        prop_assert_eq!(dir.entries(), vec!["x32.json".to_string(), "x64.json".to_string()]);
    }
}

/// Extreme values (tiny, huge, subnormal, negative zero) survive the round trip exactly.
#[test]
fn extreme_values_round_trip() {
    let dir = TempDir::new("extreme");
    let x = sample::<f64>();
    let (t, s, mut nodes) = x.into_parts();
    if let tnet::HtNode::Transfer(b) = &mut nodes[0] {
        let vals = [1e-300, -1.7e308, 5e-324, -0.0];
        for (v, w) in b.iter_mut().zip(vals) {
            *v = w;
        }
    }
    let x = HtTensor::try_new(t, s, nodes).unwrap();
    round_trip(&x, &dir, "extreme.json");
    let (t, s, mut nodes) = sample::<f32>().into_parts();
    if let tnet::HtNode::Leaf(u) = &mut nodes[2] {
        let vals = [3.4e38, -1e-45, 1.17e-38, -0.0];
        for (v, w) in u.iter_mut().zip(vals) {
            *v = w;
        }
    }
    round_trip(
        &HtTensor::try_new(t, s, nodes).unwrap(),
        &dir,
        "extreme32.json",
    );
}

/// A deep linear tree (beyond serde_json's nesting limit of 128) saves and loads.
#[test]
fn deep_tree_round_trip() {
    let dir = TempDir::new("deep");
    let d = 200;
    let x = HtTensor::<f64>::random(&DimTree::linear(d).unwrap(), &vec![2; d], 2, 1).unwrap();
    round_trip(&x, &dir, "deep.json");
}

/// The JSON of `sample::<f64>()` as a value, and a helper writing an edited copy.
fn json_of<T: Scalar>(x: &HtTensor<T>) -> Value {
    serde_json::to_value(x).unwrap()
}

fn load_edited<T: Scalar>(dir: &TempDir, v: &Value) -> Result<HtTensor<T>, Error> {
    let p = dir.path("edited.json");
    std::fs::write(&p, serde_json::to_vec(v).unwrap()).unwrap();
    HtTensor::<T>::load(&p)
}

fn is_corrupt_at(r: &Result<impl std::fmt::Debug, Error>, p: &Path) -> bool {
    matches!(r, Err(Error::Corrupt { path: Some(q), .. }) if q == p)
}

/// A missing file is Io (naming the path); a directory is Io; an empty file is Corrupt.
#[test]
fn missing_and_unreadable_files() {
    let dir = TempDir::new("missing");
    let p = dir.path("nope.json");
    match HtTensor::<f64>::load(&p) {
        Err(Error::Io { path, source }) => {
            assert_eq!(path, p);
            assert_eq!(source.kind(), std::io::ErrorKind::NotFound);
        }
        other => panic!("missing file: {other:?}"),
    }
    assert!(matches!(
        HtTensor::<f64>::load(&dir.0),
        Err(Error::Io { .. })
    ));
    let empty = dir.path("empty.json");
    std::fs::write(&empty, b"").unwrap();
    assert!(is_corrupt_at(&HtTensor::<f64>::load(&empty), &empty));
}

/// A file cut anywhere is Corrupt (prefixes spread over the file, and every one of the
/// last bytes).
#[test]
fn truncated_files() {
    let dir = TempDir::new("truncated");
    let p = dir.path("x.json");
    let x = HtTensor::<f64>::random(&"(0,(1,2))".parse().unwrap(), &[2, 2, 3], 2, 1).unwrap();
    x.save(&p).unwrap();
    let bytes = std::fs::read(&p).unwrap();
    let cut = dir.path("cut.json");
    let n = bytes.len();
    let lens = (0..n).step_by(n / 150 + 1).chain(n.saturating_sub(40)..n);
    for len in lens {
        std::fs::write(&cut, &bytes[..len]).unwrap();
        let r = HtTensor::<f64>::load(&cut);
        assert!(
            is_corrupt_at(&r, &cut),
            "cut at {len}/{}: {r:?}",
            bytes.len()
        );
    }
}

/// Edited headers: another magic or dtype is Corrupt, another version is Version, a
/// missing field is Corrupt.
#[test]
fn edited_headers() {
    let dir = TempDir::new("headers");
    let edited = dir.path("edited.json");
    let base = json_of(&sample::<f64>());
    let mut v = base.clone();
    v["format"] = "tnet-tt".into();
    assert!(is_corrupt_at(&load_edited::<f64>(&dir, &v), &edited));
    let mut v = base.clone();
    v["version"] = 2.into();
    assert!(matches!(
        load_edited::<f64>(&dir, &v),
        Err(Error::Version {
            found: 2,
            supported: 1
        })
    ));
    let mut v = base.clone();
    v["version"] = (-1).into();
    assert!(is_corrupt_at(&load_edited::<f64>(&dir, &v), &edited));
    let mut v = base.clone();
    v["dtype"] = "f32".into();
    assert!(is_corrupt_at(&load_edited::<f64>(&dir, &v), &edited));
    // An f64 file read as f32 and an f32 file read as f64.
    assert!(is_corrupt_at(&load_edited::<f32>(&dir, &base), &edited));
    assert!(is_corrupt_at(
        &load_edited::<f64>(&dir, &json_of(&sample::<f32>())),
        &edited
    ));
    for field in ["format", "version", "dtype", "tree", "shape", "nodes"] {
        let mut v = base.clone();
        v.as_object_mut().unwrap().remove(field);
        assert!(
            is_corrupt_at(&load_edited::<f64>(&dir, &v), &edited),
            "without {field}"
        );
    }
    assert!(is_corrupt_at(
        &load_edited::<f64>(&dir, &Value::Null),
        &edited
    ));
    assert!(is_corrupt_at(
        &load_edited::<f64>(&dir, &serde_json::json!([1, 2])),
        &edited
    ));
}

/// Edited bodies: a shape entry, a rank (consistently re-sized array), the root rank, the
/// tree (invalid, or of another order), node data (wrong length, null, overflowing
/// numbers, strings) all give Corrupt, never an invalid tensor.
#[test]
fn edited_bodies() {
    let dir = TempDir::new("bodies");
    let edited = dir.path("edited.json");
    let base = json_of(&sample::<f64>());
    // Node ids on ((0,1),(2,3)): 0 root, 1 (0,1), 2 leaf 0, 3 leaf 1, 4 (2,3), 5 leaf 2, 6 leaf 3.
    let leaf = |v: &mut Value, t: usize| -> Value { v["nodes"][t]["Leaf"].clone() };
    let mut edits: Vec<(&str, Value)> = Vec::new();
    let mut v = base.clone();
    v["shape"][0] = 3.into();
    edits.push(("shape entry changed", v));
    let mut v = base.clone();
    v["shape"].as_array_mut().unwrap().push(2.into());
    edits.push(("extra shape entry", v));
    let mut v = base.clone();
    v["shape"][1] = 0.into();
    edits.push(("zero shape entry", v));
    let mut v = base.clone();
    v["shape"][1] = (-3).into();
    edits.push(("negative shape entry", v));
    // Drop the last column of leaf 3 (dim and data consistent): its rank no longer
    // matches the parent's transfer tensor.
    let mut v = base.clone();
    let mut l = leaf(&mut v, 3);
    let (rows, cols) = (
        l["dim"][0].as_u64().unwrap() as usize,
        l["dim"][1].as_u64().unwrap() as usize,
    );
    let data: Vec<Value> = l["data"]
        .as_array()
        .unwrap()
        .chunks(cols)
        .flat_map(|r| r[..cols - 1].to_vec())
        .collect();
    l["dim"] = serde_json::json!([rows, cols - 1]);
    l["data"] = Value::Array(data);
    v["nodes"][3]["Leaf"] = l;
    edits.push(("leaf rank changed", v));
    // Root rank 2: dim (k_l, k_r, 2) with the data doubled.
    let mut v = base.clone();
    let root = &mut v["nodes"][0]["Transfer"];
    let d = root["dim"].clone();
    root["dim"] = serde_json::json!([d[0], d[1], 2]);
    let data: Vec<Value> = root["data"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|x| [x.clone(), x.clone()])
        .collect();
    root["data"] = Value::Array(data);
    edits.push(("root rank 2", v));
    let mut v = base.clone();
    v["nodes"][5]["Leaf"]["dim"][0] = 5.into();
    edits.push(("array dim inconsistent with its data", v));
    let mut v = base.clone();
    v["nodes"][5]["Leaf"]["data"].as_array_mut().unwrap().pop();
    edits.push(("array data too short", v));
    let mut v = base.clone();
    v["nodes"][5]["Leaf"]["data"][0] = Value::Null;
    edits.push(("null (how JSON writes NaN)", v));
    let mut v = base.clone();
    v["nodes"][5]["Leaf"]["data"][0] = "1.0".into();
    edits.push(("string number", v));
    let mut v = base.clone();
    let l = leaf(&mut v, 5);
    v["nodes"][5] = serde_json::json!({ "Transfer": l });
    edits.push(("leaf turned into a transfer tensor", v));
    let mut v = base.clone();
    v["nodes"].as_array_mut().unwrap().swap(2, 5);
    edits.push(("two leaves swapped", v));
    let mut v = base.clone();
    v["nodes"].as_array_mut().unwrap().pop();
    edits.push(("a node missing", v));
    for (tree, why) in [
        ("((0,1),(2,2))", "mode twice"),
        ("((0,1),(2,4))", "mode out of range"),
        ("((0,1),(2,3,4))", "non-binary"),
        ("((0,1),2)", "another order"),
        ("(((0,1),2),(3,4))", "another order"),
        ("", "empty"),
    ] {
        let mut v = base.clone();
        v["tree"] = tree.into();
        edits.push((why, v));
    }
    let mut v = base.clone();
    v["tree"] = serde_json::json!([[0, 1], [2, 3]]);
    edits.push(("tree as nested arrays", v));
    for (what, v) in &edits {
        let r = load_edited::<f64>(&dir, v);
        assert!(is_corrupt_at(&r, &edited), "{what}: {r:?}");
    }
    // A reordering of the leaves that is still a valid tree of the same order but puts
    // bases of the wrong sizes under the modes.
    let mut v = base.clone();
    v["tree"] = "((1,0),(2,3))".into();
    assert!(is_corrupt_at(&load_edited::<f64>(&dir, &v), &edited));
    // Overflowing numbers in the text: 1e999 is a parse error; 1e300 is finite in f64 but
    // infinite in f32.
    let text = serde_json::to_string(&json_of(&sample::<f32>())).unwrap();
    let first = text.find("\"data\":[").unwrap() + "\"data\":[".len();
    let end = first + text[first..].find([',', ']']).unwrap();
    for huge in ["1e999", "1e300", "-1e300"] {
        let bad = format!("{}{huge}{}", &text[..first], &text[end..]);
        std::fs::write(&edited, bad).unwrap();
        let r = HtTensor::<f32>::load(&edited);
        assert!(is_corrupt_at(&r, &edited), "{huge}: {r:?}");
    }
}

/// Random bit flips and byte edits never panic: the result is a valid tensor (when the
/// flip only changed a digit) or Corrupt / Version.
#[test]
fn bit_flips_never_panic() {
    let dir = TempDir::new("flips");
    let p = dir.path("x.json");
    let x = HtTensor::<f64>::random(&"((0,1),2)".parse().unwrap(), &[2, 3, 2], 2, 3).unwrap();
    x.save(&p).unwrap();
    let bytes = std::fs::read(&p).unwrap();
    let flipped = dir.path("flipped.json");
    let mut g = tnet::dense::rng(99);
    let (mut ok, mut bad) = (0, 0);
    for i in 0..300 {
        let mut b = bytes.clone();
        let pos = rand::Rng::random_range(&mut g, 0..b.len());
        if i % 2 == 0 {
            b[pos] ^= 1 << rand::Rng::random_range(&mut g, 0..8);
        } else {
            b[pos] = b"0123456789-+.eE,[]{}\": nul"[rand::Rng::random_range(&mut g, 0..26)];
        }
        std::fs::write(&flipped, &b).unwrap();
        match HtTensor::<f64>::load(&flipped) {
            Ok(y) => {
                // Whatever loaded satisfies every invariant.
                let (t, s, n) = y.into_parts();
                HtTensor::try_new(t, s, n).unwrap();
                ok += 1;
            }
            Err(Error::Corrupt { path: Some(q), .. }) if q == flipped => bad += 1,
            Err(Error::Version { .. }) => bad += 1,
            Err(e) => panic!("flip at {pos}: unexpected error {e:?}"),
        }
    }
    assert!(bad > 0 && ok > 0, "{ok} loaded, {bad} rejected");
}

/// Writes are atomic: no temporary file is left, an existing file is replaced whole, and a
/// failed write (missing directory, target is a directory) errors cleanly without
/// touching the target.
#[test]
fn atomic_writes() {
    let dir = TempDir::new("atomic");
    let p = dir.path("x.json");
    let a = sample::<f64>();
    let b = HtTensor::<f64>::random(&"(0,1)".parse().unwrap(), &[40, 50], 4, 1).unwrap();
    a.save(&p).unwrap();
    b.save(&p).unwrap();
    assert_eq!(HtTensor::<f64>::load(&p).unwrap(), b);
    a.save(&p).unwrap();
    assert_eq!(
        HtTensor::<f64>::load(&p).unwrap(),
        a,
        "a shorter file replaces a longer one whole"
    );
    assert_eq!(dir.entries(), vec!["x.json".to_string()]);
    // Into a directory that does not exist.
    let missing = dir.path("no/such/dir/x.json");
    assert!(matches!(a.save(&missing), Err(Error::Io { path, .. }) if path == missing));
    assert!(!dir.path("no").exists());
    // Onto an existing directory: error, the directory and its content stay.
    let sub = dir.path("sub");
    std::fs::create_dir(&sub).unwrap();
    std::fs::write(sub.join("keep"), b"k").unwrap();
    assert!(matches!(a.save(&sub), Err(Error::Io { .. })));
    assert_eq!(std::fs::read(sub.join("keep")).unwrap(), b"k");
    assert_eq!(dir.entries(), vec!["sub".to_string(), "x.json".to_string()]);
    assert_eq!(HtTensor::<f64>::load(&p).unwrap(), a);
    // A relative path in the current directory goes through the same code path.
    let rel = PathBuf::from(format!("tnet-io-rel-{}.json", std::process::id()));
    a.save(&rel).unwrap();
    assert_eq!(HtTensor::<f64>::load(&rel).unwrap(), a);
    std::fs::remove_file(&rel).unwrap();
}

/// Concurrent saves to one path from several threads: every save succeeds, the file
/// always loads as one of the tensors written, and no temporary file is left behind.
#[test]
fn concurrent_saves_to_one_path() {
    let dir = TempDir::new("concurrent");
    let p = dir.path("x.json");
    // Files of very different lengths, so interleaved writes could not go unnoticed.
    let tensors: Vec<HtTensor<f64>> = (0..4)
        .map(|i| {
            HtTensor::random(
                &"((0,1),2)".parse().unwrap(),
                &[3 + 20 * i, 4, 5],
                1 + i,
                i as u64,
            )
            .unwrap()
        })
        .collect();
    let all = &tensors;
    std::thread::scope(|s| {
        for x in all {
            let p = &p;
            s.spawn(move || {
                for _ in 0..15 {
                    x.save(p).unwrap();
                    let y = HtTensor::<f64>::load(p).unwrap();
                    assert!(all.contains(&y));
                }
            });
        }
    });
    assert!(tensors.contains(&HtTensor::<f64>::load(&p).unwrap()));
    assert_eq!(dir.entries(), vec!["x.json".to_string()]);
}

/// An atomic write refuses to replace what is not a regular file (a directory, a device
/// such as `/dev/null`): `-o /dev/full` used to "succeed" by replacing the device node.
/// A regular file, or a link to one, is replaced as before.
#[test]
fn atomic_writes_refuse_non_regular_targets() {
    let dir = tempfile::tempdir().unwrap();
    let sub = dir.path().join("a_directory");
    std::fs::create_dir(&sub).unwrap();
    let e = tnet::io::write_atomic(&sub, b"x").unwrap_err();
    assert!(e.to_string().contains("not a regular file"), "{e}");
    assert!(sub.is_dir());
    #[cfg(unix)]
    {
        let e = tnet::io::write_atomic(std::path::Path::new("/dev/null"), b"x").unwrap_err();
        assert!(e.to_string().contains("not a regular file"), "{e}");
        let target = dir.path().join("target.bin");
        std::fs::write(&target, b"old").unwrap();
        let link = dir.path().join("link.bin");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        tnet::io::write_atomic(&link, b"new").unwrap();
        assert_eq!(std::fs::read(&link).unwrap(), b"new");
    }
    let file = dir.path().join("f.bin");
    tnet::io::write_atomic(&file, b"one").unwrap();
    tnet::io::write_atomic(&file, b"two").unwrap();
    assert_eq!(std::fs::read(&file).unwrap(), b"two");
}

/// The temporary file of a write whose process was killed (Ctrl-C during a save) is
/// removed by the next write to the same path; another path's, and this process's own,
/// are left alone.
#[cfg(target_os = "linux")]
#[test]
fn atomic_writes_remove_temporaries_of_killed_processes() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // 999999999 is above Linux's largest process id, so no such process runs.
    let stale = d.join(".model.bin.tmp-999999999-0");
    let other = d.join(".other.bin.tmp-999999999-0");
    let own = d.join(format!(".model.bin.tmp-{}-77", std::process::id()));
    for p in [&stale, &other, &own] {
        std::fs::write(p, b"partial").unwrap();
    }
    tnet::io::write_atomic(&d.join("model.bin"), b"whole").unwrap();
    assert_eq!(std::fs::read(d.join("model.bin")).unwrap(), b"whole");
    assert!(!stale.exists());
    assert!(other.exists() && own.exists());
}
