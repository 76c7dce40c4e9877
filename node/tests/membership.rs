//! SWIM membership between real nodes: `tern_replication` transports with mutual TLS on 127.0.0.1, certificates
//! from a test CA, and fast LAN timing. Everything that must happen "eventually" has a generous cap.

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use tern_node::cluster::{
    DEFAULT_MAX_PACKET_SIZE, Load, Member, MemberState, Members, Membership, MembershipConfig, Profile, Timing,
};
use tern_replication::{NodeIdentity, Transport, TransportConfig, init_ca, issue_node};

/// The cap for everything that must happen eventually.
const CAP: Duration = Duration::from_secs(30);

/// LAN timing, sped up: a silent node is suspected within about half a second and declared down a second later.
fn fast() -> Timing {
    Timing {
        probe_period: Duration::from_millis(300),
        probe_rtt: Duration::from_millis(150),
        suspect_to_down_after: Duration::from_millis(1500),
        gossip_period: Duration::from_millis(100),
        announce_period: Duration::from_secs(2),
        load_refresh: Duration::from_secs(1),
    }
}

/// A cluster directory with its CA.
struct Cluster {
    dir: tempfile::TempDir,
}

impl Cluster {
    fn new() -> Self {
        let _ = tracing_subscriber::fmt().with_env_filter(tracing_subscriber::EnvFilter::from_default_env()).try_init();
        let dir = tempfile::tempdir().unwrap();
        init_ca(dir.path()).unwrap();
        Self { dir }
    }

    fn identity(&self, name: &str) -> NodeIdentity {
        if !self.dir.path().join(format!("{name}.pem")).exists() {
            issue_node(self.dir.path(), name).unwrap();
        }
        NodeIdentity::load(self.dir.path(), name).unwrap()
    }
}

/// A running node: its transport, membership and view.
struct Node {
    name: String,
    transport: Transport,
    membership: Membership,
    members: Members,
}

impl Node {
    fn addr(&self) -> SocketAddr {
        self.transport.local_addr()
    }

    /// The member `node` as this node sees it.
    fn sees(&self, node: &Node) -> Option<Member> {
        self.members.get(&node.name)
    }
}

/// Starts node `name` in `region` on `listen`, running generation `generation`, with `timing`; fails if the
/// address is taken.
fn start_at(
    cluster: &Cluster,
    name: &str,
    region: &str,
    listen: SocketAddr,
    generation: u64,
    timing: Timing,
) -> Result<Node, tern_replication::Error> {
    let (datagrams_tx, datagrams) = tokio::sync::mpsc::channel(1024);
    let config = TransportConfig {
        connect_timeout: Duration::from_secs(2),
        backoff_initial: Duration::from_millis(50),
        backoff_max: Duration::from_millis(500),
        ..TransportConfig::default()
    };
    let transport =
        Transport::builder(cluster.identity(name), listen).config(config).on_datagram(datagrams_tx).bind()?;
    let mut membership = MembershipConfig::new(region, format!("http://{name}.test:6420"), Profile::Lan);
    membership.zone = Some(format!("{region}-a"));
    membership.generation = generation;
    membership.timing = timing;
    let membership = Membership::start(transport.clone(), datagrams, membership).unwrap();
    Ok(Node { name: name.to_string(), members: membership.members(), transport, membership })
}

fn start(cluster: &Cluster, name: &str, region: &str, timing: Timing) -> Node {
    start_at(cluster, name, region, "127.0.0.1:0".parse().unwrap(), 1, timing).unwrap()
}

/// Starts nodes `n0`, `n1`, ... in `regions`, all joining through `n0`, and waits until everyone sees everyone
/// alive.
async fn converged(cluster: &Cluster, regions: &[&str], timing: Timing) -> Vec<Node> {
    let nodes: Vec<Node> = regions
        .iter()
        .enumerate()
        .map(|(i, region)| start(cluster, &format!("n{i}"), region, timing.clone()))
        .collect();
    assert_eq!(nodes[0].membership.join(vec![]).await.unwrap(), 0, "the first node has nobody to join");
    for node in &nodes[1..] {
        // Every node's list names itself too, as a static seed list does.
        assert_eq!(node.membership.join(vec![nodes[0].addr(), node.addr()]).await.unwrap(), 1);
    }
    eventually("every node sees every node alive", || {
        nodes.iter().all(|a| nodes.iter().all(|b| a.sees(b).is_some_and(|m| m.state == MemberState::Alive)))
    })
    .await;
    nodes
}

/// Waits until `check` holds, for at most [`CAP`].
async fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    poll(what, || std::future::ready(check())).await;
}

