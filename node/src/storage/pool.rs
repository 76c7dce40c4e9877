//! A bounded pool of open actor database handles.
//!
//! The process may open only ~20,000 files and one database costs two descriptors (the file and its WAL;
//! exclusive locking keeps the WAL index in memory), so awake actors do not each keep their file open. An actor
//! borrows its connection from the pool for each turn; the pool keeps at most `capacity` handles and closes the
//! least recently used one when it needs room. A handle still lent to an actor closes when its turn ends.
//!
//! Files are opened through [`super::vfs`], which never lets one file have two connections in the process and
//! keeps no record of the open files for SQLite to walk on each open.

use std::num::NonZeroUsize;
use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

use lru::LruCache;

use super::{ActorDb, ActorTemplate};
use super::{sandbox, vfs};

/// The most page cache one actor database keeps, in KiB (SQLite's default is 2,000 KiB). Pages beyond it are read
/// again from the operating system's cache, which holds the recently used ones; so the pool's memory stays bounded
/// at its capacity × (this + ~150 KiB of schema, statements and lookaside), and a node whose actors' tables grow
/// reaches its steady memory within minutes instead of growing towards 2 MiB per open database.
pub const PAGE_CACHE_KIB: u32 = 256;

/// How long an open waits for a file another connection holds.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Whether the database at `path` has no WAL file, so that the WAL its next connection writes is a new file that
/// holds nothing else. Then the database file is durable: a clean close's checkpoint synced it before removing the
/// WAL, and a template copy or a received snapshot was synced before it was put in place. An empty WAL file does
/// not count: one emptied in place (replication's checkpoints truncate it) is restarted over its old header, which
/// SQLite syncs first.
fn wal_is_absent(path: &Path) -> bool {
    let mut wal = path.as_os_str().to_owned();
    wal.push("-wal");
    matches!(std::fs::symlink_metadata(wal), Err(e) if e.kind() == std::io::ErrorKind::NotFound)
}

struct OpenDb {
    actor_db: ActorDb,
    _db: libsql::Database,
}

/// Bounded cache of open per-actor connections, keyed by actor id.
pub struct DbPool {
    open: Mutex<LruCache<String, OpenDb>>,
    template: ActorTemplate,
}

impl DbPool {
    /// A pool that keeps at most `capacity` databases open, and creates missing ones from `template`.
    pub fn new(capacity: NonZeroUsize, template: ActorTemplate) -> DbPool {
        DbPool { open: Mutex::new(LruCache::new(capacity)), template }
    }

