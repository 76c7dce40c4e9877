//! Moving live actors between real `tern node` processes in three regions (loopback, QUIC, mutual TLS): clients
//! keep calling an actor through every gateway while it moves iad → fra → sin → iad, a connected client keeps its
//! WebSocket and receives every event in order, and no call fails; a sleeping actor moves without waking; a
//! migration's errors are the catalogue's.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use tern_client::{Client, ConnectionState, Encoding};
use tern_tests::cluster::{self, CONVERGE_CAP, Ca, Node, TOKEN};
use tern_tests::{Api, eventually, fetch_json};

/// How many moves the actor makes under load.
const MOVES: usize = 10;

/// Prints the logs of the nodes when the test fails (a guard held for the test's length).
struct LogsOnFailure(Vec<(String, std::path::PathBuf)>);

impl LogsOnFailure {
    fn of(nodes: &[Node]) -> LogsOnFailure {
        LogsOnFailure(nodes.iter().map(|n| (n.name.clone(), n.process.log_path().to_path_buf())).collect())
    }
}

impl Drop for LogsOnFailure {
    fn drop(&mut self) {
        if std::thread::panicking() {
            for (name, path) in &self.0 {
                eprintln!("==== {name}\n{}", std::fs::read_to_string(path).unwrap_or_default());
            }
        }
    }
}

/// Three nodes, iad-1, fra-1 and sin-1, all voters, seen alive by each other.
async fn three_regions(ca: &Ca, work: &std::path::Path, extra: &[&str]) -> Vec<Node> {
    let nodes = cluster::three_regions(ca, work, extra);
    cluster::converge(&nodes).await;
    nodes
}

