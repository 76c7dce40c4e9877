//! Moving a live actor to another node on demand (`POST /actors/{id}/migrate`, drains), without failing a call.
//!
//! On the home:
//! 1. The target becomes a replica that holds everything committed so far, while the actor keeps serving.
//! 2. The hand-off is recorded in `node.db` (a crash from here on is settled with the directory on restart), and
//!    every new request for the actor is held ([`crate::runtime::host::HostCore::hold`]).
//! 3. The actor finishes what its mailbox holds and sleeps; its connections are saved in its database and told to
//!    follow it ([`tern_gateway::backend::ConnOutput::Moved`]).
//! 4. The target acknowledges the last frames; the home asks it to take the actor over ([`TakeHome`]).
//!
//! On the target: its copy must hold exactly the home's last commit. It
//! records the hand-off, promotes the copy, records the actor (holding its requests), and moves the placement to
//! itself by CAS: only if the placement is still the one the hand-off began from. Then it wakes the actor if it
//! was awake, and answers.
//!
//! The pause is thus three round trips: the last frames, the take-over request, and the CAS, whose first round the
//! target ran when the home told it to [`Expect`] the actor, once it had caught up (the CAS then needs only its
//! accept round, unless something changed the placement meanwhile). Sending the take-over before the target
//! acknowledged the last frames saves one, but lets a batch still on its way reach the target's copy while the
//! target promotes it (one test run saw a node stall that way), so the home waits.
//!
//! Back on the home: the actor is forgotten here, the home's copy becomes a replica of the new home, and the held
//! requests go on, to the new home. If anything failed, the directory decides: a home still placed there takes the
//! actor back under a new epoch (so a late hand-over can no longer succeed) and serves it again; otherwise it
//! lets go. A node that crashed in the middle settles the same way when it starts ([`settle_unfinished`]); the
//! tests crash nodes at each step ([`super::crash`]).

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tern_gateway::backend::{DrainReport, Migration, MigrationTarget, NodePlace};
use tern_proto::ClientError;

use super::Handoff;
use super::crash::crash_point;
use super::wire::{Expect, HandoffRefusal, TakeHome};
use crate::cluster::MemberState;
use crate::cluster::directory::paxos::Voters;
use crate::cluster::directory::{ClusterDirectory, HandOver, Placement, PreparedHandOver};
use crate::cluster::rpc;
use crate::storage::ActorRecord;
use crate::storage::handoffs::{HandoffRecord, HandoffRole};
use crate::storage::wal_streams::StreamRole;
use crate::sync::lock;

/// How long the target may take to catch up while the actor keeps serving (a bootstrap of a large database).
const CATCH_UP_LIMIT: Duration = Duration::from_secs(300);
/// How long the home waits for the target to acknowledge the last frames while the actor is paused.
const FINAL_LIMIT: Duration = Duration::from_secs(20);
/// How long the target may take to take the actor over (receiving the last frames included).
const TAKE_HOME_TIMEOUT: Duration = Duration::from_secs(30);
/// How long the target may take to prepare the hand-over in the directory (see [`Expect`]).
const EXPECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a prepared hand-over is kept for its take-over (a move that was given up never comes).
const EXPECTED_FOR: Duration = Duration::from_secs(60);
/// How often a node that cannot reach the directory asks again while settling a hand-off.
const SETTLE_RETRY: Duration = Duration::from_millis(500);
/// How many actors a drain moves at once.
const DRAIN_CONCURRENCY: usize = 4;

/// The actors this node is moving away, one move at a time per actor.
#[derive(Default)]
pub(crate) struct Moving {
    actors: Mutex<HashSet<String>>,
}

/// One actor's move in progress; dropping it ends it.
struct MoveGuard<'a> {
    moving: &'a Moving,
    actor_id: String,
}

impl Drop for MoveGuard<'_> {
    fn drop(&mut self) {
        lock(&self.moving.actors).remove(&self.actor_id);
    }
}

impl Moving {
    fn begin(&self, actor_id: &str) -> Result<MoveGuard<'_>, ClientError> {
        if !lock(&self.actors).insert(actor_id.to_string()) {
            return Err(ClientError::migration_in_progress(actor_id));
        }
        Ok(MoveGuard { moving: self, actor_id: actor_id.to_string() })
    }
}

/// The hand-overs to this node prepared in the directory ahead of their take-over, by actor.
#[derive(Default)]
pub(crate) struct Expected {
    prepared: Mutex<std::collections::HashMap<String, (Instant, PreparedHandOver)>>,
}

