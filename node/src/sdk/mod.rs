//! The actor SDK: define actors in Rust. It is the surface the runtime (`runtime/`) implements, so it
//! imports nothing from it; what it needs from the node it declares as traits the runtime implements
//! (`run::RunMailbox`, `actors::ActorCalls`). Definitions go in a [`Registry`](crate::Registry).

pub mod actors;
pub mod conn;
pub mod context;
pub mod definition;
pub mod error;
pub mod kv;
pub mod options;
pub mod queue;
pub(crate) mod recurrence;
pub mod request;
pub mod run;
pub mod schedule;
pub mod sql;
pub mod websocket;
pub mod workflow;

pub use actors::{ActorClient, ActorHandle, IntoKey};
pub use conn::Conn;
pub use context::{Ctx, StateGuard};
pub use definition::Actor;
pub use error::{ActorError, ActorResult, UserError};
pub use kv::{Kv, ListOptions};
pub use options::{ActorOptions, ReplicationMode};
pub use queue::{QueueMessage, RunQueue};
pub use request::{Request, Response};
pub use run::RunCtx;
pub use schedule::{Cron, CronFire, CronInfo, CronJob, Schedule, ScheduledEvent};
pub use sql::Sql;
pub use websocket::{SocketMessage, WebSocket};
pub use workflow::{Either, Loop, StepOptions, WorkflowCtx};
