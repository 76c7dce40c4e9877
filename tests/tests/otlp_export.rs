//! Export of spans to an OpenTelemetry collector (`tern dev --otlp-endpoint`): a real node posts the spans of its
//! committed turns to an in-process collector as OTLP/JSON, the same spans its inspector shows; with the collector
//! down, actions still answer and the dropped spans are counted; with a collector that never answers, actions
//! answer while an export waits on it.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::routing::post;
use serde_json::{Value, json};
use tern_tests::{Api, TernProcess, eventually, free_port};
use tokio::io::AsyncReadExt;

/// How long spans may take to reach the collector, or to be given up on (batches wait up to 1 s; a failing batch
/// is tried four times over about 3.5 s).
const EXPORT_CAP: Duration = Duration::from_secs(60);

fn example_binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_tern-example"))
}

/// Every request the collector received: its `Content-Type` and its body, parsed.
type Received = Arc<Mutex<Vec<(String, Value)>>>;

async fn collect(State(received): State<Received>, headers: HeaderMap, body: String) -> &'static str {
    let content_type = headers.get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
    let body = serde_json::from_str(&body).unwrap_or(Value::Null);
    received.lock().unwrap().push((content_type, body));
    "{}"
}

/// An OTLP/HTTP collector on 127.0.0.1 recording every `POST /v1/traces`; its base URL.
async fn start_collector() -> (Received, String) {
    let received = Received::default();
    let app = Router::new().route("/v1/traces", post(collect)).with_state(received.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (received, url)
}

fn start_node(otlp_endpoint: &str) -> (TernProcess, Api, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let node =
        TernProcess::start_with(&example_binary(), &dir.path().join("data"), &["--otlp-endpoint", otlp_endpoint]);
    let api = Api::new(&node);
    (node, api, dir)
}

/// The value of an unlabelled counter on the node's `/metrics`.
async fn counter(api: &Api, name: &str) -> f64 {
    let text = api.http.get(format!("{}/metrics", api.endpoint)).send().await.unwrap().text().await.unwrap();
    let line = text.lines().find(|l| l.starts_with(&format!("{name} "))).unwrap_or_else(|| panic!("no {name}: {text}"));
    line[name.len() + 1..].parse().unwrap()
}

/// The value of a string attribute in an OTLP attribute list.
fn attribute<'a>(attributes: &'a Value, key: &str) -> Option<&'a str> {
    attributes.as_array()?.iter().find(|a| a["key"] == key)?["value"]["stringValue"].as_str()
}

/// The spans the collector received for `actor_id`, checking every request's shape on the way.
fn exported_spans(received: &Received, actor_id: &str) -> Vec<Value> {
    let mut spans = Vec::new();
    for (content_type, body) in received.lock().unwrap().iter() {
        assert_eq!(content_type, "application/json");
        for resource in body["resourceSpans"].as_array().expect("resourceSpans") {
            let attributes = &resource["resource"]["attributes"];
            assert_eq!(attribute(attributes, "service.name"), Some("tern"), "{resource}");
            if attribute(attributes, "actor.id") != Some(actor_id) {
                continue;
            }
            assert_eq!(attribute(attributes, "actor.name"), Some("counter"), "{resource}");
            for scope in resource["scopeSpans"].as_array().expect("scopeSpans") {
                spans.extend(scope["spans"].as_array().expect("spans").iter().cloned());
            }
        }
    }
    spans
}

/// The span ids the actor's inspector shows.
async fn inspector_span_ids(api: &Api, actor_id: &str) -> BTreeSet<String> {
    let url = format!("{}/gateway/{actor_id}/inspector/traces?startMs=0&limit=1000", api.endpoint);
    let traces: Value = api.http.get(url).send().await.unwrap().json().await.unwrap();
    let spans = traces["otlp"]["resourceSpans"][0]["scopeSpans"][0]["spans"].as_array().expect("inspector spans");
    spans.iter().map(|s| s["spanId"].as_str().unwrap().to_string()).collect()
}

fn is_hex(value: &Value, digits: usize) -> bool {
    value.as_str().is_some_and(|s| s.len() == digits && s.chars().all(|c| c.is_ascii_hexdigit()))
}

