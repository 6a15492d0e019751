//! A procedural video dataset whose classes can only be told apart through time.
//!
//! Every clip shows the same cast on a textured background seen by a shaking camera:
//!
//! - the **main object**: a shape without rotational symmetry (arrow, pacman, half disc,
//!   L, T, key), textured (solid, stripes, checker, gradient, two-tone) and coloured per
//!   clip, with a position `(x, y)`, an orientation `θ` and a scale `s`;
//! - **event A** (a red square) and **event B** (a blue disc), each flashing for one frame;
//! - a **lamp** (a pale yellow cross) that is on or off in each frame;
//! - up to `max_distractors` smaller solid shapes, static or drifting;
//! - i.i.d. camera jitter (a sub-pixel shift of the whole scene per frame) and i.i.d.
//!   Gaussian pixel noise.
//!
//! A class ([`Pattern`]) fixes the temporal law of **one** of these elements; the others
//! follow a *neutral* law shared by all classes (main object still, A and B flashing at two
//! distinct random frames in random order, lamp steadily on or off).
//!
//! | pattern | law of its element |
//! |---|---|
//! | `right` / `left` / `up` / `down` | main object translates at constant speed `v` |
//! | `clockwise` / `anticlockwise` | main object turns by `±ω` per frame (on screen) |
//! | `approaching` / `receding` | `log s(t) = b ± L (t - (T-1)/2)`, `L = ln(zoom)/(T-1)` |
//! | `a_then_b` / `b_then_a` | A flashes strictly before B / B strictly before A |
//! | `accelerating` / `decelerating` | random direction, step lengths rising / falling from `v/4` to `7v/4` |
//! | `blink_fast` / `blink_slow` | lamp on-off with period 2 / on-on-off-off with period 4, random phase |
//! | `right_slow` / `right_fast` / `left_slow` / `left_fast` | main object translates at `v/2` / `3v/2` |
//!
//! The last four make the [`hard`](SyntheticConfig::hard) task: with `a_then_b` and
//! `b_then_a` its six classes differ in the speed of the motion (the slow and fast ranges
//! `[0.4, 0.6] v0` and `[1.2, 1.8] v0` do not overlap), its direction, or the order of two
//! one-frame events, so a model that only detects coarse motion cannot pass.
//!
//! # Why no single frame tells the class
//! The world is a torus (objects leaving on the right come back on the left) and every
//! position, orientation and appearance is drawn uniformly or independently of the class.
//! Hence the law of one frame is the same for every class:
//! - position and orientation are uniform at **every** `t` under any translation or
//!   rotation law (uniform measures on the torus and the circle are invariant), and so are
//!   the lamp (on with probability 1/2 at every `t`: random phase or a fair coin) and the
//!   distractors;
//! - the scale and the A/B events have the same law at a **uniformly random** `t`: the
//!   neutral scale is `b + L (k - (T-1)/2)` with `k` uniform in `0..T`, which is the
//!   random-`t` law of the approaching and receding ramps, and in every class A and B are
//!   each visible in exactly one frame and never together;
//! - each class makes at most one element deviate from its neutral law, and the elements
//!   are independent given the class, so the random-`t` law of a whole frame is the
//!   product of the elements' laws, the same for every class.
//!
//! A classifier that sees one frame at a random position is therefore at chance level
//! (tested with logistic regression and nearest class means in `tests/data.rs`), while
//! differences between frames reveal the class.
//!
//! # Reproducibility and laziness
//! Clip `i` has label `i % K` (classes balanced, interleaved) and depends only on
//! `(seed, i)` (and, with `groups > 0`, its appearance on `(seed, group)`): it is rendered
//! on demand from ChaCha8 streams, bit for bit the same on every machine and thread count.
//! A clip is rendered to `u8` and converted with [`pixel_to_f32`](super::pixel_to_f32), so a
//! [cached](SyntheticConfig::cache) and a lazy dataset give identical values. Lazy
//! datasets hold no pixels; a cached one holds `len * T * N` bytes.
//!
//! # Groups
//! With `groups = G > 0`, clip `i` belongs to group `(i / K) % G` and takes its appearance
//! (background, object shape, texture and colours, distractor looks) from the group, like
//! UCF11's groups that share actor and background. Every group holds every class, so
//! group-aware splits ([`split::group_holdout`](super::split::group_holdout)) test on
//! unseen scenes.
//!
//! # Cost
//! Rendering a clip costs `O(T (H W + sum of object areas))` with 2x2 supersampled object
//! edges; the quick preset renders in well under a millisecond per clip.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::StandardNormal;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::f32::consts::{PI, TAU};

use super::{VideoDataset, check_fill, derive_seed, pixels_to_f32};
use crate::{Error, Result};

/// A temporal pattern that defines one class of [`SyntheticVideo`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Pattern {
    /// Main object moves to the right at constant speed.
    Right,
    /// Main object moves to the left at constant speed.
    Left,
    /// Main object grows (comes closer).
    Approaching,
    /// Main object shrinks (moves away).
    Receding,
    /// Event A (red square) flashes before event B (blue disc).
    AThenB,
    /// Event B flashes before event A.
    BThenA,
    /// Main object moves up at constant speed.
    Up,
    /// Main object moves down at constant speed.
    Down,
    /// Lamp alternates on/off every frame.
    BlinkFast,
    /// Lamp alternates every two frames.
    BlinkSlow,
    /// Main object turns clockwise on screen.
    Clockwise,
    /// Main object turns anticlockwise on screen.
    Anticlockwise,
    /// Main object moves in a random direction, faster and faster.
    Accelerating,
    /// Main object moves in a random direction, slower and slower.
    Decelerating,
    /// Main object moves to the right at half the base speed.
    RightSlow,
    /// Main object moves to the right at 1.5 times the base speed.
    RightFast,
    /// Main object moves to the left at half the base speed.
    LeftSlow,
    /// Main object moves to the left at 1.5 times the base speed.
    LeftFast,
}

