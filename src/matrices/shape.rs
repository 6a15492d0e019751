//! Tensorized shapes: how the lengths of a weight matrix are factored into modes.
//!
//! A weight matrix `W` of size `M x N` is tensorized by factoring `M = m_1 ⋯ m_d` (output
//! modes) and `N = n_1 ⋯ n_d` (input modes). Row `i` of `W` is the multi-index
//! `(i_1, .., i_d)` and column `j` is `(j_1, .., j_d)`, both row-major (the last mode runs
//! fastest), exactly as `numpy.reshape` of a C-ordered array:
//!
//! ```text
//! i = ((i_1 m_2 + i_2) m_3 + ..) m_d + i_d,      j = ((j_1 n_2 + j_2) n_3 + ..) n_d + j_d.
//! ```
//!
//! The matrix formats pair input mode `k` with output mode `k`. [`factorize`] proposes a
//! balanced factorization of a length into `d` factors; when a length factors badly (a
//! large prime factor, as `57,856 = 2^9 · 113`), [`pad_to_factorable`] finds the smallest
//! zero padding whose length factors into `d` factors no larger than a bound.

use std::fmt;

use crate::{Error, Result};

/// A tensorized matrix shape: output modes `m_1..m_d` and input modes `n_1..n_d`, of the
/// same order `d`, every mode at least 1.
///
/// # Example
/// ```
/// use tnet::matrices::MatrixShape;
/// let s = MatrixShape::try_new(vec![16, 4, 4, 4], vec![8, 20, 20, 18]).unwrap();
/// assert_eq!((s.n_out(), s.n_in(), s.order()), (1024, 57_600, 4));
/// assert!(MatrixShape::try_new(vec![4, 4], vec![8, 0]).is_err());
/// assert!(MatrixShape::for_lengths(1024, 57_600, &[16, 4, 4, 4], &[8, 20, 20, 17]).is_err());
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct MatrixShape {
    out_modes: Vec<usize>,
    in_modes: Vec<usize>,
}

impl MatrixShape {
    /// Builds a shape from its output and input modes.
    ///
    /// # Errors
    /// - [`Error::Empty`] if there are no modes or a mode is 0;
    /// - [`Error::ShapeMismatch`] if the two lists have different lengths;
    /// - [`Error::InvalidParameter`] if a length overflows `usize`.
    pub fn try_new(out_modes: Vec<usize>, in_modes: Vec<usize>) -> Result<Self> {
        for modes in [&out_modes, &in_modes] {
            if modes.is_empty() || modes.contains(&0) {
                return Err(Error::Empty {
                    context: "MatrixShape (every mode must be at least 1)",
                    shape: modes.clone(),
                });
            }
            if modes
                .iter()
                .try_fold(1usize, |a, &m| a.checked_mul(m))
                .is_none()
            {
                return Err(Error::param(
                    "modes",
                    format!("{modes:?}: the product overflows"),
                ));
            }
        }
        check_order(out_modes.len())?;
        if out_modes.len() != in_modes.len() {
            return Err(Error::ShapeMismatch {
                context: "MatrixShape (output and input modes must have the same order)",
                expected: vec![out_modes.len()],
                got: vec![in_modes.len()],
            });
        }
        Ok(Self {
            out_modes,
            in_modes,
        })
    }

    /// Like [`try_new`](Self::try_new), also checking the products against the matrix
    /// lengths `M` (output) and `N` (input).
    ///
    /// # Errors
    /// As [`try_new`](Self::try_new); [`Error::ShapeMismatch`] if `prod m_k != M` or
    /// `prod n_k != N`.
    pub fn for_lengths(
        n_out: usize,
        n_in: usize,
        out_modes: &[usize],
        in_modes: &[usize],
    ) -> Result<Self> {
        let s = Self::try_new(out_modes.to_vec(), in_modes.to_vec())?;
        if s.n_out() != n_out || s.n_in() != n_in {
            return Err(Error::ShapeMismatch {
                context: "MatrixShape::for_lengths (products of the modes must equal (M, N))",
                expected: vec![n_out, n_in],
                got: vec![s.n_out(), s.n_in()],
            });
        }
        Ok(s)
    }

