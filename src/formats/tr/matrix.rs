//! The TR-matrix format, in the paired layout and in the TR-LSTM layout.

use ndarray::{ArrayD, ArrayView2, IxDyn};

use super::TrTensor;
use crate::matrices::engine::{Engine, NetSpec, delegate_to_engine};
use crate::matrices::{
    FormatDescription, Init, MatrixFormat, MatrixShape, TensorizedFormat, check_core, core_sigma,
    decompose_tensorized, normal_cores, normalize_variance, paired_tensor, split_tensor,
};
use crate::{AsRule, Error, Result, Scalar, TruncationInfo};

/// How the cores of a [`TrMatrix`] sit on the ring.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TrLayout {
    /// `d` cores `(r_{k-1}, m_k, n_k, r_k)`, each holding one output and one input mode
    /// (the TT-matrix layout closed into a ring).
    Paired,
    /// `2d` cores on one ring: the input cores `(r, n_k, r)` for `k = 1..d`, then the output
    /// cores `(r, m_k, r)` (Pan et al., *Compressing recurrent neural networks with tensor
    /// ring for action recognition*, AAAI 2019).
    Split,
}

/// A weight matrix in tensor-ring format:
///
/// ```text
/// paired: W[i, j] = Tr(G_1[:, i_1, j_1, :] ⋯ G_d[:, i_d, j_d, :])
/// split:  W[i, j] = Tr(I_1[:, j_1, :] ⋯ I_d[:, j_d, :] O_1[:, i_1, :] ⋯ O_d[:, i_d, :])
/// ```
///
/// Core `c` has shape `(r_c, .., r_{c+1})` with the ring closing `r_C = r_0` (`C` cores).
/// Parameters (the cores in ring order): `Σ_k r_{k-1} m_k n_k r_k` (paired) or
/// `Σ_k r n_k r + Σ_k r m_k r` (split, all ranks `r`).
///
/// [`from_dense`](MatrixFormat::from_dense) is TR-SVD (Zhao et al. 2016) of the paired
/// tensor `(i_k, j_k)` or of `W^T` reshaped to `(n_1..n_d, m_1..m_d)`: with a relative
/// tolerance `ε`, `‖W − W̃‖_F ≤ ε ‖W‖_F`. A rank cap `r` bounds every bond (the first SVD
/// keeps at most `r^2` triplets, split as `r_0 r_1`).
///
/// # Example
/// ```
/// use tnet::matrices::{Init, LinearMap, MatrixFormat, MatrixShape, TensorizedMatrix};
/// use tnet::{TrLayout, TrMatrix};
/// let shape = MatrixShape::try_new(vec![16, 4, 4, 4], vec![8, 20, 20, 18]).unwrap();
/// let w = TrMatrix::<f32>::random(&shape, &TrLayout::Split, 5, Init::Glorot, 0).unwrap();
/// assert_eq!(w.n_params(), 25 * (8 + 20 + 20 + 18) + 25 * (16 + 4 + 4 + 4));
/// ```
#[derive(Clone, Debug)]
pub struct TrMatrix<T: Scalar> {
    shape: MatrixShape,
    layout: TrLayout,
    cores: Vec<ArrayD<T>>,
    engine: Engine<T>,
}

impl<T: Scalar> TrMatrix<T> {
    /// The mode sizes carried by each core, in ring order.
    fn core_modes(shape: &MatrixShape, layout: TrLayout) -> Vec<Vec<usize>> {
        let d = shape.order();
        match layout {
            TrLayout::Paired => (0..d)
                .map(|k| vec![shape.out_modes()[k], shape.in_modes()[k]])
                .collect(),
            TrLayout::Split => shape
                .in_modes()
                .iter()
                .chain(shape.out_modes())
                .map(|&n| vec![n])
                .collect(),
        }
    }

