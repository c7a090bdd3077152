//! Watch caches: what one controller (a database kind in one namespace scope) knows about the
//! children of its databases and about the catalog, kept current by the same watches that trigger
//! its reconciles.
//!
//! A reconcile reads its children from these stores instead of listing them: a list per child kind
//! per reconcile costs the API server a scan of every object of that kind in the namespace, which
//! grows with the number of databases (at 1,000 databases the lists, not the operator, were the
//! bottleneck). The cached objects are slimmed as they arrive (no `managedFields`, pods reduced to
//! metadata and their conditions) so that memory grows by a few KiB per database.
//!
//! A cache can lag behind the API server by one watch event. The reconciler is written for that:
//! server-side apply of an object that already exists changes nothing, a generated secret missing
//! from the cache is looked up before it is created, and every write of ours produces a watch event
//! that triggers a fresh reconcile.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use futures::Stream;
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{Pod, PodStatus, Secret, Service};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::api::DynamicObject;
use kube::runtime::reflector::store::Writer;
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Resource};
use serde::de::DeserializeOwned;

use crate::database::{Database, DbRef};
use crate::error::{Error, Result};

/// How long a reconcile waits for the caches' first complete list before it gives up (and is
/// retried by the error policy).
pub const SYNC_TIMEOUT: Duration = Duration::from_secs(60);

/// The children of one database, from the caches.
#[derive(Debug, Default, Clone)]
pub struct Children {
    /// StatefulSets.
    pub sets: Vec<Arc<StatefulSet>>,
    /// Services.
    pub services: Vec<Arc<Service>>,
    /// Labelled secrets (generated ones and the certificate secrets cert-manager writes).
    pub secrets: Vec<Arc<Secret>>,
    /// PodDisruptionBudgets.
    pub pdbs: Vec<Arc<PodDisruptionBudget>>,
    /// Certificates; `None` when the Certificate API is not served.
    pub certificates: Option<Vec<Arc<DynamicObject>>>,
    /// Pods (metadata and conditions only).
    pub pods: Vec<Arc<Pod>>,
}

/// The stores of one controller.
#[derive(Clone)]
pub struct Caches<K: Database> {
    /// StatefulSets labelled with the kind's name label.
    pub sets: Store<StatefulSet>,
    /// Services, same selector.
    pub services: Store<Service>,
    /// Secrets, same selector.
    pub secrets: Store<Secret>,
    /// PodDisruptionBudgets, same selector.
    pub pdbs: Store<PodDisruptionBudget>,
    /// Certificates, same selector; `None` when cert-manager is not installed.
    pub certificates: Option<Store<DynamicObject>>,
    /// Pods, same selector.
    pub pods: Store<Pod>,
    /// Every Version object of the kind's catalog.
    pub versions: Store<K::Version>,
}

/// Whether `object` lives in `namespace` and carries every label of `selector`.
pub fn selected<T: Resource>(
    object: &T,
    namespace: &str,
    selector: &BTreeMap<String, String>,
) -> bool {
    let meta = object.meta();
    meta.namespace.as_deref() == Some(namespace)
        && selector.iter().all(|(key, value)| {
            meta.labels
                .as_ref()
                .and_then(|labels| labels.get(key))
                .is_some_and(|v| v == value)
        })
}

fn matching<T>(
    store: &Store<T>,
    namespace: &str,
    selector: &BTreeMap<String, String>,
) -> Vec<Arc<T>>
where
    T: Resource + Clone + 'static,
    T::DynamicType: std::hash::Hash + Eq + Clone,
{
    store.state_filter(|o| selected(o, namespace, selector))
}

impl<K: Database> Caches<K> {
    /// Waits until every store has been filled by its first list (bounded by [`SYNC_TIMEOUT`]).
    pub async fn ready(&self) -> Result<()> {
        let all = async {
            self.sets.wait_until_ready().await?;
            self.services.wait_until_ready().await?;
            self.secrets.wait_until_ready().await?;
            self.pdbs.wait_until_ready().await?;
            if let Some(certificates) = &self.certificates {
                certificates.wait_until_ready().await?;
            }
            self.pods.wait_until_ready().await?;
            self.versions.wait_until_ready().await
        };
        match tokio::time::timeout(SYNC_TIMEOUT, all).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(_)) => Err(Error::CacheUnavailable(
                "a watch of the controller stopped".into(),
            )),
            Err(_) => Err(Error::CacheUnavailable(format!(
                "the watches did not complete their first list within {}s",
                SYNC_TIMEOUT.as_secs()
            ))),
        }
    }

    /// The cached children of `db` (its namespace and selector labels).
    pub fn children(&self, db: &DbRef) -> Children {
        let ns = db.namespace.as_str();
        let selector = db.selector();
        Children {
            sets: matching(&self.sets, ns, &selector),
            services: matching(&self.services, ns, &selector),
            secrets: matching(&self.secrets, ns, &selector),
            pdbs: matching(&self.pdbs, ns, &selector),
            certificates: self
                .certificates
                .as_ref()
                .map(|c| matching(c, ns, &selector)),
            pods: matching(&self.pods, ns, &selector),
        }
    }

    /// The Version object `name`, if it exists.
    pub fn version(&self, name: &str) -> Option<Arc<K::Version>> {
        self.versions.get(&reflector::ObjectRef::new(name))
    }

    /// Every Version object of the catalog.
    pub fn all_versions(&self) -> Vec<K::Version> {
        self.versions
            .state()
            .into_iter()
            .map(|v| v.as_ref().clone())
            .collect()
    }
}

