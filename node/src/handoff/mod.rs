//! Actors changing home: the node's liveness lease ([`lease`]), which fences a home that can no longer reach the
//! directory's voters; renewing it, and taking actors back after a fence ([`renew`]); and failover ([`failover`]),
//! which promotes a replica when its home's lease is gone. (Migration on demand will live here too.)

pub mod failover;
pub mod lease;
mod renew;

use std::sync::Arc;

pub use lease::{Lease, LeaseTiming};

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
}

impl Handoff {
    /// The lease this node starts with: under the epoch it last held one (recorded in `node.db`), not held yet.
    pub async fn initial_lease(host: &Host, timing: LeaseTiming) -> Lease {
        let recorded = host.core.node_db.setting(EPOCH_SETTING).await.ok().flatten();
        Lease::new(timing, recorded.and_then(|e| e.parse().ok()).unwrap_or(0))
    }

    /// Starts renewing `lease` and watching for homes to fail over from, for as long as the runtime runs.
    pub fn start(
        local_id: String,
        region: String,
        backend: ClusterBackend,
        host: Host,
        replication: Replication,
        members: Members,
        lease: Lease,
    ) {
        let handoff = Arc::new(Handoff { local_id, region, backend, host, replication, members, lease });
        tokio::spawn(renew::run(handoff.clone()));
        tokio::spawn(failover::run(handoff));
    }
}
