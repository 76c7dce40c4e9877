//! Node load, gossiped as a foca custom broadcast: a versioned record per node, the newer replacing the older.

use foca::{BroadcastHandler, Invalidates};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use super::codec::{self, CodecError};
use super::identity::NodeInfo;
use super::members::Table;

/// How busy a node is, as placement compares nodes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Load {
    /// Actors awake in memory.
    #[serde(rename = "a")]
    pub awake_actors: u64,
    /// Actor databases open.
    #[serde(rename = "d")]
    pub open_databases: u64,
}

/// One node's load at one moment: what the broadcast carries.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct LoadRecord {
    /// The node's id.
    #[serde(rename = "n")]
    pub node: String,
    /// The node's generation when it sent the record.
    #[serde(rename = "g")]
    pub generation: u64,
    /// Counts the node's records within one generation.
    #[serde(rename = "s")]
    pub seq: u64,
    /// The load.
    #[serde(rename = "l")]
    pub load: Load,
}

impl LoadRecord {
    /// Orders one node's records: a later run's are newer, then a later sequence number's.
    pub(super) fn version(&self) -> (u64, u64) {
        (self.generation, self.seq)
    }
}

/// Identifies a record in foca's broadcast backlog, where a newer record of a node replaces an older one.
#[derive(Debug)]
pub(super) struct LoadKey {
    node: String,
    version: (u64, u64),
}

impl Invalidates for LoadKey {
    fn invalidates(&self, other: &Self) -> bool {
        self.node == other.node && self.version >= other.version
    }
}

/// Receives load records (from peers, and this node's own through `add_broadcast`) into the membership view.
pub(super) struct LoadHandler {
    view: watch::Sender<Table>,
}

impl LoadHandler {
    pub(super) fn new(view: watch::Sender<Table>) -> Self {
        Self { view }
    }
}

impl BroadcastHandler<NodeInfo> for LoadHandler {
    type Key = LoadKey;
    type Error = CodecError;

    /// Keeps and passes on only records newer than what is known, so that each spreads once and then stops.
    fn receive_item(&mut self, data: &[u8], _sender: Option<&NodeInfo>) -> Result<Option<LoadKey>, CodecError> {
        let record: LoadRecord = codec::decode(data)?;
        let key = LoadKey { node: record.node.clone(), version: record.version() };
        Ok(self.view.send_if_modified(|table| table.offer_load(record)).then_some(key))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_newer_records_spread_and_a_newer_one_replaces_an_older_one() {
        let local = NodeInfo {
            id: "a".into(),
            generation: 1,
            region: "iad".into(),
            zone: None,
            gateway_url: String::new(),
            quic_addr: "127.0.0.1:1".parse().unwrap(),
        };
        let (tx, _rx) = watch::channel(Table::new(local));
        let mut handler = LoadHandler::new(tx);
        let record = |generation, seq| LoadRecord { node: "b".into(), generation, seq, load: Load::default() };
        let bytes = |r: &LoadRecord| codec::to_bytes(r).unwrap();
        let key = handler.receive_item(&bytes(&record(2, 1)), None).unwrap().expect("new");
        assert!(handler.receive_item(&bytes(&record(2, 1)), None).unwrap().is_none(), "known already");
        assert!(handler.receive_item(&bytes(&record(1, 9)), None).unwrap().is_none(), "from an older run");
        let newer = handler.receive_item(&bytes(&record(3, 0)), None).unwrap().expect("from a newer run");
        assert!(newer.invalidates(&key) && !key.invalidates(&newer));
        assert!(handler.receive_item(b"\xff", None).is_err());
    }
}
