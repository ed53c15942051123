//! Operations that span slots, failed between their steps (a test failpoint, as a crash
//! there would), then retried: what a client reads afterwards is right (`docs/CLUSTER.md`,
//! "Scripts, one slot each"). Each test runs twice: on a redis-server and on a Redis Cluster of
//! 3 masters, both started for the test.

use super::{RedisStore, Step};
use crate::error::StoreError;
use crate::store::{Admission, MemberChange, SessionRecord, UploadRecord};
use protocol::event::Role;
use protocol::rest::Visibility;
use protocol::{RoomId, UserId};
use std::time::Duration;
use testkit::cluster::RedisCluster;
use testkit::RedisServer;
use tokio_util::sync::CancellationToken;

/// Generates `mod single { #[tokio::test] fn name() }` and `mod cluster { … }` for each listed
/// `async fn name(cluster: bool)`.
macro_rules! on_both {
    ($($name:ident),+ $(,)?) => {
        mod single {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(false).await
                }
            )+
        }
        mod cluster {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(true).await
                }
            )+
        }
    };
}

on_both!(
    a_join_that_failed_half_way_is_finished_by_its_retry,
    a_room_made_half_way_is_never_seen,
    a_dm_is_whole_after_a_retry,
    a_deleted_room_is_gone_for_every_member,
    a_name_is_free_again_or_names_a_whole_user,
    a_revoked_session_is_dead_after_the_first_step,
    upload_bytes_are_counted_once,
);

/// The Redis of one test, stopped when dropped.
enum Backing {
    Single(RedisServer),
    Cluster(RedisCluster),
}

impl Backing {
    async fn start(cluster: bool) -> Backing {
        if cluster {
            Backing::Cluster(RedisCluster::start(3, 0).await)
        } else {
            Backing::Single(RedisServer::start().await)
        }
    }
}

async fn store(redis: &Backing) -> RedisStore {
    let target = match redis {
        Backing::Single(r) => {
            super::conn::Target::Single(redis::Client::open(r.url.as_str()).expect("url"))
        }
        Backing::Cluster(c) => super::conn::Target::cluster(&c.urls()).expect("urls"),
    };
    RedisStore::connect_to(target, CancellationToken::new())
        .await
        .expect("connect")
}

fn failed<T: std::fmt::Debug>(result: Result<T, StoreError>, step: Step) {
    match result {
        Err(StoreError::Unavailable(msg)) => assert!(msg.contains(&format!("{step:?}")), "{msg}"),
        other => panic!("expected the failpoint after {step:?}, got {other:?}"),
    }
}

async fn user(store: &RedisStore, name: &str) -> UserId {
    store
        .register_user(name, "pw-hash", 1, Admission::Open)
        .await
        .expect("user")
        .id
}

fn joined(user: UserId, name: &str) -> String {
    crate::store::member_joined_json(user, name, Role::Member, None)
}

/// Kinds of a room's events, in order.
async fn kinds(store: &RedisStore, room: RoomId) -> Vec<String> {
    let page = store
        .history(room, crate::store::Range::After(0), 100)
        .await
        .expect("history");
    page.events
        .iter()
        .map(|frame| {
            let v: serde_json::Value = serde_json::from_str(frame).expect("frame");
            v["event"]["kind"].as_str().unwrap_or_default().to_owned()
        })
        .collect()
}

/// A store on its own redis-server, users `owner` and `bob`, and a public room of the owner's.
async fn owner_bob_and_room(cluster: bool) -> (Backing, RedisStore, UserId, UserId, RoomId) {
    let redis = Backing::start(cluster).await;
    let store = store(&redis).await;
    let owner = user(&store, "owner").await;
    let bob = user(&store, "bob").await;
    let room = store
        .create_room(owner, "r", Visibility::Public, &joined(owner, "owner"), 0)
        .await
        .expect("room");
    (redis, store, owner, bob, room)
}

async fn a_join_that_failed_half_way_is_finished_by_its_retry(cluster: bool) {
    let (_redis, store, _owner, bob, room) = owner_bob_and_room(cluster).await;
    let event = joined(bob, "bob");
    let change = |role| MemberChange {
        room,
        user: bob,
        role,
        event_json: &event,
    };
    let join = || change(Some(Role::Member));
    let leave = || change(None);
    store.fail_after(Step::MemberChanged);
    failed(store.change_member(join(), 0).await, Step::MemberChanged);
    // The retry changes nothing in the room (one join event) and lists the room for Bob.
    assert_eq!(store.change_member(join(), 0).await.expect("retry"), None);
    assert_eq!(store.user_rooms(bob).await.expect("rooms"), vec![room]);
    assert_eq!(
        kinds(&store, room).await,
        ["member_joined", "member_joined"]
    );

    // Leaving, failed before Bob's list: the room is no longer his at once.
    store.fail_after(Step::MemberChanged);
    failed(store.change_member(leave(), 0).await, Step::MemberChanged);
    assert_eq!(store.user_rooms(bob).await.expect("rooms"), vec![]);
    assert_eq!(store.change_member(leave(), 0).await.expect("retry"), None);
    assert_eq!(store.user_rooms(bob).await.expect("rooms"), vec![]);
}

