//! `counter`: `increment(amount)` → new count; `getCount()` → count; event `newCount` on every change;
//! `destroy()`.

use serde::{Deserialize, Serialize};

use crate::sdk::Actor;

/// The counter's durable state.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct CounterState {
    pub count: i64,
}

/// The `counter` actor definition.
pub fn counter() -> Actor<CounterState> {
    Actor::new("counter")
        .action("increment", |c, amount: i64| async move {
            let count = c.update(|s: &mut CounterState| {
                s.count += amount;
                s.count
            });
            c.broadcast("newCount", &count)?;
            Ok(count)
        })
        .action("getCount", |c, ()| async move { Ok(c.read(|s| s.count)) })
        .action("destroy", |c, ()| async move {
            c.destroy();
            Ok(())
        })
}
