//! A replica's side: applying the home's transactions to its copy of the database.

use std::path::{Path, PathBuf};

use super::batch::Batch;
use super::error::WalError;
use super::position::Position;
use super::raw::RawConnection;
use super::state::WalState;

/// The one writer of a replica's file: it applies batches with libSQL's WAL insert API, one write session per
/// transaction, and nothing else ever writes the file. Readers of a replica open it read-only.
pub struct Replica {
    conn: RawConnection,
    path: PathBuf,
    state: WalState,
}

impl Replica {
    /// Opens the replica at `path` (a file received as a [`super::Snapshot`], or an earlier replica) with the
    /// state its node recorded. Its WAL is the truth about the frames it holds: when the WAL has frames, the
    /// position is its last frame; when it is empty, the recorded position stands (the WAL was checkpointed after
    /// the position was recorded).
    pub fn open(path: &Path, recorded: WalState) -> Result<Replica, WalError> {
        if !path.exists() {
            return Err(WalError::Io {
                what: format!("opening the replica {}", path.display()),
                source: std::io::Error::from(std::io::ErrorKind::NotFound),
            });
        }
        let conn = RawConnection::open(path, false)?;
        conn.exec("PRAGMA journal_mode=WAL")?;
        // Transactions are not synced one by one: `apply` syncs the WAL once per batch, before it returns (a batch
        // is acknowledged only once it is durable here; sync mode counts on it).
        conn.exec("PRAGMA synchronous=OFF")?;
        conn.disable_checkpoints()?;
        let frames = conn.frame_count()?;
        let mut state = recorded;
        if frames > 0 {
            state.frame = frames;
        }
        Ok(Replica { conn, path: path.to_path_buf(), state })
    }

    /// The replica's file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// What the replica holds.
    pub fn state(&self) -> WalState {
        self.state
    }

    /// The last transaction the replica holds.
    pub fn position(&self) -> Position {
        self.state.position()
    }

    /// Applies `batch`, makes it durable, and returns the new state, for the node to record before it
    /// acknowledges the batch.
    ///
    /// Frames the replica already holds are compared, not written again, so a re-sent batch is harmless. A batch
    /// that does not continue the replica's position fails with [`WalError::Gap`] (resend from the replica's
    /// position); one whose frames differ from frames already applied fails with [`WalError::Conflict`] (the copy
    /// diverged: it needs a snapshot). The first batch of a new generation first checkpoints the replica's WAL,
    /// which fails with [`WalError::Busy`] while a reader is open.
    ///
    /// A crash at any point is safe without recording anything in between: reopened, the replica's position is
    /// its WAL's last frame under the recorded generation, and a position that no longer matches the home's
    /// stream is refused as a gap (a snapshot follows) or re-applies the very same frames.
    pub fn apply(&mut self, batch: &Batch) -> Result<WalState, WalError> {
        batch.validate()?;
        let at = self.position();
        if batch.generation == at.generation + 1 && batch.after == at {
            self.checkpoint()?;
            self.state = WalState { generation: batch.generation, frame: 0, previous_end: at };
        } else if batch.generation != at.generation || batch.first_frame() > at.frame + 1 {
            return Err(WalError::Gap { batch: batch.after, replica: at });
        }
        let mut in_session = false;
        for (frame_no, frame) in (batch.first_frame()..=batch.end().frame).zip(&batch.frames) {
            if !in_session {
                self.conn.insert_begin()?;
                in_session = true;
            }
            if let Err(err) = self.conn.insert_frame(frame_no, frame.bytes()) {
                // Uncommitted frames are dropped with the session.
                let _ = self.conn.insert_end();
                return Err(err);
            }
            if frame.is_commit() {
                self.conn.insert_end()?;
                in_session = false;
            }
        }
        self.sync_wal()?;
        self.state.frame = self.state.frame.max(batch.end().frame);
        Ok(self.state)
    }

    /// Moves the replica to the generation `next` without frames: the home ended the previous generation exactly
    /// where the replica is (`next.previous_end`) by checkpointing, and nothing was committed since; the replica
    /// checkpoints the same frames into its file. `Gap` if the replica is elsewhere.
    pub fn advance(&mut self, next: WalState) -> Result<WalState, WalError> {
        let at = self.position();
        if at != next.previous_end || next.frame != 0 || at.generation.checked_add(1) != Some(next.generation) {
            return Err(WalError::Gap { batch: next.previous_end, replica: at });
        }
        self.checkpoint()?;
        self.state = next;
        Ok(self.state)
    }

    /// Makes the WAL's frames durable (one `fsync` for the whole batch; the file's pages are the same whichever
    /// descriptor syncs them).
    fn sync_wal(&self) -> Result<(), WalError> {
        let wal = PathBuf::from(format!("{}-wal", self.path.display()));
        let file = std::fs::File::open(&wal).map_err(WalError::io(format!("opening {}", wal.display())))?;
        file.sync_data().map_err(WalError::io(format!("syncing {}", wal.display())))
    }

    /// Moves the replica's WAL into its file (before it becomes the home, or to read the file directly).
    pub fn checkpoint(&self) -> Result<(), WalError> {
        // The database file must be durable before the WAL is emptied.
        self.conn.exec("PRAGMA synchronous=FULL")?;
        let checkpointed = self.conn.checkpoint_truncate();
        self.conn.exec("PRAGMA synchronous=OFF")?;
        checkpointed
    }
}
