//! The one point where the runtime meets replication: between an actor's commit and its replies.

use tern_gateway::backend::ReplicaSet;
use tern_proto::ClientError;

use crate::sdk::definition::BoxFuture;
use crate::storage::ActorDb;

/// What the node does with an actor's database as the runtime uses it (implemented by [`crate::replica`] on a
/// cluster node; a single node has none). Both calls run on the actor's own task, between its statements, so they
/// may use the database's connection.
pub(crate) trait Replicator: Send + Sync {
    /// The actor's database is open for a turn and nothing has written to it yet. A replicated database takes its
    /// checkpoints over here, before anything could checkpoint it.
    fn opened(&self, actor_id: &str, db: &ActorDb) -> BoxFuture<Result<(), ClientError>>;

    /// A turn committed. Its replies and events leave when the returned future resolves: at once in `async` mode,
    /// once a replica in another failure domain holds the commit in `sync` mode (an error fails the turn's replies;
    /// the commit itself stands).
    fn committed(&self, actor_id: &str, db: &ActorDb) -> BoxFuture<Result<(), ClientError>>;

    /// The home (this node) and replicas of an actor homed here.
    fn replica_set(&self, actor_id: &str) -> BoxFuture<ReplicaSet>;
}
