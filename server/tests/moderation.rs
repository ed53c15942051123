//! Abuse limits and moderation (issue 11): owner deletes, bans, blocks, per-user rate limits
//! and caps, paged public rooms, and names without bidi controls or zero-width characters.

mod common;

use common::*;
use protocol::event::EventBody;
use protocol::rest::{PublicRoomsQuery, Room, UserRef, Visibility};
use protocol::{ErrorCode, RoomId, ServerFrame, UserId};
use std::sync::Arc;

/// Moderation calls, kept here rather than in the shared harness.
#[allow(async_fn_in_trait)]
trait ModerationApi {
    async fn ban(&self, room: RoomId, user: UserId) -> ApiResult<()>;
    async fn unban(&self, room: RoomId, user: UserId) -> ApiResult<()>;
    async fn block(&self, user: UserId) -> ApiResult<()>;
    async fn unblock(&self, user: UserId) -> ApiResult<()>;
    async fn public_page(
        &self,
        q: Option<&str>,
        after: Option<u64>,
        limit: usize,
    ) -> ApiResult<Vec<Room>>;
}

impl ModerationApi for Api {
    async fn ban(&self, room: RoomId, user: UserId) -> ApiResult<()> {
        self.set_ban(room, user, true).await
    }
    async fn unban(&self, room: RoomId, user: UserId) -> ApiResult<()> {
        self.set_ban(room, user, false).await
    }
    async fn block(&self, user: UserId) -> ApiResult<()> {
        self.set_block(user, true).await
    }
    async fn unblock(&self, user: UserId) -> ApiResult<()> {
        self.set_block(user, false).await
    }
    async fn public_page(
        &self,
        q: Option<&str>,
        after: Option<u64>,
        limit: usize,
    ) -> ApiResult<Vec<Room>> {
        let query = PublicRoomsQuery {
            q: q.map(str::to_owned),
            after,
            limit: Some(limit),
        };
        self.public_rooms_page(&query).await
    }
}

backend_tests!(
    cluster;
    owner_deletes_others_messages_members_cannot,
    server_admin_moderates_rooms_they_do_not_own,
    ban_removes_and_keeps_out_until_unbanned,
    block_refuses_direct_rooms_and_invites,
    rate_limits_and_caps_on_rooms_dms_and_invites,
    public_rooms_are_paged_and_searchable,
    bidi_and_zero_width_refused_in_names_not_messages,
    confusable_usernames_cannot_both_register,
    blocked_user_cannot_react_or_edit_in_the_dm,
    imported_accounts_keep_their_names_from_look_alikes,
);

async fn server_admin_moderates_rooms_they_do_not_own(backend: Backend) {
    let server = TestServer::start(backend).await;
    // The store's first account is its admin.
    let admin = server.user("admin").await;
    let bob = server.user("bob").await;
    let carol = server.user("carol").await;
    let room = bob
        .api
        .create_room("bobs", Visibility::Public)
        .await
        .unwrap();
    admin.api.join(room.id).await.unwrap();
    carol.api.join(room.id).await.unwrap();
    let msg = carol.api.say(room.id, "abuse from carol").await;
    // Carol, a plain member, cannot moderate; the admin, a plain member too, can.
    carol
        .api
        .ban(room.id, bob.id)
        .await
        .expect_code(ErrorCode::NotOwner);
    admin.api.delete_message(room.id, msg.seq).await.unwrap();
    let events = bob.api.all_events(room.id).await.unwrap();
    let original = events.iter().find(|e| e.seq == msg.seq).unwrap();
    assert!(
        matches!(&original.event, EventBody::Message { deleted: true, body, .. } if body.is_empty()),
        "{original:?}"
    );
    admin.api.ban(room.id, carol.id).await.unwrap();
    carol.api.join(room.id).await.expect_code(ErrorCode::Banned);
}

