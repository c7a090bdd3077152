//! Lifecycle behaviour against kube-sim with the real controllers: recreation of deleted
//! children, halt and resume, deletion policies, the Paused handshake, version resolution, a
//! user-supplied auth secret and ephemeral storage.

mod common;

use api::{DatabasePhase, MSSQLServer};
use common::*;
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Secret, Service};
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::ResourceExt;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams};
use serde_json::json;

async fn patch_spec(env: &Env, name: &str, spec: serde_json::Value) {
    env.api::<MSSQLServer>()
        .patch(
            name,
            &PatchParams::default(),
            &Patch::Merge(&json!({"spec": spec})),
        )
        .await
        .unwrap();
}

fn condition<'a>(db: &'a MSSQLServer, type_: &str) -> Option<&'a api::Condition> {
    db.status
        .as_ref()?
        .conditions()
        .iter()
        .find(|c| c.type_ == type_)
}

#[test]
fn deleted_child_is_recreated() {
    run(async {
        let env = Env::start().await;
        create(&env, &mssql("ms", "2022-cu22", None)).await;
        wait_phase::<MSSQLServer>(&env, "ms", DatabasePhase::Ready).await;
        let services = env.api::<Service>();
        let old = services.get("ms").await.unwrap().uid().unwrap();
        services
            .delete("ms", &DeleteParams::default())
            .await
            .unwrap();
        let sts = env.api::<StatefulSet>();
        sts.delete("ms", &DeleteParams::default()).await.unwrap();
        testkit::eventually("service ms recreated", WAIT, || async {
            let svc = services.get_opt("ms").await.unwrap()?;
            (svc.uid().unwrap() != old).then_some(())
        })
        .await;
        testkit::eventually("statefulset ms recreated", WAIT, || async {
            sts.get_opt("ms").await.unwrap().map(|_| ())
        })
        .await;
        wait_phase::<MSSQLServer>(&env, "ms", DatabasePhase::Ready).await;
        env.stop().await;
    });
}

#[test]
fn halted_and_back_keeps_the_pvcs() {
    run(async {
        let env = Env::start().await;
        create(&env, &mssql("ag", "2022-cu22", Some(3))).await;
        wait_phase::<MSSQLServer>(&env, "ag", DatabasePhase::Ready).await;
        let before = pvc_uids(&env).await;
        assert_eq!(before.len(), 3, "{before:?}");

        patch_spec(&env, "ag", json!({"halted": true})).await;
        let halted: MSSQLServer = wait_phase(&env, "ag", DatabasePhase::Halted).await;
        assert!(condition(&halted, "Halted").is_some_and(|c| c.is_true()));
        testkit::eventually("children removed", WAIT, || async {
            let sts = env
                .api::<StatefulSet>()
                .list(&ListParams::default())
                .await
                .unwrap()
                .items;
            let svc = env
                .api::<Service>()
                .list(&ListParams::default())
                .await
                .unwrap()
                .items;
            let pdb = env
                .api::<PodDisruptionBudget>()
                .list(&ListParams::default())
                .await
                .unwrap()
                .items;
            (sts.is_empty() && svc.is_empty() && pdb.is_empty()).then_some(())
        })
        .await;
        assert_eq!(pvc_uids(&env).await, before, "PVCs survive the halt");
        for secret in ["ag-auth", "ag-dbm-login", "ag-master-key"] {
            env.api::<Secret>()
                .get(secret)
                .await
                .unwrap_or_else(|e| panic!("{secret}: {e}"));
        }

        patch_spec(&env, "ag", json!({"halted": false})).await;
        let back: MSSQLServer = wait_phase(&env, "ag", DatabasePhase::Ready).await;
        assert!(condition(&back, "Halted").is_none());
        assert_eq!(pvc_uids(&env).await, before, "the same PVCs are reused");
        env.stop().await;
    });
}

