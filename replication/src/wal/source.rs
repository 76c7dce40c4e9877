//! The home's side of a database's stream: committed transactions read from its own connection.

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
        Ok(Source { conn, state })
    }

    /// The stream's state (generation and where the previous one ended).
    pub fn state(&self) -> WalState {
        self.state
    }

    /// The last committed frame of the current generation.
    pub fn position(&self) -> Result<Position, WalError> {
        Ok(Position::new(self.state.generation, self.conn.frame_count()?))
    }

    /// The state that ends the current generation, for the node to record durably before
    /// [`Source::checkpoint`]; `None` when the WAL is empty (nothing to end).
    pub fn next_generation(&self) -> Result<Option<WalState>, WalError> {
        let end = self.position()?;
        if end.frame == 0 {
            return Ok(None);
        }
        Ok(Some(WalState { generation: end.generation + 1, frame: 0, previous_end: end }))
    }

    /// Ends the current generation once every replica has all of it: moves the WAL into the database file and
    /// empties it; the stream goes on in `next` (from [`Source::next_generation`], recorded first: a crash between
    /// the record and the checkpoint re-ships the old frames as the new generation's, which leaves replicas
    /// identical).
    pub fn checkpoint(&mut self, next: WalState) -> Result<(), WalError> {
        if next.previous_end != self.position()? {
            return Err(WalError::Corrupt(format!(
                "a checkpoint to generation {} after {}, but the WAL is at {}",
                next.generation,
                next.previous_end,
                self.position()?
            )));
        }
        self.state = next;
        self.conn.checkpoint_truncate()
    }
}
