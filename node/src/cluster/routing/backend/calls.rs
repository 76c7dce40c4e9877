//! The forwarded calls as the node that serves them runs them: it hosts the actor, or is the chosen home of a new
//! one.

use std::time::Duration;

use serde_bytes::ByteBuf;
use tern_gateway::backend::Backend;
use tern_proto::ClientError;

use super::ClusterBackend;
use crate::cluster::rpc::{
    ForwardAction, ForwardCreate, ForwardDestroy, ForwardDrain, ForwardExport, ForwardInspect, ForwardKvGet,
    ForwardList, ForwardMigrate, ForwardQueueSend, ForwardRawRequest, ForwardReplicas, ForwardSleep, ForwardedCall,
    WireResponse,
};

/// A forwarded call this node can serve itself.
pub(crate) trait ServeCall: ForwardedCall {
    /// Runs the call here.
    async fn serve(self, backend: &ClusterBackend) -> Result<Self::Output, ClientError>;
}

impl ServeCall for ForwardCreate {
    async fn serve(self, backend: &ClusterBackend) -> Result<Self::Output, ClientError> {
        backend.create_here(self.request, self.reuse).await
    }
}

impl ServeCall for ForwardList {
    async fn serve(self, backend: &ClusterBackend) -> Result<Self::Output, ClientError> {
        backend.inner.host.list_actors(self.name.as_deref(), self.after.as_ref(), self.limit).await
    }
}

impl ServeCall for ForwardDestroy {
    async fn serve(self, backend: &ClusterBackend) -> Result<Self::Output, ClientError> {
        backend.destroy_here(&self.actor_id).await
    }
}

impl ServeCall for ForwardSleep {
    async fn serve(self, backend: &ClusterBackend) -> Result<Self::Output, ClientError> {
        backend.inner.host.sleep_actor(&self.actor_id).await
    }
}

impl ServeCall for ForwardAction {
    async fn serve(self, backend: &ClusterBackend) -> Result<Self::Output, ClientError> {
        backend.inner.host.call_action(&self.actor_id, &self.action, self.args, self.params).await
    }
}

impl ServeCall for ForwardRawRequest {
    async fn serve(self, backend: &ClusterBackend) -> Result<Self::Output, ClientError> {
        let request = self.request.into_http(bytes::Bytes::from)?;
        let response = backend.inner.host.raw_request(&self.actor_id, request, self.params).await?;
        Ok(WireResponse::from_http(&response))
    }
}

impl ServeCall for ForwardInspect {
    async fn serve(self, backend: &ClusterBackend) -> Result<Self::Output, ClientError> {
        Ok(backend.inner.host.inspect(&self.actor_id, self.auth, self.request).await?.to_string())
    }
}

impl ServeCall for ForwardExport {
    async fn serve(self, backend: &ClusterBackend) -> Result<Self::Output, ClientError> {
        Ok(ByteBuf::from(backend.inner.host.export(&self.actor_id, self.auth).await?))
    }
}

impl ServeCall for ForwardKvGet {
    async fn serve(self, backend: &ClusterBackend) -> Result<Self::Output, ClientError> {
        let entry = backend.inner.host.kv_get(&self.actor_id, &self.key).await?;
        Ok(entry.map(|(value, ts)| (ByteBuf::from(value), ts)))
    }
}

impl ServeCall for ForwardQueueSend {
    async fn serve(self, backend: &ClusterBackend) -> Result<Self::Output, ClientError> {
        let wait = self.wait_ms.map(Duration::from_millis);
        backend.inner.host.queue_send(&self.actor_id, &self.name, self.body, wait).await
    }
}

impl ServeCall for ForwardReplicas {
    async fn serve(self, backend: &ClusterBackend) -> Result<Self::Output, ClientError> {
        backend.inner.host.replicas(&self.actor_id).await
    }
}

impl ServeCall for ForwardMigrate {
    async fn serve(self, backend: &ClusterBackend) -> Result<Self::Output, ClientError> {
        backend.mover()?.migrate(&self.actor_id, &self.target).await
    }
}

impl ServeCall for ForwardDrain {
    async fn serve(self, backend: &ClusterBackend) -> Result<Self::Output, ClientError> {
        backend.mover()?.drain().await
    }
}
