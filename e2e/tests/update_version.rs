//! The users' journey, end to end, with the operators installed by helm:
//! an MSSQL availability group and a SingleStore cluster from guide-style manifests become Ready;
//! UpdateVersion succeeds on both; `helm upgrade` of the ops-manager alone replaces only its pod
//! while the databases stay Ready, and another UpdateVersion works; the same for the provisioner;
//! a real Prometheus scrapes both operators and sees the expected series; `helm uninstall` of both
//! leaves the databases' StatefulSets, PVCs and secrets in place.

use std::collections::BTreeMap;
use std::time::Duration;

use api::mssql::MSSQLServer;
use api::ops::{MSSQLServerOpsRequest, SinglestoreOpsRequest};
use api::singlestore::Singlestore;
use e2e::kubectl::{apply_manifest, apply_manifest_with};
use e2e::operators::{self, NAMESPACE, OPS_MANAGER, PROVISIONER};
use e2e::prometheus::{Prometheus, promtool_check_metrics};
use e2e::{Cluster, Helm, SimSettings, wait_for_object};
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod, Secret};
use kube::api::{Api, ListParams};

const NS: &str = "demo";
const MSSQL: &str = "mssql-ag-cluster";
const SDB: &str = "sample-sdb";
const READY_TIMEOUT: Duration = Duration::from_secs(120);
const UPDATE_TIMEOUT: Duration = Duration::from_secs(180);

fn db_phase<S: serde::Serialize>(status: &Option<S>) -> Option<String> {
    let v = serde_json::to_value(status.as_ref()?).ok()?;
    v.get("phase")?.as_str().map(str::to_owned)
}

async fn wait_ready(cluster: &Cluster) {
    let ms: Api<MSSQLServer> = Api::namespaced(cluster.client.clone(), NS);
    let sdb: Api<Singlestore> = Api::namespaced(cluster.client.clone(), NS);
    wait_for_object(&ms, MSSQL, "phase Ready", READY_TIMEOUT, |d| {
        db_phase(&d.status).as_deref() == Some("Ready")
    })
    .await;
    wait_for_object(&sdb, SDB, "phase Ready", READY_TIMEOUT, |d| {
        db_phase(&d.status).as_deref() == Some("Ready")
    })
    .await;
}

/// Creates one UpdateVersion request per database and waits until both are Successful and the
/// databases report the targets.
async fn update_both(cluster: &Cluster, round: u32, mssql_target: &str, sdb_target: &str) {
    let ms_name = format!("msops-update-{round}");
    let sdb_name = format!("sdbops-update-{round}");
    apply_manifest_with(
        &cluster.kubeconfig,
        "msops-update-ag-cluster.yaml",
        &[
            ("name: msops-update-ag-cluster", &format!("name: {ms_name}")),
            (
                "targetVersion: 2025-cu0",
                &format!("targetVersion: {mssql_target}"),
            ),
        ],
    )
    .await
    .unwrap();
    apply_manifest_with(
        &cluster.kubeconfig,
        "sdbops-update.yaml",
        &[
            ("name: sdb-update-patch", &format!("name: {sdb_name}")),
            (
                "targetVersion: \"8.9.3\"",
                &format!("targetVersion: \"{sdb_target}\""),
            ),
        ],
    )
    .await
    .unwrap();
    let msops: Api<MSSQLServerOpsRequest> = Api::namespaced(cluster.client.clone(), NS);
    let sdbops: Api<SinglestoreOpsRequest> = Api::namespaced(cluster.client.clone(), NS);
    let done =
        |p: Option<String>| matches!(p.as_deref(), Some("Successful" | "Failed" | "Skipped"));
    let ms = wait_for_object(&msops, &ms_name, "a final phase", UPDATE_TIMEOUT, |r| {
        done(db_phase(&r.status))
    })
    .await;
    let sdb = wait_for_object(&sdbops, &sdb_name, "a final phase", UPDATE_TIMEOUT, |r| {
        done(db_phase(&r.status))
    })
    .await;
    assert_eq!(
        db_phase(&ms.status).as_deref(),
        Some("Successful"),
        "{ms_name}: {:#?}",
        ms.status
    );
    assert_eq!(
        db_phase(&sdb.status).as_deref(),
        Some("Successful"),
        "{sdb_name}: {:#?}",
        sdb.status
    );

    let dbs: Api<MSSQLServer> = Api::namespaced(cluster.client.clone(), NS);
    assert_eq!(dbs.get(MSSQL).await.unwrap().spec.version, mssql_target);
    let dbs: Api<Singlestore> = Api::namespaced(cluster.client.clone(), NS);
    assert_eq!(dbs.get(SDB).await.unwrap().spec.version, sdb_target);
    wait_ready(cluster).await;
}

