//! `tnet._tnet`: the extension module behind the Python package `tnet`.
//!
//! Arrays cross without copies where the layout allows: a `float32`/`float64` NumPy array
//! is read in place (any strides) through a read-only borrow, and every array handed back
//! is a Rust allocation given to NumPy as it is. Decompositions, products and file
//! operations run with the GIL released, so Python threads decompose in parallel. Every
//! `tnet::Error` becomes a Python exception carrying its message: `TnetError` (a
//! `ValueError`) for bad input, `OSError` for files, `MemoryError` when the memory limit
//! refuses an allocation.
//!
//! The Python package (`python/tnet/__init__.py`) converts other dtypes, documents the
//! API and converts to and from TensorLy; this module is its engine.

use std::path::PathBuf;

use ndarray::{Array2, Array3, ArrayD, ArrayViewD, Ix2, Ix3};
use numpy::{
    Element, IntoPyArray, PyArray2, PyArrayDyn, PyArrayMethods, PyReadonlyArrayDyn,
    PyUntypedArrayMethods,
};
use pyo3::create_exception;
use pyo3::exceptions::{PyMemoryError, PyOSError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyList;

use tnet::compress::{self, AnyCompressed, CompressOptions, CompressedFile, CompressedTensor};
use tnet::formats::AlsOptions;
use tnet::formats::bt::BtOptions;
use tnet::formats::tucker::{HosvdOptions, HosvdVariant};
use tnet::formats::{Decomposition, FormatKind, Method};
use tnet::linalg::Sketch;
use tnet::matrices::{Init, MatrixFormat, MatrixShape, TensorizedMatrix};
use tnet::weights::Dtype;
use tnet::{
    BtMatrix, BtTensor, DimTree, Factorized, HtMatrix, Scalar, TrLayout, TrMatrix, TrTensor,
    Truncation, TruncationInfo, TtMatrix, TtTensor, TuckerTensor,
};

create_exception!(
    _tnet,
    TnetError,
    PyValueError,
    "Bad input to tnet: a shape, rank, tolerance, tree or file that tnet refuses; the \
     message says what to fix."
);

/// A tnet error as the Python exception a user expects.
fn py_err(e: tnet::Error) -> PyErr {
    match e {
        tnet::Error::Io { .. } => PyOSError::new_err(e.to_string()),
        tnet::Error::TooLarge { .. } => PyMemoryError::new_err(e.to_string()),
        e => TnetError::new_err(e.to_string()),
    }
}

fn param(name: &'static str, reason: impl Into<String>) -> tnet::Error {
    tnet::Error::InvalidParameter {
        name,
        reason: reason.into(),
    }
}

fn bad(msg: impl Into<String>) -> PyErr {
    TnetError::new_err(msg.into())
}

trait OrPy<T> {
    fn py(self) -> PyResult<T>;
}

impl<T> OrPy<T> for tnet::Result<T> {
    fn py(self) -> PyResult<T> {
        self.map_err(py_err)
    }
}

// ---------------------------------------------------------------------------------------
// arrays in and out
// ---------------------------------------------------------------------------------------

/// A borrowed NumPy array of either precision.
enum ArrayIn<'py> {
    F32(PyReadonlyArrayDyn<'py, f32>),
    F64(PyReadonlyArrayDyn<'py, f64>),
}

impl<'py> ArrayIn<'py> {
    /// Borrows `x` read-only; anything but a native float32/float64 array is refused (the
    /// Python layer converts other inputs before calling).
    fn borrow(x: &Bound<'py, PyAny>, what: &str) -> PyResult<Self> {
        if let Ok(a) = x.downcast::<PyArrayDyn<f64>>() {
            return Ok(ArrayIn::F64(
                a.try_readonly().map_err(|e| bad(format!("{what}: {e}")))?,
            ));
        }
        if let Ok(a) = x.downcast::<PyArrayDyn<f32>>() {
            return Ok(ArrayIn::F32(
                a.try_readonly().map_err(|e| bad(format!("{what}: {e}")))?,
            ));
        }
        Err(bad(format!(
            "{what}: expected a float32 or float64 numpy array, got {}",
            describe_py(x)
        )))
    }

    fn shape(&self) -> Vec<usize> {
        match self {
            ArrayIn::F32(a) => a.shape().to_vec(),
            ArrayIn::F64(a) => a.shape().to_vec(),
        }
    }
}

/// Runs `$body` with `$v` bound to the borrowed array's view, in either precision.
macro_rules! with_array {
    ($x:expr, $v:ident => $body:expr) => {
        match $x {
            ArrayIn::F32(a) => {
                let $v = a.as_array();
                $body
            }
            ArrayIn::F64(a) => {
                let $v = a.as_array();
                $body
            }
        }
    };
}

fn describe_py(x: &Bound<'_, PyAny>) -> String {
    if let Ok(a) = x.downcast::<numpy::PyUntypedArray>() {
        return format!("an array of dtype {}", a.dtype());
    }
    match x.get_type().name() {
        Ok(n) => format!("{n}"),
        Err(_) => "an object".into(),
    }
}

/// A dense array handed to NumPy without a copy.
fn array_out<'py, T: Element>(py: Python<'py>, a: ArrayD<T>) -> Bound<'py, PyAny> {
    a.into_pyarray(py).into_any()
}

fn dtype_name<T: Scalar>() -> &'static str {
    if T::NAME == "f32" {
        "float32"
    } else {
        "float64"
    }
}

// ---------------------------------------------------------------------------------------
// the truncation rule
// ---------------------------------------------------------------------------------------

/// The rule from the keyword arguments: a rank cap, a relative or absolute tolerance, any
/// combination, or `exact`.
fn rule(
    rank: Option<usize>,
    rel_eps: Option<f64>,
    abs_eps: Option<f64>,
    exact: bool,
) -> PyResult<Truncation> {
    if exact && (rank.is_some() || rel_eps.is_some() || abs_eps.is_some()) {
        return Err(bad(
            "exact=True keeps every singular value; it cannot be combined with rank, rel_eps \
             or abs_eps",
        ));
    }
    let mut t = Truncation::exact();
    if !exact && rank.is_none() && rel_eps.is_none() && abs_eps.is_none() {
        return Err(bad(
            "give a truncation rule: rank=R (cap on every rank), rel_eps=E (relative error \
             at most E), abs_eps=E, or exact=True",
        ));
    }
    if let Some(r) = rank {
        t = t.with_max_rank(r);
    }
    if let Some(e) = rel_eps {
        t = t.with_rel_eps(e);
    }
    if let Some(e) = abs_eps {
        t = t.with_abs_eps(e);
    }
    t.check().py()?;
    Ok(t)
}

fn format_kind(name: &str) -> PyResult<FormatKind> {
    name.parse::<FormatKind>().py()
}

fn tree_arg(tree: Option<&str>, format: FormatKind) -> PyResult<Option<DimTree>> {
    match tree {
        None => Ok(None),
        Some(_) if format != FormatKind::Ht => Err(bad(format!(
            "tree is only meaningful for the ht format (a dimension tree), not {format}"
        ))),
        Some(s) => Ok(Some(s.parse::<DimTree>().py()?)),
    }
}

fn bt_options(blocks: Option<usize>, seed: u64) -> PyResult<BtOptions> {
    let o = BtOptions {
        blocks: blocks.unwrap_or(BtOptions::default().blocks),
        seed,
        ..BtOptions::default()
    };
    o.check().py()
}

// ---------------------------------------------------------------------------------------
// Decomposition
// ---------------------------------------------------------------------------------------