#[test]
fn deletion_policies() {
    run(async {
        let env = Env::start().await;
        let policies = ["Halt", "Delete", "WipeOut", "DoNotTerminate"];
        for policy in policies {
            let name = policy.to_lowercase();
            let mut db = mssql(&name, "2022-cu22", None);
            db.spec.deletion_policy = Some(serde_json::from_value(json!(policy)).unwrap());
            create(&env, &db).await;
        }
        for policy in policies {
            wait_phase::<MSSQLServer>(&env, &policy.to_lowercase(), DatabasePhase::Ready).await;
        }
        let dbs = env.api::<MSSQLServer>();
        for policy in policies {
            dbs.delete(&policy.to_lowercase(), &DeleteParams::default())
                .await
                .unwrap();
        }
        for gone in ["halt", "delete", "wipeout"] {
            testkit::eventually(&format!("{gone} deleted"), WAIT, || async {
                dbs.get_opt(gone).await.unwrap().is_none().then_some(())
            })
            .await;
        }
        let secrets = env.api::<Secret>();
        let pvcs = env.api::<PersistentVolumeClaim>();
        let sts = env.api::<StatefulSet>();
        // Halt: PVCs and secrets stay, the rest goes.
        assert!(pvcs.get_opt("data-halt-0").await.unwrap().is_some());
        let auth = secrets.get("halt-auth").await.unwrap();
        assert!(
            auth.owner_references().is_empty(),
            "kept secrets are orphaned"
        );
        assert!(sts.get_opt("halt").await.unwrap().is_none());
        // Delete: secrets stay, PVCs go.
        assert!(secrets.get_opt("delete-auth").await.unwrap().is_some());
        testkit::eventually("delete PVC removed", WAIT, || async {
            pvcs.get_opt("data-delete-0")
                .await
                .unwrap()
                .is_none()
                .then_some(())
        })
        .await;
        // WipeOut: everything goes.
        assert!(secrets.get_opt("wipeout-auth").await.unwrap().is_none());
        assert!(
            secrets
                .get_opt("wipeout-server-cert")
                .await
                .unwrap()
                .is_none()
        );
        assert!(pvcs.get_opt("data-wipeout-0").await.unwrap().is_none());
        // DoNotTerminate: refused, with a condition and a Warning Event saying what to do.
        let kept: MSSQLServer = testkit::wait_for_object(
            &dbs,
            "donotterminate",
            "DeletionBlocked",
            WAIT,
            |db: &MSSQLServer| condition(db, "DeletionBlocked").is_some(),
        )
        .await;
        let message = condition(&kept, "DeletionBlocked")
            .unwrap()
            .message
            .clone()
            .unwrap();
        assert!(message.contains("deletionPolicy"), "{message}");
        assert!(sts.get_opt("donotterminate").await.unwrap().is_some());
        let events: kube::Api<Event> = env.api();
        testkit::eventually("DoNotTerminate warning event", WAIT, || async {
            let list = events.list(&ListParams::default()).await.unwrap();
            list.items
                .iter()
                .any(|e| {
                    e.reason.as_deref() == Some("DeletionPolicyDoNotTerminate")
                        && e.type_.as_deref() == Some("Warning")
                })
                .then_some(())
        })
        .await;
        patch_spec(&env, "donotterminate", json!({"deletionPolicy": "WipeOut"})).await;
        testkit::eventually(
            "donotterminate deleted after the policy change",
            WAIT,
            || async {
                dbs.get_opt("donotterminate")
                    .await
                    .unwrap()
                    .is_none()
                    .then_some(())
            },
        )
        .await;
        env.stop().await;
    });
}

