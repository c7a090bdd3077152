//! Custom resources on kube-sim: CRD serving, schema validation and defaulting, the status and
//! scale subresources, discovery, CRD deletion and a `kube::runtime::Controller`.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{api_code, start, wait_for};
use futures::StreamExt;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, DeleteParams, DynamicObject, Patch, PatchParams, PostParams};
use kube::core::{ApiResource, GroupVersionKind};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::wait::{await_condition, conditions};
use kube::{CustomResource, CustomResourceExt, Resource, ResourceExt};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::json;

#[derive(CustomResource, Deserialize, Serialize, Clone, Debug, JsonSchema)]
#[kube(
    group = "example.com",
    version = "v1",
    kind = "Widget",
    namespaced,
    status = "WidgetStatus",
    shortname = "wd",
    scale(
        spec_replicas_path = ".spec.replicas",
        status_replicas_path = ".status.replicas"
    ),
    printcolumn = r#"{"name":"Size","type":"integer","jsonPath":".spec.size"}"#
)]
pub struct WidgetSpec {
    #[schemars(range(min = 1, max = 10))]
    size: i32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    replicas: Option<i32>,
    #[serde(default = "default_color")]
    #[schemars(default = "default_color")]
    color: String,
}

fn default_color() -> String {
    "blue".into()
}

#[derive(Deserialize, Serialize, Clone, Debug, Default, JsonSchema)]
pub struct WidgetStatus {
    doubled: Option<i32>,
    replicas: Option<i32>,
}

