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

/// How a run where the store lost acknowledged writes came out (see [`judge_store_loss`]).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct StoreLoss {
    /// Acknowledged messages the store lost.
    pub acked_lost: u64,
    /// Scripted clients that held something the store lost: an event they received, a message
    /// acknowledged to them. Only they have something to be told about.
    pub affected: u32,
    /// Of those, the ones told neither by 4010 nor by a gap, each with what it held.
    pub untold: Vec<String>,
}

/// What `client` holds that history no longer has (the first such thing): an event it
/// received at a seq history lacks or holds other content under, or a message acknowledged to
/// it that is not in history. `None`: the store lost nothing this client knew of, so it has
/// nothing to be told (a cut of the AOF that held no event, a loss in rooms it is not in).
pub fn held_lost(canonical: &Canonical, client: &ClientObs<'_>) -> Option<String> {
    let st = client.state;
    for (room, seen) in &st.seen {
        for (seq, ident) in seen {
            match event_at(canonical, *room, *seq) {
                Some(e) if Ident::of(&e.event) == *ident => {}
                Some(_) => return Some(format!("received room {room} seq {seq}, reused since")),
                None => return Some(format!("received room {room} seq {seq}, lost since")),
            }
        }
    }
    let index = message_index(canonical);
    st.composed
        .iter()
        .filter(|m| m.seq.is_some())
        .find(|m| !index.contains_key(&(client.user, m.id.clone())))
        .map(|m| {
            format!(
                "{} acked (room {} seq {}), lost since",
                m.id,
                m.room,
                m.seq.unwrap_or_default()
            )
        })
}

