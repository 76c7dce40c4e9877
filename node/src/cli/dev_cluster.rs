//! `tern dev --nodes N [--regions a,b,c]`: a local cluster for development, as N `tern node` child processes of
//! the running executable (so an application binary built on the SDK starts its own actors, not the stock ones).
//!
//! - Certificates: a cluster CA and one certificate per node in `<data-dir>/certs`, created on the first run and
//!   reused afterwards, so a restarted cluster keeps its identities.
//! - Node I (0-based) is `node-I`, in region `regions[I mod len]` (default `local`), with its gateway on the
//!   `--listen` host at port base+I, its QUIC transport on port `--quic-port`+I (default 7420) of that host
//!   (loopback when it listens on all interfaces), its data in `<data-dir>/node-I`, LAN timing, and node-0's QUIC
//!   address as its seed. The voters are the first 3 nodes (5 from N = 5 on): with regions assigned round-robin,
//!   they spread over the regions. The nodes keep their voter set in their data, so a restart on the same data
//!   directory needs a node count with the same voters (2; 3 or 4; 5 and more): the nodes refuse any other.
//! - The admin token is `--admin-token`, or one generated for the run and printed with the gateway URLs.
//! - The children run in their own process group, with their output prefixed by their name. Ctrl-C or SIGTERM is
//!   forwarded to them as SIGTERM (they drain and leave the cluster); a second one kills them. On Linux a child
//!   also gets SIGTERM when `tern dev` dies without forwarding it.
//! - A node that exits on its own (or fails) is logged and the others keep running, so a node can be killed to
//!   watch the cluster react; `tern dev` exits once every node has stopped, with 0 only if every node stopped
//!   cleanly after a forwarded signal.

use std::ffi::OsString;
use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::process::{ExitCode, ExitStatus, Stdio};

use clap::Args;
use clap::error::ErrorKind;
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::sync::watch;
use tokio::task::JoinSet;

use super::{DevArgs, stop_signal};

/// The first QUIC port when `--quic-port` is not given.
const DEFAULT_QUIC_PORT: u16 = 7420;
/// The region of every node when `--regions` is not given.
const DEFAULT_REGION: &str = "local";
/// Most nodes `--nodes` accepts.
const MAX_NODES: usize = 64;

/// The options of `tern dev` that make it start a local cluster instead of one in-process node.
#[derive(Debug, Args)]
pub(crate) struct DevClusterArgs {
    /// Start a local cluster of N `tern node` processes (2 to 64) instead of one in-process node: node I serves its
    /// gateway on the --listen port + I and keeps its data in <data-dir>/node-I.
    #[arg(long, value_name = "N", value_parser = parse_nodes)]
    nodes: Option<usize>,
    /// The cluster's regions, comma-separated, assigned to the nodes round-robin [default: local].
    #[arg(long, value_name = "REGION,...", value_delimiter = ',', requires = "nodes", value_parser = parse_region)]
    regions: Vec<String>,
    /// The first QUIC port of the cluster: node I's transport listens on BASE + I [default: 7420].
    #[arg(long, value_name = "BASE", requires = "nodes")]
    quic_port: Option<u16>,
}

impl DevClusterArgs {
    /// Whether `tern dev` runs a local cluster (`--nodes` given).
    pub(crate) fn is_cluster(&self) -> bool {
        self.nodes.is_some()
    }
}

/// `--nodes`: 2 to [`MAX_NODES`].
fn parse_nodes(value: &str) -> Result<usize, String> {
    let nodes: usize = value.parse().map_err(|_| format!("`{value}` is not a number of nodes"))?;
    match nodes {
        0 | 1 => Err("a local cluster needs at least 2 nodes (without --nodes, `tern dev` runs one)".to_string()),
        n if n > MAX_NODES => Err(format!("a local cluster has at most {MAX_NODES} nodes")),
        n => Ok(n),
    }
}

