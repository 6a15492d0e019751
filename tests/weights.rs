//! Readers and writers of `.npy`, `.npz` and `.safetensors`: round trips for every dtype,
//! files written by NumPy (golden bytes), and truncated or corrupted files.

use std::io::Write;
use std::path::{Path, PathBuf};

use ndarray::{ArrayD, IxDyn};
use proptest::prelude::*;
use tnet::Error;
use tnet::weights::{self, DenseArray, Dtype, Entry, NpyFile, SafetensorsFile, Weight};

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

/// Values exactly representable in every dtype (multiples of 1/8 below 256), so that
/// narrowing to f16/bf16 is lossless.
fn exact_values(shape: &[usize], seed: u64) -> ArrayD<f32> {
    let r = tnet::dense::random_normal::<f64>(shape, seed);
    r.mapv(|v| ((v * 16.0).round() / 8.0) as f32)
}

fn data_for(dtype: Dtype, shape: &[usize], seed: u64) -> DenseArray {
    let a = exact_values(shape, seed);
    match dtype {
        Dtype::F64 => DenseArray::F64(a.mapv(f64::from)),
        _ => DenseArray::F32(a),
    }
}

fn shape_strategy() -> impl Strategy<Value = Vec<usize>> {
    proptest::collection::vec(1usize..5, 0..4)
}

