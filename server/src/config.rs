//! Server configuration: one struct, defaults here, overridden by an optional TOML file and then
//! by `CHAT_*` environment variables (e.g. `CHAT_REDIS_URL`, `CHAT_LISTEN`). Validated at start.

use figment::providers::{Env, Format, Serialized, Toml};
use figment::Figment;
use protocol::limits::Limits;
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// Everything an operator can set. See `chat-server.example.toml` for a commented copy.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// Redis URL (`redis://host:port/db`). Unset (and no `redis_cluster`): the embedded
    /// in-process store (one node only, nothing survives a restart).
    pub redis_url: Option<String>,
    /// Redis Cluster seed nodes (`["redis://10.0.0.1:6379", …]`), instead of `redis_url`: the
    /// store then spreads over the cluster's masters (see `docs/CLUSTER.md`). Any reachable
    /// seed is enough to find the rest; list a few.
    pub redis_cluster: Vec<String>,
    /// Browser Origins allowed to open `/ws` (e.g. `https://chat.example.org`). Requests without
    /// an Origin header (native clients) are always allowed.
    pub allowed_origins: Vec<String>,
    /// Limits announced to clients.
    pub limits: Limits,
    /// Session lifetime in seconds; slides forward on every use.
    pub session_ttl_secs: u64,
    /// How long a client message id is remembered for idempotent sends, in seconds (≥ 24 h).
    pub dedupe_ttl_secs: u64,
    /// History kept per room: at most this many events (0 = unbounded).
    pub retention_events: u64,
    /// History kept per room: events younger than this many seconds (0 = unbounded).
    pub retention_secs: u64,
    /// Per-user message rate (messages, edits, deletes per second) and burst.
    pub msgs_per_sec: u32,
    pub msgs_burst: u32,
    /// Per-connection frame rate (all frames) and burst.
    pub frames_per_sec: u32,
    pub frames_burst: u32,
    /// Login/register attempts per client address per minute (IPv6: per /64).
    pub logins_per_min: u32,
    /// Failed logins one account absorbs at once before it is throttled (see docs/SECURITY.md).
    pub login_failures_burst: u32,
    /// Failed logins per account per hour after the burst (the bucket refills at this rate).
    pub login_failures_per_hour: u32,
    /// PEM certificate chain (leaf first) for built-in TLS; with `tls_key`, the server speaks
    /// only https/wss. Re-read on SIGHUP, and when changed (`tls_watch_secs`).
    pub tls_cert: Option<PathBuf>,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1) for `tls_cert`.
    pub tls_key: Option<PathBuf>,
    /// Seconds between checks of `tls_cert`/`tls_key` for changed contents (a renewed pair is
    /// then loaded, as on SIGHUP); 0: only SIGHUP reloads.
    pub tls_watch_secs: u64,
    /// Reverse proxies (IP addresses or CIDR ranges) whose `X-Forwarded-For` is believed. The
    /// client address for rate limits and logs is then the rightmost address in that header
    /// that is not itself a trusted proxy. Empty: the TCP peer address is always used.
    pub trusted_proxies: Vec<String>,
    /// PEM CA certificate(s) to verify a `rediss://` Redis with, instead of the system store.
    pub redis_ca: Option<PathBuf>,
    /// Per-user rates, per hour, of creating rooms, opening direct rooms with new people and
    /// inviting (each also the burst). Abuse limits: a stranger cannot flood others with rooms.
    pub rooms_per_hour: u32,
    pub dms_per_hour: u32,
    pub invites_per_hour: u32,
    /// Rooms one user may belong to; joins, invites and new direct rooms beyond it are refused
    /// with `limit_reached` (for the inviter too). Also bounds the cost of each reconnect.
    pub max_rooms_per_user: u64,
    /// Members one room may have; more joins and invites get `limit_reached`.
    pub max_members_per_room: u64,
    /// Outbound frames queued per connection before it is closed as a slow consumer (4008).
    pub outbound_queue: usize,
    /// Authenticated sockets one account may hold on this node; more are refused with
    /// `too_many_connections` and close 4013.
    pub max_sockets_per_user: usize,
    /// Password hashes computed at once; more wait (up to 5 s) and then get `server_busy`.
    pub max_concurrent_hashes: usize,
    /// Presence heartbeat interval in seconds. A node that dies is considered gone after
    /// 3 intervals, so its users show offline within about 4 intervals.
    pub presence_heartbeat_secs: u64,
    /// Seconds a client has to send `hello` after the socket opens.
    pub hello_timeout_secs: u64,
    /// Seconds to wait for connections to drain on shutdown.
    pub shutdown_grace_secs: u64,
    /// Absolute session lifetime in seconds: a session older than this is refused even while
    /// in use (the sliding `session_ttl_secs` alone would keep a used session forever).
    pub session_max_age_secs: u64,
    /// Who may create an account with `POST /api/v1/register`.
    pub registration: Registration,
    /// Address of the Prometheus metrics listener (`GET /metrics`), e.g. `127.0.0.1:9100`.
    /// Unset: no metrics. Keep it off the public interface.
    pub metrics_listen: Option<SocketAddr>,
    /// Log format on stderr: `text` (for people) or `json` (one object per line, for log
    /// collectors). The level comes from `RUST_LOG` (default `info`).
    pub log_format: LogFormat,
    /// Files attached to messages (`[attachments]`, see `crate::attachments`).
    pub attachments: crate::attachments::AttachmentConfig,
    /// Desktop app updates served to this server's users (see `crate::updates`): one
    /// subdirectory per version (`1.4.0/`) holding the signed packages and their `.sig` files.
    /// Unset: no updates are offered (`update_not_found`).
    pub updates_dir: Option<PathBuf>,
}

