//! Built-in TLS (https and wss without a reverse proxy): the certificate store and a listener
//! that hands finished TLS streams to `axum::serve`.
//!
//! The certificate chain and key are PEM files (`tls_cert`, `tls_key`). [`CertStore`] keeps the
//! parsed pair and gives it to every new handshake; [`CertStore::reload`] (called on SIGHUP by
//! `main.rs`) reads the files again and swaps the pair only when the new one is whole and
//! matches, so a half-written or wrong renewal keeps the old certificate and logs why. Open
//! connections keep the session they negotiated. [`CertStore::reload_if_changed`] does the same
//! only when the files' contents differ from what was last read: the file watch
//! (`crate::tls_watch`) calls it every `tls_watch_secs`.
//!
//! [`TlsListener`] implements axum's `Listener`: one task accepts TCP connections and runs each
//! handshake in its own task (bounded by [`HANDSHAKE_TIMEOUT`]), so a slow or silent client
//! never holds up the others. Serving stays `axum::serve` for both plain and TLS listeners:
//! the same graceful shutdown, connection info and per-connection behaviour. rustls uses the
//! ring provider only.

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;

/// How long a client has to finish the TLS handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Finished handshakes waiting for `axum::serve` to take them.
const READY_QUEUE: usize = 64;

/// A certificate or key that cannot be used, with the reason.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: not a PEM certificate chain: {reason}")]
    Chain { path: PathBuf, reason: String },
    #[error("{path}: not a PEM private key: {reason}")]
    Key { path: PathBuf, reason: String },
    #[error("{cert} and {key} do not make a usable pair: {source}")]
    Pair {
        cert: PathBuf,
        key: PathBuf,
        source: rustls::Error,
    },
}

/// The server's current certificate chain and key, swappable while serving.
#[derive(Debug)]
pub struct CertStore {
    cert_path: PathBuf,
    key_path: PathBuf,
    current: RwLock<Arc<CertifiedKey>>,
    /// SHA-256 of the files' contents at the last read (`None`: one could not be read); no
    /// second copy of the key is kept.
    last_read: Mutex<Option<[u8; 32]>>,
    reloaded: AtomicU64,
    refused: AtomicU64,
}

/// Reloads since start: pairs taken, and pairs refused (the old one kept).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ReloadCounts {
    pub reloaded: u64,
    pub refused: u64,
}

fn provider() -> CryptoProvider {
    rustls::crypto::ring::default_provider()
}

impl CertStore {
    /// Reads and checks the pair at `cert` and `key`.
    pub fn load(cert: &Path, key: &Path) -> Result<Arc<Self>, TlsError> {
        let files = read_files(cert, key)?;
        let pair = parse_pair(cert, key, &files)?;
        Ok(Arc::new(Self {
            cert_path: cert.to_owned(),
            key_path: key.to_owned(),
            current: RwLock::new(Arc::new(pair)),
            last_read: Mutex::new(Some(digest(&files))),
            reloaded: AtomicU64::new(0),
            refused: AtomicU64::new(0),
        }))
    }

    /// Reads the files again. On success new handshakes use the new pair; on failure the old
    /// one stays and the error says why.
    pub fn reload(&self) -> Result<(), TlsError> {
        let files = read_files(&self.cert_path, &self.key_path);
        self.take(files)
    }

    /// Reads the files and reloads only if their contents changed since the last read (by
    /// this, [`CertStore::reload`] or the start): `None` when unchanged, else the outcome. A
    /// broken pair is reported once, not at every check, and tried again when either file
    /// changes again (e.g. the key written after the certificate).
    pub fn reload_if_changed(&self) -> Option<Result<(), TlsError>> {
        let files = read_files(&self.cert_path, &self.key_path);
        let unchanged = {
            let last = self.last_read.lock().unwrap_or_else(|p| p.into_inner());
            *last == files.as_ref().ok().map(digest)
        };
        if unchanged {
            return None;
        }
        Some(self.take(files))
    }