async fn owner_deletes_others_messages_members_cannot(backend: Backend) {
    let server = TestServer::start(backend).await;
    let owner = server.user("owner").await;
    let bob = server.user("bob").await;
    let carol = server.user("carol").await;
    let room = owner
        .api
        .create_room("mod", Visibility::Public)
        .await
        .unwrap();
    bob.api.join(room.id).await.unwrap();
    carol.api.join(room.id).await.unwrap();
    let msg = bob.api.say(room.id, "spam from bob").await;
    // Another member can neither delete nor edit it; the owner can delete but not edit.
    carol
        .api
        .delete_message(room.id, msg.seq)
        .await
        .expect_code(ErrorCode::NotAuthor);
    owner
        .api
        .edit(room.id, msg.seq, "owner words")
        .await
        .expect_code(ErrorCode::NotAuthor);
    let mut carol_ws = server.ws(&carol).await;
    owner.api.delete_message(room.id, msg.seq).await.unwrap();
    let ev = carol_ws.expect_event().await;
    assert!(
        matches!(ev.event, EventBody::Delete { target, sender } if target == msg.seq && sender == owner.id),
        "{ev:?}"
    );
    let events = carol.api.all_events(room.id).await.unwrap();
    let original = events.iter().find(|e| e.seq == msg.seq).unwrap();
    assert!(
        matches!(&original.event, EventBody::Message { deleted: true, body, .. } if body.is_empty()),
        "{original:?}"
    );
    // A non-member owner of another room has no say here.
    let other = server.user("other").await;
    other
        .api
        .create_room("theirs", Visibility::Public)
        .await
        .unwrap();
    let msg2 = bob.api.say(room.id, "second").await;
    other
        .api
        .delete_message(room.id, msg2.seq)
        .await
        .expect_code(ErrorCode::NotAMember);
}

async fn ban_removes_and_keeps_out_until_unbanned(backend: Backend) {
    let server = TestServer::start(backend).await;
    let owner = server.user("owner").await;
    let bob = server.user("bob").await;
    let carol = server.user("carol").await;
    let room = owner
        .api
        .create_room("banhall", Visibility::Public)
        .await
        .unwrap();
    bob.api.join(room.id).await.unwrap();
    carol.api.join(room.id).await.unwrap();
    // Members other than the owner cannot ban or unban.
    carol
        .api
        .ban(room.id, bob.id)
        .await
        .expect_code(ErrorCode::NotOwner);
    let mut bob_ws = server.ws(&bob).await;
    owner.api.ban(room.id, bob.id).await.unwrap();
    let ev = bob_ws.expect_event().await;
    assert!(
        matches!(ev.event, EventBody::MemberLeft { user, by: Some(by), banned: true } if user == bob.id && by == owner.id),
        "{ev:?}"
    );
    assert_eq!(
        owner.api.bans(room.id).await.unwrap(),
        vec![UserRef {
            id: bob.id,
            username: bob.name.clone()
        }]
    );
    carol
        .api
        .bans(room.id)
        .await
        .expect_code(ErrorCode::NotOwner);
    // Banned: no rejoin, no invite, no history, no sending.
    bob.api.join(room.id).await.expect_code(ErrorCode::Banned);
    owner
        .api
        .invite(room.id, bob.id)
        .await
        .expect_code(ErrorCode::Banned);
    bob.api
        .all_events(room.id)
        .await
        .expect_code(ErrorCode::NotAMember);
    bob.api
        .send(room.id, &unique_id(), "let me in")
        .await
        .expect_code(ErrorCode::NotAMember);
    // The room is still listed for bob (public) but shows him as a non-member.
    let seen = bob.api.get_room(room.id).await.unwrap();
    assert_eq!(seen.role, None);
    // Unbanned: may join again.
    owner.api.unban(room.id, bob.id).await.unwrap();
    bob.api.join(room.id).await.expect("join after unban");
    // The owner cannot be banned, nor ban themselves.
    owner
        .api
        .ban(room.id, owner.id)
        .await
        .expect_code(ErrorCode::BadRequest);
}