/// A `--regions` entry: letters, digits, `-`, `_` and `.`.
fn parse_region(value: &str) -> Result<String, String> {
    let valid = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.');
    if value.is_empty() || !value.chars().all(valid) {
        return Err(format!("`{value}` is not a region name (letters, digits, `-`, `_` and `.`)"));
    }
    Ok(value.to_string())
}

/// How often `tern dev --nodes` asks its nodes whether they see each other, until they do.
const READY_POLL: std::time::Duration = std::time::Duration::from_millis(200);

/// One node of the local cluster, before it starts.
#[derive(Debug, Clone, PartialEq, Eq)]
struct NodePlan {
    /// `node-I`: the node's id and certificate name.
    name: String,
    region: String,
    /// The gateway's address.
    listen: SocketAddr,
    /// The QUIC transport's address.
    quic: SocketAddr,
    /// Whether the node is one of the directory's voters.
    voter: bool,
}

/// Plans `nodes` nodes: names, regions round-robin, gateways from `listen` on, QUIC ports from `quic_port` on, and
/// the voters; or why the addresses do not work.
fn plan(nodes: usize, regions: &[String], listen: SocketAddr, quic_port: u16) -> Result<Vec<NodePlan>, String> {
    let default_regions = [DEFAULT_REGION.to_string()];
    let regions = if regions.is_empty() { &default_regions[..] } else { regions };
    let ports = |flag: &str, base: u16| -> Result<(), String> {
        let last = usize::from(base) + nodes - 1;
        if base == 0 || last > usize::from(u16::MAX) {
            return Err(format!("{flag} port {base} does not leave room for {nodes} nodes (ports {base} to {last})"));
        }
        Ok(())
    };
    ports("--listen", listen.port())?;
    ports("--quic-port", quic_port)?;
    let quic_ip = match listen.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    let voters = if nodes >= 5 { 5 } else { nodes.min(3) };
    Ok((0..nodes)
        .map(|i| {
            let offset = u16::try_from(i).expect("checked against the port range");
            NodePlan {
                name: format!("node-{i}"),
                region: regions[i % regions.len()].clone(),
                listen: SocketAddr::new(listen.ip(), listen.port() + offset),
                quic: SocketAddr::new(quic_ip, quic_port + offset),
                // Regions go round-robin, so the first nodes are spread over them.
                voter: i < voters,
            }
        })
        .collect())
}

/// The cluster CA's certificate and each node's certificate and key.
#[derive(Debug)]
struct Certs {
    ca: PathBuf,
    nodes: Vec<tern_replication::CertFiles>,
}

/// Makes sure `dir` holds a cluster CA and a certificate for each of `names`: existing files are reused, missing
/// ones created. Half a pair (a certificate without its key) is an error rather than silently replaced.
fn ensure_certs<'a>(dir: &Path, names: impl IntoIterator<Item = &'a str>) -> Result<Certs, String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let pair = |cert: PathBuf, key: PathBuf| -> Result<bool, String> {
        match (cert.exists(), key.exists()) {
            (true, true) => Ok(true),
            (false, false) => Ok(false),
            (true, false) => Err(format!("{} exists without {}", cert.display(), key.display())),
            (false, true) => Err(format!("{} exists without {}", key.display(), cert.display())),
        }
    };
    let ca = dir.join(tern_replication::CA_CERT_FILE);
    if !pair(ca.clone(), dir.join(tern_replication::CA_KEY_FILE))? {
        tern_replication::init_ca(dir).map_err(|e| e.to_string())?;
    }
    let nodes = names
        .into_iter()
        .map(|name| {
            let files = tern_replication::CertFiles {
                cert: dir.join(format!("{name}.pem")),
                key: dir.join(format!("{name}.key")),
            };
            if pair(files.cert.clone(), files.key.clone())? {
                Ok(files)
            } else {
                tern_replication::issue_node(dir, name).map_err(|e| e.to_string())
            }
        })
        .collect::<Result<_, String>>()?;
    Ok(Certs { ca, nodes })
}

