//! A raw SQLite connection for the WAL-frame API, which libSQL's `Connection` does not expose.

use std::ffi::{CStr, CString, c_int, c_uint, c_void};
use std::path::Path;
use std::time::Duration;

use libsql::ffi;

use super::error::WalError;

/// `SQLITE_BUSY`: the WAL write lock is held by another connection.
const BUSY: c_int = 5;

/// One `sqlite3*` connection. An owned one is closed on drop; a borrowed one belongs to someone else (the home's
/// own connection) and is only used while its owner is not.
pub(crate) struct RawConnection {
    db: *mut ffi::sqlite3,
    owned: bool,
}

// SAFETY: SQLite is built serialized (libSQL configures `SQLITE_CONFIG_SERIALIZED`), so a connection may move
// between threads; every user of a `RawConnection` uses it from one thread at a time.
unsafe impl Send for RawConnection {}

impl Drop for RawConnection {
    fn drop(&mut self) {
        if self.owned {
            // SAFETY: the handle came from `sqlite3_open_v2` and is closed exactly once.
            unsafe { ffi::sqlite3_close_v2(self.db) };
        }
    }
}

impl RawConnection {
    /// Opens (creating it if asked) the database at `path` read-write.
    ///
    /// libSQL must have opened a database of its own in this process first: it configures SQLite on its first
    /// open and panics if anything initialised SQLite before.
    pub(crate) fn open(path: &Path, create: bool) -> Result<RawConnection, WalError> {
        let c_path = CString::new(path.as_os_str().as_encoded_bytes()).map_err(|_| WalError::Sqlite {
            call: "open",
            code: ffi::SQLITE_MISUSE,
            message: "path has a NUL".into(),
        })?;
        let mut flags = ffi::SQLITE_OPEN_READWRITE;
        if create {
            flags |= ffi::SQLITE_OPEN_CREATE;
        }
        let mut db = std::ptr::null_mut();
        // SAFETY: a valid C string and out-pointer; on failure SQLite may still return a handle to close.
        let rc = unsafe { ffi::sqlite3_open_v2(c_path.as_ptr(), &mut db, flags, std::ptr::null()) };
        let conn = RawConnection { db, owned: true };
        if rc != ffi::SQLITE_OK {
            return Err(conn.error("open", rc));
        }
        // SAFETY: an open handle.
        unsafe { ffi::sqlite3_busy_timeout(db, Duration::from_secs(5).as_millis() as c_int) };
        Ok(conn)
    }

    /// Uses a connection someone else owns.
    ///
    /// # Safety
    /// `db` must stay open for as long as the result lives, and nothing else may use it meanwhile.
    pub(crate) unsafe fn borrowed(db: *mut ffi::sqlite3) -> RawConnection {
        RawConnection { db, owned: false }
    }

    fn error(&self, call: &'static str, code: c_int) -> WalError {
        let message = if self.db.is_null() {
            "out of memory".to_string()
        } else {
            // SAFETY: an open handle; the message is copied before the next call.
            unsafe { CStr::from_ptr(ffi::sqlite3_errmsg(self.db)) }.to_string_lossy().into_owned()
        };
        WalError::Sqlite { call, code, message }
    }

    /// Runs SQL that returns no rows.
    pub(crate) fn exec(&self, sql: &str) -> Result<(), WalError> {
        let c_sql = CString::new(sql).expect("SQL without NUL");
        // SAFETY: an open handle and a valid C string; no callback.
        let rc =
            unsafe { ffi::sqlite3_exec(self.db, c_sql.as_ptr(), None, std::ptr::null_mut(), std::ptr::null_mut()) };
        if rc != ffi::SQLITE_OK {
            return Err(self.error("exec", rc));
        }
        Ok(())
    }

