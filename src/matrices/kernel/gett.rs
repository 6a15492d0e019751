//! A tensor-contraction kernel that reads and writes the tensors where they lie (GETT:
//! GEMM-like tensor-tensor contraction, after Springer & Bientinesi, *Design of a
//! high-performance GEMM-like tensor-tensor multiplication*, ACM TOMS 2018, and the
//! scatter vectors of TBLIS, Matthews 2018).
//!
//! `C[c_row[r] + c_col[c]] (+)= Σ_k A[a_row[r] + a_k[k]] · B[b_k[k] + b_col[c]]`: the
//! offset tables come from the operands' strides, so any storage order of `A`, `B` and
//! `C` is handled without a permutation. `B` (the small operand) is packed once into
//! panels of `K x NR` entries; `A` (the large operand) is not packed: the microkernel
//! broadcasts its entries straight from memory (`MR` row pointers, one offset per `k`)
//! into `MR x NR` accumulators held in vector registers, one fused multiply-add per entry
//! of `A` and vector of `NR` columns. This fits the contractions of a tensorized matrix
//! with a batch: `n = |β|` (a rank times an output mode, 16..64) and `k` small, `m` large,
//! where a packed GEMM spends most of its time packing and a permutation of `A` costs
//! more than the flops.
//!
//! The microkernel is written once, generically, and compiled for AVX-512, AVX2+FMA and
//! a portable fallback (selected at run time on x86-64). The environment variable
//! `TNET_ISA=avx2` (or `portable`), read once per process, caps the selection, so the
//! AVX2 path can be measured on an AVX-512 machine (faer's own kernels, used for the
//! dense products, keep their own dispatch).

use rayon::prelude::*;

use num_traits::Zero;

use crate::Scalar;

/// Offset tables of one contraction (entries, not bytes).
pub(crate) struct Tables<'a> {
    pub a_row: &'a [usize],
    pub a_k: &'a [usize],
    pub b_k: &'a [usize],
    pub b_col: &'a [usize],
    pub c_row: &'a [usize],
    pub c_col: &'a [usize],
}

/// Rows per parallel task (a multiple of every `MR`).
const PAR_ROWS: usize = 240;
/// Contractions below this many flops run on one thread.
const PAR_FLOPS: f64 = 4.0e6;

/// A raw pointer to the output, shared by the row tasks (which write disjoint entries).
#[derive(Clone, Copy)]
struct OutPtr<T>(*mut T);
// SAFETY: the tasks that share an `OutPtr` write disjoint entries (distinct rows of a
// contraction whose output offsets are injective), so sending it between threads is sound.
unsafe impl<T: Send> Send for OutPtr<T> {}
unsafe impl<T: Send> Sync for OutPtr<T> {}

impl<T> OutPtr<T> {
    // A method (not a field access) so that closures capture the whole `OutPtr`.
    fn get(self) -> *mut T {
        self.0
    }
}

/// Which compiled variant runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Isa {
    #[cfg(all(target_arch = "x86_64", tnet_avx512))]
    Avx512,
    #[cfg(target_arch = "x86_64")]
    Avx2,
    Portable,
}

fn isa() -> Isa {
    static ISA: std::sync::OnceLock<Isa> = std::sync::OnceLock::new();
    *ISA.get_or_init(|| {
        let cap = std::env::var("TNET_ISA").unwrap_or_default();
        detected_isa(&cap.to_ascii_lowercase())
    })
}

/// The best variant the CPU runs, at most `cap` (`"avx2"`, `"portable"`; anything else:
/// no cap).
fn detected_isa(cap: &str) -> Isa {
    #[cfg(target_arch = "x86_64")]
    {
        #[cfg(tnet_avx512)]
        if cap != "avx2" && cap != "portable" && is_x86_feature_detected!("avx512f") {
            return Isa::Avx512;
        }
        if cap != "portable" && is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma")
        {
            return Isa::Avx2;
        }
    }
    let _ = cap;
    Isa::Portable
}

/// The name of the kernel variant this process uses (`"avx512"`, `"avx2"`, `"portable"`),
/// for benchmark reports.
pub(crate) fn isa_name() -> &'static str {
    match isa() {
        #[cfg(all(target_arch = "x86_64", tnet_avx512))]
        Isa::Avx512 => "avx512",
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 => "avx2",
        Isa::Portable => "portable",
    }
}

