//! An actor's schedules, in its own database: one-shot events (`after`, `at`), cron jobs (a 5-field expression
//! in a time zone) and interval jobs, each invoking an action of the same actor with arguments, plus the fire
//! history of cron and interval jobs. Firing a schedule and recording it commit in the same transaction as the
//! action's own changes, so a schedule fires exactly once per due time even across a crash.

use libsql::{Connection, params};
use tern_proto::{ClientError, Value};

use super::sql_value::sql_error;

/// Tables, created with the actor's other internal tables.
pub const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS _tern_schedules (
    kind        TEXT NOT NULL,
    id          TEXT NOT NULL,
    action      TEXT NOT NULL,
    args        BLOB NOT NULL,
    run_at      INTEGER NOT NULL,
    cron        TEXT,
    timezone    TEXT,
    interval_ms INTEGER,
    max_history INTEGER NOT NULL,
    created_at  INTEGER NOT NULL,
    PRIMARY KEY (kind, id)
);
CREATE INDEX IF NOT EXISTS _tern_schedules_due ON _tern_schedules(run_at);
CREATE TABLE IF NOT EXISTS _tern_cron_history (
    seq          INTEGER PRIMARY KEY,
    name         TEXT NOT NULL,
    action       TEXT NOT NULL,
    scheduled_at INTEGER NOT NULL,
    fired_at     INTEGER NOT NULL,
    finished_at  INTEGER NOT NULL,
    result       TEXT NOT NULL,
    error        TEXT
);
CREATE INDEX IF NOT EXISTS _tern_cron_history_name ON _tern_cron_history(name, seq);
";

/// Most schedules (one-shot and recurring together) an actor may hold (RivetKit `maxSchedules`).
pub const MAX_SCHEDULES: i64 = 1000;

/// What a schedule repeats on.
#[derive(Debug, Clone, PartialEq)]
pub enum Repeat {
    /// Fires once.
    Once,
    /// A 5-field cron expression evaluated in an IANA time zone.
    Cron { expression: String, timezone: String },
    /// Every `interval_ms` milliseconds.
    Every { interval_ms: i64 },
}

impl Repeat {
    fn kind(&self) -> &'static str {
        match self {
            Repeat::Once => "once",
            Repeat::Cron { .. } => "cron",
            Repeat::Every { .. } => "every",
        }
    }
}

/// One schedule as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct Scheduled {
    /// A generated id for one-shot events, the job's name for cron and interval jobs.
    pub id: String,
    pub action: String,
    /// The action's positional arguments.
    pub args: Value,
    /// When it fires next, in ms since the epoch.
    pub run_at: i64,
    pub repeat: Repeat,
    /// How many fires of a recurring job the history keeps.
    pub max_history: i64,
}

/// One fire of a cron or interval job.
#[derive(Debug, Clone, PartialEq)]
pub struct Fire {
    pub action: String,
    pub scheduled_at: i64,
    pub fired_at: i64,
    pub finished_at: i64,
    /// `"ok"` or `"error"`.
    pub result: String,
    pub error: Option<String>,
}

fn cbor(value: &Value) -> Vec<u8> {
    tern_proto::value::to_cbor_bytes(value)
}

fn from_row(row: &libsql::Row) -> Result<Scheduled, ClientError> {
    let kind: String = row.get(0).map_err(sql_error)?;
    let args: Vec<u8> = row.get(3).map_err(sql_error)?;
    let repeat = match kind.as_str() {
        "cron" => Repeat::Cron { expression: row.get(5).map_err(sql_error)?, timezone: row.get(6).map_err(sql_error)? },
        "every" => Repeat::Every { interval_ms: row.get(7).map_err(sql_error)? },
        _ => Repeat::Once,
    };
    Ok(Scheduled {
        id: row.get(1).map_err(sql_error)?,
        action: row.get(2).map_err(sql_error)?,
        args: tern_proto::value::from_cbor_bytes(&args)?,
        run_at: row.get(4).map_err(sql_error)?,
        repeat,
        max_history: row.get(8).map_err(sql_error)?,
    })
}

const COLUMNS: &str = "kind, id, action, args, run_at, cron, timezone, interval_ms, max_history";

async fn select(
    conn: &Connection,
    filter: &str,
    args: impl libsql::params::IntoParams,
) -> Result<Vec<Scheduled>, ClientError> {
    let sql = format!("SELECT {COLUMNS} FROM _tern_schedules {filter}");
    let mut rows = conn.query(&sql, args).await.map_err(sql_error)?;
    let mut out = Vec::new();
    while let Some(row) = rows.next().await.map_err(sql_error)? {
        out.push(from_row(&row)?);
    }
    Ok(out)
}

