//! Following the traffic: an actor whose calls come mostly from another region moves there.
//!
//! The actor's home counts each call by the region it came from (the region of the gateway that received it, see
//! [`Traffic::record`]). Every window ([`FollowTraffic::window`]) it looks at the counts: an actor with at least
//! [`FollowTraffic::min_calls`] calls, [`FollowTraffic::share`] of them (70 % by default) from one other region, in
//! two windows in a row, and no move in the last [`FollowTraffic::dwell`], moves to that region (one move at a
//! time per actor, as every move). An even split never reaches the share, so it never flaps. The decision and its
//! reason are logged, counted (`tern_traffic_moves_total`) and shown in the inspector summary (`lastMove`).
//! Definitions choose with `ActorOptions::follow_traffic`; the node's default is `--follow-traffic` (off).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tern_gateway::backend::MigrationTarget;

use super::Handoff;
use crate::sync::lock;

/// When and how readily actors follow their traffic.
#[derive(Clone, Copy, Debug)]
pub struct FollowTraffic {
    /// Whether actors whose definition does not choose follow their traffic (`--follow-traffic`).
    pub enabled: bool,
    /// How long calls are counted before the counts are looked at.
    pub window: Duration,
    /// The fewest calls in a window that can move an actor.
    pub min_calls: u64,
    /// The share of a window's calls that must come from one other region.
    pub share: f64,
    /// The least time between two moves of an actor (and after it arrived).
    pub dwell: Duration,
}

impl Default for FollowTraffic {
    fn default() -> Self {
        FollowTraffic {
            enabled: false,
            window: Duration::from_secs(60),
            min_calls: 100,
            share: 0.7,
            dwell: Duration::from_secs(300),
        }
    }
}

/// One actor's counts on its home.
struct ActorTraffic {
    /// Calls per region in the current window.
    calls: HashMap<String, u64>,
    /// The region that had the share in the previous window, if one had.
    leader: Option<String>,
    /// When the actor arrived here (or was first counted).
    since: Instant,
}

/// The calls of the actors homed on this node, by the region they came from. Cheap to clone.
#[derive(Clone, Default)]
pub struct Traffic {
    actors: Arc<Mutex<HashMap<String, ActorTraffic>>>,
}

impl Traffic {
    /// Counts one call to `actor_id` that came from `region`.
    pub fn record(&self, actor_id: &str, region: &str) {
        let mut actors = lock(&self.actors);
        let actor = actors.entry(actor_id.to_string()).or_insert_with(|| ActorTraffic {
            calls: HashMap::new(),
            leader: None,
            since: Instant::now(),
        });
        *actor.calls.entry(region.to_string()).or_default() += 1;
    }

    /// Starts the actor's counts afresh: it just arrived here (its dwell time starts now).
    pub fn arrived(&self, actor_id: &str) {
        let fresh = ActorTraffic { calls: HashMap::new(), leader: None, since: Instant::now() };
        lock(&self.actors).insert(actor_id.to_string(), fresh);
    }

    /// Forgets an actor that left.
    pub fn forget(&self, actor_id: &str) {
        lock(&self.actors).remove(actor_id);
    }

    /// Ends the window: for each actor, whether its calls should move it, and where. `here` is this node's region.
    fn decide(&self, here: &str, policy: &FollowTraffic) -> Vec<(String, String, String)> {
        let mut moves = Vec::new();
        let mut actors = lock(&self.actors);
        // An actor nobody called in the window is forgotten (its dwell time starts again when calls come back), so
        // the map holds only actors that are called, not every actor ever called.
        actors.retain(|_, actor| !actor.calls.is_empty());
        for (actor_id, actor) in actors.iter_mut() {
            let calls = std::mem::take(&mut actor.calls);
            let total: u64 = calls.values().sum();
            let top = calls.iter().max_by_key(|(region, n)| (**n, std::cmp::Reverse((*region).clone())));
            let leader = top
                .filter(|(region, n)| {
                    region.as_str() != here && total >= policy.min_calls && **n as f64 >= policy.share * total as f64
                })
                .map(|(region, n)| (region.clone(), *n));
            let sustained = leader.as_ref().is_some_and(|(region, _)| actor.leader.as_ref() == Some(region));
            actor.leader = leader.as_ref().map(|(region, _)| region.clone());
            if let Some((region, n)) = leader
                && sustained
                && actor.since.elapsed() >= policy.dwell
            {
                let percent = n * 100 / total;
                let reason = format!("moved {here} → {region}: {percent}% of {total} calls from {region}");
                moves.push((actor_id.clone(), region, reason));
            }
        }
        moves
    }
}

