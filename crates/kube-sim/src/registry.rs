//! The kinds the server serves: built-in kinds plus those of established CustomResourceDefinitions.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::Value;

use crate::error::Cause;

/// Identifies stored objects of one resource independently of the version.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct GroupResource {
    /// API group, empty for the core group.
    pub group: String,
    /// Plural resource name.
    pub resource: String,
}

impl GroupResource {
    /// Builds a group-resource pair.
    pub fn new(group: &str, resource: &str) -> Self {
        GroupResource {
            group: group.to_owned(),
            resource: resource.to_owned(),
        }
    }

    /// The resource whose stored objects this one serves: events.k8s.io Events are the core
    /// Events seen through another group, so both share one collection, history and watch feed.
    pub fn storage(&self) -> Cow<'_, GroupResource> {
        if crate::events::is_events_api(self) {
            Cow::Owned(GroupResource::new("", "events"))
        } else {
            Cow::Borrowed(self)
        }
    }
}

/// An `additionalPrinterColumns` entry.
#[derive(Clone, Debug, PartialEq)]
pub struct PrinterColumn {
    /// Column header.
    pub name: String,
    /// OpenAPI type: string, integer, number, boolean, date.
    pub type_: String,
    /// OpenAPI format, e.g. `name`.
    pub format: String,
    /// Column description.
    pub description: String,
    /// 0 = shown by default, >0 = only with `-o wide`.
    pub priority: i64,
    /// Simple JSONPath (`.spec.replicas`) evaluated against each object.
    pub json_path: String,
}

/// The `scale` subresource of a kind.
#[derive(Clone, Debug, PartialEq)]
pub struct ScaleSpec {
    /// Dotted JSONPath of the desired replicas, e.g. `.spec.replicas`.
    pub spec_replicas_path: String,
    /// Dotted JSONPath of the observed replicas.
    pub status_replicas_path: String,
    /// Dotted JSONPath of the label selector string, if any.
    pub label_selector_path: Option<String>,
}

/// One version of a resource.
#[derive(Clone, Debug, PartialEq)]
pub struct VersionInfo {
    /// Version name, e.g. `v1`.
    pub name: String,
    /// Whether the version is served.
    pub served: bool,
    /// Whether it is the storage version.
    pub storage: bool,
    /// `openAPIV3Schema` of a custom resource version.
    pub schema: Option<std::sync::Arc<Value>>,
    /// Whether the version has a `status` subresource.
    pub status: bool,
    /// The `scale` subresource, if any.
    pub scale: Option<ScaleSpec>,
    /// Printer columns (custom resources; built-ins use the table module's own columns).
    pub columns: Vec<PrinterColumn>,
}

/// Everything the server knows about one resource.
#[derive(Clone, Debug, PartialEq)]
pub struct ResourceInfo {
    /// API group.
    pub group: String,
    /// Kind, e.g. `Pod`.
    pub kind: String,
    /// List kind, e.g. `PodList`.
    pub list_kind: String,
    /// Plural name (the URL segment).
    pub plural: String,
    /// Singular name.
    pub singular: String,
    /// Namespaced or cluster-scoped.
    pub namespaced: bool,
    /// kubectl short names.
    pub short_names: Vec<String>,
    /// Categories, e.g. `all`.
    pub categories: Vec<String>,
    /// Versions, in CRD order (built-ins have one).
    pub versions: Vec<VersionInfo>,
    /// Defined by a CustomResourceDefinition.
    pub custom: bool,
    /// Whether `metadata.generation` is maintained.
    pub generation: bool,
    /// Subresources other than status and scale (e.g. `eviction`, `log`, `finalize`).
    pub extra_subresources: Vec<&'static str>,
}

impl ResourceInfo {
    /// The storage key.
    pub fn gr(&self) -> GroupResource {
        GroupResource::new(&self.group, &self.plural)
    }

    /// A served version by name.
    pub fn version(&self, name: &str) -> Option<&VersionInfo> {
        self.versions.iter().find(|v| v.served && v.name == name)
    }

    /// The version objects are stored in.
    pub fn storage_version(&self) -> &VersionInfo {
        self.versions
            .iter()
            .find(|v| v.storage)
            .unwrap_or(&self.versions[0])
    }

