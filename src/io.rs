//! File helpers shared by every format: atomic writes, error paths, checksums.

use std::io::Write;
use std::path::Path;

use crate::{Error, Result};

/// Writes `bytes` to `path` atomically: temporary sibling file, flush + fsync, rename.
///
/// A reader never sees a half-written file: either the old content or the new.
///
/// An existing `path` must be a regular file (or a link to one): a directory, a device
/// such as `/dev/full` or a FIFO is refused rather than replaced by a regular file that
/// would make the write look successful.
///
/// # Errors
/// [`Error::Io`] naming `path` if any step fails (the temporary file is removed), or if
/// `path` exists and is not a regular file (`InvalidInput`).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let io = |source| Error::Io {
        path: path.to_path_buf(),
        source,
    };
    if let Ok(meta) = std::fs::metadata(path)
        && !meta.is_file()
    {
        return Err(io(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "exists and is not a regular file (a directory, a device or a pipe); refusing to \
             replace it: choose a file path",
        )));
    }
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    // Unique per call (process id and a counter): two threads saving to the same path
    // must not share, and interleave writes into, one temporary file.
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let tmp = dir.join(format!(".{name}.tmp-{}-{n}", std::process::id()));
    let result = (|| {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.map_err(io)
}

/// Attaches a path to a path-less [`Error::Corrupt`].
pub(crate) fn with_path(e: Error, path: &Path) -> Error {
    match e {
        Error::Corrupt { path: None, reason } => Error::Corrupt {
            path: Some(path.to_path_buf()),
            reason,
        },
        other => other,
    }
}

/// FNV-1a, 64 bits: the checksum of tnet's own files (the model and checkpoint
/// containers store it after their body; [`Checksum`] chains it over fields).
pub(crate) fn fnv1a(bytes: &[u8]) -> u64 {
    fnv1a_from(0xcbf2_9ce4_8422_2325, bytes)
}

fn fnv1a_from(mut h: u64, bytes: &[u8]) -> u64 {
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// A 64-bit checksum (FNV-1a) of a sequence of byte fields, for integrity checks of the
/// files tnet writes (the compressed container, a run's `run.json`).
///
/// It detects damage and edits made after the file was written (a changed value, a
/// permuted tree, swapped cores); it is not cryptographic and does not stop someone who
/// recomputes it. Each field is prefixed by its length, so `("ab", "c")` and `("a", "bc")`
/// differ. Cost: about 1 ns per byte.
///
/// # Example
/// ```
/// use tnet::io::Checksum;
/// let mut a = Checksum::new();
/// a.field(b"tree").field(&[1, 2, 3]);
/// let mut b = Checksum::new();
/// b.field(b"tree").field(&[1, 3, 2]);
/// assert_ne!(a.hex(), b.hex());
/// assert_eq!(a.hex().len(), 16);
/// ```
#[derive(Clone, Copy, Debug)]
pub struct Checksum {
    h: u64,
}

impl Default for Checksum {
    fn default() -> Self {
        Self::new()
    }
}

impl Checksum {
    /// The checksum of no fields.
    pub fn new() -> Self {
        Self { h: fnv1a(&[]) }
    }

    /// Adds one field: its length (8 bytes, little endian), then its bytes.
    pub fn field(&mut self, bytes: &[u8]) -> &mut Self {
        self.h = fnv1a_from(self.h, &(bytes.len() as u64).to_le_bytes());
        self.h = fnv1a_from(self.h, bytes);
        self
    }

    /// The checksum.
    pub fn value(&self) -> u64 {
        self.h
    }

    /// The checksum as 16 lowercase hex digits.
    pub fn hex(&self) -> String {
        format!("{:016x}", self.h)
    }
}
