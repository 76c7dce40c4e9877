//! WAL-frame replication between real libSQL database files: equality after every kind of change, resending,
//! gaps, corruption on the wire, restarts, catching up, generation changes and snapshots.

use std::ffi::{CStr, CString, c_int};
use std::path::{Path, PathBuf};
use std::sync::Once;

use bytes::Bytes;
use libsql::ffi;
use tern_replication::wal::{
    Batch, Position, Replica, Snapshot, SnapshotReceiver, Source, WalError, WalFile, WalState,
};

/// libSQL configures SQLite on its first open; raw connections may only come after (the crate's documented rule).
fn init_libsql() {
    static INIT: Once = Once::new();
    INIT.call_once(|| {
        let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
        let db = rt.block_on(libsql::Builder::new_local(":memory:").build()).unwrap();
        drop(db.connect().unwrap());
    });
}

/// A raw connection the test drives with SQL.
struct Db(*mut ffi::sqlite3);

// SAFETY: serialized SQLite; the tests use each connection from one thread.
unsafe impl Send for Db {}

impl Drop for Db {
    fn drop(&mut self) {
        unsafe { ffi::sqlite3_close_v2(self.0) };
    }
}

impl Db {
    fn open(path: &Path, flags: c_int) -> Db {
        init_libsql();
        let c_path = CString::new(path.to_str().unwrap()).unwrap();
        let mut db = std::ptr::null_mut();
        let rc = unsafe { ffi::sqlite3_open_v2(c_path.as_ptr(), &mut db, flags, std::ptr::null()) };
        assert_eq!(rc, 0, "open {}", path.display());
        Db(db)
    }

    /// A home as the node opens one: exclusive locking, WAL.
    fn home(path: &Path) -> Db {
        let db = Db::open(path, ffi::SQLITE_OPEN_READWRITE | ffi::SQLITE_OPEN_CREATE);
        db.exec("PRAGMA locking_mode=EXCLUSIVE; PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;");
        db
    }

    fn reader(path: &Path) -> Db {
        Db::open(path, ffi::SQLITE_OPEN_READONLY)
    }

    fn exec(&self, sql: &str) {
        let c_sql = CString::new(sql).unwrap();
        let rc = unsafe { ffi::sqlite3_exec(self.0, c_sql.as_ptr(), None, std::ptr::null_mut(), std::ptr::null_mut()) };
        assert_eq!(rc, 0, "{sql}: {}", self.errmsg());
    }

    fn errmsg(&self) -> String {
        unsafe { CStr::from_ptr(ffi::sqlite3_errmsg(self.0)) }.to_string_lossy().into_owned()
    }

    /// Every row of `sql`, each value rendered with its type.
    fn rows(&self, sql: &str) -> Vec<Vec<String>> {
        let c_sql = CString::new(sql).unwrap();
        let mut stmt = std::ptr::null_mut();
        let mut out = Vec::new();
        unsafe {
            assert_eq!(
                ffi::sqlite3_prepare_v2(self.0, c_sql.as_ptr(), -1, &mut stmt, std::ptr::null_mut()),
                0,
                "{sql}: {}",
                self.errmsg()
            );
            loop {
                match ffi::sqlite3_step(stmt) {
                    ffi::SQLITE_ROW => {
                        let n = ffi::sqlite3_column_count(stmt);
                        let row = (0..n)
                            .map(|i| {
                                let len = ffi::sqlite3_column_bytes(stmt, i) as usize;
                                let ptr = ffi::sqlite3_column_blob(stmt, i) as *const u8;
                                let bytes = if ptr.is_null() { &[][..] } else { std::slice::from_raw_parts(ptr, len) };
                                let kind = ffi::sqlite3_column_type(stmt, i);
                                if len > 64 {
                                    format!("{kind}:{len}:{:08x}", crc32(bytes))
                                } else {
                                    format!("{kind}:{}", String::from_utf8_lossy(bytes))
                                }
                            })
                            .collect();
                        out.push(row);
                    }
                    ffi::SQLITE_DONE => break,
                    rc => panic!("{sql}: step {rc}: {}", self.errmsg()),
                }
            }
            ffi::sqlite3_finalize(stmt);
        }
        out
    }

    fn count(&self, sql: &str) -> i64 {
        self.rows(sql)[0][0].split_once(':').unwrap().1.parse().unwrap()
    }

