//! This node's liveness lease: the right to commit and reply for the actors homed here.
//!
//! The node renews its liveness record in the directory every [`LeaseTiming::interval`]; a renewal that started
//! at `t` (on this node's monotonic clock) makes the lease valid until `t + duration - max_offset`. Anyone may bump
//! the record's epoch once it expired `max_offset` ago on *their* clock, so with clocks within `max_offset` of each
//! other this node has stopped acknowledging before anyone can take its actors over. A node whose epoch was bumped
//! takes back, under its new epoch, every actor still placed here (the others moved: it lets them go) before it
//! holds a lease again.

use std::sync::Arc;
use std::time::Duration;

use tern_proto::ClientError;
use tokio::sync::watch;
use tokio::time::Instant;

use crate::cluster::Profile;

/// How long a lease lasts and how often it is renewed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LeaseTiming {
    /// How long a renewal holds (measured from when it started).
    pub duration: Duration,
    /// How often the node renews.
    pub interval: Duration,
    /// The bound assumed on the difference between two nodes' clocks; the node gives its lease up this much early,
    /// and others wait this much longer before they bump an expired record.
    pub max_offset: Duration,
}

impl LeaseTiming {
    /// The timing for a membership profile: `lan` 3 s leases renewed every second, `wan` 9 s renewed every 2 s;
    /// both assume clocks within 250 ms.
    pub fn for_profile(profile: Profile) -> LeaseTiming {
        let max_offset = Duration::from_millis(250);
        match profile {
            Profile::Lan => {
                LeaseTiming { duration: Duration::from_secs(3), interval: Duration::from_secs(1), max_offset }
            }
            Profile::Wan => {
                LeaseTiming { duration: Duration::from_secs(9), interval: Duration::from_secs(2), max_offset }
            }
        }
    }
}

#[derive(Clone, Copy, Debug, Default)]
struct Held {
    epoch: u64,
    until: Option<Instant>,
}

/// The node's lease, as the rest of the node asks about it. Cheap to clone.
#[derive(Clone)]
pub struct Lease {
    held: Arc<watch::Sender<Held>>,
    timing: LeaseTiming,
}

impl Lease {
    /// A lease not held yet, under liveness epoch `epoch`.
    pub fn new(timing: LeaseTiming, epoch: u64) -> Lease {
        Lease { held: Arc::new(watch::Sender::new(Held { epoch, until: None })), timing }
    }

    /// Its timing.
    pub fn timing(&self) -> LeaseTiming {
        self.timing
    }

    /// The liveness epoch the node holds (or last held) its lease under.
    pub fn epoch(&self) -> u64 {
        self.held.borrow().epoch
    }

    /// Whether the node holds a valid lease now: `actor.unavailable` if not.
    pub fn check(&self) -> Result<(), ClientError> {
        match self.held.borrow().until {
            Some(until) if Instant::now() < until => Ok(()),
            _ => Err(ClientError::unavailable(
                "this node cannot confirm its lease with the directory's voters, so it serves no actor now",
            )),
        }
    }

    /// Waits up to `limit` for a valid lease (a node that just started, or is renewing late).
    pub async fn wait(&self, limit: Duration) -> Result<(), ClientError> {
        let deadline = Instant::now() + limit;
        let mut changes = self.held.subscribe();
        loop {
            if self.check().is_ok() {
                return Ok(());
            }
            if tokio::time::timeout_at(deadline, changes.changed()).await.is_err() {
                return self.check();
            }
        }
    }

    /// Runs `replicated`, what a commit waits for before its reply may leave (a replica's acknowledgement in `sync`
    /// mode), and checks the lease before and after it: a home whose lease ran out may already have been
    /// replaced, so it must not reply, however long ago its commit began. After the wait the lease must still be
    /// the one it was before (the same liveness epoch): a node taken for dead meanwhile may have let the actor go
    /// and renewed under a new epoch, and its commit is then not the actor's history. The deterministic
    /// simulation (`handoff/sim/`) finds two homes acknowledging at once without either check.
    pub async fn confirm<T>(&self, replicated: impl Future<Output = Result<T, ClientError>>) -> Result<T, ClientError> {
        self.check()?;
        let epoch = self.epoch();
        let replicated = replicated.await?;
        self.check()?;
        if self.epoch() != epoch {
            return Err(ClientError::unavailable(
                "this node was taken for dead while the write waited for its replica: the write is not acknowledged",
            ));
        }
        Ok(replicated)
    }

    /// A renewal that started at `started` succeeded under `epoch`.
    pub(super) fn grant(&self, epoch: u64, started: Instant) {
        let until = started + self.timing.duration.saturating_sub(self.timing.max_offset);
        self.held.send_replace(Held { epoch, until: Some(until) });
    }

    /// The node learned its epoch was bumped: no lease until it has taken its actors back.
    pub(super) fn revoke(&self) {
        self.held.send_modify(|held| held.until = None);
    }
}
