//! `/ui/`: the inspector web page, served from files compiled into the binary (`gateway/ui/`, plain HTML, CSS and
//! JavaScript modules, no build step and nothing fetched from elsewhere).
//!
//! The files are public, like `/health`: the page holds no data of its own. Everything it shows comes from the
//! admin and inspector routes, which it calls from the node's own origin with the admin token the operator types
//! in (kept in the tab's `sessionStorage`), as `Authorization: Bearer`, exactly like the `tern` command line; a
//! node without an admin token (`tern dev`) answers it without one. See [`crate::cors`] for why the node's own
//! origin may call its admin routes.
//!
//! Every answer forbids framing and sniffing and limits the page to this origin (`Content-Security-Policy`).

use axum::extract::Path;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use tern_proto::ClientError;

use crate::error_response::ErrorResponse;

/// Where the page lives.
pub const UI_PATH: &str = "/ui/";

/// One file of the page.
struct Asset {
    name: &'static str,
    content_type: &'static str,
    body: &'static str,
}

macro_rules! asset {
    ($name:literal, $content_type:expr) => {
        Asset { name: $name, content_type: $content_type, body: include_str!(concat!("../ui/", $name)) }
    };
}

const JS: &str = "text/javascript; charset=utf-8";

/// Every file of the page; `index.html` answers `/ui/`.
static ASSETS: &[Asset] = &[
    asset!("index.html", "text/html; charset=utf-8"),
    asset!("style.css", "text/css; charset=utf-8"),
    asset!("app.js", JS),
    asset!("api.js", JS),
    asset!("dom.js", JS),
    asset!("cbor.js", JS),
    asset!("cluster.js", JS),
    asset!("actors.js", JS),
    asset!("actor.js", JS),
    asset!("live.js", JS),
    asset!("storage.js", JS),
    asset!("traces.js", JS),
    asset!("database.js", JS),
];

/// The page may load and call only its own origin (WebSockets to it included), never be framed.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

fn find(name: &str) -> Option<&'static Asset> {
    ASSETS.iter().find(|asset| asset.name == name)
}

fn serve(asset: &Asset) -> Response {
    let mut response = (StatusCode::OK, asset.body).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(asset.content_type));
    // The files change with the binary: revalidating costs one request, a stale page after an upgrade costs more.
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    response
}

/// `GET /ui`: the page is at `/ui/`, where its relative module paths resolve.
pub(crate) async fn redirect() -> Redirect {
    Redirect::permanent(UI_PATH)
}

/// `GET /ui/`: the page.
pub(crate) async fn index() -> Response {
    serve(find("index.html").expect("index.html is an asset"))
}

/// `GET /ui/{file}`: one of the page's files; `guard.no_route` for any other name.
pub(crate) async fn file(Path(name): Path<String>) -> Response {
    match find(&name) {
        Some(asset) => serve(asset),
        None => ErrorResponse(ClientError::no_route(&format!("{UI_PATH}{name}"))).into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The relative files a text refers to: `./name` in JavaScript imports, `href`/`src` attributes in HTML.
    fn references(text: &str) -> Vec<String> {
        let mut found = Vec::new();
        for quote in ['"', '\''] {
            let opener = format!("{quote}./");
            let mut rest = text;
            while let Some(start) = rest.find(&opener) {
                let after = &rest[start + opener.len()..];
                let end = after.find(quote).unwrap_or(after.len());
                found.push(after[..end].to_string());
                rest = &after[end..];
            }
        }
        found
    }

    #[test]
    fn every_file_the_page_refers_to_is_served() {
        let mut referenced = std::collections::BTreeSet::new();
        for asset in ASSETS {
            for name in references(asset.body) {
                assert!(find(&name).is_some(), "{} refers to ./{name}, which is not an asset", asset.name);
                referenced.insert(name);
            }
        }
        for asset in ASSETS.iter().filter(|a| a.name != "index.html") {
            assert!(referenced.contains(asset.name), "{} is served but nothing loads it", asset.name);
        }
    }

    #[test]
    fn the_page_loads_nothing_from_elsewhere() {
        for asset in ASSETS {
            for outside in ["http://", "https://", "//cdn", "@import", "eval(", "new Function"] {
                assert!(!asset.body.contains(outside), "{} contains {outside:?}", asset.name);
            }
            assert!(!asset.body.contains("<script>"), "{}: inline scripts break the page's CSP", asset.name);
            assert!(!asset.body.contains(" style=\""), "{}: inline styles break the page's CSP", asset.name);
        }
    }

    #[test]
    fn files_carry_their_type_and_the_page_its_policy() {
        let response = serve(find("app.js").unwrap());
        assert_eq!(response.headers()[header::CONTENT_TYPE], JS);
        assert_eq!(response.headers()[header::CONTENT_SECURITY_POLICY], CSP);
        assert_eq!(response.headers()[header::X_FRAME_OPTIONS], "DENY");
        assert!(find("../Cargo.toml").is_none() && find("").is_none());
    }
}
