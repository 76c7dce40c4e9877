//! The inter-node protocol on the QUIC transport's requests and streams, encoded as CBOR.
//!
//! Every request goes to one [`service`] of the peer, which registered its own handler with the transport:
//! the directory's votes and cache invalidations, forwarded client calls, membership's member list, and socket
//! bridges (streams). A request is a [`PeerCall`]: its type names the service's message it travels in and the
//! reply it gets, so [`ask`] returns exactly that reply and a handler can only answer with it ([`answer`]).

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_bytes::ByteBuf;
use tern_gateway::backend::{
    ActorInfo, CreateRequest, DrainReport, InspectRequest, InspectorAuth, Migration, MigrationTarget, ReplicaSet,
};
use tern_proto::messages::HttpQueueSendResponse;
use tern_proto::{ClientError, Value};
use tern_replication::{Service, Transport};

use super::directory::paxos::{AcceptReply, Ballot, PrepareReply, RegisterValue};

/// The services every node serves, by their tags on the wire (inter-node protocol version 2).
pub mod service {
    use tern_replication::Service;

    /// The directory: Paxos votes on key and placement registers, and cache invalidations.
    pub const DIRECTORY: Service = Service(1);
    /// Client calls forwarded to the node that hosts (or is to host) an actor.
    pub const CALLS: Service = Service(2);
    /// Membership: the member list a joining node pulls.
    pub const MEMBERSHIP: Service = Service(3);
    /// Socket bridges: a client's WebSocket as one stream to the actor's home.
    pub const BRIDGE: Service = Service(4);
    /// Replication: WAL frames and snapshots from a home to its replicas (see [`crate::replica`]).
    pub const REPLICATION: Service = Service(5);
    /// Hand-offs: a home asking a node to take an actor over (see [`crate::handoff`]).
    pub const HANDOFF: Service = Service(6);
}

/// A request to a peer's service, and the reply it gets.
pub trait PeerCall: Serialize + Into<Self::Message> {
    /// The message the service decodes (its calls, as one enum).
    type Message: Serialize + DeserializeOwned;
    /// What the peer answers.
    type Reply: Serialize + DeserializeOwned;
    /// The service that answers it.
    const SERVICE: Service;
}

/// A failed [`ask`]: the transport failed (or the peer's handler did), or the reply did not decode.
#[derive(Debug, thiserror::Error)]
pub enum PeerError {
    /// The call did not reach the peer's handler, or the handler failed.
    #[error(transparent)]
    Transport(#[from] tern_replication::Error),
    /// The peer answered something that is not the call's reply.
    #[error("{0}")]
    Malformed(String),
}

/// Sends `call` to its service on the node at `addr` and decodes its reply, within `timeout`.
pub async fn ask<C: PeerCall>(
    transport: &Transport,
    addr: SocketAddr,
    call: C,
    timeout: Duration,
) -> Result<C::Reply, PeerError> {
    let message: C::Message = call.into();
    let reply = transport.request_with_timeout(addr, C::SERVICE, encode(&message), timeout).await?;
    decode(&reply).map_err(PeerError::Malformed)
}

/// The encoded reply to a call of type `C` (`answer::<C>(&reply)`): only `C`'s own reply type fits.
pub fn answer<C: PeerCall>(reply: &C::Reply) -> Bytes {
    encode(reply)
}

/// Declares that `$call` travels in `$message`'s variant `$variant` to `$service` and gets `$reply`.
macro_rules! peer_call {
    ($call:ident => $message:ident::$variant:ident, $service:expr, $reply:ty) => {
        impl PeerCall for $call {
            type Message = $message;
            type Reply = $reply;
            const SERVICE: Service = $service;
        }
        impl From<$call> for $message {
            fn from(call: $call) -> $message {
                $message::$variant(call)
            }
        }
    };
}
pub(crate) use peer_call;

/// The directory service's calls.
#[derive(Debug, Serialize, Deserialize)]
pub enum DirectoryMessage {
    Read(ReadRegister),
    Prepare(PrepareBallot),
    Accept(AcceptValue),
    Forget(ForgetActor),
}

/// What the voter accepted for `register`.
#[derive(Debug, Serialize, Deserialize)]
pub struct ReadRegister {
    pub register: String,
}
peer_call!(ReadRegister => DirectoryMessage::Read, service::DIRECTORY, (Ballot, RegisterValue));

/// Promise `ballot` for `register`.
#[derive(Debug, Serialize, Deserialize)]
pub struct PrepareBallot {
    pub register: String,
    pub ballot: Ballot,
}
peer_call!(PrepareBallot => DirectoryMessage::Prepare, service::DIRECTORY, PrepareReply);

/// Accept `value` for `register` under `ballot`.
#[derive(Debug, Serialize, Deserialize)]
pub struct AcceptValue {
    pub register: String,
    pub ballot: Ballot,
    #[serde(with = "serde_bytes")]
    pub value: RegisterValue,
}
peer_call!(AcceptValue => DirectoryMessage::Accept, service::DIRECTORY, AcceptReply);

/// Forget what the cache says about this (destroyed) actor.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ForgetActor {
    pub actor_id: String,
    pub name: String,
    pub key: Vec<String>,
    /// The actor was destroyed (not moved): its replicas' copies go too.
    #[serde(default)]
    pub destroyed: bool,
}
peer_call!(ForgetActor => DirectoryMessage::Forget, service::DIRECTORY, ());

