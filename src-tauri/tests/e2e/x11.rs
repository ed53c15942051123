//! The app's X11 window, seen and handled like a window manager would.

use super::*;

/// A connection to the test's X display: finds the app's top-level window (title "Chat…"),
/// reads its title, visibility and geometry, moves/resizes it and asks it to close
/// (`WM_DELETE_WINDOW`, what a window manager sends when the user clicks ×).
pub(crate) struct X {
    pub(crate) conn: x11rb::rust_connection::RustConnection,
    pub(crate) root: u32,
    pub(crate) net_wm_name: u32,
    pub(crate) utf8: u32,
    pub(crate) wm_protocols: u32,
    pub(crate) wm_delete: u32,
}

impl X {
    pub(crate) fn connect(display: &str) -> X {
        use x11rb::connection::Connection;
        let (conn, screen) = x11rb::rust_connection::RustConnection::connect(Some(display))
            .unwrap_or_else(|e| panic!("cannot connect to the X display {display}: {e}"));
        let root = conn.setup().roots[screen].root;
        let atom = |name: &str| -> u32 {
            use x11rb::protocol::xproto::ConnectionExt;
            conn.intern_atom(false, name.as_bytes())
                .ok()
                .and_then(|c| c.reply().ok())
                .map(|r| r.atom)
                .unwrap_or_else(|| panic!("cannot intern the X atom {name}"))
        };
        let (net_wm_name, utf8, wm_protocols, wm_delete) = (
            atom("_NET_WM_NAME"),
            atom("UTF8_STRING"),
            atom("WM_PROTOCOLS"),
            atom("WM_DELETE_WINDOW"),
        );
        X {
            conn,
            root,
            net_wm_name,
            utf8,
            wm_protocols,
            wm_delete,
        }
    }

    pub(crate) fn title(&self, window: u32) -> String {
        use x11rb::protocol::xproto::{AtomEnum, ConnectionExt};
        let read = |property: u32, kind: u32| {
            self.conn
                .get_property(false, window, property, kind, 0, 1024)
                .ok()
                .and_then(|c| c.reply().ok())
                .map(|r| String::from_utf8_lossy(&r.value).into_owned())
                .unwrap_or_default()
        };
        let title = read(self.net_wm_name, self.utf8);
        if title.is_empty() {
            read(AtomEnum::WM_NAME.into(), AtomEnum::STRING.into())
        } else {
            title
        }
    }

    pub(crate) fn viewable(&self, window: u32) -> bool {
        use x11rb::protocol::xproto::{ConnectionExt, MapState};
        self.conn
            .get_window_attributes(window)
            .ok()
            .and_then(|c| c.reply().ok())
            .is_some_and(|a| a.map_state == MapState::VIEWABLE)
    }

    /// (x, y, width, height) of a top-level window.
    pub(crate) fn geometry(&self, window: u32) -> (i32, i32, u32, u32) {
        use x11rb::protocol::xproto::ConnectionExt;
        let g = self
            .conn
            .get_geometry(window)
            .ok()
            .and_then(|c| c.reply().ok())
            .unwrap_or_else(|| panic!("no geometry for window {window}"));
        (
            i32::from(g.x),
            i32::from(g.y),
            u32::from(g.width),
            u32::from(g.height),
        )
    }

    pub(crate) fn configure(&self, window: u32, (x, y, width, height): (i32, i32, u32, u32)) {
        use x11rb::connection::Connection;
        use x11rb::protocol::xproto::{ConfigureWindowAux, ConnectionExt};
        let aux = ConfigureWindowAux::new()
            .x(x)
            .y(y)
            .width(width)
            .height(height);
        self.conn
            .configure_window(window, &aux)
            .map(|_| ())
            .and_then(|()| self.conn.flush())
            .unwrap_or_else(|e| panic!("cannot move/resize window {window}: {e}"));
    }

    /// The close button: `WM_PROTOCOLS` / `WM_DELETE_WINDOW`, as window managers send it.
    pub(crate) fn close(&self, window: u32) {
        use x11rb::connection::Connection;
        use x11rb::protocol::xproto::{ClientMessageEvent, ConnectionExt, EventMask};
        let event = ClientMessageEvent::new(
            32,
            window,
            self.wm_protocols,
            [self.wm_delete, x11rb::CURRENT_TIME, 0, 0, 0],
        );
        self.conn
            .send_event(false, window, EventMask::NO_EVENT, event)
            .map(|_| ())
            .and_then(|()| self.conn.flush())
            .unwrap_or_else(|e| panic!("cannot send WM_DELETE_WINDOW: {e}"));
        note("sent WM_DELETE_WINDOW (the close button)");
    }

    /// The app's top-level windows: children of the root titled "Chat…" (no window manager
    /// runs, so they are not reparented).
    pub(crate) fn app_windows(&self) -> Vec<u32> {
        use x11rb::protocol::xproto::ConnectionExt;
        let children = self
            .conn
            .query_tree(self.root)
            .ok()
            .and_then(|c| c.reply().ok())
            .map(|t| t.children)
            .unwrap_or_default();
        children
            .into_iter()
            .filter(|w| self.title(*w).starts_with("Chat"))
            .collect()
    }

