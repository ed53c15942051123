//! The reverse proxies an operator puts in front of the nodes, each running the configuration
//! file the repository ships (`deploy/nginx/chat.conf`, `deploy/Caddyfile`) with only what is
//! site-specific replaced: the listen address, the certificate and the upstream nodes.
//!
//! Both proxies are Debian's packages (`scripts/setup.sh` installs them); each runs in its own
//! directory on a free port and is killed on drop. Every wait has a deadline.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;
use tokio::time::Instant;

pub const NGINX: &str = "/usr/sbin/nginx";
pub const CADDY: &str = "/usr/bin/caddy";

/// The repository's `deploy/` directory.
pub fn deploy_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy")
}

/// A running proxy: its address, and its log in `dir`.
pub struct Proxy {
    child: Child,
    pub addr: SocketAddr,
    log: PathBuf,
}

impl Proxy {
    /// What the proxy wrote to its error log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Stops the proxy (also done on drop): SIGTERM, so that nginx's master stops its workers
    /// (a SIGKILLed master leaves them running, still holding the port); SIGKILL if it has not
    /// exited within 5 s.
    pub fn stop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = Command::new("kill")
                .args(["-TERM", &self.child.id().to_string()])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
            let deadline = std::time::Instant::now() + Duration::from_secs(5);
            while let Ok(None) = self.child.try_wait() {
                if std::time::Instant::now() > deadline {
                    let _ = self.child.kill();
                    break;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        }
        let _ = self.child.wait();
    }

    /// Waits (at most 10 s) until the proxy accepts connections.
    async fn wait_listening(mut self, name: &str) -> Result<Proxy, String> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!("{name} exited with {status}:\n{}", self.log()));
            }
            if tokio::net::TcpStream::connect(self.addr).await.is_ok() {
                return Ok(self);
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "{name} did not listen within 10 s:\n{}",
                    self.log()
                ));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Starts a proxy with `start(port)` on a free port and waits until it listens. A port taken
/// between picking and binding (the proxies bind `:port`, which any socket's ephemeral port on
/// the host can hold, e.g. another test's connection) makes it try another port, three times.
async fn on_free_port(
    name: &str,
    mut start: impl FnMut(u16) -> Result<Proxy, String>,
) -> Result<Proxy, String> {
    let mut last_error = String::new();
    for _attempt in 0..3 {
        match start(crate::free_port())?.wait_listening(name).await {
            Ok(proxy) => return Ok(proxy),
            Err(e) if e.to_ascii_lowercase().contains("address already in use") => last_error = e,
            Err(e) => return Err(e),
        }
    }
    Err(last_error)
}

/// A certificate chain and key (PEM files) for a proxy that terminates TLS.
#[derive(Debug, Clone, Copy)]
pub struct TlsFiles<'a> {
    pub cert: &'a Path,
    pub key: &'a Path,
}

/// `deploy/nginx/chat.conf` with the test's port, upstream nodes and certificate (without one:
/// plain HTTP on the same port, the `ssl_*` lines left out), and without the port-80 redirect.
/// Everything in the `location` block is the shipped text.
pub fn nginx_site(port: u16, tls: Option<TlsFiles<'_>>, nodes: &[SocketAddr]) -> String {
    let shipped = std::fs::read_to_string(deploy_dir().join("nginx/chat.conf"))
        .expect("deploy/nginx/chat.conf");
    let mut out = String::new();
    for line in shipped.lines() {
        let t = line.trim();
        // The port-80 redirect block is not needed here: it starts with `server {` on the line
        // before `listen 80;`, and is last in the file.
        if t == "listen 80;" {
            let cut = out.rfind("server {").expect("redirect block");
            out.truncate(cut);
            break;
        }
        let replaced = match (t, tls) {
            ("listen 443 ssl http2;", Some(_)) => format!("    listen 127.0.0.1:{port} ssl http2;"),
            ("listen 443 ssl http2;", None) => format!("    listen 127.0.0.1:{port};"),
            ("listen [::]:443 ssl http2;", _) => continue,
            // The one upstream: one line per node, with the shipped parameters.
            _ if t.starts_with("server 127.0.0.1:8080") => {
                let params = t["server 127.0.0.1:8080".len()..].trim_end_matches(';');
                nodes
                    .iter()
                    .map(|n| format!("    server {n}{params};"))
                    .collect::<Vec<_>>()
                    .join("\n")
            }
            (_, None) if t.starts_with("ssl_") => continue,
            (_, Some(tls)) if t.starts_with("ssl_certificate ") => {
                format!("    ssl_certificate {};", tls.cert.display())
            }
            (_, Some(tls)) if t.starts_with("ssl_certificate_key ") => {
                format!("    ssl_certificate_key {};", tls.key.display())
            }
            _ => line.to_owned(),
        };
        out.push_str(&replaced);
        out.push('\n');
    }
    out
}

