//! A simulated node: its disk (what survives a crash), its memory, the production lease, renewal and failover
//! loops running on it, the stream that ships its databases to their replicas, and its handling of writes.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tern_proto::ClientError;
use tern_replication::wal::Position;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::super::Lease;
use super::super::failover::{SETTLE_EVERY, Successor, fail_over, settle_copies};
use super::super::renew::{LeaseHolder, renew_forever};
use super::{ACTOR, Ack, EPOCH_MS, NODES, Planted, World};
use crate::cluster::directory::paxos::Proposer;
use crate::cluster::directory::{ClusterDirectory, Placement, PreparedHandOver};
use crate::replica::{PeerCopy, ReplicationMode};
use crate::simnet::{Place, SimVoters, lock};

/// How often a home ships its database to its replicas.
const SHIP_EVERY: Duration = Duration::from_millis(20);
/// How long a write waits for a replica in `sync` mode.
const SYNC_TIMEOUT: Duration = Duration::from_secs(10);

/// An actor's database on its home.
#[derive(Debug, Clone)]
pub(super) struct Home {
    /// The placement epoch it is served under.
    pub(super) epoch: u64,
    pub(super) replicas: Vec<String>,
    pub(super) values: Vec<u64>,
    /// The generation of its stream: the epoch under which it was last taken (so that the new home's stream
    /// supersedes an old one's).
    pub(super) generation: u64,
    /// A hand-off in progress (recorded, as `node.db` records it): the actor's requests are held.
    pub(super) handoff: Option<Role>,
}

/// A node's part in a hand-off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Role {
    Leaving,
    /// From the node of this index.
    Arriving {
        from: usize,
    },
}

impl Home {
    pub(super) fn position(&self) -> Position {
        Position::new(self.generation, self.values.len() as u32)
    }
}

/// A replica's copy of an actor's database.
#[derive(Debug, Clone)]
pub(super) struct ReplicaCopy {
    pub(super) position: Position,
    pub(super) values: Vec<u64>,
}

/// What a node keeps across crashes.
#[derive(Debug, Default)]
pub(super) struct Disk {
    /// The liveness epoch it holds its lease under.
    pub(super) epoch: u64,
    pub(super) homes: BTreeMap<String, Home>,
    /// Copies, with the node they came from.
    pub(super) copies: BTreeMap<String, (String, ReplicaCopy)>,
}

/// What a node loses when it crashes.
pub(super) struct Memory {
    pub(super) lease: Lease,
    pub(super) directory: Arc<ClusterDirectory<SimVoters>>,
    /// Where each replica acknowledged it is, per actor.
    pub(super) acked: BTreeMap<(String, String), Position>,
    /// One clone per write in flight.
    pub(super) writes: Arc<()>,
    /// The hand-over this node prepared as the target of a move (`Expect`).
    pub(super) prepared: Option<PreparedHandOver>,
    pub(super) tasks: Vec<JoinHandle<()>>,
}

/// One simulated node.
pub(super) struct Node {
    pub(super) index: usize,
    pub(super) id: String,
    pub(super) world: Arc<World>,
    pub(super) disk: Mutex<Disk>,
    /// `None` while the node is down.
    pub(super) memory: Mutex<Option<Memory>>,
    /// How far its wall clock is from true time, in milliseconds.
    pub(super) offset_ms: Mutex<i64>,
}

impl Node {
    pub(super) fn is_up(&self) -> bool {
        lock(&self.memory).is_some()
    }

    pub(super) fn lease(&self) -> Option<Lease> {
        lock(&self.memory).as_ref().map(|m| m.lease.clone())
    }