/// The `tern node` arguments of `plans[index]` (the admin token goes in the environment, out of `ps`).
fn node_args(args: &DevArgs, plans: &[NodePlan], index: usize, certs: &Certs) -> Vec<OsString> {
    let node = &plans[index];
    let voters: Vec<String> = plans.iter().filter(|p| p.voter).map(|p| format!("{}@{}", p.name, p.quic)).collect();
    let mut out: Vec<OsString> = vec!["node".into(), "--region".into(), node.region.clone().into()];
    let mut flag = |name: &str, value: OsString| out.extend([name.into(), value]);
    flag("--listen", node.listen.to_string().into());
    flag("--quic-listen", node.quic.to_string().into());
    flag("--data-dir", args.storage.data_dir.join(&node.name).into());
    flag("--profile", "lan".into());
    flag("--voters", voters.join(",").into());
    if index > 0 {
        flag("--join", plans[0].quic.to_string().into());
    }
    flag("--tls-ca", certs.ca.clone().into());
    flag("--tls-cert", certs.nodes[index].cert.clone().into());
    flag("--tls-key", certs.nodes[index].key.clone().into());
    flag("--max-open-databases", args.storage.max_open_databases.to_string().into());
    if let (Some(cert), Some(key)) = (&args.gateway_tls.gateway_tls_cert, &args.gateway_tls.gateway_tls_key) {
        flag("--gateway-tls-cert", cert.clone().into());
        flag("--gateway-tls-key", key.clone().into());
    }
    if let Some(endpoint) = &args.otlp.otlp_endpoint {
        flag("--otlp-endpoint", endpoint.into());
    }
    // `tern node` allows no origin by default; the local cluster keeps `tern dev`'s default.
    let origins = &args.cors.cors_origins;
    let any = [tern_gateway::cors::ANY_ORIGIN.to_string()];
    for origin in if origins.is_empty() { &any[..] } else { &origins[..] } {
        flag("--cors-origin", origin.into());
    }
    if args.storage.fsync {
        out.push("--fsync".into());
    }
    out
}

/// Runs `tern dev --nodes N`: starts the nodes and supervises them until they all stopped.
pub(crate) fn run(args: DevArgs) -> ExitCode {
    super::init_logging();
    let nodes = args.cluster.nodes.expect("run only with --nodes");
    let quic_port = args.cluster.quic_port.unwrap_or(DEFAULT_QUIC_PORT);
    let plans = match plan(nodes, &args.cluster.regions, args.listen, quic_port) {
        Ok(plans) => plans,
        Err(message) => clap::Error::raw(ErrorKind::ValueValidation, format!("{message}\n")).exit(),
    };
    let fail = |message: String| {
        tracing::error!("{message}");
        eprintln!("error: {message}");
        ExitCode::FAILURE
    };
    let exe = match std::env::current_exe() {
        Ok(exe) => exe,
        Err(e) => return fail(format!("cannot find the running executable to start the nodes: {e}")),
    };
    let cert_dir = args.storage.data_dir.join("certs");
    let certs = match ensure_certs(&cert_dir, plans.iter().map(|p| p.name.as_str())) {
        Ok(certs) => certs,
        Err(e) => return fail(format!("cannot prepare the cluster's certificates in {}: {e}", cert_dir.display())),
    };
    let given = args.admin_token.clone();
    let token =
        given.clone().unwrap_or_else(|| rand::random::<[u8; 16]>().iter().map(|b| format!("{b:02x}")).collect());

    let scheme = if args.gateway_tls.config().is_some() { "https" } else { "http" };
    let mut banner = format!(
        "tern dev: a local cluster of {nodes} nodes, data in {}, certificates in {}\n",
        args.storage.data_dir.display(),
        cert_dir.display()
    );
    for node in &plans {
        let voter = if node.voter { "  voter" } else { "" };
        let (name, region, listen, quic) = (&node.name, &node.region, node.listen, node.quic);
        banner += &format!("  {name:<8} {region:<8} {scheme}://{listen:<22} quic {quic}{voter}\n");
    }
    if let Some(first) = plans.first() {
        let ui = tern_gateway::ui::UI_PATH;
        banner += &format!(
            "  inspector page: {scheme}://{}{ui} (every node serves it; sign in with the admin token)\n",
            first.listen
        );
    }
    banner += &match given {
        Some(_) => "  admin token: the one given with --admin-token\n".to_string(),
        None => format!("  admin token: {token}  (generated for this run; choose one with --admin-token)\n"),
    };
    banner += "  Ctrl-C stops every node gracefully; a second Ctrl-C kills them.";
    println!("{banner}");

    let commands = (0..plans.len()).map(|i| (plans[i].name.clone(), node_args(&args, &plans, i, &certs))).collect();
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => return fail(format!("cannot start the async runtime: {e}")),
    };
    let endpoints: Vec<String> = plans.iter().map(|p| format!("{scheme}://{}", p.listen)).collect();
    runtime.block_on(async {
        // Over HTTPS the gateways' certificate may be one this process does not trust: nothing is announced.
        if scheme == "http" {
            tokio::spawn(announce_ready(endpoints, token.clone()));
        }
        supervise(&exe, commands, &token).await
    })
}

