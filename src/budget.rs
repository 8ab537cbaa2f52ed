//! Limits known before the work: the memory a derivation may use (`--max-memory`), and a
//! forecast, before each counter term, of the nodes the rest of the derivation will build.
//!
//! The forecast extrapolates the graph's growth: the nodes ξ_1..ξ_k add grow from those of
//! ξ_1..ξ_{k-1} by the factor last seen, per order, over two orders (single orders grow
//! unevenly: odd and even ones differ). Until two orders are known, the growth of the tree
//! count stands in (the trees of ξ_k number A000081(k+1)), and ξ_1 (a Hessian-vector
//! product) is charged [`FIRST_ORDER_FACTOR`] times the loss and gradient.
//! A derivation whose forecast passes the limit stops before the work, naming the largest
//! order that fits, once [`MEASURED`] orders are known (they cost little; before that only
//! the next order's forecast counts, since early orders grow faster than late ones); the
//! node limit itself is checked during the work as well.
//!
//! ```
//! use eomderive::budget::parse_size;
//! assert_eq!(parse_size("512M"), Ok(512 << 20));
//! assert_eq!(parse_size("1.5GiB"), Ok(3 << 29));
//! assert!(parse_size("lots").is_err());
//! ```

use crate::series::{Before, TooLarge};

/// Bytes of memory per expression node, everything the process holds included: the node and
/// its hash-consing entry, the derivative tables, and the later stages' copies (measured as
/// peak resident memory over nodes on the examples and the scaling benchmarks, rounded up;
/// BENCHMARKS.md, "Scaling").
pub const BYTES_PER_NODE: u64 = 320;

/// ξ_1 = ½ H g is charged this many times the nodes before it (loss and gradient; measured
/// 0.8–2.2 on the examples and benchmarks).
pub const FIRST_ORDER_FACTOR: f64 = 3.0;

/// Orders measured before the forecast of the last order may stop a derivation.
pub const MEASURED: usize = 4;

/// The number of rooted trees with `n` nodes (OEIS A000081), n = 1..=20.
const TREES: [f64; 20] = [
    1.0, 1.0, 2.0, 4.0, 9.0, 20.0, 48.0, 115.0, 286.0, 719.0, 1842.0, 4766.0, 12486.0, 32973.0,
    87811.0, 235381.0, 634847.0, 1721159.0, 4688676.0, 12826228.0,
];

/// The default memory limit: a quarter of the machine's memory (8 GiB where it cannot be
/// read).
pub fn default_memory() -> u64 {
    machine_memory().map_or(8 << 30, |m| m / 4)
}

/// The machine's physical memory in bytes (Linux: `MemTotal` of /proc/meminfo).
pub fn machine_memory() -> Option<u64> {
    let info = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = info.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// A size in bytes from `4G`, `512M`, `1.5GiB`, `300MB`, `2e9` or a plain number of bytes
/// (K, M, G, T are powers of 1024, with or without `B` / `iB`).
pub fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let split = t
        .find(|c: char| c.is_ascii_alphabetic() && c != 'e' && c != 'E')
        .unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let value: f64 = number.trim().parse().map_err(|_| {
        format!("`{s}` is not a size: write it as 4G, 512M, 1.5GiB or a number of bytes")
    })?;
    let scale: u64 = match unit.trim().to_ascii_uppercase().as_str() {
        "" | "B" => 1,
        "K" | "KB" | "KIB" => 1 << 10,
        "M" | "MB" | "MIB" => 1 << 20,
        "G" | "GB" | "GIB" => 1 << 30,
        "T" | "TB" | "TIB" => 1 << 40,
        _ => {
            return Err(format!(
                "`{s}` has an unknown unit `{}`: use K, M, G or T (e.g. 4G)",
                unit.trim()
            ))
        }
    };
    let bytes = value * scale as f64;
    if !bytes.is_finite() || bytes < 1.0 || bytes > u64::MAX as f64 {
        return Err(format!(
            "`{s}` is not a usable size: give at least one byte, e.g. 4G"
        ));
    }
    Ok(bytes as u64)
}

