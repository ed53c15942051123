//! Listening ports for the processes the tests start, and the tail of their logs for a panic
//! message when one does not come up.
//!
//! A port from `bind(127.0.0.1:0)` lies in the kernel's ephemeral range
//! (`/proc/sys/net/ipv4/ip_local_port_range`), the same range every outgoing connection takes
//! its local port from. Between picking it and the process binding it, any connection of the
//! machine (another test's client, a cluster node's bus link) may take it, and the process
//! exits with "address already in use"; the kernel may also hand the same port out twice in a
//! row. So [`free_port`] picks at random *below* that range, where no outgoing connection gets
//! a port, checks it by binding, and never hands out one port twice in a process.

use std::collections::HashSet;
use std::hash::{BuildHasher, Hasher};
use std::net::TcpListener;
use std::path::Path;
use std::sync::Mutex;

/// The lowest port [`free_port`] picks: above the well-known and most registered services.
const LOWEST: u16 = 10_000;
/// How many random ports [`free_port`] tries before it gives up.
const TRIES: usize = 2_000;

/// Every port this process handed out (never handed out again).
static HANDED_OUT: Mutex<Option<HashSet<u16>>> = Mutex::new(None);

/// A port on 127.0.0.1 that was free a moment ago (the caller binds it soon after), below the
/// kernel's ephemeral range and not handed out before in this process; see the module doc.
/// Falls back to a kernel-chosen port when the ephemeral range starts too low to leave room.
pub fn free_port() -> u16 {
    let high = ephemeral_low().unwrap_or(32_768);
    if high <= LOWEST + 1_000 {
        return kernel_port();
    }
    let span = u64::from(high - LOWEST);
    let mut handed_out = HANDED_OUT.lock().unwrap_or_else(|e| e.into_inner());
    let handed_out = handed_out.get_or_insert_with(HashSet::new);
    for _ in 0..TRIES {
        let port = LOWEST + (random() % span) as u16;
        if handed_out.contains(&port) {
            continue;
        }
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            handed_out.insert(port);
            return port;
        }
    }
    panic!("no free port in {LOWEST}..{high} after {TRIES} tries");
}

/// The low end of the kernel's ephemeral port range.
fn ephemeral_low() -> Option<u16> {
    let range = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range").ok()?;
    range.split_whitespace().next()?.parse().ok()
}

/// A port the kernel picks (`bind` to port 0), for machines without room below the range.
fn kernel_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or_else(|e| panic!("cannot find a free port: {e}"))
}

/// A random number (the standard library's per-process random hash keys; no dependency).
fn random() -> u64 {
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u64(u64::from(std::process::id()));
    hasher.finish()
}

/// The last `lines` lines of the log at `path` (for a panic message), or why there are none.
pub fn log_tail(path: &Path, lines: usize) -> String {
    match std::fs::read(path) {
        Ok(bytes) if bytes.is_empty() => format!("({} is empty)", path.display()),
        Ok(bytes) => {
            let text = String::from_utf8_lossy(&bytes);
            let all: Vec<&str> = text.lines().collect();
            all[all.len().saturating_sub(lines)..].join("\n")
        }
        Err(e) => format!("(cannot read {}: {e})", path.display()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_are_below_the_ephemeral_range_and_never_repeat() {
        let high = ephemeral_low().unwrap_or(32_768);
        let mut seen = HashSet::new();
        for _ in 0..500 {
            let port = free_port();
            if high > LOWEST + 1_000 {
                assert!((LOWEST..high).contains(&port), "{port} not below {high}");
            }
            assert!(seen.insert(port), "port {port} handed out twice");
        }
    }

    #[test]
    fn log_tail_keeps_the_last_lines() {
        let path = std::env::temp_dir().join(format!("testkit-tail-{}", std::process::id()));
        std::fs::write(&path, "a\nb\nc\n").unwrap();
        assert_eq!(log_tail(&path, 2), "b\nc");
        std::fs::write(&path, "").unwrap();
        assert!(log_tail(&path, 2).contains("is empty"));
        std::fs::remove_file(&path).unwrap();
        assert!(log_tail(&path, 2).contains("cannot read"));
    }
}
