//! Fuzz target `run_json`: arbitrary bytes through `tnet::fuzzing::run_json` (see `src/fuzzing.rs`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| tnet::fuzzing::run_json(data));
