//! Routing: where each request for an actor is served. The [`backend`] serves the gateway's contract on a cluster
//! node (locally, or one QUIC hop away at the actor's home), [`placement`] picks the home of a new actor, and the
//! bridge carries a client's WebSocket to its actor's home as one QUIC stream; [`follow`] keeps a client's
//! connection open when its actor moves.

pub mod backend;
pub(crate) mod bridge;
pub(crate) mod follow;
pub mod placement;
