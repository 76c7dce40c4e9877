//! The run loop: a long-lived background task per awake actor ([`crate::Actor::run`]), started on every wake
//! and stopped on sleep and destroy.
//!
//! The run loop never touches the actor's state or database directly. It receives queue messages and runs
//! *steps* ([`RunCtx::step`]): closures that the actor executes as an atomic unit of a turn, exactly like an
//! action, so everything the run loop changes is committed (or rolled back) the same way. While it waits on its
//! queue, the actor may sleep; the next message wakes the actor, which starts the run loop again.

use std::any::Any;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tern_proto::{ClientError, Value};
use tokio::sync::{oneshot, watch};

use super::context::Ctx;
use super::definition::BoxFuture;
use super::error::{ActorError, ActorResult};
use super::queue::{QueueMessage, Wait, to_body};

/// A step as the turn runs it: the closure, type-erased so that [`RunRequest`] needs no type parameters.
pub(crate) type ErasedStep = Box<dyn Any + Send>;
/// The closure behind an [`ErasedStep`], for an actor with state `S` and vars `V`.
pub(crate) type StepFn<S, V> = Box<dyn FnOnce(Ctx<S, V>) -> BoxFuture<ActorResult<Box<dyn Any + Send>>> + Send>;
/// A message handler given to [`RunCtx::process`], type-erased like [`ErasedStep`]; it returns the completion
/// response (for a waiting sender) and the value for the run loop.
pub(crate) type ProcessFn<S, V> =
    Box<dyn FnOnce(Ctx<S, V>, QueueMessage) -> BoxFuture<ActorResult<(Value, Box<dyn Any + Send>)>> + Send>;

/// The reply channel of a request to the actor.
pub(crate) type Reply<T> = oneshot::Sender<Result<T, ClientError>>;

/// What the run loop asks its actor to do; the actor runs each request in a turn of its own and answers on
/// `reply`.
pub(crate) enum RunRequest {
    /// Run a step (a [`StepFn`], type-erased) as an atomic unit; `label` names its trace span.
    Step { label: String, work: ErasedStep, reply: Reply<Box<dyn Any + Send>> },
    /// Take the next message of `names` (any when empty) and handle it (a [`ProcessFn`], type-erased) in one
    /// atomic unit; answered once a message was handled.
    QueueProcess { names: Vec<String>, handler: ErasedStep, reply: Reply<Option<Box<dyn Any + Send>>> },
    /// Receive up to `limit` messages of `names` (any when empty); when none is waiting and `wait` is set, the
    /// answer comes when one arrives.
    QueueReceive { names: Vec<String>, limit: usize, wait: bool, reply: Reply<Vec<QueueMessage>> },
    /// Complete a completable message with a response for its sender.
    QueueComplete { id: i64, response: Value, reply: Reply<()> },
    /// Store a message on the actor's own queue `name`; answered once committed (`None`), or, when `wait` is
    /// set, once the message is completed (with the completion's response).
    QueueSend { name: String, body: Value, wait: bool, reply: Reply<Option<Value>> },
}

/// How the run loop reaches its actor; the runtime delivers the requests to the actor's mailbox.
pub(crate) trait RunMailbox: Send + Sync {
    /// Delivers `request`, waiting while the actor's mailbox is full; `actor.stopping` once the actor is gone.
    fn post(&self, request: RunRequest) -> BoxFuture<Result<(), ClientError>>;
}

/// What the run loop is given. Cheap to clone.
pub struct RunCtx<S, V = ()> {
    pub(crate) mailbox: Arc<dyn RunMailbox>,
    pub(crate) aborted: watch::Receiver<bool>,
    /// Set while the run loop waits for time to pass (a workflow sleep), so the actor may sleep meanwhile.
    pub(crate) parked: Arc<AtomicBool>,
    pub(crate) _types: std::marker::PhantomData<fn() -> (S, V)>,
}

impl<S, V> Clone for RunCtx<S, V> {
    fn clone(&self) -> Self {
        RunCtx {
            mailbox: self.mailbox.clone(),
            aborted: self.aborted.clone(),
            parked: self.parked.clone(),
            _types: std::marker::PhantomData,
        }
    }
}

