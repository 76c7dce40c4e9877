//! `room`, a realtime chat room. Connections must pass `{name}` (else `room.name_required`).
//! `post(text)` → the stored message; `history()` → the last 100 messages, oldest first; event `message` to
//! every member; `destroy()`. Messages live in the actor's SQL table `messages`.

use serde::{Deserialize, Serialize};
use tern_proto::Value;

use crate::clock::now_ms;
use crate::sdk::{Actor, ActorResult, Ctx, UserError};

/// One chat message: who sent it, what, and when (milliseconds since the epoch).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Message {
    pub from: String,
    pub text: String,
    pub at: i64,
}

fn member_name(params: &Value) -> Option<String> {
    let Value::Map(entries) = params else { return None };
    entries.iter().find_map(|(k, v)| match (k, v) {
        (Value::Text(k), Value::Text(name)) if k == "name" && !name.trim().is_empty() => Some(name.clone()),
        _ => None,
    })
}

fn name_required() -> UserError {
    UserError::new("room.name_required", "Join the room with connection parameters {\"name\": \"...\"}")
}

async fn post(c: Ctx<()>, text: String) -> ActorResult<Message> {
    let from = c.conn().and_then(|conn| member_name(conn.params_value())).ok_or_else(name_required)?;
    let message = Message { from, text, at: now_ms() };
    c.sql()
        .execute(
            "INSERT INTO messages (sender, text, at) VALUES (?1, ?2, ?3)",
            libsql::params![message.from.as_str(), message.text.as_str(), message.at],
        )
        .await?;
    c.broadcast("message", &message)?;
    Ok(message)
}

async fn history(c: Ctx<()>) -> ActorResult<Vec<Message>> {
    let mut rows = c
        .sql()
        .query(
            "SELECT sender, text, at FROM (SELECT id, sender, text, at FROM messages ORDER BY id DESC LIMIT 100) ORDER BY id",
            (),
        )
        .await?;
    let mut out = Vec::new();
    while let Some(row) = rows.next().await? {
        out.push(Message { from: row.get(0)?, text: row.get(1)?, at: row.get(2)? });
    }
    Ok(out)
}

/// The `room` actor definition.
pub fn room() -> Actor<()> {
    Actor::new("room")
        .on_schema(|sql, _is_new| async move {
            sql.execute(
                "CREATE TABLE IF NOT EXISTS messages (id INTEGER PRIMARY KEY AUTOINCREMENT, sender TEXT NOT NULL, text TEXT NOT NULL, at INTEGER NOT NULL)",
                (),
            )
            .await?;
            Ok(())
        })
        .on_before_connect(|_c, params: Value| async move {
            member_name(&params).map(|_| ()).ok_or_else(|| name_required().into())
        })
        .action("post", post)
        .action("history", |c, ()| history(c))
        .action("destroy", |c, ()| async move {
            c.destroy();
            Ok(())
        })
}
