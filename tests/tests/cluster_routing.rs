//! Routing across a cluster of real `tern node` processes (loopback, QUIC, mutual TLS, LAN timing), three voters
//! in three regions: an actor created through one region's gateway is reached through every other gateway (HTTP
//! actions, a `/connect` WebSocket with events, the inspector), 50 concurrent getOrCreate of one key spread over
//! all gateways yield one actor, placement follows the region hint, and a node that keeps no replicas, killed with
//! `kill -9`, makes its actors `actor.unavailable` (never silently empty) while new actors avoid it, until it comes
//! back with them.

use std::time::Duration;

use base64::Engine;
use serde_json::{Value, json};
use tern_client::{Client, Encoding};
use tern_tests::cluster::{CONVERGE_CAP, Ca, Node, TOKEN, plan, voters_arg};
use tern_tests::{Api, eventually, fetch_json};

/// How long a `kill -9`ed node may be taken for alive (LAN timing declares it down in about 5 s).
const DOWN_CAP: Duration = Duration::from_secs(30);

/// `PUT /actors` (getOrCreate) through `node`, with an optional region: the actor as JSON, or the error body.
async fn get_or_create(node: &Node, name: &str, key: &str, region: Option<&str>) -> Result<Value, Value> {
    let mut body = json!({"name": name, "key": key});
    if let Some(region) = region {
        body["datacenter"] = json!(region);
    }
    let url = format!("{}/actors", node.process.endpoint());
    let response = tern_tests::http_client().put(url).json(&body).send().await.map_err(|e| json!(e.to_string()))?;
    let ok = response.status().is_success();
    let body: Value = response.json().await.map_err(|e| json!(e.to_string()))?;
    if ok { Ok(body["actor"].clone()) } else { Err(body) }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn actors_are_reached_through_any_gateway_and_keys_stay_unique() {
    let (ca, work) = (Ca::new(), tempfile::tempdir().unwrap());
    let plans = plan(&[("iad-1", "iad"), ("iad-2", "iad"), ("fra-1", "fra"), ("fra-2", "fra"), ("syd-1", "syd")]);
    let voters = voters_arg(&[&plans[0], &plans[2], &plans[4]]);
    let first = [plans[0].quic.as_str()];
    let mut nodes: Vec<Node> = plans
        .iter()
        .enumerate()
        .map(|(i, p)| {
            // syd-1 keeps no replicas: its actors have no other copy to fail over to (tests/failover.rs has those).
            let extra: &[&str] = if p.region == "syd" { &["--replicas", "0"] } else { &[] };
            Node::start(&ca, work.path(), p, if i == 0 { &[] } else { &first }, Some(&voters), extra)
        })
        .collect();
    for node in &nodes {
        let all: Vec<&Node> = nodes.iter().collect();
        eventually(&format!("{} sees all five alive", node.name), CONVERGE_CAP, || node.sees_alive(&all)).await;
    }

    // Created through iad-1: it lives in iad (the gateway's region) and answers through every gateway.
    let actor = get_or_create(&nodes[0], "counter", "routed", None).await.unwrap();
    assert_eq!(actor["datacenter"].as_str().or(actor["region"].as_str()), Some("iad"), "{actor}");
    let id = actor["actor_id"].as_str().unwrap().to_string();
    for (i, node) in nodes.iter().enumerate() {
        let api = Api::new(&node.process);
        let count = api.call(&id, "increment", json!([1])).await.unwrap();
        assert_eq!(count, json!(i as i64 + 1), "through {}", node.name);
        // The same key through another gateway is the same actor.
        let again = get_or_create(node, "counter", "routed", None).await.unwrap();
        assert_eq!(again["actor_id"], actor["actor_id"], "through {}", node.name);
    }

    // A `/connect` WebSocket through syd-1 (one QUIC hop to the home): actions and events.
    let client = Client::builder(nodes[4].process.endpoint()).encoding(Encoding::Cbor).build().unwrap();
    let counter = client.get_or_create("counter", "routed");
    let conn = counter.connect().await.unwrap();
    let mut counts = conn.subscribe("newCount");
    conn.call::<i64>("getCount", ()).await.unwrap();
    assert_eq!(conn.call::<i64>("increment", (10,)).await.unwrap(), 15);
    let event = tokio::time::timeout(Duration::from_secs(20), counts.recv()).await.unwrap().unwrap();
    assert_eq!(event, vec![tern_client::Value::Integer(15.into())]);
    // An HTTP action through fra-2 reaches the same actor, and the WebSocket client sees its event.
    Api::new(&nodes[3].process).call(&id, "increment", json!([5])).await.unwrap();
    let event = tokio::time::timeout(Duration::from_secs(20), counts.recv()).await.unwrap().unwrap();
    assert_eq!(event, vec![tern_client::Value::Integer(20.into())]);
    conn.close().await;

    // The inspector of an actor homed elsewhere, through fra-1's gateway: admin token needed, state readable.
    let inspector = format!("{}/gateway/{id}/inspector/state", nodes[2].process.endpoint());
    let refused = tern_tests::http_client().get(&inspector).send().await.unwrap();
    assert_eq!(refused.status(), 401);
    let state = fetch_json(tern_tests::http_client().get(&inspector).bearer_auth(TOKEN)).await;
    assert_eq!(state["state"]["count"], json!(20), "{state}");
    // The actor's own inspector token (KV key 0x03, an admin read through fra-2) opens its inspector through
    // iad-2; a wrong token does not. Its database exports through syd-1.
    let kv_url = format!("{}/actors/{id}/kv/keys/Aw==", nodes[3].process.endpoint());
    let kv = fetch_json(tern_tests::http_client().get(kv_url).bearer_auth(TOKEN)).await;
    let token = base64::engine::general_purpose::STANDARD.decode(kv["value"].as_str().unwrap()).unwrap();
    let summary = format!("{}/gateway/{id}/inspector/summary", nodes[1].process.endpoint());
    let opened = tern_tests::http_client().get(&summary).bearer_auth(String::from_utf8(token).unwrap()).send().await;
    assert_eq!(opened.unwrap().status(), 200);
    let wrong = tern_tests::http_client().get(&summary).bearer_auth("not-the-token").send().await.unwrap();
    assert_eq!(wrong.status(), 401);
    let export = format!("{}/gateway/{id}/inspector/database/export", nodes[4].process.endpoint());
    let file = tern_tests::http_client().get(export).bearer_auth(TOKEN).send().await.unwrap().bytes().await.unwrap();
    assert!(file.starts_with(b"SQLite format 3\0"), "an SQLite file, {} bytes", file.len());

    // 50 concurrent getOrCreate of one fresh key, spread over the five gateways: one actor.
    let racers = (0..50).map(|i| {
        let node = &nodes[i % nodes.len()];
        async move { get_or_create(node, "counter", "contended", None).await }
    });
    let ids: Vec<String> = futures_util::future::join_all(racers)
        .await
        .into_iter()
        .map(|r| r.unwrap()["actor_id"].as_str().unwrap().to_string())
        .collect();
    assert!(ids.iter().all(|i| i == &ids[0]), "several actors for one key: {ids:?}");
    // Plain creates of a taken key are refused on every node.
    for node in &nodes {
        let url = format!("{}/actors", node.process.endpoint());
        let response = tern_tests::http_client().post(url).json(&json!({"name": "counter", "key": "contended"}));
        let body: Value = response.send().await.unwrap().json().await.unwrap();
        assert_eq!(body["code"], "duplicate_key", "{body}");
    }

    // The admin listing through any node shows actors of every node.
    let list = tern_tests::http_client().get(format!("{}/actors?name=counter", nodes[3].process.endpoint()));
    let listing = fetch_json(list.bearer_auth(TOKEN)).await;
    let listed: Vec<&str> =
        listing["actors"].as_array().unwrap().iter().filter_map(|a| a["actor_id"].as_str()).collect();
    assert!(listed.contains(&id.as_str()) && listed.contains(&ids[0].as_str()), "{listing}");
    // Page by page through another node, one actor a page: the same actors in the same order, each once.
    let mut paged: Vec<String> = Vec::new();
    let mut cursor: Option<String> = None;
    while paged.len() <= listed.len() {
        let mut url = format!("{}/actors?name=counter&limit=1", nodes[1].process.endpoint());
        if let Some(cursor) = &cursor {
            url.push_str(&format!("&cursor={cursor}"));
        }
        let page = fetch_json(tern_tests::http_client().get(url).bearer_auth(TOKEN)).await;
        paged.extend(page["actors"].as_array().unwrap().iter().map(|a| a["actor_id"].as_str().unwrap().to_string()));
        match page["pagination"]["cursor"].as_str() {
            Some(next) => cursor = Some(next.to_string()),
            None => break,
        }
    }
    assert_eq!(paged, listed, "pages against the whole listing");

    // Destroyed through a gateway other than its home: gone everywhere, and the key gets a new actor on any node.
    let contended = ids[0].clone();
    let destroyed = tern_tests::http_client()
        .delete(format!("{}/actors/{contended}", nodes[2].process.endpoint()))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert!(destroyed.status().is_success(), "{}", destroyed.text().await.unwrap());
    for node in &nodes {
        let err = Api::new(&node.process).call(&contended, "getCount", json!([])).await.unwrap_err();
        assert_eq!(err.1, "actor.not_found", "through {}", node.name);
    }
    let fresh = get_or_create(&nodes[4], "counter", "contended", None).await.unwrap();
    assert_ne!(fresh["actor_id"].as_str(), Some(contended.as_str()));
    for node in &nodes {
        let again = get_or_create(node, "counter", "contended", None).await.unwrap();
        assert_eq!(again["actor_id"], fresh["actor_id"], "through {}", node.name);
    }

    // The region hint places the actor in syd, on syd-1.
    let far = get_or_create(&nodes[0], "counter", "in-syd", Some("syd")).await.unwrap();
    let far_id = far["actor_id"].as_str().unwrap().to_string();
    Api::new(&nodes[1].process).call(&far_id, "increment", json!([7])).await.unwrap();

    // kill -9 syd-1 (a voter: two of three remain, still a majority).
    nodes[4].process.kill9();
    let observer = &nodes[0];
    eventually("iad-1 sees syd-1 down", DOWN_CAP, || async {
        (observer.state_of("syd-1").await.as_deref() == Some("down")).then_some(())
    })
    .await;
    // Its actor, which has no replica, answers actor.unavailable (503) through any gateway: never restarted empty
    // elsewhere.
    for node in &nodes[..4] {
        let err = Api::new(&node.process).call(&far_id, "getCount", json!([])).await.unwrap_err();
        assert_eq!((err.0, err.1.as_str()), (503, "actor.unavailable"), "through {}: {err:?}", node.name);
    }
    // New actors asked for syd go to the nearest live region instead; the directory still decides.
    let moved = get_or_create(&nodes[2], "counter", "wanted-syd", Some("syd")).await.unwrap();
    let moved_id = moved["actor_id"].as_str().unwrap();
    assert_ne!(moved["datacenter"].as_str().or(moved["region"].as_str()), Some("syd"), "{moved}");
    assert_eq!(Api::new(&nodes[0].process).call(moved_id, "increment", json!([1])).await.unwrap(), json!(1));
    // The other actors are untouched.
    assert_eq!(Api::new(&nodes[3].process).call(&id, "getCount", json!([])).await.unwrap(), json!(20));

    // syd-1 comes back on its data: its actor answers again, through another gateway, with its acknowledged
    // write; nothing was lost or restarted empty.
    nodes[4].process.restart();
    let api = Api::new(&nodes[1].process);
    let count = eventually("the actor on syd-1 answers again", DOWN_CAP, || async {
        api.call(&far_id, "getCount", json!([])).await.ok()
    })
    .await;
    assert_eq!(count, json!(7));
}

#[tokio::test]
async fn raw_http_and_raw_websockets_cross_one_hop() {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    use tokio_tungstenite::tungstenite::{Bytes, Message};

    let (ca, work) = (Ca::new(), tempfile::tempdir().unwrap());
    let plans = plan(&[("a-1", "a"), ("b-1", "b")]);
    let voters = voters_arg(&[&plans[0]]);
    let example = std::path::PathBuf::from(env!("CARGO_BIN_EXE_tern-example"));
    let home = Node::start_binary(&example, &ca, work.path(), &plans[0], &[], Some(&voters));
    let other = Node::start_binary(&example, &ca, work.path(), &plans[1], &[&plans[0].quic], Some(&voters));
    let both = [&home, &other];
    for node in both {
        eventually(&format!("{} sees both", node.name), CONVERGE_CAP, || node.sees_alive(&both)).await;
    }
    // Created through a-1, the only node of region a: it lives there. Everything below goes through b-1.
    let id = get_or_create(&home, "web", "raw", None).await.unwrap()["actor_id"].as_str().unwrap().to_string();

    // Replicas follow each definition's options: `web` keeps the node's default (one, on b-1), `scratch` asks for
    // none.
    let scratch = get_or_create(&home, "scratch", "pad", None).await.unwrap()["actor_id"].as_str().unwrap().to_string();
    let replicas = |actor: String| {
        let url = format!("{}/actors/{actor}/replicas", other.process.endpoint());
        async move { fetch_json(tern_tests::http_client().get(url).bearer_auth(tern_tests::cluster::TOKEN)).await }
    };
    let web_set = eventually("web's replica set", CONVERGE_CAP, || async {
        let set = replicas(id.clone()).await;
        (set["replicas"].as_array().map(Vec::len) == Some(1)).then_some(set)
    })
    .await;
    assert_eq!(web_set["replicas"][0]["node"], json!("b-1"), "{web_set}");
    let scratch_set = replicas(scratch).await;
    assert_eq!(scratch_set["replicas"], json!([]), "{scratch_set}");
    let http = tern_tests::http_client();
    let far = |path: &str| format!("{}/gateway/{id}{path}", other.process.endpoint());

    // Raw HTTP: method, path, query, headers and body cross intact, both ways.
    let response = http.post(far("/request/echo?x=1")).header("x-test", "across").body("payload").send().await;
    let response = response.unwrap();
    assert_eq!(response.headers()["x-web"], "echo");
    let seen: Value = response.json().await.unwrap();
    assert_eq!(
        (seen["method"].as_str(), seen["path"].as_str(), seen["query"].as_str()),
        (Some("POST"), Some("/echo"), Some("x=1"))
    );
    assert_eq!((seen["body"].as_str(), seen["header"].as_str()), (Some("payload"), Some("across")));
    for _ in 0..2 {
        assert!(http.post(far("/request/increment")).send().await.unwrap().status().is_success());
    }
    let count = fetch_json(http.get(format!("{}/gateway/{id}/request/count", home.process.endpoint()))).await;
    assert_eq!(count["count"], 2);

    // A raw WebSocket through b-1: the handler's greeting, text and binary echoes, then its close.
    let mut request = far("/websocket/room?x=1").replacen("http://", "ws://", 1).into_client_request().unwrap();
    request.headers_mut().insert("sec-websocket-protocol", "rivet, rivet_encoding.bare".parse().unwrap());
    let (mut socket, _) = tokio_tungstenite::connect_async(request).await.unwrap();
    let greeting = tokio::time::timeout(Duration::from_secs(20), socket.next()).await.unwrap().unwrap().unwrap();
    assert_eq!(greeting, Message::text("hello /room?x=1"));
    socket.send(Message::text("hi")).await.unwrap();
    socket.send(Message::binary(Bytes::from_static(&[1, 2, 3]))).await.unwrap();
    socket.send(Message::text("close")).await.unwrap();
    let mut frames = Vec::new();
    while let Ok(Some(Ok(frame))) = tokio::time::timeout(Duration::from_secs(20), socket.next()).await {
        frames.push(frame);
    }
    assert_eq!(frames[0], Message::text("hi"));
    assert_eq!(frames[1], Message::binary(Bytes::from_static(&[1, 2, 3])));
    match frames.get(2) {
        Some(Message::Close(Some(close))) => assert_eq!((u16::from(close.code), close.reason.as_str()), (4000, "bye")),
        other => panic!("expected the handler's close, got {other:?} after {frames:?}"),
    }
    let stored = fetch_json(http.get(format!("{}/gateway/{id}/request/messages", home.process.endpoint()))).await;
    assert_eq!(stored["stored"], 3, "{stored}");
}
