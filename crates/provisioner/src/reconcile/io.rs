//! Thin helpers over the API shared by the steps: the child kinds' APIs, reads of secrets,
//! deletes that count as writes, and the provisioner's patch parameters.

use std::collections::BTreeMap;

use api::names;
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{Secret, Service, ServiceAccount};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::api::{Api, DeleteParams, DynamicObject, ListParams, PatchParams};
use kube::discovery::ApiResource;
use kube::{Client, Resource};
use serde::de::DeserializeOwned;

use super::Context;
use crate::error::{Error, Result};
use crate::plan::ChildKind;

/// Patch parameters naming the provisioner's field manager (for merge patches).
pub fn manager_params() -> PatchParams {
    PatchParams {
        field_manager: Some(names::PROVISIONER_FIELD_MANAGER.into()),
        ..PatchParams::default()
    }
}

/// `cert-manager.io/v1` Certificate.
pub fn certificate_resource() -> ApiResource {
    ApiResource {
        group: "cert-manager.io".into(),
        version: "v1".into(),
        api_version: "cert-manager.io/v1".into(),
        kind: "Certificate".into(),
        plural: "certificates".into(),
    }
}

/// The API of one kind of child in `ns`.
pub fn api_for(client: &Client, ns: &str, kind: ChildKind) -> Api<DynamicObject> {
    let resource = match kind {
        ChildKind::StatefulSet => ApiResource::erase::<StatefulSet>(&()),
        ChildKind::Service => ApiResource::erase::<Service>(&()),
        ChildKind::Secret => ApiResource::erase::<Secret>(&()),
        ChildKind::PodDisruptionBudget => ApiResource::erase::<PodDisruptionBudget>(&()),
        ChildKind::Certificate => certificate_resource(),
        ChildKind::ServiceAccount => ApiResource::erase::<ServiceAccount>(&()),
        ChildKind::Role => ApiResource::erase::<Role>(&()),
        ChildKind::RoleBinding => ApiResource::erase::<RoleBinding>(&()),
    };
    Api::namespaced_with(client.clone(), ns, &resource)
}

/// A label selector query (`a=1,b=2`).
pub fn selector_string(labels: &BTreeMap<String, String>) -> String {
    labels
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// Whether the owner references name `uid` as the controller.
pub fn is_controlled_by(refs: Option<&[OwnerReference]>, uid: &str) -> bool {
    refs.into_iter()
        .flatten()
        .any(|r| r.uid == uid && r.controller == Some(true))
}

/// Lists the objects `selector` selects.
pub async fn list<K>(api: Api<K>, selector: &str, what: &str) -> Result<Vec<K>>
where
    K: Resource + Clone + DeserializeOwned + std::fmt::Debug,
{
    api.list(&ListParams::default().labels(selector))
        .await
        .map(|l| l.items)
        .map_err(|e| Error::kube(format!("listing {what}"), e))
}

/// Reads a secret; `None` when it does not exist.
pub async fn get_secret(api: &Api<Secret>, name: &str) -> Result<Option<Secret>> {
    api.get_opt(name)
        .await
        .map_err(|e| Error::kube(format!("reading secret {name}"), e))
}

/// A secret's data (and string data) as text.
pub fn secret_strings(secret: &Secret) -> BTreeMap<String, String> {
    let mut out: BTreeMap<String, String> = secret
        .data
        .iter()
        .flatten()
        .map(|(k, v)| (k.clone(), String::from_utf8_lossy(&v.0).into_owned()))
        .collect();
    out.extend(secret.string_data.clone().unwrap_or_default());
    out
}

/// Deletes a child in the background; one that is already gone counts as deleted.
pub async fn delete(
    api: &Api<DynamicObject>,
    name: &str,
    kind: ChildKind,
    ctx: &Context,
) -> Result<()> {
    match api.delete(name, &DeleteParams::background()).await {
        Ok(_) => {
            ctx.metrics.write(kind.resource(), "delete");
            Ok(())
        }
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
        Err(e) => Err(Error::kube(format!("deleting {} {name}", kind.kind()), e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selectors_render_as_label_queries() {
        let labels = BTreeMap::from([
            ("a".to_owned(), "1".to_owned()),
            ("b".to_owned(), "2".to_owned()),
        ]);
        assert_eq!(selector_string(&labels), "a=1,b=2");
    }

    #[test]
    fn only_the_controller_reference_counts() {
        let reference = |uid: &str, controller: Option<bool>| OwnerReference {
            uid: uid.into(),
            controller,
            ..OwnerReference::default()
        };
        let cases = [
            (vec![reference("u", Some(true))], true),
            (vec![reference("u", None)], false),
            (vec![reference("other", Some(true))], false),
            (
                vec![reference("other", None), reference("u", Some(true))],
                true,
            ),
            (vec![], false),
        ];
        for (refs, want) in cases {
            assert_eq!(is_controlled_by(Some(&refs), "u"), want, "{refs:?}");
        }
        assert!(!is_controlled_by(None, "u"));
    }
}
