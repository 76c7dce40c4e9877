//! Which web pages may call the gateway from a browser.
//!
//! Routes come in two kinds. *Public* routes are the ones RivetKit's clients use: `/metadata`, `/health`,
//! `PUT`/`POST /actors`, `GET /actors` by key or by id, `/actors/names`, and the actor routes under
//! `/gateway/{actor}/...` except the inspector. *Admin* routes are what an operator uses: listing actors,
//! `/actors/{id}` and everything under it (destroy, sleep, KV reads), `/metrics`, `/cluster/...`, and the
//! inspector (`/gateway/{actor}/inspector/...`).
//!
//! A browser origin is allowed on a route when it is listed ([`CorsOrigins::listed`]: every route), or when any
//! origin is allowed on public routes ([`CorsOrigins::any_on_public_routes`], `tern dev`'s default) and the route
//! is public. An allowed origin gets CORS answers that grant what it asks for (methods, request headers such as
//! RivetKit's `x-rivet-*`), credentials included: RivetKit's client fetches `/actors` and `/metadata` with
//! `credentials: "include"`, which browsers complete only with `Access-Control-Allow-Credentials: true`. Tern itself
//! sets no cookies, so that grants a page nothing it could not do without them.
//!
//! Another origin gets no CORS headers, so the browser does not let its page read the answers; and on an admin
//! route its requests are refused outright with `api.origin_not_allowed` (403), preflight or not, because CORS
//! only hides answers: without the refusal a page could still *send* simple requests (a `POST` with a text body)
//! to a development node's open admin and inspector routes. Requests without an `Origin` header (curl, the `tern`
//! command line, server-side clients) are not affected.
//!
//! The node's own origin is not refused: the inspector page ([`crate::ui`], served at `/ui/`) calls the admin and
//! inspector routes from the origin that served it, and browsers send `Origin` with such requests too (every
//! `POST`, `PATCH` or `DELETE`). A request's origin is the node's own when it is the gateway's scheme and the
//! request's `Host` ([`own_origin`]); the routes still need their token. On a node without an admin token, that
//! holds only for a `Host` that is an IP address or `localhost`: under any other name a page could be a DNS
//! rebinding attacker's, whose origin matches the `Host` its requests carry.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::header::{ACCESS_CONTROL_REQUEST_METHOD, HOST, ORIGIN};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, Uri};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tern_proto::ClientError;
use tower_http::cors::{AllowCredentials, AllowHeaders, AllowMethods, AllowOrigin, CorsLayer};

use crate::error_response::ErrorResponse;

/// The `--cors-origin` value that allows any origin on the public routes.
pub const ANY_ORIGIN: &str = "*";

/// The browser origins allowed to call the gateway.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CorsOrigins {
    /// Any origin may call the public routes.
    pub any_on_public_routes: bool,
    /// These origins (`https://app.example.com`, as browsers send them) may call every route; admin and inspector
    /// routes still need their token.
    pub listed: Vec<String>,
}

impl CorsOrigins {
    /// The origins `values` allow ([`ANY_ORIGIN`] or origins, as [`parse_origin`] returns them); with no value at
    /// all, any origin on the public routes if `any_by_default`, else none.
    pub fn from_values(values: &[String], any_by_default: bool) -> CorsOrigins {
        let listed: Vec<String> = values.iter().filter(|v| *v != ANY_ORIGIN).cloned().collect();
        let any_on_public_routes = values.iter().any(|v| v == ANY_ORIGIN) || (values.is_empty() && any_by_default);
        CorsOrigins { any_on_public_routes, listed }
    }

    fn is_listed(&self, origin: &HeaderValue) -> bool {
        self.listed.iter().any(|listed| listed.as_bytes() == origin.as_bytes())
    }

    /// Whether a request from `origin` may be answered with CORS headers.
    fn allows(&self, origin: &HeaderValue, method: &Method, uri: &Uri, headers: &HeaderMap) -> bool {
        self.is_listed(origin) || (self.any_on_public_routes && !is_admin(method, uri, headers))
    }
}

/// A `--cors-origin` value: [`ANY_ORIGIN`], or an origin `scheme://host[:port]` (http or https, no path, query or
/// user), returned as browsers send it in `Origin` (lowercase, without the scheme's default port).
pub fn parse_origin(value: &str) -> Result<String, String> {
    if value == ANY_ORIGIN {
        return Ok(value.to_string());
    }
    let expected = || format!("`{value}` is not an origin: expected {ANY_ORIGIN} or http[s]://HOST[:PORT]");
    let uri: Uri = value.parse().map_err(|_| expected())?;
    let (Some(scheme), Some(authority)) = (uri.scheme_str(), uri.authority()) else { return Err(expected()) };
    let scheme = scheme.to_ascii_lowercase();
    let bare = uri.path() == "/" && !value.ends_with('/') && uri.query().is_none();
    if !matches!(scheme.as_str(), "http" | "https") || !bare || authority.as_str().contains('@') {
        return Err(expected());
    }
    let default_port = if scheme == "https" { 443 } else { 80 };
    let host = authority.host().to_ascii_lowercase();
    Ok(match authority.port_u16() {
        Some(port) if port != default_port => format!("{scheme}://{host}:{port}"),
        _ => format!("{scheme}://{host}"),
    })
}

