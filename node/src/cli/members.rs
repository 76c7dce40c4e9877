//! `tern members`: the nodes of the cluster as the node at `--endpoint` sees them.

use clap::Args;
use serde_json::json;
use tern_client::{ClusterMember, NodeBuild};

use super::context::{CliResult, ClientArgs, Ctx, emit, emit_json, to_json};
use super::output::{Table, format_ms};

/// `tern members`.
#[derive(Debug, Args)]
pub(crate) struct MembersArgs {
    #[command(flatten)]
    pub client: ClientArgs,
}

/// Prints the members: a line with the build of the node asked (its release and inter-node protocol versions),
/// then a table (the node asked is marked), or `{"members": [...], "node": {...}}` as the API returns it with
/// `--json`. Membership does not gossip builds, so only the node asked reports its own: during a rolling
/// upgrade, ask each node.
pub(crate) async fn run(ctx: &Ctx) -> CliResult {
    let view = ctx.client.cluster_view().await?;
    if ctx.json {
        return emit_json(ctx, &json!({ "members": to_json(&view.members), "node": to_json(&view.node) }));
    }
    emit(&format!("{}\n{}", header(&view.members, view.node.as_ref()), table(&view.members).render()))
}

/// `node iad-1: tern 0.1.0 (commit 1a2b3c4), inter-node protocol tern/2`, or `unknown` for a node that does
/// not report its build.
fn header(members: &[ClusterMember], build: Option<&NodeBuild>) -> String {
    let id = members.iter().find(|member| member.local).map_or("?", |member| member.id.as_str());
    match build {
        Some(build) => format!("node {id}: tern {}, inter-node protocol {}", build.release, build.protocols.join(", ")),
        None => format!("node {id}: tern unknown, inter-node protocol unknown"),
    }
}

/// The members as a table: id, region, zone, state, load, addresses, last change.
fn table(members: &[ClusterMember]) -> Table {
    let mut table = Table::new(["ID", "REGION", "ZONE", "STATE", "EPOCH", "AWAKE", "DBS", "GATEWAY", "QUIC", "SINCE"]);
    table.align_right(4);
    table.align_right(5);
    table.align_right(6);
    for member in members {
        let id = if member.local { format!("{} (this node)", member.id) } else { member.id.clone() };
        let count = |pick: fn(&tern_client::MemberLoad) -> u64| member.load.as_ref().map(pick).map(|n| n.to_string());
        table.push(vec![
            id,
            member.region.clone(),
            member.zone.clone().unwrap_or_default(),
            member.state.clone(),
            member.liveness_epoch.map(|e| e.to_string()).unwrap_or_default(),
            count(|load| load.awake_actors).unwrap_or_default(),
            count(|load| load.open_databases).unwrap_or_default(),
            member.gateway_url.clone(),
            member.quic_addr.clone().unwrap_or_default(),
            format_ms(member.since),
        ]);
    }
    table
}

#[cfg(test)]
mod tests {
    use super::*;
    use tern_client::MemberLoad;

    #[test]
    fn the_table_marks_this_node_and_leaves_unknowns_blank() {
        let member = |id: &str, local, load| ClusterMember {
            id: id.into(),
            region: "iad".into(),
            zone: None,
            state: "alive".into(),
            generation: 1,
            gateway_url: "http://10.0.0.1:6420".into(),
            quic_addr: Some("10.0.0.1:7420".into()),
            load,
            since: 0,
            local,
            liveness_epoch: local.then_some(2),
        };
        let load = Some(MemberLoad { awake_actors: 12, open_databases: 3 });
        let text = table(&[member("iad-1", true, load), member("iad-2", false, None)]).render();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3, "{text}");
        assert!(lines[0].starts_with("ID") && lines[0].ends_with("SINCE"), "{text}");
        assert!(
            lines[1].starts_with("iad-1 (this node)  iad") && lines[1].contains("alive      2     12    3"),
            "{text}"
        );
        assert!(lines[2].starts_with("iad-2 ") && lines[2].contains("alive                     http://"), "{text}");
        let build = NodeBuild { release: "0.1.0 (commit 1a2b3c4)".into(), protocols: vec!["tern/2".into()] };
        let members = [member("iad-2", false, None), member("iad-1", true, None)];
        assert_eq!(
            header(&members, Some(&build)),
            "node iad-1: tern 0.1.0 (commit 1a2b3c4), inter-node protocol tern/2"
        );
        assert_eq!(header(&members[..1], None), "node ?: tern unknown, inter-node protocol unknown");
    }
}
