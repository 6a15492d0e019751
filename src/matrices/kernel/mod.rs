//! The pairwise contraction kernel: one contraction of two labelled dense tensors,
//! executed as one GEMM (or a few, in parallel), with layout changes only where the
//! operands cannot be viewed as matrices.
//!
//! A tensor here is a flat row-major buffer plus the list of its labels in storage order
//! (labels of size 1 are never listed: they do not change the memory layout). Contracting
//! `A` (labels `a`) with `B` (labels `b`) over the shared labels `K = a ∩ b` gives `C` on
//! `(a ∪ b) \ K`. As a GEMM, `C_mat (|α| x |β|) = A_mat (|α| x |K|) · B_mat (|K| x |β|)`,
//! with `α` the free labels of `A` and `β` those of `B` in some order. `A` can be viewed as
//! `A_mat` without a copy iff its storage order is `α ++ σ` or `σ ++ α` for an order `σ` of
//! `K` (a transposed view is free); likewise `B` and `C`. [`decide`] picks the orders that
//! need the fewest moved elements; [`contract`] executes the decision:
//!
//! - operands that must be re-laid-out are permuted; a large first operand is permuted
//!   chunk by chunk, each chunk (a few hundred kB, in cache) followed at once by its GEMM,
//!   chunks spread over the rayon pool;
//! - otherwise one GEMM, split in two halves over the threads when it is large;
//! - a result that must land in an order no GEMM produces is written to a scratch buffer
//!   and permuted (with accumulation if asked);
//! - when the GEMM path would move entries and the smaller operand is small (a core or a
//!   cluster of cores, at most 16,384 entries, at least 8 free values), the strided kernel
//!   [`gett`](gett::gett) runs instead: it reads `A` and writes `C` in place through
//!   offset tables (any storage orders), packs only the small operand, and moves nothing.
//!   At the UCF11 shape this replaces the permutation of every intermediate of the HT and
//!   TT chains (20-30% of the forward time).
//!
//! Scratch buffers come from a [`Pool`] owned by the matrix, so repeated calls allocate
//! nothing large.

use std::sync::Mutex;

use ndarray::{ArrayView2, ArrayViewMut2, Axis};
use rayon::prelude::*;

use crate::Scalar;
use crate::linalg::{Parallelism, matmul_into};

mod gett;
pub(crate) use gett::isa_name;

/// GEMMs below this many flops run on one thread (rayon's split does not pay).
const PAR_GEMM_FLOPS: f64 = 4.0e6;
/// Permutations below this many elements run on one thread.
const PAR_PERMUTE_LEN: usize = 1 << 18;
/// A first operand larger than this is permuted chunk by chunk, fused with its GEMM.
const CHUNK_MIN_LEN: usize = 1 << 16;
/// ... and has at least this many rows (and more rows than columns) as a matrix.
const CHUNK_MIN_ROWS: usize = 1024;
/// Target elements per chunk of the first operand (fits the L2 cache).
const CHUNK_TARGET_LEN: usize = 1 << 15;

/// A reusable set of scratch buffers.
#[derive(Debug, Default)]
pub(crate) struct Pool<T> {
    free: Mutex<Vec<Vec<T>>>,
}

/// A buffer on loan from a [`Pool`]: the first `len` elements of a vector whose every
/// element is initialised (so handing it out needs no clearing).
#[derive(Debug)]
pub(crate) struct Scratch<T> {
    v: Vec<T>,
    len: usize,
}

impl<T> std::ops::Deref for Scratch<T> {
    type Target = [T];
    fn deref(&self) -> &[T] {
        &self.v[..self.len]
    }
}

impl<T> std::ops::DerefMut for Scratch<T> {
    fn deref_mut(&mut self) -> &mut [T] {
        &mut self.v[..self.len]
    }
}

impl<T: Scalar> Pool<T> {
    pub fn new() -> Self {
        Self {
            free: Mutex::new(Vec::new()),
        }
    }

    /// A buffer of `len` elements with unspecified (initialised) contents.
    pub fn take(&self, len: usize) -> Scratch<T> {
        let mut v = {
            let mut free = self.free.lock().unwrap_or_else(|e| e.into_inner());
            // Best fit: the smallest buffer that is large enough, else the largest one.
            let pick = free
                .iter()
                .enumerate()
                .filter(|(_, b)| b.len() >= len)
                .min_by_key(|(_, b)| b.len())
                .or_else(|| free.iter().enumerate().max_by_key(|(_, b)| b.len()))
                .map(|(i, _)| i);
            pick.map(|i| free.swap_remove(i)).unwrap_or_default()
        };
        if v.len() < len {
            v.resize(len, T::zero());
        }
        Scratch { v, len }
    }

    /// Returns a buffer for reuse.
    pub fn give(&self, s: Scratch<T>) {
        if !s.v.is_empty() {
            self.free
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(s.v);
        }
    }
}

/// Product of the label sizes.
pub(crate) fn size_of(labels: &[usize], dims: &[usize]) -> usize {
    labels.iter().map(|&l| dims[l]).product()
}

fn mask_of(labels: &[usize]) -> u64 {
    labels.iter().fold(0, |m, &l| m | (1u64 << l))
}

