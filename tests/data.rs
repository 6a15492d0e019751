//! Video data: synthetic clips (determinism, balance, frames alone do not tell the class,
//! frame differences do), the frame-folder loader (problems, resizing, sampling, memory),
//! splits, and configuration errors.
#![allow(clippy::needless_range_loop, clippy::type_complexity)]
use std::path::Path;

use proptest::prelude::*;
use tnet::Error;
use tnet::data::folder::{GroupKey, IssueKind};
use tnet::data::{
    FolderConfig, FolderDataset, GroupLevel, OnProblem, Pattern, SyntheticConfig, SyntheticVideo,
    VideoDataset, class_counts, fill_batch, labels, split,
};

// ---------------------------------------------------------------------------------------
// Helpers: a softmax-regression classifier and clip features.

/// Multinomial logistic regression on standardised features, full-batch gradient descent.
struct Softmax {
    mean: Vec<f64>,
    std: Vec<f64>,
    w: Vec<Vec<f64>>, // classes x (features + 1)
}

impl Softmax {
    fn fit(x: &[Vec<f64>], y: &[usize], k: usize, l2: f64, iters: usize) -> Self {
        let d = x[0].len();
        let n = x.len() as f64;
        let mean: Vec<f64> = (0..d)
            .map(|j| x.iter().map(|r| r[j]).sum::<f64>() / n)
            .collect();
        let std: Vec<f64> = (0..d)
            .map(|j| {
                let v = x.iter().map(|r| (r[j] - mean[j]).powi(2)).sum::<f64>() / n;
                v.sqrt().max(1e-9)
            })
            .collect();
        let mut m = Softmax {
            mean,
            std,
            w: vec![vec![0.0; d + 1]; k],
        };
        let xs: Vec<Vec<f64>> = x.iter().map(|r| m.standardise(r)).collect();
        let lr = 0.5;
        for _ in 0..iters {
            let mut grad = vec![vec![0.0; d + 1]; k];
            for (r, &label) in xs.iter().zip(y) {
                let p = m.probs_std(r);
                for c in 0..k {
                    let e = p[c] - if c == label { 1.0 } else { 0.0 };
                    for j in 0..=d {
                        grad[c][j] += e * r[j];
                    }
                }
            }
            for c in 0..k {
                for j in 0..=d {
                    let reg = if j < d { l2 * m.w[c][j] } else { 0.0 };
                    m.w[c][j] -= lr * (grad[c][j] / n + reg);
                }
            }
        }
        m
    }

    fn standardise(&self, r: &[f64]) -> Vec<f64> {
        let mut s: Vec<f64> = r
            .iter()
            .zip(self.mean.iter().zip(&self.std))
            .map(|(v, (m, s))| (v - m) / s)
            .collect();
        s.push(1.0);
        s
    }

    fn probs_std(&self, r: &[f64]) -> Vec<f64> {
        let z: Vec<f64> = self
            .w
            .iter()
            .map(|w| w.iter().zip(r).map(|(a, b)| a * b).sum())
            .collect();
        let mx = z.iter().cloned().fold(f64::MIN, f64::max);
        let e: Vec<f64> = z.iter().map(|v| (v - mx).exp()).collect();
        let s: f64 = e.iter().sum();
        e.into_iter().map(|v| v / s).collect()
    }

    fn predict(&self, r: &[f64]) -> usize {
        let p = self.probs_std(&self.standardise(r));
        (0..p.len()).max_by(|&a, &b| p[a].total_cmp(&p[b])).unwrap()
    }

    fn accuracy(&self, x: &[Vec<f64>], y: &[usize]) -> f64 {
        let ok = x
            .iter()
            .zip(y)
            .filter(|(r, l)| self.predict(r) == **l)
            .count();
        ok as f64 / x.len() as f64
    }
}

/// Nearest class mean (Euclidean), trained on `x`, accuracy on `xt`.
fn ncm_accuracy(x: &[Vec<f64>], y: &[usize], xt: &[Vec<f64>], yt: &[usize], k: usize) -> f64 {
    let d = x[0].len();
    let mut means = vec![vec![0.0; d]; k];
    let mut counts = vec![0.0; k];
    for (r, &l) in x.iter().zip(y) {
        counts[l] += 1.0;
        for j in 0..d {
            means[l][j] += r[j];
        }
    }
    for c in 0..k {
        for v in &mut means[c] {
            *v /= counts[c];
        }
    }
    let ok = xt
        .iter()
        .zip(yt)
        .filter(|(r, l)| {
            let dist = |m: &Vec<f64>| {
                m.iter()
                    .zip(r.iter())
                    .map(|(a, b)| (a - b).powi(2))
                    .sum::<f64>()
            };
            let best = (0..k)
                .min_by(|&a, &b| dist(&means[a]).total_cmp(&dist(&means[b])))
                .unwrap();
            best == **l
        })
        .count();
    ok as f64 / xt.len() as f64
}

/// A clip as `u8` frames.
fn clip_u8(data: &SyntheticVideo, i: usize) -> Vec<Vec<u8>> {
    let (t, n) = (data.frames(), data.frame_len());
    let mut px = vec![0u8; t * n];
    data.clip_u8(i, &mut px).unwrap();
    px.chunks(n).map(|c| c.to_vec()).collect()
}