/// A vector of `LANES` scalars.
trait Simd: Copy {
    type E: Scalar;
    const LANES: usize;
    /// # Safety
    /// The CPU supports the vector's instruction set.
    unsafe fn zero() -> Self;
    /// # Safety
    /// As [`zero`](Self::zero).
    unsafe fn splat(x: Self::E) -> Self;
    /// # Safety
    /// As [`zero`](Self::zero); `p` points to `LANES` readable entries.
    unsafe fn load(p: *const Self::E) -> Self;
    /// # Safety
    /// As [`zero`](Self::zero); `p` points to `LANES` writable entries.
    unsafe fn store(self, p: *mut Self::E);
    /// `self * b + c`.
    /// # Safety
    /// As [`zero`](Self::zero).
    unsafe fn fma(self, b: Self, c: Self) -> Self;
    /// # Safety
    /// As [`zero`](Self::zero).
    unsafe fn add(self, b: Self) -> Self;
}

/// The portable vector: four scalars (the compiler vectorises what it can).
#[derive(Clone, Copy)]
struct Portable<T>([T; 4]);

impl<T: Scalar> Simd for Portable<T> {
    type E = T;
    const LANES: usize = 4;
    #[inline(always)]
    unsafe fn zero() -> Self {
        Self([T::zero(); 4])
    }
    #[inline(always)]
    unsafe fn splat(x: T) -> Self {
        Self([x; 4])
    }
    #[inline(always)]
    unsafe fn load(p: *const T) -> Self {
        // SAFETY: `p` points to 4 readable entries (caller).
        Self(unsafe { std::ptr::read_unaligned(p as *const [T; 4]) })
    }
    #[inline(always)]
    unsafe fn store(self, p: *mut T) {
        // SAFETY: `p` points to 4 writable entries (caller).
        unsafe { std::ptr::write_unaligned(p as *mut [T; 4], self.0) }
    }
    #[inline(always)]
    unsafe fn fma(self, b: Self, c: Self) -> Self {
        Self(std::array::from_fn(|i| self.0[i] * b.0[i] + c.0[i]))
    }
    #[inline(always)]
    unsafe fn add(self, b: Self) -> Self {
        Self(std::array::from_fn(|i| self.0[i] + b.0[i]))
    }
}

// The AVX-512 intrinsics are stable since Rust 1.89: compiled only then (see build.rs).
#[cfg(target_arch = "x86_64")]
#[allow(clippy::incompatible_msrv)]
mod x86 {
    use super::Simd;
    use std::arch::x86_64::*;

    macro_rules! simd {
        ($name:ident, $reg:ty, $e:ty, $lanes:literal, $feat:literal,
         $zero:ident, $set1:ident, $load:ident, $store:ident, $fmadd:ident, $add:ident) => {
            #[derive(Clone, Copy)]
            pub(super) struct $name($reg);

            impl Simd for $name {
                type E = $e;
                const LANES: usize = $lanes;
                #[inline]
                #[target_feature(enable = $feat)]
                unsafe fn zero() -> Self {
                    Self($zero())
                }
                #[inline]
                #[target_feature(enable = $feat)]
                unsafe fn splat(x: $e) -> Self {
                    Self($set1(x))
                }
                #[inline]
                #[target_feature(enable = $feat)]
                unsafe fn load(p: *const $e) -> Self {
                    // SAFETY: `p` points to LANES readable entries (caller).
                    Self(unsafe { $load(p) })
                }
                #[inline]
                #[target_feature(enable = $feat)]
                unsafe fn store(self, p: *mut $e) {
                    // SAFETY: `p` points to LANES writable entries (caller).
                    unsafe { $store(p, self.0) }
                }
                #[inline]
                #[target_feature(enable = $feat)]
                unsafe fn fma(self, b: Self, c: Self) -> Self {
                    Self($fmadd(self.0, b.0, c.0))
                }
                #[inline]
                #[target_feature(enable = $feat)]
                unsafe fn add(self, b: Self) -> Self {
                    Self($add(self.0, b.0))
                }
            }
        };
    }

