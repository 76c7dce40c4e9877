//! The error catalogue: every error a client can see, with its stable `group.code` and HTTP status.
//!
//! RivetKit clients key their retry and reconnect logic on these codes, so a permanent failure never uses a code
//! the client retries. The catalogue is mirrored in the README.

use crate::Value;
use crate::messages::ErrorFrame;

/// Longest WebSocket close reason, in bytes (RFC 6455: 125-byte control payload minus the 2-byte code).
const MAX_CLOSE_REASON_BYTES: usize = 123;

/// An error as a client sees it: `group.code`, a message, optional metadata, and the HTTP status it travels with.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ClientError {
    pub group: String,
    pub code: String,
    pub message: String,
    pub metadata: Option<Value>,
    /// HTTP status for HTTP responses; WebSocket errors carry the same `group.code` in their close reason.
    pub status: u16,
}

impl std::fmt::Display for ClientError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}: {}", self.group, self.code, self.message)
    }
}

impl std::error::Error for ClientError {}

impl ClientError {
    /// An error with an explicit group, code, status and message.
    pub fn new(group: &str, code: &str, status: u16, message: impl Into<String>) -> Self {
        Self { group: group.into(), code: code.into(), message: message.into(), metadata: None, status }
    }

    /// Attaches user-visible metadata.
    pub fn with_metadata(mut self, metadata: Value) -> Self {
        self.metadata = Some(metadata);
        self
    }

    /// `group.code`, the form used in WebSocket close reasons and logs.
    pub fn qualified_code(&self) -> String {
        format!("{}.{}", self.group, self.code)
    }

