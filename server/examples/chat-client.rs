//! A minimal terminal chat client, written from `docs/protocol.md`: a second user to talk to
//! the desktop app, or a quick way to poke a server.
//!
//! ```sh
//! cargo run -p chat-server --example chat-client -- --server http://127.0.0.1:8080 --user bob
//! ```
//! It registers (or logs in), joins the public room given by `--room` (creating it if needed),
//! prints what happens in it and sends every line typed. A line `/typing` sends a typing
//! indicator.

use clap::Parser;
use futures_util::{SinkExt, StreamExt};
use protocol::rest::{AuthResponse, CreateRoom, Credentials, Room, SendAck, Visibility};
use protocol::ws::{ClientFrame, ServerFrame};
use protocol::{ErrorBody, EventBody};
use tokio::io::AsyncBufReadExt;
use tokio_tungstenite::tungstenite::Message;

#[derive(Parser)]
struct Args {
    /// Server base URL.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    server: String,
    #[arg(long)]
    user: String,
    #[arg(long, default_value = "password123")]
    password: String,
    /// Public room to join (created if missing).
    #[arg(long, default_value = "general")]
    room: String,
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

async fn post<T: serde::de::DeserializeOwned>(
    http: &reqwest::Client,
    url: String,
    token: Option<&str>,
    body: &impl serde::Serialize,
) -> Result<Result<T, ErrorBody>, BoxError> {
    let mut req = http.post(url).json(body);
    if let Some(token) = token {
        req = req.bearer_auth(token);
    }
    let resp = req.send().await?;
    Ok(if resp.status().is_success() {
        Ok(resp.json().await?)
    } else {
        Err(resp.json().await?)
    })
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let args = Args::parse();
    let http = reqwest::Client::new();
    let api = format!("{}/api/v1", args.server.trim_end_matches('/'));
    let creds = Credentials {
        username: args.user.clone(),
        password: args.password.clone(),
        device: Some("chat-client".into()),
        invite: None,
    };
    let auth: AuthResponse = match post(&http, format!("{api}/register"), None, &creds).await? {
        Ok(auth) => auth,
        Err(_) => post(&http, format!("{api}/login"), None, &creds)
            .await?
            .map_err(|e| format!("login failed: {}", e.message))?,
    };
    let token = auth.token.clone();
    let public: Vec<Room> = http
        .get(format!("{api}/rooms/public"))
        .bearer_auth(&token)
        .send()
        .await?
        .json()
        .await?;
    let room = match public.into_iter().find(|r| r.name == args.room) {
        Some(room) => {
            let no_body = serde_json::json!({});
            post::<Room>(
                &http,
                format!("{api}/rooms/{}/join", room.id),
                Some(&token),
                &no_body,
            )
            .await?
            .map_err(|e| e.message)?
        }
        None => {
            let create = CreateRoom {
                name: args.room.clone(),
                visibility: Visibility::Public,
            };
            post::<Room>(&http, format!("{api}/rooms"), Some(&token), &create)
                .await?
                .map_err(|e| e.message)?
        }
    };
    println!(
        "* {} in #{} (room {}); type to send, /typing, Ctrl-D to quit",
        auth.user.username, room.name, room.id
    );

    let ws_url = format!(
        "{}/ws",
        args.server.replacen("http", "ws", 1).trim_end_matches('/')
    );
    let (socket, _) = tokio_tungstenite::connect_async(ws_url).await?;
    let (mut tx, mut rx) = socket.split();
    let hello = ClientFrame::Hello {
        token,
        resume: vec![],
        epoch: None,
    };
    tx.send(Message::text(serde_json::to_string(&hello)?))
        .await?;

    let mut lines = tokio::io::BufReader::new(tokio::io::stdin()).lines();
    let mut sent = 0u64;
    loop {
        tokio::select! {
            line = lines.next_line() => {
                let Some(line) = line? else { break };
                let frame = if line.trim() == "/typing" {
                    ClientFrame::Typing { room: room.id }
                } else if line.trim().is_empty() {
                    continue;
                } else {
                    sent += 1;
                    let id = format!("cli-{:x}-{sent}", rand::random::<u64>());
                    ClientFrame::Send { room: room.id, id, body: line, reply_to: None, mentions: vec![], mention_room: false, attachments: vec![] }
                };
                tx.send(Message::text(serde_json::to_string(&frame)?)).await?;
            }
            msg = rx.next() => {
                let Some(msg) = msg else { break };
                let Message::Text(text) = msg? else { continue };
                match serde_json::from_str::<ServerFrame>(text.as_str())? {
                    ServerFrame::Event(e) if e.room == room.id => match e.event {
                        EventBody::Message { sender_name, body, .. } => println!("{sender_name}: {body}"),
                        EventBody::Edit { body, target, .. } => println!("* message {target} edited: {body}"),
                        EventBody::Delete { target, .. } => println!("* message {target} deleted"),
                        EventBody::MemberJoined { username, .. } => println!("* {username} joined"),
                        EventBody::MemberLeft { user, .. } => println!("* user {user} left"),
                        EventBody::OwnerChanged { user } => println!("* user {user} now owns the room"),
                        EventBody::ReactionAdded { target, user, emoji } => println!("* user {user} reacted {emoji} to message {target}"),
                        EventBody::ReactionRemoved { target, user, emoji } => println!("* user {user} took back {emoji} on message {target}"),
                        EventBody::RoomUpdated { name, topic, .. } => {
                            if let Some(name) = name { println!("* the room is now called {name}") }
                            if let Some(topic) = topic { println!("* topic: {topic}") }
                        }
                        EventBody::RoomDeleted { .. } => {
                            println!("* the owner deleted the room");
                            break;
                        }
                        EventBody::Unknown => {}
                    },
                    ServerFrame::Typing { room: r, username, .. } if r == room.id => println!("* {username} is typing…"),
                    ServerFrame::Presence { user, online, .. } => {
                        println!("* user {user} is {}", if online { "online" } else { "offline" })
                    }
                    ServerFrame::Ack(SendAck { seq, .. }) => println!("* sent (seq {seq})"),
                    ServerFrame::Error { code, message, .. } => println!("! {code}: {message}"),
                    _ => {}
                }
            }
        }
    }
    Ok(())
}
