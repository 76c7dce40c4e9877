//! A bounded pool of open actor database handles.
//!
//! The process may open only ~20,000 files and one database costs two descriptors (the file and its WAL;
//! exclusive locking keeps the WAL index in memory), so awake actors do not each keep their file open. An actor
//! borrows its connection from the pool for each turn; the pool keeps at most `capacity` handles and closes the
//! least recently used one when it needs room. A handle still lent to an actor closes when its turn ends.

use std::num::NonZeroUsize;
use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

use lru::LruCache;

use super::ActorDb;
use super::sandbox;

struct OpenDb {
    actor_db: ActorDb,
    _db: libsql::Database,
}

/// Bounded cache of open per-actor connections, keyed by actor id.
pub struct DbPool {
    open: Mutex<LruCache<String, OpenDb>>,
}

impl DbPool {
    /// A pool that keeps at most `capacity` databases open.
    pub fn new(capacity: NonZeroUsize) -> DbPool {
        DbPool { open: Mutex::new(LruCache::new(capacity)) }
    }

    /// The actor's database (connection, prepared statements and SQL sandbox), opening the file (WAL mode,
    /// `synchronous` as given) if it is not open.
    pub async fn connection(&self, actor_id: &str, path: &Path, synchronous: &str) -> Result<ActorDb, libsql::Error> {
        if let Some(open) = self.lock().get(actor_id) {
            return Ok(open.actor_db.clone());
        }
        let (db, conn, sandbox) = sandbox::open(path).await?;
        conn.busy_timeout(Duration::from_secs(5))?;
        // Exclusive locking before WAL: one connection per actor owns the file, so SQLite keeps the WAL index in
        // heap memory (no `-shm` file: two descriptors per database, not three) and takes no lock per transaction.
        conn.query("PRAGMA locking_mode=EXCLUSIVE", ()).await?;
        conn.query("PRAGMA journal_mode=WAL", ()).await?;
        conn.execute(&format!("PRAGMA synchronous={synchronous}"), ()).await?;
        let actor_db = ActorDb::new(conn, sandbox);
        // push() returns the evicted least-recently-used entry; dropping it closes that file.
        let evicted = self.lock().push(actor_id.to_string(), OpenDb { actor_db: actor_db.clone(), _db: db });
        drop(evicted);
        Ok(actor_db)
    }

    /// Closes the actor's handle (on sleep or destroy).
    pub fn close(&self, actor_id: &str) {
        let removed = self.lock().pop(actor_id);
        drop(removed);
    }

    /// How many databases are open right now.
    pub fn open_count(&self) -> usize {
        self.lock().len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, LruCache<String, OpenDb>> {
        self.open.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `synchronous` as SQLite reports it on a pooled connection (1 NORMAL, 2 FULL).
    async fn synchronous(db: &ActorDb) -> i64 {
        let mut rows = db.connection().query("PRAGMA synchronous", ()).await.unwrap();
        rows.next().await.unwrap().unwrap().get(0).unwrap()
    }

    #[tokio::test]
    async fn connections_get_the_nodes_durability_and_the_pool_stays_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let pool = DbPool::new(NonZeroUsize::new(2).unwrap());
        // `--fsync` gives FULL (every commit fsynced); the default NORMAL.
        let full = pool.connection("a", &dir.path().join("a.db"), "FULL").await.unwrap();
        assert_eq!(synchronous(&full).await, 2);
        let normal = pool.connection("b", &dir.path().join("b.db"), "NORMAL").await.unwrap();
        assert_eq!(synchronous(&normal).await, 1);
        let mut rows = full.connection().query("PRAGMA locking_mode", ()).await.unwrap();
        let locking: String = rows.next().await.unwrap().unwrap().get(0).unwrap();
        assert_eq!(locking, "exclusive", "one connection owns each file, with no -shm");
        // A third database evicts the least recently used.
        pool.connection("c", &dir.path().join("c.db"), "NORMAL").await.unwrap();
        assert_eq!(pool.open_count(), 2);
    }
}
