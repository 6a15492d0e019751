//! The Tucker format.
//!
//! A Tucker tensor of shape `n_1 x .. x n_d` stores a **core** `G` of shape
//! `R_1 x .. x R_d` and one **factor** `U_k` of shape `(n_k, R_k)` per mode:
//!
//! ```text
//! X = G ×_1 U_1 ×_2 U_2 .. ×_d U_d,     X[i_1, .., i_d] = Σ_a G[a_1, .., a_d] Π_k U_k[i_k, a_k]
//! ```
//!
//! (mode products as defined once in [`dense`]). The smallest `R_k` for which
//! this is exact are the multilinear ranks `rank X_(k)`. Storage `Σ_k n_k R_k + Π_k R_k`.
//! The factors need not be orthonormal; [`TuckerTensor::orthogonalize`] makes them so
//! without changing the tensor, and the decompositions
//! ([`hosvd`](crate::formats::tucker), [`hooi`](crate::formats::tucker)) return
//! orthonormal factors.
//!
//! | operation | result ranks | cost |
//! |---|---|---|
//! | [`add`](TuckerTensor::add), [`sub`](TuckerTensor::sub) | `R_k + R'_k` (block-diagonal core) | `O(Σ n (R + R') + Π (R + R'))` |
//! | [`scale`](TuckerTensor::scale) | unchanged | `O(Π R)` |
//! | [`hadamard`](TuckerTensor::hadamard) | `R_k R'_k` (Kronecker core) | `O(Σ n R R' + Π R R')` |
//! | [`inner`](TuckerTensor::inner) | scalar | `O(Σ n R R' + Π R' · Σ R)` |
//! | [`norm`](crate::Factorized::norm) | scalar | QR of the factors, `O(Σ n R² + Π R · Σ R)` |
//! | [`mode_product`](TuckerTensor::mode_product) | unchanged | `O(J n R)` |
//! | [`round`](crate::Factorized::round) | `<= R_k` | orthogonalise, ST-HOSVD of the core |
//! | [`to_ht`](TuckerTensor::to_ht), [`from_ht`](TuckerTensor::from_ht) | exact conversions | HT-SVD of the core / densify the HT core |
//!
//! Files: JSON `{"format": "tnet-tucker", "version": 1, "dtype": "f64", "shape": [...],
//! "core": <ndarray>, "factors": [<ndarray>, ..]}`, validated on load through
//! [`TuckerTensor::try_new`], written atomically.

pub mod decompose;
pub mod hooi;
mod io;

use ndarray::{Array2, ArrayD, ArrayView2, ArrayViewD, Axis, IxDyn, Slice};

pub use decompose::{HosvdOptions, HosvdVariant, ModeOrder, hosvd, st_hosvd, st_hosvd_randomized};
pub use hooi::{hooi, hooi_refine};
pub use io::TUCKER_FORMAT_VERSION;

use crate::dense::{multi_mode_product, random_normal_with, rng};
use crate::formats::checks::{check_same_shape, check_shape};
use crate::formats::ht::HtNode;
use crate::{
    AsRule, DimTree, Error, Factorized, HtTensor, Result, Scalar, Truncation, TruncationInfo, dense,
};

/// A tensor in Tucker format: core `(R_1, .., R_d)` and factors `(n_k, R_k)`. See the
/// [module docs](self).
///
/// [`try_new`](Self::try_new) checks every invariant (at least one mode, factor columns
/// equal the core's sizes, no empty modes or ranks, finite entries), so a `TuckerTensor`
/// is always valid.
///
/// # Example
/// ```
/// use tnet::{Factorized, Truncation, TuckerTensor};
/// let x = TuckerTensor::<f64>::random(&[5, 6, 7], &[2, 3, 2], 42).unwrap();
/// let (y, info) = TuckerTensor::from_dense(x.to_dense().view(), &Truncation::rel(1e-12)).unwrap();
/// assert_eq!(y.ranks(), vec![2, 3, 2]);
/// assert!(info.rel_error_bound() < 1e-12);
/// assert_eq!(x.n_params(), 5 * 2 + 6 * 3 + 7 * 2 + 2 * 3 * 2);
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct TuckerTensor<T> {
    shape: Vec<usize>,
    core: ArrayD<T>,
    factors: Vec<Array2<T>>,
}

