//! Where a replica is in its database's stream of frames.

use serde::{Deserialize, Serialize};

/// A point in a database's WAL stream: `frame` frames of `generation` are applied.
///
/// Within a generation, frames are numbered from 1 exactly as in the home's WAL. A generation ends when the home
/// checkpoints its WAL into the database file (only after its replicas have every frame), and the next generation
/// starts again at frame 1. Positions order by generation, then frame.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Position {
    /// Which WAL of the database, counted from 0; never goes back.
    pub generation: u64,
    /// The last frame applied in that WAL (0: none yet).
    pub frame: u32,
}

impl Position {
    /// `frame` frames of `generation`.
    pub const fn new(generation: u64, frame: u32) -> Position {
        Position { generation, frame }
    }
}

impl std::fmt::Display for Position {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.generation, self.frame)
    }
}
