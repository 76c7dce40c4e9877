//! The node-to-node transport: QUIC endpoints with mutual TLS from a cluster CA, protocol versions by ALPN, and
//! requests, streams and datagrams routed to the services a node registers.

pub(crate) mod ca;
pub(crate) mod config;
pub(crate) mod endpoint;
pub(crate) mod error;
pub(crate) mod peers;
mod serve;
pub(crate) mod service;
mod tls;
pub(crate) mod version;
pub(crate) mod wire;
