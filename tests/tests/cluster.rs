//! Cluster membership with real `tern node` processes on loopback, real QUIC and mutual TLS (LAN timing): nodes in
//! several regions converge, a killed node is marked down, a stopped one leaves at once, a node with another CA's
//! certificate never gets in, and `tern members` shows it all. The binary is `target/debug/tern`.

use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;
use tern_tests::cluster::{CONVERGE_CAP, Ca, Node, TOKEN, plan, voters_arg};
use tern_tests::{TernProcess, eventually, tern_binary};

/// How long a `kill -9`ed node may stay alive in the others' eyes (LAN timing declares it down in about 5 s).
const KILLED_CAP: Duration = Duration::from_secs(30);

/// The state `observer` gives node `id`, after checking that it lists no node named `intruder`.
async fn state_without_intruder(observer: &Node, id: &str) -> Option<String> {
    let members = observer.members().await?;
    assert!(!members.iter().any(|m| m["id"] == "intruder"), "{} lists the intruder: {members:?}", observer.name);
    observer.state_of(id).await
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
            (state_without_intruder(observer, node).await.as_deref() == Some("down")).then_some(())
        })
        .await;
    }
    started.elapsed()
}

#[tokio::test]
async fn five_nodes_in_three_regions_converge_and_see_failures() {
    let (ca, work) = (Ca::new(), tempfile::tempdir().unwrap());
    let plans = plan(&[("iad-1", "iad"), ("iad-2", "iad"), ("fra-1", "fra"), ("fra-2", "fra"), ("syd-1", "syd")]);
    let voters = voters_arg(&[&plans[0], &plans[2], &plans[4]]);
    let start = |i: usize, seeds: &[usize]| {
        let seeds: Vec<&str> = seeds.iter().map(|&s| plans[s].quic.as_str()).collect();
        Node::start(&ca, work.path(), &plans[i], &seeds, Some(&voters), &[])
    };
    let n1 = start(0, &[]);
    let n2 = start(1, &[0]);
    let n3 = start(2, &[0, 1]);
    let mut n4 = start(3, &[1, 2]);
    let mut n5 = start(4, &[0, 2]);
    // A node with a certificate from another CA, pointed at the cluster: the handshakes fail, it stays alone.
    let foreign_ca = Ca::new();
    let intruder_plan = &plan(&[("intruder", "iad")])[0];
    let intruder = Node::start(&foreign_ca, work.path(), intruder_plan, &[&n1.quic, &n2.quic], None, &[]);
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

    // Load is published from the host: an actor created through iad-2 lives on an iad node, and fra-1 (which
    // hosts nothing) sees that node's awake actor in its gossiped load.
    let created = tern_tests::http_client()
        .put(format!("{}/actors", n2.process.endpoint()))
        .json(&serde_json::json!({"name": "counter", "key": "k1"}))
        .send()
        .await
        .unwrap();
    assert!(created.status().is_success());
    let observer = &n3;
    eventually("fra-1 sees the iad node's awake actor", CONVERGE_CAP, move || async move {
        let members = observer.members().await?;
        let awake = |id: &str| members.iter().find(|m| m["id"] == id).and_then(|m| m["load"]["awakeActors"].as_u64());
        (awake("iad-1").unwrap_or(0) + awake("iad-2").unwrap_or(0) >= 1).then_some(())
    })
    .await;

    members_command(&n1);
    let unauthorized =
        tern_tests::http_client().get(format!("{}/cluster/members", n1.process.endpoint())).send().await.unwrap();
    assert_eq!(unauthorized.status(), 401);
    assert_eq!(unauthorized.json::<Value>().await.unwrap()["code"], "unauthorized");

    // syd-1 is killed with kill -9 and says nothing: the others learn of its death only by probing it, a probe
    // unanswered making it a suspect, and the suspicion timing out. Once one of them suspects it, fra-2 gets
    // SIGTERM, puts its actors to sleep and leaves: the others learn of that from fra-2 itself, so by the time
    // every one of them sees fra-2 down, none sees syd-1 down yet. Had fra-2 stopped without a word, its own
    // suspicion would begin after syd-1's, and end after it.
    n5.process.kill9();
    let observers = [&n1, &n2, &n3];
    eventually("a node suspects syd-1", KILLED_CAP, || async {
        for observer in observers {
            if state_without_intruder(observer, "syd-1").await.as_deref() == Some("suspect") {
                return Some(());
            }
        }
        None
    })
    .await;
    n4.process.sigterm();
    let stopping = Instant::now();
    eventually("every node sees fra-2, which left, down", KILLED_CAP, || async {
        let mut views = Vec::new();
        for observer in observers {
            let members = observer.members().await?;
            assert!(!members.iter().any(|m| m["id"] == "intruder"), "{} lists the intruder", observer.name);
            let state = |id: &str| members.iter().find(|m| m["id"] == id).map(|m| m["state"].clone());
            views.push((observer.name.as_str(), state("fra-2")?, state("syd-1")?));
        }
        if views.iter().any(|(_, left, _)| left != "down") {
            return None;
        }
        let killed_down = views.iter().any(|(_, _, killed)| killed == "down");
        assert!(!killed_down, "a node that left was found out no sooner than a killed one: {views:?}");
        Some(())
    })
    .await;
    eprintln!("every node saw fra-2 down {:?} after SIGTERM", stopping.elapsed());
    let status = n4.process.wait_exit(KILLED_CAP).expect("fra-2 stops");
    assert!(status.success(), "fra-2 exited with {status}");

    // kill -9: probing finds syd-1 out.
    let took = wait_down(&observers, "syd-1", KILLED_CAP).await;
    eprintln!("a killed node was seen down by all within {took:?}");

    // The intruder never got in, and sees no one.
    for node in [&n1, &n2, &n3] {
        assert_eq!(state_without_intruder(node, "iad-1").await.as_deref(), Some("alive"));
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
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines.len() == 7 && lines[1].starts_with("ID"), "{text}");
    let header = concat!("node iad-1: tern ", env!("CARGO_PKG_VERSION"), " (commit ");
    assert!(lines[0].starts_with(header) && lines[0].ends_with("), inter-node protocol tern/2"), "{text}");
    assert!(text.contains("iad-1 (this node)") && text.contains("syd-1") && text.contains("fra"), "{text}");
    let json = run(&["--json"], Some(TOKEN));
    let parsed: Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(parsed["members"].as_array().map(Vec::len), Some(5), "{parsed}");
    assert_eq!(parsed["node"]["protocols"], serde_json::json!(["tern/2"]), "{parsed}");
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
    assert!(code == Some(2) && stderr.contains("the admin token is empty"), "{stderr}");
    let (code, stderr) = tern(&["--admin-token", TOKEN, "--join", "dns:tern.internal:x"]);
    assert!(code == Some(2) && stderr.contains("dns:NAME:PORT"), "{stderr}");
    let (code, stderr) = tern(&["--admin-token", TOKEN]);
    assert!(code == Some(2) && stderr.contains("--advertise"), "{stderr}");
}

