//! The security review's SQL attacks, replayed against a real `tern dev` through the public `sqlite` actor (as
//! any client of a deployment that exposes it could) and through the inspector. Each test spells out the attack
//! it replays; before the sandbox, every one of them succeeded.

use std::path::{Path, PathBuf};

use serde_json::{Value, json};
use tern_tests::{Api, ApiError, TernProcess, tern_binary};

struct Dev {
    node: TernProcess,
    api: Api,
    dir: tempfile::TempDir,
}

impl Dev {
    fn start() -> Dev {
        let dir = tempfile::tempdir().unwrap();
        let node = TernProcess::start(&tern_binary(), &dir.path().join("data"));
        let api = Api::new(&node);
        Dev { node, api, dir }
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    async fn execute(&self, actor: &str, sql: &str) -> Result<Value, ApiError> {
        self.api.call(actor, "execute", json!([sql, null])).await
    }

    async fn query(&self, actor: &str, sql: &str) -> Result<Value, ApiError> {
        self.api.call(actor, "query", json!([sql, null])).await
    }

    async fn batch(&self, actor: &str, statements: &[&str]) -> Result<Value, ApiError> {
        let statements: Vec<Value> = statements.iter().map(|sql| json!({ "sql": sql })).collect();
        self.api.call(actor, "batch", json!([statements])).await
    }

    async fn inspector_execute(&self, actor: &str, sql: &str) -> (u16, Value) {
        let url = format!("{}/gateway/{actor}/inspector/database/execute", self.api.endpoint);
        let response = self.api.http.post(url).json(&json!({ "sql": sql })).send().await.unwrap();
        (response.status().as_u16(), response.json().await.unwrap())
    }
}

/// `(status, group.code)` of an error answer.
fn refusal(result: Result<Value, ApiError>) -> (u16, String) {
    let (status, code, _) = result.expect_err("the statement must be refused");
    (status, code)
}

const NOT_ALLOWED: (u16, &str) = (403, "database.statement_not_allowed");

fn not_allowed(result: Result<Value, ApiError>) {
    let (status, code) = refusal(result);
    assert_eq!((status, code.as_str()), NOT_ALLOWED);
}

fn actor_file(data_dir: &Path, actor_id: &str) -> PathBuf {
    data_dir.join("actors").join(&actor_id[..2]).join(format!("{actor_id}.db"))
}

/// The attack (critical): tenant A learns where databases live from `PRAGMA database_list`, takes a victim's id
/// from `GET /actors`, and `ATTACH`es the victim's file to read it, write it, hold its lock or corrupt it;
/// `VACUUM INTO` (after a `COMMIT`) writes a copy of A's database, internal tables included, anywhere.
#[tokio::test]
async fn one_tenant_cannot_reach_another_tenants_file() {
    let dev = Dev::start();
    let victim = dev.api.actor("sqlite", "victim").await;
    dev.execute(&victim, "CREATE TABLE secrets (value TEXT)").await.unwrap();
    dev.execute(&victim, "INSERT INTO secrets VALUES ('the victim''s secret')").await.unwrap();
    let attacker = dev.api.actor("sqlite", "attacker").await;

    not_allowed(dev.query(&attacker, "PRAGMA database_list").await);
    not_allowed(dev.query(&attacker, "SELECT file FROM pragma_database_list").await);
    let victim_file = actor_file(&dev.data_dir(), &victim);
    assert!(victim_file.exists(), "the attack aims at a real file: {}", victim_file.display());
    let attach = format!("ATTACH DATABASE '{}' AS victim", victim_file.display());
    not_allowed(dev.execute(&attacker, &attach).await);
    not_allowed(dev.batch(&attacker, &[&attach, "SELECT * FROM victim.secrets"]).await);
    let elsewhere = dev.dir.path().join("planted.db");
    not_allowed(dev.execute(&attacker, &format!("ATTACH DATABASE '{}' AS planted", elsewhere.display())).await);
    let copy = dev.dir.path().join("copy.db");
    let vacuum = format!("VACUUM INTO '{}'", copy.display());
    not_allowed(dev.batch(&attacker, &["COMMIT", &vacuum]).await);
    assert!(dev.execute(&attacker, &vacuum).await.is_err(), "VACUUM INTO never runs");
    // The inspector's SQL goes through the same sandbox.
    let (status, body) = dev.inspector_execute(&attacker, &attach).await;
    assert_eq!(
        (status, format!("{}.{}", body["group"].as_str().unwrap(), body["code"].as_str().unwrap())),
        (403, NOT_ALLOWED.1.to_string())
    );
    let (status, _) = dev.inspector_execute(&attacker, &vacuum).await;
    assert_ne!(status, 200);

    assert!(!elsewhere.exists() && !copy.exists(), "no file was created outside the actor's own");
    let rows = dev.query(&victim, "SELECT value FROM secrets").await.unwrap();
    assert_eq!(rows, json!([{ "value": "the victim's secret" }]), "the victim is untouched and answers");
}

/// The attack (high): with `PRAGMA writable_schema = ON` and `INSERT INTO sqlite_master`, plant a view that reads
/// `_tern_meta` (the inspector token) after a restart; `UPDATE sqlite_master` bricks the actor. The old guard
/// matched `_tern_` in the SQL text, which neither statement needs to contain.
#[tokio::test]
async fn the_runtime_tables_stay_out_of_reach() {
    let mut dev = Dev::start();
    let actor = dev.api.actor("sqlite", "tenant").await;
    dev.execute(&actor, "CREATE TABLE items (name TEXT)").await.unwrap();
    not_allowed(dev.execute(&actor, "PRAGMA writable_schema = ON").await);
    not_allowed(dev.batch(&actor, &["PRAGMA writable_schema = 1", "SELECT 1"]).await);
    let plant = "INSERT INTO sqlite_master (type, name, tbl_name, rootpage, sql) VALUES \
                 ('view', 'leak', 'leak', 0, 'CREATE VIEW leak AS SELECT value FROM _tern_meta')";
    assert!(dev.execute(&actor, plant).await.is_err());
    assert!(
        dev.execute(&actor, "UPDATE sqlite_master SET sql = 'CREATE TABLE items (' WHERE name = 'items'")
            .await
            .is_err()
    );
    // Views and triggers cannot launder the access either: SQLite authorizes what they expand to.
    dev.execute(&actor, "CREATE VIEW token AS SELECT value FROM _tern_meta WHERE key = 'inspector_token'")
        .await
        .unwrap();
    not_allowed(dev.query(&actor, "SELECT * FROM token").await);
    not_allowed(dev.query(&actor, "SELECT * FROM _tern_meta").await);
    not_allowed(dev.query(&actor, "SELECT * FROM \"_TERN_STATE\"").await);
    dev.execute(&actor, "CREATE TRIGGER wipe AFTER INSERT ON items BEGIN DELETE FROM _tern_kv; END").await.unwrap();
    not_allowed(dev.execute(&actor, "INSERT INTO items VALUES ('x')").await);
    not_allowed(dev.execute(&actor, "ALTER TABLE items RENAME TO _tern_items").await);

    dev.node.terminate();
    dev.node.restart();
    not_allowed(dev.query(&actor, "SELECT * FROM token").await);
    assert_eq!(dev.query(&actor, "SELECT count(*) AS n FROM items").await.unwrap(), json!([{ "n": 0 }]));
    // The inspector may read the runtime's tables, never change them.
    let (status, body) = dev.inspector_execute(&actor, "SELECT key FROM _tern_meta WHERE key = 'actor_id'").await;
    assert_eq!((status, &body["rows"]), (200, &json!([{ "key": "actor_id" }])));
    let (status, _) = dev.inspector_execute(&actor, "DELETE FROM _tern_state").await;
    assert_eq!(status, 403);
}

/// The attack (high): a `batch` whose statements end the runtime's savepoint or transaction (`RELEASE
/// tern_action`, `COMMIT`, `ROLLBACK`, ...) and then fail: the earlier statements stayed committed while the reply
/// said the batch failed, so a client was told "nothing happened" about a durable change.
#[tokio::test]
async fn a_failed_batch_leaves_nothing_behind() {
    let dev = Dev::start();
    let actor = dev.api.actor("sqlite", "batches").await;
    dev.execute(&actor, "CREATE TABLE t (x INTEGER NOT NULL)").await.unwrap();
    for escape in
        ["RELEASE tern_action", "COMMIT", "END", "ROLLBACK", "ROLLBACK TO tern_action", "SAVEPOINT s", "BEGIN"]
    {
        not_allowed(dev.batch(&actor, &["INSERT INTO t VALUES (1)", escape, "INSERT INTO t VALUES (NULL)"]).await);
        let count = dev.query(&actor, "SELECT count(*) AS n FROM t").await.unwrap();
        assert_eq!(count, json!([{ "n": 0 }]), "after a batch with {escape}");
    }
    let (status, code) = refusal(dev.batch(&actor, &["INSERT INTO t VALUES (1)", "INSERT INTO t VALUES (NULL)"]).await);
    assert_eq!((status, code.as_str()), (400, "database.sql_error"));
    assert_eq!(dev.query(&actor, "SELECT count(*) AS n FROM t").await.unwrap(), json!([{ "n": 0 }]));
    dev.batch(&actor, &["INSERT INTO t VALUES (1)", "INSERT INTO t VALUES (2)"]).await.unwrap();
    assert_eq!(dev.query(&actor, "SELECT count(*) AS n FROM t").await.unwrap(), json!([{ "n": 2 }]));
}

/// The node's peak resident memory, from `/proc`.
fn peak_rss_bytes(node: &TernProcess) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{}/status", node.pid().unwrap())).unwrap();
    let line = status.lines().find(|line| line.starts_with("VmHWM:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse::<u64>().unwrap() * 1024
}

/// The attack (medium): `SELECT randomblob(1000000000)` through a public action drove the node to 3.5 GB (5.4 GB
/// with two at once) before the 1 MiB outgoing limit refused the answer; an endless recursive query held a worker
/// thread for good.
#[tokio::test]
async fn one_statement_cannot_take_the_node() {
    let dev = Dev::start();
    let actor = dev.api.actor("sqlite", "greedy").await;
    let other = dev.api.actor("sqlite", "greedy-too").await;
    let huge = "SELECT randomblob(1000000000) AS b";
    let (one, two) = tokio::join!(dev.query(&actor, huge), dev.query(&other, huge));
    for result in [one, two] {
        let (status, code, body) = result.unwrap_err();
        assert_eq!((status, code.as_str()), (400, "database.sql_error"));
        assert!(body["message"].as_str().unwrap().contains("too big"), "{body}");
    }
    let many =
        "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c LIMIT 40) SELECT randomblob(1000000) FROM c";
    let (status, code) = refusal(dev.query(&actor, many).await);
    assert_eq!((status, code.as_str()), (400, "database.result_too_large"));
    let peak = peak_rss_bytes(&dev.node);
    assert!(peak < 512 * 1024 * 1024, "the node peaked at {} MiB", peak / (1024 * 1024));

    let forever = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) AS n FROM c";
    let (status, code) = refusal(dev.query(&actor, forever).await);
    assert_eq!((status, code.as_str()), (408, "database.statement_timed_out"));
    assert_eq!(dev.query(&actor, "SELECT 1 AS one").await.unwrap(), json!([{ "one": 1 }]));
}
