//! The objects a benchmark creates: databases of each topology, their prerequisites (an Issuer,
//! a license Secret) and UpdateVersion requests.

use std::time::Duration;

use api::mssql::MSSQLServer;
use api::ops::{MSSQLServerOpsRequest, SinglestoreOpsRequest};
use api::singlestore::Singlestore;
use k8s_openapi::api::core::v1::Secret;
use kube::api::DynamicObject;
use serde_json::{Value, json};

/// Namespace every benchmark object lives in.
pub const NAMESPACE: &str = "bench";
/// The self-signed cert-manager Issuer the databases' TLS uses.
pub const ISSUER: &str = "bench-issuer";
/// The SingleStore license Secret.
pub const LICENSE_SECRET: &str = "bench-license";
/// Version every MSSQLServer starts at.
pub const MSSQL_VERSION: &str = "2022-cu22";
/// Version the UpdateVersion requests move to (allowed from [`MSSQL_VERSION`] by the catalog).
pub const MSSQL_TARGET_VERSION: &str = "2025-cu0";
/// Version every Singlestore starts at.
pub const SINGLESTORE_VERSION: &str = "8.7.21";
/// Version the Singlestore UpdateVersion requests move to (allowed from
/// [`SINGLESTORE_VERSION`] by the catalog).
pub const SINGLESTORE_TARGET_VERSION: &str = "8.9.3";
/// `MASTER_LOST_AFTER` of the updated Singlestore's aggregator agents (the agent's default is
/// 30 s): how long a lost master's Lease must have been free before a child replaces it.
pub const MASTER_LOST_AFTER: Duration = Duration::from_secs(2);

/// One database to create.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Db {
    /// MSSQLServer with one replica.
    MssqlStandalone,
    /// MSSQLServer availability group with this many replicas.
    MssqlAg(i32),
    /// Singlestore cluster-in-a-box.
    SinglestoreStandalone,
    /// Singlestore with this many aggregators and leaves.
    SinglestoreTopology(i32, i32),
}

impl Db {
    /// Pods the database runs once Ready (an even AG also runs an arbiter).
    pub fn pods(self) -> usize {
        match self {
            Db::MssqlStandalone | Db::SinglestoreStandalone => 1,
            Db::MssqlAg(n) => n as usize + usize::from(n % 2 == 0),
            Db::SinglestoreTopology(a, l) => (a + l) as usize,
        }
    }
}

/// The i-th database of the mixed run: per ten, seven MSSQL standalone, one MSSQL AG of 3, one
/// Singlestore standalone and one Singlestore of 2 aggregators and 2 leaves (15 pods per ten).
pub fn mixed(i: usize) -> Db {
    match i % 10 {
        7 => Db::MssqlAg(3),
        8 => Db::SinglestoreStandalone,
        9 => Db::SinglestoreTopology(2, 2),
        _ => Db::MssqlStandalone,
    }
}

/// The name of the i-th database.
pub fn db_name(i: usize) -> String {
    format!("db-{i:04}")
}

fn tls() -> Value {
    json!({ "issuerRef": { "apiGroup": "cert-manager.io", "kind": "Issuer", "name": ISSUER } })
}

fn storage(size: &str) -> Value {
    json!({
        "storageClassName": "standard",
        "accessModes": ["ReadWriteOnce"],
        "resources": { "requests": { "storage": size } }
    })
}

fn mssql_pod_template() -> Value {
    json!({ "spec": { "containers": [{
        "name": "mssql",
        "env": [
            { "name": "ACCEPT_EULA", "value": "Y" },
            { "name": "MSSQL_PID", "value": "Evaluation" }
        ]
    }] } })
}

/// An MSSQLServer as the user guides write it (TLS from the bench Issuer, durable storage).
pub fn mssql(name: &str, replicas: Option<i32>) -> MSSQLServer {
    let mut spec = json!({
        "version": MSSQL_VERSION,
        "tls": tls(),
        "podTemplate": mssql_pod_template(),
        "storageType": "Durable",
        "storage": storage("1Gi"),
        "deletionPolicy": "WipeOut",
    });
    if let Some(n) = replicas {
        spec["replicas"] = json!(n);
        spec["topology"] = json!({
            "mode": "AvailabilityGroup",
            "availabilityGroup": { "databases": ["agdb1"] }
        });
    }
    serde_json::from_value(json!({
        "apiVersion": "kubedb.com/v1alpha2",
        "kind": "MSSQLServer",
        "metadata": { "name": name, "namespace": NAMESPACE },
        "spec": spec,
    }))
    .expect("the MSSQLServer literal matches the api types")
}

