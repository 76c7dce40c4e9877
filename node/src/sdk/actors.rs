//! Actor-to-actor calls: from inside an action, hook or run-loop step, actor code reaches the other actors of its
//! node through [`Ctx::actors`](super::Ctx::actors) (RivetKit's `c.client()`).
//!
//! ```ignore
//! let counter = c.actors().get_or_create("counter", ["tenant-7"]);
//! let count: i64 = counter.call("increment", 5).await?;             // positional arguments, typed output
//! let raw = counter.action("getCount", vec![]).await?;               // or a `Value` in, a `Value` out
//! ```
//!
//! Calls go through the same backend as the gateway's requests: on one node (`tern dev`) straight to the host, in
//! process, with no HTTP loopback and no encoding to bytes; on a cluster node through the cluster's backend, so
//! keys obey the directory (one actor per key cluster-wide) and a callee homed on another node is one QUIC hop
//! away. A call is exactly a stateless action from a client (the callee's before-connect hook sees `null` parameters), so the callee
//! commits its changes before the call returns, and its errors reach the caller as [`ActorError`]s carrying the
//! same [`ClientError`] (`user.*` with its metadata, `actor.not_found`, `actor.action_not_found`, ...): `?`
//! passes them on to the caller's own client unchanged.
//!
//! Semantics to keep in mind:
//!
//! - **No self-calls.** Actions are turn-based: while an actor runs an action, its next command waits for the
//!   turn to end. A call to its own actions (same actor id) would wait for itself forever, so it fails at once
//!   with `actor.self_call` (400); call the function directly instead (and use `c.destroy()`, not a handle's
//!   [`ActorHandle::destroy`], for the actor itself).
//! - **Cycles time out.** A cycle A → B → A deadlocks the same way, across actors. Every call is therefore bounded
//!   by the calling unit's remaining time (its action, hook or step timeout) and by the callee's action timeout,
//!   whichever ends first; when it runs out the call fails with `actor.action_timed_out` (408) instead of
//!   hanging. Resolving a key (and creating the actor, which runs its create hooks) counts against the same
//!   budget.
//! - **Not transactional across actors.** The callee's changes are committed when the call returns. If the
//!   caller's action fails afterwards, its own changes are rolled back but the callee's stay.
//! - Key-based handles resolve the key on every call, like the JavaScript client's handles: after a destroy, a
//!   `get_or_create` handle reaches the new actor and a `get` handle gets `actor.not_found`.
//! - Keys obey the same limits as clients' (a part of at most 128 bytes, at most 1 KiB serialized): every call
//!   of a handle with a larger key, and a `create` with one, fails with `actor.key_too_large`.

use std::future::Future;
use std::sync::{Arc, Weak};
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;
use tern_gateway::backend::{Backend, CreateRequest};
use tern_proto::key::ActorKey;
use tern_proto::{ClientError, Value};
use tokio::time::Instant;

use super::error::{ActorError, ActorResult};

/// What actor-to-actor calls need from the node they run on; the runtime's host provides it.
pub(crate) trait ActorCalls: Send + Sync {
    /// Where a call from actor code goes: the cluster's backend on a cluster node, else the node itself.
    fn backend(self: Arc<Self>) -> Result<Arc<dyn Backend>, ClientError>;

    /// The action timeout of the actor definition `name`; `None` when no definition has that name.
    fn action_timeout(&self, name: &str) -> Option<Duration>;
}

tokio::task_local! {
    /// When the actor code running on this task (an action, hook or step) runs out of time.
    static DEADLINE: Instant;
}

/// Runs `work` (a unit of actor code bounded by `budget`) so that actor-to-actor calls made from it know how much
/// time is left. Nested scopes keep the earlier deadline.
pub(crate) async fn with_budget<F: Future>(budget: Duration, work: F) -> F::Output {
    let Some(deadline) = Instant::now().checked_add(budget) else { return work.await };
    let deadline = DEADLINE.try_with(|outer| (*outer).min(deadline)).unwrap_or(deadline);
    DEADLINE.scope(deadline, work).await
}

