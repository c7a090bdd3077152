//! Server-side apply and field ownership (`metadata.managedFields`), following
//! structured-merge-diff as the API server uses it.
//!
//! * [`apply`] merges an applied configuration into the live object for one field manager:
//!   fields the manager applied before and no longer sends are removed (unless another manager
//!   owns them too), changing a value another manager owns is a [`ApplyError::Conflict`] unless
//!   forced (forcing takes ownership), applying the same value shares ownership.
//! * [`record_update`] records a non-apply write (create, update, patch) as an `Update` entry
//!   owning what it changed, taking those fields away from other managers.

use super::fieldset::{FieldSet, Path, PathElement, path_string};
use super::list_types::{ListType, ListTypes};
use serde_json::{Map, Value, json};
use std::fmt;

/// Which part of the object a write manages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Tracked {
    /// The whole object (kinds without a status subresource).
    #[default]
    All,
    /// Everything except `status` (main resource of a kind with a status subresource); the
    /// result keeps the live `status`.
    ExceptStatus,
    /// Only `status` (the status subresource); the result keeps everything else from live.
    OnlyStatus,
}

/// Who writes and how.
#[derive(Debug, Clone)]
pub struct WriteOptions<'a> {
    /// The field manager (`fieldManager` query parameter or the user agent default).
    pub manager: &'a str,
    /// The object's `apiVersion` as written (`apps/v1`).
    pub api_version: &'a str,
    /// The subresource written (`status`), if any; recorded in the entry.
    pub subresource: Option<&'a str>,
    /// Which fields the write manages.
    pub tracked: Tracked,
    /// `force=true` on apply: take ownership instead of failing with conflicts.
    pub force: bool,
    /// The timestamp to record (RFC 3339, seconds precision, e.g. `2024-01-01T00:00:00Z`).
    pub now: &'a str,
}

/// A field owned by another manager that an apply would change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conflict {
    /// The other manager, as the API server prints it: `"kubectl"` for an apply manager,
    /// `"kubectl-edit" using apps/v1` for an update manager.
    pub manager: String,
    /// The field path (`.spec.replicas`).
    pub field: String,
}

impl fmt::Display for Conflict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "conflict with {}: {}", self.manager, self.field)
    }
}

/// Why an apply failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApplyError {
    /// Fields owned by other managers would change (409 Conflict; each conflict is a cause with
    /// reason `FieldManagerConflict`, [`Conflict::cause_message`] and [`Conflict::field`]).
    #[error("{}", conflict_message(.0))]
    Conflict(Vec<Conflict>),
    /// The applied configuration is not usable (400 Bad Request).
    #[error("{0}")]
    BadRequest(String),
}

/// The API server's message for a set of conflicts: one conflict inline, several grouped by
/// manager (managers sorted), each group `conflicts with <manager>:` followed by `- <path>` lines.
fn conflict_message(conflicts: &[Conflict]) -> String {
    if let [one] = conflicts {
        return format!("Apply failed with 1 conflict: {one}");
    }
    let mut managers: Vec<&str> = conflicts.iter().map(|c| c.manager.as_str()).collect();
    managers.sort_unstable();
    managers.dedup();
    let mut lines = Vec::new();
    for m in managers {
        lines.push(format!("conflicts with {m}:"));
        lines.extend(
            conflicts
                .iter()
                .filter(|c| c.manager == m)
                .map(|c| format!("- {}", c.field)),
        );
    }
    format!(
        "Apply failed with {} conflicts: {}",
        conflicts.len(),
        lines.join("\n")
    )
}

impl Conflict {
    /// The message of this conflict's `StatusCause` (`conflict with "kubectl" using v1`); the
    /// cause's `field` is [`Conflict::field`] and its reason `FieldManagerConflict`.
    pub fn cause_message(&self) -> String {
        format!("conflict with {}", self.manager)
    }
}

/// One `managedFields` entry.
#[derive(Debug, Clone, PartialEq)]
struct Entry {
    manager: String,
    operation: String,
    api_version: String,
    time: Option<String>,
    subresource: String,
    fields: FieldSet,
}

impl Entry {
    fn same_owner(&self, manager: &str, operation: &str, api_version: &str, sub: &str) -> bool {
        self.manager == manager
            && self.operation == operation
            && self.subresource == sub
            && (operation == "Apply" || self.api_version == api_version)
    }

    fn display(&self) -> String {
        let mut s = format!("{:?}", self.manager);
        if !self.subresource.is_empty() {
            s.push_str(&format!(" with subresource {:?}", self.subresource));
        }
        if self.operation == "Update" {
            s.push_str(&format!(" using {}", self.api_version));
        }
        s
    }

    fn parse(v: &Value) -> Option<Entry> {
        let s = |k: &str| v.get(k).and_then(Value::as_str).map(str::to_owned);
        Some(Entry {
            manager: s("manager").unwrap_or_default(),
            operation: s("operation")?,
            api_version: s("apiVersion").unwrap_or_default(),
            time: s("time"),
            subresource: s("subresource").unwrap_or_default(),
            fields: FieldSet::from_fields_v1(v.get("fieldsV1").unwrap_or(&Value::Null)),
        })
    }

    fn to_json(&self) -> Value {
        let mut m = Map::new();
        m.insert("manager".into(), json!(self.manager));
        m.insert("operation".into(), json!(self.operation));
        m.insert("apiVersion".into(), json!(self.api_version));
        if let Some(t) = &self.time {
            m.insert("time".into(), json!(t));
        }
        m.insert("fieldsType".into(), json!("FieldsV1"));
        m.insert("fieldsV1".into(), self.fields.to_fields_v1());
        if !self.subresource.is_empty() {
            m.insert("subresource".into(), json!(self.subresource));
        }
        Value::Object(m)
    }
}

fn read_entries(obj: Option<&Value>) -> Vec<Entry> {
    obj.and_then(|o| o.pointer("/metadata/managedFields"))
        .and_then(Value::as_array)
        .map(|list| list.iter().filter_map(Entry::parse).collect())
        .unwrap_or_default()
}

