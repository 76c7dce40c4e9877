//! Optional TLS on the gateway listener (`--gateway-tls-cert` and `--gateway-tls-key`): the gateway then serves
//! HTTPS and WSS instead of HTTP and WS.
//!
//! The certificate chain and its key (PEM) are loaded once, before the node starts ([`GatewayTls::load`]);
//! rustls (with the ring provider) does the handshakes and offers only HTTP/1.1 by ALPN, since WebSockets upgrade
//! HTTP/1.1 connections; hyper serves the gateway's router on each connection. A failed or stalled handshake closes
//! that connection only. A graceful stop stops accepting, asks every connection to close once its in-flight
//! request is answered, and waits for them, as the plain listener does.

use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;

/// How long a client may take to complete its TLS handshake before its connection is closed.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Where the gateway's TLS certificate chain and private key are (both PEM).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GatewayTls {
    /// The certificate chain, leaf first (`--gateway-tls-cert`).
    pub cert: PathBuf,
    /// The leaf certificate's private key, PKCS#8, PKCS#1 or SEC1 (`--gateway-tls-key`).
    pub key: PathBuf,
}

/// Why the gateway's certificate and key cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum GatewayTlsError {
    /// A file could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
    /// The certificate file holds no usable PEM certificate.
    #[error("{}: no usable PEM certificate: {reason}", path.display())]
    Certificate {
        /// The certificate file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The key file holds no usable PEM private key.
    #[error("{}: no usable PEM private key: {reason}", path.display())]
    Key {
        /// The key file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The key does not belong to the certificate, or rustls refuses the pair.
    #[error("the key in {} cannot serve the certificate in {}: {reason}", key.display(), cert.display())]
    Mismatch {
        /// The certificate file.
        cert: PathBuf,
        /// The key file.
        key: PathBuf,
        /// Why the pair is refused.
        reason: String,
    },
}

impl GatewayTls {
    /// The certificate chain in `cert` and its private key in `key`.
    pub fn new(cert: impl Into<PathBuf>, key: impl Into<PathBuf>) -> GatewayTls {
        GatewayTls { cert: cert.into(), key: key.into() }
    }

    /// Reads the certificate chain and key and checks that they belong together: the server configuration for
    /// the gateway's listener (TLS 1.2 and 1.3, ring provider, ALPN `http/1.1`).
    pub fn load(&self) -> Result<Arc<rustls::ServerConfig>, GatewayTlsError> {
        let cert_pem = read(&self.cert)?;
        let chain = CertificateDer::pem_slice_iter(&cert_pem)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| GatewayTlsError::Certificate { path: self.cert.clone(), reason: e.to_string() })?;
        if chain.is_empty() {
            let reason = "no `BEGIN CERTIFICATE` section found".to_string();
            return Err(GatewayTlsError::Certificate { path: self.cert.clone(), reason });
        }
        let key = PrivateKeyDer::from_pem_slice(&read(&self.key)?)
            .map_err(|e| GatewayTlsError::Key { path: self.key.clone(), reason: e.to_string() })?;
        let mismatch = |e: rustls::Error| {
            let reason = match e {
                rustls::Error::InconsistentKeys(_) => "the key does not match the certificate".to_string(),
                other => other.to_string(),
            };
            GatewayTlsError::Mismatch { cert: self.cert.clone(), key: self.key.clone(), reason }
        };
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(mismatch)?
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .map_err(mismatch)?;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Arc::new(config))
    }
}

/// The whole of a file, or a [`GatewayTlsError::Read`] naming it.
fn read(path: &Path) -> Result<Vec<u8>, GatewayTlsError> {
    std::fs::read(path).map_err(|source| GatewayTlsError::Read { path: path.to_path_buf(), source })
}

/// Serves `app` over TLS on `listener` until `stop` turns true (or its sender is gone); then stops accepting,
/// asks every connection to close once its in-flight request is answered, and waits until all have closed.
/// Upgraded connections (WebSockets) live on in their own tasks, as with `axum::serve`.
pub(crate) async fn serve(
    listener: TcpListener,
    config: Arc<rustls::ServerConfig>,
    app: axum::Router,
    mut stop: watch::Receiver<bool>,
) {
    let acceptor = TlsAcceptor::from(config);
    // Every connection task holds a clone of `open`; the stop waits until all of them are dropped.
    let (open_tx, open) = watch::channel(());
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = stop.wait_for(|stopping| *stopping) => break,
        };
        match accepted {
            Ok((tcp, peer)) => {
                let task = connection(tcp, peer, acceptor.clone(), app.clone(), stop.clone());
                let open = open.clone();
                tokio::spawn(async move {
                    task.await;
                    drop(open);
                });
            }
            Err(e) if is_connection_error(&e) => {}
            Err(e) => {
                // E.g. out of file descriptors: wait for some to be released rather than spin.
                tracing::error!(error = %e, "cannot accept a gateway connection");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
    drop(listener);
    drop(open);
    open_tx.closed().await;
}

/// An error of one incoming connection only, not of the listener.
fn is_connection_error(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused | io::ErrorKind::ConnectionAborted | io::ErrorKind::ConnectionReset
    )
}

