//! What can go wrong while reading, shipping or applying WAL frames.

use super::position::Position;

/// An error of the WAL-frame replication. Each variant is a distinct case the caller acts on.
#[derive(Debug, thiserror::Error)]
pub enum WalError {
    /// A SQLite call failed.
    #[error("sqlite {call} failed ({code}): {message}")]
    Sqlite {
        /// The C function.
        call: &'static str,
        /// SQLite's result code.
        code: i32,
        /// SQLite's message.
        message: String,
    },
    /// A checkpoint could not complete because a reader is open; try again later.
    #[error("the WAL checkpoint could not complete: a reader is open")]
    Busy,
    /// A frame differs from the frame the replica already holds under its number: the replica and the stream have
    /// diverged, and the replica needs a snapshot.
    #[error("frame {frame} conflicts with the replica's frame of that number")]
    Conflict {
        /// The frame number.
        frame: u32,
    },
    /// A batch or snapshot chunk failed its checks on the wire (length, checksum, shape); it is refused whole.
    #[error("corrupt replication data: {0}")]
    Corrupt(String),
    /// A batch does not follow the replica's position: the sender must resend from `replica` (or send a snapshot
    /// when it no longer has those frames).
    #[error("the batch follows {batch}, the replica is at {replica}")]
    Gap {
        /// Where the batch starts.
        batch: Position,
        /// Where the replica is.
        replica: Position,
    },
    /// The home no longer has the frames after `position` (its WAL moved to a newer generation): a snapshot is
    /// needed.
    #[error("the frames after {position} are gone; a snapshot is needed")]
    SnapshotNeeded {
        /// The position asked for.
        position: Position,
    },
    /// A file operation failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The error.
        source: std::io::Error,
    },
}

impl WalError {
    pub(crate) fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> WalError {
        let what = what.into();
        move |source| WalError::Io { what, source }
    }
}
