//! What reaches the disk before an answer, watched with strace on real nodes (a power loss is what a sync guards
//! against, and no test can cause one): with `--fsync` every acknowledged commit of an actor is synced, without it
//! none is; and the directory's register store syncs `node.db` before a voter's answer lets a create be
//! acknowledged, `--fsync` or not. Needs strace and root (or ptrace rights over the node).

use std::path::{Path, PathBuf};

use serde_json::json;
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
