//! The node's table of its actors: the records of `node.db`, which is the source of truth, behind a bounded cache.
//!
//! A node may hold a million sleeping actors, so only the actors it touches are in memory: every awake actor's
//! entry (its wake and sleep times are kept only here) and at most [`CACHED`] others. A lookup that misses reads
//! `node.db` on an index; a listing reads a page of an index. Every write to an actor's record goes through the
//! table, and reads that fill the cache are serialized with those writes, so the cache never holds a record older
//! than `node.db`'s.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use tern_gateway::backend::ActorInfo;
use tern_proto::ClientError;
use tern_proto::key::serialize_key;

use crate::storage::{ActorRecord, NodeDb};
use crate::sync::lock;

/// How many entries of actors that are not awake the cache keeps at most (awake actors' entries come on top).
pub(crate) const CACHED: usize = 65_536;

/// One actor as the table knows it.
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    pub record: ActorRecord,
    /// When it last woke, if it woke since this node started and its entry stayed cached.
    pub start_ts: Option<i64>,
    /// When it last went to sleep, likewise.
    pub sleep_ts: Option<i64>,
}

impl Entry {
    fn new(record: ActorRecord) -> Entry {
        Entry { record, start_ts: None, sleep_ts: None }
    }

    /// Whether the actor is awake (its entry must stay cached).
    fn awake(&self) -> bool {
        self.start_ts.is_some() && self.sleep_ts.is_none() && self.record.destroy_ts.is_none()
    }

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

/// The actors recorded in `node.db`, those in use cached in memory.
pub(crate) struct ActorTable {
    /// Held across a write to `node.db` and its update of the cache, and across a read that fills the cache.
    writes: tokio::sync::Mutex<()>,
    cache: Mutex<Cache>,
}

#[derive(Default)]
struct Cache {
    /// Actors by id; `None` for an id looked up and not recorded here. Entries are boxed: the map's slots (a
    /// third of them empty at any time) then cost a pointer each rather than a whole entry, for every awake actor.
    by_id: HashMap<String, Option<Box<Entry>>>,
    /// The ids of the cached live actors, by (name, serialized key).
    by_key: HashMap<(String, String), String>,
    /// Live actors per name; loaded from `node.db` when first asked for, then kept up to date.
    live_counts: Option<BTreeMap<String, u64>>,
    /// How many cached entries are of awake actors (these are never evicted).
    awake: usize,
    /// How many entries of actors that are not awake are kept at most.
    capacity: usize,
}

impl ActorTable {
    /// A table over `node.db` whose cache keeps at most `capacity` entries of actors that are not awake.
    pub fn new(capacity: usize) -> ActorTable {
        let cache = Cache { capacity, ..Cache::default() };
        ActorTable { writes: tokio::sync::Mutex::new(()), cache: Mutex::new(cache) }
    }

    /// Runs `f` on the actor's entry (`None` when the actor is not recorded here), reading `node.db` if the entry
    /// is not cached.
    pub async fn with<T>(
        &self,
        db: &NodeDb,
        actor_id: &str,
        f: impl FnOnce(Option<&Entry>) -> T,
    ) -> Result<T, ClientError> {
        if let Some(cached) = lock(&self.cache).by_id.get(actor_id) {
            return Ok(f(cached.as_deref()));
        }
        let _writes = self.writes.lock().await;
        Ok(f(self.load(db, actor_id).await?.as_ref()))
    }

    /// A copy of the actor's entry, destroyed or not; `None` when it is not recorded here.
    pub async fn get(&self, db: &NodeDb, actor_id: &str) -> Result<Option<Entry>, ClientError> {
        self.with(db, actor_id, |entry| entry.cloned()).await
    }

    /// The live actor holding `name` and `key`, if any.
    pub async fn live_by_key(&self, db: &NodeDb, name: &str, key: &[String]) -> Result<Option<Entry>, ClientError> {
        let by_key = (name.to_string(), serialize_key(key));
        if let Some(entry) = lock(&self.cache).live_by_key(&by_key) {
            return Ok(Some(entry));
        }
        let _writes = self.writes.lock().await;
        if let Some(entry) = lock(&self.cache).live_by_key(&by_key) {
            return Ok(Some(entry));
        }
        let Some(record) = db.live_by_key(name, key).await? else { return Ok(None) };
        let mut cache = lock(&self.cache);
        let actor_id = record.actor_id.clone();
        cache.fill(&actor_id, Some(record));
        Ok(cache.entry(&actor_id))
    }

    /// Records a new actor (created here, or arriving from another node), in `node.db` first. Fails with
    /// `actor.duplicate_key` if a live actor already holds its name and key.
    pub async fn insert(&self, db: &NodeDb, record: ActorRecord) -> Result<(), ClientError> {
        let _writes = self.writes.lock().await;
        db.insert(&record).await?;
        let mut cache = lock(&self.cache);
        cache.count(&record.name, 1);
        cache.put(Entry::new(record));
        Ok(())
    }