/// The time left to the actor code running on this task, if it runs within a budget.
fn remaining() -> Option<Duration> {
    DEADLINE.try_with(|deadline| deadline.saturating_duration_since(Instant::now())).ok()
}

/// An actor key: its parts. A single string is a one-part key, `()` the empty key. (The parts are held to the key
/// limits when a handle uses them.)
pub trait IntoKey {
    /// The key's parts.
    fn into_key(self) -> Vec<String>;
}

impl IntoKey for () {
    fn into_key(self) -> Vec<String> {
        Vec::new()
    }
}

impl IntoKey for &str {
    fn into_key(self) -> Vec<String> {
        vec![self.to_string()]
    }
}

impl IntoKey for String {
    fn into_key(self) -> Vec<String> {
        vec![self]
    }
}

impl IntoKey for &String {
    fn into_key(self) -> Vec<String> {
        vec![self.clone()]
    }
}

impl<T: AsRef<str>, const N: usize> IntoKey for [T; N] {
    fn into_key(self) -> Vec<String> {
        self.iter().map(|part| part.as_ref().to_string()).collect()
    }
}

impl<T: AsRef<str>, const N: usize> IntoKey for &[T; N] {
    fn into_key(self) -> Vec<String> {
        self.iter().map(|part| part.as_ref().to_string()).collect()
    }
}

impl<T: AsRef<str>> IntoKey for &[T] {
    fn into_key(self) -> Vec<String> {
        self.iter().map(|part| part.as_ref().to_string()).collect()
    }
}

impl<T: AsRef<str>> IntoKey for Vec<T> {
    fn into_key(self) -> Vec<String> {
        self.iter().map(|part| part.as_ref().to_string()).collect()
    }
}

/// Positional arguments from a serializable value, as the Rust client's `to_args`: a tuple or array as is, `()`
/// as none, anything else as the single argument.
fn to_args(args: impl Serialize) -> ActorResult<Vec<Value>> {
    Ok(match Value::serialized(&args).map_err(|e| ActorError::internal(format!("action arguments: {e}")))? {
        Value::Array(items) => items,
        Value::Null => Vec::new(),
        single => vec![single],
    })
}

fn to_value(value: impl Serialize, what: &str) -> ActorResult<Value> {
    Value::serialized(&value).map_err(|e| ActorError::internal(format!("{what}: {e}")))
}

/// A client to the other actors (of the whole cluster, on a cluster node), given to actor code by [`Ctx::actors`](super::Ctx::actors). Cheap to
/// clone. See the [module documentation](self) for the semantics of calls.
#[derive(Clone)]
pub struct ActorClient {
    node: Weak<dyn ActorCalls>,
    caller: Arc<str>,
}

impl ActorClient {
    /// A client for the actor `caller` on `node` (weak, so a stopped node is not kept alive by actor code).
    pub(crate) fn new(node: Weak<dyn ActorCalls>, caller: &str) -> ActorClient {
        ActorClient { node, caller: caller.into() }
    }

    fn handle(&self, name: &str, target: Target) -> ActorHandle {
        ActorHandle { client: self.clone(), name: name.to_string(), target }
    }

    /// The existing actor `name` with `key`; calls fail with `actor.not_found` while there is none.
    pub fn get(&self, name: &str, key: impl IntoKey) -> ActorHandle {
        self.handle(name, Target::Key { key: ActorKey::new(key.into_key()), create: false, input: None })
    }

    /// The actor `name` with `key`, created (without input) by the first call that finds none; see
    /// [`ActorHandle::with_input`] to create it with input.
    pub fn get_or_create(&self, name: &str, key: impl IntoKey) -> ActorHandle {
        self.handle(name, Target::Key { key: ActorKey::new(key.into_key()), create: true, input: None })
    }

    /// The actor `name` with id `actor_id`; calls fail with `actor.not_found` if it does not exist, was
    /// destroyed or has another name.
    pub fn get_for_id(&self, name: &str, actor_id: &str) -> ActorHandle {
        self.handle(name, Target::Id(actor_id.to_string()))
    }

