//! The generated CRDs: names, columns, structural schemas, list-map conditions, CEL rules,
//! subresources, and the committed chart copies.

use std::path::PathBuf;
use std::sync::LazyLock;

use api::crds;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use serde_json::Value;

/// Generating the schemas is not free in debug builds; do it once per test binary.
static ALL: LazyLock<Vec<CustomResourceDefinition>> = LazyLock::new(crds::all);

fn crd(name: &str) -> CustomResourceDefinition {
    ALL.iter()
        .find(|c| c.metadata.name.as_deref() == Some(name))
        .cloned()
        .unwrap_or_else(|| panic!("no CRD {name}"))
}

fn schema(crd: &CustomResourceDefinition) -> Value {
    let version = &crd.spec.versions[0];
    serde_json::to_value(
        version
            .schema
            .as_ref()
            .and_then(|s| s.open_api_v3_schema.as_ref())
            .expect("schema"),
    )
    .unwrap()
}

struct Expected {
    name: &'static str,
    group: &'static str,
    version: &'static str,
    kind: &'static str,
    plural: &'static str,
    singular: &'static str,
    namespaced: bool,
    short: &'static str,
    categories: &'static [&'static str],
    columns: &'static [(&'static str, &'static str, &'static str)],
}

const DB_COLUMNS: &[(&str, &str, &str)] = &[
    ("Version", "string", ".spec.version"),
    ("Status", "string", ".status.phase"),
    ("Age", "date", ".metadata.creationTimestamp"),
];
const OPS_COLUMNS: &[(&str, &str, &str)] = &[
    ("Type", "string", ".spec.type"),
    ("Status", "string", ".status.phase"),
    ("Age", "date", ".metadata.creationTimestamp"),
];
const VERSION_COLUMNS: &[(&str, &str, &str)] = &[
    ("Version", "string", ".spec.version"),
    ("DB_IMAGE", "string", ".spec.db.image"),
    ("Deprecated", "boolean", ".spec.deprecated"),
    ("Age", "date", ".metadata.creationTimestamp"),
];

const EXPECTED: [Expected; 6] = [
    Expected {
        name: "mssqlservers.kubedb.com",
        group: "kubedb.com",
        version: "v1alpha2",
        kind: "MSSQLServer",
        plural: "mssqlservers",
        singular: "mssqlserver",
        namespaced: true,
        short: "ms",
        categories: &["datastore", "kubedb", "appscode", "all"],
        columns: DB_COLUMNS,
    },
    Expected {
        name: "singlestores.kubedb.com",
        group: "kubedb.com",
        version: "v1alpha2",
        kind: "Singlestore",
        plural: "singlestores",
        singular: "singlestore",
        namespaced: true,
        short: "sdb",
        categories: &["datastore", "kubedb", "appscode", "all"],
        columns: DB_COLUMNS,
    },
    Expected {
        name: "mssqlserveropsrequests.ops.kubedb.com",
        group: "ops.kubedb.com",
        version: "v1alpha1",
        kind: "MSSQLServerOpsRequest",
        plural: "mssqlserveropsrequests",
        singular: "mssqlserveropsrequest",
        namespaced: true,
        short: "msops",
        categories: &["ops", "kubedb", "appscode"],
        columns: OPS_COLUMNS,
    },
    Expected {
        name: "singlestoreopsrequests.ops.kubedb.com",
        group: "ops.kubedb.com",
        version: "v1alpha1",
        kind: "SinglestoreOpsRequest",
        plural: "singlestoreopsrequests",
        singular: "singlestoreopsrequest",
        namespaced: true,
        short: "sdbops",
        categories: &["ops", "kubedb", "appscode"],
        columns: OPS_COLUMNS,
    },
    Expected {
        name: "mssqlserverversions.catalog.kubedb.com",
        group: "catalog.kubedb.com",
        version: "v1alpha1",
        kind: "MSSQLServerVersion",
        plural: "mssqlserverversions",
        singular: "mssqlserverversion",
        namespaced: false,
        short: "msversion",
        categories: &["catalog", "kubedb", "appscode"],
        columns: VERSION_COLUMNS,
    },
    Expected {
        name: "singlestoreversions.catalog.kubedb.com",
        group: "catalog.kubedb.com",
        version: "v1alpha1",
        kind: "SinglestoreVersion",
        plural: "singlestoreversions",
        singular: "singlestoreversion",
        namespaced: false,
        short: "sdbv",
        categories: &["catalog", "kubedb", "appscode"],
        columns: VERSION_COLUMNS,
    },
];

