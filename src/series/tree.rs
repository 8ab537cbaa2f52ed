//! Rooted trees: an interning arena, canonical ordering, enumeration,
//! bracket notation and grafting.

use crate::hash::HashMap;
use std::cmp::Ordering;

/// Handle of a tree interned in a [`Forest`].
///
/// Two handles from the same forest are equal exactly when the trees are
/// isomorphic. `Ord` compares interning order (deterministic, but not the
/// canonical order; use [`Forest::canonical_cmp`] for that).
#[derive(Copy, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub struct TreeId(u32);

impl TreeId {
    /// Dense arena index (`0..forest.len()`), handy for side tables.
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

#[derive(Clone, Debug)]
struct Node {
    children: Vec<TreeId>,
    size: usize,
    /// Preorder (DFS) sequence of node arities; the canonical sort key.
    code: Vec<u32>,
}

/// Arena of canonical rooted trees.
///
/// A tree is its sorted list of children. A leaf stands for the gradient
/// `g`; a node with `m` children stands for `∇^m g = ∇^{m+1} f` applied to
/// its children's vectors.
///
/// Canonical order: trees compare by their preorder sequence of node
/// arities, larger sequence first. Children of every node, enumerations
/// and term lists all follow this order.
#[derive(Clone, Debug, Default)]
pub struct Forest {
    nodes: Vec<Node>,
    index: HashMap<Vec<TreeId>, TreeId>,
    /// `by_order[n]`: all trees with `n` nodes, canonical order (`by_order[0]` is empty).
    by_order: Vec<Vec<TreeId>>,
    graft_memo: HashMap<(TreeId, TreeId), Vec<(TreeId, u32)>>,
}

impl Forest {
    /// An empty forest.
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of interned trees.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Whether no tree has been interned yet.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// The single-node tree `•` (the gradient `g`).
    pub fn leaf(&mut self) -> TreeId {
        self.node(Vec::new())
    }

    /// The tree whose root has the given children (any order; they are
    /// sorted canonically), interned so that isomorphic trees share an id.
    pub fn node(&mut self, mut children: Vec<TreeId>) -> TreeId {
        children.sort_by(|&a, &b| self.canonical_cmp(a, b));
        if let Some(&id) = self.index.get(&children) {
            return id;
        }
        let mut code = vec![children.len() as u32];
        let mut size = 1;
        for &c in &children {
            code.extend_from_slice(&self.nodes[c.index()].code);
            size += self.nodes[c.index()].size;
        }
        let id = TreeId(u32::try_from(self.nodes.len()).expect("more than u32::MAX trees"));
        self.index.insert(children.clone(), id);
        self.nodes.push(Node {
            children,
            size,
            code,
        });
        id
    }

    /// Children of `t`, in canonical order.
    pub fn children(&self, t: TreeId) -> &[TreeId] {
        &self.nodes[t.index()].children
    }

    /// Number of nodes of `t`.
    pub fn size(&self, t: TreeId) -> usize {
        self.nodes[t.index()].size
    }

    /// Preorder (DFS) sequence of the arities of `t`'s nodes.
    pub fn preorder_arities(&self, t: TreeId) -> &[u32] {
        &self.nodes[t.index()].code
    }

    /// `Less` when `a` comes before `b` in canonical order (larger preorder
    /// arity sequence first), so `sort_by(canonical_cmp)` sorts canonically.
    pub fn canonical_cmp(&self, a: TreeId, b: TreeId) -> Ordering {
        self.preorder_arities(b).cmp(self.preorder_arities(a))
    }

    /// All trees with `n` nodes, in canonical order (empty for `n == 0`).
    /// Enumerations are cached, so repeated calls are cheap.
    pub fn trees_of_order(&mut self, n: usize) -> Vec<TreeId> {
        if self.by_order.is_empty() {
            self.by_order.push(Vec::new());
        }
        while self.by_order.len() <= n {
            let m = self.by_order.len();
            let mut child_lists = Vec::new();
            self.child_multisets(
                m - 1,
                (m - 1, usize::MAX),
                &mut Vec::new(),
                &mut child_lists,
            );
            let mut trees: Vec<TreeId> = child_lists.into_iter().map(|c| self.node(c)).collect();
            trees.sort_by(|&a, &b| self.canonical_cmp(a, b));
            self.by_order.push(trees);
        }
        self.by_order[n].clone()
    }

    /// Pushes every multiset of trees of total size `rem` onto `out`. A
    /// multiset is listed as a non-increasing sequence of `(size, position)`
    /// keys; `max = (size, end)` bounds the next key from above.
    fn child_multisets(
        &self,
        rem: usize,
        max: (usize, usize),
        cur: &mut Vec<TreeId>,
        out: &mut Vec<Vec<TreeId>>,
    ) {
        if rem == 0 {
            out.push(cur.clone());
            return;
        }
        for s in (1..=rem.min(max.0)).rev() {
            let list = &self.by_order[s];
            let end = if s == max.0 {
                max.1.min(list.len())
            } else {
                list.len()
            };
            for (i, &t) in list[..end].iter().enumerate() {
                cur.push(t);
                self.child_multisets(rem - s, (s, i + 1), cur, out);
                cur.pop();
            }
        }
    }

    /// Bracket notation: a leaf is `•`, a node is `[` + its children's
    /// brackets + `]`. E.g. `H g = [•]`, `T(g,g) = [••]`, `T(Hg,g) = [[•]•]`.
    pub fn bracket(&self, t: TreeId) -> String {
        let mut s = String::new();
        self.write_bracket(t, &mut s);
        s
    }

