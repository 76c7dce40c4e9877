//! An actor's client connections inside its turns: admitting a client (before-connect and connection state),
//! registering it (connect hook), forgetting it (disconnect hook), and releasing the messages each turn produced
//! for it once the turn commits.

use serde::Serialize;
use serde::de::DeserializeOwned;
use tern_gateway::backend::ConnOutput;
use tern_gateway::outbound::OutboundSender;
use tern_proto::{ClientError, Value};

use super::instance::{CONN_QUEUE, Instance};
use super::lifecycle;
use crate::sdk::conn::Conn;
use crate::sdk::definition::BoxFuture;
use crate::sdk::error::ActorResult;
use crate::storage::ActorDb;
use crate::sync::lock;
use crate::trace::SpanKind;

impl<S, V> Instance<S, V>
where
    S: Serialize + DeserializeOwned + Send + 'static,
    V: Default + Send + 'static,
{
    /// Sends every connection's held messages, and closes connections that asked for it or fell behind. A
    /// connection whose queue is full is closed with `actor.overloaded` at once (its client is not taking what it
    /// was sent); its messages still queued are dropped.
    pub fn flush_connections(&self) {
        let conns: Vec<Conn> = lock(&self.shared.conns).values().cloned().collect();
        for conn in conns {
            let pending = conn.take_pending();
            if conn.is_detached() {
                self.keep_for_client(&conn, pending);
                continue;
            }
            let disconnect = lock(&conn.inner.disconnect).take();
            let mut outbound = lock(&conn.inner.outbound);
            let Some(sender) = outbound.take() else { continue };
            if pending.into_iter().any(|message| sender.try_send(message).is_err()) {
                tracing::warn!(actor_id = %self.shared.actor_id, conn_id = %conn.id(), "connection fell behind; closing it");
                let overloaded = ClientError::overloaded("The connection fell behind the actor's events");
                sender.close_now(ConnOutput::Close(overloaded));
            } else if let Some(reason) = disconnect {
                sender.close(ConnOutput::Close(reason));
            } else {
                *outbound = Some(sender);
            }
        }
        let closed = self.raw.flush();
        self.core.connections_changed(&self.shared.name, -(closed as i64));
    }

    /// Closes every connection and raw WebSocket with `reason` (on sleep, destroy or crash).
    pub fn close_all_connections(&self, reason: ClientError) {
        self.end_all_connections(|| ConnOutput::Close(reason.clone()));
        let closed = self.raw.close_all(&reason);
        self.core.connections_changed(&self.shared.name, -(closed as i64));
    }

    /// Ends every connection with `last` after the messages it was already given.
    fn end_all_connections(&self, last: impl Fn() -> ConnOutput) {
        let conns: Vec<Conn> = std::mem::take(&mut *lock(&self.shared.conns)).into_values().collect();
        self.core.connections_changed(&self.shared.name, -(conns.len() as i64));
        for conn in conns {
            if let Some(sender) = lock(&conn.inner.outbound).take() {
                for message in conn.take_pending() {
                    let _ = sender.try_send(message);
                }
                sender.close(last());
            }
        }
    }

    /// Keeps a detached connection's messages until its client re-binds; one that gathers more than its queue
    /// holds is closed with `actor.overloaded` when it does (its client would have fallen behind just the same).
    fn keep_for_client(&self, conn: &Conn, pending: Vec<ConnOutput>) {
        if conn.pending_count() + pending.len() > CONN_QUEUE {
            let overloaded = ClientError::overloaded("The connection fell behind the actor's events while it moved");
            *lock(&conn.inner.disconnect) = Some(overloaded);
            conn.take_pending();
            return;
        }
        conn.keep_pending(pending);
    }

    /// Saves every connection's state and subscriptions in the turn's transaction, for the actor's next home.
    pub(crate) async fn save_connections(&self, db: &ActorDb) -> Result<(), ClientError> {
        let conns: Vec<Conn> = lock(&self.shared.conns).values().cloned().collect();
        for conn in conns {
            lifecycle::record_conn(db, &conn).await?;
        }
        Ok(())
    }

    /// Tells every connection's client side that the actor moved (after the messages already produced), so that
    /// it re-binds to the actor's new home; the connections themselves were saved by [`Self::save_connections`].
    /// Raw WebSockets, whose handlers live in this process, are told how many client messages they received, so
    /// that their client side opens them again there and sends the rest.
    pub fn hand_connections_over(&self) {
        self.end_all_connections(|| ConnOutput::Moved);
        let ended = self.raw.hand_over_all();
        self.core.connections_changed(&self.shared.name, -(ended as i64));
    }

    /// Binds connection `conn_id`, which arrived with the actor, to its client's new stream, and records it again.
    pub(crate) async fn resume(
        &self,
        db: &ActorDb,
        conn_id: &str,
        outbound: OutboundSender<ConnOutput>,
    ) -> Result<(), ClientError> {
        let conn = lock(&self.shared.conns).get(conn_id).cloned();
        let Some(conn) = conn.filter(Conn::is_detached) else {
            // It expired, or never came: the client reconnects as a new connection.
            return Err(ClientError::stopping());
        };
        lifecycle::record_conn(db, &conn).await?;
        conn.attach(outbound);
        Ok(())
    }

    /// Disconnects the connections of `conn_ids` that still wait for their clients after the actor's move.
    pub(crate) async fn expire_detached(&self, db: &ActorDb, conn_ids: &[String]) {
        for conn_id in conn_ids {
            let waiting = lock(&self.shared.conns).get(conn_id).is_some_and(Conn::is_detached);
            if waiting {
                tracing::info!(actor_id = %self.shared.actor_id, conn_id, "a connection's client did not follow its actor");
                self.disconnect(db, conn_id).await;
            }
        }
    }

    /// Runs a connect hook within the connect budget.
    async fn connect_hook<T>(&self, hook: &str, fut: BoxFuture<ActorResult<T>>) -> Result<T, ClientError> {
        self.run_hook(hook, self.def.options.connect_hook_timeout, fut).await
    }

    /// Runs before-connect and create-conn-state, and builds the connection (not yet registered).
    pub(crate) async fn admit(
        &self,
        params: Option<Value>,
        outbound: Option<OutboundSender<ConnOutput>>,
    ) -> Result<Conn, ClientError> {
        let params = params.unwrap_or(Value::Null);
        if let Some(hook) = &self.def.on_before_connect {
            self.connect_hook("onBeforeConnect", hook(self.ctx(), params.clone())).await?;
        }
        let state = match &self.def.create_conn_state {
            Some(hook) => self.connect_hook("createConnState", hook(self.ctx(), params.clone())).await?,
            None => Value::Null,
        };
        Ok(Conn::new(uuid::Uuid::new_v4().simple().to_string(), params, state, outbound, self.shared.unit.clone()))
    }

    pub(crate) async fn connect(
        &self,
        db: &ActorDb,
        params: Option<Value>,
        outbound: OutboundSender<ConnOutput>,
    ) -> Result<String, ClientError> {
        let span = self.shared.recorder.start("connect", SpanKind::Server, vec![], true);
        let result = self
            .atomically(db, async {
                let conn = self.admit(params, Some(outbound)).await?;
                lock(&self.shared.conns).insert(conn.id().to_string(), conn.clone());
                let registered = async {
                    lifecycle::record_conn(db, &conn).await?;
                    if let Some(hook) = &self.def.on_connect {
                        self.connect_hook("onConnect", hook(self.ctx().with_conn(Some(conn.clone())), conn.clone()))
                            .await?;
                    }
                    Ok::<_, ClientError>(())
                }
                .await;
                if let Err(e) = registered {
                    lock(&self.shared.conns).remove(conn.id());
                    return Err(e);
                }
                Ok(conn.id().to_string())
            })
            .await;
        if result.is_ok() {
            self.core.metrics.record_connection_opened(&self.shared.name);
            self.core.connections_changed(&self.shared.name, 1);
        }
        self.shared.recorder.finish(span, result.as_ref().err().map(ToString::to_string));
        result
    }

    pub(crate) async fn disconnect(&self, db: &ActorDb, conn_id: &str) {
        let Some(conn) = lock(&self.shared.conns).remove(conn_id) else { return };
        self.core.connections_changed(&self.shared.name, -1);
        let attributes = vec![("connection.id".to_string(), conn_id.to_string())];
        let span = self.shared.recorder.start("disconnect", SpanKind::Server, attributes, true);
        lock(&conn.inner.outbound).take();
        if let Some(hook) = &self.def.on_disconnect {
            let fut = hook(self.ctx().with_conn(Some(conn.clone())), conn.clone());
            if let Err(e) = self.connect_hook("onDisconnect", fut).await {
                tracing::warn!(actor_id = %self.shared.actor_id, conn_id, error = %e, "disconnect hook failed");
            }
        }
        if let Err(e) = db.delete_conn(conn_id).await {
            tracing::error!(actor_id = %self.shared.actor_id, error = %e, "cannot forget connection");
        }
        self.shared.recorder.finish(span, None);
    }
}