impl Pattern {
    /// Every pattern, in the canonical order used by [`SyntheticConfig::with_classes`].
    pub const ALL: [Pattern; 18] = [
        Pattern::Right,
        Pattern::Left,
        Pattern::Approaching,
        Pattern::Receding,
        Pattern::AThenB,
        Pattern::BThenA,
        Pattern::Up,
        Pattern::Down,
        Pattern::BlinkFast,
        Pattern::BlinkSlow,
        Pattern::Clockwise,
        Pattern::Anticlockwise,
        Pattern::Accelerating,
        Pattern::Decelerating,
        Pattern::RightSlow,
        Pattern::RightFast,
        Pattern::LeftSlow,
        Pattern::LeftFast,
    ];

    /// The six classes of [`SyntheticConfig::hard`]: speed and direction of motion, and
    /// the order of two events.
    pub const HARD: [Pattern; 6] = [
        Pattern::RightSlow,
        Pattern::RightFast,
        Pattern::LeftSlow,
        Pattern::LeftFast,
        Pattern::AThenB,
        Pattern::BThenA,
    ];

    /// Short snake_case name, used as the class name.
    pub fn name(self) -> &'static str {
        match self {
            Pattern::Right => "right",
            Pattern::Left => "left",
            Pattern::Approaching => "approaching",
            Pattern::Receding => "receding",
            Pattern::AThenB => "a_then_b",
            Pattern::BThenA => "b_then_a",
            Pattern::Up => "up",
            Pattern::Down => "down",
            Pattern::BlinkFast => "blink_fast",
            Pattern::BlinkSlow => "blink_slow",
            Pattern::Clockwise => "clockwise",
            Pattern::Anticlockwise => "anticlockwise",
            Pattern::Accelerating => "accelerating",
            Pattern::Decelerating => "decelerating",
            Pattern::RightSlow => "right_slow",
            Pattern::RightFast => "right_fast",
            Pattern::LeftSlow => "left_slow",
            Pattern::LeftFast => "left_fast",
        }
    }

    /// The pattern with this [`name`](Self::name), if any.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.name() == name)
    }

    /// Fewest frames per clip at which the pattern differs from its neutral law and from
    /// its partner (3 for speed changes and blinking, 2 otherwise).
    pub fn min_frames(self) -> usize {
        match self {
            Pattern::Accelerating
            | Pattern::Decelerating
            | Pattern::BlinkFast
            | Pattern::BlinkSlow => 3,
            _ => 2,
        }
    }
}

impl std::fmt::Display for Pattern {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Configuration of a [`SyntheticVideo`]; all fields public, checked by
/// [`check`](Self::check) (called by [`SyntheticVideo::new`]).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SyntheticConfig {
    /// Frame height `H` in pixels, `8..=256`.
    pub height: usize,
    /// Frame width `W` in pixels, `8..=256`.
    pub width: usize,
    /// Channels `C`: 3 (RGB) or 1 (grey: Rec. 709 luma `0.2126 R + 0.7152 G + 0.0722 B` of
    /// the RGB rendering, as [`FolderDataset`](super::FolderDataset) uses).
    pub channels: usize,
    /// Frames per clip `T`, at least the largest [`Pattern::min_frames`], at most 256.
    pub frames: usize,
    /// Clips per class (the dataset has `clips_per_class * K` clips), at least 1.
    pub clips_per_class: usize,
    /// The classes, in label order: at least 2, no repeats.
    pub patterns: Vec<Pattern>,
    /// Master seed.
    pub seed: u64,
    /// Number of appearance groups (0: every clip has its own appearance).
    pub groups: usize,
    /// Main object radius as a fraction of `min(H, W)`, in `(0, 0.35]`.
    pub object_size: f32,
    /// Displacement per frame as a fraction of `min(H, W)`, in `(0, 0.25]`.
    pub speed: f32,
    /// Total scale ratio over a clip for approaching/receding, in `(1, 8]`.
    pub zoom: f32,
    /// Standard deviation of the Gaussian pixel noise, in grey levels (`0..=64`).
    pub noise_std: f32,
    /// Standard deviation of the camera jitter, in pixels (`0..=min(H, W)/8`).
    pub jitter_std: f32,
    /// Largest number of distractor objects per clip (uniform in `0..=max`), at most 16.
    pub max_distractors: usize,
    /// Textured backgrounds and objects (`false`: flat colours).
    pub textures: bool,
    /// Render every clip once and keep it as `u8` (`len * T * N` bytes) instead of
    /// rendering on each access.
    pub cache: bool,
}

impl SyntheticConfig {
    /// Small and fast: 24x32x3 frames (H x W x C), T = 6, 6 classes (right, left,
    /// approaching, receding, a_then_b, b_then_a), 40 clips per class (240 clips), light
    /// noise and jitter, at most one distractor, cached (3.3 MB).
    pub fn quick() -> Self {
        SyntheticConfig {
            height: 24,
            width: 32,
            channels: 3,
            frames: 6,
            clips_per_class: 40,
            patterns: Pattern::ALL[..6].to_vec(),
            seed: 0,
            groups: 0,
            object_size: 0.2,
            speed: 0.12,
            zoom: 2.0,
            noise_std: 3.0,
            jitter_std: 0.3,
            max_distractors: 1,
            textures: true,
            cache: true,
        }
    }

