//! `db-agent run`: wires the configuration, the HTTP server, the SQL Server backend and the
//! Kubernetes side into an [`Agent`] and runs it until SIGTERM or SIGINT.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context as _;

use crate::agent::Agent;
use crate::config::Config;
use crate::http::{self, Status};
use crate::kube::{KubeCluster, Names, secret_value};
use crate::metrics::Metrics;
use crate::mssql::backend::tds::{TdsBackend, TdsTarget};
use crate::mssql::backend::{AgConfig, SetupSecrets};
use crate::mssql::tsql::{CertificateFiles, ReplicaSpec, SetupNames};

/// Port of the agent's HTTP server (the pod's `coordinatclient` port).
pub const HTTP_PORT: u16 = 2379;
/// The endpoint certificate as a PKCS #12 file in the mounted `<db>-endpoint-cert` secret
/// (cert-manager's `keystores.pkcs12`, `keystore.p12`), readable by SQL Server at this path.
pub const ENDPOINT_PFX: &str = "/var/opt/mssql/endpoint-cert/keystore.p12";
/// How long to wait between attempts to read the secrets at start-up.
const SECRET_RETRY: Duration = Duration::from_secs(5);

/// `db-agent arbiter`: holds KubeDB's arbiter slot without a job in this design (elections go
/// through the Lease, whose quorum is the API server's), so that the arbiter pod the provisioner
/// renders for an even replica count runs and keeps the PodDisruptionBudget's arithmetic as it
/// is. Serves `/healthz` (and an empty `/metrics`; `/ready` answers 503) until SIGTERM.
pub async fn arbiter(args: &crate::config::ArbiterArgs) -> anyhow::Result<()> {
    let metrics = Metrics::new().context("cannot register metrics")?;
    let ip = std::env::var("POD_IP")
        .ok()
        .and_then(|ip| ip.parse().ok())
        .unwrap_or(std::net::IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED));
    let (addr, server) = http::serve(
        SocketAddr::new(ip, HTTP_PORT),
        Status::<crate::mssql::decide::Local>::default(),
        metrics,
        operator_common::shutdown_signal(),
    )
    .await?;
    tracing::info!(%addr, ag = %args.ag_name, "arbiter: no vote to cast (the Lease decides); serving /healthz");
    server.await.context("the HTTP server failed")??;
    Ok(())
}

/// The HTTP server on `<ip>:2379`, until `true` is sent on the returned channel.
async fn serve_until_stopped<L>(
    ip: std::net::IpAddr,
    status: Status<L>,
    metrics: Metrics,
) -> anyhow::Result<(
    tokio::sync::watch::Sender<bool>,
    tokio::task::JoinHandle<std::io::Result<()>>,
)>
where
    L: serde::Serialize + Clone + Send + Sync + 'static,
{
    let (shutdown_tx, mut shutdown_rx) = tokio::sync::watch::channel(false);
    let (addr, server) = http::serve(
        SocketAddr::new(ip, HTTP_PORT),
        status,
        metrics,
        async move {
            let _ = shutdown_rx.wait_for(|stop| *stop).await;
        },
    )
    .await?;
    tracing::info!(%addr, "serving /healthz, /ready, /metrics and /state");
    Ok((shutdown_tx, server))
}

/// Runs the agent.
pub async fn run(config: Config) -> anyhow::Result<()> {
    tracing::info!(?config, "starting");
    let metrics = Metrics::new().context("cannot register metrics")?;
    let status = Status::default();
    let (shutdown_tx, server) =
        serve_until_stopped(config.local_address(), status.clone(), metrics.clone()).await?;

    let client = operator_common::connect(None, &operator_common::user_agent("db-agent")).await?;
    let secrets = tokio::select! {
        secrets = read_secrets(&client, &config) => secrets,
        () = operator_common::shutdown_signal() => return Ok(()),
    };

    let replica = {
        let config = config.clone();
        move |pod: &str| ReplicaSpec {
            name: pod.to_owned(),
            endpoint_url: config.endpoint_url(pod),
            secondary_access: config.secondary_access,
        }
    };
    let backend = TdsBackend::new(
        TdsTarget {
            host: config.local_address().to_string(),
            port: u16::try_from(api::names::mssql::DB_PORT).unwrap_or(1433),
            username: config.sa_username.clone(),
            password: config.sa_password.clone(),
            timeout: config.timing.renew_interval,
            // Statements must finish with time left to renew before the deadline.
            statement_timeout: config
                .timing
                .renew_deadline
                .saturating_sub(config.timing.renew_interval * 2)
                .max(config.timing.renew_interval),
        },
        AgConfig {
            ag: config.ag_name.clone(),
            replica: replica(&config.pod_name),
            names: SetupNames::default(),
            endpoint_port: u16::try_from(api::names::mssql::MIRRORING_PORT).unwrap_or(5022),
            secrets,
        },
    );
    let cluster = KubeCluster::new(
        client,
        Names::mssql(
            &config.pod_name,
            &config.namespace,
            &config.db_name,
            &config.ag_name,
            HTTP_PORT,
        ),
        config.timing.lease_duration,
        config.timing.tick,
    );
    let agent = Agent::new(
        config.pod_name.clone(),
        config.timing,
        backend,
        cluster,
        metrics,
        status,
        Box::new(replica),
    )
    .with_databases(config.databases.clone());
    agent.run(operator_common::shutdown_signal()).await;
    let _ = shutdown_tx.send(true);
    server.await??;
    Ok(())
}

