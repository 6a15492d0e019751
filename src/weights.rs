//! Reading and writing dense weights: `.npy`, `.npz` and `.safetensors`.
//!
//! This is how real weights get in and compressed weights get out. Everything here is pure
//! Rust and never panics on a bad file: a malformed, truncated or mismatched file gives
//! [`Error::Corrupt`] naming the file (and the entry inside it), an unreadable one
//! [`Error::Io`].
//!
//! | file | read | written |
//! |---|---|---|
//! | `.npy` (NumPy, format versions 1–3) | `float16`, `float32`, `float64`; little or big endian; C or Fortran order | `<f2`, `<f4`, `<f8`, C order (bf16 is widened to `<f4`: NumPy has no bfloat16) |
//! | `.npz` (a zip of `.npy` members, stored or deflated) | as `.npy`, one [`Weight`] per member | — |
//! | `.safetensors` | `F16`, `BF16`, `F32`, `F64` decoded; any other dtype kept as raw bytes ([`RawTensor`]) | all of these, plus the `__metadata__` string map |
//!
//! Values are widened on reading: `f64` stays `f64` ([`DenseArray::F64`]), the others become
//! `f32` ([`DenseArray::F32`]); the dtype the file held is kept in [`Weight::dtype`] so that a
//! writer can narrow back to it. All writes are atomic (see
//! [`write_atomic`](crate::io::write_atomic)).
//!
//! # Example
//! ```
//! use tnet::weights::{self, DenseArray, Dtype, Weight};
//! let w = Weight::new("w", Dtype::F16, DenseArray::F32(ndarray::ArrayD::from_elem(vec![2, 3], 0.5)));
//! let path = std::env::temp_dir().join("tnet_doc_weights.npy");
//! weights::write_npy(&path, &w).unwrap();
//! let back = weights::read_npy(&path).unwrap();
//! assert_eq!(back.dtype, Dtype::F16);
//! assert_eq!(back.data, w.data);
//! ```

use std::collections::BTreeMap;
use std::fmt;
use std::io::Read;
use std::path::Path;

use ndarray::{ArrayD, ArrayViewD, IxDyn, ShapeBuilder};

use crate::{Error, Result, Scalar};

/// The floating-point dtypes read and written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Dtype {
    /// IEEE binary16.
    F16,
    /// bfloat16 (the upper half of an `f32`).
    BF16,
    /// IEEE binary32.
    F32,
    /// IEEE binary64.
    F64,
}

impl Dtype {
    /// Bytes per element.
    pub fn size(self) -> usize {
        match self {
            Dtype::F16 | Dtype::BF16 => 2,
            Dtype::F32 => 4,
            Dtype::F64 => 8,
        }
    }

    /// The lowercase name (`"f16"`, `"bf16"`, `"f32"`, `"f64"`).
    pub fn name(self) -> &'static str {
        match self {
            Dtype::F16 => "f16",
            Dtype::BF16 => "bf16",
            Dtype::F32 => "f32",
            Dtype::F64 => "f64",
        }
    }

    /// Parses a lowercase name as written by [`name`](Self::name).
    pub fn from_name(s: &str) -> Option<Self> {
        match s {
            "f16" => Some(Dtype::F16),
            "bf16" => Some(Dtype::BF16),
            "f32" => Some(Dtype::F32),
            "f64" => Some(Dtype::F64),
            _ => None,
        }
    }

    fn to_safetensors(self) -> safetensors::Dtype {
        match self {
            Dtype::F16 => safetensors::Dtype::F16,
            Dtype::BF16 => safetensors::Dtype::BF16,
            Dtype::F32 => safetensors::Dtype::F32,
            Dtype::F64 => safetensors::Dtype::F64,
        }
    }

    fn from_safetensors(d: safetensors::Dtype) -> Option<Self> {
        match d {
            safetensors::Dtype::F16 => Some(Dtype::F16),
            safetensors::Dtype::BF16 => Some(Dtype::BF16),
            safetensors::Dtype::F32 => Some(Dtype::F32),
            safetensors::Dtype::F64 => Some(Dtype::F64),
            _ => None,
        }
    }
}

impl fmt::Display for Dtype {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A dense row-major array in one of the two compute precisions.
#[derive(Clone, Debug, PartialEq)]
pub enum DenseArray {
    /// Single precision (also what `f16` and `bf16` are widened to).
    F32(ArrayD<f32>),
    /// Double precision.
    F64(ArrayD<f64>),
}

impl DenseArray {
    /// Wraps an array of either precision without copying.
    pub fn from_array<T: Scalar>(a: ArrayD<T>) -> Self {
        let mut slot = Some(a);
        let any: &mut dyn std::any::Any = &mut slot;
        if let Some(s) = any.downcast_mut::<Option<ArrayD<f32>>>() {
            return DenseArray::F32(s.take().expect("filled above"));
        }
        if let Some(s) = any.downcast_mut::<Option<ArrayD<f64>>>() {
            return DenseArray::F64(s.take().expect("filled above"));
        }
        unreachable!("Scalar is sealed to f32 and f64")
    }

