//! The report's tables: load steps, the floor comparison, idle memory, history paging.

use super::stats::{median, num, ratio, spread, MedianStep};
use super::*;

// ---------------------------------------------------------------------------------------------
// Tables
// ---------------------------------------------------------------------------------------------

/// A plain-text table of load steps (printed by the single-scenario commands).
pub fn steps_table(target: Target, steps: &[StepResult]) -> String {
    let mut s = format!(
        "{}\n{:>9} {:>11} {:>11} {:>8} {:>8} {:>8} {:>8} {:>8} {:>9} {:>9} {:>6} {:>6} {:>8}\n",
        target.label(),
        "msgs/s",
        "offered d/s",
        "deliv/s",
        "p50 ms",
        "p90 ms",
        "p99 ms",
        "p99.9",
        "max ms",
        "srvCPU/1M",
        "+redis/1M",
        "drops",
        "errs",
        "cmds/msg"
    );
    for st in steps {
        let _ = writeln!(
            s,
            "{:>9} {:>11} {:>11} {:>8} {:>8} {:>8} {:>8} {:>8} {:>9} {:>9} {:>6} {:>6} {:>8}",
            num(st.offered_msgs_per_sec),
            num(st.offered_deliveries_per_sec),
            num(st.delivered_per_sec),
            num(st.latency.p50_ms),
            num(st.latency.p90_ms),
            num(st.latency.p99_ms),
            num(st.latency.p999_ms),
            num(st.latency.max_ms),
            num(st.server_cpu_s_per_million),
            num(st.total_cpu_s_per_million),
            st.drops,
            st.failed + st.disconnects + st.dups,
            st.redis_commands_per_msg.map_or("-".into(), num),
        );
    }
    s
}

/// Ours against the floor at every offered rate both ran, from fanout results of one
/// invocation (`chat-bench fanout --target all`); `None` without both.
pub fn floor_comparison_table(results: &[FanoutResult]) -> Option<String> {
    let ours = results.iter().find(|r| r.target == Target::Ours)?;
    let floor = results.iter().find(|r| r.target == Target::Floor)?;
    let mut s = format!(
        "ours / floor\n{:>11} {:>12} {:>13} {:>7} {:>9} {:>10} {:>7}\n",
        "offered d/s", "ours srv/1M", "floor srv/1M", "ratio", "ours p99", "floor p99", "ratio"
    );
    for o in &ours.steps {
        let Some(f) = floor
            .steps
            .iter()
            .find(|f| f.offered_msgs_per_sec == o.offered_msgs_per_sec)
        else {
            continue;
        };
        let _ = writeln!(
            s,
            "{:>11} {:>12} {:>13} {:>7} {:>9} {:>10} {:>7}",
            num(o.offered_deliveries_per_sec),
            num(o.server_cpu_s_per_million),
            num(f.server_cpu_s_per_million),
            ratio(
                Some(o.server_cpu_s_per_million),
                Some(f.server_cpu_s_per_million)
            ),
            num(o.latency.p99_ms),
            num(f.latency.p99_ms),
            ratio(Some(o.latency.p99_ms), Some(f.latency.p99_ms)),
        );
    }
    let _ = writeln!(
        s,
        "highest passing offered deliveries/s: ours {}, floor {} (ours / floor {})",
        ours.max_ok_deliveries_per_sec.map_or("-".into(), num),
        floor.max_ok_deliveries_per_sec.map_or("-".into(), num),
        ratio(
            ours.max_ok_deliveries_per_sec,
            floor.max_ok_deliveries_per_sec
        )
    );
    Some(s)
}

/// Idle results: one line per socket-holding node, then the total over the nodes.
pub fn idle_table(results: &[IdleResult]) -> String {
    let mut s = format!(
        "{:<22} {:>6} {:>8} {:>12} {:>12} {:>10} {:>10} {:>7} {:>8}\n",
        "target", "node", "conns", "RSS at 0", "RSS at N", "bytes/conn", "conn/s", "errors", "open"
    );
    for r in results {
        if r.nodes.len() > 1 {
            for (j, n) in r.nodes.iter().enumerate() {
                let _ = writeln!(
                    s,
                    "{:<22} {:>6} {:>8} {:>12} {:>12} {:>10}",
                    r.target.label(),
                    j,
                    n.connections,
                    n.rss_zero_bytes,
                    n.rss_bytes,
                    num(n.bytes_per_connection),
                );
            }
        }
        let last = r.points.last().map_or(0, |p| p.rss_bytes);
        let _ = writeln!(
            s,
            "{:<22} {:>6} {:>8} {:>12} {:>12} {:>10} {:>10} {:>7} {:>8}",
            r.target.label(),
            if r.nodes.len() > 1 { "all" } else { "0" },
            r.points.last().map_or(0, |p| p.connections),
            r.rss_zero_bytes,
            last,
            num(r.bytes_per_connection),
            num(r.connects_per_sec),
            r.connect_errors,
            r.open_at_end,
        );
        if r.generator_workers > 0 {
            let _ = writeln!(
                s,
                "  ({} server node(s) holding sockets, client sockets in {} generator worker process(es))",
                r.params.nodes, r.generator_workers
            );
        }
    }
    s
}

