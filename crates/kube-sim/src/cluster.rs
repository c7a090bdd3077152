//! API semantics over the store: create, update, patch, delete with finalizers and garbage
//! collection, namespaces, CRD serving and list filtering. Everything here runs under one lock,
//! so each request sees and produces a consistent state.

use std::sync::Arc;

use serde_json::{Map, Value, json};

use crate::defaults::{self, IpAllocator};
use crate::error::{ApiError, ApiResult, Cause};
use crate::events;
use crate::meta;
use crate::patch_adapter;
use crate::patching::PatchType;
use crate::registry::{self, GroupResource, Registry, ResourceInfo};
use crate::selector::{FieldSelector, LabelSelector};
use crate::store::{ObjKey, Object, Store};

/// The CRD resource.
pub fn crd_gr() -> GroupResource {
    GroupResource::new("apiextensions.k8s.io", "customresourcedefinitions")
}

pub(crate) fn namespaces_gr() -> GroupResource {
    GroupResource::new("", "namespaces")
}

/// Options common to writes.
#[derive(Clone, Debug, Default)]
pub struct WriteOptions {
    /// `dryRun=All`: validate and compute, but do not store.
    pub dry_run: bool,
    /// `fieldManager`.
    pub field_manager: Option<String>,
    /// `force` (server-side apply).
    pub force: bool,
    /// `fieldValidation=Strict`: unknown fields of custom resources are an error.
    pub strict: bool,
}

/// `DeleteOptions` the server honours.
#[derive(Clone, Debug, Default)]
pub struct DeleteOptions {
    /// `Foreground`, `Background` or `Orphan`.
    pub propagation: Option<String>,
    /// `gracePeriodSeconds`.
    pub grace_period: Option<i64>,
    /// `preconditions.uid`.
    pub uid: Option<String>,
    /// `preconditions.resourceVersion`.
    pub resource_version: Option<String>,
    /// `dryRun=All`.
    pub dry_run: bool,
}

/// Parameters of a list.
#[derive(Clone, Debug, Default)]
pub struct ListOptions {
    /// Label selector.
    pub labels: LabelSelector,
    /// Field selector.
    pub fields: FieldSelector,
    /// Page size (0 = everything).
    pub limit: usize,
    /// Continue token from a previous page.
    pub continue_token: Option<String>,
}

/// One page of a list.
#[derive(Debug)]
pub struct ListPage {
    /// Matching objects in (namespace, name) order.
    pub items: Vec<Object>,
    /// The list's resourceVersion.
    pub resource_version: u64,
    /// Token for the next page, if more remain.
    pub continue_token: Option<String>,
    /// Objects after this page (when paginated).
    pub remaining: Option<usize>,
}

/// The whole simulated API state.
#[derive(Debug)]
pub struct Cluster {
    /// Served kinds.
    pub registry: Registry,
    /// Stored objects.
    pub store: Store,
    ips: IpAllocator,
    /// Pods removed since the last call to [`Cluster::take_removed_pods`] (for log cleanup).
    pub(crate) removed_pods: Vec<(String, String)>,
}

fn api_version_of(info: &ResourceInfo, version: &str) -> String {
    info.api_version(version)
}

/// The object as a client of `version` sees it (Events stored in the core form are converted
/// for events.k8s.io clients).
pub fn present(info: &ResourceInfo, version: &str, obj: &Object) -> Object {
    let want = api_version_of(info, version);
    if obj.get("apiVersion").and_then(Value::as_str) == Some(want.as_str()) {
        obj.clone()
    } else if events::is_events_api(&info.gr()) {
        Arc::new(events::to_events_v1((**obj).clone()))
    } else {
        let mut o = (**obj).clone();
        o["apiVersion"] = Value::String(want);
        Arc::new(o)
    }
}

/// A request body in the form objects of `info` are stored in.
fn storage_form(info: &ResourceInfo, body: Value) -> Value {
    if events::is_events_api(&info.gr()) {
        events::to_core(body)
    } else {
        body
    }
}

fn spec_like(obj: &Value, exclude_status: bool) -> Map<String, Value> {
    let mut m = obj.as_object().cloned().unwrap_or_default();
    m.remove("metadata");
    if exclude_status {
        m.remove("status");
    }
    m
}

