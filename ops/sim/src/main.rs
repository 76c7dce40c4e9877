//! `tern-sim`: regions on one machine. `up` starts a simulated cluster and leaves it running, `down` tears it down,
//! `measure` measures the relay's own latency, `relay` is the relay itself (the simulator starts it).

mod cli;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    match cli::Cli::parse().run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