/// Logs once every node lists every node alive, so that whoever started the cluster knows that calls and moves
/// between its nodes work from now on.
async fn announce_ready(endpoints: Vec<String>, token: String) {
    let clients: Vec<tern_client::Client> = endpoints
        .iter()
        .filter_map(|endpoint| tern_client::Client::builder(endpoint.as_str()).token(token.as_str()).build().ok())
        .collect();
    loop {
        let mut ready = clients.len() == endpoints.len();
        for client in &clients {
            let alive = match client.cluster_members().await {
                Ok(members) => members.iter().filter(|m| m.state == "alive").count(),
                Err(_) => 0,
            };
            ready &= alive == endpoints.len();
        }
        if ready {
            tracing::info!("every node sees the {} nodes alive: the cluster is ready", endpoints.len());
            return;
        }
        tokio::time::sleep(READY_POLL).await;
    }
}

/// How the children are asked to stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stop {
    /// SIGTERM: drain and leave.
    Graceful,
    /// SIGKILL.
    Kill,
}

/// Starts `exe` once per `(name, args)` and waits until every child exited, forwarding stop signals; the exit
/// code is 0 only if every child stopped successfully after a forwarded signal.
async fn supervise(exe: &Path, commands: Vec<(String, Vec<OsString>)>, token: &str) -> ExitCode {
    let width = commands.iter().map(|(name, _)| name.len()).max().unwrap_or(0);
    let (stop_tx, stop_rx) = watch::channel(None);
    let mut children = JoinSet::new();
    let mut relays = JoinSet::new();
    let mut signal: Pin<Box<dyn Future<Output = ()>>> = Box::pin(stop_signal());
    let mut stopping = false;
    let mut failed = false;
    for (name, args) in commands {
        let mut command = tokio::process::Command::new(exe);
        command
            .args(&args)
            .env("TERN_ADMIN_TOKEN", token)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        #[cfg(unix)]
        {
            // Ctrl-C in a terminal reaches the whole foreground process group: keep the children out of it, so
            // that they get exactly one SIGTERM, from us.
            command.process_group(0);
            #[cfg(target_os = "linux")]
            die_with_parent(&mut command);
        }
        match command.spawn() {
            Ok(mut child) => {
                let prefix = format!("{name:<width$} | ");
                if let Some(out) = child.stdout.take() {
                    relays.spawn(relay(prefix.clone(), out, false));
                }
                if let Some(err) = child.stderr.take() {
                    relays.spawn(relay(prefix, err, true));
                }
                children.spawn(watch_child(name, child, stop_rx.clone()));
            }
            Err(e) => {
                tracing::error!("cannot start {name} ({}): {e}; stopping the others", exe.display());
                failed = true;
                stopping = true;
                let _ = stop_tx.send(Some(Stop::Graceful));
                break;
            }
        }
    }
    while !children.is_empty() {
        tokio::select! {
            () = &mut signal => {
                if stopping {
                    tracing::warn!("stopping again: killing the nodes still running");
                    let _ = stop_tx.send(Some(Stop::Kill));
                    signal = Box::pin(std::future::pending());
                } else {
                    tracing::info!("stopping the cluster: SIGTERM to every node (again to kill them)");
                    stopping = true;
                    let _ = stop_tx.send(Some(Stop::Graceful));
                    signal = Box::pin(stop_signal());
                }
            }
            Some(joined) = children.join_next() => match joined {
                Ok((name, Ok(status))) if stopping && status.success() => tracing::info!("{name} stopped"),
                Ok((name, Ok(status))) => {
                    failed = true;
                    if stopping {
                        tracing::error!("{name} stopped with {status}");
                    } else {
                        tracing::error!("{name} exited unexpectedly with {status}; the other nodes keep running");
                    }
                }
                Ok((name, Err(e))) => {
                    failed = true;
                    tracing::error!("cannot wait for {name}: {e}");
                }
                Err(e) => {
                    failed = true;
                    tracing::error!("a node's supervisor failed: {e}");
                }
            },
        }
    }
    // The children are gone: their pipes are closed, so the relays end once they printed the last lines.
    while relays.join_next().await.is_some() {}
    if failed { ExitCode::FAILURE } else { ExitCode::SUCCESS }
}

