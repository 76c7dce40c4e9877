//! The inspector's view of an actor's database: its user tables, a page of rows, ad-hoc statements. The
//! listing shows the user's tables; pages and ad-hoc statements run in the sandbox's inspector role, so they
//! may read the runtime's `_tern_*` tables but never change them (see [`super::sandbox`]).

use std::time::Duration;

use libsql::Connection;
use tern_proto::{ClientError, Value};

use super::ActorDb;
use super::sandbox::SqlRole;
use super::sql_value::{self, SqlParams};

/// `"name"` with inner quotes doubled: an SQL identifier.
fn quoted(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

fn text(value: &Value) -> String {
    match value {
        Value::Text(text) => text.clone(),
        _ => String::new(),
    }
}

/// Rows of one statement without parameters, run as `role`.
async fn rows(db: &ActorDb, role: SqlRole, limit: Duration, sql: &str) -> Result<Vec<Value>, ClientError> {
    let guard = db.sandbox().enter(role, limit);
    sql_value::query(db.connection(), &guard, sql, &SqlParams::None).await
}

/// Rows of one of the runtime's own statements.
async fn runtime_rows(db: &ActorDb, sql: &str) -> Result<Vec<Value>, ClientError> {
    rows(db, SqlRole::Runtime, Duration::ZERO, sql).await
}

/// The user's tables and views, each with `PRAGMA table_info`, `PRAGMA foreign_key_list` and its row count, as
/// `[{table: {schema, name, type}, columns, foreignKeys, records}]` (values ready for JSON).
pub async fn schema(db: &ActorDb) -> Result<Vec<serde_json::Value>, ClientError> {
    let listed = runtime_rows(
        db,
        "SELECT name, type FROM sqlite_master WHERE type IN ('table', 'view') \
         AND name NOT LIKE 'sqlite_%' AND name NOT LIKE '\\_tern\\_%' ESCAPE '\\' ORDER BY name",
    )
    .await?;
    let mut tables = Vec::with_capacity(listed.len());
    for table in listed {
        let Value::Map(fields) = table else { continue };
        let name = text(&fields[0].1);
        let kind = text(&fields[1].1);
        let columns = runtime_rows(db, &format!("PRAGMA table_info({})", quoted(&name))).await?;
        let foreign_keys = runtime_rows(db, &format!("PRAGMA foreign_key_list({})", quoted(&name))).await?;
        let count = runtime_rows(db, &format!("SELECT count(*) AS n FROM {}", quoted(&name))).await?;
        let records = match count.first() {
            Some(Value::Map(fields)) => fields.first().map(|(_, n)| tern_proto::value::to_json(n)),
            _ => None,
        };
        tables.push(serde_json::json!({
            "table": { "schema": "main", "name": name, "type": kind },
            "columns": columns.iter().map(tern_proto::value::to_json).collect::<Vec<_>>(),
            "foreignKeys": foreign_keys.iter().map(tern_proto::value::to_json).collect::<Vec<_>>(),
            "records": records.unwrap_or(serde_json::Value::from(0)),
        }));
    }
    Ok(tables)
}

/// Whether the database has a table or view named `table`.
async fn exists(conn: &Connection, table: &str) -> Result<bool, libsql::Error> {
    let mut found =
        conn.query("SELECT 1 FROM sqlite_master WHERE type IN ('table', 'view') AND name = ?1", [table]).await?;
    Ok(found.next().await?.is_some())
}

/// A page of a table's rows, read in the inspector role (interrupted after `limit`); `database.table_not_found`
/// when there is no such table.
pub async fn page(
    db: &ActorDb,
    table: &str,
    rows_limit: usize,
    offset: usize,
    limit: Duration,
) -> Result<Vec<Value>, ClientError> {
    if !exists(db.connection(), table).await.map_err(sql_value::sql_error)? {
        return Err(ClientError::table_not_found(table));
    }
    let sql = format!("SELECT * FROM {} LIMIT {rows_limit} OFFSET {offset}", quoted(table));
    rows(db, SqlRole::Inspector, limit, &sql).await
}

/// Runs one statement (read or write) in the inspector role (interrupted after `limit`) and returns its rows
/// (none for a write).
pub async fn execute(
    db: &ActorDb,
    sql: &str,
    params: Option<&Value>,
    limit: Duration,
) -> Result<Vec<Value>, ClientError> {
    let params = SqlParams::from_value(params)?;
    let guard = db.sandbox().enter(SqlRole::Inspector, limit);
    sql_value::query(db.connection(), &guard, sql, &params).await
}
