//! Tern's benchmark: run with `cargo run --release -p tern-bench` (add `-- --quick` for a short smoke run).
//!
//! Starts a release node (this binary, re-executed in node mode) on a fresh data directory and measures, through
//! the Rust client: stateless action throughput and latency over HTTP keep-alive (one hot actor, and 1,000
//! actors), action round trips over one WebSocket, wake-from-sleep latency, durable queue sends (throughput end
//! to end through a run loop, and the latency of a waiting send), KV puts and gets, SQL inserts (one row per
//! action and batched), actor creations per second, and resident memory per awake idle actor. Prints a
//! Markdown report with ratios against the targets and the physical limits measured on this machine.
//! `--only NAME[,NAME...]` runs a subset.

mod actors;
mod cluster;
mod migration;
mod million;
mod node;
mod regions;
mod replication;
mod scenarios;
mod soak;
mod stats;

use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, ValueEnum};
use tern_client::Client;

use node::Memory;
use stats::{Samples, micros};

/// Tern's benchmark.
#[derive(Debug, Parser)]
#[command(name = "tern-bench", about)]
struct Args {
    /// Small counts and short runs: a smoke test of the benchmark itself.
    #[arg(long)]
    quick: bool,
    /// Seconds each throughput run lasts.
    #[arg(long, default_value_t = 5)]
    seconds: u64,
    /// Concurrent client workers for throughput and creation runs.
    #[arg(long, default_value_t = 16)]
    workers: usize,
    /// Awake idle actors for the memory measurement.
    #[arg(long, default_value_t = 100_000)]
    memory_actors: usize,
    /// Run only these measurements (comma-separated or repeated); all when absent.
    #[arg(long, value_enum, value_delimiter = ',')]
    only: Vec<Measurement>,

    /// WebSockets the soak holds open.
    #[arg(long, default_value_t = 10_000)]
    soak_sockets: usize,

    /// How long the soak lasts, in seconds.
    #[arg(long, default_value_t = 600)]
    soak_seconds: u64,

    /// Sleeping actors the `million` measurement creates.
    #[arg(long, default_value_t = 1_000_000)]
    million_actors: usize,
}

/// The measurements, in the order they run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Measurement {
    /// Stateless actions over HTTP keep-alive: one hot actor, then 1,000 actors.
    Http,
    /// Action round trips over one WebSocket.
    Ws,
    /// Actions on awake actors, and actions that wake sleeping ones.
    Wake,
    /// Durable queue: plain sends through a run loop, and waiting sends.
    Queue,
    /// KV puts and gets.
    Kv,
    /// SQL inserts, one row per action and batched.
    Sql,
    /// Actor creations.
    Create,
    /// Resident memory per awake idle actor.
    Memory,
    /// A cluster of release nodes: one forwarded hop against a local call, membership convergence (5 and 20
    /// nodes), failure detection.
    Cluster,
    /// Replication: replica lag, async and sync writes, failover after `kill -9`, bootstrap of a replica.
    Replication,
    /// Migration: the pause of a moving actor (1 MB and 100 MB databases), and a client's latency while its actor
    /// moves.
    Migration,
    /// The soak: `--soak-sockets` WebSockets held open for `--soak-seconds`, calling their actors, with the node's
    /// resident memory sampled throughout and after they close. Only when asked for (`--only soak`).
    Soak,
    /// `--million-actors` sleeping actors on one node: disk and memory per actor, open files, a restart, the admin
    /// listing's pages and cold wakes. Only when asked for (`--only million`): creating them takes long.
    Million,
}

