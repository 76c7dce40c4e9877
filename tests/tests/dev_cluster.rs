//! `tern dev --nodes 3 --regions iad,fra`: one command starts a local cluster of three `tern node` processes that
//! converge (every gateway lists the three, alive, in regions iad, fra, iad), route an actor created through one
//! gateway to calls through another, and all stop when `tern dev` gets SIGTERM: it exits 0 and leaves no node
//! process behind.

use std::net::{TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tern_tests::cluster::{CONVERGE_CAP, TOKEN};
use tern_tests::{eventually, free_port, tern_binary};

/// How long `tern dev` may take to stop its nodes (each drains and leaves): generous, as a cap.
const STOP_CAP: Duration = Duration::from_secs(60);

/// A first port such that `count` consecutive ports are free on 127.0.0.1 for `free` (TCP or UDP).
fn free_run(count: u16, free: impl Fn(u16) -> bool) -> u16 {
    for _ in 0..500 {
        let base = free_port();
        if base.checked_add(count).is_some() && (0..count).all(|i| free(base + i)) {
            return base;
        }
    }
    panic!("no {count} consecutive free ports");
}

/// The pids of the processes whose command line has an argument starting with `prefix` (the nodes' data
/// directories), from `/proc`.
fn processes_with_arg(prefix: &str) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else { return Vec::new() };
    entries
        .filter_map(|entry| {
            let entry = entry.ok()?;
            let pid: u32 = entry.file_name().to_str()?.parse().ok()?;
            let cmdline = std::fs::read(entry.path().join("cmdline")).ok()?;
            let has = cmdline.split(|b| *b == 0).any(|arg| arg.starts_with(prefix.as_bytes()));
            has.then_some(pid)
        })
        .collect()
}

/// `tern dev --nodes ...` as a child process; killed (its nodes then get SIGTERM from the kernel) if the test
/// fails, after printing its output.
struct Dev {
    child: Option<Child>,
    log: PathBuf,
}

impl Dev {
    fn start(args: &[String], log: &Path) -> Dev {
        let out = std::fs::File::create(log).expect("create the log file");
        let child = Command::new(tern_binary())
            .arg("dev")
            .args(args)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::from(out.try_clone().expect("clone the log file")))
            .stderr(Stdio::from(out))
            .spawn()
            .expect("start tern dev");
        Dev { child: Some(child), log: log.to_path_buf() }
    }

    fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }
}

impl Drop for Dev {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let log = std::fs::read_to_string(&self.log).unwrap_or_default();
            eprintln!("--- tern dev output ---\n{log}");
        }
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// `/cluster/members` of the gateway at `endpoint` as `(id, region, state)`, or `None` while it does not answer.
async fn members(endpoint: &str) -> Option<Vec<(String, String, String)>> {
    let url = format!("{endpoint}/cluster/members");
    let response = tern_tests::http_client().get(url).bearer_auth(TOKEN).send().await.ok()?;
    let body: Value = response.error_for_status().ok()?.json().await.ok()?;
    let text = |v: &Value| v.as_str().unwrap_or_default().to_string();
    let mut list: Vec<_> =
        body["members"].as_array()?.iter().map(|m| (text(&m["id"]), text(&m["region"]), text(&m["state"]))).collect();
    list.sort();
    Some(list)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dev_starts_a_local_cluster_that_routes_and_stops_cleanly() {
    let work = tempfile::tempdir().unwrap();
    let data_dir = work.path().join("data");
    let gateway = free_run(3, |port| TcpListener::bind(("127.0.0.1", port)).is_ok());
    let quic = free_run(3, |port| UdpSocket::bind(("127.0.0.1", port)).is_ok());
    let args: Vec<String> = [
        "--nodes",
        "3",
        "--regions",
        "iad,fra",
        "--listen",
        &format!("127.0.0.1:{gateway}"),
        "--quic-port",
        &quic.to_string(),
        "--data-dir",
        &data_dir.display().to_string(),
        "--admin-token",
        TOKEN,
    ]
    .into_iter()
    .map(str::to_string)
    .collect();
    let mut dev = Dev::start(&args, &work.path().join("dev.log"));
    let endpoints: Vec<String> = (0..3).map(|i| format!("http://127.0.0.1:{}", gateway + i)).collect();

    // Every gateway lists the three nodes, alive, in regions iad, fra, iad.
    let expected: Vec<(String, String, String)> = [("node-0", "iad"), ("node-1", "fra"), ("node-2", "iad")]
        .iter()
        .map(|(id, region)| (id.to_string(), region.to_string(), "alive".to_string()))
        .collect();
    for endpoint in &endpoints {
        eventually(&format!("{endpoint} lists three alive nodes"), CONVERGE_CAP * 2, || async {
            (members(endpoint).await.as_ref() == Some(&expected)).then_some(())
        })
        .await;
    }
    let node_prefix = data_dir.join("node-").display().to_string();
    assert_eq!(processes_with_arg(&node_prefix).len(), 3, "three node processes");
    assert!(data_dir.join("certs").join("ca.pem").exists() && data_dir.join("certs").join("node-2.key").exists());

    // An actor created through gateway 0 answers through gateway 2.
    let http = tern_tests::http_client();
    let created: Value = eventually("PUT /actors through gateway 0", CONVERGE_CAP, || async {
        let url = format!("{}/actors", endpoints[0]);
        let response = http.put(url).json(&json!({"name": "counter", "key": "k"})).send().await.ok()?;
        if !response.status().is_success() {
            return None;
        }
        response.json().await.ok()
    })
    .await;
    let id = created["actor"]["actor_id"].as_str().expect("an actor id").to_string();
    let url = format!("{}/gateway/{id}/action/increment", endpoints[2]);
    let answer: Value = http.post(url).json(&json!({"args": [2]})).send().await.unwrap().json().await.unwrap();
    assert_eq!(answer, json!({"output": 2}));

    // SIGTERM to `tern dev`: every node drains and stops, and it exits 0.
    let status = Command::new("kill").arg("-TERM").arg(dev.pid().to_string()).status().expect("run kill");
    assert!(status.success(), "kill -TERM failed");
    let started = Instant::now();
    let exit = loop {
        if let Some(exit) = dev.child.as_mut().unwrap().try_wait().unwrap() {
            break exit;
        }
        assert!(started.elapsed() < STOP_CAP, "tern dev did not stop within {STOP_CAP:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    dev.child = None;
    assert!(exit.success(), "tern dev exited with {exit}");
    let left = processes_with_arg(&node_prefix);
    assert!(left.is_empty(), "node processes still running: {left:?}");
}
