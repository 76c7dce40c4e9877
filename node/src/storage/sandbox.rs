//! The SQL sandbox: what SQL that the runtime did not write may do to an actor's database.
//!
//! Every statement on an actor's connection is compiled under one of three [`SqlRole`]s. The runtime's own
//! statements run as [`SqlRole::Runtime`] and may do anything. Statements from actor code (`c.sql()`, and so the
//! `sqlite` actor's clients) run as [`SqlRole::User`], the inspector's ad-hoc SQL as [`SqlRole::Inspector`]. The
//! decision is SQLite's own: an authorizer callback sees every table, column, function, PRAGMA and statement
//! class while a statement compiles (views and triggers included, since SQLite expands them into the statement),
//! and [`decide`] answers from parsed names, never from the SQL text. User and inspector SQL may not:
//!
//! * `ATTACH` or `DETACH` anything, which also refuses `VACUUM INTO` (SQLite attaches its target): actor SQL
//!   reaches its own database and no other file;
//! * run `BEGIN`, `COMMIT`, `ROLLBACK`, `SAVEPOINT` or `RELEASE`: the runtime owns the turn's transaction and
//!   each action's savepoint, so an action's changes commit or roll back as one;
//! * run a PRAGMA outside [`pragma_allowed`]'s short list (schema introspection, integrity checks,
//!   `user_version`, `application_id`, `foreign_keys`, `defer_foreign_keys`, `optimize`);
//! * call `load_extension`, `fts3_tokenizer` or `sqlite_log`, or create a virtual table other than FTS3/4/5 and
//!   R*Tree;
//! * touch a `_tern_*` table (the runtime's): user SQL can neither read nor write them, nor create, alter, index,
//!   trigger on or drop anything by such a name; the inspector may read them and nothing more. SQLite's
//!   authorizer shows `ALTER TABLE t RENAME TO n` the old name only, so after an `ALTER TABLE` the runtime
//!   counts the reserved names ([`Sandbox::check_reserved_names`]) and fails the action if one was added.
//!
//! Beyond the authorizer, every connection is opened with SQLite's defensive mode (no writable schema, no
//! writes to `sqlite_master` by hand), untrusted schema (functions with side effects never run from views or
//! triggers), extension loading off, and [`MAX_VALUE_BYTES`] / [`MAX_STATEMENT_BYTES`] as SQLite's length
//! limits. A statement in the user or inspector role is interrupted once it has run longer than the limit its
//! [`Sandbox::enter`] gave, so a runaway query cannot hold a worker thread.
//!
//! The role lives in the connection's [`Sandbox`] and is the runtime's unless a [`Entered`] guard says otherwise;
//! libSQL runs local statements synchronously inside the poll that starts them, so a guard held around one call
//! covers exactly that call's compilation and steps.

use std::cell::RefCell;
use std::ffi::{CStr, c_char, c_int, c_void};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicPtr, AtomicU8, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, LazyLock, Mutex, Once};
use std::time::{Duration, Instant};

use libsql::{AuthAction, AuthContext, Authorization, Connection, ffi};
use tern_proto::ClientError;

/// Longest text or blob a value may be (SQLite's `SQLITE_LIMIT_LENGTH`): `randomblob(1e9)` fails at once
/// instead of allocating a gigabyte.
pub const MAX_VALUE_BYTES: usize = 16 * 1024 * 1024;

/// Longest SQL text one statement may have (`SQLITE_LIMIT_SQL_LENGTH`).
pub const MAX_STATEMENT_BYTES: usize = 1024 * 1024;

/// Deepest trigger recursion (`SQLITE_LIMIT_TRIGGER_DEPTH`).
const MAX_TRIGGER_DEPTH: c_int = 100;

/// The progress handler runs every this many virtual machine instructions.
const PROGRESS_EVERY: c_int = 10_000;

/// Who compiled the statement that is running.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum SqlRole {
    /// The runtime's own statements: anything goes.
    Runtime = 0,
    /// Actor code and the clients it passes SQL for: its own tables only.
    User = 1,
    /// The inspector's ad-hoc SQL: like user SQL, and it may also read the runtime's tables.
    Inspector = 2,
}

impl SqlRole {
    fn from_u8(value: u8) -> SqlRole {
        match value {
            1 => SqlRole::User,
            2 => SqlRole::Inspector,
            _ => SqlRole::Runtime,
        }
    }
}

