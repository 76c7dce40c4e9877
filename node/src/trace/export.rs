//! Optional export of committed spans to an OpenTelemetry collector (`--otlp-endpoint`): OTLP/HTTP with JSON
//! bodies, `POST {endpoint}/v1/traces`, rendered by [`super::otlp`].
//!
//! One background task per node. Turns hand it their spans after they commit ([`SpanExporter::export`]), through a
//! bounded queue that never waits: a span that finds it full is dropped. The task sends batches (up to
//! [`ExportSettings::max_batch`] spans, or whatever came within [`ExportSettings::max_delay`] of a batch's first
//! span), each request bounded by [`ExportSettings::timeout`], and tries a failed batch again with a doubling
//! backoff before dropping it. Exported and dropped spans are counted (`tern_trace_spans_exported_total`,
//! `tern_trace_spans_dropped_total`), so neither a slow nor a missing collector slows or fails a turn.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use reqwest::StatusCode;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use super::{Span, otlp};
use crate::metrics::Metrics;

/// The path OTLP/HTTP collectors take traces on, appended to the endpoint.
pub const TRACES_PATH: &str = "/v1/traces";

/// How the exporter queues, batches and retries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportSettings {
    /// Spans waiting to be sent, at most; more are dropped.
    pub capacity: usize,
    /// Spans in one request, at most.
    pub max_batch: usize,
    /// How long a batch's first span waits for more before the batch is sent.
    pub max_delay: Duration,
    /// The time limit of one request, connecting included.
    pub timeout: Duration,
    /// Tries per batch (the first and the retries); a batch that fails them all is dropped.
    pub attempts: u32,
    /// The wait before the first retry, doubled before each further one.
    pub backoff: Duration,
}

impl Default for ExportSettings {
    /// 10,000 queued spans, batches of 512 or 1 s, 10 s per request, 4 tries 0.5 s, 1 s and 2 s apart.
    fn default() -> Self {
        ExportSettings {
            capacity: 10_000,
            max_batch: 512,
            max_delay: Duration::from_secs(1),
            timeout: Duration::from_secs(10),
            attempts: 4,
            backoff: Duration::from_millis(500),
        }
    }
}

/// The actor whose spans these are: their OTLP resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpanSource {
    /// The actor's id.
    pub actor_id: String,
    /// The actor's name (`counter`).
    pub actor_name: String,
    /// The actor's key, serialized.
    pub actor_key: String,
}

enum Item {
    Span(Arc<SpanSource>, Span),
    /// Send everything queued before this, then answer.
    Flush(oneshot::Sender<()>),
}

/// A handle to the node's exporter task; clones share it. The task ends once every handle is dropped.
#[derive(Debug, Clone)]
pub struct SpanExporter {
    tx: mpsc::Sender<Item>,
    metrics: Metrics,
}

impl SpanExporter {
    /// Starts the exporter task (on the current tokio runtime) posting to `{endpoint}/v1/traces`; `endpoint` is a
    /// plain `http://` base URL such as `http://collector:4318`. Fails only if the HTTP client cannot be built.
    pub fn spawn(endpoint: &str, settings: ExportSettings, metrics: Metrics) -> Result<SpanExporter, reqwest::Error> {
        let client = reqwest::Client::builder().timeout(settings.timeout).build()?;
        let url = format!("{}{TRACES_PATH}", endpoint.trim_end_matches('/'));
        let (tx, rx) = mpsc::channel(settings.capacity.max(1));
        let task = Task { rx, client, url, settings, metrics: metrics.clone(), healthy: true };
        tokio::spawn(task.run());
        Ok(SpanExporter { tx, metrics })
    }

    /// Queues the spans of a committed turn of `source` without waiting; those that do not fit are dropped and
    /// counted.
    pub fn export(&self, source: &Arc<SpanSource>, spans: Vec<Span>) {
        let mut dropped = 0;
        for span in spans {
            if self.tx.try_send(Item::Span(source.clone(), span)).is_err() {
                dropped += 1;
            }
        }
        if dropped > 0 {
            self.metrics.record_spans_dropped(dropped);
        }
    }

    /// Sends what was queued before this call, waiting at most `wait` (for a node that is stopping).
    pub async fn flush(&self, wait: Duration) {
        let (done, flushed) = oneshot::channel();
        let _ = tokio::time::timeout(wait, async {
            if self.tx.send(Item::Flush(done)).await.is_ok() {
                let _ = flushed.await;
            }
        })
        .await;
    }
}

/// The exporter's background task.
struct Task {
    rx: mpsc::Receiver<Item>,
    client: reqwest::Client,
    url: String,
    settings: ExportSettings,
    metrics: Metrics,
    /// Whether the last batch got through; failures are logged as warnings only when it did.
    healthy: bool,
}

