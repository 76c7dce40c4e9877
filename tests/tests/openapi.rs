//! `GET /openapi.json` on a real node: served without the admin token (even when one is set), as JSON, and the
//! very document checked in (`gateway/openapi.json`). The document's coverage of the routes is checked in the
//! gateway crate (`gateway/src/openapi.rs`); Schemathesis checks the node's answers against it
//! (`tests/openapi/run.sh`).

use std::time::Duration;

use serde_json::Value;
use tern_tests::{Api, TernProcess, tern_binary};

#[tokio::test]
async fn the_document_is_served_publicly_as_json() {
    let dir = tempfile::tempdir().unwrap();
    let node = TernProcess::start_with(&tern_binary(), &dir.path().join("data"), &["--admin-token", "s3cret"]);
    let http = reqwest::Client::builder().timeout(Duration::from_secs(30)).build().unwrap();

    let response = http.get(format!("{}/openapi.json", node.endpoint())).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 200);
    assert_eq!(response.headers()["content-type"], "application/json");
    let served: Value = response.json().await.unwrap();
    let checked_in: Value = serde_json::from_str(include_str!("../../gateway/openapi.json")).unwrap();
    assert_eq!(served, checked_in);
    assert!(served["paths"]["/openapi.json"]["get"].is_object(), "the document names itself");

    // An admin route still needs the token: the document is public, the routes it describes are not.
    let members = http.get(format!("{}/cluster/members", node.endpoint())).send().await.unwrap();
    assert_eq!(members.status().as_u16(), 401);
    let error: Value = members.json().await.unwrap();
    assert_eq!((error["group"].as_str(), error["code"].as_str()), (Some("api"), Some("unauthorized")));
}

/// A method an actor or inspector route does not take is `actor.method_not_allowed` (405) with the `Allow` header
/// RFC 9110 asks for (Schemathesis's `unsupported_method` check found it missing under `/gateway/`).
#[tokio::test]
async fn a_refused_method_names_the_allowed_ones() {
    let dir = tempfile::tempdir().unwrap();
    let node = TernProcess::start(&tern_binary(), &dir.path().join("data"));
    let api = Api::new(&node);
    let actor = format!("{}/gateway/{}", node.endpoint(), api.actor("counter", "allow").await);
    for (method, path, allow) in [
        ("DELETE", "/action/increment", "POST"),
        ("POST", "/health", "GET"),
        ("DELETE", "/inspector/state", "GET,PATCH"),
        ("PUT", "/inspector/queue", "GET,POST,DELETE"),
        ("GET", "/inspector/database/execute", "POST"),
    ] {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let response = api.http.request(method.clone(), format!("{actor}{path}")).send().await.unwrap();
        assert_eq!(response.status().as_u16(), 405, "{method} {path}");
        assert_eq!(response.headers()["allow"], allow, "{method} {path}");
        let error: Value = response.json().await.unwrap();
        assert_eq!(error["code"], "method_not_allowed", "{method} {path}");
    }
}