fn write_entries(obj: &mut Value, mut entries: Vec<Entry>) {
    entries.retain(|e| !e.fields.is_empty());
    entries.sort_by(|a, b| {
        (
            &a.operation,
            &a.time,
            &a.manager,
            &a.api_version,
            &a.subresource,
        )
            .cmp(&(
                &b.operation,
                &b.time,
                &b.manager,
                &b.api_version,
                &b.subresource,
            ))
    });
    let Some(meta) = ensure_object(obj, "metadata") else {
        return;
    };
    if entries.is_empty() {
        meta.remove("managedFields");
    } else {
        meta.insert(
            "managedFields".into(),
            Value::Array(entries.iter().map(Entry::to_json).collect()),
        );
    }
}

fn ensure_object<'v>(obj: &'v mut Value, key: &str) -> Option<&'v mut Map<String, Value>> {
    let root = obj.as_object_mut()?;
    let child = root.entry(key).or_insert_with(|| Value::Object(Map::new()));
    if !child.is_object() {
        *child = Value::Object(Map::new());
    }
    child.as_object_mut()
}

/// `metadata` fields the API server never tracks (with `apiVersion` and `kind`).
const IGNORED_META: &[&str] = &[
    "name",
    "namespace",
    "creationTimestamp",
    "selfLink",
    "uid",
    "clusterName",
    "generation",
    "managedFields",
    "resourceVersion",
    // Set only by DELETE, which a real server does not record in managedFields.
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
];

fn is_tracked(path: &[PathElement], tracked: Tracked) -> bool {
    let field = |i: usize| match path.get(i) {
        Some(PathElement::Field(f)) => Some(&**f),
        _ => None,
    };
    match field(0) {
        Some("apiVersion" | "kind") => false,
        // `metadata` itself always exists on a stored object; only its fields are owned.
        Some("metadata") if path.len() == 1 => false,
        Some("metadata") if field(1).is_some_and(|f| IGNORED_META.contains(&f)) => false,
        Some("status") => tracked != Tracked::ExceptStatus,
        _ => tracked != Tracked::OnlyStatus,
    }
}

fn filter(mut set: FieldSet, tracked: Tracked) -> FieldSet {
    set.retain(|p| is_tracked(p, tracked));
    set
}

/// The result of [`apply`].
#[derive(Debug, Clone, PartialEq)]
pub struct Applied {
    /// The new object, with `metadata.managedFields` updated.
    pub object: Value,
    /// Whether the result differs from the live object at all, `managedFields` included (a
    /// real API server stores such a change with a new resourceVersion, and treats an apply
    /// that changes nothing as a no-op).
    pub changed: bool,
}

/// Server-side apply of `applied` (the decoded `application/apply-patch+yaml` body) onto `live`
/// (`None` when the object does not exist yet, in which case it is created).
///
/// `metadata.managedFields` in `applied` is ignored. With [`Tracked::ExceptStatus`] the result
/// keeps the live `status`; with [`Tracked::OnlyStatus`] it keeps everything but `status`.
pub fn apply(
    live: Option<&Value>,
    applied: &Value,
    opts: &WriteOptions<'_>,
    lists: &dyn ListTypes,
) -> Result<Applied, ApplyError> {
    if !applied.is_object() {
        return Err(ApplyError::BadRequest(
            "the applied configuration must be an object".into(),
        ));
    }
    if let Some(msg) = missing_list_keys(applied, &mut Vec::new(), lists) {
        let kind = applied.get("kind").and_then(Value::as_str).unwrap_or("");
        let gv = if opts.api_version.contains('/') {
            opts.api_version.to_owned()
        } else {
            format!("/{}", opts.api_version)
        };
        return Err(ApplyError::BadRequest(format!(
            "failed to create typed patch object ({gv}, Kind={kind}): {msg}"
        )));
    }
    let mut config = applied.clone();
    if let Some(meta) = config.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.remove("managedFields");
    }
    let mut live_obj = live.cloned().unwrap_or_else(|| json!({}));
    strip_managed(&mut live_obj);
    let live_obj = &live_obj;
    let mut entries = read_entries(live);
    if live.is_some() && entries.is_empty() {
        // An object nobody tracked yet: its current fields belong to "before-first-apply".
        let fields = filter(to_field_set(live_obj, lists), Tracked::All);
        entries.push(Entry {
            manager: "before-first-apply".into(),
            operation: "Update".into(),
            api_version: opts.api_version.into(),
            time: Some(opts.now.into()),
            subresource: String::new(),
            fields,
        });
    }
    let sub = opts.subresource.unwrap_or("");
    let config_set = filter(to_field_set(&config, lists), opts.tracked);

    let mut merged = merge(live_obj, &config, lists);
    keep_untracked(&mut merged, live_obj, opts.tracked);

    // Prune what this manager applied before and no longer applies, unless someone owns it.
    let mine = entries
        .iter()
        .position(|e| e.same_owner(opts.manager, "Apply", "", sub));
    if let Some(i) = mine {
        let mut owned = config_set.clone();
        for (j, e) in entries.iter().enumerate() {
            if j != i {
                owned.add_all(&e.fields);
            }
        }
        for path in entries[i].fields.difference(&owned).iter() {
            // Keep a node when someone still owns something beneath it, and keep the key
            // fields of list-map items that stay.
            let owned_below = owned
                .iter()
                .any(|o| o.len() > path.len() && o.starts_with(path));
            if !owned_below && !is_key_field(path) {
                remove_path(&mut merged, path);
            }
        }
    }
    strip_managed(&mut merged);
    drop_empty_meta_collections(&mut merged);

    let (added, modified, removed) = compare(live_obj, &merged, lists);
    let changed_set = filter(added.union(&modified), opts.tracked);
    let mut conflicts = Vec::new();
    for (j, e) in entries.iter().enumerate() {
        if Some(j) == mine {
            continue;
        }
        for path in e.fields.intersection(&changed_set).iter() {
            conflicts.push(Conflict {
                manager: e.display(),
                field: path_string(path),
            });
        }
    }
    if !conflicts.is_empty() && !opts.force {
        return Err(ApplyError::Conflict(conflicts));
    }
    for (j, e) in entries.iter_mut().enumerate() {
        if Some(j) != mine {
            e.fields.remove_all(&changed_set);
            e.fields.remove_all(&removed);
        }
    }
    let object_changed = !added.is_empty() || !modified.is_empty() || !removed.is_empty();
    match mine {
        Some(i) => {
            if object_changed || entries[i].fields != config_set {
                entries[i].time = Some(opts.now.into());
            }
            entries[i].fields = config_set;
            entries[i].api_version = opts.api_version.into();
        }
        None => entries.push(Entry {
            manager: opts.manager.into(),
            operation: "Apply".into(),
            api_version: opts.api_version.into(),
            time: Some(opts.now.into()),
            subresource: sub.into(),
            fields: config_set,
        }),
    }
    let mut object = merged;
    write_entries(&mut object, entries);
    let changed = live != Some(&object);
    Ok(Applied { object, changed })
}

