//! User values (action arguments and outputs, event arguments, queue bodies, error metadata) and RivetKit's
//! "JSON-compat" representation of them.
//!
//! The JavaScript client runs `encodeJsonCompatValue` before encoding user values with cbor-x (bare) or
//! `JSON.stringify` (json), and `reviveJsonCompatValue` after decoding. The compat form writes JavaScript values
//! that JSON (or a plain CBOR decoder) cannot carry as two-element arrays with a `$`-prefixed tag:
//! `["$BigInt","123"]`, `["$Uint8Array","<base64>"]`, `["$ArrayBuffer","<base64>"]`, `["$Undefined",0]`,
//! `["$Set",[...]]`. A user's own two-element array whose first element is a string starting with `$` is escaped
//! with one more `$` (`["$$x", 1]` means `["$x", 1]`). Only arrays of exactly two elements are tags or escapes.
//!
//! Inside Tern a user value is a CBOR [`Value`]: integers that do not fit 64 bits are bignums (tags 2 and 3).
//! [`from_json`] and [`revive`] turn incoming values into that form, [`to_json`] and [`to_wire_cbor`] prepare
//! outgoing ones so that the JavaScript client decodes exactly what a JavaScript actor would have sent.

mod bignum;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use serde::ser::{Serialize, SerializeMap, SerializeSeq, Serializer};

use crate::Value;
use crate::error::ClientError;

/// Largest integer magnitude JavaScript numbers represent exactly (`Number.MAX_SAFE_INTEGER`).
const MAX_SAFE_INTEGER: i128 = (1 << 53) - 1;
/// cbor-x decodes CBOR integers of up to 32 bits as numbers and 64-bit ones as `BigInt`.
const CBOR_X_NUMBER_LIMIT: i128 = 1 << 32;
/// Nesting depth accepted when decoding CBOR (serde_json's default limit is the same).
const MAX_CBOR_DEPTH: usize = 128;

/// cbor-x writes a `Uint8Array` as tag 64 around a byte string.
const TAG_UINT8_ARRAY: u64 = 64;
/// cbor-x writes a `Set` as tag 258 around an array and a `Map` as tag 259 around a map.
const TAG_SET: u64 = 258;
const TAG_MAP: u64 = 259;

/// Base64 as JavaScript's `Buffer.from(text, "base64")` reads it: standard alphabet, padding optional.
const LENIENT_BASE64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Converts a JSON value (as produced by `jsonStringifyCompat`) into a user value, reviving compat tags.
///
/// JSON integers become `Integer` (or a bignum), other numbers `Float`, objects maps with text keys in document
/// order, and compat tags are revived as in [`revive`]. Never fails: a malformed tag (say `["$BigInt","x"]`) stays
/// a plain array.
pub fn from_json(json: &serde_json::Value) -> Value {
    revive(plain_from_json(json))
}

fn plain_from_json(json: &serde_json::Value) -> Value {
    match json {
        serde_json::Value::Null => Value::Null,
        serde_json::Value::Bool(b) => Value::Bool(*b),
        serde_json::Value::Number(n) => match (n.as_u64(), n.as_i64()) {
            (Some(u), _) => Value::Integer(u.into()),
            (None, Some(i)) => Value::Integer(i.into()),
            (None, None) => Value::Float(n.as_f64().unwrap_or(f64::NAN)),
        },
        serde_json::Value::String(s) => Value::Text(s.clone()),
        serde_json::Value::Array(items) => Value::Array(items.iter().map(plain_from_json).collect()),
        serde_json::Value::Object(map) => {
            Value::Map(map.iter().map(|(k, v)| (Value::Text(k.clone()), plain_from_json(v))).collect())
        }
    }
}

/// Revives a value decoded from a JavaScript client's CBOR (or converted from JSON) into native CBOR, recursively.
///
/// * `["$BigInt","n"]` → an integer (a bignum beyond 64 bits); `["$Uint8Array",b64]`, `["$ArrayBuffer",b64]` →
///   bytes; `["$Undefined",0]` → null; `["$Set",[..]]` → an array; `["$$x",v]` → `["$x",v]`. Any other
///   two-element array starting with a `$` string (JavaScript would throw) and malformed tags stay arrays.
/// * cbor-x's native forms, which the client sends for `cbor` WebSocket and HTTP bodies: tag 64 (`Uint8Array`)
///   → bytes, tag 258 (`Set`) → array, tag 259 (`Map`) → map; `undefined` is already null.
/// * A float holding an integer with 2^32 ≤ |n| < 2^53 becomes an integer: that is how cbor-x writes a
///   JavaScript integer too large for 32 bits, and it keeps such numbers integers whatever the encoding.
pub fn revive(value: Value) -> Value {
    match value {
        Value::Array(items) => revive_array(items),
        Value::Map(entries) => revive_map(entries),
        Value::Tag(tag, inner) => match (tag, *inner) {
            (TAG_UINT8_ARRAY, Value::Bytes(bytes)) => Value::Bytes(bytes),
            (TAG_SET, Value::Array(items)) => Value::Array(items.into_iter().map(revive).collect()),
            (TAG_MAP, Value::Map(entries)) => revive_map(entries),
            (tag, inner) => Value::Tag(tag, Box::new(revive(inner))),
        },
        Value::Float(f) if is_cbor_x_wide_integer(f) => Value::Integer((f as i64).into()),
        other => other,
    }
}

