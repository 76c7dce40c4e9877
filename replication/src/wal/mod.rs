//! Physical replication of SQLite databases: whole committed transactions of WAL frames, read on the home and
//! applied on replicas with libSQL's WAL API. A database is a file; this module knows nothing of actors or of the
//! network (the node ships [`Batch::encode`]d batches and [`Snapshot`] chunks over the transport).
//!
//! # The stream
//!
//! A database's changes are a stream of frames, positioned by [`Position`] `(generation, frame)`. The home's
//! [`Source`] (its own connection) knows the last committed frame and ends generations; [`WalFile`] reads the
//! committed transactions after any position from the home's `-wal` file; a [`Replica`] applies them as frames of
//! the same numbers in its own WAL. When every replica has a generation's last frame, the home
//! [`Source::checkpoint`]s: the WAL moves into the file and the next generation starts at frame 1. A replica moves
//! to a new generation only from exactly the previous generation's end; anything else is a [`WalError::Gap`]
//! (resend) or, when the home no longer has the frames, [`WalError::SnapshotNeeded`]: a [`Snapshot`] of the home's
//! file (which does not change within a generation) starts the replica at `(generation, 0)`.
//!
//! # Rules kept (libSQL's WAL API)
//!
//! * Batches are whole transactions: the last frame commits ([`Batch::validate`]); a torn batch is refused.
//! * Frames a replica already holds are compared, never rewritten: re-sending is harmless, divergence is a
//!   [`WalError::Conflict`].
//! * The replica's WAL is emptied (checkpoint `TRUNCATE`, which must complete) before frame 1 of a new generation.
//! * Only the [`Source`] checkpoints the home (automatic checkpoints and the checkpoint on close are off), and only
//!   [`Replica::apply`] writes a replica file (its readers are read-only).
//! * Positions are recorded outside the database file, by the node ([`WalState`]): a replica's before it
//!   acknowledges a batch, the home's next generation before its checkpoint.
//! * Everything on the wire carries CRC-32s and lengths; a corrupt or truncated batch or snapshot is refused whole.

mod batch;
mod error;
mod position;
mod raw;
mod replica;
mod snapshot;
mod source;
mod state;
mod wal_file;

pub use batch::{Batch, FRAME_HEADER, Frame, MAX_BATCH_BYTES};
pub use error::WalError;
pub use position::Position;
pub use replica::Replica;
pub use snapshot::{Snapshot, SnapshotReceiver};
pub use source::Source;
pub use state::WalState;
pub use wal_file::WalFile;
