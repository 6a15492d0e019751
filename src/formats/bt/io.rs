//! Saving and loading block-term tensors (serde, versioned, validated on load): JSON
//! written atomically, rebuilt through the checked constructor on reading.

use std::path::Path;

use ndarray::{Array2, ArrayD};
use serde::{Deserialize, Serialize};

use super::BtTensor;
use crate::formats::checks::check_shape;
use crate::formats::file::{
    Stored, StoredLayout, check_header, load_json, save_json, serde_via_file, tucker_blocks,
};
use crate::{Error, Factorized, Result, Scalar, TuckerTensor};

/// Version of the block-term file format written by this build.
pub const BT_FORMAT_VERSION: u32 = 1;
const MAGIC: &str = "tnet-bt";

#[derive(Serialize, Deserialize)]
#[serde(bound = "T: Scalar")]
struct BlockFile<T> {
    core: ArrayD<T>,
    factors: Vec<Array2<T>>,
}

#[derive(Serialize, Deserialize)]
#[serde(bound = "T: Scalar")]
struct BtFile<T> {
    format: String,
    version: u32,
    dtype: String,
    shape: Vec<usize>,
    blocks: Vec<BlockFile<T>>,
}

serde_via_file!(
    BtTensor,
    BtFile,
    |x| BtFile {
        format: MAGIC.into(),
        version: BT_FORMAT_VERSION,
        dtype: T::NAME.into(),
        shape: x.shape.clone(),
        blocks: x
            .blocks
            .iter()
            .map(|b| BlockFile {
                core: b.core().clone(),
                factors: b.factors().to_vec(),
            })
            .collect(),
    },
    from_file
);

fn from_file<T: Scalar>(f: BtFile<T>) -> Result<BtTensor<T>> {
    check_header::<T>(
        "a tnet-bt",
        (MAGIC, BT_FORMAT_VERSION),
        &f.format,
        f.version,
        &f.dtype,
    )?;
    check_shape("BtTensor::load", &f.shape)?;
    let blocks = f
        .blocks
        .into_iter()
        .map(|b| TuckerTensor::try_new(b.core, b.factors))
        .collect::<Result<Vec<_>>>()?;
    let t = BtTensor::try_new(blocks)?;
    if t.shape != f.shape {
        return Err(Error::corrupt(format!(
            "the header says shape {:?} but the blocks have shape {:?}",
            f.shape, t.shape
        )));
    }
    Ok(t)
}

impl<T: Scalar> BtTensor<T> {
    /// Writes the tensor to `path` atomically (temporary file, fsync, rename).
    ///
    /// # Errors
    /// [`Error::Io`] if the file cannot be written.
    ///
    /// # Example
    /// ```
    /// use tnet::BtTensor;
    /// let x = BtTensor::<f32>::random(&[3, 4, 5], &[2, 2, 2], 2, 0).unwrap();
    /// let path = std::env::temp_dir().join("tnet_doc_bt.json");
    /// x.save(&path).unwrap();
    /// assert_eq!(BtTensor::<f32>::load(&path).unwrap(), x);
    /// ```
    pub fn save(&self, path: impl AsRef<Path>) -> Result<()> {
        save_json(self, path.as_ref())
    }

    /// Reads and validates a tensor written by [`save`](Self::save).
    ///
    /// # Errors
    /// [`Error::Io`] if unreadable; [`Error::Corrupt`] if truncated, malformed, of another
    /// dtype or describing an invalid tensor; [`Error::Version`] for another format
    /// version; the errors of [`TuckerTensor::try_new`] and [`try_new`](Self::try_new)
    /// for inconsistent blocks.
    pub fn load(path: impl AsRef<Path>) -> Result<Self> {
        load_json(path.as_ref(), from_file)
    }
}

impl<T: Scalar> Stored<T> for BtTensor<T> {
    /// Block after block: `bt/{b}/core`, then `bt/{b}/factor/{k}`.
    fn core_names(&self) -> Vec<String> {
        (0..self.n_blocks())
            .flat_map(|b| tucker_blocks::names(&format!("bt/{b}"), self.order()))
            .collect()
    }

    fn core_arrays(&self) -> Vec<ArrayD<T>> {
        self.blocks()
            .iter()
            .flat_map(tucker_blocks::arrays)
            .collect()
    }

    /// Needs the block count.
    fn from_stored(layout: &StoredLayout<'_>, cores: Vec<ArrayD<T>>) -> Result<Self> {
        let blocks = layout.blocks.filter(|&b| b > 0).ok_or_else(|| {
            Error::corrupt(format!(
                "the BT tensor '{}' has no block count",
                layout.name
            ))
        })?;
        let d = layout.shape.len();
        layout.count(
            &cores,
            d.checked_add(1).and_then(|n| n.checked_mul(blocks)),
            "its blocks",
        )?;
        BtTensor::try_new(tucker_blocks::rebuild(layout, "bt", cores)?)
            .map_err(|e| layout.invalid("bt", e))
    }
}
