//! MSSQLServer topologies against kube-sim with the real controllers.

mod common;

use std::time::Instant;

use api::DatabasePhase;
use api::MSSQLServer;
use common::*;
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{Secret, Service, ServiceAccount};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use kube::ResourceExt;
use kube::api::DeleteParams;

#[test]
fn standalone_reaches_ready_with_its_children() {
    run(async {
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
    });
}

fn container_names(sts: &StatefulSet) -> Vec<String> {
    sts.spec
        .as_ref()
        .unwrap()
        .template
        .spec
        .as_ref()
        .unwrap()
        .containers
        .iter()
        .map(|c| c.name.clone())
        .collect()
}

#[test]
fn availability_group_of_three_elects_a_primary() {
    run(async {
        let env = Env::start().await;
        create(&env, &mssql("ag", "2022-cu22", Some(3))).await;
        let ready: MSSQLServer = wait_phase(&env, "ag", DatabasePhase::Ready).await;
        let types: Vec<String> = ready
            .status
            .as_ref()
            .unwrap()
            .conditions()
            .iter()
            .map(|c| c.type_.clone())
            .collect();
        assert!(
            types.contains(&"AGPrimaryReplicaReady".to_owned()),
            "{types:?}"
        );

        let sts = env.api::<StatefulSet>().get("ag").await.unwrap();
        assert_eq!(sts.spec.as_ref().unwrap().replicas, Some(3));
        assert_eq!(container_names(&sts), ["mssql", "mssql-coordinator"]);
        let pod = sts.spec.as_ref().unwrap().template.spec.as_ref().unwrap();
        assert_eq!(
            pod.containers[1].image.as_deref(),
            Some(api::fixtures::MSSQL_COORDINATOR_IMAGE)
        );
        let env_names: Vec<&str> = pod.containers[0]
            .env
            .iter()
            .flatten()
            .map(|e| e.name.as_str())
            .collect();
        assert!(env_names.contains(&"MSSQL_ENABLE_HADR"), "{env_names:?}");
        let mounted: Vec<String> = pod
            .volumes
            .iter()
            .flatten()
            .filter_map(|v| v.secret.as_ref()?.secret_name.clone())
            .collect();
        assert!(
            mounted.contains(&"ag-endpoint-cert".to_owned()),
            "{mounted:?}"
        );
        assert!(
            env.api::<StatefulSet>()
                .get_opt("ag-arbiter")
                .await
                .unwrap()
                .is_none(),
            "no arbiter for an odd AG"
        );

        for svc in ["ag", "ag-secondary", "ag-pods"] {
            env.api::<Service>()
                .get(svc)
                .await
                .unwrap_or_else(|e| panic!("service {svc}: {e}"));
        }
        let primary = env.api::<Service>().get("ag").await.unwrap();
        assert_eq!(
            primary.spec.unwrap().selector.unwrap()["kubedb.com/role"],
            "primary"
        );
        let pdb = env.api::<PodDisruptionBudget>().get("ag").await.unwrap();
        assert_eq!(
            pdb.spec.unwrap().min_available,
            Some(k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::Int(2))
        );
        for secret in [
            "ag-auth",
            "ag-dbm-login",
            "ag-master-key",
            "ag-endpoint-cert",
            "ag-server-cert",
            "ag-client-cert",
        ] {
            env.api::<Secret>()
                .get(secret)
                .await
                .unwrap_or_else(|e| panic!("secret {secret}: {e}"));
        }
        env.stop().await;
    });
}