    /// Builds a TR-matrix from its cores in ring order, checking every invariant.
    ///
    /// # Errors
    /// - [`Error::ShapeMismatch`] for a wrong number of cores or a core whose shape does not
    ///   match the modes or its neighbours' ranks;
    /// - [`Error::InvalidRank`] for a zero rank, or a rank other than 1 on a ring of a single
    ///   core (its trace is a rank-1 core);
    /// - [`Error::NonFinite`] for NaN/Inf entries.
    pub fn try_new(shape: MatrixShape, layout: TrLayout, cores: Vec<ArrayD<T>>) -> Result<Self> {
        let modes = Self::core_modes(&shape, layout);
        let n = modes.len();
        if cores.len() != n {
            return Err(Error::ShapeMismatch {
                context: "TrMatrix::try_new (number of cores: d paired, 2d split)",
                expected: vec![n],
                got: vec![cores.len()],
            });
        }
        for (c, m) in cores.iter().zip(&modes) {
            if c.ndim() != m.len() + 2 {
                return Err(Error::ShapeMismatch {
                    context: "TrMatrix::try_new (paired cores are 4-D, split cores 3-D)",
                    expected: vec![m.len() + 2],
                    got: vec![c.ndim()],
                });
            }
        }
        let ranks: Vec<usize> = cores.iter().map(|c| c.shape()[0]).collect();
        if ranks.contains(&0) {
            return Err(Error::rank(
                "TrMatrix::try_new",
                format!("zero rank in {ranks:?}"),
            ));
        }
        if n == 1 && ranks[0] != 1 {
            return Err(Error::rank(
                "TrMatrix::try_new",
                "a ring of one core must have rank 1 (its trace is a rank-1 core)",
            ));
        }
        let cores = cores
            .into_iter()
            .enumerate()
            .map(|(c, core)| {
                let mut expected = vec![ranks[c]];
                expected.extend(&modes[c]);
                expected.push(ranks[(c + 1) % n]);
                check_core(
                    "TrMatrix::try_new (core c must be (r_c, modes.., r_{c+1}))",
                    core,
                    &expected,
                )
            })
            .collect::<Result<Vec<_>>>()?;
        let engine = Self::engine(&shape, layout, &ranks)?;
        Ok(Self {
            shape,
            layout,
            cores,
            engine,
        })
    }

    fn engine(shape: &MatrixShape, layout: TrLayout, ranks: &[usize]) -> Result<Engine<T>> {
        let d = shape.order();
        let mut spec = NetSpec::default();
        let i: Vec<usize> = (0..d)
            .map(|k| spec.label(format!("i{k}"), shape.out_modes()[k]))
            .collect();
        let j: Vec<usize> = (0..d)
            .map(|k| spec.label(format!("j{k}"), shape.in_modes()[k]))
            .collect();
        let n = ranks.len();
        let a: Vec<usize> = (0..n)
            .map(|c| spec.label(format!("r{c}"), ranks[c]))
            .collect();
        for c in 0..n {
            let next = a[(c + 1) % n];
            match layout {
                TrLayout::Paired => spec.core(format!("G{c}"), vec![a[c], i[c], j[c], next]),
                TrLayout::Split if c < d => spec.core(format!("I{c}"), vec![a[c], j[c], next]),
                TrLayout::Split => spec.core(format!("O{}", c - d), vec![a[c], i[c - d], next]),
            }
        }
        Engine::new(spec, &j, &i, 1)
    }

    /// The layout.
    pub fn layout(&self) -> TrLayout {
        self.layout
    }

    /// The ring ranks `r_0, .., r_{C-1}` (bond `c` joins core `c-1` and core `c`).
    pub fn ranks(&self) -> Vec<usize> {
        self.cores.iter().map(|c| c.shape()[0]).collect()
    }

    /// The cores in ring order.
    pub fn cores(&self) -> &[ArrayD<T>] {
        &self.cores
    }