impl Cluster {
    /// A cluster with the built-in kinds and the standard namespaces.
    pub fn new(history_limit: usize) -> Self {
        let mut c = Cluster {
            registry: Registry::builtin(),
            store: Store::new(history_limit),
            ips: IpAllocator::default(),
            removed_pods: Vec::new(),
        };
        let info = c.registry.get(&namespaces_gr()).expect("namespaces");
        for ns in ["default", "kube-system", "kube-public", "kube-node-lease"] {
            let body = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}});
            c.create(&info, "v1", None, body, &WriteOptions::default())
                .expect("standard namespace");
        }
        c
    }

    /// Pods removed since the last call.
    pub fn take_removed_pods(&mut self) -> Vec<(String, String)> {
        std::mem::take(&mut self.removed_pods)
    }

    pub(crate) fn key(info: &ResourceInfo, ns: Option<&str>, name: &str) -> ObjKey {
        (
            if info.namespaced {
                ns.unwrap_or_default().to_owned()
            } else {
                String::new()
            },
            name.to_owned(),
        )
    }

    /// Reads one object.
    pub fn get(&self, info: &ResourceInfo, ns: Option<&str>, name: &str) -> ApiResult<Object> {
        self.store
            .get(&info.gr(), &Self::key(info, ns, name))
            .ok_or_else(|| ApiError::not_found(&info.group, &info.plural, name))
    }

    /// Lists objects of a namespace (or all namespaces) matching the selectors.
    pub fn list(
        &self,
        info: &ResourceInfo,
        ns: Option<&str>,
        opts: &ListOptions,
    ) -> ApiResult<ListPage> {
        let ns = if info.namespaced { ns } else { None };
        let mut list_rv = self.store.current_rv();
        let mut after: Option<ObjKey> = None;
        if let Some(token) = &opts.continue_token {
            let (rv, key) = decode_continue(token)?;
            list_rv = rv;
            after = Some(key);
        }
        let Some(col) = self.store.peek(&info.gr()) else {
            return Ok(ListPage {
                items: vec![],
                resource_version: list_rv,
                continue_token: None,
                remaining: None,
            });
        };
        let matches = |o: &Object| opts.labels.matches(o) && opts.fields.matches(o);
        if let (Some(name), None) = (opts.fields.exact_name(), &after) {
            // metadata.name=X within one namespace: a point lookup, not a scan.
            if ns.is_some() || !info.namespaced {
                let items: Vec<Object> = col
                    .objects
                    .get(&(ns.unwrap_or_default().to_owned(), name.to_owned()))
                    .filter(|o| matches(o))
                    .cloned()
                    .into_iter()
                    .collect();
                return Ok(ListPage {
                    items,
                    resource_version: list_rv,
                    continue_token: None,
                    remaining: None,
                });
            }
        }
        let iter = col
            .iter_namespace(ns)
            .filter(|(k, _)| after.as_ref().is_none_or(|a| *k > a))
            .filter(|(_, o)| matches(o));
        let mut items = Vec::new();
        let mut last_key = None;
        let mut iter = iter.peekable();
        while let Some((k, o)) = iter.next() {
            items.push(o.clone());
            if opts.limit > 0 && items.len() == opts.limit && iter.peek().is_some() {
                last_key = Some(k.clone());
                break;
            }
        }
        let remaining = last_key.as_ref().map(|_| iter.count());
        Ok(ListPage {
            items,
            resource_version: list_rv,
            continue_token: last_key.map(|k| encode_continue(list_rv, &k)),
            remaining,
        })
    }

    fn check_namespace(&self, info: &ResourceInfo, ns: &str, name: &str) -> ApiResult<()> {
        if !info.namespaced {
            return Ok(());
        }
        if ns.is_empty() {
            return Err(ApiError::bad_request(
                "the namespace of the provided object does not match the namespace sent on the request",
            ));
        }
        match self
            .store
            .get(&namespaces_gr(), &(String::new(), ns.to_owned()))
        {
            None => Err(ApiError::not_found("", "namespaces", ns)),
            Some(n) if meta::is_deleting(&n) => Err(ApiError::forbidden(format!(
                "{} \"{}\" is forbidden: unable to create new content in namespace {ns} because it is being terminated",
                crate::error::qualified(&info.group, &info.plural),
                name
            ))),
            Some(_) => Ok(()),
        }
    }

    fn check_body(
        info: &ResourceInfo,
        version: &str,
        body: &mut Value,
        ns: Option<&str>,
    ) -> ApiResult<()> {
        if !body.is_object() {
            return Err(ApiError::bad_request(
                "the body of the request must be a JSON or YAML object",
            ));
        }
        let want_av = info.api_version(version);
        match body.get("apiVersion").and_then(Value::as_str) {
            None | Some("") => body["apiVersion"] = json!(want_av),
            Some(av) if av == want_av => {}
            Some(av) => {
                return Err(ApiError::bad_request(format!(
                    "the API version in the data ({av}) does not match the expected API version ({want_av})"
                )));
            }
        }
        match body.get("kind").and_then(Value::as_str) {
            None | Some("") => body["kind"] = json!(info.kind),
            Some(k) if k == info.kind => {}
            Some(k) => {
                return Err(ApiError::bad_request(format!(
                    "the kind in the data ({k}) does not match the expected kind ({})",
                    info.kind
                )));
            }
        }
        if info.namespaced {
            let path_ns = ns.unwrap_or_default();
            let body_ns = meta::namespace(body).to_owned();
            if body_ns.is_empty() {
                meta::metadata_mut(body).insert("namespace".into(), json!(path_ns));
            } else if body_ns != path_ns {
                return Err(ApiError::bad_request(
                    "the namespace of the provided object does not match the namespace sent on the request",
                ));
            }
        } else {
            meta::metadata_mut(body).remove("namespace");
        }
        Ok(())
    }

    /// Validation, pruning and defaulting that the kind requires (built-in defaults or CRD schema).
    fn admit(
        &mut self,
        info: &ResourceInfo,
        version: &str,
        obj: &mut Value,
        old: Option<&Value>,
        strict: bool,
    ) -> ApiResult<()> {
        let name = meta::name(obj).to_owned();
        if !meta::is_dns_subdomain(&name) && info.gr() != crd_gr() {
            return Err(ApiError::invalid(
                &info.group,
                &info.kind,
                &name,
                vec![Cause {
                    reason: "FieldValueInvalid".into(),
                    message: format!(
                        "Invalid value: {name:?}: a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character"
                    ),
                    field: "metadata.name".into(),
                }],
            ));
        }
        let causes = if info.custom {
            if let Some(schema) = info.version(version).and_then(|v| v.schema.clone()) {
                crate::schema_adapter::admit(info, &schema, obj, old, strict)?;
            }
            crate::validation::metadata(obj)
        } else {
            defaults::apply(&info.gr(), obj, old, &mut self.ips);
            crate::validation::builtin(&info.gr(), obj)
        };
        if !causes.is_empty() {
            return Err(ApiError::invalid(&info.group, &info.kind, &name, causes));
        }
        if info.gr() == crd_gr() {
            registry::crd_resource(obj)
                .map_err(|causes| ApiError::invalid(&info.group, &info.kind, &name, causes))?;
        }
        Ok(())
    }

    /// Creates an object.
    pub fn create(
        &mut self,
        info: &ResourceInfo,
        version: &str,
        ns: Option<&str>,
        mut body: Value,
        opts: &WriteOptions,
    ) -> ApiResult<Object> {
        Self::check_body(info, version, &mut body, ns)?;
        let mut body = storage_form(info, body);
        let ns_name = meta::namespace(&body).to_owned();
        self.check_namespace(info, &ns_name, meta::name(&body))?;
        let m = meta::metadata_mut(&mut body);
        if m.get("name")
            .and_then(Value::as_str)
            .is_none_or(str::is_empty)
        {
            match m.get("generateName").and_then(Value::as_str) {
                Some(prefix) if !prefix.is_empty() => {
                    let name = format!("{prefix}{}", meta::name_suffix());
                    m.insert("name".into(), json!(name));
                }
                _ => {
                    return Err(ApiError::invalid(
                        &info.group,
                        &info.kind,
                        "",
                        vec![Cause {
                            reason: "FieldValueRequired".into(),
                            message: "Required value: name or generateName is required".into(),
                            field: "metadata.name".into(),
                        }],
                    ));
                }
            }
        }
        for f in [
            "uid",
            "resourceVersion",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
            "selfLink",
        ] {
            m.remove(f);
        }
        m.insert("uid".into(), json!(meta::new_uid()));
        m.insert("creationTimestamp".into(), json!(meta::now_rfc3339()));
        if info.generation {
            m.insert("generation".into(), json!(1));
        } else {
            m.remove("generation");
        }
        let name = meta::name(&body).to_owned();
        if self
            .store
            .get(&info.gr(), &Self::key(info, Some(&ns_name), &name))
            .is_some()
        {
            return Err(ApiError::already_exists(&info.group, &info.plural, &name));
        }
        if info.has_status(version) {
            // A create through the main resource does not set status (pods start Pending).
            body.as_object_mut().expect("object").remove("status");
            if info.gr() == GroupResource::new("", "pods") {
                body["status"] = json!({"phase": "Pending", "qosClass": "BestEffort"});
            }
        }
        self.admit(info, version, &mut body, None, opts.strict)?;
        if info.gr() == crd_gr() {
            set_crd_status(&mut body);
        }
        if let Some(manager) = &opts.field_manager {
            crate::patch_adapter::record_update(info, version, None, &mut body, manager, None);
        }
        if opts.dry_run {
            return Ok(Arc::new(body));
        }
        let stored = self.store.put(&info.gr(), body);
        if info.gr() == crd_gr() {
            self.serve_crd(&stored);
        }
        self.collect_if_orphaned(&info.gr(), &stored);
        Ok(stored)
    }

    fn serve_crd(&mut self, crd: &Value) {
        if let Ok(res) = registry::crd_resource(crd) {
            self.registry.install(res);
        }
    }

    /// Replaces an object (`subresource` `status` writes only the status).
    #[allow(clippy::too_many_arguments)]
    pub fn update(
        &mut self,
        info: &ResourceInfo,
        version: &str,
        ns: Option<&str>,
        name: &str,
        subresource: Option<&str>,
        mut body: Value,
        opts: &WriteOptions,
    ) -> ApiResult<Object> {
        Self::check_body(info, version, &mut body, ns)?;
        if meta::name(&body) != name {
            if meta::name(&body).is_empty() {
                meta::metadata_mut(&mut body).insert("name".into(), json!(name));
            } else {
                return Err(ApiError::bad_request(format!(
                    "the name of the object ({}) does not match the name on the URL ({name})",
                    meta::name(&body)
                )));
            }
        }
        let old = self.get(info, ns, name)?;
        let sent_rv = meta::meta_str(&body, "resourceVersion")
            .unwrap_or_default()
            .to_owned();
        if !sent_rv.is_empty()
            && sent_rv != meta::meta_str(&old, "resourceVersion").unwrap_or_default()
        {
            return Err(ApiError::stale(&info.group, &info.plural, name));
        }
        if let Some(uid) = meta::meta_str(&body, "uid")
            && !uid.is_empty()
            && uid != meta::uid(&old)
        {
            return Err(ApiError::conflict(
                &info.group,
                &info.plural,
                name,
                &format!(
                    "Precondition failed: UID in precondition: {}, UID in object meta: {uid}",
                    meta::uid(&old)
                ),
            ));
        }
        let body = storage_form(info, body);
        let new = self.prepare_update(info, version, &old, body, subresource, opts)?;
        self.commit_update(info, &old, new, opts.dry_run)
    }

    /// Builds the object an update stores: status isolation, server-owned metadata, generation.
    fn prepare_update(
        &mut self,
        info: &ResourceInfo,
        version: &str,
        old: &Object,
        body: Value,
        subresource: Option<&str>,
        opts: &WriteOptions,
    ) -> ApiResult<Value> {
        let has_status = info.has_status(version);
        let mut new = match subresource {
            Some("status") => {
                let mut n = (**old).clone();
                match body.get("status") {
                    Some(s) => n["status"] = s.clone(),
                    None => {
                        n.as_object_mut().expect("object").remove("status");
                    }
                }
                if let Some(mf) = meta::metadata(&body).get("managedFields") {
                    meta::metadata_mut(&mut n).insert("managedFields".into(), mf.clone());
                }
                n
            }
            Some(other) => {
                return Err(ApiError::no_route()
                    .with_message(format!("subresource {other} cannot be updated")));
            }
            None => {
                let mut n = body;
                if has_status {
                    match old.get("status") {
                        Some(s) => n["status"] = s.clone(),
                        None => {
                            n.as_object_mut().expect("object").remove("status");
                        }
                    }
                }
                n
            }
        };
        {
            let old_meta = meta::metadata(old);
            let m = meta::metadata_mut(&mut new);
            for f in [
                "uid",
                "creationTimestamp",
                "deletionTimestamp",
                "deletionGracePeriodSeconds",
                "generation",
            ] {
                match old_meta.get(f) {
                    Some(v) => m.insert(f.into(), v.clone()),
                    None => m.remove(f),
                };
            }
            m.insert(
                "resourceVersion".into(),
                old_meta
                    .get("resourceVersion")
                    .cloned()
                    .unwrap_or(Value::Null),
            );
            if old_meta.get("namespace").is_some() {
                m.insert("namespace".into(), old_meta["namespace"].clone());
            }
        }
        self.admit(info, version, &mut new, Some(old), opts.strict)?;
        if info.generation && spec_like(&new, has_status) != spec_like(old, has_status) {
            let g = meta::metadata(old)
                .get("generation")
                .and_then(Value::as_i64)
                .unwrap_or(0)
                + 1;
            meta::metadata_mut(&mut new).insert("generation".into(), json!(g));
        }
        if info.gr() == crd_gr() {
            set_crd_status(&mut new);
        }
        if meta::is_deleting(old) {
            let old_f = meta::finalizers(old);
            let added = meta::finalizers(&new)
                .into_iter()
                .any(|f| !old_f.contains(&f));
            if added {
                return Err(ApiError::forbidden(format!(
                    "{} \"{}\" is forbidden: no new finalizers can be added if the object is being deleted",
                    crate::error::qualified(&info.group, &info.plural),
                    meta::name(old)
                )));
            }
        }
        if let Some(manager) = &opts.field_manager {
            crate::patch_adapter::record_update(
                info,
                version,
                Some(old),
                &mut new,
                manager,
                subresource,
            );
        }
        Ok(new)
    }

    fn commit_update(
        &mut self,
        info: &ResourceInfo,
        old: &Object,
        new: Value,
        dry_run: bool,
    ) -> ApiResult<Object> {
        if unchanged(old, &new) {
            return Ok(old.clone());
        }
        if dry_run {
            return Ok(Arc::new(new));
        }
        let gr = info.gr();
        let removable = meta::is_deleting(&new) && meta::finalizers(&new).is_empty();
        let stored = self.store.put(&gr, new);
        if gr == crd_gr() {
            self.serve_crd(&stored);
        }
        if removable {
            let key = (
                meta::namespace(&stored).to_owned(),
                meta::name(&stored).to_owned(),
            );
            return Ok(self.remove_now(&gr, &key).unwrap_or(stored));
        }
        if meta::is_deleting(&stored) {
            self.process_own_finalizers(&gr, &stored);
        }
        Ok(stored)
    }

    /// Patches an object; server-side apply creates it when missing.
    #[allow(clippy::too_many_arguments)]
    pub fn patch(
        &mut self,
        info: &ResourceInfo,
        version: &str,
        ns: Option<&str>,
        name: &str,
        subresource: Option<&str>,
        patch_type: PatchType,
        patch: Value,
        opts: &WriteOptions,
    ) -> ApiResult<Object> {
        let existing = self.store.get(&info.gr(), &Self::key(info, ns, name));
        let Some(old) = existing else {
            if patch_type == PatchType::Apply && subresource.is_none() {
                let manager = opts.field_manager.clone().ok_or_else(|| {
                    ApiError::bad_request("PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Required value: is required for apply patch")
                })?;
                let mut body = crate::patch_adapter::apply(
                    info, version, None, &patch, &manager, opts.force, None,
                )?;
                if meta::name(&body).is_empty() {
                    meta::metadata_mut(&mut body).insert("name".into(), json!(name));
                }
                let created = self.create(
                    info,
                    version,
                    ns,
                    body,
                    &WriteOptions {
                        field_manager: None,
                        ..opts.clone()
                    },
                )?;
                return Ok(created);
            }
            return Err(ApiError::not_found(&info.group, &info.plural, name));
        };
        let current = present(info, version, &old);
        let mut new = match patch_type {
            PatchType::Json => patch_adapter::json(&current, &patch)?,
            PatchType::Merge => patch_adapter::merge(&current, &patch)?,
            PatchType::Strategic => patch_adapter::strategic(info, version, &current, &patch)?,
            PatchType::Apply => {
                let manager = opts.field_manager.clone().ok_or_else(|| {
                    ApiError::bad_request("PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Required value: is required for apply patch")
                })?;
                patch_adapter::apply(
                    info,
                    version,
                    Some(&current),
                    &patch,
                    &manager,
                    opts.force,
                    subresource,
                )?
            }
        };
        // A resourceVersion in the patch is a precondition.
        let sent_rv = meta::meta_str(&new, "resourceVersion")
            .unwrap_or_default()
            .to_owned();
        if !sent_rv.is_empty()
            && sent_rv != meta::meta_str(&old, "resourceVersion").unwrap_or_default()
        {
            return Err(ApiError::stale(&info.group, &info.plural, name));
        }
        if meta::name(&new) != name {
            return Err(ApiError::bad_request(
                "metadata.name cannot be changed by a patch",
            ));
        }
        Self::check_body(info, version, &mut new, ns)?;
        let opts = if patch_type == PatchType::Apply {
            WriteOptions {
                field_manager: None,
                ..opts.clone()
            }
        } else {
            opts.clone()
        };
        let new = storage_form(info, new);
        let new = self.prepare_update(info, version, &old, new, subresource, &opts)?;
        self.commit_update(info, &old, new, opts.dry_run)
    }
}
/// Whether an update would change nothing (ignoring managedFields bookkeeping).
fn unchanged(old: &Value, new: &Value) -> bool {
    const IGNORED: [&str; 2] = ["managedFields", "resourceVersion"];
    let (Some(o), Some(n)) = (old.as_object(), new.as_object()) else {
        return old == new;
    };
    let meta_eq = || {
        let (om, nm) = (meta::metadata(old), meta::metadata(new));
        let relevant = |m: &'_ Map<String, Value>| {
            m.iter()
                .filter(|(k, _)| !IGNORED.contains(&k.as_str()))
                .count()
        };
        relevant(om) == relevant(nm)
            && om
                .iter()
                .filter(|(k, _)| !IGNORED.contains(&k.as_str()))
                .all(|(k, v)| nm.get(k) == Some(v))
    };
    o.len() == n.len()
        && o.iter()
            .all(|(k, v)| k == "metadata" || n.get(k) == Some(v))
        && meta_eq()
}

