//! The generated CEL rules (`x-kubernetes-validations`) evaluated client-side with kube-cel:
//! every documented fixture passes, and each rule rejects what it is meant to reject with its
//! message. This also proves every rule compiles.

use std::path::PathBuf;
use std::sync::LazyLock;

use kube_cel::Validator;
use serde::Deserialize;
use serde_json::{Value, json};

static CRDS: LazyLock<Vec<(String, Value)>> = LazyLock::new(|| {
    api::crds::all()
        .into_iter()
        .map(|crd| {
            let schema = crd.spec.versions[0]
                .schema
                .as_ref()
                .and_then(|s| s.open_api_v3_schema.as_ref())
                .expect("schema");
            (
                crd.spec.names.kind.clone(),
                serde_json::to_value(schema).unwrap(),
            )
        })
        .collect()
});

fn schema(kind: &str) -> &'static Value {
    &CRDS.iter().find(|(k, _)| k == kind).expect("kind").1
}

/// Messages of the rules that fail for `object` (creation, or update from `old`).
fn failures(object: &Value, old: Option<&Value>) -> Vec<String> {
    let kind = object["kind"].as_str().expect("kind");
    match Validator::new().validate(schema(kind), object, old) {
        Ok(()) => Vec::new(),
        Err(errors) => errors.into_vec().into_iter().map(|e| e.message).collect(),
    }
}

fn fixture(name: &str) -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    let text = std::fs::read_to_string(path).unwrap();
    yaml_serde::Deserializer::from_str(&text)
        .map(|d| Value::deserialize(d).unwrap())
        .next()
        .unwrap()
}

fn assert_rejected(object: &Value, old: Option<&Value>, message: &str) {
    let got = failures(object, old);
    assert!(
        got.iter().any(|m| m == message),
        "expected rejection {message:?}, got {got:?}"
    );
}

#[test]
fn documented_manifests_pass_every_rule() {
    for name in [
        "mssql-standalone.yaml",
        "mssql-ag-cluster.yaml",
        "sample-sdb.yaml",
        "msops-update-standalone.yaml",
        "msops-vertical-scaling.yaml",
        "msops-reconfigure.yaml",
        "sdbops-update.yaml",
        "sdbops-horizontal-scaling.yaml",
        "sdbops-restart.yaml",
        "mssql-dag-full.yaml",
        "sdb-standalone-full.yaml",
    ] {
        let object = fixture(name);
        assert_eq!(failures(&object, None), Vec::<String>::new(), "{name}");
        assert_eq!(
            failures(&object, Some(&object)),
            Vec::<String>::new(),
            "{name} (update)"
        );
    }
}

#[test]
fn database_name_pattern_and_length() {
    let mut db = fixture("mssql-standalone.yaml");
    db["metadata"]["name"] = json!("MSSQL_1");
    assert_rejected(
        &db,
        None,
        "metadata.name must consist of lower-case letters, digits and '-', start with a letter and end with a letter or digit",
    );
    db["metadata"]["name"] = json!("a".repeat(64));
    assert_rejected(&db, None, "metadata.name must be at most 63 characters");
    db["metadata"]["name"] = json!("a".repeat(63));
    assert_eq!(failures(&db, None), Vec::<String>::new());

    let mut sdb = fixture("sample-sdb.yaml");
    sdb["metadata"]["name"] = json!("-sdb");
    assert_eq!(failures(&sdb, None).len(), 1);
}