    /// The array in precision `T` (moved when it already is `T`, converted otherwise).
    pub fn into_array<T: Scalar>(self) -> ArrayD<T> {
        match self {
            DenseArray::F32(a) => {
                try_cast_owned(a).unwrap_or_else(|a| a.mapv(|v| T::cast(v as f64)))
            }
            DenseArray::F64(a) => try_cast_owned(a).unwrap_or_else(|a| a.mapv(T::cast)),
        }
    }

    /// The shape.
    pub fn shape(&self) -> &[usize] {
        match self {
            DenseArray::F32(a) => a.shape(),
            DenseArray::F64(a) => a.shape(),
        }
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        match self {
            DenseArray::F32(a) => a.len(),
            DenseArray::F64(a) => a.len(),
        }
    }

    /// True when the array has no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The precision it is held in (`F32` or `F64`).
    pub fn precision(&self) -> Dtype {
        match self {
            DenseArray::F32(_) => Dtype::F32,
            DenseArray::F64(_) => Dtype::F64,
        }
    }

    /// Little-endian bytes of the values narrowed or widened to `dtype`, row-major.
    ///
    /// # Errors
    /// [`Error::NonFinite`] for a NaN or infinite value (a reconstruction whose cores are
    /// finite but whose products overflow ends here); [`Error::InvalidParameter`]
    /// (`dtype`) for a finite value outside the range of `dtype` (above 65,504 in f16,
    /// above about 3.4e38 in f32 and bf16), which would be written as infinity.
    pub fn to_le_bytes(&self, dtype: Dtype) -> Result<Vec<u8>> {
        let too_large = |index: usize, v: f64| {
            Error::param(
                "dtype",
                format!(
                    "the value {v:e} at flat index {index} is outside the range of {} and would \
                     be written as infinity; write a wider dtype (`tnet reconstruct --dtype \
                     f32`)",
                    dtype.name()
                ),
            )
        };
        let mut out = Vec::with_capacity(self.len() * dtype.size());
        macro_rules! put {
            ($a:expr, $conv:expr) => {
                for (index, &v) in $a.iter().enumerate() {
                    if !v.is_finite() {
                        return Err(Error::NonFinite {
                            context: "the values to write",
                            index,
                        });
                    }
                    let (bytes, finite) = $conv(v);
                    if !finite {
                        return Err(too_large(index, v as f64));
                    }
                    out.extend_from_slice(&bytes);
                }
            };
        }
        match (self, dtype) {
            (DenseArray::F32(a), Dtype::F32) => put!(a, |v: f32| (v.to_le_bytes(), true)),
            (DenseArray::F32(a), Dtype::F64) => put!(a, |v: f32| ((v as f64).to_le_bytes(), true)),
            (DenseArray::F32(a), Dtype::F16) => put!(a, |v| {
                let h = half::f16::from_f32(v);
                (h.to_le_bytes(), h.is_finite())
            }),
            (DenseArray::F32(a), Dtype::BF16) => put!(a, |v| {
                let h = half::bf16::from_f32(v);
                (h.to_le_bytes(), h.is_finite())
            }),
            (DenseArray::F64(a), Dtype::F32) => put!(a, |v: f64| {
                let h = v as f32;
                (h.to_le_bytes(), h.is_finite())
            }),
            (DenseArray::F64(a), Dtype::F64) => put!(a, |v: f64| (v.to_le_bytes(), true)),
            (DenseArray::F64(a), Dtype::F16) => put!(a, |v| {
                let h = half::f16::from_f64(v);
                (h.to_le_bytes(), h.is_finite())
            }),
            (DenseArray::F64(a), Dtype::BF16) => put!(a, |v| {
                let h = half::bf16::from_f64(v);
                (h.to_le_bytes(), h.is_finite())
            }),
        }
        Ok(out)
    }
}

fn try_cast_owned<S: Scalar, T: Scalar>(a: ArrayD<S>) -> std::result::Result<ArrayD<T>, ArrayD<S>> {
    let mut slot = Some(a);
    let any: &mut dyn std::any::Any = &mut slot;
    match any.downcast_mut::<Option<ArrayD<T>>>() {
        Some(s) => Ok(s.take().expect("filled above")),
        None => Err(slot.expect("not taken")),
    }
}

/// One named floating-point array: its values and the dtype the file held.
#[derive(Clone, Debug, PartialEq)]
pub struct Weight {
    /// The entry's name (the safetensors key, the `.npz` member without `.npy`, or the
    /// `.npy` file stem).
    pub name: String,
    /// The dtype stored in (or to be written to) the file.
    pub dtype: Dtype,
    /// The values, widened to `f32` unless the file held `f64`.
    pub data: DenseArray,
}

impl Weight {
    /// Bundles a name, a storage dtype and values.
    pub fn new(name: impl Into<String>, dtype: Dtype, data: DenseArray) -> Self {
        Self {
            name: name.into(),
            dtype,
            data,
        }
    }
}

/// A safetensors entry of a dtype that is not decoded (integers, booleans, fp8, ...),
/// kept as raw bytes so that it can be written back unchanged.
#[derive(Clone, Debug, PartialEq)]
pub struct RawTensor {
    /// The entry's name.
    pub name: String,
    dtype: safetensors::Dtype,
    /// The shape.
    pub shape: Vec<usize>,
    /// The raw little-endian bytes.
    pub bytes: Vec<u8>,
}

impl RawTensor {
    /// The safetensors dtype name (`"I64"`, `"BOOL"`, ...).
    pub fn dtype_name(&self) -> String {
        format!("{:?}", self.dtype)
    }
}

/// One entry of a safetensors file.
#[derive(Clone, Debug, PartialEq)]
pub enum Entry {
    /// A decoded floating-point array.
    Weight(Weight),
    /// Any other dtype, kept as bytes.
    Raw(RawTensor),
}

impl Entry {
    /// The entry's name.
    pub fn name(&self) -> &str {
        match self {
            Entry::Weight(w) => &w.name,
            Entry::Raw(r) => &r.name,
        }
    }

