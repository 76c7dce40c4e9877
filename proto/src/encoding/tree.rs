//! The object shape shared by the `json` and `cbor` encodings, and its rendering to bytes.
//!
//! Both encodings carry the same objects (the shapes of RivetKit's Zod schemas); they differ only in how ids and
//! user values are written. A [`Node`] tree describes one message; [`render_json`] and [`render_cbor`] write it.

use serde::ser::{Serialize, SerializeMap, SerializeSeq, Serializer};

use crate::Value;
use crate::value::{JsonCompat, to_cbor_bytes, to_wire_cbor};

/// One value of a message object, before encoding.
pub(super) enum Node<'a> {
    Text(&'a str),
    Bool(bool),
    Null,
    /// A BARE `uint` the client's Zod schema types as `bigint` (`id`, `actionId`): `["$BigInt","n"]` in JSON, an
    /// 8-byte CBOR integer (which cbor-x decodes as `BigInt` whatever its value) in CBOR.
    BigUint(u64),
    /// A JavaScript number (`generation`, `timeout`): a JSON number, a shortest-form CBOR integer.
    Number(u64),
    /// A user value, written in JSON-compat form ([`JsonCompat`]) or as CBOR prepared by [`to_wire_cbor`].
    User(&'a Value),
    /// An object; entries are written in order.
    Object(Vec<(&'static str, Node<'a>)>),
}

/// Renders a message as JSON text (UTF-8), in the key order given.
pub(super) fn render_json(node: &Node<'_>) -> Vec<u8> {
    // Every map key is a string and non-finite floats are written as null, so serialization cannot fail.
    serde_json::to_vec(node).expect("a message tree always serializes to JSON")
}

impl Serialize for Node<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Node::Text(text) => serializer.serialize_str(text),
            Node::Bool(b) => serializer.serialize_bool(*b),
            Node::Null => serializer.serialize_unit(),
            Node::BigUint(n) => {
                let mut seq = serializer.serialize_seq(Some(2))?;
                seq.serialize_element("$BigInt")?;
                seq.serialize_element(&n.to_string())?;
                seq.end()
            }
            Node::Number(n) => serializer.serialize_u64(*n),
            Node::User(value) => JsonCompat(value).serialize(serializer),
            Node::Object(entries) => {
                let mut map = serializer.serialize_map(Some(entries.len()))?;
                for (key, value) in entries {
                    map.serialize_entry(key, value)?;
                }
                map.end()
            }
        }
    }
}

const MAJOR_UNSIGNED: u8 = 0;
const MAJOR_TEXT: u8 = 3;
const MAJOR_MAP: u8 = 5;
const CBOR_FALSE: u8 = 0xf4;
const CBOR_TRUE: u8 = 0xf5;
const CBOR_NULL: u8 = 0xf6;

/// Renders a message as CBOR. Object headers use the 2-byte length form (`b9 00 NN`) as cbor-x does, so a
/// message without user objects is byte-identical to the JavaScript encoder's output.
pub(super) fn render_cbor(node: &Node<'_>) -> Vec<u8> {
    let mut out = Vec::new();
    write_cbor(node, &mut out);
    out
}

fn write_cbor(node: &Node<'_>, out: &mut Vec<u8>) {
    match node {
        Node::Text(text) => {
            write_head(out, MAJOR_TEXT, text.len() as u64);
            out.extend_from_slice(text.as_bytes());
        }
        Node::Bool(b) => out.push(if *b { CBOR_TRUE } else { CBOR_FALSE }),
        Node::Null => out.push(CBOR_NULL),
        Node::BigUint(n) => {
            out.push(MAJOR_UNSIGNED << 5 | 27);
            out.extend_from_slice(&n.to_be_bytes());
        }
        Node::Number(n) => write_head(out, MAJOR_UNSIGNED, *n),
        Node::User(value) => out.extend_from_slice(&to_cbor_bytes(&to_wire_cbor(value))),
        Node::Object(entries) => {
            // Message objects have at most six entries.
            out.push(MAJOR_MAP << 5 | 25);
            out.extend_from_slice(&(entries.len() as u16).to_be_bytes());
            for (key, value) in entries {
                write_cbor(&Node::Text(key), out);
                write_cbor(value, out);
            }
        }
    }
}

/// Writes a CBOR item head in its shortest form.
fn write_head(out: &mut Vec<u8>, major: u8, n: u64) {
    let major = major << 5;
    match n {
        0..=23 => out.push(major | n as u8),
        24..=0xff => out.extend_from_slice(&[major | 24, n as u8]),
        0x100..=0xffff => {
            out.push(major | 25);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        0x1_0000..=0xffff_ffff => {
            out.push(major | 26);
            out.extend_from_slice(&(n as u32).to_be_bytes());
        }
        _ => {
            out.push(major | 27);
            out.extend_from_slice(&n.to_be_bytes());
        }
    }
}
