//! Contraction plans: the order in which a tensor network (a batch of inputs and the cores
//! of a tensorized matrix) is contracted pairwise, chosen to minimise flops.
//!
//! # Search space and objective
//! Every contraction tree of the network `{X, G_1, .., G_n}` (one big operand `X`, the
//! batch, and `n` small cores) is a *chain*: `X` absorbs, one after the other, *clusters*
//! of cores that were contracted among themselves first. The cost of a cluster does not
//! depend on `X`, and the cost of absorbing it depends only on the set of cores absorbed
//! so far, so two dynamic programmes over subsets find the exact optimum over all pairwise
//! orders (outer products included):
//!
//! ```text
//! cluster(S) = min_{S = A ⊔ B} cluster(A) + cluster(B) + 2 |open(A) ∪ open(B)|
//! chain(S)   = min_{∅ ≠ C ⊆ S} chain(S \ C) + cluster(C) + 2 |open(X ∪ S \ C) ∪ open(C)|
//! ```
//!
//! where `open(·)` are the labels a partial result still carries and `|L|` the product of
//! their sizes (a pairwise contraction over the union of the two operands' labels costs
//! `2 |L|` flops: one multiply and one add per term). The cost is `O(3^n)` for `n` cores;
//! up to 16 cores the search is exact, beyond it a greedy pairwise order is used.
//!
//! The order executed is not always the flop-optimal one: a permutation of a large
//! intermediate is bound by memory traffic and costs far more time per entry than a
//! flop of a GEMM. Every chain order within 25% of the minimum flops (at most 256,
//! cheapest first) gets layouts (below) and is scored as
//!
//! ```text
//! score = flops + 32 (entries moved by layout changes + entries of chain intermediates
//!                     written whole to memory, i.e. outside fused segments)
//! ```
//!
//! (a contraction run by the strided kernel, which moves nothing, counts half its result,
//! or all of it with scalar stores, as its measured overhead over a GEMM; see
//! [`decide`])
//!
//! and the lowest score wins (ties: the smaller peak memory, counted in entries: the
//! largest total of live intermediates, the step's result and its scratch buffers at any
//! step, the input `X` counted throughout). The layout of every intermediate is chosen when
//! the plan is made, looking one step ahead so that the next contraction can view its
//! operands as matrices without copying (see [`kernel`](super::kernel)). For example, at
//! the UCF11 shape an HT matrix absorbs the leaf of the last input mode first (a GEMM on
//! `X` as it is stored) rather than a leaf of a middle mode (4.5% fewer flops, but `X`
//! permuted).
//!
//! The backward pass reuses the forward plan in reverse: for a step `C = A · B` it
//! computes `dA = dC · B` and `dB = A · dC`, each with the same flop count as the forward
//! step, so forward + backward costs three times the forward flops. It runs fused like the
//! forward (see [`ContractionPlan::backward_fused`]): chunk by chunk over the leading
//! labels of a segment, recomputing the chunk's intermediates in cache instead of keeping
//! whole ones; the gradient of the input (`dX`, one contraction as large as the first
//! forward step) is skipped when not asked for.

use std::fmt;

mod execute;
mod search;

pub(crate) use execute::Operands;
pub(crate) use search::make_plan;

/// A tensor network of one big operand and small cores (a template: the batch label's size
/// is set when a plan is made).
#[derive(Clone, Debug)]
pub(crate) struct Network {
    /// Size of each label.
    pub dims: Vec<usize>,
    /// Name of each label (for printing plans).
    pub names: Vec<String>,
    /// Labels of each core, in storage order.
    pub cores: Vec<Vec<usize>>,
    /// Name of each core.
    pub core_names: Vec<String>,
    /// Labels of the big operand in storage order (`None`: contract the cores alone).
    pub input: Option<Vec<usize>>,
    /// Name of the big operand.
    pub input_name: String,
    /// Requested layout of the result.
    pub output: Vec<usize>,
}

impl Network {
    /// The same network with the batch label's size set and every label of size 1 dropped
    /// (a label of size 1 does not change a memory layout).
    fn specialise(&self, batch_label: Option<usize>, batch: usize) -> Network {
        let mut dims = self.dims.clone();
        if let Some(b) = batch_label {
            dims[b] = batch;
        }
        let keep = |v: &[usize]| {
            v.iter()
                .copied()
                .filter(|&l| dims[l] != 1)
                .collect::<Vec<_>>()
        };
        Network {
            cores: self.cores.iter().map(|c| keep(c)).collect(),
            input: self.input.as_ref().map(|i| keep(i)),
            output: keep(&self.output),
            dims: dims.clone(),
            names: self.names.clone(),
            core_names: self.core_names.clone(),
            input_name: self.input_name.clone(),
        }
    }
}

/// An operand of a step.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Src {
    /// The big operand (`X`, `dY`).
    Input,
    /// Core `i`.
    Core(usize),
    /// Intermediate `t`.
    Tmp(usize),
}

