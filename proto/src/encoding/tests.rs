//! Test vectors produced by RivetKit 2.3.19's own codecs (see the compatibility notes), and round trips.

use super::*;
use crate::messages::ActorSpecifier;

fn hex(text: &str) -> Vec<u8> {
    let digits: String = text.chars().filter(|c| c.is_ascii_hexdigit()).collect();
    (0..digits.len()).step_by(2).map(|i| u8::from_str_radix(&digits[i..i + 2], 16).unwrap()).collect()
}

fn int(n: i64) -> Value {
    Value::Integer(n.into())
}

#[test]
fn bare_vectors_match_rivetkit() {
    let bare = Encoding::Bare;
    let action = ToServer::ActionRequest { id: 0, name: "increment".into(), args: Value::Array(vec![int(5)]) };
    assert_eq!(bare.encode_to_server(&action), hex("0400 00 00 09 696e6372656d656e74 02 8105"));
    assert_eq!(bare.decode_to_server(&hex("0400 00 00 09 696e6372656d656e74 02 8105")).unwrap(), action);
    let sub = ToServer::SubscriptionRequest { event_name: "count".into(), subscribe: true };
    assert_eq!(bare.decode_to_server(&hex("0400 01 05 636f756e74 01")).unwrap(), sub);
    let init = ToClient::Init { actor_id: "a1".into(), connection_id: "c1".into() };
    assert_eq!(bare.encode_to_client(&init), hex("0400 00 02 6131 02 6331"));
    let response = ToClient::ActionResponse { id: 0, output: int(5) };
    assert_eq!(bare.encode_to_client(&response), hex("0400 02 00 01 05"));
    let event = ToClient::Event { name: "count".into(), args: Value::Array(vec![int(5)]) };
    assert_eq!(bare.encode_to_client(&event), hex("0400 03 05 636f756e74 02 8105"));
    let error = ToClient::Error(ErrorFrame {
        group: "user".into(),
        code: "x".into(),
        message: "m".into(),
        metadata: None,
        action_id: Some(0),
        actor: None,
    });
    assert_eq!(bare.encode_to_client(&error), hex("0400 01 04 75736572 01 78 01 6d 00 01 00 00"));
    assert_eq!(bare.decode_action_request(&hex("0400 02 8105")).unwrap(), Value::Array(vec![int(5)]));
    assert_eq!(bare.encode_action_response(&int(5)), hex("0400 01 05"));
    let queue =
        bare.decode_queue_send_request(&hex("0400 06 b90001616101 01 04 6a6f6273 01 01 01 8813000000000000")).unwrap();
    assert_eq!(queue.name.as_deref(), Some("jobs"));
    assert_eq!(queue.wait, Some(true));
    assert_eq!(queue.timeout, Some(5000));
    assert_eq!(queue.body, Value::Map(vec![(Value::Text("a".into()), int(1))]));
}

#[test]
fn json_and_cbor_vectors_match_rivetkit() {
    let action = ToServer::ActionRequest { id: 0, name: "increment".into(), args: Value::Array(vec![int(5)]) };
    let json = br#"{"body":{"tag":"ActionRequest","val":{"id":["$BigInt","0"],"name":"increment","args":[5]}}}"#;
    assert_eq!(Encoding::Json.encode_to_server(&action), json.to_vec());
    assert_eq!(Encoding::Json.decode_to_server(json).unwrap(), action);
    let cbor = hex("b90001 64 626f6479 b90002 63 746167 6d 416374696f6e52657175657374 63 76616c b90003 \
         62 6964 1b0000000000000000 64 6e616d65 69 696e6372656d656e74 64 61726773 8105");
    assert_eq!(Encoding::Cbor.encode_to_server(&action), cbor);
    assert_eq!(Encoding::Cbor.decode_to_server(&cbor).unwrap(), action);
}

#[test]
fn json_errors_always_carry_a_nullable_action_id() {
    let frame = ErrorFrame {
        group: "actor".into(),
        code: "not_found".into(),
        message: "gone".into(),
        metadata: None,
        action_id: None,
        actor: None,
    };
    let text = String::from_utf8(Encoding::Json.encode_to_client(&ToClient::Error(frame))).unwrap();
    assert_eq!(
        text,
        r#"{"body":{"tag":"Error","val":{"group":"actor","code":"not_found","message":"gone","actionId":null}}}"#
    );
}