    /// The entry's shape.
    pub fn shape(&self) -> &[usize] {
        match self {
            Entry::Weight(w) => w.data.shape(),
            Entry::Raw(r) => &r.shape,
        }
    }
}

/// The contents of a safetensors file: entries in file order and the `__metadata__` map.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SafetensorsFile {
    /// The entries, in the order of their data in the file.
    pub entries: Vec<Entry>,
    /// The free-form string metadata (`__metadata__`).
    pub metadata: BTreeMap<String, String>,
}

impl SafetensorsFile {
    /// The entry with this name.
    pub fn get(&self, name: &str) -> Option<&Entry> {
        self.entries.iter().find(|e| e.name() == name)
    }
}

fn corrupt(path: &Path, reason: impl Into<String>) -> Error {
    Error::Corrupt {
        path: Some(path.to_path_buf()),
        reason: reason.into(),
    }
}

// ---------------------------------------------------------------------------------------
// .npy
// ---------------------------------------------------------------------------------------

const NPY_MAGIC: &[u8; 6] = b"\x93NUMPY";

/// Reads a `.npy` file (float16/32/64, either byte order, C or Fortran order).
///
/// The weight's name is the file stem.
///
/// # Errors
/// [`Error::Io`] if unreadable; [`Error::Corrupt`] (naming the file) for a bad magic
/// string, a malformed header, an unsupported dtype (with the dtype named), or data of the
/// wrong length.
pub fn read_npy(path: impl AsRef<Path>) -> Result<Weight> {
    NpyFile::open(path)?.to_weight()
}

/// A `.npy` file opened without reading it: the header is parsed and checked, the data is
/// memory-mapped (see [`NpyFile::open`]).
///
/// [`view`](Self::view) borrows the data **without a copy** when it is stored as the
/// asked precision in native byte order (`<f8` for `f64`, `<f4` for `f32` on little-endian
/// machines, NumPy's default): a decomposition then reads the file's pages directly and
/// no memory the size of the tensor is allocated for the input. Any other file is decoded
/// by [`to_weight`](Self::to_weight), as [`read_npy`] does.
///
/// # Example
/// ```
/// use tnet::weights::{self, DenseArray, Dtype, NpyFile, Weight};
/// let x = ndarray::ArrayD::from_shape_fn(vec![3, 4], |i| (i[0] * 4 + i[1]) as f64);
/// let path = std::env::temp_dir().join("tnet_doc_npyfile.npy");
/// weights::write_npy(&path, &Weight::new("x", Dtype::F64, DenseArray::F64(x.clone()))).unwrap();
/// let file = NpyFile::open(&path).unwrap();
/// assert_eq!((file.dtype(), file.shape()), (Dtype::F64, &[3usize, 4][..]));
/// assert_eq!(file.view::<f64>().unwrap(), x.view()); // borrowed from the mapping
/// assert!(file.view::<f32>().is_none()); // another precision: decode instead
/// assert_eq!(file.to_weight().unwrap().data.into_array::<f64>(), x);
/// ```
pub struct NpyFile {
    name: String,
    path: std::path::PathBuf,
    bytes: crate::io::FileBytes,
    header: NpyHeader,
}

