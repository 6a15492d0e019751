//! The versioned JSON files of the formats (crate-private), written once.
//!
//! Every format saves `{"format": <magic>, "version": <n>, "dtype": "f32"|"f64", ..}`
//! followed by its own fields. Loading parses the whole file, checks the header
//! ([`check_header`]) and builds the tensor through the format's checked constructor, so
//! a corrupt or hand-edited file gives an error, never an invalid tensor. Writes are
//! atomic ([`crate::io::write_atomic`]).

use std::path::Path;

use ndarray::{Array3, ArrayD};
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
    let bytes = crate::io::map(path)?;
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

/// What the compressed container's description says about a stored tensor besides its
/// cores: its name (for messages), shape, and the structure fields some formats need.
pub(crate) struct StoredLayout<'a> {
    pub name: &'a str,
    pub shape: &'a [usize],
    pub tree: Option<&'a str>,
    pub blocks: Option<usize>,
}

/// How a format is stored in the compressed container (`tnet::compress`): its cores under
/// stable names, and the tensor rebuilt from them through its checked constructor.
/// Implemented in each format's `io.rs`, next to its JSON file.
pub(crate) trait Stored<T: Scalar>: Sized {
    /// The names of the cores (`"tt/0"`, `"ht/3"`, `"bt/1/factor/2"`, ..) in storage
    /// order.
    fn core_names(&self) -> Vec<String>;

    /// The cores in the order of [`core_names`](Self::core_names).
    fn core_arrays(&self) -> Vec<ArrayD<T>>;

    /// The tensor from its cores; anything inconsistent is [`Error::Corrupt`].
    fn from_stored(layout: &StoredLayout<'_>, cores: Vec<ArrayD<T>>) -> Result<Self>;
}

impl StoredLayout<'_> {
    /// `Ok` if there are `want` cores (`None`: the count overflowed).
    pub fn count<T>(&self, cores: &[ArrayD<T>], want: Option<usize>, what: &str) -> Result<()> {
        match want {
            Some(n) if n == cores.len() => Ok(()),
            _ => Err(Error::corrupt(format!(
                "'{}' has {} cores, which does not fit {what}",
                self.name,
                cores.len()
            ))),
        }
    }

    /// A constructor's error as a corrupt-file error naming the tensor.
    pub fn invalid(&self, format: &str, e: Error) -> Error {
        match e {
            Error::Corrupt { .. } => e,
            other => Error::corrupt(format!(
                "'{}': the {format} cores are invalid: {other}",
                self.name
            )),
        }
    }

    /// One 3-D core per mode (a train or a ring), checked for count and dimension.
    pub fn chain<T>(&self, cores: Vec<ArrayD<T>>) -> Result<Vec<Array3<T>>> {
        self.count(&cores, Some(self.shape.len()), "its order")?;
        cores
            .into_iter()
            .enumerate()
            .map(|(t, a)| self.shaped::<T, ndarray::Ix3>(t, a))
            .collect()
    }

    /// Core `t` as an array of `D` dimensions.
    pub fn shaped<T, D: ndarray::Dimension>(
        &self,
        t: usize,
        a: ArrayD<T>,
    ) -> Result<ndarray::Array<T, D>> {
        let shape = a.shape().to_vec();
        a.into_dimensionality::<D>().map_err(|_| {
            Error::corrupt(format!(
                "core {t} of '{}' has shape {shape:?}, expected {} dimensions",
                self.name,
                D::NDIM.map_or("other".to_string(), |n| n.to_string())
            ))
        })
    }
}

/// Tucker blocks from consecutive runs of `d + 1` stored cores (core, then factors), named
/// `{prefix}/core`, `{prefix}/factor/{k}`: shared by the Tucker and block-term formats.
pub(crate) mod tucker_blocks {
    use ndarray::ArrayD;

    use super::StoredLayout;
    use crate::{Result, Scalar, TuckerTensor};

    /// The names of one block.
    pub fn names(prefix: &str, d: usize) -> Vec<String> {
        std::iter::once(format!("{prefix}/core"))
            .chain((0..d).map(|k| format!("{prefix}/factor/{k}")))
            .collect()
    }

    /// The arrays of one block.
    pub fn arrays<T: Scalar>(t: &TuckerTensor<T>) -> Vec<ArrayD<T>> {
        std::iter::once(t.core().clone())
            .chain(t.factors().iter().map(|u| u.clone().into_dyn()))
            .collect()
    }

    /// The blocks (the caller has checked the count is a multiple of `d + 1`).
    pub fn rebuild<T: Scalar>(
        layout: &StoredLayout<'_>,
        format: &str,
        cores: Vec<ArrayD<T>>,
    ) -> Result<Vec<TuckerTensor<T>>> {
        let d = layout.shape.len();
        let mut it = cores.into_iter().enumerate();
        let mut blocks = Vec::new();
        while let Some((_, core)) = it.next() {
            let factors = it
                .by_ref()
                .take(d)
                .map(|(t, u)| layout.shaped::<T, ndarray::Ix2>(t, u))
                .collect::<Result<Vec<_>>>()?;
            blocks
                .push(TuckerTensor::try_new(core, factors).map_err(|e| layout.invalid(format, e))?);
        }
        Ok(blocks)
    }
}