    #[cfg(tnet_avx512)]
    simd!(
        F32x16,
        __m512,
        f32,
        16,
        "avx512f",
        _mm512_setzero_ps,
        _mm512_set1_ps,
        _mm512_loadu_ps,
        _mm512_storeu_ps,
        _mm512_fmadd_ps,
        _mm512_add_ps
    );
    #[cfg(tnet_avx512)]
    simd!(
        F64x8,
        __m512d,
        f64,
        8,
        "avx512f",
        _mm512_setzero_pd,
        _mm512_set1_pd,
        _mm512_loadu_pd,
        _mm512_storeu_pd,
        _mm512_fmadd_pd,
        _mm512_add_pd
    );
    simd!(
        F32x8,
        __m256,
        f32,
        8,
        "avx2,fma",
        _mm256_setzero_ps,
        _mm256_set1_ps,
        _mm256_loadu_ps,
        _mm256_storeu_ps,
        _mm256_fmadd_ps,
        _mm256_add_ps
    );
    simd!(
        F64x4,
        __m256d,
        f64,
        4,
        "avx2,fma",
        _mm256_setzero_pd,
        _mm256_set1_pd,
        _mm256_loadu_pd,
        _mm256_storeu_pd,
        _mm256_fmadd_pd,
        _mm256_add_pd
    );
}

/// Reinterprets a slice of `T` as a slice of `U` when they are the same type.
fn same<T: 'static, U: 'static>(x: &[T]) -> Option<&[U]> {
    (std::any::TypeId::of::<T>() == std::any::TypeId::of::<U>())
        // SAFETY: `T` and `U` are the same type.
        .then(|| unsafe { std::slice::from_raw_parts(x.as_ptr() as *const U, x.len()) })
}

fn same_mut<T: 'static, U: 'static>(x: &mut [T]) -> Option<&mut [U]> {
    (std::any::TypeId::of::<T>() == std::any::TypeId::of::<U>())
        // SAFETY: `T` and `U` are the same type.
        .then(|| unsafe { std::slice::from_raw_parts_mut(x.as_mut_ptr() as *mut U, x.len()) })
}

/// `C (+)= A · B` through the offset tables (see the [module docs](self)).
///
/// # Panics
/// If an offset table addresses an entry outside its buffer or the tables' lengths
/// disagree (internal invariants of the caller).
///
/// `packed` is scratch space of at least [`packed_len`] entries.
pub(crate) fn gett<T: Scalar>(
    a: &[T],
    b: &[T],
    c: &mut [T],
    t: &Tables<'_>,
    accumulate: bool,
    packed: &mut [T],
) {
    gett_on(isa(), a, b, c, t, accumulate, packed);
}

/// Entries of scratch space [`gett`] needs for `k` contracted values and `n` columns (the
/// packed small operand, padded to whole panels of the widest variant).
pub(crate) fn packed_len<T>(k: usize, n: usize) -> usize {
    let nr = 128 / std::mem::size_of::<T>().max(1);
    k * n.div_ceil(nr) * nr
}

