//! One awake actor: a tokio task that owns the actor's state and handles its commands in turns.
//!
//! A turn takes every command already waiting (up to [`MAX_BATCH`]), runs them one after another inside one
//! transaction (each action in its own savepoint, rolled back if the action fails), saves the state if it
//! changed, commits, and only then releases replies and events. So a reply is never sent before the changes it
//! reports are committed (the output gate), and concurrent requests share one commit (group commit).
//!
//! If a commit fails, or actor code panics, the turn's replies become errors and the instance stops; the next
//! request wakes a fresh instance from the last committed state. The error is `storage.full` when the disk is
//! full (the turn was rolled back whole, so the same requests may be retried once space is freed) and
//! `actor.internal_error` otherwise.

use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::task::Poll;
use std::time::{Duration, Instant};

use futures_util::FutureExt;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tern_gateway::backend::ConnOutput;
use tern_proto::key::serialize_key;
use tern_proto::{ClientError, Value};
use tokio::sync::oneshot;

use super::command::{Command, Reply};
use super::host::HostCore;
use super::lifecycle::{self, StartInfo};
use super::mailbox;
use super::queue::QueueState;
use super::raw::RawSockets;
use super::run_loop::RunLoop;
use crate::sdk::conn::Conn;
use crate::sdk::context::{Ctx, Shared};
use crate::sdk::definition::{Actor, BoxFuture};
use crate::sdk::error::ActorResult;
use crate::sdk::sql::Sql;
use crate::storage::{self, ActorDb};
use crate::sync::lock;
use crate::trace::export::SpanSource;
use crate::trace::{Span, SpanKind};

/// Most commands handled in one turn (one commit).
pub(crate) const MAX_BATCH: usize = 128;

/// Most spans kept in memory from turns that changed nothing (see [`Instance::persist_turn`]); the turn that
/// would pass this writes them all.
pub(crate) const UNSAVED_SPANS: usize = 256;

/// Capacity of each connection's outgoing queue; a client that falls this far behind is disconnected.
pub(crate) const CONN_QUEUE: usize = 1024;

/// When [`Instance::persist_turn`] writes the spans of a turn.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum SpanSaving {
    /// Only if the turn changed something else (or too many are unsaved): a turn that changed nothing commits
    /// nothing.
    WhenChanged,
    /// Always, with every span still unsaved: the last turn before the actor sleeps, moves or stops.
    Always,
}

/// How a turn ended.
pub(crate) enum TurnEnd {
    Continue,
    Sleep(Vec<oneshot::Sender<()>>),
    Destroy(Vec<Reply<()>>),
    /// The turn could not commit or actor code panicked: stop without touching the disk again, failing the
    /// requests still waiting with this error.
    Crashed(ClientError),
}

/// Why a turn (or a wake, or a sleep) could not be saved: the error its requests get and the cause, for the logs.
pub(crate) struct Failure {
    /// `storage.full` when the disk is full, replication's refusal as it gave it, `actor.internal_error`
    /// otherwise.
    pub error: ClientError,
    /// What went wrong, for the logs only (clients never see it).
    pub cause: String,
}

impl Failure {
    /// A storage operation failed with `err`.
    pub fn storage(err: &libsql::Error) -> Failure {
        Failure { error: storage::client_error(err), cause: err.to_string() }
    }

    /// A part of the turn failed with a catalogue error: a full disk stays `storage.full`, anything else is
    /// masked as `actor.internal_error`.
    pub fn from_client(err: &ClientError) -> Failure {
        let error = if err.is_storage_full() { err.clone() } else { ClientError::internal() };
        Failure { error, cause: err.to_string() }
    }

    /// Replication refused to let the actor's database be used, with an error meant for clients (a node that
    /// cannot confirm its lease answers `actor.unavailable`, 503, which a client may retry elsewhere).
    pub fn refused(err: &ClientError) -> Failure {
        Failure { error: err.clone(), cause: err.to_string() }
    }

    /// A file system operation failed with `err` (`ENOSPC` is `storage.full`).
    pub fn io(err: &std::io::Error) -> Failure {
        let error = match err.kind() {
            std::io::ErrorKind::StorageFull => ClientError::storage_full(),
            _ => ClientError::internal(),
        };
        Failure { error, cause: err.to_string() }
    }

