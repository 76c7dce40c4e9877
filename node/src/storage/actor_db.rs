//! One actor's database: its internal `_tern_*` tables, next to the user's own tables.
//!
//! * `_tern_meta`: key/value facts about the actor (format version, id, name, key, whether create hooks ran);
//! * `_tern_state`: the actor's state, one CBOR row;
//! * `_tern_conns`: open connections (id, parameters, connection state, subscriptions), for inspection;
//! * `_tern_traces`: the most recent spans (see [`crate::trace`]), bounded;
//! * `_tern_kv`: the actor's key-value store (see [`super::kv`]).
//!
//! `_tern_meta` also holds the actor's inspector token, generated on first start.
//!
//! The runtime wraps each turn (a batch of actions) in one transaction with a savepoint per action; the helpers
//! here are the statements it runs.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};

use base64::Engine;
use libsql::{Connection, params};

use super::sandbox::Sandbox;
use super::statements::Statements;

/// Version of the per-actor internal schema: bump it with every change to the internal tables, so that existing
/// databases get the new ones on their next wake (a database at this version skips the schema statements).
pub const ACTOR_SCHEMA_VERSION: i64 = 3;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS _tern_meta (key TEXT PRIMARY KEY, value BLOB);
CREATE TABLE IF NOT EXISTS _tern_state (id INTEGER PRIMARY KEY CHECK (id = 0), data BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS _tern_conns (
    conn_id       TEXT PRIMARY KEY,
    params        BLOB,
    state         BLOB,
    subscriptions TEXT NOT NULL DEFAULT '',
    connected_at  INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS _tern_traces (
    id        INTEGER PRIMARY KEY,
    trace_id  TEXT NOT NULL,
    span_id   TEXT NOT NULL,
    parent_id TEXT,
    name      TEXT NOT NULL,
    kind      INTEGER NOT NULL,
    start_ns  INTEGER NOT NULL,
    end_ns    INTEGER NOT NULL,
    status    INTEGER NOT NULL,
    message   TEXT,
    attributes TEXT NOT NULL
);
-- No index on the spans: only the inspector reads them by time, scanning at most MAX_SPANS + PRUNE_EVERY rows,
-- while an index cost every writing turn one more page (a WAL frame, replicated) for its spans. Version 2 had one.
DROP INDEX IF EXISTS _tern_traces_start;
CREATE TABLE IF NOT EXISTS _tern_kv (
    key       BLOB PRIMARY KEY,
    value     BLOB NOT NULL,
    update_ts INTEGER NOT NULL
) WITHOUT ROWID;
";

/// Creates the internal tables (those missing) and records the schema version, last: a database that has it
/// needs none of these statements again. Used by a new actor's [`super::template::ActorTemplate`] and to bring an
/// older database up to date.
pub async fn create_internal_tables(conn: &Connection) -> Result<(), libsql::Error> {
    conn.execute_batch(SCHEMA).await?;
    conn.execute_batch(super::schedules::SCHEMA).await?;
    conn.execute_batch(super::queue::SCHEMA).await?;
    conn.execute_batch(super::workflow::SCHEMA).await?;
    conn.execute(
        "INSERT OR REPLACE INTO _tern_meta (key, value) VALUES ('schema_version', ?1)",
        [ACTOR_SCHEMA_VERSION],
    )
    .await?;
    Ok(())
}

/// Most spans kept per actor; older ones are dropped as new ones are written.
pub const MAX_SPANS: i64 = 5_000;

/// Spans are pruned down to [`MAX_SPANS`] once every this many rows, so a turn rarely pays for the delete; the
/// table holds at most `MAX_SPANS + PRUNE_EVERY` spans.
const PRUNE_EVERY: i64 = 64;

/// An actor's open database connection with typed access to the internal tables, the statements prepared on
/// it, and its SQL sandbox.
#[derive(Clone)]
pub struct ActorDb {
    statements: Arc<Statements>,
    conn: Connection,
    sandbox: Sandbox,
    /// The relaxed first transaction (see [`super::DbPool::connection`]), shared by the handle's clones.
    relaxed: Arc<Relaxed>,
}

/// A connection's relaxed start: its first transaction runs with `synchronous=OFF` and with its checkpoints
/// off, so that SQLite never moves frames into the database file unsynced (neither its automatic checkpoint nor
/// its checkpoint on close; a connection closed while relaxed keeps its WAL for the next open).
#[derive(Default)]
struct Relaxed {
    /// Set from [`ActorDb::relax_first_transaction`] until a commit ends the relaxed start.
    active: AtomicBool,
    /// SQLite's automatic checkpoint interval (pages) to restore when it ends.
    autocheckpoint: AtomicI64,
    /// Set once replication took the connection's checkpoints over: they stay off.
    taken_over: AtomicBool,
}

/// See [`ActorDb::wal_owner_pending`].
#[must_use = "dropping it at once turns the connection's checkpoints off"]
pub struct WalOwnerPending<'a> {
    db: Option<&'a ActorDb>,
}

impl WalOwnerPending<'_> {
    /// The WAL's owner is known and has taken the checkpoints over if it owns the WAL: they stay as they are.
    pub fn resolved(mut self) {
        self.db = None;
    }
}

