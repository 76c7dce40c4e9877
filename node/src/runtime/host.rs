//! The host: which actors are awake, waking them on demand, and stopping them.
//!
//! Each awake actor has a slot holding its mailbox. A request for an actor that is asleep spawns an instance; a
//! request for an actor that is stopping waits until it has stopped and then wakes it again, so no request is
//! lost to a sleep in progress and no actor ever runs twice at once.

use std::collections::{BTreeMap, HashMap};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tern_gateway::backend::Backend;
use tern_proto::ClientError;
use tokio::sync::{Notify, oneshot};

use super::actor_table::{ActorTable, Entry};
use super::alarms::Alarms;
use super::command::Command;
use super::lifecycle::StartInfo;
use super::mailbox;
use super::registry::Registry;
use super::resume::PendingWork;
use super::service::Host;
use crate::clock::now_ms;
use crate::cluster::Roster;
use crate::metrics::{Metrics, Snapshot};
use crate::sdk::actors::ActorCalls;
use crate::storage::{ActorRecord, DataDir, DbPool, NodeDb};
use crate::sync::lock;
use crate::trace::export::SpanExporter;

/// Capacity of an actor's mailbox; senders wait when it is full (backpressure). An empty mailbox holds no room for
/// commands (see [`mailbox`]): each queued command is one allocation.
const MAILBOX: usize = 256;

/// Where a command for an actor goes: its running instance, or (while it stops) nowhere until it has stopped.
enum Delivery {
    Send(mailbox::Sender<Command>),
    Wait(Pin<Box<tokio::sync::futures::OwnedNotified>>),
    /// The actor sleeps and its record is not cached: read it from `node.db`, then try again.
    Load,
}

enum Slot {
    Running(mailbox::Sender<Command>),
    Stopping(Arc<Notify>),
}

/// How a node stores actor data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// `synchronous=NORMAL`: a committed action survives a process crash (`kill -9`), not a power loss.
    Normal,
    /// `synchronous=FULL`: every commit is fsynced, surviving power loss at a cost in latency.
    Fsync,
}

/// Everything instances share with the host.
pub(crate) struct HostCore {
    pub registry: Registry,
    pub data_dir: DataDir,
    pub pool: DbPool,
    pub node_db: NodeDb,
    /// The node's region, shared by every instance.
    pub region: Arc<str>,
    pub durability: Durability,
    /// The actors recorded here: `node.db` behind a bounded cache.
    pub actor_table: ActorTable,
    /// The size of the actors' files, as `/metrics` reports it.
    storage_size: crate::storage::data_dir::ActorsSize,
    slots: Mutex<HashMap<String, Slot>>,
    /// Actors whose requests wait, undelivered, while they move to another node (see [`HostCore::hold`]). Locked
    /// only while `slots` is.
    holds: Mutex<HashMap<String, Arc<Notify>>>,
    /// Actors a previous run left in the middle of a hand-off, held until the directory says where they live
    /// (see [`crate::handoff`]).
    pub settling: Mutex<HashMap<String, Hold>>,
    /// Actors that just moved here: their next start keeps the connections they brought.
    arrivals: Mutex<std::collections::HashSet<String>>,
    /// Why each actor that moved here came (its last move), for the inspector summary.
    move_notes: Mutex<HashMap<String, String>>,
    /// Serializes key reservations so concurrent creates of one key yield one actor.
    pub create_lock: tokio::sync::Mutex<()>,
    /// Where actor code's calls to other actors go on a cluster node: the cluster's backend, held weakly (the
    /// backend holds the host). Unset on `tern dev`, whose host serves every actor itself.
    pub actor_router: std::sync::OnceLock<std::sync::Weak<dyn Backend>>,
    /// Replication of actor databases to other nodes, on a cluster node (see [`super::replicator`]); unset on
    /// `tern dev`.
    pub replicator: std::sync::OnceLock<Arc<dyn super::replicator::Replicator>>,
    /// The cluster creates this run recorded as pending and has not settled yet: in flight, not interrupted.
    pub creates_in_flight: Mutex<std::collections::HashSet<String>>,
    pub metrics: Metrics,
    pub alarms: Alarms,
    /// The actors recorded in `node.db` with unfinished work (see [`super::resume`]).
    pub pending_work: PendingWork,
    /// Open client connections per actor name.
    connections: Mutex<BTreeMap<String, u64>>,
    /// What `GET /cluster/members` reports; set by [`serve`](crate::server::serve) once the gateway listens.
    pub roster: Mutex<Roster>,
    /// Where the spans of committed turns go besides the actors' databases (`--otlp-endpoint`); `None` keeps them
    /// only there.
    pub span_export: Option<SpanExporter>,
}

