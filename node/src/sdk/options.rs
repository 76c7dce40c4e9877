//! Per-definition options, with RivetKit's defaults.

use std::time::Duration;

/// How an actor definition behaves. `Default` gives RivetKit's defaults.
#[derive(Debug, Clone)]
pub struct ActorOptions {
    /// An actor with no connections and no work sleeps after this long (RivetKit `sleepTimeout`, 30 s).
    pub sleep_timeout: Duration,
    /// Never sleep when idle (the actor still sleeps on shutdown).
    pub no_sleep: bool,
    /// An action running longer fails with `actor.action_timed_out` (RivetKit `actionTimeout`, 60 s).
    pub action_timeout: Duration,
    /// Budget for each connect hook: before-connect, create-conn-state, connect (RivetKit: 5 s each).
    pub connect_hook_timeout: Duration,
    /// Budget for the sleep and destroy hooks (RivetKit `sleepGracePeriod`, 15 s).
    pub sleep_grace_period: Duration,
    /// Largest client message accepted, in bytes (RivetKit `maxIncomingMessageSize`, 64 KiB).
    pub max_incoming_message_size: usize,
    /// Largest message sent to a client, in bytes (RivetKit `maxOutgoingMessageSize`, 1 MiB).
    pub max_outgoing_message_size: usize,
    /// Most messages the queue holds (RivetKit `maxQueueSize`, 1,000).
    pub max_queue_size: usize,
    /// Largest queue message body, in bytes of CBOR (RivetKit `maxQueueMessageSize`, 64 KiB).
    pub max_queue_message_size: usize,
    /// An SQL statement from actor code (or the inspector) running longer is interrupted and fails with
    /// `database.statement_timed_out` (Tern, 10 s): SQLite runs on the actor's worker thread, so a runaway
    /// query would otherwise hold it.
    pub statement_timeout: Duration,
    /// How many replicas of each actor's database the cluster keeps on other nodes (other regions first, then
    /// other zones); `None` takes the node's `--replicas` (default 1), `Some(0)` keeps none (Tern).
    pub replicas: Option<usize>,
    /// When replies leave, relative to replication; `None` takes the node's `--replication-mode` (Tern).
    pub replication: Option<ReplicationMode>,
    /// Whether the actor moves to the region most of its calls come from; `None` takes the node's
    /// `--follow-traffic` (Tern).
    pub follow_traffic: Option<bool>,
}

/// When an actor's replies leave, relative to replication of its database.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ReplicationMode {
    /// After the local commit; replicas follow (a home's crash can lose the transactions it had not shipped yet).
    #[default]
    Async,
    /// Once a replica in another failure domain also holds the commit.
    Sync,
}

impl Default for ActorOptions {
    fn default() -> Self {
        ActorOptions {
            sleep_timeout: Duration::from_secs(30),
            no_sleep: false,
            action_timeout: Duration::from_secs(60),
            connect_hook_timeout: Duration::from_secs(5),
            sleep_grace_period: Duration::from_secs(15),
            max_incoming_message_size: 64 * 1024,
            max_outgoing_message_size: 1024 * 1024,
            max_queue_size: 1000,
            max_queue_message_size: 64 * 1024,
            statement_timeout: Duration::from_secs(10),
            replicas: None,
            replication: None,
            follow_traffic: None,
        }
    }
}
