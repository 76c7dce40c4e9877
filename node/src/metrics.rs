//! The node's Prometheus metrics, all named `tern_*`.
//!
//! [`Metrics`] owns every metric the node exports. The runtime and the gateway record events through its `record_*`
//! methods, which only touch atomics and briefly held in-memory locks (no I/O, no `.await`), so any number of tokio
//! tasks may call them. Numbers that are cheaper to read than to track (how many actors are awake, how large their
//! databases are) are not recorded at all: the caller fills a [`Snapshot`] at scrape time and passes it to
//! [`Metrics::render`], whose output is served with the [`CONTENT_TYPE`] header.
//!
//! The encoder escapes label values, but nothing here bounds how many there are: `actor` must be an actor *name*
//! (`counter`, `room`), never an actor id or key; `action` a declared action; `code` an error's `group.code`; and
//! `route` one of a small fixed set of route names, never a raw path.
//!
//! ```
//! use std::time::Duration;
//! use tern_node::metrics::{Metrics, Snapshot};
//!
//! let metrics = Metrics::new("local");
//! metrics.record_action("counter", "increment", Duration::from_millis(2), Ok(()));
//! metrics.record_action("room", "join", Duration::from_millis(1), Err("room.name_required"));
//! let body = metrics.render(&Snapshot { open_databases: 1, ..Snapshot::default() });
//! assert!(body.contains("\ntern_open_databases 1\n"));
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use prometheus_client::encoding::{EncodeLabelSet, prometheus_text};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets_range};
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::{Registry, Unit};

/// The `Content-Type` of [`Metrics::render`]'s output: the Prometheus text exposition format, version 0.0.4
/// (`text/plain; version=0.0.4; charset=utf-8`).
pub const CONTENT_TYPE: &str = prometheus_text::CONTENT_TYPE;

/// The prefix of every metric name, without its separating underscore.
pub const PREFIX: &str = "tern";

/// The smallest and largest finite bucket bounds of every duration histogram, in seconds, and how many finite buckets
/// lie between them, spaced exponentially (each about 2.54 times the previous one).
const BUCKET_MIN: f64 = 50e-6;
const BUCKET_MAX: f64 = 60.0;
const BUCKET_COUNT: u16 = 16;

type U64Gauge = Gauge<u64, AtomicU64>;

/// What the node looks like at scrape time, filled by the caller and passed to [`Metrics::render`].
///
/// Maps are keyed by actor name. Every name found in `awake` or `asleep` is exported with both statuses (a missing
/// count is 0), so a series does not vanish when its last actor falls asleep; a name absent from both is not exported.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Snapshot {
    /// Actors loaded in memory, per actor name.
    pub awake: BTreeMap<String, u64>,
    /// Actors that exist but are not in memory, per actor name.
    pub asleep: BTreeMap<String, u64>,
    /// Open client connections, per actor name.
    pub connections: BTreeMap<String, u64>,
    /// Actor databases currently open.
    pub open_databases: u64,
    /// Total size of all actor databases, in bytes.
    pub storage_bytes: u64,
    /// Memory SQLite holds (page caches, schemas, prepared statements) across the node's databases, in bytes.
    pub sqlite_memory_bytes: u64,
    /// The allocator's live and freed-but-kept bytes, where it reports them.
    pub heap: Option<crate::heap::HeapUsage>,
}

