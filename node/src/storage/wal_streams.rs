//! What `node.db` records about each replicated database this node holds: as the home (its generation, where the
//! previous one ended, its replicas) or as a replica (its position and its home), so streams resume after a
//! restart.

use libsql::params;
use tern_proto::ClientError;
use tern_replication::wal::{Position, WalState};

use super::NodeDb;

/// Which copy of an actor's database this node holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StreamRole {
    /// The actor lives here; `peers` are its replicas.
    Home,
    /// A copy of another node's actor; `peers` is its home.
    Replica,
}

impl StreamRole {
    fn as_str(self) -> &'static str {
        match self {
            StreamRole::Home => "home",
            StreamRole::Replica => "replica",
        }
    }
}

/// One row of `wal_streams`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StreamRecord {
    /// This node's copy.
    pub role: StreamRole,
    /// The stream's state at this copy.
    pub state: WalState,
    /// The replicas' node ids (home), or the home's (replica).
    pub peers: Vec<String>,
}

impl NodeDb {
    /// The recorded stream of `actor_id`'s database, if this node holds a replicated copy.
    pub async fn wal_stream(&self, actor_id: &str) -> Result<Option<StreamRecord>, ClientError> {
        let conn = self.conn.lock().await;
        let sql = "SELECT role, generation, frame, prev_generation, prev_frame, peers FROM wal_streams \
                   WHERE actor_id = ?1";
        let mut rows = conn.query(sql, [actor_id]).await.map_err(|e| self.failed(e))?;
        let Some(row) = rows.next().await.map_err(|e| self.failed(e))? else { return Ok(None) };
        let get = |i| row.get::<i64>(i).map_err(|e| self.failed(e));
        let role = match row.get::<String>(0).map_err(|e| self.failed(e))?.as_str() {
            "home" => StreamRole::Home,
            _ => StreamRole::Replica,
        };
        let state = WalState {
            generation: get(1)? as u64,
            frame: get(2)? as u32,
            previous_end: Position::new(get(3)? as u64, get(4)? as u32),
        };
        let peers: String = row.get(5).map_err(|e| self.failed(e))?;
        let peers = peers.split(',').filter(|p| !p.is_empty()).map(str::to_string).collect();
        Ok(Some(StreamRecord { role, state, peers }))
    }

    /// Records the stream of `actor_id`'s database (replacing what was recorded).
    pub async fn set_wal_stream(&self, actor_id: &str, record: &StreamRecord) -> Result<(), ClientError> {
        let conn = self.conn.lock().await;
        let StreamRecord { role, state, peers } = record;
        conn.execute(
            "INSERT OR REPLACE INTO wal_streams \
             (actor_id, role, generation, frame, prev_generation, prev_frame, peers) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![
                actor_id,
                role.as_str(),
                state.generation as i64,
                i64::from(state.frame),
                state.previous_end.generation as i64,
                i64::from(state.previous_end.frame),
                peers.join(","),
            ],
        )
        .await
        .map_err(|e| self.failed(e))?;
        Ok(())
    }

    /// Every replica this node holds: (actor id, its home's node id).
    pub async fn replica_streams(&self) -> Result<Vec<(String, String)>, ClientError> {
        let conn = self.conn.lock().await;
        let mut rows = conn
            .query("SELECT actor_id, peers FROM wal_streams WHERE role = 'replica'", ())
            .await
            .map_err(|e| self.failed(e))?;
        let mut out = Vec::new();
        while let Some(row) = rows.next().await.map_err(|e| self.failed(e))? {
            let actor_id: String = row.get(0).map_err(|e| self.failed(e))?;
            let peers: String = row.get(1).map_err(|e| self.failed(e))?;
            if let Some(home) = peers.split(',').next().filter(|h| !h.is_empty()) {
                out.push((actor_id, home.to_string()));
            }
        }
        Ok(out)
    }

    /// Forgets the stream of `actor_id` (its copy here was removed).
    pub async fn remove_wal_stream(&self, actor_id: &str) -> Result<(), ClientError> {
        let conn = self.conn.lock().await;
        conn.execute("DELETE FROM wal_streams WHERE actor_id = ?1", [actor_id]).await.map_err(|e| self.failed(e))?;
        Ok(())
    }
}