#[test]
fn paused_database_children_are_left_alone() {
    run(async {
        let env = Env::start().await;
        create(&env, &mssql("ms", "2022-cu22", None)).await;
        let ready: MSSQLServer = wait_phase(&env, "ms", DatabasePhase::Ready).await;

        // The ops-manager's request: Paused=Unknown added to the conditions.
        let mut conditions = ready.status.as_ref().unwrap().conditions().to_vec();
        conditions.push(
            api::Condition::new(
                "Paused",
                api::ConditionStatus::Unknown,
                k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(jiff::Timestamp::now()),
            )
            .with_reason("Paused")
            .with_message("MSSQLServerOpsRequest test is in process"),
        );
        let dbs = env.api::<MSSQLServer>();
        dbs.patch_status(
            "ms",
            &PatchParams::default(),
            &Patch::Merge(&json!({"metadata": {"resourceVersion": ready.resource_version()}, "status": {"conditions": conditions}})),
        )
        .await
        .unwrap();
        let acked: MSSQLServer =
            testkit::wait_for_object(&dbs, "ms", "Paused=True", WAIT, |db: &MSSQLServer| {
                condition(db, "Paused").is_some_and(|c| c.is_true())
            })
            .await;
        assert_eq!(
            acked.status.as_ref().unwrap().phase,
            Some(DatabasePhase::Ready)
        );

        let services = env.api::<Service>();
        services
            .delete("ms", &DeleteParams::default())
            .await
            .unwrap();
        // A spec change after the deletion: once the provisioner has observed the new
        // generation, it has reconciled with the service gone.
        patch_spec(&env, "ms", json!({"healthChecker": {"periodSeconds": 11}})).await;
        let generation = dbs.get("ms").await.unwrap().metadata.generation.unwrap();
        let observed: MSSQLServer = testkit::wait_for_object(
            &dbs,
            "ms",
            "the new generation observed",
            WAIT,
            |db: &MSSQLServer| {
                db.status.as_ref().and_then(|s| s.observed_generation) == Some(generation)
            },
        )
        .await;
        assert_eq!(
            observed.status.as_ref().unwrap().phase,
            Some(DatabasePhase::Ready),
            "status stays current"
        );
        assert!(
            services.get_opt("ms").await.unwrap().is_none(),
            "no child is recreated while paused"
        );

        // Resume: the ops-manager removes Paused.
        let current = dbs.get("ms").await.unwrap();
        let remaining: Vec<_> = current
            .status
            .as_ref()
            .unwrap()
            .conditions()
            .iter()
            .filter(|c| c.type_ != "Paused")
            .cloned()
            .collect();
        dbs.patch_status(
            "ms",
            &PatchParams::default(),
            &Patch::Merge(&json!({"metadata": {"resourceVersion": current.resource_version()}, "status": {"conditions": remaining}})),
        )
        .await
        .unwrap();
        testkit::eventually("service recreated after resume", WAIT, || async {
            services.get_opt("ms").await.unwrap().map(|_| ())
        })
        .await;
        env.stop().await;
    });
}

#[test]
fn unknown_version_creates_nothing_and_warns() {
    run(async {
        let env = Env::start().await;
        create(&env, &mssql("old", "2019-cu30", None)).await;
        let blocked: MSSQLServer = testkit::wait_for_object(
            &env.api(),
            "old",
            "ProvisioningBlocked",
            WAIT,
            |db: &MSSQLServer| condition(db, "ProvisioningBlocked").is_some(),
        )
        .await;
        let c = condition(&blocked, "ProvisioningBlocked").unwrap();
        assert_eq!(c.reason.as_deref(), Some("VersionNotFound"));
        let message = c.message.clone().unwrap();
        assert!(
            message.contains("2019-cu30")
                && message.contains("2022-cu22")
                && message.contains("2025-cu0"),
            "{message}"
        );
        let events: kube::Api<Event> = env.api();
        testkit::eventually("VersionNotFound warning", WAIT, || async {
            let list = events.list(&ListParams::default()).await.unwrap();
            list.items
                .iter()
                .any(|e| {
                    e.reason.as_deref() == Some("VersionNotFound")
                        && e.note.as_deref().is_some_and(|n| n.contains("2019-cu30"))
                })
                .then_some(())
        })
        .await;
        assert!(
            env.api::<StatefulSet>()
                .list(&ListParams::default())
                .await
                .unwrap()
                .items
                .is_empty()
        );
        assert!(
            env.api::<Service>()
                .list(&ListParams::default())
                .await
                .unwrap()
                .items
                .is_empty()
        );
        assert!(
            env.api::<Secret>()
                .get_opt("old-auth")
                .await
                .unwrap()
                .is_none()
        );
        env.stop().await;
    });
}

