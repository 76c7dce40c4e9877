//! The measurements, each against a running node through the Rust client.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use tern_client::{ActorHandle, Client, Value};

use crate::actors::QUEUE;
use crate::node::Node;
use crate::stats::Samples;

/// Latencies and the rate achieved by a load run.
pub struct Load {
    /// One latency per operation that counted.
    pub samples: Samples,
    /// Operations (or, where a scenario says so, rows) per second over the run.
    pub per_second: f64,
}

/// `workers` concurrent loops, each running `op(worker, i)` (`i` counts that worker's operations) back to back
/// for `duration`. An operation that returns `true` counts, with its latency as a sample; one that returns
/// `false` (refused, e.g. a full queue) is left out of both.
pub async fn load<F, Fut>(workers: usize, duration: Duration, op: F) -> Load
where
    F: Fn(usize, usize) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = bool> + Send + 'static,
{
    let op = Arc::new(op);
    let started = Instant::now();
    let tasks: Vec<_> = (0..workers)
        .map(|worker| {
            let op = op.clone();
            tokio::spawn(async move {
                let mut samples = Samples::default();
                let mut i = 0;
                while started.elapsed() < duration {
                    let t = Instant::now();
                    if op(worker, i).await {
                        samples.push(t.elapsed());
                    }
                    i += 1;
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

/// `workers` concurrent loops of stateless `increment` calls over HTTP keep-alive for `duration`, spread over
/// `actors` round-robin.
pub async fn http_actions(actors: &[ActorHandle], workers: usize, duration: Duration) -> Load {
    let actors = Arc::new(actors.to_vec());
    load(workers, duration, move |worker, i| {
        let actor = actors[(worker + i * workers) % actors.len()].clone();
        async move {
            actor.call::<i64>("increment", (1,)).await.expect("increment");
            true
        }
    })
    .await
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

/// For each of `count` counters: an action while awake, then sleep, then the same action (which wakes it),
/// then sleep again. Returns (awake, waking) latencies.
pub async fn wakes(client: &Client, count: usize) -> (Samples, Samples) {
    let (mut awake, mut waking) = (Samples::default(), Samples::default());
    for i in 0..count {
        let actor = client.get_or_create("counter", format!("wake-{i}"));
        let id = actor.resolve().await.expect("resolve");
        actor.call::<i64>("getCount", ()).await.expect("first call");
        let t = Instant::now();
        actor.call::<i64>("getCount", ()).await.expect("awake call");
        awake.push(t.elapsed());
        client.sleep_actor(&id).await.expect("sleep");
        let t = Instant::now();
        actor.call::<i64>("getCount", ()).await.expect("waking call");
        waking.push(t.elapsed());
        client.sleep_actor(&id).await.expect("sleep again"); // not later, in the middle of another measurement
    }
    (awake, waking)
}

/// Actors created by [`creations`].
pub struct Created {
    pub per_second: f64,
    pub ids: Vec<String>,
}

/// Creates `count` actors of `name` with `workers` concurrent creators.
pub async fn creations(client: &Client, name: &str, prefix: &str, count: usize, workers: usize) -> Created {
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let tasks: Vec<_> = (0..workers)
        .map(|_| {
            let (client, next, name, prefix) = (client.clone(), next.clone(), name.to_string(), prefix.to_string());
            tokio::spawn(async move {
                let mut ids = Vec::new();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= count {
                        break;
                    }
                    if i > 0 && i % 100_000 == 0 {
                        eprintln!("tern-bench: {i} actors created in {:.0} s", started.elapsed().as_secs_f64());
                    }
                    let actor = client.create(&name, format!("{prefix}-{i}"), None).await.expect("create");
                    ids.push(actor.cached_actor_id().expect("a created actor's id"));
                }
                ids
            })
        })
        .collect();
    let mut ids = Vec::with_capacity(count);
    for task in tasks {
        ids.extend(task.await.expect("creator"));
    }
    Created { per_second: count as f64 / started.elapsed().as_secs_f64(), ids }
}

/// Puts the actors `ids` to sleep, `workers` at a time, and waits until they all sleep. Measurements call this
/// on the actors they woke, so that those do not fall asleep (closing and checkpointing their databases) 30 s
/// later, in the middle of another measurement.
pub async fn sleep_all(client: &Client, ids: &[String], workers: usize) {
    let ids = Arc::new(ids.to_vec());
    let next = Arc::new(AtomicUsize::new(0));
    let tasks: Vec<_> = (0..workers)
        .map(|_| {
            let (client, ids, next) = (client.clone(), ids.clone(), next.clone());
            tokio::spawn(async move {
                while let Some(id) = ids.get(next.fetch_add(1, Ordering::Relaxed)) {
                    client.sleep_actor(id).await.expect("sleep");
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("sleeper");
    }
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

/// Plain queue sends and their processing by the run loop, end to end.
pub struct QueueRun {
    /// Accepted sends: their latency (send → durable → answered) and rate during the run.
    pub sends: Load,
    /// Messages sent and processed per second: accepted sends over the time until the run loop processed the
    /// last of them.
    pub end_to_end: f64,
    /// Sends refused with `queue.full` (each retried after a pause).
    pub refused: usize,
}

/// `workers` concurrent loops of plain sends (no wait) to one `bench-queue` actor for `duration`, then waits
/// until its run loop has processed every accepted message. A send refused because the queue is full (1,000
/// messages, RivetKit's default) is counted and retried after a pause that doubles with each refusal in a row
/// (250 µs up to 16 ms): when the run loop is the bottleneck, this is its back-pressure, and the backing off
/// keeps refused requests from taking the CPU the run loop needs.
pub async fn queue_sends(actor: &ActorHandle, workers: usize, duration: Duration) -> QueueRun {
    let before: u64 = actor.call("processed", ()).await.expect("processed");
    let refused = Arc::new(AtomicUsize::new(0));
    // Per worker: refusals in a row.
    let streaks: Arc<Vec<AtomicU32>> = Arc::new((0..workers).map(|_| AtomicU32::new(0)).collect());
    let started = Instant::now();
    let sends = {
        let (actor, refused) = (actor.clone(), refused.clone());
        load(workers, duration, move |worker, i| {
            let (actor, refused, streaks) = (actor.clone(), refused.clone(), streaks.clone());
            async move {
                let body = Value::from((worker * 1_000_000 + i) as i64);
                match actor.send(QUEUE, body, None).await {
                    Ok(_) => {
                        streaks[worker].store(0, Ordering::Relaxed);
                        true
                    }
                    Err(e) if e.is_code("queue", "full") => {
                        refused.fetch_add(1, Ordering::Relaxed);
                        let streak = streaks[worker].fetch_add(1, Ordering::Relaxed).min(6);
                        tokio::time::sleep(Duration::from_micros(250 << streak)).await;
                        false
                    }
                    Err(e) => panic!("queue send: {e}"),
                }
            }
        })
        .await
    };
    let target = before + sends.samples.len() as u64;
    loop {
        let processed: u64 = actor.call("processed", ()).await.expect("processed");
        if processed >= target {
            break;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let end_to_end = sends.samples.len() as f64 / started.elapsed().as_secs_f64();
    QueueRun { sends, end_to_end, refused: refused.load(Ordering::Relaxed) }
}

/// `count` sequential waiting sends to one `bench-queue` actor: each returns when the run loop has processed
/// the message and its completion is committed.
pub async fn queue_waits(actor: &ActorHandle, count: usize) -> Samples {
    let mut samples = Samples::default();
    for i in 0..count + 100 {
        let t = Instant::now();
        let answer = actor.send(QUEUE, Value::from(i as i64), Some(Duration::from_secs(10))).await.expect("send");
        assert_eq!(answer.status, "completed", "a waiting send was not completed");
        if i >= 100 {
            samples.push(t.elapsed()); // the first 100 are warm-up
        }
    }
    samples
}

/// Bytes of every KV value.
const KV_VALUE_LEN: usize = 100;

/// The KV key of entry `i`.
fn kv_key(i: usize) -> String {
    format!("key-{i:08}")
}

/// `workers` concurrent loops of `put` on one `bench-kv` actor for `duration`: distinct keys `kv_key(0..)`
/// (as many as there are samples), 100-byte values.
pub async fn kv_puts(actor: &ActorHandle, workers: usize, duration: Duration) -> Load {
    let (actor, next) = (actor.clone(), Arc::new(AtomicUsize::new(0)));
    load(workers, duration, move |_worker, _i| {
        let (actor, key) = (actor.clone(), kv_key(next.fetch_add(1, Ordering::Relaxed)));
        async move {
            actor.call::<()>("put", (key, "v".repeat(KV_VALUE_LEN))).await.expect("put");
            true
        }
    })
    .await
}

/// `workers` concurrent loops of `get` for `duration` over the `written` keys [`kv_puts`] wrote, in no
/// particular order; every get must find its entry.
pub async fn kv_gets(actor: &ActorHandle, written: usize, workers: usize, duration: Duration) -> Load {
    let (actor, written) = (actor.clone(), written.max(1));
    load(workers, duration, move |worker, i| {
        let (actor, key) = (actor.clone(), kv_key(((i * workers + worker) * 7919) % written));
        async move {
            let value: Option<String> = actor.call("get", (key,)).await.expect("get");
            assert!(value.is_some_and(|v| v.len() == KV_VALUE_LEN), "a written key was not found");
            true
        }
    })
    .await
}

/// `workers` concurrent loops of `action` on one `bench-sql` actor for `duration`, each call inserting
/// `rows_per_call` rows (`insert(n)` when 1, else `action(start, rows_per_call)`). The rate is in rows per
/// second.
pub async fn sql_inserts(
    actor: &ActorHandle,
    action: &'static str,
    rows_per_call: usize,
    workers: usize,
    duration: Duration,
) -> Load {
    let actor = actor.clone();
    let mut run = load(workers, duration, move |worker, i| {
        let actor = actor.clone();
        let start = ((worker * 1_000_000_000 + i * rows_per_call) as i64, rows_per_call as i64);
        async move {
            let inserted: i64 = if rows_per_call == 1 {
                actor.call(action, (start.0,)).await.expect("insert")
            } else {
                actor.call(action, start).await.expect("insert many")
            };
            assert_eq!(inserted, rows_per_call as i64, "wrong number of rows inserted");
            true
        }
    })
    .await;
    run.per_second *= rows_per_call as f64;
    run
}