    /// Waits for the app's window in the given visibility.
    pub(crate) async fn wait_app_window(&self, viewable: bool) -> u32 {
        let deadline = Instant::now() + UI_WAIT;
        loop {
            if let Some(w) = self
                .app_windows()
                .into_iter()
                .find(|w| self.viewable(*w) == viewable)
            {
                return w;
            }
            assert!(
                Instant::now() < deadline,
                "no app window (viewable: {viewable}) within {UI_WAIT:?}"
            );
            tokio::time::sleep(POLL).await;
        }
    }

    pub(crate) async fn wait_viewable(&self, window: u32, viewable: bool) {
        let deadline = Instant::now() + UI_WAIT;
        while self.viewable(window) != viewable {
            assert!(
                Instant::now() < deadline,
                "the window did not become {} within {UI_WAIT:?}",
                if viewable { "visible" } else { "hidden" }
            );
            tokio::time::sleep(POLL).await;
        }
        note(&format!(
            "the window is {}",
            if viewable { "shown" } else { "hidden" }
        ));
    }

    pub(crate) async fn wait_title(&self, window: u32, want: &str) {
        let deadline = Instant::now() + UI_WAIT;
        loop {
            let title = self.title(window);
            if title == want {
                note(&format!("window title {title:?}"));
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the window title stayed {title:?}, not {want:?}, for {UI_WAIT:?}"
            );
            tokio::time::sleep(POLL).await;
        }
    }
}

/// Starts the app a second time, as a user would from the launcher (same user, same session):
/// it must hand over to the running one and exit by itself, successfully.
pub(crate) async fn second_launch(app: &Path, display: &str, home: &Path) {
    let log = window_shots_dir().join("second-launch.log");
    let out = std::fs::File::create(&log)
        .unwrap_or_else(|e| panic!("cannot create {}: {e}", log.display()));
    let err = out
        .try_clone()
        .unwrap_or_else(|e| panic!("cannot clone a file handle: {e}"));
    let mut child = Command::new(app)
        .env("DISPLAY", display)
        .env("HOME", home)
        .env("XDG_DATA_HOME", home.join("data"))
        .env("XDG_CONFIG_HOME", home.join("config"))
        .env("XDG_CACHE_HOME", home.join("cache"))
        .env("RUST_LOG", "chat_desktop=debug,info")
        .env("NO_COLOR", "1")
        .env_remove("WAYLAND_DISPLAY")
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start a second instance: {e}"));
    let deadline = Instant::now() + UI_WAIT;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() < deadline => tokio::time::sleep(POLL).await,
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "the second instance kept running for {UI_WAIT:?} (see {})",
                    log.display()
                );
            }
            Err(e) => panic!("cannot wait for the second instance: {e}"),
        }
    };
    assert!(
        status.success(),
        "the second instance failed: {status} (see {})",
        log.display()
    );
    note("a second launch exited and handed over to the first");
}

/// Processes running the app binary.
pub(crate) fn app_pids(app: &Path) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| {
            let pid: u32 = e.file_name().to_str()?.parse().ok()?;
            let exe = std::fs::read_link(e.path().join("exe")).ok()?;
            (exe == app).then_some(pid)
        })
        .collect()
}

/// Waits until the app has exited (after its WebDriver session ended).
pub(crate) async fn wait_app_gone(app: &Path) {
    let deadline = Instant::now() + UI_WAIT;
    loop {
        let pids = app_pids(app);
        if pids.is_empty() && !single_instance_name_owned() {
            note("the app exited");
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the app (pids {pids:?}) still runs {UI_WAIT:?} after its session ended"
        );
        tokio::time::sleep(POLL).await;
    }
}

/// The D-Bus name the single-instance plugin holds while the app runs (the identifier in
/// tauri.conf.json + `.SingleInstance`).
const SINGLE_INSTANCE_NAME: &str = "org.selfchat.desktop.SingleInstance";

/// Whether a process still owns the app's single-instance name on the session bus. The bus
/// daemon drops the name only once it sees the old connection close, which can trail the
/// process's exit; an app started in between finds the name taken, forwards its arguments to
/// nobody and fails.
fn single_instance_name_owned() -> bool {
    let out = Command::new("dbus-send")
        .args([
            "--session",
            "--print-reply",
            "--dest=org.freedesktop.DBus",
            "/org/freedesktop/DBus",
            "org.freedesktop.DBus.NameHasOwner",
        ])
        .arg(format!("string:{SINGLE_INSTANCE_NAME}"))
        .output()
        .unwrap_or_else(|e| panic!("cannot run dbus-send: {e}"));
    assert!(
        out.status.success(),
        "dbus-send NameHasOwner failed: {out:?}"
    );
    String::from_utf8_lossy(&out.stdout).contains("boolean true")
}
