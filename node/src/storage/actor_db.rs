//! One actor's database: its internal `_tern_*` tables, next to the user's own tables.
//!
//! * `_tern_meta`: key/value facts about the actor (format version, id, name, key, whether create hooks ran);
//! * `_tern_state`: the actor's state, one CBOR row;
//! * `_tern_conns`: open connections (id, parameters, connection state, subscriptions), for inspection.
//!
//! The runtime wraps each turn (a batch of actions) in one transaction with a savepoint per action; the helpers
//! here are the statements it runs.

use libsql::{Connection, params};

/// Version of the per-actor internal schema.
pub const ACTOR_SCHEMA_VERSION: i64 = 1;

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
";

/// An actor's open database connection with typed access to the internal tables.
#[derive(Clone)]
pub struct ActorDb {
    conn: Connection,
}

/// What was found in the database when the actor started.
#[derive(Debug, Default)]
pub struct LoadedActor {
    /// Whether the create hooks already ran (and their state was committed).
    pub initialized: bool,
    /// The last committed state, CBOR.
    pub state: Option<Vec<u8>>,
}

impl ActorDb {
    /// Wraps an open connection.
    pub fn new(conn: Connection) -> ActorDb {
        ActorDb { conn }
    }

    /// The underlying connection.
    pub fn connection(&self) -> &Connection {
        &self.conn
    }

    /// Creates the internal tables if needed and records identity facts; returns what was stored before.
    pub async fn open_actor(&self, actor_id: &str, name: &str, key: &str) -> Result<LoadedActor, libsql::Error> {
        self.conn.execute_batch(SCHEMA).await?;
        self.conn
            .execute(
                "INSERT OR IGNORE INTO _tern_meta (key, value) VALUES ('schema_version', ?1), ('actor_id', ?2), ('name', ?3), ('key', ?4)",
                params![ACTOR_SCHEMA_VERSION, actor_id, name, key],
            )
            .await?;
        // Connections do not survive a restart of the actor: forget the rows of the previous run.
        self.conn.execute("DELETE FROM _tern_conns", ()).await?;
        let mut rows = self.conn.query("SELECT value FROM _tern_meta WHERE key = 'initialized'", ()).await?;
        let initialized = rows.next().await?.is_some();
        let mut rows = self.conn.query("SELECT data FROM _tern_state WHERE id = 0", ()).await?;
        let state = match rows.next().await? {
            Some(row) => Some(row.get::<Vec<u8>>(0)?),
            None => None,
        };
        Ok(LoadedActor { initialized, state })
    }

    /// Records that the create hooks ran. Call inside the same transaction as the first state write.
    pub async fn mark_initialized(&self) -> Result<(), libsql::Error> {
        self.conn.execute("INSERT OR REPLACE INTO _tern_meta (key, value) VALUES ('initialized', 1)", ()).await?;
        Ok(())
    }

    /// Writes the state.
    pub async fn save_state(&self, cbor: &[u8]) -> Result<(), libsql::Error> {
        self.conn
            .execute(
                "INSERT OR REPLACE INTO _tern_state (id, data) VALUES (0, ?1)",
                [libsql::Value::Blob(cbor.to_vec())],
            )
            .await?;
        Ok(())
    }

    /// Starts the turn's transaction (taking the write lock at once).
    pub async fn begin(&self) -> Result<(), libsql::Error> {
        self.conn.execute("BEGIN IMMEDIATE", ()).await?;
        Ok(())
    }

    /// Commits the turn's transaction.
    pub async fn commit(&self) -> Result<(), libsql::Error> {
        self.conn.execute("COMMIT", ()).await?;
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
        self.conn.execute("SAVEPOINT tern_action", ()).await?;
        Ok(())
    }

    /// Keeps the action's changes.
    pub async fn release_savepoint(&self) -> Result<(), libsql::Error> {
        self.conn.execute("RELEASE tern_action", ()).await?;
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
