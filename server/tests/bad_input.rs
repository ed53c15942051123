//! Bad input on the socket and over HTTP: the right error code, the connection survives
//! (unless the protocol says it closes), earlier data survives, and the server keeps serving.

mod common;

use common::*;
use protocol::rest::{SendAck, Visibility};
use protocol::ws::Cursor;
use protocol::{ClientFrame, ErrorBody, ErrorCode, RoomId, ServerFrame};
use serde_json::json;
use tokio_tungstenite::tungstenite;

common::backend_tests!(
    malformed_json,
    unknown_frame_type,
    binary_frame,
    message_too_large,
    invalid_message_and_client_id,
    send_to_a_room_one_is_not_in,
    frames_before_hello,
    second_hello,
    bad_token_in_hello,
    oversized_frame_closes_with_1009,
    origin_allowlist,
    origin_rejected_when_no_allowlist,
    bad_http_bodies,
    message_rate_limit,
);

/// A user with a room, one delivered message and an authenticated socket.
struct Setup {
    server: TestServer,
    alice: TestUser,
    room: RoomId,
    first: SendAck,
    ws: Ws,
}

async fn setup(backend: Backend) -> Setup {
    setup_with(backend, |_| {}).await
}

async fn setup_with(backend: Backend, configure: impl FnOnce(&mut chat_server::Config)) -> Setup {
    let server = TestServer::start_with(backend, configure).await;
    let alice = server.user("alice").await;
    let room = alice
        .api
        .create_room("bad input", Visibility::Public)
        .await
        .unwrap()
        .id;
    let mut ws = server.ws(&alice).await;
    let first = ws.say(room, "first").await;
    assert_eq!(ws.expect_event().await.seq, first.seq);
    Setup {
        server,
        alice,
        room,
        first,
        ws,
    }
}

impl Setup {
    /// The socket still sends and receives, and the first message is still stored.
    async fn assert_alive(&mut self) {
        let ack = self.ws.say(self.room, "still alive").await;
        assert!(!ack.duplicate);
        // Other events may be pending (the test's own traffic); find this one.
        let frame = self
            .ws
            .take(
                "the event of the liveness message",
                |f| matches!(f, ServerFrame::Event(e) if e.seq == ack.seq),
            )
            .await;
        let ServerFrame::Event(ev) = frame else {
            unreachable!()
        };
        assert_eq!(message_of(&ev).1, "still alive");
        self.assert_data_survives().await;
    }

    async fn assert_data_survives(&self) {
        let events = self.alice.api.all_events(self.room).await.expect("history");
        let first = events
            .iter()
            .find(|e| e.seq == self.first.seq)
            .expect("first message still stored");
        assert_eq!(message_of(first), (self.first.id.as_str(), "first"));
        let (status, _) = self
            .server
            .api()
            .raw(reqwest::Method::GET, "/healthz", None)
            .await;
        assert_eq!(status, 200, "server still healthy");
    }
}

async fn malformed_json(backend: Backend) {
    let mut s = setup(backend).await;
    for bad in [
        "{not json",
        "",
        "[1, 2, 3]",
        "\"hello\"",
        r#"{"type":"send","room":1}"#,
        r#"{"type":"send","room":"one","id":"x","body":"y"}"#,
        r#"{"type":"ping","ref":42}"#,
    ] {
        s.ws.send_text(bad).await;
        let err = s.ws.expect_error().await;
        assert_eq!(err.code, ErrorCode::MalformedFrame, "for {bad:?}: {err:?}");
        assert!(!err.message.is_empty());
    }
    s.assert_alive().await;
}

