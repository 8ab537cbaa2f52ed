//! Timing helpers shared by the benchmarks.

use std::time::{Duration, Instant};

/// Median wall time of `f`, repeated until about `budget` has passed (at least 3 runs, at
/// most 200).
pub fn median(budget: Duration, mut f: impl FnMut()) -> Duration {
    let mut times = Vec::new();
    let start = Instant::now();
    while times.len() < 3 || (start.elapsed() < budget && times.len() < 200) {
        let t = Instant::now();
        f();
        times.push(t.elapsed());
    }
    times.sort();
    times[times.len() / 2]
}