/// Single-frame features: 4x4 grid of channel means, channel means and spreads, gradient
/// energy, and the masses of red, blue and pale-yellow pixels (the event and lamp colours).
fn frame_features(f: &[u8], h: usize, w: usize) -> Vec<f64> {
    let px = |r: usize, c: usize, k: usize| f[(r * w + c) * 3 + k] as f64;
    let mut out = Vec::new();
    for gr in 0..4 {
        for gc in 0..4 {
            for k in 0..3 {
                let mut s = 0.0;
                let mut n = 0.0;
                for r in gr * h / 4..(gr + 1) * h / 4 {
                    for c in gc * w / 4..(gc + 1) * w / 4 {
                        s += px(r, c, k);
                        n += 1.0;
                    }
                }
                out.push(s / n);
            }
        }
    }
    for k in 0..3 {
        let vals: Vec<f64> = (0..h * w).map(|p| f[p * 3 + k] as f64).collect();
        let m = vals.iter().sum::<f64>() / vals.len() as f64;
        out.push(m);
        out.push((vals.iter().map(|v| (v - m).powi(2)).sum::<f64>() / vals.len() as f64).sqrt());
    }
    let grey = |r: usize, c: usize| (px(r, c, 0) + px(r, c, 1) + px(r, c, 2)) / 3.0;
    let mut grad = 0.0;
    for r in 0..h - 1 {
        for c in 0..w - 1 {
            grad += (grey(r, c + 1) - grey(r, c)).powi(2) + (grey(r + 1, c) - grey(r, c)).powi(2);
        }
    }
    out.push(grad.sqrt());
    let (red, blue, yellow) = colour_masses(f);
    out.extend([red, blue, yellow]);
    out
}

/// Counts of strongly red, strongly blue and pale-yellow pixels.
fn colour_masses(f: &[u8]) -> (f64, f64, f64) {
    let (mut red, mut blue, mut yellow) = (0.0, 0.0, 0.0);
    for p in f.chunks(3) {
        let (r, g, b) = (p[0] as f64, p[1] as f64, p[2] as f64);
        if r - g.max(b) > 90.0 {
            red += 1.0;
        }
        if b - r.max(g) > 60.0 && r < 90.0 {
            blue += 1.0;
        }
        if r > 200.0 && g > 185.0 && b < 175.0 && b > 60.0 {
            yellow += 1.0;
        }
    }
    (red, blue, yellow)
}

/// Temporal features of a clip, all built from pairs of consecutive frames: the
/// asymmetry of their circular cross-correlation at small shifts (direction of motion),
/// the change of spatial variance (growth), the changes of red / blue / yellow masses
/// (events, lamp) with their timing, and the frame-difference magnitude profile.
fn temporal_features(frames: &[Vec<u8>], h: usize, w: usize) -> Vec<f64> {
    let t = frames.len();
    let grey: Vec<Vec<f64>> = frames
        .iter()
        .map(|f| {
            let g: Vec<f64> = f
                .chunks(3)
                .map(|p| (p[0] as f64 + p[1] as f64 + p[2] as f64) / 3.0)
                .collect();
            let m = g.iter().sum::<f64>() / g.len() as f64;
            g.into_iter().map(|v| v - m).collect()
        })
        .collect();
    let mut out = Vec::new();
    // Cross-correlation asymmetry over the half-plane of shifts within radius 4.
    let corr = |a: &[f64], b: &[f64], dx: i64, dy: i64| {
        let mut s = 0.0;
        for r in 0..h {
            let rr = (r as i64 + dy).rem_euclid(h as i64) as usize;
            for c in 0..w {
                let cc = (c as i64 + dx).rem_euclid(w as i64) as usize;
                s += a[r * w + c] * b[rr * w + cc];
            }
        }
        s
    };
    let zero: f64 = (0..t - 1)
        .map(|k| corr(&grey[k], &grey[k + 1], 0, 0))
        .sum::<f64>()
        .abs()
        + 1e-9;
    for dy in 0..=4i64 {
        for dx in -4..=4i64 {
            if dy == 0 && dx <= 0 {
                continue;
            }
            let mut asym = 0.0;
            for k in 0..t - 1 {
                asym +=
                    corr(&grey[k], &grey[k + 1], dx, dy) - corr(&grey[k], &grey[k + 1], -dx, -dy);
            }
            out.push(asym / zero);
        }
    }
    // Variance change.
    let var: Vec<f64> = grey
        .iter()
        .map(|g| g.iter().map(|v| v * v).sum::<f64>())
        .collect();
    let mv = var.iter().sum::<f64>() / t as f64 + 1e-9;
    let dvar: Vec<f64> = (0..t - 1).map(|k| (var[k + 1] - var[k]) / mv).collect();
    out.push(dvar.iter().sum());
    out.extend(&dvar);
    // Colour mass changes and timing.
    let masses: Vec<(f64, f64, f64)> = frames.iter().map(|f| colour_masses(f)).collect();
    let centroid = |d: &[f64]| {
        let s: f64 = d.iter().map(|v| v.abs()).sum::<f64>() + 1e-9;
        d.iter()
            .enumerate()
            .map(|(k, v)| k as f64 * v.abs())
            .sum::<f64>()
            / s
    };
    let dr: Vec<f64> = (0..t - 1).map(|k| masses[k + 1].0 - masses[k].0).collect();
    let db: Vec<f64> = (0..t - 1).map(|k| masses[k + 1].1 - masses[k].1).collect();
    let dyel: Vec<f64> = (0..t - 1).map(|k| masses[k + 1].2 - masses[k].2).collect();
    out.extend(&dr);
    out.extend(&db);
    out.push(centroid(&dr) - centroid(&db));
    let flips = dyel.windows(2).filter(|p| p[0] * p[1] < 0.0).count() as f64;
    let moves = dyel.iter().filter(|v| v.abs() > 2.0).count() as f64;
    out.extend([flips, moves]);
    // Difference magnitude profile (speed changes), normalised.
    let mag: Vec<f64> = (0..t - 1)
        .map(|k| {
            grey[k]
                .iter()
                .zip(&grey[k + 1])
                .map(|(a, b)| (a - b).abs())
                .sum::<f64>()
        })
        .collect();
    let mm = mag.iter().sum::<f64>() / mag.len() as f64 + 1e-9;
    let slope: f64 = mag
        .iter()
        .enumerate()
        .map(|(k, v)| (k as f64 - (t as f64 - 2.0) / 2.0) * v / mm)
        .sum();
    out.push(slope);
    out
}