#[test]
fn names_scopes_columns_and_subresources_match_kubedb() {
    assert_eq!(ALL.len(), 6);
    for e in &EXPECTED {
        let c = crd(e.name);
        let names = &c.spec.names;
        assert_eq!(c.spec.group, e.group, "{}", e.name);
        assert_eq!(names.kind, e.kind);
        assert_eq!(names.plural, e.plural);
        assert_eq!(names.singular.as_deref(), Some(e.singular));
        assert_eq!(
            names.short_names.as_deref(),
            Some(&[e.short.to_string()][..])
        );
        assert_eq!(
            names.categories.clone().unwrap_or_default(),
            e.categories
                .iter()
                .map(|s| s.to_string())
                .collect::<Vec<_>>()
        );
        assert_eq!(
            c.spec.scope,
            if e.namespaced {
                "Namespaced"
            } else {
                "Cluster"
            }
        );
        assert_eq!(c.spec.versions.len(), 1);
        let v = &c.spec.versions[0];
        assert_eq!(v.name, e.version);
        assert!(v.served && v.storage);
        let columns: Vec<(String, String, String)> = v
            .additional_printer_columns
            .clone()
            .unwrap_or_default()
            .into_iter()
            .map(|col| (col.name, col.type_, col.json_path))
            .collect();
        let expected: Vec<(String, String, String)> = e
            .columns
            .iter()
            .map(|(a, b, c)| (a.to_string(), b.to_string(), c.to_string()))
            .collect();
        assert_eq!(columns, expected, "printer columns of {}", e.name);
        let has_status = v
            .subresources
            .as_ref()
            .and_then(|s| s.status.as_ref())
            .is_some();
        assert_eq!(has_status, e.namespaced, "status subresource of {}", e.name);
        let labels = c.metadata.labels.clone().unwrap_or_default();
        assert_eq!(
            labels.get("app.kubernetes.io/name").map(String::as_str),
            Some("kubedb")
        );
        let annotations = c.metadata.annotations.clone().unwrap_or_default();
        assert_eq!(
            annotations
                .get("helm.sh/resource-policy")
                .map(String::as_str),
            Some("keep")
        );
    }
    let provisioner: Vec<String> = crds::provisioner()
        .iter()
        .map(|c| c.spec.names.kind.clone())
        .collect();
    assert_eq!(
        provisioner,
        [
            "MSSQLServer",
            "Singlestore",
            "MSSQLServerVersion",
            "SinglestoreVersion"
        ]
    );
    let ops: Vec<String> = crds::ops_manager()
        .iter()
        .map(|c| c.spec.names.kind.clone())
        .collect();
    assert_eq!(ops, ["MSSQLServerOpsRequest", "SinglestoreOpsRequest"]);
}

/// Paths (dot-separated property names, `[]` for list items) where unknown fields are kept on
/// purpose: foreign open structures we do not model.
const PRESERVE_UNKNOWN_ALLOWED: &[&str] = &[
    "spec.monitor",
    "spec.init.archiver",
    "spec.stash",
    "spec.ui[].values",
];

fn walk(path: &str, node: &Value, problems: &mut Vec<String>, preserved: &mut Vec<String>) {
    let obj = node.as_object().expect("schema node is an object");
    let typed = obj.contains_key("type")
        || obj.get("x-kubernetes-int-or-string") == Some(&Value::Bool(true))
        || obj.get("x-kubernetes-preserve-unknown-fields") == Some(&Value::Bool(true));
    if !typed {
        problems.push(format!("{path}: no type"));
    }
    for forbidden in ["anyOf", "oneOf", "allOf", "$ref", "not"] {
        if obj.contains_key(forbidden) && !path.is_empty() {
            // Structural schemas only allow these without types/descriptions inside; we emit none.
            problems.push(format!("{path}: uses {forbidden}"));
        }
    }
    if obj.get("x-kubernetes-preserve-unknown-fields") == Some(&Value::Bool(true)) {
        preserved.push(path.to_string());
    }
    if let Some(props) = obj.get("properties").and_then(Value::as_object) {
        for (name, child) in props {
            let child_path = if path.is_empty() {
                name.clone()
            } else {
                format!("{path}.{name}")
            };
            walk(&child_path, child, problems, preserved);
        }
    }
    if let Some(items) = obj.get("items") {
        walk(&format!("{path}[]"), items, problems, preserved);
    }
    if let Some(additional) = obj.get("additionalProperties").filter(|a| a.is_object()) {
        walk(&format!("{path}{{}}"), additional, problems, preserved);
    }
}

