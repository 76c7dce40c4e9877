//! `GET /cluster/members` (admin): the nodes this node knows, as its membership view has them.
//!
//! `{"members": [{"id", "region", "zone", "state", "generation", "gatewayUrl", "quicAddr", "load", "since",
//! "local", "livenessEpoch"}], "node": {"release", "protocols"} | null}`: `state` is `alive`, `suspect` or `down`; `load` is
//! `{"awakeActors", "openDatabases"}` or null until one arrives; `since` is when this node last saw the member
//! change, in milliseconds since the Unix epoch; `node` is the build of the node asked (its release and the
//! inter-node protocol versions it speaks; membership does not gossip the other members' builds).

use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use serde_json::{Value as JsonValue, json};

use crate::auth::require_admin;
use crate::backend::MemberInfo;
use crate::error_response::ErrorResponse;
use crate::{AppState, NodeBuild};

/// One member as JSON.
fn member_json(member: &MemberInfo) -> JsonValue {
    json!({
        "id": member.id,
        "region": member.region,
        "zone": member.zone,
        "state": member.state.as_str(),
        "generation": member.generation,
        "gatewayUrl": member.gateway_url,
        "quicAddr": member.quic_addr,
        "load": member.load.map(|load| json!({
            "awakeActors": load.awake_actors,
            "openDatabases": load.open_databases,
        })),
        "since": member.since,
        "local": member.local,
        "livenessEpoch": member.liveness_epoch,
    })
}

/// The node's build as JSON, or null.
fn build_json(build: Option<&NodeBuild>) -> JsonValue {
    build.map_or(JsonValue::Null, |build| json!({ "release": build.release, "protocols": build.protocols }))
}

/// `GET /cluster/members` (admin).
pub(crate) async fn members(State(app): State<AppState>, headers: HeaderMap) -> Result<Json<JsonValue>, ErrorResponse> {
    require_admin(&app.config, &headers)?;
    let members = app.backend.cluster_members().await?;
    Ok(Json(json!({
        "members": members.iter().map(member_json).collect::<Vec<_>>(),
        "node": build_json(app.config.build.as_ref()),
    })))
}

/// `POST /cluster/nodes/{id}/drain` (admin) → `{"node", "moved", "failed": [{"actorId", "error"}]}` once every
/// actor the node hosted has moved to another node (or failed to, listed).
pub(crate) async fn drain(
    State(app): State<AppState>,
    headers: HeaderMap,
    crate::request::Checked(axum::extract::Path(node_id)): crate::request::Checked<axum::extract::Path<String>>,
) -> Result<Json<JsonValue>, ErrorResponse> {
    require_admin(&app.config, &headers)?;
    let report = app.backend.drain(&node_id).await?;
    let failed: Vec<JsonValue> = report
        .failed
        .iter()
        .map(|(actor_id, error)| json!({ "actorId": actor_id, "error": error.qualified_code(), "message": error.message }))
        .collect();
    Ok(Json(json!({ "node": report.node, "moved": report.moved, "failed": failed })))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::{MemberLoad, MemberState};

    #[test]
    fn members_serialize_in_camel_case_with_null_for_unknowns() {
        let mut member = MemberInfo {
            id: "iad-1".into(),
            region: "iad".into(),
            zone: None,
            state: MemberState::Suspect,
            generation: 7,
            gateway_url: "http://10.0.0.1:6420".into(),
            quic_addr: Some("10.0.0.1:7420".into()),
            load: None,
            since: 1_700_000_000_000,
            local: false,
            liveness_epoch: None,
        };
        assert_eq!(
            member_json(&member),
            json!({"id": "iad-1", "region": "iad", "zone": null, "state": "suspect", "generation": 7,
                   "gatewayUrl": "http://10.0.0.1:6420", "quicAddr": "10.0.0.1:7420", "load": null,
                   "since": 1_700_000_000_000i64, "local": false,
                   "livenessEpoch": null})
        );
        member.load = Some(MemberLoad { awake_actors: 3, open_databases: 2 });
        assert_eq!(member_json(&member)["load"], json!({"awakeActors": 3, "openDatabases": 2}));
    }

    #[test]
    fn the_build_is_the_release_and_the_protocols_or_null() {
        let build = NodeBuild { release: "0.1.0 (commit 1a2b3c4)".into(), protocols: vec!["tern/2".into()] };
        assert_eq!(build_json(Some(&build)), json!({"release": "0.1.0 (commit 1a2b3c4)", "protocols": ["tern/2"]}));
        assert_eq!(build_json(None), JsonValue::Null);
    }
}
