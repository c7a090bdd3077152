//! One reconcile of a database: observe → validate/plan → apply → status. The pure parts live in
//! [`crate::build`] and [`crate::status`]; this module only reads and writes the API.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use api::catalog::VersionObject;
use api::common::DeletionPolicy;
use api::conditions::{db_types, get_condition};
use api::names;
use k8s_openapi::ByteString;
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod, Secret, Service};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{OwnerReference, Time};
use kube::api::{Api, DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PostParams};
use kube::discovery::ApiResource;
use kube::runtime::controller::Action;
use kube::{Client, Resource, ResourceExt};
use operator_common::events::EventPublisher;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::cache::{Caches, Children, Compact};
use crate::config::{Config, HealthCheckMode};
use crate::controller::KindContext;
use crate::database::{Database, DbRef, PlanInput, conditions_of};
use crate::error::{Error, Result};
use crate::health::{self, Engine, ProbeSettings, SqlTarget};
use crate::health_check::{SqlProbes, pod_health, role_holder};
use crate::metrics::Metrics;
use crate::plan::{Changes, ChildKind, Desired};
use crate::status::{self, AgObservation, Blocker, Health, Observation, SetReadiness};

/// How often a blocked database is looked at again.
pub const BLOCKED_RECHECK: Duration = Duration::from_secs(10);

/// Shared state of the reconcilers.
pub struct Context {
    /// Client with the provisioner's user agent.
    pub client: Client,
    /// Configuration.
    pub config: Config,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// Event publisher (`kubedb-provisioner`).
    pub events: EventPublisher,
    /// SQL probe state (`--health-check=sql`).
    pub probes: SqlProbes,
    /// The last error reported per database, for one Warning Event per distinct error.
    pub errors: ErrorReports,
    /// Reconcile slots (`--max-concurrent-reconciles`).
    pub slots: Arc<tokio::sync::Semaphore>,
}

/// A reconcile's slot (one of `--max-concurrent-reconciles`), given back while it waits for a
/// SQL probe.
pub struct Slot {
    slots: Arc<tokio::sync::Semaphore>,
    waiting: prometheus::IntGauge,
    permit: Option<tokio::sync::OwnedSemaphorePermit>,
}

impl Slot {
    /// Waits for a free slot of `slots`, counted in `waiting` meanwhile.
    pub async fn acquire(
        slots: Arc<tokio::sync::Semaphore>,
        waiting: prometheus::IntGauge,
    ) -> Slot {
        let mut slot = Slot {
            slots,
            waiting,
            permit: None,
        };
        slot.reacquire().await;
        slot
    }

    /// Gives the slot back (until [`Slot::reacquire`]).
    pub fn release(&mut self) {
        self.permit = None;
    }

    /// Takes a slot again if this one was given back.
    pub async fn reacquire(&mut self) {
        /// Counts a wait in the gauge until it ends or is cancelled.
        struct Waiting<'a>(&'a prometheus::IntGauge);
        impl Drop for Waiting<'_> {
            fn drop(&mut self) {
                self.0.dec();
            }
        }
        if self.permit.is_none() {
            self.waiting.inc();
            let _waiting = Waiting(&self.waiting);
            // The semaphore is never closed.
            self.permit = self.slots.clone().acquire_owned().await.ok();
        }
    }
}

/// The last error reported per database (`kind/namespace/name`), so a failing reconcile publishes
/// one Warning Event per distinct error rather than one per retry.
#[derive(Debug, Default)]
pub struct ErrorReports(std::sync::Mutex<std::collections::HashMap<String, String>>);

impl ErrorReports {
    /// Records the outcome of a reconcile; returns the error message when it is new for `key`.
    pub fn transition(&self, key: &str, error: Option<String>) -> Option<String> {
        let mut last = self.0.lock().unwrap_or_else(|p| p.into_inner());
        match error {
            None => {
                last.remove(key);
                None
            }
            Some(message) if last.get(key) == Some(&message) => None,
            Some(message) => {
                last.insert(key.to_owned(), message.clone());
                Some(message)
            }
        }
    }
}

