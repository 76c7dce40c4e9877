//! Gateway targets: `/gateway/{actor_id}[@token]/...` and `/gateway/{name}/...?rvt-*` query routing.
//!
//! Query rules (as RivetKit's edge enforces them): every `rvt-*` parameter must be known and appear once;
//! `rvt-method` is `get` or `getOrCreate`; `get` takes no input, region, runner or crash policy; `rvt-key` parts
//! are split on `,` (and held to the key limits, `actor.key_too_large`); `rvt-input` is base64url (no padding)
//! CBOR. All `rvt-*` parameters are removed before the request reaches the actor; other query parameters pass
//! through unchanged.

use base64::Engine;
use tern_proto::key::ActorKey;
use tern_proto::{ClientError, value};

use crate::backend::{Backend, CreateRequest};

/// The only namespace.
pub const NAMESPACE: &str = "default";

/// What a gateway path addresses.
#[derive(Debug, Clone, PartialEq)]
pub enum Target {
    /// A known actor id (an optional token is accepted and ignored in development).
    Id(String),
    /// A name plus a key lookup, creating the actor on demand for `getOrCreate`.
    Query { name: String, key: ActorKey, create: Option<CreateOptions> },
}

/// Options of a `getOrCreate` query.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct CreateOptions {
    pub input: Option<tern_proto::Value>,
    pub region: Option<String>,
}

const KNOWN: &[&str] = &[
    "rvt-namespace",
    "rvt-method",
    "rvt-runner",
    "rvt-pool",
    "rvt-key",
    "rvt-input",
    "rvt-region",
    "rvt-crash-policy",
    "rvt-token",
    "rvt-skip-ready-wait",
];
const CREATE_ONLY: &[&str] = &["rvt-runner", "rvt-pool", "rvt-input", "rvt-region", "rvt-crash-policy"];

/// Checks a namespace: only `default` exists.
pub fn check_namespace(namespace: Option<&str>) -> Result<(), ClientError> {
    match namespace {
        None | Some(NAMESPACE) => Ok(()),
        Some(other) => Err(ClientError::namespace_not_found(other)),
    }
}

/// Parses the path segment and the raw query. Returns the target and the query with `rvt-*` removed.
pub fn parse(segment: &str, raw_query: Option<&str>) -> Result<(Target, Option<String>), ClientError> {
    let pairs: Vec<(String, String)> =
        raw_query.map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect()).unwrap_or_default();
    let passthrough: Vec<&str> =
        raw_query.unwrap_or("").split('&').filter(|p| !p.is_empty() && !is_rvt_param(p)).collect();
    let passthrough = (!passthrough.is_empty()).then(|| passthrough.join("&"));
    let mut rvt: Vec<(String, String)> = Vec::new();
    for (k, v) in pairs.into_iter().filter(|(k, _)| k.starts_with("rvt-")) {
        if !KNOWN.contains(&k.as_str()) {
            return Err(ClientError::guard_query("query_unknown_param", format!("unknown query parameter '{k}'")));
        }
        if rvt.iter().any(|(seen, _)| *seen == k) {
            return Err(ClientError::guard_query(
                "query_duplicate_param",
                format!("query parameter '{k}' appears more than once"),
            ));
        }
        rvt.push((k, v));
    }
    let get = |name: &str| rvt.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
    let Some(method) = get("rvt-method") else {
        if rvt.iter().any(|(k, _)| k != "rvt-token" && k != "rvt-skip-ready-wait") {
            return Err(ClientError::guard_query(
                "query_missing_method",
                "query routing needs rvt-method=get|getOrCreate",
            ));
        }
        let id = segment.split('@').next().unwrap_or(segment);
        if id.is_empty() {
            return Err(ClientError::invalid_request("missing actor id in gateway path"));
        }
        return Ok((Target::Id(id.to_string()), passthrough));
    };
    check_namespace(get("rvt-namespace"))?;
    let key = get("rvt-key").map(ActorKey::from_query).transpose()?.unwrap_or_default();
    let create = match method {
        "get" => {
            if let Some(bad) = CREATE_ONLY.iter().find(|p| get(p).is_some()) {
                return Err(ClientError::guard_query(
                    "query_invalid_param",
                    format!("'{bad}' is not allowed with rvt-method=get"),
                ));
            }
            None
        }
        "getOrCreate" => {
            let input = match get("rvt-input") {
                Some(encoded) => {
                    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
                        .decode(encoded.trim_end_matches('='))
                        .map_err(|e| {
                            ClientError::guard_query("query_invalid_param", format!("rvt-input is not base64url: {e}"))
                        })?;
                    Some(value::revive(value::from_cbor_bytes(&bytes)?))
                }
                None => None,
            };
            Some(CreateOptions { input, region: get("rvt-region").map(str::to_string) })
        }
        other => {
            return Err(ClientError::guard_query(
                "query_invalid_method",
                format!("rvt-method must be get or getOrCreate, not '{other}'"),
            ));
        }
    };
    if segment.is_empty() {
        return Err(ClientError::invalid_request("missing actor name in gateway path"));
    }
    Ok((Target::Query { name: segment.to_string(), key, create }, passthrough))
}

