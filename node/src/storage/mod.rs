//! Durable storage: the data directory, the node's own database, and one libSQL database per actor.

pub mod actor_db;
pub mod data_dir;
pub mod inspect_sql;
pub mod kv;
pub mod node_db;
pub mod pool;
pub mod queue;
pub mod registers;
pub mod sandbox;
pub mod schedules;
pub mod sql_value;
pub mod statement;
pub mod statements;
pub mod workflow;

pub use actor_db::ActorDb;
pub use data_dir::DataDir;
pub use node_db::{ActorRecord, NodeDb};
pub use pool::DbPool;