    /// `group/version` or `version` for the core group.
    pub fn api_version(&self, version: &str) -> String {
        if self.group.is_empty() {
            version.to_owned()
        } else {
            format!("{}/{version}", self.group)
        }
    }

    /// Whether any version has a status subresource (built-ins: fixed per kind).
    pub fn has_status(&self, version: &str) -> bool {
        self.version(version).is_some_and(|v| v.status)
    }
}

struct Builtin {
    group: &'static str,
    version: &'static str,
    kind: &'static str,
    plural: &'static str,
    namespaced: bool,
    short_names: &'static [&'static str],
    status: bool,
    scale: bool,
    generation: bool,
    extra: &'static [&'static str],
}

const fn b(
    group: &'static str,
    version: &'static str,
    kind: &'static str,
    plural: &'static str,
    namespaced: bool,
) -> Builtin {
    Builtin {
        group,
        version,
        kind,
        plural,
        namespaced,
        short_names: &[],
        status: false,
        scale: false,
        generation: false,
        extra: &[],
    }
}

impl Builtin {
    const fn short(mut self, s: &'static [&'static str]) -> Self {
        self.short_names = s;
        self
    }
    const fn status(mut self) -> Self {
        self.status = true;
        self
    }
    /// Maintains `metadata.generation` (workloads and policies, as in Kubernetes 1.33).
    const fn generation(mut self) -> Self {
        self.generation = true;
        self
    }
    const fn scale(mut self) -> Self {
        self.scale = true;
        self
    }
    const fn extra(mut self, e: &'static [&'static str]) -> Self {
        self.extra = e;
        self
    }
}

/// The built-in kinds, in discovery order.
const BUILTINS: &[Builtin] = &[
    b("", "v1", "Namespace", "namespaces", false)
        .short(&["ns"])
        .status(),
    b("", "v1", "Pod", "pods", true)
        .short(&["po"])
        .status()
        .extra(&["eviction", "log"]),
    b("", "v1", "Service", "services", true)
        .short(&["svc"])
        .status(),
    b("", "v1", "Endpoints", "endpoints", true).short(&["ep"]),
    b("", "v1", "Secret", "secrets", true),
    b("", "v1", "ConfigMap", "configmaps", true).short(&["cm"]),
    b("", "v1", "ServiceAccount", "serviceaccounts", true).short(&["sa"]),
    b(
        "",
        "v1",
        "PersistentVolumeClaim",
        "persistentvolumeclaims",
        true,
    )
    .short(&["pvc"])
    .status(),
    b("", "v1", "PersistentVolume", "persistentvolumes", false)
        .short(&["pv"])
        .status(),
    b("", "v1", "Event", "events", true).short(&["ev"]),
    b("", "v1", "Node", "nodes", false).short(&["no"]).status(),
    b("", "v1", "ResourceQuota", "resourcequotas", true)
        .short(&["quota"])
        .status(),
    b("", "v1", "LimitRange", "limitranges", true).short(&["limits"]),
    b("apps", "v1", "StatefulSet", "statefulsets", true)
        .short(&["sts"])
        .status()
        .generation()
        .scale(),
    b("apps", "v1", "Deployment", "deployments", true)
        .short(&["deploy"])
        .status()
        .generation()
        .scale(),
    b("apps", "v1", "ReplicaSet", "replicasets", true)
        .short(&["rs"])
        .status()
        .generation()
        .scale(),
    b(
        "apps",
        "v1",
        "ControllerRevision",
        "controllerrevisions",
        true,
    ),
    b("batch", "v1", "Job", "jobs", true).status().generation(),
    b(
        "policy",
        "v1",
        "PodDisruptionBudget",
        "poddisruptionbudgets",
        true,
    )
    .short(&["pdb"])
    .status()
    .generation(),
    b("rbac.authorization.k8s.io", "v1", "Role", "roles", true),
    b(
        "rbac.authorization.k8s.io",
        "v1",
        "ClusterRole",
        "clusterroles",
        false,
    ),
    b(
        "rbac.authorization.k8s.io",
        "v1",
        "RoleBinding",
        "rolebindings",
        true,
    ),
    b(
        "rbac.authorization.k8s.io",
        "v1",
        "ClusterRoleBinding",
        "clusterrolebindings",
        false,
    ),
    b("coordination.k8s.io", "v1", "Lease", "leases", true),
    b("events.k8s.io", "v1", "Event", "events", true).short(&["ev"]),
    b(
        "discovery.k8s.io",
        "v1",
        "EndpointSlice",
        "endpointslices",
        true,
    ),
    b(
        "storage.k8s.io",
        "v1",
        "StorageClass",
        "storageclasses",
        false,
    )
    .short(&["sc"]),
    b(
        "apiextensions.k8s.io",
        "v1",
        "CustomResourceDefinition",
        "customresourcedefinitions",
        false,
    )
    .short(&["crd", "crds"])
    .status()
    .generation(),
];

