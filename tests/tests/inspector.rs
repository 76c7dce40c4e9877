//! The inspector HTTP API, admin auth and `/metrics` against a real node running the example application.

use std::path::PathBuf;

use reqwest::StatusCode;
use serde_json::{Value, json};
use tern_tests::TernProcess;

fn example_binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_tern-example"))
}

struct Node {
    process: TernProcess,
    http: reqwest::Client,
    _dir: tempfile::TempDir,
}

impl Node {
    fn start(args: &[&str]) -> Node {
        let dir = tempfile::tempdir().unwrap();
        let process = TernProcess::start_with(&example_binary(), &dir.path().join("data"), args);
        Node { process, http: tern_tests::http_client(), _dir: dir }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.process.endpoint())
    }

    async fn create(&self, name: &str, key: &str) -> String {
        let body = json!({"name": name, "key": key, "runner_name_selector": "default", "crash_policy": "sleep"});
        let created: Value = self.http.put(self.url("/actors")).json(&body).send().await.unwrap().json().await.unwrap();
        created["actor"]["actor_id"].as_str().unwrap().to_string()
    }

    async fn action(&self, id: &str, name: &str, args: Value) -> Value {
        let url = self.url(&format!("/gateway/{id}/action/{name}"));
        let answer: Value =
            self.http.post(url).json(&json!({ "args": args })).send().await.unwrap().json().await.unwrap();
        answer["output"].clone()
    }

    /// An inspector request with an optional bearer token: status and JSON body.
    async fn inspect(
        &self,
        method: reqwest::Method,
        id: &str,
        path: &str,
        body: Option<Value>,
        token: Option<&str>,
    ) -> (StatusCode, Value) {
        let mut request = self.http.request(method, self.url(&format!("/gateway/{id}/inspector{path}")));
        if let Some(body) = body {
            request = request.json(&body);
        }
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    async fn get(&self, id: &str, path: &str) -> (StatusCode, Value) {
        self.inspect(reqwest::Method::GET, id, path, None, None).await
    }

    async fn post(&self, id: &str, path: &str, body: Value) -> (StatusCode, Value) {
        self.inspect(reqwest::Method::POST, id, path, Some(body), None).await
    }
}

fn code(body: &Value) -> String {
    format!("{}.{}", body["group"].as_str().unwrap_or("?"), body["code"].as_str().unwrap_or("?"))
}

