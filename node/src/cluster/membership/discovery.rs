//! Seed discovery: turns the `--join` seeds into the QUIC addresses a node announces itself to.
//!
//! A seed is either
//! - `HOST:PORT`: resolved by the system (`getaddrinfo`, through Tokio), or
//! - `dns:NAME[:PORT]`: an SRV lookup of `NAME` gives targets and ports, and each target its addresses (from the
//!   answer's additional records when the server sent them, else an A/AAAA lookup). When `NAME` has no SRV record,
//!   an A/AAAA lookup of `NAME` gives the addresses, with `PORT` or else [`DEFAULT_PORT`].
//!
//! DNS lookups use the system's resolver configuration (`/etc/resolv.conf`), or only the server given as
//! `--dns-server` (UDP and TCP). Seeds are resolved again on every join attempt, so DNS changes are seen. A seed
//! that does not resolve is logged and skipped.

use std::net::{IpAddr, SocketAddr};

use hickory_resolver::config::{ConnectionConfig, NameServerConfig, ResolveHosts, ResolverConfig};
use hickory_resolver::net::NetError;
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::proto::rr::{Name, RData, Record};
use hickory_resolver::{Resolver, TokioResolver};
use tracing::warn;

/// The prefix of a seed found through DNS: `dns:NAME[:PORT]`.
pub(crate) const DNS_PREFIX: &str = "dns:";

/// The QUIC port of a `dns:NAME` seed whose name has A/AAAA records but no SRV record, and no port of its own.
pub const DEFAULT_PORT: u16 = 7420;

/// A `--join` seed, parsed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Seed {
    /// `HOST:PORT`, resolved by the system.
    Addr(String),
    /// `dns:NAME[:PORT]`: SRV records of `name`, else its A/AAAA records with `port` (default [`DEFAULT_PORT`]).
    Dns {
        /// The DNS name to look up.
        name: String,
        /// The port for A/AAAA records; SRV records carry their own.
        port: Option<u16>,
    },
}

impl Seed {
    /// Parses `HOST:PORT` or `dns:NAME[:PORT]`; the error says what was expected.
    pub(crate) fn parse(seed: &str) -> Result<Seed, String> {
        if let Some(rest) = seed.strip_prefix(DNS_PREFIX) {
            let (name, port) = match rest.split_once(':') {
                Some((name, port)) => match port.parse::<u16>() {
                    Ok(port) if port != 0 => (name, Some(port)),
                    _ => return Err(format!("`{port}` is not a port: expected dns:NAME or dns:NAME:PORT")),
                },
                None => (rest, None),
            };
            if name.is_empty() || name == "." {
                return Err("expected dns:NAME or dns:NAME:PORT, with a DNS name".into());
            }
            Name::from_ascii(name).map_err(|e| format!("`{name}` is not a DNS name: {e}"))?;
            return Ok(Seed::Dns { name: name.to_string(), port });
        }
        match seed.rsplit_once(':') {
            Some((host, port)) if !host.is_empty() && port.parse::<u16>().is_ok() => Ok(Seed::Addr(seed.to_string())),
            _ => Err("expected HOST:PORT, the QUIC address of a node of the cluster, or dns:NAME[:PORT]".into()),
        }
    }
}

/// Every address the seeds resolve to, without duplicates; `dns:` seeds are looked up through `dns_server` if
/// given, else through the system's resolver configuration. A seed that does not resolve is logged and skipped.
pub async fn resolve(seeds: &[String], dns_server: Option<SocketAddr>) -> Vec<SocketAddr> {
    // Built only when needed, then shared by every `dns:` seed.
    let resolver = if seeds.iter().any(|seed| seed.starts_with(DNS_PREFIX)) {
        dns_resolver(dns_server).map_err(|e| format!("no DNS resolver: {e}"))
    } else {
        Err("no DNS resolver".to_string())
    };
    let mut addrs = Vec::new();
    for seed in seeds {
        let found = match Seed::parse(seed) {
            Ok(Seed::Addr(addr)) => match tokio::net::lookup_host(addr.as_str()).await {
                Ok(found) => Ok(found.collect()),
                Err(e) => Err(e.to_string()),
            },
            Ok(Seed::Dns { name, port }) => match &resolver {
                Ok(resolver) => lookup(resolver, &name, port.unwrap_or(DEFAULT_PORT)).await,
                Err(e) => Err(e.clone()),
            },
            Err(e) => Err(e),
        };
        match found {
            Ok(found) if found.is_empty() => warn!(seed, "the seed resolved to no address"),
            Ok(found) => {
                for addr in found {
                    if !addrs.contains(&addr) {
                        addrs.push(addr);
                    }
                }
            }
            Err(e) => warn!(seed, "cannot resolve the seed: {e}"),
        }
    }
    addrs
}

