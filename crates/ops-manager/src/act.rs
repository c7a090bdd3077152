//! Carries out a decision: the status change first, then the effect, then the Events.

use api::conditions::{ConditionStatus, db_reasons, db_types};
use api::names::OPS_MANAGER_FIELD_MANAGER;
use api::ops::OpsRequestStatus;
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, DeleteParams, EvictParams, Patch, PatchParams, Preconditions};
use kube::{Client, Resource};
use operator_common::error::{Error, Result};
use operator_common::finalizer::{with_finalizer, without_finalizer};
use serde_json::{Value, json};

use crate::controller::FINALIZER;
use crate::kinds::OpsKind;
use crate::machine::Effect;
use crate::model::{KindSteps, RequestView};
use crate::plan::StsPatch;

/// Writes the request's status with server-side apply (the ops-manager owns it entirely).
pub async fn write_status<K: OpsKind>(
    client: &Client,
    req: &RequestView,
    status: &OpsRequestStatus,
) -> Result<()> {
    let api: Api<K> = Api::namespaced(client.clone(), &req.namespace);
    let body = json!({
        "apiVersion": K::api_version(&()),
        "kind": K::kind(&()),
        "metadata": {"name": req.name},
        "status": status,
    });
    api.patch_status(
        &req.name,
        &PatchParams::apply(OPS_MANAGER_FIELD_MANAGER).force(),
        &Patch::Apply(&body),
    )
    .await
    .map_err(|e| Error::kube(format!("writing the status of {}", request(req)), e))?;
    Ok(())
}

fn manager_params() -> PatchParams {
    PatchParams {
        field_manager: Some(OPS_MANAGER_FIELD_MANAGER.to_owned()),
        ..PatchParams::default()
    }
}

/// `<Kind>OpsRequest <namespace>/<name>`, for error messages.
fn request(req: &RequestView) -> String {
    format!("{} {}/{}", req.kind.ops_kind(), req.namespace, req.name)
}

/// `<Kind> <namespace>/<database>`, for error messages.
fn database(req: &RequestView) -> String {
    format!("{} {}/{}", req.kind.as_str(), req.namespace, req.database)
}

/// The merge patch that asks the agents to hand the primary role away from `pod` until `until`.
pub fn handover_patch(pod: &str, until: Timestamp) -> Value {
    serde_json::json!({"metadata": {"annotations": {
        api::names::HANDOVER_FROM_ANNOTATION: pod,
        api::names::HANDOVER_UNTIL_ANNOTATION: until.to_string(),
    }}})
}

/// Whether an API error means "someone else already did it / the target is gone".
fn benign(err: &kube::Error, codes: &[u16]) -> bool {
    matches!(err, kube::Error::Api(s) if codes.contains(&s.code))
}

