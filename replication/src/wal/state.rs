//! What a node records about a database's stream, to resume it after a restart.

use serde::{Deserialize, Serialize};

use super::position::Position;

/// The durable state of one copy of a database (the home's or a replica's), kept by the node outside the database
/// file (a replica's file may hold nothing but the home's pages).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WalState {
    /// The current generation.
    pub generation: u64,
    /// The last frame applied (a replica) or shipped-and-recorded (the home) in that generation; informative for a
    /// replica, whose WAL is the truth when it holds frames.
    pub frame: u32,
    /// Where the previous generation ended, so that a copy still there can move on to this one.
    pub previous_end: Position,
}

impl WalState {
    /// The position the state records.
    pub fn position(&self) -> Position {
        Position::new(self.generation, self.frame)
    }
}