/// Names and UIDs of the databases' pods.
async fn db_pod_uids(cluster: &Cluster) -> BTreeMap<String, String> {
    let pods: Api<Pod> = Api::namespaced(cluster.client.clone(), NS);
    pods.list(&ListParams::default().labels("app.kubernetes.io/managed-by=kubedb.com"))
        .await
        .unwrap()
        .items
        .into_iter()
        .map(|p| {
            (
                p.metadata.name.unwrap_or_default(),
                p.metadata.uid.unwrap_or_default(),
            )
        })
        .collect()
}

async fn operator_pod_uid(cluster: &Cluster, chart: &str) -> String {
    let pods = operators::pods(cluster, chart).await.unwrap();
    assert_eq!(pods.len(), 1, "{chart} pods: {pods:?}");
    pods[0].metadata.uid.clone().unwrap()
}

/// `helm upgrade` of one operator with a changed value: its pod is replaced, the other operator's
/// pod and every database pod are untouched, and the databases stay Ready.
async fn upgrade_alone(cluster: &Cluster, helm: &Helm, chart: &str, other: &str) {
    let before = operator_pod_uid(cluster, chart).await;
    let other_before = operator_pod_uid(cluster, other).await;
    let db_pods_before = db_pod_uids(cluster).await;
    operators::upgrade(cluster, helm, chart, &[("logging.level", "debug")])
        .await
        .unwrap();
    e2e::eventually(
        &format!("{chart}'s pod to be replaced"),
        Duration::from_secs(60),
        || async {
            let pods = operators::pods(cluster, chart).await.ok()?;
            (pods.len() == 1 && pods[0].metadata.uid.as_deref() != Some(before.as_str()))
                .then_some(())
        },
    )
    .await;
    operators::wait_available(cluster, chart).await;
    assert_eq!(
        operator_pod_uid(cluster, other).await,
        other_before,
        "{other}'s pod must be untouched"
    );
    assert_eq!(
        db_pod_uids(cluster).await,
        db_pods_before,
        "database pods must be untouched"
    );
    wait_ready(cluster).await;
}

/// Names of every object `api` lists.
async fn names<K>(api: &Api<K>) -> Vec<String>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    api.list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter_map(|o| o.meta().name.clone())
        .collect()
}

async fn scrape_and_check(cluster: &Cluster) {
    let provisioner = operators::metrics_targets(cluster, PROVISIONER)
        .await
        .unwrap();
    let ops_manager = operators::metrics_targets(cluster, OPS_MANAGER)
        .await
        .unwrap();
    for target in provisioner.iter().chain(&ops_manager) {
        let text = e2e::cluster::http_get(&format!("http://{target}"), "/metrics")
            .await
            .unwrap();
        promtool_check_metrics(&text).await.unwrap();
    }
    let prometheus =
        Prometheus::start(&[("provisioner", provisioner), ("ops-manager", ops_manager)])
            .await
            .unwrap();
    prometheus.wait_targets_up(2).await;
    // Both databases are Ready according to the provisioner.
    let ready = prometheus
        .query("sum(kubedb_provisioner_databases{phase=\"Ready\"})")
        .await
        .unwrap();
    assert_eq!(ready.first().map(|r| r.1), Some(2.0), "{ready:?}");
    // The ops-manager pod was replaced after round 1; since then it ran rounds 2 and 3: four
    // successful UpdateVersion requests and no failed one.
    let ok = prometheus
        .query("sum(kubedb_ops_manager_ops_requests_total{type=\"UpdateVersion\",result=\"Successful\"})")
        .await
        .unwrap();
    assert_eq!(ok.first().map(|r| r.1), Some(4.0), "{ok:?}");
    let failed = prometheus
        .query("sum(kubedb_ops_manager_ops_requests_total{result=\"Failed\"}) or vector(0)")
        .await
        .unwrap();
    assert_eq!(failed.first().map(|r| r.1), Some(0.0), "{failed:?}");
    let leaders = prometheus
        .query("sum(kubedb_provisioner_leader) + sum(kubedb_ops_manager_leader)")
        .await
        .unwrap();
    assert_eq!(leaders.first().map(|r| r.1), Some(2.0), "{leaders:?}");
}

