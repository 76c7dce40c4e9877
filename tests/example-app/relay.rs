//! `relay`: an actor whose actions call other actors of the node (`c.actors()`), for the actor-to-actor tests.
//!
//! - `bump(key, n)` increments the `counter` with `key` (creating it) and returns its new count;
//! - `count(key)` reads that counter, which must exist (`actor.not_found` otherwise);
//! - `enqueue(key, n)` sends `n` to the `worker` actor `key`'s `jobs` queue.
//! - `forward(name, key, action, args)` calls any action of an existing actor and returns its output, errors
//!   passing through unchanged (also used to build a call cycle, which times out);
//! - `callSelf()` calls the relay's own `calls` action, which fails with `actor.self_call`;
//! - `calls()` counts the successful bumps; `ping()` answers `"pong"`.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use tern_node::{Actor, ActorOptions};

/// How many bumps the relay made.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Relay {
    calls: u64,
}

/// The `relay` actor definition. Its actions time out after 2 s, so a call cycle fails quickly.
pub fn relay() -> Actor<Relay> {
    let options = ActorOptions { action_timeout: Duration::from_secs(2), ..ActorOptions::default() };
    Actor::new("relay")
        .options(options)
        .action("bump", |c, (key, n): (String, i64)| async move {
            let count: i64 = c.actors().get_or_create("counter", key).call("increment", n).await?;
            c.update(|s: &mut Relay| s.calls += 1);
            Ok(count)
        })
        .action("enqueue", |c, (key, n): (String, i64)| async move {
            c.actors().get_or_create("worker", key).send("jobs", n).await
        })
        .action("count", |c, key: String| async move {
            let count: i64 = c.actors().get("counter", key).call("getCount", ()).await?;
            Ok(count)
        })
        .action("forward", |c, (name, key, action, args): (String, String, String, Vec<Value>)| async move {
            let output: Value = c.actors().get(&name, key).call(&action, args).await?;
            Ok(output)
        })
        .action("callSelf", |c, ()| async move {
            let calls: u64 = c.actors().get_for_id("relay", c.actor_id()).call("calls", ()).await?;
            Ok(calls)
        })
        .action("calls", |c, ()| async move { Ok(c.read(|s: &Relay| s.calls)) })
        .action("ping", |_c, ()| async move { Ok("pong") })
}