#[test]
fn user_auth_secret_is_used_untouched() {
    run(async {
        let env = Env::start().await;
        let secret = Secret {
            metadata: kube::api::ObjectMeta {
                name: Some("my-auth".into()),
                ..Default::default()
            },
            type_: Some("kubernetes.io/basic-auth".into()),
            string_data: Some(
                [
                    ("username".to_owned(), "sa".to_owned()),
                    ("password".to_owned(), "S3cret-Passw0rd".to_owned()),
                ]
                .into(),
            ),
            ..Default::default()
        };
        let created = env
            .api::<Secret>()
            .create(&PostParams::default(), &secret)
            .await
            .unwrap();
        let mut db = mssql("ms", "2022-cu22", None);
        db.spec.auth_secret = Some(api::common::SecretReference {
            name: Some("my-auth".into()),
            ..Default::default()
        });
        create(&env, &db).await;
        wait_phase::<MSSQLServer>(&env, "ms", DatabasePhase::Ready).await;
        let after = env.api::<Secret>().get("my-auth").await.unwrap();
        assert_eq!(
            after.resource_version(),
            created.resource_version(),
            "never modified"
        );
        assert!(after.owner_references().is_empty());
        assert!(
            env.api::<Secret>()
                .get_opt("ms-auth")
                .await
                .unwrap()
                .is_none()
        );
        let sts = env.api::<StatefulSet>().get("ms").await.unwrap();
        let container = &sts.spec.unwrap().template.spec.unwrap().containers[0];
        let refs: Vec<String> = container
            .env
            .iter()
            .flatten()
            .filter_map(|e| {
                e.value_from
                    .as_ref()?
                    .secret_key_ref
                    .as_ref()
                    .map(|s| s.name.clone())
            })
            .collect();
        assert_eq!(refs, ["my-auth", "my-auth"]);
        env.stop().await;
    });
}

#[test]
fn ephemeral_database_has_no_pvcs() {
    run(async {
        let env = Env::start().await;
        let mut db = mssql("eph", "2022-cu22", Some(3));
        db.spec.storage_type = Some(api::common::StorageType::Ephemeral);
        db.spec.storage = None;
        create(&env, &db).await;
        wait_phase::<MSSQLServer>(&env, "eph", DatabasePhase::Ready).await;
        assert!(pvc_uids(&env).await.is_empty());
        let sts = env.api::<StatefulSet>().get("eph").await.unwrap();
        assert!(sts.spec.unwrap().volume_claim_templates.is_none());
        env.stop().await;
    });
}

#[test]
fn provisioning_waits_for_certificates() {
    run(async {
        let env = Env::start().await;
        let mut db = mssql("tls", "2022-cu22", None);
        db.spec.tls.tls.issuer_ref.as_mut().unwrap().name = "late-issuer".into();
        create(&env, &db).await;
        let waiting: MSSQLServer = testkit::wait_for_object(
            &env.api(),
            "tls",
            "CertificatesIssued=False",
            WAIT,
            |db: &MSSQLServer| {
                condition(db, "CertificatesIssued")
                    .is_some_and(|c| c.status == api::ConditionStatus::False)
            },
        )
        .await;
        let message = condition(&waiting, "CertificatesIssued")
            .unwrap()
            .message
            .clone()
            .unwrap();
        assert!(
            message.contains("tls-server-cert") && message.contains("tls-client-cert"),
            "{message}"
        );
        // The issuer does not exist: the condition says so, with a Warning Event.
        let reason = condition(&waiting, "CertificatesIssued")
            .unwrap()
            .reason
            .clone();
        assert_eq!(reason.as_deref(), Some("IssuerNotFound"), "{message}");
        assert!(
            message.contains(&format!(
                "spec.tls.issuerRef names Issuer \"late-issuer\" in namespace {NS}, which does not exist"
            )),
            "{message}"
        );
        let warning = event(&env, "IssuerNotFound", "tls").await;
        assert_eq!(warning.type_.as_deref(), Some("Warning"));
        assert!(
            warning
                .note
                .as_deref()
                .is_some_and(|n| n.contains("late-issuer")),
            "{warning:?}"
        );
        assert!(
            env.api::<StatefulSet>()
                .get_opt("tls")
                .await
                .unwrap()
                .is_none(),
            "no pods before the certificates"
        );
        env.api::<Service>()
            .get("tls")
            .await
            .expect("services do not wait");

        let issuer: kube::api::DynamicObject = serde_json::from_value(json!({
            "apiVersion": "cert-manager.io/v1", "kind": "Issuer",
            "metadata": {"name": "late-issuer", "namespace": NS}, "spec": {"selfSigned": {}},
        }))
        .unwrap();
        kube::Api::<kube::api::DynamicObject>::namespaced_with(
            env.client.clone(),
            NS,
            &issuer_resource(),
        )
        .create(&PostParams::default(), &issuer)
        .await
        .unwrap();
        let ready: MSSQLServer = wait_phase(&env, "tls", DatabasePhase::Ready).await;
        assert!(condition(&ready, "CertificatesIssued").is_some_and(|c| c.is_true()));
        env.stop().await;
    });
}

