//! Video data for sequence models: a built-in procedural dataset, a loader for frame
//! folders on disk, seeded splits, and the one trait a training loop consumes.
//!
//! | item | what it is |
//! |---|---|
//! | [`VideoDataset`] | the trait: `len`, labels, and `fill_clip` writing one clip as `T x N` `f32` |
//! | [`fill_batch`] | fills a `(B, T, N)` batch in parallel into a caller-owned buffer |
//! | [`synthetic`] | [`SyntheticVideo`]: procedural clips whose classes need time to tell apart |
//! | [`folder`] | [`FolderDataset`]: `class/[group/]clip/frame.{png,jpg}` trees, cached as `u8` |
//! | [`image`] | PNG/JPEG frames decoded to RGB or grey, resized, and PNG encoded |
//! | [`split`] | seeded hold-out, k-fold and group-aware splits, optionally stratified |
//!
//! # Conventions
//! A clip is `T` frames of `N = H * W * C` values. A frame is stored row-major as
//! `(H, W, C)` (height outermost, channels fastest, the layout of an RGB image buffer), and
//! a clip as `(T, H, W, C)`; a batch as `(B, T, H, W, C)`. Pixels are held as `u8` and
//! handed to models centred and scaled, `x = (p - 128) / 128`, in `[-1, 127/128]`
//! ([`pixel_to_f32`]). Labels are `0..n_classes` in the order of
//! [`VideoDataset::class_names`].
//!
//! Randomness is always seeded and never depends on thread scheduling: a clip's random
//! frame positions depend only on `(epoch_seed, index)`, a synthetic clip only on
//! `(seed, index)`.
//!
//! # Example: a training-style loop over batches without per-batch allocation
//! ```
//! # #[cfg(feature = "video")] {
//! use tnet::data::{VideoDataset, SyntheticConfig, SyntheticVideo, fill_batch, split};
//! let data = SyntheticVideo::new(SyntheticConfig::quick()).unwrap();
//! let labels = tnet::data::labels(&data);
//! let parts = split::holdout(data.len(), 0.2, 7, Some(&labels)).unwrap();
//! let (b, t, n) = (16, data.frames(), data.frame_len());
//! let mut x = vec![0.0f32; b * t * n];
//! let mut y = vec![0usize; b];
//! for epoch in 0..2u64 {
//!     for chunk in parts.train.chunks(b).take(2) {
//!         let rows = chunk.len();
//!         fill_batch(&data, chunk, true, epoch, &mut x[..rows * t * n], &mut y[..rows]).unwrap();
//!         assert!(x[..rows * t * n].iter().all(|v| (-1.0..1.0).contains(v)));
//!     }
//! }
//! # }
//! ```

#[cfg(feature = "video")]
pub mod folder;
#[cfg(feature = "video")]
pub mod image;
pub mod split;
#[cfg(feature = "video")]
pub mod synthetic;

use rayon::prelude::*;

use ndarray::{ArrayViewMut3, Axis};

use crate::train::{Sampling, SequenceDataset};
use crate::{Error, Result, Scalar};

#[cfg(feature = "video")]
pub use folder::{
    FolderConfig, FolderDataset, GroupLevel, LoadIssue, LoadReport, MixedLayout, OnProblem,
};
pub use split::Split;
#[cfg(feature = "video")]
pub use synthetic::{Pattern, SyntheticConfig, SyntheticVideo};

