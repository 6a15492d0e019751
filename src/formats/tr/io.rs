//! Saving and loading TR tensors (serde, versioned, validated on load).
//!
//! The file is JSON: `{"format": "tnet-tr", "version": 1, "dtype": "f64", "shape": [...],
//! "cores": [...]}`. Loading checks the header, builds the tensor through
//! [`TrTensor::try_new`] and checks that the cores' mode sizes are the recorded shape, so
//! a corrupt or hand-edited file gives an error, never an invalid tensor. Writes are atomic
//! ([`crate::io::write_atomic`]).

use std::path::Path;

use super::TrTensor;
use ndarray::ArrayD;

use crate::formats::file::{CoresFile, Stored, StoredLayout, load_json, save_json, serde_via_file};
use crate::{Factorized, Result, Scalar};

/// Version of the TR file format written by this build.
pub const TR_FORMAT_VERSION: u32 = 1;
const HEADER: (&str, u32) = ("tnet-tr", TR_FORMAT_VERSION);

serde_via_file!(
    TrTensor,
    CoresFile,
    |x| CoresFile::new(HEADER, &x.shape, &x.cores),
    from_file
);

fn from_file<T: Scalar>(f: CoresFile<T>) -> Result<TrTensor<T>> {
    f.into_tensor("a TR tensor", HEADER, TrTensor::try_new, |x| &x.shape)
}

impl<T: Scalar> TrTensor<T> {
    /// Writes the tensor to `path` atomically (temporary file, fsync, rename).
    ///
    /// # Errors
    /// [`Error::Io`](crate::Error::Io) if the file cannot be written.
    ///
    /// # Example
    /// ```
    /// use tnet::TrTensor;
    /// let x = TrTensor::<f64>::random(&[2, 3, 4], 2, 0).unwrap();
    /// let path = std::env::temp_dir().join("tnet_doc_tr.json");
    /// x.save(&path).unwrap();
    /// assert_eq!(TrTensor::<f64>::load(&path).unwrap(), x);
    /// ```
    pub fn save(&self, path: impl AsRef<Path>) -> Result<()> {
        save_json(self, path.as_ref())
    }

    /// Reads and validates a tensor written by [`save`](Self::save).
    ///
    /// # Errors
    /// [`Error::Io`](crate::Error::Io) if unreadable; [`Error::Corrupt`](crate::Error::Corrupt)
    /// if truncated, malformed, of another dtype or describing an invalid tensor (the
    /// validation error of [`try_new`](Self::try_new) is returned as is);
    /// [`Error::Version`](crate::Error::Version) for another format version.
    pub fn load(path: impl AsRef<Path>) -> Result<Self> {
        load_json(path.as_ref(), from_file)
    }
}

impl<T: Scalar> Stored<T> for TrTensor<T> {
    /// `tr/{k}` for every core `(r_k, n_k, r_{k+1})`.
    fn core_names(&self) -> Vec<String> {
        (0..self.order()).map(|k| format!("tr/{k}")).collect()
    }

    fn core_arrays(&self) -> Vec<ArrayD<T>> {
        self.cores().iter().map(|g| g.clone().into_dyn()).collect()
    }

    /// One 3-D core per mode.
    fn from_stored(layout: &StoredLayout<'_>, cores: Vec<ArrayD<T>>) -> Result<Self> {
        TrTensor::try_new(layout.chain(cores)?).map_err(|e| layout.invalid("tr", e))
    }
}
