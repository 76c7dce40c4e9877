//! Renewing the node's liveness record, and taking the node's actors back after its epoch was bumped.

use std::sync::Arc;

use tern_proto::ClientError;
use tokio::time::Instant;

use super::{EPOCH_SETTING, Handoff};
use crate::clock::now_ms;

/// Renews the lease every interval, forever. A renewal that finds the epoch bumped revokes the lease, takes back
/// the actors still placed here and lets go of those that moved, then renews under the new epoch.
pub(super) async fn run(handoff: Arc<Handoff>) {
    let timing = handoff.lease.timing();
    let mut epoch = handoff.lease.epoch();
    loop {
        let started = Instant::now();
        let Ok(directory) = handoff.backend.directory() else { return };
        let expiration = now_ms() + timing.duration.as_millis() as i64;
        match directory.renew(&handoff.local_id, epoch, expiration).await {
            Ok(record) if record.epoch == epoch => {
                handoff.lease.grant(epoch, started);
                handoff.host.core.metrics.record_lease_renewal("ok");
            }
            Ok(record) => {
                handoff.lease.revoke();
                handoff.host.core.metrics.record_lease_renewal("fenced");
                tracing::warn!(
                    old = epoch,
                    new = record.epoch,
                    "this node's liveness epoch was bumped: it was taken for dead"
                );
                match take_back(&handoff, epoch, record.epoch).await {
                    Ok(()) => {
                        epoch = record.epoch;
                        if let Err(e) = handoff.host.core.node_db.set_setting(EPOCH_SETTING, &epoch.to_string()).await {
                            tracing::error!(error = %e, "cannot record the liveness epoch");
                        }
                        continue;
                    }
                    Err(e) => tracing::warn!(error = %e, "cannot take the node's actors back yet"),
                }
            }
            Err(e) => {
                handoff.host.core.metrics.record_lease_renewal("failed");
                tracing::debug!(error = %e, "the lease was not renewed");
            }
        }
        tokio::time::sleep_until(started + timing.interval).await;
    }
}

/// After the node's epoch went from `old` to `new`: every local actor still placed here is taken back under
/// `new`; every one placed elsewhere (a replica was promoted) is let go, counting the transactions it committed
/// here that its new home never received.
async fn take_back(handoff: &Handoff, old: u64, new: u64) -> Result<(), ClientError> {
    let directory = handoff.backend.directory()?;
    for actor_id in handoff.host.local_actor_ids() {
        let Some(placement) = directory.reacquire(&actor_id, &handoff.local_id, old, new).await? else { continue };
        if placement.home == handoff.local_id {
            continue;
        }
        let discarded = placement.promoted_from.map(|from| handoff.replication.unshipped(&actor_id, from));
        let discarded = discarded.unwrap_or(0);
        tracing::warn!(
            actor_id, new_home = %placement.home, discarded,
            "the actor failed over to another node while this one was cut off; its copy here is discarded"
        );
        handoff.host.core.metrics.record_discarded_transactions(discarded);
        handoff.host.release(&actor_id).await?;
    }
    Ok(())
}