/// Targets from the project's issue, and physical anchors from the peers-and-limits notes.
const TARGET_WS_P50_US: f64 = 50.0;
const TARGET_WAKE_P50_US: f64 = 500.0;
const TARGET_CREATIONS_PER_S: f64 = 10_000.0;
/// Marginal resident memory per awake idle actor.
const TARGET_BYTES_PER_ACTOR: f64 = 2_000.0;
const TARGET_RESTART_S: f64 = 2.0;
const TARGET_LISTING_PAGE_MS: f64 = 10.0;
const TOKIO_TCP_ECHO_P50_US: f64 = 6.0;
const SQLITE_WAL_NORMAL_COMMIT_US: f64 = 12.0;
const SQLITE_BATCHED_ROWS_PER_S: f64 = 600_000.0;
const RIVETKIT_BYTES_PER_ACTOR: f64 = 600.0;
const QUINN_RTT_P50_US: f64 = 20.0;

/// Rows of SQL inserted per call in the batched runs.
const SQL_BATCHES: [usize; 2] = [100, 1_000];

/// Concurrent callers in the batched SQL runs: two, so that one call's HTTP round trip overlaps the other's
/// inserts while a call's latency stays its own work (16 callers would put 16 batches in one turn).
const SQL_BATCH_WORKERS: usize = 2;

fn main() -> ExitCode {
    if std::env::var_os(node::NODE_MODE).is_some() {
        return node::run_node();
    }
    let args = Args::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("tokio runtime");
    runtime.block_on(run(args));
    ExitCode::SUCCESS
}

/// One line of the report's table; empty cells stay empty.
#[derive(Default)]
struct Row {
    measurement: String,
    result: String,
    p50: String,
    p99: String,
    /// CPU time per operation (or row), node + client.
    cpu: String,
    /// The ratio against a target or physical anchor.
    ratio: String,
}

impl Row {
    /// A row with a measurement, a result and the p50 and p99 of `samples`.
    fn new(measurement: impl Into<String>, result: impl Into<String>, samples: &mut Samples) -> Row {
        let (p50, p99) = if samples.len() > 0 {
            (micros(samples.quantile(0.5)), micros(samples.quantile(0.99)))
        } else {
            (String::new(), String::new())
        };
        Row { measurement: measurement.into(), result: result.into(), p50, p99, ..Row::default() }
    }

    fn cpu(self, cpu: String) -> Row {
        Row { cpu, ..self }
    }

    fn ratio(self, ratio: String) -> Row {
        Row { ratio, ..self }
    }
}

/// The report: a Markdown table, then notes.
#[derive(Default)]
struct Report {
    rows: Vec<Row>,
    notes: Vec<String>,
}

impl Report {
    /// Prints the report as Markdown.
    fn print(&self, workers: usize, seconds: u64) {
        println!("## Tern benchmark ({workers} workers, {seconds} s per throughput run)\n");
        println!("| measurement | result | p50 | p99 | CPU per op, node + client | ratio |");
        println!("|---|---|---|---|---|---|");
        for r in &self.rows {
            println!("| {} | {} | {} | {} | {} | {} |", r.measurement, r.result, r.p50, r.p99, r.cpu, r.ratio);
        }
        for note in &self.notes {
            println!("\n{note}");
        }
    }
}

/// "N× one WAL+NORMAL commit" for an operation that costs `micros` µs.
fn commits(micros: f64) -> String {
    format!("{:.1}× one WAL+NORMAL commit ({SQLITE_WAL_NORMAL_COMMIT_US} µs)", micros / SQLITE_WAL_NORMAL_COMMIT_US)
}

/// A rate for the table, e.g. "9,402 actions/s".
fn per_s(rate: f64, unit: &str) -> String {
    let digits = format!("{:.0}", rate.max(0.0));
    let mut grouped = String::new();
    for (i, d) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(d);
    }
    format!("{grouped} {unit}/s")
}

/// Microseconds per operation at `per_second`.
fn cost_us(per_second: f64) -> f64 {
    1e6 / per_second
}

