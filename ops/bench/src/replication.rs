//! Replication measurements with real release `tern node` processes on loopback (QUIC, mutual TLS, LAN timing):
//! how far behind a replica is after a commit (lag, as a client polling the replica set sees it), write latency and
//! throughput in `async` and `sync` mode, failover time after `kill -9` of a home, and the speed of bootstrapping a
//! replica of a 100 MB database.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::cluster::{Cluster, TOKEN};
use crate::stats::Samples;

/// How long any wait may last before the benchmark gives up.
const CAP: Duration = Duration::from_secs(180);

/// What the replication run measured.
pub struct ReplicationResults {
    /// Commit acknowledged (async) → the replica set shows the replica at the home's position.
    pub lag: Samples,
    /// Sequential single-row inserts: latency in async and sync mode.
    pub async_writes: Samples,
    pub sync_writes: Samples,
    /// Inserts per second with `workers` concurrent writers, async and sync.
    pub async_throughput: f64,
    pub sync_throughput: f64,
    /// `kill -9` of the home → the actor answers through another gateway.
    pub failover: Duration,
    /// Bytes of the bootstrapped database and how long the replica took to catch up.
    pub bootstrap: (u64, Duration),
}

/// An HTTP client of one node.
struct Api {
    http: reqwest::Client,
    endpoint: String,
}

impl Api {
    fn new(endpoint: &str) -> Api {
        let http = reqwest::Client::builder().timeout(Duration::from_secs(2)).build().expect("an HTTP client");
        Api { http, endpoint: endpoint.to_string() }
    }

    async fn create(&self, key: &str, region: &str) -> String {
        let body = json!({"name": "sqlite", "key": key, "datacenter": region});
        let url = format!("{}/actors", self.endpoint);
        let created: Value = self.http.put(url).json(&body).send().await.expect("create").json().await.expect("JSON");
        created["actor"]["actor_id"].as_str().expect("an actor id").to_string()
    }

    async fn execute(&self, id: &str, sql: &str) -> Result<(), String> {
        let url = format!("{}/gateway/{id}/action/execute", self.endpoint);
        let response =
            self.http.post(url).json(&json!({"args": [sql, null]})).send().await.map_err(|e| e.to_string())?;
        if response.status().is_success() { Ok(()) } else { Err(response.text().await.unwrap_or_default()) }
    }

    async fn replicas(&self, id: &str) -> Option<Value> {
        let url = format!("{}/actors/{id}/replicas", self.endpoint);
        self.http.get(url).bearer_auth(TOKEN).send().await.ok()?.json().await.ok()
    }

    /// Waits until the actor's replicas are all at the home's position.
    async fn caught_up(&self, id: &str) {
        let started = Instant::now();
        loop {
            if let Some(set) = self.replicas(id).await {
                let home = &set["home"]["position"];
                let replicas = set["replicas"].as_array().cloned().unwrap_or_default();
                if !replicas.is_empty() && replicas.iter().all(|r| &r["position"] == home) {
                    return;
                }
            }
            assert!(started.elapsed() < CAP, "the replica did not catch up within {CAP:?}");
            tokio::time::sleep(Duration::from_micros(200)).await;
        }
    }
}

/// Sequential inserts: their latencies.
async fn sequential(api: &Api, id: &str, count: usize) -> Samples {
    let mut samples = Samples::default();
    for i in 0..count {
        let t = Instant::now();
        api.execute(id, &format!("INSERT INTO t(v) VALUES ('seq-{i}')")).await.expect("insert");
        samples.push(t.elapsed());
    }
    samples
}

/// Inserts per second from `workers` concurrent writers for `seconds`.
async fn throughput(endpoint: &str, id: &str, workers: usize, seconds: u64) -> f64 {
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let tasks: Vec<_> = (0..workers)
        .map(|w| {
            let (api, id) = (Api::new(endpoint), id.to_string());
            tokio::spawn(async move {
                let mut done = 0u64;
                while Instant::now() < deadline {
                    api.execute(&id, &format!("INSERT INTO t(v) VALUES ('w{w}-{done}')")).await.expect("insert");
                    done += 1;
                }
                done
            })
        })
        .collect();
    let mut total = 0;
    for task in tasks {
        total += task.await.expect("writer");
    }
    total as f64 / seconds as f64
}