fn dtype_strategy() -> impl Strategy<Value = Dtype> {
    prop_oneof![
        Just(Dtype::F16),
        Just(Dtype::BF16),
        Just(Dtype::F32),
        Just(Dtype::F64)
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// A weight written to .npy reads back with the same values and shape, and the same
    /// dtype (bf16 comes back as f32, since NumPy has no bfloat16).
    #[test]
    fn npy_roundtrip(shape in shape_strategy(), dtype in dtype_strategy(), seed in 0u64..1000) {
        let dir = tempfile::tempdir().unwrap();
        let w = Weight::new("w", dtype, data_for(dtype, &shape, seed));
        let p = dir.path().join("w.npy");
        weights::write_npy(&p, &w).unwrap();
        let back = weights::read_npy(&p).unwrap();
        prop_assert_eq!(&back.name, "w");
        prop_assert_eq!(back.dtype, if dtype == Dtype::BF16 { Dtype::F32 } else { dtype });
        prop_assert_eq!(back.data, w.data);
    }

    /// A safetensors file with one entry per dtype, a raw integer entry and metadata
    /// reads back identical.
    #[test]
    fn safetensors_roundtrip(shape in shape_strategy(), seed in 0u64..1000) {
        let dir = tempfile::tempdir().unwrap();
        let file = sample_file(&shape, seed);
        let p = dir.path().join("m.safetensors");
        weights::write_safetensors(&p, &file).unwrap();
        let back = weights::read_safetensors(&p).unwrap();
        prop_assert_eq!(&back.metadata, &file.metadata);
        prop_assert_eq!(back.entries.len(), file.entries.len());
        for e in &file.entries {
            prop_assert_eq!(back.get(e.name()), Some(e));
        }
    }
}

/// One weight per dtype, an I64 entry (read back raw) and metadata.
fn sample_file(shape: &[usize], seed: u64) -> SafetensorsFile {
    let mut entries: Vec<Entry> = [Dtype::F16, Dtype::BF16, Dtype::F32, Dtype::F64]
        .into_iter()
        .enumerate()
        .map(|(i, d)| {
            Entry::Weight(Weight::new(
                format!("layer.{d}"),
                d,
                data_for(d, shape, seed + i as u64),
            ))
        })
        .collect();
    // An int64 buffer, written through the public API by a round trip of a hand-made file.
    let ids = int64_entry();
    entries.push(ids);
    SafetensorsFile {
        entries,
        metadata: [("format".to_string(), "pt".to_string())].into(),
    }
}

/// An I64 entry `ids = [0, 1, 2]`, obtained by reading a hand-written safetensors file.
fn int64_entry() -> Entry {
    let dir = tempfile::tempdir().unwrap();
    let header = br#"{"ids":{"dtype":"I64","shape":[3],"data_offsets":[0,24]}}"#;
    let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
    bytes.extend_from_slice(header);
    for v in 0i64..3 {
        bytes.extend_from_slice(&v.to_le_bytes());
    }
    let p = write(dir.path(), "ids.safetensors", &bytes);
    let f = weights::read_safetensors(&p).unwrap();
    f.entries.into_iter().next().unwrap()
}

/// Integer entries are kept raw by `read_safetensors` and rejected with a clear error by
/// `read_weights`.
#[test]
fn non_float_dtypes_are_kept_raw_or_rejected() {
    let e = int64_entry();
    let Entry::Raw(r) = &e else {
        panic!("expected a raw entry, got {e:?}")
    };
    assert_eq!(r.dtype_name(), "I64");
    assert_eq!(r.shape, vec![3]);
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("ids.safetensors");
    weights::write_safetensors(
        &p,
        &SafetensorsFile {
            entries: vec![e],
            ..Default::default()
        },
    )
    .unwrap();
    let err = weights::read_weights(&p).unwrap_err();
    assert!(matches!(err, Error::Corrupt { path: Some(_), .. }), "{err}");
    assert!(err.to_string().contains("I64"), "{err}");
}

/// Files written by NumPy 2.4 read back with the values NumPy saved: big-endian Fortran
/// `float64`, `float16` (including its largest finite value), a 0-d array, and a
/// `savez_compressed` archive (deflate, zip64 headers).
///
/// Golden bytes from:
/// ```python
/// np.save(f, np.asfortranarray(np.array([[1.5,-2.0,3.25],[4.0,5.5,-6.75]], dtype='>f8')))
/// np.save(f, np.array([0.5,-1.0,65504.0], dtype='<f2'))
/// np.save(f, np.array(2.5, dtype='<f4'))
/// np.savez_compressed(f, a=np.array([[1.,2.],[3.,4.]], dtype='<f4'), b=np.array([7.], dtype='<f8'))
/// ```
#[test]
fn numpy_golden_files() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(dir.path(), "be.npy", &hex(NPY_BE_FORTRAN));
    let w = weights::read_npy(&p).unwrap();
    assert_eq!(w.dtype, Dtype::F64);
    let want =
        ArrayD::from_shape_vec(IxDyn(&[2, 3]), vec![1.5, -2.0, 3.25, 4.0, 5.5, -6.75]).unwrap();
    assert_eq!(w.data, DenseArray::F64(want));

    let p = write(dir.path(), "h.npy", &hex(NPY_F16));
    let w = weights::read_npy(&p).unwrap();
    assert_eq!(w.dtype, Dtype::F16);
    assert_eq!(
        w.data,
        DenseArray::F32(ArrayD::from_shape_vec(IxDyn(&[3]), vec![0.5, -1.0, 65504.0]).unwrap())
    );

    let p = write(dir.path(), "s.npy", &hex(NPY_SCALAR));
    let w = weights::read_npy(&p).unwrap();
    assert_eq!(w.data, DenseArray::F32(ArrayD::from_elem(IxDyn(&[]), 2.5)));

    let p = write(dir.path(), "m.npz", &hex(NPZ_COMPRESSED));
    let ws = weights::read_npz(&p).unwrap();
    assert_eq!(ws.len(), 2);
    assert_eq!(ws[0].name, "a");
    assert_eq!(
        ws[0].data,
        DenseArray::F32(ArrayD::from_shape_vec(IxDyn(&[2, 2]), vec![1.0, 2.0, 3.0, 4.0]).unwrap())
    );
    assert_eq!(ws[1].name, "b");
    assert_eq!(
        ws[1].data,
        DenseArray::F64(ArrayD::from_elem(IxDyn(&[1]), 7.0))
    );
    assert_eq!(weights::read_weights(&p).unwrap(), ws);
}