impl<T: Scalar> TuckerTensor<T> {
    /// Builds a Tucker tensor from its core and factors, checking every invariant. The
    /// shape is `(factors[0].nrows(), .., factors[d-1].nrows())`.
    ///
    /// # Errors
    /// - [`Error::Empty`] for no factors or a factor with no rows;
    /// - [`Error::ShapeMismatch`] if the core's order or sizes differ from the factors'
    ///   column counts;
    /// - [`Error::InvalidRank`] for a factor with no columns;
    /// - [`Error::NonFinite`] for NaN/Inf (index counted over the core, then the factors).
    pub fn try_new(core: ArrayD<T>, factors: Vec<Array2<T>>) -> Result<Self> {
        let shape: Vec<usize> = factors.iter().map(Array2::nrows).collect();
        if factors.is_empty() || shape.contains(&0) {
            return Err(Error::Empty {
                context: "TuckerTensor::try_new",
                shape,
            });
        }
        let ranks: Vec<usize> = factors.iter().map(Array2::ncols).collect();
        if let Some(k) = ranks.iter().position(|&r| r == 0) {
            return Err(Error::rank(
                "TuckerTensor::try_new",
                format!("factor {k} has no columns"),
            ));
        }
        if core.shape() != ranks.as_slice() {
            return Err(Error::ShapeMismatch {
                context: "TuckerTensor::try_new (core shape must equal the factors' column counts)",
                expected: ranks,
                got: core.shape().to_vec(),
            });
        }
        if let Some(index) = core.iter().position(|v| !v.is_finite()) {
            return Err(Error::NonFinite {
                context: "TuckerTensor::try_new (core)",
                index,
            });
        }
        let mut offset = core.len();
        for u in &factors {
            if let Some(i) = u.iter().position(|v| !v.is_finite()) {
                return Err(Error::NonFinite {
                    context: "TuckerTensor::try_new (factors)",
                    index: offset + i,
                });
            }
            offset += u.len();
        }
        Ok(Self {
            shape,
            core,
            factors,
        })
    }

    /// Builds without checks, for algorithms whose output is valid by construction.
    /// Checked in debug builds.
    pub(crate) fn from_parts(core: ArrayD<T>, factors: Vec<Array2<T>>) -> Self {
        debug_assert!(
            Self::try_new(core.clone(), factors.clone()).is_ok(),
            "internal invariant: invalid Tucker tensor built"
        );
        let shape = factors.iter().map(Array2::nrows).collect();
        Self {
            shape,
            core,
            factors,
        }
    }

    /// The largest ranks not above `ranks` that a Tucker tensor of this shape can have:
    /// `1 <= R_k <= n_k` and `R_k <= Π_{j≠k} R_j` (a core unfolding cannot have more rows of
    /// full rank than columns), iterated to a fixed point. Cost `O(d²)` per pass.
    ///
    /// # Errors
    /// [`Error::Empty`] for an empty shape or a mode of size 0, [`Error::ShapeMismatch`] if
    /// `ranks` has not one entry per mode, [`Error::InvalidParameter`] for a zero rank.
    pub fn admissible_ranks(shape: &[usize], ranks: &[usize]) -> Result<Vec<usize>> {
        check_shape("TuckerTensor::admissible_ranks", shape)?;
        if ranks.len() != shape.len() {
            return Err(Error::ShapeMismatch {
                context: "TuckerTensor::admissible_ranks (one rank per mode)",
                expected: vec![shape.len()],
                got: vec![ranks.len()],
            });
        }
        if ranks.contains(&0) {
            return Err(Error::param("ranks", "every rank must be at least 1"));
        }
        let d = shape.len();
        let mut r: Vec<usize> = ranks.iter().zip(shape).map(|(&r, &n)| r.min(n)).collect();
        if d == 1 {
            return Ok(vec![1]);
        }
        loop {
            let before = r.clone();
            for k in 0..d {
                let others = (0..d)
                    .filter(|&j| j != k)
                    .fold(1usize, |a, j| a.saturating_mul(r[j]));
                r[k] = r[k].min(others);
            }
            if r == before {
                return Ok(r);
            }
        }
    }

