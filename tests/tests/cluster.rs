//! Cluster membership with real `tern node` processes on loopback, real QUIC and mutual TLS (LAN timing): nodes in
//! several regions converge, a killed node is marked down, a stopped one leaves at once, a node with another CA's
//! certificate never gets in, and `tern members` shows it all. The binary is `target/debug/tern`.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;
use tempfile::TempDir;
use tern_tests::{TernProcess, eventually, free_udp_port, tern_binary};

/// The admin token every node of these tests runs with.
const TOKEN: &str = "cluster-s3cret";
/// How long nodes may take to see each other after they all started.
const CONVERGE_CAP: Duration = Duration::from_secs(30);
/// How long a `kill -9`ed node may stay alive in the others' eyes (LAN timing declares it down in about 5 s).
const KILLED_CAP: Duration = Duration::from_secs(30);
/// How long a node that left may stay alive in the others' eyes: well under the ~5 s that probing would take.
const LEFT_CAP: Duration = Duration::from_secs(3);

/// A cluster CA in a temporary directory, issuing node certificates on demand.
struct Ca {
    dir: TempDir,
}

impl Ca {
    fn new() -> Ca {
        let dir = tempfile::tempdir().unwrap();
        tern_replication::init_ca(dir.path()).unwrap();
        Ca { dir }
    }

    /// `--tls-ca`, `--tls-cert` and `--tls-key` for a new certificate named `name`.
    fn tls_args(&self, name: &str) -> Vec<String> {
        let files = tern_replication::issue_node(self.dir.path(), name).unwrap();
        let ca = self.dir.path().join(tern_replication::CA_CERT_FILE);
        [("--tls-ca", ca), ("--tls-cert", files.cert), ("--tls-key", files.key)]
            .into_iter()
            .flat_map(|(flag, path)| [flag.to_string(), path.display().to_string()])
            .collect()
    }
}

/// A running `tern node`.
struct Node {
    name: String,
    region: String,
    quic: String,
    process: TernProcess,
}