/// How one pairwise contraction is executed (see the [module docs](self)).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Decision {
    /// The two operands are used in swapped roles (the first argument is `B`).
    pub swapped: bool,
    /// GEMM sizes.
    pub m: usize,
    pub k: usize,
    pub n: usize,
    /// Effective layout of `A` (after a permutation if `a_permute`).
    pub a_layout: Vec<usize>,
    pub a_permute: bool,
    /// `A` effective layout is `α ++ σ` (else `σ ++ α`).
    pub a_rows_first: bool,
    /// Number of labels of `σ` (the contracted labels).
    pub n_sigma: usize,
    pub b_layout: Vec<usize>,
    pub b_permute: bool,
    /// `B` effective layout is `σ ++ β` (else `β ++ σ`).
    pub b_k_first: bool,
    /// Layout the GEMM writes: `α ++ β` if `c_rows_first`, else `β ++ α`.
    pub gemm_layout: Vec<usize>,
    pub c_rows_first: bool,
    /// The GEMM writes a scratch buffer that is then permuted to the requested layout.
    pub c_permute: bool,
    /// Elements moved by permutations (the cost beyond the GEMM).
    pub moved: usize,
    /// Executed by the strided kernel [`gett`](gett::gett) (no permutation, no GEMM;
    /// the layout fields above are unused).
    pub gett: bool,
    /// The cost beyond the flops, in entries moved: `moved`, or the strided kernel's
    /// equivalent.
    pub cost: usize,
}

fn sub_in_order(layout: &[usize], mask: u64) -> Vec<usize> {
    layout
        .iter()
        .copied()
        .filter(|&l| mask >> l & 1 == 1)
        .collect()
}

/// If `layout` is `head ++ rest` with `head` the labels of `mask` (in any order), returns
/// `(head, rest)`.
fn split_prefix(layout: &[usize], mask: u64) -> Option<(&[usize], &[usize])> {
    let n = mask.count_ones() as usize;
    (mask_of(&layout[..n]) == mask).then(|| layout.split_at(n))
}

/// The strided kernel is considered when the smaller operand has at most this many
/// entries ...
const GETT_MAX_B: usize = 1 << 14;
/// ... the contracted labels at most this many values ...
const GETT_MAX_K: usize = 4096;
/// ... and its free labels at least this many (the kernel's vectors run along them).
const GETT_MIN_N: usize = 8;

/// Decides how to contract `a` with `b` into the layout `out` (which must hold exactly the
/// free labels of both). Deterministic: the planner and the executor call it with the same
/// arguments and get the same decision.
///
/// When the smaller operand is small (a core, a cluster of cores), the contraction can run
/// in the strided kernel [`gett`](gett::gett), which needs no layout change but has a
/// larger cost per output entry than a GEMM (measured at the UCF11 shapes: about half the
/// cost of moving an entry with vector stores, when `C` stores the smaller operand's free
/// labels last; a whole move with scalar stores). It is chosen when that cost is below the
/// entries the GEMM path would move.
pub(crate) fn decide(a: &[usize], b: &[usize], out: &[usize], dims: &[usize]) -> Decision {
    let mut d = decide_gemm(a, b, out, dims);
    if d.moved == 0 {
        return d;
    }
    let small = if d.swapped { a } else { b };
    let big = if d.swapped { b } else { a };
    let kmask = mask_of(big) & mask_of(small);
    let bf = mask_of(small) & !kmask;
    if size_of(small, dims) <= GETT_MAX_B && d.k <= GETT_MAX_K && d.n >= GETT_MIN_N {
        let n_beta = bf.count_ones() as usize;
        let vector_stores = out.len() >= n_beta && mask_of(&out[out.len() - n_beta..]) == bf;
        let c_len = size_of(out, dims);
        let cost = if vector_stores { c_len / 2 } else { c_len };
        if cost < d.cost {
            d.gett = true;
            d.a_permute = false;
            d.b_permute = false;
            d.c_permute = false;
            d.moved = 0;
            d.cost = cost;
        }
    }
    d
}

