//! The Tern node: the actor SDK and runtime, per-actor libSQL storage, and the `tern` command line.
//!
//! An application defines actors with [`Actor`], collects them in a [`Registry`], and hands the registry to
//! [`cli::main`] (a complete `tern`-style command line) or to [`server::serve`] (just the server):
//!
//! ```ignore
//! fn main() -> std::process::ExitCode {
//!     tern_node::cli::main(tern_node::ready::registry().register(my_actor()))
//! }
//! ```

pub mod cli;
pub mod clock;
pub mod cluster;
pub mod gateway_tls;
pub mod handoff;
pub mod heap;
pub mod metrics;
pub mod ready;
pub mod replica;
pub mod runtime;
pub mod sdk;
pub mod server;
#[cfg(test)]
mod simnet;
pub mod storage;
mod sync;
pub mod trace;

pub use runtime::{Durability, Host, Registry};
pub use sdk::{
    Actor, ActorError, ActorOptions, ActorResult, Conn, CronJob, Ctx, Kv, ListOptions, Loop, ReplicationMode, RunCtx,
    Sql, StepOptions, UserError, WorkflowCtx,
};
pub use tern_proto::Value;
