//! DimTree: constructors, validation, queries against an independent reference, text and
//! serde round trips.
mod common;

use common::tree_strategy;
use proptest::prelude::*;
use tnet::tree::{TreeNode, TreeSpec};
use tnet::{DimTree, Error};

/// The facts about every node, computed straight from the spec by a plain recursion (the
/// reference the tree's cached queries are checked against). Nodes in pre-order.
#[derive(Debug, Default)]
struct Reference {
    parent: Vec<Option<usize>>,
    children: Vec<Option<(usize, usize)>>,
    modes: Vec<Vec<usize>>,
    depth: Vec<usize>,
    post: Vec<usize>,
}

impl Reference {
    fn of(spec: &TreeSpec) -> Self {
        fn go(r: &mut Reference, s: &TreeSpec, up: Option<usize>, depth: usize) -> usize {
            let id = r.parent.len();
            r.parent.push(up);
            r.children.push(None);
            r.modes.push(Vec::new());
            r.depth.push(depth);
            match s {
                TreeSpec::Leaf(k) => r.modes[id] = vec![*k],
                TreeSpec::Node(a, b) => {
                    let l = go(r, a, Some(id), depth + 1);
                    let rr = go(r, b, Some(id), depth + 1);
                    r.children[id] = Some((l, rr));
                    r.modes[id] = [r.modes[l].clone(), r.modes[rr].clone()].concat();
                }
            }
            r.post.push(id);
            id
        }
        let mut r = Reference::default();
        go(&mut r, spec, None, 0);
        r
    }
}

fn is_invalid_tree<T: std::fmt::Debug>(r: Result<T, Error>) -> bool {
    matches!(r, Err(Error::InvalidTree { .. }))
}

/// The named constructors give the documented specs.
#[test]
fn constructors_give_documented_specs() {
    let balanced = [
        "0",
        "(0,1)",
        "((0,1),2)",
        "((0,1),(2,3))",
        "(((0,1),2),(3,4))",
        "(((0,1),2),((3,4),5))",
    ];
    for (d, want) in (1..).zip(balanced) {
        assert_eq!(
            DimTree::balanced(d).unwrap().to_string(),
            want,
            "balanced({d})"
        );
    }
    let linear = ["0", "(0,1)", "(0,(1,2))", "(0,(1,(2,3)))"];
    for (d, want) in (1..).zip(linear) {
        assert_eq!(DimTree::linear(d).unwrap().to_string(), want, "linear({d})");
    }
    let groups = |g: &[&[usize]]| {
        DimTree::from_groups(&g.iter().map(|g| g.to_vec()).collect::<Vec<_>>())
            .map(|t| t.to_string())
    };
    assert_eq!(groups(&[&[0, 1], &[2, 3, 4]]).unwrap(), "((0,1),((2,3),4))");
    assert_eq!(groups(&[&[3], &[0, 2], &[1]]).unwrap(), "((3,(0,2)),1)");
    assert_eq!(groups(&[&[2, 0, 1]]).unwrap(), "((2,0),1)");
    assert_eq!(groups(&[&[0]]).unwrap(), "0");
    // Default is balanced; default constructors agree with from_spec of their text.
    for d in 1..12 {
        for t in [DimTree::balanced(d).unwrap(), DimTree::linear(d).unwrap()] {
            assert_eq!(DimTree::from_spec(&t.spec()).unwrap(), t);
            assert_eq!(t.order(), d);
            assert_eq!(t.n_nodes(), 2 * d - 1);
        }
    }
}

