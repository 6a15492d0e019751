//! Saving and loading Tucker tensors (serde, versioned, validated on load): JSON
//! written atomically, rebuilt through the checked constructor on reading.

use std::path::Path;

use ndarray::{Array2, ArrayD};
use serde::{Deserialize, Serialize};

use super::TuckerTensor;
use crate::formats::file::{
    Stored, StoredLayout, check_header, load_json, save_json, serde_via_file, tucker_blocks,
};
use crate::{Error, Factorized, Result, Scalar};

/// Version of the Tucker file format written by this build.
pub const TUCKER_FORMAT_VERSION: u32 = 1;
const MAGIC: &str = "tnet-tucker";

#[derive(Serialize, Deserialize)]
#[serde(bound = "T: Scalar")]
struct TuckerFile<T> {
    format: String,
    version: u32,
    dtype: String,
    shape: Vec<usize>,
    core: ArrayD<T>,
    factors: Vec<Array2<T>>,
}

serde_via_file!(
    TuckerTensor,
    TuckerFile,
    |x| TuckerFile {
        format: MAGIC.into(),
        version: TUCKER_FORMAT_VERSION,
        dtype: T::NAME.into(),
        shape: x.shape.clone(),
        core: x.core.clone(),
        factors: x.factors.clone(),
    },
    from_file
);

fn from_file<T: Scalar>(f: TuckerFile<T>) -> Result<TuckerTensor<T>> {
    check_header::<T>(
        "a tnet-tucker",
        (MAGIC, TUCKER_FORMAT_VERSION),
        &f.format,
        f.version,
        &f.dtype,
    )?;
    let t = TuckerTensor::try_new(f.core, f.factors)?;
    if t.shape != f.shape {
        return Err(Error::corrupt(format!(
            "the header says shape {:?} but the factors give {:?}",
            f.shape, t.shape
        )));
    }
    Ok(t)
}

impl<T: Scalar> TuckerTensor<T> {
    /// Writes the tensor to `path` atomically (temporary file, fsync, rename).
    ///
    /// # Errors
    /// [`Error::Io`] if the file cannot be written.
    ///
    /// # Example
    /// ```
    /// use tnet::TuckerTensor;
    /// let x = TuckerTensor::<f64>::random(&[2, 3, 4], &[2, 2, 2], 0).unwrap();
    /// let path = std::env::temp_dir().join("tnet_doc_tucker.json");
    /// x.save(&path).unwrap();
    /// assert_eq!(TuckerTensor::<f64>::load(&path).unwrap(), x);
    /// ```
    pub fn save(&self, path: impl AsRef<Path>) -> Result<()> {
        save_json(self, path.as_ref())
    }

    /// Reads and validates a tensor written by [`save`](Self::save).
    ///
    /// # Errors
    /// [`Error::Io`] if unreadable; [`Error::Corrupt`] if truncated, malformed, of another
    /// dtype or describing an invalid tensor; [`Error::Version`] for another format
    /// version; the errors of [`try_new`](Self::try_new) for inconsistent contents.
    pub fn load(path: impl AsRef<Path>) -> Result<Self> {
        load_json(path.as_ref(), from_file)
    }
}

impl<T: Scalar> Stored<T> for TuckerTensor<T> {
    /// `tucker/core`, then `tucker/factor/{k}`.
    fn core_names(&self) -> Vec<String> {
        tucker_blocks::names("tucker", self.order())
    }

    fn core_arrays(&self) -> Vec<ArrayD<T>> {
        tucker_blocks::arrays(self)
    }

    fn from_stored(layout: &StoredLayout<'_>, cores: Vec<ArrayD<T>>) -> Result<Self> {
        let d = layout.shape.len();
        layout.count(&cores, d.checked_add(1), "a core and one factor per mode")?;
        let mut blocks = tucker_blocks::rebuild(layout, "tucker", cores)?;
        Ok(blocks.pop().expect("one block"))
    }
}
