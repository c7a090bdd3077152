//! Proofs of the simulated cluster (issue 4): StatefulSet ordering and updates, image pull
//! failures, PDB-guarded eviction, simulated SingleStore nodes and the cert-manager stand-in.
//!
//! Every wait polls a condition with a generous timeout; nothing sleeps in place of a condition.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod, Secret};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::api::{
    Api, DeleteParams, DynamicObject, EvictParams, ListParams, Patch, PatchParams, PostParams,
};
use kube::discovery::ApiResource;
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Client, ResourceExt};
use kube_sim::sim::SimOptions;
use kube_sim::{KubeSim, KubeSimOptions};
use serde_json::json;

const TIMEOUT: Duration = Duration::from_secs(60);

async fn start(sim: SimOptions) -> KubeSim {
    KubeSim::start(KubeSimOptions {
        sim: Some(sim),
        ..KubeSimOptions::default()
    })
    .await
    .expect("kube-sim with the simulated cluster starts")
}

/// A client that does not retry 429s itself, so tests see them.
fn client_without_retries(sim: &KubeSim) -> Client {
    let mut config = kube::Config::new(sim.url().parse().unwrap());
    config.default_namespace = "default".into();
    config.default_retry = false;
    Client::try_from(config).unwrap()
}

async fn wait_for<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out after {TIMEOUT:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

fn statefulset(
    name: &str,
    replicas: i32,
    image: &str,
    extra_spec: serde_json::Value,
) -> StatefulSet {
    let mut spec = json!({
        "replicas": replicas,
        "serviceName": format!("{name}-pods"),
        "selector": {"matchLabels": {"app": name}},
        "template": {
            "metadata": {"labels": {"app": name}},
            "spec": {"containers": [{"name": "main", "image": image}]}
        },
        "volumeClaimTemplates": [{
            "metadata": {"name": "data"},
            "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}
        }]
    });
    for (k, v) in extra_spec.as_object().unwrap() {
        spec[k] = v.clone();
    }
    serde_json::from_value(json!({"metadata": {"name": name}, "spec": spec})).unwrap()
}

fn is_ready(pod: &Pod) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

fn image_of(pod: &Pod) -> String {
    pod.spec.as_ref().unwrap().containers[0]
        .image
        .clone()
        .unwrap()
}

async fn wait_sts_ready(api: &Api<StatefulSet>, name: &str, replicas: i32) -> StatefulSet {
    wait_for(
        &format!("{name} to have {replicas} Ready replicas"),
        || async {
            let sts = api.get(name).await.ok()?;
            let status = sts.status.clone()?;
            (status.ready_replicas == Some(replicas)
                && status.observed_generation == sts.metadata.generation
                && status.updated_replicas == Some(replicas)
                && status.current_revision == status.update_revision)
                .then_some(sts)
        },
    )
    .await
}

/// Records every pod watch event as (type, name, ready) from the moment it is called.
async fn record_pod_events(client: Client) -> Arc<Mutex<Vec<(String, String, bool)>>> {
    let events = Arc::new(Mutex::new(Vec::new()));
    let sink = events.clone();
    let api: Api<Pod> = Api::default_namespaced(client);
    let (synced_tx, synced_rx) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        let mut synced = Some(synced_tx);
        let stream = watcher(api, watcher::Config::default()).default_backoff();
        futures::pin_mut!(stream);
        while let Some(Ok(event)) = stream.next().await {
            match event {
                watcher::Event::InitDone => {
                    if let Some(tx) = synced.take() {
                        let _ = tx.send(());
                    }
                }
                watcher::Event::Apply(pod) | watcher::Event::InitApply(pod) => {
                    sink.lock()
                        .unwrap()
                        .push(("apply".into(), pod.name_any(), is_ready(&pod)));
                }
                watcher::Event::Delete(pod) => {
                    sink.lock()
                        .unwrap()
                        .push(("delete".into(), pod.name_any(), false));
                }
                watcher::Event::Init => {}
            }
        }
    });
    synced_rx.await.unwrap();
    events
}

