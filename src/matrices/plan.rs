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

use rayon::prelude::*;

use super::kernel::{Pool, Scratch, Tens, contract, decide, permute_into, size_of};
use crate::Scalar;

/// Exact search up to this many cores.
const MAX_EXACT_CORES: usize = 16;
/// Orders within this fraction of the minimum flops are candidates ...
const PLAN_SLACK: f64 = 0.25;
/// ... at most this many of them, compared on flops plus the cost of layout changes ...
const MAX_CANDIDATE_PLANS: usize = 256;
/// ... where moving one entry (a permutation, bound by memory traffic) counts as this many
/// flops (measured: a GEMM with a short inner dimension runs at ~100 GFLOP/s per core, a
/// permutation moves ~1 G entries/s).
const MOVE_COST: f64 = 32.0;

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

/// Subset tables over the cores.
struct Tables {
    dims: Vec<usize>,
    /// Labels of each core subset (union).
    lab: Vec<u64>,
    /// Open labels of each core-only subset.
    open: Vec<u64>,
    /// Best cluster cost and split (ties: the smaller largest step footprint).
    cost: Vec<f64>,
    split: Vec<u32>,
}

fn mask_of(labels: &[usize]) -> u64 {
    labels.iter().fold(0, |m, &l| m | (1u64 << l))
}

fn msize(mut mask: u64, dims: &[usize]) -> f64 {
    let mut p = 1.0;
    while mask != 0 {
        let l = mask.trailing_zeros() as usize;
        p *= dims[l] as f64;
        mask &= mask - 1;
    }
    p
}

impl Tables {
    fn new(net: &Network) -> Self {
        let n = net.cores.len();
        let full = (1usize << n) - 1;
        let core_masks: Vec<u64> = net.cores.iter().map(|c| mask_of(c)).collect();
        let input = net.input.as_deref().map(mask_of).unwrap_or(0);
        let output = mask_of(&net.output);
        let mut lab = vec![0u64; full + 1];
        for s in 1..=full {
            let low = s.trailing_zeros() as usize;
            lab[s] = lab[s & (s - 1)] | core_masks[low];
        }
        let open: Vec<u64> = (0..=full)
            .map(|s| lab[s] & (input | lab[full ^ s] | output))
            .collect();
        let dims = net.dims.clone();
        let mut cost = vec![f64::INFINITY; full + 1];
        let mut peak = vec![0.0f64; full + 1];
        let mut split = vec![0u32; full + 1];
        {
            for s in 1..=full {
                if s & (s - 1) == 0 {
                    cost[s] = 0.0;
                    continue;
                }
                let low = s & s.wrapping_neg();
                let rest = s ^ low;
                // Submasks `a` of s containing the lowest bit, a != s.
                let mut sub = rest;
                loop {
                    let a = sub | low;
                    if a != s {
                        let b = s ^ a;
                        if cost[a].is_finite() && cost[b].is_finite() {
                            let c = cost[a] + cost[b] + 2.0 * msize(open[a] | open[b], &dims);
                            let p = peak[a].max(peak[b]).max(
                                msize(open[a], &dims)
                                    + msize(open[b], &dims)
                                    + msize(open[s], &dims),
                            );
                            if c < cost[s] || (c == cost[s] && p < peak[s]) {
                                cost[s] = c;
                                peak[s] = p;
                                split[s] = a as u32;
                            }
                        }
                    }
                    if sub == 0 {
                        break;
                    }
                    sub = (sub - 1) & rest;
                }
            }
        }
        Self {
            dims,
            lab,
            open,
            cost,
            split,
        }
    }
}

/// Draft steps before layouts: operand sources and result label sets.
struct Draft {
    a: Src,
    b: Src,
    flops: f64,
}

struct Builder<'a> {
    tables: &'a Tables,
    drafts: Vec<Draft>,
    masks: Vec<u64>, // label set of each tmp
}

impl Builder<'_> {
    fn src_mask(&self, s: Src, net: &Network) -> u64 {
        match s {
            Src::Input => mask_of(net.input.as_deref().unwrap_or(&[])),
            Src::Core(i) => mask_of(&net.cores[i]),
            Src::Tmp(t) => self.masks[t],
        }
    }

    fn push(&mut self, a: Src, b: Src, mask: u64, net: &Network) -> Src {
        let u = self.src_mask(a, net) | self.src_mask(b, net);
        let flops = 2.0 * msize(u, &self.tables.dims);
        self.drafts.push(Draft { a, b, flops });
        self.masks.push(mask);
        Src::Tmp(self.masks.len() - 1)
    }

    /// Emits the steps of a cluster (post-order), returning its source.
    fn cluster(&mut self, s: usize, net: &Network) -> Src {
        if s & (s - 1) == 0 {
            return Src::Core(s.trailing_zeros() as usize);
        }
        let a = self.tables.split[s] as usize;
        let sa = self.cluster(a, net);
        let sb = self.cluster(s ^ a, net);
        let mask = self.tables.open[s];
        self.push(sa, sb, mask, net)
    }
}

