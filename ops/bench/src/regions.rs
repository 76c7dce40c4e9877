//! Simulated regions for benchmarks: a `tern_sim::Sim` (every host a network namespace, regions joined through
//! the delaying relay) with one release node per host, started as [`Node`]s with LAN timing and the benchmark's
//! admin token. This process reaches every gateway directly, so a client "sits" at the gateway it calls. Needs
//! root, iproute2, `/dev/net/tun` and the `tern-sim` binary next to this one (`cargo build --release -p
//! tern-sim`).

use tern_sim::matrix::Pair;
use tern_sim::{Config, Matrix, Sim, nodes};

use crate::cluster::TOKEN;
use crate::node::Node;

/// Nodes in simulated regions. The nodes are declared before the simulation so that they stop before it goes.
pub(crate) struct RegionCluster {
    /// One node per region, in `regions` order; each is `{region}-1`.
    pub(crate) nodes: Vec<Node>,
    _sim: Sim,
}

impl RegionCluster {
    /// Starts one node in each of `regions`, every pair of regions `rtt_ms` apart (all three are the directory's
    /// voters); `Err` says why this machine cannot run simulated regions.
    pub(crate) fn start(regions: &[&str], rtt_ms: u32) -> Result<RegionCluster, String> {
        tern_sim::prerequisites()?;
        let relay = std::env::current_exe().map_err(|e| e.to_string())?.with_file_name("tern-sim");
        if !relay.exists() {
            return Err(format!("{} is missing: `cargo build --release -p tern-sim`", relay.display()));
        }
        let names: Vec<String> = regions.iter().map(|r| r.to_string()).collect();
        let mut rtts = Vec::new();
        for (i, a) in regions.iter().enumerate() {
            for b in &regions[i + 1..] {
                rtts.push(Pair { a: a.to_string(), b: b.to_string(), value: rtt_ms });
            }
        }
        let matrix = Matrix::new(&names, &rtts, &[])?;
        let sim = Sim::start(Config { matrix, hosts_per_region: 1, relay, detached: false })?;
        let specs = nodes::plan(&sim);
        let certs = nodes::issue_certs(&sim.dir().join("certs"), &specs)?;
        let nodes = specs
            .iter()
            .enumerate()
            .map(|(index, spec)| {
                let args = nodes::node_args(&specs, index, &certs, TOKEN, "lan");
                let data_dir = sim.dir().join(&spec.name);
                let ip = spec.host.ip.to_string();
                Node::start_within(&spec.host.wrapper(), &ip, nodes::GATEWAY_PORT, &data_dir, &args)
            })
            .collect();
        Ok(RegionCluster { nodes, _sim: sim })
    }
}
