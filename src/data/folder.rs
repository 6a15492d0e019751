//! Real video datasets on disk, as folders of extracted frames.
//!
//! # Layout
//! ```text
//! ROOT/<class>/<clip>/<frame>.{png,jpg,jpeg}              groups = None
//! ROOT/<class>/<group>/<clip>/<frame>.{png,jpg,jpeg}      groups = Present (UCF11, UCF50)
//! ```
//! With [`GroupLevel::Auto`] each folder under a class is a clip if it holds image files,
//! and a group of clips otherwise; a tree that has both is loaded and reported in
//! [`LoadReport::mixed_layout`]. Class names are the class folder names, sorted; labels
//! follow that order. Frames are the image files of a clip folder in natural order
//! (`f2.png` before `f10.png`); hidden entries and other files (videos, text) are ignored.
//! This is the tree `ffmpeg -i clip.avi -vf fps=5 clip/%04d.jpg` produces per video.
//!
//! # What is loaded
//! Each clip keeps a **pool** of `P = pool` frames, taken at uniform positions
//! `floor((k + 1/2) F / P)` of its `F` frame files (repeating frames if `F < P`), decoded
//! by [`image`](super::image) (PNG or JPEG), converted to RGB or grey (Rec. 709 luma),
//! resized to `H x W` (triangle filter, aspect ratio not kept) and held as `u8`. A model sees `T <= P` of them per clip
//! ([`VideoDataset::fill_clip`]): for training `T` sorted distinct random pool
//! positions seeded by `(epoch_seed, index)`; for evaluation the uniform positions
//! `floor((k + 1/2) P / T)`. With `P = T` (the default) both are all the pool frames, the
//! literature's "6 frames per clip"; a larger pool gives varied training positions at
//! proportional memory.
//!
//! # Memory
//! All pixels live in one `Vec<u8>` of `clips * P * N` bytes (`N = H * W * C`), filled in
//! place by parallel decoding (no `f32` copy of the set, no second buffer); conversion to
//! `f32` happens per clip into the caller's batch. Metadata adds a few hundred bytes per
//! clip (its path). A UCF11-sized set, 1,600 clips x 6 frames x 57,600 values, holds
//! 552,960,000 bytes of pixels; [`FolderDataset::bytes_held`] reports the total.
//!
//! # Problems
//! Every frame file's header is read at load time, and the pool frames are decoded in
//! full. Unreadable images (missing, truncated, not an image), clips with fewer than `T`
//! readable frames and classes left without clips are either skipped, each recorded as a
//! [`LoadIssue`] in the [`LoadReport`] ([`OnProblem::Skip`]), or turned into an
//! [`Error::Corrupt`] naming the path ([`OnProblem::Error`]). An unreadable frame is
//! dropped from its clip and the clip's positions are taken again from the remaining
//! files. Nothing on disk can make the loader panic (decoder panics are caught and
//! reported as unreadable images).

use std::cmp::Ordering;
use std::fmt;
use std::path::{Path, PathBuf};

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::{VideoDataset, check_fill, derive_seed, pixels_to_f32};
use crate::{Error, Result};

/// Whether a group level sits between classes and clips.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum GroupLevel {
    /// `class/clip/frames`: every clip is its own group.
    None,
    /// `class/group/clip/frames`.
    Present,
    /// Per folder: a folder under a class holding image files is a clip, otherwise a group.
    Auto,
}

/// How group folders are turned into group identities for group-aware splits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum GroupKey {
    /// `class/group`: groups of different classes are different.
    ClassAndFolder,
    /// The trailing digits of the group folder name (`v_shooting_07` -> `07`), shared by
    /// all classes: the UCF11/UCF50 protocol, where group `g` of every class is held out
    /// together. Folders without trailing digits use their whole name.
    TrailingNumber,
}

/// What to do with unreadable images, short clips and empty classes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum OnProblem {
    /// Skip the item and record a [`LoadIssue`] in the [`LoadReport`].
    Skip,
    /// Fail with [`Error::Corrupt`] naming the path.
    Error,
}

