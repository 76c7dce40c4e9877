//! The replication service's calls: frames, generation changes and snapshot chunks from a home to its replicas,
//! and a replica's position.

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use tern_replication::Service;
use tern_replication::wal::{Position, Snapshot, WalState};

use crate::cluster::rpc::{PeerCall, peer_call, service};

/// The replication service's calls.
#[derive(Debug, Serialize, Deserialize)]
pub enum ReplicationMessage {
    Frames(ShipFrames),
    Snapshot(ShipSnapshot),
    Position(AskPosition),
    Advance(AdvanceCopy),
}

/// Move the replica of `actor_id` homed on `home` to the generation `state` its home started without frames (the
/// home checkpointed and has committed nothing since): the replica checkpoints the same frames into its file.
#[derive(Debug, Serialize, Deserialize)]
pub struct AdvanceCopy {
    pub actor_id: String,
    pub home: String,
    pub state: WalState,
}
peer_call!(AdvanceCopy => ReplicationMessage::Advance, service::REPLICATION, Result<WalState, Refusal>);

/// Apply one encoded [`tern_replication::wal::Batch`] to the replica of `actor_id` homed on `home`.
#[derive(Debug, Serialize, Deserialize)]
pub struct ShipFrames {
    pub actor_id: String,
    pub home: String,
    pub batch: Bytes,
}
peer_call!(ShipFrames => ReplicationMessage::Frames, service::REPLICATION, Result<WalState, Refusal>);

/// One chunk of a snapshot of `actor_id`'s database, at `offset`.
#[derive(Debug, Serialize, Deserialize)]
pub struct ShipSnapshot {
    pub actor_id: String,
    pub home: String,
    pub snapshot: Snapshot,
    pub offset: u64,
    pub chunk: Bytes,
}
peer_call!(ShipSnapshot => ReplicationMessage::Snapshot, service::REPLICATION, Result<SnapshotProgress, Refusal>);

/// Where the replica of `actor_id` is (`None`: this node has no copy; `Busy`: the actor still lives on this node,
/// which is handing it over).
#[derive(Debug, Serialize, Deserialize)]
pub struct AskPosition {
    pub actor_id: String,
}
peer_call!(AskPosition => ReplicationMessage::Position, service::REPLICATION, Result<Option<WalState>, Refusal>);

/// How far a snapshot got.
#[derive(Debug, Serialize, Deserialize)]
pub enum SnapshotProgress {
    /// This many bytes are here; send from there.
    Receiving { received: u64 },
    /// The copy is checked and installed: the replica is at this state.
    Installed(WalState),
}

/// Why a replica did not apply what it was sent. Each case tells the home what to do next.
#[derive(Debug, Serialize, Deserialize, thiserror::Error)]
pub enum Refusal {
    /// The batch does not follow the replica: resend from `at`.
    #[error("the replica is at {at}")]
    Gap { at: Position },
    /// The replica has no usable copy (none, or one that diverged): send a snapshot.
    #[error("the replica needs a snapshot")]
    NeedsSnapshot,
    /// The replica is busy (a reader holds its WAL, a snapshot is being installed, or the actor still lives there
    /// while its old home hands it over): retry shortly.
    #[error("the replica is busy")]
    Busy,
    /// What was sent failed its checks on the wire: resend.
    #[error("corrupt replication data: {0}")]
    Corrupt(String),
    /// The replica's node failed (a disk error): retry later.
    #[error("the replica failed: {0}")]
    Failed(String),
}
