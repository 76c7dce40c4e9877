//! The ACTOR argument: an actor id, or `NAME/KEY` with KEY in RivetKit's serialized form.
//!
//! * 32 hexadecimal characters and no `/`: an actor id (`3f2a...`).
//! * `NAME/KEY`: the actor `NAME` with the key RivetKit serializes as `KEY`: `room/org-1/general` is `room` with
//!   key `["org-1", "general"]`, `\/` is a `/` inside a part, `\\` a backslash and `\0` an empty part.
//! * `NAME` alone (or `NAME/`): the actor `NAME` with the empty key `[]`.

use std::str::FromStr;

use tern_proto::key::deserialize_key;

/// Length of a Tern actor id (a UUID in hexadecimal, no dashes).
const ID_LEN: usize = 32;

/// An actor named on the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ActorRef {
    /// By id (lower case).
    Id(String),
    /// By definition name and key parts.
    Key { name: String, key: Vec<String> },
}

impl FromStr for ActorRef {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.is_empty() {
            return Err("expected an actor id or NAME/KEY, got an empty string".to_string());
        }
        let (name, key) = match s.split_once('/') {
            None if s.len() == ID_LEN && s.bytes().all(|b| b.is_ascii_hexdigit()) => {
                return Ok(ActorRef::Id(s.to_ascii_lowercase()));
            }
            None => (s, ""),
            Some(split) => split,
        };
        if name.is_empty() {
            return Err(format!("{s:?} has no actor name before the `/` (expected NAME/KEY, e.g. counter/k1)"));
        }
        Ok(ActorRef::Key { name: name.to_string(), key: deserialize_key(key) })
    }
}

impl ActorRef {
    /// How error messages name the actor: `id 3f2a...` or `counter/k1 (key ["k1"])`.
    pub fn describe(&self) -> String {
        match self {
            ActorRef::Id(id) => format!("id {id}"),
            ActorRef::Key { name, key } => {
                let parts = serde_json::to_string(key).unwrap_or_default();
                format!("{name}/{} (name {name:?}, key {parts})", tern_proto::key::serialize_key(key))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<ActorRef, String> {
        s.parse()
    }

    fn key(name: &str, parts: &[&str]) -> ActorRef {
        ActorRef::Key { name: name.to_string(), key: parts.iter().map(|p| p.to_string()).collect() }
    }

    #[test]
    fn ids_are_32_hex_characters_without_a_slash() {
        let id = "0123456789abcdef0123456789ABCDEF";
        assert_eq!(parse(id), Ok(ActorRef::Id(id.to_ascii_lowercase())));
        // One character short, or not hex: a name with the empty key.
        assert_eq!(parse(&id[1..]), Ok(key(&id[1..], &[])));
        assert_eq!(parse("0123456789abcdef0123456789abcdeg"), Ok(key("0123456789abcdef0123456789abcdeg", &[])));
        // A hex name followed by a key is a name.
        assert_eq!(parse(&format!("{id}/k")), Ok(key(id, &["k"])));
    }

    #[test]
    fn names_with_serialized_keys() {
        assert_eq!(parse("counter/k1"), Ok(key("counter", &["k1"])));
        assert_eq!(parse("room/org-1/general"), Ok(key("room", &["org-1", "general"])));
        assert_eq!(parse("room/a\\/b/c\\\\d"), Ok(key("room", &["a/b", "c\\d"])));
        assert_eq!(parse("room/\\0/x"), Ok(key("room", &["", "x"])));
        assert_eq!(parse("counter/k1/"), Ok(key("counter", &["k1", ""])));
    }

    #[test]
    fn the_empty_key() {
        assert_eq!(parse("counter"), Ok(key("counter", &[])));
        assert_eq!(parse("counter/"), Ok(key("counter", &[])));
        assert_eq!(parse("counter//"), Ok(key("counter", &[])));
    }

    #[test]
    fn malformed() {
        assert!(parse("").unwrap_err().contains("empty"));
        assert!(parse("/k1").unwrap_err().contains("no actor name"));
    }

    #[test]
    fn descriptions() {
        assert_eq!(
            parse("room/org-1/general").unwrap().describe(),
            r#"room/org-1/general (name "room", key ["org-1","general"])"#
        );
        assert_eq!(ActorRef::Id("ab".into()).describe(), "id ab");
    }
}
