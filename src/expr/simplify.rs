//! Simplification by equality saturation (egg), with exact constant folding as the e-class
//! analysis, explicit limits, and a result never larger than its input.

use crate::hash::HashMap;
use std::time::Duration;

use egg::{Analysis, DidMerge, EGraph, Id, Language, Runner, StopReason};

use super::extract::{local_search, program_size, Choice, DagExtractor};
use num_rational::BigRational;
use num_traits::{ToPrimitive, Zero};

use super::{Graph, Op};

/// Bounds on one saturation run. The node and iteration limits are what normally stop it, so
/// results are deterministic; the time limit is a safety net reported when it is hit.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Most e-nodes in the e-graph.
    pub nodes: usize,
    /// Most rewrite iterations.
    pub iterations: usize,
    /// Most wall time.
    pub time: Duration,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            nodes: 5_000,
            iterations: 4,
            time: Duration::from_secs(20),
        }
    }
}

/// What a simplification did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// Operation count before ([`Graph::op_count`]).
    pub ops_before: usize,
    /// Operation count after (never more than before).
    pub ops_after: usize,
    /// Why saturation stopped: `saturated`, `node limit`, `iteration limit`, `time limit`.
    pub stopped_by: String,
}

/// Exact constant folding: the value of an e-class when it is a rational constant.
#[derive(Debug, Default, Clone, Copy)]
pub struct ConstFold;

impl Analysis<Op> for ConstFold {
    type Data = Option<BigRational>;

    fn make(egraph: &mut EGraph<Op, Self>, enode: &Op, _id: Id) -> Self::Data {
        let c = |i: &Id| egraph[*i].data.clone();
        Some(match enode {
            Op::Num(r) => r.value().clone(),
            Op::Add([a, b]) => c(a)? + c(b)?,
            Op::Sub([a, b]) => c(a)? - c(b)?,
            Op::Mul([a, b]) => {
                // 0 * x = 0 even when x is not constant.
                match (c(a), c(b)) {
                    (Some(x), _) | (_, Some(x)) if x.is_zero() => x,
                    (x, y) => x? * y?,
                }
            }
            Op::Div([a, b]) => {
                let d = c(b)?;
                if d.is_zero() {
                    return None;
                }
                c(a)? / d
            }
            Op::Neg(a) => -c(a)?,
            Op::Pow([a, b]) => {
                let (x, e) = (c(a)?, c(b)?);
                if !e.is_integer() || (x.is_zero() && e < BigRational::zero()) {
                    return None;
                }
                let n = e.to_integer().to_i32().filter(|n| n.abs() <= 64)?;
                let p = num_traits::pow(x, n.unsigned_abs() as usize);
                if n < 0 {
                    p.recip()
                } else {
                    p
                }
            }
            Op::Call(..) | Op::Var(_) => return None,
        })
    }

    fn merge(&mut self, to: &mut Self::Data, from: Self::Data) -> DidMerge {
        egg::merge_option(to, from, |_, _| DidMerge(false, false))
    }

    fn modify(egraph: &mut EGraph<Op, Self>, id: Id) {
        if let Some(c) = egraph[id].data.clone() {
            let added = egraph.add(Op::num(c));
            egraph.union(id, added);
            // A constant class needs no other representation.
            egraph[id].nodes.retain(|n| n.is_leaf());
        }
    }
}