    /// A balanced shape of order `d` for an `M x N` matrix: both lengths through
    /// [`factorize`], the factors of each side in non-increasing order.
    ///
    /// # Errors
    /// As [`factorize`].
    pub fn balanced(n_out: usize, n_in: usize, d: usize) -> Result<Self> {
        Self::try_new(factorize(n_out, d)?, factorize(n_in, d)?)
    }

    /// The output modes `m_1..m_d`.
    pub fn out_modes(&self) -> &[usize] {
        &self.out_modes
    }

    /// The input modes `n_1..n_d`.
    pub fn in_modes(&self) -> &[usize] {
        &self.in_modes
    }

    /// The order `d`.
    pub fn order(&self) -> usize {
        self.out_modes.len()
    }

    /// `M = prod m_k`, the number of rows of `W`.
    pub fn n_out(&self) -> usize {
        self.out_modes.iter().product()
    }

    /// `N = prod n_k`, the number of columns of `W`.
    pub fn n_in(&self) -> usize {
        self.in_modes.iter().product()
    }

    /// The same matrix with its input and output modes on separate legs: order `2d`,
    /// input modes `(n_1, .., n_d, 1, .., 1)`, output modes `(1, .., 1, m_1, .., m_d)`.
    /// Row and column indices are unchanged (modes of size 1 add no digit), so a format
    /// built on the split shape holds the same `M x N` matrix; what changes is which
    /// indices share a core. On [`DimTree::balanced(2d)`](crate::DimTree::balanced) the
    /// root separates the column modes (leaves `0..d`) from the row modes (leaves
    /// `d..2d`): an [`HtMatrix`](crate::HtMatrix) on it is `W = O B I` with `I` (`r x N`)
    /// and `O` (`M x r`) themselves HT-structured, the layout [`HtLayout::Split`] of the
    /// model zoo (see [`crate::models::zoo`] for why it learns better).
    ///
    /// [`HtLayout::Split`]: crate::models::zoo::HtLayout::Split
    ///
    /// # Example
    /// ```
    /// use tnet::matrices::MatrixShape;
    /// let s = MatrixShape::try_new(vec![8, 4], vec![5, 6]).unwrap().split();
    /// assert_eq!((s.out_modes(), s.in_modes()), (&[1, 1, 8, 4][..], &[5, 6, 1, 1][..]));
    /// assert_eq!((s.n_out(), s.n_in()), (32, 30));
    /// ```
    pub fn split(&self) -> MatrixShape {
        let d = self.order();
        let ones = std::iter::repeat_n(1, d);
        MatrixShape {
            out_modes: ones.clone().chain(self.out_modes.iter().copied()).collect(),
            in_modes: self.in_modes.iter().copied().chain(ones).collect(),
        }
    }

    /// The same matrix on `2d` legs grouped for a two-factor Kronecker tree: with
    /// `h = ceil(d / 2)`, the legs are the input modes `n_1..n_h`, the output modes
    /// `m_1..m_h`, then the input modes `n_{h+1}..n_d` and the output modes
    /// `m_{h+1}..m_d`, each alone on its leg (the other index of the leg has size 1).
    /// Row and column indices are unchanged, as for [`split`](Self::split). The groups
    /// of legs are returned too, for [`DimTree::from_groups`](crate::DimTree::from_groups):
    /// on that tree the root separates the first `h` mode pairs from the rest, so an
    /// [`HtMatrix`](crate::HtMatrix) on it is `W = sum_{k<r} A_k (x) B_k` (Kronecker
    /// products), where each factor `A_k`, `B_k` is itself split (matrix rank at most
    /// `r`), but `W` can have full rank. This is the layout
    /// [`HtLayout::Kronecker`](crate::models::zoo::HtLayout::Kronecker).
    ///
    /// # Example
    /// ```
    /// use tnet::matrices::MatrixShape;
    /// let s = MatrixShape::try_new(vec![8, 4, 2], vec![5, 6, 3]).unwrap();
    /// let (k, groups) = s.kronecker_split();
    /// assert_eq!(k.in_modes(), &[5, 6, 1, 1, 3, 1]);
    /// assert_eq!(k.out_modes(), &[1, 1, 8, 4, 1, 2]);
    /// assert_eq!(groups, vec![vec![0, 1], vec![2, 3], vec![4], vec![5]]);
    /// assert_eq!((k.n_out(), k.n_in()), (s.n_out(), s.n_in()));
    /// ```
    pub fn kronecker_split(&self) -> (MatrixShape, Vec<Vec<usize>>) {
        let d = self.order();
        let h = d.div_ceil(2);
        let mut out_modes = Vec::with_capacity(2 * d);
        let mut in_modes = Vec::with_capacity(2 * d);
        let mut groups = Vec::with_capacity(4);
        for range in [0..h, h..d] {
            if range.is_empty() {
                continue;
            }
            let first = in_modes.len();
            for k in range.clone() {
                in_modes.push(self.in_modes[k]);
                out_modes.push(1);
            }
            groups.push((first..in_modes.len()).collect());
            let first = in_modes.len();
            for k in range {
                in_modes.push(1);
                out_modes.push(self.out_modes[k]);
            }
            groups.push((first..in_modes.len()).collect());
        }
        (
            MatrixShape {
                out_modes,
                in_modes,
            },
            groups,
        )
    }