    /// Anything else: `actor.internal_error`.
    pub fn internal(cause: impl Into<String>) -> Failure {
        Failure { error: ClientError::internal(), cause: cause.into() }
    }

    /// Reports the failure of `stage` of an operation on `actor_id`: a full disk for operators (see
    /// [`storage::report_full`]), anything else logged at error level as `what` failed. Returns the error the
    /// operation's requests get.
    pub fn report(self, core: &HostCore, actor_id: &str, what: &str, stage: &str) -> ClientError {
        if !storage::report_full(&core.metrics, &format!("{what} ({stage})"), Some(actor_id), &self.error, &self.cause)
        {
            tracing::error!(actor_id, stage, cause = %self.cause, "{what} failed; its changes were not committed");
        }
        self.error
    }
}

/// A reply held until its turn commits: released with its result, or failed with an error if the turn does
/// not commit.
pub(crate) struct Held {
    send: Box<dyn FnOnce(Option<ClientError>) + Send>,
    /// Whether the result is `storage.full`: SQLite refused one of the unit's writes because the disk is full.
    full: bool,
}

impl Held {
    pub(crate) fn new<T: Send + 'static>(reply: Reply<T>, result: Result<T, ClientError>) -> Held {
        let full = result.as_ref().is_err_and(ClientError::is_storage_full);
        let send = Box::new(move |failure| {
            let _ = reply.send(match failure {
                Some(err) => Err(err),
                None => result,
            });
        });
        Held { send, full }
    }

    fn release(self) {
        (self.send)(None)
    }

    fn fail(self, err: ClientError) {
        (self.send)(Some(err))
    }
}

/// The actor's database as lent to actor code for one turn; taken back when dropped.
pub(crate) struct DbLoan<S, V> {
    shared: Arc<Shared<S, V>>,
    _lent: storage::sandbox::Lent,
}

impl<S, V> Drop for DbLoan<S, V> {
    fn drop(&mut self) {
        *lock(&self.shared.sql) = None;
    }
}

/// A running actor.
pub(crate) struct Instance<S, V> {
    pub def: Arc<Actor<S, V>>,
    pub shared: Arc<Shared<S, V>>,
    pub core: Arc<HostCore>,
    /// Open raw WebSockets and their parked handlers.
    pub raw: RawSockets,
    /// The queue's in-memory side: waiting receivers, messages in flight, waiting senders.
    pub queue: Mutex<QueueState>,
    /// Boxed: most actors have none, and every awake actor's task holds this struct.
    pub run_loop: Option<Box<RunLoop>>,
    /// Set by a workflow replay: the run loop restarts after the turn.
    pub restart_run_loop: std::sync::atomic::AtomicBool,
    /// Set by [`Command::Move`]: the coming sleep hands the connections over to the actor's next home.
    pub moving: std::sync::atomic::AtomicBool,
    /// Finished spans of turns that changed nothing, not yet written (see [`Instance::persist_turn`]).
    pub unsaved_spans: Mutex<Vec<Span>>,
}

