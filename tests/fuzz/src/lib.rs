//! What the fuzz targets check, one function per decoder of outside input. The targets in `fuzz_targets/` hand
//! libFuzzer's inputs to these functions; `examples/seeds.rs` writes the committed corpus with the encoders.
//!
//! Every check holds a decoder to the same contract: arbitrary bytes are either refused with the decoder's typed
//! error, or decoded into a value that encodes and decodes back to the same bytes. A panic anywhere (a failed
//! assertion, an arithmetic overflow, an index out of bounds, an allocation over libFuzzer's limit) is a crash.

use std::fmt::Debug;

use bytes::Bytes;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tern_gateway::target::{self, Target};
use tern_node::cluster::directory::liveness::Liveness;
use tern_node::cluster::directory::{KeyBinding, Placement};
use tern_node::cluster::rpc::{
    self, AcceptValue, CallsMessage, DirectoryMessage, ForwardAction, ForwardCreate, ForwardInspect, ForwardKvGet,
    ForwardList, ForwardQueueSend, ForwardRawRequest, ForwardReplicas, MembershipMessage, PeerCall, PrepareBallot,
    PullMembers, ReadRegister,
};
use tern_node::replica::ReplicationMessage;
use tern_proto::key::{self, ActorKey, MAX_KEY_BYTES, MAX_KEY_PART_BYTES};
use tern_proto::{ClientError, Encoding, ToServer, Value};
use tern_replication::wal::{Batch, FRAME_HEADER, WalError};
use tern_replication::wire::{self, Response, WireError};

/// Every decoder of `encoding`: the server's (connection messages, HTTP action and queue bodies) and the Rust
/// client's (connection messages, action and queue answers, error bodies). Refusals are `actor.invalid_request`;
/// action arguments are always an array.
pub fn client_protocol(encoding: Encoding, data: &[u8]) {
    if let Some(ToServer::ActionRequest { args, .. }) =
        round_trip(data, |b| encoding.decode_to_server(b), |m| encoding.encode_to_server(m))
    {
        assert!(matches!(args, Value::Array(_)), "action arguments decoded as {args:?}");
    }
    if let Some(args) =
        round_trip(data, |b| encoding.decode_action_request(b), |args| encoding.encode_action_request(args))
    {
        assert!(matches!(args, Value::Array(_)), "action arguments decoded as {args:?}");
    }
    round_trip(data, |b| encoding.decode_queue_send_request(b), |r| encoding.encode_queue_send_request(r));
    round_trip(data, |b| encoding.decode_to_client(b), |m| encoding.encode_to_client(m));
    round_trip(data, |b| encoding.decode_action_response(b), |v| encoding.encode_action_response(v));
    round_trip(data, |b| encoding.decode_queue_send_response(b), |r| encoding.encode_queue_send_response(r));
    round_trip(data, |b| encoding.decode_error(b), |frame| encoding.encode_error(frame));
}

/// Decodes `data`: a refusal must be `actor.invalid_request`; a message must encode to bytes that decode to a
/// message encoding to the same bytes (byte equality, since a user value may hold a NaN). Returns the message.
fn round_trip<T: Debug>(
    data: &[u8],
    decode: impl Fn(&[u8]) -> Result<T, ClientError>,
    encode: impl Fn(&T) -> Vec<u8>,
) -> Option<T> {
    let message = match decode(data) {
        Ok(message) => message,
        Err(e) => {
            assert!(e.is(&ClientError::invalid_request("")), "refused with {e:?}, not as an invalid request");
            return None;
        }
    };
    let encoded = encode(&message);
    let again =
        decode(&encoded).unwrap_or_else(|e| panic!("{message:?} encodes to {encoded:?}, which does not decode: {e:?}"));
    assert_eq!(encode(&again), encoded, "{message:?} decodes from its own encoding as {again:?}");
    Some(message)
}

/// The key parsers on `data` as text: the serialized form (REST `key`) and the `rvt-key` query form. A key parsed
/// is within the limits and parses back from its serialized form; a refusal is `actor.key_too_large`. Parts split
/// on newlines serialize and deserialize back to themselves.
pub fn actor_key(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    parsed_key(ActorKey::parse(text));
    if let Some(key) = parsed_key(ActorKey::from_query(text)) {
        assert_eq!(key.parts().join(","), text, "the query form has no escaping");
    }
    let parts: Vec<String> = text.split('\n').map(str::to_string).collect();
    assert_eq!(key::deserialize_key(&key::serialize_key(&parts)), parts);
}

