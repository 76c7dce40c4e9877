//! Workflows with real processes: steps run once (retried with backoff when they fail), durable sleeps wake
//! the actor, messages come from the queue, loops keep their state; after `kill -9` between two steps the
//! workflow resumes at the next step without re-running completed ones, and after `kill -9` in the middle of a
//! step it resumes by itself, without any request; the inspector shows the history and replays from an entry.

use std::path::PathBuf;
use std::time::Duration;

use serde_json::{Value, json};
use tern_tests::{Api, TernProcess, eventually};

fn example_binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_tern-example"))
}

const CAP: Duration = Duration::from_secs(30);
const DONE: [&str; 6] = ["first", "flaky", "tick", "tick", "tick", "last go"];

/// The `saga` actor of a node.
struct Saga {
    api: Api,
    id: String,
}

impl Saga {
    async fn create(node: &TernProcess, key: &str) -> Saga {
        let api = Api::new(node);
        let id = api.actor("saga", key).await;
        Saga { api, id }
    }

    fn at(self, node: &TernProcess) -> Saga {
        Saga { api: Api::new(node), id: self.id }
    }

    async fn log(&self) -> Vec<String> {
        serde_json::from_value(self.api.call(&self.id, "log", json!([])).await.unwrap()).unwrap()
    }

    async fn signal(&self, text: &str) {
        self.api.send(&self.id, "signals", json!(text), None).await.unwrap();
    }

    async fn inspector(&self, method: reqwest::Method, path: &str, body: Value) -> Value {
        let url = format!("{}/gateway/{}/inspector{path}", self.api.endpoint, self.id);
        self.api.http.request(method, url).json(&body).send().await.unwrap().json().await.unwrap()
    }

    async fn wait_for_log(&self, expected: &[&str]) {
        eventually(&format!("the log reads {expected:?}"), CAP, || async {
            (self.log().await == expected).then_some(())
        })
        .await;
    }
}

#[tokio::test]
async fn a_workflow_runs_each_step_once_through_retries_sleep_messages_and_loops() {
    let dir = tempfile::tempdir().unwrap();
    let node = TernProcess::start(&example_binary(), &dir.path().join("data"));
    let saga = Saga::create(&node, "happy").await;
    saga.wait_for_log(&["first", "flaky"]).await;
    saga.signal("go").await;
    saga.wait_for_log(&DONE).await;

    let history = saga.inspector(reqwest::Method::GET, "/workflow-history", Value::Null).await;
    assert_eq!(history["isWorkflowEnabled"], true);
    let keys: Vec<&str> = history["history"].as_array().unwrap().iter().map(|e| e["key"].as_str().unwrap()).collect();
    for key in ["first#0", "flaky#0", "nap#0", "go#0", "count#0/0/tick#0", "count#0/result", "last#0", "$workflow#0"] {
        assert!(keys.contains(&key), "{key} missing from {keys:?}");
    }
    let go = history["history"].as_array().unwrap().iter().find(|e| e["key"] == "go#0").unwrap();
    assert_eq!(go["output"], "go");
    let summary = saga.inspector(reqwest::Method::GET, "/summary", Value::Null).await;
    assert_eq!(summary["isWorkflowEnabled"], true);

    // Replaying from the last step runs it again, and only it.
    let last = history["history"].as_array().unwrap().iter().find(|e| e["key"] == "last#0").unwrap();
    let replayed = saga.inspector(reqwest::Method::POST, "/workflow/replay", json!({"entryId": last["id"]})).await;
    assert_eq!(replayed["isWorkflowEnabled"], true);
    saga.wait_for_log(&["first", "flaky", "tick", "tick", "tick", "last go", "last go"]).await;
}

#[tokio::test]
async fn after_kill_9_between_two_steps_the_workflow_resumes_without_repeating_completed_steps() {
    let dir = tempfile::tempdir().unwrap();
    let mut node = TernProcess::start(&example_binary(), &dir.path().join("data"));
    let saga = Saga::create(&node, "crash").await;
    // The workflow has completed `first` and `flaky` and now sleeps, then waits for a message.
    saga.wait_for_log(&["first", "flaky"]).await;
    node.kill9();
    node.restart();
    let saga = saga.at(&node);
    saga.signal("go").await;
    saga.wait_for_log(&DONE).await;
}

/// The scenario: a `batch` workflow is killed with `kill -9` half a second into its two-second `work` step. It
/// has no durable sleep, so no alarm is armed for it. The node restarts and nothing sends the batch anything:
/// its last step increments the `counter` with the batch's key, and the test reads that counter (another actor,
/// so the batch stays untouched) until the workflow has finished by itself. Only then is the batch asked for its
/// log: `load` ran once, `work` ran again to completion, then `report`. Before the node recorded unfinished work,
/// the batch slept until a request happened to wake it.
#[tokio::test]
async fn after_kill_9_in_the_middle_of_a_step_the_workflow_resumes_without_any_request() {
    let dir = tempfile::tempdir().unwrap();
    let mut node = TernProcess::start(&example_binary(), &dir.path().join("data"));
    let batch = Api::new(&node).actor("batch", "nightly").await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    node.kill9();

    node.restart();
    let api = Api::new(&node);
    let counter = api.actor("counter", "nightly").await;
    eventually("the workflow finished by itself and reported to the counter", CAP, || async {
        (api.call(&counter, "getCount", json!([])).await.ok()? == json!(1)).then_some(())
    })
    .await;
    assert_eq!(api.call(&batch, "log", json!([])).await.unwrap(), json!(["load", "work", "report 1"]));
}

#[tokio::test]
async fn an_actor_without_a_workflow_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let node = TernProcess::start(&example_binary(), &dir.path().join("data"));
    let api = Api::new(&node);
    let id = &api.actor("counter", "plain").await;
    let http = &api.http;
    let url = format!("{}/gateway/{id}/inspector/workflow-history", node.endpoint());
    let history: Value = http.get(url).send().await.unwrap().json().await.unwrap();
    assert_eq!(history, json!({"history": null, "isWorkflowEnabled": false}));
    let url = format!("{}/gateway/{id}/inspector/workflow/replay", node.endpoint());
    let replay = http.post(url).json(&json!({})).send().await.unwrap();
    assert_eq!(replay.status().as_u16(), 400);
}
