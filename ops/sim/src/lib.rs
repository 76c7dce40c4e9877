//! Regions on one machine: a simulated multi-region network for Tern.
//!
//! Every host is a network namespace; the hosts of a region share a bridge, and regions reach each other only
//! through a userspace relay that holds each packet for the one-way delay of its pair of regions (and may drop
//! it), so QUIC between nodes and HTTP from clients see real inter-region round trips. [`Sim`] builds it and
//! removes it on drop; [`nodes`] plans a `tern node` per host; the `tern-sim` binary runs the relay, starts and
//! tears down whole clusters (`up`, `down`) and measures the relay's own latency (`measure`). Needs root,
//! iproute2 and `/dev/net/tun` ([`prerequisites`]).

pub mod matrix;
pub mod netns;
pub mod nodes;
pub mod relay;
pub mod run;
pub mod sim;
pub mod subnet;

pub use matrix::Matrix;
pub use sim::{Config, Sim};

/// Whether this machine can run a simulation: root, iproute2, a TUN device; or what is missing.
pub fn prerequisites() -> Result<(), String> {
    // SAFETY: geteuid only reads the process's effective user id.
    if unsafe { libc::geteuid() } != 0 {
        return Err("simulated regions need root (network namespaces, routes, a TUN device)".into());
    }
    netns::ip(&["-V"]).map_err(|e| format!("simulated regions need iproute2: {e}"))?;
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/net/tun")
        .map_err(|e| format!("simulated regions need /dev/net/tun: {e}"))?;
    Ok(())
}
