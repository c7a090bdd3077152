//! Wiring: one kube-runtime `Controller` per database kind and watched namespace. Each controller
//! keeps watch caches ([`crate::cache`]) of the databases' children (StatefulSets, Services,
//! PodDisruptionBudgets, Certificates, the agent pods' ServiceAccounts, Roles and RoleBindings),
//! their pods and labelled secrets and of the kind's catalog; the same watches trigger its
//! reconciles.

use std::sync::Arc;

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{Pod, Secret, Service, ServiceAccount};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use kube::api::{Api, DynamicObject};
use kube::runtime::reflector::store::Writer;
use kube::runtime::reflector::{self, ObjectRef};
use kube::runtime::{Controller, WatchStreamExt, watcher};
use kube::{Client, ResourceExt};

use crate::cache::{
    Caches, Compact, Indexed, ReadyGate, reflected, slim_cached_pod, slim_cached_secret, slim_meta,
};
use crate::database::Database;
use crate::reconcile::{Context, certificate_resource, error_policy, reconcile};

/// What one controller's reconciles share: the provisioner-wide context and this controller's
/// caches.
pub struct KindContext<K: Database> {
    /// Client, configuration, metrics, Events, probes.
    pub shared: Arc<Context>,
    /// Children, pods, labelled secrets and Versions of this kind and scope.
    pub caches: Caches<K>,
    /// Opens once every cache has its first list.
    pub ready: ReadyGate,
}

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
fn owner_of<K: Database, O: ResourceExt>(object: &O) -> Option<ObjectRef<Compact<K>>> {
    let labels = object.labels();
    if labels.get(api::names::LABEL_NAME).map(String::as_str) != Some(K::KIND.resource_name()) {
        return None;
    }
    let instance = labels.get(api::names::LABEL_INSTANCE)?;
    Some(ObjectRef::new(instance).within(&object.namespace()?))
}

