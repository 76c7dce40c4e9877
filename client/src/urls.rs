//! URLs and handshake values: REST paths, gateway paths, the `/connect` WebSocket URL and its subprotocols.
//!
//! Every path is appended to the endpoint's own path, so an endpoint with a prefix (`http://host/rivet`)
//! keeps it. Path segments are percent-encoded (a `/` in an action name stays inside its segment); query values
//! are form-encoded.

use reqwest::Url;
use tern_proto::{Encoding, Value, value};

use crate::error::{Error, Result};

/// A parsed http(s) endpoint.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Endpoint {
    base: Url,
}

/// What an endpoint URL's user-info carried: RivetKit's `http://namespace:token@host` form.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct UrlAuth {
    pub namespace: Option<String>,
    pub token: Option<String>,
}

impl Endpoint {
    /// Parses an endpoint, taking any user-info off the URL and returning it separately.
    pub fn parse(endpoint: &str) -> Result<(Endpoint, UrlAuth)> {
        let mut base =
            Url::parse(endpoint).map_err(|e| Error::Config(format!("endpoint {endpoint:?} is not a URL: {e}")))?;
        if !matches!(base.scheme(), "http" | "https") {
            return Err(Error::Config(format!("endpoint {endpoint:?} must be an http:// or https:// URL")));
        }
        let decode = |s: &str| -> Option<String> {
            let decoded: String = url_decode(s);
            (!decoded.is_empty()).then_some(decoded)
        };
        let auth = UrlAuth { namespace: decode(base.username()), token: base.password().and_then(decode) };
        // Setting empty user-info cannot fail on an http(s) URL, which always has a host.
        let _ = base.set_username("");
        let _ = base.set_password(None);
        base.set_query(None);
        base.set_fragment(None);
        Ok((Endpoint { base }, auth))
    }

    /// `{endpoint}/{segments...}?{query}`.
    pub fn url(&self, segments: &[&str], query: &[(&str, &str)]) -> Url {
        let mut url = self.base.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().extend(segments);
        }
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query);
        }
        url
    }

    /// `{endpoint}/actors[/{segments...}]?namespace={namespace}[&query...]` (the REST API).
    pub fn actors(&self, segments: &[&str], namespace: &str, query: &[(&str, &str)]) -> Url {
        let mut path = vec!["actors"];
        path.extend_from_slice(segments);
        let mut pairs = query.to_vec();
        pairs.push(("namespace", namespace));
        self.url(&path, &pairs)
    }

    /// `{endpoint}/gateway/{actor_id}/{segments...}` (an actor's framework routes).
    pub fn gateway(&self, actor_id: &str, segments: &[&str]) -> Url {
        let mut path = vec!["gateway", actor_id];
        path.extend_from_slice(segments);
        self.url(&path, &[])
    }

    /// `ws(s)://.../gateway/{actor_id}/connect`.
    pub fn connect_websocket(&self, actor_id: &str) -> Url {
        let mut url = self.gateway(actor_id, &["connect"]);
        let scheme = if url.scheme() == "https" { "wss" } else { "ws" };
        // http -> ws and https -> wss are always allowed (all four are special schemes).
        let _ = url.set_scheme(scheme);
        url
    }
}

/// Decodes `%XX` escapes (user-info of a URL); invalid escapes are kept as they are.
fn url_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes.get(i + 1..i + 3).and_then(|h| std::str::from_utf8(h).ok());
        match (bytes[i], hex.and_then(|h| u8::from_str_radix(h, 16).ok())) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// JavaScript's `encodeURIComponent`: everything but `A-Z a-z 0-9 - _ . ! ~ * ' ( )` becomes `%XX` of its UTF-8