/// Configuration of a [`FolderDataset`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FolderConfig {
    /// Frame height `H` after resizing, `1..=1024`.
    pub height: usize,
    /// Frame width `W` after resizing, `1..=1024`.
    pub width: usize,
    /// Channels: 3 (RGB) or 1 (grey).
    pub channels: usize,
    /// Frames per clip handed to the model, `T >= 1`.
    pub frames: usize,
    /// Frames per clip kept in memory, `P >= T` (at most 1024).
    pub pool: usize,
    /// Group level of the folder tree.
    pub groups: GroupLevel,
    /// How group folders map to group ids.
    pub group_key: GroupKey,
    /// Skip-and-report or fail.
    pub on_problem: OnProblem,
}

impl FolderConfig {
    /// `H x W x 3`, `T` frames, pool `T`, [`GroupLevel::Auto`], groups per class,
    /// [`OnProblem::Skip`].
    pub fn new(height: usize, width: usize, frames: usize) -> Self {
        FolderConfig {
            height,
            width,
            channels: 3,
            frames,
            pool: frames,
            groups: GroupLevel::Auto,
            group_key: GroupKey::ClassAndFolder,
            on_problem: OnProblem::Skip,
        }
    }

    /// The literature's UCF11 protocol: 160x120 RGB (`H = 120`, `W = 160`), 6 frames,
    /// `class/group/clip` with groups numbered across classes.
    pub fn ucf11() -> Self {
        FolderConfig {
            groups: GroupLevel::Present,
            group_key: GroupKey::TrailingNumber,
            ..Self::new(120, 160, 6)
        }
    }

    /// Sets the frames per clip `T` and the pool with it (`P = T`: every clip keeps the
    /// `T` frames at uniform positions of its files).
    ///
    /// ```
    /// use tnet::data::FolderConfig;
    /// let c = FolderConfig::ucf11().with_frames(8);
    /// assert_eq!((c.frames, c.pool), (8, 8));
    /// c.check().unwrap();
    /// ```
    pub fn with_frames(mut self, frames: usize) -> Self {
        self.frames = frames;
        self.pool = frames;
        self
    }

    /// Values per frame, `H * W * C`.
    pub fn frame_len(&self) -> usize {
        self.height * self.width * self.channels
    }

    /// Validates the sizes.
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] naming the field.
    pub fn check(&self) -> Result<()> {
        for (name, v) in [("height", self.height), ("width", self.width)] {
            if !(1..=1024).contains(&v) {
                return Err(Error::param(name, format!("{v} is outside 1..=1024")));
            }
        }
        if self.channels != 1 && self.channels != 3 {
            return Err(Error::param(
                "channels",
                format!("{} channels; use 1 (grey) or 3 (RGB)", self.channels),
            ));
        }
        if self.frames == 0 {
            return Err(Error::param("frames", "a clip needs at least one frame"));
        }
        if self.frames > 1024 {
            return Err(Error::param(
                "frames",
                format!(
                    "{} frames per clip; at most 1024 are supported",
                    self.frames
                ),
            ));
        }
        if self.pool < self.frames || self.pool > 1024 {
            return Err(Error::param(
                "pool",
                format!(
                    "the pool (frames decoded and kept per clip) is {} but a model takes {}                      frames per clip: it must be between {} and 1024 (FolderConfig::with_frames                      sets both)",
                    self.pool, self.frames, self.frames
                ),
            ));
        }
        Ok(())
    }
}

/// What went wrong with one path while loading.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum IssueKind {
    /// An image file that could not be opened or decoded.
    UnreadableImage {
        /// The decoder's or the OS's message.
        reason: String,
    },
    /// A clip with fewer readable frames than a model needs.
    ShortClip {
        /// Readable frames found.
        found: usize,
        /// Frames per clip required (`T`).
        needed: usize,
    },
    /// A class folder without any usable clip.
    EmptyClass,
}

/// One problem met while loading, with its path.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoadIssue {
    /// The image, clip or class folder concerned.
    pub path: PathBuf,
    /// What is wrong.
    pub kind: IssueKind,
}

impl fmt::Display for LoadIssue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let p = self.path.display();
        match &self.kind {
            IssueKind::UnreadableImage { reason } => {
                write!(f, "unreadable image {p}: {reason} (frame skipped)")
            }
            IssueKind::ShortClip { found, needed } => write!(
                f,
                "clip {p} has {found} readable frame(s), {needed} needed (clip skipped)"
            ),
            IssueKind::EmptyClass => write!(
                f,
                "class folder {p} has no usable clip folder of frame images (class skipped; \
                 extract frames first, e.g. ffmpeg -i clip.avi clip/%04d.jpg)"
            ),
        }
    }
}