/// What one connection's sandbox knows: the role statements run as, when the running statement must stop, and
/// why the authorizer last refused something.
#[derive(Default)]
struct SandboxState {
    role: AtomicU8,
    /// Nanoseconds since [`EPOCH`] after which the progress handler interrupts; 0 when unbounded.
    deadline_ns: AtomicU64,
    refused: Mutex<Option<String>>,
    /// Whether user or inspector SQL compiled an `ALTER TABLE` since the last [`Sandbox::check_reserved_names`].
    altered: AtomicBool,
    /// How many objects with reserved names the runtime made, as last recorded.
    reserved_objects: AtomicI64,
    /// The connection's `sqlite3*`, for the WAL-frame API (which libSQL's `Connection` does not expose).
    handle: AtomicPtr<ffi::sqlite3>,
    /// How many turns the connection is lent to now ([`Sandbox::lend`]).
    lent: AtomicUsize,
}

/// The sandbox of one open actor connection. Clones share it.
#[derive(Clone)]
pub struct Sandbox {
    state: Arc<SandboxState>,
}

/// The role a statement runs as while this guard lives; the runtime's again when it drops.
pub struct Entered<'a> {
    sandbox: &'a Sandbox,
    limit: Duration,
}

impl Drop for Entered<'_> {
    fn drop(&mut self) {
        self.sandbox.state.deadline_ns.store(0, Ordering::Relaxed);
        self.sandbox.state.role.store(SqlRole::Runtime as u8, Ordering::Relaxed);
    }
}

/// The connection is lent to actor code while this guard lives (see [`Sandbox::lend`]).
pub struct Lent {
    sandbox: Sandbox,
}

impl Drop for Lent {
    fn drop(&mut self) {
        self.sandbox.state.lent.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Entered<'_> {
    /// The client's view of an error from a statement run under this guard: `database.statement_not_allowed`
    /// (403) with the reason when the sandbox refused it, `database.statement_timed_out` (408) when it ran past
    /// its limit, else `database.sql_error` with SQLite's message.
    pub fn error(&self, err: &libsql::Error) -> ClientError {
        if let Some(reason) = self.sandbox.lock_refused().take() {
            return ClientError::statement_not_allowed(reason);
        }
        match err {
            libsql::Error::SqliteFailure(code, _) if code & 0xff == ffi::SQLITE_INTERRUPT => {
                ClientError::statement_timed_out(self.limit)
            }
            _ => super::sql_value::sql_error_ref(err),
        }
    }
}

impl Sandbox {
    /// Lends the connection to actor code until the returned guard drops (the runtime does for each turn). User
    /// statements run only while it is lent ([`Self::enter_user`]): an `Sql` handle that actor code kept past its
    /// turn is refused, rather than writing through a connection the pool has let go of, whose file may have a
    /// new connection by then or have become another node's replica.
    pub fn lend(&self) -> Lent {
        self.state.lent.fetch_add(1, Ordering::AcqRel);
        Lent { sandbox: self.clone() }
    }

    /// `database.statement_not_allowed` unless the connection is lent to actor code now.
    pub fn check_lent(&self) -> Result<(), ClientError> {
        if self.state.lent.load(Ordering::Acquire) == 0 {
            return Err(ClientError::statement_not_allowed(
                "this SQL or KV handle belongs to a turn that has ended: take `c.sql()` or `c.kv()` again in the turn that uses it",
            ));
        }
        Ok(())
    }

    /// [`Self::enter`] as [`SqlRole::User`], once [`Self::check_lent`] allows it.
    pub fn enter_user(&self, limit: Duration) -> Result<Entered<'_>, ClientError> {
        self.check_lent()?;
        Ok(self.enter(SqlRole::User, limit))
    }

