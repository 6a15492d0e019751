//! The versioned JSON files of the formats (crate-private), written once.
//!
//! Every format saves `{"format": <magic>, "version": <n>, "dtype": "f32"|"f64", ..}`
//! followed by its own fields. Loading parses the whole file, checks the header
//! ([`check_header`]) and builds the tensor through the format's checked constructor, so
//! a corrupt or hand-edited file gives an error, never an invalid tensor. Writes are
//! atomic ([`crate::io::write_atomic`]).

use std::path::Path;

use ndarray::Array3;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::io::with_path;
use crate::{Error, Result, Scalar};

/// Implements `Serialize` and `Deserialize` for a format through its file struct:
/// `to_file(&tensor) -> File<T>` and `from_file(File<T>) -> Result<tensor>`.
macro_rules! serde_via_file {
    ($tensor:ident, $file:ident, $to_file:expr, $from_file:expr) => {
        impl<T: $crate::Scalar> ::serde::Serialize for $tensor<T> {
            fn serialize<S: ::serde::Serializer>(
                &self,
                s: S,
            ) -> std::result::Result<S::Ok, S::Error> {
                let to_file: fn(&Self) -> $file<T> = $to_file;
                ::serde::Serialize::serialize(&to_file(self), s)
            }
        }

        impl<'de, T: $crate::Scalar> ::serde::Deserialize<'de> for $tensor<T> {
            fn deserialize<D: ::serde::Deserializer<'de>>(
                d: D,
            ) -> std::result::Result<Self, D::Error> {
                let from_file: fn($file<T>) -> $crate::Result<Self> = $from_file;
                let f = <$file<T> as ::serde::Deserialize>::deserialize(d)?;
                from_file(f).map_err(::serde::de::Error::custom)
            }
        }
    };
}
pub(crate) use serde_via_file;

/// Checks a file header: the format tag `format` must be `magic` (else "not `what` file"),
/// the version `supported`, the dtype `T::NAME`.
///
/// # Errors
/// [`Error::Corrupt`] (without a path) for another tag or dtype; [`Error::Version`] for
/// another version.
pub(crate) fn check_header<T: Scalar>(
    what: &str,
    (magic, supported): (&str, u32),
    format: &str,
    version: u32,
    dtype: &str,
) -> Result<()> {
    if format != magic {
        return Err(Error::corrupt(format!(
            "not {what} file (format tag {format:?})"
        )));
    }
    if version != supported {
        return Err(Error::Version {
            found: version,
            supported,
        });
    }
    if dtype != T::NAME {
        return Err(Error::corrupt(format!(
            "the file holds {dtype} values but {} was asked for",
            T::NAME
        )));
    }
    Ok(())
}

/// Writes `value` as JSON to `path` atomically.
///
/// # Errors
/// [`Error::Io`] if the file cannot be written.
pub(crate) fn save_json(value: &impl Serialize, path: &Path) -> Result<()> {
    let bytes = serde_json::to_vec(value).map_err(|e| Error::corrupt(e.to_string()))?;
    crate::io::write_atomic(path, &bytes)
}

/// Reads the JSON file struct `F` at `path` and builds the tensor from it with `build`;
/// a path-less [`Error::Corrupt`] from `build` gets `path`.
///
/// # Errors
/// [`Error::Io`] if unreadable; [`Error::Corrupt`] if the JSON does not parse as `F`; the
/// errors of `build`.
pub(crate) fn load_json<F: DeserializeOwned, X>(
    path: &Path,
    build: impl FnOnce(F) -> Result<X>,
) -> Result<X> {
    let bytes = crate::io::read(path)?;
    let f: F = serde_json::from_slice(&bytes).map_err(|e| Error::Corrupt {
        path: Some(path.to_path_buf()),
        reason: e.to_string(),
    })?;
    build(f).map_err(|e| with_path(e, path))
}

/// The file of a chain of 3-way cores (the TT and TR formats): the header, the shape and
/// the cores `(r_k, n_k, r_{k+1})`.
#[derive(Serialize, Deserialize)]
#[serde(bound = "T: Scalar")]
pub(crate) struct CoresFile<T> {
    format: String,
    version: u32,
    dtype: String,
    shape: Vec<usize>,
    cores: Vec<Array3<T>>,
}

impl<T: Scalar> CoresFile<T> {
    /// The file of a tensor with this `shape` and these `cores`, under the header
    /// `(magic, version)`.
    pub(crate) fn new((magic, version): (&str, u32), shape: &[usize], cores: &[Array3<T>]) -> Self {
        Self {
            format: magic.into(),
            version,
            dtype: T::NAME.into(),
            shape: shape.to_vec(),
            cores: cores.to_vec(),
        }
    }

    /// Checks the header, builds the tensor with `try_new` and checks that its mode sizes
    /// (`shape_of`) are the recorded shape.
    ///
    /// # Errors
    /// Those of [`check_header`] and `try_new`; [`Error::Corrupt`] for a shape that
    /// disagrees with the cores.
    pub(crate) fn into_tensor<X>(
        self,
        what: &str,
        header: (&str, u32),
        try_new: impl FnOnce(Vec<Array3<T>>) -> Result<X>,
        shape_of: impl Fn(&X) -> &[usize],
    ) -> Result<X> {
        check_header::<T>(what, header, &self.format, self.version, &self.dtype)?;
        let x = try_new(self.cores)?;
        if shape_of(&x) != self.shape.as_slice() {
            return Err(Error::corrupt(format!(
                "the cores have mode sizes {:?} but the header says {:?}",
                shape_of(&x),
                self.shape
            )));
        }
        Ok(x)
    }
}
