//! The node's side of the gateway contract: the REST and gateway operations on the actors this node hosts.

use std::sync::Arc;

use async_trait::async_trait;
use tern_gateway::backend::{
    ActorInfo, Backend, ConnInput, ConnOutput, ConnectionHandle, CreateRequest, InspectRequest, InspectorAuth,
    ListCursor, MemberInfo, RawRequest, RawResponse, RawSocketHandle, ReplicaInfo, ReplicaSet, SocketOutput,
};
use tern_gateway::outbound;
use tern_gateway::queue;
use tern_proto::key::ActorKey;
use tern_proto::messages::HttpQueueSendResponse;
use tern_proto::{ClientError, Value};
use tokio::sync::oneshot;

use super::command::Command;
use super::host::HostCore;
use super::instance::CONN_QUEUE;
use crate::clock::now_ms;
use crate::cluster::{Load, Roster};
use crate::storage::ActorRecord;
use crate::sync::lock;

/// The actors of one node, served to the gateway. Cheap to clone.
#[derive(Clone)]
pub struct Host {
    pub(crate) core: Arc<HostCore>,
}

/// The reserved KV key under which RivetKit's dashboard reads an actor's inspector token (`0x03`).
const INSPECTOR_TOKEN_KEY: &[u8] = crate::storage::kv::RESERVED_KEY;

fn new_actor_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

impl Host {
    pub(super) async fn request<T>(
        &self,
        actor_id: &str,
        make: impl FnOnce(oneshot::Sender<Result<T, ClientError>>) -> Command,
    ) -> Result<T, ClientError> {
        let (reply, answer) = oneshot::channel();
        self.core.dispatch(actor_id, make(reply)).await?;
        answer.await.map_err(|_| {
            tracing::error!(actor_id, "actor stopped without answering");
            ClientError::internal()
        })?
    }

    async fn info(&self, actor_id: &str) -> Result<ActorInfo, ClientError> {
        let entry = self.core.entry(actor_id).await?;
        entry.map(|e| e.info(&self.core.region)).ok_or_else(|| ClientError::actor_not_found(actor_id))
    }

    async fn existing(&self, name: &str, key: &[String]) -> Result<Option<ActorInfo>, ClientError> {
        let entry = self.core.actor_table.live_by_key(&self.core.node_db, name, key).await?;
        Ok(entry.map(|e| e.info(&self.core.region)))
    }

    /// Checks the request and encodes its input for the actor's record.
    fn new_record(&self, req: &CreateRequest, actor_id: String) -> Result<ActorRecord, ClientError> {
        if self.core.registry.get(&req.name).is_none() {
            return Err(ClientError::not_registered(&req.name));
        }
        let input = match &req.input {
            Some(value) => {
                let mut bytes = Vec::new();
                ciborium::into_writer(value, &mut bytes)
                    .map_err(|e| ClientError::invalid_request(format!("input: {e}")))?;
                Some(bytes)
            }
            None => None,
        };
        Ok(ActorRecord {
            actor_id,
            name: req.name.clone(),
            key: req.key.parts().to_vec(),
            input,
            create_ts: now_ms(),
            destroy_ts: None,
        })
    }

    async fn insert(&self, record: ActorRecord) -> Result<String, ClientError> {
        let id = record.actor_id.clone();
        let name = record.name.clone();
        self.core.actor_table.insert(&self.core.node_db, record).await?;
        self.core.metrics.record_created(&name);
        Ok(id)
    }

    /// Reserves the key and records the actor; returns its id, or the existing actor when `reuse` is set.
    async fn reserve(&self, req: &CreateRequest, reuse: bool) -> Result<(String, bool), ClientError> {
        let record = self.new_record(req, new_actor_id())?;
        let _reservation = self.core.create_lock.lock().await;
        if let Some(existing) = self.existing(&req.name, req.key.parts()).await? {
            if reuse {
                return Ok((existing.actor_id, false));
            }
            return Err(ClientError::duplicate_key(&req.name, &req.key.serialize()));
        }
        Ok((self.insert(record).await?, true))
    }

