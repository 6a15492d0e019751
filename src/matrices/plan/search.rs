//! The search for a contraction order and the layouts of its intermediates (see the
//! [module docs](super)).

use super::{ContractionPlan, FUSED_CHUNK_LEN, MIN_CHUNKS, Network, Segment, Src, Step};
use crate::matrices::kernel::{decide, size_of};

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