#[test]
fn children_the_spec_no_longer_produces_are_deleted() {
    run(async {
        let env = Env::start().await;
        let mut db = mssql("mon", "2022-cu22", None);
        db.spec.monitor = Some(json!({"agent": "prometheus.io/operator"}));
        create(&env, &db).await;
        wait_phase::<MSSQLServer>(&env, "mon", DatabasePhase::Ready).await;
        let services = env.api::<Service>();
        let stats = services.get("mon-stats").await.unwrap();
        assert_eq!(stats.labels()["kubedb.com/role"], "stats");
        patch_spec(&env, "mon", json!({"monitor": null})).await;
        testkit::eventually("mon-stats deleted", WAIT, || async {
            services
                .get_opt("mon-stats")
                .await
                .unwrap()
                .is_none()
                .then_some(())
        })
        .await;
        let sts = env.api::<StatefulSet>();
        testkit::eventually("exporter container removed", WAIT, || async {
            let set = sts.get("mon").await.unwrap();
            let names: Vec<String> = set
                .spec?
                .template
                .spec?
                .containers
                .iter()
                .map(|c| c.name.clone())
                .collect();
            (names == ["mssql"]).then_some(())
        })
        .await;
        env.stop().await;
    });
}

#[test]
fn only_the_watched_namespaces_are_managed() {
    run(async {
        let config = provisioner::Config {
            namespaces: vec![NS.to_owned()],
            ..provisioner::Config::default()
        };
        let env = Env::start_with_config(testkit::SimOptions::default(), config).await;
        env.cluster.namespace("other").await.unwrap();
        let mut elsewhere = mssql("ms", "2022-cu22", None);
        elsewhere.metadata.namespace = Some("other".into());
        let others: kube::Api<MSSQLServer> = kube::Api::namespaced(env.client.clone(), "other");
        others
            .create(&PostParams::default(), &elsewhere)
            .await
            .unwrap();
        create(&env, &mssql("ms", "2022-cu22", None)).await;
        wait_phase::<MSSQLServer>(&env, "ms", DatabasePhase::Ready).await;
        let untouched = others.get("ms").await.unwrap();
        assert!(untouched.status.is_none(), "{:?}", untouched.status);
        assert!(untouched.finalizers().is_empty());
        let sets: kube::Api<StatefulSet> = kube::Api::namespaced(env.client.clone(), "other");
        assert!(
            sets.list(&ListParams::default())
                .await
                .unwrap()
                .items
                .is_empty()
        );
        env.stop().await;
    });
}

#[test]
fn sql_health_check_reports_an_unreachable_database() {
    run(async {
        let config = provisioner::Config {
            health_check: provisioner::HealthCheckMode::Sql,
            ..provisioner::Config::default()
        };
        let env = Env::start_with_config(testkit::SimOptions::default(), config).await;
        let mut db = mssql("ms", "2022-cu22", None);
        db.spec.health_checker = Some(api::common::HealthCheckSpec {
            period_seconds: Some(1),
            timeout_seconds: Some(2),
            failure_threshold: Some(1),
            disable_write_check: None,
        });
        create(&env, &db).await;
        // Pods become Ready in kube-sim, but no SQL Server answers behind the service.
        let probed: MSSQLServer = testkit::wait_for_object(
            &env.api(),
            "ms",
            "AcceptingConnection=False from a probe",
            WAIT,
            |db: &MSSQLServer| {
                condition(db, "ReplicaReady").is_some_and(|c| c.is_true())
                    && condition(db, "AcceptingConnection").is_some_and(|c| {
                        c.status == api::ConditionStatus::False
                            && c.message
                                .as_deref()
                                .is_some_and(|m| m.contains("ms.demo.svc:1433"))
                    })
            },
        )
        .await;
        let message = condition(&probed, "AcceptingConnection")
            .unwrap()
            .message
            .clone()
            .unwrap();
        assert!(message.contains("not accepting connections"), "{message}");
        let auth = env.api::<Secret>().get("ms-auth").await.unwrap();
        let password = String::from_utf8(auth.data.unwrap()["password"].0.clone()).unwrap();
        assert!(
            !message.contains(&password),
            "the password never appears in conditions"
        );
        assert_eq!(
            probed.status.as_ref().unwrap().phase,
            Some(DatabasePhase::Provisioning)
        );
        env.stop().await;
    });
}

