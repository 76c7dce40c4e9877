//! The cluster's actor directory: (name, key) → actor id → home node and epoch, decided by CASPaxos over a
//! static voter set ([`paxos`]).
//!
//! Two kinds of registers:
//! * `key/<name>/<key>` holds a [`KeyBinding`]: the actor id the key belongs to. Set once when the key is free;
//!   cleared only by destroying that actor. Concurrent creates of one key race on this register, and exactly one
//!   id wins, on any node, in any region, across partitions.
//! * `actor/<id>` holds the actor's [`Placement`]: its home node and epoch (and name, key, region, create time,
//!   destroy time). It is written before the key is bound, so a bound key never points at an unknown actor.
//!
//! Reads go to a majority of voters; their results are cached (a key's actor id never changes until destroy, a
//! placement only with a new epoch), and a stale entry is corrected when the node it leads to says so.

pub mod acceptor;
pub mod liveness;
pub mod paxos;
pub mod voters;

use std::num::NonZeroUsize;
use std::sync::Mutex;

use lru::LruCache;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use tern_gateway::backend::ActorInfo;
use tern_proto::ClientError;
use tern_proto::key::serialize_key;

use paxos::{Prepared, ProposeError, Proposer, RegisterValue, Voters};
use voters::TransportVoters;

/// How many placements and key bindings each cache keeps.
const CACHE_ENTRIES: usize = 100_000;

/// Which actor a key belongs to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyBinding {
    pub actor_id: String,
}

/// Where an actor lives. `epoch` grows with every change of home, so a stale home can be told apart.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Placement {
    pub actor_id: String,
    pub name: String,
    pub key: Vec<String>,
    /// The id of the node that hosts the actor.
    pub home: String,
    /// The home's region.
    pub region: String,
    pub epoch: u64,
    pub create_ts: i64,
    pub destroy_ts: Option<i64>,
    /// The home's liveness epoch (see [`liveness`]) when it became the home: it may serve the actor only while its
    /// liveness record still has this epoch. A node whose epoch was bumped must take its actors back under the
    /// new epoch ([`ClusterDirectory::reacquire`]) before it serves them again, and a replica may take an actor
    /// over ([`ClusterDirectory::move_home`]) only after the home's epoch was bumped past this one.
    #[serde(default)]
    pub home_epoch: u64,
    /// The nodes that hold replicas of the actor's database, as its home last recorded them. Only one of them
    /// may take the actor over when the home dies (failover), so a home counts an acknowledgement (`sync` mode)
    /// only from a replica recorded here.
    #[serde(default)]
    pub replicas: Vec<String>,
    /// Set when a replica was promoted to home (failover): the position its copy had, so that the old home can
    /// tell which of its transactions it never shipped.
    #[serde(default)]
    pub promoted_from: Option<tern_replication::wal::Position>,
}

impl Placement {
    /// What the REST API reports for the actor, as far as the directory knows (wake and sleep times live on the
    /// home).
    pub fn info(&self) -> ActorInfo {
        ActorInfo {
            actor_id: self.actor_id.clone(),
            name: self.name.clone(),
            key: self.key.clone(),
            region: self.region.clone(),
            create_ts: self.create_ts,
            start_ts: None,
            sleep_ts: None,
            destroy_ts: self.destroy_ts,
        }
    }
}

/// A replica taking an actor over from a home whose liveness epoch was bumped (see [`ClusterDirectory::move_home`]).
pub struct MoveHome<'a> {
    pub actor_id: &'a str,
    pub from: &'a str,
    pub fenced_epoch: u64,
    pub to: &'a str,
    pub to_epoch: u64,
    pub region: &'a str,
    /// The new home's replicas.
    pub replicas: Vec<String>,
    pub promoted_from: Option<tern_replication::wal::Position>,
}

/// The first round of a hand-over of one actor, run ahead of time ([`ClusterDirectory::prepare_hand_over`]).
#[derive(Debug)]
pub struct PreparedHandOver(Prepared);

/// A home handing a live actor over to another node (a move on demand, see [`ClusterDirectory::hand_over`]).
pub struct HandOver<'a> {
    pub actor_id: &'a str,
    /// The home handing it over.
    pub from: &'a str,
    /// The placement's epoch when the hand-off began: any change since (a failover, the old home taking the
    /// actor back) makes the hand-over fail.
    pub epoch: u64,
    /// The node taking it over, its liveness epoch and region.
    pub to: &'a str,
    pub to_epoch: u64,
    pub region: &'a str,
    /// The new home's replicas.
    pub replicas: Vec<String>,
}