#[test]
fn schemas_are_structural_and_preserve_unknown_fields_only_where_intended() {
    for c in ALL.iter() {
        let name = c.metadata.name.clone().unwrap();
        let mut problems = Vec::new();
        let mut preserved = Vec::new();
        walk("", &schema(c), &mut problems, &mut preserved);
        assert!(problems.is_empty(), "{name}: {problems:#?}");
        for p in &preserved {
            assert!(
                PRESERVE_UNKNOWN_ALLOWED.contains(&p.as_str()),
                "{name}: unexpected x-kubernetes-preserve-unknown-fields at {p}"
            );
        }
    }
    // The intended ones really are there.
    let mut preserved = Vec::new();
    walk(
        "",
        &schema(&crd("mssqlservers.kubedb.com")),
        &mut Vec::new(),
        &mut preserved,
    );
    assert!(
        preserved.contains(&"spec.monitor".to_string()),
        "{preserved:?}"
    );
}

fn at<'a>(root: &'a Value, path: &[&str]) -> &'a Value {
    path.iter().fold(root, |node, key| {
        node.get("properties")
            .and_then(|p| p.get(*key))
            .unwrap_or_else(|| panic!("no property {key} in path {path:?}"))
    })
}

#[test]
fn conditions_are_list_maps_keyed_by_type_with_required_fields() {
    for c in ALL.iter().filter(|c| c.spec.scope == "Namespaced") {
        let root = schema(c);
        let conditions = at(&root, &["status", "conditions"]);
        assert_eq!(
            conditions["x-kubernetes-list-type"], "map",
            "{:?}",
            c.metadata.name
        );
        assert_eq!(
            conditions["x-kubernetes-list-map-keys"],
            serde_json::json!(["type"])
        );
        let mut required: Vec<String> =
            serde_json::from_value(conditions["items"]["required"].clone()).unwrap();
        required.sort();
        assert_eq!(required, ["lastTransitionTime", "status", "type"]);
        assert_eq!(
            conditions["items"]["properties"]["status"]["enum"],
            serde_json::json!(["True", "False", "Unknown"])
        );
    }
}

