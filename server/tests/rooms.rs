//! Rooms: create, list, join, invite, members, remove, leave, direct messages, validation,
//! and access control for non-members.

mod common;

use common::*;
use protocol::event::{EventBody, Role};
use protocol::rest::{RoomKind, Visibility};
use protocol::{ErrorCode, RoomId, UserId};

common::backend_tests!(
    cluster;
    create_and_list_rooms,
    join_public_but_not_private,
    invite_to_private_room,
    members_may_invite_to_public_rooms,
    owner_removes_member,
    leave_room,
    owner_leaving_hands_over_ownership,
    direct_messages,
    bad_room_names,
    non_members_cannot_read_or_write,
);

fn ids(rooms: &[protocol::rest::Room]) -> Vec<RoomId> {
    rooms.iter().map(|r| r.id).collect()
}

async fn create_and_list_rooms(backend: Backend) {
    let server = TestServer::start(backend).await;
    let alice = server.user("alice").await;
    let bob = server.user("bob").await;

    let public = alice
        .api
        .create_room("Lobby", Visibility::Public)
        .await
        .expect("create public");
    assert_eq!(public.name, "Lobby");
    assert_eq!(public.kind, RoomKind::Group);
    assert_eq!(public.visibility, Visibility::Public);
    assert_eq!(public.member_count, 1);
    assert_eq!(public.role, Some(Role::Owner));
    assert_eq!(
        public.last_seq, 1,
        "creating appends member_joined with seq 1"
    );
    assert_eq!(public.peer, None);

    let private = alice
        .api
        .create_room("général 🎉", Visibility::Private)
        .await
        .expect("create private");
    assert_eq!(private.name, "général 🎉");
    assert_eq!(private.visibility, Visibility::Private);
    assert_ne!(private.id, public.id);

    // The first event is the creator joining as owner.
    let page = alice
        .api
        .history(public.id, None, None, None)
        .await
        .expect("history");
    assert_eq!(page.events.len(), 1, "{page:?}");
    assert_eq!(page.events[0].seq, 1);
    assert_eq!(page.last_seq, 1);
    match &page.events[0].event {
        EventBody::MemberJoined {
            user,
            username,
            role,
            by,
        } => {
            assert_eq!(
                (*user, username.as_str(), *role, *by),
                (alice.id, alice.name.as_str(), Role::Owner, None)
            );
        }
        other => panic!("expected member_joined, got {other:?}"),
    }

    // Mine: both, as owner.
    let mine = alice.api.my_rooms().await.expect("my rooms");
    assert_eq!(mine.len(), 2, "{mine:?}");
    for id in [public.id, private.id] {
        let r = mine.iter().find(|r| r.id == id).expect("room in my list");
        assert_eq!(r.role, Some(Role::Owner));
    }
    let got = alice.api.get_room(private.id).await.expect("get room");
    assert_eq!(
        (
            got.id,
            got.name.as_str(),
            got.kind,
            got.visibility,
            got.role,
            got.member_count
        ),
        (
            private.id,
            private.name.as_str(),
            private.kind,
            private.visibility,
            private.role,
            private.member_count
        )
    );

    // Public list: only the public room; bob sees no role since he is not a member.
    let listed = bob.api.public_rooms().await.expect("public rooms");
    assert_eq!(ids(&listed), vec![public.id]);
    assert_eq!(listed[0].role, None);
    assert_eq!(listed[0].name, "Lobby");
    assert_eq!(listed[0].member_count, 1);
    assert!(bob.api.my_rooms().await.expect("bob's rooms").is_empty());
}

