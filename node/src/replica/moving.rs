//! Replication's part in moving an actor to another node: on the home, making the target a caught-up replica and
//! turning the home's copy into a replica of the new home once the actor left; on the target, checking its copy
//! holds everything before it takes the actor (see [`crate::handoff::migrate`]).

use std::sync::Arc;
use std::time::Duration;

use tern_proto::ClientError;
use tern_replication::wal::WalState;

use super::home::HomeStream;

/// How many times a move waits for its target to catch up with the latest commit before it pauses the actor.
const CATCH_UP_ROUNDS: usize = 4;
/// How long a move waits for its target to checkpoint its copy after the home checkpointed, before the pause.
const ADVANCE_WAIT: Duration = Duration::from_secs(2);
use super::{Replication, io_failed, remove_database, with_suffix};
use crate::storage::wal_streams::{StreamRecord, StreamRole};

/// Routine checkpoints of one actor's WAL held while it moves (see [`Replication::catch_up`]); dropping it lets
/// them go on.
pub(crate) struct CheckpointsHeld(Arc<HomeStream>);

impl CheckpointsHeld {
    fn new(stream: Arc<HomeStream>) -> CheckpointsHeld {
        stream.hold_checkpoints(true);
        CheckpointsHeld(stream)
    }
}

impl Drop for CheckpointsHeld {
    fn drop(&mut self) {
        self.0.hold_checkpoints(false);
    }
}

impl Replication {
    /// Makes `target` a replica of `actor_id` (homed here, awake or not) if it is not one yet, recording it in the
    /// directory first, and waits until it holds everything committed when this was called, for at most `limit`.
    /// Without a stream in memory (the actor sleeps since this node started) there is nothing to catch up with
    /// yet: the move does it once the actor is paused.
    ///
    /// Under a steady stream of writes the target trails by what the actor commits during one round trip; the
    /// wait is repeated (a few times at most) until nothing new was committed while the target caught up, so that
    /// the pause that follows has little left to ship.
    ///
    /// Routine checkpoints of the actor's WAL wait until the returned guard is dropped (the move is over), so that
    /// none falls inside the pause. A WAL long enough for one is checkpointed first, once the target holds it all
    /// (one turn of the actor, if awake, runs it): the new home would otherwise read every frame of it to wake the
    /// actor, inside the pause.
    pub(crate) async fn catch_up(
        &self,
        actor_id: &str,
        target: &str,
        limit: Duration,
    ) -> Result<Option<CheckpointsHeld>, ClientError> {
        let Some(stream) = self.streams.lock().await.get(actor_id).cloned().flatten() else { return Ok(None) };
        self.include(actor_id, &stream, target).await?;
        if stream.wal_is_long() && stream.reached(target, stream.committed(), limit).await {
            let (reply, turned) = tokio::sync::oneshot::channel();
            if self.ctx.core.dispatch_if_awake(actor_id, crate::runtime::command::Command::Ping { reply }).await {
                let _ = turned.await;
                // The target checkpoints its copy too (the stream tells it to), before the pause; if it cannot
                // soon (a reader holds its copy, say), the take-over does it instead.
                stream.acknowledged(target, stream.committed(), ADVANCE_WAIT).await;
            }
        }
        let held = CheckpointsHeld::new(stream.clone());
        for _ in 0..CATCH_UP_ROUNDS {
            let position = stream.committed();
            if !stream.reached(target, position, limit).await {
                return Err(ClientError::unavailable(format!(
                    "node {target} did not catch up with actor {actor_id} within {} s",
                    limit.as_secs()
                )));
            }
            if stream.committed() == position {
                break;
            }
        }
        Ok(Some(held))
    }

    /// Once the actor is paused for a move (asleep, requests held): waits until `target` acknowledged everything
    /// the actor committed, for at most `limit`, and returns the stream's final state (its position, and where the
    /// previous generation ended). The acknowledgement must be the target's own (not only "at the end of the
    /// previous generation"), so that nothing of this stream is still on its way to the target's copy when the
    /// target promotes it. An actor with no stream in memory gets one here, from its files.
    pub(crate) async fn final_state(
        &self,
        actor_id: &str,
        target: &str,
        limit: Duration,
    ) -> Result<WalState, ClientError> {
        let stream = self.paused_stream(actor_id).await?;
        self.include(actor_id, &stream, target).await?;
        let state = stream.committed_state();
        if stream.acknowledged(target, state.position(), limit).await {
            Ok(state)
        } else {
            Err(ClientError::unavailable(format!(
                "node {target} did not receive the last changes of actor {actor_id} within {} s",
                limit.as_secs()
            )))
        }
    }

