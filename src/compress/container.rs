//! The compressed container: a `.safetensors` file of named cores with a checked JSON
//! description (see the [module docs](super)).

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::{CompressedTensor, MatrixModes};
use crate::formats::FormatKind;
use crate::weights::{self, DenseArray, Dtype, Entry, SafetensorsFile, Weight};
use crate::{Error, Result, Scalar};

/// Version of the compressed-file description written by this build.
pub const COMPRESSED_FORMAT_VERSION: u32 = 1;
const MAGIC: &str = "tnet-compressed";
/// The `__metadata__` key that holds the description.
pub const METADATA_KEY: &str = "tnet";

/// The description of one compressed tensor in a [`CompressedFile`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TensorMeta {
    /// The original entry's name.
    pub name: String,
    /// The format.
    pub format: FormatKind,
    /// The precision of the cores (`f32` or `f64`).
    pub precision: Dtype,
    /// The dtype the original was stored in.
    pub dtype: Dtype,
    /// The original shape.
    pub shape: Vec<usize>,
    /// The tensorization, for a weight matrix.
    pub matrix: Option<MatrixModes>,
    /// The shape of the decomposed tensor.
    pub tensor_shape: Vec<usize>,
    /// The tree spec, for tree formats.
    #[serde(default)]
    pub tree: Option<String>,
    /// The number of blocks, for the block-term format.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blocks: Option<usize>,
    /// The ranks (see [`Decomposition::ranks`](crate::formats::Decomposition::ranks)).
    pub ranks: Vec<usize>,
    /// The names of the core entries, in the format's order.
    pub cores: Vec<String>,
}

#[derive(Serialize, Deserialize)]
struct ContainerMeta {
    format: String,
    version: u32,
    tensors: Vec<TensorMeta>,
    /// [`container_checksum`] of this description (without the checksum) and the file's
    /// entries and other metadata. Required: a description without one was edited (or
    /// written before checksums existed) and is refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    checksum: Option<String>,
}

/// The description `desc` (JSON) with its checksum recomputed over itself, `metadata` and
/// `entries`, as a writer that knows the scheme would produce it: the fuzz target and the
/// tests use it to reach the validation behind the checksum. `None` if `desc` is not a
/// container description.
pub(crate) fn resealed(
    desc: &str,
    metadata: &BTreeMap<String, String>,
    entries: &[Entry],
) -> Option<String> {
    let mut meta: ContainerMeta = serde_json::from_str(desc).ok()?;
    meta.checksum = None;
    let text = serde_json::to_string(&meta).ok()?;
    meta.checksum = Some(container_checksum(&text, metadata, entries));
    serde_json::to_string(&meta).ok()
}

/// The checksum of a container: its description (the JSON without the checksum), the
/// other `__metadata__` pairs, and every entry by name (name, dtype, shape, the values bit
/// for bit).
fn container_checksum(
    description: &str,
    metadata: &BTreeMap<String, String>,
    entries: &[Entry],
) -> String {
    let mut sum = crate::io::Checksum::new();
    sum.field(description.as_bytes());
    for (k, v) in metadata.iter().filter(|(k, _)| k.as_str() != METADATA_KEY) {
        sum.field(k.as_bytes()).field(v.as_bytes());
    }
    let mut sorted: Vec<&Entry> = entries.iter().collect();
    sorted.sort_by(|a, b| a.name().cmp(b.name()));
    for e in sorted {
        sum.field(e.name().as_bytes());
        let shape: Vec<u8> = e
            .shape()
            .iter()
            .flat_map(|&n| (n as u64).to_le_bytes())
            .collect();
        match e {
            Entry::Weight(w) => {
                // The values as held (half precisions widened to f32, which is exact), bit
                // for bit: NaN or out-of-range values are damage to detect, not to refuse.
                let bits: Vec<u8> = match &w.data {
                    DenseArray::F32(a) => {
                        a.iter().flat_map(|v| v.to_bits().to_le_bytes()).collect()
                    }
                    DenseArray::F64(a) => {
                        a.iter().flat_map(|v| v.to_bits().to_le_bytes()).collect()
                    }
                };
                sum.field(w.dtype.name().as_bytes())
                    .field(&shape)
                    .field(&bits);
            }
            Entry::Raw(r) => {
                sum.field(r.dtype_name().as_bytes())
                    .field(&shape)
                    .field(&r.bytes);
            }
        }
    }
    sum.hex()
}

/// A compressed tensor of either precision.
#[derive(Clone, Debug, PartialEq)]
pub enum AnyCompressed {
    /// Single-precision cores.
    F32(CompressedTensor<f32>),
    /// Double-precision cores.
    F64(CompressedTensor<f64>),
}

