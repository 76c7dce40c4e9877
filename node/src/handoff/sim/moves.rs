//! Moves on demand on the simulated nodes: the home's and the target's sides of `migrate.rs`.

use std::sync::Arc;
use std::time::Duration;

use tern_replication::wal::Position;
use tokio::time::Instant;

use super::super::migrate::{claim, settle_leaving_once};
use super::node::{Home, Node, ReplicaCopy, Role};
use super::{ACTOR, Planted, first_placement};
use crate::cluster::directory::{HandOver, Placement};
use crate::simnet::{Place, lock};

/// Moves on demand: the home's and the target's sides of `migrate.rs`, with its directory steps
/// ([`settle_leaving_once`], [`claim`]) run as they are.
impl Node {
    /// The home moves the actor to node `to`, one of its replicas: the target prepares the hand-over, the home
    /// records the hand-off and holds requests, lets the writes in flight finish, waits until the target holds its
    /// last position, and asks it to take the actor over; a hand-off that did not finish is settled by the
    /// directory.
    pub(super) async fn move_to(self: &Arc<Self>, to: usize) {
        let Some((lease, directory)) = lock(&self.memory).as_ref().map(|m| (m.lease.clone(), m.directory.clone()))
        else {
            return;
        };
        if lease.check().is_err() {
            return;
        }
        let Ok(Some(placement)) = directory.placement(ACTOR, true).await else { return };
        if placement.home != self.id {
            return;
        }
        let target = self.world.node(to);
        let net = &self.world.net;
        if net.carry(Place::Node(self.index), Place::Node(to)).await {
            let expecting = target.clone();
            target.serve(async move { expecting.expect().await }).await;
        }
        {
            let mut disk = lock(&self.disk);
            let Some(home) = disk.homes.get_mut(ACTOR).filter(|h| h.handoff.is_none()) else { return };
            home.handoff = Some(Role::Leaving);
        }
        self.writes_ended().await;
        let (position, replicas) = {
            let disk = lock(&self.disk);
            let Some(home) = disk.homes.get(ACTOR) else { return };
            let others = placement.replicas.iter().filter(|r| **r != target.id && **r != self.id).cloned();
            let replicas: Vec<String> =
                std::iter::once(self.id.clone()).chain(others).take(self.world.setup.replicas).collect();
            (home.position(), replicas)
        };
        let answer = match self.reached(&target.id, position, Duration::from_secs(20)).await {
            true if net.carry(Place::Node(self.index), Place::Node(to)).await => {
                let (taking, from, epoch) = (target.clone(), self.id.clone(), placement.epoch);
                let taking_home = async move { taking.take_home(&from, epoch, position, replicas).await };
                let answer = target.serve(taking_home).await.flatten();
                net.carry(Place::Node(to), Place::Node(self.index)).await.then_some(answer).flatten()
            }
            _ => None,
        };
        match answer {
            Some(epoch) => {
                self.leave(&target.id, epoch);
                lock(&self.world.moves).push(epoch);
            }
            None => self.settle_handoff(Role::Leaving).await,
        }
    }