    /// Marks the actor destroyed at `ts` (in `node.db` first), freeing its key. An actor destroyed already keeps
    /// its time.
    pub async fn mark_destroyed(&self, db: &NodeDb, actor_id: &str, ts: i64) -> Result<(), ClientError> {
        let _writes = self.writes.lock().await;
        let Some(mut entry) = self.load(db, actor_id).await? else { return Ok(()) };
        if entry.record.destroy_ts.is_some() {
            return Ok(());
        }
        db.mark_destroyed(actor_id, ts).await?;
        let mut cache = lock(&self.cache);
        cache.count(&entry.record.name, -1);
        entry.record.destroy_ts = Some(ts);
        entry.record.input = None;
        cache.put(entry);
        Ok(())
    }

    /// Forgets the actor (it lives on another node now), with its alarm and unfinished-work marks in `node.db`.
    /// The table answers "not here" at once, before `node.db` is written, so that no request is served here
    /// from then on; if the write fails, the next lookup reads `node.db` again.
    pub async fn remove(&self, db: &NodeDb, actor_id: &str) -> Result<(), ClientError> {
        let cached = {
            let mut cache = lock(&self.cache);
            let cached = cache.by_id.get(actor_id).cloned();
            cache.forget(actor_id);
            // A fill under way finds this and leaves it (it fills only what is not cached).
            cache.by_id.insert(actor_id.to_string(), None);
            cached
        };
        let _writes = self.writes.lock().await;
        let record = match cached {
            Some(entry) => entry.map(|e| e.record),
            None => db.actor(actor_id).await?,
        };
        if let Err(e) = db.remove_actor(actor_id).await {
            lock(&self.cache).forget(actor_id);
            return Err(e);
        }
        if let Some(record) = record.filter(|r| r.destroy_ts.is_none()) {
            lock(&self.cache).count(&record.name, -1);
        }
        Ok(())
    }

    /// Forgets the actor's create input (in `node.db` first) once it has run its create hooks.
    pub async fn clear_input(&self, db: &NodeDb, actor_id: &str) -> Result<(), ClientError> {
        let _writes = self.writes.lock().await;
        db.clear_input(actor_id).await?;
        if let Some(Some(entry)) = lock(&self.cache).by_id.get_mut(actor_id) {
            entry.record.input = None;
        }
        Ok(())
    }

    /// The record of the actor if its entry is cached: `Some(None)` when it is not recorded here or is destroyed,
    /// `None` when nothing is cached (load it with [`ActorTable::get`] first).
    pub fn cached_record(&self, actor_id: &str) -> Option<Option<ActorRecord>> {
        let cache = lock(&self.cache);
        let cached = cache.by_id.get(actor_id)?;
        Some(cached.as_ref().filter(|entry| entry.record.destroy_ts.is_none()).map(|entry| entry.record.clone()))
    }

    /// Marks the cached actor awake as of `now`; its entry stays cached until [`ActorTable::slept`].
    pub fn woke(&self, actor_id: &str, now: i64) {
        let mut cache = lock(&self.cache);
        if let Some(Some(entry)) = cache.by_id.get_mut(actor_id) {
            let was_awake = entry.awake();
            entry.start_ts = Some(now);
            entry.sleep_ts = None;
            if !was_awake && entry.awake() {
                cache.awake += 1;
            }
        }
    }

    /// Marks the actor asleep as of `now`; its entry may leave the cache from then on.
    pub fn slept(&self, actor_id: &str, now: i64) {
        let mut cache = lock(&self.cache);
        if let Some(Some(entry)) = cache.by_id.get_mut(actor_id) {
            let was_awake = entry.awake();
            entry.sleep_ts = Some(now);
            if was_awake {
                cache.awake -= 1;
            }
        }
    }

    /// At most `limit` live actors, optionally of one name, in listing order from just past `after`'s position
    /// (from the newest without it). Reads one page of an index of `node.db`.
    pub async fn page(
        &self,
        db: &NodeDb,
        name: Option<&str>,
        after: Option<(i64, &str)>,
        limit: usize,
    ) -> Result<Vec<Entry>, ClientError> {
        let records = db.live_page(name, after, limit).await?;
        let cache = lock(&self.cache);
        Ok(records
            .into_iter()
            .map(|record| match cache.by_id.get(&record.actor_id) {
                Some(Some(cached)) => Entry { record, start_ts: cached.start_ts, sleep_ts: cached.sleep_ts },
                _ => Entry::new(record),
            })
            .collect())
    }

