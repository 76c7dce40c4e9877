//! A node holding a million sleeping actors: what they cost on disk and in memory, how fast the node restarts,
//! how fast the admin listing pages through them, and a wake after the restart. Only when asked for
//! (`--only million`): creating them takes a while.

use std::path::Path;
use std::time::{Duration, Instant};

use tern_client::Client;

use crate::node::Node;
use crate::scenarios;
use crate::stats::Samples;

/// What the run measured.
pub struct Million {
    pub actors: usize,
    pub creations_per_second: f64,
    /// Bytes on disk per actor (the data directory's `du` over the actors).
    pub disk_per_actor: f64,
    /// The node's resident memory and open file descriptors with every actor created and asleep (their handles
    /// pooled up to the pool's bound).
    pub rss_before_restart: u64,
    pub open_files: usize,
    /// Start of the restarted process → its first answered listing.
    pub restart_ready: Duration,
    pub rss_after_restart: u64,
    /// The restarted node's first `GET /metrics` (it counts the live actors on `node.db`'s key index and walks
    /// every actor's files for `tern_storage_bytes`) and the one right after it (which reuses both).
    pub scrapes: (Duration, Duration),
    /// `GET /actors?limit=100` pages, following the cursor from the newest actor on.
    pub pages: Samples,
    /// The same, of one actor name.
    pub named_pages: Samples,
    /// An action on a random sleeping actor after the restart (its record and file read cold).
    pub cold_wakes: Samples,
    pub rss_after_wakes: u64,
}

/// Pages of the listing read (100 actors each).
const PAGES: usize = 300;
/// Sleeping actors woken after the restart.
const WAKES: usize = 1_000;
/// Concurrent creators: more than the bench's default workers, since each creation waits on its file's sync.
const CREATORS: usize = 64;

/// Creates `count` actors on a fresh node at `port` with data in `data_dir`, lets them sleep, restarts the node and
/// measures.
pub async fn measure(port: u16, data_dir: &Path, count: usize) -> Million {
    let mut node = Node::start(port, data_dir);
    let client = Client::new(node.endpoint.clone()).expect("client");
    let created = scenarios::creations(&client, "counter", "m", count, CREATORS).await;
    let (ids, creations_per_second) = (created.ids, created.per_second);
    // An actor sleeps 30 s after its last call: by then, every one is asleep.
    tokio::time::sleep(Duration::from_secs(35)).await;
    let http = reqwest::Client::new();
    let rss_before_restart = node.rss_bytes();
    let open_files = node.open_files();
    let disk_per_actor = du(&data_dir.join("actors")) as f64 / count as f64;

    node.stop();
    let restarted = Instant::now();
    let node = Node::start(port, data_dir);
    let first = http.get(format!("{}/actors?limit=100", node.endpoint)).send().await.expect("a listing");
    assert!(first.status().is_success(), "the restarted node lists its actors");
    let restart_ready = restarted.elapsed();
    let rss_after_restart = node.rss_bytes();
    let scrapes = (scrape(&http, &node.endpoint).await, scrape(&http, &node.endpoint).await);

    let pages = listing(&http, &node.endpoint, None).await;
    let named_pages = listing(&http, &node.endpoint, Some("counter")).await;
    let mut cold_wakes = Samples::default();
    let mut state = 0x9e37_79b9_7f4a_7c15_u64;
    for _ in 0..WAKES {
        // xorshift: a spread of actors without a dependency on a random crate.
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let id = &ids[(state % ids.len() as u64) as usize];
        let actor = client.get_for_id("counter", id);
        let t = Instant::now();
        actor.call::<i64>("getCount", ()).await.expect("a woken actor answers");
        cold_wakes.push(t.elapsed());
    }
    let rss_after_wakes = node.rss_bytes();
    Million {
        actors: count,
        creations_per_second,
        disk_per_actor,
        rss_before_restart,
        open_files,
        restart_ready,
        rss_after_restart,
        scrapes,
        pages,
        named_pages,
        cold_wakes,
        rss_after_wakes,
    }
}

/// How long one `GET /metrics` of the node at `endpoint` takes.
async fn scrape(http: &reqwest::Client, endpoint: &str) -> Duration {
    let t = Instant::now();
    let answer = http.get(format!("{endpoint}/metrics")).send().await.expect("a scrape");
    assert!(answer.status().is_success(), "the node answers /metrics");
    answer.text().await.expect("the metrics");
    t.elapsed()
}

/// Reads [`PAGES`] pages of the admin listing (of actors named `name`, or all), each from the cursor of the one
/// before; checks that they follow each other newest first.
async fn listing(http: &reqwest::Client, endpoint: &str, name: Option<&str>) -> Samples {
    let mut samples = Samples::default();
    let mut cursor: Option<String> = None;
    let mut last: Option<i64> = None;
    for _ in 0..PAGES {
        let mut url = format!("{endpoint}/actors?limit=100");
        if let Some(name) = name {
            url.push_str(&format!("&name={name}"));
        }
        if let Some(cursor) = &cursor {
            url.push_str(&format!("&cursor={cursor}"));
        }
        let t = Instant::now();
        let page: serde_json::Value = http.get(url).send().await.expect("a page").json().await.expect("JSON");
        samples.push(t.elapsed());
        let actors = page["actors"].as_array().expect("actors");
        for actor in actors {
            let created = actor["create_ts"].as_i64().expect("create_ts");
            assert!(last.is_none_or(|last| created <= last), "the listing goes newest first");
            last = Some(created);
        }
        match page["pagination"]["cursor"].as_str() {
            Some(next) => cursor = Some(next.to_string()),
            None => break,
        }
    }
    samples
}

/// Bytes the files under `dir` take on disk (their allocated blocks).
fn du(dir: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    let Ok(entries) = std::fs::read_dir(dir) else { return 0 };
    entries
        .flatten()
        .map(|entry| match entry.metadata() {
            Ok(meta) if meta.is_dir() => du(&entry.path()),
            Ok(meta) => meta.blocks() * 512,
            Err(_) => 0,
        })
        .sum()
}
