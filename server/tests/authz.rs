//! The authorization matrix: every REST endpoint and every socket frame, tried by a user who is
//! not a member of the room (or not the author of the message, or not the owner of the room),
//! is refused with its documented code, and the refusal carries nothing of the room: no name,
//! no message body, no member. A non-member's socket receives nothing of the room either
//! (messages, edits, typing, read markers, membership, presence of its members), also after
//! leaving it or being removed.

mod common;

use common::*;
use protocol::rest::Visibility;
use protocol::ws::Cursor;
use protocol::{ClientFrame, ErrorBody, ErrorCode, RoomId, ServerFrame, UserId};
use reqwest::Method;
use serde_json::{json, Value};

common::backend_tests!(
    cluster;
    rest_matrix_for_non_members,
    rest_matrix_for_members_who_are_not_author_or_owner,
    rest_without_a_token,
    socket_matrix_for_non_members,
    socket_matrix_for_members_who_are_not_authors,
    resume_cursors_for_foreign_rooms_replay_nothing,
    non_members_receive_nothing_of_the_room,
    no_events_after_leaving_or_being_removed,
    admin_routes_refuse_non_admins,
    account_routes_touch_only_the_callers_sessions,
);

/// Owner alice, member bob, outsider eve; a private room, a public room and alice–bob's direct
/// room, each holding a message whose body is a secret (and the private room's name too).
struct World {
    server: TestServer,
    alice: TestUser,
    bob: TestUser,
    eve: TestUser,
    private: RoomId,
    public: RoomId,
    direct: RoomId,
    /// A room id no room has.
    missing: RoomId,
    /// Seq of alice's secret message in each of private, public, direct.
    alice_msg: [u64; 3],
    /// Everything eve must never see: room name, message bodies, bob's user name.
    secrets: Vec<String>,
    /// A file alice attached to a message of the private room.
    alice_file: String,
    /// Where the server stores attachments.
    _files: tempfile::TempDir,
}

/// An attachment id no upload has.
const MISSING_FILE: &str = "0123456789abcdef0123456789abcdef";

/// `user` uploads `name` to `room` and attaches it to a message there; returns its id.
async fn attach_file(server: &TestServer, user: &TestUser, room: RoomId, name: &str) -> String {
    let resp = server
        .http()
        .post(format!("{}/api/v1/rooms/{room}/attachments", server.base))
        .query(&[("name", name)])
        .bearer_auth(&user.token)
        .body(b"%PDF-1.7\nsecret file".to_vec())
        .send()
        .await
        .expect("upload");
    assert_eq!(resp.status().as_u16(), 201);
    let att: protocol::Attachment = resp.json().await.expect("upload answer");
    let message = protocol::rest::SendMessage {
        id: unique_id(),
        body: "a file".into(),
        reply_to: None,
        mentions: Vec::new(),
        mention_room: false,
        attachments: vec![att.id.clone()],
    };
    user.api.send_message(room, &message).await.expect("attach");
    att.id
}

async fn world(backend: Backend) -> World {
    let files = tempfile::tempdir().expect("temp dir");
    let dir = files.path().to_path_buf();
    let server = TestServer::start_with(backend, |c| c.attachments.dir = Some(dir)).await;
    let alice = server.user("alice").await;
    let bob = server.user("bob").await;
    let eve = server.user("eve").await;
    let tag = unique_id();
    let private_name = format!("private {tag}");
    let private = alice
        .api
        .create_room(&private_name, Visibility::Private)
        .await
        .unwrap()
        .id;
    alice.api.invite(private, bob.id).await.unwrap();
    let public = shared_room(&alice, &[&bob]).await.id;
    let direct = alice.api.open_dm(bob.id).await.unwrap().id;
    let mut secrets = vec![private_name];
    let mut alice_msg = [0; 3];
    for (i, room) in [private, public, direct].into_iter().enumerate() {
        let body = format!("secret body {i} {tag}");
        alice_msg[i] = alice.api.say(room, &body).await.seq;
        let reply = format!("secret reply {i} {tag}");
        bob.api.say(room, &reply).await;
        secrets.push(body);
        secrets.push(reply);
    }
    // Eve may find users by name (the directory is public), but no refusal should carry them.
    secrets.push(bob.name.clone());
    let file_name = format!("secret file {tag}.pdf");
    let alice_file = attach_file(&server, &alice, private, &file_name).await;
    secrets.push(file_name);
    World {
        server,
        alice,
        bob,
        eve,
        private,
        public,
        direct,
        missing: RoomId(9_999_999),
        alice_msg,
        secrets,
        alice_file,
        _files: files,
    }
}