impl AnyCompressed {
    /// The dtype the original array was stored in.
    pub fn dtype(&self) -> Dtype {
        match self {
            AnyCompressed::F32(c) => c.dtype,
            AnyCompressed::F64(c) => c.dtype,
        }
    }

    /// The dense array.
    ///
    /// # Errors
    /// As [`CompressedTensor::to_dense`].
    pub fn to_dense(&self) -> Result<DenseArray> {
        Ok(match self {
            AnyCompressed::F32(c) => DenseArray::F32(c.to_dense()?),
            AnyCompressed::F64(c) => DenseArray::F64(c.to_dense()?),
        })
    }

    /// Number of stored scalars.
    pub fn n_params(&self) -> usize {
        match self {
            AnyCompressed::F32(c) => c.n_params(),
            AnyCompressed::F64(c) => c.n_params(),
        }
    }

    /// The description as stored in the file.
    pub fn meta(&self, name: &str) -> TensorMeta {
        match self {
            AnyCompressed::F32(c) => c.meta(name),
            AnyCompressed::F64(c) => c.meta(name),
        }
    }
}

impl<T: Scalar> From<CompressedTensor<T>> for AnyCompressed {
    fn from(c: CompressedTensor<T>) -> Self {
        let mut slot = Some(c);
        let any: &mut dyn std::any::Any = &mut slot;
        if let Some(s) = any.downcast_mut::<Option<CompressedTensor<f32>>>() {
            return AnyCompressed::F32(s.take().expect("filled"));
        }
        if let Some(s) = any.downcast_mut::<Option<CompressedTensor<f64>>>() {
            return AnyCompressed::F64(s.take().expect("filled"));
        }
        unreachable!("Scalar is sealed to f32 and f64")
    }
}

/// A file of compressed tensors plus entries kept as they were: a `.safetensors` file with
/// the cores as tensors and the description under `__metadata__["tnet"]`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CompressedFile {
    /// The compressed tensors, by original name.
    pub tensors: Vec<(String, AnyCompressed)>,
    /// Entries kept unchanged (not matching, too small, not 2-D, non-float, no gain).
    pub kept: Vec<Entry>,
    /// Other `__metadata__` entries of the original file.
    pub metadata: BTreeMap<String, String>,
}

impl CompressedFile {
    /// The safetensors form: cores, kept entries and the description.
    ///
    /// # Errors
    /// [`Error::Corrupt`] if a core's name collides with a kept entry.
    pub fn to_safetensors(&self) -> Result<SafetensorsFile> {
        let mut file = SafetensorsFile {
            entries: self.kept.clone(),
            metadata: self.metadata.clone(),
        };
        let mut metas = Vec::new();
        for (name, c) in &self.tensors {
            metas.push(c.meta(name));
            let cores: Vec<(String, DenseArray)> = match c {
                AnyCompressed::F32(c) => cores_of(name, c),
                AnyCompressed::F64(c) => cores_of(name, c),
            };
            for (core_name, a) in cores {
                let dtype = a.precision();
                file.entries
                    .push(Entry::Weight(Weight::new(core_name, dtype, a)));
            }
        }
        let mut meta = ContainerMeta {
            format: MAGIC.into(),
            version: COMPRESSED_FORMAT_VERSION,
            tensors: metas,
            checksum: None,
        };
        let description =
            serde_json::to_string(&meta).map_err(|e| Error::corrupt(e.to_string()))?;
        meta.checksum = Some(container_checksum(
            &description,
            &file.metadata,
            &file.entries,
        ));
        file.metadata.insert(
            METADATA_KEY.into(),
            serde_json::to_string(&meta).map_err(|e| Error::corrupt(e.to_string()))?,
        );
        Ok(file)
    }

    /// Writes the file atomically.
    ///
    /// # Errors
    /// [`Error::Io`] if it cannot be written; [`Error::Corrupt`] for colliding names.
    pub fn write(&self, path: impl AsRef<Path>) -> Result<()> {
        let path = path.as_ref();
        let file = self
            .to_safetensors()
            .map_err(|e| weights::with_path(e, path))?;
        weights::write_safetensors(path, &file)
    }

