//! `tern node`: a cluster node. It runs what `tern dev` runs (host, gateway, storage) plus its part in the
//! cluster: a QUIC transport with mutual TLS from the cluster CA, SWIM membership joined through the `--join`
//! seeds (retried in the background until one answers), its load gossiped, and a graceful leave on Ctrl-C or
//! SIGTERM after its actors are put to sleep. Unlike `tern dev` it refuses to start without an admin token.
//! Its options may also come from a TOML file, `--config FILE` (see `config_file.rs`).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::error::ErrorKind;
use clap::{Args, ValueEnum};

use super::{CorsArgs, GatewayTlsArgs, OtlpArgs, StorageArgs, gateway_scheme, parse_admin_token, run_server};
use crate::cluster::directory::voters::VoterSpec;
use crate::cluster::discovery::Seed;
use crate::cluster::{ClusterConfig, Profile};
use crate::handoff::FollowTraffic;
use crate::replica::{ReplicationMode, ReplicationSettings};
use crate::runtime::Registry;

/// The QUIC port used when `--quic-listen` is not given.
const DEFAULT_QUIC_PORT: u16 = 7420;

/// `tern node`.
#[derive(Debug, Args)]
pub(crate) struct NodeArgs {
    /// Read options from this TOML file: its keys are the long flags without `--` (`region = "iad"`,
    /// `join = ["10.0.0.1:7420"]`, `fsync = true`); the command line and environment variables win over it.
    #[arg(long, value_name = "PATH", env = "TERN_CONFIG")]
    config: Option<PathBuf>,
    /// The node's region, e.g. `iad` (also reported as each actor's datacenter).
    #[arg(long, required = true)]
    region: Option<String>,
    /// The node's zone within its region.
    #[arg(long)]
    zone: Option<String>,
    /// Address of the gateway: the HTTP/WebSocket listener clients connect to.
    #[arg(long, value_name = "HOST:PORT", default_value = "0.0.0.0:6420", env = "TERN_LISTEN")]
    listen: SocketAddr,
    /// Address of the QUIC transport to the other nodes [default: port 7420 on the --listen host].
    #[arg(long, value_name = "HOST:PORT")]
    quic_listen: Option<SocketAddr>,
    /// The QUIC address the other nodes dial; needed when the QUIC transport listens on all interfaces.
    #[arg(long, value_name = "HOST:PORT")]
    advertise: Option<SocketAddr>,
    /// The public URL of this node's gateway, as the cluster reports it [default: http:// (https:// with
    /// --gateway-tls-cert) and --listen, with the --advertise host in place of 0.0.0.0].
    #[arg(long, value_name = "URL")]
    gateway_url: Option<String>,
    /// Seeds, comma-separated (none for the first node): the QUIC HOST:PORT of nodes already in the cluster, or
    /// dns:NAME[:PORT] to find them in DNS (NAME's SRV records give hosts and ports; without SRV records, NAME's
    /// A/AAAA records with PORT, default 7420). Seeds are resolved again, and joining retried, in the background
    /// until a seed answers.
    #[arg(long, value_name = "SEED,...", value_delimiter = ',', value_parser = parse_seed)]
    join: Vec<String>,
    /// The DNS server (UDP and TCP) that resolves dns: seeds, instead of the system's resolver configuration.
    #[arg(long, value_name = "IP:PORT")]
    dns_server: Option<SocketAddr>,
    /// The directory's voters, the same list on every node: node ids, each optionally with its QUIC address
    /// (`ID@IP:PORT`; without one, membership supplies it). One or two per region; a majority must be reachable
    /// to create or look up actors. Without voters the node takes part in membership only.
    #[arg(long, value_name = "ID[@IP:PORT],...", value_delimiter = ',')]
    voters: Vec<VoterSpec>,
    #[command(flatten)]
    storage: StorageArgs,
    #[command(flatten)]
    gateway_tls: GatewayTlsArgs,
    #[command(flatten)]
    otlp: OtlpArgs,
    #[command(flatten)]
    cors: CorsArgs,
    /// The cluster CA's certificate (`ca.pem`, from `tern ca init`).
    #[arg(long, value_name = "PATH", required = true)]
    tls_ca: Option<PathBuf>,
    /// This node's certificate (`NAME.pem`, from `tern ca issue`); its name is the node's id.
    #[arg(long, value_name = "PATH", required = true)]
    tls_cert: Option<PathBuf>,
    /// This node's private key (`NAME.key`).
    #[arg(long, value_name = "PATH", required = true)]
    tls_key: Option<PathBuf>,
    /// The admin token (required): admin routes need it (`Authorization: Bearer`), inspector routes need it or
    /// the actor's own token. It travels in clear text unless the gateway serves TLS (--gateway-tls-cert) or a
    /// TLS-terminating proxy is in front.
    #[arg(long, env = "TERN_ADMIN_TOKEN", hide_env_values = true, value_parser = parse_admin_token)]
    admin_token: Option<String>,
    /// Membership timing: `lan` for nodes within one region (a dead node is declared down in about 5 s), `wan`
    /// for nodes across regions (about 15 s).
    #[arg(long, value_enum, default_value_t = ProfileArg::Wan)]
    profile: ProfileArg,
    /// How many replicas each actor homed here keeps on other nodes (other regions first, then other zones); 0
    /// replicates nothing. A cluster of one node has none to keep.
    #[arg(long, default_value_t = 1)]
    replicas: usize,
    /// When an actor's replies leave: `async` after the local commit (replicas follow), `sync` once a replica also
    /// holds the commit.
    #[arg(long, value_enum, default_value_t = ReplicationMode::Async)]
    replication_mode: ReplicationMode,
    /// On SIGTERM or Ctrl-C, move every actor homed here to other live nodes (this region's first) before leaving
    /// the cluster, so that a rolling upgrade fails no call.
    #[arg(long)]
    drain_on_stop: bool,
    /// Move each actor homed here to the region most of its calls come from: 70 % of them from one other region
    /// in two windows in a row (definitions may choose with `ActorOptions::follow_traffic`).
    #[arg(long)]
    follow_traffic: bool,
    /// How long calls are counted before --follow-traffic looks at them, in seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = 60)]
    follow_traffic_window: u64,
    /// The fewest calls in a window that can move an actor (--follow-traffic).
    #[arg(long, value_name = "CALLS", default_value_t = 100)]
    follow_traffic_min_calls: u64,
    /// The least time between two moves of an actor that follows its traffic, in seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = 300)]
    follow_traffic_dwell: u64,
    /// `tern node drain NODE`: a client command against a running cluster instead of a node to run.
    #[command(subcommand)]
    pub action: Option<NodeAction>,
}