/// Whether a request is for an admin route (see the module's documentation). A preflight is classified by the
/// method it asks for.
fn is_admin(method: &Method, uri: &Uri, headers: &HeaderMap) -> bool {
    let path = uri.path();
    if path == "/actors" {
        let asked = match *method {
            Method::OPTIONS => {
                headers.get(ACCESS_CONTROL_REQUEST_METHOD).and_then(|m| Method::from_bytes(m.as_bytes()).ok())
            }
            _ => Some(method.clone()),
        };
        return matches!(asked, Some(Method::GET | Method::HEAD)) && crate::rest::lists_actors(uri);
    }
    (path.starts_with("/actors/") && path != "/actors/names")
        || path == "/metrics"
        || path == "/cluster"
        || path.starts_with("/cluster/")
        || crate::gateway_routes::is_inspector(path)
}

/// The CORS layer: grants what an allowed origin asks for, credentials included, and nothing to other origins.
pub(crate) fn layer(origins: Arc<CorsOrigins>) -> CorsLayer {
    let allows =
        move |origin: &HeaderValue, parts: &Parts| origins.allows(origin, &parts.method, &parts.uri, &parts.headers);
    let credentials = allows.clone();
    CorsLayer::new()
        .allow_origin(AllowOrigin::predicate(allows))
        .allow_credentials(AllowCredentials::predicate(credentials))
        .allow_methods(AllowMethods::mirror_request())
        .allow_headers(AllowHeaders::mirror_request())
}

/// Who may reach the admin routes from a browser: the listed origins and the node's own.
#[derive(Debug, Clone)]
pub(crate) struct AdminOrigins {
    pub origins: Arc<CorsOrigins>,
    /// Whether the gateway serves HTTPS: the scheme of its own origin.
    pub https: bool,
    /// Whether the admin routes need a token (see the module's documentation for what changes without one).
    pub token_required: bool,
}

/// The gateway's own origin as a request names it (the gateway's scheme and the request's `Host`, normalized as
/// [`parse_origin`] does), or `None` when the request has no usable `Host`, or when no token is required and the
/// host is neither an IP address nor `localhost`.
fn own_origin(uri: &Uri, headers: &HeaderMap, https: bool, token_required: bool) -> Option<String> {
    let host = match headers.get(HOST) {
        Some(host) => host.to_str().ok()?.to_string(),
        None => uri.authority()?.as_str().to_string(),
    };
    let scheme = if https { "https" } else { "http" };
    let origin = parse_origin(&format!("{scheme}://{host}")).ok()?;
    let name = origin.parse::<Uri>().ok()?.host()?.trim_start_matches('[').trim_end_matches(']').to_string();
    let pinned = name == "localhost" || name.parse::<std::net::IpAddr>().is_ok();
    (token_required || pinned).then_some(origin)
}

