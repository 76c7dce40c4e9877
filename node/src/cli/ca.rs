//! `tern ca`: the cluster's certificate authority. Nodes talk to each other only over mutual TLS with
//! certificates this CA signed; a node presenting any other certificate is refused.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};

/// `tern ca init|issue`.
#[derive(Debug, Args)]
pub(crate) struct CaArgs {
    #[command(subcommand)]
    command: CaCommand,
}

#[derive(Debug, Subcommand)]
enum CaCommand {
    /// Create the cluster CA: writes `ca.pem` and `ca.key` in DIR (refuses to overwrite them).
    Init {
        /// Directory for the CA's files (created if missing).
        #[arg(long)]
        dir: PathBuf,
    },
    /// Issue a node certificate signed by the CA in DIR: writes `NAME.pem` and `NAME.key`.
    Issue {
        /// Directory holding `ca.pem` and `ca.key`; the node's files go there too.
        #[arg(long)]
        dir: PathBuf,
        /// The node's name (letters, digits, `-` and `.`, or an IP address).
        #[arg(long)]
        node: String,
    },
}

/// Runs `tern ca ...`; prints the files written.
pub(crate) fn run(args: CaArgs) -> ExitCode {
    let written = match &args.command {
        CaCommand::Init { dir } => std::fs::create_dir_all(dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))
            .and_then(|()| tern_replication::init_ca(dir).map_err(|e| e.to_string())),
        CaCommand::Issue { dir, node } => tern_replication::issue_node(dir, node).map_err(|e| e.to_string()),
    };
    match written {
        Ok(files) => {
            println!("{}\n{}", files.cert.display(), files.key.display());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
