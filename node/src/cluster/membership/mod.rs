//! Cluster membership: SWIM (foca) over the node's mutual-TLS QUIC transport.
//!
//! [`Membership::start`] runs one task that owns foca. Its packets travel only as QUIC datagrams on the
//! [`Transport`]'s connections, so a node without a certificate from the cluster CA can neither join nor speak,
//! and a packet is accepted only from the node its certificate names. Each node's identity ([`NodeInfo`]) carries
//! its id (its certificate's name), region, zone, gateway URL, QUIC address and generation; a restarted node is a
//! new generation that supersedes the old one at once. Each node's [`Load`] rides foca's custom broadcasts. The
//! result is a [`Members`] view: every node's identity, state, load and last change.
//!
//! ```ignore
//! let (datagrams_tx, datagrams) = tokio::sync::mpsc::channel(1024);
//! let transport = Transport::builder(identity, listen).on_datagram(datagrams_tx).bind()?;
//! let membership = Membership::start(transport, datagrams, MembershipConfig::new("iad", url, Profile::Wan))?;
//! membership.join(seeds).await?;            // retry while it fails and the node is alone
//! membership.set_load(Load { awake_actors: 12, open_databases: 9 }).await?;
//! let members = membership.members();       // for placement and `GET /cluster/members`
//! membership.leave().await;                 // on SIGTERM, before closing the transport
//! ```
//!
//! [`ClusterNode`](super::ClusterNode) does all of this for a node (`tern node`): transport, membership, joining in
//! the background, load from the host, leave on stop. [`Roster`] turns the view into what `GET /cluster/members`
//! reports. [`discovery`] resolves the seeds a node joins through.

mod codec;
pub mod discovery;
mod driver;
mod identity;
mod load;
mod members;
mod profile;
mod roster;
mod timers;

use std::net::SocketAddr;
use std::num::NonZeroUsize;

use tern_replication::{Datagram, Transport};
use tokio::sync::{mpsc, oneshot, watch};

use driver::{Driver, MembershipCommand};
pub use identity::NodeInfo;
pub use load::Load;
pub use members::{Member, MemberState, Members};
pub use profile::{Profile, Timing};
pub use roster::Roster;

/// The largest membership packet by default: below the smallest QUIC datagram a connection allows (about 1,200
/// bytes before path MTU discovery raises it).
pub const DEFAULT_MAX_PACKET_SIZE: usize = 1100;

/// How a node takes part in membership.
#[derive(Clone, Debug)]
pub struct MembershipConfig {
    /// The node's region, e.g. `iad`.
    pub region: String,
    /// The node's zone within its region, if any.
    pub zone: Option<String>,
    /// The public URL of the node's gateway.
    pub gateway_url: String,
    /// Where peers reach the node's QUIC transport; by default the transport's own address, which must then be
    /// a specific one (not `0.0.0.0`).
    pub advertise_addr: Option<SocketAddr>,
    /// Which run of the node this is: must grow from one run to the next. By default the start time in
    /// milliseconds; a node whose clock may step back should keep a counter in its data directory instead.
    pub generation: u64,
    /// Probe, suspicion and gossip timing: [`Profile::timing`], possibly tuned.
    pub timing: Timing,
    /// The largest membership packet; at most the QUIC datagram size. Default: [`DEFAULT_MAX_PACKET_SIZE`].
    pub max_packet_size: usize,
}

impl MembershipConfig {
    /// A node in `region` whose gateway is at `gateway_url`, with `profile`'s timing and the defaults.
    pub fn new(region: impl Into<String>, gateway_url: impl Into<String>, profile: Profile) -> Self {
        Self {
            region: region.into(),
            zone: None,
            gateway_url: gateway_url.into(),
            advertise_addr: None,
            generation: u64::try_from(crate::clock::now_ms()).unwrap_or(0),
            timing: profile.timing(),
            max_packet_size: DEFAULT_MAX_PACKET_SIZE,
        }
    }
}

/// A failure to start membership or to act on it.
#[derive(Debug, thiserror::Error)]
pub enum MembershipError {
    /// The configuration cannot work.
    #[error("invalid membership configuration: {0}")]
    Config(String),
    /// None of the seeds could be reached; the node stays alone until a later attempt succeeds.
    #[error("no seed could be reached: {0}")]
    NoSeedReachable(String),
    /// The membership task has stopped (the node left).
    #[error("membership has stopped")]
    Stopped,
}

/// A running membership: the handle on the task that owns foca. Dropping it stops the task without a word (the
/// cluster notices by probing, as after a crash); [`leave`](Self::leave) stops it gracefully.
pub struct Membership {
    commands: mpsc::Sender<MembershipCommand>,
    members: Members,
    transport: Transport,
}

