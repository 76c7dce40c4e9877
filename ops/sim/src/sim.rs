//! A simulation's network: regions on one machine, joined through the relay.
//!
//! ```text
//!  root namespace ── tsim-ID ═══ up0 ─┐            core namespace tsim-ID-core
//!  (10.S.255.1, reaches every host    │  br0 10.S.0.254 ── hosts of region 0 (10.S.0.1, .2, ...; client .200)
//!   directly, without delay)          │  br1 10.S.1.254 ── hosts of region 1
//!                                     │  ...
//!                                     └─ tsim0 (TUN) ⇄ the relay
//! ```
//!
//! Hosts of one region share a bridge and talk directly. A packet for another region goes to the region's router
//! (the core); a policy rule sends whatever arrives from a region bridge to table 100, whose route for the run's
//! /16 is the TUN device, so the relay gets it, delays it and writes it back; packets coming out of the TUN use
//! the main table and reach the destination bridge. Table 100 sends the uplink's /30 straight back to the root
//! namespace, so the host machine reaches every gateway without delay. Partitions are blackhole routes inside
//! the hosts' namespaces, as in a real split: packets between the two sides vanish.

use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use crate::matrix::Matrix;
use crate::netns::{self, BridgePort, Host};
use crate::run::{self, Run};
use crate::subnet::{MAX_HOSTS, SECOND_OCTETS, Subnet};

/// The TUN device's name in the core namespace.
const TUN: &str = "tsim0";
/// The routing table of packets that arrive from a region's bridge.
const RELAY_TABLE: &str = "100";
/// How long the relay may take to attach to its device.
const RELAY_READY_CAP: Duration = Duration::from_secs(10);

/// How to build a simulation.
pub struct Config {
    /// The regions and the links between them.
    pub matrix: Matrix,
    /// Hosts made in each region (besides its client).
    pub hosts_per_region: usize,
    /// The `tern-sim` executable, which runs the relay (`tern-sim relay`).
    pub relay: PathBuf,
    /// Whether the relay runs in its own process group, to outlive the program that starts it
    /// (see [`Sim::detach`]).
    pub detached: bool,
}

/// One region's hosts.
struct Region {
    hosts: Vec<Host>,
    client: Host,
}

/// A running simulation: namespaces, bridges, the relay. Dropping it removes all of it, and stops whatever
/// still runs in its namespaces; when dropped by a panic (a failing test) it keeps its directory (logs, data),
/// which the next run or `tern-sim down` removes.
pub struct Sim {
    run: Run,
    matrix: Matrix,
    subnet: Subnet,
    /// Per region, in the matrix's order.
    regions: Vec<Region>,
    relay: Child,
    /// Blackhole routes in force: the host and the /24 it cannot reach.
    blackholes: Vec<(Host, String)>,
    detached: bool,
}

impl Sim {
    /// Removes the leftovers of aborted runs, then builds a new simulation and starts its relay.
    pub fn start(config: Config) -> Result<Sim, String> {
        if !(1..=MAX_HOSTS).contains(&config.hosts_per_region) {
            return Err(format!("a region holds 1 to {MAX_HOSTS} hosts"));
        }
        for id in run::leftovers()? {
            match run::tear_down(&id) {
                Ok(()) => eprintln!("tern-sim: removed the leftovers of run {id}"),
                Err(e) => eprintln!("tern-sim: cannot remove the leftovers of run {id}: {e}"),
            }
        }
        let run = Run::create()?;
        match build(&run, &config) {
            Ok((subnet, regions, relay)) => {
                Ok(Sim { run, matrix: config.matrix, subnet, regions, relay, blackholes: Vec::new(), detached: false })
            }
            Err(e) => {
                let _ = run::tear_down(run.id());
                Err(e)
            }
        }
    }

    /// The run's id.
    pub fn id(&self) -> &str {
        self.run.id()
    }

    /// The run's directory, removed with it: a place for the nodes' data and logs.
    pub fn dir(&self) -> &Path {
        self.run.dir()
    }

    /// The regions and their links.
    pub fn matrix(&self) -> &Matrix {
        &self.matrix
    }

