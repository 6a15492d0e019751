//! The TT-matrix (matrix product operator) format.

use ndarray::{ArrayD, ArrayView2, IxDyn};

use super::TtTensor;
use crate::matrices::engine::{Engine, NetSpec, delegate_to_engine};
use crate::matrices::{
    FormatDescription, Init, MatrixFormat, MatrixShape, TensorizedFormat, check_core, core_sigma,
    decompose_tensorized, normal_cores, normalize_variance,
};
use crate::{AsRule, Error, Result, Scalar, TruncationInfo};

/// A weight matrix in TT-matrix format (Oseledets 2010; Novikov et al., *Tensorizing
/// neural networks*, 2015):
///
/// ```text
/// W[i, j] = G_1[:, i_1, j_1, :] G_2[:, i_2, j_2, :] ⋯ G_d[:, i_d, j_d, :]
/// ```
///
/// with cores `G_k` of shape `(r_{k-1}, m_k, n_k, r_k)` and `r_0 = r_d = 1`. Parameters
/// (the cores, in order): `Σ_k r_{k-1} m_k n_k r_k`.
///
/// [`from_dense`](MatrixFormat::from_dense) runs TT-SVD on the paired tensor with modes
/// `(i_k, j_k)` (`ttpy`'s `tt.matrix(W, n=.., m=..)`); with a relative tolerance `ε` the
/// result satisfies `‖W − W̃‖_F ≤ ε ‖W‖_F`, with a rank cap `r` the error is within
/// `√(d−1)` of the best with those ranks.
///
/// # Example
/// ```
/// use tnet::matrices::{Init, LinearMap, MatrixFormat, MatrixShape, TensorizedMatrix};
/// use tnet::TtMatrix;
/// // The TT-LSTM input layer of UCF11 (Yang et al. 2017): 57,600 -> 4 x 256, ranks 4.
/// let shape = MatrixShape::try_new(vec![16, 4, 4, 4], vec![8, 20, 20, 18]).unwrap();
/// let w = TtMatrix::<f32>::random(&shape, &(), 4, Init::Glorot, 0).unwrap();
/// assert_eq!(w.n_params(), 3_360);
/// assert_eq!(w.ranks(), vec![1, 4, 4, 4, 1]);
/// ```
#[derive(Clone, Debug)]
pub struct TtMatrix<T: Scalar> {
    shape: MatrixShape,
    cores: Vec<ArrayD<T>>,
    engine: Engine<T>,
}

impl<T: Scalar> TtMatrix<T> {
    /// Builds a TT-matrix from its cores, checking every invariant.
    ///
    /// # Errors
    /// - [`Error::ShapeMismatch`] for a wrong number of cores or a core whose shape does not
    ///   match the modes or its neighbours' ranks;
    /// - [`Error::InvalidRank`] for a zero rank or `r_0`, `r_d` other than 1;
    /// - [`Error::NonFinite`] for NaN/Inf entries.
    pub fn try_new(shape: MatrixShape, cores: Vec<ArrayD<T>>) -> Result<Self> {
        let d = shape.order();
        if cores.len() != d {
            return Err(Error::ShapeMismatch {
                context: "TtMatrix::try_new (one core per mode)",
                expected: vec![d],
                got: vec![cores.len()],
            });
        }
        let mut ranks = Vec::with_capacity(d + 1);
        for c in &cores {
            if c.ndim() != 4 {
                return Err(Error::ShapeMismatch {
                    context: "TtMatrix::try_new (cores are (r_prev, m_k, n_k, r_next))",
                    expected: vec![0, 0, 0, 0],
                    got: c.shape().to_vec(),
                });
            }
        }
        ranks.push(cores[0].shape()[0]);
        for c in &cores {
            ranks.push(c.shape()[3]);
        }
        if ranks[0] != 1 || ranks[d] != 1 {
            return Err(Error::rank(
                "TtMatrix::try_new",
                format!(
                    "the boundary ranks must be 1, got {} and {}",
                    ranks[0], ranks[d]
                ),
            ));
        }
        if ranks.contains(&0) {
            return Err(Error::rank(
                "TtMatrix::try_new",
                format!("zero rank in {ranks:?}"),
            ));
        }
        let cores = cores
            .into_iter()
            .enumerate()
            .map(|(k, c)| {
                let expected = [
                    ranks[k],
                    shape.out_modes()[k],
                    shape.in_modes()[k],
                    ranks[k + 1],
                ];
                check_core(
                    "TtMatrix::try_new (core k must be (r_{k-1}, m_k, n_k, r_k))",
                    c,
                    &expected,
                )
            })
            .collect::<Result<Vec<_>>>()?;
        let engine = Self::engine(&shape, &ranks)?;
        Ok(Self {
            shape,
            cores,
            engine,
        })
    }

