//! File helpers shared by every format: atomic writes, error paths.

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
