//! Fuzz target `safetensors`: arbitrary bytes through `tnet::fuzzing::safetensors` (see `src/fuzzing.rs`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| tnet::fuzzing::safetensors(data));
