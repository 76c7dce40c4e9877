//! Real QUIC between endpoints on 127.0.0.1: requests, datagrams and streams, concurrently, in both directions.

mod common;

use std::collections::HashSet;
use std::net::SocketAddr;

use bytes::Bytes;
use common::{Cluster, Node, TEST_SERVICE, ask, eventually, start, test_config};
use tern_replication::{Error, ProtocolVersion, Service};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_call_each_other_on_one_connection() {
    let cluster = Cluster::new();
    let a = start(&cluster, "node-a", test_config());
    let b = start(&cluster, "node-b", test_config());

    let peer = a.transport.connect(b.addr()).await.unwrap();
    assert_eq!(peer.name, "node-b");
    assert!(peer.names.iter().any(|n| n == "localhost") && peer.names.iter().any(|n| n == "127.0.0.1"));
    assert_eq!((peer.addr, peer.version), (b.addr(), ProtocolVersion::V2));

    assert_eq!(
        ask(&a.transport, b.addr(), "hello").await.unwrap(),
        format!("node-b got hello from node-a at {} (tern/2)", a.addr())
    );
    // b calls back on the connection a dialled: one connection serves both directions.
    assert_eq!(
        ask(&b.transport, a.addr(), "hi").await.unwrap(),
        format!("node-a got hi from node-b at {} (tern/2)", b.addr())
    );
    assert_eq!((a.transport.open_connections(), b.transport.open_connections()), (1, 1));

    // A handler's error reaches the caller, and the connection stays usable.
    let error = ask(&a.transport, b.addr(), "fail").await.unwrap_err();
    assert!(matches!(&error, Error::Remote { addr, message } if *addr == b.addr() && message == "the handler refused"));
    let error = ask(&a.transport, b.addr(), "panic").await.unwrap_err();
    assert!(matches!(&error, Error::Remote { message, .. } if message == "the request handler panicked"), "{error}");
    assert!(ask(&a.transport, b.addr(), "again").await.is_ok());
    assert_eq!(a.transport.open_connections(), 1);

    // A service the peer does not serve is refused by name, for requests and streams, on the same connection.
    let error = a.transport.request(b.addr(), Service(99), Bytes::from_static(b"x")).await.unwrap_err();
    assert_eq!(error, Error::UnknownService { addr: b.addr(), service: 99 });
    assert!(error.to_string().contains("does not serve service 99"), "{error}");
    let (mut send, mut recv) = a.transport.open_bi(b.addr(), Service(99), Bytes::from_static(b"h")).await.unwrap();
    let _ = send.write_all(b"data").await;
    assert!(recv.read_to_end(16).await.is_err(), "a stream for an unknown service is refused");
    assert!(ask(&a.transport, b.addr(), "still there").await.is_ok());
    assert_eq!(a.transport.open_connections(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_exchange_requests_and_datagrams_concurrently() {
    let cluster = Cluster::new();
    let mut nodes: Vec<Node> = ["n1", "n2", "n3"].iter().map(|n| start(&cluster, n, test_config())).collect();
    let addrs: Vec<(String, SocketAddr)> = nodes.iter().map(|n| (n.transport.name().to_string(), n.addr())).collect();

    // Every node receives datagrams in the background.
    let mut collectors = Vec::new();
    for node in &mut nodes {
        let mut datagrams = std::mem::replace(&mut node.datagrams, tokio::sync::mpsc::channel(1).1);
        let expected = addrs.clone();
        collectors.push(tokio::spawn(async move {
            let mut seen = HashSet::new();
            while seen.len() < 2 {
                let datagram = datagrams.recv().await.unwrap();
                let (name, addr) = expected.iter().find(|(name, _)| *name == datagram.peer.name).unwrap();
                assert_eq!(datagram.peer.addr, *addr, "a datagram carries its sender's address");
                assert_eq!(datagram.payload, Bytes::from(format!("ping from {name}")));
                seen.insert(name.clone());
            }
        }));
    }

    // 25 concurrent requests on each of the 6 ordered pairs, while datagrams fly.
    let mut calls = Vec::new();
    for from in &nodes {
        for (to_name, to) in addrs.iter().filter(|(name, _)| name != from.transport.name()) {
            for i in 0..25 {
                let (transport, to, to_name) = (from.transport.clone(), *to, to_name.clone());
                calls.push(tokio::spawn(async move {
                    let body = format!("call {i}");
                    let response = ask(&transport, to, &body).await.unwrap();
                    let expected = format!(
                        "{to_name} got {body} from {} at {} (tern/2)",
                        transport.name(),
                        transport.local_addr()
                    );
                    assert_eq!(response, expected);
                }));
            }
        }
    }
    let senders: Vec<_> = nodes.iter().map(|n| n.transport.clone()).collect();
    let (senders, peers, listening) = (&senders, &addrs, &collectors);
    eventually("every node hears a datagram from every other", move || async move {
        for from in senders {
            for (_, to) in peers.iter().filter(|(_, addr)| *addr != from.local_addr()) {
                from.send_datagram(*to, Bytes::from(format!("ping from {}", from.name()))).await.unwrap();
            }
        }
        listening.iter().all(|c| c.is_finished()).then_some(())
    })
    .await;
    for collector in collectors {
        collector.await.unwrap();
    }
    for call in calls {
        call.await.unwrap();
    }
    for node in &nodes {
        assert!(node.transport.open_connections() <= 4, "at most one connection per peer and direction");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_carry_bulk_data_with_a_header() {
    let cluster = Cluster::new();
    let a = start(&cluster, "node-a", test_config());
    let mut b = start(&cluster, "node-b", test_config());

    // Unidirectional: 4 MiB in 64 KiB writes.
    let chunk = vec![7u8; 64 << 10];
    let mut send =
        a.transport.open_uni(b.addr(), TEST_SERVICE, Bytes::from_static(b"wal actor-1 from 42")).await.unwrap();
    let writer = tokio::spawn(async move {
        for _ in 0..64 {
            send.write_all(&chunk).await.unwrap();
        }
        send.finish().unwrap();
    });
    let mut incoming = b.streams.recv().await.unwrap();
    assert_eq!((incoming.peer.name.as_str(), &incoming.header[..]), ("node-a", &b"wal actor-1 from 42"[..]));
    assert!(incoming.send.is_none());
    let data = incoming.recv.read_to_end(8 << 20).await.unwrap();
    assert_eq!(data.len(), 4 << 20);
    assert!(data.iter().all(|&byte| byte == 7));
    writer.await.unwrap();

    // Bidirectional: the receiver answers on the same stream.
    let (mut send, mut recv) = a.transport.open_bi(b.addr(), TEST_SERVICE, Bytes::from_static(b"echo")).await.unwrap();
    send.write_all(b"round trip").await.unwrap();
    send.finish().unwrap();
    let mut incoming = b.streams.recv().await.unwrap();
    assert_eq!(&incoming.header[..], b"echo");
    let body = incoming.recv.read_to_end(1024).await.unwrap();
    let mut answer = incoming.send.take().unwrap();
    answer.write_all(&body).await.unwrap();
    answer.finish().unwrap();
    assert_eq!(recv.read_to_end(1024).await.unwrap(), b"round trip");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_without_a_stream_receiver_refuses_streams() {
    let cluster = Cluster::new();
    let a = start(&cluster, "node-a", test_config());
    let b = tern_replication::Transport::builder(cluster.identity("node-b"), "127.0.0.1:0".parse().unwrap())
        .config(test_config())
        .bind()
        .unwrap();
    let (mut send, mut recv) =
        a.transport.open_bi(b.local_addr(), TEST_SERVICE, Bytes::from_static(b"bulk")).await.unwrap();
    let _ = send.write_all(b"data").await;
    let error = recv.read_to_end(1024).await.unwrap_err();
    assert!(error.to_string().contains("reset by peer"), "{error}");
    // ... and refuses requests by service, as it registered no handler.
    let error = ask(&a.transport, b.local_addr(), "hello").await.unwrap_err();
    assert_eq!(error, Error::UnknownService { addr: b.local_addr(), service: TEST_SERVICE.0 });
}
