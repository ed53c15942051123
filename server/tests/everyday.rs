//! Everyday chat (issue 13): replies, reactions and mentions, on both stores and across two
//! nodes, and clients that do not know the new fields still working.

mod common;

use common::*;
use protocol::event::EventBody;
use protocol::ws::Cursor;
use protocol::{ClientFrame, ErrorCode, RoomEvent, RoomId, ServerFrame};
use reqwest::Method;
use serde_json::json;
use std::sync::Arc;

common::backend_tests!(
    cluster;
    replies_live_in_history_and_on_resume,
    replies_are_validated,
    reactions_live_idempotent_in_history_and_on_resume,
    reactions_are_validated_and_bounded,
    old_clients_keep_working,
    mentions_count_on_every_device_until_read,
    mentions_keep_members_only_and_room_mentions_are_for_owners,
);

/// Sends `body` as a reply to `reply_to` over the socket; the ack or the error for it.
async fn reply(ws: &mut Ws, room: RoomId, reply_to: u64, body: &str) -> Result<u64, WsError> {
    let id = unique_id();
    ws.send_frame(&ClientFrame::Send {
        room,
        id: id.clone(),
        body: body.into(),
        reply_to: Some(reply_to),
        mentions: vec![],
        mention_room: false,
        attachments: Vec::new(),
    })
    .await;
    ws.await_ack(room, &id).await.map(|ack| ack.seq)
}