/// Drops what no reconcile reads from a cached object: its `managedFields` (often the largest
/// part of an object's metadata).
pub fn slim_meta<T: Resource>(object: &mut T) {
    object.meta_mut().managed_fields = None;
}

/// Reduces a pod to what the status needs: metadata (labels carry the role) and its conditions.
pub fn slim_pod(pod: &mut Pod) {
    slim_meta(pod);
    pod.spec = None;
    if let Some(status) = pod.status.take() {
        pod.status = Some(PodStatus {
            conditions: status.conditions,
            phase: status.phase,
            ..PodStatus::default()
        });
    }
}

/// A watch of `api` that fills `writer` with slimmed objects and yields the objects it touched
/// (applied or deleted) as reconcile triggers. Errors are retried with the default backoff.
pub fn reflected<T>(
    api: Api<T>,
    config: watcher::Config,
    writer: Writer<T>,
    slim: fn(&mut T),
) -> impl Stream<Item = std::result::Result<T, watcher::Error>> + Send + 'static
where
    T: Resource + Clone + DeserializeOwned + std::fmt::Debug + Send + Sync + 'static,
    T::DynamicType: std::hash::Hash + Eq + Clone + Send + Sync,
{
    watcher(api, config)
        .default_backoff()
        .modify(slim)
        .reflect(writer)
        .touched_objects()
}

/// A new store and its writer for a type with a default dynamic type.
pub fn store<T>() -> (Store<T>, Writer<T>)
where
    T: Resource + Clone + 'static,
    T::DynamicType: std::hash::Hash + Eq + Clone + Default,
{
    reflector::store()
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{PodCondition, PodSpec};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ManagedFieldsEntry, ObjectMeta};

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn service(ns: &str, l: &[(&str, &str)]) -> Service {
        Service {
            metadata: ObjectMeta {
                name: Some("s".into()),
                namespace: Some(ns.into()),
                labels: Some(labels(l)),
                ..ObjectMeta::default()
            },
            ..Service::default()
        }
    }

    #[test]
    fn selection_needs_the_namespace_and_every_label() {
        let selector = labels(&[("app", "mssql"), ("instance", "a")]);
        let cases = [
            (
                service("demo", &[("app", "mssql"), ("instance", "a")]),
                true,
            ),
            (
                service("demo", &[("app", "mssql"), ("instance", "a"), ("x", "y")]),
                true,
            ),
            (
                service("other", &[("app", "mssql"), ("instance", "a")]),
                false,
            ),
            (
                service("demo", &[("app", "mssql"), ("instance", "ab")]),
                false,
            ),
            (service("demo", &[("app", "mssql")]), false),
        ];
        for (object, want) in cases {
            assert_eq!(
                selected(&object, "demo", &selector),
                want,
                "{:?}",
                object.metadata
            );
        }
    }

    #[test]
    fn slim_pods_keep_labels_and_conditions_only() {
        let mut pod = Pod {
            metadata: ObjectMeta {
                name: Some("db-0".into()),
                labels: Some(labels(&[("kubedb.com/role", "primary")])),
                managed_fields: Some(vec![ManagedFieldsEntry::default()]),
                ..ObjectMeta::default()
            },
            spec: Some(PodSpec::default()),
            status: Some(PodStatus {
                conditions: Some(vec![PodCondition {
                    type_: "Ready".into(),
                    status: "True".into(),
                    ..PodCondition::default()
                }]),
                phase: Some("Running".into()),
                pod_ip: Some("127.0.0.2".into()),
                ..PodStatus::default()
            }),
        };
        slim_pod(&mut pod);
        assert!(pod.metadata.managed_fields.is_none());
        assert!(pod.spec.is_none());
        assert_eq!(pod.metadata.labels.unwrap()["kubedb.com/role"], "primary");
        let status = pod.status.unwrap();
        assert_eq!(status.conditions.unwrap()[0].type_, "Ready");
        assert_eq!(status.phase.as_deref(), Some("Running"));
        assert!(status.pod_ip.is_none());
    }
}
