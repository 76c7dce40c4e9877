//! CASPaxos: a linearizable register per name, replicated on a static set of voters.
//!
//! Each register is an independent single-decree-style Paxos instance that may be rewritten: a proposer runs a
//! prepare round (a majority of voters promise its ballot and report what they last accepted), applies a change
//! function to the value with the highest accepted ballot, and runs an accept round (a majority accept the new
//! value under the same ballot). Two proposers racing on one register conflict; the loser learns the higher
//! ballot and retries after a random pause.
//!
//! Reads first ask the voters what they accepted, without promising anything (so they never disturb a write): if
//! a majority report the same accepted ballot, its value was chosen, and no later write had completed when the
//! read began (that write's majority would share a voter with this one, which would report a higher ballot), so
//! the value is returned after one round trip. Otherwise (a write is in flight) the read runs as the identity
//! change, both rounds, and is linearizable all the same.
//!
//! Why it keeps its guarantees: any two majorities of one static voter set intersect, so a value accepted by a
//! majority is reported by at least one voter of every later prepare majority, and a later proposer builds on it.
//! A network split leaves at most one side with a majority; the other side's proposals fail (`cluster.no_quorum`)
//! instead of deciding anything. A dead voter is just a missing answer. The voter set is configuration, never
//! SWIM's view of who is alive.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering as AtomicOrdering};
use std::time::Duration;

use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use serde::{Deserialize, Serialize};
use tern_proto::ClientError;

/// A proposal number: a round, made unique by the proposer's node id. Ordered by round, then by id.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Ballot {
    /// Grows with every attempt of a proposer.
    pub round: u64,
    /// The proposing node.
    pub node: String,
}

/// The value of a register as voters keep it: opaque bytes, absent until first written.
pub type RegisterValue = Option<Vec<u8>>;

/// A voter's answer to a prepare.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum PrepareReply {
    /// The voter promised the ballot; here is what it last accepted (the zero ballot and no value if nothing).
    Promised { accepted: Ballot, value: RegisterValue },
    /// The voter already promised or accepted this ballot or a higher one.
    Conflict { seen: Ballot },
}

/// A voter's answer to an accept.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum AcceptReply {
    /// The voter accepted the value under the ballot.
    Accepted,
    /// The voter has promised a higher ballot since.
    Conflict { seen: Ballot },
}

/// A voter's durable state for one register.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AcceptorState {
    /// The highest ballot promised.
    pub promised: Ballot,
    /// The ballot of the accepted value.
    pub accepted: Ballot,
    /// The accepted value.
    pub value: RegisterValue,
}

impl AcceptorState {
    /// Handles a prepare; returns the reply and whether the state changed (and must be made durable before the
    /// reply leaves).
    pub fn prepare(&mut self, ballot: &Ballot) -> (PrepareReply, bool) {
        if *ballot <= self.promised || *ballot <= self.accepted {
            let seen = self.promised.clone().max(self.accepted.clone());
            return (PrepareReply::Conflict { seen }, false);
        }
        self.promised = ballot.clone();
        (PrepareReply::Promised { accepted: self.accepted.clone(), value: self.value.clone() }, true)
    }

    /// Handles an accept; returns the reply and whether the state changed.
    pub fn accept(&mut self, ballot: &Ballot, value: RegisterValue) -> (AcceptReply, bool) {
        if *ballot < self.promised || *ballot <= self.accepted {
            let seen = self.promised.clone().max(self.accepted.clone());
            return (AcceptReply::Conflict { seen }, false);
        }
        self.promised = ballot.clone();
        self.accepted = ballot.clone();
        self.value = value;
        (AcceptReply::Accepted, true)
    }
}

/// How a proposer reaches the voters. A failed call is a missing vote, never a panic.
pub trait Voters: Send + Sync + 'static {
    /// How many voters there are.
    fn count(&self) -> usize;
    /// Asks voter `index` what it accepted for `register`, changing nothing.
    fn read(
        &self,
        index: usize,
        register: &str,
    ) -> impl Future<Output = Result<(Ballot, RegisterValue), String>> + Send;
    /// Asks voter `index` to promise `ballot` for `register`.
    fn prepare(
        &self,
        index: usize,
        register: &str,
        ballot: &Ballot,
    ) -> impl Future<Output = Result<PrepareReply, String>> + Send;
    /// Asks voter `index` to accept `value` under `ballot` for `register`.
    fn accept(
        &self,
        index: usize,
        register: &str,
        ballot: &Ballot,
        value: &RegisterValue,
    ) -> impl Future<Output = Result<AcceptReply, String>> + Send;
}

/// Why a change was not applied.
#[derive(Debug)]
pub enum ProposeError<E> {
    /// The change function refused the current value; nothing was written.
    Refused(E),
    /// No majority answered within the attempts (the voters are down or cut off).
    NoQuorum(String),
}

impl From<ProposeError<ClientError>> for ClientError {
    fn from(e: ProposeError<ClientError>) -> Self {
        match e {
            ProposeError::Refused(e) => e,
            ProposeError::NoQuorum(why) => ClientError::no_quorum(why),
        }
    }
}

