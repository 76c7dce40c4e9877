//! The registry: the set of actor definitions an application runs.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::command::Command;
use super::host::HostCore;
use super::lifecycle::StartInfo;
use super::mailbox;
use crate::sdk::Actor;

/// A definition with its state and vars types erased, so definitions of different types can live together.
pub(crate) trait ActorFactory: Send + Sync {
    /// Spawns an instance task reading `rx`; `mailbox` lets its run loop send it commands.
    fn spawn(
        self: Arc<Self>,
        core: Arc<HostCore>,
        start: StartInfo,
        rx: mailbox::Receiver<Command>,
        mailbox: mailbox::WeakSender<Command>,
    );

    /// The definition's action timeout (actor-to-actor calls to it are bounded by it).
    fn action_timeout(&self) -> std::time::Duration;

    /// The definition's options.
    fn options(&self) -> &crate::sdk::ActorOptions;
}

impl<S, V> ActorFactory for Actor<S, V>
where
    S: Serialize + DeserializeOwned + Send + 'static,
    V: Default + Send + 'static,
{
    fn spawn(
        self: Arc<Self>,
        core: Arc<HostCore>,
        start: StartInfo,
        rx: mailbox::Receiver<Command>,
        mailbox: mailbox::WeakSender<Command>,
    ) {
        tokio::spawn(super::instance::run(self, core, start, rx, mailbox));
    }

    fn action_timeout(&self) -> std::time::Duration {
        self.options.action_timeout
    }

    fn options(&self) -> &crate::sdk::ActorOptions {
        &self.options
    }
}

/// The actor definitions of an application, by name. Hand it to [`crate::run`] (or the CLI entry point).
#[derive(Clone, Default)]
pub struct Registry {
    pub(crate) defs: BTreeMap<String, Arc<dyn ActorFactory>>,
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Registry {
        Registry::default()
    }

    /// Adds a definition, replacing any earlier one with the same name.
    pub fn register<S, V>(mut self, actor: Actor<S, V>) -> Registry
    where
        S: Serialize + DeserializeOwned + Send + 'static,
        V: Default + Send + 'static,
    {
        self.defs.insert(actor.name.to_string(), Arc::new(actor));
        self
    }

    /// The registered names, sorted.
    pub fn names(&self) -> Vec<String> {
        self.defs.keys().cloned().collect()
    }

    pub(crate) fn get(&self, name: &str) -> Option<&Arc<dyn ActorFactory>> {
        self.defs.get(name)
    }
}
