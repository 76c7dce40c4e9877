//! Tern's node-to-node transport: QUIC between the nodes of a cluster (quinn, rustls with ring), with mutual TLS
//! from a cluster CA and the inter-node protocol version negotiated by ALPN. It knows nothing of actors: it moves
//! bytes between authenticated nodes, and the node crate gives them meaning (SWIM packets, directory requests,
//! forwarded client calls, later WAL frames).
//!
//! # Pieces
//!
//! * [`init_ca`] and [`issue_node`] make the cluster CA and node certificates (`tern ca init`, `tern ca issue`);
//!   [`NodeIdentity`] loads a node's CA, certificate and key.
//! * [`Transport`] is one QUIC endpoint per node, server and client at once. [`Transport::builder`] registers
//!   what peers' traffic goes to, by [`Service`]: a request handler per service ([`TransportBuilder::serve`]), a
//!   stream channel per service ([`TransportBuilder::accept_streams`]), and one datagram channel
//!   ([`TransportBuilder::on_datagram`]).
//! * Calls on a peer's service, by address: [`Transport::request`] (request/response), [`Transport::open_uni`] /
//!   [`Transport::open_bi`] (streams for bulk transfer); [`Transport::send_datagram`] (one-way).
//!
//! # Guarantees
//!
//! * **Only cluster members talk.** Both ends present a certificate and check the other's against the cluster CA
//!   (TLS 1.3, no session resumption), so a node whose certificate comes from another CA can neither call nor be
//!   called: the handshake fails and the caller gets [`Error::RefusedCertificate`]. Peers are authenticated as
//!   members of the cluster, not by the name they were dialled by (nodes are dialled by address); each handler,
//!   datagram and stream comes with the peer's [`PeerInfo`] (certificate names, address, version) for the node to
//!   check what a peer claims against who it is.
//! * **Versions.** A node offers every [`ProtocolVersion`] it speaks (`tern/N` over ALPN); the server picks the
//!   highest version both speak, so nodes one version apart interoperate during a rolling upgrade, and each
//!   connection reports its version ([`PeerInfo::version`]). With no common version the handshake fails with
//!   [`Error::VersionMismatch`] on the dialling side; the other side logs it.
//! * **One connection per peer.** At most one live connection per peer address is kept, dialled on first use
//!   and reused by every call in either direction (a connection a peer dialled is adopted for our own calls to
//!   it); requests and streams are multiplexed on it without head-of-line blocking. A lost connection is
//!   re-dialled on the next call; after a failed dial (or a refusal) the peer is in exponential backoff
//!   ([`TransportConfig::backoff_initial`] doubling up to [`TransportConfig::backoff_max`]) and calls fail at once
//!   with its last error until the next attempt is due. Keep-alive pings detect a dead peer within
//!   [`TransportConfig::idle_timeout`]; a peer that crashes and restarts on the same address is detected at its
//!   first packet, because the stateless-reset key is derived from the node's private key.
//! * **Services.** Every request and stream names its service; a request for a service the peer does not serve
//!   fails with [`Error::UnknownService`], a stream for one is refused, and a handler that panics fails its own
//!   request only (the connection and every other call on it go on).
//! * **Requests** run on their own bidirectional stream: a length-prefixed frame each way, refused with
//!   [`Error::FrameTooLarge`] over [`TransportConfig::max_frame_size`] (on either side: sender, receiver, or a
//!   response over the caller's limit). A request either returns the handler's response, the handler's error as
//!   [`Error::Remote`], or fails. Its timeout covers the dial too: it fails with [`Error::Timeout`] if that
//!   elapses before the request left, and with [`Error::Unanswered`] if it elapses (or the connection is lost)
//!   after; the peer then drops the handler's future. [`Error::may_have_run`] tells the failures after which the
//!   handler may have run (make those requests idempotent or give them ids) from those after which it did not
//!   (sending again is safe).
//! * **Datagrams** are unreliable and unordered (QUIC datagrams): they may be lost, never corrupted, and are
//!   delivered with the sender's identity. One larger than the connection allows is refused with
//!   [`Error::FrameTooLarge`].
//! * **Streams** are reliable, ordered and flow-controlled: the receiver gets the opener's header first (what the
//!   stream is for), then the bytes written.
//! * **Shutdown.** [`Transport::close`] (or dropping the last handle) closes every connection; peers see it at
//!   once and re-dial later.

mod transport;
pub mod wal;

/// The format of a request's response on its stream, read from and written to memory exactly as the transport
/// reads and writes it on QUIC streams: for checking the format against arbitrary bytes (`tests/fuzz`).
pub mod wire {
    pub use crate::transport::wire::{Response, WireError, decode_response, encode_response};
}

pub use quinn::{RecvStream, SendStream};
pub use transport::ca::{CA_CERT_FILE, CA_KEY_FILE, CaError, CertFiles, NodeIdentity, init_ca, issue_node};
pub use transport::config::TransportConfig;
pub use transport::endpoint::{Datagram, IncomingStream, Transport, TransportBuilder};
pub use transport::error::Error;
pub use transport::peers::PeerInfo;
pub use transport::service::Service;
pub use transport::version::ProtocolVersion;
