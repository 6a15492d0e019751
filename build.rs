//! Enables the AVX-512 variants of the strided contraction kernel
//! (`src/matrices/kernel/gett.rs`) when the compiler has the AVX-512 intrinsics (stable
//! since Rust 1.89; the crate's minimum is 1.85).

use std::process::Command;

fn main() {
    println!("cargo:rustc-check-cfg=cfg(tnet_avx512)");
    println!("cargo:rerun-if-changed=build.rs");
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let minor = Command::new(rustc)
        .arg("--version")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|v| {
            v.split_whitespace()
                .nth(1)?
                .split('.')
                .nth(1)?
                .parse::<u32>()
                .ok()
        });
    if minor.is_some_and(|m| m >= 89) {
        println!("cargo:rustc-cfg=tnet_avx512");
    }
}