/// The `registration` setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Registration {
    /// Anyone can register.
    Open,
    /// Registering needs an invite code made by an admin (`chat-server admin create-invite`).
    Invite,
    /// Nobody can register; admins create accounts (`chat-server admin create-user`).
    Closed,
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            redis_url: None,
            redis_cluster: Vec::new(),
            allowed_origins: Vec::new(),
            limits: Limits::default(),
            session_ttl_secs: 30 * 24 * 3600,
            dedupe_ttl_secs: 24 * 3600,
            retention_events: 100_000,
            retention_secs: 0,
            msgs_per_sec: 10,
            msgs_burst: 20,
            frames_per_sec: 50,
            frames_burst: 100,
            logins_per_min: 30,
            login_failures_burst: 10,
            login_failures_per_hour: 20,
            tls_cert: None,
            tls_key: None,
            tls_watch_secs: 60,
            trusted_proxies: Vec::new(),
            redis_ca: None,
            rooms_per_hour: 20,
            dms_per_hour: 60,
            invites_per_hour: 120,
            max_rooms_per_user: 1000,
            max_members_per_room: 10_000,
            outbound_queue: 1024,
            max_sockets_per_user: 32,
            max_concurrent_hashes: 4,
            presence_heartbeat_secs: 5,
            hello_timeout_secs: 10,
            shutdown_grace_secs: 10,
            session_max_age_secs: 90 * 24 * 3600,
            registration: Registration::Open,
            metrics_listen: None,
            log_format: LogFormat::Text,
            attachments: Default::default(),
            updates_dir: None,
        }
    }
}

/// A configuration that cannot be used, with the reason.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read configuration: {0}")]
    Load(#[from] Box<figment::Error>),
    #[error("invalid configuration: {0}")]
    Invalid(String),
    #[error("invalid configuration: redis_url and redis_cluster are both set; use one (a single Redis, or the nodes of a cluster)")]
    RedisUrlAndCluster,
}

