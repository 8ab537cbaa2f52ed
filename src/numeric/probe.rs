//! Numeric evidence for the analyses that symbolic simplification cannot decide: random sample
//! points, Jacobians by forward-mode arithmetic, least-squares fits and small rationals.

use nalgebra::{DMatrix, DVector};
use num_bigint::BigInt;
use num_rational::BigRational;

use super::{taylor_directional, DomainError, Program};

/// `count` points around `center`, deterministic for a given `seed`: each coordinate moves by
/// up to half its size plus one half (so points near zero still spread).
///
/// ```
/// let p = eomderive::numeric::sample_points(&[1.0, -2.0], 3, 7);
/// assert_eq!(p.len(), 3);
/// assert_eq!(p, eomderive::numeric::sample_points(&[1.0, -2.0], 3, 7));
/// assert!(p.iter().all(|x| (x[0] - 1.0).abs() <= 1.0 && (x[1] + 2.0).abs() <= 1.5));
/// ```
pub fn sample_points(center: &[f64], count: usize, seed: u64) -> Vec<Vec<f64>> {
    let mut state = seed ^ 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        // splitmix64
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        (z >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0
    };
    (0..count)
        .map(|_| {
            center
                .iter()
                .map(|&c| c + (0.5 * c.abs() + 0.5) * next())
                .collect()
        })
        .collect()
}

/// Evaluates `program` at `center` and then at up to `count` − 1 of the [`sample_points`]
/// (skipping points where it is undefined, drawing more as needed, at most four times
/// `count`): (point, values) pairs.
pub fn sample(
    program: &Program,
    center: &[f64],
    count: usize,
    seed: u64,
) -> Vec<(Vec<f64>, Vec<f64>)> {
    std::iter::once(center.to_vec())
        .chain(sample_points(center, 4 * count, seed))
        .filter_map(|x| {
            let v = program.eval(&x).ok()?;
            Some((x, v))
        })
        .take(count)
        .collect()
}

/// The Jacobian ∂y_i/∂x_j of `program`'s outputs at `x` (row i, column j), by forward-mode
/// arithmetic on the program (no symbolic derivative).
///
/// ```
/// use eomderive::numeric::{jacobian, Program};
/// let m = eomderive::lang::parse_str("u^2*v").unwrap();
/// let j = jacobian(&Program::compile(&m.graph, &[m.loss]), &[3.0, 2.0]).unwrap();
/// assert_eq!(j, vec![vec![12.0, 9.0]]);
/// ```
pub fn jacobian(program: &Program, x: &[f64]) -> Result<Vec<Vec<f64>>, DomainError> {
    let mut columns = Vec::with_capacity(x.len());
    for j in 0..x.len() {
        let mut e = vec![0.0; x.len()];
        e[j] = 1.0;
        columns.push(taylor_directional(program, x, &[&e])?);
    }
    Ok((0..program.outputs())
        .map(|i| columns.iter().map(|c| c[i]).collect())
        .collect())
}

/// The least-squares coefficients a minimising ‖Σ_j a_j columns_j − target‖ (minimum norm
/// when columns are dependent), with the relative residual ‖…‖ / ‖target‖.
///
/// ```
/// let (a, r) = eomderive::numeric::least_squares(&[vec![1.0, 0.0, 1.0]], &[2.0, 0.0, 2.0]).unwrap();
/// assert!((a[0] - 2.0).abs() < 1e-12 && r < 1e-12);
/// ```
pub fn least_squares(columns: &[Vec<f64>], target: &[f64]) -> Option<(Vec<f64>, f64)> {
    let rows = target.len();
    if columns.is_empty() || rows == 0 {
        return None;
    }
    let a = DMatrix::from_fn(rows, columns.len(), |i, j| columns[j][i]);
    let b = DVector::from_column_slice(target);
    let scale = a.amax().max(1e-300);
    let x = a.clone().svd(true, true).solve(&b, 1e-10 * scale).ok()?;
    let residual = (&a * &x - &b).norm() / b.norm().max(1e-300);
    x.iter()
        .all(|v| v.is_finite())
        .then(|| (x.iter().copied().collect(), residual))
}

/// The simplest rational within `tolerance` (relative) of `x` with a denominator of at most
/// `max_denominator`, by continued fractions.
///
/// ```
/// use eomderive::numeric::rationalize;
/// assert_eq!(rationalize(7.0 / 48.0, 1000, 1e-9).unwrap().to_string(), "7/48");
/// assert_eq!(rationalize(std::f64::consts::PI, 1000, 1e-9), None);
/// assert_eq!(rationalize(0.0, 1000, 1e-9).unwrap().to_string(), "0");
/// ```
pub fn rationalize(x: f64, max_denominator: i64, tolerance: f64) -> Option<BigRational> {
    if !x.is_finite() {
        return None;
    }
    if x.abs() < 1e-300 {
        return Some(BigRational::from_integer(0.into()));
    }
    let (mut h0, mut h1) = (0i128, 1i128);
    let (mut k0, mut k1) = (1i128, 0i128);
    let mut r = x;
    for _ in 0..64 {
        let a = r.floor();
        if a.abs() > 1e15 {
            return None;
        }
        let a = a as i128;
        (h0, h1) = (h1, a * h1 + h0);
        (k0, k1) = (k1, a * k1 + k0);
        if k1 > max_denominator as i128 {
            return None;
        }
        let approx = h1 as f64 / k1 as f64;
        if (approx - x).abs() <= tolerance * x.abs() {
            return Some(BigRational::new(BigInt::from(h1), BigInt::from(k1)));
        }
        let frac = r - r.floor();
        if frac.abs() < 1e-300 {
            return None;
        }
        r = 1.0 / frac;
    }
    None
}