/// Waits for `child` to exit, signalling it when `stop` says so; returns its name and exit status.
async fn watch_child(
    name: String,
    mut child: tokio::process::Child,
    mut stop: watch::Receiver<Option<Stop>>,
) -> (String, std::io::Result<ExitStatus>) {
    let mut listening = true;
    loop {
        tokio::select! {
            status = child.wait() => return (name, status),
            changed = stop.changed(), if listening => {
                if changed.is_err() {
                    listening = false;
                    continue;
                }
                let request = *stop.borrow_and_update();
                if let Some(request) = request
                    && let Err(e) = signal_child(&mut child, request)
                {
                    tracing::warn!("cannot signal {name}: {e}");
                }
            }
        }
    }
}

/// Sends `stop`'s signal to `child`, if it has not been reaped yet.
fn signal_child(child: &mut tokio::process::Child, stop: Stop) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        // `id` is `None` once the child is reaped, so the pid cannot belong to another process yet.
        let Some(pid) = child.id().and_then(|pid| libc::pid_t::try_from(pid).ok()) else { return Ok(()) };
        let signal = match stop {
            Stop::Graceful => libc::SIGTERM,
            Stop::Kill => libc::SIGKILL,
        };
        // SAFETY: kill(2) has no memory-safety preconditions.
        if unsafe { libc::kill(pid, signal) } == 0 { Ok(()) } else { Err(std::io::Error::last_os_error()) }
    }
    #[cfg(not(unix))]
    {
        let _ = stop;
        child.start_kill()
    }
}

/// Makes the child get SIGTERM when this process dies (e.g. killed with SIGKILL), so no node outlives `tern dev`.
#[cfg(target_os = "linux")]
fn die_with_parent(command: &mut tokio::process::Command) {
    // SAFETY: getpid(2) has no preconditions.
    let parent = unsafe { libc::getpid() };
    // SAFETY: the hook only makes async-signal-safe system calls (prctl, getppid) and allocates nothing.
    unsafe {
        command.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            // The parent may have died before the prctl took effect.
            if libc::getppid() != parent {
                return Err(std::io::Error::from_raw_os_error(libc::ESRCH));
            }
            Ok(())
        });
    }
}