    /// The integer columns of the first row of `sql` (a PRAGMA or a count).
    pub(crate) fn row(&self, sql: &str) -> Result<Vec<i64>, WalError> {
        let c_sql = CString::new(sql).expect("SQL without NUL");
        let mut stmt = std::ptr::null_mut();
        // SAFETY: an open handle; the statement is finalized on every path below.
        unsafe {
            let rc = ffi::sqlite3_prepare_v2(self.db, c_sql.as_ptr(), -1, &mut stmt, std::ptr::null_mut());
            if rc != ffi::SQLITE_OK {
                return Err(self.error("prepare", rc));
            }
            let rc = ffi::sqlite3_step(stmt);
            let result = if rc == ffi::SQLITE_ROW {
                let columns = ffi::sqlite3_column_count(stmt);
                Ok((0..columns).map(|i| ffi::sqlite3_column_int64(stmt, i)).collect())
            } else if rc == ffi::SQLITE_DONE {
                Ok(Vec::new())
            } else {
                Err(self.error("step", rc))
            };
            ffi::sqlite3_finalize(stmt);
            result
        }
    }

    /// The last committed frame of the WAL as this connection sees it; waits while another writer holds the lock.
    pub(crate) fn frame_count(&self) -> Result<u32, WalError> {
        let mut frames: c_uint = 0;
        for _ in 0..1000 {
            // SAFETY: an open handle and an out-pointer.
            let rc = unsafe { ffi::libsql_wal_frame_count(self.db, &mut frames) };
            match rc {
                ffi::SQLITE_OK => return Ok(frames),
                BUSY => std::thread::sleep(Duration::from_millis(5)),
                rc => return Err(self.error("wal_frame_count", rc)),
            }
        }
        Err(self.error("wal_frame_count", BUSY))
    }

    /// Starts a WAL write session (a read snapshot and the write lock).
    pub(crate) fn insert_begin(&self) -> Result<(), WalError> {
        // SAFETY: an open handle.
        let rc = unsafe { ffi::libsql_wal_insert_begin(self.db) };
        if rc != ffi::SQLITE_OK {
            return Err(self.error("wal_insert_begin", rc));
        }
        Ok(())
    }

    /// Writes frame `frame_no`; an existing frame with that number is compared instead (`conflict` if it differs).
    pub(crate) fn insert_frame(&self, frame_no: u32, frame: &[u8]) -> Result<(), WalError> {
        let mut conflict: c_int = 0;
        // SAFETY: an open handle in a write session; SQLite only reads `frame`.
        let rc = unsafe {
            ffi::libsql_wal_insert_frame(
                self.db,
                frame_no,
                frame.as_ptr() as *mut c_void,
                frame.len() as c_uint,
                &mut conflict,
            )
        };
        if conflict != 0 {
            return Err(WalError::Conflict { frame: frame_no });
        }
        if rc != ffi::SQLITE_OK {
            return Err(self.error("wal_insert_frame", rc));
        }
        Ok(())
    }

    /// Ends the write session; the same and other connections see the inserted transactions.
    pub(crate) fn insert_end(&self) -> Result<(), WalError> {
        // SAFETY: an open handle.
        let rc = unsafe { ffi::libsql_wal_insert_end(self.db) };
        if rc != ffi::SQLITE_OK {
            return Err(self.error("wal_insert_end", rc));
        }
        Ok(())
    }

    /// Turns off automatic checkpoints and the checkpoint on close: only explicit checkpoints move the WAL into
    /// the database file.
    pub(crate) fn disable_checkpoints(&self) -> Result<(), WalError> {
        // SAFETY: an open handle.
        let rc = unsafe { ffi::libsql_wal_disable_checkpoint(self.db) };
        if rc != ffi::SQLITE_OK {
            return Err(self.error("wal_disable_checkpoint", rc));
        }
        Ok(())
    }

    /// Moves every WAL frame into the database file and empties the WAL; fails with [`WalError::Busy`] if a reader
    /// kept it from completing.
    pub(crate) fn checkpoint_truncate(&self) -> Result<(), WalError> {
        match self.row("PRAGMA wal_checkpoint(TRUNCATE)")?.as_slice() {
            [0, 0, 0] => Ok(()),
            _ => Err(WalError::Busy),
        }
    }
}