/// What the decomposition discarded: `None` for a tensor that was loaded or built from
/// cores (nothing is known about a tensor it approximates).
#[derive(Clone, Debug)]
struct Discarded {
    error_bound: f64,
    input_norm: f64,
    rel_error: Option<f64>,
    singular_values: Vec<Vec<f64>>,
    /// ALS runs (HOOI): the relative error after each sweep, the start first.
    errors: Option<Vec<f64>>,
}

impl Discarded {
    fn new<T: Scalar>(info: &TruncationInfo<T>, distance: Option<T>) -> Self {
        let norm = info.input_norm.as_f64();
        Self {
            error_bound: info.error_bound.as_f64(),
            input_norm: norm,
            rel_error: distance.map(|d| {
                if norm > 0.0 {
                    d.as_f64() / norm
                } else {
                    d.as_f64()
                }
            }),
            singular_values: info
                .singular_values
                .iter()
                .map(|s| s.iter().map(|v| v.as_f64()).collect())
                .collect(),
            errors: None,
        }
    }
}

/// A tensor (or a tensorized weight matrix) in one of tnet's formats.
#[pyclass(module = "tnet._tnet", name = "Decomposition", frozen)]
struct PyDecomposition {
    inner: AnyCompressed,
    discarded: Option<Discarded>,
}

/// Runs `$body` with `$c` bound to the `CompressedTensor` of either precision.
macro_rules! with_tensor {
    ($any:expr, $c:ident => $body:expr) => {
        match $any {
            AnyCompressed::F32($c) => $body,
            AnyCompressed::F64($c) => $body,
        }
    };
}

fn unknown_format() -> tnet::Error {
    param(
        "format",
        "a format this version of the bindings does not know",
    )
}

/// `a op b` for two decompositions of the same format (sum or difference).
fn combine<T: Scalar>(
    a: &Decomposition<T>,
    b: &Decomposition<T>,
    subtract: bool,
) -> tnet::Result<Decomposition<T>> {
    use Decomposition as D;
    let mismatch = || {
        param(
            "other",
            format!(
                "both operands must have the same format, got {} and {}",
                a.format(),
                b.format()
            ),
        )
    };
    Ok(match (a, b) {
        (D::Ht(x), D::Ht(y)) => D::Ht(if subtract { x.sub(y)? } else { x.add(y)? }),
        (D::Tt(x), D::Tt(y)) => D::Tt(if subtract { x.sub(y)? } else { x.add(y)? }),
        (D::Tr(x), D::Tr(y)) => D::Tr(if subtract { x.sub(y)? } else { x.add(y)? }),
        (D::Tucker(x), D::Tucker(y)) => D::Tucker(if subtract { x.sub(y)? } else { x.add(y)? }),
        (D::Bt(x), D::Bt(y)) => D::Bt(if subtract { x.sub(y)? } else { x.add(y)? }),
        _ => return Err(mismatch()),
    })
}

fn inner_product<T: Scalar>(a: &Decomposition<T>, b: &Decomposition<T>) -> tnet::Result<T> {
    use Decomposition as D;
    match (a, b) {
        (D::Ht(x), D::Ht(y)) => x.inner(y),
        (D::Tt(x), D::Tt(y)) => x.inner(y),
        (D::Tr(x), D::Tr(y)) => x.inner(y),
        (D::Tucker(x), D::Tucker(y)) => x.inner(y),
        (D::Bt(x), D::Bt(y)) => x.inner(y),
        _ => Err(param(
            "other",
            format!(
                "both operands must have the same format, got {} and {}",
                a.format(),
                b.format()
            ),
        )),
    }
}

fn scaled<T: Scalar>(a: &Decomposition<T>, alpha: T) -> tnet::Result<Decomposition<T>> {
    use Decomposition as D;
    Ok(match a {
        D::Ht(x) => D::Ht(x.scale(alpha)),
        D::Tt(x) => D::Tt(x.scale(alpha)),
        D::Tr(x) => D::Tr(x.scale(alpha)),
        D::Tucker(x) => D::Tucker(x.scale(alpha)),
        D::Bt(x) => D::Bt(x.scale(alpha)),
        _ => return Err(unknown_format()),
    })
}

fn rounded<T: Scalar>(
    a: &Decomposition<T>,
    rule: &Truncation,
) -> tnet::Result<(Decomposition<T>, TruncationInfo<T>)> {
    use Decomposition as D;
    Ok(match a {
        D::Ht(x) => x.round(rule).map(|(y, i)| (D::Ht(y), i))?,
        D::Tt(x) => x.round(rule).map(|(y, i)| (D::Tt(y), i))?,
        D::Tr(x) => x.round(rule).map(|(y, i)| (D::Tr(y), i))?,
        D::Tucker(x) => x.round(rule).map(|(y, i)| (D::Tucker(y), i))?,
        D::Bt(x) => x.round(rule).map(|(y, i)| (D::Bt(y), i))?,
        _ => return Err(unknown_format()),
    })
}

/// Two compressed tensors of the same precision and layout, or an error naming the
/// difference.
fn same_layout<T: Scalar>(a: &CompressedTensor<T>, b: &CompressedTensor<T>) -> tnet::Result<()> {
    if a.shape != b.shape || a.matrix != b.matrix {
        return Err(tnet::Error::ShapeMismatch {
            context: "arithmetic on decompositions (shape and tensorization must agree)",
            expected: a.shape.clone(),
            got: b.shape.clone(),
        });
    }
    Ok(())
}

impl PyDecomposition {
    fn plain(inner: AnyCompressed) -> Self {
        Self {
            inner,
            discarded: None,
        }
    }

    fn decomposition_format(&self) -> FormatKind {
        with_tensor!(&self.inner, c => c.decomposition.format())
    }

    /// The result of a binary operation on `self` and `other` (same precision).
    fn binary(&self, other: &PyDecomposition, subtract: bool) -> PyResult<PyDecomposition> {
        let out = match (&self.inner, &other.inner) {
            (AnyCompressed::F32(a), AnyCompressed::F32(b)) => {
                same_layout(a, b).py()?;
                AnyCompressed::F32(CompressedTensor {
                    decomposition: combine(&a.decomposition, &b.decomposition, subtract).py()?,
                    ..a.clone()
                })
            }
            (AnyCompressed::F64(a), AnyCompressed::F64(b)) => {
                same_layout(a, b).py()?;
                AnyCompressed::F64(CompressedTensor {
                    decomposition: combine(&a.decomposition, &b.decomposition, subtract).py()?,
                    ..a.clone()
                })
            }
            _ => {
                return Err(bad(
                    "both operands must have the same dtype (float32 or float64)",
                ));
            }
        };
        Ok(Self::plain(out))
    }
}

