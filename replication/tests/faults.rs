//! Failures: peers that go away and come back, unreachable peers, oversize frames, timeouts.

mod common;

use std::collections::HashSet;
use std::time::Duration;

use bytes::Bytes;
use common::{CAP, Cluster, TEST_SERVICE, ask, eventually, start, start_at, test_config};
use tern_replication::{Error, TransportConfig};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_that_restarts_is_reached_again_after_backoff() {
    let cluster = Cluster::new();
    let a = start(&cluster, "node-a", test_config());
    let b = start(&cluster, "node-b", test_config());
    let b_addr = b.addr();
    assert!(ask(&a.transport, b_addr, "before").await.is_ok());

    b.transport.close().await;
    let error = ask(&b.transport, a.addr(), "from the grave").await.unwrap_err();
    assert_eq!(error, Error::Shutdown);
    drop(b);
    // While b is down, calls fail as unreachable: by dialling, or at once while b is in backoff (or, for a call
    // that left before b's close reached a, unanswered).
    for _ in 0..3 {
        let error = ask(&a.transport, b_addr, "anyone?").await.unwrap_err();
        let failed =
            matches!(&error, Error::Unreachable { addr, .. } | Error::Unanswered { addr, .. } if *addr == b_addr);
        assert!(failed, "{error}");
    }

    let b = eventually("b restarts on its address", || async {
        start_at(cluster.identity("node-b"), b_addr, test_config()).ok()
    })
    .await;
    let response = eventually("a reaches b again", || async { ask(&a.transport, b_addr, "after").await.ok() }).await;
    assert!(response.starts_with("node-b got after from node-a"), "{response}");
    assert_eq!(b.addr(), b_addr);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_that_crashes_and_restarts_is_reached_again() {
    let cluster = Cluster::new();
    // An idle timeout far beyond the cap: a is told of the restart by b's stateless reset, not by silence.
    let patient = TransportConfig { idle_timeout: Duration::from_secs(600), ..test_config() };
    let a = start(&cluster, "node-a", patient);

    // b runs on a runtime of its own, dropped without closing anything: a crash, as far as a can tell. It crashes
    // while its handler holds a request from a.
    let identity = cluster.identity("node-b");
    let (addr_tx, addr_rx) = std::sync::mpsc::channel();
    let b_thread = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
        let mut b =
            runtime.block_on(async { start_at(identity, "127.0.0.1:0".parse().unwrap(), test_config()).unwrap() });
        addr_tx.send(b.addr()).unwrap();
        runtime.block_on(b.sleeping.recv()).unwrap();
        drop(runtime);
        drop(b);
    });
    let b_addr = addr_rx.recv().unwrap();
    assert!(ask(&a.transport, b_addr, "before").await.is_ok());
    let transport = a.transport.clone();
    let in_flight = tokio::spawn(async move {
        transport.request_with_timeout(b_addr, TEST_SERVICE, Bytes::from_static(b"sleep"), CAP).await
    });
    b_thread.join().unwrap();

    let _b = eventually("b restarts on its address", || async {
        start_at(cluster.identity("node-b"), b_addr, test_config()).ok()
    })
    .await;
    let response = eventually("a reaches b again", || async {
        a.transport
            .request_with_timeout(b_addr, TEST_SERVICE, Bytes::from_static(b"after"), Duration::from_secs(1))
            .await
            .ok()
    })
    .await;
    assert!(response.starts_with(b"node-b got after from node-a"));
    // The request b's handler held when it crashed may have run: a says so.
    let error = in_flight.await.unwrap().unwrap_err();
    assert!(matches!(&error, Error::Unanswered { addr, .. } if *addr == b_addr), "{error}");
    assert!(error.may_have_run());
}

