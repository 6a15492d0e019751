//! The LSTM classifier: one cell generic over its linear maps, two wirings, exact BPTT.
//!
//! # Model
//! For a clip `x_1 .. x_T` (each `x_t` of length `N`), hidden size `H`, gate order
//! forget, input, cell, output (rows `0..H`, `H..2H`, `2H..3H`, `3H..4H`):
//!
//! ```text
//! Separate:  a_t = W_x x~_t + U h~_{t-1} + b              (W_x: 4H x N, U: 4H x H)
//! Fused:     a_t = W z_t + b,  z_t = [x~_t ; h~_{t-1} ; 0] (W: 4H x P, P >= N + H)
//! [f; i; g; o] = [s(a_f); s(a_i); tanh(a_g); s(a_o)]
//! c_t = f * c_{t-1} + i * g,   h_t = o * tanh(c_t),   h_0 = c_0 = 0
//! logits = W_c h_T + b_c   (or W_c mean_t(h_t) with Pooling::Mean)
//! ```
//!
//! With [`LstmConfig::gate_norm`], `a_t = γ ⊙ LN(s_t) + b` where `s_t` is the map output
//! above without `b`, and `LN` centres and scales each gate's `H` entries of each sample to
//! zero mean and unit variance (`ŝ = (s - mean) / sqrt(var + 1e-5)`, layer normalisation);
//! `γ` (`4H`) is learned beside `b`.
//!
//! `x~` and `h~` are the inputs after dropout (training only): one Bernoulli mask per
//! sequence and path, shared by all time steps (Gal & Ghahramani's variational dropout,
//! Keras' `dropout`/`recurrent_dropout`), scaled by `1/(1-p)` so that evaluation needs no
//! rescaling. `h~` also carries the recurrent gain `γ` ([`LstmConfig::recurrent_gain`], 1 by
//! default): `h~_{t-1} = γ (h_{t-1} ⊙ m)`. The state `h_t` itself
//! (what the classifier and the next step's cell see outside the recurrent product) is not
//! dropped or scaled.
//!
//! # Gradients
//! [`Lstm::loss_and_grad`] runs backpropagation through time: the forward pass stores
//! per step the gate values, `c_t`, `h_t` and the map inputs; the backward pass walks the
//! steps in reverse through the cell (see the cell kernel's formulas in the module
//! source). Separate wiring: the recurrent map's backward at every step, and one
//! parameter backward of the input map on all `B*T` rows stacked. Fused wiring, by
//! linearity `W z_t = W [x~_t ; 0] + W_h h~_{t-1}` with the `4H x H` block `W_h` formed once
//! per batch ([`LinearMap::column_block`]): `dh~_{t-1} = da_t W_h` per step, and one
//! parameter backward of `W` on the `B*T` rows `z_t`. Gradients are exact (checked against
//! central finite differences in `tests/lstm.rs`).
//!
//! # Cost
//! Forward, per batch: one product of the input map (or of `W`) on `B*T` rows, plus `T`
//! recurrent products on `B` rows (`U`, or the dense `W_h`), plus `O(B T H)` elementwise
//! work. Backward: one parameter backward of the input map (or `W`) on `B*T` rows and the
//! recurrent steps' products. Memory for training: `O(B T (6H + P))` stored activations
//! (`P = N` for the separate wiring).

use ndarray::{
    Array1, Array2, Array3, ArrayD, ArrayView2, ArrayView3, ArrayViewD, ArrayViewMutD, Axis, s,
};
use rand::Rng;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::cell;
use super::config::{LstmConfig, PadPosition, Pooling, Wiring};
use super::head::{Classifier, argmax, softmax_cross_entropy, sum_rows};
use crate::linalg::matmul_into;
use crate::matrices::{DenseMatrix, LinearMap, gemm_par};
use crate::{Error, Result, Scalar};

/// Which part of the model a parameter tensor belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Part {
    /// The input-to-hidden map `W_x` (separate wiring).
    InputMap,
    /// The hidden-to-hidden map `U` (separate wiring).
    RecurrentMap,
    /// The one map `W` on `[x ; h]` (fused wiring).
    FusedMap,
    /// The gate bias `b` (`4H`).
    Bias,
    /// The gains `γ` of the gate normalisation (`4H`, [`LstmConfig::gate_norm`]).
    GateGain,
    /// The classifier's weights `W_c`.
    ClassifierMap,
    /// The classifier's bias `b_c`.
    ClassifierBias,
}

impl Part {
    /// Whether the tensor is a bias, or a normalisation gain (weight decay skips them
    /// unless asked otherwise: decaying a gain towards 0 would shut the gates).
    pub fn is_bias(self) -> bool {
        matches!(self, Part::Bias | Part::GateGain | Part::ClassifierBias)
    }
}

/// Name, part and shape of one parameter tensor, in the order of [`Lstm::params`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ParamSpec {
    /// A readable name such as `input[0]`, `bias`, `classifier.bias`.
    pub name: String,
    /// The part of the model it belongs to.
    pub part: Part,
    /// Its shape.
    pub shape: Vec<usize>,
    /// Whether it is one core of a tensorized map (a map held as two or more tensors),
    /// which [`OptimizerConfig::core_lr`](crate::train::OptimizerConfig::core_lr) steps
    /// relative to its scale. Specs saved before the field existed read as `false`.
    #[serde(default)]
    pub core: bool,
}

