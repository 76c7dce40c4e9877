//! Replication of actors' databases between real `tern node` processes (loopback, QUIC, mutual TLS): an actor
//! homed in iad is replicated to fra; after every kind of change (schema changes, indexes, many transactions, a
//! 10 MB blob, a dropped table) the replica's file holds exactly the home's content, tables of the runtime included. (Actor SQL cannot VACUUM, as every turn is a
//! transaction; `replication/tests/wal.rs` replicates a VACUUM.)

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{Value, json};
use tern_tests::cluster::{CONVERGE_CAP, Ca, Node, TOKEN, plan, voters_arg};
use tern_tests::{Api, eventually};

/// How long a replica may take to catch up (it usually takes milliseconds).
const CATCH_UP_CAP: Duration = Duration::from_secs(60);

/// Where a node keeps a database: `actors/` for its own actors, `replicas/` for copies of other nodes' actors.
fn db_path(node_dir: &Path, kind: &str, actor_id: &str) -> PathBuf {
    node_dir.join(kind).join(&actor_id[..2]).join(format!("{actor_id}.db"))
}

/// A canonical dump of the database at `path` (its file and WAL, copied aside so that the owner is undisturbed):
/// the schema, internal objects included, and every row of every table, blobs by length and hash.
async fn dump(path: &Path) -> Option<Vec<String>> {
    let aside = tempfile::tempdir().unwrap();
    let copy = aside.path().join("copy.db");
    std::fs::copy(path, &copy).ok()?;
    let wal = PathBuf::from(format!("{}-wal", path.display()));
    if wal.exists() {
        std::fs::copy(&wal, aside.path().join("copy.db-wal")).ok()?;
    }
    let db = libsql::Builder::new_local(&copy).build().await.ok()?;
    let conn = db.connect().ok()?;
    let mut out = Vec::new();
    let mut tables = Vec::new();
    let mut rows = conn.query("SELECT type, name, sql FROM sqlite_schema ORDER BY type, name", ()).await.ok()?;
    while let Some(row) = rows.next().await.ok()? {
        let (kind, name, sql): (String, String, Option<String>) =
            (row.get(0).ok()?, row.get(1).ok()?, row.get(2).ok()?);
        out.push(format!("{kind} {name} {sql:?}"));
        if kind == "table" {
            tables.push(name);
        }
    }
    for table in tables {
        let mut rows = conn.query(&format!("SELECT * FROM \"{table}\" ORDER BY 1"), ()).await.ok()?;
        while let Some(row) = rows.next().await.ok()? {
            let mut line = format!("{table}:");
            for i in 0..row.column_count() {
                match row.get_value(i).ok()? {
                    libsql::Value::Blob(b) if b.len() > 64 => {
                        line.push_str(&format!(" blob[{}]#{:08x}", b.len(), crc(&b)))
                    }
                    other => line.push_str(&format!(" {other:?}")),
                }
            }
            out.push(line);
        }
    }
    Some(out)
}

fn crc(bytes: &[u8]) -> u32 {
    bytes.iter().fold(0u32, |h, b| h.rotate_left(5) ^ u32::from(*b))
}

