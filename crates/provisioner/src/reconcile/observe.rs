//! The observe step: what one reconcile reads, from the watch caches (children, pods, the
//! catalog) and from the API (the user's secrets, which are not labelled and so not cached).

use std::collections::BTreeMap;
use std::sync::Arc;

use api::catalog::VersionObject;
use api::conditions::{db_types, get_condition};
use api::names;
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::Secret;
use kube::ResourceExt;
use kube::api::Api;

use super::Context;
use super::io::{get_secret, secret_strings};
use super::validate::{pinned_target, version_blocker};
use crate::cache::{Caches, Children, Compact};
use crate::database::{Database, DbRef, conditions_of};
use crate::error::Result;
use crate::status::Blocker;

/// What a reconcile knows about its database's world.
pub struct Observed<V> {
    /// The database's children and pods, from the caches.
    pub children: Children,
    /// The Version whose images the StatefulSets should carry, or why there is none.
    pub version: std::result::Result<V, Blocker>,
    /// Data of the user's configuration secrets, by name (missing secrets absent).
    pub config_sources: BTreeMap<String, BTreeMap<String, String>>,
    /// User secrets the pods need that do not exist (SingleStore's license).
    pub missing_user_secrets: Vec<String>,
    /// User secrets that exist without the key the pods read (`(secret, key)`).
    pub incomplete_user_secrets: Vec<(String, &'static str)>,
    /// The ops-manager asked for a pause (condition `Paused` present): no child is written.
    pub paused: bool,
    /// The Version an unfinished UpdateVersion moved the StatefulSets to, when it is not
    /// `spec.version` (the pods run a mix until each restarts).
    pub unfinished_update: Option<String>,
}

/// Reads what the reconcile of `db` needs.
pub async fn observe<K: Database>(
    db: &K,
    r: &DbRef,
    ctx: &Context,
    caches: &Caches<K>,
) -> Result<Observed<K::Version>> {
    let children = caches.children(r);
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
    let mut incomplete_user_secrets = Vec::new();
    for (name, key) in db.required_user_secrets() {
        match get_secret(&secrets, &name).await? {
            None => missing_user_secrets.push(name),
            Some(secret) => {
                if secret_strings(&secret)
                    .get(key)
                    .is_none_or(|v| v.trim().is_empty())
                {
                    incomplete_user_secrets.push((name, key));
                }
            }
        }
    }
    let unfinished_update = version
        .as_ref()
        .ok()
        .map(VersionObject::object_name)
        .filter(|name| name != db.version_name());
    Ok(Observed {
        children,
        version,
        unfinished_update,
        config_sources,
        missing_user_secrets,
        incomplete_user_secrets,
        paused: get_condition(conditions_of(db), db_types::PAUSED).is_some(),
    })
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
