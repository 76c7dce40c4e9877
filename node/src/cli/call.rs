//! `tern call ACTOR ACTION [ARGS...]`: one stateless action over HTTP, as any client would call it.

use clap::Args;
use tern_proto::value;

use super::actors::parse_json;
use super::context::{CliResult, ClientArgs, Ctx, emit_json};
use super::target::ActorRef;

/// `tern call`.
#[derive(Debug, Args)]
pub(crate) struct CallArgs {
    /// An actor id, or NAME/KEY (e.g. `counter/k1`).
    pub actor: ActorRef,
    /// The action's name.
    pub action: String,
    /// The action's arguments, one JSON value each (`5`, '"text"', '{"a":1}'); RivetKit's JSON-compat tags
    /// (`["$BigInt","12345678901234567890"]`, `["$Uint8Array","<base64>"]`) carry big integers and bytes.
    #[arg(value_name = "JSON", value_parser = parse_json)]
    pub args: Vec<serde_json::Value>,
    #[command(flatten)]
    pub client: ClientArgs,
}

/// Calls the action and prints its output as JSON.
pub(crate) async fn run(ctx: &Ctx, args: CallArgs) -> CliResult {
    let id = ctx.actor_id(&args.actor).await?;
    let name = match &args.actor {
        ActorRef::Key { name, .. } => name.as_str(),
        ActorRef::Id(_) => "",
    };
    let handle = ctx.client.get_for_id(name, &id);
    let output = handle.action(&args.action, args.args.iter().map(value::from_json).collect()).await?;
    emit_json(ctx, &value::to_json(&output))
}