pub fn history_table(results: &[HistoryResult]) -> String {
    let mut s = format!(
        "{:<22} {:>9} {:>10} {:>8} {:>9} {:>9} {:>9}\n",
        "target", "messages", "fill msg/s", "pages", "pages/s", "p50 ms", "p99 ms"
    );
    for r in results {
        let _ = writeln!(
            s,
            "{:<22} {:>9} {:>10} {:>8} {:>9} {:>9} {:>9}",
            r.target.label(),
            r.params.messages,
            num(r.fill_msgs_per_sec),
            r.pages,
            num(r.pages_per_sec),
            num(r.page_latency.p50_ms),
            num(r.page_latency.p99_ms)
        );
    }
    s
}

// ---------------------------------------------------------------------------------------------
// BENCHMARKS.md
// ---------------------------------------------------------------------------------------------

pub(super) fn per_target<T>(items: &[T], target: Target, of: impl Fn(&T) -> Target) -> Vec<&T> {
    items.iter().filter(|i| of(i) == target).collect()
}

/// Runs of `data.idle_scaled` with these parameters.
pub(super) fn scaled_runs<'a>(
    data: &'a ReportData,
    p: &IdleParams,
    target: Target,
) -> Vec<&'a IdleResult> {
    data.idle_scaled
        .iter()
        .filter(|r| {
            r.target == target && r.params.connections == p.connections && r.params.nodes == p.nodes
        })
        .collect()
}

/// Median bytes per idle connection over all nodes of the largest scaled idle configuration,
/// with its size.
pub(super) fn scaled_headline(data: &ReportData, target: Target) -> Option<(usize, f64)> {
    let p = data.plan.idle_scaled.iter().max_by_key(|p| p.connections)?;
    let per = median(
        scaled_runs(data, p, target)
            .iter()
            .map(|r| r.bytes_per_connection)
            .collect(),
    )?;
    Some((p.connections, per))
}

