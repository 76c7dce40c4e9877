//! Starting and stopping an actor's run loop (see [`crate::sdk::run`]), and running its steps in turns.

use std::any::Any;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use serde::Serialize;
use serde::de::DeserializeOwned;
use tern_proto::ClientError;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use super::command::Command;
use super::instance::Instance;
use crate::sdk::conn::lock;
use crate::sdk::run::{ErasedStep, RunCtx, StepFn};
use crate::storage::ActorDb;

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
    pub(crate) fn start_run_loop(&mut self, mailbox: mpsc::WeakSender<Command>) {
        let Some(run) = self.def.run.clone() else { return };
        let (abort, aborted) = watch::channel(false);
        let parked = Arc::new(AtomicBool::new(false));
        let ctx = RunCtx { mailbox, aborted, parked: parked.clone(), _types: std::marker::PhantomData };
        let actor_id = self.shared.actor_id.clone();
        let task = tokio::spawn(async move {
            match run(ctx).await {
                Ok(()) => tracing::debug!(actor_id, "run loop returned"),
                Err(e) => tracing::warn!(actor_id, error = %e, "run loop failed"),
            }
        });
        self.run_loop = Some(RunLoop { task, abort, parked });
    }

    /// Whether the run loop lets the actor sleep: it has none, it returned, or it waits on its queue.
    pub(crate) fn run_loop_is_idle(&self) -> bool {
        let waits_on_queue = lock(&self.queue).has_waiting_receiver();
        let waits_on_time = self.run_loop.as_ref().is_some_and(|r| r.parked.load(Ordering::Acquire));
        self.run_loop.as_ref().is_none_or(RunLoop::is_finished) || waits_on_queue || waits_on_time
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
