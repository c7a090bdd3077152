//! Where list and map semantics come from: a table for built-in kinds, the openAPIV3Schema for
//! custom resources.
//!
//! A *schema path* names a place in an object by its field names only, from the root; list items
//! are elided, so the `env` list of every container of a Deployment is
//! `["spec", "template", "spec", "containers", "env"]`.

use serde_json::Value;

/// How server-side apply treats a list (`x-kubernetes-list-type`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListType {
    /// Replaced and owned as a whole (the default for lists without a list type).
    Atomic,
    /// A set of scalars, merged per value.
    Set,
    /// A list of objects identified by the given key fields, merged per key.
    Map(Vec<String>),
}

/// How strategic merge patch treats a list (`patchStrategy`/`patchMergeKey`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StrategicList {
    /// `patchStrategy: merge` with `patchMergeKey`: objects merged per key.
    MergeKey(String),
    /// `patchStrategy: merge` on a list of scalars: union of values.
    MergePrimitive,
}

/// Source of list and map semantics for one kind of object.
pub trait ListTypes {
    /// The server-side apply list type of the list at `path`.
    fn list_type(&self, path: &[&str]) -> ListType;

    /// Whether the object/map at `path` is atomic (`x-kubernetes-map-type: atomic`).
    fn map_is_atomic(&self, _path: &[&str]) -> bool {
        false
    }

    /// The default value of a list-map key field that an item may omit (e.g. `protocol: TCP`).
    fn key_default(&self, _path: &[&str], _key: &str) -> Option<Value> {
        None
    }

    /// The strategic merge patch strategy of the list at `path`; `None` means replace.
    fn strategic(&self, _path: &[&str]) -> Option<StrategicList> {
        None
    }

    /// Whether strategic merge patch is supported for this kind (false for custom resources,
    /// whose patch requests a real API server answers with 415 Unsupported Media Type).
    fn supports_strategic(&self) -> bool {
        false
    }
}

/// List types that treat every list as atomic and no map as atomic (useful for kinds without
/// any list semantics, such as Secrets and ConfigMaps).
#[derive(Debug, Clone, Copy, Default)]
pub struct AtomicLists;

impl ListTypes for AtomicLists {
    fn list_type(&self, _path: &[&str]) -> ListType {
        ListType::Atomic
    }
    fn supports_strategic(&self) -> bool {
        true
    }
}

/// One row of the built-in table: the list at `path` (relative to a prefix such as a pod spec).
struct Row {
    path: &'static [&'static str],
    /// `x-kubernetes-list-map-keys`; empty with `set == false` means atomic.
    map_keys: &'static [&'static str],
    set: bool,
    /// `patchMergeKey`, or `Some("")` for a primitive list with `patchStrategy: merge`.
    merge_key: Option<&'static str>,
}

const fn map(
    path: &'static [&'static str],
    map_keys: &'static [&'static str],
    merge_key: &'static str,
) -> Row {
    Row {
        path,
        map_keys,
        set: false,
        merge_key: Some(merge_key),
    }
}

/// Lists of `ObjectMeta` (at `metadata`).
const META_ROWS: &[Row] = &[
    map(&["ownerReferences"], &["uid"], "uid"),
    Row {
        path: &["finalizers"],
        map_keys: &[],
        set: true,
        merge_key: Some(""),
    },
];

/// Lists of `PodSpec` (at `spec` of a Pod or `spec.template.spec` of a workload).
const POD_SPEC_ROWS: &[Row] = &[
    map(&["containers"], &["name"], "name"),
    map(&["initContainers"], &["name"], "name"),
    map(&["ephemeralContainers"], &["name"], "name"),
    map(&["volumes"], &["name"], "name"),
    map(&["imagePullSecrets"], &["name"], "name"),
    map(&["hostAliases"], &["ip"], "ip"),
    map(
        &["topologySpreadConstraints"],
        &["topologyKey", "whenUnsatisfiable"],
        "topologyKey",
    ),
    map(&["schedulingGates"], &["name"], "name"),
    map(&["resourceClaims"], &["name"], "name"),
    map(&["readinessGates"], &[], ""),
];

/// Lists of `Container` (inside containers, initContainers and ephemeralContainers).
const CONTAINER_ROWS: &[Row] = &[
    map(&["env"], &["name"], "name"),
    map(&["ports"], &["containerPort", "protocol"], "containerPort"),
    map(&["volumeMounts"], &["mountPath"], "mountPath"),
    map(&["volumeDevices"], &["devicePath"], "devicePath"),
    map(&["resizePolicy"], &[], ""),
    map(&["resources", "claims"], &["name"], ""),
];

