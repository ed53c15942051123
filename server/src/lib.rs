//! The chat server as a library: [`start`] binds, connects the store and serves until
//! [`Running::shutdown`]. `main.rs` adds configuration loading, logging and signals.
//!
//! Layers, bottom up: [`store`] (Redis or embedded; the bus) → [`hub`] (this node's routing to
//! connections) → [`chat`] (rules and operations) → [`http`] (REST) and [`ws`] (the socket).

pub mod accounts;
pub mod attachments;
pub mod auth;
pub mod backup;
pub mod chat;
pub mod cli;
pub mod client_addr;
pub mod config;
pub mod error;
pub mod hooks;
pub mod http;
pub mod hub;
pub mod limits;
pub mod metrics;
pub mod moderation;
pub mod presence;
pub mod privacy;
pub mod settings;
pub mod store;
pub mod throttle;
pub mod tls;
pub mod tls_watch;
pub mod updates;
pub mod ws;

pub use config::Config;
pub use error::Error;

use axum::routing::get;
use axum::Router;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tower_http::trace::TraceLayer;

/// Shared state of one server process (cheap to clone).
#[derive(Clone)]
pub struct AppState {
    pub config: Arc<Config>,
    pub store: Arc<store::Store>,
    pub hub: Arc<hub::Hub>,
    pub hasher: Arc<auth::Hasher>,
    pub limits: Arc<limits::RateLimits>,
    /// Failed-login budget per account.
    pub login_throttle: Arc<throttle::LoginThrottle>,
    /// Whose `X-Forwarded-For` to believe (`trusted_proxies`).
    pub proxies: Arc<client_addr::TrustedProxies>,
    /// Cancelled when the server shuts down; every connection watches it.
    pub shutdown: CancellationToken,
    /// This node's presence changes, applied in order by [`presence::run`].
    pub presence: tokio::sync::mpsc::UnboundedSender<presence::Change>,
    /// Pause points for race tests (see [`hooks`]).
    pub hooks: Arc<hooks::Hooks>,
    /// File storage for attachments.
    pub attachments: Arc<attachments::Attachments>,
}

/// The whole HTTP surface for `state`.
pub fn app(state: AppState) -> Router {
    let max_body = state.config.limits.max_frame_bytes;
    let proxies = state.proxies.clone();
    http::router()
        .route("/ws", get(ws::upgrade))
        // Enforced by the body extractors, so an oversized body gets the typed 413 error.
        .layer(axum::extract::DefaultBodyLimit::max(max_body))
        .layer(axum::middleware::from_fn(metrics::track_http))
        .layer(
            TraceLayer::new_for_http().make_span_with(move |req: &axum::http::Request<_>| {
                // The matched route, never the raw URI: no ids or query strings in logs.
                let route = req
                    .extensions()
                    .get::<axum::extract::MatchedPath>()
                    .map_or("unmatched", axum::extract::MatchedPath::as_str)
                    .to_owned();
                let peer = req
                    .extensions()
                    .get::<axum::extract::ConnectInfo<SocketAddr>>()
                    .map(|c| c.0.ip());
                let client = peer.map(|ip| proxies.client(ip, req.headers()));
                let request_id = request_id(req.headers());
                tracing::info_span!("request", method = %req.method(), route, client = ?client, request_id)
            }),
        )
        // Outermost: every request carries an `x-request-id` (the proxy's, or a new one), in
        // its log span and in the response.
        .layer(tower_http::request_id::PropagateRequestIdLayer::x_request_id())
        .layer(tower_http::request_id::SetRequestIdLayer::x_request_id(
            tower_http::request_id::MakeRequestUuid,
        ))
        .with_state(state)
}

/// The request's `x-request-id` if it looks like an id (a proxy's, e.g. nginx `$request_id`);
/// anything longer or stranger is not written to the logs.
fn request_id(headers: &axum::http::HeaderMap) -> &str {
    match headers.get("x-request-id").and_then(|v| v.to_str().ok()) {
        Some(id)
            if !id.is_empty()
                && id.len() <= 64
                && id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') =>
        {
            id
        }
        Some(_) => "invalid",
        None => "none",
    }
}

/// A running server.
pub struct Running {
    addr: SocketAddr,
    metrics_addr: Option<SocketAddr>,
    state: AppState,
    server: JoinHandle<()>,
    tasks: Vec<JoinHandle<()>>,
    /// The certificate in use when serving TLS (`tls_cert`/`tls_key`).
    tls: Option<Arc<tls::CertStore>>,
}

