//! Typed answers of the inspector API. Field names follow RivetKit's camelCase JSON; every field tolerates being
//! absent or null (it then takes its default), so that a server with fewer features still parses.

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value as Json;

/// Reads a field that may be null as its type's default.
fn nullable<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}

/// `GET summary`: the whole picture of one actor.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    /// The actor's state (JSON-compat form); null when it keeps none.
    #[serde(default)]
    pub state: Json,
    /// Whether the actor keeps state.
    #[serde(default, deserialize_with = "nullable")]
    pub is_state_enabled: bool,
    /// Its open connections.
    #[serde(default, deserialize_with = "nullable")]
    pub connections: Vec<InspectorConnection>,
    /// The names of its actions.
    #[serde(default, deserialize_with = "nullable")]
    pub rpcs: Vec<String>,
    /// Messages waiting in its queue.
    #[serde(default, deserialize_with = "nullable")]
    pub queue_size: u64,
    /// Whether it has an SQL database.
    #[serde(default, deserialize_with = "nullable")]
    pub is_database_enabled: bool,
    /// Whether it runs a workflow.
    #[serde(default, deserialize_with = "nullable")]
    pub is_workflow_enabled: bool,
    /// Its workflow history, when it runs a workflow.
    #[serde(default)]
    pub workflow_history: Json,
}

/// `GET state`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StateInfo {
    /// The actor's state (JSON-compat form); null when it keeps none.
    #[serde(default)]
    pub state: Json,
    /// Whether the actor keeps state.
    #[serde(default, deserialize_with = "nullable")]
    pub is_state_enabled: bool,
}

/// One open connection of an actor.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InspectorConnection {
    /// The connection's id.
    #[serde(default, deserialize_with = "nullable")]
    pub id: String,
    /// What the actor knows about it.
    #[serde(default, deserialize_with = "nullable")]
    pub details: ConnectionDetails,
}

/// The details of an [`InspectorConnection`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConnectionDetails {
    /// The parameters the client connected with (JSON-compat form).
    #[serde(default)]
    pub params: Json,
    /// Whether the actor keeps per-connection state.
    #[serde(default, deserialize_with = "nullable")]
    pub state_enabled: bool,
    /// The connection's state (JSON-compat form).
    #[serde(default)]
    pub state: Json,
    /// How many events the connection subscribed to.
    #[serde(default, deserialize_with = "nullable")]
    pub subscriptions: u64,
    /// Whether the connection survives the actor sleeping.
    #[serde(default, deserialize_with = "nullable")]
    pub is_hibernatable: bool,
}

/// `GET database/schema`: the tables of the actor's database.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DatabaseSchema {
    /// The tables (and views), in the server's order.
    #[serde(default, deserialize_with = "nullable")]
    pub tables: Vec<TableInfo>,
}

/// One table of a [`DatabaseSchema`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TableInfo {
    /// Which table this is.
    #[serde(default, deserialize_with = "nullable")]
    pub table: TableRef,
    /// Its columns: SQLite's `PRAGMA table_info` rows as objects (`cid`, `name`, `type`, `notnull`,
    /// `dflt_value`, `pk`).
    #[serde(default, deserialize_with = "nullable")]
    pub columns: Vec<Json>,
    /// Its foreign keys: `PRAGMA foreign_key_list` rows as objects.
    #[serde(default, deserialize_with = "nullable")]
    pub foreign_keys: Vec<Json>,
    /// How many rows it holds.
    #[serde(default, deserialize_with = "nullable")]
    pub records: u64,
}

/// The identity of a table: schema (`main`), name and type (`table` or `view`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TableRef {
    /// The schema, `main` for the actor's own tables.
    #[serde(default, deserialize_with = "nullable")]
    pub schema: String,
    /// The table's name.
    #[serde(default, deserialize_with = "nullable")]
    pub name: String,
    /// `table` or `view`.
    #[serde(rename = "type", default, deserialize_with = "nullable")]
    pub kind: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn summaries_parse_rivetkit_shapes() {
        let summary: Summary = serde_json::from_value(json!({
            "state": {"count": 5}, "isStateEnabled": true,
            "connections": [{"type": null, "id": "c1", "details": {"type": null, "params": {"name": "ada"},
                "stateEnabled": false, "state": null, "subscriptions": 2, "isHibernatable": false}}],
            "rpcs": ["getCount", "increment"], "queueSize": 0, "isDatabaseEnabled": true,
            "isWorkflowEnabled": false, "workflowHistory": null
        }))
        .unwrap();
        assert_eq!(summary.state, json!({"count": 5}));
        assert_eq!(summary.connections[0].id, "c1");
        assert_eq!(summary.connections[0].details.subscriptions, 2);
        assert_eq!(summary.rpcs, ["getCount", "increment"]);
        assert!(summary.is_database_enabled && !summary.is_workflow_enabled);
        let sparse: Summary = serde_json::from_value(json!({"state": null, "queueSize": null})).unwrap();
        assert_eq!(sparse, Summary::default());
        assert_eq!(serde_json::to_value(&sparse).unwrap()["isStateEnabled"], json!(false));
    }

    #[test]
    fn schemas_parse() {
        let schema: DatabaseSchema = serde_json::from_value(json!({"tables": [{
            "table": {"schema": "main", "name": "items", "type": "table"},
            "columns": [{"cid": 0, "name": "id", "type": "INTEGER", "notnull": 0, "dflt_value": null, "pk": 1}],
            "foreignKeys": [], "records": 3
        }]}))
        .unwrap();
        let table = &schema.tables[0];
        assert_eq!((table.table.name.as_str(), table.table.kind.as_str(), table.records), ("items", "table", 3));
        assert_eq!(table.columns[0]["name"], json!("id"));
    }
}
