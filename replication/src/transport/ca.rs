//! The cluster CA and node certificates: `tern ca init` and `tern ca issue`, and loading a node's identity.
//!
//! A cluster directory holds `ca.pem` and `ca.key` (the CA, made once by [`init_ca`]) and one `NAME.pem` +
//! `NAME.key` per node (made by [`issue_node`]). Every node needs `ca.pem` and its own pair; only the machine that
//! issues certificates needs `ca.key`. Keys are ECDSA P-256, written with mode 0600. Neither function overwrites
//! an existing file.

use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::net::IpAddr;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use time::{Duration, OffsetDateTime};

use super::tls;

/// File name of the cluster CA's certificate.
pub const CA_CERT_FILE: &str = "ca.pem";
/// File name of the cluster CA's private key.
pub const CA_KEY_FILE: &str = "ca.key";

/// How long the CA certificate is valid.
const CA_VALIDITY: Duration = Duration::days(10 * 365);
/// How long a node certificate is valid.
const NODE_VALIDITY: Duration = Duration::days(5 * 365);
/// Certificates are valid from a little before their issue, so that peers with a clock slightly behind accept
/// them.
const BACKDATE: Duration = Duration::hours(1);

/// A failure to make, write or load certificates.
#[derive(Debug, thiserror::Error)]
pub enum CaError {
    /// The file exists already; certificates and keys are never overwritten.
    #[error("{} already exists; refusing to overwrite it", path.display())]
    AlreadyExists {
        /// The existing file.
        path: PathBuf,
    },
    /// The node name cannot be used in a certificate or as a file name.
    #[error("invalid node name {name:?}: {reason}")]
    InvalidName {
        /// The name given.
        name: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A file could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
    /// A file does not hold what it should (PEM certificate or key, a certificate signed by the CA, ...).
    #[error("{}: {reason}", path.display())]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// Generating a key or a certificate failed.
    #[error("certificate generation failed: {0}")]
    Generate(#[from] rcgen::Error),
}

/// The certificate and key files written by [`init_ca`] or [`issue_node`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertFiles {
    /// The certificate (PEM).
    pub cert: PathBuf,
    /// The private key (PEM, PKCS#8, mode 0600).
    pub key: PathBuf,
}

/// Creates the cluster CA in `dir` (created if missing): `ca.pem` and `ca.key`. Refuses if either file exists.
pub fn init_ca(dir: &Path) -> Result<CertFiles, CaError> {
    let files = CertFiles { cert: dir.join(CA_CERT_FILE), key: dir.join(CA_KEY_FILE) };
    refuse_existing(&files)?;
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    params.distinguished_name.push(DnType::OrganizationName, "Tern");
    params.distinguished_name.push(DnType::CommonName, "Tern cluster CA");
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
    set_validity(&mut params, CA_VALIDITY);
    let key = KeyPair::generate()?;
    let cert = params.self_signed(&key)?;
    write_new(dir, &files.key, &key.serialize_pem(), 0o600)?;
    write_new(dir, &files.cert, &cert.pem(), 0o644)?;
    Ok(files)
}

/// Issues a certificate for node `node_name`, signed by the CA in `dir`: `NAME.pem` and `NAME.key`. Refuses if
/// either file exists.
///
/// The certificate's common name is the node name; its subject alternative names are the node name (a DNS name,
/// or an IP address if it parses as one) plus `localhost` and `127.0.0.1`, so the same certificates serve local
/// clusters. It is usable for both TLS server and TLS client authentication, as nodes are both.
pub fn issue_node(dir: &Path, node_name: &str) -> Result<CertFiles, CaError> {
    validate_node_name(node_name)?;
    let files = CertFiles { cert: dir.join(format!("{node_name}.pem")), key: dir.join(format!("{node_name}.key")) };
    refuse_existing(&files)?;
    let ca_cert_path = dir.join(CA_CERT_FILE);
    let ca_key_path = dir.join(CA_KEY_FILE);
    let ca_key = KeyPair::from_pem(&read_string(&ca_key_path)?)
        .map_err(|e| CaError::Invalid { path: ca_key_path, reason: format!("not a usable private key: {e}") })?;
    let issuer = Issuer::from_ca_cert_pem(&read_string(&ca_cert_path)?, ca_key)
        .map_err(|e| CaError::Invalid { path: ca_cert_path, reason: format!("not a usable CA certificate: {e}") })?;

    let mut names = vec![node_name.to_string()];
    names.extend(["localhost", "127.0.0.1"].into_iter().filter(|n| *n != node_name).map(String::from));
    let mut params = CertificateParams::new(names)?;
    params.distinguished_name.push(DnType::OrganizationName, "Tern");
    params.distinguished_name.push(DnType::CommonName, node_name);
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth, ExtendedKeyUsagePurpose::ClientAuth];
    params.use_authority_key_identifier_extension = true;
    set_validity(&mut params, NODE_VALIDITY);
    let key = KeyPair::generate()?;
    let cert = params.signed_by(&key, &issuer)?;
    write_new(dir, &files.key, &key.serialize_pem(), 0o600)?;
    write_new(dir, &files.cert, &cert.pem(), 0o644)?;
    Ok(files)
}

