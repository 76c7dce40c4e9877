//! The node's in-memory table of its actors: by id and by (name, key), mirroring `node.db`.

use std::collections::HashMap;

use tern_gateway::backend::ActorInfo;
use tern_proto::key::serialize_key;

use crate::storage::ActorRecord;

/// One actor as the table knows it.
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    pub record: ActorRecord,
    pub start_ts: Option<i64>,
    pub sleep_ts: Option<i64>,
}

/// Actors by id, and live actors by (name, serialized key).
#[derive(Default)]
pub(crate) struct ActorTable {
    by_id: HashMap<String, Entry>,
    by_key: HashMap<(String, String), String>,
}

impl ActorTable {
    /// Builds the directory from the node database's records.
    pub fn from_records(records: Vec<ActorRecord>) -> ActorTable {
        let mut dir = ActorTable::default();
        for record in records {
            dir.insert(record);
        }
        dir
    }

    /// Adds an actor.
    pub fn insert(&mut self, record: ActorRecord) {
        if record.destroy_ts.is_none() {
            self.by_key.insert((record.name.clone(), serialize_key(&record.key)), record.actor_id.clone());
        }
        self.by_id.insert(record.actor_id.clone(), Entry { record, start_ts: None, sleep_ts: None });
    }

    /// Forgets an actor (it lives on another node now).
    pub fn remove(&mut self, actor_id: &str) {
        if let Some(entry) = self.by_id.remove(actor_id) {
            let by_key = (entry.record.name.clone(), serialize_key(&entry.record.key));
            if self.by_key.get(&by_key).is_some_and(|id| id == actor_id) {
                self.by_key.remove(&by_key);
            }
        }
    }

    /// The live actor for a name and key.
    pub fn live_by_key(&self, name: &str, key: &[String]) -> Option<&Entry> {
        let id = self.by_key.get(&(name.to_string(), serialize_key(key)))?;
        self.by_id.get(id)
    }

    /// Any actor by id, destroyed ones included.
    pub fn get(&self, actor_id: &str) -> Option<&Entry> {
        self.by_id.get(actor_id)
    }

    /// Mutable access by id.
    pub fn get_mut(&mut self, actor_id: &str) -> Option<&mut Entry> {
        self.by_id.get_mut(actor_id)
    }

    /// Live actors, optionally of one name, newest first.
    pub fn live(&self, name: Option<&str>, limit: usize) -> Vec<&Entry> {
        let mut out: Vec<&Entry> = self
            .by_id
            .values()
            .filter(|e| e.record.destroy_ts.is_none() && name.is_none_or(|n| e.record.name == n))
            .collect();
        out.sort_by(|a, b| b.record.create_ts.cmp(&a.record.create_ts).then(a.record.actor_id.cmp(&b.record.actor_id)));
        out.truncate(limit);
        out
    }

    /// Marks an actor destroyed and frees its key.
    pub fn mark_destroyed(&mut self, actor_id: &str, ts: i64) {
        if let Some(entry) = self.by_id.get_mut(actor_id) {
            entry.record.destroy_ts = Some(ts);
            entry.record.input = None;
            self.by_key.remove(&(entry.record.name.clone(), serialize_key(&entry.record.key)));
        }
    }
}

impl Entry {
    /// The entry as the REST API reports it.
    pub fn info(&self, region: &str) -> ActorInfo {
        ActorInfo {
            actor_id: self.record.actor_id.clone(),
            name: self.record.name.clone(),
            key: self.record.key.clone(),
            region: region.to_string(),
            create_ts: self.record.create_ts,
            start_ts: self.start_ts,
            sleep_ts: self.sleep_ts,
            destroy_ts: self.record.destroy_ts,
        }
    }
}
