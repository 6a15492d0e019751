//! Configuration of the LSTM models: sizes, gate nonlinearity, pooling, dropout, wiring.

use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// The nonlinearity of the three sigmoid gates (forget, input, output).
///
/// The cell candidate always uses `tanh`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum GateActivation {
    /// The logistic function `s(a) = 1 / (1 + e^{-a})`.
    #[default]
    Sigmoid,
    /// Keras' piecewise-linear `s(a) = clamp(0.2 a + 0.5, 0, 1)` (derivative 0.2 on
    /// `|a| < 2.5`, 0 outside), cheaper on small devices.
    HardSigmoid,
}

/// What the classifier head sees.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Pooling {
    /// The last hidden state `h_T` (the protocol of the TT/BT/TR/HT/FDHT-LSTM papers).
    #[default]
    Last,
    /// The mean over time `(1/T) sum_t h_t`.
    Mean,
}

/// Where the zero columns go when the fused map's input length `P` exceeds `N + H`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum PadPosition {
    /// `z_t = [x_t ; h_{t-1} ; 0]`: the hidden state follows the input directly.
    #[default]
    End,
    /// `z_t = [x_t ; 0 ; h_{t-1}]`: the input is padded to `P - H`, then the hidden state
    /// (the hidden state occupies the last `H` positions).
    AfterInput,
}

/// How the LSTM's weights are arranged.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Wiring {
    /// An input map `W_x` (`4H x N`) and a recurrent map `U` (`4H x H`):
    /// `a_t = W_x x_t + U h_{t-1} + b`. The dense LSTM and the TT-/TR-/BT-/HT-LSTM
    /// baselines (input map tensorized, recurrent map dense).
    Separate,
    /// One map `W` of shape `4H x P` (`P >= N + H`) applied to the zero-padded
    /// concatenation `z_t` of `x_t` and `h_{t-1}`: `a_t = W z_t + b`. FDHT-LSTM ("integrate,
    /// then decompose") and the other fully decomposed variants.
    Fused {
        /// The padded input length `P` (the map's `n_in`).
        padded_len: usize,
        /// Where the `P - N - H` zero columns go.
        pad: PadPosition,
    },
}

/// Sizes and options of an LSTM classifier (the maps are chosen separately).
///
/// Gates are stacked in the order **forget, input, cell, output**: rows `0..H` of every
/// gate map and bias belong to the forget gate, `H..2H` to the input gate, `2H..3H` to the
/// cell candidate and `3H..4H` to the output gate.
///
/// # Example
/// ```
/// use tnet::models::{GateActivation, LstmConfig, Pooling};
/// let c = LstmConfig::new(57_600, 256)
///     .with_gate(GateActivation::HardSigmoid)
///     .with_pooling(Pooling::Mean)
///     .with_dropout(0.25, 0.25);
/// c.check().unwrap();
/// assert!(LstmConfig::new(10, 0).check().is_err());
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LstmConfig {
    /// Input features per time step `N`.
    pub n_input: usize,
    /// Hidden units `H`.
    pub hidden: usize,
    /// Nonlinearity of the forget, input and output gates.
    pub gate: GateActivation,
    /// What the classifier sees.
    pub pooling: Pooling,
    /// Initial value of the forget-gate bias (1 by default, Jozefowicz et al. 2015).
    pub forget_bias: f64,
    /// Dropout probability on the input path `x_t` (training only).
    pub input_dropout: f64,
    /// Dropout probability on the recurrent path `h_{t-1}` (training only).
    pub recurrent_dropout: f64,
    /// Gain `γ` on the recurrent input: the maps see `γ h~_{t-1}` in place of `h~_{t-1}`
    /// (1 by default). For the fused wiring it sets how much `h_{t-1}` weighs against
    /// `x_t` in `z_t = [x_t ; γ h_{t-1}]`, a balance a fully decomposed `W` cannot learn
    /// by scaling its recurrent block alone (that block shares its factors with the input
    /// columns); for the separate wiring it only rescales `U`. Model files written before
    /// this field existed load with 1, the gain they were trained with.
    #[serde(default = "unit_gain")]
    pub recurrent_gain: f64,
    /// Layer normalisation of the gate pre-activations (Ba, Kiros and Hinton 2016): each
    /// gate's `H` pre-activations `s = W z_t` (before the bias) are centred and scaled to
    /// unit variance per sample, then `a = γ ⊙ ŝ + b` with a learned gain `γ` (`4H`, ones
    /// at the start) beside the bias. It makes the gates independent of the scale of the
    /// product of cores, which drifts during training (off by default; model files written
    /// before the field existed load without it).
    #[serde(default)]
    pub gate_norm: bool,
}

