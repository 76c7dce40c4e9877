//! Client sockets that follow their actor: a `/connect` connection ([`connection`]) or a raw WebSocket
//! ([`socket`]) opened through this node's gateway stays open when its actor moves to another node.
//!
//! The gateway holds the client's WebSocket; a relay sits between it and the actor's side of the socket (local, or
//! a bridge to the actor's home). When the actor moves, its old home ends its side with a "moved" message instead
//! of a close, after everything it already produced; the relay then opens the socket again where the actor lives
//! now (trying for a while: the actor may still be on its way) and sends what the old home never took. The client
//! sees no close.

pub(crate) mod connection;
pub(crate) mod socket;

use std::future::Future;
use std::time::{Duration, Instant};

use tern_proto::ClientError;

pub(crate) use connection::follow;
pub(crate) use socket::follow_socket;

/// How long a socket keeps trying to re-bind to its moved actor before it closes (retryable) instead.
const REBIND_LIMIT: Duration = Duration::from_secs(30);
/// The pause between two attempts to re-bind.
const REBIND_RETRY: Duration = Duration::from_millis(20);

/// Runs `open` (opening socket `id` of actor `actor_id` again where the directory places it now) until it
/// succeeds, fails for good, or [`REBIND_LIMIT`] passes: the actor may still be on its way (its old home holds
/// requests until the new one has it).
async fn rebind<T, F, Fut>(actor_id: &str, id: &str, mut open: F) -> Result<T, ClientError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, ClientError>>,
{
    let deadline = Instant::now() + REBIND_LIMIT;
    loop {
        match open().await {
            Ok(opened) => return Ok(opened),
            Err(e) if Instant::now() >= deadline || !retryable(&e) => {
                tracing::warn!(actor_id, id, error = %e, "a client socket could not follow its actor");
                return Err(e);
            }
            Err(_) => tokio::time::sleep(REBIND_RETRY).await,
        }
    }
}

/// Whether a failed re-bind may succeed later: the actor is between homes, or its new home is not ready yet.
fn retryable(error: &ClientError) -> bool {
    [
        ClientError::actor_not_found(""),
        ClientError::stopping(),
        ClientError::unavailable(""),
        ClientError::no_quorum(""),
    ]
    .iter()
    .any(|known| error.is(known))
}
