//! A node's part in the cluster (`tern node`): its QUIC transport, membership joined through seeds (retried in
//! the background until the node has company), its load published from the host, and a graceful leave.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use tern_replication::{CaError, IncomingStream, NodeIdentity, PeerInfo, Transport};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tracing::{info, warn};

use super::backend::ClusterBackend;
use super::directory::ClusterDirectory;
use super::directory::acceptor::Acceptor;
use super::directory::paxos::Proposer;
use super::directory::voters::{TransportVoters, VoterSpec};
use super::discovery::resolve;
use super::routing::bridge;
use super::rpc::{
    self, AcceptValue, CallsMessage, DirectoryMessage, ForgetActor, ForwardAction, ForwardCreate, ForwardDestroy,
    ForwardDrain, ForwardExport, ForwardInspect, ForwardKvGet, ForwardList, ForwardMigrate, ForwardQueueSend,
    ForwardRawRequest, ForwardReplicas, ForwardSleep, MembershipMessage, PrepareBallot, PullMembers, ReadRegister,
    answer, service,
};
use super::{Members, Membership, MembershipConfig, MembershipError, Profile};
use crate::handoff::{Handoff, LeaseTiming};
use crate::replica::{Replication, ReplicationSettings};
use crate::runtime::Host;

/// Streams peers opened (bridged sockets) not yet picked up.
const STREAM_QUEUE: usize = 256;
/// Datagrams received but not yet handled by membership; more are dropped (SWIM tolerates loss).
const DATAGRAM_QUEUE: usize = 1024;
/// The first wait between join attempts while the node is alone; it doubles up to [`JOIN_BACKOFF_MAX`].
const JOIN_BACKOFF_INITIAL: Duration = Duration::from_secs(1);
/// The longest wait between join attempts.
const JOIN_BACKOFF_MAX: Duration = Duration::from_secs(30);
/// How long pulling a seed's member list may take.
const MEMBERS_TIMEOUT: Duration = Duration::from_secs(5);
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
    /// The gateway URL the node announces; by default `http://` (`https://` with
    /// [`gateway_https`](Self::gateway_https)) and the gateway's address, with the advertised host in place of an
    /// unspecified one (`0.0.0.0`).
    pub gateway_url: Option<String>,
    /// Whether the gateway serves HTTPS, so that the default gateway URL starts with `https://`;
    /// [`serve`](crate::server::serve) sets it from
    /// [`NodeConfig::gateway_tls`](crate::server::NodeConfig::gateway_tls).
    pub gateway_https: bool,
    /// The node's zone within its region, if any.
    pub zone: Option<String>,
    /// The seeds: QUIC addresses (`host:port`) or DNS names (`dns:name[:port]`: SRV records, else A/AAAA records
    /// with the port, default 7420); empty for the first node of a cluster.
    pub seeds: Vec<String>,
    /// The DNS server (UDP and TCP) that resolves `dns:` seeds instead of the system's resolver configuration.
    pub dns_server: Option<SocketAddr>,
    /// Membership timing.
    pub profile: Profile,
    /// The directory's static voter set (the same on every node); empty for a node that cannot create or find
    /// actors (membership only).
    pub voters: Vec<VoterSpec>,
    /// How the actors homed here are replicated.
    pub replication: ReplicationSettings,
    /// On a graceful stop, move every actor homed here to other nodes before leaving (`--drain-on-stop`).
    pub drain_on_stop: bool,
    /// When actors move to the region their calls come from (`--follow-traffic`).
    pub follow_traffic: crate::handoff::FollowTraffic,
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
    backend: ClusterBackend,
    stop: oneshot::Sender<()>,
    task: JoinHandle<()>,
}

