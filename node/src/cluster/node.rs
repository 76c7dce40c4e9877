//! A node's part in the cluster (`tern node`): its QUIC transport, membership joined through seeds (retried in
//! the background until the node has company), its load published from the host, and a graceful leave.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use tern_replication::{CaError, NodeIdentity, Transport};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tracing::{info, warn};

use super::{Members, Membership, MembershipConfig, MembershipError, Profile};
use crate::runtime::Host;

/// Datagrams received but not yet handled by membership; more are dropped (SWIM tolerates loss).
const DATAGRAM_QUEUE: usize = 1024;
/// The first wait between join attempts while the node is alone; it doubles up to [`JOIN_BACKOFF_MAX`].
const JOIN_BACKOFF_INITIAL: Duration = Duration::from_secs(1);
/// The longest wait between join attempts.
const JOIN_BACKOFF_MAX: Duration = Duration::from_secs(30);
/// How often the host's load is handed to membership (which gossips it only when it changed, or on its refresh).
const LOAD_INTERVAL: Duration = Duration::from_secs(1);

/// The cluster part of a node's configuration.
#[derive(Clone, Debug)]
pub struct ClusterConfig {
    /// The cluster CA's certificate (PEM).
    pub tls_ca: PathBuf,
    /// The node's certificate (PEM), signed by the CA; its common name is the node's id.
    pub tls_cert: PathBuf,
    /// The node certificate's private key (PEM).
    pub tls_key: PathBuf,
    /// Where the QUIC transport listens.
    pub quic_listen: SocketAddr,
    /// The QUIC address peers dial; by default `quic_listen`, which must then be a specific address.
    pub advertise: Option<SocketAddr>,
    /// The gateway URL the node announces; by default `http://` and the gateway's address, with the advertised
    /// host in place of an unspecified one (`0.0.0.0`).
    pub gateway_url: Option<String>,
    /// The node's zone within its region, if any.
    pub zone: Option<String>,
    /// The seeds' QUIC addresses (`host:port`); empty for the first node of a cluster.
    pub seeds: Vec<String>,
    /// Membership timing.
    pub profile: Profile,
}