impl Config {
    /// Defaults, then `file` (if given), then `CHAT_*` environment variables. Nested fields use
    /// `__`, e.g. `CHAT_LIMITS__MAX_MESSAGE_BYTES=8192`; lists use TOML syntax,
    /// e.g. `CHAT_ALLOWED_ORIGINS='["https://a.example"]'`.
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        if let Some(file) = file {
            figment = figment.merge(Toml::file_exact(file));
        }
        let config: Config = figment
            .merge(settings_from_env())
            .extract()
            .map_err(Box::new)?;
        config.validate()?;
        Ok(config)
    }

    /// The top-level setting names (`listen`, `limits`, ...).
    fn field_names() -> Vec<String> {
        match serde_json::to_value(Config::default()) {
            Ok(serde_json::Value::Object(map)) => map.keys().cloned().collect(),
            _ => Vec::new(),
        }
    }

    /// Checks ranges and relations between fields.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |msg: &str| Err(ConfigError::Invalid(msg.to_owned()));
        let l = &self.limits;
        if l.max_message_bytes == 0 || l.max_message_bytes * 2 + 1024 > l.max_frame_bytes {
            return bad("limits.max_frame_bytes must exceed 2 × limits.max_message_bytes + 1 KiB (JSON escaping)");
        }
        if l.max_frame_bytes > 16 * 1024 * 1024 {
            return bad("limits.max_frame_bytes must be at most 16 MiB");
        }
        if l.max_history_page == 0 || l.max_replay == 0 {
            return bad("limits.max_history_page and limits.max_replay must be positive");
        }
        if self.dedupe_ttl_secs < 24 * 3600 {
            return bad("dedupe_ttl_secs must be at least 86400 (24 h)");
        }
        if self.session_ttl_secs < 60 {
            return bad("session_ttl_secs must be at least 60");
        }
        if self.session_max_age_secs == 0 {
            return bad("session_max_age_secs must be positive");
        }
        if [
            self.msgs_per_sec,
            self.msgs_burst,
            self.frames_per_sec,
            self.frames_burst,
            self.logins_per_min,
            self.login_failures_burst,
            self.login_failures_per_hour,
            self.rooms_per_hour,
            self.dms_per_hour,
            self.invites_per_hour,
        ]
        .contains(&0)
            || self.max_rooms_per_user == 0
            || self.max_members_per_room < 2
        {
            return bad("rate limits and max_rooms_per_user must be positive, max_members_per_room at least 2");
        }
        if self.outbound_queue < 16
            || self.max_concurrent_hashes == 0
            || self.max_sockets_per_user == 0
        {
            return bad("outbound_queue must be at least 16, max_concurrent_hashes and max_sockets_per_user positive");
        }
        if self.presence_heartbeat_secs == 0 || self.hello_timeout_secs == 0 {
            return bad("presence_heartbeat_secs and hello_timeout_secs must be positive");
        }
        if let Some(url) = &self.redis_url {
            if !(url.starts_with("redis://")
                || url.starts_with("rediss://")
                || url.starts_with("unix://"))
            {
                return bad("redis_url must start with redis://, rediss:// or unix://");
            }
        }
        if self.redis_url.is_some() && !self.redis_cluster.is_empty() {
            return Err(ConfigError::RedisUrlAndCluster);
        }
        if self
            .redis_cluster
            .iter()
            .any(|url| !(url.starts_with("redis://") || url.starts_with("rediss://")))
        {
            return bad("redis_cluster entries must start with redis:// or rediss://");
        }
        if self.tls_cert.is_some() != self.tls_key.is_some() {
            return bad("tls_cert and tls_key go together: set both for built-in TLS, or neither");
        }
        if self.tls_watch_secs > 86_400 {
            return bad("tls_watch_secs is at most 86400 (a day); 0 turns the file watch off");
        }
        if let Err(e) = crate::client_addr::TrustedProxies::parse(&self.trusted_proxies) {
            return Err(ConfigError::Invalid(format!("trusted_proxies: {e}")));
        }
        if self.redis_ca.is_some()
            && !self
                .redis_url
                .as_deref()
                .is_some_and(|u| u.starts_with("rediss://"))
        {
            return bad("redis_ca is only used with a rediss:// redis_url");
        }
        for origin in &self.allowed_origins {
            if !(origin.starts_with("http://") || origin.starts_with("https://"))
                || origin.ends_with('/')
            {
                return bad("allowed_origins entries look like https://chat.example.org (scheme, host, optional port, no path)");
            }
        }
        if let Some(problem) = self.attachments.problem() {
            return bad(problem);
        }
        if let Some(dir) = &self.updates_dir {
            if !dir.is_dir() {
                return Err(ConfigError::Invalid(format!(
                    "updates_dir {} is not a directory",
                    dir.display()
                )));
            }
        }
        Ok(())
    }
}