    /// The actor's database (connection, prepared statements and SQL sandbox), opening the file (WAL mode,
    /// `synchronous` as given) if it is not open. A file that does not exist yet is created as a copy of the
    /// template ([`ActorTemplate::create`]: synced before SQLite opens it, its directory too with `FULL`).
    ///
    /// With `synchronous=NORMAL`, a connection to a file without a WAL (just created, or closed cleanly: the
    /// close removes the WAL) starts relaxed ([`ActorDb::relax_first_transaction`]): until its first commit it
    /// runs with `synchronous=OFF`, and neither SQLite's automatic checkpoint nor its checkpoint on close runs.
    /// That transaction writes a new WAL that holds nothing else, so skipping the sync of that WAL's header and
    /// directory entry risks only the transactions since the open on a power loss, which `NORMAL` risks anyway;
    /// it survives `kill -9` the same. With no checkpoint, nothing moves into the database file unsynced; a
    /// connection closed while relaxed keeps its WAL, and the next open is at `NORMAL`. So is any open that
    /// finds a WAL file (a node stopped without closing the database).
    pub async fn connection(&self, actor_id: &str, path: &Path, synchronous: &str) -> Result<ActorDb, libsql::Error> {
        if let Some(open) = self.lock().get(actor_id) {
            return Ok(open.actor_db.clone());
        }
        self.template
            .create(path, synchronous == "FULL")
            .map_err(|e| libsql::Error::ConnectionFailed(format!("creating {}: {e}", path.display())))?;
        // Before SQLite opens the file, which creates an empty WAL.
        let relaxed = synchronous == "NORMAL" && wal_is_absent(path);
        // A connection that outlived its pool entry (see `vfs`) still holds the file: wait for it to close, as
        // SQLite's busy timeout waits for a lock; after that the layer refuses the open.
        let waited = tokio::time::Instant::now();
        while vfs::in_use(path) && waited.elapsed() < BUSY_TIMEOUT {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let (db, conn, sandbox) = sandbox::open(vfs::uri(path)?).await?;
        conn.busy_timeout(BUSY_TIMEOUT)?;
        // Exclusive locking before WAL: one connection per actor owns the file, so SQLite keeps the WAL index in
        // heap memory (no `-shm` file: two descriptors per database, not three) and takes no lock per transaction.
        conn.query("PRAGMA locking_mode=EXCLUSIVE", ()).await?;
        conn.query("PRAGMA journal_mode=WAL", ()).await?;
        conn.execute(&format!("PRAGMA synchronous={synchronous}"), ()).await?;
        conn.execute(&format!("PRAGMA cache_size=-{PAGE_CACHE_KIB}"), ()).await?;
        let actor_db = ActorDb::new(conn, sandbox);
        if relaxed {
            actor_db.relax_first_transaction().await?;
        }
        // push() returns the evicted least-recently-used entry; dropping it closes that file.
        let evicted = self.lock().push(actor_id.to_string(), OpenDb { actor_db: actor_db.clone(), _db: db });
        drop(evicted);
        Ok(actor_db)
    }

    /// Closes the actor's handle (on destroy, and when its files move to or from another node).
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

    /// A pool of `capacity` handles, with its template, in a new temporary directory.
    async fn pool_in_a_temp_dir(capacity: usize) -> (tempfile::TempDir, DbPool) {
        let dir = tempfile::tempdir().unwrap();
        let template = ActorTemplate::build(&dir.path().join("template.db")).await.unwrap();
        (dir, DbPool::new(NonZeroUsize::new(capacity).unwrap(), template))
    }

    /// The first column of the first row `sql` returns on a pooled connection.
    async fn one(db: &ActorDb, sql: &str) -> i64 {
        let mut rows = db.connection().query(sql, ()).await.unwrap();
        rows.next().await.unwrap().unwrap().get(0).unwrap()
    }

    /// `synchronous` as SQLite reports it on a pooled connection (0 OFF, 1 NORMAL, 2 FULL).
    async fn synchronous(db: &ActorDb) -> i64 {
        one(db, "PRAGMA synchronous").await
    }

    /// SQLite's automatic checkpoint interval on a pooled connection (0: none).
    async fn autocheckpoint(db: &ActorDb) -> i64 {
        one(db, "PRAGMA wal_autocheckpoint").await
    }

    /// Commits one row of the actor's KV store in a transaction of its own.
    async fn put(db: &ActorDb, key: &[u8]) {
        db.begin().await.unwrap();
        db.connection().execute("INSERT INTO _tern_kv VALUES (?1, x'00', 0)", [key]).await.unwrap();
        db.commit().await.unwrap();
    }

    #[tokio::test]
    async fn connections_get_the_nodes_durability_and_the_pool_stays_bounded() {
        let (dir, pool) = pool_in_a_temp_dir(2).await;
        // `--fsync` gives FULL (every commit fsynced); the default NORMAL.
        let full = pool.connection("a", &dir.path().join("a.db"), "FULL").await.unwrap();
        assert_eq!(synchronous(&full).await, 2);
        let normal = pool.connection("b", &dir.path().join("b.db"), "NORMAL").await.unwrap();
        // A new file's first transaction skips the new WAL's syncs, with no checkpoint; NORMAL and SQLite's
        // automatic checkpoint from its commit on.
        assert_eq!((synchronous(&normal).await, autocheckpoint(&normal).await), (0, 0));
        put(&normal, b"1").await;
        assert_eq!((synchronous(&normal).await, autocheckpoint(&normal).await), (1, 1000));
        // A file whose WAL holds frames (its node stopped without closing it) opens at NORMAL at once: copied
        // with its WAL while its connection is open, as a `kill -9` would leave it.
        for suffix in ["", "-wal"] {
            std::fs::copy(dir.path().join(format!("b.db{suffix}")), dir.path().join(format!("killed.db{suffix}")))
                .unwrap();
        }
        let killed = pool.connection("killed", &dir.path().join("killed.db"), "NORMAL").await.unwrap();
        assert_eq!(synchronous(&killed).await, 1);
        assert_eq!(one(&killed, "SELECT count(*) FROM _tern_kv").await, 1, "the WAL's commit is there");
        pool.close("killed");
        drop(killed);
        // A file closed cleanly (its checkpoint synced the file and removed the WAL) starts a WAL that holds
        // nothing else again: relaxed until its first commit, like a new file.
        pool.close("b");
        drop(normal);
        assert!(!dir.path().join("b.db-wal").exists(), "a clean close removes the WAL");
        let reopened = pool.connection("b", &dir.path().join("b.db"), "NORMAL").await.unwrap();
        assert_eq!(synchronous(&reopened).await, 0);
        put(&reopened, b"2").await;
        assert_eq!(synchronous(&reopened).await, 1);
        let mut rows = full.connection().query("PRAGMA locking_mode", ()).await.unwrap();
        let locking: String = rows.next().await.unwrap().unwrap().get(0).unwrap();
        assert_eq!(locking, "exclusive", "one connection owns each file, with no -shm");
        let mut rows = full.connection().query("PRAGMA cache_size", ()).await.unwrap();
        let cache: i64 = rows.next().await.unwrap().unwrap().get(0).unwrap();
        assert_eq!(cache, -i64::from(PAGE_CACHE_KIB), "each database's page cache is bounded");
        // A third database evicts the least recently used.
        pool.connection("c", &dir.path().join("c.db"), "NORMAL").await.unwrap();
        assert_eq!(pool.open_count(), 2);
    }

    #[tokio::test]
    async fn a_relaxed_connection_never_checkpoints_and_keeps_its_wal_when_closed() {
        let (dir, pool) = pool_in_a_temp_dir(4).await;
        let (path, wal) = (dir.path().join("a.db"), dir.path().join("a.db-wal"));
        // A write outside a turn's transaction (as after SQLite rolled a failed one back), then a close, before
        // any commit ended the relaxed start: no checkpoint moved the frame into the file unsynced, the WAL keeps
        // it, and the next open, at NORMAL at once, finds the row.
        let db = pool.connection("a", &path, "NORMAL").await.unwrap();
        db.connection().execute("INSERT INTO _tern_kv VALUES (x'01', x'00', 0)", ()).await.unwrap();
        pool.close("a");
        drop(db);
        assert!(std::fs::metadata(&wal).unwrap().len() > 0, "the WAL is kept, with its frame");
        let db = pool.connection("a", &path, "NORMAL").await.unwrap();
        assert_eq!((synchronous(&db).await, autocheckpoint(&db).await), (1, 1000));
        assert_eq!(one(&db, "SELECT count(*) FROM _tern_kv").await, 1);
    }

    /// Actor files go through a layer without SQLite's locks (`storage/vfs.rs`), which still never lets a file
    /// have two connections: a handle that outlives its pool entry (actor code keeping its `Sql` past its turn)
    /// makes the next open wait for it, then fail, until it closes. A replica's writer is refused the file too.
    #[tokio::test]
    async fn a_file_is_never_opened_twice_while_a_handle_to_it_lives() {
        let (dir, pool) = pool_in_a_temp_dir(4).await;
        let path = dir.path().join("a.db");
        let kept = pool.connection("a", &path, "NORMAL").await.unwrap();
        put(&kept, b"1").await;
        pool.close("a");
        let refused = pool.connection("a", &path, "NORMAL").await.err().expect("a second connection is refused");
        assert!(refused.to_string().contains(&ffi_busy()), "{refused}");
        // A hard link is the same file under another name.
        std::fs::hard_link(&path, dir.path().join("b.db")).unwrap();
        assert!(pool.connection("b", &dir.path().join("b.db"), "NORMAL").await.is_err());
        assert!(vfs::in_use(&dir.path().join("b.db")), "what a replica's writer asks before it opens a copy");
        drop(kept);
        assert!(!vfs::in_use(&path));
        let reopened = pool.connection("a", &path, "NORMAL").await.unwrap();
        assert_eq!(one(&reopened, "SELECT count(*) FROM _tern_kv").await, 1);
    }

    /// A connection whose files were renamed while it was open (a home's copy handed over as a replica, with a
    /// handle still alive) closes without a checkpoint: the WAL stays with the file it belongs to, and the file
    /// now at the WAL's old name is left alone.
    #[tokio::test]
    async fn a_connection_whose_file_moved_closes_without_a_checkpoint() {
        let (dir, pool) = pool_in_a_temp_dir(4).await;
        let (path, moved) = (dir.path().join("a.db"), dir.path().join("moved.db"));
        let db = pool.connection("a", &path, "NORMAL").await.unwrap();
        put(&db, b"1").await;
        put(&db, b"2").await;
        for suffix in ["", "-wal"] {
            std::fs::rename(format!("{}{suffix}", path.display()), format!("{}{suffix}", moved.display())).unwrap();
        }
        let newcomer = dir.path().join("a.db-wal");
        std::fs::write(&newcomer, b"another file's WAL").unwrap();
        pool.close("a");
        drop(db);
        assert_eq!(std::fs::read(&newcomer).unwrap(), b"another file's WAL");
        assert!(std::fs::metadata(dir.path().join("moved.db-wal")).unwrap().len() > 0, "no checkpoint on close");
        let db = pool.connection("moved", &moved, "NORMAL").await.unwrap();
        assert_eq!(one(&db, "SELECT count(*) FROM _tern_kv").await, 2);
    }

    /// How libSQL reports an open that SQLite refused as busy.
    fn ffi_busy() -> String {
        format!(": {}", libsql::ffi::SQLITE_BUSY)
    }

    #[tokio::test]
    async fn checkpoints_replication_took_over_stay_off_after_the_relaxed_start() {
        let (dir, pool) = pool_in_a_temp_dir(4).await;
        let db = pool.connection("a", &dir.path().join("a.db"), "NORMAL").await.unwrap();
        db.checkpoints_taken_over();
        put(&db, b"1").await;
        assert_eq!((synchronous(&db).await, autocheckpoint(&db).await), (1, 0));
    }
}