    /// A canonical dump: the schema (internal objects included) and every row of every table.
    fn dump(&self) -> Vec<String> {
        let mut out = Vec::new();
        let schema = self.rows("SELECT type, name, tbl_name, sql FROM sqlite_schema ORDER BY type, name");
        for object in &schema {
            out.push(object.join("|"));
        }
        for object in schema.iter().filter(|o| o[0] == "3:table") {
            let name = object[1].split_once(':').unwrap().1;
            for row in self.rows(&format!("SELECT * FROM \"{name}\" ORDER BY 1")) {
                out.push(format!("{name}: {}", row.join("|")));
            }
        }
        out
    }
}

fn crc32(bytes: &[u8]) -> u32 {
    let mut h = 0u32;
    for chunk in bytes.chunks(4096) {
        h = h.rotate_left(5) ^ chunk.iter().fold(0u32, |a, b| a.wrapping_mul(31).wrapping_add(*b as u32));
    }
    h
}

/// The committed transactions after `after` in the home's WAL file, as the home's shipper reads them.
fn read(source: &Source, db_path: &Path, after: Position, max_bytes: usize) -> Option<Batch> {
    WalFile::of(db_path).read_after(after, source.position().unwrap(), source.state().previous_end, max_bytes).unwrap()
}

/// Ends the home's generation as the node does: the next state first, then the checkpoint.
fn end_generation(source: &mut Source) -> Option<WalState> {
    let next = source.next_generation().unwrap()?;
    source.checkpoint(next).unwrap();
    Some(next)
}

/// A home database and one replica of it, with the replica's recorded state kept like a node keeps it.
struct Pair {
    dir: tempfile::TempDir,
    home: Db,
    source: Source,
    replica: Replica,
    recorded: WalState,
}

impl Pair {
    fn new() -> Pair {
        let dir = tempfile::tempdir().unwrap();
        let home = Db::home(&dir.path().join("home.db"));
        home.exec("CREATE TABLE seed(x)");
        let mut source = unsafe { Source::new(home.0, WalState::default()) }.unwrap();
        // Start the stream as the node does for a new replica: a generation boundary, then a snapshot.
        end_generation(&mut source).unwrap();
        let replica_path = dir.path().join("replica.db");
        let recorded = copy_snapshot(&dir.path().join("home.db"), &replica_path, source.state(), 1 << 20);
        let replica = Replica::open(&replica_path, recorded).unwrap();
        Pair { dir, home, source, replica, recorded }
    }

    fn home_path(&self) -> PathBuf {
        self.dir.path().join("home.db")
    }

    fn replica_path(&self) -> PathBuf {
        self.dir.path().join("replica.db")
    }

    /// Ships everything the replica lacks, in batches of about `max_bytes`; returns how many batches.
    fn ship(&mut self, max_bytes: usize) -> usize {
        let mut batches = 0;
        while let Some(batch) = read(&self.source, &self.home_path(), self.replica.position(), max_bytes) {
            let wire = Batch::decode(batch.encode()).unwrap();
            self.recorded = self.replica.apply(&wire).unwrap();
            batches += 1;
        }
        batches
    }

    fn assert_equal(&self) {
        let reader = Db::reader(&self.replica_path());
        let (home, replica) = (self.home.dump(), reader.dump());
        assert_eq!(home.len(), replica.len(), "row counts differ");
        assert_eq!(home, replica);
        assert_eq!(reader.rows("PRAGMA integrity_check")[0][0], "3:ok");
    }
}

/// Copies the home's file as a snapshot, in chunks, and installs it.
fn copy_snapshot(home: &Path, target: &Path, state: WalState, chunk: usize) -> WalState {
    let snapshot = Snapshot::describe(home, state).unwrap();
    let mut receiver = SnapshotReceiver::start(target, snapshot).unwrap();
    while !receiver.is_complete() {
        let bytes = Snapshot::read_chunk(home, receiver.received(), chunk).unwrap();
        receiver.write(receiver.received(), &bytes).unwrap();
    }
    receiver.finish().unwrap()
}