#[test]
fn install_update_upgrade_operators_and_uninstall() {
    e2e::run_scenario(scenario);
}

async fn scenario() {
    let cluster = Cluster::start(&SimSettings::default()).await.unwrap();
    let helm = Helm::new(&cluster.kubeconfig);
    operators::install_all(&cluster, &helm).await.unwrap();

    cluster.namespace(NS).await.unwrap();
    apply_manifest(&cluster.kubeconfig, "issuer.yaml")
        .await
        .unwrap();
    apply_manifest_with(
        &cluster.kubeconfig,
        "mssql-ag-cluster.yaml",
        &[("version: \"2022-cu22\"", "version: \"2022-cu16\"")],
    )
    .await
    .unwrap();
    apply_manifest(&cluster.kubeconfig, "singlestore-license.yaml")
        .await
        .unwrap();
    apply_manifest_with(
        &cluster.kubeconfig,
        "sample-sdb.yaml",
        &[("version: \"8.7.21\"", "version: \"8.5.30\"")],
    )
    .await
    .unwrap();
    wait_ready(&cluster).await;

    update_both(&cluster, 1, "2022-cu19", "8.7.10").await;
    upgrade_alone(&cluster, &helm, OPS_MANAGER, PROVISIONER).await;
    update_both(&cluster, 2, "2022-cu22", "8.7.21").await;
    upgrade_alone(&cluster, &helm, PROVISIONER, OPS_MANAGER).await;
    update_both(&cluster, 3, "2025-cu0", "8.9.3").await;

    if cluster.is_sim() {
        scrape_and_check(&cluster).await;
    }

    // Uninstalling both operators leaves the databases' StatefulSets, PVCs and secrets.
    let sts: Api<StatefulSet> = Api::namespaced(cluster.client.clone(), NS);
    let pvcs: Api<PersistentVolumeClaim> = Api::namespaced(cluster.client.clone(), NS);
    let secrets: Api<Secret> = Api::namespaced(cluster.client.clone(), NS);
    let sts_before = names(&sts).await;
    let pvcs_before = names(&pvcs).await;
    let secrets_before = names(&secrets).await;
    assert!(sts_before.contains(&MSSQL.to_owned()), "{sts_before:?}");
    assert!(
        pvcs_before.iter().any(|p| p == "data-mssql-ag-cluster-0"),
        "{pvcs_before:?}"
    );
    assert!(
        secrets_before.iter().any(|s| s == "mssql-ag-cluster-auth"),
        "{secrets_before:?}"
    );

    helm.uninstall(OPS_MANAGER, NAMESPACE).await.unwrap();
    helm.uninstall(PROVISIONER, NAMESPACE).await.unwrap();
    e2e::eventually(
        "the operator pods to be gone",
        Duration::from_secs(60),
        || async {
            let left = operators::pods(&cluster, PROVISIONER).await.ok()?.len()
                + operators::pods(&cluster, OPS_MANAGER).await.ok()?.len();
            (left == 0).then_some(())
        },
    )
    .await;
    let sts_after = names(&sts).await;
    let pvcs_after = names(&pvcs).await;
    let secrets_after = names(&secrets).await;
    assert_eq!(sts_after, sts_before);
    assert_eq!(pvcs_after, pvcs_before);
    assert_eq!(secrets_after, secrets_before);
    cluster.shutdown().await.unwrap();
}
