//! Actor definitions: a name, a state type, actions and lifecycle hooks.
//!
//! ```ignore
//! #[derive(Default, Serialize, Deserialize)]
//! struct Counter { count: i64 }
//!
//! let counter = Actor::<Counter>::new("counter")
//!     .action("increment", |c, amount: i64| async move {
//!         let count = c.update(|s| { s.count += amount; s.count });
//!         c.broadcast("newCount", &count)?;
//!         Ok(count)
//!     })
//!     .action("getCount", |c, ()| async move { Ok(c.read(|s| s.count)) });
//! ```

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use serde::Serialize;
use serde::de::DeserializeOwned;
use tern_proto::{ClientError, Value};

use super::conn::Conn;
use super::context::Ctx;
use super::error::{ActorError, ActorResult};
use super::options::ActorOptions;
use super::request::RequestFn;
use super::run::RunCtx;
use super::sql::Sql;
use super::websocket::SocketFn;
use super::workflow::WorkflowCtx;

pub(crate) type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;
pub(crate) type ActionFn<S, V> = Arc<dyn Fn(Ctx<S, V>, Value) -> BoxFuture<ActorResult<Value>> + Send + Sync>;
pub(crate) type HookFn<S, V> = Arc<dyn Fn(Ctx<S, V>) -> BoxFuture<ActorResult<()>> + Send + Sync>;
pub(crate) type ValueHookFn<S, V, R> = Arc<dyn Fn(Ctx<S, V>, Value) -> BoxFuture<ActorResult<R>> + Send + Sync>;
pub(crate) type ConnHookFn<S, V> = Arc<dyn Fn(Ctx<S, V>, Conn) -> BoxFuture<ActorResult<()>> + Send + Sync>;
pub(crate) type SchemaFn = Arc<dyn Fn(Sql, bool) -> BoxFuture<ActorResult<()>> + Send + Sync>;
pub(crate) type CreateStateFn<S> = Arc<dyn Fn(Value) -> ActorResult<S> + Send + Sync>;
pub(crate) type CreateVarsFn<S, V> = Arc<dyn Fn(Ctx<S, V>) -> BoxFuture<ActorResult<V>> + Send + Sync>;
pub(crate) type RunFn<S, V> = Arc<dyn Fn(RunCtx<S, V>) -> BoxFuture<ActorResult<()>> + Send + Sync>;
pub(crate) type StateChangeFn<S> = Arc<dyn Fn(&S) + Send + Sync>;

/// The definition of one kind of actor. `S` is its durable state (saved as CBOR), `V` its ephemeral vars.
pub struct Actor<S, V = ()> {
    /// Shared by every instance of the definition.
    pub(crate) name: Arc<str>,
    pub(crate) options: ActorOptions,
    pub(crate) actions: HashMap<String, ActionFn<S, V>>,
    /// The names of `actions`, sorted; every instance shares this one list.
    pub(crate) action_names: Arc<Vec<String>>,
    pub(crate) create_state: CreateStateFn<S>,
    pub(crate) on_schema: Option<SchemaFn>,
    pub(crate) on_create: Option<ValueHookFn<S, V, ()>>,
    pub(crate) create_vars: Option<CreateVarsFn<S, V>>,
    pub(crate) on_wake: Option<HookFn<S, V>>,
    pub(crate) on_sleep: Option<HookFn<S, V>>,
    pub(crate) on_destroy: Option<HookFn<S, V>>,
    pub(crate) on_state_change: Option<StateChangeFn<S>>,
    pub(crate) on_before_connect: Option<ValueHookFn<S, V, ()>>,
    pub(crate) create_conn_state: Option<ValueHookFn<S, V, Value>>,
    pub(crate) on_connect: Option<ConnHookFn<S, V>>,
    pub(crate) on_disconnect: Option<ConnHookFn<S, V>>,
    pub(crate) on_request: Option<RequestFn<S, V>>,
    /// Declared queue names; sends to other names are refused.
    pub(crate) queues: std::collections::BTreeSet<String>,
    pub(crate) run: Option<RunFn<S, V>>,
    /// Whether `run` is a workflow (its history is inspectable and replayable).
    pub(crate) is_workflow: bool,
    pub(crate) on_websocket: Option<SocketFn<S, V>>,
}

