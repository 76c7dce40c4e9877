//! What the cluster keeps in `node.db`: the acceptor state of each directory register (opaque bytes to storage),
//! node settings that must not change between runs (the voter set), and the cluster creates still in flight.

use libsql::params;
use tern_proto::ClientError;

use super::NodeDb;

impl NodeDb {
    /// The stored acceptor state of register `name`, if any.
    pub async fn register(&self, name: &str) -> Result<Option<Vec<u8>>, ClientError> {
        let conn = self.conn.lock().await;
        let mut rows =
            conn.query("SELECT state FROM registers WHERE name = ?1", [name]).await.map_err(|e| self.failed(e))?;
        match rows.next().await.map_err(|e| self.failed(e))? {
            Some(row) => Ok(Some(row.get(0).map_err(|e| self.failed(e))?)),
            None => Ok(None),
        }
    }

    /// Stores the acceptor state of register `name`, durably (fsynced: a voter that forgot a promise after a
    /// power loss could let two values be chosen) before it returns.
    pub async fn set_register(&self, name: &str, state: Vec<u8>) -> Result<(), ClientError> {
        let conn = self.conn.lock().await;
        conn.execute("PRAGMA synchronous=FULL", ()).await.map_err(|e| self.failed(e))?;
        let stored =
            conn.execute("INSERT OR REPLACE INTO registers (name, state) VALUES (?1, ?2)", params![name, state]).await;
        conn.execute("PRAGMA synchronous=NORMAL", ()).await.map_err(|e| self.failed(e))?;
        stored.map_err(|e| self.failed(e))?;
        Ok(())
    }

    /// The setting `name`, if it was ever set.
    pub async fn setting(&self, name: &str) -> Result<Option<String>, libsql::Error> {
        let conn = self.conn.lock().await;
        let mut rows = conn.query("SELECT value FROM settings WHERE name = ?1", [name]).await?;
        match rows.next().await? {
            Some(row) => Ok(Some(row.get(0)?)),
            None => Ok(None),
        }
    }

    /// Sets the setting `name`.
    pub async fn set_setting(&self, name: &str, value: &str) -> Result<(), libsql::Error> {
        let conn = self.conn.lock().await;
        conn.execute("INSERT OR REPLACE INTO settings (name, value) VALUES (?1, ?2)", params![name, value]).await?;
        Ok(())
    }
}

impl NodeDb {
    /// Notes that a cluster create of `actor_id` has begun: its local record may exist before the directory has
    /// bound its key. Written before the record itself.
    pub async fn add_pending(&self, actor_id: &str) -> Result<(), ClientError> {
        let conn = self.conn.lock().await;
        conn.execute("INSERT OR IGNORE INTO pending_creates (actor_id) VALUES (?1)", [actor_id])
            .await
            .map_err(|e| self.failed(e))?;
        Ok(())
    }

    /// Notes that the create of `actor_id` is settled (its key bound to it, or the actor abandoned).
    pub async fn clear_pending(&self, actor_id: &str) -> Result<(), ClientError> {
        let conn = self.conn.lock().await;
        conn.execute("DELETE FROM pending_creates WHERE actor_id = ?1", [actor_id])
            .await
            .map_err(|e| self.failed(e))?;
        Ok(())
    }

    /// The creates that were never settled (the node stopped in the middle of them).
    pub async fn pending(&self) -> Result<Vec<String>, ClientError> {
        let conn = self.conn.lock().await;
        let mut rows = conn.query("SELECT actor_id FROM pending_creates", ()).await.map_err(|e| self.failed(e))?;
        let mut ids = Vec::new();
        while let Some(row) = rows.next().await.map_err(|e| self.failed(e))? {
            ids.push(row.get(0).map_err(|e| self.failed(e))?);
        }
        Ok(ids)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::Metrics;

    /// The state a test stores in register `name` at `round`.
    fn state(name: &str, round: u32) -> Vec<u8> {
        format!("{name}@{round}").into_bytes()
    }

    /// `synchronous` on the node database's connection (1 NORMAL, 2 FULL).
    async fn synchronous(db: &NodeDb) -> i64 {
        let conn = db.conn.lock().await;
        let mut rows = conn.query("PRAGMA synchronous", ()).await.unwrap();
        rows.next().await.unwrap().unwrap().get(0).unwrap()
    }

    /// Registers written over and over in a real `node.db` (WAL mode), the handle then abandoned without a close
    /// (as a crash leaves it: no checkpoint, the states only in the WAL), and the file opened again: every register
    /// holds the last state it acknowledged, and one never written holds none. Each write switches the connection
    /// to `synchronous=FULL` for itself only: the node's other writes stay `NORMAL`.
    #[tokio::test]
    async fn acknowledged_register_states_survive_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("node.db");
        let names = ["key/counter/a", "actor/0123456789abcdef0123456789abcdef", "liveness/iad-1"];
        let db = NodeDb::open(&path, Metrics::new("local")).await.unwrap();
        for round in 0..40 {
            for name in names {
                db.set_register(name, state(name, round)).await.unwrap();
                assert_eq!(db.register(name).await.unwrap(), Some(state(name, round)));
            }
        }
        assert_eq!(synchronous(&db).await, 1, "the connection is back to NORMAL for the node's other writes");
        db.set_setting("voters", "iad-1@127.0.0.1:7420").await.unwrap();
        let wal = std::fs::metadata(dir.path().join("node.db-wal")).unwrap().len();
        assert!(wal > 0, "the states are in the write-ahead log, not yet checkpointed");
        std::mem::forget(db);

        let reopened = NodeDb::open(&path, Metrics::new("local")).await.unwrap();
        for name in names {
            assert_eq!(reopened.register(name).await.unwrap(), Some(state(name, 39)), "{name}");
        }
        assert_eq!(reopened.register("key/counter/never").await.unwrap(), None);
        assert_eq!(reopened.setting("voters").await.unwrap().as_deref(), Some("iad-1@127.0.0.1:7420"));
    }
}
