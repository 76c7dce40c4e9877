//! A network split, for real: five `tern node` processes in their own network namespaces on one bridge, split
//! 2|3 by blackhole routes while clients keep creating the same keys (and writing to them) on both sides. The
//! directory's voters are three nodes, one on the small side: only the big side can decide anything. Replication
//! is `sync`, so the small side's homes, cut off from the voters and from their replicas, stop acknowledging; the
//! big side fails their actors over to its replicas. After healing: no key has two actors, every acknowledged write
//! is there, and the history of acknowledged writes is one line per actor (each acknowledged increment returned a
//! count no other acknowledged increment returned: two homes never acknowledged writes for one actor in
//! overlapping periods). Needs root and iproute2.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tern_tests::cluster::{CONVERGE_CAP, Ca, Node, NodePlan, voters_arg};
use tern_tests::netns::Lab;
use tern_tests::{Api, eventually};

/// How long the split lasts: longer than the LAN suspicion timeout, so each side declares the other down.
const SPLIT_FOR: Duration = Duration::from_secs(12);
/// How long healing may take: both sides must find each other again and rejoin.
const HEAL_CAP: Duration = Duration::from_secs(90);
/// Keys both sides race for during the split.
const KEYS: usize = 8;

/// `PUT /actors` (getOrCreate): the actor id, or `None` on any error.
async fn get_or_create(api: &Api, key: &str) -> Option<String> {
    let url = format!("{}/actors", api.endpoint);
    let response = api.http.put(url).json(&json!({"name": "counter", "key": key})).timeout(Duration::from_secs(10));
    let response = response.send().await.ok()?;
    if !response.status().is_success() {
        return None;
    }
    let body: Value = response.json().await.ok()?;
    body["actor"]["actor_id"].as_str().map(str::to_string)
}

/// Increments the counter by one: the count it acknowledged (its place in the actor's history), if it did.
async fn increment(api: &Api, actor_id: &str) -> Option<i64> {
    api.call(actor_id, "increment", json!([1])).await.ok()?.as_i64()
}

/// What clients saw: for each key, the ids acknowledged for it; for each actor, acknowledged and attempted writes.
#[derive(Default)]
struct Seen {
    ids: BTreeMap<String, BTreeSet<String>>,
    /// The counts acknowledged increments returned, per actor.
    acked: BTreeMap<String, Vec<i64>>,
    attempted: BTreeMap<String, i64>,
}

