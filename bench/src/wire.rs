//! One WebSocket client for both targets: this project's protocol (`docs/protocol.md`, typed by
//! the `protocol` crate) and Socket.IO v5 over Engine.IO v4, hand-framed.
//!
//! Why hand-framed Socket.IO instead of a client crate: the benchmark needs to bind each socket to
//! a chosen 127.0.0.x source address (to open more connections than one address has ephemeral
//! ports), and needs both targets driven by the *same* WebSocket stack so that the generator's own
//! cost does not differ between them. The subset used here is small and stable: `0{..}` open,
//! `40{auth}` connect, `42["event",..]` events, `42<id>[..]` / `43<id>[..]` acknowledgements and
//! `2` / `3` ping/pong, all as text frames on a WebSocket-only transport (no polling).

use crate::{Error, Result, Target};
use futures_util::{SinkExt, StreamExt};
use protocol::rest::SendAck;
use protocol::ws::ServerFrame;
use protocol::{ClientFrame, EventBody, RoomEvent, RoomId};
use serde::Deserialize;
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

/// How long connecting and the handshake (hello → ready, or open → connect → ready) may take.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(30);

/// Something the server sent that the benchmark cares about.
#[derive(Debug)]
pub enum Incoming {
    /// A message event of a room.
    Message { room: RoomId, body: String },
    /// A send was accepted; `id` is the client message id. `duplicate`: the server had seen
    /// this id before and stored nothing new.
    Ack { id: String, duplicate: bool },
    /// A send (or another request) failed.
    Failed { id: Option<String>, code: String },
    /// A history page.
    History {
        events: Vec<RoomEvent>,
        has_more: bool,
    },
    /// Anything else (presence, other events, pongs): counted, not used.
    Other,
}

/// A request whose answer is a Socket.IO acknowledgement.
enum Pending {
    Send(String),
    History,
}

/// An authenticated connection to either target.
pub struct Client {
    ws: WebSocketStream<TcpStream>,
    target: Target,
    /// Socket.IO acknowledgement ids in flight.
    pending: HashMap<u64, Pending>,
    next_ack: u64,
}

fn config() -> WebSocketConfig {
    // Small buffers: thousands of idle client sockets must not cost the generator gigabytes.
    WebSocketConfig::default()
        .read_buffer_size(8 * 1024)
        .write_buffer_size(0)
}

/// Opens a TCP connection from `source` (port chosen by the kernel) to `addr`.
async fn tcp_from(source: IpAddr, addr: SocketAddr) -> Result<TcpStream> {
    let socket = TcpSocket::new_v4()?;
    // Ports of this source address may still be in TIME_WAIT from an earlier run.
    socket.set_reuseaddr(true)?;
    socket.bind(SocketAddr::new(source, 0))?;
    let stream = socket.connect(addr).await?;
    stream.set_nodelay(true)?;
    Ok(stream)
}

#[derive(Deserialize)]
struct SioAck {
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    events: Option<Vec<RoomEvent>>,
    #[serde(default)]
    has_more: bool,
}

impl Client {
    /// Connects from `source`, authenticates with `token` and waits until the server says the
    /// socket is live (`ready`).
    pub async fn connect(
        target: Target,
        addr: SocketAddr,
        source: IpAddr,
        token: &str,
    ) -> Result<Client> {
        tokio::time::timeout(
            HANDSHAKE_TIMEOUT,
            Self::connect_inner(target, addr, source, token),
        )
        .await
        .map_err(|_| Error::Timeout {
            what: format!("handshake with {addr}"),
        })?
    }

