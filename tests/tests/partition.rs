//! Network faults, for real: five `tern node` processes in their own network namespaces on one bridge, east
//! (`n0`, `n1`) and west (`n2`, `n3`, `n4`), with the directory's voters `n0`, `n2` and `n3` (so only the west holds
//! a majority on its own) and `sync` replication, while clients keep creating keys (fresh ones, and ones every
//! client races for) and incrementing counters through every gateway. The faults: a 2|3 split; a voter killed
//! with `kill -9` while creates are in flight, and restarted; a one-way cut each way; a split that heals and comes
//! back again and again. After each, once healed:
//! * no key has two actors: every id ever acknowledged for a key is the one, and every gateway returns it;
//! * the history of acknowledged increments is whole and single per actor: every count an acknowledged increment
//!   returned is at most the actor's final count (no acknowledged write missing), and no two acknowledged
//!   increments of an actor returned the same count (none applied twice, nor acknowledged by two homes in
//!   overlapping periods), and the final count is at most the increments attempted;
//!
//! and while only the west can reach a majority of voters, the east creates nothing. Needs root, iproute2 and
//! nft. The tests take a lab each, one at a time (see `.config/nextest.toml`).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use serde_json::{Value, json};
use tern_tests::cluster::{CONVERGE_CAP, Ca, Node, NodePlan, voters_arg};
use tern_tests::netns::Lab;
use tern_tests::{Api, eventually, within};

/// How long each fault lasts: longer than the LAN suspicion timeout, so each side declares the other down.
const FAULT_FOR: Duration = Duration::from_secs(12);
/// How long healing may take: both sides must find each other again and rejoin.
const HEAL_CAP: Duration = Duration::from_secs(90);
/// The cap on each request of the writers: a guard against a request into a cut-off side hanging the test. A
/// request that got no answer was not acknowledged (it may still have been applied).
const REQUEST_CAP: Duration = Duration::from_secs(10);
/// Keys the writers of a phase race for.
const SHARED_KEYS: usize = 8;
/// The hosts of each side.
const EAST: [usize; 2] = [0, 1];
const WEST: [usize; 3] = [2, 3, 4];
const ALL: [usize; 5] = [0, 1, 2, 3, 4];

/// One test at a time in this binary (`cargo test` runs a binary's tests in parallel): five nodes each.
static ONE_LAB_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// `PUT /actors` (getOrCreate): the actor id, or `None` on any error.
async fn get_or_create(api: &Api, key: &str) -> Option<String> {
    let url = format!("{}/actors", api.endpoint);
    let response = api.http.put(url).json(&json!({"name": "counter", "key": key})).timeout(REQUEST_CAP);
    let response = response.send().await.ok()?;
    if !response.status().is_success() {
        return None;
    }
    let body: Value = response.json().await.ok()?;
    body["actor"]["actor_id"].as_str().map(str::to_string)
}

/// Increments the counter by one: the count it acknowledged (its place in the actor's history), if it did.
async fn increment(api: &Api, actor_id: &str) -> Option<i64> {
    let url = format!("{}/gateway/{actor_id}/action/increment", api.endpoint);
    let response = api.http.post(url).json(&json!({"args": [1]})).timeout(REQUEST_CAP).send().await.ok()?;
    if !response.status().is_success() {
        return None;
    }
    response.json::<Value>().await.ok()?["output"].as_i64()
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
    /// Creates (or finds) the counter `key` through `api` and increments it, noting what was acknowledged;
    /// whether the key got an actor id.
    async fn create_and_write(&mut self, api: &Api, key: &str) -> bool {
        let Some(id) = get_or_create(api, key).await else { return false };
        self.ids.entry(key.to_string()).or_default().insert(id.clone());
        *self.attempted.entry(id.clone()).or_default() += 1;
        if let Some(count) = increment(api, &id).await {
            self.acked.entry(id).or_default().push(count);
        }
        true
    }

    fn merge(&mut self, other: Seen) {
        for (key, ids) in other.ids {
            self.ids.entry(key).or_default().extend(ids);
        }
        for (id, counts) in other.acked {
            self.acked.entry(id).or_default().extend(counts);
        }
        for (id, attempts) in other.attempted {
            *self.attempted.entry(id).or_default() += attempts;
        }
    }
}

/// The last `count` lines of `node`'s log that `keep` selects, indented, one per line.
fn log_tail(node: &Node, count: usize, keep: impl Fn(&str) -> bool) -> String {
    let log = std::fs::read_to_string(node.process.log_path()).unwrap_or_default();
    let lines: Vec<&str> = log.lines().filter(|l| keep(l)).collect();
    lines[lines.len().saturating_sub(count)..].iter().map(|line| format!("  {line}\n")).collect()
}