impl<S, V> Instance<S, V>
where
    S: Serialize + DeserializeOwned + Send + 'static,
    V: Default + Send + 'static,
{
    /// The root context (no connection).
    pub fn ctx(&self) -> Ctx<S, V> {
        Ctx { shared: self.shared.clone(), conn: None }
    }

    /// Opens (or reuses) the actor's database for a turn.
    pub async fn open_db(core: &HostCore, actor_id: &str) -> Result<ActorDb, Failure> {
        let path = core.data_dir.actor_db_path(actor_id);
        let db = core.pool.connection(actor_id, &path, core.synchronous()).await.map_err(|e| Failure::storage(&e))?;
        if let Some(replicator) = core.replicator.get() {
            let pending = db.wal_owner_pending();
            if let Err(e) = replicator.opened(actor_id, &db).await {
                // Its checkpoints off first: the pool's handle then closes without one.
                drop(pending);
                core.pool.close(actor_id);
                return Err(Failure::refused(&e));
            }
            pending.resolved();
        }
        Ok(db)
    }

    /// Lends the actor's database to actor code (`c.sql()`) until the returned guard is dropped. Between turns
    /// only the pool holds the handle, so the pool's bound on open files holds for awake actors too.
    pub fn expose_db(&self, db: &ActorDb) -> DbLoan<S, V> {
        *lock(&self.shared.sql) = Some(Sql::new(db, self.shared.recorder.clone(), self.def.options.statement_timeout));
        DbLoan { shared: self.shared.clone(), _lent: db.sandbox().lend() }
    }

    /// Whether the actor may sleep: no open connections or raw WebSockets, no completable message in flight,
    /// and a run loop (if any) that returned or waits on its queue.
    pub fn is_idle(&self) -> bool {
        lock(&self.shared.conns).is_empty()
            && self.raw.is_empty()
            && lock(&self.queue).is_idle()
            && self.run_loop_is_idle()
    }

    /// Runs one turn over `batch`.
    pub async fn turn(&mut self, batch: Vec<Command>) -> TurnEnd {
        let db = match Self::open_db(&self.core, &self.shared.actor_id).await {
            Ok(db) => db,
            Err(failure) => {
                let err = failure.report(&self.core, &self.shared.actor_id, "turn", "open database");
                batch.into_iter().for_each(|c| c.fail(err.clone()));
                return TurnEnd::Crashed(err);
            }
        };
        let _loan = self.expose_db(&db);
        if let Err(e) = db.begin().await {
            let failure = Failure::storage(&e);
            batch.into_iter().for_each(|c| c.fail(failure.error.clone()));
            return self.abort_turn(&db, Vec::new(), "begin", failure).await;
        }
        let mut held = Vec::new();
        let mut sleeps = Vec::new();
        let mut destroys = Vec::new();
        let mut exports = Vec::new();
        for command in batch {
            match command {
                Command::Action { name, args, params, reply } => {
                    let result = self.stateless_action(&db, &name, args, params).await;
                    held.push(Held::new(reply, result));
                }
                Command::Connect { params, outbound, reply } => {
                    let result = self.connect(&db, params, outbound).await;
                    held.push(Held::new(reply, result));
                }
                Command::ConnAction { conn_id, id, name, args } => {
                    let conn = lock(&self.shared.conns).get(&conn_id).cloned();
                    if let Some(conn) = conn {
                        let result = self.action_in_savepoint(&db, Some(conn.clone()), &name, args).await;
                        conn.push(ConnOutput::ActionResponse { id, result });
                    }
                }
                Command::Subscribe { conn_id, event, subscribe } => {
                    let conn = lock(&self.shared.conns).get(&conn_id).cloned();
                    if let Some(conn) = conn {
                        let mut subs = lock(&conn.inner.subscriptions);
                        if subscribe {
                            subs.insert(event);
                        } else {
                            subs.remove(&event);
                        }
                    }
                }
                Command::Disconnect { conn_id } => self.disconnect(&db, &conn_id).await,
                Command::Ping { reply } => held.push(Held::new(reply, Ok(()))),
                Command::Sleep { done } => sleeps.extend(done),
                Command::Move { done } => {
                    self.moving.store(true, Ordering::Release);
                    sleeps.push(done);
                }
                Command::Resume { conn_id, outbound, reply } => {
                    let result = self.resume(&db, &conn_id, outbound).await;
                    held.push(Held::new(reply, result));
                }
                Command::ExpireDetached { conn_ids } => self.expire_detached(&db, &conn_ids).await,
                Command::Destroy { reply } => destroys.push(reply),
                Command::Inspect { auth, request, reply } => {
                    // What the inspector reads includes the spans kept in memory so far.
                    if let Err(failure) = self.write_unsaved_spans(&db).await {
                        return self.abort_turn(&db, held, "save spans", failure).await;
                    }
                    let result = self.atomically(&db, self.inspect(&db, &auth, request)).await;
                    held.push(Held::new(reply, result));
                }
                Command::Export { auth, reply } => exports.push((auth, reply)),
                Command::InspectorToken { reply } => {
                    // Issued on first use, in this turn's transaction: the reply waits for its commit.
                    let token = db.inspector_token().await.map_err(|e| Failure::storage(&e).error);
                    held.push(Held::new(reply, token))
                }
                Command::RawRequest { request, params, reply } => {
                    let result = self.raw_request(&db, *request, params).await;
                    held.push(Held::new(reply, result));
                }
                Command::SocketOpen { request, params, resumed, outbound, reply } => {
                    let result = self.open_socket(&db, *request, params, resumed, outbound).await;
                    held.push(Held::new(reply, result));
                }
                Command::SocketInput { socket_id, message } => self.socket_input(&db, &socket_id, message).await,
                Command::KvGet { key, reply } => {
                    let result = crate::storage::kv::get_entry(db.connection(), &key).await;
                    held.push(Held::new(reply, result.map_err(|e| e.into_client(&self.shared.actor_id))));
                }
                Command::Alarm => {
                    if let Err(e) = self.fire_due(&db).await {
                        return self.abort_turn(&db, held, "fire schedules", Failure::from_client(&e)).await;
                    }
                }
                Command::QueueSend { name, body, wait, reply } => {
                    held.extend(self.handle_queue_send(&db, name, body, wait, reply).await)
                }
                Command::QueueReceive { names, limit, wait, reply } => {
                    held.extend(self.handle_queue_receive(&db, names, limit, wait, reply).await)
                }
                Command::QueueComplete { id, response, reply } => {
                    held.extend(self.handle_queue_complete(&db, id, response, reply).await)
                }
                Command::Step { label, work, reply } => {
                    held.push(Held::new(reply, self.run_step(&db, &label, work).await))
                }
                Command::QueueProcess { names, handler, reply } => {
                    held.extend(self.handle_queue_process(&db, names, handler, reply).await)
                }
            }
            if db.connection().is_autocommit() {
                // SQLite rolled the whole transaction back (e.g. disk full): nothing of this turn is durable. A
                // unit that failed with `storage.full` says why.
                let cause = "transaction rolled back by SQLite";
                let failure = match held.iter().any(|h| h.full) {
                    true => Failure { error: ClientError::storage_full(), cause: cause.into() },
                    false => Failure::internal(cause),
                };
                return self.abort_turn(&db, held, "action", failure).await;
            }
        }
        match self.deliver_to_waiting(&db).await {
            Ok(delivered) => held.extend(delivered),
            Err(e) => return self.abort_turn(&db, held, "deliver queue messages", Failure::from_client(&e)).await,
        }
        let spans = match self.persist_turn(&db, SpanSaving::WhenChanged).await {
            Ok(spans) => spans,
            Err(e) => return self.abort_turn(&db, held, "save state", e).await,
        };
        let alarm = match self.arm_before_commit(&db).await {
            Ok(alarm) => alarm,
            Err(e) => return self.abort_turn(&db, held, "arm alarm", Failure::from_client(&e)).await,
        };
        let commit_started = Instant::now();
        let committed = db.commit().await;
        self.core.metrics.record_commit(commit_started.elapsed());
        if let Err(e) = committed {
            return self.abort_turn(&db, held, "commit", Failure::storage(&e)).await;
        }
        self.export_spans(spans);
        self.arm_after_commit(alarm).await;
        if let Some(replicator) = self.core.replicator.get() {
            // The one hook between commit and reply: in sync mode the replies wait for a replica.
            if let Err(e) = replicator.committed(&self.shared.actor_id, &db).await {
                held.into_iter().for_each(|h| h.fail(e.clone()));
                self.flush_connections();
                return TurnEnd::Continue;
            }
        }
        let destroying = !destroys.is_empty() || self.shared.destroy_requested.swap(false, Ordering::AcqRel);
        if destroying {
            // Free the key before anyone hears back, so a follow-up create of the same key gets a new actor.
            if let Err(e) = self.core.mark_destroyed(&self.shared.actor_id).await {
                tracing::error!(actor_id = %self.shared.actor_id, error = %e, "cannot record the destroy");
            }
        }
        held.into_iter().for_each(Held::release);
        self.flush_connections();
        for (auth, reply) in exports {
            let _ = reply.send(self.export(&db, &auth).await);
        }
        if destroying {
            return TurnEnd::Destroy(destroys);
        }
        if !sleeps.is_empty() || self.shared.sleep_requested.swap(false, Ordering::AcqRel) {
            return TurnEnd::Sleep(sleeps);
        }
        TurnEnd::Continue
    }

    /// Rolls the turn back, reports why, and fails its held replies with the failure's error.
    async fn abort_turn(&self, db: &ActorDb, held: Vec<Held>, stage: &str, failure: Failure) -> TurnEnd {
        let err = failure.report(&self.core, &self.shared.actor_id, "turn", stage);
        let _ = db.rollback().await;
        held.into_iter().for_each(|h| h.fail(err.clone()));
        TurnEnd::Crashed(err)
    }

    /// Writes what the turn produced besides its SQL: the state (when it changed, after telling the state-change
    /// hook) and the turn's spans. Runs inside the turn's transaction, just before the commit; returns the spans,
    /// for [`Instance::export_spans`] once the commit succeeded.
    ///
    /// With [`SpanSaving::WhenChanged`], a turn that changed nothing else keeps its spans in memory (up to
    /// [`UNSAVED_SPANS`]) instead of writing them, so it commits nothing: its commit writes no WAL frame and
    /// replicates nothing. The next turn that writes, the inspector's next read and the final turn before sleep
    /// write them. Spans are diagnostics: a crash loses those still in memory, never anything an action did.
    pub async fn persist_turn(&self, db: &ActorDb, saving: SpanSaving) -> Result<Vec<Span>, Failure> {
        let spans = self.shared.recorder.take();
        let state_changed = self.shared.state_dirty.swap(false, Ordering::AcqRel);
        if saving == SpanSaving::WhenChanged && !state_changed && !db.has_written() {
            let mut unsaved = lock(&self.unsaved_spans);
            if unsaved.len() + spans.len() <= UNSAVED_SPANS {
                unsaved.extend(spans.iter().cloned());
                return Ok(spans);
            }
        }
        self.write_unsaved_spans(db).await?;
        db.write_spans(&spans).await.map_err(|e| Failure::storage(&e))?;
        if !state_changed {
            return Ok(spans);
        }
        let bytes = {
            let state = lock(&self.shared.state);
            if let Some(hook) = &self.def.on_state_change {
                hook(&state);
            }
            let mut bytes = Vec::new();
            ciborium::into_writer(&*state, &mut bytes)
                .map_err(|e| Failure::internal(format!("state cannot be encoded: {e}")))?;
            bytes
        };
        db.save_state(&bytes).await.map_err(|e| Failure::storage(&e))?;
        Ok(spans)
    }

    /// Writes the spans that turns which changed nothing kept in memory, inside the current transaction.
    async fn write_unsaved_spans(&self, db: &ActorDb) -> Result<(), Failure> {
        let unsaved = std::mem::take(&mut *lock(&self.unsaved_spans));
        db.write_spans(&unsaved).await.map_err(|e| Failure::storage(&e))
    }

    /// Hands the spans of a committed turn to the node's exporter, if it has one; never waits.
    pub(crate) fn export_spans(&self, spans: Vec<Span>) {
        if let Some(exporter) = &self.core.span_export
            && !spans.is_empty()
        {
            let source = SpanSource {
                actor_id: self.shared.actor_id.clone(),
                actor_name: self.shared.name.to_string(),
                actor_key: serialize_key(&self.shared.key),
            };
            exporter.export(&Arc::new(source), spans);
        }
    }

    async fn stateless_action(
        &self,
        db: &ActorDb,
        name: &str,
        args: Value,
        params: Option<Value>,
    ) -> Result<Value, ClientError> {
        if !self.def.actions.contains_key(name) {
            return Err(ClientError::action_not_found(name));
        }
        self.atomically(db, async {
            let conn = self.admit(params, None).await?;
            self.run_action(Some(conn), name, args).await
        })
        .await
    }

    async fn action_in_savepoint(
        &self,
        db: &ActorDb,
        conn: Option<Conn>,
        name: &str,
        args: Value,
    ) -> Result<Value, ClientError> {
        if !self.def.actions.contains_key(name) {
            return Err(ClientError::action_not_found(name));
        }
        self.atomically(db, self.run_action(conn, name, args)).await
    }

    /// Runs `work` as one atomic unit of the turn: if it fails, its SQL changes (a savepoint), its state changes
    /// (the state as it was before its first mutable access) and the events it produced are all undone.
    pub(crate) async fn atomically<T>(
        &self,
        db: &ActorDb,
        work: impl std::future::Future<Output = Result<T, ClientError>>,
    ) -> Result<T, ClientError> {
        if let Err(e) = db.savepoint().await {
            tracing::error!(actor_id = %self.shared.actor_id, error = %e, "savepoint failed");
            return Err(storage::client_error(&e));
        }
        let unit = self.shared.begin_unit();
        let result = match work.await {
            Ok(value) => db.sandbox().check_reserved_names(db.connection()).await.map(|()| value),
            Err(e) => Err(e),
        };
        if result.is_err() {
            self.undo_unit(unit);
        }
        self.end_savepoint(db, result.is_ok()).await;
        result
    }

    /// Restores the state the failed unit changed and drops the messages it produced.
    fn undo_unit(&self, unit: u64) {
        if let Some(before) = lock(&self.shared.undo).take() {
            match ciborium::from_reader::<S, _>(before.as_slice()) {
                Ok(state) => *lock(&self.shared.state) = state,
                Err(e) => tracing::error!(actor_id = %self.shared.actor_id, error = %e, "cannot restore the state"),
            }
        }
        for conn in lock(&self.shared.conns).values() {
            conn.drop_pending_of(unit);
        }
        self.raw.drop_pending_of(unit);
    }

    async fn end_savepoint(&self, db: &ActorDb, keep: bool) {
        if db.connection().is_autocommit() {
            return; // the whole transaction is gone; the turn notices and aborts
        }
        let ended = if keep { db.release_savepoint().await } else { db.rollback_savepoint().await };
        if let Err(e) = ended {
            tracing::error!(actor_id = %self.shared.actor_id, error = %e, "ending savepoint failed");
        }
    }

    /// Runs `work` inside an internal span named `name` (SQL statements it runs become its children).
    pub(crate) async fn in_span<T>(
        &self,
        name: &str,
        attributes: Vec<(String, String)>,
        work: impl std::future::Future<Output = Result<T, ClientError>>,
    ) -> Result<T, ClientError> {
        let span = self.shared.recorder.start(name, SpanKind::Internal, attributes, true);
        let result = work.await;
        self.shared.recorder.finish(span, result.as_ref().err().map(ToString::to_string));
        result
    }

    /// Runs an action inside a span, and counts it in the metrics.
    pub(crate) async fn run_action(&self, conn: Option<Conn>, name: &str, args: Value) -> Result<Value, ClientError> {
        let mut attributes = vec![("action.name".to_string(), name.to_string())];
        attributes.extend(conn.as_ref().map(|c| ("connection.id".to_string(), c.id().to_string())));
        let span = self.shared.recorder.start(&format!("action {name}"), SpanKind::Server, attributes, true);
        let started = Instant::now();
        let result = self.call_handler(conn, name, args).await;
        let code = result.as_ref().err().map(ClientError::qualified_code);
        self.core.metrics.record_action(
            &self.shared.name,
            name,
            started.elapsed(),
            code.as_deref().map_or(Ok(()), Err),
        );
        self.shared.recorder.finish(span, result.as_ref().err().map(ToString::to_string));
        result
    }

    /// Runs an action's handler with its timeout; a panic in actor code becomes an internal error.
    async fn call_handler(&self, conn: Option<Conn>, name: &str, args: Value) -> Result<Value, ClientError> {
        let handler = self.def.actions.get(name).ok_or_else(|| ClientError::action_not_found(name))?.clone();
        self.bounded(name, handler(self.ctx().with_conn(conn), args)).await
    }

    /// Runs actor code named `name` (an action, a raw handler) within the action timeout; a panic becomes an
    /// internal error.
    pub(crate) async fn bounded<T>(
        &self,
        name: &str,
        work: impl std::future::Future<Output = ActorResult<T>>,
    ) -> Result<T, ClientError> {
        let timeout = self.def.options.action_timeout;
        let work = crate::sdk::actors::with_budget(timeout, work);
        match tokio::time::timeout(timeout, AssertUnwindSafe(work).catch_unwind()).await {
            Err(_) => Err(ClientError::action_timed_out(name, timeout.as_millis() as u64)),
            Ok(Err(_panic)) => {
                tracing::error!(actor_id = %self.shared.actor_id, action = name, "action panicked");
                Err(ClientError::internal())
            }
            Ok(Ok(result)) => result.map_err(|e| e.into_client(&self.shared.actor_id, name)),
        }
    }

    /// Runs a hook within `budget`; a panic becomes an internal error.
    pub async fn run_hook<T>(
        &self,
        hook: &str,
        budget: Duration,
        fut: BoxFuture<ActorResult<T>>,
    ) -> Result<T, ClientError> {
        let fut = crate::sdk::actors::with_budget(budget, fut);
        match tokio::time::timeout(budget, AssertUnwindSafe(fut).catch_unwind()).await {
            Err(_) => Err(ClientError::new(
                "actor",
                "hook_timed_out",
                408,
                format!("{hook} did not finish within {} ms", budget.as_millis()),
            )),
            Ok(Err(_)) => {
                tracing::error!(actor_id = %self.shared.actor_id, hook, "hook panicked");
                Err(ClientError::internal())
            }
            Ok(Ok(result)) => result.map_err(|e| e.into_client(&self.shared.actor_id, hook)),
        }
    }
}

