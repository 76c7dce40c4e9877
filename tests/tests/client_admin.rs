//! `tern-client`'s admin and inspector API against a real node: every call, the admin token and the actor's
//! own inspector token.

use std::path::PathBuf;

use serde_json::{Map, json};
use tern_client::{Client, SpanStatus, Value};
use tern_tests::TernProcess;

fn example_binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_tern-example"))
}

fn start(args: &[&str]) -> (TernProcess, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    (TernProcess::start_with(&example_binary(), &dir.path().join("data"), args), dir)
}

#[tokio::test]
async fn admin_calls() {
    let (node, _dir) = start(&[]);
    let client = Client::new(node.endpoint()).unwrap();
    assert!(client.list_actors(None, None).await.unwrap().is_empty());
    let counter = client.create_actor("counter", "a", &Default::default()).await.unwrap();
    client.create_actor("counter", "b", &Default::default()).await.unwrap();
    client.create_actor("sqlite", "a", &Default::default()).await.unwrap();

    assert_eq!(client.list_actors(None, None).await.unwrap().len(), 3);
    let counters = client.list_actors(Some("counter"), None).await.unwrap();
    assert!(counters.len() == 2 && counters.iter().all(|a| a.name == "counter"));
    assert_eq!(client.list_actors(None, Some(1)).await.unwrap().len(), 1);
    // Pages of one actor each, by the cursor each page hands out: all three, newest first, then the end.
    let mut paged = Vec::new();
    let mut url = format!("{}/actors?limit=1", node.endpoint());
    loop {
        let page = tern_tests::fetch_json(tern_tests::http_client().get(&url)).await;
        paged.extend(page["actors"].as_array().unwrap().iter().map(|a| a["create_ts"].as_i64().unwrap()));
        let Some(cursor) = page["pagination"]["cursor"].as_str() else { break };
        url = format!("{}/actors?limit=1&cursor={cursor}", node.endpoint());
        assert!(paged.len() <= 3, "pages go on past the last actor");
    }
    assert!(paged.len() == 3 && paged.is_sorted_by(|a, b| a >= b), "{paged:?}");
    let bad = tern_tests::http_client().get(format!("{}/actors?cursor=nonsense", node.endpoint())).send().await;
    let bad = bad.unwrap();
    assert_eq!(bad.status(), 400);
    assert_eq!(bad.json::<serde_json::Value>().await.unwrap()["code"], "invalid_request");

    let found = client.actor_by_id(&counter.actor_id).await.unwrap().unwrap();
    assert_eq!((found.name.as_str(), found.key.as_deref()), ("counter", Some("a")));
    assert_eq!(client.actor_by_id("0123456789abcdef0123456789abcdef").await.unwrap(), None);

    client.sleep_actor(&counter.actor_id).await.unwrap();
    let slept = client.actor_by_id(&counter.actor_id).await.unwrap().unwrap();
    assert!(slept.sleep_ts.is_some(), "{slept:?}");

    let token = client.kv_get(&counter.actor_id, &[3]).await.unwrap().expect("the inspector token is in KV");
    assert!(!token.value.is_empty() && token.update_ts > 0);
    assert_eq!(client.kv_get(&counter.actor_id, b"nothing here").await.unwrap(), None);

    client.destroy_actor(&counter.actor_id).await.unwrap();
    let destroyed = client.actor_by_id(&counter.actor_id).await.unwrap().expect("destroyed actors are listed by id");
    assert!(destroyed.destroy_ts.is_some());
}

