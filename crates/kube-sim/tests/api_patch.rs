//! Every patch type through kube-rs: merge, JSON (with `test`), strategic merge and server-side
//! apply with field ownership, conflicts and force.

mod common;

use common::{api_code, start};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::json;

fn deployment() -> Deployment {
    serde_json::from_value(json!({
        "metadata": {"name": "web"},
        "spec": {
            "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [
                    {"name": "main", "image": "nginx:1", "env": [{"name": "A", "value": "1"}]},
                    {"name": "side", "image": "busybox:1"}
                ]}}
        }
    }))
    .unwrap()
}

#[tokio::test]
async fn merge_json_and_strategic_patches() {
    let sim = start().await;
    let api: Api<Deployment> = Api::default_namespaced(sim.client());
    api.create(&PostParams::default(), &deployment())
        .await
        .unwrap();
    let pp = PatchParams::default();

    // Strategic: containers merge by name, env by name.
    let smp = json!({"spec": {"template": {"spec": {"containers": [{"name": "main", "image": "nginx:2", "env": [{"name": "B", "value": "2"}]}]}}}});
    let d = api.patch("web", &pp, &Patch::Strategic(smp)).await.unwrap();
    let containers = d.spec.unwrap().template.spec.unwrap().containers;
    assert_eq!(containers.len(), 2, "side container kept");
    assert_eq!(containers[0].image.as_deref(), Some("nginx:2"));
    let mut env: Vec<String> = containers[0]
        .env
        .clone()
        .unwrap()
        .into_iter()
        .map(|e| e.name)
        .collect();
    env.sort();
    assert_eq!(env, ["A", "B"], "env merged by name");

    // Merge patch replaces lists.
    let mp =
        json!({"spec": {"template": {"spec": {"containers": [{"name": "only", "image": "x:1"}]}}}});
    let d = api.patch("web", &pp, &Patch::Merge(&mp)).await.unwrap();
    assert_eq!(d.spec.unwrap().template.spec.unwrap().containers.len(), 1);

    // JSON patch with a passing and a failing test.
    let ok: json_patch::Patch = serde_json::from_value(json!([
        {"op": "test", "path": "/spec/replicas", "value": 1},
        {"op": "replace", "path": "/spec/replicas", "value": 2}
    ]))
    .unwrap();
    let d = api.patch("web", &pp, &Patch::<()>::Json(ok)).await.unwrap();
    assert_eq!(d.spec.unwrap().replicas, Some(2));
    let failing: json_patch::Patch = serde_json::from_value(json!([
        {"op": "test", "path": "/spec/replicas", "value": 1},
        {"op": "replace", "path": "/spec/replicas", "value": 5}
    ]))
    .unwrap();
    assert_eq!(
        api_code(api.patch("web", &pp, &Patch::<()>::Json(failing)).await).0,
        422
    );
    assert_eq!(
        api.get("web").await.unwrap().spec.unwrap().replicas,
        Some(2)
    );

    // A resourceVersion in a patch is a precondition.
    let stale = json!({"metadata": {"resourceVersion": "1"}, "spec": {"replicas": 3}});
    assert_eq!(
        api_code(api.patch("web", &pp, &Patch::Merge(&stale)).await),
        (409, "Conflict".into())
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn server_side_apply_ownership_and_conflicts() {
    let sim = start().await;
    let api: Api<ConfigMap> = Api::default_namespaced(sim.client());
    let alice = PatchParams::apply("alice");
    let bob = PatchParams::apply("bob");

    // Apply creates.
    let cfg = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cfg"}, "data": {"a": "1", "b": "2"}});
    let cm = api.patch("cfg", &alice, &Patch::Apply(&cfg)).await.unwrap();
    let managers: Vec<String> = cm
        .metadata
        .managed_fields
        .unwrap()
        .into_iter()
        .map(|m| m.manager.unwrap())
        .collect();
    assert_eq!(managers, ["alice"]);

    // Bob changing alice's field conflicts; force takes it over.
    let bob_cfg = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cfg"}, "data": {"a": "x"}});
    match api.patch("cfg", &bob, &Patch::Apply(&bob_cfg)).await {
        Err(kube::Error::Api(s)) => {
            assert_eq!((s.code, s.reason.as_str()), (409, "Conflict"));
            assert!(s.message.contains("alice"), "{}", s.message);
        }
        other => panic!("expected a conflict, got {other:?}"),
    }
    let cm = api
        .patch("cfg", &bob.clone().force(), &Patch::Apply(&bob_cfg))
        .await
        .unwrap();
    assert_eq!(cm.data.unwrap()["a"], "x");

    // Alice stops sending b: it is removed; a (now bob's) stays.
    let alice_cfg = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cfg"}, "data": {"c": "3"}});
    let cm = api
        .patch("cfg", &alice, &Patch::Apply(&alice_cfg))
        .await
        .unwrap();
    let data = cm.data.unwrap();
    assert_eq!(data.keys().cloned().collect::<Vec<_>>(), ["a", "c"]);

    // An apply without a field manager is rejected.
    let no_manager = PatchParams {
        field_manager: None,
        ..PatchParams::default()
    };
    assert_eq!(
        api_code(
            api.patch("cfg", &no_manager, &Patch::Apply(&alice_cfg))
                .await
        )
        .0,
        422
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn server_side_apply_merges_conditions_per_type() {
    let sim = start().await;
    let api: Api<Deployment> = Api::default_namespaced(sim.client());
    api.create(&PostParams::default(), &deployment())
        .await
        .unwrap();
    let cond = |t: &str, s: &str| json!({"type": t, "status": s, "reason": "R", "message": "m", "lastTransitionTime": "2026-01-01T00:00:00Z", "lastUpdateTime": "2026-01-01T00:00:00Z"});
    let a = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"}, "status": {"conditions": [cond("Available", "True")]}});
    let b = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"}, "status": {"conditions": [cond("Progressing", "True")]}});
    api.patch_status("web", &PatchParams::apply("a").force(), &Patch::Apply(&a))
        .await
        .unwrap();
    let d = api
        .patch_status("web", &PatchParams::apply("b").force(), &Patch::Apply(&b))
        .await
        .unwrap();
    let types: Vec<String> = d
        .status
        .unwrap()
        .conditions
        .unwrap()
        .into_iter()
        .map(|c| c.type_)
        .collect();
    assert_eq!(types, ["Available", "Progressing"]);
    sim.shutdown().await;
}