/// Sends a request to the actor and waits for its answer; `actor.stopping` once the actor stops.
async fn ask<T>(mailbox: &dyn RunMailbox, make: impl FnOnce(Reply<T>) -> RunRequest) -> ActorResult<T> {
    let (reply, answer) = oneshot::channel();
    mailbox.post(make(reply)).await?;
    Ok(answer.await.map_err(|_| ActorError::from(ClientError::stopping()))??)
}

impl<S: Send + 'static, V: Send + 'static> RunCtx<S, V> {
    /// The actor's queue.
    pub fn queue(&self) -> RunQueue {
        RunQueue { mailbox: self.mailbox.clone(), aborted: self.aborted.clone() }
    }

    /// Runs `work` as one atomic unit of a turn, with the same context actions get: its state, SQL, KV,
    /// schedule and event changes commit together before this returns, or not at all if it fails.
    pub async fn step<R, F, Fut>(&self, work: F) -> ActorResult<R>
    where
        R: Send + 'static,
        F: FnOnce(Ctx<S, V>) -> Fut + Send + 'static,
        Fut: Future<Output = ActorResult<R>> + Send + 'static,
    {
        self.labelled_step("run loop step".to_string(), work).await
    }

    /// A step whose trace span is named `label`.
    pub(crate) async fn labelled_step<R, F, Fut>(&self, label: String, work: F) -> ActorResult<R>
    where
        R: Send + 'static,
        F: FnOnce(Ctx<S, V>) -> Fut + Send + 'static,
        Fut: Future<Output = ActorResult<R>> + Send + 'static,
    {
        let step: StepFn<S, V> =
            Box::new(move |ctx| Box::pin(async move { work(ctx).await.map(|r| Box::new(r) as Box<dyn Any + Send>) }));
        let output = ask(&*self.mailbox, |reply| RunRequest::Step { label, work: Box::new(step), reply }).await?;
        output.downcast::<R>().map(|r| *r).map_err(|_| ActorError::internal("a step returned another type"))
    }

    /// Takes the next message of `names` (any queue when empty) and handles it with `handler` in the same atomic
    /// unit: the message is removed only if the handler succeeds, and a waiting sender gets the handler's output
    /// as its response. If the handler fails, nothing it did is kept and the message stays queued. Waits up to
    /// `timeout` (forever when `None`) for a message; `None` on timeout or when the actor stops. This is the
    /// exactly-once way to consume a queue.
    pub async fn process<R, F, Fut>(
        &self,
        names: &[&str],
        timeout: Option<Duration>,
        handler: F,
    ) -> ActorResult<Option<R>>
    where
        R: serde::Serialize + Send + 'static,
        F: FnOnce(Ctx<S, V>, QueueMessage) -> Fut + Send + 'static,
        Fut: Future<Output = ActorResult<R>> + Send + 'static,
    {
        let handler: ProcessFn<S, V> = Box::new(move |ctx, message| {
            Box::pin(async move {
                let output = handler(ctx, message).await?;
                let response = to_body(&output)?;
                Ok((response, Box::new(output) as Box<dyn Any + Send>))
            })
        });
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let processed =
            ask(&*self.mailbox, |reply| RunRequest::QueueProcess { names, handler: Box::new(handler), reply });
        let mut aborted = self.aborted.clone();
        let deadline = async move {
            match timeout {
                Some(timeout) => tokio::time::sleep(timeout).await,
                None => std::future::pending().await,
            }
        };
        let output = tokio::select! {
            processed = processed => processed?,
            _ = aborted.wait_for(|stopping| *stopping) => None,
            _ = deadline => None,
        };
        output
            .map(|o| o.downcast::<R>().map(|r| *r).map_err(|_| ActorError::internal("a handler returned another type")))
            .transpose()
    }