#[test]
fn availability_group_of_two_gets_an_arbiter() {
    run(async {
        let env = Env::start().await;
        let db = create(&env, &mssql("ag2", "2025-cu0", Some(2))).await;
        wait_phase::<MSSQLServer>(&env, "ag2", DatabasePhase::Ready).await;
        let arbiter = env.api::<StatefulSet>().get("ag2-arbiter").await.unwrap();
        assert_eq!(arbiter.spec.as_ref().unwrap().replicas, Some(1));
        assert_eq!(arbiter.owner_references()[0].uid, db.uid().unwrap());
        assert_eq!(container_names(&arbiter), ["mssql-arbiter"]);
        assert_eq!(
            arbiter
                .spec
                .as_ref()
                .unwrap()
                .update_strategy
                .as_ref()
                .unwrap()
                .type_
                .as_deref(),
            Some("OnDelete")
        );
        let main = env.api::<StatefulSet>().get("ag2").await.unwrap();
        let image = main
            .spec
            .as_ref()
            .unwrap()
            .template
            .spec
            .as_ref()
            .unwrap()
            .containers[0]
            .image
            .clone();
        assert_eq!(
            image.as_deref(),
            Some("mcr.microsoft.com/mssql/server:2025-RTM-ubuntu-22.04")
        );
        use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
        let members = env.api::<PodDisruptionBudget>().get("ag2").await.unwrap();
        assert_eq!(
            members.spec.unwrap().min_available,
            Some(IntOrString::Int(1)),
            "2 members + arbiter: one member may go"
        );
        let arbiter_pdb = env
            .api::<PodDisruptionBudget>()
            .get("ag2-arbiter")
            .await
            .unwrap();
        assert_eq!(
            arbiter_pdb.spec.unwrap().max_unavailable,
            Some(IntOrString::Int(1))
        );
        env.stop().await;
    });
}

/// Deletions seen by a watch of one kind in the test namespace.
type Deletions = std::sync::Arc<std::sync::Mutex<Vec<(String, u64)>>>;

/// The resourceVersions at which objects of kind `K` in the test namespace are deleted, from a
/// watch started now (kube-sim gives every deletion a new, cluster-wide increasing one), and the
/// task that watches (abort it before the cluster stops).
fn deletions<K>(env: &Env) -> (Deletions, tokio::task::JoinHandle<()>)
where
    K: kube::Resource<Scope = kube::core::NamespaceResourceScope, DynamicType = ()>
        + Clone
        + std::fmt::Debug
        + serde::de::DeserializeOwned
        + Send
        + 'static,
{
    use futures::StreamExt;
    use kube::runtime::WatchStreamExt;
    let seen = Deletions::default();
    let out = seen.clone();
    let stream = kube::runtime::watcher(env.api::<K>(), Default::default()).default_backoff();
    let task = tokio::spawn(async move {
        let mut stream = std::pin::pin!(stream);
        while let Some(event) = stream.next().await {
            if let Ok(kube::runtime::watcher::Event::Delete(object)) = event {
                let rv = object.resource_version().unwrap_or_default();
                out.lock()
                    .unwrap()
                    .push((object.name_any(), rv.parse().unwrap_or_default()));
            }
        }
    });
    (seen, task)
}