/// Patch parameters naming the provisioner's field manager (for merge patches).
fn manager_params() -> PatchParams {
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

fn selector_string(labels: &BTreeMap<String, String>) -> String {
    labels
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

impl Children {
    fn live(&self, kind: ChildKind, name: &str) -> Option<Value> {
        fn find<K>(list: &[Arc<Compact<K>>], name: &str) -> Option<Value> {
            list.iter()
                .find(|o| o.metadata.name.as_deref() == Some(name))
                .map(|o| o.to_value())
        }
        match kind {
            ChildKind::StatefulSet => find(&self.sets, name),
            ChildKind::Service => find(&self.services, name),
            ChildKind::Secret => self
                .secrets
                .iter()
                .find(|o| o.metadata.name.as_deref() == Some(name))
                .and_then(|o| serde_json::to_value(o.as_ref()).ok()),
            ChildKind::PodDisruptionBudget => find(&self.pdbs, name),
            ChildKind::Certificate => self.certificates.as_deref().and_then(|c| find(c, name)),
        }
    }

    /// Names of the children of `kind` controlled by the database `uid`.
    fn owned(&self, kind: ChildKind, uid: &str) -> Vec<String> {
        fn owned_by<K: Resource>(list: &[Arc<K>], uid: &str) -> Vec<String> {
            list.iter()
                .filter(|o| is_controlled_by(o.meta().owner_references.as_deref(), uid))
                .filter_map(|o| o.meta().name.clone())
                .collect()
        }
        match kind {
            ChildKind::StatefulSet => owned_by(&self.sets, uid),
            ChildKind::Service => owned_by(&self.services, uid),
            ChildKind::Secret => owned_by(&self.secrets, uid),
            ChildKind::PodDisruptionBudget => owned_by(&self.pdbs, uid),
            ChildKind::Certificate => self
                .certificates
                .as_deref()
                .map(|c| owned_by(c, uid))
                .unwrap_or_default(),
        }
    }
}

fn is_controlled_by(refs: Option<&[OwnerReference]>, uid: &str) -> bool {
    refs.into_iter()
        .flatten()
        .any(|r| r.uid == uid && r.controller == Some(true))
}

async fn list<K>(api: Api<K>, selector: &str, what: &str) -> Result<Vec<K>>
where
    K: Resource + Clone + DeserializeOwned + std::fmt::Debug,
{
    api.list(&ListParams::default().labels(selector))
        .await
        .map(|l| l.items)
        .map_err(|e| Error::kube(format!("listing {what}"), e))
}

/// Reconciles one database and records metrics.
///
/// The cached database is read as its typed kind here, once per reconcile.
pub async fn reconcile<K: Database>(
    db: Arc<Compact<K>>,
    kind_ctx: Arc<KindContext<K>>,
) -> Result<Action> {
    let ctx = &kind_ctx.shared;
    let caches = &kind_ctx.caches;
    let namespace = db.namespace().unwrap_or_default();
    let result = match caches.ready().await {
        Ok(()) => {
            let mut slot = Slot::acquire(ctx.slots.clone(), ctx.metrics.waiting.clone()).await;
            let start = Instant::now();
            let result = match db.typed() {
                // Boxed: a reconcile waiting for its slot holds only this small future.
                Ok(typed) => Box::pin(reconcile_inner(&typed, ctx, caches, &mut slot)).await,
                Err(source) => Err(Error::Serialization {
                    what: format!("{} {namespace}/{}", K::KIND.as_str(), db.name_any()),
                    source,
                }),
            };
            (result, start.elapsed())
        }
        Err(e) => (Err(e), Duration::ZERO),
    };
    let (result, took) = result;
    ctx.metrics
        .reconciled(K::KIND, took, result.as_ref().err().map(Error::category));
    let key = format!("{}/{namespace}/{}", K::KIND.as_str(), db.name_any());
    let reportable = result
        .as_ref()
        .err()
        .filter(|e| !e.is_conflict())
        .map(ToString::to_string);
    if let Some(message) = ctx.errors.transition(&key, reportable) {
        let event =
            operator_common::events::EventSpec::warning("ReconcileFailed", "Reconcile", message);
        ctx.events.publish(db.as_ref(), event).await;
    }
    if let Err(error) = &result {
        if error.is_conflict() {
            tracing::debug!(kind = K::KIND.as_str(), db = %db.name_any(), %error, "conflict; retrying");
        } else {
            tracing::warn!(kind = K::KIND.as_str(), db = %db.name_any(),
                %namespace, %error, "reconcile failed");
        }
    }
    result
}

/// How long after a conflict a database is looked at again at the latest.
///
/// A 409 means the API server holds a newer version of the object than our cache: the watch event
/// carrying it triggers the next reconcile (at once if it is already queued), so this is only a
/// safety net. Retrying conflicts quickly instead made a provisioner whose caches lagged under
/// load spend its time on reconciles bound to conflict again (see `docs/performance.md`).
pub const CONFLICT_RECHECK: Duration = Duration::from_secs(2);

/// Requeue policy after an error: conflicts wait for the newer object (see
/// [`CONFLICT_RECHECK`]), everything else is retried after a pause.
pub fn error_policy<K: Database>(
    _db: Arc<Compact<K>>,
    error: &Error,
    _ctx: Arc<KindContext<K>>,
) -> Action {
    if error.is_conflict() {
        Action::requeue(CONFLICT_RECHECK)
    } else {
        Action::requeue(Duration::from_secs(5))
    }
}

async fn reconcile_inner<K: Database>(
    db: &K,
    ctx: &Context,
    caches: &Caches<K>,
    slot: &mut Slot,
) -> Result<Action> {
    let r = DbRef::of(db);
    let paused = get_condition(conditions_of(db), db_types::PAUSED).is_some();
    if db.meta().deletion_timestamp.is_some() {
        return finalize(db, &r, ctx, caches, paused).await;
    }
    let api: Api<K> = Api::namespaced(ctx.client.clone(), &r.namespace);
    if !db.finalizers().iter().any(|f| f == names::FINALIZER) {
        let mut finalizers = db.finalizers().to_vec();
        finalizers.push(names::FINALIZER.to_owned());
        let patch = json!({"metadata": {"resourceVersion": db.resource_version(), "finalizers": finalizers}});
        api.patch(&r.name, &manager_params(), &Patch::Merge(&patch))
            .await
            .map_err(|e| Error::kube(format!("adding the finalizer to {}", r.key()), e))?;
        ctx.metrics.write(r.kind.metric_label(), "patch");
        // The update triggers the next reconcile.
        return Ok(Action::await_change());
    }

    // Observe.
    let children = caches.children(&r);
    let version = resolve_version(caches, db)
        .map(|current| images_version(caches, db, current, &children.sets));
    let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), &r.namespace);
    let mut config_sources = BTreeMap::new();
    for name in db.config_source_secrets() {
        if let Some(secret) = get_secret(&secrets, &name).await? {
            config_sources.insert(name, secret_strings(&secret));
        }
    }
    let mut missing_user_secrets = Vec::new();
    for name in db.required_user_secrets() {
        if get_secret(&secrets, &name).await?.is_none() {
            missing_user_secrets.push(name);
        }
    }

    // Validate and plan.
    let plan: std::result::Result<Desired, Blocker> = match version {
        Err(blocker) => Err(blocker),
        Ok(_) if !missing_user_secrets.is_empty() => Err(Blocker {
            reason: "SecretNotFound".into(),
            message: format!(
                "the secret {} does not exist in namespace {}; create it (the license secret needs the key `password`)",
                missing_user_secrets.join(", "),
                r.namespace
            ),
        }),
        Ok(version) => db
            .plan(&PlanInput {
                version: &version,
                config_sources: &config_sources,
            })
            .map_err(|e| Blocker {
                reason: e.reason.to_owned(),
                message: e.message,
            })
            .and_then(|desired| {
                if children.certificates.is_none() && !desired.certificates.is_empty() {
                    Err(cert_manager_missing())
                } else {
                    Ok(desired)
                }
            }),
    };

    // Compare with the live children, keeping only what is left to write.
    let halted = db.halted();
    let plan: std::result::Result<Changes, Blocker> = match plan {
        Ok(desired) => {
            let desired = if halted {
                desired.only_secrets()
            } else {
                desired
            };
            Ok(desired
                .changes(|kind, name| children.live(kind, name))
                .map_err(|source| Error::Serialization {
                    what: format!("the planned children of {}", r.key()),
                    source,
                })?)
        }
        Err(blocker) => Err(blocker),
    };

    // Apply (never while paused).
    let mut missing_certificates = None;
    // StatefulSets this reconcile created (not in the cache yet, but provisioning has started).
    let mut created_sets = false;
    if let Ok(changes) = &plan {
        let missing = missing_cert_secrets(&secrets, &children, changes).await?;
        if !paused {
            created_sets = apply_desired(ctx, &r, changes, &children, missing.is_empty()).await?;
        }
        if !halted && !changes.certificate_secrets.is_empty() {
            missing_certificates = Some(missing);
        }
    }

    // Status.
    let desired_sets: &[(String, i32)] = match &plan {
        Ok(changes) => &changes.sets,
        Err(_) => &[],
    };
    let sets: Vec<SetReadiness> = desired_sets
        .iter()
        .map(|(name, replicas)| {
            let live = children
                .sets
                .iter()
                .find(|s| s.meta().name.as_deref() == Some(name));
            SetReadiness {
                name: name.clone(),
                replicas: *replicas,
                ready: live
                    .and_then(|s| s.body()["status"]["readyReplicas"].as_i64())
                    .unwrap_or(0) as i32,
            }
        })
        .collect();
    let started_before =
        api::conditions::is_condition_true(conditions_of(db), db_types::PROVISIONING_STARTED);
    let provisioning_started = started_before
        || created_sets
        || desired_sets.iter().any(|(name, _)| {
            children
                .sets
                .iter()
                .any(|s| s.meta().name.as_deref() == Some(name))
        });
    let primary_sets = db.primary_sets();
    let ag = db.tracks_ag_primary().then(|| AgObservation {
        name: names::mssql::availability_group(&r.name),
        primary: role_holder(&children.pods, &primary_sets, names::ROLE_PRIMARY),
    });
    let health = if plan.is_ok() && provisioning_started && !halted {
        check_health(ctx, db, &r, &children.pods, &primary_sets, slot).await?
    } else {
        Health::default()
    };
    let observation = Observation {
        kind: r.kind,
        key: r.key(),
        generation: db.meta().generation.unwrap_or(0),
        blocker: plan.as_ref().err().cloned(),
        missing_certificates,
        provisioning_started: provisioning_started && plan.is_ok(),
        halted: halted && plan.is_ok(),
        sets,
        ag,
        health,
        deletion_blocked: None,
    };
    let now = Time(jiff::Timestamp::now());
    let conditions = status::compute_conditions(conditions_of(db), &observation, &now);
    write_status(ctx, db, &r, conditions, observation.generation).await?;

    Ok(match (&plan, ctx.config.health_check) {
        // Blockers (a missing Version or user secret) are not watched: look again soon.
        (Err(_), _) => Action::requeue(BLOCKED_RECHECK),
        (Ok(_), HealthCheckMode::Sql) if !halted => {
            let settings = ProbeSettings::from_spec(&db.health_checker());
            Action::requeue(ctx.probes.next_due(&r.key(), &settings))
        }
        _ => Action::requeue(ctx.config.resync_period),
    })
}

