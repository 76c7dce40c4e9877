//! Every statement class and every PRAGMA SQLite knows, tried against the sandbox in the user and the inspector
//! role, on a real libSQL file laid out like an actor's (internal tables, inside a turn's transaction and an
//! action's savepoint), plus the attacks of the security review spelled out one by one.

use std::time::Duration;

use super::*;
use crate::storage::ActorDb;
use crate::storage::sql_value::{self, SqlParams};

/// What running one statement did.
#[derive(Debug, PartialEq)]
enum Outcome {
    /// It ran.
    Ran,
    /// The sandbox refused it (`database.statement_not_allowed`).
    Refused,
    /// It failed for another reason (the code is kept).
    Failed(String),
}
use Outcome::*;

/// An actor's database with the runtime's tables and a user table `items`, inside a turn.
struct Fixture {
    db: ActorDb,
    dir: tempfile::TempDir,
    _database: libsql::Database,
}

impl Fixture {
    async fn new() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let (database, conn, sandbox) = open(dir.path().join("actor.db")).await.unwrap();
        let db = ActorDb::new(conn, sandbox);
        db.open_actor("0123", "sqlite", "k").await.unwrap();
        let conn = db.connection();
        conn.execute("CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT)", ()).await.unwrap();
        conn.execute("INSERT INTO items (name) VALUES ('a')", ()).await.unwrap();
        db.begin().await.unwrap();
        db.savepoint().await.unwrap();
        Fixture { db, dir, _database: database }
    }

    async fn run(&self, role: SqlRole, sql: &str) -> Outcome {
        let guard = self.db.sandbox().enter(role, Duration::from_secs(10));
        match sql_value::query(self.db.connection(), &guard, sql, &SqlParams::None).await {
            Ok(_) => Ran,
            Err(e) if e.qualified_code() == "database.statement_not_allowed" => Refused,
            Err(e) => Failed(format!("{}: {}", e.qualified_code(), e.message)),
        }
    }

    /// Runs a runtime query returning one text or integer column, as strings.
    async fn strings(&self, sql: &str) -> Vec<String> {
        let mut rows = self.db.connection().query(sql, ()).await.unwrap();
        let mut out = Vec::new();
        while let Some(row) = rows.next().await.unwrap() {
            out.push(match row.get_value(0).unwrap() {
                libsql::Value::Text(text) => text,
                other => format!("{other:?}"),
            });
        }
        out
    }
}

