//! Raw HTTP and raw WebSocket handlers end to end, on the example application's `web` actor: what the handlers
//! see, their atomicity and durability, their errors and close reasons, and that an open raw WebSocket keeps the
//! actor awake.

use std::path::PathBuf;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use reqwest::StatusCode;
use serde_json::{Value, json};
use tern_tests::{TernProcess, eventually};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::{Bytes, Message};

type Socket = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// A cap on every wait for a frame (a guard against hangs, not a verdict on speed).
const FRAME_CAP: Duration = Duration::from_secs(30);
/// What the JS client offers on a raw WebSocket.
const PROTOCOLS: &str = "rivet, rivet_encoding.bare";

fn example_binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_tern-example"))
}

struct Fixture {
    node: TernProcess,
    http: reqwest::Client,
    _dir: tempfile::TempDir,
}

impl Fixture {
    fn start() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let node = TernProcess::start(&example_binary(), &dir.path().join("data"));
        Fixture { node, http: tern_tests::http_client(), _dir: dir }
    }

    /// Kills the node hard and starts it again on the same data (with a fresh HTTP client: the old one's pooled
    /// connections died with the process).
    fn kill9_and_restart(&mut self) {
        self.node.kill9();
        self.node.restart();
        self.http = tern_tests::http_client();
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.node.endpoint())
    }

    /// Creates (or finds) the actor `name` with `key` and returns its id.
    async fn actor(&self, name: &str, key: &str) -> String {
        let body = json!({"name": name, "key": key, "runner_name_selector": "default", "crash_policy": "sleep"});
        let created: Value = self.http.put(self.url("/actors")).json(&body).send().await.unwrap().json().await.unwrap();
        created["actor"]["actor_id"].as_str().unwrap().to_string()
    }

    /// Sends a request and returns its status and JSON body.
    async fn json(&self, request: reqwest::RequestBuilder) -> (StatusCode, Value) {
        let response = request.send().await.unwrap();
        (response.status(), response.json().await.unwrap())
    }

    /// Sends a request that fails and returns its status and `group.code`.
    async fn error_of(&self, request: reqwest::RequestBuilder) -> (StatusCode, String) {
        let (status, body) = self.json(request).await;
        (status, format!("{}.{}", body["group"].as_str().unwrap(), body["code"].as_str().unwrap()))
    }

    async fn count(&self, id: &str) -> Value {
        self.json(self.http.get(self.url(&format!("/gateway/{id}/request/count")))).await.1
    }

    async fn messages(&self, id: &str) -> Value {
        self.json(self.http.get(self.url(&format!("/gateway/{id}/request/messages")))).await.1
    }

    /// When the actor last went to sleep (null while awake).
    async fn sleep_ts(&self, id: &str) -> Value {
        let url = self.url(&format!("/actors?actor_ids={id}&namespace=default"));
        let listed: Value = self.http.get(url).send().await.unwrap().json().await.unwrap();
        listed["actors"][0]["sleep_ts"].clone()
    }

    /// Opens a raw WebSocket at `path` (from `/gateway/...`) offering `protocols`; checks that `rivet` is echoed.
    async fn socket(&self, path: &str, protocols: &str) -> Socket {
        let url = format!("{}{path}", self.node.endpoint().replacen("http://", "ws://", 1));
        let mut request = url.into_client_request().unwrap();
        request.headers_mut().insert("sec-websocket-protocol", protocols.parse().unwrap());
        let (socket, response) = tokio_tungstenite::connect_async(request).await.unwrap();
        assert_eq!(response.headers()["sec-websocket-protocol"], "rivet");
        socket
    }
}

/// The next data frame or close of `socket` (pings skipped).
async fn next(socket: &mut Socket) -> Message {
    loop {
        let frame = tokio::time::timeout(FRAME_CAP, socket.next()).await.expect("a frame within the cap");
        match frame.expect("the socket is open").expect("a frame") {
            Message::Ping(_) | Message::Pong(_) => continue,
            other => return other,
        }
    }
}

async fn next_text(socket: &mut Socket) -> String {
    match next(socket).await {
        Message::Text(text) => text.to_string(),
        other => panic!("expected a text frame, got {other:?}"),
    }
}

