//! Failover between real `tern node` processes (loopback, QUIC, mutual TLS, LAN timing), three nodes in three
//! regions, all voters, `sync` replication: while several clients write to an actor through the other two
//! gateways, its home is killed with `kill -9` at a random moment. The actor is served again through every
//! surviving gateway, from its replica in another region, with every acknowledged write; the old home, restarted,
//! learns that its actor moved and lets its copy go. Five rounds, each killing the home of a new actor.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tern_tests::cluster::{CONVERGE_CAP, Ca, Node, plan, three_regions, voters_arg};
use tern_tests::{Api, eventually, insert_rows, strings};

/// How long the actor may stay unavailable after its home died (LAN timing fails over in about 5 s).
const FAILOVER_CAP: Duration = Duration::from_secs(60);
/// Concurrent writers per round.
const WRITERS: usize = 4;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_killed_home_fails_over_to_its_replica_with_every_acknowledged_write() {
    let (ca, work) = (Ca::new(), tempfile::tempdir().unwrap());
    let mut nodes = three_regions(&ca, work.path(), &["--replication-mode", "sync"]);
    let mut failover_ms = Vec::new();
    for round in 0..5 {
        for node in &nodes {
            let all: Vec<&Node> = nodes.iter().collect();
            eventually(&format!("{} sees all three alive", node.name), CONVERGE_CAP, || node.sees_alive(&all)).await;
        }
        let victim = round % nodes.len();
        let region = nodes[victim].region.clone();
        let url = format!("{}/actors", nodes[victim].process.endpoint());
        let body = json!({"name": "sqlite", "key": format!("failover-{round}"), "datacenter": region});
        let created: Value = tern_tests::http_client().put(url).json(&body).send().await.unwrap().json().await.unwrap();
        let id = created["actor"]["actor_id"].as_str().unwrap_or_else(|| panic!("{created}")).to_string();
        assert_eq!(
            created["actor"]["datacenter"].as_str().or(created["actor"]["region"].as_str()),
            Some(region.as_str())
        );
        let home = Api::new(&nodes[victim].process);
        home.call(&id, "execute", json!(["CREATE TABLE t(w TEXT PRIMARY KEY)", null])).await.unwrap();

        let survivors: Vec<usize> = (0..nodes.len()).filter(|i| *i != victim).collect();
        let stop = Arc::new(Mutex::new(false));
        let acked = Arc::new(Mutex::new(Vec::new()));
        let writers: Vec<_> = (0..WRITERS)
            .map(|w| {
                let api = Api::new(&nodes[survivors[w % survivors.len()]].process);
                tokio::spawn(insert_rows(api, id.clone(), w, stop.clone(), acked.clone()))
            })
            .collect();
        // Let writes flow, then kill the home at a random moment.
        eventually("writes are acknowledged", FAILOVER_CAP, || async {
            (acked.lock().unwrap().len() >= 20).then_some(())
        })
        .await;
        let pause = Duration::from_millis(rand::random_range(0..800));
        tokio::time::sleep(pause).await;
        let before_kill = acked.lock().unwrap().len();
        nodes[victim].process.kill9();
        let killed = Instant::now();

        // The actor is served again through every surviving gateway, and writes are acknowledged again.
        for &i in &survivors {
            let api = Api::new(&nodes[i].process);
            eventually(&format!("served through {}", nodes[i].name), FAILOVER_CAP, || async {
                api.call(&id, "query", json!(["SELECT count(*) FROM t", null])).await.ok()
            })
            .await;
        }
        failover_ms.push(killed.elapsed().as_millis());
        // Operators see the new home, in another region.
        let set: Value = tern_tests::http_client()
            .get(format!("{}/actors/{id}/replicas", nodes[survivors[0]].process.endpoint()))
            .bearer_auth(tern_tests::cluster::TOKEN)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_ne!(set["home"]["node"], json!(nodes[victim].name), "round {round}: {set}");
        let after = acked.lock().unwrap().len();
        eventually("writes are acknowledged after the failover", FAILOVER_CAP, || async {
            (acked.lock().unwrap().len() >= after + 10).then_some(())
        })
        .await;
        *stop.lock().unwrap() = true;
        for writer in writers {
            writer.await.unwrap();
        }

        // Every acknowledged write is there, read through each surviving gateway.
        let acked: Vec<String> = acked.lock().unwrap().clone();
        for &i in &survivors {
            let rows = Api::new(&nodes[i].process).call(&id, "query", json!(["SELECT w FROM t", null])).await.unwrap();
            let mut found = BTreeSet::new();
            strings(&rows, &mut found);
            let lost: Vec<&String> = acked.iter().filter(|row| !found.contains(*row)).collect();
            assert!(
                lost.is_empty(),
                "round {round}: {} acknowledged writes lost through {}: {lost:?}",
                lost.len(),
                nodes[i].name
            );
        }
        println!(
            "round {round}: killed {} after {before_kill} acknowledged writes ({} ms pause); served again in {} ms; {} writes acknowledged in all",
            nodes[victim].name,
            pause.as_millis(),
            failover_ms.last().unwrap(),
            acked.len()
        );

        // The old home comes back on its data: it learns its actor moved, lets its copy go, and the actor keeps
        // its one home (reads through the old home's gateway reach the new home).
        nodes[victim].process.restart();
        let api = Api::new(&nodes[victim].process);
        let count = eventually("the old home's gateway reaches the actor", FAILOVER_CAP, || async {
            api.call(&id, "query", json!(["SELECT count(*) AS n FROM t", null])).await.ok()
        })
        .await;
        let mut seen = BTreeSet::new();
        strings(&count, &mut seen);
        let moved = format!("{}/actors/{id}", nodes[victim].process.endpoint());
        let record: Value = tern_tests::http_client().get(moved).send().await.unwrap().json().await.unwrap();
        let members: Value = tern_tests::http_client()
            .get(format!("{}/cluster/members", nodes[victim].process.endpoint()))
            .bearer_auth(tern_tests::cluster::TOKEN)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let epoch = members["members"].as_array().unwrap().iter().find(|m| m["id"] == json!(nodes[victim].name));
        assert!(epoch.is_some_and(|m| m["livenessEpoch"].as_u64() > Some(0)), "round {round}: {members}");
        let now_in = record["actor"]["datacenter"].as_str().or(record["actor"]["region"].as_str()).unwrap_or("");
        assert_ne!(now_in, region, "round {round}: the actor lives outside its dead home's region now: {record}");
    }
    println!("failover times (kill -9 to served through every gateway), ms: {failover_ms:?}");
}

