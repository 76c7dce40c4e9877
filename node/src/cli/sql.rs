//! `tern sql ACTOR SQL [--param JSON]...`: one statement in an actor's database, through the inspector.

use clap::Args;
use serde_json::Value as Json;

use super::actors::parse_json;
use super::context::{CliResult, ClientArgs, Ctx, emit};
use super::output::{Table, is_number, json_cell};
use super::target::ActorRef;

/// `tern sql`.
#[derive(Debug, Args)]
pub(crate) struct SqlArgs {
    /// An actor id, or NAME/KEY (e.g. `sqlite/t1`).
    pub actor: ActorRef,
    /// The SQL statement.
    pub sql: String,
    /// A positional parameter (`?`), as JSON; repeat for each in order.
    #[arg(long = "param", value_name = "JSON", value_parser = parse_json, allow_negative_numbers = true)]
    pub params: Vec<Json>,
    /// Named parameters as one JSON object (`{"name":"widget"}` binds `:name`, `@name` and `$name`).
    #[arg(long, value_name = "JSON", value_parser = parse_object, conflicts_with = "params")]
    pub named: Option<serde_json::Map<String, Json>>,
    #[command(flatten)]
    pub client: ClientArgs,
}

fn parse_object(text: &str) -> Result<serde_json::Map<String, Json>, String> {
    match parse_json(text)? {
        Json::Object(map) => Ok(map),
        _ => Err("expected a JSON object, e.g. '{\"name\":\"widget\"}'".to_string()),
    }
}

/// Runs the statement and prints its rows: a table and a row count, or a JSON array with `--json`.
pub(crate) async fn run(ctx: &Ctx, args: SqlArgs) -> CliResult {
    let id = ctx.actor_id(&args.actor).await?;
    let inspector = ctx.client.inspector(&id);
    let rows = match args.named {
        Some(named) => inspector.execute(&args.sql, named).await?,
        None => inspector.execute(&args.sql, args.params).await?,
    };
    if ctx.json {
        return emit(&Json::Array(rows).to_string());
    }
    let table = rows_table(&rows);
    let count = format!("({} row{})", rows.len(), if rows.len() == 1 { "" } else { "s" });
    if rows.is_empty() { emit(&count) } else { emit(&format!("{}\n{count}", table.render())) }
}

/// Rows (objects keyed by column) as a table: columns in order of first appearance, numeric columns aligned
/// right. A row that is not an object is shown in a `value` column.
pub(crate) fn rows_table(rows: &[Json]) -> Table {
    let mut columns: Vec<String> = Vec::new();
    for row in rows {
        let keys: Vec<String> = match row {
            Json::Object(map) => map.keys().cloned().collect(),
            _ => vec!["value".to_string()],
        };
        for key in keys {
            if !columns.contains(&key) {
                columns.push(key);
            }
        }
    }
    let cell = |row: &Json, column: &str| -> Option<Json> {
        match row {
            Json::Object(map) => map.get(column).cloned(),
            other if column == "value" => Some(other.clone()),
            _ => None,
        }
    };
    let mut table = Table::new(columns.iter().cloned());
    for (c, column) in columns.iter().enumerate() {
        let values: Vec<Json> = rows.iter().filter_map(|r| cell(r, column)).filter(|v| !v.is_null()).collect();
        if !values.is_empty() && values.iter().all(is_number) {
            table.align_right(c);
        }
    }
    for row in rows {
        table.push(columns.iter().map(|c| cell(row, c).map(|v| json_cell(&v)).unwrap_or_default()).collect());
    }
    table
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn rows_become_a_table() {
        let rows = vec![
            json!({"id": 1, "name": "widget", "data": null}),
            json!({"id": 10, "name": "gadget", "data": ["$Uint8Array", "AQI="], "extra": true}),
        ];
        assert_eq!(
            rows_table(&rows).render(),
            "id  name    data     extra\n \
              1  widget  NULL\n\
             10  gadget  x'0102'  true"
        );
    }

    #[test]
    fn odd_rows_still_render() {
        assert_eq!(rows_table(&[json!(5)]).render(), "value\n    5");
        assert_eq!(rows_table(&[]).render(), "");
    }

    #[test]
    fn named_parameters_must_be_an_object() {
        assert!(parse_object("{\"a\":1}").is_ok());
        assert!(parse_object("[1]").unwrap_err().contains("JSON object"));
    }
}
