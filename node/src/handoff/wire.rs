//! The hand-off service's calls: a home asking another node to take one of its actors over.

use serde::{Deserialize, Serialize};
use tern_proto::ClientError;
use tern_replication::Service;
use tern_replication::wal::{Position, WalState};

use crate::cluster::rpc::{PeerCall, peer_call, service};
use crate::runtime::handoff::Arrival;
use crate::storage::ActorRecord;

/// The hand-off service's calls.
#[derive(Debug, Serialize, Deserialize)]
#[expect(clippy::large_enum_variant, reason = "a few messages per move, decoded and consumed at once")]
pub enum HandoffMessage {
    TakeHome(TakeHome),
    Expect(Expect),
}

/// Expect actor `actor_id` to be handed over to this node soon (its target caught up): prepare the directory
/// change that will name this node its home (its first round), so that the take-over, while the actor is paused,
/// needs one round trip to the voters instead of two. Answered once prepared, or not (a move works either way).
#[derive(Debug, Serialize, Deserialize)]
pub struct Expect {
    pub actor_id: String,
}
peer_call!(Expect => HandoffMessage::Expect, service::HANDOFF, ());

/// Take actor `record.actor_id` over from its home `from`, which paused it: this node's replica must hold exactly
/// what the home's stream `state` says (everything the actor committed), and the directory must still place the
/// actor on `from` under `epoch`. Answered with the actor's new epoch once it serves here.
#[derive(Debug, Serialize, Deserialize)]
pub struct TakeHome {
    /// The actor, as its new home records it.
    pub record: ActorRecord,
    pub from: String,
    pub epoch: u64,
    pub state: WalState,
    /// The new home's replicas (the old home among them when it keeps a copy).
    pub replicas: Vec<String>,
    pub arrival: Arrival,
    /// Why it moves (`moved iad → fra on request`, or the traffic that moved it), for the inspector summary.
    pub reason: String,
}
peer_call!(TakeHome => HandoffMessage::TakeHome, service::HANDOFF, Result<u64, HandoffRefusal>);

/// Why a node did not take an actor over. In every case the directory still places the actor where it was.
#[derive(Debug, Serialize, Deserialize, thiserror::Error)]
pub enum HandoffRefusal {
    /// This node's replica does not hold the position asked for (`None`: it has none).
    #[error("the replica is at {at:?}, not at the home's last commit")]
    Behind { at: Option<Position> },
    /// The placement changed since the hand-off began (a failover, or the home took the actor back).
    #[error("the actor's placement changed during the hand-off")]
    Moved,
    /// This node could not take it (its lease, the directory, its disk).
    #[error("{0}")]
    Failed(ClientError),
}
