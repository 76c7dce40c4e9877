//! The simulated network and voters under the deterministic simulations of the cluster's protocols (the
//! directory's registers, `cluster/directory/paxos/sim.rs`; leases and failover, `handoff/sim/`).
//!
//! Messages between places (nodes and voters) take a random delay, so they overtake each other; each may be lost,
//! and cut links drop everything one way. Voters keep what an fsynced store keeps and can crash for a while. Every
//! random choice comes from one seeded generator, and the simulations run on the paused clock of a
//! single-threaded tokio runtime, so a seed replays exactly.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

use crate::cluster::directory::paxos::{AcceptReply, AcceptorState, Ballot, PrepareReply, RegisterValue, Voters};

/// One end of a simulated link.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Place {
    /// A node (a proposer, in the directory's simulation).
    Node(usize),
    /// A voter of the directory.
    Voter(usize),
}

/// How the network misbehaves throughout a run.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Weather {
    /// The chance that a message is lost.
    pub loss: f64,
    /// The longest one-way delay; each message draws its own.
    pub max_delay: Duration,
}

/// One voter: what its fsynced store holds, and whether it runs.
struct Voter {
    registers: BTreeMap<String, AcceptorState>,
    up: bool,
}

/// The simulated network and the directory's voters.
pub(crate) struct SimNet {
    rng: Mutex<StdRng>,
    voters: Vec<Mutex<Voter>>,
    /// Directed links that drop everything: `(from, to)`.
    cut: Mutex<BTreeSet<(Place, Place)>>,
    weather: Weather,
    /// A planted bug: voters that keep their promises and acceptances in memory only and forget them when they
    /// crash (as voters that did not sync their store before answering).
    amnesia: bool,
}

/// Locks a simulation's mutex (a panic elsewhere fails the run anyway).
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl SimNet {
    /// A network drawing from `seed`, with `voters` voters, all up.
    pub fn new(seed: u64, voters: usize, weather: Weather, amnesia: bool) -> Arc<SimNet> {
        let voters = (0..voters).map(|_| Mutex::new(Voter { registers: BTreeMap::new(), up: true })).collect();
        Arc::new(SimNet {
            rng: Mutex::new(StdRng::seed_from_u64(seed)),
            voters,
            cut: Mutex::default(),
            weather,
            amnesia,
        })
    }

    /// How many voters there are.
    pub fn voter_count(&self) -> usize {
        self.voters.len()
    }

    /// The run's generator, for the simulation's own draws.
    pub fn rng(&self) -> MutexGuard<'_, StdRng> {
        lock(&self.rng)
    }

    /// True with probability `p`.
    pub fn chance(&self, p: f64) -> bool {
        self.rng().random::<f64>() < p
    }

    /// A number below `n`.
    pub fn below(&self, n: usize) -> usize {
        self.rng().random_range(0..n)
    }

    /// Carries one message from `from` to `to`: waits its delay, then tells whether it arrived (not lost, the
    /// link not cut).
    pub async fn carry(&self, from: Place, to: Place) -> bool {
        let delay = {
            let max = self.weather.max_delay.as_micros() as u64;
            Duration::from_micros(self.rng().random_range(0..=max))
        };
        tokio::time::sleep(delay).await;
        !self.chance(self.weather.loss) && !lock(&self.cut).contains(&(from, to))
    }

    /// Cuts the link from `from` to `to` (one way).
    pub fn cut(&self, from: Place, to: Place) {
        lock(&self.cut).insert((from, to));
    }

    /// Heals every cut link.
    pub fn heal_links(&self) {
        lock(&self.cut).clear();
    }

    /// Whether `from` reaches `to` now (the link is not cut).
    pub fn reaches(&self, from: Place, to: Place) -> bool {
        !lock(&self.cut).contains(&(from, to))
    }

    /// Crashes voter `index` for `down_for`.
    pub fn crash_voter(self: &Arc<Self>, index: usize, down_for: Duration) {
        {
            let mut voter = lock(&self.voters[index]);
            voter.up = false;
            if self.amnesia {
                voter.registers.clear();
            }
        }
        let net = self.clone();
        tokio::spawn(async move {
            tokio::time::sleep(down_for).await;
            lock(&net.voters[index]).up = true;
        });
    }

    /// Ends every fault: links healed, voters up.
    pub fn heal(&self) {
        self.heal_links();
        self.voters.iter().for_each(|v| lock(v).up = true);
    }

    /// The voters as node `node` reaches them.
    pub fn voters(self: &Arc<Self>, node: usize) -> SimVoters {
        SimVoters { net: self.clone(), node }
    }
}

/// The voters as one node reaches them through the simulated network.
pub(crate) struct SimVoters {
    net: Arc<SimNet>,
    node: usize,
}

impl SimVoters {
    /// Carries a request to voter `index`, applies `handle` to its register there, and carries the answer back;
    /// either message may be lost or delayed.
    async fn call<T>(
        &self,
        index: usize,
        register: &str,
        handle: impl FnOnce(&mut AcceptorState) -> T,
    ) -> Result<T, String> {
        let (node, voter) = (Place::Node(self.node), Place::Voter(index));
        if !self.net.carry(node, voter).await {
            return Err(format!("the request to voter {index} was lost"));
        }
        let answer = {
            let mut voter = lock(&self.net.voters[index]);
            if !voter.up {
                return Err(format!("voter {index} is down"));
            }
            handle(voter.registers.entry(register.to_string()).or_default())
        };
        if !self.net.carry(voter, node).await {
            return Err(format!("the answer of voter {index} was lost"));
        }
        Ok(answer)
    }
}

impl Voters for SimVoters {
    fn count(&self) -> usize {
        self.net.voters.len()
    }

    async fn read(&self, index: usize, register: &str) -> Result<(Ballot, RegisterValue), String> {
        self.call(index, register, |state| (state.accepted.clone(), state.value.clone())).await
    }

    async fn prepare(&self, index: usize, register: &str, ballot: &Ballot) -> Result<PrepareReply, String> {
        self.call(index, register, |state| state.prepare(ballot).0).await
    }

    async fn accept(
        &self,
        index: usize,
        register: &str,
        ballot: &Ballot,
        value: &RegisterValue,
    ) -> Result<AcceptReply, String> {
        self.call(index, register, |state| state.accept(ballot, value.clone()).0).await
    }
}
