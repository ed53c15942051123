//! Provisioning over REST: users, rooms and memberships, on either target.
//!
//! Registering costs a password hash (argon2 on our server, scrypt on the peer), so a run
//! registers a modest number of users and opens several connections per user: a token opens any
//! number of sockets, and every socket of a user follows all of that user's rooms. Each user is a
//! member of exactly one room, so a connection's room is its user's room.

use crate::{Deployment, Error, Result, Target};
use futures_util::stream::{self, StreamExt, TryStreamExt};
use protocol::rest::{CreateRoom, Credentials, Visibility};
use protocol::RoomId;
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::time::Duration;

/// Requests in flight while provisioning (the server hashes at most a few passwords at once).
const CONCURRENCY: usize = 8;
const PASSWORD: &str = "bench password 1234";

/// A registered user and the one room it is a member of.
#[derive(Debug, Clone)]
pub struct Account {
    pub token: String,
    pub room: RoomId,
    /// Index of the room in [`Provisioned::rooms`].
    pub room_index: usize,
}

/// Rooms and users made for one run. User `i` is in room `i % rooms.len()`.
#[derive(Debug, Clone)]
pub struct Provisioned {
    pub rooms: Vec<RoomId>,
    pub users: Vec<Account>,
}

impl Provisioned {
    /// The `j`-th user of room `r`.
    pub fn user_of_room(&self, r: usize, j: usize) -> &Account {
        let per_room = self.users.len() / self.rooms.len();
        &self.users[r + self.rooms.len() * (j % per_room.max(1))]
    }
}

#[derive(Deserialize)]
struct PeerAuth {
    token: String,
}

#[derive(Deserialize)]
struct PeerRoom {
    id: RoomId,
}

/// For one node at `addr`: a plain HTTP client with `timeout` (the peers' API), its base URL,
/// and our typed client over the same connection pool.
pub(crate) fn node_clients(
    addr: SocketAddr,
    timeout: Duration,
) -> Result<(reqwest::Client, String, chat_client::Client)> {
    let http = reqwest::Client::builder().timeout(timeout).build()?;
    let base = format!("http://{addr}");
    let url = reqwest::Url::parse(&base).map_err(|e| Error::Setup(format!("{base}: {e}")))?;
    let ours = chat_client::Client::with_http(http.clone(), url)?;
    Ok((http, base, ours))
}

/// A REST client for one node of either target: ours through the typed client, the peers'
/// (their own small API) by hand.
struct Api {
    http: reqwest::Client,
    base: String,
    target: Target,
    ours: chat_client::Client,
}

impl Api {
    fn new(target: Target, addr: SocketAddr) -> Result<Api> {
        let (http, base, ours) = node_clients(addr, Duration::from_secs(60))?;
        Ok(Api {
            http,
            base,
            target,
            ours,
        })
    }

    async fn check(resp: reqwest::Response, what: &str) -> Result<reqwest::Response> {
        if resp.status().is_success() {
            return Ok(resp);
        }
        let status = resp.status();
        let body = resp.text().await.unwrap_or_default();
        Err(Error::Setup(format!("{what}: {status} {body:.200}")))
    }

    /// A peer's `POST /api/{path}` with `token` and a JSON body.
    async fn peer_post(
        &self,
        path: &str,
        token: Option<&str>,
        body: &impl Serialize,
        what: &str,
    ) -> Result<reqwest::Response> {
        let mut request = self
            .http
            .post(format!("{}/api/{path}", self.base))
            .json(body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        Self::check(request.send().await?, what).await
    }

    async fn register(&self, username: &str) -> Result<String> {
        if self.target == Target::Ours {
            let auth = self
                .ours
                .register(username, PASSWORD, Some("chat-bench"))
                .await?;
            return Ok(auth.token);
        }
        let creds = Credentials {
            username: username.to_owned(),
            password: PASSWORD.to_owned(),
            device: Some("chat-bench".into()),
            invite: None,
        };
        let resp = self.peer_post("register", None, &creds, "register").await?;
        Ok(resp.json::<PeerAuth>().await?.token)
    }

    async fn create_room(&self, token: &str, name: &str) -> Result<RoomId> {
        if self.target == Target::Ours {
            let ours = self.ours.with_token(token);
            return Ok(ours.create_room(name, Visibility::Public).await?.id);
        }
        let body = CreateRoom {
            name: name.to_owned(),
            visibility: Visibility::Public,
        };
        let resp = self
            .peer_post("rooms", Some(token), &body, "create room")
            .await?;
        Ok(resp.json::<PeerRoom>().await?.id)
    }

    async fn join(&self, token: &str, room: RoomId) -> Result<()> {
        if self.target == Target::Ours {
            self.ours.with_token(token).join(room).await?;
            return Ok(());
        }
        let resp = self
            .http
            .post(format!("{}/api/rooms/{room}/join", self.base))
            .bearer_auth(token)
            .header("content-type", "application/json")
            .send()
            .await?;
        Self::check(resp, "join").await?;
        Ok(())
    }
}

/// Registers `rooms × users_per_room` users on node 0 and puts user `i` into room `i % rooms`.
pub async fn provision(
    dep: &Deployment,
    rooms: usize,
    users_per_room: usize,
) -> Result<Provisioned> {
    provision_via(dep, 0, rooms, users_per_room).await
}

/// [`provision`] through node `node` (all nodes share the store, so the accounts work on every
/// node).
pub async fn provision_via(
    dep: &Deployment,
    node: usize,
    rooms: usize,
    users_per_room: usize,
) -> Result<Provisioned> {
    let rooms = rooms.max(1);
    let users_per_room = users_per_room.max(1);
    let api = Api::new(dep.target, dep.nodes[node.min(dep.nodes.len() - 1)])?;
    let total = rooms * users_per_room;
    let tokens: Vec<String> = stream::iter(0..total)
        .map(|i| {
            let api = &api;
            async move { api.register(&format!("bench-u{i}")).await }
        })
        .buffered(CONCURRENCY)
        .try_collect()
        .await?;
    // The first user of each room creates it; the others join.
    let room_ids: Vec<RoomId> = stream::iter(0..rooms)
        .map(|r| {
            let api = &api;
            let token = &tokens[r];
            async move { api.create_room(token, &format!("bench room {r}")).await }
        })
        .buffered(CONCURRENCY)
        .try_collect()
        .await?;
    stream::iter(rooms..total)
        .map(|i| {
            let api = &api;
            let token = &tokens[i];
            let room = room_ids[i % rooms];
            async move { api.join(token, room).await }
        })
        .buffer_unordered(CONCURRENCY)
        .try_collect::<Vec<()>>()
        .await?;
    let users = tokens
        .into_iter()
        .enumerate()
        .map(|(i, token)| Account {
            token,
            room: room_ids[i % rooms],
            room_index: i % rooms,
        })
        .collect();
    Ok(Provisioned {
        rooms: room_ids,
        users,
    })
}