/// `POST /actors/{id}/migrate` through `node`'s gateway: the status and the body.
async fn migrate(node: &Node, actor_id: &str, target: Value) -> (u16, Value) {
    let url = format!("{}/actors/{actor_id}/migrate", node.process.endpoint());
    let response = tern_tests::http_client().post(url).bearer_auth(TOKEN).json(&target).send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// `GET path` (admin) through `node`'s gateway, as JSON.
async fn admin_get(node: &Node, path: &str) -> Value {
    fetch_json(tern_tests::http_client().get(format!("{}{path}", node.process.endpoint())).bearer_auth(TOKEN)).await
}

/// The actor's record through `node`'s gateway (`GET /actors?actor_ids=`).
async fn record(node: &Node, actor_id: &str) -> Value {
    admin_get(node, &format!("/actors?actor_ids={actor_id}")).await["actors"][0].clone()
}

/// Calls `increment(1)` through `api` until `stop`, recording each acknowledged count and every failure.
async fn increment(
    api: Api,
    id: String,
    stop: Arc<Mutex<bool>>,
    acked: Arc<Mutex<Vec<i64>>>,
    failed: Arc<Mutex<Vec<String>>>,
) {
    while !*stop.lock().unwrap() {
        match api.call(&id, "increment", json!([1])).await {
            Ok(count) => acked.lock().unwrap().push(count.as_i64().expect("a count")),
            Err((status, code, body)) => {
                failed.lock().unwrap().push(format!("via {}: {status} {code} {body}", api.endpoint))
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_actor_moves_between_regions_under_load_and_no_call_fails() {
    let (ca, work) = (Ca::new(), tempfile::tempdir().unwrap());
    let nodes = three_regions(&ca, work.path(), &[]).await;
    let _logs = LogsOnFailure::of(&nodes);
    let iad = Api::new(&nodes[0].process);
    let id = iad.actor("counter", "moving").await;

    // A client connected through fra's gateway, subscribed to every count.
    let client = Client::builder(nodes[1].process.endpoint()).encoding(Encoding::Json).build().unwrap();
    let counter = client.get_or_create("counter", "moving");
    let conn = Arc::new(counter.connect().await.unwrap());
    let mut counts = conn.subscribe("newCount");
    conn.call::<i64>("getCount", ()).await.unwrap();
    let mut states = conn.watch_state();
    let connection_id = conn.connection_id();

    // Writers through every gateway over HTTP, and one on the connection itself.
    let stop = Arc::new(Mutex::new(false));
    let acked = Arc::new(Mutex::new(Vec::new()));
    let failed = Arc::new(Mutex::new(Vec::new()));
    let mut writers: Vec<_> = nodes
        .iter()
        .map(|node| {
            let api = Api::new(&node.process);
            tokio::spawn(increment(api, id.clone(), stop.clone(), acked.clone(), failed.clone()))
        })
        .collect();
    let on_conn = {
        let (conn, stop, acked, failed) = (conn.clone(), stop.clone(), acked.clone(), failed.clone());
        tokio::spawn(async move {
            while !*stop.lock().unwrap() {
                match conn.call::<i64>("increment", (1,)).await {
                    Ok(count) => acked.lock().unwrap().push(count),
                    Err(e) => failed.lock().unwrap().push(format!("connection: {e}")),
                }
            }
        })
    };

    let route = ["fra", "sin", "iad"];
    let mut pauses = Vec::new();
    for step in 0..MOVES {
        // Let calls flow between moves.
        let before = acked.lock().unwrap().len();
        eventually("calls are acknowledged", CONVERGE_CAP, || async {
            (acked.lock().unwrap().len() >= before + 20).then_some(())
        })
        .await;
        let to = route[step % route.len()];
        let through = &nodes[(step + 1) % nodes.len()];
        let (status, moved) = migrate(through, &id, json!({"region": to})).await;
        assert_eq!(status, 200, "move {step} to {to}: {moved}");
        assert_eq!(moved["to"]["region"], json!(to), "{moved}");
        assert_ne!(moved["from"]["region"], json!(to), "{moved}");
        assert_eq!(moved["actor_id"], json!(id));
        pauses.push(moved["pause_ms"].as_u64().unwrap());
        // Every gateway's record shows the actor's new region.
        for node in &nodes {
            let now = record(node, &id).await;
            assert_eq!(now["datacenter"], json!(to), "through {}: {now}", node.name);
        }
    }
    let before = acked.lock().unwrap().len();
    eventually("calls are acknowledged after the last move", CONVERGE_CAP, || async {
        (acked.lock().unwrap().len() >= before + 20).then_some(())
    })
    .await;
    *stop.lock().unwrap() = true;
    writers.push(on_conn);
    for writer in writers {
        writer.await.unwrap();
    }

    let failed = failed.lock().unwrap().clone();
    assert!(failed.is_empty(), "{} calls failed during the moves: {failed:?}", failed.len());
    let mut acked = acked.lock().unwrap().clone();
    acked.sort_unstable();
    let n = acked.len() as i64;
    assert_eq!(acked, (1..=n).collect::<Vec<_>>(), "each acknowledged increment has its own count, none missing");
    assert_eq!(
        iad.call(&id, "getCount", json!([])).await.unwrap(),
        json!(n),
        "the count is every acknowledged increment"
    );

    // The connection never closed, kept its id, and received every count in order.
    assert!(!states.has_changed().unwrap(), "the connection's state changed: {:?}", *states.borrow_and_update());
    assert!(matches!(conn.state(), ConnectionState::Connected { .. }));
    assert_eq!(conn.connection_id(), connection_id);
    let mut events = Vec::new();
    while events.len() < n as usize {
        let event =
            tokio::time::timeout(Duration::from_secs(20), counts.recv()).await.expect("an event").expect("open");
        events.push(event[0].as_integer().and_then(|i| i64::try_from(i).ok()).expect("a count"));
    }
    assert_eq!(events, (1..=n).collect::<Vec<_>>(), "every event, in order");
    println!("{MOVES} moves under load, {n} increments acknowledged, none failed; pauses (ms): {pauses:?}");
}

/// Text frames a raw WebSocket client received, and whether the socket closed (with what).
#[derive(Default)]
struct Received {
    texts: Vec<String>,
    closed: Option<String>,
}

/// Opens `/gateway/{actor}/websocket/room` through `node`'s gateway; a task sends `{name}-1`, `{name}-2`, … until
/// `stop` (returning how many it sent), another records every frame the socket receives.
async fn socket_client(
    node: &Node,
    actor_id: &str,
    name: &'static str,
    stop: Arc<Mutex<bool>>,
) -> (tokio::task::JoinHandle<u64>, Arc<Mutex<Received>>) {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let url = format!("{}/gateway/{actor_id}/websocket/room", node.process.endpoint().replacen("http", "ws", 1));
    let mut request = url.into_client_request().unwrap();
    request.headers_mut().insert("sec-websocket-protocol", "rivet".parse().unwrap());
    let (socket, _) = tokio_tungstenite::connect_async(request).await.unwrap();
    let (mut sink, mut stream) = socket.split();
    let received = Arc::new(Mutex::new(Received::default()));
    let recorder = received.clone();
    tokio::spawn(async move {
        while let Some(frame) = stream.next().await {
            match frame {
                Ok(Message::Text(text)) => recorder.lock().unwrap().texts.push(text.as_str().to_string()),
                Ok(Message::Close(close)) => {
                    recorder.lock().unwrap().closed = Some(format!("{close:?}"));
                    return;
                }
                Ok(_) => {}
                Err(e) => {
                    recorder.lock().unwrap().closed = Some(e.to_string());
                    return;
                }
            }
        }
        recorder.lock().unwrap().closed = Some("the stream ended".into());
    });
    let sender = tokio::spawn(async move {
        let mut sent = 0;
        while !*stop.lock().unwrap() {
            sent += 1;
            sink.send(Message::text(format!("{name}-{sent}"))).await.unwrap();
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        // Kept open (not closed) until the test ends.
        std::mem::forget(sink);
        sent
    });
    (sender, received)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn raw_websockets_follow_their_actor_and_each_message_reaches_one_handler() {
    let (ca, work) = (Ca::new(), tempfile::tempdir().unwrap());
    let example = std::path::PathBuf::from(env!("CARGO_BIN_EXE_tern-example"));
    let nodes = cluster::three_regions_running(&example, &ca, work.path(), &[]);
    cluster::converge(&nodes).await;
    let _logs = LogsOnFailure::of(&nodes);
    let iad = Api::new(&nodes[0].process);
    let id = iad.actor("web", "moving-socket").await;

    // One socket through the actor's first home's gateway (local at first), one through sin's (bridged).
    let stop = Arc::new(Mutex::new(false));
    let clients = [
        socket_client(&nodes[0], &id, "a", stop.clone()).await,
        socket_client(&nodes[2], &id, "b", stop.clone()).await,
    ];
    let echoes = || clients.iter().map(|(_, r)| r.lock().unwrap().texts.len()).sum::<usize>();

    let route = ["fra", "sin", "iad"];
    for step in 0..6 {
        let before = echoes();
        eventually("echoes arrive", CONVERGE_CAP, || async { (echoes() >= before + 20).then_some(()) }).await;
        let to = route[step % route.len()];
        let (status, moved) = migrate(&nodes[(step + 1) % nodes.len()], &id, json!({"region": to})).await;
        assert_eq!(status, 200, "move {step} to {to}: {moved}");
        assert_eq!(moved["to"]["region"], json!(to), "{moved}");
    }
    let before = echoes();
    eventually("echoes arrive after the last move", CONVERGE_CAP, || async { (echoes() >= before + 20).then_some(()) })
        .await;
    *stop.lock().unwrap() = true;

    // Each socket stayed open and got one greeting, then the echo of every message it sent, once, in order.
    let mut total = 0;
    for ((sender, received), name) in clients.into_iter().zip(["a", "b"]) {
        let sent = sender.await.unwrap();
        total += sent;
        let expected: Vec<String> =
            std::iter::once("hello /room".to_string()).chain((1..=sent).map(|n| format!("{name}-{n}"))).collect();
        eventually(&format!("socket {name} receives every echo"), CONVERGE_CAP, || async {
            (received.lock().unwrap().texts.len() >= expected.len()).then_some(())
        })
        .await;
        let received = received.lock().unwrap();
        assert_eq!(received.closed, None, "socket {name} closed");
        assert_eq!(received.texts, expected, "socket {name}: one greeting, then every echo once and in order");
    }
    // The actor counted and stored each message exactly once, across its homes.
    let url = format!("{}/gateway/{id}/request/messages", nodes[1].process.endpoint());
    let stats = fetch_json(tern_tests::http_client().get(url)).await;
    assert_eq!(stats["messages"], json!(total), "{stats}");
    assert_eq!(stats["stored"], json!(total), "{stats}");
    println!("6 moves with two raw WebSockets open: {total} messages, each echoed and stored once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_sleeping_actor_moves_without_waking_and_errors_are_the_catalogues() {
    let (ca, work) = (Ca::new(), tempfile::tempdir().unwrap());
    let nodes = three_regions(&ca, work.path(), &[]).await;
    let _logs = LogsOnFailure::of(&nodes);
    let iad = Api::new(&nodes[0].process);
    let id = iad.actor("sqlite", "sleeper").await;
    iad.call(&id, "execute", json!(["CREATE TABLE t(v TEXT)", null])).await.unwrap();
    for i in 0..50 {
        iad.call(&id, "execute", json!([format!("INSERT INTO t VALUES ('v{i}')"), null])).await.unwrap();
    }
    let url = format!("{}/actors/{id}/sleep", nodes[0].process.endpoint());
    let slept = tern_tests::http_client().post(url).bearer_auth(TOKEN).send().await.unwrap();
    assert_eq!(slept.status(), 200);

    // Errors first: nothing moves.
    let (status, body) = migrate(&nodes[1], &id, json!({"region": "mars"})).await;
    assert_eq!((status, &body["group"], &body["code"]), (400, &json!("cluster"), &json!("region_not_found")), "{body}");
    let (status, body) = migrate(&nodes[1], &id, json!({"node": "nowhere-1"})).await;
    assert_eq!((status, &body["group"], &body["code"]), (400, &json!("cluster"), &json!("node_not_found")), "{body}");
    let (status, body) = migrate(&nodes[1], &id, json!({"planet": "mars"})).await;
    assert_eq!((status, &body["code"]), (400, &json!("invalid_request")), "{body}");
    let (status, body) = migrate(&nodes[2], &id, json!({"region": "iad"})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        (&body["from"], &body["to"], &body["pause_ms"]),
        (&body["to"], &json!({"node": "iad-1", "region": "iad"}), &json!(0))
    );

    // The sleeping actor moves to a node, and is still asleep there.
    let (status, moved) = migrate(&nodes[0], &id, json!({"node": "sin-1"})).await;
    assert_eq!(status, 200, "{moved}");
    assert_eq!(moved["to"], json!({"node": "sin-1", "region": "sin"}));
    let listed = admin_get(&nodes[2], "/actors?name=sqlite").await;
    let there = listed["actors"].as_array().unwrap().iter().find(|a| a["actor_id"] == json!(id)).cloned();
    let there = there.unwrap_or_else(|| panic!("sin-1 lists the actor: {listed}"));
    assert_eq!(there["datacenter"], json!("sin"), "{there}");
    assert_eq!(there["start_ts"], Value::Null, "the move did not wake it: {there}");

    // Its data came along, through every gateway; the old home keeps a replica.
    for node in &nodes {
        let rows = Api::new(&node.process).call(&id, "query", json!(["SELECT count(*) AS n FROM t", null])).await;
        assert_eq!(rows.unwrap()[0]["n"], json!(50), "through {}", node.name);
    }
    let set = admin_get(&nodes[1], &format!("/actors/{id}/replicas")).await;
    assert_eq!(set["home"]["node"], json!("sin-1"), "{set}");
    let replicas: Vec<&Value> = set["replicas"].as_array().unwrap().iter().map(|r| &r["node"]).collect();
    assert_eq!(replicas, vec![&json!("iad-1")], "the old home keeps the one replica: {set}");
}

/// Calls `increment(1)` on each of `ids` in turn through `api` until `stop`, recording acknowledged counts per actor.
async fn increment_all(
    api: Api,
    ids: Vec<String>,
    stop: Arc<Mutex<bool>>,
    acked: Arc<Mutex<Vec<(String, i64)>>>,
    failed: Arc<Mutex<Vec<String>>>,
) {
    for id in ids.iter().cycle() {
        if *stop.lock().unwrap() {
            return;
        }
        match api.call(id, "increment", json!([1])).await {
            Ok(count) => acked.lock().unwrap().push((id.clone(), count.as_i64().expect("a count"))),
            Err((status, code, body)) => {
                failed.lock().unwrap().push(format!("via {}: {status} {code} {body}", api.endpoint))
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_node_stopped_with_drain_on_stop_moves_every_actor_and_no_call_fails() {
    let (ca, work) = (Ca::new(), tempfile::tempdir().unwrap());
    let mut nodes = three_regions(&ca, work.path(), &["--drain-on-stop"]).await;
    let _logs = LogsOnFailure::of(&nodes);
    let iad = Api::new(&nodes[0].process);
    let mut ids = Vec::new();
    for i in 0..6 {
        ids.push(iad.actor("counter", &format!("drained-{i}")).await);
    }
    for id in &ids {
        assert_eq!(record(&nodes[0], id).await["datacenter"], json!("iad"));
    }
    let stop = Arc::new(Mutex::new(false));
    let acked = Arc::new(Mutex::new(Vec::new()));
    let failed = Arc::new(Mutex::new(Vec::new()));
    let writers: Vec<_> = nodes[1..]
        .iter()
        .map(|node| {
            let api = Api::new(&node.process);
            tokio::spawn(increment_all(api, ids.clone(), stop.clone(), acked.clone(), failed.clone()))
        })
        .collect();
    eventually("calls are acknowledged", CONVERGE_CAP, || async { (acked.lock().unwrap().len() >= 30).then_some(()) })
        .await;

    // SIGTERM: iad-1 moves its actors away before it leaves.
    let status = tokio::task::block_in_place(|| nodes[0].process.terminate());
    assert!(status.success(), "iad-1 stopped cleanly: {status:?}");
    let before = acked.lock().unwrap().len();
    eventually("calls are acknowledged after the drain", CONVERGE_CAP, || async {
        (acked.lock().unwrap().len() >= before + 30).then_some(())
    })
    .await;
    *stop.lock().unwrap() = true;
    for writer in writers {
        writer.await.unwrap();
    }
    let failed = failed.lock().unwrap().clone();
    assert!(failed.is_empty(), "{} calls failed during the drain: {failed:?}", failed.len());
    let fra = Api::new(&nodes[1].process);
    for id in &ids {
        let mut counts: Vec<i64> = acked.lock().unwrap().iter().filter(|(a, _)| a == id).map(|(_, c)| *c).collect();
        counts.sort_unstable();
        let n = counts.len() as i64;
        assert_eq!(counts, (1..=n).collect::<Vec<_>>(), "{id}: each acknowledged increment once");
        assert_eq!(fra.call(id, "getCount", json!([])).await.unwrap(), json!(n), "{id}");
        let now = record(&nodes[1], id).await;
        assert_ne!(now["datacenter"], json!("iad"), "{id} left the stopped node: {now}");
    }

    // The command line drains a running node: everything on fra-1 moves to sin-1, the only other live node.
    let output = std::process::Command::new(tern_tests::tern_binary())
        .args(["node", "drain", "fra-1", "--endpoint", &nodes[2].process.endpoint(), "--admin-token", TOKEN])
        .output()
        .unwrap();
    let printed = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{printed} {}", String::from_utf8_lossy(&output.stderr));
    assert!(printed.starts_with("drained fra-1: ") && printed.contains(", 0 could not move"), "{printed}");
    for id in &ids {
        assert_eq!(record(&nodes[2], id).await["datacenter"], json!("sin"), "{id}");
    }
    // And moves one actor by name and key.
    let output = std::process::Command::new(tern_tests::tern_binary())
        .args(["actors", "migrate", "counter/drained-0", "--region", "fra"])
        .args(["--endpoint", &nodes[1].process.endpoint(), "--admin-token", TOKEN])
        .output()
        .unwrap();
    let printed = String::from_utf8_lossy(&output.stdout);
    assert!(
        printed.contains("from sin-1 (sin) to fra-1 (fra)"),
        "{printed} {}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(record(&nodes[1], &ids[0]).await["datacenter"], json!("fra"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_actor_with_a_100_mb_database_moves_to_a_node_without_a_copy() {
    let (ca, work) = (Ca::new(), tempfile::tempdir().unwrap());
    let nodes = three_regions(&ca, work.path(), &[]).await;
    let _logs = LogsOnFailure::of(&nodes);
    let iad = Api::new(&nodes[0].process);
    let id = iad.actor("sqlite", "large").await;
    iad.call(&id, "execute", json!(["CREATE TABLE b(n INTEGER PRIMARY KEY, data BLOB)", null])).await.unwrap();
    for n in 0..10 {
        let sql = format!("INSERT INTO b VALUES ({n}, randomblob(10 * 1024 * 1024))");
        iad.call(&id, "execute", json!([sql, null])).await.unwrap();
    }
    let digest_sql =
        "SELECT count(*) AS n, sum(length(data)) AS bytes, group_concat(hex(substr(data, 1, 8))) AS heads FROM b";
    let before = iad.call(&id, "query", json!([digest_sql, null])).await.unwrap();
    assert_eq!(before[0]["bytes"], json!(100 * 1024 * 1024));

    // The node that holds no copy yet receives one while the actor serves, then takes the actor.
    let set = admin_get(&nodes[0], &format!("/actors/{id}/replicas")).await;
    let replica = set["replicas"][0]["node"].as_str().unwrap_or_else(|| panic!("{set}")).to_string();
    let target = ["fra-1", "sin-1"].into_iter().find(|n| *n != replica).unwrap();
    let started = std::time::Instant::now();
    let (status, moved) = migrate(&nodes[1], &id, json!({ "node": target })).await;
    assert_eq!(status, 200, "{moved}");
    println!("moved 100 MB to {target} in {:?}, paused {} ms", started.elapsed(), moved["pause_ms"]);
    for node in &nodes {
        let after = Api::new(&node.process).call(&id, "query", json!([digest_sql, null])).await.unwrap();
        assert_eq!(after, before, "through {}", node.name);
    }
    assert_eq!(record(&nodes[0], &id).await["datacenter"], moved["to"]["region"]);
}

/// Calls `increment(1)` on `id` through each of `apis` in turn until `stop`.
async fn call_through(apis: Vec<Api>, id: String, stop: Arc<Mutex<bool>>) {
    for api in apis.iter().cycle() {
        if *stop.lock().unwrap() {
            return;
        }
        api.call(&id, "increment", json!([1])).await.expect("a call");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_actor_follows_its_traffic_to_another_region_and_an_even_split_never_moves_it() {
    let (ca, work) = (Ca::new(), tempfile::tempdir().unwrap());
    let follow = ["--follow-traffic", "--follow-traffic-window", "1", "--follow-traffic-min-calls", "20"];
    let nodes = three_regions(&ca, work.path(), &[&follow[..], &["--follow-traffic-dwell", "0"]].concat()).await;
    let _logs = LogsOnFailure::of(&nodes);
    let iad = Api::new(&nodes[0].process);
    let traveler = iad.actor("counter", "traveler").await;
    let split = iad.actor("counter", "split").await;
    let stop = Arc::new(Mutex::new(false));
    let callers = [
        tokio::spawn(call_through(vec![Api::new(&nodes[1].process)], traveler.clone(), stop.clone())),
        tokio::spawn(call_through(
            vec![Api::new(&nodes[0].process), Api::new(&nodes[1].process)],
            split.clone(),
            stop.clone(),
        )),
    ];

    // Calls only through fra's gateway: the actor moves to fra.
    eventually("the actor moved to where its calls come from", CONVERGE_CAP, || async {
        (record(&nodes[2], &traveler).await["datacenter"] == json!("fra")).then_some(())
    })
    .await;
    let summary = admin_get(&nodes[2], &format!("/gateway/{traveler}/inspector/summary")).await;
    let last_move = summary["lastMove"].as_str().unwrap_or_else(|| panic!("{summary}"));
    assert!(last_move.starts_with("moved iad → fra: ") && last_move.ends_with(" calls from fra"), "{last_move}");
    let metrics =
        tern_tests::http_client().get(format!("{}/metrics", nodes[0].process.endpoint())).send().await.unwrap();
    let metrics = metrics.text().await.unwrap();
    assert!(metrics.lines().any(|l| l.starts_with("tern_traffic_moves_total ") && !l.ends_with(" 0")), "{metrics}");

    // Half of the other actor's calls come from iad, half from fra: it stays, window after window.
    tokio::time::sleep(Duration::from_secs(6)).await;
    *stop.lock().unwrap() = true;
    for caller in callers {
        caller.await.unwrap();
    }
    assert_eq!(record(&nodes[2], &split).await["datacenter"], json!("iad"), "an even split never moves the actor");
}