/// Records a non-apply write (create, update or any non-apply patch) by `opts.manager` as an
/// `Update` entry: the manager gains ownership of every field it added or changed, other
/// managers lose those fields, and removed fields leave every set.
///
/// `old` is the stored object (`None` on create). `new` is the object about to be stored; its
/// own `metadata.managedFields` follow the API server's rules: absent, or equal to the old
/// list, keeps the old entries; `[{}]` clears them; any other list replaces them. Returns `new`
/// with the resulting `managedFields`.
pub fn record_update(
    old: Option<&Value>,
    new: &Value,
    opts: &WriteOptions<'_>,
    lists: &dyn ListTypes,
) -> Value {
    let sent = new
        .pointer("/metadata/managedFields")
        .and_then(Value::as_array);
    let mut entries = match sent {
        Some(list) if list.len() == 1 && list[0].as_object().is_some_and(Map::is_empty) => {
            Vec::new()
        }
        Some(list) if !list.is_empty() => list.iter().filter_map(Entry::parse).collect(),
        _ => read_entries(old),
    };
    let empty = json!({});
    let old_obj = old.unwrap_or(&empty);
    let mut object = new.clone();
    strip_managed(&mut object);
    let mut old_clean = old_obj.clone();
    strip_managed(&mut old_clean);
    let (added, modified, removed) = compare(&old_clean, &object, lists);
    let changed_set = filter(added.union(&modified), opts.tracked);
    let removed = filter(removed, opts.tracked);
    let sub = opts.subresource.unwrap_or("");
    let mut mine = None;
    for (j, e) in entries.iter_mut().enumerate() {
        if e.same_owner(opts.manager, "Update", opts.api_version, sub) {
            mine = Some(j);
        } else {
            e.fields.remove_all(&changed_set);
            e.fields.remove_all(&removed);
        }
    }
    let changed = !changed_set.is_empty() || !removed.is_empty();
    match mine {
        Some(i) => {
            entries[i].fields.remove_all(&removed);
            entries[i].fields.add_all(&changed_set);
            if changed {
                entries[i].time = Some(opts.now.into());
            }
        }
        None if !changed_set.is_empty() => entries.push(Entry {
            manager: opts.manager.into(),
            operation: "Update".into(),
            api_version: opts.api_version.into(),
            time: Some(opts.now.into()),
            subresource: sub.into(),
            fields: changed_set,
        }),
        None => {}
    }
    write_entries(&mut object, entries);
    object
}

/// `ObjectMeta` omits empty labels, annotations, finalizers and owner references, so a field
/// pruned away as the last entry takes its collection with it.
fn drop_empty_meta_collections(obj: &mut Value) {
    if let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
        for key in ["labels", "annotations", "finalizers", "ownerReferences"] {
            let empty = match meta.get(key) {
                Some(Value::Object(m)) => m.is_empty(),
                Some(Value::Array(a)) => a.is_empty(),
                Some(Value::Null) => true,
                _ => false,
            };
            if empty {
                meta.remove(key);
            }
        }
    }
}

fn strip_managed(obj: &mut Value) {
    if let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.remove("managedFields");
    }
}

/// Restores the parts of the object a write does not manage from `live`.
fn keep_untracked(merged: &mut Value, live: &Value, tracked: Tracked) {
    let (Some(m), Some(l)) = (merged.as_object_mut(), live.as_object()) else {
        return;
    };
    match tracked {
        Tracked::All => {}
        Tracked::ExceptStatus => match l.get("status") {
            Some(s) => {
                m.insert("status".into(), s.clone());
            }
            None => {
                m.remove("status");
            }
        },
        Tracked::OnlyStatus => {
            let status = m.remove("status");
            *m = l.clone();
            match status {
                Some(s) => m.insert("status".into(), s),
                None => m.remove("status"),
            };
        }
    }
}

/// Schema path (field names only) of a field path.
fn names(path: &[PathElement]) -> Vec<String> {
    path.iter()
        .filter_map(|e| match e {
            PathElement::Field(f) => Some(f.to_string()),
            _ => None,
        })
        .collect()
}

/// Finds a list-map item of the applied configuration that lacks a key field without a default
/// (the API server rejects such a configuration), as the server's message.
fn missing_list_keys(
    value: &Value,
    path: &mut Vec<String>,
    lists: &dyn ListTypes,
) -> Option<String> {
    match value {
        Value::Object(m) => {
            for (k, v) in m {
                path.push(k.clone());
                let found = missing_list_keys(v, path, lists);
                path.pop();
                if found.is_some() {
                    return found;
                }
            }
            None
        }
        Value::Array(items) => {
            let owned = path.clone();
            let schema_path: Vec<&str> = owned.iter().map(String::as_str).collect();
            let list_type = lists.list_type(&schema_path);
            let at: String = path.iter().map(|p| format!(".{p}")).collect();
            let mut seen = Vec::new();
            for (i, item) in items.iter().enumerate() {
                if let ListType::Map(keys) = &list_type {
                    for key in keys {
                        if item.get(key).is_none() && lists.key_default(&schema_path, key).is_none()
                        {
                            return Some(format!(
                                "{at}: element {i}: associative list with keys has an element that omits key field {key:?} (and doesn't have default value)"
                            ));
                        }
                    }
                }
                if list_type != ListType::Atomic
                    && let Some(el) = item_element(item, i, &list_type, &schema_path, lists)
                {
                    if seen.contains(&el) {
                        let shown = path_string(std::slice::from_ref(&el));
                        return Some(format!("{at}: duplicate entries for key {shown}"));
                    }
                    seen.push(el);
                }
                let found = missing_list_keys(item, path, lists);
                if found.is_some() {
                    return found;
                }
            }
            None
        }
        _ => None,
    }
}

