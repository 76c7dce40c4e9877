//! The gateway's backend on a cluster node: every request is served here if this node hosts the actor, or crosses
//! exactly one QUIC hop to the actor's home otherwise. Keys and homes come from the [`ClusterDirectory`]; new
//! actors go where [`placement`](super::placement) says.

mod calls;
mod lifecycle;
mod surface;

use std::sync::Arc;
use std::time::Duration;

use futures_util::future::BoxFuture;
use tern_gateway::backend::{DrainReport, Migration, MigrationTarget};
use tern_proto::ClientError;
use tern_replication::Transport;

use super::placement::Home;
use crate::cluster::directory::{ClusterDirectory, Placement};
use crate::cluster::rpc::{self, CallRefusal, ForwardedCall};
use crate::cluster::{MemberState, Members};
use crate::runtime::Host;
pub(crate) use calls::ServeCall;
use lifecycle::KeyedLocks;

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
    /// This node's liveness lease (with the directory): new actors are placed here under its epoch.
    lease: Option<crate::handoff::Lease>,
    /// One create at a time per key on this node, so that a create in flight is never taken for an orphan.
    creating: KeyedLocks,
    /// Signalled when a create is left unsettled for `settle_creates` to settle.
    unsettled_creates: tokio::sync::Notify,
    /// What moves actors to other nodes (set once the node's hand-offs start; unset without voters).
    mover: std::sync::OnceLock<Arc<dyn Mover>>,
    /// The calls of the actors homed here, by the region they came from.
    traffic: crate::handoff::Traffic,
}

/// Moves actors between nodes on the backend's behalf (implemented by [`crate::handoff::Handoff`]): a migration or
/// drain that reached the node that is to run it.
pub(crate) trait Mover: Send + Sync {
    /// Moves `actor_id`, which lives here, to `target`.
    fn migrate<'a>(
        &'a self,
        actor_id: &'a str,
        target: &'a MigrationTarget,
    ) -> BoxFuture<'a, Result<Migration, ClientError>>;
    /// Moves every actor off this node; fails only when the node cannot read which actors it hosts.
    fn drain(&self) -> BoxFuture<'_, Result<DrainReport, ClientError>>;
}

/// Where a request for an actor goes.
#[derive(Debug, PartialEq)]
enum Route {
    Local,
    Remote(Home),
}

/// Why a forwarded call did not succeed.
#[derive(Debug)]
pub(super) enum ForwardError {
    /// The home ran it and it failed: the client's error.
    Failed(ClientError),
    /// The home does not host the actor: the route was stale.
    WrongHome,
    /// The home could not be reached and the call never left: it did not run, so it may be sent elsewhere
    /// (`actor.unavailable` for the client).
    Unreachable(ClientError),
    /// The call left but no answer came (the home crashed, or the connection or the timeout ran out): it may
    /// have run, so it is never sent again (`actor.unavailable` for the client).
    Unanswered(ClientError),
}

impl ForwardError {
    /// The error the client sees for a call on `actor_id`.
    fn into_client(self, actor_id: &str) -> ClientError {
        match self {
            ForwardError::Failed(e) | ForwardError::Unreachable(e) | ForwardError::Unanswered(e) => e,
            ForwardError::WrongHome => ClientError::actor_not_found(actor_id),
        }
    }

    /// The error the client sees for a call on a node rather than an actor (a create, a listing), which no node
    /// refuses as a wrong home.
    pub(super) fn into_node_call_error(self) -> ClientError {
        match self {
            ForwardError::Failed(e) | ForwardError::Unreachable(e) | ForwardError::Unanswered(e) => e,
            ForwardError::WrongHome => {
                tracing::error!("a peer refused a call for no actor as a call for an actor elsewhere");
                ClientError::internal()
            }
        }
    }
}

