//! Which web pages may drive a node, with real processes: CORS on the public routes for the allowed origins, no
//! CORS and an outright refusal (`api.origin_not_allowed`) on the admin and inspector routes for the others, the
//! defaults of `tern dev` (any origin on the public routes) and `tern node` (none), and an empty admin token
//! refused as a usage error.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use reqwest::Method;
use reqwest::header::{
    ACCESS_CONTROL_ALLOW_CREDENTIALS, ACCESS_CONTROL_ALLOW_HEADERS, ACCESS_CONTROL_ALLOW_ORIGIN, HeaderMap,
};
use serde_json::{Value, json};
use tern_tests::cluster::{Ca, Node, plan, voters_arg};
use tern_tests::{Api, TernProcess};

fn example_binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_tern-example"))
}

const PAGE: &str = "https://page.example";
const APP: &str = "https://app.example.com";

/// A browser's preflight from `origin` for `method` on `path`, asking for RivetKit's request headers: the status
/// and the answer's headers.
async fn preflight(api: &Api, path: &str, origin: &str, method: &str) -> (u16, HeaderMap) {
    let request = api
        .http
        .request(Method::OPTIONS, format!("{}{path}", api.endpoint))
        .header("origin", origin)
        .header("access-control-request-method", method)
        .header("access-control-request-headers", "content-type,x-rivet-encoding,x-rivet-conn-params");
    let response = request.send().await.unwrap();
    (response.status().as_u16(), response.headers().clone())
}

fn header<'a>(headers: &'a HeaderMap, name: &reqwest::header::HeaderName) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// Asserts that `origin` may call the route: its origin granted, with credentials (RivetKit's client fetches with
/// `credentials: "include"`, which a browser completes only then) and RivetKit's headers.
fn assert_granted((status, headers): (u16, HeaderMap), origin: &str, what: &str) {
    assert_eq!(status, 200, "{what}");
    assert_eq!(header(&headers, &ACCESS_CONTROL_ALLOW_ORIGIN), Some(origin), "{what}: {headers:?}");
    assert_eq!(header(&headers, &ACCESS_CONTROL_ALLOW_CREDENTIALS), Some("true"), "{what}");
    let allowed = header(&headers, &ACCESS_CONTROL_ALLOW_HEADERS).unwrap_or_default();
    assert!(allowed.contains("x-rivet-encoding") && allowed.contains("x-rivet-conn-params"), "{what}: {allowed}");
}

/// Asserts that the answer grants no origin, so a browser keeps it from the page.
fn assert_no_cors(headers: &HeaderMap, what: &str) {
    assert_eq!(header(headers, &ACCESS_CONTROL_ALLOW_ORIGIN), None, "{what}: {headers:?}");
}

/// Asserts a refusal of a page's request to an admin route: 403 `api.origin_not_allowed`, no CORS.
fn assert_refused((status, headers): (u16, HeaderMap), what: &str) {
    assert_eq!(status, 403, "{what}");
    assert_no_cors(&headers, what);
}

