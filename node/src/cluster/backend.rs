//! The gateway's backend on a cluster node: every request is served here if this node hosts the actor, or crosses
//! exactly one QUIC hop to the actor's home otherwise. Keys and homes come from the [`ClusterDirectory`]; new
//! actors go where [`placement`](super::placement) says.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use tern_gateway::backend::{
    ActorInfo, Backend, ConnOutput, ConnectionHandle, CreateRequest, InspectRequest, InspectorAuth, MemberInfo,
    RawRequest, RawResponse, RawSocketHandle, SocketOutput,
};
use tern_proto::messages::HttpQueueSendResponse;
use tern_proto::{ClientError, Value};
use tern_replication::Transport;

use super::bridge::{self, StreamOpen};
use super::directory::{ClusterDirectory, Placement};
use super::placement::{self, Home};
use super::rpc::{Call, CallReply, PeerRequest, WireRequest, WireResponse};
use super::{MemberState, Members};
use crate::clock::now_ms;
use crate::runtime::Host;

/// How long a forwarded call may take: actions enforce their own (shorter) timeouts on the home.
const CALL_TIMEOUT: Duration = Duration::from_secs(300);
/// How long a cache invalidation may take.
const FORGET_TIMEOUT: Duration = Duration::from_secs(2);

/// A cluster node's backend. Cheap to clone.
#[derive(Clone)]
pub struct ClusterBackend {
    inner: Arc<Inner>,
}

struct Inner {
    host: Host,
    local_id: String,
    region: String,
    transport: Transport,
    members: Members,
    /// `None` when the node was started without voters: it cannot create or find actors.
    directory: Option<ClusterDirectory>,
    /// One create at a time per key on this node, so that a create in flight is never taken for an orphan.
    creating: KeyedLocks,
}

/// Async locks by key, dropped when no one holds or waits for them.
#[derive(Default)]
struct KeyedLocks {
    locks: std::sync::Mutex<std::collections::HashMap<String, std::sync::Weak<tokio::sync::Mutex<()>>>>,
}

impl KeyedLocks {
    async fn lock(&self, key: String) -> tokio::sync::OwnedMutexGuard<()> {
        let lock = {
            let mut locks = self.locks.lock().unwrap_or_else(|e| e.into_inner());
            locks.retain(|_, weak| weak.strong_count() > 0);
            match locks.get(&key).and_then(std::sync::Weak::upgrade) {
                Some(lock) => lock,
                None => {
                    let lock = Arc::new(tokio::sync::Mutex::new(()));
                    locks.insert(key, Arc::downgrade(&lock));
                    lock
                }
            }
        };
        lock.lock_owned().await
    }
}

/// Where a request for an actor goes.
enum Route {
    Local,
    Remote(Home),
}

impl ClusterBackend {
    /// The backend of node `local_id` in `region`.
    pub fn new(
        host: Host,
        local_id: String,
        region: String,
        transport: Transport,
        members: Members,
        directory: Option<ClusterDirectory>,
    ) -> Self {
        let creating = KeyedLocks::default();
        Self { inner: Arc::new(Inner { host, local_id, region, transport, members, directory, creating }) }
    }

    fn directory(&self) -> Result<&ClusterDirectory, ClientError> {
        self.inner.directory.as_ref().ok_or_else(|| {
            ClientError::no_quorum("this node was started without --voters, so it cannot reach the directory")
        })
    }

    /// The actor's home, as a live member.
    fn home(&self, placement: &Placement) -> Result<Home, ClientError> {
        let member = self.inner.members.get(&placement.home).filter(|m| m.state != MemberState::Down);
        member.map(|m| Home::from(&m)).ok_or_else(|| {
            ClientError::unavailable(format!(
                "actor {} lives on node {}, which is down, and no other copy of it exists",
                placement.actor_id, placement.home
            ))
        })
    }

    /// Where requests for the actor go: here if this node hosts it, else its home per the directory (`fresh`
    /// skips the cache).
    async fn route(&self, actor_id: &str, fresh: bool) -> Result<Route, ClientError> {
        if self.inner.host.hosts(actor_id) {
            return Ok(Route::Local);
        }
        let directory = self.directory()?;
        let placement = directory.placement(actor_id, fresh).await?;
        let placement = placement.ok_or_else(|| ClientError::actor_not_found(actor_id))?;
        if placement.destroy_ts.is_some() {
            // A cache that missed the destroy's broadcast learns it here.
            directory.forget(actor_id, &placement.name, &placement.key);
            return Err(ClientError::actor_not_found(actor_id));
        }
        if placement.home == self.inner.local_id {
            if !fresh {
                return Box::pin(self.route(actor_id, true)).await;
            }
            return Err(ClientError::actor_not_found(actor_id));
        }
        Ok(Route::Remote(self.home(&placement)?))
    }

