//! A small lab network for partition tests: one Linux network namespace per host, each joined to one bridge by a
//! veth pair, on `10.231.0.0/24` (hosts `.1`, `.2`, ...; the test itself, in the root namespace, is `.254`). A
//! partition is made of blackhole routes inside the namespaces, so packets between the two sides vanish as on a
//! real split while the test still reaches every host. Needs root and iproute2; everything made is removed on
//! drop (and leftovers of an aborted run are removed first).

use std::process::Command;

/// The lab's subnet prefix (a /24).
const SUBNET: &str = "10.231.0";
/// The bridge's name, and the prefix of the namespaces and host-side veth ends.
const BRIDGE: &str = "ternlab0";
const NS_PREFIX: &str = "ternlab-h";
const VETH_PREFIX: &str = "ternlabv";

/// The lab: hosts in namespaces on one bridge.
pub struct Lab {
    hosts: usize,
    /// Blackhole routes in force: (host index, address blackholed).
    blackholes: Vec<(usize, String)>,
}

fn ip(args: &[&str]) -> Result<(), String> {
    let output = Command::new("ip").args(args).output().map_err(|e| format!("cannot run ip: {e}"))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!("ip {}: {}", args.join(" "), String::from_utf8_lossy(&output.stderr).trim()))
    }
}

fn must(args: &[&str]) {
    if let Err(e) = ip(args) {
        panic!("{e} (partition tests need root and iproute2)");
    }
}

impl Lab {
    /// Makes `hosts` namespaces on a fresh bridge.
    pub fn new(hosts: usize) -> Lab {
        assert!(hosts < 250, "the lab's subnet holds fewer hosts");
        Lab::clean_up(hosts.max(16));
        must(&["link", "add", BRIDGE, "type", "bridge"]);
        must(&["addr", "add", &format!("{SUBNET}.254/24"), "dev", BRIDGE]);
        must(&["link", "set", BRIDGE, "up"]);
        let lab = Lab { hosts, blackholes: Vec::new() };
        for i in 0..hosts {
            let (ns, veth) = (Lab::namespace(i), format!("{VETH_PREFIX}{i}"));
            must(&["netns", "add", &ns]);
            must(&["link", "add", &veth, "type", "veth", "peer", "name", "eth0", "netns", &ns]);
            must(&["link", "set", &veth, "master", BRIDGE]);
            must(&["link", "set", &veth, "up"]);
            must(&["-n", &ns, "addr", "add", &format!("{}/24", lab.ip(i)), "dev", "eth0"]);
            must(&["-n", &ns, "link", "set", "eth0", "up"]);
            must(&["-n", &ns, "link", "set", "lo", "up"]);
        }
        lab
    }

    fn namespace(i: usize) -> String {
        format!("{NS_PREFIX}{i}")
    }

    /// Host `i`'s address.
    pub fn ip(&self, i: usize) -> String {
        format!("{SUBNET}.{}", i + 1)
    }

    /// The command prefix that runs a program in host `i`'s namespace.
    pub fn wrapper(&self, i: usize) -> Vec<String> {
        ["ip", "netns", "exec"].into_iter().map(str::to_string).chain([Lab::namespace(i)]).collect()
    }

    /// Splits the hosts: no packet crosses between `a` and `b` (either way) until [`heal`](Self::heal).
    pub fn partition(&mut self, a: &[usize], b: &[usize]) {
        for (from, to) in [(a, b), (b, a)] {
            for &host in from {
                for &peer in to {
                    let target = format!("{}/32", self.ip(peer));
                    must(&["-n", &Lab::namespace(host), "route", "add", "blackhole", &target]);
                    self.blackholes.push((host, target));
                }
            }
        }
    }

    /// Removes every blackhole route.
    pub fn heal(&mut self) {
        for (host, target) in std::mem::take(&mut self.blackholes) {
            must(&["-n", &Lab::namespace(host), "route", "del", "blackhole", &target]);
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
        Lab::clean_up(self.hosts);
    }
}
