//! A deterministic simulation of leases, failover and moves: simulated nodes run the production lease ([`Lease`]),
//! its renewal loop ([`renew_forever`], with the take-back of a fenced node's actors), failover ([`fail_over`]: the
//! fencing of an expired home, the choice of the freshest replica, the take-over by compare-and-set;
//! [`settle_copies`]), the directory steps of a move ([`claim`], [`settle_leaving_once`]) and the directory itself
//! ([`ClusterDirectory`] with its production proposer), over the simulated network and voters of [`crate::simnet`],
//! while the nemesis crashes nodes and voters, cuts links one way, isolates nodes or cuts them off from the voters,
//! membership suspects live nodes, and the nodes' wall clocks move within the bound the leases assume.
//!
//! What is simulated rather than run: an actor's database is a list of written values, its replication stream
//! ships the whole list at a position (generation, length) that replicas keep only if it is newer, and a write is
//! committed by appending to the home's list. A home takes a write only while its lease holds and no hand-off holds
//! its requests, and replies as the runtime does (`replica::Replication::committed`): the lease confirmed around
//! the wait for a replica in `sync` mode ([`Lease::confirm`]). A move follows `migrate.rs`: the target prepares the
//! hand-over, the home records the hand-off and holds requests, lets the writes in flight finish, waits until the
//! target holds its last position and asks it to take the actor over; the target checks its copy, records the
//! arrival and claims the placement; a hand-off that did not finish, or that a crash interrupted, is settled by the
//! directory.
//!
//! Each run has one actor, four nodes (the actor's home, one or two replicas, and a spare), two clients writing
//! unique values, one to whichever node it believes is the home, one to any node, and the home moving the actor to
//! one of its replicas every one to four seconds, for 20 simulated seconds of faults; then everything heals and the
//! run waits until a node serves the actor again. The history of acknowledged writes must show:
//! - **one home at a time**: in real-time order, the placement epochs under which writes were acknowledged never
//!   go back, and each epoch belongs to one node;
//! - **no acknowledged write lost** (`sync` mode): every acknowledged value is in the database of the node that
//!   serves the actor once everything healed;
//! - **an actor is served again** once the faults end.
//!
//! `TERN_FAILOVER_SIM_SEEDS=N` runs seeds 1 to N (100 by default); `TERN_FAILOVER_SIM_SEED=S` runs seed S alone. A
//! seed that breaks an invariant fails the test with the command that replays it; three planted bugs must be
//! caught: a home that does not check its lease after the wait for its replica, clocks eight times beyond the
//! bound, and a move's target that serves without moving the placement.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use tern_proto::ClientError;
use tern_replication::wal::Position;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::failover::{SETTLE_EVERY, Successor, fail_over, settle_copies};
use super::migrate::{claim, settle_leaving_once};
use super::renew::{LeaseHolder, renew_forever};
use super::{Lease, LeaseTiming};
use crate::cluster::Profile;
use crate::cluster::directory::paxos::Proposer;
use crate::cluster::directory::{ClusterDirectory, HandOver, Placement, PreparedHandOver};
use crate::replica::{PeerCopy, ReplicationMode};
use crate::simnet::{Place, SimNet, SimVoters, Weather, lock};

const ACTOR: &str = "actor-0";
const NODES: usize = 4;
const CLIENTS: usize = 2;
/// How long the faults go on.
const FAULTS_FOR: Duration = Duration::from_secs(20);
/// How long a healed cluster may take to serve the actor again.
const SETTLE_WITHIN: Duration = Duration::from_secs(60);
/// How often a home ships its database to its replicas.
const SHIP_EVERY: Duration = Duration::from_millis(20);
/// How long a write waits for a replica in `sync` mode.
const SYNC_TIMEOUT: Duration = Duration::from_secs(10);
/// The wall clock's reading when a run starts.
const EPOCH_MS: i64 = 1_800_000_000_000;