impl NpyFile {
    /// Opens a `.npy` file: maps it (reads it if it cannot be mapped), parses and checks
    /// the header and the data length. The weight's name is the file stem.
    ///
    /// # Errors
    /// As [`read_npy`], except that the data itself is not decoded yet.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let bytes = crate::io::map(path)?;
        let header = parse_npy_header(&bytes).map_err(|e| with_path(Error::corrupt(e), path))?;
        Ok(Self {
            name: path
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default(),
            path: path.to_path_buf(),
            bytes,
            header,
        })
    }

    /// The weight's name (the file stem).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The dtype stored in the file.
    pub fn dtype(&self) -> Dtype {
        self.header.dtype
    }

    /// The array's shape.
    pub fn shape(&self) -> &[usize] {
        &self.header.shape
    }

    /// The data as an array view of `T`, borrowed from the mapping without a copy, when
    /// the file stores `T` in native byte order at an aligned offset (NumPy pads headers
    /// to 64 bytes, so its files are); `None` otherwise (another dtype or byte order: use
    /// [`to_weight`](Self::to_weight)). A Fortran-order file gives a view with Fortran
    /// strides.
    pub fn view<T: Scalar>(&self) -> Option<ArrayViewD<'_, T>> {
        let h = &self.header;
        if Dtype::from_name(T::NAME) != Some(h.dtype) || h.big_endian != cfg!(target_endian = "big")
        {
            return None;
        }
        let data = &self.bytes[h.offset..];
        let n = data.len() / std::mem::size_of::<T>();
        if data.as_ptr().align_offset(std::mem::align_of::<T>()) != 0
            || n * std::mem::size_of::<T>() != data.len()
        {
            return None;
        }
        // SAFETY: `data` is aligned for `T` and holds exactly `n` values of it (checked
        // above); `T` is `f32` or `f64` (the sealed `Scalar`), for which every bit pattern
        // is a valid value; the slice borrows `self.bytes`, which outlives it.
        let values: &[T] = unsafe { std::slice::from_raw_parts(data.as_ptr().cast::<T>(), n) };
        let dim = IxDyn(&h.shape);
        let view = if h.fortran {
            ArrayViewD::from_shape(dim.f(), values)
        } else {
            ArrayViewD::from_shape(dim, values)
        };
        view.ok()
    }

    /// Decodes the data into an owned weight (widening `f16` to `f32`, swapping bytes,
    /// reordering a Fortran-order array to row-major).
    ///
    /// # Errors
    /// [`Error::Corrupt`] naming the file (not expected after a successful `open`).
    pub fn to_weight(&self) -> Result<Weight> {
        let h = &self.header;
        let data = decode(&self.bytes[h.offset..], h.dtype, h.big_endian, &h.shape)
            .and_then(|d| into_standard(d, &h.shape, h.fortran))
            .map_err(|e| with_path(Error::corrupt(e), &self.path))?;
        Ok(Weight::new(self.name.clone(), h.dtype, data))
    }
}

/// Parses the bytes of a `.npy` file into a weight named `name` (see [`read_npy`]).
///
/// # Errors
/// [`Error::Corrupt`] (without a path) as [`read_npy`].
///
/// # Example
/// ```
/// use tnet::weights::npy_from_bytes;
/// let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
/// let header = "{'descr': '<f8', 'fortran_order': False, 'shape': (2,), }";
/// bytes.extend_from_slice(&(header.len() as u16).to_le_bytes());
/// bytes.extend_from_slice(header.as_bytes());
/// for v in [1.5f64, -2.0] {
///     bytes.extend_from_slice(&v.to_le_bytes());
/// }
/// let w = npy_from_bytes("x", &bytes).unwrap();
/// assert_eq!(w.data.into_array::<f64>().as_slice().unwrap(), &[1.5, -2.0]);
/// assert!(npy_from_bytes("x", &bytes[..20]).is_err());
/// ```
pub fn npy_from_bytes(name: impl Into<String>, bytes: &[u8]) -> Result<Weight> {
    let (dtype, data) = parse_npy(bytes).map_err(Error::corrupt)?;
    Ok(Weight::new(name, dtype, data))
}

/// What a `.npy` header declares, checked against the file's length.
struct NpyHeader {
    dtype: Dtype,
    big_endian: bool,
    fortran: bool,
    shape: Vec<usize>,
    /// Where the data starts.
    offset: usize,
}

/// Parses and checks the header of a `.npy` file (the data's length included).
fn parse_npy_header(bytes: &[u8]) -> std::result::Result<NpyHeader, String> {
    if bytes.len() < 10 || &bytes[..6] != NPY_MAGIC {
        return Err("not a .npy file (bad magic string)".into());
    }
    let (major, minor) = (bytes[6], bytes[7]);
    let (header_len, start): (usize, usize) = match major {
        1 => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10),
        2 | 3 => {
            if bytes.len() < 12 {
                return Err("truncated .npy header".into());
            }
            let n = u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]);
            (n as usize, 12)
        }
        _ => return Err(format!("unsupported .npy format version {major}.{minor}")),
    };
    let header = bytes
        .get(start..start.saturating_add(header_len))
        .ok_or_else(|| format!("truncated .npy header (declares {header_len} bytes)"))?;
    let header = std::str::from_utf8(header).map_err(|_| "the .npy header is not text")?;
    let dict = parse_py_dict(header)?;
    let descr = match dict.get("descr") {
        Some(PyVal::Str(s)) => s.clone(),
        Some(PyVal::List) => {
            return Err("structured (record) arrays are not supported, only float arrays".into());
        }
        _ => return Err("the .npy header has no 'descr' string".into()),
    };
    let fortran = match dict.get("fortran_order") {
        Some(PyVal::Bool(b)) => *b,
        _ => return Err("the .npy header has no 'fortran_order' flag".into()),
    };
    let shape = match dict.get("shape") {
        Some(PyVal::Tuple(s)) => s.clone(),
        _ => return Err("the .npy header has no 'shape' tuple".into()),
    };
    let (dtype, big_endian) = parse_descr(&descr)?;
    let offset = start + header_len;
    let (_, nbytes) = checked_len(&shape, dtype.size())?;
    let found = bytes.len() - offset;
    if found != nbytes {
        return Err(format!(
            "shape {shape:?} of {dtype} needs {nbytes} bytes of data, found {found} (truncated or mismatched file)"
        ));
    }
    Ok(NpyHeader {
        dtype,
        big_endian,
        fortran,
        shape,
        offset,
    })
}