    fn region(&self, name: &str) -> usize {
        let regions = self.matrix.regions();
        regions.iter().position(|r| r == name).unwrap_or_else(|| panic!("no region `{name}` among {regions:?}"))
    }

    /// The hosts of region `name` (panics for a region the simulation does not have).
    pub fn hosts(&self, name: &str) -> &[Host] {
        &self.regions[self.region(name)].hosts
    }

    /// The client host of region `name`: a place to run programs "from" that region.
    pub fn client(&self, name: &str) -> &Host {
        &self.regions[self.region(name)].client
    }

    /// Splits the regions: no packet crosses between a region of `a` and one of `b` (either way) until
    /// [`heal`](Self::heal). Each side still reaches itself, and the host machine still reaches everyone. Panics
    /// for a region the simulation does not have.
    pub fn partition(&mut self, a: &[&str], b: &[&str]) -> Result<(), String> {
        for (from, to) in [(a, b), (b, a)] {
            for &region in from {
                let Region { hosts, client } = &self.regions[self.region(region)];
                for host in hosts.iter().chain([client]) {
                    for &peer in to {
                        let cidr = self.subnet.region_cidr(self.region(peer));
                        host.blackhole(&cidr)?;
                        self.blackholes.push((host.clone(), cidr));
                    }
                }
            }
        }
        Ok(())
    }

    /// Ends every partition.
    pub fn heal(&mut self) -> Result<(), String> {
        while let Some((host, cidr)) = self.blackholes.pop() {
            host.unblackhole(&cidr)?;
        }
        Ok(())
    }

    /// Leaves the simulation running after this program exits (the relay must have been started detached): its
    /// relay becomes the run's owner, and `tern-sim down` removes it.
    pub fn detach(mut self) -> Result<(), String> {
        self.run.detach(self.relay.id())?;
        self.detached = true;
        Ok(())
    }
}

impl Drop for Sim {
    fn drop(&mut self) {
        if self.detached {
            return;
        }
        // After a failure, the logs and data stay for diagnosis, until the next run or `tern-sim down`.
        let failed = std::thread::panicking();
        let outcome = if failed { run::stop(self.run.id()) } else { run::tear_down(self.run.id()) };
        if let Err(e) = outcome {
            eprintln!("tern-sim: run {}: {e}", self.run.id());
        }
        if failed {
            eprintln!("tern-sim: kept {} (logs, data) after the failure", self.run.dir().display());
        }
        let _ = self.relay.wait();
    }
}

/// Builds run `run`'s network (see the module's documentation) and starts its relay.
fn build(run: &Run, config: &Config) -> Result<(Subnet, Vec<Region>, Child), String> {
    let core = run.namespace("core");
    let in_core = |args: &[&str]| netns::ip(&[&["-n", core.as_str()], args].concat());
    netns::ip(&["netns", "add", &core])?;
    in_core(&["link", "set", "lo", "up"])?;
    // Forward between bridges and the TUN device; reverse-path filtering would drop what the TUN gives back.
    netns::within(&core, || -> Result<(), String> {
        let sysctls = [
            ("net/ipv4/ip_forward", "1"),
            ("net/ipv4/conf/all/rp_filter", "0"),
            ("net/ipv4/conf/default/rp_filter", "0"),
        ];
        for (key, value) in sysctls {
            let path = format!("/proc/sys/{key}");
            std::fs::write(&path, value).map_err(|e| format!("cannot write {path}: {e}"))?;
        }
        Ok(())
    })??;
    in_core(&["tuntap", "add", "dev", TUN, "mode", "tun"])?;
    in_core(&["link", "set", TUN, "up"])?;
    let subnet = claim_subnet(run, &core)?;
    in_core(&["route", "add", &subnet.to_string(), "dev", TUN, "table", RELAY_TABLE])?;
    in_core(&["route", "add", &subnet.uplink_cidr(), "dev", "up0", "table", RELAY_TABLE])?;
    let mut regions = Vec::new();
    for (k, region) in config.matrix.regions().iter().enumerate() {
        let bridge = format!("br{k}");
        in_core(&["link", "add", &bridge, "type", "bridge"])?;
        in_core(&["addr", "add", &format!("{}/24", subnet.router(k)), "dev", &bridge])?;
        in_core(&["link", "set", &bridge, "up"])?;
        in_core(&["rule", "add", "iif", &bridge, "lookup", RELAY_TABLE])?;
        let host = |name: String, ip, veth: String| {
            let port = BridgePort { namespace: Some(&core), bridge: &bridge, veth: &veth };
            Host::create(&run.namespace(&name), ip, port, Some(subnet.router(k)))
        };
        let hosts = (1..=config.hosts_per_region)
            .map(|i| host(format!("{region}-{i}"), subnet.host(k, i), format!("r{k}h{i}")))
            .collect::<Result<_, _>>()?;
        let client = host(format!("{region}-client"), subnet.client(k), format!("r{k}c"))?;
        regions.push(Region { hosts, client });
    }
    let relay = start_relay(run, &core, config, subnet)?;
    Ok((subnet, regions, relay))
}