impl World {
    #[track_caller]
    fn assert_learns_nothing(&self, what: &str, text: &str) {
        for s in &self.secrets {
            assert!(!text.contains(s.as_str()), "{what} leaks {s:?}: {text}");
        }
    }

    /// `method path` by `api` is refused with `code` (and its HTTP status); the body is a bare
    /// `ErrorBody` that names nothing of the room. Returns the error message.
    async fn refused(
        &self,
        api: &Api,
        method: Method,
        path: &str,
        body: Option<Value>,
        code: ErrorCode,
    ) -> String {
        let what = format!("{method} {path}");
        let (status, text) = api.raw(method, path, body.map(RawBody::Json)).await;
        let err: ErrorBody = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("{what} -> {status}: not an ErrorBody ({e}): {text}"));
        assert_eq!(err.code, code, "{what}: {text}");
        assert_eq!(status, code.http_status(), "{what}: {text}");
        let fields: Value = serde_json::from_str(&text).unwrap();
        let keys: Vec<&String> = fields.as_object().unwrap().keys().collect();
        assert!(
            keys.iter()
                .all(|k| ["code", "message"].contains(&k.as_str())),
            "{what}: extra fields in the refusal: {text}"
        );
        self.assert_learns_nothing(&what, &text);
        err.message
    }
}

/// The REST operations on one room: (method, path, body) with `{room}` filled in.
fn room_requests(room: RoomId, seq: u64, other: UserId) -> Vec<(Method, String, Option<Value>)> {
    let r = room;
    vec![
        (Method::POST, format!("/api/v1/rooms/{r}/leave"), None),
        (
            Method::POST,
            format!("/api/v1/rooms/{r}/attachments?name=x.txt"),
            None,
        ),
        (Method::GET, format!("/api/v1/rooms/{r}/members"), None),
        (
            Method::POST,
            format!("/api/v1/rooms/{r}/members"),
            Some(json!({"user": other})),
        ),
        (
            Method::DELETE,
            format!("/api/v1/rooms/{r}/members/{other}"),
            None,
        ),
        (Method::GET, format!("/api/v1/rooms/{r}/events"), None),
        (
            Method::GET,
            format!("/api/v1/rooms/{r}/events?after=0&limit=100"),
            None,
        ),
        (
            Method::POST,
            format!("/api/v1/rooms/{r}/messages"),
            Some(json!({"id": unique_id(), "body": "let me in"})),
        ),
        // Mentions (issue 13): mentioning members, and @room.
        (
            Method::POST,
            format!("/api/v1/rooms/{r}/messages"),
            Some(
                json!({"id": unique_id(), "body": "@all", "mentions": [other], "mention_room": true}),
            ),
        ),
        (
            Method::PATCH,
            format!("/api/v1/rooms/{r}/messages/{seq}"),
            Some(json!({"body": "hacked"})),
        ),
        (
            Method::DELETE,
            format!("/api/v1/rooms/{r}/messages/{seq}"),
            None,
        ),
        (
            Method::PUT,
            format!("/api/v1/rooms/{r}/read"),
            Some(json!({"seq": seq})),
        ),
        // Reactions (issue 13).
        (
            Method::PUT,
            format!("/api/v1/rooms/{r}/messages/{seq}/reactions/%F0%9F%91%8D"),
            None,
        ),
        (
            Method::DELETE,
            format!("/api/v1/rooms/{r}/messages/{seq}/reactions/%F0%9F%91%8D"),
            None,
        ),
        // Room settings (issue 13).
        (
            Method::PATCH,
            format!("/api/v1/rooms/{r}"),
            Some(json!({"name": "taken over", "topic": "mine"})),
        ),
        (Method::DELETE, format!("/api/v1/rooms/{r}"), None),
        (
            Method::PUT,
            format!("/api/v1/rooms/{r}/notify"),
            Some(json!({"level": "none"})),
        ),
        // Moderation (issue 11).
        (Method::GET, format!("/api/v1/rooms/{r}/bans"), None),
        (Method::PUT, format!("/api/v1/rooms/{r}/bans/{other}"), None),
        (
            Method::DELETE,
            format!("/api/v1/rooms/{r}/bans/{other}"),
            None,
        ),
    ]
}

