//! Crash points of a hand-off, for the tests that kill a node at each of its steps: a node whose data directory
//! holds a file `crash-at` naming a step (e.g. `leaving:paused`) aborts the moment it reaches that step, as
//! `kill -9` would: no cleanup, nothing flushed. Nothing else reads or writes that file.

use crate::storage::DataDir;

/// The file that names the step to crash at.
const CRASH_FILE: &str = "crash-at";

/// Aborts the process if the data directory names `step` as the one to crash at (see the module's docs).
pub(super) fn crash_point(data_dir: &DataDir, step: &str) {
    let named = std::fs::read_to_string(data_dir.root().join(CRASH_FILE)).unwrap_or_default();
    if named.trim() == step {
        eprintln!("crashing at hand-off step {step}, as {CRASH_FILE} asks");
        std::process::abort();
    }
}
