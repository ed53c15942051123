//! The connection manager: one WebSocket per signed-in account, kept open for as long as the
//! session lasts.
//!
//! A connection task loops: connect, send `hello` (token and resume cursors from the
//! [`Handler`]), hand every server frame to the handler in order, ping every
//! [`Timing::ping_every`] and give up on a silent server; when the socket is lost, report
//! [`ConnectionState::Reconnecting`] and try again after an exponential backoff with jitter
//! ([`Backoff`]). A close with code 4001 (token revoked or expired) ends the session instead.
//! A close with code 4010 (the server's store lost data, protocol §7.7) first lets the handler
//! drop its cached state ([`Handler::on_store_reset`]), so the next `hello` carries no resume
//! cursors, then reconnects like after any lost socket.
//!
//! The handler sends frames through a [`Link`], which is up only while a socket is
//! authenticated: what cannot be sent now (messages) lives in the outbox and is sent again on
//! the next `welcome`.
//!
//! The socket loop never waits for the handler. Frames go through a queue to a frame task (one
//! per socket) that hands them to the handler one at a time, in the order received; the
//! handler may take its time there (a gap fill pages history over REST) while the socket loop
//! keeps reading, answering pings, pinging and sending. When the socket is lost, the frame
//! task's stop token is cancelled: the handler ends its REST waits at once (it selects on the
//! token) and the frames already received are still handed over, in order, unless one of them
//! could not be finished without the network ([`Handled::Interrupted`]): the rest are dropped
//! then. The next `hello` resumes from what the handler applied, so nothing is applied twice
//! or skipped.

use crate::error::Error;
use crate::tls::{Refusal, Tls};
use futures_util::{Sink, SinkExt, Stream, StreamExt};
use protocol::ipc::ConnectionState;
use protocol::ws::ClientFrame;
use protocol::{close, ErrorCode, ServerFrame};
use rand::Rng;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, Notify};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_util::sync::CancellationToken;

/// Reconnect delays: attempt `n` waits a random time in `[d/2, d]` where
/// `d = min(cap, base * 2^(n-1))`. The randomness spreads reconnects of many clients after a
/// server restart; the lower bound keeps a flapping server from being hammered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    pub base: Duration,
    pub cap: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            base: Duration::from_millis(500),
            cap: Duration::from_secs(30),
        }
    }
}

impl Backoff {
    /// The longest delay of attempt `attempt` (1-based).
    pub fn ceiling(&self, attempt: u32) -> Duration {
        let factor = 1u32 << attempt.saturating_sub(1).min(20);
        self.base.saturating_mul(factor).min(self.cap)
    }

    /// A random delay for attempt `attempt` within `[ceiling/2, ceiling]`.
    pub fn delay(&self, attempt: u32) -> Duration {
        let ceiling = self.ceiling(attempt);
        let half = ceiling / 2;
        let spread = u64::try_from((ceiling - half).as_millis()).unwrap_or(u64::MAX);
        half + Duration::from_millis(rand::rng().random_range(0..=spread))
    }
}

/// How the connection paces itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    pub backoff: Backoff,
    /// Keep-alive ping interval; a server silent for 1.5 intervals is considered gone.
    pub ping_every: Duration,
    /// Limit for opening the socket and for the `welcome` answer to `hello`.
    pub connect_timeout: Duration,
}

impl Default for Timing {
    fn default() -> Self {
        Timing {
            backoff: Backoff::default(),
            ping_every: Duration::from_secs(25),
            connect_timeout: Duration::from_secs(15),
        }
    }
}

/// The sending half toward the current socket; up only while a socket is authenticated.
/// Each socket gets a new epoch, so callers can tell "the socket I flushed to" from a newer one.
#[derive(Debug, Clone, Default)]
pub struct Link {
    slot: Arc<Mutex<LinkSlot>>,
}

#[derive(Debug, Default)]
struct LinkSlot {
    epoch: u64,
    tx: Option<mpsc::UnboundedSender<ClientFrame>>,
}

impl Link {
    fn slot(&self) -> std::sync::MutexGuard<'_, LinkSlot> {
        self.slot.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues `frame` on the current socket; `false` when there is none.
    pub fn send(&self, frame: ClientFrame) -> bool {
        self.slot()
            .tx
            .as_ref()
            .is_some_and(|tx| tx.send(frame).is_ok())
    }

