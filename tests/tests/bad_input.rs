//! Bad input of every kind gets its catalogue error, the node keeps serving, and no state is lost.

use std::path::PathBuf;

use futures_util::{SinkExt, StreamExt};
use reqwest::StatusCode;
use serde_json::{Value, json};
use tern_tests::{Api, TernProcess, bounded, fetch_json};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{Bytes, Message};

fn example_binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_tern-example"))
}

struct Fixture {
    node: TernProcess,
    http: reqwest::Client,
    counter_id: String,
    _dir: tempfile::TempDir,
}

impl Fixture {
    async fn start() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let node = TernProcess::start(&example_binary(), &dir.path().join("data"));
        let http = tern_tests::http_client();
        let created: Value = http
            .put(format!("{}/actors?namespace=default", node.endpoint()))
            .json(&json!({"name": "counter", "key": "bad-input", "runner_name_selector": "default", "crash_policy": "sleep"}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let counter_id = created["actor"]["actor_id"].as_str().unwrap().to_string();
        let fixture = Fixture { node, http, counter_id, _dir: dir };
        assert_eq!(fixture.increment(7).await, json!({"output": 7}));
        fixture
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.node.endpoint())
    }

    /// The URL of `path` with the query `pairs`, form-encoded.
    fn url_with(&self, path: &str, pairs: &[(&str, &str)]) -> reqwest::Url {
        reqwest::Url::parse_with_params(&self.url(path), pairs).unwrap()
    }

    /// The bytes of the node's own database (`node.db` and its write-ahead log).
    fn node_db_bytes(&self) -> u64 {
        let files = std::fs::read_dir(self._dir.path().join("data")).unwrap().map(Result::unwrap);
        let node_db = files.filter(|f| f.file_name().to_string_lossy().starts_with("node.db"));
        node_db.map(|f| f.metadata().unwrap().len()).sum()
    }

    /// The live actors named `name` (admin listing; `tern dev` leaves it open).
    async fn actors_named(&self, name: &str) -> Vec<Value> {
        let url = self.url_with("/actors", &[("name", name)]);
        let listed: Value = self.http.get(url).send().await.unwrap().json().await.unwrap();
        listed["actors"].as_array().unwrap().clone()
    }

    async fn increment(&self, n: i64) -> Value {
        let url = self.url(&format!("/gateway/{}/action/increment", self.counter_id));
        self.http.post(url).json(&json!({"args": [n]})).send().await.unwrap().json().await.unwrap()
    }

    /// Sends a request and returns its status and `group.code`.
    async fn error_of(&self, request: reqwest::RequestBuilder) -> (StatusCode, String) {
        let response = request.send().await.unwrap();
        let status = response.status();
        let body: Value = response.json().await.unwrap();
        (status, format!("{}.{}", body["group"].as_str().unwrap_or("?"), body["code"].as_str().unwrap_or("?")))
    }

    async fn assert_count_kept(&self) {
        let url = self.url(&format!("/gateway/{}/action/getCount", self.counter_id));
        let body: Value = self.http.post(url).json(&json!({"args": []})).send().await.unwrap().json().await.unwrap();
        assert_eq!(body, json!({"output": 7}), "the counter kept its value");
    }
}

