//! Attachments (issue 14), on both stores and across two nodes: upload, attach to a message,
//! download by members only (a non-member gets exactly the answer for a missing file), range
//! requests and caching headers, limits and typed refusals, and the collector deleting files
//! of deleted messages, of retention, of uploads never attached and half-written by a node
//! that died.

mod common;

use common::*;
use protocol::rest::Visibility;
use protocol::{Attachment, ClientFrame, ErrorCode, EventBody, RoomEvent, RoomId, ServerFrame};
use std::path::Path;
use std::sync::Arc;

/// Where a test server keeps its files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Storage {
    /// `attachments.dir`.
    Dir,
    /// `attachments.s3`, on a real S3-protocol server (`s3s-fs`) started for the test.
    S3,
}

/// Generates `memory::` and `redis::` (files in a directory) and `s3::` (Redis, files in S3)
/// tests for each `async fn name(backend: Backend, storage: Storage)`.
macro_rules! storage_tests {
    ($($name:ident),+ $(,)?) => {
        mod memory {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(super::Backend::Memory, super::Storage::Dir).await
                }
            )+
        }
        mod redis {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(super::Backend::Redis, super::Storage::Dir).await
                }
            )+
        }
        mod s3 {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(super::Backend::Redis, super::Storage::S3).await
                }
            )+
        }
    };
}

/// The stored files of a test server: a directory, or an S3 server whose bucket is one.
struct Files {
    dir: tempfile::TempDir,
    s3: Option<S3Server>,
}

impl Files {
    /// Where the stored objects appear as files (`blobs/{id}`, `thumbs/{id}`).
    fn path(&self) -> std::path::PathBuf {
        match &self.s3 {
            Some(s3) => s3.root.path().join(S3_BUCKET),
            None => self.dir.path().to_path_buf(),
        }
    }

    fn configure(&self, c: &mut chat_server::Config) {
        match &self.s3 {
            Some(s3) => {
                c.attachments.s3 = Some(chat_server::attachments::config::S3Config {
                    bucket: S3_BUCKET.into(),
                    endpoint: Some(s3.endpoint.clone()),
                    region: "us-east-1".into(),
                    access_key_id: S3_KEY.into(),
                    secret_access_key: S3_SECRET.into(),
                    allow_http: true,
                })
            }
            None => c.attachments.dir = Some(self.dir.path().to_path_buf()),
        }
    }

    async fn new(storage: Storage) -> Files {
        Files {
            dir: tempfile::tempdir().expect("temp dir"),
            s3: match storage {
                Storage::Dir => None,
                Storage::S3 => Some(S3Server::start().await),
            },
        }
    }
}

const S3_BUCKET: &str = "chat-files";
const S3_KEY: &str = "test-access-key";
const S3_SECRET: &str = "test-secret-key-0123456789";

/// `s3s-fs` (crates.io; installed by scripts/setup.sh) on a free port, over a fresh directory.
/// Killed when dropped.
struct S3Server {
    _child: tokio::process::Child,
    root: tempfile::TempDir,
    endpoint: String,
}

impl S3Server {
    async fn start() -> S3Server {
        use tokio::io::AsyncBufReadExt;
        let root = tempfile::tempdir().expect("temp dir");
        std::fs::create_dir(root.path().join(S3_BUCKET)).expect("bucket directory");
        let installed = std::path::Path::new("/var/cache/chat/tools/bin/s3s-fs");
        let bin = if installed.exists() {
            installed.to_path_buf()
        } else {
            "s3s-fs".into()
        };
        let mut child = tokio::process::Command::new(&bin)
            .args(["--host", "127.0.0.1", "--port", "0"])
            .args(["--access-key", S3_KEY, "--secret-key", S3_SECRET])
            .arg(root.path())
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e} (run scripts/setup.sh)", bin.display()));
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = tokio::io::BufReader::new(stdout).lines();
        let endpoint = tokio::time::timeout(TIMEOUT, async {
            while let Some(line) = lines.next_line().await.expect("s3s-fs output") {
                if let Some(at) = line.find("http://127.0.0.1:") {
                    let url: String = line[at..]
                        .chars()
                        .take_while(|c| c.is_ascii_alphanumeric() || ":/.".contains(*c))
                        .collect();
                    return url;
                }
            }
            panic!("s3s-fs exited before listening");
        })
        .await
        .expect("s3s-fs did not start listening in time");
        // Keep reading so the pipe never fills.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        S3Server {
            _child: child,
            root,
            endpoint,
        }
    }
}

/// A server storing attachments in fresh storage (kept alive by the returned guard).
async fn server_with(
    backend: Backend,
    storage: Storage,
    configure: impl FnOnce(&mut chat_server::Config),
) -> (TestServer, Files) {
    let files = Files::new(storage).await;
    let server = TestServer::start_with(backend, |c| {
        files.configure(c);
        configure(c);
    })
    .await;
    (server, files)
}

/// Bytes no sniffer recognizes, `n` long, different per call.
fn noise(n: usize) -> Vec<u8> {
    let mut x = rand_seed();
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            // Printable, so no magic number of a binary format appears at the start.
            b'a' + (x % 26) as u8
        })
        .collect()
}

fn rand_seed() -> u64 {
    let id = unique_id();
    id.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    }) | 1
}

/// Files stored under the attachment directory (originals and thumbnails).
fn stored_files(dir: impl AsRef<Path>) -> Vec<String> {
    let dir = dir.as_ref();
    let mut out = Vec::new();
    for sub in ["blobs", "thumbs"] {
        if let Ok(entries) = std::fs::read_dir(dir.join(sub)) {
            for e in entries.flatten() {
                out.push(format!("{sub}/{}", e.file_name().to_string_lossy()));
            }
        }
    }
    out.sort();
    out
}