    /// UCF11-like: 120x160x3 frames (H x W x C, the literature's 160x120 RGB = 57,600
    /// values), T = 6, 11 classes (the first 11 of [`Pattern::ALL`]), 145 clips per class
    /// (1,595 clips), 25 appearance groups, more noise, jitter and distractors. Lazy (no
    /// cache): set `cache = true` to hold it as 551 MB of `u8`.
    pub fn ucf11_like() -> Self {
        SyntheticConfig {
            height: 120,
            width: 160,
            channels: 3,
            frames: 6,
            clips_per_class: 145,
            patterns: Pattern::ALL[..11].to_vec(),
            seed: 0,
            groups: 25,
            object_size: 0.18,
            speed: 0.1,
            zoom: 2.0,
            noise_std: 6.0,
            jitter_std: 1.0,
            max_distractors: 3,
            textures: true,
            cache: false,
        }
    }

    /// The harder task: the [`quick`](Self::quick) sizes with the six classes of
    /// [`Pattern::HARD`] (slow and fast motion to the right and to the left, A before B,
    /// B before A), 60 clips per class (360 clips, 5 MB cached). A model that only
    /// detects motion and its direction is at 33 % at best; the speed classes need the
    /// displacement between frames measured, the event classes the order of two
    /// one-frame flashes remembered.
    pub fn hard() -> Self {
        SyntheticConfig {
            clips_per_class: 60,
            patterns: Pattern::HARD.to_vec(),
            ..Self::quick()
        }
    }

    /// The same configuration with the first `k` patterns of [`Pattern::ALL`].
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] unless `2 <= k <= 18`.
    pub fn with_classes(mut self, k: usize) -> Result<Self> {
        if !(2..=Pattern::ALL.len()).contains(&k) {
            return Err(Error::param(
                "classes",
                format!(
                    "{k} classes asked for, the synthetic dataset implements 2 to {} patterns",
                    Pattern::ALL.len()
                ),
            ));
        }
        self.patterns = Pattern::ALL[..k].to_vec();
        Ok(self)
    }

    /// The same configuration with another seed.
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Number of classes `K`.
    pub fn n_classes(&self) -> usize {
        self.patterns.len()
    }

    /// Number of clips, `clips_per_class * K`.
    pub fn len(&self) -> usize {
        self.clips_per_class * self.patterns.len()
    }

    /// Whether the configuration has no clips (never true for a checked configuration).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Values per frame, `H * W * C`.
    pub fn frame_len(&self) -> usize {
        self.height * self.width * self.channels
    }

    /// Validates every field.
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] naming the first field out of range and why.
    pub fn check(&self) -> Result<()> {
        let range = |name: &'static str, v: usize, lo: usize, hi: usize| {
            if (lo..=hi).contains(&v) {
                Ok(())
            } else {
                Err(Error::param(name, format!("{v} is outside {lo}..={hi}")))
            }
        };
        range("height", self.height, 8, 256)?;
        range("width", self.width, 8, 256)?;
        if self.channels != 1 && self.channels != 3 {
            return Err(Error::param(
                "channels",
                format!("{} channels; use 1 (grey) or 3 (RGB)", self.channels),
            ));
        }
        if self.patterns.len() < 2 {
            return Err(Error::param(
                "patterns",
                format!(
                    "{} classes; a classification task needs at least 2",
                    self.patterns.len()
                ),
            ));
        }
        for (i, p) in self.patterns.iter().enumerate() {
            if self.patterns[..i].contains(p) {
                return Err(Error::param(
                    "patterns",
                    format!("pattern `{p}` appears twice"),
                ));
            }
        }
        let need = self
            .patterns
            .iter()
            .map(|p| p.min_frames())
            .max()
            .unwrap_or(2);
        if self.frames < need || self.frames > 256 {
            return Err(Error::param(
                "frames",
                format!(
                    "{} frames per clip; these patterns need {need}..=256",
                    self.frames
                ),
            ));
        }
        range("clips_per_class", self.clips_per_class, 1, 10_000_000)?;
        range("max_distractors", self.max_distractors, 0, 16)?;
        let real = |name: &'static str, v: f32, lo: f32, lo_open: bool, hi: f32| {
            let ok = v.is_finite() && (if lo_open { v > lo } else { v >= lo }) && v <= hi;
            if ok {
                Ok(())
            } else {
                let open = if lo_open { "(" } else { "[" };
                Err(Error::param(
                    name,
                    format!("{v} is outside {open}{lo}, {hi}]"),
                ))
            }
        };
        real("object_size", self.object_size, 0.0, true, 0.35)?;
        real("speed", self.speed, 0.0, true, 0.25)?;
        real("zoom", self.zoom, 1.0, true, 8.0)?;
        real("noise_std", self.noise_std, 0.0, false, 64.0)?;
        let jmax = self.height.min(self.width) as f32 / 8.0;
        real("jitter_std", self.jitter_std, 0.0, false, jmax)?;
        Ok(())
    }
}

impl Default for SyntheticConfig {
    fn default() -> Self {
        Self::quick()
    }
}

/// The procedural dataset: see the [module docs](self) for what the clips show and why no
/// single frame gives the class away.
///
/// # Example
/// ```
/// use tnet::data::{VideoDataset, SyntheticConfig, SyntheticVideo};
/// let data = SyntheticVideo::new(SyntheticConfig::quick()).unwrap();
/// assert_eq!((data.len(), data.n_classes(), data.frames()), (240, 6, 6));
/// let mut a = vec![0.0f32; data.frames() * data.frame_len()];
/// let mut b = a.clone();
/// data.fill_clip(17, true, 0, &mut a).unwrap();
/// // Lazily rendered from the same seed: bit for bit the same clip.
/// let lazy = SyntheticVideo::new(SyntheticConfig { cache: false, ..SyntheticConfig::quick() })
///     .unwrap();
/// lazy.fill_clip(17, false, 99, &mut b).unwrap();
/// assert_eq!(a, b);
/// ```
#[derive(Clone, Debug)]
pub struct SyntheticVideo {
    cfg: SyntheticConfig,
    cache: Option<Vec<u8>>,
}