/// The path element of a list item, or `None` for atomic lists.
fn item_element(
    item: &Value,
    index: usize,
    list_type: &ListType,
    schema_path: &[&str],
    lists: &dyn ListTypes,
) -> Option<PathElement> {
    match list_type {
        ListType::Atomic => None,
        ListType::Set => Some(PathElement::value(item)),
        ListType::Map(keys) => {
            let mut fields = Vec::new();
            for k in keys {
                match item
                    .get(k)
                    .cloned()
                    .or_else(|| lists.key_default(schema_path, k))
                {
                    Some(v) => fields.push((k.clone(), v)),
                    None => return Some(PathElement::Index(index)),
                }
            }
            Some(PathElement::key(&fields))
        }
    }
}

/// The field set of a value as SSA computes it for an applied configuration: scalars, atomic
/// lists and maps, empty maps and list items (with their key fields).
pub fn to_field_set(value: &Value, lists: &dyn ListTypes) -> FieldSet {
    let mut set = FieldSet::new();
    walk_set(value, &mut Vec::new(), &mut Vec::new(), lists, &mut set);
    set
}

/// Walks `value` at `path`; `schema` is the same path by field names only, borrowed from the
/// value's keys.
fn walk_set<'v>(
    value: &'v Value,
    path: &mut Path,
    schema: &mut Vec<&'v str>,
    lists: &dyn ListTypes,
    set: &mut FieldSet,
) {
    match value {
        Value::Object(_) if !path.is_empty() && lists.map_is_atomic(schema) => {
            set.insert(path.clone());
        }
        Value::Object(m) => {
            if m.is_empty() && !path.is_empty() {
                set.insert(path.clone());
            }
            for (k, v) in m {
                path.push(PathElement::Field(k.as_str().into()));
                schema.push(k);
                walk_set(v, path, schema, lists, set);
                schema.pop();
                path.pop();
            }
        }
        Value::Array(items) => {
            let lt = lists.list_type(schema);
            if lt == ListType::Atomic {
                set.insert(path.clone());
                return;
            }
            for (i, item) in items.iter().enumerate() {
                let Some(el) = item_element(item, i, &lt, schema, lists) else {
                    continue;
                };
                path.push(el);
                set.insert(path.clone());
                if item.is_object() {
                    walk_set(item, path, schema, lists, set);
                }
                path.pop();
            }
        }
        _ => {
            set.insert(path.clone());
        }
    }
}

/// Merges an applied configuration into a live value: maps per key, list-maps per key, sets
/// per value, everything else replaced by the configuration.
fn merge(live: &Value, config: &Value, lists: &dyn ListTypes) -> Value {
    let mut path = Vec::new();
    merge_at(live, config, &mut path, lists)
}

fn merge_at(live: &Value, config: &Value, path: &mut Vec<String>, lists: &dyn ListTypes) -> Value {
    let schema_path: Vec<&str> = path.iter().map(String::as_str).collect();
    match (live, config) {
        (Value::Object(l), Value::Object(c))
            if path.is_empty() || !lists.map_is_atomic(&schema_path) =>
        {
            let mut out = l.clone();
            for (k, cv) in c {
                if cv.is_null() {
                    out.remove(k);
                    continue;
                }
                path.push(k.clone());
                let merged = match l.get(k) {
                    Some(lv) => merge_at(lv, cv, path, lists),
                    None => merge_at(&Value::Null, cv, path, lists),
                };
                path.pop();
                out.insert(k.clone(), merged);
            }
            Value::Object(out)
        }
        (Value::Array(l), Value::Array(c)) => {
            let lt = lists.list_type(&schema_path);
            if lt == ListType::Atomic {
                return config.clone();
            }
            let el = |item: &Value, i: usize| item_element(item, i, &lt, &schema_path, lists);
            let l_keys: Vec<Option<PathElement>> =
                l.iter().enumerate().map(|(i, v)| el(v, i)).collect();
            let c_keys: Vec<Option<PathElement>> =
                c.iter().enumerate().map(|(i, v)| el(v, i)).collect();
            let mut out = Vec::new();
            let mut emitted = vec![false; c.len()];
            let mut emit = |j: usize, out: &mut Vec<Value>, path: &mut Vec<String>| {
                if emitted[j] {
                    return;
                }
                emitted[j] = true;
                let partner = l_keys.iter().position(|k| k.is_some() && *k == c_keys[j]);
                out.push(match partner {
                    Some(p) => merge_at(&l[p], &c[j], path, lists),
                    None => merge_at(&Value::Null, &c[j], path, lists),
                });
            };
            for (i, lv) in l.iter().enumerate() {
                match c_keys.iter().position(|k| k.is_some() && *k == l_keys[i]) {
                    Some(j) => {
                        for jj in 0..=j {
                            emit(jj, &mut out, path);
                        }
                    }
                    None => out.push(lv.clone()),
                }
            }
            for j in 0..c.len() {
                emit(j, &mut out, path);
            }
            Value::Array(out)
        }
        (_, Value::Object(c)) if !lists.map_is_atomic(&schema_path) => merge_at(
            &Value::Object(Map::new()),
            &Value::Object(c.clone()),
            path,
            lists,
        ),
        _ => config.clone(),
    }
}

