//! Golden files of every child the builders render, per topology: the exact JSON of each child, the
//! order of the children of each kind, the secrets generated once and the certificate secrets the
//! pods wait for. A change to a builder that alters any of them fails here; when the change is
//! intended, `UPDATE_GOLDEN=1 cargo test -p provisioner --test golden` rewrites the files and the
//! diff shows what a user's objects gain or lose.

use std::collections::BTreeMap;
use std::path::PathBuf;

use api::catalog::{MSSQLServerVersion, SinglestoreVersion};
use api::{MSSQLServer, Singlestore};
use provisioner::database::{Database, PlanInput};
use serde_json::{Value, json};

mod render;

fn mssql_version() -> MSSQLServerVersion {
    api::fixtures::mssql_versions()
        .into_iter()
        .find(|v| v.metadata.name.as_deref() == Some("2022-cu22"))
        .expect("fixture version")
}

fn singlestore_version() -> SinglestoreVersion {
    api::fixtures::singlestore_versions()
        .into_iter()
        .find(|v| v.metadata.name.as_deref() == Some("8.7.21"))
        .expect("fixture version")
}

fn object<K: serde::de::DeserializeOwned>(kind: &str, name: &str, spec: Value) -> K {
    serde_json::from_value(json!({
        "apiVersion": "kubedb.com/v1alpha2", "kind": kind,
        "metadata": {"name": name, "namespace": "demo", "uid": "0000-abcdef123456", "generation": 1},
        "spec": spec,
    }))
    .expect("a valid database object")
}

/// A user's configuration secret, as the reconciler reads it.
fn sources() -> BTreeMap<String, BTreeMap<String, String>> {
    BTreeMap::from([(
        "user-conf".to_owned(),
        BTreeMap::from([
            (
                "mssql.conf".to_owned(),
                "[network]\ntlsprotocols = 1.2\n".to_owned(),
            ),
            ("extra.cnf".to_owned(), "a = 1\n".to_owned()),
        ]),
    )])
}

