//! kube-rs against kube-sim: typed CRUD, metadata, selectors, pagination, status isolation,
//! deletion semantics and garbage collection.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::{api_code, start, wait_for};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Pod, Secret};
use kube::api::{
    Api, DeleteParams, ListParams, ObjectMeta, Patch, PatchParams, PostParams, PropagationPolicy,
};
use serde_json::json;

fn cm(name: &str, labels: &[(&str, &str)]) -> ConfigMap {
    ConfigMap {
        metadata: ObjectMeta {
            name: Some(name.into()),
            labels: Some(
                labels
                    .iter()
                    .map(|(k, v)| ((*k).into(), (*v).into()))
                    .collect(),
            ),
            ..Default::default()
        },
        data: Some(BTreeMap::from([("k".into(), "v".into())])),
        ..Default::default()
    }
}

fn deployment(name: &str, image: &str) -> Deployment {
    serde_json::from_value(json!({
        "metadata": {"name": name},
        "spec": {
            "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "main", "image": image, "env": [{"name": "A", "value": "1"}]}]}}
        }
    }))
    .unwrap()
}

#[tokio::test]
async fn typed_crud_and_metadata() {
    let sim = start().await;
    let api: Api<ConfigMap> = Api::default_namespaced(sim.client());
    let created = api
        .create(&PostParams::default(), &cm("a", &[("app", "x")]))
        .await
        .unwrap();
    let meta = &created.metadata;
    assert_eq!(meta.uid.as_ref().unwrap().len(), 36);
    assert!(meta.creation_timestamp.is_some());
    let rv1: u64 = meta.resource_version.as_ref().unwrap().parse().unwrap();
    assert_eq!(meta.namespace.as_deref(), Some("default"));

    // AlreadyExists, NotFound.
    assert_eq!(
        api_code(api.create(&PostParams::default(), &cm("a", &[])).await),
        (409, "AlreadyExists".into())
    );
    assert_eq!(api_code(api.get("missing").await), (404, "NotFound".into()));

    // Update bumps the resourceVersion; a stale one is a 409 Conflict.
    let mut changed = created.clone();
    changed.data = Some(BTreeMap::from([("k".into(), "w".into())]));
    let updated = api
        .replace("a", &PostParams::default(), &changed)
        .await
        .unwrap();
    let rv2: u64 = updated
        .metadata
        .resource_version
        .as_ref()
        .unwrap()
        .parse()
        .unwrap();
    assert!(rv2 > rv1);
    match api.replace("a", &PostParams::default(), &changed).await {
        Err(kube::Error::Api(s)) => {
            assert_eq!((s.code, s.reason.as_str()), (409, "Conflict"));
            assert!(
                s.message.contains("the object has been modified"),
                "{}",
                s.message
            );
        }
        other => panic!("expected a conflict, got {other:?}"),
    }
    // A no-op update does not write.
    let same = api
        .replace("a", &PostParams::default(), &updated)
        .await
        .unwrap();
    assert_eq!(
        same.metadata.resource_version,
        updated.metadata.resource_version
    );

    // generateName.
    let generated = api
        .create(
            &PostParams::default(),
            &ConfigMap {
                metadata: ObjectMeta {
                    generate_name: Some("gen-".into()),
                    ..Default::default()
                },
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let name = generated.metadata.name.unwrap();
    assert!(name.starts_with("gen-") && name.len() == 9, "{name}");

    // Namespace existence.
    let other: Api<ConfigMap> = Api::namespaced(sim.client(), "nope");
    assert_eq!(
        api_code(other.create(&PostParams::default(), &cm("a", &[])).await),
        (404, "NotFound".into())
    );

    // Invalid names are 422.
    assert_eq!(
        api_code(
            api.create(&PostParams::default(), &cm("Bad_Name", &[]))
                .await
        )
        .0,
        422
    );

    // dryRun creates nothing.
    let dry = PostParams {
        dry_run: true,
        ..Default::default()
    };
    api.create(&dry, &cm("dry", &[])).await.unwrap();
    assert_eq!(api_code(api.get("dry").await).0, 404);

    // Delete returns the object; afterwards it is gone.
    api.delete("a", &DeleteParams::default()).await.unwrap();
    assert_eq!(api_code(api.get("a").await).0, 404);
    sim.shutdown().await;
}

#[tokio::test]
async fn selectors_and_pagination() {
    let sim = start().await;
    let api: Api<ConfigMap> = Api::default_namespaced(sim.client());
    for i in 0u32..7 {
        let tier = if i.is_multiple_of(2) { "even" } else { "odd" };
        api.create(
            &PostParams::default(),
            &cm(&format!("c{i}"), &[("tier", tier), ("n", &i.to_string())]),
        )
        .await
        .unwrap();
    }
    let names = |l: kube::api::ObjectList<ConfigMap>| {
        l.items
            .into_iter()
            .map(|c| c.metadata.name.unwrap())
            .collect::<Vec<_>>()
    };
    let cases = [
        ("tier=even", vec!["c0", "c2", "c4", "c6"]),
        ("tier!=even", vec!["c1", "c3", "c5"]),
        ("tier in (odd),n notin (1,3)", vec!["c5"]),
        ("n", vec!["c0", "c1", "c2", "c3", "c4", "c5", "c6"]),
        ("!n", vec![]),
    ];
    for (sel, want) in cases {
        assert_eq!(
            names(api.list(&ListParams::default().labels(sel)).await.unwrap()),
            want,
            "{sel}"
        );
    }
    let by_name = api
        .list(&ListParams::default().fields("metadata.name=c3"))
        .await
        .unwrap();
    assert_eq!(names(by_name), ["c3"]);
    let not_name = api
        .list(&ListParams::default().fields("metadata.name!=c3,metadata.namespace=default"))
        .await
        .unwrap();
    assert_eq!(not_name.items.len(), 6);

    // Pages of 3 with continue tokens.
    let mut seen = Vec::new();
    let mut token: Option<String> = None;
    let mut pages = 0;
    loop {
        let mut lp = ListParams::default().limit(3);
        if let Some(t) = &token {
            lp = lp.continue_token(t);
        }
        let page = api.list(&lp).await.unwrap();
        pages += 1;
        token = page.metadata.continue_.clone().filter(|t| !t.is_empty());
        seen.extend(names(page));
        if token.is_none() {
            break;
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(seen, ["c0", "c1", "c2", "c3", "c4", "c5", "c6"]);
    sim.shutdown().await;
}

#[tokio::test]
async fn status_isolation_and_generation() {
    let sim = start().await;
    let api: Api<Deployment> = Api::default_namespaced(sim.client());
    let mut d = deployment("web", "nginx:1");
    d.status = Some(serde_json::from_value(json!({"replicas": 9})).unwrap());
    let created = api.create(&PostParams::default(), &d).await.unwrap();
    assert_eq!(created.metadata.generation, Some(1));
    assert!(created.status.is_none(), "create ignores status");
    assert_eq!(
        created.spec.as_ref().unwrap().replicas,
        Some(1),
        "defaulted"
    );

    // A status write changes only status and keeps the generation.
    let status = json!({"status": {"replicas": 1, "readyReplicas": 1}, "spec": {"replicas": 5}});
    let after = api
        .patch_status("web", &PatchParams::default(), &Patch::Merge(&status))
        .await
        .unwrap();
    assert_eq!(after.status.as_ref().unwrap().ready_replicas, Some(1));
    assert_eq!(after.spec.as_ref().unwrap().replicas, Some(1));
    assert_eq!(after.metadata.generation, Some(1));

    // A main-resource write keeps the stored status; metadata-only changes keep the generation.
    let labels = json!({"metadata": {"labels": {"x": "y"}}, "status": {"replicas": 0}});
    let after = api
        .patch("web", &PatchParams::default(), &Patch::Merge(&labels))
        .await
        .unwrap();
    assert_eq!(after.status.as_ref().unwrap().replicas, Some(1));
    assert_eq!(after.metadata.generation, Some(1));
    let spec = json!({"spec": {"replicas": 3}});
    let after = api
        .patch("web", &PatchParams::default(), &Patch::Merge(&spec))
        .await
        .unwrap();
    assert_eq!(after.metadata.generation, Some(2));
    sim.shutdown().await;
}

#[tokio::test]
async fn finalizers_hold_objects_until_removed() {
    let sim = start().await;
    let api: Api<ConfigMap> = Api::default_namespaced(sim.client());
    let mut c = cm("held", &[]);
    c.metadata.finalizers = Some(vec!["example.com/hold".into()]);
    api.create(&PostParams::default(), &c).await.unwrap();
    let r = api.delete("held", &DeleteParams::default()).await.unwrap();
    let pending = r.left().expect("still present");
    assert!(pending.metadata.deletion_timestamp.is_some());
    assert!(api.get("held").await.is_ok());
    // New finalizers cannot be added while deleting.
    let add = json!({"metadata": {"finalizers": ["example.com/hold", "other"]}});
    assert_eq!(
        api_code(
            api.patch("held", &PatchParams::default(), &Patch::Merge(&add))
                .await
        )
        .0,
        403
    );
    let clear = json!({"metadata": {"finalizers": null}});
    api.patch("held", &PatchParams::default(), &Patch::Merge(&clear))
        .await
        .unwrap();
    assert_eq!(api_code(api.get("held").await).0, 404);

    // Preconditions.
    let c = api
        .create(&PostParams::default(), &cm("pre", &[]))
        .await
        .unwrap();
    let wrong = DeleteParams {
        preconditions: Some(kube::api::Preconditions {
            uid: Some("nope".into()),
            resource_version: None,
        }),
        ..Default::default()
    };
    assert_eq!(api_code(api.delete("pre", &wrong).await).0, 409);
    let right = DeleteParams {
        preconditions: Some(kube::api::Preconditions {
            uid: c.metadata.uid.clone(),
            resource_version: None,
        }),
        ..Default::default()
    };
    api.delete("pre", &right).await.unwrap();
    sim.shutdown().await;
}

fn owned_by(name: &str, owner: &ConfigMap, block: bool) -> Secret {
    serde_json::from_value(json!({
        "metadata": {"name": name, "ownerReferences": [{
            "apiVersion": "v1", "kind": "ConfigMap", "name": owner.metadata.name, "uid": owner.metadata.uid,
            "controller": true, "blockOwnerDeletion": block
        }]},
        "stringData": {"a": "b"}
    }))
    .unwrap()
}

#[tokio::test]
async fn garbage_collection_follows_propagation_policy() {
    let sim = start().await;
    let owners: Api<ConfigMap> = Api::default_namespaced(sim.client());
    let deps: Api<Secret> = Api::default_namespaced(sim.client());

    // Background (default): dependents go with the owner.
    let o = owners
        .create(&PostParams::default(), &cm("bg", &[]))
        .await
        .unwrap();
    deps.create(&PostParams::default(), &owned_by("bg-dep", &o, false))
        .await
        .unwrap();
    owners
        .delete("bg", &DeleteParams::background())
        .await
        .unwrap();
    wait_for("background GC", Duration::from_secs(5), || async {
        deps.get_opt("bg-dep")
            .await
            .unwrap()
            .is_none()
            .then_some(())
    })
    .await;

    // Orphan: dependents stay, without the owner reference.
    let o = owners
        .create(&PostParams::default(), &cm("or", &[]))
        .await
        .unwrap();
    deps.create(&PostParams::default(), &owned_by("or-dep", &o, false))
        .await
        .unwrap();
    owners.delete("or", &DeleteParams::orphan()).await.unwrap();
    wait_for("orphaned owner gone", Duration::from_secs(5), || async {
        owners.get_opt("or").await.unwrap().is_none().then_some(())
    })
    .await;
    let dep = deps.get("or-dep").await.unwrap();
    assert!(dep.metadata.owner_references.unwrap_or_default().is_empty());

    // Foreground: the owner waits (with foregroundDeletion) for blocking dependents.
    let o = owners
        .create(&PostParams::default(), &cm("fg", &[]))
        .await
        .unwrap();
    let mut d = owned_by("fg-dep", &o, true);
    d.metadata.finalizers = Some(vec!["example.com/slow".into()]);
    deps.create(&PostParams::default(), &d).await.unwrap();
    owners
        .delete(
            "fg",
            &DeleteParams {
                propagation_policy: Some(PropagationPolicy::Foreground),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let owner = owners.get("fg").await.unwrap();
    assert!(
        owner
            .metadata
            .finalizers
            .unwrap()
            .contains(&"foregroundDeletion".to_string())
    );
    assert!(
        deps.get("fg-dep")
            .await
            .unwrap()
            .metadata
            .deletion_timestamp
            .is_some()
    );
    deps.patch(
        "fg-dep",
        &PatchParams::default(),
        &Patch::Merge(&json!({"metadata": {"finalizers": null}})),
    )
    .await
    .unwrap();
    wait_for("foreground owner gone", Duration::from_secs(5), || async {
        owners.get_opt("fg").await.unwrap().is_none().then_some(())
    })
    .await;

    // A dependent whose owner no longer exists is collected.
    let gone = owners
        .create(&PostParams::default(), &cm("gone", &[]))
        .await
        .unwrap();
    owners
        .delete("gone", &DeleteParams::default())
        .await
        .unwrap();
    deps.create(&PostParams::default(), &owned_by("late-dep", &gone, false))
        .await
        .unwrap();
    wait_for(
        "dangling dependent collected",
        Duration::from_secs(5),
        || async {
            deps.get_opt("late-dep")
                .await
                .unwrap()
                .is_none()
                .then_some(())
        },
    )
    .await;
    sim.shutdown().await;
}

#[tokio::test]
async fn namespace_deletion_removes_contents() {
    let sim = start().await;
    let nss: Api<Namespace> = Api::all(sim.client());
    nss.create(
        &PostParams::default(),
        &serde_json::from_value(json!({"metadata": {"name": "scratch"}})).unwrap(),
    )
    .await
    .unwrap();
    let api: Api<ConfigMap> = Api::namespaced(sim.client(), "scratch");
    api.create(&PostParams::default(), &cm("one", &[]))
        .await
        .unwrap();
    let mut held = cm("held", &[]);
    held.metadata.finalizers = Some(vec!["example.com/hold".into()]);
    api.create(&PostParams::default(), &held).await.unwrap();
    nss.delete("scratch", &DeleteParams::default())
        .await
        .unwrap();
    let ns = nss.get("scratch").await.unwrap();
    assert_eq!(ns.status.unwrap().phase.as_deref(), Some("Terminating"));
    assert_eq!(api_code(api.get("one").await).0, 404);
    // New content is refused while terminating.
    match api.create(&PostParams::default(), &cm("two", &[])).await {
        Err(kube::Error::Api(s)) => {
            assert_eq!(s.code, 403);
            assert!(
                s.message.starts_with("configmaps \"two\" is forbidden: unable to create new content in namespace scratch"),
                "{}",
                s.message
            );
        }
        other => panic!("expected 403, got {other:?}"),
    }
    api.patch(
        "held",
        &PatchParams::default(),
        &Patch::Merge(&json!({"metadata": {"finalizers": null}})),
    )
    .await
    .unwrap();
    wait_for("namespace gone", Duration::from_secs(5), || async {
        nss.get_opt("scratch")
            .await
            .unwrap()
            .is_none()
            .then_some(())
    })
    .await;
    sim.shutdown().await;
}

#[tokio::test]
async fn pods_on_nodes_terminate_gracefully() {
    let sim = start().await;
    let pods: Api<Pod> = Api::default_namespaced(sim.client());
    let pod = |name: &str, node: Option<&str>| -> Pod {
        serde_json::from_value(json!({"metadata": {"name": name}, "spec": {"nodeName": node, "containers": [{"name": "c", "image": "busybox"}]}})).unwrap()
    };
    let created = pods
        .create(&PostParams::default(), &pod("unscheduled", None))
        .await
        .unwrap();
    assert_eq!(created.status.unwrap().phase.as_deref(), Some("Pending"));
    pods.delete("unscheduled", &DeleteParams::default())
        .await
        .unwrap();
    assert!(pods.get_opt("unscheduled").await.unwrap().is_none());

    pods.create(&PostParams::default(), &pod("running", Some("node-1")))
        .await
        .unwrap();
    pods.delete("running", &DeleteParams::default())
        .await
        .unwrap();
    let terminating = pods.get("running").await.unwrap();
    assert_eq!(terminating.metadata.deletion_grace_period_seconds, Some(30));
    pods.delete(
        "running",
        &DeleteParams {
            grace_period_seconds: Some(0),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert!(pods.get_opt("running").await.unwrap().is_none());
    sim.shutdown().await;
}

#[tokio::test]
async fn error_bodies_are_statuses() {
    let sim = start().await;
    let api: Api<ConfigMap> = Api::default_namespaced(sim.client());
    match api.get("nope").await {
        Err(kube::Error::Api(s)) => {
            assert!(s.is_failure());
            assert_eq!(s.message, "configmaps \"nope\" not found");
        }
        other => panic!("{other:?}"),
    }
    sim.shutdown().await;
}

#[tokio::test]
async fn pod_logs_come_from_the_log_registry() {
    let sim = start().await;
    let pods: Api<Pod> = Api::default_namespaced(sim.client());
    let pod: Pod = serde_json::from_value(json!({"metadata": {"name": "talker"}, "spec": {"containers": [{"name": "main", "image": "x"}, {"name": "side", "image": "y"}]}})).unwrap();
    pods.create(&PostParams::default(), &pod).await.unwrap();
    sim.pod_logs()
        .append("default", "talker", "main", b"one\ntwo\nthree\n");
    sim.pod_logs()
        .append("default", "talker", "side", b"sidecar\n");
    assert_eq!(
        pods.logs("talker", &Default::default()).await.unwrap(),
        "one\ntwo\nthree\n"
    );
    let side = kube::api::LogParams {
        container: Some("side".into()),
        ..Default::default()
    };
    assert_eq!(pods.logs("talker", &side).await.unwrap(), "sidecar\n");
    let tail = kube::api::LogParams {
        tail_lines: Some(1),
        ..Default::default()
    };
    assert_eq!(pods.logs("talker", &tail).await.unwrap(), "three\n");
    assert_eq!(
        api_code(pods.logs("nobody", &Default::default()).await).0,
        404
    );
    pods.delete("talker", &DeleteParams::default())
        .await
        .unwrap();
    assert!(
        sim.pod_logs().read("default", "talker", None).is_none(),
        "logs go with the pod"
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn eviction_honours_pod_disruption_budgets() {
    use k8s_openapi::api::policy::v1::PodDisruptionBudget;
    use kube::api::EvictParams;
    let sim = start().await;
    // kube retries 429 by itself by default; this test wants to see it.
    let mut config = kube::Config::new(sim.url().parse().unwrap());
    config.default_namespace = "default".into();
    config.default_retry = false;
    let client = kube::Client::try_from(config).unwrap();
    let pods: Api<Pod> = Api::default_namespaced(client.clone());
    let pdbs: Api<PodDisruptionBudget> = Api::default_namespaced(client);
    let pod: Pod = serde_json::from_value(
        json!({"metadata": {"name": "db-0", "labels": {"app": "db"}},
        "spec": {"nodeName": "n1", "containers": [{"name": "c", "image": "db:1"}]}}),
    )
    .unwrap();
    pods.create(&PostParams::default(), &pod).await.unwrap();
    let pdb: PodDisruptionBudget = serde_json::from_value(json!({"metadata": {"name": "db"},
        "spec": {"minAvailable": 1, "selector": {"matchLabels": {"app": "db"}}}}))
    .unwrap();
    pdbs.create(&PostParams::default(), &pdb).await.unwrap();
    let status = |allowed: i32| json!({"status": {"disruptionsAllowed": allowed, "currentHealthy": 1, "desiredHealthy": 1, "expectedPods": 1}});
    pdbs.patch_status("db", &PatchParams::default(), &Patch::Merge(&status(0)))
        .await
        .unwrap();
    match pods.evict("db-0", &EvictParams::default()).await {
        Err(kube::Error::Api(s)) => {
            assert_eq!((s.code, s.reason.as_str()), (429, "TooManyRequests"));
            assert!(s.message.contains("disruption budget"), "{}", s.message);
        }
        other => panic!("expected 429, got {other:?}"),
    }
    pdbs.patch_status("db", &PatchParams::default(), &Patch::Merge(&status(1)))
        .await
        .unwrap();
    let dry = EvictParams {
        post_options: PostParams {
            dry_run: true,
            ..Default::default()
        },
        ..Default::default()
    };
    pods.evict("db-0", &dry).await.unwrap();
    assert_eq!(
        pdbs.get("db")
            .await
            .unwrap()
            .status
            .unwrap()
            .disruptions_allowed,
        1,
        "dry run changes nothing"
    );
    assert!(
        pods.get("db-0")
            .await
            .unwrap()
            .metadata
            .deletion_timestamp
            .is_none()
    );
    pods.evict("db-0", &EvictParams::default()).await.unwrap();
    let st = pdbs.get("db").await.unwrap().status.unwrap();
    assert_eq!(st.disruptions_allowed, 0);
    assert!(st.disrupted_pods.unwrap().contains_key("db-0"));
    assert!(
        pods.get("db-0")
            .await
            .unwrap()
            .metadata
            .deletion_timestamp
            .is_some(),
        "graceful deletion started"
    );
    sim.shutdown().await;
}