#[tokio::test]
async fn a_node_refuses_a_voter_set_other_than_its_first() {
    let (ca, work) = (Ca::new(), tempfile::tempdir().unwrap());
    let plans = plan(&[("iad-1", "iad")]);
    let voters = voters_arg(&[&plans[0]]);
    let mut node = Node::start(&ca, work.path(), &plans[0], &[], Some(&voters), &[]);
    eventually("the node serves", CONVERGE_CAP, || node.members()).await;
    assert!(node.process.terminate().success());
    // The same data directory, another voter set: refused at start, with the reason, before anything is served.
    let mut command = Command::new(tern_binary());
    command.arg("node").args(["--region", "iad", "--quic-listen", &plans[0].quic, "--admin-token", TOKEN]);
    command.args(ca.tls_args("iad-1-again")).args(["--voters", &format!("other-1@{}", plans[0].quic)]);
    command.arg("--data-dir").arg(work.path().join("iad-1")).args(["--listen", "127.0.0.1:0"]);
    let output = command.output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{stderr}");
    assert!(stderr.contains("the voter set cannot change by flags") && stderr.contains("iad-1"), "{stderr}");
    // The refusal is the changed set's: with its first voter set the same data directory starts and serves.
    node.process.restart();
    eventually("the node serves again", CONVERGE_CAP, || node.members()).await;
}

#[tokio::test]
async fn a_dev_node_lists_itself_alone() {
    let dir = tempfile::tempdir().unwrap();
    let node = TernProcess::start(&tern_binary(), &dir.path().join("data"));
    let body =
        tern_tests::fetch_json(tern_tests::http_client().get(format!("{}/cluster/members", node.endpoint()))).await;
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
