//! Watch caches: what one controller (a database kind in one namespace scope) knows about the
//! children of its databases and about the catalog, kept current by the same watches that trigger
//! its reconciles.
//!
//! A reconcile reads its children from these stores instead of listing them: a list per child kind
//! per reconcile costs the API server a scan of every object of that kind in the namespace, which
//! grows with the number of databases (at 1,000 databases the lists, not the operator, were the
//! bottleneck). The cached objects are slimmed as they arrive (no `managedFields`, pods reduced to
//! metadata and their conditions, secrets to their keys) and kept as [`Compact`] objects (typed
//! metadata, the rest as JSON text), so that memory grows by a few KiB per cached object.
//!
//! A cache can lag behind the API server by one watch event. The reconciler is written for that:
//! server-side apply of an object that already exists changes nothing, a generated secret missing
//! from the cache is looked up before it is created, and every write of ours produces a watch event
//! that triggers a fresh reconcile.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::marker::PhantomData;
use std::sync::Arc;
use std::time::Duration;

use futures::{Stream, TryStreamExt};
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{Pod, PodStatus, Secret, Service, ServiceAccount};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::DynamicObject;
use kube::runtime::reflector::store::Writer;
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Resource};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};

use crate::database::{Database, DbRef};
use crate::error::{Error, Result};

/// How long a reconcile waits for the caches' first complete list before it gives up (and is
/// retried by the error policy).
pub const SYNC_TIMEOUT: Duration = Duration::from_secs(60);

/// Names of the cached objects of one kind by (namespace, instance label), kept in step with the
/// watch that fills the kind's store, so a reconcile finds its database's objects without
/// scanning every object of the kind (which made each reconcile cost grow with the number of
/// databases).
///
/// Namespaces and instances are kept as 64-bit hashes: a few bytes per object instead of three
/// strings. Two pairs with the same hash would only share a bucket, and [`Indexed::matching`]
/// checks every object it finds against the namespace and labels it was asked for.
#[derive(Debug, Default)]
pub struct InstanceIndex(std::sync::Mutex<IndexState>);

#[derive(Debug, Default)]
struct IndexState {
    hasher: std::collections::hash_map::RandomState,
    /// hash(namespace, instance) → names.
    names: HashMap<u64, Vec<String>>,
    /// hash(namespace, name) → hash(namespace, instance), to move or drop an entry whose object
    /// changed or went away.
    instance_of: HashMap<u64, u64>,
    /// The objects of a relist in progress (`Init` … `InitDone`), swapped in when it completes.
    relist: Option<Vec<(String, String, String)>>,
}

impl IndexState {
    fn bucket(&self, namespace: &str, instance: &str) -> u64 {
        use std::hash::BuildHasher;
        self.hasher.hash_one(("instance", namespace, instance))
    }

    fn object(&self, namespace: &str, name: &str) -> u64 {
        use std::hash::BuildHasher;
        self.hasher.hash_one(("object", namespace, name))
    }

    fn insert(&mut self, namespace: &str, name: String, instance: Option<&str>) {
        self.remove(namespace, &name);
        if let Some(instance) = instance {
            let bucket = self.bucket(namespace, instance);
            self.instance_of
                .insert(self.object(namespace, &name), bucket);
            self.names.entry(bucket).or_default().push(name);
        }
    }

    fn remove(&mut self, namespace: &str, name: &str) {
        if let Some(bucket) = self.instance_of.remove(&self.object(namespace, name))
            && let Some(names) = self.names.get_mut(&bucket)
        {
            names.retain(|n| n != name);
            if names.is_empty() {
                self.names.remove(&bucket);
            }
        }
    }
}

impl InstanceIndex {
    fn identity<T: Resource>(object: &T) -> (String, String, Option<String>) {
        let meta = object.meta();
        (
            meta.namespace.clone().unwrap_or_default(),
            meta.name.clone().unwrap_or_default(),
            meta.labels
                .as_ref()
                .and_then(|l| l.get(api::names::LABEL_INSTANCE))
                .cloned(),
        )
    }