fn decide_gemm(a: &[usize], b: &[usize], out: &[usize], dims: &[usize]) -> Decision {
    let (sa, sb) = (size_of(a, dims), size_of(b, dims));
    // The larger operand plays A (the one that may be chunked).
    let swapped = sb > sa;
    let (a, b) = if swapped { (b, a) } else { (a, b) };
    let (ma, mb) = (mask_of(a), mask_of(b));
    let kmask = ma & mb;
    let (af, bf) = (ma & !kmask, mb & !kmask);
    debug_assert_eq!(mask_of(out), af | bf, "decide: output labels");
    let sc = size_of(out, dims);
    let mut best: Option<Decision> = None;
    // Candidate (α, β, c_rows_first, c_permute): from the requested layout, or the
    // operands' own free orders with a permutation of the result.
    let mut candidates = Vec::with_capacity(3);
    if let Some((h, t)) = split_prefix(out, af) {
        candidates.push((h.to_vec(), t.to_vec(), true, false));
    }
    if let Some((h, t)) = split_prefix(out, bf) {
        candidates.push((t.to_vec(), h.to_vec(), false, false));
    }
    candidates.push((sub_in_order(a, af), sub_in_order(b, bf), true, true));
    for (alpha, beta, c_rows_first, c_permute_wanted) in candidates {
        let gemm_layout: Vec<usize> = if c_rows_first {
            alpha.iter().chain(&beta).copied().collect()
        } else {
            beta.iter().chain(&alpha).copied().collect()
        };
        let c_permute = c_permute_wanted && gemm_layout != out;
        // A zero-copy?
        let na = alpha.len();
        let nk = a.len() - na;
        let a_zc = if a[..na] == alpha[..] {
            Some((true, a[na..].to_vec()))
        } else if a[nk..] == alpha[..] {
            Some((false, a[..nk].to_vec()))
        } else {
            None
        };
        let nb = beta.len();
        let b_zc = if b[nk..] == beta[..] {
            Some((true, b[..nk].to_vec()))
        } else if b[..nb] == beta[..] {
            Some((false, b[nb..].to_vec()))
        } else {
            None
        };
        let (a_rows_first, a_permute, b_k_first, b_permute, sigma) = match (a_zc, b_zc) {
            (Some((ar, sa_)), Some((bk, sb_))) if sa_ == sb_ => (ar, false, bk, false, sa_),
            (Some((ar, sa_)), _) => (ar, false, true, true, sa_),
            (None, Some((bk, sb_))) => (true, true, bk, false, sb_),
            (None, None) => (true, true, true, true, sub_in_order(b, kmask)),
        };
        let a_layout = if a_permute {
            alpha.iter().chain(&sigma).copied().collect()
        } else {
            a.to_vec()
        };
        let b_layout = if b_permute {
            sigma.iter().chain(&beta).copied().collect()
        } else {
            b.to_vec()
        };
        let moved = usize::from(a_permute) * sa.max(sb)
            + usize::from(b_permute) * sa.min(sb)
            + usize::from(c_permute) * sc;
        let d = Decision {
            swapped,
            m: size_of(&alpha, dims),
            k: size_of(&sigma, dims),
            n: size_of(&beta, dims),
            a_layout,
            a_permute,
            a_rows_first,
            n_sigma: sigma.len(),
            b_layout,
            b_permute,
            b_k_first,
            gemm_layout,
            c_rows_first,
            c_permute,
            moved,
            gett: false,
            cost: moved,
        };
        if best.as_ref().is_none_or(|b| d.moved < b.moved) {
            best = Some(d);
        }
    }
    best.expect("at least one candidate")
}

impl Decision {
    /// True when `A` (of `a_len` entries) is permuted chunk by chunk, fused with the GEMM.
    pub fn chunked(&self, a_len: usize) -> bool {
        !self.gett
            && self.a_permute
            && a_len >= CHUNK_MIN_LEN
            && self.n_sigma < self.a_layout.len()
            && self.m >= self.k.max(CHUNK_MIN_ROWS)
    }

    /// Entries of scratch buffers needed, for operands of the given sizes (`x`, `y` as
    /// passed to [`decide`]).
    pub fn scratch(&self, x_len: usize, y_len: usize, c_len: usize) -> usize {
        let (a_len, b_len) = if self.swapped {
            (y_len, x_len)
        } else {
            (x_len, y_len)
        };
        let a = if self.a_permute && !self.chunked(a_len) {
            a_len
        } else {
            0
        };
        // The strided kernel packs the smaller operand (padded to whole panels).
        a + usize::from(self.b_permute || self.gett) * b_len + usize::from(self.c_permute) * c_len
    }
}

/// A labelled tensor operand.
#[derive(Clone, Copy)]
pub(crate) struct Tens<'a, T> {
    pub labels: &'a [usize],
    pub data: &'a [T],
}

/// Strides (in elements) of each label in a row-major tensor with this layout.
fn strides_of(layout: &[usize], dims: &[usize]) -> Vec<(usize, isize)> {
    let mut out = vec![(0, 0); layout.len()];
    let mut s = 1isize;
    for (i, &l) in layout.iter().enumerate().rev() {
        out[i] = (l, s);
        s *= dims[l] as isize;
    }
    out
}

/// `dst (row-major in dst_layout) (+)= src (row-major in src_layout)`.
pub(crate) fn permute_into<T: Scalar>(
    src: &[T],
    src_layout: &[usize],
    dst: &mut [T],
    dst_layout: &[usize],
    dims: &[usize],
    accumulate: bool,
) {
    let st = strides_of(src_layout, dims);
    let stride = |l: usize| st.iter().find(|(x, _)| *x == l).expect("same labels").1 as usize;
    let shape: Vec<usize> = dst_layout.iter().map(|&l| dims[l]).collect();
    let strides: Vec<usize> = dst_layout.iter().map(|&l| stride(l)).collect();
    copy_strided(src, &shape, &strides, dst, accumulate, true);
}

