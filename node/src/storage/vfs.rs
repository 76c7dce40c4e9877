//! The file layer that actor databases are opened through: one connection per file, without SQLite's
//! process-wide list of open files.
//!
//! SQLite's default `unix` layer keeps a record per open inode (POSIX locks do not conflict within one process,
//! so SQLite tracks its connections' locks itself), in a list it walks under a global mutex twice on every
//! database open (`findReusableFd`, `findInodeInfo`). With the pool's 4,096 handles the list holds about 8,000
//! entries, and the walks took a third of a creation's CPU. Actor databases go through `unix-none` instead,
//! which takes no locks and keeps no records; the pool's exclusive locking mode already keeps each WAL index in
//! the connection's heap, so no lock is needed between a connection's own transactions. (`unixOpen` still walks
//! the list, now only of the files opened through the default layer: `node.db` and replica copies.)
//!
//! What the lock records did give is kept here:
//! - a database file has at most one connection in this process: a second open of a file that still has one
//!   (an `Sql` handle that actor code kept past its turn, when the pool reopens the actor) is refused with
//!   `SQLITE_BUSY`; without the check it would read a stale WAL index and could corrupt the file. The layer
//!   records each open database file's device and inode, from its open to its close, and [`in_use`] tells
//!   the pool to wait, as SQLite's busy timeout made a second connection wait for the first one's lock;
//! - a connection whose file was renamed or removed while it was open sees it has moved
//!   (`SQLITE_FCNTL_HAS_MOVED`), so its close neither checkpoints into the moved file nor deletes the WAL now
//!   at its old name.
//!
//! Other processes are not locked out any more: nothing but the node opens an actor's file while the node runs
//! (a second node is refused the data directory, and the `tern` commands go through the node's API).

use std::collections::HashSet;
use std::ffi::{CStr, OsStr, c_int};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::{Mutex, OnceLock};

use libsql::ffi;

use crate::sync::lock;

/// The layer's name, as a connection's URI asks for it (`?vfs=`).
const NAME: &CStr = c"tern-actor";

/// The layer it wraps.
const INNER: &CStr = c"unix-none";

/// The URI that opens the database at `path` through this layer, registering the layer on first use (after
/// libSQL has initialised SQLite, which building the actor template did).
pub fn uri(path: &Path) -> Result<String, libsql::Error> {
    layer()?;
    Ok(uri_of(path))
}

/// `file:` and `path` percent-encoded (a `?`, `#` or `%` in it must not be read as the URI's own), then the
/// layer's name.
fn uri_of(path: &Path) -> String {
    let mut uri = String::from("file:");
    for &byte in path.as_os_str().as_bytes() {
        if byte.is_ascii_alphanumeric() || b"/-._~".contains(&byte) {
            uri.push(char::from(byte));
        } else {
            uri.push_str(&format!("%{byte:02X}"));
        }
    }
    uri.push_str("?vfs=");
    uri.push_str(NAME.to_str().expect("an ASCII name"));
    uri
}

/// Whether the file at `path` has a connection through this layer now (false if it does not exist).
pub fn in_use(path: &Path) -> bool {
    let Ok(layer) = layer() else { return false };
    std::fs::metadata(path).is_ok_and(|meta| lock(&layer.open).contains(&(meta.dev(), meta.ino())))
}

/// The registered layer: what it wraps and which files are open.
struct Layer {
    /// `unix-none`, registered by SQLite itself for the whole process.
    inner: *mut ffi::sqlite3_vfs,
    /// Where this layer's part of a file object starts, after the inner layer's.
    trailer_at: usize,
    /// The inner layer's methods for its files, and the copy this layer gives them (its own `xClose`).
    methods: OnceLock<Methods>,
    /// (device, inode) of every database file open through this layer.
    open: Mutex<HashSet<(u64, u64)>>,
}

// SAFETY: `inner` points to a VFS object that SQLite keeps for the whole process and whose methods are safe to call
// from any thread (SQLite's own contract for a VFS); the rest is plain data behind a mutex or a `OnceLock`.
unsafe impl Send for Layer {}
// SAFETY: as above.
unsafe impl Sync for Layer {}

/// The inner layer's methods, and this layer's copy of them.
struct Methods {
    inner: *const ffi::sqlite3_io_methods,
    wrapped: ffi::sqlite3_io_methods,
}

