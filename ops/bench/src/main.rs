//! Tern's benchmark: run with `cargo run --release -p tern-bench` (add `-- --quick` for a short smoke run).
//!
//! Starts a release node (this binary, re-executed in node mode) on a fresh data directory and measures, through
//! the Rust client: stateless action throughput and latency over HTTP keep-alive (one hot actor, and 1,000
//! actors), action round trips over one WebSocket, wake-from-sleep latency, actor creations per second, and
//! resident memory per awake idle actor. Prints a Markdown report with ratios against the targets and the
//! physical limits measured on this machine.

mod node;
mod scenarios;
mod stats;

use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use tern_client::Client;

use stats::micros;

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
}

/// Targets from the project's issue, and physical anchors from the peers-and-limits notes.
const TARGET_WS_P50_US: f64 = 100.0;
const TARGET_WAKE_P50_US: f64 = 1000.0;
const TARGET_BYTES_PER_ACTOR: f64 = 10_000.0;
const TOKIO_TCP_ECHO_P50_US: f64 = 6.0;
const SQLITE_WAL_NORMAL_COMMIT_US: f64 = 12.0;
const RIVETKIT_BYTES_PER_ACTOR: f64 = 600.0;

fn main() -> ExitCode {
    if std::env::var_os(node::NODE_MODE).is_some() {
        return node::run_node();
    }
    let args = Args::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("tokio runtime");
    runtime.block_on(run(args));
    ExitCode::SUCCESS
}

async fn run(args: Args) {
    let (seconds, memory_actors, counts) = if args.quick {
        (1, 2_000, (2_000, 50, 500))
    } else {
        (args.seconds, args.memory_actors, (20_000, 500, 5_000))
    };
    let (ws_count, wake_count, create_count) = counts;
    let duration = Duration::from_secs(seconds);
    let dir = tempfile::tempdir().expect("temp dir");
    let port = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("free port").port();
    let node = node::Node::start(port, &dir.path().join("data"));
    let client = Client::new(node.endpoint.clone()).expect("client");

    let hot = client.get_or_create("counter", ["hot"]);
    hot.resolve().await.expect("hot actor");
    let mut one = scenarios::http_actions(std::slice::from_ref(&hot), args.workers, duration).await;
    let mut many_actors = Vec::new();
    for i in 0..1000 {
        let actor = client.get_or_create("counter", format!("spread-{i}"));
        actor.resolve().await.expect("spread actor");
        many_actors.push(actor);
    }
    let mut many = scenarios::http_actions(&many_actors, args.workers, duration).await;
    let mut ws = scenarios::ws_round_trips(&hot, ws_count).await;
    let (mut awake, mut waking) = scenarios::wakes(&client, &node, wake_count).await;
    let created = scenarios::creations(&client, "counter", "created", create_count, args.workers).await;
    let memory = scenarios::memory(&client, &node, memory_actors, args.workers).await;

    let ws_p50 = ws.quantile(0.5).as_secs_f64() * 1e6;
    let wake_p50 = waking.quantile(0.5).as_secs_f64() * 1e6;
    println!("## Tern benchmark ({} workers, {seconds} s per throughput run)\n", args.workers);
    println!("| measurement | result | p50 | p99 | ratio |");
    println!("|---|---|---|---|---|");
    println!(
        "| stateless action, HTTP keep-alive, 1 hot actor | {:.0} actions/s | {} | {} | {:.1}× one WAL+NORMAL commit per action ({SQLITE_WAL_NORMAL_COMMIT_US} µs) |",
        one.per_second,
        micros(one.samples.quantile(0.5)),
        micros(one.samples.quantile(0.99)),
        (1e6 / one.per_second) / SQLITE_WAL_NORMAL_COMMIT_US,
    );
    println!(
        "| stateless action, HTTP keep-alive, 1,000 actors | {:.0} actions/s | {} | {} | |",
        many.per_second,
        micros(many.samples.quantile(0.5)),
        micros(many.samples.quantile(0.99)),
    );
    println!(
        "| action round trip, one WebSocket ({ws_count} sequential) | | {} | {} | {:.2}× target {TARGET_WS_P50_US} µs; {:.1}× tokio TCP echo ({TOKIO_TCP_ECHO_P50_US} µs) |",
        micros(ws.quantile(0.5)),
        micros(ws.quantile(0.99)),
        ws_p50 / TARGET_WS_P50_US,
        ws_p50 / TOKIO_TCP_ECHO_P50_US,
    );
    println!(
        "| action on an awake actor, HTTP ({wake_count} actors) | | {} | {} | |",
        micros(awake.quantile(0.5)),
        micros(awake.quantile(0.99)),
    );
    println!(
        "| action that wakes a sleeping actor, HTTP ({wake_count} actors) | | {} | {} | {:.2}× target {TARGET_WAKE_P50_US} µs |",
        micros(waking.quantile(0.5)),
        micros(waking.quantile(0.99)),
        wake_p50 / TARGET_WAKE_P50_US,
    );
    println!("| actor creations ({create_count}, `POST /actors`) | {created:.0} actors/s | | | |");
    println!(
        "| resident memory per awake idle actor ({memory_actors} actors) | {:.0} B average, {:.0} B marginal | | | {:.2}× target {TARGET_BYTES_PER_ACTOR} B; {:.1}× RivetKit's 0.6 KB claim |",
        memory.per_actor,
        memory.marginal_per_actor,
        memory.per_actor / TARGET_BYTES_PER_ACTOR,
        memory.per_actor / RIVETKIT_BYTES_PER_ACTOR,
    );
    println!(
        "\nNode RSS: {:.1} MiB before the memory run, {:.1} MiB with {memory_actors} awake actors.",
        memory.baseline as f64 / 1048576.0,
        memory.at_total as f64 / 1048576.0
    );
}
