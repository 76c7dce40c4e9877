//! Creating and destroying actors in the cluster: the directory decides the key, the chosen home records and
//! starts the actor, and a destroy clears every node's cached lookups.

use std::sync::Arc;

use tern_gateway::backend::{ActorInfo, Backend, CreateRequest};
use tern_proto::ClientError;

use super::{ClusterBackend, FORGET_TIMEOUT, ForwardError, ServeCall};
use crate::clock::now_ms;
use crate::cluster::MemberState;
use crate::cluster::directory::Placement;
use crate::cluster::routing::placement;
use crate::cluster::rpc::{self, ForgetActor, ForwardCreate};

/// Async locks by key, dropped when no one holds or waits for them.
#[derive(Default)]
pub(super) struct KeyedLocks {
    locks: std::sync::Mutex<std::collections::HashMap<String, std::sync::Weak<tokio::sync::Mutex<()>>>>,
}

impl KeyedLocks {
    pub(super) async fn lock(&self, key: String) -> tokio::sync::OwnedMutexGuard<()> {
        let lock = {
            let mut locks = self.locks.lock().unwrap_or_else(|e| e.into_inner());
            locks.retain(|_, weak| weak.strong_count() > 0);
            match locks.get(&key).and_then(std::sync::Weak::upgrade) {
                Some(lock) => lock,
                None => {
                    let lock = Arc::new(tokio::sync::Mutex::new(()));
                    locks.insert(key, Arc::downgrade(&lock));
                    lock
                }
            }
        };
        lock.lock_owned().await
    }
}

impl ClusterBackend {
    /// Creates the actor on this node, its chosen home: record it locally, record its placement, then race for
    /// the key. The loser of a race drops its record and answers with the winner (`reuse`) or `duplicate_key`.
    /// The create runs to its end on a task of its own, whether or not its caller still waits: stopped midway, it
    /// would leave a local record whose key the directory may bind later.
    pub(super) async fn create_here(
        &self,
        request: CreateRequest,
        reuse: bool,
    ) -> Result<(ActorInfo, bool), ClientError> {
        let backend = self.clone();
        let create = tokio::spawn(async move { backend.create_to_the_end(request, reuse).await });
        create.await.map_err(|e| {
            tracing::error!(error = %e, "a create's task failed");
            ClientError::internal()
        })?
    }

    /// [`Self::create_here`], on its own task.
    async fn create_to_the_end(&self, request: CreateRequest, reuse: bool) -> Result<(ActorInfo, bool), ClientError> {
        let directory = self.directory()?;
        let host = &self.inner.host;
        let lock_key = format!("{}/{}", request.name, request.key.serialize());
        let _creating = self.inner.creating.lock(lock_key).await;
        // A local record of this key that the directory does not know is left from a create that failed midway.
        let orphan = match host.local_by_key(&request.name, request.key.parts()).await? {
            Some(local) => match directory.binding_settled(&request.name, request.key.parts()).await? {
                Some(bound) if bound == local => return self.existing(&bound, reuse, &request).await,
                _ => Some(local),
            },
            None => None,
        };
        let actor_id = host.record_new(&request, orphan.as_deref()).await?;
        let placement = Placement {
            actor_id: actor_id.clone(),
            name: request.name.clone(),
            key: request.key.parts().to_vec(),
            home: self.inner.local_id.clone(),
            region: self.inner.region.clone(),
            epoch: 1,
            create_ts: now_ms(),
            destroy_ts: None,
            home_epoch: self.inner.lease.as_ref().map_or(0, |lease| lease.epoch()),
            replicas: Vec::new(),
            promoted_from: None,
        };
        if let Err(e) = directory.record_placement(&placement).await {
            // No binding of the key names an actor whose placement was never asked for.
            host.abandon(&actor_id).await?;
            return Err(e);
        }
        let bound = match directory.bind_key(&request.name, request.key.parts(), &actor_id).await {
            Ok(bound) => bound,
            // The binding may have reached a minority of the voters and still land: only a full round decides.
            Err(e) => match directory.binding_settled(&request.name, request.key.parts()).await {
                Ok(Some(bound)) => bound,
                Ok(None) => {
                    host.abandon(&actor_id).await?;
                    return Err(e);
                }
                Err(_) => {
                    // Undecided: the create stays pending until the voters answer (`settle_creates`).
                    host.leave_unsettled(&actor_id);
                    self.inner.unsettled_creates.notify_one();
                    return Err(e);
                }
            },
        };
        if bound != actor_id {
            host.abandon(&actor_id).await?;
            return self.existing(&bound, reuse, &request).await;
        }
        host.settled(&actor_id).await?;
        Ok((host.start_new(&actor_id).await?, true))
    }

    /// The answer to a create whose key is bound to `actor_id` already.
    async fn existing(
        &self,
        actor_id: &str,
        reuse: bool,
        request: &CreateRequest,
    ) -> Result<(ActorInfo, bool), ClientError> {
        if !reuse {
            return Err(ClientError::duplicate_key(&request.name, &request.key.serialize()));
        }
        let info = self.info(actor_id).await?;
        Ok((info.ok_or_else(|| ClientError::actor_not_found(actor_id))?, false))
    }

