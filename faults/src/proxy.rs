//! A TCP proxy the harness controls: it forwards one listening port to an upstream address and
//! can cut the link in two ways — `reset` drops every connection and refuses new ones (the peer
//! sees the connection fail at once), `blackhole` keeps connections open but stops forwarding
//! bytes (the peer sees silence, as after a network partition). `restore` heals both; after a
//! blackhole, buffered bytes flow again as TCP would deliver them.
//!
//! The upstream can be changed at any time (a front proxy for the desktop client follows live
//! nodes); new connections go to the current upstream.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// The link state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Link {
    Up,
    Blackhole,
    Reset,
}

struct Shared {
    upstream: Mutex<Vec<SocketAddr>>,
    /// Cancelled to drop every current connection; replaced by a fresh token afterwards.
    generation: Mutex<CancellationToken>,
    link: watch::Sender<Link>,
}

/// A running proxy; stops (and drops its connections) when dropped.
pub struct Proxy {
    pub addr: SocketAddr,
    shared: Arc<Shared>,
    stop: CancellationToken,
}

impl Proxy {
    /// Listens on a free local port and forwards to `upstream` (any of them, at random).
    pub async fn start(upstream: Vec<SocketAddr>) -> std::io::Result<Proxy> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let (link, _) = watch::channel(Link::Up);
        let shared = Arc::new(Shared {
            upstream: Mutex::new(upstream),
            generation: Mutex::new(CancellationToken::new()),
            link,
        });
        let stop = CancellationToken::new();
        tokio::spawn(accept_loop(listener, shared.clone(), stop.clone()));
        Ok(Proxy { addr, shared, stop })
    }

    pub fn link(&self) -> Link {
        *self.shared.link.borrow()
    }

    /// Cuts the link (see the module doc).
    pub fn cut(&self, how: Link) {
        if how == Link::Reset {
            self.drop_connections();
        }
        self.shared.link.send_replace(how);
    }

    /// Heals the link.
    pub fn restore(&self) {
        self.shared.link.send_replace(Link::Up);
    }

    /// Drops every current connection (the link stays as it is).
    pub fn drop_connections(&self) {
        let mut generation = self
            .shared
            .generation
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        generation.cancel();
        *generation = CancellationToken::new();
    }

    /// New connections go to one of `upstream`.
    pub fn set_upstream(&self, upstream: Vec<SocketAddr>) {
        *self
            .shared
            .upstream
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = upstream;
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop.cancel();
        self.drop_connections();
    }
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>, stop: CancellationToken) {
    let mut next = 0usize;
    loop {
        let accepted = tokio::select! {
            _ = stop.cancelled() => return,
            a = listener.accept() => a,
        };
        let Ok((client, _)) = accepted else { continue };
        if *shared.link.borrow() == Link::Reset {
            drop(client);
            continue;
        }
        let upstream = {
            let list = shared.upstream.lock().unwrap_or_else(|e| e.into_inner());
            if list.is_empty() {
                None
            } else {
                next = next.wrapping_add(1);
                Some(list[next % list.len()])
            }
        };
        let Some(upstream) = upstream else { continue };
        let generation = shared
            .generation
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let link = shared.link.subscribe();
        tokio::spawn(async move {
            let connect = tokio::time::timeout(
                std::time::Duration::from_secs(2),
                TcpStream::connect(upstream),
            );
            let server = tokio::select! {
                _ = generation.cancelled() => return,
                s = connect => match s { Ok(Ok(s)) => s, _ => return },
            };
            let _ = client.set_nodelay(true);
            let _ = server.set_nodelay(true);
            let (cr, cw) = client.into_split();
            let (sr, sw) = server.into_split();
            tokio::select! {
                _ = generation.cancelled() => {}
                _ = pump(cr, sw, link.clone()) => {}
                _ = pump(sr, cw, link) => {}
            }
        });
    }
}

/// Copies one direction, holding bytes back while the link is a blackhole.
async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    mut link: watch::Receiver<Link>,
) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        if wait_flowing(&mut link).await.is_err() {
            return;
        }
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        if wait_flowing(&mut link).await.is_err() {
            return;
        }
        if to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}

async fn wait_flowing(link: &mut watch::Receiver<Link>) -> Result<(), ()> {
    loop {
        match *link.borrow_and_update() {
            Link::Up => return Ok(()),
            Link::Reset => return Err(()),
            Link::Blackhole => {}
        }
        if link.changed().await.is_err() {
            return Err(());
        }
    }
}
