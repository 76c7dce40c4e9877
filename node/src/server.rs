//! Composes a node: data directory, node database, host, gateway, HTTP listener, cluster membership (for
//! `tern node`), graceful stop.

use std::future::Future;
use std::net::SocketAddr;
use std::num::NonZeroUsize;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::serve::ListenerExt;

use crate::cluster::{ClusterConfig, ClusterError, ClusterNode, Roster};
use crate::gateway_tls::{GatewayTls, GatewayTlsError};
use crate::metrics::Metrics;
use crate::runtime::Registry;
use crate::runtime::alarms::{Alarms, run_timer};
use crate::runtime::host::{HostCore, Stores};
use crate::runtime::resume::{PendingWork, resume};
use crate::runtime::{Durability, Host};
use crate::storage::{ActorTemplate, DataDir, DbPool, NodeDb};
use crate::sync::lock;
use crate::trace::export::{ExportSettings, SpanExporter, TRACES_PATH};

/// How long a stopping node waits for the OTLP exporter to send the spans still queued.
const TRACE_FLUSH_GRACE: Duration = Duration::from_secs(5);

/// How to run a node.
#[derive(Debug, Clone)]
pub struct NodeConfig {
    /// Address of the client-facing HTTP/WebSocket listener.
    pub listen: SocketAddr,
    /// Where the node keeps its data.
    pub data_dir: PathBuf,
    /// The region this node serves (reported to clients as the actor's datacenter).
    pub region: String,
    pub durability: Durability,
    /// Most actor databases open at once (each costs two file descriptors: the database and its WAL).
    pub max_open_databases: NonZeroUsize,
    /// How long a graceful stop waits for actors to save and sleep.
    pub shutdown_grace: Duration,
    /// The admin token; `None` leaves the admin and inspector routes open (development).
    pub admin_token: Option<String>,
    /// The browser origins that may call the gateway (see [`tern_gateway::cors`]).
    pub cors: tern_gateway::CorsOrigins,
    /// The node's part in a cluster (transport, membership); `None` for a node on its own (`tern dev`).
    pub cluster: Option<ClusterConfig>,
    /// The gateway's TLS certificate and key: with them the listener serves HTTPS and WSS only; `None` serves
    /// plain HTTP and WS.
    pub gateway_tls: Option<GatewayTls>,
    /// The base URL of an OpenTelemetry collector (`http://collector:4318`): the spans of committed turns are
    /// also posted to `{url}/v1/traces` as OTLP/JSON (see [`crate::trace::export`]); `None` keeps them only in the
    /// actors' databases.
    pub otlp_endpoint: Option<String>,
}

impl NodeConfig {
    /// A development node on `listen` with data in `data_dir`: no admin token, and pages of any origin may call
    /// the public routes.
    pub fn dev(listen: SocketAddr, data_dir: PathBuf) -> NodeConfig {
        NodeConfig {
            listen,
            data_dir,
            region: "local".to_string(),
            durability: Durability::Normal,
            max_open_databases: NonZeroUsize::new(4096).expect("non-zero"),
            shutdown_grace: Duration::from_secs(15),
            admin_token: None,
            cors: tern_gateway::CorsOrigins::from_values(&[], true),
            cluster: None,
            gateway_tls: None,
            otlp_endpoint: None,
        }
    }
}

