//! One array in, one decomposition out: [`decompose`](super::decompose), its options and
//! report, and the compressed tensor it returns.

use std::time::Instant;

use ndarray::{ArrayD, ArrayViewD};
use serde::{Deserialize, Serialize};

use super::{MatrixModes, TensorMeta};
use crate::formats::bt::BtOptions;
use crate::formats::{Decomposition, FormatKind, Method, StoredLayout};
use crate::weights::Dtype;
use crate::{DimTree, Error, Result, Scalar, Truncation, TruncationInfo};

/// How to decompose one array.
#[derive(Clone, Debug, PartialEq)]
pub struct DecomposeOptions {
    /// The target format.
    pub format: FormatKind,
    /// The truncation rule.
    pub rule: Truncation,
    /// The dimension tree (tree formats); balanced when `None`.
    pub tree: Option<DimTree>,
    /// Tensorize a 2-D weight with these modes first; `None` decomposes the array as it is.
    pub matrix: Option<MatrixModes>,
    /// Block count and ALS settings of the block-term format.
    pub bt: BtOptions,
    /// Exact SVDs (default) or randomized range finders.
    pub method: Method,
}

impl DecomposeOptions {
    /// A plain-tensor decomposition into `format` under `rule`, on the balanced tree.
    pub fn new(format: FormatKind, rule: Truncation) -> Self {
        Self {
            format,
            rule,
            tree: None,
            matrix: None,
            bt: BtOptions::default(),
            method: Method::Svd,
        }
    }
}

/// A decomposed array together with what is needed to give the dense array back.
#[derive(Clone, Debug, PartialEq)]
pub struct CompressedTensor<T> {
    /// The original array's shape.
    pub shape: Vec<usize>,
    /// The dtype the original was stored in (the dense array is written back in it).
    pub dtype: Dtype,
    /// The tensorization, for a weight matrix.
    pub matrix: Option<MatrixModes>,
    /// The decomposition of the (tensorized) array.
    pub decomposition: Decomposition<T>,
}

impl<T: Scalar> CompressedTensor<T> {
    /// The dense array (matricized back and unpadded for a weight matrix).
    ///
    /// Memory: the tensor's `Π n_k` entries, three times over for a weight matrix (the
    /// tensor, its permutation and the unpadded copy), or the format's intermediates
    /// ([`Factorized::dense_work`](crate::Factorized::dense_work)) if more, checked against the
    /// [memory limit](crate::limits) before anything is allocated.
    ///
    /// # Errors
    /// [`Error::TooLarge`] if that exceeds the limit (a small container may declare a huge
    /// shape); [`Error::NonFinite`] if the cores are finite but their product overflows
    /// the scalar type, which no dense array can hold.
    pub fn to_dense(&self) -> Result<ArrayD<T>> {
        let f = self.decomposition.as_factorized();
        let copies = if self.matrix.is_some() { 3 } else { 1 };
        let result = crate::limits::elements(f.shape()).saturating_mul(copies);
        let entries = result.max(f.dense_work());
        crate::limits::check_bytes(
            "the rebuilt dense array and its intermediates",
            entries.saturating_mul(std::mem::size_of::<T>() as u128),
        )?;
        let x = f.to_dense();
        let x = match &self.matrix {
            Some(m) => m.matricize(x.view())?,
            None => x,
        };
        if let Some(index) = x.iter().position(|v| !v.is_finite()) {
            return Err(Error::NonFinite {
                context: "the rebuilt dense array (the cores are finite, their product overflows)",
                index,
            });
        }
        Ok(x)
    }

    /// Number of stored scalars.
    pub fn n_params(&self) -> usize {
        self.decomposition.as_factorized().n_params()
    }

    /// `‖X − Y‖_F` against the original array `x`: slab by slab for a plain tensor (the
    /// reconstruction is never held whole, [`Factorized::distance`](crate::Factorized::distance));
    /// a tensorized weight is rebuilt through its layout once.
    ///
    /// # Errors
    /// [`Error::ShapeMismatch`] if `x` has not the original shape; as
    /// [`to_dense`](Self::to_dense) for a weight.
    pub fn distance(&self, x: ArrayViewD<'_, T>) -> Result<T> {
        if x.shape() != self.shape.as_slice() {
            return Err(Error::ShapeMismatch {
                context: "CompressedTensor::distance",
                expected: self.shape.clone(),
                got: x.shape().to_vec(),
            });
        }
        match &self.matrix {
            None => self.decomposition.distance(x),
            Some(_) => crate::dense::distance(x, self.to_dense()?.view()),
        }
    }

    /// Entries of the original array.
    pub fn dense_len(&self) -> usize {
        self.shape.iter().product()
    }

    /// `dense_len / n_params`.
    pub fn compression_ratio(&self) -> f64 {
        self.dense_len() as f64 / self.n_params() as f64
    }

