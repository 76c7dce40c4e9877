//! The inspector's operations, run by the actor inside its turn (so they see exactly what actions see, and a
//! failing one changes nothing), and the database export, taken between turns.

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value as JsonValue, json};
use tern_gateway::backend::{InspectRequest, InspectorAuth};
use tern_gateway::tokens_equal;
use tern_proto::key::serialize_key;
use tern_proto::{ClientError, Value, value};

use super::instance::{Failure, Instance};
use crate::storage::{ActorDb, inspect_sql, queue, workflow};
use crate::sync::lock;
use crate::trace::otlp;

const NANOS_PER_MS: i64 = 1_000_000;

impl<S, V> Instance<S, V>
where
    S: Serialize + DeserializeOwned + Send + 'static,
    V: Default + Send + 'static,
{
    /// `inspector.unauthorized` unless `auth` grants access or carries this actor's token (an actor whose token
    /// was never issued accepts none).
    async fn authorize(&self, db: &ActorDb, auth: &InspectorAuth) -> Result<(), ClientError> {
        let token = match auth {
            InspectorAuth::Granted => return Ok(()),
            InspectorAuth::Token(token) => token,
        };
        let stored = db.stored_inspector_token().await.map_err(|e| Failure::storage(&e).error)?;
        match stored {
            Some((expected, _)) if tokens_equal(token, &expected) => Ok(()),
            _ => Err(ClientError::inspector_unauthorized()),
        }
    }

    /// Runs one inspector operation.
    pub(crate) async fn inspect(
        &self,
        db: &ActorDb,
        auth: &InspectorAuth,
        request: InspectRequest,
    ) -> Result<JsonValue, ClientError> {
        self.authorize(db, auth).await?;
        let conn = db.connection();
        Ok(match request {
            InspectRequest::Summary => json!({
                "state": self.state_json()?,
                "isStateEnabled": self.is_state_enabled()?,
                "connections": self.connections_json(),
                "rpcs": self.rpcs(),
                "queueSize": queue::len(conn).await?,
                "isDatabaseEnabled": true,
                "isWorkflowEnabled": self.def.is_workflow,
                "workflowHistory": self.workflow_history(db).await?,
                "replicas": self.replica_set_json().await,
                "lastMove": self.core.last_move(&self.shared.actor_id),
            }),
            InspectRequest::State => json!({ "state": self.state_json()?, "isStateEnabled": self.is_state_enabled()? }),
            InspectRequest::PatchState(state) => {
                let state: S = value::from_json(&state).deserialized().map_err(|e| {
                    ClientError::invalid_request(format!("the state does not fit the actor's state: {e}"))
                })?;
                *self.ctx().state() = state;
                json!({ "ok": true })
            }
            InspectRequest::Connections => json!({ "connections": self.connections_json() }),
            InspectRequest::Rpcs => json!({ "rpcs": self.rpcs() }),
            InspectRequest::Schema => json!({ "schema": { "tables": inspect_sql::schema(db).await? } }),
            InspectRequest::Rows { table, limit, offset } => {
                let rows = inspect_sql::page(db, &table, limit, offset, self.def.options.statement_timeout).await?;
                json!({ "rows": rows_json(&rows) })
            }
            InspectRequest::Execute { sql, params } => {
                let timeout = self.def.options.statement_timeout;
                json!({ "rows": rows_json(&inspect_sql::execute(db, &sql, params.as_ref(), timeout).await?) })
            }
            InspectRequest::Queue { limit } => {
                let size = queue::len(conn).await?;
                let messages = queue::peek(conn, &[], 0, limit).await?;
                json!({
                    "size": size,
                    "maxSize": self.def.options.max_queue_size,
                    "truncated": size > messages.len() as i64,
                    "messages": messages
                        .iter()
                        .map(|m| json!({ "id": m.id.to_string(), "name": m.name, "createdAtMs": m.created_at }))
                        .collect::<Vec<_>>(),
                })
            }
            InspectRequest::QueueSend { name, body } => {
                let id = self.queue_send(db, &name, &body, false).await?;
                json!({ "id": id.to_string(), "name": name, "createdAtMs": crate::clock::now_ms() })
            }
            InspectRequest::QueueReset => {
                self.queue_reset(db).await?;
                json!({})
            }
            InspectRequest::WorkflowHistory => {
                json!({ "history": self.workflow_history(db).await?, "isWorkflowEnabled": self.def.is_workflow })
            }
            InspectRequest::WorkflowReplay { entry_id } => {
                if !self.def.is_workflow {
                    return Err(ClientError::new("workflow", "not_enabled", 400, "The actor has no workflow"));
                }
                workflow::forget_from(conn, entry_id).await?;
                self.restart_run_loop.store(true, std::sync::atomic::Ordering::Release);
                json!({ "history": self.workflow_history(db).await?, "isWorkflowEnabled": true })
            }
            InspectRequest::Traces { start_ms, end_ms, limit } => {
                let start_ns = start_ms.saturating_mul(NANOS_PER_MS);
                let end_ns = end_ms.saturating_mul(NANOS_PER_MS);
                let mut spans = db.read_spans(start_ns, end_ns, limit).await.map_err(|e| {
                    tracing::error!(actor_id = %self.shared.actor_id, error = %e, "cannot read spans");
                    ClientError::internal()
                })?;
                let clamped = spans.len() > limit;
                spans.truncate(limit);
                let key = serialize_key(&self.shared.key);
                json!({
                    "otlp": otlp::export_request(&self.shared.actor_id, &self.shared.name, &key, &spans),
                    "clamped": clamped,
                })
            }
        })
    }

    /// A consistent copy of the whole database (`VACUUM INTO` a scratch file, read back, removed). Runs after
    /// the turn's commit, outside any transaction, and before the next turn can write.
    pub(crate) async fn export(&self, db: &ActorDb, auth: &InspectorAuth) -> Result<Vec<u8>, ClientError> {
        self.authorize(db, auth).await?;
        let internal = |stage: &str, e: &dyn std::fmt::Display| {
            tracing::error!(actor_id = %self.shared.actor_id, stage, error = %e, "export failed");
            ClientError::internal()
        };
        let path = self.core.data_dir.scratch_path(&format!("{}-{}.db", self.shared.actor_id, uuid::Uuid::new_v4()));
        let target = path.to_str().ok_or_else(|| internal("path", &"not UTF-8"))?;
        db.connection().execute("VACUUM INTO ?1", [target]).await.map_err(|e| internal("vacuum", &e))?;
        let bytes = tokio::fs::read(&path).await.map_err(|e| internal("read", &e));
        if let Err(e) = tokio::fs::remove_file(&path).await {
            tracing::warn!(path = %path.display(), error = %e, "cannot remove the export scratch file");
        }
        bytes
    }

    fn state_json(&self) -> Result<JsonValue, ClientError> {
        let state = self.ctx().read(Value::serialized).map_err(|e| {
            tracing::error!(actor_id = %self.shared.actor_id, error = %e, "state cannot be encoded");
            ClientError::internal()
        })?;
        Ok(value::to_json(&state))
    }

    /// Whether the actor keeps a state at all (a unit state serializes to null).
    fn is_state_enabled(&self) -> Result<bool, ClientError> {
        Ok(!self.state_json()?.is_null())
    }

    /// The workflow's entries as JSON, oldest first; null for actors without a workflow.
    async fn workflow_history(&self, db: &ActorDb) -> Result<JsonValue, ClientError> {
        if !self.def.is_workflow {
            return Ok(JsonValue::Null);
        }
        let entries = workflow::load(db.connection()).await?;
        Ok(entries
            .iter()
            .map(|e| {
                json!({
                    "id": e.seq.to_string(),
                    "key": e.key,
                    "kind": e.kind,
                    "output": e.output.as_ref().map(value::to_json),
                    "error": e.error,
                    "finishedAtMs": e.finished_at,
                })
            })
            .collect())
    }

    /// Where the actor's database lives (its home and replicas with position and lag), on a cluster node; null on a
    /// single node. Tern's addition to RivetKit's summary.
    async fn replica_set_json(&self) -> serde_json::Value {
        let Some(replicator) = self.core.replicator.get() else { return serde_json::Value::Null };
        let set = replicator.replica_set(&self.shared.actor_id).await;
        serde_json::to_value(set).unwrap_or(serde_json::Value::Null)
    }

    fn rpcs(&self) -> Vec<&str> {
        self.def.action_names.iter().map(String::as_str).collect()
    }

    fn connections_json(&self) -> Vec<JsonValue> {
        lock(&self.shared.conns)
            .values()
            .map(|conn| {
                let state = lock(&conn.inner.state).clone();
                json!({
                    "type": null,
                    "id": conn.id(),
                    "details": {
                        "type": null,
                        "params": value::to_json(conn.params_value()),
                        "stateEnabled": true,
                        "state": value::to_json(&state),
                        "subscriptions": lock(&conn.inner.subscriptions).len(),
                        "isHibernatable": false,
                    },
                })
            })
            .collect()
    }
}

fn rows_json(rows: &[Value]) -> Vec<JsonValue> {
    rows.iter().map(value::to_json).collect()
}
