//! Attachments on the desktop (issue 14) against a real server storing files in a directory:
//! files sent from the app reach the other user byte for byte and the other user's reach the
//! app (thumbnail, whole, saved); an upload written offline or interrupted by an app restart
//! is delivered once; a cancelled one sends nothing; refusals (too_large, quota_exceeded,
//! unsupported_type) are typed and lose nothing; the downloaded-file cache stays within its
//! bound and is emptied at logout.

mod common;

use common::*;
use protocol::ipc::{AppEvent, ConnectionState, MessageStatus, MessageView};
use protocol::rest::Room;
use protocol::{Attachment, ErrorCode, EventBody, RoomId};
use serde_json::json;
use std::path::{Path, PathBuf};

/// A server with attachments stored in a temp directory (kept while the test runs).
async fn files_server(
    redis: &Redis,
    tweak: impl FnOnce(&mut chat_server::attachments::AttachmentConfig),
) -> (Server, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("temp dir: {e}"));
    let path = dir.path().to_owned();
    let server = Server::start_with(redis, move |c| {
        c.attachments.dir = Some(path);
        tweak(&mut c.attachments);
    })
    .await;
    (server, dir)
}

/// A real PNG (a colour gradient), without metadata, so the server serves it unchanged.
fn png(w: u32, h: u32) -> Vec<u8> {
    common::png::encode(w, h, |x, y| [(x * 255 / w) as u8, (y * 255 / h) as u8, 128])
}

/// `n` bytes that no sniffer mistakes for a known type and no compressor shrinks.
fn noise(n: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap_or_else(|e| panic!("write {name}: {e}"));
    path
}

/// Entries in a folder of the app's home (none when it does not exist).
fn entries(dir: &Path) -> Vec<String> {
    match std::fs::read_dir(dir) {
        Ok(list) => list
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect(),
        Err(_) => Vec::new(),
    }
}

/// `peer` uploads `bytes` as `name` to `room`.
async fn upload_as(peer: &Peer, room: RoomId, name: &str, bytes: Vec<u8>) -> Attachment {
    ok(peer.api.upload(room, name, bytes, None, None)).await
}

/// `peer` downloads attachment `id` (asserting success).
async fn download_as(peer: &Peer, id: &str) -> Vec<u8> {
    let response = ok(peer.api.download(id, false, None)).await;
    within("download body", response.bytes())
        .await
        .unwrap_or_else(|e| panic!("download body: {e}"))
        .to_vec()
}

/// The messages of a room as the server has them: (body, attachments).
async fn server_messages(peer: &Peer, room: RoomId) -> Vec<(String, Vec<Attachment>)> {
    peer.history(room)
        .await
        .events
        .into_iter()
        .filter_map(|e| match e.event {
            EventBody::Message {
                body, attachments, ..
            } => Some((body, attachments)),
            _ => None,
        })
        .collect()
}

/// Waits for upload progress of `client_id` strictly between 0 and the total.
async fn wait_mid_upload(ui: &mut Ui, client_id: &str) -> (u64, u64) {
    ui.wait_for("upload progress mid-way", |s| match s {
        Seen::Event(AppEvent::UploadProgress {
            client_id: id,
            sent,
            total,
            ..
        }) if id == client_id && *sent > 0 && sent < total => Some((*sent, *total)),
        _ => None,
    })
    .await
}

async fn wait_sent(ui: &mut Ui, client_id: &str) -> MessageView {
    ui.wait_message("the message with files, sent", |m| {
        m.client_id == client_id && is_sent(m)
    })
    .await
}

