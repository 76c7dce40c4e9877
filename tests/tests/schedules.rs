//! Schedules and cron jobs with real processes: they fire with their arguments, wake sleeping actors, survive a
//! `kill -9` and fire once, and bad input gets clear errors.

use std::path::PathBuf;
use std::time::Duration;

use serde_json::{Value, json};
use tern_tests::{Api, TernProcess, eventually};

fn example_binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_tern-example"))
}

/// The `clock` actor of a node.
struct Clock {
    api: Api,
    id: String,
}

impl Clock {
    async fn create(node: &TernProcess, key: &str) -> Clock {
        let api = Api::new(node);
        let id = api.actor("clock", key).await;
        Clock { api, id }
    }

    /// The same actor through a node that was restarted.
    fn after_restart(self, node: &TernProcess) -> Clock {
        Clock { api: Api::new(node), id: self.id }
    }

    /// Calls an action; its output, or the error body.
    async fn call(&self, action: &str, args: Value) -> Result<Value, Value> {
        self.api.call(&self.id, action, args).await.map_err(|(_, _, body)| body)
    }

    async fn fired(&self) -> Vec<String> {
        serde_json::from_value(self.call("fired", json!([])).await.unwrap()).unwrap()
    }

    /// The actor's record from the listing by id, which never wakes it.
    async fn info(&self) -> serde_json::Value {
        let url = format!("{}/actors?actor_ids={}", self.api.endpoint, self.id);
        let listed: serde_json::Value = self.api.http.get(url).send().await.unwrap().json().await.unwrap();
        listed["actors"][0].clone()
    }

    async fn sleep(&self) {
        let url = format!("{}/actors/{}/sleep", self.api.endpoint, self.id);
        assert!(self.api.http.post(url).json(&json!({})).send().await.unwrap().status().is_success());
    }
}

const CAP: Duration = Duration::from_secs(30);

#[tokio::test]
async fn a_schedule_fires_its_action_with_arguments_and_wakes_a_sleeping_actor() {
    let dir = tempfile::tempdir().unwrap();
    let node = TernProcess::start(&example_binary(), &dir.path().join("data"));
    let clock = Clock::create(&node, "wake").await;
    // Due in 2 s: time to put the actor to sleep and see it asleep first.
    let id = clock.call("remindIn", json!([2000, "tea"])).await.unwrap();
    let pending = clock.call("pending", json!([])).await.unwrap();
    assert_eq!(pending[0]["id"], id);
    assert_eq!((pending[0]["action"].clone(), pending[0]["args"].clone()), (json!("remember"), json!(["tea"])));
    let cancelled = clock.call("remindIn", json!([1500, "never"])).await.unwrap();
    assert_eq!(clock.call("cancel", json!([cancelled])).await.unwrap(), json!(true));
    clock.sleep().await;
    // Nothing touches the actor now: only its alarm can wake it. Watched from outside (the listing by id does not
    // wake an actor): asleep first, then awake again with a later start.
    let asleep = clock.info().await;
    assert!(asleep["sleep_ts"].is_i64(), "the actor sleeps: {asleep}");
    eventually("the alarm wakes the actor", CAP, || async {
        let info = clock.info().await;
        (info["sleep_ts"].is_null() && info["start_ts"].as_i64() > asleep["start_ts"].as_i64()).then_some(())
    })
    .await;
    let woken = eventually("the schedule fired", CAP, || async {
        let fired = clock.fired().await;
        (!fired.is_empty()).then_some(fired)
    })
    .await;
    assert_eq!(woken, ["tea"], "fired once, with its argument; the cancelled event did not fire");
    assert_eq!(clock.call("pending", json!([])).await.unwrap(), json!([]));
}