/// Lists of `PodStatus`.
const POD_STATUS_ROWS: &[Row] = &[
    map(&["conditions"], &["type"], "type"),
    map(&["podIPs"], &["ip"], "ip"),
    map(&["hostIPs"], &["ip"], "ip"),
    map(&["resourceClaimStatuses"], &["name"], "name"),
];

/// Status conditions keyed by type (workloads, PDBs, CRDs, ...).
const CONDITIONS: &[Row] = &[map(&["conditions"], &["type"], "type")];

/// The table for built-in kinds, from the `patchStrategy`, `patchMergeKey`,
/// `x-kubernetes-list-type` and `x-kubernetes-list-map-keys` tags of the Kubernetes 1.33 types.
///
/// Rows with an empty merge key (`Some("")` on an object list) mark lists that are atomic for
/// both algorithms but listed for documentation; lists not in the table are atomic/replaced.
#[derive(Debug, Clone)]
pub struct BuiltinListTypes {
    /// (prefix, rows) pairs that apply to this kind.
    sections: Vec<(Vec<&'static str>, &'static [Row])>,
}

impl std::fmt::Debug for Row {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", self.path)
    }
}

impl BuiltinListTypes {
    /// The list semantics of a built-in kind, by `apiVersion` group and `kind`.
    /// Unknown kinds get only the `ObjectMeta` rules (all other lists are atomic).
    pub fn for_kind(api_version: &str, kind: &str) -> Self {
        let group = api_version.rsplit_once('/').map_or("", |(g, _)| g);
        let mut sections: Vec<(Vec<&'static str>, &'static [Row])> =
            vec![(vec!["metadata"], META_ROWS)];
        let pod_spec: &[&'static str] = match (group, kind) {
            ("", "Pod") => &["spec"],
            ("apps", "Deployment" | "StatefulSet" | "DaemonSet" | "ReplicaSet")
            | ("batch", "Job")
            | ("", "ReplicationController") => &["spec", "template", "spec"],
            ("", "PodTemplate") => &["template", "spec"],
            ("batch", "CronJob") => &["spec", "jobTemplate", "spec", "template", "spec"],
            _ => &[],
        };
        if !pod_spec.is_empty() {
            sections.push((pod_spec.to_vec(), POD_SPEC_ROWS));
            for list in ["containers", "initContainers", "ephemeralContainers"] {
                let mut containers = pod_spec.to_vec();
                containers.push(list);
                sections.push((containers, CONTAINER_ROWS));
            }
            // The pod template's own metadata (`spec.template.metadata`).
            if let Some((_, template)) = pod_spec.split_last().filter(|(_, t)| !t.is_empty()) {
                let mut meta = template.to_vec();
                meta.push("metadata");
                sections.push((meta, META_ROWS));
            }
        }
        match (group, kind) {
            ("", "Pod") => sections.push((vec!["status"], POD_STATUS_ROWS)),
            ("", "Service") => sections.push((vec!["spec"], SERVICE_SPEC_ROWS)),
            ("", "ServiceAccount") => sections.push((vec![], SERVICE_ACCOUNT_ROWS)),
            _ => {}
        }
        if kind != "Pod" {
            sections.push((vec!["status"], CONDITIONS));
        }
        BuiltinListTypes { sections }
    }

    fn row(&self, path: &[&str]) -> Option<&'static Row> {
        self.sections.iter().find_map(|(prefix, rows)| {
            let rest = path.strip_prefix(prefix.as_slice())?;
            rows.iter().find(|r| r.path == rest)
        })
    }
}

/// Lists of a `ServiceAccount` (top level).
const SERVICE_ACCOUNT_ROWS: &[Row] = &[
    map(&["secrets"], &["name"], "name"),
    map(&["imagePullSecrets"], &["name"], "name"),
];

/// Lists of `ServiceSpec`.
const SERVICE_SPEC_ROWS: &[Row] = &[
    map(&["ports"], &["port", "protocol"], "port"),
    Row {
        path: &["clusterIPs"],
        map_keys: &[],
        set: false,
        merge_key: None,
    },
    Row {
        path: &["ipFamilies"],
        map_keys: &[],
        set: false,
        merge_key: None,
    },
];