#[tokio::test]
async fn bad_http_requests_get_catalogue_errors() {
    let f = Fixture::start().await;
    let action = |name: &str| f.url(&format!("/gateway/{}/action/{name}", f.counter_id));
    let cases = [
        (f.http.post(action("increment")).body("{\"args\":"), StatusCode::BAD_REQUEST, "actor.invalid_request"),
        (
            f.http.post(action("increment")).header("x-rivet-encoding", "cbor").body(vec![0xff, 0x00]),
            StatusCode::BAD_REQUEST,
            "actor.invalid_request",
        ),
        (
            f.http.post(action("increment")).header("x-rivet-encoding", "bare").body(vec![0x04]),
            StatusCode::BAD_REQUEST,
            "actor.invalid_request",
        ),
        (
            f.http.post(action("increment")).header("x-rivet-encoding", "xml").body("{}"),
            StatusCode::BAD_REQUEST,
            "actor.invalid_request",
        ),
        (f.http.post(action("increment")).body("{\"args\":{}}"), StatusCode::BAD_REQUEST, "actor.invalid_request"),
        (
            f.http.post(action("increment")).body("{\"args\":[\"five\"]}"),
            StatusCode::BAD_REQUEST,
            "actor.invalid_request",
        ),
        (f.http.post(action("nope")).body("{\"args\":[]}"), StatusCode::NOT_FOUND, "actor.action_not_found"),
        (f.http.get(action("increment")), StatusCode::METHOD_NOT_ALLOWED, "actor.method_not_allowed"),
        (
            f.http.post(action("increment")).body(format!("{{\"args\":[\"{}\"]}}", "x".repeat(70_000))),
            StatusCode::BAD_REQUEST,
            "message.incoming_too_long",
        ),
        (
            f.http.post(f.url("/gateway/0123456789abcdef0123456789abcdef/action/increment")).body("{\"args\":[1]}"),
            StatusCode::NOT_FOUND,
            "actor.not_found",
        ),
        (f.http.post(f.url(&format!("/gateway/{}/nowhere", f.counter_id))), StatusCode::NOT_FOUND, "actor.not_found"),
        (
            f.http.post(f.url("/gateway/counter/action/getCount?rvt-method=explode")),
            StatusCode::BAD_REQUEST,
            "guard.query_invalid_method",
        ),
        (
            f.http.post(f.url("/gateway/counter/action/getCount?rvt-method=get&rvt-key=a&rvt-wat=1")),
            StatusCode::BAD_REQUEST,
            "guard.query_unknown_param",
        ),
        (
            f.http.post(f.url("/gateway/counter/action/getCount?rvt-method=get&rvt-key=a&rvt-key=b")),
            StatusCode::BAD_REQUEST,
            "guard.query_duplicate_param",
        ),
        (
            f.http.post(f.url("/gateway/counter/action/getCount?rvt-method=get&rvt-input=AAAA")),
            StatusCode::BAD_REQUEST,
            "guard.query_invalid_param",
        ),
        (
            f.http.post(f.url("/gateway/counter/action/getCount?rvt-method=get&rvt-namespace=prod")),
            StatusCode::BAD_REQUEST,
            "actor.namespace_not_found",
        ),
        (
            f.http.post(f.url("/gateway/unicorn/action/x?rvt-method=getOrCreate&rvt-key=a")).body("{\"args\":[]}"),
            StatusCode::BAD_REQUEST,
            "actor.not_registered",
        ),
        (
            f.http.put(f.url("/actors")).json(&json!({"name": "unicorn", "key": "a"})),
            StatusCode::BAD_REQUEST,
            "actor.not_registered",
        ),
        (f.http.put(f.url("/actors")).body("not json"), StatusCode::BAD_REQUEST, "actor.invalid_request"),
        (
            f.http.post(f.url("/actors")).json(&json!({"name": "counter", "key": "bad-input"})),
            StatusCode::BAD_REQUEST,
            "actor.duplicate_key",
        ),
        (
            f.http.post(f.url("/actors")).json(&json!({"name": "counter", "key": "z", "input": "%%%"})),
            StatusCode::BAD_REQUEST,
            "actor.invalid_request",
        ),
        (f.http.get(f.url("/actors?namespace=prod")), StatusCode::BAD_REQUEST, "actor.namespace_not_found"),
        (f.http.get(f.url("/nowhere")), StatusCode::NOT_FOUND, "guard.no_route"),
        (f.http.patch(f.url("/actors")), StatusCode::METHOD_NOT_ALLOWED, "actor.method_not_allowed"),
    ];
    for (request, status, code) in cases {
        let described = format!("{request:?}");
        assert_eq!(f.error_of(request).await, (status, code.to_string()), "{described}");
    }
    f.assert_count_kept().await;
}

/// Opens `/connect` on the counter with `encoding` and waits for `Init`.
async fn open_socket(
    f: &Fixture,
    encoding: &str,
) -> tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>> {
    let url =
        format!("ws://127.0.0.1:{}/gateway/{}/connect", f.node.endpoint().rsplit(':').next().unwrap(), f.counter_id);
    let mut request = url.into_client_request().unwrap();
    request
        .headers_mut()
        .insert("sec-websocket-protocol", format!("rivet, rivet_encoding.{encoding}").parse().unwrap());
    let (mut socket, response) = bounded("the upgrade", tokio_tungstenite::connect_async(request)).await.unwrap();
    assert_eq!(response.headers()["sec-websocket-protocol"], "rivet");
    let init = bounded("Init", socket.next()).await.unwrap().unwrap();
    assert!(!init.is_close(), "expected Init, got {init:?}");
    socket
}