/// Accuracy of a frame-only logistic regression and a nearest-class-mean on raw pixels
/// (each test clip seen through one uniformly random frame), and of the temporal
/// classifier, with a stratified 75/25 split.
fn chance_and_temporal(cfg: SyntheticConfig) -> (f64, f64, f64, Vec<f64>) {
    let data = SyntheticVideo::new(cfg).unwrap();
    let (h, w, _) = data.frame_shape();
    let k = data.n_classes();
    let y = labels(&data);
    let s = split::holdout(data.len(), 0.25, 11, Some(&y)).unwrap();
    let clips: Vec<Vec<Vec<u8>>> = (0..data.len()).map(|i| clip_u8(&data, i)).collect();
    let t = data.frames();
    // Frame-only: train on every frame of the training clips, test on one random frame.
    let mut g = tnet::dense::rng(5);
    let (mut xf, mut yf, mut xp) = (Vec::new(), Vec::new(), Vec::new());
    for &i in &s.train {
        for f in &clips[i] {
            xf.push(frame_features(f, h, w));
            xp.push(f.iter().map(|&v| v as f64).collect::<Vec<f64>>());
            yf.push(y[i]);
        }
    }
    let (mut xft, mut xpt, mut yt) = (Vec::new(), Vec::new(), Vec::new());
    for &i in &s.test {
        let f = &clips[i][rand::Rng::random_range(&mut g, 0..t)];
        xft.push(frame_features(f, h, w));
        xpt.push(f.iter().map(|&v| v as f64).collect::<Vec<f64>>());
        yt.push(y[i]);
    }
    let frame_lr = Softmax::fit(&xf, &yf, k, 1e-3, 300).accuracy(&xft, &yt);
    let frame_ncm = ncm_accuracy(&xp, &yf, &xpt, &yt, k);
    // Temporal.
    let feats: Vec<Vec<f64>> = clips.iter().map(|c| temporal_features(c, h, w)).collect();
    let pick = |ix: &[usize]| -> (Vec<Vec<f64>>, Vec<usize>) {
        (
            ix.iter().map(|&i| feats[i].clone()).collect(),
            ix.iter().map(|&i| y[i]).collect(),
        )
    };
    let (xtr, ytr) = pick(&s.train);
    let (xte, yte) = pick(&s.test);
    let model = Softmax::fit(&xtr, &ytr, k, 1e-3, 400);
    let temporal = model.accuracy(&xte, &yte);
    let per_class: Vec<f64> = (0..k)
        .map(|c| {
            let idx: Vec<usize> = (0..yte.len()).filter(|&j| yte[j] == c).collect();
            idx.iter().filter(|&&j| model.predict(&xte[j]) == c).count() as f64 / idx.len() as f64
        })
        .collect();
    (frame_lr, frame_ncm, temporal, per_class)
}

// ---------------------------------------------------------------------------------------
// Synthetic data.

/// The same configuration and seed give bit-identical clips, cached or lazy, whatever the
/// thread count; another seed gives other clips.
#[test]
fn synthetic_is_deterministic() {
    let cfg = SyntheticConfig::quick();
    let a = SyntheticVideo::new(cfg.clone()).unwrap();
    let b = SyntheticVideo::new(SyntheticConfig {
        cache: false,
        ..cfg.clone()
    })
    .unwrap();
    assert!(a.is_cached() && !b.is_cached());
    let (t, n) = (a.frames(), a.frame_len());
    let idx: Vec<usize> = (0..a.len()).step_by(7).collect();
    let mut xa = vec![0.0f32; idx.len() * t * n];
    let mut xb = xa.clone();
    let mut ya = vec![0; idx.len()];
    let mut yb = ya.clone();
    fill_batch(&a, &idx, true, 3, &mut xa, &mut ya).unwrap();
    let one = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .unwrap();
    one.install(|| fill_batch(&b, &idx, false, 8, &mut xb, &mut yb))
        .unwrap();
    assert!(xa.iter().zip(&xb).all(|(p, q)| p.to_bits() == q.to_bits()));
    assert_eq!(ya, yb);
    let c = SyntheticVideo::new(cfg.with_seed(1)).unwrap();
    let mut xc = xa.clone();
    fill_batch(&c, &idx, true, 3, &mut xc, &mut yb).unwrap();
    let differ = xa.iter().zip(&xc).filter(|(p, q)| p != q).count();
    assert!(differ > xa.len() / 2, "seed 1 changed only {differ} values");
}

/// Clip i depends only on (seed, i): datasets of different sizes agree on shared clips.
#[test]
fn synthetic_clip_depends_only_on_seed_and_index() {
    let small = SyntheticVideo::new(SyntheticConfig {
        clips_per_class: 3,
        cache: false,
        ..SyntheticConfig::quick()
    })
    .unwrap();
    let large = SyntheticVideo::new(SyntheticConfig::quick()).unwrap();
    for i in 0..small.len() {
        assert_eq!(clip_u8(&small, i), clip_u8(&large, i), "clip {i}");
    }
}

