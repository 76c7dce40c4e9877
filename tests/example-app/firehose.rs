//! `firehose`: an actor that sends more than a slow client can take, for the tests of connections and raw
//! WebSockets that fall behind.
//!
//! - `flood(count, size)` broadcasts `count` `spray` events, each a string of `size` bytes, to the connections
//!   subscribed to them, and sends `count` binary messages of `size` bytes to each of its open raw WebSockets.
//!   It answers `{"connections": n, "sockets": n}`: the connections and open raw WebSockets the actor had when
//!   the call started, so a caller sees the effect of a flood on the next call.
//!
//! A raw WebSocket opened at `/gateway/{firehose}/websocket/...` only receives: the actor keeps it (in its vars)
//! until it closes, and ignores what the client sends.

use serde::{Deserialize, Serialize};
use serde_json::json;
use tern_node::sdk::{SocketMessage, WebSocket};
use tern_node::{Actor, Ctx};

/// The firehose keeps no state of its own.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Firehose {}

/// The `firehose` actor definition; its vars are the raw WebSockets opened to it.
pub fn firehose() -> Actor<Firehose, Vec<WebSocket>> {
    Actor::new("firehose")
        .on_websocket(|c: Ctx<Firehose, Vec<WebSocket>>, socket| async move {
            c.vars().push(socket.clone());
            while socket.recv().await.is_some() {}
            Ok(())
        })
        .action("flood", |c, (count, size): (usize, usize)| async move {
            let connections = c.conns().len();
            let sockets: Vec<WebSocket> = {
                let mut vars = c.vars();
                vars.retain(WebSocket::is_open);
                vars.clone()
            };
            let payload = "x".repeat(size);
            for _ in 0..count {
                c.broadcast("spray", &payload)?;
                for socket in &sockets {
                    socket.send(SocketMessage::Binary(payload.clone().into_bytes().into()));
                }
            }
            Ok(json!({ "connections": connections, "sockets": sockets.len() }))
        })
}