/// Gradients of the loss with respect to every parameter tensor, in the order of
/// [`Lstm::params`].
#[derive(Clone, Debug, PartialEq)]
pub struct Gradients<T> {
    /// One tensor per parameter tensor, same shapes.
    pub tensors: Vec<ArrayD<T>>,
}

impl<T: Scalar> Gradients<T> {
    /// The global Euclidean norm `sqrt(sum of all squared entries)`, accumulated in `f64`
    /// in a fixed order: partial sums over fixed blocks of 2^16 entries (computed in
    /// parallel), added block by block, so the result does not depend on the thread count.
    pub fn global_norm(&self) -> f64 {
        self.tensors
            .iter()
            .map(|t| crate::dense::sum_of_squares(t.view()))
            .sum::<f64>()
            .sqrt()
    }

    /// The Euclidean norm of each tensor, in order, summed in `f64` in a fixed order
    /// (so the result does not depend on the thread count).
    pub fn norms(&self) -> Vec<f64> {
        self.tensors
            .iter()
            .map(|t| crate::dense::sum_of_squares(t.view()).sqrt())
            .collect()
    }

    /// Multiplies every entry by `s`.
    pub fn scale(&mut self, s: T) {
        for t in &mut self.tensors {
            t.mapv_inplace(|v| v * s);
        }
    }
}

/// The result of one forward and backward pass over a batch.
#[derive(Clone, Debug)]
pub struct StepOutput<T> {
    /// Mean softmax cross-entropy over the batch.
    pub loss: f64,
    /// Number of rows whose predicted class is the label.
    pub correct: usize,
    /// The logits (`B x C`).
    pub logits: Array2<T>,
    /// Gradients of `loss` with respect to every parameter.
    pub grads: Gradients<T>,
}

#[derive(Clone, Debug)]
enum Maps<T: Scalar> {
    Separate {
        input: Box<dyn LinearMap<T>>,
        recurrent: Box<dyn LinearMap<T>>,
    },
    Fused {
        map: Box<dyn LinearMap<T>>,
        pad: PadPosition,
    },
}

/// An LSTM classifier over sequences, generic over the format of its weight maps.
///
/// Build it with [`Lstm::separate`] (input map + recurrent map: the dense LSTM and the
/// TT-/TR-/BT-/HT-LSTM baselines) or [`Lstm::fused`] (one map on `[x ; h]`: FDHT-LSTM and
/// the other fully decomposed variants); [`Lstm::dense`] and [`Lstm::dense_fused`] build
/// the uncompressed references. See the [module docs](crate::models) for the equations.
///
/// # Example
/// ```
/// use tnet::models::{Lstm, LstmConfig};
/// let model = Lstm::<f64>::dense(&LstmConfig::new(6, 4), 3, 0).unwrap();
/// let x = tnet::dense::random_normal::<f64>(&[2, 5, 6], 1).into_dimensionality().unwrap();
/// let out = model.loss_and_grad(x.view(), &[0, 2], None).unwrap();
/// assert_eq!(out.logits.dim(), (2, 3));
/// assert_eq!(out.grads.tensors.len(), model.params().len());
/// ```
#[derive(Clone, Debug)]
pub struct Lstm<T: Scalar> {
    config: LstmConfig,
    maps: Maps<T>,
    bias: Array1<T>,
    /// `γ` of the gate normalisation (with [`LstmConfig::gate_norm`]).
    gain: Option<Array1<T>>,
    head: Classifier<T>,
}

/// Dropout masks of one batch (entries 0 or `1/(1-p)`), shared across time steps.
struct Masks<T> {
    x: Option<Array2<T>>,
    h: Option<Array2<T>>,
}

/// What the forward pass keeps for the backward pass.
struct Tape<T> {
    /// Separate wiring: the input after dropout (`B x T x N`), when dropout is on.
    xd: Option<Array3<T>>,
    /// `h~_{t-1}` (after dropout) for `t = 1..T-1`.
    hd: Vec<Array2<T>>,
    /// Fused wiring: `Z` (`B T x P`, row `b T + t`) holding `x~_t` in the data columns
    /// and zeros elsewhere; the backward pass writes `h~_{t-1}` into it.
    z: Option<Array2<T>>,
    /// Fused wiring: the recurrent block `W_h = W[:, off..off + H]` (`4H x H`).
    wh: Option<Array2<T>>,
    gates: Vec<Array2<T>>,
    /// Gate normalisation: per step, the normalised pre-activations `ŝ` (`B x 4H`) and
    /// the inverse standard deviations (`B x 4`, one per sample and gate).
    norm: Vec<(Array2<T>, Array2<T>)>,
    c: Vec<Array2<T>>,
    h: Vec<Array2<T>>,
    feature: Array2<T>,
}

fn map_shape_error(
    context: &'static str,
    expected: [usize; 2],
    map: &dyn LinearMap<impl Scalar>,
) -> Error {
    Error::ShapeMismatch {
        context,
        expected: expected.to_vec(),
        got: vec![map.n_out(), map.n_in()],
    }
}

