//! Wiring: one kube-runtime `Controller` per database kind and watched namespace, owning the
//! children and watching the pods and secrets whose changes affect the status.

use std::sync::Arc;

use futures::StreamExt;
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{Pod, Secret, Service};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::api::{Api, DynamicObject};
use kube::runtime::Controller;
use kube::runtime::reflector::ObjectRef;
use kube::runtime::watcher;
use kube::{Client, ResourceExt};

use crate::database::Database;
use crate::reconcile::{Context, certificate_resource, error_policy, reconcile};

fn api<K>(client: &Client, namespace: Option<&str>) -> Api<K>
where
    K: kube::Resource<Scope = kube::core::NamespaceResourceScope>,
    K::DynamicType: Default,
{
    match namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    }
}

/// Maps a labelled object (pod, secret) to the database named by its instance label.
fn owner_of<K: Database, O: ResourceExt>(object: &O) -> Option<ObjectRef<K>> {
    let labels = object.labels();
    if labels.get(api::names::LABEL_NAME).map(String::as_str) != Some(K::KIND.resource_name()) {
        return None;
    }
    let instance = labels.get(api::names::LABEL_INSTANCE)?;
    Some(ObjectRef::new(instance).within(&object.namespace()?))
}

/// Runs the controller of kind `K` in `namespace` (all namespaces when `None`) until it stops.
pub async fn run_kind<K: Database>(ctx: Arc<Context>, namespace: Option<String>) {
    let client = ctx.client.clone();
    let ns = namespace.as_deref();
    let labelled = watcher::Config::default().labels(&format!(
        "{}={}",
        api::names::LABEL_NAME,
        K::KIND.resource_name()
    ));
    let certificates: Api<DynamicObject> = match ns {
        Some(ns) => Api::namespaced_with(client.clone(), ns, &certificate_resource()),
        None => Api::all_with(client.clone(), &certificate_resource()),
    };
    let mut controller = Controller::new(api::<K>(&client, ns), watcher::Config::default())
        .owns(api::<StatefulSet>(&client, ns), labelled.clone())
        .owns(api::<Service>(&client, ns), labelled.clone())
        .owns(api::<PodDisruptionBudget>(&client, ns), labelled.clone());
    // Watching an API that is not served fails forever and backs off every trigger of the
    // controller, so Certificates are watched only when cert-manager is installed. (Installing it
    // later needs a restart for Certificate changes to trigger reconciles; the periodic resync and
    // the issued secrets still do.)
    match certificates
        .list(&kube::api::ListParams::default().limit(1))
        .await
    {
        Err(kube::Error::Api(s)) if s.code == 404 => {
            tracing::warn!(
                kind = K::KIND.as_str(),
                "cert-manager.io/v1 Certificates are not served; not watching them"
            );
        }
        _ => {
            controller =
                controller.owns_with(certificates, certificate_resource(), labelled.clone());
        }
    }
    controller
        // Generated secrets and the certificate secrets cert-manager writes (labelled through
        // the Certificate's secretTemplate, not owned).
        .watches(api::<Secret>(&client, ns), labelled.clone(), |s: Secret| {
            owner_of::<K, _>(&s)
        })
        // Pods are owned by the StatefulSets; their readiness and roles drive the status.
        .watches(api::<Pod>(&client, ns), labelled, |p: Pod| {
            owner_of::<K, _>(&p)
        })
        .run(reconcile::<K>, error_policy::<K>, ctx)
        .for_each(|result| async move {
            if let Err(error) = result {
                tracing::debug!(%error, "controller event");
            }
        })
        .await;
}
