//! Firing an actor's due schedules inside its turn, and keeping its alarm armed (see [`super::alarms`]).

use std::sync::atomic::Ordering;

use serde::Serialize;
use serde::de::DeserializeOwned;
use tern_proto::ClientError;

use super::instance::Instance;
use crate::clock::now_ms;
use crate::sdk::recurrence;
use crate::storage::ActorDb;
use crate::storage::schedules::{self, Fire, Repeat};

impl<S, V> Instance<S, V>
where
    S: Serialize + DeserializeOwned + Send + 'static,
    V: Default + Send + 'static,
{
    /// Runs every schedule that is due, each action as its own atomic unit. A one-shot event is removed and a
    /// recurring job moved to its next time in the same transaction as the action's changes, so each due time
    /// fires exactly once. A failing action is recorded (recurring jobs) and logged, not retried.
    pub(crate) async fn fire_due(&self, db: &ActorDb) -> Result<(), ClientError> {
        let conn = db.connection();
        let now = now_ms();
        for schedule in schedules::due(conn, now).await? {
            let fired_at = now_ms();
            let result = if schedule.action.is_empty() {
                Ok(tern_proto::Value::Null) // a wake-up (workflow sleep): waking the actor is all it does
            } else {
                let attributes = vec![("schedule.id".to_string(), schedule.id.clone())];
                let fire = async {
                    if !self.def.actions.contains_key(&schedule.action) {
                        return Err(ClientError::action_not_found(&schedule.action));
                    }
                    self.atomically(db, self.run_action(None, &schedule.action, schedule.args.clone())).await
                };
                self.in_span(&format!("schedule {}", schedule.action), attributes, fire).await
            };
            if let Err(e) = &result {
                tracing::warn!(actor_id = %self.shared.actor_id, schedule = %schedule.id, error = %e, "scheduled action failed");
            }
            let next = recurrence::next_fire(&schedule.repeat, schedule.run_at, now_ms());
            match (&schedule.repeat, next) {
                (Repeat::Once, _) | (_, None) => {
                    schedules::remove(conn, !matches!(schedule.repeat, Repeat::Once), &schedule.id).await?;
                }
                (_, Some(next)) => schedules::reschedule(conn, &schedule, next).await?,
            }
            if !matches!(schedule.repeat, Repeat::Once) {
                let fire = Fire {
                    action: schedule.action.clone(),
                    scheduled_at: schedule.run_at,
                    fired_at,
                    finished_at: now_ms(),
                    result: if result.is_ok() { "ok" } else { "error" }.to_string(),
                    error: result.err().map(|e| e.to_string()),
                };
                schedules::record_fire(conn, &schedule.id, &fire, schedule.max_history).await?;
            }
        }
        self.shared.schedules_changed.store(true, Ordering::Release);
        Ok(())
    }

    /// Before the turn commits: when schedules changed, lowers the alarm to the earliest schedule if that is
    /// earlier. Returns the earliest schedule to arm exactly after the commit (`None`: nothing to do).
    pub(crate) async fn arm_before_commit(&self, db: &ActorDb) -> Result<Option<Option<i64>>, ClientError> {
        if !self.shared.schedules_changed.swap(false, Ordering::AcqRel) {
            return Ok(None);
        }
        let next = schedules::next_due(db.connection()).await?;
        self.core.alarms.lower_to(&self.core, &self.shared.actor_id, next).await?;
        Ok(Some(next))
    }

    /// After the turn committed: arms the alarm at exactly the earliest schedule (possibly later, or none).
    pub(crate) async fn arm_after_commit(&self, next: Option<Option<i64>>) {
        let Some(next) = next else { return };
        if let Err(e) = self.core.alarms.set(&self.core, &self.shared.actor_id, next).await {
            // The alarm stays at its earlier time: the actor wakes early and re-arms then.
            tracing::warn!(actor_id = %self.shared.actor_id, error = %e, "cannot re-arm the alarm");
        }
    }
}