/// Parses the bytes of a `.npy` file.
fn parse_npy(bytes: &[u8]) -> std::result::Result<(Dtype, DenseArray), String> {
    let h = parse_npy_header(bytes)?;
    let data = decode(&bytes[h.offset..], h.dtype, h.big_endian, &h.shape)?;
    Ok((h.dtype, into_standard(data, &h.shape, h.fortran)?))
}

fn parse_descr(descr: &str) -> std::result::Result<(Dtype, bool), String> {
    let (order, code) = match descr.chars().next() {
        Some(c @ ('<' | '>' | '=' | '|')) => (c, &descr[1..]),
        _ => ('=', descr),
    };
    let dtype = match code {
        "f2" | "e" => Dtype::F16,
        "f4" | "f" => Dtype::F32,
        "f8" | "d" => Dtype::F64,
        _ => {
            return Err(format!(
                "unsupported dtype '{descr}': only float16, float32 and float64 arrays can be read"
            ));
        }
    };
    let big = match order {
        '>' => true,
        '<' | '|' => false,
        _ => cfg!(target_endian = "big"),
    };
    Ok((dtype, big))
}

/// The most dimensions an array read from a file may have: 64, NumPy's `NPY_MAXDIMS` (2.x)
/// and PyTorch's limit. Every decomposition's bookkeeping grows with the number of
/// dimensions, so a header declaring `(1,) * 100000` took minutes; it is refused at once.
pub const MAX_NDIM: usize = 64;

/// Number of elements and bytes of `shape`, or an error when the shape is too large to
/// index (the product of its non-zero lengths times the element size must fit `isize`, as
/// ndarray requires).
fn checked_len(shape: &[usize], elem: usize) -> std::result::Result<(usize, usize), String> {
    if shape.len() > MAX_NDIM {
        return Err(format!(
            "the array has {} dimensions; at most {MAX_NDIM} are supported (the limit of \
             NumPy and PyTorch)",
            shape.len()
        ));
    }
    let too_large = || format!("shape {shape:?} is too large");
    let nonzero = shape
        .iter()
        .filter(|&&k| k != 0)
        .try_fold(1usize, |a, &k| a.checked_mul(k))
        .and_then(|n| n.checked_mul(elem))
        .filter(|&b| b <= isize::MAX as usize)
        .ok_or_else(too_large)?;
    let n = if shape.contains(&0) {
        0
    } else {
        nonzero / elem
    };
    Ok((n, n * elem))
}

/// Decodes `n` values of `dtype` from bytes (exact length required) into a flat array.
fn decode(
    data: &[u8],
    dtype: Dtype,
    big_endian: bool,
    shape: &[usize],
) -> std::result::Result<DenseArray, String> {
    let size = dtype.size();
    let (_, nbytes) = checked_len(shape, size)?;
    if data.len() != nbytes {
        return Err(format!(
            "shape {shape:?} of {dtype} needs {nbytes} bytes of data, found {} (truncated or mismatched file)",
            data.len()
        ));
    }
    macro_rules! conv {
        ($n:literal, $f:expr) => {
            data.chunks_exact($n)
                .map(|c| {
                    let mut b: [u8; $n] = c.try_into().expect("chunk size");
                    if big_endian {
                        b.reverse();
                    }
                    $f(b)
                })
                .collect()
        };
    }
    Ok(match dtype {
        Dtype::F16 => DenseArray::F32(
            ArrayD::from_shape_vec(
                IxDyn(&[data.len() / 2]),
                conv!(2, |b| half::f16::from_le_bytes(b).to_f32()),
            )
            .expect("1-D"),
        ),
        Dtype::BF16 => DenseArray::F32(
            ArrayD::from_shape_vec(
                IxDyn(&[data.len() / 2]),
                conv!(2, |b| half::bf16::from_le_bytes(b).to_f32()),
            )
            .expect("1-D"),
        ),
        Dtype::F32 => DenseArray::F32(
            ArrayD::from_shape_vec(IxDyn(&[data.len() / 4]), conv!(4, f32::from_le_bytes))
                .expect("1-D"),
        ),
        Dtype::F64 => DenseArray::F64(
            ArrayD::from_shape_vec(IxDyn(&[data.len() / 8]), conv!(8, f64::from_le_bytes))
                .expect("1-D"),
        ),
    })
}

/// Reshapes a flat array to `shape` (C or Fortran order), returning row-major storage.
fn into_standard(
    flat: DenseArray,
    shape: &[usize],
    fortran: bool,
) -> std::result::Result<DenseArray, String> {
    fn go<T: Scalar>(a: ArrayD<T>, shape: &[usize], fortran: bool) -> ArrayD<T> {
        let v = a.into_raw_vec_and_offset().0;
        let dim = IxDyn(shape);
        if fortran {
            let f = ArrayD::from_shape_vec(dim.f(), v).expect("length checked");
            f.as_standard_layout().into_owned()
        } else {
            ArrayD::from_shape_vec(dim, v).expect("length checked")
        }
    }
    Ok(match flat {
        DenseArray::F32(a) => DenseArray::F32(go(a, shape, fortran)),
        DenseArray::F64(a) => DenseArray::F64(go(a, shape, fortran)),
    })
}