    /// Runs `call` for actor `actor_id` where it lives. A home that no longer has the actor (a stale cache) makes
    /// the route be looked up again, once.
    async fn on_actor(&self, actor_id: &str, call: Call) -> Result<CallReply, ClientError> {
        match self.route(actor_id, false).await? {
            Route::Local => self.serve_call(call).await,
            Route::Remote(home) => match self.forward(&home, &call).await {
                Err(e) if e.group == "actor" && e.code == "not_found" => match self.route(actor_id, true).await? {
                    Route::Remote(again) if again != home => self.forward(&again, &call).await,
                    Route::Local => self.serve_call(call).await,
                    Route::Remote(_) => Err(e),
                },
                other => other,
            },
        }
    }

    /// Sends `call` to `home` and returns its answer; an unreachable home is `actor.unavailable`.
    async fn forward(&self, home: &Home, call: &Call) -> Result<CallReply, ClientError> {
        let request = super::rpc::encode(&PeerRequest::Call(call.clone()));
        let reply = self.inner.transport.request_with_timeout(home.quic_addr, request, CALL_TIMEOUT).await;
        let reply = reply.map_err(|e| {
            ClientError::unavailable(format!("the actor's home, node {}, cannot be reached: {e}", home.id))
        })?;
        super::rpc::decode::<Result<CallReply, ClientError>>(&reply).map_err(|e| {
            tracing::error!(home = %home.id, "{e}");
            ClientError::internal()
        })?
    }

    /// Serves a call on this node (it hosts the actor, or is the chosen home of a new one).
    pub async fn serve_call(&self, call: Call) -> Result<CallReply, ClientError> {
        let host = &self.inner.host;
        Ok(match call {
            Call::Create { request, reuse } => {
                let (info, created) = self.create_here(request, reuse).await?;
                CallReply::Created { info, created }
            }
            Call::Infos { actor_ids } => CallReply::Infos(host.get_actors_by_ids(&actor_ids).await?),
            Call::List { name, limit } => CallReply::Infos(host.list_actors(name.as_deref(), limit).await?),
            Call::Destroy { actor_id } => {
                self.destroy_here(&actor_id).await?;
                CallReply::Done
            }
            Call::Sleep { actor_id } => {
                host.sleep_actor(&actor_id).await?;
                CallReply::Done
            }
            Call::Action { actor_id, action, args, params } => {
                CallReply::Value(host.call_action(&actor_id, &action, args, params).await?)
            }
            Call::RawRequest { actor_id, request, params } => {
                let request = request.into_http(bytes::Bytes::from)?;
                CallReply::Response(WireResponse::from_http(&host.raw_request(&actor_id, request, params).await?))
            }
            Call::Inspect { actor_id, auth, request } => {
                CallReply::Json(host.inspect(&actor_id, auth, request).await?.to_string())
            }
            Call::Export { actor_id, auth } => CallReply::Bytes(host.export(&actor_id, auth).await?),
            Call::KvGet { actor_id, key } => CallReply::Kv(
                host.kv_get(&actor_id, &key).await?.map(|(value, ts)| (serde_bytes::ByteBuf::from(value), ts)),
            ),
            Call::QueueSend { actor_id, name, body, wait_ms } => {
                CallReply::Queue(host.queue_send(&actor_id, &name, body, wait_ms.map(Duration::from_millis)).await?)
            }
        })
    }