/// The five nodes in their lab, the east and the west.
struct Cluster {
    lab: Lab,
    nodes: Vec<Node>,
    _ca: Ca,
    _work: tempfile::TempDir,
    _one_at_a_time: tokio::sync::MutexGuard<'static, ()>,
}

impl Cluster {
    /// Starts the cluster (once no other test of this binary has one) and makes one actor per gateway before the
    /// faults (see [`Cluster::actors_before`]): the cluster, what clients saw so far, and those actors' keys.
    async fn start() -> (Cluster, Seen, Vec<String>) {
        let one_at_a_time = ONE_LAB_AT_A_TIME.lock().await;
        let lab = Lab::new(5);
        let (ca, work) = (Ca::new(), tempfile::tempdir().unwrap());
        let regions = ["east", "east", "west", "west", "west"];
        let plans: Vec<NodePlan> = (0..5)
            .map(|i| NodePlan { name: format!("n{i}"), region: regions[i].into(), quic: format!("{}:7420", lab.ip(i)) })
            .collect();
        let voters = voters_arg(&[&plans[0], &plans[2], &plans[3]]);
        let seeds = [plans[0].quic.as_str(), plans[2].quic.as_str()];
        let sync = ["--replication-mode", "sync"];
        let nodes = plans
            .iter()
            .enumerate()
            .map(|(i, p)| Node::start_in_lab(&ca, work.path(), p, &seeds, Some(&voters), &sync, (&lab, i)))
            .collect();
        let cluster = Cluster { lab, nodes, _ca: ca, _work: work, _one_at_a_time: one_at_a_time };
        cluster.converge("at the start", CONVERGE_CAP).await;
        let mut seen = Seen::default();
        let before = cluster.actors_before(&mut seen).await;
        (cluster, seen, before)
    }

    /// A client of node `i`'s gateway.
    fn api(&self, i: usize) -> Api {
        Api::new(&self.nodes[i].process)
    }

    /// Waits until every node sees all five alive. If that does not happen within `cap`, fails with what each
    /// node sees and the membership lines of its log, which the test's temporary directory takes with it.
    async fn converge(&self, when: &str, cap: Duration) {
        let all: Vec<&Node> = self.nodes.iter().collect();
        for node in &self.nodes {
            if within(cap, || node.sees_alive(&all)).await.is_none() {
                panic!("not within {cap:?}: {} sees all five {when}\n{}", node.name, self.membership_report().await);
            }
        }
    }

    /// Each node's view of the members and the last membership lines of its log.
    async fn membership_report(&self) -> String {
        let mut report = String::new();
        for node in &self.nodes {
            let view: Vec<String> = (node.members().await.unwrap_or_default().iter())
                .map(|m| format!("{}={}", m["id"].as_str().unwrap_or("?"), m["state"].as_str().unwrap_or("?")))
                .collect();
            report.push_str(&format!("{} sees [{}]\n", node.name, view.join(", ")));
            report.push_str(&log_tail(node, 15, |l| l.contains("membership") || l.contains("cluster")));
        }
        report
    }

    /// What each gateway answers for actor `id` now, and the lines of each node's log that name it or warn, for
    /// a failure to explain itself (the logs go with the test's temporary directory).
    async fn actor_report(&self, id: &str) -> String {
        let mut report = String::new();
        for (i, node) in self.nodes.iter().enumerate() {
            let answer = self.api(i).call(id, "getCount", json!([])).await;
            report.push_str(&format!("{} answers {answer:?}\n", node.name));
            report.push_str(&log_tail(node, 60, |l| l.contains(id) || l.contains("WARN") || l.contains("ERROR")));
        }
        report
    }

    /// Heals every cut and waits until the cluster is whole again.
    async fn heal(&mut self) {
        self.lab.heal();
        self.converge("after healing", HEAL_CAP).await;
    }

    /// One actor per key before the faults, each created and written through its own gateway (so homed on both
    /// sides); the keys, for the writers to write to during the faults.
    async fn actors_before(&self, seen: &mut Seen) -> Vec<String> {
        let keys: Vec<String> = (0..5).map(|i| format!("before-{i}")).collect();
        for (i, key) in keys.iter().enumerate() {
            seen.create_and_write(&self.api(i), key).await;
        }
        assert_eq!(seen.acked.len(), 5, "every write before the faults is acknowledged");
        keys
    }
}

