//! Cluster measurements with real release `tern node` processes on loopback (QUIC, mutual TLS, LAN timing): the
//! extra latency of one forwarded hop against a local call (HTTP action and WebSocket round trip), membership
//! convergence for 5 and 20 nodes, and how long a `kill -9`ed node takes to be declared down by every other node.

use std::time::{Duration, Instant};

use tern_client::Client;

use crate::node::Node;
use crate::stats::Samples;

/// The admin token of the benchmark's cluster nodes.
pub(crate) const TOKEN: &str = "bench";
/// How long any wait may last before the benchmark gives up.
const CAP: Duration = Duration::from_secs(120);

/// What the cluster run measured.
pub struct ClusterResults {
    /// HTTP action latency on the actor's home, and through another node's gateway.
    pub http_local: Samples,
    pub http_forwarded: Samples,
    /// WebSocket action round trips on the home, and through another gateway.
    pub ws_local: Samples,
    pub ws_forwarded: Samples,
    /// Cluster size, and the time from starting its last node (the others already running) until every node
    /// lists every node alive: the join of one node as the whole cluster sees it, process start included.
    pub convergence: Vec<(usize, Duration)>,
    /// Time from `kill -9` until every other node lists the killed one down (5 nodes).
    pub failure_detection: Duration,
}

/// A cluster of release nodes on loopback: a CA, and per node its name, gateway port and QUIC address. Node 0 is
/// the directory's only voter and every other node joins it.
pub(crate) struct Cluster {
    /// The CA and the nodes' data, removed with the cluster.
    dir: tempfile::TempDir,
    pub(crate) nodes: Vec<Node>,
    /// When the last node was started.
    pub(crate) last_started: Instant,
    /// Node 0's QUIC address: the voter, and every other node's seed.
    seed: String,
    /// Arguments every node gets.
    extra: Vec<String>,
}

fn free_tcp_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("free port").port()
}

fn free_udp_port() -> u16 {
    std::net::UdpSocket::bind("127.0.0.1:0").and_then(|s| s.local_addr()).expect("free port").port()
}

impl Cluster {
    /// Starts `count` nodes in `regions` (round-robin), all joining node 0; node 0 is the directory's only voter
    /// (so every create costs the same one local vote, and the hop measured is the forwarding alone).
    pub(crate) fn start(count: usize, regions: &[&str]) -> Cluster {
        Cluster::start_with(count, regions, &[])
    }

    /// Like [`Cluster::start`], with `extra` arguments for every node.
    pub(crate) fn start_with(count: usize, regions: &[&str], extra: &[&str]) -> Cluster {
        let dir = tempfile::tempdir().expect("temp dir");
        tern_replication::init_ca(dir.path()).expect("CA");
        let seed = format!("127.0.0.1:{}", free_udp_port());
        let extra = extra.iter().map(|a| a.to_string()).collect();
        let mut cluster = Cluster { dir, nodes: Vec::new(), last_started: Instant::now(), seed, extra };
        for i in 0..count {
            cluster.add_node(regions[i % regions.len()]);
        }
        cluster
    }

    /// Starts one more node in `region`; returns when it was started.
    pub(crate) fn add_node(&mut self, region: &str) -> Instant {
        let i = self.nodes.len();
        let name = format!("node-{i}");
        let files = tern_replication::issue_node(self.dir.path(), &name).expect("certificate");
        let quic = if i == 0 { self.seed.clone() } else { format!("127.0.0.1:{}", free_udp_port()) };
        let mut args: Vec<String> = vec![
            "--region".into(),
            region.into(),
            "--quic-listen".into(),
            quic,
            "--admin-token".into(),
            TOKEN.into(),
            "--profile".into(),
            "lan".into(),
            "--voters".into(),
            format!("node-0@{}", self.seed),
            "--tls-ca".into(),
            self.dir.path().join(tern_replication::CA_CERT_FILE).display().to_string(),
            "--tls-cert".into(),
            files.cert.display().to_string(),
            "--tls-key".into(),
            files.key.display().to_string(),
        ];
        if i > 0 {
            args.extend(["--join".to_string(), self.seed.clone()]);
        }
        args.extend(self.extra.iter().cloned());
        self.last_started = Instant::now();
        let node = Node::start_with("node", free_tcp_port(), &self.dir.path().join(&name), &args);
        self.nodes.push(node);
        self.last_started
    }

