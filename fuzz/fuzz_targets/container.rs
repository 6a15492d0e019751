//! Fuzz target `container`: arbitrary bytes through `tnet::fuzzing::container` (see `src/fuzzing.rs`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| tnet::fuzzing::container(data));