#[test]
fn every_kind_of_change_replicates_identically() {
    let mut pair = Pair::new();
    pair.home.exec(
        "CREATE TABLE users(id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT NOT NULL, bio TEXT);
         CREATE INDEX users_name ON users(name);
         CREATE TABLE blobs(k TEXT PRIMARY KEY, v BLOB) WITHOUT ROWID;",
    );
    for i in 0..2000 {
        if i % 100 == 0 {
            pair.home.exec("BEGIN");
        }
        pair.home.exec(&format!("INSERT INTO users(name, bio) VALUES ('user-{i}', printf('%.*c', {}, 'x'))", i % 700));
        if i % 100 == 99 {
            pair.home.exec("COMMIT");
        }
    }
    assert!(pair.ship(256 << 10) > 1, "a large stream goes in several batches");
    pair.assert_equal();

    // Schema changes, an index, a view and a trigger, deletes, and a 10 MB blob in one transaction.
    pair.home.exec(
        "ALTER TABLE users ADD COLUMN karma INTEGER DEFAULT 0;
         CREATE INDEX users_karma ON users(karma);
         CREATE VIEW named AS SELECT name FROM users WHERE name LIKE 'user-1%';
         CREATE TRIGGER bump AFTER UPDATE ON users BEGIN UPDATE users SET karma = karma + 1 WHERE id = NEW.id AND NEW.karma = OLD.karma; END;
         UPDATE users SET bio = 'changed' WHERE id % 3 = 0;
         DELETE FROM users WHERE id % 7 = 0;
         INSERT INTO blobs VALUES ('big', randomblob(10 * 1024 * 1024));
         ANALYZE;",
    );
    pair.ship(1 << 20);
    pair.assert_equal();

    // A VACUUM rewrites every page.
    pair.home.exec("DELETE FROM users WHERE id % 2 = 0; VACUUM;");
    pair.ship(1 << 20);
    pair.assert_equal();

    // A generation change mid-stream: the home checkpoints once the replica has everything, then goes on.
    let before = pair.replica.position();
    assert_eq!(before, pair.source.position().unwrap());
    let next = end_generation(&mut pair.source).expect("the WAL had frames");
    assert_eq!(next.previous_end, before);
    pair.home.exec("INSERT INTO users(name) VALUES ('after-checkpoint'); DROP INDEX users_karma;");
    pair.ship(1 << 20);
    assert_eq!(pair.replica.position().generation, before.generation + 1);
    assert_eq!(pair.recorded.previous_end, before, "the replica records where the old generation ended");
    pair.assert_equal();
}

#[test]
fn resent_batches_are_harmless_and_gaps_refused() {
    let mut pair = Pair::new();
    pair.home.exec("CREATE TABLE t(x); INSERT INTO t VALUES (1);");
    let start = pair.replica.position();
    let first = read(&pair.source, &pair.home_path(), start, 1 << 20).unwrap();
    pair.home.exec("INSERT INTO t VALUES (2);");
    let both = read(&pair.source, &pair.home_path(), start, 1 << 20).unwrap();
    let second = read(&pair.source, &pair.home_path(), first.end(), 1 << 20).unwrap();

    // The second transaction alone does not follow the replica: a gap, nothing applied.
    match pair.replica.apply(&second) {
        Err(WalError::Gap { batch, replica }) => assert_eq!((batch, replica), (first.end(), start)),
        other => panic!("expected a gap, got {other:?}"),
    }
    pair.replica.apply(&first).unwrap();
    pair.replica.apply(&first).unwrap();
    // Overlapping: the first transaction is compared, the second appended.
    pair.replica.apply(&both).unwrap();
    pair.replica.apply(&second).unwrap();
    assert_eq!(pair.replica.position(), both.end());
    pair.assert_equal();
}

#[test]
fn corrupt_and_truncated_batches_are_refused_whole() {
    let mut pair = Pair::new();
    pair.home.exec("CREATE TABLE t(x); INSERT INTO t VALUES (randomblob(20000));");
    let batch = read(&pair.source, &pair.home_path(), pair.replica.position(), 1 << 20).unwrap();
    let wire = batch.encode();
    let mut flipped = wire.to_vec();
    flipped[wire.len() / 2] ^= 0x40;
    let mut header = wire.to_vec();
    header[10] ^= 1;
    for (what, bad) in [
        ("a flipped bit in a page", Bytes::from(flipped)),
        ("a flipped bit in the header", Bytes::from(header)),
        ("a truncated batch", wire.slice(..wire.len() - 100)),
        ("a batch cut before a commit", wire.slice(..wire.len() - (24 + 4096 + 4))),
        ("nothing", Bytes::new()),
    ] {
        match Batch::decode(bad) {
            Err(WalError::Corrupt(message)) => println!("{what}: {message}"),
            other => panic!("{what}: expected Corrupt, got {other:?}"),
        }
    }
    // A batch whose last frame does not commit is refused by the replica too, not only by the decoder.
    let mut torn = batch.clone();
    torn.frames.pop();
    if !torn.frames.is_empty() {
        assert!(matches!(pair.replica.apply(&torn), Err(WalError::Corrupt(_))));
    }
    assert_eq!(pair.replica.position(), batch.after, "nothing was applied");
    pair.replica.apply(&Batch::decode(wire).unwrap()).unwrap();
    pair.assert_equal();
}

