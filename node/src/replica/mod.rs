//! Replication of actors' databases to other nodes: every replicated actor's committed transactions are shipped
//! from its home to its replicas as WAL frames (the mechanics are in [`tern_replication::wal`]; this module knows
//! which actors, which nodes, and when).
//!
//! * **Which replicas.** When a home first opens an actor's database, it picks `--replicas` live members (default
//!   one), preferring other regions, then other zones, and records the set in `node.db`. A cluster of one node
//!   replicates nothing.
//! * **When.** After every commit (the runtime's one hook between commit and reply, [`Replicator`]) the home notes
//!   the committed position; one task per replica ([`home::ship`]) sends what the replica lacks, or a snapshot of
//!   the database file when it has no usable copy. In `sync` mode the turn's replies wait until a replica holds the
//!   commit; in `async` mode they leave at once and replicas follow.
//! * **Generations.** The home checkpoints its WAL only when every replica has all of it (and at the latest after
//!   64k frames), recording the next generation in `node.db` first.
//! * **Replicas** ([`copy`]) apply frames to their own file, written by nothing else, and record their position in
//!   `node.db` before they acknowledge.
//!
//! Failover and moves on demand are in [`crate::handoff`]; [`moving`] is replication's part in a move.

mod copy;
mod home;
mod moving;
mod wire;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use tern_gateway::backend::{ReplicaInfo, ReplicaSet};
use tern_proto::ClientError;
use tern_replication::wal::Position;
use tern_replication::{PeerInfo, Transport};

use crate::cluster::backend::ClusterBackend;
use crate::cluster::rpc::{self, answer};
use crate::cluster::{MemberState, Members};
use crate::handoff::Lease;
use crate::runtime::host::HostCore;
use crate::runtime::replicator::Replicator;
use crate::sdk::definition::BoxFuture;
use crate::storage::ActorDb;
use crate::storage::wal_streams::{StreamRecord, StreamRole};
use crate::sync::lock;
use home::HomeStream;
pub use wire::ReplicationMessage;
use wire::{AdvanceCopy, AskPosition, Refusal, ShipFrames, ShipSnapshot};

/// How often a home looks over the replica sets of all its actors.
const REPAIR_EVERY: Duration = Duration::from_secs(2);

/// A replica's writer is closed after this long without a batch from its home.
const IDLE_COPY: Duration = Duration::from_secs(30);

/// How often a `sync` reply waiting for its replica looks for replicas to replace.
const SYNC_REPAIR_EVERY: Duration = Duration::from_secs(1);

/// How long a turn waits for the node's lease (a node that just started, or renews late) before it fails.
const LEASE_WAIT: Duration = Duration::from_secs(5);

pub use crate::sdk::ReplicationMode;

/// How a node replicates the actors it is home to.
#[derive(Clone, Copy, Debug)]
pub struct ReplicationSettings {
    /// How many replicas each actor keeps (0: none).
    pub replicas: usize,
    /// When replies leave.
    pub mode: ReplicationMode,
    /// How long a `sync` reply waits for a replica before it fails with `actor.unavailable`.
    pub sync_timeout: Duration,
}

impl Default for ReplicationSettings {
    fn default() -> Self {
        ReplicationSettings { replicas: 1, mode: ReplicationMode::Async, sync_timeout: Duration::from_secs(10) }
    }
}

/// What the shipping tasks and the service share.
pub(crate) struct Context {
    core: Arc<HostCore>,
    transport: Transport,
    members: Members,
    local_id: String,
}

impl Context {
    /// The QUIC address of a live member.
    fn address(&self, node_id: &str) -> Option<SocketAddr> {
        self.members.get(node_id).filter(|m| m.state != MemberState::Down).map(|m| m.node.quic_addr)
    }
}

/// What a node said of its replica of an actor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum PeerCopy {
    /// Its copy is at this position.
    At(Position),
    /// It holds no copy.
    Missing,
    /// It did not answer (unknown, down, cut off, or refused the question).
    Silent,
}

