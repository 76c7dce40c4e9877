//! Failover: a node holding replicas of actors whose home is not alive asks the voters whether the home's lease
//! has expired; if it has, it bumps the home's liveness epoch (fencing every actor there at once) and takes each
//! of those actors over under a new actor epoch, waking it here with everything its replica holds.
//!
//! SWIM only suggests: a home is looked at when membership does not see it alive, but only the liveness record
//! decides. With more than one replica per actor the first replica to win the placement takes the actor over.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use tern_proto::ClientError;
use tern_replication::wal::Position;

use super::renew::LeaseHolder;
use super::{Handoff, Lease};
use crate::cluster::MemberState;
use crate::cluster::directory::paxos::Voters;
use crate::cluster::directory::{ClusterDirectory, MoveHome, Placement};
use crate::replica::{PeerCopy, ReplicationMode};
use crate::storage::ActorRecord;

/// How often the node looks at the homes of its replicas.
const WATCH_EVERY: Duration = Duration::from_millis(250);
/// How often the node settles its copies with the directory ([`settle_copies`]).
pub(crate) const SETTLE_EVERY: Duration = Duration::from_secs(600);
/// How often a take-over whose outcome is unknown asks the directory again.
const RETRY_EVERY: Duration = Duration::from_millis(100);

/// Watches the homes of this node's replicas forever.
pub(super) async fn run(handoff: Arc<Handoff>) {
    let Ok(directory) = handoff.backend.directory() else { return };
    let mut next_settle = tokio::time::Instant::now();
    loop {
        tokio::time::sleep(WATCH_EVERY).await;
        if handoff.lease.check().is_err() {
            // A node that cannot renew its own lease takes nothing over.
            continue;
        }
        if tokio::time::Instant::now() >= next_settle {
            match settle_copies(directory, &handoff.lease, &*handoff).await {
                Ok(()) => next_settle = tokio::time::Instant::now() + SETTLE_EVERY,
                Err(e) => tracing::debug!(error = %e, "the node's copies are not settled with the directory yet"),
            }
        }
        let copies = match handoff.replication.copies_by_home().await {
            Ok(copies) => copies,
            Err(e) => {
                tracing::warn!(error = %e, "cannot list this node's replicas");
                continue;
            }
        };
        for (home, actors) in copies {
            if handoff.members.get(&home).is_some_and(|m| m.state == MemberState::Alive) {
                continue;
            }
            if let Err(e) = fail_over(directory, &handoff.lease, &*handoff, &home, actors).await {
                tracing::debug!(home, error = %e, "failover not done yet");
            }
        }
    }
}

/// What failing an actor over to this node needs from the node.
pub(crate) trait Successor: LeaseHolder {
    /// This node's region.
    fn region(&self) -> &str;
    /// Where this node's copy of the actor is.
    fn copy_position(&self, actor_id: &str) -> impl Future<Output = Result<Position, ClientError>> + Send;
    /// What `node_id` says of its copy of the actor.
    fn peer_copy(&self, node_id: &str, actor_id: &str) -> impl Future<Output = PeerCopy> + Send;
    /// The actors this node holds copies of.
    fn copies(&self) -> impl Future<Output = Result<Vec<String>, ClientError>> + Send;
    /// Whether this node serves the actor.
    fn hosts(&self, actor_id: &str) -> impl Future<Output = Result<bool, ClientError>> + Send;
    /// How many replicas the actor keeps, and when its replies leave.
    fn policy(&self, actor_id: &str) -> impl Future<Output = Result<(usize, ReplicationMode), ClientError>> + Send;
    /// Up to `count` live nodes other than this one and `avoid` to hold the actor's replicas.
    fn choose_replicas(&self, count: usize, avoid: &[String]) -> Vec<String>;
    /// Deletes this node's copy of the actor.
    fn drop_copy(&self, actor_id: &str) -> impl Future<Output = Result<(), ClientError>> + Send;
    /// Promotes this node's copy and serves the actor here, as `placement` (which names this node) records it.
    fn become_home(&self, placement: &Placement) -> impl Future<Output = Result<(), ClientError>> + Send;
}

/// Fences `home` if its lease expired, then takes over each of `actors`, of which this node holds copies.
pub(crate) async fn fail_over<V: Voters>(
    directory: &ClusterDirectory<V>,
    lease: &Lease,
    node: &impl Successor,
    home: &str,
    actors: Vec<String>,
) -> Result<(), ClientError> {
    let Some(record) = directory.liveness(home).await? else { return Ok(()) };
    let offset = lease.timing().max_offset.as_millis() as i64;
    if record.expiration_ms + offset >= node.now_ms() {
        return Ok(());
    }
    let fenced = directory.fence(home, record.epoch, node.now_ms(), offset).await?;
    if fenced.expiration_ms + offset >= node.now_ms() {
        // The home renewed in the meantime: it is alive after all.
        return Ok(());
    }
    tracing::warn!(
        home,
        epoch = fenced.epoch,
        actors = actors.len(),
        "the node's lease expired: failing its actors over"
    );
    for actor_id in actors {
        take_over(directory, lease, node, home, fenced.epoch, &actor_id).await?;
    }
    Ok(())
}

