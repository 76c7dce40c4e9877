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
    /// The same lag as the home measures it (commit → the replica's acknowledgement): p50 and p99 bucket bounds
    /// of `tern_replication_lag_seconds`.
    pub lag_in_node: (Duration, Duration),
    /// Sequential single-row inserts: latency in async and sync mode.
    pub async_writes: Samples,
    pub sync_writes: Samples,
    /// Inserts per second with `workers` concurrent writers, async and sync.
    pub async_throughput: f64,
    pub sync_throughput: f64,
    /// `kill -9` of the home → the actor answers through another gateway.
    pub failover: Duration,
    /// Async mode's loss window: per `kill -9` of a home under concurrent writers, (acknowledged writes, of them
    /// lost).
    pub async_losses: Vec<(usize, usize)>,
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

/// The p50 and p99 of a histogram of `api`'s node, as the upper bounds of the buckets they fall in.
async fn histogram_quantiles(api: &Api, name: &str) -> (Duration, Duration) {
    let url = format!("{}/metrics", api.endpoint);
    let text = api.http.get(url).send().await.expect("metrics").text().await.expect("metrics text");
    let prefix = format!("{name}_bucket{{");
    let buckets: Vec<(f64, f64)> = text
        .lines()
        .filter(|l| l.starts_with(&prefix))
        .filter_map(|l| {
            let le = l.split("le=\"").nth(1)?.split('"').next()?;
            let count = l.rsplit(' ').next()?.parse().ok()?;
            Some((if le == "+Inf" { f64::INFINITY } else { le.parse().ok()? }, count))
        })
        .collect();
    let total = buckets.last().map_or(0.0, |b| b.1);
    let quantile = |q: f64| {
        let bound = buckets.iter().find(|(_, count)| *count >= q * total).map_or(f64::INFINITY, |b| b.0);
        Duration::from_secs_f64(bound.min(3600.0))
    };
    (quantile(0.5), quantile(0.99))
}

/// Async mode's loss window: `workers` writers insert rows into an actor homed on node 1 through node 0's gateway;
/// node 1 is killed; once the actor answers from its replica, how many acknowledged rows are missing.
async fn async_loss(round: usize, workers: usize) -> (usize, usize) {
    let mut three = Cluster::start(3, &["iad", "fra", "sin"]);
    let all: Vec<String> = (0..3).map(|i| format!("node-{i}")).collect();
    three.wait_all_see(three.last_started, &[0, 1, 2], &all, "alive").await;
    let fra = Api::new(&three.nodes[1].endpoint);
    let id = fra.create(&format!("loss-{round}"), "fra").await;
    fra.execute(&id, "CREATE TABLE t(w TEXT PRIMARY KEY)").await.expect("table");
    fra.caught_up(&id).await;
    let acked = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writers: Vec<_> = (0..workers)
        .map(|w| {
            let (api, id, acked, stop) = (Api::new(&three.nodes[0].endpoint), id.clone(), acked.clone(), stop.clone());
            tokio::spawn(async move {
                for seq in 0.. {
                    if stop.load(std::sync::atomic::Ordering::Relaxed) {
                        return;
                    }
                    let row = format!("w{w}-{seq}");
                    if api.execute(&id, &format!("INSERT INTO t VALUES ('{row}')")).await.is_ok() {
                        acked.lock().unwrap().push(row);
                    }
                }
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    three.nodes[1].kill9();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for writer in writers {
        writer.await.expect("writer");
    }
    let iad = Api::new(&three.nodes[0].endpoint);
    let started = Instant::now();
    let rows = loop {
        let url = format!("{}/gateway/{id}/action/query", iad.endpoint);
        let answer = iad.http.post(url).json(&json!({"args": ["SELECT w FROM t", null]})).send().await;
        if let Ok(response) = answer
            && response.status().is_success()
        {
            break response.json::<Value>().await.expect("rows");
        }
        assert!(started.elapsed() < CAP, "no failover within {CAP:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let text = rows.to_string();
    let acked = acked.lock().unwrap().clone();
    let lost = acked.iter().filter(|row| !text.contains(&format!("\"{row}\""))).count();
    (acked.len(), lost)
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
    let lag_in_node = histogram_quantiles(&home, "tern_replication_lag_seconds").await;
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
    let mut async_losses = Vec::new();
    for round in 0..3 {
        async_losses.push(async_loss(round, workers).await);
    }

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
    ReplicationResults {
        async_losses,
        lag,
        lag_in_node,
        async_writes,
        sync_writes,
        async_throughput,
        sync_throughput,
        failover,
        bootstrap,
    }
}
