//! `tern actors ...`: list, show, create, destroy and put to sleep actors through the REST API.

use clap::{Args, Subcommand};
use serde_json::json;
use tern_client::{Actor, ActorKey, CreateOptions};
use tern_proto::key::deserialize_key;

use super::context::{CliResult, ClientArgs, Ctx, emit, emit_json, to_json};
use super::output::{Table, format_ms, key_values};
use super::target::ActorRef;

/// `tern actors`.
#[derive(Debug, Args)]
pub(crate) struct ActorsArgs {
    #[command(subcommand)]
    pub command: ActorsCommand,
    #[command(flatten)]
    pub client: ClientArgs,
}

/// The `tern actors` subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum ActorsCommand {
    /// List actors: id, name, key, status, creation time.
    Ls {
        /// Only actors of this definition name.
        #[arg(long)]
        name: Option<String>,
        /// At most this many actors (the server's default page size when omitted).
        #[arg(long)]
        limit: Option<usize>,
    },
    /// Show one actor (destroyed ones too, by id).
    Get {
        /// An actor id, or NAME/KEY (e.g. `counter/k1`, `room/org-1/general`).
        actor: ActorRef,
    },
    /// Create an actor; fails with `actor.duplicate_key` when the key is taken.
    Create {
        /// The actor definition's name (e.g. `counter`).
        name: String,
        /// The key, in RivetKit's serialized form (`org-1/general` is ["org-1", "general"]); the empty key when
        /// omitted.
        key: Option<String>,
        /// Input for the actor's create hooks, as JSON.
        #[arg(long, value_name = "JSON", value_parser = parse_json)]
        input: Option<serde_json::Value>,
    },
    /// Destroy an actor: its state and database are gone for good.
    Destroy {
        /// An actor id, or NAME/KEY.
        actor: ActorRef,
    },
    /// Put an actor to sleep now (it saves its state; the next request wakes it).
    Sleep {
        /// An actor id, or NAME/KEY.
        actor: ActorRef,
    },
    /// Where an actor's database lives: its home and each replica, with position, lag and state.
    Replicas {
        /// An actor id, or NAME/KEY.
        actor: ActorRef,
    },
    /// Move a live actor to another region or node; clients keep calling it meanwhile.
    #[command(group = clap::ArgGroup::new("target").required(true).args(["region", "node"]))]
    Migrate {
        /// An actor id, or NAME/KEY.
        actor: ActorRef,
        /// Any live node of this region.
        #[arg(long)]
        region: Option<String>,
        /// This node (its id, as `tern members` lists it).
        #[arg(long)]
        node: Option<String>,
    },
}

/// Parses a command-line JSON value (a usage error when it is not JSON).
pub(crate) fn parse_json(text: &str) -> Result<serde_json::Value, String> {
    serde_json::from_str(text).map_err(|e| format!("not valid JSON ({e}); quote strings as '\"text\"'"))
}