/// Clients writing through some gateways until [`Writers::finish`]: each round, a writer creates a key no one
/// used before (new directory registers), then one of the phase's shared keys (which every writer of the phase
/// races to create), then one of the keys made before, and increments each once.
struct Writers {
    stop: Arc<AtomicBool>,
    /// Creates of fresh keys under way right now.
    in_flight: Arc<AtomicUsize>,
    /// By gateway: how many times a key of the phase (fresh or shared) got an actor id through it.
    created: Arc<[AtomicUsize; 5]>,
    tasks: Vec<tokio::task::JoinHandle<Seen>>,
}

impl Writers {
    /// One writer per gateway of `gateways`; `phase` names the phase's keys.
    fn start(cluster: &Cluster, gateways: &[usize], phase: &str, before: &[String]) -> Writers {
        let (stop, in_flight) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicUsize::new(0)));
        let created: Arc<[AtomicUsize; 5]> = Arc::new(Default::default());
        let tasks = gateways
            .iter()
            .map(|&gateway| {
                let (api, phase, before) = (cluster.api(gateway), phase.to_string(), before.to_vec());
                let (stop, in_flight, created) = (stop.clone(), in_flight.clone(), created.clone());
                tokio::spawn(async move {
                    let mut seen = Seen::default();
                    for round in 0.. {
                        if stop.load(Ordering::SeqCst) {
                            break;
                        }
                        let (fresh, shared) =
                            (format!("{phase}-n{gateway}-{round}"), format!("{phase}-shared-{}", round % SHARED_KEYS));
                        in_flight.fetch_add(1, Ordering::SeqCst);
                        let made = usize::from(seen.create_and_write(&api, &fresh).await);
                        in_flight.fetch_sub(1, Ordering::SeqCst);
                        let made = made + usize::from(seen.create_and_write(&api, &shared).await);
                        created[gateway].fetch_add(made, Ordering::SeqCst);
                        if !before.is_empty() {
                            seen.create_and_write(&api, &before[round % before.len()]).await;
                        }
                        if made == 0 {
                            // Nothing got through (a node down, a side cut off): no busy loop.
                            tokio::time::sleep(Duration::from_millis(50)).await;
                        }
                    }
                    seen
                })
            })
            .collect();
        Writers { stop, in_flight, created, tasks }
    }

    /// How many times keys of the phase got an actor id through `gateways` so far.
    fn created(&self, gateways: &[usize]) -> usize {
        gateways.iter().map(|&gateway| self.created[gateway].load(Ordering::SeqCst)).sum()
    }

    /// Stops the writers and adds what they saw to `seen`.
    async fn finish(self, seen: &mut Seen) {
        self.stop.store(true, Ordering::SeqCst);
        for task in self.tasks {
            seen.merge(task.await.expect("a writer"));
        }
    }
}

/// Checks the invariants against the healed cluster: one actor per key, the same through every gateway; and for
/// every actor a whole, single history of acknowledged increments.
async fn check(cluster: &Cluster, seen: &Seen) {
    let apis: Vec<Api> = (0..5).map(|i| cluster.api(i)).collect();
    for (n, (key, ids)) in seen.ids.iter().enumerate() {
        assert_eq!(ids.len(), 1, "key {key} was given several actors: {ids:?}");
        let id = ids.iter().next().unwrap();
        // A key one writer made is asked of one gateway (in turn); a key several raced for, of every gateway.
        let gateways: Vec<&Api> = if key.contains("-shared-") || key.starts_with("before-") {
            apis.iter().collect()
        } else {
            vec![&apis[n % apis.len()]]
        };
        for api in gateways {
            let now = eventually(&format!("{key} resolves"), HEAL_CAP, || get_or_create(api, key)).await;
            assert_eq!(&now, id, "key {key} through {}", api.endpoint);
        }
    }
    let mut writes = 0;
    for (id, attempts) in &seen.attempted {
        let counts = seen.acked.get(id).cloned().unwrap_or_default();
        let distinct: BTreeSet<i64> = counts.iter().copied().collect();
        assert_eq!(distinct.len(), counts.len(), "actor {id} acknowledged one place in its history twice: {counts:?}");
        let api = &apis[0];
        let answered = within(HEAL_CAP, || async { api.call(id, "getCount", json!([])).await.ok()?.as_i64() }).await;
        let Some(count) = answered else {
            panic!("not within {HEAL_CAP:?}: {id} answers\n{}", cluster.actor_report(id).await);
        };
        let highest = distinct.last().copied().unwrap_or(0);
        assert!(count >= highest, "actor {id} lost writes: count {count} < {highest}, an acknowledged count");
        assert!(count <= *attempts, "actor {id} has {count} writes, more than the {attempts} attempted");
        writes += counts.len();
    }
    eprintln!("checked {} keys, {} actors, {writes} acknowledged writes", seen.ids.len(), seen.attempted.len());
}

