//! Shared test fixtures: a cluster directory with its CA, and nodes with a test request handler.
#![allow(dead_code)] // each test file uses a different part of the fixtures

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use tern_replication::{
    Datagram, Error, IncomingStream, NodeIdentity, PeerInfo, Service, Transport, TransportConfig, init_ca, issue_node,
};
use tokio::sync::mpsc;

/// The cap for everything that must happen "eventually".
pub const CAP: Duration = Duration::from_secs(20);

/// A cluster directory with a CA.
pub struct Cluster {
    pub dir: tempfile::TempDir,
}

impl Cluster {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        init_ca(dir.path()).unwrap();
        Self { dir }
    }

    /// The identity of node `name`, issued on first use.
    pub fn identity(&self, name: &str) -> NodeIdentity {
        if !self.dir.path().join(format!("{name}.pem")).exists() {
            issue_node(self.dir.path(), name).unwrap();
        }
        NodeIdentity::load(self.dir.path(), name).unwrap()
    }
}

/// A running node: its transport and what its peers sent it.
pub struct Node {
    pub transport: Transport,
    pub datagrams: mpsc::Receiver<Datagram>,
    pub streams: mpsc::Receiver<IncomingStream>,
    /// Signalled when a `sleep` request's handler is dropped before it finished.
    pub cancelled: mpsc::UnboundedReceiver<()>,
    /// Signalled when a `sleep` request's handler starts.
    pub sleeping: mpsc::UnboundedReceiver<()>,
}

impl Node {
    pub fn addr(&self) -> SocketAddr {
        self.transport.local_addr()
    }
}

/// Tunables for tests: quick backoff and dials, generous request timeouts.
pub fn test_config() -> TransportConfig {
    TransportConfig {
        connect_timeout: Duration::from_secs(2),
        request_timeout: Duration::from_secs(10),
        backoff_initial: Duration::from_millis(50),
        backoff_max: Duration::from_millis(500),
        ..TransportConfig::default()
    }
}

/// The service the test nodes serve requests and accept streams for.
pub const TEST_SERVICE: Service = Service(7);

/// Starts node `name` of `cluster` on a free port of 127.0.0.1.
pub fn start(cluster: &Cluster, name: &str, config: TransportConfig) -> Node {
    start_at(cluster.identity(name), "127.0.0.1:0".parse().unwrap(), config).unwrap()
}

/// Starts a node with a test handler: `fail` fails, `panic` panics, `sleep` never answers, `big:N` answers N bytes, anything
/// else is echoed as `NAME got BODY from PEER at ADDR (tern/V)`.
pub fn start_at(identity: NodeIdentity, listen: SocketAddr, config: TransportConfig) -> Result<Node, Error> {
    let name = identity.name().to_string();
    let (datagram_tx, datagrams) = mpsc::channel(1024);
    let (stream_tx, streams) = mpsc::channel(16);
    let (cancel_tx, cancelled) = mpsc::unbounded_channel();
    let (sleeping_tx, sleeping) = mpsc::unbounded_channel();
    let transport = Transport::builder(identity, listen)
        .config(config)
        .serve(TEST_SERVICE, move |peer: PeerInfo, body: Bytes| {
            let name = name.clone();
            let cancel_tx = cancel_tx.clone();
            let sleeping_tx = sleeping_tx.clone();
            async move {
                let text = String::from_utf8_lossy(&body).into_owned();
                if text == "fail" {
                    return Err(Error::handler("the handler refused"));
                }
                if text == "panic" {
                    panic!("the handler panicked on purpose");
                }
                if text == "sleep" {
                    let _guard = DropSignal(cancel_tx);
                    let _ = sleeping_tx.send(());
                    tokio::time::sleep(Duration::from_secs(3600)).await;
                }
                if let Some(size) = text.strip_prefix("big:") {
                    return Ok(Bytes::from(vec![b'x'; size.parse().unwrap()]));
                }
                Ok(Bytes::from(format!("{name} got {text} from {} at {} ({})", peer.name, peer.addr, peer.version)))
            }
        })
        .on_datagram(datagram_tx)
        .accept_streams(TEST_SERVICE, stream_tx)
        .bind()?;
    Ok(Node { transport, datagrams, streams, cancelled, sleeping })
}

struct DropSignal(mpsc::UnboundedSender<()>);

impl Drop for DropSignal {
    fn drop(&mut self) {
        let _ = self.0.send(());
    }
}

/// Retries `attempt` every 20 ms until it gives `Some`, for at most [`CAP`].
pub async fn eventually<T, F, Fut>(what: &str, mut attempt: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + CAP;
    loop {
        if let Some(value) = attempt().await {
            return value;
        }
        assert!(tokio::time::Instant::now() < deadline, "not within {CAP:?}: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A request's response as text.
pub async fn ask(from: &Transport, to: SocketAddr, body: &str) -> Result<String, Error> {
    let response = from.request(to, TEST_SERVICE, Bytes::from(body.to_string())).await?;
    Ok(String::from_utf8(response.to_vec()).unwrap())
}
