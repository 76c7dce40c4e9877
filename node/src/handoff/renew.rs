//! Renewing the node's liveness record, and taking the node's actors back after its epoch was bumped.
//!
//! The loop is [`renew_forever`], generic over what it needs from the node ([`LeaseHolder`]) and over how the
//! directory reaches its voters, so that the deterministic simulation of failover (`handoff/sim/`) runs this
//! code itself on simulated nodes.

use std::sync::Arc;

use tern_proto::ClientError;
use tokio::time::Instant;

use super::{EPOCH_SETTING, Handoff, Lease};
use crate::clock::now_ms;
use crate::cluster::directory::paxos::Voters;
use crate::cluster::directory::{ClusterDirectory, Placement};
use crate::storage::client_error;

/// What renewing the lease needs from the node it runs on.
pub(crate) trait LeaseHolder: Send + Sync {
    /// This node's id.
    fn local_id(&self) -> &str;
    /// The node's wall clock, in milliseconds since the Unix epoch.
    fn now_ms(&self) -> i64;
    /// The actors this node hosts.
    fn local_actor_ids(&self) -> impl Future<Output = Result<Vec<String>, ClientError>> + Send;
    /// An actor this node hosted, after the node tried to take it back under its new epoch: `placement` names
    /// this node (it keeps the actor, under the placement's epoch) or another, which took it over while this node
    /// was taken for dead (it lets the actor go).
    fn taken_back(&self, placement: &Placement) -> impl Future<Output = Result<(), ClientError>> + Send;
    /// Records the liveness epoch the node holds its lease under from now on, so that it restarts under it.
    fn record_epoch(&self, epoch: u64) -> impl Future<Output = Result<(), ClientError>> + Send;
    /// Counts a renewal's outcome: `ok`, `fenced` or `failed`.
    fn count_renewal(&self, outcome: &'static str);
}

/// Renews the lease every interval, forever. A renewal that finds the epoch bumped revokes the lease, takes back
/// the actors still placed here and lets go of those that moved, and only then renews under the new epoch: the
/// node holds no lease while an actor it hosts may live elsewhere.
pub(crate) async fn renew_forever<V: Voters>(directory: &ClusterDirectory<V>, lease: &Lease, node: &impl LeaseHolder) {
    let timing = lease.timing();
    let mut epoch = lease.epoch();
    loop {
        let started = Instant::now();
        let expiration = node.now_ms() + timing.duration.as_millis() as i64;
        match directory.renew(node.local_id(), epoch, expiration).await {
            Ok(record) if record.epoch == epoch => {
                lease.grant(epoch, started);
                node.count_renewal("ok");
            }
            Ok(record) => {
                lease.revoke();
                node.count_renewal("fenced");
                tracing::warn!(
                    old = epoch,
                    new = record.epoch,
                    "this node's liveness epoch was bumped: it was taken for dead"
                );
                match take_back(directory, node, epoch, record.epoch).await {
                    Ok(()) => {
                        epoch = record.epoch;
                        if let Err(e) = node.record_epoch(epoch).await {
                            tracing::error!(error = %e, "cannot record the liveness epoch");
                        }
                        continue;
                    }
                    Err(e) => tracing::warn!(error = %e, "cannot take the node's actors back yet"),
                }
            }
            Err(e) => {
                node.count_renewal("failed");
                tracing::debug!(error = %e, "the lease was not renewed");
            }
        }
        tokio::time::sleep_until(started + timing.interval).await;
    }
}

/// After the node's epoch went from `old` to `new`: every local actor still placed here is taken back under
/// `new`; every one placed elsewhere (a replica was promoted) is let go.
async fn take_back<V: Voters>(
    directory: &ClusterDirectory<V>,
    node: &impl LeaseHolder,
    old: u64,
    new: u64,
) -> Result<(), ClientError> {
    for actor_id in node.local_actor_ids().await? {
        if let Some(placement) = directory.reacquire(&actor_id, node.local_id(), old, new).await? {
            node.taken_back(&placement).await?;
        }
    }
    Ok(())
}

/// Renews this node's lease for as long as the runtime runs.
pub(super) async fn run(handoff: Arc<Handoff>) {
    let Ok(directory) = handoff.backend.directory() else { return };
    renew_forever(directory, &handoff.lease, &*handoff).await
}

impl LeaseHolder for Handoff {
    fn local_id(&self) -> &str {
        &self.local_id
    }

    fn now_ms(&self) -> i64 {
        now_ms()
    }

    async fn local_actor_ids(&self) -> Result<Vec<String>, ClientError> {
        self.host.local_actor_ids().await
    }

    /// Lets go of an actor placed elsewhere, counting the transactions it committed here that its new home never
    /// received.
    async fn taken_back(&self, placement: &Placement) -> Result<(), ClientError> {
        if placement.home == self.local_id {
            return Ok(());
        }
        let actor_id = placement.actor_id.as_str();
        let discarded = placement.promoted_from.map(|from| self.replication.unshipped(actor_id, from));
        let discarded = discarded.unwrap_or(0);
        tracing::warn!(
            actor_id, new_home = %placement.home, discarded,
            "the actor failed over to another node while this one was cut off; its copy here is discarded"
        );
        self.host.core.metrics.record_discarded_transactions(discarded);
        self.host.release(actor_id).await
    }

    async fn record_epoch(&self, epoch: u64) -> Result<(), ClientError> {
        self.host.core.node_db.set_setting(EPOCH_SETTING, &epoch.to_string()).await.map_err(|e| client_error(&e))
    }

    fn count_renewal(&self, outcome: &'static str) {
        self.host.core.metrics.record_lease_renewal(outcome);
    }
}