/// `POST /api/v1/rooms/{room}/attachments?name=...` with `bytes`; the JSON body or the error.
async fn upload(
    server: &TestServer,
    user: &TestUser,
    room: RoomId,
    name: &str,
    bytes: Vec<u8>,
) -> Result<Attachment, (u16, Option<ErrorCode>)> {
    let resp = server
        .http()
        .post(format!("{}/api/v1/rooms/{room}/attachments", server.base))
        .query(&[("name", name)])
        .bearer_auth(&user.token)
        // A lie the server must not believe.
        .header("content-type", "image/png")
        .body(bytes)
        .send()
        .await
        .expect("upload request");
    let status = resp.status().as_u16();
    let text = resp.text().await.expect("upload body");
    if status == 201 {
        Ok(serde_json::from_str(&text).unwrap_or_else(|e| panic!("upload answer {text}: {e}")))
    } else {
        let code = serde_json::from_str::<protocol::ErrorBody>(&text)
            .ok()
            .map(|b| b.code);
        Err((status, code))
    }
}

async fn upload_ok(
    server: &TestServer,
    user: &TestUser,
    room: RoomId,
    name: &str,
    bytes: Vec<u8>,
) -> Attachment {
    upload(server, user, room, name, bytes)
        .await
        .unwrap_or_else(|e| panic!("upload of {name}: {e:?}"))
}

/// An HTTP answer as a client sees it.
#[derive(Debug, PartialEq, Eq)]
struct Got {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Got {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
    fn code(&self) -> Option<ErrorCode> {
        serde_json::from_slice::<protocol::ErrorBody>(&self.body)
            .ok()
            .map(|b| b.code)
    }
}

async fn get(server: &TestServer, token: Option<&str>, path: &str, extra: &[(&str, &str)]) -> Got {
    let mut req = server.http().get(format!("{}{path}", server.base));
    if let Some(token) = token {
        req = req.bearer_auth(token);
    }
    for (k, v) in extra {
        req = req.header(*k, *v);
    }
    let resp = req.send().await.expect("GET");
    let status = resp.status().as_u16();
    let mut headers: Vec<(String, String)> = resp
        .headers()
        .iter()
        // Differs per request by design.
        .filter(|(k, _)| !matches!(k.as_str(), "date" | "x-request-id"))
        .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("?").to_string()))
        .collect();
    headers.sort();
    let body = resp.bytes().await.expect("GET body").to_vec();
    Got {
        status,
        headers,
        body,
    }
}

async fn download(server: &TestServer, user: &TestUser, id: &str) -> Got {
    get(
        server,
        Some(&user.token),
        &format!("/api/v1/attachments/{id}"),
        &[],
    )
    .await
}

fn send_frame(room: RoomId, id: &str, body: &str, attachments: &[&Attachment]) -> ClientFrame {
    ClientFrame::Send {
        room,
        id: id.to_owned(),
        body: body.to_owned(),
        reply_to: None,
        mentions: vec![],
        mention_room: false,
        attachments: attachments.iter().map(|a| a.id.clone()).collect(),
    }
}

/// Sends over REST; the ack or the error code.
async fn send_rest(
    user: &TestUser,
    room: RoomId,
    client_id: &str,
    body: &str,
    ids: &[&str],
) -> Result<protocol::rest::SendAck, Option<ErrorCode>> {
    let message = protocol::rest::SendMessage {
        id: client_id.to_owned(),
        body: body.to_owned(),
        reply_to: None,
        mentions: Vec::new(),
        mention_room: false,
        attachments: ids.iter().map(|id| id.to_string()).collect(),
    };
    user.api
        .send_message(room, &message)
        .await
        .map_err(|e| e.code())
}

fn attachments_of(ev: &RoomEvent) -> &[Attachment] {
    match &ev.event {
        EventBody::Message { attachments, .. } => attachments,
        other => panic!("expected a message, got {other:?}"),
    }
}

