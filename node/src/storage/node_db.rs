//! The node's own metadata database (`node.db`): which actors this node hosts, their alarms, and which of them
//! have unfinished work to resume when the node starts.
//!
//! Every create and destroy is committed here before it is acknowledged. A (name, key) pair has at most one
//! live actor, enforced by a partial unique index.

use std::collections::BTreeMap;
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
CREATE INDEX IF NOT EXISTS actors_live_age ON actors(create_ts, actor_id) WHERE destroy_ts IS NULL;
CREATE INDEX IF NOT EXISTS actors_live_name_age ON actors(name, create_ts, actor_id) WHERE destroy_ts IS NULL;
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

/// A page of live actors past position (?1 create_ts, ?2 actor_id), at most ?3, read in order from `actors_live_age`.
const LIVE_PAGE: &str = "SELECT actor_id, name, key, input, create_ts, destroy_ts FROM actors \
    WHERE destroy_ts IS NULL AND (create_ts, actor_id) < (?1, ?2) ORDER BY create_ts DESC, actor_id DESC LIMIT ?3";

/// [`LIVE_PAGE`] of the actors named ?4, read in order from `actors_live_name_age`.
const LIVE_PAGE_OF_NAME: &str = "SELECT actor_id, name, key, input, create_ts, destroy_ts FROM actors \
    WHERE name = ?4 AND destroy_ts IS NULL AND (create_ts, actor_id) < (?1, ?2) \
    ORDER BY create_ts DESC, actor_id DESC LIMIT ?3";

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

    /// The actor recorded as `actor_id` (destroyed or not), if any.
    pub async fn actor(&self, actor_id: &str) -> Result<Option<ActorRecord>, ClientError> {
        let sql = "SELECT actor_id, name, key, input, create_ts, destroy_ts FROM actors WHERE actor_id = ?1";
        Ok(self.records(sql, [actor_id]).await?.pop())
    }

    /// The live actor holding `name` and `key`, if any (found on the key's unique index).
    pub async fn live_by_key(&self, name: &str, key: &[String]) -> Result<Option<ActorRecord>, ClientError> {
        let sql = "SELECT actor_id, name, key, input, create_ts, destroy_ts FROM actors \
                   WHERE name = ?1 AND key = ?2 AND destroy_ts IS NULL";
        Ok(self.records(sql, params![name, serialize_key(key)]).await?.pop())
    }

    /// At most `limit` live actors, optionally of one name, newest first (then by descending id), from just past
    /// the actor created at `after`'s (create_ts, actor_id). Read from an index in that order: a page costs its
    /// own rows, however many actors there are.
    pub async fn live_page(
        &self,
        name: Option<&str>,
        after: Option<(i64, &str)>,
        limit: usize,
    ) -> Result<Vec<ActorRecord>, ClientError> {
        let (ts, id) = after.unwrap_or((i64::MAX, ""));
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        // With no cursor, the first page starts past a position later than every actor's.
        match name {
            Some(name) => self.records(LIVE_PAGE_OF_NAME, params![ts, id, limit, name]).await,
            None => self.records(LIVE_PAGE, params![ts, id, limit]).await,
        }
    }

    /// How many live actors of each name are recorded (read from the key index, not the table).
    pub async fn live_counts(&self) -> Result<BTreeMap<String, u64>, ClientError> {
        let conn = self.conn.lock().await;
        let sql = "SELECT name, count(*) FROM actors WHERE destroy_ts IS NULL GROUP BY name";
        let mut rows = conn.query(sql, ()).await.map_err(|e| self.failed(e))?;
        let mut out = BTreeMap::new();
        while let Some(row) = rows.next().await.map_err(|e| self.failed(e))? {
            let count: i64 = row.get(1).map_err(|e| self.failed(e))?;
            out.insert(row.get(0).map_err(|e| self.failed(e))?, u64::try_from(count).unwrap_or(0));
        }
        Ok(out)
    }

    /// The ids of every live actor recorded.
    pub async fn live_ids(&self) -> Result<Vec<String>, ClientError> {
        let conn = self.conn.lock().await;
        let mut rows =
            conn.query("SELECT actor_id FROM actors WHERE destroy_ts IS NULL", ()).await.map_err(|e| self.failed(e))?;
        let mut out = Vec::new();
        while let Some(row) = rows.next().await.map_err(|e| self.failed(e))? {
            out.push(row.get(0).map_err(|e| self.failed(e))?);
        }
        Ok(out)
    }

    async fn records(
        &self,
        sql: &str,
        params: impl libsql::params::IntoParams,
    ) -> Result<Vec<ActorRecord>, ClientError> {
        let conn = self.conn.lock().await;
        let read = async {
            let mut rows = conn.query(sql, params).await?;
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
        };
        read.await.map_err(|e| self.failed(e))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_page_reads_an_index_in_order_rather_than_sorting_the_table() {
        let dir = tempfile::tempdir().unwrap();
        let db = NodeDb::open(&dir.path().join("node.db"), Metrics::new("local")).await.unwrap();
        let conn = db.conn.lock().await;
        for (sql, index) in [(LIVE_PAGE, "actors_live_age"), (LIVE_PAGE_OF_NAME, "actors_live_name_age")] {
            let mut rows = conn.query(&format!("EXPLAIN QUERY PLAN {sql}"), params![1, "a", 10, "n"]).await.unwrap();
            let mut plan = Vec::new();
            while let Some(row) = rows.next().await.unwrap() {
                plan.push(row.get::<String>(3).unwrap());
            }
            let plan = plan.join("; ");
            assert!(plan.contains(&format!("USING INDEX {index}")), "{plan}");
            assert!(!plan.contains("TEMP B-TREE"), "the page is sorted, not read in order: {plan}");
        }
    }
}
