//! Operations that span slots, failed between their steps (a test failpoint, as a crash
//! there would), then retried: what a client reads afterwards is right (`docs/CLUSTER.md`,
//! "Scripts, one slot each"). On a real redis-server started for each test.

use super::{RedisStore, Step};
use crate::error::StoreError;
use crate::store::{Admission, UploadRecord};
use protocol::event::Role;
use protocol::rest::Visibility;
use protocol::{RoomId, UserId};
use testkit::RedisServer;
use tokio_util::sync::CancellationToken;

async fn store(redis: &RedisServer) -> RedisStore {
    RedisStore::connect(&redis.url, CancellationToken::new())
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upload_bytes_are_counted_once() {
    let redis = RedisServer::start().await;
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