    /// How many live actors of each name are recorded here (counted in `node.db` once, then kept up to date).
    pub async fn live_counts(&self, db: &NodeDb) -> Result<BTreeMap<String, u64>, ClientError> {
        if let Some(counts) = &lock(&self.cache).live_counts {
            return Ok(counts.clone());
        }
        let _writes = self.writes.lock().await;
        if let Some(counts) = &lock(&self.cache).live_counts {
            return Ok(counts.clone());
        }
        let counts = db.live_counts().await?;
        lock(&self.cache).live_counts = Some(counts.clone());
        Ok(counts)
    }

    /// The names of the cached actors among `actor_ids` (every awake actor is cached).
    pub fn names<'a>(&self, actor_ids: impl Iterator<Item = &'a String>) -> Vec<String> {
        let cache = lock(&self.cache);
        actor_ids.filter_map(|id| cache.by_id.get(id)?.as_ref().map(|e| e.record.name.clone())).collect()
    }

    /// How many entries are cached (awake actors' included).
    #[cfg(test)]
    pub fn cached(&self) -> usize {
        lock(&self.cache).by_id.len()
    }

    /// The actor's entry, from the cache or read into it from `node.db`. The caller holds `writes`.
    async fn load(&self, db: &NodeDb, actor_id: &str) -> Result<Option<Entry>, ClientError> {
        if let Some(cached) = lock(&self.cache).by_id.get(actor_id) {
            return Ok(cached.as_deref().cloned());
        }
        let record = db.actor(actor_id).await?;
        let mut cache = lock(&self.cache);
        cache.fill(actor_id, record);
        Ok(cache.entry(actor_id))
    }
}

impl Cache {
    /// A copy of the actor's cached entry, if it is cached and recorded.
    fn entry(&self, actor_id: &str) -> Option<Entry> {
        self.by_id.get(actor_id)?.as_deref().cloned()
    }

    fn live_by_key(&self, by_key: &(String, String)) -> Option<Entry> {
        self.entry(self.by_key.get(by_key)?)
    }

    /// Caches what `node.db` holds for `actor_id`, unless an entry is cached already.
    fn fill(&mut self, actor_id: &str, record: Option<ActorRecord>) {
        if self.by_id.contains_key(actor_id) {
            return;
        }
        match record {
            Some(record) => self.put(Entry::new(record)),
            None => {
                self.by_id.insert(actor_id.to_string(), None);
                self.evict(actor_id);
            }
        }
    }

    /// Caches `entry`, replacing any entry of its actor.
    fn put(&mut self, entry: Entry) {
        let actor_id = entry.record.actor_id.clone();
        let by_key = (entry.record.name.clone(), serialize_key(&entry.record.key));
        if entry.record.destroy_ts.is_none() {
            self.by_key.insert(by_key, actor_id.clone());
        } else if self.by_key.get(&by_key) == Some(&actor_id) {
            self.by_key.remove(&by_key);
        }
        self.awake += usize::from(entry.awake());
        if let Some(Some(replaced)) = self.by_id.insert(actor_id.clone(), Some(Box::new(entry))) {
            self.awake -= usize::from(replaced.awake());
        }
        self.evict(&actor_id);
    }

    /// Drops whatever is cached of the actor.
    fn forget(&mut self, actor_id: &str) {
        if let Some(Some(entry)) = self.by_id.remove(actor_id) {
            self.awake -= usize::from(entry.awake());
            let by_key = (entry.record.name, serialize_key(&entry.record.key));
            if self.by_key.get(&by_key).is_some_and(|id| id == actor_id) {
                self.by_key.remove(&by_key);
            }
        }
    }

    /// Past `capacity` entries of actors that are not awake, drops an eighth of them (never `keep`'s, just
    /// cached): a cache miss costs an index read, and eviction costs a pass over the cache once every
    /// `capacity / 8` fills.
    fn evict(&mut self, keep: &str) {
        let bound = self.capacity + self.awake;
        if self.by_id.len() <= bound {
            return;
        }
        let excess = self.by_id.len() - bound + self.capacity / 8;
        let evicted: Vec<String> = self
            .by_id
            .iter()
            .filter(|(id, entry)| *id != keep && !entry.as_deref().is_some_and(Entry::awake))
            .map(|(id, _)| id.clone())
            .take(excess)
            .collect();
        for actor_id in evicted {
            self.forget(&actor_id);
        }
    }

