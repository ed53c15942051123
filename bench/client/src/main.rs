//! `chat-client-bench`: the client benchmark (see the library docs). `bench/client/run.sh`
//! builds everything in release and runs `chat-client-bench run`.

use chat_client_bench::fill::{self, Account, Fill};
use chat_client_bench::launch::{self, DirectOptions, Expect, Home, Xvfb};
use chat_client_bench::report::{self, AppRun, RunData};
use chat_client_bench::x11::X;
use chat_client_bench::{search, Error, Result};
use clap::{Parser, Subcommand};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// Set on the re-run inside the private D-Bus session.
const INNER_ENV: &str = "CHAT_CLIENT_BENCH_INNER";
/// The chat app's identifier (tauri.conf.json): its data dir.
const CHAT_ID: &str = "org.selfchat.desktop";

#[derive(Parser)]
#[command(
    about = "Client benchmark: the desktop app against an empty Tauri window, and local search"
)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Everything: windows (floor, then the app at each size) and search; writes the report.
    Run(RunArgs),
    /// The IPC commands a click on a room makes, timed in-process (no window), offline.
    Ipc {
        #[arg(long, value_delimiter = ',', default_value = "0,10000,100000")]
        sizes: Vec<u64>,
        #[arg(long, default_value_t = 50)]
        rooms: u32,
        #[arg(long, default_value_t = 20)]
        runs: usize,
    },
    /// Local search only (no window): fills caches of the given sizes and measures queries.
    Search {
        #[arg(long, value_delimiter = ',', default_value = "100000,1000000")]
        sizes: Vec<u64>,
        #[arg(long, default_value_t = 50)]
        rooms: u32,
        /// Queries of each kind.
        #[arg(long, default_value_t = 100)]
        queries: usize,
        /// Keep the caches in this directory (`search-N.sqlite3`) and reuse them when there.
        #[arg(long)]
        keep: Option<PathBuf>,
        /// Print this many of the slowest queries of each size to stderr.
        #[arg(long, default_value_t = 0)]
        slowest: usize,
    },
    /// The cache's one-time upgrade after an update, against the one-step migration it
    /// replaced (no window): prints one JSON line per size.
    Upgrade {
        #[arg(long, value_delimiter = ',', default_value = "100000")]
        sizes: Vec<u64>,
        #[arg(long, default_value_t = 50)]
        rooms: u32,
    },
}

#[derive(Parser, Clone)]
struct RunArgs {
    /// The desktop app, release build with the UI embedded (`custom-protocol`).
    #[arg(long)]
    app: PathBuf,
    /// The empty Tauri window (`bench/tauri-floor`), same build.
    #[arg(long)]
    floor: PathBuf,
    /// Cached messages per app run.
    #[arg(long, value_delimiter = ',', default_value = "0,10000,100000")]
    sizes: Vec<u64>,
    #[arg(long, default_value_t = 50)]
    rooms: u32,
    /// Cache sizes for the search measurement (empty: skip).
    #[arg(long, value_delimiter = ',', default_value = "100000,1000000")]
    search_sizes: Vec<u64>,
    /// Search queries of each kind.
    #[arg(long, default_value_t = 100)]
    queries: usize,
    /// Idle CPU is measured over this many seconds (0: skip), for the floor and the largest
    /// size.
    #[arg(long, default_value_t = 60)]
    idle_secs: u64,
    /// Seconds after the first frame before memory is read.
    #[arg(long, default_value_t = 8)]
    settle_secs: u64,
    /// Where client-bench.json and bench-client.md go (and BENCHMARKS.md, if there, gets the
    /// section).
    #[arg(long, default_value = "docs")]
    out: PathBuf,
    /// Where caches and app homes go (a temp dir inside it; default: the system's).
    #[arg(long)]
    work: Option<PathBuf>,
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let cli = Cli::parse();
    let result = match cli.command {
        Cmd::Run(args) => {
            if std::env::var_os(INNER_ENV).is_some() {
                run(&args).await
            } else {
                rerun_in_private_session()
            }
        }
        Cmd::Search {
            sizes,
            rooms,
            queries,
            keep,
            slowest,
        } => search_only(&sizes, rooms, queries, keep.as_deref(), slowest).await,
        Cmd::Ipc { sizes, rooms, runs } => ipc_only(&sizes, rooms, runs).await,
        Cmd::Upgrade { sizes, rooms } => upgrade_only(&sizes, rooms).await,
    };
    if let Err(e) = result {
        eprintln!("chat-client-bench: {e}");
        std::process::exit(1);
    }
}

fn note(text: &str) {
    eprintln!("[client-bench] {text}");
}