#[tokio::test]
async fn inspector_calls() {
    let (node, _dir) = start(&[]);
    let client = Client::new(node.endpoint()).unwrap();
    let counter = client.create_actor("counter", "i", &Default::default()).await.unwrap();
    let inspector = client.inspector(&counter.actor_id);
    assert_eq!(inspector.actor_id(), counter.actor_id);

    assert_eq!(inspector.action("increment", vec![json!(4)]).await.unwrap(), json!(4));
    let state = inspector.state().await.unwrap();
    assert_eq!((state.state, state.is_state_enabled), (json!({"count": 4}), true));
    inspector.set_state(&json!({"count": 10})).await.unwrap();
    let handle = client.get_for_id("counter", &counter.actor_id);
    assert_eq!(handle.action("getCount", vec![]).await.unwrap(), Value::from(10));
    let mut rpcs = inspector.rpcs().await.unwrap();
    rpcs.sort();
    assert_eq!(rpcs, ["destroy", "getCount", "increment"]);
    let err = inspector.action("nope", vec![]).await.unwrap_err();
    assert!(err.is_code("actor", "action_not_found"), "{err}");

    // Connections: a room member with parameters.
    let room = client.get_or_create("room", "lobby").with_params(Value::serialized(&json!({"name": "ada"})).unwrap());
    let conn = room.connect().await.unwrap();
    let room_inspector = client.inspector(&room.resolve().await.unwrap());
    let connections = room_inspector.connections().await.unwrap();
    assert_eq!(connections.len(), 1);
    assert_eq!(connections[0].details.params, json!({"name": "ada"}));
    let summary = room_inspector.summary().await.unwrap();
    assert_eq!(summary.connections.len(), 1);
    assert!(summary.rpcs.contains(&"post".to_string()));
    conn.close().await;

    let summary = inspector.summary().await.unwrap();
    assert_eq!((summary.state, summary.is_database_enabled), (json!({"count": 10}), true));

    let traces = inspector.traces(0, u64::MAX / 2, 100).await.unwrap();
    let spans = traces.spans();
    let increment = spans.iter().find(|s| s.name.contains("increment")).expect("a span for increment");
    assert_eq!(increment.status, SpanStatus::Ok);
    assert!(increment.end_unix_nano >= increment.start_unix_nano && increment.start_unix_nano > 0);
}

#[tokio::test]
async fn inspector_sql() {
    let (node, _dir) = start(&[]);
    let client = Client::new(node.endpoint()).unwrap();
    let db = client.create_actor("sqlite", "i", &Default::default()).await.unwrap();
    let inspector = client.inspector(&db.actor_id);
    let created = inspector.execute("CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT)", ()).await.unwrap();
    assert!(created.is_empty());
    for name in ["a", "b", "c"] {
        inspector.execute("INSERT INTO items (name) VALUES (?)", vec![json!(name)]).await.unwrap();
    }
    let mut named = Map::new();
    named.insert("name".into(), json!("b"));
    let rows = inspector.execute("SELECT id FROM items WHERE name = :name", named).await.unwrap();
    assert_eq!(rows, [json!({"id": 2})]);
    let big = inspector.execute("SELECT 9007199254740993 AS n", ()).await.unwrap();
    assert_eq!(big, [json!({"n": ["$BigInt", "9007199254740993"]})]);
    let err = inspector.execute("SELECT nope", ()).await.unwrap_err();
    assert!(err.is_code("database", "sql_error"), "{err}");

    let schema = inspector.schema().await.unwrap();
    let items = schema.tables.iter().find(|t| t.table.name == "items").expect("items is listed");
    assert_eq!((items.table.kind.as_str(), items.records, items.columns.len()), ("table", 3, 2));
    let rows = inspector.rows("items", 2, 1).await.unwrap();
    assert_eq!(rows, [json!({"id": 2, "name": "b"}), json!({"id": 3, "name": "c"})]);

    let file = inspector.export().await.unwrap();
    assert!(file.starts_with(b"SQLite format 3\0"));
}

#[tokio::test]
async fn tokens() {
    let (node, _dir) = start(&["--admin-token", "adm1n"]);
    let anonymous = Client::new(node.endpoint()).unwrap();
    let admin = Client::builder(node.endpoint()).token("adm1n").build().unwrap();
    let counter = anonymous.create_actor("counter", "t", &Default::default()).await.unwrap();

    let err = anonymous.list_actors(None, None).await.unwrap_err();
    assert_eq!(err.as_actor_error().map(|e| e.status), Some(401), "{err}");
    assert!(anonymous.inspector(&counter.actor_id).state().await.is_err());
    assert_eq!(admin.list_actors(None, None).await.unwrap().len(), 1);
    assert_eq!(admin.inspector(&counter.actor_id).state().await.unwrap().state, json!({"count": 0}));

    // The actor's own inspector token opens its inspector, and only its.
    let token = admin.kv_get(&counter.actor_id, &[3]).await.unwrap().unwrap();
    let own = Client::builder(node.endpoint()).token(String::from_utf8(token.value).unwrap()).build().unwrap();
    assert_eq!(own.inspector(&counter.actor_id).rpcs().await.unwrap().len(), 3);
    assert!(own.list_actors(None, None).await.is_err(), "an inspector token is not an admin token");
}
