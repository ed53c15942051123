//! Privacy (issue 11): presence over REST only for people who share a room, deleted messages
//! leave no text in history (original and edits), and a socket that connects while its user
//! is removed from a room does not stay subscribed to it.

mod common;

use chat_server::hooks::Point;
use common::*;
use protocol::event::EventBody;
use protocol::rest::Visibility;
use protocol::ws::Cursor;
use protocol::{RoomEvent, ServerFrame};
use std::sync::Arc;

backend_tests!(
    cluster;
    rest_presence_only_for_people_sharing_a_room,
    delete_erases_every_edit_from_history,
    connect_during_removal_does_not_stay_subscribed,
);

async fn rest_presence_only_for_people_sharing_a_room(backend: Backend) {
    let server = TestServer::start(backend).await;
    let alice = server.user("alice").await;
    let carol = server.user("carol").await;
    let stranger = server.user("stranger").await;
    let room = alice
        .api
        .create_room("friends", Visibility::Private)
        .await
        .unwrap();
    alice.api.invite(room.id, carol.id).await.unwrap();
    let carol_ws = server.ws(&carol).await;
    let _stranger_ws = server.ws(&stranger).await;
    let online = |api: &Api, id| {
        let api = api.clone();
        async move { api.get_user(id).await.unwrap().online }
    };
    // Presence is applied by a background task: wait until both show online where visible.
    wait_until("carol shows online to alice", || {
        online(&alice.api, carol.id)
    })
    .await;
    wait_until("the stranger shows online to himself", || {
        online(&stranger.api, stranger.id)
    })
    .await;

    // The stranger shares no room with alice: hidden both ways, by id and by search.
    let seen = alice.api.get_user(stranger.id).await.unwrap();
    assert!(!seen.online && seen.last_seen.is_none(), "{seen:?}");
    let found = alice.api.search_users(&stranger.name).await.unwrap();
    assert!(
        found.iter().all(|u| !u.online && u.last_seen.is_none()),
        "{found:?}"
    );
    let seen = stranger.api.get_user(alice.id).await.unwrap();
    assert!(!seen.online && seen.last_seen.is_none(), "{seen:?}");
    let found = stranger.api.search_users(&carol.name).await.unwrap();
    assert_eq!(found.len(), 1);
    assert!(!found[0].online, "{found:?}");

    // Last seen is hidden too once carol goes offline; alice still sees it.
    carol_ws.close().await;
    wait_until("carol's last_seen reaches alice", || {
        let api = alice.api.clone();
        async move { api.get_user(carol.id).await.unwrap().last_seen.is_some() }
    })
    .await;
    let seen = stranger.api.get_user(carol.id).await.unwrap();
    assert!(!seen.online && seen.last_seen.is_none(), "{seen:?}");
}

/// Polls `check` every 20 ms until it is true, for at most [`TIMEOUT`].
async fn wait_until<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    while !check().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting until {what}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

fn texts(events: &[RoomEvent]) -> Vec<String> {
    events
        .iter()
        .filter_map(|e| match &e.event {
            EventBody::Message { body, .. } | EventBody::Edit { body, .. } => Some(body.clone()),
            _ => None,
        })
        .collect()
}

async fn delete_erases_every_edit_from_history(backend: Backend) {
    let server = TestServer::start(backend).await;
    let alice = server.user("alice").await;
    let bob = server.user("bob").await;
    let room = alice
        .api
        .create_room("erasure", Visibility::Public)
        .await
        .unwrap();
    bob.api.join(room.id).await.unwrap();
    let kept = alice.api.say(room.id, "kept message").await;
    let msg = alice.api.say(room.id, "secret original").await;
    alice
        .api
        .edit(room.id, msg.seq, "secret edit one")
        .await
        .unwrap();
    alice
        .api
        .edit(room.id, msg.seq, "secret edit two")
        .await
        .unwrap();
    alice
        .api
        .edit(room.id, kept.seq, "kept edit")
        .await
        .unwrap();
    alice.api.delete_message(room.id, msg.seq).await.unwrap();

    let no_secret = |who: &str, events: &[RoomEvent]| {
        let all = texts(events);
        assert!(
            all.iter().all(|t| !t.contains("secret")),
            "[{backend}] {who} still sees deleted text: {all:?}"
        );
        assert!(
            all.iter().any(|t| t == "kept edit"),
            "other edits stay: {all:?}"
        );
    };
    no_secret("a member", &bob.api.all_events(room.id).await.unwrap());
    // A member who joins later.
    let late = server.user("late").await;
    late.api.join(room.id).await.unwrap();
    no_secret(
        "a later joiner",
        &late.api.all_events(room.id).await.unwrap(),
    );
    // A socket resuming from before the message: the replay comes from the same history.
    let (_ws, replay) = server
        .ws_resume(
            &bob,
            vec![Cursor {
                room: room.id,
                seq: kept.seq,
            }],
        )
        .await;
    let replayed: Vec<RoomEvent> = replay
        .into_iter()
        .filter_map(|f| match f {
            ServerFrame::Event(e) => Some(e),
            _ => None,
        })
        .collect();
    assert!(replayed.len() >= 4, "{replayed:?}");
    let all = texts(&replayed);
    assert!(
        all.iter().all(|t| !t.contains("secret")),
        "[{backend}] replay: {all:?}"
    );
}