/// One client connection: the TLS handshake, then HTTP/1.1 (with upgrades) until the client closes or the stop
/// asks it to close after its in-flight request.
async fn connection(
    tcp: TcpStream,
    peer: SocketAddr,
    acceptor: TlsAcceptor,
    app: axum::Router,
    mut stop: watch::Receiver<bool>,
) {
    // Replies and events are small writes that must leave at once, not wait for Nagle's algorithm.
    if let Err(e) = tcp.set_nodelay(true) {
        tracing::warn!(error = %e, "cannot set TCP_NODELAY on a client connection");
    }
    let tls = tokio::select! {
        handshake = tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)) => match handshake {
            Ok(Ok(tls)) => tls,
            Ok(Err(e)) => {
                tracing::debug!(%peer, error = %e, "TLS handshake failed");
                return;
            }
            Err(_) => {
                tracing::debug!(%peer, "TLS handshake timed out");
                return;
            }
        },
        _ = stop.wait_for(|stopping| *stopping) => return,
    };
    let service = TowerToHyperService::new(app);
    let conn = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(tls), service).with_upgrades();
    let mut conn = std::pin::pin!(conn);
    let mut stopping = false;
    loop {
        tokio::select! {
            result = conn.as_mut() => {
                if let Err(e) = result {
                    tracing::debug!(%peer, error = %e, "gateway connection failed");
                }
                return;
            }
            _ = stop.wait_for(|stopping| *stopping), if !stopping => {
                stopping = true;
                conn.as_mut().graceful_shutdown();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A self-signed certificate for `localhost` and its key, as PEM.
    fn self_signed() -> (String, String) {
        let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).expect("a certificate");
        (cert.cert.pem(), cert.signing_key.serialize_pem())
    }

    #[test]
    fn a_matching_pair_loads_and_offers_http_1_1_only() {
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = self_signed();
        std::fs::write(dir.path().join("cert.pem"), cert).unwrap();
        std::fs::write(dir.path().join("key.pem"), key).unwrap();
        let config = GatewayTls::new(dir.path().join("cert.pem"), dir.path().join("key.pem")).load().unwrap();
        assert_eq!(config.alpn_protocols, [b"http/1.1".to_vec()]);
    }

    #[test]
    fn missing_empty_swapped_or_mismatched_files_are_refused_with_their_name() {
        let dir = tempfile::tempdir().unwrap();
        let path = |name: &str| dir.path().join(name);
        let (cert, key) = self_signed();
        let (_, other_key) = self_signed();
        std::fs::write(path("cert.pem"), &cert).unwrap();
        std::fs::write(path("key.pem"), &key).unwrap();
        std::fs::write(path("other.key"), other_key).unwrap();
        std::fs::write(path("empty.pem"), "").unwrap();
        let error = |cert: &str, key: &str| GatewayTls::new(path(cert), path(key)).load().unwrap_err();

        let missing = error("nope.pem", "key.pem");
        assert!(matches!(&missing, GatewayTlsError::Read { path: p, .. } if *p == path("nope.pem")), "{missing}");
        assert!(missing.to_string().contains("nope.pem"), "{missing}");
        let missing_key = error("cert.pem", "nope.key");
        assert!(matches!(missing_key, GatewayTlsError::Read { .. }), "{missing_key}");

        let empty = error("empty.pem", "key.pem");
        assert!(matches!(empty, GatewayTlsError::Certificate { .. }), "{empty}");
        assert!(empty.to_string().contains("empty.pem"), "{empty}");
        let swapped = error("key.pem", "cert.pem");
        assert!(matches!(swapped, GatewayTlsError::Certificate { .. }), "{swapped}");
        let no_key = error("cert.pem", "empty.pem");
        assert!(matches!(no_key, GatewayTlsError::Key { .. }), "{no_key}");

        let mismatch = error("cert.pem", "other.key");
        assert!(matches!(mismatch, GatewayTlsError::Mismatch { .. }), "{mismatch}");
        let message = mismatch.to_string();
        assert!(message.contains("other.key") && message.contains("does not match"), "{message}");
    }
}
