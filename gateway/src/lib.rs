//! Tern's client-facing edge: the RivetKit-compatible REST API, `/gateway/...` routes, `/connect` WebSockets
//! and the actors' raw HTTP and WebSocket routes.
//!
//! The gateway parses requests, resolves gateway targets to actor ids, speaks the three wire encodings and maps
//! every failure to the error catalogue. It knows nothing of storage or actor code: a [`Backend`] (implemented
//! by the node) does the work.
//!
//! ```ignore
//! let app = tern_gateway::router(Arc::new(my_backend), GatewayConfig::default());
//! axum::serve(listener, app).await?;
//! ```

mod auth;
pub mod backend;
mod cluster_routes;
mod connection;
pub mod cors;
pub mod error_response;
mod gateway_routes;
mod inspector_routes;
mod limits;
pub mod openapi;
pub mod outbound;
pub mod queue;
mod raw;
mod request;
mod rest;
pub mod target;
pub mod ui;

use std::sync::Arc;

use axum::Router;
use axum::routing::{any, get, post};

pub use auth::tokens_equal;
pub use backend::Backend;
pub use cors::CorsOrigins;

/// How the gateway behaves.
#[derive(Debug, Clone)]
pub struct GatewayConfig {
    /// The region reported as each actor's `datacenter`.
    pub region: String,
    /// Largest accepted request body or WebSocket message, in bytes (RivetKit `maxIncomingMessageSize`).
    pub max_incoming_message_size: usize,
    /// Largest response body or WebSocket message sent, in bytes (RivetKit `maxOutgoingMessageSize`).
    pub max_outgoing_message_size: usize,
    /// The admin token. When set, admin routes need it and inspector routes need it or the actor's own
    /// inspector token; when unset (development), everything is open.
    pub admin_token: Option<String>,
    /// The browser origins that may call the gateway (see [`cors`]); by default none.
    pub cors: CorsOrigins,
    /// The node's build, as `GET /cluster/members` reports it (`"node"`); by default none (`null`).
    pub build: Option<NodeBuild>,
    /// Whether the gateway is served over HTTPS: the scheme of the node's own origin, which the inspector page
    /// (`/ui/`) calls the admin routes from (see [`cors`]).
    pub https: bool,
}

/// The build a node runs, reported beside its members so that an operator sees which release and which
/// inter-node protocol versions each node speaks during a rolling upgrade.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeBuild {
    /// The release and git commit, e.g. `0.1.0 (commit 1a2b3c4)`.
    pub release: String,
    /// The inter-node protocol versions the node speaks, highest first (`tern/2`).
    pub protocols: Vec<String>,
}

impl Default for GatewayConfig {
    fn default() -> Self {
        GatewayConfig {
            region: "local".to_string(),
            max_incoming_message_size: 64 * 1024,
            max_outgoing_message_size: 1024 * 1024,
            admin_token: None,
            cors: CorsOrigins::default(),
            build: None,
            https: false,
        }
    }
}

/// What every handler shares.
#[derive(Clone)]
pub(crate) struct AppState {
    pub backend: Arc<dyn Backend>,
    pub config: Arc<GatewayConfig>,
}

/// Counts each request a route answered, by the route's template and the answer's status.
async fn count_request(
    axum::extract::State(state): axum::extract::State<AppState>,
    route: axum::extract::MatchedPath,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let response = next.run(request).await;
    state.backend.record_http(route.as_str(), response.status().as_u16());
    response
}

/// The gateway's routes: `/metadata`, `/health`, `/openapi.json` (the document of them all, see [`openapi`]), the `/actors` REST API, `/cluster/members`, `/gateway/...` and
/// the inspector page under `/ui/` ([`ui`]), with CORS for the origins [`GatewayConfig::cors`] allows, and admin
/// routes closed to the others but the node's own (see [`cors`]). Unknown paths get `guard.no_route` (404), known
/// paths with the wrong method `actor.method_not_allowed` (405), and a URI or headers over the limits
/// `guard.uri_too_long` (414) or `guard.headers_too_large` (431).
pub fn router(backend: Arc<dyn Backend>, config: GatewayConfig) -> Router {
    let origins = Arc::new(config.cors.clone());
    let admin_origins = Arc::new(cors::AdminOrigins {
        origins: origins.clone(),
        https: config.https,
        token_required: config.admin_token.is_some(),
    });
    let state = AppState { backend, config: Arc::new(config) };
    Router::new()
        .route("/metadata", get(rest::metadata))
        .route("/health", get(rest::health))
        .route("/openapi.json", get(openapi::document))
        .route("/actors", get(rest::list_actors).put(rest::get_or_create_actor).post(rest::create_actor))
        .route("/actors/names", get(rest::actor_names))
        .route("/actors/{actor_id}", axum::routing::delete(rest::destroy_actor))
        .route("/actors/{actor_id}/sleep", post(rest::sleep_actor))
        .route("/actors/{actor_id}/replicas", get(rest::replicas))
        .route("/actors/{actor_id}/migrate", post(rest::migrate_actor))
        .route("/actors/{actor_id}/kv/keys/{key}", get(rest::kv_get))
        .route("/metrics", get(rest::metrics))
        .route("/cluster/members", get(cluster_routes::members))
        .route("/cluster/nodes/{node_id}/drain", post(cluster_routes::drain))
        .route("/gateway/{*rest}", any(gateway_routes::handle))
        .route("/ui", get(ui::redirect))
        .route("/ui/", get(ui::index))
        .route("/ui/{file}", get(ui::file))
        .route_layer(axum::middleware::from_fn_with_state(state.clone(), count_request))
        .fallback(rest::no_route)
        .method_not_allowed_fallback(rest::method_not_allowed)
        .layer(axum::middleware::from_fn(limits::check))
        .layer(cors::layer(origins))
        .layer(axum::middleware::from_fn_with_state(admin_origins, cors::refuse_unlisted_admin))
        .with_state(state)
}