async fn upgrade_only(sizes: &[u64], rooms: u32) -> Result<()> {
    let dir = tempfile::tempdir()?;
    for &n in sizes {
        note(&format!("upgrade: {n} messages"));
        let result = chat_client_bench::upgrade::run(dir.path(), n, rooms).await?;
        println!(
            "{}",
            serde_json::to_string(&result).map_err(|e| Error::Invalid(e.to_string()))?
        );
    }
    Ok(())
}

async fn search_only(
    sizes: &[u64],
    rooms: u32,
    queries: usize,
    keep: Option<&Path>,
    slowest: usize,
) -> Result<()> {
    let temp = tempfile::tempdir()?;
    let dir = match keep {
        Some(dir) => {
            std::fs::create_dir_all(dir)?;
            dir
        }
        None => temp.path(),
    };
    let opts = search::Options {
        keep: keep.is_some(),
        slowest,
    };
    for &n in sizes {
        let r = search::run(dir, rooms, n, queries, opts).await?;
        println!(
            "{}",
            serde_json::to_string(&r).map_err(|e| Error::Invalid(e.to_string()))?
        );
    }
    Ok(())
}

async fn ipc_only(sizes: &[u64], rooms: u32, runs: usize) -> Result<()> {
    let dir = tempfile::tempdir()?;
    for &n in sizes {
        for t in chat_client_bench::ipc::run(dir.path(), rooms, n, runs).await? {
            println!(
                "{n:>7} messages  {:<22} p50 {:>8.3} ms  max {:>8.3} ms{}",
                t.command,
                t.p50_ms,
                t.max_ms,
                t.error
                    .map(|e| format!("  (error: {e})"))
                    .unwrap_or_default()
            );
        }
    }
    Ok(())
}

/// Runs this same command again inside `dbus-run-session` with a throwaway, unlocked
/// gnome-keyring (its files in a temp dir): the app keeps its token in the Secret Service, and
/// the user's own session and keyrings are never touched.
fn rerun_in_private_session() -> Result<()> {
    let exe = std::env::current_exe()?;
    let keyring = tempfile::tempdir()?;
    let script = "printf %s bench-keyring \
                  | gnome-keyring-daemon --unlock --components=secrets >/dev/null \
                  && exec \"$@\"";
    let status = Command::new("dbus-run-session")
        .args(["--", "sh", "-c", script, "sh"])
        .arg(exe)
        .args(std::env::args_os().skip(1))
        .env(INNER_ENV, "1")
        .env("XDG_DATA_HOME", keyring.path())
        .env_remove("DBUS_SESSION_BUS_ADDRESS")
        .status()
        .map_err(|e| Error::Process(format!("cannot run dbus-run-session: {e}")))?;
    if status.success() {
        Ok(())
    } else {
        Err(Error::Process(format!("the run failed ({status})")))
    }
}

fn shell(cmd: &str) -> String {
    Command::new("sh")
        .args(["-c", cmd])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default()
}

/// One app in one configuration: a cold and a warm direct launch, then a driven one.
#[allow(clippy::too_many_arguments)]
async fn measure_app(
    x: &X,
    display: &str,
    bin: &Path,
    home: &Home,
    logs: &Path,
    label: &str,
    expect: &Expect,
    opts: DirectOptions,
    run: &mut AppRun,
) {
    let log = logs.join(format!("{label}.log"));
    let quiet = DirectOptions {
        idle: Duration::ZERO,
        ..opts
    };
    match launch::direct(x, display, bin, home, &log, opts).await {
        Ok(d) => {
            note(&format!(
                "{label} cold: first frame {:.2} s, PSS {:.1} MiB, idle {:?}/{:?}",
                d.first_frame_s,
                d.pss_mib,
                (d.idle_visible, d.idle_focused),
                d.idle_hidden
            ));
            run.cold = Some(d);
        }
        Err(e) => run.errors.push(format!("{label}, cold launch: {e}")),
    }
    match launch::direct(x, display, bin, home, &log, quiet).await {
        Ok(d) => {
            note(&format!(
                "{label} warm: first frame {:.2} s, PSS {:.1} MiB",
                d.first_frame_s, d.pss_mib
            ));
            run.warm = Some(d);
        }
        Err(e) => run.errors.push(format!("{label}, warm launch: {e}")),
    }
    let driver_log = logs.join(format!("{label}-driver.log"));
    match launch::driven(x, display, bin, home, &driver_log, expect).await {
        Ok(d) => {
            note(&format!("{label} driven: {d:?}"));
            run.driven = Some(d);
        }
        Err(e) => run.errors.push(format!("{label}, driven launch: {e}")),
    }
    for e in &run.errors {
        note(&format!("FAILED: {e}"));
    }
}

