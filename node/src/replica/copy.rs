//! The replica side: this node's copies of other nodes' actor databases, written only by the home's frames and
//! snapshots.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tern_replication::wal::{Batch, Replica, SnapshotReceiver, WalError, WalState};

use super::wire::{Refusal, ShipFrames, ShipSnapshot, SnapshotProgress};
use crate::runtime::host::HostCore;
use crate::storage::wal_streams::{StreamRecord, StreamRole};
use crate::sync::lock;

/// One actor's copy: its writer while open, and a snapshot being received.
#[derive(Default)]
pub(super) struct Copy {
    replica: Option<Replica>,
    receiving: Option<SnapshotReceiver>,
    /// When the home last sent something.
    used: Option<std::time::Instant>,
}

/// The copies this node holds, each behind its own lock (one writer per file).
#[derive(Default)]
pub(super) struct Copies {
    open: Mutex<HashMap<String, Arc<tokio::sync::Mutex<Copy>>>>,
}

impl Copies {
    fn copy(&self, actor_id: &str) -> Arc<tokio::sync::Mutex<Copy>> {
        let mut open = lock(&self.open);
        open.entry(actor_id.to_string()).or_default().clone()
    }

    /// Closes the writers of copies that received nothing for `idle` (their actors sleep, or write rarely), so that
    /// a replica costs no memory or open file while its actor is quiet; the next batch opens it again.
    pub(super) async fn close_idle(&self, idle: std::time::Duration) {
        let open: Vec<_> = lock(&self.open).values().cloned().collect();
        for copy in open {
            let Ok(mut copy) = copy.try_lock() else { continue };
            if copy.receiving.is_none() && copy.used.is_none_or(|used| used.elapsed() >= idle) {
                // The entry stays (a few bytes), so that one writer per file remains the rule.
                copy.replica = None;
            }
        }
    }

    /// Closes the copy of `actor_id` and keeps it closed until the returned guard drops: no batch, generation
    /// change or snapshot reaches its files meanwhile (they wait for the guard, then find the copy closed and look
    /// at the recorded stream again). A promotion holds it until the stream is recorded as this node's home.
    pub(super) async fn hold_closed(&self, actor_id: &str) -> tokio::sync::OwnedMutexGuard<Copy> {
        let mut copy = self.copy(actor_id).lock_owned().await;
        copy.replica = None;
        copy.receiving = None;
        copy
    }

    /// Forgets the copy of `actor_id` here (after [`Self::hold_closed`]).
    pub(super) fn forget(&self, actor_id: &str) {
        lock(&self.open).remove(actor_id);
    }

    /// Closes the copy of `actor_id` and forgets it here (its files stay; the caller moves or removes them).
    pub(super) async fn close(&self, actor_id: &str) {
        let copy = self.copy(actor_id);
        let mut copy = copy.lock().await;
        copy.replica = None;
        copy.receiving = None;
        lock(&self.open).remove(actor_id);
    }

    /// Where the copy of `actor_id` is, if this node holds one.
    pub(super) async fn position(&self, core: &HostCore, actor_id: &str) -> Result<Option<WalState>, Refusal> {
        lives_elsewhere(core, actor_id).await?;
        let copy = self.copy(actor_id);
        let copy = copy.lock().await;
        if let Some(replica) = &copy.replica {
            return Ok(Some(replica.state()));
        }
        Ok(recorded(core, actor_id).await?.map(|record| record.state))
    }

    /// Applies a batch of frames to the copy of `call.actor_id`, recording its new state before answering.
    pub(super) async fn apply(&self, core: &HostCore, call: ShipFrames) -> Result<WalState, Refusal> {
        let batch = Batch::decode(call.batch).map_err(refusal)?;
        let copy = self.copy(&call.actor_id);
        let mut copy = copy.lock().await;
        copy.used = Some(std::time::Instant::now());
        if copy.replica.is_none() {
            let Some(record) = recorded(core, &call.actor_id).await? else { return Err(Refusal::NeedsSnapshot) };
            let path = core.data_dir.replica_db_path(&call.actor_id);
            copy.replica = Some(open_replica(&path, record.state)?);
        }
        let replica = copy.replica.as_mut().expect("opened above");
        let before = replica.state();
        let state = tokio::task::block_in_place(|| replica.apply(&batch)).map_err(refusal)?;
        // The replica's WAL records its frames durably (`synchronous=FULL`); `node.db` records the generation,
        // which is all a reopened replica needs besides its WAL, so it is written only when that changes.
        if state.generation != before.generation || state.previous_end != before.previous_end {
            let record = StreamRecord { role: StreamRole::Replica, state, peers: vec![call.home] };
            core.node_db.set_wal_stream(&call.actor_id, &record).await.map_err(|e| Refusal::Failed(e.message))?;
        }
        Ok(state)
    }