fn mssql_cases() -> Vec<(&'static str, Value)> {
    let pid = json!({"spec": {"containers": [{"name": "mssql", "env": [
        {"name": "ACCEPT_EULA", "value": "Y"}, {"name": "MSSQL_PID", "value": "Evaluation"}]}]}});
    let storage =
        json!({"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}});
    let tls = json!({"issuerRef": {"apiGroup": "cert-manager.io", "kind": "Issuer", "name": "ca"}});
    vec![
        (
            "mssql-standalone",
            json!({"version": "2022-cu22", "storage": storage, "tls": tls, "podTemplate": pid}),
        ),
        (
            "mssql-standalone-ephemeral",
            json!({"version": "2022-cu22", "storageType": "Ephemeral", "tls": tls, "podTemplate": pid,
                   "halted": false, "deletionPolicy": "WipeOut"}),
        ),
        (
            "mssql-ag-3",
            json!({"version": "2022-cu22", "replicas": 3, "storage": storage, "tls": tls, "podTemplate": pid,
                   "topology": {"mode": "AvailabilityGroup", "availabilityGroup": {"databases": ["agdb1", "agdb2"]}}}),
        ),
        (
            "mssql-ag-2-arbiter",
            json!({"version": "2022-cu22", "replicas": 2, "tls": tls, "podTemplate": pid,
                   "storage": {"storageClassName": "fast", "accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}},
                   "topology": {"mode": "AvailabilityGroup"},
                   "arbiter": {"resources": {"requests": {"cpu": "100m", "memory": "128Mi"}},
                               "nodeSelector": {"role": "arbiter"},
                               "tolerations": [{"key": "arbiter", "operator": "Exists", "effect": "NoSchedule"}]}}),
        ),
        (
            "mssql-ag-4-arbiter-ephemeral",
            json!({"version": "2022-cu22", "replicas": 4, "storageType": "Ephemeral", "tls": tls, "podTemplate": pid,
                   "topology": {"mode": "AvailabilityGroup"}}),
        ),
        (
            "mssql-ag-3-full",
            json!({
                "version": "2022-cu22", "replicas": 3, "storage": storage,
                "authSecret": {"name": "my-sa"},
                "configuration": {"secretName": "user-conf", "inline": {"mssql.conf": "[memory]\nmemorylimitmb = 2048\n"}},
                "topology": {"mode": "AvailabilityGroup", "availabilityGroup": {
                    "databases": ["agdb"], "loginSecretName": "my-login", "masterKeySecretName": "my-master",
                    "leaderElection": {"electionTick": 20, "heartbeatTick": 2, "period": "300ms"}}},
                "tls": {"issuerRef": {"apiGroup": "cert-manager.io", "kind": "ClusterIssuer", "name": "ca"},
                        "certificates": [
                            {"alias": "client", "secretName": "my-client", "dnsNames": ["extra.example"],
                             "duration": "2160h", "renewBefore": "360h"},
                            {"alias": "server", "subject": {"organizations": ["acme"]}, "ipAddresses": ["10.0.0.1"],
                             "privateKey": {"encoding": "PKCS8"}}]},
                "monitor": {"agent": "prometheus.io/operator", "prometheus": {"exporter": {"port": 9500}}},
                "serviceTemplates": [
                    {"alias": "primary", "metadata": {"labels": {"team": "a"}, "annotations": {"note": "x"}},
                     "spec": {"type": "LoadBalancer", "ports": [{"name": "db", "port": 11433}]}},
                    {"alias": "secondary", "spec": {"type": "NodePort"}},
                    {"alias": "stats", "metadata": {"annotations": {"scrape": "yes"}}}],
                "podTemplate": {
                    "metadata": {"labels": {"app": "orders"}, "annotations": {"owner": "team-a"}},
                    "controller": {"labels": {"tier": "db"}, "annotations": {"pinned": "1"}},
                    "spec": {
                        "containers": [
                            {"name": "mssql", "env": [{"name": "ACCEPT_EULA", "value": "Y"},
                                                      {"name": "MSSQL_PID", "value": "Developer"}],
                             "resources": {"requests": {"cpu": "2", "memory": "4Gi"}, "limits": {"memory": "4Gi"}},
                             "volumeMounts": [{"name": "backup", "mountPath": "/backup"}]},
                            {"name": "log-shipper", "image": "busybox:1.36", "args": ["tail", "-F", "/var/opt/mssql/log/errorlog"]}],
                        "volumes": [{"name": "backup", "emptyDir": {}}],
                        "nodeSelector": {"disk": "ssd"},
                        "securityContext": {"runAsNonRoot": true},
                        "podPlacementPolicy": {"name": "default"}}}}),
        ),
    ]
}

fn singlestore_cases() -> Vec<(&'static str, Value)> {
    let storage =
        json!({"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}});
    vec![
        (
            "singlestore-standalone",
            json!({"version": "8.7.21", "storage": storage, "licenseSecret": {"name": "license"}}),
        ),
        (
            "singlestore-standalone-tls-ephemeral",
            json!({"version": "8.7.21", "storageType": "Ephemeral", "licenseSecret": {"name": "license"},
                   "configuration": {"secretName": "user-conf", "inline": {"sdb-apply.cnf": "max_connection_threads = 128\n"}},
                   "tls": {"issuerRef": {"apiGroup": "cert-manager.io", "kind": "Issuer", "name": "sdb-ca"},
                           "certificates": [{"alias": "server", "subject": {"organizations": ["kubedb:server"]}}]},
                   "serviceTemplates": [{"alias": "primary", "spec": {"type": "NodePort"}}],
                   "monitor": {"agent": "prometheus.io/builtin", "prometheus": {"exporter": {"port": 9104}}}}),
        ),
        (
            "singlestore-cluster",
            json!({"version": "8.7.21", "storage": storage, "licenseSecret": {"name": "license"},
                   "topology": {"aggregator": {"replicas": 2}, "leaf": {"replicas": 3}}}),
        ),
        (
            "singlestore-cluster-full",
            json!({
                "version": "8.7.21", "licenseSecret": {"name": "license"}, "authSecret": {"name": "sdb-root"},
                "configuration": {"inline": {"common.cnf": "x = 1\n"}},
                "tls": {"issuerRef": {"apiGroup": "cert-manager.io", "kind": "Issuer", "name": "sdb-ca"}},
                "monitor": {"agent": "prometheus.io/operator"},
                "serviceTemplates": [{"alias": "stats", "metadata": {"labels": {"scrape": "yes"}}}],
                "topology": {
                    "aggregator": {"replicas": 3, "suffix": "agg",
                        "storage": {"storageClassName": "fast", "accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "2Gi"}}},
                        "configuration": {"secretName": "user-conf"},
                        "podTemplate": {"metadata": {"labels": {"kubedb.com/node-type": "custom"}},
                                        "controller": {"annotations": {"pinned": "1"}},
                                        "spec": {"containers": [{"name": "singlestore", "resources": {"requests": {"cpu": "1", "memory": "4Gi"}}}]}}},
                    "leaf": {"replicas": 2,
                        "storage": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "10Gi"}}},
                        "podTemplate": {"spec": {"tolerations": [{"key": "leaf", "operator": "Exists"}],
                                                 "initContainers": [{"name": "singlestore-init", "resources": {"limits": {"memory": "1Gi"}}}]}}}}}),
        ),
    ]
}

fn check(name: &str, rendered: Value) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(format!("{name}.json"));
    let text = serde_json::to_string_pretty(&rendered).expect("JSON") + "\n";
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, &text).expect("write golden file");
        return;
    }
    let golden = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e}; run with UPDATE_GOLDEN=1 to create it",
            path.display()
        )
    });
    let golden: Value = serde_json::from_str(&golden).expect("golden JSON");
    if golden != rendered {
        let actual = path.with_extension("actual.json");
        std::fs::write(&actual, &text).expect("write actual");
        panic!(
            "{name}: the rendered children differ from {}; compare with {} (UPDATE_GOLDEN=1 accepts them)",
            path.display(),
            actual.display()
        );
    }
}

/// Plans every case of one database kind and checks it against its golden file.
fn check_cases<K: Database>(
    kind: &str,
    name: &str,
    version: &K::Version,
    cases: Vec<(&str, Value)>,
) {
    let sources = sources();
    for (case, spec) in cases {
        let db: K = object(kind, name, spec);
        let desired = db
            .plan(&PlanInput {
                version,
                config_sources: &sources,
            })
            .unwrap_or_else(|e| panic!("{case}: {e}"));
        check(case, render::desired(&desired));
    }
}

#[test]
fn mssql_children_match_their_golden_files() {
    check_cases::<MSSQLServer>("MSSQLServer", "ms", &mssql_version(), mssql_cases());
}

#[test]
fn singlestore_children_match_their_golden_files() {
    check_cases::<Singlestore>(
        "Singlestore",
        "sdb",
        &singlestore_version(),
        singlestore_cases(),
    );
}
