//! Adding and removing an operator's finalizer with a merge patch guarded by `resourceVersion`.
//!
//! Both operators keep a finalizer on the objects they must clean up after (the provisioner
//! `kubedb.com` on databases, the ops-manager `ops.kubedb.com/ops-manager` on running requests).
//! A merge patch replaces the whole `metadata.finalizers` list, so it carries the
//! `resourceVersion` the list was read at: if another writer changed the object in between, the
//! API server answers 409 Conflict and the reconcile decides again on the newer object, instead
//! of silently dropping someone else's finalizer.
//!
//! Callers: the ops-manager's `act` (its `AddFinalizer` and `RemoveFinalizer` effects), and the
//! provisioner's reconcile, which adds its finalizer as the first step of `reconcile_inner` and
//! removes it as the last step of `finalize`, sending the same bodies these functions build.
//!
//! Intended use, with `obj` the object as last read (from the cache or a fresh GET): add the
//! finalizer before creating anything that needs cleaning up, and remove it as the last step of
//! the clean-up, once `metadata.deletionTimestamp` is set.
//!
//! ```no_run
//! use k8s_openapi::api::core::v1::ConfigMap;
//! use kube::ResourceExt;
//! use kube::api::{Api, Patch, PatchParams};
//! use operator_common::finalizer::{with_finalizer, without_finalizer};
//!
//! const FINALIZER: &str = "example.com/cleanup";
//!
//! async fn reconcile(api: &Api<ConfigMap>, obj: &ConfigMap) -> Result<(), kube::Error> {
//!     let params = PatchParams::default();
//!     if obj.metadata.deletion_timestamp.is_none() {
//!         if let Some(patch) = with_finalizer(obj, FINALIZER) {
//!             // A 409 Conflict means the object changed: decide again on the newer one.
//!             api.patch(&obj.name_any(), &params, &Patch::Merge(&patch)).await?;
//!             return Ok(()); // the update triggers the next reconcile
//!         }
//!         // ... create and update what the object needs ...
//!     } else {
//!         // ... clean up ...
//!         if let Some(patch) = without_finalizer(obj, FINALIZER) {
//!             match api.patch(&obj.name_any(), &params, &Patch::Merge(&patch)).await {
//!                 Ok(_) => {}
//!                 Err(kube::Error::Api(s)) if s.code == 404 => {} // already gone
//!                 Err(e) => return Err(e),
//!             }
//!         }
//!     }
//!     Ok(())
//! }
//! ```

use kube::Resource;
use serde_json::{Value, json};

/// The merge patch that adds `finalizer` to `obj`'s finalizers (at the end, keeping the others in
/// order), or `None` when `obj` already has it.
///
/// The patch is `{"metadata": {"resourceVersion": <obj's>, "finalizers": [...]}}`; an object
/// without a `resourceVersion` gets `null` there, i.e. no precondition.
pub fn with_finalizer(obj: &impl Resource, finalizer: &str) -> Option<Value> {
    let current = finalizers(obj);
    if current.iter().any(|f| f == finalizer) {
        return None;
    }
    let mut list = current.to_vec();
    list.push(finalizer.to_owned());
    Some(patch(obj, list))
}

/// The merge patch that removes every occurrence of `finalizer` from `obj`'s finalizers (keeping
/// the others in order), or `None` when `obj` does not have it.
///
/// Same shape and `resourceVersion` guard as [`with_finalizer`].
pub fn without_finalizer(obj: &impl Resource, finalizer: &str) -> Option<Value> {
    let current = finalizers(obj);
    if !current.iter().any(|f| f == finalizer) {
        return None;
    }
    let list: Vec<String> = current
        .iter()
        .filter(|f| *f != finalizer)
        .cloned()
        .collect();
    Some(patch(obj, list))
}

fn finalizers(obj: &impl Resource) -> &[String] {
    obj.meta().finalizers.as_deref().unwrap_or_default()
}

fn patch(obj: &impl Resource, finalizers: Vec<String>) -> Value {
    json!({"metadata": {
        "resourceVersion": obj.meta().resource_version,
        "finalizers": finalizers,
    }})
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::core::v1::ConfigMap;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    use super::*;

    const F: &str = "example.com/mine";

    /// A finalizer list; `None` is an absent field (or, as an expectation, no patch).
    type List = Option<&'static [&'static str]>;

    fn object(finalizers: List, resource_version: Option<&str>) -> ConfigMap {
        ConfigMap {
            metadata: ObjectMeta {
                name: Some("x".into()),
                finalizers: finalizers.map(|l| l.iter().map(|f| f.to_string()).collect()),
                resource_version: resource_version.map(str::to_owned),
                ..ObjectMeta::default()
            },
            ..ConfigMap::default()
        }
    }

    #[test]
    fn adding() {
        // current finalizers, expected list after adding (None = no patch)
        let table: [(List, List); 5] = [
            (None, Some(&[F])),
            (Some(&[]), Some(&[F])),
            (Some(&["other"]), Some(&["other", F])),
            (Some(&[F]), None),
            (Some(&["other", F]), None),
        ];
        for (current, expected) in table {
            let obj = object(current, Some("7"));
            let expected =
                expected.map(|l| json!({"metadata": {"resourceVersion": "7", "finalizers": l}}));
            assert_eq!(with_finalizer(&obj, F), expected, "{current:?}");
        }
    }

    #[test]
    fn removing() {
        // current finalizers, expected list after removing (None = no patch)
        let table: [(List, List); 6] = [
            (None, None),
            (Some(&[]), None),
            (Some(&["other"]), None),
            (Some(&[F]), Some(&[])),
            (Some(&["a", F, "b"]), Some(&["a", "b"])),
            (Some(&[F, "a", F]), Some(&["a"])),
        ];
        for (current, expected) in table {
            let obj = object(current, Some("7"));
            let expected =
                expected.map(|l| json!({"metadata": {"resourceVersion": "7", "finalizers": l}}));
            assert_eq!(without_finalizer(&obj, F), expected, "{current:?}");
        }
    }

    #[test]
    fn without_a_resource_version_there_is_no_precondition() {
        let patch = with_finalizer(&object(None, None), F).unwrap();
        assert_eq!(patch["metadata"]["resourceVersion"], Value::Null);
        assert!(
            patch["metadata"]
                .as_object()
                .unwrap()
                .contains_key("resourceVersion")
        );
    }
}