impl Task {
    async fn run(mut self) {
        let mut batch = Vec::with_capacity(self.settings.max_batch);
        let mut flushes = Vec::new();
        let mut open = true;
        while open {
            match self.rx.recv().await {
                Some(item) => take(item, &mut batch, &mut flushes),
                None => break,
            }
            let deadline = Instant::now() + self.settings.max_delay;
            while batch.len() < self.settings.max_batch && flushes.is_empty() {
                match tokio::time::timeout_at(deadline, self.rx.recv()).await {
                    Ok(Some(item)) => take(item, &mut batch, &mut flushes),
                    Ok(None) => {
                        open = false;
                        break;
                    }
                    Err(_) => break,
                }
            }
            if !batch.is_empty() {
                self.deliver(std::mem::take(&mut batch)).await;
            }
            for done in flushes.drain(..) {
                let _ = done.send(());
            }
        }
    }

    /// Posts one batch, trying again on failures worth retrying; counts its spans exported or dropped.
    async fn deliver(&mut self, batch: Vec<(Arc<SpanSource>, Span)>) {
        let count = batch.len() as u64;
        let body = Bytes::from(render(batch).to_string());
        let mut backoff = self.settings.backoff;
        let mut failure = String::new();
        for attempt in 1..=self.settings.attempts.max(1) {
            if attempt > 1 {
                tokio::time::sleep(backoff).await;
                backoff = backoff.saturating_mul(2);
            }
            let sent = self
                .client
                .post(&self.url)
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(body.clone())
                .send()
                .await;
            match sent {
                Ok(response) if response.status().is_success() => {
                    if !self.healthy {
                        tracing::info!(url = %self.url, "the OTLP collector takes spans again");
                    }
                    self.healthy = true;
                    self.metrics.record_spans_exported(count);
                    return;
                }
                Ok(response) => {
                    let status = response.status();
                    failure = format!("HTTP {status}");
                    if !retryable(status) {
                        break;
                    }
                }
                Err(e) => failure = e.to_string(),
            }
        }
        if self.healthy {
            tracing::warn!(url = %self.url, error = %failure, spans = count, "cannot export spans; dropping them");
        } else {
            tracing::debug!(url = %self.url, error = %failure, spans = count, "cannot export spans; dropping them");
        }
        self.healthy = false;
        self.metrics.record_spans_dropped(count);
    }
}

/// Adds a queued item to the batch being gathered, or to the flushes to answer once it is sent.
fn take(item: Item, batch: &mut Vec<(Arc<SpanSource>, Span)>, flushes: &mut Vec<oneshot::Sender<()>>) {
    match item {
        Item::Span(source, span) => batch.push((source, span)),
        Item::Flush(done) => flushes.push(done),
    }
}

/// OTLP/HTTP's retryable answers: too many requests, bad gateway, unavailable, gateway timeout.
fn retryable(status: StatusCode) -> bool {
    matches!(status.as_u16(), 429 | 502 | 503 | 504)
}