impl LoadIssue {
    fn into_error(self) -> Error {
        let reason = self.to_string();
        Error::Corrupt {
            path: Some(self.path),
            reason,
        }
    }
}

/// Summary of a load: what was kept and every problem skipped.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoadReport {
    /// Classes kept.
    pub classes: usize,
    /// Clips kept.
    pub clips: usize,
    /// Clips skipped (short or with too many unreadable frames).
    pub clips_skipped: usize,
    /// Image files that could not be decoded.
    pub images_unreadable: usize,
    /// Every problem, in path order.
    pub issues: Vec<LoadIssue>,
    /// With [`GroupLevel::Auto`], the classes whose clips sit directly in the class folder
    /// and those whose clips sit in group folders, when the tree has both (a class may be
    /// in both lists); `None` for a tree of one layout. Clips without a group folder are
    /// each their own group in a group-aware split.
    #[serde(default)]
    pub mixed_layout: Option<MixedLayout>,
}

/// The classes of a tree that mixes `class/clip` and `class/group/clip`
/// ([`LoadReport::mixed_layout`]).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MixedLayout {
    /// Classes with clip folders directly under the class folder.
    pub flat: Vec<String>,
    /// Classes with clip folders under group folders.
    pub grouped: Vec<String>,
}

impl fmt::Display for MixedLayout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "clip folders sit directly in the class folder for {} and in group folders for {}",
            self.flat.join(", "),
            self.grouped.join(", ")
        )
    }
}

impl fmt::Display for LoadReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} classes, {} clips loaded; {} clips skipped, {} unreadable images",
            self.classes, self.clips, self.clips_skipped, self.images_unreadable
        )?;
        for issue in &self.issues {
            write!(f, "\n  warning: {issue}")?;
        }
        Ok(())
    }
}

#[derive(Clone, Debug)]
struct ClipMeta {
    label: usize,
    group: usize,
    dir: PathBuf,
    source_frames: usize,
}

/// A frame-folder dataset held in memory as `u8`; see the [module docs](self).
///
/// # Example
/// ```
/// use tnet::data::{FolderConfig, FolderDataset, VideoDataset};
/// let root = std::env::temp_dir().join(format!("tnet-doc-folder-{}", std::process::id()));
/// for (class, shade) in [("dark", 40u8), ("light", 200u8)] {
///     for clip in 0..2 {
///         let dir = root.join(class).join(format!("clip{clip}"));
///         std::fs::create_dir_all(&dir).unwrap();
///         for t in 0..3 {
///             let png = tnet::data::image::encode_png(8, 6, 3, &[shade; 8 * 6 * 3]).unwrap();
///             std::fs::write(dir.join(format!("{t:04}.png")), png).unwrap();
///         }
///     }
/// }
/// let data = FolderDataset::open(&root, &FolderConfig::new(3, 4, 2)).unwrap();
/// assert_eq!(data.class_names(), ["dark", "light"]);
/// assert_eq!(data.len(), 4);
/// assert_eq!(data.pixel_bytes(), 4 * 2 * 3 * 4 * 3);
/// let mut x = vec![0.0; 2 * 36];
/// data.fill_clip(3, false, 0, &mut x).unwrap();
/// assert_eq!(x[0], (200.0 - 128.0) / 128.0);
/// std::fs::remove_dir_all(&root).unwrap();
/// ```
#[derive(Clone, Debug)]
pub struct FolderDataset {
    root: PathBuf,
    cfg: FolderConfig,
    class_names: Vec<String>,
    group_names: Vec<String>,
    clips: Vec<ClipMeta>,
    pixels: Vec<u8>,
    report: LoadReport,
    grouped: bool,
}

