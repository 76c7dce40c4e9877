//! `todo-app`: Tern's ready actors plus `todo`, one to-do list per key, kept in the actor's SQL table `items`.

use serde::Serialize;
use tern_node::{Actor, ActorResult, Ctx, UserError};

/// One row of `items`.
#[derive(Serialize)]
struct Item {
    id: i64,
    title: String,
    done: bool,
}

/// Stores a new item. Positional parameters: `?1`, `?2` take a tuple's values in order.
async fn insert(c: &Ctx<()>, title: String) -> ActorResult<Item> {
    c.sql().execute("INSERT INTO items (title, done) VALUES (?1, ?2)", (title.as_str(), false)).await?;
    Ok(Item { id: c.sql().last_insert_rowid(), title, done: false })
}

/// Every item: rows one at a time with `rows.next()`, each column by index with its Rust type.
async fn list(c: Ctx<()>) -> ActorResult<Vec<Item>> {
    let mut rows = c.sql().query("SELECT id, title, done FROM items ORDER BY id", ()).await?;
    let mut items = Vec::new();
    while let Some(row) = rows.next().await? {
        items.push(Item { id: row.get::<i64>(0)?, title: row.get::<String>(1)?, done: row.get::<bool>(2)? });
    }
    Ok(items)
}

/// Titles of open items containing `text`. Named parameters: a tuple of `(name, value)` pairs.
async fn find(c: Ctx<()>, text: String) -> ActorResult<Vec<String>> {
    let sql = "SELECT title FROM items WHERE title LIKE :pattern AND done = :done ORDER BY id";
    let mut rows = c.sql().query(sql, ((":pattern", format!("%{text}%")), (":done", false))).await?;
    let mut titles = Vec::new();
    while let Some(row) = rows.next().await? {
        titles.push(row.get::<String>(0)?);
    }
    Ok(titles)
}

fn todo() -> Actor<()> {
    Actor::new("todo")
        .on_schema(|sql, _is_new| async move {
            let schema = "CREATE TABLE IF NOT EXISTS items (id INTEGER PRIMARY KEY, title TEXT NOT NULL, done BOOLEAN)";
            sql.execute(schema, ()).await?;
            Ok(())
        })
        .action("add", |c, title: String| async move {
            if title.trim().is_empty() {
                return Err(UserError::new("empty_title", "An item needs a title").into());
            }
            insert(&c, title).await
        })
        .action("complete", |c, id: i64| async move {
            let changed = c.sql().execute("UPDATE items SET done = TRUE WHERE id = ?1", [id]).await?;
            Ok(changed == 1)
        })
        .action("list", |c, ()| list(c))
        .action("find", find)
        // Titles sent to the queue `inbox` are added by the run loop; a sender that waits gets the new item.
        .queue("inbox")
        .run(|r| async move {
            // A failing handler leaves its message queued and ends the run loop (to fail again on the next wake),
            // so a message that is not a title is consumed and answered with null instead.
            let handle = |c, m: tern_node::sdk::QueueMessage| async move {
                match m.body::<String>() {
                    Ok(title) if !title.trim().is_empty() => insert(&c, title).await.map(Some),
                    _ => Ok(None),
                }
            };
            while r.process(&["inbox"], None, handle).await?.is_some() {}
            Ok(()) // the actor is stopping
        })
}

fn main() -> std::process::ExitCode {
    tern_node::cli::main(tern_node::ready::registry().register(todo()))
}
