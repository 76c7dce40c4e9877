//! The contract between the gateway and whatever hosts actors.
//!
//! The gateway knows nothing of storage or actor code: it parses requests, resolves targets and speaks the wire
//! encodings, and asks a [`Backend`] (implemented by the node) to do the rest. Every method returns errors from
//! the catalogue ([`ClientError`]), which the gateway forwards to clients unchanged.

use async_trait::async_trait;
use tern_proto::key::ActorKey;
use tern_proto::{ClientError, Value};

use crate::outbound::OutboundReceiver;

/// What the REST API reports about an actor. Timestamps are milliseconds since the Unix epoch.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ActorInfo {
    pub actor_id: String,
    pub name: String,
    pub key: Vec<String>,
    /// Region of the node that hosts the actor.
    pub region: String,
    pub create_ts: i64,
    pub start_ts: Option<i64>,
    pub sleep_ts: Option<i64>,
    pub destroy_ts: Option<i64>,
}

/// Where a listing of actors goes on: just past the actor created at `create_ts` with id `actor_id`. Listings run
/// newest first, actors created in the same millisecond by descending id, so a position is a total order across
/// every node's actors and a page fetched from several nodes and merged goes on from its last actor.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ListCursor {
    pub create_ts: i64,
    pub actor_id: String,
}

impl ListCursor {
    /// The position just past `actor` (the last of a page).
    pub fn after(actor: &ActorInfo) -> ListCursor {
        ListCursor { create_ts: actor.create_ts, actor_id: actor.actor_id.clone() }
    }

    /// The cursor's text as clients see it: `<create_ts>.<actor_id>`.
    pub fn encode(&self) -> String {
        format!("{}.{}", self.create_ts, self.actor_id)
    }

    /// Reads a cursor a listing handed out; `actor.invalid_request` when `text` is not one.
    pub fn parse(text: &str) -> Result<ListCursor, ClientError> {
        let invalid =
            || ClientError::invalid_request(format!("`cursor` {text:?} is not a cursor a listing handed out"));
        let (create_ts, actor_id) = text.split_once('.').ok_or_else(invalid)?;
        let create_ts = create_ts.parse().map_err(|_| invalid())?;
        if actor_id.is_empty() {
            return Err(invalid());
        }
        Ok(ListCursor { create_ts, actor_id: actor_id.to_string() })
    }
}

/// Orders actors as a listing does: newest first, then by descending id.
pub fn listing_order(a: &ActorInfo, b: &ActorInfo) -> std::cmp::Ordering {
    (b.create_ts, b.actor_id.as_str()).cmp(&(a.create_ts, a.actor_id.as_str()))
}

/// A request to create an actor (`POST /actors`, `PUT /actors`, or a `getOrCreate` gateway query).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct CreateRequest {
    pub name: String,
    /// Checked against the key limits when built, and when received from another node.
    pub key: ActorKey,
    /// The actor's input, passed to its create hooks once.
    pub input: Option<Value>,
    /// Preferred region (`datacenter` / `rvt-region`).
    pub region: Option<String>,
}

/// A connection the backend opened for a client (`/connect`).
///
/// The gateway forwards decoded client messages into `inbound` and encodes everything from `outbound` to the
/// client. Dropping `inbound` tells the backend the client went away; `outbound` ending (normally with a
/// [`ConnOutput::Close`], which cannot be lost to a full queue) tells the gateway to close the socket.
pub struct ConnectionHandle {
    pub actor_id: String,
    pub connection_id: String,
    pub inbound: crate::queue::Sender<ConnInput>,
    pub outbound: OutboundReceiver<ConnOutput>,
}

/// A client message on an open connection.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub enum ConnInput {
    Action { id: u64, name: String, args: Value },
    Subscribe { event: String, subscribe: bool },
}

/// A message for the client on an open connection.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub enum ConnOutput {
    /// The answer to [`ConnInput::Action`] with the same id.
    ActionResponse { id: u64, result: Result<Value, ClientError> },
    /// An event; `args` is an array.
    Event { name: String, args: Value },
    /// The server ends the connection with this reason. Clients that were connected reconnect on their own.
    Close(ClientError),
    /// The actor moved to another node and kept this connection (its id, parameters, state and subscriptions):
    /// whoever holds the client's socket re-binds it to the actor's new home. A cluster node's backend does so
    /// itself and never passes this on; a gateway that gets it anyway ends the connection like
    /// `Close(actor.stopping)`, and the client reconnects.
    Moved,
}

/// A raw HTTP request for an actor's request handler (`/request/...`): the method, the path after `/request`
/// (always starting with `/`) with the query (`rvt-*` parameters removed), the headers and the whole body.
pub type RawRequest = axum::http::Request<bytes::Bytes>;

