//! Migration measurements with real release `tern node` processes (QUIC, mutual TLS, LAN timing), on loopback or
//! in simulated regions a given round trip apart ([`crate::regions`]): how long a moving actor serves nothing
//! (`pause_ms`, as each move reports it) for a 1 MB and a 100 MB database, and the latency a client sees while its
//! actor moves back and forth, against the same client before the moves.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::cluster::{Cluster, TOKEN, wait_all_see};
use crate::regions::RegionCluster;
use crate::stats::Samples;

/// How long any one request may take before the benchmark gives up.
const REQUEST_CAP: Duration = Duration::from_secs(300);

/// What the migration run measured.
pub struct MigrationResults {
    /// Per database size in MB: the pauses of its moves.
    pub pauses: Vec<(u64, Samples)>,
    /// A client's `increment` round trips through a third gateway: steady (no move), and while the actor moves.
    pub steady: Samples,
    pub during: Samples,
    /// How many moves the client's actor made while it was called.
    pub moves_under_load: usize,
}

/// Sends `body` to `path` on `endpoint` (admin), returning the JSON answer; panics on an error answer.
async fn admin_post(http: &reqwest::Client, endpoint: &str, path: &str, body: Value) -> Value {
    let response = http.post(format!("{endpoint}{path}")).bearer_auth(TOKEN).json(&body).send().await.expect("answer");
    let status = response.status();
    let answer: Value = response.json().await.expect("JSON");
    assert!(status.is_success(), "{path}: {status} {answer}");
    answer
}

/// Calls `action` with `args` on actor `id` through `endpoint`.
async fn call(http: &reqwest::Client, endpoint: &str, id: &str, action: &str, args: Value) -> Value {
    let url = format!("{endpoint}/gateway/{id}/action/{action}");
    let response = http.post(url).json(&json!({ "args": args })).send().await.expect("answer");
    let status = response.status();
    let answer: Value = response.json().await.expect("JSON");
    assert!(status.is_success(), "{action}: {status} {answer}");
    answer["output"].clone()
}

/// Creates a `sqlite` actor in `region` through `endpoint` holding `mb` MB of random blobs (1 MB each).
async fn filled_actor(http: &reqwest::Client, endpoint: &str, key: &str, region: &str, mb: u64) -> String {
    let body = json!({"name": "sqlite", "key": key, "datacenter": region});
    let created: Value =
        http.put(format!("{endpoint}/actors")).json(&body).send().await.expect("create").json().await.expect("JSON");
    let id = created["actor"]["actor_id"].as_str().expect("an actor id").to_string();
    call(http, endpoint, &id, "execute", json!(["CREATE TABLE b(n INTEGER PRIMARY KEY, data BLOB)", null])).await;
    for n in 0..mb {
        let sql = format!("INSERT INTO b VALUES ({n}, randomblob(1024 * 1024))");
        call(http, endpoint, &id, "execute", json!([sql, null])).await;
    }
    id
}

/// Moves `id` to `node` through `endpoint`; returns the reported pause.
async fn move_to(http: &reqwest::Client, endpoint: &str, id: &str, node: &str) -> Duration {
    let moved = admin_post(http, endpoint, &format!("/actors/{id}/migrate"), json!({ "node": node })).await;
    Duration::from_millis(moved["pause_ms"].as_u64().expect("pause_ms"))
}

/// Three nodes in iad, fra and sin (their gateways and ids): actors move between the first two, and the client
/// calls through the third.
struct Nodes {
    endpoints: [String; 3],
    ids: [String; 3],
}

/// Runs the migration measurements on loopback: `moves` moves per database size, and `calls` client round trips
/// steady and under moves.
pub async fn measure(sizes_mb: &[u64], moves: usize, calls: usize) -> MigrationResults {
    let cluster = Cluster::start(3, &["iad", "fra", "sin"]);
    let endpoints = [0, 1, 2].map(|i| cluster.nodes[i].endpoint.clone());
    run(Nodes { endpoints, ids: [0, 1, 2].map(|i| format!("node-{i}")) }, sizes_mb, moves, calls).await
}

/// [`measure`] in simulated regions iad, fra and sin, `rtt_ms` apart; `Err` says why this machine cannot run them.
pub async fn measure_across(
    rtt_ms: u32,
    sizes_mb: &[u64],
    moves: usize,
    calls: usize,
) -> Result<MigrationResults, String> {
    let regions = ["iad", "fra", "sin"];
    let cluster = RegionCluster::start(&regions, rtt_ms)?;
    let endpoints = [0, 1, 2].map(|i| cluster.nodes[i].endpoint.clone());
    Ok(run(Nodes { endpoints, ids: regions.map(|r| format!("{r}-1")) }, sizes_mb, moves, calls).await)
}

async fn run(nodes: Nodes, sizes_mb: &[u64], moves: usize, calls: usize) -> MigrationResults {
    let endpoints: Vec<&str> = nodes.endpoints.iter().map(String::as_str).collect();
    wait_all_see(Instant::now(), &endpoints, &nodes.ids, "alive").await;
    let http = reqwest::Client::builder().timeout(REQUEST_CAP).build().expect("an HTTP client");
    let (iad, sin) = (nodes.endpoints[0].clone(), nodes.endpoints[2].clone());
    let (to_iad, to_fra) = (nodes.ids[0].as_str(), nodes.ids[1].as_str());

    let mut pauses = Vec::new();
    for &mb in sizes_mb {
        let id = filled_actor(&http, &iad, &format!("moving-{mb}mb"), "iad", mb).await;
        // The first move to each side may bootstrap a copy (not part of the pause); every move is measured.
        let mut samples = Samples::default();
        for i in 0..moves {
            let to = if i % 2 == 0 { to_fra } else { to_iad };
            samples.push(move_to(&http, &sin, &id, to).await);
        }
        pauses.push((mb, samples));
    }

    // A client calling its actor through sin's gateway, before and while the actor moves between iad and fra.
    let body = json!({"name": "counter", "key": "called", "datacenter": "iad"});
    let created: Value =
        http.put(format!("{iad}/actors")).json(&body).send().await.expect("create").json().await.expect("JSON");
    let id = created["actor"]["actor_id"].as_str().expect("an actor id").to_string();
    for _ in 0..200 {
        call(&http, &sin, &id, "increment", json!([1])).await;
    }
    let mut steady = Samples::default();
    for _ in 0..calls {
        let t = Instant::now();
        call(&http, &sin, &id, "increment", json!([1])).await;
        steady.push(t.elapsed());
    }
    let during = Arc::new(Mutex::new(Samples::default()));
    let done = Arc::new(Mutex::new(false));
    let caller = {
        let (http, sin, id, during, done) = (http.clone(), sin.clone(), id.clone(), during.clone(), done.clone());
        tokio::spawn(async move {
            while !*done.lock().expect("not poisoned") {
                let t = Instant::now();
                call(&http, &sin, &id, "increment", json!([1])).await;
                during.lock().expect("not poisoned").push(t.elapsed());
            }
        })
    };
    let mut moves_under_load = 0;
    while during.lock().expect("not poisoned").len() < calls {
        let to = if moves_under_load % 2 == 0 { to_fra } else { to_iad };
        move_to(&http, &iad, &id, to).await;
        moves_under_load += 1;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    *done.lock().expect("not poisoned") = true;
    caller.await.expect("the caller");
    let during = std::mem::take(&mut *during.lock().expect("not poisoned"));
    MigrationResults { pauses, steady, during, moves_under_load }
}
