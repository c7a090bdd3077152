//! Installing the operators the way users do: the four charts with helm.

use std::time::Duration;

use anyhow::Context as _;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams};

use crate::{Cluster, Helm, wait_for_object};

/// Namespace the operators are installed into.
pub const NAMESPACE: &str = "kubedb";
/// Release names.
pub const CRDS: &str = "kubedb-crds";
/// See [`CRDS`].
pub const CATALOG: &str = "kubedb-catalog";
/// See [`CRDS`].
pub const PROVISIONER: &str = "provisioner";
/// See [`CRDS`].
pub const OPS_MANAGER: &str = "ops-manager";

/// Values for an operator chart in this environment: image location from `E2E_IMAGE_REGISTRY`
/// and `E2E_IMAGE_TAG` when set; under kube-sim, health checks by pod readiness (the simulated
/// database pods run no database).
pub fn operator_values(cluster: &Cluster, chart: &str) -> Vec<(String, String)> {
    let mut values = Vec::new();
    if let Ok(registry) = std::env::var("E2E_IMAGE_REGISTRY") {
        values.push(("image.registry".to_owned(), registry));
    }
    if let Ok(tag) = std::env::var("E2E_IMAGE_TAG") {
        values.push(("image.tag".to_owned(), tag));
    }
    if chart == PROVISIONER && cluster.is_sim() {
        values.push(("healthCheck".to_owned(), "pod-readiness".to_owned()));
    }
    values
}

fn as_refs(values: &[(String, String)]) -> Vec<(&str, &str)> {
    values
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect()
}

/// Installs the CRDs, the catalog and both operators, and waits until both Deployments are
/// available.
pub async fn install_all(cluster: &Cluster, helm: &Helm) -> anyhow::Result<()> {
    helm.install(CRDS, CRDS, NAMESPACE, &[]).await?;
    helm.install(CATALOG, CATALOG, NAMESPACE, &[]).await?;
    for chart in [PROVISIONER, OPS_MANAGER] {
        let values = operator_values(cluster, chart);
        helm.install(chart, chart, NAMESPACE, &as_refs(&values))
            .await?;
    }
    for chart in [PROVISIONER, OPS_MANAGER] {
        wait_available(cluster, chart).await;
    }
    Ok(())
}

/// `helm upgrade` of one operator with extra values, keeping the others.
pub async fn upgrade(
    cluster: &Cluster,
    helm: &Helm,
    chart: &str,
    extra: &[(&str, &str)],
) -> anyhow::Result<()> {
    let mut values = operator_values(cluster, chart);
    values.extend(
        extra
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
    );
    helm.upgrade(chart, chart, NAMESPACE, &as_refs(&values))
        .await?;
    Ok(())
}

/// Waits until the operator's Deployment has all replicas updated and available.
pub async fn wait_available(cluster: &Cluster, chart: &str) -> Deployment {
    let deployments: Api<Deployment> = Api::namespaced(cluster.client.clone(), NAMESPACE);
    wait_for_object(
        &deployments,
        chart,
        "the Deployment to be available",
        Duration::from_secs(90),
        |d| {
            let Some(status) = &d.status else {
                return false;
            };
            let want = d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
            status.observed_generation >= d.metadata.generation
                && status.updated_replicas.unwrap_or(0) == want
                && status.available_replicas.unwrap_or(0) == want
                && status.replicas.unwrap_or(0) == want
        },
    )
    .await
}

/// The operator's running pods (not being deleted).
pub async fn pods(cluster: &Cluster, chart: &str) -> anyhow::Result<Vec<Pod>> {
    let pods: Api<Pod> = Api::namespaced(cluster.client.clone(), NAMESPACE);
    let selector = format!("app.kubernetes.io/name={chart},app.kubernetes.io/instance={chart}");
    let list = pods
        .list(&ListParams::default().labels(&selector))
        .await
        .with_context(|| format!("listing {chart} pods"))?;
    Ok(list
        .items
        .into_iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .collect())
}

/// `host:port` of each operator pod's metrics endpoint.
pub async fn metrics_targets(cluster: &Cluster, chart: &str) -> anyhow::Result<Vec<String>> {
    Ok(pods(cluster, chart)
        .await?
        .iter()
        .filter_map(|p| p.status.as_ref()?.pod_ip.clone())
        .map(|ip| format!("{ip}:8080"))
        .collect())
}
