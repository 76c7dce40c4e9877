//! The home side: each replicated actor's stream, and the tasks that ship it to each replica.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tern_proto::ClientError;
use tern_replication::wal::{Position, Snapshot, Source, WalError, WalFile, WalState};
use tokio::sync::{RwLock, watch};
use tokio::time::Instant;

use super::wire::{AdvanceCopy, AskPosition, Refusal, ShipFrames, ShipSnapshot, SnapshotProgress};
use super::{Context, ReplicationMode};
use crate::cluster::rpc::{self, PeerError};
use crate::storage::ActorDb;
use crate::storage::wal_streams::{StreamRecord, StreamRole};
use crate::sync::lock;

/// A batch is cut after the transaction that reaches this many bytes.
const BATCH_BYTES: usize = 4 << 20;
/// Snapshots travel in chunks of this size.
const SNAPSHOT_CHUNK: usize = 8 << 20;
/// The home checkpoints once its WAL has this many frames and every replica has them all.
const CHECKPOINT_FRAMES: u32 = 1000;
/// Past this many frames the home checkpoints even if a replica lags (that replica then needs a snapshot).
const MAX_WAL_FRAMES: u32 = 64 * 1024;
/// The largest encoded batch shipped in one request: the transport's frame limit, less room for the call around it.
fn max_shipped_batch() -> usize {
    tern_replication::TransportConfig::default().max_frame_size - (64 << 10)
}
/// How long one call to a replica may take.
const SHIP_TIMEOUT: Duration = Duration::from_secs(30);

/// One replicated actor's stream on its home.
pub(super) struct HomeStream {
    actor_id: String,
    db_path: PathBuf,
    /// When the actor's replies leave.
    mode: ReplicationMode,
    /// How many replicas the actor should have.
    wanted: usize,
    /// The replicas' node ids, as recorded in the directory.
    replicas: Mutex<Vec<String>>,
    /// The stream's generation and where the previous one ended.
    wal: Mutex<WalState>,
    /// The last committed position; shippers wait on it.
    committed: watch::Sender<Position>,
    /// What each replica acknowledged.
    acked: watch::Sender<HashMap<String, Position>>,
    /// Shippers read the WAL and database files under the read lock; a checkpoint takes the write lock.
    files: RwLock<()>,
    /// When recent commits were made, oldest first (for lag in time); bounded.
    commit_times: Mutex<VecDeque<(Position, Instant)>>,
    /// Bytes of one WAL frame (header and page), once known.
    frame_bytes: AtomicU64,
    /// A transaction too large for one request is waiting: the next commit ends the generation, so the replicas
    /// receive it inside a snapshot (sent in chunks) instead.
    oversized: AtomicBool,
    /// Set while the actor moves to another node: routine checkpoints wait, so that none falls inside the move's
    /// pause (a large WAL takes long to checkpoint).
    moving: AtomicBool,
}

/// How many commit times a stream remembers.
const COMMIT_TIMES: usize = 4096;

impl HomeStream {
    /// A stream recorded as `record`, for the database at `db_path`.
    pub(super) fn new(
        actor_id: &str,
        db_path: PathBuf,
        record: &StreamRecord,
        (wanted, mode): (usize, ReplicationMode),
    ) -> Arc<HomeStream> {
        Arc::new(HomeStream {
            actor_id: actor_id.to_string(),
            db_path,
            mode,
            wanted,
            replicas: Mutex::new(record.peers.clone()),
            wal: Mutex::new(record.state),
            committed: watch::Sender::new(record.state.position()),
            acked: watch::Sender::new(HashMap::new()),
            files: RwLock::new(()),
            commit_times: Mutex::new(VecDeque::new()),
            frame_bytes: AtomicU64::new(0),
            oversized: AtomicBool::new(false),
            moving: AtomicBool::new(false),
        })
    }

    fn wal(&self) -> WalState {
        *lock(&self.wal)
    }

    /// When the actor's replies leave.
    pub(super) fn mode(&self) -> ReplicationMode {
        self.mode
    }

    /// How many replicas the actor should have.
    pub(super) fn wanted(&self) -> usize {
        self.wanted
    }

    /// Adds replicas (already recorded in the directory).
    pub(super) fn add_replicas(&self, new: &[String]) {
        lock(&self.replicas).extend(new.iter().cloned());
    }

    /// The replicas' node ids.
    pub(super) fn replicas(&self) -> Vec<String> {
        lock(&self.replicas).clone()
    }

    /// The stream's state as `node.db` records it.
    pub(super) fn record(&self) -> StreamRecord {
        StreamRecord { role: StreamRole::Home, state: self.wal(), peers: self.replicas() }
    }