    pub(super) fn meta(&self, name: &str) -> TensorMeta {
        TensorMeta {
            name: name.to_string(),
            format: self.decomposition.format(),
            precision: Dtype::from_name(T::NAME).expect("f32 or f64"),
            dtype: self.dtype,
            shape: self.shape.clone(),
            matrix: self.matrix.clone(),
            tensor_shape: self.decomposition.as_factorized().shape().to_vec(),
            tree: self.decomposition.tree(),
            blocks: self.decomposition.blocks(),
            ranks: self.decomposition.ranks(),
            cores: self
                .decomposition
                .core_names()
                .into_iter()
                .map(|s| format!("{name}/{s}"))
                .collect(),
        }
    }

    pub(super) fn from_meta(meta: &TensorMeta, cores: Vec<ArrayD<T>>) -> Result<Self> {
        for shape in [&meta.shape, &meta.tensor_shape] {
            // The rebuilt array is written as .npy/.safetensors, which NumPy reads up to
            // 64 dimensions; the readers refuse more, and so does the container.
            if shape.len() > crate::weights::MAX_NDIM {
                return Err(Error::corrupt(format!(
                    "'{}': {} dimensions; at most {} are supported",
                    meta.name,
                    shape.len(),
                    crate::weights::MAX_NDIM
                )));
            }
            let fits = shape
                .iter()
                .try_fold(1usize, |a, &k| a.checked_mul(k))
                .is_some_and(|n| n <= isize::MAX as usize / 8);
            if !fits {
                return Err(Error::corrupt(format!(
                    "'{}': shape {shape:?} is too large",
                    meta.name
                )));
            }
        }
        let layout = StoredLayout {
            name: &meta.name,
            shape: &meta.tensor_shape,
            tree: meta.tree.as_deref(),
            blocks: meta.blocks,
        };
        let decomposition = Decomposition::from_stored(meta.format, &layout, cores)?;
        let expected = match &meta.matrix {
            Some(m) => {
                m.check().map_err(|e| Error::corrupt(e.to_string()))?;
                if meta.shape != [m.rows, m.cols] {
                    return Err(Error::corrupt(format!(
                        "'{}': shape {:?} does not match the modes of a {} x {} matrix",
                        meta.name, meta.shape, m.rows, m.cols
                    )));
                }
                m.tensor_shape()
            }
            None => meta.shape.clone(),
        };
        let shape = decomposition.as_factorized().shape();
        if shape != expected.as_slice() || shape != meta.tensor_shape.as_slice() {
            return Err(Error::corrupt(format!(
                "'{}': the decomposed tensor has shape {shape:?}, expected {expected:?} \
                 (tensor shape {:?} in the description)",
                meta.name, meta.tensor_shape
            )));
        }
        let names: Vec<String> = decomposition
            .core_names()
            .into_iter()
            .map(|s| format!("{}/{s}", meta.name))
            .collect();
        let mismatch = if names != meta.cores {
            Some(format!("core names {:?}, expected {names:?}", meta.cores))
        } else if decomposition.ranks() != meta.ranks {
            Some(format!(
                "ranks {:?}, but the cores have ranks {:?}",
                meta.ranks,
                decomposition.ranks()
            ))
        } else if decomposition.tree() != meta.tree {
            Some(format!(
                "tree {:?} for the {} format",
                meta.tree, meta.format
            ))
        } else if decomposition.blocks() != meta.blocks {
            Some(format!(
                "block count {:?} for the {} format",
                meta.blocks, meta.format
            ))
        } else {
            None
        };
        if let Some(m) = mismatch {
            return Err(Error::corrupt(format!(
                "'{}': the description says {m}",
                meta.name
            )));
        }
        Ok(Self {
            shape: meta.shape.clone(),
            dtype: meta.dtype,
            matrix: meta.matrix.clone(),
            decomposition,
        })
    }
}

/// What decomposing one array achieved.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TensorReport {
    /// The array's name.
    pub name: String,
    /// The format (`None` when the weight was kept dense).
    pub format: Option<FormatKind>,
    /// The original shape.
    pub shape: Vec<usize>,
    /// The tensorization, for a weight matrix.
    pub modes: Option<MatrixModes>,
    /// Zero rows and columns added by the tensorization.
    pub padding: [usize; 2],
    /// The tree spec, for tree formats.
    pub tree: Option<String>,
    /// The number of blocks, for the block-term format.
    #[serde(default)]
    pub blocks: Option<usize>,
    /// The ranks (see [`Decomposition::ranks`]).
    pub ranks: Vec<usize>,
    /// Entries of the dense array.
    pub dense_params: usize,
    /// Stored scalars after compression.
    pub params: usize,
    /// `dense_params / params`.
    pub ratio: f64,
    /// Measured `‖W − Ŵ‖_F / ‖W‖_F` (of the reconstruction against the input).
    pub rel_error: f64,
    /// The format's bound on the relative error (see [`TruncationInfo::error_bound`](crate::TruncationInfo::error_bound):
    /// a-priori for HT, TT, TR and Tucker, the error BT-ALS computed for BT).
    pub rel_error_bound: f64,
    /// BT only: the sweeps of the BT-ALS run kept.
    #[serde(default)]
    pub sweeps: Option<usize>,
    /// BT only: whether that run stopped on its tolerance rather than the sweep limit.
    #[serde(default)]
    pub converged: Option<bool>,
    /// BT only: the number of BT-ALS runs of the block-rank search.
    #[serde(default)]
    pub trials: Option<usize>,
    /// `‖W‖_F` (0 for non-float entries).
    pub norm: f64,
    /// Wall-clock seconds for decomposing and measuring.
    pub seconds: f64,
    /// Why the weight was kept dense, when it was.
    pub kept_dense: Option<String>,
    /// How the factors were found.
    #[serde(default)]
    pub method: Method,
}

