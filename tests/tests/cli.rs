//! The `tern` command line against a real node: actors, calls, state, SQL, inspection, traces, export, errors
//! and the admin token.
//!
//! The binary is `target/debug/tern` ([`tern_binary`]); the node under test is the same binary.

use std::process::{Command, Output};

use serde_json::{Value, json};
use tern_tests::{TernProcess, tern_binary};

/// A node and a way to run the command line against it.
struct Cli {
    node: TernProcess,
    dir: tempfile::TempDir,
    token: Option<&'static str>,
}

/// What a command line run produced.
struct Run {
    code: i32,
    stdout: String,
    stderr: String,
    bytes: Vec<u8>,
}

impl Run {
    /// Asserts success and returns stdout.
    fn ok(self) -> String {
        assert_eq!(self.code, 0, "expected success; stdout: {}\nstderr: {}", self.stdout, self.stderr);
        self.stdout
    }

    /// Asserts success and parses stdout as JSON.
    fn json(self) -> Value {
        let stdout = self.ok();
        serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {stdout}"))
    }

    /// Asserts failure with `code` and returns stderr.
    fn fails(self, code: i32) -> String {
        assert_eq!(self.code, code, "expected exit code {code}; stdout: {}\nstderr: {}", self.stdout, self.stderr);
        self.stderr
    }
}

impl Cli {
    fn start(dev_args: &[&str]) -> Cli {
        let dir = tempfile::tempdir().unwrap();
        let node = TernProcess::start_with(&tern_binary(), &dir.path().join("data"), dev_args);
        Cli { node, dir, token: None }
    }

    /// Runs `tern ARGS --endpoint <node>` (with `--admin-token` when set) and a clean environment.
    fn run(&self, args: &[&str]) -> Run {
        self.run_with(args, &[])
    }

    fn run_with(&self, args: &[&str], env: &[(&str, &str)]) -> Run {
        let mut command = Command::new(tern_binary());
        command.args(args).arg("--endpoint").arg(self.node.endpoint());
        if let Some(token) = self.token {
            command.arg("--admin-token").arg(token);
        }
        command.env_remove("TERN_ENDPOINT").env_remove("TERN_ADMIN_TOKEN").env_remove("RUST_LOG");
        command.envs(env.iter().copied());
        let Output { status, stdout, stderr } = command.output().expect("run tern");
        Run {
            code: status.code().expect("tern exited by a signal"),
            stdout: String::from_utf8_lossy(&stdout).into_owned(),
            stderr: String::from_utf8_lossy(&stderr).into_owned(),
            bytes: stdout,
        }
    }
}