/// `NpyFile` borrows native `<f8`/`<f4` data from the mapping, in C and Fortran order,
/// and decodes what it cannot borrow (big-endian, `f16`) exactly as `read_npy` does; a
/// truncated file is refused when it is opened.
#[test]
fn mapped_npy_views_and_decodes() {
    let dir = tempfile::tempdir().unwrap();
    let x = ArrayD::from_shape_fn(IxDyn(&[3, 4, 5]), |i| (i[0] * 20 + i[1] * 5 + i[2]) as f64);
    let p = dir.path().join("x.npy");
    weights::write_npy(
        &p,
        &Weight::new("x", Dtype::F64, DenseArray::F64(x.clone())),
    )
    .unwrap();
    let f = NpyFile::open(&p).unwrap();
    assert_eq!(
        (f.name(), f.dtype(), f.shape()),
        ("x", Dtype::F64, &[3usize, 4, 5][..])
    );
    assert_eq!(f.view::<f64>().unwrap(), x.view());
    assert!(f.view::<f32>().is_none());
    assert_eq!(f.to_weight().unwrap(), weights::read_npy(&p).unwrap());

    let xf = x.mapv(|v| v as f32);
    let p32 = dir.path().join("y.npy");
    weights::write_npy(
        &p32,
        &Weight::new("y", Dtype::F32, DenseArray::F32(xf.clone())),
    )
    .unwrap();
    assert_eq!(
        NpyFile::open(&p32).unwrap().view::<f32>().unwrap(),
        xf.view()
    );

    // Big-endian Fortran order (NumPy's golden bytes): decoded, never borrowed.
    let be = write(dir.path(), "be.npy", &hex(NPY_BE_FORTRAN));
    let f = NpyFile::open(&be).unwrap();
    assert!(f.view::<f64>().is_none());
    assert_eq!(f.to_weight().unwrap(), weights::read_npy(&be).unwrap());
    // f16 is widened by decoding.
    let h = write(dir.path(), "h.npy", &hex(NPY_F16));
    let f = NpyFile::open(&h).unwrap();
    assert!(f.view::<f32>().is_none());
    assert_eq!(f.to_weight().unwrap().dtype, Dtype::F16);

    // Native Fortran order: a view with Fortran strides over the same values.
    let mut bytes = std::fs::read(&p).unwrap();
    let header_end = bytes.iter().position(|&b| b == b'\n').unwrap() + 1;
    let fortran: Vec<u8> = x
        .t()
        .as_standard_layout()
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .collect();
    let (from, to) = (b"'fortran_order': False", b"'fortran_order': True ");
    let at = bytes.windows(from.len()).position(|w| w == from).unwrap();
    bytes[at..at + to.len()].copy_from_slice(to);
    bytes.truncate(header_end);
    bytes.extend_from_slice(&fortran);
    let pf = write(dir.path(), "f.npy", &bytes);
    let f = NpyFile::open(&pf).unwrap();
    assert_eq!(f.view::<f64>().unwrap(), x.view());
    assert_eq!(f.to_weight().unwrap().data, DenseArray::F64(x.clone()));

    let full = std::fs::read(&p).unwrap();
    let cut = write(dir.path(), "cut.npy", &full[..full.len() - 8]);
    let e = NpyFile::open(&cut).err().unwrap();
    assert!(matches!(e, Error::Corrupt { path: Some(_), .. }), "{e}");
    assert!(e.to_string().contains("truncated"), "{e}");
    let empty = write(dir.path(), "empty.npy", b"");
    assert!(matches!(NpyFile::open(&empty), Err(Error::Corrupt { .. })));
}

