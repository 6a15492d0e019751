//! Saving and loading HT tensors (serde, versioned, validated on load).
//!
//! The file is JSON: `{"format": "tnet-ht", "version": 1, "dtype": "f64", "tree":
//! "<nested spec>", "shape": [...], "nodes": [...]}`. Loading checks the header, then builds
//! the tensor through [`HtTensor::try_new`], so a corrupt or hand-edited file gives an
//! error, never an invalid tensor. Writes are atomic: the data goes to a temporary file in
//! the same directory, is flushed to disk, then renamed over the target.

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::{HtNode, HtTensor};
use crate::tree::TreeSpec;
use crate::{DimTree, Error, Result, Scalar};

/// Version of the HT file format written by this build.
pub const HT_FORMAT_VERSION: u32 = 1;
const MAGIC: &str = "tnet-ht";

#[derive(Serialize, Deserialize)]
#[serde(bound = "T: Scalar")]
struct HtFile<T> {
    format: String,
    version: u32,
    dtype: String,
    tree: TreeSpec,
    shape: Vec<usize>,
    nodes: Vec<HtNode<T>>,
}

impl<T: Scalar> Serialize for HtTensor<T> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        HtFile {
            format: MAGIC.into(),
            version: HT_FORMAT_VERSION,
            dtype: T::NAME.into(),
            tree: self.tree.spec(),
            shape: self.shape.clone(),
            nodes: self.nodes.clone(),
        }
        .serialize(s)
    }
}

impl<'de, T: Scalar> Deserialize<'de> for HtTensor<T> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let f = HtFile::<T>::deserialize(d)?;
        from_file(f).map_err(serde::de::Error::custom)
    }
}

fn from_file<T: Scalar>(f: HtFile<T>) -> Result<HtTensor<T>> {
    if f.format != MAGIC {
        return Err(Error::corrupt(format!(
            "not an HT tensor file (format tag {:?})",
            f.format
        )));
    }
    if f.version != HT_FORMAT_VERSION {
        return Err(Error::Version {
            found: f.version,
            supported: HT_FORMAT_VERSION,
        });
    }
    if f.dtype != T::NAME {
        return Err(Error::corrupt(format!(
            "the file holds {} values but {} was asked for",
            f.dtype,
            T::NAME
        )));
    }
    let tree = DimTree::from_spec(&f.tree)?;
    HtTensor::try_new(tree, f.shape, f.nodes)
}

impl<T: Scalar> HtTensor<T> {
    /// Writes the tensor to `path` atomically (temporary file, fsync, rename).
    ///
    /// # Errors
    /// [`Error::Io`] if the file cannot be written.
    ///
    /// # Example
    /// ```
    /// use tnet::{DimTree, HtTensor};
    /// let x = HtTensor::<f64>::random(&DimTree::balanced(3).unwrap(), &[2, 3, 4], 2, 0).unwrap();
    /// let path = std::env::temp_dir().join("tnet_doc_ht.json");
    /// x.save(&path).unwrap();
    /// assert_eq!(HtTensor::<f64>::load(&path).unwrap(), x);
    /// ```
    pub fn save(&self, path: impl AsRef<Path>) -> Result<()> {
        let bytes = serde_json::to_vec(self).map_err(|e| Error::corrupt(e.to_string()))?;
        crate::io::write_atomic(path.as_ref(), &bytes)
    }

    /// Reads and validates a tensor written by [`save`](Self::save).
    ///
    /// # Errors
    /// [`Error::Io`] if unreadable; [`Error::Corrupt`] if truncated, malformed, of another
    /// dtype or describing an invalid tensor; [`Error::Version`] for another format version.
    pub fn load(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let bytes = std::fs::read(path).map_err(|source| Error::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let f: HtFile<T> = serde_json::from_slice(&bytes).map_err(|e| Error::Corrupt {
            path: Some(path.to_path_buf()),
            reason: e.to_string(),
        })?;
        // As documented: a file describing an invalid tensor is corrupt, whichever
        // invariant it breaks (the reason keeps the validation error's message).
        from_file(f).map_err(|e| match e {
            Error::Version { .. } => e,
            Error::Corrupt { reason, .. } => Error::Corrupt {
                path: Some(path.to_path_buf()),
                reason,
            },
            other => Error::Corrupt {
                path: Some(path.to_path_buf()),
                reason: other.to_string(),
            },
        })
    }
}
