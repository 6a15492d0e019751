//! The classifier head and the softmax cross-entropy loss.
//!
//! `logits = W_c h + b_c` with `W_c` of shape `C x H` (any [`LinearMap`], dense by
//! default) and `b_c` of length `C`; the loss of a batch is the mean over its rows of
//! `-log softmax(logits)[y]`, whose gradient is `(softmax(logits) - onehot(y)) / B`.

use ndarray::{Array1, Array2, ArrayView2, ArrayViewD, ArrayViewMutD, Axis};

use crate::matrices::{DenseMatrix, LinearMap};
use crate::{Error, Result, Scalar};

/// A linear classifier `logits = W_c h + b_c` over `C >= 2` classes.
#[derive(Clone, Debug)]
pub struct Classifier<T: Scalar> {
    map: Box<dyn LinearMap<T>>,
    bias: Array1<T>,
}

impl<T: Scalar> Classifier<T> {
    /// Wraps a map `W_c` (`C x H`, `C = map.n_out()` classes) with a zero bias.
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] if the map has fewer than two outputs.
    pub fn new(map: Box<dyn LinearMap<T>>) -> Result<Self> {
        if map.n_out() < 2 {
            return Err(Error::param(
                "n_classes",
                format!("a classifier needs at least 2 classes, got {}", map.n_out()),
            ));
        }
        let bias = Array1::zeros(map.n_out());
        Ok(Self { map, bias })
    }

    /// A dense Glorot-initialised head over `hidden` features and `n_classes` classes.
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] if `n_classes < 2`; [`Error::Empty`] if `hidden` is 0.
    pub fn dense(hidden: usize, n_classes: usize, seed: u64) -> Result<Self> {
        if n_classes < 2 {
            return Err(Error::param(
                "n_classes",
                format!("a classifier needs at least 2 classes, got {n_classes}"),
            ));
        }
        Self::new(Box::new(DenseMatrix::glorot(n_classes, hidden, seed)?))
    }

    /// Number of classes `C`.
    pub fn n_classes(&self) -> usize {
        self.map.n_out()
    }

    /// Number of input features (must equal the LSTM's hidden size).
    pub fn n_in(&self) -> usize {
        self.map.n_in()
    }

    /// The weight map `W_c`.
    pub fn map(&self) -> &dyn LinearMap<T> {
        self.map.as_ref()
    }

    /// The bias `b_c`.
    pub fn bias(&self) -> &Array1<T> {
        &self.bias
    }

    /// Parameters of the map followed by the bias.
    pub(crate) fn params(&self) -> Vec<ArrayViewD<'_, T>> {
        let mut p = self.map.params();
        p.push(self.bias.view().into_dyn());
        p
    }

    pub(crate) fn params_mut(&mut self) -> Vec<ArrayViewMutD<'_, T>> {
        let mut p = self.map.params_mut();
        p.push(self.bias.view_mut().into_dyn());
        p
    }

    pub(crate) fn forward(&self, feature: ArrayView2<'_, T>) -> Result<Array2<T>> {
        let mut logits = self.map.apply(feature)?;
        logits += &self.bias;
        Ok(logits)
    }

    /// `(dfeature, grads of map params ++ [grad of bias])`.
    pub(crate) fn backward(
        &self,
        feature: ArrayView2<'_, T>,
        dlogits: ArrayView2<'_, T>,
    ) -> Result<(Array2<T>, Vec<ndarray::ArrayD<T>>)> {
        let (dfeature, mut grads) = self.map.backward(feature, dlogits)?;
        grads.push(sum_rows(dlogits).into_dyn());
        Ok((dfeature, grads))
    }
}

/// Column sums of a matrix, accumulated row after row (a fixed order, so bitwise
/// reproducible).
pub(crate) fn sum_rows<T: Scalar>(a: ArrayView2<'_, T>) -> Array1<T> {
    let mut s = Array1::zeros(a.ncols());
    for row in a.axis_iter(Axis(0)) {
        s += &row;
    }
    s
}

/// Mean softmax cross-entropy of `logits` (`B x C`) against `labels`, the number of rows
/// whose arg-max equals the label, and `dL/dlogits = (softmax - onehot) / B`.
pub(crate) fn softmax_cross_entropy<T: Scalar>(
    logits: ArrayView2<'_, T>,
    labels: &[usize],
) -> (f64, usize, Array2<T>) {
    let b = logits.nrows();
    let mut dlogits = Array2::zeros(logits.raw_dim());
    let mut loss = 0.0;
    let mut correct = 0;
    for ((row, mut drow), &y) in logits
        .axis_iter(Axis(0))
        .zip(dlogits.axis_iter_mut(Axis(0)))
        .zip(labels)
    {
        let m = row.iter().fold(f64::NEG_INFINITY, |m, v| m.max(v.as_f64()));
        let lse = m + row.iter().map(|v| (v.as_f64() - m).exp()).sum::<f64>().ln();
        loss += lse - row[y].as_f64();
        if argmax(row.iter().copied()) == y {
            correct += 1;
        }
        for (k, (d, v)) in drow.iter_mut().zip(row.iter()).enumerate() {
            let p = (v.as_f64() - lse).exp();
            let t = if k == y { 1.0 } else { 0.0 };
            *d = T::cast((p - t) / b as f64);
        }
    }
    (loss / b as f64, correct, dlogits)
}

/// Index of the first largest value.
pub(crate) fn argmax<T: Scalar>(xs: impl Iterator<Item = T>) -> usize {
    let mut best = (0, T::neg_infinity());
    for (k, v) in xs.enumerate() {
        if v > best.1 {
            best = (k, v);
        }
    }
    best.0
}