async fn run(args: Args) {
    let (seconds, memory_actors, counts) = if args.quick {
        (1, 2_000, (2_000, 50, 500, 500))
    } else {
        (args.seconds, args.memory_actors, (20_000, 500, 5_000, 5_000))
    };
    let (ws_count, wake_count, create_count, wait_count) = counts;
    let workers = args.workers;
    let runs = |m: Measurement| {
        let on_request = [Measurement::Soak, Measurement::Million];
        let runs = (args.only.is_empty() && !on_request.contains(&m)) || args.only.contains(&m);
        if runs {
            eprintln!("tern-bench: measuring {m:?}"); // progress, on stderr so the report stays clean
        }
        runs
    };
    let duration = Duration::from_secs(seconds);
    let dir = tempfile::tempdir().expect("temp dir");
    let port = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("free port").port();
    let node = node::Node::start(port, &dir.path().join("data"));
    let client = Client::new(node.endpoint.clone()).expect("client");
    let mut report = Report::default();

    let hot = client.get_or_create("counter", ["hot"]);
    let hot_id = hot.resolve().await.expect("hot actor");
    let none = &mut Samples::default();
    if runs(Measurement::Http) {
        let cpu = node.cpu_times();
        let mut one = scenarios::http_actions(std::slice::from_ref(&hot), workers, duration).await;
        let cpu = cpu.per_op_since(node.cpu_times(), one.samples.len() as f64);
        report.rows.push(
            Row::new(
                "stateless action, HTTP keep-alive, 1 hot actor",
                per_s(one.per_second, "actions"),
                &mut one.samples,
            )
            .cpu(cpu)
            .ratio(format!("{} per action", commits(cost_us(one.per_second)))),
        );
        let (mut many_actors, mut many_ids) = (Vec::new(), Vec::new());
        for i in 0..1000 {
            let actor = client.get_or_create("counter", format!("spread-{i}"));
            many_ids.push(actor.resolve().await.expect("spread actor"));
            many_actors.push(actor);
        }
        let cpu = node.cpu_times();
        let mut many = scenarios::http_actions(&many_actors, workers, duration).await;
        let cpu = cpu.per_op_since(node.cpu_times(), many.samples.len() as f64);
        report.rows.push(
            Row::new(
                "stateless action, HTTP keep-alive, 1,000 actors",
                per_s(many.per_second, "actions"),
                &mut many.samples,
            )
            .cpu(cpu),
        );
    }
    if runs(Measurement::Ws) {
        let cpu = node.cpu_times();
        let mut ws = scenarios::ws_round_trips(&hot, ws_count).await;
        let cpu = cpu.per_op_since(node.cpu_times(), ws.len() as f64);
        let ws_p50 = ws.quantile(0.5).as_secs_f64() * 1e6;
        report.rows.push(
            Row::new(format!("action round trip, one WebSocket ({ws_count} sequential)"), "", &mut ws).cpu(cpu).ratio(
                format!(
                    "{:.2}× target {TARGET_WS_P50_US} µs; {:.1}× tokio TCP echo ({TOKIO_TCP_ECHO_P50_US} µs)",
                    ws_p50 / TARGET_WS_P50_US,
                    ws_p50 / TOKIO_TCP_ECHO_P50_US
                ),
            ),
        );
    }
    scenarios::sleep_all(&client, &[hot_id], 1).await;
    if runs(Measurement::Wake) {
        let (mut awake, mut waking) = scenarios::wakes(&client, wake_count).await;
        let wake_p50 = waking.quantile(0.5).as_secs_f64() * 1e6;
        report.rows.push(Row::new(format!("action on an awake actor, HTTP ({wake_count} actors)"), "", &mut awake));
        report.rows.push(
            Row::new(
                format!("action that wakes a sleeping actor, HTTP ({wake_count} actors, their handles still pooled)"),
                "",
                &mut waking,
            )
            .ratio(format!("{:.2}× target {TARGET_WAKE_P50_US} µs", wake_p50 / TARGET_WAKE_P50_US)),
        );
    }
    if runs(Measurement::Queue) {
        let sender = client.get_or_create("bench-queue", ["sends"]);
        sender.resolve().await.expect("queue actor");
        let cpu = node.cpu_times();
        let mut sends = scenarios::queue_sends(&sender, workers, duration).await;
        let cpu = cpu.per_op_since(node.cpu_times(), sends.sends.samples.len() as f64);
        report.rows.push(
            Row::new(
                "queue: plain sends processed by a run loop, end to end, 1 actor",
                per_s(sends.end_to_end, "messages"),
                none,
            )
            .cpu(cpu)
            .ratio(format!("{} per message", commits(cost_us(sends.end_to_end)))),
        );
        report.rows.push(Row::new(
            "queue: plain send accepted (durable), HTTP keep-alive",
            format!("{}, {} refused `queue.full`", per_s(sends.sends.per_second, "sends"), sends.refused),
            &mut sends.sends.samples,
        ));
        let waiter = client.get_or_create("bench-queue", ["waits"]);
        waiter.resolve().await.expect("queue actor");
        let cpu = node.cpu_times();
        let mut waits = scenarios::queue_waits(&waiter, wait_count).await;
        let cpu = cpu.per_op_since(node.cpu_times(), waits.len() as f64);
        let wait_p50 = waits.quantile(0.5).as_secs_f64() * 1e6;
        report.rows.push(
            Row::new(
                format!("queue: waiting send, completed by the run loop ({wait_count} sequential)"),
                "",
                &mut waits,
            )
            .cpu(cpu)
            .ratio(commits(wait_p50)),
        );
    }
    if runs(Measurement::Kv) {
        let actor = client.get_or_create("bench-kv", ["hot"]);
        let id = actor.resolve().await.expect("kv actor");
        let cpu = node.cpu_times();
        let mut puts = scenarios::kv_puts(&actor, workers, duration).await;
        let cpu = cpu.per_op_since(node.cpu_times(), puts.samples.len() as f64);
        report.rows.push(
            Row::new("KV put (100-byte values), 1 actor", per_s(puts.per_second, "puts"), &mut puts.samples)
                .cpu(cpu)
                .ratio(format!("{} per put", commits(cost_us(puts.per_second)))),
        );
        let cpu = node.cpu_times();
        let mut gets = scenarios::kv_gets(&actor, puts.samples.len(), workers, duration).await;
        let cpu = cpu.per_op_since(node.cpu_times(), gets.samples.len() as f64);
        report.rows.push(
            Row::new("KV get, 1 actor", per_s(gets.per_second, "gets"), &mut gets.samples)
                .cpu(cpu)
                .ratio(format!("{} per get", commits(cost_us(gets.per_second)))),
        );
        scenarios::sleep_all(&client, &[id], 1).await;
    }
    if runs(Measurement::Sql) {
        let actor = client.get_or_create("bench-sql", ["hot"]);
        let id = actor.resolve().await.expect("sql actor");
        let cpu = node.cpu_times();
        let mut single = scenarios::sql_inserts(&actor, "insert", 1, workers, duration).await;
        let cpu = cpu.per_op_since(node.cpu_times(), single.samples.len() as f64);
        report.rows.push(
            Row::new("SQL: one INSERT per action, 1 actor", per_s(single.per_second, "rows"), &mut single.samples)
                .cpu(cpu)
                .ratio(format!("{} per row", commits(cost_us(single.per_second)))),
        );
        for (action, label) in
            [("insertMany", "`c.sql().execute` per row"), ("insertManyPrepared", "one prepared statement")]
        {
            for rows in SQL_BATCHES {
                let cpu = node.cpu_times();
                let mut batched = scenarios::sql_inserts(&actor, action, rows, SQL_BATCH_WORKERS, duration).await;
                let cpu = cpu.per_op_since(node.cpu_times(), (batched.samples.len() * rows) as f64);
                let measurement =
                    format!("SQL: {rows} INSERTs per action ({label}), 1 actor, {SQL_BATCH_WORKERS} callers");
                report.rows.push(
                    Row::new(measurement, per_s(batched.per_second, "rows"), &mut batched.samples).cpu(cpu).ratio(
                        format!(
                            "{:.2}× raw SQLite batched inserts (600k rows/s)",
                            batched.per_second / SQLITE_BATCHED_ROWS_PER_S
                        ),
                    ),
                );
            }
        }
        scenarios::sleep_all(&client, &[id], 1).await;
    }
    if runs(Measurement::Create) {
        let cpu = node.cpu_times();
        let created = scenarios::creations(&client, "counter", "created", create_count, workers).await;
        let cpu = cpu.per_op_since(node.cpu_times(), created.ids.len() as f64);
        let measurement = format!("actor creations ({create_count}, `POST /actors`)");
        let ratio = format!("{:.3}× target {TARGET_CREATIONS_PER_S}/s", created.per_second / TARGET_CREATIONS_PER_S);
        report.rows.push(Row::new(measurement, per_s(created.per_second, "actors"), none).cpu(cpu).ratio(ratio));
        scenarios::sleep_all(&client, &created.ids, workers).await;
    }
    if runs(Measurement::Soak) {
        let (sockets, seconds) = if args.quick { (200, 20) } else { (args.soak_sockets, args.soak_seconds) };
        let soak = soak::soak(&client, &node, sockets, Duration::from_secs(seconds)).await;
        soak_rows(&mut report, &soak);
    }
    if runs(Measurement::Memory) {
        let memory = scenarios::memory(&client, &node, memory_actors, workers).await;
        report.rows.push(
            Row::new(
                format!("resident memory per awake idle actor ({memory_actors} actors)"),
                format!("{:.0} B average, {:.0} B marginal", memory.per_actor, memory.marginal_per_actor),
                none,
            )
            .ratio(format!(
                "marginal: {:.2}× target {TARGET_BYTES_PER_ACTOR} B; {:.1}× RivetKit's 0.6 KB claim",
                memory.marginal_per_actor / TARGET_BYTES_PER_ACTOR,
                memory.marginal_per_actor / RIVETKIT_BYTES_PER_ACTOR
            )),
        );
        report.notes.push(format!(
            "Node RSS: {:.1} MiB before the memory run, {:.1} MiB with {memory_actors} awake actors.",
            memory.baseline as f64 / 1048576.0,
            memory.at_total as f64 / 1048576.0
        ));
    }
    drop(node);
    if runs(Measurement::Million) {
        let count = if args.quick { 20_000 } else { args.million_actors };
        let port = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("port").port();
        let dir = tempfile::tempdir().expect("temp dir");
        let million = million::measure(port, &dir.path().join("data"), count).await;
        million_rows(&mut report, million);
    }
    if runs(Measurement::Cluster) {
        let big = if args.quick { 8 } else { 20 };
        let mut results = cluster::measure(ws_count / 4, big).await;
        let mut hop = |what: &str, local: &mut Samples, forwarded: &mut Samples| {
            let extra = forwarded.quantile(0.5).as_secs_f64() * 1e6 - local.quantile(0.5).as_secs_f64() * 1e6;
            report.rows.push(Row::new(format!("{what}, on the actor's home"), "", local));
            report.rows.push(Row::new(format!("{what}, through another node (one QUIC hop)"), "", forwarded).ratio(
                format!(
                    "+{extra:.0} µs p50 for the hop; {:.1}× a quinn loopback round trip ({QUINN_RTT_P50_US} µs)",
                    extra / QUINN_RTT_P50_US
                ),
            ));
        };
        hop("cluster: HTTP action round trip", &mut results.http_local, &mut results.http_forwarded);
        hop("cluster: WebSocket action round trip", &mut results.ws_local, &mut results.ws_forwarded);
        for (nodes, took) in &results.convergence {
            report.rows.push(Row::new(
                format!("cluster: membership convergence, {nodes} nodes: last node started → all list all alive (LAN)"),
                format!("{:.2} s", took.as_secs_f64()),
                none,
            ));
        }
        report.rows.push(
            Row::new(
                "cluster: `kill -9`ed node declared down by all 4 others (LAN timing)",
                format!("{:.2} s", results.failure_detection.as_secs_f64()),
                none,
            )
            .ratio("memberlist LAN for N=5: suspicion ≥ 4·log10(5)·1 s ≈ 2.8 s + probe".to_string()),
        );
    }
    if runs(Measurement::Replication) {
        let bootstrap_mb = if args.quick { 20 } else { 100 };
        let mut results = replication::measure(ws_count / 4, workers, seconds, bootstrap_mb).await;
        let lag_p99_ms = results.lag.quantile(0.99).as_secs_f64() * 1e3;
        report.rows.push(Row::new("replication: lag, commit → replica at the home's position (async, loopback)", "", &mut results.lag).ratio(format!(
            "p99 {lag_p99_ms:.2} ms against the target of one-way delay + 5 ms (loopback: 5 ms); includes the client's polling of the replica set"
        )));
        let (in_node_p50, in_node_p99) = results.lag_in_node;
        report.rows.push(
            Row::new(
                "replication: lag as the home measures it, commit → replica's acknowledgement (bucket bounds)",
                "",
                none,
            )
            .ratio(format!(
                "p50 ≤ {:.2} ms, p99 ≤ {:.2} ms; the target is one-way delay + 5 ms",
                in_node_p50.as_secs_f64() * 1e3,
                in_node_p99.as_secs_f64() * 1e3
            )),
        );
        let (async_p50, sync_p50) = (results.async_writes.quantile(0.5), results.sync_writes.quantile(0.5));
        report.rows.push(Row::new(
            "replication: single-row write, async",
            format!("{:.0} writes/s with {workers} writers", results.async_throughput),
            &mut results.async_writes,
        ));
        report.rows.push(
            Row::new(
                "replication: single-row write, sync (a replica holds it before the reply)",
                format!("{:.0} writes/s with {workers} writers", results.sync_throughput),
                &mut results.sync_writes,
            )
            .ratio(format!(
                "+{:.0} µs p50 over async; throughput {:.2}× async",
                (sync_p50.as_secs_f64() - async_p50.as_secs_f64()) * 1e6,
                results.sync_throughput / results.async_throughput
            )),
        );
        report.rows.push(
            Row::new(
                "replication: failover, `kill -9` of the home → a write succeeds through another gateway (LAN)",
                format!("{:.2} s", results.failover.as_secs_f64()),
                none,
            )
            .ratio("target ≤ 5 s on LAN timing (lease 3 s, clock offset 250 ms)".to_string()),
        );
        let losses: Vec<String> =
            results.async_losses.iter().map(|(acked, lost)| format!("{lost} of {acked}")).collect();
        report.rows.push(
            Row::new(
                format!("replication: async loss window, acknowledged writes lost per `kill -9` of the home ({workers} writers)"),
                losses.join(", "),
                none,
            )
            .ratio("what a home acknowledged but had not shipped when it died; `sync` mode loses none".to_string()),
        );
        let (bytes, took) = results.bootstrap;
        let mb_s = bytes as f64 / (1 << 20) as f64 / took.as_secs_f64();
        report.rows.push(
            Row::new(
                format!("replication: bootstrap of a {} MB database over QUIC (loopback)", bytes >> 20),
                format!("{mb_s:.0} MB/s ({:.2} s)", took.as_secs_f64()),
                none,
            )
            .ratio(format!("{:.2}× the target of 100 MB/s", mb_s / 100.0)),
        );
    }
    if runs(Measurement::Migration) {
        let (sizes, moves, calls): (&[u64], usize, usize) =
            if args.quick { (&[1, 20], 6, 500) } else { (&[1, 100], 20, 2000) };
        let results = migration::measure(sizes, moves, calls).await;
        migration_rows(&mut report, results, None);
        // Across simulated regions (needs root): fewer moves and calls, each crossing the round trip.
        let (moves, calls) = if args.quick { (4, 100) } else { (8, 300) };
        for rtt_ms in [20, 90] {
            match migration::measure_across(rtt_ms, sizes, moves, calls).await {
                Ok(results) => migration_rows(&mut report, results, Some(rtt_ms)),
                Err(why) => eprintln!("migration across {rtt_ms} ms round trips not measured: {why}"),
            }
        }
    }
    report.print(workers, seconds);
}