/// Plans the contraction of `net` for a batch size.
pub(crate) fn make_plan(
    template: &Network,
    batch_label: Option<usize>,
    batch: usize,
    what: &'static str,
) -> ContractionPlan {
    let net = template.specialise(batch_label, batch);
    let n = net.cores.len();
    let exact = n <= MAX_EXACT_CORES;
    let tables = if exact { Some(Tables::new(&net)) } else { None };
    let mut candidates: Vec<Vec<Draft>> = Vec::new();
    let mut cand_masks: Vec<Vec<u64>> = Vec::new();
    let mut results: Vec<Src> = Vec::new();
    let mut min_flops = None;
    if !exact {
        let (d, m, r) = greedy(&net);
        candidates.push(d);
        cand_masks.push(m);
        results.push(r);
    } else if net.input.is_none() {
        let tables = tables.as_ref().expect("exact");
        let full = (1usize << n) - 1;
        let mut b = Builder {
            tables,
            drafts: Vec::new(),
            masks: Vec::new(),
        };
        let r = b.cluster(full, &net);
        candidates.push(b.drafts);
        cand_masks.push(b.masks);
        results.push(r);
    } else {
        let tables = tables.as_ref().expect("exact");
        let (orders, min) = chain_orders(&net, tables);
        min_flops = Some(min);
        for seq in orders {
            let mut b = Builder {
                tables,
                drafts: Vec::new(),
                masks: Vec::new(),
            };
            let mut cur = Src::Input;
            let mut absorbed = 0usize;
            let input = mask_of(net.input.as_deref().unwrap_or(&[]));
            let full = (1usize << n) - 1;
            let output = mask_of(&net.output);
            for c in seq {
                let cs = b.cluster(c, &net);
                absorbed |= c;
                let mask = (input | tables.lab[absorbed]) & (tables.lab[full ^ absorbed] | output);
                cur = b.push(cur, cs, mask, &net);
            }
            candidates.push(b.drafts);
            cand_masks.push(b.masks);
            results.push(cur);
        }
    }
    let mut best: Option<ContractionPlan> = None;
    for ((drafts, masks), result) in candidates.into_iter().zip(cand_masks).zip(results) {
        let plan = finish(&net, drafts, &masks, result, what, batch, exact);
        let better = match &best {
            None => true,
            Some(b) => (score(&plan), plan.peak, plan.flops) < (score(b), b.peak, b.flops),
        };
        if better {
            best = Some(plan);
        }
    }
    let mut best = best.expect("at least one plan");
    best.min_flops = min_flops.unwrap_or(best.flops);
    best
}

/// What the choice among candidate orders minimises: flops plus the cost of layout
/// changes.
fn score(p: &ContractionPlan) -> f64 {
    p.flops + MOVE_COST * (p.cost + p.traffic) as f64
}

/// Candidate chain orders (sequences of absorbed clusters): every order within
/// `PLAN_SLACK` of the minimum flops, at most `MAX_CANDIDATE_PLANS` of them, the cheapest
/// explored first; and the minimum.
fn chain_orders(net: &Network, t: &Tables) -> (Vec<Vec<usize>>, f64) {
    let n = net.cores.len();
    let full = (1usize << n) - 1;
    let input = mask_of(net.input.as_deref().unwrap_or(&[]));
    let output = mask_of(&net.output);
    let topen: Vec<u64> = (0..=full)
        .map(|s| (input | t.lab[s]) & (t.lab[full ^ s] | output))
        .collect();
    let step = |s: usize, c: usize| -> Option<f64> {
        let prev = s ^ c;
        if t.cost[c].is_finite() {
            Some(t.cost[c] + 2.0 * msize(topen[prev] | t.open[c], &t.dims))
        } else {
            None
        }
    };
    let mut chain = vec![f64::INFINITY; full + 1];
    chain[0] = 0.0;
    for s in 1..=full {
        let mut c = s;
        while c != 0 {
            if chain[s ^ c].is_finite() {
                if let Some(v) = step(s, c) {
                    chain[s] = chain[s].min(chain[s ^ c] + v);
                }
            }
            c = (c - 1) & s;
        }
    }
    // Enumerate the orders backwards from the full set: the last cluster `c` of a prefix
    // `s` is allowed if the cheapest order of `s \ c` plus this step fits the budget left.
    fn dfs(
        s: usize,
        budget: f64,
        chain: &[f64],
        step: &dyn Fn(usize, usize) -> Option<f64>,
        suffix: &mut Vec<usize>,
        out: &mut Vec<Vec<usize>>,
    ) {
        if out.len() >= MAX_CANDIDATE_PLANS {
            return;
        }
        if s == 0 {
            out.push(suffix.iter().rev().copied().collect());
            return;
        }
        let mut options: Vec<(f64, usize, f64)> = Vec::new();
        let mut c = s;
        while c != 0 {
            if chain[s ^ c].is_finite() {
                if let Some(v) = step(s, c) {
                    let total = chain[s ^ c] + v;
                    if total <= budget * (1.0 + 1e-12) {
                        options.push((total, c, v));
                    }
                }
            }
            c = (c - 1) & s;
        }
        options.sort_by(|a, b| a.0.total_cmp(&b.0).then(b.1.cmp(&a.1)));
        for (_, c, v) in options {
            suffix.push(c);
            dfs(s ^ c, budget - v, chain, step, suffix, out);
            suffix.pop();
        }
    }
    let mut out = Vec::new();
    let min = chain[full];
    dfs(
        full,
        min * (1.0 + PLAN_SLACK),
        &chain,
        &step,
        &mut Vec::new(),
        &mut out,
    );
    (out, min)
}

/// Greedy pairwise order for networks too large for the exact search: repeatedly
/// contract the connected pair with the fewest flops (ties: the smaller result).
fn greedy(net: &Network) -> (Vec<Draft>, Vec<u64>, Src) {
    let output = mask_of(&net.output);
    let mut live: Vec<(Src, u64)> = net
        .input
        .as_deref()
        .map(|i| (Src::Input, mask_of(i)))
        .into_iter()
        .chain(
            net.cores
                .iter()
                .enumerate()
                .map(|(i, c)| (Src::Core(i), mask_of(c))),
        )
        .collect();
    let mut drafts = Vec::new();
    let mut masks = Vec::new();
    while live.len() > 1 {
        let mut best: Option<(bool, f64, f64, usize, usize, u64)> = None;
        for i in 0..live.len() {
            for j in i + 1..live.len() {
                let (mi, mj) = (live[i].1, live[j].1);
                let outer = mi & mj == 0;
                let others = live
                    .iter()
                    .enumerate()
                    .filter(|&(k, _)| k != i && k != j)
                    .fold(output, |m, (_, x)| m | x.1);
                let res = (mi | mj) & others;
                let f = 2.0 * msize(mi | mj, &net.dims);
                let sz = msize(res, &net.dims);
                if best.is_none_or(|b| (outer, f, sz) < (b.0, b.1, b.2)) {
                    best = Some((outer, f, sz, i, j, res));
                }
            }
        }
        let (_, f, _, i, j, res) = best.expect("at least two tensors");
        let (a, b) = (live[i].0, live[j].0);
        drafts.push(Draft { a, b, flops: f });
        masks.push(res);
        live.remove(j);
        live[i] = (Src::Tmp(masks.len() - 1), res);
    }
    let r = live[0].0;
    (drafts, masks, r)
}

