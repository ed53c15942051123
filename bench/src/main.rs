//! `chat-bench`: runs one scenario against one or both targets, or the whole comparison
//! (`report`), starting the processes it measures itself.

use chat_bench::files_report;
use chat_bench::procs::{self, Stack, StackOptions};
use chat_bench::report::{self, ReportOptions, Scale};
use chat_bench::scenario::{self, FanoutParams, HistoryParams, IdleParams, TwoNodeParams};
use chat_bench::{Result, Target};
use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

/// Load benchmark of the chat server against a Node.js Socket.IO + Redis peer. Every command
/// starts its own Redis and server processes on 127.0.0.1 and stops them at the end.
#[derive(Parser)]
#[command(version)]
struct Args {
    /// The `chat-server` binary (default: next to this executable, i.e. target/release).
    #[arg(long, global = true)]
    server_bin: Option<PathBuf>,
    /// The Socket.IO peer's folder (default: bench/peers/socketio).
    #[arg(long, global = true)]
    peer_dir: Option<PathBuf>,
    /// Also write the results as JSON to this file.
    #[arg(long, global = true)]
    json: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum Which {
    Ours,
    Socketio,
    /// The bare broadcast server (fanout only).
    Floor,
    /// Ours and the Socket.IO peer.
    Both,
    /// Ours, the peer and the floor (fanout).
    All,
}

impl Which {
    /// The targets of a scenario other than fanout: the floor only runs fanout.
    fn servers(self) -> Result<Vec<Target>> {
        match self {
            Which::Floor => Err(chat_bench::Error::Setup(
                "the floor target runs the fanout scenario only".into(),
            )),
            Which::All => Ok(Which::Both.targets()),
            w => Ok(w.targets()),
        }
    }

    fn targets(self) -> Vec<Target> {
        match self {
            Which::Ours => vec![Target::Ours],
            Which::Socketio => vec![Target::Socketio],
            Which::Floor => vec![Target::Floor],
            Which::Both => vec![Target::Ours, Target::Socketio],
            Which::All => vec![Target::Ours, Target::Socketio, Target::Floor],
        }
    }
}

#[derive(Subcommand)]
enum Command {
    /// Ramp to N idle authenticated connections; server RSS per connection.
    Idle {
        #[arg(long, value_enum, default_value = "both")]
        target: Which,
        #[arg(long)]
        connections: Option<usize>,
        #[arg(long)]
        rooms: Option<usize>,
        /// Server nodes holding the sockets (default: enough for at most 17,000 each, the
        /// open-file limit here being 20,000 per process). One more node registers the users.
        #[arg(long)]
        nodes: Option<usize>,
        /// Client sockets per generator worker process (0: all in this process).
        #[arg(long)]
        per_worker: Option<usize>,
    },
    /// Internal: a generator worker holding idle connections for `idle` (commands on stdin).
    #[command(hide = true)]
    IdleWorker {
        #[arg(long, value_enum)]
        target: Target,
    },
    /// Internal: the floor target, a bare broadcast server (see `floor.rs`).
    #[command(hide = true)]
    FloorServer {
        #[arg(long)]
        listen: std::net::SocketAddr,
    },
    /// R rooms × M members, open-loop senders at increasing rates; `--target all` adds the
    /// floor (a bare broadcast server) and prints ours / floor.
    Fanout {
        #[arg(long, value_enum, default_value = "both")]
        target: Which,
        #[arg(long)]
        rooms: Option<usize>,
        #[arg(long)]
        members: Option<usize>,
        /// Offered messages per second, comma-separated, tried in order.
        #[arg(long, value_delimiter = ',')]
        rates: Option<Vec<f64>>,
        #[arg(long)]
        step_secs: Option<f64>,
        #[arg(long)]
        warmup_secs: Option<f64>,
        #[arg(long)]
        users_per_room: Option<usize>,
        /// Run every step even after one failed.
        #[arg(long)]
        no_stop: bool,
    },
    /// Senders on node 0, receivers on node 1, one Redis.
    TwoNode {
        #[arg(long, value_enum, default_value = "both")]
        target: Which,
        #[arg(long)]
        rooms: Option<usize>,
        /// Room sizes to compare, comma-separated.
        #[arg(long, value_delimiter = ',')]
        members: Option<Vec<usize>>,
        #[arg(long)]
        deliveries_per_sec: Option<f64>,
    },
    /// Fill one room, then page back through all of it.
    History {
        #[arg(long, value_enum, default_value = "both")]
        target: Which,
        #[arg(long)]
        messages: Option<u64>,
        #[arg(long)]
        pagers: Option<usize>,
    },
    /// Attachments: N users upload a file each at once, send it in a message, and another
    /// member downloads each at once (compared byte for byte); throughput, server memory, and
    /// the same files written, read and copied on this machine without a server.
    Files {
        #[arg(long, value_enum, default_value = "both")]
        target: Which,
        /// Concurrent uploads (one user each).
        #[arg(long)]
        uploads: Option<usize>,
        /// File sizes in MiB, comma-separated; each size runs on fresh processes.
        #[arg(long, value_delimiter = ',')]
        sizes_mib: Option<Vec<u64>>,
        /// Repetitions of every size (the median is reported).
        #[arg(long, default_value_t = 1)]
        runs: usize,
        /// Merge the result into the report in this folder (its BENCHMARKS.json) and render
        /// BENCHMARKS.md again; the other sections keep their numbers.
        #[arg(long)]
        merge: Option<PathBuf>,
    },
    /// Rewrites BENCHMARKS.md and the plots from a BENCHMARKS.json (no measuring).
    Render {
        /// The JSON a `report` wrote.
        #[arg(long, default_value = "docs/BENCHMARKS.json")]
        from: PathBuf,
        #[arg(long, default_value = "docs")]
        out: PathBuf,
    },
    /// Every scenario on both targets, repeated; writes docs/BENCHMARKS.md and its plots.
    Report {
        /// `small` fits a few minutes on a shared 2-core machine; `full` is the sizes.
        #[arg(long, value_enum, default_value = "small")]
        scale: Scale,
        /// Repetitions of every configuration (the median is reported).
        #[arg(long, default_value_t = 3)]
        runs: usize,
        /// Where BENCHMARKS.md and the SVG plots go.
        #[arg(long, default_value = "docs")]
        out: PathBuf,
    },
}

fn main() -> ExitCode {
    let args = Args::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("chat-bench: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("chat-bench: {e}");
            ExitCode::FAILURE
        }
    }
}