/// Sends a `react` frame with a fresh ref; the `ok` or the error for it.
async fn react(
    ws: &mut Ws,
    room: RoomId,
    seq: u64,
    emoji: &str,
    remove: bool,
) -> Result<(), WsError> {
    let reference = unique_id();
    ws.send_frame(&ClientFrame::React {
        room,
        seq,
        emoji: emoji.into(),
        remove,
        reference: Some(reference.clone()),
    })
    .await;
    let frame = ws
        .take("the answer to react", |f| match f {
            ServerFrame::Ok { reference: r } => *r == reference,
            ServerFrame::Error {
                reference: Some(r), ..
            } => *r == reference,
            _ => false,
        })
        .await;
    match WsError::from_frame(&frame) {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// The reactions of message `seq` in `events`, as (emoji, users) pairs.
#[track_caller]
fn reactions_of(events: &[RoomEvent], seq: u64) -> Vec<(String, Vec<u64>)> {
    match &at(events, seq).event {
        EventBody::Message { reactions, .. } => reactions
            .iter()
            .map(|r| (r.emoji.clone(), r.users.iter().map(|u| u.0).collect()))
            .collect(),
        other => panic!("expected a message at seq {seq}, got {other:?}"),
    }
}

/// What a client does with a replayed or live stream: start from each message's stored
/// reactions and apply the reaction events in order. Returns the reactions of `seq`.
fn apply_reactions(events: &[RoomEvent], seq: u64) -> Vec<(String, Vec<u64>)> {
    let mut state = reactions_of(events, seq);
    for ev in events {
        match &ev.event {
            EventBody::ReactionAdded {
                target,
                user,
                emoji,
            } if *target == seq => match state.iter_mut().find(|(e, _)| e == emoji) {
                Some((_, users)) if users.contains(&user.0) => {}
                Some((_, users)) => users.push(user.0),
                None => state.push((emoji.clone(), vec![user.0])),
            },
            EventBody::ReactionRemoved {
                target,
                user,
                emoji,
            } if *target == seq => {
                if let Some((_, users)) = state.iter_mut().find(|(e, _)| e == emoji) {
                    users.retain(|u| *u != user.0);
                }
                state.retain(|(_, users)| !users.is_empty());
            }
            _ => {}
        }
    }
    state
}

/// The percent-encoded path of a reaction.
/// A REST message with a fresh id replying to `original`.
fn reply_message(original: u64) -> protocol::rest::SendMessage {
    protocol::rest::SendMessage {
        id: unique_id(),
        body: "x".into(),
        reply_to: Some(original),
        mentions: Vec::new(),
        mention_room: false,
        attachments: Vec::new(),
    }
}

fn reaction_path(room: RoomId, seq: u64, emoji: &str) -> String {
    let encoded: String = emoji.bytes().map(|b| format!("%{b:02X}")).collect();
    format!("/api/v1/rooms/{room}/messages/{seq}/reactions/{encoded}")
}

/// Sends `body` mentioning `mentions` (and `@room` if `room_mention`); the ack's seq or the
/// error.
async fn mention(
    ws: &mut Ws,
    room: RoomId,
    body: &str,
    mentions: &[protocol::UserId],
    mention_room: bool,
) -> Result<u64, WsError> {
    let id = unique_id();
    ws.send_frame(&ClientFrame::Send {
        room,
        id: id.clone(),
        body: body.into(),
        reply_to: None,
        mentions: mentions.to_vec(),
        mention_room,
        attachments: Vec::new(),
    })
    .await;
    ws.await_ack(room, &id).await.map(|ack| ack.seq)
}

/// The mentions of a message event.
#[track_caller]
fn mentions_of(ev: &RoomEvent) -> (Vec<protocol::UserId>, bool) {
    match &ev.event {
        EventBody::Message {
            mentions,
            mention_room,
            ..
        } => (mentions.clone(), *mention_room),
        other => panic!("expected a message at seq {}, got {other:?}", ev.seq),
    }
}

/// `(unread, mentions)` of `room` in `user`'s room list.
async fn counts(api: &Api, room: RoomId) -> (u64, u64) {
    let r = api.my_room(room).await;
    (r.unread, r.mentions)
}

/// The `reply_to` of a message event.
#[track_caller]
fn reply_to_of(ev: &RoomEvent) -> Option<u64> {
    match &ev.event {
        EventBody::Message { reply_to, .. } => *reply_to,
        other => panic!("expected a message at seq {}, got {other:?}", ev.seq),
    }
}

/// The event at `seq` among `events`.
#[track_caller]
fn at(events: &[RoomEvent], seq: u64) -> &RoomEvent {
    events
        .iter()
        .find(|e| e.seq == seq)
        .unwrap_or_else(|| panic!("no event with seq {seq} in {events:#?}"))
}

/// Bob answers Alice's question (socket and REST); everyone sees the reference live, in history
/// and on resume; when Alice deletes the question, the replies keep pointing at its seq and the
/// question shows as deleted, which is how clients know to show "deleted message".
async fn replies_live_in_history_and_on_resume(backend: Backend) {
    let server = TestServer::start(backend).await;
    let alice = server.user("alice").await;
    let bob = server.user("bob").await;
    let room = shared_room(&alice, &[&bob]).await.id;
    let mut a1 = server.ws(&alice).await;
    let mut b1 = server.ws(&bob).await;
    let before = last_seq(&alice.api, room).await;

    let question = a1.say(room, "who has the keys?").await.seq;
    let answer = reply(&mut b1, room, question, "I do")
        .await
        .expect("reply over the socket");
    for ws in [&mut a1, &mut b1] {
        let events = ws.events_until(room, answer).await;
        assert_eq!(reply_to_of(at(&events, question)), None);
        assert_eq!(reply_to_of(at(&events, answer)), Some(question));
        assert_eq!(message_of(at(&events, answer)).1, "I do");
    }
    // Over REST, the same field.
    let (status, text) = bob
        .api
        .raw(
            Method::POST,
            &format!("/api/v1/rooms/{room}/messages"),
            Some(RawBody::Json(
                json!({"id": unique_id(), "body": "me too", "reply_to": question}),
            )),
        )
        .await;
    assert_eq!(status, 200, "{text}");
    let second: protocol::rest::SendAck = serde_json::from_str(&text).unwrap();
    let ev = a1.expect_event().await;
    assert_eq!((ev.seq, reply_to_of(&ev)), (second.seq, Some(question)));

    // The question is deleted: the replies keep their reference, the question is marked.
    alice.api.delete_message(room, question).await.unwrap();
    let deleted = a1.expect_event().await;
    assert_eq!(
        deleted.event,
        EventBody::Delete {
            target: question,
            sender: alice.id
        }
    );
    let history = bob.api.all_events(room).await.unwrap();
    assert!(
        matches!(&at(&history, question).event, EventBody::Message { deleted: true, body, .. } if body.is_empty()),
        "{history:#?}"
    );
    assert_eq!(reply_to_of(at(&history, answer)), Some(question));
    assert_eq!(reply_to_of(at(&history, second.seq)), Some(question));
    // A socket history page says the same.
    b1.send_frame(&ClientFrame::History {
        room,
        before: None,
        after: Some(before),
        limit: Some(10),
        reference: Some("h".into()),
    })
    .await;
    let page = b1
        .take("history h", |f| matches!(f, ServerFrame::History { .. }))
        .await;
    let ServerFrame::History { events, .. } = page else {
        unreachable!()
    };
    assert_eq!(reply_to_of(at(&events, answer)), Some(question));

    // A device that was away resumes from before the question: the replay carries the replies
    // with their reference, the question already deleted, then the delete.
    let (_b2, replay) = server
        .ws_resume(&bob, vec![Cursor { room, seq: before }])
        .await;
    let replayed: Vec<RoomEvent> = replay
        .into_iter()
        .filter_map(|f| match f {
            ServerFrame::Event(e) => Some(e),
            _ => None,
        })
        .collect();
    assert_consecutive(&replayed, before + 1);
    assert!(matches!(
        &at(&replayed, question).event,
        EventBody::Message { deleted: true, .. }
    ));
    assert_eq!(reply_to_of(at(&replayed, answer)), Some(question));
    assert_eq!(reply_to_of(at(&replayed, second.seq)), Some(question));
    assert!(matches!(
        replayed.last().map(|e| &e.event),
        Some(EventBody::Delete { target, .. }) if *target == question
    ));
}

/// A reply must name a kept, not deleted message of the same room: anything else is refused
/// with a typed error and nothing is appended. A resend of an accepted reply stays a duplicate
/// even after its original is gone.
async fn replies_are_validated(backend: Backend) {
    let server = TestServer::start(backend).await;
    let alice = server.user("alice").await;
    let bob = server.user("bob").await;
    let busy = shared_room(&alice, &[&bob]).await.id;
    let quiet = shared_room(&alice, &[&bob]).await.id;
    let mut b1 = server.ws(&bob).await;
    for i in 0..3 {
        alice.api.say(busy, &format!("filler {i}")).await;
    }
    let original = alice.api.say(busy, "original").await.seq;
    let id = unique_id();
    b1.send_frame(&ClientFrame::Send {
        room: busy,
        id: id.clone(),
        body: "answer".into(),
        reply_to: Some(original),
        mentions: vec![],
        mention_room: false,
        attachments: Vec::new(),
    })
    .await;
    let accepted = b1.await_ack(busy, &id).await.expect("reply accepted");
    let quiet_last = last_seq(&alice.api, quiet).await;
    assert!(
        quiet_last < original,
        "the quiet room has no seq {original}"
    );

    // Not a message of this room: a seq of another room, a membership event, nothing, zero.
    for target in [original, 1, 9_999, 0] {
        let err = reply(&mut b1, quiet, target, "across rooms")
            .await
            .unwrap_err();
        assert_eq!(err.code, ErrorCode::MessageNotFound, "{target}: {err:?}");
        assert_eq!(err.room, Some(quiet));
    }
    let err = bob
        .api
        .send_message(quiet, &reply_message(original))
        .await
        .unwrap_err();
    assert_eq!(
        (err.status(), err.code()),
        (Some(404), Some(ErrorCode::MessageNotFound))
    );
    assert_eq!(
        last_seq(&alice.api, quiet).await,
        quiet_last,
        "nothing appended"
    );

    // The original is deleted: new replies are refused, the accepted one resends as a duplicate.
    alice.api.delete_message(busy, original).await.unwrap();
    let err = reply(&mut b1, busy, original, "too late")
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::MessageDeleted, "{err:?}");
    let err = bob
        .api
        .send_message(busy, &reply_message(original))
        .await
        .unwrap_err();
    assert_eq!(
        (err.status(), err.code()),
        (Some(409), Some(ErrorCode::MessageDeleted))
    );
    b1.send_frame(&ClientFrame::Send {
        room: busy,
        id: id.clone(),
        body: "answer".into(),
        reply_to: Some(original),
        mentions: vec![],
        mention_room: false,
        attachments: Vec::new(),
    })
    .await;
    let again = b1.await_ack(busy, &id).await.expect("duplicate ack");
    assert!(again.duplicate);
    assert_eq!(again.seq, accepted.seq);
    // A malformed reference is a malformed frame.
    b1.send_text(&format!(
        r#"{{"type":"send","room":{busy},"id":"{}","body":"x","reply_to":"one"}}"#,
        unique_id()
    ))
    .await;
    b1.expect_error_code(ErrorCode::MalformedFrame).await;
}

/// Two nodes on one Redis: a reply made on one node reaches the other with its reference, and a
/// reply to a message deleted through the other node is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replies_cross_nodes() {
    let redis = Arc::new(RedisServer::start().await);
    let n1 = TestServer::start_on_redis(&redis, |_| {}).await;
    let n2 = TestServer::start_on_redis(&redis, |_| {}).await;
    let alice = n1.user("alice").await;
    let bob = n2.user("bob").await;
    let room = shared_room(&alice, &[&bob]).await.id;
    let mut a1 = n1.ws(&alice).await;
    let mut b2 = n2.ws(&bob).await;
    let question = a1.say(room, "on node 1").await.seq;
    let answer = reply(&mut b2, room, question, "on node 2").await.unwrap();
    let events = a1.events_until(room, answer).await;
    assert_eq!(reply_to_of(at(&events, answer)), Some(question));
    alice.api.delete_message(room, question).await.unwrap();
    let err = reply(&mut b2, room, question, "late").await.unwrap_err();
    assert_eq!(err.code, ErrorCode::MessageDeleted);
}