/// Writes through every gateway for [`FAULT_FOR`] while the east cannot hear back from a majority of voters:
/// the east creates nothing, the west goes on creating.
async fn only_the_west_creates(cluster: &Cluster, phase: &str, before: &[String], seen: &mut Seen) {
    let writers = Writers::start(cluster, &ALL, phase, before);
    tokio::time::sleep(FAULT_FOR).await;
    let (east, west) = (writers.created(&EAST), writers.created(&WEST));
    writers.finish(seen).await;
    eprintln!("{phase}: the east created {east} keys, the west {west}");
    assert_eq!(east, 0, "the side without a majority of voters must not create");
    assert!(west > 0, "the side with a majority keeps creating");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_two_three_split_never_gives_a_key_two_actors_and_loses_no_acknowledged_write() {
    let (mut cluster, mut seen, before) = Cluster::start().await;

    // Split 2|3 and keep both sides busy, with the same keys.
    cluster.lab.partition(&EAST, &WEST);
    only_the_west_creates(&cluster, "split", &before, &mut seen).await;
    cluster.heal().await;
    check(&cluster, &seen).await;
}

/// A voter (`n2`, also a gateway and a home) is killed with `kill -9` at a moment when creates are under way,
/// each a round of proposals to the voters; the other two voters are a majority, and the cluster goes on
/// creating. The voter is started again on its data directory (its promises and acceptances are in its `node.db`)
/// and rejoins while the writes go on.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_voter_killed_mid_proposal_loses_no_acknowledged_write_and_gives_no_key_two_actors() {
    let (mut cluster, mut seen, before) = Cluster::start().await;
    let writers = Writers::start(&cluster, &ALL, "kill", &before);
    eventually("the writers create", CONVERGE_CAP, || async { (writers.created(&ALL) > 0).then_some(()) }).await;
    while writers.in_flight.load(Ordering::SeqCst) == 0 {
        tokio::task::yield_now().await;
    }
    cluster.nodes[2].process.kill9();
    let at_kill = writers.created(&ALL);
    eprintln!("voter n2 killed with creates in flight");
    tokio::time::sleep(FAULT_FOR).await;
    let while_down = writers.created(&ALL) - at_kill;
    eprintln!("{while_down} keys created while n2 was down");
    assert!(while_down > 0, "two voters of three are a majority: creates go on");

    cluster.nodes[2].process.restart();
    cluster.converge("after the voter's restart", HEAL_CAP).await;
    let back = writers.created(&[2]);
    eventually("the restarted voter's gateway creates again", HEAL_CAP, || async {
        (writers.created(&[2]) > back).then_some(())
    })
    .await;
    writers.finish(&mut seen).await;
    check(&cluster, &seen).await;
}

/// One way at a time: first the west's packets to the east vanish while the east's still reach the west, then
/// the other way round. Either way the east cannot hear back from a majority of voters (whatever it asks of the
/// west's voters, their answers or its questions are lost) and creates nothing; the west goes on.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_way_cuts_either_way_never_give_a_key_two_actors_and_lose_no_acknowledged_write() {
    let (mut cluster, mut seen, before) = Cluster::start().await;

    for (phase, from, to) in [("eastward", &WEST[..], &EAST[..]), ("westward", &EAST[..], &WEST[..])] {
        cluster.lab.cut_one_way(from, to);
        only_the_west_creates(&cluster, phase, &before, &mut seen).await;
        cluster.heal().await;
    }
    check(&cluster, &seen).await;
}

/// The 2|3 split comes and goes: split for 3 s, whole for 3 s, five times over, while the writers go on through
/// every gateway, so that requests, suspicions, failovers and hand-offs straddle the changes.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_flapping_split_never_gives_a_key_two_actors_and_loses_no_acknowledged_write() {
    let (mut cluster, mut seen, before) = Cluster::start().await;

    let writers = Writers::start(&cluster, &ALL, "flap", &before);
    for _ in 0..5 {
        cluster.lab.partition(&EAST, &WEST);
        tokio::time::sleep(Duration::from_secs(3)).await;
        cluster.lab.heal();
        tokio::time::sleep(Duration::from_secs(3)).await;
    }
    let (east, west) = (writers.created(&EAST), writers.created(&WEST));
    writers.finish(&mut seen).await;
    eprintln!("while the split came and went: the east created {east} keys, the west {west}");
    cluster.heal().await;
    check(&cluster, &seen).await;
}
