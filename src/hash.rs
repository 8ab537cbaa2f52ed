//! The hash maps and sets of the crate: std's, with the Fx hasher (rustc-hash) instead of
//! SipHash. Keys are ids and small nodes that no adversary chooses, and hashing them is on
//! the hot path of every stage (interning, differentiation, printing); a hasher built for
//! such keys is the cheaper choice (the scaling tables in BENCHMARKS.md are measured with
//! it). Iteration order is deterministic as well, though no output depends on it.
//!
//! ```
//! let mut m: eomderive::hash::HashMap<u32, &str> = Default::default();
//! m.insert(1, "one");
//! assert_eq!(m[&1], "one");
//! ```

/// `std::collections::HashMap` with the Fx hasher; build one with `HashMap::default()`.
pub type HashMap<K, V> = std::collections::HashMap<K, V, rustc_hash::FxBuildHasher>;

/// `std::collections::HashSet` with the Fx hasher; build one with `HashSet::default()`.
pub type HashSet<T> = std::collections::HashSet<T, rustc_hash::FxBuildHasher>;
