//! `tern-sim up`: a simulated cluster left running: one `tern node` per host, each in its own process group so it
//! outlives this command, logging next to its data in the run's directory.

use std::io::Write as _;
use std::net::TcpStream;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use clap::Args;
use tern_sim::nodes::{self, NodeSpec};
use tern_sim::{Config, Sim, netns};

use super::{MatrixArgs, this_executable};

/// How long every node together may take to start serving.
const READY_CAP: Duration = Duration::from_secs(60);

/// `tern-sim up`'s options.
#[derive(Debug, Args)]
pub struct UpArgs {
    #[command(flatten)]
    matrix: MatrixArgs,
    /// Nodes in each region (1 to 99).
    #[arg(long, default_value_t = 1)]
    nodes_per_region: usize,
    /// The failure detector's timing: a dead node is declared down in about 5 s (lan) or 15 s (wan).
    #[arg(long, default_value = "wan", value_parser = ["lan", "wan"])]
    profile: String,
    /// The `tern` executable [default: `tern` next to this program].
    #[arg(long)]
    tern: Option<PathBuf>,
}

/// Starts the cluster, waits until every gateway serves, prints how to use it and leaves it running.
pub fn run(args: UpArgs) -> Result<(), String> {
    let relay = this_executable()?;
    let tern = args.tern.clone().unwrap_or_else(|| relay.with_file_name("tern"));
    if !tern.exists() {
        return Err(format!("{} is missing: build it (`cargo build -p tern-node --bin tern`)", tern.display()));
    }
    let config =
        Config { matrix: args.matrix.matrix()?, hosts_per_region: args.nodes_per_region, relay, detached: true };
    let sim = Sim::start(config)?;
    let specs = nodes::plan(&sim);
    let certs = nodes::issue_certs(&sim.dir().join("certs"), &specs)?;
    let token = format!("{:032x}", rand::random::<u128>());
    let mut children = Vec::new();
    for (index, spec) in specs.iter().enumerate() {
        let data_dir = sim.dir().join(&spec.name);
        let log_path = data_dir.with_extension("log");
        let log = std::fs::File::create(&log_path).map_err(|e| format!("cannot create {}: {e}", log_path.display()))?;
        let mut command = netns::command(&spec.host.namespace, &tern);
        command.args(["node", "--listen", &spec.listen(), "--data-dir"]).arg(&data_dir);
        command.args(nodes::node_args(&specs, index, &certs, &token, &args.profile));
        command.stdin(Stdio::null()).stdout(log.try_clone().map_err(|e| e.to_string())?).stderr(log);
        let child = command.process_group(0).spawn().map_err(|e| format!("cannot start {}: {e}", tern.display()))?;
        children.push((child, log_path));
    }
    wait_ready(&specs, &mut children)?;
    let text = summary(&sim, &specs, &token);
    sim.detach()?;
    // The cluster runs on whether or not anyone reads this.
    let _ = std::io::stdout().write_all(text.as_bytes());
    Ok(())
}

/// Waits until every node's gateway accepts connections; fails if a node exits first or [`READY_CAP`] passes.
fn wait_ready(specs: &[NodeSpec], children: &mut [(Child, PathBuf)]) -> Result<(), String> {
    let started = Instant::now();
    for (spec, (child, log)) in specs.iter().zip(children) {
        let address = spec.listen().parse().expect("a socket address");
        while TcpStream::connect_timeout(&address, Duration::from_millis(200)).is_err() {
            if let Ok(Some(status)) = child.try_wait() {
                return Err(format!("{} exited with {status} before serving; log: {}", spec.name, log.display()));
            }
            if started.elapsed() > READY_CAP {
                return Err(format!("{} did not serve within {READY_CAP:?}; log: {}", spec.name, log.display()));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    Ok(())
}

/// What `up` prints: the nodes, the admin token, the client namespaces, where the files are, how to tear down.
fn summary(sim: &Sim, specs: &[NodeSpec], token: &str) -> String {
    let rtts: Vec<String> =
        sim.matrix().pairs().map(|(a, b, link)| format!("{a}-{b} {} ms", link.rtt.as_millis())).collect();
    let mut lines =
        vec![format!("simulated cluster, run {} (round trips: {})", sim.id(), rtts.join(", ")), String::new()];
    lines.push(format!("  {:<10} {:<8} {:<28} voter", "node", "region", "gateway"));
    for spec in specs {
        let voter = if spec.voter { "yes" } else { "" };
        lines.push(format!("  {:<10} {:<8} {:<28} {voter}", spec.name, spec.region, spec.gateway_url()));
    }
    lines.push(String::new());
    lines.push(format!("admin token: {token}"));
    lines.push("run a command from a region on its client host: ip netns exec NAMESPACE COMMAND".into());
    for region in sim.matrix().regions() {
        let client = sim.client(region);
        lines.push(format!("  {region:<8} {:<28} ({})", client.namespace, client.ip));
    }
    let (first, client) = (&specs[0], sim.client(&specs[0].region));
    lines.push(format!(
        "e.g. ip netns exec {} curl -s -H 'authorization: Bearer {token}' {}/cluster/members",
        client.namespace,
        first.gateway_url()
    ));
    lines.push("this shell reaches every gateway directly, without the simulated delay".into());
    lines.push(format!("data and logs: {}", sim.dir().display()));
    lines.push(format!("tear down: ops/sim/down (or tern-sim down --run {})", sim.id()));
    lines.join("\n") + "\n"
}
