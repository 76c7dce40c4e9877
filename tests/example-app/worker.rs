//! `worker`: a durable queue consumed by a run loop. Messages on `jobs` are numbers added to a running total
//! (each processed exactly once, in order); a waiting sender gets the new total back. Messages on `slow` are
//! handled the same way after a pause, so that a backlog builds up behind them. The actor sleeps after a second
//! without work, and a new message wakes it.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use tern_node::{Actor, ActorOptions};

/// How long a `slow` message takes to handle.
const SLOW: Duration = Duration::from_millis(10);

/// What the worker processed, in order, and the running total.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Worker {
    processed: Vec<i64>,
    total: i64,
}

/// The `worker` actor definition.
pub fn worker() -> Actor<Worker> {
    let options = ActorOptions { sleep_timeout: Duration::from_secs(1), ..ActorOptions::default() };
    Actor::new("worker")
        .options(options)
        .queue("jobs")
        .queue("slow")
        .run(|r| async move {
            loop {
                let handled = r
                    .process(&["jobs", "slow"], None, |c, message| async move {
                        if message.name == "slow" {
                            tokio::time::sleep(SLOW).await;
                        }
                        let n: i64 = message.body()?;
                        Ok(c.update(|s: &mut Worker| {
                            s.processed.push(n);
                            s.total += n;
                            s.total
                        }))
                    })
                    .await?;
                if handled.is_none() {
                    return Ok(()); // the actor is stopping
                }
            }
        })
        .action("processed", |c, ()| async move { Ok(c.read(|s: &Worker| s.processed.clone())) })
        .action("total", |c, ()| async move { Ok(c.read(|s: &Worker| s.total)) })
}