#[derive(Clone, Debug)]
enum PyVal {
    Str(String),
    Bool(bool),
    Tuple(Vec<usize>),
    /// A list (structured dtype descr); its content is not needed.
    List,
}

/// Parses the Python dict literal of a `.npy` header: string keys; values are strings,
/// booleans, tuples of integers, or lists (recognised, not parsed).
fn parse_py_dict(s: &str) -> std::result::Result<BTreeMap<String, PyVal>, String> {
    let c: Vec<char> = s.chars().collect();
    let mut p = 0;
    let bad = |what: &str| format!("malformed .npy header ({what}): {:?}", s.trim_end());
    let ws = |p: &mut usize| {
        while c.get(*p).is_some_and(|ch| ch.is_whitespace()) {
            *p += 1;
        }
    };
    let string = |p: &mut usize| -> Option<String> {
        let q = *c.get(*p)?;
        if q != '\'' && q != '"' {
            return None;
        }
        let start = *p + 1;
        let len = c[start..].iter().position(|&ch| ch == q)?;
        *p = start + len + 1;
        Some(c[start..start + len].iter().collect())
    };
    ws(&mut p);
    if c.get(p) != Some(&'{') {
        return Err(bad("expected '{'"));
    }
    p += 1;
    let mut out = BTreeMap::new();
    loop {
        ws(&mut p);
        if c.get(p) == Some(&'}') {
            break;
        }
        let key = string(&mut p).ok_or_else(|| bad("expected a quoted key"))?;
        ws(&mut p);
        if c.get(p) != Some(&':') {
            return Err(bad("expected ':'"));
        }
        p += 1;
        ws(&mut p);
        let val = match c.get(p) {
            Some('\'' | '"') => {
                PyVal::Str(string(&mut p).ok_or_else(|| bad("unterminated string"))?)
            }
            Some('T') if c[p..].starts_with(&['T', 'r', 'u', 'e']) => {
                p += 4;
                PyVal::Bool(true)
            }
            Some('F') if c[p..].starts_with(&['F', 'a', 'l', 's', 'e']) => {
                p += 5;
                PyVal::Bool(false)
            }
            Some('(') => {
                p += 1;
                let mut dims = Vec::new();
                loop {
                    ws(&mut p);
                    match c.get(p) {
                        Some(')') => {
                            p += 1;
                            break;
                        }
                        Some(ch) if ch.is_ascii_digit() => {
                            let start = p;
                            while c.get(p).is_some_and(|ch| ch.is_ascii_digit()) {
                                p += 1;
                            }
                            let text: String = c[start..p].iter().collect();
                            dims.push(text.parse().map_err(|_| bad("dimension too large"))?);
                            if c.get(p) == Some(&'L') {
                                p += 1;
                            }
                            ws(&mut p);
                            match c.get(p) {
                                Some(',') => p += 1,
                                Some(')') => {}
                                _ => return Err(bad("expected ',' or ')' in the shape")),
                            }
                        }
                        _ => return Err(bad("expected a non-negative integer in the shape")),
                    }
                }
                PyVal::Tuple(dims)
            }
            Some('[') => {
                let mut depth = 0usize;
                loop {
                    match c.get(p) {
                        Some('[') => depth += 1,
                        Some(']') => {
                            depth -= 1;
                            if depth == 0 {
                                p += 1;
                                break;
                            }
                        }
                        None => return Err(bad("unterminated list")),
                        _ => {}
                    }
                    p += 1;
                }
                PyVal::List
            }
            _ => return Err(bad(&format!("unexpected value for key '{key}'"))),
        };
        out.insert(key, val);
        ws(&mut p);
        match c.get(p) {
            Some(',') => p += 1,
            Some('}') => {}
            _ => return Err(bad("expected ',' or '}'")),
        }
    }
    Ok(out)
}

/// Encodes a weight as `.npy` bytes (format 1.0, or 2.0 for a header above 64 KiB), as
/// [`write_npy`] writes them.
///
/// # Errors
/// As [`DenseArray::to_le_bytes`] (values outside the range of the weight's dtype).
pub fn encode_npy(w: &Weight) -> Result<Vec<u8>> {
    let dtype = match w.dtype {
        Dtype::BF16 => Dtype::F32,
        d => d,
    };
    let descr = match dtype {
        Dtype::F16 => "<f2",
        Dtype::F64 => "<f8",
        _ => "<f4",
    };
    let shape = w.data.shape();
    let shape_text = match shape.len() {
        1 => format!("({},)", shape[0]),
        _ => format!(
            "({})",
            shape
                .iter()
                .map(|k| k.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    let mut header =
        format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape_text}, }}");
    let (version, prefix) = if header.len() + 80 < 65536 {
        (1u8, 10)
    } else {
        (2u8, 12)
    };
    let total = (prefix + header.len() + 1).div_ceil(64) * 64;
    header.push_str(&" ".repeat(total - prefix - header.len() - 1));
    header.push('\n');
    let mut out = Vec::with_capacity(total + w.data.len() * dtype.size());
    out.extend_from_slice(NPY_MAGIC);
    out.extend_from_slice(&[version, 0]);
    if version == 1 {
        out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    } else {
        out.extend_from_slice(&(header.len() as u32).to_le_bytes());
    }
    out.extend_from_slice(header.as_bytes());
    out.extend_from_slice(&w.data.to_le_bytes(dtype)?);
    Ok(out)
}

