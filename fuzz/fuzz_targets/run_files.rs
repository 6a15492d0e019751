//! Fuzz target `run_files`: arbitrary bytes through `tnet::fuzzing::run_files` (see `src/fuzzing.rs`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| tnet::fuzzing::run_files(data));
