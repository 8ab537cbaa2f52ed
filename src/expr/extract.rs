//! Extraction that counts shared subexpressions once.
//!
//! egg's own extractor minimises the cost of each e-class as a *tree*, which charges a
//! subexpression once per use and so undoes the sharing this crate depends on. Here:
//!
//! 1. *Greedy DAG*: the cost of an e-class is the set of operation classes its chosen term
//!    needs; a node's set is the union of its children's sets plus itself, and each class keeps
//!    the node whose set is smallest.
//! 2. *Local search*: starting from the better of that choice and the input's own nodes, switch
//!    one class at a time to another node whenever the whole program (all roots together)
//!    gets smaller. So the result is never larger than the input.

use crate::hash::HashMap;

use egg::{EGraph, Id, Language};

use super::{ConstFold, Op};

/// The chosen node of every e-class that has a finite term.
pub struct DagExtractor {
    best: HashMap<Id, (Vec<Id>, Op)>,
}

impl DagExtractor {
    /// Runs the fixpoint over all e-classes.
    pub fn new(egraph: &EGraph<Op, ConstFold>) -> DagExtractor {
        let mut classes: Vec<Id> = egraph.classes().map(|c| c.id).collect();
        classes.sort();
        let mut best: HashMap<Id, (Vec<Id>, Op)> = HashMap::default();
        loop {
            let mut changed = false;
            for &c in &classes {
                for node in &egraph[c].nodes {
                    let Some(set) = node_set(egraph, &best, c, node) else {
                        continue;
                    };
                    let better = match best.get(&c) {
                        None => true,
                        Some((old, _)) => set.len() < old.len(),
                    };
                    if better {
                        best.insert(c, (set, node.clone()));
                        changed = true;
                    }
                }
            }
            if !changed {
                break;
            }
        }
        DagExtractor { best }
    }

    /// The greedy choice for every extractable class.
    pub fn choice(&self) -> Choice {
        self.best
            .iter()
            .map(|(c, (_, n))| (*c, n.clone()))
            .collect()
    }
}

/// A node chosen for each e-class.
pub type Choice = HashMap<Id, Op>;

/// The number of operations of the program computing `roots` under `choice`, or `None` if the
/// choice is cyclic or incomplete.
pub fn program_size(
    egraph: &EGraph<Op, ConstFold>,
    choice: &Choice,
    roots: &[Id],
) -> Option<usize> {
    // Iterative DFS with colours: 1 = on the stack, 2 = done.
    let mut colour: HashMap<Id, u8> = HashMap::default();
    let mut size = 0;
    for &r in roots {
        let mut stack: Vec<(Id, bool)> = vec![(egraph.find(r), false)];
        while let Some((c, expanded)) = stack.pop() {
            if expanded {
                colour.insert(c, 2);
                continue;
            }
            match colour.get(&c) {
                Some(2) => continue,
                Some(_) => return None,
                None => {}
            }
            let node = choice.get(&c)?;
            colour.insert(c, 1);
            size += usize::from(!node.is_leaf());
            stack.push((c, true));
            for &k in node.children() {
                let k = egraph.find(k);
                match colour.get(&k) {
                    Some(2) => {}
                    Some(_) => return None,
                    None => stack.push((k, false)),
                }
            }
        }
    }
    Some(size)
}

/// Improves `choice` one class at a time while the program for `roots` shrinks, within a budget
/// of `budget` candidate evaluations. Returns the final size.
pub fn local_search(
    egraph: &EGraph<Op, ConstFold>,
    choice: &mut Choice,
    roots: &[Id],
    mut budget: usize,
) -> usize {
    let mut size = program_size(egraph, choice, roots).expect("a valid starting choice");
    loop {
        let mut improved = false;
        let mut classes: Vec<Id> = choice.keys().copied().collect();
        classes.sort();
        for c in classes {
            if egraph[c].nodes.len() < 2 {
                continue;
            }
            let current = choice[&c].clone();
            for node in &egraph[c].nodes {
                if *node == current || budget == 0 {
                    continue;
                }
                budget -= 1;
                if node
                    .children()
                    .iter()
                    .any(|k| !choice.contains_key(&egraph.find(*k)))
                {
                    continue;
                }
                let old = choice.insert(c, node.clone()).unwrap();
                match program_size(egraph, choice, roots) {
                    Some(s) if s < size => {
                        size = s;
                        improved = true;
                        break;
                    }
                    _ => {
                        choice.insert(c, old);
                    }
                }
            }
        }
        if !improved || budget == 0 {
            return size;
        }
    }
}

/// The operation classes needed by `node` in class `c`, if all its children are extractable.
fn node_set(
    egraph: &EGraph<Op, ConstFold>,
    best: &HashMap<Id, (Vec<Id>, Op)>,
    c: Id,
    node: &Op,
) -> Option<Vec<Id>> {
    let mut set: Vec<Id> = if node.is_leaf() { vec![] } else { vec![c] };
    for &k in node.children() {
        let (child, _) = best.get(&egraph.find(k))?;
        if child.contains(&c) {
            return None; // a cycle through this class
        }
        set = union(&set, child);
    }
    Some(set)
}

fn union(a: &[Id], b: &[Id]) -> Vec<Id> {
    let mut out = Vec::with_capacity(a.len() + b.len());
    let (mut i, mut j) = (0, 0);
    while i < a.len() && j < b.len() {
        match a[i].cmp(&b[j]) {
            std::cmp::Ordering::Less => {
                out.push(a[i]);
                i += 1;
            }
            std::cmp::Ordering::Greater => {
                out.push(b[j]);
                j += 1;
            }
            std::cmp::Ordering::Equal => {
                out.push(a[i]);
                i += 1;
                j += 1;
            }
        }
    }
    out.extend_from_slice(&a[i..]);
    out.extend_from_slice(&b[j..]);
    out
}