/// Writes a weight to a `.npy` file atomically, in C order, little endian, as its
/// [`dtype`](Weight::dtype) (`bf16` is written as `<f4`: NumPy has no bfloat16).
///
/// # Errors
/// [`Error::Io`] if the file cannot be written.
pub fn write_npy(path: impl AsRef<Path>, w: &Weight) -> Result<()> {
    crate::io::write_atomic(path.as_ref(), &encode_npy(w)?)
}

// ---------------------------------------------------------------------------------------
// .npz
// ---------------------------------------------------------------------------------------

/// Reads every `.npy` member of a `.npz` archive (as written by `numpy.savez` or
/// `numpy.savez_compressed`), in archive order; member names lose their `.npy` suffix.
///
/// # Errors
/// [`Error::Io`] if unreadable; [`Error::Corrupt`] naming the file and the member for a
/// broken archive (bad checksum, truncation) or a member that is not a readable float
/// `.npy`.
pub fn read_npz(path: impl AsRef<Path>) -> Result<Vec<Weight>> {
    let path = path.as_ref();
    let bytes = crate::io::map(path)?;
    npz_from_bytes(&bytes).map_err(|e| with_path(e, path))
}

/// Parses the bytes of an `.npz` archive (see [`read_npz`]): each member is inflated at
/// most to its declared size, which must fit the [memory limit](crate::limits).
///
/// # Errors
/// [`Error::Corrupt`] (without a path) as [`read_npz`]; [`Error::TooLarge`] for a member
/// declaring more than the memory limit.
pub fn npz_from_bytes(bytes: &[u8]) -> Result<Vec<Weight>> {
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(bytes))
        .map_err(|e| Error::corrupt(format!("not a readable .npz (zip) archive: {e}")))?;
    let mut out = Vec::new();
    for i in 0..zip.len() {
        let mut f = zip
            .by_index(i)
            .map_err(|e| Error::corrupt(format!("zip member {i}: {e}")))?;
        if f.is_dir() {
            continue;
        }
        let member = f.name().to_string();
        let name = member.strip_suffix(".npy").unwrap_or(&member).to_string();
        // The declared size bounds what is inflated: a member may not expand beyond it
        // (a deflate stream can expand a thousandfold), and the size itself must fit the
        // memory limit.
        let declared = f.size();
        crate::limits::check_bytes("an .npz member's declared size", declared as u128)?;
        let mut buf = Vec::with_capacity(declared.min(bytes.len() as u64) as usize);
        (&mut f)
            .take(declared.saturating_add(1))
            .read_to_end(&mut buf)
            .map_err(|e| Error::corrupt(format!("member '{member}': {e}")))?;
        if buf.len() as u64 != declared {
            return Err(Error::corrupt(format!(
                "member '{member}' declares {declared} bytes but inflates to {}",
                if buf.len() as u64 > declared {
                    "more".to_string()
                } else {
                    format!("{} bytes", buf.len())
                }
            )));
        }
        let (dtype, data) =
            parse_npy(&buf).map_err(|e| Error::corrupt(format!("member '{member}': {e}")))?;
        out.push(Weight::new(name, dtype, data));
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------
// .safetensors
// ---------------------------------------------------------------------------------------

/// Reads a `.safetensors` file: `F16`/`BF16`/`F32` entries widened to `f32`, `F64` kept,
/// any other dtype kept as raw bytes.
///
/// # Errors
/// [`Error::Io`] if unreadable; [`Error::Corrupt`] naming the file for a malformed header,
/// overlapping or out-of-range offsets, or a truncated file.
pub fn read_safetensors(path: impl AsRef<Path>) -> Result<SafetensorsFile> {
    let path = path.as_ref();
    let bytes = crate::io::map(path)?;
    parse_safetensors(&bytes).map_err(|reason| corrupt(path, reason))
}

/// Parses the bytes of a `.safetensors` file (see [`read_safetensors`]).
///
/// # Errors
/// [`Error::Corrupt`] (without a path) as [`read_safetensors`].
pub fn safetensors_from_bytes(bytes: &[u8]) -> Result<SafetensorsFile> {
    parse_safetensors(bytes).map_err(Error::corrupt)
}

fn parse_safetensors(bytes: &[u8]) -> std::result::Result<SafetensorsFile, String> {
    let (_, meta) = safetensors::SafeTensors::read_metadata(bytes)
        .map_err(|e| format!("not a valid safetensors file: {e}"))?;
    let st = safetensors::SafeTensors::deserialize(bytes)
        .map_err(|e| format!("not a valid safetensors file: {e}"))?;
    let metadata = meta
        .metadata()
        .clone()
        .unwrap_or_default()
        .into_iter()
        .collect();
    let mut entries = Vec::new();
    for name in meta.offset_keys() {
        let view = st
            .tensor(&name)
            .map_err(|e| format!("entry '{name}': {e}"))?;
        let shape = view.shape().to_vec();
        entries.push(match Dtype::from_safetensors(view.dtype()) {
            Some(dtype) => {
                let flat = decode(view.data(), dtype, false, &shape)
                    .map_err(|e| format!("entry '{name}': {e}"))?;
                let data = into_standard(flat, &shape, false)?;
                Entry::Weight(Weight { name, dtype, data })
            }
            None => Entry::Raw(RawTensor {
                name,
                dtype: view.dtype(),
                shape,
                bytes: view.data().to_vec(),
            }),
        });
    }
    Ok(SafetensorsFile { entries, metadata })
}

struct EncodedView {
    dtype: safetensors::Dtype,
    shape: Vec<usize>,
    bytes: Vec<u8>,
}

impl safetensors::View for &EncodedView {
    fn dtype(&self) -> safetensors::Dtype {
        self.dtype
    }
    fn shape(&self) -> &[usize] {
        &self.shape
    }
    fn data(&self) -> std::borrow::Cow<'_, [u8]> {
        std::borrow::Cow::Borrowed(&self.bytes)
    }
    fn data_len(&self) -> usize {
        self.bytes.len()
    }
}