/// Where to send a call after its home answered that it does not host the actor, given the route looked up
/// afresh: once more to a different home, or here; the same home again would answer the same.
fn after_wrong_home(stale: &Home, fresh: Route) -> Option<Route> {
    match fresh {
        Route::Remote(home) if home == *stale => None,
        other => Some(other),
    }
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
        lease: Option<crate::handoff::Lease>,
    ) -> Self {
        let creating = KeyedLocks::default();
        let (mover, traffic) = (std::sync::OnceLock::new(), Default::default());
        let unsettled_creates = tokio::sync::Notify::new();
        let inner = Inner {
            host,
            local_id,
            region,
            transport,
            members,
            directory,
            lease,
            creating,
            unsettled_creates,
            mover,
            traffic,
        };
        Self { inner: Arc::new(inner) }
    }

    /// The calls of the actors homed here, by the region they came from (see [`crate::handoff::Traffic`]).
    pub(crate) fn traffic(&self) -> &crate::handoff::Traffic {
        &self.inner.traffic
    }

    /// Counts a call served here for `actor_id` that came through the gateway of node `origin` (this node when
    /// `None`).
    pub(super) fn count_call(&self, actor_id: &str, origin: Option<&str>) {
        let region = match origin {
            None => Some(self.inner.region.clone()),
            Some(node) => self.inner.members.get(node).map(|m| m.node.region),
        };
        if let Some(region) = region {
            self.inner.traffic.record(actor_id, &region);
        }
    }

    /// Sets what moves actors to other nodes (once, as the node starts).
    pub(crate) fn set_mover(&self, mover: Arc<dyn Mover>) {
        let _ = self.inner.mover.set(mover);
    }

    /// What moves actors to other nodes; `cluster.no_quorum` on a node without voters.
    pub(super) fn mover(&self) -> Result<&Arc<dyn Mover>, ClientError> {
        self.inner
            .mover
            .get()
            .ok_or_else(|| ClientError::no_quorum("this node was started without --voters, so it cannot move actors"))
    }

    /// Moves every actor homed here to other nodes (a graceful stop with `--drain-on-stop`); a node without
    /// voters moves nothing.
    pub async fn drain_here(&self) -> Result<DrainReport, ClientError> {
        match self.mover() {
            Ok(mover) => mover.drain().await,
            Err(_) => Ok(DrainReport { node: self.inner.local_id.clone(), moved: 0, failed: Vec::new() }),
        }
    }

    /// The node's QUIC transport.
    pub(crate) fn transport(&self) -> &Transport {
        &self.inner.transport
    }

    /// The directory, unless the node was started without voters.
    pub(crate) fn directory(&self) -> Result<&ClusterDirectory, ClientError> {
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
        if self.inner.host.hosts(actor_id).await? {
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
        match self.home(&placement) {
            Ok(home) => Ok(Route::Remote(home)),
            // The cached home is down: the actor may have failed over to a replica since.
            Err(_) if !fresh => Box::pin(self.route(actor_id, true)).await,
            Err(e) => Err(e),
        }
    }

    /// Runs `call` for actor `actor_id` where it lives. A home that answers that it does not host the actor (a
    /// stale cache) makes the route be looked up afresh, and the call sent there, once.
    async fn on_actor<C: ServeCall>(&self, actor_id: &str, call: C) -> Result<C::Output, ClientError> {
        // A home that says it does not host the actor, or cannot be reached (it may have failed over), makes the
        // route be looked up afresh, and the call sent there once if it is another node. A call that left and got
        // no answer is never sent again: it may have run, and running it twice is worse than failing it.
        let (stale, failure) = match self.route(actor_id, false).await? {
            Route::Local => return self.serve_here_or_follow(actor_id, call).await,
            Route::Remote(home) => match self.forward(&home, call.clone()).await {
                Err(ForwardError::WrongHome) => (home, ClientError::actor_not_found(actor_id)),
                Err(ForwardError::Unreachable(e)) => (home, e),
                other => return other.map_err(|e| e.into_client(actor_id)),
            },
        };
        match after_wrong_home(&stale, self.route(actor_id, true).await?) {
            Some(Route::Local) => call.serve(self).await,
            Some(Route::Remote(home)) => self.forward(&home, call).await.map_err(|e| e.into_client(actor_id)),
            None => Err(failure),
        }
    }

    /// Serves `call` for an actor this node hosts; if the actor left meanwhile (its requests were held while it
    /// moved, see [`crate::handoff::migrate`]), sends it to the actor's new home instead.
    async fn serve_here_or_follow<C: ServeCall>(&self, actor_id: &str, call: C) -> Result<C::Output, ClientError> {
        self.count_call(actor_id, None);
        let served = call.clone().serve(self).await;
        if !self.moved_away(actor_id, &served).await? {
            return served;
        }
        match self.route(actor_id, true).await? {
            Route::Local => call.serve(self).await,
            Route::Remote(home) => self.forward(&home, call).await.map_err(|e| e.into_client(actor_id)),
        }
    }

    /// Whether a local call's `answer` is an error meaning that the actor no longer lives here (it moved to
    /// another node).
    pub(super) async fn moved_away<T>(
        &self,
        actor_id: &str,
        answer: &Result<T, ClientError>,
    ) -> Result<bool, ClientError> {
        match answer {
            Err(e) if e.is(&ClientError::actor_not_found("")) => Ok(!self.inner.host.hosts(actor_id).await?),
            _ => Ok(false),
        }
    }

    /// Sends `call` to `home` and returns its answer.
    pub(super) async fn forward<C: ForwardedCall>(&self, home: &Home, call: C) -> Result<C::Output, ForwardError> {
        let started = std::time::Instant::now();
        let reply = rpc::ask(&self.inner.transport, home.quic_addr, call, CALL_TIMEOUT).await;
        let outcome = match &reply {
            Ok(Ok(_)) => "ok",
            Ok(Err(CallRefusal::WrongHome { .. })) => "wrong_home",
            Ok(Err(CallRefusal::Failed(_))) | Err(rpc::PeerError::Malformed(_)) => "failed",
            Err(rpc::PeerError::Transport(e)) if e.may_have_run() => "unanswered",
            Err(rpc::PeerError::Transport(_)) => "unreachable",
        };
        self.inner.host.core.metrics.record_forward(outcome, started.elapsed());
        match reply {
            Ok(Ok(output)) => Ok(output),
            Ok(Err(CallRefusal::Failed(e))) => Err(ForwardError::Failed(e)),
            Ok(Err(CallRefusal::WrongHome { .. })) => Err(ForwardError::WrongHome),
            Err(rpc::PeerError::Transport(e)) if e.may_have_run() => {
                Err(ForwardError::Unanswered(ClientError::unavailable(format!(
                    "the actor's home, node {}, did not answer, and the call may have run there: {e}",
                    home.id
                ))))
            }
            Err(rpc::PeerError::Transport(e)) => Err(ForwardError::Unreachable(ClientError::unavailable(format!(
                "the actor's home, node {}, cannot be reached: {e}",
                home.id
            )))),
            Err(rpc::PeerError::Malformed(e)) => {
                tracing::error!(home = %home.id, "{e}");
                Err(ForwardError::Failed(ClientError::internal()))
            }
        }
    }

    /// Serves a call node `from` forwarded here: a call for an actor this node does not host is refused as
    /// [`CallRefusal::WrongHome`], with what this node's cache says of the actor's placement. Calls for an actor
    /// count toward its traffic from `from`'s region.
    pub(crate) async fn serve_forwarded<C: ServeCall>(&self, call: C, from: &str) -> Result<C::Output, CallRefusal> {
        let actor_id = call.actor_id().map(str::to_string);
        if let Some(actor_id) = &actor_id {
            if !self.inner.host.hosts(actor_id).await.map_err(CallRefusal::Failed)? {
                return Err(self.wrong_home(actor_id));
            }
            self.count_call(actor_id, Some(from));
        }
        let served = call.serve(self).await;
        if let Some(actor_id) = &actor_id
            && self.moved_away(actor_id, &served).await.map_err(CallRefusal::Failed)?
        {
            // The actor moved away while the call waited for it: the caller follows it.
            return Err(self.wrong_home(actor_id));
        }
        served.map_err(CallRefusal::Failed)
    }

    /// The refusal of a call for an actor this node does not host, with what its cache says of the placement.
    fn wrong_home(&self, actor_id: &str) -> CallRefusal {
        let cached = self.inner.directory.as_ref().and_then(|directory| directory.cached_placement(actor_id));
        let (home, epoch) = cached.map(|p| (p.home, p.epoch)).unzip();
        CallRefusal::WrongHome { home, epoch }
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
}

#[cfg(test)]
mod tests {
    use super::*;

    fn home(id: &str) -> Home {
        Home { id: id.into(), region: "iad".into(), quic_addr: "127.0.0.1:7420".parse().unwrap() }
    }

    #[test]
    fn a_wrong_home_is_retried_once_elsewhere() {
        let stale = home("a");
        assert_eq!(after_wrong_home(&stale, Route::Remote(home("b"))), Some(Route::Remote(home("b"))));
        assert_eq!(after_wrong_home(&stale, Route::Local), Some(Route::Local));
        assert_eq!(after_wrong_home(&stale, Route::Remote(home("a"))), None, "never the same home twice");
        assert_eq!(
            ForwardError::WrongHome.into_client("x").qualified_code(),
            "actor.not_found",
            "a home that still says no: the actor is gone"
        );
        let failed = ForwardError::Failed(ClientError::action_not_found("f"));
        assert_eq!(failed.into_client("x").qualified_code(), "actor.action_not_found");
    }
}
