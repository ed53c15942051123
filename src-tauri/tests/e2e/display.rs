//! Xvfb and tauri-driver.

use super::*;

/// A private X server on a display number it picks itself (`-displayfd`), killed on drop.
pub(crate) struct Xvfb {
    pub(crate) child: Child,
    pub(crate) display: String,
    pub(crate) _dir: tempfile::TempDir,
}

impl Xvfb {
    pub(crate) async fn start() -> Xvfb {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("no temp dir: {e}"));
        let fd_file = dir.path().join("display");
        let child = Command::new("sh")
            .args([
                "-c",
                "exec Xvfb -displayfd 3 -screen 0 1280x800x24 -nolisten tcp 3>\"$0\"",
            ])
            .arg(&fd_file)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start Xvfb: {e}"));
        let mut xvfb = Xvfb {
            child,
            display: String::new(),
            _dir: dir,
        };
        // Xvfb writes the display number once it accepts connections.
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let text = std::fs::read_to_string(&fd_file).unwrap_or_default();
            if text.ends_with('\n') && !text.trim().is_empty() {
                xvfb.display = format!(":{}", text.trim());
                note(&format!("Xvfb on {}", xvfb.display));
                return xvfb;
            }
            if let Ok(Some(status)) = xvfb.child.try_wait() {
                panic!("Xvfb exited at start: {status}");
            }
            assert!(Instant::now() < deadline, "Xvfb did not start within 20 s");
            tokio::time::sleep(POLL).await;
        }
    }
}

impl Drop for Xvfb {
    fn drop(&mut self) {
        // SIGTERM lets Xvfb remove its socket and lock file; SIGKILL if it does not stop.
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .stderr(Stdio::null())
            .status();
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while std::time::Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `tauri-driver` (and below it `WebKitWebDriver` and the app) in a process group of its own,
/// so dropping it ends all of them.
pub(crate) struct Driver {
    pub(crate) child: Child,
    pub(crate) port: u16,
}

impl Driver {
    pub(crate) async fn start(display: &str, home: &Path, log: &Path) -> Driver {
        let port = common::free_port();
        let mut native = common::free_port();
        while native == port {
            native = common::free_port();
        }
        let log_file = std::fs::File::create(log)
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", log.display()));
        let log_err = log_file
            .try_clone()
            .unwrap_or_else(|e| panic!("cannot clone the log file handle: {e}"));
        let dirs = ["data", "config", "cache"].map(|d| {
            let path = home.join(d);
            std::fs::create_dir_all(&path)
                .unwrap_or_else(|e| panic!("cannot create {}: {e}", path.display()));
            path
        });
        let mut command = Command::new(tauri_driver());
        command
            .args(["--port", &port.to_string()])
            .args(["--native-port", &native.to_string()])
            .args(["--native-host", "127.0.0.1"])
            .env("DISPLAY", display)
            .env("HOME", home)
            .env("XDG_DATA_HOME", &dirs[0])
            .env("XDG_CONFIG_HOME", &dirs[1])
            .env("XDG_CACHE_HOME", &dirs[2])
            .env("RUST_LOG", "chat_desktop=debug,info")
            .env("NO_COLOR", "1")
            .env_remove("CHAT_SERVER_URL")
            .env_remove("WAYLAND_DISPLAY")
            .stdin(Stdio::null())
            .stdout(log_file)
            .stderr(log_err);
        if let Some(native_driver) = on_path("WebKitWebDriver") {
            command.arg("--native-driver").arg(native_driver);
        }
        std::os::unix::process::CommandExt::process_group(&mut command, 0);
        let child = command
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start tauri-driver: {e}"));
        let mut driver = Driver { child, port };
        let deadline = Instant::now() + Duration::from_secs(20);
        // Both listening: tauri-driver, and the WebKitWebDriver it starts (it forwards the
        // first session request there; before that one listens, the request is refused).
        loop {
            let listening = |p: u16| async move {
                tokio::net::TcpStream::connect(("127.0.0.1", p))
                    .await
                    .is_ok()
            };
            if listening(port).await && listening(native).await {
                note(&format!(
                    "tauri-driver on 127.0.0.1:{port}, WebKitWebDriver on 127.0.0.1:{native}"
                ));
                return driver;
            }
            if let Ok(Some(status)) = driver.child.try_wait() {
                panic!(
                    "tauri-driver exited at start ({status}); see {}",
                    log.display()
                );
            }
            assert!(
                Instant::now() < deadline,
                "tauri-driver ({port}) and WebKitWebDriver ({native}) did not both listen within 20 s; \
                 see {}",
                log.display()
            );
            tokio::time::sleep(POLL).await;
        }
    }

    pub(crate) fn signal_group(&self, signal: &str) {
        let _ = Command::new("kill")
            .args([signal, "--", &format!("-{}", self.child.id())])
            .stderr(Stdio::null())
            .status();
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        // tauri-driver stops WebKitWebDriver on SIGTERM; the group signal also reaches the app
        // and its web processes.
        self.signal_group("-TERM");
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while std::time::Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        self.signal_group("-KILL");
        let _ = self.child.wait();
    }
}
