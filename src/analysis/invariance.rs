//! Scale and translation invariance of parameter groups, and the laws they imply.
//!
//! Groups tried: every parameter together, each array parameter, and each row and column of a
//! matrix parameter. Scale invariance f(cθ_A) = f(θ) (c > 0) holds exactly when θ_A·g = 0
//! everywhere, translation invariance f(θ + c1_A) = f(θ) when 1_A·g = 0; each is decided on the
//! loss's gradient (without weight decay), symbolically when the sum simplifies to zero and
//! otherwise at random points.

use super::{points, zeros_symbolically, Decided, Input, SEED};
use crate::expr::{Id, VarId};
use crate::numeric::{sample, Program};
use crate::series::{gd_step_law, invariance_law, Law, Method, Probe};

/// Which invariance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// f(cθ_A) = f(θ) for c > 0.
    Scale,
    /// f(θ + c 1_A) = f(θ).
    Translation,
}

/// An invariance of the loss (without weight decay) and the laws derived from it.
#[derive(Debug, Clone)]
pub struct Invariance {
    /// Scale or translation.
    pub kind: Kind,
    /// The group's name: an array (`w`), a row or column (`W[1,·]`, `W[·,2]`), or `θ` for
    /// every parameter.
    pub name: String,
    /// Indices of the group's scalar parameters.
    pub group: Vec<usize>,
    /// The group is every parameter.
    pub whole: bool,
    /// How the invariance was established.
    pub decided: Decided,
    /// d q/dt along the EoM to the derivation's order (q = ‖θ_A‖² or 1_A·θ); its η^0 part is
    /// gradient flow's.
    pub law: Law,
    /// q after one GD step in terms of the iterate before it; `None` for another optimizer,
    /// whose step has no closed law in q and the scalars at θ_n (it reads the velocity, or a
    /// gradient at a second point).
    pub step: Option<Law>,
}

impl Invariance {
    /// The probe the laws were derived with.
    pub fn probe(&self) -> Probe {
        match self.kind {
            Kind::Scale => Probe::Scale { whole: self.whole },
            Kind::Translation => Probe::Translation,
        }
    }
}

/// Candidate groups: (name, indices, whole).
fn groups(params: &[String]) -> Vec<(String, Vec<usize>, bool)> {
    let n = params.len();
    // Per array name: its entries as (parameter index, indices within the array).
    type Entries = Vec<(usize, Vec<usize>)>;
    let mut arrays: Vec<(String, Entries)> = Vec::new();
    for (i, p) in params.iter().enumerate() {
        let (base, idx) = match p.split_once('[') {
            Some((b, rest)) => (
                b.to_string(),
                rest.trim_end_matches(']')
                    .split(',')
                    .filter_map(|s| s.trim().parse().ok())
                    .collect(),
            ),
            None => (p.clone(), Vec::new()),
        };
        match arrays.iter_mut().find(|(b, _)| *b == base) {
            Some((_, items)) => items.push((i, idx)),
            None => arrays.push((base, vec![(i, idx)])),
        }
    }
    let mut out: Vec<(String, Vec<usize>, bool)> = Vec::new();
    let mut push = |name: String, idx: Vec<usize>| {
        if idx.len() >= 2 && !out.iter().any(|(_, o, _)| *o == idx) {
            let whole = idx.len() == n;
            out.push((name, idx, whole));
        }
    };
    if arrays.len() > 1 {
        push("θ".into(), (0..n).collect());
    }
    for (base, items) in &arrays {
        push(base.clone(), items.iter().map(|(i, _)| *i).collect());
    }
    for (base, items) in &arrays {
        if items.iter().all(|(_, idx)| idx.len() == 2) {
            let rows = items.iter().map(|(_, x)| x[0]).max().unwrap_or(0);
            let cols = items.iter().map(|(_, x)| x[1]).max().unwrap_or(0);
            for r in 1..=rows {
                let idx = items.iter().filter(|(_, x)| x[0] == r).map(|(i, _)| *i);
                push(format!("{base}[{r},·]"), idx.collect());
            }
            for c in 1..=cols {
                let idx = items.iter().filter(|(_, x)| x[1] == c).map(|(i, _)| *i);
                push(format!("{base}[·,{c}]"), idx.collect());
            }
        }
    }
    out
}

pub(super) fn detect(input: &mut Input) -> Vec<Invariance> {
    let n = input.params.len();
    let candidates: Vec<(Kind, String, Vec<usize>, bool)> = groups(input.params)
        .into_iter()
        .flat_map(|(name, idx, whole)| {
            [Kind::Scale, Kind::Translation].map(|k| (k, name.clone(), idx.clone(), whole))
        })
        .collect();
    // Per candidate: the defining sum, and the sum of magnitudes it cancels from.
    let g = input.base_gradient.to_vec();
    let mut sums = Vec::new();
    for (kind, _, idx, _) in &candidates {
        let terms: Vec<Id> = idx
            .iter()
            .map(|&i| match kind {
                Kind::Scale => {
                    let v = input.graph.var(VarId(i as u32));
                    input.graph.mul(v, g[i])
                }
                Kind::Translation => g[i],
            })
            .collect();
        sums.push(input.graph.sum(terms));
    }
    let mut decided: Vec<Option<Decided>> = zeros_symbolically(input.graph, &sums, n)
        .into_iter()
        .map(|zero| zero.then_some(Decided::Symbolically))
        .collect();
    if decided.iter().any(Option::is_none) {
        let mut roots = g.clone();
        roots.extend(&sums);
        let program = Program::compile(input.graph, &roots);
        let samples = sample(&program, &input.center, points(&program), SEED + 2);
        for (c, (kind, _, idx, _)) in candidates.iter().enumerate() {
            if decided[c].is_some() || samples.is_empty() {
                continue;
            }
            let holds = samples.iter().all(|(x, v)| {
                let magnitude: f64 = idx
                    .iter()
                    .map(|&i| match kind {
                        Kind::Scale => (x[i] * v[i]).abs(),
                        Kind::Translation => v[i].abs(),
                    })
                    .sum();
                v[n + c].abs() <= 1e-9 * magnitude
            });
            // A group the loss does not depend on is invariant trivially; leave it out.
            let depends = samples
                .iter()
                .any(|(_, v)| idx.iter().any(|&i| v[i] != 0.0));
            if holds && depends {
                decided[c] = Some(Decided::Numerically {
                    points: samples.len(),
                });
            }
        }
    }
    candidates
        .into_iter()
        .zip(decided)
        .filter_map(|((kind, name, group, whole), decided)| {
            let decided = decided?;
            let probe = match kind {
                Kind::Scale => Probe::Scale { whole },
                Kind::Translation => Probe::Translation,
            };
            Some(Invariance {
                kind,
                name,
                group,
                whole,
                decided,
                law: invariance_law(&mut input.series, probe, input.weight_decay),
                step: (input.method == Method::Gd).then(|| gd_step_law(probe, input.weight_decay)),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::groups;

    #[test]
    fn groups_of_arrays_rows_and_columns() {
        let p: Vec<String> = ["W[1,1]", "W[1,2]", "W[2,1]", "W[2,2]", "s"]
            .map(String::from)
            .to_vec();
        let names: Vec<String> = groups(&p).into_iter().map(|g| g.0).collect();
        assert_eq!(names, ["θ", "W", "W[1,·]", "W[2,·]", "W[·,1]", "W[·,2]"]);
        let one: Vec<String> = ["w[1]", "w[2]"].map(String::from).to_vec();
        let g = groups(&one);
        assert_eq!((g.len(), g[0].0.as_str(), g[0].2), (1, "w", true));
    }
}
