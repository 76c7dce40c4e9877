//! Actors arriving on this node from another (a replica promoted by failover) and leaving it (the node learns its
//! actor now lives elsewhere). The files themselves are moved by the replication layer; this is the host's side.

use tern_proto::ClientError;
use tokio::sync::oneshot;

use super::Host;
use super::command::Command;
use crate::storage::ActorRecord;
use crate::sync::lock;

impl Host {
    /// Takes `record`'s actor in: its database is already at its place under `actors/`. The actor has run its
    /// create hooks on its first home, so they do not run again; it wakes at once, to re-arm its schedules and
    /// resume its unfinished work.
    pub(crate) async fn adopt(&self, record: ActorRecord) -> Result<(), ClientError> {
        let actor_id = record.actor_id.clone();
        self.core.node_db.insert(&record).await?;
        lock(&self.core.actor_table).insert(record);
        self.turn_now(&actor_id).await
    }

    /// Lets go of an actor that lives on another node now: puts it to sleep, and removes its record and files
    /// (what it committed after its copy was taken elsewhere is discarded). Later requests here are routed to its
    /// new home.
    pub(crate) async fn release(&self, actor_id: &str) -> Result<(), ClientError> {
        let (done, stopped) = oneshot::channel();
        self.core.dispatch_if_awake(actor_id, Command::Sleep { done: Some(done) }).await;
        let _ = stopped.await;
        self.core.pool.close(actor_id);
        lock(&self.core.actor_table).remove(actor_id);
        self.core.node_db.remove_actor(actor_id).await?;
        self.core.node_db.remove_wal_stream(actor_id).await?;
        self.core.data_dir.remove_actor_files(actor_id).map_err(|e| {
            tracing::error!(actor_id, error = %e, "cannot remove the files of an actor that moved");
            ClientError::internal()
        })
    }

    /// Runs one turn of the actor now, waking it if it sleeps, so that the work done after each commit (such as
    /// ending a replication generation) happens even if nothing else writes.
    pub(crate) async fn turn_now(&self, actor_id: &str) -> Result<(), ClientError> {
        self.request(actor_id, |reply| Command::Ping { reply }).await
    }

    /// The ids of the live actors recorded on this node.
    pub(crate) fn local_actor_ids(&self) -> Vec<String> {
        lock(&self.core.actor_table).live(None, usize::MAX).into_iter().map(|e| e.record.actor_id.clone()).collect()
    }
}
