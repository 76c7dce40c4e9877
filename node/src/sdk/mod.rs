//! The actor SDK: define actors in Rust and register them.

pub mod conn;
pub mod context;
pub mod definition;
pub mod error;
pub mod options;
pub mod registry;
pub mod sql;

pub use conn::Conn;
pub use context::{Ctx, StateGuard};
pub use definition::Actor;
pub use error::{ActorError, ActorResult, UserError};
pub use options::ActorOptions;
pub use registry::Registry;
pub use sql::Sql;
