//! Open sockets across one QUIC hop: a `/connect` WebSocket or a raw WebSocket that a client opened on one node's
//! gateway, for an actor homed on another node, runs as one bidirectional QUIC stream between the two.
//!
//! The gateway side opens the stream with a [`StreamOpen`] header; the home opens the socket on its actor and
//! answers with a first frame (the socket's id, or the error that refused it). Then each side pumps frames: client
//! messages toward the home, actor output toward the gateway, each a length-prefixed CBOR message. Ending the
//! stream from the gateway side means the client left; from the home side, that the actor closed the socket. A
//! lost stream closes the client's socket with a retryable error, so clients reconnect (and are routed again).
//! Frames keep their order on the stream: a close the home makes at once for a client that fell behind
//! (`actor.overloaded`) follows the frames already sent, and reaches the gateway as soon as the client takes them.

use std::net::SocketAddr;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use tern_gateway::backend::{ConnInput, ConnOutput, ConnectionHandle, RawSocketHandle, SocketMessage, SocketOutput};
use tern_gateway::outbound::{self, OutboundReceiver};
use tern_gateway::queue;
use tern_proto::{ClientError, Value};
use tern_replication::{RecvStream, SendStream, Transport};

use crate::cluster::rpc::{self, WireRequest};
use crate::runtime::Host;
use crate::runtime::instance::CONN_QUEUE;

/// Largest frame on a bridged socket: a socket message is bounded far below this by the gateway.
const MAX_FRAME: usize = 16 << 20;

/// What a bridged stream is for.
#[derive(Debug, Serialize, Deserialize)]
pub enum StreamOpen {
    /// A RivetKit `/connect` WebSocket.
    Connect { actor_id: String, params: Option<Value> },
    /// A raw WebSocket (`/websocket/...`) with its upgrade request; `resumed` names a socket that follows its
    /// actor, which moved to this node, and keeps its id (see [`super::follow`]).
    Socket { actor_id: String, request: WireRequest, params: Option<Value>, resumed: Option<String> },
    /// A `/connect` connection that follows its actor, which moved to this node with it (see
    /// [`super::follow`]).
    Resume { actor_id: String, conn_id: String },
}

/// A socket opened on the far side: its id, and the channels the gateway uses.
pub struct Bridged<I, O> {
    pub id: String,
    pub inbound: queue::Sender<I>,
    pub outbound: OutboundReceiver<O>,
}

/// Opens `open` on the home at `addr` and returns the socket's channels; `lost` is the last message the client
/// gets if the stream breaks.
pub async fn open<I, O>(
    transport: &Transport,
    addr: SocketAddr,
    open: &StreamOpen,
    lost: O,
) -> Result<Bridged<I, O>, ClientError>
where
    I: Serialize + Send + 'static,
    O: DeserializeOwned + Send + 'static,
{
    let unreachable = |e: String| ClientError::unavailable(format!("the actor's home cannot be reached: {e}"));
    let (mut send, mut recv) = transport
        .open_bi(addr, rpc::service::BRIDGE, rpc::encode(open))
        .await
        .map_err(|e| unreachable(e.to_string()))?;
    let first = read_frame(&mut recv).await.map_err(unreachable)?.ok_or_else(|| unreachable("stream ended".into()))?;
    let id = rpc::decode::<Result<String, ClientError>>(&first).map_err(unreachable)??;
    let (in_tx, mut in_rx) = queue::channel::<I>(CONN_QUEUE);
    let (out_tx, out_rx) = outbound::channel::<O>(CONN_QUEUE);
    tokio::spawn(async move {
        while let Some(input) = in_rx.recv().await {
            if write_frame(&mut send, &rpc::encode(&input)).await.is_err() {
                return;
            }
        }
        let _ = send.finish();
    });
    tokio::spawn(async move {
        loop {
            match read_frame(&mut recv).await {
                Ok(Some(frame)) => match rpc::decode::<O>(&frame) {
                    Ok(output) => {
                        if out_tx.send(output).await.is_err() {
                            return;
                        }
                    }
                    Err(e) => {
                        tracing::warn!("bridged socket: {e}");
                        break;
                    }
                },
                Ok(None) => return,
                Err(e) => {
                    tracing::debug!("bridged socket lost: {e}");
                    break;
                }
            }
        }
        out_tx.close(lost);
    });
    Ok(Bridged { id, inbound: in_tx, outbound: out_rx })
}

