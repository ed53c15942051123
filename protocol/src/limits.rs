//! Limits the server announces in `welcome` so clients can check input before sending.

use serde::{Deserialize, Serialize};

/// Server limits. Defaults are the server's defaults; operators may change them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Limits {
    /// Largest message text in bytes (UTF-8).
    pub max_message_bytes: usize,
    /// Largest WebSocket frame in bytes; bigger frames close the socket with code 1009.
    pub max_frame_bytes: usize,
    /// Largest `limit` for one history page.
    pub max_history_page: usize,
    /// Most events replayed per room on resume; larger gaps get a `gap` frame instead.
    pub max_replay: usize,
    /// How long a typing indicator lasts unless refreshed, in milliseconds.
    pub typing_ttl_ms: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_message_bytes: 4096,
            max_frame_bytes: 64 * 1024,
            max_history_page: 100,
            max_replay: 1000,
            typing_ttl_ms: 6000,
        }
    }
}

/// Distinct emoji one message may carry: a new emoji beyond it gets `limit_reached`.
pub const MAX_REACTIONS_PER_MESSAGE: usize = 20;
/// Distinct emoji one user may put on one message: more get `limit_reached`.
pub const MAX_REACTIONS_PER_USER: usize = 10;
