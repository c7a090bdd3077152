//! The finalizer and the deletion of a database: children removed in the reverse of their apply
//! order, secrets kept or wiped by `deletionPolicy`, PVCs deleted for `Delete` and `WipeOut`, and
//! nothing at all under `DoNotTerminate` or while the ops-manager holds the database paused.

use std::time::Duration;

use api::common::DeletionPolicy;
use api::conditions::{db_types, get_condition};
use api::names;
use k8s_openapi::api::core::v1::PersistentVolumeClaim;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::ResourceExt;
use kube::api::{Api, DeleteParams, Patch};
use kube::runtime::controller::Action;
use serde_json::json;

use super::Context;
use super::io::{api_for, delete, list, manager_params, selector_string};
use super::status::write_status;
use crate::cache::Caches;
use crate::database::{Database, DbRef, conditions_of};
use crate::error::{Error, Result};
use crate::plan::{ChildKind, OnDeletion};
use crate::status;
use operator_common::finalizer::{with_finalizer, without_finalizer};

/// Adds the provisioner's finalizer when it is missing; returns whether it wrote.
pub async fn add_finalizer<K: Database>(db: &K, r: &DbRef, ctx: &Context) -> Result<bool> {
    let Some(patch) = with_finalizer(db, names::FINALIZER) else {
        return Ok(false);
    };
    let api: Api<K> = Api::namespaced(ctx.client.clone(), &r.namespace);
    api.patch(&r.name, &manager_params(), &Patch::Merge(&patch))
        .await
        .map_err(|e| Error::kube(format!("adding the finalizer to {}", r.key()), e))?;
    ctx.metrics.write(r.kind.metric_label(), "patch");
    Ok(true)
}

/// The deletion message under `DoNotTerminate`.
pub fn do_not_terminate_message(r: &DbRef) -> String {
    format!(
        "deletion refused: spec.deletionPolicy is DoNotTerminate; to delete {} {}, first set another policy, e.g. `kubectl patch {} {} -n {} --type=merge -p '{{\"spec\":{{\"deletionPolicy\":\"Delete\"}}}}'` (Halt keeps PVCs and secrets, Delete keeps secrets, WipeOut removes everything)",
        r.kind.as_str(),
        r.key(),
        r.kind.short_name(),
        r.name,
        r.namespace
    )
}

/// Deletion: honours `deletionPolicy`, then removes the finalizer.
pub async fn finalize<K: Database>(
    db: &K,
    r: &DbRef,
    ctx: &Context,
    caches: &Caches<K>,
) -> Result<Action> {
    let Some(remove_finalizer) = without_finalizer(db, names::FINALIZER) else {
        return Ok(Action::await_change());
    };
    let paused = get_condition(conditions_of(db), db_types::PAUSED).is_some();
    let policy = db.deletion_policy();
    if paused || policy == DeletionPolicy::DoNotTerminate {
        let blocked =
            (policy == DeletionPolicy::DoNotTerminate).then(|| do_not_terminate_message(r));
        let now = Time(jiff::Timestamp::now());
        let generation = db.meta().generation.unwrap_or(0);
        let conditions = status::deletion_conditions(conditions_of(db), blocked, generation, &now);
        write_status(ctx, db, r, conditions, generation).await?;
        return Ok(Action::requeue(Duration::from_secs(30)));
    }
    let children = caches.children(r);
    // The reverse of the apply order: nothing is left pointing at a child that is gone.
    for kind in ChildKind::ALL.into_iter().rev() {
        let api = api_for(&ctx.client, &r.namespace, kind);
        match kind.on_deletion() {
            OnDeletion::Delete => {
                for (name, _) in children
                    .labelled(kind, &r.uid)
                    .into_iter()
                    .filter(|(_, owned)| *owned)
                {
                    delete(&api, &name, kind, ctx).await?;
                }
            }
            OnDeletion::KeptUnlessWipeOut => {
                for (name, owned) in children.labelled(kind, &r.uid) {
                    if policy == DeletionPolicy::WipeOut {
                        delete(&api, &name, kind, ctx).await?;
                    } else if owned {
                        // Orphaned, so that garbage collection keeps it.
                        let patch = json!({"metadata": {"ownerReferences": null}});
                        match api
                            .patch(&name, &manager_params(), &Patch::Merge(&patch))
                            .await
                        {
                            Ok(_) => ctx.metrics.write(kind.resource(), "patch"),
                            Err(kube::Error::Api(s)) if s.code == 404 => {}
                            Err(e) => {
                                return Err(Error::kube(
                                    format!("orphaning {} {name}", kind.kind()),
                                    e,
                                ));
                            }
                        }
                    }
                }
            }
        }
    }
    if matches!(policy, DeletionPolicy::Delete | DeletionPolicy::WipeOut) {
        let pvcs: Api<PersistentVolumeClaim> = Api::namespaced(ctx.client.clone(), &r.namespace);
        let selector = selector_string(&r.selector());
        for pvc in list(pvcs.clone(), &selector, "persistentvolumeclaims").await? {
            let name = pvc.name_any();
            match pvcs.delete(&name, &DeleteParams::background()).await {
                Ok(_) => ctx.metrics.write("persistentvolumeclaims", "delete"),
                Err(kube::Error::Api(s)) if s.code == 404 => {}
                Err(e) => return Err(Error::kube(format!("deleting PVC {name}"), e)),
            }
        }
    }
    let api: Api<K> = Api::namespaced(ctx.client.clone(), &r.namespace);
    match api
        .patch(&r.name, &manager_params(), &Patch::Merge(&remove_finalizer))
        .await
    {
        Ok(_) => ctx.metrics.write(r.kind.metric_label(), "patch"),
        Err(kube::Error::Api(s)) if s.code == 404 => {}
        Err(e) => {
            return Err(Error::kube(
                format!("removing the finalizer of {}", r.key()),
                e,
            ));
        }
    }
    tracing::info!(db = %r.key(), policy = ?policy, "deleted");
    ctx.metrics.forget(r.kind, &r.key());
    ctx.probes.forget(&r.key());
    Ok(Action::await_change())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::database::DbKind;

    #[test]
    fn do_not_terminate_message_says_how_to_proceed() {
        let r = DbRef {
            kind: DbKind::Singlestore,
            name: "sdb".into(),
            namespace: "demo".into(),
            uid: "u".into(),
        };
        let message = do_not_terminate_message(&r);
        assert!(
            message.contains("kubectl patch sdb sdb -n demo"),
            "{message}"
        );
        assert!(message.contains("DoNotTerminate"), "{message}");
    }
}