#[test]
fn a_restarted_replica_resumes_from_its_recorded_position() {
    let mut pair = Pair::new();
    pair.home.exec("CREATE TABLE t(x); INSERT INTO t VALUES (1), (2);");
    pair.ship(1 << 20);
    let recorded = pair.recorded;
    assert_eq!(recorded.position(), pair.replica.position());
    // The replica's process goes away; its file and WAL stay.
    let path = pair.replica_path();
    pair.replica = Replica::open(&path, WalState { frame: 0, ..recorded }).unwrap();
    assert_eq!(pair.replica.position(), recorded.position(), "the WAL's frames are the truth");
    pair.home.exec("INSERT INTO t VALUES (3);");
    pair.ship(1 << 20);
    pair.assert_equal();

    // Restarted across a generation change: the WAL is empty, the recorded position stands.
    end_generation(&mut pair.source).unwrap();
    pair.home.exec("INSERT INTO t VALUES (4);");
    pair.ship(1 << 20);
    let recorded = pair.recorded;
    pair.replica.checkpoint().unwrap();
    pair.replica = Replica::open(&path, recorded).unwrap();
    assert_eq!(pair.replica.position(), recorded.position());
    pair.home.exec("INSERT INTO t VALUES (5);");
    pair.ship(1 << 20);
    pair.assert_equal();
}

#[test]
fn a_replica_at_the_previous_end_advances_to_a_generation_without_frames() {
    let mut pair = Pair::new();
    pair.home.exec("CREATE TABLE t(x); INSERT INTO t VALUES (1), (2);");
    pair.ship(1 << 20);
    let next = end_generation(&mut pair.source).unwrap();
    assert_eq!(next.frame, 0);
    assert!(read(&pair.source, &pair.home_path(), pair.replica.position(), 1 << 20).is_none(), "no frame to ship");
    // Only from exactly where the previous generation ended.
    let elsewhere = WalState { previous_end: Position::new(next.previous_end.generation, 1), ..next };
    assert!(matches!(pair.replica.advance(elsewhere), Err(WalError::Gap { .. })));
    assert_eq!(pair.replica.advance(next).unwrap(), next);
    assert_eq!(pair.replica.position(), next.position());
    pair.assert_equal();
    // Frames of the new generation follow as usual.
    pair.home.exec("INSERT INTO t VALUES (3);");
    pair.ship(1 << 20);
    pair.assert_equal();
}

#[test]
fn a_replica_down_for_ten_thousand_transactions_catches_up() {
    let mut pair = Pair::new();
    pair.home.exec("CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT);");
    pair.ship(1 << 20);
    for i in 0..10_000 {
        pair.home.exec(&format!("INSERT INTO t(v) VALUES ('value-{i}')"));
    }
    let batches = pair.ship(4 << 20);
    println!("caught up on 10,000 transactions in {batches} batches");
    assert_eq!(Db::reader(&pair.replica_path()).count("SELECT count(*) FROM t"), 10_000);
    pair.assert_equal();
}

#[test]
fn frames_from_another_history_conflict() {
    let mut pair = Pair::new();
    // A second home starting from the same file (what an async failover can leave behind): same start, different
    // last transaction.
    let other_path = pair.dir.path().join("other.db");
    std::fs::copy(pair.replica_path(), &other_path).unwrap();
    pair.home.exec("CREATE TABLE t(x); INSERT INTO t VALUES ('home');");
    pair.ship(1 << 20);
    let at = pair.replica.position();
    let other = Db::home(&other_path);
    other.exec("CREATE TABLE t(x); INSERT INTO t VALUES ('other');");
    let other_source = unsafe { Source::new(other.0, pair.source.state()) }.unwrap();
    let theirs = read(&other_source, &other_path, pair.source.state().position(), 1 << 20).unwrap();
    match pair.replica.apply(&theirs) {
        Err(WalError::Conflict { frame }) => assert!(frame >= 1 && frame <= at.frame),
        other => panic!("expected a conflict, got {other:?}"),
    }
    assert_eq!(pair.replica.position(), at);
    pair.assert_equal();
}

