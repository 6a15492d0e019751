//! One training step (forward and backward through time, then an Adam update) of the LSTM
//! classifiers at the UCF11 shape: batch 16, 6 frames, `N = 57,600`, `H = 256`, 11
//! classes, f32. Compares FDHT-LSTM (one HT map on `[x ; h]` padded to 58,080 =
//! 11x12x20x22, split layout at ranks 6 and 12, the paired layout at rank 6 (with
//! 2,820 weights + 1,024 biases) and the Kronecker-split layout at rank 6; the input
//! modes in increasing order, so the contraction with the input starts on the largest
//! mode, 1.7x cheaper than 22x20x12x11) and the published baselines (HT-, TT-, TR- and
//! BT-LSTM: input modes 8x20x20x18, rank 4, dense recurrent map) with the dense LSTM
//! (59,244,544 weights) in the same run.
//!
//! After the criterion groups, a summary table gives per model: parameters, weight
//! memory, median step time, CPU time, speed-up against the dense step, and the peak heap
//! memory the step allocates on top of the model and optimiser state (measured with a
//! counting allocator).
//!
//! `cargo bench --bench lstm` (add `-- --quick` for a short run).

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use criterion::Criterion;
use ndarray::{Array3, Ix3};
use tnet::models::zoo::{self, HtLayout, ModelKind, ModelSpec};
use tnet::models::{Lstm, LstmConfig};
use tnet::train::{Optimizer, OptimizerConfig};

type F = f32;
const BATCH: usize = 16;
const FRAMES: usize = 6;

/// The system allocator, counting the bytes in use and their peak.
struct Counting;