async fn run(args: &RunArgs) -> Result<()> {
    for bin in [&args.app, &args.floor] {
        if !bin.is_file() {
            return Err(Error::Invalid(format!("{} is not a file", bin.display())));
        }
    }
    let app = std::fs::canonicalize(&args.app)?;
    let floor = std::fs::canonicalize(&args.floor)?;
    let work = match &args.work {
        Some(dir) => tempfile::tempdir_in(dir)?,
        None => tempfile::tempdir()?,
    };
    // The apps' and drivers' logs: beside the system's temp files, not in the report.
    let logs = std::env::temp_dir().join("chat-client-bench-logs");
    std::fs::create_dir_all(&logs)?;
    let mut data = RunData {
        date: shell("date -u '+%Y-%m-%d %H:%M UTC'"),
        commit: shell("git rev-parse --short HEAD"),
        machine: format!(
            "{}, {} cores ({}), load average at start {}",
            shell(". /etc/os-release && echo $PRETTY_NAME"),
            shell("nproc"),
            shell("sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1"),
            shell("cut -d' ' -f1-3 /proc/loadavg")
        ),
        webkit: shell("pkg-config --modversion webkit2gtk-4.1"),
        command: format!(
            "chat-client-bench {}",
            std::env::args().skip(1).collect::<Vec<_>>().join(" ")
        ),
        idle_s: args.idle_secs as f64,
        ..RunData::default()
    };
    let xvfb = Xvfb::start().await?;
    let x = X::connect(&xvfb.display)?;
    note(&format!(
        "Xvfb on {}; work dir {}; logs in {}",
        xvfb.display,
        work.path().display(),
        logs.display()
    ));
    let idle = Duration::from_secs(args.idle_secs);
    let settle = Duration::from_secs(args.settle_secs);

    // The floor.
    let mut floor_run = AppRun {
        app: "floor".into(),
        ..AppRun::default()
    };
    let home = Home::new(work.path().join("floor"))?;
    let opts = DirectOptions {
        settle,
        idle,
        has_tray: false,
    };
    measure_app(
        &x,
        &xvfb.display,
        &floor,
        &home,
        &logs,
        "floor",
        &Expect::Heading,
        opts,
        &mut floor_run,
    )
    .await;
    data.floor = Some(floor_run);

    // The app at each size, offline: a server address where nothing listens.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let account = Account::new(&format!("http://127.0.0.1:{closed}"));
    {
        let account = account.clone();
        tokio::task::spawn_blocking(move || {
            fill::save_token(&chat_desktop::credentials::Keychain::default(), &account)
        })
        .await
        .map_err(|e| Error::Process(format!("keychain task: {e}")))??;
    }
    let largest = args.sizes.iter().copied().max().unwrap_or(0);
    for &n in &args.sizes {
        let label = format!("chat-{n}");
        let mut run = AppRun {
            app: "chat".into(),
            messages: n,
            rooms: args.rooms,
            ..AppRun::default()
        };
        let home = Home::new(work.path().join(&label))?;
        let dir = home.app_data(CHAT_ID);
        std::fs::create_dir_all(&dir)?;
        let f = Fill {
            rooms: args.rooms,
            messages: n,
            seed: 1,
        };
        let t = std::time::Instant::now();
        let written = fill::create(
            &dir.join("cache.sqlite3"),
            chat_desktop::cache::DEFAULT_KEEP_PER_ROOM,
            &f,
            Some(&account),
        )
        .await?;
        note(&format!(
            "{label}: cache of {written} messages written in {:.1} s",
            t.elapsed().as_secs_f64()
        ));
        // The app reopens the room active last; the click goes to the one active before it.
        let (reopened, before) = fill::newest_two(&f);
        let (open, newest) = match before {
            Some((room, body)) => (fill::room_name(room), Some(body)),
            None => (fill::room_name(args.rooms), None),
        };
        let expect = Expect::Chat {
            rooms: args.rooms as usize,
            reopened: reopened.map(|(_, body)| body),
            open,
            newest,
        };
        let opts = DirectOptions {
            settle,
            idle: if n == largest { idle } else { Duration::ZERO },
            has_tray: true,
        };
        measure_app(
            &x,
            &xvfb.display,
            &app,
            &home,
            &logs,
            &label,
            &expect,
            opts,
            &mut run,
        )
        .await;
        data.chat.push(run);
    }
    drop(x);
    drop(xvfb);

    for &n in &args.search_sizes {
        note(&format!("search: filling {n} messages"));
        match search::run(
            work.path(),
            args.rooms,
            n,
            args.queries,
            search::Options::default(),
        )
        .await
        {
            Ok(r) => {
                note(&format!(
                    "search at {}: p50 {:.2} ms, p99 {:.2} ms ({:.0} messages/s fill)",
                    r.messages, r.all.p50_ms, r.all.p99_ms, r.fill_per_s
                ));
                data.search.push(r);
            }
            Err(e) => data.errors.push(format!("search at {n}: {e}")),
        }
    }
    report::write(&data, &args.out)?;
    note(&format!(
        "wrote {}/bench-client.md and client-bench.json",
        args.out.display()
    ));
    print!("{}", report::markdown(&data));
    Ok(())
}
