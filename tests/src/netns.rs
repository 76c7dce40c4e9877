//! A small lab network for partition tests: one Linux network namespace per host, each joined to one bridge by a
//! veth pair, on `10.231.0.0/24` (hosts `.1`, `.2`, ...; the test itself, in the root namespace, is `.254`). A
//! partition is made of blackhole routes inside the namespaces, so packets between the two sides vanish as on a
//! real split while the test still reaches every host. Built from the simulator's namespace primitives
//! (`tern_sim::netns`). Needs root and iproute2; everything made is removed on drop (and leftovers of an aborted
//! run are removed first).

use std::net::Ipv4Addr;

use tern_sim::netns::{BridgePort, Host, ip};

/// The lab's subnet prefix (a /24).
const SUBNET: &str = "10.231.0";
/// The bridge's name, and the prefix of the namespaces and host-side veth ends.
const BRIDGE: &str = "ternlab0";
const NS_PREFIX: &str = "ternlab-h";
const VETH_PREFIX: &str = "ternlabv";

/// The lab: hosts in namespaces on one bridge.
pub struct Lab {
    hosts: Vec<Host>,
    /// Blackhole routes in force: (host index, address blackholed).
    blackholes: Vec<(usize, String)>,
}

fn must<T>(result: Result<T, String>) -> T {
    result.unwrap_or_else(|e| panic!("{e} (partition tests need root and iproute2)"))
}

impl Lab {
    /// Makes `hosts` namespaces on a fresh bridge.
    pub fn new(hosts: usize) -> Lab {
        assert!(hosts < 250, "the lab's subnet holds fewer hosts");
        Lab::clean_up(hosts.max(16));
        must(ip(&["link", "add", BRIDGE, "type", "bridge"]));
        must(ip(&["addr", "add", &format!("{SUBNET}.254/24"), "dev", BRIDGE]));
        must(ip(&["link", "set", BRIDGE, "up"]));
        let hosts = (0..hosts)
            .map(|i| {
                let (veth, address) = (format!("{VETH_PREFIX}{i}"), format!("{SUBNET}.{}", i + 1));
                let port = BridgePort { namespace: None, bridge: BRIDGE, veth: &veth };
                let address: Ipv4Addr = address.parse().expect("an IPv4 address");
                must(Host::create(&Lab::namespace(i), address, port, None))
            })
            .collect();
        Lab { hosts, blackholes: Vec::new() }
    }

    fn namespace(i: usize) -> String {
        format!("{NS_PREFIX}{i}")
    }

    /// Host `i`'s address.
    pub fn ip(&self, i: usize) -> String {
        self.hosts[i].ip.to_string()
    }

    /// The command prefix that runs a program in host `i`'s namespace.
    pub fn wrapper(&self, i: usize) -> Vec<String> {
        self.hosts[i].wrapper()
    }

    /// Splits the hosts: no packet crosses between `a` and `b` (either way) until [`heal`](Self::heal).
    pub fn partition(&mut self, a: &[usize], b: &[usize]) {
        for (from, to) in [(a, b), (b, a)] {
            for &host in from {
                for &peer in to {
                    let target = format!("{}/32", self.ip(peer));
                    must(self.hosts[host].blackhole(&target));
                    self.blackholes.push((host, target));
                }
            }
        }
    }

    /// Removes every blackhole route.
    pub fn heal(&mut self) {
        for (host, target) in std::mem::take(&mut self.blackholes) {
            must(self.hosts[host].unblackhole(&target));
        }
    }

    /// Removes the namespaces (with their veth pairs) and the bridge, ignoring what does not exist.
    fn clean_up(hosts: usize) {
        for i in 0..hosts {
            let _ = ip(&["netns", "del", &Lab::namespace(i)]);
            let _ = ip(&["link", "del", &format!("{VETH_PREFIX}{i}")]);
        }
        let _ = ip(&["link", "del", BRIDGE]);
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        Lab::clean_up(self.hosts.len());
    }
}
