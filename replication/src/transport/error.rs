//! The transport's errors, and how QUIC and TLS failures map onto them.

use std::net::SocketAddr;
use std::time::Duration;

use quinn::{ConnectionError, TransportErrorCode};

/// A failure of the node-to-node transport. Cheap to clone: a peer in backoff answers with its last error.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// No connection to the peer could be made or kept (nothing answers, the connection was lost or closed).
    #[error("peer {addr} is unreachable: {reason}")]
    Unreachable {
        /// The peer's address.
        addr: SocketAddr,
        /// What happened.
        reason: String,
    },
    /// The TLS handshake failed on a certificate: the peer's is not from the cluster CA, or the peer refused ours.
    #[error("certificate refused between this node and {addr}: {reason}")]
    RefusedCertificate {
        /// The peer's address.
        addr: SocketAddr,
        /// What the TLS layer reported.
        reason: String,
    },
    /// The peer speaks none of the inter-node protocol versions this node offers.
    #[error("peer {addr} speaks none of our inter-node protocol versions ({ours})")]
    VersionMismatch {
        /// The peer's address.
        addr: SocketAddr,
        /// The versions this node offered, e.g. `tern/2, tern/1`.
        ours: String,
    },
    /// Dialling the peer or opening a stream took longer than the timeout; nothing of the request was sent.
    #[error("request to {addr} timed out after {after:?}")]
    Timeout {
        /// The peer's address.
        addr: SocketAddr,
        /// The timeout that elapsed.
        after: Duration,
    },
    /// The request was sent, in part or whole, and no answer came: the connection was lost or the timeout
    /// elapsed. The peer may have run it (see [`Error::may_have_run`]).
    #[error("request to {addr} got no answer: {reason}")]
    Unanswered {
        /// The peer's address.
        addr: SocketAddr,
        /// What happened.
        reason: String,
    },
    /// A frame (request, response, stream header or datagram) exceeds the limit of the side that refused it.
    #[error("frame of {size} bytes exceeds the limit of {limit} bytes")]
    FrameTooLarge {
        /// The frame's size in bytes.
        size: u64,
        /// The limit in bytes.
        limit: u64,
    },
    /// The peer's request handler failed; `message` is its error.
    #[error("request handler of {addr} failed: {message}")]
    Remote {
        /// The peer's address.
        addr: SocketAddr,
        /// The handler's error message.
        message: String,
    },
    /// The peer serves no requests for this service (it runs a build without it, or the service tag is wrong).
    #[error("peer {addr} does not serve service {service}")]
    UnknownService {
        /// The peer's address.
        addr: SocketAddr,
        /// The service's tag.
        service: u8,
    },
    /// An error raised by a request handler (see [`Error::handler`]); the caller receives it as [`Error::Remote`].
    #[error("{0}")]
    Handler(String),
    /// The peer broke the inter-node wire protocol (malformed frame, reset stream, unsupported datagrams).
    #[error("protocol error with {addr}: {reason}")]
    Protocol {
        /// The peer's address.
        addr: SocketAddr,
        /// What went wrong.
        reason: String,
    },
    /// The transport could not be set up (invalid configuration, TLS setup).
    #[error("invalid transport configuration: {0}")]
    Config(String),
    /// The UDP socket could not be bound.
    #[error("cannot listen on {addr}: {reason}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The operating system's error.
        reason: String,
    },
    /// This transport has been shut down.
    #[error("the transport is shut down")]
    Shutdown,
}

impl Error {
    /// An error for a request handler to return: the caller receives `message` in [`Error::Remote`].
    pub fn handler(message: impl std::fmt::Display) -> Self {
        Self::Handler(message.to_string())
    }

    /// Whether a request that failed with this error may have run on the peer: it reached the peer's handler
    /// ([`Error::Remote`]), or it left and no well-formed answer came ([`Error::Unanswered`],
    /// [`Error::Protocol`]). Every other failure of a request means its handler never ran, so sending it again
    /// (to the same peer or another) cannot run it twice.
    pub fn may_have_run(&self) -> bool {
        matches!(self, Self::Remote { .. } | Self::Unanswered { .. } | Self::Protocol { .. })
    }

