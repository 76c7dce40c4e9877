//! The node's transport: one QUIC endpoint, the peer table, and the calls the node makes on its peers.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use quinn::{ConnectError, RecvStream, SendDatagramError, SendStream};
use tokio::sync::mpsc;

use super::ca::NodeIdentity;
use super::config::TransportConfig;
use super::error::{Error, connection_error};
use super::peers::{Backoff, Link, PeerInfo, Peers};
use super::serve;
use super::service::{Service, Services};
use super::tls::{self, QuicTuning};
use super::version;
use super::wire::{self, KIND_REQUEST, KIND_STREAM, Response, WireError};

/// A datagram received from a peer.
#[derive(Clone, Debug)]
pub struct Datagram {
    /// Who sent it.
    pub peer: PeerInfo,
    /// What it carries.
    pub payload: Bytes,
}

/// A stream a peer opened with [`Transport::open_uni`] or [`Transport::open_bi`], delivered to the receiver of
/// its service.
#[derive(Debug)]
pub struct IncomingStream {
    /// Who opened it.
    pub peer: PeerInfo,
    /// The header the opener sent with it (what the stream is for).
    pub header: Bytes,
    /// Our sending half, for a bidirectional stream.
    pub send: Option<SendStream>,
    /// What the opener writes after the header.
    pub recv: RecvStream,
}

/// Sets up a [`Transport`]: its identity, address, tunables and the receivers of what peers send.
pub struct TransportBuilder {
    identity: NodeIdentity,
    listen: SocketAddr,
    config: TransportConfig,
    services: Services,
    /// The first registration that failed (two registrations of one service), reported by [`Self::bind`].
    invalid: Option<Error>,
    datagrams: Option<mpsc::Sender<Datagram>>,
}

impl TransportBuilder {
    /// Replaces the default tunables.
    pub fn config(mut self, config: TransportConfig) -> Self {
        self.config = config;
        self
    }

    /// Serves peers' requests for `service` with `handler`; its error reaches the caller as [`Error::Remote`].
    /// A request for a service without a handler fails with [`Error::UnknownService`]; a handler that panics
    /// fails its request only. Registering one service twice makes [`bind`](Self::bind) fail.
    pub fn serve<F, Fut>(mut self, service: Service, handler: F) -> Self
    where
        F: Fn(PeerInfo, Bytes) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Bytes, Error>> + Send + 'static,
    {
        let handler = Arc::new(move |peer, request| Box::pin(handler(peer, request)) as _);
        if let Err(e) = self.services.serve(service, handler) {
            self.invalid.get_or_insert(e);
        }
        self
    }

    /// Delivers peers' datagrams to `sender`. Without it, they are dropped.
    pub fn on_datagram(mut self, sender: mpsc::Sender<Datagram>) -> Self {
        self.datagrams = Some(sender);
        self
    }

    /// Delivers the streams peers open for `service` to `sender`. Streams for a service without a receiver are
    /// refused. Registering one service twice makes [`bind`](Self::bind) fail.
    pub fn accept_streams(mut self, service: Service, sender: mpsc::Sender<IncomingStream>) -> Self {
        if let Err(e) = self.services.accept_streams(service, sender) {
            self.invalid.get_or_insert(e);
        }
        self
    }

    /// Binds the UDP socket and starts serving. Must be called within a Tokio runtime.
    pub fn bind(self) -> Result<Transport, Error> {
        if let Some(e) = self.invalid {
            return Err(e);
        }
        self.config.validate()?;
        let versions = version::preference_order(&self.config.versions);
        let tuning =
            QuicTuning { keep_alive_interval: self.config.keep_alive_interval, idle_timeout: self.config.idle_timeout };
        let server = tls::server_config(&self.identity, &versions, &tuning)?;
        let client = tls::client_config(&self.identity, &versions, &tuning)?;
        let bind_error = |e: std::io::Error| Error::Bind { addr: self.listen, reason: e.to_string() };
        let socket = std::net::UdpSocket::bind(self.listen).map_err(bind_error)?;
        let endpoint_config = tls::endpoint_config(&self.identity);
        let mut endpoint = quinn::Endpoint::new(endpoint_config, Some(server), socket, Arc::new(quinn::TokioRuntime))
            .map_err(bind_error)?;
        endpoint.set_default_client_config(client);
        let local_addr = endpoint.local_addr().map_err(bind_error)?;
        let ours = version::describe(&versions);
        let backoff = Backoff { initial: self.config.backoff_initial, max: self.config.backoff_max };
        let shared = Arc::new(Shared {
            endpoint: endpoint.clone(),
            name: self.identity.name.clone(),
            local_addr,
            peers: Peers::new(backoff, ours.clone()),
            ours,
            config: TransportConfig { versions, ..self.config },
            services: self.services,
            datagrams: self.datagrams,
        });
        tokio::spawn(serve::accept_loop(shared.clone()));
        Ok(Transport { shared, _guard: Arc::new(CloseOnDrop(endpoint)) })
    }
}

