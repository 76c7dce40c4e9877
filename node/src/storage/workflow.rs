//! A workflow's history in the actor's database: one entry per completed step, sleep, received message, loop
//! iteration and race, keyed by its position in the workflow (`scope/name#occurrence`). An entry is written in
//! the same transaction as the step's own changes, so after a crash a workflow replays completed entries
//! instead of running them again.

use libsql::{Connection, params};
use tern_proto::{ClientError, Value};

use super::sql_value::sql_error;

/// Tables, created with the actor's other internal tables.
pub const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS _tern_workflow (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    key         TEXT NOT NULL UNIQUE,
    kind        TEXT NOT NULL,
    output      BLOB,
    error       TEXT,
    finished_at INTEGER NOT NULL
);
";

/// One history entry.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// Order of completion; `workflow/replay` starts again from an entry's id.
    pub seq: i64,
    pub key: String,
    /// `step`, `sleep`, `listen`, `loop`, `race` or `workflow` (the final outcome).
    pub kind: String,
    pub output: Option<Value>,
    pub error: Option<String>,
    pub finished_at: i64,
}

/// The whole history, oldest first.
pub async fn load(conn: &Connection) -> Result<Vec<Entry>, ClientError> {
    let mut rows = conn
        .query("SELECT seq, key, kind, output, error, finished_at FROM _tern_workflow ORDER BY seq", ())
        .await
        .map_err(sql_error)?;
    let mut entries = Vec::new();
    while let Some(row) = rows.next().await.map_err(sql_error)? {
        let output: Option<Vec<u8>> = row.get(3).map_err(sql_error)?;
        entries.push(Entry {
            seq: row.get(0).map_err(sql_error)?,
            key: row.get(1).map_err(sql_error)?,
            kind: row.get(2).map_err(sql_error)?,
            output: output.map(|bytes| tern_proto::value::from_cbor_bytes(&bytes)).transpose()?,
            error: row.get(4).map_err(sql_error)?,
            finished_at: row.get(5).map_err(sql_error)?,
        });
    }
    Ok(entries)
}

/// Records an entry (replacing none: keys are unique, a second record of a key is an error).
pub async fn record(
    conn: &Connection,
    key: &str,
    kind: &str,
    output: Option<&Value>,
    error: Option<&str>,
    now_ms: i64,
) -> Result<(), ClientError> {
    conn.execute(
        "INSERT INTO _tern_workflow (key, kind, output, error, finished_at) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![key, kind, output.map(tern_proto::value::to_cbor_bytes), error, now_ms],
    )
    .await
    .map_err(sql_error)?;
    Ok(())
}

/// Forgets entries from `seq` on (all of them when `None`), so the workflow runs them again.
pub async fn forget_from(conn: &Connection, seq: Option<i64>) -> Result<u64, ClientError> {
    conn.execute("DELETE FROM _tern_workflow WHERE seq >= ?1", [seq.unwrap_or(i64::MIN)]).await.map_err(sql_error)
}