/// Whether `path` names a key field of a list-map item (`...[k:{"name":..}].name`).
fn is_key_field(path: &[PathElement]) -> bool {
    match path {
        [.., PathElement::Key(key), PathElement::Field(field)] => {
            matches!(serde_json::from_str::<Value>(key), Ok(Value::Object(m)) if m.contains_key(&**field))
        }
        _ => false,
    }
}

/// Removes the node at `path` from `value` (no-op when absent).
fn remove_path(value: &mut Value, path: &[PathElement]) {
    let Some((last, parent)) = path.split_last() else {
        return;
    };
    let Some(container) = find_mut(value, parent) else {
        return;
    };
    match (container, last) {
        (Value::Object(m), PathElement::Field(f)) => {
            m.remove(&**f);
        }
        (Value::Array(items), el) => {
            items.retain(|item| !item_matches(item, el));
        }
        _ => {}
    }
}

fn item_matches(item: &Value, el: &PathElement) -> bool {
    match el {
        PathElement::Value(v) => PathElement::value(item) == PathElement::Value(v.clone()),
        PathElement::Key(k) => {
            let Ok(Value::Object(key)) = serde_json::from_str::<Value>(k) else {
                return false;
            };
            key.iter().all(|(name, v)| match item.get(name) {
                Some(iv) => iv == v,
                // A defaulted key field (e.g. protocol) the item omits.
                None => true,
            })
        }
        _ => false,
    }
}

fn find_mut<'v>(value: &'v mut Value, path: &[PathElement]) -> Option<&'v mut Value> {
    let mut cur = value;
    for el in path {
        cur = match (cur, el) {
            (Value::Object(m), PathElement::Field(f)) => m.get_mut(&**f)?,
            (Value::Array(items), PathElement::Index(i)) => items.get_mut(*i)?,
            (Value::Array(items), el) => items.iter_mut().find(|it| item_matches(it, el))?,
            _ => return None,
        };
    }
    Some(cur)
}

/// Compares two values: (added, modified, removed) paths, with non-leaf nodes that appear or
/// disappear listed themselves and with all their descendants.
fn compare(old: &Value, new: &Value, lists: &dyn ListTypes) -> (FieldSet, FieldSet, FieldSet) {
    let mut c = Comparison::default();
    let mut path = Vec::new();
    c.walk(Some(old), Some(new), &mut path, lists);
    (c.added, c.modified, c.removed)
}

#[derive(Default)]
struct Comparison {
    added: FieldSet,
    modified: FieldSet,
    removed: FieldSet,
}

