//! Manifests written the way KubeDB's documentation writes them deserialize into the typed
//! objects and serialize back to the same JSON value.

use std::path::PathBuf;

use api::{
    MSSQLServer, MSSQLServerOpsRequest, MSSQLServerVersion, Singlestore, SinglestoreOpsRequest,
    SinglestoreVersion,
};
use serde::Deserialize;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

fn fixture_docs(name: &str) -> Vec<Value> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    yaml_serde::Deserializer::from_str(&text)
        .map(|doc| Value::deserialize(doc).unwrap_or_else(|e| panic!("{name}: {e}")))
        .collect()
}

/// Deserializes `doc` as `T`, serializes it again and asserts the JSON values are equal.
fn assert_round_trip<T: DeserializeOwned + Serialize>(name: &str, doc: &Value) -> T {
    let typed: T = serde_json::from_value(doc.clone())
        .unwrap_or_else(|e| panic!("{name}: does not deserialize: {e}"));
    let back = serde_json::to_value(&typed).expect("serializes");
    assert_eq!(
        &back, doc,
        "{name}: round trip changed the object\noriginal: {doc:#}\nafter:    {back:#}"
    );
    typed
}

fn round_trip_file<T: DeserializeOwned + Serialize>(name: &str, expected_docs: usize) -> Vec<T> {
    let docs = fixture_docs(name);
    assert_eq!(docs.len(), expected_docs, "{name}: number of documents");
    docs.iter()
        .map(|d| assert_round_trip::<T>(name, d))
        .collect()
}

#[test]
fn mssql_standalone_with_tls_issuer() {
    let [db]: [MSSQLServer; 1] = round_trip_file("mssql-standalone.yaml", 1)
        .try_into()
        .unwrap();
    assert!(db.spec.is_standalone());
    assert_eq!(db.spec.replicas(), 1);
    let issuer = db.spec.tls.tls.issuer_ref.as_ref().expect("issuerRef");
    assert_eq!(issuer.name, "mssqlserver-ca-issuer");
    assert!(!db.spec.tls.client_tls());
    let mssql = db
        .spec
        .pod_template
        .as_ref()
        .and_then(|t| t.container("mssql"))
        .expect("mssql container");
    let env = mssql.env.as_ref().expect("env");
    assert!(
        env.iter()
            .any(|e| e.name == "MSSQL_PID" && e.value.as_deref() == Some("Evaluation"))
    );
}

#[test]
fn mssql_availability_group_of_three_with_status() {
    let [db]: [MSSQLServer; 1] = round_trip_file("mssql-ag-cluster.yaml", 1)
        .try_into()
        .unwrap();
    assert!(db.spec.is_availability_group());
    assert_eq!(db.spec.replicas(), 3);
    assert!(!db.spec.needs_arbiter());
    let status = db.status.as_ref().expect("status");
    assert_eq!(status.conditions().len(), 6);
    assert_eq!(
        api::phase::phase_from_conditions(status.conditions()),
        Some(api::DatabasePhase::Ready)
    );
}

#[test]
fn singlestore_aggregator_leaf_cluster() {
    let [db]: [Singlestore; 1] = round_trip_file("sample-sdb.yaml", 1).try_into().unwrap();
    assert_eq!(db.spec.aggregator_replicas(), Some(1));
    assert_eq!(db.spec.leaf_replicas(), Some(2));
    assert_eq!(
        db.spec.license_secret.name.as_deref(),
        Some("license-secret")
    );
}

#[test]
fn mssql_ops_requests() {
    use api::ops::{ApplyPolicy, OpsRequestSpecExt, OpsRequestType};
    let [update]: [MSSQLServerOpsRequest; 1] = round_trip_file("msops-update-standalone.yaml", 1)
        .try_into()
        .unwrap();
    assert_eq!(update.spec.op_type(), OpsRequestType::UpdateVersion);
    assert_eq!(update.spec.target_version(), Some("2025-cu0"));
    assert_eq!(
        update.spec.timeout().unwrap(),
        Some(std::time::Duration::from_secs(300))
    );
    assert_eq!(update.spec.max_retries(), 1);

    let [vscale]: [MSSQLServerOpsRequest; 1] = round_trip_file("msops-vertical-scaling.yaml", 1)
        .try_into()
        .unwrap();
    assert_eq!(vscale.spec.op_type(), OpsRequestType::VerticalScaling);
    assert_eq!(vscale.spec.max_retries(), 2);
    assert_eq!(
        vscale.status.as_ref().and_then(|s| s.phase),
        Some(api::OpsRequestPhase::Successful)
    );

    let [reconf]: [MSSQLServerOpsRequest; 1] = round_trip_file("msops-reconfigure.yaml", 1)
        .try_into()
        .unwrap();
    assert_eq!(reconf.spec.apply(), ApplyPolicy::Always);
}