/// Serves a bridged stream a peer opened: opens the socket on the local actor and pumps until either side ends.
pub async fn serve(host: Host, header: &[u8], send: Option<SendStream>, recv: RecvStream) {
    let Some(send) = send else {
        tracing::warn!("a peer opened a one-way stream for a socket");
        return;
    };
    let open = match rpc::decode::<StreamOpen>(header) {
        Ok(open) => open,
        Err(e) => {
            tracing::warn!("{e}");
            return;
        }
    };
    use tern_gateway::backend::Backend;
    match open {
        StreamOpen::Connect { actor_id, params } => {
            pump(host.connect(&actor_id, params).await.map(Bridged::from), send, recv).await;
        }
        StreamOpen::Resume { actor_id, conn_id } => {
            pump(host.resume(&actor_id, &conn_id).await.map(Bridged::from), send, recv).await;
        }
        StreamOpen::Socket { actor_id, request, params, resumed } => {
            let opened = match request.into_http(|_| ()) {
                Ok(request) => host.open_raw_socket(&actor_id, request, params, resumed).await,
                Err(e) => Err(e),
            };
            pump(opened.map(Bridged::from), send, recv).await;
        }
    }
}

impl From<RawSocketHandle> for Bridged<SocketMessage, SocketOutput> {
    fn from(handle: RawSocketHandle) -> Self {
        Bridged { id: handle.socket_id, inbound: handle.inbound, outbound: handle.outbound }
    }
}

impl From<ConnectionHandle> for Bridged<ConnInput, ConnOutput> {
    fn from(handle: ConnectionHandle) -> Self {
        Bridged { id: handle.connection_id, inbound: handle.inbound, outbound: handle.outbound }
    }
}

/// The home's side: answers the open, then moves frames both ways.
async fn pump<I, O>(opened: Result<Bridged<I, O>, ClientError>, mut send: SendStream, mut recv: RecvStream)
where
    I: DeserializeOwned + Send + 'static,
    O: Serialize + Send + 'static,
{
    let first = opened.as_ref().map(|b| b.id.clone()).map_err(Clone::clone);
    if write_frame(&mut send, &rpc::encode(&first)).await.is_err() {
        return;
    }
    let Ok(Bridged { inbound, mut outbound, .. }) = opened else {
        let _ = send.finish();
        return;
    };
    let from_client = async move {
        while let Ok(Some(frame)) = read_frame(&mut recv).await {
            let Ok(input) = rpc::decode::<I>(&frame) else { break };
            if inbound.send(input).await.is_err() {
                break;
            }
        }
        // Dropping `inbound` tells the actor the client left.
    };
    let to_client = async move {
        while let Some(output) = outbound.recv().await {
            if write_frame(&mut send, &rpc::encode(&output)).await.is_err() {
                return;
            }
        }
        let _ = send.finish();
    };
    tokio::join!(from_client, to_client);
}

async fn write_frame(send: &mut SendStream, frame: &[u8]) -> Result<(), String> {
    let len = u32::try_from(frame.len()).map_err(|_| "frame too large".to_string())?;
    send.write_all(&len.to_be_bytes()).await.map_err(|e| e.to_string())?;
    send.write_all(frame).await.map_err(|e| e.to_string())
}

/// The next frame, or `None` at a clean end of stream.
async fn read_frame(recv: &mut RecvStream) -> Result<Option<Vec<u8>>, String> {
    let mut len = [0u8; 4];
    match recv.read_exact(&mut len).await {
        Ok(()) => {}
        Err(quinn::ReadExactError::FinishedEarly(0)) => return Ok(None),
        Err(e) => return Err(e.to_string()),
    }
    let len = u32::from_be_bytes(len) as usize;
    if len > MAX_FRAME {
        return Err(format!("frame of {len} bytes over the limit of {MAX_FRAME}"));
    }
    let mut frame = vec![0u8; len];
    recv.read_exact(&mut frame).await.map_err(|e| e.to_string())?;
    Ok(Some(frame))
}