#[test]
fn tls_without_cert_manager_is_blocked_with_a_clear_reason() {
    run(async {
        let sim = testkit::SimOptions {
            no_cert_manager: true,
            ..testkit::SimOptions::default()
        };
        let cluster = testkit::TestCluster::start(sim).await.unwrap();
        cluster.namespace(NS).await.unwrap();
        let client = operator_common::connect(
            Some(cluster.sim.kubeconfig_path()),
            &operator_common::user_agent("provisioner"),
        )
        .await
        .unwrap();
        let ctx = operator_common::OperatorContext {
            client,
            registry: prometheus::Registry::new(),
            namespaces: Vec::new(),
        };
        let task = tokio::spawn(provisioner::run(ctx, provisioner::Config::default()));
        let dbs: kube::Api<MSSQLServer> = kube::Api::namespaced(cluster.client.clone(), NS);
        dbs.create(&PostParams::default(), &mssql("ms", "2022-cu22", None))
            .await
            .unwrap();
        let blocked = testkit::wait_for_object(
            &dbs,
            "ms",
            "ProvisioningBlocked",
            WAIT,
            |db: &MSSQLServer| condition(db, "ProvisioningBlocked").is_some(),
        )
        .await;
        assert_eq!(
            condition(&blocked, "ProvisioningBlocked")
                .unwrap()
                .reason
                .as_deref(),
            Some("CertManagerNotInstalled")
        );
        let sets: kube::Api<StatefulSet> = kube::Api::namespaced(cluster.client.clone(), NS);
        assert!(
            sets.list(&ListParams::default())
                .await
                .unwrap()
                .items
                .is_empty()
        );
        task.abort();
        let _ = task.await;
        cluster.shutdown().await;
    });
}

/// Issue 20, defect 3: halts and deletions made while the provisioner was down are acted on as
/// soon as it starts again, not after its caches' sync timeout (60 s). The bound below is far
/// under that timeout and far over what it takes (measured and printed).
#[test]
fn changes_made_while_the_provisioner_was_down_act_at_once() {
    run(async {
        let mut env = Env::start().await;
        for name in ["keep", "halt", "gone"] {
            create(&env, &mssql(name, "2022-cu22", None)).await;
        }
        for name in ["keep", "halt", "gone"] {
            wait_phase::<MSSQLServer>(&env, name, DatabasePhase::Ready).await;
        }
        for round in 0..3 {
            env.stop_provisioner().await;
            let (halt, gone) = (format!("halt{round}"), format!("gone{round}"));
            if round > 0 {
                // Fresh databases for this round, provisioned while the provisioner runs.
                env.start_provisioner().await;
                create(&env, &mssql(&halt, "2022-cu22", None)).await;
                create(&env, &mssql(&gone, "2022-cu22", None)).await;
                wait_phase::<MSSQLServer>(&env, &halt, DatabasePhase::Ready).await;
                wait_phase::<MSSQLServer>(&env, &gone, DatabasePhase::Ready).await;
                env.stop_provisioner().await;
            } else {
                // Round 0 uses the first two databases.
            }
            let (halt, gone) = if round == 0 {
                ("halt".to_owned(), "gone".to_owned())
            } else {
                (halt, gone)
            };
            patch_spec(&env, &halt, json!({"halted": true})).await;
            env.api::<MSSQLServer>()
                .delete(&gone, &kube::api::DeleteParams::default())
                .await
                .unwrap();
            let started = std::time::Instant::now();
            env.start_provisioner().await;
            let bound = std::time::Duration::from_secs(20);
            testkit::eventually("the halt and the deletion carried out", bound, || async {
                let sets: Vec<String> = env
                    .api::<StatefulSet>()
                    .list(&ListParams::default())
                    .await
                    .ok()?
                    .items
                    .iter()
                    .map(|s| s.name_any())
                    .collect();
                let gone_db = env.api::<MSSQLServer>().get_opt(&gone).await.ok()?;
                (!sets.contains(&halt) && !sets.contains(&gone) && gone_db.is_none()).then_some(())
            })
            .await;
            eprintln!(
                "MEASURED round {round}: halt and deletion done {:?} after the provisioner started",
                started.elapsed()
            );
            assert!(
                sets_contain(&env, "keep").await,
                "the untouched database keeps its children"
            );
        }
        env.stop().await;
    });
}

