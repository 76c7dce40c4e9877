//! Spans: what each actor did (actions, connections, SQL statements), recorded during a turn and stored in the
//! actor's own database with the turn's commit (bounded to the most recent [`MAX_SPANS`]), so a crash loses
//! none that describe committed work. The inspector returns them as OTLP/JSON ([`otlp`]); with `--otlp-endpoint`
//! the spans of committed turns are also sent to an OpenTelemetry collector ([`export`]).
//!
//! [`MAX_SPANS`]: crate::storage::actor_db::MAX_SPANS

pub mod export;
pub mod otlp;

use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::sync::lock;

/// OTLP span kinds Tern records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpanKind {
    /// Work inside the actor (SQL statements, hooks).
    Internal = 1,
    /// A request from a client (actions, connections).
    Server = 2,
}

/// OTLP status codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpanStatus {
    Ok = 1,
    Error = 2,
}

/// One finished span.
#[derive(Debug, Clone, PartialEq)]
pub struct Span {
    /// 32 hex digits.
    pub trace_id: String,
    /// 16 hex digits.
    pub span_id: String,
    pub parent_id: Option<String>,
    pub name: String,
    pub kind: SpanKind,
    pub start_ns: i64,
    pub end_ns: i64,
    pub status: SpanStatus,
    /// The error (`group.code: message`) for failed spans.
    pub message: Option<String>,
    pub attributes: Vec<(String, String)>,
}

impl Span {
    /// The attributes as a JSON object (their stored form).
    pub fn attributes_json(&self) -> String {
        let map: serde_json::Map<String, serde_json::Value> =
            self.attributes.iter().map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone()))).collect();
        serde_json::Value::Object(map).to_string()
    }

    /// A span as stored by [`crate::storage::ActorDb::write_spans`] (columns in that order).
    pub fn from_row(row: &libsql::Row) -> Result<Span, libsql::Error> {
        let attributes: serde_json::Map<String, serde_json::Value> =
            serde_json::from_str(&row.get::<String>(9)?).unwrap_or_default();
        Ok(Span {
            trace_id: row.get(0)?,
            span_id: row.get(1)?,
            parent_id: row.get(2)?,
            name: row.get(3)?,
            kind: if row.get::<i64>(4)? == SpanKind::Server as i64 { SpanKind::Server } else { SpanKind::Internal },
            start_ns: row.get(5)?,
            end_ns: row.get(6)?,
            status: if row.get::<i64>(7)? == SpanStatus::Error as i64 { SpanStatus::Error } else { SpanStatus::Ok },
            message: row.get(8)?,
            attributes: attributes.into_iter().map(|(k, v)| (k, v.as_str().unwrap_or_default().to_string())).collect(),
        })
    }
}

/// A span that has started and not yet finished.
#[derive(Debug)]
pub struct OpenSpan {
    span: Span,
}

impl OpenSpan {
    /// The span's trace and span ids, for children.
    fn context(&self) -> (String, String) {
        (self.span.trace_id.clone(), self.span.span_id.clone())
    }
}

/// Nanoseconds since the Unix epoch.
pub fn now_ns() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos() as i64).unwrap_or(0)
}

fn hex_id<const N: usize>() -> String {
    rand::random::<[u8; N]>().iter().map(|b| format!("{b:02x}")).collect()
}

/// Collects one actor's spans during a turn. A span started while another is current (an SQL statement inside
/// an action) becomes its child.
#[derive(Debug, Default)]
pub struct Recorder {
    finished: Mutex<Vec<Span>>,
    /// The (trace id, span id) of the span in progress that new spans descend from.
    current: Mutex<Option<(String, String)>>,
}

impl Recorder {
    /// Starts a span; `enter` makes it the parent of spans started before it finishes.
    pub fn start(&self, name: &str, kind: SpanKind, attributes: Vec<(String, String)>, enter: bool) -> OpenSpan {
        let parent = lock(&self.current).clone();
        let (trace_id, parent_id) = match parent {
            Some((trace, span)) => (trace, Some(span)),
            None => (hex_id::<16>(), None),
        };
        let span = Span {
            trace_id,
            span_id: hex_id::<8>(),
            parent_id,
            name: name.to_string(),
            kind,
            start_ns: now_ns(),
            end_ns: 0,
            status: SpanStatus::Ok,
            message: None,
            attributes,
        };
        let open = OpenSpan { span };
        if enter {
            *lock(&self.current) = Some(open.context());
        }
        open
    }

    /// Finishes a span, with the error that ended it if any.
    pub fn finish(&self, open: OpenSpan, error: Option<String>) {
        let mut span = open.span;
        span.end_ns = now_ns();
        if let Some(message) = error {
            span.status = SpanStatus::Error;
            span.message = Some(message);
        }
        let mut current = lock(&self.current);
        if current.as_ref().is_some_and(|(_, id)| *id == span.span_id) {
            *current = span.parent_id.clone().map(|parent| (span.trace_id.clone(), parent));
        }
        drop(current);
        lock(&self.finished).push(span);
    }

    /// Takes the spans finished so far (to store them with the turn).
    pub fn take(&self) -> Vec<Span> {
        std::mem::take(&mut *lock(&self.finished))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_started_inside_an_entered_span_are_its_children() {
        let recorder = Recorder::default();
        let action = recorder.start("action increment", SpanKind::Server, vec![], true);
        let sql = recorder.start("sql", SpanKind::Internal, vec![("db.statement".into(), "SELECT 1".into())], false);
        recorder.finish(sql, None);
        recorder.finish(action, Some("user.nope: no".into()));
        let after = recorder.start("action other", SpanKind::Server, vec![], false);
        recorder.finish(after, None);
        let spans = recorder.take();
        assert_eq!(spans.len(), 3);
        let (sql, action, after) = (&spans[0], &spans[1], &spans[2]);
        assert_eq!(sql.parent_id.as_deref(), Some(action.span_id.as_str()));
        assert_eq!(sql.trace_id, action.trace_id);
        assert_eq!((action.status, action.message.as_deref()), (SpanStatus::Error, Some("user.nope: no")));
        assert_eq!(after.parent_id, None, "the finished action is no longer current");
        assert_ne!(after.trace_id, action.trace_id);
        assert_eq!((action.trace_id.len(), action.span_id.len()), (32, 16));
        assert!(recorder.take().is_empty());
    }
}
