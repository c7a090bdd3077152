//! Singlestore topologies against kube-sim with the real controllers.

mod common;

use api::{DatabasePhase, Singlestore};
use common::*;
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod, Secret, Service, ServiceAccount};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use kube::ResourceExt;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams};

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

/// The pods' role labels, by pod name.
async fn roles(env: &Env) -> std::collections::BTreeMap<String, Option<String>> {
    env.api::<Pod>()
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .iter()
        .map(|p| (p.name_any(), p.labels().get("kubedb.com/role").cloned()))
        .collect()
}

/// Aggregator 2 + leaf 3: the agents bootstrap one cluster, register every node, and label
/// every pod with KubeDB's values; nothing in kube-sim labels or registers anything.
#[test]
fn agents_form_one_cluster_and_label_every_pod() {
    run(async {
        let env = Env::start().await;
        create_license(&env).await;
        create(&env, &singlestore("cl", "8.9.3", Some((2, 3)))).await;
        wait_phase::<Singlestore>(&env, "cl", DatabasePhase::Ready).await;
        let labels = testkit::eventually("every pod labelled", WAIT, || async {
            let r = roles(&env).await;
            (r.len() == 5 && r.values().all(Option::is_some)).then_some(r)
        })
        .await;
        let value = |pod: &str| labels[pod].as_deref().unwrap().to_owned();
        assert_eq!(value("cl-aggregator-0"), "Master", "{labels:?}");
        assert_eq!(value("cl-aggregator-1"), "Aggregator");
        for leaf in ["cl-leaf-0", "cl-leaf-1", "cl-leaf-2"] {
            assert_eq!(value(leaf), "Leaf");
        }
        let summary = testkit::eventually(
            "one cluster of 2 aggregators and 3 leaves",
            WAIT,
            || async {
                let summary = env.cluster.sim.state().singlestore.world().summary();
                let cluster = summary["clusters"].as_array()?.first()?.clone();
                let online = |key: &str| {
                    cluster[key]
                        .as_array()
                        .map_or(0, |a| a.iter().filter(|n| n["online"] == true).count())
                };
                (online("aggregators") == 2 && online("leaves") == 3).then_some(summary)
            },
        )
        .await;
        assert_eq!(
            summary["clusters"].as_array().unwrap().len(),
            1,
            "{summary}"
        );
        assert_eq!(summary["clusters"][0]["masterPod"], "cl-aggregator-0");
        // The Lease records the bootstrap, so no agent ever bootstraps a second cluster.
        let lease = env
            .api::<k8s_openapi::api::coordination::v1::Lease>()
            .get("cl-master")
            .await
            .unwrap();
        assert_eq!(
            lease.spec.unwrap().holder_identity.as_deref(),
            Some("cl-aggregator-0")
        );
        assert_eq!(
            lease.metadata.annotations.unwrap()["db-agent.kubedb.com/cluster-bootstrapped"],
            "cl-aggregator-0.cl-pods.demo.svc"
        );
        env.stop().await;
    });
}