/// Decodes positional action arguments (always an array on the wire) into `A`.
///
/// Accepted shapes, tried in order: the array itself (a tuple or a `Vec`); its single element (so an action may
/// take one plain argument); the array padded with nulls (so trailing `Option`s may be omitted); and null for
/// an empty array (so `()` means "no arguments").
pub(crate) fn decode_args<A: DeserializeOwned>(action: &str, args: Value) -> Result<A, ClientError> {
    let items = match args {
        Value::Array(items) => items,
        Value::Null => Vec::new(),
        other => vec![other],
    };
    let first_error = match Value::Array(items.clone()).deserialized::<A>() {
        Ok(a) => return Ok(a),
        Err(e) => e.to_string(),
    };
    if items.len() == 1
        && let Ok(a) = items[0].deserialized::<A>()
    {
        return Ok(a);
    }
    if items.is_empty()
        && let Ok(a) = Value::Null.deserialized::<A>()
    {
        return Ok(a);
    }
    let mut padded = items;
    for _ in 0..4 {
        padded.push(Value::Null);
        if let Ok(a) = Value::Array(padded.clone()).deserialized::<A>() {
            return Ok(a);
        }
    }
    Err(ClientError::invalid_request(format!("invalid arguments for action '{action}': {first_error}")))
}

fn encode_output<R: Serialize>(output: &R) -> ActorResult<Value> {
    Value::serialized(output).map_err(|e| ActorError::internal(format!("action output cannot be encoded: {e}")))
}

impl<S, V> Actor<S, V>
where
    S: Serialize + DeserializeOwned + Default + Send + 'static,
    V: Default + Send + 'static,
{
    /// A definition whose state starts as `S::default()` and whose vars start as `V::default()`.
    pub fn new(name: &str) -> Self {
        Actor {
            name: name.into(),
            options: ActorOptions::default(),
            actions: HashMap::new(),
            action_names: Arc::default(),
            create_state: Arc::new(|_| Ok(S::default())),
            on_schema: None,
            on_create: None,
            create_vars: None,
            on_wake: None,
            on_sleep: None,
            on_destroy: None,
            on_state_change: None,
            on_before_connect: None,
            create_conn_state: None,
            on_connect: None,
            on_disconnect: None,
            queues: Default::default(),
            run: None,
            is_workflow: false,
            on_request: None,
            on_websocket: None,
        }
    }
}

