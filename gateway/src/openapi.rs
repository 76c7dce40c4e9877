//! `GET /openapi.json`: the OpenAPI 3.0 document of the REST surface (public, no auth).
//!
//! The document is hand-written (`gateway/openapi.json`) and compiled in. It describes every route the router
//! serves (the test below fails when a route has no entry), its request bodies, its answers, the catalogue error
//! body `{group, code, message, metadata}` with its statuses, and the admin and inspector bearer tokens. The
//! WebSocket routes and an actor's raw HTTP handler are named in its description only. Schemathesis checks a live
//! node against it (`tests/openapi/run.sh`).

use axum::http::header;
use axum::response::IntoResponse;

/// The OpenAPI document, as served.
pub const DOCUMENT: &str = include_str!("../openapi.json");

/// `GET /openapi.json`.
pub(crate) async fn document() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], DOCUMENT)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use serde_json::Value;

    use super::DOCUMENT;

    fn document() -> Value {
        serde_json::from_str(DOCUMENT).expect("gateway/openapi.json is JSON")
    }

    /// `(method, path)` of every operation the document declares, paths with `{name}` parameters.
    fn documented() -> BTreeSet<(String, String)> {
        let doc = document();
        let paths = doc["paths"].as_object().expect("paths");
        let mut out = BTreeSet::new();
        for (path, item) in paths {
            for method in item.as_object().expect("path item").keys() {
                if ["get", "put", "post", "delete", "patch", "head", "options"].contains(&method.as_str()) {
                    out.insert((method.clone(), path.clone()));
                }
            }
        }
        out
    }

    /// `(method, path)` of every route `router` in lib.rs registers; `any` for `any(...)`.
    fn routed() -> BTreeSet<(String, String)> {
        let source = include_str!("lib.rs");
        let mut out = BTreeSet::new();
        for call in source.split(".route(\"").skip(1) {
            let path = &call[..call.find('"').expect("route path")];
            let handlers = &call[..call.find('\n').unwrap_or(call.len())];
            for method in ["get", "put", "post", "delete", "patch", "any"] {
                let called = |prefix: &str| handlers.contains(&format!("{prefix}{method}("));
                if called(" ") || called(".") || called("::") || called("(") {
                    out.insert((method.to_string(), path.to_string()));
                }
            }
        }
        out
    }

    /// `(method, path after /inspector)` of every inspector route `inspector_routes::route` serves, read from its
    /// match arms: `"/x" if method == Method::M` and `"/x" => get(..)` / `allowed(&[Method::M])`.
    fn inspector_routes() -> BTreeSet<(String, String)> {
        let source = include_str!("inspector_routes.rs");
        let body = &source[source.find("let request = match path {").expect("the route match")..];
        let body = &body[..body.find("fn json_object").expect("end of route")];
        let mut out = BTreeSet::new();
        let arms: Vec<&str> = body.split("\n        \"").skip(1).collect();
        for arm in arms {
            let path = &arm[..arm.find('"').expect("arm path")];
            let rest = &arm[path.len()..];
            let method = if let Some(guard) = rest.strip_prefix("\" if method == Method::") {
                guard[..guard.find(' ').expect("guard")].to_lowercase()
            } else if rest.contains("get(InspectRequest") && !rest.contains("allowed(&[") {
                "get".to_string()
            } else {
                let allowed = rest.find("allowed(&[Method::").expect("an allowed method") + "allowed(&[Method::".len();
                rest[allowed..allowed + rest[allowed..].find(']').expect("]")].to_lowercase()
            };
            out.insert((method, path.to_string()));
        }
        out.insert(("post".to_string(), "/action/{name}".to_string()));
        out
    }

    #[test]
    fn the_document_is_openapi_json() {
        let doc = document();
        assert_eq!(doc["openapi"], "3.0.3");
        assert!(doc["components"]["securitySchemes"]["adminToken"]["scheme"] == "bearer");
        let error = &doc["components"]["schemas"]["Error"]["required"];
        assert_eq!(error, &serde_json::json!(["group", "code", "message", "metadata"]));
        let operation_ids: Vec<&Value> = doc["paths"]
            .as_object()
            .unwrap()
            .values()
            .flat_map(|item| item.as_object().unwrap().values())
            .map(|operation| &operation["operationId"])
            .collect();
        assert!(operation_ids.iter().all(|id| id.is_string()), "every operation has an id");
        let unique: BTreeSet<_> = operation_ids.iter().map(|id| id.as_str().unwrap()).collect();
        assert_eq!(unique.len(), operation_ids.len(), "operation ids are unique");
    }

    #[test]
    fn every_route_of_the_router_is_documented() {
        let documented = documented();
        let routed = routed();
        assert!(routed.len() >= 18, "the router's routes were read: {routed:?}");
        for (method, path) in &routed {
            if method == "any" {
                let prefix = path.trim_end_matches("{*rest}");
                assert!(
                    documented.iter().any(|(_, p)| p.starts_with(prefix)),
                    "{path} has no operation in gateway/openapi.json"
                );
            } else {
                let want = (method.clone(), path.clone());
                assert!(documented.contains(&want), "{} {path} is not in gateway/openapi.json", method.to_uppercase());
            }
        }
        // And nothing outside /gateway is documented that the router does not serve.
        for (method, path) in documented.iter().filter(|(_, p)| !p.starts_with("/gateway/")) {
            assert!(routed.contains(&(method.clone(), path.clone())), "{method} {path} is documented but not routed");
        }
    }

    #[test]
    fn every_inspector_and_actor_route_is_documented() {
        let documented = documented();
        let inspector = inspector_routes();
        assert!(inspector.len() >= 16, "the inspector's routes were read: {inspector:?}");
        for (method, path) in inspector {
            let want = (method.clone(), format!("/gateway/{{actor_id}}/inspector{path}"));
            assert!(documented.contains(&want), "{} {} is not in gateway/openapi.json", method.to_uppercase(), want.1);
        }
        for (method, path) in
            [("post", "/action/{name}"), ("post", "/queue/{name}"), ("get", "/health"), ("get", "/metadata")]
        {
            let want = (method.to_string(), format!("/gateway/{{actor_id}}{path}"));
            assert!(documented.contains(&want), "{method} {} is not in gateway/openapi.json", want.1);
        }
    }

    #[test]
    fn every_reference_resolves() {
        let doc = document();
        let text = DOCUMENT;
        for reference in text.split("\"$ref\": \"#/").skip(1) {
            let pointer = &reference[..reference.find('"').unwrap()];
            let target = doc.pointer(&format!("/{pointer}"));
            assert!(target.is_some(), "#/{pointer} does not resolve");
        }
    }
}
