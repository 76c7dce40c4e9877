//! The `tern` command line. Applications built on the SDK reuse it: `tern_node::cli::main(registry)`.
//!
//! `tern dev` runs a development node, or with `--nodes N` a local cluster of `tern node` processes
//! (`dev_cluster.rs`), and `tern node` a cluster node (`node.rs`); `tern ca` makes certificates (`ca.rs`). Every
//! other command is a client of a running node, built on `tern-client`: it talks
//! to `--endpoint` (env `TERN_ENDPOINT`, default `http://127.0.0.1:6420`) with the admin token `--admin-token`
//! (env `TERN_ADMIN_TOKEN`), and prints tables, or JSON with `--json`. An ACTOR argument is an actor id or
//! `NAME/KEY` (see [`target::ActorRef`]). Errors print `error: group.code: message` and exit with 1; usage
//! errors exit with 2.
//!
//! | file | commands |
//! |---|---|
//! | `actors.rs` | `tern actors ls / get / create / destroy / sleep` |
//! | `call.rs` | `tern call ACTOR ACTION [ARGS...]` |
//! | `sql.rs` | `tern sql ACTOR SQL [--param JSON]...` |
//! | `inspect.rs` | `tern state`, `tern inspect`, `tern traces` |
//! | `export.rs` | `tern export ACTOR > actor.db` |
//! | `members.rs` | `tern members` |
//! | `config_file.rs` | `tern node --config FILE`: options from a TOML file |
//! | `context.rs`, `target.rs`, `output.rs` | client options, ACTOR parsing, tables and formatting |

mod actors;
mod ca;
mod call;
mod config_file;
mod context;
mod dev_cluster;
mod export;
mod inspect;
mod members;
mod node;
mod output;
mod sql;
mod target;

use std::net::SocketAddr;
use std::num::NonZeroUsize;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, CommandFactory, Parser, Subcommand};

use crate::gateway_tls::GatewayTls;
use crate::runtime::Durability;
use crate::runtime::Registry;
use crate::server::{self, NodeConfig};

use context::{ClientArgs, TopClientArgs};

/// Tern: stateful actors at the edge.
#[derive(Debug, Parser)]
#[command(name = "tern", version = version_text(), about, long_about = None)]
struct Cli {
    #[command(flatten)]
    client: TopClientArgs,
    #[command(subcommand)]
    command: CliCommand,
}

/// This build's release (`0.1.0`) and git commit (`git rev-parse --short HEAD` when it was built, `unknown`
/// outside a checkout; see `node/build.rs`).
pub const RELEASE: &str = concat!(env!("CARGO_PKG_VERSION"), " (commit ", env!("TERN_GIT_COMMIT"), ")");

/// The inter-node protocol versions this build speaks, highest first (`tern/2`), as `tern --version` and
/// `tern members` print them.
pub fn protocol_versions() -> Vec<String> {
    tern_replication::ProtocolVersion::SUPPORTED.iter().map(ToString::to_string).collect()
}

/// `tern --version`: `tern 0.1.0 (commit 1a2b3c4), inter-node protocol tern/2`.
fn version_text() -> &'static str {
    static TEXT: std::sync::LazyLock<String> =
        std::sync::LazyLock::new(|| format!("{RELEASE}, inter-node protocol {}", protocol_versions().join(", ")));
    &TEXT
}

#[derive(Debug, Subcommand)]
enum CliCommand {
    /// Run a single development node: actors, gateway and storage in one process (with --nodes N: a local
    /// cluster of N node processes).
    Dev(DevArgs),
    /// Run a cluster node: a node as `dev` runs it, plus membership with other nodes over mutual-TLS QUIC (`tern
    /// node drain NODE` moves every actor off a running node instead).
    #[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
    Node(Box<node::NodeArgs>),
    /// List, show, create, destroy and put to sleep actors (admin API).
    Actors(actors::ActorsArgs),
    /// Call an action of an actor; each argument is one JSON value; prints the output as JSON.
    #[command(allow_negative_numbers = true)]
    Call(call::CallArgs),
    /// Run one SQL statement in an actor's database; prints the rows as a table.
    Sql(sql::SqlArgs),
    /// Print an actor's state, or replace it with --set.
    State(inspect::StateArgs),
    /// Summarize an actor: id, name, key, state, connections, actions.
    Inspect(inspect::InspectArgs),
    /// List an actor's recent trace spans: time, duration, name, status.
    Traces(inspect::TracesArgs),
    /// Write a consistent copy of an actor's SQLite database to stdout (or --output FILE).
    Export(export::ExportArgs),
    /// Create the cluster's certificate authority and issue node certificates.
    Ca(ca::CaArgs),
    /// List the nodes of the cluster as the node sees them: state, region, zone, load (admin API).
    Members(members::MembersArgs),
}