#[tokio::test]
async fn ordered_ready_statefulset_comes_up_in_order() {
    let sim = start(SimOptions {
        pod_start_delay: Duration::from_millis(150),
        ..SimOptions::default()
    })
    .await;
    let client = sim.client();
    let events = record_pod_events(client.clone()).await;
    let api: Api<StatefulSet> = Api::default_namespaced(client.clone());
    api.create(
        &PostParams::default(),
        &statefulset("web", 3, "nginx:1.25", json!({})),
    )
    .await
    .unwrap();
    let sts = wait_sts_ready(&api, "web", 3).await;

    // Each pod appears only after the previous one was Ready.
    let events = events.lock().unwrap().clone();
    let first_seen = |name: &str| events.iter().position(|(_, n, _)| n == name).unwrap();
    let first_ready = |name: &str| events.iter().position(|(_, n, r)| n == name && *r).unwrap();
    assert!(
        first_ready("web-0") < first_seen("web-1"),
        "web-1 created before web-0 was Ready: {events:?}"
    );
    assert!(
        first_ready("web-1") < first_seen("web-2"),
        "web-2 created before web-1 was Ready: {events:?}"
    );

    let status = sts.status.unwrap();
    assert_eq!(status.replicas, 3);
    assert_eq!(status.available_replicas, Some(3));
    assert_eq!(status.current_replicas, Some(3));
    let revision = status.update_revision.unwrap();

    let pods: Api<Pod> = Api::default_namespaced(client.clone());
    for ordinal in 0..3 {
        let name = format!("web-{ordinal}");
        let pod = pods.get(&name).await.unwrap();
        let labels = pod.labels();
        assert_eq!(labels["controller-revision-hash"], revision);
        assert_eq!(labels["statefulset.kubernetes.io/pod-name"], name);
        assert_eq!(labels["apps.kubernetes.io/pod-index"], ordinal.to_string());
        let owner = &pod.owner_references()[0];
        assert_eq!(
            (owner.kind.as_str(), owner.name.as_str()),
            ("StatefulSet", "web")
        );
        assert_eq!(
            (owner.controller, owner.block_owner_deletion),
            (Some(true), Some(true))
        );
        let status = pod.status.unwrap();
        assert_eq!(status.phase.as_deref(), Some("Running"));
        assert_eq!(
            pod.spec.unwrap().node_name.as_deref(),
            Some("kube-sim-node")
        );
        let cs = &status.container_statuses.unwrap()[0];
        assert_eq!(cs.image, "nginx:1.25");
        assert!(cs.image_id.starts_with("sha256:"));
    }
    let ips: std::collections::BTreeSet<String> = pods
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .iter()
        .map(|p| p.status.as_ref().unwrap().pod_ip.clone().unwrap())
        .collect();
    assert_eq!(ips.len(), 3, "pod IPs are distinct: {ips:?}");
    assert!(
        ips.iter()
            .all(|ip| ip.starts_with("127.") && ip != "127.0.0.1")
    );

    let claims: Api<PersistentVolumeClaim> = Api::default_namespaced(client.clone());
    for ordinal in 0..3 {
        let claim = claims.get(&format!("data-web-{ordinal}")).await.unwrap();
        assert_eq!(claim.labels()["app"], "web");
        let status = claim.status.unwrap_or_default();
        assert_eq!(status.phase.as_deref(), Some("Bound"), "data-web-{ordinal}");
        assert_eq!(status.capacity.unwrap()["storage"].0, "1Gi");
    }

    // Ordered scale down removes the highest ordinal; its PVC stays.
    api.patch(
        "web",
        &PatchParams::default(),
        &Patch::Merge(&json!({"spec": {"replicas": 2}})),
    )
    .await
    .unwrap();
    wait_for("web-2 to go", || async {
        pods.get_opt("web-2").await.unwrap().is_none().then_some(())
    })
    .await;
    assert!(pods.get_opt("web-1").await.unwrap().is_some());
    assert!(
        claims.get_opt("data-web-2").await.unwrap().is_some(),
        "PVCs are kept when pods go"
    );
    sim.shutdown().await;
}

/// A set deleted and created again under the same name while its old pods still terminate: the
/// new set's first pod creations conflict with the old pods, and the controller must try again
/// once they are gone (its own inputs did not change in between).
#[tokio::test]
async fn recreated_statefulset_replaces_pods_still_terminating() {
    let sim = start(SimOptions::default()).await;
    let client = sim.client();
    let api: Api<StatefulSet> = Api::default_namespaced(client.clone());
    let pods: Api<Pod> = Api::default_namespaced(client.clone());
    api.create(
        &PostParams::default(),
        &statefulset("db", 2, "db:1", json!({})),
    )
    .await
    .unwrap();
    wait_sts_ready(&api, "db", 2).await;
    let old: BTreeMap<String, String> = pods
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .iter()
        .map(|p| (p.name_any(), p.uid().unwrap()))
        .collect();
    api.delete("db", &DeleteParams::background()).await.unwrap();
    api.create(
        &PostParams::default(),
        &statefulset("db", 2, "db:1", json!({})),
    )
    .await
    .unwrap();
    wait_sts_ready(&api, "db", 2).await;
    for (name, uid) in &old {
        let pod = pods.get(name).await.unwrap();
        assert_ne!(pod.uid().as_ref(), Some(uid), "{name} is a new pod");
        assert!(is_ready(&pod), "{name} is Ready");
    }
}

