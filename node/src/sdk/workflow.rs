//! Workflows: durable multi-step execution in an actor's run loop ([`crate::Actor::workflow`]).
//!
//! Every completed entry (a step's output, a sleep's wake time, a received message, a loop iteration's state,
//! a race's winner) is recorded in the actor's history in the same transaction as the entry's own changes.
//! When the actor wakes again (after a sleep, a crash or a restart), the workflow function runs from the start
//! and every recorded entry returns its recorded value instead of running again, so completed steps never
//! repeat. Entries are keyed by name (and by their order among entries of the same name), so the code between
//! entries must be deterministic: decide with recorded values, not with clocks or randomness.
//!
//! ```ignore
//! Actor::<Order>::new("order").queue("approvals").workflow(|w| async move {
//!     let receipt: String = w.step("charge", |c| async move { charge(&c).await }).await?;
//!     w.sleep("cool down", Duration::from_secs(60)).await?;
//!     let approval: bool = w.listen("approval", &["approvals"]).await?;
//!     let (a, b) = futures::join!(w.step("pack", pack), w.step("label", label)); // a join: both, any order
//!     w.step("ship", move |c| async move { ship(&c, &receipt).await }).await?;
//!     Ok(())
//! })
//! ```

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;
use tern_proto::{ClientError, Value};

use super::context::Ctx;
use super::error::{ActorError, ActorResult};
use super::run::RunCtx;
use crate::clock::now_ms;
use crate::storage::workflow::{self, Entry};
use crate::sync::lock;

/// The key of the workflow's final outcome in its history.
pub(crate) const OUTCOME_KEY: &str = "$workflow#0";

/// How a step is retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StepOptions {
    /// Attempts after the first failure.
    pub retries: u32,
    /// Wait before the first retry; doubles with each further retry.
    pub backoff: Duration,
    /// Longest one attempt may run (bounded by the actor's action timeout too).
    pub timeout: Duration,
}

impl Default for StepOptions {
    fn default() -> Self {
        StepOptions { retries: 3, backoff: Duration::from_millis(100), timeout: Duration::from_secs(60) }
    }
}

/// What a loop iteration decides.
#[derive(Debug, Clone, PartialEq)]
pub enum Loop<T, R> {
    /// Run another iteration with this state.
    Continue(T),
    /// Leave the loop with this value.
    Break(R),
}

/// Which branch of [`WorkflowCtx::race`] finished first.
#[derive(Debug, Clone, PartialEq)]
pub enum Either<A, B> {
    Left(A),
    Right(B),
}

/// The history shared by a workflow and its nested scopes.
struct History {
    entries: HashMap<String, Entry>,
    /// How many entries of each `scope/name` this run has reached.
    occurrences: HashMap<String, u32>,
}

/// What a workflow function is given. Cheap to clone; clones share the history.
pub struct WorkflowCtx<S, V = ()> {
    run: RunCtx<S, V>,
    history: Arc<Mutex<History>>,
    scope: String,
}

impl<S, V> Clone for WorkflowCtx<S, V> {
    fn clone(&self) -> Self {
        WorkflowCtx { run: self.run.clone(), history: self.history.clone(), scope: self.scope.clone() }
    }
}

fn decode<T: DeserializeOwned>(key: &str, value: Option<Value>) -> ActorResult<T> {
    value
        .unwrap_or(Value::Null)
        .deserialized()
        .map_err(|e| ActorError::internal(format!("workflow entry {key} no longer fits its type: {e}")))
}

impl<S: Send + 'static, V: Send + 'static> WorkflowCtx<S, V> {
    pub(crate) fn new(run: RunCtx<S, V>, entries: Vec<Entry>) -> Self {
        let entries = entries.into_iter().map(|e| (e.key.clone(), e)).collect();
        WorkflowCtx {
            run,
            history: Arc::new(Mutex::new(History { entries, occurrences: HashMap::new() })),
            scope: String::new(),
        }
    }

    /// The run loop underneath (queue, abort signal, plain steps).
    pub fn run_ctx(&self) -> &RunCtx<S, V> {
        &self.run
    }

    /// The key of the next entry named `name` in this scope.
    fn key(&self, name: &str) -> String {
        let base = if self.scope.is_empty() { name.to_string() } else { format!("{}/{name}", self.scope) };
        let mut history = lock(&self.history);
        let occurrence = history.occurrences.entry(base.clone()).or_default();
        let key = format!("{base}#{occurrence}");
        *occurrence += 1;
        key
    }