/// Takes `actor_id` over from `home` (fenced at `fenced_epoch`) if the directory still places it there and no
/// other replica is fresher.
async fn take_over<V: Voters>(
    directory: &ClusterDirectory<V>,
    lease: &Lease,
    node: &impl Successor,
    home: &str,
    fenced_epoch: u64,
    actor_id: &str,
) -> Result<(), ClientError> {
    let me = node.local_id();
    let position = node.copy_position(actor_id).await?;
    let (count, mode) = node.policy(actor_id).await?;
    // The freshest replica takes the actor over (a tie goes to the smallest node id); the others leave it.
    if let Some(placement) = directory.placement(actor_id, true).await? {
        // A home that took its actor over itself started from its copy's position: a copy behind that lacks some
        // of the history the home inherited, acknowledged writes among it, however fresh it is among the others.
        if mode == ReplicationMode::Sync && placement.promoted_from.is_some_and(|from| position < from) {
            return Ok(());
        }
        for other in placement.replicas.iter().filter(|r| r.as_str() != me) {
            match node.peer_copy(other, actor_id).await {
                PeerCopy::At(theirs) if theirs > position || (theirs == position && other.as_str() < me) => {
                    return Ok(());
                }
                // In sync mode a write was acknowledged once one replica held it, perhaps that one alone: a
                // replica that does not answer may hold acknowledged writes this copy lacks, so wait for it.
                PeerCopy::Silent if mode == ReplicationMode::Sync => return Ok(()),
                _ => {}
            }
        }
    }
    let replicas = node.choose_replicas(count, &[home.to_string()]);
    let moving = MoveHome {
        actor_id,
        from: home,
        fenced_epoch,
        to: me,
        to_epoch: lease.epoch(),
        region: node.region(),
        replicas,
        promoted_from: Some(position),
    };
    let decided = match directory.move_home(&moving).await {
        Ok(placement) => placement,
        // The change may or may not have been made: read what the voters decided.
        Err(_) => directory.placement_settled(actor_id, RETRY_EVERY).await,
    };
    let Some(placement) = decided else {
        return node.drop_copy(actor_id).await;
    };
    if placement.home != me {
        if placement.home != home {
            // Another replica took it over: this copy is not part of its new stream.
            node.drop_copy(actor_id).await?;
        }
        return Ok(());
    }
    if let Err(e) = node.become_home(&placement).await {
        tracing::warn!(actor_id, error = %e, "the directory names this node the actor's home, but it cannot take it up yet");
        return Err(e);
    }
    tracing::warn!(actor_id, from = home, at = %position, epoch = placement.epoch, "took the actor over from its dead home");
    Ok(())
}

impl Successor for Handoff {
    fn region(&self) -> &str {
        &self.region
    }

    async fn copy_position(&self, actor_id: &str) -> Result<Position, ClientError> {
        self.replication.copy_position(actor_id).await
    }

    async fn peer_copy(&self, node_id: &str, actor_id: &str) -> PeerCopy {
        self.replication.peer_copy(node_id, actor_id).await
    }

    async fn copies(&self) -> Result<Vec<String>, ClientError> {
        Ok(self.host.core.node_db.replica_streams().await?.into_iter().map(|(actor_id, _)| actor_id).collect())
    }

    async fn hosts(&self, actor_id: &str) -> Result<bool, ClientError> {
        self.host.hosts(actor_id).await
    }

    async fn policy(&self, actor_id: &str) -> Result<(usize, ReplicationMode), ClientError> {
        self.replication.policy(actor_id).await
    }

    fn choose_replicas(&self, count: usize, avoid: &[String]) -> Vec<String> {
        self.replication.choose_replicas(count, avoid)
    }

    async fn drop_copy(&self, actor_id: &str) -> Result<(), ClientError> {
        self.replication.drop_copy(actor_id).await
    }

    async fn become_home(&self, placement: &Placement) -> Result<(), ClientError> {
        let actor_id = placement.actor_id.as_str();
        self.replication.promote(actor_id, placement.replicas.clone()).await?;
        let record = ActorRecord {
            actor_id: actor_id.to_string(),
            name: placement.name.clone(),
            key: placement.key.clone(),
            input: None,
            create_ts: placement.create_ts,
            destroy_ts: None,
        };
        self.host.adopt(record).await?;
        self.backend.tell_peers_to_forget(placement, false).await;
        self.host.core.metrics.record_failover();
        Ok(())
    }
}

/// Settles each of this node's copies with the directory. A copy of an actor that was destroyed, or whose replica
/// set no longer includes this node (it was replaced while down, or the destroy's notice missed it), is deleted:
/// nothing else would ever remove it. An actor the directory names this node home of, though it does not serve it
/// (it took the actor over but crashed before it learned so), is taken up under this node's liveness epoch.
pub(crate) async fn settle_copies<V: Voters>(
    directory: &ClusterDirectory<V>,
    lease: &Lease,
    node: &impl Successor,
) -> Result<(), ClientError> {
    let me = node.local_id();
    for actor_id in node.copies().await? {
        let placement = directory.placement(&actor_id, true).await?;
        match &placement {
            Some(p) if p.destroy_ts.is_none() && p.home == me => {
                if node.hosts(&actor_id).await? {
                    continue;
                }
                let epoch = lease.epoch();
                if let Some(now) = directory.reacquire(&actor_id, me, epoch, epoch).await?
                    && now.home == me
                {
                    tracing::warn!(
                        actor_id,
                        epoch = now.epoch,
                        "taking up an actor the directory names this node home of"
                    );
                    node.become_home(&now).await?;
                }
            }
            Some(p) if p.destroy_ts.is_none() && (p.replicas.is_empty() || p.replicas.iter().any(|r| r == me)) => {}
            _ => {
                tracing::info!(actor_id, "removing a replica that is no longer part of its actor's replica set");
                node.drop_copy(&actor_id).await?;
            }
        }
    }
    Ok(())
}

/// Groups `(actor, home)` pairs by home.
pub(crate) fn by_home(pairs: Vec<(String, String)>) -> BTreeMap<String, Vec<String>> {
    let mut homes: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (actor_id, home) in pairs {
        homes.entry(home).or_default().push(actor_id);
    }
    homes
}