async fn unknown_frame_type(backend: Backend) {
    let mut s = setup(backend).await;
    s.ws.send_text(r#"{"type":"dance","room":1}"#).await;
    s.ws.expect_error_code(ErrorCode::UnknownFrame).await;
    s.ws.send_text(r#"{"type":"welcome"}"#).await; // a server frame type, not a client one
    s.ws.expect_error_code(ErrorCode::UnknownFrame).await;
    s.assert_alive().await;
}

async fn binary_frame(backend: Backend) {
    let mut s = setup(backend).await;
    let json = serde_json::to_vec(&ClientFrame::Send {
        room: s.room,
        id: unique_id(),
        body: "as binary".into(),
        reply_to: None,
        mentions: vec![],
        mention_room: false,
        attachments: Vec::new(),
    })
    .unwrap();
    s.ws.send_binary(json).await;
    s.ws.expect_error_code(ErrorCode::BinaryNotSupported).await;
    s.ws.send_binary(vec![0, 159, 146, 150]).await;
    s.ws.expect_error_code(ErrorCode::BinaryNotSupported).await;
    s.assert_alive().await;
    // The binary frame was not treated as a message.
    let events = s.alice.api.all_events(s.room).await.unwrap();
    assert!(!events.iter().any(
        |e| matches!(&e.event, protocol::EventBody::Message { body, .. } if body == "as binary")
    ));
}

async fn message_too_large(backend: Backend) {
    let mut s = setup(backend).await;
    let max = s.ws.welcome().limits.max_message_bytes;
    assert_eq!(max, s.server.limits.max_message_bytes);

    let id = unique_id();
    s.ws.send_frame(&ClientFrame::Send {
        room: s.room,
        id: id.clone(),
        body: "x".repeat(max + 1),
        reply_to: None,
        mentions: vec![],
        mention_room: false,
        attachments: Vec::new(),
    })
    .await;
    let err =
        s.ws.await_ack(s.room, &id)
            .await
            .expect_err("one byte over the limit is refused");
    assert_eq!(
        (err.code, err.room, err.id.as_deref()),
        (ErrorCode::PayloadTooLarge, Some(s.room), Some(id.as_str()))
    );

    // Multi-byte characters count in bytes.
    let id = unique_id();
    s.ws.send_frame(&ClientFrame::Send {
        room: s.room,
        id: id.clone(),
        body: "é".repeat(max / 2 + 1),
        reply_to: None,
        mentions: vec![],
        mention_room: false,
        attachments: Vec::new(),
    })
    .await;
    let err =
        s.ws.await_ack(s.room, &id)
            .await
            .expect_err("bytes, not characters");
    assert_eq!(err.code, ErrorCode::PayloadTooLarge);

    // Exactly the limit is fine.
    let ack =
        s.ws.send_with_id(s.room, &unique_id(), &"y".repeat(max))
            .await;
    let ev = s.ws.expect_event().await;
    assert_eq!((ev.seq, message_of(&ev).1.len()), (ack.seq, max));

    // Over HTTP too.
    s.alice
        .api
        .send(s.room, &unique_id(), &"x".repeat(max + 1))
        .await
        .expect_code(ErrorCode::PayloadTooLarge);
    s.alice
        .api
        .edit(s.room, ack.seq, &"x".repeat(max + 1))
        .await
        .expect_code(ErrorCode::PayloadTooLarge);
    s.assert_alive().await;
}

async fn invalid_message_and_client_id(backend: Backend) {
    let mut s = setup(backend).await;
    for body in ["", "   ", "\n\t", "bell \u{7}"] {
        let id = unique_id();
        s.ws.send_frame(&ClientFrame::Send {
            room: s.room,
            id: id.clone(),
            body: body.into(),
            reply_to: None,
            mentions: vec![],
            mention_room: false,
            attachments: Vec::new(),
        })
        .await;
        let err =
            s.ws.await_ack(s.room, &id)
                .await
                .expect_err("invalid body refused");
        assert_eq!(
            (err.code, err.room),
            (ErrorCode::InvalidMessage, Some(s.room)),
            "{body:?}"
        );
    }
    for id in ["", "has space", "ü", &"x".repeat(65)] {
        s.ws.send_frame(&ClientFrame::Send {
            room: s.room,
            id: id.to_string(),
            body: "fine".into(),
            reply_to: None,
            mentions: vec![],
            mention_room: false,
            attachments: Vec::new(),
        })
        .await;
        let err = s.ws.expect_error().await;
        assert_eq!(err.code, ErrorCode::InvalidClientId, "{id:?}: {err:?}");
        s.alice
            .api
            .send(s.room, id, "fine")
            .await
            .expect_code(ErrorCode::InvalidClientId);
    }
    // Nothing was stored.
    let events = s.alice.api.all_events(s.room).await.unwrap();
    assert_eq!(events.last().unwrap().seq, s.first.seq);
    s.assert_alive().await;
}

async fn send_to_a_room_one_is_not_in(backend: Backend) {
    let mut s = setup(backend).await;
    let bob = s.server.user("bob").await;
    let theirs = bob
        .api
        .create_room("bob's", Visibility::Private)
        .await
        .unwrap()
        .id;

    for room in [theirs, RoomId(9_999_999)] {
        let id = unique_id();
        s.ws.send_frame(&ClientFrame::Send {
            room,
            id: id.clone(),
            body: "let me in".into(),
            reply_to: None,
            mentions: vec![],
            mention_room: false,
            attachments: Vec::new(),
        })
        .await;
        let err = s.ws.await_ack(room, &id).await.expect_err("not a member");
        assert_eq!(
            (err.code, err.room, err.id.as_deref()),
            (ErrorCode::NotAMember, Some(room), Some(id.as_str()))
        );
    }
    s.ws.send_frame(&ClientFrame::Edit {
        room: theirs,
        seq: 1,
        body: "x".into(),
        reference: Some("r1".into()),
    })
    .await;
    let err = s.ws.expect_error_code(ErrorCode::NotAMember).await;
    assert_eq!(err.reference.as_deref(), Some("r1"));
    s.ws.send_frame(&ClientFrame::Read {
        room: theirs,
        seq: 1,
    })
    .await;
    s.ws.send_frame(&ClientFrame::Typing { room: theirs }).await;
    s.ws.sync().await;

    assert_eq!(
        last_seq(&bob.api, theirs).await,
        1,
        "nothing reached bob's room"
    );
    s.assert_alive().await;
}

async fn frames_before_hello(backend: Backend) {
    let s = setup(backend).await;
    let mut ws = s.server.ws_raw().await;
    ws.send_frame(&ClientFrame::Ping {
        reference: Some("early".into()),
    })
    .await;
    let err = ws.expect_error_code(ErrorCode::AuthRequired).await;
    assert!(
        matches!(err.reference.as_deref(), None | Some("early")),
        "{err:?}"
    );
    ws.send_frame(&ClientFrame::Send {
        room: s.room,
        id: unique_id(),
        body: "sneaky".into(),
        reply_to: None,
        mentions: vec![],
        mention_room: false,
        attachments: Vec::new(),
    })
    .await;
    ws.expect_error_code(ErrorCode::AuthRequired).await;

    // The socket is still usable: authenticate now.
    let replay = ws.hello(&s.alice.token, vec![]).await;
    assert!(replay.is_empty());
    let ack = ws.say(s.room, "after late hello").await;
    assert_eq!(ack.seq, s.first.seq + 1, "the early send was not stored");
    assert_eq!(ws.expect_event().await.seq, ack.seq);
    let mut s = s;
    s.ws = ws;
    s.assert_alive().await;
}

async fn second_hello(backend: Backend) {
    let mut s = setup(backend).await;
    s.ws.send_frame(&ClientFrame::Hello {
        token: s.alice.token.clone(),
        resume: vec![Cursor {
            room: s.room,
            seq: 0,
        }],
        epoch: None,
    })
    .await;
    s.ws.expect_error_code(ErrorCode::AlreadyAuthenticated)
        .await;
    let replayed: Vec<_> =
        s.ws.sync()
            .await
            .into_iter()
            .filter(|f| matches!(f, ServerFrame::Event(_) | ServerFrame::Welcome { .. }))
            .collect();
    assert!(
        replayed.is_empty(),
        "a second hello must not replay: {replayed:?}"
    );
    s.assert_alive().await;
}

async fn bad_token_in_hello(backend: Backend) {
    let s = setup(backend).await;
    for token in ["garbage", ""] {
        let mut ws = s.server.ws_raw().await;
        ws.send_frame(&ClientFrame::Hello {
            token: token.into(),
            resume: vec![],
            epoch: None,
        })
        .await;
        ws.expect_error_code(ErrorCode::Unauthorized).await;
        ws.expect_close_code(protocol::close::UNAUTHORIZED).await;
    }
    let mut s = s;
    s.assert_alive().await;
}

async fn oversized_frame_closes_with_1009(backend: Backend) {
    let mut s = setup(backend).await;
    let max_frame = s.ws.welcome().limits.max_frame_bytes;
    let huge = ClientFrame::Send {
        room: s.room,
        id: unique_id(),
        body: "z".repeat(max_frame + 1),
        reply_to: None,
        mentions: vec![],
        mention_room: false,
        attachments: Vec::new(),
    };
    // The server may stop reading mid-frame; a failed write is fine, the close code is what counts.
    let _ =
        s.ws.try_send_text(&serde_json::to_string(&huge).unwrap())
            .await;
    s.ws.expect_close_code(protocol::close::TOO_BIG).await;

    // Nothing stored, and a new connection works.
    s.ws = s.server.ws(&s.alice).await;
    s.assert_alive().await;
    let events = s.alice.api.all_events(s.room).await.unwrap();
    assert!(!events.iter().any(
        |e| matches!(&e.event, protocol::EventBody::Message { body, .. } if body.starts_with("zzz"))
    ));
}

fn assert_forbidden(result: Result<Ws, tungstenite::Error>, origin: &str) {
    match result {
        Ok(_) => panic!("upgrade with Origin {origin} must be refused"),
        Err(tungstenite::Error::Http(resp)) => {
            assert_eq!(resp.status().as_u16(), 403, "Origin {origin}");
            if let Some(body) = resp.body() {
                if !body.is_empty() {
                    let err: ErrorBody = serde_json::from_slice(body).unwrap_or_else(|e| {
                        panic!(
                            "403 body is not an ErrorBody ({e}): {}",
                            String::from_utf8_lossy(body)
                        )
                    });
                    assert_eq!(err.code, ErrorCode::OriginNotAllowed);
                }
            }
        }
        Err(other) => panic!("expected HTTP 403 for Origin {origin}, got {other}"),
    }
}

async fn origin_allowlist(backend: Backend) {
    let allowed = "https://chat.example.com";
    let s = setup_with(backend, |c| c.allowed_origins = vec![allowed.to_string()]).await;

    for evil in [
        "https://evil.example.com",
        "http://chat.example.com",
        "https://chat.example.com.evil.net",
        "null",
    ] {
        assert_forbidden(
            Ws::try_connect(&s.server.ws_url, "evil", Some(evil)).await,
            evil,
        );
    }

    // The allowed origin, and non-browser clients without an Origin, get in.
    let mut ws = Ws::try_connect(&s.server.ws_url, "browser", Some(allowed))
        .await
        .expect("allowed origin");
    ws.hello(&s.alice.token, vec![]).await;
    ws.say(s.room, "from the browser").await;
    let mut s = s;
    s.assert_alive().await;
}

async fn origin_rejected_when_no_allowlist(backend: Backend) {
    let mut s = setup(backend).await; // default config: empty allowlist
    assert_forbidden(
        Ws::try_connect(&s.server.ws_url, "browser", Some("http://localhost:3000")).await,
        "http://localhost:3000",
    );
    s.assert_alive().await;
}

async fn bad_http_bodies(backend: Backend) {
    let mut s = setup(backend).await;
    let anon = s.server.api();
    let room_path = format!("/api/v1/rooms/{}/messages", s.room);

    let cases: Vec<(&str, RawBody)> = vec![
        ("/api/v1/register", RawBody::Text("{not json".into())),
        (
            "/api/v1/register",
            RawBody::Json(json!({"username": "someone"})),
        ),
        (
            "/api/v1/login",
            RawBody::Json(json!({"username": 5, "password": "12345678"})),
        ),
    ];
    for (path, body) in cases {
        let (status, text) = anon.raw(reqwest::Method::POST, path, Some(body)).await;
        assert_eq!(status, 400, "POST {path}: {text}");
        let err: ErrorBody = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("POST {path}: not an ErrorBody ({e}): {text}"));
        assert_eq!(err.code, ErrorCode::BadRequest);
    }
    for body in [
        RawBody::Text("{\"id\":".into()),
        RawBody::Json(json!({"id": "x"})),
        RawBody::Json(json!({"id": 5, "body": "x"})),
    ] {
        let (status, text) = s
            .alice
            .api
            .raw(reqwest::Method::POST, &room_path, Some(body))
            .await;
        assert_eq!(status, 400, "{text}");
        assert_eq!(
            serde_json::from_str::<ErrorBody>(&text)
                .expect("ErrorBody")
                .code,
            ErrorCode::BadRequest
        );
    }
    // A non-numeric room id in the path.
    let (status, _) = s
        .alice
        .api
        .raw(
            reqwest::Method::GET,
            "/api/v1/rooms/not-a-number/events",
            None,
        )
        .await;
    assert!((400..500).contains(&status), "status {status}");

    s.assert_alive().await;
}

async fn message_rate_limit(backend: Backend) {
    let mut s = setup_with(backend, |c| {
        c.msgs_per_sec = 1;
        c.msgs_burst = 3;
    })
    .await; // setup used one token

    let mut acks = 0;
    let mut limited = None;
    for _ in 0..10 {
        let id = unique_id();
        s.ws.send_frame(&ClientFrame::Send {
            room: s.room,
            id: id.clone(),
            body: "spam".into(),
            reply_to: None,
            mentions: vec![],
            mention_room: false,
            attachments: Vec::new(),
        })
        .await;
        match s.ws.await_ack(s.room, &id).await {
            Ok(_) => acks += 1,
            Err(e) => {
                limited = Some(e);
                break;
            }
        }
    }
    let err = limited.expect("the burst is exhausted after a few messages");
    assert!(
        acks < 10,
        "{acks} messages passed a burst of 3 at 1 per second"
    );
    assert_eq!(err.code, ErrorCode::RateLimited);
    assert_eq!(err.room, Some(s.room));
    assert!(err.retry_after_ms.is_some(), "{err:?}");

    // Still connected; the refused message was not stored.
    s.ws.sync().await;
    s.assert_data_survives().await;
    let stored = s
        .alice
        .api
        .all_events(s.room)
        .await
        .unwrap()
        .iter()
        .filter(|e| matches!(&e.event, protocol::EventBody::Message { body, .. } if body == "spam"))
        .count();
    assert_eq!(stored, acks);
}