/// The first round of a change made ahead of time: a ballot a majority of voters promised for one register, and
/// the value they reported. [`Proposer::change_prepared`] then writes with one round trip instead of two, as long as
/// no other proposer touched the register meanwhile.
#[derive(Debug)]
pub struct Prepared {
    register: String,
    ballot: Ballot,
    value: RegisterValue,
}

impl Prepared {
    /// The register it was made for.
    pub fn register(&self) -> &str {
        &self.register
    }
}

/// Runs CASPaxos rounds for this node.
pub struct Proposer<V> {
    node: String,
    voters: Arc<V>,
    /// The highest round this proposer used or saw; the next ballot goes above it.
    round: AtomicU64,
    attempts: u32,
    /// Draws the random pauses after conflicts.
    jitter: std::sync::Mutex<rand::rngs::StdRng>,
}

/// How many conflicting or quorum-less rounds a proposal tries before giving up.
const ATTEMPTS: u32 = 40;
/// The longest random pause after a conflict; it doubles from a few milliseconds up to this.
const MAX_PAUSE: Duration = Duration::from_millis(250);
/// After this many rounds without a majority of answers (no conflict, just silence), a proposal gives up.
const UNREACHABLE_ROUNDS: usize = 3;

impl<V: Voters> Proposer<V> {
    /// A proposer for node `node` over `voters`.
    pub fn new(node: impl Into<String>, voters: Arc<V>) -> Self {
        Self::seeded(node, voters, rand::random())
    }

    /// A proposer whose random pauses after conflicts are drawn from `seed`: the same seed, the same pauses (the
    /// directory's simulation replays a run exactly).
    pub fn seeded(node: impl Into<String>, voters: Arc<V>, seed: u64) -> Self {
        let jitter = std::sync::Mutex::new(rand::SeedableRng::seed_from_u64(seed));
        Self { node: node.into(), voters, round: AtomicU64::new(0), attempts: ATTEMPTS, jitter }
    }

    /// Reads the register (linearizably): one round trip when a majority agree, else a full identity change.
    pub async fn read(&self, register: &str) -> Result<RegisterValue, ProposeError<ClientError>> {
        if let Some(value) = self.quorum_read(register).await {
            return Ok(value);
        }
        self.change(register, |value| Ok(value.clone())).await
    }

    /// The value a majority of voters report under one accepted ballot, if they do.
    async fn quorum_read(&self, register: &str) -> Option<RegisterValue> {
        let mut calls: FuturesUnordered<_> = (0..self.voters.count()).map(|i| self.voters.read(i, register)).collect();
        let mut seen: Vec<(Ballot, RegisterValue, usize)> = Vec::new();
        let mut answered = 0;
        while let Some(reply) = calls.next().await {
            let Ok((ballot, value)) = reply else { continue };
            answered += 1;
            match seen.iter_mut().find(|(b, _, _)| *b == ballot) {
                Some(entry) => entry.2 += 1,
                None => seen.push((ballot, value, 1)),
            }
            if let Some((_, value, _)) = seen.iter().find(|(_, _, n)| *n >= self.majority()) {
                return Some(value.clone());
            }
            // Stop early once no ballot can reach a majority any more.
            let best = seen.iter().map(|(_, _, n)| *n).max().unwrap_or(0);
            if best + (self.voters.count() - answered) < self.majority() {
                return None;
            }
        }
        None
    }

    /// Runs the prepare round of a coming change of `register` now (see [`Prepared`]); fails like a change when no
    /// majority promised.
    pub async fn prepare(&self, register: &str) -> Result<Prepared, ProposeError<ClientError>> {
        let ballot = self.next_ballot();
        match self.prepare_round(register, &ballot).await {
            Ok(value) => Ok(Prepared { register: register.to_string(), ballot, value }),
            Err(failure) => Err(ProposeError::NoQuorum(failure.why)),
        }
    }

    /// [`Self::change`] of the register `prepared` was made for, starting with its accept round: `change` applies
    /// to the value the prepare round found, and the voters accept the result only if no other ballot reached
    /// them since, in which case that value is still the register's (Paxos' own argument: the two rounds of a
    /// ballot need not follow each other at once). Otherwise this is a whole [`Self::change`].
    pub async fn change_prepared<E>(
        &self,
        prepared: Prepared,
        change: impl Fn(&RegisterValue) -> Result<RegisterValue, E>,
    ) -> Result<RegisterValue, ProposeError<E>> {
        let Prepared { register, ballot, value } = prepared;
        if let Ok(next) = change(&value)
            && self.accept_round(&register, &ballot, &next).await.is_ok()
        {
            return Ok(next);
        }
        self.change(&register, change).await
    }

