//! JSON-compat conversions against what RivetKit's JavaScript codecs produce.

use super::*;
use serde_json::json;

fn int(n: i128) -> Value {
    Value::Integer(i64::try_from(n).unwrap().into())
}

#[test]
fn compat_tags_are_revived() {
    assert_eq!(from_json(&json!(["$BigInt", "12"])), int(12));
    assert_eq!(from_json(&json!(["$Uint8Array", "AQID"])), Value::Bytes(vec![1, 2, 3]));
    assert_eq!(from_json(&json!(["$ArrayBuffer", "AQI"])), Value::Bytes(vec![1, 2]));
    assert_eq!(from_json(&json!(["$Undefined", 0])), Value::Null);
    assert_eq!(from_json(&json!(["$Set", [1, 2]])), Value::Array(vec![int(1), int(2)]));
    assert_eq!(from_json(&json!(["$$x", 1])), Value::Array(vec![Value::Text("$x".into()), int(1)]));
    // A malformed tag stays an array.
    assert_eq!(
        from_json(&json!(["$BigInt", "x"])),
        Value::Array(vec![Value::Text("$BigInt".into()), Value::Text("x".into())])
    );
}

#[test]
fn outgoing_json_uses_compat_tags() {
    assert_eq!(to_json(&int(1 << 53)), json!(["$BigInt", "9007199254740992"]));
    assert_eq!(to_json(&int((1 << 53) - 1)), json!(9007199254740991i64));
    assert_eq!(to_json(&Value::Bytes(vec![1, 2, 3])), json!(["$Uint8Array", "AQID"]));
    assert_eq!(to_json(&Value::Array(vec![Value::Text("$x".into()), int(1)])), json!(["$$x", 1]));
    assert_eq!(to_json(&Value::Float(f64::NAN)), json!(null));
}

#[test]
fn big_integers_round_trip_through_json() {
    let huge = Value::Integer(u64::MAX.into());
    assert_eq!(from_json(&to_json(&huge)), huge);
    let negative = Value::Integer(i64::MIN.into());
    assert_eq!(from_json(&to_json(&negative)), negative);
}

#[test]
fn wire_cbor_matches_cbor_x_number_rules() {
    assert_eq!(to_wire_cbor(&int(5)), int(5));
    assert_eq!(to_wire_cbor(&int(1 << 40)), Value::Float((1u64 << 40) as f64));
    assert_eq!(to_wire_cbor(&int(1 << 60)), int(1 << 60));
    assert_eq!(revive(Value::Float((1u64 << 40) as f64)), int(1 << 40));
}

#[test]
fn cbor_decoding_refuses_trailing_bytes_and_garbage() {
    assert_eq!(from_cbor_bytes(&[0x05]).unwrap(), int(5));
    assert!(from_cbor_bytes(&[0x05, 0x05]).is_err());
    assert!(from_cbor_bytes(&[0xff]).is_err());
    assert!(from_cbor_bytes(&[]).is_err());
}

#[test]
fn cbor_nesting_is_bounded() {
    // Arrays of one element nested `depth` times around a 0: 0x81 per level.
    let nested = |depth: usize| {
        let mut bytes = vec![0x81; depth];
        bytes.push(0x00);
        bytes
    };
    assert!(from_cbor_bytes(&nested(100)).is_ok(), "100 levels decode");
    // 200 levels are over the limit of 128 (ciborium's own default, 256, would let them through).
    let err = from_cbor_bytes(&nested(200)).unwrap_err();
    assert_eq!((err.group.as_str(), err.code.as_str(), err.status), ("actor", "invalid_request", 400), "{err:?}");
    assert!(err.message.contains("malformed CBOR"), "{err:?}");
}
