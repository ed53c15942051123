//! The client against a real in-process server (memory store): each call's answer decoded,
//! refusals as the server's error body, other failures as their own variants.

use chat_client::{Client, Error};
use protocol::rest::{SendMessage, UpdateRoom, Visibility};
use protocol::{ErrorCode, EventBody};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const PASSWORD: &str = "correct horse battery staple";
const WAIT: Duration = Duration::from_secs(20);

async fn server(files: &std::path::Path) -> chat_server::Running {
    let mut config = chat_server::Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        ..Default::default()
    };
    config.attachments.dir = Some(files.to_path_buf());
    tokio::time::timeout(WAIT, chat_server::start(config))
        .await
        .expect("server start timed out")
        .expect("server starts")
}

async fn within<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(WAIT, f).await.expect("call timed out")
}

#[tokio::test]
async fn typed_calls_and_refusals() {
    let files = tempfile::tempdir().unwrap();
    let running = server(files.path()).await;
    let anon = Client::new(&format!("http://{}", running.addr()))
        .unwrap()
        .strict();

    let auth = within(anon.register("alice_client", PASSWORD, Some("laptop")))
        .await
        .unwrap();
    let alice = anon.with_token(&auth.token);
    assert_eq!(within(alice.me()).await.unwrap().username, "alice_client");
    let sessions = within(alice.sessions()).await.unwrap();
    assert_eq!(sessions.len(), 1);
    assert_eq!(sessions[0].device.as_deref(), Some("laptop"));

    // A refusal is the server's error body, with its status.
    let taken = within(anon.register("alice_client", PASSWORD, None))
        .await
        .unwrap_err();
    assert_eq!(taken.code(), Some(ErrorCode::UsernameTaken));
    assert_eq!(taken.status(), Some(409));
    assert!(
        taken.to_string().contains("POST /api/v1/register"),
        "{taken}"
    );
    let refused = within(anon.me()).await.unwrap_err();
    assert_eq!(refused.code(), Some(ErrorCode::Unauthorized));

    let room = within(alice.create_room("client room", Visibility::Public))
        .await
        .unwrap();
    let bob_auth = within(anon.register("bob_client", PASSWORD, None))
        .await
        .unwrap();
    let bob = anon.with_token(&bob_auth.token);
    assert_eq!(within(bob.join(room.id)).await.unwrap().id, room.id);
    let ack = within(alice.send(room.id, "c1", "hello **bob**"))
        .await
        .unwrap();
    within(bob.react(room.id, ack.seq, "👍", true))
        .await
        .unwrap();
    within(alice.edit(room.id, ack.seq, "hello bob"))
        .await
        .unwrap();
    within(bob.mark_read(room.id, ack.seq)).await.unwrap();
    let updated = UpdateRoom {
        topic: Some("a topic".into()),
        ..Default::default()
    };
    assert_eq!(
        within(alice.update_room(room.id, &updated))
            .await
            .unwrap()
            .topic,
        "a topic"
    );

    // No paging parameters: the newest page; `after` pages forward.
    let newest = within(bob.history(room.id, None, None, None))
        .await
        .unwrap();
    assert_eq!(newest.last_seq, newest.events.last().unwrap().seq);
    let all = within(bob.all_events(room.id)).await.unwrap();
    assert_eq!(all, newest.events);
    let bodies: Vec<&str> = all
        .iter()
        .filter_map(|e| match &e.event {
            EventBody::Message { body, .. } => Some(body.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(bodies, ["hello bob"]);

    // A file up and down again.
    let bytes = b"just some text in a file".to_vec();
    let att = within(bob.upload(room.id, "notes.txt", bytes.clone(), None, None))
        .await
        .unwrap();
    assert_eq!(att.size, bytes.len() as u64);
    // Only the uploader sees it until a message carries it.
    let missing = within(alice.download(&att.id, false, None))
        .await
        .unwrap_err();
    assert_eq!(missing.code(), Some(ErrorCode::AttachmentNotFound));
    let message = SendMessage {
        id: "c2".into(),
        body: String::new(),
        reply_to: None,
        mentions: Vec::new(),
        mention_room: false,
        attachments: vec![att.id.clone()],
    };
    within(bob.send_message(room.id, &message)).await.unwrap();
    let got = within(async {
        let response = alice.download(&att.id, false, None).await?;
        response.bytes().await.map_err(|source| Error::Transport {
            call: chat_client::Call {
                method: chat_client::reqwest::Method::GET,
                path: "download".into(),
            },
            source,
        })
    })
    .await
    .unwrap();
    assert_eq!(got.as_ref(), bytes.as_slice());

    within(bob.set_block(auth.user.id, true)).await.unwrap();
    assert_eq!(within(bob.blocks()).await.unwrap()[0].id, auth.user.id);
    within(alice.logout()).await.unwrap();
    assert_eq!(
        within(alice.me()).await.unwrap_err().code(),
        Some(ErrorCode::Unauthorized)
    );
    running.shutdown().await;
}

/// Something in front of the server answering 502 with an HTML page, then a plain `200` whose
/// body is not JSON.
#[tokio::test]
async fn answers_without_the_protocols_bodies() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        for answer in [
            "HTTP/1.1 502 Bad Gateway\r\ncontent-type: text/html\r\ncontent-length: 20\r\nconnection: close\r\n\r\n<h1>bad gateway</h1>",
            "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok",
        ] {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut buf = vec![0u8; 4096];
            let _ = socket.read(&mut buf).await;
            socket.write_all(answer.as_bytes()).await.unwrap();
            let _ = socket.shutdown().await;
        }
    });
    let client = Client::new(&format!("http://{addr}")).unwrap();
    match within(client.me()).await {
        Err(Error::Status { status, text, .. }) => {
            assert_eq!((status, text.as_str()), (502, "<h1>bad gateway</h1>"));
        }
        other => panic!("expected a status error, got {other:?}"),
    }
    match within(client.me()).await {
        Err(e @ Error::Decode { .. }) => assert_eq!(e.status(), Some(200)),
        other => panic!("expected a decode error, got {other:?}"),
    }
    // Nobody listens any more: a transport error.
    let gone = within(client.me()).await.unwrap_err();
    assert!(gone.is_transport(), "{gone:?}");
    assert_eq!(gone.code(), None);
}