const NPY_BE_FORTRAN: &str = "934e554d5059010076007b276465736372273a20273e6638272c2027666f727472616e5f6f72646572273a20547275652c20277368617065273a2028322c2033292c207d20202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020200a3ff80000000000004010000000000000c0000000000000004016000000000000400a000000000000c01b000000000000";
const NPY_F16: &str = "934e554d5059010076007b276465736372273a20273c6632272c2027666f727472616e5f6f72646572273a2046616c73652c20277368617065273a2028332c292c207d2020202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020200a003800bcff7b";
const NPY_SCALAR: &str = "934e554d5059010076007b276465736372273a20273c6634272c2027666f727472616e5f6f72646572273a2046616c73652c20277368617065273a2028292c207d20202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020200a00002040";
const NPZ_COMPRESSED: &str = "504b03042d0000000800000021004efb2075ffffffffffffffff05001400612e6e707901001000900000000000000053000000000000009bec17ea1b10c9c850c650ad9e925a9c5ca46ea5a06e9366a2aea3a09e965f54529498179f5f94920a12774bcc294e058a17672416a402f91a463a0a469a3a0ab50a64032e0686067b060606072002e2060700504b03042d000000080000002100f607aae5ffffffffffffffff05001400622e6e707901001000880000000000000049000000000000009bec17ea1b10c9c850c650ad9e925a9c5ca46ea5a06e9366a1aea3a09e965f54529498179f5f94920a12774bcc294e058a17672416a402f91a863a9a3a0ab50a14002e063090710000504b01022d032d0000000800000021004efb20755300000090000000050000000000000000000000800100000000612e6e7079504b01022d032d000000080000002100f607aae5490000008800000005000000000000000000000080018a000000622e6e7079504b05060000000002000200660000000a0100000000";

/// An .npz written with the zip crate (one stored, one deflated member, as `numpy.savez`
/// and `savez_compressed` do) reads back member by member.
#[test]
fn npz_stored_and_deflated_members() {
    let dir = tempfile::tempdir().unwrap();
    let npz = make_npz(dir.path());
    let ws = weights::read_npz(&npz).unwrap();
    let names: Vec<_> = ws.iter().map(|w| w.name.as_str()).collect();
    assert_eq!(names, ["w1", "w2"]);
    assert_eq!(ws[0].data, data_for(Dtype::F32, &[3, 4], 1));
    assert_eq!(ws[1].dtype, Dtype::F64);
    assert_eq!(ws[1].data, data_for(Dtype::F64, &[5], 2));
}

fn make_npz(dir: &Path) -> PathBuf {
    let mut members = Vec::new();
    for (name, dtype, shape, seed) in [
        ("w1", Dtype::F32, vec![3, 4], 1),
        ("w2", Dtype::F64, vec![5], 2),
    ] {
        let p = dir.join(format!("{name}.npy"));
        weights::write_npy(&p, &Weight::new(name, dtype, data_for(dtype, &shape, seed))).unwrap();
        members.push((format!("{name}.npy"), std::fs::read(&p).unwrap()));
    }
    let path = dir.join("m.npz");
    let mut zip = zip::ZipWriter::new(std::fs::File::create(&path).unwrap());
    for (i, (name, bytes)) in members.iter().enumerate() {
        let method = if i == 0 {
            zip::CompressionMethod::Stored
        } else {
            zip::CompressionMethod::Deflated
        };
        let opts = zip::write::SimpleFileOptions::default().compression_method(method);
        zip.start_file(name.as_str(), opts).unwrap();
        zip.write_all(bytes).unwrap();
    }
    zip.finish().unwrap();
    path
}

