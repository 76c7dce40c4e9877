//! Test harness: real Tern processes on loopback, each with its own port and data directory.
//!
//! A [`TernProcess`] runs a node binary (`tern` or the example application) as a child process, `dev` or a
//! cluster `node`, waits until its gateway answers, and can stop it gracefully (SIGTERM), kill it hard (`kill -9`)
//! and start it again on the same port and data directory. Readiness is polled with a generous cap, never assumed
//! after a fixed delay.

pub mod cluster;
pub mod dns;
pub mod netns;
pub mod regions;
pub mod syncs;
pub mod tmpfs;

use std::net::{TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// How long a node may take to start answering.
const START_CAP: Duration = Duration::from_secs(60);

/// A node process under test. Killed (hard) when dropped.
pub struct TernProcess {
    binary: PathBuf,
    /// `dev` or `node`.
    command: &'static str,
    data_dir: PathBuf,
    extra_args: Vec<String>,
    /// The command the binary runs under, e.g. `ip netns exec NS` (empty: run it directly).
    wrapper: Vec<String>,
    /// The address the gateway listens on and is reached at.
    host: String,
    port: u16,
    child: Option<Child>,
    log: PathBuf,
}

/// A port on 127.0.0.1 that was free a moment ago.
pub fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
    listener.local_addr().expect("local address").port()
}

/// A UDP port on 127.0.0.1 that was free a moment ago (for a node's QUIC transport).
pub fn free_udp_port() -> u16 {
    let socket = UdpSocket::bind("127.0.0.1:0").expect("bind an ephemeral UDP port");
    socket.local_addr().expect("local address").port()
}

/// The workspace's `target/debug/tern`, honouring `CARGO_TARGET_DIR` (another package's binary, so
/// `CARGO_BIN_EXE_tern` is not available; `ops/test.sh` builds every binary before it runs the tests).
pub fn tern_binary() -> PathBuf {
    workspace_binary("tern", "tern-node")
}

/// The workspace's `target/debug/NAME`, a binary of package `package`; panics, saying how to build it, if missing.
pub fn workspace_binary(name: &str, package: &str) -> PathBuf {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let target = match std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from) {
        Some(dir) if dir.is_absolute() => dir,
        Some(dir) => workspace.join(dir),
        None => workspace.join("target"),
    };
    let binary = target.join("debug").join(name);
    assert!(
        binary.exists(),
        "{} is missing: build it first (`cargo build -p {package} --bin {name}`, or ops/test.sh)",
        binary.display()
    );
    binary
}

impl TernProcess {
    /// Starts `binary dev` on a free port with data in `data_dir`, and waits until it serves.
    pub fn start(binary: &Path, data_dir: &Path) -> TernProcess {
        TernProcess::start_with(binary, data_dir, &[])
    }

    /// Like [`TernProcess::start`], with more arguments for `dev` (e.g. `--admin-token`).
    pub fn start_with(binary: &Path, data_dir: &Path, extra_args: &[&str]) -> TernProcess {
        TernProcess::launch(binary, "dev", data_dir, extra_args)
    }

    /// Starts `binary node` (a cluster node) with its gateway on a free port of 127.0.0.1, data in `data_dir`
    /// and `args` for the rest (`--region`, `--quic-listen`, `--join`, the TLS files, `--admin-token`, ...), and
    /// waits until its gateway serves.
    pub fn start_node(binary: &Path, data_dir: &Path, args: &[&str]) -> TernProcess {
        TernProcess::launch(binary, "node", data_dir, args)
    }

    /// Starts `binary node` inside a network namespace: run through `wrapper` (e.g. `ip netns exec NS`), with its
    /// gateway on `host:port` (an address of that namespace, reachable from the test), and waits until it serves.
    pub fn start_node_within(
        binary: &Path,
        data_dir: &Path,
        args: &[&str],
        wrapper: &[String],
        host: &str,
        port: u16,
    ) -> TernProcess {
        let mut process = TernProcess::new(binary, "node", data_dir, args);
        (process.wrapper, process.host, process.port) = (wrapper.to_vec(), host.to_string(), port);
        process.spawn();
        process
    }

    fn launch(binary: &Path, command: &'static str, data_dir: &Path, extra_args: &[&str]) -> TernProcess {
        let mut process = TernProcess::new(binary, command, data_dir, extra_args);
        process.spawn();
        process
    }

    fn new(binary: &Path, command: &'static str, data_dir: &Path, extra_args: &[&str]) -> TernProcess {
        TernProcess {
            binary: binary.to_path_buf(),
            command,
            data_dir: data_dir.to_path_buf(),
            extra_args: extra_args.iter().map(|a| a.to_string()).collect(),
            wrapper: Vec::new(),
            host: "127.0.0.1".to_string(),
            port: free_port(),
            child: None,
            log: data_dir.with_extension("log"),
        }
    }

    /// The gateway's base URL, e.g. `http://127.0.0.1:40123`.
    pub fn endpoint(&self) -> String {
        format!("http://{}:{}", self.host, self.port)
    }