/// Whether this process runs as root (`/proc/self` belongs to the effective user).
fn is_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

/// Starts Debian's nginx with the shipped site in front of `nodes` on a free 127.0.0.1 port,
/// its files in `dir`; ready once it accepts connections.
pub async fn nginx(
    dir: &Path,
    tls: Option<TlsFiles<'_>>,
    nodes: &[SocketAddr],
) -> Result<Proxy, String> {
    for d in ["body", "proxy", "fastcgi", "uwsgi", "scgi"] {
        std::fs::create_dir_all(dir.join(d)).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    on_free_port("nginx", |port| {
        // A failed attempt's "[emerg] bind() … failed" is not this run's.
        let _ = std::fs::remove_file(dir.join("error.log"));
        std::fs::write(dir.join("chat.conf"), nginx_site(port, tls, nodes))
            .map_err(|e| format!("chat.conf: {e}"))?;
        // The main file Debian's /etc/nginx/nginx.conf would be, reduced to what the site needs.
        // As root, the workers stay root so they can read the test's files.
        let main = format!(
            "{user}worker_processes 1;\npid {d}/nginx.pid;\nerror_log {d}/error.log warn;\n\
             events {{ worker_connections 1024; }}\n\
             http {{\n  access_log off;\n  client_body_temp_path {d}/body;\n  proxy_temp_path {d}/proxy;\n\
             fastcgi_temp_path {d}/fastcgi;\n  uwsgi_temp_path {d}/uwsgi;\n  scgi_temp_path {d}/scgi;\n\
             include {d}/chat.conf;\n}}\n",
            user = if is_root() { "user root;\n" } else { "" },
            d = dir.display(),
        );
        std::fs::write(dir.join("nginx.conf"), main).map_err(|e| format!("nginx.conf: {e}"))?;
        let child = Command::new(NGINX)
            .arg("-p")
            .arg(dir)
            .arg("-c")
            .arg(dir.join("nginx.conf"))
            .args(["-g", "daemon off;"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot run {NGINX} (scripts/setup.sh installs nginx): {e}"))?;
        Ok(Proxy {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            log: dir.join("error.log"),
        })
    })
    .await
}

/// Starts Debian's caddy with the shipped `deploy/Caddyfile` unchanged, its placeholders set
/// through the environment: the site `http://127.0.0.1:<free port>` (plain HTTP: no
/// certificate to obtain), the upstream `nodes`, the admin endpoint off (no fixed port shared
/// with other tests). Caddy's data and config directories are in `dir`.
pub async fn caddy(dir: &Path, nodes: &[SocketAddr]) -> Result<Proxy, String> {
    let nodes: Vec<String> = nodes.iter().map(|n| n.to_string()).collect();
    let log = dir.join("caddy.log");
    on_free_port("caddy", |port| {
        let out = std::fs::File::create(&log).map_err(|e| format!("caddy.log: {e}"))?;
        let err = out.try_clone().map_err(|e| format!("caddy.log: {e}"))?;
        let child = Command::new(CADDY)
            .args(["run", "--adapter", "caddyfile", "--config"])
            .arg(deploy_dir().join("Caddyfile"))
            .env("CHAT_SITE", format!("http://127.0.0.1:{port}"))
            .env("CHAT_NODES", nodes.join(" "))
            .env("CHAT_CADDY_ADMIN", "off")
            .env("XDG_DATA_HOME", dir.join("data"))
            .env("XDG_CONFIG_HOME", dir.join("config"))
            .env("HOME", dir)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .map_err(|e| format!("cannot run {CADDY} (scripts/setup.sh installs caddy): {e}"))?;
        Ok(Proxy {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            log: log.clone(),
        })
    })
    .await
}