/// Classes are balanced and interleaved; class names are the pattern names; grey and
/// odd sizes work; pixels are centred and scaled.
#[test]
fn synthetic_balanced_and_shaped() {
    for cfg in [
        SyntheticConfig::quick(),
        SyntheticConfig {
            height: 9,
            width: 13,
            channels: 1,
            frames: 4,
            clips_per_class: 5,
            ..SyntheticConfig::quick().with_classes(14).unwrap()
        },
    ] {
        let data = SyntheticVideo::new(cfg.clone()).unwrap();
        let counts = class_counts(&data);
        assert!(
            counts.iter().all(|&c| c == cfg.clips_per_class),
            "{counts:?}"
        );
        assert_eq!(data.len(), cfg.clips_per_class * cfg.patterns.len());
        assert_eq!(data.frame_len(), cfg.height * cfg.width * cfg.channels);
        let names = data.class_names();
        for (name, p) in names.iter().zip(&cfg.patterns) {
            assert_eq!(Pattern::from_name(name), Some(*p));
        }
        let mut x = vec![0.0f32; data.frames() * data.frame_len()];
        data.fill_clip(data.len() - 1, false, 0, &mut x).unwrap();
        assert!(x.iter().all(|v| (-1.0..1.0).contains(v)));
        let spread =
            x.iter().cloned().fold(f32::MIN, f32::max) - x.iter().cloned().fold(f32::MAX, f32::min);
        assert!(spread > 0.2, "a clip should not be flat, spread {spread}");
    }
    let ucf = SyntheticConfig::ucf11_like();
    assert_eq!(
        (ucf.height, ucf.width, ucf.channels, ucf.frames),
        (120, 160, 3, 6)
    );
    assert_eq!((ucf.n_classes(), ucf.frame_len()), (11, 57_600));
    assert!((1_500..=1_700).contains(&ucf.len()));
}

/// The UCF11-like preset renders (lazily) and its groups hold every class; a group-aware
/// split of it keeps groups apart.
#[test]
fn synthetic_ucf11_like_groups() {
    let data = SyntheticVideo::new(SyntheticConfig::ucf11_like()).unwrap();
    assert!(data.bytes_held() < 4096, "lazy preset holds no pixels");
    let mut x = vec![0.0f32; data.frames() * data.frame_len()];
    data.fill_clip(1_000, false, 0, &mut x).unwrap();
    let groups = data.group_ids();
    let y = labels(&data);
    for g in 0..25 {
        let classes: std::collections::BTreeSet<usize> = (0..data.len())
            .filter(|&i| groups[i] == g)
            .map(|i| y[i])
            .collect();
        assert_eq!(classes.len(), 11, "group {g}");
    }
    let s = split::group_holdout(&groups, 0.2, 1).unwrap();
    assert!(
        s.test
            .iter()
            .all(|&i| s.train.iter().all(|&j| groups[i] != groups[j]))
    );
}

/// Asserts that one random frame of `cfg`'s clips does not tell the class (frame-only
/// logistic regression and nearest class mean within `slack` of chance) while features of
/// consecutive-frame pairs do (at least `factor` times chance).
fn assert_needs_time(what: &str, cfg: SyntheticConfig, slack: f64, factor: f64) {
    let chance = 1.0 / cfg.n_classes() as f64;
    let (frame_lr, frame_ncm, temporal, per_class) = chance_and_temporal(cfg);
    println!(
        "{what}: frame LR {frame_lr:.3}, frame NCM {frame_ncm:.3}, temporal {temporal:.3}, per class {per_class:.2?}"
    );
    assert!(
        frame_lr < chance + slack,
        "{what}: frame-only LR {frame_lr} vs chance {chance}"
    );
    assert!(
        frame_ncm < chance + slack,
        "{what}: frame-only NCM {frame_ncm} vs chance {chance}"
    );
    assert!(
        temporal > factor * chance,
        "{what}: temporal {temporal} vs chance {chance}"
    );
}

/// Quick preset: one random frame does not tell the class (chance 1/6), features of
/// consecutive-frame pairs do, well above chance.
#[test]
fn synthetic_needs_time_quick() {
    let cfg = SyntheticConfig {
        clips_per_class: 200,
        ..SyntheticConfig::quick()
    };
    // 300 test clips: the standard deviation of a chance-level accuracy is 0.022.
    assert_needs_time("quick", cfg, 0.08, 3.0);
}

/// The first 14 patterns: still no single-frame signal, and a temporal signal well above
/// chance.
#[test]
fn synthetic_needs_time_all_patterns() {
    let cfg = SyntheticConfig {
        clips_per_class: 100,
        max_distractors: 2,
        ..SyntheticConfig::quick().with_classes(14).unwrap()
    };
    // 350 test clips: chance-level standard deviation 0.014.
    assert_needs_time("first 14", cfg, 0.06, 3.0);
}

/// The hard preset (slow and fast motion to either side, event order): no single-frame
/// signal, and a temporal signal well above chance (the pair features of the test are
/// cruder than a model: they see the speed only through a difference of two frames).
#[test]
fn synthetic_needs_time_hard() {
    let cfg = SyntheticConfig {
        clips_per_class: 200,
        ..SyntheticConfig::hard()
    };
    assert_eq!(cfg.patterns, Pattern::HARD.to_vec());
    // 240 test clips: a chance-level accuracy has standard deviation 0.024.
    assert_needs_time("hard", cfg, 0.08, 2.0);
}

