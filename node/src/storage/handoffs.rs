//! What `node.db` records of actors in the middle of moving between nodes, so that a node that crashes during a
//! hand-off settles each of them with the directory before it serves it again.

use libsql::params;
use tern_proto::ClientError;

use super::NodeDb;

/// Which side of a hand-off this node is on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HandoffRole {
    /// The actor's home, handing it over to `peer`.
    Leaving,
    /// The node taking the actor over from `peer`.
    Arriving,
}

impl HandoffRole {
    fn as_str(self) -> &'static str {
        match self {
            HandoffRole::Leaving => "leaving",
            HandoffRole::Arriving => "arriving",
        }
    }
}

/// One unsettled hand-off.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HandoffRecord {
    /// The moving actor.
    pub actor_id: String,
    /// This node's side.
    pub role: HandoffRole,
    /// The node on the other side.
    pub peer: String,
}

impl NodeDb {
    /// Records, durably, that this node takes part in a hand-off of `actor_id` with `peer`.
    pub async fn record_handoff(&self, actor_id: &str, role: HandoffRole, peer: &str) -> Result<(), ClientError> {
        let conn = self.conn.lock().await;
        conn.execute(
            "INSERT OR REPLACE INTO handoffs (actor_id, role, peer) VALUES (?1, ?2, ?3)",
            params![actor_id, role.as_str(), peer],
        )
        .await
        .map_err(|e| self.failed(e))?;
        Ok(())
    }

    /// Forgets the hand-off of `actor_id`: it is settled.
    pub async fn forget_handoff(&self, actor_id: &str) -> Result<(), ClientError> {
        let conn = self.conn.lock().await;
        conn.execute("DELETE FROM handoffs WHERE actor_id = ?1", [actor_id]).await.map_err(|e| self.failed(e))?;
        Ok(())
    }

    /// The hand-offs a previous run left unsettled.
    pub async fn handoffs(&self) -> Result<Vec<HandoffRecord>, libsql::Error> {
        let conn = self.conn.lock().await;
        let mut rows = conn.query("SELECT actor_id, role, peer FROM handoffs", ()).await?;
        let mut out = Vec::new();
        while let Some(row) = rows.next().await? {
            let role: String = row.get(1)?;
            let role = if role == "arriving" { HandoffRole::Arriving } else { HandoffRole::Leaving };
            out.push(HandoffRecord { actor_id: row.get(0)?, role, peer: row.get(2)? });
        }
        Ok(out)
    }
}
