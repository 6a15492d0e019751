//! Shared test support: tolerances scaled by precision and size, and proptest strategies.
#![allow(dead_code)]

use proptest::prelude::*;
use tnet::tree::TreeSpec;
use tnet::{DimTree, Scalar};

/// Round-off tolerance for a computation over `n` values in precision `T`:
/// `128 · eps · sqrt(n)` (faer's convention), at least `128 · eps`.
pub fn roundoff<T: Scalar>(n: usize) -> f64 {
    128.0 * T::epsilon().as_f64() * (n.max(1) as f64).sqrt()
}

/// Asserts `err <= bound`, printing both and the context on failure.
#[track_caller]
pub fn assert_within(err: f64, bound: f64, what: &str) {
    assert!(
        err <= bound,
        "{what}: error {err:e} exceeds bound {bound:e}"
    );
}

/// Shapes of order in `orders` with sizes in `sizes`, at most `max_len` entries.
pub fn shape_strategy(
    orders: std::ops::RangeInclusive<usize>,
    sizes: std::ops::RangeInclusive<usize>,
    max_len: usize,
) -> impl Strategy<Value = Vec<usize>> {
    orders
        .prop_flat_map(move |d| proptest::collection::vec(sizes.clone(), d))
        .prop_filter("small enough to densify", move |s| {
            s.iter().product::<usize>() <= max_len
        })
}

/// A random tree over `d` modes, from a random mode permutation and random splits.
pub fn tree_strategy(d: usize) -> impl Strategy<Value = DimTree> {
    (
        Just((0..d).collect::<Vec<_>>()).prop_shuffle(),
        proptest::collection::vec(any::<u32>(), d),
    )
        .prop_map(|(modes, cuts)| {
            fn build(m: &[usize], cuts: &[u32]) -> TreeSpec {
                if m.len() == 1 {
                    return TreeSpec::Leaf(m[0]);
                }
                let at = 1 + (cuts[0] as usize) % (m.len() - 1);
                TreeSpec::Node(
                    Box::new(build(&m[..at], &cuts[1..])),
                    Box::new(build(&m[at..], &cuts[1..])),
                )
            }
            DimTree::from_spec(&build(&modes, &cuts)).expect("valid by construction")
        })
}

/// Order in `orders`, mode sizes in `sizes`, and a random tree over that order, keeping the
/// total size at most `max_len`.
pub fn shape_and_tree(
    orders: std::ops::RangeInclusive<usize>,
    sizes: std::ops::RangeInclusive<usize>,
    max_len: usize,
) -> impl Strategy<Value = (Vec<usize>, DimTree)> {
    orders
        .prop_flat_map(move |d| {
            (
                proptest::collection::vec(sizes.clone(), d),
                tree_strategy(d),
            )
        })
        .prop_filter("small enough to densify", move |(s, _)| {
            s.iter().product::<usize>() <= max_len
        })
}
