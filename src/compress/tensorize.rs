//! How a weight matrix becomes a tensor: [`MatrixModes`] (output modes paired with
//! input modes, zero padding) and the automatic choice of balanced modes.

use ndarray::{ArrayD, ArrayViewD, IxDyn};
use serde::{Deserialize, Serialize};

use crate::matrices::{MatrixShape, paired_tensor};
use crate::{Error, Result, Scalar};

/// How a weight matrix `W` (`rows x cols`) is tensorized: output modes `m_k` (factoring
/// `rows`) paired with input modes `n_k` (factoring `cols`); mode `k` of the tensor has
/// size `m_k n_k`. Products above `rows`/`cols` mean zero padding.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MatrixModes {
    /// `M`, the number of rows (outputs).
    pub rows: usize,
    /// `N`, the number of columns (inputs).
    pub cols: usize,
    /// `m_1..m_d`, with `prod m_k >= M`.
    pub out_modes: Vec<usize>,
    /// `n_1..n_d`, with `prod n_k >= N`.
    pub in_modes: Vec<usize>,
}

impl MatrixModes {
    /// Checked constructor.
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] unless both mode lists are non-empty, of equal length,
    /// free of zeros, and their products cover `rows` and `cols`.
    pub fn new(
        rows: usize,
        cols: usize,
        out_modes: Vec<usize>,
        in_modes: Vec<usize>,
    ) -> Result<Self> {
        let m = Self {
            rows,
            cols,
            out_modes,
            in_modes,
        };
        m.check()?;
        Ok(m)
    }

    pub(super) fn check(&self) -> Result<()> {
        if self.out_modes.is_empty() || self.out_modes.len() != self.in_modes.len() {
            return Err(Error::param(
                "modes",
                format!(
                    "the output and input modes need the same non-zero count, got {:?} and {:?}",
                    self.out_modes, self.in_modes
                ),
            ));
        }
        if self.out_modes.len() > crate::matrices::MAX_ORDER {
            return Err(Error::param(
                "modes",
                format!(
                    "{} modes; at most {} are supported",
                    self.out_modes.len(),
                    crate::matrices::MAX_ORDER
                ),
            ));
        }
        if self.out_modes.contains(&0) || self.in_modes.contains(&0) {
            return Err(Error::param("modes", "every mode must be at least 1"));
        }
        for (what, modes, len) in [
            ("out", &self.out_modes, self.rows),
            ("in", &self.in_modes, self.cols),
        ] {
            let p = modes.iter().try_fold(1usize, |a, &k| a.checked_mul(k));
            match p {
                Some(p) if p >= len && p / 2 <= len => {}
                Some(p) if p >= len => {
                    return Err(Error::param(
                        "modes",
                        format!(
                            "the {what}-modes {modes:?} multiply to {p}, more than twice the \
                             length {len}: the weight would be mostly zero padding"
                        ),
                    ));
                }
                _ => {
                    return Err(Error::param(
                        "modes",
                        format!(
                            "the {what}-modes {modes:?} multiply to {}, less than the length {len}",
                            p.map_or("overflow".into(), |p| p.to_string())
                        ),
                    ));
                }
            }
        }
        let (mp, np) = self.padded();
        if mp
            .checked_mul(np)
            .is_none_or(|n| n > isize::MAX as usize / 8)
        {
            return Err(Error::param(
                "modes",
                format!("the padded matrix {mp} x {np} is too large"),
            ));
        }
        Ok(())
    }

    /// The padded lengths `(prod m_k, prod n_k)`.
    pub fn padded(&self) -> (usize, usize) {
        (
            self.out_modes.iter().product(),
            self.in_modes.iter().product(),
        )
    }

    /// The tensor shape `(m_1 n_1, .., m_d n_d)`.
    pub fn tensor_shape(&self) -> Vec<usize> {
        self.out_modes
            .iter()
            .zip(&self.in_modes)
            .map(|(m, n)| m * n)
            .collect()
    }

    /// Balanced modes of order `d` for a `rows x cols` matrix, with the smallest zero
    /// padding that factors well (see the module docs).
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] for `d == 0`, `d` above
    /// [`MAX_ORDER`](crate::matrices::MAX_ORDER) (checked before the factor search, whose
    /// recursion is as deep as `d`) or an empty matrix.
    pub fn balanced(rows: usize, cols: usize, d: usize) -> Result<Self> {
        if d == 0 || rows == 0 || cols == 0 {
            return Err(Error::param(
                "modes",
                format!("need d >= 1 and a non-empty matrix, got d = {d}, {rows} x {cols}"),
            ));
        }
        if d > crate::matrices::MAX_ORDER {
            return Err(Error::param(
                "modes",
                format!(
                    "{d} modes; at most {} are supported",
                    crate::matrices::MAX_ORDER
                ),
            ));
        }
        let (out_modes, _) = balanced_factors(rows, d);
        let (in_modes, _) = balanced_factors(cols, d);
        Self::new(rows, cols, out_modes, in_modes)
    }

    /// `W` (`rows x cols`) to the tensor of shape [`tensor_shape`](Self::tensor_shape).
    ///
    /// # Errors
    /// [`Error::ShapeMismatch`] if `w` is not `rows x cols`.
    pub fn tensorize<T: Scalar>(&self, w: ArrayViewD<'_, T>) -> Result<ArrayD<T>> {
        if w.shape() != [self.rows, self.cols] {
            return Err(Error::ShapeMismatch {
                context: "MatrixModes::tensorize",
                expected: vec![self.rows, self.cols],
                got: w.shape().to_vec(),
            });
        }
        let (mp, np) = self.padded();
        // Twice: the padded matrix and its permuted copy.
        crate::limits::check_elements(
            "the padded weight matrix",
            &[2, mp, np],
            std::mem::size_of::<T>(),
        )?;
        let mut padded = ndarray::Array2::<T>::zeros((mp, np));
        padded
            .slice_mut(ndarray::s![..self.rows, ..self.cols])
            .assign(
                &w.into_dimensionality::<ndarray::Ix2>()
                    .expect("2-D, checked"),
            );
        // The tensorized matrices' own pairing, mode k = (i_k, j_k).
        let shape = MatrixShape::try_new(self.out_modes.clone(), self.in_modes.clone())?;
        Ok(paired_tensor(&padded.view(), &shape, false))
    }

    /// The inverse of [`tensorize`](Self::tensorize): the tensor back to `rows x cols`
    /// (padding dropped).
    ///
    /// # Errors
    /// [`Error::ShapeMismatch`] if `x` does not have the tensor shape.
    pub fn matricize<T: Scalar>(&self, x: ArrayViewD<'_, T>) -> Result<ArrayD<T>> {
        if x.shape() != self.tensor_shape().as_slice() {
            return Err(Error::ShapeMismatch {
                context: "MatrixModes::matricize",
                expected: self.tensor_shape(),
                got: x.shape().to_vec(),
            });
        }
        let d = self.out_modes.len();
        let pairs: Vec<usize> = (0..d)
            .flat_map(|k| [self.out_modes[k], self.in_modes[k]])
            .collect();
        let x = x
            .as_standard_layout()
            .into_owned()
            .into_shape_with_order(IxDyn(&pairs))
            .expect("sizes agree");
        let perm: Vec<usize> = (0..d)
            .map(|k| 2 * k)
            .chain((0..d).map(|k| 2 * k + 1))
            .collect();
        let (mp, np) = self.padded();
        let w = x
            .permuted_axes(IxDyn(&perm))
            .as_standard_layout()
            .into_owned()
            .into_shape_with_order(IxDyn(&[mp, np]))
            .expect("sizes agree");
        Ok(w.slice(ndarray::s![..self.rows, ..self.cols])
            .to_owned()
            .into_dyn())
    }
}

