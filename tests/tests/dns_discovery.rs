//! DNS seed discovery with real `tern node` processes on loopback: node A starts alone; an in-process DNS server
//! (hickory-server, zone `cluster.test.`) names it with an SRV record and an A record; node B joins through
//! `--join dns:_tern._udp.cluster.test` (SRV: A's host and QUIC port) and node C through
//! `--join dns:a.cluster.test:PORT` (no SRV record: A record and the given port), both with `--dns-server`. All
//! three must list each other alive. The binary is `target/debug/tern`.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use hickory_server::Server;
use hickory_server::net::runtime::TokioRuntimeProvider;
use hickory_server::proto::rr::rdata::{A, SOA, SRV};
use hickory_server::proto::rr::{Name, RData, Record};
use hickory_server::store::in_memory::InMemoryZoneHandler;
use hickory_server::zone_handler::{AxfrPolicy, Catalog, ZoneType};
use serde_json::Value;
use tern_tests::{TernProcess, eventually, free_udp_port, tern_binary};

/// The admin token every node of this test runs with.
const TOKEN: &str = "dns-s3cret";
/// How long the nodes may take to see each other once all are started.
const CONVERGE_CAP: Duration = Duration::from_secs(30);

/// Starts an authoritative DNS server for `cluster.test.` on 127.0.0.1 (UDP and TCP on one ephemeral port) with
/// `records` and a SOA record; returns its address. It serves until the test's runtime stops.
async fn dns_server(records: Vec<(&str, RData)>) -> SocketAddr {
    let name = |name: &str| Name::from_str(name).unwrap();
    let origin = name("cluster.test.");
    let mut zone =
        InMemoryZoneHandler::<TokioRuntimeProvider>::empty(origin.clone(), ZoneType::Primary, AxfrPolicy::Deny);
    let soa = SOA::new(name("ns.cluster.test."), name("admin.cluster.test."), 1, 60, 60, 600, 5);
    zone.upsert_mut(Record::from_rdata(origin.clone(), 60, RData::SOA(soa)), 1);
    for (owner, data) in records {
        zone.upsert_mut(Record::from_rdata(name(owner), 5, data), 1);
    }
    let mut catalog = Catalog::new();
    catalog.upsert(origin.into(), vec![Arc::new(zone)]);
    let udp = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let addr = udp.local_addr().unwrap();
    let tcp = tokio::net::TcpListener::bind(addr).await.unwrap();
    let mut server = Server::new(catalog);
    server.register_socket(udp);
    server.register_listener(tcp, Duration::from_secs(5), 64);
    tokio::spawn(async move { server.block_until_done().await });
    addr
}

/// Starts node `name` (region `iad`, LAN timing) with its QUIC transport on 127.0.0.1:`quic_port`, a certificate
/// from the CA in `ca`, data under `work`, and `more` arguments.
fn start_node(ca: &Path, work: &Path, name: &str, quic_port: u16, more: &[&str]) -> TernProcess {
    let files = tern_replication::issue_node(ca, name).unwrap();
    let ca_cert = ca.join(tern_replication::CA_CERT_FILE).display().to_string();
    let (cert, key) = (files.cert.display().to_string(), files.key.display().to_string());
    let quic = format!("127.0.0.1:{quic_port}");
    let mut args = vec!["--region", "iad", "--quic-listen", &quic, "--admin-token", TOKEN, "--profile", "lan"];
    args.extend(["--tls-ca", &ca_cert, "--tls-cert", &cert, "--tls-key", &key]);
    args.extend(more);
    TernProcess::start_node(&tern_binary(), &work.join(name), &args)
}

/// `Some` once `node` lists exactly `ids`, all alive.
async fn lists_alive(node: &TernProcess, ids: &[&str]) -> Option<()> {
    let url = format!("{}/cluster/members", node.endpoint());
    let response = reqwest::Client::new().get(url).bearer_auth(TOKEN).send().await.ok()?;
    let body: Value = response.error_for_status().ok()?.json().await.ok()?;
    let members = body["members"].as_array()?;
    let alive = |id: &&str| members.iter().any(|m| m["id"] == *id && m["state"] == "alive");
    (members.len() == ids.len() && ids.iter().all(alive)).then_some(())
}

// Multi-threaded: the DNS server must keep answering while the test thread blocks on a node's start.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_join_through_dns_srv_and_a_records() {
    let (ca, work) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    tern_replication::init_ca(ca.path()).unwrap();
    let a_port = free_udp_port();
    let dns = dns_server(vec![
        ("a.cluster.test.", RData::A(A(Ipv4Addr::LOCALHOST))),
        ("_tern._udp.cluster.test.", RData::SRV(SRV::new(10, 10, a_port, Name::from_str("a.cluster.test.").unwrap()))),
    ])
    .await
    .to_string();

    let a = start_node(ca.path(), work.path(), "a", a_port, &[]);
    let b = start_node(
        ca.path(),
        work.path(),
        "b",
        free_udp_port(),
        &["--join", "dns:_tern._udp.cluster.test", "--dns-server", &dns],
    );
    let c_seed = format!("dns:a.cluster.test:{a_port}");
    let c = start_node(ca.path(), work.path(), "c", free_udp_port(), &["--join", &c_seed, "--dns-server", &dns]);

    for (id, node) in [("a", &a), ("b", &b), ("c", &c)] {
        let what = format!("{id} lists a, b and c alive (logs: {})", node.log_path().display());
        eventually(&what, CONVERGE_CAP, || lists_alive(node, &["a", "b", "c"])).await;
    }
}