/// Reactions reach every device live, count once however many devices add them, and an away
/// device sees the final state both in history pages and on resume.
async fn reactions_live_idempotent_in_history_and_on_resume(backend: Backend) {
    let server = TestServer::start(backend).await;
    let alice = server.user("alice").await;
    let bob = server.user("bob").await;
    let alice_phone = server.login(&alice, "phone").await;
    let room = shared_room(&alice, &[&bob]).await.id;
    let mut a1 = server.ws(&alice).await;
    let mut a2 = server.ws(&alice_phone).await;
    let mut b1 = server.ws(&bob).await;
    let before = last_seq(&alice.api, room).await;
    let msg = a1.say(room, "lunch at noon?").await.seq;

    react(&mut b1, room, msg, "👍", false)
        .await
        .expect("bob reacts");
    // Alice adds the same reaction from both devices at once: it counts once.
    let (x, y) = tokio::join!(
        react(&mut a1, room, msg, "👍", false),
        react(&mut a2, room, msg, "👍", false)
    );
    x.expect("laptop");
    y.expect("phone");
    // Over REST, a heart without its variation selector: the same reaction as "❤️".
    let (status, text) = alice
        .api
        .raw(Method::PUT, &reaction_path(room, msg, "\u{2764}"), None)
        .await;
    assert_eq!(status, 204, "{text}");
    // Bob takes his thumb back twice (the second changes nothing), then adds a party.
    react(&mut b1, room, msg, "👍", true).await.expect("remove");
    react(&mut b1, room, msg, "👍", true)
        .await
        .expect("remove again");
    let (status, text) = bob
        .api
        .raw(Method::DELETE, &reaction_path(room, msg, "👍"), None)
        .await;
    assert_eq!(status, 204, "{text}");
    react(&mut b1, room, msg, "🎉", false).await.expect("party");

    let last = last_seq(&alice.api, room).await;
    assert_eq!(last, msg + 5, "five changes, five events");
    let expected = vec![
        ("👍".to_string(), vec![alice.id.0]),
        ("❤️".to_string(), vec![alice.id.0]),
        ("🎉".to_string(), vec![bob.id.0]),
    ];
    for ws in [&mut a1, &mut a2, &mut b1] {
        let events = ws.events_until(room, last).await;
        let kinds: Vec<String> = events
            .iter()
            .filter(|e| e.seq > msg)
            .map(|e| match &e.event {
                EventBody::ReactionAdded { user, emoji, .. } => format!("+{emoji} {user}"),
                EventBody::ReactionRemoved { user, emoji, .. } => format!("-{emoji} {user}"),
                other => format!("{other:?}"),
            })
            .collect();
        assert_eq!(
            kinds,
            [
                format!("+👍 {}", bob.id),
                format!("+👍 {}", alice.id),
                format!("+❤️ {}", alice.id),
                format!("-👍 {}", bob.id),
                format!("+🎉 {}", bob.id),
            ],
            "[{}]",
            ws.label
        );
        assert_eq!(apply_reactions(&events, msg), expected, "[{}]", ws.label);
        ws.assert_no_more_events().await;
    }

    // History pages carry the final state of each message.
    let history = bob.api.all_events(room).await.unwrap();
    assert_eq!(reactions_of(&history, msg), expected);
    // An away device resuming from before the message: the replayed message already holds the
    // final state, and applying the replayed events on top of it keeps it.
    let (_b2, replay) = server
        .ws_resume(&bob, vec![Cursor { room, seq: before }])
        .await;
    let replayed: Vec<RoomEvent> = replay
        .into_iter()
        .filter_map(|f| match f {
            ServerFrame::Event(e) => Some(e),
            _ => None,
        })
        .collect();
    assert_consecutive(&replayed, before + 1);
    assert_eq!(reactions_of(&replayed, msg), expected);
    assert_eq!(apply_reactions(&replayed, msg), expected);
    // Deleting the message drops its reactions from history.
    alice.api.delete_message(room, msg).await.unwrap();
    let history = bob.api.all_events(room).await.unwrap();
    assert!(reactions_of(&history, msg).is_empty(), "{history:#?}");
}

