//! SQL access for actor code.

use std::ops::Deref;

use libsql::Connection;
use tern_proto::Value;

use super::error::{ActorError, ActorResult};
use crate::storage::sql_value::{self, ExecuteResult, SqlParams};

/// The actor's database connection. Derefs to [`libsql::Connection`] for the full libSQL API; the helpers below
/// take dynamic [`Value`] parameters and return rows as values, which is handy for actors that pass SQL through.
///
/// The runtime owns transactions: each turn is one transaction and each action a savepoint inside it, so use
/// savepoints (not `BEGIN`) for finer-grained atomicity.
#[derive(Clone)]
pub struct Sql {
    conn: Connection,
}

impl Sql {
    pub(crate) fn new(conn: Connection) -> Sql {
        Sql { conn }
    }

    /// Runs one statement with dynamic parameters and returns its rows as objects keyed by column name.
    pub async fn query_values(&self, sql: &str, params: &SqlParams) -> ActorResult<Vec<Value>> {
        sql_value::query(&self.conn, sql, params).await.map_err(ActorError::from)
    }

    /// Runs one statement with dynamic parameters and returns the rows it changed and the last inserted row id.
    pub async fn execute_values(&self, sql: &str, params: &SqlParams) -> ActorResult<ExecuteResult> {
        sql_value::execute(&self.conn, sql, params).await.map_err(ActorError::from)
    }
}

impl Deref for Sql {
    type Target = Connection;
    fn deref(&self) -> &Connection {
        &self.conn
    }
}