/// An actor's answer to a [`RawRequest`].
pub type RawResponse = axum::http::Response<bytes::Bytes>;

/// A message on a raw WebSocket (`/websocket/...`), in either direction.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum SocketMessage {
    /// A text frame.
    Text(String),
    /// A binary frame.
    Binary(bytes::Bytes),
}

impl SocketMessage {
    /// The message's size in bytes.
    pub fn len(&self) -> usize {
        match self {
            SocketMessage::Text(text) => text.len(),
            SocketMessage::Binary(bytes) => bytes.len(),
        }
    }

    /// Whether the message is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// What the actor sends on a raw WebSocket.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum SocketOutput {
    /// A message for the client.
    Message(SocketMessage),
    /// Close the socket with this code and reason.
    Close {
        /// The close code (RFC 6455).
        code: u16,
        /// The close reason, at most 123 bytes.
        reason: String,
    },
    /// The actor moved to another node after its handler here received the socket's first `received` client
    /// messages: whoever holds the client's socket opens it again on the actor's new home (same socket id, the
    /// handler runs again there) and sends it the client's messages after those. A cluster node's backend does
    /// so itself and never passes this on; a gateway that gets it anyway closes the socket like
    /// `actor.stopping`.
    Moved {
        /// How many client messages the handler on the old home received.
        received: u64,
    },
}

impl SocketOutput {
    /// Close code of a normal closure (RFC 6455).
    pub const NORMAL: u16 = 1000;
    /// Close code for errors (RFC 6455 "internal error"; RivetKit closes every error with it).
    pub const ERROR: u16 = 1011;

    /// Closes the socket because of `err`: code 1011, reason `group.code`.
    pub fn error(err: &ClientError) -> SocketOutput {
        SocketOutput::Close { code: Self::ERROR, reason: tern_proto::error::close_reason(err) }
    }
}

/// A raw WebSocket the backend opened for a client (`/websocket/...`).
///
/// As with [`ConnectionHandle`], the gateway forwards client messages into `inbound` and relays `outbound` to the
/// client; dropping `inbound` tells the backend the client went away, and `outbound` ending (normally with a
/// [`SocketOutput::Close`]) tells the gateway to close the socket.
pub struct RawSocketHandle {
    /// The actor serving the socket.
    pub actor_id: String,
    /// The socket's id within the actor.
    pub socket_id: String,
    /// Client messages for the actor.
    pub inbound: crate::queue::Sender<SocketMessage>,
    /// What the actor sends to the client.
    pub outbound: OutboundReceiver<SocketOutput>,
}

/// One inspector operation on one actor (`/gateway/{actor}/inspector/...`).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum InspectRequest {
    /// State, connections, action names and feature flags at once.
    Summary,
    /// The state as JSON.
    State,
    /// Replace the state with this JSON value.
    PatchState(serde_json::Value),
    /// The open connections.
    Connections,
    /// The action names.
    Rpcs,
    /// The tables of the actor's database with their columns, foreign keys and row counts.
    Schema,
    /// A page of rows of one table (`limit` already clamped).
    Rows { table: String, limit: usize, offset: usize },
    /// Run one SQL statement (a read or a write) with positional (array) or named (object) parameters.
    Execute { sql: String, params: Option<Value> },
    /// Recorded spans whose start lies in `[start_ms, end_ms)`, newest first, at most `limit` (already clamped).
    Traces { start_ms: i64, end_ms: i64, limit: usize },
    /// The queue's size and its first `limit` messages (already clamped).
    Queue { limit: usize },
    /// Send a message to the actor's queue `name`.
    QueueSend { name: String, body: Value },
    /// Remove every queued message.
    QueueReset,
    /// The workflow's recorded history.
    WorkflowHistory,
    /// Forget the history from entry `entry_id` on (all of it when `None`) and run the workflow again from there.
    WorkflowReplay { entry_id: Option<i64> },
}

/// How an inspector request is authorized.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum InspectorAuth {
    /// Auth is off (development) or the request carried the admin token.
    Granted,
    /// The bearer token the request carried (possibly empty), to compare with the actor's own inspector token.
    Token(String),
}