async fn poll<F: Future<Output = bool>>(what: &str, mut check: impl FnMut() -> F) {
    let deadline = tokio::time::Instant::now() + CAP;
    while !check().await {
        assert!(tokio::time::Instant::now() < deadline, "not within {CAP:?}: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_membership_packet_fits_in_a_fresh_connections_datagram() {
    let cluster = Cluster::new();
    let listen: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let (tx, mut received) = tokio::sync::mpsc::channel(1);
    let a = Transport::builder(cluster.identity("a"), listen).bind().unwrap();
    let b = Transport::builder(cluster.identity("b"), listen).on_datagram(tx).bind().unwrap();
    let packet = bytes::Bytes::from(vec![7u8; DEFAULT_MAX_PACKET_SIZE]);
    // Datagrams may be lost: send until one arrives.
    let arrived = tokio::time::timeout(CAP, async {
        loop {
            a.send_datagram(b.local_addr(), packet.clone()).await.expect("a full-size packet is not refused");
            if let Ok(datagram) = tokio::time::timeout(Duration::from_millis(200), received.recv()).await {
                break datagram.unwrap();
            }
        }
    });
    let datagram = arrived.await.expect("a datagram arrives");
    assert_eq!((datagram.peer.name.as_str(), datagram.payload), ("a", packet));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_nodes_in_three_regions_converge() {
    let cluster = Cluster::new();
    let regions = ["iad", "iad", "fra", "fra", "sin"];
    let nodes = converged(&cluster, &regions, fast()).await;
    for node in &nodes {
        let all = node.members.all();
        let seen: Vec<_> = all.iter().map(|m| (m.node.id.as_str(), m.node.region.as_str())).collect();
        assert_eq!(seen, [("n0", "iad"), ("n1", "iad"), ("n2", "fra"), ("n3", "fra"), ("n4", "sin")]);
        for (member, other) in all.iter().zip(&nodes) {
            assert_eq!(member.local, other.name == node.name);
            assert_eq!(member.node.quic_addr, other.addr());
            assert_eq!(member.node.zone.as_deref(), Some(format!("{}-a", member.node.region).as_str()));
            assert_eq!(member.node.gateway_url, format!("http://{}.test:6420", other.name));
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_that_vanishes_is_eventually_marked_down_by_all_others() {
    let cluster = Cluster::new();
    let mut nodes = converged(&cluster, &["iad", "fra", "sin", "fra"], fast()).await;
    let crashed = nodes.pop().unwrap();
    let name = crashed.name.clone();
    drop(crashed); // no farewell: the membership task stops and the transport closes
    eventually("every other node sees the vanished node down", || {
        nodes.iter().all(|node| node.members.get(&name).is_some_and(|m| m.state == MemberState::Down))
    })
    .await;
    for node in &nodes {
        for other in &nodes {
            assert!(node.sees(other).unwrap().state.is_live(), "{} still sees {} live", node.name, other.name);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_that_leaves_is_seen_down_without_waiting_for_suspicion() {
    let cluster = Cluster::new();
    // Suspicion alone would take over a minute: a node seen down within the cap was seen down because it left.
    let timing = Timing { suspect_to_down_after: Duration::from_secs(90), ..fast() };
    let mut nodes = converged(&cluster, &["iad", "fra", "sin", "iad", "fra"], timing).await;
    let leaving = nodes.pop().unwrap();
    let name = leaving.name.clone();
    let members = leaving.members.clone();
    leaving.membership.leave().await.unwrap();
    assert_eq!(members.local().state, MemberState::Down, "the node sees itself gone");
    leaving.transport.close().await;
    eventually("every other node sees the leaver down", || {
        nodes.iter().all(|node| node.members.get(&name).is_some_and(|m| m.state == MemberState::Down))
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn load_updates_reach_every_node() {
    let cluster = Cluster::new();
    let nodes = converged(&cluster, &["iad", "iad", "fra", "sin", "sin"], fast()).await;
    let load = |i: usize, round: u64| Load { awake_actors: 100 * round + i as u64, open_databases: i as u64 };
    for round in 1..=2 {
        for (i, node) in nodes.iter().enumerate() {
            node.membership.set_load(load(i, round)).await.unwrap();
        }
        eventually(&format!("round {round}: every node sees every node's load"), || {
            nodes.iter().all(|a| nodes.iter().enumerate().all(|(i, b)| a.sees(b).unwrap().load == Some(load(i, round))))
        })
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_node_is_seen_alive_again_as_its_new_generation() {
    let cluster = Cluster::new();
    let mut nodes = converged(&cluster, &["iad", "fra", "sin", "iad"], fast()).await;
    let old = nodes.pop().unwrap();
    let (name, addr) = (old.name.clone(), old.addr());
    drop(old);
    eventually("the others see the old run down", || {
        nodes.iter().all(|node| node.members.get(&name).is_some_and(|m| m.state == MemberState::Down))
    })
    .await;

    // The same node (same certificate, same address) comes back as generation 2.
    let mut restarted = None;
    poll("the old run's address is free again", || {
        restarted = start_at(&cluster, &name, "iad", addr, 2, fast()).ok();
        std::future::ready(restarted.is_some())
    })
    .await;
    let restarted = restarted.unwrap();
    let seeds: Vec<_> = nodes.iter().map(Node::addr).collect();
    poll("the restarted node reaches a seed", || async { restarted.membership.join(seeds.clone()).await.is_ok() })
        .await;
    // The new run may itself be declared down before word of it spreads (the others' transports take a moment to
    // reach the new endpoint) and come back as generation 3: any run after the old one will do, as long as it is
    // the one running.
    eventually("every node sees the new run alive", || {
        let current = restarted.members.local().node;
        current.generation >= 2
            && nodes
                .iter()
                .all(|node| node.sees(&restarted).is_some_and(|m| m.state == MemberState::Alive && m.node == current))
            && nodes.iter().all(|node| restarted.sees(node).is_some_and(|m| m.state == MemberState::Alive))
    })
    .await;
}
