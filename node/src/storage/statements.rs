//! Prepared statements kept with an open actor database, so the statements every turn runs (begin, savepoints,
//! commit, span and state writes) are parsed once per open file rather than once per turn.

use std::collections::HashMap;
use std::sync::Mutex;

use libsql::params::IntoParams;
use libsql::{Connection, Statement};

/// A connection's cache of prepared statements, by SQL text. A statement is taken out while it runs, so no lock
/// is held across an await; one statement per text is kept.
#[derive(Default)]
pub struct Statements {
    cache: Mutex<HashMap<&'static str, Statement>>,
}

impl Statements {
    /// Runs `sql` (which returns no rows) on `conn` with `params`, preparing it on first use; returns the number
    /// of rows changed.
    pub async fn execute(
        &self,
        conn: &Connection,
        sql: &'static str,
        params: impl IntoParams,
    ) -> Result<usize, libsql::Error> {
        let taken = self.lock().remove(sql);
        let statement = match taken {
            Some(statement) => statement,
            None => conn.prepare(sql).await?,
        };
        statement.reset();
        let result = statement.execute(params).await;
        // Reset at once so the statement holds no cursor (nor the read it implies) until it runs again.
        statement.reset();
        self.lock().insert(sql, statement);
        result
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<&'static str, Statement>> {
        self.cache.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn statements_run_again_with_new_parameters_and_inside_transactions() {
        let db = libsql::Builder::new_local(":memory:").build().await.unwrap();
        let conn = db.connect().unwrap();
        conn.execute("CREATE TABLE t (v INTEGER)", ()).await.unwrap();
        let statements = Statements::default();
        for round in 0..3 {
            statements.execute(&conn, "BEGIN IMMEDIATE", ()).await.unwrap();
            for v in 0..10 {
                statements.execute(&conn, "INSERT INTO t (v) VALUES (?1)", [v + round * 10]).await.unwrap();
            }
            statements.execute(&conn, "COMMIT", ()).await.unwrap();
        }
        let mut rows = conn.query("SELECT count(*), sum(v) FROM t", ()).await.unwrap();
        let row = rows.next().await.unwrap().unwrap();
        assert_eq!((row.get::<i64>(0).unwrap(), row.get::<i64>(1).unwrap()), (30, (0..30).sum::<i64>()));
        // A failing statement is reported, and the cache keeps working.
        assert!(statements.execute(&conn, "INSERT INTO missing (v) VALUES (?1)", [1]).await.is_err());
        statements.execute(&conn, "DELETE FROM t WHERE v < ?1", [15]).await.unwrap();
        let mut rows = conn.query("SELECT count(*) FROM t", ()).await.unwrap();
        assert_eq!(rows.next().await.unwrap().unwrap().get::<i64>(0).unwrap(), 15);
    }
}