fn write_json(path: &Option<PathBuf>, value: &serde_json::Value) -> Result<()> {
    if let Some(path) = path {
        std::fs::write(path, serde_json::to_string_pretty(value)?)?;
        eprintln!("wrote {}", path.display());
    }
    Ok(())
}

async fn run(args: Args) -> Result<()> {
    let limit = procs::raise_fd_limit(1 << 20);
    let mut opts = StackOptions::defaults();
    if let Some(bin) = args.server_bin {
        opts.server_bin = bin;
    }
    if let Some(dir) = args.peer_dir {
        opts.peer_dir = dir;
    }
    match args.command {
        Command::IdleWorker { target } => chat_bench::worker::serve(target).await,
        Command::FloorServer { listen } => chat_bench::floor::serve(listen).await,
        Command::Idle {
            target,
            connections,
            rooms,
            nodes,
            per_worker,
        } => {
            let mut p = IdleParams::sized(connections.unwrap_or(IdleParams::preset().connections));
            p.rooms = rooms.unwrap_or(p.rooms);
            p.nodes = nodes.unwrap_or(p.nodes).max(1);
            p.per_worker = per_worker.unwrap_or(p.per_worker);
            let per_node = p.connections.div_ceil(p.nodes) as u64;
            let per_process = if p.per_worker == 0 {
                p.connections as u64
            } else {
                p.per_worker as u64
            };
            if per_node + 1000 > limit || per_process + 1000 > limit {
                eprintln!(
                    "warning: open-file limit {limit} is low for {per_node} sockets per server \
                     node and {per_process} per generator process"
                );
            }
            let mut results = Vec::new();
            for t in target.servers()? {
                // Nodes 0..nodes hold the sockets and are measured; the last one registers the
                // users.
                let stack = Stack::start(t, p.nodes + 1, &opts).await?;
                let r = scenario::idle(&stack.deployment(), &p).await?;
                println!("{}", report::idle_table(std::slice::from_ref(&r)));
                results.push(r);
            }
            write_json(&args.json, &serde_json::to_value(&results)?)
        }
        Command::Fanout {
            target,
            rooms,
            members,
            rates,
            step_secs,
            warmup_secs,
            users_per_room,
            no_stop,
        } => {
            let mut p = FanoutParams::preset();
            p.rooms = rooms.unwrap_or(p.rooms);
            p.members = members.unwrap_or(p.members);
            p.rates = rates.unwrap_or(p.rates);
            p.step_secs = step_secs.unwrap_or(p.step_secs);
            p.warmup_secs = warmup_secs.unwrap_or(p.warmup_secs);
            p.users_per_room = users_per_room.unwrap_or(p.users_per_room);
            p.stop_on_fail = !no_stop;
            let mut results = Vec::new();
            for t in target.targets() {
                let stack = Stack::start(t, 1, &opts).await?;
                let r = scenario::fanout(&stack.deployment(), &p).await?;
                println!("{}", report::steps_table(t, &r.steps));
                results.push(r);
            }
            if let Some(cmp) = report::floor_comparison_table(&results) {
                println!("{cmp}");
            }
            write_json(&args.json, &serde_json::to_value(&results)?)
        }
        Command::TwoNode {
            target,
            rooms,
            members,
            deliveries_per_sec,
        } => {
            let mut p = TwoNodeParams::preset();
            p.rooms = rooms.unwrap_or(p.rooms);
            p.members = members.unwrap_or(p.members);
            p.deliveries_per_sec = deliveries_per_sec.unwrap_or(p.deliveries_per_sec);
            let mut results = Vec::new();
            for t in target.servers()? {
                let stack = Stack::start(t, 2, &opts).await?;
                let r = scenario::two_node(&stack.deployment(), &p).await?;
                let steps: Vec<_> = r.runs.iter().map(|run| run.step.clone()).collect();
                println!("{}", report::steps_table(t, &steps));
                results.push(r);
            }
            write_json(&args.json, &serde_json::to_value(&results)?)
        }
        Command::History {
            target,
            messages,
            pagers,
        } => {
            let mut p = HistoryParams::preset();
            p.messages = messages.unwrap_or(p.messages);
            p.pagers = pagers.unwrap_or(p.pagers);
            opts.history_keep = opts.history_keep.max(p.messages + 1000);
            let mut results = Vec::new();
            for t in target.servers()? {
                let stack = Stack::start(t, 1, &opts).await?;
                let r = scenario::history(&stack.deployment(), &p).await?;
                println!("{}", report::history_table(std::slice::from_ref(&r)));
                results.push(r);
            }
            write_json(&args.json, &serde_json::to_value(&results)?)
        }
        Command::Files {
            target,
            uploads,
            sizes_mib,
            runs,
            merge,
        } => {
            let mut p = chat_bench::files::FilesParams::preset();
            p.uploads = uploads.unwrap_or(p.uploads).max(1);
            if let Some(sizes) = sizes_mib {
                p.sizes = sizes.into_iter().map(|m| m << 20).collect();
            }
            let targets = target.servers()?;
            if targets.contains(&Target::Socketio) {
                procs::ensure_peer_installed(&opts.peer_dir)?;
            }
            let r = files_report::measure(&opts, &p, &targets, runs.max(1), true).await;
            let mut md = String::new();
            files_report::section(&mut md, &r);
            println!("{md}");
            write_json(&args.json, &serde_json::to_value(&r)?)?;
            let failed = r.failures.len();
            if let Some(out) = merge {
                files_report::merge(r, &out)?;
            }
            if failed > 0 {
                return Err(chat_bench::Error::Setup(format!(
                    "{failed} files runs failed"
                )));
            }
            Ok(())
        }
        Command::Render { from, out } => {
            let data: report::ReportData = serde_json::from_str(&std::fs::read_to_string(from)?)?;
            report::write_all(&data, &out)
        }
        Command::Report { scale, runs, out } => {
            let ro = ReportOptions {
                scale,
                runs: runs.max(1),
                out,
                stack: opts,
                fd_limit: limit,
            };
            report::run(&ro).await
        }
    }
}
