//! `tern export ACTOR > actor.db`: a consistent copy of an actor's SQLite database.

use std::io::IsTerminal;
use std::path::PathBuf;

use clap::Args;

use super::context::{CliError, CliResult, ClientArgs, Ctx, write_stdout};
use super::target::ActorRef;

/// `tern export`.
#[derive(Debug, Args)]
pub(crate) struct ExportArgs {
    /// An actor id, or NAME/KEY (e.g. `sqlite/t1`).
    pub actor: ActorRef,
    /// Write to this file instead of stdout.
    #[arg(long, short, value_name = "FILE")]
    pub output: Option<PathBuf>,
    #[command(flatten)]
    pub client: ClientArgs,
}

/// Downloads the database and writes it to `--output` or stdout; refuses to write it to a terminal.
pub(crate) async fn run(ctx: &Ctx, args: ExportArgs) -> CliResult {
    if args.output.is_none() && std::io::stdout().is_terminal() {
        return Err(CliError::Message(
            "refusing to write a binary database to a terminal; redirect stdout (`tern export ACTOR > actor.db`) \
             or pass --output FILE"
                .to_string(),
        ));
    }
    let id = ctx.actor_id(&args.actor).await?;
    let bytes = ctx.client.inspector(&id).export().await?;
    match &args.output {
        Some(path) => {
            std::fs::write(path, &bytes).map_err(|e| CliError::Message(format!("cannot write {}: {e}", path.display())))
        }
        None => write_stdout(&bytes),
    }
}