/// `dst (+)= src` where `dst` is row-major of `shape` and `src[Σ idx_a strides[a]]` holds
/// the entry at `idx`. A blocked transposition when the contiguous axes of the two differ;
/// split over the rayon threads when large and `parallel`.
pub(crate) fn copy_strided<T: Scalar>(
    src: &[T],
    shape: &[usize],
    strides: &[usize],
    dst: &mut [T],
    accumulate: bool,
    parallel: bool,
) {
    // Drop size-1 axes and merge axes contiguous in both.
    let mut sh: Vec<usize> = Vec::with_capacity(shape.len());
    let mut ss: Vec<usize> = Vec::with_capacity(shape.len());
    for (&n, &s) in shape.iter().zip(strides) {
        if n == 1 {
            continue;
        }
        match (sh.last_mut(), ss.last()) {
            (Some(pn), Some(&ps)) if ps == s * n => {
                *pn *= n;
                *ss.last_mut().expect("same length") = s;
            }
            _ => {
                sh.push(n);
                ss.push(s);
            }
        }
    }
    if sh.is_empty() {
        if accumulate {
            dst[0] += src[0];
        } else {
            dst[0] = src[0];
        }
        return;
    }
    let total: usize = sh.iter().product();
    debug_assert_eq!(total, dst.len());
    if parallel && total >= PAR_PERMUTE_LEN && rayon::current_num_threads() > 1 && sh[0] > 1 {
        let inner = total / sh[0];
        let parts = rayon::current_num_threads().min(sh[0]);
        let per = sh[0].div_ceil(parts);
        dst.par_chunks_mut(per * inner)
            .enumerate()
            .for_each(|(c, d)| {
                let mut shp = sh.clone();
                shp[0] = d.len() / inner;
                copy_merged(&src[c * per * ss[0]..], &shp, &ss, d, accumulate);
            });
    } else {
        copy_merged(src, &sh, &ss, dst, accumulate);
    }
}

/// `dst (+)= src` for two slices of the same length.
#[inline(always)]
fn copy_run<T: Scalar>(dst: &mut [T], src: &[T], acc: bool) {
    if acc {
        for (x, &y) in dst.iter_mut().zip(src) {
            *x += y;
        }
    } else {
        dst.copy_from_slice(src);
    }
}

#[inline(always)]
fn put<T: Scalar>(d: &mut T, s: T, accumulate: bool) {
    if accumulate {
        *d += s;
    } else {
        *d = s;
    }
}

/// The copy of [`copy_strided`] after merging (no size-1 axes).
///
/// Let `p` be the axis contiguous in the source. For every index of the destination axes
/// before `p`, the destination block `(n_p, L)` (`L` the product of the axes after `p`) is
/// contiguous; it is filled in runs of up to `RUN` destination entries whose source
/// offsets come from a small table, looping over `p` inside each run, so that writes are
/// contiguous and the source lines of a run stay in cache across `p`.
fn copy_merged<T: Scalar>(src: &[T], sh: &[usize], ss: &[usize], dst: &mut [T], acc: bool) {
    const RUN: usize = 512;
    let nd = sh.len();
    let q = nd - 1;
    if ss[q] == 1 {
        // Same contiguous axis: copy runs, a block of `sh[q - 1]` runs per step of the
        // outer axes (short runs are frequent: a rank-sized last axis).
        let run = sh[q];
        if q == 0 {
            copy_run(&mut dst[..run], &src[..run], acc);
            return;
        }
        let (inner_n, inner_s) = (sh[q - 1], ss[q - 1]);
        let outer = &sh[..q - 1];
        let mut idx = vec![0usize; q - 1];
        let mut so = 0usize;
        for block in dst.chunks_exact_mut(run * inner_n) {
            for (i, d) in block.chunks_exact_mut(run).enumerate() {
                let o = so + i * inner_s;
                copy_run(d, &src[o..o + run], acc);
            }
            let mut a = q - 1;
            while a > 0 {
                a -= 1;
                idx[a] += 1;
                so += ss[a];
                if idx[a] < outer[a] {
                    break;
                }
                so -= ss[a] * outer[a];
                idx[a] = 0;
            }
        }
        return;
    }
    // The axis contiguous in the source (if none, the loop over it is trivial).
    let p = (0..nd).find(|&a| ss[a] == 1);
    let (np, first_s) = match p {
        Some(p) => (sh[p], p + 1),
        None => (1, {
            // The longest destination suffix of at most RUN * 8 entries, at least one axis.
            let mut f = q;
            let mut len = sh[q];
            while f > 0 && len * sh[f - 1] <= RUN * 8 {
                f -= 1;
                len *= sh[f];
            }
            f
        }),
    };
    let n_outer = p.unwrap_or(first_s);
    let l: usize = sh[first_s..].iter().product();
    let mut off = vec![0usize; RUN.min(l)];
    let mut idx_o = vec![0usize; n_outer];
    let mut idx_s = vec![0usize; nd - first_s];
    let mut so = 0usize;
    let mut dof = 0usize;
    let block = np * l;
    loop {
        // One destination block (np x l) at dof, source base so.
        let mut s0 = 0;
        let mut soff = 0usize;
        idx_s.iter_mut().for_each(|x| *x = 0);
        while s0 < l {
            let len = RUN.min(l - s0);
            for o in off[..len].iter_mut() {
                *o = soff;
                let mut a = idx_s.len();
                while a > 0 {
                    a -= 1;
                    let ax = first_s + a;
                    idx_s[a] += 1;
                    soff += ss[ax];
                    if idx_s[a] < sh[ax] {
                        break;
                    }
                    soff -= ss[ax] * sh[ax];
                    idx_s[a] = 0;
                }
            }
            for i in 0..np {
                let d = &mut dst[dof + i * l + s0..dof + i * l + s0 + len];
                let base = so + i;
                let window = &src[base..];
                debug_assert!(off[..len].iter().all(|&o| o < window.len()));
                for (x, &o) in d.iter_mut().zip(&off[..len]) {
                    // SAFETY: every offset of the table is an index of an entry of the source
                    // tensor relative to this block's base (checked in debug builds): the
                    // caller's shape and strides address only entries of `src`.
                    put(x, unsafe { *window.get_unchecked(o) }, acc);
                }
            }
            s0 += len;
        }
        dof += block;
        let mut a = n_outer;
        loop {
            if a == 0 {
                return;
            }
            a -= 1;
            idx_o[a] += 1;
            so += ss[a];
            if idx_o[a] < sh[a] {
                break;
            }
            so -= ss[a] * sh[a];
            idx_o[a] = 0;
        }
    }
}