#[test]
fn mssql_rules() {
    let mut db = fixture("mssql-standalone.yaml");
    db["spec"]["replicas"] = json!(3);
    assert_rejected(&db, None, "number of replicas for standalone must be one");

    let mut ag = fixture("mssql-ag-cluster.yaml");
    ag["spec"]["replicas"] = json!(0);
    assert_rejected(&ag, None, "spec.replicas must be greater than zero");

    let mut no_issuer = fixture("mssql-standalone.yaml");
    no_issuer["spec"]["tls"] = json!({"clientTLS": false});
    assert_rejected(&no_issuer, None, "spec.tls.issuerRef is required");

    let mut dag = fixture("mssql-ag-cluster.yaml");
    dag["spec"]["topology"] = json!({"mode": "DistributedAG"});
    assert_rejected(
        &dag,
        None,
        "spec.topology.distributedAG is required when mode is DistributedAG",
    );

    let mut no_storage = fixture("mssql-standalone.yaml");
    no_storage["spec"]
        .as_object_mut()
        .unwrap()
        .remove("storage");
    no_storage["spec"]
        .as_object_mut()
        .unwrap()
        .remove("storageType");
    // storageType defaults to Durable, and Durable needs storage.
    assert_rejected(
        &no_storage,
        None,
        "spec.storage is required when spec.storageType is Durable",
    );
}

#[test]
fn singlestore_rules() {
    let mut sdb = fixture("sample-sdb.yaml");
    sdb["spec"]["topology"]
        .as_object_mut()
        .unwrap()
        .remove("leaf");
    assert_rejected(&sdb, None, "spec.topology needs both aggregator and leaf");

    let mut sdb = fixture("sample-sdb.yaml");
    sdb["spec"]["topology"]["leaf"]["replicas"] = json!(0);
    assert_rejected(&sdb, None, "replicas must be greater than zero");

    let mut sdb = fixture("sample-sdb.yaml");
    sdb["spec"]["version"] = json!("");
    assert_rejected(&sdb, None, "spec.version must name a SinglestoreVersion");
}

#[test]
fn ops_request_spec_is_immutable() {
    let old = fixture("msops-update-standalone.yaml");
    let mut new = old.clone();
    new["spec"]["updateVersion"]["targetVersion"] = json!("2022-cu22");
    assert_rejected(&new, Some(&old), "spec is immutable after creation");

    // Status changes are fine.
    let mut status_only = old.clone();
    status_only["status"] = json!({"phase": "Progressing"});
    assert_eq!(failures(&status_only, Some(&old)), Vec::<String>::new());

    let old = fixture("sdbops-restart.yaml");
    let mut new = old.clone();
    new["spec"]["timeout"] = json!("10m");
    assert_rejected(&new, Some(&old), "spec is immutable after creation");
}

#[test]
fn ops_request_type_needs_its_section() {
    let mut update = fixture("sdbops-update.yaml");
    update["spec"]
        .as_object_mut()
        .unwrap()
        .remove("updateVersion");
    assert_rejected(
        &update,
        None,
        "spec.updateVersion.targetVersion is required for type UpdateVersion",
    );

    let mut scale = fixture("sdbops-horizontal-scaling.yaml");
    scale["spec"]["horizontalScaling"] = json!({"leaf": 0});
    assert_rejected(
        &scale,
        None,
        "horizontalScaling.leaf must be greater than zero",
    );

    let mut vscale = fixture("msops-vertical-scaling.yaml");
    vscale["spec"]
        .as_object_mut()
        .unwrap()
        .remove("verticalScaling");
    assert_rejected(
        &vscale,
        None,
        "spec.verticalScaling is required for type VerticalScaling",
    );

    let mut reconf = fixture("msops-reconfigure.yaml");
    reconf["spec"]["configuration"] = json!({"restart": "true"});
    assert_rejected(
        &reconf,
        None,
        "one of configSecret, applyConfig or removeCustomConfig is required",
    );

    let mut tls = fixture("msops-update-standalone.yaml");
    tls["spec"]["type"] = json!("ReconfigureTLS");
    tls["spec"]["tls"] = json!({"rotateCertificates": true, "remove": true});
    assert_rejected(
        &tls,
        None,
        "exactly one of remove, rotateCertificates or issuerRef/certificates/clientTLS must be set",
    );

    let mut migrate = fixture("sdbops-restart.yaml");
    migrate["spec"]["type"] = json!("StorageMigration");
    migrate["spec"].as_object_mut().unwrap().remove("timeout");
    migrate["spec"]["migration"] = json!({"leaf": {"storageClassName": "fast"}});
    assert_rejected(
        &migrate,
        None,
        "spec.migration and spec.timeout are required for type StorageMigration",
    );
}
