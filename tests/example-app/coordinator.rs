//! `coordinator`: one actor that creates and calls many data actors by key, as a tenant's coordinator does. On a
//! cluster its calls go through the directory, so every key it touches has one actor cluster-wide, wherever that
//! actor lives.
//!
//! - `touch(prefix, n)` increments the counters `prefix-0` … `prefix-{n-1}` by one each (creating those that do
//!   not exist) and returns their ids, in order.
//! - `sendAndWait(key, n)` sends `n` to the `worker` actor `key`'s `jobs` queue and returns the worker's running
//!   total once its run loop has completed the message.

use std::time::Duration;

use tern_node::{Actor, Value};

/// The `coordinator` actor definition.
pub fn coordinator() -> Actor<()> {
    Actor::new("coordinator")
        .action("touch", |c, (prefix, n): (String, u32)| async move {
            let mut ids = Vec::with_capacity(n as usize);
            for i in 0..n {
                let counter = c.actors().get_or_create("counter", format!("{prefix}-{i}"));
                let _: i64 = counter.call("increment", 1).await?;
                ids.push(counter.resolve().await?);
            }
            Ok(ids)
        })
        .action("sendAndWait", |c, (key, n): (String, i64)| async move {
            let worker = c.actors().get_or_create("worker", key);
            let total: Option<Value> = worker.send_and_wait("jobs", n, Duration::from_secs(20)).await?;
            Ok(total)
        })
}
