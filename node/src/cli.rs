//! The `tern` command line. Applications built on the SDK reuse it: `tern_node::cli::main(registry)`.

use std::net::SocketAddr;
use std::num::NonZeroUsize;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

use crate::runtime::Durability;
use crate::sdk::Registry;
use crate::server::{self, NodeConfig};

/// Tern: stateful actors at the edge.
#[derive(Debug, Parser)]
#[command(name = "tern", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a single development node: actors, gateway and storage in one process.
    Dev(DevArgs),
}

#[derive(Debug, Args)]
struct DevArgs {
    /// Address of the HTTP/WebSocket listener (RivetKit clients connect here).
    #[arg(long, default_value = "127.0.0.1:6420", env = "TERN_LISTEN")]
    listen: SocketAddr,
    /// Directory for the node's data (created if missing; one process at a time).
    #[arg(long, default_value = "./.tern", env = "TERN_DATA_DIR")]
    data_dir: PathBuf,
    /// Fsync every commit (`synchronous=FULL`): survive power loss, at a cost in latency.
    #[arg(long)]
    fsync: bool,
    /// Most actor databases kept open at once (each uses two file descriptors: the database and its WAL).
    #[arg(long, default_value_t = NonZeroUsize::new(4096).expect("non-zero"))]
    max_open_databases: NonZeroUsize,
}

/// Installs the log subscriber: `RUST_LOG` if set, otherwise `info`.
pub fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_target(false).try_init();
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn stop_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
}

/// Parses the command line and runs it with `registry`'s actors. Returns the process exit code.
pub fn main(registry: Registry) -> ExitCode {
    let cli = Cli::parse();
    init_logging();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async move {
        match cli.command {
            Command::Dev(args) => {
                let mut config = NodeConfig::dev(args.listen, args.data_dir);
                config.max_open_databases = args.max_open_databases;
                if args.fsync {
                    config.durability = Durability::Fsync;
                }
                let data_dir = config.data_dir.display().to_string();
                server::serve(registry, config, stop_signal(), |addr| {
                    tracing::info!(%addr, data_dir, "tern dev listening on http://{addr}");
                })
                .await
            }
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e}");
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