/// Actor code's calls to other actors go through the node's backend, bounded by the callee's action timeout.
impl ActorCalls for HostCore {
    fn backend(self: Arc<Self>) -> Result<Arc<dyn Backend>, ClientError> {
        match self.actor_router.get() {
            Some(cluster) => cluster.upgrade().ok_or_else(ClientError::stopping),
            None => Ok(Arc::new(Host { core: self })),
        }
    }

    fn action_timeout(&self, name: &str) -> Option<Duration> {
        self.registry.get(name).map(|factory| factory.action_timeout())
    }
}

/// What a host is built from: the opened data directory, what the node database held, and the node's metrics
/// (which the node database already counts into).
pub(crate) struct Stores {
    pub metrics: Metrics,
    pub data_dir: DataDir,
    pub pool: DbPool,
    pub node_db: NodeDb,
    pub alarms: Alarms,
    pub pending_work: PendingWork,
}

impl HostCore {
    /// A host for `registry`'s actors over `stores`, serving `region`.
    pub fn new(registry: Registry, stores: Stores, region: String, durability: Durability) -> HostCore {
        let Stores { metrics, data_dir, pool, node_db, alarms, pending_work } = stores;
        HostCore {
            alarms,
            pending_work,
            metrics,
            registry,
            data_dir,
            pool,
            node_db,
            region: region.into(),
            durability,
            actor_table: ActorTable::new(super::actor_table::CACHED),
            storage_size: Default::default(),
            slots: Mutex::new(HashMap::new()),
            holds: Mutex::default(),
            settling: Mutex::default(),
            arrivals: Mutex::default(),
            move_notes: Mutex::default(),
            create_lock: tokio::sync::Mutex::new(()),
            actor_router: std::sync::OnceLock::new(),
            replicator: std::sync::OnceLock::new(),
            creates_in_flight: Mutex::default(),
            connections: Mutex::new(BTreeMap::new()),
            roster: Mutex::new(Roster::Alone { gateway_url: String::new(), started_ms: now_ms() }),
            span_export: None,
        }
    }

