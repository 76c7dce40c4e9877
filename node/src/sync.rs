//! Locking the node's in-memory tables and per-actor state, which are guarded by standard mutexes.

use std::sync::{Mutex, MutexGuard};

/// Locks `mutex`, taking the guard even if a thread panicked while holding it. Every critical section in the node
/// leaves its data consistent at each step (it inserts, removes or replaces whole values), so a panic elsewhere
/// (in actor code, say) must not make the data unreachable for every later request.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}