    /// Records a new actor for a cluster create, before the directory binds its key: the directory, not this
    /// node, decides whether the key is free. An earlier local record of the key that the directory never bound
    /// (`orphan`) is dropped first. Returns the new actor's id.
    pub(crate) async fn record_new(&self, req: &CreateRequest, orphan: Option<&str>) -> Result<String, ClientError> {
        let record = self.new_record(req, new_actor_id())?;
        let _reservation = self.core.create_lock.lock().await;
        if let Some(orphan) = orphan {
            self.abandon(orphan).await?;
        }
        // Pending until [`settled`](Self::settled): a node that stops in between finds it on its next start.
        lock(&self.core.creates_in_flight).insert(record.actor_id.clone());
        self.core.node_db.add_pending(&record.actor_id).await?;
        self.insert(record).await
    }

    /// The cluster create of `actor_id` is settled: its key is bound to it, or it was abandoned.
    pub(crate) async fn settled(&self, actor_id: &str) -> Result<(), ClientError> {
        let cleared = self.core.node_db.clear_pending(actor_id).await;
        lock(&self.core.creates_in_flight).remove(actor_id);
        cleared
    }

    /// The cluster create of `actor_id` stops here undecided (the directory could not say whether its key was
    /// bound to it): it stays pending, for [`Self::unsettled`] to report, until the directory answers.
    pub(crate) fn leave_unsettled(&self, actor_id: &str) {
        lock(&self.core.creates_in_flight).remove(actor_id);
    }

    /// Cluster creates left unsettled, by an earlier run or by this one (see [`Self::leave_unsettled`]), never one
    /// still in flight, with the name and key of those that got a local record.
    pub(crate) async fn unsettled(&self) -> Result<Vec<(String, Option<(String, Vec<String>)>)>, ClientError> {
        let ids = self.core.node_db.pending().await?;
        let in_flight = lock(&self.core.creates_in_flight).clone();
        let mut out = Vec::new();
        for id in ids.into_iter().filter(|id| !in_flight.contains(id)) {
            let named = self.core.live(&id).await?.map(|e| (e.record.name, e.record.key));
            out.push((id, named));
        }
        Ok(out)
    }

    /// Routes the calls actor code makes to other actors through `backend` (a cluster node's), which must outlive
    /// the host's use of it: the host keeps only a weak reference. Set once.
    pub fn route_actor_calls_through(&self, backend: &Arc<dyn Backend>) {
        let _ = self.core.actor_router.set(Arc::downgrade(backend));
    }

    /// The live local actor holding this name and key, if any.
    pub(crate) async fn local_by_key(&self, name: &str, key: &[String]) -> Result<Option<String>, ClientError> {
        Ok(self.existing(name, key).await?.map(|info| info.actor_id))
    }

    /// Whether the actor lives on this node and is not destroyed.
    pub(crate) async fn hosts(&self, actor_id: &str) -> Result<bool, ClientError> {
        Ok(self.destroy_ts(actor_id).await?.is_some_and(|ts| ts.is_none()))
    }

    /// Whether this node recorded the actor and destroyed it.
    pub(crate) async fn destroyed_here(&self, actor_id: &str) -> Result<bool, ClientError> {
        Ok(self.destroy_ts(actor_id).await?.is_some_and(|ts| ts.is_some()))
    }

    /// Whether this node recorded the actor (`Some`), and when it was destroyed; looked up without copying the
    /// entry, since every request of a cluster node asks.
    async fn destroy_ts(&self, actor_id: &str) -> Result<Option<Option<i64>>, ClientError> {
        let core = &self.core;
        core.actor_table.with(&core.node_db, actor_id, |entry| entry.map(|e| e.record.destroy_ts)).await
    }

    /// Whether actors named `name` are registered on this node.
    pub(crate) fn is_registered(&self, name: &str) -> bool {
        self.core.registry.get(name).is_some()
    }

    /// Drops an actor that never started (its create lost the race for its key): marks it destroyed without
    /// running hooks. It has no database yet.
    pub(crate) async fn abandon(&self, actor_id: &str) -> Result<(), ClientError> {
        self.core.mark_destroyed(actor_id).await?;
        self.settled(actor_id).await
    }

    /// Makes sure a new actor ran its create hooks before the create is acknowledged.
    pub(crate) async fn start_new(&self, actor_id: &str) -> Result<ActorInfo, ClientError> {
        self.ensure_started(actor_id).await?;
        self.info(actor_id).await
    }

