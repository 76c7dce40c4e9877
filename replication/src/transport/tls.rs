//! TLS for the QUIC endpoint: mutual TLS 1.3 from the cluster CA (rustls with ring), ALPN protocol versions, peer
//! names from certificates, and the stateless-reset key.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use quinn::crypto::rustls::{QuicClientConfig, QuicServerConfig};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::{Resumption, verify_server_cert_signed_by_trust_anchor};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms, verify_tls12_signature, verify_tls13_signature};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::{ParsedCertificate, WebPkiClientVerifier};
use rustls::{DigitallySignedStruct, RootCertStore, SignatureScheme};
use x509_parser::extensions::GeneralName;

use super::ca::NodeIdentity;
use super::error::Error;
use super::version::ProtocolVersion;

/// Tunables of the QUIC connections, from [`TransportConfig`](crate::TransportConfig).
pub(crate) struct QuicTuning {
    pub keep_alive_interval: Duration,
    pub idle_timeout: Duration,
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn roots(ca: &CertificateDer<'static>) -> Result<Arc<RootCertStore>, rustls::Error> {
    let mut roots = RootCertStore::empty();
    roots.add(ca.clone())?;
    Ok(Arc::new(roots))
}

/// Checks that `leaf` (with `intermediates`) chains to the CA `ca` and may be used by a node, whatever its names.
pub(crate) fn verify_chain(
    ca: &CertificateDer<'static>,
    leaf: &CertificateDer<'_>,
    intermediates: &[CertificateDer<'_>],
) -> Result<(), rustls::Error> {
    let algorithms = provider().signature_verification_algorithms;
    let cert = ParsedCertificate::try_from(leaf)?;
    verify_server_cert_signed_by_trust_anchor(&cert, &*roots(ca)?, intermediates, UnixTime::now(), algorithms.all)
}

/// The names a certificate carries: its common name (or first subject alternative name when it has none), and
/// all its DNS and IP subject alternative names.
pub(crate) fn cert_names(der: &CertificateDer<'_>) -> Result<(String, Vec<String>), String> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).map_err(|e| format!("malformed certificate: {e}"))?;
    let alt_names: Vec<String> = match cert.subject_alternative_name() {
        Ok(Some(ext)) => ext
            .value
            .general_names
            .iter()
            .filter_map(|name| match name {
                GeneralName::DNSName(dns) => Some(dns.to_string()),
                GeneralName::IPAddress(bytes) => ip_address(bytes).map(|ip| ip.to_string()),
                _ => None,
            })
            .collect(),
        Ok(None) => Vec::new(),
        Err(e) => return Err(format!("malformed subject alternative names: {e}")),
    };
    let common_name = cert.subject().iter_common_name().find_map(|cn| cn.as_str().ok()).map(String::from);
    match common_name.or_else(|| alt_names.first().cloned()) {
        Some(name) => Ok((name, alt_names)),
        None => Err("the certificate names no one: it has neither a common name nor a DNS/IP alternative name".into()),
    }
}

fn ip_address(bytes: &[u8]) -> Option<IpAddr> {
    match bytes.len() {
        4 => <[u8; 4]>::try_from(bytes).ok().map(IpAddr::from),
        _ => <[u8; 16]>::try_from(bytes).ok().map(IpAddr::from),
    }
}

/// Verifies a server's certificate as a member of the cluster: signed by the cluster CA, for TLS servers, valid
/// now. The name it was dialled by is not checked, because nodes are dialled by address (seeds, DNS records,
/// gossip); the peer's certificate names are reported to the application instead.
#[derive(Debug)]
struct ClusterServerVerifier {
    roots: Arc<RootCertStore>,
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for ClusterServerVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let cert = ParsedCertificate::try_from(end_entity)?;
        verify_server_cert_signed_by_trust_anchor(&cert, &self.roots, intermediates, now, self.algorithms.all)?;
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

fn transport(tuning: &QuicTuning) -> Result<Arc<quinn::TransportConfig>, Error> {
    let idle = quinn::IdleTimeout::try_from(tuning.idle_timeout)
        .map_err(|_| Error::Config(format!("idle timeout {:?} is too long", tuning.idle_timeout)))?;
    let mut config = quinn::TransportConfig::default();
    config
        .keep_alive_interval(Some(tuning.keep_alive_interval))
        .max_idle_timeout(Some(idle))
        .max_concurrent_bidi_streams(1024u32.into())
        .max_concurrent_uni_streams(256u32.into())
        .datagram_receive_buffer_size(Some(1 << 20));
    Ok(Arc::new(config))
}

fn alpn(versions: &[ProtocolVersion]) -> Vec<Vec<u8>> {
    versions.iter().map(|v| v.alpn()).collect()
}

fn config_error(e: impl std::fmt::Display) -> Error {
    Error::Config(format!("TLS setup failed: {e}"))
}

/// The server side: requires a client certificate from the cluster CA, and selects the first of `versions`
/// (highest first) that the client offers.
pub(crate) fn server_config(
    identity: &NodeIdentity,
    versions: &[ProtocolVersion],
    tuning: &QuicTuning,
) -> Result<quinn::ServerConfig, Error> {
    let roots = roots(&identity.ca).map_err(config_error)?;
    let verifier = WebPkiClientVerifier::builder_with_provider(roots, provider()).build().map_err(config_error)?;
    let mut tls = rustls::ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(config_error)?
        .with_client_cert_verifier(verifier)
        .with_single_cert(identity.chain.clone(), identity.key.clone_key())
        .map_err(config_error)?;
    tls.alpn_protocols = alpn(versions);
    // No resumption: every connection presents and verifies full certificates.
    tls.send_tls13_tickets = 0;
    let crypto = QuicServerConfig::try_from(tls).map_err(config_error)?;
    let mut config = quinn::ServerConfig::with_crypto(Arc::new(crypto));
    config.transport_config(transport(tuning)?);
    Ok(config)
}

/// The client side: presents the node's certificate, accepts servers with a certificate from the cluster CA, and
/// offers all of `versions`.
pub(crate) fn client_config(
    identity: &NodeIdentity,
    versions: &[ProtocolVersion],
    tuning: &QuicTuning,
) -> Result<quinn::ClientConfig, Error> {
    let verifier = ClusterServerVerifier {
        roots: roots(&identity.ca).map_err(config_error)?,
        algorithms: provider().signature_verification_algorithms,
    };
    let mut tls = rustls::ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(config_error)?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_client_auth_cert(identity.chain.clone(), identity.key.clone_key())
        .map_err(config_error)?;
    tls.alpn_protocols = alpn(versions);
    tls.resumption = Resumption::disabled();
    let crypto = QuicClientConfig::try_from(tls).map_err(config_error)?;
    let mut config = quinn::ClientConfig::new(Arc::new(crypto));
    config.transport_config(transport(tuning)?);
    Ok(config)
}

/// The endpoint's configuration. Its stateless-reset key and connection-id key are derived from the node's private
/// key, so they survive a restart: a node that crashes and comes back on the same address recognises its peers'
/// packets for the old connections as its own and answers them with a valid stateless reset, and the peers
/// re-dial at once instead of waiting for the idle timeout.
pub(crate) fn endpoint_config(identity: &NodeIdentity) -> quinn::EndpointConfig {
    use ring::hmac::{HMAC_SHA256, Key, sign};
    let derive = Key::new(HMAC_SHA256, identity.key.secret_der());
    let reset_secret = sign(&derive, b"tern stateless reset key v1");
    let mut cid_key = [0u8; 8];
    cid_key.copy_from_slice(&sign(&derive, b"tern connection id key v1").as_ref()[..8]);
    let cid_key = u64::from_be_bytes(cid_key);
    let mut config = quinn::EndpointConfig::new(Arc::new(Key::new(HMAC_SHA256, reset_secret.as_ref())));
    config.cid_generator(move || Box::new(quinn_proto::HashedConnectionIdGenerator::from_key(cid_key)));
    config
}
