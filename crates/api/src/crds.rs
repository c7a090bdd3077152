//! The generated CustomResourceDefinitions and their YAML rendering.
//!
//! The binaries' `crd` subcommands print exactly [`to_yaml`] of [`provisioner`] and
//! [`ops_manager`]; `charts/kubedb-crds/templates/*.yaml` hold committed copies (written by
//! `make generate`, checked by the `crds` drift test).

use std::collections::BTreeMap;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::CustomResourceExt;

use crate::catalog::{MSSQLServerVersion, SinglestoreVersion};
use crate::mssql::MSSQLServer;
use crate::ops::{MSSQLServerOpsRequest, SinglestoreOpsRequest};
use crate::singlestore::Singlestore;

/// CRDs the provisioner owns: `MSSQLServer`, `Singlestore`, `MSSQLServerVersion`,
/// `SinglestoreVersion`.
pub fn provisioner() -> Vec<CustomResourceDefinition> {
    vec![
        MSSQLServer::crd(),
        Singlestore::crd(),
        MSSQLServerVersion::crd(),
        SinglestoreVersion::crd(),
    ]
}

/// CRDs the ops-manager owns: `MSSQLServerOpsRequest`, `SinglestoreOpsRequest`.
pub fn ops_manager() -> Vec<CustomResourceDefinition> {
    vec![MSSQLServerOpsRequest::crd(), SinglestoreOpsRequest::crd()]
}

/// All six CRDs.
pub fn all() -> Vec<CustomResourceDefinition> {
    let mut crds = provisioner();
    crds.extend(ops_manager());
    crds
}

/// Renders CRDs as multi-document YAML: each document starts with `---\n`. Deterministic:
/// every mapping is written with sorted keys, whatever serde_json features the build enables.
pub fn to_yaml(crds: &[CustomResourceDefinition]) -> String {
    let mut out = String::new();
    for crd in crds {
        out.push_str("---\n");
        // Serializing a CRD cannot fail: it is plain data with string keys only.
        let value = serde_json::to_value(crd).expect("CRD serializes to JSON");
        let doc = yaml_serde::to_string(&Canonical::from(value)).expect("CRD serializes to YAML");
        out.push_str(&doc);
    }
    out
}

/// A JSON value whose objects serialize with sorted keys.
#[derive(serde::Serialize)]
#[serde(untagged)]
enum Canonical {
    Null,
    Bool(bool),
    Number(serde_json::Number),
    String(String),
    Array(Vec<Canonical>),
    Object(BTreeMap<String, Canonical>),
}

impl From<serde_json::Value> for Canonical {
    fn from(value: serde_json::Value) -> Self {
        use serde_json::Value;
        match value {
            Value::Null => Self::Null,
            Value::Bool(b) => Self::Bool(b),
            Value::Number(n) => Self::Number(n),
            Value::String(s) => Self::String(s),
            Value::Array(items) => Self::Array(items.into_iter().map(Self::from).collect()),
            Value::Object(map) => {
                Self::Object(map.into_iter().map(|(k, v)| (k, Self::from(v))).collect())
            }
        }
    }
}