    /// Applies one watch event (after the store has applied it).
    pub fn apply<T: Resource>(&self, event: &watcher::Event<T>) {
        let mut state = self.0.lock().unwrap_or_else(|p| p.into_inner());
        match event {
            watcher::Event::Apply(object) => {
                let (ns, name, instance) = Self::identity(object);
                state.insert(&ns, name, instance.as_deref());
            }
            watcher::Event::Delete(object) => {
                let (ns, name, _) = Self::identity(object);
                state.remove(&ns, &name);
            }
            watcher::Event::Init => state.relist = Some(Vec::new()),
            watcher::Event::InitApply(object) => {
                let (ns, name, instance) = Self::identity(object);
                if let Some(instance) = instance {
                    state
                        .relist
                        .get_or_insert_with(Vec::new)
                        .push((ns, name, instance));
                }
            }
            watcher::Event::InitDone => {
                let listed = state.relist.take().unwrap_or_default();
                state.names.clear();
                state.instance_of.clear();
                state.names.shrink_to_fit();
                state.instance_of.shrink_to_fit();
                for (ns, name, instance) in listed {
                    state.insert(&ns, name, Some(&instance));
                }
            }
        }
    }

    /// The names indexed under `namespace` and `instance` (a superset when hashes collide).
    pub fn names(&self, namespace: &str, instance: &str) -> Vec<String> {
        let state = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let mut names = state
            .names
            .get(&state.bucket(namespace, instance))
            .cloned()
            .unwrap_or_default();
        names.sort();
        names
    }
}

/// A cached object kept small: its metadata typed (what selection, ownership and the index read)
/// and everything else as compact JSON text, parsed again only when a reconcile compares it.
///
/// The applied children are cached this way. A typed `StatefulSet` holds every optional field of
/// its pod template's containers in place: about 36 KiB in memory for 4 KiB of JSON, most of the
/// provisioner's memory at 1,000 databases. As text it costs its length.
pub struct Compact<K> {
    /// Name, namespace, labels, annotations, owner references, versions (no `managedFields`).
    pub metadata: ObjectMeta,
    /// The rest of the object (`apiVersion`, `kind`, `spec`, `status`, …) as JSON text.
    rest: Box<str>,
    kind: PhantomData<fn() -> K>,
}

impl<K> Compact<K> {
    /// The whole object as JSON (metadata included), as the API server would show it.
    pub fn to_value(&self) -> Value {
        let mut object: Map<String, Value> = serde_json::from_str(&self.rest).unwrap_or_default();
        object.insert(
            "metadata".into(),
            serde_json::to_value(&self.metadata).unwrap_or_default(),
        );
        Value::Object(object)
    }

    /// The compact form of a typed object.
    pub fn from_typed(object: &K) -> std::result::Result<Self, serde_json::Error>
    where
        K: Serialize,
    {
        serde_json::from_value(serde_json::to_value(object)?)
    }

    /// The object as its typed kind.
    pub fn typed(&self) -> std::result::Result<K, serde_json::Error>
    where
        K: DeserializeOwned,
    {
        serde_json::from_value(self.to_value())
    }

    /// The object without its metadata, as JSON (for reading `spec` or `status` fields).
    pub fn body(&self) -> Value {
        serde_json::from_str(&self.rest).unwrap_or_default()
    }
}

impl<K> Clone for Compact<K> {
    fn clone(&self) -> Self {
        Self {
            metadata: self.metadata.clone(),
            rest: self.rest.clone(),
            kind: PhantomData,
        }
    }
}

impl<K> std::fmt::Debug for Compact<K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Compact")
            .field("metadata", &self.metadata)
            .field("rest", &self.rest)
            .finish()
    }
}

