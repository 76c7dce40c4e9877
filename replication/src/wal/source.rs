//! The home's side of a database's stream: committed transactions read from its own connection.

use bytes::Bytes;

use super::batch::{Batch, FRAME_HEADER, Frame};
use super::error::WalError;
use super::position::Position;
use super::raw::RawConnection;
use super::state::WalState;

/// Reads committed frames from the home's connection to a database and ends generations.
///
/// The home's connection is the only one on the file (exclusive locking), so the source borrows it: the caller uses
/// a source only between the home's transactions (after a commit, before the next turn).
pub struct Source {
    conn: RawConnection,
    page_size: u32,
    state: WalState,
}

impl Source {
    /// A source on the home's open connection `db`, continuing the stream recorded in `state`.
    ///
    /// From now on only [`Source::checkpoint`] moves frames into the database file: the connection's automatic
    /// checkpoints and its checkpoint on close are turned off, so the file stays what it was when the generation
    /// started (which is what a [`super::Snapshot`] copies).
    ///
    /// # Safety
    /// `db` must be an open connection that stays open while the source lives and is not used meanwhile.
    pub unsafe fn new(db: *mut libsql::ffi::sqlite3, state: WalState) -> Result<Source, WalError> {
        // SAFETY: the caller's promise.
        let conn = unsafe { RawConnection::borrowed(db) };
        conn.disable_checkpoints()?;
        let page_size = conn.page_size()?;
        Ok(Source { conn, page_size, state })
    }

    /// The stream's state (generation and where the previous one ended).
    pub fn state(&self) -> WalState {
        self.state
    }

    /// The last committed frame of the current generation.
    pub fn position(&self) -> Result<Position, WalError> {
        Ok(Position::new(self.state.generation, self.conn.frame_count()?))
    }

    /// The committed transactions after `after`, whole, of about `max_bytes` (at least one transaction); `None`
    /// when `after` is the latest position. [`WalError::SnapshotNeeded`] when the frames after `after` are no
    /// longer in the WAL.
    pub fn read_after(&self, after: Position, max_bytes: usize) -> Result<Option<Batch>, WalError> {
        let last = self.conn.frame_count()?;
        let generation = self.state.generation;
        let first = if after.generation == generation && after.frame <= last {
            after.frame + 1
        } else if after == self.state.previous_end {
            1
        } else {
            return Err(WalError::SnapshotNeeded { position: after });
        };
        if first > last {
            return Ok(None);
        }
        let frame_len = FRAME_HEADER + self.page_size as usize;
        let mut frames = Vec::new();
        let mut bytes = 0;
        let mut committed = 0;
        for frame_no in first..=last {
            let mut buf = vec![0u8; frame_len];
            self.conn.get_frame(frame_no, &mut buf)?;
            let frame = Frame::new(Bytes::from(buf));
            bytes += frame_len;
            let commit = frame.is_commit();
            frames.push(frame);
            if commit {
                committed = frames.len();
                if bytes >= max_bytes {
                    break;
                }
            }
        }
        // The last committed frame always ends a transaction; anything after the cut is for the next batch.
        frames.truncate(committed);
        if frames.is_empty() {
            return Ok(None);
        }
        Ok(Some(Batch { after, generation, page_size: self.page_size, frames }))
    }

    /// Ends the current generation once every replica has all of it: moves the WAL into the database file, empties
    /// the WAL and starts the next generation at frame 0. `save` records the new state durably *before* the WAL is
    /// emptied (a crash in between re-ships the old frames as the new generation's, which leaves replicas
    /// identical). Does nothing and returns `None` when the WAL is empty.
    pub fn checkpoint(
        &mut self,
        save: impl FnOnce(&WalState) -> Result<(), WalError>,
    ) -> Result<Option<WalState>, WalError> {
        let end = self.position()?;
        if end.frame == 0 {
            return Ok(None);
        }
        let next = WalState { generation: end.generation + 1, frame: 0, previous_end: end };
        save(&next)?;
        self.state = next;
        self.conn.checkpoint_truncate()?;
        Ok(Some(next))
    }
}