/// Reactions need one real emoji, a kept and not deleted message of a room the user is in, and
/// stay within the per-message and per-user caps; refusals are typed and change nothing.
async fn reactions_are_validated_and_bounded(backend: Backend) {
    use protocol::limits::{MAX_REACTIONS_PER_MESSAGE, MAX_REACTIONS_PER_USER};
    let server = TestServer::start(backend).await;
    let alice = server.user("alice").await;
    let bob = server.user("bob").await;
    let carol = server.user("carol").await;
    let eve = server.user("eve").await;
    let room = shared_room(&alice, &[&bob, &carol]).await.id;
    let mut a1 = server.ws(&alice).await;
    let mut b1 = server.ws(&bob).await;
    let mut c1 = server.ws(&carol).await;
    let mut e1 = server.ws(&eve).await;
    let msg = alice.api.say(room, "react to me").await.seq;
    let start = last_seq(&alice.api, room).await;

    for bad in ["", "x", ":thumbsup:", "👍👍", "👍 ", "<script>", "\u{200D}"] {
        let err = react(&mut a1, room, msg, bad, false).await.unwrap_err();
        assert_eq!(err.code, ErrorCode::InvalidEmoji, "{bad:?}: {err:?}");
    }
    alice
        .api
        .react(room, msg, "ok", true)
        .await
        .expect_code(ErrorCode::InvalidEmoji);
    for target in [1, 9_999, 0] {
        let err = react(&mut a1, room, target, "👍", false).await.unwrap_err();
        assert_eq!(err.code, ErrorCode::MessageNotFound, "{target}");
    }
    // Not a member: the same answer as for every other room operation.
    let err = react(&mut e1, room, msg, "👍", false).await.unwrap_err();
    assert_eq!(err.code, ErrorCode::NotAMember);
    eve.api
        .react(room, msg, "👍", true)
        .await
        .expect_code(ErrorCode::NotAMember);
    assert_eq!(last_seq(&alice.api, room).await, start, "nothing appended");

    // Caps: per user, then per message.
    let faces: Vec<String> = "😀😁😂🤣😃😄😅😆😉😊😋😎😍😘🥰😗😙😚🙂🤗🤩🤔"
        .chars()
        .map(String::from)
        .collect();
    assert!(faces.len() > MAX_REACTIONS_PER_MESSAGE);
    for face in &faces[..MAX_REACTIONS_PER_USER] {
        react(&mut a1, room, msg, face, false).await.unwrap();
    }
    let err = react(&mut a1, room, msg, &faces[MAX_REACTIONS_PER_USER], false)
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::LimitReached, "{err:?}");
    // Adding one already there is still fine (changes nothing), and so is removing.
    react(&mut a1, room, msg, &faces[0], false).await.unwrap();
    for face in &faces[MAX_REACTIONS_PER_USER..MAX_REACTIONS_PER_MESSAGE] {
        react(&mut b1, room, msg, face, false).await.unwrap();
    }
    let err = react(&mut c1, room, msg, &faces[MAX_REACTIONS_PER_MESSAGE], false)
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::LimitReached, "{err:?}");
    // Carol may still join an emoji already there.
    react(&mut c1, room, msg, &faces[0], false).await.unwrap();
    let history = alice.api.all_events(room).await.unwrap();
    let reactions = reactions_of(&history, msg);
    assert_eq!(reactions.len(), MAX_REACTIONS_PER_MESSAGE);
    assert_eq!(
        reactions[0],
        (faces[0].clone(), vec![alice.id.0, carol.id.0])
    );

    // A deleted message takes no reaction.
    alice.api.delete_message(room, msg).await.unwrap();
    let err = react(&mut b1, room, msg, "👍", false).await.unwrap_err();
    assert_eq!(err.code, ErrorCode::MessageDeleted);
    let rest = e1.sync().await;
    assert!(
        rest.iter().all(|f| !matches!(f, ServerFrame::Event(_))),
        "eve got events of the room: {rest:?}"
    );
}