/// What a run's seed decided.
#[derive(Debug, Clone, Copy)]
struct Setup {
    voters: usize,
    weather: Weather,
    replicas: usize,
    mode: ReplicationMode,
    nemesis_every: Duration,
    /// The widest a node's clock strays from true time.
    clock_spread: Duration,
}

/// A bug planted on purpose, which the invariants must catch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Planted {
    None,
    /// Clocks stray eight times as far as the leases assume.
    ClocksBeyondTheBound,
    /// A home that checks its lease before it waits for a replica but not after (the runtime did until this
    /// simulation caught it).
    NoLeaseCheckAfterTheWait,
    /// A move's target that serves the actor without moving its placement in the directory.
    TargetSkipsTheDirectory,
}

/// An actor's database on its home.
#[derive(Debug, Clone)]
struct Home {
    /// The placement epoch it is served under.
    epoch: u64,
    replicas: Vec<String>,
    values: Vec<u64>,
    /// The generation of its stream: the epoch under which it was last taken (so that the new home's stream
    /// supersedes an old one's).
    generation: u64,
    /// A hand-off in progress (recorded, as `node.db` records it): the actor's requests are held.
    handoff: Option<Role>,
}

/// A node's part in a hand-off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Leaving,
    Arriving,
}

impl Home {
    fn position(&self) -> Position {
        Position::new(self.generation, self.values.len() as u32)
    }
}

/// A replica's copy of an actor's database.
#[derive(Debug, Clone)]
struct Copy {
    position: Position,
    values: Vec<u64>,
}

/// What a node keeps across crashes.
#[derive(Debug, Default)]
struct Disk {
    /// The liveness epoch it holds its lease under.
    epoch: u64,
    homes: BTreeMap<String, Home>,
    /// Copies, with the node they came from.
    copies: BTreeMap<String, (String, Copy)>,
}

/// What a node loses when it crashes.
struct Memory {
    lease: Lease,
    directory: Arc<ClusterDirectory<SimVoters>>,
    /// Where each replica acknowledged it is, per actor.
    acked: BTreeMap<(String, String), Position>,
    /// One clone per write in flight.
    writes: Arc<()>,
    /// The hand-over this node prepared as the target of a move (`Expect`).
    prepared: Option<PreparedHandOver>,
    tasks: Vec<JoinHandle<()>>,
}

/// One simulated node.
struct Node {
    index: usize,
    id: String,
    world: Arc<World>,
    disk: Mutex<Disk>,
    /// `None` while the node is down.
    memory: Mutex<Option<Memory>>,
    /// How far its wall clock is from true time, in milliseconds.
    offset_ms: Mutex<i64>,
}

/// One acknowledged write.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Ack {
    at: Duration,
    node: usize,
    epoch: u64,
    value: u64,
}

/// Everything a run shares.
struct World {
    net: Arc<SimNet>,
    setup: Setup,
    planted: Planted,
    timing: LeaseTiming,
    seed: u64,
    start: Instant,
    nodes: Mutex<Vec<Arc<Node>>>,
    acks: Mutex<Vec<Ack>>,
    /// The placement epochs of the moves that finished.
    moves: Mutex<Vec<u64>>,
}

impl World {
    fn node(&self, index: usize) -> Arc<Node> {
        lock(&self.nodes)[index].clone()
    }

    fn index_of(&self, id: &str) -> Option<usize> {
        lock(&self.nodes).iter().position(|n| n.id == id)
    }

    /// Whether `node` looks alive from `from`, as membership would say: up and reachable both ways, except for
    /// a false suspicion now and then.
    fn looks_alive(&self, from: usize, node: usize) -> bool {
        let (a, b) = (Place::Node(from), Place::Node(node));
        self.node(node).is_up() && self.net.reaches(a, b) && self.net.reaches(b, a) && !self.net.chance(0.25)
    }
}

impl Node {
    fn is_up(&self) -> bool {
        lock(&self.memory).is_some()
    }

    fn lease(&self) -> Option<Lease> {
        lock(&self.memory).as_ref().map(|m| m.lease.clone())
    }

