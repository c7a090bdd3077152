//! Simulated cluster: controllers, kubelet, cert-manager stand-in, and the start of the databases'
//! side (`crate::db`), which runs next to them.
//!
//! Every simulated component is an ordinary kube-rs client of the API server, with the user agent
//! `kube-sim/<component>`, so its requests show up in request accounting and can be targeted by
//! fault rules like any other client's.

pub mod certs;
pub mod deployment;
pub mod endpoints;
pub mod informers;
pub mod kubelet;
mod logs;
mod options;
pub mod pdb;
pub mod pods;
pub mod process;
pub mod statefulset;
pub mod util;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod, Secret, Service};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use tokio::task::JoinSet;

use informers::{Kind, Wakers, run_controller};

pub use logs::PodLogs;
pub use options::{RunImage, SimOptions, parse_duration};

/// What the simulated cluster needs from the API server it runs against.
#[derive(Clone)]
pub struct SimContext {
    /// A client of the API server. The simulation makes its own clients per component (each with
    /// its `kube-sim/<component>` user agent) from `api_url`; this one is not used by it.
    pub client: kube::Client,
    /// Base URL of the API server, e.g. `http://127.0.0.1:40123`.
    pub api_url: String,
    /// The kubeconfig the server wrote; processes started by `--run-image` get it as `KUBECONFIG`.
    pub kubeconfig_path: PathBuf,
    /// Container logs that the API server serves as `pods/log`.
    pub pod_logs: PodLogs,
    /// The simulated SQL Server instances (the databases' side, [`crate::db::mssql`]).
    pub sql_servers: crate::db::mssql::server::Instances,
    /// The simulated SingleStore nodes (the databases' side, [`crate::db::singlestore`]).
    pub singlestore: crate::db::singlestore::server::Nodes,
}

/// Running simulated cluster; stop it with [`SimHandle::shutdown`].
pub struct SimHandle {
    tasks: JoinSet<()>,
    processes: Arc<process::ProcessRuntime>,
}

impl SimHandle {
    /// Stops every simulated component and kills every process started by the process runtime.
    pub async fn shutdown(mut self) {
        self.tasks.shutdown().await;
        self.processes.shutdown().await;
    }
}

/// Builds a client of the API server that identifies itself as `kube-sim/<component>`.
pub fn component_client(api_url: &str, component: &str) -> anyhow::Result<kube::Client> {
    let url = api_url
        .parse()
        .with_context(|| format!("invalid API server URL {api_url:?}"))?;
    let mut config = kube::Config::new(url);
    let agent = format!("kube-sim/{component}");
    config.headers.push((
        axum::http::header::USER_AGENT,
        axum::http::HeaderValue::from_str(&agent).context("invalid user agent")?,
    ));
    kube::Client::try_from(config).context("building a kube client")
}