    /// Applies `change` to the register's current value and writes the result; returns the value written. The
    /// function may run several times (once per attempt) and must depend only on its argument.
    pub async fn change<E>(
        &self,
        register: &str,
        change: impl Fn(&RegisterValue) -> Result<RegisterValue, E>,
    ) -> Result<RegisterValue, ProposeError<E>> {
        let (mut last_failure, mut unreachable_rounds) = (String::new(), 0);
        for attempt in 0..self.attempts {
            // Conflicts resolve with retries; voters that do not answer rarely come back within a request.
            if unreachable_rounds >= UNREACHABLE_ROUNDS {
                break;
            }
            if attempt > 0 {
                tokio::time::sleep(self.pause(attempt)).await;
            }
            let ballot = self.next_ballot();
            let current = match self.prepare_round(register, &ballot).await {
                Ok(current) => current,
                Err(failure) => {
                    unreachable_rounds += usize::from(!failure.conflict);
                    last_failure = failure.why;
                    continue;
                }
            };
            let next = change(&current).map_err(ProposeError::Refused)?;
            match self.accept_round(register, &ballot, &next).await {
                Ok(()) => return Ok(next),
                Err(failure) => {
                    unreachable_rounds += usize::from(!failure.conflict);
                    last_failure = failure.why;
                }
            }
        }
        Err(ProposeError::NoQuorum(last_failure))
    }

    /// A random pause before attempt `attempt` (from 1): up to 5 ms doubling per attempt, capped at [`MAX_PAUSE`].
    fn pause(&self, attempt: u32) -> Duration {
        let cap = Duration::from_millis(5).saturating_mul(1 << attempt.min(10)).min(MAX_PAUSE);
        cap.mul_f64(rand::RngExt::random::<f64>(&mut *crate::sync::lock(&self.jitter)))
    }

    fn next_ballot(&self) -> Ballot {
        Ballot { round: self.round.fetch_add(1, AtomicOrdering::SeqCst) + 1, node: self.node.clone() }
    }

    fn saw(&self, ballot: &Ballot) {
        self.round.fetch_max(ballot.round, AtomicOrdering::SeqCst);
    }

    fn majority(&self) -> usize {
        self.voters.count() / 2 + 1
    }

    /// Gathers a majority of promises and returns the value with the highest accepted ballot among them.
    async fn prepare_round(&self, register: &str, ballot: &Ballot) -> Result<RegisterValue, RoundFailure> {
        let calls = (0..self.voters.count()).map(|i| async move {
            self.voters.prepare(i, register, ballot).await.map(|reply| match reply {
                PrepareReply::Promised { accepted, value } => Vote::Yes((accepted, value)),
                PrepareReply::Conflict { seen } => Vote::Conflict(seen),
            })
        });
        let promises = self.majority_of("promised", calls.collect()).await?;
        Ok(promises.into_iter().max_by(|a, b| a.0.cmp(&b.0)).and_then(|(_, value)| value))
    }

    /// Gathers a majority of acceptances of `value` under `ballot`.
    async fn accept_round(&self, register: &str, ballot: &Ballot, value: &RegisterValue) -> Result<(), RoundFailure> {
        let calls = (0..self.voters.count()).map(|i| async move {
            self.voters.accept(i, register, ballot, value).await.map(|reply| match reply {
                AcceptReply::Accepted => Vote::Yes(()),
                AcceptReply::Conflict { seen } => Vote::Conflict(seen),
            })
        });
        self.majority_of("accepted", calls.collect()).await.map(|_| ())
    }

    /// Waits for the voters' answers until a majority said yes (their answers) or a majority can no longer be
    /// reached (why). Conflicts raise this proposer's round above the ballots they report.
    async fn majority_of<T, F>(&self, phase: &str, mut calls: FuturesUnordered<F>) -> Result<Vec<T>, RoundFailure>
    where
        F: Future<Output = Result<Vote<T>, String>>,
    {
        let (mut yes, mut conflicts, mut failures) = (Vec::new(), 0, Vec::new());
        while let Some(reply) = calls.next().await {
            match reply {
                Ok(Vote::Yes(answer)) => {
                    yes.push(answer);
                    if yes.len() >= self.majority() {
                        return Ok(yes);
                    }
                }
                Ok(Vote::Conflict(seen)) => {
                    self.saw(&seen);
                    conflicts += 1;
                    failures.push(format!("ballot {} superseded", seen.round));
                }
                Err(e) => failures.push(e),
            }
            if failures.len() > self.voters.count() - self.majority() {
                break;
            }
        }
        Err(RoundFailure::new(phase, conflicts, failures))
    }
}

/// One voter's answer in a round: yes (with what it reports), or a conflict with a higher ballot.
enum Vote<T> {
    Yes(T),
    Conflict(Ballot),
}

/// Why a round did not gather a majority.
struct RoundFailure {
    /// Some voter had seen a higher ballot: retrying (with a higher one) can succeed.
    conflict: bool,
    why: String,
}

impl RoundFailure {
    fn new(phase: &str, conflicts: usize, failures: Vec<String>) -> Self {
        RoundFailure { conflict: conflicts > 0, why: format!("no majority of voters {phase}: {}", failures.join("; ")) }
    }
}

#[cfg(test)]
mod sim;
#[cfg(test)]
mod tests;
