//! The HTTP server and its library handle, [`KubeSim`].

mod admin;
mod discovery;
mod handler;
mod logs;
mod openapi;
mod protobuf;
mod route;
mod table;
mod watch;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use anyhow::Context as _;
use tokio::task::JoinHandle;

use crate::accounting::{Accounting, RequestCount};
use crate::cluster::Cluster;
use crate::faults::{FaultSpec, FaultStatus, Faults};
use crate::sim::{self, PodLogs, SimOptions};

pub use discovery::KUBERNETES_VERSION;
pub use table::json_path;

/// Options of one API server instance.
#[derive(Clone, Debug)]
pub struct KubeSimOptions {
    /// Address to listen on (`127.0.0.1:0` picks a free port).
    pub listen: SocketAddr,
    /// Where to write the kubeconfig; `None` = a fresh file in the temp directory, removed on shutdown.
    pub kubeconfig_out: Option<PathBuf>,
    /// Changes kept per resource for watch resumption; older resourceVersions get 410 Gone.
    pub watch_history: usize,
    /// How often watches that allow bookmarks receive one.
    pub bookmark_interval: Duration,
    /// The simulated cluster (controllers, kubelet, ...); `None` = a bare API server.
    pub sim: Option<SimOptions>,
}

impl Default for KubeSimOptions {
    fn default() -> Self {
        KubeSimOptions {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            kubeconfig_out: None,
            watch_history: 10_000,
            bookmark_interval: Duration::from_secs(10),
            sim: None,
        }
    }
}

/// State shared by every request of one server.
pub struct ServerState {
    cluster: Mutex<Cluster>,
    /// Container logs served as `pods/log`.
    pub pod_logs: PodLogs,
    /// Fault rules.
    pub faults: Faults,
    /// Request counters.
    pub accounting: Accounting,
    /// The simulated SQL Server instances (`/sim/sql-servers`).
    pub sql_servers: crate::db::mssql::server::Instances,
    /// The simulated SingleStore nodes (`/sim/singlestore`).
    pub singlestore: crate::db::singlestore::server::Nodes,
    bookmark_interval: Duration,
    closing: tokio::sync::watch::Sender<bool>,
    address: OnceLock<String>,
}

impl ServerState {
    /// Locks the cluster state (short critical sections only).
    pub fn lock(&self) -> MutexGuard<'_, Cluster> {
        self.cluster.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn address(&self) -> String {
        self.address.get().cloned().unwrap_or_default()
    }

    fn forget_removed_pods(&self) {
        let removed = self.lock().take_removed_pods();
        for (ns, name) in removed {
            self.pod_logs.remove_pod(&ns, &name);
        }
    }
}

static INSTANCE: AtomicU64 = AtomicU64::new(0);

/// A running API server (and, if configured, simulated cluster).
pub struct KubeSim {
    url: String,
    kubeconfig_path: PathBuf,
    remove_kubeconfig: bool,
    state: Arc<ServerState>,
    server: Option<JoinHandle<()>>,
    sim: Option<sim::SimHandle>,
}

/// Renders a kubeconfig for a server URL (one cluster, user and context, namespace `default`).
pub fn kubeconfig_yaml(url: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: kube-sim\n  cluster:\n    server: {url}\nusers:\n- name: kube-sim\n  user: {{}}\ncontexts:\n- name: kube-sim\n  context:\n    cluster: kube-sim\n    user: kube-sim\n    namespace: default\ncurrent-context: kube-sim\npreferences: {{}}\n"
    )
}

