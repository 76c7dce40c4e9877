//! The membership view the rest of the node reads: every known node, its state, region, zone and load.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::SystemTime;

use tokio::sync::watch;

use super::identity::NodeInfo;
use super::load::{Load, LoadRecord};

/// What this node believes about a member.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MemberState {
    /// It answers probes (or this node itself, while in the cluster).
    Alive,
    /// A probe went unanswered and the member has not refuted it yet; it still counts as live.
    Suspect,
    /// Declared dead or left; a later run of the node comes back as a new generation.
    Down,
}

impl MemberState {
    /// Whether the member counts as live (alive or suspect), as SWIM treats it.
    pub fn is_live(self) -> bool {
        self != MemberState::Down
    }
}

impl From<foca::State> for MemberState {
    fn from(state: foca::State) -> Self {
        match state {
            foca::State::Alive => MemberState::Alive,
            foca::State::Suspect => MemberState::Suspect,
            foca::State::Down => MemberState::Down,
        }
    }
}

/// One node as this node sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Member {
    /// Its identity: id, generation, region, zone, gateway URL, QUIC address.
    pub node: NodeInfo,
    /// Its state.
    pub state: MemberState,
    /// Its last gossiped load, if one from its current generation has arrived.
    pub load: Option<Load>,
    /// When this node last saw its state or identity change.
    pub since: SystemTime,
    /// Whether it is this node.
    pub local: bool,
}

/// What the view keeps per node; the load is kept apart, since it may arrive before the member.
#[derive(Clone, Debug)]
struct Entry {
    node: NodeInfo,
    state: MemberState,
    since: SystemTime,
}

/// The membership table behind [`Members`], written only by the membership task.
#[derive(Debug)]
pub(super) struct Table {
    local: Entry,
    members: BTreeMap<String, Entry>,
    loads: HashMap<String, LoadRecord>,
}

impl Table {
    pub(super) fn new(local: NodeInfo) -> Self {
        let local = Entry { node: local, state: MemberState::Alive, since: SystemTime::now() };
        Self { local, members: BTreeMap::new(), loads: HashMap::new() }
    }

    fn member(&self, entry: &Entry, local: bool) -> Member {
        let load = self.loads.get(&entry.node.id).filter(|r| r.generation == entry.node.generation).map(|r| r.load);
        Member { node: entry.node.clone(), state: entry.state, load, since: entry.since, local }
    }

    /// Records this node's identity and state; true if either changed.
    pub(super) fn set_local(&mut self, node: &NodeInfo, state: MemberState) -> bool {
        if self.local.node == *node && self.local.state == state {
            return false;
        }
        self.local = Entry { node: node.clone(), state, since: SystemTime::now() };
        true
    }

    /// Keeps `record` if it is newer than what is known of its node's load; true if kept.
    pub(super) fn offer_load(&mut self, record: LoadRecord) -> bool {
        if self.loads.get(&record.node).is_some_and(|known| known.version() >= record.version()) {
            return false;
        }
        self.loads.insert(record.node.clone(), record);
        true
    }

    /// Brings the table in line with foca's full membership state (down members included); true if it changed.
    pub(super) fn sync<'a>(&mut self, state: impl Iterator<Item = &'a foca::Member<NodeInfo>>) -> bool {
        let now = SystemTime::now();
        let mut changed = false;
        let mut seen = HashSet::new();
        for member in state {
            let (node, state) = (member.id(), MemberState::from(member.state()));
            // foca keeps this node's previous runs as down members; the view shows this node once.
            if node.id == self.local.node.id {
                continue;
            }
            seen.insert(node.id.as_str());
            match self.members.get_mut(&node.id) {
                Some(entry) if entry.node == *node && entry.state == state => {}
                Some(entry) => {
                    *entry = Entry { node: node.clone(), state, since: now };
                    changed = true;
                }
                None => {
                    self.members.insert(node.id.clone(), Entry { node: node.clone(), state, since: now });
                    changed = true;
                }
            }
        }
        let before = self.members.len();
        self.members.retain(|id, _| seen.contains(id.as_str()));
        changed || self.members.len() != before
    }

    /// How many nodes the cluster has, as far as sizing foca goes: this one and every live member.
    pub(super) fn cluster_size(&self) -> usize {
        1 + self.members.values().filter(|entry| entry.state.is_live()).count()
    }
}