    /// Runs statements as `role` until the guard drops; in the user and inspector roles a statement is
    /// interrupted once it has run for `limit`.
    pub fn enter(&self, role: SqlRole, limit: Duration) -> Entered<'_> {
        let deadline = match role {
            SqlRole::Runtime => 0,
            _ => (EPOCH.elapsed() + limit).as_nanos().min(u128::from(u64::MAX)) as u64,
        };
        self.lock_refused().take();
        self.state.deadline_ns.store(deadline, Ordering::Relaxed);
        self.state.role.store(role as u8, Ordering::Relaxed);
        Entered { sandbox: self, limit }
    }

    /// Counts the objects with reserved names as the runtime made them: the baseline that
    /// [`Sandbox::check_reserved_names`] compares with. Call once the runtime's schema exists.
    pub async fn record_reserved_names(&self, conn: &Connection) -> Result<(), libsql::Error> {
        self.state.reserved_objects.store(reserved_objects(conn).await?, Ordering::Relaxed);
        Ok(())
    }

    /// `database.statement_not_allowed` if user or inspector SQL renamed a table into the reserved names since
    /// the last check (only an `ALTER TABLE` can, so other statements cost nothing here).
    pub async fn check_reserved_names(&self, conn: &Connection) -> Result<(), ClientError> {
        if !self.state.altered.swap(false, Ordering::Relaxed) {
            return Ok(());
        }
        let now = reserved_objects(conn).await.map_err(super::sql_value::sql_error)?;
        let recorded = self.state.reserved_objects.load(Ordering::Relaxed);
        if now > recorded {
            return Err(ClientError::statement_not_allowed(
                "names starting with _tern_ belong to the runtime: a table cannot be renamed to one",
            ));
        }
        Ok(())
    }

    /// The connection's raw `sqlite3*`. It stays valid while any clone of the connection lives; use it only where
    /// nothing else uses the connection (between the actor's statements, on its own task).
    pub fn raw_handle(&self) -> *mut ffi::sqlite3 {
        self.state.handle.load(Ordering::Relaxed)
    }

    fn lock_refused(&self) -> std::sync::MutexGuard<'_, Option<String>> {
        self.state.refused.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Installs the authorizer on a connection [`open`] just made.
    fn install(conn: &Connection, state: Arc<SandboxState>) -> Result<Sandbox, libsql::Error> {
        let sandbox = Sandbox { state };
        let hook_state = sandbox.state.clone();
        conn.authorizer(Some(Arc::new(move |context: &AuthContext| {
            let role = SqlRole::from_u8(hook_state.role.load(Ordering::Relaxed));
            if role != SqlRole::Runtime && matches!(context.action, AuthAction::AlterTable { .. }) {
                hook_state.altered.store(true, Ordering::Relaxed);
            }
            match decide(role, context) {
                Ok(()) => Authorization::Allow,
                Err(reason) => {
                    *hook_state.refused.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(reason);
                    Authorization::Deny
                }
            }
        })))?;
        Ok(sandbox)
    }
}

/// Opens the database at `path` (or `:memory:`) and one connection to it, hardened and with its sandbox.
pub async fn open(path: impl AsRef<std::path::Path>) -> Result<(libsql::Database, Connection, Sandbox), libsql::Error> {
    let database = libsql::Builder::new_local(path.as_ref()).build().await?;
    register_hardening(&database);
    OPENED.with(|slot| slot.borrow_mut().take());
    let conn = database.connect()?;
    let state = OPENED
        .with(|slot| slot.borrow_mut().take())
        .ok_or_else(|| libsql::Error::Misuse("the connection was opened without the SQL sandbox's hardening".into()))?;
    let sandbox = Sandbox::install(&conn, state)?;
    Ok((database, conn, sandbox))
}

/// How many tables, indexes, views and triggers (temporary ones included) have a reserved name.
async fn reserved_objects(conn: &Connection) -> Result<i64, libsql::Error> {
    let sql = "SELECT count(*) FROM (SELECT name FROM sqlite_schema UNION ALL SELECT name FROM sqlite_temp_schema) \
               WHERE name LIKE '\\_tern\\_%' ESCAPE '\\'";
    let mut rows = conn.query(sql, ()).await?;
    match rows.next().await? {
        Some(row) => row.get(0),
        None => Ok(0),
    }
}

/// Time origin of statement deadlines.
static EPOCH: LazyLock<Instant> = LazyLock::new(Instant::now);

thread_local! {
    /// The state of the connection this thread opened last, handed from [`harden`] to [`open`].
    static OPENED: RefCell<Option<Arc<SandboxState>>> = const { RefCell::new(None) };
}

/// Registers [`harden`] to run on every connection SQLite opens in this process from now on.
fn register_hardening(database: &libsql::Database) {
    static REGISTERED: Once = Once::new();
    REGISTERED.call_once(|| {
        // libSQL configures SQLite as it opens its first connection, which must come before anything initialises
        // SQLite, and registering the hook does: open (and close) one first. If it fails, so will the caller's.
        drop(database.connect());
        // SAFETY: `harden` has the entry point signature SQLite expects and lives for the whole process.
        let rc = unsafe { ffi::sqlite3_auto_extension(Some(harden)) };
        assert_eq!(rc, ffi::SQLITE_OK, "registering the SQL sandbox's connection hook failed");
    });
}