/// The scenario: a `tern dev` started with no CORS option, a `sqlite` actor with a table. A page of an arbitrary
/// origin may call the public routes: preflights for `PUT /actors` and an action are granted (origin echoed,
/// credentials allowed, RivetKit's `x-rivet-*` headers allowed), and a real `PUT /actors` answers with the CORS
/// headers. The same page is refused (403, no CORS headers) on every admin and inspector route, preflight or
/// not: a listing, sleep, destroy, `/metrics`, `/cluster/members`, the inspector; and a simple `POST` to the
/// inspector's SQL route (which needs no preflight) does not run its `DROP TABLE`. Without an `Origin` header
/// (curl, the CLI) the admin routes answer as before. Before, every route mirrored any origin with credentials.
#[tokio::test]
async fn tern_dev_lets_any_page_call_the_public_routes_and_no_page_the_admin_routes() {
    let dir = tempfile::tempdir().unwrap();
    let node = TernProcess::start(&example_binary(), &dir.path().join("data"));
    let api = Api::new(&node);
    let db = api.actor("sqlite", "cors").await;
    api.call(&db, "execute", json!(["CREATE TABLE t (n INTEGER)"])).await.unwrap();

    assert_granted(preflight(&api, "/actors?namespace=default", PAGE, "PUT").await, PAGE, "PUT /actors");
    let action = format!("/gateway/{db}/action/query");
    assert_granted(preflight(&api, &action, PAGE, "POST").await, PAGE, "an action");
    assert_granted(preflight(&api, "/metadata?namespace=default", PAGE, "GET").await, PAGE, "/metadata");
    let create = json!({"name": "counter", "key": "from-a-page"});
    let created = api.http.put(format!("{}/actors", api.endpoint)).header("origin", PAGE).json(&create);
    let created = created.send().await.unwrap();
    assert_eq!(created.status().as_u16(), 200);
    assert_eq!(header(created.headers(), &ACCESS_CONTROL_ALLOW_ORIGIN), Some(PAGE));

    for (path, method) in [
        ("/actors?name=sqlite".to_string(), "GET"),
        (format!("/actors/{db}/sleep"), "POST"),
        (format!("/actors/{db}"), "DELETE"),
        ("/metrics".to_string(), "GET"),
        ("/cluster/members".to_string(), "GET"),
        (format!("/gateway/{db}/inspector/state"), "PATCH"),
        (format!("/gateway/{db}/inspector/database/execute"), "POST"),
    ] {
        assert_refused(preflight(&api, &path, PAGE, method).await, &format!("{method} {path}"));
    }
    let execute = format!("{}/gateway/{db}/inspector/database/execute", api.endpoint);
    let simple = api.http.post(&execute).header("origin", PAGE).header("content-type", "text/plain");
    let simple = simple.body(json!({"sql": "DROP TABLE t"}).to_string()).send().await.unwrap();
    let status = simple.status().as_u16();
    let body: Value = simple.json().await.unwrap();
    assert_eq!((status, &body["group"], &body["code"]), (403, &json!("api"), &json!("origin_not_allowed")), "{body}");
    assert!(api.call(&db, "query", json!(["SELECT count(*) AS n FROM t"])).await.is_ok(), "the table is still there");
    let metrics = api.http.get(format!("{}/metrics", api.endpoint)).send().await.unwrap();
    assert_eq!(metrics.status().as_u16(), 200, "without an Origin header the admin routes answer");
}

/// The scenario: a `tern dev --cors-origin https://app.example.com`. Pages of that origin may call every route,
/// the inspector's included (a browser-based inspector); listing an origin replaces the default, so a page of
/// another origin gets no CORS on the public routes and is refused on the admin ones.
#[tokio::test]
async fn a_listed_origin_may_call_every_route_and_replaces_the_default() {
    let dir = tempfile::tempdir().unwrap();
    let node = TernProcess::start_with(&example_binary(), &dir.path().join("data"), &["--cors-origin", APP]);
    let api = Api::new(&node);
    let id = api.actor("counter", "listed").await;
    let state = format!("/gateway/{id}/inspector/state");
    assert_granted(preflight(&api, &state, APP, "PATCH").await, APP, "the inspector, from the listed origin");
    assert_granted(preflight(&api, "/actors", APP, "PUT").await, APP, "PUT /actors, from the listed origin");
    let read = api.http.get(format!("{}{state}", api.endpoint)).header("origin", APP).send().await.unwrap();
    assert_eq!(read.status().as_u16(), 200);
    assert_eq!(header(read.headers(), &ACCESS_CONTROL_ALLOW_ORIGIN), Some(APP));

    let (status, headers) = preflight(&api, "/actors", PAGE, "PUT").await;
    assert_no_cors(&headers, &format!("PUT /actors from another origin ({status})"));
    assert_refused(preflight(&api, &state, PAGE, "PATCH").await, "the inspector, from another origin");
}

/// The scenario: a `tern node` (one node, its own voter) started with no CORS option and no gateway TLS. Pages of
/// any origin get no CORS, even on the public routes, and are refused on the admin ones; the node warns at start
/// that its gateway, and so the admin token, travels in clear text.
#[tokio::test]
async fn tern_node_allows_no_origin_by_default_and_warns_about_plain_http() {
    let (ca, work) = (Ca::new(), tempfile::tempdir().unwrap());
    let plans = plan(&[("solo-1", "iad")]);
    let node = Node::start(&ca, work.path(), &plans[0], &[], Some(&voters_arg(&[&plans[0]])), &[]);
    let api = Api::new(&node.process);
    let (status, headers) = preflight(&api, "/actors", PAGE, "PUT").await;
    assert_no_cors(&headers, &format!("PUT /actors ({status})"));
    assert_refused(preflight(&api, "/cluster/members", PAGE, "GET").await, "/cluster/members");
    let log = std::fs::read_to_string(node.process.log_path()).unwrap();
    assert!(log.contains("WARN") && log.contains("plain HTTP") && log.contains("--gateway-tls-cert"), "{log}");
}