/// Judges a run where the store lost acknowledged writes (its AOF tail cut, or Redis killed
/// while an AOF write was postponed). What it lost may be missing anywhere (history holes,
/// acked messages, events clients hold): allowed, and those findings are dropped from `f`. A
/// seq reused for other content, or a live duplicate, still fails. Told: closed with 4010,
/// or a gap over what it missed; only clients that held something lost need telling.
pub fn judge_store_loss(
    canonical: &Canonical,
    clients: &[ClientObs<'_>],
    f: &mut Findings,
) -> StoreLoss {
    let mut out = StoreLoss {
        acked_lost: f
            .lost
            .iter()
            .filter(|l| l.contains(" acked (room "))
            .count() as u64,
        ..StoreLoss::default()
    };
    for c in clients {
        let Some(held) = held_lost(canonical, c) else {
            continue;
        };
        out.affected += 1;
        let told =
            c.state.closes.contains(&protocol::close::STORE_RESET) || !c.state.gaps.is_empty();
        if !told {
            out.untold.push(format!(
                "{}: {held}; told neither by 4010 nor by a gap",
                c.name
            ));
        }
    }
    f.lost.clear();
    // A client drops its cursors on 4010 (as the protocol says) and starts again, so it may
    // receive an event again; a live duplicate ("delivered again" on one socket) or different
    // content under a seq still fails.
    f.duplicated.retain(|l| !l.contains(" received twice"));
    f.gapped.clear();
    f.outbox.clear();
    f.reordered
        .retain(|l| !l.contains("without a gap") && !l.contains("gap after"));
    f.other.retain(|l| !l.contains("welcome lacks"));
    out
}

/// The event at `seq` of `room` in history (which has holes after the store lost writes).
pub fn event_at(canonical: &Canonical, room: RoomId, seq: u64) -> Option<&RoomEvent> {
    let events = canonical.get(&room)?;
    events
        .binary_search_by_key(&seq, |e| e.seq)
        .ok()
        .map(|i| &events[i])
}

/// The message at `seq` of `room` in history.
fn message_at(canonical: &Canonical, room: RoomId, seq: u64) -> Option<&EventBody> {
    event_at(canonical, room, seq)
        .map(|e| &e.event)
        .filter(|e| matches!(e, EventBody::Message { .. }))
}

/// Who reacted with what, order aside.
fn reaction_set(reactions: &[Reaction]) -> BTreeMap<&str, BTreeSet<UserId>> {
    reactions
        .iter()
        .map(|r| (r.emoji.as_str(), r.users.iter().copied().collect()))
        .collect()
}

/// A user listed twice under one emoji, or one emoji listed twice: a reaction counted twice.
fn counted_twice(reactions: &[Reaction]) -> Option<String> {
    let mut emoji = HashSet::new();
    for r in reactions {
        if !emoji.insert(&r.emoji) {
            return Some(format!("{} listed twice", r.emoji));
        }
        let mut users = HashSet::new();
        if let Some(u) = r.users.iter().find(|u| !users.insert(**u)) {
            return Some(format!("user {u} counted twice on {}", r.emoji));
        }
    }
    None
}

/// The state the events build: every client's view of every message against history, every
/// acknowledged reaction, edit, delete and reply against history, and history's reactions
/// on their own (nobody counted twice).
pub fn check_state(
    canonical: &Canonical,
    clients: &[ClientObs<'_>],
    f: &mut Findings,
    vol: &mut Volume,
) {
    for (room, events) in canonical {
        for e in events {
            if let EventBody::Message {
                reactions,
                reply_to,
                ..
            } = &e.event
            {
                if let Some(why) = counted_twice(reactions) {
                    f.duplicated
                        .push(format!("server: room {room} seq {}: {why}", e.seq));
                }
                if let Some(r) = reply_to {
                    if *r >= e.seq || message_at(canonical, *room, *r).is_none() {
                        f.reordered.push(format!(
                            "server: room {room} seq {} replies to seq {r}, which is no earlier message",
                            e.seq
                        ));
                    }
                }
            }
        }
    }
    for c in clients {
        let st = c.state;
        for (room, views) in &st.views {
            for (seq, view) in views {
                let Some(EventBody::Message {
                    id,
                    sender,
                    body,
                    deleted,
                    reply_to,
                    reactions,
                    attachments,
                    ..
                }) = message_at(canonical, *room, *seq)
                else {
                    continue; // reported by the event checks
                };
                if (*sender, id) != (view.sender, &view.id) {
                    continue; // reported by the event checks
                }
                let at = format!("{}: room {room} seq {seq}", c.name);
                if let Some(why) = counted_twice(&view.reactions) {
                    f.duplicated.push(format!("{at}: {why}"));
                }
                if view.reply_to != *reply_to {
                    f.reordered.push(format!(
                        "{at} replies to {:?} on the client, {reply_to:?} on the server",
                        view.reply_to
                    ));
                }
                if view.deleted != *deleted {
                    f.lost.push(format!(
                        "{at}: deleted={} on the client, {deleted} on the server",
                        view.deleted
                    ));
                    continue;
                }
                if view.body != *body {
                    f.lost.push(format!(
                        "{at}: the client shows {:?}, the server {body:?} (an edit was lost)",
                        view.body
                    ));
                }
                let (mine, theirs) = (reaction_set(&view.reactions), reaction_set(reactions));
                if mine != theirs {
                    f.lost.push(format!(
                        "{at}: reactions {mine:?} on the client, {theirs:?} on the server"
                    ));
                }
                let ids: Vec<&str> = attachments.iter().map(|a| a.id.as_str()).collect();
                if view
                    .attachments
                    .iter()
                    .map(String::as_str)
                    .ne(ids.iter().copied())
                {
                    f.lost.push(format!(
                        "{at}: files {:?} on the client, {ids:?} on the server",
                        view.attachments
                    ));
                }
            }
        }
        check_changes(canonical, c, f, vol);
        check_replies(canonical, c, f, vol);
    }
}

/// The last change a client asked for on each message (and emoji) against history.
fn check_changes(canonical: &Canonical, c: &ClientObs<'_>, f: &mut Findings, vol: &mut Volume) {
    let st = c.state;
    let mut last: HashMap<(RoomId, u64, Option<&str>), usize> = HashMap::new();
    for (i, change) in st.changes.iter().enumerate() {
        if change.confirmed && matches!(change.op, Op::React { .. }) {
            vol.reactions += 1;
        }
        last.insert(change.key(), i);
    }
    let mut keys: Vec<_> = last.into_iter().collect();
    keys.sort_by_key(|(_, i)| *i);
    for (_, i) in keys {
        let change = &st.changes[i];
        let (room, target) = (change.room, change.target);
        let what = match &change.op {
            Op::Edit(_) => "edit".to_owned(),
            Op::Delete => "delete".to_owned(),
            Op::React { emoji, add: true } => format!("reaction {emoji}"),
            Op::React { emoji, add: false } => format!("removal of reaction {emoji}"),
        };
        let at = format!("{}: {what} of room {room} seq {target}", c.name);
        let Some(EventBody::Message {
            deleted,
            body,
            reactions,
            ..
        }) = message_at(canonical, room, target)
        else {
            f.lost.push(format!("{at}: the message is not in history"));
            continue;
        };
        match (change.confirmed, change.refused) {
            (false, None) => f.outbox.push(format!("{at} was never answered")),
            (false, Some(ErrorCode::MessageDeleted)) => {
                if !deleted {
                    f.lost.push(format!(
                        "{at} was refused message_deleted, but history shows the message (a delete was lost)"
                    ));
                }
            }
            (false, Some(code)) => {
                f.lost.push(format!("{at} was refused {code:?}"));
            }
            (true, _) => match &change.op {
                Op::Delete if !deleted => f.lost.push(format!("{at}: confirmed, not deleted")),
                Op::Edit(_) if *deleted => f.lost.push(format!(
                    "{at}: confirmed, but the message is deleted (nobody deleted it)"
                )),
                Op::Edit(text) if body != text => f
                    .lost
                    .push(format!("{at}: confirmed {text:?}, history shows {body:?}")),
                Op::React { emoji, add } if !deleted => {
                    let has = reactions
                        .iter()
                        .any(|r| r.emoji == *emoji && r.users.contains(&c.user));
                    if has != *add {
                        f.lost.push(format!(
                            "{at}: confirmed, but history {} it",
                            if has { "still has" } else { "lacks" }
                        ));
                    }
                }
                _ => {}
            },
        }
    }
}

/// Every acknowledged reply points to the seq of the message its client answered; a reply
/// refused because its original was deleted really answered a deleted message.
fn check_replies(canonical: &Canonical, c: &ClientObs<'_>, f: &mut Findings, vol: &mut Volume) {
    for m in &c.state.composed {
        let Some((target, ident)) = &m.reply_to else {
            continue;
        };
        let original = message_at(canonical, m.room, *target);
        let at = format!(
            "{}: {} (reply to room {} seq {target})",
            c.name, m.id, m.room
        );
        match original {
            None => {
                f.lost.push(format!("{at}: the original is not in history"));
                continue;
            }
            Some(e) if Ident::of(e) != *ident => {
                f.reordered.push(format!(
                    "{at}: the client answered {ident:?}, history holds {:?} there",
                    Ident::of(e)
                ));
                continue;
            }
            Some(_) => {}
        }
        match (m.seq, m.refused) {
            (Some(seq), _) => {
                vol.replies += 1;
                if let Some(EventBody::Message { reply_to, .. }) =
                    message_at(canonical, m.room, seq)
                {
                    if *reply_to != Some(*target) {
                        f.reordered.push(format!(
                            "{at}: stored at seq {seq} replying to {reply_to:?}"
                        ));
                    }
                }
            }
            (None, Some(ErrorCode::MessageDeleted))
                if !matches!(original, Some(EventBody::Message { deleted: true, .. })) =>
            {
                f.lost.push(format!(
                    "{at}: refused message_deleted, but history shows the original (a delete was lost)"
                ));
            }
            (None, Some(ErrorCode::MessageNotFound)) => {
                f.lost.push(format!(
                    "{at}: refused message_not_found, the original is in history"
                ));
            }
            _ => {}
        }
    }
}

/// What downloading one file gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fetched {
    Bytes { len: u64, fingerprint: u64 },
    Status(u16),
    Failed(String),
}

/// The files of a run: each attachment downloaded from every node, and what the storage holds
/// once the collector had its pass.
#[derive(Debug, Default)]
pub struct FileObs {
    /// Per attachment id: (node index, what the download gave).
    pub fetched: BTreeMap<String, Vec<(usize, Fetched)>>,
    /// Half-written upload files (`blobs/{id}#N`) the collector left after they were aged
    /// past its grace period.
    pub leftovers: Vec<String>,
    /// Files of deleted messages still stored after the collector's passes.
    pub kept: Vec<String>,
}

/// Every file of a message in history downloads from every node with the same bytes (and the
/// acknowledged ones with the bytes uploaded); a send refused for its file had a file that was
/// acknowledged; the collector left no half-written file and no file of a deleted message.
pub fn check_files(
    canonical: &Canonical,
    clients: &[ClientObs<'_>],
    files: &FileObs,
    f: &mut Findings,
    vol: &mut Volume,
) {
    let fetched = |id: &str| files.fetched.get(id).map(Vec::as_slice).unwrap_or(&[]);
    for (room, events) in canonical {
        for e in events {
            let EventBody::Message {
                attachments,
                deleted: false,
                ..
            } = &e.event
            else {
                continue;
            };
            for a in attachments {
                let at = format!("room {room} seq {}: file {}", e.seq, a.id);
                let got = fetched(&a.id);
                if got.is_empty() {
                    f.other.push(format!("{at} was not downloaded"));
                }
                let mut prints = BTreeSet::new();
                for (node, fetch) in got {
                    match fetch {
                        Fetched::Bytes { len, fingerprint } => {
                            if *len != a.size {
                                f.corrupted.push(format!(
                                    "{at} downloads with {len} bytes from node {node}, the message says {}",
                                    a.size
                                ));
                            }
                            prints.insert(*fingerprint);
                        }
                        other => f.lost.push(format!(
                            "{at} is missing on node {node} ({other:?}): a message without its file"
                        )),
                    }
                }
                if prints.len() > 1 {
                    f.corrupted.push(format!(
                        "{at} downloads with different bytes from different nodes"
                    ));
                }
            }
        }
    }
    for c in clients {
        for m in &c.state.composed {
            let Some(upload) = &m.upload else { continue };
            vol.upload_retries += u64::from(upload.failed_attempts);
            let Some(stored) = &upload.stored else {
                continue; // refused uploads are violations; unfinished ones leave m unsent
            };
            let at = format!("{}: {} file {} ({})", c.name, m.id, stored.id, upload.name);
            if upload.image
                && (stored.content_type != "image/png"
                    || stored.width.is_none()
                    || !stored.thumbnail)
            {
                f.other.push(format!(
                    "{at}: an image stored as {} without dimensions or thumbnail",
                    stored.content_type
                ));
            }
            match (m.seq, m.refused) {
                (None, Some(ErrorCode::AttachmentNotFound)) => f.lost.push(format!(
                    "{at}: the upload was acknowledged, the send refused attachment_not_found"
                )),
                (Some(seq), _) => {
                    let Some(EventBody::Message {
                        attachments,
                        deleted,
                        ..
                    }) = message_at(canonical, m.room, seq)
                    else {
                        continue; // reported by the event checks
                    };
                    vol.files += 1;
                    vol.file_bytes += upload.bytes.len() as u64;
                    if *deleted {
                        for (node, fetch) in fetched(&stored.id) {
                            if !matches!(fetch, Fetched::Status(404)) {
                                f.other.push(format!(
                                    "{at}: its message is deleted, node {node} still serves it ({fetch:?})"
                                ));
                            }
                        }
                        continue;
                    }
                    if attachments.as_slice() != std::slice::from_ref(stored) {
                        f.lost.push(format!(
                            "{at}: the message at seq {seq} carries {attachments:?}"
                        ));
                        continue;
                    }
                    let want = Fetched::Bytes {
                        len: upload.bytes.len() as u64,
                        fingerprint: fingerprint(&upload.bytes),
                    };
                    for (node, fetch) in fetched(&stored.id) {
                        if let Fetched::Bytes { .. } = fetch {
                            if *fetch != want {
                                f.corrupted.push(format!(
                                    "{at} downloads from node {node} with other bytes than uploaded ({fetch:?}, uploaded {want:?})"
                                ));
                            }
                        }
                    }
                }
                _ => {}
            }
        }
    }
    for l in &files.leftovers {
        f.other.push(format!(
            "the half-written upload file {l} outlived the collector's grace period"
        ));
    }
    for k in &files.kept {
        f.other.push(format!(
            "{k}: the file of a deleted message is still stored"
        ));
    }
}

fn check_desktop(
    canonical: &Canonical,
    index: &HashMap<(UserId, String), Vec<(RoomId, u64)>>,
    d: &DesktopObs,
    files: &FileObs,
    f: &mut Findings,
    vol: &mut Volume,
) {
    if d.outbox_pending > 0 {
        f.outbox.push(format!(
            "{}: {} messages still pending in the outbox",
            d.name, d.outbox_pending
        ));
    }
    if d.reactions_pending > 0 {
        f.outbox.push(format!(
            "{}: {} reaction changes never confirmed",
            d.name, d.reactions_pending
        ));
    }
    check_desktop_extras(canonical, index, d, files, f, vol);
    for m in &d.composed {
        vol.sent += 1;
        if m.offline {
            vol.offline += 1;
        }
        match index
            .get(&(d.user, m.client_id.clone()))
            .map(Vec::as_slice)
            .unwrap_or(&[])
        {
            [] => match d.failed.get(&m.client_id) {
                // A reply whose original is gone (deleted: `message_deleted`, or lost with
                // the store's last writes: `message_not_found`) is refused and shown failed:
                // the user was told.
                Some(code)
                    if (code == "message_not_found" || code == "message_deleted")
                        && m.reply_to.is_some_and(|t| {
                            !matches!(
                                message_at(canonical, m.room, t),
                                Some(EventBody::Message { deleted: false, .. })
                            )
                        }) => {}
                failed => f.outbox.push(format!(
                    "{}: {} (room {}{}) never reached the server{}",
                    d.name,
                    m.client_id,
                    m.room,
                    if m.offline { ", composed offline" } else { "" },
                    failed
                        .map(|c| format!(" (failed: {c})"))
                        .unwrap_or_default()
                )),
            },
            [(room, _)] if *room == m.room => {}
            [(room, seq)] => f.reordered.push(format!(
                "{}: {} written in room {} stored in room {room} seq {seq}",
                d.name, m.client_id, m.room
            )),
            _ => {} // reported by check_canonical
        }
    }
    for (room, &start) in &d.start {
        let events = canonical.get(room).map(Vec::as_slice).unwrap_or(&[]);
        let last = events.last().map_or(0, |e| e.seq);
        let Some((synced, complete_from, cached)) = d.rooms.get(room) else {
            f.lost
                .push(format!("{}: room {room} is not in the cache", d.name));
            continue;
        };
        if *synced != Some(last) {
            f.lost.push(format!(
                "{}: room {room} cache cursor {synced:?}, the server has {last}",
                d.name
            ));
        }
        if complete_from.is_some_and(|c| c > start + 1) {
            f.lost.push(format!(
                "{}: room {room} cache complete only from seq {complete_from:?} (joined at {start})",
                d.name
            ));
        }
        let mut ids = HashSet::new();
        let by_seq: HashMap<u64, &MessageView> =
            cached.iter().filter_map(|m| Some((m.seq?, m))).collect();
        for m in cached {
            if !ids.insert(&m.client_id) {
                f.duplicated.push(format!(
                    "{}: room {room} cache holds {} twice",
                    d.name, m.client_id
                ));
            }
        }
        vol.delivered += cached.len() as u64;
        let mut missing = Vec::new();
        for e in events.iter().filter(|e| e.seq > start) {
            let EventBody::Message {
                id, deleted, body, ..
            } = &e.event
            else {
                continue;
            };
            match by_seq.get(&e.seq) {
                None => missing.push(e.seq),
                Some(m) if &m.client_id != id => f.reordered.push(format!(
                    "{}: room {room} seq {} is {} in the cache, {id} on the server",
                    d.name, e.seq, m.client_id
                )),
                Some(m) if m.deleted != *deleted => f.lost.push(format!(
                    "{}: room {room} seq {} deleted={} in the cache, {deleted} on the server",
                    d.name, e.seq, m.deleted
                )),
                Some(m) if !m.deleted && m.body != *body => f.lost.push(format!(
                    "{}: room {room} seq {}: the cache shows an older text than the server (an edit was lost)",
                    d.name, e.seq
                )),
                Some(_) => {}
            }
        }
        if !missing.is_empty() {
            f.lost.push(format!(
                "{}: room {room} cache lacks messages at seqs {}",
                d.name,
                short_list(&missing)
            ));
        }
    }
}

/// The desktop app's replies, files and reactions against history: a reply stored with the
/// target it was written to, a file stored whole (the length and bytes written, from every
/// node), a reaction the app added shown in history under its user, and the app's cache
/// showing the reactions history shows on every message it reacted to.
fn check_desktop_extras(
    canonical: &Canonical,
    index: &HashMap<(UserId, String), Vec<(RoomId, u64)>>,
    d: &DesktopObs,
    files: &FileObs,
    f: &mut Findings,
    vol: &mut Volume,
) {
    for m in &d.composed {
        let Some(&[(room, seq)]) = index.get(&(d.user, m.client_id.clone())).map(Vec::as_slice)
        else {
            continue; // reported by check_desktop
        };
        let Some(EventBody::Message {
            reply_to,
            attachments,
            deleted,
            ..
        }) = message_at(canonical, room, seq)
        else {
            continue;
        };
        if let Some(target) = m.reply_to {
            vol.replies += 1;
            if *reply_to != Some(target) {
                f.reordered.push(format!(
                    "{}: reply {} to seq {target} stored at room {room} seq {seq} answering {reply_to:?}",
                    d.name, m.client_id
                ));
            }
        }
        let Some((len, print)) = m.file else { continue };
        if *deleted {
            continue;
        }
        vol.files += 1;
        vol.file_bytes += len;
        let [a] = attachments.as_slice() else {
            f.lost.push(format!(
                "{}: {} was written with one file, room {room} seq {seq} carries {}",
                d.name,
                m.client_id,
                attachments.len()
            ));
            continue;
        };
        let want = Fetched::Bytes {
            len,
            fingerprint: print,
        };
        for (node, fetch) in files.fetched.get(&a.id).map(Vec::as_slice).unwrap_or(&[]) {
            if matches!(fetch, Fetched::Bytes { .. }) && *fetch != want {
                f.corrupted.push(format!(
                    "{}: {} file {} downloads from node {node} with other bytes than written ({fetch:?}, written {want:?})",
                    d.name, m.client_id, a.id
                ));
            }
        }
    }
    let mut reacted: BTreeSet<(RoomId, u64)> = BTreeSet::new();
    for DesktopReaction { room, seq, emoji } in &d.reactions {
        vol.reactions += 1;
        reacted.insert((*room, *seq));
        let Some(EventBody::Message {
            reactions, deleted, ..
        }) = message_at(canonical, *room, *seq)
        else {
            continue; // a lost target: the event checks report it
        };
        let shown = reactions
            .iter()
            .any(|r| r.emoji == *emoji && r.users.contains(&d.user));
        if !*deleted && !shown {
            f.lost.push(format!(
                "{}: reaction {emoji} on room {room} seq {seq} is not in history",
                d.name
            ));
        }
    }
    for (room, seq) in reacted {
        let Some(EventBody::Message {
            reactions, deleted, ..
        }) = message_at(canonical, room, seq)
        else {
            continue;
        };
        let cached = d
            .rooms
            .get(&room)
            .and_then(|(_, _, msgs)| msgs.iter().find(|m| m.seq == Some(seq)));
        if let Some(m) = cached {
            if !*deleted && reaction_set(&m.reactions) != reaction_set(reactions) {
                f.lost.push(format!(
                    "{}: room {room} seq {seq} shows reactions {:?} in the cache, {:?} on the server",
                    d.name,
                    reaction_set(&m.reactions),
                    reaction_set(reactions)
                ));
            }
        }
    }
}

/// What a client that lived through a store wipe must show.
pub struct WipeObs<'a> {
    pub name: &'a str,
    /// The typed signal it got (close code or error), if any.
    pub signal: Option<String>,
    pub state: Option<&'a ClientState>,
}

/// A run whose store was wiped: history is gone (documented), so instead of comparing with the
/// server, check that (1) every client was told, with a typed close or error, (2) no client saw
/// a seq twice or out of order, and (3) clients agree on the content of every seq they saw.
pub fn check_wipe(clients: &[WipeObs<'_>]) -> (Findings, Volume) {
    let mut f = Findings::default();
    let mut vol = Volume::default();
    let mut content: HashMap<(RoomId, u64), (&Ident, &str)> = HashMap::new();
    for c in clients {
        if c.signal.is_none() {
            f.lost.push(format!(
                "{}: the store was wiped and the client was never told (silent loss)",
                c.name
            ));
        }
        let Some(st) = c.state else { continue };
        for v in &st.violations {
            f.classify(c.name, v);
        }
        vol.sent += st.composed.len() as u64;
        vol.offline += st.composed.iter().filter(|m| m.offline).count() as u64;
        for (room, seen) in &st.seen {
            vol.delivered += seen.len() as u64;
            for (seq, ident) in seen {
                match content.get(&(*room, *seq)) {
                    Some((other, who)) if *other != ident => f.reordered.push(format!(
                        "room {room} seq {seq}: {} saw {ident:?}, {who} saw {other:?}",
                        c.name
                    )),
                    Some(_) => {}
                    None => {
                        content.insert((*room, *seq), (ident, c.name));
                    }
                }
            }
        }
    }
    (f, vol)
}

fn short_list(seqs: &[u64]) -> String {
    let shown: Vec<String> = seqs.iter().take(10).map(u64::to_string).collect();
    if seqs.len() > 10 {
        format!("{} … ({} in all)", shown.join(", "), seqs.len())
    } else {
        shown.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::Composed;

    const ALICE: UserId = UserId(1);
    const BOB: UserId = UserId(2);
    const ROOM: RoomId = RoomId(7);

    fn message(seq: u64, sender: UserId, id: &str) -> RoomEvent {
        RoomEvent {
            room: ROOM,
            seq,
            ts: 0,
            event: EventBody::Message {
                id: id.into(),
                sender,
                sender_name: String::new(),
                body: format!("body of {id}"),
                edited_ts: None,
                deleted: false,
                reply_to: None,
                reactions: Vec::new(),
                mentions: Vec::new(),
                mention_room: false,
                attachments: Vec::new(),
            },
        }
    }

    /// Server history: alice's a1..a3 at seqs 1..3.
    fn canonical() -> Canonical {
        let mut c = Canonical::new();
        c.insert(
            ROOM,
            vec![
                message(1, ALICE, "a1"),
                message(2, ALICE, "a2"),
                message(3, ALICE, "a3"),
            ],
        );
        c
    }

    /// Bob joined at seq 0 and saw `seqs` (content as on the server).
    fn bob_saw(seqs: &[u64]) -> ClientState {
        let mut st = ClientState::default();
        st.start.insert(ROOM, 0);
        st.cursors.insert(ROOM, seqs.last().copied().unwrap_or(0));
        let seen = seqs
            .iter()
            .map(|s| (*s, Ident::Message(ALICE, format!("a{s}"))))
            .collect();
        st.seen.insert(ROOM, seen);
        st
    }

    fn alice_sent(acked: &[(&str, Option<u64>)]) -> ClientState {
        let mut st = ClientState::default();
        st.start.insert(ROOM, 0);
        st.cursors.insert(ROOM, 3);
        st.seen.insert(
            ROOM,
            (1..=3)
                .map(|s| (s, Ident::Message(ALICE, format!("a{s}"))))
                .collect(),
        );
        for (id, seq) in acked {
            st.composed.push(Composed {
                room: ROOM,
                id: (*id).into(),
                offline: false,
                big: false,
                reply_to: None,
                upload: None,
                seq: *seq,
                fresh_acks: u32::from(seq.is_some()),
                refused: None,
            });
        }
        st
    }

    fn run(bob: &ClientState, alice: &ClientState, canonical: &Canonical) -> Findings {
        let obs = [
            ClientObs {
                name: "bob",
                user: BOB,
                state: bob,
            },
            ClientObs {
                name: "alice",
                user: ALICE,
                state: alice,
            },
        ];
        check(canonical, &obs, None, &FileObs::default()).0
    }

    fn all_acked() -> ClientState {
        alice_sent(&[("a1", Some(1)), ("a2", Some(2)), ("a3", Some(3))])
    }

    #[test]
    fn a_complete_history_is_clean() {
        let f = run(&bob_saw(&[1, 2, 3]), &all_acked(), &canonical());
        assert!(f.is_clean(), "{:?}", f.lines());
    }

    #[test]
    fn a_missing_event_is_lost() {
        let mut bob = bob_saw(&[1, 3]);
        bob.violations
            .push("room 7: seq 3 arrived after 1 without a gap frame".into());
        let f = run(&bob, &all_acked(), &canonical());
        assert_eq!(f.lost.len(), 1, "{:?}", f.lines());
        assert!(f.lost[0].contains("never received seqs 2"));
        assert_eq!(f.reordered.len(), 1);
    }

    #[test]
    fn a_client_behind_the_server_is_lost() {
        let f = run(&bob_saw(&[1, 2]), &all_acked(), &canonical());
        assert_eq!(f.lost.len(), 1, "{:?}", f.lines());
        assert!(f.lost[0].contains("ends at seq 2"));
    }

    #[test]
    fn an_acked_message_missing_from_history_is_lost() {
        let alice = alice_sent(&[
            ("a1", Some(1)),
            ("a2", Some(2)),
            ("a3", Some(3)),
            ("a4", Some(4)),
        ]);
        let f = run(&bob_saw(&[1, 2, 3]), &alice, &canonical());
        assert!(
            f.lost.iter().any(|l| l.contains("a4 acked")),
            "{:?}",
            f.lines()
        );
    }

    #[test]
    fn duplicates_are_found_on_the_client_and_on_the_server() {
        let mut bob = bob_saw(&[1, 2, 3]);
        bob.seen
            .get_mut(&ROOM)
            .unwrap()
            .push((2, Ident::Message(ALICE, "a2".into())));
        let mut twice = canonical();
        twice.get_mut(&ROOM).unwrap().push(message(4, ALICE, "a3"));
        let f = run(&bob, &all_acked(), &twice);
        assert!(f
            .duplicated
            .iter()
            .any(|l| l.contains("seq 2 received twice")));
        assert!(f.duplicated.iter().any(|l| l.contains("stored twice")));
    }

    #[test]
    fn a_reused_seq_is_reordered() {
        let mut bob = bob_saw(&[1, 2, 3]);
        bob.seen.get_mut(&ROOM).unwrap()[1].1 = Ident::Message(BOB, "other".into());
        let f = run(&bob, &all_acked(), &canonical());
        assert_eq!(f.reordered.len(), 1, "{:?}", f.lines());
    }

    #[test]
    fn an_outbox_message_never_delivered_is_reported() {
        let mut alice = all_acked();
        alice.composed.push(Composed {
            room: ROOM,
            id: "offline-1".into(),
            offline: true,
            big: false,
            reply_to: None,
            upload: None,
            seq: None,
            fresh_acks: 0,
            refused: None,
        });
        let f = run(&bob_saw(&[1, 2, 3]), &alice, &canonical());
        assert_eq!(f.outbox.len(), 1, "{:?}", f.lines());
        assert!(f.outbox[0].contains("composed offline"));
    }

    /// The message fields of `e`, to change them.
    fn fields(
        e: &mut RoomEvent,
    ) -> (
        &mut Vec<Reaction>,
        &mut Option<u64>,
        &mut Vec<protocol::Attachment>,
    ) {
        match &mut e.event {
            EventBody::Message {
                reactions,
                reply_to,
                attachments,
                ..
            } => (reactions, reply_to, attachments),
            _ => unreachable!("a message"),
        }
    }

    fn react(emoji: &str, add: bool, confirmed: bool) -> crate::client::Change {
        crate::client::Change {
            room: ROOM,
            target: 1,
            op: Op::React {
                emoji: emoji.into(),
                add,
            },
            reference: "r1".into(),
            twice: false,
            confirmed,
            refused: None,
        }
    }

    #[test]
    fn a_confirmed_reaction_missing_from_history_is_lost() {
        let mut alice = all_acked();
        alice.changes.push(react("👍", true, true));
        let f = run(&bob_saw(&[1, 2, 3]), &alice, &canonical());
        assert_eq!(f.lost.len(), 1, "{:?}", f.lines());
        assert!(f.lost[0].contains("lacks it"));
        // In history it is clean; a later removal that was confirmed wants it gone.
        let mut c = canonical();
        fields(&mut c.get_mut(&ROOM).unwrap()[0]).0.push(Reaction {
            emoji: "👍".into(),
            users: vec![ALICE],
        });
        assert!(run(&bob_saw(&[1, 2, 3]), &alice, &c).is_clean());
        alice.changes.push(react("👍", false, true));
        let f = run(&bob_saw(&[1, 2, 3]), &alice, &c);
        assert!(
            f.lost.iter().any(|l| l.contains("still has it")),
            "{:?}",
            f.lines()
        );
        // Unanswered at the end: an outbox failure.
        alice.changes.push(react("👍", true, false));
        assert_eq!(run(&bob_saw(&[1, 2, 3]), &alice, &c).outbox.len(), 1);
    }

    #[test]
    fn a_reaction_counted_twice_is_duplicated() {
        let mut c = canonical();
        fields(&mut c.get_mut(&ROOM).unwrap()[0]).0.push(Reaction {
            emoji: "👍".into(),
            users: vec![BOB, BOB],
        });
        let f = run(&bob_saw(&[1, 2, 3]), &all_acked(), &c);
        assert_eq!(f.duplicated.len(), 1, "{:?}", f.lines());
        assert!(f.duplicated[0].contains("counted twice"));
    }

    #[test]
    fn a_client_whose_view_differs_from_history_lost_an_event() {
        let mut bob = bob_saw(&[1, 2, 3]);
        for (seq, e) in canonical()[&ROOM].iter().enumerate() {
            let views = bob.views.entry(ROOM).or_default();
            crate::client::apply(views, seq as u64 + 1, e.event.clone());
        }
        assert!(run(&bob, &all_acked(), &canonical()).is_clean());
        // Bob missed the removal of alice's 🎉 on a1.
        crate::client::apply(
            bob.views.entry(ROOM).or_default(),
            4,
            EventBody::ReactionAdded {
                target: 1,
                user: ALICE,
                emoji: "🎉".into(),
            },
        );
        let f = run(&bob, &all_acked(), &canonical());
        assert_eq!(f.lost.len(), 1, "{:?}", f.lines());
        assert!(f.lost[0].contains("reactions"));
    }

    #[test]
    fn a_reply_stored_with_another_target_is_reordered() {
        let mut alice = all_acked();
        alice.composed[2].reply_to = Some((1, Ident::Message(ALICE, "a1".into())));
        let mut c = canonical();
        *fields(&mut c.get_mut(&ROOM).unwrap()[2]).1 = Some(1);
        assert!(run(&bob_saw(&[1, 2, 3]), &alice, &c).is_clean());
        *fields(&mut c.get_mut(&ROOM).unwrap()[2]).1 = Some(2);
        let f = run(&bob_saw(&[1, 2, 3]), &alice, &c);
        assert_eq!(f.reordered.len(), 1, "{:?}", f.lines());
        // Answering what the client held at seq 1, when history holds another message there.
        alice.composed[2].reply_to = Some((1, Ident::Message(BOB, "b1".into())));
        *fields(&mut c.get_mut(&ROOM).unwrap()[2]).1 = Some(1);
        let f = run(&bob_saw(&[1, 2, 3]), &alice, &c);
        assert!(
            f.reordered.iter().any(|l| l.contains("answered")),
            "{:?}",
            f.lines()
        );
    }

    #[test]
    fn a_file_missing_or_different_on_a_node_is_lost_or_corrupted() {
        let mut c = canonical();
        let att = protocol::Attachment {
            id: "0123456789abcdef0123456789abcdef".into(),
            name: "f.bin".into(),
            size: 3,
            content_type: "application/octet-stream".into(),
            width: None,
            height: None,
            thumbnail: false,
        };
        fields(&mut c.get_mut(&ROOM).unwrap()[0])
            .2
            .push(att.clone());
        let bytes = |fingerprint| Fetched::Bytes {
            len: 3,
            fingerprint,
        };
        let check_with = |fetched: Vec<(usize, Fetched)>| {
            let files = FileObs {
                fetched: [(att.id.clone(), fetched)].into_iter().collect(),
                ..FileObs::default()
            };
            let (bob, alice) = (bob_saw(&[1, 2, 3]), all_acked());
            let obs = [
                ClientObs {
                    name: "bob",
                    user: BOB,
                    state: &bob,
                },
                ClientObs {
                    name: "alice",
                    user: ALICE,
                    state: &alice,
                },
            ];
            check(&c, &obs, None, &files).0
        };
        assert!(check_with(vec![(0, bytes(7)), (1, bytes(7))]).is_clean());
        let f = check_with(vec![(0, bytes(7)), (1, bytes(8))]);
        assert_eq!(f.corrupted.len(), 1, "{:?}", f.lines());
        let f = check_with(vec![(0, bytes(7)), (1, Fetched::Status(404))]);
        assert_eq!(f.lost.len(), 1, "{:?}", f.lines());
        assert!(f.lost[0].contains("without its file"));
    }

    /// The store lost seq 3 and raised the room past it: history holds 1, 2 and 4. Bob
    /// received 1, 2 (3 when `held`) and 4.
    fn after_loss(held: bool, told: bool) -> (Canonical, ClientState) {
        let mut c = canonical();
        if let Some(evs) = c.get_mut(&ROOM) {
            evs.truncate(2);
            evs.push(message(4, ALICE, "a4"));
        }
        let seqs: Vec<u64> = if held {
            vec![1, 2, 3, 4]
        } else {
            vec![1, 2, 4]
        };
        let mut bob = bob_saw(&seqs);
        if told {
            bob.closes.push(protocol::close::STORE_RESET);
        }
        (c, bob)
    }

    /// Alice sent a1..a4; `a3` says whether a3 was acked (and received back).
    fn alice_after_loss(a3: bool) -> ClientState {
        let mut acked = vec![("a1", Some(1)), ("a2", Some(2)), ("a4", Some(4))];
        if a3 {
            acked.insert(2, ("a3", Some(3)));
        }
        let mut alice = alice_sent(&acked);
        let seqs: Vec<u64> = if a3 { vec![1, 2, 3, 4] } else { vec![1, 2, 4] };
        alice.seen.insert(
            ROOM,
            seqs.iter()
                .map(|s| (*s, Ident::Message(ALICE, format!("a{s}"))))
                .collect(),
        );
        alice.cursors.insert(ROOM, 4);
        alice
    }

    fn judge(c: &Canonical, bob: &ClientState, alice: &ClientState) -> (Findings, StoreLoss) {
        let obs = [
            ClientObs {
                name: "bob",
                user: BOB,
                state: bob,
            },
            ClientObs {
                name: "alice",
                user: ALICE,
                state: alice,
            },
        ];
        let mut f = check(c, &obs, None, &FileObs::default()).0;
        let loss = judge_store_loss(c, &obs, &mut f);
        (f, loss)
    }

    #[test]
    fn only_clients_that_held_a_lost_write_must_be_told() {
        // Bob had received seq 3, which the store lost, and got no 4010 and no gap: untold.
        // Alice's a3 was acked and is gone: she held it too, and was not told either.
        let (c, bob) = after_loss(true, false);
        let (f, loss) = judge(&c, &bob, &alice_after_loss(true));
        assert!(f.is_clean(), "the loss itself is allowed: {:?}", f.lines());
        assert_eq!(
            (loss.affected, loss.untold.len(), loss.acked_lost),
            (2, 2, 1)
        );
        assert!(
            loss.untold[0].contains("bob: received room 7 seq 3, lost since"),
            "{loss:?}"
        );
        // Bob told with 4010; alice's a3 never existed: one held it, and was told.
        let (c, bob) = after_loss(true, true);
        let (_, loss) = judge(&c, &bob, &alice_after_loss(false));
        assert_eq!((loss.affected, loss.untold.len()), (1, 0), "{loss:?}");
        // A loss nobody had seen: nobody to tell, nobody counted.
        let (c, bob) = after_loss(false, false);
        let (f, loss) = judge(&c, &bob, &alice_after_loss(false));
        assert!(f.is_clean(), "{:?}", f.lines());
        assert_eq!(loss, StoreLoss::default());
    }

    #[test]
    fn a_reused_seq_still_fails_a_run_that_lost_writes() {
        let (mut c, bob) = after_loss(true, true);
        if let Some(evs) = c.get_mut(&ROOM) {
            evs.insert(2, message(3, BOB, "b1"));
        }
        let (f, loss) = judge(&c, &bob, &alice_after_loss(true));
        assert!(!f.reordered.is_empty(), "{:?}", f.lines());
        assert_eq!(loss.affected, 2);
    }

    const DESK: UserId = UserId(3);

    /// The desktop app (user 3) joined at seq 3 and wrote `composed`; its cache holds
    /// history as it is.
    fn desktop(c: &Canonical, composed: Vec<DesktopComposed>) -> DesktopObs {
        let cached = c[&ROOM]
            .iter()
            .filter_map(|e| match &e.event {
                EventBody::Message {
                    id,
                    sender,
                    body,
                    reactions,
                    deleted,
                    reply_to,
                    attachments,
                    ..
                } => Some(MessageView {
                    room: ROOM,
                    seq: Some(e.seq),
                    client_id: id.clone(),
                    sender: *sender,
                    sender_name: String::new(),
                    body: body.clone(),
                    ts: 0,
                    edited: false,
                    deleted: *deleted,
                    status: protocol::ipc::MessageStatus::Sent,
                    reply_to: *reply_to,
                    quote: None,
                    reactions: reactions.clone(),
                    mentions: Vec::new(),
                    mention_room: false,
                    attachments: attachments.clone(),
                    uploads: Vec::new(),
                }),
                _ => None,
            })
            .collect();
        let last = c[&ROOM].last().map(|e| e.seq);
        DesktopObs {
            name: "desk".into(),
            user: DESK,
            composed,
            start: BTreeMap::from([(ROOM, 3)]),
            rooms: BTreeMap::from([(ROOM, (last, None, cached))]),
            outbox_pending: 0,
            failed: BTreeMap::new(),
            reactions: Vec::new(),
            reactions_pending: 0,
        }
    }

    fn desk_wrote(id: &str, reply_to: Option<u64>) -> DesktopComposed {
        DesktopComposed {
            room: ROOM,
            client_id: id.into(),
            offline: false,
            reply_to,
            file: None,
        }
    }

    fn check_desk(c: &Canonical, d: &DesktopObs) -> Findings {
        let mut bob = bob_saw(&(1..=c[&ROOM].len() as u64).collect::<Vec<_>>());
        let mut alice = all_acked();
        alice.cursors.insert(ROOM, c[&ROOM].len() as u64);
        alice.seen.insert(
            ROOM,
            c[&ROOM]
                .iter()
                .map(|e| (e.seq, Ident::of(&e.event)))
                .collect(),
        );
        bob.seen.insert(ROOM, alice.seen[&ROOM].clone());
        let obs = [
            ClientObs {
                name: "bob",
                user: BOB,
                state: &bob,
            },
            ClientObs {
                name: "alice",
                user: ALICE,
                state: &alice,
            },
        ];
        check(c, &obs, Some(d), &FileObs::default()).0
    }

    #[test]
    fn the_desktop_apps_replies_and_reactions_are_judged() {
        // The app answered a3 with d1 and reacted to it with a thumb.
        let mut c = canonical();
        let mut reply = message(4, DESK, "d1");
        if let EventBody::Message { reply_to, .. } = &mut reply.event {
            *reply_to = Some(3);
        }
        if let Some(evs) = c.get_mut(&ROOM) {
            evs.push(reply);
        }
        let thumb = DesktopReaction {
            room: ROOM,
            seq: 3,
            emoji: "👍".into(),
        };
        let with_thumb = |c: &mut Canonical| {
            if let Some(EventBody::Message { reactions, .. }) =
                c.get_mut(&ROOM).map(|evs| &mut evs[2].event)
            {
                reactions.push(Reaction {
                    emoji: "👍".into(),
                    users: vec![DESK],
                });
            }
        };
        let mut ok = c.clone();
        with_thumb(&mut ok);
        let mut d = desktop(&ok, vec![desk_wrote("d1", Some(3))]);
        d.reactions.push(thumb.clone());
        let f = check_desk(&ok, &d);
        assert!(f.is_clean(), "{:?}", f.lines());
        // Stored answering another message: reordered.
        let d = desktop(&ok, vec![desk_wrote("d1", Some(2))]);
        let f = check_desk(&ok, &d);
        assert!(
            f.reordered.iter().any(|l| l.contains("reply d1 to seq 2")),
            "{:?}",
            f.lines()
        );
        // The reaction never reached history: lost (the cache agreeing does not help).
        let mut d = desktop(&c, vec![desk_wrote("d1", Some(3))]);
        d.reactions.push(thumb);
        let f = check_desk(&c, &d);
        assert!(
            f.lost.iter().any(|l| l.contains("reaction 👍")),
            "{:?}",
            f.lines()
        );
        // A reply refused because its original is gone (lost: message_not_found; deleted:
        // message_deleted) is told (failed), not lost; any other refusal is reported.
        let mut c = canonical();
        if let Some(EventBody::Message { deleted, .. }) =
            c.get_mut(&ROOM).map(|evs| &mut evs[1].event)
        {
            *deleted = true;
        }
        let mut d = desktop(
            &c,
            vec![
                desk_wrote("d2", Some(9)),
                desk_wrote("d3", None),
                desk_wrote("d4", Some(2)),
                desk_wrote("d5", Some(1)),
            ],
        );
        d.failed.insert("d2".into(), "message_not_found".into());
        d.failed.insert("d3".into(), "invalid_message".into());
        d.failed.insert("d4".into(), "message_deleted".into());
        d.failed.insert("d5".into(), "message_deleted".into());
        let f = check_desk(&c, &d);
        let reported: Vec<&String> = f.outbox.iter().collect();
        assert_eq!(reported.len(), 2, "{:?}", f.lines());
        assert!(reported[0].contains("d3") && reported[0].contains("failed: invalid_message"));
        assert!(reported[1].contains("d5") && reported[1].contains("failed: message_deleted"));
    }

    #[test]
    fn a_wipe_nobody_was_told_about_is_a_silent_loss() {
        let told = WipeObs {
            name: "a",
            signal: Some("close 4010".into()),
            state: None,
        };
        let silent = WipeObs {
            name: "b",
            signal: None,
            state: None,
        };
        assert!(check_wipe(&[told]).0.is_clean());
        let told = WipeObs {
            name: "a",
            signal: Some("close 4010".into()),
            state: None,
        };
        let (f, _) = check_wipe(&[told, silent]);
        assert_eq!(f.lost.len(), 1);
    }
}