#[test]
fn a_generation_change_waits_for_replica_readers() {
    let mut pair = Pair::new();
    pair.home.exec("CREATE TABLE t(x); INSERT INTO t VALUES (1);");
    pair.ship(1 << 20);
    end_generation(&mut pair.source).unwrap();
    pair.home.exec("INSERT INTO t VALUES (2);");
    let batch = read(&pair.source, &pair.home_path(), pair.replica.position(), 1 << 20).unwrap();
    let reader = Db::reader(&pair.replica_path());
    reader.exec("BEGIN; SELECT count(*) FROM t;");
    assert!(matches!(pair.replica.apply(&batch), Err(WalError::Busy)));
    reader.exec("COMMIT");
    drop(reader);
    pair.replica.apply(&batch).unwrap();
    pair.assert_equal();
}

#[test]
fn a_snapshot_of_100_mb_resumes_and_is_checked() {
    let dir = tempfile::tempdir().unwrap();
    let home_path = dir.path().join("home.db");
    let home = Db::home(&home_path);
    home.exec("CREATE TABLE t(id INTEGER PRIMARY KEY, v BLOB); BEGIN;");
    for _ in 0..100 {
        home.exec("INSERT INTO t(v) VALUES (randomblob(1024 * 1024))");
    }
    home.exec("COMMIT");
    let mut source = unsafe { Source::new(home.0, WalState::default()) }.unwrap();
    let state = end_generation(&mut source).unwrap();
    home.exec("INSERT INTO t(v) VALUES (x'01')");

    let target = dir.path().join("replica.db");
    let started = std::time::Instant::now();
    let snapshot = Snapshot::describe(&home_path, state).unwrap();
    assert!(snapshot.size >= 100 << 20);
    // The first attempt stops half way (the connection broke); the second resumes from the bytes on disk.
    let mut first = SnapshotReceiver::start(&target, snapshot).unwrap();
    while first.received() < snapshot.size / 2 {
        let chunk = Snapshot::read_chunk(&home_path, first.received(), 4 << 20).unwrap();
        first.write(first.received(), &chunk).unwrap();
    }
    let stopped_at = first.received();
    drop(first);
    let mut second = SnapshotReceiver::start(&target, snapshot).unwrap();
    assert_eq!(second.received(), stopped_at, "the copy resumes");
    // A chunk for the wrong offset is refused.
    assert!(matches!(second.write(0, b"x"), Err(WalError::Corrupt(_))));
    while !second.is_complete() {
        let chunk = Snapshot::read_chunk(&home_path, second.received(), 4 << 20).unwrap();
        second.write(second.received(), &chunk).unwrap();
    }
    let recorded = second.finish().unwrap();
    let elapsed = started.elapsed();
    println!(
        "bootstrap of {} MB: {:.0} MB/s",
        snapshot.size >> 20,
        snapshot.size as f64 / (1 << 20) as f64 / elapsed.as_secs_f64()
    );
    let mut replica = Replica::open(&target, recorded).unwrap();
    while let Some(batch) = read(&source, &home_path, replica.position(), 1 << 20) {
        replica.apply(&batch).unwrap();
    }
    let reader = Db::reader(&target);
    assert_eq!(reader.count("SELECT count(*) FROM t"), 101);
    assert_eq!(home.dump(), reader.dump());

    // A corrupted copy is refused and deleted.
    let bad_target = dir.path().join("bad.db");
    let mut bad = SnapshotReceiver::start(&bad_target, snapshot).unwrap();
    while !bad.is_complete() {
        let mut chunk = Snapshot::read_chunk(&home_path, bad.received(), 4 << 20).unwrap().to_vec();
        if bad.received() == 0 {
            chunk[5000] ^= 1;
        }
        bad.write(bad.received(), &chunk).unwrap();
    }
    assert!(matches!(bad.finish(), Err(WalError::Corrupt(_))));
    assert!(!bad_target.exists());
}