    /// Starts the node (again) from its disk: a lease not held yet under its recorded epoch, a fresh directory
    /// cache, and its renewal, failover and shipping loops.
    pub(super) fn start(self: &Arc<Self>) {
        let world = &self.world;
        let epoch = lock(&self.disk).epoch;
        let seed = world.seed.rotate_left(self.index as u32 * 7 + 3) ^ world.start.elapsed().as_micros() as u64;
        let proposer = Proposer::seeded(self.id.clone(), Arc::new(world.net.voters(self.index)), seed);
        let memory = Memory {
            lease: Lease::new(world.timing, epoch),
            directory: Arc::new(ClusterDirectory::new(proposer, crate::metrics::Metrics::new("sim"))),
            acked: BTreeMap::new(),
            writes: Arc::new(()),
            prepared: None,
            tasks: Vec::new(),
        };
        let (lease, directory) = (memory.lease.clone(), memory.directory.clone());
        *lock(&self.memory) = Some(memory);
        let node = self.clone();
        let renewing = {
            let (lease, directory) = (lease.clone(), directory.clone());
            tokio::spawn(async move { renew_forever(&directory, &lease, &*node).await })
        };
        let node = self.clone();
        let watching = tokio::spawn(async move { node.watch(&directory, &lease).await });
        let node = self.clone();
        let shipping = tokio::spawn(async move { node.ship().await });
        self.track(renewing);
        self.track(watching);
        self.track(shipping);
        let unfinished: Vec<Role> = lock(&self.disk).homes.values().filter_map(|h| h.handoff).collect();
        for role in unfinished {
            let node = self.clone();
            self.track(tokio::spawn(async move { node.settle_handoff(role).await }));
        }
    }

    /// Keeps `task` to abort it when the node crashes.
    pub(super) fn track(&self, task: JoinHandle<()>) {
        match lock(&self.memory).as_mut() {
            Some(memory) => {
                memory.tasks.retain(|t| !t.is_finished());
                memory.tasks.push(task);
            }
            None => task.abort(),
        }
    }