/// [`gett`] on a given instruction set (which the CPU must support).
fn gett_on<T: Scalar>(
    isa: Isa,
    a: &[T],
    b: &[T],
    c: &mut [T],
    t: &Tables<'_>,
    accumulate: bool,
    packed: &mut [T],
) {
    let (m, n, k) = (t.a_row.len(), t.b_col.len(), t.a_k.len());
    assert!(
        packed.len() >= packed_len::<T>(k, n),
        "gett: scratch length"
    );
    assert!(
        t.c_row.len() == m && t.c_col.len() == n && t.b_k.len() == k,
        "gett: table lengths"
    );
    if m == 0 || n == 0 {
        return;
    }
    let max = |v: &[usize]| v.iter().copied().max().unwrap_or(0);
    // The bounds checks that make every unchecked access below sound.
    assert!(
        k == 0 || max(t.a_row) + max(t.a_k) < a.len(),
        "gett: A offsets"
    );
    assert!(
        k == 0 || max(t.b_k) + max(t.b_col) < b.len(),
        "gett: B offsets"
    );
    assert!(max(t.c_row) + max(t.c_col) < c.len(), "gett: C offsets");
    if k == 0 {
        if !accumulate {
            for &r in t.c_row {
                for &cc in t.c_col {
                    c[r + cc] = T::zero();
                }
            }
        }
        return;
    }
    #[cfg(target_arch = "x86_64")]
    {
        use x86::*;
        // One dispatch per precision: `$wide` lanes of AVX-512 (two vectors per row when
        // `n` exceeds one), `$narrow` of AVX2.
        macro_rules! dispatch {
            ($s:ty, $wide:ty, $narrow:ty, $lanes:expr) => {
                if let (Some(a), Some(b), Some(c)) =
                    (same::<T, $s>(a), same::<T, $s>(b), same_mut::<T, $s>(c))
                {
                    let packed = same_mut(packed).expect("same type");
                    match isa {
                        #[cfg(tnet_avx512)]
                        Isa::Avx512 if n > $lanes => {
                            return run::<$wide, 8, 2>(isa, a, b, c, t, accumulate, packed);
                        }
                        #[cfg(tnet_avx512)]
                        Isa::Avx512 => {
                            return run::<$wide, 8, 1>(isa, a, b, c, t, accumulate, packed);
                        }
                        Isa::Avx2 => {
                            return run::<$narrow, 6, 2>(isa, a, b, c, t, accumulate, packed);
                        }
                        Isa::Portable => {}
                    }
                }
            };
        }
        dispatch!(f32, F32x16, F32x8, 16);
        dispatch!(f64, F64x8, F64x4, 8);
    }
    run::<Portable<T>, 4, 2>(Isa::Portable, a, b, c, t, accumulate, packed);
}

fn run<V: Simd, const MR: usize, const NV: usize>(
    isa: Isa,
    a: &[V::E],
    b: &[V::E],
    c: &mut [V::E],
    t: &Tables<'_>,
    accumulate: bool,
    packed: &mut [V::E],
) {
    let (m, n, k) = (t.a_row.len(), t.b_col.len(), t.a_k.len());
    let nr = NV * V::LANES;
    let n_panels = n.div_ceil(nr);
    // Pack B: panel p holds columns [p nr, (p + 1) nr) as k rows of nr entries, zero-padded.
    let packed = &mut packed[..n_panels * k * nr];
    packed.fill(V::E::zero());
    for (p, panel) in packed.chunks_exact_mut(k * nr).enumerate() {
        for (row, &bk) in panel.chunks_exact_mut(nr).zip(t.b_k) {
            for (x, &bc) in row.iter_mut().zip(&t.b_col[p * nr..]) {
                *x = b[bk + bc];
            }
        }
    }
    // C's columns contiguous: vector stores.
    let c_contig = t.c_col.windows(2).all(|w| w[1] == w[0] + 1);
    let out = OutPtr(c.as_mut_ptr());
    let rows = |r0: usize, r1: usize| {
        let args = Args {
            a: a.as_ptr(),
            packed: &*packed,
            c: out.get(),
            t,
            c_contig,
            accumulate,
        };
        // SAFETY: the offsets were checked against the buffers' lengths in `gett`; rows
        // [r0, r1) write only their own output entries; the variant matches the CPU.
        unsafe {
            match isa {
                #[cfg(all(target_arch = "x86_64", tnet_avx512))]
                Isa::Avx512 => rows_avx512::<V, MR, NV>(&args, r0, r1),
                #[cfg(target_arch = "x86_64")]
                Isa::Avx2 => rows_avx2::<V, MR, NV>(&args, r0, r1),
                Isa::Portable => rows_body::<V, MR, NV>(&args, r0, r1),
            }
        }
    };
    let flops = 2.0 * m as f64 * n as f64 * k as f64;
    if flops >= PAR_FLOPS && rayon::current_num_threads() > 1 && m > PAR_ROWS {
        let tasks = m.div_ceil(PAR_ROWS);
        (0..tasks)
            .into_par_iter()
            .with_min_len(tasks.div_ceil(4 * rayon::current_num_threads()).max(1))
            .for_each(|i| rows(i * PAR_ROWS, ((i + 1) * PAR_ROWS).min(m)));
    } else {
        rows(0, m);
    }
}

/// The arguments of a row task.
struct Args<'a, E> {
    a: *const E,
    packed: &'a [E],
    c: *mut E,
    t: &'a Tables<'a>,
    c_contig: bool,
    accumulate: bool,
}

