//! The actor runtime: awake instances, their turns and lifecycle, and the host that wakes and stops them.

pub(crate) mod actor_table;
pub(crate) mod alarms;
pub(crate) mod command;
mod connections;
mod firing;
pub(crate) mod handoff;
pub(crate) mod host;
mod inspect;
pub(crate) mod instance;
pub(crate) mod lifecycle;
pub(crate) mod mailbox;
mod queue;
mod raw;
pub(crate) mod registry;
pub(crate) mod replicator;
pub(crate) mod resume;
pub(crate) mod run_loop;
pub mod service;

pub use host::Durability;
pub use registry::Registry;
pub use service::Host;