/// What `tern node` does besides running a node.
#[derive(Debug, clap::Subcommand)]
pub(crate) enum NodeAction {
    /// Move every actor off a running node to other live nodes (its region first), and report how many moved.
    Drain(DrainArgs),
}

/// `tern node drain`.
#[derive(Debug, Args)]
pub(crate) struct DrainArgs {
    /// The node to drain (its id, as `tern members` lists it).
    pub node: String,
    #[command(flatten)]
    pub client: super::context::ClientArgs,
}

/// Drains `args.node` through the node at `--endpoint`: prints how many actors moved, and fails if any could not.
pub(crate) async fn drain(ctx: &super::context::Ctx, args: DrainArgs) -> super::context::CliResult {
    let report = ctx.client.drain_node(&args.node).await?;
    let failed = report["failed"].as_array().map_or(0, Vec::len);
    if ctx.json {
        super::context::emit(&report.to_string())?;
    } else {
        let moved = report["moved"].as_u64().unwrap_or(0);
        super::context::emit(&format!("drained {}: {moved} actors moved, {failed} could not move", args.node))?;
        for entry in report["failed"].as_array().into_iter().flatten() {
            super::context::emit(&format!("  {} {}: {}", entry["actorId"], entry["error"], entry["message"]))?;
        }
    }
    if failed > 0 {
        return Err(super::context::CliError::Message(format!("{failed} actors are still on {}", args.node)));
    }
    Ok(())
}