/// Stores a schedule, replacing one of the same kind and id; `schedule.limit_reached` beyond
/// [`MAX_SCHEDULES`].
pub async fn put(conn: &Connection, schedule: &Scheduled, now_ms: i64) -> Result<(), ClientError> {
    let kind = schedule.repeat.kind();
    let mut count = conn
        .query(
            "SELECT count(*) FROM _tern_schedules WHERE NOT (kind = ?1 AND id = ?2)",
            params![kind, schedule.id.as_str()],
        )
        .await
        .map_err(sql_error)?;
    let existing: i64 = match count.next().await.map_err(sql_error)? {
        Some(row) => row.get(0).map_err(sql_error)?,
        None => 0,
    };
    if existing >= MAX_SCHEDULES {
        return Err(ClientError::new(
            "schedule",
            "limit_reached",
            400,
            format!("An actor holds at most {MAX_SCHEDULES} schedules"),
        ));
    }
    let (cron, timezone, interval) = match &schedule.repeat {
        Repeat::Once => (None, None, None),
        Repeat::Cron { expression, timezone } => (Some(expression.clone()), Some(timezone.clone()), None),
        Repeat::Every { interval_ms } => (None, None, Some(*interval_ms)),
    };
    conn.execute(
        "INSERT OR REPLACE INTO _tern_schedules (kind, id, action, args, run_at, cron, timezone, interval_ms, max_history, created_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
        params![
            kind,
            schedule.id.as_str(),
            schedule.action.as_str(),
            cbor(&schedule.args),
            schedule.run_at,
            cron,
            timezone,
            interval,
            schedule.max_history,
            now_ms
        ],
    )
    .await
    .map_err(sql_error)?;
    Ok(())
}

/// The schedule of `kind` (`once`, or recurring: `cron`/`every`) with `id`.
pub async fn get(conn: &Connection, recurring: bool, id: &str) -> Result<Option<Scheduled>, ClientError> {
    let filter = if recurring { "WHERE kind != 'once' AND id = ?1" } else { "WHERE kind = 'once' AND id = ?1" };
    Ok(select(conn, filter, [id]).await?.into_iter().next())
}

/// One-shot events, or recurring jobs, soonest first.
pub async fn list(conn: &Connection, recurring: bool) -> Result<Vec<Scheduled>, ClientError> {
    let filter =
        if recurring { "WHERE kind != 'once' ORDER BY run_at, id" } else { "WHERE kind = 'once' ORDER BY run_at, id" };
    select(conn, filter, ()).await
}

/// Removes a schedule; whether it existed.
pub async fn remove(conn: &Connection, recurring: bool, id: &str) -> Result<bool, ClientError> {
    let sql = if recurring {
        "DELETE FROM _tern_schedules WHERE kind != 'once' AND id = ?1"
    } else {
        "DELETE FROM _tern_schedules WHERE kind = 'once' AND id = ?1"
    };
    Ok(conn.execute(sql, [id]).await.map_err(sql_error)? > 0)
}

/// Schedules due at `now_ms`, oldest first.
pub async fn due(conn: &Connection, now_ms: i64) -> Result<Vec<Scheduled>, ClientError> {
    select(conn, "WHERE run_at <= ?1 ORDER BY run_at, id", [now_ms]).await
}

/// When the next schedule is due, if any.
pub async fn next_due(conn: &Connection) -> Result<Option<i64>, ClientError> {
    let mut rows = conn.query("SELECT MIN(run_at) FROM _tern_schedules", ()).await.map_err(sql_error)?;
    match rows.next().await.map_err(sql_error)? {
        Some(row) => row.get::<Option<i64>>(0).map_err(sql_error),
        None => Ok(None),
    }
}

/// Moves a recurring job to its next due time.
pub async fn reschedule(conn: &Connection, schedule: &Scheduled, run_at: i64) -> Result<(), ClientError> {
    conn.execute(
        "UPDATE _tern_schedules SET run_at = ?3 WHERE kind = ?1 AND id = ?2",
        params![schedule.repeat.kind(), schedule.id.as_str(), run_at],
    )
    .await
    .map_err(sql_error)?;
    Ok(())
}

/// Records a fire of job `name`, keeping its last `max_history` fires.
pub async fn record_fire(conn: &Connection, name: &str, fire: &Fire, max_history: i64) -> Result<(), ClientError> {
    conn.execute(
        "INSERT INTO _tern_cron_history (name, action, scheduled_at, fired_at, finished_at, result, error) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![
            name,
            fire.action.as_str(),
            fire.scheduled_at,
            fire.fired_at,
            fire.finished_at,
            fire.result.as_str(),
            fire.error.clone()
        ],
    )
    .await
    .map_err(sql_error)?;
    conn.execute(
        "DELETE FROM _tern_cron_history WHERE name = ?1 AND seq NOT IN \
         (SELECT seq FROM _tern_cron_history WHERE name = ?1 ORDER BY seq DESC LIMIT ?2)",
        params![name, max_history],
    )
    .await
    .map_err(sql_error)?;
    Ok(())
}

/// The last `limit` fires of job `name`, newest first.
pub async fn history(conn: &Connection, name: &str, limit: i64) -> Result<Vec<Fire>, ClientError> {
    let mut rows = conn
        .query(
            "SELECT action, scheduled_at, fired_at, finished_at, result, error FROM _tern_cron_history \
             WHERE name = ?1 ORDER BY seq DESC LIMIT ?2",
            params![name, limit],
        )
        .await
        .map_err(sql_error)?;
    let mut out = Vec::new();
    while let Some(row) = rows.next().await.map_err(sql_error)? {
        out.push(Fire {
            action: row.get(0).map_err(sql_error)?,
            scheduled_at: row.get(1).map_err(sql_error)?,
            fired_at: row.get(2).map_err(sql_error)?,
            finished_at: row.get(3).map_err(sql_error)?,
            result: row.get(4).map_err(sql_error)?,
            error: row.get(5).map_err(sql_error)?,
        });
    }
    Ok(out)
}