/// Assigns layouts to the drafts and measures peak memory and moved entries.
fn finish(
    net: &Network,
    drafts: Vec<Draft>,
    masks: &[u64],
    result: Src,
    what: &'static str,
    batch: usize,
    exact: bool,
) -> ContractionPlan {
    let dims = &net.dims;
    // The consumer of each tmp and the other operand's label set (the hint).
    let mut hint = vec![0u64; drafts.len()];
    for d in &drafts {
        for (x, y) in [(d.a, d.b), (d.b, d.a)] {
            if let Src::Tmp(t) = x {
                let other = match y {
                    Src::Input => mask_of(net.input.as_deref().unwrap_or(&[])),
                    Src::Core(i) => mask_of(&net.cores[i]),
                    Src::Tmp(u) => masks[u],
                };
                hint[t] = masks[t] & other;
            }
        }
    }
    let mut layouts: Vec<Vec<usize>> = Vec::with_capacity(drafts.len());
    let mut steps = Vec::with_capacity(drafts.len());
    let input_layout = net.input.clone().unwrap_or_default();
    let n_steps = drafts.len();
    for (t, d) in drafts.into_iter().enumerate() {
        let get = |s: Src, layouts: &Vec<Vec<usize>>| -> Vec<usize> {
            match s {
                Src::Input => input_layout.clone(),
                Src::Core(i) => net.cores[i].clone(),
                Src::Tmp(u) => layouts[u].clone(),
            }
        };
        let (la, lb) = (get(d.a, &layouts), get(d.b, &layouts));
        let layout = if t + 1 == n_steps {
            net.output.clone()
        } else {
            choose_layout(&la, &lb, hint[t], dims)
        };
        let dec = decide(&la, &lb, &layout, dims);
        let scratch = dec.scratch(
            size_of(&la, dims),
            size_of(&lb, dims),
            size_of(&layout, dims),
        );
        layouts.push(layout.clone());
        steps.push(Step {
            a: d.a,
            b: d.b,
            out: t,
            layout,
            flops: d.flops,
            moved: dec.moved,
            cost: dec.cost,
            scratch,
        });
    }
    // Peak memory: simulate the live intermediates.
    let input_len = net.input.as_deref().map(|i| size_of(i, dims)).unwrap_or(0);
    let mut live = vec![0usize; steps.len()];
    let mut peak = input_len;
    let mut moved = 0;
    let mut cost = 0;
    for s in &steps {
        let lc = size_of(&s.layout, dims);
        let now: usize = live.iter().sum::<usize>() + input_len + lc + s.scratch;
        peak = peak.max(now);
        for x in [s.a, s.b] {
            if let Src::Tmp(u) = x {
                live[u] = 0;
            }
        }
        live[s.out] = lc;
        moved += s.moved;
        cost += s.cost;
    }
    let flops = steps.iter().map(|s| s.flops).sum();
    let (chain_a, segments) = segments(net, &steps);
    // Chain intermediates materialised whole (not per chunk of a fused segment).
    let last = steps.len().saturating_sub(1);
    let mut traffic = 0;
    for seg in &segments {
        for (j, &i) in seg.steps.iter().enumerate() {
            let whole = seg.prefix.is_empty() || j + 1 == seg.steps.len();
            if whole && i != last {
                traffic += size_of(&steps[i].layout, dims);
            }
        }
    }
    ContractionPlan {
        what,
        batch,
        net: net.clone(),
        steps,
        result,
        flops,
        peak,
        moved,
        cost,
        exact,
        min_flops: flops,
        traffic,
        chain_a,
        segments,
    }
}

/// Marks the chain steps and groups them into segments: greedily, each segment is the
/// longest run of chain steps whose chain tensors (the run's input and every result)
/// start with the same labels, none of them touched by the other operands, with at
/// least `MIN_CHUNKS` values; a step without such a prefix is a segment on its own.
fn segments(net: &Network, steps: &[Step]) -> (Vec<Option<bool>>, Vec<Segment>) {
    let dims = &net.dims;
    let mut chain_tmp = vec![false; steps.len()];
    let mut chain_a = vec![None; steps.len()];
    let is_chain = |x: Src, chain_tmp: &[bool]| match x {
        Src::Input => true,
        Src::Tmp(t) => chain_tmp[t],
        Src::Core(_) => false,
    };
    for (i, s) in steps.iter().enumerate() {
        if is_chain(s.a, &chain_tmp) {
            chain_a[i] = Some(true);
        } else if is_chain(s.b, &chain_tmp) {
            chain_a[i] = Some(false);
        }
        if chain_a[i].is_some() {
            chain_tmp[s.out] = true;
        }
    }
    if net.input.is_none() {
        return (chain_a, Vec::new());
    }
    let chain: Vec<usize> = (0..steps.len()).filter(|&i| chain_a[i].is_some()).collect();
    let layout_of = |x: Src| -> &[usize] {
        match x {
            Src::Input => net.input.as_deref().expect("input"),
            Src::Core(c) => &net.cores[c],
            Src::Tmp(t) => &steps[t].layout,
        }
    };
    let operands = |i: usize| {
        let s = &steps[i];
        if chain_a[i] == Some(true) {
            (s.a, s.b)
        } else {
            (s.b, s.a)
        }
    };
    // Common prefix of the run chain[k..=e].
    let prefix = |k: usize, e: usize| -> Vec<usize> {
        let first = layout_of(operands(chain[k]).0);
        let mut layouts = vec![first];
        let mut others = 0u64;
        for &i in &chain[k..=e] {
            layouts.push(&steps[i].layout);
            others |= mask_of(layout_of(operands(i).1));
        }
        let mut out = Vec::new();
        for (j, &l) in first.iter().enumerate() {
            if others >> l & 1 == 1 || layouts.iter().any(|x| x.get(j) != Some(&l)) {
                break;
            }
            out.push(l);
        }
        out
    };
    let count = |p: &[usize]| size_of(p, dims);
    // Entries of all chain tensors of the run chain[k..=e] per value of the prefix.
    let per_value = |k: usize, e: usize, p: &[usize]| {
        let n = count(p).max(1);
        let mut v = size_of(layout_of(operands(chain[k]).0), dims) / n;
        for &i in &chain[k..=e] {
            v += size_of(&steps[i].layout, dims) / n;
        }
        v
    };
    let mut segs = Vec::new();
    let mut k = 0;
    while k < chain.len() {
        let mut end = k;
        let mut pre = prefix(k, k);
        while end + 1 < chain.len() {
            let p = prefix(k, end + 1);
            if count(&p) < MIN_CHUNKS {
                break;
            }
            end += 1;
            pre = p;
        }
        // The other operands are re-read for every chunk: fuse only when they are small.
        let others: usize = chain[k..=end]
            .iter()
            .map(|&i| size_of(layout_of(operands(i).1), dims))
            .sum();
        if count(&pre) < MIN_CHUNKS || others > FUSED_CHUNK_LEN / 2 {
            pre.clear();
        }
        let per_chunk = if pre.is_empty() {
            1
        } else {
            let n = count(&pre);
            let threads = rayon::current_num_threads().max(1);
            (FUSED_CHUNK_LEN / per_value(k, end, &pre).max(1)).clamp(1, n.div_ceil(threads))
        };
        segs.push(Segment {
            steps: chain[k..=end].to_vec(),
            prefix: pre,
            per_chunk,
        });
        k = end + 1;
    }
    (chain_a, segs)
}

