//! Dimension trees: the binary trees over tensor modes that drive the Hierarchical Tucker
//! format.
//!
//! A [`DimTree`] wraps a petgraph [`DiGraph`] (edges point from parent to child) the way
//! petgraph's own `Acyclic<G>` wraps a graph: the invariants — binary, exactly one root,
//! every mode `0..d` in exactly one leaf, at least one mode — are checked once by the
//! constructors and kept behind read-only access.
//!
//! Nodes are numbered `0..n_nodes()` in **pre-order** (root first, left subtree before
//! right), so the numbering of a tree depends only on its shape; HT tensors index their
//! leaf bases and transfer tensors by these numbers. The modes under a node are listed in
//! left-to-right leaf order; this is the row order of the node's matricization `X^{(t)}`.
//!
//! The text form is the nested spec: a leaf is its mode number, an interior node is
//! `(left,right)`, e.g. `((0,1),(2,(3,4)))`.

use std::fmt;

use petgraph::graph::{DiGraph, NodeIndex};
use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// A node of the nested spec form of a tree; the serialised representation of [`DimTree`].
///
/// It serialises as its text form, a string such as `"((0,1),2)"`, not as nested arrays:
/// a linear tree over `d` modes nests `d` deep, beyond `serde_json`'s nesting limit of 128
/// for `d > 127`, whereas the string parses with a limit of 4096.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TreeSpec {
    /// A leaf holding one mode.
    Leaf(usize),
    /// An interior node with its left and right subtrees.
    Node(Box<TreeSpec>, Box<TreeSpec>),
}

impl TreeSpec {
    fn pair(l: TreeSpec, r: TreeSpec) -> Self {
        TreeSpec::Node(Box::new(l), Box::new(r))
    }

    /// Balanced spec over the given leaves (left half gets the extra one).
    fn balanced_over(items: Vec<TreeSpec>) -> TreeSpec {
        let mut items = items;
        if items.len() == 1 {
            return items.pop().expect("one item");
        }
        let right = items.split_off(items.len().div_ceil(2));
        TreeSpec::pair(Self::balanced_over(items), Self::balanced_over(right))
    }
}

/// One node's payload in the graph.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TreeNode {
    /// A leaf carrying the tensor mode it stands for.
    Leaf(usize),
    /// An interior node.
    Interior,
}

/// A validated binary dimension tree over the modes `0..d`.
///
/// # Example
/// ```
/// use tnet::DimTree;
/// let t: DimTree = "((0,1),(2,(3,4)))".parse().unwrap();
/// assert_eq!(t.order(), 5);
/// assert_eq!(t.to_string(), "((0,1),(2,(3,4)))");
/// assert_eq!(t.modes(t.root()), &[0, 1, 2, 3, 4]);
/// let (l, r) = t.children(t.root()).unwrap();
/// assert_eq!(t.modes(r), &[2, 3, 4]);
/// assert_eq!(t.parent(l), Some(t.root()));
/// assert!("((0,1),1)".parse::<DimTree>().is_err()); // mode 1 twice, mode 2 missing
/// ```
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(try_from = "TreeSpec", into = "TreeSpec")]
pub struct DimTree {
    graph: DiGraph<TreeNode, ()>,
    children: Vec<Option<(usize, usize)>>,
    parent: Vec<Option<usize>>,
    modes: Vec<Vec<usize>>,
    depth: Vec<usize>,
    leaf_of_mode: Vec<usize>,
}

impl PartialEq for DimTree {
    fn eq(&self, other: &Self) -> bool {
        self.children == other.children && self.modes == other.modes
    }
}
impl Eq for DimTree {}