impl KubeSim {
    /// Binds, writes the kubeconfig, starts serving and (if configured) the simulated cluster.
    pub async fn start(options: KubeSimOptions) -> anyhow::Result<KubeSim> {
        let listener = tokio::net::TcpListener::bind(options.listen)
            .await
            .with_context(|| format!("cannot listen on {}", options.listen))?;
        let addr = listener.local_addr().context("reading the bound address")?;
        let url = format!("http://{addr}");
        let (kubeconfig_path, remove_kubeconfig) = match &options.kubeconfig_out {
            Some(p) => (p.clone(), false),
            None => {
                let dir = std::env::temp_dir().join(format!(
                    "kube-sim-{}-{}",
                    std::process::id(),
                    INSTANCE.fetch_add(1, Ordering::Relaxed)
                ));
                std::fs::create_dir_all(&dir)
                    .with_context(|| format!("creating {}", dir.display()))?;
                (dir.join("kubeconfig"), true)
            }
        };
        if let Some(parent) = kubeconfig_path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
        {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("creating {}", parent.display()))?;
        }
        std::fs::write(&kubeconfig_path, kubeconfig_yaml(&url))
            .with_context(|| format!("writing {}", kubeconfig_path.display()))?;
        let state = Arc::new(ServerState {
            cluster: Mutex::new(Cluster::new(options.watch_history)),
            pod_logs: PodLogs::default(),
            faults: Faults::default(),
            accounting: Accounting::default(),
            sql_servers: Default::default(),
            singlestore: Default::default(),
            bookmark_interval: options.bookmark_interval,
            closing: tokio::sync::watch::channel(false).0,
            address: OnceLock::new(),
        });
        let _ = state.address.set(addr.to_string());
        let app = axum::Router::new()
            .fallback(handler::handle)
            .with_state(state.clone());
        let mut closing = state.closing.subscribe();
        let server = tokio::spawn(async move {
            let shutdown = async move {
                let _ = closing.wait_for(|c| *c).await;
            };
            if let Err(e) = axum::serve(listener, app)
                .with_graceful_shutdown(shutdown)
                .await
            {
                tracing::error!(error = %e, "kube-sim server failed");
            }
        });
        let mut sim_handle = KubeSim {
            url,
            kubeconfig_path,
            remove_kubeconfig,
            state,
            server: Some(server),
            sim: None,
        };
        if let Some(opts) = options.sim {
            let ctx = sim::SimContext {
                client: sim_handle.client(),
                api_url: sim_handle.url.clone(),
                kubeconfig_path: sim_handle.kubeconfig_path.clone(),
                pod_logs: sim_handle.state.pod_logs.clone(),
                sql_servers: sim_handle.state.sql_servers.clone(),
                singlestore: sim_handle.state.singlestore.clone(),
            };
            sim_handle.sim = Some(
                sim::start(opts, ctx)
                    .await
                    .context("starting the simulated cluster")?,
            );
        }
        Ok(sim_handle)
    }

    /// A kube client of this server (namespace `default`).
    pub fn client(&self) -> kube::Client {
        let mut config = kube::Config::new(self.url.parse().expect("valid URL"));
        config.default_namespace = "default".into();
        kube::Client::try_from(config).expect("a kube client for an http URL")
    }

    /// Base URL, e.g. `http://127.0.0.1:40123`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Path of the kubeconfig the server wrote.
    pub fn kubeconfig_path(&self) -> &Path {
        &self.kubeconfig_path
    }

    /// Shared state: pod logs, faults, accounting, and the cluster itself.
    pub fn state(&self) -> &Arc<ServerState> {
        &self.state
    }

    /// Container logs served as `pods/log`.
    pub fn pod_logs(&self) -> &PodLogs {
        &self.state.pod_logs
    }

    /// Adds a fault rule; returns its id.
    pub fn add_fault(&self, spec: FaultSpec) -> u64 {
        self.state.faults.add(spec)
    }

    /// Removes every fault rule.
    pub fn clear_faults(&self) {
        self.state.faults.clear()
    }

    /// Fault rules with how often each was applied.
    pub fn faults(&self) -> Vec<FaultStatus> {
        self.state.faults.list()
    }

    /// Request counts since start (the same rows as `GET /sim/requests`).
    pub fn requests(&self) -> Vec<RequestCount> {
        self.state.accounting.snapshot()
    }

    /// Forgets the watch history, so that watches resuming from any earlier resourceVersion get
    /// 410 Gone and relist (also `POST /sim/compact`).
    pub fn compact(&self) {
        self.state.lock().store.compact();
    }

    /// Stops the simulated cluster and the server, closing open watches.
    pub async fn shutdown(mut self) {
        self.stop().await;
    }

    async fn stop(&mut self) {
        if let Some(sim) = self.sim.take() {
            sim.shutdown().await;
        }
        let _ = self.state.closing.send(true);
        if let Some(server) = self.server.take() {
            let _ = tokio::time::timeout(Duration::from_secs(5), server).await;
        }
        self.cleanup();
    }

    fn cleanup(&mut self) {
        if self.remove_kubeconfig {
            let _ = std::fs::remove_file(&self.kubeconfig_path);
            if let Some(dir) = self.kubeconfig_path.parent() {
                let _ = std::fs::remove_dir(dir);
            }
            self.remove_kubeconfig = false;
        }
    }
}

impl Drop for KubeSim {
    fn drop(&mut self) {
        let _ = self.state.closing.send(true);
        if let Some(server) = self.server.take() {
            server.abort();
        }
        self.cleanup();
    }
}