impl ClusterNode {
    /// Starts the transport and membership of the node whose gateway listens on `gateway_addr` in `region`, then
    /// joins the seeds and publishes `host`'s load in the background. Must be called within a Tokio runtime.
    pub async fn start(
        config: &ClusterConfig,
        region: &str,
        gateway_addr: SocketAddr,
        host: Host,
    ) -> Result<ClusterNode, ClusterError> {
        let identity = NodeIdentity::from_files(&config.tls_ca, &config.tls_cert, &config.tls_key)?;
        let (datagrams_tx, datagrams) = mpsc::channel(DATAGRAM_QUEUE);
        let (streams_tx, streams) = mpsc::channel(STREAM_QUEUE);
        let acceptor = Arc::new(Acceptor::new(host.clone()));
        let backend_slot: Arc<OnceLock<ClusterBackend>> = Arc::default();
        let replication_slot: Arc<OnceLock<Replication>> = Arc::default();
        let directory_service = {
            let (acceptor, backend, replication) = (acceptor.clone(), backend_slot.clone(), replication_slot.clone());
            move |peer: PeerInfo, request: Bytes| {
                let (acceptor, backend, replication) = (acceptor.clone(), backend.clone(), replication.clone());
                async move { serve_directory(&acceptor, backend.get(), replication.get(), peer, &request).await }
            }
        };
        let calls_service = {
            let backend = backend_slot.clone();
            move |peer: PeerInfo, request: Bytes| {
                let backend = backend.clone();
                async move { serve_calls(backend.get(), &peer, &request).await }
            }
        };
        let replication_service = {
            let replication = replication_slot.clone();
            move |peer: PeerInfo, request: Bytes| {
                let replication = replication.clone();
                async move {
                    match replication.get() {
                        Some(replication) => replication.serve(peer, request).await,
                        None => Err(failed("the node is starting")),
                    }
                }
            }
        };
        let handoff_slot: Arc<OnceLock<Arc<Handoff>>> = Arc::default();
        let handoff_service = {
            let handoff = handoff_slot.clone();
            move |_peer: PeerInfo, request: Bytes| {
                let handoff = handoff.clone();
                async move {
                    match handoff.get() {
                        Some(handoff) => handoff.serve(request).await,
                        None => Err(failed("the node is starting, or has no directory")),
                    }
                }
            }
        };
        let membership_service = {
            let backend = backend_slot.clone();
            move |_peer: PeerInfo, request: Bytes| {
                let backend = backend.clone();
                async move { serve_membership(backend.get(), &request).await }
            }
        };
        let transport = Transport::builder(identity, config.quic_listen)
            .config(config.profile.transport())
            .on_datagram(datagrams_tx)
            .serve(service::DIRECTORY, directory_service)
            .serve(service::CALLS, calls_service)
            .serve(service::MEMBERSHIP, membership_service)
            .serve(service::REPLICATION, replication_service)
            .serve(service::HANDOFF, handoff_service)
            .accept_streams(service::BRIDGE, streams_tx)
            .bind()
            .map_err(|source| ClusterError::Transport { addr: config.quic_listen, source })?;
        let mut membership_config = MembershipConfig::new(region, gateway_url(config, gateway_addr), config.profile);
        membership_config.zone = config.zone.clone();
        membership_config.advertise_addr = config.advertise;
        let membership = Membership::start(transport.clone(), datagrams, membership_config)?;
        let members = membership.members();
        let local = members.local().node;
        let directory = (!config.voters.is_empty()).then(|| {
            let voters = TransportVoters::new(
                config.voters.clone(),
                local.id.clone(),
                acceptor,
                transport.clone(),
                members.clone(),
            );
            ClusterDirectory::new(Proposer::new(local.id.clone(), Arc::new(voters)), host.core.metrics.clone())
        });
        let lease = match directory {
            Some(_) => Some(Handoff::initial_lease(&host, LeaseTiming::for_profile(config.profile)).await),
            None => None,
        };
        let backend = ClusterBackend::new(
            host.clone(),
            local.id.clone(),
            local.region.clone(),
            transport.clone(),
            members.clone(),
            directory,
            lease.clone(),
        );
        let replication = Replication::new(
            host.core.clone(),
            transport.clone(),
            members.clone(),
            local.id.clone(),
            config.replication,
            lease.clone(),
            Some(backend.clone()),
        );
        let _ = replication_slot.set(replication.clone());
        let _ = host.core.replicator.set(Arc::new(replication.clone()));
        // Calls from other nodes run actors only once replication is in place (it checks the lease and takes
        // each database's checkpoints over before a turn writes).
        let _ = backend_slot.set(backend.clone());
        if let Some(lease) = lease {
            let (id, region) = (local.id.clone(), local.region.clone());
            let parts = (backend.clone(), host.clone(), replication, members.clone(), lease);
            let handoff = Handoff::start(id, region, parts, config.follow_traffic);
            backend.set_mover(handoff.clone());
            let _ = handoff_slot.set(handoff);
        }
        tokio::spawn(settle_creates(backend.clone()));
        tokio::spawn(serve_streams(host.clone(), streams));
        info!(
            id = %local.id, region = %local.region, quic = %local.quic_addr, gateway = %local.gateway_url,
            "cluster node started"
        );
        let (stop, stopped) = oneshot::channel();
        let seeds = Seeds { list: config.seeds.clone(), dns_server: config.dns_server };
        let task = tokio::spawn(run(membership, transport, seeds, host, stopped));
        Ok(ClusterNode { members, backend, stop, task })
    }

    /// The membership view.
    pub fn members(&self) -> Members {
        self.members.clone()
    }

    /// The gateway's backend: serves requests here or forwards them to the actor's home.
    pub fn backend(&self) -> ClusterBackend {
        self.backend.clone()
    }

