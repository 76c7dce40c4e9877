//! Spans as an OTLP/JSON `ExportTraceServiceRequest` (the shape OpenTelemetry collectors and tools read): the
//! inspector's `/inspector/traces` answers with one, and the exporter ([`super::export`]) posts them to a collector.

use serde_json::{Value as JsonValue, json};

use super::Span;

fn string_attribute(key: &str, value: &str) -> JsonValue {
    json!({ "key": key, "value": { "stringValue": value } })
}

/// A request with one resource (the actor) holding `spans`.
pub fn export_request(actor_id: &str, actor_name: &str, actor_key: &str, spans: &[Span]) -> JsonValue {
    request([resource_spans(actor_id, actor_name, actor_key, spans)])
}

/// A request holding `resources`, each made by [`resource_spans`].
pub fn request(resources: impl IntoIterator<Item = JsonValue>) -> JsonValue {
    json!({ "resourceSpans": resources.into_iter().collect::<Vec<_>>() })
}

/// One `ResourceSpans`: the actor (`service.name` `tern`, `actor.id`, `actor.name`, `actor.key`) with one scope
/// (`tern`) holding `spans`.
pub fn resource_spans(actor_id: &str, actor_name: &str, actor_key: &str, spans: &[Span]) -> JsonValue {
    let spans: Vec<JsonValue> = spans
        .iter()
        .map(|span| {
            let mut out = json!({
                "traceId": span.trace_id,
                "spanId": span.span_id,
                "name": span.name,
                "kind": span.kind as i64,
                "startTimeUnixNano": span.start_ns.to_string(),
                "endTimeUnixNano": span.end_ns.to_string(),
                "attributes": span.attributes.iter().map(|(k, v)| string_attribute(k, v)).collect::<Vec<_>>(),
                "status": match &span.message {
                    Some(message) => json!({ "code": span.status as i64, "message": message }),
                    None => json!({ "code": span.status as i64 }),
                },
            });
            if let Some(parent) = &span.parent_id {
                out["parentSpanId"] = json!(parent);
            }
            out
        })
        .collect();
    json!({
        "resource": { "attributes": [
            string_attribute("service.name", "tern"),
            string_attribute("actor.id", actor_id),
            string_attribute("actor.name", actor_name),
            string_attribute("actor.key", actor_key),
        ]},
        "scopeSpans": [{
            "scope": { "name": "tern", "version": env!("CARGO_PKG_VERSION") },
            "spans": spans,
        }],
    })
}