/// Links the root namespace to the core and takes a /16 no route of the root namespace touches; the route
/// itself is the claim (two runs cannot add the same one).
fn claim_subnet(run: &Run, core: &str) -> Result<Subnet, String> {
    let link = run.root_link();
    netns::ip(&["link", "add", &link, "type", "veth", "peer", "name", "up0", "netns", core])?;
    netns::ip(&["link", "set", &link, "up"])?;
    netns::ip(&["-n", core, "link", "set", "up0", "up"])?;
    let routes = netns::ip(&["-4", "route", "show", "table", "all"])?;
    let taken =
        |subnet: &Subnet| routes.lines().filter_map(|l| l.split_whitespace().next()).any(|d| subnet.overlaps(d));
    for subnet in SECOND_OCTETS.map(Subnet::new).filter(|s| !taken(s)) {
        let (root, peer) = subnet.uplink();
        let via = peer.to_string();
        if netns::ip(&["route", "add", &subnet.to_string(), "via", &via, "dev", &link, "onlink"]).is_ok() {
            netns::ip(&["addr", "add", &format!("{root}/30"), "dev", &link])?;
            netns::ip(&["-n", core, "addr", "add", &format!("{peer}/30"), "dev", "up0"])?;
            return Ok(subnet);
        }
    }
    Err(format!("no free subnet among 10.{}-{}.0.0/16", SECOND_OCTETS.start(), SECOND_OCTETS.end()))
}

/// Starts `tern-sim relay` in the core namespace, logging to `relay.log` in the run's directory, and waits until
/// it is attached to the TUN device.
fn start_relay(run: &Run, core: &str, config: &Config, subnet: Subnet) -> Result<Child, String> {
    let log_path = run.dir().join("relay.log");
    let log = std::fs::File::create(&log_path).map_err(|e| format!("cannot create {}: {e}", log_path.display()))?;
    let mut command = netns::command(core, &config.relay);
    command.args(["relay", "--tun", TUN, "--subnet", &subnet.to_string()]);
    command.arg("--regions").arg(config.matrix.regions().join(","));
    for rtt in config.matrix.rtt_args() {
        command.args(["--rtt", &rtt]);
    }
    for loss in config.matrix.loss_args() {
        command.args(["--loss", &loss]);
    }
    if config.detached {
        command.process_group(0);
    }
    command.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(log);
    let mut relay = command.spawn().map_err(|e| format!("cannot start {}: {e}", config.relay.display()))?;
    let stdout = relay.stdout.take().expect("the relay's output is piped");
    let (sender, ready) = mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(stdout).read_line(&mut line);
        let _ = sender.send(line);
    });
    match ready.recv_timeout(RELAY_READY_CAP) {
        Ok(line) if line.trim() == "ready" => Ok(relay),
        outcome => {
            let _ = relay.kill();
            let _ = relay.wait();
            let log = std::fs::read_to_string(&log_path).unwrap_or_default();
            let why = if outcome.is_err() { format!("not ready within {RELAY_READY_CAP:?}") } else { "exited".into() };
            Err(format!("the relay {why}: {}", log.trim()))
        }
    }
}
