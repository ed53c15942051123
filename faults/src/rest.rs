//! The run's REST calls (setting a run up, fetching the canonical history) through the typed
//! client (crate `chat-client`), as a member token and an error message each.

use chat_client::Client;
use protocol::rest::{AuthResponse, Room, Visibility};
use protocol::{RoomEvent, RoomId, UserId};
use std::time::Duration;

pub const PASSWORD: &str = "fault run password";

#[derive(Clone)]
pub struct Rest {
    client: Client,
}

impl Rest {
    /// A client of the node (or proxy) at `base`, `http://host:port`.
    pub fn new(base: String) -> Result<Rest, String> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| format!("HTTP client: {e}"))?;
        let base = reqwest::Url::parse(&base).map_err(|e| format!("{base}: {e}"))?;
        let client = Client::with_http(http, base).map_err(|e| e.to_string())?;
        Ok(Rest { client })
    }

    /// The client as the session of `token`.
    fn as_user(&self, token: &str) -> Client {
        self.client.with_token(token)
    }

    pub async fn register(&self, username: &str) -> Result<AuthResponse, String> {
        let auth = self.client.register(username, PASSWORD, None).await;
        auth.map_err(|e| e.to_string())
    }

    pub async fn create_room(&self, token: &str, name: &str, public: bool) -> Result<Room, String> {
        let visibility = if public {
            Visibility::Public
        } else {
            Visibility::Private
        };
        let room = self.as_user(token).create_room(name, visibility).await;
        room.map_err(|e| e.to_string())
    }

    pub async fn join(&self, token: &str, room: RoomId) -> Result<Room, String> {
        self.as_user(token)
            .join(room)
            .await
            .map_err(|e| e.to_string())
    }

    pub async fn invite(&self, token: &str, room: RoomId, user: UserId) -> Result<(), String> {
        self.as_user(token)
            .invite(room, user)
            .await
            .map_err(|e| e.to_string())
    }

    pub async fn dm(&self, token: &str, user: UserId) -> Result<Room, String> {
        self.as_user(token)
            .open_dm(user)
            .await
            .map_err(|e| e.to_string())
    }

    pub async fn room(&self, token: &str, room: RoomId) -> Result<Room, String> {
        self.as_user(token)
            .get_room(room)
            .await
            .map_err(|e| e.to_string())
    }

    /// The room's whole history, paging forward.
    pub async fn history(&self, token: &str, room: RoomId) -> Result<Vec<RoomEvent>, String> {
        self.as_user(token)
            .all_events(room)
            .await
            .map_err(|e| e.to_string())
    }
}
