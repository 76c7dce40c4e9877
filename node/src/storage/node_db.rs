//! The node's own metadata database (`node.db`): which actors this node hosts, their alarms, and which of them
//! have unfinished work to resume when the node starts.
//!
//! Every create and destroy is committed here before it is acknowledged. A (name, key) pair has at most one
//! live actor, enforced by a partial unique index.

use std::path::Path;

use libsql::{Connection, params};
use tern_proto::key::{deserialize_key, serialize_key};
use tokio::sync::Mutex;

use tern_proto::ClientError;

use crate::metrics::Metrics;

/// One actor as recorded in the node database.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ActorRecord {
    pub actor_id: String,
    pub name: String,
    pub key: Vec<String>,
    /// CBOR of the create input, kept until the actor has run its create hooks.
    pub input: Option<Vec<u8>>,
    pub create_ts: i64,
    pub destroy_ts: Option<i64>,
}

/// The node's metadata database. Writes are serialized through one connection.
pub struct NodeDb {
    pub(super) conn: Mutex<Connection>,
    /// Where refused writes are counted (a full disk, see [`super::report_full`]).
    metrics: Metrics,
    _db: libsql::Database,
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS actors (
    actor_id   TEXT PRIMARY KEY,
    name       TEXT NOT NULL,
    key        TEXT NOT NULL,
    input      BLOB,
    create_ts  INTEGER NOT NULL,
    destroy_ts INTEGER
);
CREATE UNIQUE INDEX IF NOT EXISTS actors_live_key ON actors(name, key) WHERE destroy_ts IS NULL;
CREATE TABLE IF NOT EXISTS alarms (actor_id TEXT PRIMARY KEY, fire_at INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS registers (name TEXT PRIMARY KEY, state BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS settings (name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS pending_creates (actor_id TEXT PRIMARY KEY);
CREATE TABLE IF NOT EXISTS pending_work (actor_id TEXT PRIMARY KEY);
CREATE TABLE IF NOT EXISTS handoffs (actor_id TEXT PRIMARY KEY, role TEXT NOT NULL, peer TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS wal_streams (
    actor_id        TEXT PRIMARY KEY,
    role            TEXT NOT NULL,
    generation      INTEGER NOT NULL,
    frame           INTEGER NOT NULL,
    prev_generation INTEGER NOT NULL,
    prev_frame      INTEGER NOT NULL,
    peers           TEXT NOT NULL
);
";

impl NodeDb {
    /// Opens (creating if needed) the node database at `path`; writes it cannot make are counted in `metrics`.
    pub async fn open(path: &Path, metrics: Metrics) -> Result<NodeDb, libsql::Error> {
        let db = libsql::Builder::new_local(path).build().await?;
        let conn = db.connect()?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        conn.query("PRAGMA journal_mode=WAL", ()).await?;
        conn.execute("PRAGMA synchronous=NORMAL", ()).await?;
        conn.execute_batch(SCHEMA).await?;
        Ok(NodeDb { conn: Mutex::new(conn), metrics, _db: db })
    }

    /// All actors ever recorded, destroyed ones included.
    pub async fn load_all(&self) -> Result<Vec<ActorRecord>, libsql::Error> {
        let conn = self.conn.lock().await;
        let mut rows = conn.query("SELECT actor_id, name, key, input, create_ts, destroy_ts FROM actors", ()).await?;
        let mut out = Vec::new();
        while let Some(row) = rows.next().await? {
            out.push(ActorRecord {
                actor_id: row.get(0)?,
                name: row.get(1)?,
                key: deserialize_key(&row.get::<String>(2)?),
                input: row.get(3)?,
                create_ts: row.get(4)?,
                destroy_ts: row.get(5)?,
            });
        }
        Ok(out)
    }

    /// Records a new actor. Fails with `actor.duplicate_key` if a live actor already has this name and key.
    pub async fn insert(&self, record: &ActorRecord) -> Result<(), ClientError> {
        let conn = self.conn.lock().await;
        let key = serialize_key(&record.key);
        let result = conn
            .execute(
                "INSERT INTO actors (actor_id, name, key, input, create_ts) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![
                    record.actor_id.as_str(),
                    record.name.as_str(),
                    key.as_str(),
                    record.input.clone(),
                    record.create_ts
                ],
            )
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(libsql::Error::SqliteFailure(code, _)) if code & 0xff == 19 => {
                Err(ClientError::duplicate_key(&record.name, &key))
            }
            Err(e) => Err(self.failed(e)),
        }
    }

    /// Forgets the create input once the actor has consumed it.
    pub async fn clear_input(&self, actor_id: &str) -> Result<(), ClientError> {
        let conn = self.conn.lock().await;
        conn.execute("UPDATE actors SET input = NULL WHERE actor_id = ?1", [actor_id])
            .await
            .map_err(|e| self.failed(e))?;
        Ok(())
    }

    /// Forgets an actor that lives on another node now (with its alarm and unfinished-work marks).
    pub async fn remove_actor(&self, actor_id: &str) -> Result<(), ClientError> {
        let conn = self.conn.lock().await;
        for sql in [
            "DELETE FROM actors WHERE actor_id = ?1",
            "DELETE FROM alarms WHERE actor_id = ?1",
            "DELETE FROM pending_work WHERE actor_id = ?1",
        ] {
            conn.execute(sql, [actor_id]).await.map_err(|e| self.failed(e))?;
        }
        Ok(())
    }

    /// Marks an actor destroyed at `ts`, freeing its key.
    pub async fn mark_destroyed(&self, actor_id: &str, ts: i64) -> Result<(), ClientError> {
        let conn = self.conn.lock().await;
        conn.execute("UPDATE actors SET destroy_ts = ?2, input = NULL WHERE actor_id = ?1", params![actor_id, ts])
            .await
            .map_err(|e| self.failed(e))?;
        Ok(())
    }
}

impl NodeDb {
    /// Every armed alarm: (actor id, when it is due in ms since the epoch).
    pub async fn load_alarms(&self) -> Result<Vec<(String, i64)>, libsql::Error> {
        let conn = self.conn.lock().await;
        let mut rows = conn.query("SELECT actor_id, fire_at FROM alarms", ()).await?;
        let mut out = Vec::new();
        while let Some(row) = rows.next().await? {
            out.push((row.get(0)?, row.get(1)?));
        }
        Ok(out)
    }

    /// Arms (or, with `None`, clears) an actor's alarm.
    pub async fn set_alarm(&self, actor_id: &str, fire_at: Option<i64>) -> Result<(), ClientError> {
        let conn = self.conn.lock().await;
        let result = match fire_at {
            Some(at) => {
                conn.execute("INSERT OR REPLACE INTO alarms (actor_id, fire_at) VALUES (?1, ?2)", params![actor_id, at])
                    .await
            }
            None => conn.execute("DELETE FROM alarms WHERE actor_id = ?1", [actor_id]).await,
        };
        result.map(|_| ()).map_err(|e| self.failed(e))
    }

    /// Every actor recorded with unfinished work (see [`crate::runtime::resume`]).
    pub async fn load_pending_work(&self) -> Result<Vec<String>, libsql::Error> {
        let conn = self.conn.lock().await;
        let mut rows = conn.query("SELECT actor_id FROM pending_work", ()).await?;
        let mut out = Vec::new();
        while let Some(row) = rows.next().await? {
            out.push(row.get(0)?);
        }
        Ok(out)
    }

    /// Records that `actor_id` has unfinished work (`true`), or that it has none left (`false`), committed before
    /// this returns.
    pub async fn set_pending_work(&self, actor_id: &str, pending: bool) -> Result<(), ClientError> {
        let conn = self.conn.lock().await;
        let result = match pending {
            true => conn.execute("INSERT OR IGNORE INTO pending_work (actor_id) VALUES (?1)", [actor_id]).await,
            false => conn.execute("DELETE FROM pending_work WHERE actor_id = ?1", [actor_id]).await,
        };
        result.map(|_| ()).map_err(|e| self.failed(e))
    }
}

impl NodeDb {
    /// The error a caller sees when a node database operation fails with `err`: `storage.full` when the disk is
    /// full (reported for operators, see [`super::report_full`]), `actor.internal_error` otherwise (logged).
    pub(super) fn failed(&self, err: libsql::Error) -> ClientError {
        let error = super::client_error(&err);
        if !super::report_full(&self.metrics, "node database write", None, &error, &err) {
            tracing::error!(error = %err, "node database error");
        }
        error
    }
}