/// Whether a raw `name=value` query parameter is an `rvt-*` one once its name is decoded, as routing reads it
/// (`%72vt-key=a` is `rvt-key`).
fn is_rvt_param(raw: &str) -> bool {
    form_urlencoded::parse(raw.as_bytes()).next().is_some_and(|(name, _)| name.starts_with("rvt-"))
}

/// Resolves a target to an actor id, creating the actor for `getOrCreate`.
pub async fn resolve(backend: &dyn Backend, target: Target) -> Result<String, ClientError> {
    match target {
        Target::Id(id) => Ok(id),
        Target::Query { name, key, create: None } => {
            if !backend.actor_names().contains(&name) {
                return Err(ClientError::not_registered(&name));
            }
            match backend.get_actor_by_key(&name, &key).await? {
                Some(actor) => Ok(actor.actor_id),
                None => Err(ClientError::actor_not_found(format!("{name} with key {:?}", key.parts()))),
            }
        }
        Target::Query { name, key, create: Some(options) } => {
            let request = CreateRequest { name, key, input: options.input, region: options.region };
            Ok(backend.get_or_create_actor(request).await?.0.actor_id)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_id_with_token_and_passthrough_query() {
        let (target, rest) = parse("abc@tok", Some("x=1&y=2")).unwrap();
        assert_eq!(target, Target::Id("abc".into()));
        assert_eq!(rest.as_deref(), Some("x=1&y=2"));
    }

    #[test]
    fn get_or_create_query() {
        let (target, rest) = parse(
            "counter",
            Some("rvt-namespace=default&rvt-method=getOrCreate&rvt-key=a,b&rvt-crash-policy=sleep&z=9"),
        )
        .unwrap();
        assert_eq!(
            target,
            Target::Query {
                name: "counter".into(),
                key: ActorKey::from_query("a,b").unwrap(),
                create: Some(CreateOptions::default())
            }
        );
        assert_eq!(rest.as_deref(), Some("z=9"));
    }

    /// Found by the `rvt_query` fuzz target: routing read an escaped `rvt-*` name (`%72vt-method`) as the
    /// parameter, but the query passed on to the actor kept it.
    #[test]
    fn escaped_rvt_parameters_are_routed_and_removed_alike() {
        let (target, rest) = parse("counter", Some("%72vt-method=get&rvt%2Dkey=a,b&q=%72vt-x&rvt-token=t")).unwrap();
        assert_eq!(
            target,
            Target::Query { name: "counter".into(), key: ActorKey::from_query("a,b").unwrap(), create: None }
        );
        assert_eq!(rest.as_deref(), Some("q=%72vt-x"));
        let (_, rest) = parse("abc", Some("%72vt-token=t")).unwrap();
        assert_eq!(rest, None);
    }

    #[test]
    fn bad_queries_are_refused_with_guard_codes() {
        let code = |q: &str| parse("counter", Some(q)).unwrap_err().qualified_code();
        assert_eq!(code("rvt-method=get&rvt-bogus=1"), "guard.query_unknown_param");
        assert_eq!(code("rvt-method=get&rvt-method=get"), "guard.query_duplicate_param");
        assert_eq!(code("rvt-method=destroy"), "guard.query_invalid_method");
        assert_eq!(code("rvt-method=get&rvt-input=AA"), "guard.query_invalid_param");
        assert_eq!(code("rvt-key=a"), "guard.query_missing_method");
        assert_eq!(code("rvt-method=get&rvt-namespace=other"), "actor.namespace_not_found");
        let long_key = format!("rvt-method=getOrCreate&rvt-key=a,{}", "k".repeat(129));
        assert_eq!(code(&long_key), "actor.key_too_large");
    }
}