async fn block_refuses_direct_rooms_and_invites(backend: Backend) {
    let server = TestServer::start(backend).await;
    let alice = server.user("alice").await;
    let pest = server.user("pest").await;
    let dm = pest.api.open_dm(alice.id).await.unwrap();
    pest.api.say(dm.id, "hello").await;
    alice.api.block(pest.id).await.unwrap();
    assert_eq!(
        alice.api.blocks().await.unwrap(),
        vec![UserRef {
            id: pest.id,
            username: pest.name.clone()
        }]
    );
    // No DM: neither opening it again nor sending in the one they have.
    pest.api
        .open_dm(alice.id)
        .await
        .expect_code(ErrorCode::Blocked);
    pest.api
        .send(dm.id, &unique_id(), "are you there?")
        .await
        .expect_code(ErrorCode::Blocked);
    let mut pest_ws = server.ws(&pest).await;
    pest_ws
        .send_frame(&protocol::ClientFrame::Send {
            room: dm.id,
            id: unique_id(),
            body: "over the socket".into(),
            reply_to: None,
            mentions: vec![],
            mention_room: false,
            attachments: Vec::new(),
        })
        .await;
    pest_ws.expect_error_code(ErrorCode::Blocked).await;
    // No invites.
    let room = pest
        .api
        .create_room("lure", Visibility::Public)
        .await
        .unwrap();
    pest.api
        .invite(room.id, alice.id)
        .await
        .expect_code(ErrorCode::Blocked);
    let alice_rooms = alice.api.my_rooms().await.unwrap();
    assert!(
        alice_rooms.iter().all(|r| r.id != room.id),
        "{alice_rooms:?}"
    );
    // One-way: alice may still write to pest. After unblocking, pest may write again.
    alice.api.say(dm.id, "go away").await;
    alice.api.unblock(pest.id).await.unwrap();
    alice
        .api
        .unblock(UserId(9_999_999))
        .await
        .expect_code(ErrorCode::UserNotFound);
    assert!(alice.api.blocks().await.unwrap().is_empty());
    pest.api.open_dm(alice.id).await.expect("dm after unblock");
    pest.api.say(dm.id, "sorry").await;
    alice
        .api
        .block(alice.id)
        .await
        .expect_code(ErrorCode::BadRequest);
}

async fn rate_limits_and_caps_on_rooms_dms_and_invites(backend: Backend) {
    let server = TestServer::start_with(backend, |c| {
        c.rooms_per_hour = 2;
        c.dms_per_hour = 1;
        c.invites_per_hour = 1;
        c.max_rooms_per_user = 3;
        c.max_members_per_room = 2;
    })
    .await;
    let alice = server.user("alice").await;
    let bob = server.user("bob").await;
    let carol = server.user("carol").await;
    let r1 = alice
        .api
        .create_room("one", Visibility::Public)
        .await
        .unwrap();
    alice
        .api
        .create_room("two", Visibility::Public)
        .await
        .unwrap();
    let err = alice
        .api
        .create_room("three", Visibility::Public)
        .await
        .expect_code(ErrorCode::RateLimited);
    let retry = err.body().and_then(|b| b.retry_after_ms);
    assert!(retry.is_some_and(|ms| ms > 0), "{err}");
    // Invites: one per hour.
    alice.api.invite(r1.id, bob.id).await.unwrap();
    // Members per room: r1 is full (alice, bob).
    carol
        .api
        .join(r1.id)
        .await
        .expect_code(ErrorCode::LimitReached);
    let dave = server.user("dave").await;
    alice
        .api
        .invite(r1.id, dave.id)
        .await
        .expect_code(ErrorCode::RateLimited);
    // DMs: one per hour.
    alice.api.open_dm(carol.id).await.unwrap();
    alice
        .api
        .open_dm(dave.id)
        .await
        .expect_code(ErrorCode::RateLimited);
    // Rooms per user: alice is in r1, two and the DM (3): nothing more, even when asked by others.
    let room = bob
        .api
        .create_room("bobs", Visibility::Public)
        .await
        .unwrap();
    alice
        .api
        .join(room.id)
        .await
        .expect_code(ErrorCode::LimitReached);
    let erin = server.user("erin").await;
    erin.api
        .open_dm(alice.id)
        .await
        .expect_code(ErrorCode::LimitReached);
    // Limits are per user: carol is not throttled by alice's use.
    carol
        .api
        .create_room("carols", Visibility::Public)
        .await
        .unwrap();
}

