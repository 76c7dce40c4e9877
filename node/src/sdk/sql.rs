//! SQL access for actor code.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use libsql::params::IntoParams;
use libsql::{Connection, Row};
use tern_proto::{ClientError, Value};

use super::error::{ActorError, ActorResult};
use crate::storage::ActorDb;
use crate::storage::sandbox::Sandbox;
use crate::storage::sql_value::{self, ExecuteResult, SqlParams};
use crate::trace::{Recorder, SpanKind};

/// Longest statement text kept in a span's `db.statement` attribute.
const MAX_STATEMENT_IN_SPAN: usize = 1000;

/// The actor's database. Every statement runs inside the SQL sandbox (see the README's "SQL" section): the
/// actor's own tables only, no `ATTACH`, no transaction statements, a short list of PRAGMAs, values up to
/// 16 MiB, and each statement interrupted after the definition's `statement_timeout`. Each statement also
/// records a span for the inspector's traces. The `*_values` helpers take dynamic [`Value`] parameters and
/// return rows as values, which is handy for actors that pass SQL through.
///
/// The runtime owns transactions: each turn is one transaction and each action a savepoint inside it, so use
/// [`Sql::transaction`] (not `BEGIN`) for finer-grained atomicity.
#[derive(Clone)]
pub struct Sql {
    conn: Connection,
    sandbox: Sandbox,
    statement_timeout: Duration,
    recorder: Arc<Recorder>,
}

/// Rows of a query, read one at a time with [`Rows::next`]; each row's columns with `row.get::<T>(index)`.
pub struct Rows {
    inner: libsql::Rows,
    sandbox: Sandbox,
    statement_timeout: Duration,
}

/// A statement compiled once and run many times with different parameters.
pub struct Statement {
    inner: libsql::Statement,
    sandbox: Sandbox,
    statement_timeout: Duration,
}

impl Sql {
    pub(crate) fn new(db: &ActorDb, recorder: Arc<Recorder>, statement_timeout: Duration) -> Sql {
        Sql { conn: db.connection().clone(), sandbox: db.sandbox().clone(), statement_timeout, recorder }
    }

    /// The connection, for the runtime's own statements on behalf of actor code (KV, schedules, workflow
    /// history): refused like any statement of this handle once its connection is no longer lent.
    pub(crate) fn connection(&self) -> Result<&Connection, ClientError> {
        self.sandbox.check_lent()?;
        Ok(&self.conn)
    }

    /// Runs `work` for statement `sql` inside a span.
    async fn traced<T>(&self, sql: &str, work: impl Future<Output = ActorResult<T>>) -> ActorResult<T> {
        let statement: String = sql.chars().take(MAX_STATEMENT_IN_SPAN).collect();
        let span = self.recorder.start("sql", SpanKind::Internal, vec![("db.statement".into(), statement)], false);
        let result = work.await;
        self.recorder.finish(span, result.as_ref().err().map(ToString::to_string));
        result
    }

    /// Runs one statement and returns the number of rows it changed.
    pub async fn execute(&self, sql: &str, params: impl IntoParams) -> ActorResult<u64> {
        self.traced(sql, async {
            let user = self.sandbox.enter_user(self.statement_timeout)?;
            self.conn.execute(sql, params).await.map_err(|e| ActorError::from(user.error(&e)))
        })
        .await
    }

    /// Runs one statement and returns its rows.
    pub async fn query(&self, sql: &str, params: impl IntoParams) -> ActorResult<Rows> {
        self.traced(sql, async {
            let user = self.sandbox.enter_user(self.statement_timeout)?;
            let inner = self.conn.query(sql, params).await.map_err(|e| ActorError::from(user.error(&e)))?;
            Ok(Rows { inner, sandbox: self.sandbox.clone(), statement_timeout: self.statement_timeout })
        })
        .await
    }

    /// Compiles one statement for repeated use.
    pub async fn prepare(&self, sql: &str) -> ActorResult<Statement> {
        let user = self.sandbox.enter_user(self.statement_timeout)?;
        let inner = self.conn.prepare(sql).await.map_err(|e| ActorError::from(user.error(&e)))?;
        Ok(Statement { inner, sandbox: self.sandbox.clone(), statement_timeout: self.statement_timeout })
    }

    /// Runs one statement with dynamic parameters and returns its rows as objects keyed by column name (at most
    /// 16 MiB of values; more fails with `database.result_too_large`).
    pub async fn query_values(&self, sql: &str, params: &SqlParams) -> ActorResult<Vec<Value>> {
        self.traced(sql, async {
            let user = self.sandbox.enter_user(self.statement_timeout)?;
            sql_value::query(&self.conn, &user, sql, params).await.map_err(ActorError::from)
        })
        .await
    }

    /// Runs one statement with dynamic parameters and returns the rows it changed and the last inserted row id.
    pub async fn execute_values(&self, sql: &str, params: &SqlParams) -> ActorResult<ExecuteResult> {
        self.traced(sql, async {
            let user = self.sandbox.enter_user(self.statement_timeout)?;
            sql_value::execute(&self.conn, &user, sql, params).await.map_err(ActorError::from)
        })
        .await
    }

    /// Rows changed by the most recent `INSERT`, `UPDATE` or `DELETE`.
    pub fn changes(&self) -> u64 {
        self.conn.changes()
    }

    /// Rows changed since the database was opened.
    pub fn total_changes(&self) -> u64 {
        self.conn.total_changes()
    }

    /// The row id of the most recent successful `INSERT`.
    pub fn last_insert_rowid(&self) -> i64 {
        self.conn.last_insert_rowid()
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
        self.sandbox.check_lent()?;
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

impl Rows {
    /// The next row, or `None` after the last.
    pub async fn next(&mut self) -> ActorResult<Option<Row>> {
        let user = self.sandbox.enter_user(self.statement_timeout)?;
        self.inner.next().await.map_err(|e| ActorError::from(user.error(&e)))
    }

    /// How many columns each row has.
    pub fn column_count(&self) -> i32 {
        self.inner.column_count()
    }

    /// The name of column `index`.
    pub fn column_name(&self, index: i32) -> Option<&str> {
        self.inner.column_name(index)
    }
}

impl Statement {
    /// Runs the statement with `params` and returns the number of rows it changed; the statement is reset for
    /// the next run.
    pub async fn execute(&self, params: impl IntoParams) -> ActorResult<usize> {
        let user = self.sandbox.enter_user(self.statement_timeout)?;
        let result = self.inner.execute(params).await.map_err(|e| ActorError::from(user.error(&e)));
        self.inner.reset();
        result
    }

    /// Runs the statement with `params` and returns its rows.
    pub async fn query(&self, params: impl IntoParams) -> ActorResult<Rows> {
        self.inner.reset();
        let user = self.sandbox.enter_user(self.statement_timeout)?;
        let inner = self.inner.query(params).await.map_err(|e| ActorError::from(user.error(&e)))?;
        Ok(Rows { inner, sandbox: self.sandbox.clone(), statement_timeout: self.statement_timeout })
    }
}