/// Whether the Certificate API is served (a watch of an API that is not served fails forever
/// and would back off every trigger of the controller).
async fn certificates_served(certificates: &Api<Compact<DynamicObject>>) -> bool {
    !matches!(
        certificates
            .list(&kube::api::ListParams::default().limit(1))
            .await,
        Err(kube::Error::Api(s)) if s.code == 404
    )
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

    // The databases themselves are cached compactly too; a reconcile reads its database typed.
    let (databases, databases_writer) = reflector::store::<Compact<K>>();
    let (sets, sets_writer) = reflector::store::<Compact<StatefulSet>>();
    let (services, services_writer) = reflector::store::<Compact<Service>>();
    let (secrets, secrets_writer) = reflector::store::<Compact<Secret>>();
    let (pdbs, pdbs_writer) = reflector::store::<Compact<PodDisruptionBudget>>();
    let (pods, pods_writer) = reflector::store::<Compact<Pod>>();
    let (service_accounts, service_accounts_writer) = reflector::store::<Compact<ServiceAccount>>();
    let (roles, roles_writer) = reflector::store::<Compact<Role>>();
    let (role_bindings, role_bindings_writer) = reflector::store::<Compact<RoleBinding>>();
    let (versions, versions_writer) = reflector::store::<K::Version>();
    let certificates_api: Api<Compact<DynamicObject>> = match ns {
        Some(ns) => Api::namespaced_with(client.clone(), ns, &certificate_resource()),
        None => Api::all_with(client.clone(), &certificate_resource()),
    };
    // Installing cert-manager later needs a restart for Certificates to be cached; until then TLS
    // databases report CertManagerNotInstalled.
    let certificates = if certificates_served(&certificates_api).await {
        let writer = Writer::<Compact<DynamicObject>>::new(certificate_resource());
        Some((writer.as_reader(), writer))
    } else {
        tracing::warn!(
            kind = K::KIND.as_str(),
            "cert-manager.io/v1 Certificates are not served; not watching them"
        );
        None
    };

    let caches = Caches::<K> {
        sets: Indexed::new(sets, ()),
        services: Indexed::new(services, ()),
        secrets: Indexed::new(secrets, ()),
        pdbs: Indexed::new(pdbs, ()),
        certificates: certificates
            .as_ref()
            .map(|(store, _)| Indexed::new(store.clone(), certificate_resource())),
        pods: Indexed::new(pods, ()),
        service_accounts: Indexed::new(service_accounts, ()),
        roles: Indexed::new(roles, ()),
        role_bindings: Indexed::new(role_bindings, ()),
        versions,
    };

    // While the database watch relists, the store keeps its old contents until the list is
    // complete, and kube-runtime drops a trigger whose object is not in the store yet: a database
    // created during a relist would not be reconciled until something else touched it. So every
    // completed (re)list triggers every database once more (converged ones write nothing).
    let (relisted_tx, relisted_rx) = futures::channel::mpsc::unbounded::<ObjectRef<Compact<K>>>();
    let relisted_store = databases.clone();
    let database_stream = watcher(api::<Compact<K>>(&client, ns), watcher::Config::default())
        .default_backoff()
        .modify(slim_meta::<Compact<K>>)
        .reflect(databases_writer)
        .inspect_ok(move |event| {
            if matches!(event, watcher::Event::InitDone) {
                for db in relisted_store.state() {
                    // The receiver lives as long as the controller.
                    let _ = relisted_tx.unbounded_send(ObjectRef::from_obj(db.as_ref()));
                }
            }
        })
        .applied_objects();
    let by_version = databases.clone();
    let mut controller = Controller::for_stream(database_stream, databases)
        .reconcile_on(relisted_rx)
        .owns_stream(reflected(
            api::<Compact<StatefulSet>>(&client, ns),
            labelled.clone(),
            sets_writer,
            Some(caches.sets.index.clone()),
            slim_meta::<Compact<StatefulSet>>,
        ))
        .owns_stream(reflected(
            api::<Compact<Service>>(&client, ns),
            labelled.clone(),
            services_writer,
            Some(caches.services.index.clone()),
            slim_meta::<Compact<Service>>,
        ))
        .owns_stream(reflected(
            api::<Compact<PodDisruptionBudget>>(&client, ns),
            labelled.clone(),
            pdbs_writer,
            Some(caches.pdbs.index.clone()),
            slim_meta::<Compact<PodDisruptionBudget>>,
        ))
        // The agent pods' identity and permissions.
        .owns_stream(reflected(
            api::<Compact<ServiceAccount>>(&client, ns),
            labelled.clone(),
            service_accounts_writer,
            Some(caches.service_accounts.index.clone()),
            slim_meta::<Compact<ServiceAccount>>,
        ))
        .owns_stream(reflected(
            api::<Compact<Role>>(&client, ns),
            labelled.clone(),
            roles_writer,
            Some(caches.roles.index.clone()),
            slim_meta::<Compact<Role>>,
        ))
        .owns_stream(reflected(
            api::<Compact<RoleBinding>>(&client, ns),
            labelled.clone(),
            role_bindings_writer,
            Some(caches.role_bindings.index.clone()),
            slim_meta::<Compact<RoleBinding>>,
        ))
        // Generated secrets and the certificate secrets cert-manager writes (labelled through
        // the Certificate's secretTemplate, not owned).
        .watches_stream(
            reflected(
                api::<Compact<Secret>>(&client, ns),
                labelled.clone(),
                secrets_writer,
                Some(caches.secrets.index.clone()),
                slim_cached_secret,
            ),
            |s: Compact<Secret>| owner_of::<K, _>(&s),
        )
        // Pods are owned by the StatefulSets; their readiness and roles drive the status.
        .watches_stream(
            reflected(
                api::<Compact<Pod>>(&client, ns),
                labelled.clone(),
                pods_writer,
                Some(caches.pods.index.clone()),
                slim_cached_pod,
            ),
            |p: Compact<Pod>| owner_of::<K, _>(&p),
        )
        // A Version that appears, changes or goes away re-evaluates the databases naming it
        // (a database blocked on VersionNotFound provisions as soon as its Version exists).
        .watches_stream(
            reflected(
                Api::<K::Version>::all(client.clone()),
                watcher::Config::default(),
                versions_writer,
                None,
                slim_meta::<K::Version>,
            ),
            move |version: K::Version| {
                let name = version.name_any();
                by_version
                    .state_filter(|db| db.typed().is_ok_and(|db: K| db.version_name() == name))
                    .into_iter()
                    .map(|db| ObjectRef::from_obj(db.as_ref()))
                    .collect::<Vec<_>>()
            },
        );
    if let Some((_, writer)) = certificates {
        controller = controller.owns_stream_with(
            reflected(
                certificates_api,
                labelled,
                writer,
                caches.certificates.as_ref().map(|c| c.index.clone()),
                slim_meta::<Compact<DynamicObject>>,
            ),
            certificate_resource(),
        );
    }
    let ready = ReadyGate::spawn(caches.clone());
    let context = Arc::new(KindContext {
        shared: ctx,
        caches,
        ready,
    });
    controller
        .run(reconcile::<K>, error_policy::<K>, context)
        .for_each(|result| async move {
            if let Err(error) = result {
                tracing::debug!(%error, "controller event");
            }
        })
        .await;
}