#[test]
fn every_message_round_trips_in_every_encoding() {
    let big = Value::Integer(u64::MAX.into());
    let frame = ErrorFrame {
        group: "user".into(),
        code: "bad".into(),
        message: "no".into(),
        metadata: Some(Value::Map(vec![(Value::Text("n".into()), int(-3))])),
        action_id: Some(7),
        actor: Some(ActorSpecifier { actor_id: "a".into(), generation: 2, key: Some("k".into()) }),
    };
    for enc in [Encoding::Json, Encoding::Cbor, Encoding::Bare] {
        let to_client = [
            ToClient::Init { actor_id: "a".into(), connection_id: "c".into() },
            ToClient::ActionResponse { id: u64::MAX, output: Value::Bytes(vec![1, 2, 3]) },
            ToClient::Event { name: "e".into(), args: Value::Array(vec![big.clone(), Value::Text("x".into())]) },
            ToClient::Error(frame.clone()),
        ];
        for msg in to_client {
            assert_eq!(enc.decode_to_client(&enc.encode_to_client(&msg)).unwrap(), msg, "{enc:?}");
        }
        let to_server = [
            ToServer::ActionRequest { id: 3, name: "a".into(), args: Value::Array(vec![Value::Null, big.clone()]) },
            ToServer::SubscriptionRequest { event_name: "e".into(), subscribe: false },
        ];
        for msg in to_server {
            assert_eq!(enc.decode_to_server(&enc.encode_to_server(&msg)).unwrap(), msg, "{enc:?}");
        }
        let mut http_error = frame.clone();
        http_error.action_id = None;
        assert_eq!(enc.decode_error(&enc.encode_error(&http_error)).unwrap(), http_error, "{enc:?}");
        let args = Value::Array(vec![int(1)]);
        assert_eq!(enc.decode_action_request(&enc.encode_action_request(&args)).unwrap(), args);
        assert_eq!(enc.decode_action_response(&enc.encode_action_response(&big)).unwrap(), big);
        let req = HttpQueueSendRequest { body: int(4), name: Some("q".into()), wait: Some(true), timeout: Some(9) };
        assert_eq!(enc.decode_queue_send_request(&enc.encode_queue_send_request(&req)).unwrap(), req);
        let resp = HttpQueueSendResponse { status: "completed".into(), response: Some(int(1)) };
        assert_eq!(enc.decode_queue_send_response(&enc.encode_queue_send_response(&resp)).unwrap(), resp);
    }
}

#[test]
fn malformed_payloads_are_invalid_requests() {
    let cases: [(Encoding, &[u8]); 8] = [
        (Encoding::Json, b"{"),
        (Encoding::Json, br#"{"body":{"tag":"Nope","val":{}}}"#),
        (Encoding::Json, br#"{"body":{"tag":"ActionRequest","val":{"id":1,"name":"a","args":5}}}"#),
        (Encoding::Cbor, &[0xff]),
        (Encoding::Cbor, &[0x01, 0x02]),
        (Encoding::Bare, &[0x04]),
        (Encoding::Bare, &[0x09, 0x00, 0x00]),
        (Encoding::Bare, &[0x04, 0x00, 0x07]),
    ];
    for (enc, payload) in cases {
        let err = enc.decode_to_server(payload).unwrap_err();
        assert_eq!(err.qualified_code(), "actor.invalid_request", "{enc:?} {payload:?}");
        assert_eq!(err.status, 400);
    }
}

/// Found by the `client_json` fuzz target: serde_json's default float parser is not correctly rounded, so a JSON
/// number could decode one unit in the last place away from what JavaScript's `JSON.parse` (and Rust's own parser)
/// reads, and encoding that float and decoding it again moved it once more.
#[test]
fn json_floats_decode_correctly_rounded_and_round_trip() {
    for text in
        ["5.333333333333333e48", "0.1", "2.2250738585072014e-308", "1.7976931348623157e308", "9007199254740993.5"]
    {
        let expected: f64 = text.parse().unwrap();
        let args = Encoding::Json.decode_action_request(format!(r#"{{"args":[{text}]}}"#).as_bytes()).unwrap();
        assert_eq!(args, Value::Array(vec![Value::Float(expected)]), "{text}");
        let again = Encoding::Json.decode_action_request(&Encoding::Json.encode_action_request(&args)).unwrap();
        assert_eq!(again, args, "{text}");
    }
}
