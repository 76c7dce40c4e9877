//! Starting and stopping an actor instance: the create/wake hook sequence, sleep, destroy and crash.
//!
//! Start (one transaction): migrate → (first start: create-state → create hook) → create-vars → wake hook →
//! save state → commit; an actor with a run loop is first recorded as having unfinished work (see
//! [`super::resume`]). Sleep: finish what is queued → sleep hook → save → forget the unfinished work if none is
//! left → close connections → release the file. Destroy: mark destroyed (new requests get `actor.not_found`) →
//! destroy hook → close connections → delete files → forget the unfinished work.

use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Instant;

use serde::Serialize;
use serde::de::DeserializeOwned;
use tern_proto::key::serialize_key;
use tern_proto::{ClientError, Value};

use super::command::Command;
use super::host::HostCore;
use super::instance::{Failure, Instance, SpanSaving, TurnEnd};
use super::mailbox;
use crate::sdk::actors::ActorCalls;
use crate::sdk::conn::Conn;
use crate::sdk::context::Shared;
use crate::sdk::definition::{Actor, HookFn};
use crate::sdk::sql::Sql;
use crate::storage::ActorDb;
use crate::sync::lock;
use crate::trace::Span;

/// What the host knows about an actor when it wakes it.
#[derive(Debug, Clone)]
pub(crate) struct StartInfo {
    pub actor_id: String,
    pub name: String,
    pub key: Vec<String>,
    /// CBOR of the create input, present until the create hooks have run.
    pub input: Option<Vec<u8>>,
    /// The actor just moved here from another node: the connections it saved there wait for their clients.
    pub arrived: bool,
}

fn internal(actor_id: &str, stage: &str, err: impl std::fmt::Display) -> ClientError {
    tracing::error!(actor_id, stage, error = %err, "actor start failed");
    ClientError::internal()
}

/// A start that failed at `stage`, reported (see [`Failure::report`]): the error its requests get.
fn start_failed(core: &HostCore, actor_id: &str, stage: &str, failure: Failure) -> ClientError {
    failure.report(core, actor_id, "actor start", stage)
}

/// Starts an actor: runs the start hooks in one transaction and returns the running instance.
pub(crate) async fn start<S, V>(
    def: Arc<Actor<S, V>>,
    core: Arc<HostCore>,
    info: StartInfo,
) -> Result<Instance<S, V>, ClientError>
where
    S: Serialize + DeserializeOwned + Send + 'static,
    V: Default + Send + 'static,
{
    let id = info.actor_id.as_str();
    if def.run.is_some() {
        // Before the run loop starts and before any turn acknowledges a message it is to process.
        core.pending_work.record(&core, id).await?;
    }
    core.data_dir.ensure_actor_dir(id).map_err(|e| start_failed(&core, id, "create directory", Failure::io(&e)))?;
    let timer = Instant::now();
    let db = Instance::<S, V>::open_db(&core, id).await.map_err(|f| start_failed(&core, id, "open database", f))?;
    db.begin().await.map_err(|e| start_failed(&core, id, "begin", Failure::storage(&e)))?;
    let started = start_in_transaction(def, core.clone(), &info, &db).await;
    match started {
        Ok((instance, is_new, spans)) => {
            db.commit().await.map_err(|e| start_failed(&core, id, "commit", Failure::storage(&e)))?;
            instance.export_spans(spans);
            if !is_new {
                core.metrics.record_wake(&info.name, timer.elapsed());
            }
            if info.input.is_some() {
                core.input_consumed(id).await;
            }
            expire_unclaimed_connections(&core, &instance);
            Ok(instance)
        }
        Err(err) => {
            let _ = db.rollback().await;
            core.pool.close(id);
            Err(err)
        }
    }
}