async fn public_rooms_are_paged_and_searchable(backend: Backend) {
    let server = TestServer::start(backend).await;
    let alice = server.user("alice").await;
    let mut ids = Vec::new();
    for i in 0..7 {
        let name = if i % 2 == 0 {
            format!("Rust {i}")
        } else {
            format!("Go {i}")
        };
        ids.push(
            alice
                .api
                .create_room(&name, Visibility::Public)
                .await
                .unwrap()
                .id,
        );
    }
    alice
        .api
        .create_room("hidden rust", Visibility::Private)
        .await
        .unwrap();
    // Old clients (no parameters) get the first page: here, everything.
    let all = alice.api.public_rooms().await.unwrap();
    assert_eq!(all.iter().map(|r| r.id).collect::<Vec<_>>(), ids);
    // Pages of 3 by `after`.
    let mut seen = Vec::new();
    let mut after = 0;
    loop {
        let page = alice.api.public_page(None, Some(after), 3).await.unwrap();
        assert!(page.len() <= 3);
        seen.extend(page.iter().map(|r| r.id));
        if page.len() < 3 {
            break;
        }
        after = page.last().unwrap().id.0;
    }
    assert_eq!(seen, ids);
    // Search by name, case-insensitive, paged too.
    let rust = alice.api.public_page(Some("RUST"), None, 2).await.unwrap();
    assert_eq!(
        rust.iter().map(|r| r.id).collect::<Vec<_>>(),
        vec![ids[0], ids[2]]
    );
    let rust = alice
        .api
        .public_page(Some("rust"), Some(ids[2].0), 2)
        .await
        .unwrap();
    assert_eq!(
        rust.iter().map(|r| r.id).collect::<Vec<_>>(),
        vec![ids[4], ids[6]]
    );
    alice
        .api
        .public_page(None, None, 0)
        .await
        .expect_code(ErrorCode::BadRequest);
    alice
        .api
        .public_page(None, None, 101)
        .await
        .expect_code(ErrorCode::BadRequest);
}