    /// What the REST API reports for one actor; `None` when no node hosts it and the directory does not know it.
    pub(super) async fn info(&self, actor_id: &str) -> Result<Option<ActorInfo>, ClientError> {
        if self.inner.host.hosts(actor_id).await? {
            let infos = self.inner.host.get_actors_by_ids(&[actor_id.to_string()]).await?;
            return Ok(infos.into_iter().next());
        }
        let placement = self.directory()?.placement(actor_id, false).await?;
        Ok(placement.map(|p| p.info()))
    }

    /// Destroys an actor this node hosts, then records it in the directory and tells every node to forget it. A
    /// destroy that stopped after the local part is finished by a retry.
    pub(super) async fn destroy_here(&self, actor_id: &str) -> Result<(), ClientError> {
        let host = &self.inner.host;
        let directory = self.directory()?;
        if !host.destroyed_here(actor_id).await? {
            host.destroy_actor(actor_id).await?;
        }
        let placement =
            directory.placement(actor_id, true).await?.ok_or_else(|| ClientError::actor_not_found(actor_id))?;
        if placement.destroy_ts.is_none() {
            directory.record_destroyed(&placement, now_ms()).await?;
        }
        // Every live node drops its cached lookups before the destroy is acknowledged; one that misses this
        // learns it when the actor's home answers `actor.not_found`.
        self.tell_peers_to_forget(&placement, true).await;
        Ok(())
    }

    /// Makes every live peer drop what its cache says of the actor (after a destroy, or a change of home), so
    /// that its next request reads the directory afresh; after a destroy, peers holding a replica delete it. A
    /// peer that misses it corrects its cache when the old home refuses or fails the request.
    pub(crate) async fn tell_peers_to_forget(&self, placement: &Placement, destroyed: bool) {
        let forget = ForgetActor {
            actor_id: placement.actor_id.clone(),
            name: placement.name.clone(),
            key: placement.key.clone(),
            destroyed,
        };
        let peers = self.inner.members.all().into_iter().filter(|m| !m.local && m.state != MemberState::Down);
        let told = peers.map(|member| {
            let (transport, forget) = (self.inner.transport.clone(), forget.clone());
            async move { rpc::ask(&transport, member.node.quic_addr, forget, FORGET_TIMEOUT).await }
        });
        futures_util::future::join_all(told).await;
    }

    /// Creates (or with `reuse`, finds) the actor for the request's key somewhere in the cluster.
    pub(super) async fn create(&self, request: CreateRequest, reuse: bool) -> Result<(ActorInfo, bool), ClientError> {
        if !self.inner.host.is_registered(&request.name) {
            return Err(ClientError::not_registered(&request.name));
        }
        let directory = self.directory()?;
        if let Some(bound) = directory.binding(&request.name, request.key.parts(), false).await? {
            return self.existing(&bound, reuse, &request).await;
        }
        let region = request.region.clone().unwrap_or_else(|| self.inner.region.clone());
        let mut avoid = Vec::new();
        loop {
            let local_load = self.inner.host.load().awake_actors;
            let home = placement::choose(&self.inner.members, &self.inner.transport, &region, &avoid, local_load)
                .ok_or_else(|| ClientError::unavailable("no live node can host a new actor"))?;
            let call = ForwardCreate { request: request.clone(), reuse };
            let reply = if home.id == self.inner.local_id {
                call.serve(self).await.map_err(ForwardError::Failed)
            } else {
                self.forward(&home, call).await
            };
            match reply {
                Ok(created) => return Ok(created),
                // The chosen node did not answer: try another, at most twice.
                Err(ForwardError::Unreachable(_)) if avoid.len() < 2 => avoid.push(home.id),
                Err(e) => return Err(e.into_node_call_error()),
            }
        }
    }

    /// Settles the cluster creates left in the middle, by an earlier run of this node or by a create whose
    /// binding's outcome the voters could not tell it: an actor whose key the directory bound to it is kept, any
    /// other is abandoned (its key went to another actor or to none). Returns how many are still unsettled (the
    /// directory could not be asked).
    pub async fn settle_creates(&self) -> usize {
        let host = &self.inner.host;
        // Without voters this node never creates actors, so it has nothing to settle.
        let Ok(directory) = self.directory() else { return 0 };
        let Ok(unsettled) = host.unsettled().await else { return 1 };
        let mut left = 0;
        for (actor_id, named) in unsettled {
            let settled = match named {
                None => host.settled(&actor_id).await,
                Some((name, key)) => match directory.binding_settled(&name, &key).await {
                    Ok(Some(bound)) if bound == actor_id => host.settled(&actor_id).await,
                    Ok(_) => {
                        tracing::info!(actor_id, name, "dropping an actor whose create was interrupted");
                        host.abandon(&actor_id).await
                    }
                    Err(e) => Err(e),
                },
            };
            if let Err(e) = settled {
                tracing::warn!(actor_id, "cannot settle an interrupted create yet: {e}");
                left += 1;
            }
        }
        left
    }

    /// Waits until a create was left unsettled (see [`Self::settle_creates`]) since the last wait.
    pub async fn creates_left_unsettled(&self) {
        self.inner.unsettled_creates.notified().await;
    }
}
