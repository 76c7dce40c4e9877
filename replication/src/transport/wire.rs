//! The inter-node wire format on QUIC streams.
//!
//! Every stream a node opens starts with a kind byte and a service byte. A request is a bidirectional stream
//! carrying `[KIND_REQUEST][service][frame]` then FIN, answered by `[status][frame]` then FIN. A raw stream (uni-
//! or bidirectional) starts with `[KIND_STREAM][service][frame]` (the opener's header), then whatever the
//! application writes. A frame is a 4-byte big-endian length and that many bytes, refused when longer than the
//! reader's limit.
//!
//! The readers take any [`Source`]: a QUIC stream, or bytes in memory, through which [`decode_response`] reads a
//! response exactly as a caller reads it from its peer.

use std::net::SocketAddr;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use bytes::Bytes;
use quinn::{ConnectionError, ReadError, ReadExactError, RecvStream, SendStream, VarInt, WriteError};

use super::error::{Error, connection_error};
use super::service::Service;

/// The kind byte of a request stream.
pub(crate) const KIND_REQUEST: u8 = 0;
/// The kind byte of a raw stream.
pub(crate) const KIND_STREAM: u8 = 1;

/// Stream error code: the peer broke the wire format.
pub(crate) const CODE_PROTOCOL: VarInt = VarInt::from_u32(1);
/// Stream error code: the stream is refused (no receiver for it, or a frame over the limit).
pub(crate) const CODE_REFUSED: VarInt = VarInt::from_u32(2);

const STATUS_OK: u8 = 0;
const STATUS_FAILED: u8 = 1;
const STATUS_TOO_LARGE: u8 = 2;
const STATUS_UNKNOWN_SERVICE: u8 = 3;

/// A failure on a stream, before it is given its peer's context.
#[derive(Debug, thiserror::Error)]
pub enum WireError {
    /// The connection failed.
    #[error("the connection failed: {0}")]
    Connection(ConnectionError),
    /// The stream failed (reset, stopped, ended inside a frame, malformed content).
    #[error("{0}")]
    Stream(String),
    /// A frame longer than the limit.
    #[error("frame of {size} bytes exceeds the limit of {limit} bytes")]
    TooLarge {
        /// The frame's length, as its prefix says.
        size: u64,
        /// The reader's limit.
        limit: u64,
    },
}

impl WireError {
    /// The error as seen by the caller talking to `addr`; `ours` describes our protocol versions.
    pub(crate) fn into_error(self, addr: SocketAddr, ours: &str) -> Error {
        match self {
            Self::Connection(e) => connection_error(addr, &e, ours),
            Self::Stream(reason) => Error::Protocol { addr, reason },
            Self::TooLarge { size, limit } => Error::FrameTooLarge { size, limit },
        }
    }
}

impl From<WriteError> for WireError {
    fn from(e: WriteError) -> Self {
        match e {
            WriteError::ConnectionLost(e) => Self::Connection(e),
            WriteError::Stopped(code) => Self::Stream(format!("the peer stopped the stream (code {code})")),
            other => Self::Stream(other.to_string()),
        }
    }
}

impl From<ReadError> for WireError {
    fn from(e: ReadError) -> Self {
        match e {
            ReadError::ConnectionLost(e) => Self::Connection(e),
            ReadError::Reset(code) => Self::Stream(format!("the peer reset the stream (code {code})")),
            other => Self::Stream(other.to_string()),
        }
    }
}

impl From<ReadExactError> for WireError {
    fn from(e: ReadExactError) -> Self {
        match e {
            ReadExactError::ReadError(e) => e.into(),
            ReadExactError::FinishedEarly(_) => Self::Stream("the stream ended inside a frame".into()),
        }
    }
}

/// What a request's response says.
#[derive(Debug, PartialEq, Eq)]
pub enum Response {
    /// The handler's output.
    Ok(Bytes),
    /// The handler's error message.
    Failed(String),
    /// The request, or the handler's output, was over a limit.
    TooLarge {
        /// The frame's size in bytes.
        size: u64,
        /// The limit it exceeded.
        limit: u64,
    },
    /// The peer serves no requests for the request's service.
    UnknownService,
}

impl Response {
    /// The status byte and the body frame the response travels as.
    fn to_wire(&self) -> (u8, Bytes) {
        match self {
            Response::Ok(body) => (STATUS_OK, body.clone()),
            Response::Failed(message) => (STATUS_FAILED, Bytes::from(message.clone())),
            Response::TooLarge { size, limit } => {
                (STATUS_TOO_LARGE, Bytes::from([size.to_be_bytes(), limit.to_be_bytes()].concat()))
            }
            Response::UnknownService => (STATUS_UNKNOWN_SERVICE, Bytes::new()),
        }
    }
}

/// Where the readers take bytes from: a QUIC stream, or bytes in memory.
pub(crate) trait Source {
    /// Fills `buf` with the next bytes; fails when the bytes end first.
    fn read_exact(&mut self, buf: &mut [u8]) -> impl Future<Output = Result<(), WireError>> + Send;
}