/// Writes every kind of file the readers accept and returns (path, reader) pairs.
fn sample_files(dir: &Path) -> Vec<PathBuf> {
    let npy = dir.join("w.npy");
    weights::write_npy(
        &npy,
        &Weight::new("w", Dtype::F32, data_for(Dtype::F32, &[4, 6], 3)),
    )
    .unwrap();
    let npy16 = dir.join("h.npy");
    weights::write_npy(
        &npy16,
        &Weight::new("h", Dtype::F16, data_for(Dtype::F16, &[3, 2, 2], 4)),
    )
    .unwrap();
    let st = dir.join("m.safetensors");
    weights::write_safetensors(&st, &sample_file(&[2, 3], 5)).unwrap();
    let npz = make_npz(dir);
    let golden = write(dir, "g.npz", &hex(NPZ_COMPRESSED));
    vec![npy, npy16, st, npz, golden]
}

fn read_any(p: &Path) -> Result<usize, Error> {
    // read_weights rejects the I64 entry; read_safetensors must be checked on its own too.
    if p.extension().is_some_and(|e| e == "safetensors") {
        return weights::read_safetensors(p).map(|f| f.entries.len());
    }
    weights::read_weights(p).map(|w| w.len())
}

fn assert_file_error(e: &Error, p: &Path) {
    match e {
        Error::Corrupt { path: Some(q), .. } | Error::Io { path: q, .. } => {
            assert_eq!(q, p, "the error must name the file: {e}")
        }
        other => panic!("expected Corrupt/Io naming {}, got {other}", p.display()),
    }
}

/// Every proper prefix of every file (truncation at any byte) is rejected with an error
/// naming the file, never a panic and never a silently shorter array.
#[test]
fn truncated_files_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    for src in sample_files(dir.path()) {
        let bytes = std::fs::read(&src).unwrap();
        let cut = src.with_file_name(format!(
            "cut.{}",
            src.extension().unwrap().to_string_lossy()
        ));
        for len in 0..bytes.len() {
            std::fs::write(&cut, &bytes[..len]).unwrap();
            let e = read_any(&cut).expect_err(&format!(
                "{} cut to {len} bytes was accepted",
                src.display()
            ));
            assert_file_error(&e, &cut);
        }
    }
}

/// Flipping bits anywhere in a file gives either a readable file (the flip hit data) or
/// an error naming the file; never a panic. Seeded positions, every byte of the headers.
#[test]
fn bit_flipped_files_never_panic() {
    use rand::Rng;
    let dir = tempfile::tempdir().unwrap();
    let mut g = tnet::dense::rng(17);
    for src in sample_files(dir.path()) {
        let bytes = std::fs::read(&src).unwrap();
        let bad = src.with_file_name(format!(
            "bad.{}",
            src.extension().unwrap().to_string_lossy()
        ));
        let mut positions: Vec<usize> = (0..bytes.len().min(200)).collect();
        positions.extend((0..200).map(|_| g.random_range(0..bytes.len())));
        let (mut ok, mut err) = (0, 0);
        for pos in positions {
            for mask in [0x01u8, 0x80, 0xff, 1 << g.random_range(0..8)] {
                let mut b = bytes.clone();
                b[pos] ^= mask;
                std::fs::write(&bad, &b).unwrap();
                match read_any(&bad) {
                    Ok(_) => ok += 1,
                    Err(e) => {
                        assert_file_error(&e, &bad);
                        err += 1
                    }
                }
            }
        }
        assert!(err > 0, "{}: no flip was detected", src.display());
        let _ = ok;
    }
}