impl DimTree {
    /// Builds and validates a tree from its nested spec.
    ///
    /// # Errors
    /// [`Error::InvalidTree`] unless the leaves hold each mode `0..d` exactly once.
    pub fn from_spec(spec: &TreeSpec) -> Result<Self> {
        // Pre-order construction: ids equal graph indices equal pre-order positions.
        #[derive(Default)]
        struct Builder {
            graph: DiGraph<TreeNode, ()>,
            children: Vec<Option<(usize, usize)>>,
            parent: Vec<Option<usize>>,
            modes: Vec<Vec<usize>>,
            depth: Vec<usize>,
        }
        impl Builder {
            fn build(&mut self, s: &TreeSpec, up: Option<usize>, d: usize) -> usize {
                let payload = match s {
                    TreeSpec::Leaf(k) => TreeNode::Leaf(*k),
                    TreeSpec::Node(..) => TreeNode::Interior,
                };
                let id = self.graph.add_node(payload).index();
                self.children.push(None);
                self.parent.push(up);
                self.modes.push(Vec::new());
                self.depth.push(d);
                if let Some(p) = up {
                    self.graph
                        .add_edge(NodeIndex::new(p), NodeIndex::new(id), ());
                }
                match s {
                    TreeSpec::Leaf(k) => self.modes[id] = vec![*k],
                    TreeSpec::Node(l, r) => {
                        let li = self.build(l, Some(id), d + 1);
                        let ri = self.build(r, Some(id), d + 1);
                        self.children[id] = Some((li, ri));
                        let mut m = self.modes[li].clone();
                        m.extend_from_slice(&self.modes[ri]);
                        self.modes[id] = m;
                    }
                }
                id
            }
        }
        let mut b = Builder::default();
        b.build(spec, None, 0);
        let Builder {
            graph,
            children,
            parent,
            modes,
            depth,
        } = b;
        let d = modes[0].len();
        let mut leaf_of_mode = vec![usize::MAX; d];
        for (id, c) in children.iter().enumerate() {
            if c.is_none() {
                let k = modes[id][0];
                if k >= d {
                    return Err(Error::tree(format!(
                        "mode {k} in a tree with {d} leaves: the modes must be exactly 0..{d}"
                    )));
                }
                if leaf_of_mode[k] != usize::MAX {
                    return Err(Error::tree(format!(
                        "mode {k} appears in more than one leaf"
                    )));
                }
                leaf_of_mode[k] = id;
            }
        }
        Ok(Self {
            graph,
            children,
            parent,
            modes,
            depth,
            leaf_of_mode,
        })
    }

    /// The balanced tree over `d` modes: the modes are halved recursively (the left half
    /// takes the extra mode), e.g. `d = 5` gives `(((0,1),2),(3,4))`.
    ///
    /// # Errors
    /// [`Error::InvalidTree`] if `d == 0`.
    pub fn balanced(d: usize) -> Result<Self> {
        if d == 0 {
            return Err(Error::tree("a tree needs at least one mode"));
        }
        Self::from_spec(&TreeSpec::balanced_over(
            (0..d).map(TreeSpec::Leaf).collect(),
        ))
    }

    /// The linear (TT-like, "caterpillar") tree `(0,(1,(2,(..,(d-2,d-1)))))`: its
    /// interior nodes are the TT unfoldings `{k..d-1}`, so HT on it has the TT ranks.
    ///
    /// # Errors
    /// [`Error::InvalidTree`] if `d == 0`.
    pub fn linear(d: usize) -> Result<Self> {
        if d == 0 {
            return Err(Error::tree("a tree needs at least one mode"));
        }
        let mut spec = TreeSpec::Leaf(d - 1);
        for k in (0..d - 1).rev() {
            spec = TreeSpec::pair(TreeSpec::Leaf(k), spec);
        }
        Self::from_spec(&spec)
    }

    /// A tree that first joins the modes of each group (balanced inside the group), then
    /// joins the groups in a balanced tree, e.g. groups `[[0,1],[2,3,4]]` give
    /// `((0,1),((2,3),4))`.
    ///
    /// # Errors
    /// [`Error::InvalidTree`] if a group is empty or the groups do not cover `0..d` exactly
    /// once.
    pub fn from_groups(groups: &[Vec<usize>]) -> Result<Self> {
        if groups.is_empty() || groups.iter().any(|g| g.is_empty()) {
            return Err(Error::tree("every group must hold at least one mode"));
        }
        let parts = groups
            .iter()
            .map(|g| TreeSpec::balanced_over(g.iter().copied().map(TreeSpec::Leaf).collect()))
            .collect();
        Self::from_spec(&TreeSpec::balanced_over(parts))
    }