#[tokio::test]
async fn every_inspector_route_answers_with_rivetkits_shapes() {
    let node = Node::start(&[]);
    let journal = node.create("journal", "inspected").await;
    node.action(&journal, "write", json!(["first"])).await;

    let (status, summary) = node.get(&journal, "/summary").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(summary["state"], json!({"title": "", "entries": ["first"]}));
    assert_eq!(summary["isStateEnabled"], true);
    let stateless = node.create("sqlite", "stateless").await;
    assert_eq!(node.get(&stateless, "/state").await.1, json!({"state": null, "isStateEnabled": false}));
    assert_eq!(summary["isDatabaseEnabled"], true);
    assert!(summary["rpcs"].as_array().unwrap().contains(&json!("write")));

    let (_, rpcs) = node.get(&journal, "/rpcs").await;
    assert_eq!(rpcs["rpcs"], summary["rpcs"]);

    let (status, patched) = node
        .inspect(
            reqwest::Method::PATCH,
            &journal,
            "/state",
            Some(json!({"state": {"title": "T", "entries": ["x"]}})),
            None,
        )
        .await;
    assert_eq!((status, patched), (StatusCode::OK, json!({"ok": true})));
    let (_, state) = node.get(&journal, "/state").await;
    assert_eq!(state, json!({"state": {"title": "T", "entries": ["x"]}, "isStateEnabled": true}));
    assert_eq!(node.action(&journal, "read", json!([])).await, json!(["T", ["x"]]), "the actor sees the patched state");
    let (status, bad) =
        node.inspect(reqwest::Method::PATCH, &journal, "/state", Some(json!({"state": {"entries": 5}})), None).await;
    assert_eq!((status, code(&bad)), (StatusCode::BAD_REQUEST, "actor.invalid_request".into()));

    let (status, output) = node.post(&journal, "/action/write", json!({"args": ["second"]})).await;
    assert_eq!((status, output), (StatusCode::OK, json!({"output": 2})));
    let (status, missing) = node.post(&journal, "/action/nope", json!({"args": []})).await;
    assert_eq!((status, code(&missing)), (StatusCode::NOT_FOUND, "actor.action_not_found".into()));

    let (_, connections) = node.get(&journal, "/connections").await;
    assert_eq!(connections, json!({"connections": []}));

    let (_, schema) = node.get(&journal, "/database/schema").await;
    let tables = schema["schema"]["tables"].as_array().unwrap();
    let hooks = tables.iter().find(|t| t["table"]["name"] == "hooks").expect("the hooks table is listed");
    assert_eq!(hooks["table"], json!({"schema": "main", "name": "hooks", "type": "table"}));
    assert_eq!(hooks["columns"][1]["name"], "hook");
    assert!(
        tables.iter().all(|t| !t["table"]["name"].as_str().unwrap().starts_with("_tern_")),
        "internal tables are hidden"
    );

    let (_, rows) = node.get(&journal, "/database/rows?table=hooks&limit=2&offset=1").await;
    assert_eq!(rows["rows"], json!([{"seq": 2, "hook": "create"}, {"seq": 3, "hook": "wake"}]));
    // An out-of-range limit is clamped, not refused: every row comes back, as many as the schema counts.
    let (status, all) = node.get(&journal, "/database/rows?table=hooks&limit=100000").await;
    assert_eq!(status, StatusCode::OK, "{all}");
    let all = all["rows"].as_array().unwrap();
    assert_eq!(json!(all.len()), hooks["records"], "{all:?}");
    assert_eq!(all[..3], [json!({"seq": 1, "hook": "migrate"}), rows["rows"][0].clone(), rows["rows"][1].clone()]);

    node.action(&journal, "hooks", json!([])).await;
    let (status, traces) = node.get(&journal, "/traces?startMs=0&limit=500").await;
    assert_eq!(status, StatusCode::OK);
    let spans = traces["otlp"]["resourceSpans"][0]["scopeSpans"][0]["spans"].as_array().unwrap().clone();
    let write = spans.iter().find(|s| s["name"] == "action write").expect("a span for the write action");
    assert_eq!(write["kind"], 2);
    assert_eq!(write["traceId"].as_str().unwrap().len(), 32);
    // The `hooks` action's one query is its child span, in its trace, naming the statement.
    let action = spans.iter().find(|s| s["name"] == "action hooks").expect("a span for the hooks action");
    let children: Vec<&Value> = spans.iter().filter(|s| s["parentSpanId"] == action["spanId"]).collect();
    assert_eq!(children.len(), 1, "{children:?}");
    assert_eq!((&children[0]["name"], &children[0]["traceId"]), (&json!("sql"), &action["traceId"]));
    assert_eq!(
        children[0]["attributes"],
        json!([{"key": "db.statement", "value": {"stringValue": "SELECT hook FROM hooks ORDER BY seq"}}])
    );
    assert_eq!(traces["clamped"], false);
    let (_, one) = node.get(&journal, "/traces?limit=1").await;
    assert_eq!(one["otlp"]["resourceSpans"][0]["scopeSpans"][0]["spans"].as_array().unwrap().len(), 1);
    assert_eq!(one["clamped"], true);

    let (status, nowhere) = node.get(&journal, "/nowhere").await;
    assert_eq!((status, code(&nowhere)), (StatusCode::NOT_FOUND, "actor.not_found".into()));

    let export =
        node.http.get(node.url(&format!("/gateway/{journal}/inspector/database/export"))).send().await.unwrap();
    assert_eq!(export.status(), StatusCode::OK);
    let bytes = export.bytes().await.unwrap();
    assert!(bytes.starts_with(b"SQLite format 3\0"), "the export is an SQLite database");
}

