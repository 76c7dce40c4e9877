//! The context every action and hook receives: the actor's state, vars, connections, events and SQL.

use std::collections::BTreeMap;
use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use serde::Serialize;
use tern_gateway::backend::ConnOutput;
use tern_proto::Value;

use super::conn::Conn;
use super::error::{ActorError, ActorResult};
use super::schedule::{Cron, Schedule, ScheduleAccess};
use super::sql::Sql;
use crate::sync::lock;

/// A handle on the running actor, given to actions and hooks. Cheap to clone.
///
/// Actions run one at a time (turn-based), so state access never contends. Do not hold a [`StateGuard`] across
/// an `.await`: the compiler refuses it, which keeps turns short and futures `Send`.
pub struct Ctx<S, V = ()> {
    pub(crate) shared: Arc<Shared<S, V>>,
    pub(crate) conn: Option<Conn>,
}

impl<S, V> Clone for Ctx<S, V> {
    fn clone(&self) -> Self {
        Ctx { shared: self.shared.clone(), conn: self.conn.clone() }
    }
}

/// What the runtime and every context of one actor share.
pub(crate) struct Shared<S, V> {
    pub actor_id: String,
    pub name: Arc<str>,
    pub key: Vec<String>,
    pub region: Arc<str>,
    pub state: Mutex<S>,
    pub state_dirty: AtomicBool,
    pub vars: Mutex<V>,
    pub conns: Mutex<BTreeMap<String, Conn>>,
    pub sql: Mutex<Option<Sql>>,
    pub sleep_requested: AtomicBool,
    pub destroy_requested: AtomicBool,
    /// The current atomic unit (an action, a connect), numbered so its messages can be dropped if it fails.
    pub unit: Arc<AtomicU64>,
    /// CBOR of the state before the current unit first changed it; restored if the unit fails.
    pub undo: Mutex<Option<Vec<u8>>>,
    /// The spans of the current turn.
    pub recorder: Arc<crate::trace::Recorder>,
    /// The definition's action names, sorted (the definition's list, shared).
    pub action_names: Arc<Vec<String>>,
    /// Set when the turn changed schedules, so the runtime re-arms the actor's alarm.
    pub schedules_changed: Arc<AtomicBool>,
    /// The node, for actor-to-actor calls; weak, so actor code never keeps a stopped node alive.
    pub node: std::sync::Weak<dyn super::actors::ActorCalls>,
}

impl<S, V> Shared<S, V> {
    /// Starts a new atomic unit and returns its number.
    pub fn begin_unit(&self) -> u64 {
        *lock(&self.undo) = None;
        self.unit.fetch_add(1, Ordering::AcqRel) + 1
    }
}

/// Mutable access to the state; marks it changed, so it is saved when the turn commits.
pub struct StateGuard<'a, S> {
    guard: MutexGuard<'a, S>,
}

impl<S> Deref for StateGuard<'_, S> {
    type Target = S;
    fn deref(&self) -> &S {
        &self.guard
    }
}

impl<S> DerefMut for StateGuard<'_, S> {
    fn deref_mut(&mut self) -> &mut S {
        &mut self.guard
    }
}

impl<S, V> Ctx<S, V> {
    /// The actor's id.
    pub fn actor_id(&self) -> &str {
        &self.shared.actor_id
    }

    /// The actor's definition name (e.g. `"counter"`).
    pub fn name(&self) -> &str {
        &self.shared.name
    }

    /// The actor's key (e.g. `["org-1", "room-9"]`).
    pub fn key(&self) -> &[String] {
        &self.shared.key
    }

    /// The region of the node the actor runs on.
    pub fn region(&self) -> &str {
        &self.shared.region
    }

    /// Reads the state without marking it changed.
    pub fn read<R>(&self, f: impl FnOnce(&S) -> R) -> R {
        f(&lock(&self.shared.state))
    }