async fn a_room_made_half_way_is_never_seen(cluster: bool) {
    let redis = Backing::start(cluster).await;
    let store = store(&redis).await;
    let owner = user(&store, "owner").await;
    store.fail_after(Step::RoomMade);
    failed(
        store
            .create_room(owner, "r", Visibility::Public, &joined(owner, "owner"), 0)
            .await,
        Step::RoomMade,
    );
    assert_eq!(store.user_rooms(owner).await.expect("rooms"), vec![]);
    assert_eq!(store.public_rooms().await.expect("public"), vec![]);
    let room = store
        .create_room(owner, "r", Visibility::Public, &joined(owner, "owner"), 0)
        .await
        .expect("retry");
    assert_eq!(store.user_rooms(owner).await.expect("rooms"), vec![room]);
    assert_eq!(store.public_rooms().await.expect("public"), vec![room]);
}

async fn a_dm_is_whole_after_a_retry(cluster: bool) {
    let redis = Backing::start(cluster).await;
    let store = store(&redis).await;
    let a = user(&store, "ann").await;
    let b = user(&store, "ben").await;
    // Ben blocked Ann before: she may read their DM, not send.
    store.set_block(b, a, true).await.expect("block");
    for step in [Step::DmClaimed, Step::DmMade] {
        store.fail_after(step);
        failed(store.open_dm((a, "ann"), (b, "ben"), 0).await, step);
    }
    let dm = store
        .open_dm((a, "ann"), (b, "ben"), 0)
        .await
        .expect("retry");
    let again = store
        .open_dm((b, "ben"), (a, "ann"), 0)
        .await
        .expect("again");
    assert_eq!(again, dm, "one room for the pair");
    assert_eq!(store.user_rooms(a).await.expect("a"), vec![dm]);
    assert_eq!(store.user_rooms(b).await.expect("b"), vec![dm]);
    let members = store.members(dm).await.expect("members");
    assert_eq!(members.len(), 2);
    assert_eq!(kinds(&store, dm).await, ["member_joined", "member_joined"]);
    let raw_role = |store: &RedisStore| {
        let mut con = store.con();
        async move {
            let role: Option<String> =
                redis::AsyncCommands::hget(&mut con, super::keys::members(dm), a.0)
                    .await
                    .expect("role");
            role
        }
    };
    assert_eq!(raw_role(&store).await.as_deref(), Some("blocked"));

    // Unblocking, failed before the room: the retry sets the role.
    store.fail_after(Step::BlockSet);
    failed(store.set_block(b, a, false).await, Step::BlockSet);
    store.set_block(b, a, false).await.expect("retry");
    assert!(!store.blocked(b, a).await.expect("blocked"));
    assert_eq!(raw_role(&store).await.as_deref(), Some("member"));
}