/// Two nodes: a reaction made on one node reaches the other; the same reaction added by one
/// user on both nodes at once counts once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reactions_cross_nodes() {
    let redis = Arc::new(RedisServer::start().await);
    let n1 = TestServer::start_on_redis(&redis, |_| {}).await;
    let n2 = TestServer::start_on_redis(&redis, |_| {}).await;
    let alice = n1.user("alice").await;
    let bob = n2.user("bob").await;
    let room = shared_room(&alice, &[&bob]).await.id;
    let mut a1 = n1.ws(&alice).await;
    let mut a2 = n2.ws(&alice).await;
    let mut b2 = n2.ws(&bob).await;
    let msg = a1.say(room, "vote").await.seq;
    react(&mut b2, room, msg, "👍", false).await.unwrap();
    let (x, y) = tokio::join!(
        react(&mut a1, room, msg, "👍", false),
        react(&mut a2, room, msg, "👍", false)
    );
    x.unwrap();
    y.unwrap();
    let last = last_seq(&alice.api, room).await;
    assert_eq!(last, msg + 2);
    let expected = vec![("👍".to_string(), vec![bob.id.0, alice.id.0])];
    for ws in [&mut a1, &mut a2, &mut b2] {
        let events = ws.events_until(room, last).await;
        assert_eq!(apply_reactions(&events, msg), expected, "[{}]", ws.label);
        ws.assert_no_more_events().await;
    }
    let history = alice.api.all_events(room).await.unwrap();
    assert_eq!(reactions_of(&history, msg), expected);
}