// SAFETY: both are tables of function pointers that live for the whole process (`inner` is a static of SQLite's).
unsafe impl Send for Methods {}
// SAFETY: as above.
unsafe impl Sync for Methods {}

/// This layer's part of each file object, for a database file: the key it is registered under, and its name
/// (which SQLite keeps valid until the file closes).
#[repr(C)]
struct Trailer {
    key: Option<(u64, u64)>,
    name: ffi::sqlite3_filename,
}

fn layer() -> Result<&'static Layer, libsql::Error> {
    static LAYER: OnceLock<Result<Layer, c_int>> = OnceLock::new();
    LAYER
        .get_or_init(register)
        .as_ref()
        .map_err(|rc| libsql::Error::SqliteFailure(*rc, "registering the actor VFS".into()))
}

/// Registers this layer with SQLite, as a copy of `unix-none` whose files carry a [`Trailer`] and whose opens go
/// through [`open`].
fn register() -> Result<Layer, c_int> {
    // SAFETY: SQLite is initialised (see `uri`); the name is a valid C string.
    let inner = unsafe { ffi::sqlite3_vfs_find(INNER.as_ptr()) };
    if inner.is_null() {
        return Err(ffi::SQLITE_ERROR);
    }
    // SAFETY: `inner` is a valid VFS object for the whole process.
    let mut vfs = unsafe { *inner };
    let inner_size = usize::try_from(vfs.szOsFile).map_err(|_| ffi::SQLITE_ERROR)?;
    let trailer_at = inner_size.next_multiple_of(std::mem::align_of::<Trailer>());
    vfs.szOsFile = c_int::try_from(trailer_at + std::mem::size_of::<Trailer>()).map_err(|_| ffi::SQLITE_ERROR)?;
    vfs.zName = NAME.as_ptr();
    vfs.pNext = std::ptr::null_mut();
    vfs.xOpen = Some(open);
    let layer = Layer { inner, trailer_at, methods: OnceLock::new(), open: Mutex::default() };
    // SAFETY: the VFS object is leaked, so it lives as long as SQLite may use it; its other methods are
    // `unix-none`'s, which read nothing of the VFS object but what the copy keeps (`pAppData`, the sizes).
    let rc = unsafe { ffi::sqlite3_vfs_register(Box::leak(Box::new(vfs)), 0) };
    if rc != ffi::SQLITE_OK {
        return Err(rc);
    }
    Ok(layer)
}

/// The device and inode of the file at `name`.
///
/// # Safety
/// `name` is a valid C string.
unsafe fn file_key(name: ffi::sqlite3_filename) -> Option<(u64, u64)> {
    // SAFETY: the caller's contract.
    let path = Path::new(OsStr::from_bytes(unsafe { CStr::from_ptr(name) }.to_bytes()));
    std::fs::metadata(path).ok().map(|meta| (meta.dev(), meta.ino()))
}