    /// Leaves the cluster (peers see this node down within moments) and closes the transport.
    pub async fn stop(self) {
        let _ = self.stop.send(());
        if let Err(e) = self.task.await {
            warn!(error = %e, "the cluster task failed");
        }
    }
}

/// The seeds to join, and the DNS server that resolves the `dns:` ones (else the system's configuration).
struct Seeds {
    list: Vec<String>,
    dns_server: Option<SocketAddr>,
}

/// A handler's failure as the transport reports it to the caller.
fn failed(e: impl std::fmt::Display) -> tern_replication::Error {
    tern_replication::Error::handler(e.to_string())
}

/// The node's backend, once the node has finished starting.
fn started(backend: Option<&ClusterBackend>) -> Result<&ClusterBackend, tern_replication::Error> {
    backend.ok_or_else(|| failed("the node is starting"))
}

/// The directory service: votes on the registers this node keeps as a voter, and cache invalidations.
async fn serve_directory(
    acceptor: &Acceptor,
    backend: Option<&ClusterBackend>,
    replication: Option<&Replication>,
    peer: PeerInfo,
    request: &[u8],
) -> Result<Bytes, tern_replication::Error> {
    Ok(match rpc::decode::<DirectoryMessage>(request).map_err(failed)? {
        DirectoryMessage::Read(call) => answer::<ReadRegister>(&acceptor.read(&call.register).await.map_err(failed)?),
        DirectoryMessage::Prepare(call) => {
            answer::<PrepareBallot>(&acceptor.prepare(&call.register, &call.ballot).await.map_err(failed)?)
        }
        DirectoryMessage::Accept(call) => {
            answer::<AcceptValue>(&acceptor.accept(&call.register, &call.ballot, call.value).await.map_err(failed)?)
        }
        DirectoryMessage::Forget(call) => {
            if let Some(backend) = backend {
                backend.forget(&call.actor_id, &call.name, &call.key);
            }
            if call.destroyed
                && let Some(replication) = replication
            {
                // A destroyed actor's data goes from every node, its replicas' copies included.
                replication.drop_copy(&call.actor_id).await.map_err(failed)?;
            }
            tracing::debug!(peer = %peer.name, actor_id = %call.actor_id, destroyed = call.destroyed, "forgot an actor's placement");
            answer::<ForgetActor>(&())
        }
    })
}

/// The calls service: client calls forwarded to this node.
async fn serve_calls(
    backend: Option<&ClusterBackend>,
    peer: &PeerInfo,
    request: &[u8],
) -> Result<Bytes, tern_replication::Error> {
    let backend = started(backend)?;
    Ok(match rpc::decode::<CallsMessage>(request).map_err(failed)? {
        CallsMessage::Create(call) => answer::<ForwardCreate>(&backend.serve_forwarded(call, &peer.name).await),
        CallsMessage::List(call) => answer::<ForwardList>(&backend.serve_forwarded(call, &peer.name).await),
        CallsMessage::Destroy(call) => answer::<ForwardDestroy>(&backend.serve_forwarded(call, &peer.name).await),
        CallsMessage::Sleep(call) => answer::<ForwardSleep>(&backend.serve_forwarded(call, &peer.name).await),
        CallsMessage::Action(call) => answer::<ForwardAction>(&backend.serve_forwarded(call, &peer.name).await),
        CallsMessage::RawRequest(call) => answer::<ForwardRawRequest>(&backend.serve_forwarded(call, &peer.name).await),
        CallsMessage::Inspect(call) => answer::<ForwardInspect>(&backend.serve_forwarded(call, &peer.name).await),
        CallsMessage::Export(call) => answer::<ForwardExport>(&backend.serve_forwarded(call, &peer.name).await),
        CallsMessage::KvGet(call) => answer::<ForwardKvGet>(&backend.serve_forwarded(call, &peer.name).await),
        CallsMessage::QueueSend(call) => answer::<ForwardQueueSend>(&backend.serve_forwarded(call, &peer.name).await),
        CallsMessage::Replicas(call) => answer::<ForwardReplicas>(&backend.serve_forwarded(call, &peer.name).await),
        CallsMessage::Migrate(call) => answer::<ForwardMigrate>(&backend.serve_forwarded(call, &peer.name).await),
        CallsMessage::Drain(call) => answer::<ForwardDrain>(&backend.serve_forwarded(call, &peer.name).await),
    })
}

/// The membership service: the member list a joining node pulls.
async fn serve_membership(backend: Option<&ClusterBackend>, request: &[u8]) -> Result<Bytes, tern_replication::Error> {
    let backend = started(backend)?;
    Ok(match rpc::decode::<MembershipMessage>(request).map_err(failed)? {
        MembershipMessage::Members(PullMembers) => answer::<PullMembers>(&backend.live_member_addrs()),
    })
}

