//! Wire types of the chat protocol, shared by the server, the desktop backend and the UI.
//!
//! Only serde types and pure validation live here: no I/O, no runtime, so the crate builds for
//! `wasm32-unknown-unknown`. `docs/protocol.md` describes the same types for client authors;
//! when the two disagree, this crate is the truth and the document is a bug.
//!
//! Layout: [`ids`] (identifiers), [`error`] (error codes), [`rest`] (HTTP bodies),
//! [`ws`] (WebSocket frames in both directions), [`event`] (the room event stream),
//! [`limits`] and [`validate`] (rules both sides check).

pub mod attachment;
pub mod error;
pub mod event;
pub mod ids;
pub mod ipc;
pub mod limits;
pub mod rest;
pub mod validate;
pub mod ws;

pub use attachment::Attachment;
pub use error::{ErrorBody, ErrorCode};
pub use event::{EventBody, RoomEvent};
pub use ids::{RoomId, UserId};
pub use ws::{ClientFrame, ServerFrame};

/// Protocol version announced in `welcome`; bumped on incompatible changes.
pub const PROTOCOL_VERSION: u32 = 1;

/// WebSocket close codes the server uses, beyond the standard ones.
pub mod close {
    /// Standard "going away": the server is shutting down; reconnect (possibly elsewhere) and resume.
    pub const GOING_AWAY: u16 = 1001;
    /// Standard "message too big": a frame exceeded the frame size limit.
    pub const TOO_BIG: u16 = 1009;
    /// The token is invalid, expired or was revoked (logout). Log in again; do not retry with it.
    pub const UNAUTHORIZED: u16 = 4001;
    /// No `hello` arrived in time after the socket opened.
    pub const AUTH_TIMEOUT: u16 = 4002;
    /// The client did not read fast enough and its outbound queue filled. Reconnect and resume.
    pub const SLOW_CONSUMER: u16 = 4008;
    /// The store lost its data (Redis restarted without persistence, or was flushed): sessions,
    /// rooms and history are gone and seqs would start again. Drop the local state of this
    /// server; the old token no longer works (sign in again).
    pub const STORE_RESET: u16 = 4010;
    /// The client kept sending after being rate limited.
    pub const RATE_LIMITED: u16 = 4029;
    /// The account holds as many sockets on this node as it may (`too_many_connections`).
    pub const TOO_MANY_CONNECTIONS: u16 = 4013;
}
