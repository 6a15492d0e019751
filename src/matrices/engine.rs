//! The execution engine shared by every matrix format: a tensor network template (the
//! cores with their labels), cached contraction plans per batch size, and a pool of
//! scratch buffers.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};

use ndarray::{Array2, ArrayD, ArrayView2, Axis, IxDyn, Slice};

use super::kernel::Pool;
use super::plan::{ContractionPlan, Network, Operands, make_plan};
use crate::dense::{check_backward, check_col_range, check_cols};
use crate::{Error, Result, Scalar};

/// Builder of a network template: labels with sizes and names, cores with their labels in
/// storage order.
#[derive(Clone, Debug, Default)]
pub(crate) struct NetSpec {
    dims: Vec<usize>,
    names: Vec<String>,
    cores: Vec<Vec<usize>>,
    core_names: Vec<String>,
}

impl NetSpec {
    pub fn label(&mut self, name: impl Into<String>, dim: usize) -> usize {
        self.dims.push(dim);
        self.names.push(name.into());
        self.dims.len() - 1
    }

    pub fn core(&mut self, name: impl Into<String>, labels: Vec<usize>) {
        self.cores.push(labels);
        self.core_names.push(name.into());
    }
}

/// Column-block plans kept per matrix (a model uses one or two ranges; the cache is
/// emptied when a caller cycles through more).
const MAX_BLOCK_PLANS: usize = 16;

/// Which network a plan is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Kind {
    Forward,
    Transpose,
    Dense,
}

/// Networks, plan cache and scratch pool of one matrix.
pub(crate) struct Engine<T> {
    forward: Network,
    transpose: Network,
    dense: Network,
    batch_label: usize,
    n_in: usize,
    n_out: usize,
    n_blocks: usize,
    plans: Mutex<HashMap<(Kind, usize), Arc<ContractionPlan>>>,
    /// Plans of [`column_block`](Self::column_block), per column range.
    blocks: Mutex<HashMap<(usize, usize), Arc<ContractionPlan>>>,
    pool: Pool<T>,
}

impl<T> fmt::Debug for Engine<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Engine")
            .field("cores", &self.forward.core_names)
            .field("n_blocks", &self.n_blocks)
            .finish_non_exhaustive()
    }
}

impl<T: Scalar> Clone for Engine<T> {
    /// A clone shares nothing: plans are cheap to remake, scratch is per matrix.
    fn clone(&self) -> Self {
        Self {
            forward: self.forward.clone(),
            transpose: self.transpose.clone(),
            dense: self.dense.clone(),
            batch_label: self.batch_label,
            n_in: self.n_in,
            n_out: self.n_out,
            n_blocks: self.n_blocks,
            plans: Mutex::new(HashMap::new()),
            blocks: Mutex::new(HashMap::new()),
            pool: Pool::new(),
        }
    }
}