    /// A random Tucker tensor: i.i.d. standard normal core, factors with orthonormal
    /// columns, ranks [`admissible_ranks(shape, ranks)`](Self::admissible_ranks). Such a
    /// tensor has exactly these multilinear ranks with probability one: the oracle for
    /// exact-recovery tests.
    ///
    /// # Errors
    /// As [`admissible_ranks`](Self::admissible_ranks).
    pub fn random(shape: &[usize], ranks: &[usize], seed: u64) -> Result<Self> {
        let ranks = Self::admissible_ranks(shape, ranks)?;
        let mut g = rng(seed);
        Ok(Self::random_with(shape, &ranks, &mut g))
    }

    /// Random tensor with exactly these (admissible) ranks from a caller's generator.
    pub(crate) fn random_with<R: rand::Rng>(shape: &[usize], ranks: &[usize], g: &mut R) -> Self {
        let factors = shape
            .iter()
            .zip(ranks)
            .map(|(&n, &r)| dense::random_orthonormal::<T, R>(n, r, g))
            .collect();
        let core = random_normal_with::<T, R>(ranks, g);
        Self::from_parts(core, factors)
    }

    /// The core `G` (`R_1 x .. x R_d`).
    pub fn core(&self) -> &ArrayD<T> {
        &self.core
    }

    /// The factors `U_k` (`n_k x R_k`).
    pub fn factors(&self) -> &[Array2<T>] {
        &self.factors
    }

    /// The factor of mode `k`.
    ///
    /// # Panics
    /// If `k >= order()`.
    pub fn factor(&self, k: usize) -> &Array2<T> {
        &self.factors[k]
    }

    /// The ranks `R_k` (the core's shape).
    pub fn ranks(&self) -> Vec<usize> {
        self.core.shape().to_vec()
    }

    /// Splits into core and factors.
    pub fn into_parts(self) -> (ArrayD<T>, Vec<Array2<T>>) {
        (self.core, self.factors)
    }

    /// Sequentially truncated HOSVD of a dense tensor under `rule`; see
    /// [`formats::tucker`](crate::formats::tucker) for the algorithm, its cost and
    /// its error bound (`‖X − Y‖ ≤ ε ‖X‖` for a relative tolerance).
    ///
    /// # Errors
    /// See [`st_hosvd`].
    pub fn from_dense(
        x: ArrayViewD<'_, T>,
        rule: &impl AsRule,
    ) -> Result<(Self, TruncationInfo<T>)> {
        crate::formats::tucker::st_hosvd(x, rule)
    }

    /// The same tensor with orthonormal factors: `U_k = Q_k R_k` (thin QR) and
    /// `G ← G ×_1 R_1 .. ×_d R_d`. Ranks above `n_k` drop to `n_k`. Afterwards
    /// `‖X‖ = ‖G‖`. Cost `O(Σ n_k R_k² + Π R · Σ R)`.
    ///
    /// # Example
    /// ```
    /// use ndarray::Array2;
    /// use tnet::{Factorized, TuckerTensor};
    /// let x = TuckerTensor::<f64>::random(&[4, 5, 6], &[2, 2, 2], 1).unwrap();
    /// let y = x.scale(3.0).mode_product(Array2::from_elem((3, 4), 0.5).view(), 0).unwrap();
    /// let z = y.orthogonalize();
    /// let q = z.factor(0);
    /// assert!((q.t().dot(q) - Array2::<f64>::eye(q.ncols())).iter().all(|e| e.abs() < 1e-14));
    /// assert!((z.norm() - tnet::dense::norm(y.to_dense().view())).abs() < 1e-12 * z.norm());
    /// ```
    pub fn orthogonalize(&self) -> Self {
        let mut core = self.core.clone();
        let mut factors = Vec::with_capacity(self.order());
        for (k, u) in self.factors.iter().enumerate() {
            let (q, r) = crate::linalg::qr(u.view());
            core = dense::mode_product(core.view(), r.view(), k)
                .expect("internal invariant: R has R_k columns");
            factors.push(q);
        }
        Self::from_parts(core, factors)
    }