impl CliCommand {
    /// The client options given after the command, for client commands.
    fn client_args(&self) -> Option<&ClientArgs> {
        match self {
            CliCommand::Node(a) => match &a.action {
                Some(node::NodeAction::Drain(drain)) => Some(&drain.client),
                None => None,
            },
            CliCommand::Dev(_) | CliCommand::Ca(_) => None,
            CliCommand::Actors(a) => Some(&a.client),
            CliCommand::Call(a) => Some(&a.client),
            CliCommand::Sql(a) => Some(&a.client),
            CliCommand::State(a) => Some(&a.client),
            CliCommand::Inspect(a) => Some(&a.client),
            CliCommand::Traces(a) => Some(&a.client),
            CliCommand::Export(a) => Some(&a.client),
            CliCommand::Members(a) => Some(&a.client),
        }
    }
}

#[derive(Debug, Args)]
struct DevArgs {
    /// Address of the HTTP/WebSocket listener (RivetKit clients connect here).
    #[arg(long, default_value = "127.0.0.1:6420", env = "TERN_LISTEN")]
    listen: SocketAddr,
    #[command(flatten)]
    storage: StorageArgs,
    #[command(flatten)]
    gateway_tls: GatewayTlsArgs,
    #[command(flatten)]
    otlp: OtlpArgs,
    #[command(flatten)]
    cors: CorsArgs,
    /// Require this admin token (`Authorization: Bearer`) on admin routes, and it or the actor's own token on
    /// inspector routes. Without it the node leaves them open, as a development node on loopback should (with
    /// --nodes, one is generated and printed: cluster nodes need one). An empty token is refused.
    #[arg(long, env = "TERN_ADMIN_TOKEN", value_parser = parse_admin_token)]
    admin_token: Option<String>,
    #[command(flatten)]
    cluster: dev_cluster::DevClusterArgs,
}

/// Where and how a node (`dev` or `node`) stores its data.
#[derive(Debug, Args)]
struct StorageArgs {
    /// Directory for the node's data (created if missing; one process at a time).
    #[arg(long, default_value = "./.tern", env = "TERN_DATA_DIR")]
    data_dir: PathBuf,
    /// Fsync every commit (`synchronous=FULL`): survive power loss, at a cost in latency.
    #[arg(long)]
    fsync: bool,
    /// Most actor databases kept open at once (each uses two file descriptors: the database and its WAL).
    #[arg(long, default_value_t = NonZeroUsize::new(4096).expect("non-zero"), env = "TERN_MAX_OPEN_DATABASES")]
    max_open_databases: NonZeroUsize,
}

/// TLS on the gateway listener, for `dev` and `node`: both flags or neither.
#[derive(Debug, Args)]
struct GatewayTlsArgs {
    /// Serve the gateway over HTTPS and WSS with this certificate chain (PEM, leaf first); needs
    /// --gateway-tls-key.
    #[arg(long, value_name = "PATH", requires = "gateway_tls_key")]
    gateway_tls_cert: Option<PathBuf>,
    /// The private key of --gateway-tls-cert (PEM: PKCS#8, PKCS#1 or SEC1).
    #[arg(long, value_name = "PATH", requires = "gateway_tls_cert")]
    gateway_tls_key: Option<PathBuf>,
}

impl GatewayTlsArgs {
    /// The gateway's TLS files, when given (clap makes sure both or neither are).
    fn config(&self) -> Option<GatewayTls> {
        match (&self.gateway_tls_cert, &self.gateway_tls_key) {
            (Some(cert), Some(key)) => Some(GatewayTls::new(cert, key)),
            _ => None,
        }
    }
}