impl<T: Scalar> Lstm<T> {
    /// An LSTM with an input map `W_x` (`4H x N`) and a recurrent map `U` (`4H x H`),
    /// gate bias `b` zero except the forget gate's (`config.forget_bias`), and the given
    /// classifier head.
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] for an invalid `config` (hidden size 0, ...);
    /// [`Error::ShapeMismatch`] if a map or the head does not have the shape the sizes
    /// require.
    pub fn separate(
        config: &LstmConfig,
        input: Box<dyn LinearMap<T>>,
        recurrent: Box<dyn LinearMap<T>>,
        head: Classifier<T>,
    ) -> Result<Self> {
        config.check()?;
        let (n, h) = (config.n_input, config.hidden);
        if input.n_out() != 4 * h || input.n_in() != n {
            return Err(map_shape_error(
                "Lstm::separate input map (4H x N)",
                [4 * h, n],
                input.as_ref(),
            ));
        }
        if recurrent.n_out() != 4 * h || recurrent.n_in() != h {
            return Err(map_shape_error(
                "Lstm::separate recurrent map (4H x H)",
                [4 * h, h],
                recurrent.as_ref(),
            ));
        }
        Self::assemble(config, Maps::Separate { input, recurrent }, head)
    }

    /// A fully decomposed LSTM: one map `W` of shape `4H x P` with `P = map.n_in() >=
    /// N + H`, applied to `z_t = [x_t ; h_{t-1}]` zero-padded to `P` (the zero columns
    /// placed by `pad`).
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] for an invalid `config`; [`Error::ShapeMismatch`] if
    /// the map does not have `4H` outputs and at least `N + H` inputs, or the head does
    /// not take `H` features.
    pub fn fused(
        config: &LstmConfig,
        map: Box<dyn LinearMap<T>>,
        pad: PadPosition,
        head: Classifier<T>,
    ) -> Result<Self> {
        config.check()?;
        let (n, h) = (config.n_input, config.hidden);
        if map.n_out() != 4 * h || map.n_in() < n + h {
            return Err(map_shape_error(
                "Lstm::fused map (4H x P with P >= N + H)",
                [4 * h, n + h],
                map.as_ref(),
            ));
        }
        Self::assemble(config, Maps::Fused { map, pad }, head)
    }

    fn assemble(config: &LstmConfig, maps: Maps<T>, head: Classifier<T>) -> Result<Self> {
        let h = config.hidden;
        if head.n_in() != h {
            return Err(Error::ShapeMismatch {
                context: "Lstm classifier head (C x H)",
                expected: vec![head.n_classes(), h],
                got: vec![head.n_classes(), head.n_in()],
            });
        }
        let mut bias = Array1::zeros(4 * h);
        bias.slice_mut(s![0..h]).fill(T::cast(config.forget_bias));
        Ok(Self {
            config: config.clone(),
            maps,
            bias,
            gain: config.gate_norm.then(|| Array1::ones(4 * h)),
            head,
        })
    }

    /// The uncompressed LSTM: Glorot-uniform `W_x`, orthogonal `U` (orthonormal columns,
    /// Keras' recurrent initialiser), dense Glorot classifier over `n_classes`, all from
    /// `seed`.
    ///
    /// # Errors
    /// As [`separate`](Self::separate), and [`Error::InvalidParameter`] if `n_classes < 2`.
    pub fn dense(config: &LstmConfig, n_classes: usize, seed: u64) -> Result<Self> {
        config.check()?;
        let (wx, u, head) = Self::dense_parts(config, n_classes, seed)?;
        Self::separate(
            config,
            Box::new(DenseMatrix::try_new(wx)?),
            Box::new(DenseMatrix::try_new(u)?),
            head,
        )
    }

    /// The uncompressed fused LSTM of padded length `padded_len`: the dense `4H x P`
    /// matrix holding the same `W_x` and `U` as [`dense`](Self::dense) with the same seed
    /// in the columns of `x` and `h` (zeros in the padding), so both compute the same
    /// function at initialisation.
    ///
    /// # Errors
    /// As [`fused`](Self::fused), and [`Error::InvalidParameter`] if `n_classes < 2`.
    pub fn dense_fused(
        config: &LstmConfig,
        n_classes: usize,
        padded_len: usize,
        pad: PadPosition,
        seed: u64,
    ) -> Result<Self> {
        config.check()?;
        let (n, h) = (config.n_input, config.hidden);
        if padded_len < n + h {
            return Err(Error::ShapeMismatch {
                context: "Lstm::dense_fused padded length (P >= N + H)",
                expected: vec![4 * h, n + h],
                got: vec![4 * h, padded_len],
            });
        }
        let (wx, u, head) = Self::dense_parts(config, n_classes, seed)?;
        let off = h_offset(n, h, padded_len, pad);
        let mut w = Array2::zeros((4 * h, padded_len));
        w.slice_mut(s![.., 0..n]).assign(&wx);
        w.slice_mut(s![.., off..off + h]).assign(&u);
        Self::fused(config, Box::new(DenseMatrix::try_new(w)?), pad, head)
    }

    fn dense_parts(
        config: &LstmConfig,
        n_classes: usize,
        seed: u64,
    ) -> Result<(Array2<T>, Array2<T>, Classifier<T>)> {
        let (n, h) = (config.n_input, config.hidden);
        let head = Classifier::dense(h, n_classes, super::derive_seed(seed, 2))?;
        let wx = DenseMatrix::<T>::glorot(4 * h, n, super::derive_seed(seed, 0))?
            .matrix()
            .to_owned();
        let mut g = crate::dense::rng(super::derive_seed(seed, 1));
        let u = crate::dense::random_orthonormal::<T, _>(4 * h, h, &mut g);
        Ok((wx, u, head))
    }

    /// Replaces the classifier head.
    ///
    /// # Errors
    /// [`Error::ShapeMismatch`] if the head does not take `H` features.
    pub fn with_classifier(mut self, head: Classifier<T>) -> Result<Self> {
        if head.n_in() != self.config.hidden {
            return Err(Error::ShapeMismatch {
                context: "Lstm classifier head (C x H)",
                expected: vec![head.n_classes(), self.config.hidden],
                got: vec![head.n_classes(), head.n_in()],
            });
        }
        self.head = head;
        Ok(self)
    }

    /// The configuration.
    pub fn config(&self) -> &LstmConfig {
        &self.config
    }

    /// The wiring (separate maps, or one fused map of padded length `P`).
    pub fn wiring(&self) -> Wiring {
        match &self.maps {
            Maps::Separate { .. } => Wiring::Separate,
            Maps::Fused { map, pad } => Wiring::Fused {
                padded_len: map.n_in(),
                pad: *pad,
            },
        }
    }

    /// The gain `γ` on the recurrent input ([`LstmConfig::recurrent_gain`]).
    pub fn recurrent_gain(&self) -> f64 {
        self.config.recurrent_gain
    }

    /// Number of classes.
    pub fn n_classes(&self) -> usize {
        self.head.n_classes()
    }

    /// The input map `W_x` (separate wiring).
    pub fn input_map(&self) -> Option<&dyn LinearMap<T>> {
        match &self.maps {
            Maps::Separate { input, .. } => Some(input.as_ref()),
            Maps::Fused { .. } => None,
        }
    }

    /// The recurrent map `U` (separate wiring).
    pub fn recurrent_map(&self) -> Option<&dyn LinearMap<T>> {
        match &self.maps {
            Maps::Separate { recurrent, .. } => Some(recurrent.as_ref()),
            Maps::Fused { .. } => None,
        }
    }

    /// The fused map `W` (fused wiring).
    pub fn fused_map(&self) -> Option<&dyn LinearMap<T>> {
        match &self.maps {
            Maps::Fused { map, .. } => Some(map.as_ref()),
            Maps::Separate { .. } => None,
        }
    }

    /// The gate bias `b` (`4H`, order forget, input, cell, output).
    pub fn bias(&self) -> &Array1<T> {
        &self.bias
    }

    /// The gains `γ` of the gate normalisation (`4H`), if [`LstmConfig::gate_norm`] is on.
    pub fn gain(&self) -> Option<&Array1<T>> {
        self.gain.as_ref()
    }

    /// The classifier head.
    pub fn classifier(&self) -> &Classifier<T> {
        &self.head
    }

    /// Descriptions of the maps in parameter order (input, recurrent or fused, then the
    /// classifier's map).
    pub fn map_descriptions(&self) -> Vec<String> {
        let mut d = match &self.maps {
            Maps::Separate { input, recurrent } => vec![input.describe(), recurrent.describe()],
            Maps::Fused { map, .. } => vec![map.describe()],
        };
        d.push(self.head.map().describe());
        d
    }

    /// Name, part and shape of every parameter tensor, in the order of
    /// [`params`](Self::params): the input map's (or the fused map's), the recurrent
    /// map's, the gate bias, the classifier map's, the classifier bias.
    pub fn param_specs(&self) -> Vec<ParamSpec> {
        let mut specs = Vec::new();
        let add = |specs: &mut Vec<ParamSpec>,
                   prefix: &str,
                   part: Part,
                   views: Vec<ArrayViewD<'_, T>>| {
            let core = views.len() > 1;
            for (k, v) in views.iter().enumerate() {
                specs.push(ParamSpec {
                    name: format!("{prefix}[{k}]"),
                    part,
                    shape: v.shape().to_vec(),
                    core,
                });
            }
        };
        match &self.maps {
            Maps::Separate { input, recurrent } => {
                add(&mut specs, "input", Part::InputMap, input.params());
                add(
                    &mut specs,
                    "recurrent",
                    Part::RecurrentMap,
                    recurrent.params(),
                );
            }
            Maps::Fused { map, .. } => add(&mut specs, "fused", Part::FusedMap, map.params()),
        }
        specs.push(ParamSpec {
            name: "bias".into(),
            part: Part::Bias,
            shape: vec![self.bias.len()],
            core: false,
        });
        if let Some(g) = &self.gain {
            specs.push(ParamSpec {
                name: "gain".into(),
                part: Part::GateGain,
                shape: vec![g.len()],
                core: false,
            });
        }
        add(
            &mut specs,
            "classifier",
            Part::ClassifierMap,
            self.head.map().params(),
        );
        specs.push(ParamSpec {
            name: "classifier.bias".into(),
            part: Part::ClassifierBias,
            shape: vec![self.head.n_classes()],
            core: false,
        });
        specs
    }

    /// Views of every parameter tensor (order of [`param_specs`](Self::param_specs)).
    pub fn params(&self) -> Vec<ArrayViewD<'_, T>> {
        let mut p = match &self.maps {
            Maps::Separate { input, recurrent } => {
                let mut p = input.params();
                p.extend(recurrent.params());
                p
            }
            Maps::Fused { map, .. } => map.params(),
        };
        p.push(self.bias.view().into_dyn());
        p.extend(self.gain.iter().map(|g| g.view().into_dyn()));
        p.extend(self.head.params());
        p
    }

    /// Mutable views of every parameter tensor (order of [`param_specs`](Self::param_specs)).
    pub fn params_mut(&mut self) -> Vec<ArrayViewMutD<'_, T>> {
        let mut p = match &mut self.maps {
            Maps::Separate { input, recurrent } => {
                let mut p = input.params_mut();
                p.extend(recurrent.params_mut());
                p
            }
            Maps::Fused { map, .. } => map.params_mut(),
        };
        p.push(self.bias.view_mut().into_dyn());
        p.extend(self.gain.iter_mut().map(|g| g.view_mut().into_dyn()));
        p.extend(self.head.params_mut());
        p
    }

    /// Rescales the cores of every tensorized map without changing the function the
    /// model computes (the gauge balancing of
    /// [`LinearMap::balance`](crate::matrices::LinearMap::balance)); dense
    /// maps, the bias and the classifier are left alone.
    pub fn balance_maps(&mut self) {
        match &mut self.maps {
            Maps::Separate { input, recurrent } => {
                input.balance();
                recurrent.balance();
            }
            Maps::Fused { map, .. } => map.balance(),
        }
    }

    /// Total number of stored scalars.
    pub fn n_params(&self) -> usize {
        self.params().iter().map(|p| p.len()).sum()
    }

    /// Offset of `h_{t-1}` inside `z_t` (fused wiring).
    pub(crate) fn fused_h_offset(&self) -> usize {
        match &self.maps {
            Maps::Fused { map, pad } => {
                h_offset(self.config.n_input, self.config.hidden, map.n_in(), *pad)
            }
            Maps::Separate { .. } => 0,
        }
    }

    pub(crate) fn check_input(&self, x: &ArrayView3<'_, T>) -> Result<()> {
        let (b, t, n) = x.dim();
        if b == 0 || t == 0 {
            return Err(Error::Empty {
                context: "Lstm input (batch, time, features)",
                shape: vec![b, t, n],
            });
        }
        if n != self.config.n_input {
            return Err(Error::ShapeMismatch {
                context: "Lstm input (batch, time, features)",
                expected: vec![b, t, self.config.n_input],
                got: vec![b, t, n],
            });
        }
        if let Some(index) = x.iter().position(|v| !v.is_finite()) {
            return Err(Error::NonFinite {
                context: "Lstm input",
                index,
            });
        }
        Ok(())
    }

    fn check_labels(&self, b: usize, labels: &[usize]) -> Result<()> {
        if labels.len() != b {
            return Err(Error::ShapeMismatch {
                context: "Lstm labels (one per clip)",
                expected: vec![b],
                got: vec![labels.len()],
            });
        }
        if let Some((k, &y)) = labels
            .iter()
            .enumerate()
            .find(|(_, y)| **y >= self.n_classes())
        {
            return Err(Error::param(
                "labels",
                format!(
                    "label {y} at position {k} is not below the number of classes {}",
                    self.n_classes()
                ),
            ));
        }
        Ok(())
    }

    /// The dropout masks of a pass (`dropout_seed: None` for evaluation), with the
    /// recurrent gain folded into the recurrent one: `h~ = γ (h ⊙ m)`, so the forward
    /// and backward passes apply both with one product.
    fn masks(&self, b: usize, dropout_seed: Option<u64>) -> Masks<T> {
        let (x, h) = match dropout_seed {
            None => (None, None),
            Some(seed) => {
                let mut g = crate::dense::rng(seed);
                let mut mask = |cols: usize, p: f64| {
                    (p > 0.0).then(|| {
                        let keep = T::cast(1.0 / (1.0 - p));
                        Array2::from_shape_simple_fn((b, cols), || {
                            if g.random::<f64>() < p {
                                T::zero()
                            } else {
                                keep
                            }
                        })
                    })
                };
                let x = mask(self.config.n_input, self.config.input_dropout);
                let h = mask(self.config.hidden, self.config.recurrent_dropout);
                (x, h)
            }
        };
        let gain = self.recurrent_gain();
        let h = match h {
            _ if gain == 1.0 => h,
            Some(m) => Some(m * T::cast(gain)),
            None => Some(Array2::from_elem((b, self.config.hidden), T::cast(gain))),
        };
        Masks { x, h }
    }

    fn forward_tape(&self, x: ArrayView3<'_, T>, masks: &Masks<T>) -> Result<Tape<T>> {
        let (b, tn, n) = x.dim();
        let hn = self.config.hidden;
        let kind = self.config.gate;
        let mut tape = Tape {
            xd: None,
            hd: Vec::new(),
            z: None,
            wh: None,
            gates: Vec::with_capacity(tn),
            norm: Vec::new(),
            c: Vec::with_capacity(tn),
            h: Vec::with_capacity(tn),
            feature: Array2::zeros((b, hn)),
        };
        let zeros = Array2::<T>::zeros((b, hn));
        match &self.maps {
            Maps::Separate { input, recurrent } => {
                if let Some(m) = &masks.x {
                    let mut xd = x.to_owned();
                    for mut xt in xd.axis_iter_mut(Axis(1)) {
                        xt *= m;
                    }
                    tape.xd = Some(xd);
                }
                let ax = {
                    let xin = match &tape.xd {
                        Some(a) => a.view(),
                        None => x.view(),
                    };
                    let xs = xin.as_standard_layout();
                    let x2 = xs
                        .view()
                        .into_shape_with_order((b * tn, n))
                        .expect("contiguous");
                    input.apply(x2)?
                };
                let ax = ax
                    .into_shape_with_order((b, tn, 4 * hn))
                    .expect("B*T rows of 4H");
                for t in 0..tn {
                    let mut a = ax.slice(s![.., t, ..]).to_owned();
                    self.add_bias_before_norm(&mut a);
                    if t > 0 {
                        let hd = dropped(&tape.h[t - 1], &masks.h);
                        a += &recurrent.apply(hd.view())?;
                        tape.hd.push(hd);
                    }
                    tape.norm.extend(self.normalize_gates(&mut a));
                    self.cell_step(&mut tape, a, &zeros, t, kind);
                }
            }
            Maps::Fused { map, .. } => {
                // W z_t = W [x~_t ; 0] + W_h h~_{t-1}: the data part of every step in one
                // product with a batch of B T rows, the recurrent part with the 4H x H
                // block W_h formed once.
                let off = self.fused_h_offset();
                let p = map.n_in();
                let mut z = Array2::<T>::zeros((b * tn, p));
                z.as_slice_mut()
                    .expect("fresh array")
                    .par_chunks_mut(p)
                    .enumerate()
                    .for_each(|(row, zr)| {
                        let (bi, t) = (row / tn, row % tn);
                        let zx = &mut zr[..n];
                        let xr = x.slice(s![bi, t, ..]);
                        match (&masks.x, xr.as_slice()) {
                            (None, Some(xs)) => zx.copy_from_slice(xs),
                            (None, None) => zx.iter_mut().zip(xr).for_each(|(v, &a)| *v = a),
                            (Some(m), _) => zx
                                .iter_mut()
                                .zip(xr)
                                .zip(m.row(bi))
                                .for_each(|((v, &a), &k)| *v = a * k),
                        }
                    });
                let ax = map
                    .apply(z.view())?
                    .into_shape_with_order((b, tn, 4 * hn))
                    .expect("B*T rows of 4H");
                let wh = map.column_block(off, hn)?;
                for t in 0..tn {
                    let mut a = ax.slice(s![.., t, ..]).to_owned();
                    self.add_bias_before_norm(&mut a);
                    if t > 0 {
                        let hd = dropped(&tape.h[t - 1], &masks.h);
                        matmul_into(
                            a.view_mut(),
                            hd.view(),
                            wh.t(),
                            T::one(),
                            true,
                            gemm_par(b, 4 * hn, hn),
                        );
                        tape.hd.push(hd);
                    }
                    tape.norm.extend(self.normalize_gates(&mut a));
                    self.cell_step(&mut tape, a, &zeros, t, kind);
                }
                tape.z = Some(z);
                tape.wh = Some(wh);
            }
        }
        tape.feature = match self.config.pooling {
            Pooling::Last => tape.h[tn - 1].clone(),
            Pooling::Mean => {
                let mut f = Array2::zeros((b, hn));
                for h in &tape.h {
                    f += h;
                }
                f * T::cast(1.0 / tn as f64)
            }
        };
        Ok(tape)
    }

    /// Without gate normalisation the bias is added first (the order of the sums the
    /// results were always computed in); with it, after the normalisation.
    fn add_bias_before_norm(&self, a: &mut Array2<T>) {
        if self.gain.is_none() {
            *a += &self.bias;
        }
    }

    /// With gate normalisation, `a <- γ ⊙ LN(a) + b` per sample and gate, returning `ŝ`
    /// and the inverse standard deviations (for the backward pass); without it, `None`
    /// and `a` untouched.
    pub(crate) fn normalize_gates(&self, a: &mut Array2<T>) -> Option<(Array2<T>, Array2<T>)> {
        let gain = self.gain.as_ref()?;
        let hn = self.config.hidden;
        let mut inv = Array2::<T>::zeros((a.nrows(), 4));
        let inv_h = 1.0 / hn as f64;
        for (mut row, mut inv_row) in a.rows_mut().into_iter().zip(inv.rows_mut()) {
            for (k, chunk) in row
                .as_slice_mut()
                .expect("rows of a fresh array")
                .chunks_mut(hn)
                .enumerate()
            {
                let mean = chunk.iter().map(|v| v.as_f64()).sum::<f64>() * inv_h;
                let var = chunk
                    .iter()
                    .map(|v| (v.as_f64() - mean).powi(2))
                    .sum::<f64>()
                    * inv_h;
                let r = 1.0 / (var + GATE_NORM_EPS).sqrt();
                for v in chunk.iter_mut() {
                    *v = T::cast((v.as_f64() - mean) * r);
                }
                inv_row[k] = T::cast(r);
            }
        }
        let mut out = &*a * gain;
        out += &self.bias;
        Some((std::mem::replace(a, out), inv))
    }

    /// Backward through the gate normalisation of step `t`: `da` (`dL/da_t`) becomes
    /// `dL/ds_t`; the gain's and the bias's gradients are accumulated.
    ///
    /// With `n = ŝ`, `dn = γ ⊙ da` and `r` the inverse standard deviation of the gate,
    /// `ds = r (dn - mean(dn) - n mean(dn ⊙ n))` over the gate's `H` entries.
    fn normalize_gates_backward(
        &self,
        tape: &Tape<T>,
        t: usize,
        da: &mut Array2<T>,
        dgain: &mut Array1<T>,
    ) {
        let Some(gain) = &self.gain else { return };
        let hn = self.config.hidden;
        let (n, inv) = &tape.norm[t];
        *dgain += &sum_rows((&*da * n).view());
        *da *= gain;
        let inv_h = 1.0 / hn as f64;
        for ((mut d_row, n_row), inv_row) in da.rows_mut().into_iter().zip(n.rows()).zip(inv.rows())
        {
            let d = d_row.as_slice_mut().expect("rows of a fresh array");
            let n_row = n_row.as_slice().expect("rows of a fresh array");
            for (k, (dc, nc)) in d.chunks_mut(hn).zip(n_row.chunks(hn)).enumerate() {
                let mean_d = dc.iter().map(|v| v.as_f64()).sum::<f64>() * inv_h;
                let mean_dn = dc
                    .iter()
                    .zip(nc)
                    .map(|(v, m)| v.as_f64() * m.as_f64())
                    .sum::<f64>()
                    * inv_h;
                let r = inv_row[k].as_f64();
                for (v, m) in dc.iter_mut().zip(nc) {
                    *v = T::cast(r * (v.as_f64() - mean_d - m.as_f64() * mean_dn));
                }
            }
        }
    }

    fn cell_step(
        &self,
        tape: &mut Tape<T>,
        mut a: Array2<T>,
        zeros: &Array2<T>,
        t: usize,
        kind: super::GateActivation,
    ) {
        let mut c = Array2::zeros(zeros.raw_dim());
        let mut h = Array2::zeros(zeros.raw_dim());
        let c_prev = if t > 0 {
            tape.c[t - 1].view()
        } else {
            zeros.view()
        };
        cell::forward(kind, a.view_mut(), c_prev, c.view_mut(), h.view_mut());
        tape.gates.push(a);
        tape.c.push(c);
        tape.h.push(h);
    }

    /// Gradients of the maps (in parameter order) and of the gate bias, given
    /// `dL/dfeature`. Consumes the tape (the fused wiring reuses its `Z` buffer).
    fn backward_tape(
        &self,
        x: ArrayView3<'_, T>,
        masks: &Masks<T>,
        mut tape: Tape<T>,
        dfeature: ArrayView2<'_, T>,
    ) -> Result<Vec<ArrayD<T>>> {
        let (b, tn, n) = x.dim();
        let hn = self.config.hidden;
        let kind = self.config.gate;
        let zeros = Array2::<T>::zeros((b, hn));
        let mut dh_rec = Array2::<T>::zeros((b, hn));
        let mut dc = Array2::<T>::zeros((b, hn));
        let mut dbias = Array1::<T>::zeros(4 * hn);
        let mut dgain = Array1::<T>::zeros(4 * hn);
        let inv_t = T::cast(1.0 / tn as f64);
        let mut da_all = Array3::<T>::zeros((b, tn, 4 * hn));
        let mut rec_grads: Option<Vec<ArrayD<T>>> = None;
        for t in (0..tn).rev() {
            let mut dh = std::mem::replace(&mut dh_rec, Array2::zeros((b, hn)));
            match self.config.pooling {
                Pooling::Last if t == tn - 1 => dh += &dfeature,
                Pooling::Last => {}
                Pooling::Mean => dh.scaled_add(inv_t, &dfeature),
            }
            let c_prev = if t > 0 {
                tape.c[t - 1].view()
            } else {
                zeros.view()
            };
            let mut da = cell::backward(
                kind,
                tape.gates[t].view(),
                c_prev,
                tape.c[t].view(),
                dh.view(),
                dc.view_mut(),
            );
            dbias += &sum_rows(da.view());
            self.normalize_gates_backward(&tape, t, &mut da, &mut dgain);
            da_all.slice_mut(s![.., t, ..]).assign(&da);
            if t == 0 {
                continue;
            }
            dh_rec = match &self.maps {
                Maps::Separate { recurrent, .. } => {
                    let (dhd, g) = recurrent.backward(tape.hd[t - 1].view(), da.view())?;
                    accumulate(&mut rec_grads, g, recurrent.as_ref())?;
                    dhd
                }
                Maps::Fused { .. } => {
                    // dh~_{t-1} = da_t W_h.
                    let wh = tape.wh.as_ref().expect("fused wiring keeps W_h");
                    let mut dhd = Array2::zeros((b, hn));
                    matmul_into(
                        dhd.view_mut(),
                        da.view(),
                        wh.view(),
                        T::one(),
                        false,
                        gemm_par(b, hn, 4 * hn),
                    );
                    dhd
                }
            };
            if let Some(m) = &masks.h {
                dh_rec *= m;
            }
        }
        // The map gradients need every da_t: one product with a batch of B T rows.
        let da2 = da_all
            .view()
            .into_shape_with_order((b * tn, 4 * hn))
            .expect("contiguous");
        let mut grads = Vec::new();
        match &self.maps {
            Maps::Separate { input, recurrent } => {
                let xin = match &tape.xd {
                    Some(a) => a.view(),
                    None => x.view(),
                };
                let xs = xin.as_standard_layout();
                let x2 = xs
                    .view()
                    .into_shape_with_order((b * tn, n))
                    .expect("contiguous");
                let mut gin = None;
                accumulate(&mut gin, input.backward_params(x2, da2)?, input.as_ref())?;
                grads.extend(gin.expect("set above"));
                // With T = 1 the recurrent map never acts: its gradient is zero.
                grads.extend(rec_grads.unwrap_or_else(|| zeros_like(recurrent.as_ref())));
            }
            Maps::Fused { map, .. } => {
                // dL/dW = sum_t da_t^T z_t with z_t = [x~_t ; h~_{t-1}]: complete Z with
                // the recurrent inputs and take the parameter gradients in one pass.
                let mut z = tape.z.take().expect("fused wiring keeps Z");
                let off = self.fused_h_offset();
                for (t, hd) in tape.hd.iter().enumerate() {
                    for (bi, h) in hd.rows().into_iter().enumerate() {
                        z.slice_mut(s![bi * tn + t + 1, off..off + hn]).assign(&h);
                    }
                }
                let mut g = None;
                accumulate(&mut g, map.backward_params(z.view(), da2)?, map.as_ref())?;
                grads.extend(g.expect("set above"));
            }
        }
        grads.push(dbias.into_dyn());
        if self.gain.is_some() {
            grads.push(dgain.into_dyn());
        }
        Ok(grads)
    }

    /// Mean softmax cross-entropy of the batch `x` (`B x T x N`) against `labels`, its
    /// gradient with respect to every parameter, the logits and the number of correct
    /// predictions.
    ///
    /// `dropout_seed`: `None` evaluates without dropout; `Some(seed)` is a training pass
    /// whose dropout masks (if the configuration asks for dropout) are drawn from `seed`,
    /// so the same seed gives the same masks (and [`loss`](Self::loss) with the same seed
    /// evaluates the same function).
    ///
    /// # Errors
    /// [`Error::Empty`] for an empty batch or sequence; [`Error::ShapeMismatch`] if `x`
    /// does not have `N` features or `labels` does not have `B` entries;
    /// [`Error::InvalidParameter`] for a label `>= C`; [`Error::NonFinite`] for NaN or
    /// infinite inputs; errors of the maps.
    pub fn loss_and_grad(
        &self,
        x: ArrayView3<'_, T>,
        labels: &[usize],
        dropout_seed: Option<u64>,
    ) -> Result<StepOutput<T>> {
        self.check_input(&x)?;
        self.check_labels(x.dim().0, labels)?;
        let masks = self.masks(x.dim().0, dropout_seed);
        let tape = self.forward_tape(x, &masks)?;
        let logits = self.head.forward(tape.feature.view())?;
        let (loss, correct, dlogits) = softmax_cross_entropy(logits.view(), labels);
        let (dfeature, head_grads) = self.head.backward(tape.feature.view(), dlogits.view())?;
        let mut tensors = self.backward_tape(x, &masks, tape, dfeature.view())?;
        tensors.extend(head_grads);
        Ok(StepOutput {
            loss,
            correct,
            logits,
            grads: Gradients { tensors },
        })
    }

    /// The loss of [`loss_and_grad`](Self::loss_and_grad) without the backward pass.
    ///
    /// # Errors
    /// As [`loss_and_grad`](Self::loss_and_grad).
    pub fn loss(
        &self,
        x: ArrayView3<'_, T>,
        labels: &[usize],
        dropout_seed: Option<u64>,
    ) -> Result<f64> {
        self.check_input(&x)?;
        self.check_labels(x.dim().0, labels)?;
        let masks = self.masks(x.dim().0, dropout_seed);
        let tape = self.forward_tape(x, &masks)?;
        let logits = self.head.forward(tape.feature.view())?;
        Ok(softmax_cross_entropy(logits.view(), labels).0)
    }

    /// The logits (`B x C`) of a batch, without dropout.
    ///
    /// # Errors
    /// As [`loss_and_grad`](Self::loss_and_grad) for the input.
    pub fn logits(&self, x: ArrayView3<'_, T>) -> Result<Array2<T>> {
        self.check_input(&x)?;
        let masks = self.masks(x.dim().0, None);
        let tape = self.forward_tape(x, &masks)?;
        self.head.forward(tape.feature.view())
    }

    /// The predicted class of every clip in the batch.
    ///
    /// # Errors
    /// As [`logits`](Self::logits).
    pub fn predict(&self, x: ArrayView3<'_, T>) -> Result<Vec<usize>> {
        Ok(self
            .logits(x)?
            .axis_iter(Axis(0))
            .map(|r| argmax(r.iter().copied()))
            .collect())
    }
}

