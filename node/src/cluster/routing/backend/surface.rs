//! The gateway's contract, served cluster-wide: each operation runs here or one QUIC hop away at the actor's home.

use std::time::Duration;

use async_trait::async_trait;
use tern_gateway::backend::{
    ActorInfo, Backend, ConnOutput, ConnectionHandle, CreateRequest, DrainReport, InspectRequest, InspectorAuth,
    ListCursor, MemberInfo, Migration, MigrationTarget, RawRequest, RawResponse, RawSocketHandle, ReplicaSet,
    SocketOutput, listing_order,
};
use tern_proto::key::ActorKey;
use tern_proto::messages::HttpQueueSendResponse;
use tern_proto::{ClientError, Value};

use super::{ClusterBackend, ForwardError, Route};
use crate::cluster::MemberState;
use crate::cluster::routing::bridge::{self, StreamOpen};
use crate::cluster::routing::follow;
use crate::cluster::routing::placement::Home;
use crate::cluster::rpc::{
    ForwardAction, ForwardDestroy, ForwardDrain, ForwardExport, ForwardInspect, ForwardKvGet, ForwardList,
    ForwardMigrate, ForwardQueueSend, ForwardRawRequest, ForwardReplicas, ForwardSleep, WireRequest,
};

impl ClusterBackend {
    /// Opens `open` (a connection, new or resumed) on the actor's home `home` over a bridge.
    async fn bridge_connection(
        &self,
        actor_id: &str,
        home: &Home,
        open: &StreamOpen,
    ) -> Result<ConnectionHandle, ClientError> {
        let lost = ConnOutput::Close(ClientError::stopping());
        let bridged = bridge::open(&self.inner.transport, home.quic_addr, open, lost).await?;
        Ok(ConnectionHandle {
            actor_id: actor_id.to_string(),
            connection_id: bridged.id,
            inbound: bridged.inbound,
            outbound: bridged.outbound,
        })
    }

    /// Opens a raw WebSocket (the upgrade `request`) on the actor's home: a new one, or (`resumed`, its id) one that
    /// follows its actor ([`follow`]).
    async fn open_raw_socket(
        &self,
        actor_id: &str,
        request: WireRequest,
        params: Option<Value>,
        resumed: Option<String>,
    ) -> Result<RawSocketHandle, ClientError> {
        let home = match self.route(actor_id, resumed.is_some()).await? {
            Route::Local => {
                let request = request.into_http(|_| ())?;
                return self.inner.host.open_raw_socket(actor_id, request, params, resumed).await;
            }
            Route::Remote(home) => home,
        };
        let open = StreamOpen::Socket { actor_id: actor_id.to_string(), request, params, resumed };
        let lost = SocketOutput::error(&ClientError::stopping());
        let bridged = bridge::open(&self.inner.transport, home.quic_addr, &open, lost).await?;
        Ok(RawSocketHandle {
            actor_id: actor_id.to_string(),
            socket_id: bridged.id,
            inbound: bridged.inbound,
            outbound: bridged.outbound,
        })
    }

    /// Opens raw WebSocket `socket_id` again on its actor where the directory places it now (see [`follow`]).
    pub(crate) async fn resume_raw_socket(
        &self,
        actor_id: &str,
        socket_id: &str,
        request: WireRequest,
        params: Option<Value>,
    ) -> Result<RawSocketHandle, ClientError> {
        self.open_raw_socket(actor_id, request, params, Some(socket_id.to_string())).await
    }

    /// Re-binds connection `conn_id` to its actor where the directory places it now (it moved there with the
    /// actor, see [`follow`]).
    pub(crate) async fn resume_connection(
        &self,
        actor_id: &str,
        conn_id: &str,
    ) -> Result<ConnectionHandle, ClientError> {
        match self.route(actor_id, true).await? {
            Route::Local => self.inner.host.resume(actor_id, conn_id).await,
            Route::Remote(home) => {
                let open = StreamOpen::Resume { actor_id: actor_id.to_string(), conn_id: conn_id.to_string() };
                self.bridge_connection(actor_id, &home, &open).await
            }
        }
    }
}