/// Runs one `tern actors` subcommand.
pub(crate) async fn run(ctx: &Ctx, command: ActorsCommand) -> CliResult {
    match command {
        ActorsCommand::Ls { name, limit } => {
            let actors = ctx.client.list_actors(name.as_deref(), limit).await?;
            if ctx.json {
                return emit(&json!(actors).to_string());
            }
            let mut table = Table::new(["ACTOR ID", "NAME", "KEY", "STATUS", "CREATED"]);
            for actor in &actors {
                table.push(vec![
                    actor.actor_id.clone(),
                    actor.name.clone(),
                    actor.key.clone().unwrap_or_default(),
                    status(actor).to_string(),
                    format_ms(actor.create_ts),
                ]);
            }
            emit(&table.render())
        }
        ActorsCommand::Get { actor } => {
            let actor = ctx.actor(&actor).await?;
            show(ctx, &actor)
        }
        ActorsCommand::Create { name, key, input } => {
            let key = ActorKey::new(key.as_deref().map(deserialize_key).unwrap_or_default());
            let options = CreateOptions { input: input.as_ref().map(tern_proto::value::from_json), region: None };
            let actor = ctx.client.create_actor(&name, key, &options).await?;
            show(ctx, &actor)
        }
        ActorsCommand::Destroy { actor } => {
            let id = ctx.actor_id(&actor).await?;
            ctx.client.destroy_actor(&id).await?;
            if ctx.json {
                emit(&json!({"actor_id": id, "destroyed": true}).to_string())
            } else {
                emit(&format!("destroyed {id}"))
            }
        }
        ActorsCommand::Sleep { actor } => {
            let id = ctx.actor_id(&actor).await?;
            ctx.client.sleep_actor(&id).await?;
            if ctx.json {
                emit(&json!({"actor_id": id, "sleeping": true}).to_string())
            } else {
                emit(&format!("put {id} to sleep"))
            }
        }
        ActorsCommand::Migrate { actor, region, node } => {
            let id = ctx.actor_id(&actor).await?;
            let target = match (region, node) {
                (Some(region), _) => json!({ "region": region }),
                (None, node) => json!({ "node": node }),
            };
            let moved = ctx.client.migrate_actor(&id, &target).await?;
            if ctx.json {
                return emit(&moved.to_string());
            }
            let place = |p: &serde_json::Value| {
                format!("{} ({})", p["node"].as_str().unwrap_or("?"), p["region"].as_str().unwrap_or("?"))
            };
            emit(&format!(
                "moved {id} from {} to {}: epoch {}, paused {} ms",
                place(&moved["from"]),
                place(&moved["to"]),
                moved["epoch"],
                moved["pause_ms"]
            ))
        }
        ActorsCommand::Replicas { actor } => {
            let id = ctx.actor_id(&actor).await?;
            let set = ctx.client.replicas(&id).await?;
            if ctx.json {
                return emit(&set.to_string());
            }
            let mut table = Table::new(["NODE", "REGION", "STATE", "POSITION", "LAG FRAMES", "LAG BYTES", "LAG MS"]);
            let text = |v: &serde_json::Value| match v {
                serde_json::Value::Null => "-".to_string(),
                serde_json::Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            for copy in std::iter::once(&set["home"]).chain(set["replicas"].as_array().into_iter().flatten()) {
                let fields = ["node", "region", "state", "position", "lagFrames", "lagBytes", "lagMs"];
                table.push(fields.iter().map(|f| text(&copy[*f])).collect());
            }
            emit(&table.render())
        }
    }
}

/// Prints one actor: its JSON in `--json` mode, a `label  value` block otherwise.
fn show(ctx: &Ctx, actor: &Actor) -> CliResult {
    if ctx.json {
        return emit_json(ctx, &to_json(actor));
    }
    emit(&key_values(&describe(actor)))
}

/// The `label  value` lines describing an actor.
pub(crate) fn describe(actor: &Actor) -> Vec<(&'static str, String)> {
    let time = |ts: Option<i64>| ts.map(format_ms).unwrap_or_else(|| "-".to_string());
    let key = actor.key.clone().unwrap_or_default();
    vec![
        ("actor id", actor.actor_id.clone()),
        ("name", actor.name.clone()),
        ("key", format!("{key}  {}", serde_json::to_string(&deserialize_key(&key)).unwrap_or_default())),
        ("address", format!("{}/{key}", actor.name)),
        ("status", status(actor).to_string()),
        ("datacenter", actor.datacenter.clone().unwrap_or_else(|| "-".to_string())),
        ("created", format_ms(actor.create_ts)),
        ("started", time(actor.start_ts)),
        ("slept", time(actor.sleep_ts)),
        ("destroyed", time(actor.destroy_ts)),
    ]
}

/// `destroyed`, `sleeping` (slept since it last started), `awake` or `created` (never started).
pub(crate) fn status(actor: &Actor) -> &'static str {
    match (actor.destroy_ts, actor.start_ts, actor.sleep_ts) {
        (Some(_), _, _) => "destroyed",
        (None, Some(start), Some(sleep)) if sleep >= start => "sleeping",
        (None, None, Some(_)) => "sleeping",
        (None, Some(_), _) => "awake",
        (None, None, None) => "created",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn actor(start: Option<i64>, sleep: Option<i64>, destroy: Option<i64>) -> Actor {
        serde_json::from_value(json!({"actor_id": "a1", "name": "room", "key": "org-1/general", "create_ts": 0,
            "start_ts": start, "sleep_ts": sleep, "destroy_ts": destroy, "datacenter": "local"}))
        .unwrap()
    }

    #[test]
    fn statuses() {
        assert_eq!(status(&actor(None, None, None)), "created");
        assert_eq!(status(&actor(Some(5), None, None)), "awake");
        assert_eq!(status(&actor(Some(5), Some(7), None)), "sleeping");
        assert_eq!(status(&actor(Some(9), Some(7), None)), "awake");
        assert_eq!(status(&actor(Some(9), Some(7), Some(10))), "destroyed");
    }

    #[test]
    fn descriptions_show_the_address_to_type() {
        let text = key_values(&describe(&actor(Some(1000), None, None)));
        assert!(text.contains("key         org-1/general  [\"org-1\",\"general\"]\n"), "{text}");
        assert!(text.contains("address     room/org-1/general\n"), "{text}");
        assert!(text.contains("started     1970-01-01 00:00:01\n"), "{text}");
        assert!(text.ends_with("destroyed   -"), "{text}");
    }

    #[test]
    fn json_arguments() {
        assert_eq!(parse_json("[1, \"a\"]"), Ok(json!([1, "a"])));
        assert!(parse_json("hello").unwrap_err().contains("not valid JSON"));
    }
}
