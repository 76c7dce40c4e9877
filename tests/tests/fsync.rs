//! What reaches the disk before an answer, watched with strace on real nodes (a power loss is what a sync guards
//! against, and no test can cause one): with `--fsync` every acknowledged commit of an actor is synced, without it
//! none is; the directory's register store syncs `node.db` before a voter's answer lets a create be
//! acknowledged, `--fsync` or not; a wake after a clean stop syncs nothing; and a connection's relaxed first commit
//! never checkpoints unsynced. Needs strace and root (or ptrace rights over the node).

use std::path::{Path, PathBuf};

use serde_json::json;
use tern_gateway::backend::{Backend, CreateRequest};
use tern_node::server::{NodeConfig, open_host};
use tern_node::{Actor, Registry, Value};
use tern_proto::key::ActorKey;
use tern_tests::cluster::{CONVERGE_CAP, Ca, Node, plan, voters_arg};
use tern_tests::syncs::{SyncTrace, count_under};
use tern_tests::{Api, TernProcess, eventually, tern_binary};

/// Commits made while strace watches.
const COMMITS: usize = 3;

/// Where a dev node keeps actor `id`'s database, and the database's file name.
fn actor_db(data_dir: &Path, id: &str) -> (PathBuf, String) {
    (data_dir.join("actors"), format!("{id}.db"))
}

/// Starts `tern dev` (with `args`), creates a counter and commits once, then watches the node while it commits
/// [`COMMITS`] more increments, each acknowledged: how many syncs of the counter's database (and its WAL) there
/// were, and of anything at all.
async fn syncs_of_acknowledged_commits(args: &[&str]) -> (usize, usize) {
    let dir = tempfile::tempdir().unwrap();
    let node = TernProcess::start_with(&tern_binary(), &dir.path().join("data"), args);
    let api = Api::new(&node);
    let id = api.actor("counter", "synced").await;
    assert_eq!(api.call(&id, "increment", json!([1])).await.unwrap(), json!(1));
    let trace = SyncTrace::attach(node.pid().expect("the node runs"));
    for expected in 2..=1 + COMMITS {
        assert_eq!(api.call(&id, "increment", json!([1])).await.unwrap(), json!(expected));
    }
    let synced = trace.finish();
    let (dir, name) = actor_db(node.data_dir(), &id);
    (count_under(&synced, &dir, &name), synced.len())
}

#[tokio::test]
async fn with_fsync_every_acknowledged_commit_is_synced_and_without_it_none_is() {
    let (actor, _) = syncs_of_acknowledged_commits(&["--fsync"]).await;
    assert_eq!(actor, COMMITS, "with --fsync, one sync of the actor's WAL per acknowledged commit");
    let (actor, all) = syncs_of_acknowledged_commits(&[]).await;
    assert_eq!((actor, all), (0, 0), "without --fsync, commits are left to the page cache");
}

/// A cluster node (one voter, itself, without `--fsync`) creates an actor: the directory's register store writes
/// the actor's placement and then its key binding, each a promise and then an acceptance, and each of those four
/// writes is synced before the voter answers (a voter that forgot a promise after a power loss could let two
/// actors own one key). `node.db`'s other writes are not synced (`synchronous=NORMAL`, no checkpoint in so short a
/// run), so every sync of it is the register store's. And what it acknowledged survives a crash: after `kill -9`
/// the key still belongs to the same actor.
#[tokio::test]
async fn a_voter_syncs_each_register_write_of_a_create_before_it_is_acknowledged() {
    let (ca, work) = (Ca::new(), tempfile::tempdir().unwrap());
    let plans = plan(&[("iad-1", "iad")]);
    let voters = voters_arg(&[&plans[0]]);
    let mut node = Node::start(&ca, work.path(), &plans[0], &[], Some(&voters), &[]);
    eventually("the node serves", CONVERGE_CAP, || node.members()).await;
    let api = Api::new(&node.process);
    let warm = api.actor("counter", "warm").await;
    assert_eq!(api.call(&warm, "increment", json!([1])).await.unwrap(), json!(1));

    let trace = SyncTrace::attach(node.process.pid().expect("the node runs"));
    let id = api.actor("counter", "bound").await;
    let synced = trace.finish();
    let registers = count_under(&synced, node.process.data_dir(), "node.db");
    assert!(registers >= 4, "{registers} syncs of node.db for a create's four register writes: {synced:?}");

    node.process.kill9();
    node.process.restart();
    eventually("the node serves again", CONVERGE_CAP, || node.members()).await;
    assert_eq!(Api::new(&node.process).actor("counter", "bound").await, id, "the key's binding survived");
}