    /// Makes sure a new actor ran its create hooks before the create is acknowledged.
    async fn ensure_started(&self, actor_id: &str) -> Result<(), ClientError> {
        self.request(actor_id, |reply| Command::Ping { reply }).await
    }

    /// Re-binds connection `conn_id`, which came with its actor from another node, to a new client stream (the
    /// client side following its actor, see [`crate::cluster::routing::follow`]).
    pub(crate) async fn resume(&self, actor_id: &str, conn_id: &str) -> Result<ConnectionHandle, ClientError> {
        let (out_tx, out_rx) = outbound::channel::<ConnOutput>(CONN_QUEUE);
        self.resume_connection(actor_id, conn_id, out_tx).await?;
        Ok(self.connection_handle(actor_id, conn_id.to_string(), out_rx))
    }

    /// Opens a raw WebSocket on the actor: a new one, or (`resumed`, its id) one whose client's socket followed
    /// the actor here from another node (see [`crate::cluster::routing::follow`]).
    pub(crate) async fn open_raw_socket(
        &self,
        actor_id: &str,
        request: axum::http::Request<()>,
        params: Option<Value>,
        resumed: Option<String>,
    ) -> Result<RawSocketHandle, ClientError> {
        let (out_tx, out_rx) = outbound::channel::<SocketOutput>(CONN_QUEUE);
        let request = Box::new(request);
        let open = |reply| Command::SocketOpen { request, params, resumed, outbound: out_tx, reply };
        let socket_id = self.request(actor_id, open).await?;
        let id = socket_id.clone();
        let to_command = move |message| Command::SocketInput { socket_id: id.clone(), message: Some(message) };
        let closed = Command::SocketInput { socket_id: socket_id.clone(), message: None };
        let in_tx = self.forward(actor_id, to_command, closed);
        Ok(RawSocketHandle { actor_id: actor_id.to_string(), socket_id, inbound: in_tx, outbound: out_rx })
    }

    /// The gateway's side of connection `conn_id`: client messages become the actor's commands (and the client
    /// leaving a disconnect), the actor's messages come from `outbound`.
    fn connection_handle(
        &self,
        actor_id: &str,
        conn_id: String,
        outbound: outbound::OutboundReceiver<ConnOutput>,
    ) -> ConnectionHandle {
        let conn = conn_id.clone();
        let to_command = move |input| match input {
            ConnInput::Action { id, name, args } => Command::ConnAction { conn_id: conn.clone(), id, name, args },
            ConnInput::Subscribe { event, subscribe } => Command::Subscribe { conn_id: conn.clone(), event, subscribe },
        };
        let inbound = self.forward(actor_id, to_command, Command::Disconnect { conn_id: conn_id.clone() });
        ConnectionHandle { actor_id: actor_id.to_string(), connection_id: conn_id, inbound, outbound }
    }

    /// Forwards what a client sends on an open socket to the actor as commands, and `end` once the client is gone.
    /// Returns the sender the gateway feeds.
    fn forward<I: Send + 'static>(
        &self,
        actor_id: &str,
        to_command: impl Fn(I) -> Command + Send + 'static,
        end: Command,
    ) -> queue::Sender<I> {
        let (tx, mut rx) = queue::channel::<I>(CONN_QUEUE);
        let core = self.core.clone();
        let actor = actor_id.to_string();
        tokio::spawn(async move {
            while let Some(input) = rx.recv().await {
                core.dispatch_if_awake(&actor, to_command(input)).await;
            }
            core.dispatch_if_awake(&actor, end).await;
        });
        tx
    }

    /// How many actors are awake.
    pub fn awake_count(&self) -> usize {
        self.core.awake_count()
    }

    /// How many actor databases are open.
    pub fn open_databases(&self) -> usize {
        self.core.pool.open_count()
    }

    /// The node's load, as membership gossips it.
    pub fn load(&self) -> Load {
        Load { awake_actors: self.awake_count() as u64, open_databases: self.open_databases() as u64 }
    }

    /// Sets where `GET /cluster/members` gets its list from.
    pub fn set_roster(&self, roster: Roster) {
        *lock(&self.core.roster) = roster;
    }

    /// Puts every awake actor to sleep (saving it), waiting at most `grace`.
    pub async fn shutdown(&self, grace: std::time::Duration) {
        self.core.sleep_all(grace).await;
    }
}

