//! The crate's one error type.
//!
//! Every fallible public function returns [`Result<T>`](Result). Variants carry structured
//! fields (what was expected, what came) so that callers can match on them and users get a
//! message that says exactly what to fix.

use std::path::PathBuf;

/// Everything that can go wrong in `tnet`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Two shapes that must agree do not.
    #[error("shape mismatch in {context}: expected {expected:?}, got {got:?}")]
    ShapeMismatch {
        /// Where the shapes were compared.
        context: &'static str,
        /// The shape that was required.
        expected: Vec<usize>,
        /// The shape that was given.
        got: Vec<usize>,
    },
    /// A tensor or mode with no entries, where at least one is required.
    #[error("empty input in {context}: every mode must have size at least 1, got shape {shape:?}")]
    Empty {
        /// Where the empty input was found.
        context: &'static str,
        /// The offending shape.
        shape: Vec<usize>,
    },
    /// NaN or infinite values in an input.
    #[error("non-finite value in {context} at flat index {index}")]
    NonFinite {
        /// Where the value was found.
        context: &'static str,
        /// Flat (row-major) index of the first non-finite value.
        index: usize,
    },
    /// A rank that is zero or otherwise inconsistent with its neighbours.
    #[error("invalid rank in {context}: {reason}")]
    InvalidRank {
        /// Where the rank was checked.
        context: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// A dimension tree that is not a valid binary tree over the modes.
    #[error("invalid dimension tree: {reason}")]
    InvalidTree {
        /// What is wrong with it.
        reason: String,
    },
    /// A parameter (tolerance, rank, iteration count, ...) outside its valid range.
    #[error("invalid parameter `{name}`: {reason}")]
    InvalidParameter {
        /// The parameter's name.
        name: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// A multi-index outside the tensor.
    #[error("index {index:?} out of bounds for shape {shape:?}")]
    IndexOutOfBounds {
        /// The index that was asked for.
        index: Vec<usize>,
        /// The tensor's shape.
        shape: Vec<usize>,
    },
    /// A mode number that the tensor does not have.
    #[error("mode {mode} out of range for a tensor of order {order}")]
    InvalidMode {
        /// The mode that was asked for.
        mode: usize,
        /// The tensor's order.
        order: usize,
    },
    /// The dense linear-algebra backend failed (for example an SVD that did not converge).
    #[error("linear algebra failure in {context}: {reason}")]
    Linalg {
        /// The operation that failed.
        context: &'static str,
        /// The backend's message.
        reason: String,
    },
    /// A saved file that cannot be parsed or that describes an invalid object.
    #[error("corrupt or invalid data{}: {reason}", path.as_ref().map(|p| format!(" in {}", p.display())).unwrap_or_default())]
    Corrupt {
        /// The file, when known.
        path: Option<PathBuf>,
        /// What is wrong.
        reason: String,
    },
    /// A saved file written by an incompatible version of the format.
    #[error("unsupported format version {found} (this build reads version {supported})")]
    Version {
        /// Version found in the file.
        found: u32,
        /// Version this build reads.
        supported: u32,
    },
    /// An allocation whose size comes from a file's declarations or from options would
    /// exceed the memory limit ([`crate::limits`]).
    #[error(
        "{context} would need {}, more than the memory limit of {} (raise it with \
         --max-memory or the environment variable TNET_MAX_MEMORY)",
        crate::limits::human_bytes(*bytes),
        crate::limits::human_bytes(*limit as u128)
    )]
    TooLarge {
        /// What needed the memory.
        context: &'static str,
        /// The bytes it would need.
        bytes: u128,
        /// The limit in force.
        limit: u64,
    },
    /// A decomposition whose measured error exceeds the bound it guarantees: the input is
    /// at the limits of its dtype (entries near the subnormal range), where the rounding of
    /// the result itself exceeds the tolerance.
    #[error(
        "{context}: the measured relative error {measured:.3e} exceeds the guaranteed \
         {bound:.3e}; the entries are too close to the limits of their dtype to be held to \
         this tolerance (scale the tensor by a power of two, which is exact, or use f64)"
    )]
    BoundNotMet {
        /// What was decomposed.
        context: &'static str,
        /// The measured `‖X − Y‖ / ‖X‖`.
        measured: f64,
        /// The bound the format guarantees, relative.
        bound: f64,
    },
    /// An I/O failure, with the path involved.
    #[error("I/O error on {path}: {source}")]
    Io {
        /// The file involved.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
}

/// Shorthand for `std::result::Result<T, tnet::Error>`.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub(crate) fn param(name: &'static str, reason: impl Into<String>) -> Self {
        Error::InvalidParameter {
            name,
            reason: reason.into(),
        }
    }

    pub(crate) fn rank(context: &'static str, reason: impl Into<String>) -> Self {
        Error::InvalidRank {
            context,
            reason: reason.into(),
        }
    }

    pub(crate) fn tree(reason: impl Into<String>) -> Self {
        Error::InvalidTree {
            reason: reason.into(),
        }
    }

    pub(crate) fn corrupt(reason: impl Into<String>) -> Self {
        Error::Corrupt {
            path: None,
            reason: reason.into(),
        }
    }
}