/// A clip found by the scan, before decoding.
struct Candidate {
    class: usize,
    group: Option<String>,
    dir: PathBuf,
    files: Vec<PathBuf>,
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |source| Error::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn is_hidden(p: &Path) -> bool {
    p.file_name()
        .and_then(|n| n.to_str())
        .is_none_or(|n| n.starts_with('.'))
}

fn is_image(p: &Path) -> bool {
    p.extension()
        .and_then(|e| e.to_str())
        .map(|e| e.to_ascii_lowercase())
        .is_some_and(|e| e == "png" || e == "jpg" || e == "jpeg")
}

/// Compares names with digit runs as numbers: `f2` < `f10`.
fn natural_cmp(a: &str, b: &str) -> Ordering {
    let (mut x, mut y) = (a.as_bytes(), b.as_bytes());
    loop {
        match (x.first(), y.first()) {
            (None, None) => return a.cmp(b),
            (None, _) => return Ordering::Less,
            (_, None) => return Ordering::Greater,
            (Some(c), Some(d)) if c.is_ascii_digit() && d.is_ascii_digit() => {
                let nx = x.iter().take_while(|c| c.is_ascii_digit()).count();
                let ny = y.iter().take_while(|c| c.is_ascii_digit()).count();
                let (dx, dy) = (&x[..nx], &y[..ny]);
                let tx = dx.iter().skip_while(|&&c| c == b'0').count();
                let ty = dy.iter().skip_while(|&&c| c == b'0').count();
                let ord = tx.cmp(&ty).then_with(|| dx[nx - tx..].cmp(&dy[ny - ty..]));
                if ord != Ordering::Equal {
                    return ord;
                }
                x = &x[nx..];
                y = &y[ny..];
            }
            (Some(c), Some(d)) => {
                if c != d {
                    return c.cmp(d);
                }
                x = &x[1..];
                y = &y[1..];
            }
        }
    }
}

fn name_of(p: &Path) -> String {
    p.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Visible entries of a folder, split into sub-folders and image files, natural order.
fn list_dir(dir: &Path) -> Result<(Vec<PathBuf>, Vec<PathBuf>)> {
    let mut dirs = Vec::new();
    let mut images = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io_err(dir))? {
        let path = entry.map_err(io_err(dir))?.path();
        if is_hidden(&path) {
            continue;
        }
        if path.is_dir() {
            dirs.push(path);
        } else if is_image(&path) {
            images.push(path);
        }
    }
    let by_name = |a: &PathBuf, b: &PathBuf| natural_cmp(&name_of(a), &name_of(b));
    dirs.sort_by(by_name);
    images.sort_by(by_name);
    Ok((dirs, images))
}

/// Uniform positions `floor((k + 1/2) from / to)`, `k < to`.
fn uniform_positions(from: usize, to: usize) -> impl Iterator<Item = usize> {
    (0..to).map(move |k| ((2 * k + 1) * from) / (2 * to))
}

/// Decodes one image to `h x w x c` bytes in `dst`; any failure (including a decoder
/// panic) becomes a message.
fn decode_into(path: &Path, cfg: &FolderConfig, dst: &mut [u8]) -> std::result::Result<(), String> {
    let run = || -> std::result::Result<(), String> {
        let bytes = std::fs::read(path).map_err(|e| e.to_string())?;
        let img = super::image::decode(&bytes).map_err(|e| e.to_string())?;
        let img = if cfg.channels == 3 {
            img.to_rgb()
        } else {
            img.to_grey()
        };
        let raw = img.resize(cfg.width, cfg.height).into_pixels();
        if raw.len() != dst.len() {
            return Err(format!(
                "decoded {} bytes, expected {}",
                raw.len(),
                dst.len()
            ));
        }
        dst.copy_from_slice(&raw);
        Ok(())
    };
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(run)) {
        Ok(r) => r,
        Err(_) => Err("the image decoder panicked on this file".to_string()),
    }
}

/// Bytes read to find an image's dimensions (PNG: the first 33; JPEG: up to the frame
/// header, usually within the first few kilobytes).
const HEADER_PREFIX: usize = 64 * 1024;

/// Reads an image's header (format and dimensions) without decoding its pixels.
fn check_header(path: &Path) -> std::result::Result<(), String> {
    let run = || -> std::result::Result<(), String> {
        // The header is at the start (a JPEG's frame header may follow large metadata:
        // then the whole file).
        use std::io::Read as _;
        let mut prefix = Vec::with_capacity(HEADER_PREFIX);
        std::fs::File::open(path)
            .and_then(|f| f.take(HEADER_PREFIX as u64).read_to_end(&mut prefix))
            .map_err(|e| e.to_string())?;
        let (w, h) = match super::image::dimensions(&prefix) {
            Ok(d) => d,
            Err(_) if prefix.len() == HEADER_PREFIX => {
                let bytes = std::fs::read(path).map_err(|e| e.to_string())?;
                super::image::dimensions(&bytes).map_err(|e| e.to_string())?
            }
            Err(e) => return Err(e.to_string()),
        };
        if w == 0 || h == 0 {
            return Err(format!("image has size {w}x{h}"));
        }
        Ok(())
    };
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(run))
        .unwrap_or_else(|_| Err("the image decoder panicked on this file".to_string()))
}