/// Statements in the order they run (later ones rely on earlier ones), with the outcome expected for user SQL
/// and for the inspector's.
const STATEMENTS: &[(&str, bool, bool)] = &[
    // Reading and writing the actor's own tables.
    ("SELECT * FROM items", true, true),
    ("INSERT INTO items (name) VALUES ('b')", true, true),
    ("UPDATE items SET name = 'c' WHERE name = 'b'", true, true),
    ("DELETE FROM items WHERE name = 'c'", true, true),
    ("SELECT name FROM sqlite_master", true, true),
    ("SELECT * FROM json_each('[1, 2]')", true, true),
    ("WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c LIMIT 5) SELECT x FROM c", true, true),
    ("SELECT randomblob(16), hex(zeroblob(4)), upper('x'), json('{}')", true, true),
    // Schema changes of the actor's own objects.
    ("CREATE TABLE t2 (x INTEGER)", true, true),
    ("CREATE INDEX t2_x ON t2 (x)", true, true),
    ("CREATE VIEW v2 AS SELECT x FROM t2", true, true),
    ("CREATE TRIGGER t2_tr AFTER INSERT ON t2 BEGIN UPDATE items SET name = 'trig'; END", true, true),
    ("INSERT INTO t2 VALUES (1)", true, true),
    ("ALTER TABLE t2 ADD COLUMN y TEXT", true, true),
    ("ALTER TABLE t2 RENAME TO t3", true, true),
    ("ALTER TABLE t3 RENAME TO t2", true, true),
    ("ANALYZE t2", true, true),
    ("REINDEX t2_x", true, true),
    ("DROP TRIGGER t2_tr", true, true),
    ("DROP VIEW v2", true, true),
    ("DROP INDEX t2_x", true, true),
    ("DROP TABLE t2", true, true),
    ("CREATE TEMP TABLE tt (x)", true, true),
    ("CREATE TEMP VIEW tv AS SELECT 1", true, true),
    ("CREATE TEMP TRIGGER ttr AFTER INSERT ON items BEGIN SELECT 1; END", true, true),
    ("DROP TRIGGER ttr", true, true),
    ("DROP VIEW tv", true, true),
    ("DROP TABLE tt", true, true),
    ("CREATE VIRTUAL TABLE docs USING fts5(body)", true, true),
    ("INSERT INTO docs VALUES ('hello world')", true, true),
    ("SELECT * FROM docs WHERE docs MATCH 'hello'", true, true),
    ("DROP TABLE docs", true, true),
    ("CREATE VIRTUAL TABLE boxes USING rtree(id, x0, x1)", true, true),
    ("DROP TABLE boxes", true, true),
    ("CREATE VIRTUAL TABLE pages USING dbstat", false, false),
    // Functions that load code, register tokenizers by pointer or write the log.
    ("SELECT load_extension('/tmp/x.so')", false, false),
    ("SELECT fts3_tokenizer('simple')", false, false),
    ("SELECT sqlite_log(1, 'x')", false, false),
    // The runtime's tables: invisible to user SQL, read-only to the inspector.
    ("SELECT * FROM _tern_meta", false, true),
    ("SELECT value FROM _TERN_META WHERE key = 'inspector_token'", false, true),
    ("SELECT * FROM main._tern_kv", false, true),
    ("PRAGMA table_info(_tern_meta)", false, true),
    ("INSERT INTO _tern_kv (key, value, update_ts) VALUES (x'01', x'02', 0)", false, false),
    ("UPDATE _tern_state SET data = x''", false, false),
    ("DELETE FROM _tern_meta", false, false),
    ("CREATE TABLE _tern_mine (x)", false, false),
    ("CREATE TEMP TABLE _tern_meta (key, value)", false, false),
    ("CREATE INDEX sneaky ON _tern_meta (value)", false, false),
    ("CREATE TRIGGER sneaky AFTER INSERT ON _tern_kv BEGIN SELECT 1; END", false, false),
    ("ALTER TABLE _tern_meta ADD COLUMN x", false, false),
    ("DROP TABLE _tern_traces", false, false),
    ("ALTER TABLE _tern_meta RENAME TO mine", false, false),
    ("CREATE VIEW leak AS SELECT * FROM _tern_meta", true, true),
    ("SELECT * FROM leak", false, true),
    ("DROP VIEW leak", true, true),
    ("CREATE TRIGGER wipe AFTER INSERT ON items BEGIN DELETE FROM _tern_meta; END", true, true),
    ("INSERT INTO items (name) VALUES ('fires the trigger')", false, false),
    ("DROP TRIGGER wipe", true, true),
    // Other files.
    ("ATTACH DATABASE 'other.db' AS other", false, false),
    ("DETACH DATABASE other", false, false),
    // The runtime's transaction.
    ("BEGIN", false, false),
    ("BEGIN IMMEDIATE", false, false),
    ("COMMIT", false, false),
    ("END", false, false),
    ("ROLLBACK", false, false),
    ("SAVEPOINT mine", false, false),
    ("RELEASE tern_action", false, false),
    ("ROLLBACK TO tern_action", false, false),
];

#[tokio::test]
async fn every_statement_class_in_both_roles() {
    for (role, expect) in [(SqlRole::User, 1), (SqlRole::Inspector, 2)] {
        let fixture = Fixture::new().await;
        for (sql, user, inspector) in STATEMENTS {
            let allowed = if expect == 1 { *user } else { *inspector };
            let outcome = fixture.run(role, sql).await;
            if allowed {
                assert_eq!(outcome, Ran, "{role:?}: {sql}");
            } else {
                assert_eq!(outcome, Refused, "{role:?}: {sql}");
            }
            assert!(!fixture.db.connection().is_autocommit(), "{role:?}: {sql} ended the turn's transaction");
        }
        assert!(!fixture.dir.path().join("other.db").exists(), "ATTACH created no file");
        // The runtime's own statements still run, and the runtime's tables are intact.
        fixture.db.release_savepoint().await.unwrap();
        fixture.db.commit().await.unwrap();
        let meta = fixture.strings("SELECT key FROM _tern_meta ORDER BY key").await;
        assert!(meta.contains(&"schema_version".to_string()), "{meta:?}");
    }
}

