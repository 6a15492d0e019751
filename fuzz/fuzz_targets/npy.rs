//! Fuzz target `npy`: arbitrary bytes through `tnet::fuzzing::npy` (see `src/fuzzing.rs`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| tnet::fuzzing::npy(data));