/// A parsed key's checks; `None` when it was refused (as too large, the only refusal).
fn parsed_key(parsed: Result<ActorKey, ClientError>) -> Option<ActorKey> {
    let key = match parsed {
        Ok(key) => key,
        Err(e) => {
            assert!(e.is(&ClientError::key_too_large("", 0, 0)), "refused with {e:?}");
            return None;
        }
    };
    let serialized = key.serialize();
    assert!(serialized.len() <= MAX_KEY_BYTES, "{serialized:?} is over the limit");
    assert!(key.parts().iter().all(|part| part.len() <= MAX_KEY_PART_BYTES), "{key:?} has a part over the limit");
    assert_eq!(ActorKey::parse(&serialized).expect("a key's serialized form parses"), key);
    Some(key)
}

/// The catalogue errors a gateway target may be refused with.
fn target_refusals() -> [ClientError; 8] {
    let guard = |code| ClientError::guard_query(code, "");
    [
        guard("query_unknown_param"),
        guard("query_duplicate_param"),
        guard("query_missing_method"),
        guard("query_invalid_param"),
        guard("query_invalid_method"),
        ClientError::namespace_not_found(""),
        ClientError::key_too_large("", 0, 0),
        ClientError::invalid_request(""),
    ]
}

/// The gateway's target parser on `data` as the text after `/gateway/`: the path segment, then `?` and the raw
/// query. A refusal is one of the catalogue's query errors; a target names what the segment says; the query passed
/// on to the actor holds no `rvt-*` parameter (however it is escaped) and only parameters of the request's own.
pub fn rvt_query(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let (segment, query) = match text.split_once('?') {
        Some((segment, query)) => (segment, Some(query)),
        None => (text, None),
    };
    let (target, rest) = match target::parse(segment, query) {
        Ok(parsed) => parsed,
        Err(e) => {
            assert!(target_refusals().iter().any(|known| e.is(known)), "refused with {e:?}");
            return;
        }
    };
    match target {
        Target::Id(id) => {
            assert!(!id.is_empty() && !id.contains('@') && segment.starts_with(&id), "{id:?} from {segment:?}")
        }
        Target::Query { name, key, .. } => {
            assert_eq!(name, segment);
            assert_eq!(ActorKey::new(key.parts().to_vec()).expect("a parsed key is within the limits"), key);
        }
    }
    let Some(rest) = rest else { return };
    assert!(!rest.is_empty(), "an empty query is passed on as none");
    if let Some((name, _)) = form_urlencoded::parse(rest.as_bytes()).find(|(name, _)| name.starts_with("rvt-")) {
        panic!("{name:?} of {query:?} is passed on to the actor as {rest:?}");
    }
    let mut given = query.unwrap_or_default().split('&');
    for part in rest.split('&') {
        assert!(given.any(|p| p == part), "{part:?} is passed on, but {query:?} has no such parameter there");
    }
}

/// The WAL batch decoder on `data` as it came, and again with its checksums made right, so that inputs reach the
/// checks behind them. A refusal is [`WalError::Corrupt`]; a batch is valid, re-encodes to exactly its bytes, and
/// ends at a position after the one it follows.
pub fn wal_batch(data: &[u8]) {
    check_batch(data);
    check_batch(&with_checksums(data));
}

fn check_batch(wire: &[u8]) {
    let batch = match Batch::decode(Bytes::copy_from_slice(wire)) {
        Ok(batch) => batch,
        Err(WalError::Corrupt(_)) => return,
        Err(other) => panic!("refused with {other:?}, not as corrupt"),
    };
    assert_eq!(batch.encode(), wire, "{batch:?} re-encodes to other bytes");
    batch.validate().expect("a decoded batch is valid");
    assert!(batch.end() > batch.after, "{batch:?} ends at {} before it starts", batch.end());
    assert!(batch.frames.last().is_some_and(|frame| frame.is_commit()));
}

/// Bytes of a batch's header, its checksum included (see `Batch::encode`).
const BATCH_HEADER: usize = 36;

/// `data` with the CRC-32s of a batch's header and of each whole frame recomputed.
fn with_checksums(data: &[u8]) -> Vec<u8> {
    let mut wire = data.to_vec();
    if wire.len() < BATCH_HEADER {
        return wire;
    }
    let crc = crc32fast::hash(&wire[..BATCH_HEADER - 4]);
    wire[BATCH_HEADER - 4..BATCH_HEADER].copy_from_slice(&crc.to_be_bytes());
    let page_size = u32::from_be_bytes(wire[24..28].try_into().expect("four bytes"));
    let frame_len = FRAME_HEADER + page_size as usize;
    for frame in wire[BATCH_HEADER..].chunks_exact_mut(frame_len + 4) {
        let (bytes, crc) = frame.split_at_mut(frame_len);
        crc.copy_from_slice(&crc32fast::hash(bytes).to_be_bytes());
    }
    wire
}

