//! Clusters of real `tern node` processes on loopback: a CA issuing node certificates, nodes planned with their
//! QUIC addresses before they start (so every node can be given the same voter list), and reads of what each
//! node's `/cluster/members` says.

use std::path::Path;
use std::time::Duration;

use serde_json::Value;
use tempfile::TempDir;

use crate::netns::Lab;
use crate::{TernProcess, free_udp_port, tern_binary};

/// The admin token every cluster node of the tests runs with.
pub const TOKEN: &str = "cluster-s3cret";

/// A cluster CA in a temporary directory, issuing node certificates on demand.
pub struct Ca {
    dir: TempDir,
}

impl Default for Ca {
    fn default() -> Self {
        Self::new()
    }
}

impl Ca {
    /// A new CA.
    pub fn new() -> Ca {
        let dir = tempfile::tempdir().expect("a temporary directory");
        tern_replication::init_ca(dir.path()).expect("init the CA");
        Ca { dir }
    }

    /// `--tls-ca`, `--tls-cert` and `--tls-key` for a new certificate named `name`.
    pub fn tls_args(&self, name: &str) -> Vec<String> {
        let files = tern_replication::issue_node(self.dir.path(), name).expect("issue a node certificate");
        let ca = self.dir.path().join(tern_replication::CA_CERT_FILE);
        [("--tls-ca", ca), ("--tls-cert", files.cert), ("--tls-key", files.key)]
            .into_iter()
            .flat_map(|(flag, path)| [flag.to_string(), path.display().to_string()])
            .collect()
    }
}

/// A node before it starts: its name, region and QUIC address.
#[derive(Clone, Debug)]
pub struct NodePlan {
    pub name: String,
    pub region: String,
    pub quic: String,
}

/// Plans nodes `(name, region)` on 127.0.0.1 with free QUIC ports.
pub fn plan(nodes: &[(&str, &str)]) -> Vec<NodePlan> {
    nodes
        .iter()
        .map(|(name, region)| NodePlan {
            name: name.to_string(),
            region: region.to_string(),
            quic: format!("127.0.0.1:{}", free_udp_port()),
        })
        .collect()
}

/// The `--voters` value naming these nodes with their addresses.
pub fn voters_arg(voters: &[&NodePlan]) -> String {
    voters.iter().map(|v| format!("{}@{}", v.name, v.quic)).collect::<Vec<_>>().join(",")
}

/// A running `tern node`.
pub struct Node {
    pub name: String,
    pub region: String,
    pub quic: String,
    pub process: TernProcess,
}

impl Node {
    /// Starts the planned node with a certificate from `ca`, data under `work`, LAN timing, joining `seeds`, with
    /// `voters` (a `--voters` value, if any) and `extra` arguments.
    pub fn start(ca: &Ca, work: &Path, plan: &NodePlan, seeds: &[&str], voters: Option<&str>, extra: &[&str]) -> Node {
        Node::launch(&tern_binary(), ca, work, plan, seeds, voters, extra, None)
    }

    /// Like [`start`](Self::start), running `binary` (e.g. the example application) instead of `tern`.
    pub fn start_binary(
        binary: &Path,
        ca: &Ca,
        work: &Path,
        plan: &NodePlan,
        seeds: &[&str],
        voters: Option<&str>,
    ) -> Node {
        Node::launch(binary, ca, work, plan, seeds, voters, &[], None)
    }

    /// Like [`start`](Self::start) (with `extra` arguments), for host `index` of `lab`: the node runs in that host's
    /// namespace, with its gateway on the host's address, port 6420 (the plan's QUIC address must be the host's
    /// too).
    pub fn start_in_lab(
        ca: &Ca,
        work: &Path,
        plan: &NodePlan,
        seeds: &[&str],
        voters: Option<&str>,
        extra: &[&str],
        lab: (&Lab, usize),
    ) -> Node {
        Node::launch(&tern_binary(), ca, work, plan, seeds, voters, extra, Some(lab))
    }

