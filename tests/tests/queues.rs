//! Durable queues consumed by a run loop, with real processes: waiting sends get the completion's response,
//! `kill -9` in the middle of a stream of sends loses no accepted message and keeps their order, a backlog left
//! by `kill -9` is processed after the restart without any request, an actor waiting on its queue sleeps and
//! wakes for the next message, and bad sends get clear errors.

use std::path::PathBuf;
use std::time::Duration;

use futures_util::StreamExt;
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
    let status = malformed.status().as_u16();
    assert_eq!(code((status, malformed.json().await.unwrap())), (400, "actor.invalid_request".into()));
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

/// How many messages the worker consumed since its node started, as `/metrics` says (reading it wakes nothing).
async fn consumed(api: &Api) -> u64 {
    let text = api.http.get(format!("{}/metrics", api.endpoint)).send().await.unwrap().text().await.unwrap();
    let value = text.lines().find_map(|l| l.strip_prefix("tern_queue_messages_consumed_total{actor=\"worker\"} "));
    value.map_or(0, |v| v.parse().expect("a count"))
}

/// When the actor last woke (`start_ts`) or fell asleep (`sleep_ts`) since its node started, as the listing by id
/// says (reading it wakes nothing).
async fn listed_ts(api: &Api, actor_id: &str, field: &str) -> Option<i64> {
    let url = format!("{}/actors?actor_ids={actor_id}", api.endpoint);
    let listed: Value = api.http.get(url).send().await.unwrap().json().await.unwrap();
    listed["actors"][0][field].as_i64()
}

/// The scenario: 300 messages go to the worker's `slow` queue (10 ms each to handle) from 50 senders at once, so
/// they are accepted far faster than they are processed; the node is killed with `kill -9` as soon as every send
/// has its answer, hundreds of accepted messages still unprocessed. It restarts and nothing sends the worker
/// anything. Seen from outside only (`/metrics` and the listing by id, neither of which wakes an actor), the
/// worker wakes by itself, consumes the backlog and falls asleep, which it does only once its queue is empty.
/// Only then is it asked what it processed: every accepted message, none twice. A second worker that had drained
/// its queue and fallen asleep before the kill is not woken at all. Before the node recorded unfinished work,
/// the backlog sat untouched until a request happened to wake the worker.
#[tokio::test]
async fn after_kill_9_a_backlog_of_accepted_messages_is_processed_without_any_request() {
    let dir = tempfile::tempdir().unwrap();
    let mut node = TernProcess::start(&example_binary(), &dir.path().join("data"));
    let idle = Worker::create(&node, "idle").await;
    idle.send("jobs", json!(1), None).await.unwrap();
    let api = Api::new(&node);
    eventually("the idle worker fell asleep", CAP, || listed_ts(&api, &idle.id, "sleep_ts")).await;
    let worker = Worker::create(&node, "backlog").await;
    let sends = futures_util::stream::iter(1..=300i64)
        .map(|n| {
            let worker = &worker;
            async move { worker.send("slow", json!(n), None).await.ok().map(|_| n) }
        })
        .buffer_unordered(50);
    let accepted: Vec<i64> = sends.filter_map(std::future::ready).collect().await;
    node.kill9();
    assert_eq!(accepted.len(), 300, "every send was answered before the kill");

    node.restart();
    let api = Api::new(&node);
    let after_restart = eventually("the worker woke by itself, drained its queue and fell asleep", CAP, || async {
        let drained = listed_ts(&api, &worker.id, "sleep_ts").await.is_some();
        let consumed = consumed(&api).await;
        (drained && consumed > 0).then_some(consumed)
    })
    .await;
    let processed = worker.at(&node).processed().await;
    let mut once = processed.clone();
    once.sort_unstable();
    once.dedup();
    assert_eq!(once.len(), processed.len(), "no message was processed twice");
    assert_eq!(
        once,
        accepted.iter().copied().collect::<std::collections::BTreeSet<_>>().into_iter().collect::<Vec<_>>()
    );
    assert!(after_restart as usize <= processed.len());
    assert_eq!(listed_ts(&api, &idle.id, "start_ts").await, None, "a worker with nothing left to do stays asleep");
}

/// The worker handles a message, falls idle waiting on its queue and sleeps. Then a message is sent, and nothing
/// else touches the worker: watched from outside only (the listing by id and `/metrics`, neither of which wakes an
/// actor), it wakes (a later `start_ts`) and consumes the message. Only then is it asked what it processed. Polling
/// an action instead would wake the worker by itself, and so could not tell whether the message did.
#[tokio::test]
async fn an_actor_waiting_on_its_queue_sleeps_and_the_next_message_wakes_it() {
    let dir = tempfile::tempdir().unwrap();
    let node = TernProcess::start(&example_binary(), &dir.path().join("data"));
    let worker = Worker::create(&node, "sleepy").await;
    let api = &worker.api;
    worker.send("jobs", json!(1), None).await.unwrap();
    eventually("the idle worker fell asleep", CAP, || listed_ts(api, &worker.id, "sleep_ts")).await;
    assert_eq!(consumed(api).await, 1);
    let started_before = listed_ts(api, &worker.id, "start_ts").await.expect("the worker woke once");

    worker.send("jobs", json!(2), None).await.unwrap();
    eventually("the message woke the worker, which consumed it", CAP, || async {
        let woke = listed_ts(api, &worker.id, "start_ts").await.is_some_and(|start| start > started_before);
        (woke && consumed(api).await == 2).then_some(())
    })
    .await;
    assert_eq!(worker.processed().await, [1, 2]);
}