    /// The current socket's epoch; `None` while down.
    pub fn epoch(&self) -> Option<u64> {
        let slot = self.slot();
        slot.tx
            .as_ref()
            .filter(|tx| !tx.is_closed())
            .map(|_| slot.epoch)
    }

    fn set(&self, tx: Option<mpsc::UnboundedSender<ClientFrame>>) {
        let mut slot = self.slot();
        if tx.is_some() {
            slot.epoch += 1;
        }
        slot.tx = tx;
    }
}

/// What the connection needs from the rest of the app.
pub trait Handler: Send + Sync + 'static {
    /// The `hello` for a new socket (token and resume cursors). `Err`: try again later.
    fn hello(&self) -> impl Future<Output = Result<ClientFrame, String>> + Send;
    /// One server frame, in the order received, on the socket's frame task (the socket keeps
    /// going meanwhile). `link` is up from `welcome` on. `stop` is cancelled when the socket
    /// is lost: end network waits then (and tasks spawned for this socket), and leave the
    /// state consistent, since the frames after this one are dropped.
    fn on_frame(
        &self,
        frame: ServerFrame,
        link: &Link,
        stop: &CancellationToken,
    ) -> impl Future<Output = Handled> + Send;
    /// The connection's state changed.
    fn on_state(&self, state: ConnectionState);
    /// The server ended the session (close 4001); the connection has stopped for good.
    fn on_session_ended(&self, reason: String) -> impl Future<Output = ()> + Send;
    /// The server's store lost data (close 4010): drop cached history and resume cursors.
    /// Awaited before the next connect, so the next [`Handler::hello`] sees the result.
    fn on_store_reset(&self) -> impl Future<Output = ()> + Send;
}

/// Whether the handler finished a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Handled {
    Done,
    /// `stop` cut a network wait short and the frame is only partly applied: the frames after
    /// it must not be applied either (they come again after the next `hello`).
    Interrupted,
}

/// Opens sockets. The real one is [`WsConnector`]; tests substitute their own.
pub trait Connector: Send + Sync + 'static {
    type Socket: Stream<Item = Result<Message, tungstenite::Error>>
        + Sink<Message, Error = tungstenite::Error>
        + Send
        + Unpin
        + 'static;
    fn connect(&self) -> impl Future<Output = Result<Self::Socket, String>> + Send;
}

/// Connects to a `ws://` or `wss://` URL; for wss with the same trust as REST ([`Tls`]).
#[derive(Debug, Clone)]
pub struct WsConnector {
    pub url: String,
    pub tls: Option<Tls>,
}

impl Connector for WsConnector {
    type Socket = tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >;

    async fn connect(&self) -> Result<Self::Socket, String> {
        let connector = self
            .tls
            .as_ref()
            .map(|tls| tokio_tungstenite::Connector::Rustls(tls.config()));
        tokio_tungstenite::connect_async_tls_with_config(self.url.as_str(), None, false, connector)
            .await
            .map(|(socket, _response)| socket)
            .map_err(|e| match self.tls.as_ref().and_then(Tls::refusal) {
                Some(Refusal::Changed(cert)) => Error::CertificateChanged(cert).to_string(),
                Some(Refusal::Untrusted(cert)) => Error::UntrustedCertificate(cert).to_string(),
                None => describe(&e),
            })
    }
}

fn describe(e: &tungstenite::Error) -> String {
    match e {
        tungstenite::Error::Io(io) => match io.kind() {
            std::io::ErrorKind::ConnectionRefused => "the server is not answering".into(),
            std::io::ErrorKind::TimedOut => "the server took too long to answer".into(),
            std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::ConnectionAborted => {
                "the connection was cut".into()
            }
            _ => format!("cannot reach the server ({io})"),
        },
        tungstenite::Error::Http(response) => {
            format!("the server refused the socket (HTTP {})", response.status())
        }
        other => other.to_string(),
    }
}

/// A running connection task.
pub struct Connection {
    cancel: CancellationToken,
    wake: Arc<Notify>,
    task: JoinHandle<()>,
}

