//! The Rust client against a real node: every encoding, events, and reconnection when the server closes a
//! connection with a retryable reason (the actor was put to sleep).

use std::path::PathBuf;
use std::time::Duration;

use tern_client::{Client, ConnectionState, Encoding, Value};
use tern_tests::TernProcess;

fn example_binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_tern-example"))
}

async fn next_event(subscription: &mut tern_client::Subscription) -> Vec<Value> {
    tokio::time::timeout(Duration::from_secs(20), subscription.recv())
        .await
        .expect("an event within the cap")
        .expect("the connection is open")
}

#[tokio::test]
async fn actions_events_and_errors_in_every_encoding() {
    let dir = tempfile::tempdir().unwrap();
    let node = TernProcess::start(&example_binary(), &dir.path().join("data"));
    for encoding in [Encoding::Bare, Encoding::Cbor, Encoding::Json] {
        let client = Client::builder(node.endpoint()).encoding(encoding).build().unwrap();
        let key = format!("rust-{}", encoding.as_str());
        let counter = client.get_or_create("counter", key.as_str());
        assert_eq!(counter.call::<i64>("increment", (2,)).await.unwrap(), 2, "{encoding:?}");
        let conn = counter.connect().await.unwrap();
        let mut counts = conn.subscribe("newCount");
        // Let the subscription land: a round trip on the same connection is ordered after it.
        conn.call::<i64>("getCount", ()).await.unwrap();
        assert_eq!(conn.call::<i64>("increment", (3,)).await.unwrap(), 5);
        assert_eq!(next_event(&mut counts).await, vec![Value::Integer(5.into())]);

        let journal = client.get_or_create("journal", key.as_str());
        let err = journal.call::<()>("reject", ("too late",)).await.unwrap_err();
        let actor_error = err.as_actor_error().expect("a catalogue error");
        assert_eq!((actor_error.group.as_str(), actor_error.code.as_str()), ("user", "rejected"));
        let metadata = tern_proto::value::to_json(actor_error.metadata.as_ref().unwrap());
        assert_eq!(metadata, serde_json::json!({"reason": "too late", "retry": false}));
        let masked = journal.call::<()>("fail", ()).await.unwrap_err();
        assert!(masked.is_code("actor", "internal_error"), "{masked:?}");
        assert!(!masked.to_string().contains("hunter2"));
        assert!(
            client
                .get("counter", "missing")
                .call::<i64>("getCount", ())
                .await
                .unwrap_err()
                .is_code("actor", "not_found")
        );
        conn.close().await;
    }
}

#[tokio::test]
async fn a_connection_closed_by_a_sleeping_actor_reconnects_and_resubscribes() {
    let dir = tempfile::tempdir().unwrap();
    let node = TernProcess::start(&example_binary(), &dir.path().join("data"));
    let client = Client::new(node.endpoint()).unwrap();
    let counter = client.get_or_create("counter", "reconnect");
    let id = counter.resolve().await.unwrap();
    let conn = counter.connect().await.unwrap();
    let mut counts = conn.subscribe("newCount");
    conn.call::<i64>("getCount", ()).await.unwrap();
    let mut states = conn.watch_state();

    let slept = tern_tests::http_client()
        .post(format!("{}/actors/{id}/sleep", node.endpoint()))
        .json(&serde_json::json!({}))
        .send()
        .await
        .unwrap();
    assert!(slept.status().is_success());
    // The server closed the socket with `actor.stopping`; the client reconnects on its own.
    tokio::time::timeout(
        Duration::from_secs(20),
        states.wait_for(|s| matches!(s, ConnectionState::Reconnecting { .. })),
    )
    .await
    .expect("the client noticed the close")
    .unwrap();
    tokio::time::timeout(Duration::from_secs(20), states.wait_for(|s| matches!(s, ConnectionState::Connected { .. })))
        .await
        .expect("the client reconnected")
        .unwrap();
    assert_eq!(conn.call::<i64>("increment", (7,)).await.unwrap(), 7);
    assert_eq!(next_event(&mut counts).await, vec![Value::Integer(7.into())], "the subscription survived");
}