/// Starts the simulated cluster against a listening API server.
pub async fn start(opts: SimOptions, ctx: SimContext) -> anyhow::Result<SimHandle> {
    let port = url_port(&ctx.api_url)?;
    if !opts.no_cert_manager {
        certs::install_crds(&component_client(&ctx.api_url, "cert-manager")?).await?;
    }

    let mut wakers = Wakers::default();
    let wake_sts = wakers.subscribe(&[Kind::StatefulSet, Kind::Pod, Kind::PersistentVolumeClaim]);
    let wake_deploy = wakers.subscribe(&[Kind::Deployment, Kind::Pod]);
    let wake_kubelet = wakers.subscribe(&[Kind::Pod]);
    let wake_pdb = wakers.subscribe(&[
        Kind::PodDisruptionBudget,
        Kind::Pod,
        Kind::StatefulSet,
        Kind::Deployment,
    ]);
    let wake_sql_server = wakers.subscribe(&[Kind::Pod, Kind::PersistentVolumeClaim]);
    let wake_singlestore = wakers.subscribe(&[Kind::Pod, Kind::PersistentVolumeClaim]);
    let wake_endpoints = wakers.subscribe(&[Kind::Service, Kind::Pod]);
    let wake_certs = wakers.subscribe(&[
        Kind::Certificate,
        Kind::Issuer,
        Kind::ClusterIssuer,
        Kind::Secret,
    ]);
    let wakers = Arc::new(wakers);

    let mut tasks = JoinSet::new();
    let watch_client = component_client(&ctx.api_url, "informer")?;
    let pods = informers::typed::<Pod>(&mut tasks, &watch_client, Kind::Pod, wakers.clone());
    let sets = informers::typed::<StatefulSet>(
        &mut tasks,
        &watch_client,
        Kind::StatefulSet,
        wakers.clone(),
    );
    let deployments =
        informers::typed::<Deployment>(&mut tasks, &watch_client, Kind::Deployment, wakers.clone());
    let claims = informers::typed::<PersistentVolumeClaim>(
        &mut tasks,
        &watch_client,
        Kind::PersistentVolumeClaim,
        wakers.clone(),
    );
    let pdbs = informers::typed::<PodDisruptionBudget>(
        &mut tasks,
        &watch_client,
        Kind::PodDisruptionBudget,
        wakers.clone(),
    );
    let services =
        informers::typed::<Service>(&mut tasks, &watch_client, Kind::Service, wakers.clone());
    let ready = async {
        informers::wait_ready(&services).await?;
        informers::wait_ready(&pods).await?;
        informers::wait_ready(&sets).await?;
        informers::wait_ready(&deployments).await?;
        informers::wait_ready(&claims).await?;
        informers::wait_ready(&pdbs).await
    };
    tokio::time::timeout(Duration::from_secs(30), ready)
        .await
        .context("the simulated cluster's watches did not sync within 30s")??;

    let runtime = Arc::new(process::ProcessRuntime {
        rules: opts.run_images.clone(),
        client: component_client(&ctx.api_url, "kubelet")?,
        kubeconfig: ctx.kubeconfig_path.clone(),
        logs: ctx.pod_logs.clone(),
        node_name: opts.node_name.clone(),
        notify: wake_kubelet.clone(),
        supervisors: std::sync::Mutex::new(JoinSet::new()),
    });

    run_controller(
        &mut tasks,
        "statefulset",
        wake_sts,
        statefulset::Controller {
            client: component_client(&ctx.api_url, "statefulset")?,
            sets: sets.clone(),
            pods: pods.clone(),
            claims: claims.clone(),
            templates: HashMap::new(),
            revisions: HashMap::new(),
            reconciled: HashMap::new(),
        },
    );
    run_controller(
        &mut tasks,
        "deployment",
        wake_deploy,
        deployment::Controller {
            client: component_client(&ctx.api_url, "deployment")?,
            deployments: deployments.clone(),
            pods: pods.clone(),
            seed: opts.seed,
            created: 0,
        },
    );
    run_controller(
        &mut tasks,
        "kubelet",
        wake_kubelet,
        kubelet::Kubelet {
            client: component_client(&ctx.api_url, "kubelet")?,
            pods: pods.clone(),
            node_name: opts.node_name.clone(),
            start_delay: opts.pod_start_delay,
            unpullable: opts.unpullable_images.clone(),
            ips: kubelet::IpAllocator::for_port(port),
            runtime: runtime.clone(),
            state: HashMap::new(),
        },
    );
    run_controller(
        &mut tasks,
        "disruption",
        wake_pdb,
        pdb::Controller {
            client: component_client(&ctx.api_url, "disruption")?,
            pdbs,
            pods: pods.clone(),
            sets,
            deployments,
            computed: HashMap::new(),
        },
    );
    run_controller(
        &mut tasks,
        "sql-server",
        wake_sql_server,
        crate::db::mssql::server::Controller::new(
            component_client(&ctx.api_url, "sql-server")?,
            pods.clone(),
            claims.clone(),
            runtime.clone(),
            ctx.sql_servers.clone(),
        ),
    );
    run_controller(
        &mut tasks,
        "singlestore",
        wake_singlestore.clone(),
        crate::db::singlestore::server::Controller::new(
            component_client(&ctx.api_url, "singlestore")?,
            pods.clone(),
            claims,
            runtime.clone(),
            ctx.singlestore.clone(),
            wake_singlestore,
        ),
    );
    run_controller(
        &mut tasks,
        "endpoints",
        wake_endpoints,
        endpoints::Controller {
            client: component_client(&ctx.api_url, "endpoints")?,
            services,
            pods: pods.clone(),
            written: HashMap::new(),
            computed: HashMap::new(),
        },
    );
    if !opts.no_cert_manager {
        let issuers = informers::dynamic(
            &mut tasks,
            &watch_client,
            Kind::Issuer,
            certs::resource("Issuer", "issuers"),
            wakers.clone(),
        );
        let cluster_issuers = informers::dynamic(
            &mut tasks,
            &watch_client,
            Kind::ClusterIssuer,
            certs::resource("ClusterIssuer", "clusterissuers"),
            wakers.clone(),
        );
        let certificates = informers::dynamic(
            &mut tasks,
            &watch_client,
            Kind::Certificate,
            certs::resource("Certificate", "certificates"),
            wakers.clone(),
        );
        let secrets =
            informers::typed::<Secret>(&mut tasks, &watch_client, Kind::Secret, wakers.clone());
        run_controller(
            &mut tasks,
            "cert-manager",
            wake_certs,
            certs::Controller {
                client: component_client(&ctx.api_url, "cert-manager")?,
                issuers,
                cluster_issuers,
                certificates,
                secrets,
                cluster_resource_namespace: "cert-manager".to_owned(),
                handled: HashMap::new(),
            },
        );
    } else {
        drop(wake_certs);
    }
    Ok(SimHandle {
        tasks,
        processes: runtime,
    })
}

fn url_port(url: &str) -> anyhow::Result<u16> {
    let uri: axum::http::Uri = url
        .parse()
        .with_context(|| format!("invalid API server URL {url:?}"))?;
    Ok(uri.port_u16().unwrap_or(80))
}