impl Connection {
    /// Starts connecting in the background.
    pub fn spawn<H: Handler, C: Connector>(
        handler: Arc<H>,
        connector: C,
        link: Link,
        timing: Timing,
    ) -> Connection {
        let cancel = CancellationToken::new();
        let wake = Arc::new(Notify::new());
        let task = tokio::spawn(run(
            handler,
            connector,
            link,
            timing,
            cancel.clone(),
            wake.clone(),
        ));
        Connection { cancel, wake, task }
    }

    /// Skips the current backoff wait (e.g. the network came back).
    pub fn reconnect_now(&self) {
        self.wake.notify_one();
    }

    /// Stops the task without waiting for it.
    pub fn stop(&self) {
        self.cancel.cancel();
    }

    /// Stops the task and waits until it has ended.
    pub async fn stopped(self) {
        self.cancel.cancel();
        let _ = self.task.await;
    }
}

/// Why a socket session ended.
#[derive(Debug)]
enum Ended {
    /// Lost; `was_up`: it had been authenticated (so the backoff starts over).
    Lost { reason: String, was_up: bool },
    /// The server ended the session (close 4001).
    Unauthorized(String),
    /// The server's store lost data (close 4010); `was_up` as for [`Ended::Lost`].
    StoreReset { was_up: bool },
}

async fn run<H: Handler, C: Connector>(
    handler: Arc<H>,
    connector: C,
    link: Link,
    timing: Timing,
    cancel: CancellationToken,
    wake: Arc<Notify>,
) {
    let mut attempt: u32 = 0;
    loop {
        handler.on_state(ConnectionState::Connecting);
        let ended = tokio::select! {
            _ = cancel.cancelled() => None,
            ended = session(&handler, &connector, &link, &timing) => Some(ended),
        };
        link.set(None);
        let (reason, was_up) = match ended {
            None => return,
            Some(Ended::Unauthorized(reason)) => {
                tracing::info!(%reason, "the server ended the session");
                handler.on_session_ended(reason).await;
                return;
            }
            Some(Ended::StoreReset { was_up }) => {
                tracing::warn!("the server's store lost data; dropping cached history");
                handler.on_store_reset().await;
                ("the server lost data; reloading history".to_owned(), was_up)
            }
            Some(Ended::Lost { reason, was_up }) => (reason, was_up),
        };
        attempt = if was_up { 1 } else { attempt.saturating_add(1) };
        let delay = timing.backoff.delay(attempt);
        tracing::info!(%reason, attempt, ?delay, "connection lost; retrying");
        handler.on_state(ConnectionState::Reconnecting {
            attempt,
            retry_in_ms: u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
            reason,
        });
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(delay) => {}
            _ = wake.notified() => {}
        }
    }
}

fn lost(reason: impl Into<String>, was_up: bool) -> Ended {
    Ended::Lost {
        reason: reason.into(),
        was_up,
    }
}

fn text(frame: &ClientFrame) -> Message {
    Message::text(serde_json::to_string(frame).unwrap_or_default())
}

/// Hands frames to the handler in order until the socket loop is done with the queue, or a
/// frame was interrupted.
async fn process<H: Handler>(
    handler: Arc<H>,
    mut frames: mpsc::UnboundedReceiver<ServerFrame>,
    link: Link,
    stop: CancellationToken,
) {
    while let Some(frame) = frames.recv().await {
        if handler.on_frame(frame, &link, &stop).await == Handled::Interrupted {
            tracing::debug!("socket lost during a frame; the rest come again on resume");
            return;
        }
    }
}

/// One socket, from connect to loss: the socket loop ([`pump`]) and its frame task.
async fn session<H: Handler, C: Connector>(
    handler: &Arc<H>,
    connector: &C,
    link: &Link,
    timing: &Timing,
) -> Ended {
    let stop = CancellationToken::new();
    // Also when this future is dropped (the connection stopped).
    let _stop_on_drop = stop.clone().drop_guard();
    let (frames, queue) = mpsc::unbounded_channel();
    let task = tokio::spawn(process(handler.clone(), queue, link.clone(), stop.clone()));
    let ended = pump(handler.as_ref(), connector, link, timing, frames).await;
    // Let the frame task finish before the next hello reads the resume cursors; its network
    // waits end now.
    stop.cancel();
    if let Err(e) = task.await {
        tracing::error!(error = %e, "the frame task failed");
    }
    ended
}

