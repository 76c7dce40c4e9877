//! foca's wire format: CBOR (ciborium) for packet headers and member updates.

use bytes::{Buf, BufMut};
use foca::{Codec, Header, Member};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::identity::NodeInfo;

/// A packet or item that could not be encoded or decoded.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub(super) struct CodecError(String);

/// Encodes foca's headers and member updates as CBOR, one item each.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct CborCodec;

/// `value` encoded as one CBOR item.
pub(super) fn to_bytes(value: &impl Serialize) -> Result<Vec<u8>, CodecError> {
    let mut bytes = Vec::new();
    ciborium::into_writer(value, &mut bytes).map_err(|e| CodecError(e.to_string()))?;
    Ok(bytes)
}

/// Encodes `value` into a scratch buffer first, so that a value too large for `buf` leaves `buf` untouched (foca
/// requires it, and packs member updates until one does not fit).
fn encode(value: &impl Serialize, mut buf: impl BufMut) -> Result<(), CodecError> {
    let bytes = to_bytes(value)?;
    if bytes.len() > buf.remaining_mut() {
        return Err(CodecError(format!("{} bytes do not fit in the {} left", bytes.len(), buf.remaining_mut())));
    }
    buf.put_slice(&bytes);
    Ok(())
}

/// Decodes one item and advances `buf` past it, and no further.
pub(super) fn decode<T: DeserializeOwned>(buf: impl Buf) -> Result<T, CodecError> {
    ciborium::from_reader(buf.reader()).map_err(|e| CodecError(e.to_string()))
}

impl Codec<NodeInfo> for CborCodec {
    type Error = CodecError;

    fn encode_header(&mut self, header: &Header<NodeInfo>, buf: impl BufMut) -> Result<(), CodecError> {
        encode(header, buf)
    }

    fn decode_header(&mut self, buf: impl Buf) -> Result<Header<NodeInfo>, CodecError> {
        decode(buf)
    }

    fn encode_member(&mut self, member: &Member<NodeInfo>, buf: impl BufMut) -> Result<(), CodecError> {
        encode(member, buf)
    }

    fn decode_member(&mut self, buf: impl Buf) -> Result<Member<NodeInfo>, CodecError> {
        decode(buf)
    }
}

/// Who a packet claims to come from (its header's source), to check against the sender's certificate.
pub(super) fn claimed_sender(packet: &[u8]) -> Result<NodeInfo, CodecError> {
    decode::<Header<NodeInfo>>(packet).map(|header| header.src)
}

#[cfg(test)]
mod tests {
    use foca::{Message, State};

    use super::*;

    fn node(id: &str) -> NodeInfo {
        let quic_addr = "127.0.0.1:7420".parse().unwrap();
        NodeInfo {
            id: id.into(),
            generation: 3,
            region: "fra".into(),
            zone: None,
            gateway_url: "http://x".into(),
            quic_addr,
        }
    }

    #[test]
    fn items_round_trip_one_after_another() {
        let header = Header { src: node("a"), src_incarnation: 2, dst: node("b"), message: Message::Ping(9) };
        let member = Member::new(node("c"), 1, State::Suspect);
        let mut buf = Vec::new();
        CborCodec.encode_header(&header, &mut buf).unwrap();
        CborCodec.encode_member(&member, &mut buf).unwrap();
        assert_eq!(claimed_sender(&buf).unwrap(), node("a"));
        let mut cursor = &buf[..];
        assert_eq!(CborCodec.decode_header(&mut cursor).unwrap(), header);
        assert_eq!(CborCodec.decode_member(&mut cursor).unwrap(), member);
        assert!(cursor.is_empty(), "each decode stops right after its item");
        assert!(CborCodec.decode_member(&mut &b"\xff\x00"[..]).is_err());
    }

    #[test]
    fn an_item_that_does_not_fit_leaves_the_buffer_untouched() {
        let member = Member::new(node("c"), 1, State::Alive);
        let mut buf = bytes::BytesMut::new().limit(8);
        buf.put_slice(b"abc");
        assert!(CborCodec.encode_member(&member, &mut buf).is_err());
        assert_eq!(&buf.get_ref()[..], b"abc");
    }
}
