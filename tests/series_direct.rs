//! A direct, obviously-correct transcription of the defining recursion
//!
//! F_0 = −g,  F_m = − Σ_{j=2}^{m+1} 1/j! Σ_{k_1+…+k_j = m+1−j} L_{F_{k_1}} ⋯ L_{F_{k_{j−1}}} F_{k_j},
//!
//! on linear combinations of trees (Lie derivative = grafting), compared
//! exactly with the fast `counter_terms`.

use std::collections::BTreeMap;

use eomderive::series::{counter_terms, Forest, TreeId};
use num_bigint::BigInt;
use num_rational::BigRational;
use num_traits::{One, Zero};

type Combo = BTreeMap<TreeId, BigRational>;

/// `L_a b`: graft every tree of `a` onto every node of every tree of `b`.
fn lie(forest: &mut Forest, a: &Combo, b: &Combo) -> Combo {
    let mut out = Combo::new();
    for (&s, ca) in a {
        for (&t, cb) in b {
            for (r, m) in forest.graft(s, t) {
                *out.entry(r).or_insert_with(BigRational::zero) +=
                    ca * cb * BigRational::from_integer(BigInt::from(m));
            }
        }
    }
    out.retain(|_, c| !c.is_zero());
    out
}

/// All `(k_1, …, k_j)` with `k_i ≥ 0` summing to `total`.
fn compositions(total: usize, j: usize) -> Vec<Vec<usize>> {
    if j == 1 {
        return vec![vec![total]];
    }
    (0..=total)
        .flat_map(|first| {
            compositions(total - first, j - 1)
                .into_iter()
                .map(move |mut rest| {
                    rest.insert(0, first);
                    rest
                })
        })
        .collect()
}

/// `F_0, …, F_order` by the defining formula.
fn direct(forest: &mut Forest, order: usize) -> Vec<Combo> {
    let leaf = forest.leaf();
    let mut f = vec![Combo::from([(leaf, -BigRational::one())])];
    for m in 1..=order {
        let mut acc = Combo::new();
        let mut factorial = BigInt::one();
        for j in 2..=m + 1 {
            factorial *= BigInt::from(j);
            for k in compositions(m + 1 - j, j) {
                let mut v = f[k[j - 1]].clone();
                for &ki in k[..j - 1].iter().rev() {
                    v = lie(forest, &f[ki], &v);
                }
                for (t, c) in v {
                    *acc.entry(t).or_insert_with(BigRational::zero) +=
                        c / BigRational::from_integer(factorial.clone());
                }
            }
        }
        acc.retain(|_, c| !c.is_zero());
        f.push(acc.into_iter().map(|(t, c)| (t, -c)).collect());
    }
    f
}

#[test]
fn direct_recursion_agrees_with_fast_one() {
    const ORDER: usize = 8;
    let mut forest = Forest::new();
    let f = direct(&mut forest, ORDER);
    let fast = counter_terms(ORDER).unwrap();
    assert_eq!(f.len(), ORDER + 1);
    for (m, f_m) in f.iter().enumerate().skip(1) {
        // ξ_m = −F_m, listed canonically.
        let mut slow: Vec<(TreeId, BigRational)> =
            f_m.iter().map(|(&t, c)| (t, -c.clone())).collect();
        slow.sort_by(|a, b| forest.canonical_cmp(a.0, b.0));
        let slow: Vec<(String, BigRational)> = slow
            .into_iter()
            .map(|(t, c)| (forest.bracket(t), c))
            .collect();
        let quick: Vec<(String, BigRational)> = fast.xi[m - 1]
            .iter()
            .map(|(t, c)| (fast.forest.bracket(*t), c.clone()))
            .collect();
        assert_eq!(slow, quick, "ξ_{m}");
    }
}