/// With two replicas per actor, the freshest takes over; the new home, short of a second replica while the old home
/// is down, takes the old home back as a replica when it returns.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn with_two_replicas_the_old_home_comes_back_as_a_replica() {
    let (ca, work) = (Ca::new(), tempfile::tempdir().unwrap());
    let plans = plan(&[("iad-1", "iad"), ("fra-1", "fra"), ("sin-1", "sin")]);
    let voters = voters_arg(&[&plans[0], &plans[1], &plans[2]]);
    let first = [plans[0].quic.as_str()];
    let extra = ["--replication-mode", "sync", "--replicas", "2"];
    let mut nodes: Vec<Node> = plans
        .iter()
        .enumerate()
        .map(|(i, p)| Node::start(&ca, work.path(), p, if i == 0 { &[] } else { &first }, Some(&voters), &extra))
        .collect();
    for node in &nodes {
        let all: Vec<&Node> = nodes.iter().collect();
        eventually(&format!("{} sees all three alive", node.name), CONVERGE_CAP, || node.sees_alive(&all)).await;
    }
    let iad = Api::new(&nodes[0].process);
    let id = iad.actor("sqlite", "two-replicas").await;
    iad.call(&id, "execute", json!(["CREATE TABLE t(w TEXT)", null])).await.unwrap();
    for i in 0..20 {
        iad.call(&id, "execute", json!([format!("INSERT INTO t VALUES ('r{i}')"), null])).await.unwrap();
    }
    let set_through = |node: &Node| {
        let url = format!("{}/actors/{id}/replicas", node.process.endpoint());
        async move {
            let response =
                tern_tests::http_client().get(url).bearer_auth(tern_tests::cluster::TOKEN).send().await.ok()?;
            response.json::<Value>().await.ok()
        }
    };
    let before = set_through(&nodes[1]).await.unwrap();
    assert_eq!(before["replicas"].as_array().map(Vec::len), Some(2), "{before}");

    nodes[0].process.kill9();
    let fra = Api::new(&nodes[1].process);
    let rows = eventually("served again from a replica", FAILOVER_CAP, || async {
        fra.call(&id, "query", json!(["SELECT w FROM t", null])).await.ok()
    })
    .await;
    let mut found = BTreeSet::new();
    strings(&rows, &mut found);
    assert!((0..20).all(|i| found.contains(&format!("r{i}"))), "every acknowledged row: {rows}");
    let after = set_through(&nodes[1]).await.unwrap();
    let new_home = after["home"]["node"].as_str().unwrap().to_string();
    assert_ne!(new_home, "iad-1", "{after}");

    // iad-1 returns: it lets its old copy go and becomes the new home's second replica.
    nodes[0].process.restart();
    let set = eventually("iad-1 is a replica again", FAILOVER_CAP, || async {
        let set = set_through(&nodes[1]).await?;
        let replicas = set["replicas"].as_array()?;
        replicas.iter().any(|r| r["node"] == json!("iad-1") && r["state"] == json!("streaming")).then_some(set)
    })
    .await;
    assert_eq!(set["replicas"].as_array().map(Vec::len), Some(2), "{set}");
}