/// The destination connection ids of the QUIC Initial packets waiting on `socket`: one per dial.
fn dials_received(socket: &std::net::UdpSocket) -> HashSet<Vec<u8>> {
    let mut dials = HashSet::new();
    let mut packet = [0u8; 2048];
    while let Ok(len) = socket.recv(&mut packet) {
        // Long header: flags (1), version (4), destination connection id length (1), destination connection id.
        if len > 6 && packet[0] & 0x80 != 0 {
            let cid_len = usize::from(packet[5]);
            dials.insert(packet[6..(6 + cid_len).min(len)].to_vec());
        }
    }
    dials
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_to_an_unreachable_peer_back_off() {
    let cluster = Cluster::new();
    let silent = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    silent.set_nonblocking(true).unwrap();
    let silent_addr = silent.local_addr().unwrap();
    let config = TransportConfig {
        connect_timeout: Duration::from_secs(2),
        backoff_initial: Duration::from_secs(3600),
        backoff_max: Duration::from_secs(3600),
        ..test_config()
    };
    let a = start(&cluster, "node-a", config);

    let error = a.transport.connect(silent_addr).await.unwrap_err();
    assert!(
        matches!(&error, Error::Unreachable { addr, reason } if *addr == silent_addr && reason.contains("no answer"))
    );
    assert!(!error.may_have_run(), "nothing was sent");
    // In backoff, calls fail at once with the last error, even with a timeout shorter than a dial.
    for _ in 0..10 {
        let call = a.transport.request_with_timeout(
            silent_addr,
            TEST_SERVICE,
            Bytes::from_static(b"x"),
            Duration::from_secs(1),
        );
        assert_eq!(call.await.unwrap_err(), error);
        assert_eq!(a.transport.send_datagram(silent_addr, Bytes::from_static(b"x")).await.unwrap_err(), error);
    }
    assert_eq!(dials_received(&silent).len(), 1, "one dial only");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversize_frames_are_refused() {
    let cluster = Cluster::new();
    let small = start(&cluster, "small", TransportConfig { max_frame_size: 1024, ..test_config() });
    let large = start(&cluster, "large", test_config());
    let too_large = |size: u64| Error::FrameTooLarge { size, limit: 1024 };

    // The sender refuses what is over its own limit, without touching the network.
    let error = small.transport.request(large.addr(), TEST_SERVICE, Bytes::from(vec![0; 2048])).await.unwrap_err();
    assert_eq!(error, too_large(2048));
    assert_eq!(small.transport.open_connections(), 0);
    let error = small.transport.open_uni(large.addr(), TEST_SERVICE, Bytes::from(vec![0; 2048])).await.unwrap_err();
    assert_eq!(error, too_large(2048));

    // The receiver refuses a request over its limit and tells the caller.
    let error = large.transport.request(small.addr(), TEST_SERVICE, Bytes::from(vec![0; 2048])).await.unwrap_err();
    assert_eq!(error, too_large(2048));
    // A response over the caller's limit, and one over the responder's.
    assert_eq!(ask(&small.transport, large.addr(), "big:4096").await.unwrap_err(), too_large(4096));
    assert_eq!(ask(&large.transport, small.addr(), "big:4096").await.unwrap_err(), too_large(4096));
    // Frames at the limit pass, and the connections are still good.
    assert_eq!(ask(&large.transport, small.addr(), "big:1024").await.unwrap().len(), 1024);
    assert!(ask(&small.transport, large.addr(), "fine").await.is_ok());

    // A datagram over what the path carries.
    let error = large.transport.send_datagram(small.addr(), Bytes::from(vec![0; 64 << 10])).await.unwrap_err();
    assert!(matches!(error, Error::FrameTooLarge { size: 65536, limit } if (1000..65536).contains(&limit)), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_timeouts_fire_and_drop_the_handler() {
    let cluster = Cluster::new();
    let a = start(&cluster, "node-a", TransportConfig { request_timeout: Duration::from_millis(300), ..test_config() });
    let mut b = start(&cluster, "node-b", test_config());
    let b_addr = b.addr();
    let patiently = |body: &'static str| a.transport.request_with_timeout(b_addr, TEST_SERVICE, Bytes::from(body), CAP);
    assert!(patiently("warm up").await.is_ok());

    let error = ask(&a.transport, b.addr(), "sleep").await.unwrap_err();
    let no_answer = |after: &str| Error::Unanswered { addr: b_addr, reason: format!("no answer within {after}") };
    assert_eq!(error, no_answer("300ms"));
    assert!(error.may_have_run(), "the handler got the request");
    // b drops the handler once a gave up.
    tokio::time::timeout(CAP, b.cancelled.recv()).await.unwrap().unwrap();

    let call = a.transport.request_with_timeout(
        b.addr(),
        TEST_SERVICE,
        Bytes::from_static(b"sleep"),
        Duration::from_millis(50),
    );
    assert_eq!(call.await.unwrap_err(), no_answer("50ms"));
    tokio::time::timeout(CAP, b.cancelled.recv()).await.unwrap().unwrap();
    assert!(patiently("still there").await.is_ok());
}