impl FolderDataset {
    /// Scans `root`, decodes `pool` frames of every clip in parallel and keeps them as
    /// `u8`.
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] from [`FolderConfig::check`]; [`Error::Io`] if `root`
    /// or a folder cannot be listed; [`Error::Corrupt`] if no class has a usable clip, or,
    /// with [`OnProblem::Error`], for the first unreadable image, short clip or empty
    /// class.
    ///
    /// # Complexity
    /// Decodes `clips * P` images (plus replacements for unreadable ones) on the rayon
    /// pool; memory `clips * P * N` bytes plus one decoded image per thread.
    pub fn open(root: impl AsRef<Path>, cfg: &FolderConfig) -> Result<Self> {
        cfg.check()?;
        let root = root.as_ref().to_path_buf();
        let (class_dirs, _) = list_dir(&root)?;
        if class_dirs.is_empty() {
            return Err(Error::Corrupt {
                path: Some(root),
                reason: "no class folders found (expected ROOT/<class>/[<group>/]<clip>/<frames>)"
                    .into(),
            });
        }
        let strict = cfg.on_problem == OnProblem::Error;
        let mut issues = Vec::new();
        let mut report_issue = |issue: LoadIssue| -> Result<()> {
            if strict {
                Err(issue.into_error())
            } else {
                issues.push(issue);
                Ok(())
            }
        };

        // 1. Scan.
        let mut candidates = Vec::new();
        let mut scanned = 0;
        let mut layout = MixedLayout::default();
        for (class, class_dir) in class_dirs.iter().enumerate() {
            let (subdirs, _) = list_dir(class_dir)?;
            let mut found = Vec::new();
            for sub in subdirs {
                let (inner, images) = list_dir(&sub)?;
                let is_group = match cfg.groups {
                    GroupLevel::None => false,
                    GroupLevel::Present => true,
                    GroupLevel::Auto => images.is_empty() && !inner.is_empty(),
                };
                if is_group {
                    let group = name_of(&sub);
                    for clip in inner {
                        let (_, files) = list_dir(&clip)?;
                        found.push(Candidate {
                            class,
                            group: Some(group.clone()),
                            dir: clip,
                            files,
                        });
                    }
                } else {
                    found.push(Candidate {
                        class,
                        group: None,
                        dir: sub,
                        files: images,
                    });
                }
            }
            scanned += found.len();
            let name = name_of(class_dir);
            if found.iter().any(|c| c.group.is_none()) {
                layout.flat.push(name.clone());
            }
            if found.iter().any(|c| c.group.is_some()) {
                layout.grouped.push(name);
            }
            for c in found {
                if c.files.len() < cfg.frames {
                    report_issue(LoadIssue {
                        path: c.dir.clone(),
                        kind: IssueKind::ShortClip {
                            found: c.files.len(),
                            needed: cfg.frames,
                        },
                    })?;
                } else {
                    candidates.push(c);
                }
            }
        }

        // 2. Decode in place into one buffer.
        let stride = cfg.pool * cfg.frame_len();
        let mut pixels = vec![0u8; candidates.len() * stride];
        let outcomes: Vec<(usize, Vec<LoadIssue>, bool)> = pixels
            .par_chunks_mut(stride.max(1))
            .zip(candidates.par_iter())
            .map(|(dst, cand)| decode_clip(cand, cfg, dst))
            .collect();
        let mut keep = Vec::with_capacity(candidates.len());
        let mut images_unreadable = 0;
        let mut used_frames = Vec::with_capacity(candidates.len());
        for (frames, clip_issues, ok) in outcomes {
            images_unreadable += clip_issues
                .iter()
                .filter(|i| matches!(i.kind, IssueKind::UnreadableImage { .. }))
                .count();
            for issue in clip_issues {
                report_issue(issue)?;
            }
            keep.push(ok);
            used_frames.push(frames);
        }

        // 3. Compact the buffer over skipped clips, drop empty classes, relabel.
        let mut kept = 0;
        for (i, &ok) in keep.iter().enumerate() {
            if ok {
                if kept != i {
                    pixels.copy_within(i * stride..(i + 1) * stride, kept * stride);
                }
                kept += 1;
            }
        }
        pixels.truncate(kept * stride);
        pixels.shrink_to_fit();
        let mut per_class = vec![0usize; class_dirs.len()];
        for (c, &ok) in candidates.iter().zip(&keep) {
            if ok {
                per_class[c.class] += 1;
            }
        }
        let mut new_label = vec![usize::MAX; class_dirs.len()];
        let mut class_names = Vec::new();
        for (class, dir) in class_dirs.iter().enumerate() {
            if per_class[class] == 0 {
                report_issue(LoadIssue {
                    path: dir.clone(),
                    kind: IssueKind::EmptyClass,
                })?;
            } else {
                new_label[class] = class_names.len();
                class_names.push(name_of(dir));
            }
        }
        if class_names.is_empty() {
            let short: Vec<usize> = issues
                .iter()
                .filter_map(|i| match i.kind {
                    IssueKind::ShortClip { found, .. } => Some(found),
                    _ => None,
                })
                .collect();
            let reason = match short.iter().max() {
                Some(&longest) => format!(
                    "no usable clip: {} clip folders found, the longest with {longest}                      readable frame(s), but {} frames per clip were asked for (ask for at                      most {longest})",
                    scanned, cfg.frames
                ),
                None if scanned == 0 => "no clip folders of frame images found (expected                                             ROOT/<class>/<clip>/<frames> or                                             ROOT/<class>/<group>/<clip>/<frames>, frames as                                             .png/.jpg)"
                    .to_string(),
                None => format!(
                    "no usable clip: none of the {scanned} clip folders has {} readable frames",
                    cfg.frames
                ),
            };
            return Err(Error::Corrupt {
                path: Some(root),
                reason,
            });
        }
        let grouped = candidates
            .iter()
            .zip(&keep)
            .any(|(c, &ok)| ok && c.group.is_some());
        let mut group_names: Vec<String> = Vec::new();
        let mut clips = Vec::with_capacity(kept);
        for ((cand, &ok), frames) in candidates.into_iter().zip(&keep).zip(used_frames) {
            if !ok {
                continue;
            }
            let key = match (&cand.group, cfg.group_key) {
                (None, _) => format!(
                    "{}/{}",
                    class_names[new_label[cand.class]],
                    name_of(&cand.dir)
                ),
                (Some(g), GroupKey::ClassAndFolder) => {
                    format!("{}/{g}", class_names[new_label[cand.class]])
                }
                (Some(g), GroupKey::TrailingNumber) => {
                    let digits = g.len() - g.trim_end_matches(|c: char| c.is_ascii_digit()).len();
                    if digits > 0 {
                        g[g.len() - digits..].to_string()
                    } else {
                        g.clone()
                    }
                }
            };
            let group = match group_names.iter().position(|n| *n == key) {
                Some(p) => p,
                None => {
                    group_names.push(key);
                    group_names.len() - 1
                }
            };
            clips.push(ClipMeta {
                label: new_label[cand.class],
                group,
                dir: cand.dir,
                source_frames: frames,
            });
        }
        let report = LoadReport {
            classes: class_names.len(),
            clips: clips.len(),
            clips_skipped: issues
                .iter()
                .filter(|i| matches!(i.kind, IssueKind::ShortClip { .. }))
                .count(),
            images_unreadable,
            issues,
            mixed_layout: (!layout.flat.is_empty() && !layout.grouped.is_empty()).then_some(layout),
        };
        Ok(FolderDataset {
            root,
            cfg: cfg.clone(),
            class_names,
            group_names,
            clips,
            pixels,
            report,
            grouped,
        })
    }

    /// Whether any clip kept came from a group folder (`class/group/clip`); with
    /// [`GroupLevel::Auto`] a flat `class/clip` tree has none, and every clip is its own
    /// group.
    pub fn has_group_folders(&self) -> bool {
        self.grouped
    }

    /// The folder the dataset was read from.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The configuration.
    pub fn config(&self) -> &FolderConfig {
        &self.cfg
    }

    /// What was loaded and every problem skipped.
    pub fn report(&self) -> &LoadReport {
        &self.report
    }

    /// Frame shape `(H, W, C)`.
    pub fn frame_shape(&self) -> (usize, usize, usize) {
        (self.cfg.height, self.cfg.width, self.cfg.channels)
    }

    /// Folder of clip `index`.
    ///
    /// # Panics
    /// If `index >= len()`.
    pub fn clip_dir(&self, index: usize) -> &Path {
        &self.clips[index].dir
    }

    /// Readable frame files of clip `index` on disk (`F`).
    ///
    /// # Panics
    /// If `index >= len()`.
    pub fn source_frames(&self, index: usize) -> usize {
        self.clips[index].source_frames
    }

    /// Group id of clip `index` (an index into [`group_names`](Self::group_names)).
    ///
    /// # Panics
    /// If `index >= len()`.
    pub fn group(&self, index: usize) -> usize {
        self.clips[index].group
    }

    /// [`group`](Self::group) of every clip, for group-aware splits.
    pub fn group_ids(&self) -> Vec<usize> {
        self.clips.iter().map(|c| c.group).collect()
    }

    /// Group names (`class/clip` for clips without a group level).
    pub fn group_names(&self) -> &[String] {
        &self.group_names
    }

    /// Bytes of pixel data: exactly `len * P * N`.
    pub fn pixel_bytes(&self) -> usize {
        self.pixels.len()
    }

    /// Bytes held by the dataset: the pixel buffer's capacity plus metadata (names,
    /// paths, per-clip records, the report).
    pub fn bytes_held(&self) -> usize {
        let strings = |v: &[String]| v.iter().map(|s| s.capacity()).sum::<usize>();
        std::mem::size_of::<Self>()
            + self.pixels.capacity()
            + self.clips.capacity() * std::mem::size_of::<ClipMeta>()
            + self
                .clips
                .iter()
                .map(|c| c.dir.as_os_str().len())
                .sum::<usize>()
            + self.class_names.capacity() * std::mem::size_of::<String>()
            + strings(&self.class_names)
            + self.group_names.capacity() * std::mem::size_of::<String>()
            + strings(&self.group_names)
            + self.report.issues.capacity() * std::mem::size_of::<LoadIssue>()
            + self
                .report
                .issues
                .iter()
                .map(|i| {
                    i.path.as_os_str().len()
                        + match &i.kind {
                            IssueKind::UnreadableImage { reason } => reason.capacity(),
                            _ => 0,
                        }
                })
                .sum::<usize>()
    }

    /// Pool positions used for clip `index`: sorted distinct random positions seeded by
    /// `(epoch_seed, index)` when `train`, the uniform positions `floor((k + 1/2) P / T)`
    /// otherwise.
    pub fn positions(&self, index: usize, train: bool, epoch_seed: u64) -> Vec<usize> {
        let (p, t) = (self.cfg.pool, self.cfg.frames);
        if train && p > t {
            let mut g = ChaCha8Rng::seed_from_u64(derive_seed(epoch_seed, 300, index as u64));
            let mut v = rand::seq::index::sample(&mut g, p, t).into_vec();
            v.sort_unstable();
            v
        } else {
            uniform_positions(p, t).collect()
        }
    }
}

