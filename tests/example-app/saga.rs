//! `saga`: a workflow. Each step appends to the state's log, so tests see what ran and how often: `first`; a
//! `flaky` step that fails twice before it succeeds (retried with backoff); a durable one-second-and-a-half
//! nap; a message from the `signals` queue; a loop of three `tick` steps; and `last <message>`.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tern_node::{Actor, ActorOptions, ActorResult, Loop, StepOptions, UserError};

/// What the workflow did, in order.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Saga {
    log: Vec<String>,
}

/// Failed attempts of the flaky step per actor, in this process (a failed attempt's own changes roll back).
fn flaky_attempts() -> &'static Mutex<HashMap<String, u32>> {
    static ATTEMPTS: OnceLock<Mutex<HashMap<String, u32>>> = OnceLock::new();
    ATTEMPTS.get_or_init(Default::default)
}

fn note(c: &tern_node::Ctx<Saga>, entry: String) -> ActorResult<()> {
    c.update(|s: &mut Saga| s.log.push(entry));
    Ok(())
}

/// The `saga` actor definition.
pub fn saga() -> Actor<Saga> {
    let options = ActorOptions { sleep_timeout: Duration::from_secs(1), ..ActorOptions::default() };
    Actor::new("saga")
        .options(options)
        .queue("signals")
        .workflow(|w| async move {
            w.step("first", |c| async move { note(&c, "first".into()) }).await?;
            let retry = StepOptions { retries: 3, backoff: Duration::from_millis(20), ..StepOptions::default() };
            w.step_with("flaky", retry, |c| async move {
                let failures = {
                    let mut attempts = flaky_attempts().lock().unwrap_or_else(|p| p.into_inner());
                    let count = attempts.entry(c.actor_id().to_string()).or_default();
                    *count += 1;
                    *count
                };
                if failures <= 2 {
                    return Err(UserError::new("declined", "not yet").into());
                }
                note(&c, "flaky".into())
            })
            .await?;
            w.sleep("nap", Duration::from_millis(1500)).await?;
            let signal: String = w.listen("go", &["signals"]).await?;
            w.repeat("count", 0u32, |w, n| async move {
                if n == 3 {
                    return Ok(Loop::Break(n));
                }
                w.step("tick", |c| async move { note(&c, "tick".into()) }).await?;
                Ok(Loop::Continue(n + 1))
            })
            .await?;
            w.step("last", move |c| {
                let signal = signal.clone();
                async move { note(&c, format!("last {signal}")) }
            })
            .await?;
            Ok(())
        })
        .action("log", |c, ()| async move { Ok(c.read(|s: &Saga| s.log.clone())) })
}
