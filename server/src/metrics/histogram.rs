//! A fixed-bucket histogram of our own for the hot paths (delivery latency, bus lag, store
//! calls), written into the scrape in the Prometheus text format after the exporter's output.
//!
//! Why not the exporter's histogram: each of its samples reads a clock for a timestamp and is
//! pushed into a lock-free buffer under a crossbeam epoch pin, to be folded into buckets later
//! by upkeep; under callgrind that was most of what metrics cost per delivery (docs/OPERATIONS.md,
//! "What metrics cost"). Here a sample is a search over at most [`MAX_BOUNDS`] bounds and two
//! relaxed atomic adds, and a run of samples with one value is one add of `n`. (The sum wraps
//! after 584,000 years of samples.)
//!
//! A scrape reads the buckets one by one, not as a snapshot: a sample recorded meanwhile may be
//! in its bucket and not yet in the sum. Prometheus tolerates that; the count is the `+Inf`
//! bucket of the same read, so buckets and count always agree.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// The most bounds a histogram has (the `+Inf` bucket comes on top).
pub const MAX_BOUNDS: usize = 15;

/// Samples in microseconds, counted in buckets with fixed upper bounds.
pub struct Histogram {
    /// Upper bounds in microseconds, ascending; a sample equal to a bound is in its bucket
    /// (Prometheus `le`).
    bounds_us: &'static [u64],
    /// Samples per bucket, not cumulative; index `bounds_us.len()` is `+Inf`.
    buckets: [AtomicU64; MAX_BOUNDS + 1],
    sum_us: AtomicU64,
}

impl Histogram {
    /// An empty histogram; `bounds_us` ascending, at most [`MAX_BOUNDS`] of them.
    pub const fn new(bounds_us: &'static [u64]) -> Histogram {
        assert!(bounds_us.len() <= MAX_BOUNDS, "too many histogram bounds");
        Histogram {
            bounds_us,
            buckets: [const { AtomicU64::new(0) }; MAX_BOUNDS + 1],
            sum_us: AtomicU64::new(0),
        }
    }

    /// Records `n` samples of `us` microseconds each.
    pub fn record_n(&self, us: u64, n: u64) {
        // Linear from the smallest bound: most samples fall in the first few buckets, where
        // this takes fewer steps than a binary search.
        let i = self
            .bounds_us
            .iter()
            .position(|&b| us <= b)
            .unwrap_or(self.bounds_us.len());
        self.buckets[i].fetch_add(n, Relaxed);
        self.sum_us.fetch_add(us.wrapping_mul(n), Relaxed);
    }

    /// Writes the `_bucket`, `_sum` and `_count` lines in seconds. `labels` is empty or
    /// `name="value"` pairs joined by commas (escaped already).
    pub fn render(&self, out: &mut String, name: &str, labels: &str) {
        let sep = if labels.is_empty() { "" } else { "," };
        let mut count = 0;
        for (bound, bucket) in self.bounds_us.iter().zip(&self.buckets) {
            count += bucket.load(Relaxed);
            let le = *bound as f64 / 1e6;
            let _ = writeln!(out, "{name}_bucket{{{labels}{sep}le=\"{le}\"}} {count}");
        }
        count += self.buckets[self.bounds_us.len()].load(Relaxed);
        let _ = writeln!(out, "{name}_bucket{{{labels}{sep}le=\"+Inf\"}} {count}");
        let braced = if labels.is_empty() {
            String::new()
        } else {
            format!("{{{labels}}}")
        };
        let sum = self.sum_us.load(Relaxed) as f64 / 1e6;
        let _ = writeln!(out, "{name}_sum{braced} {sum}");
        let _ = writeln!(out, "{name}_count{braced} {count}");
    }
}

/// Writes the `# HELP` and `# TYPE` lines that open a histogram family.
pub fn header(out: &mut String, name: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} histogram");
}

#[cfg(test)]
mod tests {
    use super::*;

    const BOUNDS: &[u64] = &[500, 1_000, 10_000];

    #[test]
    fn samples_land_in_the_first_bucket_whose_bound_holds_them() {
        let h = Histogram::new(BOUNDS);
        h.record_n(0, 1);
        h.record_n(500, 2); // on a bound: that bucket (le)
        h.record_n(501, 1);
        h.record_n(10_000, 1);
        h.record_n(10_001, 3); // past the last bound: +Inf
        let mut out = String::new();
        header(&mut out, "t_seconds", "A test.");
        h.render(&mut out, "t_seconds", "");
        assert_eq!(
            out,
            "# HELP t_seconds A test.\n\
             # TYPE t_seconds histogram\n\
             t_seconds_bucket{le=\"0.0005\"} 3\n\
             t_seconds_bucket{le=\"0.001\"} 4\n\
             t_seconds_bucket{le=\"0.01\"} 5\n\
             t_seconds_bucket{le=\"+Inf\"} 8\n\
             t_seconds_sum 0.041504\n\
             t_seconds_count 8\n"
        );
    }

    #[test]
    fn labels_come_before_le() {
        let h = Histogram::new(BOUNDS);
        h.record_n(2_000, 4);
        let mut out = String::new();
        h.render(&mut out, "t_seconds", "op=\"x\"");
        assert!(
            out.contains("t_seconds_bucket{op=\"x\",le=\"0.001\"} 0\n"),
            "{out}"
        );
        assert!(
            out.contains("t_seconds_bucket{op=\"x\",le=\"0.01\"} 4\n"),
            "{out}"
        );
        assert!(out.contains("t_seconds_sum{op=\"x\"} 0.008\n"), "{out}");
        assert!(out.contains("t_seconds_count{op=\"x\"} 4\n"), "{out}");
    }
}