/// Settles the creates an earlier run left in the middle, and from then on every create left undecided, retrying
/// each time until the directory answers.
async fn settle_creates(backend: ClusterBackend) {
    loop {
        let mut wait = JOIN_BACKOFF_INITIAL;
        loop {
            tokio::time::sleep(wait).await;
            if backend.settle_creates().await == 0 {
                break;
            }
            wait = (wait * 2).min(JOIN_BACKOFF_MAX);
        }
        backend.creates_left_unsettled().await;
    }
}

/// Serves the bridged sockets peers open, each on its own task.
async fn serve_streams(host: Host, mut streams: mpsc::Receiver<IncomingStream>) {
    while let Some(stream) = streams.recv().await {
        let host = host.clone();
        tokio::spawn(async move { bridge::serve(host, &stream.header, stream.send, stream.recv).await });
    }
}

/// Joins and publishes load until told to stop (or until its handle is gone), then leaves and closes.
async fn run(membership: Membership, transport: Transport, seeds: Seeds, host: Host, stopped: oneshot::Receiver<()>) {
    let work =
        async { tokio::join!(join(&membership, &transport, &seeds), publish_load(&membership, &host, &transport)) };
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
async fn join(membership: &Membership, transport: &Transport, seeds: &Seeds) {
    if seeds.list.is_empty() {
        info!("no seeds to join: waiting for other nodes to join this one");
        return;
    }
    let members = membership.members();
    let mut wait = JOIN_BACKOFF_INITIAL;
    while !has_company(&members) {
        let addrs = resolve(&seeds.list, seeds.dns_server).await;
        if addrs.is_empty() {
            warn!(retry_in = ?wait, "no seed address resolved ({})", seeds.list.join(", "));
        } else {
            match membership.join(addrs.clone()).await {
                Ok(0) => {
                    info!("every seed is this node: waiting for other nodes to join this one");
                    return;
                }
                Ok(reached) => {
                    info!(reached, "announced to the seeds");
                    announce_to_known(membership, transport, &addrs).await;
                }
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

/// Pulls the member list of the first seed that gives it and announces this node to every member on it, so a
/// joiner learns the whole cluster at once instead of from gossip feeds a packet at a time.
async fn announce_to_known(membership: &Membership, transport: &Transport, seeds: &[SocketAddr]) {
    for &seed in seeds {
        match rpc::ask(transport, seed, PullMembers, MEMBERS_TIMEOUT).await {
            Ok(known) => {
                if let Err(e) = membership.join(known).await {
                    warn!("cannot announce to the cluster's members: {e}");
                }
                return;
            }
            Err(e) => warn!(%seed, "cannot pull the member list: {e}"),
        }
    }
}

/// Whether the view holds a live node besides this one.
fn has_company(members: &Members) -> bool {
    members.all().iter().any(|member| !member.local && member.state.is_live())
}

/// Hands the host's load to membership every [`LOAD_INTERVAL`] (and the count of QUIC connections to the
/// metrics), until membership stops.
async fn publish_load(membership: &Membership, host: &Host, transport: &Transport) {
    let mut tick = tokio::time::interval(LOAD_INTERVAL);
    loop {
        tick.tick().await;
        if membership.set_load(host.load()).await.is_err() {
            return;
        }
        host.core.metrics.set_quic_connections(transport.open_connections() as u64);
    }
}

/// The gateway URL to announce: the configured one, else `http://` (or `https://`) and the gateway's address, with
/// the advertised host in place of an unspecified one.
fn gateway_url(config: &ClusterConfig, gateway_addr: SocketAddr) -> String {
    if let Some(url) = &config.gateway_url {
        return url.clone();
    }
    let ip = match config.advertise {
        Some(advertised) if gateway_addr.ip().is_unspecified() => advertised.ip(),
        _ => gateway_addr.ip(),
    };
    let scheme = if config.gateway_https { "https" } else { "http" };
    format!("{scheme}://{}", SocketAddr::new(ip, gateway_addr.port()))
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
            gateway_https: false,
            zone: None,
            seeds: Vec::new(),
            dns_server: None,
            profile: Profile::Lan,
            voters: Vec::new(),
            replication: ReplicationSettings::default(),
            drain_on_stop: false,
            follow_traffic: Default::default(),
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
        let https = ClusterConfig { gateway_https: true, ..config(Some("10.0.0.5:7420"), None) };
        assert_eq!(gateway_url(&https, any), "https://10.0.0.5:6420");
        let explicit = ClusterConfig { gateway_https: true, ..config(None, Some("https://iad.example.com")) };
        assert_eq!(gateway_url(&explicit, any), "https://iad.example.com");
    }
}
