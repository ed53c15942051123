//! `chat-server`: loads the configuration, sets up logging, serves until SIGTERM or Ctrl-C.
//! SIGHUP re-reads the TLS certificate and key (`tls_cert`, `tls_key`).

use chat_server::config::LogFormat;
use chat_server::Config;
use clap::Parser;
use std::path::PathBuf;
use std::process::ExitCode;
use tracing_subscriber::EnvFilter;

/// Self-hostable chat server. Every setting can also come from CHAT_* environment variables
/// (see chat-server.example.toml); with no Redis URL it runs on the embedded store.
#[derive(Parser)]
#[command(version)]
struct Args {
    /// TOML configuration file.
    #[arg(long, short, env = "CHAT_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(clap::Subcommand)]
enum Command {
    /// Accounts and backups on the configured store (see README, "Administration").
    #[command(subcommand)]
    Admin(chat_server::cli::AdminCommand),
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    if let Some(Command::Admin(command)) = args.command {
        return chat_server::cli::main(args.config.as_deref(), command).await;
    }
    let config = match Config::load(args.config.as_deref()) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("chat-server: {e}");
            return ExitCode::from(2);
        }
    };
    init_logging(config.log_format);
    let signals = Signals::register();
    let server = match chat_server::start(config).await {
        Ok(server) => server,
        Err(e) => {
            eprintln!("chat-server: {e}");
            return ExitCode::FAILURE;
        }
    };
    println!(
        "chat-server listening on {}://{}",
        server.scheme(),
        server.addr()
    );
    // systemd (Type=notify): the listener is bound, the store answered and the bus is
    // subscribed. Outside systemd (no NOTIFY_SOCKET) this does nothing.
    notify(&[sd_notify::NotifyState::Ready]);
    signals.wait(&server).await;
    notify(&[sd_notify::NotifyState::Stopping]);
    server.shutdown().await;
    ExitCode::SUCCESS
}

fn init_logging(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => logs.init(),
        LogFormat::Json => logs.json().with_current_span(true).init(),
    }
}

fn notify(state: &[sd_notify::NotifyState]) {
    if let Err(e) = sd_notify::notify(state) {
        tracing::warn!(error = %e, "cannot notify systemd");
    }
}

fn reload(server: &chat_server::Running) {
    if server.scheme() != "https" {
        tracing::info!("SIGHUP: no TLS configured, nothing to reload");
        return;
    }
    match server.reload_tls() {
        Ok(()) => tracing::info!("SIGHUP: TLS certificate reloaded"),
        Err(e) => tracing::error!(
            error = %e,
            "SIGHUP: TLS certificate NOT reloaded; still serving the previous one"
        ),
    }
}

/// The signals the server reacts to, registered before it announces itself: a SIGHUP sent
/// right after the "listening" line must reload, not kill (SIGHUP's default action).
struct Signals {
    #[cfg(unix)]
    unix: Option<(tokio::signal::unix::Signal, tokio::signal::unix::Signal)>,
}

impl Signals {
    fn register() -> Self {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            let unix = match (
                signal(SignalKind::terminate()),
                signal(SignalKind::hangup()),
            ) {
                (Ok(term), Ok(hup)) => Some((term, hup)),
                _ => None,
            };
            Signals { unix }
        }
        #[cfg(not(unix))]
        Signals {}
    }

    /// Waits for SIGTERM or Ctrl-C; on SIGHUP reloads the TLS certificate and keeps waiting.
    async fn wait(self, server: &chat_server::Running) {
        let ctrl_c = tokio::signal::ctrl_c();
        #[cfg(unix)]
        {
            let Some((mut term, mut hup)) = self.unix else {
                let _ = ctrl_c.await;
                return;
            };
            tokio::pin!(ctrl_c);
            loop {
                tokio::select! {
                    _ = &mut ctrl_c => return,
                    _ = term.recv() => return,
                    _ = hup.recv() => reload(server),
                }
            }
        }
        #[cfg(not(unix))]
        {
            let _ = (self, server);
            let _ = ctrl_c.await;
        }
    }
}
