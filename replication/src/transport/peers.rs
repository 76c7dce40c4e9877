//! The peer table: at most one live connection per peer address, dialled lazily, reused by every request,
//! datagram and stream, and re-dialled with exponential backoff after failures.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use quinn::Connection;
use quinn::crypto::rustls::HandshakeData;
use rustls::pki_types::CertificateDer;
use tokio::time::Instant;

use super::error::{Error, connection_error};
use super::tls;
use super::version::ProtocolVersion;

/// Who is at the other end of a connection, as its certificate and the handshake established.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerInfo {
    /// The peer's node name: its certificate's common name.
    pub name: String,
    /// The DNS names and IP addresses of its certificate (subject alternative names).
    pub names: Vec<String>,
    /// The peer's QUIC address (for a peer that dialled us, the address its packets come from: its endpoint's).
    pub addr: SocketAddr,
    /// The inter-node protocol version negotiated for this connection.
    pub version: ProtocolVersion,
}

/// A live connection and its peer.
#[derive(Clone)]
pub(crate) struct Link {
    pub conn: Connection,
    pub peer: PeerInfo,
}

impl Link {
    /// Reads the peer's identity and the negotiated version from an established connection.
    pub(crate) fn new(conn: Connection) -> Result<Self, String> {
        let protocol = conn
            .handshake_data()
            .and_then(|data| data.downcast::<HandshakeData>().ok())
            .and_then(|data| data.protocol)
            .ok_or("no protocol version was negotiated")?;
        let version = ProtocolVersion::from_alpn(&protocol)
            .ok_or_else(|| format!("unknown protocol {:?}", String::from_utf8_lossy(&protocol)))?;
        let certs = conn
            .peer_identity()
            .and_then(|identity| identity.downcast::<Vec<CertificateDer<'static>>>().ok())
            .ok_or("the peer presented no certificate")?;
        let leaf = certs.first().ok_or("the peer presented no certificate")?;
        let (name, names) = tls::cert_names(leaf)?;
        let addr = conn.remote_address();
        Ok(Self { conn, peer: PeerInfo { name, names, addr, version } })
    }

    fn is_live(&self) -> bool {
        self.conn.close_reason().is_none()
    }
}

/// Exponential backoff between dial attempts to an unreachable peer.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Backoff {
    pub initial: Duration,
    pub max: Duration,
}

impl Backoff {
    /// The wait after `failures` consecutive failures (at least one): `initial`, doubling, capped at `max`.
    fn delay(self, failures: u32) -> Duration {
        let factor = 1u32.checked_shl(failures.saturating_sub(1)).unwrap_or(u32::MAX);
        self.initial.saturating_mul(factor).min(self.max)
    }
}

/// What we know of one peer address.
#[derive(Default)]
struct Slot {
    link: Option<Link>,
    failures: u32,
    retry_at: Option<Instant>,
    last_error: Option<Error>,
}

impl Slot {
    fn fail(&mut self, error: Error, backoff: Backoff) -> Error {
        self.failures = self.failures.saturating_add(1);
        self.retry_at = Some(Instant::now() + backoff.delay(self.failures));
        self.last_error = Some(error.clone());
        error
    }

    fn connected(&mut self, link: Link) {
        *self = Self { link: Some(link), ..Self::default() };
    }
}

/// The peer table.
pub(crate) struct Peers {
    slots: Mutex<HashMap<SocketAddr, Arc<tokio::sync::Mutex<Slot>>>>,
    backoff: Backoff,
    /// Our protocol versions, for error messages.
    ours: String,
}

impl Peers {
    pub(crate) fn new(backoff: Backoff, ours: String) -> Self {
        Self { slots: Mutex::default(), backoff, ours }
    }

    fn slot(&self, addr: SocketAddr) -> Arc<tokio::sync::Mutex<Slot>> {
        self.slots.lock().unwrap_or_else(|e| e.into_inner()).entry(addr).or_default().clone()
    }

    /// The live connection to `addr`, dialling with `dial` if there is none, unless the peer is in backoff
    /// (then its last error). Concurrent callers wait for one dial.
    pub(crate) async fn link<F, Fut>(&self, addr: SocketAddr, dial: F) -> Result<Link, Error>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Link, Error>>,
    {
        let slot = self.slot(addr);
        let mut slot = slot.lock().await;
        if let Some(link) = slot.link.take() {
            match link.conn.close_reason() {
                None => {
                    slot.link = Some(link.clone());
                    return Ok(link);
                }
                // A peer that refused our certificate or versions would refuse a new dial too.
                Some(reason) => {
                    let error = connection_error(addr, &reason, &self.ours);
                    if error.is_refusal() {
                        return Err(slot.fail(error, self.backoff));
                    }
                }
            }
        }
        if let (Some(retry_at), Some(error)) = (slot.retry_at, &slot.last_error)
            && Instant::now() < retry_at
        {
            return Err(error.clone());
        }
        match dial().await {
            Ok(link) => {
                slot.connected(link.clone());
                Ok(link)
            }
            Err(error) => Err(slot.fail(error, self.backoff)),
        }
    }

    /// The current round-trip estimate of the live connection to `addr`, if there is one and no dial holds it.
    pub(crate) fn rtt(&self, addr: SocketAddr) -> Option<Duration> {
        let slot = self.slots.lock().unwrap_or_else(|e| e.into_inner()).get(&addr)?.clone();
        let slot = slot.try_lock().ok()?;
        slot.link.as_ref().filter(|link| link.is_live()).map(|link| link.conn.rtt())
    }

    /// Records a connection the peer dialled, so that our own traffic to it reuses it, unless a live connection
    /// exists or a dial is under way.
    pub(crate) fn adopt(&self, link: &Link) {
        let slot = self.slot(link.peer.addr);
        let Ok(mut slot) = slot.try_lock() else { return };
        if !slot.link.as_ref().is_some_and(Link::is_live) {
            slot.connected(link.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let backoff = Backoff { initial: Duration::from_millis(100), max: Duration::from_secs(2) };
        let delays: Vec<_> = (1..=7).map(|n| backoff.delay(n).as_millis()).collect();
        assert_eq!(delays, [100, 200, 400, 800, 1600, 2000, 2000]);
        assert_eq!(backoff.delay(u32::MAX), Duration::from_secs(2));
    }
}