    #[allow(clippy::too_many_arguments)]
    fn launch(
        binary: &Path,
        ca: &Ca,
        work: &Path,
        plan: &NodePlan,
        seeds: &[&str],
        voters: Option<&str>,
        extra: &[&str],
        lab: Option<(&Lab, usize)>,
    ) -> Node {
        let zone = format!("{}-a", plan.region);
        let mut args: Vec<String> = ["--region", &plan.region, "--zone", &zone, "--quic-listen", &plan.quic]
            .into_iter()
            .chain(["--admin-token", TOKEN, "--profile", "lan"])
            .map(str::to_string)
            .collect();
        args.extend(ca.tls_args(&plan.name));
        if !seeds.is_empty() {
            args.push("--join".into());
            args.push(seeds.join(","));
        }
        if let Some(voters) = voters {
            args.push("--voters".into());
            args.push(voters.into());
        }
        args.extend(extra.iter().map(|a| a.to_string()));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let data_dir = work.join(&plan.name);
        let process = match lab {
            Some((lab, i)) => {
                TernProcess::start_node_within(binary, &data_dir, &args, &lab.wrapper(i), &lab.ip(i), 6420)
            }
            None => TernProcess::start_node(binary, &data_dir, &args),
        };
        Node { name: plan.name.clone(), region: plan.region.clone(), quic: plan.quic.clone(), process }
    }

    /// The node's `/cluster/members` list, or `None` while it does not answer.
    pub async fn members(&self) -> Option<Vec<Value>> {
        let url = format!("{}/cluster/members", self.process.endpoint());
        let request = reqwest::Client::new().get(url).bearer_auth(TOKEN).timeout(std::time::Duration::from_secs(10));
        let response = request.send().await.ok()?;
        let body: Value = response.error_for_status().ok()?.json().await.ok()?;
        body["members"].as_array().cloned()
    }

    /// The state this node's view gives node `id`, if it lists it.
    pub async fn state_of(&self, id: &str) -> Option<String> {
        let members = self.members().await?;
        members.iter().find(|m| m["id"] == id).map(|m| m["state"].as_str().unwrap_or_default().to_string())
    }

    /// `Some` once this node lists exactly `nodes`, all alive.
    pub async fn sees_alive(&self, nodes: &[&Node]) -> Option<()> {
        let members = self.members().await?;
        let alive = |n: &&Node| members.iter().any(|m| m["id"] == n.name.as_str() && m["state"] == "alive");
        (members.len() == nodes.len() && nodes.iter().all(alive)).then_some(())
    }
}

/// How long a cluster of a few nodes on loopback may take to converge: generous, as a cap, never a verdict.
pub const CONVERGE_CAP: Duration = Duration::from_secs(30);

/// Three nodes, `iad-1`, `fra-1` and `sin-1`, one per region, all voters, `iad-1` the others' seed, each started
/// with `extra` arguments (not yet converged: see [`converge`]).
pub fn three_regions(ca: &Ca, work: &Path, extra: &[&str]) -> Vec<Node> {
    three_regions_running(&tern_binary(), ca, work, extra)
}

/// Like [`three_regions`], running `binary` (e.g. the example application) instead of `tern`.
pub fn three_regions_running(binary: &Path, ca: &Ca, work: &Path, extra: &[&str]) -> Vec<Node> {
    let plans = plan(&[("iad-1", "iad"), ("fra-1", "fra"), ("sin-1", "sin")]);
    let voters = voters_arg(&[&plans[0], &plans[1], &plans[2]]);
    let first = [plans[0].quic.as_str()];
    plans
        .iter()
        .enumerate()
        .map(|(i, p)| Node::launch(binary, ca, work, p, if i == 0 { &[] } else { &first }, Some(&voters), extra, None))
        .collect()
}

/// Waits until every node sees every other alive.
pub async fn converge(nodes: &[Node]) {
    for node in nodes {
        let all: Vec<&Node> = nodes.iter().collect();
        crate::eventually(&format!("{} sees all alive", node.name), CONVERGE_CAP, || node.sees_alive(&all)).await;
    }
}
