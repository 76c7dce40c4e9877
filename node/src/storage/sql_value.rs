//! Running one SQL statement with parameters given as user values, and turning rows back into user values.
//!
//! Parameters are a positional array or an object whose keys bind to `:key`, `@key` or `$key`. Integers map to
//! SQLite integers (values outside i64 are refused), floats to reals, text to text, bytes to blobs, booleans to
//! 0/1 and null to NULL. Rows come back as objects keyed by column name, in column order, at most
//! [`MAX_RESULT_BYTES`] of them.
//!
//! Statements run under the [`Entered`] guard of the caller's sandbox role, which also turns their errors into
//! what the client sees.

use libsql::Connection;
use tern_proto::{ClientError, Value};

use super::sandbox::Entered;

/// Most bytes of values one query may return (text and blobs by length, other values 8 bytes each): rows are
/// counted as they are read, so a huge result fails before it is held in memory whole.
pub const MAX_RESULT_BYTES: usize = 16 * 1024 * 1024;

/// Statement parameters as a client sends them.
#[derive(Debug, Clone, Default)]
pub enum SqlParams {
    #[default]
    None,
    Positional(Vec<Value>),
    Named(Vec<(String, Value)>),
}

impl SqlParams {
    /// Interprets a user value as parameters: absent or null → none, array → positional, map → named.
    pub fn from_value(value: Option<&Value>) -> Result<SqlParams, ClientError> {
        match value {
            None | Some(Value::Null) => Ok(SqlParams::None),
            Some(Value::Array(items)) => Ok(SqlParams::Positional(items.clone())),
            Some(Value::Map(entries)) => entries
                .iter()
                .map(|(k, v)| match k {
                    Value::Text(name) => Ok((name.clone(), v.clone())),
                    _ => Err(ClientError::invalid_request("named SQL parameters must have text keys")),
                })
                .collect::<Result<_, _>>()
                .map(SqlParams::Named),
            Some(_) => Err(ClientError::invalid_request("SQL parameters must be an array or an object")),
        }
    }
}

/// What a write statement did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExecuteResult {
    pub rows_affected: u64,
    pub last_insert_rowid: i64,
}

/// Converts a user value into an SQLite value.
pub fn to_sql_value(value: &Value) -> Result<libsql::Value, ClientError> {
    Ok(match value {
        Value::Null => libsql::Value::Null,
        Value::Bool(b) => libsql::Value::Integer(i64::from(*b)),
        Value::Integer(i) => libsql::Value::Integer(
            i64::try_from(i128::from(*i))
                .map_err(|_| ClientError::sql_error("integer parameter does not fit in a 64-bit SQLite integer"))?,
        ),
        Value::Float(f) => libsql::Value::Real(*f),
        Value::Text(s) => libsql::Value::Text(s.clone()),
        Value::Bytes(b) => libsql::Value::Blob(b.clone()),
        // Bignums (tags 2 and 3) are integers beyond 64 bits; their bytes are not a blob.
        Value::Tag(2 | 3, _) => {
            return Err(ClientError::sql_error("integer parameter does not fit in a 64-bit SQLite integer"));
        }
        Value::Tag(_, inner) => to_sql_value(inner)?,
        Value::Array(_) | Value::Map(_) => {
            return Err(ClientError::sql_error("SQL parameters must be scalars (null, number, text, bytes, boolean)"));
        }
        _ => return Err(ClientError::sql_error("unsupported SQL parameter type")),
    })
}

/// Converts an SQLite value into a user value.
pub fn from_sql_value(value: libsql::Value) -> Value {
    match value {
        libsql::Value::Null => Value::Null,
        libsql::Value::Integer(i) => Value::Integer(i.into()),
        libsql::Value::Real(f) => Value::Float(f),
        libsql::Value::Text(s) => Value::Text(s),
        libsql::Value::Blob(b) => Value::Bytes(b),
    }
}

/// Maps a libSQL error to the client-visible `database.sql_error`, keeping SQLite's message; a full disk is
/// `storage.full` instead (see [`super::is_full`]).
pub fn sql_error(err: libsql::Error) -> ClientError {
    sql_error_ref(&err)
}

/// Like [`sql_error`], for a borrowed error.
pub fn sql_error_ref(err: &libsql::Error) -> ClientError {
    if super::is_full(err) {
        return ClientError::storage_full();
    }
    let message = match err {
        libsql::Error::SqliteFailure(_, msg) => msg.clone(),
        other => other.to_string(),
    };
    ClientError::sql_error(message)
}

