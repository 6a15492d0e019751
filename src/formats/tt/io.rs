//! Saving and loading TT tensors (serde, versioned, validated on load).
//!
//! The file is JSON: `{"format": "tnet-tt", "version": 1, "dtype": "f64", "shape": [...],
//! "cores": [...]}`. Loading checks the header, builds the tensor through
//! [`TtTensor::try_new`] and checks that the cores' mode sizes are the recorded shape, so
//! a corrupt or hand-edited file gives an error, never an invalid tensor. Writes are atomic
//! ([`crate::io::write_atomic`]).

use std::path::Path;

use super::TtTensor;
use ndarray::ArrayD;

use crate::formats::file::{CoresFile, Stored, StoredLayout, load_json, save_json, serde_via_file};
use crate::{Factorized, Result, Scalar};

/// Version of the TT file format written by this build.
pub const TT_FORMAT_VERSION: u32 = 1;
const HEADER: (&str, u32) = ("tnet-tt", TT_FORMAT_VERSION);

serde_via_file!(
    TtTensor,
    CoresFile,
    |x| CoresFile::new(HEADER, &x.shape, &x.cores),
    from_file
);

fn from_file<T: Scalar>(f: CoresFile<T>) -> Result<TtTensor<T>> {
    f.into_tensor("a TT tensor", HEADER, TtTensor::try_new, |x| &x.shape)
}

impl<T: Scalar> TtTensor<T> {
    /// Writes the tensor to `path` atomically (temporary file, fsync, rename).
    ///
    /// # Errors
    /// [`Error::Io`](crate::Error::Io) if the file cannot be written.
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

impl<T: Scalar> Stored<T> for TtTensor<T> {
    /// `tt/{k}` for every core `(r_k, n_k, r_{k+1})`.
    fn core_names(&self) -> Vec<String> {
        (0..self.order()).map(|k| format!("tt/{k}")).collect()
    }

    fn core_arrays(&self) -> Vec<ArrayD<T>> {
        self.cores().iter().map(|g| g.clone().into_dyn()).collect()
    }

    /// One 3-D core per mode.
    fn from_stored(layout: &StoredLayout<'_>, cores: Vec<ArrayD<T>>) -> Result<Self> {
        TtTensor::try_new(layout.chain(cores)?).map_err(|e| layout.invalid("tt", e))
    }
}