/// A labelled set of fixed-length video clips held as pixels.
///
/// Every `VideoDataset` is also a [`train::SequenceDataset`](crate::train::SequenceDataset)
/// in either precision (a blanket implementation converts the centred `f32` frames to `T`
/// per batch), so [`train::fit`](crate::train::fit) trains on it directly.
///
/// Implementations are shared across threads ([`fill_batch`] calls
/// [`fill_clip`](Self::fill_clip) in parallel), so `fill_clip` takes `&self` and must be
/// deterministic in its arguments.
pub trait VideoDataset: Send + Sync {
    /// Number of clips.
    fn len(&self) -> usize;
    /// `true` if the dataset has no clips.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Number of classes.
    fn n_classes(&self) -> usize;
    /// Class names, indexed by label.
    fn class_names(&self) -> Vec<String>;
    /// Frames per clip, `T`.
    fn frames(&self) -> usize;
    /// Values per frame, `N = H * W * C`.
    fn frame_len(&self) -> usize;
    /// Label of clip `index` (`< n_classes`).
    ///
    /// # Panics
    /// May panic if `index >= len()`.
    fn label(&self, index: usize) -> usize;
    /// Writes clip `index` as T x N f32 values (centred, scaled) into `out` (len T*N).
    /// `train` selects random (seeded by `epoch_seed`) vs uniform frame positions where it matters.
    ///
    /// # Errors
    /// [`Error::IndexOutOfBounds`] for `index >= len()`, [`Error::ShapeMismatch`] if
    /// `out.len() != T * N`, and whatever reading the clip can raise (I/O, decoding).
    fn fill_clip(&self, index: usize, train: bool, epoch_seed: u64, out: &mut [f32]) -> Result<()>;
}

/// Centring and scaling of one pixel: `(p - 128) / 128`.
#[inline]
pub fn pixel_to_f32(p: u8) -> f32 {
    (f32::from(p) - 128.0) / 128.0
}

/// Converts `src` pixels into `dst` with [`pixel_to_f32`].
///
/// # Panics
/// If the lengths differ (internal invariant of the callers).
#[cfg(feature = "video")]
#[track_caller]
pub(crate) fn pixels_to_f32(src: &[u8], dst: &mut [f32]) {
    assert_eq!(src.len(), dst.len(), "pixels_to_f32: length mismatch");
    for (d, &s) in dst.iter_mut().zip(src) {
        *d = pixel_to_f32(s);
    }
}

/// All labels of a dataset, in clip order.
pub fn labels<D: VideoDataset + ?Sized>(data: &D) -> Vec<usize> {
    (0..data.len()).map(|i| data.label(i)).collect()
}

/// Number of clips per class.
pub fn class_counts<D: VideoDataset + ?Sized>(data: &D) -> Vec<usize> {
    let mut counts = vec![0; data.n_classes()];
    for i in 0..data.len() {
        counts[data.label(i)] += 1;
    }
    counts
}

/// Fills a batch of clips `indices` into `out`, laid out `(B, T, N)` row-major with
/// `B = indices.len()`, and their labels into `labels`, in parallel (rayon, one clip per
/// task). Nothing is allocated per batch beyond what the dataset's `fill_clip` needs: the
/// caller owns and reuses both buffers (use a prefix of a larger buffer for a short last
/// batch).
///
/// Clip `b` gets frame positions seeded by `(epoch_seed, indices[b])`, so the result does
/// not depend on the thread count or on the batch composition.
///
/// # Errors
/// [`Error::ShapeMismatch`] if `out.len() != B * T * N` or `labels.len() != B`;
/// [`Error::IndexOutOfBounds`] for an index `>= data.len()`; the first error of any
/// `fill_clip`.
///
/// # Complexity
/// Time `O(B T N)` plus the dataset's per-clip cost, spread over the rayon pool; memory
/// none beyond the buffers.
///
/// # Example
/// ```
/// use tnet::data::{VideoDataset, SyntheticConfig, SyntheticVideo, fill_batch};
/// let data = SyntheticVideo::new(SyntheticConfig::quick()).unwrap();
/// let (t, n) = (data.frames(), data.frame_len());
/// let mut x = vec![0.0f32; 4 * t * n];
/// let mut y = vec![0usize; 4];
/// fill_batch(&data, &[0, 1, 2, 3], false, 0, &mut x, &mut y).unwrap();
/// assert_eq!(y, [0, 1, 2, 3]);
/// ```
pub fn fill_batch<D: VideoDataset + ?Sized>(
    data: &D,
    indices: &[usize],
    train: bool,
    epoch_seed: u64,
    out: &mut [f32],
    labels: &mut [usize],
) -> Result<()> {
    let clip = data.frames() * data.frame_len();
    let b = indices.len();
    if out.len() != b * clip {
        return Err(Error::ShapeMismatch {
            context: "fill_batch (out = B x T x N)",
            expected: vec![b, data.frames(), data.frame_len()],
            got: vec![out.len()],
        });
    }
    if labels.len() != b {
        return Err(Error::ShapeMismatch {
            context: "fill_batch (labels)",
            expected: vec![b],
            got: vec![labels.len()],
        });
    }
    if let Some(&bad) = indices.iter().find(|&&i| i >= data.len()) {
        return Err(Error::IndexOutOfBounds {
            index: vec![bad],
            shape: vec![data.len()],
        });
    }
    for (l, &i) in labels.iter_mut().zip(indices) {
        *l = data.label(i);
    }
    if clip == 0 {
        return Ok(());
    }
    out.par_chunks_mut(clip)
        .zip(indices.par_iter())
        .try_for_each(|(dst, &i)| data.fill_clip(i, train, epoch_seed, dst))
}