    /// Adds `delta` to the live count of `name`, once the counts are loaded.
    fn count(&mut self, name: &str, delta: i64) {
        if let Some(counts) = &mut self.live_counts {
            let count = counts.entry(name.to_string()).or_default();
            *count = count.saturating_add_signed(delta);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::Metrics;

    fn record(i: usize, name: &str) -> ActorRecord {
        ActorRecord {
            actor_id: format!("actor{i:05}"),
            name: name.to_string(),
            key: vec![format!("k{i}")],
            input: None,
            create_ts: 1_000 + (i / 3) as i64,
            destroy_ts: None,
        }
    }

    async fn table(capacity: usize) -> (tempfile::TempDir, NodeDb, ActorTable) {
        let dir = tempfile::tempdir().unwrap();
        let db = NodeDb::open(&dir.path().join("node.db"), Metrics::new("local")).await.unwrap();
        (dir, db, ActorTable::new(capacity))
    }

    #[tokio::test]
    async fn the_cache_stays_bounded_and_every_lookup_still_sees_node_db() {
        let (_dir, db, table) = table(16).await;
        for i in 0..100 {
            table.insert(&db, record(i, "counter")).await.unwrap();
        }
        // Ten actors are awake: their entries outlive every eviction.
        for i in 0..10 {
            table.get(&db, &format!("actor{i:05}")).await.unwrap();
            table.woke(&format!("actor{i:05}"), 5);
        }
        for round in 0..3 {
            for i in 0..100 {
                let id = format!("actor{i:05}");
                let entry = table.get(&db, &id).await.unwrap().expect("recorded");
                assert_eq!(entry.record, record(i, "counter"), "round {round}");
                let by_key = table.live_by_key(&db, "counter", &[format!("k{i}")]).await.unwrap();
                assert_eq!(by_key.map(|e| e.record.actor_id), Some(id));
                assert!(table.cached() <= 16 + 10, "{} cached", table.cached());
            }
        }
        for i in 0..10 {
            assert_eq!(table.cached_record(&format!("actor{i:05}")), Some(Some(record(i, "counter"))));
        }
        assert_eq!(table.get(&db, "nobody").await.unwrap().map(|e| e.record), None);
    }

    #[tokio::test]
    async fn writes_to_actors_no_longer_cached_reach_later_lookups() {
        let (_dir, db, table) = table(4).await;
        for i in 0..20 {
            table.insert(&db, record(i, "counter")).await.unwrap();
        }
        assert_eq!(table.live_counts(&db).await.unwrap(), BTreeMap::from([("counter".to_string(), 20)]));
        // The first actors left the cache long ago.
        table.mark_destroyed(&db, "actor00000", 7).await.unwrap();
        table.remove(&db, "actor00001").await.unwrap();
        table.clear_input(&db, "actor00002").await.unwrap();
        for _ in 0..2 {
            for i in 5..20 {
                table.get(&db, &format!("actor{i:05}")).await.unwrap();
            }
            let destroyed = table.get(&db, "actor00000").await.unwrap().expect("kept with its destroy time");
            assert_eq!(destroyed.record.destroy_ts, Some(7));
            assert!(table.live_by_key(&db, "counter", &["k0".to_string()]).await.unwrap().is_none());
            assert!(table.get(&db, "actor00001").await.unwrap().is_none());
        }
        // Destroying twice keeps the first time.
        table.mark_destroyed(&db, "actor00000", 9).await.unwrap();
        assert_eq!(table.get(&db, "actor00000").await.unwrap().unwrap().record.destroy_ts, Some(7));
        assert_eq!(table.live_counts(&db).await.unwrap(), BTreeMap::from([("counter".to_string(), 18)]));
        // A new actor may take the destroyed one's key.
        let mut again = record(99, "counter");
        again.key = vec!["k0".to_string()];
        table.insert(&db, again).await.unwrap();
        let holder = table.live_by_key(&db, "counter", &["k0".to_string()]).await.unwrap();
        assert_eq!(holder.map(|e| e.record.actor_id), Some("actor00099".to_string()));
    }

    #[tokio::test]
    async fn pages_follow_each_other_newest_first_without_gaps_or_repeats() {
        let (_dir, db, table) = table(8).await;
        for i in 0..50 {
            table.insert(&db, record(i, if i % 2 == 0 { "even" } else { "odd" })).await.unwrap();
        }
        table.mark_destroyed(&db, "actor00010", 5).await.unwrap();
        for name in [None, Some("even")] {
            let mut seen = Vec::new();
            let mut after: Option<(i64, String)> = None;
            loop {
                let page = table.page(&db, name, after.as_ref().map(|(ts, id)| (*ts, id.as_str())), 7).await.unwrap();
                let Some(last) = page.last() else { break };
                after = Some((last.record.create_ts, last.record.actor_id.clone()));
                seen.extend(page.iter().map(|e| (e.record.create_ts, e.record.actor_id.clone())));
            }
            let mut expected: Vec<(i64, String)> = (0..50)
                .filter(|i| *i != 10 && (name.is_none() || i % 2 == 0))
                .map(|i| (record(i, "").create_ts, record(i, "").actor_id))
                .collect();
            expected.sort_by(|a, b| b.cmp(a));
            assert_eq!(seen, expected, "{name:?}");
        }
    }
}
