//! Actor keys as the client API takes them.
//!
//! A key is a list of strings; `[]` is a valid (empty) key. On the wire it travels in RivetKit's serialized
//! form ([`tern_proto::key::serialize_key`]), which is what key uniqueness is defined on.

use tern_proto::key::{deserialize_key, serialize_key};

/// An actor key: an ordered list of string parts.
///
/// Convert from what you have: `"room-1"` (one part), `["org", "room-1"]`, `[]` (the empty key),
/// `vec!["a".to_string()]`, `&parts[..]`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct ActorKey(Vec<String>);

impl ActorKey {
    /// A key from its parts.
    pub fn new<I, S>(parts: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        ActorKey(parts.into_iter().map(Into::into).collect())
    }

    /// The empty key `[]`.
    pub fn empty() -> Self {
        ActorKey(Vec::new())
    }

    /// Parses RivetKit's serialized form (as found in [`Actor::key`](crate::Actor::key)).
    pub fn parse(serialized: &str) -> Self {
        ActorKey(deserialize_key(serialized))
    }

    /// The key's parts.
    pub fn parts(&self) -> &[String] {
        &self.0
    }

    /// RivetKit's serialized form: `[]` is `/`, parts are escaped and joined with `/`.
    pub fn serialize(&self) -> String {
        serialize_key(&self.0)
    }
}

impl std::fmt::Display for ActorKey {
    /// Writes the serialized form.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.serialize())
    }
}

impl From<&str> for ActorKey {
    /// A single-part key.
    fn from(part: &str) -> Self {
        ActorKey(vec![part.to_string()])
    }
}

impl From<String> for ActorKey {
    /// A single-part key.
    fn from(part: String) -> Self {
        ActorKey(vec![part])
    }
}

impl<const N: usize> From<[&str; N]> for ActorKey {
    fn from(parts: [&str; N]) -> Self {
        ActorKey::new(parts)
    }
}

impl From<&[&str]> for ActorKey {
    fn from(parts: &[&str]) -> Self {
        ActorKey::new(parts.iter().copied())
    }
}

impl From<&[String]> for ActorKey {
    fn from(parts: &[String]) -> Self {
        ActorKey(parts.to_vec())
    }
}

impl From<Vec<String>> for ActorKey {
    fn from(parts: Vec<String>) -> Self {
        ActorKey(parts)
    }
}

impl From<Vec<&str>> for ActorKey {
    fn from(parts: Vec<&str>) -> Self {
        ActorKey::new(parts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(k: impl Into<ActorKey>) -> ActorKey {
        k.into()
    }

    #[test]
    fn conversions() {
        assert_eq!(key([]), ActorKey::empty());
        assert_eq!(key("a"), ActorKey::new(["a"]));
        assert_eq!(key(["a", "b"]).parts(), ["a", "b"]);
        assert_eq!(key(vec!["a".to_string()]), key("a"));
        let owned = ["x".to_string(), "y".to_string()];
        assert_eq!(key(&owned[..]), key(["x", "y"]));
    }

    #[test]
    fn serializes_like_rivetkit() {
        assert_eq!(key([]).serialize(), "/");
        assert_eq!(key(["org-1", "room/9"]).serialize(), "org-1/room\\/9");
        assert_eq!(key([""]).to_string(), "\\0");
        assert_eq!(ActorKey::parse("org-1/room\\/9"), key(["org-1", "room/9"]));
    }
}
