//! The data directory: its exclusive lock, its on-disk format version, and where each file lives.
//!
//! Layout: `FORMAT` (the format version), `LOCK` (held with an exclusive advisory lock while a process uses the
//! directory), `node.db` (the node's metadata), `actors/<xx>/<actor_id>.db` (one database per actor, fanned out
//! by the first two characters of the id so no directory grows too large), `tmp/` (short-lived files: exports, new
//! actors' files before they are linked into place; emptied whenever the directory is opened, since what is there
//! then was left by a process that stopped).

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// The format of the data directory written by this version. A directory with a newer format is refused.
pub const FORMAT_VERSION: u32 = 1;

/// An open, exclusively locked data directory. The lock is released when this value is dropped.
#[derive(Debug)]
pub struct DataDir {
    root: PathBuf,
    _lock: File,
}

/// Why a data directory could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum DataDirError {
    #[error("cannot use data directory {path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("data directory {0} is in use by another Tern process")]
    Locked(PathBuf),
    #[error("data directory {path} has format version {found}, but this Tern understands only up to {FORMAT_VERSION}")]
    UnsupportedFormat { path: PathBuf, found: String },
}

impl DataDir {
    /// Creates the directory if needed, takes its exclusive lock (failing at once if another process holds it),
    /// and checks or writes its format version.
    pub fn open(root: &Path) -> Result<DataDir, DataDirError> {
        let io_err = |source| DataDirError::Io { path: root.to_path_buf(), source };
        fs::create_dir_all(root.join("actors")).map_err(io_err)?;
        let lock =
            OpenOptions::new().create(true).truncate(false).write(true).open(root.join("LOCK")).map_err(io_err)?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(fs::TryLockError::WouldBlock) => return Err(DataDirError::Locked(root.to_path_buf())),
            Err(fs::TryLockError::Error(e)) => return Err(io_err(e)),
        }
        let format_path = root.join("FORMAT");
        match fs::read_to_string(&format_path) {
            Ok(text) => {
                let found = text.trim();
                match found.parse::<u32>() {
                    Ok(v) if v <= FORMAT_VERSION => {}
                    _ => {
                        return Err(DataDirError::UnsupportedFormat {
                            path: root.to_path_buf(),
                            found: found.to_string(),
                        });
                    }
                }
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                let mut f = File::create(&format_path).map_err(io_err)?;
                writeln!(f, "{FORMAT_VERSION}").map_err(io_err)?;
                f.sync_all().map_err(io_err)?;
            }
            Err(e) => return Err(io_err(e)),
        }
        // Only this process uses the directory now: what a stopped one left in `tmp/` is of no use.
        match fs::remove_dir_all(root.join("tmp")) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(io_err(e)),
            _ => {}
        }
        Ok(DataDir { root: root.to_path_buf(), _lock: lock })
    }

    /// The directory's root.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Path of the node's metadata database.
    pub fn node_db_path(&self) -> PathBuf {
        self.root.join("node.db")
    }

    /// Path of an actor's database. The parent directory is created on demand by [`DataDir::ensure_actor_dir`].
    pub fn actor_db_path(&self, actor_id: &str) -> PathBuf {
        let shard: String = actor_id.chars().take(2).collect();
        self.root.join("actors").join(shard).join(format!("{actor_id}.db"))
    }

    /// Where this node keeps its replica of another node's actor database.
    pub fn replica_db_path(&self, actor_id: &str) -> PathBuf {
        let shard: String = actor_id.chars().take(2).collect();
        self.root.join("replicas").join(shard).join(format!("{actor_id}.db"))
    }

    /// Creates the shard directory for an actor's database.
    pub fn ensure_actor_dir(&self, actor_id: &str) -> io::Result<()> {
        match self.actor_db_path(actor_id).parent() {
            Some(parent) => fs::create_dir_all(parent),
            None => Ok(()),
        }
    }

    /// A path for a short-lived file (an export in progress, a new actor's file) in the directory's `tmp` folder,
    /// created on demand.
    pub fn scratch_path(&self, file_name: &str) -> PathBuf {
        let dir = self.root.join("tmp");
        if let Err(e) = fs::create_dir_all(&dir) {
            tracing::warn!(dir = %dir.display(), error = %e, "cannot create the scratch directory");
        }
        dir.join(file_name)
    }

    /// Total size in bytes of every actor's database files (walks the actors directory).
    pub fn actors_size(&self) -> u64 {
        fn walk(dir: &Path) -> u64 {
            let Ok(entries) = fs::read_dir(dir) else { return 0 };
            entries
                .flatten()
                .map(|entry| match entry.file_type() {
                    Ok(t) if t.is_dir() => walk(&entry.path()),
                    Ok(_) => entry.metadata().map(|m| m.len()).unwrap_or(0),
                    Err(_) => 0,
                })
                .sum()
        }
        walk(&self.root.join("actors"))
    }

    /// Removes an actor's database and its WAL and shared-memory files. Missing files are not an error.
    pub fn remove_actor_files(&self, actor_id: &str) -> io::Result<()> {
        let db = self.actor_db_path(actor_id);
        for suffix in ["", "-wal", "-shm"] {
            let mut path = db.clone().into_os_string();
            path.push(suffix);
            match fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

/// The total size of the actors' files, re-measured (by walking them) only when the last measure is older than ten
/// times what that walk took: measuring costs at most a tenth of one core, and a directory of a million actors is
/// walked every half minute or so rather than on every scrape.
#[derive(Default)]
pub struct ActorsSize {
    /// When the last walk ended, how long it took and what it found.
    last: std::sync::Mutex<Option<(std::time::Instant, std::time::Duration, u64)>>,
}

impl ActorsSize {
    /// The size of `dir`'s actor files, as of the last walk (walking now if that is due). Blocks while it walks.
    pub fn read(&self, dir: &DataDir) -> u64 {
        let mut last = self.last.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some((ended, took, size)) = *last
            && ended.elapsed() < took * 10
        {
            return size;
        }
        let started = std::time::Instant::now();
        let size = dir.actors_size();
        *last = Some((std::time::Instant::now(), started.elapsed(), size));
        size
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_open_is_refused_while_locked() {
        let dir = tempfile::tempdir().unwrap();
        let first = DataDir::open(dir.path()).unwrap();
        assert!(matches!(DataDir::open(dir.path()), Err(DataDirError::Locked(_))));
        drop(first);
        DataDir::open(dir.path()).unwrap();
    }

    #[test]
    fn what_a_stopped_process_left_in_tmp_is_removed_on_open() {
        let dir = tempfile::tempdir().unwrap();
        let data = DataDir::open(dir.path()).unwrap();
        let left = data.scratch_path("new-actor-0123456789abcdef.db");
        fs::write(&left, b"a copy a crash interrupted").unwrap();
        drop(data);
        let data = DataDir::open(dir.path()).unwrap();
        assert!(!left.exists(), "the leftover is gone");
        assert!(data.scratch_path("x").parent().unwrap().is_dir(), "the scratch directory is there to use");
    }

    #[test]
    fn newer_format_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("FORMAT"), "99\n").unwrap();
        assert!(matches!(DataDir::open(dir.path()), Err(DataDirError::UnsupportedFormat { .. })));
    }
}