async fn bidi_and_zero_width_refused_in_names_not_messages(backend: Backend) {
    let server = TestServer::start_with(backend, |c| c.logins_per_min = 1000).await;
    let alice = server.user("alice").await;
    for bad in [
        "evil\u{202E}gnp.exe",
        "zero\u{200B}width",
        "iso\u{2067}late\u{2069}",
    ] {
        alice
            .api
            .create_room(bad, Visibility::Public)
            .await
            .expect_code(ErrorCode::InvalidRoomName);
        server
            .api()
            .register(&unique_name("dev"), PASSWORD, Some(bad))
            .await
            .expect_code(ErrorCode::InvalidDeviceName);
        server
            .api()
            .login(&alice.name, PASSWORD, Some(bad))
            .await
            .expect_code(ErrorCode::InvalidDeviceName);
        server
            .api()
            .register(&format!("al{bad}"), PASSWORD, None)
            .await
            .expect_code(ErrorCode::InvalidUsername);
    }
    let room = alice
        .api
        .create_room("שלום", Visibility::Public)
        .await
        .unwrap();
    let text = "mixed \u{202E}reversed\u{202C} and \u{200B}zero width";
    alice.api.say(room.id, text).await;
    let events = alice.api.all_events(room.id).await.unwrap();
    assert!(events
        .iter()
        .any(|e| matches!(&e.event, EventBody::Message { body, .. } if body == text)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_ban_block_and_owner_delete() {
    let redis = Arc::new(RedisServer::start().await);
    let n1 = TestServer::start_on_redis(&redis, |_| {}).await;
    let n2 = TestServer::start_on_redis(&redis, |_| {}).await;
    let owner = n1.user("owner").await;
    let bob = n2.user("bob").await;
    let room = owner
        .api
        .create_room("x", Visibility::Public)
        .await
        .unwrap();
    bob.api.join(room.id).await.unwrap();
    let mut bob_ws = n2.ws(&bob).await;
    let msg = bob_ws.say(room.id, "bob's words").await;
    owner.api.delete_message(room.id, msg.seq).await.unwrap();
    bob_ws
        .take("owner's delete", |f| matches!(f, ServerFrame::Event(e) if matches!(e.event, EventBody::Delete { target, .. } if target == msg.seq)))
        .await;
    owner.api.ban(room.id, bob.id).await.unwrap();
    bob_ws
        .take("removed", |f| matches!(f, ServerFrame::Event(e) if matches!(e.event, EventBody::MemberLeft { user, .. } if user == bob.id)))
        .await;
    bob.api.join(room.id).await.expect_code(ErrorCode::Banned);
    bob.api_on(&n1)
        .join(room.id)
        .await
        .expect_code(ErrorCode::Banned);
    bob.api.block(owner.id).await.unwrap();
    owner
        .api
        .open_dm(bob.id)
        .await
        .expect_code(ErrorCode::Blocked);
}

async fn confusable_usernames_cannot_both_register(backend: Backend) {
    let server = TestServer::start_with(backend, |c| c.logins_per_min = 1000).await;
    let base = unique_name("al");
    // `al_…` and the look-alikes `aI_…` (capital i) and `a1_…` (digit one).
    let alice = format!("a{}", &base[1..]);
    server.api().register(&alice, PASSWORD, None).await.unwrap();
    for look_alike in [alice.replacen('l', "I", 1), alice.replacen('l', "1", 1)] {
        assert_ne!(look_alike, alice);
        server
            .api()
            .register(&look_alike, PASSWORD, None)
            .await
            .expect_code(ErrorCode::UsernameTaken);
    }
    // `rn` looks like `m`, `0` like `o`.
    let m = format!("m{}", unique_name("o"));
    server.api().register(&m, PASSWORD, None).await.unwrap();
    server
        .api()
        .register(&format!("rn{}", &m[1..]), PASSWORD, None)
        .await
        .expect_code(ErrorCode::UsernameTaken);
    server
        .api()
        .register(&m.replacen('o', "0", 1), PASSWORD, None)
        .await
        .expect_code(ErrorCode::UsernameTaken);
    // Names that merely share letters are fine.
    server
        .api()
        .register(&format!("{alice}x"), PASSWORD, None)
        .await
        .unwrap();
}

/// Blocking makes the DM read-only for the blocked user: besides sends, reactions (socket and
/// REST) and edits are refused with `blocked`; they may still delete their own messages. The
/// blocker may still react.
async fn blocked_user_cannot_react_or_edit_in_the_dm(backend: Backend) {
    let server = TestServer::start(backend).await;
    let alice = server.user("alice").await;
    let pest = server.user("pest").await;
    let dm = pest.api.open_dm(alice.id).await.unwrap();
    let hers = alice.api.say(dm.id, "hi").await.seq;
    let his = pest.api.say(dm.id, "hello").await.seq;
    let doomed = pest.api.say(dm.id, "to delete").await.seq;
    alice.api.block(pest.id).await.unwrap();

    let mut pest_ws = server.ws(&pest).await;
    pest_ws
        .send_frame(&protocol::ClientFrame::React {
            room: dm.id,
            seq: hers,
            emoji: "👍".into(),
            remove: false,
            reference: Some("r1".into()),
        })
        .await;
    let e = pest_ws.expect_error_code(ErrorCode::Blocked).await;
    assert_eq!(e.reference.as_deref(), Some("r1"), "{e:?}");
    pest.api
        .react(dm.id, hers, "👍", true)
        .await
        .expect_code(ErrorCode::Blocked);
    pest.api
        .edit(dm.id, his, "edited into something nasty")
        .await
        .expect_code(ErrorCode::Blocked);
    pest.api.delete_message(dm.id, doomed).await.unwrap();
    // Nothing of it reached the DM: no reaction on alice's message, pest's text unchanged.
    let events = alice.api.all_events(dm.id).await.unwrap();
    for ev in &events {
        match &ev.event {
            EventBody::Message { reactions, .. } => {
                assert!(reactions.is_empty(), "{ev:?}")
            }
            EventBody::ReactionAdded { .. } | EventBody::Edit { .. } => {
                panic!("a blocked user's change was stored: {ev:?}")
            }
            _ => {}
        }
    }
    // The blocker may react; after unblocking, so may pest.
    alice.api.react(dm.id, his, "👍", true).await.unwrap();
    alice.api.unblock(pest.id).await.unwrap();
    pest.api.react(dm.id, hers, "👍", true).await.unwrap();
    pest.api.edit(dm.id, his, "hello again").await.unwrap();
}

/// Accounts that arrive by `admin import` (the store's `load`) are in the confusable-names
/// index: a look-alike of an imported name is refused.
async fn imported_accounts_keep_their_names_from_look_alikes(backend: Backend) {
    let source = TestServer::start(backend).await;
    let base = unique_name("al");
    let alice = format!("a{}", &base[1..]);
    source.api().register(&alice, PASSWORD, None).await.unwrap();
    let data = source
        .state()
        .store
        .dump(chat_server::auth::now_ms())
        .await
        .unwrap();
    let target = TestServer::start(backend).await;
    target.state().store.load(&data).await.unwrap();
    target
        .api()
        .register(&alice.replacen('l', "I", 1), PASSWORD, None)
        .await
        .expect_code(ErrorCode::UsernameTaken);
    target
        .api()
        .register(&format!("{alice}x"), PASSWORD, None)
        .await
        .unwrap();
}

/// Accounts registered on Redis before the confusable-names index existed get indexed when a
/// server starts: simulated by deleting the index (and its marker) from a store.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn existing_redis_accounts_are_indexed_at_start() {
    let redis = Arc::new(RedisServer::start().await);
    let first = TestServer::start_on_redis(&redis, |_| {}).await;
    let base = unique_name("al");
    let alice = format!("a{}", &base[1..]);
    first.api().register(&alice, PASSWORD, None).await.unwrap();
    first.shutdown().await;
    // The data as an older server left it: accounts, no `uskel:` keys, no marker.
    let client = ::redis::Client::open(redis.url.as_str()).unwrap();
    let mut con = client.get_multiplexed_async_connection().await.unwrap();
    let keys: Vec<String> = ::redis::cmd("KEYS")
        .arg("uskel:*")
        .query_async(&mut con)
        .await
        .unwrap();
    assert_eq!(keys.len(), 1, "{keys:?}");
    let () = ::redis::cmd("DEL")
        .arg(&keys)
        .arg("migr:uskel")
        .query_async(&mut con)
        .await
        .unwrap();

    let server = TestServer::start_on_redis(&redis, |_| {}).await;
    server
        .api()
        .register(&alice.replacen('l', "I", 1), PASSWORD, None)
        .await
        .expect_code(ErrorCode::UsernameTaken);
    server
        .api()
        .register(&alice.replacen('l', "1", 1), PASSWORD, None)
        .await
        .expect_code(ErrorCode::UsernameTaken);
}
