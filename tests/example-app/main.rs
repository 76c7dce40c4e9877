//! An application built on Tern's SDK: the ready actors plus `journal`, an actor of its own that shows every
//! part of the actor API and records each lifecycle hook it runs in its own SQL table (`hooks`).
//!
//! It runs exactly like the stock binary (`tern-example dev --listen ... --data-dir ...`), and is what the
//! end-to-end tests start when they need actors with hooks, errors and timeouts.

mod batch;
mod clock;
mod coordinator;
mod firehose;
mod kv;
mod relay;
mod saga;
mod scratch;
mod web;
mod worker;

use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tern_node::{Actor, ActorError, ActorOptions, ActorResult, Conn, Ctx, UserError};

/// The journal's durable state: named entries.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Journal {
    title: String,
    entries: Vec<String>,
}

/// What a journal is created with.
#[derive(Debug, Deserialize)]
struct Input {
    title: String,
}

/// Connection parameters: an optional reader name; `"intruder"` is refused.
#[derive(Debug, Default, Deserialize)]
struct Params {
    reader: Option<String>,
}

/// How many times any journal's state-change hook ran in this process.
static STATE_CHANGES: AtomicU64 = AtomicU64::new(0);

/// Appends `hook` to the actor's `hooks` table, inside the current turn's transaction.
async fn record(c: &Ctx<Journal>, hook: &str) -> ActorResult<()> {
    c.sql().execute("INSERT INTO hooks (hook) VALUES (?1)", [hook]).await?;
    Ok(())
}

fn journal() -> Actor<Journal> {
    let options = ActorOptions { action_timeout: Duration::from_millis(500), ..ActorOptions::default() };
    Actor::new("journal")
        .options(options)
        .create_state(|input: Option<Input>| {
            Ok(Journal { title: input.map(|i| i.title).unwrap_or_default(), entries: vec![] })
        })
        .on_schema(|sql, _is_new| async move {
            sql.execute(
                "CREATE TABLE IF NOT EXISTS hooks (seq INTEGER PRIMARY KEY AUTOINCREMENT, hook TEXT NOT NULL)",
                (),
            )
            .await?;
            sql.execute("INSERT INTO hooks (hook) VALUES ('migrate')", ()).await?;
            Ok(())
        })
        .on_create(|c, _input: Option<serde_json::Value>| async move { record(&c, "create").await })
        .on_wake(|c| async move { record(&c, "wake").await })
        .on_sleep(|c| async move { record(&c, "sleep").await })
        .on_destroy(|c| async move { record(&c, "destroy").await })
        .on_state_change(|_state| {
            STATE_CHANGES.fetch_add(1, Ordering::Relaxed);
        })
        .on_before_connect(|c, params: Option<Params>| async move {
            if params.and_then(|p| p.reader).as_deref() == Some("intruder") {
                return Err(UserError::new("forbidden", "Intruders may not read this journal")
                    .with_metadata(serde_json::json!({ "reader": "intruder" }))
                    .into());
            }
            record(&c, "beforeConnect").await
        })
        .create_conn_state(|c, _params: Option<Params>| async move {
            record(&c, "createConnState").await?;
            Ok(0u32)
        })
        .on_connect(|c, _conn: Conn| async move { record(&c, "connect").await })
        .on_disconnect(|c, _conn: Conn| async move { record(&c, "disconnect").await })
        .action("write", |c, entry: String| async move {
            let count = c.update(|s: &mut Journal| {
                s.entries.push(entry.clone());
                s.entries.len()
            });
            c.broadcast("written", &entry)?;
            Ok(count)
        })
        .action("read", |c, ()| async move { Ok(c.read(|s: &Journal| (s.title.clone(), s.entries.clone()))) })
        .action("hooks", |c, ()| async move {
            let mut rows = c.sql().query("SELECT hook FROM hooks ORDER BY seq", ()).await?;
            let mut hooks = Vec::new();
            while let Some(row) = rows.next().await? {
                hooks.push(row.get::<String>(0)?);
            }
            Ok(hooks)
        })
        .action("stateChanges", |_c, ()| async move { Ok(STATE_CHANGES.load(Ordering::Relaxed)) })
        .action("reject", |_c, reason: String| async move {
            Err::<(), ActorError>(
                UserError::new("rejected", format!("Rejected: {reason}"))
                    .with_metadata(serde_json::json!({ "reason": reason, "retry": false }))
                    .into(),
            )
        })
        .action("writeThenReject", |c, entry: String| async move {
            c.update(|s: &mut Journal| s.entries.push(entry));
            c.sql().execute("INSERT INTO hooks (hook) VALUES ('rolled back')", ()).await?;
            Err::<(), ActorError>(UserError::new("rejected", "nothing of this action is kept").into())
        })
        .action("fail", |_c, ()| async move {
            Err::<(), ActorError>(ActorError::internal("the secret database password is hunter2"))
        })
        .action("stall", |_c, ms: u64| async move {
            tokio::time::sleep(Duration::from_millis(ms)).await;
            Ok(ms)
        })
        .action("notify", |c, (event, value): (String, serde_json::Value)| async move {
            c.broadcast(&event, &value)?;
            Ok(())
        })
        .action("nap", |c, ()| async move {
            c.sleep();
            Ok(())
        })
        .action("destroy", |c, ()| async move {
            c.destroy();
            Ok(())
        })
}

fn main() -> ExitCode {
    tern_node::cli::main(
        tern_node::ready::registry()
            .register(journal())
            .register(clock::clock())
            .register(worker::worker())
            .register(saga::saga())
            .register(batch::batch())
            .register(kv::kv())
            .register(relay::relay())
            .register(coordinator::coordinator())
            .register(web::web())
            .register(firehose::firehose())
            .register(scratch::scratch()),
    )
}