    /// Creates the actor `name` with `key` and `input` (`()` for none), waiting until its create hooks ran, and
    /// returns a handle on it (by id). Fails with `actor.duplicate_key` if the key is taken,
    /// `actor.key_too_large` if it is over the key limits, and `actor.not_registered` for an unknown name.
    pub async fn create(&self, name: &str, key: impl IntoKey, input: impl Serialize) -> ActorResult<ActorHandle> {
        let input = Some(to_value(input, "create input")?).filter(|v| !v.is_null());
        let key = ActorKey::new(key.into_key())?;
        let request = CreateRequest { name: name.to_string(), key: key.clone(), input, region: None };
        let creating = self.handle(name, Target::Key { key: Ok(key), create: true, input: None });
        let created = creating.bounded("create", |route| async move { route.create_actor(request).await }).await?;
        Ok(self.handle(name, Target::Id(created.actor_id)))
    }
}

/// Which actor a handle reaches.
#[derive(Clone)]
enum Target {
    /// By key, resolved on every call; `create` makes a missing actor (with `input`) instead of failing. A key
    /// over the limits fails every call with its error.
    Key { key: Result<ActorKey, ClientError>, create: bool, input: Option<Value> },
    /// By id.
    Id(String),
}

/// One actor, as seen by another actor's code. Cheap to clone.
#[derive(Clone)]
pub struct ActorHandle {
    client: ActorClient,
    name: String,
    target: Target,
}

impl ActorHandle {
    /// For a [`ActorClient::get_or_create`] handle: the input the actor is created with if a call finds none.
    /// (Other handles never create, so they ignore it.)
    pub fn with_input(mut self, input: impl Serialize) -> ActorResult<ActorHandle> {
        let value = Some(to_value(input, "create input")?).filter(|v| !v.is_null());
        if let Target::Key { input, .. } = &mut self.target {
            *input = value;
        }
        Ok(self)
    }

    /// Calls action `action` with positional `args` (a tuple or array is the argument list, `()` is none, any
    /// other value is the single argument) and decodes its output into `R`.
    pub async fn call<R: DeserializeOwned>(&self, action: &str, args: impl Serialize) -> ActorResult<R> {
        let output = self.action(action, to_args(args)?).await?;
        output
            .deserialized()
            .map_err(|e| ActorError::internal(format!("output of action '{action}' of actor '{}': {e}", self.name)))
    }

    /// Calls action `action` with the argument list `args` and returns its output as is.
    pub async fn action(&self, action: &str, args: Vec<Value>) -> ActorResult<Value> {
        let name = action.to_string();
        self.bounded(action, |route| async move {
            let actor_id = self.resolve_with(&*route).await?;
            route.call_action(&actor_id, &name, Value::Array(args), None).await
        })
        .await
    }

    /// Sends `body` to the actor's queue `queue`; returns once the message is durable (the other actor's run loop
    /// handles it later).
    pub async fn send(&self, queue: &str, body: impl Serialize) -> ActorResult<()> {
        let (queue, body) = (queue.to_string(), Value::serialized(&body).map_err(ActorError::internal)?);
        self.bounded("queue send", |route| async move {
            let actor_id = self.resolve_with(&*route).await?;
            route.queue_send(&actor_id, &queue, body, None).await.map(drop)
        })
        .await
    }

    /// Sends `body` to the actor's queue `queue` and waits, at most `wait`, until the actor's run loop has
    /// completed the message: its response (`None` when the handler gave none, or the wait ran out first; the
    /// message stays queued either way). The wait counts against the call's budget.
    pub async fn send_and_wait(&self, queue: &str, body: impl Serialize, wait: Duration) -> ActorResult<Option<Value>> {
        let (queue, body) = (queue.to_string(), Value::serialized(&body).map_err(ActorError::internal)?);
        self.bounded("queue send", |route| async move {
            let actor_id = self.resolve_with(&*route).await?;
            Ok(route.queue_send(&actor_id, &queue, body, Some(wait)).await?.response)
        })
        .await
    }