impl Drop for WalOwnerPending<'_> {
    fn drop(&mut self) {
        if let Some(db) = self.db.take() {
            db.checkpoints_taken_over();
            if let Err(e) = db.disable_checkpoints() {
                tracing::error!(error = %e, "cannot turn off the checkpoints of a database whose WAL's owner is unknown");
            }
        }
    }
}

/// What was found in the database when the actor started.
#[derive(Debug)]
pub struct LoadedActor {
    /// Whether the create hooks already ran (and their state was committed).
    pub initialized: bool,
    /// The last committed state, CBOR.
    pub state: Option<Vec<u8>>,
    /// The connections recorded by the actor's previous run (forgotten in the database as it starts): a start
    /// after a move to this node keeps them for their clients to re-bind, any other start drops them.
    pub connections: Vec<StoredConn>,
}

/// A connection as `_tern_conns` records it.
#[derive(Debug)]
pub struct StoredConn {
    /// The connection's id.
    pub conn_id: String,
    /// Its parameters, CBOR.
    pub params: Option<Vec<u8>>,
    /// Its state, CBOR.
    pub state: Option<Vec<u8>>,
    /// The events it subscribed to, a JSON array of names (empty text for none).
    pub subscriptions: String,
}

impl ActorDb {
    /// Wraps a connection that [`super::sandbox::open`] opened, with a fresh statement cache.
    pub fn new(conn: Connection, sandbox: Sandbox) -> ActorDb {
        ActorDb { statements: Arc::default(), conn, sandbox, relaxed: Arc::default() }
    }

    /// Starts the connection relaxed: `synchronous=OFF` and no checkpoint until its first commit, after which
    /// [`Self::commit`] puts it back at `NORMAL` with SQLite's automatic checkpoint (unless replication took the
    /// checkpoints over meanwhile, [`Self::checkpoints_taken_over`]).
    pub(super) async fn relax_first_transaction(&self) -> Result<(), libsql::Error> {
        let mut rows = self.conn.query("PRAGMA wal_autocheckpoint", ()).await?;
        let every: i64 = rows.next().await?.map_or(Ok(0), |row| row.get(0))?;
        drop(rows);
        self.conn.execute("PRAGMA synchronous=OFF", ()).await?;
        self.disable_checkpoints()?;
        self.relaxed.autocheckpoint.store(every, Ordering::Relaxed);
        self.relaxed.active.store(true, Ordering::Relaxed);
        Ok(())
    }

    /// Replication takes this connection's checkpoints over (it turns them off and runs its own): a relaxed start
    /// ending later leaves them off.
    pub fn checkpoints_taken_over(&self) {
        self.relaxed.taken_over.store(true, Ordering::Relaxed);
    }