impl Expected {
    fn insert(&self, actor_id: &str, prepared: PreparedHandOver) {
        let mut all = lock(&self.prepared);
        all.retain(|_, (at, _)| at.elapsed() < EXPECTED_FOR);
        all.insert(actor_id.to_string(), (Instant::now(), prepared));
    }

    fn take(&self, actor_id: &str) -> Option<PreparedHandOver> {
        lock(&self.prepared).remove(actor_id).filter(|(at, _)| at.elapsed() < EXPECTED_FOR).map(|(_, p)| p)
    }
}

/// Where a move goes: a live member other than this node.
struct Target {
    id: String,
    region: String,
    quic_addr: std::net::SocketAddr,
}

/// How a hand-off that did not finish ended, as the directory says.
enum Settled {
    /// The actor is still placed here: it serves here again.
    Stayed,
    /// The actor is placed on another node now (this placement).
    Left(Box<Placement>),
}

impl Handoff {
    /// This node as a migration reports it.
    fn here(&self) -> NodePlace {
        NodePlace { node: self.local_id.clone(), region: self.region.clone() }
    }

    /// The live member `target` names; `None` when it names this node (or this node's region).
    fn resolve(&self, actor_id: &str, target: &MigrationTarget) -> Result<Option<Target>, ClientError> {
        let members = self.members.all();
        let to_target = |m: &crate::cluster::Member| Target {
            id: m.node.id.clone(),
            region: m.node.region.clone(),
            quic_addr: m.node.quic_addr,
        };
        match target {
            MigrationTarget::Node(id) if *id == self.local_id => Ok(None),
            MigrationTarget::Node(id) => {
                let member =
                    members.iter().find(|m| m.node.id == *id).ok_or_else(|| ClientError::node_not_found(id))?;
                if member.state != MemberState::Alive {
                    return Err(ClientError::no_capacity(format!("node {id} is not alive")));
                }
                Ok(Some(to_target(member)))
            }
            MigrationTarget::Region(region) if *region == self.region => Ok(None),
            MigrationTarget::Region(region) => {
                let there: Vec<_> = members.iter().filter(|m| m.node.region == *region).collect();
                if there.is_empty() {
                    return Err(ClientError::region_not_found(region));
                }
                // A node that already holds a replica has the least to receive; then the least loaded.
                let replicas = self.backend.directory()?.cached_placement(actor_id).map(|p| p.replicas);
                let holds = |m: &crate::cluster::Member| replicas.as_ref().is_some_and(|r| r.contains(&m.node.id));
                let best = there
                    .into_iter()
                    .filter(|m| m.state == MemberState::Alive)
                    .min_by_key(|m| (!holds(m), m.load.map_or(0, |l| l.awake_actors), m.node.id.clone()));
                best.map(|m| Some(to_target(m)))
                    .ok_or_else(|| ClientError::no_capacity(format!("no node of region {region} is alive")))
            }
        }
    }

    /// Moves `actor_id`, which lives here, to `target`, and answers once it serves from its new home. See the
    /// module's documentation for the steps.
    pub(crate) async fn migrate(&self, actor_id: &str, target: &MigrationTarget) -> Result<Migration, ClientError> {
        self.migrate_because(actor_id, target, None).await
    }