/// Each invalid configuration field is rejected with an error naming it.
#[test]
fn synthetic_bad_configs() {
    let q = SyntheticConfig::quick;
    let cases: Vec<(SyntheticConfig, &str)> = vec![
        (SyntheticConfig { height: 4, ..q() }, "height"),
        (SyntheticConfig { width: 1000, ..q() }, "width"),
        (SyntheticConfig { channels: 2, ..q() }, "channels"),
        (SyntheticConfig { frames: 1, ..q() }, "frames"),
        (
            SyntheticConfig {
                frames: 2,
                patterns: vec![Pattern::BlinkFast, Pattern::BlinkSlow],
                ..q()
            },
            "frames",
        ),
        (
            SyntheticConfig {
                clips_per_class: 0,
                ..q()
            },
            "clips_per_class",
        ),
        (
            SyntheticConfig {
                patterns: vec![Pattern::Left],
                ..q()
            },
            "patterns",
        ),
        (
            SyntheticConfig {
                patterns: vec![Pattern::Left, Pattern::Left],
                ..q()
            },
            "patterns",
        ),
        (
            SyntheticConfig {
                object_size: 0.0,
                ..q()
            },
            "object_size",
        ),
        (
            SyntheticConfig {
                speed: f32::NAN,
                ..q()
            },
            "speed",
        ),
        (SyntheticConfig { zoom: 1.0, ..q() }, "zoom"),
        (
            SyntheticConfig {
                noise_std: -1.0,
                ..q()
            },
            "noise_std",
        ),
        (
            SyntheticConfig {
                jitter_std: 10.0,
                ..q()
            },
            "jitter_std",
        ),
        (
            SyntheticConfig {
                max_distractors: 99,
                ..q()
            },
            "max_distractors",
        ),
    ];
    for (cfg, field) in cases {
        match SyntheticVideo::new(cfg) {
            Err(Error::InvalidParameter { name, reason }) => {
                assert_eq!(name, field, "{reason}");
                assert!(!reason.is_empty());
            }
            other => panic!("{field}: expected InvalidParameter, got {other:?}"),
        }
    }
    assert!(matches!(
        q().with_classes(19),
        Err(Error::InvalidParameter {
            name: "classes",
            ..
        })
    ));
    assert!(matches!(
        q().with_classes(1),
        Err(Error::InvalidParameter { .. })
    ));
}

/// fill_clip and fill_batch reject wrong buffer sizes and indices instead of panicking.
#[test]
fn fill_errors() {
    let data = SyntheticVideo::new(SyntheticConfig::quick()).unwrap();
    let (t, n) = (data.frames(), data.frame_len());
    let mut x = vec![0.0f32; t * n];
    assert!(matches!(
        data.fill_clip(data.len(), false, 0, &mut x),
        Err(Error::IndexOutOfBounds { .. })
    ));
    assert!(matches!(
        data.fill_clip(0, false, 0, &mut x[1..]),
        Err(Error::ShapeMismatch { .. })
    ));
    let mut y = vec![0usize; 2];
    let mut xb = vec![0.0f32; 2 * t * n];
    assert!(matches!(
        fill_batch(&data, &[0], false, 0, &mut xb, &mut y[..1]),
        Err(Error::ShapeMismatch { .. })
    ));
    assert!(matches!(
        fill_batch(&data, &[0, 1], false, 0, &mut xb, &mut y[..1]),
        Err(Error::ShapeMismatch { .. })
    ));
    assert!(matches!(
        fill_batch(&data, &[0, 9999], false, 0, &mut xb, &mut y),
        Err(Error::IndexOutOfBounds { .. })
    ));
    let mut px = vec![0u8; t * n];
    assert!(matches!(
        data.clip_u8(9999, &mut px),
        Err(Error::IndexOutOfBounds { .. })
    ));
}

// ---------------------------------------------------------------------------------------
// Frame folders.

/// Writes an RGB image of one colour, PNG or JPEG (quality 90) by the extension.
fn write_image(path: &Path, w: u32, h: u32, rgb: [u8; 3]) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let pixels = rgb.repeat((w * h) as usize);
    if path.extension().is_some_and(|e| e == "jpg") {
        jpeg_encoder::Encoder::new_file(path, 90)
            .unwrap()
            .encode(&pixels, w as u16, h as u16, jpeg_encoder::ColorType::Rgb)
            .unwrap();
    } else {
        let png = tnet::data::image::encode_png(w as usize, h as usize, 3, &pixels).unwrap();
        std::fs::write(path, png).unwrap();
    }
}

/// Frame k of clip `clip` has red = 20 + 25 k, green = 10 * clip, blue = class colour.
fn colour(k: usize, clip: usize, class_blue: u8) -> [u8; 3] {
    [20 + 25 * k as u8, 10 * clip as u8, class_blue]
}

/// The test tree: alpha (no group level; one clean 8-frame PNG clip with unpadded names,
/// one with a broken frame, one short clip), beta (group level, JPEG), an empty class, a
/// class holding only a text file, and stray files.
fn make_tree(root: &Path) {
    for k in 0..8 {
        write_image(
            &root.join(format!("alpha/clip1/f{}.png", k + 1)),
            40,
            30,
            colour(k, 1, 50),
        );
    }
    for k in 0..8 {
        let p = root.join(format!("alpha/clip2/{k:04}.png"));
        if k == 4 {
            std::fs::write(&p, b"this is not a png").unwrap();
        } else {
            write_image(&p, 40, 30, colour(k, 2, 50));
        }
    }
    std::fs::write(root.join("alpha/clip2/.hidden.png"), b"junk").unwrap();
    std::fs::write(root.join("alpha/clip2/readme.txt"), b"ignored").unwrap();
    for k in 0..3 {
        write_image(
            &root.join(format!("alpha/short/{k:04}.png")),
            40,
            30,
            colour(k, 3, 50),
        );
    }
    for (g, clip) in [("g01", 4usize), ("g02", 5)] {
        for k in 0..6 {
            write_image(
                &root.join(format!("beta/{g}/c{clip}/{k:04}.jpg")),
                20,
                16,
                colour(k, clip, 200),
            );
        }
    }
    std::fs::create_dir_all(root.join("empty")).unwrap();
    std::fs::create_dir_all(root.join("videos_only")).unwrap();
    std::fs::write(root.join("videos_only/clip.avi"), b"not extracted").unwrap();
    std::fs::write(root.join("notes.txt"), b"ignored").unwrap();
}