    /// Destroys the actor (its destroy hook runs and its data is deleted); `actor.not_found` if there is none.
    pub async fn destroy(&self) -> ActorResult<()> {
        self.bounded("destroy", |route| async move {
            let actor_id = self.resolve_with(&*route).await?;
            route.destroy_actor(&actor_id).await
        })
        .await
    }

    /// The actor's id (creating the actor first for a [`ActorClient::get_or_create`] handle).
    pub async fn resolve(&self) -> ActorResult<String> {
        self.bounded("resolve", |route| async move { self.resolve_with(&*route).await }).await
    }

    /// Runs `work` against the node's backend within the call's budget: the calling unit's remaining time and the
    /// callee's action timeout, whichever is shorter. An unknown actor name is `actor.not_registered`.
    async fn bounded<T, F, Fut>(&self, what: &str, work: F) -> ActorResult<T>
    where
        F: FnOnce(Arc<dyn Backend>) -> Fut,
        Fut: Future<Output = Result<T, ClientError>>,
    {
        let node = self.client.node.upgrade().ok_or_else(|| ActorError::from(ClientError::stopping()))?;
        let Some(callee) = node.action_timeout(&self.name) else {
            return Err(ClientError::not_registered(&self.name).into());
        };
        let budget = remaining().map_or(callee, |left| left.min(callee));
        match tokio::time::timeout(budget, work(node.backend()?)).await {
            Ok(result) => result.map_err(ActorError::from),
            Err(_) => Err(ClientError::action_timed_out(what, budget.as_millis() as u64).into()),
        }
    }

    /// The callee's id; refuses the calling actor itself.
    async fn resolve_with(&self, route: &dyn Backend) -> Result<String, ClientError> {
        let actor_id = match &self.target {
            Target::Id(id) => route
                .get_actors_by_ids(std::slice::from_ref(id))
                .await?
                .into_iter()
                .find(|info| info.destroy_ts.is_none() && info.name == self.name)
                .map(|info| info.actor_id)
                .ok_or_else(|| ClientError::actor_not_found(id))?,
            Target::Key { key, create: false, .. } => {
                let key = key.as_ref().map_err(Clone::clone)?;
                route
                    .get_actor_by_key(&self.name, key)
                    .await?
                    .map(|info| info.actor_id)
                    .ok_or_else(|| ClientError::actor_not_found(format!("{}/{}", self.name, key.serialize())))?
            }
            Target::Key { key, create: true, input } => {
                let key = key.clone()?;
                let request = CreateRequest { name: self.name.clone(), key, input: input.clone(), region: None };
                route.get_or_create_actor(request).await?.0.actor_id
            }
        };
        if actor_id == *self.client.caller {
            return Err(ClientError::self_call());
        }
        Ok(actor_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_and_arguments_take_the_usual_shapes() {
        assert_eq!(().into_key(), Vec::<String>::new());
        assert_eq!("a".into_key(), ["a"]);
        assert_eq!(["org", "room"].into_key(), ["org", "room"]);
        assert_eq!(vec!["x".to_string()].into_key(), ["x"]);
        let int = |n: i64| Value::Integer(n.into());
        assert_eq!(to_args(()).unwrap(), Vec::<Value>::new());
        assert_eq!(to_args(5).unwrap(), [int(5)]);
        assert_eq!(to_args((1, "b")).unwrap(), [int(1), Value::Text("b".into())]);
        assert_eq!(to_args([1, 2]).unwrap(), [int(1), int(2)]);
    }

    #[tokio::test]
    async fn nested_budgets_keep_the_earlier_deadline() {
        assert_eq!(remaining(), None);
        let inner = with_budget(Duration::from_secs(1), async {
            with_budget(Duration::from_secs(60), async { remaining().unwrap() }).await
        })
        .await;
        assert!(inner <= Duration::from_secs(1));
        let unbounded = with_budget(Duration::MAX, async { remaining() }).await;
        assert_eq!(unbounded, None);
    }
}
