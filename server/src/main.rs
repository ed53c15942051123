//! `chat-server`: loads the configuration, sets up logging, serves until SIGTERM or Ctrl-C.
//! SIGHUP re-reads the TLS certificate and key (`tls_cert`, `tls_key`).

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
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .init();
    let args = Args::parse();
    let config = match Config::load(args.config.as_deref()) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("chat-server: {e}");
            return ExitCode::from(2);
        }
    };
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
    signals.wait(&server).await;
    server.shutdown().await;
    ExitCode::SUCCESS
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