/// Kinds that belong to the `all` category, as on a real cluster.
const ALL_CATEGORY: &[&str] = &[
    "pods",
    "services",
    "statefulsets",
    "deployments",
    "replicasets",
    "jobs",
];

fn builtin_info(def: &Builtin) -> ResourceInfo {
    let scale = def.scale.then(|| ScaleSpec {
        spec_replicas_path: ".spec.replicas".into(),
        status_replicas_path: ".status.replicas".into(),
        label_selector_path: None,
    });
    ResourceInfo {
        group: def.group.into(),
        kind: def.kind.into(),
        list_kind: format!("{}List", def.kind),
        plural: def.plural.into(),
        singular: def.kind.to_lowercase(),
        namespaced: def.namespaced,
        short_names: def.short_names.iter().map(|s| (*s).to_owned()).collect(),
        categories: if ALL_CATEGORY.contains(&def.plural) && def.group != "events.k8s.io" {
            vec!["all".into()]
        } else {
            vec![]
        },
        versions: vec![VersionInfo {
            name: def.version.into(),
            served: true,
            storage: true,
            schema: None,
            status: def.status,
            scale,
            columns: vec![],
        }],
        custom: false,
        generation: def.generation,
        extra_subresources: def.extra.to_vec(),
    }
}

/// Served resources, keyed by group and plural.
#[derive(Clone, Debug)]
pub struct Registry {
    resources: BTreeMap<GroupResource, Arc<ResourceInfo>>,
    builtin_groups: Vec<String>,
}

impl Default for Registry {
    fn default() -> Self {
        Self::builtin()
    }
}

impl Registry {
    /// A registry with the built-in kinds.
    pub fn builtin() -> Self {
        let mut resources = BTreeMap::new();
        let mut builtin_groups: Vec<String> = Vec::new();
        for def in BUILTINS {
            let info = builtin_info(def);
            if !builtin_groups.contains(&info.group) {
                builtin_groups.push(info.group.clone());
            }
            resources.insert(info.gr(), Arc::new(info));
        }
        Registry {
            resources,
            builtin_groups,
        }
    }

    /// The resource served at `group/version/plural`, if any.
    pub fn lookup(&self, group: &str, version: &str, plural: &str) -> Option<Arc<ResourceInfo>> {
        let info = self.resources.get(&GroupResource::new(group, plural))?;
        info.version(version)?;
        Some(info.clone())
    }

    /// The resource of a group and plural regardless of version.
    pub fn get(&self, gr: &GroupResource) -> Option<Arc<ResourceInfo>> {
        self.resources.get(gr).cloned()
    }

    /// The resource of a kind in a group (any served version).
    pub fn by_kind(&self, group: &str, kind: &str) -> Option<Arc<ResourceInfo>> {
        self.resources
            .values()
            .find(|r| r.group == group && r.kind == kind)
            .cloned()
    }

    /// All resources.
    pub fn all(&self) -> impl Iterator<Item = &Arc<ResourceInfo>> {
        self.resources.values()
    }