/// The membership service's calls.
#[derive(Debug, Serialize, Deserialize)]
pub enum MembershipMessage {
    Members(PullMembers),
}

/// The QUIC addresses of the members the peer sees live, itself included.
#[derive(Debug, Serialize, Deserialize)]
pub struct PullMembers;
peer_call!(PullMembers => MembershipMessage::Members, service::MEMBERSHIP, Vec<SocketAddr>);

/// The calls service's calls: client calls forwarded to the node that hosts (or is to host) the actor, one type
/// each, with its own reply.
#[derive(Debug, Serialize, Deserialize)]
pub enum CallsMessage {
    Create(ForwardCreate),
    List(ForwardList),
    Destroy(ForwardDestroy),
    Sleep(ForwardSleep),
    Action(ForwardAction),
    RawRequest(ForwardRawRequest),
    Inspect(ForwardInspect),
    Export(ForwardExport),
    KvGet(ForwardKvGet),
    QueueSend(ForwardQueueSend),
    Replicas(ForwardReplicas),
    Migrate(ForwardMigrate),
    Drain(ForwardDrain),
}

/// A client call forwarded to the node that hosts (or is to host) an actor: the peer answers with the call's
/// own output, or with why it did not serve the call.
pub trait ForwardedCall:
    PeerCall<Message = CallsMessage, Reply = Result<<Self as ForwardedCall>::Output, CallRefusal>> + Clone
{
    /// What the call returns when it is served.
    type Output;

    /// The actor the call is for, if it is for one (not a create or a listing).
    fn actor_id(&self) -> Option<&str>;
}

/// Why a node did not serve a forwarded call.
#[derive(Debug, Serialize, Deserialize)]
pub enum CallRefusal {
    /// It ran the call, which failed for the client (the actor's error, or the node's).
    Failed(ClientError),
    /// It does not host the actor, so the caller's route is stale; `home` and `epoch` are the node's own
    /// directory cache's view of the actor's placement, if it has one. The caller looks the placement up afresh.
    WrongHome { home: Option<String>, epoch: Option<u64> },
}

/// Declares that `$call` travels in [`CallsMessage`]'s variant `$variant` and is answered with `$output`, and
/// whether it is for the actor in its `actor_id` field (`actor`) or for the node (`node`).
macro_rules! forwarded_call {
    ($call:ident => $variant:ident, $output:ty, actor) => {
        forwarded_call!(@impl $call => $variant, $output, |call| Some(&call.actor_id));
    };
    ($call:ident => $variant:ident, $output:ty, node) => {
        forwarded_call!(@impl $call => $variant, $output, |_call| None);
    };
    (@impl $call:ident => $variant:ident, $output:ty, |$this:ident| $actor_id:expr) => {
        peer_call!($call => CallsMessage::$variant, service::CALLS, Result<$output, CallRefusal>);
        impl ForwardedCall for $call {
            type Output = $output;
            fn actor_id(&self) -> Option<&str> {
                let $this = self;
                $actor_id
            }
        }
    };
}

/// Create an actor on the peer (the chosen home); with `reuse`, an existing one for the key is returned instead.
/// Answered with the actor and whether it was created.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ForwardCreate {
    pub request: CreateRequest,
    pub reuse: bool,
}
forwarded_call!(ForwardCreate => Create, (ActorInfo, bool), node);

/// The peer's live actors (named `name`, if given), at most `limit`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ForwardList {
    pub name: Option<String>,
    /// Where the listing goes on (from the newest without it).
    pub after: Option<tern_gateway::backend::ListCursor>,
    pub limit: usize,
}
forwarded_call!(ForwardList => List, Vec<ActorInfo>, node);

/// Destroy the actor.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ForwardDestroy {
    pub actor_id: String,
}
forwarded_call!(ForwardDestroy => Destroy, (), actor);

/// Put the actor to sleep.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ForwardSleep {
    pub actor_id: String,
}
forwarded_call!(ForwardSleep => Sleep, (), actor);

/// A stateless action; answered with its output.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ForwardAction {
    pub actor_id: String,
    pub action: String,
    pub args: Value,
    pub params: Option<Value>,
}
forwarded_call!(ForwardAction => Action, Value, actor);

