//! Room settings and profiles in the desktop backend (issue 13), against a real server: a
//! rename and topic reach the cached room list, a deleted room leaves the cache, the
//! notification level is synced from other devices and decides which messages notify, and
//! display names and user cards reach what the UI shows.

mod common;

use common::*;
use protocol::ipc::{AppErrorCode, AppEvent, Command, RoomView, UserView};
use protocol::rest::{NotifyLevel, UpdateProfile, UpdateRoom, Visibility};
use protocol::{ErrorCode, RoomId};
use serde_json::json;

/// Waits until the cached room list satisfies `done` (checked after each `rooms_changed`).
async fn rooms_until(
    backend: &chat_desktop::Backend,
    ui: &mut Ui,
    what: &str,
    done: impl Fn(&[RoomView]) -> bool,
) -> Vec<RoomView> {
    loop {
        let rooms = backend.rooms().await.unwrap();
        if done(&rooms) {
            return rooms;
        }
        ui.wait_for(what, |s| {
            matches!(s, Seen::Event(AppEvent::RoomsChanged)).then_some(())
        })
        .await;
    }
}

fn find(rooms: &[RoomView], room: RoomId) -> Option<&RoomView> {
    rooms.iter().find(|r| r.room.id == room)
}

fn notifications(ui: &Ui) -> Vec<String> {
    ui.log
        .lock()
        .map(|l| {
            l.iter()
                .filter_map(|s| match s {
                    Seen::Notification { body, .. } => Some(body.clone()),
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Bob (the owner) renames his room and sets a topic: Ann's cached room list follows live.
/// Bob deletes it: the room and its cached messages leave Ann's cache, and a restart does not
/// bring them back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rename_topic_and_delete_reach_the_cache() {
    let redis = Redis::start().await;
    let server = Server::start(&redis).await;
    let home = Home::new();
    let (backend, mut ui, _me) = signed_up(&home, &server, "ann").await;
    let (bob, room) = in_peers_room(&backend, &server, "before").await;
    bob.send(room.id, "hello ann").await;
    ui.wait_message("bob's message", |m| m.body == "hello ann")
        .await;

    let update = UpdateRoom {
        name: Some("after".into()),
        topic: Some("what we ship".into()),
    };
    ok(bob.api.update_room(room.id, &update)).await;
    let rooms = rooms_until(&backend, &mut ui, "the rename", |rooms| {
        find(rooms, room.id).is_some_and(|r| r.room.name == "after")
    })
    .await;
    assert_eq!(find(&rooms, room.id).unwrap().room.topic, "what we ship");

    // Ann is not the owner: the app shows the server's refusal.
    let err = backend
        .execute(Command::UpdateRoom {
            room: room.id,
            name: Some("ann's".into()),
            topic: None,
        })
        .await
        .unwrap_err();
    assert_eq!(
        err.to_app_error().code,
        AppErrorCode::Server(ErrorCode::NotOwner)
    );

    ok(bob.api.delete_room(room.id)).await;
    rooms_until(&backend, &mut ui, "the deletion", |rooms| {
        find(rooms, room.id).is_none()
    })
    .await;
    assert!(backend.cache().room(room.id).await.unwrap().is_none());
    assert!(backend
        .cache()
        .last_message(room.id)
        .await
        .unwrap()
        .is_none());
    backend.shutdown().await;

    // Away while deleted: a second room, deleted while the app is closed, is gone on start.
    let (backend, mut ui) = home.open().await;
    ui.wait_online().await;
    let other = bob.create_room("away", Visibility::Public).await;
    within("join", backend.join_room(other.id)).await.unwrap();
    backend.shutdown().await;
    ok(bob.api.delete_room(other.id)).await;
    let (backend, mut ui) = home.open().await;
    ui.wait_online().await;
    rooms_until(&backend, &mut ui, "the room deleted while away", |rooms| {
        find(rooms, other.id).is_none()
    })
    .await;
    backend.shutdown().await;
}

/// Ann mutes a room on her phone: the app learns the level (`notify_level`), and then shows
/// no notification for Bob's messages; at `mentions` only a message mentioning her notifies;
/// set back to `all` from the app itself, every message does again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notify_level_is_synced_and_decides_notifications() {
    let redis = Redis::start().await;
    let server = Server::start(&redis).await;
    let home = Home::new();
    let (backend, mut ui, me) = signed_up(&home, &server, "ann").await;
    let phone = Peer::login(&server, &me.username).await;
    let (bob, room) = in_peers_room(&backend, &server, "noisy").await;
    let say = |body: &'static str, mention: bool| {
        let mentions = if mention { vec![me.id] } else { vec![] };
        let bob = &bob;
        async move {
            bob.send_with(room.id, body, json!({ "mentions": mentions }))
                .await;
        }
    };

    ok(phone.api.set_notify(room.id, NotifyLevel::None)).await;
    rooms_until(&backend, &mut ui, "the level from the phone", |rooms| {
        find(rooms, room.id).is_some_and(|r| r.room.notify == NotifyLevel::None)
    })
    .await;
    say("muted", false).await;
    say("muted mention", true).await;
    ui.wait_message("muted mention", |m| m.body == "muted mention")
        .await;

    ok(phone.api.set_notify(room.id, NotifyLevel::Mentions)).await;
    rooms_until(&backend, &mut ui, "mentions only", |rooms| {
        find(rooms, room.id).is_some_and(|r| r.room.notify == NotifyLevel::Mentions)
    })
    .await;
    say("plain", false).await;
    say("@ann look", true).await;
    ui.wait_message("the mention", |m| m.body == "@ann look")
        .await;

    backend
        .execute(Command::SetNotify {
            room: room.id,
            level: NotifyLevel::All,
        })
        .await
        .unwrap();
    assert_eq!(
        backend.cache().notify_level(room.id).await.unwrap(),
        NotifyLevel::All
    );
    say("loud again", false).await;
    ui.wait_message("loud again", |m| m.body == "loud again")
        .await;
    // The last message's notification is reported right after it.
    ui.wait_for("the last notification", |s| {
        matches!(s, Seen::Notification { body, .. } if body == "loud again").then_some(())
    })
    .await;
    assert_eq!(notifications(&ui), ["@ann look", "loud again"]);
    backend.shutdown().await;
}

/// Ann sets a display name from the app (refused when invalid); Bob's, set on the server,
/// reaches the members list live and his card, which also shows his presence.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn display_names_and_user_cards() {
    let redis = Redis::start().await;
    let server = Server::start(&redis).await;
    let home = Home::new();
    let (backend, mut ui, me) = signed_up(&home, &server, "ann").await;
    let (bob, room) = in_peers_room(&backend, &server, "people").await;

    let err = backend
        .execute(Command::SetDisplayName {
            display_name: "Ann\u{202E}".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(
        err.to_app_error().code,
        AppErrorCode::Server(ErrorCode::InvalidDisplayName)
    );
    let user: protocol::rest::User = serde_json::from_value(
        backend
            .execute(Command::SetDisplayName {
                display_name: "Ann Smith".into(),
            })
            .await
            .unwrap(),
    )
    .unwrap();
    assert_eq!(user.display_name.as_deref(), Some("Ann Smith"));
    assert_eq!(
        backend.snapshot().user.and_then(|u| u.display_name),
        Some("Ann Smith".into())
    );

    let profile = UpdateProfile {
        display_name: Some("Bob the Builder".into()),
    };
    ok(bob.api.update_profile(&profile)).await;
    ui.wait_for("bob's new name", |s| {
        matches!(s, Seen::Event(AppEvent::UserUpdated { user, display_name: Some(n) })
            if *user == bob.id && n == "Bob the Builder")
        .then_some(())
    })
    .await;
    let members = backend.members(room.id).await.unwrap();
    let shown: Vec<(String, Option<String>)> = members
        .iter()
        .map(|m| (m.user.username.clone(), m.user.display_name.clone()))
        .collect();
    assert!(shown.contains(&(bob.username.clone(), Some("Bob the Builder".into()))));
    assert!(shown.contains(&(me.username.clone(), Some("Ann Smith".into()))));
    let card: UserView = serde_json::from_value(
        backend
            .execute(Command::UserCard { user: bob.id })
            .await
            .unwrap(),
    )
    .unwrap();
    assert_eq!(card.username, bob.username);
    assert_eq!(card.display_name.as_deref(), Some("Bob the Builder"));
    assert!(!card.online, "bob has no socket open");
    backend.shutdown().await;
}