/// The rows of the `million` run.
fn million_rows(report: &mut Report, mut m: million::Million) {
    let none = &mut Samples::default();
    let n = m.actors;
    let mib = |bytes: u64| format!("{:.0} MiB", bytes as f64 / 1048576.0);
    report.rows.push(Row::new(
        format!("{n} sleeping actors: creations (`POST /actors`, 64 creators)"),
        per_s(m.creations_per_second, "actors"),
        none,
    ));
    report.rows.push(Row::new(
        format!("{n} sleeping actors: disk per actor (its database file)"),
        format!("{:.1} KiB", m.disk_per_actor / 1024.0),
        none,
    ));
    report.rows.push(
        Row::new(
            format!("{n} sleeping actors: node RSS before / after a restart / after {} cold wakes", m.cold_wakes.len()),
            format!("{} / {} / {}", mib(m.rss_before_restart), mib(m.rss_after_restart), mib(m.rss_after_wakes)),
            none,
        )
        .ratio(format!("{:.0} B per sleeping actor after the restart", m.rss_after_restart as f64 / n as f64)),
    );
    report.rows.push(
        Row::new(format!("{n} sleeping actors: open files"), m.open_files.to_string(), none)
            .ratio("bound: 2 per pooled database (4,096 by default) + the node's own".to_string()),
    );
    let restart = m.restart_ready.as_secs_f64();
    report.rows.push(
        Row::new(
            format!("{n} sleeping actors: restart, process start → first listing answered"),
            format!("{restart:.2} s"),
            none,
        )
        .ratio(format!("{:.2}× target {TARGET_RESTART_S} s", restart / TARGET_RESTART_S)),
    );
    let (first, second) = m.scrapes;
    report.rows.push(Row::new(
        format!("{n} sleeping actors: `GET /metrics` after the restart, first / second"),
        format!("{:.1} / {:.1} ms", first.as_secs_f64() * 1e3, second.as_secs_f64() * 1e3),
        none,
    ));
    for (what, pages) in [("all names", &mut m.pages), ("one name", &mut m.named_pages)] {
        let p50_ms = pages.quantile(0.5).as_secs_f64() * 1e3;
        let measurement = format!("{n} sleeping actors: admin listing, 100 a page by cursor, {what}");
        report.rows.push(
            Row::new(measurement, format!("{} pages", pages.len()), pages)
                .ratio(format!("{:.2}× target {TARGET_LISTING_PAGE_MS} ms", p50_ms / TARGET_LISTING_PAGE_MS)),
        );
    }
    let wake_p50 = m.cold_wakes.quantile(0.5).as_secs_f64() * 1e6;
    report.rows.push(
        Row::new(
            format!("{n} sleeping actors: action waking a random one after the restart (cold)"),
            "",
            &mut m.cold_wakes,
        )
        .ratio(format!("{:.2}× the pooled-wake target {TARGET_WAKE_P50_US} µs", wake_p50 / TARGET_WAKE_P50_US)),
    );
}