    /// The `synchronous` pragma for actor databases.
    pub fn synchronous(&self) -> &'static str {
        match self.durability {
            Durability::Normal => "NORMAL",
            Durability::Fsync => "FULL",
        }
    }

    /// A copy of the table's entry of an actor, destroyed or not: `None` for one not recorded here.
    pub async fn entry(&self, actor_id: &str) -> Result<Option<Entry>, ClientError> {
        self.actor_table.get(&self.node_db, actor_id).await
    }

    /// A copy of the table's entry of an actor that exists: `None` for one not recorded here or destroyed.
    pub async fn live(&self, actor_id: &str) -> Result<Option<Entry>, ClientError> {
        Ok(self.entry(actor_id).await?.filter(|entry| entry.record.destroy_ts.is_none()))
    }

    /// Delivers `command` to the actor, waking it if it sleeps. Fails with `actor.not_found` for unknown or
    /// destroyed actors.
    pub async fn dispatch(self: &Arc<Self>, actor_id: &str, mut command: Command) -> Result<(), ClientError> {
        loop {
            let route = {
                let mut slots = lock(&self.slots);
                let held = lock(&self.holds).get(actor_id).cloned();
                match (held, slots.get(actor_id)) {
                    (Some(released), _) => {
                        // Registered before the lock is released, so the release cannot be missed.
                        let mut waiting = Box::pin(released.notified_owned());
                        waiting.as_mut().enable();
                        Delivery::Wait(waiting)
                    }
                    (None, Some(Slot::Running(tx))) => Delivery::Send(tx.clone()),
                    (None, Some(Slot::Stopping(stopped))) => {
                        // Registered before the lock is released, so the stop's notification cannot be missed.
                        let mut waiting = Box::pin(stopped.clone().notified_owned());
                        waiting.as_mut().enable();
                        Delivery::Wait(waiting)
                    }
                    (None, None) => match self.actor_table.cached_record(actor_id) {
                        None => Delivery::Load,
                        Some(None) => return Err(ClientError::actor_not_found(actor_id)),
                        Some(Some(record)) => {
                            let factory = self
                                .registry
                                .get(&record.name)
                                .ok_or_else(|| ClientError::not_registered(&record.name))?
                                .clone();
                            let (tx, rx) = mailbox::mailbox(MAILBOX);
                            slots.insert(actor_id.to_string(), Slot::Running(tx.clone()));
                            self.actor_table.woke(actor_id, now_ms());
                            factory.spawn(self.clone(), self.start_info(record), rx, tx.downgrade());
                            Delivery::Send(tx)
                        }
                    },
                }
            };
            let sender = match route {
                Delivery::Send(sender) => sender,
                Delivery::Wait(waiting) => {
                    waiting.await;
                    continue;
                }
                Delivery::Load => {
                    self.actor_table.get(&self.node_db, actor_id).await?;
                    continue;
                }
            };
            match sender.send(command).await {
                Ok(()) => return Ok(()),
                // The instance is stopping: wait for it and wake a fresh one.
                Err(mailbox::SendError(returned)) => {
                    command = returned;
                    tokio::task::yield_now().await;
                }
            }
        }
    }

    /// Delivers `command` only if the actor is awake (used for messages of already open connections); returns
    /// whether it was delivered.
    pub async fn dispatch_if_awake(&self, actor_id: &str, command: Command) -> bool {
        let sender = match lock(&self.slots).get(actor_id) {
            Some(Slot::Running(tx)) => tx.clone(),
            _ => return false,
        };
        sender.send(command).await.is_ok()
    }

    /// Waits until the actor is not stopping (a sleep or destroy under way has finished).
    pub async fn wait_stopped(&self, actor_id: &str) {
        loop {
            let waiting = match lock(&self.slots).get(actor_id) {
                Some(Slot::Stopping(stopped)) => {
                    let mut waiting = Box::pin(stopped.clone().notified_owned());
                    waiting.as_mut().enable();
                    waiting
                }
                _ => return,
            };
            waiting.await;
        }
    }

    fn start_info(&self, record: ActorRecord) -> StartInfo {
        let arrived = lock(&self.arrivals).remove(&record.actor_id);
        StartInfo { actor_id: record.actor_id, name: record.name, key: record.key, input: record.input, arrived }
    }

    /// Holds every request for the actor (from clients, peers, alarms and resumed work alike) undelivered until
    /// the returned [`Hold`] is released or dropped; the requests then go on as if they had just arrived (to a
    /// new home if the actor left meanwhile). Commands already in the actor's mailbox are not held. `None` when
    /// the actor is already held (another move of it runs).
    pub fn hold(self: &Arc<Self>, actor_id: &str) -> Option<Hold> {
        let _slots = lock(&self.slots);
        let mut holds = lock(&self.holds);
        if holds.contains_key(actor_id) {
            return None;
        }
        holds.insert(actor_id.to_string(), Arc::new(Notify::new()));
        Some(Hold { core: self.clone(), actor_id: actor_id.to_string() })
    }

    /// Records why the actor moved here (shown as `lastMove` in its inspector summary).
    pub fn note_move(&self, actor_id: &str, reason: String) {
        lock(&self.move_notes).insert(actor_id.to_string(), reason);
    }

    /// Why the actor moved here, if it did since this node started.
    pub fn last_move(&self, actor_id: &str) -> Option<String> {
        lock(&self.move_notes).get(actor_id).cloned()
    }

    /// Marks the actor as just moved here: its next start keeps the connections it brought.
    pub fn mark_arrived(&self, actor_id: &str) {
        lock(&self.arrivals).insert(actor_id.to_string());
    }

    /// An instance is stopping: new requests wait for [`HostCore::finish_stop`].
    pub fn begin_stop(&self, actor_id: &str) {
        let mut slots = lock(&self.slots);
        if !matches!(slots.get(actor_id), Some(Slot::Stopping(_))) {
            slots.insert(actor_id.to_string(), Slot::Stopping(Arc::new(Notify::new())));
        }
    }

    /// An instance has stopped and released its files; waiting requests proceed (waking a new instance).
    pub fn finish_stop(&self, actor_id: &str, destroyed: bool) {
        if let Some(Slot::Stopping(stopped)) = lock(&self.slots).remove(actor_id) {
            stopped.notify_waiters();
        }
        if !destroyed {
            self.actor_table.slept(actor_id, now_ms());
        }
    }

    /// Records the destroy durably and frees the key; later requests get `actor.not_found`.
    pub async fn mark_destroyed(&self, actor_id: &str) -> Result<(), ClientError> {
        self.actor_table.mark_destroyed(&self.node_db, actor_id, now_ms()).await
    }

    /// The actor consumed its create input; forget it.
    pub async fn input_consumed(&self, actor_id: &str) {
        if let Err(e) = self.actor_table.clear_input(&self.node_db, actor_id).await {
            tracing::warn!(actor_id, error = %e, "could not clear the create input");
        }
    }

    /// Counts connections of actors named `name` opening (positive) or closing (negative).
    pub fn connections_changed(&self, name: &str, delta: i64) {
        let mut connections = lock(&self.connections);
        let count = connections.entry(name.to_string()).or_default();
        *count = count.saturating_add_signed(delta);
    }

    /// The figures the metrics report at scrape time, given how many live actors of each name are recorded (see
    /// [`ActorTable::live_counts`]). May walk the data directory: call it off the async workers.
    pub fn metrics_snapshot(&self, live: BTreeMap<String, u64>) -> Snapshot {
        let mut snapshot = Snapshot { connections: lock(&self.connections).clone(), ..Snapshot::default() };
        let awake = {
            let slots = lock(&self.slots);
            self.actor_table.names(slots.keys())
        };
        for name in awake {
            *snapshot.awake.entry(name).or_default() += 1;
        }
        for (name, count) in live {
            let asleep = count.saturating_sub(snapshot.awake.get(&name).copied().unwrap_or(0));
            snapshot.asleep.insert(name, asleep);
        }
        snapshot.open_databases = self.pool.open_count() as u64;
        snapshot.storage_bytes = self.storage_size.read(&self.data_dir);
        snapshot.sqlite_memory_bytes = crate::storage::sqlite_memory_used();
        snapshot.heap = crate::heap::usage();
        snapshot
    }

    /// How many actors are awake.
    pub fn awake_count(&self) -> usize {
        lock(&self.slots).len()
    }

    /// Puts every awake actor to sleep and waits (up to `grace`) until all have saved and stopped.
    pub async fn sleep_all(self: &Arc<Self>, grace: Duration) {
        let ids: Vec<String> = lock(&self.slots).keys().cloned().collect();
        let mut waits = Vec::new();
        for id in ids {
            let (done, stopped) = oneshot::channel();
            self.dispatch_if_awake(&id, Command::Sleep { done: Some(done) }).await;
            waits.push(stopped);
        }
        let count = waits.len();
        let all = futures_util::future::join_all(waits);
        if tokio::time::timeout(grace, all).await.is_err() {
            tracing::warn!(count, "some actors did not finish sleeping within the grace period");
        }
    }
}

/// Requests for one actor held by [`HostCore::hold`]; releasing (or dropping) it lets them go on, in the order
/// they arrived.
pub(crate) struct Hold {
    core: Arc<HostCore>,
    actor_id: String,
}

impl Drop for Hold {
    fn drop(&mut self) {
        let _slots = lock(&self.core.slots);
        if let Some(released) = lock(&self.core.holds).remove(&self.actor_id) {
            released.notify_waiters();
        }
    }
}