    /// Holds this connection's checkpoints until the owner of its WAL is known: replication owns the WAL of an
    /// actor it streams, and takes the checkpoints over once it has looked the actor up. Dropped before
    /// [`WalOwnerPending::resolved`] (the lookup failed or was cancelled), the guard turns the connection's
    /// checkpoints off for as long as it stays open, so neither SQLite's automatic checkpoint nor its checkpoint
    /// on close can move a replicated WAL into the file behind replication's back; the WAL stays in place for the
    /// next open to recover.
    pub fn wal_owner_pending(&self) -> WalOwnerPending<'_> {
        WalOwnerPending { db: Some(self) }
    }

    /// Turns SQLite's checkpoints off on this connection: automatic ones and the one on close.
    fn disable_checkpoints(&self) -> Result<(), libsql::Error> {
        // SAFETY: the handle is valid while `self` lives; the call only sets a flag under the connection's mutex.
        let rc = unsafe { libsql::ffi::libsql_wal_disable_checkpoint(self.raw_handle()) };
        if rc != libsql::ffi::SQLITE_OK {
            return Err(libsql::Error::SqliteFailure(rc, "turning the checkpoints off".into()));
        }
        Ok(())
    }

    /// Runs one of the fixed statements of a turn through the statement cache.
    async fn run(&self, sql: &'static str, params: impl libsql::params::IntoParams) -> Result<(), libsql::Error> {
        self.statements.execute(&self.conn, sql, params).await.map(|_| ())
    }

    /// The connection's raw `sqlite3*`, for the WAL-frame API; valid while this handle lives, and to be used only
    /// between the actor's statements, on its own task.
    pub fn raw_handle(&self) -> *mut libsql::ffi::sqlite3 {
        self.sandbox.raw_handle()
    }

    /// The underlying connection.
    pub fn connection(&self) -> &Connection {
        &self.conn
    }

    /// The connection's SQL sandbox.
    pub fn sandbox(&self) -> &Sandbox {
        &self.sandbox
    }

    /// Creates the internal tables if needed and records identity facts; returns what was stored before.
    pub async fn open_actor(&self, actor_id: &str, name: &str, key: &str) -> Result<LoadedActor, libsql::Error> {
        if self.internal_schema().await != Some(ACTOR_SCHEMA_VERSION) {
            create_internal_tables(&self.conn).await?;
        }
        let mut rows = self.conn.query("SELECT value FROM _tern_meta WHERE key = 'initialized'", ()).await?;
        let initialized = rows.next().await?.is_some();
        if !initialized {
            // In the create transaction, with the first state.
            self.conn
                .execute(
                    "INSERT OR IGNORE INTO _tern_meta (key, value) VALUES ('actor_id', ?1), ('name', ?2), ('key', ?3)",
                    params![actor_id, name, key],
                )
                .await?;
        }
        self.sandbox.record_reserved_names(&self.conn).await?;
        // Connections do not survive a restart of the actor: forget the rows of the previous run.
        let mut connections = Vec::new();
        let mut rows = self.conn.query("SELECT conn_id, params, state, subscriptions FROM _tern_conns", ()).await?;
        while let Some(row) = rows.next().await? {
            connections.push(StoredConn {
                conn_id: row.get(0)?,
                params: row.get(1)?,
                state: row.get(2)?,
                subscriptions: row.get(3)?,
            });
        }
        self.conn.execute("DELETE FROM _tern_conns", ()).await?;
        let mut rows = self.conn.query("SELECT data FROM _tern_state WHERE id = 0", ()).await?;
        let state = match rows.next().await? {
            Some(row) => Some(row.get::<Vec<u8>>(0)?),
            None => None,
        };
        Ok(LoadedActor { initialized, state, connections })
    }

    /// The version of the internal tables this database has, if it has them (`None` for a new file).
    async fn internal_schema(&self) -> Option<i64> {
        let mut rows = self.conn.query("SELECT value FROM _tern_meta WHERE key = 'schema_version'", ()).await.ok()?;
        rows.next().await.ok()??.get::<i64>(0).ok()
    }

    /// The actor's inspector token and when it was generated (ms since the epoch), if one was issued.
    pub async fn stored_inspector_token(&self) -> Result<Option<(String, i64)>, libsql::Error> {
        let query = "SELECT t.value, ts.value FROM _tern_meta t JOIN _tern_meta ts ON ts.key = 'inspector_token_ts' \
                     WHERE t.key = 'inspector_token'";
        match self.conn.query(query, ()).await?.next().await? {
            Some(row) => Ok(Some((row.get(0)?, row.get(1)?))),
            None => Ok(None),
        }
    }

    /// The inspector token, generated (32 random bytes, base64url) and stored on first use: call it inside a
    /// transaction, whose commit makes a new token last.
    pub async fn inspector_token(&self) -> Result<(String, i64), libsql::Error> {
        if let Some(stored) = self.stored_inspector_token().await? {
            return Ok(stored);
        }
        let token = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>());
        let now = crate::clock::now_ms();
        self.conn
            .execute(
                "INSERT OR REPLACE INTO _tern_meta (key, value) VALUES ('inspector_token', ?1), ('inspector_token_ts', ?2)",
                params![token.as_str(), now],
            )
            .await?;
        Ok((token, now))
    }

    /// Records that the create hooks ran. Call inside the same transaction as the first state write.
    pub async fn mark_initialized(&self) -> Result<(), libsql::Error> {
        self.conn.execute("INSERT OR REPLACE INTO _tern_meta (key, value) VALUES ('initialized', 1)", ()).await?;
        Ok(())
    }

    /// Writes the state.
    pub async fn save_state(&self, cbor: &[u8]) -> Result<(), libsql::Error> {
        self.run("INSERT OR REPLACE INTO _tern_state (id, data) VALUES (0, ?1)", [libsql::Value::Blob(cbor.to_vec())])
            .await?;
        Ok(())
    }

    /// Starts the turn's transaction, deferred: SQLite takes the write lock at the transaction's first change
    /// (this connection is the file's only one, in exclusive locking mode, so taking it late is never refused),
    /// and [`ActorDb::has_written`] tells a transaction that changed nothing.
    pub async fn begin(&self) -> Result<(), libsql::Error> {
        self.run("BEGIN", ()).await?;
        Ok(())
    }

    /// Whether the open transaction has changed anything (SQLite's transaction state is `WRITE`): a statement
    /// that writes, or one that could have, even if it changed no row.
    pub fn has_written(&self) -> bool {
        // SAFETY: the handle is valid while `self` lives, and `sqlite3_txn_state` only reads the connection's
        // state (a null schema name asks for the highest state over every attached database).
        let state = unsafe { libsql::ffi::sqlite3_txn_state(self.raw_handle(), std::ptr::null()) };
        state == libsql::ffi::SQLITE_TXN_WRITE
    }

    /// Commits the turn's transaction, and ends a relaxed start (see [`Self::relax_first_transaction`]).
    pub async fn commit(&self) -> Result<(), libsql::Error> {
        self.run("COMMIT", ()).await?;
        if self.relaxed.active.load(Ordering::Relaxed) {
            self.conn.execute("PRAGMA synchronous=NORMAL", ()).await?;
            if !self.relaxed.taken_over.load(Ordering::Relaxed) {
                // Re-installs SQLite's automatic checkpoint, which also turns the checkpoint on close back on.
                let every = self.relaxed.autocheckpoint.load(Ordering::Relaxed);
                let mut rows = self.conn.query(&format!("PRAGMA wal_autocheckpoint={every}"), ()).await?;
                rows.next().await?;
            }
            self.relaxed.active.store(false, Ordering::Relaxed);
        }
        Ok(())
    }

    /// Rolls the turn's transaction back, if one is open.
    pub async fn rollback(&self) -> Result<(), libsql::Error> {
        if !self.conn.is_autocommit() {
            self.conn.execute("ROLLBACK", ()).await?;
        }
        Ok(())
    }

    /// Opens a savepoint around one action.
    pub async fn savepoint(&self) -> Result<(), libsql::Error> {
        self.run("SAVEPOINT tern_action", ()).await?;
        Ok(())
    }

    /// Keeps the action's changes.
    pub async fn release_savepoint(&self) -> Result<(), libsql::Error> {
        self.run("RELEASE tern_action", ()).await?;
        Ok(())
    }

    /// Undoes the action's SQL changes.
    pub async fn rollback_savepoint(&self) -> Result<(), libsql::Error> {
        self.conn.execute("ROLLBACK TO tern_action", ()).await?;
        self.conn.execute("RELEASE tern_action", ()).await?;
        Ok(())
    }

    /// Records an open connection.
    pub async fn put_conn(
        &self,
        conn_id: &str,
        params: Option<&[u8]>,
        state: Option<&[u8]>,
        subscriptions: &str,
        now_ms: i64,
    ) -> Result<(), libsql::Error> {
        self.conn
            .execute(
                "INSERT OR REPLACE INTO _tern_conns (conn_id, params, state, subscriptions, connected_at) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![conn_id, params.map(<[u8]>::to_vec), state.map(<[u8]>::to_vec), subscriptions, now_ms],
            )
            .await?;
        Ok(())
    }

    /// Forgets a closed connection.
    pub async fn delete_conn(&self, conn_id: &str) -> Result<(), libsql::Error> {
        self.conn.execute("DELETE FROM _tern_conns WHERE conn_id = ?1", [conn_id]).await?;
        Ok(())
    }
}