/// The rows of one migration run, on loopback (`None`) or across simulated regions `rtt_ms` apart.
fn migration_rows(report: &mut Report, mut results: migration::MigrationResults, rtt_ms: Option<u32>) {
    let (place, rtt) = match rtt_ms {
        None => ("loopback".to_string(), 0.0),
        Some(ms) => (format!("regions {ms} ms apart"), f64::from(ms)),
    };
    let target_ms = rtt + 50.0;
    for (mb, pauses) in &mut results.pauses {
        let p50_ms = pauses.quantile(0.5).as_secs_f64() * 1e3;
        let p99_ms = pauses.quantile(0.99).as_secs_f64() * 1e3;
        report.rows.push(
            Row::new(format!("migration: pause of a move, {mb} MB database ({place})"), "", pauses).ratio(format!(
                "p50 {:.2}×, p99 {:.2}× the target of one RTT + 50 ms ({target_ms:.0} ms); p50 {:.1} RTT",
                p50_ms / target_ms,
                p99_ms / target_ms,
                if rtt > 0.0 { p50_ms / rtt } else { 0.0 }
            )),
        );
    }
    let moves = results.moves_under_load;
    let steady_p50 = results.steady.quantile(0.5).as_secs_f64() * 1e3;
    report.rows.push(Row::new(
        format!("migration: a client's call through a third gateway, steady ({place})"),
        "",
        &mut results.steady,
    ));
    let during_p50 = results.during.quantile(0.5).as_secs_f64() * 1e3;
    let during_p99 = results.during.quantile(0.99).as_secs_f64() * 1e3;
    report.rows.push(
        Row::new(
            format!("migration: the same calls while the actor moves ({moves} moves, {place})"),
            "",
            &mut results.during,
        )
        .ratio(format!(
            "p50 {during_p50:.1} ms, p99 {during_p99:.1} ms against steady p50 {steady_p50:.2} ms; no call failed"
        )),
    );
}