impl Membership {
    /// Starts membership on `transport`, taking every datagram it receives (`datagrams` is the receiver of the
    /// channel given to [`TransportBuilder::on_datagram`](tern_replication::TransportBuilder::on_datagram)).
    /// The node starts alone; [`join`](Self::join) brings it into a cluster. Must be called within a Tokio runtime.
    pub fn start(
        transport: Transport,
        datagrams: mpsc::Receiver<Datagram>,
        config: MembershipConfig,
    ) -> Result<Self, MembershipError> {
        let local = local_identity(&transport, &config)?;
        let max_packet_size = NonZeroUsize::new(config.max_packet_size)
            .ok_or_else(|| MembershipError::Config("max_packet_size must be positive".into()))?;
        // A packet's header holds up to three identities (sender, recipient, probed member), plus a little.
        let size = codec::to_bytes(&local).map_err(|e| MembershipError::Config(e.to_string()))?.len();
        if size * 4 > max_packet_size.get() {
            let reason = format!("the node's identity takes {size} bytes: too much for packets of {max_packet_size}");
            return Err(MembershipError::Config(reason));
        }
        let (view_tx, view) = watch::channel(members::Table::new(local.clone()));
        let (commands, commands_rx) = mpsc::channel(64);
        let driver = Driver::new(local, transport.clone(), view_tx, config.timing, max_packet_size);
        tokio::spawn(driver.run(commands_rx, datagrams));
        Ok(Self { commands, members: Members::new(view), transport })
    }

    /// The membership view.
    pub fn members(&self) -> Members {
        self.members.clone()
    }

    /// Announces this node to every seed it can reach (seeds that are this node are skipped) and returns how many
    /// were reached; the seeds' replies bring in the cluster. A seed is known only by its address: the transport
    /// connects to it and learns its id from its certificate, which is all foca needs to address it. Fails if no
    /// seed could be reached; an empty list (the first node of a cluster) reaches none and succeeds.
    pub async fn join(&self, seeds: Vec<SocketAddr>) -> Result<usize, MembershipError> {
        let local = self.members.local().node;
        let own = [local.quic_addr, self.transport.local_addr()];
        let attempts = seeds.into_iter().filter(|seed| !own.contains(seed)).map(|seed| {
            let transport = self.transport.clone();
            async move { (seed, transport.connect(seed).await) }
        });
        let (mut reached, mut failures) = (0, Vec::new());
        for (seed, result) in futures_util::future::join_all(attempts).await {
            match result {
                Ok(peer) if peer.name == local.id => {}
                Ok(peer) => {
                    self.command(MembershipCommand::Announce(NodeInfo::seed(peer.name, seed))).await?;
                    reached += 1;
                }
                Err(e) => failures.push(format!("{seed}: {e}")),
            }
        }
        if reached == 0 && !failures.is_empty() {
            return Err(MembershipError::NoSeedReachable(failures.join("; ")));
        }
        Ok(reached)
    }

    /// Sets this node's load; a change is broadcast at once, and the load is re-broadcast every
    /// [`Timing::load_refresh`] anyway. Cheap when nothing changed, so it may be called on a timer.
    pub async fn set_load(&self, load: Load) -> Result<(), MembershipError> {
        self.command(MembershipCommand::SetLoad(load)).await
    }

    /// Leaves the cluster gracefully: peers see this node down within moments instead of after the suspicion
    /// timeout. Returns once the farewell had time to arrive (about one `probe_rtt`); close the transport after.
    pub async fn leave(self) -> Result<(), MembershipError> {
        let (done, left) = oneshot::channel();
        self.command(MembershipCommand::Leave(done)).await?;
        left.await.map_err(|_| MembershipError::Stopped)
    }

    async fn command(&self, command: MembershipCommand) -> Result<(), MembershipError> {
        self.commands.send(command).await.map_err(|_| MembershipError::Stopped)
    }
}

/// This node's identity, from its certificate and configuration.
fn local_identity(transport: &Transport, config: &MembershipConfig) -> Result<NodeInfo, MembershipError> {
    config.timing.validate().map_err(MembershipError::Config)?;
    if config.region.is_empty() {
        return Err(MembershipError::Config("the node needs a region".into()));
    }
    let quic_addr = config.advertise_addr.unwrap_or_else(|| transport.local_addr());
    if quic_addr.ip().is_unspecified() || quic_addr.port() == 0 {
        let reason = format!("peers cannot reach {quic_addr}: set advertise_addr to the node's QUIC address");
        return Err(MembershipError::Config(reason));
    }
    Ok(NodeInfo {
        id: transport.name().to_string(),
        generation: config.generation,
        region: config.region.clone(),
        zone: config.zone.clone(),
        gateway_url: config.gateway_url.clone(),
        quic_addr,
    })
}
