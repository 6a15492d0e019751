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
//!
//! The fuzz crate (`fuzz/`, run with `cargo +nightly fuzz run <target>`) calls them on
//! libFuzzer's inputs; `tests/fuzz_corpus.rs` replays the committed corpus
//! (`fuzz/corpus/<target>/`) through them in every test run.

use crate::compress::CompressedFile;
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

/// Bytes read as a tnet compressed container.
pub fn container(data: &[u8]) {
    crate::limits::set_max_memory(LIMIT);
    let Ok(f) = weights::safetensors_from_bytes(data) else {
        return;
    };
    if let Ok(c) = CompressedFile::from_safetensors(f) {
        for (_, t) in &c.tensors {
            let _ = t.to_dense();
        }
    }
}