    /// [`Self::migrate`], with why the actor moves (`None`: on request), which its new home shows in the
    /// inspector summary.
    pub(crate) async fn migrate_because(
        &self,
        actor_id: &str,
        target: &MigrationTarget,
        reason: Option<String>,
    ) -> Result<Migration, ClientError> {
        if !self.host.hosts(actor_id).await? {
            return Err(ClientError::actor_not_found(actor_id));
        }
        let directory = self.backend.directory()?;
        let Some(to) = self.resolve(actor_id, target)? else {
            let epoch = directory.placement(actor_id, false).await?.map_or(0, |p| p.epoch);
            let here = self.here();
            return Ok(Migration { actor_id: actor_id.to_string(), from: here.clone(), to: here, epoch, pause_ms: 0 });
        };
        let _moving = self.moving.begin(actor_id)?;
        self.lease.check()?;
        let placement =
            directory.placement(actor_id, true).await?.ok_or_else(|| ClientError::actor_not_found(actor_id))?;
        if placement.home != self.local_id {
            return Err(ClientError::unavailable(format!("actor {actor_id} is moving to node {}", placement.home)));
        }
        // The target prepares its directory change while it catches up; one that is not a replica yet is first
        // made one, which changes the placement (and would undo that preparation).
        let catching_up = self.replication.catch_up(actor_id, &to.id, CATCH_UP_LIMIT);
        let _checkpoints_held = if placement.replicas.contains(&to.id) {
            tokio::join!(catching_up, self.tell_to_expect(actor_id, &to)).0?
        } else {
            let held = catching_up.await?;
            self.tell_to_expect(actor_id, &to).await;
            held
        };
        let core = &self.host.core;
        core.node_db.record_handoff(actor_id, HandoffRole::Leaving, &to.id).await?;
        crash_point(&core.data_dir, "leaving:recorded");
        let hold = core.hold(actor_id).ok_or_else(|| ClientError::migration_in_progress(actor_id))?;
        let paused = Instant::now();
        let awake = self.host.pause_for_move(actor_id).await;
        let stop_ms = paused.elapsed().as_millis() as u64;
        crash_point(&core.data_dir, "leaving:paused");
        let reason = reason.unwrap_or_else(|| format!("moved {} → {} on request", self.region, to.region));
        let handed = self.hand_off(actor_id, &placement, &to, awake, reason).await;
        crash_point(&core.data_dir, "leaving:answered");
        let pause_ms = paused.elapsed().as_millis() as u64;
        let outcome = match handed {
            Ok((epoch, keep)) => {
                self.leave(actor_id, &to.id, keep).await?;
                Ok(epoch)
            }
            Err(failure) => {
                tracing::warn!(actor_id, to = %to.id, error = %failure, "the hand-off failed; asking the directory");
                match self.settle_leaving(actor_id).await? {
                    Settled::Left(now) if now.home == to.id => Ok(now.epoch),
                    Settled::Left(now) => {
                        Err(ClientError::unavailable(format!("actor {actor_id} moved to node {} meanwhile", now.home)))
                    }
                    Settled::Stayed => {
                        if awake {
                            // Its connections were saved: they re-bind here as they would have there.
                            core.mark_arrived(actor_id);
                            if let Err(e) = self.host.turn_now(actor_id).await {
                                tracing::warn!(actor_id, error = %e, "cannot wake the actor after a failed move");
                            }
                        }
                        Err(failure)
                    }
                }
            }
        };
        drop(hold);
        let epoch = outcome?;
        // This node's own cache learns the new placement here; the others' forget theirs.
        if let Some(now) = directory.placement(actor_id, true).await? {
            self.backend.tell_peers_to_forget(&now, false).await;
        }
        self.host.core.metrics.record_migration(pause_ms);
        tracing::info!(actor_id, from = %self.local_id, to = %to.id, epoch, pause_ms, stop_ms, "moved the actor");
        Ok(Migration {
            actor_id: actor_id.to_string(),
            from: self.here(),
            to: NodePlace { node: to.id, region: to.region },
            epoch,
            pause_ms,
        })
    }

    /// Tells the target to prepare the hand-over (see [`Expect`]); a target that cannot is taken over from all the
    /// same, with a longer pause.
    async fn tell_to_expect(&self, actor_id: &str, to: &Target) {
        let call = Expect { actor_id: actor_id.to_string() };
        if let Err(e) = rpc::ask(self.backend.transport(), to.quic_addr, call, EXPECT_TIMEOUT).await {
            tracing::debug!(actor_id, to = %to.id, error = %e, "the target did not prepare the hand-over");
        }
    }

    /// The target's side of [`Expect`]: prepares the hand-over in the directory, keeping it for the take-over.
    pub(crate) async fn expect(&self, call: Expect) {
        let prepared = match self.backend.directory() {
            Ok(directory) => directory.prepare_hand_over(&call.actor_id).await,
            Err(e) => Err(e),
        };
        match prepared {
            Ok(prepared) => self.expected.insert(&call.actor_id, prepared),
            Err(e) => tracing::debug!(actor_id = call.actor_id, error = %e, "cannot prepare a hand-over"),
        }
    }