/// Reads the master-key and endpoint-login passwords, retrying until they exist.
async fn read_secrets(client: &::kube::Client, config: &Config) -> SetupSecrets {
    let master_key = &config.master_key_secret;
    let login = &config.login_secret;
    loop {
        let result = async {
            let master_key_password =
                secret_value(client, &config.namespace, master_key, "password").await?;
            let login_password = secret_value(client, &config.namespace, login, "password").await?;
            anyhow::Ok(SetupSecrets {
                certificate: CertificateFiles::Pfx {
                    path: ENDPOINT_PFX.into(),
                    // The provisioner asks cert-manager to encrypt the keystore with this password.
                    password: master_key_password.clone(),
                },
                master_key_password,
                login_password,
            })
        }
        .await;
        match result {
            Ok(secrets) => return secrets,
            Err(err) => {
                tracing::warn!(error = %err, "cannot read the AG secrets yet; retrying");
                tokio::time::sleep(SECRET_RETRY).await;
            }
        }
    }
}

/// Runs the SingleStore agent.
pub async fn run_sdb(config: crate::config::SdbConfig) -> anyhow::Result<()> {
    use crate::sdb::agent::{Identity, SdbAgent};
    use crate::sdb::backend::{MysqlBackend, Target};

    tracing::info!(?config, "starting");
    let metrics = Metrics::with_kinds(&crate::sdb::decide::Action::KINDS)
        .context("cannot register metrics")?;
    let status: Status<crate::sdb::decide::Local> = Status::default();
    let (shutdown_tx, server) =
        serve_until_stopped(config.local_address(), status.clone(), metrics.clone()).await?;
    let client = operator_common::connect(None, &operator_common::user_agent("db-agent")).await?;
    let timing = config.timing;
    let backend = MysqlBackend::new(Target {
        host: config.local_address().to_string(),
        port: crate::sdb::sql::PORT,
        username: config.root_username.clone(),
        password: config.root_password.clone(),
        timeout: timing
            .renew_deadline
            .saturating_sub(timing.renew_interval * 2)
            .max(timing.renew_interval),
    });
    let cluster = KubeCluster::<crate::sdb::decide::Local>::new(
        client,
        Names {
            pod: config.pod_name.clone(),
            namespace: config.namespace.clone(),
            db: config.db_name.clone(),
            db_kind: "Singlestore",
            ag: config.host(&config.pod_name),
            marker: api::names::singlestore::CLUSTER_BOOTSTRAPPED_ANNOTATION,
            lease: api::names::singlestore::master_lease(&config.db_name),
            sets: vec![config.aggregator_set.clone(), config.leaf_set.clone()],
            peer_port: HTTP_PORT,
        },
        timing.lease_duration,
        timing.tick,
    );
    let host_config = config.clone();
    let kind_config = config.clone();
    let identity = Identity {
        me: config.pod_name.clone(),
        kind: config.kind,
        host: Box::new(move |pod| host_config.host(pod)),
        kind_of: Box::new(move |pod| kind_config.kind_of(pod)),
        root: (config.root_username.clone(), config.root_password.clone()),
        license: config.license.clone(),
    };
    let agent = SdbAgent::new(
        identity,
        crate::sdb::decide::Timing {
            renew_interval: timing.renew_interval,
            renew_deadline: timing.renew_deadline,
            peer_stale_after: timing.peer_stale_after,
            master_lost_after: config.master_lost_after,
        },
        backend,
        cluster,
        metrics,
        status,
    );
    agent
        .run(timing.tick, operator_common::shutdown_signal())
        .await;
    let _ = shutdown_tx.send(true);
    server.await??;
    Ok(())
}