    /// The actor does not exist or was destroyed (404).
    pub fn actor_not_found(what: impl std::fmt::Display) -> Self {
        Self::new("actor", "not_found", 404, format!("The actor does not exist or was destroyed: {what}"))
    }
    /// An actor key over a size limit (400): `what` is the part (`part 2`) or `serialized form` that is `size`
    /// bytes, over `limit`. RivetKit's code for it.
    pub fn key_too_large(what: &str, size: usize, limit: usize) -> Self {
        Self::new(
            "actor",
            "key_too_large",
            400,
            format!("The actor key's {what} is {size} bytes, over the limit of {limit} bytes"),
        )
    }
    /// A create named a key that already has an actor (400).
    pub fn duplicate_key(name: &str, key: &str) -> Self {
        Self::new("actor", "duplicate_key", 400, format!("An actor named '{name}' with key '{key}' already exists"))
    }
    /// No actor definition with this name is registered (400).
    pub fn not_registered(name: &str) -> Self {
        Self::new("actor", "not_registered", 400, format!("No actor named '{name}' is registered"))
    }
    /// Only the `default` namespace exists (400).
    pub fn namespace_not_found(namespace: &str) -> Self {
        Self::new("actor", "namespace_not_found", 400, format!("Namespace '{namespace}' does not exist"))
    }
    /// The actor has no action with this name (404).
    pub fn action_not_found(name: &str) -> Self {
        Self::new("actor", "action_not_found", 404, format!("The actor has no action named '{name}'"))
    }
    /// The action ran longer than its timeout (408).
    pub fn action_timed_out(name: &str, timeout_ms: u64) -> Self {
        Self::new("actor", "action_timed_out", 408, format!("Action '{name}' did not finish within {timeout_ms} ms"))
    }
    /// Actor code called an action of its own actor (by handle) from inside a turn, which would deadlock (400).
    pub fn self_call() -> Self {
        Self::new(
            "actor",
            "self_call",
            400,
            "an actor cannot call its own actions from inside a turn; call the function directly",
        )
    }
    /// A malformed body, frame, header or path (400).
    pub fn invalid_request(message: impl Into<String>) -> Self {
        Self::new("actor", "invalid_request", 400, message)
    }
    /// The HTTP method is not allowed on this route (405).
    pub fn method_not_allowed(method: &str, path: &str) -> Self {
        Self::new("actor", "method_not_allowed", 405, format!("Method {method} is not allowed on {path}"))
    }
    /// A malformed `rvt-*` query on a gateway path (400); `code` is e.g. `query_invalid_method`.
    pub fn guard_query(code: &str, message: impl Into<String>) -> Self {
        Self::new("guard", code, 400, message)
    }
    /// An incoming message is over the size limit (400).
    pub fn incoming_too_long(size: usize, limit: usize) -> Self {
        Self::new(
            "message",
            "incoming_too_long",
            400,
            format!("Incoming message of {size} bytes exceeds the limit of {limit} bytes"),
        )
    }
    /// An outgoing message is over the size limit (400).
    pub fn outgoing_too_long(size: usize, limit: usize) -> Self {
        Self::new(
            "message",
            "outgoing_too_long",
            400,
            format!("Outgoing message of {size} bytes exceeds the limit of {limit} bytes"),
        )
    }
    /// A user error thrown by actor code: group `user`, the user's code, metadata passed through (400).
    pub fn user(code: &str, message: impl Into<String>, metadata: Option<Value>) -> Self {
        Self { group: "user".into(), code: code.into(), message: message.into(), metadata, status: 400 }
    }
    /// A SQL statement failed; the message is SQLite's (400).
    pub fn sql_error(message: impl Into<String>) -> Self {
        Self::new("database", "sql_error", 400, message)
    }
    /// The SQL sandbox refused the statement: it would leave the actor's database, control the runtime's
    /// transaction, use a PRAGMA or function outside the allowed set, or touch the runtime's tables (403).
    pub fn statement_not_allowed(reason: impl Into<String>) -> Self {
        Self::new("database", "statement_not_allowed", 403, reason)
    }
    /// A statement ran longer than its limit and was interrupted; its changes are undone (408).
    pub fn statement_timed_out(limit: std::time::Duration) -> Self {
        Self::new(
            "database",
            "statement_timed_out",
            408,
            format!("The SQL statement ran longer than its limit of {} ms and was interrupted", limit.as_millis()),
        )
    }
    /// A query's rows add up to more than the limit one statement may return (400).
    pub fn result_too_large(limit: usize) -> Self {
        Self::new(
            "database",
            "result_too_large",
            400,
            format!("The query's rows exceed {limit} bytes; select fewer rows or columns (LIMIT / OFFSET)"),
        )
    }
    /// The named table does not exist (404).
    pub fn table_not_found(table: &str) -> Self {
        Self::new("database", "table_not_found", 404, format!("Table '{table}' does not exist"))
    }
    /// Missing or wrong inspector token (401).
    pub fn inspector_unauthorized() -> Self {
        Self::new("inspector", "unauthorized", 401, "Inspector request requires a valid bearer token")
    }
    /// Missing or wrong admin token (401).
    pub fn api_unauthorized() -> Self {
        Self::new("api", "unauthorized", 401, "This route requires the admin token")
    }
    /// A web page from `origin` asked for an admin or inspector route; only origins the node lists may (403).
    pub fn origin_not_allowed(origin: &str) -> Self {
        Self::new(
            "api",
            "origin_not_allowed",
            403,
            format!(
                "Web pages from {origin} may not use admin or inspector routes; the node must list the origin \
                 (--cors-origin)"
            ),
        )
    }
    /// The actor's home is lost and no copy is available (503).
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new("actor", "unavailable", 503, message)
    }
    /// The cluster's directory could not reach a majority of its voters (split, or voters down); nothing was
    /// decided, so the request may be retried (503).
    pub fn no_quorum(message: impl Into<String>) -> Self {
        Self::new("cluster", "no_quorum", 503, message)
    }
    /// A migration names a region no live member is in, or that no member has ever announced (400).
    pub fn region_not_found(region: &str) -> Self {
        Self::new("cluster", "region_not_found", 400, format!("No node of the cluster is in region {region}"))
    }
    /// A migration or drain names a node that is not a member of the cluster (400).
    pub fn node_not_found(node: &str) -> Self {
        Self::new("cluster", "node_not_found", 400, format!("Node {node} is not a member of the cluster"))
    }
    /// No live node can take the actor where it was asked to go (503).
    pub fn no_capacity(message: impl Into<String>) -> Self {
        Self::new("cluster", "no_capacity", 503, message)
    }
    /// The actor is already moving to another node; retry once that move is over (409).
    pub fn migration_in_progress(actor_id: &str) -> Self {
        Self::new("actor", "migration_in_progress", 409, format!("Actor {actor_id} is already being moved"))
    }
    /// The node is overloaded (503).
    pub fn overloaded(message: impl Into<String>) -> Self {
        Self::new("actor", "overloaded", 503, message)
    }
    /// The actor is stopping (sleep or destroy in progress); clients retry or reconnect (503).
    pub fn stopping() -> Self {
        Self::new("actor", "stopping", 503, "The actor is stopping")
    }
    /// No KV entry at the requested key (404).
    pub fn kv_not_found() -> Self {
        Self::new("kv", "not_found", 404, "No value is stored at this key")
    }
    /// A KV key is longer than the limit (400).
    pub fn kv_key_too_large(size: usize, limit: usize) -> Self {
        Self::new("kv", "key_too_large", 400, format!("KV key of {size} bytes exceeds the limit of {limit} bytes"))
    }
    /// A KV value is longer than the limit (400).
    pub fn kv_value_too_large(size: usize, limit: usize) -> Self {
        Self::new("kv", "value_too_large", 400, format!("KV value of {size} bytes exceeds the limit of {limit} bytes"))
    }
    /// A KV batch has too many entries or bytes (400).
    pub fn kv_batch_too_large(message: impl Into<String>) -> Self {
        Self::new("kv", "batch_too_large", 400, message)
    }
    /// A KV write touched a key reserved for the runtime (`0x03`, the inspector token) (400).
    pub fn kv_reserved_key() -> Self {
        Self::new("kv", "reserved_key", 400, "This KV key is reserved for the runtime")
    }
    /// The actor has no raw HTTP handler (`request`) or raw WebSocket handler (`websocket`) (404). RivetKit's
    /// code for it; deliberately not `actor.not_found`, which clients treat as a stale actor and retry.
    pub fn handler_not_defined(kind: &str) -> Self {
        Self::new("handler", &format!("{kind}_not_defined"), 404, format!("The actor has no {kind} handler"))
    }
    /// The request's URI (path and query) is over the limit (414).
    pub fn uri_too_long(size: usize, limit: usize) -> Self {
        Self::new("guard", "uri_too_long", 414, format!("URI of {size} bytes exceeds the limit of {limit} bytes"))
    }
    /// The request's headers are over the limit (431).
    pub fn headers_too_large(size: usize, limit: usize) -> Self {
        Self::new(
            "guard",
            "headers_too_large",
            431,
            format!("Request headers of {size} bytes exceed the limit of {limit} bytes"),
        )
    }
    /// No route matches the request's path (404).
    pub fn no_route(path: &str) -> Self {
        Self::new("guard", "no_route", 404, format!("No route matches {path}"))
    }
    /// The node's disk is full: the request's writes were refused and none of them were kept, so the same request
    /// may be retried once space is freed (507 Insufficient Storage).
    pub fn storage_full() -> Self {
        Self::new(
            "storage",
            "full",
            507,
            "The node's storage is full: nothing of this request was written; retry once space is freed",
        )
    }
    /// Whether this error has the catalogue code of `known` (`error.is(&ClientError::stopping())`), whatever the
    /// messages, metadata and statuses: decisions on an error ask this, never its code's text.
    pub fn is(&self, known: &ClientError) -> bool {
        self.group == known.group && self.code == known.code
    }
    /// Whether this is [`ClientError::storage_full`].
    pub fn is_storage_full(&self) -> bool {
        self.is(&Self::storage_full())
    }
    /// Anything else. The real cause is logged; the client sees only this masked message (500).
    pub fn internal() -> Self {
        Self::new("actor", "internal_error", 500, "An internal error occurred")
    }
}

