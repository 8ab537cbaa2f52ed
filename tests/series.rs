//! Known checks of the counter terms: tree counts, low orders, chains,
//! bushy trees (Bernoulli numbers), errors and determinism.

use eomderive::series::{counter_terms, Forest, GenericSeries, SeriesError, MAX_ORDER};
use num_bigint::BigInt;
use num_rational::BigRational;
use num_traits::{One, Zero};

fn q(n: i64, d: i64) -> BigRational {
    BigRational::new(BigInt::from(n), BigInt::from(d))
}

/// `ξ_k` as (bracket, coefficient) pairs in the series' order.
fn terms(s: &GenericSeries, k: usize) -> Vec<(String, BigRational)> {
    s.xi[k - 1]
        .iter()
        .map(|(t, c)| (s.forest.bracket(*t), c.clone()))
        .collect()
}

/// Coefficient of the tree with the given bracket in `ξ_k` (zero if absent).
fn coeff(s: &GenericSeries, k: usize, bracket: &str) -> BigRational {
    terms(s, k)
        .into_iter()
        .find(|(b, _)| b == bracket)
        .map_or_else(BigRational::zero, |(_, c)| c)
}

#[test]
fn tree_counts_match_a000081() {
    let expected = [
        1, 1, 2, 4, 9, 20, 48, 115, 286, 719, 1842, 4766, 12486, 32973,
    ];
    let mut f = Forest::new();
    for (n, &count) in (1..).zip(expected.iter()) {
        let trees = f.trees_of_order(n);
        assert_eq!(trees.len(), count, "trees with {n} nodes");
        assert!(trees.iter().all(|&t| f.size(t) == n));
        assert!(trees
            .windows(2)
            .all(|w| f.preorder_arities(w[0]) > f.preorder_arities(w[1])));
    }
}

#[test]
fn low_orders_match_table() {
    let s = counter_terms(3).unwrap();
    assert_eq!(s.xi.len(), 3);
    assert_eq!(terms(&s, 1), [("[•]".to_string(), q(1, 2))]);
    assert_eq!(
        terms(&s, 2),
        [
            ("[••]".to_string(), q(1, 12)),
            ("[[•]]".to_string(), q(1, 3))
        ]
    );
    assert_eq!(
        terms(&s, 3),
        [
            ("[[•]•]".to_string(), q(1, 12)),
            ("[[••]]".to_string(), q(1, 12)),
            ("[[[•]]]".to_string(), q(1, 4)),
        ]
    );
    // ∇⁴f(g,g,g) has coefficient 0 and is dropped.
    assert!(coeff(&s, 3, "[•••]").is_zero());
}

#[test]
fn chain_coefficient_is_one_over_m_plus_one() {
    // Quadratic loss: only chains survive and ξ_m = A^{m+1}θ/(m+1).
    let s = counter_terms(13).unwrap();
    for m in 1..=13 {
        let chain = format!("{}•{}", "[".repeat(m), "]".repeat(m));
        assert_eq!(coeff(&s, m, &chain), q(1, m as i64 + 1), "chain in ξ_{m}");
    }
}

/// Bernoulli numbers with B_1 = −1/2, from Σ_{j=0}^{m} C(m+1, j) B_j = 0.
fn bernoulli(n: usize) -> Vec<BigRational> {
    let mut b = vec![BigRational::one()];
    for m in 1..=n {
        let mut binom = BigInt::one(); // C(m+1, j)
        let mut sum = BigRational::zero();
        for (j, bj) in b.iter().enumerate() {
            sum += BigRational::from_integer(binom.clone()) * bj;
            binom = binom * BigInt::from(m + 1 - j) / BigInt::from(j + 1);
        }
        b.push(-sum / BigRational::from_integer(BigInt::from(m + 1)));
    }
    b
}

#[test]
fn bushy_coefficient_is_signed_bernoulli() {
    // Sign worked out from the recursion (and an exactly solvable shear
    // field): the bushy tree in ξ_m has coefficient (−1)^m B_m / m!.
    let b = bernoulli(12);
    assert_eq!(b[1], q(-1, 2));
    assert_eq!(b[12], q(-691, 2730));
    let s = counter_terms(12).unwrap();
    let mut factorial = BigInt::one();
    for (m, bm) in b.iter().enumerate().skip(1) {
        factorial *= BigInt::from(m);
        let sign = if m % 2 == 0 { 1 } else { -1 };
        let expected = bm * BigRational::from_integer(BigInt::from(sign) * BigInt::one())
            / BigRational::from_integer(factorial.clone());
        let bushy = format!("[{}]", "•".repeat(m));
        assert_eq!(coeff(&s, m, &bushy), expected, "bushy tree in ξ_{m}");
        if m >= 3 && m % 2 == 1 {
            assert!(coeff(&s, m, &bushy).is_zero());
        }
    }
}

#[test]
fn terms_are_canonical_nonzero_and_deterministic() {
    let a = counter_terms(9).unwrap();
    let b = counter_terms(9).unwrap();
    for k in 1..=9 {
        assert_eq!(terms(&a, k), terms(&b, k));
        let xi = &a.xi[k - 1];
        assert!(xi
            .iter()
            .all(|(t, c)| a.forest.size(*t) == k + 1 && !c.is_zero()));
        assert!(xi
            .windows(2)
            .all(|w| a.forest.preorder_arities(w[0].0) > a.forest.preorder_arities(w[1].0)));
    }
    // A lower-order call gives the same prefix.
    let c = counter_terms(5).unwrap();
    for k in 1..=5 {
        assert_eq!(terms(&c, k), terms(&a, k));
    }
    // T(Hg, g) lists the H g child first.
    let (t, _) = &a.xi[2][0];
    let first = a.forest.children(*t)[0];
    assert_eq!(a.forest.bracket(first), "[•]");
}

#[test]
fn invalid_orders_are_rejected() {
    assert_eq!(counter_terms(0).unwrap_err(), SeriesError::ZeroOrder);
    let err = counter_terms(MAX_ORDER + 1).unwrap_err();
    assert_eq!(
        err,
        SeriesError::OrderTooLarge {
            requested: MAX_ORDER + 1,
            limit: MAX_ORDER,
            name: "MAX_ORDER"
        }
    );
    let msg = err.to_string();
    assert!(
        msg.contains(&MAX_ORDER.to_string()) && msg.contains("MAX_ORDER"),
        "{msg}"
    );
    assert!(counter_terms(0)
        .unwrap_err()
        .to_string()
        .contains("order 0"));
    let boxed: Box<dyn std::error::Error> = Box::new(err);
    assert!(!boxed.to_string().is_empty());
}
