//! Saving and loading TT tensors (serde, versioned, validated on load).
//!
//! The file is JSON: `{"format": "tnet-tt", "version": 1, "dtype": "f64", "shape": [...],
//! "cores": [...]}`. Loading checks the header, builds the tensor through
//! [`TtTensor::try_new`] and checks that the cores' mode sizes are the recorded shape, so
//! a corrupt or hand-edited file gives an error, never an invalid tensor. Writes are atomic
//! ([`crate::io::write_atomic`]).

use std::path::Path;

use ndarray::Array3;
use serde::{Deserialize, Serialize};

use super::TtTensor;
use crate::{Error, Result, Scalar};

/// Version of the TT file format written by this build.
pub const TT_FORMAT_VERSION: u32 = 1;
const MAGIC: &str = "tnet-tt";

#[derive(Serialize, Deserialize)]
#[serde(bound = "T: Scalar")]
struct TtFile<T> {
    format: String,
    version: u32,
    dtype: String,
    shape: Vec<usize>,
    cores: Vec<Array3<T>>,
}

impl<T: Scalar> Serialize for TtTensor<T> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        TtFile {
            format: MAGIC.into(),
            version: TT_FORMAT_VERSION,
            dtype: T::NAME.into(),
            shape: self.shape.clone(),
            cores: self.cores.clone(),
        }
        .serialize(s)
    }
}

impl<'de, T: Scalar> Deserialize<'de> for TtTensor<T> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let f = TtFile::<T>::deserialize(d)?;
        from_file(f).map_err(serde::de::Error::custom)
    }
}

fn from_file<T: Scalar>(f: TtFile<T>) -> Result<TtTensor<T>> {
    if f.format != MAGIC {
        return Err(Error::corrupt(format!(
            "not a TT tensor file (format tag {:?})",
            f.format
        )));
    }
    if f.version != TT_FORMAT_VERSION {
        return Err(Error::Version {
            found: f.version,
            supported: TT_FORMAT_VERSION,
        });
    }
    if f.dtype != T::NAME {
        return Err(Error::corrupt(format!(
            "the file holds {} values but {} was asked for",
            f.dtype,
            T::NAME
        )));
    }
    let x = TtTensor::try_new(f.cores)?;
    if x.shape != f.shape {
        return Err(Error::corrupt(format!(
            "the cores have mode sizes {:?} but the header says {:?}",
            x.shape, f.shape
        )));
    }
    Ok(x)
}

impl<T: Scalar> TtTensor<T> {
    /// Writes the tensor to `path` atomically (temporary file, fsync, rename).
    ///
    /// # Errors
    /// [`Error::Io`] if the file cannot be written.
    ///
    /// # Example
    /// ```
    /// use tnet::TtTensor;
    /// let x = TtTensor::<f64>::random(&[2, 3, 4], 2, 0).unwrap();
    /// let path = std::env::temp_dir().join("tnet_doc_tt.json");
    /// x.save(&path).unwrap();
    /// assert_eq!(TtTensor::<f64>::load(&path).unwrap(), x);
    /// ```
    pub fn save(&self, path: impl AsRef<Path>) -> Result<()> {
        let bytes = serde_json::to_vec(self).map_err(|e| Error::corrupt(e.to_string()))?;
        crate::io::write_atomic(path.as_ref(), &bytes)
    }

    /// Reads and validates a tensor written by [`save`](Self::save).
    ///
    /// # Errors
    /// [`Error::Io`] if unreadable; [`Error::Corrupt`] if truncated, malformed, of another
    /// dtype or describing an invalid tensor (the validation error of
    /// [`try_new`](Self::try_new) is returned as is); [`Error::Version`] for another format
    /// version.
    pub fn load(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let bytes = std::fs::read(path).map_err(|source| Error::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let f: TtFile<T> = serde_json::from_slice(&bytes).map_err(|e| Error::Corrupt {
            path: Some(path.to_path_buf()),
            reason: e.to_string(),
        })?;
        from_file(f).map_err(|e| match e {
            Error::Corrupt { path: None, reason } => Error::Corrupt {
                path: Some(path.to_path_buf()),
                reason,
            },
            other => other,
        })
    }
}
