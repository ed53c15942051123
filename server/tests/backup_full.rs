//! Export and import at full size (issue 12), run by hand (minutes, a few GB):
//!
//! ```text
//! cargo test -p chat-server --release --test backup_full -- --ignored --nocapture
//! ```
//!
//! A data set of `CHAT_FULL_USERS` accounts (default 10,000), `CHAT_FULL_ROOMS` public rooms
//! (1,000) of `CHAT_FULL_MEMBERS` members each (50) and `CHAT_FULL_MESSAGES` messages (1,000,000,
//! spread evenly) is loaded into the embedded store; then the way an operator moves it:
//! the admin route's export (embedded), `chat-server admin import` of that file into an empty
//! Redis, `chat-server admin export` from it. The two exports must be byte-identical, and a
//! member must see the same newest page of a room on a server on the imported Redis. Prints the
//! time and peak memory (VmHWM) of each step; the figures go to docs/RELIABILITY.md.

mod common;

use common::*;
use protocol::event::{EventBody, Role};
use protocol::rest::{RoomKind, Visibility};
use protocol::{RoomId, UserId};
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

fn size(var: &str, default: u64) -> u64 {
    std::env::var(var)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Peak resident memory of this process so far, in MiB.
fn own_peak_mib() -> u64 {
    peak_mib(std::process::id()).unwrap_or(0)
}

fn peak_mib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kib / 1024)
}