#[test]
fn availability_group_agents_get_their_identity_until_the_pods_are_gone() {
    run(async {
        let env = Env::start().await;
        create(&env, &mssql("agr", "2022-cu22", Some(2))).await;
        wait_phase::<MSSQLServer>(&env, "agr", DatabasePhase::Ready).await;
        env.api::<ServiceAccount>().get("agr").await.unwrap();
        let role = env.api::<Role>().get("agr").await.unwrap();
        let rules = role.rules.clone().unwrap();
        assert_eq!(
            rules[0].resource_names.as_deref().unwrap(),
            ["agr-0", "agr-1", "agr-arbiter-0"]
        );
        assert_eq!(rules[1].resource_names.as_deref().unwrap(), ["agr-primary"]);
        let binding = env.api::<RoleBinding>().get("agr").await.unwrap();
        assert_eq!(binding.role_ref.name, "agr");
        for set in ["agr", "agr-arbiter"] {
            let sts = env.api::<StatefulSet>().get(set).await.unwrap();
            let pod = sts.spec.unwrap().template.spec.unwrap();
            assert_eq!(pod.service_account_name.as_deref(), Some("agr"), "{set}");
            assert_eq!(pod.automount_service_account_token, Some(false), "{set}");
        }

        // A deleted Role comes back (it is an owned, watched child).
        let roles = env.api::<Role>();
        roles.delete("agr", &DeleteParams::default()).await.unwrap();
        testkit::eventually("role agr recreated", WAIT, || async {
            let again = roles.get_opt("agr").await.unwrap()?;
            (again.uid() != role.uid()).then_some(())
        })
        .await;

        // Deleting the database removes the agents' permissions only after their StatefulSets.
        let (sets, sets_watch) = deletions::<StatefulSet>(&env);
        let watches = [
            deletions::<ServiceAccount>(&env),
            deletions::<Role>(&env),
            deletions::<RoleBinding>(&env),
        ];
        // Every watch has listed (an Init event) before the deletion starts.
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        env.api::<MSSQLServer>()
            .delete("agr", &DeleteParams::default())
            .await
            .unwrap();
        testkit::eventually("the database and its identity are gone", WAIT, || async {
            let done = sets.lock().unwrap().len() == 2
                && watches.iter().all(|(d, _)| d.lock().unwrap().len() == 1);
            done.then_some(())
        })
        .await;
        let last_set = sets
            .lock()
            .unwrap()
            .iter()
            .map(|(_, rv)| *rv)
            .max()
            .unwrap();
        for (deleted, _) in &watches {
            let (name, rv) = deleted.lock().unwrap()[0].clone();
            assert!(
                rv > last_set,
                "{name} deleted at {rv}, before a StatefulSet ({last_set})"
            );
        }
        sets_watch.abort();
        for (_, watch) in watches {
            watch.abort();
        }
        env.stop().await;
    });
}

#[test]
fn agent_image_replaces_the_versions_coordinator_image() {
    run(async {
        let agent = "ghcr.io/kubedb-rs/db-agent:0.1.0";
        let env = Env::start_with_config(
            testkit::SimOptions::default(),
            provisioner::Config {
                agent_image: Some(agent.into()),
                ..provisioner::Config::default()
            },
        )
        .await;
        create(&env, &mssql("aga", "2022-cu22", Some(2))).await;
        wait_phase::<MSSQLServer>(&env, "aga", DatabasePhase::Ready).await;
        for (set, container) in [("aga", 1), ("aga-arbiter", 0)] {
            let sts = env.api::<StatefulSet>().get(set).await.unwrap();
            let pod = sts.spec.unwrap().template.spec.unwrap();
            assert_eq!(
                pod.containers[container].image.as_deref(),
                Some(agent),
                "{set}"
            );
        }
        env.stop().await;
    });
}

#[test]
fn without_accept_eula_nothing_is_created_until_it_is_set() {
    run(async {
        let env = Env::start().await;
        let mut db = mssql("noeula", "2022-cu22", None);
        let template = serde_json::json!({"spec": {"containers": [{"name": "mssql", "env": [
            {"name": "MSSQL_PID", "value": "Developer"}]}]}});
        db.spec.pod_template = Some(serde_json::from_value(template).unwrap());
        create(&env, &db).await;
        let blocked: MSSQLServer = testkit::wait_for_object(
            &env.api(),
            "noeula",
            "ProvisioningBlocked",
            WAIT,
            |db: &MSSQLServer| {
                db.status.as_ref().is_some_and(|s| {
                    s.conditions()
                        .iter()
                        .any(|c| c.type_ == "ProvisioningBlocked")
                })
            },
        )
        .await;
        let condition = blocked
            .status
            .unwrap()
            .conditions()
            .iter()
            .find(|c| c.type_ == "ProvisioningBlocked")
            .cloned()
            .unwrap();
        assert_eq!(condition.reason.as_deref(), Some("InvalidSpec"));
        let message = condition.message.unwrap();
        assert!(message.contains("ACCEPT_EULA=Y"), "{message}");
        assert!(
            env.api::<StatefulSet>()
                .get_opt("noeula")
                .await
                .unwrap()
                .is_none()
        );
        let accepted = serde_json::json!({"spec": {"podTemplate": {"spec": {"containers": [
            {"name": "mssql", "env": [{"name": "MSSQL_PID", "value": "Developer"},
                                      {"name": "ACCEPT_EULA", "value": "Y"}]}]}}}});
        env.api::<MSSQLServer>()
            .patch(
                "noeula",
                &kube::api::PatchParams::default(),
                &kube::api::Patch::Merge(&accepted),
            )
            .await
            .unwrap();
        wait_phase::<MSSQLServer>(&env, "noeula", DatabasePhase::Ready).await;
        env.stop().await;
    });
}