#[test]
fn singlestore_ops_requests() {
    use api::ops::{ApplyPolicy, OpsRequestSpecExt, OpsRequestType};
    let [update]: [SinglestoreOpsRequest; 1] =
        round_trip_file("sdbops-update.yaml", 1).try_into().unwrap();
    assert_eq!(update.spec.target_version(), Some("8.9.3"));
    assert_eq!(update.spec.apply(), ApplyPolicy::IfReady);
    assert_eq!(update.spec.timeout().unwrap(), None);

    let [scale]: [SinglestoreOpsRequest; 1] = round_trip_file("sdbops-horizontal-scaling.yaml", 1)
        .try_into()
        .unwrap();
    assert_eq!(scale.spec.op_type(), OpsRequestType::HorizontalScaling);

    let [restart]: [SinglestoreOpsRequest; 1] = round_trip_file("sdbops-restart.yaml", 1)
        .try_into()
        .unwrap();
    assert!(restart.spec.restart.is_some());
}

#[test]
fn catalog_versions_round_trip_and_match_the_fixture_builders() {
    let ms: Vec<MSSQLServerVersion> = round_trip_file("mssqlserverversions.yaml", 6);
    // Our catalog is KubeDB's except for the coordinator: it names our agent.
    let mut built = api::fixtures::mssql_versions();
    for v in &mut built {
        assert_eq!(
            v.spec.coordinator.image,
            api::fixtures::MSSQL_COORDINATOR_IMAGE
        );
        v.spec.coordinator.image = "ghcr.io/kubedb/mssql-coordinator:v0.22.0-rc.0".into();
    }
    assert_eq!(
        serde_json::to_value(&ms).unwrap(),
        serde_json::to_value(&built).unwrap(),
        "fixtures::mssql_versions() differs from tests/fixtures/mssqlserverversions.yaml"
    );
    let sdb: Vec<SinglestoreVersion> = round_trip_file("singlestoreversions.yaml", 6);
    // Our catalog names the agent where KubeDB's names its singlestore-coordinator.
    let mut built = api::fixtures::singlestore_versions();
    for v in &mut built {
        assert_eq!(
            v.spec.coordinator.image,
            api::fixtures::SINGLESTORE_COORDINATOR_IMAGE
        );
        v.spec.coordinator.image = "ghcr.io/kubedb/singlestore-coordinator:v0.22.0-rc.0".into();
    }
    assert_eq!(
        serde_json::to_value(&sdb).unwrap(),
        serde_json::to_value(&built).unwrap(),
        "fixtures::singlestore_versions() differs from tests/fixtures/singlestoreversions.yaml"
    );
}

#[test]
fn unknown_optional_fields_are_not_invented() {
    // A minimal object must serialize without any defaulted field.
    let doc = serde_json::json!({
        "apiVersion": "kubedb.com/v1alpha2",
        "kind": "MSSQLServer",
        "metadata": {"name": "m"},
        "spec": {"version": "2022-cu22", "tls": {}},
    });
    let db: MSSQLServer = assert_round_trip("minimal", &doc);
    assert_eq!(
        db.spec.deletion_policy(),
        api::common::DeletionPolicy::Delete
    );
    assert_eq!(db.spec.storage_type(), api::common::StorageType::Durable);
    assert_eq!(db.spec.health_checker().period_seconds(), 10);
    assert_eq!(db.spec.health_checker().failure_threshold(), 1);
}

#[test]
fn mssql_distributed_ag_with_most_fields() {
    let [db]: [MSSQLServer; 1] = round_trip_file("mssql-dag-full.yaml", 1)
        .try_into()
        .unwrap();
    assert!(db.spec.is_distributed_ag());
    let ag = db
        .spec
        .topology
        .as_ref()
        .and_then(|t| t.availability_group.as_ref())
        .unwrap();
    assert_eq!(
        ag.leader_election().period(),
        Ok(std::time::Duration::from_millis(300))
    );
    assert_eq!(
        ag.secondary_access_mode(),
        api::mssql::SecondaryAccessMode::ReadOnly
    );
    assert_eq!(db.spec.deletion_policy(), api::common::DeletionPolicy::Halt);
    assert_eq!(db.spec.health_checker().failure_threshold(), 3);
    assert!(db.spec.tls.client_tls());
    assert_eq!(
        db.spec.monitor.as_ref().unwrap()["prometheus"]["exporter"]["port"],
        9399
    );
}

#[test]
fn singlestore_standalone_with_most_fields() {
    let [db]: [Singlestore; 1] = round_trip_file("sdb-standalone-full.yaml", 1)
        .try_into()
        .unwrap();
    assert!(db.spec.is_standalone());
    assert_eq!(
        db.spec.deletion_policy(),
        api::common::DeletionPolicy::DoNotTerminate
    );
    assert_eq!(db.spec.health_checker().timeout_seconds(), 10);
}