    /// Exact sum `X + Y`: factors side by side, block-diagonal core (ranks add).
    ///
    /// # Errors
    /// [`Error::ShapeMismatch`] if the shapes differ.
    ///
    /// # Example
    /// ```
    /// use tnet::{Factorized, TuckerTensor};
    /// let x = TuckerTensor::<f64>::random(&[3, 4, 5], &[2, 2, 2], 1).unwrap();
    /// let y = TuckerTensor::<f64>::random(&[3, 4, 5], &[1, 2, 2], 2).unwrap();
    /// let s = x.add(&y).unwrap();
    /// assert_eq!(s.ranks(), vec![3, 4, 4]);
    /// let dense = &x.to_dense() + &y.to_dense();
    /// assert!(tnet::dense::rel_error(dense.view(), s.to_dense().view()).unwrap() < 1e-14);
    /// ```
    pub fn add(&self, other: &Self) -> Result<Self> {
        check_same_shape("TuckerTensor::add", &self.shape, &other.shape)?;
        let (r1, r2) = (self.ranks(), other.ranks());
        let shape: Vec<usize> = r1.iter().zip(&r2).map(|(a, b)| a + b).collect();
        let mut core = ArrayD::<T>::zeros(IxDyn(&shape));
        core.slice_each_axis_mut(|ax| Slice::from(0..r1[ax.axis.index()]))
            .assign(&self.core);
        core.slice_each_axis_mut(|ax| Slice::from(r1[ax.axis.index()]..))
            .assign(&other.core);
        let factors = self
            .factors
            .iter()
            .zip(&other.factors)
            .map(|(a, b)| {
                ndarray::concatenate(Axis(1), &[a.view(), b.view()]).expect("same row count")
            })
            .collect();
        Ok(Self::from_parts(core, factors))
    }

    /// Exact difference `X − Y` (ranks add).
    ///
    /// # Errors
    /// As [`add`](Self::add).
    pub fn sub(&self, other: &Self) -> Result<Self> {
        self.add(&other.scale(-T::one()))
    }

    /// `alpha · X` (scales the core).
    pub fn scale(&self, alpha: T) -> Self {
        Self {
            shape: self.shape.clone(),
            core: &self.core * alpha,
            factors: self.factors.clone(),
        }
    }

