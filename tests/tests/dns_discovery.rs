//! DNS seed discovery, against an in-process DNS server (hickory-server, [`tern_tests::dns`]).
//!
//! First the resolution of `--join` seeds ([`tern_node::cluster::discovery::resolve`]) in the zone `tern.test.`:
//! SRV names, names with only A/AAAA records, unknown names, duplicates.
//!
//! Then real `tern node` processes on loopback: node A starts alone; the DNS server (zone `cluster.test.`) names it
//! with an SRV record and an A record; node B joins through `--join dns:_tern._udp.cluster.test` (SRV: A's host and
//! QUIC port) and node C through `--join dns:a.cluster.test:PORT` (no SRV record: A record and the given port),
//! both with `--dns-server`. All three must list each other alive. The binary is `target/debug/tern`.

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::Path;
use std::time::Duration;

use hickory_server::proto::rr::RData;
use hickory_server::proto::rr::rdata::{A, AAAA, SRV};
use serde_json::Value;
use tern_node::cluster::discovery::{dns_resolver, resolve};
use tern_tests::dns::{dns_server, name};
use tern_tests::{TernProcess, eventually, free_udp_port, tern_binary};

/// The admin token every node of this test runs with.
const TOKEN: &str = "dns-s3cret";
/// How long the nodes may take to see each other once all are started.
const CONVERGE_CAP: Duration = Duration::from_secs(30);

fn a(ip: [u8; 4]) -> RData {
    RData::A(A(Ipv4Addr::from(ip)))
}

fn srv(priority: u16, port: u16, target: &str) -> RData {
    RData::SRV(SRV::new(priority, 10, port, name(target)))
}

fn addrs(list: &[&str]) -> Vec<SocketAddr> {
    list.iter().map(|addr| addr.parse().unwrap()).collect()
}

/// A DNS server for `tern.test.` with two SRV names (one with a target that has no address), and plain names.
async fn test_zone() -> SocketAddr {
    dns_server(
        "tern.test.",
        vec![
            ("seed1.tern.test.", a([10, 0, 0, 1])),
            ("seed1.tern.test.", RData::AAAA(AAAA(Ipv6Addr::LOCALHOST))),
            ("seed2.tern.test.", a([10, 0, 0, 2])),
            ("_tern._udp.tern.test.", srv(10, 7421, "seed1.tern.test.")),
            ("_tern._udp.tern.test.", srv(20, 7422, "seed2.tern.test.")),
            // A target without an address is skipped; the others still count.
            ("_partial._udp.tern.test.", srv(10, 7423, "missing.tern.test.")),
            ("_partial._udp.tern.test.", srv(20, 7424, "seed2.tern.test.")),
            ("plain.tern.test.", a([10, 0, 0, 3])),
        ],
    )
    .await
}

#[tokio::test]
async fn srv_names_resolve_to_their_targets_with_their_ports() {
    let server = Some(test_zone().await);
    let mut found = resolve(&["dns:_tern._udp.tern.test".into()], server).await;
    found.sort();
    assert_eq!(found, addrs(&["10.0.0.1:7421", "10.0.0.2:7422", "[::1]:7421"]));
    // SRV ports win over the seed's own.
    let mut found = resolve(&["dns:_tern._udp.tern.test.:9999".into()], server).await;
    found.sort();
    assert_eq!(found, addrs(&["10.0.0.1:7421", "10.0.0.2:7422", "[::1]:7421"]));
    // hickory-server sends the first target's addresses as additional records but not the second's, so both
    // ways of resolving a target are taken above.
    let srv = dns_resolver(server).unwrap().srv_lookup("_tern._udp.tern.test.").await.unwrap();
    assert!(srv.additionals().iter().any(|record| record.name == name("seed1.tern.test.")));
    let found = resolve(&["dns:_partial._udp.tern.test".into()], server).await;
    assert_eq!(found, addrs(&["10.0.0.2:7424"]));
}

#[tokio::test]
async fn names_without_srv_records_resolve_with_the_given_or_default_port() {
    let server = Some(test_zone().await);
    assert_eq!(resolve(&["dns:plain.tern.test".into()], server).await, addrs(&["10.0.0.3:7420"]));
    assert_eq!(resolve(&["dns:plain.tern.test:7500".into()], server).await, addrs(&["10.0.0.3:7500"]));
}

#[tokio::test]
async fn unknown_names_yield_nothing_and_other_seeds_still_count() {
    let server = Some(test_zone().await);
    assert!(resolve(&["dns:nope.tern.test".into()], server).await.is_empty());
    let seeds = ["dns:nope.tern.test".into(), "dns:plain.tern.test".into(), "127.0.0.1:7430".into()];
    assert_eq!(resolve(&seeds, server).await, addrs(&["10.0.0.3:7420", "127.0.0.1:7430"]));
    // Duplicates collapse.
    let twice = ["127.0.0.1:7430".into(), "127.0.0.1:7430".into()];
    assert_eq!(resolve(&twice, server).await, addrs(&["127.0.0.1:7430"]));
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
    let response = tern_tests::http_client().get(url).bearer_auth(TOKEN).send().await.ok()?;
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
    let dns = dns_server(
        "cluster.test.",
        vec![
            ("a.cluster.test.", RData::A(A(Ipv4Addr::LOCALHOST))),
            ("_tern._udp.cluster.test.", RData::SRV(SRV::new(10, 10, a_port, name("a.cluster.test.")))),
        ],
    )
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
