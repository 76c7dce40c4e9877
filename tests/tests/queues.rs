//! Durable queues consumed by a run loop, with real processes: waiting sends get the completion's response,
//! `kill -9` in the middle of a stream of sends loses no accepted message and keeps their order, an actor
//! waiting on its queue sleeps and wakes for the next message, and bad sends get clear errors.

use std::path::PathBuf;
use std::time::Duration;

use serde_json::{Value, json};
use tern_tests::{Api, TernProcess, eventually};

fn example_binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_tern-example"))
}

const CAP: Duration = Duration::from_secs(30);

/// The `worker` actor of a node.
struct Worker {
    api: Api,
    id: String,
}

impl Worker {
    async fn create(node: &TernProcess, key: &str) -> Worker {
        let api = Api::new(node);
        let id = api.actor("worker", key).await;
        Worker { api, id }
    }

    fn at(self, node: &TernProcess) -> Worker {
        Worker { api: Api::new(node), id: self.id }
    }

    /// Sends to queue `name`: the answer, or the HTTP status and error body.
    async fn send(&self, name: &str, body: Value, wait: Option<u64>) -> Result<Value, (u16, Value)> {
        self.api.send(&self.id, name, body, wait).await.map_err(|(status, _, body)| (status, body))
    }

    async fn call(&self, action: &str) -> Value {
        self.api.call(&self.id, action, json!([])).await.unwrap()
    }

    async fn processed(&self) -> Vec<i64> {
        serde_json::from_value(self.call("processed").await).unwrap()
    }
}

#[tokio::test]
async fn a_waiting_send_gets_the_completion_and_plain_sends_are_processed_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let node = TernProcess::start(&example_binary(), &dir.path().join("data"));
    let worker = Worker::create(&node, "wait").await;
    for n in 1..=5 {
        assert_eq!(worker.send("jobs", json!(n), None).await.unwrap(), json!({"status": "completed"}));
    }
    let answer = worker.send("jobs", json!(10), Some(10_000)).await.unwrap();
    assert_eq!(answer, json!({"status": "completed", "response": 25}));
    assert_eq!(worker.processed().await, [1, 2, 3, 4, 5, 10]);
}

#[tokio::test]
async fn bad_sends_get_clear_errors_and_lose_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let node = TernProcess::start(&example_binary(), &dir.path().join("data"));
    let worker = Worker::create(&node, "bad").await;
    let code = |(status, body): (u16, Value)| {
        (status, format!("{}.{}", body["group"].as_str().unwrap(), body["code"].as_str().unwrap()))
    };
    assert_eq!(code(worker.send("nope", json!(1), None).await.unwrap_err()), (400, "queue.unknown_queue".into()));
    let big = "x".repeat(60_000);
    // 60,000 characters fit the 64 KiB request limit but not the 64 KiB of CBOR plus framing... send two.
    assert_eq!(
        code(worker.send("jobs", json!([big, big]), None).await.unwrap_err()),
        (400, "message.incoming_too_long".into())
    );
    let url = format!("{}/gateway/{}/queue/jobs", worker.api.endpoint, worker.id);
    let malformed = worker.api.http.post(url).body("{\"body\":").send().await.unwrap();
    assert_eq!(malformed.status().as_u16(), 400);
    worker.send("jobs", json!(7), None).await.unwrap();
    eventually("the good message was processed", CAP, || async { (worker.processed().await == [7]).then_some(()) })
        .await;
}

#[tokio::test]
async fn kill_9_during_a_stream_of_sends_loses_no_accepted_message_and_keeps_the_order() {
    let dir = tempfile::tempdir().unwrap();
    let mut node = TernProcess::start(&example_binary(), &dir.path().join("data"));
    let worker = Worker::create(&node, "stream").await;
    let sender = {
        let worker = Worker { api: Api::new(&node), id: worker.id.clone() };
        tokio::spawn(async move {
            let mut accepted = Vec::new();
            for n in 1..=100_000i64 {
                match worker.send("jobs", json!(n), None).await {
                    Ok(_) => accepted.push(n),
                    Err(_) => break,
                }
            }
            accepted
        })
    };
    eventually("the stream is under way", CAP, || async { (worker.processed().await.len() >= 30).then_some(()) }).await;
    node.kill9();
    let accepted = sender.await.unwrap();
    assert!(accepted.len() >= 30);

    node.restart();
    let worker = worker.at(&node);
    let processed = eventually("every accepted message was processed", CAP, || async {
        let processed = worker.processed().await;
        (processed.len() >= accepted.len()).then_some(processed)
    })
    .await;
    // Each accepted message exactly once, in order; at most the one in flight at the crash beyond them.
    assert_eq!(processed[..accepted.len()], accepted[..]);
    assert!(processed.len() <= accepted.len() + 1, "{} processed, {} accepted", processed.len(), accepted.len());
}

#[tokio::test]
async fn an_actor_waiting_on_its_queue_sleeps_and_the_next_message_wakes_it() {
    let dir = tempfile::tempdir().unwrap();
    let node = TernProcess::start(&example_binary(), &dir.path().join("data"));
    let worker = Worker::create(&node, "sleepy").await;
    worker.send("jobs", json!(1), None).await.unwrap();
    let asleep = || async {
        let url = format!("{}/actors?actor_ids={}", worker.api.endpoint, worker.id);
        let listed: Value = worker.api.http.get(url).send().await.unwrap().json().await.unwrap();
        listed["actors"][0]["sleep_ts"].as_i64()
    };
    eventually("the idle worker fell asleep", CAP, || async { asleep().await }).await;
    worker.send("jobs", json!(2), None).await.unwrap();
    eventually("the message woke it and was processed", CAP, || async {
        (worker.processed().await == [1, 2]).then_some(())
    })
    .await;
}