/// bytes.
pub(crate) fn encode_uri_component(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for byte in s.bytes() {
        if byte.is_ascii_alphanumeric() || b"-_.!~*'()".contains(&byte) {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// Connection parameters for the `x-rivet-conn-params` header: JSON-compat JSON text, with every non-ASCII
/// character written as a `\u` escape so that the text is a valid HTTP header value.
pub(crate) fn params_json(params: &Value) -> String {
    let json = value::to_json(params).to_string();
    let mut out = String::with_capacity(json.len());
    for c in json.chars() {
        if c.is_ascii() {
            out.push(c);
        } else {
            // Non-ASCII characters only occur inside JSON strings, where `\u` escapes are valid.
            let mut units = [0u16; 2];
            for unit in c.encode_utf16(&mut units) {
                out.push_str(&format!("\\u{unit:04x}"));
            }
        }
    }
    out
}

/// The `Sec-WebSocket-Protocol` offer of a `/connect` socket: `rivet`, `rivet_encoding.<enc>` and, with
/// parameters, `rivet_conn_params.<encodeURIComponent(JSON-compat JSON)>`.
pub(crate) fn websocket_protocols(encoding: Encoding, params: Option<&Value>) -> String {
    let mut protocols = format!("rivet, rivet_encoding.{}", encoding.as_str());
    if let Some(params) = params {
        protocols.push_str(", rivet_conn_params.");
        protocols.push_str(&encode_uri_component(&value::to_json(params).to_string()));
    }
    protocols
}

#[cfg(test)]
mod tests {
    use super::*;

    fn endpoint(s: &str) -> Endpoint {
        Endpoint::parse(s).unwrap().0
    }

    #[test]
    fn rest_urls_keep_the_prefix_and_carry_the_namespace() {
        let e = endpoint("http://127.0.0.1:6420");
        assert_eq!(e.actors(&[], "default", &[]).as_str(), "http://127.0.0.1:6420/actors?namespace=default");
        let prefixed = endpoint("https://example.com/rivet/");
        assert_eq!(
            prefixed.actors(&["abc"], "ns 1", &[]).as_str(),
            "https://example.com/rivet/actors/abc?namespace=ns+1"
        );
        let by_key = e.actors(&[], "default", &[("name", "counter"), ("key", "a\\/b/c")]);
        assert_eq!(by_key.as_str(), "http://127.0.0.1:6420/actors?name=counter&key=a%5C%2Fb%2Fc&namespace=default");
        let pairs: Vec<(String, String)> = by_key.query_pairs().into_owned().collect();
        assert_eq!(pairs[1], ("key".to_string(), "a\\/b/c".to_string()));
    }

    #[test]
    fn gateway_urls_encode_each_segment() {
        let e = endpoint("http://localhost:6420/base");
        assert_eq!(
            e.gateway("actor-1", &["action", "inc"]).as_str(),
            "http://localhost:6420/base/gateway/actor-1/action/inc"
        );
        assert_eq!(
            e.gateway("a", &["action", "a/b c%"]).as_str(),
            "http://localhost:6420/base/gateway/a/action/a%2Fb%20c%25"
        );
        assert_eq!(e.connect_websocket("actor-1").as_str(), "ws://localhost:6420/base/gateway/actor-1/connect");
        let tls = endpoint("https://example.com");
        assert_eq!(tls.connect_websocket("x").as_str(), "wss://example.com/gateway/x/connect");
    }

    #[test]
    fn endpoints_must_be_http_and_lose_their_user_info() {
        assert!(matches!(Endpoint::parse("ws://host"), Err(Error::Config(_))));
        assert!(matches!(Endpoint::parse("not a url"), Err(Error::Config(_))));
        let (e, auth) = Endpoint::parse("http://my-ns:s%40cret@host:1/?q=1#f").unwrap();
        assert_eq!(auth, UrlAuth { namespace: Some("my-ns".into()), token: Some("s@cret".into()) });
        assert_eq!(e.url(&["metadata"], &[]).as_str(), "http://host:1/metadata");
        assert_eq!(Endpoint::parse("http://host").unwrap().1, UrlAuth::default());
    }

    #[test]
    fn subprotocols_match_rivetkit() {
        assert_eq!(websocket_protocols(Encoding::Bare, None), "rivet, rivet_encoding.bare");
        let params = value::from_json(&serde_json::json!({"token": "a b", "name": "é"}));
        assert_eq!(params_json(&params), r#"{"token":"a b","name":"\u00e9"}"#);
        assert_eq!(
            websocket_protocols(Encoding::Json, Some(&params)),
            "rivet, rivet_encoding.json, rivet_conn_params.%7B%22token%22%3A%22a%20b%22%2C%22name%22%3A%22%C3%A9%22%7D"
        );
        assert_eq!(encode_uri_component("az09-_.!~*'() /😀"), "az09-_.!~*'()%20%2F%F0%9F%98%80");
    }
}
