//! The soak: many `/connect` WebSockets held open on one node for minutes, each calling its actor now and then,
//! with the node's resident memory sampled all along and after every socket closed.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use tern_client::Client;

use crate::node::{Memory, Node};

/// Actors the sockets spread over (counters; each socket calls the one its number picks).
const ACTORS: usize = 100;
/// How often each socket calls its actor.
const CALL_EVERY: Duration = Duration::from_secs(5);
/// How often the node's resident memory is sampled.
const SAMPLE_EVERY: Duration = Duration::from_secs(10);
/// Sockets opened at once.
const OPENING: usize = 100;

/// What the soak measured.
pub struct Soak {
    pub sockets: usize,
    pub duration: Duration,
    /// Calls acknowledged, and calls that failed (each a lost answer or an error).
    pub calls: u64,
    pub failed: u64,
    /// The sum of the counters at the end, which must equal the acknowledged calls.
    pub counted: i64,
    /// Sockets whose connection changed state (dropped, reconnected) during the run.
    pub closed: u64,
    /// The node's RSS: before the sockets (the actors awake), with all of them open, one minute in, at the end, and after every
    /// socket closed (and the node had 10 s to settle); the least and most after the first minute.
    pub rss_before: u64,
    pub rss_open: u64,
    pub rss_minute: u64,
    pub rss_end: u64,
    pub rss_after_close: u64,
    pub rss_range_after_minute: (u64, u64),
    /// Where the node's memory was one minute in and at the end.
    pub minute: Memory,
    pub end: Memory,
}

/// Holds `sockets` connections to [`ACTORS`] counters on `node` for `duration`, each calling `increment(1)`
/// every [`CALL_EVERY`] (spread evenly), then closes them all.
pub async fn soak(client: &Client, node: &Node, sockets: usize, duration: Duration) -> Soak {
    let actors: Vec<_> = (0..ACTORS).map(|i| client.get_or_create("counter", format!("soak-{i}").as_str())).collect();
    for actor in &actors {
        actor.call::<i64>("getCount", ()).await.expect("a soak actor");
    }
    // Measured with the actors awake, so that what follows is the sockets' own.
    let rss_before = node.rss_bytes();
    let connections: Vec<_> = futures_util::stream::iter(0..sockets)
        .map(|i| {
            let actor = actors[i % ACTORS].clone();
            async move { actor.connect().await.expect("a soak connection") }
        })
        .buffer_unordered(OPENING)
        .collect()
        .await;
    let rss_open = node.rss_bytes();

    let (calls, failed, closed) =
        (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let callers: Vec<_> = connections
        .into_iter()
        .enumerate()
        .map(|(i, conn)| {
            let (calls, failed, closed, stop) = (calls.clone(), failed.clone(), closed.clone(), stop.clone());
            let offset = CALL_EVERY.mul_f64(i as f64 / sockets as f64);
            tokio::spawn(async move {
                let states = conn.watch_state();
                let mut next = tokio::time::Instant::now() + offset;
                while !stop.load(Ordering::Relaxed) {
                    tokio::time::sleep_until(next).await;
                    next += CALL_EVERY;
                    match conn.call::<i64>("increment", (1,)).await {
                        Ok(_) => calls.fetch_add(1, Ordering::Relaxed),
                        Err(_) => failed.fetch_add(1, Ordering::Relaxed),
                    };
                }
                // Any change of state (a drop, a reconnect) means the socket did not stay open.
                if states.has_changed().unwrap_or(true) {
                    closed.fetch_add(1, Ordering::Relaxed);
                }
                conn.close().await;
            })
        })
        .collect();

    let (mut minute, mut range, mut minutes_shown) = (None, (u64::MAX, 0), 0);
    while started.elapsed() < duration {
        tokio::time::sleep(SAMPLE_EVERY.min(duration.saturating_sub(started.elapsed()))).await;
        let rss = node.rss_bytes();
        let minutes = started.elapsed().as_secs() / 60;
        if minutes > minutes_shown {
            minutes_shown = minutes;
            let memory = node.memory().await;
            eprintln!("soak: {minutes} min: {}", show(&memory));
            minute.get_or_insert(memory);
        }
        if minute.is_some() {
            range = (range.0.min(rss), range.1.max(rss));
        }
    }
    let end = node.memory().await;
    let rss_end = end.rss;
    stop.store(true, Ordering::Relaxed);
    for caller in callers {
        caller.await.expect("a caller");
    }
    tokio::time::sleep(Duration::from_secs(10)).await;
    let rss_after_close = node.rss_bytes();

    let mut counted = 0;
    for actor in &actors {
        counted += actor.call::<i64>("getCount", ()).await.expect("getCount");
    }
    Soak {
        sockets,
        duration,
        calls: calls.load(Ordering::Relaxed),
        failed: failed.load(Ordering::Relaxed),
        counted,
        closed: closed.load(Ordering::Relaxed),
        rss_before,
        rss_open,
        rss_minute: minute.map_or(0, |m| m.rss),
        rss_end,
        rss_after_close,
        rss_range_after_minute: range,
        minute: minute.unwrap_or_default(),
        end,
    }
}

/// One sample of the node's memory, in MiB.
pub fn show(memory: &Memory) -> String {
    let mib = |bytes: u64| bytes as f64 / 1048576.0;
    format!(
        "RSS {:.0} MiB; SQLite {:.0} MiB; allocator {:.0} MiB in use, {:.0} MiB free",
        mib(memory.rss),
        mib(memory.sqlite),
        mib(memory.heap_in_use),
        mib(memory.heap_free)
    )
}
