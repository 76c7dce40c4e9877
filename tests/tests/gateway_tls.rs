//! The gateway over TLS: `tern dev --gateway-tls-cert --gateway-tls-key` serves HTTPS and WSS with the given
//! certificate, refuses plain HTTP on the same port, keeps serving after a failed handshake, reports its
//! `https://` URL, and still stops gracefully.

use std::path::PathBuf;
use std::sync::Arc;

use futures_util::{SinkExt, StreamExt};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use serde_json::{Value, json};
use tern_proto::{Encoding, ToClient, ToServer};
use tern_tests::TernProcess;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

fn example_binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_tern-example"))
}

/// A `tern dev` serving TLS with a fresh self-signed certificate for `localhost` and `127.0.0.1`, and a TLS client
/// that trusts that certificate (and nothing else).
struct Fixture {
    node: TernProcess,
    port: u16,
    connector: TlsConnector,
    _dir: tempfile::TempDir,
}

impl Fixture {
    fn start() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let certified =
            rcgen::generate_simple_self_signed(vec!["localhost".to_string(), "127.0.0.1".to_string()]).unwrap();
        let (cert, key) = (dir.path().join("gateway.pem"), dir.path().join("gateway.key"));
        std::fs::write(&cert, certified.cert.pem()).unwrap();
        std::fs::write(&key, certified.signing_key.serialize_pem()).unwrap();
        let args = ["--gateway-tls-cert", cert.to_str().unwrap(), "--gateway-tls-key", key.to_str().unwrap()];
        let node = TernProcess::start_with(&example_binary(), &dir.path().join("data"), &args);
        let port = node.endpoint().rsplit(':').next().unwrap().parse().unwrap();

        let mut roots = rustls::RootCertStore::empty();
        roots.add(certified.cert.der().clone()).unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Fixture { node, port, connector: TlsConnector::from(Arc::new(config)), _dir: dir }
    }

    /// A TLS connection to the gateway, checking its certificate against `name`.
    async fn tls(&self, name: &str) -> TlsStream<TcpStream> {
        let tcp = TcpStream::connect(("127.0.0.1", self.port)).await.unwrap();
        let name = ServerName::try_from(name.to_string()).unwrap();
        self.connector.connect(name, tcp).await.expect("a TLS handshake with the gateway")
    }

    /// Sends one HTTPS request (to the certificate's IP address) and returns the status and JSON body.
    async fn request(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let tls = self.tls("127.0.0.1").await;
        assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"http/1.1"[..]), "only HTTP/1.1 is offered");
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(tls)).await.unwrap();
        tokio::spawn(connection);
        let body = body.map(|body| serde_json::to_vec(&body).unwrap()).unwrap_or_default();
        let request = hyper::Request::builder()
            .method(method)
            .uri(path)
            .header("host", format!("127.0.0.1:{}", self.port))
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(body)))
            .unwrap();
        let response = sender.send_request(request).await.unwrap();
        let status = response.status().as_u16();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
    }
}

#[tokio::test]
async fn the_gateway_serves_https_and_wss_and_refuses_plain_http() {
    let mut f = Fixture::start();

    let (status, metadata) = f.request("GET", "/metadata", None).await;
    assert_eq!((status, metadata["runtime"].as_str()), (200, Some("tern")), "{metadata}");
    let (_, members) = f.request("GET", "/cluster/members", None).await;
    assert_eq!(members["members"][0]["gatewayUrl"], format!("https://127.0.0.1:{}", f.port), "{members}");

    // Plain HTTP on the TLS port gets no answer; the failed handshake leaves the listener serving.
    let plain = tern_tests::http_client().get(format!("http://127.0.0.1:{}/metadata", f.port)).send().await;
    assert!(plain.is_err(), "plain HTTP was answered: {plain:?}");
    let plain_ws = tokio_tungstenite::connect_async(format!("ws://127.0.0.1:{}/metadata", f.port)).await;
    assert!(plain_ws.is_err(), "a plain WebSocket opened");

    // An actor created and called over HTTPS.
    let create = json!({"name": "counter", "key": "tls", "runner_name_selector": "default", "crash_policy": "sleep"});
    let (status, created) = f.request("PUT", "/actors", Some(create)).await;
    assert_eq!(status, 200, "{created}");
    let id = created["actor"]["actor_id"].as_str().unwrap().to_string();
    let increment = format!("/gateway/{id}/action/increment");
    assert_eq!(f.request("POST", &increment, Some(json!({"args": [5]}))).await, (200, json!({"output": 5})));

    // The RivetKit connection over WSS (checking the certificate's DNS name): Init, then an action.
    let mut request = format!("wss://localhost:{}/gateway/{id}/connect", f.port).into_client_request().unwrap();
    request.headers_mut().insert("sec-websocket-protocol", "rivet, rivet_encoding.json".parse().unwrap());
    let (mut socket, response) = tokio_tungstenite::client_async(request, f.tls("localhost").await).await.unwrap();
    assert_eq!(response.headers()["sec-websocket-protocol"], "rivet");
    let next = |message: Option<Result<Message, tokio_tungstenite::tungstenite::Error>>| match message {
        Some(Ok(Message::Text(text))) => Encoding::Json.decode_to_client(text.as_bytes()).unwrap(),
        other => panic!("expected a JSON message, got {other:?}"),
    };
    match next(tern_tests::bounded("a message", socket.next()).await) {
        ToClient::Init { actor_id, .. } => assert_eq!(actor_id, id),
        other => panic!("expected Init, got {other:?}"),
    }
    let action = ToServer::ActionRequest { id: 1, name: "increment".into(), args: array_of(2) };
    let text = String::from_utf8(Encoding::Json.encode_to_server(&action)).unwrap();
    socket.send(Message::text(text)).await.unwrap();
    loop {
        match next(tern_tests::bounded("a message", socket.next()).await) {
            ToClient::ActionResponse { id: 1, output } => {
                assert_eq!(output, tern_proto::Value::Integer(7.into()));
                break;
            }
            ToClient::Event { .. } => {}
            other => panic!("expected the action's response, got {other:?}"),
        }
    }
    drop(socket);

    // The stop is still graceful, and the log names the https:// URL.
    assert!(f.node.terminate().success(), "log: {}", f.node.log_path().display());
    let log = std::fs::read_to_string(f.node.log_path()).unwrap();
    assert!(log.contains(&format!("listening on https://127.0.0.1:{}", f.port)), "{log}");
}

/// `[n]` as a protocol value.
fn array_of(n: i64) -> tern_proto::Value {
    tern_proto::Value::Array(vec![tern_proto::Value::Integer(n.into())])
}
