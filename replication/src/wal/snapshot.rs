//! Page-exact copies of a database file, to start a new replica or one that fell too far behind.
//!
//! Within a generation the home never checkpoints, so its database file stays exactly what it was when the
//! generation began: a copy of the file is the database at `(generation, 0)`, and the replica continues with the
//! generation's frames. The copy travels in chunks and can resume at any offset; it is checked whole (length and
//! CRC-32) before it replaces anything.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use super::error::WalError;
use super::state::WalState;

/// What a snapshot is: the state it starts the replica at, and its size and checksum.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    /// The replica's state once installed: `(generation, 0)` and where the previous generation ended.
    pub state: WalState,
    /// The file's length in bytes.
    pub size: u64,
    /// CRC-32 of the whole file.
    pub crc32: u32,
}

impl Snapshot {
    /// Describes the home's database file at `path` for a copy at the start of `state`'s generation (the home must
    /// not checkpoint while the copy is read: the caller holds it off).
    pub fn describe(path: &Path, state: WalState) -> Result<Snapshot, WalError> {
        let (hasher, size) = crc_of(path)?;
        Ok(Snapshot { state: WalState { frame: 0, ..state }, size, crc32: hasher.finalize() })
    }

    /// Up to `max_len` bytes of the file at `path` from `offset`.
    pub fn read_chunk(path: &Path, offset: u64, max_len: usize) -> Result<Bytes, WalError> {
        let mut file = File::open(path).map_err(WalError::io(format!("opening {}", path.display())))?;
        file.seek(SeekFrom::Start(offset)).map_err(WalError::io("seeking in the snapshot"))?;
        let mut buf = Vec::with_capacity(max_len);
        file.take(max_len as u64).read_to_end(&mut buf).map_err(WalError::io("reading the snapshot"))?;
        Ok(Bytes::from(buf))
    }
}

/// The CRC-32 state of the file at `path` (empty when it does not exist) and its length.
fn crc_of(path: &Path) -> Result<(crc32fast::Hasher, u64), WalError> {
    let mut hasher = crc32fast::Hasher::new();
    let mut file = match File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((hasher, 0)),
        Err(e) => return Err(WalError::io(format!("opening {}", path.display()))(e)),
    };
    let mut buf = vec![0u8; 1 << 20];
    let mut size = 0u64;
    loop {
        let n = file.read(&mut buf).map_err(WalError::io(format!("reading {}", path.display())))?;
        if n == 0 {
            return Ok((hasher, size));
        }
        hasher.update(&buf[..n]);
        size += n as u64;
    }
}

/// A snapshot being received next to the replica's file; it survives a restart and resumes where it stopped.
pub struct SnapshotReceiver {
    snapshot: Snapshot,
    target: PathBuf,
    partial: PathBuf,
    file: File,
    received: u64,
    /// CRC-32 of the bytes received so far.
    hasher: crc32fast::Hasher,
}

impl SnapshotReceiver {
    /// Starts (or resumes, if an earlier attempt at the same snapshot left bytes) receiving `snapshot` for the
    /// replica file `target`. Partial files of other snapshots are removed.
    pub fn start(target: &Path, snapshot: Snapshot) -> Result<SnapshotReceiver, WalError> {
        let dir = target.parent().unwrap_or(Path::new("."));
        let name = target.file_name().and_then(|n| n.to_str()).unwrap_or("db");
        let prefix = format!("{name}.snapshot-");
        let partial =
            dir.join(format!("{prefix}{}-{}-{:08x}", snapshot.state.generation, snapshot.size, snapshot.crc32));
        for entry in std::fs::read_dir(dir).map_err(WalError::io(format!("listing {}", dir.display())))? {
            let path = entry.map_err(WalError::io("listing snapshots"))?.path();
            let stale = path.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with(&prefix));
            if stale && path != partial {
                std::fs::remove_file(&path).map_err(WalError::io(format!("removing {}", path.display())))?;
            }
        }
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&partial)
            .map_err(WalError::io(format!("opening {}", partial.display())))?;
        let mut received = file.metadata().map_err(WalError::io("reading the partial snapshot"))?.len();
        if received > snapshot.size {
            file.set_len(0).map_err(WalError::io("resetting the partial snapshot"))?;
            received = 0;
        }
        // The bytes an earlier attempt left count towards the checksum.
        let (hasher, hashed) = crc_of(&partial)?;
        if hashed != received {
            return Err(WalError::Corrupt(format!("the partial snapshot changed while it was read ({hashed} bytes)")));
        }
        Ok(SnapshotReceiver { snapshot, target: target.to_path_buf(), partial, file, received, hasher })
    }

    /// The snapshot being received.
    pub fn snapshot(&self) -> Snapshot {
        self.snapshot
    }

    /// How many bytes are here: the offset to ask for next.
    pub fn received(&self) -> u64 {
        self.received
    }

    /// Whether every byte is here.
    pub fn is_complete(&self) -> bool {
        self.received == self.snapshot.size
    }

    /// Appends the chunk that starts at `offset` (which must be [`SnapshotReceiver::received`]).
    pub fn write(&mut self, offset: u64, chunk: &[u8]) -> Result<(), WalError> {
        if offset != self.received {
            return Err(WalError::Corrupt(format!("a chunk at {offset}, expected one at {}", self.received)));
        }
        if self.received + chunk.len() as u64 > self.snapshot.size {
            return Err(WalError::Corrupt(format!("chunks beyond the snapshot's {} bytes", self.snapshot.size)));
        }
        self.file.write_all(chunk).map_err(WalError::io("writing the snapshot"))?;
        self.hasher.update(chunk);
        self.received += chunk.len() as u64;
        Ok(())
    }

    /// Checks the whole copy and puts it in place of the replica's file (any old file and WAL are removed);
    /// returns the state to open the replica with. A copy that fails its check is deleted, to be received again.
    pub fn finish(self) -> Result<WalState, WalError> {
        self.file.sync_all().map_err(WalError::io("syncing the snapshot"))?;
        drop(self.file);
        let (size, crc) = (self.received, self.hasher.finalize());
        if size != self.snapshot.size || crc != self.snapshot.crc32 {
            let _ = std::fs::remove_file(&self.partial);
            return Err(WalError::Corrupt(format!(
                "the snapshot has {size} bytes with CRC {crc:08x}, expected {} bytes with CRC {:08x}",
                self.snapshot.size, self.snapshot.crc32
            )));
        }
        for suffix in ["-wal", "-shm"] {
            let side = PathBuf::from(format!("{}{suffix}", self.target.display()));
            match std::fs::remove_file(&side) {
                Err(err) if err.kind() != std::io::ErrorKind::NotFound => {
                    return Err(WalError::io(format!("removing {}", side.display()))(err));
                }
                _ => {}
            }
        }
        std::fs::rename(&self.partial, &self.target).map_err(WalError::io("installing the snapshot"))?;
        if let Some(dir) = self.target.parent() {
            File::open(dir).and_then(|d| d.sync_all()).map_err(WalError::io("syncing the replica's directory"))?;
        }
        Ok(self.snapshot.state)
    }
}