/// The batch as one request: a resource per actor, its spans in the order they came.
fn render(batch: Vec<(Arc<SpanSource>, Span)>) -> serde_json::Value {
    let mut groups: Vec<(Arc<SpanSource>, Vec<Span>)> = Vec::new();
    let mut index: HashMap<String, usize> = HashMap::new();
    for (source, span) in batch {
        match index.get(&source.actor_id) {
            Some(&i) => groups[i].1.push(span),
            None => {
                index.insert(source.actor_id.clone(), groups.len());
                groups.push((source, vec![span]));
            }
        }
    }
    otlp::request(
        groups.iter().map(|(source, spans)| {
            otlp::resource_spans(&source.actor_id, &source.actor_name, &source.actor_key, spans)
        }),
    )
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use axum::Router;
    use axum::extract::State;
    use axum::http::{HeaderMap, StatusCode as AxumStatus};
    use axum::routing::post;
    use serde_json::Value as JsonValue;

    use super::*;
    use crate::metrics::Snapshot;
    use crate::trace::{Recorder, SpanKind};

    /// What a test collector received, and the status it answers with.
    #[derive(Default)]
    struct Collector {
        requests: Mutex<Vec<(Option<String>, JsonValue)>>,
        status: Mutex<u16>,
    }

    async fn collect(State(collector): State<Arc<Collector>>, headers: HeaderMap, body: String) -> AxumStatus {
        let content_type = headers.get("content-type").and_then(|v| v.to_str().ok()).map(str::to_string);
        let body = serde_json::from_str(&body).unwrap_or(JsonValue::Null);
        collector.requests.lock().unwrap().push((content_type, body));
        AxumStatus::from_u16(*collector.status.lock().unwrap()).unwrap()
    }

    /// A collector on 127.0.0.1 answering `status`; its base URL.
    async fn collector(status: u16) -> (Arc<Collector>, String) {
        let collector = Arc::new(Collector { status: Mutex::new(status), ..Default::default() });
        let app = Router::new().route(TRACES_PATH, post(collect)).with_state(collector.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        (collector, url)
    }

    fn settings() -> ExportSettings {
        ExportSettings {
            capacity: 100,
            max_batch: 3,
            max_delay: Duration::from_millis(50),
            timeout: Duration::from_secs(5),
            attempts: 3,
            backoff: Duration::from_millis(10),
        }
    }

    fn spans(count: usize) -> Vec<Span> {
        let recorder = Recorder::default();
        for i in 0..count {
            let span = recorder.start(&format!("action a{i}"), SpanKind::Server, vec![], false);
            recorder.finish(span, None);
        }
        recorder.take()
    }

    fn source(id: &str) -> Arc<SpanSource> {
        Arc::new(SpanSource { actor_id: id.into(), actor_name: "counter".into(), actor_key: id.into() })
    }

    /// An exporter with the test [`settings`] posting to a collector that answers `status`.
    async fn exporter_to(status: u16) -> (Arc<Collector>, Metrics, SpanExporter) {
        let (collector, url) = collector(status).await;
        let metrics = Metrics::new("local");
        let exporter = SpanExporter::spawn(&url, settings(), metrics.clone()).unwrap();
        (collector, metrics, exporter)
    }

    fn counter(metrics: &Metrics, name: &str) -> String {
        let text = metrics.render(&Snapshot::default());
        let line = text.lines().find(|l| l.starts_with(&format!("{name} "))).unwrap_or_else(|| panic!("{text}"));
        line[name.len() + 1..].to_string()
    }

    #[tokio::test]
    async fn batches_are_grouped_by_actor_and_posted_as_otlp_json() {
        let (collector, metrics, exporter) = exporter_to(200).await;
        exporter.export(&source("a"), spans(2));
        exporter.export(&source("b"), spans(1));
        exporter.export(&source("a"), spans(1));
        exporter.flush(Duration::from_secs(5)).await;

        let requests = collector.requests.lock().unwrap().clone();
        assert_eq!(requests.len(), 2, "batches of at most 3: {requests:?}");
        let (content_type, first) = &requests[0];
        assert_eq!(content_type.as_deref(), Some("application/json"));
        let resources = first["resourceSpans"].as_array().unwrap();
        let ids: Vec<&JsonValue> = resources.iter().map(|r| &r["resource"]["attributes"][1]["value"]).collect();
        assert_eq!(ids, [&serde_json::json!({"stringValue": "a"}), &serde_json::json!({"stringValue": "b"})]);
        assert_eq!(resources[0]["scopeSpans"][0]["spans"].as_array().unwrap().len(), 2);
        assert_eq!(resources[0]["resource"]["attributes"][0]["value"]["stringValue"], "tern");
        assert_eq!(requests[1].1["resourceSpans"][0]["scopeSpans"][0]["spans"][0]["name"], "action a0");
        assert_eq!(counter(&metrics, "tern_trace_spans_exported_total"), "4");
        assert_eq!(counter(&metrics, "tern_trace_spans_dropped_total"), "0");
    }

    #[tokio::test]
    async fn failed_batches_are_retried_then_dropped_and_a_full_queue_drops() {
        let (collector, metrics, exporter) = exporter_to(503).await;
        exporter.export(&source("a"), spans(1));
        exporter.flush(Duration::from_secs(5)).await;
        assert_eq!(collector.requests.lock().unwrap().len(), 3, "three tries");
        assert_eq!(counter(&metrics, "tern_trace_spans_dropped_total"), "1");

        // A refused request is not tried again.
        *collector.status.lock().unwrap() = 400;
        exporter.export(&source("a"), spans(1));
        exporter.flush(Duration::from_secs(5)).await;
        assert_eq!(collector.requests.lock().unwrap().len(), 4);
        assert_eq!(counter(&metrics, "tern_trace_spans_dropped_total"), "2");

        // The queue holds `capacity` spans; the rest are dropped at once.
        let closed = SpanExporter { tx: mpsc::channel(2).0, metrics: metrics.clone() };
        closed.export(&source("a"), spans(3));
        assert_eq!(counter(&metrics, "tern_trace_spans_dropped_total"), "5", "the receiver is gone: all dropped");
        let (tx, _rx) = mpsc::channel(2);
        let full = SpanExporter { tx, metrics: metrics.clone() };
        full.export(&source("a"), spans(3));
        assert_eq!(counter(&metrics, "tern_trace_spans_dropped_total"), "6", "two fit, one does not");
    }

    #[tokio::test]
    async fn an_unreachable_collector_drops_spans() {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let metrics = Metrics::new("local");
        let exporter = SpanExporter::spawn(&format!("http://127.0.0.1:{port}"), settings(), metrics.clone()).unwrap();
        // `export` is not async: it cannot wait on the collector, whatever becomes of the spans.
        exporter.export(&source("a"), spans(2));
        exporter.flush(Duration::from_secs(10)).await;
        assert_eq!(counter(&metrics, "tern_trace_spans_dropped_total"), "2");
        assert_eq!(counter(&metrics, "tern_trace_spans_exported_total"), "0");
    }
}