#[async_trait]
impl Backend for ClusterBackend {
    fn actor_names(&self) -> Vec<String> {
        self.inner.host.actor_names()
    }

    async fn get_actor_by_key(&self, name: &str, key: &ActorKey) -> Result<Option<ActorInfo>, ClientError> {
        match self.directory()?.binding(name, key.parts(), false).await? {
            Some(actor_id) => Ok(self.info(&actor_id).await?.filter(|info| info.destroy_ts.is_none())),
            None => Ok(None),
        }
    }

    async fn get_actors_by_ids(&self, ids: &[String]) -> Result<Vec<ActorInfo>, ClientError> {
        let mut out = Vec::new();
        for id in ids {
            out.extend(self.info(id).await?);
        }
        Ok(out)
    }

    async fn list_actors(
        &self,
        name: Option<&str>,
        after: Option<&ListCursor>,
        limit: usize,
    ) -> Result<Vec<ActorInfo>, ClientError> {
        let mut all = self.inner.host.list_actors(name, after, limit).await?;
        let call = ForwardList { name: name.map(str::to_string), after: after.cloned(), limit };
        for member in self.inner.members.all() {
            if member.local || member.state == MemberState::Down {
                continue;
            }
            let home = Home::from(&member);
            all.extend(self.forward(&home, call.clone()).await.map_err(ForwardError::into_node_call_error)?);
        }
        all.sort_by(listing_order);
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
        let placement = match self.inner.host.hosts(actor_id).await? {
            true => None,
            false => self.directory()?.placement(actor_id, true).await?,
        };
        match placement {
            Some(p) if p.home == self.inner.local_id => self.destroy_here(actor_id).await,
            _ => self.on_actor(actor_id, ForwardDestroy { actor_id: actor_id.to_string() }).await,
        }
    }

    async fn sleep_actor(&self, actor_id: &str) -> Result<(), ClientError> {
        self.on_actor(actor_id, ForwardSleep { actor_id: actor_id.to_string() }).await
    }

    async fn call_action(
        &self,
        actor_id: &str,
        action: &str,
        args: Value,
        params: Option<Value>,
    ) -> Result<Value, ClientError> {
        if self.inner.host.hosts(actor_id).await? {
            self.count_call(actor_id, None);
            let answered = self.inner.host.call_action(actor_id, action, args.clone(), params.clone()).await;
            if !self.moved_away(actor_id, &answered).await? {
                return answered;
            }
        }
        let call = ForwardAction { actor_id: actor_id.to_string(), action: action.to_string(), args, params };
        self.on_actor(actor_id, call).await
    }

    async fn connect(&self, actor_id: &str, params: Option<Value>) -> Result<ConnectionHandle, ClientError> {
        let mut route = self.route(actor_id, false).await?;
        if route == Route::Local {
            let opened = self.inner.host.connect(actor_id, params.clone()).await;
            if !self.moved_away(actor_id, &opened).await? {
                return Ok(follow::follow(self.clone(), opened?));
            }
            route = self.route(actor_id, true).await?;
        }
        let Route::Remote(home) = route else { return Err(ClientError::actor_not_found(actor_id)) };
        let open = StreamOpen::Connect { actor_id: actor_id.to_string(), params };
        Ok(follow::follow(self.clone(), self.bridge_connection(actor_id, &home, &open).await?))
    }

    async fn raw_request(
        &self,
        actor_id: &str,
        request: RawRequest,
        params: Option<Value>,
    ) -> Result<RawResponse, ClientError> {
        let call =
            ForwardRawRequest { actor_id: actor_id.to_string(), request: WireRequest::from_http(&request), params };
        if self.inner.host.hosts(actor_id).await? {
            let params = call.params.clone();
            let answered = self.inner.host.raw_request(actor_id, request, params).await;
            if !self.moved_away(actor_id, &answered).await? {
                return answered;
            }
        }
        self.on_actor(actor_id, call).await?.into_http()
    }