/// The scenario: a `tern dev` (no admin token) serves the inspector page at `/ui/` (a redirect from `/ui`, the
/// files with a policy that keeps the page to its own origin), and the page's own origin may use the admin routes:
/// a sleep sent with `Origin: http://127.0.0.1:PORT` to that address succeeds. A page served under a name that
/// resolves to the node (DNS rebinding: its origin matches the `Host` it sends) is still refused, as is a page of
/// another port on the same host.
#[tokio::test]
async fn the_inspector_page_is_served_and_only_its_own_origin_passes_the_admin_routes() {
    let dir = tempfile::tempdir().unwrap();
    let node = TernProcess::start(&example_binary(), &dir.path().join("data"));
    let api = Api::new(&node);
    let no_redirects = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(tern_tests::REQUEST_CAP)
        .build()
        .unwrap();
    let moved = no_redirects.get(format!("{}/ui", api.endpoint)).send().await.unwrap();
    assert_eq!((moved.status().as_u16(), header(moved.headers(), &reqwest::header::LOCATION)), (308, Some("/ui/")));
    let page = api.http.get(format!("{}/ui/", api.endpoint)).send().await.unwrap();
    assert_eq!(page.status().as_u16(), 200);
    let policy = header(page.headers(), &reqwest::header::CONTENT_SECURITY_POLICY).unwrap_or_default().to_string();
    assert!(policy.contains("connect-src 'self'") && policy.contains("frame-ancestors 'none'"), "{policy}");
    assert!(page.text().await.unwrap().contains("<script type=\"module\" src=\"./app.js\">"));
    let script = api.http.get(format!("{}/ui/app.js", api.endpoint)).send().await.unwrap();
    assert_eq!(header(script.headers(), &reqwest::header::CONTENT_TYPE), Some("text/javascript; charset=utf-8"));
    let missing = api.http.get(format!("{}/ui/nope.js", api.endpoint)).send().await.unwrap();
    assert_eq!(missing.status().as_u16(), 404);

    let id = api.actor("counter", "own-origin").await;
    let own = api.endpoint.clone();
    let port = own.rsplit(':').next().unwrap().to_string();
    let sleep = |origin: String, host: Option<String>| {
        let mut request = api.http.post(format!("{}/actors/{id}/sleep", api.endpoint)).header("origin", origin);
        if let Some(host) = host {
            request = request.header("host", host);
        }
        async move {
            let response = request.json(&json!({})).send().await.unwrap();
            let status = response.status().as_u16();
            (status, response.json::<Value>().await.unwrap())
        }
    };
    let (status, body) = sleep(format!("http://rebind.example:{port}"), Some(format!("rebind.example:{port}"))).await;
    assert_eq!((status, &body["code"]), (403, &json!("origin_not_allowed")), "a rebinding name: {body}");
    let (status, body) = sleep("http://127.0.0.1:1".to_string(), None).await;
    assert_eq!((status, &body["code"]), (403, &json!("origin_not_allowed")), "another port: {body}");
    let (status, body) = sleep(own, None).await;
    assert_eq!((status, &body), (200, &json!({})), "the node's own origin");
}

/// Runs the example binary with `args` and `env`, which must exit by itself within ten seconds; returns its exit
/// code and stderr.
fn exits(args: &[&str], env: &[(&str, &str)]) -> (Option<i32>, String) {
    let mut child = Command::new(example_binary())
        .args(args)
        .env_remove("TERN_ADMIN_TOKEN")
        .envs(env.iter().copied())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > Duration::from_secs(10) {
            child.kill().unwrap();
            child.wait().unwrap();
            panic!("`{}` kept running instead of refusing its arguments", args.join(" "));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let output = child.wait_with_output().unwrap();
    (output.status.code(), String::from_utf8_lossy(&output.stderr).into_owned())
}

/// The scenario: `tern dev --admin-token ""`, the same through an empty `TERN_ADMIN_TOKEN`, and `tern node
/// --admin-token ""` each exit with the usage error code 2 and say the token is empty, instead of running a node
/// whose inspector opens to an empty bearer token.
#[test]
fn an_empty_admin_token_is_a_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let data = data.to_str().unwrap();
    let dev = ["dev", "--listen", "127.0.0.1:0", "--data-dir", data];
    for (args, env) in [
        ([&dev[..], &["--admin-token", ""]].concat(), vec![]),
        (dev.to_vec(), vec![("TERN_ADMIN_TOKEN", "")]),
        (
            vec!["node", "--region", "iad", "--admin-token", "", "--tls-ca", "a", "--tls-cert", "b", "--tls-key", "c"],
            vec![],
        ),
    ] {
        let (code, stderr) = exits(&args, &env);
        assert_eq!(code, Some(2), "{args:?} {env:?}: {stderr}");
        assert!(stderr.contains("the admin token is empty"), "{stderr}");
    }
}