    /// Groups (built-in first, then custom, sorted) with their served versions, preferred first.
    pub fn groups(&self) -> Vec<(String, Vec<String>)> {
        let mut custom: Vec<String> = self
            .resources
            .values()
            .map(|r| r.group.clone())
            .filter(|g| !self.builtin_groups.contains(g))
            .collect();
        custom.sort();
        custom.dedup();
        self.builtin_groups
            .iter()
            .cloned()
            .chain(custom)
            .map(|g| {
                let mut versions: Vec<String> = Vec::new();
                for r in self.resources.values().filter(|r| r.group == g) {
                    // A CRD's storage version is its preferred version.
                    let mut vs: Vec<&VersionInfo> =
                        r.versions.iter().filter(|v| v.served).collect();
                    vs.sort_by_key(|v| !v.storage);
                    for v in vs {
                        if !versions.contains(&v.name) {
                            versions.push(v.name.clone());
                        }
                    }
                }
                (g, versions)
            })
            .filter(|(_, v)| !v.is_empty())
            .collect()
    }

    /// Resources served in a group version.
    pub fn resources_in(&self, group: &str, version: &str) -> Vec<Arc<ResourceInfo>> {
        self.resources
            .values()
            .filter(|r| r.group == group && r.version(version).is_some())
            .cloned()
            .collect()
    }

    /// Starts serving the resource a CRD defines (replacing an earlier definition).
    pub fn install(&mut self, info: ResourceInfo) -> Arc<ResourceInfo> {
        let info = Arc::new(info);
        self.resources.insert(info.gr(), info.clone());
        info
    }

    /// Stops serving a custom resource.
    pub fn remove(&mut self, gr: &GroupResource) -> Option<Arc<ResourceInfo>> {
        match self.resources.get(gr) {
            Some(r) if r.custom => self.resources.remove(gr),
            _ => None,
        }
    }
}

fn str_at<'a>(v: &'a Value, path: &str) -> &'a str {
    crate::meta::lookup(v, path)
        .and_then(Value::as_str)
        .unwrap_or_default()
}

