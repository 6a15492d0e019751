//! Seeded train/test splits over clip indices: hold-out (any fraction), k-fold, and
//! group-aware versions of both, optionally stratified by label.
//!
//! All functions work on indices `0..n` and return sorted index lists, so they apply to
//! any [`VideoDataset`](super::VideoDataset) (pass [`labels`](super::labels) as
//! strata, and the dataset's group ids as groups). The same arguments always give the
//! same split.
//!
//! | function | guarantee |
//! |---|---|
//! | [`holdout`] | `round(f n)` test clips; stratified: every class split in the ratio `f` up to rounding (largest remainders) |
//! | [`k_fold`] | every clip in exactly one test fold, fold sizes differ by at most 1 (stratified: per class too) |
//! | [`group_holdout`] | no group on both sides; about `f n` test clips (first fit over shuffled groups) |
//! | [`group_k_fold`] | no group on both sides in any fold; every clip in exactly one test fold; sizes balanced greedily (largest group first) |
//!
//! Group-aware splits are not stratified: groups decide the sides (in UCF11 every group
//! holds clips of every class, so the classes stay roughly balanced).

use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::derive_seed;
use crate::{Error, Result};

/// One partition of clip indices into training clips and held-out clips (both sorted
/// ascending, disjoint): the test set of an evaluation, or the validation set that
/// [`fit`](crate::train::fit) scores after every epoch.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Split {
    /// Training clips.
    pub train: Vec<usize>,
    /// Held-out clips (test or validation; may be empty).
    pub test: Vec<usize>,
}

impl Split {
    /// Every one of `n` clips trains, none is held out (a training run without
    /// validation).
    pub fn all(n: usize) -> Self {
        Self {
            train: (0..n).collect(),
            test: Vec::new(),
        }
    }

    fn from_test_mask(test: &[bool]) -> Self {
        let (mut tr, mut te) = (Vec::new(), Vec::new());
        for (i, &t) in test.iter().enumerate() {
            if t { te.push(i) } else { tr.push(i) }
        }
        Split {
            train: tr,
            test: te,
        }
    }
}

fn rng(seed: u64, domain: u64) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(derive_seed(seed, 100 + domain, 0))
}

fn check_fraction(n: usize, f: f64) -> Result<()> {
    if n == 0 {
        return Err(Error::Empty {
            context: "split",
            shape: vec![0],
        });
    }
    if !(f.is_finite() && f > 0.0 && f < 1.0) {
        return Err(Error::param(
            "test_fraction",
            format!("{f} must lie strictly between 0 and 1"),
        ));
    }
    Ok(())
}

fn check_len(context: &'static str, n: usize, v: &[usize]) -> Result<()> {
    if v.len() != n {
        return Err(Error::ShapeMismatch {
            context,
            expected: vec![n],
            got: vec![v.len()],
        });
    }
    Ok(())
}

fn check_sides(split: &Split, n: usize, f: f64) -> Result<()> {
    if split.test.is_empty() || split.train.is_empty() {
        return Err(Error::param(
            "test_fraction",
            format!(
                "{f} of {n} clips leaves {} for training and {} for testing; both sides need at least one",
                split.train.len(),
                split.test.len()
            ),
        ));
    }
    Ok(())
}

