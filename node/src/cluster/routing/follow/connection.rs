//! A `/connect` connection that follows its actor.
//!
//! The old home saves the connection (id, parameters, state, subscriptions) in the actor's database and ends the
//! actor's side with [`ConnOutput::Moved`]; the relay re-binds to the new home, where the connection waits with
//! every event produced meanwhile, and sends again what the old home never answered:
//! * actions are answered in the order the actor ran them, before `Moved`; an action without an answer by then
//!   never ran, and is sent to the new home (so each runs exactly once);
//! * subscriptions are set again to what the client last asked (setting one twice changes nothing).
//!
//! The client misses no event.

use std::collections::BTreeMap;

use tern_gateway::backend::{ConnInput, ConnOutput, ConnectionHandle};
use tern_gateway::outbound::{self, OutboundSender};
use tern_gateway::queue;
use tern_proto::{ClientError, Value};

use super::rebind;
use crate::cluster::routing::backend::ClusterBackend;
use crate::runtime::instance::CONN_QUEUE;

/// Wraps the actor's side of a new connection (`first`) so that it follows the actor when it moves.
pub(crate) fn follow(backend: ClusterBackend, first: ConnectionHandle) -> ConnectionHandle {
    let (inbound, client_in) = queue::channel(CONN_QUEUE);
    let (client_out, outbound) = outbound::channel(CONN_QUEUE);
    let handle = ConnectionHandle {
        actor_id: first.actor_id.clone(),
        connection_id: first.connection_id.clone(),
        inbound,
        outbound,
    };
    tokio::spawn(
        Relay { backend, unanswered: BTreeMap::new(), subscriptions: BTreeMap::new() }
            .run(first, client_in, client_out),
    );
    handle
}

/// One connection's relay.
struct Relay {
    backend: ClusterBackend,
    /// Actions sent to the actor and not answered yet, by id.
    unanswered: BTreeMap<u64, (String, Value)>,
    /// What the client last asked of each event it (un)subscribed.
    subscriptions: BTreeMap<String, bool>,
}

impl Relay {
    async fn run(
        mut self,
        mut current: ConnectionHandle,
        mut client_in: queue::Receiver<ConnInput>,
        client_out: OutboundSender<ConnOutput>,
    ) {
        // The actor's sides this connection left behind stay open until the client leaves: closing one would tell
        // the actor (should it live on that node again) that this connection went away.
        let mut left_behind = Vec::new();
        loop {
            tokio::select! {
                input = client_in.recv() => {
                    let Some(input) = input else { return };
                    match &input {
                        ConnInput::Action { id, name, args } => {
                            self.unanswered.insert(*id, (name.clone(), args.clone()));
                        }
                        ConnInput::Subscribe { event, subscribe } => {
                            self.subscriptions.insert(event.clone(), *subscribe);
                        }
                    }
                    // An actor that is leaving may drop it: it is sent again after the re-bind.
                    let _ = current.inbound.send(input).await;
                }
                output = current.outbound.recv() => match output {
                    Some(ConnOutput::Moved) => match self.rebind(&current).await {
                        Ok(next) => {
                            let previous = std::mem::replace(&mut current, next);
                            left_behind.push(previous.inbound);
                            self.send_again(&current).await;
                        }
                        Err(e) => return client_out.close(ConnOutput::Close(e)),
                    },
                    Some(ConnOutput::Close(reason)) => return client_out.close(ConnOutput::Close(reason)),
                    Some(message) => {
                        if let ConnOutput::ActionResponse { id, .. } = &message {
                            self.unanswered.remove(id);
                        }
                        // A client that stopped reading is dropped by the actor's side meanwhile: that close
                        // comes next.
                        let sent = current.outbound.unless_closed_now(client_out.send(message)).await;
                        if matches!(sent, Some(Err(_))) {
                            return;
                        }
                    }
                    None => return,
                },
            }
        }
    }

    /// Opens the connection again where its actor lives now.
    async fn rebind(&self, current: &ConnectionHandle) -> Result<ConnectionHandle, ClientError> {
        let (actor_id, conn_id) = (&current.actor_id, &current.connection_id);
        rebind(actor_id, conn_id, || self.backend.resume_connection(actor_id, conn_id)).await
    }

    /// Sends the new home what the old one may have dropped: the subscriptions as the client last set them, then
    /// the unanswered actions in the order the client sent them.
    async fn send_again(&self, current: &ConnectionHandle) {
        for (event, subscribe) in &self.subscriptions {
            let input = ConnInput::Subscribe { event: event.clone(), subscribe: *subscribe };
            let _ = current.inbound.send(input).await;
        }
        for (id, (name, args)) in &self.unanswered {
            let input = ConnInput::Action { id: *id, name: name.clone(), args: args.clone() };
            let _ = current.inbound.send(input).await;
        }
    }
}