    fn write_bracket(&self, t: TreeId, s: &mut String) {
        let children = self.children(t);
        if children.is_empty() {
            s.push('•');
            return;
        }
        s.push('[');
        for &c in children {
            self.write_bracket(c, s);
        }
        s.push(']');
    }

    /// Grafting `sigma` onto every node of `tau` as a new child: the sum of
    /// the resulting trees with their multiplicities (equal results from
    /// different nodes are added), in canonical order. This is the Lie
    /// derivative `L_{G(sigma)} G(tau) = (D G(tau)) · G(sigma)`. Memoised.
    pub fn graft(&mut self, sigma: TreeId, tau: TreeId) -> Vec<(TreeId, u32)> {
        if let Some(r) = self.graft_memo.get(&(sigma, tau)) {
            return r.clone();
        }
        let children = self.children(tau).to_vec();
        let mut with_sigma = children.clone();
        with_sigma.push(sigma);
        let mut terms = vec![(self.node(with_sigma), 1)];
        let mut i = 0;
        while i < children.len() {
            let c = children[i];
            let mult = children[i..].iter().take_while(|&&x| x == c).count() as u32;
            for (r, m) in self.graft(sigma, c) {
                let mut replaced = children.clone();
                replaced[i] = r;
                terms.push((self.node(replaced), m * mult));
            }
            i += mult as usize;
        }
        terms.sort_by(|a, b| self.canonical_cmp(a.0, b.0));
        let mut merged: Vec<(TreeId, u32)> = Vec::with_capacity(terms.len());
        for (t, m) in terms {
            match merged.last_mut() {
                Some(last) if last.0 == t => last.1 += m,
                _ => merged.push((t, m)),
            }
        }
        self.graft_memo.insert((sigma, tau), merged.clone());
        merged
    }
}

impl Forest {
    /// The same free (unrooted) tree rooted at each of its nodes, one entry per node in
    /// preorder (equal entries when nodes are equivalent). At each rooting a node's children
    /// are all its neighbours except its parent.
    ///
    /// ```
    /// let mut f = eomderive::series::Forest::new();
    /// let g = f.leaf();
    /// let hg = f.node(vec![g]);
    /// let path = f.node(vec![hg]); // [[•]]: a path of three nodes
    /// let r: Vec<String> = f.rootings(path).iter().map(|&t| f.bracket(t)).collect();
    /// assert_eq!(r, ["[[•]]", "[••]", "[[•]]"]);
    /// ```
    pub fn rootings(&mut self, t: TreeId) -> Vec<TreeId> {
        // Adjacency of t's nodes, numbered in preorder.
        let mut adjacency: Vec<Vec<usize>> = Vec::new();
        self.adjacency(t, None, &mut adjacency);
        (0..adjacency.len())
            .map(|v| self.rooted_at(&adjacency, v, usize::MAX))
            .collect()
    }

    fn adjacency(&self, t: TreeId, parent: Option<usize>, adjacency: &mut Vec<Vec<usize>>) {
        let me = adjacency.len();
        adjacency.push(parent.into_iter().collect());
        if let Some(p) = parent {
            adjacency[p].push(me);
        }
        for &c in &self.nodes[t.index()].children.clone() {
            self.adjacency(c, Some(me), adjacency);
        }
    }

    fn rooted_at(&mut self, adjacency: &[Vec<usize>], v: usize, parent: usize) -> TreeId {
        let children = adjacency[v]
            .iter()
            .filter(|&&w| w != parent)
            .map(|&w| self.rooted_at(adjacency, w, v))
            .collect();
        self.node(children)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn brackets_and_canonical_children() {
        let mut f = Forest::new();
        let g = f.leaf();
        let hg = f.node(vec![g]);
        let t_hg_g = f.node(vec![g, hg]);
        assert_eq!(f.children(t_hg_g), &[hg, g]);
        assert_eq!(f.bracket(t_hg_g), "[[•]•]");
        assert_eq!(f.bracket(g), "•");
        assert_eq!(f.size(t_hg_g), 4);
        assert_eq!(f.preorder_arities(t_hg_g), &[2, 1, 0, 0]);
        assert_eq!(f.node(vec![hg, g]), t_hg_g);
    }

    #[test]
    fn enumeration_is_canonical() {
        let mut f = Forest::new();
        let four: Vec<String> = f.trees_of_order(4).iter().map(|&t| f.bracket(t)).collect();
        assert_eq!(four, ["[•••]", "[[•]•]", "[[••]]", "[[[•]]]"]);
        assert!(f.trees_of_order(0).is_empty());
    }

    #[test]
    fn graft_counts_multiplicities() {
        let mut f = Forest::new();
        let g = f.leaf();
        let t = f.node(vec![g, g]);
        let got: Vec<(String, u32)> = f
            .graft(g, t)
            .into_iter()
            .map(|(r, m)| (f.bracket(r), m))
            .collect();
        assert_eq!(got, [("[•••]".to_string(), 1), ("[[•]•]".to_string(), 2)]);
        let hg = f.node(vec![g]);
        let got: Vec<(String, u32)> = f
            .graft(hg, hg)
            .into_iter()
            .map(|(r, m)| (f.bracket(r), m))
            .collect();
        assert_eq!(got, [("[[•]•]".to_string(), 1), ("[[[•]]]".to_string(), 1)]);
    }
}