    fn recorded(&self, key: &str) -> Option<Entry> {
        lock(&self.history).entries.get(key).cloned()
    }

    fn remember(&self, key: &str, kind: &str, output: &Value) {
        let entry = Entry {
            seq: 0,
            key: key.to_string(),
            kind: kind.to_string(),
            output: Some(output.clone()),
            error: None,
            finished_at: now_ms(),
        };
        lock(&self.history).entries.insert(key.to_string(), entry);
    }

    /// Records an entry with no work of its own, in its own atomic unit.
    async fn record(&self, key: &str, kind: &'static str, output: Value) -> ActorResult<()> {
        let (stored_key, stored) = (key.to_string(), output.clone());
        self.run
            .step(move |c: Ctx<S, V>| async move {
                workflow::record(c.sql().connection()?, &stored_key, kind, Some(&stored), None, now_ms()).await?;
                Ok(())
            })
            .await?;
        self.remember(key, kind, &output);
        Ok(())
    }

    /// Runs `work` once, with [`StepOptions::default`] (3 retries with backoff): its output is recorded with
    /// its changes and returned again on replay.
    pub async fn step<R, F, Fut>(&self, name: &str, work: F) -> ActorResult<R>
    where
        R: Serialize + DeserializeOwned + Send + 'static,
        F: Fn(Ctx<S, V>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ActorResult<R>> + Send + 'static,
    {
        self.step_with(name, StepOptions::default(), work).await
    }

    /// Like [`WorkflowCtx::step`] with explicit retries, backoff and timeout. A failed attempt changes
    /// nothing; the last failure is returned.
    pub async fn step_with<R, F, Fut>(&self, name: &str, options: StepOptions, work: F) -> ActorResult<R>
    where
        R: Serialize + DeserializeOwned + Send + 'static,
        F: Fn(Ctx<S, V>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ActorResult<R>> + Send + 'static,
    {
        let key = self.key(name);
        if let Some(entry) = self.recorded(&key) {
            return decode(&key, entry.output);
        }
        let work = Arc::new(work);
        let mut attempt = 0;
        loop {
            let (work, stored_key) = (work.clone(), key.clone());
            let result = self
                .run
                .labelled_step(format!("workflow step {key}"), move |c: Ctx<S, V>| async move {
                    let output = match tokio::time::timeout(options.timeout, work(c.clone())).await {
                        Ok(output) => output?,
                        Err(_) => {
                            let ms = options.timeout.as_millis() as u64;
                            return Err(ClientError::action_timed_out(&stored_key, ms).into());
                        }
                    };
                    let value = Value::serialized(&output).map_err(ActorError::internal)?;
                    workflow::record(c.sql().connection()?, &stored_key, "step", Some(&value), None, now_ms()).await?;
                    Ok(value)
                })
                .await;
            match result {
                Ok(value) => {
                    self.remember(&key, "step", &value);
                    return decode(&key, Some(value));
                }
                Err(e) if attempt < options.retries && !self.run.aborted() => {
                    tracing::warn!(step = %key, attempt, error = %e, "workflow step failed; retrying");
                    tokio::time::sleep(options.backoff.saturating_mul(1 << attempt.min(16))).await;
                    attempt += 1;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Sleeps durably for `duration`: the wake time is recorded, the actor may sleep meanwhile and is woken when
    /// it is due, and after a crash the sleep resumes with the time that remains.
    pub async fn sleep(&self, name: &str, duration: Duration) -> ActorResult<()> {
        self.sleep_until(name, now_ms() + duration.as_millis() as i64).await
    }

    /// Sleeps durably until `at_ms` (ms since the epoch).
    pub async fn sleep_until(&self, name: &str, at_ms: i64) -> ActorResult<()> {
        let key = self.key(name);
        let wake_at = match self.recorded(&key) {
            Some(entry) => decode::<i64>(&key, entry.output)?,
            None => {
                let stored_key = key.clone();
                self.run
                    .step(move |c: Ctx<S, V>| async move {
                        workflow::record(
                            c.sql().connection()?,
                            &stored_key,
                            "sleep",
                            Some(&Value::from(at_ms)),
                            None,
                            now_ms(),
                        )
                        .await?;
                        c.wake_at(&format!("workflow:{stored_key}"), at_ms).await
                    })
                    .await?;
                self.remember(&key, "sleep", &Value::from(at_ms));
                at_ms
            }
        };
        self.run.park_until(wake_at).await;
        Ok(())
    }

    /// Waits for the next message on one of `queues` and returns its body; the message is removed in the same
    /// transaction that records it, and returned again on replay.
    pub async fn listen<T: DeserializeOwned + Send + 'static>(&self, name: &str, queues: &[&str]) -> ActorResult<T> {
        let key = self.key(name);
        if let Some(entry) = self.recorded(&key) {
            return decode(&key, entry.output);
        }
        let stored_key = key.clone();
        let body = self
            .run
            .process(queues, None, move |c: Ctx<S, V>, message| async move {
                let body = message.body_value().clone();
                workflow::record(c.sql().connection()?, &stored_key, "listen", Some(&body), None, now_ms()).await?;
                Ok(body)
            })
            .await?
            .ok_or_else(|| ActorError::from(ClientError::stopping()))?;
        self.remember(&key, "listen", &body);
        decode(&key, Some(body))
    }

    /// A loop with state: `body` runs once per iteration with the state the previous one produced; each
    /// finished iteration is recorded, so after a crash the loop resumes after the last one. Entries inside an
    /// iteration are scoped to it.
    pub async fn repeat<T, R, F, Fut>(&self, name: &str, initial: T, mut body: F) -> ActorResult<R>
    where
        T: Serialize + DeserializeOwned + Send + 'static,
        R: Serialize + DeserializeOwned + Send + 'static,
        F: FnMut(WorkflowCtx<S, V>, T) -> Fut,
        Fut: Future<Output = ActorResult<Loop<T, R>>>,
    {
        let key = self.key(name);
        let result_key = format!("{key}/result");
        if let Some(entry) = self.recorded(&result_key) {
            return decode(&result_key, entry.output);
        }
        let (mut iteration, mut state) = (0u64, initial);
        while let Some(entry) = self.recorded(&format!("{key}/{iteration}")) {
            state = decode(&key, entry.output)?;
            iteration += 1;
        }
        loop {
            let scoped = WorkflowCtx {
                run: self.run.clone(),
                history: self.history.clone(),
                scope: format!("{key}/{iteration}"),
            };
            match body(scoped, state).await? {
                Loop::Continue(next) => {
                    let value = Value::serialized(&next).map_err(ActorError::internal)?;
                    self.record(&format!("{key}/{iteration}"), "loop", value).await?;
                    state = next;
                    iteration += 1;
                }
                Loop::Break(result) => {
                    let value = Value::serialized(&result).map_err(ActorError::internal)?;
                    self.record(&result_key, "loop", value).await?;
                    return Ok(result);
                }
            }
        }
    }

    /// Runs two branches and returns the first to finish; the winner is recorded, so a replay waits for the
    /// same branch (whose entries replay at once). Use `futures::join!` to wait for both.
    pub async fn race<A, B>(
        &self,
        name: &str,
        left: impl Future<Output = ActorResult<A>>,
        right: impl Future<Output = ActorResult<B>>,
    ) -> ActorResult<Either<A, B>> {
        let key = self.key(name);
        if let Some(entry) = self.recorded(&key) {
            return match decode::<u8>(&key, entry.output)? {
                0 => Ok(Either::Left(left.await?)),
                _ => Ok(Either::Right(right.await?)),
            };
        }
        let winner = tokio::select! {
            left = left => Either::Left(left?),
            right = right => Either::Right(right?),
        };
        let index = Value::from(if matches!(winner, Either::Left(_)) { 0 } else { 1 });
        self.record(&key, "race", index).await?;
        Ok(winner)
    }
}

/// Runs a workflow function in a run loop: loads the history, skips a workflow that already finished, and
/// records the final outcome (not when the actor is merely stopping).
pub(crate) async fn drive<S, V, F, Fut>(run: RunCtx<S, V>, workflow_fn: &F) -> ActorResult<()>
where
    S: Send + 'static,
    V: Send + 'static,
    F: Fn(WorkflowCtx<S, V>) -> Fut,
    Fut: Future<Output = ActorResult<()>>,
{
    let entries = run.step(|c: Ctx<S, V>| async move { Ok(workflow::load(c.sql().connection()?).await?) }).await?;
    if entries.iter().any(|e| e.key == OUTCOME_KEY) {
        return Ok(());
    }
    let outcome = workflow_fn(WorkflowCtx::new(run.clone(), entries)).await;
    if run.aborted() {
        return Ok(());
    }
    let error = outcome.as_ref().err().map(ToString::to_string);
    run.step(move |c: Ctx<S, V>| async move {
        workflow::record(c.sql().connection()?, OUTCOME_KEY, "workflow", None, error.as_deref(), now_ms()).await?;
        Ok(())
    })
    .await?;
    outcome
}