#[test]
fn actors_calls_and_state() {
    let cli = Cli::start(&[]);
    let created = cli.run(&["actors", "create", "counter", "k1", "--json"]).json();
    let id = created["actor_id"].as_str().unwrap().to_string();
    assert_eq!((created["name"].as_str(), created["key"].as_str()), (Some("counter"), Some("k1")));
    let stderr = cli.run(&["actors", "create", "counter", "k1"]).fails(1);
    assert!(stderr.starts_with("error: actor.duplicate_key: "), "{stderr}");

    assert_eq!(cli.run(&["call", "counter/k1", "increment", "5"]).ok().trim(), "5");
    assert_eq!(cli.run(&["call", &id, "increment", "-2", "--json"]).ok(), "3\n");
    assert_eq!(cli.run(&["state", "counter/k1"]).json(), json!({"count": 3}));
    assert_eq!(
        cli.run(&["state", "counter/k1", "--json"]).json(),
        json!({"state": {"count": 3}, "isStateEnabled": true})
    );
    assert_eq!(cli.run(&["state", "counter/k1", "--set", r#"{"count": 40}"#]).json(), json!({"count": 40}));
    assert_eq!(cli.run(&["call", "counter/k1", "getCount"]).json(), json!(40));

    // Listing, by id and by key.
    cli.run(&["actors", "create", "room", "org-1/general"]).ok();
    let listed = cli.run(&["actors", "ls", "--json"]).json();
    let mut names: Vec<(&str, &str)> =
        listed.as_array().unwrap().iter().map(|a| (a["name"].as_str().unwrap(), a["key"].as_str().unwrap())).collect();
    names.sort();
    assert_eq!(names, [("counter", "k1"), ("room", "org-1/general")]);
    let rooms = cli.run(&["actors", "ls", "--name", "room", "--json"]).json();
    assert_eq!(rooms.as_array().unwrap().len(), 1);
    let table = cli.run(&["actors", "ls"]).ok();
    assert!(table.starts_with("ACTOR ID") && table.contains(&id) && table.contains("org-1/general"), "{table}");
    assert_eq!(cli.run(&["actors", "get", &id, "--json"]).json()["key"], json!("k1"));
    let shown = cli.run(&["actors", "get", "room/org-1/general"]).ok();
    assert!(shown.contains(r#"["org-1","general"]"#), "{shown}");

    // Inspection.
    let summary = cli.run(&["inspect", "counter/k1", "--json"]).json();
    assert_eq!(summary["actor"]["actor_id"], json!(id));
    assert_eq!(summary["summary"]["state"], json!({"count": 40}));
    assert!(summary["summary"]["rpcs"].as_array().unwrap().contains(&json!("increment")));
    let human = cli.run(&["inspect", "counter/k1"]).ok();
    assert!(human.contains("connections  0") && human.contains("increment"), "{human}");
    let traces = cli.run(&["traces", "counter/k1"]).ok();
    assert!(traces.starts_with("TIME (UTC)") && traces.contains("increment"), "{traces}");
    let otlp = cli.run(&["traces", "counter/k1", "--limit", "1", "--json"]).json();
    assert!(otlp["otlp"]["resourceSpans"].is_array(), "{otlp}");

    // Errors: the server's, then usage errors.
    let stderr = cli.run(&["call", "counter/nope", "increment", "1"]).fails(1);
    assert!(stderr.starts_with("error: actor.not_found: ") && stderr.contains("counter/nope"), "{stderr}");
    let stderr = cli.run(&["call", "counter/k1", "nope"]).fails(1);
    assert!(stderr.starts_with("error: actor.action_not_found: "), "{stderr}");
    cli.run(&["call", "counter/k1", "increment", "not-json"]).fails(2);
    cli.run(&["actors", "get", "/k1"]).fails(2);

    // Where its database lives: on a single node, the home alone.
    let replicas = cli.run(&["actors", "replicas", "counter/k1", "--json"]).json();
    assert_eq!((&replicas["home"]["state"], &replicas["replicas"]), (&json!("home"), &json!([])), "{replicas}");
    let table = cli.run(&["actors", "replicas", "counter/k1"]).ok();
    assert!(table.starts_with("NODE") && table.lines().nth(1).is_some_and(|l| l.starts_with("local")), "{table}");

    // Sleep and destroy; a destroyed actor is still found by id.
    cli.run(&["actors", "sleep", "counter/k1"]).ok();
    assert_eq!(cli.run(&["call", "counter/k1", "getCount"]).json(), json!(40));
    assert_eq!(cli.run(&["actors", "destroy", "counter/k1"]).ok().trim(), format!("destroyed {id}"));
    assert!(cli.run(&["actors", "get", &id, "--json"]).json()["destroy_ts"].is_i64());
    cli.run(&["state", "counter/k1"]).fails(1);
}

#[test]
fn sql_and_export() {
    let cli = Cli::start(&[]);
    cli.run(&["actors", "create", "sqlite", "t1"]).ok();
    let ddl = "CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT, data BLOB)";
    assert_eq!(cli.run(&["sql", "sqlite/t1", ddl]).ok().trim(), "(0 rows)");
    let insert = "INSERT INTO items (name, data) VALUES (?, ?)";
    cli.run(&["sql", "sqlite/t1", insert, "--param", r#""widget""#, "--param", r#"["$Uint8Array","AQI="]"#]).ok();
    let named = "INSERT INTO items (name) VALUES (:name)";
    cli.run(&["sql", "sqlite/t1", named, "--named", r#"{"name": "gadget"}"#]).ok();

    let select = "SELECT id, name, data FROM items ORDER BY id";
    let rows = cli.run(&["sql", "sqlite/t1", select, "--json"]).json();
    assert_eq!(
        rows,
        json!([{"id": 1, "name": "widget", "data": ["$Uint8Array", "AQI="]}, {"id": 2, "name": "gadget", "data": null}])
    );
    let table = cli.run(&["sql", "sqlite/t1", select]).ok();
    assert_eq!(table, "id  name    data\n 1  widget  x'0102'\n 2  gadget  NULL\n(2 rows)\n");
    let stderr = cli.run(&["sql", "sqlite/t1", "SELECT nope FROM items"]).fails(1);
    assert!(stderr.starts_with("error: database.sql_error: "), "{stderr}");

    // Export to stdout (a pipe here) and to a file: both are SQLite databases holding the table.
    let exported = cli.run(&["export", "sqlite/t1"]);
    assert_eq!(exported.code, 0, "{}", exported.stderr);
    assert!(exported.bytes.starts_with(b"SQLite format 3\0"), "not a SQLite file: {:?}", &exported.bytes[..16]);
    let ddl_bytes = b"CREATE TABLE items";
    assert!(exported.bytes.windows(ddl_bytes.len()).any(|w| w == ddl_bytes));
    let file = cli.dir.path().join("t1.db");
    cli.run(&["export", "sqlite/t1", "--output", file.to_str().unwrap()]).ok();
    assert!(std::fs::read(&file).unwrap().starts_with(b"SQLite format 3\0"));
    let stderr = cli.run(&["export", "sqlite/none"]).fails(1);
    assert!(stderr.starts_with("error: actor.not_found: "), "{stderr}");
}

#[test]
fn the_admin_token_is_sent() {
    let mut cli = Cli::start(&["--admin-token", "s3cret"]);
    cli.run(&["actors", "create", "counter", "k1"]).ok();
    let stderr = cli.run(&["actors", "ls"]).fails(1);
    assert!(stderr.contains("unauthorized") && stderr.contains("--admin-token"), "{stderr}");
    cli.run(&["state", "counter/k1"]).fails(1);
    assert_eq!(
        cli.run_with(&["actors", "ls", "--json"], &[("TERN_ADMIN_TOKEN", "s3cret")]).json().as_array().unwrap().len(),
        1
    );
    cli.token = Some("s3cret");
    assert_eq!(cli.run(&["state", "counter/k1"]).json(), json!({"count": 0}));
    cli.token = Some("wrong");
    cli.run(&["actors", "ls"]).fails(1);
}

#[test]
fn ca_init_and_issue_write_a_cluster_ca_and_node_certificates_that_load() {
    let dir = tempfile::tempdir().unwrap();
    let ca_dir = dir.path().join("ca");
    let run = |args: &[&str]| Command::new(tern_binary()).args(args).output().unwrap();
    let ca = ca_dir.to_str().unwrap();
    let init = run(&["ca", "init", "--dir", ca]);
    assert!(init.status.success(), "{}", String::from_utf8_lossy(&init.stderr));
    let issue = run(&["ca", "issue", "--dir", ca, "--node", "node-1"]);
    assert!(issue.status.success(), "{}", String::from_utf8_lossy(&issue.stderr));
    let identity = tern_replication::NodeIdentity::load(&ca_dir, "node-1").expect("the issued certificate loads");
    assert_eq!(identity.name(), "node-1");
    let again = run(&["ca", "init", "--dir", ca]);
    assert_eq!(again.status.code(), Some(1), "an existing CA is never overwritten");
    assert!(String::from_utf8_lossy(&again.stderr).contains("refusing to overwrite"));
    let bad = run(&["ca", "issue", "--dir", ca, "--node", "no spaces"]);
    assert_eq!(bad.status.code(), Some(1));
}