async fn join_public_but_not_private(backend: Backend) {
    let server = TestServer::start(backend).await;
    let alice = server.user("alice").await;
    let bob = server.user("bob").await;
    let public = alice
        .api
        .create_room("Open", Visibility::Public)
        .await
        .unwrap();
    let private = alice
        .api
        .create_room("Closed", Visibility::Private)
        .await
        .unwrap();

    let joined = bob.api.join(public.id).await.expect("join public");
    assert_eq!(joined.id, public.id);
    assert_eq!(joined.role, Some(Role::Member));
    assert_eq!(joined.member_count, 2);
    assert_eq!(ids(&bob.api.my_rooms().await.unwrap()), vec![public.id]);

    let members = alice.api.members(public.id).await.expect("members");
    assert_eq!(members.len(), 2);
    let role_of = |id: UserId| members.iter().find(|m| m.user.id == id).map(|m| m.role);
    assert_eq!(role_of(alice.id), Some(Role::Owner));
    assert_eq!(role_of(bob.id), Some(Role::Member));
    assert_eq!(
        members
            .iter()
            .find(|m| m.user.id == bob.id)
            .unwrap()
            .user
            .username,
        bob.name
    );

    let page = bob
        .api
        .history(public.id, None, None, None)
        .await
        .expect("member reads history");
    let last = page.events.last().expect("join event");
    assert_eq!(last.seq, 2);
    assert!(
        matches!(&last.event, EventBody::MemberJoined { user, role: Role::Member, by: None, .. } if *user == bob.id),
        "{last:?}"
    );

    bob.api
        .join(private.id)
        .await
        .expect_code(ErrorCode::RoomNotFound);
    bob.api
        .join(RoomId(9_999_999))
        .await
        .expect_code(ErrorCode::RoomNotFound);
    assert_eq!(ids(&bob.api.my_rooms().await.unwrap()), vec![public.id]);
    assert_eq!(alice.api.members(private.id).await.unwrap().len(), 1);
}

async fn invite_to_private_room(backend: Backend) {
    let server = TestServer::start(backend).await;
    let alice = server.user("alice").await;
    let bob = server.user("bob").await;
    let carol = server.user("carol").await;
    let room = alice
        .api
        .create_room("Secret", Visibility::Private)
        .await
        .unwrap();

    // Before the invite bob is a stranger.
    bob.api
        .invite(room.id, carol.id)
        .await
        .expect_code(ErrorCode::NotAMember);

    alice
        .api
        .invite(room.id, bob.id)
        .await
        .expect("owner invites");
    let seen = bob
        .api
        .get_room(room.id)
        .await
        .expect("invitee sees the room");
    assert_eq!(seen.role, Some(Role::Member));
    assert_eq!(seen.member_count, 2);
    assert_eq!(ids(&bob.api.my_rooms().await.unwrap()), vec![room.id]);

    let page = bob
        .api
        .history(room.id, None, None, None)
        .await
        .expect("invitee reads history");
    let last = page.events.last().unwrap();
    assert!(
        matches!(&last.event, EventBody::MemberJoined { user, role: Role::Member, by: Some(by), .. } if *user == bob.id && *by == alice.id),
        "{last:?}"
    );

    // Only the owner invites to a private room.
    bob.api
        .invite(room.id, carol.id)
        .await
        .expect_code(ErrorCode::NotOwner);
    carol
        .api
        .history(room.id, None, None, None)
        .await
        .expect_code(ErrorCode::NotAMember);

    alice
        .api
        .invite(room.id, UserId(9_999_999))
        .await
        .expect_code(ErrorCode::UserNotFound);

    let members = alice.api.members(room.id).await.unwrap();
    let mut member_ids: Vec<_> = members.iter().map(|m| m.user.id).collect();
    member_ids.sort();
    let mut expected = vec![alice.id, bob.id];
    expected.sort();
    assert_eq!(member_ids, expected);
}

async fn members_may_invite_to_public_rooms(backend: Backend) {
    let server = TestServer::start(backend).await;
    let alice = server.user("alice").await;
    let bob = server.user("bob").await;
    let carol = server.user("carol").await;
    let room = shared_room(&alice, &[&bob]).await;

    bob.api
        .invite(room.id, carol.id)
        .await
        .expect("a member invites to a public room");
    let seen = carol
        .api
        .get_room(room.id)
        .await
        .expect("carol is a member");
    assert_eq!(seen.role, Some(Role::Member));
    assert_eq!(seen.member_count, 3);
}