#[pymethods]
impl PyDecomposition {
    /// The format: "ht", "tt", "tr", "tucker" or "bt".
    #[getter]
    fn format(&self) -> &'static str {
        self.decomposition_format().name()
    }

    /// The shape of the tensor represented (for a tensorized matrix, the matrix's
    /// `(rows, cols)`).
    #[getter]
    fn shape(&self) -> Vec<usize> {
        with_tensor!(&self.inner, c => c.shape.clone())
    }

    /// The shape of the tensor the format holds (the tensorized shape for a matrix).
    #[getter]
    fn tensor_shape(&self) -> Vec<usize> {
        with_tensor!(&self.inner, c => c.decomposition.as_factorized().shape().to_vec())
    }

    /// The dtype of the cores: "float32" or "float64".
    #[getter]
    fn dtype(&self) -> &'static str {
        match &self.inner {
            AnyCompressed::F32(_) => "float32",
            AnyCompressed::F64(_) => "float64",
        }
    }

    /// The ranks (HT: one per node, pre-order, root first; TT: `[1, r_1, .., 1]`; TR:
    /// `[r_0, .., r_{d-1}]`; Tucker: `[R_1, .., R_d]`; BT: each block's Tucker ranks, block
    /// after block).
    #[getter]
    fn ranks(&self) -> Vec<usize> {
        with_tensor!(&self.inner, c => c.decomposition.ranks())
    }

    /// The dimension tree (HT only), as a spec such as "((0,1),(2,3))".
    #[getter]
    fn tree(&self) -> Option<String> {
        with_tensor!(&self.inner, c => c.decomposition.tree())
    }

    /// The number of blocks (BT only).
    #[getter]
    fn n_blocks(&self) -> Option<usize> {
        with_tensor!(&self.inner, c => c.decomposition.blocks())
    }

    /// `(out_modes, in_modes)` of a tensorized weight matrix, else None.
    #[getter]
    fn matrix_modes(&self) -> Option<(Vec<usize>, Vec<usize>)> {
        with_tensor!(&self.inner, c => c.matrix.as_ref().map(|m| (m.out_modes.clone(), m.in_modes.clone())))
    }

    /// Number of stored scalars.
    #[getter]
    fn n_params(&self) -> usize {
        self.inner.n_params()
    }

    /// Entries of the dense tensor over stored scalars.
    #[getter]
    fn compression_ratio(&self) -> f64 {
        with_tensor!(&self.inner, c => c.compression_ratio())
    }

    /// The names of the cores, in the order of `cores` ("tt/0", "ht/3", "tucker/core",
    /// "tucker/factor/1", "bt/0/core", ..).
    #[getter]
    fn core_names(&self) -> Vec<String> {
        with_tensor!(&self.inner, c => c.decomposition.core_names())
    }

    /// The cores as new NumPy arrays, in the order of `core_names`.
    #[getter]
    fn cores<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let arrays: Vec<Bound<'py, PyAny>> = with_tensor!(&self.inner, c => c
            .decomposition
            .core_arrays()
            .into_iter()
            .map(|a| array_out(py, a))
            .collect());
        PyList::new(py, arrays)
    }

    /// The bound on `||X - self||_F` the truncation guaranteed (BT: the error BT-ALS
    /// reached), or None for a tensor loaded from a file or built from cores.
    #[getter]
    fn error_bound(&self) -> Option<f64> {
        self.discarded.as_ref().map(|d| d.error_bound)
    }

    /// `error_bound / ||X||_F`.
    #[getter]
    fn rel_error_bound(&self) -> Option<f64> {
        self.discarded.as_ref().map(|d| {
            if d.input_norm > 0.0 {
                d.error_bound / d.input_norm
            } else {
                d.error_bound
            }
        })
    }

    /// The measured `||X - self||_F / ||X||_F`, when the decomposition measured it.
    #[getter]
    fn rel_error(&self) -> Option<f64> {
        self.discarded.as_ref().and_then(|d| d.rel_error)
    }

    /// `||X||_F` of the tensor that was decomposed.
    #[getter]
    fn input_norm(&self) -> Option<f64> {
        self.discarded.as_ref().map(|d| d.input_norm)
    }

    /// The singular values of every truncation step (each step's full spectrum).
    #[getter]
    fn singular_values(&self) -> Option<Vec<Vec<f64>>> {
        self.discarded.as_ref().map(|d| d.singular_values.clone())
    }

    /// HOOI: the relative error before the first sweep and after each sweep
    /// (non-increasing); None for the other algorithms.
    #[getter]
    fn error_history(&self) -> Option<Vec<f64>> {
        self.discarded.as_ref().and_then(|d| d.errors.clone())
    }

    /// The dense tensor (the matrix, for a tensorized matrix), as a new NumPy array.
    fn to_dense<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        with_tensor!(&self.inner, c => {
            let x = py.detach(|| c.to_dense()).py()?;
            Ok(array_out(py, x))
        })
    }

    /// `||self||_F`, without forming the dense tensor.
    fn norm(&self, py: Python<'_>) -> f64 {
        with_tensor!(&self.inner, c => py.detach(|| c.decomposition.as_factorized().norm().as_f64()))
    }

    /// One entry of the format's tensor (the tensorized shape, for a matrix).
    fn entry(&self, index: Vec<usize>) -> PyResult<f64> {
        with_tensor!(&self.inner, c => c.decomposition.as_factorized().entry(&index).py().map(|v| v.as_f64()))
    }

    /// `||x - self||_F` for a dense `x` of the same shape, without forming `self` densely
    /// (a tensorized matrix is rebuilt once).
    fn distance(&self, py: Python<'_>, x: &Bound<'_, PyAny>) -> PyResult<f64> {
        let x = ArrayIn::borrow(x, "x")?;
        match (&self.inner, &x) {
            (AnyCompressed::F64(c), ArrayIn::F64(a)) => {
                let v = a.as_array();
                py.detach(|| c.distance(v)).py()
            }
            (AnyCompressed::F32(c), ArrayIn::F32(a)) => {
                let v = a.as_array();
                py.detach(|| c.distance(v)).py().map(|d| d.as_f64())
            }
            _ => Err(bad(format!(
                "x has another dtype than the decomposition ({})",
                self.dtype()
            ))),
        }
    }

    /// Re-compresses without forming the dense tensor (orthogonalization and truncated
    /// SVDs of the small cores), to a rank cap and/or a tolerance; returns a new
    /// decomposition whose `error_bound` bounds `||self - result||_F`.
    #[pyo3(signature = (*, rank=None, rel_eps=None, abs_eps=None))]
    fn round(
        &self,
        py: Python<'_>,
        rank: Option<usize>,
        rel_eps: Option<f64>,
        abs_eps: Option<f64>,
    ) -> PyResult<PyDecomposition> {
        let rule = rule(rank, rel_eps, abs_eps, false)?;
        let (inner, discarded) = with_tensor!(&self.inner, c => {
            let (d, info) = py.detach(|| rounded(&c.decomposition, &rule)).py()?;
            let discarded = Discarded::new(&info, None);
            (CompressedTensor { decomposition: d, ..c.clone() }.into(), discarded)
        });
        Ok(PyDecomposition {
            inner,
            discarded: Some(discarded),
        })
    }

    /// `<self, other>` (same format, shape and dtype), without forming either densely.
    fn inner(&self, py: Python<'_>, other: &PyDecomposition) -> PyResult<f64> {
        match (&self.inner, &other.inner) {
            (AnyCompressed::F32(a), AnyCompressed::F32(b)) => {
                same_layout(a, b).py()?;
                py.detach(|| inner_product(&a.decomposition, &b.decomposition))
                    .py()
                    .map(|v| v.as_f64())
            }
            (AnyCompressed::F64(a), AnyCompressed::F64(b)) => {
                same_layout(a, b).py()?;
                py.detach(|| inner_product(&a.decomposition, &b.decomposition))
                    .py()
            }
            _ => Err(bad(
                "both operands must have the same dtype (float32 or float64)",
            )),
        }
    }

    fn __add__(&self, other: &PyDecomposition) -> PyResult<PyDecomposition> {
        self.binary(other, false)
    }

    fn __sub__(&self, other: &PyDecomposition) -> PyResult<PyDecomposition> {
        self.binary(other, true)
    }

    fn __mul__(&self, alpha: f64) -> PyResult<PyDecomposition> {
        if !alpha.is_finite() || (self.dtype() == "float32" && !(alpha as f32).is_finite()) {
            return Err(bad(format!(
                "the factor {alpha} is not finite in {}",
                self.dtype()
            )));
        }
        let inner: AnyCompressed = match &self.inner {
            AnyCompressed::F32(c) => CompressedTensor {
                decomposition: scaled(&c.decomposition, alpha as f32).py()?,
                ..c.clone()
            }
            .into(),
            AnyCompressed::F64(c) => CompressedTensor {
                decomposition: scaled(&c.decomposition, alpha).py()?,
                ..c.clone()
            }
            .into(),
        };
        Ok(PyDecomposition::plain(inner))
    }

    fn __rmul__(&self, alpha: f64) -> PyResult<PyDecomposition> {
        self.__mul__(alpha)
    }

    fn __neg__(&self) -> PyResult<PyDecomposition> {
        self.__mul__(-1.0)
    }

    /// Writes the decomposition to a `.safetensors` container (the format of `tnet
    /// decompose`), atomically: a reader sees the old file or the new one.
    #[pyo3(signature = (path, *, name="tensor"))]
    fn save(&self, py: Python<'_>, path: PathBuf, name: &str) -> PyResult<()> {
        let file = CompressedFile {
            tensors: vec![(name.to_string(), self.inner.clone())],
            ..CompressedFile::default()
        };
        py.detach(|| file.write(&path)).py()
    }

    fn __repr__(&self) -> String {
        let shape = self
            .shape()
            .iter()
            .map(|k| k.to_string())
            .collect::<Vec<_>>()
            .join("x");
        let bound = match self.rel_error_bound() {
            Some(b) => format!(", rel_error_bound={b:.3e}"),
            None => String::new(),
        };
        format!(
            "Decomposition(format={}, shape={shape}, ranks={:?}, n_params={}, dtype={}{bound})",
            self.format(),
            self.ranks(),
            self.n_params(),
            self.dtype()
        )
    }
}

