//! Two replicas of each operator, installed by helm (`replicaCount: 2`): the leader of each is
//! killed in the middle of an UpdateVersion of an availability group. The standby of each takes
//! over (its leader-election Lease names it), the request ends Successful, and no database pod is
//! taken down twice. The takeover times are printed (`MEASURED`, docs/performance.md).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use api::ops::MSSQLServerOpsRequest;
use e2e::kubectl::apply_manifest;
use e2e::operators::{self, NAMESPACE, OPS_MANAGER, PROVISIONER};
use e2e::{Cluster, Helm, SimSettings, wait_for_object};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DeleteParams, ListParams};

const NS: &str = "demo";
const MSSQL: &str = "mssql-ag-cluster";
const WAIT: Duration = Duration::from_secs(180);

/// The holder of an operator's leader-election Lease.
async fn leader(cluster: &Cluster, lease: &str) -> Option<String> {
    let leases: Api<Lease> = Api::namespaced(cluster.client.clone(), NAMESPACE);
    leases
        .get_opt(lease)
        .await
        .ok()??
        .spec?
        .holder_identity
        .filter(|h| !h.is_empty())
}

/// The database's pods by name, with their UIDs.
async fn db_pods(cluster: &Cluster) -> BTreeMap<String, String> {
    let pods: Api<Pod> = Api::namespaced(cluster.client.clone(), NS);
    pods.list(&ListParams::default().labels(&format!("app.kubernetes.io/instance={MSSQL}")))
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

/// Evictions and pod deletions the ops-manager sent in the database's namespace (kube-sim's
/// request accounting; `None` on a real cluster).
async fn disruptions(cluster: &Cluster) -> Option<u64> {
    let requests = cluster.sim_requests().await.ok()??;
    Some(
        requests
            .iter()
            .filter(|r| {
                r["userAgent"]
                    .as_str()
                    .is_some_and(|u| u.starts_with("ops-manager/"))
                    && r["namespace"] == NS
                    && r["resource"] == "pods"
                    && (r["subresource"] == "eviction"
                        || (r["verb"] == "delete" && r["subresource"] == ""))
            })
            .filter_map(|r| r["count"].as_u64())
            .sum(),
    )
}

#[test]
fn a_standby_of_each_operator_takes_over_mid_update() {
    e2e::run_scenario(scenario);
}

async fn scenario() {
    let cluster = Cluster::start(&SimSettings::default()).await.unwrap();
    let helm = Helm::new(&cluster.kubeconfig);
    operators::install_all(&cluster, &helm).await.unwrap();
    for chart in [PROVISIONER, OPS_MANAGER] {
        operators::upgrade(&cluster, &helm, chart, &[("replicaCount", "2")])
            .await
            .unwrap();
        operators::wait_available(&cluster, chart).await;
    }
    let leases = [
        (PROVISIONER, "kubedb-provisioner"),
        (OPS_MANAGER, "kubedb-ops-manager"),
    ];
    for (chart, lease) in leases {
        let pods = operators::pods(&cluster, chart).await.unwrap();
        assert_eq!(pods.len(), 2, "{chart}: {pods:?}");
        e2e::eventually(&format!("{chart} has a leader"), WAIT, || async {
            leader(&cluster, lease).await
        })
        .await;
    }

    cluster.namespace(NS).await.unwrap();
    apply_manifest(&cluster.kubeconfig, "issuer.yaml")
        .await
        .unwrap();
    apply_manifest(&cluster.kubeconfig, "mssql-ag-cluster.yaml")
        .await
        .unwrap();
    let dbs: Api<api::mssql::MSSQLServer> = Api::namespaced(cluster.client.clone(), NS);
    wait_for_object(&dbs, MSSQL, "phase Ready", WAIT, |d| {
        d.status
            .as_ref()
            .and_then(|s| s.phase)
            .is_some_and(|p| p == api::DatabasePhase::Ready)
    })
    .await;
    let before = db_pods(&cluster).await;

    apply_manifest(&cluster.kubeconfig, "msops-update-ag-cluster.yaml")
        .await
        .unwrap();
    let requests: Api<MSSQLServerOpsRequest> = Api::namespaced(cluster.client.clone(), NS);
    // In the middle: the first pod has been taken down.
    wait_for_object(
        &requests,
        "msops-update-ag-cluster",
        "the first eviction",
        WAIT,
        |r| {
            r.status.as_ref().is_some_and(|s| {
                s.conditions()
                    .iter()
                    .any(|c| c.type_.starts_with("EvictPod--"))
            })
        },
    )
    .await;
    let pods: Api<Pod> = Api::namespaced(cluster.client.clone(), NAMESPACE);
    let mut killed = Vec::new();
    for (chart, lease) in leases {
        let old = leader(&cluster, lease).await.expect("a leader");
        // Killed: no grace period, so it has no time to release its Lease.
        pods.delete(&old, &DeleteParams::default().grace_period(0))
            .await
            .unwrap();
        killed.push((chart, lease, old, Instant::now()));
    }
    for (chart, lease, old, at) in &killed {
        let new = e2e::eventually(&format!("a new {chart} leader"), WAIT, || async {
            leader(&cluster, lease).await.filter(|h| h != old)
        })
        .await;
        eprintln!(
            "MEASURED {chart}: the standby {new} took the Lease {:?} after the leader {old} was killed",
            at.elapsed()
        );
    }

    let done = wait_for_object(
        &requests,
        "msops-update-ag-cluster",
        "a final phase",
        WAIT,
        |r| {
            r.status
                .as_ref()
                .and_then(|s| s.phase)
                .is_some_and(|p| p.is_final())
        },
    )
    .await;
    let phase = done.status.as_ref().and_then(|s| s.phase);
    assert_eq!(
        phase,
        Some(api::ops::OpsRequestPhase::Successful),
        "{:#?}",
        done.status
    );
    let evicted = done
        .status
        .as_ref()
        .unwrap()
        .conditions()
        .iter()
        .filter(|c| c.type_.starts_with("EvictPod--"))
        .count();
    assert_eq!(evicted, 3, "one eviction record per pod");
    let after = db_pods(&cluster).await;
    assert_eq!(after.len(), 3);
    for (pod, uid) in &after {
        assert_ne!(before.get(pod), Some(uid), "{pod} was restarted");
    }
    if let Some(taken_down) = disruptions(&cluster).await {
        assert_eq!(taken_down, 3, "no pod taken down twice");
    }
    // The databases and the operators carry on: another Ready phase.
    wait_for_object(&dbs, MSSQL, "phase Ready", WAIT, |d| {
        d.status
            .as_ref()
            .and_then(|s| s.phase)
            .is_some_and(|p| p == api::DatabasePhase::Ready)
    })
    .await;
    cluster.shutdown().await.unwrap();
}
