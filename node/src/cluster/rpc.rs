//! The messages nodes send each other on the QUIC transport's request/response channel and streams, encoded as
//! CBOR. Directory votes, forwarded client calls and cache invalidations share one request enum; each request
//! has one reply type, which the caller knows from what it sent.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use tern_gateway::backend::{CreateRequest, InspectRequest, InspectorAuth};
use tern_proto::{ClientError, Value};
use tern_replication::Transport;

use super::directory::paxos::{Ballot, RegisterValue};

/// A request from one node to another.
#[derive(Debug, Serialize, Deserialize)]
pub enum PeerRequest {
    /// Directory: what the voter accepted for `register` (reply: `(Ballot, RegisterValue)`).
    Read { register: String },
    /// Directory: promise `ballot` for `register` (reply: [`PrepareReply`](super::directory::paxos::PrepareReply)).
    Prepare { register: String, ballot: Ballot },
    /// Directory: accept `value` under `ballot` (reply: [`AcceptReply`](super::directory::paxos::AcceptReply)).
    Accept {
        register: String,
        ballot: Ballot,
        #[serde(with = "serde_bytes")]
        value: RegisterValue,
    },
    /// A client call for an actor this node is asked to host or serve (reply: `Result<CallReply, ClientError>`).
    Call(Call),
    /// The QUIC addresses of the members this node sees live, itself included (reply: `Vec<SocketAddr>`).
    Members,
    /// Forget what the cache says about this actor (reply: `()`).
    Forget { actor_id: String, name: String, key: Vec<String> },
}

/// A client call forwarded to the node that hosts (or is to host) the actor.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum Call {
    /// Create an actor here (the receiving node is the chosen home); with `reuse`, an existing one is returned.
    Create {
        request: CreateRequest,
        reuse: bool,
    },
    /// The actors with these ids that live here.
    Infos {
        actor_ids: Vec<String>,
    },
    /// This node's live actors.
    List {
        name: Option<String>,
        limit: usize,
    },
    Destroy {
        actor_id: String,
    },
    Sleep {
        actor_id: String,
    },
    Action {
        actor_id: String,
        action: String,
        args: Value,
        params: Option<Value>,
    },
    RawRequest {
        actor_id: String,
        request: WireRequest,
        params: Option<Value>,
    },
    Inspect {
        actor_id: String,
        auth: InspectorAuth,
        request: InspectRequest,
    },
    Export {
        actor_id: String,
        auth: InspectorAuth,
    },
    KvGet {
        actor_id: String,
        #[serde(with = "serde_bytes")]
        key: Vec<u8>,
    },
    QueueSend {
        actor_id: String,
        name: String,
        body: Value,
        wait_ms: Option<u64>,
    },
}

/// The answer to a [`Call`].
#[derive(Debug, Serialize, Deserialize)]
pub enum CallReply {
    Created { info: tern_gateway::backend::ActorInfo, created: bool },
    Infos(Vec<tern_gateway::backend::ActorInfo>),
    Done,
    Value(Value),
    Response(WireResponse),
    Json(String),
    Bytes(#[serde(with = "serde_bytes")] Vec<u8>),
    Kv(Option<(serde_bytes::ByteBuf, i64)>),
    Queue(tern_proto::messages::HttpQueueSendResponse),
}

/// An HTTP request (raw `/request` calls, or the upgrade request of a raw WebSocket) as it crosses nodes.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct WireRequest {
    pub method: String,
    pub uri: String,
    pub headers: Vec<(String, serde_bytes::ByteBuf)>,
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
    pub headers: Vec<(String, serde_bytes::ByteBuf)>,
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

fn headers_to_wire(headers: &axum::http::HeaderMap) -> Vec<(String, serde_bytes::ByteBuf)> {
    headers
        .iter()
        .map(|(name, value)| (name.as_str().to_string(), serde_bytes::ByteBuf::from(value.as_bytes())))
        .collect()
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

/// Sends `request` to the node at `addr` and decodes its reply, within `timeout`. Transport failures and remote
/// handler errors come back as text.
pub async fn ask<T: DeserializeOwned>(
    transport: &Transport,
    addr: SocketAddr,
    request: &PeerRequest,
    timeout: Duration,
) -> Result<T, String> {
    let reply = transport.request_with_timeout(addr, encode(request), timeout).await.map_err(|e| e.to_string())?;
    decode(&reply)
}