/// A size for people: `1.2 GiB`, `340 MiB`.
pub fn show_size(bytes: u64) -> String {
    let b = bytes as f64;
    if b >= (1u64 << 30) as f64 {
        format!("{:.1} GiB", b / (1u64 << 30) as f64)
    } else if b >= (1u64 << 20) as f64 {
        format!("{:.0} MiB", b / (1u64 << 20) as f64)
    } else {
        format!("{:.0} KiB", (b / 1024.0).max(1.0))
    }
}

/// The forecast before ξ_k: nodes and seconds each order k..=K will add.
#[derive(Debug, Clone, PartialEq)]
pub struct Forecast {
    /// `(order, graph nodes after it, seconds it takes)` for each order still to derive.
    pub orders: Vec<(usize, f64, f64)>,
}

impl Forecast {
    /// Extrapolates the growth seen so far (see the module documentation).
    pub fn new(before: &Before) -> Forecast {
        let nodes = before.nodes;
        let done = nodes.len() - 1; // orders derived
                                    // Trees of ξ_k: those with k + 1 nodes.
        let trees = |k: usize| {
            TREES
                .get(k)
                .copied()
                .unwrap_or(TREES[19] * 2.7f64.powi(k as i32 - 19))
        };
        // cumulative[j]: the nodes ξ_1..ξ_j added, measured then forecast. Single orders
        // grow unevenly (odd and even orders differ, and memoised parts make some orders
        // cheap), so growth is read off the running total, over two orders where known.
        let mut cumulative: Vec<f64> = (0..=done)
            .map(|j| ((nodes[j] - nodes[0]) as f64).max(j as f64))
            .collect();
        let growth = match done {
            0 | 1 => None,
            2 => Some(cumulative[2] / cumulative[1]),
            _ => Some((cumulative[done] / cumulative[done - 2]).sqrt()),
        };
        let per_node = match done {
            0 => 0.0,
            _ => before.seconds[done - 1] / (cumulative[done] - cumulative[done - 1]).max(1.0),
        };
        let mut orders = Vec::new();
        for k in before.order..=before.orders {
            let next = match (k, growth) {
                (1, _) => FIRST_ORDER_FACTOR * (nodes[0] as f64).max(1.0),
                // The tree count stands in until two orders are known.
                (k, None) => cumulative[k - 1] * (1.0 + trees(k) / trees(k - 1)),
                (k, Some(g)) => cumulative[k - 1] * g.max(1.0),
            };
            let added = next - cumulative[k - 1];
            cumulative.push(next);
            orders.push((k, nodes[0] as f64 + next, added * per_node));
        }
        Forecast { orders }
    }

    /// Stops the derivation when the forecast passes `max_nodes`: the largest order whose
    /// forecast fits is named in the error.
    pub fn check(&self, before: &Before, max_nodes: usize) -> Result<(), TooLarge> {
        let Some(&(last, total, _)) = self.orders.last() else {
            return Ok(());
        };
        // Early orders grow faster than late ones: until MEASURED orders are known (they
        // cost little), only the next order's forecast may stop the derivation.
        let measured = before.nodes.len() - 1;
        let sure = measured >= MEASURED.min(before.orders.saturating_sub(1));
        let (_, next, _) = self.orders[0];
        if total <= max_nodes as f64 || (!sure && next <= max_nodes as f64) {
            return Ok(());
        }
        let fits = self
            .orders
            .iter()
            .take_while(|(_, t, _)| *t <= max_nodes as f64)
            .map(|(k, _, _)| *k)
            .last()
            .unwrap_or(before.order - 1);
        Err(TooLarge {
            order: last,
            nodes: total.min(usize::MAX as f64) as usize,
            predicted: true,
            fits,
        })
    }

    /// Seconds the remaining orders are expected to take (0 before any order is measured).
    pub fn seconds(&self) -> f64 {
        self.orders.iter().map(|(_, _, s)| s).sum()
    }
}