#[tokio::test]
async fn on_delete_update_reaches_only_deleted_pods() {
    let sim = start(SimOptions::default()).await;
    let client = sim.client();
    let api: Api<StatefulSet> = Api::default_namespaced(client.clone());
    let pods: Api<Pod> = Api::default_namespaced(client.clone());
    let claims: Api<PersistentVolumeClaim> = Api::default_namespaced(client.clone());
    let sts = statefulset(
        "db",
        3,
        "db:1",
        json!({"updateStrategy": {"type": "OnDelete"}}),
    );
    api.create(&PostParams::default(), &sts).await.unwrap();
    let before = wait_sts_ready(&api, "db", 3).await;
    let old_revision = before.status.unwrap().update_revision.unwrap();
    let claim_uid = claims.get("data-db-1").await.unwrap().uid();

    let patch = json!({"spec": {"template": {"spec": {"containers": [{"name": "main", "image": "db:2"}]}}}});
    let changed = api
        .patch("db", &PatchParams::default(), &Patch::Strategic(&patch))
        .await
        .unwrap();
    // The controller has seen the change once it reports the new generation and revision.
    let status = wait_for("the new update revision", || async {
        let sts = api.get("db").await.ok()?;
        let status = sts.status?;
        (status.observed_generation == changed.metadata.generation
            && status.update_revision.as_deref() != Some(old_revision.as_str()))
        .then_some(status)
    })
    .await;
    assert_eq!(
        status.current_revision.as_deref(),
        Some(old_revision.as_str())
    );
    assert_eq!(status.updated_replicas, Some(0));
    for name in ["db-0", "db-1", "db-2"] {
        assert_eq!(
            image_of(&pods.get(name).await.unwrap()),
            "db:1",
            "{name} must keep its image"
        );
    }

    let old_uid = pods.get("db-1").await.unwrap().uid();
    pods.delete("db-1", &DeleteParams::default()).await.unwrap();
    let replacement = wait_for("db-1 to return Ready", || async {
        let pod = pods.get_opt("db-1").await.ok()??;
        (pod.uid() != old_uid && is_ready(&pod)).then_some(pod)
    })
    .await;
    assert_eq!(image_of(&replacement), "db:2");
    assert_eq!(
        replacement.labels()["controller-revision-hash"],
        status.update_revision.clone().unwrap()
    );
    assert_eq!(
        claims.get("data-db-1").await.unwrap().uid(),
        claim_uid,
        "the PVC is reused"
    );
    for name in ["db-0", "db-2"] {
        assert_eq!(
            image_of(&pods.get(name).await.unwrap()),
            "db:1",
            "{name} was not deleted"
        );
    }
    let status = wait_for("updatedReplicas 1", || async {
        let status = api.get("db").await.ok()?.status?;
        (status.updated_replicas == Some(1) && status.ready_replicas == Some(3)).then_some(status)
    })
    .await;
    assert_eq!(status.current_replicas, Some(2));
    sim.shutdown().await;
}

