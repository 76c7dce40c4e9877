//! SQL access for actor code.

use std::future::Future;
use std::ops::Deref;
use std::sync::Arc;

use libsql::params::IntoParams;
use libsql::{Connection, Rows};
use tern_proto::Value;

use super::error::{ActorError, ActorResult};
use crate::storage::sql_value::{self, ExecuteResult, SqlParams};
use crate::trace::{Recorder, SpanKind};

/// Longest statement text kept in a span's `db.statement` attribute.
const MAX_STATEMENT_IN_SPAN: usize = 1000;

/// The actor's database connection. Derefs to [`libsql::Connection`] for the full libSQL API; [`Sql::execute`]
/// and [`Sql::query`] (which shadow the connection's) also record a span per statement for the inspector's
/// traces, and the `*_values` helpers take dynamic [`Value`] parameters and return rows as values, which is
/// handy for actors that pass SQL through.
///
/// The runtime owns transactions: each turn is one transaction and each action a savepoint inside it, so use
/// savepoints (not `BEGIN`) for finer-grained atomicity.
#[derive(Clone)]
pub struct Sql {
    conn: Connection,
    recorder: Arc<Recorder>,
}

impl Sql {
    pub(crate) fn new(conn: Connection, recorder: Arc<Recorder>) -> Sql {
        Sql { conn, recorder }
    }

    /// Runs `work` for statement `sql` inside a span.
    async fn traced<T>(&self, sql: &str, work: impl Future<Output = ActorResult<T>>) -> ActorResult<T> {
        let statement: String = sql.chars().take(MAX_STATEMENT_IN_SPAN).collect();
        let span = self.recorder.start("sql", SpanKind::Internal, vec![("db.statement".into(), statement)], false);
        let result = work.await;
        self.recorder.finish(span, result.as_ref().err().map(ToString::to_string));
        result
    }

    /// Runs one statement and returns the number of rows it changed (like [`Connection::execute`]).
    pub async fn execute(&self, sql: &str, params: impl IntoParams) -> ActorResult<u64> {
        self.traced(sql, async { Ok(self.conn.execute(sql, params).await?) }).await
    }

    /// Runs one statement and returns its rows (like [`Connection::query`]).
    pub async fn query(&self, sql: &str, params: impl IntoParams) -> ActorResult<Rows> {
        self.traced(sql, async { Ok(self.conn.query(sql, params).await?) }).await
    }

    /// Runs one statement with dynamic parameters and returns its rows as objects keyed by column name.
    pub async fn query_values(&self, sql: &str, params: &SqlParams) -> ActorResult<Vec<Value>> {
        self.traced(sql, async { sql_value::query(&self.conn, sql, params).await.map_err(ActorError::from) }).await
    }

    /// Runs one statement with dynamic parameters and returns the rows it changed and the last inserted row id.
    pub async fn execute_values(&self, sql: &str, params: &SqlParams) -> ActorResult<ExecuteResult> {
        self.traced(sql, async { sql_value::execute(&self.conn, sql, params).await.map_err(ActorError::from) }).await
    }
}

impl Sql {
    /// Runs `work` in a nested transaction (a savepoint inside the action's own): if it fails, only its SQL
    /// changes are undone and the action may go on; if it succeeds, they commit with the turn.
    pub async fn transaction<R, F, Fut>(&self, work: F) -> ActorResult<R>
    where
        F: FnOnce(Sql) -> Fut,
        Fut: Future<Output = ActorResult<R>>,
    {
        let name = format!("tern_tx_{}", uuid::Uuid::new_v4().simple());
        self.conn.execute(&format!("SAVEPOINT {name}"), ()).await?;
        let result = work(self.clone()).await;
        let end = match &result {
            Ok(_) => format!("RELEASE {name}"),
            Err(_) => format!("ROLLBACK TO {name}; RELEASE {name}"),
        };
        self.conn.execute_batch(&end).await?;
        result
    }
}

impl Deref for Sql {
    type Target = Connection;
    fn deref(&self) -> &Connection {
        &self.conn
    }
}