async fn connect_during_removal_does_not_stay_subscribed(backend: Backend) {
    let server = TestServer::start(backend).await;
    removal_race(&server, &server).await;
}

/// Bob's socket (on `victim_node`) reads his rooms, then — before it routes them — the owner
/// removes him from one (through `owner_node`) and the removal reaches every socket. Then the
/// socket continues. It must not receive anything from that room afterwards.
async fn removal_race(owner_node: &TestServer, victim_node: &TestServer) {
    let alice = owner_node.user("alice").await;
    let bob = victim_node.user("bob").await;
    let secret = alice
        .api
        .create_room("secret", Visibility::Private)
        .await
        .unwrap();
    let open = alice
        .api
        .create_room("open", Visibility::Private)
        .await
        .unwrap();
    // Carol, on bob's node, witnesses the removal there.
    let carol = victim_node.user("carol").await;
    for room in [secret.id, open.id] {
        alice.api.invite(room, bob.id).await.unwrap();
    }
    alice.api.invite(secret.id, carol.id).await.unwrap();
    let mut carol_ws = victim_node.ws(&carol).await;

    let pause = victim_node
        .state()
        .hooks
        .arm(Point::ConnectRoomsRead, bob.id);
    let (url, token, label) = (
        victim_node.ws_url.clone(),
        bob.token.clone(),
        bob.name.clone(),
    );
    let connecting = tokio::spawn(async move {
        let mut ws = Ws::connect(&url, &label).await;
        ws.hello(&token, vec![]).await;
        ws
    });
    tokio::time::timeout(TIMEOUT, pause.reached())
        .await
        .expect("bob's socket reached the pause point");
    alice.api.remove_member(secret.id, bob.id).await.unwrap();
    // Once carol has it, bob's node has routed the removal (before bob's socket routes its rooms).
    carol_ws
        .take("bob removed", |f| matches!(f, ServerFrame::Event(RoomEvent { event: EventBody::MemberLeft { user, .. }, .. }) if *user == bob.id))
        .await;
    pause.resume();
    let mut bob_ws = tokio::time::timeout(TIMEOUT, connecting)
        .await
        .expect("bob's hello finished")
        .unwrap();
    assert!(
        bob_ws.welcome().rooms.iter().all(|r| r.id != secret.id),
        "the welcome lists a room bob was removed from"
    );
    alice.api.say(secret.id, "after removal").await;
    let marker = alice.api.say(open.id, "marker").await;
    let frames = bob_ws
        .collect_until(
            "marker",
            |f| matches!(f, ServerFrame::Event(e) if e.room == open.id && e.seq == marker.seq),
        )
        .await;
    let leaked: Vec<_> = frames
        .iter()
        .filter(|f| matches!(f, ServerFrame::Event(e) if e.room == secret.id))
        .collect();
    assert!(
        leaked.is_empty(),
        "events of a room bob was removed from: {leaked:#?}"
    );
    // Typing there is refused too.
    bob_ws
        .send_frame(&protocol::ClientFrame::Typing { room: secret.id })
        .await;
    bob_ws
        .expect_error_code(protocol::ErrorCode::NotAMember)
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_connect_during_removal_does_not_stay_subscribed() {
    let redis = Arc::new(RedisServer::start().await);
    let n1 = TestServer::start_on_redis(&redis, |_| {}).await;
    let n2 = TestServer::start_on_redis(&redis, |_| {}).await;
    removal_race(&n1, &n2).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_presence_scoped_and_deleted_edits_erased() {
    let redis = Arc::new(RedisServer::start().await);
    let n1 = TestServer::start_on_redis(&redis, |_| {}).await;
    let n2 = TestServer::start_on_redis(&redis, |_| {}).await;
    let alice = n1.user("alice").await;
    let stranger = n2.user("stranger").await;
    let _ws = n2.ws(&stranger).await;
    let seen = alice.api.get_user(stranger.id).await.unwrap();
    assert!(!seen.online && seen.last_seen.is_none(), "{seen:?}");

    let room = alice
        .api
        .create_room("r", Visibility::Public)
        .await
        .unwrap();
    let msg = alice.api.say(room.id, "secret one").await;
    alice
        .api
        .edit(room.id, msg.seq, "secret two")
        .await
        .unwrap();
    alice
        .api_on(&n2)
        .delete_message(room.id, msg.seq)
        .await
        .unwrap();
    stranger.api.join(room.id).await.unwrap();
    let all = texts(&stranger.api.all_events(room.id).await.unwrap());
    assert!(all.iter().all(|t| !t.contains("secret")), "{all:?}");
    // Now they share a room: presence shows.
    assert!(alice.api.get_user(stranger.id).await.unwrap().online);
}