impl ListTypes for BuiltinListTypes {
    fn list_type(&self, path: &[&str]) -> ListType {
        match self.row(path) {
            Some(r) if r.set => ListType::Set,
            Some(r) if !r.map_keys.is_empty() => {
                ListType::Map(r.map_keys.iter().map(|k| (*k).to_owned()).collect())
            }
            _ => ListType::Atomic,
        }
    }

    fn key_default(&self, _path: &[&str], key: &str) -> Option<Value> {
        (key == "protocol").then(|| Value::String("TCP".into()))
    }

    fn strategic(&self, path: &[&str]) -> Option<StrategicList> {
        match self.row(path)?.merge_key? {
            "" if self.row(path)?.set => Some(StrategicList::MergePrimitive),
            "" => None,
            key => Some(StrategicList::MergeKey(key.to_owned())),
        }
    }

    fn supports_strategic(&self) -> bool {
        true
    }
}

/// List types read from a CRD version's `openAPIV3Schema`.
#[derive(Debug, Clone)]
pub struct SchemaListTypes {
    schema: std::sync::Arc<Value>,
}

impl SchemaListTypes {
    /// Wraps a CRD version's `openAPIV3Schema` (shared, not copied). `metadata` follows the
    /// `ObjectMeta` rules.
    pub fn new(schema: impl Into<std::sync::Arc<Value>>) -> Self {
        SchemaListTypes {
            schema: schema.into(),
        }
    }

    /// The sub-schema at a schema path (descending `properties`, `additionalProperties` and
    /// array `items`).
    fn at(&self, path: &[&str]) -> Option<&Value> {
        let mut s: &Value = &self.schema;
        for name in path {
            s = descend_items(s);
            s = s
                .get("properties")
                .and_then(|p| p.get(*name))
                .or_else(|| s.get("additionalProperties").filter(|a| a.is_object()))?;
        }
        Some(s)
    }
}

/// Steps through any number of array `items` levels.
fn descend_items(mut s: &Value) -> &Value {
    while s.get("type").and_then(Value::as_str) == Some("array") {
        match s.get("items") {
            Some(items) => s = items,
            None => break,
        }
    }
    s
}

impl ListTypes for SchemaListTypes {
    fn list_type(&self, path: &[&str]) -> ListType {
        if path.first() == Some(&"metadata") {
            return BuiltinListTypes::for_kind("", "").list_type(path);
        }
        let Some(s) = self.at(path) else {
            return ListType::Atomic;
        };
        match s.get("x-kubernetes-list-type").and_then(Value::as_str) {
            Some("set") => ListType::Set,
            Some("map") => ListType::Map(
                s.get("x-kubernetes-list-map-keys")
                    .and_then(Value::as_array)
                    .map(|keys| {
                        keys.iter()
                            .filter_map(Value::as_str)
                            .map(str::to_owned)
                            .collect()
                    })
                    .unwrap_or_default(),
            ),
            _ => ListType::Atomic,
        }
    }

    fn map_is_atomic(&self, path: &[&str]) -> bool {
        self.at(path)
            .and_then(|s| s.get("x-kubernetes-map-type"))
            .and_then(Value::as_str)
            == Some("atomic")
    }