async fn upload_send_download_only_for_members(backend: Backend, storage: Storage) {
    let (server, dir) = server_with(backend, storage, |_| {}).await;
    let alice = server.user("alice").await;
    let bob = server.user("bob").await;
    let carol = server.user("carol").await;
    let room = shared_room(&alice, &[&bob]).await;
    let bytes = noise(300_000);
    let att = upload_ok(&server, &alice, room.id, "notes é.txt", bytes.clone()).await;
    assert_eq!(att.size, 300_000);
    assert_eq!(
        att.content_type, "application/octet-stream",
        "never the client's claim"
    );
    assert_eq!(att.name, "notes é.txt");
    assert_eq!((att.width, att.height, att.thumbnail), (None, None, false));
    assert_eq!(stored_files(dir.path()), vec![format!("blobs/{}", att.id)]);

    // Pending: only its uploader sees it.
    assert_eq!(download(&server, &alice, &att.id).await.body, bytes);
    let pending = download(&server, &bob, &att.id).await;
    assert_eq!(
        (pending.status, pending.code()),
        (404, Some(ErrorCode::AttachmentNotFound))
    );

    // Attached to a message sent over the socket; bob sees it live with its metadata.
    let mut a = server.ws(&alice).await;
    let mut b = server.ws(&bob).await;
    let client_id = unique_id();
    a.send_frame(&send_frame(room.id, &client_id, "", &[&att]))
        .await;
    let ack = a.await_ack(room.id, &client_id).await.expect("ack");
    let ev = b.expect_event().await;
    assert_eq!(ev.seq, ack.seq);
    assert_eq!(attachments_of(&ev), std::slice::from_ref(&att));
    // A resend of the same message is the same message, not an error.
    a.send_frame(&send_frame(room.id, &client_id, "", &[&att]))
        .await;
    assert!(
        a.await_ack(room.id, &client_id)
            .await
            .expect("resend ack")
            .duplicate
    );
    // In history and in a resume.
    let page = bob
        .api
        .history(room.id, None, None, None)
        .await
        .expect("history");
    let msg = page
        .events
        .iter()
        .find(|e| e.seq == ack.seq)
        .expect("in history");
    assert_eq!(attachments_of(msg), std::slice::from_ref(&att));
    let (_ws, replay) = server
        .ws_resume(
            &bob,
            vec![protocol::ws::Cursor {
                room: room.id,
                seq: ack.seq - 1,
            }],
        )
        .await;
    let replayed = replay
        .iter()
        .find_map(|f| match f {
            ServerFrame::Event(e) if e.seq == ack.seq => Some(e),
            _ => None,
        })
        .expect("replayed on resume");
    assert_eq!(attachments_of(replayed), std::slice::from_ref(&att));

    // A member downloads the same bytes, with caching headers.
    let got = download(&server, &bob, &att.id).await;
    assert_eq!(got.status, 200);
    assert!(got.body == bytes, "downloaded bytes differ from the upload");
    assert_eq!(got.header("etag"), Some(format!("\"{}\"", att.id).as_str()));
    assert_eq!(
        got.header("cache-control"),
        Some("private, max-age=31536000, immutable")
    );
    assert_eq!(got.header("accept-ranges"), Some("bytes"));
    assert_eq!(got.header("content-type"), Some("application/octet-stream"));
    assert_eq!(got.header("x-content-type-options"), Some("nosniff"));
    assert_eq!(
        got.header("content-disposition"),
        Some("attachment; filename*=UTF-8''notes%20%C3%A9.txt")
    );
    let etag = got.header("etag").unwrap().to_owned();
    let cached = get(
        &server,
        Some(&bob.token),
        &format!("/api/v1/attachments/{}", att.id),
        &[("if-none-match", &etag)],
    )
    .await;
    assert_eq!((cached.status, cached.body.len()), (304, 0));

    // A non-member gets exactly what a missing file gets; no token is 401.
    let refused = download(&server, &carol, &att.id).await;
    let missing = download(&server, &carol, "0123456789abcdef0123456789abcdef").await;
    assert_eq!(refused, missing);
    assert_eq!(
        (refused.status, refused.code()),
        (404, Some(ErrorCode::AttachmentNotFound))
    );
    let malformed = download(&server, &carol, "..%2F..%2Fetc%2Fpasswd").await;
    assert_eq!(malformed, missing);
    let anonymous = get(
        &server,
        None,
        &format!("/api/v1/attachments/{}", att.id),
        &[],
    )
    .await;
    assert_eq!(anonymous.status, 401);
    // Nor can a non-member upload to the room.
    assert_eq!(
        upload(&server, &carol, room.id, "x", noise(10))
            .await
            .unwrap_err(),
        (403, Some(ErrorCode::NotAMember))
    );
}

async fn attaching_is_checked(backend: Backend, storage: Storage) {
    let (server, _dir) = server_with(backend, storage, |c| c.attachments.max_per_message = 2).await;
    let alice = server.user("alice").await;
    let bob = server.user("bob").await;
    let room = shared_room(&alice, &[&bob]).await;
    let other = alice
        .api
        .create_room("other", Visibility::Public)
        .await
        .expect("room");
    let mine = upload_ok(&server, &alice, room.id, "a.bin", noise(100)).await;
    let elsewhere = upload_ok(&server, &alice, other.id, "b.bin", noise(100)).await;
    let bobs = upload_ok(&server, &bob, room.id, "c.bin", noise(100)).await;
    let not_found = Some(ErrorCode::AttachmentNotFound);
    // Someone else's, another room's, unknown, malformed.
    assert_eq!(
        send_rest(&alice, room.id, &unique_id(), "x", &[&bobs.id])
            .await
            .unwrap_err(),
        not_found
    );
    assert_eq!(
        send_rest(&alice, room.id, &unique_id(), "x", &[&elsewhere.id])
            .await
            .unwrap_err(),
        not_found
    );
    assert_eq!(
        send_rest(
            &alice,
            room.id,
            &unique_id(),
            "x",
            &["0123456789abcdef0123456789abcdef"]
        )
        .await
        .unwrap_err(),
        not_found
    );
    assert_eq!(
        send_rest(&alice, room.id, &unique_id(), "x", &["../x"])
            .await
            .unwrap_err(),
        not_found
    );
    // Too many, twice the same.
    let m2 = upload_ok(&server, &alice, room.id, "d.bin", noise(100)).await;
    let m3 = upload_ok(&server, &alice, room.id, "e.bin", noise(100)).await;
    let invalid = Some(ErrorCode::InvalidMessage);
    assert_eq!(
        send_rest(
            &alice,
            room.id,
            &unique_id(),
            "x",
            &[&mine.id, &m2.id, &m3.id]
        )
        .await
        .unwrap_err(),
        invalid
    );
    assert_eq!(
        send_rest(&alice, room.id, &unique_id(), "x", &[&mine.id, &mine.id])
            .await
            .unwrap_err(),
        invalid
    );
    // No text and no files is still an empty message.
    assert_eq!(
        send_rest(&alice, room.id, &unique_id(), "", &[])
            .await
            .unwrap_err(),
        invalid
    );
    // Attached once; a second message cannot take it.
    let ack = send_rest(
        &alice,
        room.id,
        &unique_id(),
        "two files",
        &[&mine.id, &m2.id],
    )
    .await
    .expect("send");
    assert_eq!(
        send_rest(&alice, room.id, &unique_id(), "again", &[&mine.id])
            .await
            .unwrap_err(),
        not_found
    );
    let events = bob.api.all_events(room.id).await.expect("history");
    let ev = events.iter().find(|e| e.seq == ack.seq).expect("sent");
    assert_eq!(attachments_of(ev), [mine, m2]);
}

