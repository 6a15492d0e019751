//! HT benches: HT-SVD against the floor of its unavoidable work, peak memory, and the
//! cost of rounding and arithmetic against rank.
//!
//! Run: `cargo bench --bench ht`. Figures are reported as ratios against a baseline
//! measured in the same run (the machines are shared and noisy).
//!
//! - `ht_svd/<n>^<d>/{rel1e-2,rank8}`: HT-SVD (leaves to root) of a tensor with HT rank 8
//!   plus 1e-3 relative noise.
//! - `ht_svd/<n>^<d>/floor`: the work no HT-SVD can avoid: one pass of GEMM-class work per
//!   leaf unfolding, `X_(k) X_(k)^T` for every mode `k`, computed slab by slab on views of
//!   the tensor (no copies).
//! - `ht_round/r<k>` and `ht_arith/{inner,add,hadamard}/r<k>`: time against rank on a
//!   `16^8` HT tensor on the balanced tree.
//!
//! The peak heap use of one HT-SVD call is printed as a multiple of the input size (a
//! counting allocator wraps the system one).

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::sync::atomic::{AtomicUsize, Ordering};

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use ndarray::{ArrayD, ArrayView2, ArrayViewMut2};
use tnet::linalg::{Parallelism, matmul_into};
use tnet::{DimTree, HtTensor, Truncation};

struct Counting;
static CURRENT: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let now = CURRENT.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
        PEAK.fetch_max(now, Ordering::Relaxed);
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        CURRENT.fetch_sub(layout.size(), Ordering::Relaxed);
        // SAFETY: `ptr` was allocated by `alloc` above with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// HT rank-8 tensor plus 1e-3 relative Gaussian noise.
fn test_tensor(n: usize, d: usize) -> ArrayD<f64> {
    common::ht_rank8_plus_noise(n, d)
}

/// `sum_k X_(k) X_(k)^T`: one GEMM pass per leaf unfolding, on views (no copies).
fn floor(x: &ArrayD<f64>) -> f64 {
    let shape = x.shape().to_vec();
    let data = x.as_slice().unwrap();
    let mut acc = 0.0;
    for k in 0..shape.len() {
        let left: usize = shape[..k].iter().product();
        let nk = shape[k];
        let right: usize = shape[k + 1..].iter().product();
        let mut g = ndarray::Array2::<f64>::zeros((nk, nk));
        for p in 0..left {
            let slab =
                ArrayView2::from_shape((nk, right), &data[p * nk * right..(p + 1) * nk * right])
                    .unwrap();
            let gv: ArrayViewMut2<f64> = g.view_mut();
            matmul_into(gv, slab, slab.t(), 1.0, true, Parallelism::Seq);
        }
        acc += g[[0, 0]];
    }
    acc
}

fn bench_ht_svd(c: &mut Criterion) {
    let mut group = c.benchmark_group("ht_svd");
    group.sample_size(10);
    for d in [6usize, 7, 8] {
        let n = 8;
        let x = test_tensor(n, d);
        let tree = DimTree::balanced(d).unwrap();
        let input_bytes = x.len() * 8;
        for (name, rule) in [
            ("rel1e-2", Truncation::rel(1e-2)),
            ("rank8", Truncation::rank(8)),
        ] {
            let before = CURRENT.load(Ordering::Relaxed);
            PEAK.store(before, Ordering::Relaxed);
            let (ht, info) = HtTensor::from_dense(x.view(), &tree, &rule).unwrap();
            let peak = PEAK.load(Ordering::Relaxed) - before;
            eprintln!(
                "ht_svd {n}^{d} {name}: ranks {:?}, rel error bound {:.2e}, peak extra heap {:.2}x input (total {:.2}x)",
                ht.ranks(),
                info.rel_error_bound(),
                peak as f64 / input_bytes as f64,
                (peak + input_bytes) as f64 / input_bytes as f64
            );
            group.bench_with_input(BenchmarkId::new(format!("{n}^{d}"), name), &x, |b, x| {
                b.iter(|| HtTensor::from_dense(black_box(x.view()), &tree, &rule).unwrap())
            });
        }
        group.bench_with_input(BenchmarkId::new(format!("{n}^{d}"), "floor"), &x, |b, x| {
            b.iter(|| floor(black_box(x)))
        });
    }
    group.finish();
}

fn bench_rank_scaling(c: &mut Criterion) {
    let d = 8;
    let tree = DimTree::balanced(d).unwrap();
    let shape = vec![16; d];
    let mut round = c.benchmark_group("ht_round");
    round.sample_size(10);
    for r in [4usize, 8, 16, 32] {
        let x = HtTensor::<f64>::random(&tree, &shape, r, 3).unwrap();
        let y = HtTensor::<f64>::random(&tree, &shape, r, 4).unwrap();
        let s = x.add(&y).unwrap();
        round.bench_with_input(BenchmarkId::new("sum_to_rank", r), &s, |b, s| {
            b.iter(|| s.truncate(&Truncation::rank(r)).unwrap())
        });
    }
    round.finish();
    let mut arith = c.benchmark_group("ht_arith");
    arith.sample_size(10);
    for r in [4usize, 8, 16, 32] {
        let x = HtTensor::<f64>::random(&tree, &shape, r, 3).unwrap();
        let y = HtTensor::<f64>::random(&tree, &shape, r, 4).unwrap();
        arith.bench_with_input(BenchmarkId::new("inner", r), &r, |b, _| {
            b.iter(|| x.inner(&y).unwrap())
        });
        arith.bench_with_input(BenchmarkId::new("add", r), &r, |b, _| {
            b.iter(|| x.add(&y).unwrap())
        });
        arith.bench_with_input(BenchmarkId::new("norm", r), &r, |b, _| {
            b.iter(|| tnet::Factorized::norm(&x))
        });
        if r <= 8 {
            arith.bench_with_input(BenchmarkId::new("hadamard", r), &r, |b, _| {
                b.iter(|| x.hadamard(&y).unwrap())
            });
        }
    }
    arith.finish();
}

criterion_group!(benches, bench_ht_svd, bench_rank_scaling);
criterion_main!(benches);
