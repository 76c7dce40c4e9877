//! `sqlite`, a per-tenant SQL database. `execute(sql, params?)` → `{rowsAffected, lastInsertRowid}`;
//! `query(sql, params?)` → rows as objects; `batch([{sql, params?}, ...])` → one result per statement, all in
//! one transaction (a failing statement rolls back the whole batch); `destroy()`.
//!
//! Parameters are a positional array or an object binding `:key`, `@key` or `$key`. Every statement runs in the
//! SQL sandbox (see [`crate::storage::sandbox`]): the tenant's own tables only, no transaction statements, so a
//! batch commits or rolls back as one.

use serde::{Deserialize, Serialize};
use tern_proto::Value;

use crate::sdk::{Actor, ActorResult, Ctx};
use crate::storage::sql_value::SqlParams;

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct ExecuteOutput {
    rows_affected: u64,
    last_insert_rowid: i64,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct BatchOutput {
    rows: Vec<Value>,
    rows_affected: u64,
    last_insert_rowid: i64,
}

#[derive(Debug, Deserialize)]
struct Statement {
    sql: String,
    #[serde(default)]
    params: Option<Value>,
}

async fn execute(c: Ctx<()>, sql: &str, params: Option<Value>) -> ActorResult<ExecuteOutput> {
    let params = SqlParams::from_value(params.as_ref())?;
    let result = c.sql().execute_values(sql, &params).await?;
    Ok(ExecuteOutput { rows_affected: result.rows_affected, last_insert_rowid: result.last_insert_rowid })
}

async fn query(c: Ctx<()>, sql: &str, params: Option<Value>) -> ActorResult<Vec<Value>> {
    let params = SqlParams::from_value(params.as_ref())?;
    c.sql().query_values(sql, &params).await
}

async fn batch(c: Ctx<()>, statements: Vec<Statement>) -> ActorResult<Vec<BatchOutput>> {
    let sql = c.sql();
    let mut out = Vec::with_capacity(statements.len());
    for statement in statements {
        let params = SqlParams::from_value(statement.params.as_ref())?;
        let before = sql.total_changes();
        let rows = sql.query_values(&statement.sql, &params).await?;
        let rows_affected = if sql.total_changes() == before { 0 } else { sql.changes() };
        out.push(BatchOutput { rows, rows_affected, last_insert_rowid: sql.last_insert_rowid() });
    }
    Ok(out)
}

/// The `sqlite` actor definition.
pub fn sqlite() -> Actor<()> {
    Actor::new("sqlite")
        .action("execute", |c, (sql, params): (String, Option<Value>)| async move { execute(c, &sql, params).await })
        .action("query", |c, (sql, params): (String, Option<Value>)| async move { query(c, &sql, params).await })
        .action("batch", |c, statements: Vec<Statement>| batch(c, statements))
        .action("destroy", |c, ()| async move {
            c.destroy();
            Ok(())
        })
}