async fn close_reason(
    socket: &mut tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>,
) -> (CloseCode, String) {
    while let Some(message) = bounded("a close frame", socket.next()).await {
        if let Message::Close(Some(frame)) = message.unwrap() {
            return (frame.code, frame.reason.to_string());
        }
    }
    panic!("the socket ended without a close frame");
}

#[tokio::test]
async fn bad_websocket_frames_close_the_connection_with_their_reason() {
    let f = Fixture::start().await;
    let malformed: [(&str, Message); 5] = [
        ("json", Message::text("{\"body\":")),
        ("json", Message::text("{\"body\":{\"tag\":\"Launch\",\"val\":{}}}")),
        ("cbor", Message::Binary(Bytes::from_static(&[0xff]))),
        ("bare", Message::Binary(Bytes::from_static(&[0x04, 0x00, 0x09]))),
        ("bare", Message::Binary(Bytes::from_static(&[0x63, 0x00, 0x00]))),
    ];
    for (encoding, frame) in malformed {
        let mut socket = open_socket(&f, encoding).await;
        socket.send(frame).await.unwrap();
        assert_eq!(
            close_reason(&mut socket).await,
            (CloseCode::Error, "actor.invalid_request".to_string()),
            "{encoding}"
        );
    }
    let mut socket = open_socket(&f, "json").await;
    socket.send(Message::text(format!("{{\"pad\":\"{}\"}}", "x".repeat(70_000)))).await.unwrap();
    assert_eq!(close_reason(&mut socket).await, (CloseCode::Error, "message.incoming_too_long".to_string()));
    f.assert_count_kept().await;
}

#[tokio::test]
async fn connections_to_missing_actors_or_with_unknown_encodings_are_refused_with_a_reason() {
    let f = Fixture::start().await;
    let port = f.node.endpoint().rsplit(':').next().unwrap().to_string();
    let url = format!("ws://127.0.0.1:{port}/gateway/0123456789abcdef0123456789abcdef/connect");
    let (mut socket, _) = bounded("the upgrade", tokio_tungstenite::connect_async(url)).await.unwrap();
    let error = bounded("an Error message", socket.next()).await.unwrap().unwrap();
    let error: Value = serde_json::from_str(error.to_text().unwrap()).unwrap();
    assert_eq!(error["body"]["tag"], "Error");
    assert_eq!(error["body"]["val"]["code"], "not_found");
    assert_eq!(error["body"]["val"]["actionId"], Value::Null);
    assert_eq!(close_reason(&mut socket).await, (CloseCode::Error, "actor.not_found".to_string()));

    let mut request = format!("ws://127.0.0.1:{port}/gateway/{}/connect", f.counter_id).into_client_request().unwrap();
    request.headers_mut().insert("sec-websocket-protocol", "rivet, rivet_encoding.yaml".parse().unwrap());
    let (mut socket, _) = bounded("the upgrade", tokio_tungstenite::connect_async(request)).await.unwrap();
    assert_eq!(
        close_reason(&mut socket).await,
        (CloseCode::Unsupported, "actor.unsupported_websocket_encoding".to_string())
    );
    f.assert_count_kept().await;
}

