//! Process plumbing shared by the `provisioner` and `ops-manager` binaries: the command line both
//! share, crypto provider and logging set-up, connecting with a user agent, the metrics and health
//! HTTP server, and running controllers only while holding a leader-election Lease. Also what both
//! reconcilers mean the same way: the [`error`] model and the [`finalizer`] patches.

pub mod apply;
mod cli;
pub mod error;
pub mod events;
pub mod finalizer;
mod http_server;
mod leader;
mod operator;

pub use cli::{Command, LogFormat, RunArgs, init_tracing};
pub use http_server::{Health, serve_http};
pub use leader::{LeaderElection, run_controllers};
pub use operator::{OperatorContext, OperatorInfo, run_operator};

use anyhow::Context as _;
use http::HeaderValue;
use kube::config::{KubeConfigOptions, Kubeconfig};

/// Installs rustls' `ring` provider as the process default.
///
/// Several crates in the dependency graph can enable a second provider; with two present, rustls
/// cannot choose and the first TLS connection panics. Call this first thing in `main` and in test
/// harnesses; calling it again is harmless.
pub fn install_crypto_provider() {
    // Err means a provider is already installed, which is what we want.
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// Builds a client for the configured cluster, sending `user_agent` with every request.
pub async fn connect(
    kubeconfig: Option<&std::path::Path>,
    user_agent: &str,
) -> anyhow::Result<kube::Client> {
    let mut config = match kubeconfig {
        Some(path) => {
            let kubeconfig = Kubeconfig::read_from(path)
                .with_context(|| format!("cannot read kubeconfig {}", path.display()))?;
            kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
                .await
                .with_context(|| format!("invalid kubeconfig {}", path.display()))?
        }
        None => kube::Config::infer()
            .await
            .context("cannot find a cluster configuration")?,
    };
    let agent = HeaderValue::from_str(user_agent).context("invalid user agent")?;
    config.headers.push((http::header::USER_AGENT, agent));
    kube::Client::try_from(config).context("cannot build a Kubernetes client")
}

/// `<binary>/<version>`: the user agent every request of an operator carries.
pub fn user_agent(binary: &str) -> String {
    format!("{binary}/{}", env!("CARGO_PKG_VERSION"))
}

/// One line describing this build: binary and version.
pub fn version_line(binary: &str) -> String {
    format!("{binary} {}", env!("CARGO_PKG_VERSION"))
}

/// Resolves when the process receives SIGTERM or SIGINT.
pub async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).expect("cannot install a SIGTERM handler");
    tokio::select! {
        _ = term.recv() => tracing::info!("received SIGTERM, shutting down"),
        _ = tokio::signal::ctrl_c() => tracing::info!("received SIGINT, shutting down"),
    }
}