impl<S, V> Actor<S, V>
where
    S: Serialize + DeserializeOwned + Send + 'static,
    V: Send + 'static,
{
    /// The definition's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Replaces the options.
    pub fn options(mut self, options: ActorOptions) -> Self {
        self.options = options;
        self
    }

    /// Adds an action. Arguments arrive as a positional array and are decoded into `A` (see the module docs:
    /// a tuple, a single value, or `()`); the output is sent back encoded.
    pub fn action<A, R, F, Fut>(mut self, name: &str, handler: F) -> Self
    where
        A: DeserializeOwned + Send + 'static,
        R: Serialize + 'static,
        F: Fn(Ctx<S, V>, A) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ActorResult<R>> + Send + 'static,
    {
        let handler = Arc::new(handler);
        let action_name = name.to_string();
        let erased: ActionFn<S, V> = Arc::new(move |ctx, args| {
            let handler = handler.clone();
            let action_name = action_name.clone();
            Box::pin(async move {
                let args: A = decode_args(&action_name, args)?;
                let output = handler(ctx, args).await?;
                encode_output(&output)
            })
        });
        self.actions.insert(name.to_string(), erased);
        let mut names: Vec<String> = self.actions.keys().cloned().collect();
        names.sort_unstable();
        self.action_names = Arc::new(names);
        self
    }

    /// Declares queue `name`: clients send to it with `POST /queue/{name}` (the JS client's `handle.send`), the
    /// run loop receives from it. Sends to undeclared queues are refused with `queue.unknown_queue`.
    pub fn queue(mut self, name: &str) -> Self {
        self.queues.insert(name.to_string());
        self
    }

    /// The actor's workflow (see [`crate::sdk::workflow`]): runs in the run loop, its history recorded in the
    /// actor's database and replayed on every wake until the workflow finishes.
    pub fn workflow<F, Fut>(mut self, f: F) -> Self
    where
        F: Fn(WorkflowCtx<S, V>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ActorResult<()>> + Send + 'static,
        S: Sync,
        V: Sync,
    {
        let f = Arc::new(f);
        self.run = Some(Arc::new(move |ctx| {
            let f = f.clone();
            Box::pin(async move { super::workflow::drive(ctx, f.as_ref()).await })
        }));
        self.is_workflow = true;
        self
    }

    /// The run loop: started after every wake, stopped on sleep and destroy (see [`crate::sdk::run`]).
    pub fn run<F, Fut>(mut self, f: F) -> Self
    where
        F: Fn(RunCtx<S, V>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ActorResult<()>> + Send + 'static,
    {
        self.run = Some(Arc::new(move |ctx| Box::pin(f(ctx))));
        self
    }

    /// Computes the initial state from the create input (runs once, when the actor is created).
    pub fn create_state<I, F>(mut self, f: F) -> Self
    where
        I: DeserializeOwned,
        F: Fn(I) -> ActorResult<S> + Send + Sync + 'static,
    {
        self.create_state = Arc::new(move |input: Value| {
            let input: I = input
                .deserialized()
                .map_err(|e| ActorError::from(ClientError::invalid_request(format!("invalid actor input: {e}"))))?;
            f(input)
        });
        self
    }

    /// Runs on every start, first of all, inside a savepoint that is rolled back if it fails. `is_new` is true
    /// on the very first start. Use it to create or upgrade the actor's tables (the schema hook: "migrate" in
    /// Tern means moving an actor between regions).
    pub fn on_schema<F, Fut>(mut self, f: F) -> Self
    where
        F: Fn(Sql, bool) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ActorResult<()>> + Send + 'static,
    {
        self.on_schema = Some(Arc::new(move |sql, is_new| Box::pin(f(sql, is_new))));
        self
    }

    /// Runs once, when the actor is created, after its state exists. Receives the create input.
    pub fn on_create<I, F, Fut>(mut self, f: F) -> Self
    where
        I: DeserializeOwned + Send + 'static,
        F: Fn(Ctx<S, V>, I) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ActorResult<()>> + Send + 'static,
    {
        let f = Arc::new(f);
        self.on_create = Some(Arc::new(move |ctx, input: Value| {
            let f = f.clone();
            Box::pin(async move {
                let input: I = input
                    .deserialized()
                    .map_err(|e| ActorError::from(ClientError::invalid_request(format!("invalid actor input: {e}"))))?;
                f(ctx, input).await
            })
        }));
        self
    }

    /// Creates the ephemeral vars on every start (after the create hooks, before the wake hook).
    pub fn create_vars<F, Fut>(mut self, f: F) -> Self
    where
        F: Fn(Ctx<S, V>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ActorResult<V>> + Send + 'static,
    {
        self.create_vars = Some(Arc::new(move |ctx| Box::pin(f(ctx))));
        self
    }

    /// Runs on every start: create, wake after sleep, restart after a crash.
    pub fn on_wake<F, Fut>(mut self, f: F) -> Self
    where
        F: Fn(Ctx<S, V>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ActorResult<()>> + Send + 'static,
    {
        self.on_wake = Some(Arc::new(move |ctx| Box::pin(f(ctx))));
        self
    }

    /// Runs before the actor sleeps (best effort: not after a crash).
    pub fn on_sleep<F, Fut>(mut self, f: F) -> Self
    where
        F: Fn(Ctx<S, V>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ActorResult<()>> + Send + 'static,
    {
        self.on_sleep = Some(Arc::new(move |ctx| Box::pin(f(ctx))));
        self
    }

    /// Runs when the actor is destroyed, while it is still fully functional.
    pub fn on_destroy<F, Fut>(mut self, f: F) -> Self
    where
        F: Fn(Ctx<S, V>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ActorResult<()>> + Send + 'static,
    {
        self.on_destroy = Some(Arc::new(move |ctx| Box::pin(f(ctx))));
        self
    }

    /// Runs (synchronously) after any turn that changed the state, with the new state.
    pub fn on_state_change<F>(mut self, f: F) -> Self
    where
        F: Fn(&S) + Send + Sync + 'static,
    {
        self.on_state_change = Some(Arc::new(f));
        self
    }

    /// Validates a connecting client's parameters; an error rejects the connection (or stateless action).
    pub fn on_before_connect<P, F, Fut>(mut self, f: F) -> Self
    where
        P: DeserializeOwned + Send + 'static,
        F: Fn(Ctx<S, V>, P) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ActorResult<()>> + Send + 'static,
    {
        let f = Arc::new(f);
        self.on_before_connect = Some(Arc::new(move |ctx, params: Value| {
            let f = f.clone();
            Box::pin(async move {
                let params: P = params.deserialized().map_err(|e| {
                    ActorError::from(ClientError::invalid_request(format!("invalid connection parameters: {e}")))
                })?;
                f(ctx, params).await
            })
        }));
        self
    }

    /// Computes a connection's initial state from its parameters.
    pub fn create_conn_state<P, T, F, Fut>(mut self, f: F) -> Self
    where
        P: DeserializeOwned + Send + 'static,
        T: Serialize + 'static,
        F: Fn(Ctx<S, V>, P) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ActorResult<T>> + Send + 'static,
    {
        let f = Arc::new(f);
        self.create_conn_state = Some(Arc::new(move |ctx, params: Value| {
            let f = f.clone();
            Box::pin(async move {
                let params: P = params.deserialized().map_err(|e| {
                    ActorError::from(ClientError::invalid_request(format!("invalid connection parameters: {e}")))
                })?;
                let state = f(ctx, params).await?;
                encode_output(&state)
            })
        }));
        self
    }

    /// Runs when a connection has opened; the connection is already in `c.conns()`.
    pub fn on_connect<F, Fut>(mut self, f: F) -> Self
    where
        F: Fn(Ctx<S, V>, Conn) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ActorResult<()>> + Send + 'static,
    {
        self.on_connect = Some(Arc::new(move |ctx, conn| Box::pin(f(ctx, conn))));
        self
    }

    /// Runs when a connection has closed.
    pub fn on_disconnect<F, Fut>(mut self, f: F) -> Self
    where
        F: Fn(Ctx<S, V>, Conn) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ActorResult<()>> + Send + 'static,
    {
        self.on_disconnect = Some(Arc::new(move |ctx, conn| Box::pin(f(ctx, conn))));
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn arr(items: Vec<Value>) -> Value {
        Value::Array(items)
    }

    #[test]
    fn args_decode_as_tuple_single_value_unit_and_padded_options() {
        let five = Value::Integer(5.into());
        assert_eq!(decode_args::<(i64,)>("a", arr(vec![five.clone()])).unwrap(), (5,));
        assert_eq!(decode_args::<i64>("a", arr(vec![five.clone()])).unwrap(), 5);
        decode_args::<()>("a", arr(vec![])).unwrap();
        let (s, p): (String, Option<i64>) = decode_args("a", arr(vec![Value::Text("x".into())])).unwrap();
        assert_eq!((s.as_str(), p), ("x", None));
        let err = decode_args::<(i64,)>("inc", arr(vec![Value::Text("nope".into())])).unwrap_err();
        assert_eq!(err.qualified_code(), "actor.invalid_request");
    }
}
