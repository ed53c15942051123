//! Whom the app trusts over TLS, for REST (reqwest) and the socket (tokio-tungstenite) alike:
//! one rustls configuration (ring provider) per server.
//!
//! A certificate is trusted when it chains to a bundled root (webpki-roots) or to one in the
//! OS store (rustls-native-certs: a company CA installed on the machine just works), or when
//! the user pinned exactly that certificate for this server (its SHA-256). An untrusted
//! certificate is refused, and [`Tls::refusal`] tells the caller what was presented
//! (fingerprint, subject, issuer) so the UI can ask the user; a pinned server presenting
//! another untrusted certificate is refused as changed.

use protocol::ipc::CertificateView;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use std::sync::{Arc, Mutex};

/// A SHA-256 certificate fingerprint.
pub type Fingerprint = [u8; 32];

/// Why the last handshake was refused, when it was the certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// Not trusted by any root and not pinned: the user may trust it.
    Untrusted(CertificateView),
    /// This server is pinned to another certificate: it changed.
    Changed(CertificateView),
}

/// The TLS setup for one server.
#[derive(Debug, Clone)]
pub struct Tls {
    config: Arc<ClientConfig>,
    refused: Arc<Mutex<Option<Refusal>>>,
}

impl Tls {
    /// Trusts the bundled and the OS roots, and `pin` (a certificate the user accepted).
    pub fn new(pin: Option<Fingerprint>) -> Result<Tls, String> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut roots = RootCertStore::empty();
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        let native = rustls_native_certs::load_native_certs();
        for e in &native.errors {
            tracing::debug!(error = %e, "cannot read part of the OS certificate store");
        }
        let (added, ignored) = roots.add_parsable_certificates(native.certs);
        tracing::debug!(added, ignored, "OS certificate store loaded");
        let inner = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
            .build()
            .map_err(|e| format!("cannot set up certificate checks: {e}"))?;
        let refused = Arc::new(Mutex::new(None));
        let verifier = Arc::new(Verifier {
            inner,
            pin,
            refused: refused.clone(),
        });
        let config = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("cannot set up TLS: {e}"))?
            .dangerous()
            .with_custom_certificate_verifier(verifier)
            .with_no_client_auth();
        Ok(Tls {
            config: Arc::new(config),
            refused,
        })
    }

    /// The rustls configuration (for reqwest's `use_preconfigured_tls` and the socket).
    pub fn config(&self) -> Arc<ClientConfig> {
        self.config.clone()
    }

    /// What the last refused handshake presented (and forgets it).
    pub fn refusal(&self) -> Option<Refusal> {
        self.refused.lock().ok().and_then(|mut r| r.take())
    }
}

#[derive(Debug)]
struct Verifier {
    inner: Arc<WebPkiServerVerifier>,
    pin: Option<Fingerprint>,
    refused: Arc<Mutex<Option<Refusal>>>,
}

impl ServerCertVerifier for Verifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let error = match self.inner.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        ) {
            Ok(verified) => return Ok(verified),
            Err(e @ rustls::Error::InvalidCertificate(_)) => e,
            Err(e) => return Err(e),
        };
        let fingerprint = fingerprint(end_entity);
        if self.pin == Some(fingerprint) {
            // The user trusted exactly this certificate for this server.
            return Ok(ServerCertVerified::assertion());
        }
        let view = describe(end_entity);
        let refusal = if self.pin.is_some() {
            Refusal::Changed(view)
        } else {
            Refusal::Untrusted(view)
        };
        if let Ok(mut slot) = self.refused.lock() {
            *slot = Some(refusal);
        }
        Err(error)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// The SHA-256 of a certificate's DER bytes.
pub fn fingerprint(cert: &[u8]) -> Fingerprint {
    let digest = ring::digest::digest(&ring::digest::SHA256, cert);
    let mut out = [0u8; 32];
    out.copy_from_slice(digest.as_ref());
    out
}

/// `AB:CD:…`, as certificate viewers show it.
pub fn format_fingerprint(fingerprint: &Fingerprint) -> String {
    fingerprint
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// Reads a fingerprint as [`format_fingerprint`] writes it (colons and case optional).
pub fn parse_fingerprint(text: &str) -> Option<Fingerprint> {
    let hex: Vec<u8> = text
        .bytes()
        .filter(|b| *b != b':' && !b.is_ascii_whitespace())
        .collect();
    if hex.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, pair) in hex.chunks(2).enumerate() {
        let pair = std::str::from_utf8(pair).ok()?;
        out[i] = u8::from_str_radix(pair, 16).ok()?;
    }
    Some(out)
}

/// Fingerprint, subject and issuer of a certificate, for people.
pub fn describe(cert: &[u8]) -> CertificateView {
    let (subject, issuer) = match x509_parser::parse_x509_certificate(cert) {
        Ok((_, parsed)) => (parsed.subject().to_string(), parsed.issuer().to_string()),
        Err(_) => ("(unreadable)".to_owned(), "(unreadable)".to_owned()),
    };
    CertificateView {
        sha256: format_fingerprint(&fingerprint(cert)),
        subject,
        issuer,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_round_trip() {
        let f = fingerprint(b"not really a certificate");
        let text = format_fingerprint(&f);
        assert_eq!(text.len(), 32 * 3 - 1);
        assert_eq!(parse_fingerprint(&text), Some(f));
        assert_eq!(
            parse_fingerprint(&text.replace(':', "").to_lowercase()),
            Some(f)
        );
        assert_eq!(parse_fingerprint("AB:CD"), None);
        assert_eq!(parse_fingerprint(&"zz".repeat(32)), None);
    }
}