/// Whether cbor-x would have written this float for a JavaScript integer (2^32 ≤ |n| ≤ 2^53−1).
fn is_cbor_x_wide_integer(f: f64) -> bool {
    f.fract() == 0.0 && (CBOR_X_NUMBER_LIMIT as f64..=MAX_SAFE_INTEGER as f64).contains(&f.abs())
}

fn revive_map(entries: Vec<(Value, Value)>) -> Value {
    Value::Map(entries.into_iter().map(|(k, v)| (revive(k), revive(v))).collect())
}

fn revive_array(items: Vec<Value>) -> Value {
    match <[Value; 2]>::try_from(items) {
        Ok([Value::Text(tag), payload]) if tag.starts_with('$') => match revive_tag(&tag, payload) {
            Ok(revived) => revived,
            Err(payload) => {
                let first = match tag.strip_prefix('$') {
                    Some(unescaped) if unescaped.starts_with('$') => unescaped.to_string(),
                    _ => tag,
                };
                Value::Array(vec![Value::Text(first), revive(payload)])
            }
        },
        Ok(pair) => Value::Array(pair.into_iter().map(revive).collect()),
        Err(items) => Value::Array(items.into_iter().map(revive).collect()),
    }
}

/// Revives a compat tag's payload; gives the payload back when `tag` is not a known tag or the payload is
/// malformed.
fn revive_tag(tag: &str, payload: Value) -> Result<Value, Value> {
    match (tag, payload) {
        ("$BigInt", Value::Text(decimal)) => bignum::parse_decimal(&decimal).ok_or(Value::Text(decimal)),
        ("$BigInt", Value::Integer(i)) => Ok(Value::Integer(i)),
        ("$Uint8Array" | "$ArrayBuffer", Value::Text(b64)) => {
            LENIENT_BASE64.decode(&b64).map(Value::Bytes).map_err(|_| Value::Text(b64))
        }
        ("$Undefined", _) => Ok(Value::Null),
        ("$Set", Value::Array(items)) => Ok(Value::Array(items.into_iter().map(revive).collect())),
        (_, payload) => Err(payload),
    }
}

/// Converts a user value to JSON as `jsonStringifyCompat` would write the equivalent JavaScript value.
///
/// Integers beyond ±(2^53−1) and bignums become `["$BigInt","n"]`, bytes `["$Uint8Array",b64]` (standard
/// base64 with padding), a two-element array whose first element is a string starting with `$` gets one more
/// `$`, non-finite floats become null, map keys that are not text become their JSON text (`1`, `true`, ...),
/// and other tags are replaced by their content.
pub fn to_json(value: &Value) -> serde_json::Value {
    // Map keys are always strings and non-finite floats are written as null, so this cannot fail.
    serde_json::to_value(JsonCompat(value)).expect("a user value always converts to JSON")
}

/// Serializes a user value in the JSON-compat form of [`to_json`], keeping map entry order.
pub(crate) struct JsonCompat<'a>(pub(crate) &'a Value);

impl Serialize for JsonCompat<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            Value::Null => serializer.serialize_unit(),
            Value::Bool(b) => serializer.serialize_bool(*b),
            Value::Integer(i) => match i128::from(*i) {
                n if n.abs() <= MAX_SAFE_INTEGER => serializer.serialize_i64(n as i64),
                n => serialize_tagged(serializer, "$BigInt", &n.to_string()),
            },
            Value::Float(f) if f.is_finite() => serializer.serialize_f64(*f),
            Value::Float(_) => serializer.serialize_unit(),
            Value::Text(s) => serializer.serialize_str(s),
            Value::Bytes(bytes) => serialize_tagged(serializer, "$Uint8Array", &STANDARD.encode(bytes)),
            Value::Array(items) => {
                let mut seq = serializer.serialize_seq(Some(items.len()))?;
                match escaped_pair(items) {
                    Some((escaped, second)) => {
                        seq.serialize_element(&escaped)?;
                        seq.serialize_element(&JsonCompat(second))?;
                    }
                    None => {
                        for item in items {
                            seq.serialize_element(&JsonCompat(item))?;
                        }
                    }
                }
                seq.end()
            }
            Value::Map(entries) => {
                let mut map = serializer.serialize_map(Some(entries.len()))?;
                for (k, v) in entries {
                    map.serialize_entry(&key_text(k), &JsonCompat(v))?;
                }
                map.end()
            }
            Value::Tag(tag, inner) => match inner.as_ref() {
                Value::Bytes(magnitude) => match bignum::bignum_to_decimal(*tag, magnitude) {
                    Some(decimal) => serialize_tagged(serializer, "$BigInt", &decimal),
                    None => JsonCompat(inner).serialize(serializer),
                },
                _ => JsonCompat(inner).serialize(serializer),
            },
            // `Value` is non-exhaustive; ciborium has no other variants today.
            _ => serializer.serialize_unit(),
        }
    }
}