    /// Waits until each node of `observers` lists every node of `ids` in `state`; returns how long that took from
    /// `started`.
    pub(crate) async fn wait_all_see(
        &self,
        started: Instant,
        observers: &[usize],
        ids: &[String],
        state: &str,
    ) -> Duration {
        let endpoints: Vec<&str> = observers.iter().map(|&i| self.nodes[i].endpoint.as_str()).collect();
        wait_all_see(started, &endpoints, ids, state).await
    }
}

/// Waits until the node at each of `endpoints` lists every node of `ids` in `state`; returns how long that took
/// from `started`.
pub(crate) async fn wait_all_see(started: Instant, endpoints: &[&str], ids: &[String], state: &str) -> Duration {
    let http = reqwest::Client::new();
    for endpoint in endpoints {
        loop {
            assert!(started.elapsed() < CAP, "{endpoint} did not see {ids:?} {state} within {CAP:?}");
            let members = match http.get(format!("{endpoint}/cluster/members")).bearer_auth(TOKEN).send().await {
                Ok(response) => response.json::<serde_json::Value>().await.ok(),
                Err(_) => None,
            };
            let seen = members.as_ref().and_then(|m| m["members"].as_array()).is_some_and(|members| {
                ids.iter().all(|id| members.iter().any(|m| m["id"] == id.as_str() && m["state"] == state))
            });
            if seen {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
    started.elapsed()
}

/// Sequential action round trips (`getCount`) over HTTP through `client`, after a warm-up.
async fn http_round_trips(client: &Client, key: &str, count: usize) -> Samples {
    let actor = client.get_or_create("counter", [key]);
    for _ in 0..200 {
        actor.call::<i64>("getCount", ()).await.expect("warm-up");
    }
    let mut samples = Samples::default();
    for _ in 0..count {
        let t = Instant::now();
        actor.call::<i64>("getCount", ()).await.expect("getCount");
        samples.push(t.elapsed());
    }
    samples
}

/// Runs every cluster measurement; `count` round trips per latency run.
pub async fn measure(count: usize, big_cluster: usize) -> ClusterResults {
    let names = |n: usize| (0..n).map(|i| format!("node-{i}")).collect::<Vec<_>>();
    let everyone = |n: usize| (0..n).collect::<Vec<_>>();

    // Five nodes: convergence, the forwarded hop, then failure detection. Node 0 is alone in its region, so an
    // actor created through it lives on it; node 1 forwards every call for it one QUIC hop.
    let mut five = Cluster::start(5, &["iad", "fra", "fra", "fra", "fra"]);
    let mut convergence = vec![(5, five.wait_all_see(five.last_started, &everyone(5), &names(5), "alive").await)];
    let home = Client::new(five.nodes[0].endpoint.clone()).expect("client");
    let other = Client::new(five.nodes[1].endpoint.clone()).expect("client");
    home.get_or_create("counter", ["hop"]).resolve().await.expect("create");
    let http_local = http_round_trips(&home, "hop", count).await;
    let http_forwarded = http_round_trips(&other, "hop", count).await;
    let ws_local = crate::scenarios::ws_round_trips(&home.get_or_create("counter", ["hop"]), count).await;
    let ws_forwarded = crate::scenarios::ws_round_trips(&other.get_or_create("counter", ["hop"]), count).await;

    five.nodes[4].kill9();
    let failure_detection = five.wait_all_see(Instant::now(), &[0, 1, 2, 3], &["node-4".to_string()], "down").await;
    drop(five);

    let big = Cluster::start(big_cluster, &["iad", "fra", "syd"]);
    convergence.push((
        big_cluster,
        big.wait_all_see(big.last_started, &everyone(big_cluster), &names(big_cluster), "alive").await,
    ));
    ClusterResults { http_local, http_forwarded, ws_local, ws_forwarded, convergence, failure_detection }
}
