//! Schedules and cron jobs for actor code: `c.schedule()` for one-shot events, `c.cron()` for recurring jobs.
//! Each invokes an action of the same actor with arguments, survives sleep and crashes, and wakes the actor
//! when due. Like every write, a schedule set by a failing action is rolled back with it.
//!
//! ```ignore
//! let id = c.schedule().after(Duration::from_secs(60), "remind", ("tea",)).await?;
//! c.cron().set(CronJob::new("digest", "0 9 * * MON-FRI", "sendDigest").timezone("Europe/Paris")).await?;
//! c.cron().every("heartbeat", Duration::from_secs(30), "beat", ()).await?;
//! ```

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde::Serialize;
use tern_proto::{ClientError, Value};

use super::error::{ActorError, ActorResult};
use super::recurrence;
use super::sql::Sql;
use crate::clock::now_ms;
use crate::storage::schedules::{self, Fire, Repeat, Scheduled};

/// How many fires of a recurring job its history keeps by default (RivetKit's `maxHistory`).
const DEFAULT_MAX_HISTORY: i64 = 100;
/// Most fires a recurring job's history may keep.
const MAX_HISTORY: i64 = 1000;

/// What schedule handles need from the actor.
#[derive(Clone)]
pub(crate) struct ScheduleAccess {
    pub sql: Sql,
    /// The actor's action names, to refuse schedules for actions that do not exist.
    pub action_names: Arc<Vec<String>>,
    /// Set when schedules change, so the turn re-arms the actor's alarm.
    pub changed: Arc<AtomicBool>,
}

impl ScheduleAccess {
    fn check_action(&self, action: &str) -> Result<(), ClientError> {
        if self.action_names.iter().any(|a| a == action) { Ok(()) } else { Err(ClientError::action_not_found(action)) }
    }

    /// Arms a wake-up at `at_ms` that runs no action (a workflow sleep): the actor is woken and its run loop
    /// resumes. `id` replaces an earlier wake-up of the same id.
    pub(crate) async fn wake_at(&self, id: &str, at_ms: i64) -> ActorResult<()> {
        let wake = Scheduled {
            id: id.to_string(),
            action: String::new(),
            args: Value::Array(Vec::new()),
            run_at: at_ms,
            repeat: Repeat::Once,
            max_history: 0,
        };
        schedules::put(self.sql.connection()?, &wake, now_ms()).await?;
        self.changed.store(true, Ordering::Release);
        Ok(())
    }

    async fn put(&self, schedule: Scheduled) -> ActorResult<()> {
        self.check_action(&schedule.action)?;
        recurrence::validate(&schedule.repeat)?;
        schedules::put(self.sql.connection()?, &schedule, now_ms()).await?;
        self.changed.store(true, Ordering::Release);
        Ok(())
    }
}

/// Positional arguments from a serializable value: a tuple or array as is, `()` as none, anything else as the
/// single argument.
fn positional(args: impl Serialize) -> ActorResult<Value> {
    Ok(match Value::serialized(&args).map_err(ActorError::internal)? {
        Value::Array(items) => Value::Array(items),
        Value::Null => Value::Array(Vec::new()),
        single => Value::Array(vec![single]),
    })
}

/// A one-shot scheduled event.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ScheduledEvent {
    pub id: String,
    pub action: String,
    pub args: Value,
    /// When it fires, in ms since the epoch.
    pub run_at: i64,
}

/// One-shot events (`c.schedule()`).
pub struct Schedule(pub(crate) ScheduleAccess);

impl Schedule {
    /// Invokes `action` with `args` after `delay`; returns the event's id.
    pub async fn after(&self, delay: Duration, action: &str, args: impl Serialize) -> ActorResult<String> {
        self.at(now_ms() + delay.as_millis() as i64, action, args).await
    }

    /// Invokes `action` with `args` at `at_ms` (ms since the epoch; a past time fires as soon as possible).
    pub async fn at(&self, at_ms: i64, action: &str, args: impl Serialize) -> ActorResult<String> {
        let id = uuid::Uuid::new_v4().simple().to_string();
        let schedule = Scheduled {
            id: id.clone(),
            action: action.to_string(),
            args: positional(args)?,
            run_at: at_ms,
            repeat: Repeat::Once,
            max_history: 0,
        };
        self.0.put(schedule).await?;
        Ok(id)
    }

    /// Cancels an event; whether it was still pending.
    pub async fn cancel(&self, id: &str) -> ActorResult<bool> {
        let removed = schedules::remove(self.0.sql.connection()?, false, id).await?;
        self.0.changed.store(true, Ordering::Release);
        Ok(removed)
    }

    /// A pending event.
    pub async fn get(&self, id: &str) -> ActorResult<Option<ScheduledEvent>> {
        Ok(schedules::get(self.0.sql.connection()?, false, id).await?.map(event))
    }

    /// Pending events, soonest first.
    pub async fn list(&self) -> ActorResult<Vec<ScheduledEvent>> {
        Ok(schedules::list(self.0.sql.connection()?, false).await?.into_iter().map(event).collect())
    }
}

fn event(s: Scheduled) -> ScheduledEvent {
    ScheduledEvent { id: s.id, action: s.action, args: s.args, run_at: s.run_at }
}