    async fn connect_inner(
        target: Target,
        addr: SocketAddr,
        source: IpAddr,
        token: &str,
    ) -> Result<Client> {
        let stream = tcp_from(source, addr).await?;
        let url = match target {
            Target::Ours | Target::Floor => format!("ws://{addr}/ws"),
            Target::Socketio => format!("ws://{addr}/socket.io/?EIO=4&transport=websocket"),
        };
        let (ws, _) =
            tokio_tungstenite::client_async_with_config(url, stream, Some(config())).await?;
        let mut client = Client {
            ws,
            target,
            pending: HashMap::new(),
            next_ack: 0,
        };
        match target {
            Target::Ours | Target::Floor => client.hello_ours(token).await?,
            Target::Socketio => client.hello_socketio(token).await?,
        }
        Ok(client)
    }

    async fn hello_ours(&mut self, token: &str) -> Result<()> {
        let hello = ClientFrame::Hello {
            token: token.to_owned(),
            resume: vec![],
            epoch: None,
        };
        self.send_text(serde_json::to_string(&hello)?).await?;
        loop {
            let text = self.next_text().await?;
            match serde_json::from_str::<ServerFrame>(&text) {
                Ok(ServerFrame::Ready) => return Ok(()),
                Ok(ServerFrame::Error { code, message, .. }) => {
                    return Err(Error::Protocol(format!(
                        "hello refused: {code:?} {message}"
                    )))
                }
                _ => {}
            }
        }
    }

    async fn hello_socketio(&mut self, token: &str) -> Result<()> {
        let open = self.next_text().await?;
        if !open.starts_with('0') {
            return Err(Error::Protocol(format!(
                "expected an Engine.IO open packet, got {open:.60}"
            )));
        }
        let auth = serde_json::json!({ "token": token });
        self.send_text(format!("40{auth}")).await?;
        let mut connected = false;
        loop {
            let text = self.next_text().await?;
            if text == "2" {
                self.send_text("3".into()).await?;
            } else if text.starts_with("40") {
                connected = true;
            } else if text.starts_with("44") {
                return Err(Error::Protocol(format!("connect refused: {text:.120}")));
            } else if connected && text.starts_with("42[\"ready\"") {
                return Ok(());
            }
        }
    }

    async fn send_text(&mut self, text: String) -> Result<()> {
        self.ws.send(Message::text(text)).await?;
        Ok(())
    }

    /// The next text frame; pings are answered by tungstenite, closes end the connection.
    async fn next_text(&mut self) -> Result<String> {
        loop {
            match self.ws.next().await {
                None => return Err(Error::Protocol("connection closed".into())),
                Some(Err(e)) => return Err(e.into()),
                Some(Ok(Message::Text(t))) => return Ok(t.as_str().to_owned()),
                Some(Ok(Message::Close(frame))) => {
                    return Err(Error::Protocol(format!("closed by server: {frame:?}")))
                }
                Some(Ok(_)) => {}
            }
        }
    }

    /// Queues a message send without flushing (call [`Client::flush`] after a batch).
    pub async fn feed_message(&mut self, room: RoomId, id: &str, body: &str) -> Result<()> {
        let text = match self.target {
            Target::Ours | Target::Floor => serde_json::to_string(&ClientFrame::Send {
                room,
                id: id.to_owned(),
                body: body.to_owned(),
                reply_to: None,
                mentions: vec![],
                mention_room: false,
                attachments: Vec::new(),
            })?,
            Target::Socketio => {
                let ack = self.next_ack;
                self.next_ack += 1;
                self.pending.insert(ack, Pending::Send(id.to_owned()));
                let payload = serde_json::json!({ "room": room, "id": id, "body": body });
                format!("42{ack}{}", serde_json::json!(["send", payload]))
            }
        };
        self.ws.feed(Message::text(text)).await?;
        Ok(())
    }

    pub async fn flush(&mut self) -> Result<()> {
        self.ws.flush().await?;
        Ok(())
    }