/// Which browser origins may call the gateway, for `dev` and `node` (see [`tern_gateway::cors`]).
#[derive(Debug, Args)]
struct CorsArgs {
    /// A web origin (`https://app.example.com`) whose pages may call the gateway from a browser, admin and
    /// inspector routes included (those still need the admin token); repeatable or comma-separated. `*` lets pages
    /// of any origin call the public routes (RivetKit's), never the admin ones. Pages of other origins get no CORS
    /// headers and are refused on admin routes. [default: `*` for `tern dev`, none for `tern node`]
    #[arg(long = "cors-origin", value_name = "ORIGIN", env = "TERN_CORS_ORIGINS", value_delimiter = ',')]
    #[arg(value_parser = tern_gateway::cors::parse_origin)]
    cors_origins: Vec<String>,
}

impl CorsArgs {
    /// The origins given, or with none given any origin on the public routes if `any_by_default`.
    fn config(&self, any_by_default: bool) -> tern_gateway::CorsOrigins {
        tern_gateway::CorsOrigins::from_values(&self.cors_origins, any_by_default)
    }
}

/// An `--admin-token` for `dev` or `node`: not empty, and without surrounding whitespace, which requests could
/// never present (the bearer token is trimmed). Leaving the flag out is how `tern dev` runs without one.
fn parse_admin_token(token: &str) -> Result<String, String> {
    if token.trim().is_empty() {
        return Err("the admin token is empty: give a real token, or leave --admin-token (and TERN_ADMIN_TOKEN) out \
                    to run `tern dev` with open admin and inspector routes on loopback"
            .to_string());
    }
    if token.trim() != token {
        return Err("the admin token starts or ends with whitespace, which no request can present".to_string());
    }
    Ok(token.to_string())
}

/// Export of spans to an OpenTelemetry collector, for `dev` and `node`.
#[derive(Debug, Args)]
struct OtlpArgs {
    /// Also send the spans of committed turns to this OpenTelemetry collector (e.g. http://collector:4318) as
    /// OTLP/JSON over plain HTTP: `POST URL/v1/traces`, in batches, dropping (and counting) what it cannot take.
    #[arg(long, value_name = "URL", env = "TERN_OTLP_ENDPOINT", value_parser = parse_otlp_endpoint)]
    otlp_endpoint: Option<String>,
}

/// An `--otlp-endpoint`: an `http://` URL with a host (the exporter speaks no TLS), without a trailing `/`.
fn parse_otlp_endpoint(url: &str) -> Result<String, String> {
    let parsed = reqwest::Url::parse(url).map_err(|e| format!("not a URL: {e}"))?;
    if parsed.scheme() != "http" {
        return Err(format!("the exporter speaks plain http:// only, not {}://", parsed.scheme()));
    }
    if parsed.host().is_none() || parsed.query().is_some() || parsed.fragment().is_some() {
        return Err("expected http://HOST[:PORT][/PATH]".to_string());
    }
    Ok(url.trim_end_matches('/').to_string())
}

/// The scheme of the gateway's URLs: `https` when it serves TLS, else `http`.
fn gateway_scheme(config: &NodeConfig) -> &'static str {
    if config.gateway_tls.is_some() { "https" } else { "http" }
}

impl StorageArgs {
    /// A node configuration listening on `listen` with these storage settings and the rest from
    /// [`NodeConfig::dev`].
    fn config(self, listen: SocketAddr) -> NodeConfig {
        let mut config = NodeConfig::dev(listen, self.data_dir);
        config.max_open_databases = self.max_open_databases;
        if self.fsync {
            config.durability = Durability::Fsync;
        }
        config
    }
}

/// Installs the log subscriber: `RUST_LOG` if set, otherwise `info`.
pub fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // Colours only on a terminal: `tern dev --nodes` pipes its nodes' logs through its own output.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stdout());
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_target(false).with_ansi(ansi).try_init();
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn stop_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
}

