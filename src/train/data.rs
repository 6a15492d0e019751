//! Datasets of labelled sequences and batches (the splits are [`crate::data::Split`]).

use ndarray::{Array3, ArrayViewMut3, Axis};

use crate::{Error, Result, Scalar};

/// How a dataset should sample a clip's frames.
///
/// Video datasets pick `T` frames out of a longer clip: at sorted random positions for
/// training (a fresh draw every time, reproducible from `seed`), uniformly spaced for
/// evaluation. Datasets whose clips have exactly `T` frames ignore it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sampling {
    /// Training: random positions drawn from `seed` (the trainer derives it from the run
    /// seed and the step, so a resumed run draws the same frames).
    Train {
        /// Seed of this batch's draws.
        seed: u64,
    },
    /// Evaluation: deterministic positions.
    Eval,
}

/// A labelled set of clips, each a sequence of `T` feature vectors of length `N`.
///
/// Implemented in memory by [`InMemoryDataset`]; video sets (synthetic or on disk)
/// implement it elsewhere. Implementations must be deterministic: the same indices and
/// sampling give the same batch.
pub trait SequenceDataset<T: Scalar>: Send + Sync {
    /// Number of clips.
    fn n_clips(&self) -> usize;

    /// Number of classes; labels lie in `0..n_classes()`.
    fn n_classes(&self) -> usize;

    /// Time steps per clip `T`.
    fn seq_len(&self) -> usize;

    /// Features per time step `N`.
    fn n_features(&self) -> usize;

    /// Writes the clips `indices` into `x` (shape `(indices.len(), T, N)`, zeroed by the
    /// caller) and their labels into `labels` (length `indices.len()`).
    ///
    /// # Errors
    /// [`Error::IndexOutOfBounds`] for an index `>= n_clips()`; I/O or decoding errors of
    /// on-disk sets.
    fn fill_batch(
        &self,
        indices: &[usize],
        sampling: Sampling,
        x: ArrayViewMut3<'_, T>,
        labels: &mut [usize],
    ) -> Result<()>;
}

/// Allocates and fills one batch, checking what the dataset returns.
///
/// # Errors
/// Errors of [`SequenceDataset::fill_batch`]; [`Error::Corrupt`] if the dataset returns
/// a label `>= n_classes()`; [`Error::Empty`] for no indices.
pub fn load_batch<T: Scalar>(
    data: &dyn SequenceDataset<T>,
    indices: &[usize],
    sampling: Sampling,
) -> Result<(Array3<T>, Vec<usize>)> {
    if indices.is_empty() {
        return Err(Error::Empty {
            context: "load_batch indices",
            shape: vec![0],
        });
    }
    let mut x = Array3::zeros((indices.len(), data.seq_len(), data.n_features()));
    let mut labels = vec![0; indices.len()];
    data.fill_batch(indices, sampling, x.view_mut(), &mut labels)?;
    if let Some(&y) = labels.iter().find(|&&y| y >= data.n_classes()) {
        return Err(Error::corrupt(format!(
            "the dataset returned label {y} but declares {} classes",
            data.n_classes()
        )));
    }
    Ok((x, labels))
}

/// Clips held in memory: `x` of shape `(clips, T, N)` and one label per clip.
///
/// # Example
/// ```
/// use tnet::train::{InMemoryDataset, SequenceDataset};
/// let d = InMemoryDataset::<f32>::synthetic(12, 3, 4, 6, 0.1, 0).unwrap();
/// assert_eq!((d.n_clips(), d.n_classes(), d.seq_len(), d.n_features()), (12, 3, 4, 6));
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct InMemoryDataset<T> {
    x: Array3<T>,
    labels: Vec<usize>,
    n_classes: usize,
}