/// A node's replication: the streams it is home to, the copies it holds for others, and the service peers call.
/// Cheap to clone.
#[derive(Clone)]
pub struct Replication {
    ctx: Arc<Context>,
    settings: ReplicationSettings,
    streams: Arc<tokio::sync::Mutex<HashMap<String, Option<Arc<HomeStream>>>>>,
    copies: Arc<copy::Copies>,
    /// The node's liveness lease: nothing commits or replies without it. `None` without voters.
    lease: Option<Lease>,
    /// The cluster's backend, for the directory where replica sets are recorded.
    backend: Option<ClusterBackend>,
    /// Held while a stream is set up, so that one actor's stream is never set up twice.
    setting_up: Arc<tokio::sync::Mutex<()>>,
    /// Until when a home with no candidate replica stops looking (so that a lone node does not look every turn).
    lonely_until: Arc<Mutex<HashMap<String, tokio::time::Instant>>>,
}

impl Replication {
    /// The replication of the node `local_id`, whose host is `core`.
    pub(crate) fn new(
        core: Arc<HostCore>,
        transport: Transport,
        members: Members,
        local_id: String,
        settings: ReplicationSettings,
        lease: Option<Lease>,
        backend: Option<ClusterBackend>,
    ) -> Replication {
        let copies: Arc<copy::Copies> = Arc::default();
        let sweeping = Arc::downgrade(&copies);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(IDLE_COPY).await;
                let Some(copies) = sweeping.upgrade() else { return };
                copies.close_idle(IDLE_COPY).await;
            }
        });
        let replication = Replication {
            ctx: Arc::new(Context { core, transport, members, local_id }),
            settings,
            lease,
            backend,
            streams: Arc::default(),
            copies,
            setting_up: Arc::default(),
            lonely_until: Arc::default(),
        };
        tokio::spawn(replication.clone().keep_sets_whole());
        replication
    }

    /// Repairs every replica set homed here every [`REPAIR_EVERY`], whether or not its actor writes (commits
    /// repair their own set at once).
    async fn keep_sets_whole(self) {
        loop {
            tokio::time::sleep(REPAIR_EVERY).await;
            if self.lease.as_ref().is_some_and(|lease| lease.check().is_err()) {
                continue;
            }
            let streams: Vec<(String, Arc<HomeStream>)> = self
                .streams
                .lock()
                .await
                .iter()
                .filter_map(|(id, stream)| Some((id.clone(), stream.clone()?)))
                .collect();
            for (actor_id, stream) in streams {
                self.repair(&actor_id, &stream).await;
            }
        }
    }

    /// Answers a peer's call on the replication service.
    pub async fn serve(&self, _peer: PeerInfo, request: Bytes) -> Result<Bytes, tern_replication::Error> {
        let message = rpc::decode::<ReplicationMessage>(&request).map_err(tern_replication::Error::handler)?;
        let core = &self.ctx.core;
        Ok(match message {
            ReplicationMessage::Frames(call) => answer::<ShipFrames>(&self.copies.apply(core, call).await),
            ReplicationMessage::Snapshot(call) => answer::<ShipSnapshot>(&self.copies.receive(core, call).await),
            ReplicationMessage::Advance(call) => {
                answer::<AdvanceCopy>(&self.copies.advance(core, &call.actor_id, &call.home, call.state).await)
            }
            ReplicationMessage::Position(call) => {
                let position = match self.copies.position(core, &call.actor_id).await {
                    Err(Refusal::Busy) => Err(Refusal::Busy),
                    // A copy that cannot be read is no usable copy: the home sends a snapshot.
                    other => Ok(other.ok().flatten()),
                };
                answer::<AskPosition>(&position)
            }
        })
    }

    /// The actor's home (this node) and its replicas with how far each is.
    pub async fn replica_set(&self, actor_id: &str) -> ReplicaSet {
        let local = self.ctx.members.local().node;
        let stream = self.streams.lock().await.get(actor_id).cloned().flatten();
        let committed = stream.as_ref().map(|s| s.committed());
        let home = ReplicaInfo {
            node: local.id,
            region: Some(local.region),
            position: committed.map(|p| p.to_string()),
            lag_frames: Some(0),
            lag_bytes: Some(0),
            lag_ms: Some(0),
            state: "home".into(),
        };
        let Some(stream) = stream else { return ReplicaSet { home, replicas: Vec::new() } };
        let committed = stream.committed();
        let acked = stream.acked();
        let replicas = stream
            .replicas()
            .iter()
            .map(|node| {
                let member = self.ctx.members.get(node);
                let at = acked.get(node).copied();
                let lag = at.map(|p| lag_frames(p, committed));
                let state = match (&member, at) {
                    (Some(m), _) if m.state == MemberState::Down => "stale",
                    (None, _) => "stale",
                    (_, None) => "bootstrapping",
                    (_, Some(_)) => "streaming",
                };
                ReplicaInfo {
                    node: node.to_string(),
                    region: member.map(|m| m.node.region),
                    position: at.map(|p| p.to_string()),
                    lag_frames: lag,
                    lag_bytes: lag.map(|frames| frames * stream.frame_bytes()),
                    lag_ms: at.map(|p| stream.lag_since(p).as_millis() as u64),
                    state: state.into(),
                }
            })
            .collect();
        ReplicaSet { home, replicas }
    }

    /// The stream of an actor homed here, starting one (choosing its replicas) if it has none yet.
    ///
    /// Every turn asks, so the map is locked only to look up and to insert; a stream is set up (`node.db`, the
    /// directory) under a separate lock that serializes setups only.
    async fn stream(&self, actor_id: &str, db: &ActorDb) -> Result<Option<Arc<HomeStream>>, ClientError> {
        self.set_up_stream(actor_id, db, false).await
    }

    /// [`Self::stream`], or with `always` a stream even for an actor that keeps no replica or finds no node for
    /// one (a move ships the database through it).
    async fn set_up_stream(
        &self,
        actor_id: &str,
        db: &ActorDb,
        always: bool,
    ) -> Result<Option<Arc<HomeStream>>, ClientError> {
        let known = |streams: &HashMap<String, Option<Arc<HomeStream>>>| {
            streams.get(actor_id).cloned().filter(|stream| stream.is_some() || !always)
        };
        if let Some(known) = known(&*self.streams.lock().await) {
            return Ok(known);
        }
        let now = tokio::time::Instant::now();
        if !always && lock(&self.lonely_until).get(actor_id).is_some_and(|t| *t > now) {
            // No node was free for a replica a moment ago: ask again later, not on every turn.
            return Ok(None);
        }
        let _setting_up = self.setting_up.lock().await;
        if let Some(known) = known(&*self.streams.lock().await) {
            return Ok(known);
        }
        let core = &self.ctx.core;
        let db_path = core.data_dir.actor_db_path(actor_id);
        let (count, mode) = self.policy(actor_id).await?;
        let record = match core.node_db.wal_stream(actor_id).await? {
            Some(record) if record.role == StreamRole::Home => record,
            _ => {
                if count == 0 && !always {
                    self.streams.lock().await.insert(actor_id.to_string(), None);
                    return Ok(None);
                }
                let replicas = self.choose_replicas(count, &[]);
                if replicas.is_empty() && !always {
                    lock(&self.lonely_until).insert(actor_id.to_string(), now + Duration::from_secs(10));
                    return Ok(None);
                }
                // A new stream starts at a generation boundary, so the database file is exactly the new
                // generation's start (what a snapshot copies).
                let fresh = StreamRecord { role: StreamRole::Home, state: Default::default(), peers: replicas };
                let stream = HomeStream::new(actor_id, db_path.clone(), &fresh, (count, mode));
                let mut source = stream.source(db)?;
                let state = match source.next_generation().map_err(wal_failed)? {
                    Some(next) => {
                        source.checkpoint(next).map_err(wal_failed)?;
                        next
                    }
                    None => fresh.state,
                };
                let record = StreamRecord { state, ..fresh };
                self.record_replicas(actor_id, &record.peers).await?;
                core.node_db.set_wal_stream(actor_id, &record).await?;
                tracing::info!(actor_id, replicas = ?record.peers, "replicating an actor");
                record
            }
        };
        let stream = HomeStream::new(actor_id, db_path, &record, (count, mode));
        for replica in stream.replicas() {
            tokio::spawn(home::ship(self.ctx.clone(), stream.clone(), replica));
        }
        self.streams.lock().await.insert(actor_id.to_string(), Some(stream.clone()));
        Ok(Some(stream))
    }

    /// The replicas this node holds, by their home's node id.
    pub(crate) async fn copies_by_home(&self) -> Result<std::collections::BTreeMap<String, Vec<String>>, ClientError> {
        Ok(crate::handoff::failover::by_home(self.ctx.core.node_db.replica_streams().await?))
    }

    /// Where this node's replica of `actor_id` is.
    pub(crate) async fn copy_position(&self, actor_id: &str) -> Result<Position, ClientError> {
        match self.copies.position(&self.ctx.core, actor_id).await {
            Ok(Some(state)) => Ok(state.position()),
            Ok(None) => Err(ClientError::unavailable(format!("this node holds no replica of actor {actor_id}"))),
            Err(refusal) => Err(ClientError::unavailable(refusal.to_string())),
        }
    }

    /// Removes this node's replica of `actor_id`, if it holds one (the actor was destroyed, or lives on with other
    /// copies).
    pub(crate) async fn drop_copy(&self, actor_id: &str) -> Result<(), ClientError> {
        let core = &self.ctx.core;
        let Some(record) = core.node_db.wal_stream(actor_id).await? else { return Ok(()) };
        if record.role != StreamRole::Replica {
            return Ok(());
        }
        self.copies.close(actor_id).await;
        remove_database(&core.data_dir.replica_db_path(actor_id))?;
        core.node_db.remove_wal_stream(actor_id).await
    }

    /// Turns this node's replica of `actor_id` into the actor's home copy: the replica's file and WAL move under
    /// `actors/`, and the stream goes on from the replica's position (to replicas chosen now), so that the other
    /// copies of the same history continue where they are.
    pub(crate) async fn promote(&self, actor_id: &str, replicas: Vec<String>) -> Result<(), ClientError> {
        // Held until the stream is recorded as this node's: a batch still on its way from the old home must not
        // open the copy's files while they move.
        let closed = self.copies.hold_closed(actor_id).await;
        let core = &self.ctx.core;
        let record = core
            .node_db
            .wal_stream(actor_id)
            .await?
            .ok_or_else(|| ClientError::unavailable(format!("this node holds no replica of actor {actor_id}")))?;
        let from = core.data_dir.replica_db_path(actor_id);
        let to = core.data_dir.actor_db_path(actor_id);
        core.data_dir.ensure_actor_dir(actor_id).map_err(|e| io_failed("creating the actor's directory", e))?;
        for suffix in ["", "-wal"] {
            let (from, to) = (with_suffix(&from, suffix), with_suffix(&to, suffix));
            match std::fs::rename(&from, &to) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(io_failed("moving the replica", e)),
                _ => {}
            }
        }
        remove_database(&from)?;
        let home = StreamRecord { role: StreamRole::Home, state: record.state, peers: replicas };
        core.node_db.set_wal_stream(actor_id, &home).await?;
        drop(closed);
        self.copies.forget(actor_id);
        self.streams.lock().await.remove(actor_id);
        Ok(())
    }

    /// How many transactions the home copy of `actor_id` committed after `from` (where a replica took it over).
    pub(crate) fn unshipped(&self, actor_id: &str, from: Position) -> u64 {
        let path = self.ctx.core.data_dir.actor_db_path(actor_id);
        let after =
            self.streams.try_lock().ok().and_then(|streams| streams.get(actor_id).cloned().flatten()).map_or(
                from.frame,
                |stream| if stream.committed().generation == from.generation { from.frame } else { 0 },
            );
        tern_replication::wal::WalFile::of(&path).commits_after(after).unwrap_or(0)
    }

    /// Records `replicas` as the replica set of `actor_id` (homed here) in the directory; fails if the directory
    /// cannot be reached or places the actor elsewhere. Without voters there is no directory to tell.
    async fn record_replicas(&self, actor_id: &str, replicas: &[String]) -> Result<(), ClientError> {
        let (Some(backend), Some(lease)) = (&self.backend, &self.lease) else { return Ok(()) };
        let directory = backend.directory()?;
        let placement = directory.set_replicas(actor_id, &self.ctx.local_id, lease.epoch(), replicas).await?;
        match placement {
            Some(placement) if placement.replicas == replicas => Ok(()),
            _ => Err(ClientError::unavailable(format!(
                "actor {actor_id} is no longer placed on this node under its current lease"
            ))),
        }
    }

    /// Replaces each replica of `stream` whose node is down by a live member, recorded in the directory first
    /// (a home that cannot reach the directory keeps its set: it could not acknowledge anyway).
    async fn repair(&self, actor_id: &str, stream: &Arc<HomeStream>) {
        let current = stream.replicas();
        for old in &current {
            let alive = self.ctx.members.get(old).is_some_and(|m| m.state != MemberState::Down);
            if alive {
                continue;
            }
            let mut avoid = stream.replicas();
            avoid.push(old.clone());
            let Some(new) = self.choose_replicas(1, &avoid).into_iter().next() else { continue };
            let mut next = stream.replicas();
            next.iter_mut().filter(|r| *r == old).for_each(|r| *r = new.clone());
            if let Err(e) = self.record_replicas(actor_id, &next).await {
                tracing::debug!(actor_id, error = %e, "cannot record a repaired replica set");
                return;
            }
            stream.replace_replica(old, &new);
            if let Err(e) = self.ctx.core.node_db.set_wal_stream(actor_id, &stream.record()).await {
                tracing::error!(actor_id, error = %e, "cannot record a repaired replica set locally");
            }
            tracing::info!(actor_id, old, new, "a replica's node is down: replicating to another node");
            tokio::spawn(home::ship(self.ctx.clone(), stream.clone(), new));
        }
        // A set smaller than wanted (no node was free when it was chosen, e.g. after a failover in a small
        // cluster) grows as nodes join or come back: a returning old home becomes a replica this way.
        let current = stream.replicas();
        if current.len() < stream.wanted() {
            let new = self.choose_replicas(stream.wanted() - current.len(), &current);
            if new.is_empty() {
                return;
            }
            if let Err(e) = self.grow(actor_id, stream, new).await {
                tracing::debug!(actor_id, error = %e, "cannot record a larger replica set");
            }
        }
    }

    /// Adds `new` to the replicas of `stream`: recorded in the directory first, then here, then shipped to.
    async fn grow(&self, actor_id: &str, stream: &Arc<HomeStream>, new: Vec<String>) -> Result<(), ClientError> {
        let next: Vec<String> = stream.replicas().iter().chain(&new).cloned().collect();
        self.record_replicas(actor_id, &next).await?;
        stream.add_replicas(&new);
        if let Err(e) = self.ctx.core.node_db.set_wal_stream(actor_id, &stream.record()).await {
            tracing::error!(actor_id, error = %e, "cannot record a larger replica set locally");
        }
        tracing::info!(actor_id, ?new, "replicating to more nodes");
        for replica in new {
            tokio::spawn(home::ship(self.ctx.clone(), stream.clone(), replica));
        }
        Ok(())
    }

    /// What another node says of its replica of `actor_id`.
    pub(crate) async fn peer_copy(&self, node_id: &str, actor_id: &str) -> PeerCopy {
        let Some(addr) = self.ctx.address(node_id) else { return PeerCopy::Silent };
        let ask = AskPosition { actor_id: actor_id.to_string() };
        match rpc::ask(&self.ctx.transport, addr, ask, Duration::from_secs(2)).await {
            Ok(Ok(Some(state))) => PeerCopy::At(state.position()),
            Ok(Ok(None)) => PeerCopy::Missing,
            Ok(Err(_)) | Err(_) => PeerCopy::Silent,
        }
    }

    /// How many replicas an actor keeps and when its replies leave: its definition's options, else the node's.
    pub(crate) async fn policy(&self, actor_id: &str) -> Result<(usize, ReplicationMode), ClientError> {
        let core = &self.ctx.core;
        let entry = core.entry(actor_id).await?;
        let options = entry.and_then(|e| core.registry.get(&e.record.name).map(|f| f.options().clone()));
        let replicas = options.as_ref().and_then(|o| o.replicas).unwrap_or(self.settings.replicas);
        let mode = options.and_then(|o| o.replication).unwrap_or(self.settings.mode);
        Ok((replicas, mode))
    }

    /// Up to `count` live members other than this node and `avoid`: other regions first, then other zones, then
    /// the least loaded.
    pub(crate) fn choose_replicas(&self, count: usize, avoid: &[String]) -> Vec<String> {
        let local = self.ctx.members.local().node;
        let mut candidates: Vec<_> = self
            .ctx
            .members
            .all()
            .into_iter()
            .filter(|m| !m.local && m.state == MemberState::Alive && !avoid.contains(&m.node.id))
            .map(|m| {
                let rank = (m.node.region == local.region, m.node.zone == local.zone && local.zone.is_some());
                (rank, m.load.map_or(0, |l| l.awake_actors), m.node.id)
            })
            .collect();
        candidates.sort();
        candidates.into_iter().take(count).map(|(_, _, id)| id).collect()
    }
}

