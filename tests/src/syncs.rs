//! Which files a running process syncs to disk, watched from outside with strace: every `fsync` and `fdatasync`
//! of the process and its threads, with the path of the file synced. A sync is what makes a write survive a power
//! loss, which no test here can cause; watching the calls is how a test tells a durable write from one left in
//! the page cache. Needs strace and the right to trace the process (root, or the process's own user with ptrace
//! allowed).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStderr, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// How long strace may take to attach to every thread of the process.
const ATTACH_CAP: Duration = Duration::from_secs(30);

/// strace attached to a process, recording its syncs until [`finish`](Self::finish).
pub struct SyncTrace {
    strace: Child,
    output: tempfile::NamedTempFile,
}

impl SyncTrace {
    /// Attaches to process `pid` and every thread it has or starts, and returns once every thread is traced (so
    /// that no sync made after this call is missed). Panics if strace is missing or cannot attach.
    pub fn attach(pid: u32) -> SyncTrace {
        let output = tempfile::NamedTempFile::new().expect("a file for strace's output");
        let mut strace = Command::new("strace")
            .args(["-f", "-y", "-e", "trace=fsync,fdatasync", "-o"])
            .arg(output.path())
            .arg("-p")
            .arg(pid.to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run strace (the sync tests need it: apt-get install strace): {e}"));
        let stderr = strace.stderr.take().expect("strace's stderr");
        let mut trace = SyncTrace { strace, output };
        trace.wait_attached(pid, stderr);
        trace
    }

    /// Reads strace's messages until it says it attached (`Process N attached with M threads`: it attaches to
    /// every thread first, then says so).
    fn wait_attached(&mut self, pid: u32, stderr: ChildStderr) {
        let (lines, said) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if lines.send(line).is_err() {
                    return;
                }
            }
        });
        let mut heard = Vec::new();
        loop {
            match said.recv_timeout(ATTACH_CAP) {
                Ok(line) if line.contains(&format!("Process {pid} attached")) => return,
                Ok(line) => heard.push(line),
                Err(e) => {
                    let _ = self.strace.kill();
                    panic!("strace did not attach to process {pid} within {ATTACH_CAP:?} ({e}): {heard:?}");
                }
            }
        }
    }

    /// Detaches (the process runs on) and returns the path of the file each sync was for, in order.
    pub fn finish(mut self) -> Vec<PathBuf> {
        let interrupted = Command::new("kill").arg("-INT").arg(self.strace.id().to_string()).status();
        assert!(interrupted.is_ok_and(|s| s.success()), "cannot stop strace");
        self.strace.wait().expect("strace stops");
        let text = std::fs::read_to_string(self.output.path()).expect("strace's output");
        text.lines().filter_map(synced_path).collect()
    }
}

/// The path in a line such as `1234 fsync(17</data/actors/0a/0af8.db-wal>) = 0` (the thread id first when strace
/// follows several), for a sync that succeeded.
fn synced_path(line: &str) -> Option<PathBuf> {
    let call = match line.split_once(' ') {
        Some((pid, call)) if pid.bytes().all(|b| b.is_ascii_digit()) => call.trim_start(),
        _ => line,
    };
    if !(call.starts_with("fsync(") || call.starts_with("fdatasync(")) || !call.ends_with("= 0") {
        return None;
    }
    let (_, rest) = call.split_once('<')?;
    let (path, _) = rest.rsplit_once(">)")?;
    Some(PathBuf::from(path))
}

/// How many of `synced` are files whose name starts with `prefix` (a database and its `-wal`, `-journal`, ...),
/// anywhere under `dir`.
pub fn count_under(synced: &[PathBuf], dir: &Path, prefix: &str) -> usize {
    let named = |path: &&PathBuf| path.file_name().is_some_and(|name| name.to_string_lossy().starts_with(prefix));
    synced.iter().filter(|path| path.starts_with(dir)).filter(named).count()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strace_lines_give_the_synced_paths() {
        assert_eq!(synced_path("12556 fsync(17</d/a.db-wal>) = 0"), Some(PathBuf::from("/d/a.db-wal")));
        assert_eq!(synced_path("fdatasync(3</d/node.db>) = 0"), Some(PathBuf::from("/d/node.db")));
        assert_eq!(synced_path("12 fsync(17</d/a.db-wal>) = -1 EIO (Input/output error)"), None);
        assert_eq!(synced_path("12 +++ exited with 0 +++"), None);
        let synced = [PathBuf::from("/d/actors/0a/0af8.db-wal"), PathBuf::from("/d/node.db-wal")];
        assert_eq!(count_under(&synced, Path::new("/d/actors"), "0af8.db"), 1);
        assert_eq!(count_under(&synced, Path::new("/d"), "node.db"), 1);
        assert_eq!(count_under(&synced, Path::new("/elsewhere"), "node.db"), 0);
    }
}
