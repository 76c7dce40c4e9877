//! A small lab network for partition tests: one Linux network namespace per host, each joined to one bridge by a
//! veth pair, on `10.231.R.0/24` (hosts `.1`, `.2`, ...; the test itself, in the root namespace, is `.254`), where
//! `R` is the lab's run number, so that two test runs on one machine (or two labs of one run) do not collide. A
//! partition is made of blackhole routes inside the namespaces, so packets between the two sides vanish as on a
//! real split while the test still reaches every host; a one-way cut of nft rules in the receiving namespaces,
//! which drop what comes from the other side while their own packets still get through. Built from the
//! simulator's namespace primitives (`tern_sim::netns`). Needs root, iproute2 and nft; everything made is removed
//! on drop (and leftovers of an aborted run are removed first).

use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicU32, Ordering};

use tern_sim::netns::{BridgePort, Host, ip};

/// The names of one lab's network: its subnet prefix (a /24), its bridge, and the prefixes of its namespaces and
/// host-side veth ends, all carrying the lab's run number (interface names stay within Linux's 15 characters).
struct Names {
    subnet: String,
    bridge: String,
    namespace: String,
    veth: String,
}

impl Names {
    /// The names of this process's next lab: run number 1–200 from the process id and how many labs the process
    /// made before.
    fn of_this_run() -> Names {
        static LABS: AtomicU32 = AtomicU32::new(0);
        let run = (std::process::id() + 97 * LABS.fetch_add(1, Ordering::Relaxed)) % 200 + 1;
        Names {
            subnet: format!("10.231.{run}"),
            bridge: format!("tl{run}br"),
            namespace: format!("ternlab{run}-h"),
            veth: format!("tl{run}v"),
        }
    }
}

/// The lab: hosts in namespaces on one bridge.
pub struct Lab {
    names: Names,
    hosts: Vec<Host>,
    /// Blackhole routes in force: (host index, address blackholed).
    blackholes: Vec<(usize, String)>,
    /// Hosts holding the nft table of a one-way cut.
    cut: Vec<usize>,
}

/// The nft table of a one-way cut, in a receiving host's namespace.
const CUT_TABLE: &str = "ternlab_cut";

fn must<T>(result: Result<T, String>) -> T {
    result.unwrap_or_else(|e| panic!("{e} (partition tests need root and iproute2)"))
}

impl Lab {
    /// Makes `hosts` namespaces on a fresh bridge.
    pub fn new(hosts: usize) -> Lab {
        assert!(hosts < 250, "the lab's subnet holds fewer hosts");
        let names = Names::of_this_run();
        Lab::clean_up(&names, hosts.max(16));
        let (subnet, bridge) = (&names.subnet, &names.bridge);
        must(ip(&["link", "add", bridge, "type", "bridge"]));
        must(ip(&["addr", "add", &format!("{subnet}.254/24"), "dev", bridge]));
        must(ip(&["link", "set", bridge, "up"]));
        let hosts = (0..hosts)
            .map(|i| {
                let (veth, address) = (format!("{}{i}", names.veth), format!("{subnet}.{}", i + 1));
                let port = BridgePort { namespace: None, bridge, veth: &veth };
                let address: Ipv4Addr = address.parse().expect("an IPv4 address");
                must(Host::create(&format!("{}{i}", names.namespace), address, port, None))
            })
            .collect();
        Lab { names, hosts, blackholes: Vec::new(), cut: Vec::new() }
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

    /// Cuts one way: no packet from a host of `from` reaches a host of `to`, while packets from `to` to `from`
    /// still arrive, until [`heal`](Self::heal). Each host of `to` drops, as they come in, packets from `from`.
    pub fn cut_one_way(&mut self, from: &[usize], to: &[usize]) {
        for &host in to {
            if !self.cut.contains(&host) {
                self.nft(host, &["add", "table", "inet", CUT_TABLE]);
                let chain = "{ type filter hook input priority 0; policy accept; }";
                self.nft(host, &["add", "chain", "inet", CUT_TABLE, "input", chain]);
                self.cut.push(host);
            }
            for &peer in from {
                self.nft(host, &["add", "rule", "inet", CUT_TABLE, "input", "ip", "saddr", &self.ip(peer), "drop"]);
            }
        }
    }

    /// Runs `nft ARGS` in host `i`'s namespace.
    fn nft(&self, i: usize, args: &[&str]) {
        let wrapper = self.wrapper(i);
        let output = std::process::Command::new(&wrapper[0]).args(&wrapper[1..]).arg("nft").args(args).output();
        let output = output.unwrap_or_else(|e| panic!("cannot run nft (one-way cuts need it): {e}"));
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(output.status.success(), "nft {}: {stderr}", args.join(" "));
    }

    /// Removes every blackhole route and one-way cut.
    pub fn heal(&mut self) {
        for (host, target) in std::mem::take(&mut self.blackholes) {
            must(self.hosts[host].unblackhole(&target));
        }
        for host in std::mem::take(&mut self.cut) {
            self.nft(host, &["delete", "table", "inet", CUT_TABLE]);
        }
    }

    /// Removes the namespaces (with their veth pairs) and the bridge, ignoring what does not exist.
    fn clean_up(names: &Names, hosts: usize) {
        for i in 0..hosts {
            let _ = ip(&["netns", "del", &format!("{}{i}", names.namespace)]);
            let _ = ip(&["link", "del", &format!("{}{i}", names.veth)]);
        }
        let _ = ip(&["link", "del", &names.bridge]);
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        Lab::clean_up(&self.names, self.hosts.len());
    }
}