    /// Waits until no write is in flight on this node.
    pub(super) async fn writes_ended(&self) {
        let writes = lock(&self.memory).as_ref().map(|m| m.writes.clone());
        // One clone is the node's, one this.
        while writes.as_ref().is_some_and(|w| Arc::strong_count(w) > 2) {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }

    /// Waits up to `limit` until `replica` acknowledged `position`.
    pub(super) async fn reached(&self, replica: &str, position: Position, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            let acked = lock(&self.memory)
                .as_ref()
                .and_then(|m| m.acked.get(&(ACTOR.to_string(), replica.to_string())).copied());
            if acked.is_some_and(|p| p >= position) {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        false
    }

    /// The target prepares the hand-over in the directory (`Expect`).
    pub(super) async fn expect(&self) {
        let Some(directory) = lock(&self.memory).as_ref().map(|m| m.directory.clone()) else { return };
        let prepared = directory.prepare_hand_over(ACTOR).await.ok();
        if let Some(memory) = lock(&self.memory).as_mut() {
            memory.prepared = prepared;
        }
    }

    /// The target's side (`TakeHome`): its copy must be exactly at the home's last position; it records the
    /// arrival (requests held), claims the placement, and serves the actor if the directory names it. Returns the
    /// new placement epoch, or `None` when it refused or the directory did not name it.
    pub(super) async fn take_home(
        &self,
        from: &str,
        epoch: u64,
        position: Position,
        replicas: Vec<String>,
    ) -> Option<u64> {
        let (lease, directory, prepared) = {
            let mut memory = lock(&self.memory);
            let memory = memory.as_mut()?;
            (memory.lease.clone(), memory.directory.clone(), memory.prepared.take())
        };
        lease.check().ok()?;
        {
            let mut disk = lock(&self.disk);
            let holds = disk.copies.get(ACTOR).is_some_and(|(home, copy)| home == from && copy.position == position);
            if !holds || disk.homes.contains_key(ACTOR) {
                return None;
            }
            let (_, copy) = disk.copies.remove(ACTOR)?;
            let arriving = Home {
                epoch,
                replicas: replicas.clone(),
                values: copy.values,
                generation: position.generation,
                handoff: Some(Role::Arriving { from: self.world.index_of(from)? }),
            };
            disk.homes.insert(ACTOR.to_string(), arriving);
        }
        let moving =
            HandOver { actor_id: ACTOR, from, epoch, to: &self.id, to_epoch: lease.epoch(), region: "sim", replicas };
        if self.world.planted == Planted::TargetSkipsTheDirectory {
            let now = Placement { home: self.id.clone(), epoch: epoch + 1, ..first_placement(vec![]) };
            return self.arrived(Some(&now), from);
        }
        let decided = claim(&directory, &moving, prepared).await;
        self.arrived(decided.as_ref(), from)
    }

    /// Ends an arrival from `from` as the directory decided it: served here under `decided` if it names this node;
    /// else undone as `migrate.rs` `unpack` does, the promoted copy kept as a replica of `from` when the directory
    /// still names `from` with this node among its replicas.
    pub(super) fn arrived(&self, decided: Option<&Placement>, from: &str) -> Option<u64> {
        let mut disk = lock(&self.disk);
        match decided {
            Some(now) if now.home == self.id => {
                let home = disk.homes.get_mut(ACTOR)?;
                (home.epoch, home.generation, home.handoff) = (now.epoch, now.epoch, None);
                Some(now.epoch)
            }
            _ => {
                let home = disk.homes.remove(ACTOR)?;
                let keep = decided.is_some_and(|p| p.home == from && p.replicas.contains(&self.id));
                if keep {
                    let copy = ReplicaCopy { position: home.position(), values: home.values };
                    disk.copies.insert(ACTOR.to_string(), (from.to_string(), copy));
                }
                None
            }
        }
    }

    /// The old home forgets the actor that left for `new_home`, keeping its database as a replica's copy.
    pub(super) fn leave(&self, new_home: &str, _epoch: u64) {
        let mut disk = lock(&self.disk);
        if let Some(home) = disk.homes.remove(ACTOR) {
            let copy = ReplicaCopy { position: home.position(), values: home.values };
            disk.copies.insert(ACTOR.to_string(), (new_home.to_string(), copy));
        }
    }

    /// Settles a hand-off that did not finish (or that a crash interrupted) with the directory, asking until it
    /// answers: the home takes the actor back or lets it go ([`settle_leaving_once`]); the target keeps it only if
    /// the directory names it.
    pub(super) async fn settle_handoff(&self, role: Role) {
        let Some((lease, directory)) = lock(&self.memory).as_ref().map(|m| (m.lease.clone(), m.directory.clone()))
        else {
            return;
        };
        if let Role::Arriving { from } = role {
            let decided = directory.placement_settled(ACTOR, Duration::from_millis(500)).await;
            self.arrived(decided.as_ref(), &self.world.node(from).id);
            return;
        }
        loop {
            match settle_leaving_once(&directory, ACTOR, &self.id, lease.epoch()).await {
                Ok(Some(p)) if p.home == self.id => {
                    if let Some(home) = lock(&self.disk).homes.get_mut(ACTOR) {
                        (home.epoch, home.generation, home.handoff) = (p.epoch, p.epoch, None);
                    }
                    return;
                }
                Ok(Some(p)) => return self.leave(&p.home, p.epoch),
                Ok(None) => {
                    lock(&self.disk).homes.remove(ACTOR);
                    return;
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(500)).await,
            }
        }
    }
}
