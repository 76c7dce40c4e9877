//! Actor-to-actor calls (`c.actors()`), through the example application's `relay` actor and real processes: a
//! call reaches the callee and returns its output, the callee's errors (user errors with metadata, missing actors
//! and actions) reach the client unchanged, an actor calling itself gets `actor.self_call`, a call cycle fails
//! with `actor.action_timed_out` instead of hanging, and what the callee committed survives `kill -9`.

use std::path::PathBuf;

use serde_json::json;
use tern_tests::{Api, TernProcess};

fn example_binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_tern-example"))
}

#[tokio::test]
async fn a_call_reaches_the_callee_and_returns_its_output() {
    let dir = tempfile::tempdir().unwrap();
    let node = TernProcess::start(&example_binary(), &dir.path().join("data"));
    let api = Api::new(&node);
    let relay = api.actor("relay", "r").await;
    assert_eq!(api.call(&relay, "bump", json!(["t", 5])).await.unwrap(), json!(5));
    assert_eq!(api.call(&relay, "bump", json!(["t", 2])).await.unwrap(), json!(7));
    assert_eq!(api.call(&relay, "count", json!(["t"])).await.unwrap(), json!(7));
    assert_eq!(api.call(&relay, "calls", json!([])).await.unwrap(), json!(2));
    // The counter the relay created is an ordinary actor that clients reach directly.
    let counter = api.actor("counter", "t").await;
    assert_eq!(api.call(&counter, "getCount", json!([])).await.unwrap(), json!(7));
    // Another relay reaches the same counter; a generic forward works on any actor.
    let other = api.actor("relay", "r2").await;
    let args = json!(["counter", "t", "increment", [3]]);
    assert_eq!(api.call(&other, "forward", args).await.unwrap(), json!(10));
    let args = json!(["relay", "r", "ping", []]);
    assert_eq!(api.call(&other, "forward", args).await.unwrap(), json!("pong"));
    // An actor sends to another actor's queue; that actor's run loop handles the message.
    api.call(&relay, "enqueue", json!(["w", 4])).await.unwrap();
    api.call(&relay, "enqueue", json!(["w", 5])).await.unwrap();
    let worker = api.actor("worker", "w").await;
    tern_tests::eventually("the worker processed both messages", std::time::Duration::from_secs(30), || async {
        (api.call(&worker, "total", json!([])).await.ok() == Some(json!(9))).then_some(())
    })
    .await;
}

#[tokio::test]
async fn the_callees_errors_reach_the_client_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let node = TernProcess::start(&example_binary(), &dir.path().join("data"));
    let api = Api::new(&node);
    let relay = api.actor("relay", "r").await;
    api.actor("journal", "j").await;

    let (status, code, body) =
        api.call(&relay, "forward", json!(["journal", "j", "reject", ["too late"]])).await.unwrap_err();
    assert_eq!((status, code.as_str()), (400, "user.rejected"));
    assert_eq!(body["message"], json!("Rejected: too late"));
    assert_eq!(body["metadata"], json!({"reason": "too late", "retry": false}));

    let (status, code, _) = api.call(&relay, "count", json!(["never-created"])).await.unwrap_err();
    assert_eq!((status, code.as_str()), (404, "actor.not_found"));
    let (status, code, _) = api.call(&relay, "forward", json!(["journal", "j", "noSuchAction", []])).await.unwrap_err();
    assert_eq!((status, code.as_str()), (404, "actor.action_not_found"));
    let (status, code, _) = api.call(&relay, "forward", json!(["nobody", "j", "ping", []])).await.unwrap_err();
    assert_eq!((status, code.as_str()), (400, "actor.not_registered"));
    // The failed calls created nothing and the relay still answers.
    assert_eq!(api.call(&relay, "ping", json!([])).await.unwrap(), json!("pong"));
}

#[tokio::test]
async fn an_actor_calling_itself_fails_at_once_and_a_cycle_times_out() {
    let dir = tempfile::tempdir().unwrap();
    let node = TernProcess::start(&example_binary(), &dir.path().join("data"));
    let api = Api::new(&node);
    let a = api.actor("relay", "a").await;
    api.actor("relay", "b").await;

    // Refused at once: a self-call that was not caught would end, after the 2 s action timeout, as
    // `actor.action_timed_out` instead.
    let (status, code, body) = api.call(&a, "callSelf", json!([])).await.unwrap_err();
    assert_eq!((status, code.as_str()), (400, "actor.self_call"));
    assert_eq!(
        body["message"],
        json!("an actor cannot call its own actions from inside a turn; call the function directly")
    );
    // By key, the same actor is refused too.
    let (_, code, _) = api.call(&a, "forward", json!(["relay", "a", "ping", []])).await.unwrap_err();
    assert_eq!(code, "actor.self_call");

    // a → b → a: a is busy in its own turn, so b's call to it can only time out (relay actions: 2 s). A cycle
    // that hung would end at the client's own request cap as `transport.failed` instead.
    let cycle = json!(["relay", "b", "forward", ["relay", "a", "ping", []]]);
    let (status, code, _) = api.call(&a, "forward", cycle).await.unwrap_err();
    assert_eq!((status, code.as_str()), (408, "actor.action_timed_out"));
    // Both actors are free again.
    assert_eq!(api.call(&a, "ping", json!([])).await.unwrap(), json!("pong"));
    assert_eq!(api.call(&a, "forward", json!(["relay", "b", "ping", []])).await.unwrap(), json!("pong"));
}

#[tokio::test]
async fn what_the_callee_committed_survives_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let mut node = TernProcess::start(&example_binary(), &dir.path().join("data"));
    let api = Api::new(&node);
    let relay = api.actor("relay", "r").await;
    for n in 1..=4 {
        api.call(&relay, "bump", json!(["durable", n])).await.unwrap();
    }
    node.kill9();
    node.restart();
    let api = Api::new(&node);
    assert_eq!(api.call(&relay, "count", json!(["durable"])).await.unwrap(), json!(10));
    assert_eq!(api.call(&relay, "calls", json!([])).await.unwrap(), json!(4));
    let counter = api.actor("counter", "durable").await;
    assert_eq!(api.call(&counter, "getCount", json!([])).await.unwrap(), json!(10));
}