/// Bytes a value counts for in [`MAX_RESULT_BYTES`].
fn result_bytes(value: &libsql::Value) -> usize {
    match value {
        libsql::Value::Text(text) => text.len(),
        libsql::Value::Blob(blob) => blob.len(),
        _ => 8,
    }
}

async fn prepare_bound(
    conn: &Connection,
    guard: &Entered<'_>,
    sql: &str,
    params: &SqlParams,
) -> Result<(libsql::Statement, Vec<libsql::Value>), ClientError> {
    let stmt = conn.prepare(super::statement::single(sql)?).await.map_err(|e| guard.error(&e))?;
    let count = stmt.parameter_count();
    let values = match params {
        SqlParams::None => Vec::new(),
        SqlParams::Positional(items) => items.iter().map(to_sql_value).collect::<Result<_, _>>()?,
        SqlParams::Named(entries) => (1..=count)
            .map(|index| {
                let name = stmt
                    .parameter_name(index as i32)
                    .ok_or_else(|| ClientError::sql_error(format!("parameter {index} has no name; pass an array")))?;
                let bare = name.trim_start_matches([':', '@', '$']);
                let value = entries
                    .iter()
                    .find(|(k, _)| k == bare || k == name)
                    .map(|(_, v)| v)
                    .ok_or_else(|| ClientError::sql_error(format!("missing value for parameter {name}")))?;
                to_sql_value(value)
            })
            .collect::<Result<_, _>>()?,
    };
    if values.len() != count {
        return Err(ClientError::sql_error(format!(
            "statement expects {count} parameter(s) but {} were given",
            values.len()
        )));
    }
    Ok((stmt, values))
}

/// Runs one statement and returns its rows as objects keyed by column name; `database.result_too_large` once
/// they exceed [`MAX_RESULT_BYTES`].
pub async fn query(
    conn: &Connection,
    guard: &Entered<'_>,
    sql: &str,
    params: &SqlParams,
) -> Result<Vec<Value>, ClientError> {
    let (stmt, values) = prepare_bound(conn, guard, sql, params).await?;
    let mut rows = stmt.query(values).await.map_err(|e| guard.error(&e))?;
    let columns: Vec<String> =
        (0..rows.column_count()).map(|i| rows.column_name(i).unwrap_or_default().to_string()).collect();
    let mut out = Vec::new();
    let mut size = 0;
    while let Some(row) = rows.next().await.map_err(|e| guard.error(&e))? {
        let mut entries = Vec::with_capacity(columns.len());
        for (i, name) in columns.iter().enumerate() {
            let value = row.get_value(i as i32).map_err(|e| guard.error(&e))?;
            size += result_bytes(&value);
            if size > MAX_RESULT_BYTES {
                return Err(ClientError::result_too_large(MAX_RESULT_BYTES));
            }
            entries.push((Value::Text(name.clone()), from_sql_value(value)));
        }
        out.push(Value::Map(entries));
    }
    Ok(out)
}

/// Runs one statement (any kind) and reports how many rows it changed and the last inserted row id.
pub async fn execute(
    conn: &Connection,
    guard: &Entered<'_>,
    sql: &str,
    params: &SqlParams,
) -> Result<ExecuteResult, ClientError> {
    let before = conn.total_changes();
    let (stmt, values) = prepare_bound(conn, guard, sql, params).await?;
    let mut rows = stmt.query(values).await.map_err(|e| guard.error(&e))?;
    while rows.next().await.map_err(|e| guard.error(&e))?.is_some() {}
    let rows_affected = if conn.total_changes() == before { 0 } else { conn.changes() };
    Ok(ExecuteResult { rows_affected, last_insert_rowid: conn.last_insert_rowid() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_beyond_64_bits_are_refused_not_stored_as_blobs() {
        let huge = tern_proto::value::from_json(&serde_json::json!(["$BigInt", "18446744073709551616"]));
        assert_eq!(to_sql_value(&huge).unwrap_err().qualified_code(), "database.sql_error");
        let negative = tern_proto::value::from_json(&serde_json::json!(["$BigInt", "-18446744073709551621"]));
        assert_eq!(to_sql_value(&negative).unwrap_err().qualified_code(), "database.sql_error");
        assert_eq!(to_sql_value(&Value::Integer(i64::MIN.into())).unwrap(), libsql::Value::Integer(i64::MIN));
        assert!(to_sql_value(&Value::Integer(u64::MAX.into())).is_err());
    }
}