    /// Steps 3–4 once requests are held and the actor paused: the last frames, then the target's take-over.
    /// Returns the actor's new epoch, and whether this node stays one of its replicas.
    async fn hand_off(
        &self,
        actor_id: &str,
        placement: &Placement,
        to: &Target,
        awake: bool,
        reason: String,
    ) -> Result<(u64, bool), ClientError> {
        let paused = Instant::now();
        let state = self.replication.final_state(actor_id, &to.id, FINAL_LIMIT).await?;
        crash_point(&self.host.core.data_dir, "leaving:shipped");
        let (count, _) = self.replication.policy(actor_id).await?;
        // The old home keeps a copy (it holds exactly what the new home starts from), so the set keeps its size.
        let others = placement.replicas.iter().filter(|r| **r != to.id && **r != self.local_id).cloned();
        let replicas: Vec<String> = std::iter::once(self.local_id.clone()).chain(others).take(count).collect();
        let keep = replicas.contains(&self.local_id);
        let call = TakeHome {
            record: actor_record(placement),
            from: self.local_id.clone(),
            epoch: placement.epoch,
            state,
            replicas,
            arrival: self.host.departure(actor_id, awake),
            reason,
        };
        let shipped = Instant::now();
        let answer = rpc::ask(self.backend.transport(), to.quic_addr, call, TAKE_HOME_TIMEOUT).await;
        tracing::debug!(
            actor_id, to = %to.id, last_frames_ms = (shipped - paused).as_millis() as u64,
            take_home_ms = shipped.elapsed().as_millis() as u64, "the target answered"
        );
        match answer {
            Ok(Ok(epoch)) => Ok((epoch, keep)),
            Ok(Err(HandoffRefusal::Failed(e))) => Err(e),
            Ok(Err(refusal)) => Err(ClientError::unavailable(format!("node {} refused the actor: {refusal}", to.id))),
            Err(e) => Err(ClientError::unavailable(format!("node {} did not take the actor: {e}", to.id))),
        }
    }

    /// Forgets an actor that left for `new_home`, keeping its copy as a replica when `keep`, and the hand-off.
    async fn leave(&self, actor_id: &str, new_home: &str, keep: bool) -> Result<(), ClientError> {
        self.backend.traffic().forget(actor_id);
        self.host.forget_departed(actor_id).await?;
        self.replication.hand_over_copy(actor_id, new_home, keep).await?;
        self.host.core.node_db.forget_handoff(actor_id).await
    }

    /// Asks the directory (until it answers) where an actor whose hand-off did not finish lives. Still here: this
    /// node takes it back under a new epoch, so that the hand-over can no longer happen, and keeps it. Elsewhere:
    /// this node lets go of it.
    async fn settle_leaving(&self, actor_id: &str) -> Result<Settled, ClientError> {
        let directory = self.backend.directory()?;
        loop {
            match settle_leaving_once(directory, actor_id, &self.local_id, self.lease.epoch()).await {
                Ok(Some(p)) if p.home == self.local_id && p.destroy_ts.is_none() => {
                    self.host.core.node_db.forget_handoff(actor_id).await?;
                    return Ok(Settled::Stayed);
                }
                Ok(Some(p)) => {
                    let keep = p.replicas.contains(&self.local_id) && p.destroy_ts.is_none();
                    self.leave(actor_id, &p.home, keep).await?;
                    return Ok(Settled::Left(Box::new(p)));
                }
                Ok(None) => {
                    self.host.release(actor_id).await?;
                    self.host.core.node_db.forget_handoff(actor_id).await?;
                    return Err(ClientError::actor_not_found(actor_id));
                }
                Err(e) => {
                    tracing::debug!(actor_id, error = %e, "cannot settle a hand-off yet");
                    tokio::time::sleep(SETTLE_RETRY).await;
                }
            }
        }
    }

