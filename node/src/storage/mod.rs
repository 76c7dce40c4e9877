//! Durable storage: the data directory, the node's own database, and one libSQL database per actor.

pub mod actor_db;
pub mod data_dir;
pub mod handoffs;
pub mod inspect_sql;
pub mod kv;
pub mod node_db;
pub mod pool;
pub mod queue;
pub mod registers;
pub mod sandbox;
pub mod schedules;
pub mod sql_value;
pub mod statement;
pub mod statements;
pub mod template;
pub mod vfs;
pub mod wal_streams;
pub mod workflow;

pub use actor_db::ActorDb;
pub use data_dir::DataDir;
pub use node_db::{ActorRecord, NodeDb};
pub use pool::DbPool;
pub use template::ActorTemplate;

use tern_proto::ClientError;

use crate::metrics::Metrics;

/// Bytes SQLite holds in this process right now: the page caches, schemas and prepared statements of every actor
/// database and of `node.db`.
pub fn sqlite_memory_used() -> u64 {
    // SAFETY: reads SQLite's global memory counter, which may be read at any time.
    let used = unsafe { libsql::ffi::sqlite3_memory_used() };
    u64::try_from(used).unwrap_or(0)
}

/// Whether SQLite refused a write because the file system holding the database is full: result code
/// `SQLITE_FULL`, whatever its extended code. Read from the error's typed code, never from its message.
///
/// SQLite's unix VFS reports a write that fails with `ENOSPC` as `SQLITE_FULL` itself, so a full disk arrives
/// here whether the turn's commit or a statement spilling its cache hit it. An `ENOSPC` from `fsync` (some network
/// and thin-provisioned file systems) arrives as `SQLITE_IOERR_FSYNC`, with the errno only in SQLite's
/// `sqlite3_system_errno`, which libSQL's error does not carry and the next system call overwrites: such errors
/// stay internal rather than being guessed at.
pub fn is_full(err: &libsql::Error) -> bool {
    matches!(err, libsql::Error::SqliteFailure(code, _) if code & 0xff == libsql::ffi::SQLITE_FULL)
}

/// The error a client sees when a storage operation fails with `err`: `storage.full` (507, retryable: nothing
/// was written) when the disk is full, `actor.internal_error` otherwise. Nothing is logged here: whoever ends the
/// operation reports it (see [`report_full`]).
pub fn client_error(err: &libsql::Error) -> ClientError {
    if is_full(err) { ClientError::storage_full() } else { ClientError::internal() }
}

/// Reports an operation that ended with `error`, if it is `storage.full`: one error-level log line beginning
/// with "storage full" (the line to alert on) naming the operation, and one count in `tern_storage_full_total`.
/// Returns whether it reported, so callers log other errors their own way.
pub(crate) fn report_full(
    metrics: &Metrics,
    operation: &str,
    actor_id: Option<&str>,
    error: &ClientError,
    cause: &dyn std::fmt::Display,
) -> bool {
    if !error.is_storage_full() {
        return false;
    }
    metrics.record_storage_full();
    tracing::error!(
        operation,
        actor_id,
        %cause,
        "storage full: the disk holding the data directory is full; the operation was rolled back and refused with \
         storage.full (clients may retry); free space to recover"
    );
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_database_out_of_room_is_storage_full_and_other_errors_are_internal() {
        let db = libsql::Builder::new_local(":memory:").build().await.unwrap();
        let conn = db.connect().unwrap();
        conn.execute("CREATE TABLE t (b BLOB)", ()).await.unwrap();
        // The same SQLITE_FULL a full disk gives, from the database's own size limit.
        conn.query("PRAGMA max_page_count = 3", ()).await.unwrap();
        let full = conn.execute("INSERT INTO t VALUES (randomblob(100000))", ()).await.unwrap_err();
        assert!(is_full(&full), "{full:?}");
        assert!(client_error(&full).is_storage_full());
        let other = conn.execute("INSERT INTO missing VALUES (1)", ()).await.unwrap_err();
        assert!(!is_full(&other), "{other:?}");
        assert_eq!(client_error(&other).qualified_code(), "actor.internal_error");
        assert!(sql_value::sql_error_ref(&full).is_storage_full(), "actor code sees storage.full too");
        assert_eq!(sql_value::sql_error_ref(&other).qualified_code(), "database.sql_error");
    }
}