/// The event types of the protocol before issue 13, as a client built then has them: no
/// `reply_to`, no `reactions`, no reaction kinds, and no catch-all for unknown kinds.
mod v1 {
    use protocol::event::Role;
    use protocol::{RoomId, UserId};
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    pub struct RoomEvent {
        pub room: RoomId,
        pub seq: u64,
        pub event: EventBody,
    }

    #[derive(Debug, Deserialize)]
    #[serde(tag = "kind", rename_all = "snake_case")]
    #[allow(dead_code)]
    pub enum EventBody {
        Message {
            id: String,
            sender: UserId,
            sender_name: String,
            #[serde(default)]
            body: String,
            #[serde(default)]
            edited_ts: Option<i64>,
            #[serde(default)]
            deleted: bool,
        },
        Edit {
            target: u64,
            sender: UserId,
            body: String,
        },
        Delete {
            target: u64,
            sender: UserId,
        },
        MemberJoined {
            user: UserId,
            username: String,
            role: Role,
            #[serde(default)]
            by: Option<UserId>,
        },
        MemberLeft {
            user: UserId,
            #[serde(default)]
            by: Option<UserId>,
        },
        OwnerChanged {
            user: UserId,
        },
    }
}

/// A client of the old protocol: it sends the old frame shapes (no `reply_to`), reads frames
/// with the old types and, like the desktop client, skips a frame it cannot read but keeps its
/// seq. Replies and reacted messages reach it as plain messages, the old send shape works, and
/// nothing it understands is lost or reordered.
async fn old_clients_keep_working(backend: Backend) {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;
    let server = TestServer::start(backend).await;
    let alice = server.user("alice").await;
    let old = server.user("old").await;
    let room = shared_room(&alice, &[&old]).await.id;
    let mut a1 = server.ws(&alice).await;
    let (mut socket, _) = tokio::time::timeout(
        TIMEOUT,
        tokio_tungstenite::connect_async(server.ws_url.as_str()),
    )
    .await
    .expect("connect in time")
    .expect("connect");
    let text = |v: serde_json::Value| Message::text(v.to_string());
    socket
        .send(text(json!({"type": "hello", "token": old.token})))
        .await
        .unwrap();
    // Reads frames until `done` says so: old events by seq, unreadable event seqs, the rest.
    struct Seen {
        events: Vec<v1::RoomEvent>,
        skipped: Vec<u64>,
        frames: Vec<serde_json::Value>,
    }
    let mut seen = Seen {
        events: vec![],
        skipped: vec![],
        frames: vec![],
    };
    async fn read_until(
        socket: &mut tokio_tungstenite::WebSocketStream<
            tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
        >,
        seen: &mut Seen,
        done: impl Fn(&serde_json::Value) -> bool,
    ) {
        loop {
            let msg = tokio::time::timeout(TIMEOUT, socket.next())
                .await
                .expect("a frame in time")
                .expect("socket open")
                .expect("frame");
            let Message::Text(t) = msg else { continue };
            let value: serde_json::Value = serde_json::from_str(t.as_str()).unwrap();
            if value["type"] == "event" {
                match serde_json::from_value::<v1::RoomEvent>(value.clone()) {
                    Ok(ev) => seen.events.push(ev),
                    Err(_) => seen.skipped.push(value["seq"].as_u64().unwrap()),
                }
            }
            let stop = done(&value);
            seen.frames.push(value);
            if stop {
                return;
            }
        }
    }
    read_until(&mut socket, &mut seen, |v| v["type"] == "ready").await;
    assert_eq!(seen.frames[0]["type"], "welcome", "{:?}", seen.frames);

    // The old send shape.
    socket
        .send(text(
            json!({"type": "send", "room": room, "id": "old-1", "body": "hello from the past"}),
        ))
        .await
        .unwrap();
    read_until(&mut socket, &mut seen, |v| v["type"] == "ack").await;
    let mine = seen.frames.last().unwrap()["seq"].as_u64().unwrap();
    // New clients reply to it and react to it.
    let answer = reply(&mut a1, room, mine, "hello from the future")
        .await
        .unwrap();
    react(&mut a1, room, answer, "👍", false).await.unwrap();
    alice.api.edit(room, answer, "hello again").await.unwrap();
    let last = last_seq(&alice.api, room).await;
    read_until(&mut socket, &mut seen, |v| {
        v["type"] == "event" && v["seq"].as_u64() == Some(last)
    })
    .await;
    let seqs: Vec<u64> = seen.events.iter().map(|e| e.seq).collect();
    assert_eq!(seqs, [mine, answer, last], "in order, once");
    assert_eq!(
        seen.skipped,
        [answer + 1],
        "only the reaction is unreadable"
    );
    assert!(seen.events.iter().all(|e| e.room == room));
    assert!(
        matches!(&seen.events[1].event, v1::EventBody::Message { body, .. } if body == "hello from the future")
    );
    assert!(
        matches!(&seen.events[2].event, v1::EventBody::Edit { target, .. } if *target == answer)
    );

    // History, read one event at a time with the old types: the reply and the reacted message
    // are plain messages to it.
    let (status, page) = old
        .api
        .raw(
            Method::GET,
            &format!("/api/v1/rooms/{room}/events?after={}", mine - 1),
            None,
        )
        .await;
    assert_eq!(status, 200, "{page}");
    let page: serde_json::Value = serde_json::from_str(&page).unwrap();
    let readable: Vec<u64> = page["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| serde_json::from_value::<v1::RoomEvent>(e.clone()).ok())
        .map(|e| e.seq)
        .collect();
    assert_eq!(readable, [mine, answer, last]);
    // Its own old-shape REST send still works.
    let ack = old.api.send(room, "old-2", "still here").await.unwrap();
    assert_eq!(ack.seq, last + 1);
}

/// Bob has two devices. Alice mentions him: both devices get the mention in the event, his room
/// list counts it beside the unread count (REST and `welcome`), and reading on one device
/// clears it on both (the read marker syncs).
async fn mentions_count_on_every_device_until_read(backend: Backend) {
    let server = TestServer::start(backend).await;
    let alice = server.user("alice").await;
    let bob = server.user("bob").await;
    let bob_phone = server.login(&bob, "phone").await;
    let carol = server.user("carol").await;
    let room = shared_room(&alice, &[&bob, &carol]).await.id;
    let mut a1 = server.ws(&alice).await;
    let mut b1 = server.ws(&bob).await;
    let mut b2 = server.ws(&bob_phone).await;
    a1.say(room, "morning all").await;
    let ping = mention(&mut a1, room, "@bob can you look?", &[bob.id], false)
        .await
        .unwrap();
    let other = mention(&mut a1, room, "@carol and you", &[carol.id], false)
        .await
        .unwrap();
    for ws in [&mut b1, &mut b2] {
        let events = ws.events_until(room, other).await;
        assert_eq!(mentions_of(at(&events, ping)), (vec![bob.id], false));
        assert_eq!(mentions_of(at(&events, other)), (vec![carol.id], false));
    }
    assert_eq!(counts(&bob.api, room).await, (3, 1));
    assert_eq!(counts(&bob_phone.api, room).await, (3, 1));
    assert_eq!(counts(&carol.api, room).await, (3, 1));
    let (b3, _) = server.ws_resume(&bob_phone, vec![]).await;
    let listed = b3.welcome().rooms.iter().find(|r| r.id == room).unwrap();
    assert_eq!((listed.unread, listed.mentions), (3, 1), "welcome counts");
    // History keeps the mentions.
    let history = bob.api.all_events(room).await.unwrap();
    assert_eq!(mentions_of(at(&history, ping)).0, vec![bob.id]);

    // Bob reads on his laptop: his phone is told, and the count is gone everywhere.
    b1.send_frame(&ClientFrame::Read { room, seq: other }).await;
    let moved = |f: &ServerFrame| matches!(f, ServerFrame::ReadMarker { room: r, seq } if *r == room && *seq == other);
    b1.take("read marker on the laptop", moved).await;
    b2.take("read marker on the phone", moved).await;
    assert_eq!(counts(&bob.api, room).await, (0, 0));
    assert_eq!(counts(&bob_phone.api, room).await, (0, 0));
    // Carol's is hers: still there.
    assert_eq!(counts(&carol.api, room).await, (3, 1));
    // A deleted mention no longer counts.
    alice.api.delete_message(room, other).await.unwrap();
    assert_eq!(counts(&carol.api, room).await, (2, 0));
}

/// Mentions keep only members of the room (an outsider is not notified and never sees the
/// message); `@room` is for the owner, counts for every member, and is rate limited.
async fn mentions_keep_members_only_and_room_mentions_are_for_owners(backend: Backend) {
    let server = TestServer::start(backend).await;
    let alice = server.user("alice").await;
    let bob = server.user("bob").await;
    let carol = server.user("carol").await;
    let eve = server.user("eve").await;
    let room = shared_room(&alice, &[&bob, &carol]).await.id;
    let eve_room = shared_room(&eve, &[]).await.id;
    let mut a1 = server.ws(&alice).await;
    let mut b1 = server.ws(&bob).await;
    let mut e1 = server.ws(&eve).await;

    // Eve is not in the room, 9999 is nobody, alice is the sender, bob twice.
    let seq = mention(
        &mut a1,
        room,
        "@eve @bob @ghost @alice",
        &[eve.id, bob.id, protocol::UserId(9_999), alice.id, bob.id],
        false,
    )
    .await
    .unwrap();
    let ev = b1.events_until(room, seq).await.pop().unwrap();
    assert_eq!(
        mentions_of(&ev),
        (vec![bob.id], false),
        "members only, once"
    );
    assert_eq!(counts(&eve.api, eve_room).await, (0, 0));
    let got = e1.sync().await;
    assert!(
        got.iter()
            .all(|f| !matches!(f, ServerFrame::Event(e) if e.room == room)),
        "eve sees nothing of the room: {got:?}"
    );
    // Over REST the same.
    let (status, text) = alice
        .api
        .raw(
            Method::POST,
            &format!("/api/v1/rooms/{room}/messages"),
            Some(RawBody::Json(
                json!({"id": unique_id(), "body": "@carol @eve", "mentions": [carol.id, eve.id]}),
            )),
        )
        .await;
    assert_eq!(status, 200, "{text}");
    let rest_seq: protocol::rest::SendAck = serde_json::from_str(&text).unwrap();
    let events = bob.api.all_events(room).await.unwrap();
    assert_eq!(mentions_of(at(&events, rest_seq.seq)).0, vec![carol.id]);
    // Too many mentions is refused.
    let many: Vec<protocol::UserId> = (1..=60).map(protocol::UserId).collect();
    let err = mention(&mut a1, room, "everyone?", &many, false)
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::InvalidMessage, "{err:?}");

    // @room: a member may not; an outsider gets the non-member answer; the owner may.
    let err = mention(&mut b1, room, "@room hi", &[], true)
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::NotOwner, "{err:?}");
    let err = mention(&mut e1, room, "@room hi", &[], true)
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::NotAMember, "{err:?}");
    let read = last_seq(&alice.api, room).await;
    b1.send_frame(&ClientFrame::Read { room, seq: read }).await;
    b1.take(
        "bob's read marker",
        |f| matches!(f, ServerFrame::ReadMarker { seq, .. } if *seq == read),
    )
    .await;
    let all = mention(&mut a1, room, "@room release is out", &[], true)
        .await
        .unwrap();
    let ev = b1.events_until(room, all).await.pop().unwrap();
    assert_eq!(mentions_of(&ev), (vec![], true));
    assert_eq!(counts(&bob.api, room).await, (1, 1));
    assert_eq!(
        counts(&carol.api, room).await.1,
        2,
        "carol's mention and @room"
    );
    assert_eq!(counts(&alice.api, room).await, (0, 0), "not the sender");
    // Rate limited: the owner's hourly budget runs out.
    let mut limited = None;
    for i in 0..20 {
        match mention(&mut a1, room, &format!("@room {i}"), &[], true).await {
            Ok(_) => {}
            Err(e) => {
                limited = Some(e);
                break;
            }
        }
    }
    let err = limited.expect("@room is rate limited");
    assert_eq!(err.code, ErrorCode::RateLimited, "{err:?}");
    assert!(err.retry_after_ms.is_some());
    // Plain messages still go.
    a1.say(room, "still talking").await;
}