/// The blocker of a TLS database when the Certificate API is not served.
pub fn cert_manager_missing() -> Blocker {
    Blocker {
        reason: "CertManagerNotInstalled".into(),
        message: "the cert-manager.io/v1 Certificate API is not served in this cluster: install cert-manager (the database's TLS certificates are issued through it)".into(),
    }
}

/// Resolves `spec.version` from the catalog cache; unknown or deprecated versions are a
/// [`Blocker`] naming the available ones.
fn resolve_version<K: Database>(
    caches: &Caches<K>,
    db: &K,
) -> std::result::Result<K::Version, Blocker> {
    let name = db.version_name();
    let found = caches.version(name);
    if let Some(version) = &found
        && !K::version_deprecated(version)
    {
        return Ok(version.as_ref().clone());
    }
    let mut available: Vec<String> = caches
        .versions
        .state()
        .iter()
        .filter(|v| !K::version_deprecated(v))
        .map(|v| v.name_any())
        .collect();
    available.sort();
    Err(version_blocker(
        K::KIND.version_kind(),
        name,
        found.is_some(),
        &available,
    ))
}

/// The Version whose images the StatefulSets should carry: normally `spec.version`'s, but while
/// an UpdateVersion has moved the templates to a target (annotation
/// [`names::TARGET_VERSION_ANNOTATION`] on a StatefulSet) that `spec.version` does not name yet —
/// a request in progress or one that failed part-way — the target's, provided the current Version
/// allows that update. Rendering the old images there would roll already-updated pods back (for
/// SQL Server, a downgrade of its data files) the next time they restart.
fn images_version<K: Database>(
    caches: &Caches<K>,
    db: &K,
    current: K::Version,
    sets: &[Arc<Compact<StatefulSet>>],
) -> K::Version {
    let pins: Vec<&str> = sets
        .iter()
        .filter_map(|s| s.annotations().get(names::TARGET_VERSION_ANNOTATION))
        .map(String::as_str)
        .collect();
    let Some(pin) = pinned_target(db.version_name(), &pins) else {
        return current;
    };
    let all = caches.all_versions();
    match api::constraints::check_update(db.version_name(), pin, &all) {
        Ok(()) => all
            .into_iter()
            .find(|v| v.object_name() == pin)
            .unwrap_or(current),
        Err(err) => {
            tracing::warn!(version = db.version_name(), target = pin, error = %err,
                "ignoring the StatefulSet's target-version annotation: not an allowed update");
            current
        }
    }
}