/// Name of the client data slot that owns a connection's [`SandboxState`].
const STATE_SLOT: &CStr = c"tern_sandbox";

/// SQLite calls this on every new connection: defensive mode, untrusted schema, no extension loading, the
/// length limits, and the progress handler that enforces statement deadlines.
unsafe extern "C" fn harden(
    db: *mut ffi::sqlite3,
    _error: *mut *const c_char,
    _api: *const ffi::sqlite3_api_routines,
) -> c_int {
    let state = Arc::new(SandboxState::default());
    state.handle.store(db, Ordering::Relaxed);
    // SAFETY: `db` is the connection SQLite is opening; the configuration calls take an int and an optional
    // out-pointer, the limits plain ints. The client data slot owns one reference to the state and releases it
    // when the connection closes, which is also the last moment the progress handler can run.
    unsafe {
        for (option, value) in [
            (ffi::SQLITE_DBCONFIG_DEFENSIVE, 1),
            (ffi::SQLITE_DBCONFIG_TRUSTED_SCHEMA, 0),
            (ffi::SQLITE_DBCONFIG_ENABLE_LOAD_EXTENSION, 0),
            (ffi::SQLITE_DBCONFIG_ENABLE_FTS3_TOKENIZER, 0),
        ] {
            ffi::sqlite3_db_config(db, option, value, std::ptr::null_mut::<c_int>());
        }
        ffi::sqlite3_limit(db, ffi::SQLITE_LIMIT_LENGTH, MAX_VALUE_BYTES as c_int);
        ffi::sqlite3_limit(db, ffi::SQLITE_LIMIT_SQL_LENGTH, MAX_STATEMENT_BYTES as c_int);
        ffi::sqlite3_limit(db, ffi::SQLITE_LIMIT_TRIGGER_DEPTH, MAX_TRIGGER_DEPTH);
        let owned = Arc::into_raw(state.clone()) as *mut c_void;
        ffi::sqlite3_set_clientdata(db, STATE_SLOT.as_ptr(), owned, Some(release_state));
        ffi::sqlite3_progress_handler(db, PROGRESS_EVERY, Some(check_deadline), owned);
    }
    OPENED.with(|slot| *slot.borrow_mut() = Some(state));
    ffi::SQLITE_OK
}

/// Drops the client data slot's reference to a connection's state.
unsafe extern "C" fn release_state(state: *mut c_void) {
    // SAFETY: `state` came from `Arc::into_raw` in `harden`, and SQLite releases each slot exactly once.
    drop(unsafe { Arc::from_raw(state as *const SandboxState) });
}

/// SQLite's progress handler: non-zero interrupts the running statement.
unsafe extern "C" fn check_deadline(state: *mut c_void) -> c_int {
    // SAFETY: the client data slot keeps the state alive for as long as the connection can call this.
    let state = unsafe { &*(state as *const SandboxState) };
    let deadline = state.deadline_ns.load(Ordering::Relaxed);
    c_int::from(deadline != 0 && EPOCH.elapsed().as_nanos() > u128::from(deadline))
}

/// Whether `name` is one of the runtime's tables (or any object name it reserves).
fn is_internal(name: &str) -> bool {
    name.len() >= 6 && name[..6].eq_ignore_ascii_case("_tern_")
}

/// Virtual table modules that user SQL may create.
const ALLOWED_MODULES: &[&str] =
    &["fts3", "fts4", "fts5", "fts5vocab", "fts4aux", "fts3tokenize", "rtree", "rtree_i32"];

/// Functions that user SQL may not call: they load code, register tokenizers by pointer, or write the log.
const DENIED_FUNCTIONS: &[&str] = &["load_extension", "fts3_tokenizer", "sqlite_log"];

