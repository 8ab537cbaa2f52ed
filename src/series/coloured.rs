//! Coloured rooted trees: the elementary differentials of several vector fields at once.
//!
//! A node of colour a stands for the derivatives of batch a's gradient g_a = ∇f_a: a leaf is
//! g_a, a node with children is ∇^m g_a applied to its children's vectors (H_a g_b for a
//! root coloured a over a leaf coloured b). With one colour this is [`Forest`](super::Forest).
//! Minibatch SGD's counter terms are sums over coloured trees (DESIGN.md §2.5).

use crate::hash::HashMap;

/// Handle of a coloured tree interned in a [`ColouredForest`]: two handles from the same
/// forest are equal exactly when the coloured trees are isomorphic.
#[derive(Copy, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub struct ColouredId(u32);

impl ColouredId {
    /// Dense arena index, for side tables.
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

#[derive(Clone, Debug)]
struct Node {
    colour: u16,
    children: Vec<ColouredId>,
    size: usize,
    /// The colours that occur in the tree, ascending.
    colours: Vec<u16>,
    /// The canonical code: colour, arity, then the children's codes in ascending order.
    code: Vec<u16>,
}

/// Arena of coloured rooted trees.
///
/// A tree is its root's colour and its children sorted by their canonical code, so that equal
/// children are adjacent and isomorphic trees intern to one handle.
///
/// ```
/// use eomderive::series::ColouredForest;
/// let mut f = ColouredForest::new();
/// let (ga, gb) = (f.leaf(0), f.leaf(1));
/// let t = f.node(0, vec![gb, ga]); // ∇³f_a(g_a, g_b)
/// assert_eq!(t, f.node(0, vec![ga, gb]));
/// assert_eq!((f.size(t), f.colour_count(t)), (3, 2));
/// ```
#[derive(Clone, Debug, Default)]
pub struct ColouredForest {
    nodes: Vec<Node>,
    index: HashMap<(u16, Vec<ColouredId>), ColouredId>,
}

impl ColouredForest {
    /// An empty forest.
    pub fn new() -> ColouredForest {
        ColouredForest::default()
    }

    /// Number of interned trees.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Whether nothing is interned.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// The leaf g_colour.
    pub fn leaf(&mut self, colour: u16) -> ColouredId {
        self.node(colour, Vec::new())
    }

    /// The tree whose root has this colour and these children (any order).
    pub fn node(&mut self, colour: u16, mut children: Vec<ColouredId>) -> ColouredId {
        children.sort_by(|&a, &b| self.code(a).cmp(self.code(b)));
        let key = (colour, children);
        if let Some(&id) = self.index.get(&key) {
            return id;
        }
        let children = key.1.clone();
        let mut code = vec![colour, children.len() as u16];
        let (mut size, mut colours) = (1, vec![colour]);
        for &c in &children {
            let n = &self.nodes[c.index()];
            code.extend_from_slice(&n.code);
            size += n.size;
            colours.extend_from_slice(&n.colours);
        }
        colours.sort_unstable();
        colours.dedup();
        let id = ColouredId(u32::try_from(self.nodes.len()).expect("more than u32::MAX trees"));
        self.index.insert(key, id);
        self.nodes.push(Node {
            colour,
            children,
            size,
            colours,
            code,
        });
        id
    }

    /// The root's colour.
    pub fn colour(&self, t: ColouredId) -> u16 {
        self.nodes[t.index()].colour
    }

    /// The children, in canonical order (equal ones adjacent).
    pub fn children(&self, t: ColouredId) -> &[ColouredId] {
        &self.nodes[t.index()].children
    }

    /// Number of nodes.
    pub fn size(&self, t: ColouredId) -> usize {
        self.nodes[t.index()].size
    }

    /// The colours that occur in the tree, ascending.
    pub fn colours(&self, t: ColouredId) -> &[u16] {
        &self.nodes[t.index()].colours
    }

    /// How many distinct colours the tree has.
    pub fn colour_count(&self, t: ColouredId) -> usize {
        self.colours(t).len()
    }

    /// The canonical code (colour, arity, children's codes ascending): equal codes, isomorphic
    /// trees; its order is the order terms are listed in.
    pub fn code(&self, t: ColouredId) -> &[u16] {
        &self.nodes[t.index()].code
    }