fn strings_at(v: &Value, path: &str) -> Vec<String> {
    crate::meta::lookup(v, path)
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

fn cause(field: &str, message: &str) -> Cause {
    Cause {
        reason: "FieldValueInvalid".into(),
        message: message.into(),
        field: field.into(),
    }
}

/// Reads the resource a CustomResourceDefinition defines, or the validation errors of the CRD.
pub fn crd_resource(crd: &Value) -> Result<ResourceInfo, Vec<Cause>> {
    let group = str_at(crd, "spec.group");
    let plural = str_at(crd, "spec.names.plural");
    let kind = str_at(crd, "spec.names.kind");
    let scope = str_at(crd, "spec.scope");
    let mut causes = Vec::new();
    if group.is_empty() || !group.contains('.') {
        causes.push(cause(
            "spec.group",
            "should be a domain with at least one dot",
        ));
    }
    if plural.is_empty() {
        causes.push(cause("spec.names.plural", "Required value"));
    }
    if kind.is_empty() {
        causes.push(cause("spec.names.kind", "Required value"));
    }
    let name = crate::meta::name(crd);
    if name != format!("{plural}.{group}") {
        causes.push(cause(
            "metadata.name",
            &format!("must be spec.names.plural+\".\"+spec.group ({plural}.{group})"),
        ));
    }
    if scope != "Namespaced" && scope != "Cluster" {
        causes.push(cause(
            "spec.scope",
            "supported values: \"Cluster\", \"Namespaced\"",
        ));
    }
    let mut versions = Vec::new();
    for (i, v) in crd
        .pointer("/spec/versions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        let scale = v.pointer("/subresources/scale").map(|s| ScaleSpec {
            spec_replicas_path: str_at(s, "specReplicasPath").to_owned(),
            status_replicas_path: str_at(s, "statusReplicasPath").to_owned(),
            label_selector_path: s
                .get("labelSelectorPath")
                .and_then(Value::as_str)
                .map(str::to_owned),
        });
        let columns = v
            .get("additionalPrinterColumns")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .map(|c| PrinterColumn {
                name: str_at(c, "name").to_owned(),
                type_: str_at(c, "type").to_owned(),
                format: str_at(c, "format").to_owned(),
                description: str_at(c, "description").to_owned(),
                priority: c.get("priority").and_then(Value::as_i64).unwrap_or(0),
                json_path: str_at(c, "jsonPath").to_owned(),
            })
            .collect();
        let vname = str_at(v, "name");
        if vname.is_empty() {
            causes.push(cause(&format!("spec.versions[{i}].name"), "Required value"));
        }
        versions.push(VersionInfo {
            name: vname.to_owned(),
            served: v.get("served").and_then(Value::as_bool).unwrap_or(false),
            storage: v.get("storage").and_then(Value::as_bool).unwrap_or(false),
            schema: v
                .pointer("/schema/openAPIV3Schema")
                .cloned()
                .map(std::sync::Arc::new),
            status: v.pointer("/subresources/status").is_some(),
            scale,
            columns,
        });
    }
    if versions.iter().filter(|v| v.storage).count() != 1 {
        causes.push(cause(
            "spec.versions",
            "must have exactly one version marked as storage version",
        ));
    }
    if !causes.is_empty() {
        return Err(causes);
    }
    Ok(ResourceInfo {
        group: group.into(),
        kind: kind.into(),
        list_kind: crate::meta::lookup(crd, "spec.names.listKind")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .unwrap_or_else(|| format!("{kind}List")),
        plural: plural.into(),
        singular: crate::meta::lookup(crd, "spec.names.singular")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .unwrap_or_else(|| kind.to_lowercase()),
        namespaced: scope == "Namespaced",
        short_names: strings_at(crd, "spec.names.shortNames"),
        categories: strings_at(crd, "spec.names.categories"),
        versions,
        custom: true,
        generation: true,
        extra_subresources: vec![],
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn crd() -> Value {
        json!({
            "metadata": {"name": "widgets.example.com"},
            "spec": {
                "group": "example.com",
                "names": {"plural": "widgets", "singular": "widget", "kind": "Widget", "shortNames": ["wd"], "categories": ["all"]},
                "scope": "Namespaced",
                "versions": [
                    {"name": "v1alpha1", "served": true, "storage": false},
                    {"name": "v1", "served": true, "storage": true,
                     "subresources": {"status": {}, "scale": {"specReplicasPath": ".spec.replicas", "statusReplicasPath": ".status.replicas"}},
                     "additionalPrinterColumns": [{"name": "Size", "type": "integer", "jsonPath": ".spec.size"}]}
                ]
            }
        })
    }

    #[test]
    fn builtins_are_served() {
        let r = Registry::builtin();
        let pods = r.lookup("", "v1", "pods").unwrap();
        assert!(
            pods.namespaced
                && pods.has_status("v1")
                && pods.extra_subresources.contains(&"eviction")
        );
        assert!(
            r.lookup("apps", "v1", "statefulsets")
                .unwrap()
                .storage_version()
                .scale
                .is_some()
        );
        assert!(r.lookup("apps", "v2", "statefulsets").is_none());
        assert!(
            !r.lookup("rbac.authorization.k8s.io", "v1", "clusterroles")
                .unwrap()
                .namespaced
        );
        assert_eq!(r.groups()[0], (String::new(), vec!["v1".to_owned()]));
    }

    #[test]
    fn crds_define_resources() {
        let info = crd_resource(&crd()).unwrap();
        assert_eq!(info.short_names, ["wd"]);
        assert_eq!(info.storage_version().name, "v1");
        assert!(info.has_status("v1") && !info.has_status("v1alpha1"));
        assert_eq!(
            info.version("v1").unwrap().columns[0].json_path,
            ".spec.size"
        );
        let mut r = Registry::builtin();
        r.install(info);
        assert!(r.lookup("example.com", "v1alpha1", "widgets").is_some());
        let groups = r.groups();
        assert_eq!(
            groups.last().unwrap(),
            &(
                "example.com".to_owned(),
                vec!["v1".to_owned(), "v1alpha1".to_owned()]
            )
        );
        assert!(
            r.remove(&GroupResource::new("example.com", "widgets"))
                .is_some()
        );
        assert!(r.remove(&GroupResource::new("", "pods")).is_none());
    }

    #[test]
    fn invalid_crds_are_rejected() {
        let mut bad = crd();
        bad["metadata"]["name"] = json!("wrong");
        bad["spec"]["versions"][0]["storage"] = json!(true);
        let causes = crd_resource(&bad).unwrap_err();
        let fields: Vec<&str> = causes.iter().map(|c| c.field.as_str()).collect();
        assert_eq!(fields, ["metadata.name", "spec.versions"]);
    }
}
