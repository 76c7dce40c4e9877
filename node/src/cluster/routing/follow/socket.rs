//! A raw WebSocket that follows its actor.
//!
//! A raw socket's handler is a future parked in the old home's memory, so it cannot move; the socket's id and
//! upgrade request can. The old home ends the actor's side with [`SocketOutput::Moved`], saying how many client
//! messages its handler received (each one's unit committed, its answers already sent). The relay opens the socket
//! again on the new home with the same id, request and parameters (the handler runs again there, and
//! [`crate::sdk::WebSocket::resumed`] tells it so), then sends the client messages after those, in order: each
//! reaches exactly one handler.
//!
//! To resend them, the relay keeps the last client messages it sent (at most [`RESEND_MESSAGES`] and
//! [`RESEND_BYTES`]); only messages on their way to the actor need to be kept, and that way holds far fewer (its
//! queues hold [`CONN_QUEUE`] each). Should a move find one of the messages it must resend already dropped, the
//! socket closes with the retryable `actor.stopping` rather than lose it.

use std::collections::VecDeque;

use tern_gateway::backend::{RawSocketHandle, SocketMessage, SocketOutput};
use tern_gateway::outbound::{self, OutboundSender};
use tern_gateway::queue;
use tern_proto::{ClientError, Value};

use super::rebind;
use crate::cluster::routing::backend::ClusterBackend;
use crate::cluster::rpc::WireRequest;
use crate::runtime::instance::CONN_QUEUE;

/// The most client messages a relay keeps to resend after a move.
const RESEND_MESSAGES: usize = 4 * CONN_QUEUE;
/// The most bytes of client messages a relay keeps to resend after a move.
const RESEND_BYTES: usize = 8 << 20;

/// Wraps the actor's side of a new raw WebSocket (`first`, opened with the upgrade `request` and `params`) so
/// that it follows the actor when it moves.
pub(crate) fn follow_socket(
    backend: ClusterBackend,
    first: RawSocketHandle,
    request: WireRequest,
    params: Option<Value>,
) -> RawSocketHandle {
    let (inbound, client_in) = queue::channel(CONN_QUEUE);
    let (client_out, outbound) = outbound::channel(CONN_QUEUE);
    let handle =
        RawSocketHandle { actor_id: first.actor_id.clone(), socket_id: first.socket_id.clone(), inbound, outbound };
    let relay = Relay { backend, request, params, kept: Kept::default() };
    tokio::spawn(relay.run(first, client_in, client_out));
    handle
}

/// One raw WebSocket's relay.
struct Relay {
    backend: ClusterBackend,
    /// The upgrade request, to open the socket again.
    request: WireRequest,
    /// The connection parameters, to open the socket again.
    params: Option<Value>,
    kept: Kept,
}

/// The client messages a relay sent and keeps to resend, numbered from 1 (the socket's first message).
#[derive(Default)]
struct Kept {
    /// `(number, message)`, oldest first.
    messages: VecDeque<(u64, SocketMessage)>,
    bytes: usize,
    /// The number of the last message sent.
    sent: u64,
    /// The number of the last message dropped to keep within the bounds (0: none).
    dropped_through: u64,
    /// How many messages the handlers of the actor's previous homes received: the current home's count starts
    /// after these.
    received_before: u64,
}

impl Kept {
    /// Keeps the next message sent.
    fn push(&mut self, message: SocketMessage) {
        self.sent += 1;
        self.bytes += message.len();
        self.messages.push_back((self.sent, message));
        while self.messages.len() > RESEND_MESSAGES || self.bytes > RESEND_BYTES {
            let Some((number, dropped)) = self.messages.pop_front() else { break };
            self.bytes -= dropped.len();
            self.dropped_through = number;
        }
    }

    /// The home that just handed the socket over received `received` of the messages sent to it: forgets those
    /// and returns the rest, to send to the next home (`None` if one of them was already dropped).
    fn after_move(&mut self, received: u64) -> Option<Vec<SocketMessage>> {
        let through = self.received_before + received;
        if through < self.dropped_through {
            return None;
        }
        while self.messages.front().is_some_and(|(number, _)| *number <= through) {
            let (_, message) = self.messages.pop_front().expect("checked above");
            self.bytes -= message.len();
        }
        self.received_before = through;
        Some(self.messages.iter().map(|(_, message)| message.clone()).collect())
    }
}

