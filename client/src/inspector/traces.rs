//! `GET traces`: an actor's spans as OTLP/JSON (`ExportTraceServiceRequest`), and a flat view of them.
//!
//! OTLP/JSON writes 64-bit integers (timestamps, `intValue`) as strings and enums as numbers (or, from some
//! exporters, as their names); both forms are read.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value as Json};

/// The answer of `GET traces`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Traces {
    /// The spans as an OTLP/JSON `ExportTraceServiceRequest` (`resourceSpans[].scopeSpans[].spans[]`).
    #[serde(default)]
    pub otlp: Json,
    /// Whether the server returned fewer spans than matched (the limit, or its own cap, was hit).
    #[serde(default)]
    pub clamped: bool,
}

/// How a span ended (OTLP `Status`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SpanStatus {
    /// No status was set (code 0).
    Unset,
    /// Marked successful (code 1).
    Ok,
    /// Failed (code 2), with the status message.
    Error(String),
}

impl std::fmt::Display for SpanStatus {
    /// `unset`, `ok`, or `error` followed by the message when there is one.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SpanStatus::Unset => f.write_str("unset"),
            SpanStatus::Ok => f.write_str("ok"),
            SpanStatus::Error(message) if message.is_empty() => f.write_str("error"),
            SpanStatus::Error(message) => write!(f, "error: {message}"),
        }
    }
}

/// One span, taken out of the OTLP nesting.
#[derive(Debug, Clone, PartialEq)]
pub struct TraceSpan {
    /// Trace id (hex).
    pub trace_id: String,
    /// Span id (hex).
    pub span_id: String,
    /// Parent span id; `None` for a root span.
    pub parent_span_id: Option<String>,
    /// What the span measured (an action's name, a hook, ...).
    pub name: String,
    /// OTLP span kind (0 unspecified, 1 internal, 2 server, 3 client, 4 producer, 5 consumer).
    pub kind: i64,
    /// Start, in nanoseconds since the Unix epoch.
    pub start_unix_nano: u64,
    /// End, in nanoseconds since the Unix epoch.
    pub end_unix_nano: u64,
    /// How it ended.
    pub status: SpanStatus,
    /// Its attributes, as plain JSON values, in the order sent.
    pub attributes: Vec<(String, Json)>,
}

impl TraceSpan {
    /// How long the span lasted, in nanoseconds.
    pub fn duration_nanos(&self) -> u64 {
        self.end_unix_nano.saturating_sub(self.start_unix_nano)
    }

    /// The attribute `key`, if the span has it.
    pub fn attribute(&self, key: &str) -> Option<&Json> {
        self.attributes.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }
}

impl Traces {
    /// Every span of every resource and scope, sorted by start time. Spans that are not objects are skipped;
    /// missing fields take empty or zero values.
    pub fn spans(&self) -> Vec<TraceSpan> {
        let mut spans: Vec<TraceSpan> = items(&self.otlp, "resourceSpans")
            .flat_map(|resource| items(resource, "scopeSpans"))
            .flat_map(|scope| items(scope, "spans"))
            .filter_map(Json::as_object)
            .map(span)
            .collect();
        spans.sort_by_key(|s| (s.start_unix_nano, s.end_unix_nano));
        spans
    }
}

/// The elements of the array `field` of `value` (none when it is missing or not an array).
fn items<'a>(value: &'a Json, field: &str) -> impl Iterator<Item = &'a Json> {
    value.get(field).and_then(Json::as_array).into_iter().flatten()
}

fn span(span: &Map<String, Json>) -> TraceSpan {
    let text = |field: &str| span.get(field).and_then(Json::as_str).unwrap_or_default().to_string();
    let status = span.get("status");
    let message = status.and_then(|s| s.get("message")).and_then(Json::as_str).unwrap_or_default();
    let status = match status.and_then(|s| s.get("code")) {
        Some(code) if code == 1 || code == "STATUS_CODE_OK" => SpanStatus::Ok,
        Some(code) if code == 2 || code == "STATUS_CODE_ERROR" => SpanStatus::Error(message.to_string()),
        _ => SpanStatus::Unset,
    };
    let attributes = span
        .get("attributes")
        .and_then(Json::as_array)
        .into_iter()
        .flatten()
        .filter_map(|a| Some((a.get("key")?.as_str()?.to_string(), a.get("value").map(any_value).unwrap_or_default())))
        .collect();
    TraceSpan {
        trace_id: text("traceId"),
        span_id: text("spanId"),
        parent_span_id: Some(text("parentSpanId")).filter(|p| !p.is_empty()),
        name: text("name"),
        kind: span.get("kind").map(enum_number).unwrap_or_default(),
        start_unix_nano: span.get("startTimeUnixNano").and_then(integer).unwrap_or_default(),
        end_unix_nano: span.get("endTimeUnixNano").and_then(integer).unwrap_or_default(),
        status,
        attributes,
    }
}

