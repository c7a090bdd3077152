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

/// `kubectl apply -f -` of `e2e/manifests/<name>` after replacing each `(from, to)` pair in its
/// text (for example another version or object name).
pub async fn apply_manifest_with(
    kubeconfig: &Path,
    name: &str,
    replacements: &[(&str, &str)],
) -> anyhow::Result<String> {
    use tokio::io::AsyncWriteExt as _;
    let path = manifest(name);
    let mut text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    for (from, to) in replacements {
        anyhow::ensure!(
            text.contains(from),
            "{} does not contain {from:?}",
            path.display()
        );
        text = text.replace(from, to);
    }
    let binary = tool("kubectl");
    let mut child = Command::new(&binary)
        .args(["apply", "-f", "-"])
        .env("KUBECONFIG", kubeconfig)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .with_context(|| format!("running {}", binary.display()))?;
    child
        .stdin
        .take()
        .expect("piped")
        .write_all(text.as_bytes())
        .await?;
    let output = child.wait_with_output().await?;
    if !output.status.success() {
        bail!(
            "kubectl apply of {name} failed: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}