/// `C (+)= A B`, split over the rayon threads when large.
pub(crate) fn gemm<T: Scalar>(
    mut c: ArrayViewMut2<'_, T>,
    a: ArrayView2<'_, T>,
    b: ArrayView2<'_, T>,
    accumulate: bool,
) {
    let (m, k) = a.dim();
    let n = b.ncols();
    let flops = 2.0 * m as f64 * n as f64 * k as f64;
    if flops < PAR_GEMM_FLOPS || rayon::current_num_threads() < 2 {
        matmul_into(c, a, b, T::one(), accumulate, Parallelism::Seq);
        return;
    }
    if m >= n && m >= 2 && m * 4 >= k {
        let h = m / 2;
        let (c1, c2) = c.view_mut().split_at(Axis(0), h);
        let (a1, a2) = a.split_at(Axis(0), h);
        rayon::join(
            || gemm(c1, a1, b, accumulate),
            || gemm(c2, a2, b, accumulate),
        );
    } else if n > m && n >= 2 && n * 4 >= k {
        let h = n / 2;
        let (c1, c2) = c.view_mut().split_at(Axis(1), h);
        let (b1, b2) = b.split_at(Axis(1), h);
        rayon::join(
            || gemm(c1, a, b1, accumulate),
            || gemm(c2, a, b2, accumulate),
        );
    } else {
        // Long inner dimension, small result: two partial products, then one addition.
        let h = k / 2;
        let (a1, a2) = a.split_at(Axis(1), h);
        let (b1, b2) = b.split_at(Axis(0), h);
        let mut tmp = ndarray::Array2::<T>::zeros((m, n));
        rayon::join(
            || gemm(c.view_mut(), a1, b1, accumulate),
            || gemm(tmp.view_mut(), a2, b2, false),
        );
        c += &tmp;
    }
}

fn mat<T>(data: &[T], rows: usize, cols: usize, row_major: bool) -> ArrayView2<'_, T> {
    if row_major {
        ArrayView2::from_shape((rows, cols), data).expect("matrix size")
    } else {
        ArrayView2::from_shape((cols, rows), data)
            .expect("matrix size")
            .reversed_axes()
    }
}

fn mat_mut<T>(data: &mut [T], rows: usize, cols: usize, row_major: bool) -> ArrayViewMut2<'_, T> {
    if row_major {
        ArrayViewMut2::from_shape((rows, cols), data).expect("matrix size")
    } else {
        ArrayViewMut2::from_shape((cols, rows), data)
            .expect("matrix size")
            .reversed_axes()
    }
}

/// Contracts `x` with `y` into `out` (row-major in `out_layout`), accumulating if asked.
///
/// # Panics
/// If the buffers do not match their layouts (an internal invariant of the planner).
pub(crate) fn contract<T: Scalar>(
    x: Tens<'_, T>,
    y: Tens<'_, T>,
    out: &mut [T],
    out_layout: &[usize],
    accumulate: bool,
    dims: &[usize],
    pool: &Pool<T>,
) {
    let d = decide(x.labels, y.labels, out_layout, dims);
    contract_as(&d, x, y, out, out_layout, accumulate, dims, pool);
}

/// [`contract`] with a given decision (of `decide` or, in tests, `decide_gemm`).
#[allow(clippy::too_many_arguments)]
fn contract_as<T: Scalar>(
    d: &Decision,
    x: Tens<'_, T>,
    y: Tens<'_, T>,
    out: &mut [T],
    out_layout: &[usize],
    accumulate: bool,
    dims: &[usize],
    pool: &Pool<T>,
) {
    let (a, b) = if d.swapped { (y, x) } else { (x, y) };
    debug_assert_eq!(a.data.len(), size_of(a.labels, dims));
    debug_assert_eq!(b.data.len(), size_of(b.labels, dims));
    debug_assert_eq!(out.len(), size_of(out_layout, dims));
    if d.gett {
        contract_gett(a, b, out, out_layout, accumulate, dims, pool);
        return;
    }
    // B: permute whole (it is the smaller operand).
    let b_buf = d.b_permute.then(|| {
        let mut buf = pool.take(b.data.len());
        permute_into(b.data, b.labels, &mut buf[..], &d.b_layout, dims, false);
        buf
    });
    let b_data = b_buf.as_deref().unwrap_or(b.data);
    let b_mat = mat(b_data, d.k, d.n, d.b_k_first);
    if d.c_permute {
        let mut cb = pool.take(out.len());
        run_gemm(d, a, b_mat, &mut cb, false, dims, pool);
        permute_into(&cb, &d.gemm_layout, out, out_layout, dims, accumulate);
        pool.give(cb);
    } else {
        run_gemm(d, a, b_mat, out, accumulate, dims, pool);
    }
    if let Some(bb) = b_buf {
        pool.give(bb);
    }
}