#[tokio::test]
async fn database_execute_reads_writes_and_reports_errors() {
    let node = Node::start(&[]);
    let db = node.create("sqlite", "tenant").await;
    node.action(&db, "execute", json!(["CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT, data BLOB)"])).await;
    let (status, written) = node
        .post(
            &db,
            "/database/execute",
            json!({"sql": "INSERT INTO items (name, data) VALUES (?, ?)", "args": ["a", ["$Uint8Array", "AQI="]]}),
        )
        .await;
    assert_eq!((status, written), (StatusCode::OK, json!({"rows": []})));
    let (_, named) = node
        .post(
            &db,
            "/database/execute",
            json!({"sql": "INSERT INTO items (name) VALUES (:name) RETURNING id", "properties": {"name": "b"}}),
        )
        .await;
    assert_eq!(named, json!({"rows": [{"id": 2}]}));
    let seen = node.action(&db, "query", json!(["SELECT name, data FROM items ORDER BY id"])).await;
    assert_eq!(
        seen,
        json!([{"name": "a", "data": ["$Uint8Array", "AQI="]}, {"name": "b", "data": null}]),
        "the actor sees inspector writes"
    );

    let (status, err) = node.post(&db, "/database/execute", json!({"sql": "SELEC 1"})).await;
    assert_eq!((status, code(&err)), (StatusCode::BAD_REQUEST, "database.sql_error".into()));
    assert!(err["message"].as_str().unwrap().contains("syntax error"), "{err}");
    let (status, err) = node
        .post(&db, "/database/execute", json!({"sql": "INSERT INTO items (name) VALUES ('x'); DELETE FROM items"}))
        .await;
    assert_eq!(
        (status, code(&err)),
        (StatusCode::BAD_REQUEST, "database.sql_error".into()),
        "several statements are refused, not half-run"
    );
    let (status, err) = node.post(&db, "/database/execute", json!({"sql": "  -- nothing "})).await;
    assert_eq!((status, code(&err)), (StatusCode::BAD_REQUEST, "actor.invalid_request".into()));
    let (status, err) = node.get(&db, "/database/rows?table=ghosts").await;
    assert_eq!((status, code(&err)), (StatusCode::NOT_FOUND, "database.table_not_found".into()));
    // The runtime's tables are read-only to the inspector.
    let (status, rows) =
        node.post(&db, "/database/execute", json!({"sql": "SELECT count(*) AS n FROM _tern_state"})).await;
    assert_eq!((status, &rows["rows"]), (StatusCode::OK, &json!([{ "n": 1 }])));
    let (status, err) = node.post(&db, "/database/execute", json!({"sql": "DELETE FROM _tern_state"})).await;
    assert_eq!((status, code(&err)), (StatusCode::FORBIDDEN, "database.statement_not_allowed".into()));
    let malformed = node
        .http
        .post(node.url(&format!("/gateway/{db}/inspector/database/execute")))
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(malformed.status(), StatusCode::BAD_REQUEST);
    assert_eq!(code(&malformed.json().await.unwrap()), "actor.invalid_request");
    let (_, rows) = node.get(&db, "/database/rows?table=items").await;
    assert_eq!(rows["rows"].as_array().unwrap().len(), 2, "failed statements changed nothing");
}