    /// The nested spec of this tree.
    pub fn spec(&self) -> TreeSpec {
        fn go(t: &DimTree, id: usize) -> TreeSpec {
            match t.children[id] {
                None => TreeSpec::Leaf(t.modes[id][0]),
                Some((l, r)) => TreeSpec::pair(go(t, l), go(t, r)),
            }
        }
        go(self, 0)
    }

    /// Read-only access to the underlying petgraph graph (edges parent -> child).
    pub fn graph(&self) -> &DiGraph<TreeNode, ()> {
        &self.graph
    }

    /// Number of modes `d` (leaves).
    pub fn order(&self) -> usize {
        self.leaf_of_mode.len()
    }

    /// Number of nodes, `2d - 1`.
    pub fn n_nodes(&self) -> usize {
        self.children.len()
    }

    /// The root's id (always 0).
    pub fn root(&self) -> usize {
        0
    }

    /// The (left, right) children of an interior node; `None` for a leaf.
    ///
    /// # Panics
    /// If `node >= n_nodes()`.
    pub fn children(&self, node: usize) -> Option<(usize, usize)> {
        self.children[node]
    }

    /// The parent of a node; `None` for the root.
    pub fn parent(&self, node: usize) -> Option<usize> {
        self.parent[node]
    }

    /// The other child of this node's parent; `None` for the root.
    pub fn sibling(&self, node: usize) -> Option<usize> {
        let p = self.parent[node]?;
        let (l, r) = self.children[p].expect("a parent is interior");
        Some(if l == node { r } else { l })
    }

    /// True for a leaf.
    pub fn is_leaf(&self, node: usize) -> bool {
        self.children[node].is_none()
    }

    /// The modes under a node, in left-to-right leaf order.
    pub fn modes(&self, node: usize) -> &[usize] {
        &self.modes[node]
    }

    /// The mode of a leaf; `None` for an interior node.
    pub fn leaf_mode(&self, node: usize) -> Option<usize> {
        self.is_leaf(node).then(|| self.modes[node][0])
    }

    /// The leaf that holds `mode`.
    ///
    /// # Panics
    /// If `mode >= order()`.
    pub fn leaf_of(&self, mode: usize) -> usize {
        self.leaf_of_mode[mode]
    }

    /// Depth of a node (the root has depth 0).
    pub fn depth(&self, node: usize) -> usize {
        self.depth[node]
    }

    /// Height of the tree: the largest depth.
    pub fn height(&self) -> usize {
        self.depth.iter().copied().max().unwrap_or(0)
    }

    /// Nodes in pre-order (parents before children): simply `0..n_nodes()`.
    pub fn pre_order(&self) -> impl DoubleEndedIterator<Item = usize> + ExactSizeIterator {
        0..self.n_nodes()
    }

    /// Nodes in post-order (children before parents, left before right).
    pub fn post_order(&self) -> Vec<usize> {
        let mut out = Vec::with_capacity(self.n_nodes());
        fn go(t: &DimTree, id: usize, out: &mut Vec<usize>) {
            if let Some((l, r)) = t.children[id] {
                go(t, l, out);
                go(t, r, out);
            }
            out.push(id);
        }
        go(self, 0, &mut out);
        out
    }

