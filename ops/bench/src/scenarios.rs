//! The measurements, each against a running node through the Rust client.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use tern_client::{ActorHandle, Client};

use crate::node::Node;
use crate::stats::Samples;

/// Latencies and the rate achieved by a load run.
pub struct Load {
    pub samples: Samples,
    pub per_second: f64,
}

/// `workers` concurrent loops of stateless `increment` calls over HTTP keep-alive for `duration`, spread over
/// `actors` round-robin.
pub async fn http_actions(actors: &[ActorHandle], workers: usize, duration: Duration) -> Load {
    let actors = Arc::new(actors.to_vec());
    let started = Instant::now();
    let tasks: Vec<_> = (0..workers)
        .map(|worker| {
            let actors = actors.clone();
            tokio::spawn(async move {
                let mut samples = Samples::default();
                let mut i = worker;
                while started.elapsed() < duration {
                    let actor = &actors[i % actors.len()];
                    let t = Instant::now();
                    actor.call::<i64>("increment", (1,)).await.expect("increment");
                    samples.push(t.elapsed());
                    i += workers;
                }
                samples
            })
        })
        .collect();
    let mut samples = Samples::default();
    for task in tasks {
        samples.extend(task.await.expect("worker"));
    }
    let per_second = samples.len() as f64 / started.elapsed().as_secs_f64();
    Load { samples, per_second }
}

/// Sequential action round trips over one `/connect` WebSocket.
pub async fn ws_round_trips(actor: &ActorHandle, count: usize) -> Samples {
    let conn = actor.connect().await.expect("connect");
    for _ in 0..200 {
        conn.call::<i64>("getCount", ()).await.expect("warm-up");
    }
    let mut samples = Samples::default();
    for _ in 0..count {
        let t = Instant::now();
        conn.call::<i64>("getCount", ()).await.expect("getCount");
        samples.push(t.elapsed());
    }
    conn.close().await;
    samples
}

/// For each of `count` counters: an action while awake, then sleep, then the same action (which wakes it).
/// Returns (awake, waking) latencies.
pub async fn wakes(client: &Client, node: &Node, count: usize) -> (Samples, Samples) {
    let http = reqwest::Client::new();
    let (mut awake, mut waking) = (Samples::default(), Samples::default());
    for i in 0..count {
        let actor = client.get_or_create("counter", format!("wake-{i}"));
        let id = actor.resolve().await.expect("resolve");
        actor.call::<i64>("getCount", ()).await.expect("first call");
        let t = Instant::now();
        actor.call::<i64>("getCount", ()).await.expect("awake call");
        awake.push(t.elapsed());
        let slept = http.post(format!("{}/actors/{id}/sleep", node.endpoint)).json(&serde_json::json!({})).send().await;
        assert!(slept.expect("sleep request").status().is_success(), "sleep failed");
        let t = Instant::now();
        actor.call::<i64>("getCount", ()).await.expect("waking call");
        waking.push(t.elapsed());
    }
    (awake, waking)
}

/// Creates `count` actors of `name` with `workers` concurrent creators; returns creations per second.
pub async fn creations(client: &Client, name: &str, prefix: &str, count: usize, workers: usize) -> f64 {
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let tasks: Vec<_> = (0..workers)
        .map(|_| {
            let (client, next, name, prefix) = (client.clone(), next.clone(), name.to_string(), prefix.to_string());
            tokio::spawn(async move {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= count {
                        break;
                    }
                    client.create(&name, format!("{prefix}-{i}"), None).await.expect("create");
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("creator");
    }
    count as f64 / started.elapsed().as_secs_f64()
}

/// Resident memory as never-sleeping actors are created: bytes per actor on average over `total` actors, and
/// at the margin (between `total / 2` and `total`).
pub struct Memory {
    pub baseline: u64,
    pub at_total: u64,
    pub per_actor: f64,
    pub marginal_per_actor: f64,
}

/// Measures [`Memory`] with `total` `resident` actors.
pub async fn memory(client: &Client, node: &Node, total: usize, workers: usize) -> Memory {
    let baseline = node.rss_bytes();
    creations(client, "resident", "resident-a", total / 2, workers).await;
    let at_half = node.rss_bytes();
    creations(client, "resident", "resident-b", total - total / 2, workers).await;
    let at_total = node.rss_bytes();
    Memory {
        baseline,
        at_total,
        per_actor: (at_total.saturating_sub(baseline)) as f64 / total as f64,
        marginal_per_actor: (at_total.saturating_sub(at_half)) as f64 / (total - total / 2) as f64,
    }
}
