//! The actor's key-value store: table `_tern_kv` in the actor's own database (created by the actor's schema,
//! [`super::actor_db`]).
//!
//! Keys and values are bytes (text is stored as its UTF-8 bytes) and keys are always bound as BLOBs, so they
//! compare bytewise (`memcmp`, then shorter first), as in RivetKit. Every function runs on the connection of the
//! current turn, inside the turn's transaction and the current action's savepoint: a failed action's writes roll
//! back with the rest of its changes. Nothing here begins or commits a transaction.
//!
//! Limits follow RivetKit's engine: keys up to [`MAX_KEY_BYTES`], values up to [`MAX_VALUE_BYTES`], batches up to
//! [`MAX_BATCH_ENTRIES`] entries (and [`MAX_BATCH_PUT_BYTES`] for a batch put), lists return at most
//! [`DEFAULT_LIST_LIMIT`] entries unless asked otherwise. Key `0x03` ([`RESERVED_KEY`]) is the inspector token's
//! and belongs to the runtime: users' writes to it fail with `kv.reserved_key` and reads of it find nothing.

use libsql::{Connection, Value, params};
use tern_proto::ClientError;

/// Longest key, in bytes (2 KiB).
pub const MAX_KEY_BYTES: usize = 2 * 1024;
/// Longest value, in bytes (128 KiB).
pub const MAX_VALUE_BYTES: usize = 128 * 1024;
/// Most keys or entries in one batch operation.
pub const MAX_BATCH_ENTRIES: usize = 128;
/// Most bytes (keys plus values) in one batch put (976 KiB).
pub const MAX_BATCH_PUT_BYTES: usize = 976 * 1024;
/// Most entries a list returns when [`ListOptions::limit`] is not set.
pub const DEFAULT_LIST_LIMIT: usize = 16_384;
/// The key under which admins read the actor's inspector token; users' KV cannot use it.
pub const RESERVED_KEY: &[u8] = &[3];

/// How a list walks its keys.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ListOptions {
    /// Largest keys first.
    pub reverse: bool,
    /// At most this many entries; [`DEFAULT_LIST_LIMIT`] when `None`.
    pub limit: Option<usize>,
}