impl<'de, K> Deserialize<'de> for Compact<K> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        let mut object = Map::<String, Value>::deserialize(deserializer)?;
        let mut metadata: ObjectMeta = match object.remove("metadata") {
            Some(meta) => serde_json::from_value(meta).map_err(serde::de::Error::custom)?,
            None => ObjectMeta::default(),
        };
        let rest = serde_json::to_string(&object).map_err(serde::de::Error::custom)?;
        slim_object_meta(&mut metadata);
        Ok(Self {
            metadata,
            rest: rest.into_boxed_str(),
            kind: PhantomData,
        })
    }
}

impl<K: Resource> Resource for Compact<K> {
    type DynamicType = K::DynamicType;
    type Scope = K::Scope;

    fn kind(dt: &Self::DynamicType) -> Cow<'_, str> {
        K::kind(dt)
    }
    fn group(dt: &Self::DynamicType) -> Cow<'_, str> {
        K::group(dt)
    }
    fn version(dt: &Self::DynamicType) -> Cow<'_, str> {
        K::version(dt)
    }
    fn api_version(dt: &Self::DynamicType) -> Cow<'_, str> {
        K::api_version(dt)
    }
    fn plural(dt: &Self::DynamicType) -> Cow<'_, str> {
        K::plural(dt)
    }
    fn meta(&self) -> &ObjectMeta {
        &self.metadata
    }
    fn meta_mut(&mut self) -> &mut ObjectMeta {
        &mut self.metadata
    }
}

/// A store with its instance index.
#[derive(Clone)]
pub struct Indexed<T: Resource + Clone + 'static>
where
    T::DynamicType: std::hash::Hash + Eq + Clone,
{
    /// The objects.
    pub store: Store<T>,
    /// Their names by namespace and instance label.
    pub index: Arc<InstanceIndex>,
    dyntype: T::DynamicType,
}

impl<T> Indexed<T>
where
    T: Resource + Clone + 'static,
    T::DynamicType: std::hash::Hash + Eq + Clone,
{
    /// Wraps a store with an empty index; a [`reflected`] watch given the same `index` fills both.
    pub fn new(store: Store<T>, dyntype: T::DynamicType) -> Self {
        Self {
            store,
            index: Arc::default(),
            dyntype,
        }
    }

    /// The objects of `namespace` carrying every label of `selector` (whose instance label picks
    /// the index bucket).
    pub fn matching(&self, namespace: &str, selector: &BTreeMap<String, String>) -> Vec<Arc<T>> {
        let Some(instance) = selector.get(api::names::LABEL_INSTANCE) else {
            return self
                .store
                .state_filter(|o| selected(o, namespace, selector));
        };
        self.index
            .names(namespace, instance)
            .iter()
            .filter_map(|name| {
                self.store.get(
                    &reflector::ObjectRef::new_with(name, self.dyntype.clone()).within(namespace),
                )
            })
            .filter(|o| selected(o.as_ref(), namespace, selector))
            .collect()
    }
}

/// The children of one database, from the caches.
#[derive(Debug, Default, Clone)]
pub struct Children {
    /// StatefulSets.
    pub sets: Vec<Arc<Compact<StatefulSet>>>,
    /// Services.
    pub services: Vec<Arc<Compact<Service>>>,
    /// Labelled secrets (generated ones and the certificate secrets cert-manager writes).
    pub secrets: Vec<Arc<Secret>>,
    /// PodDisruptionBudgets.
    pub pdbs: Vec<Arc<Compact<PodDisruptionBudget>>>,
    /// Certificates; `None` when the Certificate API is not served.
    pub certificates: Option<Vec<Arc<Compact<DynamicObject>>>>,
    /// Pods (metadata and conditions only).
    pub pods: Vec<Arc<Pod>>,
    /// The agent pods' ServiceAccounts.
    pub service_accounts: Vec<Arc<Compact<ServiceAccount>>>,
    /// The agents' Roles.
    pub roles: Vec<Arc<Compact<Role>>>,
    /// Their RoleBindings.
    pub role_bindings: Vec<Arc<Compact<RoleBinding>>>,
}