/// The attack (security review, issue 9): `PUT /actors` with keys of megabytes. Every such key became an actor whose
/// key the node kept in memory and in `node.db` (200 of them took a node from 14 MB to 1.6 GB of RSS and 764 MB of
/// `node.db`), and one too long for a URL could never be looked up again. Keys are held to RivetKit's limits (a
/// part of at most 128 bytes, at most 1 KiB serialized) on every route that takes one: `PUT`/`POST /actors`,
/// `GET /actors?key=`, the gateway's `rvt-key` query routes over HTTP and WebSocket, and actor-to-actor calls. An
/// oversize key is `actor.key_too_large` (400) naming its size and the limit, and nothing of it is stored.
#[tokio::test]
async fn oversize_actor_keys_are_refused_on_every_route() {
    let f = Fixture::start().await;
    let node_db_before = f.node_db_bytes();
    // Just under the 2 MB a JSON body may have.
    let huge = "k".repeat(2_000_000 - 100);
    for _ in 0..10 {
        let request = f.http.put(f.url("/actors")).json(&json!({"name": "counter", "key": huge}));
        assert_eq!(f.error_of(request).await, (StatusCode::BAD_REQUEST, "actor.key_too_large".to_string()));
    }
    assert_eq!(f.actors_named("counter").await.len(), 1, "only the fixture's counter exists");
    let grown = f.node_db_bytes().saturating_sub(node_db_before);
    assert!(grown < 256 * 1024, "node.db grew by {grown} bytes");

    let part = "p".repeat(129);
    let nine_parts = vec!["q".repeat(120); 9].join("/");
    let relay = Api::new(&f.node).actor("relay", "keys").await;
    let cases = [
        (f.http.put(f.url("/actors")).json(&json!({"name": "counter", "key": part})), "part 1 is 129 bytes"),
        (f.http.post(f.url("/actors")).json(&json!({"name": "counter", "key": format!("ok/{part}")})), "part 2 is 129"),
        (f.http.put(f.url("/actors")).json(&json!({"name": "counter", "key": nine_parts})), "form is 1088 bytes"),
        (f.http.get(f.url_with("/actors", &[("name", "counter"), ("key", &part)])), "part 1 is 129 bytes"),
        (
            f.http.post(f.url_with("/gateway/counter/action/getCount", &[("rvt-method", "get"), ("rvt-key", &part)])),
            "part 1 is 129 bytes",
        ),
        (
            f.http
                .post(f.url_with(
                    "/gateway/counter/action/increment",
                    &[("rvt-method", "getOrCreate"), ("rvt-key", &format!("a,{part}"))],
                ))
                .json(&json!({"args": [1]})),
            "part 2 is 129 bytes",
        ),
        // Actor-to-actor: the relay's `bump(key, n)` calls `get_or_create("counter", key)`.
        (
            f.http.post(f.url(&format!("/gateway/{relay}/action/bump"))).json(&json!({"args": [part, 1]})),
            "part 1 is 129 bytes",
        ),
    ];
    for (request, size) in cases {
        let described = format!("{request:?}");
        let response = request.send().await.unwrap();
        let status = response.status();
        let body: Value = response.json().await.unwrap();
        assert_eq!(
            (status, &body["group"], &body["code"]),
            (StatusCode::BAD_REQUEST, &json!("actor"), &json!("key_too_large")),
            "{described}"
        );
        let message = body["message"].as_str().unwrap();
        assert!(message.contains(size) && message.contains("over the limit of"), "{described}: {message}");
    }

    let port = f.node.endpoint().rsplit(':').next().unwrap().to_string();
    let url = format!("ws://127.0.0.1:{port}/gateway/counter/connect?rvt-method=getOrCreate&rvt-key={part}");
    let (mut socket, _) = bounded("the upgrade", tokio_tungstenite::connect_async(url)).await.unwrap();
    let error = bounded("an Error message", socket.next()).await.unwrap().unwrap();
    let error: Value = serde_json::from_str(error.to_text().unwrap()).unwrap();
    assert_eq!(error["body"]["val"]["code"], "key_too_large", "{error}");
    assert_eq!(close_reason(&mut socket).await, (CloseCode::Error, "actor.key_too_large".to_string()));
    assert_eq!(f.actors_named("counter").await.len(), 1, "no oversize key made an actor");

    // Keys at the limits work on every route: 128 + 7 × 127 bytes and 7 separators are 1024 bytes serialized.
    let mut parts = vec!["p".repeat(128)];
    parts.extend(vec!["q".repeat(127); 7]);
    let serialized = parts.join("/");
    let created = fetch_json(f.http.put(f.url("/actors")).json(&json!({"name": "counter", "key": serialized}))).await;
    let id = created["actor"]["actor_id"].as_str().expect("an actor at the limits").to_string();
    let found = fetch_json(f.http.get(f.url_with("/actors", &[("name", "counter"), ("key", &serialized)]))).await;
    assert_eq!(found["actors"][0]["actor_id"], json!(id), "{found}");
    let query = [("rvt-method", "getOrCreate"), ("rvt-key", &parts.join(","))];
    let increment = f.http.post(f.url_with("/gateway/counter/action/increment", &query)).json(&json!({"args": [3]}));
    let incremented = fetch_json(increment).await;
    assert_eq!(incremented, json!({"output": 3}));
    let bumped = Api::new(&f.node).call(&relay, "bump", json!([parts[0], 2])).await.unwrap();
    assert_eq!(bumped, json!(2));
    f.assert_count_kept().await;
}

