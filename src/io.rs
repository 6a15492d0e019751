//! File helpers shared by every format: atomic writes, error paths, checksums.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::{Error, Result};

/// True when `a` and `b` name the same existing file (any spelling, or a link to it).
///
/// Writers call it before replacing an output: a command whose output is its own input
/// would overwrite the data it reads. A path that does not exist is never the same file.
///
/// # Example
/// ```
/// let dir = tempfile::tempdir().unwrap();
/// let a = dir.path().join("a.npy");
/// std::fs::write(&a, b"x").unwrap();
/// assert!(tnet::io::same_file(&a, &dir.path().join(".").join("a.npy")));
/// assert!(!tnet::io::same_file(&a, &dir.path().join("b.npy")));
/// ```
pub fn same_file(a: &Path, b: &Path) -> bool {
    match (std::fs::canonicalize(a), std::fs::canonicalize(b)) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

/// Refuses an `output` that is the `input` file ([`same_file`]): writing it would replace
/// the data being read.
///
/// # Errors
/// [`Error::InvalidParameter`] (`output`) naming the path.
pub fn check_distinct(input: &Path, output: &Path) -> Result<()> {
    if same_file(input, output) {
        return Err(Error::InvalidParameter {
            name: "output",
            reason: format!(
                "{}: the output is the input file; writing it would replace the input (choose \
                 another output path)",
                output.display()
            ),
        });
    }
    Ok(())
}

/// Writes `bytes` to `path` atomically: temporary sibling file, flush + fsync, rename.
///
/// A reader never sees a half-written file: either the old content or the new. The
/// temporary files of earlier writes to `path` by processes that were killed (and so could
/// not remove them) are removed after a successful write (Linux).
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
    let _in_flight = InFlight::register(&tmp);
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
    result.map_err(io)?;
    remove_stale_temporaries(dir, &name);
    Ok(())
}

/// The temporary files of the writes in progress in this process.
static IN_FLIGHT: std::sync::Mutex<Vec<PathBuf>> = std::sync::Mutex::new(Vec::new());

/// A temporary file listed in [`IN_FLIGHT`] for the lifetime of the guard.
struct InFlight(PathBuf);

impl InFlight {
    fn register(path: &Path) -> Self {
        if let Ok(mut list) = IN_FLIGHT.lock() {
            list.push(path.to_path_buf());
        }
        InFlight(path.to_path_buf())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        if let Ok(mut list) = IN_FLIGHT.lock()
            && let Some(k) = list.iter().position(|p| *p == self.0)
        {
            list.swap_remove(k);
        }
    }
}

/// Removes the temporary files of the [`write_atomic`] calls in progress in this process.
/// For an interrupt handler (the `tnet` tool installs one): a process stopped mid-write
/// calls it before it exits, so no half-written temporary file stays behind. The target
/// files are untouched (they still hold their previous content).
pub fn remove_temporaries_in_flight() {
    if let Ok(list) = IN_FLIGHT.lock() {
        for p in list.iter() {
            let _ = std::fs::remove_file(p);
        }
    }
}

/// Removes the temporary siblings `.{name}.tmp-{pid}-{n}` of earlier writes to the same
/// path whose process no longer runs: a process killed by a signal (Ctrl-C during a save)
/// cannot remove its own, so the next write to that path does. Linux only (a process is
/// alive while `/proc/{pid}` exists); failures are ignored, as the write itself succeeded.
fn remove_stale_temporaries(dir: &Path, name: &str) {
    if !cfg!(target_os = "linux") {
        return;
    }
    let prefix = format!(".{name}.tmp-");
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let file = entry.file_name();
        let Some(pid) = file
            .to_str()
            .and_then(|f| f.strip_prefix(&prefix))
            .and_then(|rest| rest.split('-').next())
            .and_then(|pid| pid.parse::<u32>().ok())
        else {
            continue;
        };
        if pid != std::process::id() && !Path::new(&format!("/proc/{pid}")).exists() {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// The bytes of a file, memory-mapped where the system allows it and read otherwise.
///
/// Mapping a regular file costs no copy: its pages are the kernel's page cache, faulted in
/// as they are first touched (several pages at a time) and shared with every other
/// process reading the file, where `std::fs::read` copies the whole file into fresh memory.
/// Empty files and files that cannot be mapped (pipes, some network file systems) are
/// read instead.
pub(crate) enum FileBytes {
    /// A read-only private mapping of the whole file.
    Mapped(memmap2::Mmap),
    /// The file's bytes, read.
    Read(Vec<u8>),
}

impl std::ops::Deref for FileBytes {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        match self {
            FileBytes::Mapped(m) => m,
            FileBytes::Read(v) => v,
        }
    }
}

/// Maps the file at `path` read-only (see [`FileBytes`]).
///
/// # Errors
/// [`Error::Io`] naming `path` if it cannot be opened or read.
pub(crate) fn map(path: &Path) -> Result<FileBytes> {
    let io = |source| Error::Io {
        path: path.to_path_buf(),
        source,
    };
    let file = std::fs::File::open(path).map_err(io)?;
    let meta = file.metadata().map_err(io)?;
    if meta.is_file() && meta.len() > 0 {
        // SAFETY: the mapping is read-only and private. Its contents are only defined
        // while no other process truncates or rewrites the file (a truncation under a
        // running reader ends it with SIGBUS); tnet itself never writes a file in place
        // (every write goes to a temporary file that is then renamed, see
        // `write_atomic`, so a reader keeps the old inode), and a file changed under a
        // running reader is outside what any reader of a file can promise (NumPy's
        // `mmap_mode` and safetensors' loaders share this contract). Every byte is
        // validated by the parsers exactly as bytes that were read.
        if let Ok(m) = unsafe { memmap2::MmapOptions::new().map(&file) } {
            #[cfg(unix)]
            let _ = m.advise(memmap2::Advice::Sequential);
            return Ok(FileBytes::Mapped(m));
        }
    }
    let mut bytes = Vec::new();
    std::io::Read::read_to_end(&mut &file, &mut bytes).map_err(io)?;
    Ok(FileBytes::Read(bytes))
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
/// containers store it, little endian, after their body; [`Checksum`] chains it over
/// fields).
///
/// ```
/// assert_eq!(tnet::io::fnv1a(b""), 0xcbf2_9ce4_8422_2325);
/// assert_eq!(tnet::io::fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
/// ```
pub fn fnv1a(bytes: &[u8]) -> u64 {
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
/// differ. Cost: one multiply per byte.
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temporaries_in_flight_are_removed_on_request() {
        let dir = tempfile::tempdir().unwrap();
        let tmp = dir.path().join(".x.tmp-1-0");
        std::fs::write(&tmp, b"half").unwrap();
        let guard = InFlight::register(&tmp);
        remove_temporaries_in_flight();
        assert!(!tmp.exists());
        drop(guard);
        assert!(IN_FLIGHT.lock().unwrap().iter().all(|p| *p != tmp));
    }
}