/// A raw HTTP request for the actor's request handler; answered with its response.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ForwardRawRequest {
    pub actor_id: String,
    pub request: WireRequest,
    pub params: Option<Value>,
}
forwarded_call!(ForwardRawRequest => RawRequest, WireResponse, actor);

/// An inspector operation; answered with its JSON result, as text.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ForwardInspect {
    pub actor_id: String,
    pub auth: InspectorAuth,
    pub request: InspectRequest,
}
forwarded_call!(ForwardInspect => Inspect, String, actor);

/// A copy of the actor's database file.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ForwardExport {
    pub actor_id: String,
    pub auth: InspectorAuth,
}
forwarded_call!(ForwardExport => Export, ByteBuf, actor);

/// The value of a key in the actor's KV store and when it was written.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ForwardKvGet {
    pub actor_id: String,
    #[serde(with = "serde_bytes")]
    pub key: Vec<u8>,
}
forwarded_call!(ForwardKvGet => KvGet, Option<(ByteBuf, i64)>, actor);

/// A message for the actor's queue `name`, waiting up to `wait_ms` for its completion when set.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ForwardQueueSend {
    pub actor_id: String,
    pub name: String,
    pub body: Value,
    pub wait_ms: Option<u64>,
}
forwarded_call!(ForwardQueueSend => QueueSend, HttpQueueSendResponse, actor);

/// The actor's home and replicas, as its home knows them.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ForwardReplicas {
    pub actor_id: String,
}
forwarded_call!(ForwardReplicas => Replicas, ReplicaSet, actor);

/// Move the actor to `target`; answered once it serves from its new home.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ForwardMigrate {
    pub actor_id: String,
    pub target: MigrationTarget,
}
forwarded_call!(ForwardMigrate => Migrate, Migration, actor);

/// Move every actor off the peer; answered once they moved (or failed to).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ForwardDrain;
forwarded_call!(ForwardDrain => Drain, DrainReport, node);

/// An HTTP request (raw `/request` calls, or the upgrade request of a raw WebSocket) as it crosses nodes.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct WireRequest {
    pub method: String,
    pub uri: String,
    pub headers: Vec<(String, ByteBuf)>,
    #[serde(with = "serde_bytes")]
    pub body: Vec<u8>,
}

impl WireRequest {
    /// Captures a request.
    pub fn from_http<B: AsRef<[u8]>>(request: &axum::http::Request<B>) -> Self {
        WireRequest {
            method: request.method().as_str().to_string(),
            uri: request.uri().to_string(),
            headers: headers_to_wire(request.headers()),
            body: request.body().as_ref().to_vec(),
        }
    }

    /// Rebuilds the request with the body `body` maps it to.
    pub fn into_http<B>(self, body: impl FnOnce(Vec<u8>) -> B) -> Result<axum::http::Request<B>, ClientError> {
        let mut builder = axum::http::Request::builder().method(self.method.as_str()).uri(self.uri.as_str());
        for (name, value) in &self.headers {
            builder = builder.header(name.as_str(), value.as_slice());
        }
        builder.body(body(self.body)).map_err(|e| ClientError::invalid_request(format!("forwarded request: {e}")))
    }
}

/// An HTTP response as it crosses nodes.
#[derive(Debug, Serialize, Deserialize)]
pub struct WireResponse {
    pub status: u16,
    pub headers: Vec<(String, ByteBuf)>,
    #[serde(with = "serde_bytes")]
    pub body: Vec<u8>,
}

impl WireResponse {
    /// Captures a response.
    pub fn from_http(response: &axum::http::Response<Bytes>) -> Self {
        WireResponse {
            status: response.status().as_u16(),
            headers: headers_to_wire(response.headers()),
            body: response.body().to_vec(),
        }
    }

    /// Rebuilds the response.
    pub fn into_http(self) -> Result<axum::http::Response<Bytes>, ClientError> {
        let mut builder = axum::http::Response::builder().status(self.status);
        for (name, value) in &self.headers {
            builder = builder.header(name.as_str(), value.as_slice());
        }
        builder
            .body(Bytes::from(self.body))
            .map_err(|e| ClientError::invalid_request(format!("forwarded response: {e}")))
    }
}

fn headers_to_wire(headers: &axum::http::HeaderMap) -> Vec<(String, ByteBuf)> {
    headers.iter().map(|(name, value)| (name.as_str().to_string(), ByteBuf::from(value.as_bytes()))).collect()
}

/// Encodes a message as CBOR.
pub fn encode<T: Serialize>(message: &T) -> Bytes {
    let mut bytes = Vec::new();
    ciborium::into_writer(message, &mut bytes).expect("inter-node messages always encode");
    Bytes::from(bytes)
}

/// Decodes a CBOR message; a malformed one is a protocol error between nodes.
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, String> {
    ciborium::from_reader(bytes).map_err(|e| format!("malformed inter-node message: {e}"))
}