/// Waits for `timer` to fire; forever if there is none.
fn expiry(timer: &mut Option<Pin<Box<tokio::time::Sleep>>>) -> impl Future<Output = ()> + '_ {
    std::future::poll_fn(move |cx| match timer {
        Some(timer) => timer.as_mut().poll(cx),
        None => Poll::Pending,
    })
}

/// Runs an instance from start to stop. `start` carries what the host knows about the actor.
///
/// Every awake actor is one such task, so what it holds while it waits for a command is what an idle actor costs.
/// Starting, turns and stopping are boxed (their futures are large, and inline they would make every task as
/// large as the largest of them), and this is a plain function returning an `async` block: it captures its
/// arguments once, where an `async fn` keeps both the arguments and the locals they are moved into.
pub(crate) fn run<S, V>(
    def: Arc<Actor<S, V>>,
    core: Arc<HostCore>,
    start: StartInfo,
    mut rx: mailbox::Receiver<Command>,
    mailbox: mailbox::WeakSender<Command>,
) -> impl Future<Output = ()> + Send + 'static
where
    S: Serialize + DeserializeOwned + Send + 'static,
    V: Default + Send + 'static,
{
    // A failed start needs the host and the actor's id to clean up; they travel in the boxed start's result, so
    // the task keeps only what a running instance needs.
    let starting = Box::pin(async move {
        let actor_id = start.actor_id.clone();
        lifecycle::start(def, core.clone(), start).await.map_err(|err| (err, core, actor_id))
    });
    async move {
        let mut instance = match starting.await {
            Ok(instance) => instance,
            Err((err, core, actor_id)) => {
                core.begin_stop(&actor_id);
                for command in rx.close() {
                    command.fail(err.clone());
                }
                core.pool.close(&actor_id);
                core.finish_stop(&actor_id, false);
                return;
            }
        };
        instance.start_run_loop(mailbox.clone());
        // The sleep timer, restarted after every turn. Boxed and kept: an actor that never sleeps has none, and
        // the others keep it on the heap rather than in every idle actor's task.
        let mut sleep_timer =
            (!instance.def.options.no_sleep).then(|| Box::pin(tokio::time::sleep(instance.def.options.sleep_timeout)));
        let end = loop {
            if let Some(timer) = sleep_timer.as_mut() {
                timer.as_mut().reset(tokio::time::Instant::now() + instance.def.options.sleep_timeout);
            }
            // Idleness is checked when the timer fires, so an actor that became idle in the meantime (its run
            // loop returned, its last connection closed) sleeps too.
            let batch = tokio::select! {
                batch = rx.recv_batch(MAX_BATCH) => batch,
                () = expiry(&mut sleep_timer) => {
                    if instance.is_idle() {
                        break TurnEnd::Sleep(Vec::new());
                    }
                    continue;
                }
            };
            if batch.is_empty() {
                break TurnEnd::Sleep(Vec::new());
            }
            match Box::pin(instance.turn(batch)).await {
                TurnEnd::Continue => {}
                end => break end,
            }
            if instance.restart_run_loop.swap(false, Ordering::AcqRel) {
                if let Some(run_loop) = instance.run_loop.take() {
                    run_loop.stop();
                }
                instance.start_run_loop(mailbox.clone());
            }
        };
        Box::pin(lifecycle::stop(instance, rx, end)).await;
    }
}