/// A plain (not tensorized) tensor in its own precision.
fn plain<T: Scalar>(decomposition: Decomposition<T>) -> CompressedTensor<T> {
    CompressedTensor {
        shape: decomposition.as_factorized().shape().to_vec(),
        dtype: Dtype::from_name(T::NAME).expect("f32 or f64"),
        matrix: None,
        decomposition,
    }
}

/// Decomposes `x` (borrowed, any strides) under the options; the true error is measured
/// (and checked against the bound) when `measure` is set.
fn decompose_t<T: Scalar>(
    x: ArrayViewD<'_, T>,
    opts: &compress::DecomposeOptions,
    measure: bool,
) -> tnet::Result<(CompressedTensor<T>, Discarded)> {
    let dtype = Dtype::from_name(T::NAME).expect("f32 or f64");
    let (c, info) = compress::decompose_unmeasured(x.view(), dtype, opts)?;
    let distance = measured(&c, &info, x, measure)?;
    Ok((c, Discarded::new(&info, distance)))
}

/// The true distance to `x` when `measure` is set, refused when it exceeds the bound.
fn measured<T: Scalar>(
    c: &CompressedTensor<T>,
    info: &TruncationInfo<T>,
    x: ArrayViewD<'_, T>,
    measure: bool,
) -> tnet::Result<Option<T>> {
    if !measure {
        return Ok(None);
    }
    let d = c.distance(x)?;
    info.check_measured("decompose", d)?;
    Ok(Some(d))
}

/// decompose(x, format, *, rank=None, rel_eps=None, abs_eps=None, exact=False, tree=None,
/// blocks=None, out_modes=None, in_modes=None, measure_error=True, seed=0, method="svd",
/// oversample=None, power_iterations=None)
/// --
///
/// The engine of `tnet.decompose`; see its docstring.
#[pyfunction]
#[pyo3(signature = (x, format, *, rank=None, rel_eps=None, abs_eps=None, exact=false, tree=None, blocks=None, out_modes=None, in_modes=None, measure_error=true, seed=0, method="svd", oversample=None, power_iterations=None))]
#[allow(clippy::too_many_arguments)]
fn decompose(
    py: Python<'_>,
    x: &Bound<'_, PyAny>,
    format: &str,
    rank: Option<usize>,
    rel_eps: Option<f64>,
    abs_eps: Option<f64>,
    exact: bool,
    tree: Option<&str>,
    blocks: Option<usize>,
    out_modes: Option<Vec<usize>>,
    in_modes: Option<Vec<usize>>,
    measure_error: bool,
    seed: u64,
    method: &str,
    oversample: Option<usize>,
    power_iterations: Option<usize>,
) -> PyResult<PyDecomposition> {
    let format = format_kind(format)?;
    let method = match method {
        "svd" => {
            if oversample.is_some() || power_iterations.is_some() {
                return Err(bad(
                    "oversample and power_iterations are only meaningful with method=\"randomized\"",
                ));
            }
            Method::Svd
        }
        "randomized" => {
            let d = Sketch::default();
            Method::Randomized(Sketch {
                oversample: oversample.unwrap_or(d.oversample),
                power_iterations: power_iterations.unwrap_or(d.power_iterations),
                seed,
            })
        }
        other => {
            return Err(bad(format!(
                "unknown method '{other}' (expected \"svd\" or \"randomized\")"
            )));
        }
    };
    let x = ArrayIn::borrow(x, "x")?;
    let shape = x.shape();
    let matrix = match (out_modes, in_modes) {
        (None, None) => None,
        (Some(o), Some(i)) => {
            if shape.len() != 2 {
                return Err(bad(format!(
                    "out_modes/in_modes tensorize a 2-D weight, but the array has shape {shape:?}"
                )));
            }
            Some(compress::MatrixModes::new(shape[0], shape[1], o, i).py()?)
        }
        _ => return Err(bad("give both out_modes and in_modes, or neither")),
    };
    let order = matrix.as_ref().map_or(shape.len(), |m| m.out_modes.len());
    let tree = tree_arg(tree, format)?;
    if let Some(t) = &tree {
        t.check_order(order).py()?;
    }
    if blocks.is_some() && format != FormatKind::Bt {
        return Err(bad(format!(
            "blocks is only meaningful for the bt format, not {format}"
        )));
    }
    let opts = compress::DecomposeOptions {
        format,
        rule: rule(rank, rel_eps, abs_eps, exact)?,
        tree,
        matrix,
        bt: bt_options(blocks, seed)?,
        method,
    };
    let (inner, discarded) = with_array!(&x, v => {
        let (c, d) = py.detach(|| decompose_t(v, &opts, measure_error)).py()?;
        (AnyCompressed::from(c), d)
    });
    Ok(PyDecomposition {
        inner,
        discarded: Some(discarded),
    })
}

fn hooi_t<T: Scalar>(
    x: ArrayViewD<'_, T>,
    rule: &Truncation,
    opts: &AlsOptions,
) -> tnet::Result<(CompressedTensor<T>, Discarded)> {
    let (y, report) = tnet::formats::tucker::hooi(x.view(), rule, opts)?;
    let norm = tnet::dense::norm(x.view());
    let error = report.final_error().as_f64();
    let discarded = Discarded {
        error_bound: error * norm.as_f64(),
        input_norm: norm.as_f64(),
        rel_error: Some(error),
        singular_values: Vec::new(),
        errors: Some(report.errors.iter().map(|e| e.as_f64()).collect()),
    };
    let c = plain(Decomposition::Tucker(y));
    Ok((c, discarded))
}

