//! A full disk, for real: the node's data directory is a small tmpfs, filled to its last byte. Writes are refused
//! with `storage.full` (507), logged and counted for operators, and nothing of them is kept; once space is freed
//! the same actor works again with every acknowledged write in place. Needs root: it mounts the tmpfs.

use std::path::PathBuf;

use serde_json::{Value, json};
use tern_tests::tmpfs::Tmpfs;
use tern_tests::{Api, ApiError, TernProcess};

fn example_binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_tern-example"))
}

/// The tmpfs: room for the node's files and the filler that takes the rest.
const DISK_BYTES: u64 = 8 << 20;

async fn execute(api: &Api, actor_id: &str, sql: &str) -> Result<Value, ApiError> {
    api.call(actor_id, "execute", json!([sql])).await
}

fn assert_storage_full(refused: Result<Value, ApiError>, what: &str) {
    let (status, code, body) = refused.expect_err(what);
    assert_eq!((status, code.as_str()), (507, "storage.full"), "{what}: {body}");
    assert!(body["message"].as_str().is_some_and(|m| m.contains("retry")), "{what}: {body}");
}

/// `tern_storage_full_total` as the node's `/metrics` reports it.
async fn storage_full_total(api: &Api) -> f64 {
    let text = api.http.get(format!("{}/metrics", api.endpoint)).send().await.unwrap().text().await.unwrap();
    let line = text.lines().find_map(|l| l.strip_prefix("tern_storage_full_total ")).expect("the counter is exported");
    line.parse().expect("a number")
}

/// A `sqlite` actor with rows 1 to 5 acknowledged, created while there is room.
async fn tenant(api: &Api, key: &str) -> String {
    let db = api.actor("sqlite", key).await;
    execute(api, &db, "CREATE TABLE t (n INTEGER PRIMARY KEY, pad BLOB)").await.unwrap();
    for n in 1..=5 {
        execute(api, &db, &format!("INSERT INTO t (n) VALUES ({n})")).await.unwrap();
    }
    db
}

/// The scenario: two awake `sqlite` actors have five acknowledged rows each; the disk is then filled. Each way a
/// write meets the full disk is refused with 507 `storage.full`: a small insert into the first (its turn's commit
/// cannot append to the write-ahead log), a 3 MB insert into the second (the statement spills pages to the log
/// before any commit), a 200 KB insert into the first (which stopped after its failed turn: it wakes, and the
/// insert finds no room; its wake may commit or not, in the room the failed commit's frames had taken), and the
/// create of a new actor (a `node.db` write). Each is counted in `tern_storage_full_total` and
/// logged as "storage full". Then the filler is deleted: both actors take an insert again and hold exactly rows 1
/// to 6 (no acknowledged row lost, no refused row kept), and the create works. Before `storage.full` existed,
/// every refusal was a masked 500 `actor.internal_error`.
#[tokio::test]
async fn a_full_disk_refuses_writes_with_storage_full_and_actors_recover_once_space_is_freed() {
    let disk = Tmpfs::mount(DISK_BYTES);
    // The data directory is the mount point itself, so the node's log (written next to it) is not on the full disk.
    let node = TernProcess::start(&example_binary(), disk.path());
    let api = Api::new(&node);
    let (small, large) = (tenant(&api, "small").await, tenant(&api, "large").await);

    assert!(disk.fill("filler") > 0, "the filler took the free space");
    assert_storage_full(execute(&api, &small, "INSERT INTO t (n) VALUES (6)").await, "a small insert");
    let big = execute(&api, &large, "INSERT INTO t (n, pad) VALUES (7, randomblob(3000000))").await;
    assert_storage_full(big, "a 3 MB insert");
    let after_a_failed_turn = execute(&api, &small, "INSERT INTO t (n, pad) VALUES (6, randomblob(200000))").await;
    assert_storage_full(after_a_failed_turn, "an insert into the actor whose turn failed");
    let create = json!({"name": "sqlite", "key": "another"});
    let created = api.http.put(format!("{}/actors", api.endpoint)).json(&create).send().await.unwrap();
    let status = created.status().as_u16();
    let body: Value = created.json().await.unwrap();
    assert_eq!((status, &body["group"], &body["code"]), (507, &json!("storage"), &json!("full")), "{body}");
    assert!(storage_full_total(&api).await >= 4.0, "every refusal is counted");
    let log = std::fs::read_to_string(node.log_path()).unwrap();
    let alerts = log.lines().filter(|l| l.contains("ERROR") && l.contains("storage full")).count();
    assert!(alerts >= 4, "operators get a log line to alert on, per refusal; log: {}", node.log_path().display());

    std::fs::remove_file(disk.path().join("filler")).unwrap();
    for db in [&small, &large] {
        execute(&api, db, "INSERT INTO t (n) VALUES (6)").await.expect("the actor works again");
        let rows = api.call(db, "query", json!(["SELECT n FROM t ORDER BY n"])).await.unwrap();
        let rows: Vec<i64> = rows.as_array().unwrap().iter().map(|r| r["n"].as_i64().unwrap()).collect();
        assert_eq!(rows, [1, 2, 3, 4, 5, 6], "acknowledged rows are all there, the refused ones are not");
    }
    assert!(!api.actor("sqlite", "another").await.is_empty(), "creates work again");
}
