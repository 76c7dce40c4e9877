//! Converting between Rust types and the user values actions and events carry.

use serde::Serialize;
use serde::de::DeserializeOwned;
use tern_proto::Value;

use crate::error::{Error, Result};

/// Positional action arguments from a serializable value.
///
/// A tuple, array, `Vec` or slice gives one argument per element; `()` gives none; any other value (a number,
/// a string, a struct) is the single argument. To pass one array as the only argument, wrap it in a 1-tuple:
/// `(vec![1, 2],)`.
pub fn to_args<A: Serialize + ?Sized>(args: &A) -> Result<Vec<Value>> {
    match Value::serialized(args).map_err(|e| Error::Value(format!("action arguments: {e}")))? {
        Value::Array(items) => Ok(items),
        Value::Null => Ok(Vec::new()),
        other => Ok(vec![other]),
    }
}

/// A user value as a Rust type.
pub fn from_value<R: DeserializeOwned>(value: Value) -> Result<R> {
    value.deserialized().map_err(|e| Error::Value(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Serialize)]
    struct Point {
        x: i32,
    }

    #[test]
    fn arguments_are_positional() {
        let int = |n: i64| Value::Integer(n.into());
        assert_eq!(to_args(&()).unwrap(), Vec::<Value>::new());
        assert_eq!(to_args(&(1, "a")).unwrap(), vec![int(1), Value::Text("a".into())]);
        assert_eq!(to_args(&[1, 2]).unwrap(), vec![int(1), int(2)]);
        assert_eq!(to_args(&5).unwrap(), vec![int(5)]);
        assert_eq!(to_args(&(vec![1, 2],)).unwrap(), vec![Value::Array(vec![int(1), int(2)])]);
        let point = to_args(&Point { x: 3 }).unwrap();
        assert_eq!(point, vec![Value::Map(vec![(Value::Text("x".into()), int(3))])]);
    }

    #[test]
    fn outputs_deserialize() {
        assert_eq!(from_value::<u64>(Value::Integer(7.into())).unwrap(), 7);
        assert_eq!(from_value::<Option<String>>(Value::Null).unwrap(), None);
        assert!(matches!(from_value::<u64>(Value::Text("x".into())), Err(Error::Value(_))));
    }
}