#[tokio::test]
async fn rolling_update_reaches_all_pods_highest_ordinal_first() {
    let sim = start(SimOptions::default()).await;
    let client = sim.client();
    let api: Api<StatefulSet> = Api::default_namespaced(client.clone());
    let pods: Api<Pod> = Api::default_namespaced(client.clone());
    api.create(
        &PostParams::default(),
        &statefulset("app", 3, "app:1", json!({})),
    )
    .await
    .unwrap();
    let before = wait_sts_ready(&api, "app", 3).await;
    let old_revision = before.status.unwrap().update_revision.unwrap();
    let events = record_pod_events(client.clone()).await;

    let patch = json!({"spec": {"template": {"spec": {"containers": [{"name": "main", "image": "app:2"}]}}}});
    api.patch("app", &PatchParams::default(), &Patch::Strategic(&patch))
        .await
        .unwrap();
    let after = wait_for("the rolling update to finish", || async {
        let sts = api.get("app").await.ok()?;
        let status = sts.status.clone()?;
        (status.update_revision.as_deref() != Some(old_revision.as_str())
            && status.current_revision == status.update_revision
            && status.updated_replicas == Some(3)
            && status.ready_replicas == Some(3))
        .then_some(sts)
    })
    .await;
    for name in ["app-0", "app-1", "app-2"] {
        assert_eq!(image_of(&pods.get(name).await.unwrap()), "app:2");
    }
    let deleted: Vec<String> = events
        .lock()
        .unwrap()
        .iter()
        .filter(|(kind, _, _)| kind == "delete")
        .map(|(_, name, _)| name.clone())
        .collect();
    assert_eq!(
        deleted,
        ["app-2", "app-1", "app-0"],
        "highest ordinal first, one at a time"
    );
    let status = after.status.unwrap();
    assert_eq!(status.current_replicas, Some(3));
    // Both templates are recorded as ControllerRevisions, numbered in order.
    let revisions: Api<k8s_openapi::api::apps::v1::ControllerRevision> =
        Api::default_namespaced(client.clone());
    let mut recorded: Vec<(String, i64)> = revisions
        .list(&ListParams::default().labels("app=app"))
        .await
        .unwrap()
        .items
        .into_iter()
        .map(|r| (r.name_any(), r.revision))
        .collect();
    recorded.sort_by_key(|(_, n)| *n);
    assert_eq!(
        recorded,
        [
            (old_revision.clone(), 1),
            (status.update_revision.clone().unwrap(), 2)
        ]
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn unpullable_image_leaves_pod_in_image_pull_backoff() {
    let sim = start(SimOptions {
        unpullable_images: vec!["registry.invalid/*".to_owned()],
        ..SimOptions::default()
    })
    .await;
    let client = sim.client();
    let api: Api<StatefulSet> = Api::default_namespaced(client.clone());
    let pods: Api<Pod> = Api::default_namespaced(client.clone());
    api.create(
        &PostParams::default(),
        &statefulset("bad", 1, "registry.invalid/db:9", json!({})),
    )
    .await
    .unwrap();
    let waiting_reason = |pod: &Pod| {
        pod.status.as_ref()?.container_statuses.as_ref()?[0]
            .state
            .as_ref()?
            .waiting
            .as_ref()?
            .reason
            .clone()
    };
    wait_for("ErrImagePull", || async {
        let pod = pods.get_opt("bad-0").await.ok()??;
        (waiting_reason(&pod).as_deref() == Some("ErrImagePull")).then_some(())
    })
    .await;
    let pod = wait_for("ImagePullBackOff", || async {
        let pod = pods.get_opt("bad-0").await.ok()??;
        (waiting_reason(&pod).as_deref() == Some("ImagePullBackOff")).then_some(pod)
    })
    .await;
    assert!(!is_ready(&pod));
    assert_eq!(pod.status.unwrap().phase.as_deref(), Some("Pending"));
    let status = wait_for("the StatefulSet status", || async {
        let sts = api.get("bad").await.ok()?;
        let status = sts.status?;
        (status.observed_generation == sts.metadata.generation && status.replicas == 1)
            .then_some(status)
    })
    .await;
    assert_eq!(
        status.ready_replicas,
        Some(0),
        "the StatefulSet is not Ready"
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn eviction_honours_pod_disruption_budgets() {
    let sim = start(SimOptions::default()).await;
    let client = sim.client();
    let strict = client_without_retries(&sim);
    let api: Api<StatefulSet> = Api::default_namespaced(client.clone());
    let pods: Api<Pod> = Api::default_namespaced(strict.clone());
    let pdbs: Api<PodDisruptionBudget> = Api::default_namespaced(client.clone());
    api.create(
        &PostParams::default(),
        &statefulset("ev", 3, "ev:1", json!({"podManagementPolicy": "Parallel"})),
    )
    .await
    .unwrap();
    wait_sts_ready(&api, "ev", 3).await;
    let pdb: PodDisruptionBudget = serde_json::from_value(json!({
        "metadata": {"name": "ev"},
        "spec": {"minAvailable": 3, "selector": {"matchLabels": {"app": "ev"}}}
    }))
    .unwrap();
    pdbs.create(&PostParams::default(), &pdb).await.unwrap();
    let status = wait_for("PDB status", || async {
        let status = pdbs.get("ev").await.ok()?.status?;
        (status.expected_pods == 3 && status.current_healthy == 3).then_some(status)
    })
    .await;
    assert_eq!((status.desired_healthy, status.disruptions_allowed), (3, 0));
    let condition = status
        .conditions
        .unwrap()
        .into_iter()
        .find(|c| c.type_ == "DisruptionAllowed")
        .unwrap();
    assert_eq!(
        (condition.status.as_str(), condition.reason.as_str()),
        ("False", "InsufficientPods")
    );

    match pods.evict("ev-0", &EvictParams::default()).await {
        Err(kube::Error::Api(status)) => assert_eq!(status.code, 429, "{status:?}"),
        other => panic!("eviction breaking the PDB must fail with 429, got {other:?}"),
    }
    assert!(
        pods.get("ev-0")
            .await
            .unwrap()
            .metadata
            .deletion_timestamp
            .is_none()
    );

    pdbs.patch(
        "ev",
        &PatchParams::default(),
        &Patch::Merge(&json!({"spec": {"minAvailable": 2}})),
    )
    .await
    .unwrap();
    wait_for("a disruption to be allowed", || async {
        let status = pdbs.get("ev").await.ok()?.status?;
        (status.disruptions_allowed == 1 && status.desired_healthy == 2).then_some(())
    })
    .await;
    let old_uid = pods.get("ev-0").await.unwrap().uid();
    pods.evict("ev-0", &EvictParams::default())
        .await
        .expect("an allowed eviction succeeds");
    wait_for("ev-0 to come back Ready", || async {
        let pod = pods.get_opt("ev-0").await.ok()??;
        (pod.uid() != old_uid && is_ready(&pod)).then_some(())
    })
    .await;
    wait_for("the PDB to recover", || async {
        let status = pdbs.get("ev").await.ok()?.status?;
        (status.current_healthy == 3 && status.disruptions_allowed == 1).then_some(())
    })
    .await;
    sim.shutdown().await;
}

/// A StatefulSet `<db>-<kind>` of `replicas` Parallel, OnDelete SingleStore `kind` nodes
/// (`aggregator` or `leaf`) shaped as the provisioner builds them: a `singlestore` container with
/// the root credentials of Secret `<db>-auth`, the `singlestore-coordinator` sidecar and a `data`
/// volume per pod.
fn singlestore_set(db: &str, kind: &str, replicas: i32) -> StatefulSet {
    let labels = json!({
        "app.kubernetes.io/name": "singlestores.kubedb.com",
        "app.kubernetes.io/instance": db,
        "kubedb.com/node-type": kind
    });
    let secret = |key: &str| json!({"secretKeyRef": {"name": format!("{db}-auth"), "key": key}});
    serde_json::from_value(json!({
        "metadata": {"name": format!("{db}-{kind}")},
        "spec": {
            "replicas": replicas,
            "serviceName": format!("{db}-pods"),
            "podManagementPolicy": "Parallel",
            "updateStrategy": {"type": "OnDelete"},
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [
                    {
                        "name": "singlestore",
                        "image": "ghcr.io/appscode-images/singlestore-node:alma-8.7.10-95e2357384",
                        "env": [
                            {"name": "ROOT_USERNAME", "valueFrom": secret("username")},
                            {"name": "ROOT_PASSWORD", "valueFrom": secret("password")}
                        ]
                    },
                    {"name": "singlestore-coordinator", "image": "ghcr.io/kubedb/singlestore-coordinator:v0.5.0"}
                ]}
            },
            "volumeClaimTemplates": [{
                "metadata": {"name": "data"},
                "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}
            }]
        }
    }))
    .unwrap()
}

/// `GET /sim/singlestore`.
async fn singlestore_summary(client: &Client) -> serde_json::Value {
    let req = axum::http::Request::get("/sim/singlestore")
        .body(Vec::new())
        .unwrap();
    serde_json::from_str(&client.request_text(req).await.unwrap()).unwrap()
}

#[tokio::test]
async fn singlestore_nodes_speak_mysql_on_their_pod_ips_and_kube_sim_labels_no_roles() {
    use mysql_async::prelude::Queryable;
    use mysql_async::{Conn, OptsBuilder};

    let sim = start(SimOptions::default()).await;
    let client = sim.client();
    let sets: Api<StatefulSet> = Api::default_namespaced(client.clone());
    let pods: Api<Pod> = Api::default_namespaced(client.clone());
    let claims: Api<PersistentVolumeClaim> = Api::default_namespaced(client.clone());
    let secrets: Api<Secret> = Api::default_namespaced(client.clone());
    let auth: Secret = serde_json::from_value(
        json!({"metadata": {"name": "sdb-auth"}, "stringData": {"username": "root", "password": "pw"}}),
    )
    .unwrap();
    secrets.create(&PostParams::default(), &auth).await.unwrap();
    for kind in ["aggregator", "leaf"] {
        sets.create(&PostParams::default(), &singlestore_set("sdb", kind, 2))
            .await
            .unwrap();
    }
    wait_sts_ready(&sets, "sdb-aggregator", 2).await;
    wait_sts_ready(&sets, "sdb-leaf", 2).await;
    let ip = |pod: &'static str| {
        let pods = pods.clone();
        async move { pods.get(pod).await.ok()?.status?.pod_ip }
    };
    let opts = |ip: String, password: &str| {
        OptsBuilder::default()
            .ip_or_hostname(ip)
            .tcp_port(3306)
            .user(Some("root"))
            .pass(Some(password))
            .prefer_socket(false)
    };
    let connect = |pod: &'static str| {
        let ip = ip(pod);
        async move { Conn::new(opts(ip.await?, "pw")).await.ok() }
    };
    let mut master = wait_for("sdb-aggregator-0 to accept logins", || {
        connect("sdb-aggregator-0")
    })
    .await;
    let host = |pod: &str| format!("{pod}.sdb-pods.default.svc");
    for sql in [
        "SET LICENSE = 'BDRmNjYwNzE0YjY0NDQ3ZDk4MjA3NDMwYWQ1ZGI3ZjQ='".to_owned(),
        format!("BOOTSTRAP AGGREGATOR '{}'", host("sdb-aggregator-0")),
        format!("ADD LEAF root:'pw'@'{}':3306", host("sdb-leaf-0")),
        format!("ADD LEAF root:'pw'@'{}':3306", host("sdb-leaf-1")),
        format!(
            "ADD AGGREGATOR root:'pw'@'{}':3306",
            host("sdb-aggregator-1")
        ),
        "CREATE DATABASE sales".to_owned(),
    ] {
        master
            .query_drop(&sql)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }
    // The child applies the master's position at a settle pass.
    let rows = |pod: &'static str, sql: &'static str| {
        let conn = connect(pod);
        async move {
            let mut conn = conn.await?;
            let rows: Vec<mysql_async::Row> = conn.query(sql).await.ok()?;
            conn.disconnect().await.ok()?;
            Some(rows)
        }
    };
    wait_for("the child to apply position 0:5", || async {
        let rows = rows("sdb-aggregator-1", "SHOW DATABASES EXTENDED").await?;
        let cluster = rows.first()?;
        (cluster.get::<String, _>("Role")? == "replica"
            && cluster.get::<String, _>("Position")? == "0:5")
            .then_some(())
    })
    .await;
    let mut child = connect("sdb-aggregator-1").await.unwrap();
    let one: Option<i64> = child.query_first("SELECT 1").await.unwrap();
    assert_eq!(one, Some(1));
    let leaves: Vec<mysql_async::Row> = child.query("SHOW LEAVES").await.unwrap();
    assert_eq!(leaves.len(), 2);
    let wrong = Conn::new(opts(ip("sdb-leaf-0").await.unwrap(), "nope"))
        .await
        .unwrap_err();
    assert!(
        matches!(&wrong, mysql_async::Error::Server(e) if e.code == 1045),
        "{wrong:?}"
    );

    // A node whose volume is marked down stays down when its pod comes back; it recovers once
    // the mark is gone.
    let down = json!({"metadata": {"annotations": {"kube-sim.io/singlestore-down": "true"}}});
    claims
        .patch(
            "data-sdb-leaf-0",
            &PatchParams::default(),
            &Patch::Merge(&down),
        )
        .await
        .unwrap();
    let old_uid = pods.get("sdb-leaf-0").await.unwrap().uid();
    pods.delete("sdb-leaf-0", &DeleteParams::default())
        .await
        .unwrap();
    let leaf_state = || async {
        rows("sdb-aggregator-0", "SHOW LEAVES")
            .await?
            .iter()
            .find(|r| r.get::<String, _>("Host").as_deref() == Some(&host("sdb-leaf-0")))?
            .get::<String, _>("State")
    };
    wait_for("sdb-leaf-0 back, its node down", || async {
        let pod = pods.get("sdb-leaf-0").await.ok()?;
        let state = leaf_state().await?;
        (pod.uid() != old_uid && is_ready(&pod) && state == "offline").then_some(())
    })
    .await;
    let up = json!({"metadata": {"annotations": {"kube-sim.io/singlestore-down": null}}});
    claims
        .patch(
            "data-sdb-leaf-0",
            &PatchParams::default(),
            &Patch::Merge(&up),
        )
        .await
        .unwrap();
    wait_for("sdb-leaf-0 online with its partitions", || async {
        let summary = singlestore_summary(&client).await;
        let node = summary["nodes"]
            .as_array()?
            .iter()
            .find(|n| n["pod"] == "sdb-leaf-0")?
            .clone();
        let partitions = node["partitions"].as_array()?;
        let online = leaf_state().await? == "online";
        (online
            && node["up"] == true
            && partitions.len() == 2
            && partitions.iter().all(|p| p["state"] == "online"))
        .then_some(())
    })
    .await;
    let summary = singlestore_summary(&client).await;
    let cluster = &summary["clusters"][0];
    assert_eq!(cluster["master"], host("sdb-aggregator-0"));
    assert_eq!(cluster["leaves"].as_array().unwrap().len(), 2);
    assert_eq!(cluster["databases"][0]["name"], "sales");
    assert_eq!(summary["nodes"].as_array().unwrap().len(), 4);

    // Roles are the agent's: kube-sim labels no SingleStore pod.
    let items = pods
        .list(&ListParams::default().labels("app.kubernetes.io/instance=sdb"))
        .await
        .unwrap()
        .items;
    assert_eq!(items.len(), 4);
    assert!(
        items
            .iter()
            .all(|p| !p.labels().contains_key("kubedb.com/role")),
        "{:?}",
        items.iter().map(|p| p.labels()).collect::<Vec<_>>()
    );
    master.disconnect().await.unwrap();
    child.disconnect().await.unwrap();
    sim.shutdown().await;
}