/// Looks at the counts every window and moves the actors that follow their traffic, for as long as the node runs.
pub(super) async fn run(handoff: Arc<Handoff>) {
    let policy = handoff.follow;
    loop {
        tokio::time::sleep(policy.window).await;
        let traffic = handoff.backend.traffic();
        for (actor_id, region, reason) in traffic.decide(&handoff.region, &policy) {
            let entry = match handoff.host.core.live(&actor_id).await {
                Ok(Some(entry)) => entry,
                Ok(None) => {
                    traffic.forget(&actor_id);
                    continue;
                }
                Err(e) => {
                    tracing::warn!(actor_id, error = %e, "cannot tell whether the actor is still here");
                    continue;
                }
            };
            if !follows(&handoff, &entry.record.name) {
                continue;
            }
            tracing::info!(actor_id, to = %region, reason, "moving the actor to where its calls come from");
            match handoff.migrate_because(&actor_id, &MigrationTarget::Region(region), Some(reason)).await {
                Ok(_) => handoff.host.core.metrics.record_traffic_move(),
                Err(e) => tracing::warn!(actor_id, error = %e, "could not move the actor to where its calls come from"),
            }
        }
    }
}

/// Whether actors named `name` follow their traffic: their definition's choice, else the node's.
fn follows(handoff: &Handoff, name: &str) -> bool {
    let options = handoff.host.core.registry.get(name).map(|f| f.options().clone());
    options.and_then(|o| o.follow_traffic).unwrap_or(handoff.follow.enabled)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> FollowTraffic {
        FollowTraffic {
            enabled: true,
            window: Duration::from_secs(1),
            min_calls: 10,
            share: 0.7,
            dwell: Duration::ZERO,
        }
    }

    fn window(traffic: &Traffic, counts: &[(&str, u64)]) -> Vec<(String, String, String)> {
        for (region, n) in counts {
            (0..*n).for_each(|_| traffic.record("a", region));
        }
        traffic.decide("iad", &policy())
    }

    #[test]
    fn a_sustained_majority_from_another_region_moves_the_actor_there() {
        let traffic = Traffic::default();
        assert!(window(&traffic, &[("fra", 84), ("iad", 16)]).is_empty(), "one window is not sustained");
        let moves = window(&traffic, &[("fra", 90), ("iad", 10)]);
        assert_eq!(moves.len(), 1);
        assert_eq!(moves[0].1, "fra");
        assert_eq!(moves[0].2, "moved iad → fra: 90% of 100 calls from fra");
    }

    #[test]
    fn an_even_split_few_calls_or_the_home_region_never_move_it() {
        let traffic = Traffic::default();
        for _ in 0..5 {
            assert!(window(&traffic, &[("fra", 50), ("iad", 50)]).is_empty(), "50/50");
            assert!(window(&traffic, &[("fra", 9)]).is_empty(), "under the minimum");
            assert!(window(&traffic, &[("iad", 100)]).is_empty(), "already there");
        }
        // The leader must hold for two windows in a row.
        assert!(window(&traffic, &[("fra", 80), ("iad", 20)]).is_empty());
        assert!(window(&traffic, &[("sin", 80), ("iad", 20)]).is_empty());
        assert_eq!(window(&traffic, &[("sin", 80), ("iad", 20)])[0].1, "sin");
    }

    #[test]
    fn actors_without_calls_in_a_window_are_forgotten() {
        let traffic = Traffic::default();
        window(&traffic, &[("fra", 50)]);
        assert_eq!(lock(&traffic.actors).len(), 1);
        traffic.decide("iad", &policy());
        assert!(lock(&traffic.actors).is_empty());
    }

    #[test]
    fn no_move_before_the_dwell_time() {
        let traffic = Traffic::default();
        let dwell = FollowTraffic { dwell: Duration::from_secs(3600), ..policy() };
        for _ in 0..3 {
            (0..100).for_each(|_| traffic.record("a", "fra"));
            assert!(traffic.decide("iad", &dwell).is_empty());
        }
    }
}
