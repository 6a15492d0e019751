//! Whole model files: every matching 2-D weight of a `.safetensors`/`.npz` file
//! compressed, everything else kept.

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::{
    AnyCompressed, CompressedFile, DecomposeOptions, METADATA_KEY, MatrixModes, TensorReport,
    auto_order, decompose_named,
};
use crate::formats::FormatKind;
use crate::formats::bt::BtOptions;
use crate::weights::{self, DenseArray, Entry, FileKind, SafetensorsFile};
use crate::{Error, Result, Scalar, Truncation};

/// Which weights of a model to compress, and how.
#[derive(Clone, Debug, PartialEq)]
pub struct CompressOptions {
    /// The target format.
    pub format: FormatKind,
    /// The truncation rule applied to every weight.
    pub rule: Truncation,
    /// Name patterns: a weight is compressed if it matches any (all when empty). A pattern
    /// with `*` or `?` is a glob over the whole name, any other a substring.
    pub include: Vec<String>,
    /// Weights with fewer entries are kept dense.
    pub min_size: usize,
    /// Number of mode pairs `d` for the tensorization; [`auto_order`] when `None`.
    pub order: Option<usize>,
    /// Block count and ALS settings of the block-term format.
    pub bt: BtOptions,
}

impl CompressOptions {
    /// Compress every 2-D float weight of at least 4096 entries into `format` under `rule`.
    pub fn new(format: FormatKind, rule: Truncation) -> Self {
        Self {
            format,
            rule,
            include: Vec::new(),
            min_size: 4096,
            order: None,
            bt: BtOptions::default(),
        }
    }

    /// True when `name` matches the include patterns.
    pub fn matches(&self, name: &str) -> bool {
        self.include.is_empty() || self.include.iter().any(|p| pattern_matches(p, name))
    }
}

/// Glob (`*`, `?`) when the pattern has wildcards, else substring.
pub(super) fn pattern_matches(pattern: &str, name: &str) -> bool {
    if !pattern.contains(['*', '?']) {
        return name.contains(pattern);
    }
    let p: Vec<char> = pattern.chars().collect();
    let s: Vec<char> = name.chars().collect();
    // Iterative wildcard matching with backtracking to the last '*'.
    let (mut i, mut j, mut star, mut mark) = (0, 0, None, 0);
    while j < s.len() {
        if i < p.len() && (p[i] == '?' || p[i] == s[j]) {
            i += 1;
            j += 1;
        } else if i < p.len() && p[i] == '*' {
            star = Some(i);
            mark = j;
            i += 1;
        } else if let Some(st) = star {
            i = st + 1;
            mark += 1;
            j = mark;
        } else {
            return false;
        }
    }
    p[i..].iter().all(|&c| c == '*')
}

/// Reads a model to compress: the tensors of a `.safetensors` file or the arrays of an
/// `.npz` archive (by extension).
///
/// # Errors
/// [`Error::InvalidParameter`] for a `.npy` file (one array: decompose it instead), an
/// unknown extension, or a file tnet already compressed (compressing it again would drop
/// the description needed to rebuild its weights); the readers' errors.
pub fn read_model(path: impl AsRef<Path>) -> Result<SafetensorsFile> {
    let path = path.as_ref();
    let model = match FileKind::of(path)? {
        FileKind::Safetensors => weights::read_safetensors(path)?,
        FileKind::Npz => SafetensorsFile {
            entries: weights::read_npz(path)?
                .into_iter()
                .map(Entry::Weight)
                .collect(),
            ..SafetensorsFile::default()
        },
        FileKind::Npy => {
            return Err(Error::param(
                "model",
                format!(
                    "{}: compressing takes a model (.safetensors or .npz); decompose a single \
                     .npy array instead",
                    path.display()
                ),
            ));
        }
    };
    if model.metadata.contains_key(METADATA_KEY) {
        return Err(Error::param(
            "model",
            format!(
                "{} is already compressed by tnet; compressing it again would drop the \
                 description needed to rebuild its weights (reconstruct it first)",
                path.display()
            ),
        ));
    }
    Ok(model)
}

