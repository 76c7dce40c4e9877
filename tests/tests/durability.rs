//! The durability promise with real processes: an acknowledged action survives `kill -9`, and a graceful stop
//! (SIGTERM) saves every actor.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use tern_client::Client;
use tern_tests::TernProcess;

fn example_binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_tern-example"))
}

/// What one writer saw acknowledged before the crash.
struct Acked {
    key: String,
    last_count: i64,
    rows: Vec<i64>,
}

/// Increments a counter and inserts a row into a per-tenant database in a loop until `stop`, recording what
/// was acknowledged. Errors after the crash are expected and end the loop.
async fn writer(client: Client, key: String, stop: Arc<AtomicBool>) -> Acked {
    let counter = client.get_or_create("counter", [key.as_str()]);
    let db = client.get_or_create("sqlite", [key.as_str()]);
    let mut acked = Acked { key: key.clone(), last_count: 0, rows: Vec::new() };
    if db.call::<serde_json::Value>("execute", ("CREATE TABLE IF NOT EXISTS t (n INTEGER)",)).await.is_err() {
        return acked;
    }
    let mut n = 0i64;
    while !stop.load(Ordering::Acquire) {
        n += 1;
        match counter.call::<i64>("increment", (1,)).await {
            Ok(count) => acked.last_count = count,
            Err(_) => break,
        }
        match db.call::<serde_json::Value>("execute", ("INSERT INTO t (n) VALUES (?)", [n])).await {
            Ok(_) => acked.rows.push(n),
            Err(_) => break,
        }
    }
    acked
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_actions_survive_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let mut node = TernProcess::start(&example_binary(), &dir.path().join("data"));
    let client = Client::new(node.endpoint()).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> =
        (0..8).map(|i| tokio::spawn(writer(client.clone(), format!("tenant-{i}"), stop.clone()))).collect();
    // Let the writers get going, then kill the node in the middle of their traffic.
    tern_tests::eventually("writers made progress", Duration::from_secs(60), || {
        let counter = client.get("counter", ["tenant-0"]);
        async move { counter.call::<i64>("getCount", ()).await.ok().filter(|c| *c >= 20) }
    })
    .await;
    node.kill9();
    stop.store(true, Ordering::Release);
    let mut results = Vec::new();
    for writer in writers {
        results.push(writer.await.unwrap());
    }

    node.restart();
    let client = Client::new(node.endpoint()).unwrap();
    for acked in results {
        assert!(acked.last_count > 0, "{} wrote nothing before the crash", acked.key);
        let count: i64 = client.get("counter", [acked.key.as_str()]).call("getCount", ()).await.unwrap();
        // The one increment in flight at the crash may or may not have committed; nothing acknowledged is lost.
        assert!(
            count == acked.last_count || count == acked.last_count + 1,
            "{}: acknowledged {}, found {count}",
            acked.key,
            acked.last_count
        );
        let rows: Vec<serde_json::Value> =
            client.get("sqlite", [acked.key.as_str()]).call("query", ("SELECT n FROM t ORDER BY n",)).await.unwrap();
        let found: Vec<i64> = rows.iter().map(|r| r["n"].as_i64().unwrap()).collect();
        assert!(
            found.len() >= acked.rows.len() && found[..acked.rows.len()] == acked.rows[..],
            "{}: rows lost",
            acked.key
        );
    }
}

/// Creates `counter` actors with fresh keys until `stop`, recording each acknowledged key and actor id.
async fn creator(
    client: Client,
    prefix: String,
    stop: Arc<AtomicBool>,
    acked: Arc<AtomicUsize>,
) -> Vec<(String, String)> {
    let mut created = Vec::new();
    let mut n = 0;
    while !stop.load(Ordering::Acquire) {
        let key = format!("{prefix}-{n}");
        n += 1;
        match client.create("counter", [key.as_str()], None).await {
            Ok(actor) => {
                created.push((key, actor.cached_actor_id().expect("a created actor's id")));
                acked.fetch_add(1, Ordering::Relaxed);
            }
            Err(_) => break,
        }
    }
    created
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_creations_survive_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let mut node = TernProcess::start(&example_binary(), &dir.path().join("data"));
    let client = Client::new(node.endpoint()).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let acked = Arc::new(AtomicUsize::new(0));
    let creators: Vec<_> = (0..16)
        .map(|i| tokio::spawn(creator(client.clone(), format!("burst-{i}"), stop.clone(), acked.clone())))
        .collect();
    // A burst of creations in flight (each a new file from the template, its first commit unsynced), then the crash.
    tern_tests::eventually("creations under way", Duration::from_secs(60), || {
        let acked = acked.clone();
        async move { (acked.load(Ordering::Relaxed) >= 300).then_some(()) }
    })
    .await;
    node.kill9();
    stop.store(true, Ordering::Release);
    let mut created = Vec::new();
    for creator in creators {
        created.extend(creator.await.unwrap());
    }
    assert!(created.len() >= 300);

    node.restart();
    let client = Client::new(node.endpoint()).unwrap();
    for (key, id) in &created {
        let actor = client.get("counter", [key.as_str()]);
        assert_eq!(&actor.resolve().await.unwrap(), id, "{key} is bound to the actor its create acknowledged");
        assert_eq!(actor.call::<i64>("increment", (1,)).await.unwrap(), 1, "{key} starts from its created state");
    }
}

#[tokio::test]
async fn a_graceful_stop_saves_every_actor_and_exits_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let mut node = TernProcess::start(&example_binary(), &dir.path().join("data"));
    let client = Client::new(node.endpoint()).unwrap();
    let journal = client.get_or_create("journal", ["graceful"]);
    let conn = journal.connect().await.unwrap();
    assert_eq!(conn.call::<u64>("write", ("before the stop",)).await.unwrap(), 1);
    let status = node.terminate();
    assert!(status.success(), "tern exited with {status}");
    node.restart();
    let client = Client::new(node.endpoint()).unwrap();
    let journal = client.get("journal", ["graceful"]);
    let (_title, entries): (String, Vec<String>) = journal.call("read", ()).await.unwrap();
    assert_eq!(entries, ["before the stop"]);
    let hooks: Vec<String> = journal.call("hooks", ()).await.unwrap();
    assert!(hooks.contains(&"sleep".to_string()), "the stop ran the sleep hook: {hooks:?}");
}

#[tokio::test]
async fn a_second_process_on_the_same_data_directory_refuses_to_start() {
    let dir = tempfile::tempdir().unwrap();
    let _node = TernProcess::start(&example_binary(), &dir.path().join("data"));
    let output = std::process::Command::new(example_binary())
        .args(["dev", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path().join("data"))
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("in use by another Tern process"), "{stderr}");
}
