//! The memory limit: sizes that come from outside are checked before they are allocated.
//!
//! A file's header, a compressed container's modes or an option such as `--hidden` can
//! declare any size. A 5 KB container declaring a `1000^6` tensor is self-consistent, and
//! rebuilding it would ask the allocator for 8 PB, which aborts the process. Every
//! allocation whose size is derived from such a declaration is therefore compared with one
//! budget first and refused with [`Error::TooLarge`], which names what needed the memory,
//! how much, and how to raise the limit:
//!
//! | where | what is checked |
//! |---|---|
//! | [`weights::read_npz`](crate::weights::read_npz) | each member's declared size (and the inflated bytes never exceed it) |
//! | [`compress::CompressedTensor::to_dense`](crate::compress::CompressedTensor::to_dense) and the containers' `to_dense` | the dense arrays |
//! | [`compress::MatrixModes::new`](crate::compress::MatrixModes::new) | the padded weight matrix |
//! | block-term fits | the blocks' parameters |
//! | [`models::zoo::build`](crate::models::zoo::build), [`models::Lstm`](crate::models::Lstm) | parameters, gradients and optimiser state |
//!
//! Arrays read from `.npy` and `.safetensors` need no check: their data must be present in
//! the file, so they are bounded by its length.
//!
//! The limit is, in order of precedence: [`set_max_memory`] (the CLI's `--max-memory`),
//! the environment variable `TNET_MAX_MEMORY`, the machine's physical memory (Linux:
//! `MemTotal` of `/proc/meminfo`), or 16 GiB where that is unknown. Sizes are given as
//! bytes with an optional suffix, `K`, `M`, `G`, `T` (powers of 1024; `KiB`/`KB` read
//! the same), see [`parse_bytes`].
//!
//! # Example
//! ```
//! use tnet::limits;
//! limits::set_max_memory(1 << 20); // 1 MiB
//! let err = limits::check_elements("a test array", &[1024, 1024], 8).unwrap_err();
//! assert!(err.to_string().contains("8.0 MiB"));
//! limits::check_elements("a small array", &[16, 16], 8).unwrap();
//! limits::set_max_memory(0); // back to the default
//! assert_eq!(limits::parse_bytes("2G").unwrap(), 2 << 30);
//! ```

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::{Error, Result};

/// The limit set by [`set_max_memory`]; 0 when unset.
static LIMIT: AtomicU64 = AtomicU64::new(0);

/// The limit used when none is set: 16 GiB.
pub const FALLBACK_LIMIT: u64 = 16 << 30;

/// Sets the memory limit for this process (0 restores the default, see the module docs).
pub fn set_max_memory(bytes: u64) {
    LIMIT.store(bytes, Ordering::Relaxed);
}

/// The memory limit in bytes in force now.
pub fn max_memory() -> u64 {
    match LIMIT.load(Ordering::Relaxed) {
        0 => default_limit(),
        n => n,
    }
}

/// `TNET_MAX_MEMORY`, else the physical memory, else [`FALLBACK_LIMIT`]; read once.
fn default_limit() -> u64 {
    static DEFAULT: OnceLock<u64> = OnceLock::new();
    *DEFAULT.get_or_init(|| {
        std::env::var("TNET_MAX_MEMORY")
            .ok()
            .and_then(|s| parse_bytes(&s).ok())
            .filter(|&b| b > 0)
            .or_else(physical_memory)
            .unwrap_or(FALLBACK_LIMIT)
    })
}

/// `MemTotal` of `/proc/meminfo`, in bytes.
fn physical_memory() -> Option<u64> {
    let info = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = info.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    kib.checked_mul(1024)
}