async fn owner_removes_member(backend: Backend) {
    let server = TestServer::start(backend).await;
    let alice = server.user("alice").await;
    let bob = server.user("bob").await;
    let carol = server.user("carol").await;
    let room = shared_room(&alice, &[&bob, &carol]).await;

    bob.api
        .remove_member(room.id, carol.id)
        .await
        .expect_code(ErrorCode::NotOwner);

    alice
        .api
        .remove_member(room.id, bob.id)
        .await
        .expect("owner removes bob");

    let members = alice.api.members(room.id).await.unwrap();
    assert!(!members.iter().any(|m| m.user.id == bob.id), "{members:?}");
    assert_eq!(members.len(), 2);
    assert!(bob.api.my_rooms().await.unwrap().is_empty());
    bob.api
        .history(room.id, None, None, None)
        .await
        .expect_code(ErrorCode::NotAMember);
    bob.api
        .send(room.id, &unique_id(), "still here?")
        .await
        .expect_code(ErrorCode::NotAMember);

    let page = alice.api.history(room.id, None, None, None).await.unwrap();
    let last = page.events.last().unwrap();
    assert!(
        matches!(&last.event, EventBody::MemberLeft { user, by: Some(by), banned: false } if *user == bob.id && *by == alice.id),
        "{last:?}"
    );
    assert_eq!(alice.api.get_room(room.id).await.unwrap().member_count, 2);

    // A public room can be joined again after removal.
    bob.api.join(room.id).await.expect("rejoin public room");
}

async fn leave_room(backend: Backend) {
    let server = TestServer::start(backend).await;
    let alice = server.user("alice").await;
    let bob = server.user("bob").await;
    let room = shared_room(&alice, &[&bob]).await;

    bob.api.leave(room.id).await.expect("leave");
    assert!(bob.api.my_rooms().await.unwrap().is_empty());
    bob.api
        .send(room.id, &unique_id(), "hello?")
        .await
        .expect_code(ErrorCode::NotAMember);
    bob.api
        .history(room.id, None, None, None)
        .await
        .expect_code(ErrorCode::NotAMember);

    let members = alice.api.members(room.id).await.unwrap();
    assert_eq!(
        members.iter().map(|m| m.user.id).collect::<Vec<_>>(),
        vec![alice.id]
    );
    let page = alice.api.history(room.id, None, None, None).await.unwrap();
    let last = page.events.last().unwrap();
    assert!(
        matches!(&last.event, EventBody::MemberLeft { user, by: None, banned: false } if *user == bob.id),
        "{last:?}"
    );

    // Leaving a room one is not in.
    bob.api
        .leave(room.id)
        .await
        .expect_code(ErrorCode::NotAMember);
}

async fn owner_leaving_hands_over_ownership(backend: Backend) {
    let server = TestServer::start(backend).await;
    let alice = server.user("alice").await;
    let bob = server.user("bob").await;
    let room = shared_room(&alice, &[&bob]).await;

    alice.api.leave(room.id).await.expect("owner leaves");
    let members = bob.api.members(room.id).await.unwrap();
    assert_eq!(members.len(), 1);
    assert_eq!((members[0].user.id, members[0].role), (bob.id, Role::Owner));
    assert_eq!(
        bob.api.get_room(room.id).await.unwrap().role,
        Some(Role::Owner)
    );

    let events = bob.api.all_events(room.id).await.unwrap();
    assert!(
        events
            .iter()
            .any(|e| matches!(&e.event, EventBody::OwnerChanged { user } if *user == bob.id)),
        "{events:?}"
    );
    assert!(events
        .iter()
        .any(|e| matches!(&e.event, EventBody::MemberLeft { user, .. } if *user == alice.id)));
}