/// Balanced factors of `len` into `d` factors (ascending), after the smallest zero padding
/// that makes `len` factor well: the largest factor at most twice `len'^(1/d)`.
/// Returns the factors and the padded length `len' >= len`.
pub(super) fn balanced_factors(len: usize, d: usize) -> (Vec<usize>, usize) {
    let len = len.max(1);
    let ideal = |n: usize| (n as f64).powf(1.0 / d as f64);
    let window = (len / 8).max(16);
    let mut best: Option<(f64, Vec<usize>, usize)> = None;
    for n in len..=len.saturating_add(window) {
        let f = best_split(n, d);
        let score = *f.last().expect("d >= 1 factors") as f64 / ideal(n);
        if score <= 2.0 {
            return (f, n);
        }
        if best.as_ref().is_none_or(|b| score < b.0) {
            best = Some((score, f, n));
        }
    }
    let (_, f, n) = best.expect("the window is non-empty");
    (f, n)
}

/// The factorization of `n` into `d` ascending factors with the smallest largest factor
/// (ties: the largest smallest factor).
fn best_split(n: usize, d: usize) -> Vec<usize> {
    fn go(n: usize, d: usize, min: usize, cur: &mut Vec<usize>, best: &mut Option<Vec<usize>>) {
        if d == 1 {
            if n >= min {
                cur.push(n);
                let better = match best {
                    None => true,
                    Some(b) => {
                        let (bm, cm) = (b.last().copied(), cur.last().copied());
                        cm < bm || (cm == bm && cur[0] > b[0])
                    }
                };
                if better {
                    *best = Some(cur.clone());
                }
                cur.pop();
            }
            return;
        }
        let mut f = min.max(1);
        while f.saturating_pow(d as u32) <= n {
            if n % f == 0 {
                cur.push(f);
                go(n / f, d - 1, f, cur, best);
                cur.pop();
            }
            f += 1;
        }
    }
    let mut best = None;
    go(n, d, 1, &mut Vec::new(), &mut best);
    best.unwrap_or_else(|| {
        let mut v = vec![1; d - 1];
        v.push(n);
        v
    })
}

/// The default number of modes for an `rows x cols` matrix: about one mode pair per 64
/// entries' worth of bits (`round(log2(rows·cols) / 6)`), between 2 and 6.
pub fn auto_order(rows: usize, cols: usize) -> usize {
    let bits = ((rows.max(1) as f64) * (cols.max(1) as f64)).log2();
    ((bits / 6.0).round() as usize).clamp(2, 6)
}