    /// The same tree with every colour c replaced by `map(c)`, interned here.
    ///
    /// ```
    /// use eomderive::series::ColouredForest;
    /// let mut f = ColouredForest::new();
    /// let t = { let g = f.leaf(2); f.node(5, vec![g]) }; // H_5 g_2
    /// let r = f.relabel(t, &|c| if c == 5 { 0 } else { 1 });
    /// assert_eq!((f.colour(r), f.colour(f.children(r)[0])), (0, 1));
    /// ```
    pub fn relabel(&mut self, t: ColouredId, map: &dyn Fn(u16) -> u16) -> ColouredId {
        let children: Vec<ColouredId> = self.children(t).to_vec();
        let children = children.into_iter().map(|c| self.relabel(c, map)).collect();
        let colour = map(self.colour(t));
        self.node(colour, children)
    }

    /// The tree with its colours renumbered 0, 1, … in their order (a tree whose colours are
    /// already 0..p is itself): the pattern that decides a cyclic epoch's coefficient.
    pub fn compact(&mut self, t: ColouredId) -> ColouredId {
        let colours = self.colours(t).to_vec();
        if colours.iter().enumerate().all(|(i, &c)| c as usize == i) {
            return t;
        }
        let rank = |c: u16| colours.binary_search(&c).expect("a colour of the tree") as u16;
        self.relabel(t, &rank)
    }

    /// Every coloured tree with `n` nodes whose colours are exactly 0..p for some p (each
    /// colour below the largest one used occurs), in canonical order.
    ///
    /// ```
    /// use eomderive::series::ColouredForest;
    /// let mut f = ColouredForest::new();
    /// // Two nodes: H_0 g_0, H_0 g_1, H_1 g_0.
    /// assert_eq!(f.compact_trees(2).len(), 3);
    /// ```
    pub fn compact_trees(&mut self, n: usize) -> Vec<ColouredId> {
        let mut shapes = super::Forest::new();
        let mut out = Vec::new();
        for shape in shapes.trees_of_order(n) {
            // Colour the shape's nodes (preorder) with every surjection onto 0..p.
            let mut colouring = vec![0u16; n];
            loop {
                let used = colouring.iter().fold(0u64, |s, &c| s | 1 << c);
                if used & (used + 1) == 0 {
                    let mut next = 0;
                    let t = self.build(&shapes, shape, &colouring, &mut next);
                    out.push(t);
                }
                // The next colouring, as a number in base n.
                let mut i = 0;
                while i < n && colouring[i] as usize == n - 1 {
                    colouring[i] = 0;
                    i += 1;
                }
                if i == n {
                    break;
                }
                colouring[i] += 1;
            }
        }
        out.sort_by(|&a, &b| self.code(a).cmp(self.code(b)));
        out.dedup();
        out
    }

    fn build(
        &mut self,
        shapes: &super::Forest,
        shape: super::TreeId,
        colouring: &[u16],
        next: &mut usize,
    ) -> ColouredId {
        let colour = colouring[*next];
        *next += 1;
        let children = shapes
            .children(shape)
            .iter()
            .map(|&c| self.build(shapes, c, colouring, next))
            .collect();
        self.node(colour, children)
    }

    /// The uncoloured shape of a tree, interned in `forest`.
    pub fn shape(&self, t: ColouredId, forest: &mut super::Forest) -> super::TreeId {
        let children = self
            .children(t)
            .iter()
            .map(|&c| self.shape(c, forest))
            .collect();
        forest.node(children)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compact_trees_count_ordered_set_partitions_up_to_symmetry() {
        let mut f = ColouredForest::new();
        assert_eq!(f.compact_trees(1).len(), 1);
        let three = f.compact_trees(3);
        let all: std::collections::HashSet<_> = three.iter().collect();
        assert_eq!(all.len(), three.len());
        for &t in &three {
            assert_eq!(f.compact(t), t);
            assert_eq!(f.size(t), 3);
        }
        // Chains: 13 ordered set partitions of 3 labelled nodes (the Fubini number). Cherries
        // (root r, leaves {a, b} unordered): 1 with one colour, 4 with two, 3 with three.
        assert_eq!(three.len(), 21);
    }
}
