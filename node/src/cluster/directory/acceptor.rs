//! The voter side of the directory: this node's acceptor for every register, kept in `node.db`.

use serde::{Deserialize, Serialize};
use tern_proto::ClientError;

use super::paxos::{AcceptReply, AcceptorState, Ballot, PrepareReply, RegisterValue};
use crate::runtime::Host;

/// A register's acceptor state as stored.
#[derive(Serialize, Deserialize)]
struct Stored {
    promised: Ballot,
    accepted: Ballot,
    #[serde(with = "serde_bytes")]
    value: Option<Vec<u8>>,
}

/// This node's acceptor. A prepare or accept is a read-modify-write of one row of `node.db`, made durable before
/// the reply leaves; one lock serializes them (a voter's work per request is one small write).
pub struct Acceptor {
    host: Host,
    lock: tokio::sync::Mutex<()>,
}

impl Acceptor {
    /// The acceptor whose state lives in `host`'s node database.
    pub fn new(host: Host) -> Self {
        Self { host, lock: tokio::sync::Mutex::new(()) }
    }

    /// What this voter accepted for `register` (ballot and value), changing nothing.
    pub async fn read(&self, register: &str) -> Result<(Ballot, RegisterValue), ClientError> {
        let state = self.load(register).await?;
        Ok((state.accepted, state.value))
    }

    /// Handles a prepare for `register`.
    pub async fn prepare(&self, register: &str, ballot: &Ballot) -> Result<PrepareReply, ClientError> {
        let _turn = self.lock.lock().await;
        let mut state = self.load(register).await?;
        let (reply, changed) = state.prepare(ballot);
        if changed {
            self.store(register, &state).await?;
        }
        Ok(reply)
    }

    /// Handles an accept for `register`.
    pub async fn accept(
        &self,
        register: &str,
        ballot: &Ballot,
        value: RegisterValue,
    ) -> Result<AcceptReply, ClientError> {
        let _turn = self.lock.lock().await;
        let mut state = self.load(register).await?;
        let (reply, changed) = state.accept(ballot, value);
        if changed {
            self.store(register, &state).await?;
        }
        Ok(reply)
    }

    async fn load(&self, register: &str) -> Result<AcceptorState, ClientError> {
        let Some(bytes) = self.host.core.node_db.register(register).await? else {
            return Ok(AcceptorState::default());
        };
        let stored: Stored = ciborium::from_reader(bytes.as_slice()).map_err(|e| {
            tracing::error!(register, error = %e, "a stored register is corrupt");
            ClientError::internal()
        })?;
        Ok(AcceptorState { promised: stored.promised, accepted: stored.accepted, value: stored.value })
    }

    async fn store(&self, register: &str, state: &AcceptorState) -> Result<(), ClientError> {
        let stored =
            Stored { promised: state.promised.clone(), accepted: state.accepted.clone(), value: state.value.clone() };
        let mut bytes = Vec::new();
        ciborium::into_writer(&stored, &mut bytes).map_err(|e| {
            tracing::error!(register, error = %e, "cannot encode a register");
            ClientError::internal()
        })?;
        self.host.core.node_db.set_register(register, bytes).await
    }
}