impl Relay {
    async fn run(
        mut self,
        mut current: RawSocketHandle,
        mut client_in: queue::Receiver<SocketMessage>,
        client_out: OutboundSender<SocketOutput>,
    ) {
        // The actor's sides this socket left behind stay open until the client leaves: closing one would tell the
        // actor (should it live on that node again) that this socket went away.
        let mut left_behind = Vec::new();
        loop {
            tokio::select! {
                message = client_in.recv() => {
                    let Some(message) = message else { return };
                    self.kept.push(message.clone());
                    // An actor that is leaving may drop it: it is sent again after the re-bind.
                    let _ = current.inbound.send(message).await;
                }
                output = current.outbound.recv() => match output {
                    Some(SocketOutput::Moved { received }) => {
                        let Some(resend) = self.kept.after_move(received) else {
                            tracing::warn!(
                                actor_id = %current.actor_id, socket_id = %current.socket_id,
                                "a raw WebSocket had more messages on their way than its relay keeps; closing it"
                            );
                            return client_out.close(SocketOutput::error(&ClientError::stopping()));
                        };
                        match self.rebind(&current).await {
                            Ok(next) => {
                                let previous = std::mem::replace(&mut current, next);
                                left_behind.push(previous.inbound);
                                for message in resend {
                                    let _ = current.inbound.send(message).await;
                                }
                            }
                            Err(e) => return client_out.close(SocketOutput::error(&e)),
                        }
                    }
                    Some(close @ SocketOutput::Close { .. }) => return client_out.close(close),
                    Some(message) => {
                        // A client that stopped reading is dropped by the actor's side meanwhile: that close
                        // comes next.
                        let sent = current.outbound.unless_closed_now(client_out.send(message)).await;
                        if matches!(sent, Some(Err(_))) {
                            return;
                        }
                    }
                    None => return,
                },
            }
        }
    }

    /// Opens the socket again where its actor lives now, with the same id.
    async fn rebind(&self, current: &RawSocketHandle) -> Result<RawSocketHandle, ClientError> {
        let (actor_id, socket_id) = (&current.actor_id, &current.socket_id);
        rebind(actor_id, socket_id, || {
            self.backend.resume_raw_socket(actor_id, socket_id, self.request.clone(), self.params.clone())
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(n: u64) -> SocketMessage {
        SocketMessage::Text(n.to_string())
    }

    #[test]
    fn a_move_resends_exactly_what_the_old_home_did_not_receive() {
        let mut kept = Kept::default();
        (1..=5).for_each(|n| kept.push(text(n)));
        assert_eq!(kept.after_move(3), Some(vec![text(4), text(5)]));
        // The next home counts from the first message it was sent (4).
        (6..=7).for_each(|n| kept.push(text(n)));
        assert_eq!(kept.after_move(1), Some(vec![text(5), text(6), text(7)]));
        assert_eq!(kept.after_move(3), Some(vec![]));
        assert_eq!(kept.bytes, 0);
    }

    #[test]
    fn a_move_that_needs_a_dropped_message_resends_nothing() {
        let mut kept = Kept::default();
        (1..=(RESEND_MESSAGES as u64 + 10)).for_each(|n| kept.push(text(n)));
        assert_eq!(kept.messages.len(), RESEND_MESSAGES);
        assert_eq!(kept.after_move(5), None);
        // Everything the old home did not receive is still kept when it received at least the dropped ones.
        let resend = kept.after_move(10).expect("nothing needed was dropped");
        assert_eq!(resend.len(), RESEND_MESSAGES);
        assert_eq!(resend[0], text(11));
    }

    #[test]
    fn kept_bytes_are_bounded() {
        let mut kept = Kept::default();
        let big = SocketMessage::Binary(bytes::Bytes::from(vec![0u8; RESEND_BYTES / 2 + 1]));
        (0..3).for_each(|_| kept.push(big.clone()));
        assert_eq!(kept.messages.len(), 1);
        assert_eq!(kept.dropped_through, 2);
    }
}