/// `ε` of the gate normalisation, added to each gate's variance.
const GATE_NORM_EPS: f64 = 1e-5;

/// Offset of `h` in `z = [x ; h ; 0]` or `[x ; 0 ; h]`.
pub(crate) fn h_offset(n: usize, h: usize, p: usize, pad: PadPosition) -> usize {
    match pad {
        PadPosition::End => n,
        PadPosition::AfterInput => p - h,
    }
}

/// `h ⊙ mask` (recurrent dropout), or a copy of `h` without dropout.
fn dropped<T: Scalar>(h: &Array2<T>, mask: &Option<Array2<T>>) -> Array2<T> {
    match mask {
        Some(m) => h * m,
        None => h.clone(),
    }
}

fn zeros_like<T: Scalar>(map: &dyn LinearMap<T>) -> Vec<ArrayD<T>> {
    map.params()
        .iter()
        .map(|p| ArrayD::zeros(p.raw_dim()))
        .collect()
}

/// Adds the gradients `g` of `map` into `acc`, checking they match the map's parameters.
fn accumulate<T: Scalar>(
    acc: &mut Option<Vec<ArrayD<T>>>,
    g: Vec<ArrayD<T>>,
    map: &dyn LinearMap<T>,
) -> Result<()> {
    let params = map.params();
    if g.len() != params.len() || g.iter().zip(&params).any(|(a, p)| a.shape() != p.shape()) {
        return Err(Error::ShapeMismatch {
            context: "LinearMap::backward gradients (one per parameter tensor, same shapes)",
            expected: params.iter().flat_map(|p| p.shape().to_vec()).collect(),
            got: g.iter().flat_map(|a| a.shape().to_vec()).collect(),
        });
    }
    match acc {
        None => *acc = Some(g),
        Some(a) => {
            for (a, g) in a.iter_mut().zip(g) {
                *a += &g;
            }
        }
    }
    Ok(())
}