/// The recurrent gain of configurations saved before the field existed.
fn unit_gain() -> f64 {
    1.0
}

impl LstmConfig {
    /// Sizes with the defaults: sigmoid gates, last-state pooling, forget bias 1, no
    /// dropout.
    pub fn new(n_input: usize, hidden: usize) -> Self {
        Self {
            n_input,
            hidden,
            gate: GateActivation::Sigmoid,
            pooling: Pooling::Last,
            forget_bias: 1.0,
            input_dropout: 0.0,
            recurrent_dropout: 0.0,
            recurrent_gain: 1.0,
            gate_norm: false,
        }
    }

    /// Switches the layer normalisation of the gate pre-activations on or off (see
    /// [`gate_norm`](Self::gate_norm)).
    ///
    /// ```
    /// use tnet::models::{Lstm, LstmConfig};
    /// let c = LstmConfig::new(6, 4).with_gate_norm(true);
    /// let m = Lstm::<f64>::dense(&c, 3, 0).unwrap();
    /// assert_eq!(m.gain().map(|g| g.len()), Some(16));
    /// ```
    pub fn with_gate_norm(mut self, on: bool) -> Self {
        self.gate_norm = on;
        self
    }

    /// Sets the gain `γ` on the recurrent input (see [`recurrent_gain`](Self::recurrent_gain)).
    ///
    /// ```
    /// use tnet::models::LstmConfig;
    /// let c = LstmConfig::new(57_600, 256);
    /// assert_eq!(c.recurrent_gain, 1.0);
    /// // Both parts of z_t = [x_t ; γ h_{t-1}] on the same norm scale: γ = sqrt(N / H).
    /// let balanced = c.with_recurrent_gain((57_600.0_f64 / 256.0).sqrt());
    /// assert_eq!(balanced.recurrent_gain, 15.0);
    /// assert!(balanced.with_recurrent_gain(0.0).check().is_err());
    /// ```
    pub fn with_recurrent_gain(mut self, gain: f64) -> Self {
        self.recurrent_gain = gain;
        self
    }

    /// Sets the gate nonlinearity.
    pub fn with_gate(mut self, gate: GateActivation) -> Self {
        self.gate = gate;
        self
    }

    /// Sets the pooling of the hidden states.
    pub fn with_pooling(mut self, pooling: Pooling) -> Self {
        self.pooling = pooling;
        self
    }

    /// Sets the dropout probabilities of the input and recurrent paths.
    pub fn with_dropout(mut self, input: f64, recurrent: f64) -> Self {
        self.input_dropout = input;
        self.recurrent_dropout = recurrent;
        self
    }

    /// Sets the initial forget-gate bias.
    pub fn with_forget_bias(mut self, b: f64) -> Self {
        self.forget_bias = b;
        self
    }

    /// Validates the configuration.
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] if a size is zero, a dropout probability is outside
    /// `[0, 1)` or the forget bias is not finite.
    pub fn check(&self) -> Result<()> {
        if self.n_input == 0 {
            return Err(Error::param("n_input", "the input size must be at least 1"));
        }
        if self.hidden == 0 {
            return Err(Error::param("hidden", "the hidden size must be at least 1"));
        }
        for (name, p) in [
            ("input_dropout", self.input_dropout),
            ("recurrent_dropout", self.recurrent_dropout),
        ] {
            if !(0.0..1.0).contains(&p) {
                return Err(Error::param(
                    name,
                    format!("a dropout probability must lie in [0, 1), got {p}"),
                ));
            }
        }
        let g = self.recurrent_gain;
        if !(g.is_finite() && g > 0.0) {
            return Err(Error::param(
                "recurrent_gain",
                format!("must be finite and positive, got {g}"),
            ));
        }
        if !self.forget_bias.is_finite() {
            return Err(Error::param(
                "forget_bias",
                format!("must be finite, got {}", self.forget_bias),
            ));
        }
        Ok(())
    }
}
