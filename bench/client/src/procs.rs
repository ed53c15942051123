//! What `/proc` says about an app and every process under it (WebKit's web and network
//! processes, and whatever sandbox launcher sits between): proportional set size, CPU time,
//! start time.
//!
//! PSS counts a page shared by k processes as 1/k in each, so the sum over the tree is the
//! memory the app adds to the machine, shared libraries included once.

use serde::Serialize;
use std::collections::HashMap;
use std::time::Duration;

/// One process of the tree.
#[derive(Debug, Clone, Serialize)]
pub struct Proc {
    pub pid: u32,
    pub name: String,
    pub pss_kib: u64,
}

/// `(pid, ppid, comm)` of every process.
fn all() -> Vec<(u32, u32, String)> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(|pid| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            let (comm, rest) = split_stat(&stat)?;
            let ppid = rest.get(1)?.parse().ok()?;
            Some((pid, ppid, comm.to_owned()))
        })
        .collect()
}

/// `comm` and the fields after it (field 3 onwards) of a `/proc/PID/stat` line.
fn split_stat(stat: &str) -> Option<(&str, Vec<&str>)> {
    let open = stat.find('(')?;
    let close = stat.rfind(')')?;
    let comm = stat.get(open + 1..close)?;
    let rest = stat.get(close + 1..)?.split_whitespace().collect();
    Some((comm, rest))
}

/// `root` and all its descendants, root first.
pub fn tree(root: u32) -> Vec<(u32, String)> {
    let procs = all();
    let mut children: HashMap<u32, Vec<u32>> = HashMap::new();
    let mut names = HashMap::new();
    for (pid, ppid, comm) in procs {
        children.entry(ppid).or_default().push(pid);
        names.insert(pid, comm);
    }
    let mut out = Vec::new();
    let mut todo = vec![root];
    while let Some(pid) = todo.pop() {
        let Some(name) = names.get(&pid) else {
            continue;
        };
        out.push((pid, name.clone()));
        if let Some(c) = children.get(&pid) {
            todo.extend(c.iter().copied());
        }
    }
    out
}

/// The first descendant of `root` (or `root`) whose `comm` is `name` (cut to 15 characters,
/// as the kernel keeps it).
pub fn find(root: u32, name: &str) -> Option<u32> {
    let short: String = name.chars().take(15).collect();
    tree(root)
        .into_iter()
        .find(|(_, comm)| *comm == short)
        .map(|(pid, _)| pid)
}

/// PSS of one process in KiB (0 when it is gone).
pub fn pss_kib(pid: u32) -> u64 {
    let Ok(text) = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")) else {
        return 0;
    };
    text.lines()
        .find_map(|l| l.strip_prefix("Pss:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// Every process of the tree under `root` with its PSS.
pub fn pss_tree(root: u32) -> Vec<Proc> {
    tree(root)
        .into_iter()
        .map(|(pid, name)| Proc {
            pid,
            name,
            pss_kib: pss_kib(pid),
        })
        .filter(|p| p.pss_kib > 0)
        .collect()
}

/// Clock ticks per second for `/proc` times (`getconf CLK_TCK`; 100 on Linux).
fn ticks_per_s() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .unwrap_or(100.0)
}

/// User + system CPU time of one process.
fn cpu_ticks(pid: u32) -> u64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0;
    };
    let Some((_, rest)) = split_stat(&stat) else {
        return 0;
    };
    // Fields 14 and 15 (utime, stime); `rest` starts at field 3.
    let field = |n: usize| -> u64 { rest.get(n - 3).and_then(|v| v.parse().ok()).unwrap_or(0) };
    field(14) + field(15)
}

/// CPU time of the whole tree under `root`, per process id (a process that exits in between
/// takes its time with it; the app's processes live as long as it).
pub fn cpu_tree(root: u32) -> HashMap<u32, u64> {
    tree(root)
        .into_iter()
        .map(|(pid, _)| (pid, cpu_ticks(pid)))
        .collect()
}

/// CPU-seconds in a [`cpu_tree`] snapshot (since each process started).
pub fn cpu_seconds(snapshot: &HashMap<u32, u64>) -> f64 {
    snapshot.values().sum::<u64>() as f64 / ticks_per_s()
}

/// CPU used by the tree between two [`cpu_tree`] snapshots, as a share of one core over
/// `over` (0.01 = 1 %).
pub fn cpu_share(before: &HashMap<u32, u64>, after: &HashMap<u32, u64>, over: Duration) -> f64 {
    let ticks: u64 = after
        .iter()
        .map(|(pid, t)| t.saturating_sub(before.get(pid).copied().unwrap_or(0)))
        .sum();
    ticks as f64 / ticks_per_s() / over.as_secs_f64().max(1e-9)
}

/// Seconds since boot when `pid` started (10 ms resolution), and now, from the same clock.
pub fn started_and_now(pid: u32) -> Option<(f64, f64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (_, rest) = split_stat(&stat)?;
    let start: f64 = rest.get(22 - 3)?.parse().ok()?;
    let uptime = std::fs::read_to_string("/proc/uptime").ok()?;
    let now: f64 = uptime.split_whitespace().next()?.parse().ok()?;
    Some((start / ticks_per_s(), now))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_process_is_readable() {
        let me = std::process::id();
        assert!(pss_kib(me) > 0, "PSS of this test process");
        assert!(tree(me).iter().any(|(pid, _)| *pid == me));
        let (start, now) = started_and_now(me).expect("own start time");
        assert!(
            start <= now + 0.02,
            "started {start} s after boot, now {now}"
        );
    }

    #[test]
    fn stat_with_spaces_in_the_name() {
        let (comm, rest) = split_stat("42 (Web Content) S 7 42 42 0").expect("parsed");
        assert_eq!(comm, "Web Content");
        assert_eq!(rest[1], "7");
    }
}