impl Source for RecvStream {
    async fn read_exact(&mut self, buf: &mut [u8]) -> Result<(), WireError> {
        Ok(RecvStream::read_exact(self, buf).await?)
    }
}

impl Source for &[u8] {
    async fn read_exact(&mut self, buf: &mut [u8]) -> Result<(), WireError> {
        let (head, rest) = self
            .split_at_checked(buf.len())
            .ok_or_else(|| WireError::Stream("the stream ended inside a frame".into()))?;
        buf.copy_from_slice(head);
        *self = rest;
        Ok(())
    }
}

/// `prefix` and the 4-byte length of a frame of `len` bytes.
fn frame_head(prefix: &[u8], len: usize) -> Result<Vec<u8>, WireError> {
    let length =
        u32::try_from(len).map_err(|_| WireError::TooLarge { size: len as u64, limit: u64::from(u32::MAX) })?;
    let mut head = prefix.to_vec();
    head.extend_from_slice(&length.to_be_bytes());
    Ok(head)
}

/// Writes `frame` with its length prefix (the caller has checked it against the limits).
pub(crate) async fn write_frame(send: &mut SendStream, prefix: &[u8], frame: &Bytes) -> Result<(), WireError> {
    send.write_all(&frame_head(prefix, frame.len())?).await?;
    send.write_all(frame).await?;
    Ok(())
}

/// Reads one byte.
pub(crate) async fn read_byte(recv: &mut impl Source) -> Result<u8, WireError> {
    let mut byte = [0u8; 1];
    recv.read_exact(&mut byte).await?;
    Ok(byte[0])
}

/// Reads the kind and service bytes a stream starts with.
pub(crate) async fn read_kind(recv: &mut impl Source) -> Result<(u8, Service), WireError> {
    let mut bytes = [0u8; 2];
    recv.read_exact(&mut bytes).await?;
    Ok((bytes[0], Service(bytes[1])))
}

/// Reads a length-prefixed frame of at most `limit` bytes.
pub(crate) async fn read_frame(recv: &mut impl Source, limit: usize) -> Result<Bytes, WireError> {
    let mut length = [0u8; 4];
    recv.read_exact(&mut length).await?;
    let length = u32::from_be_bytes(length) as usize;
    if length > limit {
        return Err(WireError::TooLarge { size: length as u64, limit: limit as u64 });
    }
    let mut frame = vec![0u8; length];
    recv.read_exact(&mut frame).await?;
    Ok(frame.into())
}

/// Writes a response and finishes the stream.
pub(crate) async fn write_response(send: &mut SendStream, response: &Response) -> Result<(), WireError> {
    let (status, body) = response.to_wire();
    write_frame(send, &[status], &body).await?;
    send.finish().map_err(|e| WireError::Stream(e.to_string()))
}

/// Reads a response whose body is at most `limit` bytes.
pub(crate) async fn read_response(recv: &mut impl Source, limit: usize) -> Result<Response, WireError> {
    let status = read_byte(recv).await?;
    match status {
        STATUS_OK => Ok(Response::Ok(read_frame(recv, limit).await?)),
        STATUS_FAILED => {
            let message = read_frame(recv, limit).await?;
            Ok(Response::Failed(String::from_utf8_lossy(&message).into_owned()))
        }
        STATUS_TOO_LARGE => {
            let body = read_frame(recv, 16).await?;
            let field = |range: std::ops::Range<usize>| body.get(range).and_then(|b| b.try_into().ok());
            match (field(0..8), field(8..16)) {
                (Some(size), Some(limit)) => {
                    Ok(Response::TooLarge { size: u64::from_be_bytes(size), limit: u64::from_be_bytes(limit) })
                }
                _ => Err(WireError::Stream("malformed frame-too-large response".into())),
            }
        }
        STATUS_UNKNOWN_SERVICE => {
            read_frame(recv, 0).await?;
            Ok(Response::UnknownService)
        }
        other => Err(WireError::Stream(format!("unknown response status {other}"))),
    }
}

/// The bytes of a response on its stream, as a serving node writes them: the status byte and the body frame.
pub fn encode_response(response: &Response) -> Result<Vec<u8>, WireError> {
    let (status, body) = response.to_wire();
    let mut bytes = frame_head(&[status], body.len())?;
    bytes.extend_from_slice(&body);
    Ok(bytes)
}

/// Reads a response from `bytes` exactly as a caller reads it from its peer's stream, with bodies of at most
/// `limit` bytes; bytes after the response are left unread, as the caller leaves them. Malformed or truncated
/// bytes are a [`WireError::Stream`], a body over the limit a [`WireError::TooLarge`].
pub fn decode_response(bytes: &[u8], limit: usize) -> Result<Response, WireError> {
    let mut source = bytes;
    match pin!(read_response(&mut source, limit)).poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(response) => response,
        Poll::Pending => unreachable!("bytes in memory are read without waiting"),
    }
}