/// Balanced trees split each node's modes in halves (left takes the extra one) and have
/// the minimal height ceil(log2 d); linear trees have interior nodes {k..d-1}.
#[test]
fn balanced_and_linear_shapes() {
    for d in 1..40usize {
        let t = DimTree::balanced(d).unwrap();
        for n in t.interior() {
            let (l, r) = t.children(n).unwrap();
            let (a, b) = (t.modes(l).len(), t.modes(r).len());
            assert!(a == b || a == b + 1, "balanced({d}) node {n}: {a} vs {b}");
        }
        let min_height = (d as f64).log2().ceil() as usize;
        assert_eq!(t.height(), min_height, "balanced({d})");
        assert_eq!(
            t.leaves().flat_map(|n| t.leaf_mode(n)).collect::<Vec<_>>(),
            (0..d).collect::<Vec<_>>()
        );

        let l = DimTree::linear(d).unwrap();
        assert_eq!(l.height(), d - 1);
        let interior: Vec<Vec<usize>> = l.interior().map(|n| l.modes(n).to_vec()).collect();
        let want: Vec<Vec<usize>> = (0..d.saturating_sub(1)).map(|k| (k..d).collect()).collect();
        assert_eq!(interior, want, "linear({d})");
    }
}

/// Invalid specs and mode lists are rejected with InvalidTree, never a panic.
#[test]
fn validation_errors() {
    let bad = [
        ("((0,1),1)", "mode twice"),
        ("(0,0)", "mode twice"),
        ("(0,2)", "mode out of range / missing mode 1"),
        ("(0,(1,3))", "mode out of range / missing mode 2"),
        ("1", "single leaf that is not mode 0"),
        ("(0,1,2)", "ternary node"),
        ("((0,1,2),3)", "ternary node inside"),
        ("(0)", "unary node"),
        ("()", "empty node"),
        ("", "empty string"),
        ("   ", "only whitespace"),
        ("abc", "garbage"),
        ("(0;1)", "wrong separator"),
        ("(0,1))", "trailing characters"),
        ("(0,1)x", "trailing garbage"),
        ("((0,1)", "unclosed"),
        ("(0,1", "unclosed"),
        ("-1", "negative mode"),
        ("(0,-1)", "negative mode"),
        ("(0,+1)", "sign"),
        ("(0, 1 0)", "whitespace inside a number"),
        // Joined, "1 0" would read as mode 10 and make this a valid tree over 0..=10.
        (
            "((((((((((0,1 0),1),2),3),4),5),6),7),8),9)",
            "whitespace inside a number",
        ),
        ("99999999999999999999999999", "mode number overflows"),
        ("(0,99999999999999999999)", "mode number overflows"),
        ("(٣,0)", "non-ASCII digit"),
    ];
    for (s, why) in bad {
        assert!(
            is_invalid_tree(s.parse::<DimTree>()),
            "{s:?} ({why}) was accepted"
        );
    }
    // Nested deeper than the parser allows: an error, not a stack overflow.
    let deep = format!("{}0{}", "(".repeat(10_000), ",1)".repeat(10_000));
    assert!(is_invalid_tree(deep.parse::<DimTree>()));
    // Whitespace between tokens is fine.
    assert_eq!(
        " ( ( 0 ,1 ) ,\n\t2 ) "
            .parse::<DimTree>()
            .unwrap()
            .to_string(),
        "((0,1),2)"
    );
    // Zero modes.
    assert!(is_invalid_tree(DimTree::balanced(0)));
    assert!(is_invalid_tree(DimTree::linear(0)));
    assert!(is_invalid_tree(DimTree::from_groups(&[])));
    // Groups: an empty group, a mode twice, a missing mode, a mode out of range.
    for g in [
        vec![vec![0], vec![]],
        vec![vec![0, 1], vec![1]],
        vec![vec![0], vec![2]],
        vec![vec![0, 1, 5]],
    ] {
        assert!(is_invalid_tree(DimTree::from_groups(&g)), "{g:?}");
    }
    // from_spec directly, on specs the parser would never produce.
    let leaf = |k| Box::new(TreeSpec::Leaf(k));
    assert!(is_invalid_tree(DimTree::from_spec(&TreeSpec::Node(
        leaf(1),
        leaf(1)
    ))));
    assert!(is_invalid_tree(DimTree::from_spec(&TreeSpec::Node(
        leaf(0),
        leaf(usize::MAX)
    ))));
    // check_order.
    let t = DimTree::balanced(3).unwrap();
    assert!(t.check_order(3).is_ok());
    assert!(is_invalid_tree(t.check_order(4)));
    assert!(is_invalid_tree(t.check_order(0)));
}