async fn direct_messages(backend: Backend) {
    let server = TestServer::start(backend).await;
    let alice = server.user("alice").await;
    let bob = server.user("bob").await;
    let carol = server.user("carol").await;

    let from_alice = alice.api.open_dm(bob.id).await.expect("open dm");
    assert_eq!(from_alice.kind, RoomKind::Direct);
    assert_eq!(from_alice.peer, Some(bob.id));
    assert_eq!(
        from_alice.name, bob.name,
        "a direct room is named after the other user"
    );
    assert_eq!(from_alice.member_count, 2);

    let from_bob = bob
        .api
        .open_dm(alice.id)
        .await
        .expect("open dm from the other side");
    assert_eq!(from_bob.id, from_alice.id, "same pair, same room");
    assert_eq!(from_bob.kind, RoomKind::Direct);
    assert_eq!(from_bob.peer, Some(alice.id));
    assert_eq!(from_bob.name, alice.name);

    assert_eq!(
        alice.api.open_dm(bob.id).await.unwrap().id,
        from_alice.id,
        "opening again is idempotent"
    );
    let other = alice.api.open_dm(carol.id).await.unwrap();
    assert_ne!(other.id, from_alice.id);

    // Both see it in their rooms; it is never public.
    assert!(ids(&bob.api.my_rooms().await.unwrap()).contains(&from_alice.id));
    assert!(!ids(&carol.api.public_rooms().await.unwrap()).contains(&from_alice.id));

    // Messages work both ways; outsiders are kept out.
    let ack = alice.api.say(from_alice.id, "hi bob").await;
    let page = bob
        .api
        .history(from_alice.id, None, Some(ack.seq - 1), None)
        .await
        .unwrap();
    assert_eq!(message_of(&page.events[0]).1, "hi bob");
    carol
        .api
        .history(from_alice.id, None, None, None)
        .await
        .expect_code(ErrorCode::NotAMember);
    carol
        .api
        .join(from_alice.id)
        .await
        .expect_code(ErrorCode::RoomNotFound);

    // Group-only operations.
    alice
        .api
        .invite(from_alice.id, carol.id)
        .await
        .expect_code(ErrorCode::DirectRoom);
    alice
        .api
        .leave(from_alice.id)
        .await
        .expect_code(ErrorCode::DirectRoom);
    alice
        .api
        .remove_member(from_alice.id, bob.id)
        .await
        .expect_code(ErrorCode::DirectRoom);

    alice
        .api
        .open_dm(UserId(9_999_999))
        .await
        .expect_code(ErrorCode::UserNotFound);
}

async fn bad_room_names(backend: Backend) {
    let server = TestServer::start(backend).await;
    let alice = server.user("alice").await;
    let too_long = "x".repeat(65);
    for bad in [
        "",
        " ",
        " x",
        "x ",
        "a\u{7}b",
        "line\nbreak",
        too_long.as_str(),
    ] {
        alice
            .api
            .create_room(bad, Visibility::Public)
            .await
            .expect_code(ErrorCode::InvalidRoomName);
    }
    assert!(alice.api.my_rooms().await.unwrap().is_empty());
    let longest = "é".repeat(64);
    alice
        .api
        .create_room(&longest, Visibility::Public)
        .await
        .expect("64 characters are fine");
}

async fn non_members_cannot_read_or_write(backend: Backend) {
    let server = TestServer::start(backend).await;
    let alice = server.user("alice").await;
    let bob = server.user("bob").await;
    let public = alice
        .api
        .create_room("Public", Visibility::Public)
        .await
        .unwrap();
    let private = alice
        .api
        .create_room("Private", Visibility::Private)
        .await
        .unwrap();
    let secret = alice.api.say(private.id, "secret").await;

    for room in [public.id, private.id, RoomId(9_999_999)] {
        bob.api
            .history(room, None, None, None)
            .await
            .expect_code(ErrorCode::NotAMember);
        bob.api
            .send(room, &unique_id(), "hi")
            .await
            .expect_code(ErrorCode::NotAMember);
        bob.api
            .mark_read(room, 1)
            .await
            .expect_code(ErrorCode::NotAMember);
    }
    bob.api
        .edit(private.id, secret.seq, "hacked")
        .await
        .expect_code(ErrorCode::NotAMember);
    bob.api
        .delete_message(private.id, secret.seq)
        .await
        .expect_code(ErrorCode::NotAMember);

    // Nothing changed.
    let events = alice.api.all_events(private.id).await.unwrap();
    assert_eq!(events.len(), 2);
    assert_eq!(message_of(&events[1]).1, "secret");
    assert_eq!(last_seq(&alice.api, public.id).await, 1);
}
