//! Execution of a contraction plan: forward, transposed and backward passes, fused
//! chunk by chunk over the leading labels of a segment (see the [module docs](super)).

use rayon::prelude::*;

use super::{ContractionPlan, Segment, Src};
use crate::Scalar;
use crate::matrices::kernel::{Pool, Scratch, Tens, contract, permute_into, size_of};

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