impl Seen {
    async fn create_and_write(&mut self, api: &Api, key: &str) {
        let Some(id) = get_or_create(api, key).await else { return };
        self.ids.entry(key.to_string()).or_default().insert(id.clone());
        *self.attempted.entry(id.clone()).or_default() += 1;
        if let Some(count) = increment(api, &id).await {
            self.acked.entry(id).or_default().push(count);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_two_three_split_never_gives_a_key_two_actors_and_loses_no_acknowledged_write() {
    let mut lab = Lab::new(5);
    let (ca, work) = (Ca::new(), tempfile::tempdir().unwrap());
    let regions = ["east", "east", "west", "west", "west"];
    let plans: Vec<NodePlan> = (0..5)
        .map(|i| NodePlan { name: format!("n{i}"), region: regions[i].into(), quic: format!("{}:7420", lab.ip(i)) })
        .collect();
    let voters = voters_arg(&[&plans[0], &plans[2], &plans[3]]);
    let seeds = [plans[0].quic.as_str(), plans[2].quic.as_str()];
    let nodes: Vec<Node> = plans
        .iter()
        .enumerate()
        .map(|(i, p)| {
            Node::start_in_lab(&ca, work.path(), p, &seeds, Some(&voters), &["--replication-mode", "sync"], (&lab, i))
        })
        .collect();
    let all: Vec<&Node> = nodes.iter().collect();
    for node in &nodes {
        eventually(&format!("{} sees all five", node.name), CONVERGE_CAP, || node.sees_alive(&all)).await;
    }
    let apis: Vec<Api> = nodes.iter().map(|n| Api::new(&n.process)).collect();

    // Before the split: actors on both sides, with acknowledged writes.
    let mut seen = Seen::default();
    for (i, api) in apis.iter().enumerate() {
        seen.create_and_write(api, &format!("before-{i}")).await;
    }
    assert_eq!(seen.acked.len(), 5, "every write before the split is acknowledged");

    // Split 2|3 and keep both sides busy with the same keys.
    lab.partition(&[0, 1], &[2, 3, 4]);
    let started = Instant::now();
    let (mut small, mut big) = (Seen::default(), Seen::default());
    let mut round = 0;
    while started.elapsed() < SPLIT_FOR {
        for k in 0..KEYS {
            let key = format!("split-{k}");
            let (a, b) = (&apis[round % 2], &apis[2 + round % 3]);
            tokio::join!(small.create_and_write(a, &key), big.create_and_write(b, &key));
        }
        // Writes to the actors made before the split, from both sides.
        for i in 0..5 {
            let key = format!("before-{i}");
            tokio::join!(
                small.create_and_write(&apis[round % 2], &key),
                big.create_and_write(&apis[2 + round % 3], &key)
            );
        }
        round += 1;
    }
    let small_keys = small.ids.keys().filter(|k| k.starts_with("split-")).count();
    let big_keys = big.ids.keys().filter(|k| k.starts_with("split-")).count();
    eprintln!("during the split: the small side created {small_keys} keys, the big side {big_keys}");
    assert_eq!(small_keys, 0, "the side without a majority of voters must not create: {:?}", small.ids);
    assert_eq!(big_keys, KEYS, "the side with a majority keeps creating");

    // Heal: both sides find each other again.
    lab.heal();
    for node in &nodes {
        eventually(&format!("{} sees all five after healing", node.name), HEAL_CAP, || node.sees_alive(&all)).await;
    }

    // No key has two actors: every id ever acknowledged for a key is the one every gateway now returns.
    let mut keys: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for part in [&seen, &small, &big] {
        for (key, ids) in &part.ids {
            keys.entry(key.clone()).or_default().extend(ids.iter().cloned());
        }
    }
    for (key, ids) in &keys {
        assert_eq!(ids.len(), 1, "key {key} was given several actors: {ids:?}");
        let id = ids.iter().next().unwrap();
        for api in &apis {
            let now = eventually(&format!("{key} resolves"), HEAL_CAP, || get_or_create(api, key)).await;
            assert_eq!(&now, id, "key {key} through {}", api.endpoint);
        }
    }

    // Every acknowledged write is there (and none appeared from nowhere), in one history per actor: no two
    // acknowledged increments returned the same count.
    let mut histories: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    let mut attempted: BTreeMap<String, i64> = BTreeMap::new();
    for part in [&seen, &small, &big] {
        part.acked.iter().for_each(|(id, counts)| histories.entry(id.clone()).or_default().extend(counts));
        part.attempted.iter().for_each(|(id, n)| *attempted.entry(id.clone()).or_default() += n);
    }
    for (id, counts) in &histories {
        let distinct: BTreeSet<i64> = counts.iter().copied().collect();
        assert_eq!(distinct.len(), counts.len(), "actor {id} acknowledged one place in its history twice: {counts:?}");
    }
    let acked: BTreeMap<String, i64> = histories.iter().map(|(id, c)| (id.clone(), c.len() as i64)).collect();
    for (id, attempts) in &attempted {
        let api = &apis[0];
        let count = eventually(&format!("{id} answers"), HEAL_CAP, || async {
            api.call(id, "getCount", json!([])).await.ok().and_then(|v| v.as_i64())
        })
        .await;
        let acknowledged = acked.get(id).copied().unwrap_or(0);
        assert!(count >= acknowledged, "actor {id} lost writes: {count} < {acknowledged} acknowledged");
        let highest = histories.get(id).and_then(|c| c.iter().max()).copied().unwrap_or(0);
        assert!(count >= highest, "actor {id} lost writes: {count} < {highest}, an acknowledged count");
        assert!(count <= *attempts, "actor {id} has {count} writes, more than the {attempts} attempted");
    }
}