/// A node of the cluster as `GET /cluster/members` reports it. Timestamps are milliseconds since the Unix epoch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberInfo {
    /// The node's id (its certificate's name).
    pub id: String,
    /// The node's region.
    pub region: String,
    /// The node's zone within its region, if it has one.
    pub zone: Option<String>,
    /// What the reporting node believes about it.
    pub state: MemberState,
    /// Which run of the node this is (larger for a later run).
    pub generation: u64,
    /// The public URL of its gateway.
    pub gateway_url: String,
    /// Where its peers reach it over QUIC; `None` for a node outside any cluster.
    pub quic_addr: Option<String>,
    /// Its last known load, if any arrived.
    pub load: Option<MemberLoad>,
    /// When the reporting node last saw its state or identity change.
    pub since: i64,
    /// Whether it is the reporting node.
    pub local: bool,
    /// The epoch of its liveness record in the directory (bumped each time it was taken for dead), if known.
    pub liveness_epoch: Option<u64>,
}

/// A member's state as the reporting node sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemberState {
    /// It answers probes.
    Alive,
    /// A probe went unanswered and it has not refuted the suspicion yet.
    Suspect,
    /// Declared dead, or left.
    Down,
}

impl MemberState {
    /// `alive`, `suspect` or `down`.
    pub fn as_str(self) -> &'static str {
        match self {
            MemberState::Alive => "alive",
            MemberState::Suspect => "suspect",
            MemberState::Down => "down",
        }
    }
}

/// How busy a member is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemberLoad {
    /// Actors awake in memory.
    pub awake_actors: u64,
    /// Actor databases open.
    pub open_databases: u64,
}

/// Where an actor's database lives: its home and its replicas (`GET /actors/{id}/replicas`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ReplicaSet {
    /// The home: the node that runs the actor and ships its changes.
    pub home: ReplicaInfo,
    /// The other copies (none on a single node, or for an actor that is not replicated).
    pub replicas: Vec<ReplicaInfo>,
}

/// One copy of an actor's database (camelCase in JSON: `lagFrames`, `lagBytes`, `lagMs`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReplicaInfo {
    /// The node that holds it.
    pub node: String,
    /// That node's region, if known.
    pub region: Option<String>,
    /// How far it is: `generation:frame` of the WAL stream, if known.
    pub position: Option<String>,
    /// How many WAL frames it is behind the home (0 for the home).
    pub lag_frames: Option<u64>,
    /// How many bytes of frames it is behind.
    pub lag_bytes: Option<u64>,
    /// How long ago the oldest commit it lacks was made, in milliseconds (0 when it has everything).
    pub lag_ms: Option<u64>,
    /// `home`, `streaming` (receiving frames), `bootstrapping` (no copy confirmed yet) or `stale` (its node is
    /// down).
    pub state: String,
}

/// Where a migration sends an actor: `{"region": "fra"}` (a live node there) or `{"node": "ID"}`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MigrationTarget {
    /// Any live node of this region (the actor's current node when it is already there).
    Region(String),
    /// This node.
    Node(String),
}

/// A node and its region, as a migration reports them.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct NodePlace {
    /// The node's id.
    pub node: String,
    /// The node's region.
    pub region: String,
}

/// A finished migration (`POST /actors/{id}/migrate`): the actor serves from `to` under `epoch`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Migration {
    /// The actor that moved.
    pub actor_id: String,
    /// Where it lived.
    pub from: NodePlace,
    /// Where it lives now (`from` when it was already there).
    pub to: NodePlace,
    /// The actor's epoch at its new home (it grows with every change of home).
    pub epoch: u64,
    /// How long the actor served no request, in milliseconds: from its pause on the old home until the new home
    /// took it (0 when it did not move).
    pub pause_ms: u64,
}

/// What draining a node did (`POST /cluster/nodes/{id}/drain`).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct DrainReport {
    /// The drained node.
    pub node: String,
    /// How many actors moved to other nodes.
    pub moved: u64,
    /// The actors that could not move, with why (a drain with any is incomplete: the node still hosts them).
    pub failed: Vec<(String, ClientError)>,
}