    /// Asks for the page of `room` before `before` (newest page when `None`).
    pub async fn request_history(
        &mut self,
        room: RoomId,
        before: Option<u64>,
        limit: usize,
    ) -> Result<()> {
        let text = match self.target {
            Target::Ours | Target::Floor => serde_json::to_string(&ClientFrame::History {
                room,
                before,
                after: None,
                limit: Some(limit),
                reference: Some("h".into()),
            })?,
            Target::Socketio => {
                let ack = self.next_ack;
                self.next_ack += 1;
                self.pending.insert(ack, Pending::History);
                let q = serde_json::json!({ "room": room, "before": before.unwrap_or(0), "limit": limit });
                format!("42{ack}{}", serde_json::json!(["history", q]))
            }
        };
        self.send_text(text).await
    }

    /// Waits for the next frame and classifies it. Engine.IO pings are answered here.
    pub async fn next(&mut self) -> Result<Incoming> {
        loop {
            let text = self.next_text().await?;
            if self.target == Target::Socketio && text == "2" {
                // Engine.IO heartbeat: answer at once, as the official client does.
                self.send_text("3".into()).await?;
                continue;
            }
            let incoming = match self.target {
                // A frame this client cannot read is counted, not fatal.
                Target::Ours | Target::Floor => classify_ours(&text).unwrap_or(Incoming::Other),
                Target::Socketio => match self.classify_socketio(&text) {
                    Err(Error::Json(_)) => Incoming::Other,
                    Err(e) => return Err(e),
                    Ok(incoming) => match incoming {
                        Some(incoming) => incoming,
                        None => continue,
                    },
                },
            };
            return Ok(incoming);
        }
    }

    fn classify_socketio(&mut self, text: &str) -> Result<Option<Incoming>> {
        if let Some(rest) = text.strip_prefix("42") {
            let (name, payload): (String, serde_json::Value) = serde_json::from_str(rest)?;
            if name == "event" {
                let event: RoomEvent = serde_json::from_value(payload)?;
                return Ok(Some(message_of(event)));
            }
            return Ok(Some(Incoming::Other));
        }
        if let Some(rest) = text.strip_prefix("43") {
            let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
            let ack: u64 = rest[..digits]
                .parse()
                .map_err(|_| Error::Protocol(format!("bad ack packet {text:.60}")))?;
            let (payload,): (SioAck,) = serde_json::from_str(&rest[digits..])?;
            return Ok(Some(match (self.pending.remove(&ack), payload) {
                (Some(Pending::Send(id)), SioAck { error: None, .. }) => Incoming::Ack {
                    id,
                    duplicate: false,
                },
                (
                    Some(Pending::Send(id)),
                    SioAck {
                        error: Some(code), ..
                    },
                ) => Incoming::Failed { id: Some(id), code },
                (
                    Some(Pending::History),
                    SioAck {
                        error: None,
                        events,
                        has_more,
                        ..
                    },
                ) => Incoming::History {
                    events: events.unwrap_or_default(),
                    has_more,
                },
                (_, SioAck { error, id, .. }) => Incoming::Failed {
                    id,
                    code: error.unwrap_or_else(|| "unexpected_ack".into()),
                },
            }));
        }
        if text.starts_with("41") || text.starts_with("44") || text == "1" {
            return Err(Error::Protocol(format!("disconnected: {text:.120}")));
        }
        Ok(None)
    }
}

fn message_of(event: RoomEvent) -> Incoming {
    match event.event {
        EventBody::Message { body, .. } => Incoming::Message {
            room: event.room,
            body,
        },
        _ => Incoming::Other,
    }
}

fn classify_ours(text: &str) -> Result<Incoming> {
    Ok(match serde_json::from_str::<ServerFrame>(text)? {
        ServerFrame::Event(event) => message_of(event),
        ServerFrame::Ack(SendAck { id, duplicate, .. }) => Incoming::Ack { id, duplicate },
        ServerFrame::Error { code, id, .. } => Incoming::Failed {
            id,
            code: format!("{code:?}"),
        },
        ServerFrame::History {
            events, has_more, ..
        } => Incoming::History { events, has_more },
        _ => Incoming::Other,
    })
}
