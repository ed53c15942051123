//! Idle connections held by generator worker processes.
//!
//! One process may hold at most as many sockets as its open-file limit allows (20,000 on the
//! machine this was written on, and `prlimit` cannot raise it without `CAP_SYS_RESOURCE`). To
//! open 50k and more idle connections, the `idle` scenario spreads its client sockets over
//! several `chat-bench idle-worker` processes, each holding at most
//! [`MAX_PER_WORKER`] of them from its own 127.0.0.x source addresses.
//!
//! The parent talks to each worker over its stdin and stdout, one JSON object per line:
//! [`Command`] in, [`Reply`] out. A worker exits, closing all its sockets, when its stdin closes
//! (the parent exits or drops its [`Pool`]); the parent also kills it on drop.

use crate::wire::Client;
use crate::{Error, Result, Target};
use futures_util::stream::{self, StreamExt};
use serde::{Deserialize, Serialize};
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout};

/// Sockets one worker process holds at most: well under a 20,000 open-file limit.
pub const MAX_PER_WORKER: usize = 15_000;
/// Handshakes in flight in one worker while it opens connections.
const CONNECT_CONCURRENCY: usize = 64;
/// How long a worker may take to start and to answer a status request.
const REPLY_TIMEOUT: Duration = Duration::from_secs(30);

/// One group of connections to open: `count` sockets to `addr`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Batch {
    pub addr: SocketAddr,
    pub count: usize,
}

/// What the parent asks a worker.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "cmd", rename_all = "snake_case")]
pub enum Command {
    /// Open the batches' connections, authenticating with `tokens` in turn (starting at
    /// `token_from`), from `source`.
    Open {
        source: IpAddr,
        tokens: Vec<String>,
        token_from: usize,
        batches: Vec<Batch>,
    },
    /// How many connections are open now.
    Status,
}

/// A worker's answer to one [`Command`].
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Reply {
    /// Connections opened by this command.
    pub opened: u64,
    /// Connections that failed to open in this command.
    pub errors: u64,
    pub first_error: Option<String>,
    /// Connections of this worker open now (opened and not closed since).
    pub open: u64,
}

/// Runs a worker: reads commands from stdin until it closes, answers on stdout.
pub async fn serve(target: Target) -> Result<()> {
    let open = Arc::new(AtomicU64::new(0));
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    let mut out = tokio::io::stdout();
    let mut tasks = Vec::new();
    while let Some(line) = lines.next_line().await? {
        let command: Command = serde_json::from_str(&line)?;
        let mut reply = Reply::default();
        if let Command::Open {
            source,
            tokens,
            token_from,
            batches,
        } = command
        {
            if tokens.is_empty() {
                return Err(Error::Setup("idle-worker: no tokens".into()));
            }
            let jobs: Vec<(SocketAddr, String)> = batches
                .iter()
                .flat_map(|b| std::iter::repeat_n(b.addr, b.count))
                .enumerate()
                .map(|(i, addr)| (addr, tokens[(token_from + i) % tokens.len()].clone()))
                .collect();
            let mut opening =
                stream::iter(jobs)
                    .map(|(addr, token)| async move {
                        Client::connect(target, addr, source, &token).await
                    })
                    .buffer_unordered(CONNECT_CONCURRENCY);
            while let Some(opened) = opening.next().await {
                match opened {
                    Ok(mut client) => {
                        reply.opened += 1;
                        open.fetch_add(1, Ordering::SeqCst);
                        let open = open.clone();
                        // Reading keeps the socket alive: tungstenite answers pings, the client
                        // answers Engine.IO heartbeats.
                        tasks.push(tokio::spawn(async move {
                            while client.next().await.is_ok() {}
                            open.fetch_sub(1, Ordering::SeqCst);
                        }));
                    }
                    Err(e) => {
                        reply.errors += 1;
                        if reply.first_error.is_none() {
                            reply.first_error = Some(e.to_string());
                        }
                    }
                }
            }
        }
        reply.open = open.load(Ordering::SeqCst);
        let mut text = serde_json::to_string(&reply)?;
        text.push('\n');
        out.write_all(text.as_bytes()).await?;
        out.flush().await?;
    }
    for task in &tasks {
        task.abort();
    }
    Ok(())
}

/// One worker process seen from the parent.
struct Worker {
    child: Child,
    stdin: ChildStdin,
    stdout: Lines<BufReader<ChildStdout>>,
    /// First 127.0.0.x source number of this worker (see [`crate::load::source_ip`]).
    source_base: usize,
    /// Connections this worker has been asked to open so far.
    assigned: usize,
}

impl Worker {
    async fn ask(&mut self, command: &Command, timeout: Duration) -> Result<Reply> {
        let mut text = serde_json::to_string(command)?;
        text.push('\n');
        let exchange = async {
            self.stdin.write_all(text.as_bytes()).await?;
            self.stdin.flush().await?;
            match self.stdout.next_line().await? {
                Some(line) => Ok(serde_json::from_str::<Reply>(&line)?),
                None => Err(Error::Process(format!(
                    "idle-worker {} exited ({:?})",
                    self.child.id().unwrap_or(0),
                    self.child.try_wait().ok().flatten()
                ))),
            }
        };
        tokio::time::timeout(timeout, exchange)
            .await
            .map_err(|_| Error::Timeout {
                what: "idle-worker reply".into(),
            })?
    }
}

