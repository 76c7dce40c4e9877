//! The transport's tunables.

use std::time::Duration;

use super::error::Error;
use super::version::ProtocolVersion;

/// Tunables of a [`Transport`](crate::Transport). The defaults suit a cluster spread over regions.
#[derive(Clone, Debug)]
pub struct TransportConfig {
    /// The inter-node protocol versions this node speaks (in any order). It offers all of them and each connection
    /// uses the highest that both ends speak. Default: [`ProtocolVersion::SUPPORTED`].
    pub versions: Vec<ProtocolVersion>,
    /// The largest request, response or stream header this node sends or accepts, in bytes (at most
    /// `u32::MAX`). Default: 16 MiB.
    pub max_frame_size: usize,
    /// How long a request may take, from dialling to the last byte of the response, unless the call gives its own
    /// timeout; also bounds opening a stream. Default: 30 s.
    pub request_timeout: Duration,
    /// How long dialling a peer may take before it counts as unreachable. Default: 5 s.
    pub connect_timeout: Duration,
    /// The wait before re-dialling a peer after its first failed dial; it doubles after every further failure.
    /// Default: 100 ms.
    pub backoff_initial: Duration,
    /// The longest wait between dials of an unreachable peer. Default: 10 s.
    pub backoff_max: Duration,
    /// How often an idle connection is pinged, which keeps it open and detects a dead peer. Default: 5 s.
    pub keep_alive_interval: Duration,
    /// How long a connection may go without hearing from the peer before it is dropped. Default: 30 s.
    pub idle_timeout: Duration,
}

impl Default for TransportConfig {
    fn default() -> Self {
        Self {
            versions: ProtocolVersion::SUPPORTED.to_vec(),
            max_frame_size: 16 << 20,
            request_timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(5),
            backoff_initial: Duration::from_millis(100),
            backoff_max: Duration::from_secs(10),
            keep_alive_interval: Duration::from_secs(5),
            idle_timeout: Duration::from_secs(30),
        }
    }
}

impl TransportConfig {
    /// Checks the values that cannot work.
    pub(crate) fn validate(&self) -> Result<(), Error> {
        let fail = |message: &str| Err(Error::Config(message.to_string()));
        if self.versions.is_empty() {
            return fail("no protocol version to speak");
        }
        if u32::try_from(self.max_frame_size).is_err() {
            return fail("max_frame_size must fit in 32 bits");
        }
        if self.keep_alive_interval.is_zero() || self.keep_alive_interval >= self.idle_timeout {
            return fail("keep_alive_interval must be positive and shorter than idle_timeout");
        }
        if self.backoff_initial.is_zero() || self.backoff_initial > self.backoff_max {
            return fail("backoff_initial must be positive and at most backoff_max");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_nonsense_is_refused() {
        assert!(TransportConfig::default().validate().is_ok());
        let broken = [
            TransportConfig { versions: vec![], ..Default::default() },
            TransportConfig { max_frame_size: usize::MAX, ..Default::default() },
            TransportConfig { keep_alive_interval: Duration::from_secs(60), ..Default::default() },
            TransportConfig { backoff_initial: Duration::ZERO, ..Default::default() },
        ];
        for config in broken {
            assert!(matches!(config.validate(), Err(Error::Config(_))), "{config:?}");
        }
    }
}
