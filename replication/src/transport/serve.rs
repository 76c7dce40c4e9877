//! Serving what peers send: incoming connections, request streams, raw streams and datagrams. Every connection,
//! dialled or accepted, is served the same way, so either end may call the other on it.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use futures_util::FutureExt;
use quinn::{RecvStream, SendStream};
use tracing::{debug, warn};

use super::endpoint::{Datagram, IncomingStream, Shared};
use super::error::connection_error;
use super::peers::{Link, PeerInfo};
use super::service::Service;
use super::wire::{self, CODE_PROTOCOL, CODE_REFUSED, KIND_REQUEST, KIND_STREAM, Response, WireError};

/// Accepts connections until the endpoint closes. A peer whose certificate is not from the cluster CA, or that
/// speaks none of our versions, fails the handshake and is logged.
pub(crate) async fn accept_loop(shared: Arc<Shared>) {
    while let Some(incoming) = shared.endpoint.accept().await {
        let shared = shared.clone();
        tokio::spawn(async move {
            let addr = incoming.remote_address();
            let conn = match incoming.await {
                Ok(conn) => conn,
                Err(e) => {
                    let error = connection_error(addr, &e, &shared.ours);
                    return warn!(peer = %addr, "refused an incoming connection: {error}");
                }
            };
            match Link::new(conn.clone()) {
                Ok(link) => {
                    debug!(peer = %addr, name = %link.peer.name, version = %link.peer.version, "accepted a connection");
                    shared.peers.adopt(&link);
                    spawn_connection(shared, link);
                }
                Err(reason) => {
                    warn!(peer = %addr, "refused an incoming connection: {reason}");
                    conn.close(CODE_PROTOCOL, reason.as_bytes());
                }
            }
        });
    }
}

/// Serves the streams and datagrams the peer sends on `link` until the connection closes.
pub(crate) fn spawn_connection(shared: Arc<Shared>, link: Link) {
    tokio::spawn(accept_bi(shared.clone(), link.clone()));
    tokio::spawn(accept_uni(shared.clone(), link.clone()));
    tokio::spawn(receive_datagrams(shared, link));
}

async fn accept_bi(shared: Arc<Shared>, link: Link) {
    loop {
        match link.conn.accept_bi().await {
            Ok((send, recv)) => {
                tokio::spawn(serve_bi(shared.clone(), link.peer.clone(), send, recv));
            }
            Err(e) => {
                let error = connection_error(link.peer.addr, &e, &shared.ours);
                return debug!(peer = %link.peer.addr, name = %link.peer.name, "connection closed: {error}");
            }
        }
    }
}

async fn accept_uni(shared: Arc<Shared>, link: Link) {
    while let Ok(mut recv) = link.conn.accept_uni().await {
        let shared = shared.clone();
        let peer = link.peer.clone();
        tokio::spawn(async move {
            match tokio::time::timeout(shared.config.request_timeout, wire::read_kind(&mut recv)).await {
                Ok(Ok((KIND_STREAM, service))) => deliver_stream(&shared, peer, service, None, recv).await,
                _ => drop(recv.stop(CODE_PROTOCOL)),
            }
        });
    }
}

async fn receive_datagrams(shared: Arc<Shared>, link: Link) {
    while let Ok(payload) = link.conn.read_datagram().await {
        if let Some(datagrams) = &shared.datagrams
            && datagrams.send(Datagram { peer: link.peer.clone(), payload }).await.is_err()
        {
            return;
        }
    }
}

async fn serve_bi(shared: Arc<Shared>, peer: PeerInfo, mut send: SendStream, mut recv: RecvStream) {
    match tokio::time::timeout(shared.config.request_timeout, wire::read_kind(&mut recv)).await {
        Ok(Ok((KIND_REQUEST, service))) => serve_request(&shared, peer, service, send, recv).await,
        Ok(Ok((KIND_STREAM, service))) => deliver_stream(&shared, peer, service, Some(send), recv).await,
        _ => {
            let _ = recv.stop(CODE_PROTOCOL);
            let _ = send.reset(CODE_PROTOCOL);
        }
    }
}

/// Reads one request, runs its service's handler and writes its response. The handler is dropped if the caller
/// gives up (its timeout fired), which stops the caller's stream.
async fn serve_request(shared: &Shared, peer: PeerInfo, service: Service, send: SendStream, mut recv: RecvStream) {
    let limit = shared.config.max_frame_size;
    let addr = peer.addr;
    let request = match tokio::time::timeout(shared.config.request_timeout, wire::read_frame(&mut recv, limit)).await {
        Ok(Ok(request)) => request,
        Ok(Err(WireError::TooLarge { size, limit })) => {
            let _ = recv.stop(CODE_REFUSED);
            return respond(send, &Response::TooLarge { size, limit }, peer).await;
        }
        Ok(Err(e)) => return debug!(peer = %addr, "unreadable request: {}", e.into_error(addr, &shared.ours)),
        Err(_) => return debug!(peer = %addr, "request not received in time"),
    };
    let Some(handler) = shared.services.handler(service) else {
        debug!(peer = %addr, %service, "refused a request for a service this node does not serve");
        return respond(send, &Response::UnknownService, peer).await;
    };
    // The handler runs in this stream's task (a task of its own would cost every request one more hand-off), and a
    // panic in it is caught here, so that it fails only its request.
    let handling = AssertUnwindSafe(handler(peer.clone(), request)).catch_unwind();
    let response = tokio::select! {
        outcome = handling => match outcome {
            Ok(Ok(body)) if body.len() > limit => Response::TooLarge { size: body.len() as u64, limit: limit as u64 },
            Ok(Ok(body)) => Response::Ok(body),
            Ok(Err(e)) => Response::Failed(e.to_string()),
            Err(_) => Response::Failed("the request handler panicked".into()),
        },
        // Dropping the handler stops it.
        _ = send.stopped() => return debug!(peer = %addr, "the caller gave up on its request"),
    };
    respond(send, &response, peer).await;
}

async fn respond(mut send: SendStream, response: &Response, peer: PeerInfo) {
    if let Err(e) = wire::write_response(&mut send, response).await {
        debug!(peer = %peer.addr, "could not send a response: {e:?}");
    }
}

/// Reads a raw stream's header and hands the stream to its service's receiver, or refuses it if the service takes
/// no streams.
async fn deliver_stream(
    shared: &Shared,
    peer: PeerInfo,
    service: Service,
    mut send: Option<SendStream>,
    mut recv: RecvStream,
) {
    let header =
        tokio::time::timeout(shared.config.request_timeout, wire::read_frame(&mut recv, shared.config.max_frame_size));
    let (Ok(Ok(header)), Some(streams)) = (header.await, shared.services.streams(service)) else {
        let _ = recv.stop(CODE_REFUSED);
        if let Some(send) = &mut send {
            let _ = send.reset(CODE_REFUSED);
        }
        return;
    };
    // A receiver that is gone drops the stream, which refuses it.
    let _ = streams.send(IncomingStream { peer, header, send, recv }).await;
}