/// The close code and reason the server sent.
async fn close_of(socket: &mut Socket) -> (u16, String) {
    match next(socket).await {
        Message::Close(Some(frame)) => (u16::from(frame.code), frame.reason.to_string()),
        other => panic!("expected a close frame, got {other:?}"),
    }
}

#[tokio::test]
async fn raw_requests_run_in_the_actor_atomically_and_durably() {
    let mut f = Fixture::start();
    let id = f.actor("web", "http").await;
    let request = |path: &str| f.url(&format!("/gateway/{id}/request{path}"));
    for expected in 1..=2 {
        let (status, body) = f.json(f.http.post(request("/increment"))).await;
        assert_eq!((status, body), (StatusCode::OK, json!({"count": expected})));
    }
    let response = f.http.get(request("/count")).send().await.unwrap();
    assert_eq!(response.headers()["x-rivet-actor"], id.as_str());
    assert_eq!(response.json::<Value>().await.unwrap(), json!({"count": 2}));

    // The handler sees the method, the path after /request, the query, headers, body and connection params.
    let echo = f
        .http
        .post(request("/echo?x=1&y=a%20b"))
        .header("x-test", "yes")
        .header("x-rivet-conn-params", r#"{"user":"ada"}"#)
        .body("payload");
    let response = echo.send().await.unwrap();
    assert_eq!(response.headers()["x-web"], "echo");
    let seen: Value = response.json().await.unwrap();
    let expected = json!({"method": "POST", "path": "/echo", "query": "x=1&y=a%20b", "body": "payload",
        "header": "yes", "params": {"user": "ada"}});
    assert_eq!(seen, expected);
    // Through the query gateway the rvt-* parameters are gone.
    let query = "x=1&rvt-namespace=default&rvt-method=getOrCreate&rvt-key=http&rvt-crash-policy=sleep";
    let response = f.http.put(f.url(&format!("/gateway/web/request/echo?{query}"))).send().await.unwrap();
    assert_eq!(response.headers()["x-rivet-actor"], id.as_str());
    let seen: Value = response.json().await.unwrap();
    assert_eq!((seen["method"].as_str(), seen["query"].as_str()), (Some("PUT"), Some("x=1")));
    // The handler's own 404, for `/request` alone too (its path is `/`).
    for path in ["/nowhere", ""] {
        let response = f.http.delete(request(path)).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::NOT_FOUND);
        assert_eq!(response.text().await.unwrap(), "no such route");
    }

    let counter = f.actor("counter", "raw").await;
    let cases = [
        (f.http.post(request("/fail")), StatusCode::BAD_REQUEST, "web.rejected"),
        (f.http.get(request("/stall")), StatusCode::REQUEST_TIMEOUT, "actor.action_timed_out"),
        (f.http.post(request("/echo")).body("x".repeat(70_000)), StatusCode::BAD_REQUEST, "message.incoming_too_long"),
        (
            f.http.post(request("/increment")).header("x-rivet-conn-params", r#"{"deny":true}"#),
            StatusCode::BAD_REQUEST,
            "web.denied",
        ),
        (
            f.http.get(f.url(&format!("/gateway/{counter}/request/count"))),
            StatusCode::NOT_FOUND,
            "handler.request_not_defined",
        ),
    ];
    for (request, status, code) in cases {
        let described = format!("{request:?}");
        assert_eq!(f.error_of(request).await, (status, code.to_string()), "{described}");
    }
    assert_eq!(f.count(&id).await, json!({"count": 2}), "failed requests kept nothing");

    // Acknowledged means committed: the count survives kill -9.
    f.kill9_and_restart();
    assert_eq!(f.count(&id).await, json!({"count": 2}));
}

#[tokio::test]
async fn raw_websockets_echo_in_turns_persist_and_keep_the_actor_awake() {
    let mut f = Fixture::start();
    let id = f.actor("web", "ws").await;
    let mut socket = f.socket(&format!("/gateway/{id}/websocket/room?x=1"), PROTOCOLS).await;
    assert_eq!(next_text(&mut socket).await, "hello /room?x=1");
    socket.send(Message::Binary(Bytes::from_static(&[1, 2, 3]))).await.unwrap();
    assert_eq!(next(&mut socket).await, Message::Binary(Bytes::from_static(&[1, 2, 3])));
    socket.send(Message::text("one")).await.unwrap();
    assert_eq!(next_text(&mut socket).await, "one");
    assert_eq!(f.messages(&id).await, json!({"messages": 2, "stored": 2, "last": "one"}));

    // A `web` actor sleeps after 1 s idle, but not while a raw WebSocket is open. A second one, woken after the
    // first had its last message and holding no socket, is the witness: once it has gone to sleep twice, the
    // first one's own idle timer has fired (it started earlier), and found the socket open.
    let witness = f.actor("web", "ws-witness").await;
    for _ in 0..2 {
        assert_eq!(f.count(&witness).await, json!({"count": 0}));
        eventually("the witness sleeps", Duration::from_secs(30), || async {
            (!f.sleep_ts(&witness).await.is_null()).then_some(())
        })
        .await;
    }
    assert_eq!(f.sleep_ts(&id).await, Value::Null, "an open raw WebSocket keeps the actor awake");
    socket.close(None).await.unwrap();
    eventually("the actor sleeps once the socket closed", Duration::from_secs(30), || async {
        (!f.sleep_ts(&id).await.is_null()).then_some(())
    })
    .await;

    // Each echoed message was committed before its echo: the messages survive a sleep and kill -9.
    f.kill9_and_restart();
    assert_eq!(f.messages(&id).await, json!({"messages": 2, "stored": 2, "last": "one"}));
    // Through the query gateway, with the handler at `/`.
    let query = "rvt-namespace=default&rvt-method=get&rvt-key=ws";
    let mut socket = f.socket(&format!("/gateway/web/websocket?{query}"), PROTOCOLS).await;
    assert_eq!(next_text(&mut socket).await, "hello /");
}

#[tokio::test]
async fn raw_websockets_close_with_their_reason() {
    let f = Fixture::start();
    let id = f.actor("web", "close").await;
    let path = format!("/gateway/{id}/websocket/");
    let open = || async {
        let mut socket = f.socket(&path, PROTOCOLS).await;
        assert_eq!(next_text(&mut socket).await, "hello /");
        socket
    };

    let mut socket = open().await;
    socket.send(Message::text("kept")).await.unwrap();
    assert_eq!(next_text(&mut socket).await, "kept");
    socket.send(Message::text("fail")).await.unwrap();
    assert_eq!(close_of(&mut socket).await, (1011, "web.rejected".to_string()));
    let kept = json!({"messages": 1, "stored": 1, "last": "kept"});
    assert_eq!(f.messages(&id).await, kept, "the failed unit kept nothing");

    let mut socket = open().await;
    socket.send(Message::text("close")).await.unwrap();
    assert_eq!(close_of(&mut socket).await, (4000, "bye".to_string()));

    let mut socket = open().await;
    socket.send(Message::text("sleep")).await.unwrap();
    assert_eq!(next_text(&mut socket).await, "sleep");
    assert_eq!(close_of(&mut socket).await, (1011, "actor.stopping".to_string()));

    let mut socket = open().await;
    let sleep = f.http.post(f.url(&format!("/actors/{id}/sleep"))).json(&json!({})).send().await.unwrap();
    assert_eq!(sleep.status(), StatusCode::OK);
    assert_eq!(close_of(&mut socket).await, (1011, "actor.stopping".to_string()));

    let mut socket = open().await;
    socket.send(Message::text("x".repeat(70_000))).await.unwrap();
    assert_eq!(close_of(&mut socket).await, (1011, "message.incoming_too_long".to_string()));

    let counter = f.actor("counter", "raw").await;
    let deny = "rivet, rivet_encoding.bare, rivet_conn_params.%7B%22deny%22%3Atrue%7D";
    let refused = [
        (format!("/gateway/{counter}/websocket/"), PROTOCOLS, "handler.websocket_not_defined"),
        (path.clone(), deny, "web.denied"),
        ("/gateway/0123456789abcdef0123456789abcdef/websocket/".to_string(), PROTOCOLS, "actor.not_found"),
    ];
    for (path, protocols, reason) in refused {
        let mut socket = f.socket(&path, protocols).await;
        assert_eq!(close_of(&mut socket).await, (1011, reason.to_string()), "{path}");
    }
}