    /// The stream of a paused actor, set up from its database file (which nothing else uses while it is paused)
    /// when it has none in memory, with its last commit noted.
    async fn paused_stream(&self, actor_id: &str) -> Result<Arc<HomeStream>, ClientError> {
        if let Some(stream) = self.streams.lock().await.get(actor_id).cloned().flatten() {
            return Ok(stream);
        }
        let core = &self.ctx.core;
        let path = core.data_dir.actor_db_path(actor_id);
        let db = core.pool.connection(actor_id, &path, core.synchronous()).await.map_err(|e| {
            tracing::error!(actor_id, error = %e, "cannot open a paused actor's database");
            ClientError::internal()
        })?;
        let pending = db.wal_owner_pending();
        let stream = self.set_up_stream(actor_id, &db, true).await;
        let noted = match &stream {
            Ok(Some(stream)) => stream.commit(&self.ctx, &db).await.map(|_| ()),
            Ok(None) => Err(ClientError::internal()),
            Err(e) => Err(e.clone()),
        };
        // The stream took the checkpoints over unless setting it up failed: then none may run on close.
        if noted.is_ok() {
            pending.resolved();
        } else {
            drop(pending);
        }
        core.pool.close(actor_id);
        noted?;
        stream?.ok_or_else(ClientError::internal)
    }

    /// Adds `target` to the stream's replicas (recorded in the directory first) unless it is one.
    async fn include(&self, actor_id: &str, stream: &Arc<HomeStream>, target: &str) -> Result<(), ClientError> {
        if stream.replicas().iter().any(|r| r == target) {
            return Ok(());
        }
        self.grow(actor_id, stream, vec![target.to_string()]).await
    }

    /// After the actor moved to `new_home`: ends its stream here, and keeps this node's copy as a replica of the
    /// new home when `keep` (it holds exactly what the new home started from), else removes it.
    pub(crate) async fn hand_over_copy(&self, actor_id: &str, new_home: &str, keep: bool) -> Result<(), ClientError> {
        let core = &self.ctx.core;
        let stream = self.streams.lock().await.remove(actor_id).flatten();
        if let Some(stream) = &stream {
            stream.retire();
        }
        let actor_path = core.data_dir.actor_db_path(actor_id);
        let recorded = core.node_db.wal_stream(actor_id).await?;
        let state = match (&stream, recorded) {
            (Some(stream), _) => Some(stream.committed_state()),
            (None, Some(record)) if record.role == StreamRole::Home => Some(record.state),
            _ => None,
        };
        let Some(state) = state.filter(|_| keep) else {
            remove_database(&actor_path)?;
            return core.node_db.remove_wal_stream(actor_id).await;
        };
        let replica_path = core.data_dir.replica_db_path(actor_id);
        if let Some(dir) = replica_path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| io_failed("creating the replicas' directory", e))?;
        }
        remove_database(&replica_path)?;
        for suffix in ["", "-wal"] {
            match std::fs::rename(with_suffix(&actor_path, suffix), with_suffix(&replica_path, suffix)) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    return Err(io_failed("keeping the old home's copy as a replica", e));
                }
                _ => {}
            }
        }
        let record = StreamRecord { role: StreamRole::Replica, state, peers: vec![new_home.to_string()] };
        core.node_db.set_wal_stream(actor_id, &record).await
    }

    /// Whether this node's replica of `actor_id` (homed on `home`) holds exactly what the home's `state` says,
    /// moving it to that state's generation when the home started it without frames.
    pub(crate) async fn copy_holds(&self, actor_id: &str, home: &str, state: WalState) -> Result<bool, ClientError> {
        let at = self.copy_position(actor_id).await?;
        if at == state.position() {
            return Ok(true);
        }
        if state.frame != 0 || at != state.previous_end {
            return Ok(false);
        }
        self.copies
            .advance(&self.ctx.core, actor_id, home, state)
            .await
            .map_err(|e| ClientError::unavailable(e.to_string()))?;
        Ok(true)
    }

    /// Removes the home copy of an actor that was promoted here for a move the directory did not confirm (its
    /// home sends a fresh copy if this node is still one of its replicas).
    pub(crate) async fn drop_home_copy(&self, actor_id: &str) -> Result<(), ClientError> {
        let core = &self.ctx.core;
        let Some(record) = core.node_db.wal_stream(actor_id).await? else { return Ok(()) };
        if record.role != StreamRole::Home {
            return Ok(());
        }
        if let Some(stream) = self.streams.lock().await.remove(actor_id).flatten() {
            stream.retire();
        }
        core.pool.close(actor_id);
        remove_database(&core.data_dir.actor_db_path(actor_id))?;
        core.node_db.remove_wal_stream(actor_id).await
    }
}
