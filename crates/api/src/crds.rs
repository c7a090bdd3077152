//! The generated CustomResourceDefinitions and their YAML rendering.
//!
//! The binaries' `crd` subcommands print exactly [`to_yaml`] of [`provisioner`] and
//! [`ops_manager`]; `charts/kubedb-crds/templates/*.yaml` hold committed copies (written by
//! `make generate`, checked by the `crds` drift test).

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

/// Renders CRDs as multi-document YAML: each document starts with `---\n`. Deterministic
/// (struct fields in declaration order, maps sorted).
pub fn to_yaml(crds: &[CustomResourceDefinition]) -> String {
    let mut out = String::new();
    for crd in crds {
        out.push_str("---\n");
        // Serializing a CRD cannot fail: it is plain data without non-string map keys.
        let doc = yaml_serde::to_string(crd).expect("CRD serializes to YAML");
        out.push_str(&doc);
    }
    out
}
