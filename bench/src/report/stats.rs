//! Medians and spreads over a scale's runs, and the series the plots draw.

use super::*;

// ---------------------------------------------------------------------------------------------
// Medians
// ---------------------------------------------------------------------------------------------

/// The median of some numbers (mean of the middle two for an even count); `None` if empty.
pub fn median(mut v: Vec<f64>) -> Option<f64> {
    v.retain(|x| x.is_finite());
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    Some(if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    })
}

pub(super) fn spread(v: &[f64]) -> String {
    let min = v.iter().copied().fold(f64::INFINITY, f64::min);
    let max = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if v.is_empty() {
        "-".into()
    } else {
        format!("{} – {}", num(min), num(max))
    }
}

/// A number with sensible precision for a table.
pub fn num(x: f64) -> String {
    if !x.is_finite() {
        "-".into()
    } else if x.abs() >= 1000.0 {
        let s = format!("{:.0}", x);
        // Thousands separators.
        let (sign, digits) = s.strip_prefix('-').map_or(("", s.as_str()), |d| ("-", d));
        let mut out = String::new();
        for (i, c) in digits.chars().enumerate() {
            if i > 0 && (digits.len() - i) % 3 == 0 {
                out.push(',');
            }
            out.push(c);
        }
        format!("{sign}{out}")
    } else if x.abs() >= 100.0 {
        format!("{x:.0}")
    } else if x.abs() >= 10.0 {
        format!("{x:.1}")
    } else {
        format!("{x:.2}")
    }
}

pub(super) fn ratio(a: Option<f64>, b: Option<f64>) -> String {
    match (a, b) {
        (Some(a), Some(b)) if b > 0.0 => format!("{:.2}×", a / b),
        _ => "-".into(),
    }
}

/// Median fanout step per offered rate, for one target; with the per-run values kept for noise.
#[derive(Debug, Clone)]
pub struct MedianStep {
    pub rate: f64,
    pub deliveries_offered: f64,
    pub runs: usize,
    pub passed_runs: usize,
    pub delivered_per_sec: f64,
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub p999: f64,
    pub max: f64,
    pub server_cpu_per_m: f64,
    pub total_cpu_per_m: f64,
    pub deliveries_per_cpu_s: f64,
    pub drops: f64,
    pub errors: f64,
    pub p99_runs: Vec<f64>,
    pub eff_runs: Vec<f64>,
    pub other_cores: f64,
    pub bench_cpu_share: f64,
}

pub(super) fn median_steps(steps: &[&StepResult], limit: f64) -> Option<MedianStep> {
    let first = steps.first()?;
    let m = |f: &dyn Fn(&StepResult) -> f64| {
        median(steps.iter().map(|s| f(s)).collect()).unwrap_or(0.0)
    };
    Some(MedianStep {
        rate: first.offered_msgs_per_sec,
        deliveries_offered: first.offered_deliveries_per_sec,
        runs: steps.len(),
        passed_runs: steps.iter().filter(|s| s.ok(limit)).count(),
        delivered_per_sec: m(&|s| s.delivered_per_sec),
        p50: m(&|s| s.latency.p50_ms),
        p90: m(&|s| s.latency.p90_ms),
        p99: m(&|s| s.latency.p99_ms),
        p999: m(&|s| s.latency.p999_ms),
        max: m(&|s| s.latency.max_ms),
        server_cpu_per_m: m(&|s| s.server_cpu_s_per_million),
        total_cpu_per_m: m(&|s| s.total_cpu_s_per_million),
        deliveries_per_cpu_s: m(&|s| s.deliveries_per_cpu_s),
        drops: m(&|s| s.drops as f64),
        errors: m(&|s| (s.failed + s.disconnects + s.dups) as f64),
        p99_runs: steps.iter().map(|s| s.latency.p99_ms).collect(),
        eff_runs: steps.iter().map(|s| s.deliveries_per_cpu_s).collect(),
        other_cores: m(&|s| s.cpu.other_cores),
        bench_cpu_share: m(&|s| s.cpu.bench_s / s.cpu.wall_s.max(1e-9)),
    })
}

/// Median step per rate (rates in the order of the plan) for one target.
pub fn fanout_medians(data: &ReportData, target: Target) -> Vec<MedianStep> {
    let results: Vec<&FanoutResult> = data.fanout.iter().filter(|r| r.target == target).collect();
    let limit = data.plan.fanout.p99_limit_ms;
    data.plan
        .fanout
        .rates
        .iter()
        .filter_map(|&rate| {
            let steps: Vec<&StepResult> = results
                .iter()
                .filter_map(|r| r.steps.iter().find(|s| s.offered_msgs_per_sec == rate))
                .collect();
            median_steps(&steps, limit)
        })
        .collect()
}

pub(super) fn latency_series(data: &ReportData) -> Vec<plot::Series> {
    let mut series = Vec::new();
    for target in [Target::Ours, Target::Socketio, Target::Floor] {
        let medians = fanout_medians(data, target);
        if medians.is_empty() {
            continue;
        }
        series.push(plot::Series {
            label: format!("{} p99", target.label()),
            target,
            dashed: false,
            points: medians
                .iter()
                .map(|m| (m.deliveries_offered, m.p99))
                .collect(),
        });
        series.push(plot::Series {
            label: format!("{} p50", target.label()),
            target,
            dashed: true,
            points: medians
                .iter()
                .map(|m| (m.deliveries_offered, m.p50))
                .collect(),
        });
    }
    series
}

pub(super) fn memory_series(data: &ReportData) -> Vec<plot::Series> {
    TARGETS
        .iter()
        .map(|&target| {
            let runs: Vec<&IdleResult> = data.idle.iter().filter(|r| r.target == target).collect();
            let n_points = runs.iter().map(|r| r.points.len()).max().unwrap_or(0);
            let mut points = Vec::new();
            if let Some(zero) = median(runs.iter().map(|r| r.rss_zero_bytes as f64).collect()) {
                points.push((0.0, zero / 1048576.0));
            }
            for i in 0..n_points {
                let conns = median(
                    runs.iter()
                        .filter_map(|r| r.points.get(i).map(|p| p.connections as f64))
                        .collect(),
                );
                let rss = median(
                    runs.iter()
                        .filter_map(|r| r.points.get(i).map(|p| p.rss_bytes as f64))
                        .collect(),
                );
                if let (Some(c), Some(r)) = (conns, rss) {
                    points.push((c, r / 1048576.0));
                }
            }
            plot::Series {
                label: target.label().into(),
                target,
                dashed: false,
                points,
            }
        })
        .collect()
}