/// Performs `effect` for the request `object`.
pub async fn perform<K: OpsKind>(
    client: &Client,
    object: &K,
    req: &RequestView,
    effect: &Effect,
) -> Result<()> {
    let ns = req.namespace.as_str();
    match effect {
        Effect::None => Ok(()),
        Effect::AddFinalizer | Effect::RemoveFinalizer => {
            let adding = *effect == Effect::AddFinalizer;
            let patch = if adding {
                with_finalizer(object, FINALIZER)
            } else {
                without_finalizer(object, FINALIZER)
            };
            // None: the object as read already is as wanted (the machine decided on the same
            // object, so this does not happen in practice).
            let Some(patch) = patch else {
                return Ok(());
            };
            let api: Api<K> = Api::namespaced(client.clone(), ns);
            match api
                .patch(&req.name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
            {
                Ok(_) => Ok(()),
                Err(e) if !adding && benign(&e, &[404]) => Ok(()),
                Err(e) => {
                    let action = if adding { "adding" } else { "removing" };
                    Err(Error::kube(
                        format!("{action} the finalizer of {}", request(req)),
                        e,
                    ))
                }
            }
        }
        Effect::Pause => pause::<K>(client, req).await,
        Effect::Resume => resume::<K>(client, req).await,
        Effect::PatchStatefulSets(patches) => {
            let api: Api<StatefulSet> = Api::namespaced(client.clone(), ns);
            for p in patches {
                let body = sts_apply_body(p, req.target_version.as_deref());
                api.patch(
                    &p.sts,
                    &PatchParams::apply(OPS_MANAGER_FIELD_MANAGER).force(),
                    &Patch::Apply(&body),
                )
                .await
                .map_err(|e| Error::kube(format!("patching StatefulSet {ns}/{}", p.sts), e))?;
            }
            Ok(())
        }
        Effect::Evict { pod, uid } => {
            let api: Api<Pod> = Api::namespaced(client.clone(), ns);
            let params = EvictParams {
                delete_options: Some(DeleteParams {
                    preconditions: Some(Preconditions {
                        uid: Some(uid.clone()),
                        resource_version: None,
                    }),
                    ..DeleteParams::default()
                }),
                ..EvictParams::default()
            };
            match api.evict(pod, &params).await {
                Ok(_) => Ok(()),
                // 429: a PodDisruptionBudget refused; the machine tries again later (the
                // condition already records the intent and the UID). 404/409: that incarnation is
                // gone already.
                Err(e) if benign(&e, &[404, 409, 429]) => {
                    tracing::info!(pod, error = %e, "eviction not carried out now; will look again");
                    Ok(())
                }
                Err(e) => Err(Error::kube(format!("evicting pod {ns}/{pod}"), e)),
            }
        }
        Effect::DeletePod { pod, uid } => {
            let api: Api<Pod> = Api::namespaced(client.clone(), ns);
            let params = DeleteParams {
                preconditions: Some(Preconditions {
                    uid: Some(uid.clone()),
                    resource_version: None,
                }),
                ..DeleteParams::default()
            };
            match api.delete(pod, &params).await {
                Ok(_) => Ok(()),
                Err(e) if benign(&e, &[404, 409]) => Ok(()),
                Err(e) => Err(Error::kube(format!("deleting pod {ns}/{pod}"), e)),
            }
        }
        Effect::RequestHandover { pod, until } => {
            let api: Api<Lease> = Api::namespaced(client.clone(), ns);
            let lease = req.kind.leader_lease(&req.database);
            match api
                .patch(
                    &lease,
                    &manager_params(),
                    &Patch::Merge(&handover_patch(pod, *until)),
                )
                .await
            {
                Ok(_) => Ok(()),
                // No Lease: no agent has run yet; the switchover times out and the eviction
                // goes ahead.
                Err(e) if benign(&e, &[404]) => {
                    tracing::warn!(lease, error = %e, "no primary Lease to request a switchover on");
                    Ok(())
                }
                Err(e) => Err(Error::kube(
                    format!(
                        "requesting a switchover of {} on Lease {ns}/{lease}",
                        database(req)
                    ),
                    e,
                )),
            }
        }
        Effect::SetDatabaseVersion(version) => {
            let api: Api<K::Db> = Api::namespaced(client.clone(), ns);
            let body = json!({
                "apiVersion": K::Db::api_version(&()),
                "kind": K::Db::kind(&()),
                "metadata": {"name": req.database},
                "spec": {"version": version},
            });
            api.patch(
                &req.database,
                &PatchParams::apply(OPS_MANAGER_FIELD_MANAGER).force(),
                &Patch::Apply(&body),
            )
            .await
            .map_err(|e| Error::kube(format!("setting the version of {}", database(req)), e))?;
            Ok(())
        }
    }
}

/// The SSA body that sets just the images of a StatefulSet's containers, and the annotation naming
/// the Version they belong to ([`api::names::TARGET_VERSION_ANNOTATION`]), which keeps the
/// provisioner rendering these images if the request fails before `spec.version` moves.
pub fn sts_apply_body(p: &StsPatch, target_version: Option<&str>) -> Value {
    let list = |l: &[crate::model::ContainerImage]| -> Vec<Value> {
        l.iter()
            .map(|c| json!({"name": c.name, "image": c.image}))
            .collect()
    };
    let mut pod_spec = serde_json::Map::new();
    if !p.containers.is_empty() {
        pod_spec.insert("containers".into(), Value::Array(list(&p.containers)));
    }
    if !p.init_containers.is_empty() {
        pod_spec.insert(
            "initContainers".into(),
            Value::Array(list(&p.init_containers)),
        );
    }
    json!({
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": match target_version {
            Some(v) => json!({"name": p.sts, "annotations": {api::names::TARGET_VERSION_ANNOTATION: v}}),
            None => json!({"name": p.sts}),
        },
        "spec": {"template": {"spec": pod_spec}},
    })
}

/// The JSON patch operations that add `Paused=Unknown` to `conditions` (guarded by a test of the
/// observed list, so a concurrent change makes the patch fail and the step is decided again).
pub fn pause_patch(conditions: Option<&Value>, message: &str, now: Timestamp) -> Value {
    let paused = json!({
        "type": db_types::PAUSED,
        "status": ConditionStatus::Unknown.as_str(),
        "reason": db_reasons::PAUSED,
        "message": message,
        "lastTransitionTime": now.to_string(),
    });
    match conditions {
        Some(list @ Value::Array(_)) => json!([
            {"op": "test", "path": "/status/conditions", "value": list},
            {"op": "add", "path": "/status/conditions/-", "value": paused},
        ]),
        _ => json!([
            {"op": "add", "path": "/status/conditions", "value": [paused]},
        ]),
    }
}

