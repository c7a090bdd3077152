//! The Kubernetes side against kube-sim's API server (bare, no simulated controllers): Lease
//! writes with optimistic concurrency, the marker, this pod's label, the petset's pods, Events.

use std::collections::BTreeMap;
use std::time::Duration;

use db_agent::agent::{Cluster, ClusterError, LeaseWrite};
use db_agent::http::{self, Report, Status};
use db_agent::kube::{AG_CREATED_ANNOTATION, FIELD_MANAGER, KubeCluster, Names};
use db_agent::metrics::Metrics;
use db_agent::mssql::decide::RoleLabel;
use db_agent::mssql::decide::{InstanceSetup, Local, LocalState};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Container, Pod, PodSpec};
use k8s_openapi::api::events::v1::Event;
use kube::api::{Api, ListParams, ObjectMeta, PostParams};
use kube_sim::{KubeSim, KubeSimOptions};

/// Every pod's IP is 127.0.0.1 here, so every peer is looked up at `port`, which serves `/state`.
fn names(pod: &str, port: u16) -> Names {
    Names::mssql(pod, "default", "ag", "agx", port)
}

/// Creates a pod and, with `ip`, gives it that pod IP in its status.
async fn create_pod(client: &kube::Client, name: &str, set: &str, ip: Option<&str>) {
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    pods.create(&PostParams::default(), &pod(name, set))
        .await
        .unwrap();
    if let Some(ip) = ip {
        let patch = serde_json::json!({"status": {"podIP": ip}});
        pods.patch_status(
            name,
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(&patch),
        )
        .await
        .unwrap();
    }
}

/// A port nothing listens on.
fn closed_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn pod(name: &str, petset: &str) -> Pod {
    let mut labels: BTreeMap<String, String> =
        api::names::selector_labels(api::names::MSSQL_RESOURCE_NAME, "ag");
    labels.insert(api::names::LABEL_PETSET.into(), petset.into());
    Pod {
        metadata: ObjectMeta {
            name: Some(name.into()),
            labels: Some(labels),
            ..ObjectMeta::default()
        },
        spec: Some(PodSpec {
            containers: vec![Container {
                name: "mssql".into(),
                image: Some("mssql".into()),
                ..Container::default()
            }],
            ..PodSpec::default()
        }),
        ..Pod::default()
    }
}

async fn start() -> (KubeSim, kube::Client) {
    operator_common::install_crypto_provider();
    let sim = KubeSim::start(KubeSimOptions::default()).await.unwrap();
    let client = sim.client();
    for (name, set) in [
        ("ag-0", "ag"),
        ("ag-1", "ag"),
        ("ag-2", "ag"),
        ("ag-arbiter-0", "ag-arbiter"),
    ] {
        create_pod(&client, name, set, Some("127.0.0.1")).await;
    }
    (sim, client)
}

fn cluster(client: &kube::Client, pod: &str) -> KubeCluster {
    cluster_with_peers_on(client, pod, closed_port())
}

fn cluster_with_peers_on(client: &kube::Client, pod: &str, port: u16) -> KubeCluster {
    KubeCluster::new(
        client.clone(),
        names(pod, port),
        Duration::from_secs(10),
        Duration::from_millis(200),
    )
}