async fn start_in_transaction<S, V>(
    def: Arc<Actor<S, V>>,
    core: Arc<HostCore>,
    info: &StartInfo,
    db: &ActorDb,
) -> Result<(Instance<S, V>, bool, Vec<Span>), ClientError>
where
    S: Serialize + DeserializeOwned + Send + 'static,
    V: Default + Send + 'static,
{
    let id = info.actor_id.as_str();
    let loaded = db
        .open_actor(id, &info.name, &serialize_key(&info.key))
        .await
        .map_err(|e| start_failed(&core, id, "open", Failure::storage(&e)))?;
    let is_new = !loaded.initialized;
    let recorder = Arc::new(crate::trace::Recorder::default());
    if let Some(schema) = &def.on_schema {
        db.savepoint().await.map_err(|e| start_failed(&core, id, "savepoint", Failure::storage(&e)))?;
        let budget = std::time::Duration::from_secs(30);
        let setup = async {
            let _lent = db.sandbox().lend();
            schema(Sql::new(db, recorder.clone(), def.options.statement_timeout), is_new).await?;
            Ok::<(), crate::sdk::ActorError>(db.sandbox().check_reserved_names(db.connection()).await?)
        };
        let finished = tokio::time::timeout(budget, setup).await;
        match finished {
            Ok(Ok(())) => {
                db.release_savepoint().await.map_err(|e| start_failed(&core, id, "release", Failure::storage(&e)))?
            }
            Ok(Err(e)) => {
                let _ = db.rollback_savepoint().await;
                return Err(e.into_client(id, "onSchema"));
            }
            Err(_) => {
                return Err(ClientError::new(
                    "actor",
                    "hook_timed_out",
                    408,
                    "onSchema did not finish within 30000 ms",
                ));
            }
        }
    }
    let input = match &info.input {
        Some(bytes) => {
            ciborium::from_reader::<Value, _>(bytes.as_slice()).map_err(|e| internal(id, "decode input", e))?
        }
        None => Value::Null,
    };
    let state: S = if is_new {
        (def.create_state)(input.clone()).map_err(|e| e.into_client(id, "createState"))?
    } else {
        let bytes = loaded.state.ok_or_else(|| internal(id, "load state", "initialized actor has no state row"))?;
        ciborium::from_reader(bytes.as_slice()).map_err(|e| internal(id, "decode state", e))?
    };
    let unit = Arc::new(AtomicU64::new(0));
    let shared = Arc::new(Shared {
        actor_id: info.actor_id.clone(),
        name: def.name.clone(),
        key: info.key.clone(),
        region: core.region.clone(),
        state: Mutex::new(state),
        state_dirty: AtomicBool::new(is_new),
        vars: Mutex::new(V::default()),
        conns: Mutex::new(arrived_connections(&core, info, loaded.connections, &unit)?),
        sql: Mutex::new(None),
        sleep_requested: AtomicBool::new(false),
        destroy_requested: AtomicBool::new(false),
        unit: unit.clone(),
        undo: Mutex::new(None),
        recorder,
        action_names: def.action_names.clone(),
        schedules_changed: Arc::new(AtomicBool::new(true)),
        node: Arc::downgrade(&core) as std::sync::Weak<dyn ActorCalls>,
    });
    let instance = Instance {
        def: def.clone(),
        shared,
        core,
        raw: Default::default(),
        queue: Default::default(),
        run_loop: None,
        restart_run_loop: Default::default(),
        moving: Default::default(),
        unsaved_spans: Default::default(),
    };
    let _loan = instance.expose_db(db);
    let grace = def.options.sleep_grace_period;
    if is_new {
        if let Some(hook) = &def.on_create {
            instance.run_hook("onCreate", grace, hook(instance.ctx(), input)).await?;
        }
        db.mark_initialized()
            .await
            .map_err(|e| start_failed(&instance.core, id, "mark initialized", Failure::storage(&e)))?;
    }
    if let Some(create_vars) = &def.create_vars {
        let vars = instance.run_hook("createVars", grace, create_vars(instance.ctx())).await?;
        *lock(&instance.shared.vars) = vars;
    }
    if let Some(hook) = &def.on_wake {
        instance.run_hook("onWake", grace, hook(instance.ctx())).await?;
    }
    let spans = instance
        .persist_turn(db, SpanSaving::WhenChanged)
        .await
        .map_err(|f| start_failed(&instance.core, id, "save state", f))?;
    Ok((instance, is_new, spans))
}

/// How long connections that arrived with a moved actor wait for their clients to re-bind before they are
/// disconnected.
const DETACHED_GRACE: std::time::Duration = std::time::Duration::from_secs(30);