/// Appends the offsets of every assignment of `labels` (row-major, the last label
/// fastest) in a tensor with these label strides to `out`; returns their range.
fn offsets(
    labels: &[usize],
    st: &[(usize, isize)],
    dims: &[usize],
    out: &mut Vec<usize>,
) -> std::ops::Range<usize> {
    let stride = |l: usize| st.iter().find(|(x, _)| *x == l).expect("label").1 as usize;
    let start = out.len();
    out.push(0usize);
    for &l in labels {
        let (n, s) = (dims[l], stride(l));
        let len = out.len() - start;
        out.resize(start + len * n, 0);
        // Expand in place from the back: entry (o, i) goes to o n + i.
        let v = &mut out[start..];
        for o in (0..len).rev() {
            let base = v[o];
            for i in (0..n).rev() {
                v[o * n + i] = base + i * s;
            }
        }
    }
    start..out.len()
}

thread_local! {
    /// The offset tables of the strided kernel, reused across calls on a thread (taken
    /// out while in use, so a nested call on the same thread allocates its own).
    static GETT_TABLES: std::cell::Cell<Vec<usize>> = const { std::cell::Cell::new(Vec::new()) };
}

/// `out (+)= a · b` in the strided kernel: rows are the free labels of `a` in its storage
/// order, the sum runs over the shared labels in `a`'s order, columns are the free labels
/// of `b` in the order of `out`.
fn contract_gett<T: Scalar>(
    a: Tens<'_, T>,
    b: Tens<'_, T>,
    out: &mut [T],
    out_layout: &[usize],
    accumulate: bool,
    dims: &[usize],
    pool: &Pool<T>,
) {
    let (ma, mb) = (mask_of(a.labels), mask_of(b.labels));
    let k = ma & mb;
    let alpha = sub_in_order(a.labels, ma & !k);
    let sigma = sub_in_order(a.labels, k);
    let beta = sub_in_order(out_layout, mb & !k);
    let (sa, sb, sc) = (
        strides_of(a.labels, dims),
        strides_of(b.labels, dims),
        strides_of(out_layout, dims),
    );
    let mut buf = GETT_TABLES.with(|c| c.take());
    buf.clear();
    let a_row = offsets(&alpha, &sa, dims, &mut buf);
    let a_k = offsets(&sigma, &sa, dims, &mut buf);
    let b_k = offsets(&sigma, &sb, dims, &mut buf);
    let b_col = offsets(&beta, &sb, dims, &mut buf);
    let c_row = offsets(&alpha, &sc, dims, &mut buf);
    let c_col = offsets(&beta, &sc, dims, &mut buf);
    let t = gett::Tables {
        a_row: &buf[a_row],
        a_k: &buf[a_k],
        b_k: &buf[b_k],
        b_col: &buf[b_col],
        c_row: &buf[c_row],
        c_col: &buf[c_col],
    };
    let mut packed = pool.take(gett::packed_len::<T>(t.a_k.len(), t.b_col.len()));
    gett::gett(a.data, b.data, out, &t, accumulate, &mut packed);
    pool.give(packed);
    GETT_TABLES.with(|c| c.set(buf));
}