    async fn raw_websocket(
        &self,
        actor_id: &str,
        request: axum::http::Request<()>,
        params: Option<Value>,
    ) -> Result<RawSocketHandle, ClientError> {
        let wire = WireRequest::from_http(&request.map(|()| bytes::Bytes::new()));
        let opened = self.open_raw_socket(actor_id, wire.clone(), params.clone(), None).await?;
        Ok(follow::follow_socket(self.clone(), opened, wire, params))
    }

    async fn inspect(
        &self,
        actor_id: &str,
        auth: InspectorAuth,
        request: InspectRequest,
    ) -> Result<serde_json::Value, ClientError> {
        let text = self.on_actor(actor_id, ForwardInspect { actor_id: actor_id.to_string(), auth, request }).await?;
        serde_json::from_str(&text).map_err(|e| {
            tracing::error!("a peer sent bad inspector JSON: {e}");
            ClientError::internal()
        })
    }

    async fn export(&self, actor_id: &str, auth: InspectorAuth) -> Result<Vec<u8>, ClientError> {
        let call = ForwardExport { actor_id: actor_id.to_string(), auth };
        Ok(self.on_actor(actor_id, call).await?.into_vec())
    }

    async fn kv_get(&self, actor_id: &str, key: &[u8]) -> Result<Option<(Vec<u8>, i64)>, ClientError> {
        let entry = self.on_actor(actor_id, ForwardKvGet { actor_id: actor_id.to_string(), key: key.to_vec() }).await?;
        Ok(entry.map(|(value, ts)| (value.into_vec(), ts)))
    }

    async fn queue_send(
        &self,
        actor_id: &str,
        name: &str,
        body: Value,
        wait: Option<Duration>,
    ) -> Result<HttpQueueSendResponse, ClientError> {
        let wait_ms = wait.map(|w| u64::try_from(w.as_millis()).unwrap_or(u64::MAX));
        let call = ForwardQueueSend { actor_id: actor_id.to_string(), name: name.to_string(), body, wait_ms };
        self.on_actor(actor_id, call).await
    }

    async fn metrics(&self) -> String {
        self.inner.host.metrics().await
    }

    fn record_http(&self, route: &str, status: u16) {
        self.inner.host.record_http(route, status);
    }

    async fn cluster_members(&self) -> Result<Vec<MemberInfo>, ClientError> {
        let mut members = self.inner.host.cluster_members().await?;
        if let Ok(directory) = self.directory() {
            let epochs = members.iter().map(|m| directory.liveness(&m.id));
            let epochs = futures_util::future::join_all(epochs).await;
            for (member, record) in members.iter_mut().zip(epochs) {
                member.liveness_epoch = record.ok().flatten().map(|r| r.epoch);
            }
        }
        Ok(members)
    }

    async fn replicas(&self, actor_id: &str) -> Result<ReplicaSet, ClientError> {
        self.on_actor(actor_id, ForwardReplicas { actor_id: actor_id.to_string() }).await
    }

    async fn migrate(&self, actor_id: &str, target: MigrationTarget) -> Result<Migration, ClientError> {
        self.on_actor(actor_id, ForwardMigrate { actor_id: actor_id.to_string(), target }).await
    }

    async fn drain(&self, node_id: &str) -> Result<DrainReport, ClientError> {
        if node_id == self.inner.local_id {
            return self.mover()?.drain().await;
        }
        let member = self.inner.members.get(node_id).ok_or_else(|| ClientError::node_not_found(node_id))?;
        if member.state == MemberState::Down {
            return Err(ClientError::unavailable(format!("node {node_id} is down")));
        }
        self.forward(&Home::from(&member), ForwardDrain).await.map_err(ForwardError::into_node_call_error)
    }
}