/// Decomposes one dense array (tensorized first when `opts.matrix` is set), measuring the
/// relative error of the reconstruction against the input.
///
/// # Errors
/// [`Error::InvalidParameter`] for an invalid rule or BT options, or a tree with a format
/// other than HT; [`Error::ShapeMismatch`] if the modes do not fit the array; the
/// format's errors (empty or non-finite input, a tree of the wrong order).
///
/// Cost: the format's decomposition of an array of `prod(m_k n_k)` entries (for BT, one
/// BT-ALS run per block rank tried, `O(log max n_k)` runs) plus one reconstruction to
/// measure the error.
pub fn decompose<T: Scalar>(
    x: ArrayViewD<'_, T>,
    opts: &DecomposeOptions,
) -> Result<(CompressedTensor<T>, TensorReport)> {
    decompose_named(
        "tensor",
        Dtype::from_name(T::NAME).expect("f32 or f64"),
        x,
        opts,
    )
}

/// Decomposes one dense array (tensorized first when `opts.matrix` is set) without
/// measuring the error: the compressed tensor (shape, `dtype` and tensorization recorded)
/// and what the truncation discarded. [`decompose`] adds the measurement; callers that
/// measure later (or not at all) use [`CompressedTensor::distance`] and
/// [`TruncationInfo::check_measured`](crate::TruncationInfo::check_measured).
///
/// A plain tensor is decomposed where it lies (no copy); a weight is tensorized first.
///
/// # Errors
/// As [`decompose`].
pub fn decompose_unmeasured<T: Scalar>(
    x: ArrayViewD<'_, T>,
    dtype: Dtype,
    opts: &DecomposeOptions,
) -> Result<(CompressedTensor<T>, TruncationInfo<T>)> {
    if x.ndim() == 0 {
        return Err(Error::param(
            "array",
            "a 0-d array (a scalar) has nothing to decompose",
        ));
    }
    crate::dense::check_tensor("decompose", &x)?;
    let tensorized = match &opts.matrix {
        Some(m) => Some(m.tensorize(x.view())?),
        None => None,
    };
    let tensor = tensorized.as_ref().map_or(x.view(), |t| t.view());
    let (decomposition, info) = Decomposition::decompose_with(
        opts.method,
        opts.format,
        tensor.view(),
        opts.tree.as_ref(),
        &opts.rule,
        &opts.bt,
    )?;
    let c = CompressedTensor {
        shape: x.shape().to_vec(),
        dtype,
        matrix: opts.matrix.clone(),
        decomposition,
    };
    Ok((c, info))
}

pub(super) fn decompose_named<T: Scalar>(
    name: &str,
    dtype: Dtype,
    x: ArrayViewD<'_, T>,
    opts: &DecomposeOptions,
) -> Result<(CompressedTensor<T>, TensorReport)> {
    let start = Instant::now();
    let (c, info) = decompose_unmeasured(x.view(), dtype, opts)?;
    let distance = c.distance(x.view())?;
    let norm = info.input_norm.as_f64();
    let rel_error = if norm > 0.0 {
        distance.as_f64() / norm
    } else {
        distance.as_f64()
    };
    // Near the limits of the dtype the rounding of the result can exceed the a-priori
    // bound: that is an error, never a success.
    info.check_measured("decompose", distance)?;
    let bound_rel = info.rel_error_bound().as_f64();
    let padding = match &c.matrix {
        Some(m) => {
            let (mp, np) = m.padded();
            [mp - m.rows, np - m.cols]
        }
        None => [0, 0],
    };
    let report = TensorReport {
        name: name.to_string(),
        format: Some(c.decomposition.format()),
        shape: c.shape.clone(),
        modes: c.matrix.clone(),
        padding,
        tree: c.decomposition.tree(),
        blocks: c.decomposition.blocks(),
        ranks: c.decomposition.ranks(),
        dense_params: c.dense_len(),
        params: c.n_params(),
        ratio: c.compression_ratio(),
        rel_error,
        rel_error_bound: bound_rel,
        sweeps: info.fit.map(|f| f.sweeps),
        converged: info.fit.map(|f| f.converged),
        trials: info.fit.map(|f| f.trials),
        norm,
        seconds: start.elapsed().as_secs_f64(),
        kept_dense: None,
        method: opts.method,
    };
    Ok((c, report))
}