    /// Replaces replica `old` by `new` (already recorded in the directory); `old`'s acknowledgements no longer
    /// count.
    pub(super) fn replace_replica(&self, old: &str, new: &str) {
        for replica in lock(&self.replicas).iter_mut().filter(|r| *r == old) {
            *replica = new.to_string();
        }
        self.acked.send_modify(|acked| {
            acked.remove(old);
        });
    }

    /// What the replicas acknowledged, by node id.
    pub(super) fn acked(&self) -> HashMap<String, Position> {
        self.acked.borrow().clone()
    }

    /// The last committed position.
    pub(super) fn committed(&self) -> Position {
        *self.committed.borrow()
    }

    /// Takes the database's checkpoints over for this connection (every time the actor's database is opened).
    pub(super) fn source(&self, db: &ActorDb) -> Result<Source, ClientError> {
        db.checkpoints_taken_over();
        // SAFETY: the caller holds `db` (so the connection is open) and runs on the actor's task between its
        // statements; the source lives only for this call's scope.
        unsafe { Source::new(db.raw_handle(), self.wal()) }.map_err(internal)
    }

    /// Records a commit, wakes the shippers, and ends the generation when the WAL is long enough and every replica
    /// has all of it (or it is far too long). Returns the committed position.
    pub(super) async fn commit(&self, ctx: &Context, db: &ActorDb) -> Result<Position, ClientError> {
        let mut source = self.source(db)?;
        let position = source.position().map_err(internal)?;
        self.committed.send_replace(position);
        {
            let mut times = lock(&self.commit_times);
            if times.back().is_none_or(|(last, _)| *last != position) {
                times.push_back((position, Instant::now()));
            }
            if times.len() > COMMIT_TIMES {
                times.pop_front();
            }
        }
        let everyone_has_it = {
            let acked = self.acked.borrow();
            self.replicas().iter().all(|r| acked.get(r).is_some_and(|p| *p >= position))
        };
        let oversized = self.oversized.load(Ordering::Relaxed);
        let routine = position.frame >= CHECKPOINT_FRAMES && everyone_has_it && !self.moving.load(Ordering::Relaxed);
        let due = routine || position.frame >= MAX_WAL_FRAMES;
        if !due && !oversized {
            return Ok(position);
        }
        // A routine checkpoint gives way to a shipper reading the files; one that must get an oversized
        // transaction to the replicas waits for it.
        let _files = match (oversized, self.files.try_write()) {
            (_, Ok(files)) => files,
            (true, Err(_)) => self.files.write().await,
            (false, Err(_)) => return Ok(position),
        };
        let Some(next) = source.next_generation().map_err(internal)? else { return Ok(position) };
        let record = StreamRecord { role: StreamRole::Home, state: next, peers: self.replicas() };
        ctx.core.node_db.set_wal_stream(&self.actor_id, &record).await?;
        source.checkpoint(next).map_err(internal)?;
        self.oversized.store(false, Ordering::Relaxed);
        *lock(&self.wal) = next;
        self.committed.send_replace(next.position());
        ctx.core.metrics.record_wal_checkpoint();
        Ok(position)
    }

    /// Whether a replica acknowledged at `at` holds everything up to `position`: it is at or past it, or
    /// `position` starts the current generation (no frame yet) and the replica is exactly where the previous one
    /// ended (the new generation's database file is that content).
    fn holds(&self, at: Position, position: Position) -> bool {
        let wal = self.wal();
        at >= position || (position.frame == 0 && position.generation == wal.generation && at == wal.previous_end)
    }

    /// Waits until a replica holds `position` (sync mode), for at most `limit`.
    pub(super) async fn replicated(&self, position: Position, limit: Duration) -> Result<(), ClientError> {
        let mut acked = self.acked.subscribe();
        let reached = acked.wait_for(|acked| acked.values().any(|p| self.holds(*p, position)));
        match tokio::time::timeout(limit, reached).await {
            Ok(Ok(_)) => Ok(()),
            _ => Err(ClientError::unavailable(format!(
                "actor {} committed the write, but no replica confirmed it within {} ms (sync replication)",
                self.actor_id,
                limit.as_millis()
            ))),
        }
    }

    /// Waits until `replica` acknowledged `position`, for at most `limit`; false when it did not.
    pub(super) async fn reached(&self, replica: &str, position: Position, limit: Duration) -> bool {
        let mut acked = self.acked.subscribe();
        let reached = acked.wait_for(|acked| acked.get(replica).is_some_and(|p| self.holds(*p, position)));
        matches!(tokio::time::timeout(limit, reached).await, Ok(Ok(_)))
    }

    /// Waits up to `limit` until `replica` acknowledged `position` or later itself (a replica at the end of the
    /// previous generation does not count for a generation's start, unlike [`Self::reached`]).
    pub(super) async fn acknowledged(&self, replica: &str, position: Position, limit: Duration) -> bool {
        let mut acked = self.acked.subscribe();
        let reached = acked.wait_for(|acked| acked.get(replica).is_some_and(|p| *p >= position));
        matches!(tokio::time::timeout(limit, reached).await, Ok(Ok(_)))
    }