/// Why a KV operation failed.
#[derive(Debug, thiserror::Error)]
pub enum KvError {
    /// The request breaks a limit or touches the reserved key: a `kv.*` catalogue error for the client.
    #[error("{0}")]
    Invalid(ClientError),
    /// The database failed.
    #[error("kv storage failed: {0}")]
    Storage(#[from] libsql::Error),
}

impl KvError {
    /// The error as a client sees it: `kv.*` errors as they are, storage failures logged and masked.
    pub fn into_client(self, actor_id: &str) -> ClientError {
        match self {
            KvError::Invalid(e) => e,
            KvError::Storage(e) => {
                tracing::error!(actor_id, error = %e, "kv storage failed");
                ClientError::internal()
            }
        }
    }
}

type KvResult<T> = Result<T, KvError>;

fn check_key(key: &[u8]) -> KvResult<()> {
    if key.len() > MAX_KEY_BYTES {
        return Err(KvError::Invalid(ClientError::kv_key_too_large(key.len(), MAX_KEY_BYTES)));
    }
    Ok(())
}

fn check_writable_key(key: &[u8]) -> KvResult<()> {
    check_key(key)?;
    if key == RESERVED_KEY {
        return Err(KvError::Invalid(ClientError::kv_reserved_key()));
    }
    Ok(())
}

fn check_value(value: &[u8]) -> KvResult<()> {
    if value.len() > MAX_VALUE_BYTES {
        return Err(KvError::Invalid(ClientError::kv_value_too_large(value.len(), MAX_VALUE_BYTES)));
    }
    Ok(())
}

fn check_batch(len: usize) -> KvResult<()> {
    if len > MAX_BATCH_ENTRIES {
        let message = format!("A batch of {len} entries exceeds the limit of {MAX_BATCH_ENTRIES}");
        return Err(KvError::Invalid(ClientError::kv_batch_too_large(message)));
    }
    Ok(())
}

fn blob(bytes: &[u8]) -> Value {
    Value::Blob(bytes.to_vec())
}

/// The value at `key` and when it was last written (ms since the epoch); `None` if absent or reserved.
pub async fn get_entry(conn: &Connection, key: &[u8]) -> KvResult<Option<(Vec<u8>, i64)>> {
    check_key(key)?;
    if key == RESERVED_KEY {
        return Ok(None);
    }
    let mut rows = conn.query("SELECT value, update_ts FROM _tern_kv WHERE key = ?1", [blob(key)]).await?;
    match rows.next().await? {
        Some(row) => Ok(Some((row.get::<Vec<u8>>(0)?, row.get::<i64>(1)?))),
        None => Ok(None),
    }
}

/// The value at `key`; `None` if absent (always for the reserved key).
pub async fn get(conn: &Connection, key: &[u8]) -> KvResult<Option<Vec<u8>>> {
    Ok(get_entry(conn, key).await?.map(|(value, _)| value))
}

/// Writes `value` at `key`, replacing any value there.
pub async fn put(conn: &Connection, key: &[u8], value: &[u8]) -> KvResult<()> {
    check_writable_key(key)?;
    check_value(value)?;
    write(conn, key, value, crate::clock::now_ms()).await
}

async fn write(conn: &Connection, key: &[u8], value: &[u8], now_ms: i64) -> KvResult<()> {
    conn.execute(
        "INSERT OR REPLACE INTO _tern_kv (key, value, update_ts) VALUES (?1, ?2, ?3)",
        params![blob(key), blob(value), now_ms],
    )
    .await?;
    Ok(())
}

/// Removes `key` (nothing happens if it is absent).
pub async fn delete(conn: &Connection, key: &[u8]) -> KvResult<()> {
    check_writable_key(key)?;
    conn.execute("DELETE FROM _tern_kv WHERE key = ?1", [blob(key)]).await?;
    Ok(())
}

/// The values at `keys`, in the same order (`None` where absent).
pub async fn get_batch(conn: &Connection, keys: &[impl AsRef<[u8]>]) -> KvResult<Vec<Option<Vec<u8>>>> {
    check_batch(keys.len())?;
    keys.iter().try_for_each(|k| check_key(k.as_ref()))?;
    let mut values = Vec::with_capacity(keys.len());
    for key in keys {
        values.push(get(conn, key.as_ref()).await?);
    }
    Ok(values)
}

/// Writes every entry, or none if one breaks a limit.
pub async fn put_batch(conn: &Connection, entries: &[(impl AsRef<[u8]>, impl AsRef<[u8]>)]) -> KvResult<()> {
    check_batch(entries.len())?;
    let mut total = 0;
    for (key, value) in entries {
        check_writable_key(key.as_ref())?;
        check_value(value.as_ref())?;
        total += key.as_ref().len() + value.as_ref().len();
    }
    if total > MAX_BATCH_PUT_BYTES {
        let message = format!("A batch put of {total} bytes exceeds the limit of {MAX_BATCH_PUT_BYTES} bytes");
        return Err(KvError::Invalid(ClientError::kv_batch_too_large(message)));
    }
    let now = crate::clock::now_ms();
    for (key, value) in entries {
        write(conn, key.as_ref(), value.as_ref(), now).await?;
    }
    Ok(())
}

/// Removes every key, or none if one breaks a limit.
pub async fn delete_batch(conn: &Connection, keys: &[impl AsRef<[u8]>]) -> KvResult<()> {
    check_batch(keys.len())?;
    keys.iter().try_for_each(|k| check_writable_key(k.as_ref()))?;
    for key in keys {
        conn.execute("DELETE FROM _tern_kv WHERE key = ?1", [blob(key.as_ref())]).await?;
    }
    Ok(())
}

/// Removes every key in `[start, end)`; returns how many were removed.
pub async fn delete_range(conn: &Connection, start: &[u8], end: &[u8]) -> KvResult<u64> {
    check_key(start)?;
    check_key(end)?;
    Ok(conn.execute("DELETE FROM _tern_kv WHERE key >= ?1 AND key < ?2", [blob(start), blob(end)]).await?)
}

/// The entries whose keys start with `prefix`, in key order (or reversed), with the prefix stripped from the
/// keys, as RivetKit lists them.
pub async fn list_prefix(conn: &Connection, prefix: &[u8], options: ListOptions) -> KvResult<Vec<(Vec<u8>, Vec<u8>)>> {
    check_key(prefix)?;
    let mut entries = list(conn, prefix, prefix_end(prefix).as_deref(), options).await?;
    for (key, _) in &mut entries {
        key.drain(..prefix.len());
    }
    Ok(entries)
}

/// The entries whose keys are in `[start, end)`, in key order (or reversed), with their full keys.
pub async fn list_range(
    conn: &Connection,
    start: &[u8],
    end: &[u8],
    options: ListOptions,
) -> KvResult<Vec<(Vec<u8>, Vec<u8>)>> {
    check_key(start)?;
    check_key(end)?;
    list(conn, start, Some(end), options).await
}

/// The smallest key greater than every key that starts with `prefix`; `None` when there is none (the prefix
/// is empty or all `0xff`).
fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < u8::MAX {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

async fn list(
    conn: &Connection,
    start: &[u8],
    end: Option<&[u8]>,
    options: ListOptions,
) -> KvResult<Vec<(Vec<u8>, Vec<u8>)>> {
    let limit = i64::try_from(options.limit.unwrap_or(DEFAULT_LIST_LIMIT)).unwrap_or(i64::MAX);
    let order = if options.reverse { "DESC" } else { "ASC" };
    let mut values = vec![blob(start), Value::Integer(limit)];
    let upper = match end {
        Some(end) => {
            values.push(blob(end));
            "AND key < ?3"
        }
        None => "",
    };
    // The reserved key is never written through this module; leave it out even if raw SQL put it there.
    let sql = format!(
        "SELECT key, value FROM _tern_kv WHERE key >= ?1 {upper} AND key != x'03' ORDER BY key {order} LIMIT ?2"
    );
    let mut rows = conn.query(&sql, values).await?;
    let mut entries = Vec::new();
    while let Some(row) = rows.next().await? {
        entries.push((row.get::<Vec<u8>>(0)?, row.get::<Vec<u8>>(1)?));
    }
    Ok(entries)
}

#[cfg(test)]
mod tests;
