//! Simulated regions for tests: a `tern_sim::Sim` (every host a network namespace, regions joined through the
//! delaying relay) with one `tern node` per host, started as [`TernProcess`]es with LAN timing and the tests'
//! admin token. The host machine (the test) reaches every gateway directly; a client "in" a region runs on that
//! region's client host ([`tern_sim::netns::Host::within`]). Needs root, iproute2, `/dev/net/tun` and the
//! `tern-sim` binary; dropping the cluster stops the nodes and removes the simulation.

use tern_sim::matrix::Pair;
use tern_sim::{Config, Matrix, Sim, nodes};

use crate::cluster::{Node, TOKEN};
use crate::{TernProcess, tern_binary, workspace_binary};

/// A simulated multi-region cluster.
pub struct SimCluster {
    /// The nodes, in the simulator's plan order (`iad-1`, `fra-1`, ..., `iad-2`, ...). Declared before `sim` so
    /// they stop before the network goes.
    pub nodes: Vec<Node>,
    /// The simulation: partitions, client hosts, the matrix.
    pub sim: Sim,
}

impl SimCluster {
    /// Starts `nodes_per_region` nodes in each of `regions` (default round-trip times between them) and waits
    /// until each gateway serves. Panics, saying what is missing, on a machine that cannot run simulations.
    pub fn start(regions: &[&str], nodes_per_region: usize) -> SimCluster {
        SimCluster::start_with_rtts(regions, nodes_per_region, &[])
    }

    /// Like [`start`](Self::start), with the round-trip times of some pairs of regions set: `(a, b, ms)`.
    pub fn start_with_rtts(regions: &[&str], nodes_per_region: usize, rtts_ms: &[(&str, &str, u32)]) -> SimCluster {
        if let Err(missing) = tern_sim::prerequisites() {
            panic!("this test runs simulated regions and cannot here: {missing}");
        }
        let regions: Vec<String> = regions.iter().map(|r| r.to_string()).collect();
        let rtts: Vec<Pair<u32>> =
            rtts_ms.iter().map(|(a, b, ms)| Pair { a: a.to_string(), b: b.to_string(), value: *ms }).collect();
        let matrix = Matrix::new(&regions, &rtts, &[]).expect("a matrix of known regions");
        let relay = workspace_binary("tern-sim", "tern-sim");
        let config = Config { matrix, hosts_per_region: nodes_per_region, relay, detached: false };
        let sim = Sim::start(config).unwrap_or_else(|e| panic!("cannot start the simulation: {e}"));
        let specs = nodes::plan(&sim);
        let certs = nodes::issue_certs(&sim.dir().join("certs"), &specs).expect("certificates");
        let nodes = specs
            .iter()
            .enumerate()
            .map(|(index, spec)| {
                let args = nodes::node_args(&specs, index, &certs, TOKEN, "lan");
                let args: Vec<&str> = args.iter().map(String::as_str).collect();
                let (wrapper, ip) = (spec.host.wrapper(), spec.host.ip.to_string());
                let data_dir = sim.dir().join(&spec.name);
                let process = TernProcess::start_node_within(
                    &tern_binary(),
                    &data_dir,
                    &args,
                    &wrapper,
                    &ip,
                    nodes::GATEWAY_PORT,
                );
                Node { name: spec.name.clone(), region: spec.region.clone(), quic: spec.quic(), process }
            })
            .collect();
        SimCluster { nodes, sim }
    }

    /// The node named `name` (e.g. `fra-1`).
    pub fn node(&self, name: &str) -> &Node {
        self.nodes.iter().find(|n| n.name == name).unwrap_or_else(|| panic!("no node {name}"))
    }
}
