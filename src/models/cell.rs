//! The LSTM cell's elementwise kernels (forward and backward), row-parallel.
//!
//! With pre-activations `a = [a_f; a_i; a_g; a_o]` (each of length `H`, gate order
//! forget, input, cell, output) and gate nonlinearity `s`:
//!
//! ```text
//! f = s(a_f)   i = s(a_i)   g = tanh(a_g)   o = s(a_o)
//! c_t = f * c_{t-1} + i * g          h_t = o * tanh(c_t)
//! ```
//!
//! Backward, given `dh = dL/dh_t` and `dc = dL/dc_t` from the future:
//!
//! ```text
//! dc  <- dc + dh * o * (1 - tanh(c_t)^2)
//! da_f = dc * c_{t-1} * s'(f)   da_i = dc * g * s'(i)   da_g = dc * i * (1 - g^2)
//! da_o = dh * tanh(c_t) * s'(o)                      dc_{t-1} = dc * f
//! ```
//!
//! where `s'` is written in terms of the gate's output (`s(1 - s)` for the sigmoid,
//! `0.2` strictly inside `(0, 1)` for the hard sigmoid). Rows (samples) are independent,
//! so large batches are spread over rayon's threads; each entry is computed by exactly
//! one thread with the same operations, so results do not depend on scheduling.

use ndarray::{Array2, ArrayView1, ArrayView2, ArrayViewMut1, ArrayViewMut2, Zip};

use super::config::GateActivation;
use crate::Scalar;

/// Entries (rows x hidden) from which the cell kernels run on rayon's threads.
const PAR_CELL_WORK: usize = 1 << 14;

#[inline]
pub(crate) fn gate<T: Scalar>(kind: GateActivation, a: T) -> T {
    match kind {
        GateActivation::Sigmoid => {
            if a >= T::zero() {
                T::one() / (T::one() + (-a).exp())
            } else {
                let e = a.exp();
                e / (T::one() + e)
            }
        }
        GateActivation::HardSigmoid => (T::cast(0.2) * a + T::cast(0.5))
            .max(T::zero())
            .min(T::one()),
    }
}

#[inline]
fn gate_grad<T: Scalar>(kind: GateActivation, s: T) -> T {
    match kind {
        GateActivation::Sigmoid => s * (T::one() - s),
        GateActivation::HardSigmoid => {
            if s > T::zero() && s < T::one() {
                T::cast(0.2)
            } else {
                T::zero()
            }
        }
    }
}

fn forward_row<T: Scalar>(
    kind: GateActivation,
    mut a: ArrayViewMut1<'_, T>,
    c_prev: ArrayView1<'_, T>,
    mut c: ArrayViewMut1<'_, T>,
    mut h: ArrayViewMut1<'_, T>,
) {
    let hn = c.len();
    for j in 0..hn {
        let f = gate(kind, a[j]);
        let i = gate(kind, a[hn + j]);
        let g = a[2 * hn + j].tanh();
        let o = gate(kind, a[3 * hn + j]);
        a[j] = f;
        a[hn + j] = i;
        a[2 * hn + j] = g;
        a[3 * hn + j] = o;
        let cj = f * c_prev[j] + i * g;
        c[j] = cj;
        h[j] = o * cj.tanh();
    }
}

/// Turns pre-activations `a` (`B x 4H`) into gate values in place and writes `c_t`, `h_t`
/// (`B x H`).
pub(crate) fn forward<T: Scalar>(
    kind: GateActivation,
    mut a: ArrayViewMut2<'_, T>,
    c_prev: ArrayView2<'_, T>,
    mut c: ArrayViewMut2<'_, T>,
    mut h: ArrayViewMut2<'_, T>,
) {
    let zip = Zip::from(a.rows_mut())
        .and(c_prev.rows())
        .and(c.rows_mut())
        .and(h.rows_mut());
    if c_prev.len() >= PAR_CELL_WORK {
        zip.par_for_each(|a, cp, c, h| forward_row(kind, a, cp, c, h));
    } else {
        zip.for_each(|a, cp, c, h| forward_row(kind, a, cp, c, h));
    }
}

fn backward_row<T: Scalar>(
    kind: GateActivation,
    gates: ArrayView1<'_, T>,
    c_prev: ArrayView1<'_, T>,
    c: ArrayView1<'_, T>,
    dh: ArrayView1<'_, T>,
    mut dc: ArrayViewMut1<'_, T>,
    mut da: ArrayViewMut1<'_, T>,
) {
    let hn = c.len();
    for j in 0..hn {
        let (f, i, g, o) = (
            gates[j],
            gates[hn + j],
            gates[2 * hn + j],
            gates[3 * hn + j],
        );
        let tc = c[j].tanh();
        let dcj = dc[j] + dh[j] * o * (T::one() - tc * tc);
        da[j] = dcj * c_prev[j] * gate_grad(kind, f);
        da[hn + j] = dcj * g * gate_grad(kind, i);
        da[2 * hn + j] = dcj * i * (T::one() - g * g);
        da[3 * hn + j] = dh[j] * tc * gate_grad(kind, o);
        dc[j] = dcj * f;
    }
}

/// Backward through one cell step: given the gate values, `c_{t-1}`, `c_t`, `dh` and
/// `dc` (`dL/dc_t` from the future, overwritten with `dL/dc_{t-1}`), returns `da`
/// (`B x 4H`).
pub(crate) fn backward<T: Scalar>(
    kind: GateActivation,
    gates: ArrayView2<'_, T>,
    c_prev: ArrayView2<'_, T>,
    c: ArrayView2<'_, T>,
    dh: ArrayView2<'_, T>,
    mut dc: ArrayViewMut2<'_, T>,
) -> Array2<T> {
    let mut da = Array2::zeros(gates.raw_dim());
    let zip = Zip::from(gates.rows())
        .and(c_prev.rows())
        .and(c.rows())
        .and(dh.rows())
        .and(dc.rows_mut())
        .and(da.rows_mut());
    if c.len() >= PAR_CELL_WORK {
        zip.par_for_each(|g, cp, c, dh, dc, da| backward_row(kind, g, cp, c, dh, dc, da));
    } else {
        zip.for_each(|g, cp, c, dh, dc, da| backward_row(kind, g, cp, c, dh, dc, da));
    }
    da
}
