//! `chat-server admin …`: account administration and backups against the configured store,
//! with the same configuration loading as the server (`--config` file, then `CHAT_*`) and the
//! same rules as the REST API ([`crate::accounts`]). Passwords are read from standard input,
//! never from the command line (which other users of the machine can see in `ps`).
//!
//! They need Redis: the embedded store lives inside a running server process. There, an
//! admin uses the REST routes instead (`GET /api/v1/admin/export` for a backup).

use crate::accounts;
use crate::auth::Hasher;
use crate::error::ApiError;
use crate::store::{Store, UserFlag};
use crate::Config;
use protocol::rest::AdminUser;
use protocol::ErrorCode;
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use tokio_util::sync::CancellationToken;

/// Administration of the configured store (Redis).
#[derive(Debug, clap::Subcommand)]
pub enum AdminCommand {
    /// Create an account, whatever the registration mode. Reads the password from stdin.
    CreateUser {
        username: String,
        /// Give it the admin role.
        #[arg(long)]
        admin: bool,
    },
    /// Set a new password (read from stdin); every session of the account is revoked.
    ResetPassword { username: String },
    /// Disable an account: its sessions are revoked, its sockets closed, login refused.
    Disable { username: String },
    /// Enable a disabled account again.
    Enable { username: String },
    /// Give an account the admin role.
    GrantAdmin { username: String },
    /// Take the admin role away.
    RevokeAdmin { username: String },
    /// Make a registration invite code (printed on stdout) for `registration = "invite"`.
    CreateInvite {
        /// How many registrations it allows.
        #[arg(long, default_value_t = 1)]
        uses: u32,
        /// How long it is good for: seconds, or a number with s, m, h or d (e.g. 7d).
        #[arg(long, default_value = "7d", value_parser = parse_duration)]
        expires_in: u64,
    },
    /// List accounts: id, username, admin, disabled, created (ms since the epoch), tab-separated.
    ListUsers,
    /// Write the whole data set as JSON lines (to stdout, or to --output).
    Export {
        #[arg(long, short)]
        output: Option<PathBuf>,
    },
    /// Load an export into the configured store, which must be empty. Run it with no server
    /// on that store.
    Import { file: PathBuf },
}

/// `7d`, `24h`, `90m`, `30s` or plain seconds.
fn parse_duration(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let (digits, unit) = match s.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => (&s[..i], c),
        _ => (s, 's'),
    };
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("{s:?} is not a duration like 3600, 90m, 24h or 7d"))?;
    let unit = match unit {
        's' => 1,
        'm' => 60,
        'h' => 3600,
        'd' => 86_400,
        other => return Err(format!("unknown unit {other:?}: use s, m, h or d")),
    };
    n.checked_mul(unit)
        .ok_or_else(|| "duration too long".into())
}

/// What went wrong, printed as `chat-server admin: …`.
#[derive(Debug, thiserror::Error)]
enum CliError {
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    #[error("{0}")]
    Usage(String),
    #[error("{}", .0.message)]
    Api(#[from] ApiError),
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("cannot reach Redis: {0}")]
    Redis(#[from] redis::RedisError),
    #[error("the file is not a valid export: {0}")]
    Backup(#[from] crate::backup::BackupError),
}

impl From<crate::error::StoreError> for CliError {
    fn from(e: crate::error::StoreError) -> Self {
        match e {
            crate::error::StoreError::Api(e) => CliError::Api(e),
            other => CliError::Usage(other.to_string()),
        }
    }
}

/// Runs one admin command; the exit code is 0 on success, 2 for a bad configuration, 1 else.
pub async fn main(config_file: Option<&Path>, command: AdminCommand) -> ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .init();
    match run(config_file, command).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("chat-server admin: {e}");
            match e {
                CliError::Config(_) => ExitCode::from(2),
                _ => ExitCode::FAILURE,
            }
        }
    }
}

async fn run(config_file: Option<&Path>, command: AdminCommand) -> Result<(), CliError> {
    let config = Config::load(config_file)?;
    use crate::store::redis::{conn::Target, RedisStore};
    let target = match &config.redis_url {
        Some(url) => Target::Single(redis::Client::open(url.as_str())?),
        None if !config.redis_cluster.is_empty() => Target::cluster(&config.redis_cluster)?,
        None => {
            return Err(CliError::Usage(
                "no redis_url configured: the embedded store lives inside the running server. \
                 Use the admin REST routes there (GET /api/v1/admin/export with an admin's token \
                 for a backup), or configure redis_url (CHAT_REDIS_URL) or redis_cluster"
                    .into(),
            ))
        }
    };
    let shutdown = CancellationToken::new();
    let store = Store::Redis(RedisStore::connect_to(target, shutdown.clone()).await?);
    store.ping().await?;
    let result = command_on(&store, command).await;
    shutdown.cancel();
    result
}

