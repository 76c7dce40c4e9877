//! `batch`: a workflow with a slow step, for the tests of work a crash interrupts. `load` notes itself, `work`
//! takes two seconds, and `report` increments the `counter` actor with the batch's key: a side effect the tests
//! read without sending the batch anything.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use tern_node::{Actor, ActorOptions};

/// What the batch did, in order.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Batch {
    log: Vec<String>,
}

/// How long the `work` step takes.
const WORK: Duration = Duration::from_secs(2);

/// The `batch` actor definition.
pub fn batch() -> Actor<Batch> {
    let options = ActorOptions { sleep_timeout: Duration::from_secs(1), ..ActorOptions::default() };
    Actor::new("batch")
        .options(options)
        .workflow(|w| async move {
            w.step("load", |c| async move {
                c.update(|s: &mut Batch| s.log.push("load".into()));
                Ok(())
            })
            .await?;
            w.step("work", |c| async move {
                tokio::time::sleep(WORK).await;
                c.update(|s: &mut Batch| s.log.push("work".into()));
                Ok(())
            })
            .await?;
            w.step("report", |c| async move {
                let count: i64 = c.actors().get_or_create("counter", c.key().to_vec()).call("increment", 1).await?;
                c.update(|s: &mut Batch| s.log.push(format!("report {count}")));
                Ok(())
            })
            .await?;
            Ok(())
        })
        .action("log", |c, ()| async move { Ok(c.read(|s: &Batch| s.log.clone())) })
}