/// Picks the layout of an intermediate: among the orders a GEMM can write cheaply, one in
/// which the labels `hint` (those its consumer contracts) form a prefix or a suffix.
fn choose_layout(la: &[usize], lb: &[usize], hint: u64, dims: &[usize]) -> Vec<usize> {
    let (ma, mb) = (mask_of(la), mask_of(lb));
    let k = ma & mb;
    let (big, small) = if size_of(lb, dims) > size_of(la, dims) {
        (lb, la)
    } else {
        (la, lb)
    };
    let free = |l: &[usize]| {
        l.iter()
            .copied()
            .filter(|&x| k >> x & 1 == 0)
            .collect::<Vec<_>>()
    };
    let (alpha, beta) = (free(big), free(small));
    let reorder = |v: &[usize], hint_last: bool| -> Vec<usize> {
        let (h, o): (Vec<usize>, Vec<usize>) = v.iter().partition(|&&x| hint >> x & 1 == 1);
        if hint_last {
            o.into_iter().chain(h).collect()
        } else {
            h.into_iter().chain(o).collect()
        }
    };
    let alphas = [alpha.clone(), reorder(&alpha, false), reorder(&alpha, true)];
    let betas = [beta.clone(), reorder(&beta, false), reorder(&beta, true)];
    let size_c = msize((ma | mb) & !k, dims) as usize;
    let hint_ok = |l: &[usize]| {
        let n = hint.count_ones() as usize;
        n == 0 || mask_of(&l[..n]) == hint || mask_of(&l[l.len() - n..]) == hint
    };
    let mut best: Option<(usize, Vec<usize>)> = None;
    for rows_first in [true, false] {
        for a in &alphas {
            for b in &betas {
                let l: Vec<usize> = if rows_first {
                    a.iter().chain(b).copied().collect()
                } else {
                    b.iter().chain(a).copied().collect()
                };
                let cost = decide(la, lb, &l, dims).cost + if hint_ok(&l) { 0 } else { size_c };
                if best.as_ref().is_none_or(|(c, _)| cost < *c) {
                    best = Some((cost, l));
                }
            }
        }
    }
    best.expect("candidates").1
}

/// Operand data of an execution.
pub(crate) struct Operands<'a, T> {
    pub input: Option<&'a [T]>,
    pub cores: &'a [&'a [T]],
}

impl ContractionPlan {
    /// Runs the steps that involve only cores (not on the input chain) and returns the
    /// intermediates, indexed by step; the chain steps' slots are `None`.
    fn core_steps<T: Scalar>(
        &self,
        ops: &Operands<'_, T>,
        pool: &Pool<T>,
    ) -> Vec<Option<Scratch<T>>> {
        let dims = &self.net.dims;
        let mut tmps: Vec<Option<Scratch<T>>> = (0..self.steps.len()).map(|_| None).collect();
        for (i, s) in self.steps.iter().enumerate() {
            if self.chain_a[i].is_none() {
                let mut buf = pool.take(size_of(&s.layout, dims));
                let (a, b) = (self.data(s.a, ops, &tmps), self.data(s.b, ops, &tmps));
                contract(a, b, &mut buf[..], &s.layout, false, dims, pool);
                tmps[s.out] = Some(buf);
            }
        }
        tmps
    }

    /// Writes the gradient of core `c`: the contraction of the step's output gradient `g`
    /// with the step's other operand, laid out as the core.
    fn core_grad<T: Scalar>(
        &self,
        c: usize,
        g: Tens<'_, T>,
        other: Tens<'_, T>,
        d_cores: &mut [Vec<T>],
        pool: &Pool<T>,
    ) {
        let dims = &self.net.dims;
        contract(
            g,
            other,
            &mut d_cores[c],
            &self.net.cores[c],
            false,
            dims,
            pool,
        );
    }

