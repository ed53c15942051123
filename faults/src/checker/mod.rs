//! The history checker: after a run, compares what every client observed with the server's
//! canonical history (fetched over REST), per room.
//!
//! - **lost**: an event the server has (or a message it acked) that a member who was connected
//!   afterwards never received, or a message acked to its sender that is not in history;
//! - **duplicated**: the same seq or message delivered twice to one client, or two server
//!   messages for one client id;
//! - **reordered**: a seq that arrived before the one preceding it, or a client's event whose
//!   content differs from the server's event at that seq (a reused seq);
//! - **gapped**: events skipped with a `gap` frame (retention is unbounded in these runs, so a
//!   gap means something was lost — reported, but still a failure);
//! - **outbox**: a composed message not delivered exactly once, a change never answered;
//! - **corrupted**: a file that downloads with other bytes than were uploaded, or different
//!   bytes from different nodes.
//!
//! Beyond the events themselves it judges the state they build ([`check_state`]): every
//! client's final view of every message it received (text, deleted, reply target, who
//! reacted with what, files) must equal history; every acknowledged reaction, edit and delete
//! must be in it (a reaction never lost, never counted twice); a reply points to the seq of the
//! message its client answered; and every acknowledged file downloads byte-identical from
//! every node while its message exists ([`check_files`]), so a message never lacks its file.
//!
//! Runs that wipe the store (Redis without persistence restarted) are checked differently, see
//! [`check_wipe`]: the loss is expected, but every client must be told.

use crate::client::{ClientState, Ident, Op};
use crate::desktop::{DesktopComposed, DesktopReaction};
use crate::files::fingerprint;
use protocol::event::Reaction;
use protocol::ipc::MessageView;
use protocol::{ErrorCode, EventBody, RoomEvent, RoomId, UserId};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

mod desktop;
mod files;
mod loss;
mod state;
#[cfg(test)]
mod tests;
mod wipe;

use desktop::check_desktop;
pub use files::{check_files, Fetched, FileObs};
pub use loss::{held_lost, judge_store_loss, StoreLoss};
pub use state::{check_state, event_at};
use wipe::short_list;
pub use wipe::{check_wipe, WipeObs};

/// The server's history: every room's events, ascending seq.
pub type Canonical = BTreeMap<RoomId, Vec<RoomEvent>>;

/// What a scripted client observed.
pub struct ClientObs<'a> {
    pub name: &'a str,
    pub user: UserId,
    pub state: &'a ClientState,
}

/// Per room in the desktop cache: its cursor, the first seq it holds without holes, and its
/// messages.
pub type CachedRoom = (Option<u64>, Option<u64>, Vec<MessageView>);

/// What the desktop app ended with.
pub struct DesktopObs {
    pub name: String,
    pub user: UserId,
    pub composed: Vec<DesktopComposed>,
    /// Per room: room seq when the app joined (the check covers what came after).
    pub start: BTreeMap<RoomId, u64>,
    pub rooms: BTreeMap<RoomId, CachedRoom>,
    /// Messages still waiting in the outbox (pending or uploading).
    pub outbox_pending: usize,
    /// Messages the server refused for good (shown failed): client id → error code.
    pub failed: BTreeMap<String, String>,
    /// Reactions the app was asked to add, and those it has not delivered.
    pub reactions: Vec<crate::desktop::DesktopReaction>,
    pub reactions_pending: usize,
}

/// Failures by category, each with a human-readable line.
#[derive(Debug, Default, Clone, serde::Serialize, serde::Deserialize)]
pub struct Findings {
    pub lost: Vec<String>,
    pub duplicated: Vec<String>,
    pub reordered: Vec<String>,
    pub gapped: Vec<String>,
    pub outbox: Vec<String>,
    #[serde(default)]
    pub corrupted: Vec<String>,
    pub other: Vec<String>,
}

impl Findings {
    pub fn is_clean(&self) -> bool {
        self.lost.is_empty()
            && self.duplicated.is_empty()
            && self.reordered.is_empty()
            && self.gapped.is_empty()
            && self.outbox.is_empty()
            && self.corrupted.is_empty()
            && self.other.is_empty()
    }

    pub fn lines(&self) -> Vec<String> {
        let mut out = Vec::new();
        for (what, list) in [
            ("lost", &self.lost),
            ("duplicated", &self.duplicated),
            ("reordered", &self.reordered),
            ("gapped", &self.gapped),
            ("outbox", &self.outbox),
            ("corrupted", &self.corrupted),
            ("other", &self.other),
        ] {
            out.extend(list.iter().map(|l| format!("{what}: {l}")));
        }
        out
    }

