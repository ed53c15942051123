//! A small typed REST client for setting a run up and fetching the canonical history.

use protocol::rest::{AuthResponse, HistoryPage, Room};
use protocol::{RoomEvent, RoomId, UserId};
use serde::de::DeserializeOwned;
use serde_json::json;
use std::time::Duration;

pub const PASSWORD: &str = "fault run password";

#[derive(Clone)]
pub struct Rest {
    http: reqwest::Client,
    pub base: String,
}

impl Rest {
    pub fn new(base: String) -> Rest {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap_or_default();
        Rest { http, base }
    }

    async fn call<T: DeserializeOwned>(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        body: Option<serde_json::Value>,
    ) -> Result<T, String> {
        let mut req = self
            .http
            .request(method, format!("{}/api/v1{path}", self.base));
        if let Some(token) = token {
            req = req.bearer_auth(token);
        }
        if let Some(body) = body {
            req = req.json(&body);
        }
        let resp = req.send().await.map_err(|e| format!("{path}: {e}"))?;
        let status = resp.status();
        let text = resp.text().await.map_err(|e| format!("{path}: {e}"))?;
        if !status.is_success() {
            return Err(format!("{path}: {status} {text}"));
        }
        let text = if text.is_empty() { "null" } else { &text };
        serde_json::from_str(text).map_err(|e| format!("{path}: {e}"))
    }

    pub async fn register(&self, username: &str) -> Result<AuthResponse, String> {
        self.call(
            reqwest::Method::POST,
            "/register",
            None,
            Some(json!({"username": username, "password": PASSWORD})),
        )
        .await
    }

    pub async fn create_room(&self, token: &str, name: &str, public: bool) -> Result<Room, String> {
        let vis = if public { "public" } else { "private" };
        self.call(
            reqwest::Method::POST,
            "/rooms",
            Some(token),
            Some(json!({"name": name, "visibility": vis})),
        )
        .await
    }

    pub async fn join(&self, token: &str, room: RoomId) -> Result<Room, String> {
        self.call(
            reqwest::Method::POST,
            &format!("/rooms/{room}/join"),
            Some(token),
            None,
        )
        .await
    }

    pub async fn invite(&self, token: &str, room: RoomId, user: UserId) -> Result<(), String> {
        self.call::<serde_json::Value>(
            reqwest::Method::POST,
            &format!("/rooms/{room}/members"),
            Some(token),
            Some(json!({ "user": user })),
        )
        .await
        .map(|_| ())
    }

    pub async fn dm(&self, token: &str, user: UserId) -> Result<Room, String> {
        self.call(
            reqwest::Method::POST,
            "/dms",
            Some(token),
            Some(json!({ "user": user })),
        )
        .await
    }

    pub async fn room(&self, token: &str, room: RoomId) -> Result<Room, String> {
        self.call(
            reqwest::Method::GET,
            &format!("/rooms/{room}"),
            Some(token),
            None,
        )
        .await
    }

    /// The room's whole history, paging forward.
    pub async fn history(&self, token: &str, room: RoomId) -> Result<Vec<RoomEvent>, String> {
        let mut out: Vec<RoomEvent> = Vec::new();
        let mut after = 0;
        loop {
            let page: HistoryPage = self
                .call(
                    reqwest::Method::GET,
                    &format!("/rooms/{room}/events?after={after}&limit=100"),
                    Some(token),
                    None,
                )
                .await?;
            let Some(last) = page.events.last() else {
                return Ok(out);
            };
            after = last.seq;
            out.extend(page.events);
            if !page.has_more {
                return Ok(out);
            }
        }
    }
}
