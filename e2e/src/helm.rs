//! helm, run as a user would, against the cluster's kubeconfig.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use tokio::process::Command;

use crate::{tool, workspace_root};

/// The helm CLI bound to one kubeconfig.
#[derive(Debug, Clone)]
pub struct Helm {
    kubeconfig: PathBuf,
}

impl Helm {
    /// helm for the cluster of `kubeconfig`.
    pub fn new(kubeconfig: &Path) -> Self {
        Self {
            kubeconfig: kubeconfig.to_path_buf(),
        }
    }

    /// The chart directory `charts/<name>`.
    pub fn chart(name: &str) -> PathBuf {
        workspace_root().join("charts").join(name)
    }

    /// `helm install <release> charts/<chart> -n <namespace> --create-namespace --set k=v ...`.
    pub async fn install(
        &self,
        release: &str,
        chart: &str,
        namespace: &str,
        values: &[(&str, &str)],
    ) -> anyhow::Result<String> {
        let chart_dir = Self::chart(chart);
        let mut args = vec!["install", release];
        let chart_dir = chart_dir.to_string_lossy().into_owned();
        args.push(&chart_dir);
        args.extend(["--namespace", namespace, "--create-namespace"]);
        self.run_with_values(args, values).await
    }

    /// `helm upgrade <release> charts/<chart> -n <namespace> --reuse-values --set k=v ...`.
    pub async fn upgrade(
        &self,
        release: &str,
        chart: &str,
        namespace: &str,
        values: &[(&str, &str)],
    ) -> anyhow::Result<String> {
        let chart_dir = Self::chart(chart).to_string_lossy().into_owned();
        let args = vec![
            "upgrade",
            release,
            &chart_dir,
            "--namespace",
            namespace,
            "--reuse-values",
        ];
        self.run_with_values(args, values).await
    }

    /// `helm uninstall <release> -n <namespace>`.
    pub async fn uninstall(&self, release: &str, namespace: &str) -> anyhow::Result<String> {
        self.run(&["uninstall", release, "--namespace", namespace])
            .await
    }

    /// `helm status <release> -n <namespace>`.
    pub async fn status(&self, release: &str, namespace: &str) -> anyhow::Result<String> {
        self.run(&["status", release, "--namespace", namespace])
            .await
    }

    async fn run_with_values(
        &self,
        mut args: Vec<&str>,
        values: &[(&str, &str)],
    ) -> anyhow::Result<String> {
        let sets: Vec<String> = values.iter().map(|(k, v)| format!("{k}={v}")).collect();
        for set in &sets {
            args.extend(["--set", set]);
        }
        self.run(&args).await
    }

    /// Runs helm with `args`; its stdout, or an error with its stderr.
    pub async fn run(&self, args: &[&str]) -> anyhow::Result<String> {
        let helm = tool("helm");
        let output = Command::new(&helm)
            .args(args)
            .env("KUBECONFIG", &self.kubeconfig)
            .env(
                "HELM_CACHE_HOME",
                std::env::temp_dir().join("e2e-helm-cache"),
            )
            .env(
                "HELM_CONFIG_HOME",
                std::env::temp_dir().join("e2e-helm-config"),
            )
            .env("HELM_DATA_HOME", std::env::temp_dir().join("e2e-helm-data"))
            .output()
            .await
            .with_context(|| {
                format!(
                    "running {} (install it with hack/install-tools.sh)",
                    helm.display()
                )
            })?;
        if !output.status.success() {
            bail!(
                "helm {} failed: {}",
                args.join(" "),
                String::from_utf8_lossy(&output.stderr).trim()
            );
        }
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    }
}
