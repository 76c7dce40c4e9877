//! Network namespaces through iproute2: the primitives the simulator and the partition test's lab are built from.
//! A host is a namespace with one interface, `eth0`, whose other end is a port of a bridge; code runs "on" a
//! host either as a command under `ip netns exec` or on a thread that entered the namespace.

use std::fs::File;
use std::net::Ipv4Addr;
use std::os::fd::AsRawFd;
use std::process::Command;

/// Runs `ip ARGS`: its standard output, or what went wrong.
pub fn ip(args: &[&str]) -> Result<String, String> {
    let output = Command::new("ip").args(args).output().map_err(|e| format!("cannot run ip: {e}"))?;
    if output.status.success() {
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    } else {
        Err(format!("ip {}: {}", args.join(" "), String::from_utf8_lossy(&output.stderr).trim()))
    }
}

/// The names of every network namespace on the machine.
pub fn namespaces() -> Result<Vec<String>, String> {
    let list = ip(&["netns", "list"])?;
    Ok(list.lines().filter_map(|line| line.split_whitespace().next()).map(str::to_string).collect())
}

/// The ids of the processes running in namespace `name`.
pub fn pids(name: &str) -> Vec<u32> {
    ip(&["netns", "pids", name]).unwrap_or_default().lines().filter_map(|line| line.trim().parse().ok()).collect()
}

/// The command prefix that runs a program in namespace `name`: `ip netns exec NAME`.
fn wrapper(name: &str) -> Vec<String> {
    ["ip", "netns", "exec", name].into_iter().map(str::to_string).collect()
}

/// A [`Command`] that runs `program` in namespace `name`.
pub fn command(name: &str, program: impl AsRef<std::ffi::OsStr>) -> Command {
    let mut command = Command::new("ip");
    command.args(["netns", "exec", name]).arg(program);
    command
}

/// Runs `f` on a thread inside namespace `name` and returns what it returns. Sockets made there stay in that
/// namespace wherever they are used afterwards.
pub fn within<T: Send>(name: &str, f: impl FnOnce() -> T + Send) -> Result<T, String> {
    let path = format!("/run/netns/{name}");
    let namespace = File::open(&path).map_err(|e| format!("cannot open {path}: {e}"))?;
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                // SAFETY: setns takes an open namespace file descriptor and a namespace type; it changes only this
                // thread's network namespace, and this thread ends after `f`.
                if unsafe { libc::setns(namespace.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
                    return Err(format!("cannot enter {name}: {}", std::io::Error::last_os_error()));
                }
                Ok(f())
            })
            .join()
            .map_err(|_| format!("the thread in {name} panicked"))?
    })
}

/// Where a host's interface plugs in: a bridge, in a namespace or in the root namespace.
#[derive(Clone, Copy, Debug)]
pub struct BridgePort<'a> {
    /// The bridge's namespace (`None`: the root namespace).
    pub namespace: Option<&'a str>,
    /// The bridge's name.
    pub bridge: &'a str,
    /// The name of the veth end that becomes the bridge's port (unique in the bridge's namespace).
    pub veth: &'a str,
}

/// A host: a network namespace whose interface `eth0` has one address on a /24.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Host {
    /// The namespace's name.
    pub namespace: String,
    /// The host's address.
    pub ip: Ipv4Addr,
}

impl Host {
    /// Makes namespace `namespace` with `lo` up and `eth0` at `ip`/24, plugged into `port`, with a default route
    /// via `gateway` when given.
    pub fn create(namespace: &str, ip: Ipv4Addr, port: BridgePort, gateway: Option<Ipv4Addr>) -> Result<Host, String> {
        let on_bridge = |args: &[&str]| match port.namespace {
            Some(bridge_ns) => self::ip(&[&["-n", bridge_ns], args].concat()),
            None => self::ip(args),
        };
        let host = Host { namespace: namespace.to_string(), ip };
        self::ip(&["netns", "add", namespace])?;
        on_bridge(&["link", "add", port.veth, "type", "veth", "peer", "name", "eth0", "netns", namespace])?;
        on_bridge(&["link", "set", port.veth, "master", port.bridge, "up"])?;
        host.ip(&["addr", "add", &format!("{ip}/24"), "dev", "eth0"])?;
        host.ip(&["link", "set", "eth0", "up"])?;
        host.ip(&["link", "set", "lo", "up"])?;
        if let Some(gateway) = gateway {
            host.ip(&["route", "add", "default", "via", &gateway.to_string()])?;
        }
        Ok(host)
    }

    /// Runs `ip -n NAMESPACE ARGS`.
    fn ip(&self, args: &[&str]) -> Result<String, String> {
        ip(&[&["-n", self.namespace.as_str()], args].concat())
    }

    /// The command prefix that runs a program on this host.
    pub fn wrapper(&self) -> Vec<String> {
        wrapper(&self.namespace)
    }

    /// Runs `f` on a thread inside this host's namespace (see [`within`]).
    pub fn within<T: Send>(&self, f: impl FnOnce() -> T + Send) -> Result<T, String> {
        within(&self.namespace, f)
    }

    /// Drops every packet this host sends to `cidr` (a blackhole route) until [`Host::unblackhole`].
    pub fn blackhole(&self, cidr: &str) -> Result<(), String> {
        self.ip(&["route", "add", "blackhole", cidr]).map(drop)
    }

    /// Removes the blackhole route to `cidr`.
    pub fn unblackhole(&self, cidr: &str) -> Result<(), String> {
        self.ip(&["route", "del", "blackhole", cidr]).map(drop)
    }
}
