//! The cluster's members as a node sees them (`GET /cluster/members`, admin route).

use serde::{Deserialize, Serialize};

use crate::client::Client;
use crate::error::Result;
use crate::http::json_body;

/// A node of the cluster as the node asked reports it. Serializes back to the API's JSON shape (camelCase).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClusterMember {
    /// The node's id (its certificate's name; `local` for a node outside any cluster).
    pub id: String,
    /// Its region.
    pub region: String,
    /// Its zone within the region, if any.
    #[serde(default)]
    pub zone: Option<String>,
    /// `alive`, `suspect` or `down`, as the node asked believes.
    pub state: String,
    /// Which run of the node this is (larger for a later run).
    pub generation: u64,
    /// The public URL of its gateway.
    pub gateway_url: String,
    /// Its QUIC address; `None` for a node outside any cluster.
    #[serde(default)]
    pub quic_addr: Option<String>,
    /// Its last gossiped load, if one arrived.
    #[serde(default)]
    pub load: Option<MemberLoad>,
    /// When the node asked last saw it change, in milliseconds since the Unix epoch.
    pub since: i64,
    /// Whether it is the node asked.
    pub local: bool,
    /// The epoch of its liveness record (bumped each time it was taken for dead); `None` outside a cluster with
    /// voters.
    #[serde(default)]
    pub liveness_epoch: Option<u64>,
}

/// How busy a member is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MemberLoad {
    /// Actors awake in memory.
    pub awake_actors: u64,
    /// Actor databases open.
    pub open_databases: u64,
}

/// The build the node asked runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeBuild {
    /// Its release and git commit, e.g. `0.1.0 (commit 1a2b3c4)`.
    pub release: String,
    /// The inter-node protocol versions it speaks, highest first (`tern/2`).
    pub protocols: Vec<String>,
}

/// What `GET /cluster/members` answers: the members, and the build of the node asked (`None` from a node that
/// does not report it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterView {
    /// Every node the node asked knows, itself included, sorted by id.
    pub members: Vec<ClusterMember>,
    /// The node's build.
    #[serde(default)]
    pub node: Option<NodeBuild>,
}

impl Client {
    /// Every node the endpoint's node knows, itself included, sorted by id (`GET /cluster/members`). Admin route.
    pub async fn cluster_members(&self) -> Result<Vec<ClusterMember>> {
        Ok(self.cluster_view().await?.members)
    }

    /// The members and the endpoint node's build (`GET /cluster/members`). Admin route.
    pub async fn cluster_view(&self) -> Result<ClusterView> {
        let url = self.endpoint().url(&["cluster", "members"], &[]);
        json_body(self.authorized(self.http().get(url)).send().await?).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn members_round_trip_in_the_api_shape() {
        let body = json!({"members": [{
            "id": "iad-1", "region": "iad", "zone": null, "state": "alive", "generation": 17,
            "gatewayUrl": "http://10.0.0.1:6420", "quicAddr": "10.0.0.1:7420",
            "load": {"awakeActors": 4, "openDatabases": 3}, "since": 1_700_000_000_000i64, "local": true
        }]});
        let answer: ClusterView = serde_json::from_value(body.clone()).unwrap();
        let member = &answer.members[0];
        assert_eq!(member.load, Some(MemberLoad { awake_actors: 4, open_databases: 3 }));
        assert_eq!(serde_json::to_value(member).unwrap(), body["members"][0]);
        assert_eq!(answer.node, None);
    }

    #[test]
    fn the_view_carries_the_node_build() {
        let body = json!({"members": [], "node": {"release": "0.1.0 (commit 1a2b3c4)", "protocols": ["tern/2"]}});
        let view: ClusterView = serde_json::from_value(body.clone()).unwrap();
        let build = NodeBuild { release: "0.1.0 (commit 1a2b3c4)".into(), protocols: vec!["tern/2".into()] };
        assert_eq!(view.node, Some(build));
        assert_eq!(serde_json::to_value(&view).unwrap(), body);
    }
}