/// A Singlestore, standalone or with aggregators and leaves.
pub fn singlestore(name: &str, topology: Option<(i32, i32)>) -> Singlestore {
    let mut spec = json!({
        "version": SINGLESTORE_VERSION,
        "licenseSecret": { "kind": "Secret", "name": LICENSE_SECRET },
        "storageType": "Durable",
        "deletionPolicy": "WipeOut",
    });
    match topology {
        Some((aggregators, leaves)) => {
            spec["topology"] = json!({
                "aggregator": { "replicas": aggregators, "storage": storage("1Gi") },
                "leaf": { "replicas": leaves, "storage": storage("10Gi") },
            });
        }
        None => spec["storage"] = storage("1Gi"),
    }
    serde_json::from_value(json!({
        "apiVersion": "kubedb.com/v1alpha2",
        "kind": "Singlestore",
        "metadata": { "name": name, "namespace": NAMESPACE },
        "spec": spec,
    }))
    .expect("the Singlestore literal matches the api types")
}

/// A Singlestore of `aggregators` and `leaves` whose aggregator agents replace a lost master
/// after [`MASTER_LOST_AFTER`] (env of the `singlestore-coordinator` container, set through the
/// aggregators' pod template as a user would).
pub fn singlestore_with_grace(name: &str, aggregators: i32, leaves: i32) -> Singlestore {
    let mut db = singlestore(name, Some((aggregators, leaves)));
    let aggregator = db
        .spec
        .topology
        .as_mut()
        .and_then(|t| t.aggregator.as_mut())
        .expect("a topology with aggregators");
    aggregator.pod_template = Some(
        serde_json::from_value(json!({ "spec": { "containers": [{
            "name": api::names::singlestore::COORDINATOR_CONTAINER,
            "env": [{
                "name": "MASTER_LOST_AFTER",
                "value": format!("{}s", MASTER_LOST_AFTER.as_secs())
            }]
        }] } }))
        .expect("a valid pod template"),
    );
    db
}

fn update_request(kind: &str, name: &str, db: &str, target: &str) -> Value {
    json!({
        "apiVersion": "ops.kubedb.com/v1alpha1",
        "kind": kind,
        "metadata": { "name": name, "namespace": NAMESPACE },
        "spec": {
            "type": "UpdateVersion",
            "databaseRef": { "name": db },
            "updateVersion": { "targetVersion": target },
            "timeout": "10m",
            "apply": "IfReady",
        },
    })
}

/// An UpdateVersion request of an MSSQLServer to [`MSSQL_TARGET_VERSION`].
pub fn update_version(name: &str, db: &str) -> MSSQLServerOpsRequest {
    serde_json::from_value(update_request(
        "MSSQLServerOpsRequest",
        name,
        db,
        MSSQL_TARGET_VERSION,
    ))
    .expect("the MSSQLServerOpsRequest literal matches the api types")
}

/// An UpdateVersion request of a Singlestore to [`SINGLESTORE_TARGET_VERSION`].
pub fn singlestore_update_version(name: &str, db: &str) -> SinglestoreOpsRequest {
    serde_json::from_value(update_request(
        "SinglestoreOpsRequest",
        name,
        db,
        SINGLESTORE_TARGET_VERSION,
    ))
    .expect("the SinglestoreOpsRequest literal matches the api types")
}

/// The self-signed Issuer (cert-manager's types are not in this workspace).
pub fn issuer() -> DynamicObject {
    serde_json::from_value(json!({
        "apiVersion": "cert-manager.io/v1",
        "kind": "Issuer",
        "metadata": { "name": ISSUER, "namespace": NAMESPACE },
        "spec": { "selfSigned": {} },
    }))
    .expect("a valid DynamicObject")
}