    /// The running process's id, if it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Where the process writes its logs (kept for failure diagnosis).
    pub fn log_path(&self) -> &Path {
        &self.log
    }

    fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new().create(true).append(true).open(&self.log).expect("open the log file");
        let mut command = match self.wrapper.split_first() {
            Some((program, args)) => {
                let mut command = Command::new(program);
                command.args(args).arg(&self.binary);
                command
            }
            None => Command::new(&self.binary),
        };
        let child = command
            .arg(self.command)
            .arg("--listen")
            .arg(format!("{}:{}", self.host, self.port))
            .arg("--data-dir")
            .arg(&self.data_dir)
            .args(&self.extra_args)
            .env("RUST_LOG", "info")
            .stdout(Stdio::from(log.try_clone().expect("clone the log file")))
            .stderr(Stdio::from(log))
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", self.binary.display()));
        self.child = Some(child);
        self.wait_ready();
    }

    fn wait_ready(&mut self) {
        let started = Instant::now();
        while started.elapsed() < START_CAP {
            if std::net::TcpStream::connect((self.host.as_str(), self.port)).is_ok() {
                return;
            }
            if let Some(status) = self.child.as_mut().and_then(|c| c.try_wait().ok().flatten()) {
                // The log lives in the test's temporary directory, gone once the test ends: its end goes with the panic.
                let log = std::fs::read_to_string(&self.log).unwrap_or_default();
                let tail: Vec<&str> = log.lines().rev().take(20).collect::<Vec<_>>().into_iter().rev().collect();
                panic!("node exited with {status} before serving; log {}:\n{}", self.log.display(), tail.join("\n"));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("node did not serve within {START_CAP:?}; log: {}", self.log.display());
    }

    /// Kills the process with SIGKILL (no chance to flush anything) and waits for it to die.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().expect("kill -9");
            child.wait().expect("reap the killed node");
        }
    }

    /// Asks the process to stop (SIGTERM) without waiting for it: see [`wait_exit`](Self::wait_exit).
    pub fn sigterm(&self) {
        let child = self.child.as_ref().expect("the node is running");
        let status = Command::new("kill").arg("-TERM").arg(child.id().to_string()).status().expect("run kill");
        assert!(status.success(), "kill -TERM failed");
    }

    /// Asks the process to stop (SIGTERM) and waits for it to exit, at most a minute (then it is killed and the
    /// test fails); returns its exit status.
    pub fn terminate(&mut self) -> ExitStatus {
        self.sigterm();
        let mut child = self.child.take().expect("the node is running");
        let started = std::time::Instant::now();
        loop {
            if let Some(status) = child.try_wait().expect("wait for the node to stop") {
                return status;
            }
            if started.elapsed() > std::time::Duration::from_secs(60) {
                let _ = child.kill();
                let _ = child.wait();
                panic!("the node did not stop within 60 s of SIGTERM");
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }

    /// The process's data directory.
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// Waits (at most `cap`) for the process to exit on its own, e.g. at a crash point; its exit status, or `None`
    /// if it still runs.
    pub fn wait_exit(&mut self, cap: std::time::Duration) -> Option<ExitStatus> {
        let started = std::time::Instant::now();
        while started.elapsed() < cap {
            let child = self.child.as_mut()?;
            if let Some(status) = child.try_wait().expect("wait for the node") {
                self.child = None;
                return Some(status);
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        None
    }

    /// Starts the process again on the same port and data directory.
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "stop the node before restarting it");
        self.spawn();
    }
}

impl Drop for TernProcess {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// The longest any single request of a test may take before it fails: generous (the longest a test waits on
/// purpose is a 10 s queue send), a guard against a hang, never a verdict on speed.
pub const REQUEST_CAP: Duration = Duration::from_secs(60);

/// An HTTP client whose every request is bounded by [`REQUEST_CAP`], for tests that talk HTTP to nodes directly.
pub fn http_client() -> reqwest::Client {
    reqwest::Client::builder().timeout(REQUEST_CAP).build().expect("an HTTP client")
}

/// How long a test waits for one message, frame or close of a socket before it fails: a guard against a hang,
/// not a verdict on speed.
pub const FRAME_CAP: Duration = Duration::from_secs(30);

/// Awaits `future` for at most [`FRAME_CAP`]; panics naming `what` if it has not finished by then.
pub async fn bounded<F: std::future::Future>(what: &str, future: F) -> F::Output {
    match tokio::time::timeout(FRAME_CAP, future).await {
        Ok(output) => output,
        Err(_) => panic!("not within {FRAME_CAP:?}: {what}"),
    }
}

/// Sends `request` and returns its JSON body, whatever the status; panics if no JSON comes back.
pub async fn fetch_json(request: reqwest::RequestBuilder) -> serde_json::Value {
    let response = request.send().await.expect("the node answers");
    response.json().await.expect("a JSON body")
}

/// Polls `check` until it returns `Some`, for at most `cap`; panics with `what` otherwise.
pub async fn eventually<T, F, Fut>(what: &str, cap: Duration, check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    within(cap, check).await.unwrap_or_else(|| panic!("not within {cap:?}: {what}"))
}

/// Polls `check` every 50 ms until it returns `Some`, for at most `cap`; `None` if it never did (for a caller
/// that explains the failure itself).
pub async fn within<T, F, Fut>(cap: Duration, mut check: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let started = Instant::now();
    loop {
        if let Some(value) = check().await {
            return Some(value);
        }
        if started.elapsed() >= cap {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// An HTTP client of one node's gateway, for tests that drive actors directly. It keeps no idle connections, so it
/// keeps working across a node's restarts.
pub struct Api {
    /// The underlying client, for requests the helpers do not cover.
    pub http: reqwest::Client,
    /// The node's base URL.
    pub endpoint: String,
}

/// An error answer: the HTTP status, `group.code`, and the whole body. A request that got no answer (the node
/// is down) is status 0, code `transport.failed`, with the error's text as the body.
pub type ApiError = (u16, String, serde_json::Value);

impl Api {
    /// A client of `node`.
    pub fn new(node: &TernProcess) -> Api {
        // Bounded: no request of a test may hang it.
        let http =
            reqwest::Client::builder().pool_max_idle_per_host(0).timeout(REQUEST_CAP).build().expect("an HTTP client");
        Api { http, endpoint: node.endpoint() }
    }

    /// Creates (or finds) the actor `name` with a one-part `key` (`PUT /actors`); returns its id.
    pub async fn actor(&self, name: &str, key: &str) -> String {
        let body = serde_json::json!({"name": name, "key": key});
        let url = format!("{}/actors", self.endpoint);
        let created: serde_json::Value =
            self.http.put(url).json(&body).send().await.expect("PUT /actors").json().await.expect("JSON");
        created["actor"]["actor_id"].as_str().expect("an actor id").to_string()
    }

    /// Calls an action by actor id: the output, or the error.
    pub async fn call(
        &self,
        actor_id: &str,
        action: &str,
        args: serde_json::Value,
    ) -> Result<serde_json::Value, ApiError> {
        let url = format!("{}/gateway/{actor_id}/action/{action}", self.endpoint);
        let response = self.http.post(url).json(&serde_json::json!({ "args": args })).send().await;
        Self::answer(response, |body| body["output"].clone()).await
    }

    /// Sends `body` to the actor's queue `name`, waiting up to `wait_ms` for the completion when given: the
    /// answer (`{"status", "response"?}`), or the error.
    pub async fn send(
        &self,
        actor_id: &str,
        name: &str,
        body: serde_json::Value,
        wait_ms: Option<u64>,
    ) -> Result<serde_json::Value, ApiError> {
        let url = format!("{}/gateway/{actor_id}/queue/{name}", self.endpoint);
        let request = match wait_ms {
            Some(timeout) => serde_json::json!({"body": body, "wait": true, "timeout": timeout}),
            None => serde_json::json!({ "body": body }),
        };
        let response = self.http.post(url).json(&request).send().await;
        Self::answer(response, |body| body).await
    }

    async fn answer(
        response: reqwest::Result<reqwest::Response>,
        ok: impl FnOnce(serde_json::Value) -> serde_json::Value,
    ) -> Result<serde_json::Value, ApiError> {
        let response =
            response.map_err(|e| (0, "transport.failed".to_string(), serde_json::Value::String(e.to_string())))?;
        let status = response.status().as_u16();
        let body: serde_json::Value = response.json().await.unwrap_or(serde_json::Value::Null);
        if status == 200 {
            return Ok(ok(body));
        }
        let code = format!("{}.{}", body["group"].as_str().unwrap_or("?"), body["code"].as_str().unwrap_or("?"));
        Err((status, code, body))
    }
}

/// Every string in a JSON value (the rows of a query, whatever their shape), added to `out`.
pub fn strings(value: &serde_json::Value, out: &mut std::collections::BTreeSet<String>) {
    match value {
        serde_json::Value::String(s) => {
            out.insert(s.clone());
        }
        serde_json::Value::Array(items) => items.iter().for_each(|v| strings(v, out)),
        serde_json::Value::Object(fields) => fields.values().for_each(|v| strings(v, out)),
        _ => {}
    }
}

/// Inserts rows `w{writer}-{seq}` into the `sqlite` actor's table `t(w)` through `api` until `stop`, recording the
/// acknowledged ones in `acked` (a failed write waits 20 ms and goes on).
pub async fn insert_rows(
    api: Api,
    id: String,
    writer: usize,
    stop: std::sync::Arc<std::sync::Mutex<bool>>,
    acked: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
) {
    for seq in 0.. {
        if *stop.lock().expect("not poisoned") {
            return;
        }
        let row = format!("w{writer}-{seq}");
        let sql = format!("INSERT INTO t(w) VALUES ('{row}')");
        if api.call(&id, "execute", serde_json::json!([sql, null])).await.is_ok() {
            acked.lock().expect("not poisoned").push(row);
        } else {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}