    /// Sorts a client's live violation into its category.
    fn classify(&mut self, who: &str, v: &str) {
        let line = format!("{who}: {v}");
        if v.contains("delivered again") || v.contains("acked with seq") {
            self.duplicated.push(line);
        } else if v.contains("without a gap") || v.contains("gap after") {
            self.reordered.push(line);
        } else {
            self.other.push(line);
        }
    }
}

/// Checks the server's history on its own: seqs 1..=last without holes, one message per
/// (sender, client id).
fn check_canonical(canonical: &Canonical, f: &mut Findings) {
    for (room, events) in canonical {
        for (i, e) in events.iter().enumerate() {
            if e.seq != i as u64 + 1 {
                f.lost.push(format!(
                    "server history of room {room} has a hole: index {i} holds seq {}",
                    e.seq
                ));
                break;
            }
        }
        let mut ids: HashMap<(UserId, &str), u64> = HashMap::new();
        for e in events {
            if let EventBody::Message { id, sender, .. } = &e.event {
                if let Some(first) = ids.insert((*sender, id.as_str()), e.seq) {
                    f.duplicated.push(format!(
                        "room {room}: client id {id} of user {sender} stored twice (seq {first} and {})",
                        e.seq
                    ));
                }
            }
        }
    }
}

/// Where each (sender, client id) is in history: the seqs holding it.
fn message_index(canonical: &Canonical) -> HashMap<(UserId, String), Vec<(RoomId, u64)>> {
    let mut index: HashMap<(UserId, String), Vec<(RoomId, u64)>> = HashMap::new();
    for (room, events) in canonical {
        for e in events {
            if let EventBody::Message { id, sender, .. } = &e.event {
                index
                    .entry((*sender, id.clone()))
                    .or_default()
                    .push((*room, e.seq));
            }
        }
    }
    index
}

/// Counts of what a run's clients did, for the report.
#[derive(Debug, Default, Clone, Copy, serde::Serialize, serde::Deserialize)]
pub struct Volume {
    /// Messages composed (scripted + desktop).
    pub sent: u64,
    /// Of which composed while offline (outbox).
    pub offline: u64,
    /// Events delivered to clients.
    pub delivered: u64,
    pub edits_deletes: u64,
    /// Reaction changes confirmed (adds and removes).
    #[serde(default)]
    pub reactions: u64,
    /// Replies acknowledged.
    #[serde(default)]
    pub replies: u64,
    /// Files attached to acknowledged messages, and their bytes.
    #[serde(default)]
    pub files: u64,
    #[serde(default)]
    pub file_bytes: u64,
    /// Upload attempts that failed (a node killed, the store away) and were made again.
    #[serde(default)]
    pub upload_retries: u64,
}