/// Seeded random hold-out split: `round(test_fraction * n)` clips go to the test side.
///
/// With `strata` (one label per clip), the test count is spread over the classes in
/// proportion to their sizes (largest-remainder rounding, ties broken at random), so each
/// class is split in the ratio `test_fraction` up to one clip.
///
/// # Errors
/// [`Error::Empty`] for `n = 0`; [`Error::InvalidParameter`] if `test_fraction` is not in
/// `(0, 1)` or leaves a side empty; [`Error::ShapeMismatch`] if `strata.len() != n`.
///
/// # Complexity
/// `O(n)` time and memory.
///
/// # Example
/// ```
/// let labels: Vec<usize> = (0..100).map(|i| i % 4).collect();
/// let s = tnet::data::split::holdout(100, 0.2, 7, Some(&labels)).unwrap();
/// assert_eq!((s.train.len(), s.test.len()), (80, 20));
/// assert!((0..4).all(|c| s.test.iter().filter(|&&i| labels[i] == c).count() == 5));
/// ```
pub fn holdout(n: usize, test_fraction: f64, seed: u64, strata: Option<&[usize]>) -> Result<Split> {
    check_fraction(n, test_fraction)?;
    let mut g = rng(seed, 0);
    let target = ((test_fraction * n as f64).round() as usize).min(n);
    let mut test = vec![false; n];
    match strata {
        None => {
            let mut idx: Vec<usize> = (0..n).collect();
            idx.shuffle(&mut g);
            for &i in &idx[..target] {
                test[i] = true;
            }
        }
        Some(labels) => {
            check_len("holdout (strata)", n, labels)?;
            let classes = by_class(labels, &mut g);
            // Largest-remainder allocation of `target` over the classes.
            let quota: Vec<f64> = classes
                .iter()
                .map(|c| test_fraction * c.len() as f64)
                .collect();
            let mut take: Vec<usize> = quota.iter().map(|q| q.floor() as usize).collect();
            let mut order: Vec<usize> = (0..classes.len()).collect();
            order.shuffle(&mut g);
            order.sort_by(|&a, &b| {
                let ra = quota[a] - quota[a].floor();
                let rb = quota[b] - quota[b].floor();
                rb.total_cmp(&ra)
            });
            let mut left = target.saturating_sub(take.iter().sum());
            for &c in order.iter().cycle().take(order.len() * 2) {
                if left == 0 {
                    break;
                }
                if take[c] < classes[c].len() {
                    take[c] += 1;
                    left -= 1;
                }
            }
            for (members, &k) in classes.iter().zip(&take) {
                for &i in &members[..k] {
                    test[i] = true;
                }
            }
        }
    }
    let split = Split::from_test_mask(&test);
    check_sides(&split, n, test_fraction)?;
    Ok(split)
}

/// Clip indices per label value (labels need not be contiguous), each list shuffled.
fn by_class(labels: &[usize], g: &mut ChaCha8Rng) -> Vec<Vec<usize>> {
    let mut values: Vec<usize> = labels.to_vec();
    values.sort_unstable();
    values.dedup();
    let mut classes = vec![Vec::new(); values.len()];
    for (i, l) in labels.iter().enumerate() {
        let c = values.binary_search(l).expect("value collected above");
        classes[c].push(i);
    }
    for c in &mut classes {
        c.shuffle(g);
    }
    classes
}

/// Seeded k-fold cross-validation: `k` splits whose test sides partition `0..n`, with
/// sizes differing by at most one. With `strata`, clips are dealt to folds class by
/// class, so each fold holds every class in proportion (up to one clip per class).
///
/// # Errors
/// [`Error::InvalidParameter`] unless `2 <= k <= n`; [`Error::ShapeMismatch`] if
/// `strata.len() != n`.
///
/// # Complexity
/// `O(k n)` time and memory (the `k` splits are materialised).
///
/// # Example
/// ```
/// let folds = tnet::data::split::k_fold(10, 5, 1, None).unwrap();
/// let mut all: Vec<usize> = folds.iter().flat_map(|s| s.test.clone()).collect();
/// all.sort();
/// assert_eq!(all, (0..10).collect::<Vec<_>>());
/// ```
pub fn k_fold(n: usize, k: usize, seed: u64, strata: Option<&[usize]>) -> Result<Vec<Split>> {
    if k < 2 || k > n {
        return Err(Error::param(
            "k",
            format!("{k} folds for {n} clips; need 2 <= k <= n"),
        ));
    }
    let mut g = rng(seed, 1);
    let order: Vec<usize> = match strata {
        None => {
            let mut idx: Vec<usize> = (0..n).collect();
            idx.shuffle(&mut g);
            idx
        }
        Some(labels) => {
            check_len("k_fold (strata)", n, labels)?;
            by_class(labels, &mut g).concat()
        }
    };
    let mut fold_of = vec![0usize; n];
    for (pos, &i) in order.iter().enumerate() {
        fold_of[i] = pos % k;
    }
    Ok((0..k)
        .map(|f| Split::from_test_mask(&fold_of.iter().map(|&x| x == f).collect::<Vec<_>>()))
        .collect())
}

