//! kubectl, run as a user would, against the cluster's kubeconfig.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use tokio::process::Command;

use crate::{tool, workspace_root};

/// A manifest shipped with the suite (`e2e/manifests/<name>`), also used by the guides.
pub fn manifest(name: &str) -> PathBuf {
    workspace_root().join("e2e/manifests").join(name)
}

/// Runs kubectl with `args` against `kubeconfig`; its stdout, or an error with its stderr.
pub async fn kubectl(kubeconfig: &Path, args: &[&str]) -> anyhow::Result<String> {
    let binary = tool("kubectl");
    let output = Command::new(&binary)
        .args(args)
        .env("KUBECONFIG", kubeconfig)
        .output()
        .await
        .with_context(|| format!("running {}", binary.display()))?;
    if !output.status.success() {
        bail!(
            "kubectl {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// `kubectl apply -f e2e/manifests/<name>`.
pub async fn apply_manifest(kubeconfig: &Path, name: &str) -> anyhow::Result<String> {
    let path = manifest(name);
    kubectl(kubeconfig, &["apply", "-f", &path.to_string_lossy()]).await
}