fn hosvd_t<T: Scalar>(
    x: ArrayViewD<'_, T>,
    rule: &Truncation,
    opts: &HosvdOptions,
    measure: bool,
) -> tnet::Result<(CompressedTensor<T>, Discarded)> {
    let (y, info) = tnet::formats::tucker::hosvd(x.view(), rule, opts)?;
    let c = plain(Decomposition::Tucker(y));
    let distance = measured(&c, &info, x, measure)?;
    Ok((c, Discarded::new(&info, distance)))
}

/// hosvd(x, *, rank=None, rel_eps=None, abs_eps=None, exact=False, sequential=True,
/// mode_ranks=None, measure_error=True)
/// --
///
/// The engine of `tnet.hosvd`; see its docstring.
#[pyfunction]
#[pyo3(signature = (x, *, rank=None, rel_eps=None, abs_eps=None, exact=false, sequential=true, mode_ranks=None, measure_error=true))]
#[allow(clippy::too_many_arguments)]
fn hosvd(
    py: Python<'_>,
    x: &Bound<'_, PyAny>,
    rank: Option<usize>,
    rel_eps: Option<f64>,
    abs_eps: Option<f64>,
    exact: bool,
    sequential: bool,
    mode_ranks: Option<Vec<usize>>,
    measure_error: bool,
) -> PyResult<PyDecomposition> {
    let x = ArrayIn::borrow(x, "x")?;
    // Per-mode ranks alone are a rule: keep everything else.
    let exact =
        exact || (mode_ranks.is_some() && rank.is_none() && rel_eps.is_none() && abs_eps.is_none());
    let rule = rule(rank, rel_eps, abs_eps, exact)?;
    let mut opts = HosvdOptions::default().with_variant(if sequential {
        HosvdVariant::Sequential
    } else {
        HosvdVariant::Plain
    });
    if let Some(m) = mode_ranks {
        opts = opts.with_mode_ranks(m);
    }
    let (inner, discarded) = with_array!(&x, v => {
        let (c, d) = py.detach(|| hosvd_t(v, &rule, &opts, measure_error)).py()?;
        (AnyCompressed::from(c), d)
    });
    Ok(PyDecomposition {
        inner,
        discarded: Some(discarded),
    })
}

/// hooi(x, *, rank=None, rel_eps=None, abs_eps=None, exact=False, max_iter=50, tol=1e-8)
/// --
///
/// The engine of `tnet.hooi`; see its docstring.
#[pyfunction]
#[pyo3(signature = (x, *, rank=None, rel_eps=None, abs_eps=None, exact=false, max_iter=50, tol=1e-8))]
#[allow(clippy::too_many_arguments)]
fn hooi(
    py: Python<'_>,
    x: &Bound<'_, PyAny>,
    rank: Option<usize>,
    rel_eps: Option<f64>,
    abs_eps: Option<f64>,
    exact: bool,
    max_iter: usize,
    tol: f64,
) -> PyResult<PyDecomposition> {
    let x = ArrayIn::borrow(x, "x")?;
    let rule = rule(rank, rel_eps, abs_eps, exact)?;
    let opts = AlsOptions::default()
        .with_max_iter(max_iter)
        .with_tol(tol)
        .check()
        .py()?;
    let (inner, discarded) = with_array!(&x, v => {
        let (c, d) = py.detach(|| hooi_t(v, &rule, &opts)).py()?;
        (AnyCompressed::from(c), d)
    });
    Ok(PyDecomposition {
        inner,
        discarded: Some(discarded),
    })
}

