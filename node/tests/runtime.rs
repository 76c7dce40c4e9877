//! The actor runtime through the node's gateway contract, in process, on real libSQL files in a temp directory.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tern_gateway::backend::{Backend, ConnInput, ConnOutput, ConnectionHandle, CreateRequest};
use tern_node::server::{NodeConfig, open_host};
use tern_node::{Actor, ActorError, ActorOptions, Host, Kv, Registry, Sql, UserError, Value};
use tern_proto::key::ActorKey;

#[derive(Debug, Default, Serialize, Deserialize)]
struct Tally {
    total: i64,
    seed: String,
}

/// Hook calls, in order, shared between the test and its actor.
type Calls = Arc<Mutex<Vec<String>>>;

fn tally(calls: Calls) -> Actor<Tally> {
    let log = move |hook: &'static str| {
        let calls = calls.clone();
        move || calls.lock().unwrap().push(hook.to_string())
    };
    let (migrate, create, wake, sleep, destroy) =
        (log("migrate"), log("create"), log("wake"), log("sleep"), log("destroy"));
    let (before, conn_state, connect, disconnect) =
        (log("beforeConnect"), log("createConnState"), log("connect"), log("disconnect"));
    Actor::new("tally")
        .options(ActorOptions { action_timeout: Duration::from_millis(300), ..ActorOptions::default() })
        .create_state(|seed: Option<String>| Ok(Tally { total: 0, seed: seed.unwrap_or_default() }))
        .on_schema(move |_sql, _new| {
            migrate();
            async { Ok(()) }
        })
        .on_create(move |_c, _input: Option<String>| {
            create();
            async { Ok(()) }
        })
        .on_wake(move |_c| {
            wake();
            async { Ok(()) }
        })
        .on_sleep(move |_c| {
            sleep();
            async { Ok(()) }
        })
        .on_destroy(move |_c| {
            destroy();
            async { Ok(()) }
        })
        .on_before_connect(move |_c, _p: Value| {
            before();
            async { Ok(()) }
        })
        .create_conn_state(move |_c, _p: Value| {
            conn_state();
            async { Ok(()) }
        })
        .on_connect(move |_c, _conn| {
            connect();
            async { Ok(()) }
        })
        .on_disconnect(move |_c, _conn| {
            disconnect();
            async { Ok(()) }
        })
        .action("add", |c, n: i64| async move {
            let total = c.update(|s: &mut Tally| {
                s.total += n;
                s.total
            });
            c.broadcast("total", &total)?;
            Ok(total)
        })
        .action("get", |c, ()| async move { Ok(c.read(|s: &Tally| (s.total, s.seed.clone()))) })
        .action("refuse", |_c, ()| async move {
            Err::<(), ActorError>(
                UserError::new("too_big", "Too big").with_metadata(serde_json::json!({"max": 3})).into(),
            )
        })
        .action("addThenRefuse", |c, n: i64| async move {
            let total = c.update(|s: &mut Tally| {
                s.total += n;
                s.total
            });
            c.broadcast("total", &total)?;
            Err::<(), ActorError>(UserError::new("refused", "no").into())
        })
        .action("nested", |c, ()| async move {
            let sql = c.sql();
            sql.execute("CREATE TABLE IF NOT EXISTS notes (text TEXT)", ()).await?;
            sql.execute("INSERT INTO notes VALUES ('kept')", ()).await?;
            let failed = sql
                .transaction(|tx| async move {
                    tx.execute("INSERT INTO notes VALUES ('undone')", ()).await?;
                    Err::<(), ActorError>(UserError::new("inner", "the nested transaction fails").into())
                })
                .await;
            assert!(failed.is_err());
            let mut rows = sql.query("SELECT text FROM notes", ()).await?;
            let mut texts = Vec::new();
            while let Some(row) = rows.next().await? {
                texts.push(row.get::<String>(0)?);
            }
            Ok(texts)
        })
        .action("leak", |_c, ()| async move { Err::<(), ActorError>(ActorError::internal("password=hunter2")) })
        .action("hang", |_c, ()| async move {
            tokio::time::sleep(Duration::from_secs(5)).await;
            Ok(())
        })
        .action("selfDestruct", |c, ()| async move {
            c.destroy();
            Ok(())
        })
}

struct Node {
    host: Host,
    calls: Calls,
}