/// Pragmas user and inspector SQL may read (`PRAGMA name`); every other pragma SQLite knows is refused.
const READABLE_PRAGMAS: &[&str] = &[
    "application_id",
    "collation_list",
    "compile_options",
    "data_version",
    "defer_foreign_keys",
    "encoding",
    "foreign_key_check",
    "foreign_key_list",
    "foreign_keys",
    "freelist_count",
    "function_list",
    "index_info",
    "index_list",
    "index_xinfo",
    "integrity_check",
    "module_list",
    "optimize",
    "page_count",
    "page_size",
    "pragma_list",
    "quick_check",
    "schema_version",
    "table_info",
    "table_list",
    "table_xinfo",
    "user_version",
];

/// Pragmas that take a value (`PRAGMA name = items`): a table name for the introspection ones, a setting for
/// the rest.
const VALUED_PRAGMAS: &[&str] = &[
    "application_id",
    "defer_foreign_keys",
    "foreign_key_check",
    "foreign_key_list",
    "foreign_keys",
    "index_info",
    "index_list",
    "index_xinfo",
    "integrity_check",
    "optimize",
    "quick_check",
    "table_info",
    "table_list",
    "table_xinfo",
    "user_version",
];

#[tokio::test]
async fn every_pragma_in_both_roles() {
    let fixture = Fixture::new().await;
    let pragmas = fixture.strings("SELECT name FROM pragma_pragma_list ORDER BY name").await;
    assert!(pragmas.len() > 60, "SQLite lists its pragmas: {pragmas:?}");
    for role in [SqlRole::User, SqlRole::Inspector] {
        for pragma in &pragmas {
            let read = fixture.run(role, &format!("PRAGMA {pragma}")).await;
            let readable = READABLE_PRAGMAS.contains(&pragma.as_str());
            assert_eq!(read == Refused, !readable, "{role:?}: PRAGMA {pragma} → {read:?}");
            let valued = fixture.run(role, &format!("PRAGMA {pragma} = items")).await;
            let settable = VALUED_PRAGMAS.contains(&pragma.as_str());
            assert_eq!(valued == Refused, !settable, "{role:?}: PRAGMA {pragma} = items → {valued:?}");
            if !readable {
                let function = fixture.run(role, &format!("SELECT * FROM pragma_{pragma}")).await;
                assert_ne!(function, Ran, "{role:?}: pragma_{pragma} as a table ran");
            }
        }
    }
    assert!(!fixture.db.connection().is_autocommit());
    // The attack's first step: the database file's path.
    assert_eq!(fixture.run(SqlRole::User, "PRAGMA database_list").await, Refused);
    assert_eq!(fixture.run(SqlRole::User, "SELECT file FROM pragma_database_list").await, Refused);
    assert_eq!(fixture.run(SqlRole::User, "PRAGMA writable_schema = ON").await, Refused);
}

/// Outside any transaction too (where SQLite would let `VACUUM INTO` run), the sandbox refuses to reach another
/// file, and creates none.
#[tokio::test]
async fn no_other_file_even_outside_a_transaction() {
    let fixture = Fixture::new().await;
    fixture.db.rollback().await.unwrap();
    let copy = fixture.dir.path().join("copy.db");
    for role in [SqlRole::User, SqlRole::Inspector] {
        let vacuum = format!("VACUUM INTO '{}'", copy.display());
        assert_eq!(fixture.run(role, &vacuum).await, Refused, "{role:?}");
        let attach = format!("ATTACH DATABASE '{}' AS other", fixture.dir.path().join("other.db").display());
        assert_eq!(fixture.run(role, &attach).await, Refused, "{role:?}");
        assert_eq!(fixture.run(role, "VACUUM").await, Refused, "{role:?}");
    }
    assert!(!copy.exists() && !fixture.dir.path().join("other.db").exists());
    // The runtime's own export still works.
    fixture.db.connection().execute("VACUUM INTO ?1", [copy.display().to_string()]).await.unwrap();
    assert!(copy.exists());
}

/// With `PRAGMA writable_schema` refused and SQLite's defensive mode on, `sqlite_master` cannot be edited by
/// hand: no view planted over the runtime's tables, no schema that bricks the actor.
#[tokio::test]
async fn the_schema_cannot_be_edited_by_hand() {
    let fixture = Fixture::new().await;
    for role in [SqlRole::User, SqlRole::Inspector] {
        let plant = "INSERT INTO sqlite_master (type, name, tbl_name, rootpage, sql) \
                     VALUES ('view', 'v', 'v', 0, 'CREATE VIEW v AS SELECT * FROM _tern_meta')";
        assert_ne!(fixture.run(role, plant).await, Ran, "{role:?}");
        let brick = "UPDATE sqlite_master SET sql = 'CREATE TABLE items (broken' WHERE name = 'items'";
        assert_ne!(fixture.run(role, brick).await, Ran, "{role:?}");
    }
    fixture.db.release_savepoint().await.unwrap();
    fixture.db.commit().await.unwrap();
    assert_eq!(fixture.strings("SELECT name FROM items").await, ["a"]);
}

