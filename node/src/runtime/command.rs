//! Messages to a running actor instance.

use std::any::Any;
use tern_gateway::backend::{
    ConnOutput, InspectRequest, InspectorAuth, RawRequest, RawResponse, SocketMessage, SocketOutput,
};
use tern_gateway::outbound::OutboundSender;
use tern_proto::{ClientError, Value};

use tokio::sync::oneshot;

use crate::sdk::queue::QueueMessage;
pub(crate) use crate::sdk::run::Reply;
use crate::sdk::run::{ErasedStep, RunRequest};

/// One request to an actor instance; the instance handles them in arrival order, a turn at a time.
pub(crate) enum Command {
    /// A stateless action (one HTTP request) with its connection parameters.
    Action { name: String, args: Value, params: Option<Value>, reply: Reply<Value> },
    /// Open a connection whose messages go to `outbound`; replies with the connection id.
    Connect { params: Option<Value>, outbound: OutboundSender<ConnOutput>, reply: Reply<String> },
    /// An action on an open connection; answered on the connection.
    ConnAction { conn_id: String, id: u64, name: String, args: Value },
    /// A connection (un)subscribes from an event.
    Subscribe { conn_id: String, event: String, subscribe: bool },
    /// The client of a connection went away.
    Disconnect { conn_id: String },
    /// A raw HTTP request for the `on_request` handler, with its connection parameters.
    RawRequest { request: Box<RawRequest>, params: Option<Value>, reply: Reply<RawResponse> },
    /// Open a raw WebSocket whose messages go to `outbound`; replies with the socket id (`resumed`, when its
    /// client's socket followed the actor here from another node).
    SocketOpen {
        request: Box<axum::http::Request<()>>,
        params: Option<Value>,
        resumed: Option<String>,
        outbound: OutboundSender<SocketOutput>,
        reply: Reply<String>,
    },
    /// A client message on a raw WebSocket, or (`None`) the client closed it.
    SocketInput { socket_id: String, message: Option<SocketMessage> },
    /// Make sure the actor has started (and ran its create hooks).
    Ping { reply: Reply<()> },
    /// Sleep now; `done` fires once the actor has stopped.
    Sleep { done: Option<oneshot::Sender<()>> },
    /// Sleep now because the actor moves to another node: its connections are saved (state and subscriptions) in
    /// the final commit and told to follow it ([`ConnOutput::Moved`]) instead of being closed; `done` fires once
    /// the actor has stopped and released its file.
    Move { done: oneshot::Sender<()> },
    /// A connection that followed the actor from its previous node picks up where it was: the connection kept
    /// here since the actor arrived (see [`crate::sdk::conn::Conn`]'s detached state) sends to `outbound` from
    /// now on. Fails with `actor.stopping` when no such connection waits.
    Resume { conn_id: String, outbound: OutboundSender<ConnOutput>, reply: Reply<()> },
    /// Connections that arrived with the actor and whose clients did not come back in time are disconnected
    /// (their disconnect hook runs); the others are left alone.
    ExpireDetached { conn_ids: Vec<String> },
    /// Destroy the actor; replies once its data is gone.
    Destroy { reply: Reply<()> },
    /// An inspector operation, run inside the turn like an action (a failing one changes nothing).
    Inspect { auth: InspectorAuth, request: InspectRequest, reply: Reply<serde_json::Value> },
    /// A consistent copy of the database file, taken after the turn commits.
    Export { auth: InspectorAuth, reply: Reply<Vec<u8>> },
    /// The inspector token and when it was generated.
    InspectorToken { reply: Reply<(String, i64)> },
    /// The value of a key in the actor's own KV store and when it was written (admin read; never the reserved key).
    KvGet { key: Vec<u8>, reply: Reply<Option<(Vec<u8>, i64)>> },
    /// The actor's alarm is due: fire the schedules that are due.
    Alarm,
    /// Store a message on queue `name`. Answered once committed (`None`), or, when `wait` is set, once the
    /// message is completed (with the completion's response).
    QueueSend { name: String, body: Value, wait: bool, reply: Reply<Option<Value>> },
    /// Receive up to `limit` messages of `names` (any when empty); when none is waiting and `wait` is set, the
    /// answer comes when one arrives.
    QueueReceive { names: Vec<String>, limit: usize, wait: bool, reply: Reply<Vec<QueueMessage>> },
    /// Complete a completable message with a response for its sender.
    QueueComplete { id: i64, response: Value, reply: Reply<()> },
    /// Take the next message of `names` and handle it (a [`crate::sdk::run::ProcessFn`], type-erased) in one
    /// atomic unit; answered when a message was handled.
    QueueProcess { names: Vec<String>, handler: ErasedStep, reply: Reply<Option<Box<dyn Any + Send>>> },
    /// Run a run-loop step (a [`crate::sdk::run::StepFn`], type-erased) as an atomic unit.
    Step { label: String, work: ErasedStep, reply: Reply<Box<dyn Any + Send>> },
}

