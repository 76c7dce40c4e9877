//! Who may call what. Public routes (as in RivetKit): `/metadata`, `/health`, `PUT`/`POST /actors`, `GET
//! /actors` by key or by id, and the `/gateway/...` actor routes. Admin routes: listing actors, KV reads,
//! destroy and sleep through the API, `/cluster/members`; `/metrics` stays public for scrapers. Inspector routes take the actor's
//! own inspector token or the admin token.
//!
//! With no admin token configured (`tern dev`), everything is open. Tokens travel as `Authorization: Bearer
//! <token>` and are compared in constant time. Which web pages may call which routes is [`crate::cors`]'s
//! business.

use axum::http::HeaderMap;
use axum::http::header::AUTHORIZATION;
use subtle::ConstantTimeEq;
use tern_proto::ClientError;

use crate::GatewayConfig;
use crate::backend::InspectorAuth;

/// The bearer token of a request, if it has one.
fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// Whether two tokens are equal, in time independent of where they differ.
pub fn tokens_equal(a: &str, b: &str) -> bool {
    a.as_bytes().ct_eq(b.as_bytes()).into()
}

/// Admin routes: granted when no admin token is configured or the request carries it; `api.unauthorized`
/// otherwise.
pub(crate) fn require_admin(config: &GatewayConfig, headers: &HeaderMap) -> Result<(), ClientError> {
    match &config.admin_token {
        None => Ok(()),
        Some(admin) if bearer(headers).is_some_and(|token| tokens_equal(token, admin)) => Ok(()),
        Some(_) => Err(ClientError::api_unauthorized()),
    }
}

/// Inspector routes: granted when no admin token is configured or the request carries it; otherwise the
/// presented token (empty when none) is left for the actor to compare with its own.
pub(crate) fn inspector_auth(config: &GatewayConfig, headers: &HeaderMap) -> InspectorAuth {
    let token = bearer(headers).unwrap_or_default();
    match &config.admin_token {
        None => InspectorAuth::Granted,
        Some(admin) if tokens_equal(token, admin) => InspectorAuth::Granted,
        Some(_) => InspectorAuth::Token(token.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(authorization: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(AUTHORIZATION, authorization.parse().unwrap());
        headers
    }

    #[test]
    fn admin_routes_are_open_without_a_token_and_closed_with_one() {
        let open = GatewayConfig::default();
        assert!(require_admin(&open, &HeaderMap::new()).is_ok());
        let closed = GatewayConfig { admin_token: Some("s3cret".into()), ..GatewayConfig::default() };
        assert!(require_admin(&closed, &headers("Bearer s3cret")).is_ok());
        assert!(require_admin(&closed, &headers("bearer s3cret")).is_ok());
        for wrong in ["Bearer s3cre", "Bearer s3cret2", "Basic s3cret", "s3cret"] {
            assert_eq!(require_admin(&closed, &headers(wrong)).unwrap_err().qualified_code(), "api.unauthorized");
        }
        assert!(require_admin(&closed, &HeaderMap::new()).is_err());
    }

    #[test]
    fn inspector_auth_defers_other_tokens_to_the_actor() {
        let closed = GatewayConfig { admin_token: Some("admin".into()), ..GatewayConfig::default() };
        assert_eq!(inspector_auth(&closed, &headers("Bearer admin")), InspectorAuth::Granted);
        assert_eq!(inspector_auth(&closed, &headers("Bearer actor")), InspectorAuth::Token("actor".into()));
        assert_eq!(inspector_auth(&closed, &HeaderMap::new()), InspectorAuth::Token(String::new()));
        assert_eq!(inspector_auth(&GatewayConfig::default(), &HeaderMap::new()), InspectorAuth::Granted);
    }
}