/// Every room endpoint, by an outsider, on the private, public, direct and a missing room.
async fn rest_matrix_for_non_members(backend: Backend) {
    let w = world(backend).await;
    let eve = &w.eve.api;
    let rooms = [
        (w.private, w.alice_msg[0]),
        (w.public, w.alice_msg[1]),
        (w.direct, w.alice_msg[2]),
        (w.missing, 1),
    ];
    for (room, seq) in rooms {
        // Eve even tries to act on others and on herself (inviting herself, removing bob).
        for other in [w.bob.id, w.eve.id] {
            for (method, path, body) in room_requests(room, seq, other) {
                w.refused(eve, method, &path, body, ErrorCode::NotAMember)
                    .await;
            }
        }
    }
    // Reading or joining a private or direct room: indistinguishable from a missing room.
    let missing_get = w
        .refused(
            eve,
            Method::GET,
            &format!("/api/v1/rooms/{}", w.missing),
            None,
            ErrorCode::RoomNotFound,
        )
        .await;
    let missing_join = w
        .refused(
            eve,
            Method::POST,
            &format!("/api/v1/rooms/{}/join", w.missing),
            None,
            ErrorCode::RoomNotFound,
        )
        .await;
    for room in [w.private, w.direct] {
        let get = w
            .refused(
                eve,
                Method::GET,
                &format!("/api/v1/rooms/{room}"),
                None,
                ErrorCode::RoomNotFound,
            )
            .await;
        assert_eq!(
            get, missing_get,
            "a private room must look like a missing one"
        );
        let join = w
            .refused(
                eve,
                Method::POST,
                &format!("/api/v1/rooms/{room}/join"),
                None,
                ErrorCode::RoomNotFound,
            )
            .await;
        assert_eq!(join, missing_join);
    }
    // A file of a room eve is not in answers exactly as a file that does not exist.
    for tail in ["", "/thumbnail"] {
        let missing = w
            .refused(
                eve,
                Method::GET,
                &format!("/api/v1/attachments/{MISSING_FILE}{tail}"),
                None,
                ErrorCode::AttachmentNotFound,
            )
            .await;
        let foreign = w
            .refused(
                eve,
                Method::GET,
                &format!("/api/v1/attachments/{}{tail}", w.alice_file),
                None,
                ErrorCode::AttachmentNotFound,
            )
            .await;
        assert_eq!(
            foreign, missing,
            "a foreign file must look like a missing one"
        );
    }
    // Nor can she attach it to a message of her own room.
    let own = eve
        .create_room("eve's", Visibility::Public)
        .await
        .unwrap()
        .id;
    w.refused(
        eve,
        Method::POST,
        &format!("/api/v1/rooms/{own}/messages"),
        Some(json!({"id": unique_id(), "body": "mine now", "attachments": [w.alice_file]})),
        ErrorCode::AttachmentNotFound,
    )
    .await;

    // A public room shows its card (name, counts) but no message and no member.
    let (status, text) = eve
        .raw(Method::GET, &format!("/api/v1/rooms/{}", w.public), None)
        .await;
    assert_eq!(status, 200, "{text}");
    w.assert_learns_nothing("a public room's card", &text);
    let card: protocol::rest::Room = serde_json::from_str(&text).unwrap();
    assert_eq!((card.role, card.read_seq, card.unread), (None, 0, 0));

    // Listings: her rooms are none of these; the public list has no private or direct room.
    for path in ["/api/v1/rooms", "/api/v1/rooms/public"] {
        let (status, text) = eve.raw(Method::GET, path, None).await;
        assert_eq!(status, 200, "{text}");
        w.assert_learns_nothing(path, &text);
        let rooms: Vec<protocol::rest::Room> = serde_json::from_str(&text).unwrap();
        for r in &rooms {
            assert!(
                r.id != w.private && r.id != w.direct,
                "{path} lists a room eve is not in: {r:?}"
            );
        }
    }

    // Sessions belong to their user: eve cannot revoke alice's, and alice's still works.
    w.refused(
        eve,
        Method::DELETE,
        &format!("/api/v1/sessions/{}", w.alice.session_id),
        None,
        ErrorCode::SessionNotFound,
    )
    .await;
    let (status, text) = eve.raw(Method::GET, "/api/v1/sessions", None).await;
    assert_eq!(status, 200);
    assert!(!text.contains(&w.alice.session_id), "{text}");
    w.alice.api.me().await.expect("alice's session survives");

    // Opening a DM with bob makes a new room: never alice and bob's.
    let dm = eve.open_dm(w.bob.id).await.unwrap();
    assert_ne!(dm.id, w.direct);
    let events = eve.all_events(dm.id).await.unwrap();
    assert!(
        events
            .iter()
            .all(|e| !matches!(e.event, protocol::EventBody::Message { .. })),
        "a fresh DM has no messages: {events:?}"
    );

    // Nothing changed anywhere.
    for (i, room) in [w.private, w.public, w.direct].into_iter().enumerate() {
        let events = w.alice.api.all_events(room).await.unwrap();
        let msg = events.iter().find(|e| e.seq == w.alice_msg[i]).unwrap();
        assert!(message_of(msg).1.starts_with("secret body"), "{msg:?}");
        assert!(
            events.iter().all(|e| !matches!(&e.event,
                protocol::EventBody::MemberJoined { user, .. } if *user == w.eve.id)),
            "eve got into room {room}"
        );
    }
    let members = w.alice.api.members(w.private).await.unwrap();
    assert_eq!(members.len(), 2, "{members:?}");
}