/// A resolver that asks only `server` (UDP and TCP, no hosts file), or the system's resolver configuration; the
/// one [`resolve`] looks `dns:` seeds up with.
pub fn dns_resolver(server: Option<SocketAddr>) -> Result<TokioResolver, NetError> {
    let Some(server) = server else {
        return Resolver::builder_tokio()?.build();
    };
    let connections = [ConnectionConfig::udp(), ConnectionConfig::tcp()]
        .into_iter()
        .map(|mut connection| {
            connection.port = server.port();
            connection
        })
        .collect();
    let name_server = NameServerConfig::new(server.ip(), true, connections);
    let mut builder = Resolver::builder_with_config(
        ResolverConfig::from_name_servers(vec![name_server]),
        TokioRuntimeProvider::default(),
    );
    builder.options_mut().use_hosts_file = ResolveHosts::Never;
    builder.build()
}

/// The addresses of `name`: its SRV targets with their ports, or, without SRV records, its own addresses with
/// `port`.
async fn lookup(resolver: &TokioResolver, name: &str, port: u16) -> Result<Vec<SocketAddr>, String> {
    match resolver.srv_lookup(name).await {
        Ok(srv) => {
            let mut targets: Vec<_> = srv
                .answers()
                .iter()
                .filter_map(|record| match &record.data {
                    RData::SRV(srv) if !srv.target.is_root() => Some(srv),
                    _ => None,
                })
                .collect();
            if !targets.is_empty() {
                targets.sort_by_key(|srv| (srv.priority, std::cmp::Reverse(srv.weight)));
                let mut addrs = Vec::new();
                for target in targets {
                    let ips = target_addrs(resolver, &target.target, srv.additionals()).await;
                    addrs.extend(ips.into_iter().map(|ip| SocketAddr::new(ip, target.port)));
                }
                return Ok(addrs);
            }
        }
        Err(e) if e.is_no_records_found() => {}
        Err(e) => return Err(format!("SRV lookup failed: {e}")),
    }
    match resolver.lookup_ip(name).await {
        Ok(ips) => Ok(ips.iter().map(|ip| SocketAddr::new(ip, port)).collect()),
        Err(e) => Err(format!("no SRV record, and the A/AAAA lookup failed: {e}")),
    }
}

/// The addresses of an SRV target: from the answer's additional records if any, else from an A/AAAA lookup (a
/// failure is logged and yields none).
async fn target_addrs(resolver: &TokioResolver, target: &Name, additionals: &[Record]) -> Vec<IpAddr> {
    let glue: Vec<_> = additionals
        .iter()
        .filter(|record| record.name.eq_ignore_root(target))
        .filter_map(|record| match &record.data {
            RData::A(a) => Some(a.0.into()),
            RData::AAAA(aaaa) => Some(aaaa.0.into()),
            _ => None,
        })
        .collect();
    if !glue.is_empty() {
        return glue;
    }
    match resolver.lookup_ip(target.clone()).await {
        Ok(ips) => ips.iter().collect(),
        Err(e) => {
            warn!(%target, "cannot resolve the SRV target: {e}");
            Vec::new()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeds_parse() {
        assert_eq!(Seed::parse("10.0.0.1:7420"), Ok(Seed::Addr("10.0.0.1:7420".into())));
        assert_eq!(Seed::parse("[::1]:7420"), Ok(Seed::Addr("[::1]:7420".into())));
        assert_eq!(Seed::parse("dns:tern.internal"), Ok(Seed::Dns { name: "tern.internal".into(), port: None }));
        let with_port = Seed::Dns { name: "_tern._udp.tern.internal.".into(), port: Some(7500) };
        assert_eq!(Seed::parse("dns:_tern._udp.tern.internal.:7500"), Ok(with_port));
        for bad in ["dns:", "dns::7420", "dns:tern.internal:", "dns:tern.internal:x", "dns:tern.internal:0"] {
            assert!(Seed::parse(bad).is_err(), "{bad}");
        }
        assert!(Seed::parse("dns:tern..internal").is_err());
        assert!(Seed::parse("10.0.0.1").is_err());
        assert!(Seed::parse(":7420").is_err());
    }
}