async fn sets_contain(env: &Env, name: &str) -> bool {
    env.api::<StatefulSet>()
        .get_opt(name)
        .await
        .unwrap()
        .is_some()
}

/// Issue 20, defect 5: replica counts are bounded where the user writes them. An AG of more
/// than 9 replicas (SQL Server's limit) or a count past i32 (which used to be stored and then
/// broke every typed list of the kind) is refused at admission with the field and the bound;
/// SingleStore sets past 256 pods likewise.
#[test]
fn out_of_range_replica_counts_are_refused_at_admission() {
    use kube::api::DynamicObject;
    use kube::discovery::ApiResource;
    run(async {
        let env = Env::start().await;
        let create_raw = |kind: &'static str, plural: &'static str, body: serde_json::Value| {
            let client = env.client.clone();
            async move {
                let resource = ApiResource {
                    group: "kubedb.com".into(),
                    version: "v1alpha2".into(),
                    api_version: "kubedb.com/v1alpha2".into(),
                    kind: kind.into(),
                    plural: plural.into(),
                };
                let api: kube::Api<DynamicObject> =
                    kube::Api::namespaced_with(client, NS, &resource);
                let object: DynamicObject = serde_json::from_value(body).unwrap();
                api.create(&PostParams::default(), &object).await
            }
        };
        for (replicas, bound) in [
            (json!(10), "less than or equal to 9"),
            (json!(2_147_483_648_u64), "less than or equal to 9"),
        ] {
            let mut body = serde_json::to_value(mssql("big", "2022-cu22", Some(3))).unwrap();
            body["spec"]["replicas"] = replicas.clone();
            match create_raw("MSSQLServer", "mssqlservers", body).await {
                Err(kube::Error::Api(status)) => {
                    assert_eq!(status.code, 422, "{status:?}");
                    assert!(
                        status.message.contains("spec.replicas") && status.message.contains(bound),
                        "{}",
                        status.message
                    );
                }
                other => panic!("replicas {replicas} accepted: {other:?}"),
            }
        }
        let mut body = serde_json::to_value(singlestore("wide", "8.9.3", Some((2, 3)))).unwrap();
        body["spec"]["topology"]["leaf"]["replicas"] = json!(257);
        match create_raw("Singlestore", "singlestores", body).await {
            Err(kube::Error::Api(status)) => assert!(
                status.message.contains("spec.topology.leaf.replicas")
                    && status.message.contains("less than or equal to 256"),
                "{}",
                status.message
            ),
            other => panic!("257 leaves accepted: {other:?}"),
        }
        env.stop().await;
    });
}

