//! Actors arriving on this node from another (a replica promoted by failover, or a migration) and leaving it (the
//! node learns its actor now lives elsewhere, or hands it over). The files themselves are moved by the replication
//! layer; this is the host's side.

use tern_gateway::backend::ConnOutput;
use tern_gateway::outbound::OutboundSender;
use tern_proto::ClientError;
use tokio::sync::oneshot;

use super::Host;
use super::command::Command;
use crate::storage::ActorRecord;

/// What an actor that moves here brings besides its database.
#[derive(Clone, Copy, Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct Arrival {
    /// It was awake on its previous node: it wakes here at once, and the connections it saved there wait for
    /// their clients to re-bind.
    pub awake: bool,
    /// Its alarm, if one was armed.
    pub alarm: Option<i64>,
    /// It was recorded with unfinished work (a run loop, a workflow): it wakes here to go on with it.
    pub unfinished: bool,
}

impl Host {
    /// Takes `record`'s actor in: its database is already at its place under `actors/`. The actor has run its
    /// create hooks on its first home, so they do not run again; it wakes at once, to re-arm its schedules and
    /// resume its unfinished work.
    pub(crate) async fn adopt(&self, record: ActorRecord) -> Result<(), ClientError> {
        let actor_id = record.actor_id.clone();
        self.record_arrival(record).await?;
        self.turn_now(&actor_id).await
    }

    /// Records an arriving actor as hosted here (in `node.db` and the actor table) without waking it.
    pub(crate) async fn record_arrival(&self, record: ActorRecord) -> Result<(), ClientError> {
        self.core.actor_table.insert(&self.core.node_db, record).await
    }

    /// Finishes taking in an actor recorded with [`Host::record_arrival`]: arms its alarm, records its unfinished
    /// work, and wakes it if it was awake or has work to go on with.
    pub(crate) async fn settle_arrival(&self, actor_id: &str, arrival: Arrival) -> Result<(), ClientError> {
        if arrival.alarm.is_some() {
            self.core.alarms.set(&self.core, actor_id, arrival.alarm).await?;
        }
        if arrival.unfinished {
            self.core.pending_work.record(&self.core, actor_id).await?;
        }
        if arrival.awake {
            self.core.mark_arrived(actor_id);
        }
        if arrival.awake || arrival.unfinished {
            self.turn_now(actor_id).await?;
        }
        Ok(())
    }

    /// Puts the actor to sleep for a move (requests must already be held, see
    /// [`super::host::HostCore::hold`]): its connections are saved and told to follow it. Returns whether it was
    /// awake. Once this returns, nothing writes the actor's database here.
    pub(crate) async fn pause_for_move(&self, actor_id: &str) -> bool {
        let (done, stopped) = oneshot::channel();
        let awake = self.core.dispatch_if_awake(actor_id, Command::Move { done }).await;
        let _ = stopped.await;
        // A sleep that was already under way finishes before the actor counts as paused.
        self.core.wait_stopped(actor_id).await;
        awake
    }

    /// What an actor about to leave brings with it: its alarm and whether it has unfinished work.
    pub(crate) fn departure(&self, actor_id: &str, awake: bool) -> Arrival {
        Arrival { awake, alarm: self.core.alarms.armed(actor_id), unfinished: self.core.pending_work.has(actor_id) }
    }

    /// Forgets an actor (asleep) that now lives on another node: its record, alarm and unfinished-work marks go;
    /// its files stay for the replication layer to keep as a replica or remove.
    pub(crate) async fn forget_departed(&self, actor_id: &str) -> Result<(), ClientError> {
        self.core.pool.close(actor_id);
        self.core.alarms.forget(actor_id);
        self.core.pending_work.drop_in_memory(actor_id);
        self.core.actor_table.remove(&self.core.node_db, actor_id).await
    }

    /// Lets go of an actor that lives on another node now: puts it to sleep, and removes its record and files
    /// (what it committed after its copy was taken elsewhere is discarded). Later requests here are routed to its
    /// new home.
    pub(crate) async fn release(&self, actor_id: &str) -> Result<(), ClientError> {
        let (done, stopped) = oneshot::channel();
        self.core.dispatch_if_awake(actor_id, Command::Sleep { done: Some(done) }).await;
        let _ = stopped.await;
        self.core.wait_stopped(actor_id).await;
        self.forget_departed(actor_id).await?;
        self.core.node_db.remove_wal_stream(actor_id).await?;
        self.core.data_dir.remove_actor_files(actor_id).map_err(|e| {
            tracing::error!(actor_id, error = %e, "cannot remove the files of an actor that moved");
            ClientError::internal()
        })
    }

    /// Binds connection `conn_id`, which came with its actor from another node, to `outbound` (the client's
    /// side re-binding after the move). `actor.stopping` when no such connection waits here.
    pub(crate) async fn resume_connection(
        &self,
        actor_id: &str,
        conn_id: &str,
        outbound: OutboundSender<ConnOutput>,
    ) -> Result<(), ClientError> {
        let conn_id = conn_id.to_string();
        self.request(actor_id, |reply| Command::Resume { conn_id, outbound, reply }).await
    }

    /// Runs one turn of the actor now, waking it if it sleeps, so that the work done after each commit (such as
    /// ending a replication generation) happens even if nothing else writes.
    pub(crate) async fn turn_now(&self, actor_id: &str) -> Result<(), ClientError> {
        self.request(actor_id, |reply| Command::Ping { reply }).await
    }

    /// The ids of the live actors recorded on this node (read from `node.db`: every one, however many).
    pub(crate) async fn local_actor_ids(&self) -> Result<Vec<String>, ClientError> {
        self.core.node_db.live_ids().await
    }
}