/// "Idle connections beyond one process": several server nodes on one Redis, per node and in
/// total.
pub(super) fn idle_scaled_section(w: &mut String, data: &ReportData) {
    if data.plan.idle_scaled.is_empty() {
        return;
    }
    let _ = writeln!(
        w,
        "## Idle connections beyond one process: several nodes on one Redis\n\n\
         **Why several nodes:** this machine's hard open-file limit is 20,000 per process \
         (`ulimit -Hn`), and it cannot be raised here (`prlimit` needs CAP_SYS_RESOURCE), so one \
         server process cannot hold 50k sockets. The sockets are therefore spread evenly over \
         as many server nodes of the same target on one Redis as needed (at most {} per node), \
         the way an operator would add nodes; a further node registers the users and is not \
         measured. The load generator likewise spreads its client sockets over several \
         `chat-bench idle-worker` processes (at most {} each), each from its own 127.0.0.x \
         source addresses. Bytes per connection of a node = (its RSS with its N idle \
         authenticated sockets − its RSS with none) / N; the total is the same over the sum of \
         the nodes. The nodes share nothing in memory, so a per-node figure is what one \
         process pays per socket at ~N/nodes sockets each.\n",
        num(crate::scenario::MAX_PER_NODE as f64),
        num(crate::worker::MAX_PER_WORKER as f64),
    );
    let _ = writeln!(w, "| target | sockets | node | sockets on node | RSS at 0 (MiB) | RSS at N (MiB) | bytes / connection | spread | handshakes/s | connect errors | open at end |");
    let _ = writeln!(w, "|---|---:|---|---:|---:|---:|---:|---|---:|---:|---:|");
    for p in &data.plan.idle_scaled {
        for target in TARGETS {
            let runs = scaled_runs(data, p, target);
            if runs.is_empty() {
                let _ = writeln!(
                    w,
                    "| {} | {} | - | - | - | - | - | - | - | - | - (no run finished) |",
                    target.label(),
                    num(p.connections as f64)
                );
                continue;
            }
            let mib = |b: u64| b as f64 / 1048576.0;
            for j in 0..p.nodes {
                let node = |f: &dyn Fn(&crate::scenario::NodeIdle) -> f64| {
                    median(runs.iter().filter_map(|r| r.nodes.get(j).map(f)).collect())
                        .map_or("-".into(), num)
                };
                let per: Vec<f64> = runs
                    .iter()
                    .filter_map(|r| r.nodes.get(j).map(|n| n.bytes_per_connection))
                    .collect();
                let _ = writeln!(
                    w,
                    "| {} | {} | {} | {} | {} | {} | {} | {} | | | |",
                    target.label(),
                    num(p.connections as f64),
                    j,
                    node(&|n| n.connections as f64),
                    node(&|n| mib(n.rss_zero_bytes)),
                    node(&|n| mib(n.rss_bytes)),
                    median(per.clone()).map_or("-".into(), num),
                    spread(&per),
                );
            }
            let m = |f: &dyn Fn(&IdleResult) -> f64| {
                median(runs.iter().map(|r| f(r)).collect()).map_or("-".into(), num)
            };
            let per: Vec<f64> = runs.iter().map(|r| r.bytes_per_connection).collect();
            let _ = writeln!(
                w,
                "| {} | {} | **all {}** | {} | {} | {} | **{}** | {} | {} | {} | {} |",
                target.label(),
                num(p.connections as f64),
                p.nodes,
                m(&|r| r.points.last().map_or(0.0, |pt| pt.connections as f64)),
                m(&|r| mib(r.rss_zero_bytes)),
                m(&|r| mib(r.points.last().map_or(0, |pt| pt.rss_bytes))),
                median(per.clone()).map_or("-".into(), num),
                spread(&per),
                m(&|r| r.connects_per_sec),
                m(&|r| r.connect_errors as f64),
                m(&|r| r.open_at_end as f64),
            );
        }
    }
    let _ = writeln!(w);
}

/// The fanout's highest passing offered deliveries/s of `target`, median over runs.
pub(super) fn fanout_capacity(data: &ReportData, target: Target) -> Option<f64> {
    median(
        data.fanout
            .iter()
            .filter(|r| r.target == target)
            .map(|r| r.max_ok_deliveries_per_sec.unwrap_or(0.0))
            .collect(),
    )
}

/// Ours against the floor (issue 17's targets): capacity and server CPU per delivery, from the
/// same runs, then the ratio at every offered rate both ran.
pub(super) fn floor_summary(
    w: &mut String,
    data: &ReportData,
    ours: &[MedianStep],
    floor: &[MedianStep],
) {
    if floor.is_empty() || ours.is_empty() {
        return;
    }
    let _ = writeln!(
        w,
        "### Against the floor (a bare broadcast server on the same WebSocket stack; same runs)\n"
    );
    let _ = writeln!(
        w,
        "| measure | chat-server | floor | ours / floor | target |"
    );
    let _ = writeln!(w, "|---|---:|---:|---:|---|");
    let (co, cf) = (
        fanout_capacity(data, Target::Ours),
        fanout_capacity(data, Target::Floor),
    );
    let top = |m: &[MedianStep]| m.last().is_some_and(|m| m.passed_runs * 2 > m.runs);
    let _ = writeln!(
        w,
        "| highest offered deliveries/s with p99 < {} ms and nothing lost | {}{} | {}{} | **{}** | ≥ 0.70× |",
        num(data.plan.fanout.p99_limit_ms),
        co.map_or("-".into(), num),
        if top(ours) { " (top step tried)" } else { "" },
        cf.map_or("-".into(), num),
        if top(floor) { " (top step tried)" } else { "" },
        ratio(co, cf)
    );
    for o in ours {
        let Some(f) = floor.iter().find(|f| f.rate == o.rate) else {
            continue;
        };
        let _ = writeln!(
            w,
            "| server CPU-s per 1M deliveries at {} deliveries/s (Redis not included; ours + Redis: {}) | {} | {} | **{}** | ≤ 1.25× |",
            num(o.deliveries_offered),
            num(o.total_cpu_per_m),
            num(o.server_cpu_per_m),
            num(f.server_cpu_per_m),
            ratio(Some(o.server_cpu_per_m), Some(f.server_cpu_per_m))
        );
    }
    let _ = writeln!(w);
}
