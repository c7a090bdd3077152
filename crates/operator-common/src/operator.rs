//! The life of an operator process: connect, serve metrics and health, elect a leader, run the
//! controllers while leading, and stop cleanly on SIGTERM.

use std::future::Future;

use anyhow::Context as _;
use prometheus::{IntGauge, Registry};

use crate::{Health, LeaderElection, RunArgs, connect, init_tracing, run_controllers, serve_http};

/// Static facts about one operator binary.
#[derive(Debug, Clone, Copy)]
pub struct OperatorInfo {
    /// Binary name; also the user-agent prefix (`<name>/<version>`).
    pub name: &'static str,
    /// Name of the leader-election Lease.
    pub lease_name: &'static str,
    /// Prefix of every metric name (`<prefix>_...`).
    pub metrics_prefix: &'static str,
}

/// What the controllers get to work with.
pub struct OperatorContext {
    /// Client with the operator's user agent.
    pub client: kube::Client,
    /// The operator's own metrics registry (names are prefixed with `metrics_prefix`).
    pub registry: Registry,
    /// Namespaces to watch (empty means all).
    pub namespaces: Vec<String>,
}

/// Runs the operator until SIGTERM/SIGINT. `setup` registers metrics and returns the controllers'
/// future, which runs only while this process holds the Lease.
pub async fn run_operator<F, Fut>(
    info: OperatorInfo,
    args: &RunArgs,
    setup: F,
) -> anyhow::Result<()>
where
    F: FnOnce(OperatorContext) -> anyhow::Result<Fut>,
    Fut: Future<Output = anyhow::Result<()>> + Send + 'static,
{
    init_tracing(args.log_format);
    let client = connect(args.kubeconfig.as_deref(), &crate::user_agent(info.name)).await?;
    let server = client
        .apiserver_version()
        .await
        .context("cannot reach the Kubernetes API server")?;
    tracing::info!(operator = info.name, version = env!("CARGO_PKG_VERSION"),
        server = %server.git_version, "connected to the Kubernetes API server");

    let registry = Registry::new_custom(Some(info.metrics_prefix.to_owned()), None)
        .context("invalid metrics prefix")?;
    let leader = IntGauge::new(
        "leader",
        "1 while this process holds the leader-election Lease and runs controllers, else 0",
    )?;
    registry.register(Box::new(leader.clone()))?;

    let controllers = setup(OperatorContext {
        client: client.clone(),
        registry: registry.clone(),
        namespaces: args.watch_namespaces(),
    })?;

    let health = Health::default();
    let (stop_http, http_stopped) = tokio::sync::oneshot::channel::<()>();
    let (addr, http) = serve_http(args.metrics_addr, registry, health.clone(), async {
        let _ = http_stopped.await;
    })
    .await?;
    tracing::info!(%addr, "serving /metrics, /healthz and /readyz");
    // Connected and serving: ready, whether leading or standing by (a standby replica must count
    // as ready so rolling updates of the Deployment can proceed).
    health.set_ready(true);

    let election = LeaderElection::new(
        args.leader_election,
        info.lease_name,
        args.lease_namespace(),
        args.lease_identity(),
    );
    let result = run_controllers(client, election, leader, crate::shutdown_signal(), || {
        controllers
    })
    .await;
    health.set_ready(false);
    let _ = stop_http.send(());
    let _ = http.await;
    result
}
