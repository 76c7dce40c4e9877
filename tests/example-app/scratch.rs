//! `scratch`: a scratch pad whose data is disposable, so it keeps no replicas (`ActorOptions::replicas`), for the
//! replication end-to-end tests.

use tern_node::{Actor, ActorOptions};

/// The `scratch` actor: a list of notes in its state, never replicated.
pub fn scratch() -> Actor<Vec<String>> {
    let options = ActorOptions { replicas: Some(0), ..ActorOptions::default() };
    Actor::new("scratch").options(options).action("note", |c: tern_node::Ctx<Vec<String>>, text: String| async move {
        let mut notes = c.state();
        notes.push(text);
        Ok(notes.len())
    })
}