/// Two messages race for one upload through both nodes' paths: exactly one gets it.
async fn one_upload_one_message(backend: Backend, storage: Storage) {
    let (server, _dir) = server_with(backend, storage, |_| {}).await;
    let alice = server.user("alice").await;
    let room = shared_room(&alice, &[]).await;
    for _ in 0..5 {
        let att = upload_ok(&server, &alice, room.id, "race.bin", noise(1000)).await;
        let (ix, iy, ids) = (unique_id(), unique_id(), [att.id.as_str()]);
        let (x, y) = tokio::join!(
            send_rest(&alice, room.id, &ix, "x", &ids),
            send_rest(&alice, room.id, &iy, "y", &ids),
        );
        assert_eq!(
            x.is_ok() as u8 + y.is_ok() as u8,
            1,
            "exactly one message gets the upload: {x:?} {y:?}"
        );
        let loser = if x.is_ok() { y } else { x };
        assert_eq!(loser.unwrap_err(), Some(ErrorCode::AttachmentNotFound));
    }
}

async fn ranges_and_empty_files(backend: Backend, storage: Storage) {
    let (server, _dir) = server_with(backend, storage, |_| {}).await;
    let alice = server.user("alice").await;
    let room = shared_room(&alice, &[]).await;
    let bytes = noise(1000);
    let att = upload_ok(&server, &alice, room.id, "r.bin", bytes.clone()).await;
    send_rest(&alice, room.id, &unique_id(), "", &[&att.id])
        .await
        .expect("send");
    let path = format!("/api/v1/attachments/{}", att.id);
    let part = |range: &'static str| {
        let path = path.clone();
        let server = &server;
        let token = alice.token.clone();
        async move { get(server, Some(&token), &path, &[("range", range)]).await }
    };
    let got = part("bytes=0-99").await;
    assert_eq!(
        (got.status, got.header("content-range")),
        (206, Some("bytes 0-99/1000"))
    );
    assert_eq!(got.body, bytes[..100]);
    let got = part("bytes=990-").await;
    assert_eq!(
        (got.status, got.header("content-range")),
        (206, Some("bytes 990-999/1000"))
    );
    assert_eq!(got.body, bytes[990..]);
    let got = part("bytes=-5").await;
    assert_eq!(got.body, bytes[995..]);
    let got = part("bytes=500-5000").await;
    assert_eq!((got.status, got.body.len()), (206, 500));
    let got = part("bytes=1000-").await;
    assert_eq!(
        (got.status, got.header("content-range")),
        (416, Some("bytes */1000"))
    );
    assert_eq!(got.code(), Some(ErrorCode::RangeNotSatisfiable));
    // Several ranges: the whole file.
    let got = part("bytes=0-1,5-6").await;
    assert_eq!((got.status, got.body.len()), (200, 1000));

    let empty = upload_ok(&server, &alice, room.id, "empty", Vec::new()).await;
    assert_eq!(empty.size, 0);
    let got = download(&server, &alice, &empty.id).await;
    assert_eq!((got.status, got.body.len()), (200, 0));
}

async fn limits_and_types(backend: Backend, storage: Storage) {
    let (server, dir) = server_with(backend, storage, |c| {
        c.attachments.max_upload_bytes = 64 * 1024;
        c.attachments.quota_bytes = 100 * 1024;
        c.attachments.allowed_types = vec![
            "image/*".into(),
            "application/pdf".into(),
            "application/octet-stream".into(),
        ];
    })
    .await;
    let alice = server.user("alice").await;
    let room = shared_room(&alice, &[]).await;
    assert_eq!(
        upload(&server, &alice, room.id, "big", noise(64 * 1024 + 1))
            .await
            .unwrap_err(),
        (413, Some(ErrorCode::TooLarge))
    );
    let mut zip = b"PK\x03\x04\x14\x00\x00\x00\x08\x00".to_vec();
    zip.extend(noise(100));
    assert_eq!(
        upload(&server, &alice, room.id, "a.zip", zip)
            .await
            .unwrap_err(),
        (415, Some(ErrorCode::UnsupportedType))
    );
    let mut pdf = b"%PDF-1.7\n".to_vec();
    pdf.extend(noise(50_000));
    let doc = upload_ok(&server, &alice, room.id, "doc.pdf", pdf).await;
    assert_eq!(doc.content_type, "application/pdf");
    // 50 KB stored; 60 KB more would pass the 100 KiB quota.
    assert_eq!(
        upload(&server, &alice, room.id, "more", noise(60_000))
            .await
            .unwrap_err(),
        (403, Some(ErrorCode::QuotaExceeded))
    );
    assert_eq!(
        upload(&server, &alice, room.id, "bad/name", noise(10))
            .await
            .unwrap_err(),
        (400, Some(ErrorCode::BadRequest))
    );
    // Nothing refused was kept.
    assert_eq!(stored_files(dir.path()), vec![format!("blobs/{}", doc.id)]);
    // Deleting the message frees the quota once the collector ran.
    let ack = send_rest(&alice, room.id, &unique_id(), "", &[&doc.id])
        .await
        .expect("send");
    alice
        .api
        .delete_message(room.id, ack.seq)
        .await
        .expect("delete");
    chat_server::attachments::collect(server.state())
        .await
        .expect("collect");
    upload_ok(&server, &alice, room.id, "more", noise(60_000)).await;
}

