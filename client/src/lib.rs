//! A Rust client for Tern, and for any server speaking RivetKit's client protocol.
//!
//! * [`Client`]: one endpoint (`http://host:port`, path prefix allowed), an [`Encoding`] (bare by default, as
//!   RivetKit's JavaScript client), a namespace, an optional bearer token and default connection parameters.
//! * [`ActorHandle`]: one actor, by key ([`Client::get`], [`Client::get_or_create`]) or by id
//!   ([`Client::get_for_id`], [`Client::create`]). Stateless actions ([`ActorHandle::action`],
//!   [`ActorHandle::call`]) are one HTTP request each to `/gateway/{actor_id}/action/{name}`.
//! * [`Connection`]: a WebSocket to `/gateway/{actor_id}/connect` with multiplexed actions, event
//!   [`Subscription`]s and reconnection when the server closes the socket with a reason (see
//!   [`ReconnectPolicy`]).
//! * Admin API ([`Client::list_actors`], [`Client::actor_by_id`], [`Client::sleep_actor`], [`Client::kv_get`],
//!   [`Client::cluster_members`]) and the [`Inspector`] of one actor ([`Client::inspector`]): state,
//!   connections, actions, traces and the actor's SQL database. Both need the node's admin token when it has one
//!   ([`ClientBuilder::token`]).
//! * [`Error`]: [`Error::Actor`] for the server's catalogue errors (`group.code`), other variants for
//!   transport and protocol failures.
//!
//! User values (arguments, outputs, event arguments, input, connection parameters) are CBOR [`Value`]s; the
//! typed helpers convert from and to serde types. Wire encodings come from `tern-proto`.
//!
//! ```no_run
//! # async fn demo() -> tern_client::Result<()> {
//! use tern_client::{Client, Encoding};
//! let client = Client::builder("http://127.0.0.1:6420").encoding(Encoding::Cbor).build()?;
//! let counter = client.get_or_create("counter", ["room-1"]);
//! let count: i64 = counter.call("increment", (5,)).await?;
//! let conn = counter.connect().await?;
//! let mut updates = conn.subscribe("count");
//! conn.call::<i64>("increment", (1,)).await?;
//! let args = updates.recv().await;
//! # Ok(()) }
//! ```

mod admin;
mod args;
mod client;
mod cluster;
mod config;
mod connection;
mod error;
mod handle;
mod http;
mod inspector;
mod key;
mod rest;
mod urls;

pub use admin::KvEntry;
pub use args::{from_value, to_args};
pub use client::Client;
pub use cluster::{ClusterMember, ClusterView, MemberLoad, NodeBuild};
pub use config::{ClientBuilder, ClientConfig, ReconnectPolicy};
pub use connection::{Connection, ConnectionState, Subscription};
pub use error::{Error, Result};
pub use handle::ActorHandle;
pub use inspector::{
    ConnectionDetails, DatabaseSchema, Inspector, InspectorConnection, SpanStatus, SqlParams, StateInfo, Summary,
    TableInfo, TableRef, TraceSpan, Traces,
};
pub use key::ActorKey;
pub use rest::{Actor, CreateOptions};
pub use tern_proto::messages::HttpQueueSendResponse;
pub use tern_proto::{ClientError, Encoding, Value};