/// The update target the StatefulSets are pinned to, if it differs from `spec_version` (pure).
/// Several StatefulSets of one database carry the same target; the first one that differs wins.
pub fn pinned_target<'a>(spec_version: &str, pins: &[&'a str]) -> Option<&'a str> {
    pins.iter()
        .copied()
        .find(|p| !p.is_empty() && *p != spec_version)
}

/// The blocker of an unknown (`exists == false`) or deprecated version.
pub fn version_blocker(kind: &str, name: &str, exists: bool, available: &[String]) -> Blocker {
    let list = if available.is_empty() {
        "none".to_owned()
    } else {
        available.join(", ")
    };
    if exists {
        Blocker {
            reason: "VersionDeprecated".into(),
            message: format!(
                "{kind} {name:?} is deprecated and is not provisioned; available versions: {list}"
            ),
        }
    } else {
        Blocker {
            reason: "VersionNotFound".into(),
            message: format!("{kind} {name:?} does not exist; available versions: {list}"),
        }
    }
}

async fn get_secret(api: &Api<Secret>, name: &str) -> Result<Option<Secret>> {
    api.get_opt(name)
        .await
        .map_err(|e| Error::kube(format!("reading secret {name}"), e))
}

fn secret_strings(secret: &Secret) -> BTreeMap<String, String> {
    let mut out: BTreeMap<String, String> = secret
        .data
        .iter()
        .flatten()
        .map(|(k, v)| (k.clone(), String::from_utf8_lossy(&v.0).into_owned()))
        .collect();
    out.extend(secret.string_data.clone().unwrap_or_default());
    out
}