/// The GEMM of a decision, with `A` permuted (whole or chunk by chunk) if needed.
fn run_gemm<T: Scalar>(
    d: &Decision,
    a: Tens<'_, T>,
    b_mat: ArrayView2<'_, T>,
    c: &mut [T],
    accumulate: bool,
    dims: &[usize],
    pool: &Pool<T>,
) {
    if !d.a_permute {
        let a_mat = mat(a.data, d.m, d.k, d.a_rows_first);
        gemm(
            mat_mut(c, d.m, d.n, d.c_rows_first),
            a_mat,
            b_mat,
            accumulate,
        );
        return;
    }
    if !d.chunked(a.data.len()) {
        let mut buf = pool.take(a.data.len());
        permute_into(a.data, a.labels, &mut buf[..], &d.a_layout, dims, false);
        let a_mat = mat(&buf, d.m, d.k, true);
        gemm(
            mat_mut(c, d.m, d.n, d.c_rows_first),
            a_mat,
            b_mat,
            accumulate,
        );
        pool.give(buf);
        return;
    }
    // Chunked: fix the leading labels of α, permute the slab of A into scratch, GEMM the
    // matching block of rows of C. The effective layout of A is α ++ σ (a_rows_first).
    let n_alpha = d.a_layout.len() - d.n_sigma;
    let alpha = &d.a_layout[..n_alpha];
    let rest_len = |c: usize| size_of(&d.a_layout[c..], dims);
    let mut lead = 1;
    while lead < n_alpha && rest_len(lead) > CHUNK_TARGET_LEN && rest_len(lead + 1) / d.k >= 16 {
        lead += 1;
    }
    let lead_labels = &alpha[..lead];
    let n_chunks = size_of(lead_labels, dims);
    let rows_per_chunk = d.m / n_chunks;
    let chunk_layout = &d.a_layout[lead..];
    let st = strides_of(a.labels, dims);
    let stride = |l: usize| st.iter().find(|(x, _)| *x == l).expect("label").1 as usize;
    let lead_dims: Vec<usize> = lead_labels.iter().map(|&l| dims[l]).collect();
    let lead_strides: Vec<usize> = lead_labels.iter().map(|&l| stride(l)).collect();
    let inner_shape: Vec<usize> = chunk_layout.iter().map(|&l| dims[l]).collect();
    let inner_strides: Vec<usize> = chunk_layout.iter().map(|&l| stride(l)).collect();
    let chunk_len = rows_per_chunk * d.k;
    let mut c_mat = mat_mut(c, d.m, d.n, d.c_rows_first);
    let work = |(ci, mut c_block): (usize, ArrayViewMut2<'_, T>)| {
        let mut base = 0;
        let mut rem = ci;
        for (&n, &s) in lead_dims.iter().zip(&lead_strides).rev() {
            base += (rem % n) * s;
            rem /= n;
        }
        let mut buf = pool.take(chunk_len);
        copy_strided(
            &a.data[base..],
            &inner_shape,
            &inner_strides,
            &mut buf[..],
            false,
            false,
        );
        let a_mat = ArrayView2::from_shape((rows_per_chunk, d.k), &buf[..]).expect("chunk matrix");
        matmul_into(
            c_block.view_mut(),
            a_mat,
            b_mat,
            T::one(),
            accumulate,
            Parallelism::Seq,
        );
        pool.give(buf);
    };
    c_mat
        .axis_chunks_iter_mut(Axis(0), rows_per_chunk)
        .into_par_iter()
        .enumerate()
        .for_each(work);
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Offset of a multi-index (by label) in a row-major tensor with this layout.
    fn offset(layout: &[usize], dims: &[usize], idx: &[usize]) -> usize {
        layout.iter().fold(0, |o, &l| o * dims[l] + idx[l])
    }

    /// Reference contraction: a loop over every assignment of every label.
    fn naive(a: Tens<'_, f64>, b: Tens<'_, f64>, out: &[usize], dims: &[usize]) -> Vec<f64> {
        let mut labels: Vec<usize> = a.labels.to_vec();
        labels.extend(b.labels.iter().filter(|l| !a.labels.contains(l)));
        let mut res = vec![0.0; size_of(out, dims)];
        let mut idx = vec![0usize; dims.len()];
        loop {
            res[offset(out, dims, &idx)] +=
                a.data[offset(a.labels, dims, &idx)] * b.data[offset(b.labels, dims, &idx)];
            let mut i = labels.len();
            loop {
                if i == 0 {
                    return res;
                }
                i -= 1;
                idx[labels[i]] += 1;
                if idx[labels[i]] < dims[labels[i]] {
                    break;
                }
                idx[labels[i]] = 0;
            }
        }
    }

    fn data(n: usize, seed: u64) -> Vec<f64> {
        crate::dense::random_normal::<f64>(&[n], seed)
            .into_raw_vec_and_offset()
            .0
    }

    /// A random pairwise contraction: label sizes, where each label lives (A only, B only,
    /// both), and random storage orders for A, B and the result.
    fn case() -> impl Strategy<Value = (Vec<usize>, Vec<usize>, Vec<usize>, Vec<usize>)> {
        (1usize..=6)
            .prop_flat_map(|n| {
                (
                    proptest::collection::vec(1usize..=4, n),
                    proptest::collection::vec(0u8..3, n),
                    any::<u64>(),
                )
            })
            .prop_map(|(dims, place, seed)| {
                use rand::seq::SliceRandom;
                let mut g = crate::dense::rng(seed);
                let mut a: Vec<usize> = (0..dims.len()).filter(|&l| place[l] != 1).collect();
                let mut b: Vec<usize> = (0..dims.len()).filter(|&l| place[l] != 0).collect();
                let mut c: Vec<usize> = (0..dims.len()).filter(|&l| place[l] != 2).collect();
                a.shuffle(&mut g);
                b.shuffle(&mut g);
                c.shuffle(&mut g);
                (dims, a, b, c)
            })
    }

    proptest! {
        /// `contract` agrees with the reference loop for any labels, sizes and storage
        /// orders, with and without accumulation.
        #[test]
        fn contract_matches_reference((dims, la, lb, lc) in case(), acc in any::<bool>(), seed in any::<u64>()) {
            let (da, db) = (data(size_of(&la, &dims), seed), data(size_of(&lb, &dims), seed ^ 1));
            let a = Tens { labels: &la, data: &da };
            let b = Tens { labels: &lb, data: &db };
            let mut out = data(size_of(&lc, &dims), seed ^ 2);
            let before = out.clone();
            let pool = Pool::new();
            contract(a, b, &mut out, &lc, acc, &dims, &pool);
            let reference = naive(a, b, &lc, &dims);
            for ((o, r), p) in out.iter().zip(&reference).zip(&before) {
                let want = if acc { r + p } else { *r };
                prop_assert!((o - want).abs() <= 1e-12 * (1.0 + want.abs()), "{o} vs {want}");
            }
        }

        /// The strided kernel agrees with the reference loop for any labels, sizes and
        /// storage orders (each operand in either role), with and without accumulation.
        #[test]
        fn gett_contract_matches_reference((dims, la, lb, lc) in case(), acc in any::<bool>(), seed in any::<u64>(), swap in any::<bool>()) {
            let (da, db) = (data(size_of(&la, &dims), seed), data(size_of(&lb, &dims), seed ^ 1));
            let a = Tens { labels: &la, data: &da };
            let b = Tens { labels: &lb, data: &db };
            let mut out = data(size_of(&lc, &dims), seed ^ 2);
            let before = out.clone();
            let (x, y) = if swap { (b, a) } else { (a, b) };
            contract_gett(x, y, &mut out, &lc, acc, &dims, &Pool::new());
            let reference = naive(a, b, &lc, &dims);
            for ((o, r), p) in out.iter().zip(&reference).zip(&before) {
                let want = if acc { r + p } else { *r };
                prop_assert!((o - want).abs() <= 1e-12 * (1.0 + want.abs()), "{o} vs {want}");
            }
        }

        /// The GEMM path (permutations and GEMMs) agrees with the reference loop, also
        /// where [`decide`] would pick the strided kernel.
        #[test]
        fn gemm_contract_matches_reference((dims, la, lb, lc) in case(), acc in any::<bool>(), seed in any::<u64>()) {
            let (da, db) = (data(size_of(&la, &dims), seed), data(size_of(&lb, &dims), seed ^ 1));
            let a = Tens { labels: &la, data: &da };
            let b = Tens { labels: &lb, data: &db };
            let mut out = data(size_of(&lc, &dims), seed ^ 2);
            let before = out.clone();
            let d = decide_gemm(&la, &lb, &lc, &dims);
            contract_as(&d, a, b, &mut out, &lc, acc, &dims, &Pool::new());
            let reference = naive(a, b, &lc, &dims);
            for ((o, r), p) in out.iter().zip(&reference).zip(&before) {
                let want = if acc { r + p } else { *r };
                prop_assert!((o - want).abs() <= 1e-12 * (1.0 + want.abs()), "{o} vs {want}");
            }
        }

        /// `copy_strided` agrees with ndarray's permuted view, for sub-blocks of a tensor.
        #[test]
        fn copy_strided_matches_ndarray(shape in proptest::collection::vec(1usize..=5, 1..=5), seed in any::<u64>(), acc in any::<bool>()) {
            use rand::seq::SliceRandom;
            let mut g = crate::dense::rng(seed);
            let mut perm: Vec<usize> = (0..shape.len()).collect();
            perm.shuffle(&mut g);
            let n: usize = shape.iter().product();
            let src = data(n + 7, seed);
            let base = (seed % 8) as usize;
            let x = ndarray::ArrayView::from_shape(ndarray::IxDyn(&shape), &src[base..base + n]).unwrap();
            let p = x.permuted_axes(perm.clone());
            let strides: Vec<usize> = p.strides().iter().map(|&s| s as usize).collect();
            let mut dst = data(n, seed ^ 3);
            let before = dst.clone();
            copy_strided(&src[base..], p.shape(), &strides, &mut dst, acc, seed % 2 == 0);
            for ((d, &want), b) in dst.iter().zip(p.iter()).zip(&before) {
                let want = if acc { want + b } else { want };
                prop_assert!((d - want).abs() <= 1e-14 * (1.0 + want.abs()));
            }
        }
    }

    /// The chunked path (a large first operand permuted slab by slab), the parallel GEMM
    /// splits (rows, columns, inner dimension) and a large permuted result agree with the
    /// reference.
    #[test]
    fn large_paths_match_reference() {
        let pool = Pool::new();
        // (dims, A labels, B labels, result labels)
        type Case = (Vec<usize>, Vec<usize>, Vec<usize>, Vec<usize>);
        let cases: Vec<Case> = vec![
            // A = [p0, k0, p1, k1] must be permuted, m = 1280 rows: chunked.
            (
                vec![32, 40, 20, 3, 5],
                vec![0, 2, 1, 3],
                vec![3, 4, 2],
                vec![0, 1, 4],
            ),
            // Zero-copy, 2 x 2000 x 100 x 30 flops: split over rows.
            (vec![2000, 100, 30], vec![0, 1], vec![1, 2], vec![0, 2]),
            // Wide result: split over columns.
            (vec![30, 100, 2000], vec![0, 1], vec![1, 2], vec![0, 2]),
            // Small result, long inner dimension: split over the inner dimension.
            (vec![8, 100_000, 8], vec![0, 1], vec![1, 2], vec![0, 2]),
            // Result in an order no GEMM writes (permuted afterwards), large.
            (
                vec![40, 30, 6, 50],
                vec![0, 2, 1],
                vec![2, 3],
                vec![1, 3, 0],
            ),
        ];
        for (dims, la, lb, lc) in cases {
            let (da, db) = (data(size_of(&la, &dims), 1), data(size_of(&lb, &dims), 2));
            let a = Tens {
                labels: &la,
                data: &da,
            };
            let b = Tens {
                labels: &lb,
                data: &db,
            };
            let mut out = vec![0.0; size_of(&lc, &dims)];
            contract(a, b, &mut out, &lc, false, &dims, &pool);
            let reference = naive(a, b, &lc, &dims);
            let err = out
                .iter()
                .zip(&reference)
                .map(|(x, y)| (x - y).abs())
                .fold(0.0, f64::max);
            assert!(err < 1e-9, "{dims:?} {la:?} {lb:?} {lc:?}: {err}");
        }
    }
}