/// How many frames `at` is behind `committed` (a replica in an older generation counts the whole new one).
fn lag_frames(at: Position, committed: Position) -> u64 {
    if at.generation == committed.generation {
        u64::from(committed.frame.saturating_sub(at.frame))
    } else {
        u64::from(committed.frame)
    }
}

fn with_suffix(path: &std::path::Path, suffix: &str) -> std::path::PathBuf {
    std::path::PathBuf::from(format!("{}{suffix}", path.display()))
}

/// Removes a database file with its WAL and shared-memory files; missing ones are fine.
fn remove_database(path: &std::path::Path) -> Result<(), ClientError> {
    for suffix in ["", "-wal", "-shm"] {
        match std::fs::remove_file(with_suffix(path, suffix)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(io_failed("removing a replica", e)),
            _ => {}
        }
    }
    Ok(())
}

fn io_failed(what: &str, err: std::io::Error) -> ClientError {
    tracing::error!(error = %err, "{what} failed");
    ClientError::internal()
}

fn wal_failed(err: tern_replication::wal::WalError) -> ClientError {
    tracing::error!(error = %err, "starting an actor's replication failed");
    ClientError::internal()
}

impl Replicator for Replication {
    fn opened(&self, actor_id: &str, db: &ActorDb) -> BoxFuture<Result<(), ClientError>> {
        let (this, actor_id, db) = (self.clone(), actor_id.to_string(), db.clone());
        Box::pin(async move {
            if let Some(lease) = &this.lease {
                lease.wait(LEASE_WAIT).await?;
            }
            if let Some(stream) = this.stream(&actor_id, &db).await? {
                // Every connection must have its checkpoints taken over before it writes.
                stream.source(&db)?;
            }
            Ok(())
        })
    }