    /// Random cores with the given ring ranks (see [`Init`]).
    ///
    /// # Errors
    /// As [`try_new`](Self::try_new); [`Error::InvalidParameter`] for an invalid `init`.
    pub fn random_with_ranks(
        shape: &MatrixShape,
        layout: TrLayout,
        ranks: &[usize],
        init: Init,
        seed: u64,
    ) -> Result<Self> {
        let modes = Self::core_modes(shape, layout);
        let n = modes.len();
        if ranks.len() != n {
            return Err(Error::ShapeMismatch {
                context: "TrMatrix::random_with_ranks (one rank per core)",
                expected: vec![n],
                got: vec![ranks.len()],
            });
        }
        let target = init.variance(shape.n_in(), shape.n_out())?;
        let terms: f64 = ranks.iter().map(|&r| r as f64).product();
        let sigma = core_sigma(target, terms, n);
        let shapes: Vec<Vec<usize>> = (0..n)
            .map(|c| {
                let mut s = vec![ranks[c]];
                s.extend(&modes[c]);
                s.push(ranks[(c + 1) % n]);
                s
            })
            .collect();
        let w = Self::try_new(shape.clone(), layout, normal_cores(&shapes, sigma, seed)?)?;
        Ok(normalize_variance(w, target, n))
    }
}

delegate_to_engine!(TrMatrix, cores);

impl<T: Scalar> MatrixFormat<T> for TrMatrix<T> {
    type Structure = TrLayout;

    /// TR-SVD of the paired tensor (paired layout) or of `W^T` as
    /// `(n_1..n_d, m_1..m_d)` (split layout).
    fn from_dense(
        w: ArrayView2<'_, T>,
        shape: &MatrixShape,
        layout: &TrLayout,
        rule: &impl AsRule,
    ) -> Result<(Self, TruncationInfo<T>)> {
        decompose_tensorized(w, shape, layout, rule)
    }

    /// Every ring rank `rank` (1 for a ring of one core; see [`Init`] for the scale).
    fn random(
        shape: &MatrixShape,
        layout: &TrLayout,
        rank: usize,
        init: Init,
        seed: u64,
    ) -> Result<Self> {
        if rank == 0 {
            return Err(Error::param("rank", "must be at least 1"));
        }
        let n = Self::core_modes(shape, *layout).len();
        let r = if n == 1 { 1 } else { rank };
        Self::random_with_ranks(shape, *layout, &vec![r; n], init, seed)
    }
}

impl<T: Scalar> TensorizedFormat<T> for TrMatrix<T> {
    type Tensor = TrTensor<T>;

    /// Paired: mode `k` = `(i_k, j_k)`; split: `W^T` as `(n_1, .., n_d, m_1, .., m_d)`.
    fn tensorize(
        w: ArrayView2<'_, T>,
        shape: &MatrixShape,
        layout: &TrLayout,
    ) -> Result<ArrayD<T>> {
        Ok(match layout {
            TrLayout::Paired => paired_tensor(&w, shape, false),
            TrLayout::Split => split_tensor(&w, shape),
        })
    }

    fn tensor_structure(_shape: &MatrixShape, _layout: &TrLayout) -> Result<()> {
        Ok(())
    }

    /// Core `k` `(r_k, p_k, r_{k+1})` reshaped to its modes (`(m_k, n_k)` paired, one mode
    /// split).
    fn from_tensor(tr: TrTensor<T>, shape: &MatrixShape, layout: &TrLayout) -> Result<Self> {
        let modes = Self::core_modes(shape, *layout);
        let cores = tr
            .into_cores()
            .into_iter()
            .zip(&modes)
            .map(|(c, m)| {
                let mut s = vec![c.shape()[0]];
                s.extend(m);
                s.push(c.shape()[2]);
                c.into_shape_with_order(IxDyn(&s)).expect("paired mode")
            })
            .collect();
        Self::try_new(shape.clone(), *layout, cores)
    }
}

impl<T: Scalar> FormatDescription for TrMatrix<T> {
    fn format_description(&self) -> String {
        match self.layout() {
            TrLayout::Paired => "tr paired".into(),
            TrLayout::Split => "tr split".into(),
        }
    }
}
