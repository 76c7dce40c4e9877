//! The `tern node`s of a simulated cluster: one per host, named `REGION-I`, each with a certificate from one
//! cluster CA. Nodes are ordered round-robin over the regions (`iad-1`, `fra-1`, ..., `iad-2`, ...); the first 3
//! (5 from 5 nodes on) are the directory's voters, so they spread over the regions as in `tern dev --nodes`.
//! Each node joins through the first node of every other region.

use std::path::{Path, PathBuf};

use crate::netns::Host;
use crate::sim::Sim;

/// The port of every node's gateway (on its host's address).
pub const GATEWAY_PORT: u16 = 6420;
/// The port of every node's QUIC transport.
pub const QUIC_PORT: u16 = 7420;

/// One node, before it starts.
#[derive(Clone, Debug)]
pub struct NodeSpec {
    /// `REGION-I`: the node's id and certificate name.
    pub name: String,
    /// The node's region.
    pub region: String,
    /// The host it runs on.
    pub host: Host,
    /// Whether it is one of the directory's voters.
    pub voter: bool,
}

impl NodeSpec {
    /// The gateway's `--listen` address.
    pub fn listen(&self) -> String {
        format!("{}:{GATEWAY_PORT}", self.host.ip)
    }

    /// The gateway's URL.
    pub fn gateway_url(&self) -> String {
        format!("http://{}", self.listen())
    }

    /// The QUIC transport's address.
    pub fn quic(&self) -> String {
        format!("{}:{QUIC_PORT}", self.host.ip)
    }
}

/// One node on each host of `sim`, in round-robin order over the regions.
pub fn plan(sim: &Sim) -> Vec<NodeSpec> {
    let regions = sim.matrix().regions();
    let per_region = sim.hosts(&regions[0]).len();
    let count = regions.len() * per_region;
    let voters = if count >= 5 { 5 } else { count.min(3) };
    (0..per_region)
        .flat_map(|i| regions.iter().map(move |region| (i, region)))
        .enumerate()
        .map(|(n, (i, region))| NodeSpec {
            name: format!("{region}-{}", i + 1),
            region: region.clone(),
            host: sim.hosts(region)[i].clone(),
            voter: n < voters,
        })
        .collect()
}

/// The cluster CA's certificate, and each node's certificate and key (in plan order).
pub struct Certs {
    ca: PathBuf,
    nodes: Vec<tern_replication::CertFiles>,
}

/// Makes a cluster CA in `dir` and a certificate for each node of `specs`.
pub fn issue_certs(dir: &Path, specs: &[NodeSpec]) -> Result<Certs, String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    tern_replication::init_ca(dir).map_err(|e| e.to_string())?;
    let nodes = specs
        .iter()
        .map(|spec| tern_replication::issue_node(dir, &spec.name).map_err(|e| e.to_string()))
        .collect::<Result<_, _>>()?;
    Ok(Certs { ca: dir.join(tern_replication::CA_CERT_FILE), nodes })
}

/// The `tern node` arguments of `specs[index]`, all but `--listen` and `--data-dir`: region, QUIC address,
/// seeds, voters, certificate, the admin `token` and the failure detector's `profile` (`lan` or `wan`).
pub fn node_args(specs: &[NodeSpec], index: usize, certs: &Certs, token: &str, profile: &str) -> Vec<String> {
    let node = &specs[index];
    let voters: Vec<String> = specs.iter().filter(|s| s.voter).map(|s| format!("{}@{}", s.name, s.quic())).collect();
    let seeds: Vec<String> = (0..specs.len())
        .filter(|&i| specs[i].region != node.region && !specs[..i].iter().any(|s| s.region == specs[i].region))
        .map(|i| specs[i].quic())
        .collect();
    let files = &certs.nodes[index];
    let mut args = vec![
        ("--region", node.region.clone()),
        ("--quic-listen", node.quic()),
        ("--voters", voters.join(",")),
        ("--tls-ca", certs.ca.display().to_string()),
        ("--tls-cert", files.cert.display().to_string()),
        ("--tls-key", files.key.display().to_string()),
        ("--admin-token", token.to_string()),
        ("--profile", profile.to_string()),
    ];
    if !seeds.is_empty() {
        args.push(("--join", seeds.join(",")));
    }
    args.into_iter().flat_map(|(flag, value)| [flag.to_string(), value]).collect()
}