/// What the transport's tasks share.
pub(crate) struct Shared {
    pub endpoint: quinn::Endpoint,
    pub name: String,
    pub local_addr: SocketAddr,
    pub peers: Peers,
    /// Our protocol versions, for error messages.
    pub ours: String,
    pub config: TransportConfig,
    pub services: Services,
    pub datagrams: Option<mpsc::Sender<Datagram>>,
}

impl Shared {
    async fn link(self: &Arc<Self>, addr: SocketAddr) -> Result<Link, Error> {
        self.peers.link(addr, || self.dial(addr)).await
    }

    async fn dial(self: &Arc<Self>, addr: SocketAddr) -> Result<Link, Error> {
        // Peers are authenticated by the CA, not by the name they are dialled by (see `tls`).
        let connecting = self.endpoint.connect(addr, &addr.ip().to_string()).map_err(|e| match e {
            ConnectError::EndpointStopping => Error::Shutdown,
            other => Error::Unreachable { addr, reason: other.to_string() },
        })?;
        let conn = match tokio::time::timeout(self.config.connect_timeout, connecting).await {
            Err(_) => {
                let reason = format!("no answer within {:?}", self.config.connect_timeout);
                return Err(Error::Unreachable { addr, reason });
            }
            Ok(Err(e)) => return Err(connection_error(addr, &e, &self.ours)),
            Ok(Ok(conn)) => conn,
        };
        let link = Link::new(conn.clone()).map_err(|reason| {
            conn.close(wire::CODE_PROTOCOL, reason.as_bytes());
            Error::Protocol { addr, reason }
        })?;
        serve::spawn_connection(self.clone(), link.clone());
        Ok(link)
    }

    fn wire_error(&self, addr: SocketAddr) -> impl Fn(WireError) -> Error + '_ {
        move |e| e.into_error(addr, &self.ours)
    }

    fn check_frame(&self, size: usize) -> Result<(), Error> {
        let limit = self.config.max_frame_size;
        if size > limit {
            return Err(Error::FrameTooLarge { size: size as u64, limit: limit as u64 });
        }
        Ok(())
    }

    /// Dials `addr` if needed and opens a request's stream; nothing of the request has left when this fails.
    async fn open_request(self: &Arc<Self>, addr: SocketAddr) -> Result<(SendStream, RecvStream), Error> {
        let link = self.link(addr).await?;
        link.conn.open_bi().await.map_err(|e| connection_error(addr, &e, &self.ours))
    }

    /// Sends a request on a stream [`Shared::open_request`] opened and reads its answer. Once the first byte is
    /// written the peer may run the request, so a failure without an answer is [`Error::Unanswered`].
    async fn exchange(
        &self,
        addr: SocketAddr,
        service: Service,
        body: Bytes,
        (mut send, mut recv): (SendStream, RecvStream),
    ) -> Result<Bytes, Error> {
        let sent = async {
            wire::write_frame(&mut send, &[KIND_REQUEST, service.0], &body).await?;
            send.finish().map_err(|e| WireError::Stream(e.to_string()))
        }
        .await;
        // A peer that refuses the request (a frame over its limit) stops reading it but still answers why: read
        // the answer before reporting a failed write.
        match (wire::read_response(&mut recv, self.config.max_frame_size).await, sent) {
            (Ok(Response::Ok(response)), _) => Ok(response),
            (Ok(Response::Failed(message)), _) => Err(Error::Remote { addr, message }),
            (Ok(Response::TooLarge { size, limit }), _) => Err(Error::FrameTooLarge { size, limit }),
            (Ok(Response::UnknownService), _) => Err(Error::UnknownService { addr, service: service.0 }),
            (Err(_), Err(e)) | (Err(e), Ok(())) => match self.wire_error(addr)(e) {
                Error::Unreachable { reason, .. } => Err(Error::Unanswered { addr, reason }),
                other => Err(other),
            },
        }
    }

    /// Writes a stream's kind, service and header, which makes the stream known to the peer.
    async fn send_header(
        &self,
        addr: SocketAddr,
        service: Service,
        send: &mut SendStream,
        header: &Bytes,
    ) -> Result<(), Error> {
        wire::write_frame(send, &[KIND_STREAM, service.0], header).await.map_err(self.wire_error(addr))
    }
}

/// Closes the endpoint when the last [`Transport`] handle is dropped.
struct CloseOnDrop(quinn::Endpoint);

impl Drop for CloseOnDrop {
    fn drop(&mut self) {
        self.0.close(0u32.into(), b"shutdown");
    }
}

/// A node's transport to its peers: one QUIC endpoint (server and client at once) with mutual TLS from the cluster
/// CA, and at most one connection per peer address. Cheap to clone; the endpoint closes with the last clone, or
/// with [`close`](Self::close) (needed when the request handler itself holds a clone of the transport).
#[derive(Clone)]
pub struct Transport {
    shared: Arc<Shared>,
    _guard: Arc<CloseOnDrop>,
}

impl Transport {
    /// Starts setting up the transport of the node `identity`, listening on `listen` (port 0 picks a free port).
    pub fn builder(identity: NodeIdentity, listen: SocketAddr) -> TransportBuilder {
        TransportBuilder {
            identity,
            listen,
            config: TransportConfig::default(),
            services: Services::default(),
            invalid: None,
            datagrams: None,
        }
    }

