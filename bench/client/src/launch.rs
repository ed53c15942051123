//! Starting an app and measuring it: on the benchmark's own Xvfb, with a throwaway HOME and XDG
//! dirs, inside the D-Bus session the run started (its keyring holds the account's token).
//!
//! Two ways in, the same measurements of the screen and of `/proc` in both:
//! - [`direct`]: the binary started as a user would (no automation): time to the first frame,
//!   PSS over the process tree once it has settled, idle CPU (window shown, then hidden to the
//!   tray where the app has one);
//! - [`driven`]: started through `tauri-driver` + `WebKitWebDriver` so the page can be read:
//!   when the room list is drawn, and how long a click on the most recently active room takes
//!   to show its newest message (measured inside the page, clock of the page).
//!
//! Every child runs in a process group of its own and is ended with it (SIGTERM, then SIGKILL).

use crate::procs::{self, Proc};
use crate::x11::{Look, X};
use crate::{Error, Result};
use serde::Serialize;
use serde_json::json;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How often the screen is looked at while waiting for the first frame.
const LOOK_EVERY: Duration = Duration::from_millis(10);
/// An app that shows nothing within this failed to start.
const START_WAIT: Duration = Duration::from_secs(60);
/// Anything the page should show.
const PAGE_WAIT: Duration = Duration::from_secs(30);

/// A process group, ended on drop.
pub struct Group {
    child: Child,
    name: String,
}