/// Skip policy: broken frame, short clip and empty classes are reported, the rest loads
/// with class names from folders, groups from the group level, and exact memory use.
#[test]
fn folder_loads_and_reports() {
    let dir = tempfile::tempdir().unwrap();
    make_tree(dir.path());
    let cfg = FolderConfig::new(6, 8, 4);
    let data = FolderDataset::open(dir.path(), &cfg).unwrap();
    assert_eq!(data.class_names(), ["alpha", "beta"]);
    assert_eq!(data.len(), 4);
    assert_eq!(labels(&data), [0, 0, 1, 1]);
    let r = data.report();
    assert_eq!(
        (r.classes, r.clips, r.clips_skipped, r.images_unreadable),
        (2, 4, 1, 1)
    );
    let has = |f: &dyn Fn(&IssueKind) -> bool, tail: &str| {
        r.issues
            .iter()
            .any(|i| f(&i.kind) && i.path.ends_with(tail))
    };
    assert!(
        has(
            &|k| matches!(k, IssueKind::UnreadableImage { .. }),
            "alpha/clip2/0004.png"
        ),
        "{r}"
    );
    assert!(
        has(
            &|k| matches!(
                k,
                IssueKind::ShortClip {
                    found: 3,
                    needed: 4
                }
            ),
            "alpha/short"
        ),
        "{r}"
    );
    assert!(has(&|k| *k == IssueKind::EmptyClass, "empty"), "{r}");
    assert!(has(&|k| *k == IssueKind::EmptyClass, "videos_only"), "{r}");
    assert_eq!(r.issues.len(), 4, "{r}");
    assert!(r.to_string().contains("unreadable image"));
    assert_eq!(data.source_frames(1), 7, "broken frame dropped");
    // Groups: alpha clips are their own groups, beta's come from the group folders.
    let names: Vec<&str> = data
        .group_ids()
        .iter()
        .map(|&g| data.group_names()[g].as_str())
        .collect();
    assert_eq!(
        names,
        ["alpha/clip1", "alpha/clip2", "beta/g01", "beta/g02"]
    );
    let ucf = FolderDataset::open(
        dir.path(),
        &FolderConfig {
            group_key: GroupKey::TrailingNumber,
            ..cfg.clone()
        },
    )
    .unwrap();
    assert_eq!(ucf.group_names()[ucf.group(3)], "02");
    assert!(data.has_group_folders(), "beta has group folders");
    // The mixed layout is reported, class by class.
    let mixed = r
        .mixed_layout
        .as_ref()
        .expect("alpha is flat, beta grouped");
    assert_eq!(
        (mixed.flat.as_slice(), mixed.grouped.as_slice()),
        (&["alpha".to_string()][..], &["beta".to_string()][..])
    );
    assert!(
        mixed
            .to_string()
            .contains("directly in the class folder for alpha")
    );
    // Only the flat class: no group folder, every clip its own group.
    let flat = tempfile::tempdir().unwrap();
    for clip in 0..2 {
        for k in 0..8 {
            write_image(
                &flat.path().join(format!("alpha/c{clip}/{k}.png")),
                40,
                30,
                colour(k, clip, 50),
            );
        }
    }
    let flat_data = FolderDataset::open(flat.path(), &cfg.clone().with_frames(8)).unwrap();
    assert!(!flat_data.has_group_folders());
    assert_eq!(flat_data.report().mixed_layout, None);
    assert_eq!((flat_data.len(), flat_data.frames()), (2, 8));
    // More frames than any clip holds: the error names the longest clip's count.
    let msg = FolderDataset::open(flat.path(), &cfg.clone().with_frames(9))
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("2 clip folders found, the longest with 8") && msg.contains("9 frames"),
        "{msg}"
    );
    // Memory: pixels exactly clips x pool x N, metadata small.
    let n = 6 * 8 * 3;
    assert_eq!(data.pixel_bytes(), 4 * 4 * n);
    let held = data.bytes_held();
    assert!(
        held >= data.pixel_bytes() && held <= data.pixel_bytes() + 1024 * 4 + 4096,
        "held {held}"
    );
    // A pool of 8 frames costs twice the pixels.
    let big = FolderDataset::open(
        dir.path(),
        &FolderConfig {
            pool: 8,
            ..cfg.clone()
        },
    )
    .unwrap();
    assert_eq!(big.pixel_bytes(), 2 * data.pixel_bytes());
}

/// Error policy: each kind of problem becomes an Error::Corrupt naming the path.
#[test]
fn folder_errors_by_option() {
    let strict = FolderConfig {
        on_problem: OnProblem::Error,
        ..FolderConfig::new(6, 8, 4)
    };
    let cases: [(&dyn Fn(&Path), &str); 3] = [
        (
            &|r: &Path| {
                for k in 0..5 {
                    write_image(&r.join(format!("a/c/{k}.png")), 8, 8, [k as u8; 3]);
                }
                std::fs::write(r.join("a/c/2.png"), b"broken").unwrap();
            },
            "2.png",
        ),
        (
            &|r: &Path| {
                for k in 0..3 {
                    write_image(&r.join(format!("a/c/{k}.png")), 8, 8, [0; 3]);
                }
            },
            "a/c",
        ),
        (
            &|r: &Path| {
                for k in 0..4 {
                    write_image(&r.join(format!("a/c/{k}.png")), 8, 8, [0; 3]);
                }
                std::fs::create_dir_all(r.join("b")).unwrap();
            },
            "b",
        ),
    ];
    for (build, tail) in cases {
        let dir = tempfile::tempdir().unwrap();
        build(dir.path());
        for k in 0..4 {
            write_image(&dir.path().join(format!("a/good/{k}.png")), 8, 8, [9; 3]);
        }
        assert!(FolderDataset::open(dir.path(), &FolderConfig::new(6, 8, 4)).is_ok());
        match FolderDataset::open(dir.path(), &strict) {
            Err(Error::Corrupt {
                path: Some(p),
                reason,
            }) => {
                assert!(p.ends_with(tail), "{p:?} should end with {tail}: {reason}");
            }
            other => panic!("expected Corrupt for {tail}, got {other:?}"),
        }
    }
    // Nothing usable at all, a missing root, bad sizes.
    let dir = tempfile::tempdir().unwrap();
    assert!(matches!(
        FolderDataset::open(dir.path(), &FolderConfig::new(6, 8, 4)),
        Err(Error::Corrupt { .. })
    ));
    std::fs::create_dir_all(dir.path().join("a/c")).unwrap();
    assert!(matches!(
        FolderDataset::open(dir.path(), &FolderConfig::new(6, 8, 4)),
        Err(Error::Corrupt { .. })
    ));
    assert!(matches!(
        FolderDataset::open(dir.path().join("nope"), &FolderConfig::new(6, 8, 4)),
        Err(Error::Io { .. })
    ));
    for bad in [
        FolderConfig {
            pool: 3,
            ..FolderConfig::new(6, 8, 4)
        },
        FolderConfig {
            channels: 4,
            ..FolderConfig::new(6, 8, 4)
        },
        FolderConfig::new(0, 8, 4),
        FolderConfig::new(6, 8, 0),
    ] {
        assert!(matches!(
            FolderDataset::open(dir.path(), &bad),
            Err(Error::InvalidParameter { .. })
        ));
    }
}

