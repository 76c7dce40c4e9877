//! The actor's key-value store, as actor code sees it (`c.kv()`), like RivetKit's `c.kv`.
//!
//! Keys and values are bytes: anything that is `AsRef<[u8]>` (`&str`, `String`, `&[u8]`, `Vec<u8>`, byte arrays).
//! Keys compare bytewise. The store lives in the actor's own database (table `_tern_kv`), so its writes are part
//! of the current action's atomic unit: they commit with the turn, or roll back if the action fails.
//!
//! Limits (as RivetKit's): keys up to 2 KiB (`kv.key_too_large`), values up to 128 KiB (`kv.value_too_large`),
//! batches up to 128 entries and 976 KiB (`kv.batch_too_large`); lists return at most 16,384 entries unless
//! [`ListOptions::limit`] says otherwise. Key `0x03` is reserved for the runtime (`kv.reserved_key` on writes;
//! reads find nothing).

use super::error::{ActorError, ActorResult};
use super::sql::Sql;
use crate::storage::kv::{self, KvError};

pub use crate::storage::kv::ListOptions;

/// A handle on the actor's key-value store for the current turn. Get one from [`super::Ctx::kv`] in each action
/// or hook; do not keep it across turns.
#[derive(Clone)]
pub struct Kv {
    sql: Sql,
}

/// A key and its value, as lists return them.
pub type Entry = (Vec<u8>, Vec<u8>);

fn actor_error(err: KvError) -> ActorError {
    match err {
        KvError::Invalid(e) => e.into(),
        KvError::Storage(e) => ActorError::internal(format!("kv storage failed: {e}")),
    }
}

impl Kv {
    pub(crate) fn new(sql: Sql) -> Kv {
        Kv { sql }
    }

    /// The value at `key`, or `None`.
    pub async fn get(&self, key: impl AsRef<[u8]>) -> ActorResult<Option<Vec<u8>>> {
        kv::get(self.sql.connection()?, key.as_ref()).await.map_err(actor_error)
    }

    /// The value at `key` as text, or `None`; a value that is not UTF-8 is an error.
    pub async fn get_text(&self, key: &str) -> ActorResult<Option<String>> {
        match self.get(key).await? {
            Some(bytes) => Ok(Some(String::from_utf8(bytes)?)),
            None => Ok(None),
        }
    }

    /// Writes `value` at `key`, replacing any value there.
    pub async fn put(&self, key: impl AsRef<[u8]>, value: impl AsRef<[u8]>) -> ActorResult<()> {
        kv::put(self.sql.connection()?, key.as_ref(), value.as_ref()).await.map_err(actor_error)
    }

    /// Writes the text `value` at `key`.
    pub async fn put_text(&self, key: &str, value: &str) -> ActorResult<()> {
        self.put(key, value).await
    }

    /// Removes `key` (nothing happens if it is absent).
    pub async fn delete(&self, key: impl AsRef<[u8]>) -> ActorResult<()> {
        kv::delete(self.sql.connection()?, key.as_ref()).await.map_err(actor_error)
    }

    /// The values at `keys`, in the same order (`None` where absent).
    pub async fn get_batch(&self, keys: &[impl AsRef<[u8]>]) -> ActorResult<Vec<Option<Vec<u8>>>> {
        kv::get_batch(self.sql.connection()?, keys).await.map_err(actor_error)
    }

    /// Writes every `(key, value)` entry, or none if one breaks a limit.
    pub async fn put_batch(&self, entries: &[(impl AsRef<[u8]>, impl AsRef<[u8]>)]) -> ActorResult<()> {
        kv::put_batch(self.sql.connection()?, entries).await.map_err(actor_error)
    }

    /// Removes every key, or none if one breaks a limit.
    pub async fn delete_batch(&self, keys: &[impl AsRef<[u8]>]) -> ActorResult<()> {
        kv::delete_batch(self.sql.connection()?, keys).await.map_err(actor_error)
    }

    /// Removes every key in `[start, end)` (`end` excluded); returns how many were removed.
    pub async fn delete_range(&self, start: impl AsRef<[u8]>, end: impl AsRef<[u8]>) -> ActorResult<u64> {
        kv::delete_range(self.sql.connection()?, start.as_ref(), end.as_ref()).await.map_err(actor_error)
    }

    /// The entries whose keys start with `prefix`, in key order (or reversed), **with the prefix stripped** from
    /// the returned keys (as RivetKit's `listPrefix`). An empty prefix lists everything.
    pub async fn list_prefix(&self, prefix: impl AsRef<[u8]>, options: ListOptions) -> ActorResult<Vec<Entry>> {
        kv::list_prefix(self.sql.connection()?, prefix.as_ref(), options).await.map_err(actor_error)
    }

    /// The entries whose keys are in `[start, end)`, in key order (or reversed), with their full keys.
    pub async fn list_range(
        &self,
        start: impl AsRef<[u8]>,
        end: impl AsRef<[u8]>,
        options: ListOptions,
    ) -> ActorResult<Vec<Entry>> {
        kv::list_range(self.sql.connection()?, start.as_ref(), end.as_ref(), options).await.map_err(actor_error)
    }
}