/// `xOpen`: opens the file through `unix-none`, then refuses a database file that already has a connection.
unsafe extern "C" fn open(
    _vfs: *mut ffi::sqlite3_vfs,
    name: ffi::sqlite3_filename,
    file: *mut ffi::sqlite3_file,
    flags: c_int,
    out_flags: *mut c_int,
) -> c_int {
    let Ok(layer) = layer() else { return ffi::SQLITE_ERROR };
    let database = flags & ffi::SQLITE_OPEN_MAIN_DB != 0 && !name.is_null();
    // SAFETY: `name` is a valid C string when not null.
    let before = if database { unsafe { file_key(name) } } else { None };
    // SAFETY: SQLite passes a file object of this layer's `szOsFile` bytes, whose first part is the inner
    // layer's; the inner layer's `xOpen` is called with its own VFS object, as it expects.
    let rc =
        unsafe { ((*layer.inner).xOpen.expect("unix-none opens files"))(layer.inner, name, file, flags, out_flags) };
    if rc != ffi::SQLITE_OK {
        return rc;
    }
    // SAFETY: the inner open succeeded, so `file` holds an open file with its methods.
    let inner_methods = unsafe { (*file).pMethods };
    let methods = layer.methods.get_or_init(|| Methods {
        inner: inner_methods,
        wrapped: ffi::sqlite3_io_methods {
            xClose: Some(close),
            xFileControl: Some(file_control),
            // SAFETY: an open file's methods are a valid table for the whole process.
            ..unsafe { *inner_methods }
        },
    });
    // SAFETY: `name` is a valid C string when not null.
    let key = if database { unsafe { file_key(name) } } else { None };
    // A file renamed between the two lookups is not the one opened; so is a key that names nothing.
    let moved = database && (key.is_none() || before.is_some_and(|before| Some(before) != key));
    let refused = if methods.inner != inner_methods || moved {
        Some(ffi::SQLITE_CANTOPEN)
    } else if key.is_some_and(|key| !lock(&layer.open).insert(key)) {
        Some(ffi::SQLITE_BUSY)
    } else {
        None
    };
    if let Some(rc) = refused {
        // SAFETY: the file is open with the inner layer's methods; closing it leaves `pMethods` null, which SQLite
        // reads as "not open".
        unsafe {
            ((*inner_methods).xClose.expect("files close"))(file);
            (*file).pMethods = std::ptr::null();
        }
        return rc;
    }
    // SAFETY: `file` is a file object of this layer (SQLite allocated `szOsFile` bytes) whose inner part is open.
    unsafe {
        trailer(layer, file).write(Trailer { key, name });
        (*file).pMethods = &methods.wrapped;
    }
    ffi::SQLITE_OK
}

/// The trailer of a file object of this layer.
///
/// # Safety
/// `file` is a file object of this layer's `szOsFile` bytes.
unsafe fn trailer(layer: &Layer, file: *mut ffi::sqlite3_file) -> *mut Trailer {
    // SAFETY: the trailer lies inside the file object, at an offset aligned by `register`.
    unsafe { file.cast::<u8>().add(layer.trailer_at).cast::<Trailer>() }
}

/// `xClose`: forgets the file, then closes it through `unix-none`. SQLite has closed the database's WAL and
/// finished with the file by now, so an open that the forgetting lets through meets no I/O of this connection.
unsafe extern "C" fn close(file: *mut ffi::sqlite3_file) -> c_int {
    let Ok(layer) = layer() else { return ffi::SQLITE_ERROR };
    let Some(methods) = layer.methods.get() else { return ffi::SQLITE_ERROR };
    // SAFETY: `file` was opened by `open`, which wrote its trailer.
    let Trailer { key, .. } = unsafe { trailer(layer, file).read() };
    if let Some(key) = key {
        lock(&layer.open).remove(&key);
    }
    // SAFETY: the inner layer's `xClose` on a file it opened.
    unsafe { ((*methods.inner).xClose.expect("files close"))(file) }
}

/// `xFileControl`: answers whether a database file has moved (renamed, removed or replaced since it was opened:
/// its name no longer leads to its inode), which `unix-none` never reports; anything else goes to `unix-none`.
unsafe extern "C" fn file_control(file: *mut ffi::sqlite3_file, op: c_int, arg: *mut std::ffi::c_void) -> c_int {
    let Ok(layer) = layer() else { return ffi::SQLITE_ERROR };
    let Some(methods) = layer.methods.get() else { return ffi::SQLITE_ERROR };
    // SAFETY: `file` was opened by `open`, which wrote its trailer; its name lives until the file closes.
    let Trailer { key, name } = unsafe { trailer(layer, file).read() };
    if op == ffi::SQLITE_FCNTL_HAS_MOVED
        && let Some(key) = key
    {
        // SAFETY: `name` is the database's valid name, and SQLite passes an `int` to write the answer to.
        unsafe { *arg.cast::<c_int>() = c_int::from(file_key(name) != Some(key)) };
        return ffi::SQLITE_OK;
    }
    // SAFETY: the inner layer's `xFileControl` on a file it opened, with SQLite's own arguments.
    unsafe { ((*methods.inner).xFileControl.expect("files take controls"))(file, op, arg) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_path_becomes_a_uri_that_names_the_layer() {
        let uri = uri_of(Path::new("/data/actors/ab/a b?c#d%e.db"));
        assert_eq!(uri, "file:/data/actors/ab/a%20b%3Fc%23d%25e.db?vfs=tern-actor");
    }
}