/// Parses the command line (with `tern node`'s config file: see `config_file.rs`) and runs it with `registry`'s
/// actors. Returns the process exit code.
pub fn main(registry: Registry) -> ExitCode {
    let cli: Cli = config_file::parse(std::env::args_os().collect()).unwrap_or_else(|e| e.exit());
    let Some(client_args) = cli.command.client_args() else {
        if cli.client.is_set() {
            Cli::command()
                .error(
                    clap::error::ErrorKind::ArgumentConflict,
                    "--endpoint, --admin-token and --json belong to client commands, not to `tern dev`, `tern node` \
                     or `tern ca`",
                )
                .exit();
        }
        return match cli.command {
            CliCommand::Ca(args) => ca::run(args),
            CliCommand::Dev(args) => dev(registry, args),
            CliCommand::Node(args) => node::run(registry, *args),
            _ => unreachable!("only `dev`, `node` and `ca` have no client options"),
        };
    };
    let settings = context::Settings::resolve(&cli.client, client_args, |name| std::env::var(name).ok());
    context::run(settings, cli.command)
}

/// `tern dev`: runs a node until Ctrl-C or SIGTERM (with `--nodes`, a local cluster: see `dev_cluster.rs`).
fn dev(registry: Registry, args: DevArgs) -> ExitCode {
    if args.cluster.is_cluster() {
        return dev_cluster::run(args);
    }
    let mut config = args.storage.config(args.listen);
    config.admin_token = args.admin_token;
    config.gateway_tls = args.gateway_tls.config();
    config.otlp_endpoint = args.otlp.otlp_endpoint;
    config.cors = args.cors.config(true);
    let data_dir = config.data_dir.display().to_string();
    let scheme = gateway_scheme(&config);
    let open = config.admin_token.is_none();
    run_server(registry, config, move |addr| {
        tracing::info!(%addr, data_dir, "tern dev listening on {scheme}://{addr}");
        tracing::info!("inspector page on {scheme}://{addr}{}", tern_gateway::ui::UI_PATH);
        if open && !addr.ip().is_loopback() {
            tracing::warn!(
                %addr,
                "tern dev runs without an admin token on {addr}, which is not loopback: anyone who reaches it can list, \
                 destroy and inspect every actor; pass --admin-token"
            );
        }
    })
}