/// `--profile`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum ProfileArg {
    /// Peers in one region.
    Lan,
    /// Peers across regions.
    Wan,
}

/// A `--join` seed: `HOST:PORT` or `dns:NAME[:PORT]`.
fn parse_seed(seed: &str) -> Result<String, String> {
    Seed::parse(seed).map(|_| seed.to_string())
}

/// Runs `tern node` until Ctrl-C or SIGTERM.
pub(crate) fn run(registry: Registry, args: NodeArgs) -> ExitCode {
    let Some(admin_token) = args.admin_token.clone() else {
        let message = "`tern node` needs an admin token (--admin-token TOKEN or TERN_ADMIN_TOKEN): a cluster node \
                       does not leave its inspector and admin routes open\n";
        clap::Error::raw(ErrorKind::MissingRequiredArgument, message).exit()
    };
    let config = match cluster_config(&args) {
        Ok(config) => config,
        Err(message) => clap::Error::raw(ErrorKind::MissingRequiredArgument, format!("{message}\n")).exit(),
    };
    let mut node = args.storage.config(args.listen);
    node.region = required(args.region, "region");
    node.admin_token = Some(admin_token);
    node.cluster = Some(config);
    node.gateway_tls = args.gateway_tls.config();
    node.otlp_endpoint = args.otlp.otlp_endpoint;
    node.cors = args.cors.config(false);
    let (region, data_dir) = (node.region.clone(), node.data_dir.display().to_string());
    let config_file = args.config.map(|path| path.display().to_string());
    let scheme = gateway_scheme(&node);
    run_server(registry, node, move |addr| {
        tracing::info!(%addr, region, data_dir, ?config_file, "tern node listening on {scheme}://{addr}");
        tracing::info!("inspector page on {scheme}://{addr}{}", tern_gateway::ui::UI_PATH);
        if scheme == "http" {
            tracing::warn!(
                %addr,
                "the gateway serves plain HTTP: the admin token and inspector traffic cross the network in clear \
                 text unless a TLS-terminating proxy is in front; serve TLS with --gateway-tls-cert and \
                 --gateway-tls-key"
            );
        }
    })
}

/// A flag clap requires whenever a node runs (it is optional only for `tern node drain`).
fn required<T>(value: Option<T>, flag: &str) -> T {
    value.unwrap_or_else(|| {
        clap::Error::raw(ErrorKind::MissingRequiredArgument, format!("`tern node` needs --{flag}\n")).exit()
    })
}