impl SyntheticVideo {
    /// Checks the configuration and, if `cfg.cache`, renders every clip (in parallel).
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] from [`SyntheticConfig::check`].
    ///
    /// # Complexity
    /// Lazy: `O(1)`. Cached: renders `len` clips, memory `len * T * N` bytes.
    pub fn new(cfg: SyntheticConfig) -> Result<Self> {
        cfg.check()?;
        let mut data = SyntheticVideo { cfg, cache: None };
        if data.cfg.cache {
            let clip = data.cfg.frames * data.cfg.frame_len();
            let mut buf = vec![0u8; data.cfg.len() * clip];
            buf.par_chunks_mut(clip)
                .enumerate()
                .for_each(|(i, dst)| data.render_clip(i, dst));
            data.cache = Some(buf);
        }
        Ok(data)
    }

    /// The configuration.
    pub fn config(&self) -> &SyntheticConfig {
        &self.cfg
    }

    /// Frame shape `(H, W, C)`.
    pub fn frame_shape(&self) -> (usize, usize, usize) {
        (self.cfg.height, self.cfg.width, self.cfg.channels)
    }

    /// The pattern of class `label`.
    ///
    /// # Panics
    /// If `label >= n_classes()`.
    pub fn pattern(&self, label: usize) -> Pattern {
        self.cfg.patterns[label]
    }

    /// Appearance group of clip `index`: `(index / K) % groups`, or `index` itself when
    /// `groups == 0` (every clip its own group).
    pub fn group(&self, index: usize) -> usize {
        let k = self.cfg.patterns.len();
        if self.cfg.groups > 0 {
            (index / k) % self.cfg.groups
        } else {
            index
        }
    }

    /// [`group`](Self::group) of every clip, for group-aware splits.
    pub fn group_ids(&self) -> Vec<usize> {
        (0..self.len()).map(|i| self.group(i)).collect()
    }

    /// Whether clips are held in memory as `u8`.
    pub fn is_cached(&self) -> bool {
        self.cache.is_some()
    }

    /// Bytes of pixel data held: `len * T * N` when cached, 0 when lazy (plus the size of
    /// the struct itself).
    pub fn bytes_held(&self) -> usize {
        std::mem::size_of::<Self>()
            + self.cache.as_ref().map_or(0, |c| c.capacity())
            + self.cfg.patterns.capacity() * std::mem::size_of::<Pattern>()
    }

    /// Writes clip `index` as `T x N` pixels (`(T, H, W, C)` row-major) into `out`.
    ///
    /// # Errors
    /// [`Error::IndexOutOfBounds`] or [`Error::ShapeMismatch`].
    pub fn clip_u8(&self, index: usize, out: &mut [u8]) -> Result<()> {
        let clip = self.cfg.frames * self.cfg.frame_len();
        if index >= self.len() {
            return Err(Error::IndexOutOfBounds {
                index: vec![index],
                shape: vec![self.len()],
            });
        }
        if out.len() != clip {
            return Err(Error::ShapeMismatch {
                context: "SyntheticVideo::clip_u8",
                expected: vec![self.cfg.frames, self.cfg.frame_len()],
                got: vec![out.len()],
            });
        }
        match &self.cache {
            Some(c) => out.copy_from_slice(&c[index * clip..(index + 1) * clip]),
            None => self.render_clip(index, out),
        }
        Ok(())
    }

    /// Renders clip `index` into `out` (`T * N` bytes). Internal: arguments are checked.
    fn render_clip(&self, index: usize, out: &mut [u8]) {
        let cfg = &self.cfg;
        let plan = Plan::sample(cfg, index);
        let (h, w) = (cfg.height, cfg.width);
        let n = cfg.frame_len();
        let mut rgb = vec![0.0f32; h * w * 3];
        let mut noise = ChaCha8Rng::seed_from_u64(derive_seed(cfg.seed, 3, index as u64));
        for (t, frame) in out.chunks_exact_mut(n).enumerate() {
            plan.render(cfg, t, &mut rgb);
            quantize(&rgb, cfg.channels, cfg.noise_std, &mut noise, frame);
        }
    }
}

impl VideoDataset for SyntheticVideo {
    fn len(&self) -> usize {
        self.cfg.len()
    }

    fn n_classes(&self) -> usize {
        self.cfg.patterns.len()
    }

    fn class_names(&self) -> Vec<String> {
        self.cfg
            .patterns
            .iter()
            .map(|p| p.name().to_string())
            .collect()
    }

    fn frames(&self) -> usize {
        self.cfg.frames
    }

    fn frame_len(&self) -> usize {
        self.cfg.frame_len()
    }

    fn label(&self, index: usize) -> usize {
        index % self.cfg.patterns.len()
    }