/// A size in bytes from text: a non-negative number with an optional suffix `K`, `M`,
/// `G` or `T` (powers of 1024; `KiB`, `KB`, `k` and `B` are accepted), e.g. `512M`,
/// `8G`, `1.5GiB`, `1000000`.
///
/// # Errors
/// [`Error::InvalidParameter`] (`max_memory`) for anything else, or a size beyond `u64`.
pub fn parse_bytes(s: &str) -> Result<u64> {
    let bad = || {
        Error::param(
            "max_memory",
            format!("`{s}` is not a size (examples: 512M, 8G, 1000000)"),
        )
    };
    let t = s.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (number, suffix) = t.split_at(split);
    let value: f64 = number.parse().map_err(|_| bad())?;
    let unit = match suffix.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1u64,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        "t" | "tb" | "tib" => 1 << 40,
        _ => return Err(bad()),
    };
    let bytes = value * unit as f64;
    if !(bytes.is_finite() && bytes >= 0.0 && bytes < u64::MAX as f64) {
        return Err(bad());
    }
    Ok(bytes as u64)
}

/// `bytes` for people: `8.0 MiB`, `2.0 PiB`.
pub fn human_bytes(bytes: u128) -> String {
    const UNITS: [&str; 7] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    let mut v = bytes as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

/// Checks that `bytes` fit the limit.
///
/// # Errors
/// [`Error::TooLarge`] naming `context` if they do not.
pub fn check_bytes(context: &'static str, bytes: u128) -> Result<()> {
    let limit = max_memory();
    if bytes > limit as u128 {
        return Err(Error::TooLarge {
            context,
            bytes,
            limit,
        });
    }
    Ok(())
}

/// Checks that an array of `shape` with `elem_bytes` bytes per entry fits the limit (the
/// product is taken without overflow).
///
/// # Errors
/// [`Error::TooLarge`] naming `context` if it does not.
pub fn check_elements(context: &'static str, shape: &[usize], elem_bytes: usize) -> Result<()> {
    check_bytes(context, elements(shape).saturating_mul(elem_bytes as u128))
}

/// Checks the parameters of `n_blocks` Tucker blocks of multilinear ranks `ranks` on modes
/// of sizes `modes`: `n_blocks (Π R_k + Σ n_k R_k)` entries of `T`.
pub(crate) fn check_block_term<T>(
    context: &'static str,
    modes: &[usize],
    ranks: &[usize],
    n_blocks: usize,
) -> Result<()> {
    let per_block = modes
        .iter()
        .zip(ranks)
        .fold(elements(ranks), |acc, (&n, &r)| {
            acc.saturating_add(n as u128 * r as u128)
        });
    check_bytes(
        context,
        per_block
            .saturating_mul(n_blocks as u128)
            .saturating_mul(std::mem::size_of::<T>() as u128),
    )
}

/// The number of entries of `shape`, saturating in `u128`.
pub fn elements(shape: &[usize]) -> u128 {
    shape
        .iter()
        .fold(1u128, |a, &n| a.saturating_mul(n as u128))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_with_binary_suffixes() {
        assert_eq!(parse_bytes("1000").unwrap(), 1000);
        assert_eq!(parse_bytes("512M").unwrap(), 512 << 20);
        assert_eq!(parse_bytes("1.5GiB").unwrap(), 3 << 29);
        assert_eq!(parse_bytes(" 2 t ").unwrap(), 2 << 40);
        for bad in ["", "G", "-1G", "1Q", "1e400", "NaN", "1..2M"] {
            assert!(parse_bytes(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn human_sizes_name_the_unit() {
        assert_eq!(human_bytes(17), "17 B");
        assert_eq!(human_bytes(3 << 20), "3.0 MiB");
        assert_eq!(
            human_bytes(u128::MAX),
            format!("{:.1} EiB", u128::MAX as f64 / (1u128 << 60) as f64)
        );
    }

    #[test]
    fn element_counts_saturate() {
        assert_eq!(elements(&[]), 1);
        assert_eq!(elements(&[3, 0, 5]), 0);
        assert_eq!(elements(&[usize::MAX; 4]), u128::MAX);
    }
}
