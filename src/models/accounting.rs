//! Parameter accounting, compression ratios and memory footprints.
//!
//! The reference for every ratio is the dense LSTM of the same sizes (`N` inputs, `H`
//! hidden units, `C` classes):
//!
//! ```text
//! input map 4HN,  recurrent map 4H^2,  bias 4H,  classifier CH + C
//! ```
//!
//! At the UCF11 sizes (`N = 57,600`, `H = 256`) that is 58,982,400 + 262,144 =
//! 59,244,544 weights and 1,024 biases.

use serde::{Deserialize, Serialize};

use super::config::Pooling;
use super::lstm::{Lstm, Part};
use crate::Scalar;

/// Number of stored scalars per part of an LSTM classifier.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ParamCount {
    /// Input-to-hidden map `W_x` (separate wiring).
    pub input_map: usize,
    /// Hidden-to-hidden map `U` (separate wiring).
    pub recurrent_map: usize,
    /// The one map on `[x ; h]` (fused wiring).
    pub fused_map: usize,
    /// Gate bias `4H`.
    pub bias: usize,
    /// Classifier weights and bias.
    pub classifier: usize,
}

impl ParamCount {
    /// The dense LSTM over `n_input` features with `hidden` units and a dense classifier
    /// over `n_classes` classes (0 for none), in closed form (nothing is allocated).
    ///
    /// # Example
    /// ```
    /// use tnet::models::ParamCount;
    /// let p = ParamCount::dense_lstm(57_600, 256, 0);
    /// assert_eq!(p.weights(), 59_244_544);
    /// assert_eq!(p.bias, 1_024);
    /// ```
    pub fn dense_lstm(n_input: usize, hidden: usize, n_classes: usize) -> Self {
        Self {
            input_map: 4 * hidden * n_input,
            recurrent_map: 4 * hidden * hidden,
            fused_map: 0,
            bias: 4 * hidden,
            classifier: n_classes * hidden + n_classes,
        }
    }

    /// Weights of the recurrent layer (maps only: no bias, no classifier).
    pub fn weights(&self) -> usize {
        self.input_map + self.recurrent_map + self.fused_map
    }

    /// The recurrent layer: maps and bias, without the classifier.
    pub fn lstm(&self) -> usize {
        self.weights() + self.bias
    }

    /// Everything.
    pub fn total(&self) -> usize {
        self.lstm() + self.classifier
    }
}

/// How many times fewer parameters a model has than the dense LSTM of the same sizes.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct CompressionRatio {
    /// `dense.lstm() / model.lstm()`: recurrent layers with biases, no classifiers.
    pub without_classifier: f64,
    /// `dense.total() / model.total()`: both with their classifiers.
    pub with_classifier: f64,
    /// `dense.weights() / model.weights()`: weight maps only.
    pub weights_only: f64,
}

/// Memory a model needs, in bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemoryReport {
    /// The parameters.
    pub params: usize,
    /// The streaming state of one sequence (`h`, `c`, and the running sum of `h` with
    /// mean pooling).
    pub stream_state: usize,
    /// Scratch of one streaming step for one sequence: the map input (`x`, or `z` of
    /// length `P`), the `4H` gate pre-activations and the logits.
    pub stream_step: usize,
    /// Activations stored for backpropagation through time for a batch of `B` clips of
    /// `T` steps (as passed to [`Lstm::memory_report`]): gates, `c_t`, `h_t`, map inputs
    /// (and the normalised pre-activations with [`LstmConfig::gate_norm`](super::LstmConfig::gate_norm)).
    pub training_activations: usize,
}

impl<T: Scalar> Lstm<T> {
    /// Stored scalars per part.
    pub fn param_count(&self) -> ParamCount {
        let mut c = ParamCount::default();
        for (spec, p) in self.param_specs().iter().zip(self.params()) {
            let n = p.len();
            match spec.part {
                Part::InputMap => c.input_map += n,
                Part::RecurrentMap => c.recurrent_map += n,
                Part::FusedMap => c.fused_map += n,
                Part::Bias | Part::GateGain => c.bias += n,
                Part::ClassifierMap | Part::ClassifierBias => c.classifier += n,
            }
        }
        c
    }

    /// The compression ratio against the dense LSTM with the same `N`, `H` and classes.
    ///
    /// # Example
    /// ```
    /// use tnet::models::{Lstm, LstmConfig};
    /// let m = Lstm::<f32>::dense(&LstmConfig::new(8, 4), 3, 0).unwrap();
    /// let r = m.compression_ratio();
    /// assert_eq!((r.with_classifier, r.without_classifier), (1.0, 1.0));
    /// ```
    pub fn compression_ratio(&self) -> CompressionRatio {
        let dense = ParamCount::dense_lstm(
            self.config().n_input,
            self.config().hidden,
            self.n_classes(),
        );
        let me = self.param_count();
        CompressionRatio {
            without_classifier: dense.lstm() as f64 / me.lstm() as f64,
            with_classifier: dense.total() as f64 / me.total() as f64,
            weights_only: dense.weights() as f64 / me.weights() as f64,
        }
    }

    /// The memory footprint: parameters, streaming state and scratch per sequence, and
    /// the activations of training on `batch` clips of `seq_len` steps.
    pub fn memory_report(&self, batch: usize, seq_len: usize) -> MemoryReport {
        let sz = std::mem::size_of::<T>();
        let (n, h) = (self.config().n_input, self.config().hidden);
        let mean = usize::from(self.config().pooling == Pooling::Mean);
        let map_in = self.fused_map().map_or(n, |m| m.n_in());
        // Per step and clip: gates 4H, c_t H, h_t H, the map input (z_t of length P, or
        // x~_t of N plus h~_{t-1} of H); with gate normalisation the normalised
        // pre-activations 4H and one inverse deviation per gate.
        let per_step = 6 * h
            + match self.fused_map() {
                Some(_) => map_in,
                None => n + h,
            }
            + if self.gain().is_some() { 4 * h + 4 } else { 0 };
        MemoryReport {
            params: self.n_params() * sz,
            stream_state: (2 + mean) * h * sz,
            stream_step: (map_in + 4 * h + self.n_classes()) * sz,
            training_activations: batch * seq_len * per_step * sz,
        }
    }
}
