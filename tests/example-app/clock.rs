//! `clock`: schedules and cron jobs. Every fired schedule appends its note to the state, so tests can see what
//! fired and how often.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use tern_node::{Actor, CronJob};

/// The notes of every schedule that fired, in firing order.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Clock {
    fired: Vec<String>,
}

/// The `clock` actor definition.
pub fn clock() -> Actor<Clock> {
    Actor::new("clock")
        .action("remember", |c, note: String| async move {
            c.update(|s: &mut Clock| s.fired.push(note));
            Ok(())
        })
        .action("fired", |c, ()| async move { Ok(c.read(|s: &Clock| s.fired.clone())) })
        .action("remindIn", |c, (ms, note): (u64, String)| async move {
            c.schedule().after(Duration::from_millis(ms), "remember", (note,)).await
        })
        .action("remindUnknown", |c, ()| async move { c.schedule().after(Duration::from_secs(1), "nope", ()).await })
        .action("cancel", |c, id: String| async move { c.schedule().cancel(&id).await })
        .action("pending", |c, ()| async move { c.schedule().list().await })
        .action("cronSet", |c, (name, expression, timezone): (String, String, String)| async move {
            let job = CronJob::new(&name, &expression, "remember").args((name.clone(),))?.timezone(&timezone);
            c.cron().set(job).await
        })
        .action("everySet", |c, (name, ms): (String, u64)| async move {
            c.cron().every(&name, Duration::from_millis(ms), "remember", (name.clone(),)).await
        })
        .action("jobs", |c, ()| async move { c.cron().list().await })
        .action("jobDelete", |c, name: String| async move { c.cron().delete(&name).await })
        .action("history", |c, name: String| async move { c.cron().history(&name, 10).await })
}