/// Why a node could not take its part in the cluster.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// The CA, certificate or key could not be loaded, or do not belong together.
    #[error("cannot load the node's TLS identity: {0}")]
    Identity(#[from] CaError),
    /// The QUIC endpoint could not be set up.
    #[error("cannot listen for QUIC on {addr}: {source}")]
    Transport {
        /// The address it was to listen on.
        addr: SocketAddr,
        /// Why it could not.
        source: tern_replication::Error,
    },
    /// Membership refused the configuration.
    #[error(transparent)]
    Membership(#[from] MembershipError),
}

/// A node taking part in the cluster. [`stop`](Self::stop) leaves gracefully; dropping it leaves too, unawaited.
pub struct ClusterNode {
    members: Members,
    stop: oneshot::Sender<()>,
    task: JoinHandle<()>,
}

impl ClusterNode {
    /// Starts the transport and membership of the node whose gateway listens on `gateway_addr` in `region`, then
    /// joins the seeds and publishes `host`'s load in the background. Must be called within a Tokio runtime.
    pub fn start(
        config: &ClusterConfig,
        region: &str,
        gateway_addr: SocketAddr,
        host: Host,
    ) -> Result<ClusterNode, ClusterError> {
        let identity = NodeIdentity::from_files(&config.tls_ca, &config.tls_cert, &config.tls_key)?;
        let (datagrams_tx, datagrams) = mpsc::channel(DATAGRAM_QUEUE);
        let transport = Transport::builder(identity, config.quic_listen)
            .on_datagram(datagrams_tx)
            .bind()
            .map_err(|source| ClusterError::Transport { addr: config.quic_listen, source })?;
        let mut membership_config = MembershipConfig::new(region, gateway_url(config, gateway_addr), config.profile);
        membership_config.zone = config.zone.clone();
        membership_config.advertise_addr = config.advertise;
        let membership = Membership::start(transport.clone(), datagrams, membership_config)?;
        let members = membership.members();
        let local = members.local().node;
        info!(
            id = %local.id, region = %local.region, quic = %local.quic_addr, gateway = %local.gateway_url,
            "cluster node started"
        );
        let (stop, stopped) = oneshot::channel();
        let task = tokio::spawn(run(membership, transport, config.seeds.clone(), host, stopped));
        Ok(ClusterNode { members, stop, task })
    }

    /// The membership view.
    pub fn members(&self) -> Members {
        self.members.clone()
    }

    /// Leaves the cluster (peers see this node down within moments) and closes the transport.
    pub async fn stop(self) {
        let _ = self.stop.send(());
        if let Err(e) = self.task.await {
            warn!(error = %e, "the cluster task failed");
        }
    }
}

/// Joins and publishes load until told to stop (or until its handle is gone), then leaves and closes.
async fn run(
    membership: Membership,
    transport: Transport,
    seeds: Vec<String>,
    host: Host,
    stopped: oneshot::Receiver<()>,
) {
    let work = async { tokio::join!(join(&membership, &seeds), publish_load(&membership, &host)) };
    tokio::select! {
        _ = stopped => {}
        _ = work => {}
    }
    if let Err(e) = membership.leave().await {
        warn!("cannot leave the cluster: {e}");
    }
    transport.close().await;
}

/// Announces the node to its seeds until it has company: a seed answered and brought it in, or another node
/// joined through it. Waits between attempts grow from [`JOIN_BACKOFF_INITIAL`] to [`JOIN_BACKOFF_MAX`].
async fn join(membership: &Membership, seeds: &[String]) {
    if seeds.is_empty() {
        info!("no seeds to join: waiting for other nodes to join this one");
        return;
    }
    let members = membership.members();
    let mut wait = JOIN_BACKOFF_INITIAL;
    while !has_company(&members) {
        let addrs = resolve(seeds).await;
        if addrs.is_empty() {
            warn!(retry_in = ?wait, "no seed address resolved ({})", seeds.join(", "));
        } else {
            match membership.join(addrs).await {
                Ok(0) => {
                    info!("every seed is this node: waiting for other nodes to join this one");
                    return;
                }
                Ok(reached) => info!(reached, "announced to the seeds"),
                Err(MembershipError::NoSeedReachable(why)) => warn!(retry_in = ?wait, "no seed answered: {why}"),
                Err(e) => {
                    warn!("stopped joining: {e}");
                    return;
                }
            }
        }
        tokio::time::sleep(wait).await;
        wait = (wait * 2).min(JOIN_BACKOFF_MAX);
    }
}

/// Whether the view holds a live node besides this one.
fn has_company(members: &Members) -> bool {
    members.all().iter().any(|member| !member.local && member.state.is_live())
}

/// Every address the seeds resolve to; a seed that does not resolve is logged and skipped.
async fn resolve(seeds: &[String]) -> Vec<SocketAddr> {
    let mut addrs = Vec::new();
    for seed in seeds {
        match tokio::net::lookup_host(seed.as_str()).await {
            Ok(found) => addrs.extend(found),
            Err(e) => warn!(seed, "cannot resolve the seed: {e}"),
        }
    }
    addrs
}

/// Hands the host's load to membership every [`LOAD_INTERVAL`], until membership stops.
async fn publish_load(membership: &Membership, host: &Host) {
    let mut tick = tokio::time::interval(LOAD_INTERVAL);
    loop {
        tick.tick().await;
        if membership.set_load(host.load()).await.is_err() {
            return;
        }
    }
}

/// The gateway URL to announce: the configured one, else `http://` and the gateway's address, with the advertised
/// host in place of an unspecified one.
fn gateway_url(config: &ClusterConfig, gateway_addr: SocketAddr) -> String {
    if let Some(url) = &config.gateway_url {
        return url.clone();
    }
    let ip = match config.advertise {
        Some(advertised) if gateway_addr.ip().is_unspecified() => advertised.ip(),
        _ => gateway_addr.ip(),
    };
    format!("http://{}", SocketAddr::new(ip, gateway_addr.port()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(advertise: Option<&str>, gateway_url: Option<&str>) -> ClusterConfig {
        ClusterConfig {
            tls_ca: PathBuf::new(),
            tls_cert: PathBuf::new(),
            tls_key: PathBuf::new(),
            quic_listen: "0.0.0.0:7420".parse().unwrap(),
            advertise: advertise.map(|a| a.parse().unwrap()),
            gateway_url: gateway_url.map(str::to_string),
            zone: None,
            seeds: Vec::new(),
            profile: Profile::Lan,
        }
    }

    #[test]
    fn the_gateway_url_defaults_to_a_reachable_address() {
        let any = "0.0.0.0:6420".parse().unwrap();
        let specific = "127.0.0.2:6421".parse().unwrap();
        assert_eq!(gateway_url(&config(Some("10.0.0.5:7420"), None), any), "http://10.0.0.5:6420");
        assert_eq!(gateway_url(&config(Some("10.0.0.5:7420"), None), specific), "http://127.0.0.2:6421");
        assert_eq!(gateway_url(&config(None, None), specific), "http://127.0.0.2:6421");
        assert_eq!(gateway_url(&config(None, Some("https://iad.example.com")), any), "https://iad.example.com");
        let v6 = "[::1]:6420".parse().unwrap();
        assert_eq!(gateway_url(&config(None, None), v6), "http://[::1]:6420");
    }
}