    fn data<'a, T>(
        &'a self,
        s: Src,
        ops: &'a Operands<'a, T>,
        tmps: &'a [Option<Scratch<T>>],
    ) -> Tens<'a, T> {
        match s {
            Src::Input => Tens {
                labels: self.net.input.as_deref().expect("input"),
                data: ops.input.expect("input data"),
            },
            Src::Core(i) => Tens {
                labels: &self.net.cores[i],
                data: ops.cores[i],
            },
            Src::Tmp(t) => Tens {
                labels: &self.steps[t].layout,
                data: tmps[t]
                    .as_deref()
                    .expect("internal invariant: intermediate alive"),
            },
        }
    }

    /// Runs the plan, writing (or adding) the result into `out` (row-major in the
    /// network's output layout). With `keep`, stops before the last step (`out` is not
    /// written) and returns the intermediates for [`backward`](Self::backward); otherwise
    /// they go back to the pool.
    pub(crate) fn forward<T: Scalar>(
        &self,
        ops: &Operands<'_, T>,
        out: &mut [T],
        accumulate: bool,
        keep: bool,
        pool: &Pool<T>,
    ) -> Vec<Option<Scratch<T>>> {
        let dims = &self.net.dims;
        let mut tmps: Vec<Option<Scratch<T>>> = (0..self.steps.len()).map(|_| None).collect();
        if self.steps.is_empty() {
            let src = self.data(self.result, ops, &tmps);
            permute_into(
                src.data,
                src.labels,
                out,
                &self.net.output,
                dims,
                accumulate,
            );
            return tmps;
        }
        if !keep && ops.input.is_some() {
            self.forward_fused(ops, out, accumulate, pool);
            return tmps;
        }
        let last = self.steps.len() - 1;
        for (i, s) in self.steps.iter().enumerate() {
            if i == last {
                if keep {
                    // The result itself is not needed by the backward pass.
                    break;
                }
                let (a, b) = (self.data(s.a, ops, &tmps), self.data(s.b, ops, &tmps));
                contract(a, b, out, &s.layout, accumulate, dims, pool);
            } else {
                let mut buf = pool.take(size_of(&s.layout, dims));
                let (a, b) = (self.data(s.a, ops, &tmps), self.data(s.b, ops, &tmps));
                contract(a, b, &mut buf[..], &s.layout, false, dims, pool);
                tmps[s.out] = Some(buf);
            }
            if !keep {
                for x in [s.a, s.b] {
                    if let Src::Tmp(t) = x {
                        if let Some(v) = tmps[t].take() {
                            pool.give(v);
                        }
                    }
                }
            }
        }
        tmps
    }

    /// Forward execution without keeping intermediates: the steps among cores first, then
    /// the chain segment by segment; a segment with a prefix runs chunk by chunk (a range
    /// of the prefix's values at a time, chunks spread over the rayon threads), so its
    /// intermediates exist only per chunk, in cache.
    fn forward_fused<T: Scalar>(
        &self,
        ops: &Operands<'_, T>,
        out: &mut [T],
        accumulate: bool,
        pool: &Pool<T>,
    ) {
        let dims = &self.net.dims;
        let tmps = self.core_steps(ops, pool);
        let input = ops.input.expect("input data");
        let mut cur: Option<Scratch<T>> = None;
        let n_seg = self.segments.len();
        let mut out = Some(out);
        for (si, seg) in self.segments.iter().enumerate() {
            let last_step = &self.steps[*seg.steps.last().expect("non-empty segment")];
            let mut next = (si + 1 < n_seg).then(|| pool.take(size_of(&last_step.layout, dims)));
            let (dst, acc): (&mut [T], bool) = match next.as_deref_mut() {
                Some(n) => (n, false),
                None => (out.take().expect("last segment"), accumulate),
            };
            let src = cur.as_deref().unwrap_or(input);
            self.run_segment(seg, src, dst, acc, ops, &tmps, pool);
            if let Some(c) = cur.take() {
                pool.give(c);
            }
            cur = next;
        }
        for v in tmps.into_iter().flatten() {
            pool.give(v);
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn run_segment<T: Scalar>(
        &self,
        seg: &Segment,
        src: &[T],
        dst: &mut [T],
        acc: bool,
        ops: &Operands<'_, T>,
        tmps: &[Option<Scratch<T>>],
        pool: &Pool<T>,
    ) {
        let dims = &self.net.dims;
        let first = &self.steps[seg.steps[0]];
        let in_layout = self.src_labels(if self.chain_a[seg.steps[0]] == Some(true) {
            first.a
        } else {
            first.b
        });
        let other = |i: usize| {
            let s = &self.steps[i];
            self.data(
                if self.chain_a[i] == Some(true) {
                    s.b
                } else {
                    s.a
                },
                ops,
                tmps,
            )
        };
        let n = seg.steps.len();
        // Runs the steps on one piece (the whole tensors, or one chunk of the prefix).
        let run =
            |src: &[T], dst: &mut [T], dims: &[usize], map: &dyn Fn(&[usize]) -> Vec<usize>| {
                let mut labels = map(in_layout);
                let mut buf: Option<Scratch<T>> = None;
                for (j, &i) in seg.steps.iter().enumerate() {
                    let out_l = map(&self.steps[i].layout);
                    let a = Tens {
                        labels: &labels,
                        data: buf.as_deref().unwrap_or(src),
                    };
                    if j + 1 == n {
                        contract(a, other(i), dst, &out_l, acc, dims, pool);
                    } else {
                        let mut next = pool.take(size_of(&out_l, dims));
                        contract(a, other(i), &mut next[..], &out_l, false, dims, pool);
                        if let Some(b) = buf.replace(next) {
                            pool.give(b);
                        }
                        labels = out_l;
                    }
                }
                if let Some(b) = buf {
                    pool.give(b);
                }
            };
        if seg.prefix.is_empty() {
            run(src, dst, dims, &|l: &[usize]| l.to_vec());
            return;
        }
        let plen = seg.prefix.len();
        let p = seg.prefix[0];
        let in_inner = size_of(&in_layout[plen..], dims);
        let out_inner = size_of(
            &self.steps[*seg.steps.last().expect("non-empty")].layout[plen..],
            dims,
        );
        let map = |l: &[usize]| {
            std::iter::once(p)
                .chain(l[plen..].iter().copied())
                .collect::<Vec<_>>()
        };
        dst.par_chunks_mut(seg.per_chunk * out_inner)
            .enumerate()
            .for_each(|(c, d)| {
                let v = d.len() / out_inner;
                let start = c * seg.per_chunk;
                let mut dims_c = dims.to_vec();
                dims_c[p] = v;
                run(
                    &src[start * in_inner..(start + v) * in_inner],
                    d,
                    &dims_c,
                    &map,
                );
            });
    }

    /// The gradients of a `<result, d_out>`-linear loss, computed from the operands alone:
    /// writes the gradient of the input into `d_input` (adding if `accumulate`; skipped
    /// when `None`, which saves the most expensive contraction) and overwrites `d_cores[i]`
    /// with the gradient of core `i` (its storage layout).
    ///
    /// Runs segment by segment like [`forward_fused`](Self::forward_fused): the steps among
    /// cores first, then the forward of every segment but the last (keeping only segment
    /// outputs), then, segment by segment in reverse, chunk by chunk over the segment's
    /// prefix: the chunk's forward intermediates are recomputed (they stay in cache), and
    /// the gradient flows back through the chunk's steps, each step `C = A · B` giving
    /// `dA = dC · B` and `dB = A · dC`. The gradients of the other operands (cores and
    /// core clusters) are summed per group of consecutive chunks, one group per thread,
    /// and the groups are added in order, so the result does not depend on scheduling.
    /// Last, the gradients flow through the steps among cores.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn backward_fused<T: Scalar>(
        &self,
        ops: &Operands<'_, T>,
        d_out: &[T],
        mut d_input: Option<&mut [T]>,
        accumulate: bool,
        d_cores: &mut [Vec<T>],
        pool: &Pool<T>,
    ) {
        let dims = &self.net.dims;
        if self.steps.is_empty() || ops.input.is_none() || self.segments.is_empty() {
            let tmps = self.forward(ops, &mut [], false, true, pool);
            self.backward(ops, tmps, d_out, d_input, accumulate, d_cores, pool);
            return;
        }
        // Steps among cores.
        let tmps = self.core_steps(ops, pool);
        // Forward of every segment but the last, keeping the segment outputs.
        let input = ops.input.expect("input data");
        let n_seg = self.segments.len();
        let mut seg_out: Vec<Scratch<T>> = Vec::with_capacity(n_seg - 1);
        for seg in &self.segments[..n_seg - 1] {
            let last_step = &self.steps[*seg.steps.last().expect("non-empty segment")];
            let mut next = pool.take(size_of(&last_step.layout, dims));
            let src = seg_out.last().map(|c| &c[..]).unwrap_or(input);
            self.run_segment(seg, src, &mut next[..], false, ops, &tmps, pool);
            seg_out.push(next);
        }
        // Gradients of the cluster intermediates (each written by its one consumer before
        // it is read).
        let mut grads: Vec<Option<Scratch<T>>> = (0..self.steps.len()).map(|_| None).collect();
        for (i, s) in self.steps.iter().enumerate() {
            if self.chain_a[i].is_none() {
                grads[s.out] = Some(pool.take(size_of(&s.layout, dims)));
            }
        }
        // Backward through the segments, last first.
        let mut d_next: Option<Scratch<T>> = None;
        for si in (0..n_seg).rev() {
            let seg = &self.segments[si];
            let src = if si == 0 { input } else { &seg_out[si - 1][..] };
            let mut d_src_buf = (si > 0).then(|| pool.take(src.len()));
            let (d_src, acc_src): (Option<&mut [T]>, bool) = match d_src_buf.as_deref_mut() {
                Some(b) => (Some(b), false),
                None => (d_input.take(), accumulate),
            };
            let d_dst = d_next.as_deref().unwrap_or(d_out);
            self.segment_backward(
                seg, src, d_dst, d_src, acc_src, ops, &tmps, d_cores, &mut grads, pool,
            );
            if let Some(b) = d_next.take() {
                pool.give(b);
            }
            d_next = d_src_buf;
        }
        if let Some(b) = d_next {
            pool.give(b);
        }
        for b in seg_out {
            pool.give(b);
        }
        // Backward through the steps among cores, last first.
        for (i, s) in self.steps.iter().enumerate().rev() {
            if self.chain_a[i].is_some() {
                continue;
            }
            let g_buf = grads[s.out]
                .take()
                .expect("internal invariant: gradient set");
            let g = Tens {
                labels: &s.layout,
                data: &g_buf[..],
            };
            for (x, y) in [(s.a, s.b), (s.b, s.a)] {
                let other = self.data(y, ops, &tmps);
                match x {
                    Src::Core(c) => self.core_grad(c, g, other, d_cores, pool),
                    Src::Tmp(t) => {
                        let layout = &self.steps[t].layout;
                        let gt = grads[t].as_deref_mut().expect("allocated above");
                        contract(g, other, gt, layout, false, dims, pool);
                    }
                    Src::Input => unreachable!("a step among cores has no input"),
                }
            }
            pool.give(g_buf);
        }
        for v in tmps.into_iter().chain(grads).flatten() {
            pool.give(v);
        }
    }

    /// The backward pass of one segment (see [`backward_fused`](Self::backward_fused)):
    /// `src` is the segment's input, `d_dst` the gradient of its output; writes the
    /// gradient of `src` into `d_src` (if asked) and the gradients of the other
    /// operands into `d_cores` and `grads` (overwriting them).
    #[allow(clippy::too_many_arguments)]
    fn segment_backward<T: Scalar>(
        &self,
        seg: &Segment,
        src: &[T],
        d_dst: &[T],
        d_src: Option<&mut [T]>,
        acc_src: bool,
        ops: &Operands<'_, T>,
        tmps: &[Option<Scratch<T>>],
        d_cores: &mut [Vec<T>],
        grads: &mut [Option<Scratch<T>>],
        pool: &Pool<T>,
    ) {
        let dims = &self.net.dims;
        let n = seg.steps.len();
        let chain_src = |i: usize| {
            let s = &self.steps[i];
            if self.chain_a[i] == Some(true) {
                (s.a, s.b)
            } else {
                (s.b, s.a)
            }
        };
        let in_layout = self.src_labels(chain_src(seg.steps[0]).0);
        // The other operands, their gradient targets.
        let others: Vec<Src> = seg.steps.iter().map(|&i| chain_src(i).1).collect();
        let mut core_refs: Vec<Option<&mut [T]>> =
            d_cores.iter_mut().map(|v| Some(&mut v[..])).collect();
        let mut tmp_refs: Vec<Option<&mut [T]>> =
            grads.iter_mut().map(|g| g.as_deref_mut()).collect();
        let finals: Vec<&mut [T]> = others
            .iter()
            .map(|o| match *o {
                Src::Core(c) => core_refs[c].take().expect("each core is used once"),
                Src::Tmp(t) => tmp_refs[t].take().expect("each intermediate is used once"),
                Src::Input => unreachable!("the input is on the chain"),
            })
            .collect();
        let other_labels = |o: Src| -> &[usize] { self.src_labels(o) };
        // Chunks over the prefix.
        let (plen, n_vals) = if seg.prefix.is_empty() {
            (0, 1)
        } else {
            (seg.prefix.len(), size_of(&seg.prefix, dims))
        };
        let per_chunk = if plen == 0 { 1 } else { seg.per_chunk };
        let n_chunks = n_vals.div_ceil(per_chunk);
        let n_groups = if plen == 0 {
            1
        } else {
            rayon::current_num_threads().clamp(1, n_chunks)
        };
        let per_group = n_chunks.div_ceil(n_groups);
        let n_groups = n_chunks.div_ceil(per_group);
        let in_inner = size_of(&in_layout[plen..], dims);
        let out_layout = &self.steps[seg.steps[n - 1]].layout;
        let out_inner = size_of(&out_layout[plen..], dims);
        let p = seg.prefix.first().copied();
        let map = |l: &[usize]| -> Vec<usize> {
            match p {
                Some(p) => std::iter::once(p)
                    .chain(l[plen..].iter().copied())
                    .collect(),
                None => l.to_vec(),
            }
        };
        // One chunk: values [start, start + v) of the prefix.
        // The first chunk of a group overwrites the gradient targets, the others add.
        let run_chunk = |start: usize,
                         v: usize,
                         first: bool,
                         d_src: Option<&mut [T]>,
                         targets: &mut [&mut [T]]| {
            let mut dims_c = dims.to_vec();
            if let Some(p) = p {
                dims_c[p] = v;
            }
            let x = &src[start * in_inner..(start + v) * in_inner];
            let dy = &d_dst[start * out_inner..(start + v) * out_inner];
            // Forward, keeping the chain tensors of the chunk.
            let mut labels: Vec<Vec<usize>> = vec![map(in_layout)];
            let mut vals: Vec<Scratch<T>> = Vec::with_capacity(n.saturating_sub(1));
            for j in 0..n - 1 {
                let i = seg.steps[j];
                let out_l = map(&self.steps[i].layout);
                let mut buf = pool.take(size_of(&out_l, &dims_c));
                let a = Tens {
                    labels: &labels[j],
                    data: if j == 0 { x } else { &vals[j - 1][..] },
                };
                let o = self.data(others[j], ops, tmps);
                contract(a, o, &mut buf[..], &out_l, false, &dims_c, pool);
                vals.push(buf);
                labels.push(out_l);
            }
            let g_label = map(out_layout);
            let mut g_buf: Option<Scratch<T>> = None;
            let mut g_labels = g_label;
            let mut d_src = d_src;
            for j in (0..n).rev() {
                let g = Tens {
                    labels: &g_labels,
                    data: g_buf.as_deref().unwrap_or(dy),
                };
                let a = Tens {
                    labels: &labels[j],
                    data: if j == 0 { x } else { &vals[j - 1][..] },
                };
                let o = self.data(others[j], ops, tmps);
                contract(
                    a,
                    g,
                    targets[j],
                    other_labels(others[j]),
                    !first,
                    &dims_c,
                    pool,
                );
                if j > 0 {
                    let mut buf = pool.take(size_of(&labels[j], &dims_c));
                    contract(g, o, &mut buf[..], &labels[j], false, &dims_c, pool);
                    if let Some(b) = g_buf.replace(buf) {
                        pool.give(b);
                    }
                    g_labels = labels[j].clone();
                } else if let Some(ds) = d_src.take() {
                    contract(g, o, ds, &labels[0], acc_src, &dims_c, pool);
                }
            }
            if let Some(b) = g_buf {
                pool.give(b);
            }
            for b in vals {
                pool.give(b);
            }
        };
        // Runs the chunks of one group in order.
        let run_group = |gi: usize, d_src: Option<&mut [T]>, targets: &mut [&mut [T]]| {
            let mut d_src = d_src;
            let first = gi * per_group;
            let last = ((gi + 1) * per_group).min(n_chunks);
            let mut offset = 0;
            for c in first..last {
                let start = c * per_chunk;
                let v = per_chunk.min(n_vals - start);
                let ds = d_src
                    .as_deref_mut()
                    .map(|d| &mut d[offset..offset + v * in_inner]);
                offset += v * in_inner;
                run_chunk(start, v, c == first, ds, targets);
            }
        };
        let mut finals = finals;
        if n_groups == 1 {
            run_group(0, d_src, &mut finals);
            return;
        }
        let mut partials: Vec<Vec<Vec<T>>> = (1..n_groups)
            .map(|_| finals.iter().map(|f| vec![T::zero(); f.len()]).collect())
            .collect();
        let group_len = per_group * per_chunk * in_inner;
        let mut d_pieces: Vec<Option<&mut [T]>> = match d_src {
            Some(d) => d.chunks_mut(group_len).map(Some).collect(),
            None => (0..n_groups).map(|_| None).collect(),
        };
        let piece0 = d_pieces[0].take();
        // (group, its piece of d_src, its gradient targets)
        type Job<'a, T> = (usize, Option<&'a mut [T]>, Vec<&'a mut [T]>);
        let mut rest: Vec<Job<'_, T>> = Vec::with_capacity(n_groups - 1);
        for (gi, part) in partials.iter_mut().enumerate() {
            let piece = d_pieces[gi + 1].take();
            rest.push((gi + 1, piece, part.iter_mut().map(|v| &mut v[..]).collect()));
        }
        rayon::join(
            || run_group(0, piece0, &mut finals),
            || {
                rest.into_par_iter()
                    .for_each(|(gi, piece, mut targets)| run_group(gi, piece, &mut targets))
            },
        );
        for part in &partials {
            for (f, p) in finals.iter_mut().zip(part) {
                for (a, &b) in f.iter_mut().zip(p) {
                    *a += b;
                }
            }
        }
    }

    /// Backward pass through the plan: given `d_out` (the gradient of the result, in the
    /// output layout) and the intermediates kept by [`forward`](Self::forward), writes the
    /// gradient of the input into `d_input` (adding if `accumulate`) and of core `i` into
    /// `d_cores[i]` (its storage layout).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn backward<T: Scalar>(
        &self,
        ops: &Operands<'_, T>,
        mut tmps: Vec<Option<Scratch<T>>>,
        d_out: &[T],
        mut d_input: Option<&mut [T]>,
        accumulate: bool,
        d_cores: &mut [Vec<T>],
        pool: &Pool<T>,
    ) {
        let dims = &self.net.dims;
        let mut grads: Vec<Option<Scratch<T>>> = (0..self.steps.len()).map(|_| None).collect();
        let last = self.steps.len().saturating_sub(1);
        for (i, s) in self.steps.iter().enumerate().rev() {
            let g_buf = if i == last { None } else { grads[s.out].take() };
            let g = Tens {
                labels: &s.layout,
                data: g_buf.as_deref().unwrap_or(d_out),
            };
            for (x, y) in [(s.a, s.b), (s.b, s.a)] {
                let other = self.data(y, ops, &tmps);
                match x {
                    Src::Input => {
                        if let Some(dx) = d_input.as_deref_mut() {
                            let labels = self.net.input.as_deref().expect("input");
                            contract(g, other, dx, labels, accumulate, dims, pool);
                        }
                    }
                    Src::Core(c) => self.core_grad(c, g, other, d_cores, pool),
                    Src::Tmp(t) => {
                        let layout = &self.steps[t].layout;
                        let mut buf = pool.take(size_of(layout, dims));
                        contract(g, other, &mut buf[..], layout, false, dims, pool);
                        grads[t] = Some(buf);
                    }
                }
            }
            if let Some(b) = g_buf {
                pool.give(b);
            }
            for x in [s.a, s.b] {
                if let Src::Tmp(t) = x {
                    // The intermediate is no longer needed once its gradient exists.
                    if let Some(v) = tmps[t].take() {
                        pool.give(v);
                    }
                }
            }
        }
        for v in tmps.into_iter().flatten() {
            pool.give(v);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Minimum flops over every pairwise contraction order, by exhaustive recursion.
    fn brute(tensors: &[u64], output: u64, dims: &[usize]) -> f64 {
        if tensors.len() == 1 {
            return 0.0;
        }
        let mut best = f64::INFINITY;
        for i in 0..tensors.len() {
            for j in i + 1..tensors.len() {
                let rest: Vec<u64> = (0..tensors.len())
                    .filter(|&k| k != i && k != j)
                    .map(|k| tensors[k])
                    .collect();
                let others = rest.iter().fold(output, |m, &x| m | x);
                let u = tensors[i] | tensors[j];
                let mut next = rest.clone();
                next.push(u & others);
                best = best.min(2.0 * msize(u, dims) + brute(&next, output, dims));
            }
        }
        best
    }

    /// A random network: one input and 1..=5 cores; each label joins two tensors or one
    /// tensor and the output.
    fn network() -> impl Strategy<Value = Network> {
        (1usize..=5, 2usize..=9)
            .prop_flat_map(|(n_cores, n_labels)| {
                (
                    Just(n_cores),
                    proptest::collection::vec(2usize..=5, n_labels),
                    proptest::collection::vec((0usize..=n_cores, 0usize..=n_cores + 1), n_labels),
                )
            })
            .prop_map(|(n_cores, dims, ends)| {
                // Tensor 0 is the input, 1..=n_cores the cores, n_cores + 1 the output.
                let mut tensors = vec![Vec::new(); n_cores + 2];
                for (l, &(x, y)) in ends.iter().enumerate() {
                    let y = if y == x { n_cores + 1 } else { y };
                    tensors[x].push(l);
                    tensors[y].push(l);
                }
                // Every tensor needs a label: give empty ones a label to the output.
                let mut dims = dims;
                for t in 0..=n_cores {
                    if tensors[t].is_empty() {
                        dims.push(2);
                        tensors[t].push(dims.len() - 1);
                        tensors[n_cores + 1].push(dims.len() - 1);
                    }
                }
                let output = tensors.pop().expect("output");
                let input = tensors.remove(0);
                Network {
                    names: (0..dims.len()).map(|l| format!("l{l}")).collect(),
                    dims,
                    core_names: (0..tensors.len()).map(|c| format!("C{c}")).collect(),
                    cores: tensors,
                    input: Some(input),
                    input_name: "X".into(),
                    output,
                }
            })
    }

    proptest! {
        /// The chain/cluster dynamic programme finds the exact minimum flops over all
        /// pairwise orders (checked by exhaustive search), with and without the input.
        #[test]
        fn plan_is_optimal(net in network()) {
            let mut all: Vec<u64> = vec![mask_of(net.input.as_deref().unwrap())];
            all.extend(net.cores.iter().map(|c| mask_of(c)));
            let output = mask_of(&net.output);
            let plan = make_plan(&net, None, 1, "test");
            prop_assert!(plan.is_exact());
            let best = brute(&all, output, &net.dims);
            prop_assert_eq!(plan.min_flops, best);
            prop_assert!(plan.flops <= best * (1.0 + PLAN_SLACK) * (1.0 + 1e-12));
            // Without the input: the cores alone, to the labels they share with the output
            // or the input.
            let mut cores_only = net.clone();
            let input = cores_only.input.take().unwrap();
            let mut out: Vec<usize> = cores_only.output.clone();
            out.extend(input.iter().filter(|l| cores_only.cores.iter().any(|c| c.contains(l))));
            out.retain(|l| cores_only.cores.iter().any(|c| c.contains(l)));
            cores_only.output = out;
            let p = make_plan(&cores_only, None, 1, "test");
            prop_assert_eq!(p.flops, brute(&all[1..], mask_of(&cores_only.output), &net.dims));
        }
    }
}