/// Generator worker processes holding idle connections; killed on drop.
pub struct Pool {
    workers: Vec<Worker>,
    tokens: Vec<String>,
}

/// Totals over all workers after a [`Pool::open`].
#[derive(Debug, Clone, Default)]
pub struct Opened {
    pub errors: u64,
    pub first_error: Option<String>,
    pub open: u64,
}

impl Pool {
    /// Starts `workers` processes of `bin` (`chat-bench idle-worker --target …`).
    pub async fn start(
        bin: &Path,
        target: Target,
        workers: usize,
        tokens: Vec<String>,
    ) -> Result<Pool> {
        let target_arg = match target {
            Target::Ours => "ours",
            Target::Socketio => "socketio",
            Target::Floor => "floor",
        };
        let mut pool = Pool {
            workers: Vec::new(),
            tokens,
        };
        for _ in 0..workers.max(1) {
            let mut child = tokio::process::Command::new(bin)
                .args(["idle-worker", "--target", target_arg])
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit())
                .kill_on_drop(true)
                .spawn()
                .map_err(|e| {
                    Error::Process(format!("cannot start {} idle-worker: {e}", bin.display()))
                })?;
            let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
                return Err(Error::Process("idle-worker without pipes".into()));
            };
            pool.workers.push(Worker {
                child,
                stdin,
                stdout: BufReader::new(stdout).lines(),
                source_base: crate::load::take_sources(sources_per_worker()),
                assigned: 0,
            });
        }
        // Every worker answers before the first connection is opened.
        for w in &mut pool.workers {
            w.ask(&Command::Status, REPLY_TIMEOUT).await?;
        }
        Ok(pool)
    }

    pub fn len(&self) -> usize {
        self.workers.len()
    }

    pub fn is_empty(&self) -> bool {
        self.workers.is_empty()
    }

    /// Opens `per_worker[w]` batches on worker `w`, all workers at once.
    pub async fn open(&mut self, per_worker: Vec<Vec<Batch>>) -> Result<Opened> {
        let tokens = &self.tokens;
        let asks = self.workers.iter_mut().zip(per_worker).map(|(w, batches)| {
            let count: usize = batches.iter().map(|b| b.count).sum();
            // One source address per CONNS_PER_SOURCE connections of this worker.
            let source =
                crate::load::source_ip(w.source_base + w.assigned / crate::load::CONNS_PER_SOURCE);
            let command = Command::Open {
                source,
                tokens: tokens.clone(),
                token_from: w.assigned,
                batches,
            };
            w.assigned += count;
            // Each handshake is bounded by the client's own timeout; this only catches a worker
            // that hangs, so it is generous (a busy 2-core machine may manage only a few
            // hundred Socket.IO handshakes per second).
            let timeout = Duration::from_secs(120) + Duration::from_millis(100 * count as u64);
            async move { w.ask(&command, timeout).await }
        });
        let replies = futures_util::future::join_all(asks).await;
        let mut total = Opened::default();
        for reply in replies {
            let reply = reply?;
            total.errors += reply.errors;
            if total.first_error.is_none() {
                total.first_error = reply.first_error;
            }
            total.open += reply.open;
        }
        Ok(total)
    }

    /// Connections open now over all workers.
    pub async fn open_now(&mut self) -> Result<u64> {
        let mut open = 0;
        for w in &mut self.workers {
            open += w.ask(&Command::Status, REPLY_TIMEOUT).await?.open;
        }
        Ok(open)
    }

    /// Closes every worker's stdin and waits (bounded) for it to exit, closing its sockets.
    pub async fn close(self) {
        for mut w in self.workers {
            drop(w.stdin);
            if tokio::time::timeout(Duration::from_secs(10), w.child.wait())
                .await
                .is_err()
            {
                let _ = w.child.kill().await;
            }
        }
    }
}

/// Source addresses reserved per worker: enough for [`MAX_PER_WORKER`] connections.
fn sources_per_worker() -> usize {
    MAX_PER_WORKER.div_ceil(crate::load::CONNS_PER_SOURCE)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_round_trip_as_json_lines() {
        let c = Command::Open {
            source: "127.0.0.9".parse().unwrap(),
            tokens: vec!["t".into()],
            token_from: 3,
            batches: vec![Batch {
                addr: "127.0.0.1:80".parse().unwrap(),
                count: 2,
            }],
        };
        let text = serde_json::to_string(&c).unwrap();
        assert!(!text.contains('\n'));
        assert!(matches!(
            serde_json::from_str::<Command>(&text).unwrap(),
            Command::Open { token_from: 3, .. }
        ));
        let s = serde_json::to_string(&Command::Status).unwrap();
        assert_eq!(s, r#"{"cmd":"status"}"#);
    }
}
