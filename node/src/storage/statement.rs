//! One SQL statement per call. libSQL's `prepare` compiles only the first statement of a text and silently
//! ignores the rest, so calls that take one statement check that the text holds exactly one, with SQLite's own
//! notion of where a statement ends (`sqlite3_complete`): semicolons inside strings, quoted identifiers,
//! comments and trigger bodies do not count.

use std::ffi::CString;

use tern_proto::ClientError;

/// Whether SQLite considers `text` to end with a complete statement.
fn is_complete(text: &str) -> bool {
    let Ok(text) = CString::new(text) else { return false };
    // SAFETY: `sqlite3_complete` reads the NUL-terminated string and keeps no reference to it.
    unsafe { libsql::ffi::sqlite3_complete(text.as_ptr()) != 0 }
}

/// Whether `text` holds only whitespace and comments.
fn is_blank(text: &str) -> bool {
    let mut rest = text.trim_start();
    loop {
        if let Some(after) = rest.strip_prefix("--") {
            rest = after.split_once('\n').map_or("", |(_, tail)| tail).trim_start();
        } else if let Some(after) = rest.strip_prefix("/*") {
            rest = after.split_once("*/").map_or("", |(_, tail)| tail).trim_start();
        } else {
            return rest.is_empty();
        }
    }
}

/// The statements of `sql`, in order, without blank ones.
pub fn split(sql: &str) -> Vec<&str> {
    let mut statements = Vec::new();
    let mut start = 0;
    for (end, _) in sql.match_indices(';') {
        let candidate = &sql[start..=end];
        if is_complete(candidate) {
            if !is_blank(&candidate[..candidate.len() - 1]) {
                statements.push(candidate);
            }
            start = end + 1;
        }
    }
    if !is_blank(&sql[start..]) {
        statements.push(&sql[start..]);
    }
    statements
}

/// `sql` when it holds exactly one statement; `actor.invalid_request` when it holds none, `database.sql_error`
/// when it holds several (they would not all run).
pub fn single(sql: &str) -> Result<&str, ClientError> {
    match split(sql).len() {
        0 => Err(ClientError::invalid_request("the SQL text holds no statement")),
        1 => Ok(sql),
        n => Err(ClientError::sql_error(format!(
            "one statement per call, but the SQL text holds {n}; run them one by one or as a batch"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_where_sqlite_ends_statements() {
        assert_eq!(split("SELECT 1"), ["SELECT 1"]);
        assert_eq!(split("SELECT 1;"), ["SELECT 1;"]);
        assert_eq!(split("SELECT 1; SELECT 2"), ["SELECT 1;", " SELECT 2"]);
        assert_eq!(split("INSERT INTO t VALUES ('a;b'); -- done"), ["INSERT INTO t VALUES ('a;b');"]);
        assert_eq!(split("SELECT \"x;y\" FROM t /* ; */"), ["SELECT \"x;y\" FROM t /* ; */"]);
        let trigger = "CREATE TRIGGER tr AFTER INSERT ON t BEGIN UPDATE u SET n = n + 1; END;";
        assert_eq!(split(trigger), [trigger]);
        assert!(split("  -- nothing\n /* at all */ ;").is_empty());
    }

    #[test]
    fn single_refuses_none_and_several() {
        assert_eq!(single("SELECT 1;").unwrap(), "SELECT 1;");
        assert_eq!(single("   ").unwrap_err().qualified_code(), "actor.invalid_request");
        assert_eq!(single("SELECT 1; SELECT 2").unwrap_err().qualified_code(), "database.sql_error");
    }
}
