//! Bench-only actors, registered by the node under test next to the ready actors.
//!
//! * `resident`: never sleeps and does nothing (the memory measurement).
//! * `bench-queue`: a durable queue `jobs` consumed by a run loop, one message per `process` call (the pattern
//!   of `tests/example-app/worker.rs`); its state counts the messages processed.
//! * `bench-kv`: `put(key, value)` / `get(key)` on the actor's key-value store.
//! * `bench-sql`: inserts into its own table, one row per action or many rows per action.

use tern_node::{Actor, ActorOptions};

/// The queue the `bench-queue` run loop consumes.
pub const QUEUE: &str = "jobs";

/// Text stored with every SQL row: 32 bytes, a small realistic payload.
const ROW_BODY: &str = "0123456789abcdef0123456789abcdef";

/// Statement every SQL insert runs.
const INSERT: &str = "INSERT INTO items (n, body) VALUES (?1, ?2)";

/// `resident`: an actor that never sleeps, for the memory measurement.
pub fn resident() -> Actor<()> {
    Actor::<()>::new("resident")
        .options(ActorOptions { no_sleep: true, ..ActorOptions::default() })
        .action("ping", |_c, ()| async move { Ok(()) })
}

/// `bench-queue`: its run loop takes one message of `jobs` per `process` call (receive, handle and remove in one
/// atomic unit) and answers a waiting sender with the number of messages processed so far. The state is that
/// count; action `processed` reads it. Never sleeps, so the run loop stays up between runs.
pub fn queue() -> Actor<u64> {
    Actor::<u64>::new("bench-queue")
        .options(ActorOptions { no_sleep: true, ..ActorOptions::default() })
        .queue(QUEUE)
        .run(|r| async move {
            loop {
                let handled = r
                    .process(&[QUEUE], None, |c, message| async move {
                        let _n: i64 = message.body()?;
                        Ok(c.update(|processed: &mut u64| {
                            *processed += 1;
                            *processed
                        }))
                    })
                    .await?;
                if handled.is_none() {
                    return Ok(()); // the actor is stopping
                }
            }
        })
        .action("processed", |c, ()| async move { Ok(c.read(|processed: &u64| *processed)) })
}

/// `bench-kv`: text entries in the actor's key-value store.
pub fn kv() -> Actor<()> {
    Actor::<()>::new("bench-kv")
        .action("put", |c, (key, value): (String, String)| async move {
            c.kv().put_text(&key, &value).await?;
            Ok(())
        })
        .action("get", |c, key: String| async move { c.kv().get_text(&key).await })
}

/// `bench-sql`: table `items (id, n, body)`. `insert(n)` inserts one row with `c.sql().execute`. The batched
/// actions take `(start, count)`, insert `count` rows and return `count`:
///
/// * `insertMany`: `c.sql().execute` per row, as actor code naturally writes it: the statement is parsed every
///   time, and the SDK records a span per statement (stored in `_tern_traces` with the turn's commit);
/// * `insertManyPrepared`: one prepared statement ([`tern_node::Sql::prepare`]), bound and stepped per row:
///   SQLite's own batched-insert loop, no span per row.
///
/// All rows of an action are in its turn's transaction.
pub fn sql() -> Actor<()> {
    Actor::<()>::new("bench-sql")
        .on_schema(|sql, _is_new| async move {
            sql.execute(
                "CREATE TABLE IF NOT EXISTS items (id INTEGER PRIMARY KEY, n INTEGER NOT NULL, body TEXT NOT NULL)",
                (),
            )
            .await?;
            Ok(())
        })
        .action("insert", |c, n: i64| async move { c.sql().execute(INSERT, (n, ROW_BODY)).await })
        .action("insertMany", |c, (start, count): (i64, i64)| async move {
            let sql = c.sql();
            for n in start..start + count {
                sql.execute(INSERT, (n, ROW_BODY)).await?;
            }
            Ok(count)
        })
        .action("insertManyPrepared", |c, (start, count): (i64, i64)| async move {
            let statement = c.sql().prepare(INSERT).await?;
            for n in start..start + count {
                statement.execute((n, ROW_BODY)).await?;
            }
            Ok(count)
        })
}