impl ActorDb {
    /// Appends spans and, whenever the span ids cross a multiple of [`PRUNE_EVERY`], drops all but the newest
    /// [`MAX_SPANS`]. Call inside the turn's transaction.
    pub async fn write_spans(&self, spans: &[crate::trace::Span]) -> Result<(), libsql::Error> {
        for span in spans {
            self.run(
                "INSERT INTO _tern_traces (trace_id, span_id, parent_id, name, kind, start_ns, end_ns, status, message, \
                 attributes) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                params![
                    span.trace_id.as_str(),
                    span.span_id.as_str(),
                    span.parent_id.clone(),
                    span.name.as_str(),
                    span.kind as i64,
                    span.start_ns,
                    span.end_ns,
                    span.status as i64,
                    span.message.clone(),
                    span.attributes_json(),
                ],
            )
            .await?;
        }
        let last = self.conn.last_insert_rowid();
        if !spans.is_empty() && last / PRUNE_EVERY != (last - spans.len() as i64) / PRUNE_EVERY {
            self.run("DELETE FROM _tern_traces WHERE id <= ?1", [last - MAX_SPANS]).await?;
        }
        Ok(())
    }

    /// Spans that started in `[start_ns, end_ns)`, newest first, at most `limit + 1` (so callers can tell
    /// whether more matched).
    pub async fn read_spans(
        &self,
        start_ns: i64,
        end_ns: i64,
        limit: usize,
    ) -> Result<Vec<crate::trace::Span>, libsql::Error> {
        let mut rows = self
            .conn
            .query(
                "SELECT trace_id, span_id, parent_id, name, kind, start_ns, end_ns, status, message, attributes \
                 FROM _tern_traces WHERE start_ns >= ?1 AND start_ns < ?2 ORDER BY start_ns DESC, id DESC LIMIT ?3",
                params![start_ns, end_ns, limit as i64 + 1],
            )
            .await?;
        let mut spans = Vec::new();
        while let Some(row) = rows.next().await? {
            spans.push(crate::trace::Span::from_row(&row)?);
        }
        Ok(spans)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trace::{Span, SpanKind, SpanStatus};

    fn span(i: i64) -> Span {
        Span {
            trace_id: format!("{i:032x}"),
            span_id: format!("{i:016x}"),
            parent_id: None,
            name: format!("span {i}"),
            kind: SpanKind::Internal,
            start_ns: i,
            end_ns: i + 1,
            status: SpanStatus::Ok,
            message: None,
            attributes: Vec::new(),
        }
    }

    /// A database from schema version 2 loses its index on the spans when it next opens; the spans stay, and
    /// the inspector's read by time still finds them, newest first.
    #[tokio::test]
    async fn the_spans_index_of_version_2_is_dropped_and_reads_by_time_still_work() {
        let (_db, conn, sandbox) = crate::storage::sandbox::open(":memory:").await.unwrap();
        let actor = ActorDb::new(conn, sandbox);
        actor.open_actor("a", "n", "k").await.unwrap();
        actor.begin().await.unwrap();
        actor.write_spans(&(0..10).map(span).collect::<Vec<_>>()).await.unwrap();
        actor.commit().await.unwrap();
        let version_2 = "CREATE INDEX _tern_traces_start ON _tern_traces(start_ns);
             UPDATE _tern_meta SET value = 2 WHERE key = 'schema_version';";
        actor.conn.execute_batch(version_2).await.unwrap();

        actor.open_actor("a", "n", "k").await.unwrap();
        let mut rows = actor
            .conn
            .query("SELECT count(*) FROM sqlite_master WHERE type = 'index' AND tbl_name = '_tern_traces'", ())
            .await
            .unwrap();
        assert_eq!(rows.next().await.unwrap().unwrap().get::<i64>(0).unwrap(), 0);
        assert_eq!(actor.internal_schema().await, Some(ACTOR_SCHEMA_VERSION));
        let found: Vec<i64> = actor.read_spans(3, 7, 10).await.unwrap().iter().map(|s| s.start_ns).collect();
        assert_eq!(found, vec![6, 5, 4, 3]);
    }

    #[tokio::test]
    async fn spans_stay_bounded_and_the_newest_are_kept() {
        let (_db, conn, sandbox) = crate::storage::sandbox::open(":memory:").await.unwrap();
        let actor = ActorDb::new(conn, sandbox);
        actor.open_actor("a", "n", "k").await.unwrap();
        let total = MAX_SPANS + 3 * PRUNE_EVERY + 7;
        let mut written = 0;
        while written < total {
            let batch: Vec<Span> = (written..(written + 5).min(total)).map(span).collect();
            actor.begin().await.unwrap();
            actor.write_spans(&batch).await.unwrap();
            actor.commit().await.unwrap();
            written += batch.len() as i64;
        }
        let mut rows = actor.conn.query("SELECT count(*), min(start_ns), max(start_ns) FROM _tern_traces", ()).await;
        let row = rows.as_mut().unwrap().next().await.unwrap().unwrap();
        let (count, oldest, newest) =
            (row.get::<i64>(0).unwrap(), row.get::<i64>(1).unwrap(), row.get::<i64>(2).unwrap());
        assert!((MAX_SPANS..=MAX_SPANS + PRUNE_EVERY).contains(&count), "{count} spans kept");
        assert_eq!(newest, total - 1);
        assert_eq!(oldest, total - count, "only the oldest spans were dropped");
    }
}
