//! Saving and loading trained models (and the container checkpoints are written in).
//!
//! # File layout
//! A small binary container, so that millions of weights stay compact and round-trip
//! bit for bit:
//!
//! ```text
//! 8 bytes   magic "TNETLSTM"
//! u32 LE    container version (CONTAINER_VERSION)
//! u64 LE    header length L
//! L bytes   header, JSON: {"kind", "dtype", "tensors": [shapes], "meta": {...}}
//! ...       the tensors' entries, row-major, little-endian in the dtype's width
//! u64 LE    FNV-1a 64 checksum of everything before it
//! ```
//!
//! Loading checks the magic, the version, the checksum, the kind, the dtype and that the
//! payload has exactly the size the shapes announce; the model files then compare the
//! stored [`Architecture`] with the model they are loaded into. Writes are atomic
//! ([`crate::io::write_atomic`]).
//!
//! Models hold their maps as `Box<dyn LinearMap>`, whose concrete format a file cannot
//! name in general; a model is therefore loaded *into* a model of the same architecture
//! ([`Lstm::load_params`]), built the same way as the one that was saved.

use std::path::Path;

use ndarray::{ArrayD, ArrayViewD, IxDyn};
use serde::{Deserialize, Serialize};

use super::config::{LstmConfig, Wiring};
use super::lstm::{Lstm, ParamSpec};
use crate::{Error, Result, Scalar};

const MAGIC: &[u8; 8] = b"TNETLSTM";
/// Version of the container written by this build.
pub const CONTAINER_VERSION: u32 = 1;
const MODEL_KIND: &str = "tnet-lstm-model";

/// What identifies a model's structure: a file written for one architecture is refused
/// by a model of another.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Architecture {
    /// Sizes and options.
    pub config: LstmConfig,
    /// Separate or fused maps.
    pub wiring: Wiring,
    /// [`LinearMap::describe`](crate::matrices::LinearMap::describe) of every map, in parameter
    /// order.
    pub maps: Vec<String>,
    /// Number of classes.
    pub n_classes: usize,
    /// Every parameter tensor.
    pub params: Vec<ParamSpec>,
}