/// SQLite's authorizer does not show the new name of a rename; the count of reserved names does.
#[tokio::test]
async fn a_table_cannot_be_renamed_into_the_reserved_names() {
    let fixture = Fixture::new().await;
    let conn = fixture.db.connection();
    for (role, sql) in [
        (SqlRole::User, "ALTER TABLE items RENAME TO _tern_items"),
        (SqlRole::Inspector, "ALTER TABLE items RENAME TO _TERN_x"),
    ] {
        assert_eq!(fixture.run(role, sql).await, Ran, "the statement itself compiles");
        let err = fixture.db.sandbox().check_reserved_names(conn).await.unwrap_err();
        assert_eq!(err.qualified_code(), "database.statement_not_allowed");
        fixture.db.rollback_savepoint().await.unwrap();
        fixture.db.savepoint().await.unwrap();
    }
    assert_eq!(fixture.run(SqlRole::User, "ALTER TABLE items RENAME TO things").await, Ran);
    fixture.db.sandbox().check_reserved_names(conn).await.unwrap();
    assert_eq!(fixture.run(SqlRole::User, "ALTER TABLE things RENAME TO items").await, Ran);
    fixture.db.sandbox().check_reserved_names(conn).await.unwrap();
}

/// A runaway statement is interrupted at its deadline; the turn's transaction goes on.
#[tokio::test]
async fn a_runaway_statement_is_interrupted() {
    let fixture = Fixture::new().await;
    let forever = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c";
    let guard = fixture.db.sandbox().enter(SqlRole::User, Duration::from_millis(100));
    let err = sql_value::query(fixture.db.connection(), &guard, forever, &SqlParams::None).await.unwrap_err();
    assert_eq!(err.qualified_code(), "database.statement_timed_out");
    assert_eq!(err.status, 408);
    drop(guard);
    assert!(!fixture.db.connection().is_autocommit());
    assert_eq!(fixture.run(SqlRole::User, "SELECT count(*) FROM items").await, Ran);
    // The runtime's own statements have no deadline.
    assert_eq!(fixture.strings("SELECT count(*) FROM items").await, ["Integer(1)"]);
}

/// One value is at most 16 MiB and one result at most 16 MiB, so no statement makes the node hold gigabytes.
#[tokio::test]
async fn values_and_results_are_bounded() {
    let fixture = Fixture::new().await;
    let huge = fixture.run(SqlRole::User, "SELECT randomblob(1000000000)").await;
    assert!(matches!(&huge, Failed(m) if m.starts_with("database.sql_error") && m.contains("too big")), "{huge:?}");
    let many =
        "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c LIMIT 40) SELECT randomblob(1000000) FROM c";
    let result = fixture.run(SqlRole::User, many).await;
    assert!(matches!(&result, Failed(m) if m.starts_with("database.result_too_large")), "{result:?}");
    let fits =
        "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c LIMIT 4) SELECT randomblob(1000000) FROM c";
    assert_eq!(fixture.run(SqlRole::User, fits).await, Ran);
    let long_text = format!("SELECT '{}'", "x".repeat(MAX_STATEMENT_BYTES));
    assert!(matches!(fixture.run(SqlRole::User, &long_text).await, Failed(_)));
}

#[test]
fn only_the_runtime_may_do_anything() {
    let attach = AuthContext { action: AuthAction::Attach { filename: "/x" }, database_name: None, accessor: None };
    assert!(decide(SqlRole::Runtime, &attach).is_ok());
    assert!(decide(SqlRole::User, &attach).is_err());
    assert!(decide(SqlRole::Inspector, &attach).is_err());
    let unknown = AuthContext {
        action: AuthAction::Unknown { code: 99, arg1: None, arg2: None },
        database_name: None,
        accessor: None,
    };
    assert!(decide(SqlRole::User, &unknown).is_err(), "anything unrecognised is refused");
}