/// Encodes a safetensors file in memory (weights narrowed or widened to their `dtype`).
///
/// # Errors
/// [`Error::Corrupt`] if two entries share a name or the header would be too large.
pub fn encode_safetensors(file: &SafetensorsFile) -> Result<Vec<u8>> {
    let mut views = BTreeMap::new();
    for e in &file.entries {
        let v = match e {
            Entry::Weight(w) => EncodedView {
                dtype: w.dtype.to_safetensors(),
                shape: w.data.shape().to_vec(),
                bytes: w.data.to_le_bytes(w.dtype)?,
            },
            Entry::Raw(r) => EncodedView {
                dtype: r.dtype,
                shape: r.shape.clone(),
                bytes: r.bytes.clone(),
            },
        };
        if views.insert(e.name().to_string(), v).is_some() {
            return Err(Error::corrupt(format!(
                "two safetensors entries are named '{}'",
                e.name()
            )));
        }
    }
    let meta = (!file.metadata.is_empty()).then(|| file.metadata.clone().into_iter().collect());
    safetensors::tensor::serialize(views.iter(), meta)
        .map_err(|e| Error::corrupt(format!("cannot encode safetensors: {e}")))
}

/// Writes a `.safetensors` file atomically.
///
/// # Errors
/// [`Error::Io`] if the file cannot be written; as [`encode_safetensors`].
pub fn write_safetensors(path: impl AsRef<Path>, file: &SafetensorsFile) -> Result<()> {
    let path = path.as_ref();
    let bytes = encode_safetensors(file).map_err(|e| with_path(e, path))?;
    crate::io::write_atomic(path, &bytes)
}

pub(crate) use crate::io::with_path;

// ---------------------------------------------------------------------------------------
// by extension
// ---------------------------------------------------------------------------------------

/// The kinds of weight file, told apart by extension.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileKind {
    /// `.npy`
    Npy,
    /// `.npz`
    Npz,
    /// `.safetensors`
    Safetensors,
}

impl FileKind {
    /// The kind of `path` by its extension (case-insensitive).
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] for any other extension.
    pub fn of(path: &Path) -> Result<Self> {
        let ext = path
            .extension()
            .map(|e| e.to_string_lossy().to_ascii_lowercase())
            .unwrap_or_default();
        match ext.as_str() {
            "npy" => Ok(FileKind::Npy),
            "npz" => Ok(FileKind::Npz),
            "safetensors" => Ok(FileKind::Safetensors),
            _ => Err(Error::param(
                "path",
                format!(
                    "{}: unknown file type (expected .npy, .npz or .safetensors)",
                    path.display()
                ),
            )),
        }
    }
}

/// Reads every float array of a `.npy`, `.npz` or `.safetensors` file (by extension).
///
/// # Errors
/// As the readers; [`Error::Corrupt`] if a safetensors entry has a non-float dtype;
/// [`Error::InvalidParameter`] for an unknown extension.
pub fn read_weights(path: impl AsRef<Path>) -> Result<Vec<Weight>> {
    let path = path.as_ref();
    match FileKind::of(path)? {
        FileKind::Npy => Ok(vec![read_npy(path)?]),
        FileKind::Npz => read_npz(path),
        FileKind::Safetensors => read_safetensors(path)?
            .entries
            .into_iter()
            .map(|e| match e {
                Entry::Weight(w) => Ok(w),
                Entry::Raw(r) => Err(corrupt(
                    path,
                    format!(
                        "entry '{}' has dtype {}: only F16, BF16, F32 and F64 arrays can be read",
                        r.name,
                        r.dtype_name()
                    ),
                )),
            })
            .collect(),
    }
}