    /// The paired mode sizes `m_k n_k`.
    pub fn paired_modes(&self) -> Vec<usize> {
        self.out_modes
            .iter()
            .zip(&self.in_modes)
            .map(|(m, n)| m * n)
            .collect()
    }
}

impl fmt::Display for MatrixShape {
    /// `16x4x4x4 <- 8x20x20x18` (outputs from inputs).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let join = |v: &[usize]| v.iter().map(usize::to_string).collect::<Vec<_>>().join("x");
        write!(f, "{} <- {}", join(&self.out_modes), join(&self.in_modes))
    }
}

/// The largest number of modes of a tensorized matrix: 64 (a length below `2^64` has at
/// most 64 factors above 1, so more modes would only add modes of size 1).
pub const MAX_ORDER: usize = 64;

/// Refuses an order `d` of 0 or above [`MAX_ORDER`] (before any work proportional to it).
fn check_order(d: usize) -> Result<()> {
    if d == 0 || d > MAX_ORDER {
        return Err(Error::param(
            "order",
            format!("{d} modes; the number of modes must be between 1 and {MAX_ORDER}"),
        ));
    }
    Ok(())
}

/// All factorizations of `len` into exactly `d` factors `f_1 >= .. >= f_d >= 1` with
/// `f_1 <= max_factor`, most balanced first.
///
/// "Balanced" means a small spread of `ln f_k` (the sum of `(ln f_k)^2` is minimised; the
/// sum of `ln f_k` is fixed). Ties go to the lexicographically smaller list. Cost: the
/// number of such factorizations times `d` (small: a few thousand for lengths of typical
/// layers).
///
/// # Errors
/// [`Error::InvalidParameter`] if `len == 0` or `d == 0`.
///
/// # Example
/// ```
/// let f = tnet::matrices::factorizations(24, 2, usize::MAX).unwrap();
/// assert_eq!(f, vec![vec![6, 4], vec![8, 3], vec![12, 2], vec![24, 1]]);
/// ```
pub fn factorizations(len: usize, d: usize, max_factor: usize) -> Result<Vec<Vec<usize>>> {
    if len == 0 {
        return Err(Error::param("len", "a length to factor must be at least 1"));
    }
    check_order(d)?;
    let mut out = Vec::new();
    let mut current = Vec::with_capacity(d);
    collect_factorizations(len, d, max_factor.min(len), &mut current, &mut out);
    out.sort_by(|a, b| {
        spread(a)
            .partial_cmp(&spread(b))
            .expect("finite")
            .then_with(|| a.cmp(b))
    });
    Ok(out)
}

fn spread(f: &[usize]) -> f64 {
    f.iter().map(|&x| (x as f64).ln().powi(2)).sum()
}