async fn open(dir: &Path, calls: Calls) -> Node {
    let registry = Registry::new().register(tally(calls.clone()));
    let config = NodeConfig::dev("127.0.0.1:0".parse().unwrap(), dir.to_path_buf());
    // A node that just stopped may release the directory lock a moment later.
    for _ in 0..200 {
        match open_host(registry.clone(), &config).await {
            Ok(host) => return Node { host, calls },
            Err(_) => tokio::time::sleep(Duration::from_millis(25)).await,
        }
    }
    panic!("the data directory stayed locked");
}

impl Node {
    async fn stop(self) -> Calls {
        self.host.shutdown(Duration::from_secs(5)).await;
        self.calls
    }

    fn take_calls(&self) -> Vec<String> {
        std::mem::take(&mut *self.calls.lock().unwrap())
    }

    async fn create(&self, key: &str, seed: Option<&str>) -> String {
        let request = CreateRequest {
            name: "tally".into(),
            key: ActorKey::new(vec![key.into()]).unwrap(),
            input: seed.map(|s| Value::Text(s.into())),
            region: None,
        };
        self.host.create_actor(request).await.unwrap().actor_id
    }

    async fn call(&self, id: &str, action: &str, args: Vec<Value>) -> Result<Value, String> {
        self.host.call_action(id, action, Value::Array(args), None).await.map_err(|e| e.qualified_code())
    }
}

fn int(n: i64) -> Value {
    Value::Integer(n.into())
}

async fn next_output(conn: &mut ConnectionHandle) -> ConnOutput {
    tokio::time::timeout(Duration::from_secs(10), conn.outbound.recv()).await.expect("a message in time").expect("open")
}

#[tokio::test]
async fn state_survives_restart_and_sleep() {
    let dir = tempfile::tempdir().unwrap();
    let node = open(dir.path(), Calls::default()).await;
    let id = node.create("a", Some("seeded")).await;
    assert_eq!(node.call(&id, "add", vec![int(4)]).await.unwrap(), int(4));
    node.host.sleep_actor(&id).await.unwrap();
    assert_eq!(node.host.awake_count(), 0);
    // The handle stays in the bounded pool, so the wake reopens nothing, and the woken actor sees its last state.
    assert_eq!(node.host.open_databases(), 1, "a sleeping actor's handle stays pooled");
    assert_eq!(node.call(&id, "add", vec![int(1)]).await.unwrap(), int(5));
    node.host.sleep_actor(&id).await.unwrap();
    assert_eq!(node.call(&id, "add", vec![int(1)]).await.unwrap(), int(6));
    let calls = node.stop().await;

    let node = open(dir.path(), calls).await;
    let got = node.call(&id, "get", vec![]).await.unwrap();
    assert_eq!(got, Value::Array(vec![int(6), Value::Text("seeded".into())]));
    let info = node.host.get_actor_by_key("tally", &ActorKey::new(vec!["a".into()]).unwrap()).await.unwrap().unwrap();
    assert_eq!(info.actor_id, id);
    node.stop().await;
}

