//! Replies, reactions and mentions in the desktop backend against a real server: offline
//! reactions and replies go through the outbox and arrive once; reaction events, resume and
//! history pages all end in the server's final state; mention counts follow the read marker;
//! a reply's quote turns into "deleted message" when its original is deleted.

mod common;

use common::*;
use protocol::event::Reaction;
use protocol::ipc::{ConnectionState, MessageStatus, MessageView};
use protocol::{EventBody, RoomId, UserId};
use serde_json::json;

fn reactions(users: &[(&str, &[UserId])]) -> Vec<Reaction> {
    users
        .iter()
        .map(|(emoji, users)| Reaction {
            emoji: (*emoji).to_owned(),
            users: users.to_vec(),
        })
        .collect()
}

/// The server's view of one message: (reply_to, reactions, mentions).
async fn on_server(
    peer: &Peer,
    room: RoomId,
    seq: u64,
) -> (Option<u64>, Vec<Reaction>, Vec<UserId>) {
    let page = peer.history(room).await;
    page.events
        .into_iter()
        .find_map(|e| match e.event {
            EventBody::Message {
                reply_to,
                reactions,
                mentions,
                ..
            } if e.seq == seq => Some((reply_to, reactions, mentions)),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no message {seq} on the server"))
}

/// How many `reaction_added` events the server appended for `seq`.
async fn reactions_added(peer: &Peer, room: RoomId, seq: u64) -> usize {
    peer.history(room)
        .await
        .events
        .iter()
        .filter(|e| matches!(&e.event, EventBody::ReactionAdded { target, .. } if *target == seq))
        .count()
}

async fn page(backend: &chat_desktop::Backend, room: RoomId) -> Vec<MessageView> {
    within("messages", backend.messages(room, None, None))
        .await
        .unwrap_or_else(|e| panic!("messages: {e}"))
        .messages
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offline_reaction_and_reply_are_delivered_once() {
    let redis = Redis::start().await;
    let mut server = Server::start(&redis).await;
    let home = Home::new();
    let (backend, mut ui, me) = signed_up(&home, &server, "ann").await;
    let (bob, room) = in_peers_room(&backend, &server, "offline-react").await;
    let lunch = bob.send(room.id, "lunch at **noon**?\nor later").await;
    ui.wait_message("bob's message", |m| m.seq == Some(lunch.seq))
        .await;

    server.down().await;
    ui.wait_state("Reconnecting", |s| {
        matches!(s, ConnectionState::Reconnecting { .. })
    })
    .await;
    // The reaction shows at once, offline.
    within("react", backend.react(room.id, lunch.seq, "👍", false))
        .await
        .unwrap_or_else(|e| panic!("react: {e}"));
    let shown = ui
        .wait_message("the reaction, shown offline", |m| {
            m.seq == Some(lunch.seq) && !m.reactions.is_empty()
        })
        .await;
    assert_eq!(shown.reactions, reactions(&[("👍", &[me.id])]));
    // A reply with a mention, pending, quoting the original's first line without markup.
    let reply = within(
        "send",
        backend.send_message(
            room.id,
            chat_desktop::cache::Outgoing {
                body: format!("@{} yes", bob.username),
                reply_to: Some(lunch.seq),
                mentions: vec![bob.id],
                mention_room: false,
            },
        ),
    )
    .await
    .unwrap_or_else(|e| panic!("send: {e}"));
    assert_eq!(reply.status, MessageStatus::Pending);
    assert_eq!(reply.reply_to, Some(lunch.seq));
    let quote = reply.quote.clone().unwrap_or_else(|| panic!("no quote"));
    assert_eq!(quote.text, "lunch at noon?");
    assert_eq!(quote.sender_name, bob.username);
    assert!(!quote.deleted);

    server.up().await;
    let sent = ui
        .wait_message("the reply, sent", |m| {
            m.client_id == reply.client_id && is_sent(m)
        })
        .await;
    let reply_seq = sent.seq.unwrap_or_else(|| panic!("no seq"));
    assert_eq!(sent.mentions, [bob.id]);
    assert!(sent.quote.is_some());
    // Wait until the server confirmed the reaction (the outbox is empty then).
    within("reaction confirmed", async {
        loop {
            let left = backend
                .cache()
                .reactions_pending()
                .await
                .unwrap_or_else(|e| panic!("outbox: {e}"));
            if left.is_empty() {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    })
    .await;

    // Exactly once on the server: one reaction event, one reply, with its reply and mention.
    let (_, server_reactions, _) = on_server(&bob, room.id, lunch.seq).await;
    assert_eq!(server_reactions, reactions(&[("👍", &[me.id])]));
    assert_eq!(reactions_added(&bob, room.id, lunch.seq).await, 1);
    let (reply_to, _, mentions) = on_server(&bob, room.id, reply_seq).await;
    assert_eq!(reply_to, Some(lunch.seq));
    assert_eq!(mentions, [bob.id]);
    assert_eq!(
        bob.bodies(room.id).await,
        vec![
            "lunch at **noon**?\nor later".to_owned(),
            format!("@{} yes", bob.username)
        ]
    );

    // A live mention notifies, saying so.
    bob.send_with(room.id, "@ann look", json!({"mentions": [me.id]}))
        .await;
    let title = ui
        .wait_for("the mention's notification", |s| match s {
            Seen::Notification { title, .. } => Some(title.clone()),
            _ => None,
        })
        .await;
    assert_eq!(title, format!("{} mentioned you", bob.username));

    // The reconnect sends nothing again: after another restart of the server, still once.
    server.down().await;
    server.up().await;
    ui.wait_online().await;
    assert_eq!(reactions_added(&bob, room.id, lunch.seq).await, 1);
    backend.shutdown().await;
}

/// Reactions taken back offline before the first one was sent: only the final intent counts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offline_toggle_sends_only_the_final_state() {
    let redis = Redis::start().await;
    let mut server = Server::start(&redis).await;
    let home = Home::new();
    let (backend, mut ui, me) = signed_up(&home, &server, "ann").await;
    let (bob, room) = in_peers_room(&backend, &server, "toggle").await;
    let msg = bob.send(room.id, "hello").await;
    ui.wait_message("bob's message", |m| m.seq == Some(msg.seq))
        .await;

    server.down().await;
    ui.wait_state("Reconnecting", |s| {
        matches!(s, ConnectionState::Reconnecting { .. })
    })
    .await;
    for (emoji, remove) in [("🎉", false), ("❤", false), ("🎉", true)] {
        within("react", backend.react(room.id, msg.seq, emoji, remove))
            .await
            .unwrap_or_else(|e| panic!("react: {e}"));
    }
    server.up().await;
    ui.wait_online().await;
    let want = reactions(&[("❤️", &[me.id])]);
    within("the server's state", async {
        loop {
            if on_server(&bob, room.id, msg.seq).await.1 == want {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    })
    .await;
    let cached = page(&backend, room.id).await;
    assert_eq!(
        cached[0].reactions, want,
        "the cache agrees with the server"
    );
    backend.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reactions_mentions_and_quotes_follow_the_server() {
    let redis = Redis::start().await;
    let server = Server::start(&redis).await;
    let home = Home::new();
    let (backend, mut ui, me) = signed_up(&home, &server, "ann").await;
    let (bob, room) = in_peers_room(&backend, &server, "follow").await;
    let first = bob.send(room.id, "first").await;
    ui.wait_message("first", |m| m.seq == Some(first.seq)).await;

    // Live: bob's reaction arrives, and goes when he takes it back.
    bob.react(room.id, first.seq, "👀", true).await;
    ui.wait_message("bob's reaction", |m| {
        m.seq == Some(first.seq) && m.reactions == reactions(&[("👀", &[bob.id])])
    })
    .await;
    bob.react(room.id, first.seq, "👀", false).await;
    ui.wait_message("bob's reaction gone", |m| {
        m.seq == Some(first.seq) && m.reactions.is_empty()
    })
    .await;

    // Away: bob reacts twice, mentions ann twice, replies to his first message and deletes it.
    backend.shutdown().await;
    drop(ui);
    bob.react(room.id, first.seq, "🎉", true).await;
    bob.react(room.id, first.seq, "👍", true).await;
    let reply = bob
        .send_with(room.id, "see above", json!({"reply_to": first.seq}))
        .await;
    bob.send_with(room.id, "@ann one", json!({"mentions": [me.id]}))
        .await;
    let second = bob
        .send_with(room.id, "@ann two", json!({"mentions": [me.id]}))
        .await;
    bob.send(room.id, "no mention").await;
    bob.react(room.id, first.seq, "🎉", false).await;

    // Resume: the final state, and the mention count apart from unread.
    let (backend, mut ui) = home.open().await;
    ui.wait_online().await;
    let last_seq = bob.history(room.id).await.last_seq;
    within("resumed", async {
        loop {
            let rooms = backend.rooms().await.unwrap_or_default();
            if rooms
                .iter()
                .any(|r| r.room.id == room.id && r.room.last_seq >= last_seq)
            {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    })
    .await;
    let messages = page(&backend, room.id).await;
    let cached_first = messages
        .iter()
        .find(|m| m.seq == Some(first.seq))
        .unwrap_or_else(|| panic!("first not cached"));
    assert_eq!(cached_first.reactions, reactions(&[("👍", &[bob.id])]));
    let cached_reply = messages
        .iter()
        .find(|m| m.seq == Some(reply.seq))
        .unwrap_or_else(|| panic!("reply not cached"));
    assert_eq!(
        cached_reply.quote.as_ref().map(|q| q.text.as_str()),
        Some("first")
    );
    let view = backend
        .rooms()
        .await
        .unwrap_or_default()
        .into_iter()
        .find(|r| r.room.id == room.id)
        .unwrap_or_else(|| panic!("room gone"));
    assert_eq!((view.room.unread, view.room.mentions), (5, 2));

    // Deleting the original turns the quote into "deleted message", live.
    bob.delete(room.id, first.seq).await;
    ui.wait_message("the original, deleted", |m| {
        m.seq == Some(first.seq) && m.deleted
    })
    .await;
    let messages = page(&backend, room.id).await;
    let quote = messages
        .iter()
        .find(|m| m.seq == Some(reply.seq))
        .and_then(|m| m.quote.clone())
        .unwrap_or_else(|| panic!("no quote"));
    assert!(quote.deleted);
    assert_eq!(quote.text, "");

    // Reading up to the first mention leaves one; reading all clears both counts.
    within("mark_read", backend.mark_read(room.id, second.seq - 1))
        .await
        .unwrap_or_else(|e| panic!("mark_read: {e}"));
    let counts = |rooms: Vec<protocol::ipc::RoomView>| {
        rooms
            .into_iter()
            .find(|r| r.room.id == room.id)
            .map(|r| (r.room.unread, r.room.mentions))
    };
    assert_eq!(
        counts(backend.rooms().await.unwrap_or_default()),
        Some((2, 1))
    );
    within("mark_read", backend.mark_read(room.id, last_seq))
        .await
        .unwrap_or_else(|e| panic!("mark_read: {e}"));
    assert_eq!(
        counts(backend.rooms().await.unwrap_or_default()),
        Some((0, 0))
    );

    // A new device pages history from the server: the same reactions, replies and mentions.
    let home2 = Home::new();
    let (backend2, mut ui2) = home2.open().await;
    within("set_server", backend2.set_server(&server.url()))
        .await
        .unwrap_or_else(|e| panic!("set_server: {e}"));
    within("login", backend2.login(&me.username, PASSWORD))
        .await
        .unwrap_or_else(|e| panic!("login: {e}"));
    ui2.wait_online().await;
    let fresh = page(&backend2, room.id).await;
    let fresh_reply = fresh
        .iter()
        .find(|m| m.seq == Some(reply.seq))
        .unwrap_or_else(|| panic!("no reply on the new device"));
    assert_eq!(fresh_reply.reply_to, Some(first.seq));
    assert!(fresh_reply.quote.as_ref().is_some_and(|q| q.deleted));
    let fresh_second = fresh
        .iter()
        .find(|m| m.seq == Some(second.seq))
        .unwrap_or_else(|| panic!("no mention on the new device"));
    assert_eq!(fresh_second.mentions, [me.id]);
    backend.shutdown().await;
    backend2.shutdown().await;
}

/// Invited to a room, then mentioned there at once: the room shows the message and counts it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mention_in_a_room_just_invited_to_counts() {
    let redis = Redis::start().await;
    let server = Server::start(&redis).await;
    let home = Home::new();
    let (backend, mut ui, me) = signed_up(&home, &server, "ann").await;
    let bob = Peer::register(&server, "bob").await;
    let room = bob
        .create_room("snacks", protocol::rest::Visibility::Private)
        .await;
    bob.invite(room.id, me.id).await;
    let sent = bob
        .send_with(room.id, "@ann cups?", json!({"mentions": [me.id]}))
        .await;
    ui.wait_message("the mention", |m| m.seq == Some(sent.seq))
        .await;
    within("counted", async {
        loop {
            let rooms = backend.rooms().await.unwrap_or_default();
            let view = rooms.iter().find(|r| r.room.id == room.id);
            if view.is_some_and(|v| {
                v.room.mentions == 1 && v.room.unread == 1 && v.last_message.is_some()
            }) {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    })
    .await;
    backend.shutdown().await;
}