/// A WebSocket upgrade of `path` over a plain TCP stream, so the test can write frames no WebSocket library would.
async fn raw_upgrade(f: &Fixture, path: &str, protocols: &str) -> tokio::net::TcpStream {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = f.node.endpoint().trim_start_matches("http://").to_string();
    let mut stream = bounded("the connection", tokio::net::TcpStream::connect(&addr)).await.unwrap();
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
         Sec-WebSocket-Protocol: {protocols}\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut head = Vec::new();
    bounded("the upgrade's answer", async {
        while !head.ends_with(b"\r\n\r\n") {
            head.push(stream.read_u8().await.unwrap());
        }
    })
    .await;
    assert!(head.starts_with(b"HTTP/1.1 101"), "{}", String::from_utf8_lossy(&head));
    stream
}

/// A client frame: `first` is FIN, RSV and opcode; the payload is masked unless `unmasked`; `declared` overrides
/// the length in the header (to announce more than is sent).
fn client_frame(first: u8, payload: &[u8], unmasked: bool, declared: Option<u64>) -> Vec<u8> {
    let len = declared.unwrap_or(payload.len() as u64);
    let mask_bit = if unmasked { 0 } else { 0x80 };
    let mut frame = vec![first];
    match len {
        0..=125 => frame.push(mask_bit | len as u8),
        126..=0xffff => {
            frame.push(mask_bit | 126);
            frame.extend((len as u16).to_be_bytes());
        }
        _ => {
            frame.push(mask_bit | 127);
            frame.extend(len.to_be_bytes());
        }
    }
    if unmasked {
        frame.extend(payload);
    } else {
        let mask = [0x12, 0x34, 0x56, 0x78];
        frame.extend(mask);
        frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    }
    frame
}

/// Reads the server's frames up to its close frame: its code and reason, or `None` if the connection ended
/// without one.
async fn raw_close_of(stream: &mut tokio::net::TcpStream) -> Option<(u16, String)> {
    use tokio::io::AsyncReadExt;
    let read = async {
        loop {
            let mut header = [0u8; 2];
            stream.read_exact(&mut header).await.ok()?;
            let len = match header[1] & 0x7f {
                126 => u64::from(stream.read_u16().await.ok()?),
                127 => stream.read_u64().await.ok()?,
                short => u64::from(short),
            };
            let mut payload = vec![0u8; len as usize];
            stream.read_exact(&mut payload).await.ok()?;
            if header[0] & 0x0f == 0x8 {
                let code = u16::from_be_bytes([payload[0], payload[1]]);
                return Some((code, String::from_utf8_lossy(&payload[2..]).into_owned()));
            }
        }
    };
    bounded("the server's close frame", read).await
}

/// The defect: a client that broke the WebSocket protocol (a malformed frame, a text message that is not UTF-8, a
/// frame announcing more than the 32 MiB the server buffers) had its TCP connection dropped without a close frame,
/// so it could not tell a protocol error from a network failure. RFC 6455 wants a close with 1002 (protocol error),
/// 1007 (invalid payload data) or 1009 (message too big): each case gets that close, with a catalogue reason, on
/// `/connect` and on a raw WebSocket alike, and the node keeps serving.
#[tokio::test]
async fn websocket_protocol_violations_get_the_rfc_6455_close() {
    let f = Fixture::start().await;
    let web = Api::new(&f.node).actor("web", "violations").await;
    let routes = [
        (format!("/gateway/{}/connect", f.counter_id), "rivet, rivet_encoding.json"),
        (format!("/gateway/{web}/websocket/"), "rivet"),
    ];
    let cases: [(&str, Vec<u8>, (u16, &str)); 5] = [
        ("reserved bit set", client_frame(0xc1, b"{}", false, None), (1002, "actor.invalid_request")),
        ("unknown opcode", client_frame(0x83, b"{}", false, None), (1002, "actor.invalid_request")),
        ("unmasked client frame", client_frame(0x81, b"{}", true, None), (1002, "actor.invalid_request")),
        (
            "text that is not UTF-8",
            client_frame(0x81, &[0x7b, 0xff, 0xfe, 0x7d], false, None),
            (1007, "actor.invalid_request"),
        ),
        (
            "a 40 MiB frame announced",
            client_frame(0x82, &[], false, Some(40 << 20)),
            (1009, "message.incoming_too_long"),
        ),
    ];
    for (path, protocols) in &routes {
        for (what, frame, (code, reason)) in &cases {
            let mut stream = raw_upgrade(&f, path, protocols).await;
            tokio::io::AsyncWriteExt::write_all(&mut stream, frame).await.unwrap();
            let close = raw_close_of(&mut stream).await;
            assert_eq!(close, Some((*code, reason.to_string())), "{what} on {path}");
        }
    }
    f.assert_count_kept().await;
}