/// Issue 20, defect 6: a name the CRD accepts (up to 63 characters) but whose derived names do
/// not fit is blocked with the child that does not fit and the longest name that would; nothing
/// is created, and a shorter name provisions.
#[test]
fn names_too_long_for_their_children_are_blocked_with_the_longest_that_fits() {
    run(async {
        let env = Env::start().await;
        let long = format!("ag{}", "x".repeat(48)); // 50 characters
        create(&env, &mssql(&long, "2022-cu22", Some(2))).await;
        let blocked: MSSQLServer = testkit::wait_for_object(
            &env.api(),
            &long,
            "ProvisioningBlocked",
            WAIT,
            |db: &MSSQLServer| condition(db, "ProvisioningBlocked").is_some(),
        )
        .await;
        let c = condition(&blocked, "ProvisioningBlocked").unwrap();
        assert_eq!(c.reason.as_deref(), Some("InvalidSpec"));
        let message = c.message.clone().unwrap_or_default();
        assert!(
            message.contains("StatefulSet")
                && message.contains("use a name of at most 44 characters"),
            "{message}"
        );
        assert!(
            env.api::<StatefulSet>()
                .list(&ListParams::default())
                .await
                .unwrap()
                .items
                .is_empty(),
            "nothing created"
        );
        let fits = format!("ag{}", "x".repeat(42)); // 44 characters
        create(&env, &mssql(&fits, "2022-cu22", Some(2))).await;
        wait_phase::<MSSQLServer>(&env, &fits, DatabasePhase::Ready).await;
        env.stop().await;
    });
}

/// Issue 20, defect 4: spec edits that would cut a running database off its data, or change its
/// version outside an ops request, are refused: the children stay as they are, the condition
/// `SpecChangeRefused` and a Warning say what was refused and what to do instead, the database
/// stays Ready, and setting the spec back clears it.
#[test]
fn spec_changes_that_would_cut_the_data_off_are_refused_and_nothing_changes() {
    run(async {
        let env = Env::start().await;
        create(&env, &mssql("db", "2022-cu22", None)).await;
        wait_phase::<MSSQLServer>(&env, "db", DatabasePhase::Ready).await;
        let sts_before = env.api::<StatefulSet>().get("db").await.unwrap();
        let pvcs_before = pvc_uids(&env).await;
        let refused = |reason: &'static str| {
            let api = env.api::<MSSQLServer>();
            async move {
                testkit::wait_for_object(&api, "db", reason, WAIT, |db: &MSSQLServer| {
                    condition(db, "SpecChangeRefused")
                        .is_some_and(|c| c.reason.as_deref() == Some(reason))
                })
                .await
            }
        };
        let cases = [
            (
                json!({"storage": {"resources": {"requests": {"storage": "5Gi"}}}}),
                "StorageChangeRefused",
                "VolumeExpansion",
            ),
            (
                json!({"storageType": "Ephemeral"}),
                "StorageChangeRefused",
                "Durable",
            ),
            (
                json!({"version": "2025-cu0"}),
                "VersionChangeRefused",
                "UpdateVersion ops request",
            ),
        ];
        let original =
            serde_json::to_value(&env.api::<MSSQLServer>().get("db").await.unwrap().spec).unwrap();
        for (change, reason, hint) in cases {
            patch_spec(&env, "db", change.clone()).await;
            let db = refused(reason).await;
            let c = condition(&db, "SpecChangeRefused").unwrap();
            assert!(
                c.message.as_deref().unwrap_or_default().contains(hint),
                "{change}: {c:?}"
            );
            assert_eq!(
                db.status.as_ref().unwrap().phase,
                Some(DatabasePhase::Ready),
                "{change}"
            );
            let warning = event(&env, reason, "db").await;
            assert_eq!(warning.type_.as_deref(), Some("Warning"));
            let sts = env.api::<StatefulSet>().get("db").await.unwrap();
            assert_eq!(
                sts.spec, sts_before.spec,
                "{change}: the StatefulSet is unchanged"
            );
            assert_eq!(
                pvc_uids(&env).await,
                pvcs_before,
                "{change}: the volumes are kept"
            );
            // Set back: the refusal goes.
            let back: serde_json::Value = change
                .as_object()
                .unwrap()
                .keys()
                .map(|k| (k.clone(), original[k].clone()))
                .collect::<serde_json::Map<_, _>>()
                .into();
            patch_spec(&env, "db", back).await;
            testkit::wait_for_object(&env.api(), "db", "no refusal", WAIT, |db: &MSSQLServer| {
                condition(db, "SpecChangeRefused").is_none()
            })
            .await;
        }
        env.stop().await;
    });
}