/// Owned copies of NumPy arrays of one precision, or an error naming the first that is not.
fn owned<T: Scalar + Element>(arrays: &[Bound<'_, PyAny>]) -> PyResult<Vec<ArrayD<T>>> {
    arrays
        .iter()
        .enumerate()
        .map(|(k, a)| {
            let a = a.downcast::<PyArrayDyn<T>>().map_err(|_| {
                bad(format!(
                    "core {k}: expected a {} array like the first core, got {}",
                    dtype_name::<T>(),
                    describe_py(a)
                ))
            })?;
            Ok(a.try_readonly()
                .map_err(|e| bad(format!("core {k}: {e}")))?
                .as_array()
                .to_owned())
        })
        .collect()
}

fn dims<D: ndarray::Dimension, T>(
    a: ArrayD<T>,
    k: usize,
    what: &str,
) -> PyResult<ndarray::Array<T, D>> {
    let nd = a.ndim();
    a.into_dimensionality::<D>().map_err(|_| {
        bad(format!(
            "core {k}: {what} must be {}-D, got {nd}-D",
            D::NDIM.unwrap_or(0)
        ))
    })
}

/// A decomposition from its cores, validated by the format's checked constructor.
fn from_cores_t<T: Scalar + Element>(
    format: FormatKind,
    arrays: &[Bound<'_, PyAny>],
    blocks: Option<usize>,
) -> PyResult<CompressedTensor<T>> {
    let cores = owned::<T>(arrays)?;
    let tucker = |mut cores: Vec<ArrayD<T>>, first: usize| -> PyResult<TuckerTensor<T>> {
        if cores.is_empty() {
            return Err(bad("a Tucker block needs its core and one factor per mode"));
        }
        let core = cores.remove(0);
        let factors = cores
            .into_iter()
            .enumerate()
            .map(|(k, f)| dims::<Ix2, T>(f, first + 1 + k, "a factor"))
            .collect::<PyResult<Vec<Array2<T>>>>()?;
        TuckerTensor::try_new(core, factors).py()
    };
    let decomposition = match format {
        FormatKind::Tt | FormatKind::Tr => {
            let c3 = cores
                .into_iter()
                .enumerate()
                .map(|(k, c)| dims::<Ix3, T>(c, k, "a train or ring core"))
                .collect::<PyResult<Vec<Array3<T>>>>()?;
            if format == FormatKind::Tt {
                Decomposition::Tt(TtTensor::try_new(c3).py()?)
            } else {
                Decomposition::Tr(TrTensor::try_new(c3).py()?)
            }
        }
        FormatKind::Tucker => Decomposition::Tucker(tucker(cores, 0)?),
        FormatKind::Bt => {
            let n = blocks.ok_or_else(|| bad("blocks: the number of blocks is required"))?;
            if n == 0 || cores.len() % n != 0 {
                return Err(bad(format!(
                    "{} arrays cannot be {n} blocks of a core and its factors",
                    cores.len()
                )));
            }
            let per = cores.len() / n;
            let mut it = cores.into_iter();
            let mut list = Vec::with_capacity(n);
            for b in 0..n {
                list.push(tucker(it.by_ref().take(per).collect(), b * per)?);
            }
            Decomposition::Bt(BtTensor::try_new(list).py()?)
        }
        FormatKind::Ht => {
            return Err(bad(
                "HT tensors come from decompose() or load(); building one from cores is not \
                 supported",
            ));
        }
    };
    Ok(plain(decomposition))
}

/// from_cores(format, cores, *, blocks=None)
/// --
///
/// The engine of `tnet.from_cores`; see its docstring.
#[pyfunction]
#[pyo3(signature = (format, cores, *, blocks=None))]
fn from_cores(
    format: &str,
    cores: Vec<Bound<'_, PyAny>>,
    blocks: Option<usize>,
) -> PyResult<PyDecomposition> {
    let format = format_kind(format)?;
    let first = cores
        .first()
        .ok_or_else(|| bad("cores: at least one array is required"))?;
    let inner: AnyCompressed = match ArrayIn::borrow(first, "core 0")? {
        ArrayIn::F32(_) => from_cores_t::<f32>(format, &cores, blocks)?.into(),
        ArrayIn::F64(_) => from_cores_t::<f64>(format, &cores, blocks)?.into(),
    };
    Ok(PyDecomposition::plain(inner))
}

/// load_all(path)
/// --
///
/// Every compressed tensor of a tnet container, as a list of (name, Decomposition).
#[pyfunction]
fn load_all(py: Python<'_>, path: PathBuf) -> PyResult<Vec<(String, PyDecomposition)>> {
    let file = py.detach(|| CompressedFile::read(&path)).py()?;
    Ok(file
        .tensors
        .into_iter()
        .map(|(n, c)| (n, PyDecomposition::plain(c)))
        .collect())
}

/// compress_file(input, output, format, *, rank=None, rel_eps=None, abs_eps=None,
/// order=None, min_size=4096, include=(), blocks=None)
/// --
///
/// The engine of `tnet.compress_file`; returns the per-weight report as JSON text.
#[pyfunction]
#[pyo3(signature = (input, output, format, *, rank=None, rel_eps=None, abs_eps=None, order=None, min_size=4096, include=Vec::new(), blocks=None))]
#[allow(clippy::too_many_arguments)]
fn compress_file(
    py: Python<'_>,
    input: PathBuf,
    output: PathBuf,
    format: &str,
    rank: Option<usize>,
    rel_eps: Option<f64>,
    abs_eps: Option<f64>,
    order: Option<usize>,
    min_size: usize,
    include: Vec<String>,
    blocks: Option<usize>,
) -> PyResult<String> {
    let format = format_kind(format)?;
    let opts = CompressOptions {
        include,
        min_size,
        order,
        bt: bt_options(blocks, 0)?,
        ..CompressOptions::new(format, rule(rank, rel_eps, abs_eps, false)?)
    };
    tnet::io::check_distinct(&input, &output).py()?;
    py.detach(|| -> tnet::Result<String> {
        let model = compress::read_model(&input)?;
        let (file, reports) = compress::compress_model(&model, &opts)?;
        file.write(&output)?;
        let totals = compress::totals(&reports);
        Ok(serde_json_text(&reports, &totals))
    })
    .py()
}

fn serde_json_text(reports: &[compress::TensorReport], totals: &compress::Totals) -> String {
    serde_json::json!({ "tensors": reports, "totals": totals }).to_string()
}

/// reconstruct_file(input, output)
/// --
///
/// Rebuilds the dense weights of a tnet container into a `.safetensors` file.
#[pyfunction]
fn reconstruct_file(py: Python<'_>, input: PathBuf, output: PathBuf) -> PyResult<()> {
    tnet::io::check_distinct(&input, &output).py()?;
    py.detach(|| -> tnet::Result<()> {
        let file = CompressedFile::read(&input)?;
        tnet::weights::write_safetensors(&output, &file.to_dense()?)
    })
    .py()
}

// ---------------------------------------------------------------------------------------
// Matrix
// ---------------------------------------------------------------------------------------

enum AnyMatrix {
    F32(Box<dyn TensorizedMatrix<f32>>),
    F64(Box<dyn TensorizedMatrix<f64>>),
}

macro_rules! with_matrix {
    ($any:expr, $w:ident => $body:expr) => {
        match $any {
            AnyMatrix::F32($w) => $body,
            AnyMatrix::F64($w) => $body,
        }
    };
}

/// A weight matrix `W` (`M x N`) held in a tensor format and applied without being formed.
#[pyclass(module = "tnet._tnet", name = "Matrix")]
struct PyMatrix {
    inner: AnyMatrix,
    format: FormatKind,
    discarded: Option<Discarded>,
}

/// The format's structure from the keyword arguments.
struct MatrixStructure {
    tree: Option<DimTree>,
    layout: TrLayout,
    blocks: usize,
}

impl MatrixStructure {
    fn new(
        format: FormatKind,
        order: usize,
        tree: Option<&str>,
        layout: Option<&str>,
        blocks: Option<usize>,
    ) -> PyResult<Self> {
        let tree = tree_arg(tree, format)?;
        if let Some(t) = &tree {
            t.check_order(order).py()?;
        }
        let layout = match layout {
            None | Some("paired") => TrLayout::Paired,
            Some("split") => TrLayout::Split,
            Some(other) => {
                return Err(bad(format!(
                    "layout: expected 'paired' or 'split', got '{other}'"
                )));
            }
        };
        if layout == TrLayout::Split && format != FormatKind::Tr {
            return Err(bad(format!(
                "layout='split' is a tensor-ring layout, not one of {format}"
            )));
        }
        if blocks.is_some() && format != FormatKind::Bt {
            return Err(bad(format!(
                "blocks is only meaningful for the bt format, not {format}"
            )));
        }
        Ok(Self {
            tree,
            layout,
            blocks: blocks.unwrap_or(2),
        })
    }

    fn tree(&self, order: usize) -> tnet::Result<DimTree> {
        match &self.tree {
            Some(t) => Ok(t.clone()),
            None => DimTree::balanced(order),
        }
    }
}

fn matrix_shape(
    n_out: usize,
    n_in: usize,
    out_modes: Option<Vec<usize>>,
    in_modes: Option<Vec<usize>>,
    order: Option<usize>,
) -> PyResult<MatrixShape> {
    match (out_modes, in_modes) {
        (Some(o), Some(i)) => MatrixShape::for_lengths(n_out, n_in, &o, &i).py(),
        (None, None) => {
            let d = order.unwrap_or_else(|| compress::auto_order(n_out, n_in));
            MatrixShape::balanced(n_out, n_in, d).py()
        }
        _ => Err(bad("give both out_modes and in_modes, or neither")),
    }
}

fn matrix_from_dense<T: Scalar>(
    w: ndarray::ArrayView2<'_, T>,
    format: FormatKind,
    shape: &MatrixShape,
    s: &MatrixStructure,
    rule: &Truncation,
) -> tnet::Result<(Box<dyn TensorizedMatrix<T>>, TruncationInfo<T>)> {
    fn boxed<T: Scalar, M: TensorizedMatrix<T> + 'static>(
        r: tnet::Result<(M, TruncationInfo<T>)>,
    ) -> tnet::Result<(Box<dyn TensorizedMatrix<T>>, TruncationInfo<T>)> {
        r.map(|(m, i)| (Box::new(m) as Box<dyn TensorizedMatrix<T>>, i))
    }
    match format {
        FormatKind::Ht => boxed(HtMatrix::from_dense(
            w,
            shape,
            &s.tree(shape.order())?,
            rule,
        )),
        FormatKind::Tt => boxed(TtMatrix::from_dense(w, shape, &(), rule)),
        FormatKind::Tr => boxed(TrMatrix::from_dense(w, shape, &s.layout, rule)),
        FormatKind::Bt => boxed(BtMatrix::from_dense(w, shape, &s.blocks, rule)),
        other => Err(param(
            "format",
            format!("{other} has no matrix form (use ht, tt, tr or bt)"),
        )),
    }
}

fn matrix_random<T: Scalar>(
    format: FormatKind,
    shape: &MatrixShape,
    s: &MatrixStructure,
    rank: usize,
    init: Init,
    seed: u64,
) -> tnet::Result<Box<dyn TensorizedMatrix<T>>> {
    Ok(match format {
        FormatKind::Ht => Box::new(HtMatrix::random(
            shape,
            &s.tree(shape.order())?,
            rank,
            init,
            seed,
        )?),
        FormatKind::Tt => Box::new(TtMatrix::random(shape, &(), rank, init, seed)?),
        FormatKind::Tr => Box::new(TrMatrix::random(shape, &s.layout, rank, init, seed)?),
        FormatKind::Bt => Box::new(BtMatrix::random(shape, &s.blocks, rank, init, seed)?),
        other => {
            return Err(param(
                "format",
                format!("{other} has no matrix form (use ht, tt, tr or bt)"),
            ));
        }
    })
}

/// A 1-D or 2-D batch borrowed as `B x len` (a vector is a batch of one).
fn batch<'a, T: Element>(
    a: &'a PyReadonlyArrayDyn<'_, T>,
    what: &str,
) -> PyResult<(ndarray::ArrayView2<'a, T>, bool)> {
    let v = a.as_array();
    match v.ndim() {
        1 => {
            let n = v.len();
            Ok((
                v.into_shape_with_order((1, n))
                    .map_err(|e| bad(format!("{what}: {e}")))?,
                true,
            ))
        }
        2 => Ok((
            v.into_dimensionality::<Ix2>()
                .map_err(|e| bad(format!("{what}: {e}")))?,
            false,
        )),
        d => Err(bad(format!(
            "{what}: expected a vector or a batch (B x len), got a {d}-D array"
        ))),
    }
}