/// Disconnects, after [`DETACHED_GRACE`], the connections the actor brought whose clients have not re-bound.
fn expire_unclaimed_connections<S, V>(core: &Arc<HostCore>, instance: &Instance<S, V>) {
    let waiting: Vec<String> =
        lock(&instance.shared.conns).values().filter(|c| c.is_detached()).map(|c| c.id().to_string()).collect();
    if waiting.is_empty() {
        return;
    }
    let (core, actor_id) = (Arc::downgrade(core), instance.shared.actor_id.clone());
    tokio::spawn(async move {
        tokio::time::sleep(DETACHED_GRACE).await;
        if let Some(core) = core.upgrade() {
            core.dispatch_if_awake(&actor_id, Command::ExpireDetached { conn_ids: waiting }).await;
        }
    });
}

/// Records an open connection in the actor's `_tern_conns` table: its parameters and state (CBOR) and its
/// subscriptions (a JSON array), as they are now.
pub(crate) async fn record_conn(db: &ActorDb, conn: &Conn) -> Result<(), ClientError> {
    let encode = |v: &Value| {
        let mut bytes = Vec::new();
        ciborium::into_writer(v, &mut bytes).map(|_| bytes)
    };
    let params = encode(conn.params_value()).map_err(|e| internal(conn.id(), "encode params", e))?;
    let state = encode(&lock(&conn.inner.state)).map_err(|e| internal(conn.id(), "encode conn state", e))?;
    let mut subscriptions: Vec<String> = lock(&conn.inner.subscriptions).iter().cloned().collect();
    subscriptions.sort_unstable();
    let subscriptions =
        serde_json::to_string(&subscriptions).map_err(|e| internal(conn.id(), "encode subscriptions", e))?;
    db.put_conn(conn.id(), Some(&params), Some(&state), &subscriptions, crate::clock::now_ms())
        .await
        .map_err(|e| internal(conn.id(), "record connection", e))
}

/// The connections an actor that just moved here saved on its previous node, waiting for their clients to
/// re-bind (none for any other start: connections do not survive a restart).
fn arrived_connections(
    core: &HostCore,
    info: &StartInfo,
    stored: Vec<crate::storage::actor_db::StoredConn>,
    unit: &Arc<AtomicU64>,
) -> Result<std::collections::BTreeMap<String, Conn>, ClientError> {
    if !info.arrived {
        return Ok(Default::default());
    }
    let id = info.actor_id.as_str();
    let decode = |bytes: Option<Vec<u8>>| -> Result<Value, ClientError> {
        match bytes {
            Some(bytes) => ciborium::from_reader(bytes.as_slice()).map_err(|e| internal(id, "decode connection", e)),
            None => Ok(Value::Null),
        }
    };
    let mut conns = std::collections::BTreeMap::new();
    for row in stored {
        let subscriptions: std::collections::HashSet<String> = match row.subscriptions.as_str() {
            "" => Default::default(),
            text => serde_json::from_str(text).map_err(|e| internal(id, "decode subscriptions", e))?,
        };
        let conn =
            Conn::arrived(row.conn_id.clone(), decode(row.params)?, decode(row.state)?, subscriptions, unit.clone());
        conns.insert(row.conn_id, conn);
    }
    core.connections_changed(&info.name, conns.len() as i64);
    Ok(conns)
}

/// Runs a final hook (sleep or destroy) in its own transaction and saves the state.
async fn final_turn<S, V>(instance: &Instance<S, V>, name: &str, hook: Option<&HookFn<S, V>>) -> Result<(), Failure>
where
    S: Serialize + DeserializeOwned + Send + 'static,
    V: Default + Send + 'static,
{
    let db = Instance::<S, V>::open_db(&instance.core, &instance.shared.actor_id).await?;
    let _loan = instance.expose_db(&db);
    db.begin().await.map_err(|e| Failure::storage(&e))?;
    if let Some(hook) = hook {
        let grace = instance.def.options.sleep_grace_period;
        if let Err(e) = instance.run_hook(name, grace, hook(instance.ctx())).await {
            tracing::warn!(actor_id = %instance.shared.actor_id, hook = name, error = %e, "hook failed");
        }
    }
    let spans = instance.persist_turn(&db, SpanSaving::Always).await?;
    if instance.moving.load(Ordering::Acquire) {
        // The connections go with the actor: their state and subscriptions as they are now.
        instance.save_connections(&db).await.map_err(|e| Failure::from_client(&e))?;
    }
    db.commit().await.map_err(|e| Failure::storage(&e))?;
    instance.export_spans(spans);
    if let Some(replicator) = instance.core.replicator.get() {
        // Like any commit, the last one reaches the replicas (and, in sync mode, one of them holds it).
        replicator.committed(&instance.shared.actor_id, &db).await.map_err(|e| Failure::from_client(&e))?;
    }
    Ok(())
}

