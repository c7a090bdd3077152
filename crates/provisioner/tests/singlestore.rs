//! Singlestore topologies against kube-sim with the real controllers.

mod common;

use api::{DatabasePhase, Singlestore};
use common::*;
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Service, ServiceAccount};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use kube::ResourceExt;
use kube::api::ListParams;

#[test]
fn standalone_reaches_ready() {
    run(async {
        let env = Env::start().await;
        create_license(&env).await;
        let db = create(&env, &singlestore("sdb", "8.7.21", None)).await;
        wait_phase::<Singlestore>(&env, "sdb", DatabasePhase::Ready).await;
        let sts = env.api::<StatefulSet>().get("sdb").await.unwrap();
        assert_eq!(sts.owner_references()[0].uid, db.uid().unwrap());
        let pod = sts.spec.as_ref().unwrap().template.spec.as_ref().unwrap();
        assert_eq!(pod.containers.len(), 1);
        assert_eq!(
            pod.containers[0].image.as_deref(),
            Some("docker.io/singlestore/cluster-in-a-box:alma-8.7.10-95e2357384-4.1.0-1.17.14")
        );
        let primary = env.api::<Service>().get("sdb").await.unwrap();
        let ports: Vec<i32> = primary
            .spec
            .unwrap()
            .ports
            .unwrap()
            .iter()
            .map(|p| p.port)
            .collect();
        assert_eq!(ports, [3306, 8081]);
        env.api::<PodDisruptionBudget>().get("sdb").await.unwrap();
        // Cluster-in-a-box runs no agent: no ServiceAccount, Role or token of its own.
        assert!(env.api::<Role>().get_opt("sdb").await.unwrap().is_none());
        assert!(
            env.api::<ServiceAccount>()
                .get_opt("sdb")
                .await
                .unwrap()
                .is_none()
        );
        assert_eq!(pod.automount_service_account_token, Some(false));
        env.stop().await;
    });
}

#[test]
fn aggregator_and_leaf_reach_ready() {
    run(async {
        let env = Env::start().await;
        create_license(&env).await;
        create(&env, &singlestore("cl", "8.9.3", Some((2, 2)))).await;
        let ready: Singlestore = wait_phase(&env, "cl", DatabasePhase::Ready).await;
        assert!(
            ready
                .status
                .unwrap()
                .conditions()
                .iter()
                .all(|c| c.type_ != "AGPrimaryReplicaReady")
        );
        for (name, replicas) in [("cl-aggregator", 2), ("cl-leaf", 2)] {
            let sts = env.api::<StatefulSet>().get(name).await.unwrap();
            assert_eq!(sts.spec.as_ref().unwrap().replicas, Some(replicas));
            let names: Vec<String> = sts
                .spec
                .as_ref()
                .unwrap()
                .template
                .spec
                .as_ref()
                .unwrap()
                .containers
                .iter()
                .map(|c| c.name.clone())
                .collect();
            assert_eq!(names, ["singlestore", "singlestore-coordinator"]);
            assert_eq!(
                sts.spec
                    .as_ref()
                    .unwrap()
                    .template
                    .spec
                    .as_ref()
                    .unwrap()
                    .containers[0]
                    .image
                    .as_deref(),
                Some("ghcr.io/appscode-images/singlestore-node:alma-8.9.3-bfa36a984a")
            );
            env.api::<PodDisruptionBudget>().get(name).await.unwrap();
            let pod = sts.spec.as_ref().unwrap().template.spec.as_ref().unwrap();
            assert_eq!(pod.service_account_name.as_deref(), Some("cl"), "{name}");
        }
        // The agents' identity: their pods, the master Lease, the credentials and license.
        env.api::<ServiceAccount>().get("cl").await.unwrap();
        let role = env.api::<Role>().get("cl").await.unwrap();
        let rules = role.rules.unwrap();
        assert_eq!(
            rules[0].resource_names.as_deref().unwrap(),
            [
                "cl-aggregator-0",
                "cl-aggregator-1",
                "cl-leaf-0",
                "cl-leaf-1"
            ]
        );
        assert_eq!(rules[1].resource_names.as_deref().unwrap(), ["cl-master"]);
        let binding = env.api::<RoleBinding>().get("cl").await.unwrap();
        assert_eq!(binding.subjects.unwrap()[0].name, "cl");
        let pvcs = env
            .api::<PersistentVolumeClaim>()
            .list(&ListParams::default())
            .await
            .unwrap();
        let mut names: Vec<String> = pvcs.items.iter().map(|p| p.name_any()).collect();
        names.sort();
        assert_eq!(
            names,
            [
                "data-cl-aggregator-0",
                "data-cl-aggregator-1",
                "data-cl-leaf-0",
                "data-cl-leaf-1"
            ]
        );
        env.stop().await;
    });
}

#[test]
fn missing_license_blocks_until_created() {
    run(async {
        let env = Env::start().await;
        create(&env, &singlestore("nolic", "8.7.21", None)).await;
        let blocked: Singlestore = testkit::wait_for_object(
            &env.api(),
            "nolic",
            "ProvisioningBlocked",
            WAIT,
            |db: &Singlestore| {
                db.status.as_ref().is_some_and(|s| {
                    s.conditions()
                        .iter()
                        .any(|c| c.type_ == "ProvisioningBlocked")
                })
            },
        )
        .await;
        let message = blocked
            .status
            .unwrap()
            .conditions()
            .iter()
            .find(|c| c.type_ == "ProvisioningBlocked")
            .unwrap()
            .message
            .clone()
            .unwrap();
        assert!(message.contains("license"), "{message}");
        assert!(
            env.api::<StatefulSet>()
                .get_opt("nolic")
                .await
                .unwrap()
                .is_none()
        );
        create_license(&env).await;
        wait_phase::<Singlestore>(&env, "nolic", DatabasePhase::Ready).await;
        env.stop().await;
    });
}