#[cfg(all(target_arch = "x86_64", tnet_avx512))]
#[allow(clippy::incompatible_msrv)]
#[target_feature(enable = "avx512f,avx2,fma")]
unsafe fn rows_avx512<V: Simd, const MR: usize, const NV: usize>(
    args: &Args<'_, V::E>,
    r0: usize,
    r1: usize,
) {
    // SAFETY: forwarded from the caller.
    unsafe { rows_body::<V, MR, NV>(args, r0, r1) }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn rows_avx2<V: Simd, const MR: usize, const NV: usize>(
    args: &Args<'_, V::E>,
    r0: usize,
    r1: usize,
) {
    // SAFETY: forwarded from the caller.
    unsafe { rows_body::<V, MR, NV>(args, r0, r1) }
}

/// Rows `[r0, r1)` of the output, in blocks of `MR` rows and panels of `NV` vectors.
///
/// # Safety
/// Every `a_row[r] + a_k[k]` is an index of `A`, every `c_row[r] + c_col[j]` of `C`, the
/// packed panels hold `k x NV LANES` entries each, no other thread writes rows
/// `[r0, r1)`, and the CPU supports `V`.
#[inline(always)]
unsafe fn rows_body<V: Simd, const MR: usize, const NV: usize>(
    args: &Args<'_, V::E>,
    r0: usize,
    r1: usize,
) {
    let t = args.t;
    let k = t.a_k.len();
    let n = t.b_col.len();
    let nr = NV * V::LANES;
    let mut r = r0;
    while r < r1 {
        let mr = MR.min(r1 - r);
        let mut ptrs = [args.a; MR];
        for (i, p) in ptrs.iter_mut().enumerate() {
            // Rows past the end repeat the last one (computed, not stored).
            // SAFETY: a_row[r + i] (or the last valid row) is an offset into `A`.
            *p = unsafe { args.a.add(*t.a_row.get_unchecked(r + i.min(mr - 1))) };
        }
        for (p, panel) in args.packed.chunks_exact(k * nr).enumerate() {
            // SAFETY: as documented on the function.
            let acc = unsafe { micro::<V, MR, NV>(&ptrs, t.a_k, panel.as_ptr()) };
            let j0 = p * nr;
            let w = nr.min(n - j0);
            for (i, row) in acc.iter().enumerate().take(mr) {
                // SAFETY: the offsets of rows [r, r + mr) and columns [j0, j0 + w) are
                // indices of `C` written by this task only.
                unsafe {
                    let base = args.c.add(*t.c_row.get_unchecked(r + i));
                    if args.c_contig && w == nr {
                        let dst = base.add(*t.c_col.get_unchecked(j0));
                        for (v, x) in row.iter().enumerate() {
                            let d = dst.add(v * V::LANES);
                            let x = if args.accumulate {
                                x.add(V::load(d))
                            } else {
                                *x
                            };
                            x.store(d);
                        }
                    } else {
                        let mut tmp = [V::E::zero(); 64];
                        for (v, x) in row.iter().enumerate() {
                            x.store(tmp.as_mut_ptr().add(v * V::LANES));
                        }
                        for (j, &s) in tmp.iter().enumerate().take(w) {
                            let d = &mut *base.add(*t.c_col.get_unchecked(j0 + j));
                            if args.accumulate {
                                *d += s;
                            } else {
                                *d = s;
                            }
                        }
                    }
                }
            }
        }
        r += mr;
    }
}

/// `Σ_k A[ptrs[i] + a_k[k]] · panel[k]` for the `MR` rows, as `MR x NV` vectors.
///
/// # Safety
/// Every `ptrs[i] + a_k[k]` points into `A`; `panel` holds `a_k.len() x NV LANES`
/// entries; the CPU supports `V`.
#[inline(always)]
unsafe fn micro<V: Simd, const MR: usize, const NV: usize>(
    ptrs: &[*const V::E; MR],
    a_k: &[usize],
    panel: *const V::E,
) -> [[V; NV]; MR] {
    // SAFETY: as documented on the function.
    unsafe {
        let mut c = [[V::zero(); NV]; MR];
        let mut bp = panel;
        for &o in a_k {
            let mut b = [V::zero(); NV];
            for (v, x) in b.iter_mut().enumerate() {
                *x = V::load(bp.add(v * V::LANES));
            }
            bp = bp.add(NV * V::LANES);
            for i in 0..MR {
                let av = V::splat(*ptrs[i].add(o));
                for v in 0..NV {
                    c[i][v] = av.fma(b[v], c[i][v]);
                }
            }
        }
        c
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every instruction set this CPU runs.
    fn isas() -> Vec<Isa> {
        let mut v = vec![Isa::Portable];
        #[cfg(target_arch = "x86_64")]
        {
            if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
                v.push(Isa::Avx2);
            }
            #[cfg(tnet_avx512)]
            if is_x86_feature_detected!("avx512f") {
                v.push(Isa::Avx512);
            }
        }
        v
    }

    /// Offsets `o0 + i * s` for `i < n`, shuffled by a fixed odd stride when `scatter`.
    fn table(n: usize, s: usize, o0: usize, scatter: bool) -> Vec<usize> {
        (0..n)
            .map(|i| o0 + if scatter { (i * 7) % n } else { i } * s)
            .collect()
    }

    /// The kernel agrees with a plain triple loop in f32 and f64, on every instruction
    /// set of this CPU, for sizes that are not multiples of the register tiles (rows,
    /// vector lanes), contiguous and scattered output columns, strided operands, with and
    /// without accumulation, one thread and several.
    #[test]
    fn gett_matches_triple_loop() {
        fn check<T: Scalar>(isa: Isa, m: usize, n: usize, k: usize, scatter: bool, acc: bool) {
            // A: m x k with row stride k + 3 (rows permuted when scattering), k stride 1.
            let a_row = table(m, k + 3, 1, scatter);
            let a_k = table(k, 1, 0, false);
            // B: k x n stored column-major with padding.
            let b_k = table(k, 1, 0, scatter);
            let b_col = table(n, k + 1, 0, false);
            // C: m x n row-major (contiguous columns) or column-major (scattered).
            let (c_row, c_col) = if scatter {
                (table(m, 1, 0, false), table(n, m, 0, false))
            } else {
                (table(m, n, 0, false), table(n, 1, 0, false))
            };
            let fill = |len: usize, seed: u64| -> Vec<T> {
                crate::dense::random_normal::<T>(&[len], seed)
                    .into_raw_vec_and_offset()
                    .0
            };
            let a = fill(m * (k + 3) + 1, 1);
            let b = fill(n * (k + 1), 2);
            let c0 = fill(m * n, 3);
            let mut c = c0.clone();
            let t = Tables {
                a_row: &a_row,
                a_k: &a_k,
                b_k: &b_k,
                b_col: &b_col,
                c_row: &c_row,
                c_col: &c_col,
            };
            let mut packed = vec![T::zero(); packed_len::<T>(k, n)];
            gett_on(isa, &a, &b, &mut c, &t, acc, &mut packed);
            let mut err = 0.0f64;
            for r in 0..m {
                for j in 0..n {
                    let mut want: f64 = (0..k)
                        .map(|x| a[a_row[r] + a_k[x]].as_f64() * b[b_k[x] + b_col[j]].as_f64())
                        .sum();
                    if acc {
                        want += c0[c_row[r] + c_col[j]].as_f64();
                    }
                    let got = c[c_row[r] + c_col[j]].as_f64();
                    err = err.max((got - want).abs() / (1.0 + want.abs()));
                }
            }
            let tol = 1e3 * T::epsilon().as_f64() * (k as f64).sqrt();
            assert!(
                err <= tol,
                "{} {isa:?} m{m} n{n} k{k} scatter {scatter} acc {acc}: {err}",
                T::NAME
            );
        }
        for isa in isas() {
            for &(m, n, k) in &[
                (1, 1, 1),
                (7, 5, 3),
                (13, 17, 18),
                (29, 33, 80),
                (3, 40, 1),
                (65, 16, 9),
            ] {
                for scatter in [false, true] {
                    for acc in [false, true] {
                        check::<f32>(isa, m, n, k, scatter, acc);
                        check::<f64>(isa, m, n, k, scatter, acc);
                    }
                }
            }
            // Large enough to split over the threads.
            check::<f32>(isa, 2000, 24, 60, false, false);
            check::<f64>(isa, 1001, 16, 70, true, true);
        }
    }
}