#[async_trait]
impl Backend for Host {
    fn actor_names(&self) -> Vec<String> {
        self.core.registry.names()
    }

    async fn get_actor_by_key(&self, name: &str, key: &ActorKey) -> Result<Option<ActorInfo>, ClientError> {
        self.existing(name, key.parts()).await
    }

    async fn get_actors_by_ids(&self, ids: &[String]) -> Result<Vec<ActorInfo>, ClientError> {
        let mut out = Vec::new();
        for id in ids {
            out.extend(self.core.entry(id).await?.map(|e| e.info(&self.core.region)));
        }
        Ok(out)
    }

    async fn list_actors(
        &self,
        name: Option<&str>,
        after: Option<&ListCursor>,
        limit: usize,
    ) -> Result<Vec<ActorInfo>, ClientError> {
        let after = after.map(|c| (c.create_ts, c.actor_id.as_str()));
        let page = self.core.actor_table.page(&self.core.node_db, name, after, limit).await?;
        Ok(page.iter().map(|e| e.info(&self.core.region)).collect())
    }

    async fn create_actor(&self, req: CreateRequest) -> Result<ActorInfo, ClientError> {
        let (id, _) = self.reserve(&req, false).await?;
        self.ensure_started(&id).await?;
        self.info(&id).await
    }

    async fn get_or_create_actor(&self, req: CreateRequest) -> Result<(ActorInfo, bool), ClientError> {
        let (id, created) = self.reserve(&req, true).await?;
        if created {
            self.ensure_started(&id).await?;
        }
        Ok((self.info(&id).await?, created))
    }

    async fn destroy_actor(&self, actor_id: &str) -> Result<(), ClientError> {
        self.request(actor_id, |reply| Command::Destroy { reply }).await
    }

    async fn sleep_actor(&self, actor_id: &str) -> Result<(), ClientError> {
        if self.core.live(actor_id).await?.is_none() {
            return Err(ClientError::actor_not_found(actor_id));
        }
        let (done, stopped) = oneshot::channel();
        self.core.dispatch_if_awake(actor_id, Command::Sleep { done: Some(done) }).await;
        let _ = stopped.await;
        Ok(())
    }

    async fn call_action(
        &self,
        actor_id: &str,
        action: &str,
        args: Value,
        params: Option<Value>,
    ) -> Result<Value, ClientError> {
        self.request(actor_id, |reply| Command::Action { name: action.to_string(), args, params, reply }).await
    }

    async fn connect(&self, actor_id: &str, params: Option<Value>) -> Result<ConnectionHandle, ClientError> {
        let (out_tx, out_rx) = outbound::channel::<ConnOutput>(CONN_QUEUE);
        let conn_id = self.request(actor_id, |reply| Command::Connect { params, outbound: out_tx, reply }).await?;
        Ok(self.connection_handle(actor_id, conn_id, out_rx))
    }

    async fn raw_request(
        &self,
        actor_id: &str,
        request: RawRequest,
        params: Option<Value>,
    ) -> Result<RawResponse, ClientError> {
        self.request(actor_id, |reply| Command::RawRequest { request: Box::new(request), params, reply }).await
    }

    async fn raw_websocket(
        &self,
        actor_id: &str,
        request: axum::http::Request<()>,
        params: Option<Value>,
    ) -> Result<RawSocketHandle, ClientError> {
        self.open_raw_socket(actor_id, request, params, None).await
    }

    async fn inspect(
        &self,
        actor_id: &str,
        auth: InspectorAuth,
        request: InspectRequest,
    ) -> Result<serde_json::Value, ClientError> {
        self.request(actor_id, |reply| Command::Inspect { auth, request, reply }).await
    }

    async fn export(&self, actor_id: &str, auth: InspectorAuth) -> Result<Vec<u8>, ClientError> {
        self.request(actor_id, |reply| Command::Export { auth, reply }).await
    }