/// A read handle on the membership view: cheap to clone, always current, and able to wait for changes.
#[derive(Clone, Debug)]
pub struct Members {
    view: watch::Receiver<Table>,
}

impl Members {
    pub(super) fn new(view: watch::Receiver<Table>) -> Self {
        Self { view }
    }

    /// Every known node, this one included, sorted by id.
    pub fn all(&self) -> Vec<Member> {
        let table = self.view.borrow();
        let local = table.member(&table.local, true);
        let mut all: Vec<Member> = table.members.values().map(|entry| table.member(entry, false)).collect();
        let at = all.partition_point(|member| member.node.id < local.node.id);
        all.insert(at, local);
        all
    }

    /// The node with id `id`, if known.
    pub fn get(&self, id: &str) -> Option<Member> {
        let table = self.view.borrow();
        if table.local.node.id == id {
            return Some(table.member(&table.local, true));
        }
        table.members.get(id).map(|entry| table.member(entry, false))
    }

    /// This node.
    pub fn local(&self) -> Member {
        let table = self.view.borrow();
        table.member(&table.local, true)
    }

    /// Waits until the view changes (a member's state, identity or load); false once membership has stopped and
    /// the view will not change again.
    pub async fn changed(&mut self) -> bool {
        self.view.changed().await.is_ok()
    }
}

#[cfg(test)]
mod tests {
    use foca::State;

    use super::*;

    fn node(id: &str, generation: u64) -> NodeInfo {
        let quic_addr = "127.0.0.1:7420".parse().unwrap();
        NodeInfo { id: id.into(), generation, region: "iad".into(), zone: None, gateway_url: String::new(), quic_addr }
    }

    fn load(node: &str, generation: u64, seq: u64, awake_actors: u64) -> LoadRecord {
        LoadRecord { node: node.into(), generation, seq, load: Load { awake_actors, open_databases: 0 } }
    }

    #[test]
    fn the_view_follows_foca_and_attaches_current_loads() {
        let (tx, rx) = watch::channel(Table::new(node("b", 1)));
        let members = Members::new(rx);
        let state = [
            foca::Member::new(node("c", 5), 0, State::Suspect),
            foca::Member::new(node("a", 2), 0, State::Alive),
            foca::Member::new(node("b", 0), 0, State::Down),
        ];
        tx.send_modify(|table| assert!(table.sync(state.iter())));
        tx.send_modify(|table| assert!(!table.sync(state.iter()), "nothing new"));
        let seen: Vec<_> = members.all().iter().map(|m| (m.node.id.clone(), m.state, m.local)).collect();
        assert_eq!(
            seen,
            [
                ("a".into(), MemberState::Alive, false),
                ("b".into(), MemberState::Alive, true),
                ("c".into(), MemberState::Suspect, false)
            ]
        );
        tx.send_modify(|table| {
            assert_eq!(table.cluster_size(), 3);
            assert!(table.offer_load(load("a", 2, 7, 10)));
            assert!(!table.offer_load(load("a", 2, 6, 99)), "older than what is known");
            assert!(table.offer_load(load("c", 4, 9, 10)), "kept, but from a previous run of c");
        });
        assert_eq!(members.get("a").unwrap().load.unwrap().awake_actors, 10);
        assert_eq!(members.get("c").unwrap().load, None);
        tx.send_modify(|table| assert!(table.sync(state[..1].iter())));
        assert_eq!(members.get("a"), None, "forgotten by foca, forgotten here");
    }
}
