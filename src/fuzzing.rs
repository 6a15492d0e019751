//! Entry points of the fuzz targets and of the test that replays their corpus.
//!
//! Each function takes arbitrary bytes, reads them as one kind of file and, when that
//! succeeds, does what a user does next with what was read (rebuild the dense arrays,
//! write them back). None may panic, abort, hang or allocate beyond [`LIMIT`], which each
//! sets as the [memory limit](crate::limits) of the process.
//!
//! | target | reader | then |
//! |---|---|---|
//! | [`npy()`] | [`weights::npy_from_bytes`] | encode the array in its dtype |
//! | [`npz()`] | [`weights::npz_from_bytes`] | encode every member |
//! | [`safetensors()`] | [`weights::safetensors_from_bytes`] | encode the file again |
//! | [`container()`] | [`CompressedFile::from_safetensors`] | rebuild every tensor |
//! | [`run_files()`] | a run's `model.bin` and `checkpoint.bin` | load the parameters into a model |
//!
//! The fuzz crate (`fuzz/`, run with `cargo +nightly fuzz run <target>`) calls them on
//! libFuzzer's inputs; `tests/fuzz_corpus.rs` replays the committed corpus
//! (`fuzz/corpus/<target>/`) through them in every test run.

use crate::compress::CompressedFile;
use crate::models::{Lstm, LstmConfig};
use crate::train::Checkpoint;
use crate::weights;

/// The memory limit set by every entry point: 256 MiB.
pub const LIMIT: u64 = 256 << 20;

/// Bytes read as a `.npy` file.
pub fn npy(data: &[u8]) {
    crate::limits::set_max_memory(LIMIT);
    if let Ok(w) = weights::npy_from_bytes("x", data) {
        let _ = w.data.to_le_bytes(w.dtype);
    }
}

/// Bytes read as an `.npz` archive.
pub fn npz(data: &[u8]) {
    crate::limits::set_max_memory(LIMIT);
    if let Ok(ws) = weights::npz_from_bytes(data) {
        for w in ws {
            let _ = w.data.to_le_bytes(w.dtype);
        }
    }
}

/// Bytes read as a `.safetensors` file.
pub fn safetensors(data: &[u8]) {
    crate::limits::set_max_memory(LIMIT);
    if let Ok(f) = weights::safetensors_from_bytes(data) {
        let _ = weights::encode_safetensors(&f);
    }
}

/// Bytes read as a tnet compressed container: as they are (the checksum answers first),
/// then with the description's checksum recomputed over whatever the mutated bytes say,
/// so that mutations also reach the validation behind the checksum; every tensor read is
/// rebuilt.
pub fn container(data: &[u8]) {
    crate::limits::set_max_memory(LIMIT);
    let Ok(f) = weights::safetensors_from_bytes(data) else {
        return;
    };
    let sealed = f
        .metadata
        .get(crate::compress::METADATA_KEY)
        .and_then(|d| crate::compress::resealed(d, &f.metadata, &f.entries));
    let rebuild = |f| {
        if let Ok(c) = CompressedFile::from_safetensors(f) {
            for (_, t) in &c.tensors {
                let _ = t.to_dense();
            }
        }
    };
    if let Some(sealed) = sealed {
        let mut g = f.clone();
        g.metadata
            .insert(crate::compress::METADATA_KEY.to_string(), sealed);
        rebuild(g);
    }
    rebuild(f);
}

/// Bytes read as a run directory's `run.json`, sealed by the harness with the checksum of
/// whatever fields the mutated JSON holds (so mutations reach the fields rather than stop
/// at the checksum), then the model it names built under the memory limit, as `eval`,
/// `info` and `predict` do before loading `model.bin`.
pub fn run_json(data: &[u8]) {
    crate::limits::set_max_memory(LIMIT);
    let Ok(mut value) = serde_json::from_slice::<serde_json::Value>(data) else {
        return;
    };
    crate::train::run::seal(&mut value);
    if let Ok(spec) = crate::train::run::RunSpec::from_json(value.to_string().as_bytes()) {
        let _ = spec.model::<f32>();
    }
}

/// Bytes read as the body of a model file (`model.bin`) and of a training checkpoint
/// (`checkpoint.bin`) of a run directory, with the trailing FNV-1a checksum appended by the
/// harness so that mutations reach the header and the tensors rather than stopping at the
/// checksum. The model is loaded into a small dense LSTM (`N = 4`, `H = 3`, 2 classes) in
/// both precisions.
pub fn run_files(data: &[u8]) {
    crate::limits::set_max_memory(LIMIT);
    let mut bytes = data.to_vec();
    bytes.extend_from_slice(&crate::io::fnv1a(data).to_le_bytes());
    let path = std::path::Path::new("model.bin");
    let config = LstmConfig::new(4, 3);
    if let Ok(mut m) = Lstm::<f32>::dense(&config, 2, 0) {
        let _ = m.load_params_from_bytes(&bytes, path);
    }
    if let Ok(mut m) = Lstm::<f64>::dense(&config, 2, 0) {
        let _ = m.load_params_from_bytes(&bytes, path);
    }
    let _ = Checkpoint::<f32>::from_bytes(&bytes);
    let _ = Checkpoint::<f64>::from_bytes(&bytes);
}