async fn install_crd(client: kube::Client) {
    let crds: Api<CustomResourceDefinition> = Api::all(client);
    crds.create(&PostParams::default(), &Widget::crd())
        .await
        .unwrap();
    let established = await_condition(
        crds,
        "widgets.example.com",
        conditions::is_crd_established(),
    );
    tokio::time::timeout(Duration::from_secs(5), established)
        .await
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn crds_serve_their_resources() {
    let sim = start().await;
    let client = sim.client();
    install_crd(client.clone()).await;

    // Discovery knows the new group.
    let discovery = kube::Discovery::new(client.clone()).run().await.unwrap();
    let (ar, caps) = discovery
        .resolve_gvk(&GroupVersionKind::gvk("example.com", "v1", "Widget"))
        .expect("discovered");
    assert_eq!(ar.plural, "widgets");
    assert!(
        caps.subresources
            .iter()
            .any(|(sr, _)| sr.plural == "widgets/status" || sr.plural == "status"),
        "{:?}",
        caps.subresources
    );

    let api: Api<Widget> = Api::default_namespaced(client.clone());
    let w = Widget::new(
        "w1",
        WidgetSpec {
            size: 3,
            replicas: Some(1),
            color: String::new(),
        },
    );
    let mut raw = serde_json::to_value(&w).unwrap();
    raw["spec"].as_object_mut().unwrap().remove("color");
    raw["spec"]["unknown"] = json!("pruned");
    let created: Widget = serde_json::from_value(
        serde_json::to_value(
            api.create(
                &PostParams::default(),
                &serde_json::from_value(raw).unwrap(),
            )
            .await
            .unwrap(),
        )
        .unwrap(),
    )
    .unwrap();
    assert_eq!(created.spec.color, "blue", "schema default applied");
    let dynamic: Api<DynamicObject> =
        Api::default_namespaced_with(client.clone(), &ApiResource::erase::<Widget>(&()));
    assert!(
        dynamic.get("w1").await.unwrap().data["spec"]
            .get("unknown")
            .is_none(),
        "unknown field pruned"
    );

    // Validation: minimum.
    let bad = Widget::new(
        "bad",
        WidgetSpec {
            size: 0,
            replicas: None,
            color: "red".into(),
        },
    );
    match api.create(&PostParams::default(), &bad).await {
        Err(kube::Error::Api(s)) => {
            assert_eq!((s.code, s.reason.as_str()), (422, "Invalid"));
            assert!(s.message.contains("spec.size"), "{}", s.message);
        }
        other => panic!("expected 422, got {other:?}"),
    }

    // Status subresource.
    let st = json!({"status": {"doubled": 6}, "spec": {"size": 9}});
    let after = api
        .patch_status("w1", &PatchParams::default(), &Patch::Merge(&st))
        .await
        .unwrap();
    assert_eq!(after.status.unwrap().doubled, Some(6));
    assert_eq!(after.spec.size, 3);

    // Scale subresource.
    let scale = api.get_scale("w1").await.unwrap();
    assert_eq!(scale.spec.unwrap().replicas, Some(1));
    api.patch_scale(
        "w1",
        &PatchParams::default(),
        &Patch::Merge(&json!({"spec": {"replicas": 4}})),
    )
    .await
    .unwrap();
    assert_eq!(api.get("w1").await.unwrap().spec.replicas, Some(4));
    assert_eq!(api.get("w1").await.unwrap().metadata.generation, Some(2));

    // Strategic merge patch is not supported for custom resources.
    assert_eq!(
        api_code(
            api.patch(
                "w1",
                &PatchParams::default(),
                &Patch::Strategic(json!({"spec": {"size": 2}}))
            )
            .await
        )
        .0,
        415
    );

    // Deleting the CRD stops serving the resource and removes its objects.
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    crds.delete("widgets.example.com", &DeleteParams::default())
        .await
        .unwrap();
    assert_eq!(api_code(api.get("w1").await).0, 404);
    install_crd(client.clone()).await;
    assert!(
        api.get_opt("w1").await.unwrap().is_none(),
        "objects do not survive their CRD"
    );
    sim.shutdown().await;
}

struct Ctx {
    api: Api<Widget>,
}

async fn reconcile(w: Arc<Widget>, ctx: Arc<Ctx>) -> Result<Action, kube::Error> {
    let doubled = w.spec.size * 2;
    if w.status.as_ref().and_then(|s| s.doubled) != Some(doubled) {
        let patch = json!({"status": {"doubled": doubled}});
        ctx.api
            .patch_status(
                &w.name_any(),
                &PatchParams::default(),
                &Patch::Merge(&patch),
            )
            .await?;
    }
    Ok(Action::await_change())
}

fn error_policy(_: Arc<Widget>, _: &kube::Error, _: Arc<Ctx>) -> Action {
    Action::requeue(Duration::from_millis(100))
}

#[tokio::test]
async fn controller_reconciles_custom_resources() {
    let sim = start().await;
    let client = sim.client();
    install_crd(client.clone()).await;
    let api: Api<Widget> = Api::default_namespaced(client.clone());
    for (i, size) in [1, 2, 3].iter().enumerate() {
        api.create(
            &PostParams::default(),
            &Widget::new(
                &format!("w{i}"),
                WidgetSpec {
                    size: *size,
                    replicas: None,
                    color: "red".into(),
                },
            ),
        )
        .await
        .unwrap();
    }
    let ctx = Arc::new(Ctx { api: api.clone() });
    let controller = tokio::spawn(
        Controller::new(api.clone(), Default::default())
            .run(reconcile, error_policy, ctx)
            .for_each(|_| async {}),
    );
    let all_done = || async {
        let list = api.list(&Default::default()).await.ok()?;
        list.items
            .iter()
            .all(|w| w.status.as_ref().and_then(|s| s.doubled) == Some(w.spec.size * 2))
            .then_some(())
    };
    wait_for("initial reconcile", Duration::from_secs(10), all_done).await;
    // A spec change is reconciled again.
    api.patch(
        "w1",
        &PatchParams::default(),
        &Patch::Merge(&json!({"spec": {"size": 7}})),
    )
    .await
    .unwrap();
    wait_for(
        "reconcile after change",
        Duration::from_secs(10),
        || async {
            let w = api.get("w1").await.ok()?;
            (w.status?.doubled == Some(14)).then_some(())
        },
    )
    .await;
    controller.abort();
    assert_eq!(Widget::kind(&()), "Widget");
    sim.shutdown().await;
}

#[tokio::test]
async fn multiple_versions_and_cel_rules() {
    let sim = start().await;
    let client = sim.client();
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let schema = json!({"openAPIV3Schema": {"type": "object", "properties": {"spec": {
        "type": "object",
        "properties": {"mode": {"type": "string", "x-kubernetes-validations": [
            {"rule": "self == oldSelf", "message": "mode is immutable"}
        ]}, "size": {"type": "integer"}},
        "x-kubernetes-validations": [{"rule": "self.size <= 5", "message": "size must be at most 5"}]
    }}}});
    let crd: CustomResourceDefinition = serde_json::from_value(json!({
        "metadata": {"name": "gizmos.example.com"},
        "spec": {"group": "example.com", "scope": "Namespaced",
            "names": {"plural": "gizmos", "singular": "gizmo", "kind": "Gizmo"},
            "versions": [
                {"name": "v1beta1", "served": true, "storage": false, "schema": schema},
                {"name": "v1", "served": true, "storage": true, "schema": schema}
            ]}
    }))
    .unwrap();
    crds.create(&PostParams::default(), &crd).await.unwrap();
    let established = await_condition(crds, "gizmos.example.com", conditions::is_crd_established());
    tokio::time::timeout(Duration::from_secs(5), established)
        .await
        .unwrap()
        .unwrap();

    let gvk = |v: &str| {
        ApiResource::from_gvk_with_plural(
            &GroupVersionKind::gvk("example.com", v, "Gizmo"),
            "gizmos",
        )
    };
    let v1: Api<DynamicObject> = Api::default_namespaced_with(client.clone(), &gvk("v1"));
    let beta: Api<DynamicObject> = Api::default_namespaced_with(client.clone(), &gvk("v1beta1"));
    let obj: DynamicObject =
        serde_json::from_value(json!({"apiVersion": "example.com/v1beta1", "kind": "Gizmo",
        "metadata": {"name": "g"}, "spec": {"mode": "a", "size": 1}}))
        .unwrap();
    beta.create(&PostParams::default(), &obj).await.unwrap();
    // Stored once, readable through every served version.
    let through_v1 = v1.get("g").await.unwrap();
    assert_eq!(through_v1.types.unwrap().api_version, "example.com/v1");
    assert_eq!(
        beta.get("g").await.unwrap().types.unwrap().api_version,
        "example.com/v1beta1"
    );

    // CEL: a transition rule with oldSelf, and a rule on the object.
    let change_mode = json!({"spec": {"mode": "b"}});
    match v1
        .patch("g", &PatchParams::default(), &Patch::Merge(&change_mode))
        .await
    {
        Err(kube::Error::Api(s)) => {
            assert_eq!(s.code, 422);
            assert!(s.message.contains("mode is immutable"), "{}", s.message);
        }
        other => panic!("expected 422, got {other:?}"),
    }
    let too_big = json!({"spec": {"size": 9}});
    match v1
        .patch("g", &PatchParams::default(), &Patch::Merge(&too_big))
        .await
    {
        Err(kube::Error::Api(s)) => assert!(
            s.message.contains("size must be at most 5"),
            "{}",
            s.message
        ),
        other => panic!("expected 422, got {other:?}"),
    }
    v1.patch(
        "g",
        &PatchParams::default(),
        &Patch::Merge(&json!({"spec": {"size": 5}})),
    )
    .await
    .unwrap();
    sim.shutdown().await;
}
