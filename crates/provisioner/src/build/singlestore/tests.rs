use super::*;
use serde_json::json;

fn version(name: &str) -> SinglestoreVersion {
    api::fixtures::singlestore_versions()
        .into_iter()
        .find(|v| v.metadata.name.as_deref() == Some(name))
        .unwrap()
}

fn db(spec: Value) -> Singlestore {
    let mut base = json!({
        "version": "8.7.21",
        "storage": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}},
        "licenseSecret": {"name": "license"},
    });
    for (k, v) in spec.as_object().unwrap() {
        base[k] = v.clone();
    }
    serde_json::from_value(json!({
        "apiVersion": "kubedb.com/v1alpha2", "kind": "Singlestore",
        "metadata": {"name": "sdb", "namespace": "demo", "uid": "0000-abcdef123456"},
        "spec": base,
    }))
    .unwrap()
}

fn plan_of(db: &Singlestore) -> Desired {
    let sources = BTreeMap::new();
    plan(
        db,
        &PlanInput {
            version: &version("8.7.21"),
            config_sources: &sources,
        },
    )
    .unwrap()
}

fn sets(desired: &Desired) -> Vec<(String, Value)> {
    desired
        .rendered()
        .unwrap()
        .into_iter()
        .filter(|c| c.kind == crate::plan::ChildKind::StatefulSet)
        .map(|c| (c.name, c.body))
        .collect()
}

#[test]
fn standalone_uses_cluster_in_a_box() {
    let desired = plan_of(&db(json!({})));
    let sets = sets(&desired);
    assert_eq!(sets.len(), 1);
    let (name, sts) = &sets[0];
    assert_eq!(name, "sdb");
    let containers = sts["spec"]["template"]["spec"]["containers"]
        .as_array()
        .unwrap();
    assert_eq!(containers.len(), 1);
    assert_eq!(
        containers[0]["image"],
        version("8.7.21").spec.standalone.unwrap().image
    );
    let env = &containers[0]["env"];
    assert!(
        env.as_array().unwrap().iter().any(
            |e| e["valueFrom"]["secretKeyRef"] == json!({"name": "license", "key": "password"})
        )
    );
    assert_eq!(
        sts["spec"]["template"]["spec"]["initContainers"][0]["name"],
        "singlestore-init"
    );
    assert_eq!(containers[0]["securityContext"]["runAsUser"], 999);
    assert_eq!(containers[0]["securityContext"]["runAsGroup"], 998);
    assert_eq!(desired.generated_secrets[0].name, "sdb-auth");
    assert_eq!(desired.generated_secrets[0].fixed["username"], "root");
    assert!(desired.certificate_secrets().is_empty());
}

#[test]
fn topology_with_suffix_and_tls() {
    let spec = json!({
        "topology": {
            "aggregator": {"replicas": 2, "suffix": "x"},
            "leaf": {"replicas": 3},
        },
        "tls": {"issuerRef": {"apiGroup": "cert-manager.io", "kind": "Issuer", "name": "ca"}},
    });
    let desired = plan_of(&db(spec));
    let sets = sets(&desired);
    let names: Vec<&str> = sets.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["sdb-x-aggregator", "sdb-leaf"]);
    let (_, agg) = &sets[0];
    assert_eq!(agg["spec"]["replicas"], 2);
    let containers: Vec<&str> = agg["spec"]["template"]["spec"]["containers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(containers, ["singlestore", "singlestore-coordinator"]);
    assert_eq!(
        agg["spec"]["template"]["spec"]["containers"][0]["image"],
        "ghcr.io/appscode-images/singlestore-node:alma-8.7.21-f0b8de04d5"
    );
    let mounts = agg["spec"]["template"]["spec"]["containers"][0]["volumeMounts"]
        .as_array()
        .unwrap();
    assert!(mounts.iter().any(|m| m["mountPath"] == "/etc/memsql/certs"));
    assert_eq!(sets[1].1["spec"]["replicas"], 3);
    let primary = desired
        .rendered()
        .unwrap()
        .into_iter()
        .find(|c| c.kind == crate::plan::ChildKind::Service && c.name == "sdb")
        .unwrap();
    assert_eq!(
        primary.body["spec"]["selector"]["kubedb.com/petset"],
        "sdb-x-aggregator"
    );
    assert_eq!(
        desired.certificate_secrets(),
        ["sdb-server-cert", "sdb-client-cert"]
    );
    let pdbs: Vec<&str> = desired
        .pdbs
        .iter()
        .map(crate::plan::ChildObject::child_name)
        .collect();
    assert_eq!(pdbs, ["sdb-x-aggregator", "sdb-leaf"]);
    // Every node offers TLS with the mounted certificate, through its configuration secret.
    assert!(
        mounts
            .iter()
            .any(|m| m["mountPath"] == "/etc/memsql/conf.d")
    );
    let tls_files: Vec<String> = desired
        .secrets
        .iter()
        .map(|s| s.string_data.as_ref().unwrap()[TLS_CONFIG_KEY].clone())
        .collect();
    assert_eq!(tls_files.len(), 2, "one configuration secret per node set");
    for file in tls_files {
        assert_eq!(
            file,
            "[server]\nssl_cert = /etc/memsql/certs/tls.crt\nssl_key = /etc/memsql/certs/tls.key\n"
        );
    }
    let mut with_tls = db(json!({
        "topology": {"aggregator": {"replicas": 1}, "leaf": {"replicas": 1}},
        "tls": {"issuerRef": {"apiGroup": "cert-manager.io", "kind": "Issuer", "name": "ca"}},
    }));
    assert_eq!(with_tls.sql_ca_secret().as_deref(), Some("sdb-server-cert"));
    with_tls.spec.tls = None;
    assert_eq!(with_tls.sql_ca_secret(), None);
}

