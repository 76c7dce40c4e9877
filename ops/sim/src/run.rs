//! Runs: what one simulation owns, and its removal.
//!
//! A run has a random id; everything it makes carries it: its namespaces are `tsim-ID-...`, its link in the root
//! namespace is `tsim-ID`, its files live in `/tmp/tern-sim/ID` (a fixed place, so every program finds every run). The directory holds `owner` (the process
//! whose life bounds the run: the test or program that started it, or the relay of a cluster `tern-sim up`
//! left running) and, for such a cluster, `detached`. A run whose owner is gone is a leftover of an aborted run,
//! removed by the next run that starts and by `tern-sim down`. Removal is by name, so it finds whatever the run
//! had made when it stopped.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::netns;

/// The prefix of every name a run makes.
const PREFIX: &str = "tsim-";
/// How long processes get to stop after SIGTERM before they are killed.
const STOP_CAP: Duration = Duration::from_secs(10);

/// One simulation's identity and directory.
#[derive(Debug)]
pub struct Run {
    id: String,
    dir: PathBuf,
}

/// The directory that holds every run's directory.
fn runs_dir() -> PathBuf {
    PathBuf::from("/tmp/tern-sim")
}

/// When process `pid` started (in clock ticks since boot), if it runs (a zombie does not): with the pid, this
/// identifies a process, so a reused pid is not mistaken for it.
fn started_at(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may hold spaces): the state is the 1st, the start time the 20th.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    (fields.first() != Some(&"Z")).then_some(())?;
    fields.get(19)?.parse().ok()
}

impl Run {
    /// Claims a new run owned by this process.
    pub fn create() -> Result<Run, String> {
        let root = runs_dir();
        std::fs::create_dir_all(&root).map_err(|e| format!("cannot create {}: {e}", root.display()))?;
        let taken = netns::namespaces()?;
        loop {
            let id = format!("{:06x}", rand::random::<u32>() & 0xff_ffff);
            let prefix = format!("{PREFIX}{id}-");
            if taken.iter().any(|n| n.starts_with(&prefix)) {
                continue;
            }
            // The directory appears whole (with its owner) or not at all, so a sweep never sees a run half-made;
            // renaming onto an existing run's directory (never empty) fails.
            let staging = root.join(format!(".{id}"));
            match std::fs::create_dir(&staging) {
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(format!("cannot create {}: {e}", staging.display())),
                Ok(()) => {}
            }
            let run = Run { id, dir: staging };
            run.set_owner(std::process::id())?;
            let dir = root.join(&run.id);
            if std::fs::rename(&run.dir, &dir).is_ok() {
                return Ok(Run { dir, ..run });
            }
            let _ = std::fs::remove_dir_all(&run.dir);
        }
    }

    /// The run's id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The run's directory (data, logs, certificates), removed with the run.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The full name of the run's namespace `suffix`: `tsim-ID-SUFFIX`.
    pub fn namespace(&self, suffix: &str) -> String {
        format!("{PREFIX}{}-{suffix}", self.id)
    }

    /// The run's link in the root namespace.
    pub fn root_link(&self) -> String {
        format!("{PREFIX}{}", self.id)
    }

    /// Hands the run to process `pid`: it is a leftover once that process is gone, and `tern-sim down` removes it.
    pub fn detach(&self, pid: u32) -> Result<(), String> {
        self.set_owner(pid)?;
        let marker = self.dir.join("detached");
        std::fs::write(&marker, b"").map_err(|e| format!("cannot write {}: {e}", marker.display()))
    }

    fn set_owner(&self, pid: u32) -> Result<(), String> {
        let start = started_at(pid).ok_or_else(|| format!("process {pid} is not running"))?;
        let file = self.dir.join("owner");
        std::fs::write(&file, format!("{pid} {start}\n")).map_err(|e| format!("cannot write {}: {e}", file.display()))
    }
}

/// The ids of every run that left something on the machine: a directory, a namespace or a root link.
fn all_runs() -> Result<BTreeSet<String>, String> {
    let id_of = |name: &str| {
        let id = name.strip_prefix(PREFIX)?.split(['-', '@']).next()?;
        (id.len() == 6 && id.chars().all(|c| c.is_ascii_hexdigit())).then(|| id.to_string())
    };
    let mut ids: BTreeSet<String> = netns::namespaces()?.iter().filter_map(|n| id_of(n)).collect();
    for line in netns::ip(&["-o", "link", "show"])?.lines() {
        ids.extend(line.split(": ").nth(1).and_then(id_of));
    }
    if let Ok(dirs) = std::fs::read_dir(runs_dir()) {
        ids.extend(dirs.flatten().filter_map(|d| id_of(&format!("{PREFIX}{}", d.file_name().to_string_lossy()))));
    }
    Ok(ids)
}

/// Whether run `id`'s owner still runs.
fn is_alive(id: &str) -> bool {
    let owner = std::fs::read_to_string(runs_dir().join(id).join("owner")).unwrap_or_default();
    let mut fields = owner.split_whitespace().map(str::parse::<u64>);
    match (fields.next(), fields.next()) {
        (Some(Ok(pid)), Some(Ok(start))) => u32::try_from(pid).ok().and_then(started_at) == Some(start),
        _ => false,
    }
}

/// The runs left behind by aborted runs (their owner is gone).
pub fn leftovers() -> Result<Vec<String>, String> {
    Ok(all_runs()?.into_iter().filter(|id| !is_alive(id)).collect())
}

/// The runs `tern-sim up` left running.
pub fn detached() -> Result<Vec<String>, String> {
    Ok(all_runs()?.into_iter().filter(|id| is_alive(id) && runs_dir().join(id).join("detached").exists()).collect())
}

/// Removes everything run `id` made: [`stop`]s it and removes its directory.
pub fn tear_down(id: &str) -> Result<(), String> {
    stop(id)?;
    let dir = runs_dir().join(id);
    match std::fs::remove_dir_all(&dir) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(format!("cannot remove {}: {e}", dir.display())),
        _ => Ok(()),
    }
}

/// Stops the processes in run `id`'s namespaces (SIGTERM, then SIGKILL after a while) and deletes the namespaces
/// (and with them their links and routes) and its root link; its directory stays, and makes it a leftover.
pub fn stop(id: &str) -> Result<(), String> {
    let prefix = format!("{PREFIX}{id}-");
    let namespaces: Vec<String> = netns::namespaces()?.into_iter().filter(|n| n.starts_with(&prefix)).collect();
    let running = || -> Vec<u32> {
        namespaces.iter().flat_map(|n| netns::pids(n)).filter(|&pid| started_at(pid).is_some()).collect()
    };
    for (signal, cap) in [(libc::SIGTERM, STOP_CAP), (libc::SIGKILL, Duration::from_secs(5))] {
        for pid in running() {
            // SAFETY: kill only sends a signal; the pid is a process inside this run's own namespaces.
            unsafe { libc::kill(pid as libc::pid_t, signal) };
        }
        let started = Instant::now();
        while !running().is_empty() && started.elapsed() < cap {
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    if let Some(pid) = running().first() {
        return Err(format!("process {pid} of run {id} does not stop"));
    }
    for namespace in &namespaces {
        // Another process sweeping the same leftovers may have deleted it first.
        if let Err(e) = netns::ip(&["netns", "del", namespace])
            && netns::namespaces()?.contains(namespace)
        {
            return Err(e);
        }
    }
    // The root link goes with its peer in the run's namespace; delete it in case the namespace never got it.
    let _ = netns::ip(&["link", "del", &format!("{PREFIX}{id}")]);
    Ok(())
}