/// Certificate secrets that do not exist yet (looked up by name when not among the labelled ones).
async fn missing_cert_secrets(
    secrets: &Api<Secret>,
    children: &Children,
    changes: &Changes,
) -> Result<Vec<String>> {
    let mut missing = Vec::new();
    for name in &changes.certificate_secrets {
        let labelled = children
            .secrets
            .iter()
            .any(|s| s.meta().name.as_deref() == Some(name.as_str()) && has_tls_data(s));
        if labelled {
            continue;
        }
        if !get_secret(secrets, name)
            .await?
            .is_some_and(|s| has_tls_data(&s))
        {
            missing.push(name.clone());
        }
    }
    Ok(missing)
}

fn has_tls_data(secret: &Secret) -> bool {
    secret
        .data
        .as_ref()
        .is_some_and(|d| d.contains_key("tls.crt") && d.contains_key("tls.key"))
}

fn api_for(client: &Client, ns: &str, kind: ChildKind) -> Api<DynamicObject> {
    let resource = match kind {
        ChildKind::StatefulSet => ApiResource::erase::<StatefulSet>(&()),
        ChildKind::Service => ApiResource::erase::<Service>(&()),
        ChildKind::Secret => ApiResource::erase::<Secret>(&()),
        ChildKind::PodDisruptionBudget => ApiResource::erase::<PodDisruptionBudget>(&()),
        ChildKind::Certificate => certificate_resource(),
    };
    Api::namespaced_with(client.clone(), ns, &resource)
}