/// The stores of one controller.
#[derive(Clone)]
pub struct Caches<K: Database> {
    /// StatefulSets labelled with the kind's name label.
    pub sets: Indexed<Compact<StatefulSet>>,
    /// Services, same selector.
    pub services: Indexed<Compact<Service>>,
    /// Secrets, same selector.
    pub secrets: Indexed<Compact<Secret>>,
    /// PodDisruptionBudgets, same selector.
    pub pdbs: Indexed<Compact<PodDisruptionBudget>>,
    /// Certificates, same selector; `None` when cert-manager is not installed.
    pub certificates: Option<Indexed<Compact<DynamicObject>>>,
    /// Pods, same selector.
    pub pods: Indexed<Compact<Pod>>,
    /// ServiceAccounts, same selector.
    pub service_accounts: Indexed<Compact<ServiceAccount>>,
    /// Roles, same selector.
    pub roles: Indexed<Compact<Role>>,
    /// RoleBindings, same selector.
    pub role_bindings: Indexed<Compact<RoleBinding>>,
    /// Every Version object of the kind's catalog.
    pub versions: Store<K::Version>,
}

/// Whether a controller's caches have been filled by their first lists, awaited by any number
/// of reconciles at once.
///
/// kube-runtime's `Store::wait_until_ready` keeps a single waker (its `DelayedInit` is a oneshot
/// receiver): when several reconciles wait at once, as after a start with many databases, only
/// the last one to poll it is woken, and the others slept until their timeout (60 s; issue 20,
/// defect 3). So one task waits on the stores, and every reconcile waits on this gate, a
/// `tokio::sync::watch` channel, which wakes every waiter.
#[derive(Clone, Debug)]
pub struct ReadyGate(tokio::sync::watch::Receiver<Option<std::result::Result<(), String>>>);

impl ReadyGate {
    /// Spawns the one task that waits until `caches` are filled.
    pub fn spawn<K: Database>(caches: Caches<K>) -> Self {
        Self::spawn_for(async move { caches.filled().await })
    }

    /// Spawns a task that opens the gate with `filled`'s outcome.
    pub fn spawn_for(
        filled: impl std::future::Future<Output = std::result::Result<(), String>> + Send + 'static,
    ) -> Self {
        let (tx, rx) = tokio::sync::watch::channel(None);
        tokio::spawn(async move {
            let _ = tx.send(Some(filled.await));
        });
        Self(rx)
    }

    /// Waits until the caches are filled (bounded by [`SYNC_TIMEOUT`]).
    pub async fn ready(&self) -> Result<()> {
        let mut rx = self.0.clone();
        let outcome = match tokio::time::timeout(SYNC_TIMEOUT, rx.wait_for(Option::is_some)).await {
            Ok(Ok(outcome)) => outcome.clone(),
            Ok(Err(_)) => Some(Err("the cache readiness task stopped".to_owned())),
            Err(_) => Some(Err(format!(
                "the watches did not complete their first list within {}s",
                SYNC_TIMEOUT.as_secs()
            ))),
        };
        match outcome {
            Some(Ok(())) => Ok(()),
            Some(Err(message)) => Err(Error::CacheUnavailable(message)),
            None => Err(Error::CacheUnavailable("no outcome".to_owned())),
        }
    }
}