/// A master aggregator lost for longer than its grace (its node down, kube-sim's fault on its
/// PVC) is replaced by a child with `AGGREGATOR SET AS MASTER`; the returning old master is
/// neither labelled nor ready, and a Warning says how to bring it back. No PVC is deleted.
#[test]
fn a_lost_master_is_replaced_by_a_child_and_the_returning_one_is_reported() {
    run(async {
        let env = Env::start().await;
        create_license(&env).await;
        let mut db = singlestore("lm", "8.9.3", Some((2, 1)));
        // A short grace for the test (a user can set it the same way).
        db.spec
            .topology
            .as_mut()
            .unwrap()
            .aggregator
            .as_mut()
            .unwrap()
            .pod_template = Some(
            serde_json::from_value(serde_json::json!({"spec": {"containers": [{
                "name": "singlestore-coordinator",
                "env": [{"name": "MASTER_LOST_AFTER", "value": "2s"}]
            }]}}))
            .unwrap(),
        );
        create(&env, &db).await;
        wait_phase::<Singlestore>(&env, "lm", DatabasePhase::Ready).await;
        testkit::eventually("lm-aggregator-0 is the master", WAIT, || async {
            let r = roles(&env).await;
            (r.get("lm-aggregator-0")?.as_deref() == Some("Master")
                && r.get("lm-aggregator-1")?.as_deref() == Some("Aggregator"))
            .then_some(())
        })
        .await;
        let pvcs_before = pvc_uids(&env).await;
        env.api::<PersistentVolumeClaim>()
            .patch(
                "data-lm-aggregator-0",
                &PatchParams::default(),
                &Patch::Merge(serde_json::json!({"metadata": {"annotations": {
                    kube_sim::db::singlestore::server::DOWN_ANNOTATION: "true"
                }}})),
            )
            .await
            .unwrap();
        let lost_at = std::time::Instant::now();
        env.api::<Pod>()
            .delete("lm-aggregator-0", &DeleteParams::default())
            .await
            .unwrap();
        testkit::eventually("lm-aggregator-1 is the master", WAIT, || async {
            (roles(&env).await.get("lm-aggregator-1")?.as_deref() == Some("Master")).then_some(())
        })
        .await;
        let took = lost_at.elapsed();
        let failover = event(&env, "Failover", "lm").await;
        assert!(
            failover
                .note
                .unwrap_or_default()
                .contains("AGGREGATOR SET AS MASTER"),
        );
        let summary = env.cluster.sim.state().singlestore.world().summary();
        assert_eq!(
            summary["clusters"][0]["masterPod"], "lm-aggregator-1",
            "{summary}"
        );

        // The old master's node comes back believing it is still the master.
        env.api::<PersistentVolumeClaim>()
            .patch(
                "data-lm-aggregator-0",
                &PatchParams::default(),
                &Patch::Merge(serde_json::json!({"metadata": {"annotations": {
                    kube_sim::db::singlestore::server::DOWN_ANNOTATION: null
                }}})),
            )
            .await
            .unwrap();
        env.api::<Pod>()
            .delete("lm-aggregator-0", &DeleteParams::default())
            .await
            .unwrap();
        let replaced = event(&env, "ReplacedMaster", "lm").await;
        assert_eq!(replaced.type_.as_deref(), Some("Warning"));
        let note = replaced.note.unwrap_or_default();
        assert!(
            note.contains("lm-aggregator-0") && note.contains("PVC"),
            "{note}"
        );
        let r = roles(&env).await;
        assert_eq!(r["lm-aggregator-0"], None, "{r:?}");
        assert_eq!(r["lm-aggregator-1"].as_deref(), Some("Master"));
        assert_eq!(pvc_uids(&env).await, pvcs_before, "no PVC deleted");
        eprintln!(
            "MEASURED SingleStore master lost (grace 2 s, Lease 10 s): child master after {took:?}"
        );
        env.stop().await;
    });
}

/// Bad input the agents meet: a wrong root password (the auth secret edited after the nodes
/// were set up) and a license SingleStore refuses. Each is a Warning Event on the database that
/// names the pod and the fix; nothing is deleted.
#[test]
fn a_wrong_password_and_a_refused_license_are_reported() {
    use k8s_openapi::ByteString;
    run(async {
        let env = Env::start().await;
        // A license SingleStore refuses: the master cannot bootstrap.
        let secrets = env.api::<Secret>();
        let mut license = k8s_openapi::api::core::v1::Secret::default();
        license.metadata.name = Some("license".into());
        license.string_data = Some([("password".to_owned(), "not a license!".to_owned())].into());
        secrets.create(&Default::default(), &license).await.unwrap();
        create(&env, &singlestore("bad", "8.9.3", Some((1, 1)))).await;
        let refused = event(&env, "AgentActionFailed", "bad").await;
        assert_eq!(refused.type_.as_deref(), Some("Warning"));
        let note = refused.note.unwrap_or_default();
        assert!(
            note.contains("SetLicense") && note.contains("bad-aggregator-0"),
            "{note}"
        );
        assert!(
            env.cluster.sim.state().singlestore.world().summary()["clusters"]
                .as_array()
                .unwrap()
                .is_empty(),
            "no cluster without a license"
        );
        // The license fixed: the agents carry on by themselves.
        secrets
            .patch(
                "license",
                &PatchParams::default(),
                &Patch::Merge(serde_json::json!({"stringData": {"password": "bGljZW5zZQ=="}})),
            )
            .await
            .unwrap();
        env.api::<Pod>()
            .delete("bad-aggregator-0", &DeleteParams::default())
            .await
            .unwrap();
        wait_phase::<Singlestore>(&env, "bad", DatabasePhase::Ready).await;
        let pvcs_before = pvc_uids(&env).await;

        // A wrong root password: the restarted leaf's agent cannot log in to its node.
        secrets
            .patch(
                "bad-auth",
                &PatchParams::default(),
                &Patch::Merge(
                    serde_json::json!({"data": {"password": ByteString(b"wrong".to_vec())}}),
                ),
            )
            .await
            .unwrap();
        env.api::<Pod>()
            .delete("bad-leaf-0", &DeleteParams::default())
            .await
            .unwrap();
        let login = event(&env, "LoginFailed", "bad").await;
        let note = login.note.unwrap_or_default();
        assert!(
            note.contains("pod bad-leaf-0 cannot log in") && note.contains("error 1045"),
            "{note}"
        );
        assert_eq!(pvc_uids(&env).await, pvcs_before, "nothing deleted");
        env.stop().await;
    });
}
