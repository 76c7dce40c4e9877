//! A new actor's database file, made once per process and copied for every actor created.
//!
//! A database file SQLite creates itself starts in rollback-journal mode: switching it to WAL and creating the
//! internal tables costs a journal file, its deletion and several `fsync`s before the actor's first commit. The
//! template is a database already in WAL mode (the mode is recorded in the file's header) holding the internal
//! tables at [`ACTOR_SCHEMA_VERSION`]. A new actor's file is a copy of its bytes, so the actor's first transaction
//! writes only its own rows, into the WAL.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::actor_db::create_internal_tables;
use super::sandbox;

/// The page size of new actor databases, in bytes. Every table and index of an empty database takes one page,
/// and the internal ones are 16: at SQLite's default of 4 KiB an empty actor's file is 68 KiB, at 1 KiB 17 KiB.
/// That is a quarter of the disk a sleeping actor costs, of the bytes a new actor's file syncs, and of the WAL
/// frames a small write commits and ships to replicas (`ops/BENCHMARKS.md`, "Page size").
pub const PAGE_SIZE: usize = 1024;

/// The bytes of an empty actor database at the current internal schema, in WAL mode, fully checkpointed.
#[derive(Clone)]
pub struct ActorTemplate {
    bytes: Arc<[u8]>,
    /// Where copies are written before they are linked into place: the data directory's `tmp/`, which the node
    /// empties when it opens the directory, so that a copy a crash interrupted does not stay behind.
    scratch_dir: PathBuf,
}

impl ActorTemplate {
    /// Builds the template in `scratch` (its files, left over from an interrupted build or not, are removed before
    /// and after), through the same opening path as every actor database. New copies are written in `scratch`'s
    /// directory before they are linked into place (it must be on the same file system as the actors' files).
    pub async fn build(scratch: &Path) -> Result<ActorTemplate, TemplateError> {
        remove_files(scratch);
        let built = Self::build_file(scratch).await.map_err(TemplateError::Sqlite);
        let bytes = built.and_then(|()| std::fs::read(scratch).map_err(TemplateError::Io));
        remove_files(scratch);
        let scratch_dir = scratch.parent().map_or_else(PathBuf::new, Path::to_path_buf);
        Ok(ActorTemplate { bytes: bytes?.into(), scratch_dir })
    }

    async fn build_file(scratch: &Path) -> Result<(), libsql::Error> {
        let (db, conn, _sandbox) = sandbox::open(scratch).await?;
        // Before the file has a page: the size is fixed from its first page on.
        conn.execute(&format!("PRAGMA page_size={PAGE_SIZE}"), ()).await?;
        conn.query("PRAGMA journal_mode=WAL", ()).await?;
        create_internal_tables(&conn).await?;
        // Everything into the file itself, and the WAL gone: the copy is complete without it.
        conn.query("PRAGMA wal_checkpoint(TRUNCATE)", ()).await?;
        drop(conn);
        drop(db);
        Ok(())
    }

    /// Creates the database file of a new actor at `path` as a copy of the template, unless a file is already
    /// there (then it is left as it is).
    ///
    /// The copy is written to a temporary file in the scratch directory, synced, and linked in place, so that
    /// `path` never names a partial copy, whatever stops the node or the machine: SQLite writes the actor's first transaction to
    /// the WAL on the strength of this file. With `durable`, the directory is synced too, as a
    /// `synchronous=FULL` commit would need.
    pub fn create(&self, path: &Path, durable: bool) -> std::io::Result<()> {
        if path.exists() {
            return Ok(());
        }
        let partial = self.scratch_dir.join(format!("new-actor-{:016x}.db", rand::random::<u64>()));
        let written = std::fs::File::create(&partial).and_then(|mut file| {
            file.write_all(&self.bytes)?;
            file.sync_data()
        });
        let linked = written.and_then(|()| std::fs::hard_link(&partial, path));
        let _ = std::fs::remove_file(&partial);
        match linked {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => return Ok(()),
            Err(e) => return Err(e),
        }
        if durable && let Some(dir) = path.parent() {
            std::fs::File::open(dir)?.sync_all()?;
        }
        Ok(())
    }
}

fn remove_files(db: &Path) {
    for suffix in ["", "-wal", "-shm", "-journal"] {
        let mut path = db.as_os_str().to_owned();
        path.push(suffix);
        let _ = std::fs::remove_file(path);
    }
}

/// Why the template could not be built.
#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    #[error("{0}")]
    Sqlite(libsql::Error),
    #[error("reading the template: {0}")]
    Io(std::io::Error),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_copy_is_a_wal_database_with_the_internal_tables_and_an_existing_file_is_kept() {
        let dir = tempfile::tempdir().unwrap();
        let template = ActorTemplate::build(&dir.path().join("template.db")).await.unwrap();
        assert!(!dir.path().join("template.db").exists(), "the scratch file is removed");
        assert_eq!(&template.bytes[18..20], &[2, 2], "the header records WAL mode");

        let path = dir.path().join("a.db");
        template.create(&path, true).unwrap();
        let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(left, ["a.db"], "the temporary copy is gone");
        std::fs::write(dir.path().join("b.db"), b"not a copy").unwrap();
        template.create(&dir.path().join("b.db"), false).unwrap();
        assert_eq!(
            std::fs::read(dir.path().join("b.db")).unwrap(),
            b"not a copy",
            "an existing file is never replaced"
        );

        let (_db, conn, _sandbox) = sandbox::open(&path).await.unwrap();
        let mut rows = conn.query("PRAGMA journal_mode", ()).await.unwrap();
        assert_eq!(rows.next().await.unwrap().unwrap().get::<String>(0).unwrap(), "wal");
        let mut rows = conn.query("SELECT value FROM _tern_meta WHERE key = 'schema_version'", ()).await.unwrap();
        let version = rows.next().await.unwrap().unwrap().get::<i64>(0).unwrap();
        assert_eq!(version, crate::storage::actor_db::ACTOR_SCHEMA_VERSION);
        for table in ["_tern_state", "_tern_kv", "_tern_conns", "_tern_traces"] {
            conn.query(&format!("SELECT count(*) FROM {table}"), ()).await.unwrap();
        }
    }
}