async fn a_deleted_room_is_gone_for_every_member(cluster: bool) {
    let (_redis, store, owner, bob, room) = owner_bob_and_room(cluster).await;
    let event = joined(bob, "bob");
    store
        .change_member(
            MemberChange {
                room,
                user: bob,
                role: Some(Role::Member),
                event_json: &event,
            },
            0,
        )
        .await
        .expect("join");
    store.set_read(bob, room, 1).await.expect("read");
    store.fail_after(Step::RoomDeleted);
    failed(
        store
            .delete_room(room, owner, r#"{"kind":"room_deleted"}"#, 0)
            .await,
        Step::RoomDeleted,
    );
    for u in [owner, bob] {
        assert_eq!(store.user_rooms(u).await.expect("rooms"), vec![]);
    }
    assert_eq!(
        store
            .rooms(&store.public_rooms().await.expect("public"))
            .await
            .expect("rooms"),
        vec![]
    );
    assert_eq!(store.room(room).await.expect("room"), None);
}

async fn a_name_is_free_again_or_names_a_whole_user(cluster: bool) {
    let redis = Backing::start(cluster).await;
    let store = store(&redis).await;
    for step in [Step::UserReserved, Step::UserWritten] {
        store.fail_after(step);
        failed(
            store
                .register_user("Carol", "pw-hash", 1, Admission::Open)
                .await,
            step,
        );
        assert_eq!(store.user_by_name("carol").await.expect("by name"), None);
        // Held for the retry's reservation time, then free again.
        tokio::time::sleep(Duration::from_millis(
            super::admin::RESERVE_SECS * 1000 + 100,
        ))
        .await;
    }
    let carol = store
        .register_user("Carol", "pw-hash", 1, Admission::Open)
        .await
        .expect("retry");
    let found = store
        .user_by_name("CAROL")
        .await
        .expect("by name")
        .expect("carol");
    assert_eq!(found.id, carol.id);
    assert_eq!(found.username, "Carol");
    assert_eq!(
        store.search_users("car", 10).await.expect("search"),
        vec![(carol.id, "Carol".to_owned())]
    );
    // A confusable name is still refused.
    assert!(store
        .register_user("CaroI", "pw-hash", 1, Admission::Open)
        .await
        .is_err());
}

async fn a_revoked_session_is_dead_after_the_first_step(cluster: bool) {
    let redis = Backing::start(cluster).await;
    let store = store(&redis).await;
    let dave = user(&store, "dave").await;
    let session = SessionRecord {
        id: "s1".into(),
        token_hash: "hash-1".into(),
        user: dave,
        device: None,
        created_ts: 1,
        last_used_ts: 1,
    };
    store.create_session(&session, 3600).await.expect("session");
    store.fail_after(Step::SessionDeleted);
    failed(store.revoke_session(dave, "s1").await, Step::SessionDeleted);
    assert_eq!(
        store
            .touch_session("hash-1", 2, 3600, 3600)
            .await
            .expect("touch"),
        None
    );
    assert_eq!(store.sessions(dave).await.expect("sessions"), vec![]);
    // The retry finds nothing left to revoke.
    assert!(!store.revoke_session(dave, "s1").await.expect("retry"));
}

fn upload(id: &str, owner: UserId, room: RoomId, size: u64) -> UploadRecord {
    UploadRecord {
        id: id.to_owned(),
        owner,
        room,
        name: "f".into(),
        size,
        content_type: "text/plain".into(),
        width: None,
        height: None,
        thumbnail: false,
        created_ts: 1,
        seq: None,
        dead: false,
    }
}

async fn upload_bytes_are_counted_once(cluster: bool) {
    let redis = Backing::start(cluster).await;
    let store = store(&redis).await;
    let erin = user(&store, "erin").await;
    let room = store
        .create_room(erin, "r", Visibility::Private, &joined(erin, "erin"), 0)
        .await
        .expect("room");
    let id = |n: u32| format!("{n:028x}{:04x}", room.0 & 0xffff);
    store.fail_after(Step::UploadRecorded);
    failed(
        store
            .create_upload(&upload(&id(1), erin, room, 10), 0)
            .await,
        Step::UploadRecorded,
    );
    // Not counted; pending, it is condemned after the grace period and forgotten.
    assert_eq!(store.upload_usage(erin).await.expect("usage"), 0);
    store
        .create_upload(&upload(&id(2), erin, room, 20), 0)
        .await
        .expect("upload");
    store
        .create_upload(&upload(&id(3), erin, room, 30), 0)
        .await
        .expect("upload");
    assert_eq!(store.upload_usage(erin).await.expect("usage"), 50);
    // Past the quota: refused, nothing counted, no record left.
    assert!(store
        .create_upload(&upload(&id(4), erin, room, 60), 100)
        .await
        .is_err());
    assert_eq!(store.uploads(&[id(4)]).await.expect("records"), vec![None]);
    store.condemn_uploads(i64::MAX).await.expect("condemn");
    let mut dead = store.dead_uploads(10).await.expect("dead");
    dead.sort();
    assert_eq!(dead, vec![id(1), id(2), id(3)]);
    store.fail_after(Step::UploadUncounted);
    failed(store.forget_upload(&id(2)).await, Step::UploadUncounted);
    assert_eq!(store.upload_usage(erin).await.expect("usage"), 30);
    for n in 1..=3 {
        store.forget_upload(&id(n)).await.expect("forget");
    }
    // Forgetting again frees nothing twice.
    store.forget_upload(&id(2)).await.expect("forget again");
    assert_eq!(store.upload_usage(erin).await.expect("usage"), 0);
    assert_eq!(
        store.dead_uploads(10).await.expect("dead"),
        Vec::<String>::new()
    );
}