    /// Inner product `<X, Y>` without densifying: `M_k = U_kᵀ V_k` (`R_k x R'_k`), then
    /// `<G, H ×_1 M_1 .. ×_d M_d>`. Cost `O(Σ n_k R_k R'_k + Π R' · Σ R)`.
    ///
    /// # Errors
    /// As [`add`](Self::add).
    ///
    /// # Example
    /// ```
    /// use tnet::{Factorized, TuckerTensor};
    /// let x = TuckerTensor::<f64>::random(&[3, 4, 5], &[2, 2, 2], 1).unwrap();
    /// let y = TuckerTensor::<f64>::random(&[3, 4, 5], &[3, 1, 2], 2).unwrap();
    /// let dense = tnet::dense::inner(x.to_dense().view(), y.to_dense().view()).unwrap();
    /// assert!((x.inner(&y).unwrap() - dense).abs() < 1e-12);
    /// ```
    pub fn inner(&self, other: &Self) -> Result<T> {
        check_same_shape("TuckerTensor::inner", &self.shape, &other.shape)?;
        let m: Vec<Array2<T>> = self
            .factors
            .iter()
            .zip(&other.factors)
            .map(|(u, v)| crate::linalg::matmul(u.t(), v.view()))
            .collect();
        let ops: Vec<(usize, ArrayView2<'_, T>)> =
            m.iter().enumerate().map(|(k, a)| (k, a.view())).collect();
        let z = multi_mode_product(other.core.view(), &ops);
        dense::inner(self.core.view(), z.view())
    }

    /// `‖X − Y‖_F` through the orthogonalised difference (accurate when `X ≈ Y`, unlike
    /// `‖X‖² − 2<X,Y> + ‖Y‖²`).
    ///
    /// # Errors
    /// As [`add`](Self::add).
    pub fn norm_diff(&self, other: &Self) -> Result<T> {
        Ok(self.sub(other)?.norm())
    }

    /// Exact Hadamard (entrywise) product `X ∘ Y`: factors
    /// `U[i, a R' + a'] = U_X[i, a] U_Y[i, a']` (row-wise Kronecker products) and the
    /// Kronecker product of the cores; ranks multiply.
    ///
    /// # Errors
    /// As [`add`](Self::add).
    pub fn hadamard(&self, other: &Self) -> Result<Self> {
        check_same_shape("TuckerTensor::hadamard", &self.shape, &other.shape)?;
        let d = self.order();
        let (r1, r2) = (self.ranks(), other.ranks());
        // Outer product of the cores with axes (a_1..a_d, a'_1..a'_d), then interleave.
        let c1: Vec<T> = self.core.iter().copied().collect();
        let c2: Vec<T> = other.core.iter().copied().collect();
        let mut outer = Vec::with_capacity(c1.len() * c2.len());
        for &a in &c1 {
            outer.extend(c2.iter().map(|&b| a * b));
        }
        let mut both = r1.clone();
        both.extend_from_slice(&r2);
        let outer = ArrayD::from_shape_vec(IxDyn(&both), outer).expect("sizes agree");
        let perm: Vec<usize> = (0..d).flat_map(|k| [k, d + k]).collect();
        let shape: Vec<usize> = r1.iter().zip(&r2).map(|(a, b)| a * b).collect();
        let data: Vec<T> = outer.permuted_axes(perm).iter().copied().collect();
        let core = ArrayD::from_shape_vec(IxDyn(&shape), data).expect("sizes agree");
        let factors = self
            .factors
            .iter()
            .zip(&other.factors)
            .map(|(a, b)| {
                let kb = b.ncols();
                Array2::from_shape_fn((a.nrows(), a.ncols() * kb), |(i, j)| {
                    a[[i, j / kb]] * b[[i, j % kb]]
                })
            })
            .collect();
        Ok(Self::from_parts(core, factors))
    }

    /// Mode-`k` product `X ×_k A` with `A` of shape `J x n_k`: `U_k ← A U_k`.
    ///
    /// # Errors
    /// [`Error::InvalidMode`], [`Error::ShapeMismatch`] if `A` has not `n_k` columns,
    /// [`Error::Empty`] if `J = 0`, [`Error::NonFinite`] for NaN/Inf in `A`.
    pub fn mode_product(&self, a: ArrayView2<'_, T>, k: usize) -> Result<Self> {
        if k >= self.order() {
            return Err(Error::InvalidMode {
                mode: k,
                order: self.order(),
            });
        }
        if a.ncols() != self.shape[k] {
            return Err(Error::ShapeMismatch {
                context: "TuckerTensor::mode_product",
                expected: vec![a.nrows(), self.shape[k]],
                got: a.shape().to_vec(),
            });
        }
        let mut factors = self.factors.clone();
        factors[k] = crate::linalg::matmul(a, self.factors[k].view());
        Self::try_new(self.core.clone(), factors)
    }

    /// Exact conversion to Hierarchical Tucker on `tree`: an exact HT-SVD of the (small)
    /// core on the tree, whose leaf bases are then multiplied by the factors,
    /// `U_t ← U_μ U_t`. HT ranks are those of the core's matricizations, so at most the
    /// Tucker ranks at the leaves. Cost: HT-SVD of a `Π R_k` tensor plus `O(Σ n R²)`.
    ///
    /// # Errors
    /// [`Error::InvalidTree`] if the tree's order differs from the tensor's.
    ///
    /// # Example
    /// ```
    /// use tnet::{DimTree, Factorized, TuckerTensor};
    /// let x = TuckerTensor::<f64>::random(&[4, 5, 6, 3], &[2, 3, 2, 2], 7).unwrap();
    /// let ht = x.to_ht(&DimTree::balanced(4).unwrap()).unwrap();
    /// let back = TuckerTensor::from_ht(&ht).unwrap();
    /// let err = tnet::dense::rel_error(x.to_dense().view(), back.to_dense().view()).unwrap();
    /// assert!(err < 1e-13);
    /// ```
    pub fn to_ht(&self, tree: &DimTree) -> Result<HtTensor<T>> {
        tree.check_order(self.order())?;
        let (h, _) = crate::formats::ht::ht_svd(
            self.core.view(),
            tree,
            &Truncation::exact(),
            crate::formats::ht::Sweep::LeavesToRoot,
        )?;
        let (tree, _, mut nodes) = h.into_parts();
        for t in tree.leaves().collect::<Vec<_>>() {
            let m = tree.modes(t)[0];
            if let HtNode::Leaf(u) = &nodes[t] {
                nodes[t] = HtNode::Leaf(crate::linalg::matmul(self.factors[m].view(), u.view()));
            }
        }
        Ok(HtTensor::from_parts(tree, self.shape.clone(), nodes))
    }

    /// Exact conversion from Hierarchical Tucker: the leaf bases become the factors and the
    /// core is the HT tensor of the same transfer tensors with identity leaves,
    /// densified (shape `(k_leaf(1), .., k_leaf(d))`). Cost `O(Π k_leaf · k)` and memory
    /// `Π k_leaf`.
    ///
    /// # Errors
    /// Only if the HT tensor is inconsistent (not possible for a validated one).
    pub fn from_ht(h: &HtTensor<T>) -> Result<Self> {
        let tree = h.tree();
        let d = tree.order();
        let mut nodes = h.nodes().to_vec();
        let mut factors = Vec::with_capacity(d);
        let mut core_shape = Vec::with_capacity(d);
        for m in 0..d {
            let t = tree.leaf_of(m);
            let u = h.leaf(t).to_owned();
            core_shape.push(u.ncols());
            nodes[t] = HtNode::Leaf(Array2::eye(u.ncols()));
            factors.push(u);
        }
        let core = HtTensor::try_new(tree.clone(), core_shape, nodes)?.to_dense();
        Self::try_new(core, factors)
    }
}

impl<T: Scalar> Factorized<T> for TuckerTensor<T> {
    fn shape(&self) -> &[usize] {
        &self.shape
    }