/// Stops a running instance the way `end` says.
pub(crate) async fn stop<S, V>(mut instance: Instance<S, V>, mut rx: mailbox::Receiver<Command>, end: TurnEnd)
where
    S: Serialize + DeserializeOwned + Send + 'static,
    V: Default + Send + 'static,
{
    let core = instance.core.clone();
    let id = instance.shared.actor_id.clone();
    // Asked before the run loop is stopped, which makes it look finished.
    let unfinished = instance.has_unfinished_work();
    if let Some(run_loop) = instance.run_loop.take() {
        run_loop.stop();
    }
    let mut end = end;
    if let TurnEnd::Sleep(mut dones) = end {
        core.begin_stop(&id);
        let queued: Vec<Command> = rx.close().into_iter().collect();
        end = if queued.is_empty() {
            TurnEnd::Sleep(dones)
        } else {
            match instance.turn(queued).await {
                TurnEnd::Continue => TurnEnd::Sleep(dones),
                TurnEnd::Sleep(more) => {
                    dones.extend(more);
                    TurnEnd::Sleep(dones)
                }
                other => {
                    dones.into_iter().for_each(|d| {
                        let _ = d.send(());
                    });
                    other
                }
            }
        };
    }
    match end {
        TurnEnd::Sleep(dones) => {
            match final_turn(&instance, "onSleep", instance.def.on_sleep.as_ref()).await {
                Ok(()) if !unfinished => instance.forget_finished_work().await,
                Ok(()) => {}
                Err(failure) => {
                    failure.report(&core, &id, "sleep", "save the actor before sleeping");
                }
            }
            instance.flush_connections();
            if instance.moving.load(Ordering::Acquire) {
                instance.hand_connections_over();
                // Its files are about to move to another node.
                core.pool.close(&id);
            } else {
                instance.close_all_connections(ClientError::stopping());
                // The database handle stays in the pool (bounded, least recently used first out), so that a wake
                // soon after reopens nothing.
            }
            core.finish_stop(&id, false);
            core.metrics.record_sleep(&instance.shared.name);
            dones.into_iter().for_each(|d| {
                let _ = d.send(());
            });
            tracing::debug!(actor_id = %id, "actor asleep");
        }
        TurnEnd::Destroy(replies) => {
            let destroyed = core.mark_destroyed(&id).await;
            core.begin_stop(&id);
            for command in rx.close() {
                command.fail(ClientError::actor_not_found(&id));
            }
            if let Err(failure) = final_turn(&instance, "onDestroy", instance.def.on_destroy.as_ref()).await {
                failure.report(&core, &id, "destroy", "run the destroy hook");
            }
            instance.flush_connections();
            instance.close_all_connections(ClientError::actor_not_found(&id));
            core.pool.close(&id);
            let removed = core.data_dir.remove_actor_files(&id).map_err(|e| internal(&id, "remove files", e));
            if let Err(e) = core.alarms.set(&core, &id, None).await {
                tracing::warn!(actor_id = %id, error = %e, "cannot clear the destroyed actor's alarm");
            }
            core.pending_work.forget(&core, &id).await;
            core.finish_stop(&id, true);
            core.metrics.record_destroyed(&instance.shared.name);
            let result = destroyed.and(removed);
            replies.into_iter().for_each(|r| drop(r.send(result.clone())));
            tracing::info!(actor_id = %id, "actor destroyed");
        }
        crashed @ (TurnEnd::Crashed(_) | TurnEnd::Continue) => {
            let err = match crashed {
                TurnEnd::Crashed(err) => err,
                _ => ClientError::internal(),
            };
            core.begin_stop(&id);
            for command in rx.close() {
                command.fail(err.clone());
            }
            instance.close_all_connections(ClientError::stopping());
            core.pool.close(&id);
            core.finish_stop(&id, false);
            tracing::warn!(actor_id = %id, "actor stopped after a failed turn; it restarts from its last commit");
        }
    }
}
