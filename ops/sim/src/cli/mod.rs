//! The command line.

mod measure;
mod up;

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use tern_sim::matrix::{Matrix, Pair};
use tern_sim::{relay, run};

/// Regions on one machine: Tern nodes in network namespaces, regions joined through a delaying relay. Needs root.
#[derive(Debug, Parser)]
#[command(name = "tern-sim")]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Start a simulated cluster and leave it running: prints each node's gateway URL and how to run a command
    /// in a region.
    Up(up::UpArgs),
    /// Tear down the clusters `up` started and the leftovers of aborted runs (or only run ID with --run).
    Down {
        /// The run to tear down.
        #[arg(long, value_name = "ID")]
        run: Option<String>,
    },
    /// Measure the relay's own latency: UDP round trips direct, through the relay at 0 ms, and at a delay.
    Measure(measure::MeasureArgs),
    /// Run the relay on a TUN device (the simulator starts it inside a run's core namespace).
    Relay(RelayArgs),
}

/// The regions and what lies between them.
#[derive(Debug, Args)]
struct MatrixArgs {
    /// The regions, comma-separated (lowercase letters and digits).
    #[arg(long, value_name = "REGION,...", value_delimiter = ',', default_value = "iad,fra,sin")]
    regions: Vec<String>,
    /// A round-trip time in milliseconds between two regions, e.g. iad-fra=90 (repeatable or comma-separated;
    /// replaces the default for that pair).
    #[arg(long, value_name = "A-B=MS", value_delimiter = ',')]
    rtt: Vec<Pair<u32>>,
    /// A loss rate from 0 to 1 in each direction between two regions, e.g. iad-sin=0.01 [default: none].
    #[arg(long, value_name = "A-B=RATE", value_delimiter = ',')]
    loss: Vec<Pair<f64>>,
}

impl MatrixArgs {
    fn matrix(&self) -> Result<Matrix, String> {
        Matrix::new(&self.regions, &self.rtt, &self.loss)
    }
}

/// `tern-sim relay`'s options.
#[derive(Debug, Args)]
struct RelayArgs {
    /// The TUN device to serve (it must exist, without packet information).
    #[arg(long)]
    tun: String,
    /// The run's subnet, 10.S.0.0/16: region K is 10.S.K.0/24.
    #[arg(long)]
    subnet: tern_sim::subnet::Subnet,
    #[command(flatten)]
    matrix: MatrixArgs,
}

impl Cli {
    /// Runs the command.
    pub fn run(self) -> Result<(), String> {
        match self.command {
            Command::Up(args) => up::run(args),
            Command::Down { run } => down(run),
            Command::Measure(args) => measure::run(args),
            Command::Relay(args) => {
                let config = relay::Config { tun: args.tun, subnet: args.subnet, matrix: args.matrix.matrix()? };
                relay::run(config).map_err(|e| format!("relay: {e}"))
            }
        }
    }
}

/// `tern-sim down`: tears down run `id`, or every run `up` left and every leftover.
fn down(id: Option<String>) -> Result<(), String> {
    let ids = match id {
        Some(id) => vec![id],
        None => run::detached()?.into_iter().chain(run::leftovers()?).collect(),
    };
    if ids.is_empty() {
        println!("nothing to tear down");
    }
    for id in ids {
        run::tear_down(&id)?;
        println!("removed run {id}");
    }
    Ok(())
}

/// This executable, which runs the relay of the simulations it starts.
fn this_executable() -> Result<PathBuf, String> {
    std::env::current_exe().map_err(|e| format!("cannot find this executable: {e}"))
}
