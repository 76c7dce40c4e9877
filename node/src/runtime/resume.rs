//! Unfinished work does not wait for a request: after a crash or a restart, the node wakes every actor whose run
//! loop still has work, so accepted queue messages are processed and interrupted workflows resume on their own.
//!
//! The fact lives in `node.db` (table `pending_work`), so a starting node reads one small table instead of every
//! actor's database. The rule that keeps it from being lost:
//!
//! * an actor with a run loop is recorded *when it wakes*, committed before its run loop starts and before its
//!   first turn, so before any queue message it accepts is acknowledged (a send to a sleeping actor wakes it);
//! * it is forgotten only when it sleeps with nothing left to do (its run loop returned, or waits on an empty
//!   queue or on time, with no completable message in flight) and after its last turn committed, or when it is
//!   destroyed. An actor that sleeps with work left (a graceful stop while its run loop is busy), or stops after
//!   a failed turn, or is killed, stays recorded.
//!
//! Erring towards recording costs a spurious wake on the next start, which is harmless: the actor finds nothing
//! to do and sleeps again. A workflow waiting in a durable sleep is not recorded (it is idle); its schedule's
//! alarm wakes it (see [`super::alarms`]).

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use futures_util::StreamExt;
use tern_proto::ClientError;
use tokio::sync::oneshot;

use super::command::Command;
use super::host::HostCore;
use crate::sync::lock;

/// How many recorded actors a starting node wakes at a time.
const WAKE_CONCURRENCY: usize = 4;

/// The actors recorded with unfinished work, mirrored in memory so that only changes reach `node.db`.
#[derive(Default)]
pub(crate) struct PendingWork {
    actors: Mutex<HashSet<String>>,
}

impl PendingWork {
    /// The records as loaded from the node database.
    pub fn from_records(actor_ids: Vec<String>) -> PendingWork {
        PendingWork { actors: Mutex::new(actor_ids.into_iter().collect()) }
    }

    /// Records that `actor_id` has unfinished work, durably before it returns (nothing to write if it already
    /// is recorded).
    pub async fn record(&self, core: &HostCore, actor_id: &str) -> Result<(), ClientError> {
        if lock(&self.actors).contains(actor_id) {
            return Ok(());
        }
        core.node_db.set_pending_work(actor_id, true).await?;
        lock(&self.actors).insert(actor_id.to_string());
        Ok(())
    }

    /// Forgets `actor_id`'s record: it has nothing left to do, or is gone. A failure to write keeps the record
    /// (a spurious wake later, never a lost one) and is logged.
    pub async fn forget(&self, core: &HostCore, actor_id: &str) {
        if !lock(&self.actors).contains(actor_id) {
            return;
        }
        match core.node_db.set_pending_work(actor_id, false).await {
            Ok(()) => drop(lock(&self.actors).remove(actor_id)),
            Err(e) => tracing::warn!(actor_id, error = %e, "cannot forget the actor's finished work"),
        }
    }

    /// Whether `actor_id` is recorded with unfinished work.
    pub fn has(&self, actor_id: &str) -> bool {
        lock(&self.actors).contains(actor_id)
    }

    /// Forgets `actor_id` in memory only (its record went with the actor's row in `node.db`).
    pub fn drop_in_memory(&self, actor_id: &str) {
        lock(&self.actors).remove(actor_id);
    }

    fn recorded(&self) -> Vec<String> {
        lock(&self.actors).iter().cloned().collect()
    }
}

/// Wakes every actor recorded with unfinished work, [`WAKE_CONCURRENCY`] at a time, and returns once each has
/// started (or failed to). Meant to run in the background while the node serves. An actor that no longer exists
/// is forgotten.
pub(crate) async fn resume(core: Arc<HostCore>) {
    let actors = core.pending_work.recorded();
    if actors.is_empty() {
        return;
    }
    tracing::info!(count = actors.len(), "waking actors with unfinished work");
    futures_util::stream::iter(actors)
        .for_each_concurrent(WAKE_CONCURRENCY, |actor_id| {
            let core = core.clone();
            async move {
                if matches!(core.live(&actor_id).await, Ok(None)) {
                    // Destroyed since (a destroy under way forgets it too): nothing is left to do.
                    core.pending_work.forget(&core, &actor_id).await;
                    return;
                }
                let (reply, answer) = oneshot::channel();
                let woken = match core.dispatch(&actor_id, Command::Ping { reply }).await {
                    Ok(()) => answer.await.unwrap_or_else(|_| Err(ClientError::stopping())),
                    Err(e) => Err(e),
                };
                match woken {
                    Ok(()) => tracing::debug!(actor_id, "woken to finish its work"),
                    Err(e) => tracing::warn!(actor_id, error = %e, "cannot wake the actor to finish its work"),
                }
            }
        })
        .await;
}