    /// Whether the WAL holds enough frames for a routine checkpoint.
    pub(super) fn wal_is_long(&self) -> bool {
        self.committed().frame >= CHECKPOINT_FRAMES
    }

    /// Holds routine checkpoints (`true`) while the actor moves, or lets them go on again (`false`).
    pub(super) fn hold_checkpoints(&self, held: bool) {
        self.moving.store(held, Ordering::Relaxed);
    }

    /// Ends the stream on this node (its actor moved away): its shippers stop after their current step.
    pub(super) fn retire(&self) {
        lock(&self.replicas).clear();
        // Wakes shippers waiting for a commit, so that they see the empty set at once.
        self.committed.send_modify(|_| {});
    }

    /// The stream's state with the last committed position: what a copy holding everything is at.
    pub(super) fn committed_state(&self) -> WalState {
        let committed = self.committed();
        WalState { generation: committed.generation, frame: committed.frame, previous_end: self.wal().previous_end }
    }

    fn ack(&self, replica: &str, position: Position) {
        self.acked.send_modify(|acked| {
            acked.insert(replica.to_string(), position);
        });
    }

    /// How long ago the oldest commit after `position` was made (zero when there is none).
    pub(super) fn lag_since(&self, position: Position) -> Duration {
        let times = lock(&self.commit_times);
        times.iter().find(|(p, _)| *p > position).map_or(Duration::ZERO, |(_, at)| at.elapsed())
    }

    /// Bytes of one frame, once a batch was shipped (0 before).
    pub(super) fn frame_bytes(&self) -> u64 {
        self.frame_bytes.load(Ordering::Relaxed)
    }
}

fn internal(err: WalError) -> ClientError {
    tracing::error!(error = %err, "replication failed on the home");
    ClientError::internal()
}