/// The directory as one node uses it: a proposer over the voters, and caches. A node reaches its voters over the
/// transport ([`TransportVoters`]); the deterministic simulations run the same directory over simulated voters.
pub struct ClusterDirectory<V: Voters = TransportVoters> {
    proposer: Proposer<V>,
    metrics: crate::metrics::Metrics,
    placements: Mutex<LruCache<String, Placement>>,
    keys: Mutex<LruCache<(String, String), String>>,
}

/// A directory operation's outcome as the metrics name it.
fn outcome<T>(result: &Result<T, ProposeError<ClientError>>) -> &'static str {
    match result {
        Ok(_) => "ok",
        Err(ProposeError::Refused(_)) => "refused",
        Err(ProposeError::NoQuorum(_)) => "no_quorum",
    }
}

fn key_register(name: &str, key: &[String]) -> String {
    format!("key/{name}/{}", serialize_key(key))
}

fn actor_register(actor_id: &str) -> String {
    format!("actor/{actor_id}")
}

fn to_value<T: Serialize>(record: &T) -> RegisterValue {
    Some(super::rpc::encode(record).to_vec())
}

fn from_value<T: DeserializeOwned>(value: &RegisterValue) -> Result<Option<T>, ClientError> {
    let Some(bytes) = value else { return Ok(None) };
    super::rpc::decode(bytes).map(Some).map_err(|e| {
        tracing::error!("a directory register holds a bad record: {e}");
        ClientError::internal()
    })
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

impl<V: Voters> ClusterDirectory<V> {
    /// The directory of the node whose `proposer` reaches the voters.
    pub fn new(proposer: Proposer<V>, metrics: crate::metrics::Metrics) -> Self {
        let size = NonZeroUsize::new(CACHE_ENTRIES).expect("non-zero");
        Self { proposer, metrics, placements: Mutex::new(LruCache::new(size)), keys: Mutex::new(LruCache::new(size)) }
    }

    /// The actor's placement as this node's cache has it, if it has it (never asks the voters).
    pub fn cached_placement(&self, actor_id: &str) -> Option<Placement> {
        lock(&self.placements).peek(actor_id).cloned()
    }

    /// The actor's placement: from the cache unless `fresh`, else read from the voters (and cached).
    pub async fn placement(&self, actor_id: &str, fresh: bool) -> Result<Option<Placement>, ClientError> {
        if !fresh && let Some(found) = lock(&self.placements).get(actor_id) {
            return Ok(Some(found.clone()));
        }
        let value = self.read(&actor_register(actor_id)).await?;
        let placement: Option<Placement> = from_value(&value)?;
        if let Some(placement) = &placement {
            lock(&self.placements).put(actor_id.to_string(), placement.clone());
        }
        Ok(placement)
    }

    /// The actor's placement once every change of it in flight is settled, asked every `retry` until the voters
    /// answer: what a change whose outcome is unknown (its answer lost, no quorum) decided. Both rounds of Paxos
    /// run (an identity change), so a change accepted by a minority only is either completed here or can never be
    /// made afterwards; a plain read could see the old placement and the change still land later.
    pub async fn placement_settled(&self, actor_id: &str, retry: std::time::Duration) -> Option<Placement> {
        loop {
            let settled = self.settle(&actor_register(actor_id)).await;
            match settled.and_then(|value| from_value::<Placement>(&value)) {
                Ok(placement) => {
                    if let Some(placement) = &placement {
                        lock(&self.placements).put(actor_id.to_string(), placement.clone());
                    }
                    return placement;
                }
                Err(e) => {
                    tracing::debug!(actor_id, error = %e, "cannot settle the placement yet");
                    tokio::time::sleep(retry).await;
                }
            }
        }
    }

    /// The id of the live actor bound to the key: from the cache unless `fresh`, else from the voters. A key this
    /// answers is unbound may still be bound by a create in flight (see [`Self::binding_settled`]).
    pub async fn binding(&self, name: &str, key: &[String], fresh: bool) -> Result<Option<String>, ClientError> {
        let cache_key = (name.to_string(), serialize_key(key));
        if !fresh && let Some(found) = lock(&self.keys).get(&cache_key) {
            return Ok(Some(found.clone()));
        }
        let value = self.read(&key_register(name, key)).await?;
        let binding: Option<KeyBinding> = from_value(&value)?;
        if let Some(binding) = &binding {
            lock(&self.keys).put(cache_key, binding.actor_id.clone());
        }
        Ok(binding.map(|b| b.actor_id))
    }

    /// Records a new actor's placement (its id is fresh, so the register is empty).
    pub async fn record_placement(&self, placement: &Placement) -> Result<(), ClientError> {
        let record = to_value(placement);
        self.change(&actor_register(&placement.actor_id), |current| match current {
            None => Ok(record.clone()),
            Some(_) if current == &record => Ok(record.clone()),
            Some(_) => Err(ClientError::internal()),
        })
        .await?;
        lock(&self.placements).put(placement.actor_id.clone(), placement.clone());
        Ok(())
    }

    /// Binds the key to `actor_id` if it is free; returns the actor id it is bound to afterwards (`actor_id` when
    /// this call won).
    pub async fn bind_key(&self, name: &str, key: &[String], actor_id: &str) -> Result<String, ClientError> {
        if let Some(bound) = self.binding(name, key, true).await? {
            return Ok(bound);
        }
        let ours = to_value(&KeyBinding { actor_id: actor_id.to_string() });
        let value =
            self.change(&key_register(name, key), |current| Ok(current.clone().or_else(|| ours.clone()))).await?;
        let bound: KeyBinding = from_value(&value)?.ok_or_else(ClientError::internal)?;
        if bound.actor_id != actor_id {
            self.metrics.record_directory("write", "conflict");
        }
        lock(&self.keys).put((name.to_string(), serialize_key(key)), bound.actor_id.clone());
        Ok(bound.actor_id)
    }

    /// The id of the actor bound to the key once every binding of it in flight is settled: what a create whose
    /// binding's outcome is unknown (its answer lost, no quorum) decided. Like [`Self::placement_settled`] it runs
    /// both rounds of Paxos, so a binding a minority of voters accepted is either completed here or can never land
    /// afterwards, but it asks once: an error means the voters could not be reached, and nothing is decided.
    pub async fn binding_settled(&self, name: &str, key: &[String]) -> Result<Option<String>, ClientError> {
        let binding: Option<KeyBinding> = from_value(&self.settle(&key_register(name, key)).await?)?;
        if let Some(binding) = &binding {
            lock(&self.keys).put((name.to_string(), serialize_key(key)), binding.actor_id.clone());
        }
        Ok(binding.map(|b| b.actor_id))
    }

    /// Makes `to` (in `region`, at liveness epoch `to_epoch`) the actor's home under the next epoch, if its home is
    /// still `from` and was home under a liveness epoch older than `fenced_epoch` (which the caller saw `from`'s
    /// record bumped to). Returns the placement afterwards, whoever changed it.
    pub async fn move_home(&self, moving: &MoveHome<'_>) -> Result<Option<Placement>, ClientError> {
        self.change_placement(moving.actor_id, |placement| {
            let recorded = placement.replicas.is_empty() || placement.replicas.iter().any(|r| r == moving.to);
            (placement.home == moving.from && placement.home_epoch < moving.fenced_epoch && recorded).then(|| {
                Placement {
                    home: moving.to.to_string(),
                    region: moving.region.to_string(),
                    epoch: placement.epoch + 1,
                    home_epoch: moving.to_epoch,
                    replicas: moving.replicas.clone(),
                    promoted_from: moving.promoted_from,
                    ..placement.clone()
                }
            })
        })
        .await
    }

    /// Runs the first of the two rounds of a coming [`Self::hand_over`] of `actor_id` now, while the actor still
    /// serves, so that the hand-over itself takes one round trip to the voters.
    pub async fn prepare_hand_over(&self, actor_id: &str) -> Result<PreparedHandOver, ClientError> {
        Ok(PreparedHandOver(self.proposer.prepare(&actor_register(actor_id)).await?))
    }

    /// Makes `to` the actor's home under the next epoch, if the placement is still exactly the one the hand-off
    /// began from (`from`, `epoch`). Returns the placement afterwards, whoever changed it: `to` as home means the
    /// actor is `to`'s from now on. With `prepared` (of this actor), one round trip to the voters when nobody
    /// changed the placement since, else two.
    pub async fn hand_over(
        &self,
        moving: &HandOver<'_>,
        prepared: Option<PreparedHandOver>,
    ) -> Result<Option<Placement>, ClientError> {
        let prepared = prepared.map(|p| p.0);
        self.change_placement_prepared(moving.actor_id, prepared, |placement| {
            (placement.home == moving.from && placement.epoch == moving.epoch).then(|| Placement {
                home: moving.to.to_string(),
                region: moving.region.to_string(),
                epoch: placement.epoch + 1,
                home_epoch: moving.to_epoch,
                replicas: moving.replicas.clone(),
                promoted_from: None,
                ..placement.clone()
            })
        })
        .await
    }

    /// Records `replicas` as the actor's replica set, if `home` is still its home under liveness epoch
    /// `home_epoch`. Returns the placement afterwards: unchanged replicas mean the home lost the actor.
    pub async fn set_replicas(
        &self,
        actor_id: &str,
        home: &str,
        home_epoch: u64,
        replicas: &[String],
    ) -> Result<Option<Placement>, ClientError> {
        self.change_placement(actor_id, |placement| {
            (placement.home == home && placement.home_epoch == home_epoch)
                .then(|| Placement { replicas: replicas.to_vec(), ..placement.clone() })
        })
        .await
    }

    /// Takes the actor back under this node's new liveness epoch `new_epoch` (and the actor's next epoch), if this
    /// node (`home`) is still its home under `old_epoch` or any other epoch older than `new_epoch`: an earlier
    /// take-back that stopped midway may have left it under an epoch between the two. Returns the placement
    /// afterwards: another home means the actor moved.
    pub async fn reacquire(
        &self,
        actor_id: &str,
        home: &str,
        old_epoch: u64,
        new_epoch: u64,
    ) -> Result<Option<Placement>, ClientError> {
        self.change_placement(actor_id, |placement| {
            let older = placement.home_epoch <= old_epoch || placement.home_epoch < new_epoch;
            (placement.home == home && older).then(|| Placement {
                epoch: placement.epoch + 1,
                home_epoch: new_epoch,
                ..placement.clone()
            })
        })
        .await
    }

    /// Changes a live actor's placement with `change` (`None`: leave it), and caches the result.
    async fn change_placement(
        &self,
        actor_id: &str,
        change: impl Fn(&Placement) -> Option<Placement>,
    ) -> Result<Option<Placement>, ClientError> {
        self.change_placement_prepared(actor_id, None, change).await
    }

    /// [`Self::change_placement`], starting from `prepared` when given.
    async fn change_placement_prepared(
        &self,
        actor_id: &str,
        prepared: Option<Prepared>,
        change: impl Fn(&Placement) -> Option<Placement>,
    ) -> Result<Option<Placement>, ClientError> {
        let value = self
            .change_prepared(&actor_register(actor_id), prepared, |current| {
                let Some(placement) = from_value::<Placement>(current)? else { return Ok(current.clone()) };
                if placement.destroy_ts.is_some() {
                    return Ok(current.clone());
                }
                Ok(change(&placement).map_or_else(|| current.clone(), |changed| to_value(&changed)))
            })
            .await?;
        let placement: Option<Placement> = from_value(&value)?;
        if let Some(placement) = &placement {
            lock(&self.placements).put(actor_id.to_string(), placement.clone());
        }
        Ok(placement)
    }

    /// Records that the actor was destroyed at `ts` and frees its key (if it is still bound to it).
    pub async fn record_destroyed(&self, placement: &Placement, ts: i64) -> Result<(), ClientError> {
        let destroyed = Placement { destroy_ts: Some(ts), ..placement.clone() };
        let record = to_value(&destroyed);
        self.change(&actor_register(&placement.actor_id), |_| Ok(record.clone())).await?;
        let ours = to_value(&KeyBinding { actor_id: placement.actor_id.clone() });
        self.change(&key_register(&placement.name, &placement.key), |current| {
            Ok(if current == &ours { None } else { current.clone() })
        })
        .await?;
        self.forget(&placement.actor_id, &placement.name, &placement.key);
        Ok(())
    }

    /// Reads a register from a majority of the voters, counted in the metrics.
    async fn read(&self, register: &str) -> Result<RegisterValue, ClientError> {
        let read = self.proposer.read(register).await;
        self.metrics.record_directory("read", outcome(&read));
        Ok(read?)
    }

    /// The register's value after a full round of Paxos that writes it back unchanged (an identity change): every
    /// change of it accepted by a minority of voters is either completed by this round or can never be made.
    async fn settle(&self, register: &str) -> Result<RegisterValue, ClientError> {
        self.change(register, |current| Ok(current.clone())).await
    }

    /// Changes a register through the voters with `change`, counted in the metrics.
    async fn change(
        &self,
        register: &str,
        change: impl Fn(&RegisterValue) -> Result<RegisterValue, ClientError>,
    ) -> Result<RegisterValue, ClientError> {
        self.change_prepared(register, None, change).await
    }

    /// [`Self::change`], starting from `prepared` (made for `register`) when given.
    async fn change_prepared(
        &self,
        register: &str,
        prepared: Option<Prepared>,
        change: impl Fn(&RegisterValue) -> Result<RegisterValue, ClientError>,
    ) -> Result<RegisterValue, ClientError> {
        let written = match prepared.filter(|p| p.register() == register) {
            Some(prepared) => self.proposer.change_prepared(prepared, change).await,
            None => self.proposer.change(register, change).await,
        };
        self.metrics.record_directory("write", outcome(&written));
        Ok(written?)
    }

    /// Drops what the caches say about an actor and its key.
    pub fn forget(&self, actor_id: &str, name: &str, key: &[String]) {
        lock(&self.placements).pop(actor_id);
        let mut keys = lock(&self.keys);
        let cache_key = (name.to_string(), serialize_key(key));
        if keys.peek(&cache_key).is_some_and(|bound| bound == actor_id) {
            keys.pop(&cache_key);
        }
    }
}