/// Depth-first enumeration of non-increasing factor lists.
fn collect_factorizations(
    len: usize,
    d: usize,
    max: usize,
    current: &mut Vec<usize>,
    out: &mut Vec<Vec<usize>>,
) {
    if d == 1 {
        if len <= max {
            current.push(len);
            out.push(current.clone());
            current.pop();
        }
        return;
    }
    // The largest remaining factor is at least the d-th root of len.
    for f in (1..=max.min(len)).rev() {
        if len % f != 0 {
            continue;
        }
        // f is the largest of the d remaining factors: f^d >= len is needed.
        if (f as f64).powi(d as i32) < len as f64 * (1.0 - 1e-12) {
            break;
        }
        current.push(f);
        collect_factorizations(len / f, d - 1, f, current, out);
        current.pop();
    }
}

/// The most balanced factorization of `len` into `d` factors (non-increasing); see
/// [`factorizations`] for what balanced means.
///
/// # Errors
/// [`Error::InvalidParameter`] if `len == 0` or `d == 0`.
///
/// # Example
/// ```
/// use tnet::matrices::factorize;
/// assert_eq!(factorize(57_600, 4).unwrap(), vec![16, 16, 15, 15]);
/// assert_eq!(factorize(1024, 4).unwrap(), vec![8, 8, 4, 4]);
/// assert_eq!(factorize(57_856, 4).unwrap(), vec![113, 8, 8, 8]); // 2^9 * 113: badly
/// ```
pub fn factorize(len: usize, d: usize) -> Result<Vec<usize>> {
    let all = factorizations(len, d, usize::MAX)?;
    Ok(all
        .into_iter()
        .next()
        .expect("len = len * 1 * .. * 1 always exists"))
}

/// A length padded with zeros so that it factors well; see [`pad_to_factorable`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Padding {
    /// The original length.
    pub len: usize,
    /// The padded length, `>= len`.
    pub padded_len: usize,
    /// Number of zeros appended, `padded_len - len`.
    pub padding: usize,
    /// The most balanced factorization of `padded_len` into `d` factors `<= max_factor`
    /// (non-increasing).
    pub factors: Vec<usize>,
}

/// The smallest length `L >= len` that factors into `d` factors each at most
/// `max_factor`, with the padding `L - len` and the most balanced such factorization.
///
/// Pad the input (or output) vector of a layer with `L - len` zeros (and `W` with zero
/// columns or rows) to tensorize a length that factors badly.
///
/// Cost: for each candidate length, one bounded factorization search; the loop ends by
/// `max_factor^d` at the latest.
///
/// # Errors
/// [`Error::InvalidParameter`] if `len == 0`, `d == 0`, `max_factor < 2`, or
/// `max_factor^d < len` (no padding can help).
///
/// # Example
/// ```
/// use tnet::matrices::pad_to_factorable;
/// // 57,856 = 2^9 * 113 has the prime factor 113; with modes at most 22 it pads to
/// // 58,080 = 22 * 20 * 12 * 11 (224 zeros).
/// let p = pad_to_factorable(57_856, 4, 22).unwrap();
/// assert_eq!((p.padded_len, p.padding), (58_080, 224));
/// assert_eq!(p.factors.iter().product::<usize>(), 58_080);
/// assert!(p.factors.iter().all(|&f| f <= 22));
/// ```
pub fn pad_to_factorable(len: usize, d: usize, max_factor: usize) -> Result<Padding> {
    if len == 0 {
        return Err(Error::param("len", "a length to pad must be at least 1"));
    }
    check_order(d)?;
    if max_factor < 2 {
        return Err(Error::param("max_factor", "must be at least 2"));
    }
    let cap = (max_factor as f64).powi(d as i32);
    if cap < len as f64 {
        return Err(Error::param(
            "max_factor",
            format!(
                "{max_factor}^{d} < {len}: no {d} factors of at most {max_factor} reach the length"
            ),
        ));
    }
    let mut padded = len;
    loop {
        let f = factorizations(padded, d, max_factor)?;
        if let Some(best) = f.into_iter().next() {
            return Ok(Padding {
                len,
                padded_len: padded,
                padding: padded - len,
                factors: best,
            });
        }
        padded += 1;
    }
}