/// Why one shipping step failed.
#[derive(Debug, thiserror::Error)]
enum ShipError {
    #[error(transparent)]
    Peer(#[from] PeerError),
    #[error(transparent)]
    Wal(#[from] WalError),
    #[error(transparent)]
    Refused(#[from] Refusal),
    #[error("the replica's node is not a live member")]
    Down,
}

/// Ships `stream` to `replica` for as long as the node runs: frames after the replica's position whenever there
/// are some, a snapshot when the replica has no usable copy; retries with backoff when the replica is unreachable.
pub(super) async fn ship(ctx: Arc<Context>, stream: Arc<HomeStream>, replica: String) {
    let mut committed = stream.committed.subscribe();
    let mut at: Option<Position> = None;
    let mut backoff = Duration::from_millis(100);
    // A replica that was replaced (its node died) is shipped to no more.
    while stream.replicas().contains(&replica) {
        match step(&ctx, &stream, &replica, &mut at).await {
            Ok(true) => backoff = Duration::from_millis(100),
            Ok(false) => {
                backoff = Duration::from_millis(100);
                // Up to date: wait for the next commit (or look again in a while, in case a reply was lost).
                let _ = tokio::time::timeout(Duration::from_secs(5), committed.changed()).await;
            }
            Err(err) => {
                tracing::debug!(actor_id = %stream.actor_id, replica, error = %err, "shipping to a replica failed");
                at = None;
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
        }
    }
}

/// One exchange with the replica; `Ok(false)` when it has everything committed.
async fn step(ctx: &Context, stream: &HomeStream, replica: &str, at: &mut Option<Position>) -> Result<bool, ShipError> {
    let addr = ctx.address(replica).ok_or(ShipError::Down)?;
    if stream.oversized.load(Ordering::Relaxed) {
        // Waiting for the next commit to end the generation (and for the snapshot after it).
        return Ok(false);
    }
    let position = match *at {
        Some(position) => position,
        None => {
            let ask = AskPosition { actor_id: stream.actor_id.clone() };
            match rpc::ask(&ctx.transport, addr, ask, SHIP_TIMEOUT).await? {
                Ok(Some(state)) => state.position(),
                Ok(None) => return send_snapshot(ctx, stream, replica, addr, at).await.map(|()| true),
                Err(Refusal::Busy) => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    return Ok(true);
                }
                Err(refusal) => return Err(refusal.into()),
            }
        }
    };
    let wal = stream.wal();
    let committed = stream.committed();
    if position == wal.previous_end && committed.generation == wal.generation && committed.frame == 0 {
        // The home checkpointed and committed nothing since: the replica checkpoints the same frames now rather
        // than when the next frame comes (or inside a move's pause).
        let call = AdvanceCopy {
            actor_id: stream.actor_id.clone(),
            home: ctx.local_id.clone(),
            state: stream.committed_state(),
        };
        return match rpc::ask(&ctx.transport, addr, call, SHIP_TIMEOUT).await? {
            Ok(state) => {
                *at = Some(state.position());
                stream.ack(replica, state.position());
                Ok(true)
            }
            Err(refusal) => answer_refusal(ctx, stream, replica, addr, at, refusal).await,
        };
    }
    let batch = {
        let _files = stream.files.read().await;
        WalFile::of(&stream.db_path).read_after(position, stream.committed(), wal.previous_end, BATCH_BYTES)
    };
    let batch = match batch {
        Ok(Some(batch)) => batch,
        Ok(None) => {
            *at = Some(position);
            stream.ack(replica, position);
            return Ok(false);
        }
        Err(WalError::SnapshotNeeded { .. }) => {
            return send_snapshot(ctx, stream, replica, addr, at).await.map(|()| true);
        }
        Err(err) => return Err(err.into()),
    };
    let wire = batch.encode();
    if wire.len() > max_shipped_batch() {
        // One transaction larger than a request may be: the next commit moves it into the database file, which
        // reaches the replica as a snapshot in chunks.
        tracing::warn!(
            actor_id = %stream.actor_id, bytes = wire.len(),
            "a transaction is too large to ship as frames; the replicas will receive it in a snapshot"
        );
        stream.oversized.store(true, Ordering::Relaxed);
        // The actor may write nothing more (or sleep): one turn now ends the generation.
        let (host, actor_id) = (crate::runtime::Host { core: ctx.core.clone() }, stream.actor_id.clone());
        tokio::spawn(async move {
            if let Err(e) = host.turn_now(&actor_id).await {
                tracing::warn!(actor_id, error = %e, "cannot run a turn to end a generation");
            }
        });
        return Ok(false);
    }
    let bytes = batch.payload_bytes();
    let frames = batch.frames.len();
    stream.frame_bytes.store((bytes / frames.max(1)) as u64, Ordering::Relaxed);
    let call = ShipFrames { actor_id: stream.actor_id.clone(), home: ctx.local_id.clone(), batch: wire };
    match rpc::ask(&ctx.transport, addr, call, SHIP_TIMEOUT).await? {
        Ok(state) => {
            ctx.core.metrics.record_wal_shipped(frames, bytes);
            ctx.core.metrics.record_replication_lag(stream.lag_since(position));
            *at = Some(state.position());
            stream.ack(replica, state.position());
            Ok(true)
        }
        Err(refusal) => answer_refusal(ctx, stream, replica, addr, at, refusal).await,
    }
}

/// What a shipping step does after the replica refused what it was sent: resend from its position after a gap,
/// send a snapshot when its copy is unusable, try again shortly when it is busy.
async fn answer_refusal(
    ctx: &Context,
    stream: &HomeStream,
    replica: &str,
    addr: std::net::SocketAddr,
    at: &mut Option<Position>,
    refusal: Refusal,
) -> Result<bool, ShipError> {
    match refusal {
        Refusal::Gap { at: replica_at } => {
            *at = Some(replica_at);
            Ok(true)
        }
        Refusal::NeedsSnapshot => send_snapshot(ctx, stream, replica, addr, at).await.map(|()| true),
        Refusal::Busy => {
            tokio::time::sleep(Duration::from_millis(50)).await;
            Ok(true)
        }
        refusal => Err(refusal.into()),
    }
}

/// Copies the home's database file (which does not change within a generation: checkpoints wait) to the replica,
/// resuming where the replica's partial copy stopped.
async fn send_snapshot(
    ctx: &Context,
    stream: &HomeStream,
    replica: &str,
    addr: SocketAddr,
    at: &mut Option<Position>,
) -> Result<(), ShipError> {
    let _files = stream.files.read().await;
    let wal = stream.wal();
    let path = stream.db_path.clone();
    let snapshot = tokio::task::block_in_place(|| Snapshot::describe(&path, wal))?;
    tracing::info!(actor_id = %stream.actor_id, replica, bytes = snapshot.size, "sending a snapshot to a replica");
    let mut offset = 0;
    loop {
        let chunk = tokio::task::block_in_place(|| Snapshot::read_chunk(&path, offset, SNAPSHOT_CHUNK))?;
        let call =
            ShipSnapshot { actor_id: stream.actor_id.clone(), home: ctx.local_id.clone(), snapshot, offset, chunk };
        match rpc::ask(&ctx.transport, addr, call, SHIP_TIMEOUT).await?? {
            SnapshotProgress::Receiving { received } => offset = received,
            SnapshotProgress::Installed(state) => {
                ctx.core.metrics.record_wal_snapshot(snapshot.size);
                *at = Some(state.position());
                stream.ack(replica, state.position());
                return Ok(());
            }
        }
    }
}