/// Distinct groups with their members, in a seeded random order.
fn groups_shuffled(groups: &[usize], g: &mut ChaCha8Rng) -> Vec<Vec<usize>> {
    let mut members = by_class(groups, g);
    members.shuffle(g);
    members
}

/// Group-aware seeded hold-out: whole groups go to the test side (groups in a random
/// order, each taken if it still fits under `round(test_fraction * n)` clips, the first
/// always), so no group appears on both sides.
///
/// # Errors
/// [`Error::Empty`] for no clips; [`Error::InvalidParameter`] for a fraction outside
/// `(0, 1)`, fewer than 2 groups, or a side left empty.
///
/// # Complexity
/// `O(n log n)`.
///
/// # Example
/// ```
/// let groups: Vec<usize> = (0..100).map(|i| i / 4).collect(); // 25 groups of 4
/// let s = tnet::data::split::group_holdout(&groups, 0.2, 3).unwrap();
/// assert_eq!(s.test.len(), 20);
/// assert!(s.test.iter().all(|&i| s.train.iter().all(|&j| groups[i] != groups[j])));
/// ```
pub fn group_holdout(groups: &[usize], test_fraction: f64, seed: u64) -> Result<Split> {
    let n = groups.len();
    check_fraction(n, test_fraction)?;
    let mut g = rng(seed, 2);
    let members = groups_shuffled(groups, &mut g);
    if members.len() < 2 {
        return Err(Error::param(
            "groups",
            format!(
                "{} distinct group(s); a group-aware split needs at least 2",
                members.len()
            ),
        ));
    }
    let target = (test_fraction * n as f64).round() as usize;
    let mut test = vec![false; n];
    let mut taken = 0;
    for m in &members {
        if taken == 0 || taken + m.len() <= target {
            for &i in m {
                test[i] = true;
            }
            taken += m.len();
        }
    }
    let split = Split::from_test_mask(&test);
    check_sides(&split, n, test_fraction)?;
    Ok(split)
}

/// Group-aware k-fold: groups (largest first, ties in seeded random order) go to the fold
/// with the fewest clips so far; every clip is tested exactly once and no fold has a
/// group on both sides.
///
/// # Errors
/// [`Error::InvalidParameter`] unless `2 <= k <= number of distinct groups`.
///
/// # Complexity
/// `O(n log n + G k)` for `G` groups, plus `O(k n)` for the splits.
///
/// # Example
/// ```
/// let groups: Vec<usize> = (0..50).map(|i| i % 25).collect();
/// let folds = tnet::data::split::group_k_fold(&groups, 5, 0).unwrap();
/// assert!(folds.iter().all(|s| s.test.len() == 10));
/// ```
pub fn group_k_fold(groups: &[usize], k: usize, seed: u64) -> Result<Vec<Split>> {
    let mut g = rng(seed, 3);
    let mut members = groups_shuffled(groups, &mut g);
    if k < 2 || k > members.len() {
        return Err(Error::param(
            "k",
            format!(
                "{k} folds for {} distinct group(s); need 2 <= k <= groups",
                members.len()
            ),
        ));
    }
    members.sort_by_key(|m| std::cmp::Reverse(m.len()));
    let mut sizes = vec![0usize; k];
    let mut fold_of = vec![0usize; groups.len()];
    for m in &members {
        let f = (0..k).min_by_key(|&f| sizes[f]).expect("k >= 2");
        sizes[f] += m.len();
        for &i in m {
            fold_of[i] = f;
        }
    }
    Ok((0..k)
        .map(|f| Split::from_test_mask(&fold_of.iter().map(|&x| x == f).collect::<Vec<_>>()))
        .collect())
}

/// The clips of `indices` in a seeded random order for one epoch: the same
/// `(seed, epoch)` always gives the same order.
///
/// # Example
/// ```
/// let a = tnet::data::split::epoch_order(&[1, 2, 3, 4], 9, 0);
/// assert_eq!(a, tnet::data::split::epoch_order(&[1, 2, 3, 4], 9, 0));
/// ```
pub fn epoch_order(indices: &[usize], seed: u64, epoch: u64) -> Vec<usize> {
    let mut v = indices.to_vec();
    v.shuffle(&mut ChaCha8Rng::seed_from_u64(derive_seed(
        seed, 200, epoch,
    )));
    v
}