/// Applies the desired children that differ from the live ones, creates missing generated
/// secrets, and deletes owned children the spec no longer produces. Returns whether a
/// StatefulSet was created.
async fn apply_desired(
    ctx: &Context,
    r: &DbRef,
    changes: &Changes,
    children: &Children,
    certificates_issued: bool,
) -> Result<bool> {
    let mut created_sets = false;
    let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), &r.namespace);
    for generated in &changes.generated {
        let exists = children
            .secrets
            .iter()
            .any(|s| s.meta().name.as_deref() == Some(generated.name.as_str()))
            || get_secret(&secrets, &generated.name).await?.is_some();
        if exists {
            continue;
        }
        let mut data = BTreeMap::new();
        for (k, v) in &generated.fixed {
            data.insert(k.clone(), ByteString(v.clone().into_bytes()));
        }
        for key in &generated.random_keys {
            data.insert(
                key.clone(),
                ByteString(crate::password::generate()?.into_bytes()),
            );
        }
        let metadata = generated.metadata.clone();
        let secret = Secret {
            metadata,
            type_: Some(generated.type_.clone()),
            data: Some(data),
            ..Secret::default()
        };
        match secrets
            .create(
                &PostParams {
                    field_manager: Some(names::PROVISIONER_FIELD_MANAGER.into()),
                    ..PostParams::default()
                },
                &secret,
            )
            .await
        {
            Ok(_) => {
                ctx.metrics.write("secrets", "create");
                tracing::info!(db = %r.key(), secret = %generated.name, "created secret with generated credentials");
            }
            Err(kube::Error::Api(s)) if s.code == 409 => {}
            Err(e) => {
                return Err(Error::kube(
                    format!("creating secret {}", generated.name),
                    e,
                ));
            }
        }
    }

    for kind in ChildKind::ALL {
        let api = api_for(&ctx.client, &r.namespace, kind);
        for child in changes.applies_of(kind) {
            if kind == ChildKind::StatefulSet && child.creates && !certificates_issued {
                // Pods would fail to mount the certificate secrets; wait for cert-manager.
                continue;
            }
            if kind == ChildKind::Certificate && children.certificates.is_none() {
                // cert-manager is not installed; the CertificatesIssued condition says so.
                continue;
            }
            operator_common::apply::apply(
                &api,
                &child.name,
                child.body.as_ref(),
                names::PROVISIONER_FIELD_MANAGER,
            )
            .await
            .map_err(|e| {
                Error::kube(
                    format!("applying {} {}/{}", kind.kind(), r.namespace, child.name),
                    e,
                )
            })?;
            ctx.metrics.write(kind.resource(), "apply");
            created_sets |= kind == ChildKind::StatefulSet && child.creates;
            tracing::info!(db = %r.key(), kind = kind.kind(), name = %child.name, "applied");
        }
        for name in children.owned(kind, &r.uid) {
            if !changes.wants(kind, &name) {
                delete(&api, &name, kind, ctx).await?;
                tracing::info!(db = %r.key(), kind = kind.kind(), %name, "deleted child the spec no longer produces");
            }
        }
    }
    Ok(created_sets)
}

