//! The node under test: this same binary, re-executed as a Tern node with the ready actors plus `resident`, an
//! actor that never sleeps (for the memory measurement), in a release build.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tern_node::{Actor, ActorOptions};

/// Environment variable that turns this binary into the node.
pub const NODE_MODE: &str = "TERN_BENCH_NODE";

/// Runs the node (when re-executed with [`NODE_MODE`] set); returns its exit code.
pub fn run_node() -> std::process::ExitCode {
    let resident = Actor::<()>::new("resident")
        .options(ActorOptions { no_sleep: true, ..ActorOptions::default() })
        .action("ping", |_c, ()| async move { Ok(()) });
    tern_node::cli::main(tern_node::ready::registry().register(resident))
}

/// A running node process, killed when dropped.
pub struct Node {
    child: Child,
    /// The node's gateway, e.g. `http://127.0.0.1:40123`.
    pub endpoint: String,
}

impl Node {
    /// Starts the node on `port` with data in `data_dir` and waits until it serves.
    pub fn start(port: u16, data_dir: &Path) -> Node {
        let exe = std::env::current_exe().expect("the bench binary's path");
        let child = Command::new(exe)
            .env(NODE_MODE, "1")
            .env("RUST_LOG", "warn")
            .args(["dev", "--listen", &format!("127.0.0.1:{port}"), "--data-dir"])
            .arg(data_dir)
            .stdout(Stdio::null())
            .spawn()
            .expect("start the node");
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(started.elapsed() < Duration::from_secs(60), "the node did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        Node { child, endpoint: format!("http://127.0.0.1:{port}") }
    }

    /// The node's resident set size, in bytes.
    pub fn rss_bytes(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).expect("read /proc status");
        let kb: u64 = status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmRSS in /proc status");
        kb * 1024
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