impl Architecture {
    /// `Ok` if `self` (from a file) equals `model`; otherwise an error naming the first
    /// difference.
    pub(crate) fn expect_same(&self, model: &Architecture, path: &Path) -> Result<()> {
        let diff = |what: &str, file: String, mine: String| {
            Error::param(
                "checkpoint",
                format!(
                    "{} was written for a different model: {what} is {file} in the file \
                     but {mine} in this model",
                    path.display()
                ),
            )
        };
        let (a, b) = (&self.config, &model.config);
        let fields: [(&str, String, String); 9] = [
            (
                "the input size N",
                a.n_input.to_string(),
                b.n_input.to_string(),
            ),
            (
                "the hidden size H",
                a.hidden.to_string(),
                b.hidden.to_string(),
            ),
            (
                "the gate activation",
                format!("{:?}", a.gate),
                format!("{:?}", b.gate),
            ),
            (
                "the pooling",
                format!("{:?}", a.pooling),
                format!("{:?}", b.pooling),
            ),
            (
                "the forget bias",
                a.forget_bias.to_string(),
                b.forget_bias.to_string(),
            ),
            (
                "the input dropout",
                a.input_dropout.to_string(),
                b.input_dropout.to_string(),
            ),
            (
                "the recurrent dropout",
                a.recurrent_dropout.to_string(),
                b.recurrent_dropout.to_string(),
            ),
            (
                "the recurrent gain",
                a.recurrent_gain.to_string(),
                b.recurrent_gain.to_string(),
            ),
            (
                "the gate normalisation",
                a.gate_norm.to_string(),
                b.gate_norm.to_string(),
            ),
        ];
        for (what, f, m) in fields {
            if f != m {
                return Err(diff(what, f, m));
            }
        }
        if self.wiring != model.wiring {
            return Err(diff(
                "the wiring",
                format!("{:?}", self.wiring),
                format!("{:?}", model.wiring),
            ));
        }
        if self.n_classes != model.n_classes {
            return Err(diff(
                "the number of classes",
                self.n_classes.to_string(),
                model.n_classes.to_string(),
            ));
        }
        if self.maps != model.maps {
            return Err(diff(
                "the list of maps",
                format!("{:?}", self.maps),
                format!("{:?}", model.maps),
            ));
        }
        if self.params != model.params {
            let shapes = |p: &[ParamSpec]| {
                p.iter()
                    .map(|s| format!("{} {:?}", s.name, s.shape))
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            return Err(diff(
                "the parameter list",
                shapes(&self.params),
                shapes(&model.params),
            ));
        }
        Ok(())
    }
}

#[derive(Serialize, Deserialize)]
struct Header {
    kind: String,
    dtype: String,
    tensors: Vec<Vec<usize>>,
    meta: serde_json::Value,
}

fn width<T: Scalar>() -> usize {
    std::mem::size_of::<T>()
}

/// Writes `tensors` with a JSON `meta` into a container of the given `kind`, atomically.
pub(crate) fn write_container<T: Scalar>(
    path: &Path,
    kind: &str,
    meta: serde_json::Value,
    tensors: &[ArrayViewD<'_, T>],
) -> Result<()> {
    let header = Header {
        kind: kind.into(),
        dtype: T::NAME.into(),
        tensors: tensors.iter().map(|t| t.shape().to_vec()).collect(),
        meta,
    };
    let hjson = serde_json::to_vec(&header).map_err(|e| Error::corrupt(e.to_string()))?;
    let n: usize = tensors.iter().map(|t| t.len()).sum();
    let mut bytes = Vec::with_capacity(8 + 4 + 8 + hjson.len() + n * width::<T>() + 8);
    bytes.extend_from_slice(MAGIC);
    bytes.extend_from_slice(&CONTAINER_VERSION.to_le_bytes());
    bytes.extend_from_slice(&(hjson.len() as u64).to_le_bytes());
    bytes.extend_from_slice(&hjson);
    for t in tensors {
        if width::<T>() == 4 {
            for v in t.iter() {
                bytes.extend_from_slice(&(v.as_f64() as f32).to_le_bytes());
            }
        } else {
            for v in t.iter() {
                bytes.extend_from_slice(&v.as_f64().to_le_bytes());
            }
        }
    }
    let sum = crate::io::fnv1a(&bytes);
    bytes.extend_from_slice(&sum.to_le_bytes());
    crate::io::write_atomic(path, &bytes)
}

/// Reads a container of the given `kind`: its meta and its tensors.
pub(crate) fn read_container<T: Scalar>(
    path: &Path,
    kind: &str,
) -> Result<(serde_json::Value, Vec<ArrayD<T>>)> {
    let bytes = crate::io::map(path)?;
    parse_container(&bytes, kind).map_err(|e| crate::io::with_path(e, path))
}

/// Parses the bytes of a container of the given `kind` (see [`read_container`]).
pub(crate) fn parse_container<T: Scalar>(
    bytes: &[u8],
    kind: &str,
) -> Result<(serde_json::Value, Vec<ArrayD<T>>)> {
    let corrupt = |reason: String| Error::corrupt(reason);
    if bytes.len() < 8 + 4 + 8 + 8 || &bytes[..8] != MAGIC {
        return Err(corrupt(
            "not a tnet LSTM file (bad magic or too short)".into(),
        ));
    }
    let version = u32::from_le_bytes(bytes[8..12].try_into().expect("4 bytes"));
    if version != CONTAINER_VERSION {
        return Err(Error::Version {
            found: version,
            supported: CONTAINER_VERSION,
        });
    }
    let (body, tail) = bytes.split_at(bytes.len() - 8);
    let stored = u64::from_le_bytes(tail.try_into().expect("8 bytes"));
    if crate::io::fnv1a(body) != stored {
        return Err(corrupt(
            "checksum mismatch: the file is truncated or damaged".into(),
        ));
    }
    let hlen = u64::from_le_bytes(body[12..20].try_into().expect("8 bytes"));
    let hlen = usize::try_from(hlen)
        .ok()
        .filter(|&l| l <= body.len() - 20)
        .ok_or_else(|| corrupt(format!("header length {hlen} exceeds the file")))?;
    let header: Header = serde_json::from_slice(&body[20..20 + hlen])
        .map_err(|e| corrupt(format!("unreadable header: {e}")))?;
    if header.kind != kind {
        return Err(corrupt(format!(
            "expected a {kind:?} file, found a {:?} file",
            header.kind
        )));
    }
    if header.dtype != T::NAME {
        return Err(corrupt(format!(
            "the file holds {} values but {} was asked for",
            header.dtype,
            T::NAME
        )));
    }
    let payload = &body[20 + hlen..];
    let n = header
        .tensors
        .iter()
        .try_fold(0usize, |acc, s| {
            s.iter()
                .try_fold(1usize, |p, &d| p.checked_mul(d))
                .and_then(|len| acc.checked_add(len))
        })
        .ok_or_else(|| corrupt("tensor shapes overflow".into()))?;
    if n.checked_mul(width::<T>()) != Some(payload.len()) {
        return Err(corrupt(format!(
            "the shapes announce {n} values but the payload holds {} bytes",
            payload.len()
        )));
    }
    let mut at = 0;
    let mut tensors = Vec::with_capacity(header.tensors.len());
    for shape in &header.tensors {
        let len: usize = shape.iter().product();
        let chunk = &payload[at * width::<T>()..(at + len) * width::<T>()];
        let data: Vec<T> = if width::<T>() == 4 {
            chunk
                .chunks_exact(4)
                .map(|c| T::cast(f32::from_le_bytes(c.try_into().expect("4")) as f64))
                .collect()
        } else {
            chunk
                .chunks_exact(8)
                .map(|c| T::cast(f64::from_le_bytes(c.try_into().expect("8"))))
                .collect()
        };
        at += len;
        tensors.push(ArrayD::from_shape_vec(IxDyn(shape), data).expect("length checked"));
    }
    Ok((header.meta, tensors))
}

#[derive(Serialize, Deserialize)]
struct ModelMeta {
    architecture: Architecture,
}

impl<T: Scalar> Lstm<T> {
    /// The model's [`Architecture`] (what a file must match to be loaded into it).
    pub fn architecture(&self) -> Architecture {
        Architecture {
            config: self.config().clone(),
            wiring: self.wiring(),
            maps: self.map_descriptions(),
            n_classes: self.n_classes(),
            params: self.param_specs(),
        }
    }

    /// Copies `tensors` (in the order of [`params`](Self::params)) into the model.
    ///
    /// # Errors
    /// [`Error::ShapeMismatch`] if the number or shapes of the tensors differ from the
    /// model's; [`Error::NonFinite`] for NaN or infinite values (the model is unchanged
    /// on error).
    pub fn set_params(&mut self, tensors: &[ArrayD<T>]) -> Result<()> {
        let specs = self.param_specs();
        if tensors.len() != specs.len()
            || tensors
                .iter()
                .zip(&specs)
                .any(|(t, s)| t.shape() != s.shape.as_slice())
        {
            return Err(Error::ShapeMismatch {
                context: "Lstm::set_params (all parameter shapes, concatenated)",
                expected: specs.iter().flat_map(|s| s.shape.clone()).collect(),
                got: tensors.iter().flat_map(|t| t.shape().to_vec()).collect(),
            });
        }
        if let Some(k) = tensors
            .iter()
            .position(|t| t.iter().any(|v| !v.is_finite()))
        {
            return Err(Error::NonFinite {
                context: "Lstm::set_params",
                index: k,
            });
        }
        for (mut p, t) in self.params_mut().into_iter().zip(tensors) {
            p.assign(t);
        }
        Ok(())
    }

    /// Owned copies of every parameter tensor.
    pub fn params_owned(&self) -> Vec<ArrayD<T>> {
        self.params().iter().map(|p| p.to_owned()).collect()
    }

    /// Saves the parameters and the architecture to `path` (atomically; format in the
    /// [module docs](crate::models)).
    ///
    /// # Errors
    /// [`Error::Io`] if the file cannot be written.
    ///
    /// # Example
    /// ```
    /// use tnet::models::{Lstm, LstmConfig};
    /// let cfg = LstmConfig::new(4, 3);
    /// let a = Lstm::<f32>::dense(&cfg, 2, 1).unwrap();
    /// let path = std::env::temp_dir().join("tnet_doc_lstm_model.bin");
    /// a.save(&path).unwrap();
    /// let mut b = Lstm::<f32>::dense(&cfg, 2, 99).unwrap();
    /// b.load_params(&path).unwrap();
    /// assert_eq!(a.params(), b.params());
    /// ```
    pub fn save(&self, path: impl AsRef<Path>) -> Result<()> {
        let meta = serde_json::to_value(ModelMeta {
            architecture: self.architecture(),
        })
        .map_err(|e| Error::corrupt(e.to_string()))?;
        write_container(path.as_ref(), MODEL_KIND, meta, &self.params())
    }

    /// Loads parameters saved by [`save`](Self::save) into this model, which must have
    /// the same architecture.
    ///
    /// # Errors
    /// [`Error::Io`] if unreadable; [`Error::Corrupt`] if damaged, of another kind or
    /// dtype; [`Error::Version`] for another container version;
    /// [`Error::InvalidParameter`] naming the first difference if the file was written
    /// for another architecture.
    pub fn load_params(&mut self, path: impl AsRef<Path>) -> Result<()> {
        let path = path.as_ref();
        let (meta, tensors) = read_container::<T>(path, MODEL_KIND)?;
        self.set_saved_params(meta, &tensors, path)
            .map_err(|e| crate::io::with_path(e, path))
    }

    /// [`load_params`](Self::load_params) from the bytes of a model file (`path` names
    /// it in errors).
    pub(crate) fn load_params_from_bytes(&mut self, bytes: &[u8], path: &Path) -> Result<()> {
        let (meta, tensors) = parse_container::<T>(bytes, MODEL_KIND)?;
        self.set_saved_params(meta, &tensors, path)
    }

    fn set_saved_params(
        &mut self,
        meta: serde_json::Value,
        tensors: &[ArrayD<T>],
        path: &Path,
    ) -> Result<()> {
        let meta: ModelMeta = serde_json::from_value(meta)
            .map_err(|e| Error::corrupt(format!("unreadable model description: {e}")))?;
        meta.architecture.expect_same(&self.architecture(), path)?;
        self.set_params(tensors)
    }
}