async fn command_on(store: &Store, command: AdminCommand) -> Result<(), CliError> {
    let hasher = || Hasher::new(1);
    let mut out = std::io::stdout();
    match command {
        AdminCommand::CreateUser { username, admin } => {
            let password = read_password()?;
            let user = accounts::create_user(store, &hasher(), &username, password, admin).await?;
            writeln!(out, "created {}", line(&user))?;
        }
        AdminCommand::ResetPassword { username } => {
            let user = by_name(store, &username).await?;
            let password = read_password()?;
            accounts::reset_password(store, &hasher(), user.id, password).await?;
            writeln!(
                out,
                "password of {} reset; its sessions are revoked",
                user.username
            )?;
        }
        AdminCommand::Disable { username } => {
            flag(store, &username, UserFlag::Disabled, true).await?
        }
        AdminCommand::Enable { username } => {
            flag(store, &username, UserFlag::Disabled, false).await?
        }
        AdminCommand::GrantAdmin { username } => {
            flag(store, &username, UserFlag::Admin, true).await?
        }
        AdminCommand::RevokeAdmin { username } => {
            flag(store, &username, UserFlag::Admin, false).await?
        }
        AdminCommand::CreateInvite { uses, expires_in } => {
            let invite = accounts::create_invite(store, None, Some(uses), Some(expires_in)).await?;
            writeln!(out, "{}", invite.code)?;
            eprintln!(
                "good for {} registration(s) until {} ms since the epoch",
                invite.uses, invite.expires_ts
            );
        }
        AdminCommand::ListUsers => {
            writeln!(out, "id\tusername\tadmin\tdisabled\tcreated_ts")?;
            let mut after = 0;
            loop {
                let page = accounts::list_users(store, Some(after), Some(1000)).await?;
                let Some(last) = page.last() else { break };
                after = last.id.0;
                for u in &page {
                    writeln!(
                        out,
                        "{}\t{}\t{}\t{}\t{}",
                        u.id, u.username, u.admin, u.disabled, u.created_ts
                    )?;
                }
            }
        }
        AdminCommand::Export { output } => {
            let data = store.dump(crate::auth::now_ms()).await?;
            let text = crate::backup::encode(&data);
            match output {
                Some(path) => std::fs::write(&path, text)?,
                None => out.write_all(text.as_bytes())?,
            }
            eprintln!(
                "exported {} users, {} rooms, {} events",
                data.users.len(),
                data.rooms.len(),
                data.events.len()
            );
        }
        AdminCommand::Import { file } => {
            let text = std::fs::read_to_string(&file)?;
            let data = crate::backup::decode(&text)?;
            store.load(&data).await?;
            writeln!(
                out,
                "imported {} users, {} rooms, {} events",
                data.users.len(),
                data.rooms.len(),
                data.events.len()
            )?;
        }
    }
    Ok(())
}

fn line(u: &AdminUser) -> String {
    let mut s = format!("user {} {}", u.id, u.username);
    if u.admin {
        s.push_str(" (admin)");
    }
    if u.disabled {
        s.push_str(" (disabled)");
    }
    s
}

async fn by_name(store: &Store, username: &str) -> Result<crate::store::UserRecord, CliError> {
    store.user_by_name(username).await?.ok_or_else(|| {
        ApiError::new(ErrorCode::UserNotFound, format!("no user {username:?}")).into()
    })
}

async fn flag(store: &Store, username: &str, flag: UserFlag, on: bool) -> Result<(), CliError> {
    let user = by_name(store, username).await?;
    let view = accounts::set_flag(store, user.id, flag, on).await?;
    println!("{}", line(&view));
    Ok(())
}

/// The first line of stdin, without its line ending.
fn read_password() -> Result<String, CliError> {
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    let password = line.trim_end_matches(['\r', '\n']).to_owned();
    if password.is_empty() {
        return Err(CliError::Usage(
            "give the password on standard input, e.g. printf '%s\\n' \"$PASSWORD\" | chat-server admin …".into(),
        ));
    }
    Ok(password)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("7d"), Ok(7 * 86_400));
        assert_eq!(parse_duration("90m"), Ok(5400));
        assert_eq!(parse_duration("3600"), Ok(3600));
        assert!(parse_duration("1w").is_err());
        assert!(parse_duration("x").is_err());
    }
}