async fn delete(
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

async fn check_health<K: Database>(
    ctx: &Context,
    db: &K,
    r: &DbRef,
    pods: &[Arc<Pod>],
    primary_sets: &[String],
    slot: &mut Slot,
) -> Result<Health> {
    let role = db.tracks_ag_primary().then_some(names::ROLE_PRIMARY);
    let pods_health = pod_health(pods, primary_sets, role);
    if ctx.config.health_check == HealthCheckMode::PodReadiness {
        ctx.metrics
            .health_check(r.kind, "pod-readiness", pods_health.serving);
        return Ok(Health {
            accepting: pods_health.serving,
            ready: pods_health.serving,
            message: pods_health.message,
        });
    }
    if !pods_health.serving {
        // Nothing can answer: skip the probe (and its timeout).
        return Ok(Health {
            accepting: false,
            ready: false,
            message: pods_health.message,
        });
    }
    let settings = ProbeSettings::from_spec(&db.health_checker());
    let key = r.key();
    if let Some(cached) = ctx.probes.cached(&key, &settings) {
        return Ok(cached);
    }
    let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), &r.namespace);
    let auth_name = db.auth_secret_name();
    let Some(auth) = get_secret(&secrets, &auth_name).await? else {
        return Ok(Health {
            accepting: false,
            ready: false,
            message: format!("the auth secret {auth_name} does not exist"),
        });
    };
    let data = secret_strings(&auth);
    let (service, port) = db.sql_endpoint();
    let engine = match r.kind {
        crate::database::DbKind::MSSQLServer => Engine::SqlServer,
        crate::database::DbKind::Singlestore => Engine::SingleStore {
            cluster: primary_sets
                .first()
                .is_some_and(|s| s.ends_with("-aggregator")),
        },
    };
    let target = SqlTarget::new(
        engine,
        format!("{service}.{}.svc", r.namespace),
        port,
        data.get("username")
            .cloned()
            .unwrap_or_else(|| db.admin_user().to_owned()),
        data.get("password").cloned().unwrap_or_default(),
    )
    .with_settings(&settings);
    // A probe can wait up to its timeout on an unreachable database: not on a reconcile slot.
    slot.release();
    let report = health::check_sql(&target).await;
    slot.reacquire().await;
    let result = ctx.probes.record(&key, &settings, &report);
    ctx.metrics.health_check(r.kind, "sql", report.is_healthy());
    Ok(result)
}