/// Frames are resized (a flat image stays flat), decoded exactly from PNG and closely
/// from JPEG, in natural file order; evaluation takes uniform positions, training takes
/// sorted distinct random positions that depend only on the epoch seed.
#[test]
fn folder_resizes_and_samples() {
    let dir = tempfile::tempdir().unwrap();
    make_tree(dir.path());
    let cfg = FolderConfig {
        pool: 8,
        ..FolderConfig::new(6, 8, 4)
    };
    let data = FolderDataset::open(dir.path(), &cfg).unwrap();
    let (t, n) = (data.frames(), data.frame_len());
    let mut x = vec![0.0f32; t * n];
    // The frame index of each output frame, read back from the red channel.
    let frames_of = |x: &[f32]| -> Vec<usize> {
        x.chunks(n)
            .map(|f| {
                let px: Vec<f32> = f.iter().map(|v| v * 128.0 + 128.0).collect();
                assert!(
                    px.chunks(3).all(|p| p == &px[..3]),
                    "a flat frame stays flat"
                );
                ((px[0] - 20.0) / 25.0).round() as usize
            })
            .collect()
    };
    // Clip 0 (alpha/clip1, f1..f8 in natural order), pool = all 8 frames.
    data.fill_clip(0, false, 0, &mut x).unwrap();
    assert_eq!(frames_of(&x), [1, 3, 5, 7]);
    assert_eq!(x[1], (10.0 - 128.0) / 128.0);
    assert_eq!(x[2], (50.0 - 128.0) / 128.0);
    let mut seen = std::collections::BTreeSet::new();
    for epoch in 0..20 {
        data.fill_clip(0, true, epoch, &mut x).unwrap();
        let f = frames_of(&x);
        assert!(f.windows(2).all(|w| w[0] < w[1]), "sorted distinct {f:?}");
        assert!(f.iter().all(|&k| k < 8));
        let mut again = vec![0.0f32; t * n];
        data.fill_clip(0, true, epoch, &mut again).unwrap();
        assert_eq!(x, again, "same epoch seed, same frames");
        assert_eq!(data.positions(0, true, epoch), f);
        seen.insert(f);
    }
    assert!(
        seen.len() > 5,
        "training positions vary with the epoch seed"
    );
    // JPEG clip: 6 frames into a pool of 8 (repeats), values within JPEG error.
    data.fill_clip(3, false, 0, &mut x).unwrap();
    let px: Vec<f32> = x.iter().map(|v| v * 128.0 + 128.0).collect();
    // Pool slots 1, 3, 5, 7 of the pool built from files 0,1,1,2,3,4,4,5.
    for (f, frame) in px.chunks(n).zip([1usize, 2, 4, 5]) {
        let want = colour(frame, 5, 200);
        for c in 0..3 {
            assert!(
                (f[c] - want[c] as f32).abs() <= 6.0,
                "channel {c}: {} vs {want:?}",
                f[c]
            );
        }
    }
    // Grey decoding.
    let grey = FolderDataset::open(
        dir.path(),
        &FolderConfig {
            channels: 1,
            ..cfg.clone()
        },
    )
    .unwrap();
    assert_eq!(grey.frame_len(), 6 * 8);
    let mut g = vec![0.0f32; t * 48];
    grey.fill_clip(0, false, 0, &mut g).unwrap();
    let luma = g[0] * 128.0 + 128.0;
    let expect = 0.2126 * 45.0 + 0.7152 * 10.0 + 0.0722 * 50.0; // Rec. 709 luma
    assert!((luma - expect).abs() <= 2.0, "luma {luma} vs {expect}");
    // Batches work on folder data too.
    let mut xb = vec![0.0f32; 2 * t * n];
    let mut yb = vec![0; 2];
    fill_batch(&data, &[3, 0], false, 0, &mut xb, &mut yb).unwrap();
    assert_eq!(yb, [1, 0]);
    // Explicit group levels.
    let no_groups = FolderDataset::open(
        dir.path(),
        &FolderConfig {
            groups: GroupLevel::None,
            ..cfg.clone()
        },
    )
    .unwrap();
    assert_eq!(
        no_groups.class_names(),
        ["alpha"],
        "beta's group folders hold no images"
    );
}

// ---------------------------------------------------------------------------------------
// Splits.

fn check_partition(s: &split::Split, n: usize) {
    let mut all: Vec<usize> = s.train.iter().chain(&s.test).copied().collect();
    all.sort_unstable();
    assert_eq!(
        all,
        (0..n).collect::<Vec<_>>(),
        "train and test partition 0..n"
    );
    assert!(s.train.windows(2).all(|w| w[0] < w[1]) && s.test.windows(2).all(|w| w[0] < w[1]));
}