/// The WebSocket close reason for `e`: `"{group}.{code}"`, cut to at most 123 bytes on a character boundary.
pub fn close_reason(e: &ClientError) -> String {
    let mut reason = e.qualified_code();
    if reason.len() > MAX_CLOSE_REASON_BYTES {
        let cut = (0..=MAX_CLOSE_REASON_BYTES).rev().find(|i| reason.is_char_boundary(*i)).unwrap_or(0);
        reason.truncate(cut);
    }
    reason
}

/// The HTTP status the catalogue assigns to `group.code`, if the code is one of Tern's own.
fn catalogue_status(group: &str, code: &str) -> Option<u16> {
    Some(match (group, code) {
        ("actor", "not_found" | "action_not_found")
        | ("database", "table_not_found")
        | ("guard", "no_route")
        | ("handler", "request_not_defined" | "websocket_not_defined")
        | ("kv", "not_found") => 404,
        ("actor", "action_timed_out") | ("database", "statement_timed_out") => 408,
        ("database", "statement_not_allowed") => 403,
        ("actor", "method_not_allowed") => 405,
        ("guard", "uri_too_long") => 414,
        ("guard", "headers_too_large") => 431,
        ("actor", "unavailable" | "overloaded" | "stopping") | ("cluster", "no_quorum" | "no_capacity") => 503,
        ("actor", "migration_in_progress") => 409,
        ("actor", "internal_error") => 500,
        ("storage", "full") => 507,
        ("inspector" | "api", "unauthorized") => 401,
        ("api", "origin_not_allowed") => 403,
        ("actor", "duplicate_key" | "key_too_large" | "not_registered" | "namespace_not_found" | "invalid_request")
        | ("cluster", "region_not_found" | "node_not_found")
        | ("message", "incoming_too_long" | "outgoing_too_long")
        | ("database", "sql_error" | "result_too_large")
        | ("kv", "key_too_large" | "value_too_large" | "batch_too_large" | "reserved_key") => 400,
        _ => return None,
    })
}

impl From<&ClientError> for ErrorFrame {
    /// The error as a message or HTTP error body: no action id, no actor.
    fn from(e: &ClientError) -> Self {
        ErrorFrame {
            group: e.group.clone(),
            code: e.code.clone(),
            message: e.message.clone(),
            metadata: e.metadata.clone(),
            action_id: None,
            actor: None,
        }
    }
}

