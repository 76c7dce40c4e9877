//! A node's identity in SWIM: who it is, where it is, how to reach it, and which run of it this is.

use std::cmp::Ordering;
use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

/// What a node tells the cluster about itself, and foca's identity of a member.
///
/// Two runs of one node share the [`id`](Self::id) (foca's `Identity::Addr`, so the cluster keeps one entry per
/// node) and differ by [`generation`](Self::generation): a restarted node is a new identity that supersedes the old
/// one at once, instead of waiting for the cluster to forget it. The wire form is a CBOR map with one-letter keys,
/// so fields can be added later without breaking older nodes.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct NodeInfo {
    /// The node's stable id: the common name of its certificate from the cluster CA.
    #[serde(rename = "i")]
    pub id: String,
    /// Which run of the node this is: larger for a later run (e.g. the start time in milliseconds), bumped by one
    /// when the cluster declared this run down and it rejoins.
    #[serde(rename = "g")]
    pub generation: u64,
    /// The node's region, e.g. `iad`.
    #[serde(rename = "r")]
    pub region: String,
    /// The node's zone within its region, if it has one.
    #[serde(rename = "z", default, skip_serializing_if = "Option::is_none")]
    pub zone: Option<String>,
    /// The public URL of the node's gateway (RivetKit client surface), e.g. `https://iad-1.example.com`.
    #[serde(rename = "u")]
    pub gateway_url: String,
    /// Where peers reach the node's QUIC transport.
    #[serde(rename = "a")]
    pub quic_addr: SocketAddr,
}

impl NodeInfo {
    /// A stand-in for a seed known only by its address and certificate name: enough for foca to announce to it
    /// (the seed accepts an announce addressed to any identity with its id, and its reply carries its real one).
    pub(super) fn seed(id: String, quic_addr: SocketAddr) -> Self {
        Self { id, generation: 0, region: String::new(), zone: None, gateway_url: String::new(), quic_addr }
    }

    /// The order in which identities sharing an id supersede each other: the later generation wins; the other
    /// fields only break ties between identities that should not exist (two runs claiming one generation).
    fn precedence(&self, other: &Self) -> Ordering {
        self.generation
            .cmp(&other.generation)
            .then_with(|| self.quic_addr.cmp(&other.quic_addr))
            .then_with(|| self.region.cmp(&other.region))
            .then_with(|| self.zone.cmp(&other.zone))
            .then_with(|| self.gateway_url.cmp(&other.gateway_url))
    }
}

impl foca::Identity for NodeInfo {
    type Addr = String;

    /// A run the cluster declared down comes back at once as the next generation.
    fn renew(&self) -> Option<Self> {
        Some(Self { generation: self.generation.wrapping_add(1), ..self.clone() })
    }

    fn addr(&self) -> String {
        self.id.clone()
    }

    fn win_addr_conflict(&self, adversary: &Self) -> bool {
        self.precedence(adversary) == Ordering::Greater
    }
}

#[cfg(test)]
mod tests {
    use foca::Identity;

    use super::*;

    fn node(generation: u64) -> NodeInfo {
        NodeInfo {
            id: "iad-1".into(),
            generation,
            region: "iad".into(),
            zone: Some("a".into()),
            gateway_url: "http://127.0.0.1:6420".into(),
            quic_addr: "127.0.0.1:7420".parse().unwrap(),
        }
    }

    #[test]
    fn a_later_generation_supersedes_and_renew_produces_one() {
        let (old, new) = (node(7), node(8));
        assert_eq!(old.addr(), new.addr(), "both runs are one member");
        assert!(new.win_addr_conflict(&old) && !old.win_addr_conflict(&new));
        assert_eq!(old.renew(), Some(new));
        // Conflicts are decided one way even between identities that should not coexist.
        let moved = NodeInfo { quic_addr: "127.0.0.1:7421".parse().unwrap(), ..old.clone() };
        assert!(moved.win_addr_conflict(&old) != old.win_addr_conflict(&moved));
    }

    #[test]
    fn the_wire_form_is_compact_and_round_trips() {
        let mut bytes = Vec::new();
        ciborium::into_writer(&node(1_764_000_000_000), &mut bytes).unwrap();
        assert!(bytes.len() < 80, "{} bytes", bytes.len());
        assert_eq!(ciborium::from_reader::<NodeInfo, _>(&bytes[..]).unwrap(), node(1_764_000_000_000));
        let bare = NodeInfo { zone: None, ..node(1) };
        let mut bytes = Vec::new();
        ciborium::into_writer(&bare, &mut bytes).unwrap();
        assert_eq!(ciborium::from_reader::<NodeInfo, _>(&bytes[..]).unwrap(), bare);
    }
}