/// Bob is a member, but not the author of alice's messages and not the owner.
async fn rest_matrix_for_members_who_are_not_author_or_owner(backend: Backend) {
    let w = world(backend).await;
    let bob = &w.bob.api;
    for (i, room) in [w.private, w.public, w.direct].into_iter().enumerate() {
        let seq = w.alice_msg[i];
        w.refused(
            bob,
            Method::PATCH,
            &format!("/api/v1/rooms/{room}/messages/{seq}"),
            Some(json!({"body": "rewritten by bob"})),
            ErrorCode::NotAuthor,
        )
        .await;
        w.refused(
            bob,
            Method::DELETE,
            &format!("/api/v1/rooms/{room}/messages/{seq}"),
            None,
            ErrorCode::NotAuthor,
        )
        .await;
    }
    // Private room: only the owner invites or removes.
    w.refused(
        bob,
        Method::POST,
        &format!("/api/v1/rooms/{}/members", w.private),
        Some(json!({"user": w.eve.id})),
        ErrorCode::NotOwner,
    )
    .await;
    for room in [w.private, w.public] {
        w.refused(
            bob,
            Method::DELETE,
            &format!("/api/v1/rooms/{room}/members/{}", w.alice.id),
            None,
            ErrorCode::NotOwner,
        )
        .await;
        // Only the owner bans, unbans or lists bans (issue 11).
        for (method, path) in [
            (
                Method::PUT,
                format!("/api/v1/rooms/{room}/bans/{}", w.alice.id),
            ),
            (
                Method::PUT,
                format!("/api/v1/rooms/{room}/bans/{}", w.eve.id),
            ),
            (
                Method::DELETE,
                format!("/api/v1/rooms/{room}/bans/{}", w.eve.id),
            ),
            (Method::GET, format!("/api/v1/rooms/{room}/bans")),
            // Only the owner renames, sets the topic or deletes (issue 13).
            (Method::DELETE, format!("/api/v1/rooms/{room}")),
        ] {
            w.refused(bob, method, &path, None, ErrorCode::NotOwner)
                .await;
        }
        w.refused(
            bob,
            Method::PATCH,
            &format!("/api/v1/rooms/{room}"),
            Some(json!({"name": "bob's now", "topic": "bob's"})),
            ErrorCode::NotOwner,
        )
        .await;
    }
    // Direct rooms have exactly their two members.
    for (method, path, body) in [
        (
            Method::POST,
            format!("/api/v1/rooms/{}/members", w.direct),
            Some(json!({"user": w.eve.id})),
        ),
        (
            Method::DELETE,
            format!("/api/v1/rooms/{}/members/{}", w.direct, w.alice.id),
            None,
        ),
        (
            Method::POST,
            format!("/api/v1/rooms/{}/leave", w.direct),
            None,
        ),
        (
            Method::PUT,
            format!("/api/v1/rooms/{}/bans/{}", w.direct, w.eve.id),
            None,
        ),
        (
            Method::PATCH,
            format!("/api/v1/rooms/{}", w.direct),
            Some(json!({"topic": "ours"})),
        ),
        (Method::DELETE, format!("/api/v1/rooms/{}", w.direct), None),
    ] {
        w.refused(
            bob,
            method.clone(),
            &path,
            body.clone(),
            ErrorCode::DirectRoom,
        )
        .await;
        w.refused(&w.alice.api, method, &path, body, ErrorCode::DirectRoom)
            .await;
    }
    // Nothing changed: messages intact, eve not let in, alice still a member everywhere.
    for (i, room) in [w.private, w.public, w.direct].into_iter().enumerate() {
        let events = w.alice.api.all_events(room).await.unwrap();
        let msg = events.iter().find(|e| e.seq == w.alice_msg[i]).unwrap();
        assert!(message_of(msg).1.starts_with("secret body"), "{msg:?}");
        assert!(
            events
                .iter()
                .all(|e| !matches!(e.event, protocol::EventBody::RoomUpdated { .. })),
            "room {room} was renamed: {events:?}"
        );
        let members = w.alice.api.members(room).await.unwrap();
        assert_eq!(members.len(), 2, "room {room}: {members:?}");
    }
}