#[tokio::test]
async fn two_agents_race_for_the_lease_and_one_wins() {
    let (sim, client) = start().await;
    let mut a = cluster(&client, "ag-0");
    let mut b = cluster(&client, "ag-1");

    assert_eq!(a.read_lease().await.unwrap(), None);
    // Both decided on "absent": the first create wins, the second conflicts.
    a.write_lease(LeaseWrite::Acquire, None).await.unwrap();
    assert_eq!(
        b.write_lease(LeaseWrite::Acquire, None).await,
        Err(ClusterError::Conflict)
    );
    let seen_by_b = b.read_lease().await.unwrap().unwrap();
    assert_eq!(seen_by_b.holder.as_deref(), Some("ag-0"));
    assert_eq!(seen_by_b.duration, Duration::from_secs(10));

    // a renews: b's view is now stale and any write from it conflicts.
    a.write_lease(LeaseWrite::Renew, Some(&seen_by_b))
        .await
        .unwrap();
    let renewed = a.read_lease().await.unwrap().unwrap();
    assert_ne!(
        renewed.version, seen_by_b.version,
        "a renewal changes the version"
    );
    assert_eq!(
        b.write_lease(LeaseWrite::Acquire, Some(&seen_by_b)).await,
        Err(ClusterError::Conflict)
    );

    a.write_lease(LeaseWrite::MarkAgCreated, Some(&renewed))
        .await
        .unwrap();
    let marked = a.read_lease().await.unwrap().unwrap();
    a.write_lease(LeaseWrite::Release, Some(&marked))
        .await
        .unwrap();
    let released = b.read_lease().await.unwrap().unwrap();
    assert_eq!(released.holder, None);
    assert!(released.ag_created, "the marker outlives the holder");
    b.write_lease(LeaseWrite::Acquire, Some(&released))
        .await
        .unwrap();

    let lease: Lease = Api::namespaced(client.clone(), "default")
        .get("ag-primary")
        .await
        .unwrap();
    let spec = lease.spec.unwrap();
    assert_eq!(spec.holder_identity.as_deref(), Some("ag-1"));
    assert_eq!(spec.lease_transitions, Some(2));
    assert_eq!(
        lease.metadata.annotations.unwrap()[AG_CREATED_ANNOTATION],
        "agx"
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn an_agent_labels_only_its_own_pod_and_removes_the_label() {
    let (sim, client) = start().await;
    let mut a = cluster(&client, "ag-1");
    assert_eq!(a.own_label().await.unwrap(), None);
    a.set_label(Some(RoleLabel::Primary)).await.unwrap();
    assert_eq!(a.own_label().await.unwrap(), Some(RoleLabel::Primary));
    a.set_label(Some(RoleLabel::Secondary)).await.unwrap();

    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let labelled = pods
        .list(&ListParams::default().labels("kubedb.com/role"))
        .await
        .unwrap();
    let names: Vec<_> = labelled
        .items
        .iter()
        .filter_map(|p| p.metadata.name.clone())
        .collect();
    assert_eq!(names, ["ag-1"]);
    let me = pods.get("ag-1").await.unwrap();
    assert_eq!(me.metadata.labels.unwrap()["kubedb.com/role"], "secondary");
    let managers: Vec<_> = me
        .metadata
        .managed_fields
        .unwrap_or_default()
        .into_iter()
        .filter_map(|m| m.manager)
        .collect();
    assert!(managers.iter().any(|m| m == FIELD_MANAGER), "{managers:?}");

    a.set_label(None).await.unwrap();
    assert_eq!(a.own_label().await.unwrap(), None);
    sim.shutdown().await;
}

#[tokio::test]
async fn peers_are_the_other_members_of_the_petset_with_their_reports() {
    let (sim, client) = start().await;
    // ag-0's agent serves /state; every peer URL reaches it, and only the report whose name
    // matches the peer counts.
    let status = Status::default();
    let report = Report {
        name: "ag-0".into(),
        local: Local::Up(LocalState {
            setup: InstanceSetup::DONE,
            ag: None,
        }),
    };
    status.set(Err("secondary not synchronized".into()), report.clone());
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let (addr, server) = http::serve(
        "127.0.0.1:0".parse().unwrap(),
        status,
        Metrics::new().unwrap(),
        async {
            let _ = rx.await;
        },
    )
    .await
    .unwrap();

    // ag-3 is being re-created: a gap in the ordinals does not end the member list. ag-4 has no
    // IP yet, so it is a member without a report.
    create_pod(&client, "ag-4", "ag", None).await;
    let mut a = cluster_with_peers_on(&client, "ag-1", addr.port());
    let now = Duration::from_secs(30);
    let peers = a.peers(now).await;
    let names: Vec<_> = peers.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(
        names,
        ["ag-0", "ag-2", "ag-4"],
        "itself and the arbiter excluded"
    );
    assert_eq!(peers[0].state.as_ref(), Some(&report.local));
    assert_eq!(peers[0].age, Some(Duration::ZERO), "fetched in this round");
    // A later round where ag-0 does not answer keeps the old report, now older.
    tx.send(()).unwrap();
    server.await.unwrap().unwrap();
    let later = a.peers(now + Duration::from_secs(3)).await;
    assert_eq!(later[0].state.as_ref(), Some(&report.local));
    assert_eq!(later[0].age, Some(Duration::from_secs(3)));
    assert_eq!(peers[1].state, None, "ag-2's answer carried another name");
    assert_eq!(peers[2].state, None, "ag-4 has no IP to ask");

    let mut b = cluster(&client, "ag-2");
    let nobody = b.peers(now).await;
    assert!(nobody.iter().all(|p| p.state.is_none() && p.age.is_none()));
    sim.shutdown().await;
}

#[tokio::test]
async fn a_failover_is_recorded_as_an_event_on_the_database() {
    let (sim, client) = start().await;
    let mut a = cluster(&client, "ag-2");
    a.failover_event(Some("ag-0"), "ag-2 promoted to primary")
        .await;
    let events: Api<Event> = Api::namespaced(client.clone(), "default");
    let list = events.list(&ListParams::default()).await.unwrap();
    let event = list
        .items
        .iter()
        .find(|e| e.reason.as_deref() == Some("Failover"))
        .expect("a Failover event");
    let regarding = event.regarding.clone().unwrap();
    assert_eq!(regarding.kind.as_deref(), Some("MSSQLServer"));
    assert_eq!(regarding.name.as_deref(), Some("ag"));
    assert!(
        event
            .note
            .as_deref()
            .unwrap_or_default()
            .contains("held by ag-0"),
        "{event:?}"
    );
    sim.shutdown().await;
}