async fn deleting_the_message_deletes_its_files(backend: Backend, storage: Storage) {
    let (server, dir) = server_with(backend, storage, |_| {}).await;
    let alice = server.user("alice").await;
    let bob = server.user("bob").await;
    let room = shared_room(&alice, &[&bob]).await;
    let kept = upload_ok(&server, &alice, room.id, "kept", noise(2000)).await;
    let gone = upload_ok(&server, &alice, room.id, "gone", noise(2000)).await;
    send_rest(&alice, room.id, &unique_id(), "stays", &[&kept.id])
        .await
        .expect("send");
    let ack = send_rest(&alice, room.id, &unique_id(), "goes", &[&gone.id])
        .await
        .expect("send");
    alice
        .api
        .delete_message(room.id, ack.seq)
        .await
        .expect("delete");
    // The deleted message no longer lists it, and it is not served any more, at once.
    let events = bob.api.all_events(room.id).await.expect("history");
    let ev = events
        .iter()
        .find(|e| e.seq == ack.seq)
        .expect("deleted message");
    assert!(attachments_of(ev).is_empty(), "{ev:?}");
    assert_eq!(download(&server, &bob, &gone.id).await.status, 404);
    assert_eq!(download(&server, &alice, &gone.id).await.status, 404);
    chat_server::attachments::collect(server.state())
        .await
        .expect("collect");
    assert_eq!(stored_files(dir.path()), vec![format!("blobs/{}", kept.id)]);
    assert_eq!(download(&server, &bob, &kept.id).await.status, 200);
    // Deleting the room deletes the rest.
    alice
        .api
        .delete_room(room.id)
        .await
        .expect("delete the room");
    chat_server::attachments::collect(server.state())
        .await
        .expect("collect");
    assert!(stored_files(dir.path()).is_empty());
    assert_eq!(download(&server, &alice, &kept.id).await.status, 404);
}

async fn orphans_and_retention_are_collected(backend: Backend, storage: Storage) {
    let (server, dir) = server_with(backend, storage, |c| {
        c.attachments.orphan_grace_secs = 0;
        c.retention_events = 3;
    })
    .await;
    let alice = server.user("alice").await;
    let room = shared_room(&alice, &[]).await;
    let attached = upload_ok(&server, &alice, room.id, "attached", noise(100)).await;
    let ack = send_rest(&alice, room.id, &unique_id(), "", &[&attached.id])
        .await
        .expect("send");
    let orphan = upload_ok(&server, &alice, room.id, "orphan", noise(100)).await;
    // Files of uploads a node died before recording: an old one goes, a recent one (maybe
    // still being processed) stays.
    let (old, recent) = (
        "0000000000000000000000000000000a",
        "0000000000000000000000000000000b",
    );
    let hours_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(2 * 3600);
    for (sub, id) in [("blobs", old), ("thumbs", old), ("blobs", recent)] {
        std::fs::create_dir_all(dir.path().join(sub)).expect("mkdir");
        let path = dir.path().join(sub).join(id);
        std::fs::write(&path, b"left behind").expect("stray file");
        if id == old {
            let file = std::fs::File::options()
                .write(true)
                .open(&path)
                .expect("open");
            file.set_modified(hours_ago).expect("mtime");
        }
    }
    let done = chat_server::attachments::collect(server.state())
        .await
        .expect("collect");
    assert_eq!((done.deleted, done.strays), (1, 1));
    std::fs::remove_file(dir.path().join("blobs").join(recent)).expect("the recent stray stays");
    assert_eq!(
        stored_files(dir.path()),
        vec![format!("blobs/{}", attached.id)]
    );
    assert_eq!(download(&server, &alice, &orphan.id).await.status, 404);
    assert_eq!(
        send_rest(&alice, room.id, &unique_id(), "late", &[&orphan.id])
            .await
            .unwrap_err(),
        Some(ErrorCode::AttachmentNotFound)
    );
    // Retention drops the message: its file goes too.
    for i in 0..3 {
        alice.api.say(room.id, &format!("filler {i}")).await;
    }
    let page = alice
        .api
        .history(room.id, None, None, None)
        .await
        .expect("history");
    assert!(
        page.first_seq > ack.seq,
        "retention dropped the message: {page:?}"
    );
    chat_server::attachments::collect(server.state())
        .await
        .expect("collect");
    assert!(
        stored_files(dir.path()).is_empty(),
        "{:?}",
        stored_files(dir.path())
    );
    assert_eq!(download(&server, &alice, &attached.id).await.status, 404);
    // Nothing left counts against the quota.
    assert_eq!(
        server
            .state()
            .store
            .upload_usage(alice.id)
            .await
            .expect("usage"),
        0
    );
}