    fn replica_set(&self, actor_id: &str) -> BoxFuture<ReplicaSet> {
        let (this, actor_id) = (self.clone(), actor_id.to_string());
        Box::pin(async move { this.replica_set(&actor_id).await })
    }

    fn committed(&self, actor_id: &str, db: &ActorDb) -> BoxFuture<Result<(), ClientError>> {
        let (this, actor_id, db) = (self.clone(), actor_id.to_string(), db.clone());
        Box::pin(async move {
            let replicated = async {
                let Some(stream) = this.streams.lock().await.get(&actor_id).cloned().flatten() else { return Ok(()) };
                let position = stream.commit(&this.ctx, &db).await?;
                this.repair(&actor_id, &stream).await;
                if stream.mode() == ReplicationMode::Sync {
                    // Wait for a replica, replacing any whose node is declared down meanwhile.
                    let deadline = tokio::time::Instant::now() + this.settings.sync_timeout;
                    loop {
                        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
                        match stream.replicated(position, left.min(SYNC_REPAIR_EVERY)).await {
                            Ok(()) => break,
                            Err(e) if left <= SYNC_REPAIR_EVERY => return Err(e),
                            Err(_) => this.repair(&actor_id, &stream).await,
                        }
                    }
                }
                Ok(())
            };
            match &this.lease {
                // A home whose lease ran out during the turn or the wait may already have been replaced: it must
                // not reply.
                Some(lease) => lease.confirm(replicated).await,
                None => replicated.await,
            }
        })
    }
}
