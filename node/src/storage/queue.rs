//! An actor's durable queue: ordered messages, each on a named queue, in the actor's own database. A message
//! accepted by `send` is committed before the sender hears back; a plain receive removes it in the receiving
//! step's transaction; a completable message stays until it is completed, so a crash before completion
//! delivers it again.

use libsql::{Connection, params};
use tern_proto::{ClientError, Value};

use super::sql_value::sql_error;

/// Table, created with the actor's other internal tables.
pub const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS _tern_queue (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    name        TEXT NOT NULL,
    body        BLOB NOT NULL,
    completable INTEGER NOT NULL,
    created_at  INTEGER NOT NULL
);
";

/// One stored message.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredMessage {
    /// Increases with every message: the queue's order.
    pub id: i64,
    pub name: String,
    pub body: Value,
    /// Whether a sender waits for its completion.
    pub completable: bool,
    pub created_at: i64,
}

/// Appends a message; returns its id.
pub async fn push(
    conn: &Connection,
    name: &str,
    body: &Value,
    completable: bool,
    now_ms: i64,
) -> Result<i64, ClientError> {
    conn.execute(
        "INSERT INTO _tern_queue (name, body, completable, created_at) VALUES (?1, ?2, ?3, ?4)",
        params![name, tern_proto::value::to_cbor_bytes(body), i64::from(completable), now_ms],
    )
    .await
    .map_err(sql_error)?;
    Ok(conn.last_insert_rowid())
}

/// How many messages are stored.
pub async fn len(conn: &Connection) -> Result<i64, ClientError> {
    let mut rows = conn.query("SELECT count(*) FROM _tern_queue", ()).await.map_err(sql_error)?;
    match rows.next().await.map_err(sql_error)? {
        Some(row) => row.get(0).map_err(sql_error),
        None => Ok(0),
    }
}

/// Messages in order, oldest first: at most `limit`, after id `after`, and only of `names` when given.
pub async fn peek(
    conn: &Connection,
    names: &[String],
    after: i64,
    limit: usize,
) -> Result<Vec<StoredMessage>, ClientError> {
    let mut rows = conn
        .query("SELECT id, name, body, completable, created_at FROM _tern_queue WHERE id > ?1 ORDER BY id", [after])
        .await
        .map_err(sql_error)?;
    let mut out = Vec::new();
    while out.len() < limit {
        let Some(row) = rows.next().await.map_err(sql_error)? else { break };
        let name: String = row.get(1).map_err(sql_error)?;
        if !names.is_empty() && !names.contains(&name) {
            continue;
        }
        let body: Vec<u8> = row.get(2).map_err(sql_error)?;
        out.push(StoredMessage {
            id: row.get(0).map_err(sql_error)?,
            name,
            body: tern_proto::value::from_cbor_bytes(&body)?,
            completable: row.get::<i64>(3).map_err(sql_error)? != 0,
            created_at: row.get(4).map_err(sql_error)?,
        });
    }
    Ok(out)
}

/// Removes a message; whether it was there.
pub async fn remove(conn: &Connection, id: i64) -> Result<bool, ClientError> {
    Ok(conn.execute("DELETE FROM _tern_queue WHERE id = ?1", [id]).await.map_err(sql_error)? > 0)
}

/// Removes every message; how many there were.
pub async fn clear(conn: &Connection) -> Result<u64, ClientError> {
    conn.execute("DELETE FROM _tern_queue", ()).await.map_err(sql_error)
}
