//! Actor-to-actor calls (`c.actors()`) in process: from actions, hooks and run-loop steps; create and destroy
//! through handles; errors passing through; and a host whose actors made calls still stops and releases its
//! data directory (actor code holds the host only weakly).

use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tern_gateway::backend::{Backend, CreateRequest};
use tern_node::server::{NodeConfig, open_host};
use tern_node::{Actor, ActorError, ActorOptions, Host, Registry, UserError, Value};
use tern_proto::key::ActorKey;

#[derive(Debug, Default, Serialize, Deserialize)]
struct Ledger {
    total: i64,
}

/// The callee: `add(n)` → new total, `total()`, `refuse(n)` → a user error with metadata.
fn ledger() -> Actor<Ledger> {
    Actor::new("ledger")
        .create_state(|start: Option<i64>| Ok(Ledger { total: start.unwrap_or_default() }))
        .action("add", |c, n: i64| async move {
            Ok(c.update(|s: &mut Ledger| {
                s.total += n;
                s.total
            }))
        })
        .action("total", |c, ()| async move { Ok(c.read(|s: &Ledger| s.total)) })
        .action("refuse", |_c, n: i64| async move {
            Err::<(), ActorError>(UserError::new("refused", "no").with_metadata(n).into())
        })
        .action("stall", |_c, ms: u64| async move {
            tokio::time::sleep(Duration::from_millis(ms)).await;
            Ok(())
        })
}

/// The caller: adds 100 to ledger `hooks` when created, 1 to ledger `run` from its run loop, and forwards calls.
fn agent() -> Actor<()> {
    Actor::new("agent")
        .options(ActorOptions { action_timeout: Duration::from_millis(300), ..ActorOptions::default() })
        .on_create(|c, _input: Value| async move {
            let _: i64 = c.actors().get_or_create("ledger", "hooks").call("add", 100).await?;
            Ok(())
        })
        .run(|r| async move {
            r.step(|c| async move { c.actors().get_or_create("ledger", "run").call::<i64>("add", 1).await }).await?;
            Ok(())
        })
        .action("add", |c, (key, n): (String, i64)| async move {
            c.actors().get_or_create("ledger", key).call::<i64>("add", n).await
        })
        .action("refuse", |c, n: i64| async move { c.actors().get("ledger", "main").call::<()>("refuse", n).await })
        .action("stall", |c, ms: u64| async move { c.actors().get("ledger", "main").call::<()>("stall", ms).await })
        .action("open", |c, (key, start): (String, i64)| async move {
            let ledger = c.actors().create("ledger", [key.as_str()], start).await?;
            let id = ledger.resolve().await?;
            let total: i64 = c.actors().get_for_id("ledger", &id).call("total", ()).await?;
            Ok((id, total))
        })
        .action("close", |c, key: String| async move { c.actors().get("ledger", vec![key]).destroy().await })
        .action("wrongName", |c, id: String| async move {
            c.actors().get_for_id("agent", &id).call::<i64>("total", ()).await
        })
}

async fn open(dir: &Path) -> Host {
    let registry = Registry::new().register(ledger()).register(agent());
    let config = NodeConfig::dev("127.0.0.1:0".parse().unwrap(), dir.to_path_buf());
    // A node that just stopped may release the directory lock a moment later.
    for _ in 0..200 {
        if let Ok(host) = open_host(registry.clone(), &config).await {
            return host;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("the data directory stayed locked: a stopped host was kept alive");
}

async fn create(host: &Host, name: &str, key: &str) -> String {
    let request =
        CreateRequest { name: name.into(), key: ActorKey::new(vec![key.into()]).unwrap(), input: None, region: None };
    host.get_or_create_actor(request).await.unwrap().0.actor_id
}

async fn call(host: &Host, id: &str, action: &str, args: Vec<Value>) -> Result<Value, tern_proto::ClientError> {
    host.call_action(id, action, Value::Array(args), None).await
}

async fn total(host: &Host, key: &str) -> Option<i64> {
    let info = host.get_actor_by_key("ledger", &ActorKey::new(vec![key.into()]).unwrap()).await.unwrap()?;
    let total = call(host, &info.actor_id, "total", vec![]).await.unwrap();
    Some(total.deserialized().unwrap())
}

fn int(n: i64) -> Value {
    Value::Integer(n.into())
}

fn text(s: &str) -> Value {
    Value::Text(s.into())
}

#[tokio::test]
async fn actions_hooks_and_steps_call_other_actors_and_the_host_still_stops() {
    let dir = tempfile::tempdir().unwrap();
    let host = open(dir.path()).await;
    let agent = create(&host, "agent", "a").await;
    assert_eq!(total(&host, "hooks").await, Some(100), "the create hook's call committed before the create returned");
    assert_eq!(call(&host, &agent, "add", vec![text("main"), int(7)]).await.unwrap(), int(7));
    for _ in 0..200 {
        if total(&host, "run").await.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(total(&host, "run").await, Some(1), "the run loop's step called the ledger");
    host.shutdown(Duration::from_secs(5)).await;
    drop(host);

    let host = open(dir.path()).await;
    assert_eq!(total(&host, "main").await, Some(7));
    assert_eq!(total(&host, "hooks").await, Some(100));
    host.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test]
async fn handles_create_destroy_and_pass_errors_through() {
    let dir = tempfile::tempdir().unwrap();
    let host = open(dir.path()).await;
    let agent = create(&host, "agent", "b").await;
    let opened = call(&host, &agent, "open", vec![text("new"), int(40)]).await.unwrap();
    let (id, start): (String, i64) = opened.deserialized().unwrap();
    assert_eq!(start, 40, "created with its input");
    let duplicate = call(&host, &agent, "open", vec![text("new"), int(1)]).await.unwrap_err();
    assert_eq!(duplicate.qualified_code(), "actor.duplicate_key");
    let wrong = call(&host, &agent, "wrongName", vec![text(&id)]).await.unwrap_err();
    assert_eq!(wrong.qualified_code(), "actor.not_found", "an id of another actor name is not found");

    call(&host, &agent, "close", vec![text("new")]).await.unwrap();
    assert_eq!(total(&host, "new").await, None);
    let gone = call(&host, &agent, "close", vec![text("new")]).await.unwrap_err();
    assert_eq!(gone.qualified_code(), "actor.not_found");

    let missing = call(&host, &agent, "refuse", vec![int(3)]).await.unwrap_err();
    assert_eq!(missing.qualified_code(), "actor.not_found");
    call(&host, &agent, "add", vec![text("main"), int(0)]).await.unwrap();
    let refused = call(&host, &agent, "refuse", vec![int(3)]).await.unwrap_err();
    assert_eq!((refused.qualified_code().as_str(), refused.metadata), ("user.refused", Some(int(3))));

    // The ledger's own timeout is 60 s and it stalls for 30; the agent's action (300 ms) bounds the call. A call
    // it did not bound would end after 30 s with the ledger's answer; the 20 s cap is only there to fail sooner.
    let stall = call(&host, &agent, "stall", vec![int(30_000)]);
    let stalled = tokio::time::timeout(Duration::from_secs(20), stall).await.expect("the call ended").unwrap_err();
    assert_eq!(stalled.qualified_code(), "actor.action_timed_out");
    host.shutdown(Duration::from_secs(5)).await;
}