/// One pairwise contraction.
#[derive(Clone, Debug)]
pub(crate) struct Step {
    pub a: Src,
    pub b: Src,
    /// The intermediate this step writes (the last step writes the result).
    pub out: usize,
    /// Layout of the result, in storage order.
    pub layout: Vec<usize>,
    /// `2 |labels of a ∪ labels of b|`.
    pub flops: f64,
    /// Entries moved by layout changes in this step.
    pub moved: usize,
    /// The cost beyond the flops in entries moved (`moved`, or the equivalent for the
    /// strided kernel, see [`decide`]).
    pub cost: usize,
    /// Entries of scratch buffers this step needs.
    pub scratch: usize,
}

/// A contraction order with layouts, for one batch size; printable.
///
/// Made by the matrix types on first use for a batch size and cached (see
/// [`TensorizedMatrix::plan`](super::TensorizedMatrix::plan)).
#[derive(Clone, Debug)]
pub struct ContractionPlan {
    what: &'static str,
    batch: usize,
    net: Network,
    steps: Vec<Step>,
    result: Src,
    flops: f64,
    peak: usize,
    moved: usize,
    /// Sum of the steps' costs beyond the flops (in entries moved).
    cost: usize,
    exact: bool,
    /// The minimum flops over all pairwise orders (the exact search's optimum).
    min_flops: f64,
    /// Entries of chain intermediates written whole to memory (outside fused segments).
    traffic: usize,
    /// Per step: `Some(true)` if `a` is the chain operand (the input or an intermediate
    /// derived from it), `Some(false)` if `b` is, `None` for a step among cores only.
    chain_a: Vec<Option<bool>>,
    /// The chain steps grouped for fused execution.
    segments: Vec<Segment>,
}

/// Consecutive chain steps executed together, chunk by chunk over the leading labels
/// `prefix` that all their chain tensors share (see [`ContractionPlan::forward`]).
#[derive(Clone, Debug)]
struct Segment {
    steps: Vec<usize>,
    prefix: Vec<usize>,
    /// Values of the prefix per chunk.
    per_chunk: usize,
}

/// A segment is fused only when its prefix has at least this many values.
const MIN_CHUNKS: usize = 8;
/// Target entries of all chain tensors of a segment per chunk (fits the L2 cache).
const FUSED_CHUNK_LEN: usize = 1 << 16;

impl ContractionPlan {
    /// Flops of one execution (forward; the backward pass costs twice as much).
    pub fn flops(&self) -> u64 {
        self.flops as u64
    }

    /// Peak memory in entries: the largest total of live intermediates, the current
    /// result, its scratch buffers and the input at any step.
    pub fn peak_entries(&self) -> usize {
        self.peak
    }

    /// Entries moved by layout changes (permutations) in one execution.
    pub fn moved_entries(&self) -> usize {
        self.moved
    }

    /// Number of pairwise contractions.
    pub fn n_steps(&self) -> usize {
        self.steps.len()
    }

    /// The batch size the plan was made for.
    pub fn batch(&self) -> usize {
        self.batch
    }

    /// True when the order comes from the exact search (at most 16 cores): among all
    /// pairwise orders within 25% of the minimum flops, the one with the fewest flops plus
    /// 32 per entry moved by layout changes; otherwise a greedy order.
    pub fn is_exact(&self) -> bool {
        self.exact
    }

    fn src_labels(&self, s: Src) -> &[usize] {
        match s {
            Src::Input => self.net.input.as_deref().expect("plan with an input"),
            Src::Core(i) => &self.net.cores[i],
            Src::Tmp(t) => {
                &self
                    .steps
                    .iter()
                    .find(|st| st.out == t)
                    .expect("tmp")
                    .layout
            }
        }
    }

    fn src_name(&self, s: Src) -> String {
        match s {
            Src::Input => self.net.input_name.clone(),
            Src::Core(i) => self.net.core_names[i].clone(),
            Src::Tmp(t) => format!("T{}", t + 1),
        }
    }

    fn labels_text(&self, l: &[usize]) -> String {
        l.iter()
            .map(|&x| self.net.names[x].as_str())
            .collect::<Vec<_>>()
            .join(",")
    }
}

impl fmt::Display for ContractionPlan {
    /// One line per pairwise contraction with its flops and the entries it moves.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{} plan, batch {}: {} contractions, {:.3} MFLOP, peak {} entries, {} entries moved{}",
            self.what,
            self.batch,
            self.steps.len(),
            self.flops / 1e6,
            self.peak,
            self.moved,
            if self.exact {
                " (exact search)"
            } else {
                " (greedy)"
            }
        )?;
        for (i, s) in self.steps.iter().enumerate() {
            let out = if Some(s.out) == self.steps.last().map(|l| l.out) {
                "Y".to_string()
            } else {
                format!("T{}", s.out + 1)
            };
            writeln!(
                f,
                "  {:>2}. {}[{}] * {}[{}] -> {}[{}]  {:.3} MFLOP{}",
                i + 1,
                self.src_name(s.a),
                self.labels_text(self.src_labels(s.a)),
                self.src_name(s.b),
                self.labels_text(self.src_labels(s.b)),
                out,
                self.labels_text(&s.layout),
                s.flops / 1e6,
                if s.moved > 0 {
                    format!(", {} entries moved", s.moved)
                } else {
                    String::new()
                }
            )?;
        }
        if self.steps.is_empty() {
            writeln!(
                f,
                "  (no contraction: the result is {})",
                self.src_name(self.result)
            )?;
        }
        Ok(())
    }
}
