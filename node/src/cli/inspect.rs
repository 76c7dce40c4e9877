//! `tern state`, `tern inspect` and `tern traces`: looking inside one actor through its inspector.

use std::collections::HashMap;
use std::time::{SystemTime, UNIX_EPOCH};

use clap::Args;
use serde_json::json;
use tern_client::TraceSpan;

use super::actors::{describe, parse_json};
use super::context::{CliResult, ClientArgs, Ctx, emit, emit_json, pretty_json, to_json};
use super::output::{Table, format_duration, format_nanos, key_values};
use super::target::ActorRef;

/// Spans listed by `tern traces` when `--limit` is not given.
const DEFAULT_TRACE_LIMIT: u32 = 100;

/// `tern state`.
#[derive(Debug, Args)]
pub(crate) struct StateArgs {
    /// An actor id, or NAME/KEY (e.g. `counter/k1`).
    pub actor: ActorRef,
    /// Replace the state with this JSON value (JSON-compat form), then print it.
    #[arg(long, value_name = "JSON", value_parser = parse_json)]
    pub set: Option<serde_json::Value>,
    #[command(flatten)]
    pub client: ClientArgs,
}

/// `tern inspect`.
#[derive(Debug, Args)]
pub(crate) struct InspectArgs {
    /// An actor id, or NAME/KEY (e.g. `counter/k1`).
    pub actor: ActorRef,
    #[command(flatten)]
    pub client: ClientArgs,
}

/// `tern traces`.
#[derive(Debug, Args)]
pub(crate) struct TracesArgs {
    /// An actor id, or NAME/KEY (e.g. `counter/k1`).
    pub actor: ActorRef,
    /// At most this many spans (the server caps it at 1000).
    #[arg(long, default_value_t = DEFAULT_TRACE_LIMIT)]
    pub limit: u32,
    /// Only spans from this time on, in milliseconds since the Unix epoch (default: the beginning).
    #[arg(long, value_name = "MS")]
    pub start_ms: Option<u64>,
    /// Only spans up to this time, in milliseconds since the Unix epoch (default: now).
    #[arg(long, value_name = "MS")]
    pub end_ms: Option<u64>,
    #[command(flatten)]
    pub client: ClientArgs,
}

/// Prints the state (after replacing it with `--set`): indented JSON, or `{"state","isStateEnabled"}` with
/// `--json`.
pub(crate) async fn state(ctx: &Ctx, args: StateArgs) -> CliResult {
    let inspector = ctx.client.inspector(&ctx.actor_id(&args.actor).await?);
    if let Some(state) = &args.set {
        inspector.set_state(state).await?;
    }
    let info = inspector.state().await?;
    if ctx.json {
        return emit(&to_json(&info).to_string());
    }
    if !info.is_state_enabled {
        eprintln!("(this actor keeps no state)");
    }
    emit(&pretty_json(&info.state))
}

/// Prints the actor's record and inspector summary.
pub(crate) async fn inspect(ctx: &Ctx, args: InspectArgs) -> CliResult {
    let actor = ctx.actor(&args.actor).await?;
    let summary = ctx.client.inspector(&actor.actor_id).summary().await?;
    if ctx.json {
        return emit_json(ctx, &json!({"actor": to_json(&actor), "summary": to_json(&summary)}));
    }
    let mut lines: Vec<(&str, String)> = describe(&actor).into_iter().take(5).collect();
    let state = if summary.is_state_enabled { pretty_json(&summary.state) } else { "(none)".to_string() };
    let rpcs = if summary.rpcs.is_empty() { "(none)".to_string() } else { summary.rpcs.join(", ") };
    let yes_no = |b: bool| if b { "yes" } else { "no" }.to_string();
    lines.extend([
        ("state", state),
        ("connections", summary.connections.len().to_string()),
        ("actions", rpcs),
        ("database", yes_no(summary.is_database_enabled)),
        ("queue size", summary.queue_size.to_string()),
        ("workflow", yes_no(summary.is_workflow_enabled)),
    ]);
    emit(&key_values(&lines))
}

/// Prints the actor's spans: a table of time, duration, name (indented under its parent) and status; the
/// server's OTLP answer with `--json`.
pub(crate) async fn traces(ctx: &Ctx, args: TracesArgs) -> CliResult {
    let inspector = ctx.client.inspector(&ctx.actor_id(&args.actor).await?);
    let now_ms = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(u64::MAX);
    let traces = inspector.traces(args.start_ms.unwrap_or(0), args.end_ms.unwrap_or(now_ms), args.limit).await?;
    if ctx.json {
        return emit(&to_json(&traces).to_string());
    }
    if traces.clamped {
        eprintln!("(more spans matched than shown; raise --limit or narrow --start-ms/--end-ms)");
    }
    emit(&spans_table(&traces.spans()).render())
}

/// Spans (sorted by start) as a table; a span's name is indented two spaces per ancestor found in the list.
pub(crate) fn spans_table(spans: &[TraceSpan]) -> Table {
    let parents: HashMap<&str, Option<&str>> =
        spans.iter().map(|s| (s.span_id.as_str(), s.parent_span_id.as_deref())).collect();
    let depth = |span: &TraceSpan| {
        let mut depth = 0;
        let mut parent = span.parent_span_id.as_deref();
        while let Some(id) = parent {
            match parents.get(id) {
                Some(next) if depth < spans.len() => {
                    depth += 1;
                    parent = *next;
                }
                _ => break,
            }
        }
        depth
    };
    let mut table = Table::new(["TIME (UTC)", "DURATION", "NAME", "STATUS"]);
    table.align_right(1);
    for span in spans {
        table.push(vec![
            format_nanos(span.start_unix_nano),
            format_duration(span.duration_nanos()),
            format!("{}{}", "  ".repeat(depth(span)), span.name),
            span.status.to_string(),
        ]);
    }
    table
}

#[cfg(test)]
mod tests {
    use super::*;
    use tern_client::SpanStatus;

    fn span(id: &str, parent: Option<&str>, name: &str, start: u64, end: u64, status: SpanStatus) -> TraceSpan {
        TraceSpan {
            trace_id: "t".into(),
            span_id: id.into(),
            parent_span_id: parent.map(str::to_string),
            name: name.into(),
            kind: 1,
            start_unix_nano: start,
            end_unix_nano: end,
            status,
            attributes: Vec::new(),
        }
    }

    #[test]
    fn spans_render_as_an_indented_table() {
        let base = 1_795_812_622_000_000_000;
        let spans = [
            span("a", None, "increment", base, base + 2_500_000, SpanStatus::Ok),
            span("b", Some("a"), "sql", base + 1_000, base + 13_500, SpanStatus::Unset),
            span(
                "c",
                Some("gone"),
                "orphan",
                base + 2_000_000_000,
                base + 3_500_000_000,
                SpanStatus::Error("boom".into()),
            ),
        ];
        assert_eq!(
            spans_table(&spans).render(),
            "TIME (UTC)               DURATION  NAME       STATUS\n\
             2026-11-27 20:50:22.000    2.50ms  increment  ok\n\
             2026-11-27 20:50:22.000    12.5µs    sql      unset\n\
             2026-11-27 20:50:24.000     1.50s  orphan     error: boom"
        );
    }

    #[test]
    fn cyclic_parents_do_not_loop() {
        let spans =
            [span("a", Some("b"), "x", 0, 1, SpanStatus::Unset), span("b", Some("a"), "y", 0, 1, SpanStatus::Unset)];
        assert_eq!(spans_table(&spans).render().lines().count(), 3);
    }
}
