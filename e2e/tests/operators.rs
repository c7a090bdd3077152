//! The operators installed with helm: both Deployments become available, /metrics passes
//! promtool, and uninstalling them leaves the CRDs in place.

use std::time::Duration;

use e2e::operators::{self, NAMESPACE, OPS_MANAGER, PROVISIONER};
use e2e::prometheus::promtool_check_metrics;
use e2e::{Cluster, Helm, SimSettings, eventually};
use k8s_openapi::api::coordination::v1::Lease;
use kube::api::Api;

#[tokio::test]
async fn helm_install_runs_both_operators() {
    let cluster = Cluster::start(&SimSettings::default()).await.unwrap();
    let helm = Helm::new(&cluster.kubeconfig);
    operators::install_all(&cluster, &helm).await.unwrap();
    assert!(
        helm.status(PROVISIONER, NAMESPACE)
            .await
            .unwrap()
            .contains("STATUS: deployed")
    );

    // Each operator holds its Lease and exposes metrics that promtool accepts.
    let leases: Api<Lease> = Api::namespaced(cluster.client.clone(), NAMESPACE);
    for (chart, lease, prefix) in [
        (PROVISIONER, "kubedb-provisioner", "kubedb_provisioner_"),
        (OPS_MANAGER, "kubedb-ops-manager", "kubedb_ops_manager_"),
    ] {
        let pods = operators::pods(&cluster, chart).await.unwrap();
        assert_eq!(pods.len(), 1, "{chart}");
        let pod = pods[0].metadata.name.clone().unwrap();
        eventually(
            &format!("{chart} to hold its Lease"),
            Duration::from_secs(30),
            || async {
                let lease = leases.get_opt(lease).await.ok()??;
                (lease.spec?.holder_identity? == pod).then_some(())
            },
        )
        .await;
        let target = operators::metrics_targets(&cluster, chart)
            .await
            .unwrap()
            .remove(0);
        let metrics = e2e::cluster::http_get(&format!("http://{target}"), "/metrics")
            .await
            .unwrap();
        assert!(
            metrics.contains(&format!("{prefix}leader 1")),
            "{chart}: {metrics}"
        );
        promtool_check_metrics(&metrics).await.unwrap();
    }

    helm.uninstall(OPS_MANAGER, NAMESPACE).await.unwrap();
    helm.uninstall(PROVISIONER, NAMESPACE).await.unwrap();
    eventually(
        "the operator pods to be gone",
        Duration::from_secs(30),
        || async {
            let left = operators::pods(&cluster, PROVISIONER).await.ok()?.len()
                + operators::pods(&cluster, OPS_MANAGER).await.ok()?.len();
            (left == 0).then_some(())
        },
    )
    .await;
    cluster.shutdown().await.unwrap();
}
