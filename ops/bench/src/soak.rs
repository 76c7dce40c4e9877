//! The soak: many `/connect` WebSockets held open on one node for minutes, each calling its actor now and then,
//! with the node's resident memory sampled all along and after every socket closed.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use tern_client::Client;

use crate::node::Node;

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
    /// The memory SQLite held (the actors' page caches, mostly) one minute in and at the end.
    pub sqlite_minute: u64,
    pub sqlite_end: u64,
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

    let (mut rss_minute, mut sqlite_minute, mut range) = (0, 0, (u64::MAX, 0));
    while started.elapsed() < duration {
        tokio::time::sleep(SAMPLE_EVERY.min(duration.saturating_sub(started.elapsed()))).await;
        let rss = node.rss_bytes();
        if started.elapsed() >= Duration::from_secs(60) {
            if rss_minute == 0 {
                rss_minute = rss;
                sqlite_minute = node.sqlite_memory_bytes().await;
            }
            range = (range.0.min(rss), range.1.max(rss));
        }
    }
    let rss_end = node.rss_bytes();
    let sqlite_end = node.sqlite_memory_bytes().await;
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
        rss_minute,
        rss_end,
        rss_after_close,
        rss_range_after_minute: range,
        sqlite_minute,
        sqlite_end,
    }
}