/// Runs a node with `config` until Ctrl-C or SIGTERM; `ready` logs that it serves.
fn run_server(registry: Registry, config: NodeConfig, ready: impl FnOnce(SocketAddr)) -> ExitCode {
    init_logging();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(server::serve(registry, config, stop_signal(), ready)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e}");
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_line_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn the_version_names_the_release_the_commit_and_the_protocol() {
        let error = Cli::try_parse_from(["tern", "--version"]).unwrap_err();
        assert_eq!(error.kind(), clap::error::ErrorKind::DisplayVersion);
        let text = error.to_string();
        let release = concat!("tern ", env!("CARGO_PKG_VERSION"), " (commit ");
        assert!(text.starts_with(release) && text.trim_end().ends_with("), inter-node protocol tern/2"), "{text}");
        assert!(!env!("TERN_GIT_COMMIT").is_empty());
    }

    #[test]
    fn client_options_go_before_or_after_the_command() {
        let cli = Cli::try_parse_from(["tern", "--json", "actors", "ls", "--endpoint", "http://h:1"]).unwrap();
        assert!(cli.client.json);
        let sub = cli.command.client_args().unwrap();
        assert_eq!(sub.endpoint.as_deref(), Some("http://h:1"));
        let cli = Cli::try_parse_from(["tern", "actors", "--admin-token", "t", "get", "counter/k1"]).unwrap();
        assert_eq!(cli.command.client_args().unwrap().admin_token.as_deref(), Some("t"));
        let cli = Cli::try_parse_from(["tern", "dev", "--listen", "127.0.0.1:1"]).unwrap();
        assert!(cli.command.client_args().is_none() && !cli.client.is_set());
        assert!(Cli::try_parse_from(["tern", "dev", "--json"]).is_err());
    }

    #[test]
    fn gateway_tls_needs_both_the_certificate_and_the_key() {
        let dev = |args: &[&str]| Cli::try_parse_from(["tern", "dev"].iter().chain(args));
        let CliCommand::Dev(plain) = dev(&[]).unwrap().command else { panic!("not dev") };
        assert_eq!(plain.gateway_tls.config(), None);
        let both = dev(&["--gateway-tls-cert", "c.pem", "--gateway-tls-key", "k.pem"]).unwrap();
        let CliCommand::Dev(both) = both.command else { panic!("not dev") };
        assert_eq!(both.gateway_tls.config(), Some(GatewayTls::new("c.pem", "k.pem")));
        let no_key = dev(&["--gateway-tls-cert", "c.pem"]).unwrap_err();
        assert_eq!(no_key.kind(), clap::error::ErrorKind::MissingRequiredArgument);
        assert!(no_key.to_string().contains("--gateway-tls-key"), "{no_key}");
        let no_cert = dev(&["--gateway-tls-key", "k.pem"]).unwrap_err().to_string();
        assert!(no_cert.contains("--gateway-tls-cert"), "{no_cert}");
    }

    #[test]
    fn an_empty_admin_token_is_a_usage_error() {
        let dev = |args: &[&str]| Cli::try_parse_from(["tern", "dev"].iter().chain(args)).map(|c| c.command);
        for empty in ["", " ", "\t"] {
            let error = dev(&["--admin-token", empty]).unwrap_err();
            assert_eq!((error.kind(), error.exit_code()), (clap::error::ErrorKind::ValueValidation, 2), "{empty:?}");
            assert!(error.to_string().contains("the admin token is empty"), "{error}");
        }
        assert!(dev(&["--admin-token", " s3cret"]).unwrap_err().to_string().contains("whitespace"));
        let CliCommand::Dev(given) = dev(&["--admin-token", "s3cret"]).unwrap() else { panic!("not dev") };
        assert_eq!(given.admin_token.as_deref(), Some("s3cret"));
        let CliCommand::Dev(none) = dev(&[]).unwrap() else { panic!("not dev") };
        assert_eq!(none.admin_token, None, "no token is still the development default");
    }

    #[test]
    fn cors_origins_are_listed_or_any_and_default_to_any_for_dev() {
        let dev = |args: &[&str]| match Cli::try_parse_from(["tern", "dev"].iter().chain(args)).map(|c| c.command) {
            Ok(CliCommand::Dev(dev)) => Ok(dev.cors.config(true)),
            Ok(_) => panic!("not dev"),
            Err(e) => Err(e.to_string()),
        };
        assert_eq!(dev(&[]), Ok(tern_gateway::CorsOrigins { any_on_public_routes: true, listed: vec![] }));
        let listed = dev(&["--cors-origin", "https://App.example.com", "--cors-origin", "http://localhost:5173"]);
        let expected = vec!["https://app.example.com".to_string(), "http://localhost:5173".to_string()];
        assert_eq!(listed, Ok(tern_gateway::CorsOrigins { any_on_public_routes: false, listed: expected }));
        let both = dev(&["--cors-origin", "*,https://app.example.com"]).unwrap();
        assert!(both.any_on_public_routes && both.listed == ["https://app.example.com"]);
        assert!(dev(&["--cors-origin", "app.example.com"]).unwrap_err().contains("is not an origin"));
    }

    #[test]
    fn the_otlp_endpoint_is_a_plain_http_url() {
        let otlp = |args: &[&str]| match Cli::try_parse_from(["tern", "dev"].iter().chain(args)).map(|c| c.command) {
            Ok(CliCommand::Dev(dev)) => Ok(dev.otlp.otlp_endpoint),
            Ok(_) => panic!("not dev"),
            Err(e) => Err(e.to_string()),
        };
        assert_eq!(otlp(&[]), Ok(None));
        assert_eq!(otlp(&["--otlp-endpoint", "http://collector:4318/"]), Ok(Some("http://collector:4318".into())));
        assert!(otlp(&["--otlp-endpoint", "https://collector:4318"]).unwrap_err().contains("plain http://"));
        assert!(otlp(&["--otlp-endpoint", "collector:4318"]).is_err());
        assert!(otlp(&["--otlp-endpoint", "http://collector:4318/?a=1"]).is_err());
    }

    #[test]
    fn call_arguments_are_json_and_may_be_negative() {
        let cli = Cli::try_parse_from(["tern", "call", "counter/k1", "increment", "-5", "{\"a\":[1]}"]).unwrap();
        let CliCommand::Call(call) = cli.command else { panic!("not a call") };
        assert_eq!(call.args, [serde_json::json!(-5), serde_json::json!({"a": [1]})]);
        assert!(Cli::try_parse_from(["tern", "call", "counter/k1", "increment", "not json"]).is_err());
        assert!(Cli::try_parse_from(["tern", "call", "nope", "increment"]).is_ok());
        assert!(Cli::try_parse_from(["tern", "call", "/k1", "increment"]).is_err());
    }
}