impl<T: Scalar> Engine<T> {
    /// Builds the forward (`X[b, j] -> Y[b, i]`), transpose (`dY[b, i] -> dX[b, j]`) and
    /// dense (`W[i, j]`) networks of one block of cores; `n_blocks` blocks with the same
    /// structure are summed.
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] if the network needs more than 64 labels.
    pub fn new(
        mut spec: NetSpec,
        in_labels: &[usize],
        out_labels: &[usize],
        n_blocks: usize,
    ) -> Result<Self> {
        let b = spec.label("b", 1);
        if spec.dims.len() > 64 {
            return Err(Error::param(
                "order",
                format!(
                    "the network has {} indices; at most 64 are supported (reduce the order d)",
                    spec.dims.len()
                ),
            ));
        }
        let n_in = in_labels.iter().map(|&l| spec.dims[l]).product();
        let n_out = out_labels.iter().map(|&l| spec.dims[l]).product();
        let with_b = |l: &[usize]| {
            std::iter::once(b)
                .chain(l.iter().copied())
                .collect::<Vec<_>>()
        };
        let base = |input: Option<Vec<usize>>, name: &str, output: Vec<usize>| Network {
            dims: spec.dims.clone(),
            names: spec.names.clone(),
            cores: spec.cores.clone(),
            core_names: spec.core_names.clone(),
            input,
            input_name: name.to_string(),
            output,
        };
        let forward = base(Some(with_b(in_labels)), "X", with_b(out_labels));
        let transpose = base(Some(with_b(out_labels)), "dY", with_b(in_labels));
        let dense = base(
            None,
            "",
            out_labels.iter().chain(in_labels).copied().collect(),
        );
        Ok(Self {
            forward,
            transpose,
            dense,
            batch_label: b,
            n_in,
            n_out,
            n_blocks,
            plans: Mutex::new(HashMap::new()),
            blocks: Mutex::new(HashMap::new()),
            pool: Pool::new(),
        })
    }

    /// The cached plan of a kind for a batch size (made on first use).
    pub fn plan(&self, kind: Kind, batch: usize) -> Arc<ContractionPlan> {
        let batch = batch.max(1);
        let key = (kind, if kind == Kind::Dense { 0 } else { batch });
        if let Some(p) = self
            .plans
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&key)
        {
            return p.clone();
        }
        let p = Arc::new(match kind {
            Kind::Forward => make_plan(&self.forward, Some(self.batch_label), batch, "forward"),
            Kind::Transpose => {
                make_plan(&self.transpose, Some(self.batch_label), batch, "transpose")
            }
            Kind::Dense => make_plan(&self.dense, None, 1, "to_dense"),
        });
        self.plans
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(key, p.clone());
        p
    }

    /// Flops of one forward application to a batch.
    pub fn flops(&self, batch: usize) -> u64 {
        self.plan(Kind::Forward, batch).flops() * self.n_blocks as u64
    }

    fn slices(cores: &[ArrayD<T>]) -> Vec<&[T]> {
        cores
            .iter()
            .map(|c| {
                c.as_slice()
                    .expect("internal invariant: cores are in standard layout")
            })
            .collect()
    }

    fn run(&self, kind: Kind, cores: &[ArrayD<T>], x: ArrayView2<'_, T>, cols: usize) -> Array2<T> {
        let batch = x.nrows();
        let mut out = Array2::<T>::zeros((batch, cols));
        if batch == 0 {
            return out;
        }
        let plan = self.plan(kind, batch);
        let xs = x.as_standard_layout();
        let input = xs.as_slice().expect("standard layout");
        let all = Self::slices(cores);
        let per = all.len() / self.n_blocks;
        let out_s = out.as_slice_mut().expect("fresh array");
        for (bi, block) in all.chunks(per).enumerate() {
            let ops = Operands {
                input: Some(input),
                cores: block,
            };
            plan.forward(&ops, out_s, bi > 0, false, &self.pool);
        }
        out
    }

    /// `Y = X W^T` (`B x N` to `B x M`).
    pub fn apply(&self, cores: &[ArrayD<T>], x: ArrayView2<'_, T>) -> Result<Array2<T>> {
        check_cols("apply (X must be B x N)", &x, self.n_in)?;
        Ok(self.run(Kind::Forward, cores, x, self.n_out))
    }

    /// `dX = dY W` (`B x M` to `B x N`).
    pub fn apply_transpose(&self, cores: &[ArrayD<T>], dy: ArrayView2<'_, T>) -> Result<Array2<T>> {
        check_cols("apply_transpose (dY must be B x M)", &dy, self.n_out)?;
        Ok(self.run(Kind::Transpose, cores, dy, self.n_in))
    }

    /// Gradients of `<Y, dY>`-linear losses: `dX = dY W` and the gradient of every core.
    pub fn backward(
        &self,
        cores: &[ArrayD<T>],
        x: ArrayView2<'_, T>,
        dy: ArrayView2<'_, T>,
    ) -> Result<(Array2<T>, Vec<ArrayD<T>>)> {
        let (dx, grads) = self.gradients(cores, x, dy, true)?;
        Ok((dx.expect("asked for dX"), grads))
    }

    /// The gradient of every core only (`dX` is not computed).
    pub fn backward_params(
        &self,
        cores: &[ArrayD<T>],
        x: ArrayView2<'_, T>,
        dy: ArrayView2<'_, T>,
    ) -> Result<Vec<ArrayD<T>>> {
        Ok(self.gradients(cores, x, dy, false)?.1)
    }

    #[allow(clippy::type_complexity)]
    fn gradients(
        &self,
        cores: &[ArrayD<T>],
        x: ArrayView2<'_, T>,
        dy: ArrayView2<'_, T>,
        want_dx: bool,
    ) -> Result<(Option<Array2<T>>, Vec<ArrayD<T>>)> {
        check_backward(
            [
                "backward (X must be B x N)",
                "backward (dY must be B x M)",
                "backward (X and dY must have the same batch size)",
            ],
            &x,
            &dy,
            self.n_in,
            self.n_out,
        )?;
        let batch = x.nrows();
        let mut dx = want_dx.then(|| Array2::<T>::zeros((batch, self.n_in)));
        let mut grads: Vec<Vec<T>> = cores.iter().map(|c| vec![T::zero(); c.len()]).collect();
        if batch > 0 {
            let plan = self.plan(Kind::Forward, batch);
            let xs = x.as_standard_layout();
            let dys = dy.as_standard_layout();
            let input = xs.as_slice().expect("standard layout");
            let d_out = dys.as_slice().expect("standard layout");
            let all = Self::slices(cores);
            let per = all.len() / self.n_blocks;
            let mut dx_s = dx.as_mut().map(|d| d.as_slice_mut().expect("fresh array"));
            for (bi, (block, g)) in all.chunks(per).zip(grads.chunks_mut(per)).enumerate() {
                let ops = Operands {
                    input: Some(input),
                    cores: block,
                };
                plan.backward_fused(&ops, d_out, dx_s.as_deref_mut(), bi > 0, g, &self.pool);
            }
        }
        let grads = grads
            .into_iter()
            .zip(cores)
            .map(|(g, c)| ArrayD::from_shape_vec(IxDyn(c.shape()), g).expect("core size"))
            .collect();
        Ok((dx, grads))
    }

    /// The columns `start..start + len` of `W` (`M x len`): every core is sliced along
    /// the input labels to the box of digits the columns use (row-major multi-index, the
    /// first input label most significant), the sliced network is contracted like
    /// [`to_dense`](Self::to_dense) (its plan cached per range) and the wanted columns
    /// are picked out of the box.
    pub fn column_block(&self, cores: &[ArrayD<T>], start: usize, len: usize) -> Result<Array2<T>> {
        check_col_range("column_block", start, len, self.n_in)?;
        let mut out = Array2::<T>::zeros((self.n_out, len));
        if len == 0 {
            return Ok(out);
        }
        let in_labels = &self.forward.input.as_ref().expect("forward has an input")[1..];
        let sizes: Vec<usize> = in_labels.iter().map(|&l| self.dense.dims[l]).collect();
        let strides = row_major_strides(&sizes);
        // Digit box [lo_k, hi_k) of each input mode over the range.
        let (first, last) = (start, start + len - 1);
        let bounds: Vec<(usize, usize)> = sizes
            .iter()
            .zip(&strides)
            .map(|(&n, &s)| {
                let (p0, p1) = (first / s, last / s);
                if p1 - p0 + 1 >= n || p0 / n != p1 / n {
                    (0, n)
                } else {
                    (p0 % n, p1 % n + 1)
                }
            })
            .collect();
        let box_sizes: Vec<usize> = bounds.iter().map(|&(lo, hi)| hi - lo).collect();
        let box_strides = row_major_strides(&box_sizes);
        let box_cols: usize = box_sizes.iter().product();
        let plan = {
            let mut cache = self.blocks.lock().unwrap_or_else(|e| e.into_inner());
            if cache.len() >= MAX_BLOCK_PLANS && !cache.contains_key(&(start, len)) {
                cache.clear();
            }
            cache
                .entry((start, len))
                .or_insert_with(|| {
                    let mut net = self.dense.clone();
                    for (&l, &n) in in_labels.iter().zip(&box_sizes) {
                        net.dims[l] = n;
                    }
                    Arc::new(make_plan(&net, None, 1, "column block"))
                })
                .clone()
        };
        let per = cores.len() / self.n_blocks;
        let sliced: Vec<ArrayD<T>> = cores
            .iter()
            .enumerate()
            .map(|(ci, c)| {
                // A core may be stored with merged axes (BT's (n_k m_k, R_k)): view it
                // with one axis per label first.
                let labels = &self.dense.cores[ci % per];
                let label_dims: Vec<usize> = labels.iter().map(|&l| self.dense.dims[l]).collect();
                let mut v = c
                    .view()
                    .into_shape_with_order(IxDyn(&label_dims))
                    .expect("internal invariant: a core holds the product of its label sizes");
                for (axis, l) in labels.iter().enumerate() {
                    if let Some(k) = in_labels.iter().position(|m| m == l) {
                        let (lo, hi) = bounds[k];
                        v.slice_axis_inplace(Axis(axis), Slice::from(lo..hi));
                    }
                }
                v.as_standard_layout().into_owned()
            })
            .collect();
        let w = self.contract_cores(&plan, &sliced, box_cols);
        for (j, mut col) in out.columns_mut().into_iter().enumerate() {
            let global = start + j;
            let local: usize = (0..sizes.len())
                .map(|k| ((global / strides[k]) % sizes[k] - bounds[k].0) * box_strides[k])
                .sum();
            col.assign(&w.column(local));
        }
        Ok(out)
    }

    /// The dense `M x N` matrix.
    pub fn to_dense(&self, cores: &[ArrayD<T>]) -> Array2<T> {
        self.contract_cores(&self.plan(Kind::Dense, 1), cores, self.n_in)
    }

    /// The `M x cols` matrix of a plan that contracts the cores alone (of the dense network
    /// or a column box of it), summed over the blocks.
    fn contract_cores(
        &self,
        plan: &ContractionPlan,
        cores: &[ArrayD<T>],
        cols: usize,
    ) -> Array2<T> {
        let mut w = Array2::<T>::zeros((self.n_out, cols));
        let all = Self::slices(cores);
        let per = all.len() / self.n_blocks;
        let ws = w.as_slice_mut().expect("fresh array");
        for (bi, block) in all.chunks(per).enumerate() {
            let ops = Operands {
                input: None,
                cores: block,
            };
            plan.forward(&ops, ws, bi > 0, false, &self.pool);
        }
        w
    }
}

