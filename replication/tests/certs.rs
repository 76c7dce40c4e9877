//! The cluster CA and node certificates on disk: what `tern ca init` and `tern ca issue` write, and loading them.

use std::os::unix::fs::PermissionsExt;

use tern_replication::{CA_CERT_FILE, CA_KEY_FILE, CaError, NodeIdentity, init_ca, issue_node};

#[test]
fn init_writes_the_ca_once() {
    let dir = tempfile::tempdir().unwrap();
    let cluster = dir.path().join("cluster"); // created on demand
    let files = init_ca(&cluster).unwrap();
    assert_eq!(files.cert, cluster.join(CA_CERT_FILE));
    assert_eq!(files.key, cluster.join(CA_KEY_FILE));
    assert!(std::fs::read_to_string(&files.cert).unwrap().starts_with("-----BEGIN CERTIFICATE-----"));
    assert!(std::fs::read_to_string(&files.key).unwrap().contains("PRIVATE KEY-----"));
    assert_eq!(std::fs::metadata(&files.key).unwrap().permissions().mode() & 0o777, 0o600);

    let before = std::fs::read(&files.key).unwrap();
    let error = init_ca(&cluster).unwrap_err();
    assert!(matches!(&error, CaError::AlreadyExists { path } if path.ends_with(CA_CERT_FILE)), "{error}");
    assert!(error.to_string().contains("refusing to overwrite"), "{error}");
    assert_eq!(std::fs::read(&files.key).unwrap(), before, "the CA key was not touched");

    // Only the key left (half a CA): still refused.
    std::fs::remove_file(&files.cert).unwrap();
    assert!(matches!(init_ca(&cluster), Err(CaError::AlreadyExists { path }) if path.ends_with(CA_KEY_FILE)));
}

#[test]
fn issued_certificates_load_with_their_names() {
    let dir = tempfile::tempdir().unwrap();
    init_ca(dir.path()).unwrap();
    let files = issue_node(dir.path(), "iad-1.tern.internal").unwrap();
    assert_eq!(files.cert, dir.path().join("iad-1.tern.internal.pem"));
    assert_eq!(files.key, dir.path().join("iad-1.tern.internal.key"));
    assert_eq!(std::fs::metadata(&files.key).unwrap().permissions().mode() & 0o777, 0o600);

    let identity = NodeIdentity::load(dir.path(), "iad-1.tern.internal").unwrap();
    assert_eq!(identity.name(), "iad-1.tern.internal");
    // The same files through the --tls-ca/--tls-cert/--tls-key path.
    let identity = NodeIdentity::from_files(&dir.path().join(CA_CERT_FILE), &files.cert, &files.key).unwrap();
    assert_eq!(identity.name(), "iad-1.tern.internal");
    // An IP address is a valid node name too.
    issue_node(dir.path(), "10.0.0.7").unwrap();
    assert_eq!(NodeIdentity::load(dir.path(), "10.0.0.7").unwrap().name(), "10.0.0.7");

    let error = issue_node(dir.path(), "iad-1.tern.internal").unwrap_err();
    assert!(matches!(error, CaError::AlreadyExists { .. }), "{error}");
}

#[test]
fn bad_names_and_missing_files_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let error = issue_node(dir.path(), "node-1").unwrap_err();
    assert!(matches!(&error, CaError::Io { path, .. } if path.ends_with(CA_KEY_FILE)), "{error}");
    init_ca(dir.path()).unwrap();
    for name in ["../escape", "ca", "", "a b", "under_score"] {
        let error = issue_node(dir.path(), name).unwrap_err();
        assert!(matches!(error, CaError::InvalidName { .. }), "{name}: {error}");
    }
    let error = NodeIdentity::load(dir.path(), "never-issued").unwrap_err();
    assert!(matches!(&error, CaError::Io { path, .. } if path.ends_with("never-issued.pem")), "{error}");
}

#[test]
fn a_certificate_from_another_ca_does_not_load() {
    let ours = tempfile::tempdir().unwrap();
    let theirs = tempfile::tempdir().unwrap();
    init_ca(ours.path()).unwrap();
    init_ca(theirs.path()).unwrap();
    let foreign = issue_node(theirs.path(), "rogue").unwrap();
    let error = NodeIdentity::from_files(&ours.path().join(CA_CERT_FILE), &foreign.cert, &foreign.key).unwrap_err();
    assert!(matches!(&error, CaError::Invalid { reason, .. } if reason.contains("not a node certificate")), "{error}");

    // A key that is not PEM.
    let native = issue_node(ours.path(), "node-1").unwrap();
    std::fs::write(&native.key, "garbage").unwrap();
    let error = NodeIdentity::load(ours.path(), "node-1").unwrap_err();
    assert!(matches!(error, CaError::Invalid { .. }), "{error}");
}