/// Two nodes: a mention sent through one node counts for the user connected to the other, and
/// reading there clears it for the first.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mentions_cross_nodes() {
    let redis = Arc::new(RedisServer::start().await);
    let n1 = TestServer::start_on_redis(&redis, |_| {}).await;
    let n2 = TestServer::start_on_redis(&redis, |_| {}).await;
    let alice = n1.user("alice").await;
    let bob = n2.user("bob").await;
    let room = shared_room(&alice, &[&bob]).await.id;
    let mut a1 = n1.ws(&alice).await;
    let mut b1 = n1.ws(&bob).await;
    let mut b2 = n2.ws(&bob).await;
    let seq = mention(&mut a1, room, "@bob", &[bob.id], false)
        .await
        .unwrap();
    let ev = b2.events_until(room, seq).await.pop().unwrap();
    assert_eq!(mentions_of(&ev).0, vec![bob.id]);
    assert_eq!(counts(&bob.api_on(&n1), room).await, (1, 1));
    b2.send_frame(&ClientFrame::Read { room, seq }).await;
    b1.take(
        "read marker from node 2",
        |f| matches!(f, ServerFrame::ReadMarker { seq: s, .. } if *s == seq),
    )
    .await;
    assert_eq!(counts(&bob.api_on(&n1), room).await, (0, 0));
}