    /// Takes an actor over from its home (the target's side of a move).
    pub(crate) async fn take_home(&self, call: TakeHome) -> Result<u64, HandoffRefusal> {
        self.lease.check().map_err(HandoffRefusal::Failed)?;
        let actor_id = call.record.actor_id.as_str();
        let prepared = self.expected.take(actor_id);
        let arrived = Instant::now();
        if !self.replication.copy_holds(actor_id, &call.from, call.state).await.unwrap_or(false) {
            return Err(HandoffRefusal::Behind { at: self.replication.copy_position(actor_id).await.ok() });
        }
        let directory = self.backend.directory().map_err(HandoffRefusal::Failed)?;
        let core = &self.host.core;
        let failed = HandoffRefusal::Failed;
        core.node_db.record_handoff(actor_id, HandoffRole::Arriving, &call.from).await.map_err(failed)?;
        crash_point(&core.data_dir, "arriving:recorded");
        let Some(hold) = core.hold(actor_id) else {
            core.node_db.forget_handoff(actor_id).await.map_err(failed)?;
            return Err(failed(ClientError::migration_in_progress(actor_id)));
        };
        // The actor is recorded (its requests held) before the directory names this node, so that no request
        // routed here afterwards finds it missing.
        self.replication.promote(actor_id, call.replicas.clone()).await.map_err(failed)?;
        let promoted = Instant::now();
        self.host.record_arrival(call.record.clone()).await.map_err(failed)?;
        crash_point(&core.data_dir, "arriving:promoted");
        let moving = HandOver {
            actor_id,
            from: &call.from,
            epoch: call.epoch,
            to: &self.local_id,
            to_epoch: self.lease.epoch(),
            region: &self.region,
            replicas: call.replicas,
        };
        let decided = claim(directory, &moving, prepared).await;
        crash_point(&core.data_dir, "arriving:moved");
        let moved = Instant::now();
        match decided {
            Some(now) if now.home == self.local_id => {
                core.node_db.forget_handoff(actor_id).await.map_err(failed)?;
                self.backend.traffic().arrived(actor_id);
                core.note_move(actor_id, call.reason);
                drop(hold);
                self.host.settle_arrival(actor_id, call.arrival).await.map_err(failed)?;
                tracing::info!(
                    actor_id, from = %call.from, epoch = now.epoch,
                    ready_ms = (promoted - arrived).as_millis() as u64,
                    directory_ms = (moved - promoted).as_millis() as u64, wake_ms = moved.elapsed().as_millis() as u64,
                    "took the actor over"
                );
                Ok(now.epoch)
            }
            _ => {
                self.unpack(actor_id, &call.from, decided.as_ref()).await.map_err(failed)?;
                Err(HandoffRefusal::Moved)
            }
        }
    }

    /// The actor's placement as the voters have it, asked until they answer.
    async fn placement_settled(&self, actor_id: &str) -> Option<Placement> {
        self.backend.directory().ok()?.placement_settled(actor_id, SETTLE_RETRY).await
    }

    /// Undoes an arrival from `from` that the directory did not confirm (`decided`: the placement it holds): the
    /// actor's record goes. The promoted copy becomes a replica of `from` again when the directory still names
    /// `from` with this node among its replicas: it holds everything `from` committed, writes `from` acknowledged
    /// in `sync` mode on the strength of this copy among them, and `from` may be gone for good. Otherwise it goes
    /// (its home sends a fresh copy if this node is one of its replicas).
    async fn unpack(&self, actor_id: &str, from: &str, decided: Option<&Placement>) -> Result<(), ClientError> {
        let me = self.local_id.as_str();
        let keep =
            decided.is_some_and(|p| p.destroy_ts.is_none() && p.home == from && p.replicas.iter().any(|r| r == me));
        self.host.forget_departed(actor_id).await?;
        let promoted = self.host.core.node_db.wal_stream(actor_id).await?.is_some_and(|r| r.role == StreamRole::Home);
        match (keep, promoted) {
            (true, true) => self.replication.hand_over_copy(actor_id, from, true).await?,
            // Not promoted yet (a crash before it): the replica's copy is as it was.
            (true, false) => {}
            (false, _) => self.replication.drop_home_copy(actor_id).await?,
        }
        self.host.core.node_db.forget_handoff(actor_id).await
    }

    /// Settles an arrival from `from` that a crash interrupted: kept if the directory names this node, else undone.
    async fn settle_arriving(&self, actor_id: &str, from: &str) -> Result<(), ClientError> {
        let decided = self.placement_settled(actor_id).await;
        match decided.clone() {
            Some(placement) if placement.home == self.local_id && placement.destroy_ts.is_none() => {
                if !self.host.hosts(actor_id).await? {
                    if self.replication.copy_position(actor_id).await.is_ok() {
                        self.replication.promote(actor_id, placement.replicas.clone()).await?;
                    }
                    self.host.record_arrival(actor_record(&placement)).await?;
                }
                self.host.core.node_db.forget_handoff(actor_id).await?;
                tracing::info!(actor_id, "kept an actor whose arrival a restart interrupted");
                Ok(())
            }
            _ => self.unpack(actor_id, from, decided.as_ref()).await,
        }
    }