/// The socket loop: reads frames into `frames`, sends what the [`Link`] queues, pings.
/// Never waits for the handler (beyond `hello`).
async fn pump<H: Handler, C: Connector>(
    handler: &H,
    connector: &C,
    link: &Link,
    timing: &Timing,
    frames: mpsc::UnboundedSender<ServerFrame>,
) -> Ended {
    let socket = match tokio::time::timeout(timing.connect_timeout, connector.connect()).await {
        Err(_) => return lost("connecting timed out", false),
        Ok(Err(e)) => return lost(e, false),
        Ok(Ok(socket)) => socket,
    };
    let (mut sink, mut stream) = socket.split();
    let hello = match handler.hello().await {
        Ok(hello) => hello,
        Err(e) => return lost(e, false),
    };
    if let Err(e) = sink.send(text(&hello)).await {
        return lost(describe(&e), false);
    }
    let (tx, mut rx) = mpsc::unbounded_channel::<ClientFrame>();
    let mut up = false;
    let mut refused: Option<String> = None;
    let welcome_deadline = tokio::time::sleep(timing.connect_timeout);
    tokio::pin!(welcome_deadline);
    let mut ping = tokio::time::interval_at(Instant::now() + timing.ping_every, timing.ping_every);
    let mut last_heard = Instant::now();
    loop {
        tokio::select! {
            _ = &mut welcome_deadline, if !up => {
                return lost("the server did not answer hello in time", false);
            }
            Some(frame) = rx.recv() => {
                if let Err(e) = sink.send(text(&frame)).await {
                    return lost(describe(&e), up);
                }
            }
            _ = ping.tick() => {
                if last_heard.elapsed() > timing.ping_every * 3 / 2 {
                    return lost("the server stopped answering", up);
                }
                if let Err(e) = sink.send(text(&ClientFrame::Ping { reference: None })).await {
                    return lost(describe(&e), up);
                }
            }
            msg = stream.next() => {
                last_heard = Instant::now();
                let msg = match msg {
                    None => return lost("the connection closed", up),
                    Some(Err(e)) => return lost(describe(&e), up),
                    Some(Ok(msg)) => msg,
                };
                match msg {
                    Message::Text(t) => match serde_json::from_str::<ServerFrame>(t.as_str()) {
                        Ok(ServerFrame::Error { code: ErrorCode::Unauthorized, message, .. }) if !up => {
                            // A 4001 close follows; remember why.
                            refused = Some(message);
                        }
                        Ok(frame) => {
                            if matches!(frame, ServerFrame::Welcome { .. }) {
                                up = true;
                                link.set(Some(tx.clone()));
                            }
                            if frames.send(frame).is_err() {
                                return lost("the frame task ended", up);
                            }
                        }
                        Err(e) => tracing::warn!(error = %e, "ignoring an unreadable server frame"),
                    },
                    Message::Close(frame) => {
                        let (code, reason) = frame
                            .map(|f| (u16::from(f.code), f.reason.to_string()))
                            .unwrap_or((1005, String::new()));
                        if code == close::UNAUTHORIZED {
                            let reason = refused.take().unwrap_or(if reason.is_empty() {
                                "the session ended".to_owned()
                            } else {
                                reason
                            });
                            return Ended::Unauthorized(reason);
                        }
                        if code == close::STORE_RESET {
                            return Ended::StoreReset { was_up: up };
                        }
                        return lost(format!("the server closed the connection ({code} {reason})"), up);
                    }
                    _ => {}
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    #[test]
    fn backoff_grows_to_the_cap_with_jitter() {
        let b = Backoff::default();
        assert_eq!(b.ceiling(1), Duration::from_millis(500));
        assert_eq!(b.ceiling(2), Duration::from_secs(1));
        assert_eq!(b.ceiling(4), Duration::from_secs(4));
        assert_eq!(b.ceiling(7), Duration::from_secs(30));
        assert_eq!(b.ceiling(u32::MAX), Duration::from_secs(30));
        for attempt in 1..40 {
            let d = b.delay(attempt);
            assert!(
                d >= b.ceiling(attempt) / 2 && d <= b.ceiling(attempt),
                "{d:?}"
            );
        }
    }

    /// Never connects; counts attempts.
    struct Refusing(Arc<AtomicU32>);

    impl Connector for Refusing {
        type Socket = <WsConnector as Connector>::Socket;
        async fn connect(&self) -> Result<Self::Socket, String> {
            self.0.fetch_add(1, Ordering::SeqCst);
            Err("connection refused".into())
        }
    }

    struct Recorder(mpsc::UnboundedSender<(Instant, ConnectionState)>);

    impl Handler for Recorder {
        async fn hello(&self) -> Result<ClientFrame, String> {
            Err("not used".into())
        }
        async fn on_frame(
            &self,
            _frame: ServerFrame,
            _link: &Link,
            _stop: &CancellationToken,
        ) -> Handled {
            Handled::Done
        }
        fn on_state(&self, state: ConnectionState) {
            let _ = self.0.send((Instant::now(), state));
        }
        async fn on_session_ended(&self, _reason: String) {}
        async fn on_store_reset(&self) {}
    }

    /// With time paused, the reconnect schedule is exact: each `Reconnecting` announces the
    /// delay that then passes before the next `Connecting`, delays grow and stay under the cap.
    #[tokio::test(start_paused = true)]
    async fn reconnects_with_backoff_under_paused_time() {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let attempts = Arc::new(AtomicU32::new(0));
        let timing = Timing {
            backoff: Backoff::default(),
            ..Timing::default()
        };
        let conn = Connection::spawn(
            Arc::new(Recorder(tx)),
            Refusing(attempts.clone()),
            Link::default(),
            timing,
        );
        let mut announced: Option<(Instant, Duration)> = None;
        let mut ceilings_seen = Vec::new();
        for _ in 0..24 {
            let next = tokio::time::timeout(Duration::from_secs(120), rx.recv()).await;
            let Ok(Some((at, state))) = next else {
                panic!("no state change within 120 s of virtual time");
            };
            match state {
                ConnectionState::Connecting => {
                    if let Some((from, delay)) = announced.take() {
                        // The timer wheel has millisecond ticks.
                        let waited = at - from;
                        assert!(
                            waited >= delay && waited <= delay + Duration::from_millis(2),
                            "waited {waited:?}, announced {delay:?}"
                        );
                    }
                }
                ConnectionState::Reconnecting {
                    attempt,
                    retry_in_ms,
                    reason,
                } => {
                    assert_eq!(reason, "connection refused");
                    let delay = Duration::from_millis(retry_in_ms);
                    let ceiling = timing.backoff.ceiling(attempt);
                    assert!(delay >= ceiling / 2 && delay <= ceiling);
                    ceilings_seen.push(ceiling);
                    announced = Some((at, delay));
                }
                other => panic!("unexpected state {other:?}"),
            }
        }
        assert_eq!(attempts.load(Ordering::SeqCst), 12);
        assert!(ceilings_seen.windows(2).all(|w| w[0] <= w[1]));
        assert_eq!(ceilings_seen.last(), Some(&Duration::from_secs(30)));
        conn.stopped().await;
    }

    /// Opens in-memory sockets; the server half of each goes to the test.
    struct Duplex(
        mpsc::UnboundedSender<tokio_tungstenite::WebSocketStream<tokio::io::DuplexStream>>,
    );

    impl Connector for Duplex {
        type Socket = tokio_tungstenite::WebSocketStream<tokio::io::DuplexStream>;
        async fn connect(&self) -> Result<Self::Socket, String> {
            use tokio_tungstenite::tungstenite::protocol::Role;
            let (client, server) = tokio::io::duplex(64 * 1024);
            let server =
                tokio_tungstenite::WebSocketStream::from_raw_socket(server, Role::Server, None)
                    .await;
            self.0.send(server).map_err(|_| "test over".to_owned())?;
            Ok(
                tokio_tungstenite::WebSocketStream::from_raw_socket(client, Role::Client, None)
                    .await,
            )
        }
    }

    /// What the handler saw, in order.
    #[derive(Debug, Clone, PartialEq)]
    enum Seen {
        Hello(Vec<protocol::ws::Cursor>),
        Frame(&'static str),
        StoreReset,
        Reconnecting { attempt: u32 },
        Ended,
    }

    /// Resumes from its cursors until told the store was reset.
    struct Cursors {
        cursors: Mutex<Vec<protocol::ws::Cursor>>,
        log: mpsc::UnboundedSender<Seen>,
    }

    impl Handler for Cursors {
        async fn hello(&self) -> Result<ClientFrame, String> {
            let resume = self.cursors.lock().map(|c| c.clone()).unwrap_or_default();
            let _ = self.log.send(Seen::Hello(resume.clone()));
            Ok(ClientFrame::Hello {
                token: "t".into(),
                resume,
                epoch: None,
            })
        }
        async fn on_frame(
            &self,
            frame: ServerFrame,
            _link: &Link,
            _stop: &CancellationToken,
        ) -> Handled {
            let name = match frame {
                ServerFrame::Welcome { .. } => "welcome",
                _ => "other",
            };
            let _ = self.log.send(Seen::Frame(name));
            Handled::Done
        }
        fn on_state(&self, state: ConnectionState) {
            if let ConnectionState::Reconnecting { attempt, .. } = state {
                let _ = self.log.send(Seen::Reconnecting { attempt });
            }
        }
        async fn on_session_ended(&self, _reason: String) {
            let _ = self.log.send(Seen::Ended);
        }
        async fn on_store_reset(&self) {
            if let Ok(mut c) = self.cursors.lock() {
                c.clear();
            }
            let _ = self.log.send(Seen::StoreReset);
        }
    }

    fn welcome() -> Message {
        let frame = ServerFrame::Welcome {
            protocol: 1,
            user: protocol::rest::User {
                id: protocol::UserId(1),
                username: "ann".into(),
                created_ts: 0,
                admin: false,
                display_name: None,
            },
            session_id: "s".into(),
            rooms: Vec::new(),
            epoch: "e".into(),
            limits: protocol::limits::Limits::default(),
        };
        Message::text(serde_json::to_string(&frame).unwrap_or_default())
    }

    /// A 4010 close is not a plain loss: the handler drops its state before the next connect
    /// (so the next hello resumes nothing), and the reconnect starts at the first backoff step
    /// without ending the session.
    #[tokio::test(start_paused = true)]
    async fn store_reset_close_drops_cursors_before_reconnecting() {
        let (log_tx, mut log) = mpsc::unbounded_channel();
        let (server_tx, mut servers) = mpsc::unbounded_channel();
        let handler = Arc::new(Cursors {
            cursors: Mutex::new(vec![protocol::ws::Cursor {
                room: protocol::RoomId(1),
                seq: 5,
            }]),
            log: log_tx,
        });
        let conn = Connection::spawn(
            handler,
            Duplex(server_tx),
            Link::default(),
            Timing::default(),
        );
        let wait = Duration::from_secs(60);
        let mut server = tokio::time::timeout(wait, servers.recv())
            .await
            .ok()
            .flatten()
            .unwrap_or_else(|| panic!("no first connect"));
        let hello = tokio::time::timeout(wait, server.next()).await;
        assert!(matches!(hello, Ok(Some(Ok(Message::Text(_))))), "{hello:?}");
        server
            .send(welcome())
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        server
            .send(Message::Close(Some(tungstenite::protocol::CloseFrame {
                code: close::STORE_RESET.into(),
                reason: "store lost data; drop local state and resync".into(),
            })))
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let mut second = tokio::time::timeout(wait, servers.recv())
            .await
            .ok()
            .flatten()
            .unwrap_or_else(|| panic!("no reconnect after 4010"));
        let hello = tokio::time::timeout(wait, second.next()).await;
        let Ok(Some(Ok(Message::Text(hello)))) = hello else {
            panic!("no second hello: {hello:?}");
        };
        let hello: serde_json::Value = serde_json::from_str(hello.as_str()).unwrap_or_default();
        assert_eq!(hello["resume"], serde_json::json!([]), "{hello}");
        conn.stopped().await;
        let mut seen = Vec::new();
        while let Ok(s) = log.try_recv() {
            seen.push(s);
        }
        assert_eq!(
            seen,
            vec![
                Seen::Hello(vec![protocol::ws::Cursor {
                    room: protocol::RoomId(1),
                    seq: 5
                }]),
                Seen::Frame("welcome"),
                Seen::StoreReset,
                Seen::Reconnecting { attempt: 1 },
                Seen::Hello(vec![]),
            ]
        );
    }
}