    /// Runs a request that arrived at this node as one of its tasks: a crash of this node ends it unanswered, and
    /// nothing that happens to the sender stops it.
    pub(super) async fn serve<T: Send + 'static>(
        &self,
        request: impl Future<Output = T> + Send + 'static,
    ) -> Option<T> {
        let (answer, answered) = tokio::sync::oneshot::channel();
        self.track(tokio::spawn(async move {
            let _ = answer.send(request.await);
        }));
        answered.await.ok()
    }

    /// Crashes the node: its tasks stop and its memory is gone; its disk stays.
    pub(super) fn crash(&self) {
        if let Some(memory) = lock(&self.memory).take() {
            memory.tasks.iter().for_each(JoinHandle::abort);
        }
    }

    /// The failover loop of `failover::run`: every 250 ms, while its lease holds, the node settles its copies
    /// with the directory (at start, then every [`SETTLE_EVERY`]), and the homes of its copies that membership
    /// does not see alive go through the production [`fail_over`].
    pub(super) async fn watch(self: &Arc<Self>, directory: &ClusterDirectory<SimVoters>, lease: &Lease) {
        let mut next_settle = Instant::now();
        loop {
            tokio::time::sleep(Duration::from_millis(250)).await;
            if lease.check().is_err() {
                continue;
            }
            if Instant::now() >= next_settle && settle_copies(directory, lease, &**self).await.is_ok() {
                next_settle = Instant::now() + SETTLE_EVERY;
            }
            let mut by_home: BTreeMap<String, Vec<String>> = BTreeMap::new();
            for (actor_id, (from, _)) in &lock(&self.disk).copies {
                by_home.entry(from.clone()).or_default().push(actor_id.clone());
            }
            for (home, actors) in by_home {
                let Some(index) = self.world.index_of(&home) else { continue };
                if index == self.index || self.world.looks_alive(self.index, index) {
                    continue;
                }
                // A failover that did not finish (no quorum, a lost answer) is tried again on the next round.
                let _ = fail_over(directory, lease, &**self, &home, actors).await;
            }
        }
    }

    /// Ships every database this node is home of to its replicas, forever; a replica keeps a shipment only if
    /// it is newer than its copy, and answers with its position.
    pub(super) async fn ship(self: &Arc<Self>) {
        loop {
            tokio::time::sleep(SHIP_EVERY).await;
            let homes = lock(&self.disk).homes.clone();
            for (actor_id, home) in homes {
                for replica in &home.replicas {
                    let Some(to) = self.world.index_of(replica) else { continue };
                    let node = self.clone();
                    let (actor_id, home) = (actor_id.clone(), home.clone());
                    self.track(tokio::spawn(async move { node.ship_to(to, &actor_id, home).await }));
                }
            }
        }
    }

    pub(super) async fn ship_to(&self, to: usize, actor_id: &str, home: Home) {
        let net = &self.world.net;
        if !net.carry(Place::Node(self.index), Place::Node(to)).await {
            return;
        }
        let Some(at) = self.world.node(to).receive(&self.id, actor_id, &home) else { return };
        if !net.carry(Place::Node(to), Place::Node(self.index)).await {
            return;
        }
        if let Some(memory) = lock(&self.memory).as_mut() {
            let acked = memory.acked.entry((actor_id.to_string(), self.world.node(to).id.clone())).or_default();
            *acked = (*acked).max(at);
        }
    }

    /// A shipment from `from` arrives: kept if newer than the copy (never on the actor's home).
    pub(super) fn receive(&self, from: &str, actor_id: &str, home: &Home) -> Option<Position> {
        if !self.is_up() {
            return None;
        }
        let mut disk = lock(&self.disk);
        if disk.homes.contains_key(actor_id) {
            return None;
        }
        let position = home.position();
        let newer = disk.copies.get(actor_id).is_none_or(|(_, copy)| copy.position < position);
        if newer {
            let copy = ReplicaCopy { position, values: home.values.clone() };
            disk.copies.insert(actor_id.to_string(), (from.to_string(), copy));
        }
        Some(disk.copies[actor_id].1.position)
    }

    /// A client's write of `value` arrives: committed and acknowledged as a home does, or refused.
    pub(super) async fn write(&self, value: u64) -> Result<(), ClientError> {
        let lease = self.lease().ok_or_else(ClientError::internal)?;
        lease.check()?;
        let (epoch, position, replicas, _in_flight) = {
            let mut disk = lock(&self.disk);
            let home = disk.homes.get_mut(ACTOR).ok_or_else(|| ClientError::actor_not_found(ACTOR))?;
            if home.handoff.is_some() {
                return Err(ClientError::migration_in_progress(ACTOR));
            }
            let in_flight = lock(&self.memory).as_ref().map(|m| m.writes.clone());
            home.values.push(value);
            (home.epoch, home.position(), home.replicas.clone(), in_flight)
        };
        let replicated = async {
            if self.world.setup.mode == ReplicationMode::Sync {
                self.replicated(position, &replicas).await?;
            }
            Ok(())
        };
        if self.world.planted == Planted::NoLeaseCheckAfterTheWait {
            lease.check()?;
            replicated.await?;
        } else {
            lease.confirm(replicated).await?;
        }
        let at = self.world.start.elapsed();
        lock(&self.world.acks).push(Ack { at, node: self.index, epoch, value });
        Ok(())
    }

    /// Waits until one of `replicas` acknowledged `position`, up to [`SYNC_TIMEOUT`].
    pub(super) async fn replicated(&self, position: Position, replicas: &[String]) -> Result<(), ClientError> {
        let deadline = Instant::now() + SYNC_TIMEOUT;
        while Instant::now() < deadline {
            let reached = lock(&self.memory).as_ref().is_some_and(|m| {
                replicas.iter().any(|r| m.acked.get(&(ACTOR.to_string(), r.clone())).is_some_and(|p| *p >= position))
            });
            if reached {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        Err(ClientError::unavailable("no replica confirmed the write"))
    }
}

impl Node {
    /// The node's state in one line, for reports.
    pub(super) fn describe(&self) -> String {
        let disk = lock(&self.disk);
        let homes: Vec<_> =
            disk.homes.iter().map(|(a, h)| (a, h.epoch, h.position(), &h.replicas, h.handoff)).collect();
        let copies: Vec<_> = disk.copies.iter().map(|(a, (from, c))| (a, from, c.position)).collect();
        let lease = self.lease().map(|l| (l.epoch(), l.check().is_ok()));
        format!("{} epoch {} lease {lease:?} homes {homes:?} copies {copies:?}", self.id, disk.epoch)
    }
}

impl LeaseHolder for Node {
    fn local_id(&self) -> &str {
        &self.id
    }

    fn now_ms(&self) -> i64 {
        EPOCH_MS + self.world.start.elapsed().as_millis() as i64 + *lock(&self.offset_ms)
    }

    async fn local_actor_ids(&self) -> Result<Vec<String>, ClientError> {
        Ok(lock(&self.disk).homes.keys().cloned().collect())
    }

    /// Keeps the actor under its new epoch, or lets it go once the writes in flight ended, as `Host::release`
    /// waits for the actor's turn to end.
    async fn taken_back(&self, placement: &Placement) -> Result<(), ClientError> {
        if placement.home == self.id {
            if let Some(home) = lock(&self.disk).homes.get_mut(&placement.actor_id) {
                (home.epoch, home.generation) = (placement.epoch, placement.epoch);
            }
            return Ok(());
        }
        self.writes_ended().await;
        lock(&self.disk).homes.remove(&placement.actor_id);
        Ok(())
    }

    async fn record_epoch(&self, epoch: u64) -> Result<(), ClientError> {
        lock(&self.disk).epoch = epoch;
        Ok(())
    }

    fn count_renewal(&self, _outcome: &'static str) {}
}

impl Successor for Node {
    fn region(&self) -> &str {
        "sim"
    }

    async fn copy_position(&self, actor_id: &str) -> Result<Position, ClientError> {
        let disk = lock(&self.disk);
        disk.copies.get(actor_id).map(|(_, copy)| copy.position).ok_or_else(|| ClientError::actor_not_found(actor_id))
    }

    async fn peer_copy(&self, node_id: &str, actor_id: &str) -> PeerCopy {
        let (net, Some(to)) = (&self.world.net, self.world.index_of(node_id)) else { return PeerCopy::Silent };
        let peer = self.world.node(to);
        if !net.carry(Place::Node(self.index), Place::Node(to)).await || !peer.is_up() {
            return PeerCopy::Silent;
        }
        let copy = lock(&peer.disk).copies.get(actor_id).map_or(PeerCopy::Missing, |(_, c)| PeerCopy::At(c.position));
        if net.carry(Place::Node(to), Place::Node(self.index)).await { copy } else { PeerCopy::Silent }
    }

    async fn copies(&self) -> Result<Vec<String>, ClientError> {
        Ok(lock(&self.disk).copies.keys().cloned().collect())
    }

    async fn hosts(&self, actor_id: &str) -> Result<bool, ClientError> {
        Ok(lock(&self.disk).homes.contains_key(actor_id))
    }

    async fn policy(&self, _actor_id: &str) -> Result<(usize, ReplicationMode), ClientError> {
        Ok((self.world.setup.replicas, self.world.setup.mode))
    }

    fn choose_replicas(&self, count: usize, avoid: &[String]) -> Vec<String> {
        let mut candidates: Vec<usize> = (0..NODES)
            .filter(|&i| i != self.index && self.world.looks_alive(self.index, i))
            .filter(|&i| !avoid.contains(&self.world.node(i).id))
            .collect();
        let mut chosen = Vec::new();
        while chosen.len() < count && !candidates.is_empty() {
            let pick = candidates.remove(self.world.net.below(candidates.len()));
            chosen.push(self.world.node(pick).id.clone());
        }
        chosen
    }

    async fn drop_copy(&self, actor_id: &str) -> Result<(), ClientError> {
        lock(&self.disk).copies.remove(actor_id);
        Ok(())
    }

    async fn become_home(&self, placement: &Placement) -> Result<(), ClientError> {
        let mut disk = lock(&self.disk);
        let (_, copy) = disk.copies.remove(&placement.actor_id).ok_or_else(ClientError::internal)?;
        let home = Home {
            epoch: placement.epoch,
            replicas: placement.replicas.clone(),
            values: copy.values,
            generation: placement.epoch,
            handoff: None,
        };
        disk.homes.insert(placement.actor_id.clone(), home);
        Ok(())
    }
}