/// Simplifies `roots` (nodes of `graph`) and returns the simplified roots, built in the same
/// graph. When saturation finds nothing smaller, the input roots come back unchanged.
///
/// ```
/// use eomderive::expr::{simplify, Graph, Limits, VarId};
/// let mut g = Graph::new();
/// let (u, v) = (g.var(VarId(0)), g.var(VarId(1)));
/// let (uv, vu) = (g.mul(u, v), g.mul(v, u));
/// let s = g.add(uv, vu); // u*v + v*u: 3 operations
/// let (roots, outcome) = simplify(&mut g, &[s], &Limits::default());
/// assert_eq!(outcome.ops_after, 2); // 2*(u*v)
/// assert!(g.op_count(&roots) <= g.op_count(&[s]));
/// ```
pub fn simplify(graph: &mut Graph, roots: &[Id], limits: &Limits) -> (Vec<Id>, Outcome) {
    let ops_before = graph.op_count(roots);
    let (rec, rec_roots) = graph.to_rec_expr(roots);
    let mut egraph: EGraph<Op, ConstFold> = EGraph::default();
    let mut class = Vec::with_capacity(rec.len());
    for node in rec.as_ref() {
        let node = node.clone().map_children(|c| class[usize::from(c)]);
        class.push(egraph.add(node));
    }
    let root_classes: Vec<Id> = rec_roots.iter().map(|r| class[usize::from(*r)]).collect();
    let runner = Runner::default()
        .with_egraph(egraph)
        .with_node_limit(limits.nodes)
        .with_iter_limit(limits.iterations)
        .with_time_limit(limits.time)
        .run(&super::rules::rules());
    let stopped_by = match &runner.stop_reason {
        Some(StopReason::Saturated) => "saturated",
        Some(StopReason::NodeLimit(_)) => "node limit",
        Some(StopReason::IterationLimit(_)) => "iteration limit",
        Some(StopReason::TimeLimit(_)) => "time limit",
        _ => "other",
    }
    .to_string();
    let egraph = &runner.egraph;
    let roots_c: Vec<Id> = root_classes.iter().map(|&c| egraph.find(c)).collect();
    // The input's own nodes, as a choice: always valid, and the size to beat.
    let mut input_choice: Choice = HashMap::default();
    for (i, node) in rec.as_ref().iter().enumerate() {
        let c = egraph.find(class[i]);
        let node = node
            .clone()
            .map_children(|k| egraph.find(class[usize::from(k)]));
        let node = if egraph[c].nodes.contains(&node) {
            node
        } else {
            // Pruned by constant folding: the class holds its constant.
            egraph[c].nodes[0].clone()
        };
        input_choice.entry(c).or_insert(node);
    }
    let greedy = DagExtractor::new(egraph).choice();
    let mut choice = match (
        program_size(egraph, &greedy, &roots_c),
        program_size(egraph, &input_choice, &roots_c),
    ) {
        (Some(g), Some(i)) if g < i => greedy,
        _ => input_choice,
    };
    local_search(egraph, &mut choice, &roots_c, limits.nodes);
    let mut built: HashMap<Id, super::Id> = HashMap::default();
    let new_roots: Vec<super::Id> = roots_c
        .iter()
        .map(|&c| rebuild(graph, &choice, egraph, c, &mut built))
        .collect();
    let ops_after = graph.op_count(&new_roots);
    if ops_after < ops_before {
        (
            new_roots,
            Outcome {
                ops_before,
                ops_after,
                stopped_by,
            },
        )
    } else {
        (
            roots.to_vec(),
            Outcome {
                ops_before,
                ops_after: ops_before,
                stopped_by,
            },
        )
    }
}

/// Builds the extracted term of e-class `c` into `graph`, iteratively (terms can be deep),
/// sharing every class built once.
fn rebuild(
    graph: &mut Graph,
    choice: &Choice,
    egraph: &EGraph<Op, ConstFold>,
    c: Id,
    built: &mut HashMap<Id, super::Id>,
) -> super::Id {
    let mut stack = vec![egraph.find(c)];
    while let Some(&top) = stack.last() {
        if built.contains_key(&top) {
            stack.pop();
            continue;
        }
        let node = &choice[&top];
        let pending: Vec<Id> = node
            .children()
            .iter()
            .map(|&k| egraph.find(k))
            .filter(|k| !built.contains_key(k))
            .collect();
        if pending.is_empty() {
            let op = node.clone().map_children(|k| built[&egraph.find(k)]);
            let id = graph.add_op(op);
            built.insert(top, id);
            stack.pop();
        } else {
            stack.extend(pending);
        }
    }
    built[&egraph.find(c)]
}