/// `CHAT_*` variables that name a setting. Others (like `CHAT_CONFIG`, which names the file, or
/// variables of other tools sharing the prefix) are not settings and are left alone; a typo in
/// a nested key (`CHAT_LIMITS__MAX_MESAGE_BYTES`) is still rejected.
fn settings_from_env() -> Env {
    let fields = Config::field_names();
    Env::prefixed("CHAT_").split("__").filter(move |key| {
        let top = key.as_str().split('.').next().unwrap_or_default();
        fields.iter().any(|f| f.eq_ignore_ascii_case(top))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        Config::default().validate().unwrap();
    }

    #[test]
    fn rejects_short_dedupe_window() {
        let config = Config {
            dedupe_ttl_secs: 60,
            ..Config::default()
        };
        assert!(matches!(config.validate(), Err(ConfigError::Invalid(_))));
    }

    #[test]
    fn updates_dir_must_be_a_directory() {
        let config = Config {
            updates_dir: Some(PathBuf::from("/nonexistent/chat-updates")),
            ..Config::default()
        };
        assert!(matches!(config.validate(), Err(ConfigError::Invalid(_))));
    }

    #[test]
    #[allow(clippy::result_large_err)] // figment's Jail API returns figment::Error
    fn redis_cluster_from_file_and_env_and_not_with_redis_url() {
        figment::Jail::expect_with(|jail| {
            jail.create_file(
                "c.toml",
                "redis_cluster = [\"redis://10.0.0.1:7000\", \"redis://10.0.0.2:7000\"]\n",
            )?;
            let config = Config::load(Some(Path::new("c.toml"))).unwrap();
            assert_eq!(config.redis_cluster.len(), 2);
            assert_eq!(config.redis_url, None);
            jail.set_env("CHAT_REDIS_CLUSTER", "[\"redis://10.0.0.3:7000\"]");
            let config = Config::load(Some(Path::new("c.toml"))).unwrap();
            assert_eq!(
                config.redis_cluster,
                vec!["redis://10.0.0.3:7000".to_owned()]
            );
            jail.set_env("CHAT_REDIS_CLUSTER", "[\"10.0.0.3:7000\"]");
            assert!(matches!(
                Config::load(Some(Path::new("c.toml"))),
                Err(ConfigError::Invalid(_))
            ));
            jail.set_env("CHAT_REDIS_CLUSTER", "[\"redis://10.0.0.3:7000\"]");
            jail.set_env("CHAT_REDIS_URL", "redis://127.0.0.1:6379");
            assert!(matches!(
                Config::load(Some(Path::new("c.toml"))),
                Err(ConfigError::RedisUrlAndCluster)
            ));
            Ok(())
        });
    }

    #[test]
    #[allow(clippy::result_large_err)] // figment's Jail API returns figment::Error
    fn file_then_env() {
        figment::Jail::expect_with(|jail| {
            jail.create_file(
                "c.toml",
                "listen = \"0.0.0.0:9000\"\n[limits]\nmax_message_bytes = 1000\n",
            )?;
            jail.set_env("CHAT_REDIS_URL", "redis://127.0.0.1:7777");
            jail.set_env("CHAT_TOOLS", "/somewhere/else");
            let config = Config::load(Some(Path::new("c.toml"))).unwrap();
            assert_eq!(config.listen.port(), 9000);
            assert_eq!(config.limits.max_message_bytes, 1000);
            assert_eq!(config.redis_url.as_deref(), Some("redis://127.0.0.1:7777"));
            Ok(())
        });
    }
}
