//! The inspector's view of an actor's database: its user tables, a page of rows, ad-hoc statements. Tables
//! named `_tern_*` belong to the runtime: they are not listed and statements naming them are refused.

use libsql::Connection;
use tern_proto::{ClientError, Value};

use super::sql_value::{self, SqlParams, sql_error};

/// Refuses SQL that names the runtime's own tables.
pub fn reject_internal_tables(sql: &str) -> Result<&str, ClientError> {
    if sql.to_ascii_lowercase().contains("_tern_") {
        return Err(ClientError::sql_error("tables named _tern_* are reserved for the runtime"));
    }
    Ok(sql)
}

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

/// Rows of one statement without parameters.
async fn rows(conn: &Connection, sql: &str) -> Result<Vec<Value>, ClientError> {
    sql_value::query(conn, sql, &SqlParams::None).await
}

/// The user's tables and views, each with `PRAGMA table_info`, `PRAGMA foreign_key_list` and its row count, as
/// `[{table: {schema, name, type}, columns, foreignKeys, records}]` (values ready for JSON).
pub async fn schema(conn: &Connection) -> Result<Vec<serde_json::Value>, ClientError> {
    let listed = rows(
        conn,
        "SELECT name, type FROM sqlite_master WHERE type IN ('table', 'view') \
         AND name NOT LIKE 'sqlite_%' AND name NOT LIKE '\\_tern\\_%' ESCAPE '\\' ORDER BY name",
    )
    .await?;
    let mut tables = Vec::with_capacity(listed.len());
    for table in listed {
        let Value::Map(fields) = table else { continue };
        let name = text(&fields[0].1);
        let kind = text(&fields[1].1);
        let columns = rows(conn, &format!("PRAGMA table_info({})", quoted(&name))).await?;
        let foreign_keys = rows(conn, &format!("PRAGMA foreign_key_list({})", quoted(&name))).await?;
        let count = rows(conn, &format!("SELECT count(*) AS n FROM {}", quoted(&name))).await?;
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

/// A page of a user table's rows; `database.table_not_found` when there is no such table.
pub async fn page(conn: &Connection, table: &str, limit: usize, offset: usize) -> Result<Vec<Value>, ClientError> {
    reject_internal_tables(table)?;
    let mut found = conn
        .query("SELECT 1 FROM sqlite_master WHERE type IN ('table', 'view') AND name = ?1", [table])
        .await
        .map_err(sql_error)?;
    if found.next().await.map_err(sql_error)?.is_none() {
        return Err(ClientError::table_not_found(table));
    }
    let sql = format!("SELECT * FROM {} LIMIT {limit} OFFSET {offset}", quoted(table));
    rows(conn, &sql).await
}

/// Runs one statement (read or write) and returns its rows (none for a write).
pub async fn execute(conn: &Connection, sql: &str, params: Option<&Value>) -> Result<Vec<Value>, ClientError> {
    let params = SqlParams::from_value(params)?;
    sql_value::query(conn, reject_internal_tables(sql)?, &params).await
}