static IN_USE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every call is forwarded to `System` unchanged; the counters are only statistics.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's contract is passed on to `System`.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            let now = IN_USE.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
            PEAK.fetch_max(now, Ordering::Relaxed);
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as `alloc`.
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            let now = IN_USE.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
            PEAK.fetch_max(now, Ordering::Relaxed);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` was allocated by `System` with `layout`.
        unsafe { System.dealloc(ptr, layout) };
        IN_USE.fetch_sub(layout.size(), Ordering::Relaxed);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: as `dealloc` and `alloc`.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            IN_USE.fetch_sub(layout.size(), Ordering::Relaxed);
            let now = IN_USE.fetch_add(new_size, Ordering::Relaxed) + new_size;
            PEAK.fetch_max(now, Ordering::Relaxed);
        }
        p
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// A model with its Adam state.
struct Run {
    name: &'static str,
    model: Lstm<F>,
    opt: Optimizer<F>,
}

impl Run {
    /// One training step: loss and gradients through time, then the Adam update.
    fn step(&mut self, x: &Array3<F>, labels: &[usize]) {
        let mut out = self
            .model
            .loss_and_grad(black_box(x.view()), labels, None)
            .unwrap();
        self.opt
            .step(self.model.params_mut(), &mut out.grads, 1_000)
            .unwrap();
        black_box(out.loss);
    }
}

fn runs() -> Vec<Run> {
    let config = LstmConfig::new(57_600, 256);
    let out = vec![16, 4, 4, 4];
    let input = vec![8, 20, 20, 18];
    let specs = [
        (
            "fdht-r6",
            ModelSpec::new(ModelKind::FDHT, 6).with_modes(out.clone(), vec![11, 12, 20, 22]),
        ),
        (
            "fdht-r12",
            ModelSpec::new(ModelKind::FDHT, 12).with_modes(out.clone(), vec![11, 12, 20, 22]),
        ),
        (
            "fdht-r6-paired",
            ModelSpec::new(ModelKind::FDHT, 6)
                .with_modes(out.clone(), vec![11, 12, 20, 22])
                .with_ht_layout(HtLayout::Paired),
        ),
        (
            "fdht-r6-kronecker",
            ModelSpec::new(ModelKind::FDHT, 6)
                .with_modes(out.clone(), vec![11, 12, 20, 22])
                .with_ht_layout(HtLayout::Kronecker),
        ),
        (
            "ht-r4",
            ModelSpec::new(ModelKind::HT, 4).with_modes(out.clone(), input.clone()),
        ),
        (
            "tt-r4",
            ModelSpec::new(ModelKind::TT, 4).with_modes(out.clone(), input.clone()),
        ),
        (
            "tr-r4",
            ModelSpec::new(ModelKind::TR, 4).with_modes(out.clone(), input.clone()),
        ),
        (
            "bt-r4",
            ModelSpec::new(ModelKind::BT, 4).with_modes(out.clone(), input.clone()),
        ),
        ("dense", ModelSpec::new(ModelKind::DENSE, 1)),
    ];
    specs
        .into_iter()
        .map(|(name, spec)| {
            let model = zoo::build::<F>(&spec, &config, 11, 0).unwrap();
            let opt = Optimizer::new(&OptimizerConfig::adam(1e-3), &model.param_specs()).unwrap();
            Run { name, model, opt }
        })
        .collect()
}

fn inputs() -> (Array3<F>, Vec<usize>) {
    let x = tnet::dense::random_normal::<F>(&[BATCH, FRAMES, 57_600], 3)
        .into_dimensionality::<Ix3>()
        .unwrap();
    (x, (0..BATCH).map(|i| i % 11).collect())
}

fn bench(c: &mut Criterion, runs: &mut [Run]) {
    let (x, labels) = inputs();
    let mut group = c.benchmark_group("lstm_train_step_ucf11");
    group.sample_size(10);
    group.warm_up_time(Duration::from_secs(1));
    for run in runs.iter_mut() {
        group.bench_function(run.name, |b| b.iter(|| run.step(&x, &labels)));
    }
    group.finish();
}

fn summary(runs: &mut [Run]) {
    let (x, labels) = inputs();
    println!(
        "\nOne training step (loss, gradients through time, Adam) at the UCF11 shape: batch \
         {BATCH}, {FRAMES} frames, N = 57,600, H = 256, f32, {} rayon threads, tnet kernel \
         {} (TNET_ISA=avx2 caps it), faer GEMM {}",
        rayon::current_num_threads(),
        tnet::matrices::kernel_isa(),
        common::faer_gemm_isa()
    );
    println!(
        "{:<17} {:>11} {:>12} {:>9} {:>9} {:>8} {:>12}",
        "model", "LSTM params", "weights MB", "step ms", "cpu ms", "speedup", "step peak MB"
    );
    let mut dense_ms = None;
    let mut rows = Vec::new();
    for run in runs.iter_mut() {
        run.step(&x, &labels);
        let before = IN_USE.load(Ordering::Relaxed);
        PEAK.store(before, Ordering::Relaxed);
        run.step(&x, &labels);
        let peak = PEAK.load(Ordering::Relaxed) - before;
        let (secs, cpu) = common::measure(|| run.step(&x, &labels));
        let ms = secs * 1e3;
        let cpu = cpu.map_or_else(|| "-".into(), |c| format!("{:.1}", c * 1e3));
        if run.name == "dense" {
            dense_ms = Some(ms);
        }
        let lstm = run.model.param_count().lstm();
        rows.push((run.name, lstm, ms, cpu, peak));
    }
    for (name, lstm, ms, cpu, peak) in rows {
        let speedup = dense_ms
            .map(|d| format!("{:.1}x", d / ms))
            .unwrap_or_default();
        println!(
            "{:<17} {:>11} {:>12.3} {:>9.1} {:>9} {:>8} {:>12.1}",
            name,
            lstm,
            (lstm * std::mem::size_of::<F>()) as f64 / 1e6,
            ms,
            cpu,
            speedup,
            peak as f64 / 1e6
        );
    }
    println!(
        "(median wall-clock step; speed-ups are ratios to the dense row of this run; \
         `step peak` is the heap the step allocates above the model and its Adam state)"
    );
}

fn main() {
    let mut runs = runs();
    let mut c = Criterion::default().configure_from_args();
    bench(&mut c, &mut runs);
    summary(&mut runs);
    c.final_summary();
}