impl From<RunRequest> for Command {
    /// A run loop's request, as the command the instance runs in a turn.
    fn from(request: RunRequest) -> Command {
        match request {
            RunRequest::Step { label, work, reply } => Command::Step { label, work, reply },
            RunRequest::QueueProcess { names, handler, reply } => Command::QueueProcess { names, handler, reply },
            RunRequest::QueueReceive { names, limit, wait, reply } => {
                Command::QueueReceive { names, limit, wait, reply }
            }
            RunRequest::QueueComplete { id, response, reply } => Command::QueueComplete { id, response, reply },
            RunRequest::QueueSend { name, body, wait, reply } => Command::QueueSend { name, body, wait, reply },
        }
    }
}

impl Command {
    /// Answers the command with `err` without running it.
    pub(crate) fn fail(self, err: ClientError) {
        match self {
            Command::Action { reply, .. } => {
                let _ = reply.send(Err(err));
            }
            Command::Connect { reply, .. } | Command::SocketOpen { reply, .. } => {
                let _ = reply.send(Err(err));
            }
            Command::RawRequest { reply, .. } => {
                let _ = reply.send(Err(err));
            }
            Command::Ping { reply } | Command::Destroy { reply } => {
                let _ = reply.send(Err(err));
            }
            Command::Inspect { reply, .. } => {
                let _ = reply.send(Err(err));
            }
            Command::Export { reply, .. } => {
                let _ = reply.send(Err(err));
            }
            Command::InspectorToken { reply } => {
                let _ = reply.send(Err(err));
            }
            Command::KvGet { reply, .. } => {
                let _ = reply.send(Err(err));
            }
            Command::QueueSend { reply, .. } => drop(reply.send(Err(err))),
            Command::QueueReceive { reply, .. } => drop(reply.send(Err(err))),
            Command::QueueComplete { reply, .. } => drop(reply.send(Err(err))),
            Command::Step { reply, .. } => drop(reply.send(Err(err))),
            Command::QueueProcess { reply, .. } => drop(reply.send(Err(err))),
            Command::Sleep { done } => {
                if let Some(done) = done {
                    let _ = done.send(());
                }
            }
            Command::Move { done } => drop(done.send(())),
            Command::Resume { reply, .. } => drop(reply.send(Err(err))),
            Command::ConnAction { .. }
            | Command::Subscribe { .. }
            | Command::Disconnect { .. }
            | Command::SocketInput { .. }
            | Command::ExpireDetached { .. }
            | Command::Alarm => {}
        }
    }
}

#[cfg(test)]
mod tests {
    /// A command travels boxed through its actor's mailbox, but it is built and matched on the stack, and batches
    /// hold commands by value: box large payloads.
    #[test]
    fn commands_stay_small() {
        let size = std::mem::size_of::<super::Command>();
        assert!(size <= 128, "a command is {size} bytes");
    }
}
