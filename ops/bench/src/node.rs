//! The node under test: this same binary, re-executed as a Tern node with the ready actors plus the bench-only
//! actors of [`crate::actors`], in a release build.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::actors;

/// Environment variable that turns this binary into the node.
pub const NODE_MODE: &str = "TERN_BENCH_NODE";

/// Runs the node (when re-executed with [`NODE_MODE`] set); returns its exit code.
pub fn run_node() -> std::process::ExitCode {
    let registry = tern_node::ready::registry()
        .register(actors::resident())
        .register(actors::queue())
        .register(actors::kv())
        .register(actors::sql());
    tern_node::cli::main(registry)
}

/// A running node process, killed when dropped.
pub struct Node {
    child: Child,
    /// The node's gateway, e.g. `http://127.0.0.1:40123`.
    pub endpoint: String,
}

/// Where a node's memory is, in bytes.
#[derive(Clone, Copy, Debug, Default)]
pub struct Memory {
    /// Resident in RAM.
    pub rss: u64,
    /// Held by SQLite (page caches, schemas, statements).
    pub sqlite: u64,
    /// In live allocations, and freed but kept by the allocator.
    pub heap_in_use: u64,
    pub heap_free: u64,
}

impl Node {
    /// Starts a development node (`dev`) on `port` with data in `data_dir` and waits until it serves.
    pub fn start(port: u16, data_dir: &Path) -> Node {
        Node::start_with("dev", port, data_dir, &[])
    }

    /// Starts the node as `command` (`dev` or `node`) on `port` with data in `data_dir` and more `args`, and waits
    /// until it serves.
    pub fn start_with(command: &str, port: u16, data_dir: &Path, args: &[String]) -> Node {
        Node::launch(&[], command, "127.0.0.1", port, data_dir, args)
    }

    /// Starts a cluster node (`node`) inside a simulated host: `wrapper` runs it in the host's network namespace,
    /// its gateway listens on `ip`:`port` (which this process reaches directly), with data in `data_dir` and
    /// more `args`; waits until it serves.
    pub fn start_within(wrapper: &[String], ip: &str, port: u16, data_dir: &Path, args: &[String]) -> Node {
        Node::launch(wrapper, "node", ip, port, data_dir, args)
    }

    /// Runs this binary as the node (behind `wrapper`, a command prefix, when not empty) and waits until its
    /// gateway at `ip`:`port` accepts connections.
    fn launch(wrapper: &[String], command: &str, ip: &str, port: u16, data_dir: &Path, args: &[String]) -> Node {
        let exe = std::env::current_exe().expect("the bench binary's path");
        let mut line = wrapper.iter().map(std::ffi::OsString::from).collect::<Vec<_>>();
        line.push(exe.into_os_string());
        let child = Command::new(&line[0])
            .args(&line[1..])
            .env(NODE_MODE, "1")
            .env("RUST_LOG", "warn")
            .args([command, "--listen", &format!("{ip}:{port}"), "--data-dir"])
            .arg(data_dir)
            .args(args)
            .stdout(Stdio::null())
            .spawn()
            .expect("start the node");
        let started = Instant::now();
        while std::net::TcpStream::connect((ip, port)).is_err() {
            assert!(started.elapsed() < Duration::from_secs(60), "the node did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        Node { child, endpoint: format!("http://{ip}:{port}") }
    }

    /// CPU time used so far by the node and by this process.
    pub fn cpu_times(&self) -> CpuTimes {
        CpuTimes { node: process_cpu(&self.child.id().to_string()), client: process_cpu("self") }
    }

    /// Where the node's memory is: its resident set, SQLite's share and the allocator's (from its `/metrics`).
    pub async fn memory(&self) -> Memory {
        let text =
            reqwest::get(format!("{}/metrics", self.endpoint)).await.expect("metrics").text().await.expect("text");
        let gauge = |name: &str| {
            text.lines()
                .find_map(|line| line.strip_prefix(name)?.strip_prefix(' '))
                .and_then(|value| value.trim().parse::<f64>().ok())
                .unwrap_or_else(|| panic!("{name} in the node's metrics")) as u64
        };
        Memory {
            rss: self.rss_bytes(),
            sqlite: gauge("tern_sqlite_memory_bytes"),
            heap_in_use: gauge("tern_heap_bytes{state=\"in_use\"}"),
            heap_free: gauge("tern_heap_bytes{state=\"free\"}"),
        }
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

/// Clock ticks per second in `/proc/<pid>/stat` (Linux's `USER_HZ`, 100 on every mainstream architecture).
const USER_HZ: f64 = 100.0;

/// CPU time (user + system, all threads) a process has used, from `/proc/<pid>/stat`.
fn process_cpu(pid: &str) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("read /proc stat");
    // Fields after the command name (which is in parentheses and may hold spaces): state is field 3, utime
    // field 14 and stime field 15.
    let after_name = &stat[stat.rfind(')').expect("command name in /proc stat") + 1..];
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let ticks: u64 = fields[11].parse::<u64>().expect("utime") + fields[12].parse::<u64>().expect("stime");
    Duration::from_secs_f64(ticks as f64 / USER_HZ)
}

/// CPU time used so far by the node and by this process (the client), at one moment.
#[derive(Debug, Clone, Copy)]
pub struct CpuTimes {
    node: Duration,
    client: Duration,
}

impl CpuTimes {
    /// CPU per operation since `self` for `ops` operations, as "node + client µs" (10 ms resolution, so only
    /// meaningful over runs of a second or more).
    pub fn per_op_since(&self, now: CpuTimes, ops: f64) -> String {
        let per_op = |before: Duration, after: Duration| after.saturating_sub(before).as_secs_f64() * 1e6 / ops;
        format!("{:.1} + {:.1} µs", per_op(self.node, now.node), per_op(self.client, now.client))
    }
}

impl Node {
    /// Stops the node as an operator would (SIGTERM: it puts its actors to sleep first) and waits until it exits.
    pub fn stop(&mut self) {
        let pid = self.child.id().to_string();
        let sent = Command::new("kill").args(["-TERM", &pid]).status().expect("run kill");
        assert!(sent.success(), "SIGTERM to the node");
        let _ = self.child.wait();
    }

    /// How many file descriptors the node has open.
    pub fn open_files(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/fd", self.child.id())).expect("read /proc fd").count()
    }

    /// Kills the node with SIGKILL (as a crash would).
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