/// Whether user or inspector SQL may run `PRAGMA name` (with `value`, if one was given): schema introspection
/// and integrity checks (for any table but the runtime's, in the user role), and the few settings that belong to
/// the actor's own data or to the current transaction.
pub fn pragma_allowed(role: SqlRole, name: &str, value: Option<&str>) -> bool {
    let name = name.to_ascii_lowercase();
    let names_table = |value: Option<&str>| value.is_none_or(|table| role == SqlRole::Inspector || !is_internal(table));
    match name.as_str() {
        "table_info" | "table_xinfo" | "index_info" | "index_xinfo" | "index_list" | "foreign_key_list"
        | "foreign_key_check" | "integrity_check" | "quick_check" | "table_list" => names_table(value),
        "collation_list" | "function_list" | "module_list" | "pragma_list" | "compile_options" | "encoding"
        | "page_size" | "page_count" | "freelist_count" | "schema_version" | "data_version" => value.is_none(),
        "user_version" | "application_id" | "foreign_keys" | "defer_foreign_keys" | "optimize" => true,
        _ => false,
    }
}

/// The sandbox's answer for one authorizer callback: `Ok` to allow, `Err(reason)` to refuse.
pub fn decide(role: SqlRole, context: &AuthContext) -> Result<(), String> {
    if role == SqlRole::Runtime {
        return Ok(());
    }
    let internal = |names: &[&str]| match names.iter().find(|name| is_internal(name)) {
        Some(name) => Err(format!("{name} belongs to the runtime: tables and objects named _tern_* cannot be used")),
        None => Ok(()),
    };
    match context.action {
        AuthAction::Select | AuthAction::Recursive => Ok(()),
        AuthAction::Read { .. } if role == SqlRole::Inspector => Ok(()),
        AuthAction::Read { table_name, .. } => internal(&[table_name]),
        AuthAction::Insert { table_name }
        | AuthAction::Delete { table_name }
        | AuthAction::Update { table_name, .. }
        | AuthAction::CreateTable { table_name }
        | AuthAction::CreateTempTable { table_name }
        | AuthAction::DropTable { table_name }
        | AuthAction::DropTempTable { table_name }
        | AuthAction::AlterTable { table_name, .. } => internal(&[table_name]),
        // ANALYZE only writes statistics to sqlite_stat1 (PRAGMA optimize analyzes every table).
        AuthAction::Analyze { .. } => Ok(()),
        AuthAction::CreateView { view_name }
        | AuthAction::CreateTempView { view_name }
        | AuthAction::DropView { view_name }
        | AuthAction::DropTempView { view_name } => internal(&[view_name]),
        AuthAction::CreateIndex { index_name, table_name }
        | AuthAction::CreateTempIndex { index_name, table_name }
        | AuthAction::DropIndex { index_name, table_name }
        | AuthAction::DropTempIndex { index_name, table_name } => internal(&[index_name, table_name]),
        AuthAction::CreateTrigger { trigger_name, table_name }
        | AuthAction::CreateTempTrigger { trigger_name, table_name }
        | AuthAction::DropTrigger { trigger_name, table_name }
        | AuthAction::DropTempTrigger { trigger_name, table_name } => internal(&[trigger_name, table_name]),
        AuthAction::Reindex { index_name } => internal(&[index_name]),
        AuthAction::CreateVtable { table_name, module_name } => {
            internal(&[table_name])?;
            if ALLOWED_MODULES.iter().any(|module| module.eq_ignore_ascii_case(module_name)) {
                Ok(())
            } else {
                Err(format!(
                    "virtual tables using {module_name} are not allowed (allowed: {})",
                    ALLOWED_MODULES.join(", ")
                ))
            }
        }
        AuthAction::DropVtable { table_name, .. } => internal(&[table_name]),
        AuthAction::Pragma { pragma_name, pragma_value } => {
            if pragma_allowed(role, pragma_name, pragma_value) {
                Ok(())
            } else {
                Err(format!(
                    "PRAGMA {pragma_name} is not allowed here (see the README's SQL section for the allowed ones)"
                ))
            }
        }
        AuthAction::Function { function_name } => {
            if DENIED_FUNCTIONS.iter().any(|denied| denied.eq_ignore_ascii_case(function_name)) {
                Err(format!("the function {function_name} is not allowed"))
            } else {
                Ok(())
            }
        }
        AuthAction::Attach { .. } | AuthAction::Detach { .. } => Err(
            "ATTACH, DETACH and VACUUM INTO are not allowed: an actor's SQL reaches its own database and no other file"
                .into(),
        ),
        AuthAction::Transaction { .. } | AuthAction::Savepoint { .. } => Err(
            "transaction statements are not allowed: each action runs in a transaction of its own that the runtime \
             commits (nest one with Sql::transaction)"
                .into(),
        ),
        AuthAction::Unknown { code, .. } => Err(format!("statement class {code} is not allowed")),
    }
}

#[cfg(test)]
mod tests;
