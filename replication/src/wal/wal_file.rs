//! Reading a home's committed frames straight from its `-wal` file, without a connection.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use bytes::Bytes;

use super::batch::{Batch, FRAME_HEADER, Frame};
use super::error::WalError;
use super::position::Position;

/// Bytes of the WAL file's header.
const WAL_HEADER: u64 = 32;

/// The `-wal` file of a home's database. The home's connection holds the file exclusively, but the WAL is plain
/// bytes: frame `n` starts at `32 + (n - 1) * (24 + page size)`. Only frames the home reported committed are read,
/// and each must carry the header's salts, so a WAL restarted under the reader is detected, never shipped.
pub struct WalFile {
    path: PathBuf,
}

impl WalFile {
    /// The WAL of the database at `db_path`.
    pub fn of(db_path: &Path) -> WalFile {
        WalFile { path: PathBuf::from(format!("{}-wal", db_path.display())) }
    }

    /// The committed transactions after `after`, whole, of about `max_bytes` (at least one transaction), where
    /// `committed` is the home's last committed frame and `previous_end` where its previous generation ended.
    /// `None` when `after` is `committed`; [`WalError::SnapshotNeeded`] when the frames after `after` are gone.
    pub fn read_after(
        &self,
        after: Position,
        committed: Position,
        previous_end: Position,
        max_bytes: usize,
    ) -> Result<Option<Batch>, WalError> {
        let generation = committed.generation;
        let first = if after.generation == generation && after.frame <= committed.frame {
            after.frame + 1
        } else if after == previous_end {
            1
        } else {
            return Err(WalError::SnapshotNeeded { position: after });
        };
        if first > committed.frame {
            return Ok(None);
        }
        let mut file = File::open(&self.path).map_err(WalError::io(format!("opening {}", self.path.display())))?;
        let mut header = [0u8; WAL_HEADER as usize];
        file.read_exact(&mut header).map_err(WalError::io("reading the WAL header"))?;
        let page_size = u32::from_be_bytes(header[8..12].try_into().expect("four bytes"));
        let salts = &header[16..24];
        let frame_len = FRAME_HEADER + page_size as usize;
        file.seek(SeekFrom::Start(WAL_HEADER + u64::from(first - 1) * frame_len as u64))
            .map_err(WalError::io("seeking in the WAL"))?;
        let mut frames = Vec::new();
        let mut bytes = 0;
        let mut committed_frames = 0;
        for frame_no in first..=committed.frame {
            let mut buf = vec![0u8; frame_len];
            file.read_exact(&mut buf).map_err(WalError::io(format!("reading frame {frame_no} of the WAL")))?;
            if &buf[8..16] != salts {
                return Err(WalError::Corrupt(format!("frame {frame_no} is not of the WAL's current generation")));
            }
            let frame = Frame::new(Bytes::from(buf));
            bytes += frame_len;
            let commit = frame.is_commit();
            frames.push(frame);
            if commit {
                committed_frames = frames.len();
                if bytes >= max_bytes {
                    break;
                }
            }
        }
        frames.truncate(committed_frames);
        if frames.is_empty() {
            return Err(WalError::Corrupt(format!("no commit frame up to {committed}")));
        }
        Ok(Some(Batch { after, generation, page_size, frames }))
    }

    /// How many transactions the WAL committed after frame `after` (frames of its current generation, up to the
    /// last commit on disk): what a home that lost its actor to a replica at `after` never shipped.
    pub fn commits_after(&self, after: u32) -> Result<u64, WalError> {
        let mut file = match File::open(&self.path) {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
            Err(e) => return Err(WalError::io(format!("opening {}", self.path.display()))(e)),
        };
        let mut header = [0u8; WAL_HEADER as usize];
        if file.read_exact(&mut header).is_err() {
            return Ok(0);
        }
        let page_size = u32::from_be_bytes(header[8..12].try_into().expect("four bytes"));
        let frame_len = FRAME_HEADER + page_size as usize;
        file.seek(SeekFrom::Start(WAL_HEADER + u64::from(after) * frame_len as u64))
            .map_err(WalError::io("seeking in the WAL"))?;
        let mut commits = 0;
        let mut buf = vec![0u8; frame_len];
        while file.read_exact(&mut buf).is_ok() && buf[8..16] == header[16..24] {
            if buf[4..8] != [0, 0, 0, 0] {
                commits += 1;
            }
        }
        Ok(commits)
    }
}