    /// The leaves in left-to-right order.
    pub fn leaves(&self) -> impl Iterator<Item = usize> + '_ {
        self.pre_order().filter(|&n| self.is_leaf(n))
    }

    /// The interior nodes in pre-order.
    pub fn interior(&self) -> impl Iterator<Item = usize> + '_ {
        self.pre_order().filter(|&n| !self.is_leaf(n))
    }

    /// Nodes grouped by depth, deepest level first: the order of a leaves-to-root sweep.
    pub fn levels_bottom_up(&self) -> Vec<Vec<usize>> {
        let mut levels = vec![Vec::new(); self.height() + 1];
        for n in self.pre_order() {
            levels[self.depth[n]].push(n);
        }
        levels.reverse();
        levels
    }

    /// Checks that this tree fits a tensor of order `d`.
    ///
    /// # Errors
    /// [`Error::InvalidTree`] if the orders differ.
    pub fn check_order(&self, d: usize) -> Result<()> {
        if self.order() != d {
            return Err(Error::tree(format!(
                "the tree {self} has {} modes but the tensor has {d}",
                self.order()
            )));
        }
        Ok(())
    }
}

impl TryFrom<TreeSpec> for DimTree {
    type Error = Error;
    fn try_from(spec: TreeSpec) -> Result<Self> {
        DimTree::from_spec(&spec)
    }
}

impl From<DimTree> for TreeSpec {
    fn from(t: DimTree) -> Self {
        t.spec()
    }
}

impl fmt::Display for TreeSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TreeSpec::Leaf(k) => write!(f, "{k}"),
            TreeSpec::Node(l, r) => write!(f, "({l},{r})"),
        }
    }
}

impl Serialize for TreeSpec {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for TreeSpec {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let text = std::borrow::Cow::<'de, str>::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

impl fmt::Display for DimTree {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.spec().fmt(f)
    }
}

impl std::str::FromStr for TreeSpec {
    type Err = Error;
    /// Parses `((0,1),(2,3))`; whitespace between tokens is ignored (not inside a number).
    fn from_str(s: &str) -> Result<Self> {
        let chars: Vec<char> = s.chars().collect();
        let mut pos = 0;
        fn skip_ws(c: &[char], pos: &mut usize) {
            while c.get(*pos).is_some_and(|c| c.is_whitespace()) {
                *pos += 1;
            }
        }
        fn err(pos: usize, what: &str) -> Error {
            Error::tree(format!(
                "cannot parse the tree spec at character {pos}: {what}"
            ))
        }
        fn parse(c: &[char], pos: &mut usize, depth: usize) -> Result<TreeSpec> {
            if depth > 4096 {
                return Err(err(*pos, "nested too deeply"));
            }
            skip_ws(c, pos);
            match c.get(*pos) {
                Some('(') => {
                    *pos += 1;
                    let l = parse(c, pos, depth + 1)?;
                    skip_ws(c, pos);
                    if c.get(*pos) != Some(&',') {
                        return Err(err(
                            *pos,
                            "expected ',' (an interior node has exactly two children)",
                        ));
                    }
                    *pos += 1;
                    let r = parse(c, pos, depth + 1)?;
                    skip_ws(c, pos);
                    if c.get(*pos) != Some(&')') {
                        return Err(err(
                            *pos,
                            "expected ')' (an interior node has exactly two children)",
                        ));
                    }
                    *pos += 1;
                    Ok(TreeSpec::pair(l, r))
                }
                Some(d) if d.is_ascii_digit() => {
                    let start = *pos;
                    while c.get(*pos).is_some_and(|d| d.is_ascii_digit()) {
                        *pos += 1;
                    }
                    let text: String = c[start..*pos].iter().collect();
                    text.parse()
                        .map(TreeSpec::Leaf)
                        .map_err(|_| err(start, "mode number too large"))
                }
                Some(other) => Err(err(*pos, &format!("unexpected '{other}'"))),
                None => Err(err(*pos, "unexpected end")),
            }
        }
        let spec = parse(&chars, &mut pos, 0)?;
        skip_ws(&chars, &mut pos);
        if pos != chars.len() {
            return Err(err(pos, "trailing characters"));
        }
        Ok(spec)
    }
}

impl std::str::FromStr for DimTree {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        DimTree::from_spec(&s.parse()?)
    }
}