/// Cached objects read as their typed kind (small ones: slimmed secrets and pods).
fn typed<K: DeserializeOwned>(objects: Vec<Arc<Compact<K>>>) -> Vec<Arc<K>> {
    objects
        .iter()
        .filter_map(|o| o.typed().ok())
        .map(Arc::new)
        .collect()
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

impl<K: Database> Caches<K> {
    /// Waits until every store has been filled by its first list; an error when a watch stopped.
    /// The destructuring has no `..`: a new store is a compile error until it is waited for.
    ///
    /// Exactly one task may wait here ([`ReadyGate::spawn`]): kube-runtime's
    /// `Store::wait_until_ready` wakes only the last of several concurrent waiters.
    async fn filled(&self) -> std::result::Result<(), String> {
        let Caches {
            sets,
            services,
            secrets,
            pdbs,
            certificates,
            pods,
            service_accounts,
            roles,
            role_bindings,
            versions,
        } = self;
        let all = async {
            sets.store.wait_until_ready().await?;
            services.store.wait_until_ready().await?;
            secrets.store.wait_until_ready().await?;
            pdbs.store.wait_until_ready().await?;
            if let Some(certificates) = certificates {
                certificates.store.wait_until_ready().await?;
            }
            pods.store.wait_until_ready().await?;
            service_accounts.store.wait_until_ready().await?;
            roles.store.wait_until_ready().await?;
            role_bindings.store.wait_until_ready().await?;
            versions.wait_until_ready().await
        };
        all.await
            .map_err(|_| "a watch of the controller stopped".to_owned())
    }

    /// The cached children of `db` (its namespace and selector labels).
    pub fn children(&self, db: &DbRef) -> Children {
        let ns = db.namespace.as_str();
        let selector = db.selector();
        Children {
            sets: self.sets.matching(ns, &selector),
            services: self.services.matching(ns, &selector),
            secrets: typed(self.secrets.matching(ns, &selector)),
            pdbs: self.pdbs.matching(ns, &selector),
            certificates: self
                .certificates
                .as_ref()
                .map(|c| c.matching(ns, &selector)),
            pods: typed(self.pods.matching(ns, &selector)),
            service_accounts: self.service_accounts.matching(ns, &selector),
            roles: self.roles.matching(ns, &selector),
            role_bindings: self.role_bindings.matching(ns, &selector),
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
/// part of an object's metadata) and kubectl's copy of the last applied manifest.
pub fn slim_meta<T: Resource>(object: &mut T) {
    slim_object_meta(object.meta_mut());
}

fn slim_object_meta(meta: &mut ObjectMeta) {
    meta.managed_fields = None;
    if let Some(annotations) = meta.annotations.as_mut() {
        annotations.remove(LAST_APPLIED);
    }
}

/// The annotation in which `kubectl apply` keeps the whole manifest it applied.
const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// Drops a cached secret's values, keeping its keys: reconciles only ask whether a secret exists
/// and which keys it has (the values they need are read by name when needed), and credentials
/// and private keys should not sit in the operator's memory for nothing.
pub fn slim_secret(secret: &mut Secret) {
    slim_meta(secret);
    secret.string_data = None;
    for value in secret.data.iter_mut().flat_map(|d| d.values_mut()) {
        value.0 = Vec::new();
    }
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

/// Applies a typed slimming function (`slim_secret`, `slim_pod`) to a compact object.
fn slim_as_typed<K: Serialize + DeserializeOwned>(object: &mut Compact<K>, slim: fn(&mut K)) {
    if let Ok(mut typed) = object.typed() {
        slim(&mut typed);
        if let Ok(slimmed) = Compact::from_typed(&typed) {
            *object = slimmed;
        }
    }
}

/// [`slim_secret`] for a cached secret.
pub fn slim_cached_secret(secret: &mut Compact<Secret>) {
    slim_as_typed(secret, slim_secret);
}

/// [`slim_pod`] for a cached pod.
pub fn slim_cached_pod(pod: &mut Compact<Pod>) {
    slim_as_typed(pod, slim_pod);
}

/// A watch of `api` that fills `writer` with slimmed objects (and `index`, when given, with
/// their names by instance) and yields the objects it touched (applied or deleted) as reconcile
/// triggers. Errors are retried with the default backoff.
pub fn reflected<T>(
    api: Api<T>,
    config: watcher::Config,
    writer: Writer<T>,
    index: Option<Arc<InstanceIndex>>,
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
        .inspect_ok(move |event| {
            if let Some(index) = &index {
                index.apply(event);
            }
        })
        .touched_objects()
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

    #[tokio::test]
    async fn every_waiter_at_the_gate_is_woken() {
        let (open, opened) = tokio::sync::oneshot::channel::<()>();
        let gate =
            ReadyGate::spawn_for(async move { opened.await.map_err(|_| "dropped".to_owned()) });
        let waiters: Vec<_> = (0..8)
            .map(|_| {
                let gate = gate.clone();
                tokio::spawn(async move { gate.ready().await })
            })
            .collect();
        tokio::task::yield_now().await;
        open.send(()).unwrap();
        for waiter in waiters {
            // Each finishes without waiting for the 60 s timeout (which would fail the test's
            // own bound long before).
            tokio::time::timeout(Duration::from_secs(5), waiter)
                .await
                .expect("woken")
                .unwrap()
                .unwrap();
        }
        let failed =
            ReadyGate::spawn_for(async { Err("a watch of the controller stopped".into()) });
        let err = failed.ready().await.unwrap_err();
        assert!(
            err.to_string()
                .contains("a watch of the controller stopped"),
            "{err}"
        );
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

    fn labelled(ns: &str, name: &str, instance: Option<&str>) -> Service {
        let l: Vec<(&str, &str)> = instance
            .map(|i| vec![(api::names::LABEL_INSTANCE, i)])
            .unwrap_or_default();
        let mut svc = service(ns, &l);
        svc.metadata.name = Some(name.into());
        svc
    }

    #[test]
    fn the_instance_index_follows_watch_events_and_relists() {
        use watcher::Event;
        let index = InstanceIndex::default();
        // A relist in progress is not visible until it completes.
        index.apply(&Event::<Service>::Init);
        index.apply(&Event::InitApply(labelled("demo", "a", Some("db1"))));
        index.apply(&Event::InitApply(labelled("demo", "b", Some("db1"))));
        index.apply(&Event::InitApply(labelled("demo", "c", None)));
        assert!(index.names("demo", "db1").is_empty());
        index.apply(&Event::<Service>::InitDone);
        assert_eq!(index.names("demo", "db1"), ["a", "b"]);
        // An object whose instance label changes moves; one that loses it disappears.
        index.apply(&Event::Apply(labelled("demo", "b", Some("db2"))));
        assert_eq!(index.names("demo", "db1"), ["a"]);
        assert_eq!(index.names("demo", "db2"), ["b"]);
        index.apply(&Event::Apply(labelled("demo", "b", None)));
        assert!(index.names("demo", "db2").is_empty());
        // Same name and instance in another namespace is another entry.
        index.apply(&Event::Apply(labelled("other", "a", Some("db1"))));
        index.apply(&Event::Delete(labelled("demo", "a", Some("db1"))));
        assert!(index.names("demo", "db1").is_empty());
        assert_eq!(index.names("other", "db1"), ["a"]);
        // A relist replaces everything: objects deleted while the watch was down are gone.
        index.apply(&Event::<Service>::Init);
        index.apply(&Event::InitApply(labelled("demo", "z", Some("db3"))));
        index.apply(&Event::<Service>::InitDone);
        assert!(index.names("other", "db1").is_empty());
        assert_eq!(index.names("demo", "db3"), ["z"]);
    }

    #[test]
    fn compact_objects_keep_everything_but_managed_fields_and_kubectls_copy() {
        let object = serde_json::json!({
            "apiVersion": "apps/v1",
            "kind": "StatefulSet",
            "metadata": {
                "name": "db", "namespace": "demo", "labels": {"app": "x"},
                "managedFields": [{"manager": "provisioner", "operation": "Apply"}],
                "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{}", "pin": "v2"},
            },
            "spec": {"replicas": 3, "template": {"spec": {"containers": [{"name": "c", "image": "i"}]}}},
            "status": {"readyReplicas": 2},
        });
        let compact: Compact<StatefulSet> = serde_json::from_value(object.clone()).unwrap();
        assert_eq!(compact.metadata.name.as_deref(), Some("db"));
        assert!(compact.metadata.managed_fields.is_none());
        assert_eq!(compact.body()["status"]["readyReplicas"], 2);
        assert!(compact.body().get("metadata").is_none());
        let mut want = object;
        want["metadata"]
            .as_object_mut()
            .unwrap()
            .remove("managedFields");
        want["metadata"]["annotations"]
            .as_object_mut()
            .unwrap()
            .remove("kubectl.kubernetes.io/last-applied-configuration");
        assert_eq!(compact.to_value(), want);
        // Decoded from text too (as watch events are), and inside a list.
        let listed: Vec<Compact<StatefulSet>> =
            serde_json::from_str(&format!("[{}]", serde_json::to_string(&want).unwrap())).unwrap();
        assert_eq!(listed[0].to_value(), want);
        // Read back as its kind.
        let typed = compact.typed().unwrap();
        assert_eq!(typed.spec.unwrap().replicas, Some(3));
        assert_eq!(typed.metadata.annotations.unwrap()["pin"], "v2");
    }

    #[test]
    fn compact_objects_address_the_api_of_their_kind() {
        assert_eq!(Compact::<StatefulSet>::kind(&()), "StatefulSet");
        assert_eq!(
            Compact::<StatefulSet>::url_path(&(), Some("demo")),
            StatefulSet::url_path(&(), Some("demo"))
        );
        let certificates = crate::reconcile::certificate_resource();
        assert_eq!(
            Compact::<DynamicObject>::url_path(&certificates, Some("demo")),
            "/apis/cert-manager.io/v1/namespaces/demo/certificates"
        );
        assert_eq!(
            Compact::<DynamicObject>::api_version(&certificates),
            "cert-manager.io/v1"
        );
    }

    #[test]
    fn cached_pods_and_secrets_are_slimmed_like_typed_ones() {
        let mut pod: Compact<Pod> = serde_json::from_value(serde_json::json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "db-0", "labels": {"kubedb.com/role": "primary"}},
            "spec": {"containers": [{"name": "mssql", "image": "x"}]},
            "status": {"phase": "Running", "podIP": "10.0.0.1",
                       "conditions": [{"type": "Ready", "status": "True"}]},
        }))
        .unwrap();
        slim_cached_pod(&mut pod);
        assert_eq!(
            pod.body(),
            serde_json::json!({"apiVersion": "v1", "kind": "Pod",
                "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}})
        );
        assert_eq!(
            pod.metadata.labels.as_ref().unwrap()["kubedb.com/role"],
            "primary"
        );
        let mut secret: Compact<Secret> = serde_json::from_value(serde_json::json!({
            "apiVersion": "v1", "kind": "Secret", "metadata": {"name": "auth"},
            "type": "kubernetes.io/basic-auth", "data": {"username": "c2E=", "password": "eA=="},
        }))
        .unwrap();
        slim_cached_secret(&mut secret);
        assert_eq!(
            secret.body()["data"],
            serde_json::json!({"username": "", "password": ""})
        );
        assert_eq!(secret.body()["type"], "kubernetes.io/basic-auth");
    }

    #[test]
    fn slim_secrets_keep_keys_not_values() {
        use k8s_openapi::ByteString;
        let mut secret = Secret {
            data: Some(BTreeMap::from([
                ("tls.crt".to_owned(), ByteString(b"cert".to_vec())),
                ("tls.key".to_owned(), ByteString(b"key".to_vec())),
            ])),
            string_data: Some(BTreeMap::from([("x".to_owned(), "y".to_owned())])),
            ..Secret::default()
        };
        slim_secret(&mut secret);
        let data = secret.data.unwrap();
        assert_eq!(data.keys().collect::<Vec<_>>(), ["tls.crt", "tls.key"]);
        assert!(data.values().all(|v| v.0.is_empty()));
        assert!(secret.string_data.is_none());
    }
}