/// `W x` (or `W^T x` when `transpose`) for a vector or a batch of rows `a`, with the GIL
/// released during the product.
fn batch_product<'py, T: Scalar + Element>(
    py: Python<'py>,
    w: &dyn TensorizedMatrix<T>,
    a: &PyReadonlyArrayDyn<'py, T>,
    what: &str,
    transpose: bool,
) -> PyResult<Bound<'py, PyAny>> {
    let (v, vector) = batch(a, what)?;
    let y = py
        .detach(|| {
            if transpose {
                w.apply_transpose(v)
            } else {
                w.apply(v)
            }
        })
        .py()?;
    Ok(unbatch(py, y, vector))
}

fn unbatch<'py, T: Element>(py: Python<'py>, y: Array2<T>, vector: bool) -> Bound<'py, PyAny> {
    if vector {
        let n = y.ncols();
        let flat = y.into_shape_with_order(n).expect("one row");
        flat.into_pyarray(py).into_any()
    } else {
        PyArray2::from_owned_array(py, y).into_any()
    }
}

fn init_arg(init: &str) -> PyResult<Init> {
    match init {
        "glorot" => Ok(Init::Glorot),
        "he" => Ok(Init::He),
        other => match other.strip_prefix("variance:").map(str::parse::<f64>) {
            Some(Ok(v)) => Ok(Init::Variance(v)),
            _ => Err(bad(format!(
                "init: expected 'glorot', 'he' or 'variance:V', got '{other}'"
            ))),
        },
    }
}

impl PyMatrix {
    fn dtype_mismatch(&self, what: &str) -> PyErr {
        bad(format!(
            "{what} has another dtype than the matrix ({})",
            match self.inner {
                AnyMatrix::F32(_) => "float32",
                AnyMatrix::F64(_) => "float64",
            }
        ))
    }
}

#[pymethods]
impl PyMatrix {
    /// from_dense(w, format, *, out_modes=None, in_modes=None, order=None, rank=None,
    /// rel_eps=None, abs_eps=None, exact=False, tree=None, layout=None, blocks=None)
    /// --
    ///
    /// Decomposes a dense `w` (`M x N`); see `tnet.Matrix.from_dense`.
    #[staticmethod]
    #[pyo3(signature = (w, format, *, out_modes=None, in_modes=None, order=None, rank=None, rel_eps=None, abs_eps=None, exact=false, tree=None, layout=None, blocks=None))]
    #[allow(clippy::too_many_arguments)]
    fn from_dense(
        py: Python<'_>,
        w: &Bound<'_, PyAny>,
        format: &str,
        out_modes: Option<Vec<usize>>,
        in_modes: Option<Vec<usize>>,
        order: Option<usize>,
        rank: Option<usize>,
        rel_eps: Option<f64>,
        abs_eps: Option<f64>,
        exact: bool,
        tree: Option<&str>,
        layout: Option<&str>,
        blocks: Option<usize>,
    ) -> PyResult<PyMatrix> {
        let format = format_kind(format)?;
        let w = ArrayIn::borrow(w, "w")?;
        let dims = w.shape();
        if dims.len() != 2 {
            return Err(bad(format!("w: expected a 2-D matrix, got shape {dims:?}")));
        }
        let shape = matrix_shape(dims[0], dims[1], out_modes, in_modes, order)?;
        let s = MatrixStructure::new(format, shape.order(), tree, layout, blocks)?;
        let rule = rule(rank, rel_eps, abs_eps, exact)?;
        let (inner, discarded) = match &w {
            ArrayIn::F32(a) => {
                let v = a.as_array().into_dimensionality::<Ix2>().expect("2-D");
                let (m, info) = py
                    .detach(|| matrix_from_dense(v, format, &shape, &s, &rule))
                    .py()?;
                (AnyMatrix::F32(m), Discarded::new(&info, None))
            }
            ArrayIn::F64(a) => {
                let v = a.as_array().into_dimensionality::<Ix2>().expect("2-D");
                let (m, info) = py
                    .detach(|| matrix_from_dense(v, format, &shape, &s, &rule))
                    .py()?;
                (AnyMatrix::F64(m), Discarded::new(&info, None))
            }
        };
        Ok(PyMatrix {
            inner,
            format,
            discarded: Some(discarded),
        })
    }

    /// random(format, n_out, n_in, rank, *, out_modes=None, in_modes=None, order=None,
    /// dtype="float32", init="glorot", seed=0, tree=None, layout=None, blocks=None)
    /// --
    ///
    /// Random cores whose product has the `init` variance; see `tnet.Matrix.random`.
    #[staticmethod]
    #[pyo3(signature = (format, n_out, n_in, rank, *, out_modes=None, in_modes=None, order=None, dtype="float32", init="glorot", seed=0, tree=None, layout=None, blocks=None))]
    #[allow(clippy::too_many_arguments)]
    fn random(
        format: &str,
        n_out: usize,
        n_in: usize,
        rank: usize,
        out_modes: Option<Vec<usize>>,
        in_modes: Option<Vec<usize>>,
        order: Option<usize>,
        dtype: &str,
        init: &str,
        seed: u64,
        tree: Option<&str>,
        layout: Option<&str>,
        blocks: Option<usize>,
    ) -> PyResult<PyMatrix> {
        let format = format_kind(format)?;
        let shape = matrix_shape(n_out, n_in, out_modes, in_modes, order)?;
        let s = MatrixStructure::new(format, shape.order(), tree, layout, blocks)?;
        let init = init_arg(init)?;
        let inner = match dtype {
            "float32" => AnyMatrix::F32(matrix_random(format, &shape, &s, rank, init, seed).py()?),
            "float64" => AnyMatrix::F64(matrix_random(format, &shape, &s, rank, init, seed).py()?),
            other => {
                return Err(bad(format!(
                    "dtype: expected 'float32' or 'float64', got '{other}'"
                )));
            }
        };
        Ok(PyMatrix {
            inner,
            format,
            discarded: None,
        })
    }