    /// Moves the copy of `actor_id` to the generation `next` its home started without frames (see
    /// [`tern_replication::wal::Replica::advance`]), recording it before it answers.
    pub(super) async fn advance(
        &self,
        core: &HostCore,
        actor_id: &str,
        home: &str,
        next: WalState,
    ) -> Result<WalState, Refusal> {
        let copy = self.copy(actor_id);
        let mut copy = copy.lock().await;
        if copy.replica.is_none() {
            let Some(record) = recorded(core, actor_id).await? else { return Err(Refusal::NeedsSnapshot) };
            let path = core.data_dir.replica_db_path(actor_id);
            copy.replica = Some(open_replica(&path, record.state)?);
        }
        let replica = copy.replica.as_mut().expect("opened above");
        let state = tokio::task::block_in_place(|| replica.advance(next)).map_err(refusal)?;
        let record = StreamRecord { role: StreamRole::Replica, state, peers: vec![home.to_string()] };
        core.node_db.set_wal_stream(actor_id, &record).await.map_err(|e| Refusal::Failed(e.message))?;
        Ok(state)
    }

    /// Takes one chunk of a snapshot; the last one installs the copy (replacing any older one).
    pub(super) async fn receive(&self, core: &HostCore, call: ShipSnapshot) -> Result<SnapshotProgress, Refusal> {
        lives_elsewhere(core, &call.actor_id).await?;
        let copy = self.copy(&call.actor_id);
        let mut copy = copy.lock().await;
        copy.used = Some(std::time::Instant::now());
        let path = core.data_dir.replica_db_path(&call.actor_id);
        let same = copy.receiving.as_ref().is_some_and(|r| r.snapshot() == call.snapshot);
        if !same {
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir).map_err(|e| Refusal::Failed(format!("{}: {e}", dir.display())))?;
            }
            copy.receiving = Some(SnapshotReceiver::start(&path, call.snapshot).map_err(refusal)?);
        }
        let receiving = copy.receiving.as_mut().expect("started above");
        if call.offset != receiving.received() {
            return Ok(SnapshotProgress::Receiving { received: receiving.received() });
        }
        tokio::task::block_in_place(|| receiving.write(call.offset, &call.chunk)).map_err(refusal)?;
        if !receiving.is_complete() {
            return Ok(SnapshotProgress::Receiving { received: receiving.received() });
        }
        // The old copy's writer must be closed before its file is replaced.
        copy.replica = None;
        let receiving = copy.receiving.take().expect("present above");
        let state = tokio::task::block_in_place(|| receiving.finish()).map_err(refusal)?;
        let record = StreamRecord { role: StreamRole::Replica, state, peers: vec![call.home] };
        core.node_db.set_wal_stream(&call.actor_id, &record).await.map_err(|e| Refusal::Failed(e.message))?;
        copy.replica = Some(open_replica(&path, state)?);
        Ok(SnapshotProgress::Installed(state))
    }
}

/// Refuses, as busy, a copy of an actor that lives on this node: a former home still shipping to the node that
/// took the actor over from it (its home copy must never be replaced), or a new home shipping to this old home
/// before it turned its copy into a replica (it will in a moment).
async fn lives_elsewhere(core: &HostCore, actor_id: &str) -> Result<(), Refusal> {
    let record = core.node_db.wal_stream(actor_id).await.map_err(|e| Refusal::Failed(e.message))?;
    match record {
        Some(record) if record.role == StreamRole::Home => Err(Refusal::Busy),
        _ => Ok(()),
    }
}

/// The recorded replica stream of `actor_id` (`None` when this node holds no replica of it).
async fn recorded(core: &HostCore, actor_id: &str) -> Result<Option<StreamRecord>, Refusal> {
    let record = core.node_db.wal_stream(actor_id).await.map_err(|e| Refusal::Failed(e.message))?;
    Ok(record.filter(|r| r.role == StreamRole::Replica && core.data_dir.replica_db_path(actor_id).exists()))
}

/// Opens the copy's writer, unless an actor connection still has the file open: a home connection that outlived
/// its pool entry while its file became this copy (actor files take no locks that would stop two writers, see
/// `storage/vfs.rs`).
fn open_replica(path: &std::path::Path, recorded: WalState) -> Result<Replica, Refusal> {
    if crate::storage::vfs::in_use(path) {
        return Err(Refusal::Busy);
    }
    tokio::task::block_in_place(|| Replica::open(path, recorded)).map_err(refusal)
}

/// What the home hears when applying failed.
fn refusal(err: WalError) -> Refusal {
    match err {
        WalError::Gap { replica, .. } => Refusal::Gap { at: replica },
        WalError::Conflict { .. } | WalError::SnapshotNeeded { .. } => Refusal::NeedsSnapshot,
        WalError::Busy => Refusal::Busy,
        WalError::Corrupt(message) => Refusal::Corrupt(message),
        other @ (WalError::Sqlite { .. } | WalError::Io { .. }) => {
            tracing::error!(error = %other, "a replica could not apply what its home sent");
            Refusal::Failed(other.to_string())
        }
    }
}
