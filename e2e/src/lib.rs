//! End-to-end harness: a cluster (a `kube-sim serve` process by default, or the real cluster named
//! by `E2E_KUBECONFIG`), the operators installed with helm exactly as users install them, and
//! helpers that wait on observable state. The scenarios in `tests/` and the demo use only the
//! Kubernetes API, kubectl and helm, so they run unchanged against a real cluster.
//!
//! Environment:
//! - `E2E_KUBECONFIG`: run against this cluster instead of starting kube-sim. Never falls back to
//!   `~/.kube/config`. The operator images must then be pullable: set `E2E_IMAGE_REGISTRY` and
//!   `E2E_IMAGE_TAG` to where they are published.
//! - `KUBE_SIM_BIN`, `PROVISIONER_BIN`, `OPS_MANAGER_BIN`: binaries to use under kube-sim
//!   (default: `target/debug/<name>` of this workspace, built by `make e2e`).
//! - `E2E_IMAGES_DIR`: the operator images for `tests/images.rs` (default: `target/images`);
//!   `E2E_REQUIRE_IMAGES` (set by `make test`) makes their absence a failure instead of a skip.

pub mod cluster;
pub mod helm;
pub mod images;
pub mod kubectl;
pub mod operators;
pub mod prometheus;
pub mod view;

pub use cluster::{Cluster, SimSettings};
pub use helm::Helm;
pub use testkit::{eventually, wait_for_object};

use std::path::PathBuf;

/// Runs a scenario to completion on a multi-threaded runtime, on a thread with a 32 MiB stack:
/// the scenarios' futures are deep in debug builds, deeper than the test harness's default
/// 2 MiB thread stack, so the future is also made there. A panic in the scenario is the test's
/// panic.
pub fn run_scenario<F, Fut>(scenario: F)
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()>,
{
    std::thread::Builder::new()
        .stack_size(32 * 1024 * 1024)
        .spawn(|| {
            tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .expect("tokio runtime")
                .block_on(scenario())
        })
        .expect("spawn the scenario thread")
        .join()
        .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
}

/// The workspace root (where `charts/` and `.tools/` live).
pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("e2e lives inside the workspace")
        .to_path_buf()
}

/// A tool from `.tools/bin` (installed by `hack/install-tools.sh`), else from `PATH`.
pub fn tool(name: &str) -> PathBuf {
    let local = workspace_root().join(".tools/bin").join(name);
    if local.exists() {
        local
    } else {
        PathBuf::from(name)
    }
}

/// A workspace binary: `$<NAME>_BIN` if set, else `target/debug/<name>`.
pub fn workspace_binary(name: &str) -> PathBuf {
    let var = format!("{}_BIN", name.to_uppercase().replace('-', "_"));
    if let Ok(path) = std::env::var(&var) {
        return PathBuf::from(path);
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target"));
    target.join("debug").join(name)
}