async fn setup(server: &Server, home: &Home) -> (chat_desktop::Backend, Ui, Peer, Room) {
    let (backend, ui, _me) = signed_up(home, server, "ann").await;
    let (bob, room) = in_peers_room(&backend, server, "files").await;
    (backend, ui, bob, room)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_travel_both_ways_byte_identical() {
    let redis = Redis::start().await;
    let (server, _files) = files_server(&redis, |_| {}).await;
    let home = Home::new();
    let (backend, mut ui, bob, room) = setup(&server, &home).await;

    // Ann attaches a picture and a file; the originals go at once (the app has copies).
    let originals = tempfile::tempdir().unwrap_or_else(|e| panic!("temp dir: {e}"));
    let picture = png(64, 48);
    let data = noise(300_000, 7);
    let paths = [
        write(originals.path(), "picture.png", &picture),
        write(originals.path(), "data.bin", &data),
    ];
    let pending = within(
        "send_files",
        backend.send_files(room.id, &paths, "two files", None),
    )
    .await
    .unwrap_or_else(|e| panic!("send_files: {e}"));
    drop(originals);
    assert_eq!(pending.status, MessageStatus::Pending);
    let names: Vec<&str> = pending.uploads.iter().map(|u| u.name.as_str()).collect();
    assert_eq!(names, ["picture.png", "data.bin"]);
    assert_eq!(pending.uploads[1].size, 300_000);

    let sent = wait_sent(&mut ui, &pending.client_id).await;
    assert_eq!(sent.body, "two files");
    assert!(sent.uploads.is_empty());
    let [image, file] = sent.attachments.as_slice() else {
        panic!("two attachments expected: {:?}", sent.attachments)
    };
    assert_eq!(
        (image.name.as_str(), image.content_type.as_str()),
        ("picture.png", "image/png")
    );
    assert_eq!(
        (image.width, image.height, image.thumbnail),
        (Some(64), Some(48), true)
    );
    assert_eq!(file.name, "data.bin");
    assert_eq!(file.size, 300_000);
    // The progress reached the end, and the staged copies are gone.
    let log = ui.log.lock().map(|l| l.clone()).unwrap_or_default();
    let total = (picture.len() + data.len()) as u64;
    assert!(log.iter().any(|s| matches!(s,
        Seen::Event(AppEvent::UploadProgress { client_id, sent, total: t, .. })
            if *client_id == pending.client_id && *sent == total && *t == total)));
    assert_eq!(entries(&home.path().join("staging")), Vec::<String>::new());

    // Bob sees one message with both files and downloads them byte for byte.
    let messages = server_messages(&bob, room.id).await;
    assert_eq!(messages.len(), 1);
    assert_eq!(messages[0].1, sent.attachments);
    assert_eq!(download_as(&bob, &image.id).await, picture);
    assert_eq!(download_as(&bob, &file.id).await, data);

    // Bob sends a picture and a file; the app shows them and gets their bytes.
    let bobs_picture = png(800, 400);
    let bobs_file = noise(70_000, 11);
    let a = upload_as(&bob, room.id, "wide.png", bobs_picture.clone()).await;
    let b = upload_as(&bob, room.id, "notes.txt", bobs_file.clone()).await;
    bob.send_with(room.id, "", json!({"attachments": [a.id, b.id]}))
        .await;
    let shown = ui
        .wait_message("bob's files", |m| {
            m.attachments.len() == 2 && m.sender == bob.id
        })
        .await;
    assert_eq!(shown.attachments, vec![a.clone(), b.clone()]);
    let full = within("attachment_bytes", backend.attachment_bytes(&a.id, false))
        .await
        .unwrap_or_else(|e| panic!("attachment_bytes: {e}"));
    assert_eq!(full, bobs_picture);
    let thumb = within("thumbnail", backend.attachment_bytes(&a.id, true))
        .await
        .unwrap_or_else(|e| panic!("thumbnail: {e}"));
    assert_eq!(
        common::png::dimensions(&thumb),
        Some((320, 160)),
        "a PNG thumbnail"
    );
    let saved_dir = tempfile::tempdir().unwrap_or_else(|e| panic!("temp dir: {e}"));
    let target = saved_dir.path().join("notes.txt");
    let written = within("save", backend.save_attachment(&b.id, &target))
        .await
        .unwrap_or_else(|e| panic!("save_attachment: {e}"));
    assert_eq!(written, 70_000);
    assert_eq!(std::fs::read(&target).ok(), Some(bobs_file));
    assert_eq!(entries(saved_dir.path()), vec!["notes.txt"]);

    // History shows the files from the cache, also with the server gone.
    let mut server = server;
    server.down().await;
    ui.wait_state("Reconnecting", |s| {
        matches!(s, ConnectionState::Reconnecting { .. })
    })
    .await;
    let page = within("messages", backend.messages(room.id, None, None))
        .await
        .unwrap_or_else(|e| panic!("messages: {e}"));
    let with_files: Vec<usize> = page.messages.iter().map(|m| m.attachments.len()).collect();
    assert_eq!(with_files, vec![2, 2]);
    // The picture was cached when shown: it shows offline too.
    let again = within("cached bytes", backend.attachment_bytes(&a.id, false))
        .await
        .unwrap_or_else(|e| panic!("offline attachment_bytes: {e}"));
    assert_eq!(again, bobs_picture);
    backend.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_written_offline_is_delivered_once_after_reconnect() {
    let redis = Redis::start().await;
    let (mut server, _files) = files_server(&redis, |_| {}).await;
    let home = Home::new();
    let (backend, mut ui, bob, room) = setup(&server, &home).await;

    server.down().await;
    ui.wait_state("Reconnecting", |s| {
        matches!(s, ConnectionState::Reconnecting { .. })
    })
    .await;
    let originals = tempfile::tempdir().unwrap_or_else(|e| panic!("temp dir: {e}"));
    let data = noise(200_000, 3);
    let path = write(originals.path(), "offline.bin", &data);
    let pending = within("send_files", backend.send_files(room.id, &[path], "", None))
        .await
        .unwrap_or_else(|e| panic!("send_files: {e}"));
    // Waiting in the outbox: shown pending with its file.
    let page = within("messages", backend.messages(room.id, None, None))
        .await
        .unwrap_or_else(|e| panic!("messages: {e}"));
    assert_eq!(
        page.messages.last().map(|m| &m.uploads),
        Some(&pending.uploads)
    );
    drop(originals);

    server.up().await;
    let sent = wait_sent(&mut ui, &pending.client_id).await;
    assert_eq!(sent.body, "");
    let messages = server_messages(&bob, room.id).await;
    assert_eq!(messages.len(), 1, "exactly one message: {messages:?}");
    assert_eq!(messages[0].1, sent.attachments);
    assert_eq!(download_as(&bob, &sent.attachments[0].id).await, data);
    backend.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_cut_by_an_app_restart_is_sent_once_by_the_next_start() {
    let redis = Redis::start().await;
    let (server, _files) = files_server(&redis, |_| {}).await;
    let home = Home::new();
    let (backend, mut ui, bob, room) = setup(&server, &home).await;

    // Slow enough that the app closes in the middle of the upload.
    backend.throttle_uploads(Some(256 * 1024));
    let originals = tempfile::tempdir().unwrap_or_else(|e| panic!("temp dir: {e}"));
    let data = noise(1_500_000, 5);
    let path = write(originals.path(), "big.bin", &data);
    let pending = within(
        "send_files",
        backend.send_files(room.id, &[path], "big one", None),
    )
    .await
    .unwrap_or_else(|e| panic!("send_files: {e}"));
    wait_mid_upload(&mut ui, &pending.client_id).await;
    drop(backend);
    drop(ui);
    drop(originals);

    let (backend, mut ui) = home.open().await;
    let sent = wait_sent(&mut ui, &pending.client_id).await;
    assert_eq!(sent.body, "big one");
    let messages = server_messages(&bob, room.id).await;
    assert_eq!(messages.len(), 1, "exactly one message: {messages:?}");
    assert_eq!(messages[0].1.len(), 1);
    assert_eq!(download_as(&bob, &messages[0].1[0].id).await, data);
    assert_eq!(entries(&home.path().join("staging")), Vec::<String>::new());

    // Another start sends nothing again.
    backend.shutdown().await;
    let (backend, mut ui) = home.open().await;
    ui.wait_online().await;
    bob.send(room.id, "and then").await;
    ui.wait_message("and then", |m| m.body == "and then").await;
    assert_eq!(server_messages(&bob, room.id).await.len(), 2);
    backend.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_upload_sends_nothing() {
    let redis = Redis::start().await;
    let (server, _files) = files_server(&redis, |_| {}).await;
    let home = Home::new();
    let (backend, mut ui, bob, room) = setup(&server, &home).await;

    backend.throttle_uploads(Some(128 * 1024));
    let originals = tempfile::tempdir().unwrap_or_else(|e| panic!("temp dir: {e}"));
    let path = write(originals.path(), "oops.bin", &noise(1_000_000, 9));
    let pending = within(
        "send_files",
        backend.send_files(room.id, &[path], "oops", None),
    )
    .await
    .unwrap_or_else(|e| panic!("send_files: {e}"));
    wait_mid_upload(&mut ui, &pending.client_id).await;
    within("cancel", backend.cancel_upload(&pending.client_id))
        .await
        .unwrap_or_else(|e| panic!("cancel_upload: {e}"));
    // Gone from the outbox and from disk; cancelling again says so.
    assert_eq!(
        backend
            .cache()
            .outbox_entry(&pending.client_id)
            .await
            .unwrap_or_else(|e| panic!("outbox: {e}")),
        None
    );
    assert_eq!(entries(&home.path().join("staging")), Vec::<String>::new());
    let again = within("cancel again", backend.cancel_upload(&pending.client_id)).await;
    assert!(again.is_err());

    // A message written after it arrives; the cancelled one never does.
    backend.throttle_uploads(None);
    let after = within("send", backend.send(room.id, "after"))
        .await
        .unwrap_or_else(|e| panic!("send: {e}"));
    wait_sent(&mut ui, &after.client_id).await;
    let messages = server_messages(&bob, room.id).await;
    assert_eq!(messages, vec![("after".to_owned(), Vec::new())]);
    let page = within("messages", backend.messages(room.id, None, None))
        .await
        .unwrap_or_else(|e| panic!("messages: {e}"));
    assert_eq!(bodies(&page.messages), vec!["after"]);
    backend.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_are_typed_and_lose_nothing() {
    let redis = Redis::start().await;
    let (server, _files) = files_server(&redis, |c| {
        c.max_upload_bytes = 50_000;
        c.quota_bytes = 30_000;
        c.allowed_types = vec!["image/*".into()];
    })
    .await;
    let home = Home::new();
    let (backend, mut ui, bob, room) = setup(&server, &home).await;
    let originals = tempfile::tempdir().unwrap_or_else(|e| panic!("temp dir: {e}"));

    let failed_with = |client_id: String| {
        move |m: &MessageView| match &m.status {
            MessageStatus::Failed { code, .. } if m.client_id == client_id => Some(*code),
            _ => None,
        }
    };
    let big = write(originals.path(), "big.png", &noise(80_000, 1));
    let pending = within("send_files", backend.send_files(room.id, &[big], "", None))
        .await
        .unwrap_or_else(|e| panic!("send_files: {e}"));
    let pick = failed_with(pending.client_id.clone());
    let failed = ui
        .wait_message("the too-large refusal", |m| pick(m).is_some())
        .await;
    assert_eq!(pick(&failed), Some(ErrorCode::TooLarge));
    let MessageStatus::Failed { reason, .. } = &failed.status else {
        unreachable!()
    };
    assert!(!reason.is_empty());
    // Nothing lost: still in the outbox with its staged copy, shown with its file.
    assert_eq!(failed.uploads.len(), 1);
    assert!(backend
        .cache()
        .outbox_entry(&pending.client_id)
        .await
        .unwrap_or_else(|e| panic!("outbox: {e}"))
        .is_some());
    assert_eq!(
        entries(&home.path().join("staging")),
        vec![pending.client_id.clone()]
    );

    let text = write(
        originals.path(),
        "notes.txt",
        b"just some text, not a picture",
    );
    let pending_text = within("send_files", backend.send_files(room.id, &[text], "", None))
        .await
        .unwrap_or_else(|e| panic!("send_files: {e}"));
    let pick = failed_with(pending_text.client_id.clone());
    let failed = ui
        .wait_message("the unsupported-type refusal", |m| pick(m).is_some())
        .await;
    assert_eq!(pick(&failed), Some(ErrorCode::UnsupportedType));

    // Within the size limit, past the user's quota.
    let medium = write(originals.path(), "medium.png", &noise(40_000, 2));
    let pending_medium = within(
        "send_files",
        backend.send_files(room.id, &[medium], "", None),
    )
    .await
    .unwrap_or_else(|e| panic!("send_files: {e}"));
    let pick = failed_with(pending_medium.client_id.clone());
    let failed = ui
        .wait_message("the quota refusal", |m| pick(m).is_some())
        .await;
    assert_eq!(pick(&failed), Some(ErrorCode::QuotaExceeded));
    within("discard", backend.discard(&pending_medium.client_id))
        .await
        .unwrap_or_else(|e| panic!("discard: {e}"));

    // Discarding removes the message and its copy; nothing reached Bob.
    within("discard", backend.discard(&pending.client_id))
        .await
        .unwrap_or_else(|e| panic!("discard: {e}"));
    assert_eq!(
        entries(&home.path().join("staging")),
        vec![pending_text.client_id.clone()]
    );
    assert!(server_messages(&bob, room.id).await.is_empty());

    // Too many files at once is refused before anything is staged.
    let paths: Vec<PathBuf> = (0..11)
        .map(|i| write(originals.path(), &format!("{i}.png"), &png(4, 4)))
        .collect();
    let err = within("send_files", backend.send_files(room.id, &paths, "", None)).await;
    assert_eq!(
        err.err().and_then(|e| e.server_code()),
        Some(ErrorCode::InvalidMessage)
    );
    // A missing file is refused at once.
    let missing = originals.path().join("missing.png");
    assert!(within(
        "send_files",
        backend.send_files(room.id, &[missing], "", None)
    )
    .await
    .is_err());
    assert_eq!(
        entries(&home.path().join("staging")),
        vec![pending_text.client_id.clone()]
    );
    backend.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_file_cache_is_bounded_and_cleared_at_logout() {
    let redis = Redis::start().await;
    let (server, _files) = files_server(&redis, |_| {}).await;
    let home = Home::new();
    let (backend, mut ui, bob, room) = setup(&server, &home).await;
    let view = within("limit", backend.set_blob_cache_limit(100_000))
        .await
        .unwrap_or_else(|e| panic!("set_blob_cache_limit: {e}"));
    assert_eq!((view.used, view.limit), (0, 100_000));

    let mut ids = Vec::new();
    for i in 0..3u64 {
        let a = upload_as(&bob, room.id, &format!("{i}.bin"), noise(40_000, i + 20)).await;
        bob.send_with(room.id, "", json!({"attachments": [a.id]}))
            .await;
        ids.push(a.id);
    }
    ui.wait_message("the third file", |m| {
        m.attachments.first().is_some_and(|a| a.id == ids[2])
    })
    .await;
    for id in &ids {
        within("attachment_bytes", backend.attachment_bytes(id, false))
            .await
            .unwrap_or_else(|e| panic!("attachment_bytes: {e}"));
    }
    let view = backend.blob_cache().await;
    assert_eq!(view.used, 80_000, "two of three files fit");
    let blobs = home.path().join("blobs");
    let mut kept = entries(&blobs);
    kept.sort();
    let mut newest = vec![ids[1].clone(), ids[2].clone()];
    newest.sort();
    assert_eq!(kept, newest, "the least recently used went first");

    // An id the user may not see is the server's typed refusal.
    let err = within("unknown", backend.attachment_bytes(&"0".repeat(32), false)).await;
    assert_eq!(
        err.err().and_then(|e| e.server_code()),
        Some(ErrorCode::AttachmentNotFound)
    );

    within("logout", backend.logout())
        .await
        .unwrap_or_else(|e| panic!("logout: {e}"));
    assert_eq!(backend.blob_cache().await.used, 0);
    assert_eq!(entries(&blobs), Vec::<String>::new());
    backend.shutdown().await;
}