fn set_crd_status(crd: &mut Value) {
    let now = meta::now_rfc3339();
    let storage: Vec<Value> = crd
        .pointer("/spec/versions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|v| v.get("storage").and_then(Value::as_bool) == Some(true))
        .filter_map(|v| v.get("name").cloned())
        .collect();
    let names = crd.pointer("/spec/names").cloned().unwrap_or(json!({}));
    let mut stored = crd
        .pointer("/status/storedVersions")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    for v in storage {
        if !stored.contains(&v) {
            stored.push(v);
        }
    }
    let keep_time = |t: &str| {
        crd.pointer("/status/conditions")
            .and_then(Value::as_array)
            .and_then(|cs| cs.iter().find(|c| c["type"] == t))
            .and_then(|c| c.get("lastTransitionTime").cloned())
            .unwrap_or_else(|| json!(now))
    };
    let conditions = json!([
        {"type": "NamesAccepted", "status": "True", "reason": "NoConflicts", "message": "no conflicts found", "lastTransitionTime": keep_time("NamesAccepted")},
        {"type": "Established", "status": "True", "reason": "InitialNamesAccepted", "message": "the initial names have been accepted", "lastTransitionTime": keep_time("Established")}
    ]);
    crd["status"] =
        json!({"acceptedNames": names, "conditions": conditions, "storedVersions": stored});
}

fn encode_continue(rv: u64, key: &ObjKey) -> String {
    format!("{rv}/{}/{}", key.0, key.1)
}

fn decode_continue(token: &str) -> ApiResult<(u64, ObjKey)> {
    let bad = || ApiError::bad_request(format!("invalid continue token {token:?}"));
    let mut parts = token.splitn(3, '/');
    let rv = parts.next().and_then(|s| s.parse().ok()).ok_or_else(bad)?;
    let ns = parts.next().ok_or_else(bad)?;
    let name = parts.next().ok_or_else(bad)?;
    Ok((rv, (ns.to_owned(), name.to_owned())))
}

impl ApiError {
    /// The same error with another message.
    pub fn with_message(mut self, message: String) -> Self {
        self.message = message;
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unchanged_ignores_bookkeeping_only() {
        let old = json!({"metadata": {"name": "a", "resourceVersion": "1", "managedFields": [1]}, "data": {"k": "v"}});
        let cases = [
            (
                json!({"metadata": {"name": "a", "resourceVersion": "1"}, "data": {"k": "v"}}),
                true,
            ),
            (
                json!({"metadata": {"name": "a", "managedFields": [2]}, "data": {"k": "v"}}),
                true,
            ),
            (
                json!({"metadata": {"name": "a", "labels": {}}, "data": {"k": "v"}}),
                false,
            ),
            (
                json!({"metadata": {"name": "a"}, "data": {"k": "w"}}),
                false,
            ),
            (
                json!({"metadata": {"name": "a"}, "data": {"k": "v"}, "x": 1}),
                false,
            ),
        ];
        for (new, want) in cases {
            assert_eq!(unchanged(&old, &new), want, "{new}");
        }
    }
}