impl Comparison {
    fn walk<'v>(
        &mut self,
        old: Option<&'v Value>,
        new: Option<&'v Value>,
        path: &mut Path,
        lists: &dyn ListTypes,
    ) {
        // Equal subtrees hold no changes (the common case for most of an object).
        if let (Some(o), Some(n)) = (old, new)
            && o == n
        {
            return;
        }
        let owned = names(path);
        let schema_path: Vec<&str> = owned.iter().map(String::as_str).collect();
        let granular_map = |v: Option<&Value>| {
            v.is_some_and(Value::is_object)
                && (path.is_empty() || !lists.map_is_atomic(&schema_path))
        };
        let granular_list = |v: Option<&Value>| {
            v.is_some_and(Value::is_array) && lists.list_type(&schema_path) != ListType::Atomic
        };
        let is_leaf = |v: Option<&Value>| v.is_some() && !granular_map(v) && !granular_list(v);
        if is_leaf(old)
            || is_leaf(new)
            || (old.is_some_and(Value::is_object) != new.is_some_and(Value::is_object)
                && old.is_some()
                && new.is_some())
        {
            match (old, new) {
                (None, Some(_)) => self.added.insert(path.clone()),
                (Some(_), None) => self.removed.insert(path.clone()),
                (Some(o), Some(n)) if o != n => self.modified.insert(path.clone()),
                _ => {}
            }
            return;
        }
        if !path.is_empty() {
            match (old, new) {
                (None, Some(_)) => self.added.insert(path.clone()),
                (Some(_), None) => self.removed.insert(path.clone()),
                _ => {}
            }
        }
        if granular_map(old) || granular_map(new) {
            let empty = Map::new();
            let o = old.and_then(Value::as_object).unwrap_or(&empty);
            let n = new.and_then(Value::as_object).unwrap_or(&empty);
            let mut keys: Vec<&String> = o.keys().chain(n.keys()).collect();
            keys.sort();
            keys.dedup();
            for k in keys {
                path.push(PathElement::Field(k.as_str().into()));
                self.walk(o.get(k), n.get(k), path, lists);
                path.pop();
            }
            return;
        }
        let lt = lists.list_type(&schema_path);
        let o: &'v [Value] = old.and_then(Value::as_array).map_or(&[], Vec::as_slice);
        let n: &'v [Value] = new.and_then(Value::as_array).map_or(&[], Vec::as_slice);
        let keyed = |items: &'v [Value]| -> Vec<(PathElement, &'v Value)> {
            items
                .iter()
                .enumerate()
                .filter_map(|(i, v)| Some((item_element(v, i, &lt, &schema_path, lists)?, v)))
                .collect()
        };
        let (ok, nk) = (keyed(o), keyed(n));
        let mut elements: Vec<&PathElement> = ok
            .iter()
            .map(|(e, _)| e)
            .chain(nk.iter().map(|(e, _)| e))
            .collect();
        elements.sort();
        elements.dedup();
        for el in elements {
            let ov = ok.iter().find(|(e, _)| e == el).map(|(_, v)| *v);
            let nv = nk.iter().find(|(e, _)| e == el).map(|(_, v)| *v);
            path.push(el.clone());
            match (ov, nv) {
                (None, Some(v)) => {
                    self.added.insert(path.clone());
                    if v.is_object() {
                        self.walk(None, Some(v), path, lists);
                    }
                }
                (Some(v), None) => {
                    self.removed.insert(path.clone());
                    if v.is_object() {
                        self.walk(Some(v), None, path, lists);
                    }
                }
                (Some(a), Some(b)) if a.is_object() || b.is_object() => {
                    self.walk(Some(a), Some(b), path, lists)
                }
                _ => {}
            }
            path.pop();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::patch::list_types::{BuiltinListTypes, SchemaListTypes};
    use serde_json::json;

    fn opts<'a>(manager: &'a str, force: bool) -> WriteOptions<'a> {
        WriteOptions {
            manager,
            api_version: "v1",
            subresource: None,
            tracked: Tracked::All,
            force,
            now: "2024-01-01T00:00:00Z",
        }
    }

    fn cm(data: Value) -> Value {
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": "default"}, "data": data})
    }

    fn lists() -> BuiltinListTypes {
        BuiltinListTypes::for_kind("v1", "ConfigMap")
    }

    fn managers(obj: &Value) -> Vec<(String, String, Value)> {
        obj["metadata"]["managedFields"]
            .as_array()
            .map(|l| {
                l.iter()
                    .map(|e| {
                        (
                            e["manager"].as_str().unwrap().to_owned(),
                            e["operation"].as_str().unwrap().to_owned(),
                            e["fieldsV1"].clone(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    #[test]
    fn apply_creates_then_removes_fields_no_longer_applied() {
        let first = apply(
            None,
            &cm(json!({"a": "1", "b": "2"})),
            &opts("kubectl", false),
            &lists(),
        )
        .unwrap();
        assert!(first.changed);
        assert_eq!(first.object["data"], json!({"a": "1", "b": "2"}));
        assert_eq!(
            managers(&first.object),
            vec![(
                "kubectl".into(),
                "Apply".into(),
                json!({"f:data": {"f:a": {}, "f:b": {}}})
            )]
        );
        let second = apply(
            Some(&first.object),
            &cm(json!({"a": "1"})),
            &opts("kubectl", false),
            &lists(),
        )
        .unwrap();
        assert_eq!(second.object["data"], json!({"a": "1"}));
        assert_eq!(
            managers(&second.object)[0].2,
            json!({"f:data": {"f:a": {}}})
        );
        // Applying the same again changes nothing.
        let third = apply(
            Some(&second.object),
            &cm(json!({"a": "1"})),
            &opts("kubectl", false),
            &lists(),
        )
        .unwrap();
        assert!(!third.changed);
        assert_eq!(third.object, second.object);
    }

    #[test]
    fn conflicts_force_and_shared_ownership() {
        let base = apply(
            None,
            &cm(json!({"a": "1"})),
            &opts("alice", false),
            &lists(),
        )
        .unwrap()
        .object;
        // Same value: shared ownership, no conflict.
        let shared = apply(
            Some(&base),
            &cm(json!({"a": "1"})),
            &opts("bob", false),
            &lists(),
        )
        .unwrap()
        .object;
        assert_eq!(managers(&shared).len(), 2);
        let again = apply(
            Some(&shared),
            &cm(json!({"a": "1"})),
            &opts("bob", false),
            &lists(),
        )
        .unwrap();
        assert!(!again.changed, "a repeated apply is a no-op");
        // A different value: conflict naming the owner and path.
        let err = apply(
            Some(&shared),
            &cm(json!({"a": "2"})),
            &opts("carol", false),
            &lists(),
        )
        .unwrap_err();
        let ApplyError::Conflict(conflicts) = &err else {
            panic!("{err}")
        };
        assert_eq!(conflicts.len(), 2);
        assert!(conflicts.iter().all(|c| c.field == ".data.a"));
        assert!(
            err.to_string()
                .starts_with("Apply failed with 2 conflicts: conflicts with"),
            "{err}"
        );
        // Force takes ownership from both.
        let forced = apply(
            Some(&shared),
            &cm(json!({"a": "2"})),
            &opts("carol", true),
            &lists(),
        )
        .unwrap()
        .object;
        assert_eq!(forced["data"]["a"], "2");
        assert_eq!(
            managers(&forced),
            vec![(
                "carol".into(),
                "Apply".into(),
                json!({"f:data": {"f:a": {}}})
            )]
        );
        // A shared field stays when one sharer stops applying it.
        let bob_drops = apply(Some(&shared), &cm(json!({})), &opts("bob", false), &lists())
            .unwrap()
            .object;
        assert_eq!(bob_drops["data"]["a"], "1");
        let alice_drops = apply(
            Some(&bob_drops),
            &cm(json!({})),
            &opts("alice", false),
            &lists(),
        )
        .unwrap()
        .object;
        assert_eq!(alice_drops["data"].get("a"), None);
    }

    #[test]
    fn single_conflict_message_names_update_manager_and_version() {
        let created = record_update(
            None,
            &cm(json!({"a": "1"})),
            &opts("kubectl-create", false),
            &lists(),
        );
        assert_eq!(
            managers(&created),
            vec![(
                "kubectl-create".into(),
                "Update".into(),
                json!({"f:data": {".": {}, "f:a": {}}})
            )]
        );
        let err = apply(
            Some(&created),
            &cm(json!({"a": "2"})),
            &opts("kubectl", false),
            &lists(),
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            r#"Apply failed with 1 conflict: conflict with "kubectl-create" using v1: .data.a"#
        );
    }

    #[test]
    fn conditions_by_two_managers_merge_per_type() {
        let schema = json!({"type": "object", "properties": {"status": {"type": "object", "properties": {
            "conditions": {"type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"],
                "items": {"type": "object", "properties": {"type": {"type": "string"}, "status": {"type": "string"}}}}}}}});
        let lists = SchemaListTypes::new(schema);
        let obj = |conds: Value| json!({"apiVersion": "kubedb.com/v1", "kind": "X", "metadata": {"name": "x"}, "status": {"conditions": conds}});
        let mut o = opts("provisioner", false);
        o.subresource = Some("status");
        o.tracked = Tracked::OnlyStatus;
        let live = json!({"apiVersion": "kubedb.com/v1", "kind": "X", "metadata": {"name": "x"}, "spec": {"a": 1}});
        let a = apply(
            Some(&live),
            &obj(json!([{"type": "Ready", "status": "False"}])),
            &o,
            &lists,
        )
        .unwrap()
        .object;
        o.manager = "ops";
        let b = apply(
            Some(&a),
            &obj(json!([{"type": "Paused", "status": "True"}])),
            &o,
            &lists,
        )
        .unwrap()
        .object;
        assert_eq!(b["spec"], json!({"a": 1}));
        assert_eq!(
            b["status"]["conditions"],
            json!([{"type": "Ready", "status": "False"}, {"type": "Paused", "status": "True"}])
        );
        let ops = managers(&b).into_iter().find(|m| m.0 == "ops").unwrap();
        assert_eq!(
            ops.2,
            json!({"f:status": {"f:conditions": {"k:{\"type\":\"Paused\"}": {".": {}, "f:status": {}, "f:type": {}}}}})
        );
        // The provisioner changing its own condition does not conflict; touching ops' does.
        o.manager = "provisioner";
        let c = apply(
            Some(&b),
            &obj(json!([{"type": "Ready", "status": "True"}])),
            &o,
            &lists,
        )
        .unwrap()
        .object;
        assert_eq!(c["status"]["conditions"][0]["status"], "True");
        assert_eq!(c["status"]["conditions"][1]["type"], "Paused");
        let err = apply(
            Some(&c),
            &obj(json!([{"type": "Paused", "status": "False"}])),
            &o,
            &lists,
        )
        .unwrap_err();
        assert!(
            err.to_string()
                .contains(r#".status.conditions[type="Paused"].status"#),
            "{err}"
        );
        // Status entries carry the subresource.
        let entries = c["metadata"]["managedFields"].as_array().unwrap();
        assert_eq!(
            entries.len(),
            3,
            "before-first-apply, ops, provisioner: {entries:?}"
        );
        for e in entries {
            let status_entry = e["manager"] == "ops" || e["manager"] == "provisioner";
            assert_eq!(e["subresource"] == "status", status_entry, "{e}");
        }
    }

    #[test]
    fn update_takes_ownership_so_later_apply_conflicts() {
        let applied = apply(
            None,
            &cm(json!({"a": "1", "b": "1"})),
            &opts("kubectl", false),
            &lists(),
        )
        .unwrap()
        .object;
        let mut edited = applied.clone();
        edited["data"]["a"] = json!("edited");
        let updated = record_update(
            Some(&applied),
            &edited,
            &opts("kubectl-edit", false),
            &lists(),
        );
        let ms = managers(&updated);
        assert_eq!(ms.len(), 2);
        assert_eq!(
            ms[0],
            (
                "kubectl".into(),
                "Apply".into(),
                json!({"f:data": {"f:b": {}}})
            )
        );
        assert_eq!(
            ms[1],
            (
                "kubectl-edit".into(),
                "Update".into(),
                json!({"f:data": {"f:a": {}}})
            )
        );
        let err = apply(
            Some(&updated),
            &cm(json!({"a": "1", "b": "1"})),
            &opts("kubectl", false),
            &lists(),
        )
        .unwrap_err();
        assert!(
            matches!(err, ApplyError::Conflict(ref c) if c.len() == 1 && c[0].field == ".data.a"),
            "{err}"
        );
        // Managed fields sent as [{}] are cleared.
        let mut reset = updated.clone();
        reset["metadata"]["managedFields"] = json!([{}]);
        let cleared = record_update(Some(&updated), &reset, &opts("x", false), &lists());
        assert_eq!(cleared["metadata"].get("managedFields"), None);
    }

    #[test]
    fn statefulset_containers_and_env_by_name() {
        let lists = BuiltinListTypes::for_kind("apps/v1", "StatefulSet");
        let sts = |env: Value| {
            json!({"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "db"},
            "spec": {"template": {"spec": {"containers": [{"name": "db", "image": "i", "env": env,
                "ports": [{"containerPort": 1433}]}]}}}})
        };
        let mut o = opts("op", false);
        o.api_version = "apps/v1";
        let a = apply(None, &sts(json!([{"name": "A", "value": "1"}])), &o, &lists)
            .unwrap()
            .object;
        let fields = &managers(&a)[0].2;
        let c = &fields["f:spec"]["f:template"]["f:spec"]["f:containers"]["k:{\"name\":\"db\"}"];
        assert_eq!(
            c["f:env"]["k:{\"name\":\"A\"}"],
            json!({".": {}, "f:name": {}, "f:value": {}})
        );
        assert!(
            c["f:ports"]
                .get("k:{\"containerPort\":1433,\"protocol\":\"TCP\"}")
                .is_some(),
            "{c}"
        );
        o.manager = "other";
        let b = apply(
            Some(&a),
            &sts(json!([{"name": "B", "value": "2"}])),
            &o,
            &lists,
        )
        .unwrap()
        .object;
        let env = &b["spec"]["template"]["spec"]["containers"][0]["env"];
        assert_eq!(
            env,
            &json!([{"name": "A", "value": "1"}, {"name": "B", "value": "2"}])
        );
    }

    #[test]
    fn atomic_lists_are_owned_whole_and_sets_per_value() {
        let schema = json!({"type": "object", "properties": {"spec": {"type": "object", "properties": {
            "args": {"type": "array", "items": {"type": "string"}},
            "zones": {"type": "array", "x-kubernetes-list-type": "set", "items": {"type": "string"}}}}}});
        let lists = SchemaListTypes::new(schema);
        let obj = |spec: Value| json!({"apiVersion": "x/v1", "kind": "X", "metadata": {"name": "x"}, "spec": spec});
        let a = apply(
            None,
            &obj(json!({"args": ["a"], "zones": ["z1"]})),
            &opts("one", false),
            &lists,
        )
        .unwrap()
        .object;
        assert_eq!(
            managers(&a)[0].2,
            json!({"f:spec": {"f:args": {}, "f:zones": {"v:\"z1\"": {}}}})
        );
        // A second manager adds a zone: merged per value, no conflict.
        let b = apply(
            Some(&a),
            &obj(json!({"zones": ["z2"]})),
            &opts("two", false),
            &lists,
        )
        .unwrap()
        .object;
        assert_eq!(b["spec"]["zones"], json!(["z1", "z2"]));
        // Replacing the atomic list owned by "one" conflicts on the whole list.
        let err = apply(
            Some(&b),
            &obj(json!({"args": ["b"]})),
            &opts("two", false),
            &lists,
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            r#"Apply failed with 1 conflict: conflict with "one": .spec.args"#
        );
        // "one" drops z1 and args: z1 goes (only "one" owned it), z2 stays with "two".
        let c = apply(Some(&b), &obj(json!({})), &opts("one", false), &lists)
            .unwrap()
            .object;
        assert_eq!(c["spec"], json!({"zones": ["z2"]}));
    }

    #[test]
    fn main_resource_apply_ignores_status_and_keeps_live_status() {
        let lists = BuiltinListTypes::for_kind("apps/v1", "StatefulSet");
        let mut o = opts("op", false);
        o.api_version = "apps/v1";
        o.tracked = Tracked::ExceptStatus;
        let live = json!({"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "s",
            "managedFields": [{"manager": "ctrl", "operation": "Update", "apiVersion": "apps/v1", "subresource": "status",
                "fieldsType": "FieldsV1", "fieldsV1": {"f:status": {"f:replicas": {}}}}]},
            "spec": {"replicas": 1}, "status": {"replicas": 1}});
        let applied = json!({"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "s"},
            "spec": {"replicas": 3}, "status": {"replicas": 7}});
        let out = apply(Some(&live), &applied, &o, &lists).unwrap().object;
        assert_eq!(out["spec"]["replicas"], 3);
        assert_eq!(out["status"], json!({"replicas": 1}));
        let op = managers(&out).into_iter().find(|m| m.0 == "op").unwrap();
        assert_eq!(op.2, json!({"f:spec": {"f:replicas": {}}}));
        // The status writer keeps its field.
        assert!(managers(&out).iter().any(|m| m.0 == "ctrl"));
    }

    #[test]
    fn status_update_records_only_status() {
        let lists = lists();
        let mut o = opts("kubelet", false);
        o.subresource = Some("status");
        o.tracked = Tracked::OnlyStatus;
        let old = json!({"metadata": {"name": "p"}, "spec": {"a": 1}});
        let new =
            json!({"metadata": {"name": "p"}, "spec": {"a": 1}, "status": {"phase": "Running"}});
        let out = record_update(Some(&old), &new, &o, &lists);
        let entries = out["metadata"]["managedFields"].as_array().unwrap();
        assert_eq!(entries.len(), 1);
        assert_eq!(entries[0]["subresource"], "status");
        assert_eq!(
            entries[0]["fieldsV1"],
            json!({"f:status": {".": {}, "f:phase": {}}})
        );
    }

    #[test]
    fn list_map_items_without_keys_are_rejected() {
        let lists = BuiltinListTypes::for_kind("apps/v1", "Deployment");
        let mut o = opts("kubectl", false);
        o.api_version = "apps/v1";
        let applied = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"},
            "spec": {"template": {"spec": {"containers": [{"image": "x"}]}}}});
        let err = apply(None, &applied, &o, &lists).unwrap_err();
        assert_eq!(
            err.to_string(),
            "failed to create typed patch object (apps/v1, Kind=Deployment): .spec.template.spec.containers: element 0: \
             associative list with keys has an element that omits key field \"name\" (and doesn't have default value)"
        );
        let dup = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"},
            "spec": {"template": {"spec": {"containers": [{"name": "a"}, {"name": "a"}]}}}});
        assert_eq!(
            apply(None, &dup, &o, &lists).unwrap_err().to_string(),
            "failed to create typed patch object (apps/v1, Kind=Deployment): \
             .spec.template.spec.containers: duplicate entries for key [name=\"a\"]"
        );
        // A defaulted key (protocol) may be omitted.
        let ports = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"},
            "spec": {"template": {"spec": {"containers": [{"name": "c", "ports": [{"containerPort": 80}]}]}}}});
        assert!(apply(None, &ports, &o, &lists).is_ok());
    }

    #[test]
    fn labels_a_manager_stops_applying_are_removed_with_an_empty_map() {
        let with = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "labels": {"app": "x"}}});
        let without = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}});
        let a = apply(None, &with, &opts("m", false), &lists())
            .unwrap()
            .object;
        assert_eq!(
            managers(&a)[0].2,
            json!({"f:metadata": {"f:labels": {"f:app": {}}}})
        );
        let b = apply(Some(&a), &without, &opts("m", false), &lists())
            .unwrap()
            .object;
        assert_eq!(b["metadata"].get("labels"), None);
        assert_eq!(
            b["metadata"].get("managedFields"),
            None,
            "no fields left to own"
        );
    }

    #[test]
    fn dropped_item_stays_while_another_manager_owns_a_field_of_it() {
        let lists = BuiltinListTypes::for_kind("apps/v1", "Deployment");
        let mut o = opts("kubectl", false);
        o.api_version = "apps/v1";
        let deploy = |containers: Value| {
            json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"},
            "spec": {"template": {"spec": {"containers": containers}}}})
        };
        let applied = deploy(
            json!([{"name": "app", "image": "a:1"}, {"name": "side", "image": "s:1", "args": ["x"]}]),
        );
        let live = apply(None, &applied, &o, &lists).unwrap().object;
        // kubectl set image takes the sidecar image.
        let mut edited = live.clone();
        edited["spec"]["template"]["spec"]["containers"][1]["image"] = json!("s:2");
        let mut set = o.clone();
        set.manager = "kubectl-set";
        let edited = record_update(Some(&live), &edited, &set, &lists);
        // The manifest drops the sidecar: only what kubectl-set owns (and the key) remains.
        let out = apply(
            Some(&edited),
            &deploy(json!([{"name": "app", "image": "a:1"}])),
            &o,
            &lists,
        )
        .unwrap()
        .object;
        assert_eq!(
            out["spec"]["template"]["spec"]["containers"],
            json!([{"name": "app", "image": "a:1"}, {"name": "side", "image": "s:2"}])
        );
    }
}