/// The cluster part of the configuration, or why the flags cannot work.
fn cluster_config(args: &NodeArgs) -> Result<ClusterConfig, String> {
    let quic_listen = args.quic_listen.unwrap_or_else(|| SocketAddr::new(args.listen.ip(), DEFAULT_QUIC_PORT));
    if args.advertise.is_none() && quic_listen.ip().is_unspecified() {
        return Err(format!(
            "--advertise HOST:PORT is needed: the QUIC transport listens on {quic_listen}, which other nodes cannot \
             dial"
        ));
    }
    Ok(ClusterConfig {
        tls_ca: required(args.tls_ca.clone(), "tls-ca"),
        tls_cert: required(args.tls_cert.clone(), "tls-cert"),
        tls_key: required(args.tls_key.clone(), "tls-key"),
        quic_listen,
        advertise: args.advertise,
        gateway_url: args.gateway_url.clone(),
        gateway_https: args.gateway_tls.config().is_some(),
        zone: args.zone.clone(),
        seeds: args.join.clone(),
        dns_server: args.dns_server,
        voters: args.voters.clone(),
        profile: match args.profile {
            ProfileArg::Lan => Profile::Lan,
            ProfileArg::Wan => Profile::Wan,
        },
        drain_on_stop: args.drain_on_stop,
        follow_traffic: FollowTraffic {
            enabled: args.follow_traffic,
            window: Duration::from_secs(args.follow_traffic_window.max(1)),
            min_calls: args.follow_traffic_min_calls,
            dwell: Duration::from_secs(args.follow_traffic_dwell),
            ..FollowTraffic::default()
        },
        replication: ReplicationSettings {
            replicas: args.replicas,
            mode: args.replication_mode,
            ..ReplicationSettings::default()
        },
    })
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        node: NodeArgs,
    }

    const TLS: [&str; 6] = ["--tls-ca", "ca.pem", "--tls-cert", "n1.pem", "--tls-key", "n1.key"];

    fn parse(args: &[&str]) -> Result<NodeArgs, clap::Error> {
        let all = ["tern", "--region", "iad"].iter().chain(&TLS).chain(args);
        Cli::try_parse_from(all).map(|cli| cli.node)
    }

    #[test]
    fn seeds_are_host_and_port_or_dns_names() {
        let args = parse(&["--join", "10.0.0.1:7420,seed.example.com:7420", "--join", "[::1]:7420"]).unwrap();
        assert_eq!(args.join, ["10.0.0.1:7420", "seed.example.com:7420", "[::1]:7420"]);
        assert_eq!(args.dns_server, None);
        let dns = parse(&["--join", "dns:tern.internal,dns:_tern._udp.tern.internal:7500"]).unwrap();
        assert_eq!(dns.join, ["dns:tern.internal", "dns:_tern._udp.tern.internal:7500"]);
        let server =
            parse(&["--listen", "127.0.0.1:6420", "--join", "dns:tern.internal", "--dns-server", "127.0.0.1:5353"]);
        let config = cluster_config(&server.unwrap()).unwrap();
        assert_eq!(
            (config.seeds, config.dns_server),
            (vec!["dns:tern.internal".into()], Some("127.0.0.1:5353".parse().unwrap()))
        );
        for bad in ["10.0.0.1", ":7420", "dns:", "dns::7420", "dns:tern.internal:x", "dns:tern.internal:70000"] {
            assert!(parse(&["--join", bad]).is_err(), "{bad}");
        }
        assert!(parse(&["--join", "dns:tern.internal", "--dns-server", "ns.example.com:53"]).is_err());
    }

    /// `tern node --config FILE ARGS`, with `toml` in FILE, parsed as `tern` parses it.
    fn parse_with_file(toml: &str, args: &[&str]) -> Result<NodeArgs, String> {
        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(file.path(), toml).unwrap();
        let path = file.path().to_str().unwrap();
        let all = ["tern", "node", "--config", path].iter().chain(args).map(std::ffi::OsString::from).collect();
        match super::super::config_file::parse::<super::super::Cli>(all).map_err(|e| e.to_string())?.command {
            super::super::CliCommand::Node(node) => Ok(*node),
            other => panic!("not `tern node`: {other:?}"),
        }
    }

    /// A config file with every kind of key: strings, lists, a flag, a number, an enum.
    const CONFIG: &str = r#"
        region = "iad"
        zone = "a"
        listen = "127.0.0.3:6420"
        quic-listen = "127.0.0.3:7500"
        join = ["10.0.0.1:7420", "dns:tern.internal"]
        voters = ["iad-1@10.0.0.1:7420", "fra-1"]
        admin-token = "s3cret"
        data-dir = "/var/lib/tern"
        tls-ca = "ca.pem"
        tls-cert = "iad-1.pem"
        tls-key = "iad-1.key"
        profile = "lan"
        fsync = true
        max-open-databases = 100
    "#;

    #[test]
    fn a_config_file_gives_the_options_and_the_command_line_wins() {
        let args = parse_with_file(CONFIG, &[]).unwrap();
        assert_eq!((args.region.as_deref(), args.admin_token.as_deref()), (Some("iad"), Some("s3cret")));
        let cert = args.tls_cert.as_deref().and_then(|p| p.to_str());
        assert_eq!((args.listen, cert), ("127.0.0.3:6420".parse().unwrap(), Some("iad-1.pem")));
        assert_eq!((args.storage.data_dir.to_str(), args.storage.fsync), (Some("/var/lib/tern"), true));
        assert_eq!(args.storage.max_open_databases.get(), 100);
        let config = cluster_config(&args).unwrap();
        assert_eq!((config.zone.as_deref(), config.profile), (Some("a"), Profile::Lan));
        assert_eq!(config.quic_listen, "127.0.0.3:7500".parse().unwrap());
        assert_eq!(config.seeds, ["10.0.0.1:7420", "dns:tern.internal"]);
        assert_eq!(config.voters, ["iad-1@10.0.0.1:7420".parse().unwrap(), "fra-1".parse::<VoterSpec>().unwrap()]);

        let flags = ["--region", "fra", "--join", "10.0.0.9:7420", "--profile", "wan", "--tls-ca", "other.pem"];
        let args = parse_with_file(CONFIG, &flags).unwrap();
        assert_eq!(
            (
                args.region.as_deref(),
                args.tls_ca.as_deref().and_then(|p| p.to_str()),
                args.tls_key.as_deref().and_then(|p| p.to_str())
            ),
            (Some("fra"), Some("other.pem"), Some("iad-1.key"))
        );
        let config = cluster_config(&args).unwrap();
        assert_eq!(
            (config.seeds, config.profile, config.zone),
            (vec!["10.0.0.9:7420".into()], Profile::Wan, Some("a".into()))
        );
        assert_eq!(config.voters.len(), 2);
    }

    #[test]
    fn a_config_file_is_checked_like_the_command_line() {
        let unknown = parse_with_file(&format!("{CONFIG}\nregoin = \"fra\""), &[]).unwrap_err();
        assert!(
            unknown.contains("unknown key `regoin`") && unknown.contains("`tern node` has no --regoin"),
            "{unknown}"
        );
        let table = parse_with_file("region = { name = \"iad\" }", &[]).unwrap_err();
        assert!(table.contains("`region` in the config file") && table.contains("not table"), "{table}");
        let bad_seed = parse_with_file(&CONFIG.replace("dns:tern.internal", "dns:"), &[]).unwrap_err();
        assert!(bad_seed.contains("--join") && bad_seed.contains("`join` comes from the config file"), "{bad_seed}");
        let missing = parse_with_file("zone = \"a\"", &TLS).unwrap_err();
        assert!(missing.contains("--region"), "{missing}");
    }

    #[test]
    fn the_quic_address_follows_the_listen_host_and_needs_an_advertised_one_on_all_interfaces() {
        let local = cluster_config(&parse(&["--listen", "127.0.0.2:6420"]).unwrap()).unwrap();
        assert_eq!(local.quic_listen, "127.0.0.2:7420".parse().unwrap());
        assert_eq!(local.profile, Profile::Wan);
        let any = parse(&[]).unwrap();
        assert!(cluster_config(&any).unwrap_err().contains("--advertise"));
        let advertised = parse(&["--advertise", "10.0.0.5:7420", "--profile", "lan", "--zone", "a"]).unwrap();
        let config = cluster_config(&advertised).unwrap();
        assert_eq!((config.quic_listen, config.advertise), ("0.0.0.0:7420".parse().unwrap(), advertised.advertise));
        assert_eq!((config.profile, config.zone.as_deref()), (Profile::Lan, Some("a")));
    }
}