/// The transport's response reader on `data`: two bytes of body limit (little-endian), then a response stream. A
/// refusal is a malformed stream or a body over the limit (never a connection error); a response's body is
/// within the limit and the response encodes to the bytes it was read from (a failure's message, read as lossy
/// UTF-8, to bytes that read back to it).
pub fn peer_response(data: &[u8]) {
    let [low, high, bytes @ ..] = data else { return };
    let limit = usize::from(u16::from_le_bytes([*low, *high]));
    let response = match wire::decode_response(bytes, limit) {
        Ok(response) => response,
        Err(WireError::Stream(_) | WireError::TooLarge { .. }) => return,
        Err(other) => panic!("refused with {other:?}"),
    };
    let encoded = wire::encode_response(&response).expect("a response read from memory encodes");
    match &response {
        Response::Failed(message) => {
            assert!(message.len() <= limit * 3, "{message:?} is over the limit of {limit} bytes");
            let again = wire::decode_response(&encoded, encoded.len()).expect("an encoded response decodes");
            assert_eq!(again, response);
        }
        Response::Ok(body) => {
            assert!(body.len() <= limit, "a body of {} bytes is over the limit of {limit}", body.len());
            assert_eq!(encoded, bytes[..encoded.len()]);
        }
        Response::TooLarge { .. } | Response::UnknownService => assert_eq!(encoded, bytes[..encoded.len()]),
    }
}

/// How many message types [`peer_messages`] decodes, chosen by the input's first byte.
const PEER_MESSAGE_TYPES: u8 = 18;

/// The inter-node decoder (`rpc::decode`, CBOR) on `data`'s tail as the message type its first byte picks: each
/// service's calls, the replies a caller decodes, and the directory's register records. A message re-encodes
/// (encoding must not fail) to bytes that decode and encode to the same bytes; the WAL batch a replication call
/// carries goes through [`wal_batch`]'s checks.
pub fn peer_messages(data: &[u8]) {
    let Some((selector, bytes)) = data.split_first() else { return };
    match selector % PEER_MESSAGE_TYPES {
        0 => message::<DirectoryMessage>(bytes),
        1 => message::<CallsMessage>(bytes),
        2 => message::<MembershipMessage>(bytes),
        3 => {
            if let Some(ReplicationMessage::Frames(frames)) = decoded::<ReplicationMessage>(bytes) {
                check_batch(&frames.batch);
            }
        }
        4 => reply::<ReadRegister>(bytes),
        5 => reply::<PrepareBallot>(bytes),
        6 => reply::<AcceptValue>(bytes),
        7 => reply::<PullMembers>(bytes),
        8 => reply::<ForwardCreate>(bytes),
        9 => reply::<ForwardList>(bytes),
        10 => reply::<ForwardAction>(bytes),
        11 => reply::<ForwardRawRequest>(bytes),
        12 => reply::<ForwardInspect>(bytes),
        13 => reply::<ForwardKvGet>(bytes),
        14 => reply::<ForwardQueueSend>(bytes),
        15 => reply::<ForwardReplicas>(bytes),
        16 => {
            message::<Placement>(bytes);
            message::<KeyBinding>(bytes);
        }
        _ => message::<Liveness>(bytes),
    }
}

/// [`message`] for the reply to a call of type `C`.
fn reply<C: PeerCall>(bytes: &[u8]) {
    message::<C::Reply>(bytes);
}

/// Checks `bytes` as an inter-node message of type `T`.
fn message<T: Serialize + DeserializeOwned>(bytes: &[u8]) {
    decoded::<T>(bytes);
}

/// Decodes one inter-node message; its refusal is `rpc::decode`'s error, a message is checked as
/// [`peer_messages`] says.
fn decoded<T: Serialize + DeserializeOwned>(bytes: &[u8]) -> Option<T> {
    let message: T = rpc::decode(bytes).ok()?;
    let encoded = rpc::encode(&message);
    let again: T = rpc::decode(&encoded).unwrap_or_else(|e| panic!("{encoded:?} does not decode: {e}"));
    assert_eq!(rpc::encode(&again), encoded);
    Some(message)
}