#[tokio::test]
async fn a_schedule_due_while_the_node_is_down_fires_once_after_restart() {
    let dir = tempfile::tempdir().unwrap();
    let mut node = TernProcess::start(&example_binary(), &dir.path().join("data"));
    let clock = Clock::create(&node, "crash").await;
    clock.call("remindIn", json!([500, "after the crash"])).await.unwrap();
    node.kill9();
    // Let the due time pass while the node is down.
    tokio::time::sleep(Duration::from_millis(800)).await;
    node.restart();
    let clock = clock.after_restart(&node);
    let fired = eventually("the overdue schedule fired", CAP, || async {
        let fired = clock.fired().await;
        (!fired.is_empty()).then_some(fired)
    })
    .await;
    assert_eq!(fired, ["after the crash"]);
    assert_eq!(clock.call("pending", json!([])).await.unwrap(), json!([]), "nothing left to fire again");
    // A second restart does not fire it again.
    node.kill9();
    node.restart();
    let clock = clock.after_restart(&node);
    assert_eq!(clock.fired().await, ["after the crash"]);
}

#[tokio::test]
async fn interval_and_cron_jobs_fire_and_keep_history() {
    let dir = tempfile::tempdir().unwrap();
    let node = TernProcess::start(&example_binary(), &dir.path().join("data"));
    let clock = Clock::create(&node, "jobs").await;
    clock.call("everySet", json!(["beat", 5000])).await.unwrap();
    clock.call("cronSet", json!(["minutely", "* * * * *", "Europe/Paris"])).await.unwrap();
    let jobs = clock.call("jobs", json!([])).await.unwrap();
    let names: Vec<&str> = jobs.as_array().unwrap().iter().map(|j| j["name"].as_str().unwrap()).collect();
    assert_eq!(names.len(), 2, "{jobs}");
    assert!(names.contains(&"beat") && names.contains(&"minutely"));
    let cron = jobs.as_array().unwrap().iter().find(|j| j["name"] == "minutely").unwrap();
    assert_eq!((cron["expression"].clone(), cron["timezone"].clone()), (json!("* * * * *"), json!("Europe/Paris")));
    assert_eq!(cron["nextRunAt"].as_i64().unwrap() % 60_000, 0, "a minutely job fires on the minute");

    eventually("the interval job fired twice", Duration::from_secs(40), || async {
        (clock.fired().await.iter().filter(|n| *n == "beat").count() >= 2).then_some(())
    })
    .await;
    let history = clock.call("history", json!(["beat"])).await.unwrap();
    assert!(history.as_array().unwrap().len() >= 2);
    assert_eq!(history[0]["result"], "ok");
    assert_eq!(clock.call("jobDelete", json!(["beat"])).await.unwrap(), json!(true));
    assert_eq!(clock.call("jobs", json!([])).await.unwrap().as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn bad_schedules_get_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let node = TernProcess::start(&example_binary(), &dir.path().join("data"));
    let clock = Clock::create(&node, "bad").await;
    let code = |body: Value| format!("{}.{}", body["group"].as_str().unwrap(), body["code"].as_str().unwrap());
    assert_eq!(
        code(clock.call("cronSet", json!(["x", "not a cron", "UTC"])).await.unwrap_err()),
        "schedule.invalid_cron"
    );
    assert_eq!(
        code(clock.call("cronSet", json!(["x", "0 0 * * * *", "UTC"])).await.unwrap_err()),
        "schedule.invalid_cron"
    );
    assert_eq!(
        code(clock.call("cronSet", json!(["x", "* * * * *", "Nowhere/Land"])).await.unwrap_err()),
        "schedule.invalid_timezone"
    );
    assert_eq!(code(clock.call("everySet", json!(["x", 10])).await.unwrap_err()), "schedule.invalid_interval");
    assert_eq!(code(clock.call("remindUnknown", json!([])).await.unwrap_err()), "actor.action_not_found");
    assert_eq!(clock.call("jobs", json!([])).await.unwrap(), json!([]), "nothing was kept");
    assert_eq!(clock.call("pending", json!([])).await.unwrap(), json!([]));
}
