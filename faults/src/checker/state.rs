//! What a client shows at the end (reactions, edits, deletions, replies) against the canonical history.

use super::*;

/// The event at `seq` of `room` in history (which has holes after the store lost writes).
pub fn event_at(canonical: &Canonical, room: RoomId, seq: u64) -> Option<&RoomEvent> {
    let events = canonical.get(&room)?;
    events
        .binary_search_by_key(&seq, |e| e.seq)
        .ok()
        .map(|i| &events[i])
}

/// The message at `seq` of `room` in history.
pub(super) fn message_at(canonical: &Canonical, room: RoomId, seq: u64) -> Option<&EventBody> {
    event_at(canonical, room, seq)
        .map(|e| &e.event)
        .filter(|e| matches!(e, EventBody::Message { .. }))
}

/// Who reacted with what, order aside.
pub(super) fn reaction_set(reactions: &[Reaction]) -> BTreeMap<&str, BTreeSet<UserId>> {
    reactions
        .iter()
        .map(|r| (r.emoji.as_str(), r.users.iter().copied().collect()))
        .collect()
}

/// A user listed twice under one emoji, or one emoji listed twice: a reaction counted twice.
pub(super) fn counted_twice(reactions: &[Reaction]) -> Option<String> {
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
pub(super) fn check_changes(
    canonical: &Canonical,
    c: &ClientObs<'_>,
    f: &mut Findings,
    vol: &mut Volume,
) {
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
pub(super) fn check_replies(
    canonical: &Canonical,
    c: &ClientObs<'_>,
    f: &mut Findings,
    vol: &mut Volume,
) {
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