impl Node {
    /// Starts node `name` in `region` with a certificate from `ca`, joining `seeds`, with data under `work`.
    fn start(ca: &Ca, work: &Path, name: &str, region: &str, seeds: &[&Node]) -> Node {
        let quic = format!("127.0.0.1:{}", free_udp_port());
        let mut args: Vec<String> = ["--region", region, "--zone", &format!("{region}-a"), "--quic-listen", &quic]
            .into_iter()
            .chain(["--admin-token", TOKEN, "--profile", "lan"])
            .map(str::to_string)
            .collect();
        args.extend(ca.tls_args(name));
        if !seeds.is_empty() {
            args.push("--join".into());
            args.push(seeds.iter().map(|seed| seed.quic.as_str()).collect::<Vec<_>>().join(","));
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let process = TernProcess::start_node(&tern_binary(), &work.join(name), &args);
        Node { name: name.into(), region: region.into(), quic, process }
    }

    /// The node's `/cluster/members` list, or `None` while it does not answer.
    async fn members(&self) -> Option<Vec<Value>> {
        let url = format!("{}/cluster/members", self.process.endpoint());
        let response = reqwest::Client::new().get(url).bearer_auth(TOKEN).send().await.ok()?;
        let body: Value = response.error_for_status().ok()?.json().await.ok()?;
        body["members"].as_array().cloned()
    }

    /// The state this node's view gives node `id` (`None` if it does not list it), after checking that it lists no
    /// node named `intruder`.
    async fn state_of(&self, id: &str) -> Option<String> {
        let members = self.members().await?;
        assert!(!members.iter().any(|m| m["id"] == "intruder"), "{} lists the intruder: {members:?}", self.name);
        members.iter().find(|m| m["id"] == id).map(|m| m["state"].as_str().unwrap_or_default().to_string())
    }
}

/// `Some` once `node` lists exactly `nodes`, all alive and in their regions; never the intruder.
async fn lists_alive(node: &Node, nodes: [&Node; 5]) -> Option<()> {
    let members = node.members().await?;
    assert!(!members.iter().any(|m| m["id"] == "intruder"), "{} lists the intruder", node.name);
    let listed = |n: &Node| {
        members.iter().any(|m| m["id"] == n.name.as_str() && m["region"] == n.region.as_str() && m["state"] == "alive")
    };
    (members.len() == nodes.len() && nodes.iter().all(|n| listed(n))).then_some(())
}

/// Waits until every node of `observers` sees `node` down; returns how long that took.
async fn wait_down(observers: &[&Node], node: &str, cap: Duration) -> Duration {
    let started = Instant::now();
    for &observer in observers {
        let what = format!("{} sees {node} down", observer.name);
        eventually(&what, cap.saturating_sub(started.elapsed()), move || async move {
            (observer.state_of(node).await.as_deref() == Some("down")).then_some(())
        })
        .await;
    }
    started.elapsed()
}

#[tokio::test]
async fn five_nodes_in_three_regions_converge_and_see_failures() {
    let (ca, work) = (Ca::new(), tempfile::tempdir().unwrap());
    let n1 = Node::start(&ca, work.path(), "iad-1", "iad", &[]);
    let n2 = Node::start(&ca, work.path(), "iad-2", "iad", &[&n1]);
    let n3 = Node::start(&ca, work.path(), "fra-1", "fra", &[&n1, &n2]);
    let mut n4 = Node::start(&ca, work.path(), "fra-2", "fra", &[&n2, &n3]);
    let mut n5 = Node::start(&ca, work.path(), "syd-1", "syd", &[&n1, &n3]);
    // A node with a certificate from another CA, pointed at the cluster: the handshakes fail, it stays alone.
    let foreign_ca = Ca::new();
    let intruder = Node::start(&foreign_ca, work.path(), "intruder", "iad", &[&n1, &n2]);
    let nodes = [&n1, &n2, &n3, &n4, &n5];

    let started = Instant::now();
    for node in nodes {
        let what = format!("{} lists all five nodes alive", node.name);
        eventually(&what, CONVERGE_CAP, move || lists_alive(node, nodes)).await;
    }
    eprintln!("converged in {:?}", started.elapsed());
    let seen_by_n1 = n1.members().await.unwrap();
    let own = seen_by_n1.iter().find(|m| m["id"] == "iad-1").unwrap();
    assert_eq!((own["local"].as_bool(), own["zone"].as_str()), (Some(true), Some("iad-a")));
    assert_eq!(
        (own["quicAddr"].as_str(), own["gatewayUrl"].as_str()),
        (Some(n1.quic.as_str()), Some(&*n1.process.endpoint()))
    );

    // Load is published from the host: an actor woken on iad-2 shows in iad-1's view.
    let created = reqwest::Client::new()
        .put(format!("{}/actors", n2.process.endpoint()))
        .json(&serde_json::json!({"name": "counter", "key": "k1"}))
        .send()
        .await
        .unwrap();
    assert!(created.status().is_success());
    let observer = &n1;
    eventually("iad-1 sees iad-2's awake actor", CONVERGE_CAP, move || async move {
        let members = observer.members().await?;
        let load = &members.iter().find(|m| m["id"] == "iad-2")?["load"];
        (load["awakeActors"].as_u64()? >= 1).then_some(())
    })
    .await;

    members_command(&n1);
    let unauthorized = reqwest::get(format!("{}/cluster/members", n1.process.endpoint())).await.unwrap();
    assert_eq!(unauthorized.status(), 401);
    assert_eq!(unauthorized.json::<Value>().await.unwrap()["code"], "unauthorized");

    // SIGTERM: fra-2 puts its actors to sleep, leaves, and the others know at once.
    let status = n4.process.terminate();
    assert!(status.success(), "fra-2 exited with {status}");
    let took = wait_down(&[&n1, &n2, &n3, &n5], "fra-2", LEFT_CAP).await;
    eprintln!("a node that left was seen down by all within {took:?}");

    // kill -9: syd-1 says nothing; probing finds it out.
    n5.process.kill9();
    let took = wait_down(&[&n1, &n2, &n3], "syd-1", KILLED_CAP).await;
    eprintln!("a killed node was seen down by all within {took:?}");

    // The intruder never got in, and sees no one.
    for node in [&n1, &n2, &n3] {
        assert_eq!(node.state_of("iad-1").await.as_deref(), Some("alive"));
    }
    let alone = intruder.members().await.unwrap();
    assert_eq!(alone.len(), 1, "the intruder sees others: {alone:?}");
    assert_eq!(alone[0]["id"], "intruder");
}

/// `tern members` against `node`: a table by default, the API's JSON with `--json`, `api.unauthorized` without
/// the token.
fn members_command(node: &Node) {
    let run = |args: &[&str], token: Option<&str>| {
        let mut command = Command::new(tern_binary());
        command.arg("members").args(args).arg("--endpoint").arg(node.process.endpoint());
        command.env_remove("TERN_ENDPOINT").env_remove("TERN_ADMIN_TOKEN").env_remove("RUST_LOG");
        if let Some(token) = token {
            command.arg("--admin-token").arg(token);
        }
        command.output().unwrap()
    };
    let table = run(&[], Some(TOKEN));
    let text = String::from_utf8_lossy(&table.stdout);
    assert!(table.status.success(), "{}", String::from_utf8_lossy(&table.stderr));
    assert!(text.starts_with("ID") && text.lines().count() == 6, "{text}");
    assert!(text.contains("iad-1 (this node)") && text.contains("syd-1") && text.contains("fra"), "{text}");
    let json = run(&["--json"], Some(TOKEN));
    let parsed: Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(parsed["members"].as_array().map(Vec::len), Some(5), "{parsed}");
    let refused = run(&[], None);
    assert_eq!(refused.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("api.unauthorized"));
}

#[test]
fn a_node_needs_an_admin_token_and_host_port_seeds() {
    let tern = |args: &[&str]| {
        let mut command = Command::new(tern_binary());
        command.arg("node").args(["--region", "iad", "--tls-ca", "ca.pem", "--tls-cert", "n.pem"]);
        command.args(["--tls-key", "n.key"]);
        let output = command.args(args).env_remove("TERN_ADMIN_TOKEN").output().unwrap();
        (output.status.code(), String::from_utf8_lossy(&output.stderr).into_owned())
    };
    let (code, stderr) = tern(&["--advertise", "127.0.0.1:7420"]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("needs an admin token"), "{stderr}");
    let (code, stderr) = tern(&["--admin-token", "", "--advertise", "127.0.0.1:7420"]);
    assert!(code == Some(2) && stderr.contains("needs an admin token"), "{stderr}");
    let (code, stderr) = tern(&["--admin-token", TOKEN, "--join", "dns:tern.internal"]);
    assert!(code == Some(2) && stderr.contains("not yet supported"), "{stderr}");
    let (code, stderr) = tern(&["--admin-token", TOKEN]);
    assert!(code == Some(2) && stderr.contains("--advertise"), "{stderr}");
}

#[tokio::test]
async fn a_dev_node_lists_itself_alone() {
    let dir = tempfile::tempdir().unwrap();
    let node = TernProcess::start(&tern_binary(), &dir.path().join("data"));
    let body: Value = reqwest::get(format!("{}/cluster/members", node.endpoint())).await.unwrap().json().await.unwrap();
    let members = body["members"].as_array().unwrap();
    assert_eq!(members.len(), 1, "{body}");
    let me = &members[0];
    assert_eq!(
        (me["id"].as_str(), me["state"].as_str(), me["local"].as_bool()),
        (Some("local"), Some("alive"), Some(true))
    );
    assert_eq!((me["region"].as_str(), me["gatewayUrl"].as_str()), (Some("local"), Some(&*node.endpoint())));
    assert!(me["quicAddr"].is_null() && me["load"]["awakeActors"] == 0, "{body}");
}
