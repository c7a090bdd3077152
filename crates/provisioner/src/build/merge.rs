//! How the user's templates are laid over what the builders produce: `spec.podTemplate.spec`
//! over the pod spec and `spec.serviceTemplates[].spec` over a service spec. The overlay is done
//! on the JSON form, field by field, because "a field the user set replaces ours" is a rule about
//! every field of the Kubernetes types, present and future.

use api::common::PodTemplateSpec;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::plan::PlanError;

/// Merges list items by `key`: an overlay item with the key of a base item is merged into it
/// (overlay fields win), other overlay items are appended.
pub(crate) fn merge_keyed(base: &mut Vec<Value>, overlay: &[Value], key: &str) {
    for item in overlay {
        let id = item.get(key);
        match base.iter_mut().find(|b| id.is_some() && b.get(key) == id) {
            Some(existing) => merge_object(existing, item),
            None => base.push(item.clone()),
        }
    }
}

/// Overlays the fields of `overlay` on `base` (one level: overlay values replace base values).
fn merge_object(base: &mut Value, overlay: &Value) {
    if let (Some(base), Some(overlay)) = (base.as_object_mut(), overlay.as_object()) {
        for (k, v) in overlay {
            if !v.is_null() {
                base.insert(k.clone(), v.clone());
            }
        }
    }
}

/// Merges a user container into one of ours: `env`, `volumeMounts` and `ports` are merged by
/// name (port: `containerPort`), `name` and `image` stay ours (images come from the Version),
/// every other field the user set replaces ours (for example `resources` as a whole).
fn merge_container(base: &mut Value, user: &Value) {
    let Some(user) = user.as_object() else { return };
    for (key, value) in user {
        match key.as_str() {
            "name" | "image" => {}
            "env" | "volumeMounts" | "ports" => {
                let id = if key == "ports" {
                    "containerPort"
                } else {
                    "name"
                };
                let list = base
                    .as_object_mut()
                    .expect("containers are objects")
                    .entry(key.clone())
                    .or_insert_with(|| json!([]));
                if let (Some(list), Some(items)) = (list.as_array_mut(), value.as_array()) {
                    merge_keyed(list, items, id);
                }
            }
            _ if value.is_null() => {}
            _ => {
                base[key] = value.clone();
            }
        }
    }
}

fn merge_containers(base: &mut Value, user: &Value) {
    let Some(user) = user.as_array() else { return };
    let list = base.as_array_mut().expect("container lists are arrays");
    for container in user {
        let name = container.get("name");
        match list.iter_mut().find(|c| c.get("name") == name) {
            Some(existing) => merge_container(existing, container),
            None => list.push(container.clone()),
        }
    }
}

/// Merges the user's `podTemplate.spec` over the generated pod spec: containers and init
/// containers by name (see [`merge_container`]), volumes by name (appended), the pod security
/// context field by field, and every other field the user set replaces the generated one.
fn merge_pod_spec_json(
    mut base: Value,
    user: Option<&PodTemplateSpec>,
) -> Result<Value, PlanError> {
    let Some(spec) = user.and_then(|t| t.spec.as_ref()) else {
        return Ok(base);
    };
    let user = serde_json::to_value(spec)
        .map_err(|e| PlanError::invalid(format!("spec.podTemplate.spec: {e}")))?;
    let Some(user) = user.as_object() else {
        return Ok(base);
    };
    let obj = base.as_object_mut().expect("pod specs are objects");
    for (key, value) in user {
        match key.as_str() {
            "containers" | "initContainers" => {
                let list = obj.entry(key.clone()).or_insert_with(|| json!([]));
                merge_containers(list, value);
            }
            "volumes" => {
                let list = obj.entry(key.clone()).or_insert_with(|| json!([]));
                if let (Some(list), Some(items)) = (list.as_array_mut(), value.as_array()) {
                    merge_keyed(list, items, "name");
                }
            }
            "securityContext" => {
                let sc = obj.entry(key.clone()).or_insert_with(|| json!({}));
                merge_object(sc, value);
            }
            // A PetSet concept; StatefulSets express placement with spread constraints.
            "podPlacementPolicy" => {}
            _ => {
                obj.insert(key.clone(), value.clone());
            }
        }
    }
    Ok(base)
}