/// A wrong password in the auth secret of a running AG (the secret edited by hand): the
/// restarted pod's agent cannot log in and says so in a Warning Event on the database, the
/// provisioner's health check reports the refused login in `AcceptingConnection`, no PVC or
/// pod of the other replicas goes, and putting the password back heals it.
#[test]
fn a_wrong_password_in_the_auth_secret_is_reported_and_nothing_is_deleted() {
    use k8s_openapi::ByteString;
    use k8s_openapi::api::core::v1::Pod;
    use kube::api::{ListParams, Patch, PatchParams};
    run(async {
        let env = Env::start().await;
        create(&env, &mssql("pw", "2022-cu22", Some(3))).await;
        wait_phase::<MSSQLServer>(&env, "pw", DatabasePhase::Ready).await;
        let pvcs = || pvc_uids(&env);
        let pvcs_before = pvcs().await;
        assert_eq!(pvcs_before.len(), 3, "{pvcs_before:?}");
        let pods = env.api::<Pod>();
        let role = |p: &Pod| p.labels().get("kubedb.com/role").cloned();
        let all = pods.list(&ListParams::default()).await.unwrap().items;
        let secondary = all
            .iter()
            .find(|p| role(p).as_deref() == Some("secondary"))
            .expect("a secondary")
            .name_any();
        let primary = all
            .iter()
            .find(|p| role(p).as_deref() == Some("primary"))
            .expect("a primary")
            .name_any();

        let secrets = env.api::<Secret>();
        let original = secrets.get("pw-auth").await.unwrap().data.unwrap()["password"].clone();
        let set_password = |password: ByteString| {
            let secrets = secrets.clone();
            async move {
                let body = serde_json::json!({"data": {"password": password}});
                secrets
                    .patch("pw-auth", &PatchParams::default(), &Patch::Merge(&body))
                    .await
                    .unwrap();
            }
        };
        set_password(ByteString(b"not-the-servers-password".to_vec())).await;
        pods.delete(&secondary, &DeleteParams::default())
            .await
            .unwrap();

        // The restarted pod's agent: a Warning Event naming the pod and the fix.
        let login_failed = event(&env, "LoginFailed", "pw").await;
        assert_eq!(login_failed.type_.as_deref(), Some("Warning"));
        let note = login_failed.note.unwrap_or_default();
        assert!(
            note.contains(&format!("pod {secondary} cannot log in"))
                && note.contains("error 18456")
                && note.contains("auth secret"),
            "{note}"
        );
        // The provisioner: the database is not Ready while that replica is not (with
        // `--health-check=sql` the refused login itself is in AcceptingConnection; kube-sim
        // serves no cluster DNS to the test's provisioner, so the tests use pod readiness).
        testkit::wait_for_object(&env.api(), "pw", "Ready=False", WAIT, |db: &MSSQLServer| {
            db.status.as_ref().is_some_and(|s| {
                s.conditions().iter().any(|c| {
                    c.type_ == "Ready"
                        && c.status == api::ConditionStatus::False
                        && c.message.as_deref().is_some_and(|m| m.contains("ready"))
                })
            })
        })
        .await;
        // Nothing deleted: the same PVCs, and the primary still runs and leads.
        assert_eq!(pvcs().await, pvcs_before);
        let still = pods.get(&primary).await.unwrap();
        assert_eq!(role(&still).as_deref(), Some("primary"));

        // The password put back and the pod restarted: Ready again.
        set_password(original).await;
        pods.delete(&secondary, &DeleteParams::default())
            .await
            .unwrap();
        wait_phase::<MSSQLServer>(&env, "pw", DatabasePhase::Ready).await;
        assert_eq!(pvcs().await, pvcs_before);
        env.stop().await;
    });
}