/// Runs every replication measurement: `count` samples per latency run, `workers` writers for `seconds` per
/// throughput run.
pub async fn measure(count: usize, workers: usize, seconds: u64, bootstrap_mb: u64) -> ReplicationResults {
    // Async mode: iad (node 0, the voter) and fra; an actor homed in iad is replicated to fra.
    let pair = Cluster::start(2, &["iad", "fra"]);
    pair.wait_all_see(pair.last_started, &[0, 1], &["node-0".into(), "node-1".into()], "alive").await;
    let home = Api::new(&pair.nodes[0].endpoint);
    let id = home.create("lag", "iad").await;
    home.execute(&id, "CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)").await.expect("table");
    home.caught_up(&id).await;
    let mut lag = Samples::default();
    for i in 0..count {
        home.execute(&id, &format!("INSERT INTO t(v) VALUES ('lag-{i}')")).await.expect("insert");
        let t = Instant::now();
        home.caught_up(&id).await;
        lag.push(t.elapsed());
    }
    let async_writes = sequential(&home, &id, count).await;
    let async_throughput = throughput(&pair.nodes[0].endpoint, &id, workers, seconds).await;
    drop(pair);

    // Sync mode: the same, each reply waiting for the replica.
    let pair = Cluster::start_with(2, &["iad", "fra"], &["--replication-mode", "sync"]);
    pair.wait_all_see(pair.last_started, &[0, 1], &["node-0".into(), "node-1".into()], "alive").await;
    let home = Api::new(&pair.nodes[0].endpoint);
    let id = home.create("sync", "iad").await;
    home.execute(&id, "CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)").await.expect("table");
    let sync_writes = sequential(&home, &id, count).await;
    let sync_throughput = throughput(&pair.nodes[0].endpoint, &id, workers, seconds).await;
    drop(pair);

    // Failover: three regions; node 0 (iad) is the voter, the actor lives on node 1 (fra), its replica elsewhere.
    let mut three = Cluster::start(3, &["iad", "fra", "sin"]);
    let all: Vec<String> = (0..3).map(|i| format!("node-{i}")).collect();
    three.wait_all_see(three.last_started, &[0, 1, 2], &all, "alive").await;
    let fra = Api::new(&three.nodes[1].endpoint);
    let id = fra.create("failover", "fra").await;
    fra.execute(&id, "CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)").await.expect("table");
    fra.caught_up(&id).await;
    let iad = Api::new(&three.nodes[0].endpoint);
    three.nodes[1].kill9();
    let killed = Instant::now();
    while iad.execute(&id, "INSERT INTO t(v) VALUES ('after')").await.is_err() {
        assert!(killed.elapsed() < CAP, "no failover within {CAP:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let failover = killed.elapsed();
    drop(three);

    // Bootstrap: an actor filled while its node is alone, then a second node joins and receives a snapshot.
    let mut alone = Cluster::start(1, &["iad"]);
    let home = Api::new(&alone.nodes[0].endpoint);
    let id = home.create("bootstrap", "iad").await;
    home.execute(&id, "CREATE TABLE big(v BLOB)").await.expect("table");
    for _ in 0..bootstrap_mb / 10 {
        home.execute(&id, "INSERT INTO big VALUES (randomblob(10 * 1024 * 1024))").await.expect("fill");
    }
    let joined = alone.add_node("fra");
    alone.wait_all_see(joined, &[0, 1], &["node-0".into(), "node-1".into()], "alive").await;
    // A home alone looks for replicas again 10 s after it last found none.
    tokio::time::sleep(Duration::from_secs(11)).await;
    let started = Instant::now();
    home.execute(&id, "INSERT INTO big VALUES (x'00')").await.expect("write");
    home.caught_up(&id).await;
    let bootstrap = (bootstrap_mb << 20, started.elapsed());
    ReplicationResults { lag, async_writes, sync_writes, async_throughput, sync_throughput, failover, bootstrap }
}