    /// Creates the actor on this node, its chosen home: record it locally, record its placement, then race for
    /// the key. The loser of a race drops its record and answers with the winner (`reuse`) or `duplicate_key`.
    async fn create_here(&self, request: CreateRequest, reuse: bool) -> Result<(ActorInfo, bool), ClientError> {
        let directory = self.directory()?;
        let host = &self.inner.host;
        let lock_key = format!("{}/{}", request.name, tern_proto::key::serialize_key(&request.key));
        let _creating = self.inner.creating.lock(lock_key).await;
        // A local record of this key that the directory does not know is left from a create that failed midway.
        let orphan = match host.local_by_key(&request.name, &request.key) {
            Some(local) => match directory.binding(&request.name, &request.key, true).await? {
                Some(bound) if bound == local => return self.existing(&bound, reuse, &request).await,
                _ => Some(local),
            },
            None => None,
        };
        let actor_id = host.record_new(&request, orphan.as_deref()).await?;
        let placement = Placement {
            actor_id: actor_id.clone(),
            name: request.name.clone(),
            key: request.key.clone(),
            home: self.inner.local_id.clone(),
            region: self.inner.region.clone(),
            epoch: 1,
            create_ts: now_ms(),
            destroy_ts: None,
        };
        let bound = match directory.record_placement(&placement).await {
            Ok(()) => directory.bind_key(&request.name, &request.key, &actor_id).await,
            Err(e) => Err(e),
        };
        let bound = match bound {
            Ok(bound) => bound,
            Err(e) => {
                host.abandon(&actor_id).await?;
                return Err(e);
            }
        };
        if bound != actor_id {
            host.abandon(&actor_id).await?;
            return self.existing(&bound, reuse, &request).await;
        }
        Ok((host.start_new(&actor_id).await?, true))
    }

    /// The answer to a create whose key is bound to `actor_id` already.
    async fn existing(
        &self,
        actor_id: &str,
        reuse: bool,
        request: &CreateRequest,
    ) -> Result<(ActorInfo, bool), ClientError> {
        if !reuse {
            return Err(ClientError::duplicate_key(&request.name, &tern_proto::key::serialize_key(&request.key)));
        }
        Ok((self.info(actor_id).await?, false))
    }

    /// What the REST API reports for one actor.
    async fn info(&self, actor_id: &str) -> Result<ActorInfo, ClientError> {
        if self.inner.host.hosts(actor_id) {
            let infos = self.inner.host.get_actors_by_ids(&[actor_id.to_string()]).await?;
            return infos.into_iter().next().ok_or_else(|| ClientError::actor_not_found(actor_id));
        }
        let placement = self.directory()?.placement(actor_id, false).await?;
        placement.map(|p| p.info()).ok_or_else(|| ClientError::actor_not_found(actor_id))
    }

    /// Destroys an actor this node hosts, then records it in the directory and tells every node to forget it. A
    /// destroy that stopped after the local part is finished by a retry.
    async fn destroy_here(&self, actor_id: &str) -> Result<(), ClientError> {
        let host = &self.inner.host;
        let directory = self.directory()?;
        if !host.destroyed_here(actor_id) {
            host.destroy_actor(actor_id).await?;
        }
        let placement =
            directory.placement(actor_id, true).await?.ok_or_else(|| ClientError::actor_not_found(actor_id))?;
        if placement.destroy_ts.is_none() {
            directory.record_destroyed(&placement, now_ms()).await?;
        }
        let forget = PeerRequest::Forget { actor_id: actor_id.to_string(), name: placement.name, key: placement.key };
        let request = super::rpc::encode(&forget);
        // Every live node drops its cached lookups before the destroy is acknowledged; one that misses this
        // learns it when the actor's home answers `actor.not_found`.
        let peers = self.inner.members.all().into_iter().filter(|m| !m.local && m.state != MemberState::Down);
        let told = peers.map(|member| {
            let (transport, request) = (self.inner.transport.clone(), request.clone());
            async move { transport.request_with_timeout(member.node.quic_addr, request, FORGET_TIMEOUT).await }
        });
        futures_util::future::join_all(told).await;
        Ok(())
    }

    /// The QUIC addresses of the members this node sees live, itself included.
    pub fn live_member_addrs(&self) -> Vec<std::net::SocketAddr> {
        self.inner.members.all().into_iter().filter(|m| m.state.is_live()).map(|m| m.node.quic_addr).collect()
    }

    /// Forgets what the directory cache says about an actor (a peer destroyed it).
    pub fn forget(&self, actor_id: &str, name: &str, key: &[String]) {
        if let Some(directory) = &self.inner.directory {
            directory.forget(actor_id, name, key);
        }
    }

