//! A cluster create interrupted between recording the actor on its home and binding its key (the node died):
//! on its next start the node keeps such an actor if the directory bound the key to it and drops it otherwise,
//! so no unreachable actor lingers and the key works as if the create never happened.

use std::time::Duration;

use serde_json::{Value, json};
use tern_tests::cluster::{Ca, Node, TOKEN, plan, voters_arg};
use tern_tests::{Api, eventually, fetch_json};

/// How long the restarted node may take to settle the interrupted creates (it asks the directory once it runs).
const SETTLE_CAP: Duration = Duration::from_secs(60);

#[tokio::test]
async fn an_interrupted_create_is_settled_on_the_next_start() {
    let (ca, work) = (Ca::new(), tempfile::tempdir().unwrap());
    let plans = plan(&[("solo-1", "iad")]);
    let voters = voters_arg(&[&plans[0]]);
    let mut node = Node::start(&ca, work.path(), &plans[0], &[], Some(&voters), &[]);
    let api = Api::new(&node.process);
    let kept = api.actor("counter", "kept").await;
    assert_eq!(api.call(&kept, "increment", json!([2])).await.unwrap(), json!(2));
    assert!(node.process.terminate().success());

    // What a crash in the middle of two creates leaves in node.db: the kept actor's key was bound (only its
    // pending mark remains), the orphan's never was.
    let orphan = "0123456789abcdef0123456789abcdef";
    let db = libsql::Builder::new_local(work.path().join("solo-1").join("node.db")).build().await.unwrap();
    let conn = db.connect().unwrap();
    let key = tern_proto::key::serialize_key(&["interrupted".to_string()]);
    conn.execute(
        "INSERT INTO actors (actor_id, name, key, input, create_ts) VALUES (?1, 'counter', ?2, NULL, 1)",
        libsql::params![orphan, key.as_str()],
    )
    .await
    .unwrap();
    for id in [orphan, kept.as_str()] {
        conn.execute("INSERT INTO pending_creates (actor_id) VALUES (?1)", [id]).await.unwrap();
    }
    drop(conn);
    drop(db);

    node.process.restart();
    let api = Api::new(&node.process);
    let list = || fetch_json(api.http.get(format!("{}/actors?name=counter", api.endpoint)).bearer_auth(TOKEN));
    eventually("the orphan is dropped", SETTLE_CAP, || async {
        let listing: Value = list().await;
        let ids: Vec<String> =
            listing["actors"].as_array()?.iter().filter_map(|a| a["actor_id"].as_str().map(str::to_string)).collect();
        (!ids.iter().any(|id| id == orphan)).then_some(())
    })
    .await;
    let listing = list().await;
    assert!(listing["actors"].as_array().unwrap().iter().any(|a| a["actor_id"] == kept.as_str()), "{listing}");
    assert_eq!(api.call(&kept, "increment", json!([1])).await.unwrap(), json!(3));
    // The key the orphan held locally is free: a create makes a new actor, which works.
    let fresh = api.actor("counter", "interrupted").await;
    assert_ne!(fresh, orphan);
    assert_eq!(api.call(&fresh, "increment", json!([1])).await.unwrap(), json!(1));
    let err = api.call(orphan, "getCount", json!([])).await.unwrap_err();
    assert_eq!(err.1, "actor.not_found");
}