/// The rows of the soak.
fn soak_rows(report: &mut Report, soak: &soak::Soak) {
    let mib = |bytes: u64| format!("{:.0} MiB", bytes as f64 / 1048576.0);
    let none = &mut Samples::default();
    let (low, high) = soak.rss_range_after_minute;
    report.rows.push(
        Row::new(
            format!("soak: {} WebSockets for {} s, each calling every 5 s", soak.sockets, soak.duration.as_secs()),
            format!(
                "{} calls acknowledged, {} failed; counters sum {}; {} sockets changed state",
                soak.calls, soak.failed, soak.counted, soak.closed
            ),
            none,
        )
        .ratio(if soak.failed == 0 && soak.counted == soak.calls as i64 && soak.closed == 0 {
            "no loss: every call answered and counted once, every socket open throughout".to_string()
        } else {
            "LOSS: see the counts".to_string()
        }),
    );
    report.rows.push(
        Row::new(
            "soak: the node's resident memory",
            format!(
                "{} before, {} with the sockets open, {} at 1 min, {} at the end ({} to {} after 1 min), {} 10 s after they closed",
                mib(soak.rss_before),
                mib(soak.rss_open),
                mib(soak.rss_minute),
                mib(soak.rss_end),
                mib(low),
                mib(high),
                mib(soak.rss_after_close)
            ),
            none,
        )
        .ratio(format!(
            "{:+.1}% from 1 min to the end; {:.0}% of what the sockets took given back after they closed",
            (soak.rss_end as f64 / soak.rss_minute.max(1) as f64 - 1.0) * 100.0,
            (soak.rss_end.saturating_sub(soak.rss_after_close)) as f64
                / (soak.rss_end.saturating_sub(soak.rss_before)).max(1) as f64
                * 100.0
        )),
    );
    let (minute, end) = (&soak.minute, &soak.end);
    let grew = |at: fn(&Memory) -> u64| mib(at(end).saturating_sub(at(minute)));
    report.rows.push(
        Row::new(
            "soak: where the node's memory went after 1 min",
            format!("1 min: {}; end: {}", soak::show(minute), soak::show(end)),
            none,
        )
        .ratio(format!(
            "of the RSS growth ({}): SQLite {}, the allocator's live allocations {}, its free memory {}; each actor's \
             page cache is bounded at {} KiB (`PAGE_CACHE_KIB`), its spans by MAX_SPANS",
            grew(|m| m.rss),
            grew(|m| m.sqlite),
            grew(|m| m.heap_in_use),
            grew(|m| m.heap_free),
            tern_node::storage::pool::PAGE_CACHE_KIB
        )),
    );
}
