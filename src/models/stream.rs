//! Streaming inference: one frame in, the state out.
//!
//! A deployed model does not hold a whole clip: [`Lstm::step`] advances an
//! [`LstmState`] by one frame (for a batch of independent streams) with the same cell as
//! training (no dropout), and [`Lstm::state_logits`] classifies what has been seen so
//! far. After `T` steps the logits equal those of [`Lstm::logits`] on the whole clip (up
//! to the rounding of the batched input product).
//!
//! Cost per step and stream: one input (or fused) map product and one recurrent product
//! plus `O(H)` elementwise work; memory: the state (`2H`, `3H` with mean pooling) and
//! the step's scratch, see [`Lstm::memory_report`].

use ndarray::{Array2, ArrayView2, s};

use super::cell;
use super::config::Pooling;
use super::lstm::Lstm;
use crate::{Error, Result, Scalar};

/// The recurrent state of a batch of streams.
#[derive(Clone, Debug, PartialEq)]
pub struct LstmState<T> {
    /// Hidden states `h_t` (`B x H`).
    pub h: Array2<T>,
    /// Cell states `c_t` (`B x H`).
    pub c: Array2<T>,
    /// Running sum of `h_1 .. h_t` (used with mean pooling).
    pub h_sum: Array2<T>,
    /// Number of frames consumed.
    pub steps: usize,
}

impl<T: Scalar> Lstm<T> {
    /// The initial state (`h_0 = c_0 = 0`) of `batch` streams.
    pub fn zero_state(&self, batch: usize) -> LstmState<T> {
        let h = self.config().hidden;
        LstmState {
            h: Array2::zeros((batch, h)),
            c: Array2::zeros((batch, h)),
            h_sum: Array2::zeros((batch, h)),
            steps: 0,
        }
    }

    /// Advances `state` by one frame `x_t` (`B x N`, one row per stream).
    ///
    /// # Errors
    /// [`Error::ShapeMismatch`] if `x_t` or the state does not fit the model;
    /// [`Error::NonFinite`] for NaN or infinite inputs; errors of the maps.
    ///
    /// # Example
    /// ```
    /// use tnet::models::{Lstm, LstmConfig};
    /// let m = Lstm::<f64>::dense(&LstmConfig::new(5, 3), 2, 0).unwrap();
    /// let clip = tnet::dense::random_normal::<f64>(&[1, 4, 5], 1)
    ///     .into_dimensionality::<ndarray::Ix3>().unwrap();
    /// let mut st = m.zero_state(1);
    /// for t in 0..4 {
    ///     m.step(&mut st, clip.slice(ndarray::s![.., t, ..])).unwrap();
    /// }
    /// let a = m.state_logits(&st).unwrap();
    /// let b = m.logits(clip.view()).unwrap();
    /// assert!((&a - &b).iter().all(|d| d.abs() < 1e-12));
    /// ```
    pub fn step(&self, state: &mut LstmState<T>, x_t: ArrayView2<'_, T>) -> Result<()> {
        let (n, hn) = (self.config().n_input, self.config().hidden);
        let b = state.h.nrows();
        if x_t.dim() != (b, n) {
            return Err(Error::ShapeMismatch {
                context: "Lstm::step frame (streams, features)",
                expected: vec![b, n],
                got: x_t.shape().to_vec(),
            });
        }
        if state.h.ncols() != hn || state.c.dim() != (b, hn) || state.h_sum.dim() != (b, hn) {
            return Err(Error::ShapeMismatch {
                context: "Lstm::step state (streams, hidden)",
                expected: vec![b, hn],
                got: state.c.shape().to_vec(),
            });
        }
        if let Some(index) = x_t.iter().position(|v| !v.is_finite()) {
            return Err(Error::NonFinite {
                context: "Lstm::step frame",
                index,
            });
        }
        let gain = T::cast(self.recurrent_gain());
        let mut a = if let (Some(input), Some(rec)) = (self.input_map(), self.recurrent_map()) {
            // U (γ h) = γ (U h): no scaled copy of the state.
            let mut a = input.apply(x_t)?;
            a.scaled_add(gain, &rec.apply(state.h.view())?);
            a
        } else {
            let map = self.fused_map().expect("fused wiring");
            let off = self.fused_h_offset();
            let mut z = Array2::zeros((b, map.n_in()));
            z.slice_mut(s![.., 0..n]).assign(&x_t);
            let mut zh = z.slice_mut(s![.., off..off + hn]);
            zh.assign(&state.h);
            zh *= gain;
            map.apply(z.view())?
        };
        if self.normalize_gates(&mut a).is_none() {
            a += self.bias();
        }
        let c_prev = std::mem::replace(&mut state.c, Array2::zeros((b, hn)));
        cell::forward(
            self.config().gate,
            a.view_mut(),
            c_prev.view(),
            state.c.view_mut(),
            state.h.view_mut(),
        );
        if self.config().pooling == Pooling::Mean {
            state.h_sum += &state.h;
        }
        state.steps += 1;
        Ok(())
    }

    /// The logits (`B x C`) of what the streams have seen so far.
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] if no frame has been consumed; [`Error::ShapeMismatch`]
    /// for a state of another model.
    pub fn state_logits(&self, state: &LstmState<T>) -> Result<Array2<T>> {
        if state.steps == 0 {
            return Err(Error::param(
                "state",
                "no frame has been consumed yet: call Lstm::step first",
            ));
        }
        if state.h.ncols() != self.config().hidden {
            return Err(Error::ShapeMismatch {
                context: "Lstm::state_logits state (streams, hidden)",
                expected: vec![state.h.nrows(), self.config().hidden],
                got: state.h.shape().to_vec(),
            });
        }
        let feature = match self.config().pooling {
            Pooling::Last => state.h.clone(),
            Pooling::Mean => &state.h_sum * T::cast(1.0 / state.steps as f64),
        };
        self.classifier().forward(feature.view())
    }
}