    /// Moves every actor hosted here to other live nodes (this node's region first, then the least loaded).
    pub(crate) async fn drain(&self) -> Result<DrainReport, ClientError> {
        use futures_util::StreamExt;
        let actors = self.host.local_actor_ids().await?;
        tracing::info!(actors = actors.len(), "draining the node");
        let results: Vec<(String, Result<Migration, ClientError>)> = futures_util::stream::iter(actors)
            .map(|actor_id| async move {
                let result = match self.drain_target() {
                    Some(node) => self.migrate(&actor_id, &MigrationTarget::Node(node)).await,
                    None => Err(ClientError::no_capacity("no other live node can take the actors")),
                };
                (actor_id, result)
            })
            .buffer_unordered(DRAIN_CONCURRENCY)
            .collect()
            .await;
        let mut report = DrainReport { node: self.local_id.clone(), moved: 0, failed: Vec::new() };
        for (actor_id, result) in results {
            match result {
                Ok(_) => report.moved += 1,
                // Destroyed meanwhile: nothing to move.
                Err(e) if e.is(&ClientError::actor_not_found("")) => {}
                Err(e) => report.failed.push((actor_id, e)),
            }
        }
        tracing::info!(moved = report.moved, failed = report.failed.len(), "drained the node");
        Ok(report)
    }

    /// The node a drained actor goes to: a live member of this region, else of any, the least loaded.
    fn drain_target(&self) -> Option<String> {
        let members = self.members.all();
        let candidates = members.iter().filter(|m| !m.local && m.state == MemberState::Alive);
        candidates
            .min_by_key(|m| (m.node.region != self.region, m.load.map_or(0, |l| l.awake_actors), m.node.id.clone()))
            .map(|m| m.node.id.clone())
    }
}

/// One attempt to settle a hand-off from `me` that did not finish, `epoch` being `me`'s liveness epoch: the actor's
/// placement as the voters decide it. A placement still naming `me` is first taken back under a new placement
/// epoch, so that the hand-over can no longer succeed, and `me` serves the actor again; one naming another node
/// means the actor left.
pub(crate) async fn settle_leaving_once<V: Voters>(
    directory: &ClusterDirectory<V>,
    actor_id: &str,
    me: &str,
    epoch: u64,
) -> Result<Option<Placement>, ClientError> {
    match directory.placement(actor_id, true).await? {
        Some(p) if p.home == me && p.destroy_ts.is_none() => directory.reacquire(actor_id, me, epoch, epoch).await,
        other => Ok(other),
    }
}

/// The target's claim of a handed-over actor: moves the placement to it by compare-and-set from the placement the
/// hand-off began with (`moving`), starting from `prepared` when the target prepared it, and returns the placement
/// afterwards, asked of the voters again until they answer when the change's own answer was lost. The actor is
/// the target's only if the placement names it.
pub(crate) async fn claim<V: Voters>(
    directory: &ClusterDirectory<V>,
    moving: &HandOver<'_>,
    prepared: Option<PreparedHandOver>,
) -> Option<Placement> {
    match directory.hand_over(moving, prepared).await {
        Ok(placement) => placement,
        // The change may or may not have been made: read what the voters decided.
        Err(_) => directory.placement_settled(moving.actor_id, SETTLE_RETRY).await,
    }
}

/// The actor's record on its new home, from its placement.
fn actor_record(placement: &Placement) -> ActorRecord {
    ActorRecord {
        actor_id: placement.actor_id.clone(),
        name: placement.name.clone(),
        key: placement.key.clone(),
        input: None,
        create_ts: placement.create_ts,
        destroy_ts: None,
    }
}

/// Settles the hand-offs a previous run of this node left unfinished (their actors were held since the node
/// started), each as soon as the directory answers, then lets their requests go on.
pub(super) async fn settle_unfinished(handoff: Arc<Handoff>) {
    let unfinished = match handoff.host.core.node_db.handoffs().await {
        Ok(unfinished) => unfinished,
        Err(e) => {
            tracing::error!(error = %e, "cannot read the unfinished hand-offs");
            return;
        }
    };
    for HandoffRecord { actor_id, role, peer } in unfinished {
        tracing::warn!(actor_id, ?role, peer, "settling a hand-off a restart interrupted");
        let settled = match role {
            HandoffRole::Leaving => handoff.settle_leaving(&actor_id).await.map(|_| ()),
            HandoffRole::Arriving => handoff.settle_arriving(&actor_id, &peer).await,
        };
        if let Err(e) = settled {
            tracing::error!(actor_id, error = %e, "cannot settle an interrupted hand-off");
        }
        lock(&handoff.host.core.settling).remove(&actor_id);
    }
}
