//! Saving and loading HT tensors (serde, versioned, validated on load).
//!
//! The file is JSON: `{"format": "tnet-ht", "version": 1, "dtype": "f64", "tree":
//! "<nested spec>", "shape": [...], "nodes": [...]}`. Loading checks the header, then builds
//! the tensor through [`HtTensor::try_new`], so a corrupt or hand-edited file gives an
//! error, never an invalid tensor. Writes are atomic: the data goes to a temporary file in
//! the same directory, is flushed to disk, then renamed over the target.

use std::path::Path;

use ndarray::ArrayD;
use serde::{Deserialize, Serialize};

use super::{HtNode, HtTensor};
use crate::formats::file::{
    Stored, StoredLayout, check_header, load_json, save_json, serde_via_file,
};
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

serde_via_file!(
    HtTensor,
    HtFile,
    |x| HtFile {
        format: MAGIC.into(),
        version: HT_FORMAT_VERSION,
        dtype: T::NAME.into(),
        tree: x.tree.spec(),
        shape: x.shape.clone(),
        nodes: x.nodes.clone(),
    },
    from_file
);

fn from_file<T: Scalar>(f: HtFile<T>) -> Result<HtTensor<T>> {
    check_header::<T>(
        "an HT tensor",
        (MAGIC, HT_FORMAT_VERSION),
        &f.format,
        f.version,
        &f.dtype,
    )?;
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
        save_json(self, path.as_ref())
    }

    /// Reads and validates a tensor written by [`save`](Self::save).
    ///
    /// # Errors
    /// [`Error::Io`] if unreadable; [`Error::Corrupt`] if truncated, malformed, of another
    /// dtype or describing an invalid tensor; [`Error::Version`] for another format version.
    pub fn load(path: impl AsRef<Path>) -> Result<Self> {
        // As documented: a file describing an invalid tensor is corrupt, whichever
        // invariant it breaks (the reason keeps the validation error's message).
        load_json(path.as_ref(), |f| {
            from_file(f).map_err(|e| match e {
                Error::Version { .. } | Error::Corrupt { .. } => e,
                other => Error::corrupt(other.to_string()),
            })
        })
    }
}

impl<T: Scalar> Stored<T> for HtTensor<T> {
    /// `ht/{t}` for every node, in pre-order (root first).
    fn core_names(&self) -> Vec<String> {
        (0..self.nodes.len()).map(|t| format!("ht/{t}")).collect()
    }

    fn core_arrays(&self) -> Vec<ArrayD<T>> {
        self.nodes
            .iter()
            .map(|n| match n {
                HtNode::Leaf(u) => u.clone().into_dyn(),
                HtNode::Transfer(b) => b.clone().into_dyn(),
            })
            .collect()
    }

    /// Needs the tree spec; a leaf must be 2-D, a transfer tensor 3-D.
    fn from_stored(layout: &StoredLayout<'_>, cores: Vec<ArrayD<T>>) -> Result<Self> {
        let name = layout.name;
        let spec = layout
            .tree
            .ok_or_else(|| Error::corrupt(format!("the HT tensor '{name}' has no tree")))?;
        let tree: DimTree = spec.parse().map_err(|e| layout.invalid("ht", e))?;
        layout.count(&cores, Some(tree.n_nodes()), "its tree")?;
        let nodes = cores
            .into_iter()
            .enumerate()
            .map(|(t, a)| {
                let shape = a.shape().to_vec();
                let bad = |_| {
                    Error::corrupt(format!(
                        "core {t} of '{name}' has shape {shape:?}, which does not fit node {t}"
                    ))
                };
                if tree.is_leaf(t) {
                    a.into_dimensionality().map(HtNode::Leaf).map_err(bad)
                } else {
                    a.into_dimensionality().map(HtNode::Transfer).map_err(bad)
                }
            })
            .collect::<Result<Vec<_>>>()?;
        HtTensor::try_new(tree, layout.shape.to_vec(), nodes).map_err(|e| layout.invalid("ht", e))
    }
}