#[test]
fn the_users_own_ssl_settings_win() {
    let user = |content: &str| BTreeMap::from([("sdb-config.cnf".to_owned(), content.to_owned())]);
    assert!(tls_config(None).is_some());
    assert!(tls_config(Some(&user("[server]\nmax_connections = 250\n"))).is_some());
    for own in [
        "ssl_cert = /mine.pem",
        "ssl-key=/mine.key",
        "  ssl_cert\t= x",
    ] {
        assert_eq!(tls_config(Some(&user(own))), None, "{own}");
    }
}

#[test]
fn validation() {
    let mut no_license = db(json!({}));
    no_license.spec.license_secret.name = None;
    assert!(
        validate(&no_license)
            .unwrap_err()
            .message
            .contains("licenseSecret")
    );
    let mut no_storage = db(json!({}));
    no_storage.spec.storage = None;
    assert!(
        validate(&no_storage)
            .unwrap_err()
            .message
            .contains("spec.storage")
    );
    let ephemeral = db(json!({"storageType": "Ephemeral", "storage": null}));
    assert!(validate(&ephemeral).is_ok());
}

#[test]
fn cluster_agents_get_their_identity_and_permissions() {
    let desired = plan_of(&db(json!({
        "authSecret": {"name": "root-creds"},
        "topology": {"aggregator": {"replicas": 2}, "leaf": {"replicas": 1,
            "podTemplate": {"spec": {"serviceAccountName": "leaf-sa"}}}}})));
    let child = |kind: crate::plan::ChildKind, name: &str| {
        desired
            .rendered()
            .unwrap()
            .into_iter()
            .find(|c| c.kind == kind && c.name == name)
            .unwrap_or_else(|| panic!("{kind:?} {name}"))
            .body
    };
    let role = child(crate::plan::ChildKind::Role, "sdb");
    assert_eq!(
        role["rules"][0]["resourceNames"],
        json!(["sdb-aggregator-0", "sdb-aggregator-1", "sdb-leaf-0"])
    );
    assert_eq!(role["rules"][1]["resourceNames"], json!(["sdb-master"]));
    assert_eq!(
        role["rules"][3]["resourceNames"],
        json!(["license", "root-creds"])
    );
    let binding = child(crate::plan::ChildKind::RoleBinding, "sdb");
    let subjects: Vec<&str> = binding["subjects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(subjects, ["leaf-sa", "sdb"]);
    child(crate::plan::ChildKind::ServiceAccount, "sdb");
    for (set, account) in [("sdb-aggregator", "sdb"), ("sdb-leaf", "leaf-sa")] {
        let (_, sts) = sets(&desired).into_iter().find(|(n, _)| n == set).unwrap();
        let pod = &sts["spec"]["template"]["spec"];
        assert_eq!(pod["serviceAccountName"], account, "{set}");
        let mounts = &pod["containers"][1]["volumeMounts"];
        assert_eq!(pod["containers"][1]["name"], "singlestore-coordinator");
        assert!(
            mounts
                .as_array()
                .unwrap()
                .iter()
                .any(|m| m["name"] == "agent-api-access"),
            "{set}: {mounts}"
        );
    }
    // Standalone (cluster-in-a-box) has no agent: no token, no RBAC.
    let standalone = plan_of(&db(json!({})));
    assert!(standalone.service_accounts.is_empty() && standalone.roles.is_empty());
    assert!(standalone.role_bindings.is_empty());
    let (_, sts) = &sets(&standalone)[0];
    assert_eq!(
        sts["spec"]["template"]["spec"]["automountServiceAccountToken"],
        false
    );
}

#[test]
fn probes_per_topology() {
    let standalone = plan_of(&db(json!({})));
    let (_, sts) = &sets(&standalone)[0];
    let node = &sts["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(node["startupProbe"]["tcpSocket"]["port"], "db");
    assert_eq!(node["startupProbe"]["failureThreshold"], 60);
    assert_eq!(node["readinessProbe"]["tcpSocket"]["port"], "db");
    assert!(node.get("livenessProbe").is_none());
    let cluster = plan_of(&db(json!({"topology": {"aggregator": {}, "leaf": {}}})));
    for (name, sts) in sets(&cluster) {
        let containers = &sts["spec"]["template"]["spec"]["containers"];
        assert_eq!(
            containers[0]["startupProbe"]["tcpSocket"]["port"], "db",
            "{name}"
        );
        assert_eq!(
            containers[0]["readinessProbe"]["httpGet"],
            json!({"path": "/ready", "port": 2379}),
            "{name}"
        );
        assert_eq!(containers[1]["name"], "singlestore-coordinator");
        assert_eq!(
            containers[1]["ports"],
            json!([{"name": "coordinatclient", "containerPort": 2379, "protocol": "TCP"}])
        );
        assert_eq!(
            containers[1]["livenessProbe"]["httpGet"],
            json!({"path": "/healthz", "port": "coordinatclient"}),
            "{name}"
        );
        assert!(
            containers[1]["env"]
                .as_array()
                .unwrap()
                .iter()
                .any(|e| e["name"] == "POD_IP"),
            "{name}"
        );
    }
}