    /// The actor's ephemeral vars (never persisted; created again on every wake).
    pub fn vars(&self) -> MutexGuard<'_, V> {
        lock(&self.shared.vars)
    }

    /// The connection that made the current call, if any (stateless HTTP actions have an ephemeral one).
    pub fn conn(&self) -> Option<&Conn> {
        self.conn.as_ref()
    }

    /// All open connections.
    pub fn conns(&self) -> Vec<Conn> {
        lock(&self.shared.conns).values().cloned().collect()
    }

    /// Sends event `name` with one argument to every connection subscribed to it. Like every outgoing message,
    /// it is released only after the current turn's changes are committed.
    pub fn broadcast<T: Serialize>(&self, name: &str, arg: &T) -> ActorResult<()> {
        let arg = Value::serialized(arg).map_err(ActorError::internal)?;
        for conn in lock(&self.shared.conns).values() {
            if conn.is_subscribed(name) {
                conn.push(ConnOutput::Event { name: name.to_string(), args: Value::Array(vec![arg.clone()]) });
            }
        }
        Ok(())
    }

    /// The actor's own SQL database. Each action is atomic: its SQL changes commit with the turn, or roll back
    /// if the action fails.
    pub fn sql(&self) -> Sql {
        lock(&self.shared.sql).clone().expect("the actor's database is open during every turn")
    }

    /// One-shot scheduled events: invoke an action of this actor later (see [`super::schedule`]).
    pub fn schedule(&self) -> Schedule {
        Schedule(self.schedule_access())
    }

    /// Recurring jobs: cron expressions in a time zone, and intervals (see [`super::schedule`]).
    pub fn cron(&self) -> Cron {
        Cron(self.schedule_access())
    }

    /// Wakes the actor at `at_ms` without running an action (workflow sleeps).
    pub(crate) async fn wake_at(&self, id: &str, at_ms: i64) -> ActorResult<()> {
        self.schedule_access().wake_at(id, at_ms).await
    }

    fn schedule_access(&self) -> ScheduleAccess {
        ScheduleAccess {
            sql: self.sql(),
            action_names: self.shared.action_names.clone(),
            changed: self.shared.schedules_changed.clone(),
        }
    }

    /// The actor's key-value store (binary or text keys and values, prefixes, ranges), kept in its own database:
    /// like SQL, its writes are part of the current action's atomic unit.
    pub fn kv(&self) -> super::kv::Kv {
        super::kv::Kv::new(self.sql())
    }

    /// A client to the other actors of this node (RivetKit's `c.client()`): `get`, `get_or_create`,
    /// `get_for_id` and `create` give handles whose `call` / `action` run the callee's actions in process. A call
    /// to this actor itself fails with `actor.self_call`, and every call is bounded by the current unit's
    /// remaining time, so a cycle fails with `actor.action_timed_out` (see [`super::actors`]).
    pub fn actors(&self) -> super::actors::ActorClient {
        super::actors::ActorClient::new(self.shared.node.clone(), &self.shared.actor_id)
    }

    /// Asks the runtime to put the actor to sleep after the current turn.
    pub fn sleep(&self) {
        self.shared.sleep_requested.store(true, Ordering::Release);
    }

    /// Asks the runtime to destroy the actor after the current turn: the destroy hook runs, connections close,
    /// and its data is deleted.
    pub fn destroy(&self) {
        self.shared.destroy_requested.store(true, Ordering::Release);
    }

    pub(crate) fn with_conn(&self, conn: Option<Conn>) -> Ctx<S, V> {
        Ctx { shared: self.shared.clone(), conn }
    }
}

impl<S: Serialize, V> Ctx<S, V> {
    /// Mutable access to the state, saved automatically when the current turn commits. If the current action
    /// fails, the state goes back to what it was before this access.
    pub fn state(&self) -> StateGuard<'_, S> {
        let guard = lock(&self.shared.state);
        let mut undo = lock(&self.shared.undo);
        if undo.is_none() {
            let mut before = Vec::new();
            match ciborium::into_writer(&*guard, &mut before) {
                Ok(()) => *undo = Some(before),
                Err(e) => tracing::error!(actor_id = %self.shared.actor_id, error = %e, "state cannot be encoded"),
            }
        }
        self.shared.state_dirty.store(true, Ordering::Release);
        StateGuard { guard }
    }

    /// Changes the state and returns what `f` returns; the change is saved when the turn commits.
    pub fn update<R>(&self, f: impl FnOnce(&mut S) -> R) -> R {
        f(&mut self.state())
    }
}
