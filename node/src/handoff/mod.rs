//! Actors changing home: the node's liveness lease ([`lease`]), which fences a home that can no longer reach the
//! directory's voters; renewing it, and taking actors back after a fence ([`renew`]); failover ([`failover`]),
//! which promotes a replica when its home's lease is gone; moves on demand and drains ([`migrate`]), whose
//! calls between nodes are in [`wire`]; and moves that follow an actor's traffic ([`traffic`]).

mod crash;
pub mod failover;
pub mod lease;
pub mod migrate;
mod renew;
#[cfg(test)]
mod sim;
mod traffic;
pub mod wire;

use std::sync::Arc;

pub use lease::{Lease, LeaseTiming};
pub use traffic::{FollowTraffic, Traffic};

use crate::cluster::Members;
use crate::cluster::backend::ClusterBackend;
use crate::replica::Replication;
use crate::runtime::Host;

/// The node's setting that records the liveness epoch it last held its lease under.
const EPOCH_SETTING: &str = "liveness_epoch";

/// What the lease and failover tasks share.
pub(crate) struct Handoff {
    local_id: String,
    region: String,
    backend: ClusterBackend,
    host: Host,
    replication: Replication,
    members: Members,
    lease: Lease,
    /// The actors this node is moving away.
    moving: migrate::Moving,
    /// The hand-overs to this node prepared in the directory ahead of their take-over.
    expected: migrate::Expected,
    /// When actors follow their traffic.
    follow: FollowTraffic,
}

impl Handoff {
    /// The lease this node starts with: under the epoch it last held one (recorded in `node.db`), not held yet.
    pub async fn initial_lease(host: &Host, timing: LeaseTiming) -> Lease {
        let recorded = host.core.node_db.setting(EPOCH_SETTING).await.ok().flatten();
        Lease::new(timing, recorded.and_then(|e| e.parse().ok()).unwrap_or(0))
    }

    /// Starts renewing `lease`, watching for homes to fail over from, settling the hand-offs a previous run left
    /// unfinished, and moving actors to where their traffic comes from (`follow`), for as long as the runtime runs.
    pub fn start(
        local_id: String,
        region: String,
        (backend, host, replication, members, lease): (ClusterBackend, Host, Replication, Members, Lease),
        follow: FollowTraffic,
    ) -> Arc<Handoff> {
        let (moving, expected) = (migrate::Moving::default(), migrate::Expected::default());
        let handoff = Arc::new(Handoff {
            local_id,
            region,
            backend,
            host,
            replication,
            members,
            lease,
            moving,
            expected,
            follow,
        });
        tokio::spawn(migrate::settle_unfinished(handoff.clone()));
        tokio::spawn(renew::run(handoff.clone()));
        tokio::spawn(failover::run(handoff.clone()));
        tokio::spawn(traffic::run(handoff.clone()));
        handoff
    }

    /// Answers a peer's call on the hand-off service.
    pub async fn serve(&self, request: bytes::Bytes) -> Result<bytes::Bytes, tern_replication::Error> {
        use crate::cluster::rpc;
        let message = rpc::decode::<wire::HandoffMessage>(&request).map_err(tern_replication::Error::handler)?;
        Ok(match message {
            wire::HandoffMessage::TakeHome(call) => rpc::answer::<wire::TakeHome>(&self.take_home(call).await),
            wire::HandoffMessage::Expect(call) => rpc::answer::<wire::Expect>(&self.expect(call).await),
        })
    }
}

impl crate::cluster::backend::Mover for Handoff {
    fn migrate<'a>(
        &'a self,
        actor_id: &'a str,
        target: &'a tern_gateway::backend::MigrationTarget,
    ) -> futures_util::future::BoxFuture<'a, Result<tern_gateway::backend::Migration, tern_proto::ClientError>> {
        Box::pin(Handoff::migrate(self, actor_id, target))
    }

    fn drain(
        &self,
    ) -> futures_util::future::BoxFuture<'_, Result<tern_gateway::backend::DrainReport, tern_proto::ClientError>> {
        Box::pin(Handoff::drain(self))
    }
}