    fn key_default(&self, path: &[&str], key: &str) -> Option<Value> {
        let items = self.at(path)?.get("items")?;
        items.get("properties")?.get(key)?.get("default").cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn keys(k: &[&str]) -> ListType {
        ListType::Map(k.iter().map(|s| (*s).to_owned()).collect())
    }

    #[test]
    fn builtin_table() {
        let sts = BuiltinListTypes::for_kind("apps/v1", "StatefulSet");
        let pod = BuiltinListTypes::for_kind("v1", "Pod");
        let svc = BuiltinListTypes::for_kind("v1", "Service");
        let cron = BuiltinListTypes::for_kind("batch/v1", "CronJob");
        let sa = BuiltinListTypes::for_kind("v1", "ServiceAccount");
        let merge = |k: &str| Some(StrategicList::MergeKey(k.to_owned()));
        let cases: Vec<(&BuiltinListTypes, &[&str], ListType, Option<StrategicList>)> = vec![
            (
                &sts,
                &["spec", "template", "spec", "containers"],
                keys(&["name"]),
                merge("name"),
            ),
            (
                &sts,
                &["spec", "template", "spec", "containers", "env"],
                keys(&["name"]),
                merge("name"),
            ),
            (
                &sts,
                &["spec", "template", "spec", "initContainers", "volumeMounts"],
                keys(&["mountPath"]),
                merge("mountPath"),
            ),
            (
                &sts,
                &["spec", "template", "spec", "containers", "ports"],
                keys(&["containerPort", "protocol"]),
                merge("containerPort"),
            ),
            (
                &sts,
                &["spec", "template", "spec", "volumes"],
                keys(&["name"]),
                merge("name"),
            ),
            (
                &sts,
                &["spec", "template", "spec", "tolerations"],
                ListType::Atomic,
                None,
            ),
            (
                &sts,
                &["spec", "template", "spec", "containers", "args"],
                ListType::Atomic,
                None,
            ),
            (
                &sts,
                &["spec", "volumeClaimTemplates"],
                ListType::Atomic,
                None,
            ),
            (
                &sts,
                &["spec", "template", "metadata", "finalizers"],
                ListType::Set,
                Some(StrategicList::MergePrimitive),
            ),
            (
                &sts,
                &["status", "conditions"],
                keys(&["type"]),
                merge("type"),
            ),
            (
                &sts,
                &["metadata", "ownerReferences"],
                keys(&["uid"]),
                merge("uid"),
            ),
            (
                &sts,
                &["metadata", "finalizers"],
                ListType::Set,
                Some(StrategicList::MergePrimitive),
            ),
            (
                &pod,
                &["spec", "containers", "env"],
                keys(&["name"]),
                merge("name"),
            ),
            (
                &pod,
                &["spec", "imagePullSecrets"],
                keys(&["name"]),
                merge("name"),
            ),
            (
                &pod,
                &["status", "conditions"],
                keys(&["type"]),
                merge("type"),
            ),
            (
                &pod,
                &["status", "containerStatuses"],
                ListType::Atomic,
                None,
            ),
            (
                &svc,
                &["spec", "ports"],
                keys(&["port", "protocol"]),
                merge("port"),
            ),
            (
                &svc,
                &["spec", "template", "spec", "containers"],
                ListType::Atomic,
                None,
            ),
            (
                &cron,
                &[
                    "spec",
                    "jobTemplate",
                    "spec",
                    "template",
                    "spec",
                    "containers",
                ],
                keys(&["name"]),
                merge("name"),
            ),
            (&sa, &["secrets"], keys(&["name"]), merge("name")),
            (&sa, &["imagePullSecrets"], keys(&["name"]), merge("name")),
        ];
        for (lists, path, list_type, strategic) in cases {
            assert_eq!(lists.list_type(path), list_type, "{path:?}");
            assert_eq!(lists.strategic(path), strategic, "{path:?}");
        }
        assert_eq!(
            sts.key_default(
                &["spec", "template", "spec", "containers", "ports"],
                "protocol"
            ),
            Some(json!("TCP"))
        );
        assert!(sts.supports_strategic());
    }

    #[test]
    fn schema_lists() {
        let lists = SchemaListTypes::new(json!({"type": "object", "properties": {
            "spec": {"type": "object", "properties": {
                "members": {"type": "array", "x-kubernetes-list-type": "map",
                    "x-kubernetes-list-map-keys": ["name", "zone"],
                    "items": {"type": "object", "properties": {
                        "name": {"type": "string"}, "zone": {"type": "string", "default": "a"},
                        "tags": {"type": "array", "x-kubernetes-list-type": "set", "items": {"type": "string"}}}}},
                "selector": {"type": "object", "x-kubernetes-map-type": "atomic"},
                "byName": {"type": "object", "additionalProperties": {"type": "object", "properties": {
                    "ports": {"type": "array", "x-kubernetes-list-type": "set", "items": {"type": "integer"}}}}},
                "args": {"type": "array", "items": {"type": "string"}}}}}}));
        assert_eq!(
            lists.list_type(&["spec", "members"]),
            keys(&["name", "zone"])
        );
        assert_eq!(lists.list_type(&["spec", "members", "tags"]), ListType::Set);
        assert_eq!(
            lists.list_type(&["spec", "byName", "anyKey", "ports"]),
            ListType::Set
        );
        assert_eq!(lists.list_type(&["spec", "args"]), ListType::Atomic);
        assert_eq!(lists.list_type(&["spec", "unknown"]), ListType::Atomic);
        assert_eq!(lists.list_type(&["metadata", "finalizers"]), ListType::Set);
        assert_eq!(
            lists.key_default(&["spec", "members"], "zone"),
            Some(json!("a"))
        );
        assert!(lists.map_is_atomic(&["spec", "selector"]));
        assert!(!lists.map_is_atomic(&["spec", "byName"]));
        assert!(!lists.supports_strategic());
    }
}