/// One clip folder of frame images as a model sees it at evaluation: the `T =
/// cfg.frames` frames at the positions [`FolderDataset`] uses for evaluation (uniform
/// positions of the pool, itself at uniform positions of the files), decoded, resized and
/// scaled to `[-1, 1)`, row `t` holding frame `t` (`T x N`).
///
/// This is how a clip outside any dataset is classified (`tnet predict`).
///
/// # Errors
/// [`Error::InvalidParameter`] for an invalid `cfg`; [`Error::Io`] if the folder cannot be
/// listed; [`Error::Corrupt`] naming the folder if it holds fewer than `T` readable frame
/// images (with the unreadable files and their reasons).
///
/// # Example
/// ```
/// use tnet::data::{FolderConfig, folder::read_clip};
/// let dir = std::env::temp_dir().join(format!("tnet-doc-clip-{}", std::process::id()));
/// std::fs::create_dir_all(&dir).unwrap();
/// for t in 0..4u8 {
///     let png = tnet::data::image::encode_png(8, 6, 3, &[64 * t; 8 * 6 * 3]).unwrap();
///     std::fs::write(dir.join(format!("{t}.png")), png).unwrap();
/// }
/// let x = read_clip(&dir, &FolderConfig::new(3, 4, 2)).unwrap();
/// assert_eq!(x.dim(), (2, 36));
/// assert_eq!(x[[0, 0]], (64.0 - 128.0) / 128.0); // files 0..4 -> frames 1 and 3
/// std::fs::remove_dir_all(&dir).unwrap();
/// ```
pub fn read_clip(dir: &Path, cfg: &FolderConfig) -> Result<ndarray::Array2<f32>> {
    cfg.check()?;
    let (_, files) = list_dir(dir)?;
    let cand = Candidate {
        class: 0,
        group: None,
        dir: dir.to_path_buf(),
        files,
    };
    let n = cfg.frame_len();
    let mut pool = vec![0u8; cfg.pool * n];
    let (_, issues, ok) = decode_clip(&cand, cfg, &mut pool);
    if !ok {
        let reasons: Vec<String> = issues.iter().map(LoadIssue::to_string).collect();
        return Err(Error::Corrupt {
            path: Some(dir.to_path_buf()),
            reason: reasons.join("; "),
        });
    }
    let mut out = ndarray::Array2::<f32>::zeros((cfg.frames, n));
    for (mut row, p) in out
        .rows_mut()
        .into_iter()
        .zip(uniform_positions(cfg.pool, cfg.frames))
    {
        pixels_to_f32(
            &pool[p * n..(p + 1) * n],
            row.as_slice_mut().expect("rows of a fresh array"),
        );
    }
    Ok(out)
}