/// Implements [`TensorizedMatrix`](super::TensorizedMatrix) for a matrix type
/// `$ty<T>` with the fields `shape: MatrixShape`, `engine: Engine<T>` and the parameter
/// arrays `$params: Vec<ArrayD<T>>`, by delegating to the engine. Optional doc lines for
/// `flops` and `plan`, and a `to_dense` other than the engine's (`fn(&Self) -> Array2<T>`).
macro_rules! delegate_to_engine {
    (
        $ty:ident, $params:ident
        $(, flops = $flops_doc:literal)?
        $(, plan = $plan_doc:literal)?
        $(, to_dense = $to_dense:expr)?
        $(, groups = $groups:expr)?
    ) => {
        impl<T: $crate::Scalar> $crate::matrices::TensorizedMatrix<T> for $ty<T> {
            fn shape(&self) -> &$crate::matrices::MatrixShape {
                &self.shape
            }

            $(#[doc = $flops_doc])?
            fn flops(&self, batch: usize) -> u64 {
                self.engine.flops(batch)
            }

            $(#[doc = $plan_doc])?
            fn plan(&self, batch: usize) -> std::sync::Arc<$crate::matrices::ContractionPlan> {
                self.engine.plan($crate::matrices::engine::Kind::Forward, batch)
            }

            fn apply_transpose(
                &self,
                dy: ndarray::ArrayView2<'_, T>,
            ) -> $crate::Result<ndarray::Array2<T>> {
                self.engine.apply_transpose(&self.$params, dy)
            }

            fn to_dense(&self) -> ndarray::Array2<T> {
                delegate_to_engine!(@to_dense self, $params $(, $to_dense)?)
            }
        }

        impl<T: $crate::Scalar> $crate::matrices::LinearMap<T> for $ty<T> {
            fn n_in(&self) -> usize {
                self.shape.n_in()
            }

            fn n_out(&self) -> usize {
                self.shape.n_out()
            }

            fn apply(&self, x: ndarray::ArrayView2<'_, T>) -> $crate::Result<ndarray::Array2<T>> {
                self.engine.apply(&self.$params, x)
            }

            fn backward(
                &self,
                x: ndarray::ArrayView2<'_, T>,
                dy: ndarray::ArrayView2<'_, T>,
            ) -> $crate::Result<(ndarray::Array2<T>, Vec<ndarray::ArrayD<T>>)> {
                self.engine.backward(&self.$params, x, dy)
            }

            fn backward_params(
                &self,
                x: ndarray::ArrayView2<'_, T>,
                dy: ndarray::ArrayView2<'_, T>,
            ) -> $crate::Result<Vec<ndarray::ArrayD<T>>> {
                self.engine.backward_params(&self.$params, x, dy)
            }

            fn column_block(
                &self,
                start: usize,
                len: usize,
            ) -> $crate::Result<ndarray::Array2<T>> {
                self.engine.column_block(&self.$params, start, len)
            }

            fn balance(&mut self) {
                let groups: usize = delegate_to_engine!(@groups self $(, $groups)?);
                $crate::matrices::balance_groups(self.params_mut(), groups);
            }

            fn params(&self) -> Vec<ndarray::ArrayViewD<'_, T>> {
                self.$params.iter().map(|c| c.view()).collect()
            }

            fn params_mut(&mut self) -> Vec<ndarray::ArrayViewMutD<'_, T>> {
                self.$params.iter_mut().map(|c| c.view_mut()).collect()
            }

            fn describe(&self) -> String {
                $crate::matrices::describe_cores(self)
            }

            fn box_clone(&self) -> Box<dyn $crate::matrices::LinearMap<T>> {
                Box::new(self.clone())
            }
        }
    };
    (@groups $m:ident) => {
        1
    };
    (@groups $m:ident, $groups:expr) => {
        ($groups)(&*$m)
    };
    (@to_dense $m:ident, $params:ident) => {
        $m.engine.to_dense(&$m.$params)
    };
    (@to_dense $m:ident, $params:ident, $to_dense:expr) => {{
        let to_dense: fn(&Self) -> ndarray::Array2<T> = $to_dense;
        to_dense($m)
    }};
}
pub(crate) use delegate_to_engine;

/// Row-major strides of a multi-index with the given sizes (the last index fastest).
fn row_major_strides(sizes: &[usize]) -> Vec<usize> {
    let mut strides = vec![1; sizes.len()];
    for k in (0..sizes.len().saturating_sub(1)).rev() {
        strides[k] = strides[k + 1] * sizes[k + 1];
    }
    strides
}