/// Hosts actors on behalf of the gateway.
#[async_trait]
pub trait Backend: Send + Sync + 'static {
    /// Names of the registered actor definitions.
    fn actor_names(&self) -> Vec<String>;
    /// The live actor with this name and key, if any.
    async fn get_actor_by_key(&self, name: &str, key: &ActorKey) -> Result<Option<ActorInfo>, ClientError>;
    /// The actors with these ids (destroyed ones included, so clients can see `destroy_ts`); unknown ids are skipped.
    async fn get_actors_by_ids(&self, ids: &[String]) -> Result<Vec<ActorInfo>, ClientError>;
    /// Live actors, optionally of one name, in listing order ([`listing_order`]), from just past `after` (from
    /// the newest without it), at most `limit`.
    async fn list_actors(
        &self,
        name: Option<&str>,
        after: Option<&ListCursor>,
        limit: usize,
    ) -> Result<Vec<ActorInfo>, ClientError>;
    /// Creates an actor; `actor.duplicate_key` if the key is taken.
    async fn create_actor(&self, req: CreateRequest) -> Result<ActorInfo, ClientError>;
    /// Returns the actor for the key, creating it if needed; the flag says whether it was created. Concurrent
    /// calls for one key yield one actor.
    async fn get_or_create_actor(&self, req: CreateRequest) -> Result<(ActorInfo, bool), ClientError>;
    /// Destroys an actor and its data; later requests get `actor.not_found`.
    async fn destroy_actor(&self, actor_id: &str) -> Result<(), ClientError>;
    /// Puts an awake actor to sleep now (its connections are closed with a retryable reason).
    async fn sleep_actor(&self, actor_id: &str) -> Result<(), ClientError>;
    /// Runs a stateless action. `params` are the connection parameters (`x-rivet-conn-params`).
    async fn call_action(
        &self,
        actor_id: &str,
        action: &str,
        args: Value,
        params: Option<Value>,
    ) -> Result<Value, ClientError>;
    /// Opens a connection, running the actor's connect hooks; fails with their error.
    async fn connect(&self, actor_id: &str, params: Option<Value>) -> Result<ConnectionHandle, ClientError>;
    /// Runs the actor's raw HTTP handler on `request` as one atomic unit of its turn, like an action; `params`
    /// are the connection parameters (`x-rivet-conn-params`). Without a handler: `handler.request_not_defined`.
    async fn raw_request(
        &self,
        actor_id: &str,
        request: RawRequest,
        params: Option<Value>,
    ) -> Result<RawResponse, ClientError>;
    /// Opens a raw WebSocket served by the actor's WebSocket handler. `request` is the upgrade request (path after
    /// `/websocket`, query without `rvt-*`, headers); `params` come from the `rivet_conn_params.*` subprotocol.
    /// Without a handler: `handler.websocket_not_defined`.
    async fn raw_websocket(
        &self,
        actor_id: &str,
        request: axum::http::Request<()>,
        params: Option<Value>,
    ) -> Result<RawSocketHandle, ClientError>;
    /// Runs an inspector operation; `inspector.unauthorized` unless `auth` grants it (constant-time comparison
    /// with the actor's own token).
    async fn inspect(
        &self,
        actor_id: &str,
        auth: InspectorAuth,
        request: InspectRequest,
    ) -> Result<serde_json::Value, ClientError>;
    /// A consistent copy of the actor's whole database file, authorized like [`Backend::inspect`].
    async fn export(&self, actor_id: &str, auth: InspectorAuth) -> Result<Vec<u8>, ClientError>;
    /// Reads the actor's KV entry at `key` (admin only): `(value, update_ts)`, or `None` when absent.
    async fn kv_get(&self, actor_id: &str, key: &[u8]) -> Result<Option<(Vec<u8>, i64)>, ClientError>;
    /// Stores a message on the actor's queue `name`. Without `wait` the answer (`completed`, no response) comes
    /// once the message is durable; with `wait` it comes when the actor completes the message (`completed` with
    /// its response) or when `wait` elapses (`timedOut`; the message stays queued).
    async fn queue_send(
        &self,
        actor_id: &str,
        name: &str,
        body: Value,
        wait: Option<std::time::Duration>,
    ) -> Result<tern_proto::messages::HttpQueueSendResponse, ClientError>;
    /// The node's metrics in Prometheus text format.
    async fn metrics(&self) -> String;
    /// Counts an HTTP request the gateway answered: `route` is the matched route's template, `status` the answer's.
    fn record_http(&self, route: &str, status: u16);
    /// Every node of the cluster this node knows, itself included, sorted by id; a node outside any cluster
    /// reports itself alone.
    async fn cluster_members(&self) -> Result<Vec<MemberInfo>, ClientError>;
    /// The actor's home and replicas, as its home reports them; `actor.not_found` for an unknown actor.
    async fn replicas(&self, actor_id: &str) -> Result<ReplicaSet, ClientError>;
    /// Moves the actor to `target` while clients keep calling it, and answers once it serves from its new home.
    /// Calls that arrive during the hand-off wait and are served by the new home; open connections stay open.
    /// Errors: `cluster.region_not_found` / `cluster.node_not_found` for a target the cluster does not have,
    /// `cluster.no_capacity` when no live node there can take it, `actor.migration_in_progress` while another
    /// move of the actor runs. An actor already there answers at once with `pause_ms` 0.
    async fn migrate(&self, actor_id: &str, target: MigrationTarget) -> Result<Migration, ClientError>;
    /// Moves every actor off node `node_id` (to other live nodes, its own region first) and reports how many
    /// moved; `cluster.node_not_found` for a node that is not a member.
    async fn drain(&self, node_id: &str) -> Result<DrainReport, ClientError>;
}
