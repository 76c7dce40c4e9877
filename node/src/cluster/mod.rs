//! The cluster: nodes in many regions that find each other, agree on where every actor lives, and route each
//! request to the actor's home.
//!
//! * [`membership`]: SWIM (foca) over the QUIC transport: who is in the cluster, alive, and how loaded;
//! * [`directory`]: the key and placement registers, CASPaxos over a static voter set;
//! * [`routing`]: the gateway's backend on a cluster node, placement of new actors, socket bridges;
//! * [`rpc`]: the inter-node protocol (services and typed calls);
//! * [`ClusterNode`]: all of it assembled for `tern node`.

pub mod directory;
pub mod membership;
mod node;
pub mod routing;
pub mod rpc;

pub use membership::{
    DEFAULT_MAX_PACKET_SIZE, Load, Member, MemberState, Members, Membership, MembershipConfig, MembershipError,
    NodeInfo, Profile, Roster, Timing, discovery,
};
pub use node::{ClusterConfig, ClusterError, ClusterNode};
pub use routing::{backend, placement};