#[tokio::test]
async fn hooks_fire_in_rivetkit_order() {
    let dir = tempfile::tempdir().unwrap();
    let node = open(dir.path(), Calls::default()).await;
    let id = node.create("h", None).await;
    assert_eq!(node.take_calls(), ["migrate", "create", "wake"]);
    let mut conn = node.host.connect(&id, None).await.unwrap();
    assert_eq!(node.take_calls(), ["beforeConnect", "createConnState", "connect"]);
    drop(conn.inbound);
    // The disconnect hook runs once the actor hears the client left.
    for _ in 0..200 {
        if node.calls.lock().unwrap().contains(&"disconnect".to_string()) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(node.take_calls(), ["disconnect"]);
    while conn.outbound.recv().await.is_some() {}
    node.host.sleep_actor(&id).await.unwrap();
    assert_eq!(node.take_calls(), ["sleep"]);
    node.call(&id, "get", vec![]).await.unwrap();
    assert_eq!(
        node.take_calls(),
        ["migrate", "wake", "beforeConnect", "createConnState"],
        "wake, then the stateless call"
    );
    node.host.destroy_actor(&id).await.unwrap();
    assert_eq!(node.take_calls(), ["destroy"]);
    node.stop().await;
}

#[tokio::test]
async fn events_reach_only_subscribers() {
    let dir = tempfile::tempdir().unwrap();
    let node = open(dir.path(), Calls::default()).await;
    let id = node.create("e", None).await;
    let mut listener = node.host.connect(&id, None).await.unwrap();
    let mut bystander = node.host.connect(&id, None).await.unwrap();
    listener.inbound.send(ConnInput::Subscribe { event: "total".into(), subscribe: true }).await.unwrap();
    // A round trip on the listener's own (ordered) connection makes sure the subscription has landed.
    listener.inbound.send(ConnInput::Action { id: 0, name: "get".into(), args: Value::Array(vec![]) }).await.unwrap();
    assert!(matches!(next_output(&mut listener).await, ConnOutput::ActionResponse { id: 0, .. }));
    // A failed action's event is dropped with its changes.
    let refused = ConnInput::Action { id: 0, name: "addThenRefuse".into(), args: Value::Array(vec![int(50)]) };
    bystander.inbound.send(refused).await.unwrap();
    assert!(matches!(next_output(&mut bystander).await, ConnOutput::ActionResponse { id: 0, result: Err(_) }));
    bystander
        .inbound
        .send(ConnInput::Action { id: 1, name: "add".into(), args: Value::Array(vec![int(2)]) })
        .await
        .unwrap();
    match next_output(&mut listener).await {
        ConnOutput::Event { name, args } => assert_eq!((name.as_str(), args), ("total", Value::Array(vec![int(2)]))),
        other => panic!("expected the event, got {other:?}"),
    }
    match next_output(&mut bystander).await {
        ConnOutput::ActionResponse { id: 1, result } => assert_eq!(result.unwrap(), int(2)),
        other => panic!("the bystander must only get its answer, got {other:?}"),
    }
    // After unsubscribing, the listener gets no more events: its next message is its own action's answer.
    listener.inbound.send(ConnInput::Subscribe { event: "total".into(), subscribe: false }).await.unwrap();
    listener
        .inbound
        .send(ConnInput::Action { id: 7, name: "add".into(), args: Value::Array(vec![int(1)]) })
        .await
        .unwrap();
    match next_output(&mut listener).await {
        ConnOutput::ActionResponse { id: 7, result } => assert_eq!(result.unwrap(), int(3)),
        other => panic!("expected only the answer, got {other:?}"),
    }
    node.stop().await;
}

#[tokio::test]
async fn user_errors_reach_the_client_and_internal_errors_are_masked() {
    let dir = tempfile::tempdir().unwrap();
    let node = open(dir.path(), Calls::default()).await;
    let id = node.create("x", None).await;
    let err = node.host.call_action(&id, "refuse", Value::Array(vec![]), None).await.unwrap_err();
    assert_eq!((err.group.as_str(), err.code.as_str(), err.message.as_str()), ("user", "too_big", "Too big"));
    assert_eq!(err.metadata, Some(Value::Map(vec![(Value::Text("max".into()), int(3))])));
    let err = node.host.call_action(&id, "leak", Value::Array(vec![]), None).await.unwrap_err();
    assert_eq!(err.qualified_code(), "actor.internal_error");
    assert!(!err.message.contains("hunter2"), "the cause must not reach the client");
    assert_eq!(node.call(&id, "nope", vec![]).await.unwrap_err(), "actor.action_not_found");
    assert_eq!(node.call(&id, "add", vec![Value::Text("x".into())]).await.unwrap_err(), "actor.invalid_request");
    assert_eq!(node.call(&id, "hang", vec![]).await.unwrap_err(), "actor.action_timed_out");
    // A failed action keeps nothing of what it changed.
    node.call(&id, "add", vec![int(10)]).await.unwrap();
    assert!(node.call(&id, "addThenRefuse", vec![int(5)]).await.is_err());
    // A failed nested transaction undoes only its own statements.
    assert_eq!(node.call(&id, "nested", vec![]).await.unwrap(), Value::Array(vec![Value::Text("kept".into())]));
    assert_eq!(node.call(&id, "get", vec![]).await.unwrap(), Value::Array(vec![int(10), Value::Text(String::new())]));
    node.stop().await;
}

#[tokio::test]
async fn destroyed_actors_are_not_found_and_their_key_is_free() {
    let dir = tempfile::tempdir().unwrap();
    let node = open(dir.path(), Calls::default()).await;
    let id = node.create("d", None).await;
    node.call(&id, "add", vec![int(1)]).await.unwrap();
    node.call(&id, "selfDestruct", vec![]).await.unwrap();
    for _ in 0..200 {
        if node.host.get_actor_by_key("tally", &ActorKey::new(vec!["d".into()]).unwrap()).await.unwrap().is_none() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(node.call(&id, "get", vec![]).await.unwrap_err(), "actor.not_found");
    assert!(node.host.get_actor_by_key("tally", &ActorKey::new(vec!["d".into()]).unwrap()).await.unwrap().is_none());
    let again = node.create("d", None).await;
    assert_ne!(again, id, "a new actor gets a new id");
    assert_eq!(node.call(&again, "get", vec![]).await.unwrap(), Value::Array(vec![int(0), Value::Text(String::new())]));
    let destroyed = node.host.get_actors_by_ids(std::slice::from_ref(&id)).await.unwrap();
    assert!(destroyed[0].destroy_ts.is_some(), "the destroyed actor is listed with its destroy time");
    node.stop().await;
    // Its database files are gone.
    let leftovers: Vec<_> = walk(dir.path()).into_iter().filter(|p| p.contains(&id)).collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[tokio::test]
async fn create_of_an_existing_key_is_refused_and_get_or_create_is_idempotent() {
    let dir = tempfile::tempdir().unwrap();
    let node = open(dir.path(), Calls::default()).await;
    let id = node.create("k", None).await;
    let request = || CreateRequest {
        name: "tally".into(),
        key: ActorKey::new(vec!["k".into()]).unwrap(),
        input: None,
        region: None,
    };
    assert_eq!(node.host.create_actor(request()).await.unwrap_err().qualified_code(), "actor.duplicate_key");
    let results = futures_util::future::join_all((0..20).map(|_| node.host.get_or_create_actor(request()))).await;
    for result in results {
        let (info, created) = result.unwrap();
        assert_eq!((info.actor_id.as_str(), created), (id.as_str(), false));
    }
    let unknown = CreateRequest { name: "nobody".into(), key: ActorKey::default(), input: None, region: None };
    assert_eq!(node.host.create_actor(unknown).await.unwrap_err().qualified_code(), "actor.not_registered");
    node.stop().await;
}

fn walk(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path.display().to_string());
        }
    }
    out
}