/// Merges the user's `podTemplate.spec` over the generated pod spec (see [`merge_pod_spec_json`]
/// for the rules).
pub fn merge_pod_spec(
    base: k8s_openapi::api::core::v1::PodSpec,
    user: Option<&PodTemplateSpec>,
) -> Result<k8s_openapi::api::core::v1::PodSpec, PlanError> {
    if user.and_then(|t| t.spec.as_ref()).is_none() {
        return Ok(base);
    }
    let merged = merge_pod_spec_json(to_json(&base, "the pod spec")?, user)?;
    from_json(merged, "spec.podTemplate.spec")
}

/// A typed object as JSON; `what` names it in the error.
pub(crate) fn to_json<T: Serialize>(value: &T, what: &str) -> Result<Value, PlanError> {
    serde_json::to_value(value).map_err(|e| PlanError::invalid(format!("{what}: {e}")))
}

/// JSON as a typed object; `what` names the field in the error.
pub(crate) fn from_json<T: DeserializeOwned>(value: Value, what: &str) -> Result<T, PlanError> {
    serde_json::from_value(value).map_err(|e| PlanError::invalid(format!("{what}: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use api::common::PodSpec;
    use k8s_openapi::api::core::v1::{Container, EnvVar, ResourceRequirements};
    use std::collections::BTreeMap;

    #[test]
    fn pod_spec_merge_keeps_ours_and_adds_users() {
        let base = json!({
            "containers": [{"name": "mssql", "image": "ours", "env": [{"name": "A", "value": "1"}],
                            "resources": {"requests": {"cpu": "1"}}}],
            "securityContext": {"fsGroup": 10001},
        });
        let user = PodTemplateSpec {
            spec: Some(PodSpec {
                containers: Some(vec![
                    Container {
                        name: "mssql".into(),
                        image: Some("theirs".into()),
                        env: Some(vec![
                            EnvVar {
                                name: "A".into(),
                                value: Some("2".into()),
                                ..Default::default()
                            },
                            EnvVar {
                                name: "MSSQL_PID".into(),
                                value: Some("Evaluation".into()),
                                ..Default::default()
                            },
                        ]),
                        resources: Some(ResourceRequirements::default()),
                        ..Default::default()
                    },
                    Container {
                        name: "sidecar".into(),
                        image: Some("s".into()),
                        ..Default::default()
                    },
                ]),
                node_selector: Some(BTreeMap::from([("disk".into(), "ssd".into())])),
                security_context: Some(k8s_openapi::api::core::v1::PodSecurityContext {
                    run_as_non_root: Some(true),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        };
        let merged = merge_pod_spec_json(base, Some(&user)).unwrap();
        let containers = merged["containers"].as_array().unwrap();
        assert_eq!(containers.len(), 2);
        assert_eq!(
            containers[0]["image"], "ours",
            "images come from the Version"
        );
        assert_eq!(
            containers[0]["env"],
            json!([{"name": "A", "value": "2"}, {"name": "MSSQL_PID", "value": "Evaluation"}])
        );
        assert_eq!(
            containers[0]["resources"],
            json!({}),
            "user resources replace the defaults"
        );
        assert_eq!(containers[1]["name"], "sidecar");
        assert_eq!(merged["nodeSelector"], json!({"disk": "ssd"}));
        assert_eq!(
            merged["securityContext"],
            json!({"fsGroup": 10001, "runAsNonRoot": true})
        );
    }

    #[test]
    fn typed_merge_without_a_template_keeps_the_spec() {
        let base = k8s_openapi::api::core::v1::PodSpec {
            containers: vec![Container {
                name: "mssql".into(),
                ..Default::default()
            }],
            ..Default::default()
        };
        assert_eq!(merge_pod_spec(base.clone(), None).unwrap(), base);
        let user = PodTemplateSpec {
            spec: Some(PodSpec {
                node_selector: Some(BTreeMap::from([("disk".into(), "ssd".into())])),
                ..Default::default()
            }),
            ..Default::default()
        };
        let merged = merge_pod_spec(base, Some(&user)).unwrap();
        assert_eq!(merged.containers[0].name, "mssql");
        assert_eq!(merged.node_selector.unwrap()["disk"], "ssd");
    }
}