    /// Starts the node (again) from its disk: a lease not held yet under its recorded epoch, a fresh directory
    /// cache, and its renewal, failover and shipping loops.
    fn start(self: &Arc<Self>) {
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
    fn track(&self, task: JoinHandle<()>) {
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
    async fn serve<T: Send + 'static>(&self, request: impl Future<Output = T> + Send + 'static) -> Option<T> {
        let (answer, answered) = tokio::sync::oneshot::channel();
        self.track(tokio::spawn(async move {
            let _ = answer.send(request.await);
        }));
        answered.await.ok()
    }

    /// Crashes the node: its tasks stop and its memory is gone; its disk stays.
    fn crash(&self) {
        if let Some(memory) = lock(&self.memory).take() {
            memory.tasks.iter().for_each(JoinHandle::abort);
        }
    }

    /// The failover loop of `failover::run`: every 250 ms, while its lease holds, the node settles its copies
    /// with the directory (at start, then every [`SETTLE_EVERY`]), and the homes of its copies that membership
    /// does not see alive go through the production [`fail_over`].
    async fn watch(self: &Arc<Self>, directory: &ClusterDirectory<SimVoters>, lease: &Lease) {
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
    async fn ship(self: &Arc<Self>) {
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

    async fn ship_to(&self, to: usize, actor_id: &str, home: Home) {
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
    fn receive(&self, from: &str, actor_id: &str, home: &Home) -> Option<Position> {
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
            let copy = Copy { position, values: home.values.clone() };
            disk.copies.insert(actor_id.to_string(), (from.to_string(), copy));
        }
        Some(disk.copies[actor_id].1.position)
    }

    /// A client's write of `value` arrives: committed and acknowledged as a home does, or refused.
    async fn write(&self, value: u64) -> Result<(), ClientError> {
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
    async fn replicated(&self, position: Position, replicas: &[String]) -> Result<(), ClientError> {
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

/// Moves on demand: the home's and the target's sides of `migrate.rs`, with its directory steps
/// ([`settle_leaving_once`], [`claim`]) run as they are.
impl Node {
    /// The home moves the actor to node `to`, one of its replicas: the target prepares the hand-over, the home
    /// records the hand-off and holds requests, lets the writes in flight finish, waits until the target holds its
    /// last position, and asks it to take the actor over; a hand-off that did not finish is settled by the
    /// directory.
    async fn move_to(self: &Arc<Self>, to: usize) {
        let Some((lease, directory)) = lock(&self.memory).as_ref().map(|m| (m.lease.clone(), m.directory.clone()))
        else {
            return;
        };
        if lease.check().is_err() {
            return;
        }
        let Ok(Some(placement)) = directory.placement(ACTOR, true).await else { return };
        if placement.home != self.id {
            return;
        }
        let target = self.world.node(to);
        let net = &self.world.net;
        if net.carry(Place::Node(self.index), Place::Node(to)).await {
            let expecting = target.clone();
            target.serve(async move { expecting.expect().await }).await;
        }
        {
            let mut disk = lock(&self.disk);
            let Some(home) = disk.homes.get_mut(ACTOR).filter(|h| h.handoff.is_none()) else { return };
            home.handoff = Some(Role::Leaving);
        }
        self.writes_ended().await;
        let (position, replicas) = {
            let disk = lock(&self.disk);
            let Some(home) = disk.homes.get(ACTOR) else { return };
            let others = placement.replicas.iter().filter(|r| **r != target.id && **r != self.id).cloned();
            let replicas: Vec<String> =
                std::iter::once(self.id.clone()).chain(others).take(self.world.setup.replicas).collect();
            (home.position(), replicas)
        };
        let answer = match self.reached(&target.id, position, Duration::from_secs(20)).await {
            true if net.carry(Place::Node(self.index), Place::Node(to)).await => {
                let (taking, from, epoch) = (target.clone(), self.id.clone(), placement.epoch);
                let taking_home = async move { taking.take_home(&from, epoch, position, replicas).await };
                let answer = target.serve(taking_home).await.flatten();
                net.carry(Place::Node(to), Place::Node(self.index)).await.then_some(answer).flatten()
            }
            _ => None,
        };
        match answer {
            Some(epoch) => {
                self.leave(&target.id, epoch);
                lock(&self.world.moves).push(epoch);
            }
            None => self.settle_handoff(Role::Leaving).await,
        }
    }

    /// Waits until no write is in flight on this node.
    async fn writes_ended(&self) {
        let writes = lock(&self.memory).as_ref().map(|m| m.writes.clone());
        // One clone is the node's, one this.
        while writes.as_ref().is_some_and(|w| Arc::strong_count(w) > 2) {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }

    /// Waits up to `limit` until `replica` acknowledged `position`.
    async fn reached(&self, replica: &str, position: Position, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            let acked = lock(&self.memory)
                .as_ref()
                .and_then(|m| m.acked.get(&(ACTOR.to_string(), replica.to_string())).copied());
            if acked.is_some_and(|p| p >= position) {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        false
    }

    /// The target prepares the hand-over in the directory (`Expect`).
    async fn expect(&self) {
        let Some(directory) = lock(&self.memory).as_ref().map(|m| m.directory.clone()) else { return };
        let prepared = directory.prepare_hand_over(ACTOR).await.ok();
        if let Some(memory) = lock(&self.memory).as_mut() {
            memory.prepared = prepared;
        }
    }

    /// The target's side (`TakeHome`): its copy must be exactly at the home's last position; it records the
    /// arrival (requests held), claims the placement, and serves the actor if the directory names it. Returns the
    /// new placement epoch, or `None` when it refused or the directory did not name it.
    async fn take_home(&self, from: &str, epoch: u64, position: Position, replicas: Vec<String>) -> Option<u64> {
        let (lease, directory, prepared) = {
            let mut memory = lock(&self.memory);
            let memory = memory.as_mut()?;
            (memory.lease.clone(), memory.directory.clone(), memory.prepared.take())
        };
        lease.check().ok()?;
        {
            let mut disk = lock(&self.disk);
            let holds = disk.copies.get(ACTOR).is_some_and(|(home, copy)| home == from && copy.position == position);
            if !holds || disk.homes.contains_key(ACTOR) {
                return None;
            }
            let (_, copy) = disk.copies.remove(ACTOR)?;
            let arriving = Home {
                epoch,
                replicas: replicas.clone(),
                values: copy.values,
                generation: position.generation,
                handoff: Some(Role::Arriving),
            };
            disk.homes.insert(ACTOR.to_string(), arriving);
        }
        let moving =
            HandOver { actor_id: ACTOR, from, epoch, to: &self.id, to_epoch: lease.epoch(), region: "sim", replicas };
        if self.world.planted == Planted::TargetSkipsTheDirectory {
            let now = Placement { home: self.id.clone(), epoch: epoch + 1, ..first_placement(vec![]) };
            return self.arrived(Some(&now));
        }
        let decided = claim(&directory, &moving, prepared).await;
        self.arrived(decided.as_ref())
    }

    /// Ends an arrival as the directory decided it: served here under `decided` if it names this node, else undone.
    fn arrived(&self, decided: Option<&Placement>) -> Option<u64> {
        let mut disk = lock(&self.disk);
        match decided {
            Some(now) if now.home == self.id => {
                let home = disk.homes.get_mut(ACTOR)?;
                (home.epoch, home.generation, home.handoff) = (now.epoch, now.epoch, None);
                Some(now.epoch)
            }
            _ => {
                disk.homes.remove(ACTOR);
                None
            }
        }
    }

    /// The old home forgets the actor that left for `new_home`, keeping its database as a replica's copy.
    fn leave(&self, new_home: &str, _epoch: u64) {
        let mut disk = lock(&self.disk);
        if let Some(home) = disk.homes.remove(ACTOR) {
            let copy = Copy { position: home.position(), values: home.values };
            disk.copies.insert(ACTOR.to_string(), (new_home.to_string(), copy));
        }
    }

    /// Settles a hand-off that did not finish (or that a crash interrupted) with the directory, asking until it
    /// answers: the home takes the actor back or lets it go ([`settle_leaving_once`]); the target keeps it only if
    /// the directory names it.
    async fn settle_handoff(&self, role: Role) {
        let Some((lease, directory)) = lock(&self.memory).as_ref().map(|m| (m.lease.clone(), m.directory.clone()))
        else {
            return;
        };
        if role == Role::Arriving {
            let decided = directory.placement_when_known(ACTOR, Duration::from_millis(500)).await;
            self.arrived(decided.as_ref());
            return;
        }
        loop {
            match settle_leaving_once(&directory, ACTOR, &self.id, lease.epoch()).await {
                Ok(Some(p)) if p.home == self.id => {
                    if let Some(home) = lock(&self.disk).homes.get_mut(ACTOR) {
                        (home.epoch, home.generation, home.handoff) = (p.epoch, p.epoch, None);
                    }
                    return;
                }
                Ok(Some(p)) => return self.leave(&p.home, p.epoch),
                Ok(None) => {
                    lock(&self.disk).homes.remove(ACTOR);
                    return;
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(500)).await,
            }
        }
    }
}

impl Node {
    /// The node's state in one line, for reports.
    fn describe(&self) -> String {
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

    fn local_actor_ids(&self) -> Vec<String> {
        lock(&self.disk).homes.keys().cloned().collect()
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

    fn hosts(&self, actor_id: &str) -> bool {
        lock(&self.disk).homes.contains_key(actor_id)
    }

    fn policy(&self, _actor_id: &str) -> (usize, ReplicationMode) {
        (self.world.setup.replicas, self.world.setup.mode)
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

/// What one run recorded.
#[derive(Debug, PartialEq, Eq)]
struct History {
    setup: String,
    acks: Vec<Ack>,
    /// The node serving the actor once everything healed, and its database; `None` if none did in time.
    served: Option<(usize, Vec<u64>)>,
    failovers: u64,
    /// How many moves finished.
    moves: usize,
    /// The directory's placement and each node's state at the end.
    ended: String,
}

/// Runs seed `seed` on a paused single-threaded runtime.
fn run(seed: u64, planted: Planted) -> History {
    let runtime =
        tokio::runtime::Builder::new_current_thread().enable_time().start_paused(true).build().expect("a runtime");
    runtime.block_on(simulate(seed, planted))
}

async fn simulate(seed: u64, planted: Planted) -> History {
    let timing = LeaseTiming::for_profile(Profile::Lan);
    let mut rng = StdRng::seed_from_u64(seed);
    let setup = {
        let spread = match planted {
            Planted::None | Planted::NoLeaseCheckAfterTheWait | Planted::TargetSkipsTheDirectory => {
                timing.max_offset / 2
            }
            Planted::ClocksBeyondTheBound => timing.max_offset * 8,
        };
        Setup {
            voters: if rng.random::<bool>() { 3 } else { 5 },
            weather: Weather {
                loss: rng.random_range(0.0..0.1),
                max_delay: Duration::from_micros(rng.random_range(100..20_000)),
            },
            replicas: rng.random_range(1..=2),
            mode: if rng.random_range(0..4) == 0 { ReplicationMode::Async } else { ReplicationMode::Sync },
            nemesis_every: Duration::from_millis(rng.random_range(100..1_500)),
            clock_spread: spread,
        }
    };
    let net = SimNet::new(rng.random(), setup.voters, setup.weather, false);
    let world = Arc::new(World {
        net: net.clone(),
        setup,
        planted,
        timing,
        seed,
        start: Instant::now(),
        nodes: Mutex::new(Vec::new()),
        acks: Mutex::new(Vec::new()),
        moves: Mutex::new(Vec::new()),
    });
    for index in 0..NODES {
        let node = Node {
            index,
            id: format!("node-{index}"),
            world: world.clone(),
            disk: Mutex::default(),
            memory: Mutex::new(None),
            offset_ms: Mutex::new(draw_offset(&net, setup.clock_spread)),
        };
        lock(&world.nodes).push(Arc::new(node));
    }
    // The actor starts on node 0, with its replicas on the next nodes, recorded in the directory first.
    let replicas: Vec<String> = (1..=setup.replicas).map(|i| format!("node-{i}")).collect();
    let placement = first_placement(replicas.clone());
    let reader_place = NODES + CLIENTS;
    let reader = ClusterDirectory::new(
        Proposer::seeded("reader", Arc::new(net.voters(reader_place)), seed),
        crate::metrics::Metrics::new("sim"),
    );
    while reader.record_placement(&placement).await.is_err() {}
    lock(&world.node(0).disk)
        .homes
        .insert(ACTOR.to_string(), Home { epoch: 1, replicas, values: vec![], generation: 1, handoff: None });
    for index in 0..NODES {
        world.node(index).start();
    }

    let nemesis = tokio::spawn(nemesis(world.clone()));
    let mover = tokio::spawn(mover(world.clone()));
    let clients: Vec<_> = (0..CLIENTS).map(|c| tokio::spawn(client(world.clone(), c))).collect();
    tokio::time::sleep(FAULTS_FOR).await;
    nemesis.abort();
    mover.abort();
    clients.iter().for_each(JoinHandle::abort);
    net.heal();
    for index in 0..NODES {
        let node = world.node(index);
        *lock(&node.offset_ms) = 0;
        if !node.is_up() {
            node.start();
        }
    }
    let served = settle(&world, &reader).await;
    let placement = reader.placement(ACTOR, true).await.ok().flatten();
    let ended = format!(
        "placement {:?}; nodes: {}",
        placement.map(|p| (p.home, p.epoch, p.home_epoch, p.replicas)),
        (0..NODES).map(|i| world.node(i).describe()).collect::<Vec<_>>().join("; ")
    );
    let failovers = lock(&world.acks).windows(2).filter(|w| w[0].node != w[1].node).count() as u64;
    let acks = lock(&world.acks).clone();
    for index in 0..NODES {
        world.node(index).crash();
    }
    let moves = lock(&world.moves).len();
    History { setup: format!("{setup:?}"), acks, served, failovers, moves, ended }
}

/// The actor's first placement: on node 0, with `replicas`.
fn first_placement(replicas: Vec<String>) -> Placement {
    Placement {
        actor_id: ACTOR.to_string(),
        name: "counter".to_string(),
        key: vec![],
        home: "node-0".to_string(),
        region: "sim".to_string(),
        epoch: 1,
        create_ts: EPOCH_MS,
        destroy_ts: None,
        home_epoch: 0,
        replicas,
        promoted_from: None,
    }
}

/// A clock offset within `spread` of true time.
fn draw_offset(net: &SimNet, spread: Duration) -> i64 {
    let spread = spread.as_millis() as i64;
    net.rng().random_range(-spread..=spread)
}

/// Strikes every so often until aborted: crashes a node or a voter for a while, cuts a link one way, isolates a
/// node, cuts a node off from the voters only, moves a node's clock, or heals every link.
async fn nemesis(world: Arc<World>) {
    let net = world.net.clone();
    loop {
        tokio::time::sleep(world.setup.nemesis_every).await;
        match net.below(7) {
            0 => {
                let node = world.node(net.below(NODES));
                if node.is_up() {
                    node.crash();
                    let down_for = Duration::from_millis(500 + net.below(8_000) as u64);
                    tokio::spawn(async move {
                        tokio::time::sleep(down_for).await;
                        node.start();
                    });
                }
            }
            1 => net.crash_voter(net.below(world.setup.voters), Duration::from_millis(100 + net.below(3_000) as u64)),
            2 => {
                let places = NODES + world.setup.voters;
                let place = |i: usize| if i < NODES { Place::Node(i) } else { Place::Voter(i - NODES) };
                let (a, b) = (place(net.below(places)), place(net.below(places)));
                net.cut(a, b);
            }
            3 => {
                let alone = Place::Node(net.below(NODES));
                let others = (0..NODES + CLIENTS).map(Place::Node).chain((0..world.setup.voters).map(Place::Voter));
                for other in others.filter(|p| *p != alone) {
                    net.cut(alone, other);
                    net.cut(other, alone);
                }
            }
            4 => {
                // Cut off from the directory, but not from clients or other nodes.
                let node = Place::Node(net.below(NODES));
                for voter in (0..world.setup.voters).map(Place::Voter) {
                    net.cut(node, voter);
                    net.cut(voter, node);
                }
            }
            5 => *lock(&world.node(net.below(NODES)).offset_ms) = draw_offset(&net, world.setup.clock_spread),
            _ => net.heal_links(),
        }
    }
}

/// Every one to four seconds until aborted, the node serving the actor moves it to one of its replicas.
async fn mover(world: Arc<World>) {
    loop {
        tokio::time::sleep(Duration::from_millis(1_000 + world.net.below(3_000) as u64)).await;
        let serving = (0..NODES).map(|i| world.node(i)).find(|node| {
            let replicas =
                lock(&node.disk).homes.get(ACTOR).filter(|h| h.handoff.is_none()).map(|h| h.replicas.clone());
            replicas.is_some_and(|r| !r.is_empty()) && node.lease().is_some_and(|l| l.check().is_ok())
        });
        let Some(node) = serving else { continue };
        let replicas = lock(&node.disk).homes.get(ACTOR).map(|h| h.replicas.clone()).unwrap_or_default();
        let Some(to) = world.index_of(&replicas[world.net.below(replicas.len())]) else { continue };
        let moving = node.clone();
        node.track(tokio::spawn(async move { moving.move_to(to).await }));
    }
}

/// A client writing unique values until aborted: an even one to the node it believes is the actor's home (another,
/// at random, after a refusal), an odd one to any node at random (as gateways with stale caches would), so that
/// two nodes acknowledging at once would both be heard.
async fn client(world: Arc<World>, c: usize) {
    let net = world.net.clone();
    let me = Place::Node(NODES + c);
    let mut target = 0;
    for k in 0u64.. {
        let value = (c as u64) << 32 | k;
        let node = world.node(target);
        let answered = async {
            if !net.carry(me, Place::Node(target)).await {
                return false;
            }
            let writing = node.clone();
            let written = node.serve(async move { writing.write(value).await }).await.is_some_and(|w| w.is_ok());
            net.carry(Place::Node(target), me).await && written
        };
        let ok = tokio::time::timeout(Duration::from_secs(2), answered).await.unwrap_or(false);
        if !ok || c % 2 == 1 {
            target = net.below(NODES);
        }
        if !ok {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

/// Waits until the node the directory names serves the actor under its placement, with a valid lease; returns
/// that node and its database.
async fn settle(world: &World, reader: &ClusterDirectory<SimVoters>) -> Option<(usize, Vec<u64>)> {
    let deadline = Instant::now() + SETTLE_WITHIN;
    while Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let Ok(Some(placement)) = reader.placement(ACTOR, true).await else { continue };
        let Some(index) = world.index_of(&placement.home) else { continue };
        let node = world.node(index);
        let held = node.lease().is_some_and(|l| l.check().is_ok());
        let home = lock(&node.disk).homes.get(ACTOR).cloned();
        if let Some(home) = home
            && held
            && home.epoch == placement.epoch
        {
            return Some((index, home.values));
        }
    }
    None
}

/// The invariants of one history; `Err` names the first one broken.
fn check(history: &History, mode_sync: bool) -> Result<(), String> {
    let mut owners: BTreeMap<u64, usize> = BTreeMap::new();
    let mut latest: Option<&Ack> = None;
    for ack in &history.acks {
        if let Some(owner) = owners.insert(ack.epoch, ack.node)
            && owner != ack.node
        {
            return Err(format!("nodes {owner} and {} both acknowledged writes under epoch {}", ack.node, ack.epoch));
        }
        if let Some(before) = latest
            && ack.epoch < before.epoch
        {
            return Err(format!(
                "node {} acknowledged {ack:?} under epoch {} after node {} had acknowledged {before:?} under epoch {}: \
                 two homes at once",
                ack.node, ack.epoch, before.node, before.epoch
            ));
        }
        latest = Some(ack);
    }
    let Some((_, values)) = &history.served else {
        return Err("no node served the actor within 60 s after every fault healed".to_string());
    };
    if mode_sync {
        for ack in &history.acks {
            if !values.contains(&ack.value) {
                return Err(format!("{ack:?} was acknowledged in sync mode but is not in the actor's database"));
            }
        }
    }
    Ok(())
}

/// How a broken seed is reported: what broke, and the command that replays it.
fn report(seed: u64, why: &str, history: &History) -> String {
    format!(
        "seed {seed} broke an invariant of leases, failover and moves: {why}\n  setup: {}\n  at the end: {}\n  replay: \
         TERN_FAILOVER_SIM_SEED={seed} cargo test -p tern-node handoff::sim -- --nocapture",
        history.setup, history.ended
    )
}

/// The seeds to run: `TERN_FAILOVER_SIM_SEED` alone, else 1 to `TERN_FAILOVER_SIM_SEEDS` (100).
fn seeds() -> std::ops::RangeInclusive<u64> {
    let var = |name: &str| std::env::var(name).ok().and_then(|s| s.parse::<u64>().ok());
    match var("TERN_FAILOVER_SIM_SEED") {
        Some(seed) => seed..=seed,
        None => 1..=var("TERN_FAILOVER_SIM_SEEDS").unwrap_or(100),
    }
}

fn is_sync(history: &History) -> bool {
    history.setup.contains("mode: Sync")
}

#[test]
fn one_home_at_a_time_and_no_acknowledged_write_lost_under_seeded_faults() {
    let (mut runs, mut acks, mut failovers, mut moves) = (0, 0, 0, 0);
    for seed in seeds() {
        let history = run(seed, Planted::None);
        if let Err(why) = check(&history, is_sync(&history)) {
            panic!("{}", report(seed, &why, &history));
        }
        runs += 1;
        acks += history.acks.len();
        failovers += history.failovers;
        moves += history.moves;
    }
    eprintln!(
        "{runs} seeded runs: {acks} writes acknowledged, {failovers} changes of the acknowledging node, {moves} moves"
    );
    assert!(failovers > 0, "no run changed the actor's home: the faults leave nothing to check");
    assert!(moves > 0, "no move finished: the hand-off went unchecked");
}

#[test]
fn a_seed_replays_exactly() {
    let seed = *seeds().start();
    assert_eq!(run(seed, Planted::None), run(seed, Planted::None), "seed {seed} ran twice differently");
}

/// The first of `seeds` whose run with `planted` breaks an invariant, as its report.
fn first_caught(planted: Planted, seeds: std::ops::RangeInclusive<u64>) -> Option<String> {
    seeds.into_iter().find_map(|seed| {
        let history = run(seed, planted);
        check(&history, is_sync(&history)).err().map(|why| report(seed, &why, &history))
    })
}

#[test]
fn a_home_replying_without_its_lease_is_caught_and_reported_with_the_replay_command() {
    let report = first_caught(Planted::NoLeaseCheckAfterTheWait, 1..=300)
        .expect("no seed of 300 caught a home that replies without checking its lease after the wait");
    eprintln!("{report}");
    assert!(report.contains("replay: TERN_FAILOVER_SIM_SEED="), "{report}");
}

#[test]
fn a_target_serving_without_the_directory_is_caught() {
    let report = first_caught(Planted::TargetSkipsTheDirectory, 1..=300)
        .expect("no seed of 300 caught a move's target that serves without the directory");
    eprintln!("{report}");
}

#[test]
fn clocks_beyond_the_leases_bound_are_caught() {
    let report = first_caught(Planted::ClocksBeyondTheBound, 1..=300)
        .expect("no seed of 300 caught clocks eight times beyond the leases' bound");
    eprintln!("{report}");
}