#[tokio::test]
async fn spans_of_committed_turns_reach_the_collector_as_otlp_json() {
    let (received, collector_url) = start_collector().await;
    let (_node, api, _dir) = start_node(&collector_url);
    let id = api.actor("counter", "k").await;
    for expected in 1..=3 {
        assert_eq!(api.call(&id, "increment", json!([1])).await.unwrap(), json!(expected));
    }

    let actions = eventually("three increment spans reach the collector", EXPORT_CAP, || {
        let received = received.clone();
        let id = id.clone();
        async move {
            let actions: Vec<Value> =
                exported_spans(&received, &id).into_iter().filter(|s| s["name"] == "action increment").collect();
            (actions.len() >= 3).then_some(actions)
        }
    })
    .await;
    assert_eq!(actions.len(), 3, "each committed span is exported once: {actions:?}");
    for span in &actions {
        assert!(is_hex(&span["traceId"], 32) && is_hex(&span["spanId"], 16), "{span}");
        let start: u64 = span["startTimeUnixNano"].as_str().unwrap().parse().unwrap();
        let end: u64 = span["endTimeUnixNano"].as_str().unwrap().parse().unwrap();
        assert!(start > 0 && end >= start, "{span}");
        assert_eq!(span["kind"], 2, "a server span: {span}");
    }

    // Everything the inspector shows for the actor is exported too.
    let shown = inspector_span_ids(&api, &id).await;
    assert!(actions.iter().all(|s| shown.contains(s["spanId"].as_str().unwrap())), "{shown:?}");
    eventually("every span the inspector shows is exported", EXPORT_CAP, || {
        let (received, id, shown) = (received.clone(), id.clone(), shown.clone());
        async move {
            let exported: BTreeSet<String> =
                exported_spans(&received, &id).iter().map(|s| s["spanId"].as_str().unwrap().to_string()).collect();
            shown.is_subset(&exported).then_some(())
        }
    })
    .await;

    assert!(counter(&api, "tern_trace_spans_exported_total").await >= shown.len() as f64);
    assert_eq!(counter(&api, "tern_trace_spans_dropped_total").await, 0.0);
}

#[tokio::test]
async fn a_collector_that_is_down_fails_no_action_and_its_spans_are_counted_dropped() {
    // A port that was free a moment ago: nothing listens there, so every export is refused.
    let (_node, api, _dir) = start_node(&format!("http://127.0.0.1:{}", free_port()));
    let id = api.actor("counter", "k").await;
    for expected in 1..=5 {
        assert_eq!(api.call(&id, "increment", json!([1])).await.unwrap(), json!(expected));
    }
    // The spans are still in the actor's database, and every one of them is counted dropped, none exported.
    let shown = inspector_span_ids(&api, &id).await.len() as f64;
    let api_ref = &api;
    let dropped = eventually("the node counts the spans it could not export", EXPORT_CAP, || async move {
        let dropped = counter(api_ref, "tern_trace_spans_dropped_total").await;
        (dropped >= shown).then_some(dropped)
    })
    .await;
    assert_eq!(dropped, shown);
    assert_eq!(counter(&api, "tern_trace_spans_exported_total").await, 0.0);
}

/// One connection to a [`SilentCollector`]: how many bytes came in, and whether the client hung up.
#[derive(Default)]
struct Connection {
    received: AtomicUsize,
    closed: AtomicBool,
}

impl Connection {
    /// Whether a request came in and the client still waits for its answer.
    fn waiting(&self) -> bool {
        self.received.load(Ordering::SeqCst) > 0 && !self.closed.load(Ordering::SeqCst)
    }
}

/// A collector that accepts connections and reads requests but never answers one: each connection is read until
/// the client hangs up.
struct SilentCollector {
    url: String,
    connections: Arc<Mutex<Vec<Arc<Connection>>>>,
}

impl SilentCollector {
    async fn start() -> SilentCollector {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let connections = Arc::<Mutex<Vec<Arc<Connection>>>>::default();
        let accepted = connections.clone();
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let connection = Arc::new(Connection::default());
                accepted.lock().unwrap().push(connection.clone());
                tokio::spawn(async move {
                    let mut buffer = [0u8; 4096];
                    while let Ok(read @ 1..) = stream.read(&mut buffer).await {
                        connection.received.fetch_add(read, Ordering::SeqCst);
                    }
                    connection.closed.store(true, Ordering::SeqCst);
                });
            }
        });
        SilentCollector { url, connections }
    }

    /// The first connection whose request waits for an answer, if any.
    fn waiting(&self) -> Option<Arc<Connection>> {
        self.connections.lock().unwrap().iter().find(|c| c.waiting()).cloned()
    }
}

/// The exporter posts the first action's spans to a collector that never answers, and waits (up to its 10 s
/// request timeout). While that request is still waiting, more actions answer: the export is not in their path.
/// Were it, the second action would wait for the exporter to give up on the collector, and the request would be
/// over when it answered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_collector_that_never_answers_holds_up_no_action() {
    let collector = SilentCollector::start().await;
    let (_node, api, _dir) = start_node(&collector.url);
    let id = api.actor("counter", "k").await;
    assert_eq!(api.call(&id, "increment", json!([1])).await.unwrap(), json!(1));
    let collector = &collector;
    let export =
        eventually("an export waits on the collector", EXPORT_CAP, || async move { collector.waiting() }).await;
    for expected in 2..=5 {
        assert_eq!(api.call(&id, "increment", json!([1])).await.unwrap(), json!(expected));
    }
    assert!(export.waiting(), "the export request ended before the actions answered");
}