/// Where the `keeper` actor leaves the SQL and KV handles of its last `keep`, for the test to use after that turn.
type Kept = Arc<Mutex<Option<(Sql, Kv)>>>;

fn keeper(kept: Kept) -> Actor<()> {
    Actor::new("keeper")
        .create_state(|_: Option<Value>| Ok(()))
        .on_create(|c, _: Option<Value>| async move {
            c.sql().execute("CREATE TABLE t (v INTEGER)", ()).await?;
            Ok(())
        })
        .action("keep", move |c, ()| {
            let kept = kept.clone();
            async move {
                let sql = c.sql();
                sql.execute("INSERT INTO t VALUES (1)", ()).await?;
                *kept.lock().unwrap() = Some((sql, c.kv()));
                Ok(())
            }
        })
        .action("count", |c, ()| async move {
            let mut rows = c.sql().query("SELECT count(*) FROM t", ()).await?;
            Ok(rows.next().await?.expect("a count").get::<i64>(0).expect("an integer"))
        })
}

/// An `Sql` or `Kv` handle works only while a turn holds its connection: kept past its turn (in a static, a
/// spawned task), every statement through it is refused with `database.statement_not_allowed` while the actor
/// runs no turn, so it can never write through a connection the pool has let go of (whose file may have a new
/// connection, or have become a replica, by then).
#[tokio::test]
async fn an_sql_handle_kept_past_its_turn_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let kept = Kept::default();
    let registry = Registry::new().register(keeper(kept.clone()));
    let host =
        open_host(registry, &NodeConfig::dev("127.0.0.1:0".parse().unwrap(), dir.path().to_path_buf())).await.unwrap();
    let request = CreateRequest {
        name: "keeper".into(),
        key: ActorKey::new(vec!["k".into()]).unwrap(),
        input: None,
        region: None,
    };
    let id = host.create_actor(request).await.unwrap().actor_id;
    host.call_action(&id, "keep", Value::Array(vec![]), None).await.unwrap();

    let (sql, kv) = kept.lock().unwrap().take().expect("the handles the turn kept");
    let refused = |result: Result<String, ActorError>| {
        let err = result.expect_err("refused").to_string();
        assert!(err.starts_with("database.statement_not_allowed: "), "{err}");
    };
    refused(sql.execute("INSERT INTO t VALUES (2)", ()).await.map(|n| n.to_string()));
    refused(sql.query("SELECT * FROM t", ()).await.map(|_| "rows".into()));
    refused(sql.prepare("SELECT * FROM t").await.map(|_| "a statement".into()));
    refused(sql.transaction(|_| async { Ok(()) }).await.map(|()| "a transaction".into()));
    refused(kv.put("k", "v").await.map(|()| "a put".into()));
    refused(kv.get("k").await.map(|_| "a value".into()));
    assert_eq!(host.call_action(&id, "count", Value::Array(vec![]), None).await.unwrap(), Value::Integer(1.into()));
    host.shutdown(Duration::from_secs(5)).await;
}