/// The defect: errors the HTTP stack produced by itself had no `{group, code, message, metadata}` body, unlike
/// every other error: a long URI got a bare 414, oversize headers a bare 431, and a malformed query on a REST route
/// axum's plain-text 400. Each is now a catalogue error with the JSON body: `guard.uri_too_long` (414) for a URI
/// over 16 KiB, `guard.headers_too_large` (431) for headers over 32 KiB, `actor.invalid_request` (400) for a query
/// or path that does not parse.
#[tokio::test]
async fn oversize_heads_and_unparsable_queries_get_catalogue_errors() {
    let f = Fixture::start().await;
    let long = "x".repeat(20 * 1024);
    let cases = [
        (f.http.get(f.url_with("/actors", &[("name", &long)])), StatusCode::URI_TOO_LONG, "guard.uri_too_long"),
        (
            f.http
                .post(f.url(&format!("/gateway/{}/action/increment?pad={long}", f.counter_id)))
                .json(&json!({"args": [1]})),
            StatusCode::URI_TOO_LONG,
            "guard.uri_too_long",
        ),
        (f.http.get(f.url(&format!("/{long}"))), StatusCode::URI_TOO_LONG, "guard.uri_too_long"),
        (
            f.http.get(f.url("/actors/names")).header("x-padding", "y".repeat(40 * 1024)),
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            "guard.headers_too_large",
        ),
        (
            f.http.put(f.url("/actors?namespace=a&namespace=b")).json(&json!({"name": "counter", "key": "q"})),
            StatusCode::BAD_REQUEST,
            "actor.invalid_request",
        ),
        (f.http.get(f.url("/actors/names?namespace=a&namespace=b")), StatusCode::BAD_REQUEST, "actor.invalid_request"),
        (f.http.get(f.url("/actors?limit=many")), StatusCode::BAD_REQUEST, "actor.invalid_request"),
        (
            f.http.get(f.url(&format!("/actors/{}/kv/keys/%FF", f.counter_id))),
            StatusCode::BAD_REQUEST,
            "actor.invalid_request",
        ),
    ];
    for (request, status, code) in cases {
        let described = format!("{request:?}").chars().take(200).collect::<String>();
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), status, "{described}");
        assert_eq!(response.headers()["content-type"], "application/json", "{described}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(
            format!("{}.{}", body["group"].as_str().unwrap(), body["code"].as_str().unwrap()),
            code,
            "{described}"
        );
        assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()), "{described}: {body}");
    }
    f.assert_count_kept().await;
}

/// CBOR: the head of an item of major type `major` with argument `n`.
fn cbor_head(major: u8, n: usize) -> Vec<u8> {
    match n {
        0..=23 => vec![major << 5 | n as u8],
        24..=0xff => vec![major << 5 | 24, n as u8],
        _ => [vec![major << 5 | 25], (n as u16).to_be_bytes().to_vec()].concat(),
    }
}

/// CBOR: a text string.
fn cbor_text(text: &str) -> Vec<u8> {
    [cbor_head(3, text.len()), text.as_bytes().to_vec()].concat()
}

/// CBOR: `depth` arrays of one element, one inside the other, around a 0.
fn cbor_nested(depth: usize) -> Vec<u8> {
    let mut bytes = vec![0x81; depth];
    bytes.push(0x00);
    bytes
}

/// CBOR: the arguments of the journal's `notify(event, value)` with `value` nested `depth` deep.
fn notify_args(depth: usize) -> Vec<u8> {
    [vec![0x82], cbor_text("deep"), cbor_nested(depth)].concat()
}

