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
