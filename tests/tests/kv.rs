//! The actor KV store end to end: the example application's `kv` actor driven over HTTP, across a graceful
//! restart and a `kill -9`, with its limits, rollback of a failed action, and the admin KV route.

use std::path::PathBuf;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use reqwest::StatusCode;
use serde_json::{Value, json};
use tern_tests::TernProcess;

fn example_binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_tern-example"))
}

struct Fixture {
    node: TernProcess,
    http: reqwest::Client,
    actor_id: String,
    _dir: tempfile::TempDir,
}

impl Fixture {
    async fn start() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let node = TernProcess::start(&example_binary(), &dir.path().join("data"));
        // No idle connections: the node restarts under the test, and a pooled connection would die with it.
        let http =
            reqwest::Client::builder().pool_max_idle_per_host(0).timeout(tern_tests::REQUEST_CAP).build().unwrap();
        let created: Value = http
            .put(format!("{}/actors?namespace=default", node.endpoint()))
            .json(&json!({"name": "kv", "key": "e2e", "runner_name_selector": "default", "crash_policy": "sleep"}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let actor_id = created["actor"]["actor_id"].as_str().expect("the kv actor was created").to_string();
        Fixture { node, http, actor_id, _dir: dir }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.node.endpoint())
    }

    /// Calls an action; returns the HTTP status and the body.
    async fn call(&self, action: &str, args: Value) -> (StatusCode, Value) {
        let url = self.url(&format!("/gateway/{}/action/{action}", self.actor_id));
        let response = self.http.post(url).json(&json!({ "args": args })).send().await.unwrap();
        (response.status(), response.json().await.unwrap())
    }

    /// Calls an action that must succeed; returns its output.
    async fn ok(&self, action: &str, args: Value) -> Value {
        let (status, body) = self.call(action, args).await;
        assert_eq!(status, StatusCode::OK, "{action}: {body}");
        body["output"].clone()
    }

    /// Calls an action that must fail; returns the status and `group.code`.
    async fn error(&self, action: &str, args: Value) -> (StatusCode, String) {
        let (status, body) = self.call(action, args).await;
        (status, format!("{}.{}", body["group"].as_str().unwrap(), body["code"].as_str().unwrap()))
    }

    /// `GET /actors/{id}/kv/keys/{base64 key}`: the status and the body.
    async fn admin_kv(&self, key: &[u8]) -> (StatusCode, Value) {
        let url = self.url(&format!("/actors/{}/kv/keys/{}", self.actor_id, STANDARD.encode(key)));
        let response = self.http.get(url).send().await.unwrap();
        (response.status(), response.json().await.unwrap())
    }
}

#[tokio::test]
async fn kv_entries_are_durable_limited_and_readable_by_admins() {
    let mut f = Fixture::start().await;
    for (key, value) in [("greeting", "hello"), ("user:1", "ada"), ("user:2", "grace"), ("user:10", "linus")] {
        assert_eq!(f.ok("put", json!([key, value])).await, Value::Null);
    }
    f.ok("put", json!(["zeta", "last"])).await;
    assert_eq!(f.ok("get", json!(["greeting"])).await, json!("hello"));
    assert_eq!(f.ok("get", json!(["nothing"])).await, Value::Null);
    assert_eq!(f.ok("list", json!(["user:"])).await, json!([["1", "ada"], ["10", "linus"], ["2", "grace"]]));

    // A failed action's put is rolled back with the rest of the action.
    assert_eq!(f.error("putThenFail", json!(["doomed"])).await, (StatusCode::BAD_REQUEST, "user.rejected".into()));
    assert_eq!(f.ok("get", json!(["doomed"])).await, Value::Null);

    // Limits and the reserved key are catalogue errors, and refused writes change nothing.
    let long_key = "k".repeat(2049);
    let bad = StatusCode::BAD_REQUEST;
    assert_eq!(f.error("put", json!([long_key, "v"])).await, (bad, "kv.key_too_large".into()));
    assert_eq!(f.ok("put", json!(["k".repeat(2048), "v"])).await, Value::Null);
    assert_eq!(f.error("putFilled", json!(["big", 128 * 1024 + 1])).await, (bad, "kv.value_too_large".into()));
    assert_eq!(f.ok("get", json!(["big"])).await, Value::Null);
    f.ok("putFilled", json!(["big", 128 * 1024])).await;
    assert_eq!(f.error("put", json!(["\u{3}", "mine"])).await, (bad, "kv.reserved_key".into()));
    assert_eq!(f.error("delete", json!(["\u{3}"])).await, (bad, "kv.reserved_key".into()));
    assert_eq!(f.ok("get", json!(["\u{3}"])).await, Value::Null, "actor code cannot read the inspector token");
    let batch: Vec<Value> = (0..129).map(|i| json!([format!("batch:{i}"), "v"])).collect();
    assert_eq!(f.error("putBatch", json!([batch])).await, (bad, "kv.batch_too_large".into()));
    assert_eq!(f.ok("list", json!(["batch:"])).await, json!([]), "nothing of a refused batch is written");
    f.ok("putBatch", json!([[["batch:1", "one"], ["batch:2", "two"]]])).await;
    assert_eq!(f.ok("list", json!(["batch:"])).await, json!([["1", "one"], ["2", "two"]]));

    // Ranges are half-open: [user:1, user:2) holds user:1 and user:10.
    assert_eq!(f.ok("deleteRange", json!(["user:1", "user:2"])).await, json!(2));
    assert_eq!(f.ok("list", json!(["user:"])).await, json!([["2", "grace"]]));

    // Admins read users' entries; key 0x03 is still the inspector token.
    let (status, entry) = f.admin_kv(b"greeting").await;
    assert_eq!(status, StatusCode::OK, "{entry}");
    assert_eq!(STANDARD.decode(entry["value"].as_str().unwrap()).unwrap(), b"hello");
    assert!(entry["update_ts"].as_i64().unwrap() > 0);
    let (status, missing) = f.admin_kv(b"doomed").await;
    assert_eq!((status, missing["code"].as_str()), (StatusCode::NOT_FOUND, Some("not_found")));
    let (status, token) = f.admin_kv(&[3]).await;
    assert_eq!(status, StatusCode::OK);
    let token = STANDARD.decode(token["value"].as_str().unwrap()).unwrap();
    assert_eq!(token.len(), 43, "the inspector token is 32 random bytes in base64url");

    // A graceful restart keeps everything.
    assert!(f.node.terminate().success());
    f.node.restart();
    assert_eq!(f.ok("get", json!(["greeting"])).await, json!("hello"));
    assert_eq!(f.ok("list", json!(["user:"])).await, json!([["2", "grace"]]));
    assert_eq!(f.ok("get", json!(["big"])).await.as_str().map(str::len), Some(128 * 1024));
    assert_eq!(STANDARD.decode(f.admin_kv(&[3]).await.1["value"].as_str().unwrap()).unwrap(), token);

    // So does kill -9 right after an acknowledged put.
    f.ok("put", json!(["acked", "before the crash"])).await;
    f.ok("delete", json!(["zeta"])).await;
    f.node.kill9();
    f.node.restart();
    assert_eq!(f.ok("get", json!(["acked"])).await, json!("before the crash"));
    assert_eq!(f.ok("get", json!(["zeta"])).await, Value::Null);
    let (status, entry) = f.admin_kv(b"acked").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(STANDARD.decode(entry["value"].as_str().unwrap()).unwrap(), b"before the crash");
}