fn rules(node: &Value) -> Vec<String> {
    node.get("x-kubernetes-validations")
        .and_then(Value::as_array)
        .map(|list| {
            list.iter()
                .map(|r| {
                    assert!(
                        r["message"].as_str().is_some_and(|m| !m.is_empty()),
                        "rule without message: {r}"
                    );
                    r["rule"].as_str().unwrap().to_string()
                })
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn cel_rules_are_present() {
    for name in ["mssqlservers.kubedb.com", "singlestores.kubedb.com"] {
        let root = schema(&crd(name));
        let root_rules = rules(&root);
        assert!(
            root_rules
                .iter()
                .any(|r| r.contains("self.metadata.name.size() <= 63")),
            "{name}"
        );
        assert!(
            root_rules
                .iter()
                .any(|r| r.contains("^[a-z]([-a-z0-9]*[a-z0-9])?$")),
            "{name}"
        );
    }
    let ms = schema(&crd("mssqlservers.kubedb.com"));
    let spec_rules = rules(at(&ms, &["spec"]));
    assert!(
        spec_rules.iter().any(|r| r.contains("self.replicas == 1")),
        "{spec_rules:?}"
    );
    assert!(spec_rules.iter().any(|r| r.contains("self.replicas > 0")));
    assert!(
        spec_rules
            .iter()
            .any(|r| r.contains("has(self.tls.issuerRef)"))
    );
    assert!(
        rules(at(&ms, &["spec", "topology"]))
            .iter()
            .any(|r| r.contains("distributedAG"))
    );

    let sdb = schema(&crd("singlestores.kubedb.com"));
    assert!(
        rules(at(&sdb, &["spec", "topology"]))
            .contains(&"has(self.aggregator) && has(self.leaf)".to_string())
    );
    for role in ["aggregator", "leaf"] {
        assert!(
            rules(at(&sdb, &["spec", "topology", role]))
                .iter()
                .any(|r| r.contains("self.replicas > 0"))
        );
    }

    for name in [
        "mssqlserveropsrequests.ops.kubedb.com",
        "singlestoreopsrequests.ops.kubedb.com",
    ] {
        let root = schema(&crd(name));
        let spec_rules = rules(at(&root, &["spec"]));
        assert!(
            spec_rules.contains(&"self == oldSelf".to_string()),
            "{name}: immutable spec"
        );
        assert!(
            spec_rules
                .iter()
                .any(|r| r.contains("self.type != 'UpdateVersion'") && r.contains("targetVersion")),
            "{name}"
        );
        let apply = at(&root, &["spec", "apply"]);
        assert_eq!(apply["default"], "IfReady");
        let required: Vec<String> =
            serde_json::from_value(at(&root, &["spec"])["required"].clone()).unwrap();
        assert!(required.contains(&"databaseRef".into()) && required.contains(&"type".into()));
    }
}

#[test]
fn crd_defaults_follow_kubedb() {
    let ms = schema(&crd("mssqlservers.kubedb.com"));
    assert_eq!(at(&ms, &["spec", "deletionPolicy"])["default"], "Delete");
    assert_eq!(at(&ms, &["spec", "storageType"])["default"], "Durable");
    assert_eq!(
        at(&ms, &["spec", "healthChecker", "periodSeconds"])["default"],
        10
    );
    assert_eq!(
        at(&ms, &["spec", "healthChecker", "failureThreshold"])["default"],
        1
    );
    let le = &["spec", "topology", "availabilityGroup", "leaderElection"];
    let le_node = at(&ms, le);
    assert_eq!(le_node["properties"]["period"]["default"], "100ms");
    assert_eq!(le_node["properties"]["electionTick"]["default"], 10);
    assert_eq!(le_node["properties"]["heartbeatTick"]["default"], 1);
    let mut required: Vec<String> =
        serde_json::from_value(at(&ms, &["spec"])["required"].clone()).unwrap();
    required.sort();
    assert_eq!(required, ["tls", "version"]);
    let sdb = schema(&crd("singlestores.kubedb.com"));
    let required: Vec<String> =
        serde_json::from_value(at(&sdb, &["spec"])["required"].clone()).unwrap();
    assert!(required.contains(&"licenseSecret".to_string()));
}

#[test]
fn committed_chart_crds_match_the_code() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../charts/kubedb-crds/templates");
    let files = [
        ("provisioner-crds.yaml", crds::to_yaml(&crds::provisioner())),
        ("ops-manager-crds.yaml", crds::to_yaml(&crds::ops_manager())),
    ];
    for (file, generated) in files {
        assert!(
            !generated.contains("{{"),
            "{file}: generated YAML would be read as a helm template"
        );
        assert!(generated.starts_with("---\n"));
        let path = dir.join(file);
        if std::env::var_os("API_WRITE_GENERATED").is_some() {
            std::fs::write(&path, &generated).unwrap();
        }
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            committed == generated,
            "{} is out of date with the api crate; run `make generate` and commit the result",
            path.display()
        );
    }
}

#[test]
fn yaml_is_multi_document_and_deterministic() {
    let first = crds::to_yaml(&ALL);
    assert_eq!(
        first,
        crds::to_yaml(&crds::all()),
        "a second generation renders identically"
    );
    use serde::Deserialize;
    let docs: Vec<CustomResourceDefinition> = yaml_serde::Deserializer::from_str(&first)
        .map(|d| CustomResourceDefinition::deserialize(d).expect("each document parses as a CRD"))
        .collect();
    assert_eq!(&docs, &*ALL);
}