/// A node's TLS identity: the cluster CA it trusts, and its own certificate chain and key.
pub struct NodeIdentity {
    pub(crate) name: String,
    pub(crate) ca: CertificateDer<'static>,
    pub(crate) chain: Vec<CertificateDer<'static>>,
    pub(crate) key: PrivateKeyDer<'static>,
}

impl NodeIdentity {
    /// Loads node `node_name`'s identity from a directory laid out by [`init_ca`] and [`issue_node`]:
    /// `ca.pem`, `NAME.pem` and `NAME.key` (`ca.key` is not needed).
    pub fn load(dir: &Path, node_name: &str) -> Result<Self, CaError> {
        validate_node_name(node_name)?;
        Self::from_files(
            &dir.join(CA_CERT_FILE),
            &dir.join(format!("{node_name}.pem")),
            &dir.join(format!("{node_name}.key")),
        )
    }

    /// Loads an identity from the CA certificate, the node certificate (chain) and its key, all PEM (the
    /// `--tls-ca`, `--tls-cert` and `--tls-key` flags). Checks that the certificate is signed by the CA.
    pub fn from_files(ca_cert: &Path, node_cert: &Path, node_key: &Path) -> Result<Self, CaError> {
        let invalid = |path: &Path, reason: String| CaError::Invalid { path: path.to_path_buf(), reason };
        let mut cas = read_certs(ca_cert)?;
        if cas.len() != 1 {
            return Err(invalid(ca_cert, format!("expected one CA certificate, found {}", cas.len())));
        }
        let ca = cas.remove(0);
        let chain = read_certs(node_cert)?;
        let Some(leaf) = chain.first() else {
            return Err(invalid(node_cert, "no certificate found".into()));
        };
        tls::verify_chain(&ca, leaf, &chain[1..]).map_err(|e| {
            invalid(node_cert, format!("not a node certificate of the CA in {}: {e}", ca_cert.display()))
        })?;
        let name = tls::cert_names(leaf).map_err(|reason| invalid(node_cert, reason))?.0;
        let key = PrivateKeyDer::from_pem_slice(read_string(node_key)?.as_bytes())
            .map_err(|e| invalid(node_key, format!("no usable private key: {e}")))?;
        Ok(Self { name, ca, chain, key })
    }

    /// The node's name: its certificate's common name.
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl std::fmt::Debug for NodeIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeIdentity").field("name", &self.name).finish_non_exhaustive()
    }
}

/// A node name must be usable as a certificate name and as a file name: a DNS name (letters, digits, `-` and `.`)
/// or an IP address, and not `ca`.
fn validate_node_name(name: &str) -> Result<(), CaError> {
    let fail = |reason| Err(CaError::InvalidName { name: name.to_string(), reason });
    if name.parse::<IpAddr>().is_ok() {
        return Ok(());
    }
    if name.is_empty() || name.len() > 253 {
        return fail("must have 1 to 253 characters");
    }
    if !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.') {
        return fail("may only contain ASCII letters, digits, '-' and '.'");
    }
    if name.split('.').any(|label| label.is_empty() || label.starts_with('-') || label.ends_with('-')) {
        return fail("each dot-separated part must be non-empty and may not begin or end with '-'");
    }
    if name.eq_ignore_ascii_case("ca") {
        return fail("`ca` is the cluster CA's own file name");
    }
    Ok(())
}

fn set_validity(params: &mut CertificateParams, validity: Duration) {
    let now = OffsetDateTime::now_utc();
    params.not_before = now - BACKDATE;
    params.not_after = now + validity;
}

fn refuse_existing(files: &CertFiles) -> Result<(), CaError> {
    for path in [&files.cert, &files.key] {
        if path.exists() {
            return Err(CaError::AlreadyExists { path: path.clone() });
        }
    }
    Ok(())
}

/// Writes a new file (never replacing one) with the given mode.
fn write_new(dir: &Path, path: &Path, contents: &str, mode: u32) -> Result<(), CaError> {
    let io_error = |source: io::Error| match source.kind() {
        io::ErrorKind::AlreadyExists => CaError::AlreadyExists { path: path.to_path_buf() },
        _ => CaError::Io { path: path.to_path_buf(), source },
    };
    fs::create_dir_all(dir).map_err(|source| CaError::Io { path: dir.to_path_buf(), source })?;
    let mut file = OpenOptions::new().write(true).create_new(true).mode(mode).open(path).map_err(io_error)?;
    file.write_all(contents.as_bytes()).and_then(|()| file.sync_all()).map_err(io_error)
}

fn read_string(path: &Path) -> Result<String, CaError> {
    fs::read_to_string(path).map_err(|source| CaError::Io { path: path.to_path_buf(), source })
}

fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, CaError> {
    CertificateDer::pem_slice_iter(read_string(path)?.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| CaError::Invalid { path: path.to_path_buf(), reason: format!("malformed PEM certificate: {e}") })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_names() {
        for good in ["node-1", "iad-1.tern.internal", "a", "10.0.0.7", "::1", "Node-A"] {
            assert!(validate_node_name(good).is_ok(), "{good}");
        }
        for bad in ["", "ca", "CA", "a/b", "..", ".a", "a.", "-a", "a-", "a..b", "a_b", "ü", "a b", &"x".repeat(254)] {
            assert!(matches!(validate_node_name(bad), Err(CaError::InvalidName { .. })), "{bad}");
        }
    }
}