/// The documented example tree, checked by hand.
#[test]
fn queries_on_a_hand_checked_tree() {
    let t: DimTree = "((0,1),(2,(3,4)))".parse().unwrap();
    // Pre-order ids: 0 root, 1 (0,1), 2 leaf 0, 3 leaf 1, 4 (2,(3,4)), 5 leaf 2,
    // 6 (3,4), 7 leaf 3, 8 leaf 4.
    assert_eq!(t.children(0), Some((1, 4)));
    assert_eq!(t.children(1), Some((2, 3)));
    assert_eq!(t.children(4), Some((5, 6)));
    assert_eq!(t.children(6), Some((7, 8)));
    assert_eq!(t.children(5), None);
    assert_eq!(t.parent(0), None);
    assert_eq!(t.parent(7), Some(6));
    assert_eq!(t.sibling(5), Some(6));
    assert_eq!(t.sibling(6), Some(5));
    assert_eq!(t.sibling(0), None);
    assert_eq!(t.modes(4), &[2, 3, 4]);
    assert_eq!(t.leaf_of(3), 7);
    assert_eq!(t.leaf_mode(8), Some(4));
    assert_eq!(t.leaf_mode(6), None);
    assert_eq!(t.depth(8), 3);
    assert_eq!(t.height(), 3);
    assert_eq!(t.post_order(), vec![2, 3, 1, 5, 7, 8, 6, 4, 0]);
    assert_eq!(
        t.pre_order().collect::<Vec<_>>(),
        (0..9).collect::<Vec<_>>()
    );
    assert_eq!(
        t.levels_bottom_up(),
        vec![vec![7, 8], vec![2, 3, 5, 6], vec![1, 4], vec![0]]
    );
    assert_eq!(t.leaves().collect::<Vec<_>>(), vec![2, 3, 5, 7, 8]);
    assert_eq!(t.interior().collect::<Vec<_>>(), vec![0, 1, 4, 6]);
}

