//! Alarms: when each actor next needs to wake for a schedule, kept in the node database (so they survive a
//! crash) and in memory, with one timer task that wakes actors when their alarm is due.
//!
//! The rule that keeps schedules from being missed: an actor's alarm is never later than its earliest
//! schedule. A turn that adds an earlier schedule lowers the alarm *before* it commits; a turn that fires or
//! removes schedules moves the alarm later only *after* it commits; and every start re-reads the actor's
//! schedules. An alarm that turns out early is harmless: the actor wakes, finds nothing due and re-arms.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use tern_proto::ClientError;
use tokio::sync::Notify;

use super::command::Command;
use super::host::HostCore;
use crate::clock::now_ms;
use crate::sync::lock;

/// A due alarm stays armed this long after it is handed to its actor, so that an actor that fails before
/// re-arming is tried again.
const RETRY_MS: i64 = 30_000;

#[derive(Default)]
struct Index {
    by_actor: HashMap<String, i64>,
    queue: BTreeSet<(i64, String)>,
}

impl Index {
    fn set(&mut self, actor_id: &str, at: Option<i64>) {
        if let Some(old) = self.by_actor.remove(actor_id) {
            self.queue.remove(&(old, actor_id.to_string()));
        }
        if let Some(at) = at {
            self.by_actor.insert(actor_id.to_string(), at);
            self.queue.insert((at, actor_id.to_string()));
        }
    }
}

/// The node's alarms.
#[derive(Default)]
pub(crate) struct Alarms {
    index: Mutex<Index>,
    changed: Arc<Notify>,
}

impl Alarms {
    /// Alarms as loaded from the node database.
    pub fn from_records(records: Vec<(String, i64)>) -> Alarms {
        let alarms = Alarms::default();
        let mut index = lock(&alarms.index);
        for (actor_id, at) in records {
            index.set(&actor_id, Some(at));
        }
        drop(index);
        alarms
    }

    /// Sets (or clears) an actor's alarm, durably first.
    pub async fn set(&self, core: &HostCore, actor_id: &str, at: Option<i64>) -> Result<(), ClientError> {
        if lock(&self.index).by_actor.get(actor_id).copied() == at {
            return Ok(());
        }
        core.node_db.set_alarm(actor_id, at).await?;
        lock(&self.index).set(actor_id, at);
        self.changed.notify_one();
        Ok(())
    }

    /// When the actor's alarm is due, if one is armed.
    pub fn armed(&self, actor_id: &str) -> Option<i64> {
        lock(&self.index).by_actor.get(actor_id).copied()
    }

    /// Forgets an actor's alarm in memory only (its record went with the actor's row in `node.db`).
    pub fn forget(&self, actor_id: &str) {
        lock(&self.index).set(actor_id, None);
    }

    /// Lowers an actor's alarm to `at` if that is earlier than the one armed (or none is).
    pub async fn lower_to(&self, core: &HostCore, actor_id: &str, at: Option<i64>) -> Result<(), ClientError> {
        let Some(at) = at else { return Ok(()) };
        let armed = lock(&self.index).by_actor.get(actor_id).copied();
        if armed.is_some_and(|armed| armed <= at) {
            return Ok(());
        }
        self.set(core, actor_id, Some(at)).await
    }

    /// Takes the actors whose alarms are due at `now`, re-arming each [`RETRY_MS`] later in memory.
    fn take_due(&self, now: i64) -> Vec<String> {
        let mut index = lock(&self.index);
        let due: Vec<String> = index.queue.iter().take_while(|(at, _)| *at <= now).map(|(_, id)| id.clone()).collect();
        for id in &due {
            index.set(id, Some(now + RETRY_MS));
        }
        due
    }

    fn next(&self) -> Option<i64> {
        lock(&self.index).queue.first().map(|(at, _)| *at)
    }
}

/// Wakes actors when their alarms are due, until the host is gone.
pub(crate) async fn run_timer(core: Weak<HostCore>) {
    loop {
        let Some(host) = core.upgrade() else { return };
        let next = host.alarms.next();
        let changed = host.alarms.changed.clone();
        drop(host);
        let wait = match next {
            Some(at) => Duration::from_millis((at - now_ms()).max(0) as u64),
            // Nothing armed: wake up now and then to notice that the host is gone.
            None => Duration::from_secs(1),
        };
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = changed.notified() => continue,
        }
        let Some(host) = core.upgrade() else { return };
        for actor_id in host.alarms.take_due(now_ms()) {
            let host = host.clone();
            tokio::spawn(async move {
                if let Err(e) = host.dispatch(&actor_id, Command::Alarm).await {
                    tracing::warn!(actor_id, error = %e, "cannot deliver a due alarm");
                }
            });
        }
    }
}