    /// Contracts the core with the fixed rows of the factors: mode `k` of the result has
    /// size 1, rank 1 and factor `[[1]]`, its core `G ×_k U_k[i_k, :]` (cost `O(|G|)`,
    /// and the core shrinks by `R_k` per fixed mode).
    fn fix_leading(&self, index: &[usize]) -> Result<Self> {
        crate::formats::checks::check_leading_index(index, &self.shape)?;
        let mut core: Option<ArrayD<T>> = None;
        let mut factors = self.factors.clone();
        for (k, (u, &i)) in factors.iter_mut().zip(index).enumerate() {
            let g = core.as_ref().map_or(self.core.view(), ArrayD::view);
            core = Some(dense::mode_product(g, u.slice(ndarray::s![i..=i, ..]), k)?);
            *u = Array2::ones((1, 1));
        }
        let core = core.unwrap_or_else(|| self.core.clone());
        Ok(Self::from_parts(core, factors))
    }

    /// `Σ_k n_k R_k + Π_k R_k`.
    fn n_params(&self) -> usize {
        self.core.len() + self.factors.iter().map(Array2::len).sum::<usize>()
    }

    /// Two consecutive mode products, each at most `Π max(n_k, R_k)` entries (whatever
    /// order the modes are multiplied in).
    fn dense_work(&self) -> u128 {
        let most = self
            .factors
            .iter()
            .map(|u| u.nrows().max(u.ncols()) as u128)
            .fold(1u128, u128::saturating_mul);
        most.saturating_mul(2)
    }