/// Checks every query of `t` against the reference recursion over its spec.
fn check_against_reference(t: &DimTree) {
    let r = Reference::of(&t.spec());
    let n = t.n_nodes();
    let d = t.order();
    assert_eq!(n, r.parent.len());
    assert_eq!(n, 2 * d - 1);
    for id in 0..n {
        assert_eq!(t.parent(id), r.parent[id], "parent of {id} in {t}");
        assert_eq!(t.children(id), r.children[id], "children of {id} in {t}");
        assert_eq!(t.modes(id), r.modes[id].as_slice(), "modes of {id} in {t}");
        assert_eq!(t.depth(id), r.depth[id], "depth of {id} in {t}");
        assert_eq!(t.is_leaf(id), r.children[id].is_none());
        let want_sibling = r.parent[id].map(|p| {
            let (a, b) = r.children[p].unwrap();
            if a == id { b } else { a }
        });
        assert_eq!(t.sibling(id), want_sibling, "sibling of {id} in {t}");
        if let Some(m) = t.leaf_mode(id) {
            assert_eq!(t.leaf_of(m), id);
        }
        // The graph agrees: payload kind and edges parent -> child.
        let idx = petgraph::graph::NodeIndex::new(id);
        match t.graph()[idx] {
            TreeNode::Leaf(k) => assert_eq!(r.modes[id], vec![k]),
            TreeNode::Interior => assert!(r.children[id].is_some()),
        }
        let mut kids: Vec<usize> = t.graph().neighbors(idx).map(|c| c.index()).collect();
        kids.sort_unstable();
        let mut want: Vec<usize> = r.children[id].map(|(a, b)| vec![a, b]).unwrap_or_default();
        want.sort_unstable();
        assert_eq!(kids, want);
    }
    assert_eq!(t.graph().edge_count(), n - 1);
    assert_eq!(t.root(), 0);
    assert_eq!(t.height(), r.depth.iter().copied().max().unwrap());
    assert_eq!(t.post_order(), r.post);
    // Pre-order: parents before children, left subtree before right.
    assert_eq!(
        t.pre_order().collect::<Vec<_>>(),
        (0..n).collect::<Vec<_>>()
    );
    // The modes of the root in leaf order are the leaves' modes left to right, a
    // permutation of 0..d.
    let leaf_modes: Vec<usize> = t.leaves().map(|l| t.leaf_mode(l).unwrap()).collect();
    assert_eq!(leaf_modes, t.modes(0));
    let mut sorted = leaf_modes.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, (0..d).collect::<Vec<_>>());
    assert_eq!(t.interior().count(), d - 1);
    // Levels: deepest first, each level one depth, together every node once.
    let levels = t.levels_bottom_up();
    assert_eq!(levels.len(), t.height() + 1);
    let mut seen = vec![false; n];
    for (i, level) in levels.iter().enumerate() {
        for &id in level {
            assert_eq!(t.depth(id), t.height() - i);
            assert!(!seen[id]);
            seen[id] = true;
        }
        assert!(level.windows(2).all(|w| w[0] < w[1]), "level in pre-order");
    }
    assert!(seen.iter().all(|&s| s));
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, .. ProptestConfig::default() })]

    /// Every query agrees with a plain recursion over the tree's spec, on random trees.
    #[test]
    fn queries_match_reference(t in (1usize..12).prop_flat_map(tree_strategy)) {
        check_against_reference(&t);
    }

    /// Display then parse gives the same tree; so does re-spacing the text.
    #[test]
    fn display_round_trip(t in (1usize..14).prop_flat_map(tree_strategy)) {
        let text = t.to_string();
        let back: DimTree = text.parse().unwrap();
        prop_assert_eq!(&back, &t);
        prop_assert_eq!(back.to_string(), text.clone());
        let spaced = text.replace(',', " , ").replace('(', "( ");
        prop_assert_eq!(spaced.parse::<DimTree>().unwrap(), t.clone());
        prop_assert_eq!(text.parse::<TreeSpec>().unwrap(), t.spec());
    }

    /// serde_json round trip (the tree is stored as its text) gives the same tree.
    #[test]
    fn serde_round_trip(t in (1usize..14).prop_flat_map(tree_strategy)) {
        let json = serde_json::to_string(&t).unwrap();
        prop_assert_eq!(&json, &format!("\"{t}\""));
        let back: DimTree = serde_json::from_str(&json).unwrap();
        prop_assert_eq!(back, t);
    }
}

/// Deserialising an invalid tree is an error, whatever the JSON holds.
#[test]
fn serde_rejects_invalid_trees() {
    for json in [
        "\"((0,1),1)\"",
        "\"(0,1,2)\"",
        "\"(0,2)\"",
        "\"\"",
        "\"x\"",
        "[0,1]",
        "0",
        "null",
        "{\"tree\":\"(0,1)\"}",
        "\"(0,1)",
    ] {
        assert!(
            serde_json::from_str::<DimTree>(json).is_err(),
            "{json} was accepted"
        );
    }
}

/// A linear tree deeper than serde_json's nesting limit (128) survives Display and serde:
/// the text form keeps it flat.
#[test]
fn deep_linear_tree_round_trips() {
    let t = DimTree::linear(600).unwrap();
    check_against_reference(&t);
    let back: DimTree = serde_json::from_str(&serde_json::to_string(&t).unwrap()).unwrap();
    assert_eq!(back, t);
    assert_eq!(t.to_string().parse::<DimTree>().unwrap(), t);
}