/// Writes `status` when it differs (merge patch of `/status` with a resourceVersion precondition,
/// so a concurrent `Paused` request is never lost) and publishes transition Events.
async fn write_status<K: Database>(
    ctx: &Context,
    db: &K,
    r: &DbRef,
    conditions: Vec<api::Condition>,
    generation: i64,
) -> Result<()> {
    let current = conditions_of(db);
    let phase = status::phase(&conditions);
    let existing = db.db_status();
    let unchanged = existing.is_some_and(|s| {
        s.conditions() == conditions.as_slice()
            && s.phase == phase
            && s.observed_generation == Some(generation)
    });
    ctx.metrics
        .set_phase(r.kind, r.key(), phase.map(|p| p.as_str()));
    if unchanged {
        return Ok(());
    }
    let patch = json!({
        "metadata": {"resourceVersion": db.resource_version()},
        "status": {
            "phase": phase,
            "observedGeneration": generation,
            "conditions": conditions,
        },
    });
    let api: Api<K> = Api::namespaced(ctx.client.clone(), &r.namespace);
    api.patch_status(&r.name, &manager_params(), &Patch::Merge(&patch))
        .await
        .map_err(|e| Error::kube(format!("writing the status of {}", r.key()), e))?;
    ctx.metrics.write(r.kind.metric_label(), "patch-status");
    for event in status::transition_events(r.kind, current, &conditions) {
        ctx.events.publish(db, event).await;
    }
    Ok(())
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
async fn finalize<K: Database>(
    db: &K,
    r: &DbRef,
    ctx: &Context,
    caches: &Caches<K>,
    paused: bool,
) -> Result<Action> {
    if !db.finalizers().iter().any(|f| f == names::FINALIZER) {
        return Ok(Action::await_change());
    }
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
    for kind in [
        ChildKind::PodDisruptionBudget,
        ChildKind::StatefulSet,
        ChildKind::Service,
        ChildKind::Certificate,
    ] {
        let api = api_for(&ctx.client, &r.namespace, kind);
        for name in children.owned(kind, &r.uid) {
            delete(&api, &name, kind, ctx).await?;
        }
    }
    let secrets = api_for(&ctx.client, &r.namespace, ChildKind::Secret);
    for secret in &children.secrets {
        let name = secret.name_any();
        if policy == DeletionPolicy::WipeOut {
            delete(&secrets, &name, ChildKind::Secret, ctx).await?;
        } else if is_controlled_by(secret.meta().owner_references.as_deref(), &r.uid) {
            // Orphan the secret so garbage collection keeps it.
            let patch = json!({"metadata": {"ownerReferences": null}});
            match secrets
                .patch(&name, &manager_params(), &Patch::Merge(&patch))
                .await
            {
                Ok(_) => ctx.metrics.write("secrets", "patch"),
                Err(kube::Error::Api(s)) if s.code == 404 => {}
                Err(e) => return Err(Error::kube(format!("orphaning secret {name}"), e)),
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
    let finalizers: Vec<String> = db
        .finalizers()
        .iter()
        .filter(|f| *f != names::FINALIZER)
        .cloned()
        .collect();
    let api: Api<K> = Api::namespaced(ctx.client.clone(), &r.namespace);
    let patch =
        json!({"metadata": {"resourceVersion": db.resource_version(), "finalizers": finalizers}});
    match api
        .patch(&r.name, &manager_params(), &Patch::Merge(&patch))
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

    #[tokio::test]
    async fn slots_bound_reconciles_and_are_given_back_for_probes() {
        use futures::FutureExt;
        let slots = Arc::new(tokio::sync::Semaphore::new(1));
        let waiting = prometheus::IntGauge::new("w", "w").unwrap();
        let mut first = Slot::acquire(slots.clone(), waiting.clone()).await;
        // A second reconcile waits while the only slot is taken, and is counted as waiting.
        let mut second = Box::pin(Slot::acquire(slots.clone(), waiting.clone()));
        assert!((&mut second).now_or_never().is_none());
        assert_eq!(waiting.get(), 1);
        // The first gives its slot back (a SQL probe): the second gets it.
        first.release();
        let second = tokio::time::timeout(Duration::from_secs(5), second)
            .await
            .expect("the released slot is taken");
        assert_eq!(waiting.get(), 0);
        // The first waits for a slot again until the second finishes.
        {
            let mut again = Box::pin(first.reacquire());
            assert!((&mut again).now_or_never().is_none());
        }
        assert_eq!(waiting.get(), 0, "a dropped wait is not counted");
        drop(second);
        tokio::time::timeout(Duration::from_secs(5), first.reacquire())
            .await
            .expect("the slot is free again");
        assert_eq!(slots.available_permits(), 0);
        drop(first);
        assert_eq!(slots.available_permits(), 1);
    }

    use super::*;
    use crate::database::DbKind;

    #[test]
    fn version_blockers_name_the_version_and_the_alternatives() {
        let available = vec!["2022-cu22".to_owned(), "2025-cu0".to_owned()];
        let unknown = version_blocker("MSSQLServerVersion", "2019", false, &available);
        assert_eq!(unknown.reason, "VersionNotFound");
        assert_eq!(
            unknown.message,
            "MSSQLServerVersion \"2019\" does not exist; available versions: 2022-cu22, 2025-cu0"
        );
        let deprecated = version_blocker("SinglestoreVersion", "8.1.32", true, &[]);
        assert_eq!(deprecated.reason, "VersionDeprecated");
        assert!(
            deprecated.message.ends_with("available versions: none"),
            "{}",
            deprecated.message
        );
    }

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

    #[test]
    fn errors_are_reported_once_per_distinct_message() {
        let reports = ErrorReports::default();
        assert_eq!(
            reports.transition("a", Some("boom".into())).as_deref(),
            Some("boom")
        );
        assert_eq!(reports.transition("a", Some("boom".into())), None);
        assert_eq!(
            reports.transition("a", Some("bang".into())).as_deref(),
            Some("bang")
        );
        assert_eq!(reports.transition("a", None), None);
        assert_eq!(
            reports.transition("a", Some("bang".into())).as_deref(),
            Some("bang")
        );
    }

    #[test]
    fn selectors_render_as_label_queries() {
        let labels = BTreeMap::from([
            ("a".to_owned(), "1".to_owned()),
            ("b".to_owned(), "2".to_owned()),
        ]);
        assert_eq!(selector_string(&labels), "a=1,b=2");
    }
}

#[cfg(test)]
mod pin_tests {
    use super::pinned_target;

    #[test]
    fn pinned_target_is_a_differing_non_empty_annotation() {
        let cases: &[(&str, &[&str], Option<&str>)] = &[
            ("2022-cu22", &[], None),
            ("2022-cu22", &["2022-cu22"], None),
            ("2022-cu22", &["", "2025-cu0"], Some("2025-cu0")),
            ("2022-cu22", &["2022-cu22", "2025-cu0"], Some("2025-cu0")),
            ("8.9.3", &["8.9.3", "8.9.3"], None),
        ];
        for (spec, pins, want) in cases {
            assert_eq!(pinned_target(spec, pins), *want, "{spec} {pins:?}");
        }
    }
}
