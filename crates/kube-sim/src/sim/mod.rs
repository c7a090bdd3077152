//! Simulated cluster: controllers, kubelet, roles, cert-manager stand-in.
//!
//! Every simulated component is an ordinary kube-rs client of the API server, with the user agent
//! `kube-sim/<component>`, so its requests show up in request accounting and can be targeted by
//! fault rules like any other client's.

mod logs;
mod options;

use std::path::PathBuf;

use anyhow::Context as _;
use tokio::task::JoinSet;

pub use logs::PodLogs;
pub use options::{RunImage, SimOptions, parse_duration};

/// What the simulated cluster needs from the API server it runs against.
#[derive(Clone)]
pub struct SimContext {
    /// A client of the API server (used for one-off setup such as installing CRDs).
    pub client: kube::Client,
    /// Base URL of the API server, e.g. `http://127.0.0.1:40123`.
    pub api_url: String,
    /// The kubeconfig the server wrote; processes started by `--run-image` get it as `KUBECONFIG`.
    pub kubeconfig_path: PathBuf,
    /// Container logs that the API server serves as `pods/log`.
    pub pod_logs: PodLogs,
}

/// Running simulated cluster; stop it with [`SimHandle::shutdown`].
pub struct SimHandle {
    tasks: JoinSet<()>,
}

impl SimHandle {
    /// Stops every simulated component (and every process started by the process runtime).
    pub async fn shutdown(mut self) {
        self.tasks.shutdown().await;
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
    let _ = (&opts, &ctx);
    let tasks = JoinSet::new();
    Ok(SimHandle { tasks })
}