/// Connects the store, binds `config.listen` and starts serving.
pub async fn start(config: Config) -> Result<Running, Error> {
    config.validate()?;
    let shutdown = CancellationToken::new();
    let store = match &config.redis_url {
        Some(url) => {
            let client = match &config.redis_ca {
                Some(ca) => {
                    let pem = std::fs::read(ca).map_err(|source| {
                        Error::Tls(tls::TlsError::Read {
                            path: ca.clone(),
                            source,
                        })
                    })?;
                    store::redis::tls_client(url, pem)?
                }
                None => redis::Client::open(url.as_str())?,
            };
            store::Store::Redis(
                store::redis::RedisStore::connect_with(client, shutdown.clone()).await?,
            )
        }
        None if !config.redis_cluster.is_empty() => {
            let target = store::redis::conn::Target::cluster(&config.redis_cluster)?;
            store::Store::Redis(
                store::redis::RedisStore::connect_to(target, shutdown.clone()).await?,
            )
        }
        None => store::Store::Memory(Box::default()),
    };
    store.ping().await?;
    let store = Arc::new(store);
    let tls = match (&config.tls_cert, &config.tls_key) {
        (Some(cert), Some(key)) => Some(tls::CertStore::load(cert, key)?),
        _ => None,
    };
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|source| Error::Bind {
            addr: config.listen,
            source,
        })?;
    let addr = listener.local_addr().map_err(|source| Error::Bind {
        addr: config.listen,
        source,
    })?;
    // Metrics on their own listener, so they can stay off the public interface.
    let (metrics_listener, metrics_addr) = match config.metrics_listen {
        Some(at) => {
            metrics::install();
            let bind_error = |source| Error::Bind { addr: at, source };
            let listener = tokio::net::TcpListener::bind(at)
                .await
                .map_err(bind_error)?;
            let bound = listener.local_addr().map_err(bind_error)?;
            (Some(listener), Some(bound))
        }
        None => (None, None),
    };
    let (presence_tx, presence_rx) = tokio::sync::mpsc::unbounded_channel();
    let state = AppState {
        hasher: Arc::new(auth::Hasher::new(config.max_concurrent_hashes)),
        limits: Arc::new(limits::RateLimits::new(&config)),
        login_throttle: Arc::new(throttle::LoginThrottle::new(
            config.login_failures_burst,
            config.login_failures_per_hour,
            Duration::from_secs(config.session_ttl_secs),
        )),
        proxies: Arc::new(
            client_addr::TrustedProxies::parse(&config.trusted_proxies)
                .map_err(|e| config::ConfigError::Invalid(format!("trusted_proxies: {e}")))?,
        ),
        attachments: Arc::new(
            attachments::Attachments::new(&config.attachments)
                .map_err(config::ConfigError::Invalid)?,
        ),
        config: Arc::new(config),
        store: store.clone(),
        hub: Arc::new(hub::Hub::new(shutdown.clone())),
        shutdown: shutdown.clone(),
        presence: presence_tx,
        hooks: Arc::default(),
    };
    // The hub receives the bus before any socket can connect.
    if !store.attach_bus(Arc::new(hub::BusSink::new(state.hub.clone(), &store))) {
        return Err(Error::Store(error::StoreError::Corrupt(
            "the bus already has a receiver".into(),
        )));
    }
    // Register this node for presence before any socket can connect.
    let ttl_ms = (state.config.presence_heartbeat_secs * 3000) as i64;
    state
        .store
        .presence_heartbeat(auth::now_ms(), ttl_ms)
        .await?;
    let mut tasks = vec![tokio::spawn(presence::run(state.clone(), presence_rx))];
    tasks.push(tokio::spawn(forget_idle_limits(state.clone())));
    tasks.push(tokio::spawn(attachments::run_collector(state.clone())));
    if let Some(listener) = metrics_listener {
        tasks.push(tokio::spawn(metrics::upkeep(shutdown.clone())));
        let router = metrics::router(state.clone());
        tasks.push(tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, router).await {
                tracing::error!(error = %e, "metrics listener stopped");
            }
        }));
        tracing::info!(addr = ?metrics_addr, "metrics listening");
    }
    if let (Some(certs), secs @ 1..) = (&tls, state.config.tls_watch_secs) {
        let every = Duration::from_secs(secs);
        tasks.push(tokio::spawn(tls_watch::run(
            certs.clone(),
            every,
            shutdown.clone(),
        )));
    }
    tracing::info!(%addr, store = state.store.kind(), tls = tls.is_some(), "chat server listening");
    if state.config.redis_url.is_none() && state.config.redis_cluster.is_empty() {
        tracing::warn!(
            "no redis_url or redis_cluster configured: using the embedded store (single node, \
             data is lost on exit)"
        );
    }
    let app = app(state.clone()).into_make_service_with_connect_info::<SocketAddr>();
    let stop = shutdown.clone();
    // No Nagle: a reply written right after another frame must not wait for the client's
    // delayed ACK (up to 40 ms on Linux) before it leaves.
    let server = match &tls {
        None => tokio::spawn(serve(
            axum::serve::ListenerExt::tap_io(listener, |tcp| nodelay(tcp)),
            app,
            stop,
        )),
        Some(certs) => {
            let listener =
                tls::TlsListener::new(listener, certs.server_config()?).map_err(|source| {
                    Error::Bind {
                        addr: state.config.listen,
                        source,
                    }
                })?;
            tokio::spawn(serve(
                axum::serve::ListenerExt::tap_io(listener, |tls| nodelay(tls.get_ref().0)),
                app,
                stop,
            ))
        }
    };
    Ok(Running {
        addr,
        metrics_addr,
        state,
        server,
        tasks,
        tls,
    })
}

