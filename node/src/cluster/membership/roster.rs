//! What `GET /cluster/members` reports: the membership view in the gateway's terms or, for a node outside any
//! cluster (`tern dev`), the node alone.

use std::time::UNIX_EPOCH;

use tern_gateway::backend::{MemberInfo, MemberLoad, MemberState as ReportedState};

use super::{Load, Member, MemberState, Members};

/// The id a node outside any cluster reports itself under (it has no certificate to take a name from).
const ALONE_ID: &str = "local";

/// Where a node's list of members comes from.
#[derive(Clone, Debug)]
pub enum Roster {
    /// A node on its own (`tern dev`): it lists itself, alive, with its current load.
    Alone {
        /// The URL of its gateway.
        gateway_url: String,
        /// When it started, in milliseconds since the Unix epoch (its generation, and the time of its last change).
        started_ms: i64,
    },
    /// A node in a cluster: its membership view.
    Cluster(Members),
}

impl Roster {
    /// The members to report, sorted by id. A node alone reports itself in `region` with `load`.
    pub fn report(&self, region: &str, load: Load) -> Vec<MemberInfo> {
        match self {
            Roster::Alone { gateway_url, started_ms } => vec![MemberInfo {
                id: ALONE_ID.to_string(),
                region: region.to_string(),
                zone: None,
                state: ReportedState::Alive,
                generation: u64::try_from(*started_ms).unwrap_or(0),
                gateway_url: gateway_url.clone(),
                quic_addr: None,
                load: Some(member_load(load)),
                since: *started_ms,
                local: true,
                liveness_epoch: None,
            }],
            Roster::Cluster(members) => members.all().iter().map(member_info).collect(),
        }
    }
}

/// One member of the membership view as the gateway reports it.
fn member_info(member: &Member) -> MemberInfo {
    let since = member.since.duration_since(UNIX_EPOCH).unwrap_or_default().as_millis();
    MemberInfo {
        id: member.node.id.clone(),
        region: member.node.region.clone(),
        zone: member.node.zone.clone(),
        state: match member.state {
            MemberState::Alive => ReportedState::Alive,
            MemberState::Suspect => ReportedState::Suspect,
            MemberState::Down => ReportedState::Down,
        },
        generation: member.node.generation,
        gateway_url: member.node.gateway_url.clone(),
        quic_addr: Some(member.node.quic_addr.to_string()),
        load: member.load.map(member_load),
        since: i64::try_from(since).unwrap_or(i64::MAX),
        local: member.local,
        liveness_epoch: None,
    }
}

fn member_load(load: Load) -> MemberLoad {
    MemberLoad { awake_actors: load.awake_actors, open_databases: load.open_databases }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::NodeInfo;

    #[test]
    fn a_node_alone_reports_itself_alive_with_its_load() {
        let roster = Roster::Alone { gateway_url: "http://127.0.0.1:6420".into(), started_ms: 1_700_000_000_000 };
        let [me] = roster.report("local", Load { awake_actors: 2, open_databases: 1 }).try_into().unwrap();
        assert_eq!((me.id.as_str(), me.region.as_str(), me.state), ("local", "local", ReportedState::Alive));
        assert_eq!(
            (me.generation, me.since, me.local, me.quic_addr),
            (1_700_000_000_000, 1_700_000_000_000, true, None)
        );
        assert_eq!(me.load, Some(MemberLoad { awake_actors: 2, open_databases: 1 }));
    }

    #[test]
    fn members_keep_their_identity_state_and_load() {
        let member = Member {
            node: NodeInfo {
                id: "fra-1".into(),
                generation: 9,
                region: "fra".into(),
                zone: Some("b".into()),
                gateway_url: "http://10.0.0.2:6420".into(),
                quic_addr: "10.0.0.2:7420".parse().unwrap(),
            },
            state: MemberState::Suspect,
            load: None,
            since: UNIX_EPOCH + std::time::Duration::from_millis(1234),
            local: false,
        };
        let info = member_info(&member);
        assert_eq!((info.id.as_str(), info.zone.as_deref(), info.state), ("fra-1", Some("b"), ReportedState::Suspect));
        assert_eq!((info.since, info.quic_addr.as_deref(), info.load), (1234, Some("10.0.0.2:7420"), None));
    }
}