/// Compresses every matching 2-D float weight of a model: balanced modes of order
/// `opts.order` (automatic by default), the format's decomposition under `opts.rule`,
/// the error measured. Weights that do not match, are smaller than `opts.min_size`, are
/// not 2-D or not float, or would not get smaller are kept unchanged.
///
/// Returns the compressed file and one report per entry (kept ones included, with
/// `format == None` and the reason).
///
/// # Errors
/// [`Error::InvalidParameter`] for an invalid rule or BT options, or
/// `order == Some(0)`; the format's errors for a weight with NaN/Inf entries (the report
/// names it).
pub fn compress_model(
    model: &SafetensorsFile,
    opts: &CompressOptions,
) -> Result<(CompressedFile, Vec<TensorReport>)> {
    opts.rule.check()?;
    opts.bt.check()?;
    if opts.order == Some(0) {
        return Err(Error::param("order", "must be at least 1"));
    }
    let mut out = CompressedFile {
        metadata: model.metadata.clone(),
        ..CompressedFile::default()
    };
    out.metadata.remove(METADATA_KEY);
    let mut reports = Vec::new();
    for entry in &model.entries {
        let keep = |why: String| TensorReport {
            name: entry.name().to_string(),
            format: None,
            shape: entry.shape().to_vec(),
            modes: None,
            padding: [0, 0],
            tree: None,
            blocks: None,
            ranks: Vec::new(),
            dense_params: entry.shape().iter().product(),
            params: entry.shape().iter().product(),
            ratio: 1.0,
            rel_error: 0.0,
            rel_error_bound: 0.0,
            sweeps: None,
            converged: None,
            trials: None,
            norm: match entry {
                Entry::Weight(w) => match &w.data {
                    DenseArray::F32(a) => crate::dense::norm(a.view()).as_f64(),
                    DenseArray::F64(a) => crate::dense::norm(a.view()),
                },
                Entry::Raw(_) => 0.0,
            },
            seconds: 0.0,
            kept_dense: Some(why),
            method: crate::formats::Method::Svd,
        };
        let w = match entry {
            Entry::Raw(r) => {
                reports.push(keep(format!("dtype {}", r.dtype_name())));
                out.kept.push(entry.clone());
                continue;
            }
            Entry::Weight(w) => w,
        };
        let why = if !opts.matches(&w.name) {
            Some("not included".to_string())
        } else if w.data.is_empty() {
            Some("empty".to_string())
        } else if w.data.shape().len() != 2 {
            Some(format!("{}-D", w.data.shape().len()))
        } else if w.data.len() < opts.min_size {
            Some(format!("below --min-size {}", opts.min_size))
        } else {
            None
        };
        if let Some(why) = why {
            reports.push(keep(why));
            out.kept.push(entry.clone());
            continue;
        }
        let (rows, cols) = (w.data.shape()[0], w.data.shape()[1]);
        let d = opts.order.unwrap_or_else(|| auto_order(rows, cols));
        let dopts = DecomposeOptions {
            matrix: Some(MatrixModes::balanced(rows, cols, d)?),
            bt: opts.bt,
            ..DecomposeOptions::new(opts.format, opts.rule)
        };
        let named = |e: Error| match e {
            Error::NonFinite { context: _, index } => Error::param(
                "model",
                format!(
                    "weight '{}' has a non-finite value at flat index {index}",
                    w.name
                ),
            ),
            other => other,
        };
        let result: Result<(AnyCompressed, TensorReport)> = match &w.data {
            DenseArray::F32(a) => {
                decompose_named(&w.name, w.dtype, a.view(), &dopts).map(|(c, r)| (c.into(), r))
            }
            DenseArray::F64(a) => {
                decompose_named(&w.name, w.dtype, a.view(), &dopts).map(|(c, r)| (c.into(), r))
            }
        };
        // A weight that cannot be held to the rule (entries deep in the subnormal range,
        // or a measured error above the bound) is kept as it is, with the reason; other
        // errors stop the run, naming the weight where they do not.
        let (c, report) = match result {
            Ok(ok) => ok,
            Err(
                e @ (Error::BoundNotMet { .. } | Error::InvalidParameter { name: "tensor", .. }),
            ) => {
                reports.push(keep(e.to_string()));
                out.kept.push(entry.clone());
                continue;
            }
            Err(e) => return Err(named(e)),
        };
        if report.params >= report.dense_params {
            reports.push(TensorReport {
                kept_dense: Some(format!("no gain ({} params compressed)", report.params)),
                ..keep(String::new())
            });
            out.kept.push(entry.clone());
            continue;
        }
        reports.push(report);
        out.tensors.push((w.name.clone(), c));
    }
    Ok((out, reports))
}

/// Totals over a set of reports.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Totals {
    /// Entries of all dense arrays.
    pub dense_params: usize,
    /// Stored scalars after compression (kept arrays counted in full).
    pub params: usize,
    /// `dense_params / params`.
    pub ratio: f64,
    /// Relative error of all weights together, `sqrt(Σ e_i² ‖W_i‖²) / sqrt(Σ ‖W_i‖²)`
    /// over the decoded float arrays (kept ones with `e_i = 0`).
    pub rel_error: f64,
    /// Number of compressed arrays.
    pub compressed: usize,
}

/// Sums a set of reports.
pub fn totals(reports: &[TensorReport]) -> Totals {
    let dense_params: usize = reports.iter().map(|r| r.dense_params).sum();
    let params: usize = reports.iter().map(|r| r.params).sum();
    let err2: f64 = reports.iter().map(|r| (r.rel_error * r.norm).powi(2)).sum();
    let norm2: f64 = reports.iter().map(|r| r.norm * r.norm).sum();
    Totals {
        dense_params,
        params,
        ratio: dense_params as f64 / params.max(1) as f64,
        rel_error: if norm2 > 0.0 {
            (err2 / norm2).sqrt()
        } else {
            err2.sqrt()
        },
        compressed: reports.iter().filter(|r| r.format.is_some()).count(),
    }
}