/// The node's metrics. Cloning is cheap and every clone records into the same metrics.
///
/// Every method takes `&self`, is `Send + Sync`, and never waits on anything but short in-memory locks.
#[derive(Clone, Debug)]
pub struct Metrics {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    /// Everything recorded through `record_*`, plus `tern_node_info`; the snapshot gauges live in a registry built
    /// for each render, so concurrent renders cannot see each other's snapshots.
    registry: Registry,
    actions: Family<ActionLabels, Counter>,
    action_errors: Family<ErrorLabels, Counter>,
    wakes: Family<ActorLabels, Counter>,
    sleeps: Family<ActorLabels, Counter>,
    created: Family<ActorLabels, Counter>,
    destroyed: Family<ActorLabels, Counter>,
    connections_opened: Family<ActorLabels, Counter>,
    queue_sent: Family<ActorLabels, Counter>,
    queue_consumed: Family<ActorLabels, Counter>,
    http_requests: Family<HttpLabels, Counter>,
    forwarded_calls: Family<OutcomeLabels, Counter>,
    forward_duration: Histogram,
    directory_operations: Family<DirectoryLabels, Counter>,
    quic_connections: U64Gauge,
    action_duration: Family<ActorLabels, Histogram>,
    wake_duration: Family<ActorLabels, Histogram>,
    commit_duration: Histogram,
    replication_lag: Histogram,
    migration_pause: Histogram,
    lease_renewals: Family<OutcomeLabels, Counter>,
    spans_exported: Counter,
    wal_frames_shipped: Counter,
    wal_bytes_shipped: Counter,
    wal_snapshots: Counter,
    wal_snapshot_bytes: Counter,
    wal_checkpoints: Counter,
    failovers: Counter,
    traffic_moves: Counter,
    discarded_transactions: Counter,
    spans_dropped: Counter,
    storage_full: Counter,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HeapLabels {
    state: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ActorLabels {
    actor: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ActionLabels {
    actor: String,
    action: String,
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ErrorLabels {
    actor: String,
    code: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HttpLabels {
    route: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DirectoryLabels {
    operation: &'static str,
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ActorStatusLabels {
    actor: String,
    status: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct NodeLabels {
    region: String,
    version: &'static str,
}

fn actor(actor: &str) -> ActorLabels {
    ActorLabels { actor: actor.to_owned() }
}

/// The buckets of every duration histogram, rounded to three significant digits so `le` labels stay readable.
fn duration_histogram() -> Histogram {
    Histogram::new(
        exponential_buckets_range(BUCKET_MIN, BUCKET_MAX, BUCKET_COUNT)
            .map(|bound| format!("{bound:.2e}").parse().unwrap_or(bound)),
    )
}

impl Metrics {
    /// Creates the node's metrics, every name prefixed with `tern_`; `region` is exported as a label of
    /// `tern_node_info`, next to this crate's version.
    pub fn new(region: &str) -> Self {
        let mut registry = Registry::with_prefix(PREFIX);
        let inner = Inner {
            actions: Family::default(),
            action_errors: Family::default(),
            wakes: Family::default(),
            sleeps: Family::default(),
            created: Family::default(),
            destroyed: Family::default(),
            connections_opened: Family::default(),
            queue_sent: Family::default(),
            queue_consumed: Family::default(),
            http_requests: Family::default(),
            forwarded_calls: Family::default(),
            forward_duration: duration_histogram(),
            directory_operations: Family::default(),
            quic_connections: U64Gauge::default(),
            action_duration: Family::new_with_constructor(duration_histogram),
            wake_duration: Family::new_with_constructor(duration_histogram),
            commit_duration: duration_histogram(),
            replication_lag: duration_histogram(),
            migration_pause: duration_histogram(),
            lease_renewals: Family::default(),
            spans_exported: Counter::default(),
            wal_frames_shipped: Counter::default(),
            wal_bytes_shipped: Counter::default(),
            wal_snapshots: Counter::default(),
            wal_snapshot_bytes: Counter::default(),
            wal_checkpoints: Counter::default(),
            failovers: Counter::default(),
            traffic_moves: Counter::default(),
            discarded_transactions: Counter::default(),
            spans_dropped: Counter::default(),
            storage_full: Counter::default(),
            registry: Registry::default(),
        };
        // Metrics are shared handles: the registry encodes the very metrics that `inner` records into.
        let r = &mut registry;
        r.register("actions", "Actions run, by actor name, action and outcome (ok or error)", inner.actions.clone());
        r.register(
            "action_errors",
            "Failed actions, by actor name and error code (group.code)",
            inner.action_errors.clone(),
        );
        r.register("actor_wakes", "Actors woken (loaded into memory), by actor name", inner.wakes.clone());
        r.register("actor_sleeps", "Actors put to sleep (unloaded from memory), by actor name", inner.sleeps.clone());
        r.register("actors_created", "Actors created, by actor name", inner.created.clone());
        r.register("actors_destroyed", "Actors destroyed, by actor name", inner.destroyed.clone());
        r.register("connections_opened", "Client connections opened, by actor name", inner.connections_opened.clone());
        r.register("queue_messages_sent", "Queue messages accepted, by actor name", inner.queue_sent.clone());
        let help = "Queue messages consumed (received or processed), by actor name; sent minus consumed is the depth";
        r.register("queue_messages_consumed", help, inner.queue_consumed.clone());
        r.register(
            "http_requests",
            "HTTP requests answered, by route name and status code",
            inner.http_requests.clone(),
        );
        let help = "Calls forwarded to another node (one QUIC hop), by outcome: ok, failed (the call's own error), \
                    wrong_home (the node did not host the actor), unreachable (the call never left), unanswered (it \
                    left and no answer came)";
        r.register("forwarded_calls", help, inner.forwarded_calls.clone());
        let help = "Time of a call forwarded to another node, round trip included";
        r.register_with_unit("forwarded_call_duration", help, Unit::Seconds, inner.forward_duration.clone());
        let help = "Directory operations (CASPaxos reads and writes on the voters), by operation (read, write) and \
                    outcome (ok, conflict: a concurrent write won, refused, no_quorum)";
        r.register("directory_operations", help, inner.directory_operations.clone());
        let help = "QUIC connections to other nodes open now (dialled and accepted)";
        r.register("quic_connections", help, inner.quic_connections.clone());
        let help = "Time to run an action, failed or not, by actor name";
        r.register_with_unit("action_duration", help, Unit::Seconds, inner.action_duration.clone());
        let help = "Time to wake an actor, by actor name";
        r.register_with_unit("actor_wake_duration", help, Unit::Seconds, inner.wake_duration.clone());
        let help = "Time to commit a turn's changes to storage";
        r.register_with_unit("turn_commit_duration", help, Unit::Seconds, inner.commit_duration.clone());
        let help = "Time from a home's commit to a replica's acknowledgement of it";
        r.register_with_unit("replication_lag", help, Unit::Seconds, inner.replication_lag.clone());
        let help = "Renewals of this node's liveness lease, by outcome (ok, fenced, failed)";
        r.register("lease_renewals", help, inner.lease_renewals.clone());
        let help = "Spans accepted by the OTLP collector (--otlp-endpoint)";
        r.register("trace_spans_exported", help, inner.spans_exported.clone());
        r.register("traffic_moves", "Actors moved to the region their calls came from", inner.traffic_moves.clone());
        let help =
            "How long a moving actor served no request: from its pause on the old home to its new home taking it";
        r.register_with_unit("migration_pause", help, Unit::Seconds, inner.migration_pause.clone());
        r.register("wal_frames_shipped", "WAL frames a home shipped to its replicas", inner.wal_frames_shipped.clone());
        r.register(
            "wal_bytes_shipped",
            "Bytes of WAL frames a home shipped to its replicas",
            inner.wal_bytes_shipped.clone(),
        );
        r.register("wal_snapshots", "Snapshots a home sent to bootstrap replicas", inner.wal_snapshots.clone());
        r.register("wal_snapshot_bytes", "Bytes of snapshots a home sent", inner.wal_snapshot_bytes.clone());
        r.register(
            "wal_checkpoints",
            "Generations a home ended by checkpointing a replicated WAL",
            inner.wal_checkpoints.clone(),
        );
        let help = "Spans not exported to the OTLP collector: its queue was full, or it failed every try";
        r.register("trace_spans_dropped", help, inner.spans_dropped.clone());
        let help = "Operations refused because the disk was full (storage.full): turns, wakes and node database writes";
        r.register("storage_full", help, inner.storage_full.clone());
        let node = NodeLabels { region: region.to_owned(), version: env!("CARGO_PKG_VERSION") };
        r.register("node", "The node's region and version, always 1", Info::new(node));
        Self { inner: Arc::new(Inner { registry, ..inner }) }
    }

    /// Records one action run by an actor named `actor`: `result` is `Ok(())` or `Err(code)` with the error's
    /// `group.code` (`"room.name_required"`). Counts `tern_actions_total`, observes `tern_action_duration_seconds`,
    /// and on error counts `tern_action_errors_total`.
    pub fn record_action(&self, actor_name: &str, action: &str, duration: Duration, result: Result<(), &str>) {
        let outcome = if result.is_ok() { "ok" } else { "error" };
        let labels = ActionLabels { actor: actor_name.to_owned(), action: action.to_owned(), outcome };
        self.inner.actions.get_or_create(&labels).inc();
        self.inner.action_duration.get_or_create(&actor(actor_name)).observe(duration.as_secs_f64());
        if let Err(code) = result {
            let labels = ErrorLabels { actor: labels.actor, code: code.to_owned() };
            self.inner.action_errors.get_or_create(&labels).inc();
        }
    }

    /// Records an actor woken in `duration` (`tern_actor_wakes_total`, `tern_actor_wake_duration_seconds`).
    pub fn record_wake(&self, actor_name: &str, duration: Duration) {
        let labels = actor(actor_name);
        self.inner.wakes.get_or_create(&labels).inc();
        self.inner.wake_duration.get_or_create(&labels).observe(duration.as_secs_f64());
    }

    /// Records an actor put to sleep (`tern_actor_sleeps_total`).
    pub fn record_sleep(&self, actor_name: &str) {
        self.inner.sleeps.get_or_create(&actor(actor_name)).inc();
    }

    /// Records an actor created (`tern_actors_created_total`).
    pub fn record_created(&self, actor_name: &str) {
        self.inner.created.get_or_create(&actor(actor_name)).inc();
    }

    /// Records an actor destroyed (`tern_actors_destroyed_total`).
    pub fn record_destroyed(&self, actor_name: &str) {
        self.inner.destroyed.get_or_create(&actor(actor_name)).inc();
    }

    /// Records a client connection opened to an actor (`tern_connections_opened_total`).
    pub fn record_connection_opened(&self, actor_name: &str) {
        self.inner.connections_opened.get_or_create(&actor(actor_name)).inc();
    }

    /// Records a queue message accepted by an actor (`tern_queue_messages_sent_total`).
    pub fn record_queue_sent(&self, actor_name: &str) {
        self.inner.queue_sent.get_or_create(&actor(actor_name)).inc();
    }

    /// Records queue messages consumed by an actor (`tern_queue_messages_consumed_total`).
    pub fn record_queue_consumed(&self, actor_name: &str, count: u64) {
        self.inner.queue_consumed.get_or_create(&actor(actor_name)).inc_by(count);
    }

    /// Records how long after its commit a transaction reached a replica (`tern_replication_lag_seconds`).
    pub fn record_replication_lag(&self, lag: Duration) {
        self.inner.replication_lag.observe(lag.as_secs_f64());
    }

    /// Records a renewal of the node's lease and its `outcome` (`tern_lease_renewals_total`).
    pub fn record_lease_renewal(&self, outcome: &'static str) {
        self.inner.lease_renewals.get_or_create(&OutcomeLabels { outcome }).inc();
    }

    /// Records a turn committed to storage in `duration` (`tern_turn_commit_duration_seconds`).
    pub fn record_commit(&self, duration: Duration) {
        self.inner.commit_duration.observe(duration.as_secs_f64());
    }

    /// Records a batch of `frames` WAL frames (`bytes` long) a replica acknowledged
    /// (`tern_wal_frames_shipped_total`, `tern_wal_bytes_shipped_total`).
    pub fn record_wal_shipped(&self, frames: usize, bytes: usize) {
        self.inner.wal_frames_shipped.inc_by(frames as u64);
        self.inner.wal_bytes_shipped.inc_by(bytes as u64);
    }

    /// Records a snapshot of `bytes` installed on a replica (`tern_wal_snapshots_total`, `tern_wal_snapshot_bytes_total`).
    pub fn record_wal_snapshot(&self, bytes: u64) {
        self.inner.wal_snapshots.inc();
        self.inner.wal_snapshot_bytes.inc_by(bytes);
    }

    /// Records an actor moved to another node and how long it was paused (`tern_migration_pause_seconds`, whose
    /// count is the number of moves).
    pub fn record_migration(&self, pause_ms: u64) {
        self.inner.migration_pause.observe(pause_ms as f64 / 1000.0);
    }

    /// Records an actor moved to where its calls came from (`tern_traffic_moves_total`).
    pub fn record_traffic_move(&self) {
        self.inner.traffic_moves.inc();
    }

    /// Records an actor taken over from a dead home (`tern_failovers_total`).
    pub fn record_failover(&self) {
        self.inner.failovers.inc();
    }

    /// Records `count` transactions discarded by a home that lost its actor to a replica
    /// (`tern_discarded_transactions_total`).
    pub fn record_discarded_transactions(&self, count: u64) {
        self.inner.discarded_transactions.inc_by(count);
    }

    /// Records a replicated WAL checkpointed into a new generation (`tern_wal_checkpoints_total`).
    pub fn record_wal_checkpoint(&self) {
        self.inner.wal_checkpoints.inc();
    }

    /// Records `count` spans accepted by the OTLP collector (`tern_trace_spans_exported_total`).
    pub fn record_spans_exported(&self, count: u64) {
        self.inner.spans_exported.inc_by(count);
    }

    /// Records `count` spans given up on by the OTLP exporter (`tern_trace_spans_dropped_total`).
    pub fn record_spans_dropped(&self, count: u64) {
        self.inner.spans_dropped.inc_by(count);
    }

    /// Records an operation refused because the disk was full (`tern_storage_full_total`).
    pub fn record_storage_full(&self) {
        self.inner.storage_full.inc();
    }

    /// Records an HTTP request answered with `status` (`tern_http_requests_total`). `route` is the route's
    /// template (`/actors/{actor_id}`), never a raw path, so request data stays out of label values.
    pub fn record_http(&self, route: &str, status: u16) {
        self.inner.http_requests.get_or_create(&HttpLabels { route: route.to_owned(), status }).inc();
    }

    /// Records a call forwarded to another node: `outcome` is `ok`, `failed`, `wrong_home`, `unreachable` or
    /// `unanswered` (`tern_forwarded_calls_total`, `tern_forwarded_call_duration_seconds`).
    pub fn record_forward(&self, outcome: &'static str, duration: Duration) {
        self.inner.forwarded_calls.get_or_create(&OutcomeLabels { outcome }).inc();
        self.inner.forward_duration.observe(duration.as_secs_f64());
    }

    /// Records a directory `operation` (`read`, `write`) and its `outcome` (`ok`, `conflict`, `refused`,
    /// `no_quorum`) (`tern_directory_operations_total`).
    pub fn record_directory(&self, operation: &'static str, outcome: &'static str) {
        self.inner.directory_operations.get_or_create(&DirectoryLabels { operation, outcome }).inc();
    }

    /// Sets how many QUIC connections to other nodes are open (`tern_quic_connections`).
    pub fn set_quic_connections(&self, count: u64) {
        self.inner.quic_connections.set(count);
    }

    /// Renders every metric, plus the gauges of `snapshot`, in the Prometheus text format ([`CONTENT_TYPE`]).
    /// Families that have recorded nothing yet are left out.
    pub fn render(&self, snapshot: &Snapshot) -> String {
        let mut out = String::with_capacity(16 * 1024);
        prometheus_text::encode(&mut out, &self.inner.registry)
            .and_then(|()| prometheus_text::encode(&mut out, &snapshot_registry(snapshot)))
            .expect("encoding classic metrics into a String cannot fail");
        out
    }
}

/// The scrape-time gauges of one snapshot, in a registry of their own that lives for one render.
fn snapshot_registry(snapshot: &Snapshot) -> Registry {
    let mut registry = Registry::with_prefix(PREFIX);

    let actors = Family::<ActorStatusLabels, U64Gauge>::default();
    let names: BTreeSet<&String> = snapshot.awake.keys().chain(snapshot.asleep.keys()).collect();
    for name in names {
        for (status, counts) in [("awake", &snapshot.awake), ("asleep", &snapshot.asleep)] {
            let labels = ActorStatusLabels { actor: name.clone(), status };
            actors.get_or_create(&labels).set(counts.get(name).copied().unwrap_or(0));
        }
    }
    registry.register("actors", "Actors, by actor name and status (awake or asleep)", actors);

    let connections = Family::<ActorLabels, U64Gauge>::default();
    for (name, count) in &snapshot.connections {
        connections.get_or_create(&actor(name)).set(*count);
    }
    registry.register("connections", "Open client connections, by actor name", connections);

    let open_databases = U64Gauge::default();
    open_databases.set(snapshot.open_databases);
    registry.register("open_databases", "Actor databases currently open", open_databases);

    let storage = U64Gauge::default();
    storage.set(snapshot.storage_bytes);
    registry.register_with_unit("storage", "Total size of all actor databases", Unit::Bytes, storage);

    let sqlite_memory = U64Gauge::default();
    sqlite_memory.set(snapshot.sqlite_memory_bytes);
    registry.register_with_unit(
        "sqlite_memory",
        "Memory SQLite holds (page caches, schemas, prepared statements) across the node's databases",
        Unit::Bytes,
        sqlite_memory,
    );

    if let Some(heap) = snapshot.heap {
        let heap_bytes = Family::<HeapLabels, U64Gauge>::default();
        heap_bytes.get_or_create(&HeapLabels { state: "in_use" }).set(heap.in_use);
        heap_bytes.get_or_create(&HeapLabels { state: "free" }).set(heap.free);
        registry.register_with_unit(
            "heap",
            "The allocator's memory: in live allocations (in_use), and freed but kept for reuse (free)",
            Unit::Bytes,
            heap_bytes,
        );
    }
    registry
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One sample line of the text format, its label values unescaped.
    #[derive(Debug, PartialEq)]
    struct Sample {
        name: String,
        labels: BTreeMap<String, String>,
        value: f64,
    }

    /// Parses `name{key="value",...} number`, undoing the format's `\\`, `\"` and `\n` escapes.
    fn parse_sample(line: &str) -> Option<Sample> {
        let name_end = line.find(['{', ' '])?;
        let name = line[..name_end].to_owned();
        let mut rest = &line[name_end..];
        let mut labels = BTreeMap::new();
        if let Some(after_brace) = rest.strip_prefix('{') {
            rest = after_brace;
            while let Some(eq) = rest.find("=\"") {
                let key = rest[..eq].to_owned();
                let mut value = String::new();
                let mut chars = rest[eq + 2..].char_indices();
                let end = loop {
                    match chars.next()? {
                        (i, '"') => break i,
                        (_, '\\') => match chars.next()?.1 {
                            'n' => value.push('\n'),
                            c @ ('\\' | '"') => value.push(c),
                            _ => return None,
                        },
                        (_, c) => value.push(c),
                    }
                };
                if labels.insert(key, value).is_some() {
                    return None;
                }
                rest = &rest[eq + 2 + end + 1..];
                match rest.strip_prefix(',') {
                    Some(after_comma) => rest = after_comma,
                    None => break,
                }
            }
            rest = rest.strip_prefix('}')?;
        }
        let value = match rest.strip_prefix(' ')? {
            "+Inf" => f64::INFINITY,
            number => number.parse().ok()?,
        };
        Some(Sample { name, labels, value })
    }

    /// Renders and parses everything, failing on any malformed line, any sample without a `# TYPE` for its family,
    /// and any series exported twice.
    fn scrape(metrics: &Metrics, snapshot: &Snapshot) -> Vec<Sample> {
        let text = metrics.render(snapshot);
        let mut types = BTreeMap::new();
        let mut samples: Vec<Sample> = Vec::new();
        for line in text.lines() {
            if let Some(declaration) = line.strip_prefix("# TYPE ") {
                let (name, kind) = declaration.split_once(' ').expect("TYPE line names a type");
                assert!(types.insert(name.to_owned(), kind.to_owned()).is_none(), "{name} declared twice");
            } else if !line.starts_with("# HELP ") {
                let sample = parse_sample(line).unwrap_or_else(|| panic!("malformed sample line {line:?}"));
                let family = ["_bucket", "_sum", "_count"]
                    .iter()
                    .find_map(|suffix| sample.name.strip_suffix(suffix))
                    .filter(|base| types.get(*base).is_some_and(|kind| kind == "histogram"))
                    .unwrap_or(&sample.name);
                assert!(types.contains_key(family), "no # TYPE before {line:?}");
                assert!(sample.name.starts_with("tern_"), "{line:?} lacks the tern_ prefix");
                let twin = samples.iter().any(|s| s.name == sample.name && s.labels == sample.labels);
                assert!(!twin, "series exported twice: {line:?}");
                samples.push(sample);
            }
        }
        samples
    }

    /// The value of the one series with exactly these labels, if it was exported.
    fn value(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let labels: BTreeMap<String, String> = labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        samples.iter().find(|s| s.name == name && s.labels == labels).map(|s| s.value)
    }

    fn count(samples: &[Sample], name: &str) -> usize {
        samples.iter().filter(|s| s.name == name).count()
    }

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn actions_count_by_outcome_and_errors_by_code() {
        let metrics = Metrics::new("eu-west");
        for _ in 0..3 {
            metrics.record_action("counter", "increment", ms(2), Ok(()));
        }
        metrics.record_action("room", "join", ms(1), Err("room.name_required"));
        metrics.record_action("room", "join", ms(3), Err("room.name_required"));
        metrics.record_action("room", "join", ms(1), Ok(()));
        metrics.record_action("room", "post", ms(1), Err("user.too_long"));
        let s = scrape(&metrics, &Snapshot::default());

        let actions = "tern_actions_total";
        assert_eq!(value(&s, actions, &[("actor", "counter"), ("action", "increment"), ("outcome", "ok")]), Some(3.0));
        assert_eq!(value(&s, actions, &[("actor", "room"), ("action", "join"), ("outcome", "error")]), Some(2.0));
        assert_eq!(value(&s, actions, &[("actor", "room"), ("action", "join"), ("outcome", "ok")]), Some(1.0));
        assert_eq!(value(&s, actions, &[("actor", "room"), ("action", "post"), ("outcome", "error")]), Some(1.0));
        assert_eq!(count(&s, actions), 4, "no series for outcomes that never happened");

        let errors = "tern_action_errors_total";
        assert_eq!(value(&s, errors, &[("actor", "room"), ("code", "room.name_required")]), Some(2.0));
        assert_eq!(value(&s, errors, &[("actor", "room"), ("code", "user.too_long")]), Some(1.0));
        assert_eq!(count(&s, errors), 2);

        let durations = "tern_action_duration_seconds";
        assert_eq!(value(&s, &format!("{durations}_count"), &[("actor", "counter")]), Some(3.0));
        assert_eq!(value(&s, &format!("{durations}_count"), &[("actor", "room")]), Some(4.0));
        let sum = value(&s, &format!("{durations}_sum"), &[("actor", "room")]).unwrap();
        assert!((sum - 0.006).abs() < 1e-9, "sum {sum}");
    }

    #[test]
    fn histogram_buckets_are_cumulative_and_span_50us_to_60s() {
        let metrics = Metrics::new("eu-west");
        let observed = [40e-6, 50e-6, 100e-6, 1e-3, 0.25, 2.0, 60.0, 100.0];
        for seconds in observed {
            metrics.record_wake("room", Duration::from_secs_f64(seconds));
        }
        let s = scrape(&metrics, &Snapshot::default());

        let mut buckets: Vec<(f64, f64)> = s
            .iter()
            .filter(|s| s.name == "tern_actor_wake_duration_seconds_bucket")
            .map(|s| {
                assert_eq!(s.labels.get("actor").map(String::as_str), Some("room"));
                let le = &s.labels["le"];
                (if le == "+Inf" { f64::INFINITY } else { le.parse().unwrap() }, s.value)
            })
            .collect();
        buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
        assert_eq!(buckets.len(), usize::from(BUCKET_COUNT) + 1, "{buckets:?}");
        assert_eq!(buckets[0].0, 50e-6);
        assert_eq!(buckets[buckets.len() - 2].0, 60.0);
        assert_eq!(buckets[buckets.len() - 1].0, f64::INFINITY);
        for pair in buckets[..buckets.len() - 1].windows(2) {
            let factor = pair[1].0 / pair[0].0;
            assert!((2.50..2.58).contains(&factor), "not exponential: {pair:?}");
        }
        for (le, cumulative) in &buckets {
            let expected = observed.iter().filter(|v| **v <= *le).count() as f64;
            assert_eq!(*cumulative, expected, "bucket le={le}");
        }
        assert_eq!(
            value(&s, "tern_actor_wake_duration_seconds_bucket", &[("actor", "room"), ("le", "5e-05")]),
            Some(2.0)
        );
        assert_eq!(value(&s, "tern_actor_wake_duration_seconds_bucket", &[("actor", "room"), ("le", "60")]), Some(7.0));
        assert_eq!(value(&s, "tern_actor_wake_duration_seconds_count", &[("actor", "room")]), Some(8.0));
        assert_eq!(value(&s, "tern_actor_wakes_total", &[("actor", "room")]), Some(8.0));

        metrics.record_commit(ms(3));
        metrics.record_commit(Duration::from_secs(90));
        let s = scrape(&metrics, &Snapshot::default());
        assert_eq!(value(&s, "tern_turn_commit_duration_seconds_count", &[]), Some(2.0));
        assert_eq!(value(&s, "tern_turn_commit_duration_seconds_bucket", &[("le", "60")]), Some(1.0));
        assert_eq!(value(&s, "tern_turn_commit_duration_seconds_bucket", &[("le", "+Inf")]), Some(2.0));
    }

    #[test]
    fn lifecycle_and_http_counters() {
        let metrics = Metrics::new("eu-west");
        metrics.record_created("counter");
        metrics.record_created("counter");
        metrics.record_destroyed("counter");
        metrics.record_sleep("room");
        metrics.record_connection_opened("room");
        metrics.record_connection_opened("room");
        metrics.record_connection_opened("room");
        metrics.record_http("gateway_action", 200);
        metrics.record_http("gateway_action", 200);
        metrics.record_http("gateway_action", 404);
        let s = scrape(&metrics, &Snapshot::default());

        assert_eq!(value(&s, "tern_actors_created_total", &[("actor", "counter")]), Some(2.0));
        assert_eq!(value(&s, "tern_actors_destroyed_total", &[("actor", "counter")]), Some(1.0));
        assert_eq!(value(&s, "tern_actor_sleeps_total", &[("actor", "room")]), Some(1.0));
        assert_eq!(value(&s, "tern_connections_opened_total", &[("actor", "room")]), Some(3.0));
        assert_eq!(value(&s, "tern_http_requests_total", &[("route", "gateway_action"), ("status", "200")]), Some(2.0));
        assert_eq!(value(&s, "tern_http_requests_total", &[("route", "gateway_action"), ("status", "404")]), Some(1.0));
        assert_eq!(count(&s, "tern_actor_wakes_total"), 0, "families with nothing recorded are left out");
        assert_eq!(value(&s, "tern_trace_spans_exported_total", &[]), Some(0.0));

        metrics.record_spans_exported(512);
        metrics.record_spans_exported(3);
        metrics.record_spans_dropped(7);
        let s = scrape(&metrics, &Snapshot::default());
        assert_eq!(value(&s, "tern_trace_spans_exported_total", &[]), Some(515.0));
        assert_eq!(value(&s, "tern_trace_spans_dropped_total", &[]), Some(7.0));
    }

    #[test]
    fn storage_full_refusals_are_counted_from_zero() {
        let metrics = Metrics::new("eu-west");
        let s = scrape(&metrics, &Snapshot::default());
        assert_eq!(value(&s, "tern_storage_full_total", &[]), Some(0.0), "exported before the first refusal");
        metrics.record_storage_full();
        metrics.record_storage_full();
        let s = scrape(&metrics, &Snapshot::default());
        assert_eq!(value(&s, "tern_storage_full_total", &[]), Some(2.0));
    }

    #[test]
    fn snapshot_gauges_and_node_info() {
        let metrics = Metrics::new("eu-west");
        let mut snapshot = Snapshot {
            awake: BTreeMap::from([("counter".to_owned(), 2), ("room".to_owned(), 1)]),
            asleep: BTreeMap::from([("counter".to_owned(), 5)]),
            connections: BTreeMap::from([("room".to_owned(), 3)]),
            open_databases: 2,
            storage_bytes: 1 << 40,
            sqlite_memory_bytes: 3 << 20,
            heap: Some(crate::heap::HeapUsage { in_use: 5 << 20, free: 1 << 20 }),
        };
        let s = scrape(&metrics, &snapshot);
        assert_eq!(value(&s, "tern_actors", &[("actor", "counter"), ("status", "awake")]), Some(2.0));
        assert_eq!(value(&s, "tern_actors", &[("actor", "counter"), ("status", "asleep")]), Some(5.0));
        assert_eq!(value(&s, "tern_actors", &[("actor", "room"), ("status", "awake")]), Some(1.0));
        assert_eq!(value(&s, "tern_actors", &[("actor", "room"), ("status", "asleep")]), Some(0.0));
        assert_eq!(count(&s, "tern_actors"), 4);
        assert_eq!(value(&s, "tern_connections", &[("actor", "room")]), Some(3.0));
        assert_eq!(value(&s, "tern_open_databases", &[]), Some(2.0));
        assert_eq!(value(&s, "tern_storage_bytes", &[]), Some((1u64 << 40) as f64));
        assert_eq!(value(&s, "tern_sqlite_memory_bytes", &[]), Some((3u64 << 20) as f64));
        assert_eq!(value(&s, "tern_heap_bytes", &[("state", "in_use")]), Some((5u64 << 20) as f64));
        assert_eq!(value(&s, "tern_heap_bytes", &[("state", "free")]), Some((1u64 << 20) as f64));
        let info = [("region", "eu-west"), ("version", env!("CARGO_PKG_VERSION"))];
        assert_eq!(value(&s, "tern_node_info", &info), Some(1.0));

        // Each render shows its own snapshot only: nothing lingers from the previous one.
        snapshot.awake.remove("room");
        snapshot.connections.clear();
        snapshot.open_databases = 0;
        let s = scrape(&metrics, &snapshot);
        assert_eq!(value(&s, "tern_actors", &[("actor", "room"), ("status", "awake")]), None);
        assert_eq!(count(&s, "tern_actors"), 2);
        assert_eq!(count(&s, "tern_connections"), 0);
        assert_eq!(value(&s, "tern_open_databases", &[]), Some(0.0));
    }

    #[test]
    fn label_values_are_escaped() {
        let weird = "we\"ird\nname\\x";
        let metrics = Metrics::new("eu \"west\"\n1");
        metrics.record_action(weird, "a\"b", ms(1), Err("g.c\"\n\\"));
        let snapshot = Snapshot { awake: BTreeMap::from([(weird.to_owned(), 1)]), ..Snapshot::default() };
        let text = metrics.render(&snapshot);
        assert!(text.contains(r#"actor="we\"ird\nname\\x""#), "{text}");
        assert!(text.contains(r#"region="eu \"west\"\n1""#), "{text}");

        let s = scrape(&metrics, &snapshot);
        let labels = [("actor", weird), ("action", "a\"b"), ("outcome", "error")];
        assert_eq!(value(&s, "tern_actions_total", &labels), Some(1.0));
        assert_eq!(value(&s, "tern_action_errors_total", &[("actor", weird), ("code", "g.c\"\n\\")]), Some(1.0));
        assert_eq!(value(&s, "tern_actors", &[("actor", weird), ("status", "awake")]), Some(1.0));
        let info = [("region", "eu \"west\"\n1"), ("version", env!("CARGO_PKG_VERSION"))];
        assert_eq!(value(&s, "tern_node_info", &info), Some(1.0));
    }

    #[test]
    fn clones_share_metrics_across_threads() {
        let metrics = Metrics::new("eu-west");
        std::thread::scope(|scope| {
            for _ in 0..4 {
                let metrics = metrics.clone();
                scope.spawn(move || {
                    for i in 0..1000 {
                        metrics.record_action(
                            "counter",
                            "increment",
                            ms(1),
                            if i % 4 == 0 { Err("x.y") } else { Ok(()) },
                        );
                    }
                });
            }
            let metrics = metrics.clone();
            scope.spawn(move || {
                for _ in 0..20 {
                    scrape(&metrics, &Snapshot::default());
                }
            });
        });
        let s = scrape(&metrics, &Snapshot::default());
        let ok = [("actor", "counter"), ("action", "increment"), ("outcome", "ok")];
        assert_eq!(value(&s, "tern_actions_total", &ok), Some(3000.0));
        assert_eq!(value(&s, "tern_action_errors_total", &[("actor", "counter"), ("code", "x.y")]), Some(1000.0));
        assert_eq!(value(&s, "tern_action_duration_seconds_count", &[("actor", "counter")]), Some(4000.0));
    }

    #[test]
    fn parser_rejects_what_it_should() {
        assert!(parse_sample("tern_x{a=\"1\"} 2").is_some());
        assert!(parse_sample("tern_x{a=\"1} 2").is_none(), "unterminated value");
        assert!(parse_sample("tern_x{a=\"1\",a=\"2\"} 2").is_none(), "duplicate label");
        assert!(parse_sample("tern_x{a=\"\\q\"} 2").is_none(), "unknown escape");
        assert!(parse_sample("tern_x 2 extra").is_none());
    }
}
