//! The Redis append-only file as the `redis_rollback` fault cuts it.
//!
//! Redis 7 keeps a multi-part AOF: `appendonlydir/` holds a base file (an RDB snapshot), one or
//! more incremental files of RESP commands, and `appendonly.aof.manifest`, one line per file
//! (`file appendonly.aof.1.incr.aof seq 1 type i`); the last `type i` line is the file being
//! appended to. A rewrite starts a new incremental file, so a length measured before it says
//! nothing about the file after it: a [`Mark`] names its file.
//!
//! The fault cuts whole commands off the end of the current incremental file: a script runs as
//! `MULTI` … `EXEC` (Redis 7 writes a script's effects), and such a block is cut whole, never
//! half. What it cut is counted ([`Cut`]): bytes, commands, and the room events (a script that
//! sets `room:{id}` `seq` to N and adds N to `room:{id}:log`, see `server/src/store/redis.rs`).

use std::path::{Path, PathBuf};

pub type Result<T, E = String> = std::result::Result<T, E>;

/// A position in the AOF: the current incremental file and its length.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Mark {
    pub file: String,
    pub len: u64,
}

/// What a cut removed.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Cut {
    /// The incremental file that was cut.
    pub file: String,
    /// Bytes removed off its end.
    pub bytes: u64,
    /// Write commands removed (`MULTI`/`EXEC` not counted).
    pub commands: u32,
    /// Room events removed: `(room, seq)`.
    pub events: Vec<(u64, u64)>,
    /// The cut was moved back past the bytes asked for, to the last event after the floor,
    /// because the bytes asked for held no event.
    pub extended: bool,
}

/// A room event: `(room, seq)`.
type Event = (u64, u64);

/// One unit the file is cut by: a command, or a whole `MULTI` … `EXEC` block.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Unit {
    start: u64,
    end: u64,
    commands: u32,
    events: Vec<(u64, u64)>,
}

/// The current incremental file of the AOF in `dir` (the Redis `--dir`), by the manifest.
pub fn current(dir: &Path) -> Result<PathBuf> {
    let aof_dir = dir.join("appendonlydir");
    let manifest = aof_dir.join("appendonly.aof.manifest");
    let text =
        std::fs::read_to_string(&manifest).map_err(|e| format!("{}: {e}", manifest.display()))?;
    let name = text
        .lines()
        .rev()
        .find_map(|l| {
            let words: Vec<&str> = l.split_whitespace().collect();
            let at = |key: &str| {
                words
                    .iter()
                    .position(|w| *w == key)
                    .and_then(|i| words.get(i + 1))
            };
            (at("type") == Some(&"i")).then(|| at("file").map(|f| f.to_string()))?
        })
        .ok_or_else(|| format!("{} lists no incremental file", manifest.display()))?;
    Ok(aof_dir.join(name))
}