    /// The format: "ht", "tt", "tr" or "bt".
    #[getter]
    fn format(&self) -> &'static str {
        self.format.name()
    }

    /// `(M, N)`: rows (outputs) and columns (inputs).
    #[getter]
    fn shape(&self) -> (usize, usize) {
        with_matrix!(&self.inner, w => (w.n_out(), w.n_in()))
    }

    /// The output modes `m_1..m_d` (`prod m_k = M`).
    #[getter]
    fn out_modes(&self) -> Vec<usize> {
        with_matrix!(&self.inner, w => w.shape().out_modes().to_vec())
    }

    /// The input modes `n_1..n_d` (`prod n_k = N`).
    #[getter]
    fn in_modes(&self) -> Vec<usize> {
        with_matrix!(&self.inner, w => w.shape().in_modes().to_vec())
    }

    /// "float32" or "float64".
    #[getter]
    fn dtype(&self) -> &'static str {
        match self.inner {
            AnyMatrix::F32(_) => "float32",
            AnyMatrix::F64(_) => "float64",
        }
    }

    /// Number of stored scalars.
    #[getter]
    fn n_params(&self) -> usize {
        with_matrix!(&self.inner, w => w.n_params())
    }

    /// `M N / n_params`.
    #[getter]
    fn compression_ratio(&self) -> f64 {
        with_matrix!(&self.inner, w => w.compression_ratio())
    }

    /// The bound on `||W - self||_F` of `from_dense` (None for a random matrix).
    #[getter]
    fn error_bound(&self) -> Option<f64> {
        self.discarded.as_ref().map(|d| d.error_bound)
    }

    /// `error_bound / ||W||_F`.
    #[getter]
    fn rel_error_bound(&self) -> Option<f64> {
        self.discarded.as_ref().map(|d| {
            if d.input_norm > 0.0 {
                d.error_bound / d.input_norm
            } else {
                d.error_bound
            }
        })
    }

    /// `Y = X W^T` for a batch `X` (`B x N`), or `y = W x` for a vector.
    fn apply<'py>(&self, py: Python<'py>, x: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
        match (&self.inner, ArrayIn::borrow(x, "x")?) {
            (AnyMatrix::F32(w), ArrayIn::F32(a)) => batch_product(py, w.as_ref(), &a, "x", false),
            (AnyMatrix::F64(w), ArrayIn::F64(a)) => batch_product(py, w.as_ref(), &a, "x", false),
            _ => Err(self.dtype_mismatch("x")),
        }
    }

    /// `dX = dY W` for a batch `dY` (`B x M`): the product with `W^T` from the right.
    fn apply_transpose<'py>(
        &self,
        py: Python<'py>,
        dy: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        match (&self.inner, ArrayIn::borrow(dy, "dy")?) {
            (AnyMatrix::F32(w), ArrayIn::F32(a)) => batch_product(py, w.as_ref(), &a, "dy", true),
            (AnyMatrix::F64(w), ArrayIn::F64(a)) => batch_product(py, w.as_ref(), &a, "dy", true),
            _ => Err(self.dtype_mismatch("dy")),
        }
    }

    /// The backward pass of `Y = X W^T`: `(dX, [dL/dcore, ..])` for `X` (`B x N`) and
    /// `dY = dL/dY` (`B x M`); the gradients in the order and shapes of `params`.
    fn backward<'py>(
        &self,
        py: Python<'py>,
        x: &Bound<'py, PyAny>,
        dy: &Bound<'py, PyAny>,
    ) -> PyResult<(Bound<'py, PyAny>, Bound<'py, PyList>)> {
        match (
            &self.inner,
            ArrayIn::borrow(x, "x")?,
            ArrayIn::borrow(dy, "dy")?,
        ) {
            (AnyMatrix::F32(w), ArrayIn::F32(a), ArrayIn::F32(b)) => {
                let ((xv, vector), (dv, _)) = (batch(&a, "x")?, batch(&b, "dy")?);
                let (dx, grads) = py.detach(|| w.backward(xv, dv)).py()?;
                let g: Vec<_> = grads.into_iter().map(|g| array_out(py, g)).collect();
                Ok((unbatch(py, dx, vector), PyList::new(py, g)?))
            }
            (AnyMatrix::F64(w), ArrayIn::F64(a), ArrayIn::F64(b)) => {
                let ((xv, vector), (dv, _)) = (batch(&a, "x")?, batch(&b, "dy")?);
                let (dx, grads) = py.detach(|| w.backward(xv, dv)).py()?;
                let g: Vec<_> = grads.into_iter().map(|g| array_out(py, g)).collect();
                Ok((unbatch(py, dx, vector), PyList::new(py, g)?))
            }
            _ => Err(self.dtype_mismatch("x or dy")),
        }
    }

    /// The parameter arrays (the cores), as new NumPy arrays.
    #[getter]
    fn params<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let arrays: Vec<Bound<'py, PyAny>> = with_matrix!(&self.inner, w => w
            .params()
            .into_iter()
            .map(|p| array_out(py, p.to_owned()))
            .collect());
        PyList::new(py, arrays)
    }

    /// Replaces the parameters by arrays of the same count, shapes and dtype (an optimiser
    /// step taken in Python).
    fn set_params(&mut self, params: Vec<Bound<'_, PyAny>>) -> PyResult<()> {
        fn set<T: Scalar + Element>(
            w: &mut dyn TensorizedMatrix<T>,
            params: &[Bound<'_, PyAny>],
        ) -> PyResult<()> {
            let new = owned::<T>(params)?;
            let mut slots = w.params_mut();
            if new.len() != slots.len() {
                return Err(bad(format!(
                    "expected {} parameter arrays, got {}",
                    slots.len(),
                    new.len()
                )));
            }
            for (k, (slot, p)) in slots.iter().zip(&new).enumerate() {
                if slot.shape() != p.shape() {
                    return Err(bad(format!(
                        "parameter {k}: expected shape {:?}, got {:?}",
                        slot.shape(),
                        p.shape()
                    )));
                }
                if let Some(i) = p.iter().position(|v| !v.is_finite()) {
                    return Err(bad(format!(
                        "parameter {k}: non-finite value at flat index {i}"
                    )));
                }
            }
            for (slot, p) in slots.iter_mut().zip(&new) {
                slot.assign(p);
            }
            Ok(())
        }
        match &mut self.inner {
            AnyMatrix::F32(w) => set(w.as_mut(), &params),
            AnyMatrix::F64(w) => set(w.as_mut(), &params),
        }
    }

    /// The dense `W` (`M x N`), as a new NumPy array.
    fn to_dense<'py>(&self, py: Python<'py>) -> Bound<'py, PyAny> {
        with_matrix!(&self.inner, w => {
            let d = py.detach(|| w.to_dense());
            PyArray2::from_owned_array(py, d).into_any()
        })
    }

    /// `||W||_F`, without forming `W`.
    fn norm(&self, py: Python<'_>) -> f64 {
        with_matrix!(&self.inner, w => py.detach(|| w.frobenius_norm()))
    }

    fn __repr__(&self) -> String {
        let (m, n) = self.shape();
        format!(
            "Matrix(format={}, shape=({m}, {n}), out_modes={:?}, in_modes={:?}, n_params={}, dtype={})",
            self.format(),
            self.out_modes(),
            self.in_modes(),
            self.n_params(),
            self.dtype()
        )
    }
}

/// The extension module.
#[pymodule]
fn _tnet(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("TnetError", m.py().get_type::<TnetError>())?;
    m.add_class::<PyDecomposition>()?;
    m.add_class::<PyMatrix>()?;
    m.add_function(wrap_pyfunction!(decompose, m)?)?;
    m.add_function(wrap_pyfunction!(hosvd, m)?)?;
    m.add_function(wrap_pyfunction!(hooi, m)?)?;
    m.add_function(wrap_pyfunction!(from_cores, m)?)?;
    m.add_function(wrap_pyfunction!(load_all, m)?)?;
    m.add_function(wrap_pyfunction!(compress_file, m)?)?;
    m.add_function(wrap_pyfunction!(reconstruct_file, m)?)?;
    m.add(
        "FORMATS",
        FormatKind::ALL.iter().map(|f| f.name()).collect::<Vec<_>>(),
    )?;
    Ok(())
}