fn cm(kind: &str, plural: &str) -> ApiResource {
    ApiResource {
        group: "cert-manager.io".into(),
        version: "v1".into(),
        api_version: "cert-manager.io/v1".into(),
        kind: kind.into(),
        plural: plural.into(),
    }
}

fn ready_condition(obj: &DynamicObject) -> Option<String> {
    obj.data["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == "Ready")
        .and_then(|c| c["status"].as_str().map(str::to_owned))
}

fn parse_cert(pem: &[u8]) -> x509_parser::certificate::X509Certificate<'static> {
    let (_, pem) = x509_parser::pem::parse_x509_pem(pem).expect("PEM");
    let der: &'static [u8] = Box::leak(pem.contents.into_boxed_slice());
    x509_parser::parse_x509_certificate(der)
        .expect("an X.509 certificate")
        .1
}

#[tokio::test]
async fn self_signed_and_ca_issuers_issue_certificates() {
    let sim = start(SimOptions::default()).await;
    let client = sim.client();
    let issuers: Api<DynamicObject> =
        Api::default_namespaced_with(client.clone(), &cm("Issuer", "issuers"));
    let certs: Api<DynamicObject> =
        Api::default_namespaced_with(client.clone(), &cm("Certificate", "certificates"));
    let secrets: Api<Secret> = Api::default_namespaced(client.clone());
    let create = |api: &Api<DynamicObject>, res: ApiResource, value: serde_json::Value| {
        let api = api.clone();
        async move {
            let mut obj: DynamicObject = serde_json::from_value(value).unwrap();
            obj.types = Some(kube::api::TypeMeta {
                api_version: res.api_version.clone(),
                kind: res.kind.clone(),
            });
            api.create(&PostParams::default(), &obj).await.unwrap()
        }
    };
    create(
        &issuers,
        cm("Issuer", "issuers"),
        json!({"metadata": {"name": "selfsigned"}, "spec": {"selfSigned": {}}}),
    )
    .await;
    create(
        &certs,
        cm("Certificate", "certificates"),
        json!({"metadata": {"name": "root"}, "spec": {
            "secretName": "root-ca", "commonName": "sim-root", "isCA": true,
            "issuerRef": {"name": "selfsigned", "kind": "Issuer"}}}),
    )
    .await;
    wait_for("the selfSigned Issuer to be Ready", || async {
        (ready_condition(&issuers.get("selfsigned").await.ok()?)? == "True").then_some(())
    })
    .await;
    wait_for("the root Certificate to be Ready", || async {
        (ready_condition(&certs.get("root").await.ok()?)? == "True").then_some(())
    })
    .await;
    let root = secrets.get("root-ca").await.unwrap();
    assert_eq!(root.type_.as_deref(), Some("kubernetes.io/tls"));
    let data = root.data.unwrap();
    let root_cert = parse_cert(&data["tls.crt"].0);
    assert_eq!(root_cert.subject().to_string(), "CN=sim-root");
    assert!(root_cert.is_ca());
    assert!(
        data["tls.key"]
            .0
            .starts_with(b"-----BEGIN PRIVATE KEY-----")
    );
    assert_eq!(data["ca.crt"].0, data["tls.crt"].0);

    // A CA issuer from that secret signs a server certificate.
    create(
        &issuers,
        cm("Issuer", "issuers"),
        json!({"metadata": {"name": "ca"}, "spec": {"ca": {"secretName": "root-ca"}}}),
    )
    .await;
    create(
        &certs,
        cm("Certificate", "certificates"),
        json!({"metadata": {"name": "server"}, "spec": {
            "secretName": "server-cert", "commonName": "db", "dnsNames": ["db.default.svc"],
            "subject": {"organizations": ["kubedb"]},
            "issuerRef": {"name": "ca", "kind": "Issuer", "group": "cert-manager.io"}}}),
    )
    .await;
    let server = wait_for("the server Certificate to be Ready", || async {
        let c = certs.get("server").await.ok()?;
        (ready_condition(&c)? == "True").then_some(c)
    })
    .await;
    assert!(server.data["status"]["notAfter"].is_string());
    let data = secrets.get("server-cert").await.unwrap().data.unwrap();
    let cert = parse_cert(&data["tls.crt"].0);
    assert_eq!(cert.issuer().to_string(), "CN=sim-root");
    cert.verify_signature(Some(root_cert.public_key()))
        .expect("signed by the CA");
    assert_eq!(
        data["ca.crt"].0,
        secrets.get("root-ca").await.unwrap().data.unwrap()["tls.crt"].0
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn no_cert_manager_serves_no_certificates() {
    let sim = start(SimOptions {
        no_cert_manager: true,
        ..SimOptions::default()
    })
    .await;
    let certs: Api<DynamicObject> =
        Api::default_namespaced_with(sim.client(), &cm("Certificate", "certificates"));
    match certs.list(&ListParams::default()).await {
        Err(kube::Error::Api(status)) => assert_eq!(status.code, 404),
        other => panic!("expected 404 without the cert-manager stand-in, got {other:?}"),
    }
    sim.shutdown().await;
}

/// Writes sent by simulated components, per user agent.
fn sim_writes(sim: &KubeSim) -> BTreeMap<String, u64> {
    let mut writes = BTreeMap::new();
    for row in sim.requests() {
        let write = matches!(
            row.verb.as_str(),
            "create" | "update" | "patch" | "delete" | "deletecollection"
        );
        if write && row.user_agent.starts_with("kube-sim/") {
            *writes.entry(row.user_agent.clone()).or_default() += row.count;
        }
    }
    writes
}

#[tokio::test]
async fn deployments_services_and_readiness_override() {
    let sim = start(SimOptions::default()).await;
    let client = sim.client();
    let deployments: Api<k8s_openapi::api::apps::v1::Deployment> =
        Api::default_namespaced(client.clone());
    let services: Api<k8s_openapi::api::core::v1::Service> =
        Api::default_namespaced(client.clone());
    let endpoints: Api<k8s_openapi::api::core::v1::Endpoints> =
        Api::default_namespaced(client.clone());
    let slices: Api<k8s_openapi::api::discovery::v1::EndpointSlice> =
        Api::default_namespaced(client.clone());
    let pods: Api<Pod> = Api::default_namespaced(client.clone());
    let deployment = serde_json::from_value(json!({
        "metadata": {"name": "api"},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "api"}},
            "template": {
                "metadata": {"labels": {"app": "api"}},
                "spec": {"containers": [{"name": "api", "image": "api:1", "ports": [{"name": "http", "containerPort": 8080}]}]}
            }
        }
    }))
    .unwrap();
    deployments
        .create(&PostParams::default(), &deployment)
        .await
        .unwrap();
    let service = serde_json::from_value(json!({
        "metadata": {"name": "api"},
        "spec": {"selector": {"app": "api"}, "ports": [{"name": "web", "port": 80, "targetPort": "http"}]}
    }))
    .unwrap();
    services
        .create(&PostParams::default(), &service)
        .await
        .unwrap();

    let api_pods = || async {
        pods.list(&ListParams::default().labels("app=api"))
            .await
            .unwrap()
            .items
    };
    wait_for("the Deployment to be available", || async {
        let status = deployments.get("api").await.ok()?.status?;
        (status.available_replicas == Some(2) && status.updated_replicas == Some(2)).then_some(())
    })
    .await;
    for pod in api_pods().await {
        let owner = &pod.owner_references()[0];
        assert_eq!(
            (owner.kind.as_str(), owner.name.as_str()),
            ("Deployment", "api")
        );
        assert!(pod.labels().contains_key("pod-template-hash"));
    }
    let ready_endpoints = |n: usize| {
        let (endpoints, slices) = (endpoints.clone(), slices.clone());
        async move {
            let ep = endpoints.get_opt("api").await.ok()??;
            let subset = ep.subsets?.into_iter().next()?;
            let ready = subset.addresses.unwrap_or_default().len();
            let slice = slices.get_opt("api-kube-sim").await.ok()??;
            let slice_ready = slice
                .endpoints
                .iter()
                .filter(|e| e.conditions.as_ref().and_then(|c| c.ready) == Some(true))
                .count();
            let port = subset.ports?.first()?.port;
            (ready == n && slice_ready == n && port == 8080).then_some(())
        }
    };
    wait_for("two ready endpoints on port 8080", || ready_endpoints(2)).await;

    // The readiness override takes one pod out of its Service.
    let victim = api_pods().await[0].name_any();
    let annotate = json!({"metadata": {"annotations": {"sim.kube-sim.dev/ready": "false"}}});
    pods.patch(&victim, &PatchParams::default(), &Patch::Merge(&annotate))
        .await
        .unwrap();
    wait_for("the overridden pod to be not Ready", || async {
        (!is_ready(&pods.get(&victim).await.ok()?)).then_some(())
    })
    .await;
    wait_for("one ready endpoint", || ready_endpoints(1)).await;
    wait_for("the Deployment to count one Ready pod", || async {
        (deployments.get("api").await.ok()?.status?.ready_replicas == Some(1)).then_some(())
    })
    .await;
    let unannotate = json!({"metadata": {"annotations": {"sim.kube-sim.dev/ready": null}}});
    pods.patch(&victim, &PatchParams::default(), &Patch::Merge(&unannotate))
        .await
        .unwrap();
    wait_for("two ready endpoints again", || ready_endpoints(2)).await;

    // A template change replaces the pods.
    let patch = json!({"spec": {"template": {"spec": {"containers": [{"name": "api", "image": "api:2"}]}}}});
    deployments
        .patch("api", &PatchParams::default(), &Patch::Strategic(&patch))
        .await
        .unwrap();
    wait_for("every pod to run api:2", || async {
        let items = api_pods().await;
        let status = deployments.get("api").await.ok()?.status?;
        (items.len() == 2
            && items.iter().all(|p| image_of(p) == "api:2" && is_ready(p))
            && status.available_replicas == Some(2)
            && status.updated_replicas == Some(2))
        .then_some(())
    })
    .await;
    wait_for("two ready endpoints after the rollout", || {
        ready_endpoints(2)
    })
    .await;

    // Each component writes as itself, and a settled cluster writes nothing. The observation
    // window is the assertion here (no condition to wait for), so it is a fixed period.
    let before = sim_writes(&sim);
    for agent in [
        "kube-sim/kubelet",
        "kube-sim/deployment",
        "kube-sim/endpoints",
    ] {
        assert!(
            before.get(agent).is_some_and(|n| *n > 0),
            "{agent} wrote nothing: {before:?}"
        );
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(sim_writes(&sim), before, "no writes at steady state");
    sim.shutdown().await;
}

