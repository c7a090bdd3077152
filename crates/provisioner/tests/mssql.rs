//! MSSQLServer topologies against kube-sim with the real controllers.

mod common;

use std::time::Instant;

use api::DatabasePhase;
use api::MSSQLServer;
use common::*;
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{Secret, Service};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::ResourceExt;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn standalone_reaches_ready_with_its_children() {
    let env = Env::start().await;
    let started = Instant::now();
    let db = create(&env, &mssql("ms", "2022-cu22", None)).await;
    let ready: MSSQLServer = wait_phase(&env, "ms", DatabasePhase::Ready).await;
    eprintln!("standalone MSSQL Ready after {:?}", started.elapsed());
    let uid = db.uid().unwrap();

    let sts = env.api::<StatefulSet>().get("ms").await.unwrap();
    let spec = sts.spec.as_ref().unwrap();
    assert_eq!(
        spec.update_strategy.as_ref().unwrap().type_.as_deref(),
        Some("OnDelete")
    );
    let owner = &sts.owner_references()[0];
    assert_eq!(
        (owner.uid.as_str(), owner.controller),
        (uid.as_str(), Some(true))
    );
    assert_eq!(
        sts.labels()["app.kubernetes.io/name"],
        "mssqlservers.kubedb.com"
    );
    let pod = spec.template.spec.as_ref().unwrap();
    let images: Vec<_> = pod
        .containers
        .iter()
        .map(|c| (c.name.as_str(), c.image.clone().unwrap()))
        .collect();
    assert_eq!(
        images,
        [(
            "mssql",
            "mcr.microsoft.com/mssql/server:2022-CU22-ubuntu-22.04".to_owned()
        )]
    );
    assert_eq!(
        pod.init_containers.as_ref().unwrap()[0].image.as_deref(),
        Some(api::fixtures::MSSQL_INIT_IMAGE)
    );
    let secrets_mounted: Vec<String> = pod
        .volumes
        .iter()
        .flatten()
        .filter_map(|v| v.secret.as_ref()?.secret_name.clone())
        .collect();
    assert!(
        secrets_mounted.contains(&"ms-server-cert".to_owned()),
        "{secrets_mounted:?}"
    );
    assert!(
        secrets_mounted.contains(&"ms-client-cert".to_owned()),
        "{secrets_mounted:?}"
    );

    for svc in ["ms", "ms-pods"] {
        env.api::<Service>()
            .get(svc)
            .await
            .unwrap_or_else(|e| panic!("service {svc}: {e}"));
    }
    let auth = env.api::<Secret>().get("ms-auth").await.unwrap();
    assert_eq!(auth.type_.as_deref(), Some("kubernetes.io/basic-auth"));
    env.api::<PodDisruptionBudget>().get("ms").await.unwrap();
    let conditions: Vec<_> = ready
        .status
        .as_ref()
        .unwrap()
        .conditions()
        .iter()
        .map(|c| c.type_.clone())
        .collect();
    for expected in [
        "ProvisioningStarted",
        "ReplicaReady",
        "AcceptingConnection",
        "Ready",
        "Provisioned",
    ] {
        assert!(conditions.contains(&expected.to_owned()), "{conditions:?}");
    }
    eprintln!(
        "provisioner requests until Ready: {}",
        env.provisioner_requests()
    );
    env.stop().await;
}