/// Runs `chat-server admin <args>` against `redis`; returns (stdout, seconds, peak MiB).
async fn admin_measured(redis: &RedisServer, args: &[&str]) -> (String, f64, u64) {
    let started = Instant::now();
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_chat-server"))
        .arg("admin")
        .args(args)
        .env_clear()
        .env("CHAT_REDIS_URL", &redis.url)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let pid = child.id().unwrap();
    let mut peak = 0;
    let stdout = child.stdout.take().unwrap();
    let reader = tokio::spawn(async move {
        let mut out = Vec::new();
        let mut stdout = stdout;
        tokio::io::AsyncReadExt::read_to_end(&mut stdout, &mut out)
            .await
            .unwrap();
        out
    });
    let deadline = Instant::now() + Duration::from_secs(3600);
    let status = loop {
        if let Some(mib) = peak_mib(pid) {
            peak = peak.max(mib);
        }
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "chat-server admin {args:?} hung");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let out = reader.await.unwrap();
    let mut err = String::new();
    tokio::io::AsyncReadExt::read_to_string(&mut child.stderr.take().unwrap(), &mut err)
        .await
        .unwrap();
    assert!(status.success(), "chat-server admin {args:?}: {err}");
    (
        String::from_utf8(out).unwrap(),
        started.elapsed().as_secs_f64(),
        peak,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "minutes and gigabytes: run by hand (see the module docs)"]
async fn full_size_round_trip() {
    let users = size("CHAT_FULL_USERS", 10_000);
    let rooms = size("CHAT_FULL_ROOMS", 1_000);
    let members = size("CHAT_FULL_MEMBERS", 50).min(users);
    let messages = size("CHAT_FULL_MESSAGES", 1_000_000);
    println!("full size: {users} users, {rooms} rooms x {members} members, {messages} messages");

    // One real password hash (argon2id), shared by every generated account.
    let seed = TestServer::start(Backend::Memory).await;
    let probe = seed.user("probe").await;
    let hash = seed
        .state()
        .store
        .user(probe.id)
        .await
        .unwrap()
        .unwrap()
        .password_hash;
    drop(seed);

    let started = Instant::now();
    let now = chat_server::auth::now_ms();
    let mut data = chat_server::store::dump::DataSet {
        epoch: "full-size".into(),
        last_user: users,
        last_room: rooms,
        ..Default::default()
    };
    for id in 1..=users {
        data.users.push(chat_server::store::UserRecord {
            id: UserId(id),
            username: format!("user{id}"),
            password_hash: hash.clone(),
            created_ts: now - 86_400_000,
            admin: id == 1,
            disabled: false,
        });
    }
    let per_room = messages / rooms.max(1);
    for r in 1..=rooms {
        let room = RoomId(r);
        let owner = UserId((r - 1) % users + 1);
        let mut ts = now - 3_600_000;
        data.rooms.push(chat_server::store::dump::RoomRecord {
            id: room,
            name: format!("room-{r}"),
            kind: RoomKind::Group,
            visibility: Visibility::Public,
            owner: Some(owner),
            topic: String::new(),
            last_seq: per_room,
            last_ts: ts + per_room as i64,
            pair: None,
        });
        let mut in_room: Vec<UserId> = (0..members)
            .map(|k| UserId((r - 1 + k * 97) % users + 1))
            .collect();
        in_room.sort();
        in_room.dedup();
        for user in &in_room {
            let role = if *user == owner {
                Role::Owner
            } else {
                Role::Member
            };
            data.members.push((room, *user, role));
        }
        for seq in 1..=per_room {
            ts += 1;
            let sender = in_room[(seq as usize) % in_room.len()];
            let event = EventBody::Message {
                id: format!("c{r}-{seq}"),
                sender,
                sender_name: format!("user{sender}"),
                body: format!(
                    "message {seq} of room {r}: the quick brown fox jumps over the lazy dog"
                ),
                edited_ts: None,
                deleted: false,
                reply_to: None,
                reactions: Vec::new(),
                mentions: Vec::new(),
                mention_room: false,
                attachments: Vec::new(),
            };
            let json = serde_json::to_string(&event).unwrap();
            data.events
                .push(chat_server::store::bus::event_frame(room, seq, ts, &json));
        }
    }
    data.sort();
    println!(
        "generated in {:.1} s (test process peak {} MiB)",
        started.elapsed().as_secs_f64(),
        own_peak_mib()
    );

    // The embedded store: loaded in-process, exported by the admin route.
    let trial = TestServer::start(Backend::Memory).await;
    let started = Instant::now();
    trial.state().store.load(&data).await.unwrap();
    println!("embedded load: {:.1} s", started.elapsed().as_secs_f64());
    drop(data);
    let admin = trial.api().with_token(
        &trial
            .api()
            .login("user1", PASSWORD, Some("full-size"))
            .await
            .unwrap()
            .token,
    );
    let started = Instant::now();
    let (status, first) = admin
        .raw(reqwest::Method::GET, "/api/v1/admin/export", None)
        .await;
    assert_eq!(status, 200);
    println!(
        "embedded export (admin route): {:.1} s, {} MiB, {} lines (test process peak {} MiB)",
        started.elapsed().as_secs_f64(),
        first.len() >> 20,
        first.lines().count(),
        own_peak_mib()
    );
    // user1 owns room 1.
    let newest =
        serde_json::to_string(&admin.history(RoomId(1), None, None, None).await.unwrap()).unwrap();
    drop(trial);

    // Into an empty Redis and out again with the binary, as an operator would.
    let file = std::env::temp_dir().join(format!("chat-full-{}.jsonl", unique_id()));
    std::fs::write(&file, &first).unwrap();
    let redis = Arc::new(RedisServer::start().await);
    let (out, secs, peak) = admin_measured(&redis, &["import", file.to_str().unwrap()]).await;
    println!("redis import: {secs:.1} s, peak {peak} MiB: {}", out.trim());
    let (again, secs, peak) = admin_measured(&redis, &["export"]).await;
    println!("redis export: {secs:.1} s, peak {peak} MiB");
    let _ = std::fs::remove_file(&file);
    assert!(
        again == first,
        "the Redis export differs from the embedded one ({} vs {} bytes)",
        again.len(),
        first.len()
    );
    let server = TestServer::start_on_redis(&redis, |_| {}).await;
    let api = server.api().with_token(
        &server
            .api()
            .login("user1", PASSWORD, Some("after the move"))
            .await
            .unwrap()
            .token,
    );
    assert_eq!(
        serde_json::to_string(&api.history(RoomId(1), None, None, None).await.unwrap()).unwrap(),
        newest,
        "the newest page of a room differs after the move"
    );
    println!("round trip byte-identical; history the same on the imported Redis");
}