impl<T: Scalar> InMemoryDataset<T> {
    /// Wraps clips and labels.
    ///
    /// # Errors
    /// [`Error::Empty`] for no clips, steps or features; [`Error::ShapeMismatch`] if the
    /// number of labels differs from the number of clips; [`Error::InvalidParameter`] for
    /// fewer than 2 classes or a label out of range; [`Error::NonFinite`] for NaN or
    /// infinite features.
    pub fn try_new(x: Array3<T>, labels: Vec<usize>, n_classes: usize) -> Result<Self> {
        if x.is_empty() {
            return Err(Error::Empty {
                context: "InMemoryDataset clips (clips, time, features)",
                shape: x.shape().to_vec(),
            });
        }
        if labels.len() != x.dim().0 {
            return Err(Error::ShapeMismatch {
                context: "InMemoryDataset labels (one per clip)",
                expected: vec![x.dim().0],
                got: vec![labels.len()],
            });
        }
        if n_classes < 2 {
            return Err(Error::param(
                "n_classes",
                format!("at least 2 classes are needed, got {n_classes}"),
            ));
        }
        if let Some(&y) = labels.iter().find(|&&y| y >= n_classes) {
            return Err(Error::param(
                "labels",
                format!("label {y} is not below the number of classes {n_classes}"),
            ));
        }
        if let Some(index) = x.iter().position(|v| !v.is_finite()) {
            return Err(Error::NonFinite {
                context: "InMemoryDataset clips",
                index,
            });
        }
        Ok(Self {
            x: x.as_standard_layout().into_owned(),
            labels,
            n_classes,
        })
    }

    /// A synthetic set: each class has a random prototype sequence (`T x N`, standard
    /// normal); clip `i` has label `i mod n_classes` and is its class prototype plus
    /// `noise` times standard normal noise. All from `seed`.
    ///
    /// # Errors
    /// As [`try_new`](Self::try_new); [`Error::InvalidParameter`] for a negative or
    /// non-finite `noise`.
    pub fn synthetic(
        n_clips: usize,
        n_classes: usize,
        seq_len: usize,
        n_features: usize,
        noise: f64,
        seed: u64,
    ) -> Result<Self> {
        if !(noise >= 0.0 && noise.is_finite()) {
            return Err(Error::param(
                "noise",
                format!("must be finite and non-negative, got {noise}"),
            ));
        }
        let mut g = crate::dense::rng(seed);
        let protos = crate::dense::random_normal_with::<T, _>(
            &[n_classes.max(1), seq_len, n_features],
            &mut g,
        );
        let eps = crate::dense::random_normal_with::<T, _>(&[n_clips, seq_len, n_features], &mut g);
        let labels: Vec<usize> = (0..n_clips).map(|i| i % n_classes.max(1)).collect();
        let mut x = Array3::zeros((n_clips, seq_len, n_features));
        for (i, mut clip) in x.axis_iter_mut(Axis(0)).enumerate() {
            let p = protos.index_axis(Axis(0), labels[i]);
            let e = eps.index_axis(Axis(0), i);
            clip.assign(&(&p + &(&e * T::cast(noise))));
        }
        Self::try_new(x, labels, n_classes)
    }

    /// The labels.
    pub fn labels(&self) -> &[usize] {
        &self.labels
    }
}

impl<T: Scalar> SequenceDataset<T> for InMemoryDataset<T> {
    fn n_clips(&self) -> usize {
        self.x.dim().0
    }

    fn n_classes(&self) -> usize {
        self.n_classes
    }

    fn seq_len(&self) -> usize {
        self.x.dim().1
    }

    fn n_features(&self) -> usize {
        self.x.dim().2
    }

    fn fill_batch(
        &self,
        indices: &[usize],
        _sampling: Sampling,
        mut x: ArrayViewMut3<'_, T>,
        labels: &mut [usize],
    ) -> Result<()> {
        let want = (indices.len(), self.seq_len(), self.n_features());
        if x.dim() != want || labels.len() != indices.len() {
            return Err(Error::ShapeMismatch {
                context: "InMemoryDataset::fill_batch output (batch, time, features)",
                expected: vec![want.0, want.1, want.2],
                got: x.shape().to_vec(),
            });
        }
        for (k, &i) in indices.iter().enumerate() {
            if i >= self.n_clips() {
                return Err(Error::IndexOutOfBounds {
                    index: vec![i],
                    shape: vec![self.n_clips()],
                });
            }
            x.index_axis_mut(Axis(0), k)
                .assign(&self.x.index_axis(Axis(0), i));
            labels[k] = self.labels[i];
        }
        Ok(())
    }
}