#[tokio::test]
async fn statefulset_adopts_matching_orphan_pods() {
    let sim = start(SimOptions::default()).await;
    let client = sim.client();
    let api: Api<StatefulSet> = Api::default_namespaced(client.clone());
    let pods: Api<Pod> = Api::default_namespaced(client.clone());
    let orphan: Pod = serde_json::from_value(json!({
        "metadata": {"name": "keep-0", "labels": {"app": "keep"}},
        "spec": {"containers": [{"name": "main", "image": "keep:1"}]}
    }))
    .unwrap();
    let orphan = pods.create(&PostParams::default(), &orphan).await.unwrap();
    let sts = api
        .create(
            &PostParams::default(),
            &statefulset(
                "keep",
                2,
                "keep:1",
                json!({"updateStrategy": {"type": "OnDelete"}}),
            ),
        )
        .await
        .unwrap();
    wait_for("keep-1 to be Ready", || async {
        is_ready(&pods.get_opt("keep-1").await.ok()??).then_some(())
    })
    .await;
    let adopted = pods.get("keep-0").await.unwrap();
    assert_eq!(
        adopted.uid(),
        orphan.uid(),
        "the orphan is adopted, not replaced"
    );
    let owner = &adopted.owner_references()[0];
    assert_eq!(
        (owner.uid.as_str(), owner.controller),
        (sts.uid().unwrap().as_str(), Some(true))
    );
    sim.shutdown().await;
}