/// Middleware: refuses a request to an admin route from a browser origin that is neither listed nor the node's
/// own, with `api.origin_not_allowed` (403), before it reaches the route (or the CORS layer, for a preflight).
pub(crate) async fn refuse_unlisted_admin(
    State(admin): State<Arc<AdminOrigins>>,
    request: Request,
    next: Next,
) -> Response {
    if let Some(origin) = request.headers().get(ORIGIN)
        && !admin.origins.is_listed(origin)
        && is_admin(request.method(), request.uri(), request.headers())
        && own_origin(request.uri(), request.headers(), admin.https, admin.token_required)
            .is_none_or(|own| own.as_bytes() != origin.as_bytes())
    {
        let origin = String::from_utf8_lossy(origin.as_bytes());
        return ErrorResponse(ClientError::origin_not_allowed(&origin)).into_response();
    }
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn admin(method: Method, uri: &str) -> bool {
        is_admin(&method, &uri.parse().unwrap(), &HeaderMap::new())
    }

    fn preflight_is_admin(uri: &str, asked: &str) -> bool {
        let mut headers = HeaderMap::new();
        headers.insert(ACCESS_CONTROL_REQUEST_METHOD, HeaderValue::from_str(asked).unwrap());
        is_admin(&Method::OPTIONS, &uri.parse().unwrap(), &headers)
    }

    #[test]
    fn admin_and_inspector_routes_are_told_from_public_ones() {
        for public in [
            (Method::GET, "/metadata"),
            (Method::GET, "/health"),
            (Method::PUT, "/actors?namespace=default"),
            (Method::POST, "/actors"),
            (Method::GET, "/actors?name=counter&key=k"),
            (Method::GET, "/actors?actor_ids=a,b"),
            (Method::GET, "/actors?actor_id=a"),
            (Method::GET, "/actors/names"),
            (Method::POST, "/gateway/abc/action/increment"),
            (Method::GET, "/gateway/abc/connect"),
            (Method::GET, "/gateway/counter/metadata?rvt-namespace=default&rvt-method=get"),
            (Method::POST, "/gateway/abc/request/inspector"),
            (Method::GET, "/gateway/abc/inspectors"),
        ] {
            assert!(!admin(public.0.clone(), public.1), "{public:?} is public");
        }
        for admin_route in [
            (Method::GET, "/actors"),
            (Method::GET, "/actors?name=counter"),
            (Method::DELETE, "/actors/abc"),
            (Method::POST, "/actors/abc/sleep"),
            (Method::GET, "/actors/abc/kv/keys/Aw=="),
            (Method::GET, "/metrics"),
            (Method::GET, "/cluster/members"),
            (Method::GET, "/gateway/abc/inspector"),
            (Method::POST, "/gateway/abc/inspector/database/execute"),
            (Method::GET, "/gateway/counter/inspector/state?rvt-namespace=default&rvt-method=get&rvt-key=k"),
        ] {
            assert!(admin(admin_route.0.clone(), admin_route.1), "{admin_route:?} is admin");
        }
        assert!(preflight_is_admin("/actors", "GET"), "a preflight for a listing");
        assert!(!preflight_is_admin("/actors", "PUT"), "a preflight for a create");
        assert!(preflight_is_admin("/gateway/abc/inspector/state", "PATCH"));
    }

    #[test]
    fn the_nodes_own_origin_is_its_scheme_and_the_requests_host() {
        let own = |host: &str, https, token_required| {
            let mut headers = HeaderMap::new();
            headers.insert(HOST, HeaderValue::from_str(host).unwrap());
            own_origin(&"/actors".parse().unwrap(), &headers, https, token_required)
        };
        assert_eq!(own("127.0.0.1:6420", false, false).as_deref(), Some("http://127.0.0.1:6420"));
        assert_eq!(own("[::1]:6420", false, false).as_deref(), Some("http://[::1]:6420"));
        assert_eq!(own("LocalHost:6420", true, false).as_deref(), Some("https://localhost:6420"));
        assert_eq!(own("node.example:443", true, true).as_deref(), Some("https://node.example"));
        assert_eq!(own("node.example", false, true).as_deref(), Some("http://node.example"));
        // Without a token, a name could be a DNS rebinding page's own origin.
        assert_eq!(own("rebind.example:6420", false, false), None);
        assert_eq!(own("127.0.0.1:6420/x", false, true), None);
        let from_uri = own_origin(&"http://10.0.0.1:6420/actors".parse().unwrap(), &HeaderMap::new(), false, false);
        assert_eq!(from_uri.as_deref(), Some("http://10.0.0.1:6420"));
    }

    #[test]
    fn origins_are_normalized_as_browsers_send_them() {
        assert_eq!(parse_origin("*").unwrap(), "*");
        assert_eq!(parse_origin("https://App.Example.com").unwrap(), "https://app.example.com");
        assert_eq!(parse_origin("https://app.example.com:443").unwrap(), "https://app.example.com");
        assert_eq!(parse_origin("http://localhost:5173").unwrap(), "http://localhost:5173");
        assert_eq!(parse_origin("http://[::1]:80").unwrap(), "http://[::1]");
        for bad in [
            "",
            "app.example.com",
            "ftp://a.example",
            "https://a.example/",
            "https://a.example/x",
            "https://u@a.example",
            "https://a.example?x=1",
            "null",
        ] {
            assert!(parse_origin(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn listed_origins_everywhere_any_origin_only_on_public_routes() {
        let dev = CorsOrigins::from_values(&[], true);
        assert_eq!(dev, CorsOrigins { any_on_public_routes: true, listed: vec![] });
        let node = CorsOrigins::from_values(&[], false);
        assert_eq!(node, CorsOrigins::default());
        let values = ["https://app.example.com".to_string(), ANY_ORIGIN.to_string()];
        let both = CorsOrigins::from_values(&values, false);
        assert_eq!(both, CorsOrigins { any_on_public_routes: true, listed: vec![values[0].clone()] });
        let listed = CorsOrigins::from_values(&values[..1], true);
        assert!(!listed.any_on_public_routes, "listing origins replaces the default");

        let (app, evil) =
            (HeaderValue::from_static("https://app.example.com"), HeaderValue::from_static("https://evil.example"));
        let (public, admin): (Uri, Uri) = ("/actors".parse().unwrap(), "/metrics".parse().unwrap());
        let allows =
            |origins: &CorsOrigins, origin, method, uri| origins.allows(origin, &method, uri, &HeaderMap::new());
        assert!(allows(&dev, &evil, Method::PUT, &public) && !allows(&dev, &evil, Method::GET, &admin));
        assert!(!allows(&node, &app, Method::PUT, &public) && !allows(&node, &app, Method::GET, &admin));
        assert!(allows(&listed, &app, Method::PUT, &public) && allows(&listed, &app, Method::GET, &admin));
        assert!(!allows(&listed, &evil, Method::PUT, &public));
    }
}
