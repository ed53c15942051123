//! The desktop app's cache and outbox against the canonical history.

use super::state::{message_at, reaction_set};
use super::wipe::short_list;
use super::*;

pub(super) fn check_desktop(
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
pub(super) fn check_desktop_extras(
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
