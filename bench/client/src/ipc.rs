//! The IPC commands a click on a room makes, timed in-process against a filled cache through
//! [`Backend::execute`] (the one dispatch behind the Tauri command, JSON result included), with
//! the app offline as in the window runs: where the click → newest-message time goes on the
//! backend's side.

use crate::fill::{self, Account, Fill};
use crate::search::quantile;
use crate::{Error, Result};
use chat_desktop::credentials::MemoryTokens;
use chat_desktop::{Backend, EventSink, Options};
use protocol::ipc::{AppEvent, Command};
use protocol::RoomId;
use serde::Serialize;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

struct NoSink;

impl EventSink for NoSink {
    fn emit(&self, _event: AppEvent) {}
    fn notify(&self, _title: &str, _body: &str) {}
    fn unread_changed(&self, _total: u64) {}
}

/// Median and worst time of one command.
#[derive(Debug, Clone, Serialize)]
pub struct Timed {
    pub command: String,
    pub p50_ms: f64,
    pub max_ms: f64,
    /// The command failed (offline): its error, as the UI would get it.
    pub error: Option<String>,
}

/// Fills a cache of `messages` over `rooms` in `dir`, opens the backend on it and times each
/// command `runs` times.
pub async fn run(dir: &Path, rooms: u32, messages: u64, runs: usize) -> Result<Vec<Timed>> {
    let path = dir.join(format!("ipc-{messages}.sqlite3"));
    let account = Account::new("http://127.0.0.1:9");
    let f = Fill {
        rooms,
        messages,
        seed: 1,
    };
    fill::create(
        &path,
        chat_desktop::cache::DEFAULT_KEEP_PER_ROOM,
        &f,
        Some(&account),
    )
    .await?;
    let tokens = MemoryTokens::default();
    fill::save_token(&tokens, &account)?;
    let backend = Backend::open(Options::new(&path), Arc::new(tokens), Arc::new(NoSink)).await?;
    let room = RoomId(u64::from(fill::newest(&f).map_or(rooms, |(r, _)| r)));
    let last = backend
        .cache()
        .last_message(room)
        .await?
        .and_then(|m| m.seq)
        .unwrap_or(0);
    let commands = [
        ("rooms", Command::Rooms),
        (
            "messages (newest 50)",
            Command::Messages {
                room,
                before: None,
                limit: Some(50),
            },
        ),
        ("members", Command::Members { room }),
        ("mark_read", Command::MarkRead { room, seq: last }),
        ("get_draft", Command::GetDraft { room }),
        ("set_focus", Command::SetFocus { room: Some(room) }),
    ];
    let mut out = Vec::new();
    for (name, command) in commands {
        let mut times = Vec::new();
        let mut error = None;
        for _ in 0..runs.max(1) {
            let t = Instant::now();
            let result = backend.execute(command.clone()).await;
            times.push(t.elapsed());
            if let Err(e) = result {
                error = Some(e.to_string());
            }
        }
        times.sort();
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        out.push(Timed {
            command: name.to_owned(),
            p50_ms: ms(quantile(&times, 0.5)),
            max_ms: ms(times.last().copied().unwrap_or_default()),
            error,
        });
    }
    backend.shutdown().await;
    let _ = std::fs::remove_file(&path);
    if out.is_empty() {
        return Err(Error::Invalid("nothing timed".into()));
    }
    Ok(out)
}