/// A 64-bit integer written as a JSON number or a decimal string.
fn integer(value: &Json) -> Option<u64> {
    match value {
        Json::Number(n) => n.as_u64(),
        Json::String(s) => s.parse().ok(),
        _ => None,
    }
}

/// An OTLP enum: a number, or a name such as `SPAN_KIND_SERVER` (mapped by its position in the spec).
fn enum_number(value: &Json) -> i64 {
    const KINDS: [&str; 6] = ["UNSPECIFIED", "INTERNAL", "SERVER", "CLIENT", "PRODUCER", "CONSUMER"];
    match value {
        Json::Number(n) => n.as_i64().unwrap_or_default(),
        Json::String(s) => KINDS.iter().position(|k| s.ends_with(k)).unwrap_or_default() as i64,
        _ => 0,
    }
}

/// An OTLP `AnyValue` as plain JSON.
fn any_value(value: &Json) -> Json {
    let Some((kind, inner)) = value.as_object().and_then(|o| o.iter().next()) else {
        return Json::Null;
    };
    match kind.as_str() {
        "intValue" => integer(inner).map(Json::from).or_else(|| inner.as_str()?.parse::<i64>().ok().map(Json::from)),
        "arrayValue" => Some(Json::Array(items(inner, "values").map(any_value).collect())),
        "kvlistValue" => Some(Json::Object(
            items(inner, "values")
                .filter_map(|kv| Some((kv.get("key")?.as_str()?.to_string(), kv.get("value").map(any_value)?)))
                .collect(),
        )),
        _ => Some(inner.clone()),
    }
    .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn spans_come_out_flat_and_sorted() {
        let traces: Traces = serde_json::from_value(json!({"clamped": true, "otlp": {"resourceSpans": [{
            "resource": {"attributes": []},
            "scopeSpans": [{"scope": {"name": "tern"}, "spans": [
                {"traceId": "t1", "spanId": "s2", "parentSpanId": "s1", "name": "sql", "kind": 1,
                 "startTimeUnixNano": "2000", "endTimeUnixNano": "2500",
                 "attributes": [{"key": "rows", "value": {"intValue": "3"}},
                                {"key": "tags", "value": {"arrayValue": {"values": [{"stringValue": "a"}]}}}],
                 "status": {"code": 2, "message": "boom"}},
                {"traceId": "t1", "spanId": "s1", "parentSpanId": "", "name": "increment",
                 "kind": "SPAN_KIND_SERVER", "startTimeUnixNano": 1000, "endTimeUnixNano": "4000",
                 "status": {"code": "STATUS_CODE_OK"}},
                "not a span"
            ]}]
        }]}}))
        .unwrap();
        assert!(traces.clamped);
        let spans = traces.spans();
        assert_eq!(spans.len(), 2);
        assert_eq!((spans[0].name.as_str(), spans[0].parent_span_id.as_deref(), spans[0].kind), ("increment", None, 2));
        assert_eq!((spans[0].duration_nanos(), &spans[0].status), (3000, &SpanStatus::Ok));
        assert_eq!(spans[1].parent_span_id.as_deref(), Some("s1"));
        assert_eq!(spans[1].status.to_string(), "error: boom");
        assert_eq!(spans[1].attribute("rows"), Some(&json!(3)));
        assert_eq!(spans[1].attribute("tags"), Some(&json!(["a"])));
    }

    #[test]
    fn odd_shapes_give_no_spans() {
        for otlp in [json!([]), json!(null), json!({"resourceSpans": {}})] {
            assert!(Traces { otlp, clamped: false }.spans().is_empty());
        }
        assert_eq!(SpanStatus::Error(String::new()).to_string(), "error");
    }
}