/// Checks the arguments every `fill_clip` shares.
#[cfg(feature = "video")]
pub(crate) fn check_fill(
    context: &'static str,
    index: usize,
    len: usize,
    frames: usize,
    frame_len: usize,
    out: &[f32],
) -> Result<()> {
    if index >= len {
        return Err(Error::IndexOutOfBounds {
            index: vec![index],
            shape: vec![len],
        });
    }
    if out.len() != frames * frame_len {
        return Err(Error::ShapeMismatch {
            context,
            expected: vec![frames, frame_len],
            got: vec![out.len()],
        });
    }
    Ok(())
}

/// SplitMix64 finaliser: a well-mixed 64-bit hash used to derive independent seeds.
#[inline]
pub(crate) fn mix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Seed for item `index` of a stream identified by `seed` and a domain tag.
#[inline]
pub(crate) fn derive_seed(seed: u64, domain: u64, index: u64) -> u64 {
    mix64(mix64(seed ^ mix64(domain)) ^ index)
}

/// The bridge to the training loop: a batch of clips converted to `T`, in parallel (one
/// clip per task, one reused `f32` buffer per worker). Training batches draw their frame
/// positions from the batch seed, evaluation batches use uniform positions.
impl<T: Scalar, D: VideoDataset + ?Sized> SequenceDataset<T> for D {
    fn n_clips(&self) -> usize {
        self.len()
    }

    fn n_classes(&self) -> usize {
        VideoDataset::n_classes(self)
    }

    fn seq_len(&self) -> usize {
        self.frames()
    }

    fn n_features(&self) -> usize {
        self.frame_len()
    }

    fn fill_batch(
        &self,
        indices: &[usize],
        sampling: Sampling,
        mut x: ArrayViewMut3<'_, T>,
        labels: &mut [usize],
    ) -> Result<()> {
        let (t, n) = (self.frames(), self.frame_len());
        if x.dim() != (indices.len(), t, n) || labels.len() != indices.len() {
            return Err(Error::ShapeMismatch {
                context: "fill_batch (x = B x T x N, one label per clip)",
                expected: vec![indices.len(), t, n],
                got: x.shape().to_vec(),
            });
        }
        if let Some(&bad) = indices.iter().find(|&&i| i >= self.len()) {
            return Err(Error::IndexOutOfBounds {
                index: vec![bad],
                shape: vec![self.len()],
            });
        }
        for (l, &i) in labels.iter_mut().zip(indices) {
            *l = self.label(i);
        }
        let (train, seed) = match sampling {
            Sampling::Train { seed } => (true, seed),
            Sampling::Eval => (false, 0),
        };
        let clips: Vec<_> = x.axis_iter_mut(Axis(0)).zip(indices).collect();
        clips.into_par_iter().try_for_each_init(
            || vec![0.0f32; t * n],
            |buf, (mut dst, &i)| {
                self.fill_clip(i, train, seed, buf)?;
                dst.iter_mut()
                    .zip(buf.iter())
                    .for_each(|(d, &s)| *d = T::cast(f64::from(s)));
                Ok(())
            },
        )
    }
}
