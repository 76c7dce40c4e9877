//! Durable work moves with its actor (real `tern-example` nodes in three regions): a run loop draining a queue
//! goes on where it stopped, a schedule due during the hand-off fires exactly once, and a workflow waiting
//! mid-way resumes on the new home, each step once.

use std::path::PathBuf;
use std::time::Duration;

use serde_json::{Value, json};
use tern_tests::cluster::{Ca, Node, TOKEN, converge, plan, voters_arg};
use tern_tests::{Api, eventually, fetch_json};

/// How long the moved work may take to finish.
const CAP: Duration = Duration::from_secs(60);

fn example_binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_tern-example"))
}

/// Moves `id` to `node` through `via`'s gateway; panics unless it moved.
async fn migrate(via: &Node, id: &str, node: &str) -> Value {
    let url = format!("{}/actors/{id}/migrate", via.process.endpoint());
    let moved = fetch_json(tern_tests::http_client().post(url).bearer_auth(TOKEN).json(&json!({ "node": node }))).await;
    assert_eq!(moved["to"]["node"], json!(node), "{moved}");
    moved
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn queues_schedules_and_workflows_go_on_at_the_new_home() {
    let (ca, work) = (Ca::new(), tempfile::tempdir().unwrap());
    let plans = plan(&[("iad-1", "iad"), ("fra-1", "fra"), ("sin-1", "sin")]);
    let voters = voters_arg(&[&plans[0], &plans[1], &plans[2]]);
    let first = [plans[0].quic.as_str()];
    let nodes: Vec<Node> = plans
        .iter()
        .enumerate()
        .map(|(i, p)| {
            Node::start_binary(&example_binary(), &ca, work.path(), p, if i == 0 { &[] } else { &first }, Some(&voters))
        })
        .collect();
    converge(&nodes).await;
    let iad = Api::new(&nodes[0].process);
    let fra = Api::new(&nodes[1].process);

    // A run loop with a backlog: 100 slow jobs (10 ms each), the actor moved while it drains them.
    let worker = iad.actor("worker", "moving").await;
    for n in 1..=100 {
        iad.send(&worker, "slow", json!(n), None).await.unwrap();
    }
    eventually("the worker started on its backlog", CAP, || async {
        let processed = iad.call(&worker, "processed", json!([])).await.ok()?;
        (processed.as_array()?.len() >= 5).then_some(())
    })
    .await;
    migrate(&nodes[2], &worker, "fra-1").await;
    let processed = eventually("the backlog is drained on the new home", CAP, || async {
        let processed = fra.call(&worker, "processed", json!([])).await.ok()?;
        (processed.as_array()?.len() >= 100).then_some(processed)
    })
    .await;
    assert_eq!(processed, json!((1..=100).collect::<Vec<i64>>()), "every job once, in order");

    // A schedule due during the hand-off fires once, on the new home.
    let clock = iad.actor("clock", "moving").await;
    iad.call(&clock, "remindIn", json!([300, "after the move"])).await.unwrap();
    migrate(&nodes[2], &clock, "fra-1").await;
    eventually("the schedule fired", CAP, || async {
        let fired = fra.call(&clock, "fired", json!([])).await.ok()?;
        (fired.as_array()?.len() == 1).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(fra.call(&clock, "fired", json!([])).await.unwrap(), json!(["after the move"]), "exactly once");

    // A workflow asleep mid-way (its nap) moves, then hears its signal there and finishes, each step once.
    let saga = iad.actor("saga", "moving").await;
    eventually("the workflow is mid-way", CAP, || async {
        let log = iad.call(&saga, "log", json!([])).await.ok()?;
        log.as_array()?.iter().any(|entry| entry == "flaky").then_some(())
    })
    .await;
    migrate(&nodes[0], &saga, "sin-1").await;
    let sin = Api::new(&nodes[2].process);
    sin.send(&saga, "signals", json!("go"), None).await.unwrap();
    let log = eventually("the workflow finished on the new home", CAP, || async {
        let log = sin.call(&saga, "log", json!([])).await.ok()?;
        (log.as_array()?.len() >= 6).then_some(log)
    })
    .await;
    assert_eq!(log, json!(["first", "flaky", "tick", "tick", "tick", "last go"]), "each step once");
}