    async fn kv_get(&self, actor_id: &str, key: &[u8]) -> Result<Option<(Vec<u8>, i64)>, ClientError> {
        if key != INSPECTOR_TOKEN_KEY {
            // The actor's own KV store, read inside its turn.
            let key = key.to_vec();
            return self.request(actor_id, |reply| Command::KvGet { key, reply }).await;
        }
        let (token, ts) = self.request(actor_id, |reply| Command::InspectorToken { reply }).await?;
        Ok(Some((token.into_bytes(), ts)))
    }

    async fn queue_send(
        &self,
        actor_id: &str,
        name: &str,
        body: Value,
        wait: Option<std::time::Duration>,
    ) -> Result<HttpQueueSendResponse, ClientError> {
        let (reply, answer) = oneshot::channel();
        let command = Command::QueueSend { name: name.to_string(), body, wait: wait.is_some(), reply };
        self.core.dispatch(actor_id, command).await?;
        let completed = |response| HttpQueueSendResponse { status: "completed".into(), response };
        let Some(wait) = wait else {
            return answer.await.map_err(|_| ClientError::stopping())?.map(completed);
        };
        match tokio::time::timeout(wait, answer).await {
            Ok(answered) => answered.map_err(|_| ClientError::stopping())?.map(completed),
            Err(_) => Ok(HttpQueueSendResponse { status: "timedOut".into(), response: None }),
        }
    }

    async fn metrics(&self) -> String {
        let core = self.core.clone();
        let live = match core.actor_table.live_counts(&core.node_db).await {
            Ok(live) => live,
            Err(e) => {
                tracing::error!(error = %e, "cannot count the actors for the metrics");
                Default::default()
            }
        };
        // The snapshot walks the data directory for storage bytes: keep it off the async workers.
        match tokio::task::spawn_blocking(move || core.metrics_snapshot(live)).await {
            Ok(snapshot) => self.core.metrics.render(&snapshot),
            Err(e) => {
                tracing::error!(error = %e, "metrics snapshot failed");
                self.core.metrics.render(&Default::default())
            }
        }
    }

    fn record_http(&self, route: &str, status: u16) {
        self.core.metrics.record_http(route, status);
    }

    async fn cluster_members(&self) -> Result<Vec<MemberInfo>, ClientError> {
        let load = self.load();
        Ok(lock(&self.core.roster).report(&self.core.region, load))
    }

    async fn replicas(&self, actor_id: &str) -> Result<ReplicaSet, ClientError> {
        if !self.hosts(actor_id).await? {
            return Err(ClientError::actor_not_found(actor_id));
        }
        if let Some(replicator) = self.core.replicator.get() {
            return Ok(replicator.replica_set(actor_id).await);
        }
        let home = ReplicaInfo {
            node: "local".into(),
            region: Some(self.core.region.to_string()),
            position: None,
            lag_frames: Some(0),
            lag_bytes: Some(0),
            lag_ms: Some(0),
            state: "home".into(),
        };
        Ok(ReplicaSet { home, replicas: Vec::new() })
    }

    /// A node outside a cluster (`tern dev`) is the only place an actor can be: its own region or node
    /// (`local`) answers at once, any other is not found.
    async fn migrate(
        &self,
        actor_id: &str,
        target: tern_gateway::backend::MigrationTarget,
    ) -> Result<tern_gateway::backend::Migration, ClientError> {
        use tern_gateway::backend::{Migration, MigrationTarget, NodePlace};
        if !self.hosts(actor_id).await? {
            return Err(ClientError::actor_not_found(actor_id));
        }
        match &target {
            MigrationTarget::Region(region) if **region != *self.core.region => {
                return Err(ClientError::region_not_found(region));
            }
            MigrationTarget::Node(node) if node != "local" => return Err(ClientError::node_not_found(node)),
            _ => {}
        }
        let here = NodePlace { node: "local".into(), region: self.core.region.to_string() };
        Ok(Migration { actor_id: actor_id.to_string(), from: here.clone(), to: here, epoch: 0, pause_ms: 0 })
    }

    async fn drain(&self, node_id: &str) -> Result<tern_gateway::backend::DrainReport, ClientError> {
        if node_id != "local" {
            return Err(ClientError::node_not_found(node_id));
        }
        Err(ClientError::no_capacity("a node outside a cluster has no other node to move its actors to"))
    }
}