    fn take(&self, files: Result<(Vec<u8>, Vec<u8>), TlsError>) -> Result<(), TlsError> {
        *self.last_read.lock().unwrap_or_else(|p| p.into_inner()) = files.as_ref().ok().map(digest);
        let parsed = files.and_then(|f| parse_pair(&self.cert_path, &self.key_path, &f));
        match parsed {
            Ok(pair) => {
                *self.current.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(pair);
                self.reloaded.fetch_add(1, Ordering::Relaxed);
                Ok(())
            }
            Err(e) => {
                self.refused.fetch_add(1, Ordering::Relaxed);
                Err(e)
            }
        }
    }

    /// How many reloads took a new pair and how many kept the old one.
    pub fn reload_counts(&self) -> ReloadCounts {
        ReloadCounts {
            reloaded: self.reloaded.load(Ordering::Relaxed),
            refused: self.refused.load(Ordering::Relaxed),
        }
    }

    /// The chain new handshakes present (leaf first).
    pub fn chain(&self) -> Vec<CertificateDer<'static>> {
        self.current().cert.clone()
    }

    fn current(&self) -> Arc<CertifiedKey> {
        self.current
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// A rustls server configuration that asks this store on every handshake; http/1.1 only
    /// (WebSocket upgrades need it, and the API gains nothing from h2).
    pub fn server_config(self: &Arc<Self>) -> Result<Arc<rustls::ServerConfig>, rustls::Error> {
        let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(provider()))
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_cert_resolver(self.clone());
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Arc::new(config))
    }
}

impl ResolvesServerCert for CertStore {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current())
    }
}

fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        path: path.to_owned(),
        source,
    })
}

fn digest((cert, key): &(Vec<u8>, Vec<u8>)) -> [u8; 32] {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update((cert.len() as u64).to_le_bytes());
    h.update(cert);
    h.update(key);
    h.finalize().into()
}

fn read_files(cert: &Path, key: &Path) -> Result<(Vec<u8>, Vec<u8>), TlsError> {
    Ok((read(cert)?, read(key)?))
}

fn parse_pair(
    cert: &Path,
    key: &Path,
    (chain_pem, key_pem): &(Vec<u8>, Vec<u8>),
) -> Result<CertifiedKey, TlsError> {
    let chain = CertificateDer::pem_slice_iter(chain_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::Chain {
            path: cert.to_owned(),
            reason: e.to_string(),
        })?;
    if chain.is_empty() {
        return Err(TlsError::Chain {
            path: cert.to_owned(),
            reason: "no CERTIFICATE block".into(),
        });
    }
    let private = PrivateKeyDer::from_pem_slice(key_pem).map_err(|e| TlsError::Key {
        path: key.to_owned(),
        reason: e.to_string(),
    })?;
    CertifiedKey::from_der(chain, private, &provider()).map_err(|source| TlsError::Pair {
        cert: cert.to_owned(),
        key: key.to_owned(),
        source,
    })
}

/// TLS connections, handshake done, for `axum::serve`.
pub struct TlsListener {
    ready: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    local: SocketAddr,
}

impl TlsListener {
    /// Starts accepting on `tcp`. The accepting task ends when this listener is dropped
    /// (`axum::serve` drops it when graceful shutdown begins).
    pub fn new(tcp: TcpListener, config: Arc<rustls::ServerConfig>) -> std::io::Result<Self> {
        let local = tcp.local_addr()?;
        let (tx, ready) = mpsc::channel(READY_QUEUE);
        tokio::spawn(accept_loop(tcp, TlsAcceptor::from(config), tx));
        Ok(Self { ready, local })
    }
}

async fn accept_loop(
    tcp: TcpListener,
    acceptor: TlsAcceptor,
    tx: mpsc::Sender<(TlsStream<TcpStream>, SocketAddr)>,
) {
    loop {
        let accepted = tokio::select! {
            _ = tx.closed() => return,
            accepted = tcp.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(conn) => conn,
            Err(e) => {
                // Out of file descriptors and the like: wait a little, as axum's listener does.
                tracing::error!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        let acceptor = acceptor.clone();
        let tx = tx.clone();
        tokio::spawn(async move {
            match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                Ok(Ok(tls)) => {
                    let _ = tx.send((tls, peer)).await;
                }
                Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
                Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
            }
        });
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.ready.recv().await {
            Some(conn) => conn,
            // The accept loop only ends once this receiver is gone; never reached while
            // serving. Park instead of spinning.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(self.local)
    }
}