    /// Creates (or with `reuse`, finds) the actor for the request's key somewhere in the cluster.
    async fn create(&self, request: CreateRequest, reuse: bool) -> Result<(ActorInfo, bool), ClientError> {
        if self.inner.host.actor_names().iter().all(|name| name != &request.name) {
            return Err(ClientError::not_registered(&request.name));
        }
        let directory = self.directory()?;
        if let Some(bound) = directory.binding(&request.name, &request.key, false).await? {
            return self.existing(&bound, reuse, &request).await;
        }
        let region = request.region.clone().unwrap_or_else(|| self.inner.region.clone());
        let mut avoid = Vec::new();
        loop {
            let local_load = self.inner.host.load().awake_actors;
            let home = placement::choose(&self.inner.members, &self.inner.transport, &region, &avoid, local_load)
                .ok_or_else(|| ClientError::unavailable("no live node can host a new actor"))?;
            let call = Call::Create { request: request.clone(), reuse };
            let reply = if home.id == self.inner.local_id {
                self.serve_call(call).await
            } else {
                self.forward(&home, &call).await
            };
            match reply {
                Ok(CallReply::Created { info, created }) => return Ok((info, created)),
                Ok(other) => return Err(unexpected(&other)),
                // The chosen node did not answer: try another, at most twice.
                Err(e) if e.group == "actor" && e.code == "unavailable" && avoid.len() < 2 => avoid.push(home.id),
                Err(e) => return Err(e),
            }
        }
    }
}

fn unexpected(reply: &CallReply) -> ClientError {
    tracing::error!(?reply, "a peer answered with an unexpected reply");
    ClientError::internal()
}

#[async_trait]
impl Backend for ClusterBackend {
    fn actor_names(&self) -> Vec<String> {
        self.inner.host.actor_names()
    }

    async fn get_actor_by_key(&self, name: &str, key: &[String]) -> Result<Option<ActorInfo>, ClientError> {
        match self.directory()?.binding(name, key, false).await? {
            Some(actor_id) => match self.info(&actor_id).await {
                Ok(info) if info.destroy_ts.is_none() => Ok(Some(info)),
                Ok(_) => Ok(None),
                Err(e) if e.code == "not_found" => Ok(None),
                Err(e) => Err(e),
            },
            None => Ok(None),
        }
    }