/// Every endpoint that needs a session refuses a request without one (or with a bad one).
async fn rest_without_a_token(backend: Backend) {
    let w = world(backend).await;
    let mut requests = room_requests(w.private, w.alice_msg[0], w.bob.id);
    let p = w.private;
    requests.extend([
        (Method::POST, "/api/v1/logout".to_string(), None),
        (Method::GET, "/api/v1/me".to_string(), None),
        (
            Method::PATCH,
            "/api/v1/me".to_string(),
            Some(json!({"display_name": "nobody"})),
        ),
        (Method::GET, "/api/v1/sessions".to_string(), None),
        (
            Method::DELETE,
            format!("/api/v1/sessions/{}", w.alice.session_id),
            None,
        ),
        (Method::GET, "/api/v1/users?q=bob".to_string(), None),
        (Method::GET, format!("/api/v1/users/{}", w.bob.id), None),
        (Method::GET, "/api/v1/rooms".to_string(), None),
        (Method::GET, "/api/v1/rooms/public".to_string(), None),
        (
            Method::POST,
            "/api/v1/rooms".to_string(),
            Some(json!({"name": "x", "visibility": "public"})),
        ),
        (Method::GET, format!("/api/v1/rooms/{p}"), None),
        (Method::POST, format!("/api/v1/rooms/{p}/join"), None),
        (
            Method::POST,
            "/api/v1/dms".to_string(),
            Some(json!({"user": w.bob.id})),
        ),
        (Method::GET, "/api/v1/blocks".to_string(), None),
        (
            Method::GET,
            format!("/api/v1/attachments/{}", w.alice_file),
            None,
        ),
        (
            Method::GET,
            format!("/api/v1/attachments/{}/thumbnail", w.alice_file),
            None,
        ),
        (Method::PUT, format!("/api/v1/blocks/{}", w.bob.id), None),
        (Method::DELETE, format!("/api/v1/blocks/{}", w.bob.id), None),
    ]);
    requests.extend(account_requests());
    requests.extend(admin_requests(w.bob.id));
    let anonymous = w.server.api();
    let forged = w.server.api_with("not-a-token");
    for (method, path, body) in requests {
        for api in [&anonymous, &forged] {
            w.refused(
                api,
                method.clone(),
                &path,
                body.clone(),
                ErrorCode::Unauthorized,
            )
            .await;
        }
    }
    w.alice.api.me().await.expect("alice's session survives");
}

/// Sends `frame` on eve's socket and expects an `error` with `code` that names nothing.
async fn frame_refused(w: &World, ws: &mut Ws, frame: ClientFrame, code: ErrorCode) {
    let what = format!("{frame:?}");
    ws.send_frame(&frame).await;
    let err = ws.expect_error().await;
    assert_eq!(err.code, code, "{what}: {err:?}");
    w.assert_learns_nothing(&what, &format!("{err:?}"));
}

