//! Clients that fall behind: a `/connect` connection or a raw WebSocket whose client stops reading while the actor
//! keeps sending is closed with `actor.overloaded`, and the actor forgets it.
//!
//! The clients are real WebSocket clients over TCP sockets with a small receive buffer that simply stop reading;
//! the example application's `firehose` actor floods them. No timing decides a verdict: the tests flood until the
//! actor reports that it dropped the client (or a generous cap runs out), then read everything the client was sent
//! and look at how it ends.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tern_tests::{Api, TernProcess, bounded, eventually};
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

/// A cap on floods and on reading what a client was sent (a guard against hangs, not a verdict on speed).
const CAP: Duration = Duration::from_secs(90);
/// Each flood: this many messages of this many bytes (4 MiB), so a handful overflow a client's queue of 1,024
/// messages plus what the kernel buffers for a client that does not read.
const FLOOD: (usize, usize) = (256, 16 * 1024);

fn example_binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_tern-example"))
}

/// Opens a WebSocket to `path` offering `protocols`, over a TCP socket with a small receive buffer, so that a
/// client that stops reading stops taking data almost at once.
async fn slow_client(node: &TernProcess, path: &str, protocols: &str) -> WebSocketStream<TcpStream> {
    let addr: SocketAddr = node.endpoint().trim_start_matches("http://").parse().unwrap();
    let socket = TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let stream = socket.connect(addr).await.unwrap();
    let mut request = format!("ws://{addr}{path}").into_client_request().unwrap();
    request.headers_mut().insert("sec-websocket-protocol", protocols.parse().unwrap());
    let (socket, _) = tokio_tungstenite::client_async(request, stream).await.unwrap();
    socket
}

/// Calls `flood` on the firehose until `done` says the actor dropped its client, or the cap runs out; returns
/// whether it did.
async fn flood_until(api: &Api, actor: &str, done: impl Fn(&Value) -> bool) -> bool {
    let started = Instant::now();
    while started.elapsed() < CAP {
        let answer = api.call(actor, "flood", json!([FLOOD.0, FLOOD.1])).await.unwrap();
        if done(&answer) {
            return true;
        }
    }
    false
}

/// Reads everything up to the close frame: the last `Error` frame of the connection protocol (JSON encoding)
/// before it, if any, and the close's code and reason.
async fn read_to_close(socket: &mut WebSocketStream<TcpStream>) -> (Option<Value>, u16, String) {
    let ending = async {
        let mut last_error = None;
        while let Some(message) = socket.next().await {
            match message.expect("a well-formed WebSocket stream") {
                Message::Text(text) => {
                    let frame: Value = serde_json::from_str(&text).unwrap();
                    if frame["body"]["tag"] == "Error" {
                        last_error = Some(frame["body"]["val"].clone());
                    }
                }
                Message::Close(Some(close)) => return (last_error, u16::from(close.code), close.reason.to_string()),
                Message::Close(None) => panic!("a close frame without a code"),
                _ => {}
            }
        }
        panic!("the socket ended without a close frame");
    };
    tokio::time::timeout(CAP, ending).await.expect("the socket ends within the cap")
}

/// The attack: a client opens a `/connect` connection, subscribes to an event and then never reads again, while
/// the actor broadcasts that event faster than anyone could take it (4 MiB per call). Its queue fills; the actor
/// must drop the client with `actor.overloaded` (the reason RivetKit clients see for "you fell behind"), not leave
/// it open holding memory, nor close it with `actor.stopping` because the close message itself was dropped with
/// the full queue. What the client finally reads ends with an `Error` frame without an action id and close 1011
/// `actor.overloaded`, and the actor no longer counts the connection.
#[tokio::test]
async fn a_connection_that_stops_reading_is_closed_as_overloaded() {
    let dir = tempfile::tempdir().unwrap();
    let node = TernProcess::start(&example_binary(), &dir.path().join("data"));
    let api = Api::new(&node);
    let firehose = api.actor("firehose", "connect").await;
    let mut client = slow_client(&node, &format!("/gateway/{firehose}/connect"), "rivet, rivet_encoding.json").await;
    let init: Value =
        serde_json::from_str(&bounded("a frame", client.next()).await.unwrap().unwrap().into_text().unwrap()).unwrap();
    assert_eq!(init["body"]["tag"], "Init", "{init}");
    let subscribe = json!({"body": {"tag": "SubscriptionRequest", "val": {"eventName": "spray", "subscribe": true}}});
    client.send(Message::text(subscribe.to_string())).await.unwrap();
    // An action after the subscription: once it answers, the subscription is in place.
    let call = json!({"body": {"tag": "ActionRequest", "val": {"id": 0, "name": "flood", "args": [0, 0]}}});
    client.send(Message::text(call.to_string())).await.unwrap();
    let reply: Value =
        serde_json::from_str(&bounded("a frame", client.next()).await.unwrap().unwrap().into_text().unwrap()).unwrap();
    assert_eq!(reply["body"]["val"]["output"], json!({"connections": 1, "sockets": 0}), "{reply}");

    // From here on the client reads nothing until the actor says it dropped it.
    let dropped = flood_until(&api, &firehose, |answer| answer["connections"] == 0).await;

    let (error, code, reason) = read_to_close(&mut client).await;
    assert_eq!((code, reason.as_str()), (1011, "actor.overloaded"));
    let error = error.expect("an Error frame before the close");
    assert_eq!(
        (&error["group"], &error["code"], &error["actionId"]),
        (&json!("actor"), &json!("overloaded"), &Value::Null)
    );
    assert!(dropped, "the actor still counted the connection after {CAP:?} of floods");
}

/// The same attack on a raw WebSocket: the client never reads while the actor's handler keeps sending it 4 MiB per
/// flood. The socket must close with 1011 `actor.overloaded`, the reason kept even though the queue that would have
/// carried the close was full.
#[tokio::test]
async fn a_raw_websocket_that_stops_reading_is_closed_as_overloaded() {
    let dir = tempfile::tempdir().unwrap();
    let node = TernProcess::start(&example_binary(), &dir.path().join("data"));
    let api = Api::new(&node);
    let firehose = api.actor("firehose", "raw").await;
    let mut client = slow_client(&node, &format!("/gateway/{firehose}/websocket/"), "rivet").await;
    // The upgrade is answered before the actor opens the socket: wait until it has it.
    eventually("the actor holds the raw WebSocket", CAP, || async {
        let answer = api.call(&firehose, "flood", json!([0, 0])).await.unwrap();
        (answer["sockets"] == 1).then_some(())
    })
    .await;

    let dropped = flood_until(&api, &firehose, |answer| answer["sockets"] == 0).await;

    let (_, code, reason) = read_to_close(&mut client).await;
    assert_eq!((code, reason.as_str()), (1011, "actor.overloaded"));
    assert!(dropped, "the actor still held the raw WebSocket after {CAP:?} of floods");
}