/// The full check of a run without data loss.
pub fn check(
    canonical: &Canonical,
    clients: &[ClientObs<'_>],
    desktop: Option<&DesktopObs>,
    files: &FileObs,
) -> (Findings, Volume) {
    let mut f = Findings::default();
    let mut vol = Volume::default();
    check_canonical(canonical, &mut f);
    let index = message_index(canonical);
    let at = |room: RoomId, seq: u64| -> Option<&RoomEvent> {
        canonical
            .get(&room)
            .and_then(|evs| evs.get((seq as usize).checked_sub(1)?))
            .filter(|e| e.seq == seq)
    };
    for c in clients {
        let st = c.state;
        for v in &st.violations {
            f.classify(c.name, v);
        }
        for (room, &start) in &st.start {
            let last = canonical
                .get(room)
                .and_then(|e| e.last())
                .map_or(0, |e| e.seq);
            let cursor = st.cursors.get(room).copied().unwrap_or(start);
            if cursor < last {
                f.lost.push(format!(
                    "{}: room {room} ends at seq {cursor}, the server has {last}",
                    c.name
                ));
            }
            if cursor > last {
                f.reordered.push(format!(
                    "{}: room {room} cursor {cursor} is beyond the server's last seq {last}",
                    c.name
                ));
            }
            let seen = st.seen.get(room).map(Vec::as_slice).unwrap_or(&[]);
            vol.delivered += seen.len() as u64;
            let mut by_seq: HashMap<u64, &Ident> = HashMap::new();
            let mut idents: HashSet<&Ident> = HashSet::new();
            for (seq, ident) in seen {
                if by_seq.insert(*seq, ident).is_some() {
                    f.duplicated
                        .push(format!("{}: room {room} seq {seq} received twice", c.name));
                }
                if matches!(ident, Ident::Message(..)) && !idents.insert(ident) {
                    f.duplicated.push(format!(
                        "{}: room {room} message {ident:?} received twice",
                        c.name
                    ));
                }
                match at(*room, *seq) {
                    Some(e) if Ident::of(&e.event) == *ident => {}
                    Some(e) => f.reordered.push(format!(
                        "{}: room {room} seq {seq} was {ident:?}, the server has {:?}",
                        c.name,
                        Ident::of(&e.event)
                    )),
                    None => f.lost.push(format!(
                        "{}: room {room} seq {seq} ({ident:?}) was delivered but is not in history",
                        c.name
                    )),
                }
            }
            let gaps: Vec<_> = st.gaps.iter().filter(|g| g.room == *room).collect();
            for g in &gaps {
                f.gapped.push(format!(
                    "{}: room {room} gap {}..={} ({:?})",
                    c.name,
                    g.after + 1,
                    g.until,
                    g.reason
                ));
            }
            let mut missing = Vec::new();
            for seq in start + 1..=last.min(cursor) {
                let covered = gaps.iter().any(|g| g.after < seq && seq <= g.until);
                if !by_seq.contains_key(&seq) && !covered {
                    missing.push(seq);
                }
            }
            if !missing.is_empty() {
                f.lost.push(format!(
                    "{}: room {room} never received seqs {}",
                    c.name,
                    short_list(&missing)
                ));
            }
        }
        for m in &st.composed {
            vol.sent += 1;
            if m.offline {
                vol.offline += 1;
            }
            if m.fresh_acks > 1 {
                f.duplicated.push(format!(
                    "{}: {} acked as new {} times",
                    c.name, m.id, m.fresh_acks
                ));
            }
            let stored = index
                .get(&(c.user, m.id.clone()))
                .map(Vec::as_slice)
                .unwrap_or(&[]);
            match (m.seq, stored) {
                (_, [_, _, ..]) => {} // reported by check_canonical
                (Some(seq), [(room, s)]) if *room == m.room && *s == seq => {}
                (Some(seq), [(room, s)]) => f.reordered.push(format!(
                    "{}: {} acked at room {} seq {seq}, stored at room {room} seq {s}",
                    c.name, m.id, m.room
                )),
                (Some(seq), []) => f.lost.push(format!(
                    "{}: {} acked (room {} seq {seq}) but not in history",
                    c.name, m.id, m.room
                )),
                (None, []) if m.refused.is_some() => {}
                (None, []) => f.outbox.push(format!(
                    "{}: {} (room {}{}) never acked nor stored",
                    c.name,
                    m.id,
                    m.room,
                    if m.offline { ", composed offline" } else { "" }
                )),
                (None, [(room, s)]) => f.outbox.push(format!(
                    "{}: {} stored at room {room} seq {s} but never acked",
                    c.name, m.id
                )),
            }
        }
        let confirmed = st
            .changes
            .iter()
            .filter(|c| c.confirmed)
            .filter_map(|c| match c.op {
                Op::Edit(_) => Some((c.room, c.target, false)),
                Op::Delete => Some((c.room, c.target, true)),
                Op::React { .. } => None,
            });
        for (room, target, delete) in confirmed {
            let (room, target, delete) = (&room, &target, &delete);
            vol.edits_deletes += 1;
            let found = canonical.get(room).is_some_and(|evs| {
                evs.iter().any(|e| match &e.event {
                    EventBody::Edit { target: t, .. } => !delete && t == target,
                    EventBody::Delete { target: t, .. } => *delete && t == target,
                    _ => false,
                })
            });
            if !found {
                f.lost.push(format!(
                    "{}: {} of room {room} seq {target} was confirmed but is not in history",
                    c.name,
                    if *delete { "delete" } else { "edit" }
                ));
            }
            if *delete {
                let deleted = at(*room, *target)
                    .is_some_and(|e| matches!(e.event, EventBody::Message { deleted: true, .. }));
                if !deleted {
                    f.lost.push(format!(
                        "{}: room {room} seq {target} was deleted but history shows it",
                        c.name
                    ));
                }
            }
        }
    }
    if let Some(d) = desktop {
        check_desktop(canonical, &index, d, files, &mut f, &mut vol);
    }
    check_state(canonical, clients, &mut f, &mut vol);
    check_files(canonical, clients, files, &mut f, &mut vol);
    (f, vol)
}