    /// Parses a safetensors file written by [`write`](Self::write).
    ///
    /// # Errors
    /// [`Error::Corrupt`] if the description is missing or malformed, a core is missing,
    /// of the wrong precision or shape, or the tensors it describes are invalid;
    /// [`Error::Version`] for another version of the description.
    pub fn from_safetensors(mut file: SafetensorsFile) -> Result<Self> {
        let text = file.metadata.remove(METADATA_KEY).ok_or_else(|| {
            Error::corrupt(format!(
                "not a tnet compressed file (no '{METADATA_KEY}' entry in __metadata__)"
            ))
        })?;
        let mut meta: ContainerMeta = serde_json::from_str(&text)
            .map_err(|e| Error::corrupt(format!("malformed tnet description: {e}")))?;
        if meta.format != MAGIC {
            return Err(Error::corrupt(format!(
                "not a tnet compressed file (format tag {:?})",
                meta.format
            )));
        }
        if meta.version != COMPRESSED_FORMAT_VERSION {
            return Err(Error::Version {
                found: meta.version,
                supported: COMPRESSED_FORMAT_VERSION,
            });
        }
        let Some(stored) = meta.checksum.take() else {
            return Err(Error::corrupt(
                "no checksum in the description: it was removed after tnet wrote the file \
                 (or the file predates checksums); the description cannot be trusted to \
                 rebuild the tensors it names",
            ));
        };
        let description =
            serde_json::to_string(&meta).map_err(|e| Error::corrupt(e.to_string()))?;
        let computed = container_checksum(&description, &file.metadata, &file.entries);
        if computed != stored {
            return Err(Error::corrupt(format!(
                "checksum mismatch (stored {stored}, computed {computed}): the description \
                 or the tensors were changed or damaged after tnet wrote the file"
            )));
        }
        let mut by_name: BTreeMap<String, Entry> = file
            .entries
            .into_iter()
            .map(|e| (e.name().to_string(), e))
            .collect();
        let mut tensors = Vec::new();
        for m in &meta.tensors {
            let mut cores = Vec::with_capacity(m.cores.len());
            for core in &m.cores {
                match by_name.remove(core) {
                    Some(Entry::Weight(w)) if w.data.precision() == m.precision => {
                        cores.push(w.data)
                    }
                    Some(_) => {
                        return Err(Error::corrupt(format!(
                            "core '{core}' is not stored in {}",
                            m.precision
                        )));
                    }
                    None => return Err(Error::corrupt(format!("core '{core}' is missing"))),
                }
            }
            let c: AnyCompressed = match m.precision {
                Dtype::F64 => CompressedTensor::<f64>::from_meta(
                    m,
                    cores.into_iter().map(DenseArray::into_array).collect(),
                )?
                .into(),
                Dtype::F32 => CompressedTensor::<f32>::from_meta(
                    m,
                    cores.into_iter().map(DenseArray::into_array).collect(),
                )?
                .into(),
                other => {
                    return Err(Error::corrupt(format!(
                        "'{}': cores in {other} are not supported",
                        m.name
                    )));
                }
            };
            tensors.push((m.name.clone(), c));
        }
        Ok(Self {
            tensors,
            kept: by_name.into_values().collect(),
            metadata: file.metadata,
        })
    }

    /// Reads and validates a compressed file.
    ///
    /// # Errors
    /// [`Error::Io`] if unreadable; as [`read_safetensors`](weights::read_safetensors) and
    /// [`from_safetensors`](Self::from_safetensors), with the path attached.
    pub fn read(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        Self::from_safetensors(weights::read_safetensors(path)?)
            .map_err(|e| weights::with_path(e, path))
    }

    /// The dense file: every compressed tensor rebuilt in its original dtype, the kept
    /// entries unchanged, the tnet description dropped.
    ///
    /// # Errors
    /// [`Error::TooLarge`] if the dense arrays together exceed the
    /// [memory limit](crate::limits); as [`CompressedTensor::to_dense`].
    pub fn to_dense(&self) -> Result<SafetensorsFile> {
        let total = self.tensors.iter().fold(0u128, |acc, (_, c)| {
            let (shape, bytes) = match c {
                AnyCompressed::F32(c) => (&c.shape, 4),
                AnyCompressed::F64(c) => (&c.shape, 8),
            };
            acc.saturating_add(crate::limits::elements(shape).saturating_mul(bytes))
        });
        crate::limits::check_bytes("the rebuilt dense arrays", total)?;
        let mut entries = self.kept.clone();
        for (name, c) in &self.tensors {
            entries.push(Entry::Weight(Weight::new(
                name.clone(),
                c.dtype(),
                c.to_dense()?,
            )));
        }
        Ok(SafetensorsFile {
            entries,
            metadata: self.metadata.clone(),
        })
    }
}

fn cores_of<T: Scalar>(name: &str, c: &CompressedTensor<T>) -> Vec<(String, DenseArray)> {
    let d = &c.decomposition;
    d.core_names()
        .into_iter()
        .zip(d.core_arrays())
        .map(|(s, a)| (format!("{name}/{s}"), DenseArray::from_array(a)))
        .collect()
}