    /// The address the endpoint is bound to.
    pub fn local_addr(&self) -> SocketAddr {
        self.shared.local_addr
    }

    /// This node's name (from its certificate).
    pub fn name(&self) -> &str {
        &self.shared.name
    }

    /// How many QUIC connections are open (dialled and accepted).
    pub fn open_connections(&self) -> usize {
        self.shared.endpoint.open_connections()
    }

    /// The measured round-trip time to the peer at `addr` (QUIC's smoothed estimate), if a connection to it is
    /// up; never dials.
    pub fn rtt(&self, addr: SocketAddr) -> Option<Duration> {
        self.shared.peers.rtt(addr)
    }

    /// Makes sure a connection to `addr` is up (dialling if needed) and tells who is there and which protocol
    /// version the connection speaks.
    pub async fn connect(&self, addr: SocketAddr) -> Result<PeerInfo, Error> {
        self.shared.link(addr).await.map(|link| link.peer)
    }

    /// Sends `request` to the handler of `service` on the peer at `addr` and returns its response, within the
    /// configured request timeout.
    pub async fn request(&self, addr: SocketAddr, service: Service, request: Bytes) -> Result<Bytes, Error> {
        self.request_with_timeout(addr, service, request, self.shared.config.request_timeout).await
    }

    /// [`request`](Self::request) with its own timeout, which covers dialling too.
    pub async fn request_with_timeout(
        &self,
        addr: SocketAddr,
        service: Service,
        request: Bytes,
        timeout: Duration,
    ) -> Result<Bytes, Error> {
        self.shared.check_frame(request.len())?;
        let deadline = tokio::time::Instant::now() + timeout;
        let stream = bounded(addr, timeout, self.shared.open_request(addr)).await?;
        let exchange = self.shared.exchange(addr, service, request, stream);
        tokio::time::timeout_at(deadline, exchange)
            .await
            .unwrap_or_else(|_| Err(Error::Unanswered { addr, reason: format!("no answer within {timeout:?}") }))
    }

    /// Sends one datagram to the peer at `addr` (dialling if needed). Delivery is not guaranteed; a datagram
    /// larger than the connection allows (about 1,200 bytes, more once path MTU discovery raises it) is refused.
    pub async fn send_datagram(&self, addr: SocketAddr, payload: Bytes) -> Result<(), Error> {
        let link = self.shared.link(addr).await?;
        let size = payload.len() as u64;
        link.conn.send_datagram(payload).map_err(|e| match e {
            SendDatagramError::TooLarge => {
                Error::FrameTooLarge { size, limit: link.conn.max_datagram_size().unwrap_or(0) as u64 }
            }
            SendDatagramError::ConnectionLost(e) => connection_error(addr, &e, &self.shared.ours),
            other => Error::Protocol { addr, reason: other.to_string() },
        })
    }

    /// Opens a unidirectional stream to `service` on the peer at `addr` for bulk transfer; the peer receives
    /// `header`, then what is written to the returned stream. Finish the stream to end the transfer.
    pub async fn open_uni(&self, addr: SocketAddr, service: Service, header: Bytes) -> Result<SendStream, Error> {
        let shared = &self.shared;
        shared.check_frame(header.len())?;
        bounded(addr, shared.config.request_timeout, async {
            let link = shared.link(addr).await?;
            let mut send = link.conn.open_uni().await.map_err(|e| connection_error(addr, &e, &shared.ours))?;
            shared.send_header(addr, service, &mut send, &header).await?;
            Ok(send)
        })
        .await
    }

    /// Opens a bidirectional stream to `service` on the peer at `addr`; the peer receives `header`, then what is
    /// written to the returned send half, and may answer on the receive half.
    pub async fn open_bi(
        &self,
        addr: SocketAddr,
        service: Service,
        header: Bytes,
    ) -> Result<(SendStream, RecvStream), Error> {
        let shared = &self.shared;
        shared.check_frame(header.len())?;
        bounded(addr, shared.config.request_timeout, async {
            let link = shared.link(addr).await?;
            let (mut send, recv) = link.conn.open_bi().await.map_err(|e| connection_error(addr, &e, &shared.ours))?;
            shared.send_header(addr, service, &mut send, &header).await?;
            Ok((send, recv))
        })
        .await
    }

    /// Closes every connection (peers see the transport shut down) and waits, at most a second, for the peers to
    /// be told. Calls made afterwards fail with [`Error::Shutdown`].
    pub async fn close(&self) {
        self.shared.endpoint.close(0u32.into(), b"shutdown");
        let _ = tokio::time::timeout(Duration::from_secs(1), self.shared.endpoint.wait_idle()).await;
    }
}

async fn bounded<T>(
    addr: SocketAddr,
    timeout: Duration,
    call: impl Future<Output = Result<T, Error>>,
) -> Result<T, Error> {
    tokio::time::timeout(timeout, call).await.unwrap_or(Err(Error::Timeout { addr, after: timeout }))
}
