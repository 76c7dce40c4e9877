//! Ready actors that need no code, registered by the stock `tern` binary.

mod counter;
mod room;
mod sqlite;

pub use counter::{CounterState, counter};
pub use room::{Message, room};
pub use sqlite::sqlite;

use crate::runtime::Registry;

/// A registry with the ready actors: `counter`, `room` and `sqlite`.
pub fn registry() -> Registry {
    Registry::new().register(counter()).register(room()).register(sqlite())
}
