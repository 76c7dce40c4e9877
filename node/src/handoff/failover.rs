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

use super::Handoff;
use crate::clock::now_ms;
use crate::cluster::MemberState;
use crate::cluster::directory::MoveHome;
use crate::storage::ActorRecord;

/// How often the node looks at the homes of its replicas.
const WATCH_EVERY: Duration = Duration::from_millis(250);
/// How often the node looks for replicas it holds that are no longer part of their actor's replica set.
const SWEEP_EVERY: Duration = Duration::from_secs(600);

/// Watches the homes of this node's replicas forever.
pub(super) async fn run(handoff: Arc<Handoff>) {
    let mut next_sweep = tokio::time::Instant::now();
    loop {
        tokio::time::sleep(WATCH_EVERY).await;
        if handoff.lease.check().is_err() {
            // A node that cannot renew its own lease takes nothing over.
            continue;
        }
        if tokio::time::Instant::now() >= next_sweep {
            match sweep(&handoff).await {
                Ok(()) => next_sweep = tokio::time::Instant::now() + SWEEP_EVERY,
                Err(e) => tracing::debug!(error = %e, "the sweep of orphaned replicas did not finish"),
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
            if let Err(e) = fail_over(&handoff, &home, actors).await {
                tracing::debug!(home, error = %e, "failover not done yet");
            }
        }
    }
}

/// Fences `home` if its lease expired, then takes over each of `actors`.
async fn fail_over(handoff: &Handoff, home: &str, actors: Vec<String>) -> Result<(), ClientError> {
    let directory = handoff.backend.directory()?;
    let Some(record) = directory.liveness(home).await? else { return Ok(()) };
    let offset = handoff.lease.timing().max_offset.as_millis() as i64;
    if record.expiration_ms + offset >= now_ms() {
        return Ok(());
    }
    let fenced = directory.fence(home, record.epoch, now_ms(), offset).await?;
    if fenced.expiration_ms + offset >= now_ms() {
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
        take_over(handoff, home, fenced.epoch, &actor_id).await?;
    }
    Ok(())
}

/// Takes `actor_id` over from `home` (fenced at `fenced_epoch`) if the directory still places it there.
async fn take_over(handoff: &Handoff, home: &str, fenced_epoch: u64, actor_id: &str) -> Result<(), ClientError> {
    let directory = handoff.backend.directory()?;
    let position = handoff.replication.copy_position(actor_id).await?;
    // The freshest live replica takes the actor over (a tie goes to the smallest node id); the others leave it.
    if let Some(placement) = directory.placement(actor_id, true).await? {
        let me = handoff.local_id.as_str();
        for other in placement.replicas.iter().filter(|r| r.as_str() != me) {
            if let Some(theirs) = handoff.replication.peer_position(other, actor_id).await
                && (theirs > position || (theirs == position && other.as_str() < me))
            {
                return Ok(());
            }
        }
    }
    let (count, _) = handoff.replication.policy(actor_id);
    let replicas = handoff.replication.choose_replicas(count, &[home.to_string()]);
    let moving = MoveHome {
        actor_id,
        from: home,
        fenced_epoch,
        to: &handoff.local_id,
        to_epoch: handoff.lease.epoch(),
        region: &handoff.region,
        replicas: replicas.clone(),
        promoted_from: Some(position),
    };
    let Some(placement) = directory.move_home(&moving).await? else {
        handoff.replication.drop_copy(actor_id).await?;
        return Ok(());
    };
    if placement.home != handoff.local_id {
        if placement.home != home {
            // Another replica took it over: this copy is not part of its new stream.
            handoff.replication.drop_copy(actor_id).await?;
        }
        return Ok(());
    }
    handoff.replication.promote(actor_id, replicas).await?;
    let record = ActorRecord {
        actor_id: actor_id.to_string(),
        name: placement.name.clone(),
        key: placement.key.clone(),
        input: None,
        create_ts: placement.create_ts,
        destroy_ts: None,
    };
    handoff.host.adopt(record).await?;
    handoff.backend.tell_peers_to_forget(&placement, false).await;
    handoff.host.core.metrics.record_failover();
    tracing::warn!(actor_id, from = home, at = %position, epoch = placement.epoch, "took the actor over from its dead home");
    Ok(())
}

/// Deletes the replicas this node holds of actors that were destroyed, or whose replica set no longer includes
/// this node (it was replaced while down, or the destroy's notice missed it): nothing else would ever remove them.
async fn sweep(handoff: &Handoff) -> Result<(), ClientError> {
    let directory = handoff.backend.directory()?;
    for (actor_id, _home) in handoff.host.core.node_db.replica_streams().await? {
        let placement = directory.placement(&actor_id, true).await?;
        let orphan = match &placement {
            None => true,
            Some(p) if p.destroy_ts.is_some() => true,
            Some(p) => p.home != handoff.local_id && !p.replicas.is_empty() && !p.replicas.contains(&handoff.local_id),
        };
        if orphan {
            tracing::info!(actor_id, "removing a replica that is no longer part of its actor's replica set");
            handoff.replication.drop_copy(&actor_id).await?;
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