/// Every frame that names a room, by an outsider, on each room she is not in.
async fn socket_matrix_for_non_members(backend: Backend) {
    let w = world(backend).await;
    let mut eve = w.server.ws(&w.eve).await;
    w.assert_learns_nothing("eve's welcome", &format!("{:?}", eve.welcome()));
    let rooms = [
        (w.private, w.alice_msg[0]),
        (w.public, w.alice_msg[1]),
        (w.direct, w.alice_msg[2]),
        (w.missing, 1),
    ];
    for (room, seq) in rooms {
        let id = unique_id();
        let r = Some(format!("ref-{id}"));
        frame_refused(
            &w,
            &mut eve,
            ClientFrame::Send {
                room,
                id: id.clone(),
                body: "let me in".into(),
                reply_to: None,
                mentions: vec![],
                mention_room: false,
                attachments: Vec::new(),
            },
            ErrorCode::NotAMember,
        )
        .await;
        // Mentioning members of the room, or all of them (issue 13).
        frame_refused(
            &w,
            &mut eve,
            ClientFrame::Send {
                room,
                id: unique_id(),
                body: "@room @bob".into(),
                reply_to: Some(seq),
                mentions: vec![w.bob.id],
                mention_room: true,
                attachments: Vec::new(),
            },
            ErrorCode::NotAMember,
        )
        .await;
        // Attaching the room's file to a message of the room (issue 14).
        frame_refused(
            &w,
            &mut eve,
            ClientFrame::Send {
                room,
                id: unique_id(),
                body: "mine".into(),
                reply_to: None,
                mentions: vec![],
                mention_room: false,
                attachments: vec![w.alice_file.clone()],
            },
            ErrorCode::NotAMember,
        )
        .await;
        let frames = [
            ClientFrame::Edit {
                room,
                seq,
                body: "hacked".into(),
                reference: r.clone(),
            },
            ClientFrame::Delete {
                room,
                seq,
                reference: r.clone(),
            },
            ClientFrame::React {
                room,
                seq,
                emoji: "👍".into(),
                remove: false,
                reference: r.clone(),
            },
            ClientFrame::React {
                room,
                seq,
                emoji: "👍".into(),
                remove: true,
                reference: r.clone(),
            },
            ClientFrame::Typing { room },
            ClientFrame::Read { room, seq },
            ClientFrame::History {
                room,
                before: None,
                after: Some(0),
                limit: Some(100),
                reference: r.clone(),
            },
            ClientFrame::History {
                room,
                before: Some(seq + 1),
                after: None,
                limit: None,
                reference: None,
            },
        ];
        for frame in frames {
            frame_refused(&w, &mut eve, frame, ErrorCode::NotAMember).await;
        }
    }
    // Nothing else arrived, and nothing changed.
    let rest = eve.sync().await;
    w.assert_learns_nothing("eve's socket", &format!("{rest:?}"));
    assert!(
        rest.iter().all(|f| !matches!(f, ServerFrame::Event(_))),
        "{rest:?}"
    );
    let events = w.alice.api.all_events(w.private).await.unwrap();
    assert_eq!(
        events.len(),
        5,
        "join, invite, two messages, one with a file: {events:?}"
    );
    let read = w.alice.api.my_room(w.private).await;
    assert!(read.read_seq <= events.len() as u64);
}

/// Bob, a member, may not edit or delete alice's messages over the socket either.
async fn socket_matrix_for_members_who_are_not_authors(backend: Backend) {
    let w = world(backend).await;
    let mut bob = w.server.ws(&w.bob).await;
    for (i, room) in [w.private, w.public, w.direct].into_iter().enumerate() {
        let seq = w.alice_msg[i];
        for frame in [
            ClientFrame::Edit {
                room,
                seq,
                body: "rewritten".into(),
                reference: Some(unique_id()),
            },
            ClientFrame::Delete {
                room,
                seq,
                reference: Some(unique_id()),
            },
        ] {
            bob.send_frame(&frame).await;
            let err = bob.expect_error().await;
            assert_eq!(err.code, ErrorCode::NotAuthor, "{frame:?}: {err:?}");
        }
        let events = w.alice.api.all_events(room).await.unwrap();
        let msg = events.iter().find(|e| e.seq == seq).unwrap();
        assert!(message_of(msg).1.starts_with("secret body"), "{msg:?}");
    }
    let rest = bob.sync().await;
    assert!(
        rest.iter().all(|f| !matches!(f, ServerFrame::Event(_))),
        "no edit or delete event: {rest:?}"
    );
}

/// A `hello` whose resume names rooms eve is not in replays nothing of them.
async fn resume_cursors_for_foreign_rooms_replay_nothing(backend: Backend) {
    let w = world(backend).await;
    let resume = [w.private, w.public, w.direct, w.missing]
        .into_iter()
        .map(|room| Cursor { room, seq: 0 })
        .collect();
    let (mut eve, replay) = w.server.ws_resume(&w.eve, resume).await;
    assert!(replay.is_empty(), "replayed to a non-member: {replay:?}");
    let welcome = format!("{:?}", eve.welcome());
    w.assert_learns_nothing("welcome", &welcome);
    assert!(eve.welcome().rooms.is_empty(), "{welcome}");
    let rest = eve.sync().await;
    assert!(rest.is_empty(), "{rest:?}");
}

