//! Mutual TLS from the cluster CA, and protocol versions negotiated by ALPN.

mod common;

use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use common::{Cluster, ask, eventually, start, test_config};
use quinn::crypto::rustls::QuicClientConfig;
use rustls::RootCertStore;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tern_replication::{CA_CERT_FILE, Error, ProtocolVersion, TransportConfig, issue_node};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_from_another_ca_can_neither_call_nor_be_called() {
    let cluster = Cluster::new();
    let other = Cluster::new();
    let mut a = start(&cluster, "node-a", test_config());
    let rogue = start(&other, "rogue", test_config());

    // The rogue calls: refused. (Its own TLS also rejects our certificate, which is from a CA it does not trust.)
    let error = ask(&rogue.transport, a.addr(), "let me in").await.unwrap_err();
    assert!(matches!(&error, Error::RefusedCertificate { addr, .. } if *addr == a.addr()), "{error}");
    // We call the rogue: refused too.
    let error = ask(&a.transport, rogue.addr(), "hello?").await.unwrap_err();
    assert!(matches!(&error, Error::RefusedCertificate { addr, .. } if *addr == rogue.addr()), "{error}");
    // Datagrams go nowhere either.
    let error = rogue.transport.send_datagram(a.addr(), Bytes::from_static(b"gossip")).await.unwrap_err();
    assert!(matches!(error, Error::RefusedCertificate { .. }), "{error}");
    // A refused peer stays refused (in backoff, then re-dialled and refused again).
    for _ in 0..3 {
        let error = ask(&rogue.transport, a.addr(), "again").await.unwrap_err();
        assert!(matches!(error, Error::RefusedCertificate { .. }), "{error}");
    }
    assert!(a.datagrams.try_recv().is_err(), "no datagram from the rogue was delivered");
    eventually("the refused connections are gone", || async { (a.transport.open_connections() == 0).then_some(()) })
        .await;
}

/// TLS alerts that refuse a certificate (RFC 8446 §6).
const CERTIFICATE_ALERTS: [u64; 9] = [42, 43, 44, 45, 46, 48, 49, 51, 116];

/// Calls `server` with a bare QUIC client that trusts `ca` (so it accepts the server) and presents `client_cert`,
/// and returns why the connection ended.
async fn raw_client_call(
    server: std::net::SocketAddr,
    ca: &Path,
    client_cert: Option<(&Path, &Path)>,
) -> quinn::ConnectionError {
    let mut roots = RootCertStore::empty();
    roots.add(CertificateDer::from_pem_file(ca).unwrap()).unwrap();
    let builder = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_protocol_versions(&[&rustls::version::TLS13])
        .unwrap()
        .with_root_certificates(roots);
    let mut tls = match client_cert {
        Some((cert, key)) => builder
            .with_client_auth_cert(
                vec![CertificateDer::from_pem_file(cert).unwrap()],
                PrivateKeyDer::from_pem_file(key).unwrap(),
            )
            .unwrap(),
        None => builder.with_no_client_auth(),
    };
    tls.alpn_protocols = vec![b"tern/2".to_vec()];
    let mut endpoint = quinn::Endpoint::client("127.0.0.1:0".parse().unwrap()).unwrap();
    endpoint.set_default_client_config(quinn::ClientConfig::new(Arc::new(QuicClientConfig::try_from(tls).unwrap())));
    let conn = match endpoint.connect(server, "localhost").unwrap().await {
        Ok(conn) => conn,
        Err(error) => return error,
    };
    // TLS 1.3: the client may finish its handshake before the server has checked its certificate.
    if let Ok((mut send, mut recv)) = conn.open_bi().await {
        let _ = send.write_all(&[0, 7, 0, 0, 0, 5]).await;
        let _ = send.write_all(b"hello").await;
        let _ = send.finish();
        assert!(recv.read_to_end(1024).await.is_err(), "the server answered a client it should refuse");
    }
    tokio::time::timeout(common::CAP, conn.closed()).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_refuses_clients_without_a_cluster_certificate() {
    let cluster = Cluster::new();
    let other = Cluster::new();
    let a = start(&cluster, "node-a", test_config());
    let foreign = issue_node(other.dir.path(), "rogue").unwrap();
    let ca = cluster.dir.path().join(CA_CERT_FILE);

    for client_cert in [Some((foreign.cert.as_path(), foreign.key.as_path())), None] {
        let reason = raw_client_call(a.addr(), &ca, client_cert).await;
        let quinn::ConnectionError::ConnectionClosed(close) = &reason else { panic!("unexpected end: {reason}") };
        let code = u64::from(close.error_code);
        assert!(code >> 8 == 1 && CERTIFICATE_ALERTS.contains(&(code & 0xff)), "not a certificate refusal: {reason}");
    }
    eventually("the refused connections are gone", || async { (a.transport.open_connections() == 0).then_some(()) })
        .await;
}

fn speaking(versions: &[u16]) -> TransportConfig {
    TransportConfig { versions: versions.iter().map(|&v| ProtocolVersion(v)).collect(), ..test_config() }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alpn_picks_the_highest_common_version() {
    let cluster = Cluster::new();
    let old = start(&cluster, "old", speaking(&[1]));
    let current = start(&cluster, "current", speaking(&[1, 2]));
    let new = start(&cluster, "new", speaking(&[3, 2]));
    let future = start(&cluster, "future", speaking(&[3]));

    // Each pair one version apart speaks its highest common version, whoever dials.
    for (from, to, version) in [(&current, &old, 1), (&old, &current, 1), (&current, &new, 2), (&new, &current, 2)] {
        let peer = from.transport.connect(to.addr()).await.unwrap();
        assert_eq!(peer.version, ProtocolVersion(version));
        let response = ask(&from.transport, to.addr(), "v?").await.unwrap();
        assert!(response.ends_with(&format!("(tern/{version})")), "the handler sees the version too: {response}");
    }

    // No common version: refused with a clear error, both ways.
    let error = ask(&current.transport, future.addr(), "hello").await.unwrap_err();
    assert!(
        matches!(&error, Error::VersionMismatch { addr, ours } if *addr == future.addr() && ours == "tern/2, tern/1")
    );
    assert!(error.to_string().contains("speaks none of our inter-node protocol versions (tern/2, tern/1)"), "{error}");
    let error = ask(&future.transport, current.addr(), "hello").await.unwrap_err();
    assert!(matches!(&error, Error::VersionMismatch { ours, .. } if ours == "tern/3"), "{error}");
    let error = future.transport.connect(old.addr()).await.unwrap_err();
    assert!(matches!(error, Error::VersionMismatch { .. }), "{error}");
}