    async fn get_actors_by_ids(&self, ids: &[String]) -> Result<Vec<ActorInfo>, ClientError> {
        let mut out = Vec::new();
        for id in ids {
            match self.info(id).await {
                Ok(info) => out.push(info),
                Err(e) if e.code == "not_found" => {}
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }

    async fn list_actors(&self, name: Option<&str>, limit: usize) -> Result<Vec<ActorInfo>, ClientError> {
        let mut all = self.inner.host.list_actors(name, limit).await?;
        let call = Call::List { name: name.map(str::to_string), limit };
        for member in self.inner.members.all() {
            if member.local || member.state == MemberState::Down {
                continue;
            }
            match self.forward(&Home::from(&member), &call).await? {
                CallReply::Infos(infos) => all.extend(infos),
                other => return Err(unexpected(&other)),
            }
        }
        all.sort_by(|a, b| b.create_ts.cmp(&a.create_ts).then(a.actor_id.cmp(&b.actor_id)));
        all.truncate(limit);
        Ok(all)
    }

    async fn create_actor(&self, req: CreateRequest) -> Result<ActorInfo, ClientError> {
        self.create(req, false).await.map(|(info, _)| info)
    }

    async fn get_or_create_actor(&self, req: CreateRequest) -> Result<(ActorInfo, bool), ClientError> {
        self.create(req, true).await
    }

    async fn destroy_actor(&self, actor_id: &str) -> Result<(), ClientError> {
        // A destroy interrupted after its local part is finished by its home, so route by the directory.
        let placement = match self.inner.host.hosts(actor_id) {
            true => None,
            false => self.directory()?.placement(actor_id, true).await?,
        };
        match placement {
            Some(p) if p.home == self.inner.local_id => self.destroy_here(actor_id).await,
            _ => self.on_actor(actor_id, Call::Destroy { actor_id: actor_id.to_string() }).await.map(|_| ()),
        }
    }

    async fn sleep_actor(&self, actor_id: &str) -> Result<(), ClientError> {
        self.on_actor(actor_id, Call::Sleep { actor_id: actor_id.to_string() }).await.map(|_| ())
    }

    async fn call_action(
        &self,
        actor_id: &str,
        action: &str,
        args: Value,
        params: Option<Value>,
    ) -> Result<Value, ClientError> {
        if self.inner.host.hosts(actor_id) {
            return self.inner.host.call_action(actor_id, action, args, params).await;
        }
        let call = Call::Action { actor_id: actor_id.to_string(), action: action.to_string(), args, params };
        match self.on_actor(actor_id, call).await? {
            CallReply::Value(value) => Ok(value),
            other => Err(unexpected(&other)),
        }
    }

    async fn connect(&self, actor_id: &str, params: Option<Value>) -> Result<ConnectionHandle, ClientError> {
        let home = match self.route(actor_id, false).await? {
            Route::Local => return self.inner.host.connect(actor_id, params).await,
            Route::Remote(home) => home,
        };
        let open = StreamOpen::Connect { actor_id: actor_id.to_string(), params };
        let lost = ConnOutput::Close(ClientError::stopping());
        let bridged = bridge::open(&self.inner.transport, home.quic_addr, &open, lost).await?;
        Ok(ConnectionHandle {
            actor_id: actor_id.to_string(),
            connection_id: bridged.id,
            inbound: bridged.inbound,
            outbound: bridged.outbound,
        })
    }

    async fn raw_request(
        &self,
        actor_id: &str,
        request: RawRequest,
        params: Option<Value>,
    ) -> Result<RawResponse, ClientError> {
        if self.inner.host.hosts(actor_id) {
            return self.inner.host.raw_request(actor_id, request, params).await;
        }
        let call =
            Call::RawRequest { actor_id: actor_id.to_string(), request: WireRequest::from_http(&request), params };
        match self.on_actor(actor_id, call).await? {
            CallReply::Response(response) => response.into_http(),
            other => Err(unexpected(&other)),
        }
    }

    async fn raw_websocket(
        &self,
        actor_id: &str,
        request: axum::http::Request<()>,
        params: Option<Value>,
    ) -> Result<RawSocketHandle, ClientError> {
        let home = match self.route(actor_id, false).await? {
            Route::Local => return self.inner.host.raw_websocket(actor_id, request, params).await,
            Route::Remote(home) => home,
        };
        let wire = WireRequest::from_http(&request.map(|()| bytes::Bytes::new()));
        let open = StreamOpen::Socket { actor_id: actor_id.to_string(), request: wire, params };
        let lost = SocketOutput::error(&ClientError::stopping());
        let bridged = bridge::open(&self.inner.transport, home.quic_addr, &open, lost).await?;
        Ok(RawSocketHandle {
            actor_id: actor_id.to_string(),
            socket_id: bridged.id,
            inbound: bridged.inbound,
            outbound: bridged.outbound,
        })
    }

    async fn inspect(
        &self,
        actor_id: &str,
        auth: InspectorAuth,
        request: InspectRequest,
    ) -> Result<serde_json::Value, ClientError> {
        match self.on_actor(actor_id, Call::Inspect { actor_id: actor_id.to_string(), auth, request }).await? {
            CallReply::Json(text) => serde_json::from_str(&text).map_err(|e| {
                tracing::error!("a peer sent bad inspector JSON: {e}");
                ClientError::internal()
            }),
            other => Err(unexpected(&other)),
        }
    }

    async fn export(&self, actor_id: &str, auth: InspectorAuth) -> Result<Vec<u8>, ClientError> {
        match self.on_actor(actor_id, Call::Export { actor_id: actor_id.to_string(), auth }).await? {
            CallReply::Bytes(bytes) => Ok(bytes),
            other => Err(unexpected(&other)),
        }
    }

    async fn kv_get(&self, actor_id: &str, key: &[u8]) -> Result<Option<(Vec<u8>, i64)>, ClientError> {
        match self.on_actor(actor_id, Call::KvGet { actor_id: actor_id.to_string(), key: key.to_vec() }).await? {
            CallReply::Kv(entry) => Ok(entry.map(|(value, ts)| (value.into_vec(), ts))),
            other => Err(unexpected(&other)),
        }
    }

    async fn queue_send(
        &self,
        actor_id: &str,
        name: &str,
        body: Value,
        wait: Option<Duration>,
    ) -> Result<HttpQueueSendResponse, ClientError> {
        let wait_ms = wait.map(|w| u64::try_from(w.as_millis()).unwrap_or(u64::MAX));
        let call = Call::QueueSend { actor_id: actor_id.to_string(), name: name.to_string(), body, wait_ms };
        match self.on_actor(actor_id, call).await? {
            CallReply::Queue(response) => Ok(response),
            other => Err(unexpected(&other)),
        }
    }

    async fn metrics(&self) -> String {
        self.inner.host.metrics().await
    }

    async fn cluster_members(&self) -> Result<Vec<MemberInfo>, ClientError> {
        self.inner.host.cluster_members().await
    }
}
