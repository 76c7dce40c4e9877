//! Node liveness records (as CockroachDB's node liveness): one register per node, `liveness/<node id>`, holding an
//! epoch and an expiration. A node renews its own record while its epoch is unchanged; another node may bump the
//! epoch of a record that has expired, which fences every actor homed on that node at once. The cost is one write
//! per node per heartbeat, whatever the number of actors.

use serde::{Deserialize, Serialize};
use tern_proto::ClientError;

use super::paxos::Voters;
use super::{ClusterDirectory, from_value, to_value};

/// A node's liveness record.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Liveness {
    /// Bumped by anyone who declares the node dead; the node's own renewals keep it.
    pub epoch: u64,
    /// Until when the node holds its lease, in milliseconds since the Unix epoch on the writer's clock; 0 after a
    /// bump.
    pub expiration_ms: i64,
}

fn liveness_register(node_id: &str) -> String {
    format!("liveness/{node_id}")
}

impl<V: Voters> ClusterDirectory<V> {
    /// The node's liveness record, read from a majority of the voters.
    pub async fn liveness(&self, node_id: &str) -> Result<Option<Liveness>, ClientError> {
        from_value(&self.read(&liveness_register(node_id)).await?)
    }

    /// Renews the node's record to `expiration_ms` if its epoch is still `epoch` (or it has none yet and `epoch` is
    /// 0). Returns the record afterwards: an epoch other than `epoch` means the node was fenced.
    pub async fn renew(&self, node_id: &str, epoch: u64, expiration_ms: i64) -> Result<Liveness, ClientError> {
        let renewed = to_value(&Liveness { epoch, expiration_ms });
        let value = self
            .change(&liveness_register(node_id), |current| {
                let record: Option<Liveness> = from_value(current)?;
                let ours = record.map_or(epoch == 0, |r| r.epoch == epoch);
                Ok(if ours { renewed.clone() } else { current.clone() })
            })
            .await?;
        Ok(from_value(&value)?.unwrap_or_default())
    }

    /// Bumps the node's epoch if its record is still at `epoch` and expired `max_offset_ms` before `now_ms` (on
    /// this node's clock). Returns the record afterwards.
    pub async fn fence(
        &self,
        node_id: &str,
        epoch: u64,
        now_ms: i64,
        max_offset_ms: i64,
    ) -> Result<Liveness, ClientError> {
        let value = self
            .change(&liveness_register(node_id), |current| {
                let record: Liveness = from_value(current)?.unwrap_or_default();
                if record.epoch == epoch && record.expiration_ms + max_offset_ms < now_ms {
                    Ok(to_value(&Liveness { epoch: epoch + 1, expiration_ms: 0 }))
                } else {
                    Ok(current.clone())
                }
            })
            .await?;
        Ok(from_value(&value)?.unwrap_or_default())
    }
}