/// The defect guarded against: a CBOR decoder follows nesting by recursion, so an item nested deeply enough (a
/// few bytes a level: 60,000 levels fit a 64 KiB message) would overflow the stack and crash the node for everyone.
/// Every CBOR the node takes from a client (the `cbor` encoding's bodies and frames, the CBOR inside `bare` ones) is
/// decoded with a nesting limit of 128: deeper is `actor.invalid_request` (400 over HTTP, close 1011 on a
/// WebSocket) naming malformed CBOR, shallower is decoded, and the node keeps serving.
#[tokio::test]
async fn deeply_nested_cbor_is_refused_with_its_code_and_the_node_keeps_serving() {
    let f = Fixture::start().await;
    let journal = Api::new(&f.node).actor("journal", "nested").await;
    let url = f.url(&format!("/gateway/{journal}/action/notify"));
    let post = |encoding: &str, body: Vec<u8>| f.http.post(&url).header("x-rivet-encoding", encoding).body(body);
    // `cbor`: the body is {"args": [...]}; `bare`: a version, then the CBOR of the arguments with its length.
    let cbor = |depth| [vec![0xa1], cbor_text("args"), notify_args(depth)].concat();
    let bare = |depth| {
        let args = notify_args(depth);
        let mut body = vec![0x04, 0x00];
        let mut len = args.len();
        while len >= 0x80 {
            body.push(len as u8 | 0x80);
            len >>= 7;
        }
        body.push(len as u8);
        [body, args].concat()
    };

    // Within the limit, the value reaches the action.
    let response = post("cbor", cbor(100)).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let answer: ciborium::Value = ciborium::from_reader(&response.bytes().await.unwrap()[..]).unwrap();
    assert_eq!(answer, ciborium::Value::Map(vec![(ciborium::Value::Text("output".into()), ciborium::Value::Null)]));
    assert_eq!(post("bare", bare(100)).send().await.unwrap().status(), StatusCode::OK);

    for depth in [200, 60_000] {
        for (encoding, body) in [("cbor", cbor(depth)), ("bare", bare(depth))] {
            let response = post(encoding, body).send().await.unwrap();
            let status = response.status();
            let error: Value = response.json().await.unwrap();
            let code = format!("{}.{}", error["group"].as_str().unwrap(), error["code"].as_str().unwrap());
            assert_eq!(
                (status, code.as_str()),
                (StatusCode::BAD_REQUEST, "actor.invalid_request"),
                "{encoding} {depth}"
            );
            let message = error["message"].as_str().unwrap();
            assert!(message.starts_with("malformed CBOR"), "{encoding} {depth}: {message}");
        }
    }

    // On a `cbor` connection, an action request whose arguments nest too deep closes it with the code.
    let port = f.node.endpoint().rsplit(':').next().unwrap().to_string();
    let mut request = format!("ws://127.0.0.1:{port}/gateway/{journal}/connect").into_client_request().unwrap();
    request.headers_mut().insert("sec-websocket-protocol", "rivet, rivet_encoding.cbor".parse().unwrap());
    let action = |depth| {
        let val = [vec![0xa3], cbor_text("id"), vec![0x00], cbor_text("name"), cbor_text("notify")].concat();
        let val = [val, cbor_text("args"), notify_args(depth)].concat();
        let body = [vec![0xa2], cbor_text("tag"), cbor_text("ActionRequest"), cbor_text("val"), val].concat();
        Message::Binary([vec![0xa1], cbor_text("body"), body].concat().into())
    };
    let (mut socket, _) = bounded("the upgrade", tokio_tungstenite::connect_async(request.clone())).await.unwrap();
    assert!(bounded("Init", socket.next()).await.unwrap().unwrap().is_binary());
    socket.send(action(100)).await.unwrap();
    let answer = bounded("the action's response", socket.next()).await.unwrap().unwrap().into_data();
    let answer: ciborium::Value = ciborium::from_reader(&answer[..]).unwrap();
    let tag = answer.as_map().and_then(|m| m[0].1.as_map()).map(|body| body[0].clone());
    assert_eq!(tag, Some((ciborium::Value::Text("tag".into()), ciborium::Value::Text("ActionResponse".into()))));
    for depth in [200, 60_000] {
        let (mut socket, _) = bounded("the upgrade", tokio_tungstenite::connect_async(request.clone())).await.unwrap();
        assert!(bounded("Init", socket.next()).await.unwrap().unwrap().is_binary());
        socket.send(action(depth)).await.unwrap();
        assert_eq!(close_reason(&mut socket).await, (CloseCode::Error, "actor.invalid_request".to_string()), "{depth}");
    }
    f.assert_count_kept().await;
}