/// Why a node could not start or failed while running.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(transparent)]
    DataDir(#[from] crate::storage::data_dir::DataDirError),
    #[error("cannot open the node database: {0}")]
    NodeDb(#[from] libsql::Error),
    #[error("cannot listen on {addr}: {source}")]
    Listen { addr: SocketAddr, source: std::io::Error },
    #[error(transparent)]
    Cluster(#[from] ClusterError),
    #[error("{0}")]
    Voters(String),
    /// The gateway's TLS certificate or key cannot be used (nothing was started).
    #[error("cannot serve the gateway over TLS: {0}")]
    GatewayTls(#[from] GatewayTlsError),
    /// The OTLP exporter's HTTP client cannot be built.
    #[error("cannot start the OTLP trace exporter: {0}")]
    TraceExport(#[from] reqwest::Error),
    #[error("server error: {0}")]
    Serve(std::io::Error),
    /// The database new actors start from cannot be built in the data directory.
    #[error("cannot build the new actors' database template: {0}")]
    Template(#[from] crate::storage::template::TemplateError),
}

/// Opens the data directory and starts the host (no listener), which wakes the actors left with unfinished work
/// (see [`crate::runtime::resume`]) and fires due alarms. Used by [`serve`] and by in-process tests. A cluster
/// node's host does neither until [`serve`] has put replication in place, so that no turn runs before its lease
/// is checked and its database's checkpoints are taken over.
pub async fn open_host(registry: Registry, config: &NodeConfig) -> Result<Host, ServeError> {
    let data_dir = DataDir::open(&config.data_dir)?;
    let metrics = Metrics::new(&config.region);
    let node_db = NodeDb::open(&data_dir.node_db_path(), metrics.clone()).await?;
    let template = ActorTemplate::build(&data_dir.scratch_path("actor-template.db")).await?;
    let pool = DbPool::new(config.max_open_databases, template);
    let alarms = Alarms::from_records(node_db.load_alarms().await?);
    let pending_work = PendingWork::from_records(node_db.load_pending_work().await?);
    let stores = Stores { metrics, data_dir, pool, node_db, alarms, pending_work };
    let mut core = HostCore::new(registry, stores, config.region.clone(), config.durability);
    if let Some(endpoint) = &config.otlp_endpoint {
        core.span_export = Some(SpanExporter::spawn(endpoint, ExportSettings::default(), core.metrics.clone())?);
        tracing::info!(endpoint, "exporting spans to the OTLP collector at {endpoint}{TRACES_PATH}");
    }
    let core = Arc::new(core);
    // An actor a crash interrupted in the middle of a move serves nothing until the directory says where it lives.
    for handoff in core.node_db.handoffs().await? {
        if let Some(hold) = core.hold(&handoff.actor_id) {
            lock(&core.settling).insert(handoff.actor_id, hold);
        }
    }
    if config.cluster.is_none() {
        start_background_work(&core);
    }
    Ok(Host { core })
}

/// Starts firing alarms and, in the background, resumes the work a crash or a stop interrupted: the node serves
/// while those actors finish it.
fn start_background_work(core: &Arc<HostCore>) {
    tokio::spawn(run_timer(Arc::downgrade(core)));
    tokio::spawn(resume(core.clone()));
}

/// Runs a node until `shutdown` resolves, then stops gracefully: stop accepting, let in-flight requests finish,
/// put every actor to sleep (saving it), leave the cluster, and release the data directory. Calls `ready` with the
/// bound address once the gateway listens (and, for a cluster node, membership has started; joining goes on in
/// the background). With [`NodeConfig::gateway_tls`] the gateway serves HTTPS and WSS (see [`crate::gateway_tls`]).
pub async fn serve(
    registry: Registry,
    mut config: NodeConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
    ready: impl FnOnce(SocketAddr),
) -> Result<(), ServeError> {
    let tls = config.gateway_tls.as_ref().map(GatewayTls::load).transpose()?;
    let scheme = if tls.is_some() { "https" } else { "http" };
    if let Some(cluster) = config.cluster.as_mut() {
        cluster.gateway_https = tls.is_some();
    }
    let host = open_host(registry, &config).await?;
    crate::heap::keep_trimmed();
    let gateway = tern_gateway::GatewayConfig {
        region: config.region.clone(),
        admin_token: config.admin_token.clone(),
        cors: config.cors.clone(),
        build: Some(tern_gateway::NodeBuild {
            release: crate::cli::RELEASE.to_string(),
            protocols: crate::cli::protocol_versions(),
        }),
        https: tls.is_some(),
        ..Default::default()
    };
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|source| ServeError::Listen { addr: config.listen, source })?;
    let addr = listener.local_addr().map_err(ServeError::Serve)?;
    let cluster = match &config.cluster {
        Some(cluster) => {
            check_voters(&host, cluster).await?;
            let node = ClusterNode::start(cluster, &config.region, addr, host.clone()).await?;
            start_background_work(&host.core);
            Some(node)
        }
        None => None,
    };
    let app = match &cluster {
        Some(cluster) => {
            // Actor code's calls to other actors take the gateway's path: the directory, then one hop at most.
            let backend: Arc<dyn tern_gateway::backend::Backend> = Arc::new(cluster.backend());
            host.route_actor_calls_through(&backend);
            tern_gateway::router(backend, gateway)
        }
        None => tern_gateway::router(Arc::new(host.clone()), gateway),
    };
    host.set_roster(match &cluster {
        Some(cluster) => Roster::Cluster(cluster.members()),
        None => Roster::Alone { gateway_url: format!("{scheme}://{addr}"), started_ms: crate::clock::now_ms() },
    });
    ready(addr);
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let drainer = cluster.as_ref().filter(|_| config.cluster.as_ref().is_some_and(|c| c.drain_on_stop));
    let drainer = drainer.map(ClusterNode::backend);
    tokio::spawn(async move {
        shutdown.await;
        if let Some(backend) = drainer {
            // The gateway keeps serving while the actors move: calls for them follow them to their new homes.
            tracing::info!("stopping: moving every actor to other nodes first (--drain-on-stop)");
            match backend.drain_here().await {
                Ok(report) if !report.failed.is_empty() => {
                    tracing::warn!(failed = report.failed.len(), "some actors could not move; they sleep here");
                }
                Ok(_) => {}
                Err(e) => tracing::error!(error = %e, "cannot list the actors to move; they sleep here"),
            }
        }
        let _ = stop_tx.send(true);
    });
    // Open WebSockets would keep the listener draining forever, so actors start sleeping (which closes their
    // connections with a retryable reason) as soon as the stop begins; in-flight actions finish first because
    // the sleep request queues behind them.
    let sleeper = {
        let (host, mut stop) = (host.clone(), stop_rx.clone());
        let grace = config.shutdown_grace;
        tokio::spawn(async move {
            if stop.wait_for(|stopping| *stopping).await.is_ok() {
                tracing::info!("stopping: no new connections; putting actors to sleep");
                host.shutdown(grace).await;
            }
        })
    };
    let mut stop = stop_rx;
    if let Some(tls) = tls {
        crate::gateway_tls::serve(listener, tls, app, stop).await;
    } else {
        // Replies and events are small writes that must leave at once, not wait for Nagle's algorithm.
        let listener = listener.tap_io(|tcp| {
            if let Err(e) = tcp.set_nodelay(true) {
                tracing::warn!(error = %e, "cannot set TCP_NODELAY on a client connection");
            }
        });
        axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = stop.wait_for(|stopping| *stopping).await;
            })
            .await
            .map_err(ServeError::Serve)?;
    }
    let _ = sleeper.await;
    // Requests that were in flight may have woken actors again; put those to sleep too.
    host.shutdown(config.shutdown_grace).await;
    if let Some(exporter) = &host.core.span_export {
        exporter.flush(TRACE_FLUSH_GRACE).await;
    }
    if let Some(cluster) = cluster {
        cluster.stop().await;
    }
    tracing::info!("stopped");
    Ok(())
}

/// Refuses a voter set that differs from the one this data directory was first started with: the set is changed
/// only through the directory itself, never by a flag on one node (two sets could each see a majority).
async fn check_voters(host: &Host, cluster: &ClusterConfig) -> Result<(), ServeError> {
    if cluster.voters.is_empty() {
        return Ok(());
    }
    let mut ids: Vec<&str> = cluster.voters.iter().map(|v| v.id.as_str()).collect();
    ids.sort_unstable();
    let ids = ids.join(",");
    let node_db = &host.core.node_db;
    match node_db.setting("voters").await? {
        Some(stored) if stored != ids => Err(ServeError::Voters(format!(
            "this node was started with the voter set {stored}, not {ids}: the voter set cannot change by flags"
        ))),
        Some(_) => Ok(()),
        None => Ok(node_db.set_setting("voters", &ids).await?),
    }
}