    /// Whether the peer refused to talk to us at the TLS level (certificate or version): re-dialling at once
    /// would fail the same way.
    pub(crate) fn is_refusal(&self) -> bool {
        matches!(self, Self::RefusedCertificate { .. } | Self::VersionMismatch { .. })
    }
}

/// TLS alerts (RFC 8446 §6) that mean a certificate was refused: bad_certificate, unsupported_certificate,
/// certificate_revoked, certificate_expired, certificate_unknown, unknown_ca, access_denied, decrypt_error (a
/// signature that does not verify, e.g. a certificate from another CA with the same issuer name) and
/// certificate_required.
const CERTIFICATE_ALERTS: [u8; 9] = [42, 43, 44, 45, 46, 48, 49, 51, 116];
/// The TLS no_application_protocol alert: no common ALPN protocol, i.e. no common protocol version.
const NO_APPLICATION_PROTOCOL: u8 = 120;

/// Maps a QUIC connection failure with peer `addr` onto an [`Error`]; `ours` describes our protocol versions.
pub(crate) fn connection_error(addr: SocketAddr, error: &ConnectionError, ours: &str) -> Error {
    let unreachable = |reason: String| Error::Unreachable { addr, reason };
    match error {
        ConnectionError::TransportError(e) => transport_error(addr, e.code, &e.reason, ours),
        ConnectionError::ConnectionClosed(close) => {
            transport_error(addr, close.error_code, &String::from_utf8_lossy(&close.reason), ours)
        }
        ConnectionError::ApplicationClosed(close) => {
            unreachable(format!("the peer closed the connection ({})", String::from_utf8_lossy(&close.reason)))
        }
        ConnectionError::Reset => unreachable("the peer restarted (stateless reset)".into()),
        ConnectionError::TimedOut => unreachable("no answer (timed out)".into()),
        ConnectionError::LocallyClosed => Error::Shutdown,
        other => unreachable(other.to_string()),
    }
}

fn transport_error(addr: SocketAddr, code: TransportErrorCode, reason: &str, ours: &str) -> Error {
    let code = u64::from(code);
    match (code >> 8 == 1).then_some((code & 0xff) as u8) {
        Some(NO_APPLICATION_PROTOCOL) => Error::VersionMismatch { addr, ours: ours.to_string() },
        Some(alert) if CERTIFICATE_ALERTS.contains(&alert) => {
            let reason = if reason.is_empty() { format!("TLS alert {alert}") } else { reason.to_string() };
            Error::RefusedCertificate { addr, reason }
        }
        _ => Error::Unreachable { addr, reason: format!("connection failed: {reason} (QUIC error {code:#x})") },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn closed(error_code: TransportErrorCode) -> ConnectionError {
        let close = quinn::ConnectionClose { error_code, frame_type: None, reason: bytes::Bytes::from_static(b"why") };
        ConnectionError::ConnectionClosed(close)
    }

    #[test]
    fn tls_alerts_map_to_typed_errors() {
        let addr: SocketAddr = "127.0.0.1:7420".parse().unwrap();
        assert!(matches!(
            connection_error(addr, &closed(TransportErrorCode::crypto(120)), "tern/1"),
            Error::VersionMismatch { ours, .. } if ours == "tern/1"
        ));
        for alert in CERTIFICATE_ALERTS {
            let error = connection_error(addr, &closed(TransportErrorCode::crypto(alert)), "tern/1");
            assert!(matches!(error, Error::RefusedCertificate { .. }), "{alert}: {error}");
            assert!(error.is_refusal());
        }
        let error = connection_error(addr, &closed(TransportErrorCode::crypto(80)), "tern/1");
        assert!(matches!(error, Error::Unreachable { .. }), "{error}");
        assert!(matches!(connection_error(addr, &ConnectionError::Reset, ""), Error::Unreachable { .. }));
        assert_eq!(connection_error(addr, &ConnectionError::LocallyClosed, ""), Error::Shutdown);
    }
}
