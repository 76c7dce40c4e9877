//! Actor keys: RivetKit's key serialization (`serializeActorKey`), the `rvt-key` query form, and the size limits.
//!
//! A key is a list of strings. Serialized: `[]` is `"/"`; an empty part is `\0` (backslash, zero); otherwise
//! `\` becomes `\\` and `/` becomes `\/`; parts are joined with `/`. The serialized string is what the REST API
//! carries and what uniqueness is defined on.
//!
//! A key that a client or actor code hands to Tern is an [`ActorKey`], whose constructor holds RivetKit's limits
//! (a part of at most [`MAX_KEY_PART_BYTES`], a serialized key of at most [`MAX_KEY_BYTES`]): an oversize key is
//! refused with `actor.key_too_large` before it reaches the directory, storage or another node.

use crate::ClientError;

/// Largest part of an actor key, in bytes of UTF-8 (RivetKit's limit).
pub const MAX_KEY_PART_BYTES: usize = 128;
/// Largest actor key in its serialized form, in bytes (RivetKit's limit).
pub const MAX_KEY_BYTES: usize = 1024;

/// An actor key within the size limits. Built only by [`ActorKey::new`], which checks them, or by the parsers and
/// deserialization, which go through it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "Vec<String>", into = "Vec<String>")]
pub struct ActorKey(Vec<String>);

impl ActorKey {
    /// The key with these parts; `actor.key_too_large` if a part or the serialized key is over its limit.
    pub fn new(parts: Vec<String>) -> Result<ActorKey, ClientError> {
        if let Some((index, part)) = parts.iter().enumerate().find(|(_, part)| part.len() > MAX_KEY_PART_BYTES) {
            return Err(ClientError::key_too_large(&format!("part {}", index + 1), part.len(), MAX_KEY_PART_BYTES));
        }
        let size = serialize_key(&parts).len();
        if size > MAX_KEY_BYTES {
            return Err(ClientError::key_too_large("serialized form", size, MAX_KEY_BYTES));
        }
        Ok(ActorKey(parts))
    }

    /// Parses a serialized key (the REST API's `key`). A string over the serialized limit is refused before it is
    /// parsed.
    pub fn parse(serialized: &str) -> Result<ActorKey, ClientError> {
        if serialized.len() > MAX_KEY_BYTES {
            return Err(ClientError::key_too_large("serialized form", serialized.len(), MAX_KEY_BYTES));
        }
        ActorKey::new(deserialize_key(serialized))
    }

    /// Parses the `rvt-key` query value: parts split on `,` with no escaping (RivetKit's query form). A value over
    /// the serialized limit (which its serialized form can only exceed) is refused before it is split.
    pub fn from_query(value: &str) -> Result<ActorKey, ClientError> {
        if value.len() > MAX_KEY_BYTES {
            return Err(ClientError::key_too_large("serialized form", value.len(), MAX_KEY_BYTES));
        }
        ActorKey::new(value.split(',').map(str::to_string).collect())
    }

    /// The key's parts.
    pub fn parts(&self) -> &[String] {
        &self.0
    }

    /// The serialized form (see [`serialize_key`]).
    pub fn serialize(&self) -> String {
        serialize_key(&self.0)
    }
}

impl TryFrom<Vec<String>> for ActorKey {
    type Error = ClientError;

    /// See [`ActorKey::new`].
    fn try_from(parts: Vec<String>) -> Result<Self, Self::Error> {
        ActorKey::new(parts)
    }
}

impl From<ActorKey> for Vec<String> {
    /// The key's parts.
    fn from(key: ActorKey) -> Self {
        key.0
    }
}

/// Serializes a key as RivetKit does.
pub fn serialize_key(parts: &[String]) -> String {
    if parts.is_empty() {
        return "/".to_string();
    }
    let escaped: Vec<String> = parts
        .iter()
        .map(|p| if p.is_empty() { "\\0".to_string() } else { p.replace('\\', "\\\\").replace('/', "\\/") })
        .collect();
    escaped.join("/")
}

/// Parses a serialized key back into its parts. Inverse of [`serialize_key`].
pub fn deserialize_key(serialized: &str) -> Vec<String> {
    if serialized == "/" || serialized.is_empty() {
        return Vec::new();
    }
    let mut parts = Vec::new();
    let mut current = String::new();
    let mut chars = serialized.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some('0') => {}
                Some(other) => current.push(other),
                None => current.push('\\'),
            },
            '/' => parts.push(std::mem::take(&mut current)),
            other => current.push(other),
        }
    }
    parts.push(current);
    parts
}

