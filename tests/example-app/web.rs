//! `web`: an actor reached by raw HTTP (`on_request`) and a raw WebSocket (`on_websocket`), for the raw-handler
//! tests.
//!
//! HTTP, at `/gateway/{web}/request/...`:
//! - `GET /count` → `{"count": n}`; `POST /increment` → `{"count": n + 1}`;
//! - `GET /messages` → `{"messages": n, "stored": rows, "last": text}`: the WebSocket messages counted in state
//!   and stored in the `messages` table;
//! - `* /echo` → the request as the handler saw it: `{method, path, query, body, header, params}` (`header`
//!   is `x-test`, `params` the connection parameters);
//! - `POST /fail` increments, then fails with `web.rejected` (nothing is kept); `GET /stall` outlasts the 2 s
//!   action timeout;
//! - anything else → 404 `no such route`, from the handler.
//!
//! WebSocket, at `/gateway/{web}/websocket/...`: greets with `hello {path}[?query]` (not again when the socket
//! followed the actor to another node), then echoes every message,
//! counting it in state and storing it in SQL, each as one atomic unit. Text `close` makes the actor close the
//! socket (4000 `bye`), `fail` stores the message and then fails the unit (`web.rejected`: nothing is kept, the
//! socket closes with 1011), `sleep` puts the actor to sleep (the socket closes with `actor.stopping`).
//!
//! Connection parameters `{"deny": true}` are refused by the before-connect hook (`web.denied`). The actor sleeps
//! after 1 s idle, so the tests can see that an open WebSocket keeps it awake.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::json;
use tern_node::sdk::request::{Request, Response, StatusCode};
use tern_node::sdk::{SocketMessage, WebSocket};
use tern_node::{Actor, ActorError, ActorOptions, ActorResult, Ctx, UserError};

/// The durable state: the HTTP counter and how many WebSocket messages arrived.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Web {
    count: i64,
    messages: i64,
}

fn rejected() -> ActorError {
    UserError::new("web.rejected", "Rejected; nothing of this is kept").into()
}

async fn on_request(c: Ctx<Web>, request: Request) -> ActorResult<Response> {
    let count = |count: i64| Response::json(StatusCode::OK, &json!({ "count": count }));
    match (request.method.as_str(), request.path.as_str()) {
        ("GET", "/count") => count(c.read(|s| s.count)),
        ("POST", "/increment") => count(c.update(|s| {
            s.count += 1;
            s.count
        })),
        ("GET", "/messages") => {
            let mut rows = c
                .sql()
                .query("SELECT count(*), (SELECT body FROM messages ORDER BY seq DESC LIMIT 1) FROM messages", ())
                .await?;
            let row = rows.next().await?.ok_or_else(|| ActorError::internal("count(*) returned no row"))?;
            let last = row.get::<Option<Vec<u8>>>(1)?.map(|b| String::from_utf8_lossy(&b).into_owned());
            let body = json!({ "messages": c.read(|s| s.messages), "stored": row.get::<i64>(0)?, "last": last });
            Response::json(StatusCode::OK, &body)
        }
        (_, "/echo") => {
            let params = c.conn().map(|conn| conn.params::<Option<serde_json::Value>>()).transpose()?.flatten();
            let body = json!({
                "method": request.method.as_str(),
                "path": request.path,
                "query": request.query,
                "body": request.text()?,
                "header": request.header("x-test"),
                "params": params,
            });
            Ok(Response::json(StatusCode::OK, &body)?.with_header("x-web", "echo")?)
        }
        ("POST", "/fail") => {
            c.update(|s| s.count += 1);
            Err(rejected())
        }
        ("GET", "/stall") => {
            tokio::time::sleep(Duration::from_secs(10)).await;
            Ok(Response::new(StatusCode::NO_CONTENT))
        }
        _ => Ok(Response::text(StatusCode::NOT_FOUND, "no such route")),
    }
}

async fn on_websocket(c: Ctx<Web>, socket: WebSocket) -> ActorResult<()> {
    let query = socket.query().map(|q| format!("?{q}")).unwrap_or_default();
    if !socket.resumed() {
        socket.send_text(format!("hello {}{query}", socket.path()));
    }
    while let Some(message) = socket.recv().await {
        let (kind, body) = match &message {
            SocketMessage::Text(text) => ("text", text.as_bytes().to_vec()),
            SocketMessage::Binary(bytes) => ("binary", bytes.to_vec()),
        };
        c.update(|s| s.messages += 1);
        c.sql().execute("INSERT INTO messages (kind, body) VALUES (?1, ?2)", (kind, body)).await?;
        match &message {
            SocketMessage::Text(text) if text == "close" => socket.close(4000, "bye"),
            SocketMessage::Text(text) if text == "fail" => return Err(rejected()),
            SocketMessage::Text(text) if text == "sleep" => c.sleep(),
            _ => {}
        }
        socket.send(message);
    }
    Ok(())
}

/// The `web` actor.
pub fn web() -> Actor<Web> {
    let options = ActorOptions {
        action_timeout: Duration::from_secs(2),
        sleep_timeout: Duration::from_secs(1),
        ..ActorOptions::default()
    };
    Actor::new("web")
        .options(options)
        .on_schema(|sql, _is_new| async move {
            let table =
                "CREATE TABLE IF NOT EXISTS messages (seq INTEGER PRIMARY KEY AUTOINCREMENT, kind TEXT, body BLOB)";
            sql.execute(table, ()).await?;
            Ok(())
        })
        .on_before_connect(|_c, params: Option<serde_json::Value>| async move {
            match params.and_then(|p| p.get("deny").and_then(serde_json::Value::as_bool)) {
                Some(true) => Err(UserError::new("web.denied", "This client may not connect").into()),
                _ => Ok(()),
            }
        })
        .on_request(on_request)
        .on_websocket(on_websocket)
        .action("stats", |c, ()| async move { Ok(c.read(|s| json!({ "count": s.count, "messages": s.messages }))) })
}