/// Where the AOF in `dir` ends now.
pub fn mark(dir: &Path) -> Result<Mark> {
    let path = current(dir)?;
    let len = std::fs::metadata(&path)
        .map_err(|e| format!("{}: {e}", path.display()))?
        .len();
    Ok(Mark {
        file: file_name(&path),
        len,
    })
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Cuts about `bytes` off the end of the current incremental file of the AOF in `dir` (Redis
/// must be stopped), never below `floor` when the floor lies in that file (a file started
/// after the floor was measured is all later writes). The cut falls on a unit boundary at or
/// before `len - bytes`; if what it would remove holds no room event, it moves back to the
/// start of the last unit after the floor that holds one, so the fault loses acknowledged
/// events whenever there were any (the bytes asked for may hold only presence heartbeats).
pub fn cut_tail(dir: &Path, bytes: u64, floor: &Mark) -> Result<Cut> {
    let path = current(dir)?;
    let data = std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let file = file_name(&path);
    let floor = if floor.file == file { floor.len } else { 0 };
    let (new_len, extended) = plan(&data, bytes, floor);
    let cut = removed(&data, new_len, file, extended);
    if cut.bytes > 0 {
        let f = std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .map_err(|e| format!("{}: {e}", path.display()))?;
        f.set_len(new_len)
            .map_err(|e| format!("{}: {e}", path.display()))?;
        f.sync_all()
            .map_err(|e| format!("{}: {e}", path.display()))?;
    }
    Ok(cut)
}

/// The length to cut `data` down to, and whether it was moved back to reach an event.
fn plan(data: &[u8], bytes: u64, floor: u64) -> (u64, bool) {
    let len = data.len() as u64;
    let units = units(data);
    let target = len.saturating_sub(bytes).max(floor);
    // A torn tail (a command half-written) goes with the cut.
    let complete = units.last().map_or(0, |u| u.end);
    let mut new_len = units
        .iter()
        .find(|u| u.end > target)
        .map_or(complete, |u| u.start);
    if new_len < floor {
        // The floor lies inside a unit: keep that unit.
        new_len = units
            .iter()
            .find(|u| u.start >= floor)
            .map_or(complete, |u| u.start);
    }
    let loses_event = units
        .iter()
        .any(|u| u.start >= new_len && !u.events.is_empty());
    if !loses_event {
        if let Some(u) = units
            .iter()
            .rev()
            .find(|u| u.start >= floor && !u.events.is_empty())
        {
            return (u.start, true);
        }
    }
    (new_len, false)
}

/// What cutting `data` down to `new_len` removes.
fn removed(data: &[u8], new_len: u64, file: String, extended: bool) -> Cut {
    let tail: Vec<Unit> = units(data)
        .into_iter()
        .filter(|u| u.start >= new_len)
        .collect();
    Cut {
        file,
        bytes: (data.len() as u64).saturating_sub(new_len),
        commands: tail.iter().map(|u| u.commands).sum(),
        events: tail.into_iter().flat_map(|u| u.events).collect(),
        extended,
    }
}

/// The complete units of an incremental AOF, in order. Parsing stops at a torn or unreadable
/// tail (and at an unfinished `MULTI`, which Redis drops when it loads the file).
fn units(data: &[u8]) -> Vec<Unit> {
    let mut out = Vec::new();
    let mut pos = 0usize;
    let mut block: Option<Unit> = None;
    // Per block: room → seq set on `room:{id}`, and (room, seq) added to `room:{id}:log`.
    let mut seqs: Vec<(u64, u64)> = Vec::new();
    let mut logged: Vec<(u64, u64)> = Vec::new();
    while pos < data.len() {
        let start = pos;
        let Some((args, next)) = command(data, pos) else {
            break;
        };
        pos = next;
        let name = args
            .first()
            .map(|a| a.to_ascii_uppercase())
            .unwrap_or_default();
        match name.as_slice() {
            b"MULTI" => {
                block = Some(Unit {
                    start: start as u64,
                    end: 0,
                    commands: 0,
                    events: Vec::new(),
                });
                seqs.clear();
                logged.clear();
            }
            b"EXEC" => {
                if let Some(mut u) = block.take() {
                    u.end = pos as u64;
                    u.events = logged
                        .iter()
                        .filter(|e| seqs.contains(e))
                        .copied()
                        .collect();
                    out.push(u);
                }
            }
            _ => {
                let (s, l) = event_parts(&args);
                match block.as_mut() {
                    Some(u) => {
                        u.commands += 1;
                        seqs.extend(s);
                        logged.extend(l);
                    }
                    None => {
                        let events = l.into_iter().filter(|e| s.contains(e)).collect();
                        out.push(Unit {
                            start: start as u64,
                            end: pos as u64,
                            commands: u32::from(!name.is_empty() && name[0] != b'#'),
                            events,
                        });
                    }
                }
            }
        }
    }
    out
}

/// `HSET room:{id} … seq N …` gives `(id, N)` as a seq; `ZADD room:{id}:log N frame` gives
/// `(id, N)` as logged (either key layout).
fn event_parts(args: &[Vec<u8>]) -> (Vec<Event>, Vec<Event>) {
    let text = |i: usize| args.get(i).map(|a| String::from_utf8_lossy(a).into_owned());
    let (Some(name), Some(key)) = (text(0), text(1)) else {
        return (Vec::new(), Vec::new());
    };
    let name = name.to_ascii_uppercase();
    let Some(rest) = key.strip_prefix("room:") else {
        return (Vec::new(), Vec::new());
    };
    // Partitioned names (`room:{<tag>}:<id>`, see `server/src/store/redis/keys.rs`).
    let rest = match rest.strip_prefix('{') {
        Some(tagged) => tagged.split_once("}:").map_or(tagged, |(_, id)| id),
        None => rest,
    };
    let num = |s: &str| s.parse::<u64>().ok();
    let mut seqs = Vec::new();
    let mut logged = Vec::new();
    if name == "HSET" || name == "HMSET" {
        if let Some(room) = num(rest) {
            let mut i = 2;
            while i + 1 < args.len() {
                if args[i] == b"seq" {
                    if let Some(seq) = text(i + 1).as_deref().and_then(num) {
                        seqs.push((room, seq));
                    }
                }
                i += 2;
            }
        }
    } else if name == "ZADD" {
        if let Some(room) = rest.strip_suffix(":log").and_then(num) {
            // ZADD key [flags] score member [score member ...]; our scripts add one.
            if let Some(seq) = text(2).as_deref().and_then(num) {
                logged.push((room, seq));
            }
        }
    }
    (seqs, logged)
}

/// One RESP command (`*N` then N bulk strings) or annotation line (`#...`) at `pos`: its
/// arguments and where the next one starts. `None` when it is torn or not RESP.
fn command(data: &[u8], pos: usize) -> Option<(Vec<Vec<u8>>, usize)> {
    let (head, mut pos) = line(data, pos)?;
    if head.first() == Some(&b'#') {
        return Some((vec![head.to_vec()], pos));
    }
    let n: usize = std::str::from_utf8(head.strip_prefix(b"*")?)
        .ok()?
        .parse()
        .ok()?;
    let mut args = Vec::with_capacity(n);
    for _ in 0..n {
        let (len, next) = line(data, pos)?;
        let len: usize = std::str::from_utf8(len.strip_prefix(b"$")?)
            .ok()?
            .parse()
            .ok()?;
        let end = next.checked_add(len)?;
        if data.get(end..end + 2)? != b"\r\n" {
            return None;
        }
        args.push(data[next..end].to_vec());
        pos = end + 2;
    }
    Some((args, pos))
}

/// The line at `pos` (without `\r\n`) and where the next starts.
fn line(data: &[u8], pos: usize) -> Option<(&[u8], usize)> {
    let rest = data.get(pos..)?;
    let at = rest.windows(2).position(|w| w == b"\r\n")?;
    Some((&rest[..at], pos + at + 2))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resp(args: &[&str]) -> String {
        let mut s = format!("*{}\r\n", args.len());
        for a in args {
            s.push_str(&format!("${}\r\n{a}\r\n", a.len()));
        }
        s
    }

    /// An event as the server's scripts leave it in the AOF (partitioned key names; the
    /// tests with bare `room:<id>` keys cover the layout before).
    fn event(room: u64, seq: u64) -> String {
        let key = format!("room:{{{room}.9}}:{room}");
        let log = format!("{key}:log");
        let (seq, frame) = (seq.to_string(), format!("{{\"seq\":{seq}}}"));
        [
            resp(&["MULTI"]),
            resp(&["HSET", &key, "seq", &seq, "ts", "17"]),
            resp(&["ZADD", &log, &seq, &frame]),
            resp(&["EXEC"]),
        ]
        .concat()
    }

    fn heartbeat() -> String {
        resp(&["ZADD", "pres:nodes", "123456", "node-a"])
    }

    #[test]
    fn parses_events_in_transactions_only_with_both_writes() {
        let mut data = resp(&["SELECT", "0"]);
        data += &event(3, 41);
        data += &heartbeat();
        // A seq raised without an event (the rollback check) is no event.
        data += &resp(&["HSET", "room:3", "seq", "50"]);
        data += &event(4, 7);
        let units = units(data.as_bytes());
        assert_eq!(units.len(), 5);
        let events: Vec<_> = units.iter().flat_map(|u| u.events.clone()).collect();
        assert_eq!(events, vec![(3, 41), (4, 7)]);
        assert_eq!(units.last().map(|u| u.end), Some(data.len() as u64));
    }

    #[test]
    fn cuts_whole_transactions_and_counts_what_it_cut() {
        let mut data = event(1, 1);
        let second = data.len() as u64;
        data += &event(1, 2);
        data += &event(1, 3);
        // Asking for a few bytes cuts the whole last transaction, not half of it.
        let (len, extended) = plan(data.as_bytes(), 5, 0);
        assert!(!extended);
        let cut = removed(data.as_bytes(), len, "f".into(), extended);
        assert_eq!(cut.events, vec![(1, 3)]);
        assert_eq!(cut.commands, 2);
        // Never below the floor: the floor keeps the first event.
        let (len, _) = plan(data.as_bytes(), 1 << 20, second);
        assert_eq!(len, second);
        let cut = removed(data.as_bytes(), len, "f".into(), false);
        assert_eq!(cut.events, vec![(1, 2), (1, 3)]);
    }

    #[test]
    fn a_tail_of_heartbeats_is_cut_back_to_the_last_event() {
        let mut data = event(2, 9);
        let floor = data.len() as u64;
        data += &event(2, 10);
        let last_event = data.len() as u64 - event(2, 10).len() as u64;
        for _ in 0..200 {
            data += &heartbeat();
        }
        let (len, extended) = plan(data.as_bytes(), 300, floor);
        assert!(extended);
        assert_eq!(len, last_event);
        let cut = removed(data.as_bytes(), len, "f".into(), extended);
        assert_eq!(cut.events, vec![(2, 10)]);
        // Nothing after the floor: only what was asked (heartbeats), no event.
        let (len, extended) = plan(data.as_bytes(), 300, last_event + 1);
        assert!(!extended);
        assert!(removed(data.as_bytes(), len, "f".into(), false)
            .events
            .is_empty());
    }

    #[test]
    fn a_torn_tail_and_an_unfinished_transaction_go_with_the_cut() {
        let mut data = event(5, 1);
        let whole = data.len() as u64;
        data += &resp(&["MULTI"]);
        data += &resp(&["HSET", "room:5", "seq", "2"]);
        data += "*3\r\n$4\r\nZADD\r\n$6\r\nroo";
        // Nothing asked beyond the torn bytes, and nothing to move back to after the floor.
        let (len, extended) = plan(data.as_bytes(), 0, whole);
        assert_eq!((len, extended), (whole, false));
    }

    #[test]
    fn the_manifest_names_the_current_incremental_file() {
        let dir = tempfile::tempdir().expect("temp dir");
        let aof = dir.path().join("appendonlydir");
        std::fs::create_dir_all(&aof).expect("aof dir");
        std::fs::write(
            aof.join("appendonly.aof.manifest"),
            "file appendonly.aof.2.base.rdb seq 2 type b\n\
             file appendonly.aof.9.incr.aof seq 9 type i\n\
             file appendonly.aof.10.incr.aof seq 10 type i\n",
        )
        .expect("manifest");
        let path = current(dir.path()).expect("current file");
        assert_eq!(file_name(&path), "appendonly.aof.10.incr.aof");
    }
}