    fn engine(shape: &MatrixShape, ranks: &[usize]) -> Result<Engine<T>> {
        let d = shape.order();
        let mut spec = NetSpec::default();
        let i: Vec<usize> = (0..d)
            .map(|k| spec.label(format!("i{k}"), shape.out_modes()[k]))
            .collect();
        let j: Vec<usize> = (0..d)
            .map(|k| spec.label(format!("j{k}"), shape.in_modes()[k]))
            .collect();
        let r: Vec<usize> = (0..=d)
            .map(|k| spec.label(format!("r{k}"), ranks[k]))
            .collect();
        for k in 0..d {
            spec.core(format!("G{k}"), vec![r[k], i[k], j[k], r[k + 1]]);
        }
        Engine::new(spec, &j, &i, 1)
    }

    /// The ranks `r_0 = 1, r_1, .., r_{d-1}, r_d = 1`.
    pub fn ranks(&self) -> Vec<usize> {
        std::iter::once(1)
            .chain(self.cores.iter().map(|c| c.shape()[3]))
            .collect()
    }

    /// The cores.
    pub fn cores(&self) -> &[ArrayD<T>] {
        &self.cores
    }

    /// The largest admissible ranks not above `rank`: `r_k <= min(Π_{l<=k} m_l n_l,
    /// Π_{l>k} m_l n_l)`.
    fn admissible(shape: &MatrixShape, rank: usize) -> Vec<usize> {
        let p = shape.paired_modes();
        let d = p.len();
        (0..=d)
            .map(|k| {
                if k == 0 || k == d {
                    return 1;
                }
                let left = p[..k].iter().fold(1usize, |a, &x| a.saturating_mul(x));
                let right = p[k..].iter().fold(1usize, |a, &x| a.saturating_mul(x));
                rank.min(left).min(right)
            })
            .collect()
    }

    /// Random cores with the given ranks `r_0 = 1, .., r_d = 1` (see [`Init`]).
    ///
    /// # Errors
    /// As [`try_new`](Self::try_new); [`Error::InvalidParameter`] for an invalid `init`.
    pub fn random_with_ranks(
        shape: &MatrixShape,
        ranks: &[usize],
        init: Init,
        seed: u64,
    ) -> Result<Self> {
        let d = shape.order();
        if ranks.len() != d + 1 {
            return Err(Error::ShapeMismatch {
                context: "TtMatrix::random_with_ranks (d + 1 ranks)",
                expected: vec![d + 1],
                got: vec![ranks.len()],
            });
        }
        let target = init.variance(shape.n_in(), shape.n_out())?;
        let terms: f64 = ranks[1..d].iter().map(|&r| r as f64).product();
        let sigma = core_sigma(target, terms, d);
        let shapes: Vec<Vec<usize>> = (0..d)
            .map(|k| {
                vec![
                    ranks[k],
                    shape.out_modes()[k],
                    shape.in_modes()[k],
                    ranks[k + 1],
                ]
            })
            .collect();
        let w = Self::try_new(shape.clone(), normal_cores(&shapes, sigma, seed)?)?;
        Ok(normalize_variance(w, target, d))
    }
}

delegate_to_engine!(TtMatrix, cores);

impl<T: Scalar> MatrixFormat<T> for TtMatrix<T> {
    type Structure = ();

    /// TT-SVD of the paired tensor (see the [type docs](TtMatrix)).
    fn from_dense(
        w: ArrayView2<'_, T>,
        shape: &MatrixShape,
        structure: &(),
        rule: &impl AsRule,
    ) -> Result<(Self, TruncationInfo<T>)> {
        decompose_tensorized(w, shape, structure, rule)
    }

    /// Ranks `min(rank, admissible)` (see [`Init`] for the scale).
    fn random(
        shape: &MatrixShape,
        _structure: &(),
        rank: usize,
        init: Init,
        seed: u64,
    ) -> Result<Self> {
        if rank == 0 {
            return Err(Error::param("rank", "must be at least 1"));
        }
        Self::random_with_ranks(shape, &Self::admissible(shape, rank), init, seed)
    }
}

impl<T: Scalar> TensorizedFormat<T> for TtMatrix<T> {
    type Tensor = TtTensor<T>;

    fn tensor_structure(_shape: &MatrixShape, _structure: &()) -> Result<()> {
        Ok(())
    }

    /// Core `k` `(r_{k-1}, m_k n_k, r_k)` reshaped to `(r_{k-1}, m_k, n_k, r_k)`.
    fn from_tensor(tt: TtTensor<T>, shape: &MatrixShape, _structure: &()) -> Result<Self> {
        let cores = tt
            .into_cores()
            .into_iter()
            .enumerate()
            .map(|(k, c)| {
                let (r0, _, r1) = c.dim();
                c.into_shape_with_order(IxDyn(&[r0, shape.out_modes()[k], shape.in_modes()[k], r1]))
                    .expect("paired mode")
            })
            .collect();
        Self::try_new(shape.clone(), cores)
    }
}

impl<T: Scalar> FormatDescription for TtMatrix<T> {
    fn format_description(&self) -> String {
        "tt".into()
    }
}
