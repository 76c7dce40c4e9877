//! `kill -9`-like crashes at each step of a hand-off, of the node giving an actor up and of the node taking it
//! (real `tern node` processes, three regions, `sync` replication): the node aborts at the step (a crash point
//! named in its data directory), restarts, and the actor ends with exactly one home, serving through every gateway,
//! with every write it acknowledged.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::json;
use tern_tests::cluster::{Ca, TOKEN, converge, three_regions};
use tern_tests::{Api, eventually, fetch_json, insert_rows, strings};

/// The steps, as the node's crash points name them: the old home's, then the new home's.
const STEPS: [&str; 7] = [
    "leaving:recorded",
    "leaving:paused",
    "leaving:shipped",
    "leaving:answered",
    "arriving:recorded",
    "arriving:promoted",
    "arriving:moved",
];

/// How long the actor may stay unavailable after a crash (a restart, or a failover on LAN timing).
const RECOVERY_CAP: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_crash_at_any_step_of_a_hand_off_leaves_one_home_and_every_acknowledged_write() {
    let (ca, work) = (Ca::new(), tempfile::tempdir().unwrap());
    let mut nodes = three_regions(&ca, work.path(), &["--replication-mode", "sync"]);
    for step in STEPS {
        converge(&nodes).await;
        // The actor lives on iad-1 and moves to fra-1; the old home crashes at a `leaving` step, the new one at an
        // `arriving` step. Writers go through the two other gateways.
        let victim = if step.starts_with("leaving") { 0 } else { 1 };
        let iad = Api::new(&nodes[0].process);
        let body = json!({"name": "sqlite", "key": format!("crash-{step}"), "datacenter": "iad"});
        let created = fetch_json(iad.http.put(format!("{}/actors", iad.endpoint)).json(&body)).await;
        let id = created["actor"]["actor_id"].as_str().unwrap_or_else(|| panic!("{created}")).to_string();
        iad.call(&id, "execute", json!(["CREATE TABLE t(w TEXT PRIMARY KEY)", null])).await.unwrap();
        let stop = Arc::new(Mutex::new(false));
        let acked = Arc::new(Mutex::new(Vec::new()));
        let writers: Vec<_> = (0..3)
            .filter(|i| *i != victim)
            .enumerate()
            .map(|(w, i)| {
                tokio::spawn(insert_rows(Api::new(&nodes[i].process), id.clone(), w, stop.clone(), acked.clone()))
            })
            .collect();
        eventually("writes are acknowledged", RECOVERY_CAP, || async {
            (acked.lock().unwrap().len() >= 20).then_some(())
        })
        .await;

        let crash_file = nodes[victim].process.data_dir().join("crash-at");
        std::fs::write(&crash_file, step).unwrap();
        let url = format!("{}/actors/{id}/migrate", nodes[2].process.endpoint());
        let request = tern_tests::http_client().post(url).bearer_auth(TOKEN).json(&json!({"node": "fra-1"}));
        let migration = tokio::spawn(async move { request.timeout(Duration::from_secs(120)).send().await });
        let exited = tokio::task::block_in_place(|| nodes[victim].process.wait_exit(RECOVERY_CAP));
        assert!(exited.is_some(), "{step}: {} did not crash at the step", nodes[victim].name);
        std::fs::remove_file(&crash_file).unwrap();
        nodes[victim].process.restart();
        let _ = migration.await.unwrap();

        // Served again through every gateway, and writes are acknowledged again.
        for node in &nodes {
            let api = Api::new(&node.process);
            eventually(&format!("{step}: served through {}", node.name), RECOVERY_CAP, || async {
                api.call(&id, "query", json!(["SELECT count(*) FROM t", null])).await.ok()
            })
            .await;
        }
        let after = acked.lock().unwrap().len();
        eventually(&format!("{step}: writes are acknowledged after the crash"), RECOVERY_CAP, || async {
            (acked.lock().unwrap().len() >= after + 10).then_some(())
        })
        .await;
        *stop.lock().unwrap() = true;
        for writer in writers {
            writer.await.unwrap();
        }

        // Exactly one home: every gateway names the same one, and only one node lists the actor.
        let mut homes = BTreeSet::new();
        for node in &nodes {
            let set = fetch_json(
                tern_tests::http_client()
                    .get(format!("{}/actors/{id}/replicas", node.process.endpoint()))
                    .bearer_auth(TOKEN),
            )
            .await;
            homes.insert(set["home"]["node"].as_str().unwrap_or_else(|| panic!("{step}: {set}")).to_string());
        }
        assert_eq!(homes.len(), 1, "{step}: the gateways name different homes: {homes:?}");
        let listed = fetch_json(
            tern_tests::http_client()
                .get(format!("{}/actors?name=sqlite&limit=1000", nodes[2].process.endpoint()))
                .bearer_auth(TOKEN),
        )
        .await;
        let copies = listed["actors"].as_array().unwrap().iter().filter(|a| a["actor_id"] == json!(id)).count();
        assert_eq!(copies, 1, "{step}: nodes hosting the actor: {listed}");

        // Every acknowledged write, through every gateway.
        let acked: Vec<String> = acked.lock().unwrap().clone();
        for node in &nodes {
            let rows = Api::new(&node.process).call(&id, "query", json!(["SELECT w FROM t", null])).await.unwrap();
            let mut found = BTreeSet::new();
            strings(&rows, &mut found);
            let lost: Vec<&String> = acked.iter().filter(|row| !found.contains(*row)).collect();
            assert!(lost.is_empty(), "{step}: {} acknowledged writes lost through {}: {lost:?}", lost.len(), node.name);
        }
        println!(
            "{step}: {} crashed and restarted; home {homes:?}; {} writes acknowledged, none lost",
            nodes[victim].name,
            acked.len()
        );
    }
}
