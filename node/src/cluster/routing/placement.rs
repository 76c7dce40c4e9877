//! Where a new actor goes: the region the client asked for (`datacenter` / `rvt-region`) or else the region of
//! the gateway that received the request; within it, the less loaded of two live nodes picked at random (power of
//! two choices on gossiped load). A region with no live node falls back to the nearest region that has one, by
//! the round-trip time QUIC measures to its nodes.

use std::time::Duration;

use rand::seq::IndexedRandom;
use tern_replication::Transport;

use crate::cluster::{Member, MemberState, Members};

/// A chosen home.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Home {
    pub id: String,
    pub region: String,
    pub quic_addr: std::net::SocketAddr,
}

impl From<&Member> for Home {
    fn from(member: &Member) -> Self {
        Home { id: member.node.id.clone(), region: member.node.region.clone(), quic_addr: member.node.quic_addr }
    }
}

/// Picks a home for a new actor in `region` (else the nearest region with a live node), skipping the nodes in
/// `avoid` (ones that just failed to answer). `None` when no live node is left.
pub fn choose(
    members: &Members,
    transport: &Transport,
    region: &str,
    avoid: &[String],
    local_load: u64,
) -> Option<Home> {
    let live: Vec<Member> =
        members.all().into_iter().filter(|m| m.state == MemberState::Alive && !avoid.contains(&m.node.id)).collect();
    let in_region: Vec<&Member> = live.iter().filter(|m| m.node.region == region).collect();
    let candidates = if in_region.is_empty() {
        let nearest = nearest_region(&live, transport)?;
        live.iter().filter(|m| m.node.region == nearest).collect()
    } else {
        in_region
    };
    let load = |m: &Member| if m.local { local_load } else { m.load.map_or(0, |l| l.awake_actors) };
    let mut rng = rand::rng();
    let picked: Vec<&&Member> = candidates.sample(&mut rng, 2).collect();
    picked.into_iter().min_by_key(|m| load(m)).map(|m| Home::from(*m))
}

/// The region of the live node with the smallest measured round-trip time (this node's own region first, at
/// zero); nodes without a measurement count as far away.
fn nearest_region(live: &[Member], transport: &Transport) -> Option<String> {
    live.iter()
        .min_by_key(|m| if m.local { Duration::ZERO } else { transport.rtt(m.node.quic_addr).unwrap_or(Duration::MAX) })
        .map(|m| m.node.region.clone())
}