/// Malformed headers, unsupported dtypes and mismatched data lengths give errors that say
/// what is wrong.
#[test]
fn malformed_npy_messages() {
    let dir = tempfile::tempdir().unwrap();
    let npy = |header: &str, data: &[u8]| {
        let mut h = header.to_string();
        while (10 + h.len() + 1) % 64 != 0 {
            h.push(' ');
        }
        h.push('\n');
        let mut b = b"\x93NUMPY\x01\x00".to_vec();
        b.extend_from_slice(&(h.len() as u16).to_le_bytes());
        b.extend_from_slice(h.as_bytes());
        b.extend_from_slice(data);
        b
    };
    let cases: [(&str, Vec<u8>, &str); 7] = [
        (
            "int",
            npy(
                "{'descr': '<i8', 'fortran_order': False, 'shape': (1,), }",
                &[0; 8],
            ),
            "'<i8'",
        ),
        (
            "complex",
            npy(
                "{'descr': '<c8', 'fortran_order': False, 'shape': (1,), }",
                &[0; 8],
            ),
            "'<c8'",
        ),
        (
            "record",
            npy(
                "{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (1,), }",
                &[0; 4],
            ),
            "structured",
        ),
        (
            "short",
            npy(
                "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }",
                &[0; 20],
            ),
            "needs 24 bytes",
        ),
        (
            "long",
            npy(
                "{'descr': '<f4', 'fortran_order': False, 'shape': (1,), }",
                &[0; 8],
            ),
            "needs 4 bytes",
        ),
        (
            "noshape",
            npy("{'descr': '<f4', 'fortran_order': False, }", &[0; 4]),
            "'shape'",
        ),
        (
            "huge",
            npy(
                "{'descr': '<f8', 'fortran_order': False, 'shape': (4294967296, 4294967296, 4294967296), }",
                &[],
            ),
            "too large",
        ),
    ];
    for (name, bytes, needle) in cases {
        let p = write(dir.path(), &format!("{name}.npy"), &bytes);
        let e = weights::read_npy(&p).unwrap_err();
        assert_file_error(&e, &p);
        assert!(e.to_string().contains(needle), "{name}: {e}");
    }
    let p = write(dir.path(), "magic.npy", b"PK\x03\x04 not numpy at all");
    assert!(
        weights::read_npy(&p)
            .unwrap_err()
            .to_string()
            .contains("magic")
    );
}

/// A missing file is an I/O error naming it; an unknown extension is a parameter error.
#[test]
fn missing_and_unknown_files() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("nope.safetensors");
    let e = weights::read_weights(&p).unwrap_err();
    assert!(matches!(&e, Error::Io { path, .. } if path == &p), "{e}");
    let e = weights::read_weights(dir.path().join("x.txt")).unwrap_err();
    assert!(matches!(e, Error::InvalidParameter { .. }), "{e}");
}

/// Writing narrows to the weight's dtype: f32 values written as f16 or bf16 come back
/// rounded to that precision (relative error within half an ulp).
#[test]
fn narrowing_on_write() {
    let dir = tempfile::tempdir().unwrap();
    let a = tnet::dense::random_normal::<f32>(&[7, 5], 9);
    for (dtype, ulp) in [(Dtype::F16, 2f32.powi(-10)), (Dtype::BF16, 2f32.powi(-7))] {
        let p = dir.path().join("n.safetensors");
        let f = SafetensorsFile {
            entries: vec![Entry::Weight(Weight::new(
                "a",
                dtype,
                DenseArray::F32(a.clone()),
            ))],
            ..Default::default()
        };
        weights::write_safetensors(&p, &f).unwrap();
        let back = weights::read_weights(&p).unwrap().pop().unwrap();
        assert_eq!(back.dtype, dtype);
        let DenseArray::F32(b) = back.data else {
            panic!("f16/bf16 widen to f32")
        };
        for (x, y) in a.iter().zip(b.iter()) {
            assert!(
                (x - y).abs() <= 0.5 * ulp * x.abs() + 1e-7,
                "{dtype}: {x} -> {y}"
            );
        }
    }
}

/// Two entries with one name cannot be written; the error says which.
#[test]
fn duplicate_names_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let w = Entry::Weight(Weight::new("a", Dtype::F32, data_for(Dtype::F32, &[2], 1)));
    let f = SafetensorsFile {
        entries: vec![w.clone(), w],
        ..Default::default()
    };
    let p = dir.path().join("d.safetensors");
    let e = weights::write_safetensors(&p, &f).unwrap_err();
    assert!(e.to_string().contains("'a'"), "{e}");
    assert!(!p.exists());
}