/// Runs `sql` on the `sqlite` actor `id` through `api`.
async fn execute(api: &Api, id: &str, sql: &str) {
    api.call(id, "execute", json!([sql, null])).await.unwrap_or_else(|e| panic!("{sql}: {e:?}"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_replica_holds_exactly_the_homes_content_after_every_kind_of_change() {
    let (ca, work) = (Ca::new(), tempfile::tempdir().unwrap());
    let plans = plan(&[("iad-1", "iad"), ("fra-1", "fra")]);
    let voters = voters_arg(&[&plans[0], &plans[1]]);
    let first = [plans[0].quic.as_str()];
    let nodes: Vec<Node> = plans
        .iter()
        .enumerate()
        .map(|(i, p)| Node::start(&ca, work.path(), p, if i == 0 { &[] } else { &first }, Some(&voters), &[]))
        .collect();
    for node in &nodes {
        let all: Vec<&Node> = nodes.iter().collect();
        eventually(&format!("{} sees both alive", node.name), CONVERGE_CAP, || node.sees_alive(&all)).await;
    }
    let api = Api::new(&nodes[0].process);
    let id = api.actor("sqlite", "replicated").await;
    execute(&api, &id, "CREATE TABLE users(id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT, bio TEXT)").await;
    execute(&api, &id, "CREATE INDEX users_name ON users(name)").await;
    for i in 0..200 {
        let sql = format!("INSERT INTO users(name, bio) VALUES ('user-{i}', printf('%.*c', {}, 'x'))", i * 10);
        execute(&api, &id, &sql).await;
    }
    execute(&api, &id, "ALTER TABLE users ADD COLUMN karma INTEGER DEFAULT 7").await;
    execute(&api, &id, "CREATE TABLE blobs(k TEXT PRIMARY KEY, v BLOB) WITHOUT ROWID").await;
    execute(&api, &id, "INSERT INTO blobs VALUES ('big', randomblob(10 * 1024 * 1024))").await;
    // One transaction of 20 MB: more than one request between nodes may carry, so it reaches the replica in a
    // snapshot once the next commit ends the generation.
    let many = "INSERT INTO blobs SELECT 'many-' || i, randomblob(1024 * 1024) FROM \
                (WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 20) SELECT i FROM n)";
    execute(&api, &id, many).await;
    execute(&api, &id, "DELETE FROM users WHERE id % 3 = 0").await;
    execute(&api, &id, "CREATE TABLE scratch AS SELECT * FROM users").await;
    execute(&api, &id, "DROP TABLE scratch").await;
    execute(&api, &id, "UPDATE users SET karma = karma + 1 WHERE id % 2 = 0").await;
    Api::new(&nodes[0].process).call(&id, "query", json!(["SELECT count(*) FROM users", null])).await.unwrap();

    // The actor sleeps, so the home's file is closed and can be read aside; the replica then catches up.
    let sleep = format!("{}/actors/{id}/sleep", nodes[0].process.endpoint());
    let slept = tern_tests::http_client().post(sleep).bearer_auth(TOKEN).json(&json!({})).send().await.unwrap();
    assert!(slept.status().is_success(), "sleep: {}", slept.status());
    let home = db_path(&work.path().join("iad-1"), "actors", &id);
    let replica = db_path(&work.path().join("fra-1"), "replicas", &id);
    let expected = eventually("the home's file is readable", CATCH_UP_CAP, || dump(&home)).await;
    assert!(expected.iter().any(|l| l.starts_with("blobs: Text(\"big\") blob[10485760]")), "{expected:?}");
    assert!(expected.iter().any(|l| l.contains("_tern_state")), "internal tables are compared too");
    eventually("the replica holds exactly the home's content", CATCH_UP_CAP, || async {
        let found = dump(&replica).await?;
        (found == expected).then_some(())
    })
    .await;

    // The replica set as operators see it, asked through the replica's own gateway (forwarded to the home).
    let replicas_url = format!("{}/actors/{id}/replicas", nodes[1].process.endpoint());
    let set = eventually("the home reports its replica caught up", CATCH_UP_CAP, || async {
        let set: Value =
            tern_tests::http_client().get(&replicas_url).bearer_auth(TOKEN).send().await.ok()?.json().await.ok()?;
        (set["replicas"][0]["lagFrames"] == json!(0)).then_some(set)
    })
    .await;
    assert_eq!(set["home"]["node"], json!("iad-1"), "{set}");
    assert_eq!(set["home"]["state"], json!("home"), "{set}");
    assert_eq!(set["replicas"][0]["node"], json!("fra-1"), "{set}");
    assert_eq!(set["replicas"][0]["region"], json!("fra"), "{set}");
    assert_eq!(set["replicas"][0]["state"], json!("streaming"), "{set}");
    assert_eq!(set["replicas"][0]["position"], set["home"]["position"], "{set}");
    let refused = tern_tests::http_client().get(&replicas_url).send().await.unwrap();
    assert_eq!(refused.status(), 401, "the replica set is an admin route");
    // The inspector's summary carries it too.
    let summary_url = format!("{}/gateway/{id}/inspector/summary", nodes[1].process.endpoint());
    let summary: Value =
        tern_tests::http_client().get(summary_url).bearer_auth(TOKEN).send().await.unwrap().json().await.unwrap();
    assert_eq!(summary["replicas"]["replicas"][0]["node"], json!("fra-1"), "{summary}");
    // Each member's liveness epoch (0: never taken for dead).
    let members: Value = tern_tests::http_client()
        .get(format!("{}/cluster/members", nodes[0].process.endpoint()))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    for member in members["members"].as_array().unwrap() {
        assert_eq!(member["livenessEpoch"], json!(0), "{members}");
    }

    // The home's metrics count what it shipped.
    let metrics = tern_tests::http_client()
        .get(format!("{}/metrics", nodes[0].process.endpoint()))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let shipped: f64 = metrics
        .lines()
        .find(|l| l.starts_with("tern_wal_bytes_shipped_total"))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
        .unwrap_or(0.0);
    let snapshots: f64 = metrics
        .lines()
        .find(|l| l.starts_with("tern_wal_snapshots_total"))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
        .unwrap_or(0.0);
    assert!(shipped >= 10.0 * 1024.0 * 1024.0, "shipped {shipped} bytes");
    assert!(snapshots >= 2.0, "the first copy and the 20 MB transaction went as snapshots: {snapshots}");

    // A write after waking is replicated too.
    execute(&api, &id, "INSERT INTO users(name) VALUES ('after-wake')").await;
    let slept = tern_tests::http_client()
        .post(format!("{}/actors/{id}/sleep", nodes[0].process.endpoint()))
        .bearer_auth(TOKEN)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert!(slept.status().is_success());
    let expected: Vec<String> = eventually("the home's file is readable", CATCH_UP_CAP, || dump(&home)).await;
    assert!(expected.iter().any(|l| l.contains("after-wake")));
    eventually("the replica has the write after the wake", CATCH_UP_CAP, || async {
        (dump(&replica).await? == expected).then_some(())
    })
    .await;

    // Destroying the actor removes its data from every node, the replica's copy included.
    let destroyed = tern_tests::http_client()
        .delete(format!("{}/actors/{id}", nodes[1].process.endpoint()))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert!(destroyed.status().is_success(), "destroy: {}", destroyed.status());
    assert!(!home.exists(), "the home's copy is gone");
    eventually("the replica's copy is gone", CATCH_UP_CAP, || async { (!replica.exists()).then_some(()) }).await;
    assert!(!PathBuf::from(format!("{}-wal", replica.display())).exists());
}