/// Traffic of every kind in the three rooms while eve is connected: she receives none of it.
async fn non_members_receive_nothing_of_the_room(backend: Backend) {
    let w = world(backend).await;
    let carol = w.server.user("carol").await;
    let mut eve = w.server.ws(&w.eve).await;
    let mut alice = w.server.ws(&w.alice).await;
    // Bob comes online while eve watches: presence goes to those who share a room with him.
    let mut bob = w.server.ws(&w.bob).await;
    for room in [w.private, w.public, w.direct] {
        let ack = bob.say(room, &format!("live secret {}", unique_id())).await;
        alice.events_until(room, ack.seq).await;
        bob.send_frame(&ClientFrame::Typing { room }).await;
        alice
            .take(
                "bob typing",
                |f| matches!(f, ServerFrame::Typing { room: r, .. } if *r == room),
            )
            .await;
        bob.send_frame(&ClientFrame::React {
            room,
            seq: ack.seq,
            emoji: "🤫".into(),
            remove: false,
            reference: None,
        })
        .await;
        bob.send_frame(&ClientFrame::Edit {
            room,
            seq: ack.seq,
            body: "live secret, edited".into(),
            reference: None,
        })
        .await;
        bob.send_frame(&ClientFrame::Delete {
            room,
            seq: ack.seq,
            reference: None,
        })
        .await;
        bob.send_frame(&ClientFrame::Read { room, seq: ack.seq })
            .await;
        let last = alice.events_until(room, ack.seq + 3).await;
        assert_eq!(
            last.len(),
            3,
            "reaction, edit and delete reach alice: {last:?}"
        );
    }
    // Membership changes of the private room.
    w.alice.api.invite(w.private, carol.id).await.unwrap();
    w.alice
        .api
        .remove_member(w.private, carol.id)
        .await
        .unwrap();
    let seq = last_seq(&w.alice.api, w.private).await;
    alice.events_until(w.private, seq).await;
    bob.close().await;
    alice
        .take("bob offline", |f| {
            matches!(f, ServerFrame::Presence { online: false, .. })
        })
        .await;

    let got = eve.sync().await;
    let about_them: Vec<&ServerFrame> = got
        .iter()
        .filter(|f| match f {
            ServerFrame::Event(e) => [w.private, w.public, w.direct].contains(&e.room),
            ServerFrame::Typing { .. } | ServerFrame::ReadMarker { .. } => true,
            ServerFrame::Presence { user, .. } => *user == w.bob.id || *user == w.alice.id,
            _ => false,
        })
        .collect();
    assert!(about_them.is_empty(), "eve received: {about_them:#?}");
    w.assert_learns_nothing("eve's socket", &format!("{got:?}"));
}

/// Leaving a room, or being removed from it, ends its stream on every socket of that user.
async fn no_events_after_leaving_or_being_removed(backend: Backend) {
    let w = world(backend).await;
    let carol = w.server.user("carol").await;
    w.alice.api.invite(w.private, carol.id).await.unwrap();
    carol.api.join(w.public).await.unwrap();
    let mut c1 = w.server.ws(&carol).await;
    let mut c2 = w.server.ws(&carol).await;
    let mut alice = w.server.ws(&w.alice).await;

    carol.api.leave(w.public).await.unwrap();
    w.alice
        .api
        .remove_member(w.private, carol.id)
        .await
        .unwrap();
    for ws in [&mut c1, &mut c2] {
        // Each socket sees its own departure, and then nothing of either room.
        for room in [w.public, w.private] {
            ws.take("carol leaving", |f| {
                matches!(f, ServerFrame::Event(e) if e.room == room
                    && matches!(&e.event, protocol::EventBody::MemberLeft { user, .. } if *user == carol.id))
            })
            .await;
        }
    }
    let mut after = Vec::new();
    for room in [w.public, w.private] {
        let body = format!("after carol left {}", unique_id());
        let ack = alice.say(room, &body).await;
        alice.events_until(room, ack.seq).await;
        alice.send_frame(&ClientFrame::Typing { room }).await;
        after.push(body);
    }
    for ws in [&mut c1, &mut c2] {
        let got = ws.sync().await;
        let leaked: Vec<&ServerFrame> = got
            .iter()
            .filter(|f| match f {
                ServerFrame::Event(e) => e.room == w.public || e.room == w.private,
                ServerFrame::Typing { room, .. } => *room == w.public || *room == w.private,
                _ => false,
            })
            .collect();
        assert!(
            leaked.is_empty(),
            "[{}] after leaving: {leaked:#?}",
            ws.label
        );
        for body in &after {
            assert!(!format!("{got:?}").contains(body.as_str()), "{got:?}");
        }
    }
    // And the REST side agrees.
    for room in [w.public, w.private] {
        carol
            .api
            .history(room, None, None, None)
            .await
            .expect_code(ErrorCode::NotAMember);
    }
}

