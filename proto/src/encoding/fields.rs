//! Reading message objects of the `json` and `cbor` encodings from a decoded, revived [`Value`].
//!
//! Lenient where the JavaScript client is: an optional field may be missing, `null` or `undefined` (cbor-x writes
//! `undefined` for unset optional fields); a repeated key takes its last value, as in a JavaScript object;
//! integers may arrive as integers or integral floats.

use super::Malformed;
use crate::Value;

/// A message object whose fields are taken out one by one.
pub(super) struct Object {
    entries: Vec<(Value, Value)>,
}

impl Object {
    /// `value` as an object; `what` names it in the error.
    pub(super) fn new(value: Value, what: &str) -> Result<Self, Malformed> {
        match value {
            Value::Map(entries) => Ok(Self { entries }),
            _ => Err(Malformed(format!("{what} is not an object"))),
        }
    }

    /// Removes and returns field `key`; `None` when missing.
    fn take(&mut self, key: &str) -> Option<Value> {
        let index = self.entries.iter().rposition(|(k, _)| matches!(k, Value::Text(k) if k == key))?;
        Some(self.entries.swap_remove(index).1)
    }

    /// Field `key` unless it is missing or null.
    fn take_present(&mut self, key: &str) -> Option<Value> {
        self.take(key).filter(|v| !v.is_null())
    }

    /// A required string field.
    pub(super) fn text(&mut self, key: &str) -> Result<String, Malformed> {
        self.opt_text(key)?.ok_or_else(|| missing(key))
    }

    /// An optional string field.
    pub(super) fn opt_text(&mut self, key: &str) -> Result<Option<String>, Malformed> {
        match self.take_present(key) {
            None => Ok(None),
            Some(Value::Text(text)) => Ok(Some(text)),
            Some(_) => Err(wrong_type(key, "a string")),
        }
    }

    /// A required boolean field.
    pub(super) fn bool(&mut self, key: &str) -> Result<bool, Malformed> {
        self.opt_bool(key)?.ok_or_else(|| missing(key))
    }

    /// An optional boolean field.
    pub(super) fn opt_bool(&mut self, key: &str) -> Result<Option<bool>, Malformed> {
        match self.take_present(key) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(b)),
            Some(_) => Err(wrong_type(key, "a boolean")),
        }
    }

    /// A required unsigned 64-bit field (a number, a `$BigInt` already revived, or an integral float).
    pub(super) fn uint(&mut self, key: &str) -> Result<u64, Malformed> {
        self.opt_uint(key)?.ok_or_else(|| missing(key))
    }

    /// An optional unsigned 64-bit field.
    pub(super) fn opt_uint(&mut self, key: &str) -> Result<Option<u64>, Malformed> {
        let Some(value) = self.take_present(key) else { return Ok(None) };
        let uint = match value {
            Value::Integer(i) => u64::try_from(i).ok(),
            Value::Float(f) if f.fract() == 0.0 && (0.0..18_446_744_073_709_551_616.0).contains(&f) => Some(f as u64),
            _ => None,
        };
        uint.map(Some).ok_or_else(|| wrong_type(key, "an unsigned 64-bit integer"))
    }

    /// A user value field; a missing field is null (JavaScript drops `undefined` properties from JSON).
    pub(super) fn user(&mut self, key: &str) -> Value {
        self.take(key).unwrap_or(Value::Null)
    }

    /// An optional user value field: `None` only when missing, so an explicit null stays `Some(Null)`.
    pub(super) fn opt_user(&mut self, key: &str) -> Option<Value> {
        self.take(key)
    }

    /// A required nested object.
    pub(super) fn object(&mut self, key: &str) -> Result<Object, Malformed> {
        self.opt_object(key)?.ok_or_else(|| missing(key))
    }

    /// An optional nested object.
    pub(super) fn opt_object(&mut self, key: &str) -> Result<Option<Object>, Malformed> {
        self.take_present(key).map(|v| Object::new(v, &format!("field `{key}`"))).transpose()
    }
}

fn missing(key: &str) -> Malformed {
    Malformed(format!("missing field `{key}`"))
}

fn wrong_type(key: &str, expected: &str) -> Malformed {
    Malformed(format!("field `{key}` is not {expected}"))
}