/// Copies `from` line by line to our stdout (or stderr), each line behind `prefix`. Write errors (a closed
/// terminal) are ignored and reading goes on, so the child never blocks on a full pipe.
async fn relay(prefix: String, from: impl AsyncRead + Unpin, to_stderr: bool) {
    let mut reader = BufReader::new(from);
    let mut line = Vec::new();
    loop {
        line.clear();
        line.extend_from_slice(prefix.as_bytes());
        match reader.read_until(b'\n', &mut line).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        if !line.ends_with(b"\n") {
            line.push(b'\n');
        }
        let _ = if to_stderr {
            std::io::stderr().lock().write_all(&line)
        } else {
            std::io::stdout().lock().write_all(&line)
        };
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::super::{Cli, CliCommand};
    use super::*;

    fn dev(args: &[&str]) -> Result<DevArgs, clap::Error> {
        let cli = Cli::try_parse_from(["tern", "dev"].iter().chain(args))?;
        let CliCommand::Dev(dev) = cli.command else { panic!("not dev") };
        Ok(dev)
    }

    #[test]
    fn nodes_regions_and_quic_ports_are_validated() {
        assert!(!dev(&[]).unwrap().cluster.is_cluster());
        for bad in ["0", "1", "65", "x", "-2"] {
            assert!(dev(&["--nodes", bad]).is_err(), "--nodes {bad}");
        }
        assert!(dev(&["--nodes", "1"]).unwrap_err().to_string().contains("at least 2 nodes"));
        // --regions and --quic-port belong to a cluster.
        assert!(dev(&["--regions", "iad"]).is_err());
        assert!(dev(&["--quic-port", "9000"]).is_err());
        for bad in ["iad,,fra", "", "i d", "fra/1"] {
            assert!(dev(&["--nodes", "2", "--regions", bad]).is_err(), "--regions {bad:?}");
        }
        let args = dev(&["--nodes", "3", "--regions", "iad,fra", "--quic-port", "9000"]).unwrap();
        assert!(args.cluster.is_cluster());
        assert_eq!((args.cluster.nodes, args.cluster.quic_port), (Some(3), Some(9000)));
        assert_eq!(args.cluster.regions, ["iad", "fra"]);
        // Ports must leave room for every node.
        let listen = |s: &str| s.parse::<SocketAddr>().unwrap();
        assert!(plan(3, &[], listen("127.0.0.1:65534"), 7420).unwrap_err().contains("--listen"));
        assert!(plan(3, &[], listen("127.0.0.1:0"), 7420).unwrap_err().contains("--listen"));
        assert!(plan(3, &[], listen("127.0.0.1:6420"), 65535).unwrap_err().contains("--quic-port"));
        assert!(plan(3, &[], listen("127.0.0.1:65533"), 65533).is_ok());
    }

    #[test]
    fn nodes_get_regions_round_robin_consecutive_ports_and_spread_voters() {
        let regions = ["iad".to_string(), "fra".to_string()];
        let plans = plan(3, &regions, "127.0.0.1:6420".parse().unwrap(), 7420).unwrap();
        let summary: Vec<_> = plans
            .iter()
            .map(|p| (p.name.as_str(), p.region.as_str(), p.listen.port(), p.quic.port(), p.voter))
            .collect();
        assert_eq!(
            summary,
            [
                ("node-0", "iad", 6420, 7420, true),
                ("node-1", "fra", 6421, 7421, true),
                ("node-2", "iad", 6422, 7422, true)
            ]
        );
        assert!(plans.iter().all(|p| p.quic.ip() == IpAddr::V4(Ipv4Addr::LOCALHOST)));
        // No regions: all `local`; voters: 2 of 2, 3 of 4, 5 of 5 and more.
        let voters = |n: usize| plan(n, &[], "127.0.0.1:6420".parse().unwrap(), 7420).unwrap();
        assert!(voters(2).iter().all(|p| p.voter && p.region == "local"));
        assert_eq!(voters(4).iter().filter(|p| p.voter).count(), 3);
        assert_eq!(voters(7).iter().filter(|p| p.voter).count(), 5);
        // Three regions, six nodes: the five voters cover every region.
        let three = ["iad".to_string(), "fra".to_string(), "syd".to_string()];
        let six = plan(6, &three, "127.0.0.1:6420".parse().unwrap(), 7420).unwrap();
        let mut voter_regions: Vec<_> = six.iter().filter(|p| p.voter).map(|p| p.region.as_str()).collect();
        voter_regions.sort();
        voter_regions.dedup();
        assert_eq!(voter_regions, ["fra", "iad", "syd"]);
        // A gateway on every interface: QUIC on loopback, which the other nodes can dial.
        let any = plan(2, &[], "0.0.0.0:6420".parse().unwrap(), 7420).unwrap();
        assert_eq!(
            (any[1].listen.to_string(), any[1].quic.to_string()),
            ("0.0.0.0:6421".into(), "127.0.0.1:7421".into())
        );
    }

    #[test]
    fn each_node_runs_with_its_certificate_the_shared_voters_and_node_0_as_seed() {
        let args = dev(&[
            "--nodes",
            "3",
            "--data-dir",
            "/d",
            "--fsync",
            "--quic-port",
            "9000",
            "--otlp-endpoint",
            "http://c:4318",
        ])
        .unwrap();
        let plans = plan(3, &[], args.listen, 9000).unwrap();
        let certs = Certs {
            ca: "/d/certs/ca.pem".into(),
            nodes: (0..3)
                .map(|i| tern_replication::CertFiles {
                    cert: format!("/d/certs/node-{i}.pem").into(),
                    key: format!("/d/certs/node-{i}.key").into(),
                })
                .collect(),
        };
        let line = |i: usize| -> Vec<String> {
            node_args(&args, &plans, i, &certs).iter().map(|a| a.to_string_lossy().into_owned()).collect()
        };
        let voters = "node-0@127.0.0.1:9000,node-1@127.0.0.1:9001,node-2@127.0.0.1:9002";
        let first = line(0).join(" ");
        assert!(
            first.starts_with("node --region local --listen 127.0.0.1:6420 --quic-listen 127.0.0.1:9000"),
            "{first}"
        );
        assert!(first.contains(&format!("--data-dir /d/node-0 --profile lan --voters {voters} --tls-ca")), "{first}");
        assert!(
            !first.contains("--join") && first.ends_with("--otlp-endpoint http://c:4318 --cors-origin * --fsync"),
            "{first}"
        );
        let third = line(2).join(" ");
        assert!(
            third.contains("--join 127.0.0.1:9000 --tls-ca /d/certs/ca.pem --tls-cert /d/certs/node-2.pem"),
            "{third}"
        );
        // What the child gets parses as `tern node`.
        for i in 0..3 {
            let parsed = Cli::try_parse_from(std::iter::once("tern".to_string()).chain(line(i))).unwrap();
            assert!(matches!(parsed.command, CliCommand::Node(_)), "node {i}");
        }
    }

    #[test]
    fn certificates_are_created_once_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let certs = dir.path().join("certs");
        let first = ensure_certs(&certs, ["node-0", "node-1"]).unwrap();
        let ca = std::fs::read(&first.ca).unwrap();
        let node0 = std::fs::read(&first.nodes[0].cert).unwrap();
        // A restart with one more node: same CA, same certificates, one new.
        let second = ensure_certs(&certs, ["node-0", "node-1", "node-2"]).unwrap();
        assert_eq!(std::fs::read(&second.ca).unwrap(), ca);
        assert_eq!(std::fs::read(&second.nodes[0].cert).unwrap(), node0);
        assert!(second.nodes[2].key.exists());
        // Half a pair is refused, not replaced.
        std::fs::remove_file(&second.nodes[1].key).unwrap();
        assert!(ensure_certs(&certs, ["node-1"]).unwrap_err().contains("without"));
    }
}