/// Stops `node` cleanly and starts it again, then watches it while `sql` runs in the `sqlite` actor `id`: the
/// paths of the syncs.
async fn syncs_after_a_clean_stop(node: &mut TernProcess, id: &str, sql: &str) -> Vec<PathBuf> {
    assert!(node.terminate().success(), "a clean stop");
    node.restart();
    let api = Api::new(node);
    let trace = SyncTrace::attach(node.pid().expect("the node runs"));
    api.call(id, "execute", json!([sql])).await.unwrap();
    trace.finish()
}

/// A clean stop closes every actor's database: its checkpoint syncs the file and the WAL is removed. The first
/// commit after that (the wake's) writes a new WAL that holds nothing else and, like a new actor's first commit,
/// skips the syncs of that WAL's header and directory: a wake from disk and the writes after it sync nothing.
#[tokio::test]
async fn a_wake_after_a_clean_stop_syncs_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut node = TernProcess::start(&tern_binary(), &dir.path().join("data"));
    let id = Api::new(&node).actor("sqlite", "woken").await;
    Api::new(&node).call(&id, "execute", json!(["CREATE TABLE t (v BLOB)"])).await.unwrap();

    let synced = syncs_after_a_clean_stop(&mut node, &id, "INSERT INTO t VALUES (x'01')").await;
    assert_eq!(synced, Vec::<PathBuf>::new(), "nothing synced from the wake to the answer");
    let rows = Api::new(&node).call(&id, "query", json!(["SELECT count(*) AS n FROM t"])).await.unwrap();
    assert_eq!(rows, json!([{"n": 1}]));
}

/// Rows of 1,000 bytes, each on its own overflow page at the actors' 1 KiB pages: 1,200 of them fill the WAL past
/// SQLite's automatic checkpoint (1,000 pages) in one commit.
const FILL_THE_WAL: &str = "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 1200) \
                            INSERT INTO bulk SELECT randomblob(1000) FROM n";

/// An actor whose create hook writes 1.2 MB; `add` adds a row, `count` counts them.
fn bulk() -> Actor<()> {
    Actor::new("bulk")
        .create_state(|_: Option<Value>| Ok(()))
        .on_create(|c, _: Option<Value>| async move {
            c.sql().execute("CREATE TABLE bulk (v BLOB)", ()).await?;
            c.sql().execute(FILL_THE_WAL, ()).await?;
            Ok(())
        })
        .action("add", |c, ()| async move {
            c.sql().execute("INSERT INTO bulk VALUES (x'01')", ()).await?;
            Ok(())
        })
        .action("count", |c, ()| async move {
            let mut rows = c.sql().query("SELECT count(*) FROM bulk", ()).await?;
            let row = rows.next().await?.expect("a count");
            Ok(row.get::<i64>(0).expect("an integer"))
        })
}

/// A new actor's first commit runs with `synchronous=OFF`, and with no checkpoint: one at `OFF` would move the
/// frames into the database file unsynced, and the next write would restart the WAL over them. So a first commit
/// that fills the WAL past SQLite's automatic checkpoint syncs nothing and checkpoints nothing; the next commit, at
/// `NORMAL`, runs the checkpoint, which syncs the WAL before it writes the file, then the file. In process (a
/// node with its own actor), watched by strace like the nodes above.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_first_commit_never_checkpoints_unsynced() {
    let dir = tempfile::tempdir().unwrap();
    let config = NodeConfig::dev("127.0.0.1:0".parse().unwrap(), dir.path().join("data"));
    let host = open_host(Registry::new().register(bulk()), &config).await.expect("a node");
    let call = |id: String, action: &'static str| {
        let host = host.clone();
        async move { host.call_action(&id, action, Value::Array(vec![]), None).await.expect("answered") }
    };

    let trace = SyncTrace::attach(std::process::id());
    let request = CreateRequest {
        name: "bulk".into(),
        key: ActorKey::new(vec!["one".into()]).unwrap(),
        input: None,
        region: None,
    };
    let id = host.create_actor(request).await.expect("created").actor_id;
    let created = trace.finish();
    let (actors, file) = actor_db(&dir.path().join("data"), &id);
    assert_eq!(
        count_under(&created, &actors, &file),
        0,
        "the first commit synced none of the actor's files: {created:?}"
    );

    let trace = SyncTrace::attach(std::process::id());
    call(id.clone(), "add").await;
    let next = trace.finish();
    let wal = format!("{file}-wal");
    let synced: Vec<_> = next
        .iter()
        .filter(|path| path.starts_with(&actors))
        .filter_map(|path| path.file_name().map(|name| name.to_string_lossy().into_owned()))
        .filter(|name| name.starts_with(&file))
        .collect();
    assert_eq!(synced, [wal, file], "the next commit's checkpoint synced the WAL, then the file: {next:?}");
    assert_eq!(call(id, "count").await, Value::Integer(1201.into()));
    host.shutdown(std::time::Duration::from_secs(5)).await;
}