/// Decodes the pool of one clip into `dst`. Returns (readable frame files, issues, ok).
fn decode_clip(
    cand: &Candidate,
    cfg: &FolderConfig,
    dst: &mut [u8],
) -> (usize, Vec<LoadIssue>, bool) {
    let n = cfg.frame_len();
    let mut issues = Vec::new();
    // Every file's header is checked (cheap); the pool frames are decoded in full below.
    let mut files: Vec<&PathBuf> = Vec::with_capacity(cand.files.len());
    for f in &cand.files {
        match check_header(f) {
            Ok(()) => files.push(f),
            Err(reason) => issues.push(LoadIssue {
                path: f.clone(),
                kind: IssueKind::UnreadableImage { reason },
            }),
        }
    }
    'retry: loop {
        if files.len() < cfg.frames {
            issues.push(LoadIssue {
                path: cand.dir.clone(),
                kind: IssueKind::ShortClip {
                    found: files.len(),
                    needed: cfg.frames,
                },
            });
            return (files.len(), issues, false);
        }
        let mut last: Option<(usize, usize)> = None; // (file index, pool slot) decoded last
        for (slot, f) in uniform_positions(files.len(), cfg.pool).enumerate() {
            let frame = &mut dst[slot * n..(slot + 1) * n];
            if let Some((lf, ls)) = last
                && lf == f
            {
                dst.copy_within(ls * n..(ls + 1) * n, slot * n);
                continue;
            }
            if let Err(reason) = decode_into(files[f], cfg, frame) {
                issues.push(LoadIssue {
                    path: files[f].clone(),
                    kind: IssueKind::UnreadableImage { reason },
                });
                files.remove(f);
                continue 'retry;
            }
            last = Some((f, slot));
        }
        return (files.len(), issues, true);
    }
}

impl VideoDataset for FolderDataset {
    fn len(&self) -> usize {
        self.clips.len()
    }

    fn n_classes(&self) -> usize {
        self.class_names.len()
    }

    fn class_names(&self) -> Vec<String> {
        self.class_names.clone()
    }

    fn frames(&self) -> usize {
        self.cfg.frames
    }

    fn frame_len(&self) -> usize {
        self.cfg.frame_len()
    }

    fn label(&self, index: usize) -> usize {
        self.clips[index].label
    }

    fn fill_clip(&self, index: usize, train: bool, epoch_seed: u64, out: &mut [f32]) -> Result<()> {
        let (t, n) = (self.cfg.frames, self.cfg.frame_len());
        check_fill("FolderDataset::fill_clip", index, self.len(), t, n, out)?;
        let base = index * self.cfg.pool * n;
        for (k, p) in self
            .positions(index, train, epoch_seed)
            .into_iter()
            .enumerate()
        {
            let src = &self.pixels[base + p * n..base + (p + 1) * n];
            pixels_to_f32(src, &mut out[k * n..(k + 1) * n]);
        }
        Ok(())
    }
}
