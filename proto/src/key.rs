//! Actor keys: RivetKit's key serialization (`serializeActorKey`) and the `rvt-key` query form.
//!
//! A key is a list of strings. Serialized: `[]` is `"/"`; an empty part is `\0` (backslash, zero); otherwise
//! `\` becomes `\\` and `/` becomes `\/`; parts are joined with `/`. The serialized string is what the REST API
//! carries and what uniqueness is defined on.

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

/// Parses the `rvt-key` query value: parts split on `,` with no escaping (RivetKit's query form).
pub fn parse_query_key(value: &str) -> Vec<String> {
    value.split(',').map(str::to_string).collect()
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
}
