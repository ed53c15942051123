//! `chat-bench`: a load generator for the chat server and for its comparison peer, a Node.js
//! Socket.IO server on the same Redis (`peers/socketio/`).
//!
//! Layers, bottom up: [`procs`] starts and measures the processes under test (Redis, server
//! nodes) and reads `/proc`; [`wire`] speaks both wire protocols over one WebSocket client;
//! [`setup`] provisions users and rooms over REST; [`load`] runs a fleet of connections with
//! open-loop senders and exactly-once accounting; [`scenario`] holds the named presets (`idle`,
//! `fanout`, `two-node`, `history`), the idle one with its client sockets spread over [`worker`]
//! processes; [`report`] repeats them for both targets and writes
//! `docs/BENCHMARKS.md` with its plots ([`plot`]). [`floor`] is the third target of the fanout
//! scenario: a bare broadcast server that shows what the hardware allows. [`files`] is the
//! attachments scenario (concurrent uploads and downloads against the disk's own speed),
//! reported and merged into an existing report by [`files_report`].

pub mod files;
pub mod files_report;
pub mod floor;
pub mod load;
pub mod plot;
pub mod procs;
pub mod report;
pub mod scenario;
pub mod setup;
pub mod wire;
pub mod worker;

use serde::{Deserialize, Serialize};
use std::net::SocketAddr;

/// Everything that can stop a benchmark run.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    #[error("websocket: {0}")]
    Ws(#[from] tokio_tungstenite::tungstenite::Error),
    #[error("http: {0}")]
    Http(#[from] reqwest::Error),
    #[error("rest: {0}")]
    Rest(#[from] chat_client::Error),
    #[error("json: {0}")]
    Json(#[from] serde_json::Error),
    #[error("{what} timed out")]
    Timeout { what: String },
    #[error("protocol: {0}")]
    Protocol(String),
    #[error("setup: {0}")]
    Setup(String),
    #[error("process: {0}")]
    Process(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Which server implementation a run measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum Target {
    /// This project's Rust server (`chat-server`).
    Ours,
    /// Node.js + Socket.IO 4 + `@socket.io/redis-adapter` (`bench/peers/socketio`).
    Socketio,
    /// A bare broadcast server on our WebSocket stack ([`floor`]): the work every broadcast
    /// server must do per delivery. Fanout only.
    Floor,
}

impl Target {
    pub fn label(self) -> &'static str {
        match self {
            Target::Ours => "chat-server (Rust)",
            Target::Socketio => "Socket.IO (Node)",
            Target::Floor => "floor (bare broadcast, Rust)",
        }
    }
}

/// Where the servers of one run listen and which processes to measure.
#[derive(Debug, Clone)]
pub struct Deployment {
    pub target: Target,
    /// HTTP + WebSocket address of each server node.
    pub nodes: Vec<SocketAddr>,
    /// Server processes whose CPU and RSS are measured (empty when the server runs in-process).
    pub server_pids: Vec<u32>,
    /// The shared Redis, if any: its address (for `INFO`) and pid (for CPU).
    pub redis: Option<procs::RedisInfo>,
}