/// A cron job to set with [`Cron::set`].
#[derive(Debug, Clone)]
pub struct CronJob {
    name: String,
    expression: String,
    action: String,
    args: Value,
    timezone: String,
    max_history: i64,
}

impl CronJob {
    /// Job `name` invoking `action` (without arguments) at each match of the 5-field `expression`, in UTC.
    pub fn new(name: &str, expression: &str, action: &str) -> CronJob {
        CronJob {
            name: name.to_string(),
            expression: expression.to_string(),
            action: action.to_string(),
            args: Value::Array(Vec::new()),
            timezone: "UTC".to_string(),
            max_history: DEFAULT_MAX_HISTORY,
        }
    }

    /// The arguments the action receives.
    pub fn args(mut self, args: impl Serialize) -> ActorResult<CronJob> {
        self.args = positional(args)?;
        Ok(self)
    }

    /// The IANA time zone the expression is evaluated in (e.g. `Europe/Paris`).
    pub fn timezone(mut self, timezone: &str) -> CronJob {
        self.timezone = timezone.to_string();
        self
    }

    /// How many fires the history keeps (0..=1000).
    pub fn max_history(mut self, fires: i64) -> CronJob {
        self.max_history = fires.clamp(0, MAX_HISTORY);
        self
    }
}

/// A recurring job as [`Cron::get`] and [`Cron::list`] report it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CronInfo {
    pub name: String,
    pub action: String,
    pub args: Value,
    /// The cron expression, for cron jobs.
    pub expression: Option<String>,
    pub timezone: Option<String>,
    /// The interval, for interval jobs.
    pub interval_ms: Option<i64>,
    /// When it fires next, in ms since the epoch.
    pub next_run_at: i64,
}

/// One fire in a job's history.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CronFire {
    pub action: String,
    pub scheduled_at: i64,
    pub fired_at: i64,
    pub finished_at: i64,
    /// `"ok"` or `"error"`.
    pub result: String,
    pub error: Option<String>,
}

/// Recurring jobs (`c.cron()`), by name; setting a name again replaces the job.
pub struct Cron(pub(crate) ScheduleAccess);

impl Cron {
    /// Sets a cron job; `schedule.invalid_cron` or `schedule.invalid_timezone` when they do not parse.
    pub async fn set(&self, job: CronJob) -> ActorResult<()> {
        let repeat = Repeat::Cron { expression: job.expression, timezone: job.timezone };
        recurrence::validate(&repeat)?;
        let run_at = recurrence::next_after(&repeat, now_ms()).ok_or_else(|| {
            ActorError::from(ClientError::new("schedule", "invalid_cron", 400, "The cron expression never matches"))
        })?;
        let schedule = Scheduled {
            id: job.name,
            action: job.action,
            args: job.args,
            run_at,
            repeat,
            max_history: job.max_history,
        };
        self.0.put(schedule).await
    }

    /// Sets an interval job: `action` with `args` every `interval` (at least 5 s), first after one interval.
    pub async fn every(&self, name: &str, interval: Duration, action: &str, args: impl Serialize) -> ActorResult<()> {
        let interval_ms = interval.as_millis() as i64;
        let schedule = Scheduled {
            id: name.to_string(),
            action: action.to_string(),
            args: positional(args)?,
            run_at: now_ms() + interval_ms,
            repeat: Repeat::Every { interval_ms },
            max_history: DEFAULT_MAX_HISTORY,
        };
        self.0.put(schedule).await
    }

    /// A job by name.
    pub async fn get(&self, name: &str) -> ActorResult<Option<CronInfo>> {
        Ok(schedules::get(self.0.sql.connection()?, true, name).await?.map(info))
    }

    /// Every job, soonest first.
    pub async fn list(&self) -> ActorResult<Vec<CronInfo>> {
        Ok(schedules::list(self.0.sql.connection()?, true).await?.into_iter().map(info).collect())
    }

    /// Deletes a job; whether it existed. Its history is kept.
    pub async fn delete(&self, name: &str) -> ActorResult<bool> {
        let removed = schedules::remove(self.0.sql.connection()?, true, name).await?;
        self.0.changed.store(true, Ordering::Release);
        Ok(removed)
    }

    /// The last `limit` fires of a job, newest first.
    pub async fn history(&self, name: &str, limit: usize) -> ActorResult<Vec<CronFire>> {
        let fires = schedules::history(self.0.sql.connection()?, name, limit.min(MAX_HISTORY as usize) as i64).await?;
        Ok(fires.into_iter().map(fire).collect())
    }
}

fn info(s: Scheduled) -> CronInfo {
    let (expression, timezone, interval_ms) = match s.repeat {
        Repeat::Cron { expression, timezone } => (Some(expression), Some(timezone), None),
        Repeat::Every { interval_ms } => (None, None, Some(interval_ms)),
        Repeat::Once => (None, None, None),
    };
    CronInfo { name: s.id, action: s.action, args: s.args, expression, timezone, interval_ms, next_run_at: s.run_at }
}

fn fire(f: Fire) -> CronFire {
    CronFire {
        action: f.action,
        scheduled_at: f.scheduled_at,
        fired_at: f.fired_at,
        finished_at: f.finished_at,
        result: f.result,
        error: f.error,
    }
}