fn labels_strategy() -> impl Strategy<Value = Vec<usize>> {
    (2usize..6, 10usize..120).prop_flat_map(|(k, n)| proptest::collection::vec(0..k, n))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, .. ProptestConfig::default() })]

    /// Hold-out: disjoint cover, round(f n) test clips, stratified classes within one clip
    /// of their share, deterministic in the seed.
    #[test]
    fn holdout_fractions(y in labels_strategy(), f in 0.1f64..0.9, seed in any::<u64>()) {
        let n = y.len();
        let plain = split::holdout(n, f, seed, None).unwrap();
        check_partition(&plain, n);
        prop_assert_eq!(plain.test.len(), (f * n as f64).round() as usize);
        prop_assert_eq!(&plain, &split::holdout(n, f, seed, None).unwrap());
        let strat = split::holdout(n, f, seed, Some(&y)).unwrap();
        check_partition(&strat, n);
        prop_assert_eq!(strat.test.len(), (f * n as f64).round() as usize);
        for c in 0..6 {
            let nc = y.iter().filter(|&&l| l == c).count() as f64;
            let tc = strat.test.iter().filter(|&&i| y[i] == c).count() as f64;
            prop_assert!((tc - f * nc).abs() < 1.0 + 1e-9, "class {} has {} of {} in test", c, tc, nc);
        }
    }

    /// k-fold: test folds partition 0..n, sizes differ by at most one (per class too when
    /// stratified), each split a partition.
    #[test]
    fn k_fold_coverage(y in labels_strategy(), k in 2usize..7, seed in any::<u64>()) {
        let n = y.len();
        for strata in [None, Some(y.as_slice())] {
            let folds = split::k_fold(n, k, seed, strata).unwrap();
            prop_assert_eq!(folds.len(), k);
            let mut count = vec![0usize; n];
            for s in &folds {
                check_partition(s, n);
                for &i in &s.test { count[i] += 1; }
            }
            prop_assert!(count.iter().all(|&c| c == 1));
            let sizes: Vec<usize> = folds.iter().map(|s| s.test.len()).collect();
            prop_assert!(sizes.iter().max().unwrap() - sizes.iter().min().unwrap() <= 1);
            if strata.is_some() {
                for c in 0..6 {
                    let per: Vec<usize> = folds.iter().map(|s| s.test.iter().filter(|&&i| y[i] == c).count()).collect();
                    prop_assert!(per.iter().max().unwrap() - per.iter().min().unwrap() <= 1, "class {} {:?}", c, per);
                }
            }
        }
    }

    /// Group-aware splits never put a group on both sides; group k-fold covers every clip
    /// exactly once.
    #[test]
    fn group_splits_keep_groups_apart(groups in (2usize..12, 10usize..100).prop_flat_map(|(g, n)| proptest::collection::vec(0..g, n)), f in 0.1f64..0.6, seed in any::<u64>()) {
        let n = groups.len();
        let distinct = groups.iter().collect::<std::collections::BTreeSet<_>>().len();
        let apart = |s: &split::Split| s.test.iter().all(|&i| s.train.iter().all(|&j| groups[i] != groups[j]));
        if distinct >= 2 {
            if let Ok(s) = split::group_holdout(&groups, f, seed) {
                check_partition(&s, n);
                prop_assert!(apart(&s));
                prop_assert!(!s.test.is_empty() && !s.train.is_empty());
            }
            let k = distinct.min(4);
            let folds = split::group_k_fold(&groups, k, seed).unwrap();
            let mut count = vec![0usize; n];
            for s in &folds {
                check_partition(s, n);
                prop_assert!(apart(s));
                for &i in &s.test { count[i] += 1; }
            }
            prop_assert!(count.iter().all(|&c| c == 1));
        }
    }
}

/// Balanced groups give exact group-hold-out sizes; different seeds give different splits.
#[test]
fn group_holdout_sizes_and_seeds() {
    let groups: Vec<usize> = (0..1_600).map(|i| i % 25).collect();
    let a = split::group_holdout(&groups, 0.2, 1).unwrap();
    assert_eq!(a.test.len(), 5 * 64);
    let b = split::group_holdout(&groups, 0.2, 2).unwrap();
    assert_ne!(a, b);
    assert_eq!(split::epoch_order(&a.train, 3, 1).len(), a.train.len());
    assert_ne!(
        split::epoch_order(&a.train, 3, 1),
        split::epoch_order(&a.train, 3, 2)
    );
}

/// Bad split arguments are errors, not panics.
#[test]
fn split_errors() {
    assert!(matches!(
        split::holdout(0, 0.2, 0, None),
        Err(Error::Empty { .. })
    ));
    for f in [0.0, 1.0, -0.1, f64::NAN] {
        assert!(matches!(
            split::holdout(10, f, 0, None),
            Err(Error::InvalidParameter { .. })
        ));
    }
    assert!(matches!(
        split::holdout(3, 0.01, 0, None),
        Err(Error::InvalidParameter { .. })
    ));
    assert!(matches!(
        split::holdout(3, 0.5, 0, Some(&[0, 1])),
        Err(Error::ShapeMismatch { .. })
    ));
    assert!(matches!(
        split::k_fold(5, 1, 0, None),
        Err(Error::InvalidParameter { .. })
    ));
    assert!(matches!(
        split::k_fold(5, 6, 0, None),
        Err(Error::InvalidParameter { .. })
    ));
    assert!(matches!(
        split::group_holdout(&[3, 3, 3], 0.5, 0),
        Err(Error::InvalidParameter { .. })
    ));
    assert!(matches!(
        split::group_k_fold(&[0, 1, 1], 3, 0),
        Err(Error::InvalidParameter { .. })
    ));
}