#[cfg(test)]
mod tests {
    use super::*;

    fn k(parts: &[&str]) -> Vec<String> {
        parts.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn serializes_like_rivetkit() {
        assert_eq!(serialize_key(&[]), "/");
        assert_eq!(serialize_key(&k(&["a"])), "a");
        assert_eq!(serialize_key(&k(&["org-1", "room-9"])), "org-1/room-9");
        assert_eq!(serialize_key(&k(&[""])), "\\0");
        assert_eq!(serialize_key(&k(&["a/b", "c\\d"])), "a\\/b/c\\\\d");
    }

    #[test]
    fn round_trips() {
        for parts in [k(&[]), k(&["a"]), k(&["", "x"]), k(&["a/b", "c\\d", ""]), k(&["\\0"])] {
            assert_eq!(deserialize_key(&serialize_key(&parts)), parts, "{parts:?}");
        }
    }

    fn refused(key: Result<ActorKey, ClientError>) -> String {
        let err = key.unwrap_err();
        assert_eq!((err.qualified_code().as_str(), err.status), ("actor.key_too_large", 400));
        err.message
    }

    #[test]
    fn keys_within_the_limits_are_accepted_at_the_limits() {
        let at_part_limit = "p".repeat(MAX_KEY_PART_BYTES);
        let one_part = ActorKey::new(vec![at_part_limit.clone()]).unwrap();
        assert_eq!(one_part.parts(), std::slice::from_ref(&at_part_limit));
        // 128 + 7 × 127 bytes and 7 separators: exactly 1024 bytes serialized.
        let mut parts = vec![at_part_limit];
        parts.extend(std::iter::repeat_n("q".repeat(127), 7));
        let key = ActorKey::new(parts.clone()).unwrap();
        assert_eq!(key.serialize().len(), MAX_KEY_BYTES);
        assert_eq!(ActorKey::parse(&key.serialize()).unwrap(), key);
        assert_eq!(ActorKey::from_query(&parts.join(",")).unwrap(), key);
        assert_eq!(ActorKey::from_query("a,b").unwrap().parts(), k(&["a", "b"]));
        assert_eq!(ActorKey::parse("/").unwrap(), ActorKey::default());
    }

    #[test]
    fn oversize_keys_are_refused_naming_size_and_limit() {
        let message = refused(ActorKey::new(k(&["ok", &"x".repeat(129)])));
        assert_eq!(message, "The actor key's part 2 is 129 bytes, over the limit of 128 bytes");
        // The limit is in bytes: 65 two-byte characters are 130 bytes.
        assert!(refused(ActorKey::parse(&"é".repeat(65))).contains("130 bytes"));
        // Escaping counts: 64 slashes are a 64-byte part but 128 bytes serialized; nine of them are too much.
        let slashes = vec!["/".repeat(64); 9];
        let message = refused(ActorKey::new(slashes));
        assert_eq!(message, "The actor key's serialized form is 1160 bytes, over the limit of 1024 bytes");
        let mut parts = vec!["p".repeat(128), "p".repeat(128)];
        parts.extend(std::iter::repeat_n("q".repeat(127), 6));
        assert!(refused(ActorKey::from_query(&parts.join(","))).contains("1025 bytes"));
        // A huge key is refused before it is split into parts.
        let huge = "a/".repeat(1 << 20);
        assert!(refused(ActorKey::parse(&huge)).contains(&format!("{} bytes", huge.len())));
        assert!(refused(ActorKey::from_query(&huge)).contains(&format!("{} bytes", huge.len())));
    }

    #[test]
    fn deserializing_checks_the_limits_too() {
        let key: ActorKey = serde_json::from_str(r#"["a","b"]"#).unwrap();
        assert_eq!(serde_json::to_string(&key).unwrap(), r#"["a","b"]"#);
        let oversize = serde_json::to_string(&vec!["x".repeat(129)]).unwrap();
        let err = serde_json::from_str::<ActorKey>(&oversize).unwrap_err();
        assert!(err.to_string().contains("actor.key_too_large"), "{err}");
    }
}