/// The SingleStore license Secret (a placeholder key, which kube-sim's simulated nodes accept:
/// they check only that it looks like base64).
pub fn license_secret() -> Secret {
    serde_json::from_value(json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": { "name": LICENSE_SECRET, "namespace": NAMESPACE },
        "type": "kubernetes.io/basic-auth",
        "stringData": { "username": "license", "password": "YmVuY2gtcGxhY2Vob2xkZXItbGljZW5zZQ==" },
    }))
    .expect("a valid Secret")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pods_per_database() {
        let cases = [
            (Db::MssqlStandalone, 1),
            (Db::MssqlAg(3), 3),
            (Db::MssqlAg(2), 3),
            (Db::SinglestoreStandalone, 1),
            (Db::SinglestoreTopology(2, 2), 4),
        ];
        for (db, pods) in cases {
            assert_eq!(db.pods(), pods, "{db:?}");
        }
    }

    #[test]
    fn the_mix_has_every_topology_and_fifteen_pods_per_ten() {
        let ten: Vec<Db> = (0..10).map(mixed).collect();
        assert_eq!(ten.iter().map(|d| d.pods()).sum::<usize>(), 15);
        assert_eq!(
            ten.iter()
                .filter(|d| matches!(d, Db::MssqlStandalone | Db::MssqlAg(_)))
                .count(),
            8
        );
        assert!(ten.contains(&Db::MssqlAg(3)));
        assert!(ten.contains(&Db::SinglestoreStandalone));
        assert!(ten.contains(&Db::SinglestoreTopology(2, 2)));
        assert_eq!(mixed(17), Db::MssqlAg(3));
    }

    #[test]
    fn names_sort_in_creation_order() {
        assert_eq!(db_name(7), "db-0007");
        assert!(db_name(99) < db_name(100));
    }

    #[test]
    fn mssql_objects_carry_the_required_fields() {
        let standalone = mssql("a", None);
        assert_eq!(standalone.spec.version, MSSQL_VERSION);
        assert!(standalone.spec.tls.tls.issuer_ref.is_some());
        assert!(standalone.spec.topology.is_none());
        let ag = mssql("b", Some(5));
        assert_eq!(ag.spec.replicas, Some(5));
        assert!(ag.spec.topology.is_some());
        assert_eq!(ag.metadata.namespace.as_deref(), Some(NAMESPACE));
    }

    #[test]
    fn singlestore_objects_reference_the_license() {
        let s = singlestore("s", None);
        assert_eq!(s.spec.license_secret.name.as_deref(), Some(LICENSE_SECRET));
        assert!(s.spec.storage.is_some() && s.spec.topology.is_none());
        let t = singlestore("t", Some((2, 3)));
        assert_eq!(
            (t.spec.aggregator_replicas(), t.spec.leaf_replicas()),
            (Some(2), Some(3))
        );
    }

    #[test]
    fn update_requests_name_the_database_and_target() {
        let r = serde_json::to_value(update_version("u", "db")).unwrap();
        assert_eq!(r["spec"]["databaseRef"]["name"], "db");
        assert_eq!(
            r["spec"]["updateVersion"]["targetVersion"],
            MSSQL_TARGET_VERSION
        );
        assert_eq!(r["spec"]["type"], "UpdateVersion");
        let s = serde_json::to_value(singlestore_update_version("v", "sdb")).unwrap();
        assert_eq!(s["kind"], "SinglestoreOpsRequest");
        assert_eq!(s["spec"]["databaseRef"]["name"], "sdb");
        assert_eq!(
            s["spec"]["updateVersion"]["targetVersion"],
            SINGLESTORE_TARGET_VERSION
        );
    }

    #[test]
    fn the_updated_singlestore_sets_the_master_grace_on_its_aggregators() {
        let db = serde_json::to_value(singlestore_with_grace("g", 2, 2)).unwrap();
        let topology = &db["spec"]["topology"];
        assert_eq!(topology["leaf"]["replicas"], 2);
        assert!(topology["leaf"].get("podTemplate").is_none());
        let container = &topology["aggregator"]["podTemplate"]["spec"]["containers"][0];
        assert_eq!(container["name"], "singlestore-coordinator");
        assert_eq!(container["env"][0]["name"], "MASTER_LOST_AFTER");
        assert_eq!(container["env"][0]["value"], "2s");
    }
}