    /// Synthetic clips have exactly `T` frames: `train` and `epoch_seed` do not change the
    /// result.
    fn fill_clip(
        &self,
        index: usize,
        _train: bool,
        _epoch_seed: u64,
        out: &mut [f32],
    ) -> Result<()> {
        let (t, n) = (self.cfg.frames, self.cfg.frame_len());
        check_fill("SyntheticVideo::fill_clip", index, self.len(), t, n, out)?;
        match &self.cache {
            Some(c) => pixels_to_f32(&c[index * t * n..(index + 1) * t * n], out),
            None => {
                let mut px = vec![0u8; t * n];
                self.render_clip(index, &mut px);
                pixels_to_f32(&px, out);
            }
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------
// Scene description and sampling.

/// Shapes, in a local frame where they fit the unit disc. None has a rotational symmetry.
#[derive(Clone, Copy, Debug)]
enum Shape {
    Arrow,
    Pacman,
    HalfDisc,
    ShapeL,
    ShapeT,
    Key,
    // Fixed shapes of the event objects and the lamp.
    Square,
    Disc,
    Cross,
}

const OBJECT_SHAPES: [Shape; 6] = [
    Shape::Arrow,
    Shape::Pacman,
    Shape::HalfDisc,
    Shape::ShapeL,
    Shape::ShapeT,
    Shape::Key,
];

impl Shape {
    fn contains(self, u: f32, v: f32) -> bool {
        let in_rect = |x0: f32, x1: f32, y0: f32, y1: f32| u >= x0 && u <= x1 && v >= y0 && v <= y1;
        let r2 = u * u + v * v;
        match self {
            Shape::Arrow => {
                // Triangle (0.95, 0), (-0.75, 0.65), (-0.75, -0.65).
                u >= -0.75 && v.abs() <= 0.65 * (0.95 - u) / 1.7
            }
            Shape::Pacman => r2 <= 1.0 && !(u > 0.0 && v.abs() < 0.75 * u),
            Shape::HalfDisc => r2 <= 1.0 && v >= -0.25,
            Shape::ShapeL => in_rect(-0.8, 0.8, 0.35, 0.8) || in_rect(-0.8, -0.3, -0.8, 0.8),
            Shape::ShapeT => in_rect(-0.85, 0.85, -0.8, -0.35) || in_rect(-0.25, 0.25, -0.8, 0.85),
            Shape::Key => in_rect(-0.95, 0.35, -0.18, 0.18) || (u - 0.55).powi(2) + v * v <= 0.16,
            Shape::Square => in_rect(-0.8, 0.8, -0.8, 0.8),
            Shape::Disc => r2 <= 0.85,
            Shape::Cross => {
                (u.abs() <= 0.28 && v.abs() <= 1.0) || (v.abs() <= 0.28 && u.abs() <= 1.0)
            }
        }
    }
}

/// How an object is coloured, in its local frame (so textures turn and scale with it).
#[derive(Clone, Copy, Debug)]
enum Texture {
    Solid,
    Stripes { freq: f32, angle: f32 },
    Checker { freq: f32 },
    Gradient,
    TwoTone,
}

#[derive(Clone, Copy, Debug)]
struct Look {
    shape: Shape,
    texture: Texture,
    c1: [f32; 3],
    c2: [f32; 3],
}

impl Look {
    fn solid(shape: Shape, c: [f32; 3]) -> Self {
        Look {
            shape,
            texture: Texture::Solid,
            c1: c,
            c2: c,
        }
    }

    fn colour(&self, u: f32, v: f32) -> [f32; 3] {
        let pick = |first: bool| if first { self.c1 } else { self.c2 };
        match self.texture {
            Texture::Solid => self.c1,
            Texture::Stripes { freq, angle } => {
                let s = (u * angle.cos() + v * angle.sin()) * freq;
                pick((s.floor() as i32).rem_euclid(2) == 0)
            }
            Texture::Checker { freq } => {
                pick(((u * freq).floor() as i32 + (v * freq).floor() as i32).rem_euclid(2) == 0)
            }
            Texture::Gradient => {
                let a = ((u + 1.0) * 0.5).clamp(0.0, 1.0);
                std::array::from_fn(|c| self.c1[c] * (1.0 - a) + self.c2[c] * a)
            }
            Texture::TwoTone => pick(v >= 0.0),
        }
    }
}

/// A background: a function on the torus `[0, W) x [0, H)`.
#[derive(Clone, Debug)]
enum Background {
    Flat([f32; 3]),
    /// `base + sum_k amp_k cos(2π (fx_k x / W + fy_k y / H) + φ_k) * tint_k`.
    Waves {
        base: [f32; 3],
        waves: Vec<([f32; 2], f32, [f32; 3])>,
    },
    /// Square-wave stripes of integer frequency.
    Stripes {
        c1: [f32; 3],
        c2: [f32; 3],
        f: [f32; 2],
        phase: f32,
    },
    Checker {
        c1: [f32; 3],
        c2: [f32; 3],
        cells: [f32; 2],
    },
}

impl Background {
    fn at(&self, x: f32, y: f32, w: f32, h: f32) -> [f32; 3] {
        match self {
            Background::Flat(c) => *c,
            Background::Waves { base, waves } => {
                let mut c = *base;
                for (f, phase, tint) in waves {
                    let s = (TAU * (f[0] * x / w + f[1] * y / h) + phase).cos();
                    for k in 0..3 {
                        c[k] += s * tint[k];
                    }
                }
                c
            }
            Background::Stripes { c1, c2, f, phase } => {
                let s = (TAU * (f[0] * x / w + f[1] * y / h) + phase).cos();
                if s >= 0.0 { *c1 } else { *c2 }
            }
            Background::Checker { c1, c2, cells } => {
                let i = (x / w * cells[0]).floor() as i64 + (y / h * cells[1]).floor() as i64;
                if i.rem_euclid(2) == 0 { *c1 } else { *c2 }
            }
        }
    }
}

/// Everything about a clip that does not change over time.
#[derive(Clone, Debug)]
struct Appearance {
    background: Background,
    main: Look,
    base_radius: f32,
    a: Look,
    b: Look,
    lamp: Look,
    distractors: Vec<(Look, f32)>,
}

/// Pose of one object in one frame.
#[derive(Clone, Copy, Debug)]
struct Pose {
    x: f32,
    y: f32,
    theta: f32,
    radius: f32,
}

/// A clip: appearance and per-frame poses and switches.
#[derive(Clone, Debug)]
struct Plan {
    look: Appearance,
    main: Vec<Pose>,
    a_at: usize,
    b_at: usize,
    a_pos: (f32, f32),
    b_pos: (f32, f32),
    lamp_pos: (f32, f32),
    lamp: Vec<bool>,
    distractors: Vec<Vec<Pose>>,
    jitter: Vec<(f32, f32)>,
}

fn hsv(h_deg: f32, s: f32, v: f32) -> [f32; 3] {
    let h = h_deg.rem_euclid(360.0) / 60.0;
    let c = v * s;
    let x = c * (1.0 - (h % 2.0 - 1.0).abs());
    let (r, g, b) = match h as u32 {
        0 => (c, x, 0.0),
        1 => (x, c, 0.0),
        2 => (0.0, c, x),
        3 => (0.0, x, c),
        4 => (x, 0.0, c),
        _ => (c, 0.0, x),
    };
    let m = v - c;
    [(r + m) * 255.0, (g + m) * 255.0, (b + m) * 255.0]
}

fn uniform(g: &mut ChaCha8Rng, lo: f32, hi: f32) -> f32 {
    lo + (hi - lo) * g.random::<f32>()
}

fn vivid(g: &mut ChaCha8Rng) -> [f32; 3] {
    let h = uniform(g, 0.0, 360.0);
    let s = uniform(g, 0.55, 1.0);
    let v = uniform(g, 0.6, 1.0);
    hsv(h, s, v)
}

impl Appearance {
    fn sample(cfg: &SyntheticConfig, g: &mut ChaCha8Rng) -> Self {
        let m = cfg.height.min(cfg.width) as f32;
        let dull = |g: &mut ChaCha8Rng| {
            let h = uniform(g, 0.0, 360.0);
            let s = uniform(g, 0.0, 0.5);
            let v = uniform(g, 0.12, 0.55);
            hsv(h, s, v)
        };
        let shift = |c: [f32; 3], d: f32| c.map(|x| (x + d).clamp(0.0, 255.0));
        let base = dull(g);
        let background = if !cfg.textures {
            Background::Flat(base)
        } else {
            match g.random_range(0..5u32) {
                0 => Background::Flat(base),
                1 => {
                    let n = g.random_range(1..=3usize);
                    let waves = (0..n)
                        .map(|_| {
                            let f = [
                                g.random_range(0..=2u32) as f32,
                                g.random_range(0..=2u32) as f32,
                            ];
                            let f = if f == [0.0, 0.0] { [1.0, 0.0] } else { f };
                            let amp = uniform(g, 8.0, 30.0);
                            let tint = [
                                uniform(g, 0.3, 1.0),
                                uniform(g, 0.3, 1.0),
                                uniform(g, 0.3, 1.0),
                            ]
                            .map(|t| t * amp);
                            (f, uniform(g, 0.0, TAU), tint)
                        })
                        .collect();
                    Background::Waves { base, waves }
                }
                2 => {
                    let f = if g.random::<bool>() {
                        [g.random_range(2..=6u32) as f32, 0.0]
                    } else {
                        [0.0, g.random_range(2..=5u32) as f32]
                    };
                    let d = uniform(g, 12.0, 35.0) * if g.random::<bool>() { 1.0 } else { -1.0 };
                    Background::Stripes {
                        c1: base,
                        c2: shift(base, d),
                        f,
                        phase: uniform(g, 0.0, TAU),
                    }
                }
                3 => {
                    let d = uniform(g, 10.0, 30.0) * if g.random::<bool>() { 1.0 } else { -1.0 };
                    Background::Checker {
                        c1: base,
                        c2: shift(base, d),
                        cells: [
                            g.random_range(2..=6u32) as f32,
                            g.random_range(2..=5u32) as f32,
                        ],
                    }
                }
                _ => {
                    let waves = (0..2)
                        .map(|_| {
                            let f = [
                                g.random_range(1..=3u32) as f32,
                                g.random_range(1..=3u32) as f32,
                            ];
                            let amp = uniform(g, 6.0, 18.0);
                            let tint =
                                hsv(uniform(g, 0.0, 360.0), 0.6, 1.0).map(|t| t / 255.0 * amp);
                            (f, uniform(g, 0.0, TAU), tint)
                        })
                        .collect();
                    Background::Waves { base, waves }
                }
            }
        };
        let shape = OBJECT_SHAPES[g.random_range(0..OBJECT_SHAPES.len())];
        let c1 = vivid(g);
        let c2 = {
            let h = uniform(g, 0.0, 360.0);
            hsv(h, uniform(g, 0.3, 1.0), uniform(g, 0.35, 1.0))
        };
        let texture = if !cfg.textures {
            Texture::Solid
        } else {
            match g.random_range(0..5u32) {
                0 => Texture::Solid,
                1 => Texture::Stripes {
                    freq: uniform(g, 1.5, 2.5),
                    angle: uniform(g, 0.0, PI),
                },
                2 => Texture::Checker {
                    freq: uniform(g, 1.5, 2.5),
                },
                3 => Texture::Gradient,
                _ => Texture::TwoTone,
            }
        };
        let main = Look {
            shape,
            texture,
            c1,
            c2,
        };
        let base_radius = cfg.object_size * m * uniform(g, 0.9, 1.1);
        let a = Look::solid(
            Shape::Square,
            hsv(
                uniform(g, -12.0, 12.0),
                uniform(g, 0.75, 1.0),
                uniform(g, 0.8, 1.0),
            ),
        );
        let b = Look::solid(
            Shape::Disc,
            hsv(
                uniform(g, 208.0, 232.0),
                uniform(g, 0.75, 1.0),
                uniform(g, 0.8, 1.0),
            ),
        );
        let lamp = Look::solid(
            Shape::Cross,
            hsv(uniform(g, 48.0, 62.0), uniform(g, 0.35, 0.6), 1.0),
        );
        let nd = g.random_range(0..=cfg.max_distractors);
        let distractors = (0..nd)
            .map(|_| {
                let shape = OBJECT_SHAPES[g.random_range(0..OBJECT_SHAPES.len())];
                let r = base_radius * uniform(g, 0.35, 0.55);
                (Look::solid(shape, vivid(g)), r)
            })
            .collect();
        Appearance {
            background,
            main,
            base_radius,
            a,
            b,
            lamp,
            distractors,
        }
    }
}

impl Plan {
    /// The full description of clip `index`: appearance from the group's (or the clip's)
    /// stream, motion and events from the clip's stream.
    fn sample(cfg: &SyntheticConfig, index: usize) -> Self {
        let k = cfg.patterns.len();
        let pattern = cfg.patterns[index % k];
        let appearance_seed = if cfg.groups > 0 {
            derive_seed(cfg.seed, 1, ((index / k) % cfg.groups) as u64)
        } else {
            derive_seed(cfg.seed, 2, index as u64)
        };
        let look = Appearance::sample(cfg, &mut ChaCha8Rng::seed_from_u64(appearance_seed));
        let g = &mut ChaCha8Rng::seed_from_u64(derive_seed(cfg.seed, 4, index as u64));
        let t_len = cfg.frames;
        let (w, h) = (cfg.width as f32, cfg.height as f32);
        let m = w.min(h);
        let centre = |t: usize| t as f32 - (t_len as f32 - 1.0) / 2.0;

        // Main object: stationary laws, with the class's element replaced.
        let x0 = uniform(g, 0.0, w);
        let y0 = uniform(g, 0.0, h);
        let theta0 = uniform(g, 0.0, TAU);
        let b = uniform(g, -(1.1f32.ln()), 1.1f32.ln());
        let step_log = cfg.zoom.ln() / (t_len as f32 - 1.0);
        let k_static = g.random_range(0..t_len);
        let v = cfg.speed * m * uniform(g, 0.8, 1.2);
        let omega = uniform(g, 0.35, 0.6);
        let dir_angle = uniform(g, 0.0, TAU);
        let mut main = Vec::with_capacity(t_len);
        let mut travelled = 0.0f32;
        for t in 0..t_len {
            let log_s = match pattern {
                Pattern::Approaching => b + step_log * centre(t),
                Pattern::Receding => b - step_log * centre(t),
                _ => b + step_log * centre(k_static),
            };
            let theta = match pattern {
                Pattern::Clockwise => theta0 + omega * t as f32,
                Pattern::Anticlockwise => theta0 - omega * t as f32,
                _ => theta0,
            };
            let vt = v * t as f32;
            let (dx, dy) = match pattern {
                Pattern::Right => (vt, 0.0),
                Pattern::Left => (-vt, 0.0),
                Pattern::RightSlow => (0.5 * vt, 0.0),
                Pattern::RightFast => (1.5 * vt, 0.0),
                Pattern::LeftSlow => (-0.5 * vt, 0.0),
                Pattern::LeftFast => (-1.5 * vt, 0.0),
                Pattern::Up => (0.0, -vt),
                Pattern::Down => (0.0, vt),
                Pattern::Accelerating | Pattern::Decelerating => {
                    (travelled * dir_angle.cos(), travelled * dir_angle.sin())
                }
                _ => (0.0, 0.0),
            };
            if t + 1 < t_len {
                // Step t -> t+1 of the speed ramps: v (1/4 + 3/2 k/(T-2)), mean v.
                let frac = if t_len > 2 {
                    t as f32 / (t_len as f32 - 2.0)
                } else {
                    0.5
                };
                let frac = if pattern == Pattern::Decelerating {
                    1.0 - frac
                } else {
                    frac
                };
                travelled += v * (0.25 + 1.5 * frac);
            }
            main.push(Pose {
                x: (x0 + dx).rem_euclid(w),
                y: (y0 + dy).rem_euclid(h),
                theta,
                radius: look.base_radius * log_s.exp(),
            });
        }

        // Events A and B: two distinct frames.
        let first = g.random_range(0..t_len);
        let mut second = g.random_range(0..t_len - 1);
        if second >= first {
            second += 1;
        }
        let (lo, hi) = (first.min(second), first.max(second));
        let (a_at, b_at) = match pattern {
            Pattern::AThenB => (lo, hi),
            Pattern::BThenA => (hi, lo),
            _ => (first, second),
        };
        let pos = |g: &mut ChaCha8Rng| (uniform(g, 0.0, w), uniform(g, 0.0, h));
        let a_pos = pos(g);
        let b_pos = pos(g);
        let lamp_pos = pos(g);

        // Lamp.
        let phase = g.random_range(0..4usize);
        let steady = g.random::<bool>();
        let lamp = (0..t_len)
            .map(|t| match pattern {
                Pattern::BlinkFast => (t + phase) % 2 == 0,
                Pattern::BlinkSlow => ((t + phase) / 2) % 2 == 0,
                _ => steady,
            })
            .collect();

        // Distractors: static or drifting, fixed orientation.
        let distractors = look
            .distractors
            .iter()
            .map(|&(_, r)| {
                let (x, y) = pos(g);
                let theta = uniform(g, 0.0, TAU);
                let (vx, vy) = if g.random::<bool>() {
                    let a = uniform(g, 0.0, TAU);
                    let s = v * uniform(g, 0.3, 1.0);
                    (s * a.cos(), s * a.sin())
                } else {
                    (0.0, 0.0)
                };
                (0..t_len)
                    .map(|t| Pose {
                        x: (x + vx * t as f32).rem_euclid(w),
                        y: (y + vy * t as f32).rem_euclid(h),
                        theta,
                        radius: r,
                    })
                    .collect()
            })
            .collect();

        let jitter = (0..t_len)
            .map(|_| {
                let jx: f32 = g.sample(StandardNormal);
                let jy: f32 = g.sample(StandardNormal);
                (jx * cfg.jitter_std, jy * cfg.jitter_std)
            })
            .collect();

        Plan {
            look,
            main,
            a_at,
            b_at,
            a_pos,
            b_pos,
            lamp_pos,
            lamp,
            distractors,
            jitter,
        }
    }

    /// Renders frame `t` as RGB in `[0, 255]` (before noise) into `rgb` (`H * W * 3`).
    fn render(&self, cfg: &SyntheticConfig, t: usize, rgb: &mut [f32]) {
        let (hh, ww) = (cfg.height, cfg.width);
        let (w, h) = (ww as f32, hh as f32);
        let (jx, jy) = self.jitter[t];
        for r in 0..hh {
            for c in 0..ww {
                let col = self
                    .look
                    .background
                    .at(c as f32 + 0.5 + jx, r as f32 + 0.5 + jy, w, h);
                rgb[(r * ww + c) * 3..(r * ww + c) * 3 + 3].copy_from_slice(&col);
            }
        }
        let shifted = |p: &Pose| Pose {
            x: p.x - jx,
            y: p.y - jy,
            ..*p
        };
        for ((look, _), poses) in self.look.distractors.iter().zip(&self.distractors) {
            draw(rgb, ww, hh, look, &shifted(&poses[t]));
        }
        let small = self.look.base_radius * 0.6;
        let still = |(x, y): (f32, f32), radius: f32| Pose {
            x: x - jx,
            y: y - jy,
            theta: 0.0,
            radius,
        };
        if self.a_at == t {
            draw(rgb, ww, hh, &self.look.a, &still(self.a_pos, small));
        }
        if self.b_at == t {
            draw(rgb, ww, hh, &self.look.b, &still(self.b_pos, small));
        }
        if self.lamp[t] {
            draw(rgb, ww, hh, &self.look.lamp, &still(self.lamp_pos, small));
        }
        draw(rgb, ww, hh, &self.look.main, &shifted(&self.main[t]));
    }
}

/// Wraps a displacement on a circle of length `l` into `[-l/2, l/2)`.
#[inline]
fn wrap(d: f32, l: f32) -> f32 {
    (d + 0.5 * l).rem_euclid(l) - 0.5 * l
}

/// Draws one object on the torus with 2x2 supersampling (coverage-weighted blending).
fn draw(rgb: &mut [f32], ww: usize, hh: usize, look: &Look, pose: &Pose) {
    let (w, h) = (ww as f32, hh as f32);
    let reach = pose.radius + 1.0;
    let (cos, sin) = (pose.theta.cos(), pose.theta.sin());
    let inv_r = 1.0 / pose.radius.max(1e-3);
    let x_lo = (pose.x - reach).floor() as i64;
    let y_lo = (pose.y - reach).floor() as i64;
    let nx = ((2.0 * reach).ceil() as usize + 1).min(ww);
    let ny = ((2.0 * reach).ceil() as usize + 1).min(hh);
    const SUB: [f32; 2] = [0.25, 0.75];
    for iy in 0..ny {
        let py = y_lo + iy as i64;
        let row = py.rem_euclid(hh as i64) as usize;
        for ix in 0..nx {
            let px = x_lo + ix as i64;
            let col = px.rem_euclid(ww as i64) as usize;
            let mut acc = [0.0f32; 3];
            let mut hits = 0u32;
            for sy in SUB {
                for sx in SUB {
                    let dx = wrap(px as f32 + sx - pose.x, w);
                    let dy = wrap(py as f32 + sy - pose.y, h);
                    // Rotate into the object's frame: local = R(-θ) d / r.
                    let u = (cos * dx + sin * dy) * inv_r;
                    let v = (-sin * dx + cos * dy) * inv_r;
                    if look.shape.contains(u, v) {
                        let c = look.colour(u, v);
                        for k in 0..3 {
                            acc[k] += c[k];
                        }
                        hits += 1;
                    }
                }
            }
            if hits > 0 {
                let cover = hits as f32 / 4.0;
                let p = &mut rgb[(row * ww + col) * 3..(row * ww + col) * 3 + 3];
                for k in 0..3 {
                    p[k] = p[k] * (1.0 - cover) + acc[k] / 4.0;
                }
            }
        }
    }
}

/// Adds noise and rounds to `u8`, converting to grey for one channel.
fn quantize(rgb: &[f32], channels: usize, noise_std: f32, g: &mut ChaCha8Rng, out: &mut [u8]) {
    let mut q = |v: f32| {
        let z: f32 = if noise_std > 0.0 {
            g.sample::<f32, _>(StandardNormal) * noise_std
        } else {
            0.0
        };
        (v + z).round().clamp(0.0, 255.0) as u8
    };
    if channels == 3 {
        for (o, &v) in out.iter_mut().zip(rgb) {
            *o = q(v);
        }
    } else {
        for (o, p) in out.iter_mut().zip(rgb.chunks_exact(3)) {
            *o = q(0.2126 * p[0] + 0.7152 * p[1] + 0.0722 * p[2]);
        }
    }
}