impl Running {
    /// The address the server listens on (useful with port 0).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The metrics listener's address, when metrics are on.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_addr
    }

    /// `https` when serving TLS, else `http`.
    pub fn scheme(&self) -> &'static str {
        if self.tls.is_some() {
            "https"
        } else {
            "http"
        }
    }

    /// Reads `tls_cert` and `tls_key` again (SIGHUP): new connections get the new certificate,
    /// open ones keep theirs. A pair that cannot be used keeps the old one; the error says why.
    /// Without TLS there is nothing to reload.
    pub fn reload_tls(&self) -> Result<(), tls::TlsError> {
        match &self.tls {
            Some(certs) => certs.reload(),
            None => Ok(()),
        }
    }

    /// Certificate reloads so far (SIGHUP and the file watch); `None` without TLS.
    pub fn tls_reloads(&self) -> Option<tls::ReloadCounts> {
        self.tls.as_ref().map(|certs| certs.reload_counts())
    }

    /// The server's shared state (for tests and embedding).
    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Graceful: stop accepting, close sockets with 1001 ("going away": reconnect elsewhere and
    /// resume), wait up to `shutdown_grace_secs` for them to drain, mark this node's users offline.
    pub async fn shutdown(self) {
        tracing::info!(connections = self.state.hub.connections(), "shutting down");
        self.state.shutdown.cancel();
        self.state.hub.close_all(
            protocol::close::GOING_AWAY,
            "server shutting down; reconnect",
        );
        let grace = Duration::from_secs(self.state.config.shutdown_grace_secs);
        let drained = tokio::time::timeout(grace, async {
            while self.state.hub.connections() > 0 {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await;
        if drained.is_err() {
            tracing::warn!(
                left = self.state.hub.connections(),
                "connections did not drain in time"
            );
        }
        let _ = tokio::time::timeout(grace, self.server).await;
        if let Err(e) = self.state.store.presence_node_down(auth::now_ms()).await {
            tracing::warn!(error = %e, "could not mark this node's users offline");
        }
        for task in self.tasks {
            task.abort();
        }
        tracing::info!("stopped");
    }

    /// Stops at once without any clean-up, as a crash would (for fault tests).
    pub fn abort(self) {
        self.state.shutdown.cancel();
        // Open sockets end as the process's would (their tasks are not in `tasks`).
        self.state.hub.close_all(
            protocol::close::GOING_AWAY,
            "server shutting down; reconnect",
        );
        self.server.abort();
        for task in self.tasks {
            task.abort();
        }
    }
}

fn nodelay(tcp: &tokio::net::TcpStream) {
    if let Err(e) = tcp.set_nodelay(true) {
        tracing::debug!(error = %e, "could not set TCP_NODELAY");
    }
}

/// Serves `app` on `listener` (plain TCP or [`tls::TlsListener`]) until `stop`.
async fn serve<L>(
    listener: L,
    app: axum::extract::connect_info::IntoMakeServiceWithConnectInfo<Router, SocketAddr>,
    stop: CancellationToken,
) where
    L: axum::serve::Listener<Addr = SocketAddr>,
    for<'a> SocketAddr: axum::extract::connect_info::Connected<axum::serve::IncomingStream<'a, L>>,
{
    let result = axum::serve(listener, app)
        .with_graceful_shutdown(async move { stop.cancelled().await })
        .await;
    if let Err(e) = result {
        tracing::error!(error = %e, "server stopped with an error");
    }
}

async fn forget_idle_limits(state: AppState) {
    let mut tick = tokio::time::interval(limits::FORGET_EVERY);
    loop {
        tokio::select! {
            _ = state.shutdown.cancelled() => return,
            _ = tick.tick() => {
                state.limits.forget_idle();
                state.login_throttle.forget_idle(std::time::Instant::now());
            }
        }
    }
}
