//! Timing profiles: how fast membership probes peers and how long a silent one has before it is declared down.

use std::num::{NonZeroU32, NonZeroUsize};
use std::time::Duration;

use foca::{Config, PeriodicParams};

/// The timing a node runs membership with, chosen by where its peers are.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Profile {
    /// Every peer in one data centre or region (round trips of a few milliseconds): a dead node is declared down
    /// in about 5 s. foca's own LAN timing.
    Lan,
    /// Peers across regions (round trips up to about 300 ms, occasional loss): a direct probe has 1 s, the
    /// indirect probe through three other nodes the second after it, and a suspect 12 s to refute, so a dead node
    /// is declared down in about 15 s. Faster than foca's WAN timing (5 s probes, 30 s suspicion), which is tuned
    /// for lossier links than QUIC between data centres.
    Wan,
}

impl Profile {
    /// The profile's timing; change fields to tune it (tests use faster ones).
    /// The transport's settings for the profile: keep-alives often enough that a dead peer's connection is
    /// dropped, and a dial to it given up, within about the time SWIM takes to suspect it (`lan` 2 s, `wan` 10 s
    /// and 5 s), so that calls in flight to it fail over instead of waiting for the default 30 s.
    pub fn transport(self) -> tern_replication::TransportConfig {
        let (keep_alive_interval, idle_timeout, connect_timeout) = match self {
            Profile::Lan => (Duration::from_millis(500), Duration::from_secs(2), Duration::from_secs(2)),
            Profile::Wan => (Duration::from_secs(2), Duration::from_secs(10), Duration::from_secs(5)),
        };
        tern_replication::TransportConfig { keep_alive_interval, idle_timeout, connect_timeout, ..Default::default() }
    }

    pub fn timing(self) -> Timing {
        match self {
            Profile::Lan => Timing {
                probe_period: Duration::from_secs(1),
                probe_rtt: Duration::from_millis(500),
                suspect_to_down_after: Duration::from_secs(4),
                gossip_period: Duration::from_millis(200),
                announce_period: Duration::from_secs(3),
                load_refresh: Duration::from_secs(10),
            },
            Profile::Wan => Timing {
                probe_period: Duration::from_secs(2),
                probe_rtt: Duration::from_secs(1),
                suspect_to_down_after: Duration::from_secs(12),
                gossip_period: Duration::from_millis(500),
                announce_period: Duration::from_secs(10),
                load_refresh: Duration::from_secs(30),
            },
        }
    }
}

/// Membership timing. Start from [`Profile::timing`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Timing {
    /// How often the node probes a member (one member per period, round robin).
    pub probe_period: Duration,
    /// How long a probed member has to answer before others are asked to probe it too; shorter than
    /// `probe_period`. A leaving node also waits this long for its farewell to reach its peers.
    pub probe_rtt: Duration,
    /// How long a suspect has to refute the suspicion before it is declared down, in clusters of up to ten nodes;
    /// it grows with the logarithm of the cluster size beyond that (as foca's profiles do).
    pub suspect_to_down_after: Duration,
    /// How often pending updates are gossiped to a few members, besides riding on probes.
    pub gossip_period: Duration,
    /// How often the node announces itself to two random members, whose answers list the members they know (a
    /// joiner learns members whose arrival was gossiped before it came; clusters split by a partition merge) and,
    /// at twice the period, to members it believes down (lets them rejoin).
    pub announce_period: Duration,
    /// How often the node re-broadcasts its load even when unchanged, so nodes that missed it catch up.
    pub load_refresh: Duration,
}

impl Timing {
    /// Checks what cannot work.
    pub(super) fn validate(&self) -> Result<(), String> {
        let periods = [self.probe_rtt, self.suspect_to_down_after, self.gossip_period, self.announce_period];
        if periods.iter().chain([&self.load_refresh]).any(Duration::is_zero) {
            return Err("every membership period must be positive".into());
        }
        if self.probe_rtt >= self.probe_period {
            return Err("probe_rtt must be shorter than probe_period".into());
        }
        Ok(())
    }

    /// foca's configuration for a cluster of `members` nodes (this one included) and packets of at most
    /// `max_packet_size` bytes. Only the sizes change with `members`, so foca accepts the result as a replacement.
    pub(super) fn foca_config(&self, members: usize, max_packet_size: NonZeroUsize) -> Config {
        let size = NonZeroU32::new(u32::try_from(members).unwrap_or(u32::MAX)).unwrap_or(NonZeroU32::MIN);
        // foca's LAN configuration supplies the size-dependent dissemination count and the defaults we keep.
        let mut config = Config::new_lan(size);
        let periodic = |frequency, members| {
            Some(PeriodicParams { frequency, num_members: NonZeroUsize::new(members).unwrap_or(NonZeroUsize::MIN) })
        };
        config.probe_period = self.probe_period;
        config.probe_rtt = self.probe_rtt;
        config.suspect_to_down_after = self.suspect_to_down_after.mul_f64(f64::from(size.get()).log10().max(1.0));
        config.max_packet_size = max_packet_size;
        config.periodic_announce = periodic(self.announce_period, 2);
        config.periodic_announce_to_down_members = periodic(self.announce_period.saturating_mul(2), 2);
        config.periodic_gossip = periodic(self.gossip_period, 3);
        config
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profiles_are_valid_and_scale_with_the_cluster() {
        let size = NonZeroUsize::new(1100).unwrap();
        for profile in [Profile::Lan, Profile::Wan] {
            let timing = profile.timing();
            timing.validate().unwrap();
            let small = timing.foca_config(5, size);
            assert_eq!(small.suspect_to_down_after, timing.suspect_to_down_after);
            assert_eq!(small.max_packet_size, size);
            let large = timing.foca_config(100, size);
            assert_eq!(large.suspect_to_down_after, timing.suspect_to_down_after * 2);
            assert!(large.max_transmissions > small.max_transmissions);
            assert_eq!(timing.foca_config(0, size).suspect_to_down_after, timing.suspect_to_down_after);
        }
        assert!(Profile::Wan.timing().probe_period > Profile::Lan.timing().probe_period);
    }

    #[test]
    fn impossible_timings_are_refused() {
        let lan = Profile::Lan.timing();
        assert!(Timing { probe_rtt: lan.probe_period, ..lan.clone() }.validate().is_err());
        assert!(Timing { gossip_period: Duration::ZERO, ..lan }.validate().is_err());
    }
}