#[tokio::test]
async fn with_an_admin_token_admin_and_inspector_routes_need_a_token() {
    let node = Node::start(&["--admin-token", "admin-s3cret"]);
    let counter = node.create("counter", "guarded").await;
    assert_eq!(node.action(&counter, "increment", json!([3])).await, json!(3), "public routes stay open");

    let (status, err) = node.get(&counter, "/state").await;
    assert_eq!((status, code(&err)), (StatusCode::UNAUTHORIZED, "inspector.unauthorized".into()));
    let (status, err) = node.inspect(reqwest::Method::GET, &counter, "/state", None, Some("wrong")).await;
    assert_eq!((status, code(&err)), (StatusCode::UNAUTHORIZED, "inspector.unauthorized".into()));
    let (status, state) = node.inspect(reqwest::Method::GET, &counter, "/state", None, Some("admin-s3cret")).await;
    assert_eq!((status, state["state"].clone()), (StatusCode::OK, json!({"count": 3})));

    // Admin routes refuse without the admin token.
    let listing = node.http.get(node.url("/actors")).send().await.unwrap();
    assert_eq!(listing.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(code(&listing.json().await.unwrap()), "api.unauthorized");
    let kv = node.http.get(node.url(&format!("/actors/{counter}/kv/keys/Aw=="))).send().await.unwrap();
    assert_eq!(kv.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(code(&kv.json().await.unwrap()), "api.unauthorized");
    let destroy = node.http.delete(node.url(&format!("/actors/{counter}"))).send().await.unwrap();
    assert_eq!(destroy.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(code(&destroy.json().await.unwrap()), "api.unauthorized");

    // The admin reads the actor's own inspector token as KV key 0x03; that token opens the inspector.
    let kv: Value = node
        .http
        .get(node.url(&format!("/actors/{counter}/kv/keys/Aw==")))
        .bearer_auth("admin-s3cret")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    use base64::Engine;
    let token =
        String::from_utf8(base64::engine::general_purpose::STANDARD.decode(kv["value"].as_str().unwrap()).unwrap())
            .unwrap();
    assert!(kv["update_ts"].as_i64().unwrap() > 0);
    let (status, state) = node.inspect(reqwest::Method::GET, &counter, "/state", None, Some(&token)).await;
    assert_eq!((status, state["state"].clone()), (StatusCode::OK, json!({"count": 3})));
    let other = node.create("counter", "other").await;
    let (status, err) = node.inspect(reqwest::Method::GET, &other, "/state", None, Some(&token)).await;
    assert_eq!(
        (status, code(&err)),
        (StatusCode::UNAUTHORIZED, "inspector.unauthorized".into()),
        "one actor's token does not open another"
    );
    let missing = node
        .http
        .get(node.url(&format!("/actors/{counter}/kv/keys/AQ==")))
        .bearer_auth("admin-s3cret")
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    assert_eq!(code(&missing.json().await.unwrap()), "kv.not_found");

    let listing: Value =
        node.http.get(node.url("/actors")).bearer_auth("admin-s3cret").send().await.unwrap().json().await.unwrap();
    assert_eq!(listing["actors"].as_array().unwrap().len(), 2);
}

/// The value of the sample `name{labels}` in Prometheus text, 0 when absent.
fn sample(metrics: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    metrics
        .lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| line.rsplit_once(' '))
        .filter(|(series, _)| {
            series.split('{').next() == Some(name)
                && labels.iter().all(|(k, v)| series.contains(&format!("{k}=\"{v}\"")))
        })
        .map(|(_, value)| value.parse::<f64>().unwrap())
        .sum()
}

#[tokio::test]
async fn metrics_move_with_traffic() {
    let node = Node::start(&[]);
    let scrape = || async {
        let response = node.http.get(node.url("/metrics")).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        response.text().await.unwrap()
    };
    let before = scrape().await;
    let counter = node.create("counter", "metered").await;
    for _ in 0..5 {
        node.action(&counter, "increment", json!([1])).await;
    }
    node.http
        .post(node.url(&format!("/gateway/{counter}/action/nope")))
        .json(&json!({"args": []}))
        .send()
        .await
        .unwrap();
    let after = scrape().await;
    let ok = [("actor", "counter"), ("action", "increment"), ("outcome", "ok")];
    assert_eq!(sample(&after, "tern_actions_total", &ok) - sample(&before, "tern_actions_total", &ok), 5.0, "{after}");
    assert_eq!(sample(&after, "tern_actors_created_total", &[("actor", "counter")]), 1.0);
    assert_eq!(sample(&after, "tern_actors", &[("actor", "counter"), ("status", "awake")]), 1.0);
    assert!(sample(&after, "tern_storage_bytes", &[]) > 0.0);
    node.http.post(node.url(&format!("/actors/{counter}/sleep"))).json(&json!({})).send().await.unwrap();
    node.action(&counter, "increment", json!([1])).await;
    let woken = scrape().await;
    assert_eq!(sample(&woken, "tern_actor_wakes_total", &[("actor", "counter")]), 1.0);
    assert_eq!(sample(&woken, "tern_actor_sleeps_total", &[("actor", "counter")]), 1.0);
}

/// Span names in an actor's traces.
async fn span_names(node: &Node, id: &str) -> Vec<String> {
    let (_, traces) = node.get(id, "/traces?limit=1000").await;
    traces["otlp"]["resourceSpans"][0]["scopeSpans"][0]["spans"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn queue_routes_and_spans_for_queue_messages_and_workflow_steps() {
    let node = Node::start(&[]);
    let worker = node.create("worker", "inspected").await;
    let (status, sent) = node.post(&worker, "/queue", json!({"name": "jobs", "body": 3})).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(sent["name"], "jobs");
    assert!(sent["id"].is_string() && sent["createdAtMs"].is_i64());
    tern_tests::eventually(
        "the worker processed the inspector's message",
        std::time::Duration::from_secs(30),
        || async { (node.action(&worker, "total", json!([])).await == json!(3)).then_some(()) },
    )
    .await;
    let names = span_names(&node, &worker).await;
    assert!(names.contains(&"queue message jobs".to_string()), "{names:?}");
    let metrics = node.http.get(node.url("/metrics")).send().await.unwrap().text().await.unwrap();
    assert_eq!(sample(&metrics, "tern_queue_messages_sent_total", &[("actor", "worker")]), 1.0);
    assert_eq!(sample(&metrics, "tern_queue_messages_consumed_total", &[("actor", "worker")]), 1.0);
    let (status, err) = node.post(&worker, "/queue", json!({"name": "elsewhere", "body": 1})).await;
    assert_eq!((status, code(&err)), (StatusCode::BAD_REQUEST, "queue.unknown_queue".into()));

    // The saga consumes one signal (after its nap); a second one stays queued until reset.
    let saga = node.create("saga", "inspected").await;
    node.post(&saga, "/queue", json!({"name": "signals", "body": "go"})).await;
    node.post(&saga, "/queue", json!({"name": "signals", "body": "extra"})).await;
    let queue = tern_tests::eventually("one signal was consumed", std::time::Duration::from_secs(30), || async {
        let (_, queue) = node.get(&saga, "/queue?limit=5000").await;
        (queue["size"] == 1).then_some(queue)
    })
    .await;
    assert_eq!((queue["maxSize"].clone(), queue["truncated"].clone()), (json!(1000), json!(false)));
    assert_eq!(queue["messages"][0]["name"], "signals");
    let (status, reset) = node.inspect(reqwest::Method::DELETE, &saga, "/queue", None, None).await;
    assert_eq!((status, reset), (StatusCode::OK, json!({})));
    assert_eq!(node.get(&saga, "/queue").await.1["size"], 0);
    let names = span_names(&node, &saga).await;
    assert!(names.contains(&"workflow step first#0".to_string()), "{names:?}");
}

/// The bytes of an actor's write-ahead log, which every commit that changes anything appends to.
fn wal_bytes(node: &Node, id: &str) -> Vec<u8> {
    let shard: String = id.chars().take(2).collect();
    let wal = node.process.data_dir().join("actors").join(shard).join(format!("{id}.db-wal"));
    std::fs::read(&wal).unwrap_or_else(|e| panic!("{}: {e}", wal.display()))
}

#[tokio::test]
async fn a_turn_that_changes_nothing_commits_nothing_and_keeps_its_spans() {
    let node = Node::start(&[]);
    let counter = node.create("counter", "read-only").await;
    assert_eq!(node.action(&counter, "increment", json!([1])).await, json!(1));
    let before = wal_bytes(&node, &counter);
    for _ in 0..20 {
        assert_eq!(node.action(&counter, "getCount", json!([])).await, json!(1));
    }
    assert!(wal_bytes(&node, &counter) == before, "a read-only action wrote to the database");
    assert_eq!(node.action(&counter, "increment", json!([1])).await, json!(2));
    assert!(wal_bytes(&node, &counter) != before, "a writing action must commit");

    // The spans of the read-only turns were kept, then written by the next turn that wrote: the actor sleeps
    // (its last turn writes whatever is still unsaved) and the inspector reads them from the woken actor's file.
    for _ in 0..3 {
        node.action(&counter, "getCount", json!([])).await;
    }
    let slept = node.http.post(node.url(&format!("/actors/{counter}/sleep"))).json(&json!({})).send().await.unwrap();
    assert!(slept.status().is_success());
    let names = span_names(&node, &counter).await;
    assert_eq!(names.iter().filter(|n| *n == "action getCount").count(), 23, "{names:?}");
    assert_eq!(names.iter().filter(|n| *n == "action increment").count(), 2, "{names:?}");
}