/// Values that do not fit the dtype they are written in are refused with the value and
/// its index (an f16 output above 65,504 became infinity), and NaN or infinite values
/// (a reconstruction whose product of finite cores overflows) are refused too, for
/// `.npy` and `.safetensors` alike; nothing is written.
#[test]
fn out_of_range_values_are_not_written_as_infinity() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        (
            Dtype::F16,
            DenseArray::F32(ArrayD::from_elem(IxDyn(&[3]), 7.0e4)),
            "f16",
        ),
        (
            Dtype::F16,
            DenseArray::F64(ArrayD::from_elem(IxDyn(&[3]), -1.0e5)),
            "f16",
        ),
        // .npy has no bfloat16: bf16 weights are written as f32.
        (
            Dtype::BF16,
            DenseArray::F64(ArrayD::from_elem(IxDyn(&[2]), 1.0e39)),
            "f32",
        ),
        (
            Dtype::F32,
            DenseArray::F64(ArrayD::from_elem(IxDyn(&[2]), 1.0e300)),
            "f32",
        ),
    ];
    for (k, (dtype, data, name)) in cases.into_iter().enumerate() {
        let w = Weight::new("w", dtype, data);
        let path = dir.path().join(format!("w{k}.npy"));
        let e = weights::write_npy(&path, &w).unwrap_err();
        assert!(
            e.to_string()
                .contains(&format!("outside the range of {name}")),
            "{e}"
        );
        assert!(!path.exists());
        let file = SafetensorsFile {
            entries: vec![Entry::Weight(w)],
            metadata: Default::default(),
        };
        assert!(matches!(
            weights::encode_safetensors(&file),
            Err(Error::InvalidParameter { .. })
        ));
    }
    // The largest finite f16 is written as itself.
    let edge = Weight::new(
        "w",
        Dtype::F16,
        DenseArray::F32(ArrayD::from_elem(IxDyn(&[1]), 65504.0)),
    );
    let path = dir.path().join("edge.npy");
    weights::write_npy(&path, &edge).unwrap();
    assert_eq!(weights::read_npy(&path).unwrap().data, edge.data);
    let inf = Weight::new(
        "w",
        Dtype::F32,
        DenseArray::F32(ArrayD::from_shape_vec(IxDyn(&[2]), vec![1.0, f32::INFINITY]).unwrap()),
    );
    assert!(matches!(
        weights::write_npy(dir.path().join("inf.npy"), &inf),
        Err(Error::NonFinite { index: 1, .. })
    ));
}

/// A header declaring more dimensions than NumPy or PyTorch allow (a 300 KB `.npy` of
/// shape `(1,) * 100000` took minutes in the decompositions' bookkeeping) is refused when
/// read, naming the count; 64 dimensions still load.
#[test]
fn too_many_dimensions_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let npy = |nd: usize| -> Vec<u8> {
        let mut header = format!(
            "{{'descr': '<f8', 'fortran_order': False, 'shape': ({}), }}",
            "1,".repeat(nd)
        );
        while (12 + header.len() + 1) % 64 != 0 {
            header.push(' ');
        }
        header.push('\n');
        let mut out = b"\x93NUMPY\x02\x00".to_vec();
        out.extend_from_slice(&(header.len() as u32).to_le_bytes());
        out.extend_from_slice(header.as_bytes());
        out.extend_from_slice(&1.5f64.to_le_bytes());
        out
    };
    let path = dir.path().join("deep.npy");
    std::fs::write(&path, npy(100_000)).unwrap();
    let e = weights::read_npy(&path).unwrap_err();
    assert!(
        matches!(e, Error::Corrupt { .. }) && e.to_string().contains("100000 dimensions"),
        "{e}"
    );
    std::fs::write(&path, npy(weights::MAX_NDIM)).unwrap();
    let w = weights::read_npy(&path).unwrap();
    assert_eq!(w.data.shape().len(), 64);
}
