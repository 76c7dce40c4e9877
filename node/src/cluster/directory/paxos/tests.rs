//! The proposer and acceptors against in-memory voters that lose messages, and voters cut off by a "partition";
//! and the directory decisions built on them that a lost answer makes hard (settled reads, take-backs).

use std::collections::HashMap;
use std::sync::Mutex;

use super::*;

/// Voters kept in memory. Each proposer sees them through a [`View`] that can lose messages or reach only some.
#[derive(Default)]
struct Cluster {
    voters: Vec<Mutex<HashMap<String, AcceptorState>>>,
}

impl Cluster {
    fn new(count: usize) -> Arc<Cluster> {
        Arc::new(Cluster { voters: (0..count).map(|_| Mutex::default()).collect() })
    }
}

/// One proposer's view: which voters it reaches, and how often a message is lost (either way), drawn from a
/// seeded generator.
struct View {
    cluster: Arc<Cluster>,
    reachable: Vec<bool>,
    loss: f64,
    rng: Mutex<rand::rngs::StdRng>,
}

/// The seed of the message-loss patterns: `TERN_TEST_SEED` when set, else a random one; printed, so that a failing
/// pattern can be drawn again (`TERN_TEST_SEED=N cargo test -p tern-node paxos`). The tasks' interleaving is the
/// runtime's, so a replay repeats the losses, not always the schedule.
fn seed() -> u64 {
    static SEED: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    *SEED.get_or_init(|| {
        let seed = std::env::var("TERN_TEST_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(rand::random);
        eprintln!("message-loss seed {seed} (replay with TERN_TEST_SEED={seed})");
        seed
    })
}

impl View {
    fn reach(&self, index: usize) -> Result<(), String> {
        let lost = rand::RngExt::random::<f64>(&mut *self.rng.lock().unwrap()) < self.loss;
        if !self.reachable[index] || lost {
            return Err(format!("voter {index} did not answer"));
        }
        Ok(())
    }
}

impl Voters for View {
    fn count(&self) -> usize {
        self.cluster.voters.len()
    }

    async fn read(&self, index: usize, register: &str) -> Result<(Ballot, RegisterValue), String> {
        self.reach(index)?;
        tokio::task::yield_now().await;
        let state = self.cluster.voters[index].lock().unwrap().get(register).cloned().unwrap_or_default();
        tokio::task::yield_now().await;
        self.reach(index)?;
        Ok((state.accepted, state.value))
    }

    async fn prepare(&self, index: usize, register: &str, ballot: &Ballot) -> Result<PrepareReply, String> {
        self.reach(index)?;
        tokio::task::yield_now().await;
        let reply = self.cluster.voters[index].lock().unwrap().entry(register.into()).or_default().prepare(ballot).0;
        tokio::task::yield_now().await;
        self.reach(index)?;
        Ok(reply)
    }

    async fn accept(
        &self,
        index: usize,
        register: &str,
        ballot: &Ballot,
        value: &RegisterValue,
    ) -> Result<AcceptReply, String> {
        self.reach(index)?;
        tokio::task::yield_now().await;
        let reply = {
            let mut voter = self.cluster.voters[index].lock().unwrap();
            voter.entry(register.into()).or_default().accept(ballot, value.clone()).0
        };
        tokio::task::yield_now().await;
        self.reach(index)?;
        Ok(reply)
    }
}

fn proposer(cluster: &Arc<Cluster>, name: &str, reachable: Vec<bool>, loss: f64) -> Arc<Proposer<View>> {
    // Each proposer draws its own pattern from the run's seed and its name.
    let seed = name.bytes().fold(seed(), |seed, b| seed.rotate_left(5) ^ u64::from(b));
    let rng = Mutex::new(rand::SeedableRng::seed_from_u64(seed));
    Arc::new(Proposer::new(name, Arc::new(View { cluster: cluster.clone(), reachable, loss, rng })))
}

/// Sets the register to `mine` if it is empty; returns what it holds afterwards.
async fn claim(proposer: &Proposer<View>, mine: &str) -> Result<RegisterValue, ProposeError<()>> {
    let mine = mine.as_bytes().to_vec();
    proposer.change("key", move |current| Ok(current.clone().or_else(|| Some(mine.clone())))).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_claims_of_one_register_all_see_one_winner_despite_lost_messages() {
    for _ in 0..8 {
        let cluster = Cluster::new(5);
        let claims = (0..12).map(|i| {
            let proposer = proposer(&cluster, &format!("node-{i}"), vec![true; 5], 0.15);
            tokio::spawn(async move { claim(&proposer, &format!("actor-{i}")).await })
        });
        let results = futures_util::future::join_all(claims).await;
        let winners: Vec<_> = results.into_iter().filter_map(|r| r.unwrap().ok()).collect();
        assert!(!winners.is_empty(), "with 15% loss some claims must get through");
        assert!(winners.iter().all(|w| w == &winners[0]), "two winners: {winners:?}");
        // A later read agrees with every winner, through one voter's eyes missing or not.
        let reader = proposer(&cluster, "reader", vec![true; 5], 0.0);
        assert_eq!(reader.read("key").await.unwrap(), winners[0]);
        let partial = proposer(&cluster, "partial", vec![true, true, true, false, false], 0.0);
        assert_eq!(partial.read("key").await.unwrap(), winners[0]);
    }
}

#[tokio::test]
async fn a_read_never_returns_a_value_older_than_a_completed_write() {
    let cluster = Cluster::new(5);
    // A write promised by three voters but accepted by only two (its proposer died) is not chosen yet: the first
    // read may return the old value or finish the write, and every later read agrees with it.
    let writer = proposer(&cluster, "w", vec![true; 5], 0.0);
    writer.change("key", |_| Ok::<_, ()>(Some(b"v1".to_vec()))).await.unwrap();
    let stale = Ballot { round: 100, node: "dead".into() };
    for voter in &cluster.voters[..3] {
        voter.lock().unwrap().get_mut("key").unwrap().prepare(&stale);
    }
    for voter in &cluster.voters[..2] {
        voter.lock().unwrap().get_mut("key").unwrap().accept(&stale, Some(b"v2".to_vec()));
    }
    let reader = proposer(&cluster, "r", vec![true; 5], 0.0);
    let first = reader.read("key").await.unwrap();
    for _ in 0..5 {
        let any = proposer(&cluster, "x", vec![true; 5], 0.0);
        assert_eq!(any.read("key").await.unwrap(), first);
    }
    // A completed write is seen by every later read, whichever majority answers.
    writer.change("key", |_| Ok::<_, ()>(Some(b"v3".to_vec()))).await.unwrap();
    for reachable in [vec![true, true, true, false, false], vec![false, false, true, true, true]] {
        assert_eq!(proposer(&cluster, "y", reachable, 0.0).read("key").await.unwrap(), Some(b"v3".to_vec()));
    }
}

#[tokio::test]
async fn a_split_lets_only_the_majority_side_decide_and_healing_keeps_its_decision() {
    let cluster = Cluster::new(5);
    let minority = proposer(&cluster, "a", vec![true, true, false, false, false], 0.0);
    let majority = proposer(&cluster, "b", vec![false, false, true, true, true], 0.0);
    assert!(matches!(claim(&minority, "from-a").await, Err(ProposeError::NoQuorum(_))));
    assert_eq!(claim(&majority, "from-b").await.unwrap(), Some(b"from-b".to_vec()));
    let healed = proposer(&cluster, "a", vec![true; 5], 0.0);
    assert_eq!(claim(&healed, "from-a").await.unwrap(), Some(b"from-b".to_vec()));
}

#[tokio::test]
async fn a_minority_of_dead_voters_is_tolerated_and_a_majority_is_not() {
    let cluster = Cluster::new(3);
    let one_down = proposer(&cluster, "a", vec![true, true, false], 0.0);
    assert_eq!(claim(&one_down, "x").await.unwrap(), Some(b"x".to_vec()));
    let two_down = proposer(&cluster, "b", vec![true, false, false], 0.0);
    assert!(matches!(two_down.read("key").await, Err(ProposeError::NoQuorum(_))));
}

#[tokio::test]
async fn a_refused_change_writes_nothing() {
    let cluster = Cluster::new(3);
    let p = proposer(&cluster, "a", vec![true; 3], 0.0);
    let refused = p.change("key", |_| Err::<RegisterValue, _>("no")).await;
    assert!(matches!(refused, Err(ProposeError::Refused("no"))));
    assert_eq!(p.read("key").await.unwrap(), None);
}

#[tokio::test]
async fn a_prepared_change_writes_in_its_accept_round_unless_the_register_changed_meanwhile() {
    let cluster = Cluster::new(3);
    let p = proposer(&cluster, "a", vec![true; 3], 0.0);
    let append = |suffix: &'static str| {
        move |current: &RegisterValue| {
            let mut next = current.clone().unwrap_or_default();
            next.extend_from_slice(suffix.as_bytes());
            Ok::<_, ()>(Some(next))
        }
    };
    // Untouched since its prepare: written under the prepared ballot itself.
    let prepared = p.prepare("key").await.unwrap();
    let ballot = prepared.ballot.clone();
    assert_eq!(p.change_prepared(prepared, append("x")).await.unwrap(), Some(b"x".to_vec()));
    let accepted: Vec<Ballot> =
        cluster.voters.iter().map(|v| v.lock().unwrap().get("key").unwrap().accepted.clone()).collect();
    assert!(accepted.iter().all(|b| *b == ballot), "{accepted:?} != {ballot:?}");
    // Written by another proposer in between: the change applies to what that one wrote, not to the stale value.
    let prepared = p.prepare("key").await.unwrap();
    assert_eq!(prepared.value, Some(b"x".to_vec()));
    let other = proposer(&cluster, "b", vec![true; 3], 0.0);
    assert_eq!(other.change("key", append("y")).await.unwrap(), Some(b"xy".to_vec()));
    assert_eq!(p.change_prepared(prepared, append("z")).await.unwrap(), Some(b"xyz".to_vec()));
    assert_eq!(other.read("key").await.unwrap(), Some(b"xyz".to_vec()));
}

#[test]
fn acceptors_refuse_old_ballots() {
    let mut state = AcceptorState::default();
    let b = |round| Ballot { round, node: "n".into() };
    assert!(matches!(state.prepare(&b(2)), (PrepareReply::Promised { .. }, true)));
    assert!(matches!(state.prepare(&b(1)), (PrepareReply::Conflict { .. }, false)));
    assert!(matches!(state.accept(&b(1), Some(vec![1])), (AcceptReply::Conflict { .. }, false)));
    assert!(matches!(state.accept(&b(2), Some(vec![2])), (AcceptReply::Accepted, true)));
    assert!(matches!(state.accept(&b(2), Some(vec![3])), (AcceptReply::Conflict { .. }, false)));
    match state.prepare(&b(3)).0 {
        PrepareReply::Promised { accepted, value } => assert_eq!((accepted, value), (b(2), Some(vec![2]))),
        other => panic!("{other:?}"),
    }
}

/// The directory of a node whose messages reach the voters `reachable` of `cluster`.
fn directory(
    cluster: &Arc<Cluster>,
    name: &str,
    reachable: Vec<bool>,
) -> crate::cluster::directory::ClusterDirectory<View> {
    let rng = Mutex::new(rand::SeedableRng::seed_from_u64(seed()));
    let view = View { cluster: cluster.clone(), reachable, loss: 0.0, rng };
    crate::cluster::directory::ClusterDirectory::new(
        Proposer::new(name, Arc::new(view)),
        crate::metrics::Metrics::new(name),
    )
}

/// A create's binding of a key that one voter of three accepted (its proposer lost the other answers, and with
/// them the create's outcome). A fresh read through the other two says the key is free, yet a later change
/// through a majority with that one voter would still complete the binding. The settled read decides for good:
/// through a majority with that voter it completes the binding; through one without, the key stays free and the
/// binding can never land afterwards, whichever majority the next create reaches.
#[tokio::test]
async fn a_binding_one_voter_accepted_is_decided_for_good_by_a_settled_read() {
    use crate::cluster::directory::{KeyBinding, key_register, to_value};
    let key = ["room".to_string()];
    for (settler_reaches, lands) in [(vec![true, true, false], true), (vec![false, true, true], false)] {
        let cluster = Cluster::new(3);
        let register = key_register("chat", &key);
        let lost = Ballot { round: 100, node: "creator".into() };
        for voter in &cluster.voters[..2] {
            voter.lock().unwrap().entry(register.clone()).or_default().prepare(&lost);
        }
        let ours = to_value(&KeyBinding { actor_id: "a".into() });
        cluster.voters[0].lock().unwrap().get_mut(&register).unwrap().accept(&lost, ours);

        let reader = directory(&cluster, "reader", vec![false, true, true]);
        assert_eq!(reader.binding("chat", &key, true).await.unwrap(), None, "a fresh read misses the binding");
        let settler = directory(&cluster, "settler", settler_reaches);
        let settled = settler.binding_settled("chat", &key).await.unwrap();
        assert_eq!(settled.as_deref(), lands.then_some("a"));

        let next = directory(&cluster, "next", vec![true, true, false]);
        let bound = next.bind_key("chat", &key, "b").await.unwrap();
        assert_eq!(bound, if lands { "a" } else { "b" }, "the settled read's answer is final");
    }
}

/// A node taken for dead twice while it took its actors back: the first take-back (from liveness epoch 4 to 5)
/// moved one actor to epoch 5 before the voters went out of reach, and the second finds the node's epoch at 7.
/// Taking back from 4 to 7 must take that actor too: left at 5, it would be served under a lease that its
/// placement does not name, and its home could never record a new replica set.
#[tokio::test]
async fn a_take_back_also_takes_an_actor_an_earlier_one_left_midway() {
    use crate::cluster::directory::Placement;
    let cluster = Cluster::new(3);
    let directory = directory(&cluster, "n0", vec![true; 3]);
    let placement = Placement {
        actor_id: "a".into(),
        name: "counter".into(),
        key: vec!["k".into()],
        home: "n0".into(),
        region: "east".into(),
        epoch: 3,
        create_ts: 1,
        destroy_ts: None,
        home_epoch: 5,
        replicas: vec!["n2".into()],
        promoted_from: None,
    };
    directory.record_placement(&placement).await.unwrap();
    let taken = directory.reacquire("a", "n0", 4, 7).await.unwrap().unwrap();
    assert_eq!((taken.home.as_str(), taken.home_epoch, taken.epoch), ("n0", 7, 4));
    // Under its own epoch again (a settle of a copy it hosts), it still gets the actor's next epoch.
    let again = directory.reacquire("a", "n0", 7, 7).await.unwrap().unwrap();
    assert_eq!((again.home_epoch, again.epoch), (7, 5));
    // Another node's placement is not taken.
    let other = directory.reacquire("a", "n1", 7, 8).await.unwrap().unwrap();
    assert_eq!((other.home.as_str(), other.home_epoch), ("n0", 7));
}