    /// `G ×_1 U_1 .. ×_d U_d`, the mode products in the cheapest order. Cost at most
    /// `2 N Σ_k R_k` flops, dominated by the last product (`2 N R_k`).
    fn to_dense(&self) -> ArrayD<T> {
        let ops: Vec<(usize, ArrayView2<'_, T>)> = self
            .factors
            .iter()
            .enumerate()
            .map(|(k, u)| (k, u.view()))
            .collect();
        multi_mode_product(self.core.view(), &ops)
    }

    /// Norm through orthogonalisation: `‖X‖ = ‖G ×_k R_k‖` with `U_k = Q_k R_k`, accurate
    /// to working precision. Cost `O(Σ n R² + Π R · Σ R)`.
    fn norm(&self) -> T {
        dense::norm(self.orthogonalize().core.view())
    }

    /// `<G, X ×_1 U_1ᵀ .. ×_d U_dᵀ>`, the projections in the order that shrinks `X`
    /// fastest. Cost `O(N R_first)`.
    fn inner_dense(&self, x: ArrayViewD<'_, T>) -> Result<T> {
        if x.shape() != self.shape.as_slice() {
            return Err(Error::ShapeMismatch {
                context: "TuckerTensor::inner_dense",
                expected: self.shape.clone(),
                got: x.shape().to_vec(),
            });
        }
        let ops: Vec<(usize, ArrayView2<'_, T>)> = self
            .factors
            .iter()
            .enumerate()
            .map(|(k, u)| (k, u.t()))
            .collect();
        let p = multi_mode_product(x, &ops);
        dense::inner(self.core.view(), p.view())
    }

    /// `Σ_a G[a] Π_k U_k[i_k, a_k]`, contracting the last mode first. Cost `O(Π R)`.
    fn entry(&self, index: &[usize]) -> Result<T> {
        if index.len() != self.order() || index.iter().zip(&self.shape).any(|(&i, &n)| i >= n) {
            return Err(Error::IndexOutOfBounds {
                index: index.to_vec(),
                shape: self.shape.clone(),
            });
        }
        let mut cur: Vec<T> = self.core.iter().copied().collect();
        for k in (0..self.order()).rev() {
            let row = self.factors[k].row(index[k]);
            let r = row.len();
            cur = cur
                .chunks_exact(r)
                .map(|c| c.iter().zip(row.iter()).map(|(&a, &b)| a * b).sum())
                .collect();
        }
        Ok(cur[0])
    }

    /// Orthogonalise the factors, then ST-HOSVD of the core under `rule` (the new factors
    /// are `Q_k U'_k`). Since the `Q_k` are orthonormal the error bounds of
    /// [`st_hosvd`] hold for the tensor:
    /// `‖X − Y‖ ≤ ε ‖X‖` for a relative tolerance, `≤ √d ‖X − X_best‖` for fixed ranks,
    /// always `≤ info.error_bound`. Cost `O(Σ n R² + Π R · Σ R)`.
    fn round(&self, rule: &impl AsRule) -> Result<(Self, TruncationInfo<T>)> {
        let rule = rule.as_rule()?;
        let y = self.orthogonalize();
        let (t, info) = crate::formats::tucker::st_hosvd(y.core.view(), &rule)?;
        let (core, small) = t.into_parts();
        let factors = y
            .factors
            .iter()
            .zip(&small)
            .map(|(q, u)| crate::linalg::matmul(q.view(), u.view()))
            .collect();
        Ok((Self::from_parts(core, factors), info))
    }
}