impl From<ErrorFrame> for ClientError {
    /// The error a client received; its status is the catalogue's for Tern's own codes and 400 otherwise
    /// (user errors, codes from other servers).
    fn from(frame: ErrorFrame) -> Self {
        let status = catalogue_status(&frame.group, &frame.code).unwrap_or(400);
        ClientError { group: frame.group, code: frame.code, message: frame.message, metadata: frame.metadata, status }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalogue_statuses_match_the_constructors() {
        let all = [
            ClientError::actor_not_found("a"),
            ClientError::duplicate_key("n", "k"),
            ClientError::key_too_large("part 1", 129, 128),
            ClientError::not_registered("n"),
            ClientError::namespace_not_found("ns"),
            ClientError::action_not_found("f"),
            ClientError::action_timed_out("f", 5),
            ClientError::invalid_request("bad"),
            ClientError::method_not_allowed("GET", "/x"),
            ClientError::incoming_too_long(2, 1),
            ClientError::outgoing_too_long(2, 1),
            ClientError::sql_error("boom"),
            ClientError::table_not_found("t"),
            ClientError::statement_not_allowed("no"),
            ClientError::statement_timed_out(std::time::Duration::from_millis(5)),
            ClientError::result_too_large(1),
            ClientError::inspector_unauthorized(),
            ClientError::api_unauthorized(),
            ClientError::origin_not_allowed("https://evil.example"),
            ClientError::unavailable("gone"),
            ClientError::overloaded("busy"),
            ClientError::stopping(),
            ClientError::no_route("/x"),
            ClientError::uri_too_long(2, 1),
            ClientError::headers_too_large(2, 1),
            ClientError::handler_not_defined("request"),
            ClientError::handler_not_defined("websocket"),
            ClientError::kv_not_found(),
            ClientError::kv_key_too_large(2, 1),
            ClientError::kv_value_too_large(2, 1),
            ClientError::kv_batch_too_large("many"),
            ClientError::kv_reserved_key(),
            ClientError::storage_full(),
            ClientError::no_quorum("split"),
            ClientError::region_not_found("mars"),
            ClientError::node_not_found("n1"),
            ClientError::no_capacity("none"),
            ClientError::migration_in_progress("a"),
            ClientError::internal(),
        ];
        for e in all {
            assert_eq!(catalogue_status(&e.group, &e.code), Some(e.status), "{}", e.qualified_code());
            assert_eq!(ClientError::from(ErrorFrame::from(&e)), e);
        }
    }

    #[test]
    fn storage_full_is_507_and_recognised_through_the_wire() {
        let full = ClientError::storage_full();
        assert_eq!((full.qualified_code().as_str(), full.status), ("storage.full", 507));
        assert!(ClientError::from(ErrorFrame::from(&full)).is_storage_full());
        assert!(!ClientError::internal().is_storage_full());
        assert!(!ClientError::new("user", "full", 400, "a user error named full").is_storage_full());
    }

    #[test]
    fn errors_are_recognised_by_their_catalogue_code_alone() {
        let received = ClientError::from(ErrorFrame::from(&ClientError::api_unauthorized()));
        assert!(received.is(&ClientError::api_unauthorized()));
        assert!(!received.is(&ClientError::inspector_unauthorized()), "same code, another group");
        assert!(ClientError::actor_not_found("a").is(&ClientError::actor_not_found("b")), "messages differ");
        assert!(!ClientError::user("unauthorized", "no", None).is(&ClientError::api_unauthorized()));
    }

    #[test]
    fn foreign_codes_are_400() {
        let user = ClientError::user("bad_input", "no", Some(Value::Integer(1.into())));
        assert_eq!(ClientError::from(ErrorFrame::from(&user)), user);
        let guard = ClientError::guard_query("query_invalid_method", "x");
        assert_eq!(ClientError::from(ErrorFrame::from(&guard)).status, 400);
        let frame = ErrorFrame {
            group: "guard".into(),
            code: "actor_ready_timeout".into(),
            message: "m".into(),
            metadata: None,
            action_id: Some(3),
            actor: None,
        };
        assert_eq!(ClientError::from(frame).status, 400);
    }

    #[test]
    fn close_reason_fits_a_close_frame() {
        assert_eq!(close_reason(&ClientError::stopping()), "actor.stopping");
        let long = ClientError::user(&"é".repeat(100), "m", None);
        let reason = close_reason(&long);
        assert!(reason.len() <= 123 && reason.len() >= 122, "{}", reason.len());
        assert!(reason.starts_with("user.éé"));
        let exact = ClientError::user(&"x".repeat(123 - 5), "m", None);
        assert_eq!(close_reason(&exact).len(), 123);
    }
}