impl Group {
    pub fn spawn(name: &str, mut command: Command) -> Result<Group> {
        std::os::unix::process::CommandExt::process_group(&mut command, 0);
        let child = command
            .stdin(Stdio::null())
            .spawn()
            .map_err(|e| Error::Process(format!("cannot start {name}: {e}")))?;
        Ok(Group {
            child,
            name: name.to_owned(),
        })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    fn check_alive(&mut self) -> Result<()> {
        match self.child.try_wait() {
            Ok(Some(status)) => Err(Error::Process(format!(
                "{} exited early ({status})",
                self.name
            ))),
            _ => Ok(()),
        }
    }

    fn signal(&self, signal: &str) {
        let _ = Command::new("kill")
            .args([signal, "--", &format!("-{}", self.child.id())])
            .stderr(Stdio::null())
            .status();
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        self.signal("-TERM");
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        // The group may outlive its leader (web processes); end all of it.
        self.signal("-KILL");
        let _ = self.child.wait();
    }
}

/// A private X server (`-displayfd`), ended on drop.
pub struct Xvfb {
    _group: Group,
    pub display: String,
    _dir: tempfile::TempDir,
}

impl Xvfb {
    pub async fn start() -> Result<Xvfb> {
        let dir = tempfile::tempdir()?;
        let fd_file = dir.path().join("display");
        let mut command = Command::new("sh");
        command
            .args([
                "-c",
                "exec Xvfb -displayfd 3 -screen 0 1280x800x24 -nolisten tcp 3>\"$0\"",
            ])
            .arg(&fd_file)
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let mut group = Group::spawn("Xvfb", command)?;
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let text = std::fs::read_to_string(&fd_file).unwrap_or_default();
            if text.ends_with('\n') && !text.trim().is_empty() {
                return Ok(Xvfb {
                    _group: group,
                    display: format!(":{}", text.trim()),
                    _dir: dir,
                });
            }
            group.check_alive()?;
            if Instant::now() > deadline {
                return Err(Error::Process("Xvfb did not start within 20 s".into()));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// Where an app keeps its files for one configuration: `HOME`, `XDG_*` under `dir`.
#[derive(Debug, Clone)]
pub struct Home {
    pub dir: PathBuf,
}

impl Home {
    pub fn new(dir: PathBuf) -> Result<Home> {
        for d in ["data", "config", "cache"] {
            std::fs::create_dir_all(dir.join(d))?;
        }
        Ok(Home { dir })
    }

    /// The app's data dir (Tauri's `app_data_dir` on Linux) for `identifier`.
    pub fn app_data(&self, identifier: &str) -> PathBuf {
        self.dir.join("data").join(identifier)
    }

    fn apply(&self, command: &mut Command, display: &str) {
        command
            .env("DISPLAY", display)
            .env("HOME", &self.dir)
            .env("XDG_DATA_HOME", self.dir.join("data"))
            .env("XDG_CONFIG_HOME", self.dir.join("config"))
            .env("XDG_CACHE_HOME", self.dir.join("cache"))
            .env("RUST_LOG", "warn")
            .env("NO_COLOR", "1")
            .env_remove("CHAT_SERVER_URL")
            .env_remove("WAYLAND_DISPLAY");
    }
}

/// Settings of a direct launch.
#[derive(Debug, Clone, Copy)]
pub struct DirectOptions {
    /// Wait after the first frame before reading memory (the app loads its data, WebKit
    /// settles).
    pub settle: Duration,
    /// Idle CPU is measured over this long (visible, then hidden); zero skips it.
    pub idle: Duration,
    /// The app hides to the tray when its window is closed (the chat app does; the floor quits).
    pub has_tray: bool,
}

/// What a direct launch measured.
#[derive(Debug, Clone, Serialize)]
pub struct Direct {
    /// Process start to the first frame with something drawn.
    pub first_frame_s: f64,
    pub pss_mib: f64,
    pub processes: Vec<Proc>,
    /// CPU-seconds the app's processes used from start until they went quiet (the start-up
    /// work: loading, WebKit compiling the page's wasm in tiers), and when that was, seconds
    /// after the first frame. Measured with the idle figures.
    #[serde(default)]
    pub startup_cpu_s: Option<f64>,
    #[serde(default)]
    pub quiet_after_s: Option<f64>,
    /// Share of one core while idle with the window shown but not focused (0.01 = 1 %), from
    /// when the app went quiet: the user works in another app.
    pub idle_visible: Option<f64>,
    /// The same with the window focused: the user looks at it. In the chat app the composer
    /// then holds the text caret, which WebKitGTK animates at the display's rate.
    #[serde(default)]
    pub idle_focused: Option<f64>,
    /// The same with the window hidden to the tray.
    pub idle_hidden: Option<f64>,
}

/// Sum of the PSS of `procs`, in MiB.
pub fn total_mib(procs: &[Proc]) -> f64 {
    procs.iter().map(|p| p.pss_kib).sum::<u64>() as f64 / 1024.0
}

fn output_to(log: &Path) -> Result<(Stdio, Stdio)> {
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)?;
    Ok((file.try_clone()?.into(), file.into()))
}

/// Waits until the screen shows no window (the previous app is gone).
async fn wait_no_window(x: &X) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(10);
    while x.any_window() {
        if Instant::now() > deadline {
            return Err(Error::Process(
                "a window of the previous app is still shown after 10 s".into(),
            ));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(())
}

/// Looks at the screen until something is drawn; returns when, from `started`.
async fn first_frame(
    x: &X,
    started: Instant,
    mut alive: impl FnMut() -> Result<()>,
) -> Result<f64> {
    loop {
        if x.look()? == Look::Drawn {
            return Ok(started.elapsed().as_secs_f64());
        }
        alive()?;
        if started.elapsed() > START_WAIT {
            return Err(Error::Process(format!(
                "nothing drawn within {START_WAIT:?}"
            )));
        }
        tokio::time::sleep(LOOK_EVERY).await;
    }
}

/// Starts `bin` as a user would and measures it (see [`Direct`]).
pub async fn direct(
    x: &X,
    display: &str,
    bin: &Path,
    home: &Home,
    log: &Path,
    opts: DirectOptions,
) -> Result<Direct> {
    wait_no_window(x).await?;
    let mut command = Command::new(bin);
    home.apply(&mut command, display);
    let (out, err) = output_to(log)?;
    command.stdout(out).stderr(err);
    let started = Instant::now();
    let mut app = Group::spawn(&bin.display().to_string(), command)?;
    let first_frame_s = first_frame(x, started, || app.check_alive()).await?;
    let framed = Instant::now();
    tokio::time::sleep(opts.settle).await;
    app.check_alive()?;
    let processes = procs::pss_tree(app.pid());
    let pss_mib = total_mib(&processes);
    let mut idle_visible = None;
    let mut idle_focused = None;
    let mut idle_hidden = None;
    let (mut startup_cpu_s, mut quiet_after_s) = (None, None);
    if !opts.idle.is_zero() {
        wait_quiet(app.pid()).await;
        quiet_after_s = Some(framed.elapsed().as_secs_f64());
        startup_cpu_s = Some(procs::cpu_seconds(&procs::cpu_tree(app.pid())));
        x.set_focused(false)?;
        tokio::time::sleep(Duration::from_secs(1)).await;
        idle_visible = Some(idle_cpu(app.pid(), opts.idle).await);
        x.set_focused(true)?;
        tokio::time::sleep(Duration::from_secs(1)).await;
        idle_focused = Some(idle_cpu(app.pid(), opts.idle).await);
        if opts.has_tray {
            x.close_windows()?;
            wait_no_window(x).await?;
            app.check_alive()?;
            // Let the hide settle before counting.
            tokio::time::sleep(Duration::from_secs(2)).await;
            idle_hidden = Some(idle_cpu(app.pid(), opts.idle).await);
        }
    }
    drop(app);
    wait_no_window(x).await?;
    Ok(Direct {
        first_frame_s,
        pss_mib,
        processes,
        startup_cpu_s,
        quiet_after_s,
        idle_visible,
        idle_focused,
        idle_hidden,
    })
}

/// A start is over once the app's processes use under this share of a core over
/// [`QUIET_WINDOW`]; waited for at most [`QUIET_WAIT`].
pub const QUIET_SHARE: f64 = 0.05;
pub const QUIET_WINDOW: Duration = Duration::from_secs(5);
const QUIET_WAIT: Duration = Duration::from_secs(90);

/// Waits until the app has finished starting: after loading, WebKit goes on compiling the
/// page's wasm in optimising tiers for tens of seconds on a busy 2-core machine, which is
/// start-up work, not idling (reported as [`Direct::startup_cpu_s`]).
async fn wait_quiet(pid: u32) {
    let t = Instant::now();
    while t.elapsed() < QUIET_WAIT && idle_cpu(pid, QUIET_WINDOW).await >= QUIET_SHARE {}
}

async fn idle_cpu(pid: u32, over: Duration) -> f64 {
    let before = procs::cpu_tree(pid);
    let t = Instant::now();
    tokio::time::sleep(over).await;
    let after = procs::cpu_tree(pid);
    procs::cpu_share(&before, &after, t.elapsed())
}

/// What the driven launch checks in the page.
#[derive(Debug, Clone)]
pub enum Expect {
    /// The floor: its heading.
    Heading,
    /// The chat app: `rooms` room items and, with `reopened`, the room last used opened again
    /// with that as its last message; then a click on room `open` shows `newest` as its last
    /// message (or, `None`, the room's beginning: no messages).
    Chat {
        rooms: usize,
        reopened: Option<String>,
        open: String,
        newest: Option<String>,
    },
}

/// What a driven launch measured. Times are from the app's process start.
#[derive(Debug, Clone, Serialize)]
pub struct Driven {
    pub first_frame_s: Option<f64>,
    /// The page's navigation start (`performance.timeOrigin`).
    pub page_start_s: Option<f64>,
    /// First contentful paint, from the page's paint timing (if WebKit reports it).
    pub first_paint_s: Option<f64>,
    /// The room list (chat) or the heading (floor) in the page. When the first look already
    /// found it, this is an upper bound ([`Driven::shown_at_first_look`]).
    pub shown_s: f64,
    pub shown_at_first_look: bool,
    /// The room the app had open when last used, reopened at start: its newest message in the
    /// page (an upper bound by the time of one look, a few ms).
    #[serde(default)]
    pub reopened_newest_s: Option<f64>,
    /// Click on the most recent room → its newest message in the page (page clock).
    pub click_to_newest_s: Option<f64>,
    /// Messages drawn in the list then.
    pub drawn: Option<u64>,
}

/// `tauri-driver` (with `WebKitWebDriver`) on free ports for `home`.
async fn start_driver(display: &str, home: &Home, log: &Path) -> Result<(Group, u16)> {
    let port = free_port()?;
    let mut native = free_port()?;
    while native == port {
        native = free_port()?;
    }
    let driver = std::env::var_os("CHAT_E2E_TAURI_DRIVER")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("tauri-driver"));
    let mut command = Command::new(driver);
    command
        .args(["--port", &port.to_string()])
        .args(["--native-port", &native.to_string()])
        .args(["--native-host", "127.0.0.1"]);
    home.apply(&mut command, display);
    let (out, err) = output_to(log)?;
    command.stdout(out).stderr(err);
    let mut group = Group::spawn("tauri-driver", command)?;
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let listening = |p: u16| std::net::TcpStream::connect(("127.0.0.1", p)).is_ok();
        if listening(port) && listening(native) {
            return Ok((group, port));
        }
        group.check_alive()?;
        if Instant::now() > deadline {
            return Err(Error::Process(
                "tauri-driver and WebKitWebDriver did not listen within 20 s".into(),
            ));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

fn wd_err(e: impl std::fmt::Display) -> Error {
    Error::WebDriver(e.to_string())
}

/// Wall-clock seconds (Unix epoch) when `pid` started.
fn start_epoch(pid: u32) -> Option<f64> {
    let (start, now_boot) = procs::started_and_now(pid)?;
    let now_epoch = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .ok()?
        .as_secs_f64();
    Some(now_epoch - (now_boot - start))
}

const LOOK_SCRIPT: &str = r#"
const paint = performance.getEntriesByType('paint').find(e => e.name === 'first-contentful-paint');
return {
  origin: performance.timeOrigin,
  now: performance.now(),
  fcp: paint ? paint.startTime : null,
  rooms: document.querySelectorAll('.room-item').length,
  heading: !!document.querySelector('h1'),
  last: (() => {
    const msgs = document.querySelectorAll('.messages li.message .body');
    return msgs.length ? msgs[msgs.length - 1].textContent.trim() : null;
  })(),
};
"#;

/// Clicks the room, then waits (in the page, a frame at a time) for its newest message or its
/// beginning; answers the time in ms from the click, or an error text.
const OPEN_SCRIPT: &str = r#"
const [label, newest, done] = arguments;
const item = Array.from(document.querySelectorAll('.room-item'))
  .find(e => e.getAttribute('aria-label') === label);
if (!item) { done({ error: 'no room item ' + label }); return; }
const t0 = performance.now();
item.click();
const check = () => {
  const msgs = document.querySelectorAll('.messages li.message .body');
  const last = msgs.length ? msgs[msgs.length - 1].textContent.trim() : null;
  const ok = newest === null ? !!document.querySelector('.room-intro') : last === newest;
  if (ok) {
    requestAnimationFrame(() => done({ ms: performance.now() - t0, drawn: msgs.length }));
    return;
  }
  if (performance.now() - t0 > 20000) { done({ error: 'not shown; last: ' + last }); return; }
  requestAnimationFrame(check);
};
check();
"#;

#[derive(Debug, serde::Deserialize)]
struct PageLook {
    origin: f64,
    now: f64,
    fcp: Option<f64>,
    rooms: usize,
    heading: bool,
    last: Option<String>,
}

/// Starts `bin` through WebDriver and measures it (see [`Driven`]).
pub async fn driven(
    x: &X,
    display: &str,
    bin: &Path,
    home: &Home,
    log: &Path,
    expect: &Expect,
) -> Result<Driven> {
    wait_no_window(x).await?;
    let (driver, port) = start_driver(display, home, log).await?;
    let mut caps = serde_json::Map::new();
    caps.insert("browserName".into(), json!("wry"));
    caps.insert("tauri:options".into(), json!({ "application": bin }));
    let started = Instant::now();
    // The screen is watched from before the session request: the app starts during it.
    let screen = X::connect(display)?;
    let mut watch = tokio::spawn(async move {
        let t = Instant::now();
        first_frame(&screen, t, || Ok(()))
            .await
            .map(|_| Instant::now())
    });
    let url = format!("http://127.0.0.1:{port}");
    let mut builder =
        fantoccini::ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new());
    builder.capabilities(caps);
    let client = tokio::time::timeout(START_WAIT, builder.connect(&url))
        .await
        .map_err(|_| Error::WebDriver(format!("no session within {START_WAIT:?}")))?
        .map_err(wd_err)?;
    let name = bin
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let app_pid = procs::find(driver.pid(), &name)
        .ok_or_else(|| Error::Process(format!("{name} not found under tauri-driver")))?;
    let spawn_epoch = start_epoch(app_pid)
        .ok_or_else(|| Error::Process("cannot read the app's start time".into()))?;
    let epoch_now = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs_f64())
            .unwrap_or(0.0)
    };
    // Instant ↔ epoch, to place the screen watcher's result on the same clock.
    let (instant_ref, epoch_ref) = (Instant::now(), epoch_now());
    let mut first_look = true;
    let look = loop {
        let value = client.execute(LOOK_SCRIPT, vec![]).await.map_err(wd_err)?;
        let look: PageLook = serde_json::from_value(value).map_err(wd_err)?;
        let shown = match expect {
            Expect::Heading => look.heading,
            Expect::Chat { rooms, .. } => look.rooms >= *rooms,
        };
        if shown {
            break look;
        }
        first_look = false;
        if started.elapsed() > START_WAIT + PAGE_WAIT {
            return Err(Error::WebDriver(format!(
                "the page did not show what was expected ({expect:?}); last look: {look:?}"
            )));
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    let page_start = look.origin / 1000.0;
    let mut result = Driven {
        first_frame_s: None,
        page_start_s: Some(page_start - spawn_epoch),
        first_paint_s: look.fcp.map(|f| page_start + f / 1000.0 - spawn_epoch),
        shown_s: page_start + look.now / 1000.0 - spawn_epoch,
        shown_at_first_look: first_look,
        reopened_newest_s: None,
        click_to_newest_s: None,
        drawn: None,
    };
    if let Expect::Chat {
        reopened: Some(reopened),
        ..
    } = expect
    {
        let mut look = look;
        while look.last.as_deref() != Some(reopened.as_str()) {
            if started.elapsed() > START_WAIT + PAGE_WAIT {
                return Err(Error::WebDriver(format!(
                    "the room last used was not opened again; last look: {look:?}"
                )));
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
            let value = client.execute(LOOK_SCRIPT, vec![]).await.map_err(wd_err)?;
            look = serde_json::from_value(value).map_err(wd_err)?;
        }
        result.reopened_newest_s = Some(look.origin / 1000.0 + look.now / 1000.0 - spawn_epoch);
    }
    if let Expect::Chat { open, newest, .. } = expect {
        let args = vec![json!(open), json!(newest)];
        let answer = tokio::time::timeout(PAGE_WAIT, client.execute_async(OPEN_SCRIPT, args))
            .await
            .map_err(|_| Error::WebDriver("opening the room took too long".into()))?
            .map_err(wd_err)?;
        if let Some(e) = answer.get("error") {
            return Err(Error::WebDriver(format!("opening {open}: {e}")));
        }
        result.click_to_newest_s = answer
            .get("ms")
            .and_then(|v| v.as_f64())
            .map(|ms| ms / 1000.0);
        result.drawn = answer.get("drawn").and_then(|v| v.as_u64());
    }
    // The watcher has usually seen the frame by now; give it a moment if not.
    let seen = match tokio::time::timeout(Duration::from_secs(10), &mut watch).await {
        Ok(joined) => joined.ok().and_then(|r| r.ok()),
        Err(_) => {
            watch.abort();
            None
        }
    };
    if let Some(at) = seen {
        // `at` is an Instant; place it on the epoch clock through the reference pair.
        let epoch = if at >= instant_ref {
            epoch_ref + (at - instant_ref).as_secs_f64()
        } else {
            epoch_ref - (instant_ref - at).as_secs_f64()
        };
        result.first_frame_s = Some(epoch - spawn_epoch);
    }
    let _ = client.close().await;
    drop(driver);
    wait_no_window(x).await?;
    Ok(result)
}