fn serialize_tagged<S: Serializer>(serializer: S, tag: &str, payload: &str) -> Result<S::Ok, S::Error> {
    let mut seq = serializer.serialize_seq(Some(2))?;
    seq.serialize_element(tag)?;
    seq.serialize_element(payload)?;
    seq.end()
}

/// A user array that JavaScript would mistake for a compat tag (exactly two elements, the first a string
/// starting with `$`), as its escaped first element and its second element.
fn escaped_pair(items: &[Value]) -> Option<(String, &Value)> {
    match items {
        [Value::Text(first), second] if first.starts_with('$') => Some((format!("${first}"), second)),
        _ => None,
    }
}

/// A map key as a JavaScript object property name: text as is, anything else as its compact JSON text.
fn key_text(key: &Value) -> String {
    match key {
        Value::Text(s) => s.clone(),
        other => to_json(other).to_string(),
    }
}

/// Prepares an outgoing user value for `cbor` and `bare` bodies, so that the JavaScript client (cbor-x, then
/// `reviveJsonCompatValue`) gets what a JavaScript actor would have sent.
///
/// * Integers with |n| < 2^32 stay integers; up to 2^53−1 they become floats, because cbor-x decodes any 8-byte
///   CBOR integer as a `BigInt`; beyond that they stay integers (8-byte CBOR integers or bignums), which cbor-x
///   decodes as `BigInt`, positive or negative.
/// * Two-element arrays whose first element is a string starting with `$` get one more `$`.
/// * Map keys that are not text become text as in [`to_json`] (cbor-x cannot decode a map with byte-string or
///   array keys into an object, and text keys keep all three encodings alike).
/// * Bytes, floats, text and other tags pass through (with their contents prepared recursively).
pub fn to_wire_cbor(value: &Value) -> Value {
    match value {
        Value::Integer(i) => match i128::from(*i) {
            n if n.abs() < CBOR_X_NUMBER_LIMIT || n.abs() > MAX_SAFE_INTEGER => value.clone(),
            n => Value::Float(n as f64),
        },
        Value::Array(items) => match escaped_pair(items) {
            Some((escaped, second)) => Value::Array(vec![Value::Text(escaped), to_wire_cbor(second)]),
            None => Value::Array(items.iter().map(to_wire_cbor).collect()),
        },
        Value::Map(entries) => {
            Value::Map(entries.iter().map(|(k, v)| (Value::Text(key_text(k)), to_wire_cbor(v))).collect())
        }
        Value::Tag(tag, inner) => Value::Tag(*tag, Box::new(to_wire_cbor(inner))),
        other => other.clone(),
    }
}

/// Encodes a value as CBOR bytes, as is (apply [`to_wire_cbor`] first for values going to a client).
pub fn to_cbor_bytes(value: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    // Writing into a Vec cannot fail, and every `Value` is serializable.
    ciborium::into_writer(value, &mut out).expect("encoding a CBOR value into memory cannot fail");
    out
}

/// Decodes exactly one CBOR item, as is (apply [`revive`] for values coming from a client).
///
/// Malformed CBOR, nesting deeper than 128, or bytes after the item are `actor.invalid_request`.
pub fn from_cbor_bytes(bytes: &[u8]) -> Result<Value, ClientError> {
    let mut rest = bytes;
    let value: Value = ciborium::de::from_reader_with_recursion_limit(&mut rest, MAX_CBOR_DEPTH)
        .map_err(|e| ClientError::invalid_request(format!("malformed CBOR: {e}")))?;
    if !rest.is_empty() {
        return Err(ClientError::invalid_request(format!(
            "malformed CBOR: {} trailing bytes after the value",
            rest.len()
        )));
    }
    Ok(value)
}

#[cfg(test)]
mod tests;
