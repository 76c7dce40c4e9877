//! An in-process authoritative DNS server (hickory-server) on loopback, for tests of DNS seed discovery.

use std::net::SocketAddr;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use hickory_server::Server;
use hickory_server::net::runtime::TokioRuntimeProvider;
use hickory_server::proto::rr::rdata::SOA;
use hickory_server::proto::rr::{Name, RData, Record};
use hickory_server::store::in_memory::InMemoryZoneHandler;
use hickory_server::zone_handler::{AxfrPolicy, Catalog, ZoneType};

/// Parses a DNS name (e.g. `seed1.tern.test.`); panics if it is not one.
pub fn name(name: &str) -> Name {
    Name::from_str(name).unwrap_or_else(|e| panic!("`{name}` is not a DNS name: {e}"))
}

/// Starts an authoritative DNS server for the zone `origin` (fully qualified, e.g. `tern.test.`) on 127.0.0.1, UDP and TCP on one
/// ephemeral port, serving `records` (owner name, data; TTL 5 s) and a SOA record (`ns.ORIGIN`, `admin.ORIGIN`),
/// and returns its address. It runs as a task of the current Tokio runtime, until that runtime stops.
pub async fn dns_server(origin: &str, records: Vec<(&str, RData)>) -> SocketAddr {
    let soa = SOA::new(name(&format!("ns.{origin}")), name(&format!("admin.{origin}")), 1, 60, 60, 600, 5);
    let origin = name(origin);
    let mut zone =
        InMemoryZoneHandler::<TokioRuntimeProvider>::empty(origin.clone(), ZoneType::Primary, AxfrPolicy::Deny);
    zone.upsert_mut(Record::from_rdata(origin.clone(), 60, RData::SOA(soa)), 1);
    for (owner, data) in records {
        zone.upsert_mut(Record::from_rdata(name(owner), 5, data), 1);
    }
    let mut catalog = Catalog::new();
    catalog.upsert(origin.into(), vec![Arc::new(zone)]);
    let (udp, tcp, addr) = sockets().await;
    let mut server = Server::new(catalog);
    server.register_socket(udp);
    server.register_listener(tcp, Duration::from_secs(5), 64);
    tokio::spawn(async move { server.block_until_done().await });
    addr
}

/// A UDP socket on an ephemeral port of 127.0.0.1 and a TCP listener on the same port: another UDP port is tried
/// while the TCP side of the one the system picked is taken (by another test's process, say).
async fn sockets() -> (tokio::net::UdpSocket, tokio::net::TcpListener, SocketAddr) {
    for _ in 0..100 {
        let udp = tokio::net::UdpSocket::bind("127.0.0.1:0").await.expect("bind a UDP port for the DNS server");
        let addr = udp.local_addr().expect("the DNS server's address");
        if let Ok(tcp) = tokio::net::TcpListener::bind(addr).await {
            return (udp, tcp, addr);
        }
    }
    panic!("no port of 127.0.0.1 was free for both UDP and TCP in 100 tries");
}
