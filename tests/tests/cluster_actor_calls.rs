//! Actor-to-actor calls on a cluster: a coordinator actor creates and calls data actors by key from inside, with
//! callers spread over three `tern node` processes in three regions (real QUIC, mutual TLS, three voters). Its
//! calls take the gateway's path (the directory, then at most one hop), so every key has one actor cluster-wide,
//! the same through every gateway and from actor code, and an actor on one node calls (and queues to) an actor
//! homed on another. The same scenario runs on one `tern dev` node.

use std::collections::BTreeSet;
use std::path::PathBuf;

use serde_json::{Value, json};
use tern_tests::cluster::{CONVERGE_CAP, Ca, Node, plan, voters_arg};
use tern_tests::{Api, TernProcess, eventually};

/// Data actors each coordinator touches.
const KEYS: u32 = 50;

fn example_binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_tern-example"))
}

/// `PUT /actors` (getOrCreate) through `api`, optionally in `region`: the actor's id and datacenter.
async fn get_or_create(api: &Api, name: &str, key: &str, region: Option<&str>) -> (String, String) {
    let mut body = json!({"name": name, "key": key});
    if let Some(region) = region {
        body["datacenter"] = json!(region);
    }
    let created: Value = tern_tests::fetch_json(api.http.put(format!("{}/actors", api.endpoint)).json(&body)).await;
    let actor = &created["actor"];
    (actor["actor_id"].as_str().expect("an actor id").to_string(), actor["datacenter"].as_str().unwrap_or("").into())
}

/// One coordinator per gateway (homed in `regions[i]`), all touching the same keys at once through their own
/// gateways; then checks that every key has exactly one actor, seen identically everywhere, with every increment.
async fn coordinators_share_one_actor_per_key(apis: &[Api], regions: &[Option<&str>]) {
    let mut coordinators = Vec::new();
    for (api, region) in apis.iter().zip(regions) {
        let key = format!("coordinator-{}", region.unwrap_or("local"));
        coordinators.push(get_or_create(api, "coordinator", &key, *region).await);
    }
    for ((_, datacenter), region) in coordinators.iter().zip(regions) {
        if let Some(region) = region {
            assert_eq!(datacenter, region, "each coordinator lives in its own region");
        }
    }
    let touches = apis
        .iter()
        .zip(&coordinators)
        .map(|(api, (id, _))| async move { api.call(id, "touch", json!(["data", KEYS])).await.expect("touch") });
    let seen: Vec<Value> = futures_util::future::join_all(touches).await;
    for ids in &seen[1..] {
        assert_eq!(ids, &seen[0], "every coordinator resolved every key to the same actor");
    }
    let ids: Vec<String> = seen[0].as_array().unwrap().iter().map(|id| id.as_str().unwrap().to_string()).collect();
    assert_eq!(ids.iter().collect::<BTreeSet<_>>().len(), KEYS as usize, "one actor per key, all distinct");
    for api in apis {
        for (i, id) in ids.iter().enumerate() {
            let (found, _) = get_or_create(api, "counter", &format!("data-{i}"), None).await;
            assert_eq!(&found, id, "key data-{i} through {}", api.endpoint);
            let count = api.call(id, "getCount", json!([])).await.expect("getCount");
            assert_eq!(count, json!(apis.len()), "data-{i} got every coordinator's increment");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_coordinator_calls_data_actors_across_the_cluster() {
    let (ca, work) = (Ca::new(), tempfile::tempdir().unwrap());
    let plans = plan(&[("iad-1", "iad"), ("fra-1", "fra"), ("syd-1", "syd")]);
    let voters = voters_arg(&[&plans[0], &plans[1], &plans[2]]);
    let example = example_binary();
    let nodes: Vec<Node> = plans
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let seeds: &[&str] = if i == 0 { &[] } else { &[plans[0].quic.as_str()] };
            Node::start_binary(&example, &ca, work.path(), p, seeds, Some(&voters))
        })
        .collect();
    for node in &nodes {
        let all: Vec<&Node> = nodes.iter().collect();
        eventually(&format!("{} sees all three alive", node.name), CONVERGE_CAP, || node.sees_alive(&all)).await;
    }
    let apis: Vec<Api> = nodes.iter().map(|node| Api::new(&node.process)).collect();
    coordinators_share_one_actor_per_key(&apis, &[Some("iad"), Some("fra"), Some("syd")]).await;

    // A coordinator on iad calls a counter homed on syd, and queues to a worker homed on fra, waiting for its run
    // loop to complete the message.
    let (counter, home) = get_or_create(&apis[2], "counter", "far", Some("syd")).await;
    assert_eq!(home, "syd");
    let (coordinator, _) = get_or_create(&apis[0], "coordinator", "coordinator-iad", Some("iad")).await;
    let (worker, home) = get_or_create(&apis[1], "worker", "far-worker", Some("fra")).await;
    assert_eq!(home, "fra");
    let relay = get_or_create(&apis[0], "relay", "far-relay", Some("iad")).await.0;
    assert_eq!(apis[0].call(&relay, "forward", json!(["counter", "far", "increment", [4]])).await.unwrap(), json!(4));
    assert_eq!(apis[2].call(&counter, "getCount", json!([])).await.unwrap(), json!(4));
    assert_eq!(apis[0].call(&coordinator, "sendAndWait", json!(["far-worker", 5])).await.unwrap(), json!(5));
    assert_eq!(apis[0].call(&coordinator, "sendAndWait", json!(["far-worker", 6])).await.unwrap(), json!(11));
    assert_eq!(apis[1].call(&worker, "total", json!([])).await.unwrap(), json!(11));

    // What crossed the cluster shows in iad's metrics: forwarded calls, directory operations, HTTP requests by
    // route, and its QUIC connections (published every second).
    let metrics = || async {
        let text = apis[0].http.get(format!("{}/metrics", apis[0].endpoint)).send().await.ok()?.text().await.ok()?;
        let value = |series: &str| {
            text.lines()
                .find(|line| line.starts_with(series))
                .and_then(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        };
        let seen = [
            value("tern_forwarded_calls_total{outcome=\"ok\"}"),
            value("tern_forwarded_call_duration_seconds_count"),
            value("tern_directory_operations_total{operation=\"read\",outcome=\"ok\"}"),
            value("tern_directory_operations_total{operation=\"write\",outcome=\"ok\"}"),
            value("tern_http_requests_total{route=\"/gateway/{*rest}\",status=\"200\"}"),
            value("tern_http_requests_total{route=\"/actors\",status=\"200\"}"),
            value("tern_quic_connections"),
        ];
        seen.iter().all(|v| v.is_some_and(|v| v > 0.0)).then_some(())
    };
    eventually("iad's metrics show the cluster's traffic", CONVERGE_CAP, metrics).await;
}

#[tokio::test]
async fn a_coordinator_calls_data_actors_on_one_node() {
    let dir = tempfile::tempdir().unwrap();
    let node = TernProcess::start(&example_binary(), &dir.path().join("data"));
    let api = Api::new(&node);
    coordinators_share_one_actor_per_key(std::slice::from_ref(&api), &[None]).await;
    let (coordinator, _) = get_or_create(&api, "coordinator", "coordinator-local", None).await;
    assert_eq!(api.call(&coordinator, "sendAndWait", json!(["w", 7])).await.unwrap(), json!(7));
}
