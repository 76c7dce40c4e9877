//! Services: what a request or a stream between two nodes is for. Each subsystem of a node (the directory,
//! forwarded calls, membership, socket bridges, later replication and hand-off) registers its own handler or
//! stream receiver under its own [`Service`] tag, and every request and stream carries its tag on the wire, so
//! the transport routes it without knowing what it means.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use bytes::Bytes;
use tokio::sync::mpsc;

use super::endpoint::IncomingStream;
use super::error::Error;
use super::peers::PeerInfo;

/// The tag of a service, chosen by the node: one byte on the wire, the same on every node of a protocol version.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Service(pub u8);

impl fmt::Display for Service {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "service {}", self.0)
    }
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// A service's request handler, type-erased.
pub(crate) type Handler = Arc<dyn Fn(PeerInfo, Bytes) -> BoxFuture<Result<Bytes, Error>> + Send + Sync>;

/// The node's services: a request handler and a stream receiver per tag.
#[derive(Default)]
pub(crate) struct Services {
    handlers: HashMap<Service, Handler>,
    streams: HashMap<Service, mpsc::Sender<IncomingStream>>,
}

impl Services {
    /// Registers `handler` for `service`'s requests; a second registration of one tag is a configuration error.
    pub(crate) fn serve(&mut self, service: Service, handler: Handler) -> Result<(), Error> {
        match self.handlers.insert(service, handler) {
            None => Ok(()),
            Some(_) => Err(Error::Config(format!("two request handlers for {service}"))),
        }
    }

    /// Registers `sender` as the receiver of `service`'s streams.
    pub(crate) fn accept_streams(
        &mut self,
        service: Service,
        sender: mpsc::Sender<IncomingStream>,
    ) -> Result<(), Error> {
        match self.streams.insert(service, sender) {
            None => Ok(()),
            Some(_) => Err(Error::Config(format!("two stream receivers for {service}"))),
        }
    }

    /// The handler of `service`'s requests, if one is registered.
    pub(crate) fn handler(&self, service: Service) -> Option<&Handler> {
        self.handlers.get(&service)
    }

    /// The receiver of `service`'s streams, if one is registered.
    pub(crate) fn streams(&self, service: Service) -> Option<&mpsc::Sender<IncomingStream>> {
        self.streams.get(&service)
    }
}
