//! Inter-node protocol versions and their ALPN names.

use std::fmt;

/// A version of the inter-node protocol, negotiated per connection by ALPN as `tern/N`.
///
/// Nodes offer every version they speak; the connection uses the highest version both ends speak, so nodes one
/// version apart interoperate during a rolling upgrade.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ProtocolVersion(pub u16);

impl ProtocolVersion {
    /// Version 2: every request and stream carries a service tag.
    pub const V2: Self = Self(2);

    /// The versions this build speaks, highest first: the default of
    /// [`TransportConfig::versions`](crate::TransportConfig::versions). (Version 1 had no service tags; a node
    /// of this build cannot talk to one of version 1.)
    pub const SUPPORTED: &'static [Self] = &[Self::V2];

    /// The ALPN protocol name of this version (`tern/N`).
    pub fn alpn(self) -> Vec<u8> {
        self.to_string().into_bytes()
    }

    /// Parses an ALPN protocol name of the form `tern/N`.
    pub fn from_alpn(name: &[u8]) -> Option<Self> {
        let number = std::str::from_utf8(name).ok()?.strip_prefix("tern/")?;
        if number.starts_with('+') {
            return None;
        }
        number.parse().ok().map(Self)
    }
}

impl fmt::Display for ProtocolVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "tern/{}", self.0)
    }
}

/// `versions` sorted highest first without duplicates: the order in which a node offers (and, as the server,
/// prefers) them.
pub(crate) fn preference_order(versions: &[ProtocolVersion]) -> Vec<ProtocolVersion> {
    let mut sorted = versions.to_vec();
    sorted.sort_unstable_by(|a, b| b.cmp(a));
    sorted.dedup();
    sorted
}

/// `versions` as a human-readable list, e.g. `tern/2, tern/1`.
pub(crate) fn describe(versions: &[ProtocolVersion]) -> String {
    versions.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alpn_round_trips() {
        for v in [ProtocolVersion(1), ProtocolVersion(2), ProtocolVersion(u16::MAX)] {
            assert_eq!(ProtocolVersion::from_alpn(&v.alpn()), Some(v));
        }
        assert_eq!(ProtocolVersion(1).alpn(), b"tern/1");
        for bad in [&b"h3"[..], b"tern/", b"tern/x", b"tern/+1", b"tern/70000", b"TERN/1"] {
            assert_eq!(ProtocolVersion::from_alpn(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn preference_is_highest_first() {
        let order = preference_order(&[ProtocolVersion(1), ProtocolVersion(3), ProtocolVersion(2), ProtocolVersion(3)]);
        assert_eq!(order, [ProtocolVersion(3), ProtocolVersion(2), ProtocolVersion(1)]);
        assert_eq!(describe(&order), "tern/3, tern/2, tern/1");
    }
}
