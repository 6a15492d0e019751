//! Fuzz target `npz`: arbitrary bytes through `tnet::fuzzing::npz` (see `src/fuzzing.rs`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| tnet::fuzzing::npz(data));