/// A node killed during an upload to directory storage leaves the half-written temporary file
/// (`blobs/{id}#N`, which the storage renames into place when an upload completes; listings
/// skip it). The collector deletes such a file once it is older than the grace period, and
/// leaves a younger one alone (an upload may still be writing it).
async fn half_written_uploads_are_collected(backend: Backend) {
    let (server, dir) = server_with(backend, Storage::Dir, |c| {
        c.attachments.orphan_grace_secs = 2 * 3600;
    })
    .await;
    let alice = server.user("alice").await;
    let room = shared_room(&alice, &[]).await;
    let bytes = noise(5000);
    let kept = upload_ok(&server, &alice, room.id, "kept", bytes.clone()).await;
    let hours =
        |h: f64| std::time::SystemTime::now() - std::time::Duration::from_secs_f64(h * 3600.0);
    let (abandoned, within_grace, fresh) = (
        "0000000000000000000000000000000c",
        "0000000000000000000000000000000d",
        "0000000000000000000000000000000e",
    );
    let leftovers = [
        (format!("blobs/{abandoned}#1"), Some(hours(3.0))),
        (format!("thumbs/{abandoned}#3"), Some(hours(3.0))),
        // A second writer of a completed upload's file died: the file itself stays.
        (format!("blobs/{}#2", kept.id), Some(hours(2.5))),
        // Older than the hour after which files without a record go, but within the grace.
        (format!("blobs/{within_grace}#1"), Some(hours(1.5))),
        (format!("blobs/{fresh}#1"), None),
    ];
    for (name, modified) in &leftovers {
        let path = dir.path().join(name);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(&path, &bytes[..1000]).expect("half-written file");
        if let Some(t) = modified {
            let file = std::fs::File::options()
                .write(true)
                .open(&path)
                .expect("open");
            file.set_modified(*t).expect("mtime");
        }
    }
    let done = chat_server::attachments::collect(server.state())
        .await
        .expect("collect");
    assert_eq!((done.partial, done.deleted, done.strays), (3, 0, 0));
    let mut left = vec![
        format!("blobs/{}", kept.id),
        format!("blobs/{fresh}#1"),
        format!("blobs/{within_grace}#1"),
    ];
    left.sort();
    assert_eq!(stored_files(dir.path()), left);
    let got = download(&server, &alice, &kept.id).await;
    assert_eq!(got.status, 200);
    assert!(got.body == bytes, "the completed upload changed");
    // Nothing more goes on the next pass.
    let again = chat_server::attachments::collect(server.state())
        .await
        .expect("collect");
    assert_eq!(again.partial, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn half_written_uploads_are_collected_memory() {
    half_written_uploads_are_collected(Backend::Memory).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn half_written_uploads_are_collected_redis() {
    half_written_uploads_are_collected(Backend::Redis).await
}

async fn off_without_a_directory(backend: Backend, _storage: Storage) {
    let server = TestServer::start(backend).await;
    let alice = server.user("alice").await;
    let room = shared_room(&alice, &[]).await;
    assert_eq!(
        upload(&server, &alice, room.id, "x", noise(10))
            .await
            .unwrap_err(),
        (404, Some(ErrorCode::NotFound))
    );
}

/// A `w`×`h` picture with a gradient (so a thumbnail has something to show).
fn picture(w: u32, h: u32) -> image::RgbImage {
    image::RgbImage::from_fn(w, h, |x, y| {
        image::Rgb([(x % 256) as u8, (y % 256) as u8, 128])
    })
}

fn png(w: u32, h: u32) -> Vec<u8> {
    let mut out = std::io::Cursor::new(Vec::new());
    picture(w, h)
        .write_to(&mut out, image::ImageFormat::Png)
        .expect("encode PNG");
    out.into_inner()
}

/// The location a phone would write into a photo.
const SECRET_PLACE: &[u8] = b"Secret garden, 48 51 29.6 N 2 17 40.2 E";

/// A JPEG as a phone makes it: JFIF, then an APP1 EXIF segment with a description and a GPS
/// position (latitude 48°51'29.6" N), then the picture.
fn jpeg_with_gps(w: u32, h: u32) -> Vec<u8> {
    let mut plain = std::io::Cursor::new(Vec::new());
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut plain, 90)
        .encode_image(&picture(w, h))
        .expect("encode JPEG");
    let plain = plain.into_inner();
    // TIFF, little endian: IFD0 at 8 with ImageDescription and a GPS IFD pointer.
    let mut tiff: Vec<u8> = b"II*\0".to_vec();
    tiff.extend(8u32.to_le_bytes());
    let entry = |tag: u16, kind: u16, count: u32, value: u32| {
        let mut e = tag.to_le_bytes().to_vec();
        e.extend(kind.to_le_bytes());
        e.extend(count.to_le_bytes());
        e.extend(value.to_le_bytes());
        e
    };
    let ifd0_len = 2 + 2 * 12 + 4;
    let desc_at = 8 + ifd0_len;
    let gps_at = desc_at + SECRET_PLACE.len() as u32 + 1;
    tiff.extend(2u16.to_le_bytes());
    tiff.extend(entry(0x010E, 2, SECRET_PLACE.len() as u32 + 1, desc_at));
    tiff.extend(entry(0x8825, 4, 1, gps_at));
    tiff.extend(0u32.to_le_bytes());
    tiff.extend(SECRET_PLACE);
    tiff.push(0);
    // GPS IFD: GPSLatitudeRef "N", GPSLatitude 48/1 51/1 296/10.
    let rationals_at = gps_at + 2 + 2 * 12 + 4;
    tiff.extend(2u16.to_le_bytes());
    tiff.extend(entry(0x0001, 2, 2, u32::from_le_bytes(*b"N\0\0\0")));
    tiff.extend(entry(0x0002, 5, 3, rationals_at));
    tiff.extend(0u32.to_le_bytes());
    for (n, d) in [(48u32, 1u32), (51, 1), (296, 10)] {
        tiff.extend(n.to_le_bytes());
        tiff.extend(d.to_le_bytes());
    }
    let mut app1 = b"Exif\0\0".to_vec();
    app1.extend(tiff);
    let mut out = plain[..2].to_vec(); // SOI
    out.extend([0xFF, 0xE1]);
    out.extend(((app1.len() + 2) as u16).to_be_bytes());
    out.extend(app1);
    out.extend(&plain[2..]);
    out
}

fn decode(bytes: &[u8]) -> image::DynamicImage {
    image::load_from_memory(bytes).expect("decodes")
}

async fn images_get_dimensions_and_thumbnails(backend: Backend, storage: Storage) {
    let (server, dir) = server_with(backend, storage, |c| c.attachments.thumbnail_px = 100).await;
    let alice = server.user("alice").await;
    let bob = server.user("bob").await;
    let room = shared_room(&alice, &[&bob]).await;
    let original = png(640, 480);
    let att = upload_ok(&server, &alice, room.id, "shot.png", original.clone()).await;
    assert_eq!(att.content_type, "image/png");
    assert_eq!(
        (att.width, att.height, att.thumbnail),
        (Some(640), Some(480), true)
    );
    send_rest(&alice, room.id, &unique_id(), "look", &[&att.id])
        .await
        .expect("send");
    let got = download(&server, &bob, &att.id).await;
    assert!(
        got.body == original,
        "a PNG without metadata is served as uploaded"
    );
    assert_eq!(
        got.header("content-disposition"),
        Some("inline; filename*=UTF-8''shot.png")
    );
    let thumb = get(
        &server,
        Some(&bob.token),
        &format!("/api/v1/attachments/{}/thumbnail", att.id),
        &[],
    )
    .await;
    assert_eq!(
        (thumb.status, thumb.header("content-type")),
        (200, Some("image/png"))
    );
    assert_eq!(
        thumb.header("etag"),
        Some(format!("\"{}-t\"", att.id).as_str())
    );
    let small = decode(&thumb.body);
    assert_eq!((small.width(), small.height()), (100, 75));
    // Not an image: no thumbnail.
    let doc = upload_ok(&server, &alice, room.id, "doc", noise(100)).await;
    let none = get(
        &server,
        Some(&alice.token),
        &format!("/api/v1/attachments/{}/thumbnail", doc.id),
        &[],
    )
    .await;
    assert_eq!(
        (none.status, none.code()),
        (404, Some(ErrorCode::AttachmentNotFound))
    );
    // Non-members see neither.
    let carol = server.user("carol").await;
    let refused = get(
        &server,
        Some(&carol.token),
        &format!("/api/v1/attachments/{}/thumbnail", att.id),
        &[],
    )
    .await;
    let missing = get(
        &server,
        Some(&carol.token),
        "/api/v1/attachments/0123456789abcdef0123456789abcdef/thumbnail",
        &[],
    )
    .await;
    assert_eq!(refused, missing);
    // Deleting the message deletes the thumbnail too.
    let files = stored_files(dir.path());
    assert!(files.contains(&format!("thumbs/{}", att.id)), "{files:?}");
    let seq = bob.api.all_events(room.id).await.expect("history").iter().rev().find(|e| {
        matches!(&e.event, EventBody::Message { attachments, .. } if attachments.iter().any(|a| a.id == att.id))
    }).expect("the message").seq;
    alice
        .api
        .delete_message(room.id, seq)
        .await
        .expect("delete");
    chat_server::attachments::collect(server.state())
        .await
        .expect("collect");
    assert_eq!(stored_files(dir.path()), vec![format!("blobs/{}", doc.id)]);
}

async fn exif_is_stripped_from_photos(backend: Backend, storage: Storage) {
    let (server, dir) = server_with(backend, storage, |_| {}).await;
    let alice = server.user("alice").await;
    let bob = server.user("bob").await;
    let room = shared_room(&alice, &[&bob]).await;
    let photo = jpeg_with_gps(400, 300);
    let exif = img_parts::jpeg::Jpeg::from_bytes(photo.clone().into()).expect("jpeg");
    assert!(
        img_parts::ImageEXIF::exif(&exif).is_some(),
        "the test photo carries EXIF"
    );
    assert!(contains(&photo, SECRET_PLACE));
    let att = upload_ok(&server, &alice, room.id, "IMG_0001.JPG", photo.clone()).await;
    assert_eq!(att.content_type, "image/jpeg");
    assert_eq!(
        (att.width, att.height, att.thumbnail),
        (Some(400), Some(300), true)
    );
    assert!(
        att.size < photo.len() as u64,
        "{} >= {}",
        att.size,
        photo.len()
    );
    send_rest(&alice, room.id, &unique_id(), "holiday", &[&att.id])
        .await
        .expect("send");
    let got = download(&server, &bob, &att.id).await;
    assert_eq!(got.body.len() as u64, att.size);
    assert!(
        !contains(&got.body, SECRET_PLACE),
        "the place is still in the photo"
    );
    assert!(
        !contains(&got.body, b"Exif\0\0"),
        "EXIF is still in the photo"
    );
    let served = img_parts::jpeg::Jpeg::from_bytes(got.body.clone().into()).expect("jpeg");
    assert!(img_parts::ImageEXIF::exif(&served).is_none());
    // Lossless: the same pixels.
    assert_eq!(decode(&got.body).to_rgb8(), decode(&photo).to_rgb8());
    let thumb = get(
        &server,
        Some(&bob.token),
        &format!("/api/v1/attachments/{}/thumbnail", att.id),
        &[],
    )
    .await;
    assert_eq!(thumb.header("content-type"), Some("image/jpeg"));
    assert!(!contains(&thumb.body, SECRET_PLACE));
    assert_eq!(decode(&thumb.body).width(), 320);
    // Nothing on disk keeps it either.
    for f in stored_files(dir.path()) {
        let bytes = std::fs::read(dir.path().join(&f)).expect("stored file");
        assert!(!contains(&bytes, SECRET_PLACE), "{f} keeps the place");
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

async fn decompression_bombs_are_refused(backend: Backend, storage: Storage) {
    let (server, dir) = server_with(backend, storage, |c| {
        c.attachments.max_image_pixels = 1_000_000
    })
    .await;
    let alice = server.user("alice").await;
    let room = shared_room(&alice, &[]).await;
    // 4 million pixels of one colour: a few KB that decode to 12 MB.
    let mut bomb = std::io::Cursor::new(Vec::new());
    image::RgbImage::new(2000, 2000)
        .write_to(&mut bomb, image::ImageFormat::Png)
        .expect("encode");
    let bomb = bomb.into_inner();
    assert!(bomb.len() < 100_000, "{}", bomb.len());
    assert_eq!(
        upload(&server, &alice, room.id, "bomb.png", bomb)
            .await
            .unwrap_err(),
        (413, Some(ErrorCode::TooLarge))
    );
    // A header that claims 100000 × 100000 pixels.
    let mut huge = png(8, 8);
    huge[16..20].copy_from_slice(&100_000u32.to_be_bytes());
    huge[20..24].copy_from_slice(&100_000u32.to_be_bytes());
    let crc = crc32(&huge[12..29]);
    huge[29..33].copy_from_slice(&crc.to_be_bytes());
    assert_eq!(
        upload(&server, &alice, room.id, "huge.png", huge)
            .await
            .unwrap_err(),
        (413, Some(ErrorCode::TooLarge))
    );
    // A PNG signature on garbage.
    let mut broken = b"\x89PNG\r\n\x1a\n".to_vec();
    broken.extend(noise(1000));
    assert_eq!(
        upload(&server, &alice, room.id, "broken.png", broken)
            .await
            .unwrap_err(),
        (415, Some(ErrorCode::UnsupportedType))
    );
    // Within the limit it works, and nothing refused was kept.
    let ok = upload_ok(&server, &alice, room.id, "ok.png", png(1000, 1000)).await;
    let mut files = stored_files(dir.path());
    files.sort();
    assert_eq!(
        files,
        vec![format!("blobs/{}", ok.id), format!("thumbs/{}", ok.id)]
    );
}

/// CRC-32 of PNG chunks (ISO 3309).
fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

storage_tests!(
    images_get_dimensions_and_thumbnails,
    exif_is_stripped_from_photos,
    decompression_bombs_are_refused,
    upload_send_download_only_for_members,
    attaching_is_checked,
    one_upload_one_message,
    ranges_and_empty_files,
    limits_and_types,
    deleting_the_message_deletes_its_files,
    orphans_and_retention_are_collected,
    off_without_a_directory,
);

/// Two nodes on one Redis and shared storage (a directory both mount, or one S3 bucket):
/// uploaded on one, attached and downloaded on the other.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn across_two_nodes_with_a_shared_directory() {
    across_two_nodes(Storage::Dir).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn across_two_nodes_on_s3() {
    across_two_nodes(Storage::S3).await
}

async fn across_two_nodes(storage: Storage) {
    let redis = Arc::new(RedisServer::start().await);
    let dir = Files::new(storage).await;
    let n1 = TestServer::start_on_redis(&redis, |c| dir.configure(c)).await;
    let n2 = TestServer::start_on_redis(&redis, |c| dir.configure(c)).await;
    let alice = n1.user("alice").await;
    let bob = n2.user("bob").await;
    let room = shared_room(&alice, &[&bob]).await;
    let bytes = noise(2_500_000);
    let att = upload_ok(&n1, &alice, room.id, "big.bin", bytes.clone()).await;
    let mut b2 = n2.ws(&bob).await;
    let mut a2 = n2.ws(&alice).await;
    let client_id = unique_id();
    a2.send_frame(&send_frame(room.id, &client_id, "from node 2", &[&att]))
        .await;
    a2.await_ack(room.id, &client_id).await.expect("ack");
    let ev = b2.expect_event().await;
    assert_eq!(attachments_of(&ev), std::slice::from_ref(&att));
    let got = download(&n2, &bob, &att.id).await;
    assert_eq!(got.status, 200);
    assert!(got.body == bytes, "bytes differ across nodes");
    let part = get(
        &n1,
        Some(&bob.token),
        &format!("/api/v1/attachments/{}", att.id),
        &[("range", "bytes=1000000-1000009")],
    )
    .await;
    assert_eq!(part.body, bytes[1_000_000..1_000_010]);
    // A range over several of the directory storage's 256 KiB reads.
    let part = get(
        &n1,
        Some(&bob.token),
        &format!("/api/v1/attachments/{}", att.id),
        &[("range", "bytes=200000-899999")],
    )
    .await;
    assert!(part.body == bytes[200_000..900_000], "a long range differs");
    // Deleted on node 1, collected by node 2.
    alice
        .api
        .delete_message(room.id, ev.seq)
        .await
        .expect("delete");
    chat_server::attachments::collect(n2.state())
        .await
        .expect("collect");
    assert!(stored_files(dir.path()).is_empty());
    assert_eq!(download(&n1, &bob, &att.id).await.status, 404);
}

/// An export carries the upload records (`chat-server admin export`/`import`): moved from the
/// embedded store to Redis over the same directory, attached files still download, a pending
/// upload can still be attached, quotas are the same, and the collector deletes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_and_import_keep_attachments() {
    let files = tempfile::tempdir().expect("temp dir");
    let dir = files.path().to_path_buf();
    let configure = |c: &mut chat_server::Config| c.attachments.dir = Some(dir.clone());
    let from = TestServer::start_with(Backend::Memory, configure).await;
    let alice = from.user("alice").await;
    let bob = from.user("bob").await;
    let room = shared_room(&alice, &[&bob]).await;
    let photo = upload_ok(&from, &alice, room.id, "p.png", png(64, 48)).await;
    send_rest(&alice, room.id, &unique_id(), "", &[&photo.id])
        .await
        .expect("send");
    let pending = upload_ok(&from, &alice, room.id, "later.bin", noise(500)).await;
    let usage = from
        .state()
        .store
        .upload_usage(alice.id)
        .await
        .expect("usage");
    let data = from
        .state()
        .store
        .dump(chat_server::auth::now_ms())
        .await
        .expect("export");
    assert_eq!(data.uploads.len(), 2);
    let text = chat_server::backup::encode(&data);
    let data = chat_server::backup::decode(&text).expect("decode");
    let to = TestServer::start_with(Backend::Redis, configure).await;
    to.state().store.load(&data).await.expect("import");

    let got = download(&to, &bob, &photo.id).await;
    assert_eq!(
        (got.status, got.header("content-type")),
        (200, Some("image/png"))
    );
    let thumb = get(
        &to,
        Some(&bob.token),
        &format!("/api/v1/attachments/{}/thumbnail", photo.id),
        &[],
    )
    .await;
    assert_eq!(thumb.status, 200);
    assert_eq!(
        to.state()
            .store
            .upload_usage(alice.id)
            .await
            .expect("usage"),
        usage
    );
    // Even with every file old, nothing is a stray: each has its record.
    let hours_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(2 * 3600);
    for f in stored_files(&dir) {
        let file = std::fs::File::options()
            .write(true)
            .open(dir.join(&f))
            .expect("open");
        file.set_modified(hours_ago).expect("mtime");
    }
    let done = chat_server::attachments::collect(to.state())
        .await
        .expect("collect");
    assert_eq!((done.deleted, done.strays), (0, 0));
    let alice_there = TestUser {
        api: alice.api_on(&to),
        ..alice.clone()
    };
    send_rest(&alice_there, room.id, &unique_id(), "now", &[&pending.id])
        .await
        .expect("the pending upload is still attachable");
    assert_eq!(download(&to, &bob, &pending.id).await.status, 200);
}