/// The account routes that act on the caller's own sessions.
fn account_requests() -> Vec<(Method, String, Option<Value>)> {
    vec![
        (
            Method::POST,
            "/api/v1/password".to_string(),
            Some(json!({"current": PASSWORD, "new": "a new password here"})),
        ),
        (Method::POST, "/api/v1/logout/all".to_string(), None),
    ]
}

/// Every admin route, with a valid body, aimed at `target`.
fn admin_requests(target: UserId) -> Vec<(Method, String, Option<Value>)> {
    vec![
        (Method::GET, "/api/v1/admin/users".to_string(), None),
        (
            Method::POST,
            "/api/v1/admin/users".to_string(),
            Some(json!({"username": "mallory", "password": PASSWORD, "admin": true})),
        ),
        (
            Method::PATCH,
            format!("/api/v1/admin/users/{target}"),
            Some(json!({"admin": true, "disabled": false})),
        ),
        (
            Method::PATCH,
            format!("/api/v1/admin/users/{target}"),
            Some(json!({"disabled": true})),
        ),
        (
            Method::PUT,
            format!("/api/v1/admin/users/{target}/password"),
            Some(json!({"password": "taken over account"})),
        ),
        (
            Method::POST,
            "/api/v1/admin/invites".to_string(),
            Some(json!({"uses": 5})),
        ),
        (Method::GET, "/api/v1/admin/export".to_string(), None),
    ]
}

/// Alice, the server's first account, is its admin; Bob and Eve are not. Every admin route is
/// refused to them with `403 not_admin` (also a malformed body: the role is checked first),
/// aimed at themselves or at Alice, and nothing happened: no account made, nobody disabled,
/// no password changed.
async fn admin_routes_refuse_non_admins(backend: Backend) {
    let w = world(backend).await;
    assert!(w.alice.api.me().await.unwrap().admin);
    for user in [&w.bob, &w.eve] {
        for target in [w.alice.id, user.id] {
            for (method, path, body) in admin_requests(target) {
                w.refused(&user.api, method, &path, body, ErrorCode::NotAdmin)
                    .await;
            }
        }
        w.refused(
            &user.api,
            Method::POST,
            "/api/v1/admin/users",
            Some(json!({"nonsense": 1})),
            ErrorCode::NotAdmin,
        )
        .await;
    }
    w.alice
        .api
        .me()
        .await
        .expect("alice not disabled, password unchanged");
    w.server
        .api()
        .login(&w.alice.name, PASSWORD, None)
        .await
        .expect("alice's password unchanged");
    w.server
        .api()
        .login("mallory", PASSWORD, None)
        .await
        .expect_code(ErrorCode::InvalidCredentials);
    assert!(!w.bob.api.me().await.unwrap().admin);
}

/// Session listing, password change and sign-out-everywhere act on the caller's own account
/// only: Eve sees only her sessions, cannot end Alice's, and her sign-out leaves Alice's
/// sessions and sockets alone.
async fn account_routes_touch_only_the_callers_sessions(backend: Backend) {
    let w = world(backend).await;
    let alice_phone = w.server.login(&w.alice, "Phone").await;
    let mut alice_ws = w.server.ws(&alice_phone).await;
    let eve_sessions = w.eve.api.sessions().await.unwrap();
    assert_eq!(
        eve_sessions
            .iter()
            .map(|s| s.id.clone())
            .collect::<Vec<_>>(),
        vec![w.eve.session_id.clone()]
    );
    let text = serde_json::to_string(&eve_sessions).unwrap();
    assert!(!text.contains(&w.alice.session_id) && !text.contains(&alice_phone.session_id));
    w.refused(
        &w.eve.api,
        Method::DELETE,
        &format!("/api/v1/sessions/{}", alice_phone.session_id),
        None,
        ErrorCode::SessionNotFound,
    )
    .await;
    // Eve's own password change with Alice's password is just a wrong password.
    w.refused(
        &w.eve.api,
        Method::POST,
        "/api/v1/password",
        Some(json!({"current": "alice's is not hers", "new": "a new password here"})),
        ErrorCode::WrongPassword,
    )
    .await;
    w.eve
        .api
        .logout_all()
        .await
        .expect("eve signs out everywhere");
    w.eve.api.me().await.expect_code(ErrorCode::Unauthorized);
    alice_ws.sync().await;
    w.alice.api.me().await.expect("alice's sessions survive");
    alice_phone.api.me().await.expect("alice's phone survives");
}