    /// Waits until `at_ms` (ms since the epoch) with the run loop counted as idle, so the actor may sleep in the
    /// meantime; whoever needs it awake again at `at_ms` must have armed a schedule for it.
    pub(crate) async fn park_until(&self, at_ms: i64) {
        let remaining = at_ms - crate::clock::now_ms();
        if remaining <= 0 {
            return;
        }
        self.parked.store(true, Ordering::Release);
        tokio::time::sleep(Duration::from_millis(remaining as u64)).await;
        self.parked.store(false, Ordering::Release);
    }

    /// Whether the actor is stopping (sleep or destroy): the run loop should return.
    pub fn aborted(&self) -> bool {
        *self.aborted.borrow()
    }

    /// Resolves when the actor starts stopping.
    pub async fn abort_signal(&self) {
        let mut aborted = self.aborted.clone();
        let _ = aborted.wait_for(|stopping| *stopping).await;
    }
}

/// The queue as the run loop sees it.
pub struct RunQueue {
    mailbox: Arc<dyn RunMailbox>,
    aborted: watch::Receiver<bool>,
}

impl RunQueue {
    async fn receive(&self, names: &[&str], limit: usize, wait: Wait) -> ActorResult<Vec<QueueMessage>> {
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let receive =
            ask(&*self.mailbox, |reply| RunRequest::QueueReceive { names, limit, wait: wait != Wait::No, reply });
        let mut aborted = self.aborted.clone();
        let stopping = async move {
            let _ = aborted.wait_for(|stopping| *stopping).await;
        };
        let deadline = async move {
            match wait {
                Wait::Up(timeout) => tokio::time::sleep(timeout).await,
                Wait::No | Wait::Forever => std::future::pending().await,
            }
        };
        tokio::select! {
            received = receive => received,
            _ = stopping => Ok(Vec::new()),
            _ = deadline => Ok(Vec::new()),
        }
    }

    /// The next message on one of `names` (any queue when empty), waiting up to `timeout` (forever when
    /// `None`); `None` on timeout or when the actor stops.
    pub async fn next(&self, names: &[&str], timeout: Option<Duration>) -> ActorResult<Option<QueueMessage>> {
        let wait = timeout.map_or(Wait::Forever, Wait::Up);
        Ok(self.receive(names, 1, wait).await?.into_iter().next())
    }

    /// Up to `limit` messages, waiting like [`RunQueue::next`] for the first one.
    pub async fn next_batch(
        &self,
        names: &[&str],
        limit: usize,
        timeout: Option<Duration>,
    ) -> ActorResult<Vec<QueueMessage>> {
        self.receive(names, limit.max(1), timeout.map_or(Wait::Forever, Wait::Up)).await
    }

    /// The next message if one is waiting now.
    pub async fn try_next(&self, names: &[&str]) -> ActorResult<Option<QueueMessage>> {
        Ok(self.receive(names, 1, Wait::No).await?.into_iter().next())
    }

    /// The messages of `names` one after another, each removed as it is received (a plain receive), waiting
    /// for the next; the stream ends when the actor stops.
    pub fn iter(&self, names: &[&str]) -> impl futures_util::Stream<Item = ActorResult<QueueMessage>> + Send + '_ {
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        futures_util::stream::unfold(names, move |names| async move {
            let borrowed: Vec<&str> = names.iter().map(String::as_str).collect();
            match self.next(&borrowed, None).await {
                Ok(Some(message)) => Some((Ok(message), names)),
                Ok(None) => None,
                Err(e) => Some((Err(e), names)),
            }
        })
    }

    /// Completes a completable message: removes it and answers its waiting sender with `response`.
    pub async fn complete(&self, message: &QueueMessage, response: impl serde::Serialize) -> ActorResult<()> {
        let (id, response) = (message.id, to_body(response)?);
        ask(&*self.mailbox, |reply| RunRequest::QueueComplete { id, response, reply }).await
    }

    /// Sends a message to this actor's own queue `name`.
    pub async fn send(&self, name: &str, body: impl serde::Serialize) -> ActorResult<()> {
        let (name, body) = (name.to_string(), to_body(body)?);
        let _accepted: Option<Value> =
            ask(&*self.mailbox, |reply| RunRequest::QueueSend { name, body, wait: false, reply }).await?;
        Ok(())
    }
}
