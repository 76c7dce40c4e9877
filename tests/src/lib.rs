//! Test harness: real Tern processes on loopback, each with its own port and data directory.
//!
//! A [`TernProcess`] runs a node binary (`tern` or the example application) as a child process, waits until its
//! gateway answers, and can stop it gracefully (SIGTERM), kill it hard (`kill -9`) and start it again on the
//! same port and data directory. Readiness is polled with a generous cap, never assumed after a fixed delay.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// How long a node may take to start answering.
const START_CAP: Duration = Duration::from_secs(60);

/// A node process under test. Killed (hard) when dropped.
pub struct TernProcess {
    binary: PathBuf,
    data_dir: PathBuf,
    extra_args: Vec<String>,
    port: u16,
    child: Option<Child>,
    log: PathBuf,
}

/// A port on 127.0.0.1 that was free a moment ago.
pub fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
    listener.local_addr().expect("local address").port()
}

impl TernProcess {
    /// Starts `binary dev` on a free port with data in `data_dir`, and waits until it serves.
    pub fn start(binary: &Path, data_dir: &Path) -> TernProcess {
        TernProcess::start_with(binary, data_dir, &[])
    }

    /// Like [`TernProcess::start`], with more arguments for `dev` (e.g. `--admin-token`).
    pub fn start_with(binary: &Path, data_dir: &Path, extra_args: &[&str]) -> TernProcess {
        let mut process = TernProcess {
            binary: binary.to_path_buf(),
            data_dir: data_dir.to_path_buf(),
            extra_args: extra_args.iter().map(|a| a.to_string()).collect(),
            port: free_port(),
            child: None,
            log: data_dir.with_extension("log"),
        };
        process.spawn();
        process
    }

    /// The gateway's base URL, e.g. `http://127.0.0.1:40123`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Where the process writes its logs (kept for failure diagnosis).
    pub fn log_path(&self) -> &Path {
        &self.log
    }

    fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new().create(true).append(true).open(&self.log).expect("open the log file");
        let child = Command::new(&self.binary)
            .arg("dev")
            .arg("--listen")
            .arg(format!("127.0.0.1:{}", self.port))
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
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return;
            }
            if let Some(status) = self.child.as_mut().and_then(|c| c.try_wait().ok().flatten()) {
                panic!("node exited with {status} before serving; log: {}", self.log.display());
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

    /// Asks the process to stop (SIGTERM) and waits for it to exit; returns its exit status.
    pub fn terminate(&mut self) -> ExitStatus {
        let mut child = self.child.take().expect("the node is running");
        let status = Command::new("kill").arg("-TERM").arg(child.id().to_string()).status().expect("run kill");
        assert!(status.success(), "kill -TERM failed");
        child.wait().expect("wait for the node to stop")
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

/// Polls `check` until it returns `Some`, for at most `cap`; panics with `what` otherwise.
pub async fn eventually<T, F, Fut>(what: &str, cap: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let started = Instant::now();
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(started.elapsed() < cap, "not within {cap:?}: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