async fn db_json<K: OpsKind>(client: &Client, req: &RequestView) -> Result<(Api<K::Db>, Value)> {
    let api: Api<K::Db> = Api::namespaced(client.clone(), &req.namespace);
    let db = api
        .get(&req.database)
        .await
        .map_err(|e| Error::kube(format!("reading {}", database(req)), e))?;
    let value = serde_json::to_value(&db).map_err(|e| Error::serialization(database(req), e))?;
    Ok((api, value))
}

async fn pause<K: OpsKind>(client: &Client, req: &RequestView) -> Result<()> {
    let (api, db) = db_json::<K>(client, req).await?;
    let conditions = db.pointer("/status/conditions");
    if conditions
        .and_then(Value::as_array)
        .is_some_and(|l| l.iter().any(|c| c["type"] == db_types::PAUSED))
    {
        // Never ask while any Paused condition exists (architecture: the Paused handshake).
        return Ok(());
    }
    let mut ops = Vec::new();
    if db.get("status").is_none_or(Value::is_null) {
        ops.push(json!({"op": "add", "path": "/status", "value": {}}));
    }
    if let Value::Array(more) = pause_patch(conditions, &req.pause_message(), Timestamp::now()) {
        ops.extend(more);
    }
    let patch: json_patch::Patch = serde_json::from_value(Value::Array(ops))
        .map_err(|e| Error::serialization("the pause patch", e))?;
    api.patch_status(&req.database, &manager_params(), &Patch::<()>::Json(patch))
        .await
        .map_err(|e| Error::kube(format!("pausing {}", database(req)), e))?;
    Ok(())
}

async fn resume<K: OpsKind>(client: &Client, req: &RequestView) -> Result<()> {
    let (api, db) = match db_json::<K>(client, req).await {
        Ok(found) => found,
        Err(Error::Kube { source, .. }) if benign(&source, &[404]) => return Ok(()),
        Err(e) => return Err(e),
    };
    let ours = req.pause_message();
    let Some(index) = db
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .and_then(|l| {
            l.iter()
                .position(|c| c["type"] == db_types::PAUSED && c["message"] == ours.as_str())
        })
    else {
        return Ok(());
    };
    let patch: json_patch::Patch = serde_json::from_value(json!([
        {"op": "test", "path": format!("/status/conditions/{index}/message"), "value": ours},
        {"op": "remove", "path": format!("/status/conditions/{index}")},
    ]))
    .map_err(|e| Error::serialization("the resume patch", e))?;
    api.patch_status(&req.database, &manager_params(), &Patch::<()>::Json(patch))
        .await
        .map_err(|e| Error::kube(format!("resuming {}", database(req)), e))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ContainerImage;

    #[test]
    fn sts_body_carries_only_images_and_the_target_version() {
        let patch = StsPatch {
            sts: "db".into(),
            containers: vec![ContainerImage::new("mssql", "img:2")],
            init_containers: vec![],
        };
        assert_eq!(
            sts_apply_body(&patch, Some("2025-cu0")),
            json!({"apiVersion": "apps/v1", "kind": "StatefulSet",
                   "metadata": {"name": "db", "annotations": {"ops.kubedb.com/target-version": "2025-cu0"}},
                   "spec": {"template": {"spec": {"containers": [{"name": "mssql", "image": "img:2"}]}}}})
        );
        assert_eq!(
            sts_apply_body(&patch, None)["metadata"],
            json!({"name": "db"})
        );
    }

    #[test]
    fn pause_patch_tests_the_observed_conditions() {
        let now = Timestamp::from_second(0).unwrap();
        let list = json!([{"type": "Ready", "status": "True"}]);
        let ops = pause_patch(Some(&list), "MSSQLServerOpsRequest r is in process", now);
        assert_eq!(ops[0]["op"], "test");
        assert_eq!(ops[0]["value"], list);
        assert_eq!(ops[1]["path"], "/status/conditions/-");
        assert_eq!(ops[1]["value"]["status"], "Unknown");
        assert_eq!(
            ops[1]["value"]["message"],
            "MSSQLServerOpsRequest r is in process"
        );
        let ops = pause_patch(None, "m", now);
        assert_eq!(ops[0]["path"], "/status/conditions");
    }
}
