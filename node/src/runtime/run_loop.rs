//! Starting and stopping an actor's run loop (see [`crate::sdk::run`]), and running its steps in turns.

use std::any::Any;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use serde::Serialize;
use serde::de::DeserializeOwned;
use tern_proto::ClientError;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::command::Command;
use super::instance::Instance;
use super::mailbox;
use crate::sdk::definition::BoxFuture;
use crate::sdk::run::{ErasedStep, RunCtx, RunMailbox, RunRequest, StepFn};
use crate::storage::ActorDb;
use crate::sync::lock;

/// The run loop reaches its actor through the actor's mailbox, held weakly so that the run loop does not keep a
/// stopped instance's mailbox open.
impl RunMailbox for mailbox::WeakSender<Command> {
    fn post(&self, request: RunRequest) -> BoxFuture<Result<(), ClientError>> {
        let sender = self.upgrade();
        Box::pin(async move {
            let sender = sender.ok_or_else(ClientError::stopping)?;
            sender.send(request.into()).await.map_err(|_| ClientError::stopping())
        })
    }
}

/// A started run loop.
pub(crate) struct RunLoop {
    task: JoinHandle<()>,
    abort: watch::Sender<bool>,
    parked: Arc<AtomicBool>,
}

impl RunLoop {
    /// Whether the run loop returned (or failed).
    pub fn is_finished(&self) -> bool {
        self.task.is_finished()
    }

    /// Signals the run loop to stop and stops it: everything it changed went through turns, so nothing is
    /// half-written when its task is dropped.
    pub fn stop(self) {
        let _ = self.abort.send(true);
        self.task.abort();
    }
}

impl<S, V> Instance<S, V>
where
    S: Serialize + DeserializeOwned + Send + 'static,
    V: Default + Send + 'static,
{
    /// Starts the definition's run loop, if it has one, talking to the actor through `mailbox`.
    pub(crate) fn start_run_loop(&mut self, mailbox: mailbox::WeakSender<Command>) {
        let Some(run) = self.def.run.clone() else { return };
        let (abort, aborted) = watch::channel(false);
        let parked = Arc::new(AtomicBool::new(false));
        let ctx =
            RunCtx { mailbox: Arc::new(mailbox), aborted, parked: parked.clone(), _types: std::marker::PhantomData };
        let actor_id = self.shared.actor_id.clone();
        let task = tokio::spawn(async move {
            match run(ctx).await {
                Ok(()) => tracing::debug!(actor_id, "run loop returned"),
                Err(e) => tracing::warn!(actor_id, error = %e, "run loop failed"),
            }
        });
        self.run_loop = Some(Box::new(RunLoop { task, abort, parked }));
    }

    /// Whether the run loop lets the actor sleep: it has none, it returned, or it waits on its queue.
    pub(crate) fn run_loop_is_idle(&self) -> bool {
        let waits_on_queue = lock(&self.queue).has_waiting_receiver();
        let waits_on_time = self.run_loop.as_ref().is_some_and(|r| r.parked.load(Ordering::Acquire));
        self.run_loop.as_deref().is_none_or(RunLoop::is_finished) || waits_on_queue || waits_on_time
    }

    /// Whether the run loop has work it must do without waiting for a request: the actor has a run loop that is
    /// busy (neither returned nor waiting on its queue or on time), or a completable message it received and did
    /// not complete yet (delivered again on the next wake).
    pub(crate) fn has_unfinished_work(&self) -> bool {
        self.def.run.is_some() && !(lock(&self.queue).is_idle() && self.run_loop_is_idle())
    }

    /// After a sleep whose run loop was idle: forgets the actor's unfinished work, unless its queue still holds
    /// messages (accepted in the sleep's last turn, after the run loop stopped, or for queues it was not waiting
    /// on), which the next start wakes it for. A failure to look keeps the record.
    pub(crate) async fn forget_finished_work(&self) {
        if self.def.run.is_none() {
            return;
        }
        let left = match Self::open_db(&self.core, &self.shared.actor_id).await {
            Ok(db) => crate::storage::queue::len(db.connection()).await.ok(),
            Err(_) => None,
        };
        if left == Some(0) {
            self.core.pending_work.forget(&self.core, &self.shared.actor_id).await;
        }
    }

    /// Runs one step as an atomic unit, within the action timeout.
    pub(crate) async fn run_step(
        &self,
        db: &ActorDb,
        label: &str,
        work: ErasedStep,
    ) -> Result<Box<dyn Any + Send>, ClientError> {
        let work = work.downcast::<StepFn<S, V>>().map_err(|_| {
            tracing::error!(actor_id = %self.shared.actor_id, "a step of another actor type reached this actor");
            ClientError::internal()
        })?;
        let ctx = self.ctx();
        let unit = self.atomically(db, async move {
            let timeout = self.def.options.action_timeout;
            match tokio::time::timeout(timeout, crate::sdk::actors::with_budget(timeout, work(ctx))).await {
                Err(_) => Err(ClientError::action_timed_out("run loop step", timeout.as_millis() as u64)),
                Ok(result) => result.map_err(|e| e.into_client(&self.shared.actor_id, "run loop step")),
            }
        });
        self.in_span(label, Vec::new(), unit).await
    }
}
