use super::*;
use api::catalog::MSSQLServerVersion;
use serde_json::json;

fn version() -> MSSQLServerVersion {
    api::fixtures::mssql_versions()
        .into_iter()
        .find(|v| v.metadata.name.as_deref() == Some("2022-cu22"))
        .unwrap()
}

fn db(spec: Value) -> MSSQLServer {
    let mut base = json!({
        "version": "2022-cu22",
        "storage": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}},
        "tls": {"issuerRef": {"apiGroup": "cert-manager.io", "kind": "Issuer", "name": "ca"}},
        "podTemplate": {"spec": {"containers": [{"name": "mssql", "env": [
            {"name": "ACCEPT_EULA", "value": "Y"}, {"name": "MSSQL_PID", "value": "Evaluation"}]}]}},
    });
    for (k, v) in spec.as_object().unwrap() {
        base[k] = v.clone();
    }
    let mut db: MSSQLServer = serde_json::from_value(json!({
        "apiVersion": "kubedb.com/v1alpha2", "kind": "MSSQLServer",
        "metadata": {"name": "ms", "namespace": "demo", "uid": "0000-abcdef123456"},
        "spec": base,
    }))
    .unwrap();
    db.metadata.generation = Some(1);
    db
}

fn ag(replicas: i32) -> Value {
    json!({"replicas": replicas, "topology": {"mode": "AvailabilityGroup"}})
}

fn plan_of(db: &MSSQLServer) -> Desired {
    let sources = BTreeMap::new();
    plan(
        db,
        &PlanInput {
            version: &version(),
            config_sources: &sources,
        },
    )
    .unwrap()
}

fn names_of(desired: &Desired, kind: crate::plan::ChildKind) -> Vec<String> {
    let mut names: Vec<String> = desired
        .rendered()
        .unwrap()
        .into_iter()
        .filter(|c| c.kind == kind)
        .map(|c| c.name)
        .collect();
    if kind == crate::plan::ChildKind::Secret {
        names.extend(desired.generated_secrets.iter().map(|g| g.name.clone()));
    }
    names.sort();
    names
}

#[test]
fn children_per_topology() {
    use crate::plan::ChildKind::*;
    let cases = [
        (
            json!({}),
            vec!["ms"],
            vec!["ms", "ms-pods"],
            vec!["ms-client-cert", "ms-server-cert"],
            vec!["ms-123456", "ms-auth"],
        ),
        (
            ag(3),
            vec!["ms"],
            vec!["ms", "ms-pods", "ms-secondary"],
            vec!["ms-client-cert", "ms-endpoint-cert", "ms-server-cert"],
            vec!["ms-123456", "ms-auth", "ms-dbm-login", "ms-master-key"],
        ),
        (
            ag(2),
            vec!["ms", "ms-arbiter"],
            vec!["ms", "ms-pods", "ms-secondary"],
            vec!["ms-client-cert", "ms-endpoint-cert", "ms-server-cert"],
            vec!["ms-123456", "ms-auth", "ms-dbm-login", "ms-master-key"],
        ),
    ];
    for (spec, sets, services, certs, secrets) in cases {
        let desired = plan_of(&db(spec.clone()));
        // Only an availability group has agents, so only it gets their identity.
        let identity: Vec<&str> = if spec.get("topology").is_some() {
            vec!["ms"]
        } else {
            vec![]
        };
        for kind in [ServiceAccount, Role, RoleBinding] {
            assert_eq!(names_of(&desired, kind), identity, "{spec} {kind:?}");
        }
        assert_eq!(names_of(&desired, StatefulSet), sets, "{spec}");
        assert_eq!(names_of(&desired, PodDisruptionBudget), sets, "{spec}");
        assert_eq!(names_of(&desired, Service), services, "{spec}");
        assert_eq!(names_of(&desired, Certificate), certs, "{spec}");
        assert_eq!(names_of(&desired, Secret), secrets, "{spec}");
    }
}

/// The rendered child of `kind` named `name`.
fn child(desired: &Desired, kind: crate::plan::ChildKind, name: &str) -> crate::plan::Child {
    desired
        .rendered()
        .unwrap()
        .into_iter()
        .find(|c| c.kind == kind && c.name == name)
        .unwrap()
}

fn statefulset(desired: &Desired, name: &str) -> Value {
    child(desired, crate::plan::ChildKind::StatefulSet, name).body
}

#[test]
fn availability_group_statefulset() {
    let desired = plan_of(&db(ag(3)));
    let sts = &statefulset(&desired, "ms");
    assert_eq!(sts["spec"]["updateStrategy"]["type"], "OnDelete");
    assert_eq!(sts["spec"]["replicas"], 3);
    assert_eq!(sts["spec"]["serviceName"], "ms-pods");
    let pod = &sts["spec"]["template"]["spec"];
    let containers: Vec<&str> = pod["containers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(containers, ["mssql", "mssql-coordinator"]);
    let mssql = &pod["containers"][0];
    assert_eq!(
        mssql["image"],
        "mcr.microsoft.com/mssql/server:2022-CU22-ubuntu-22.04"
    );
    let env: Vec<&str> = mssql["env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        env,
        [
            "MSSQL_SA_USERNAME",
            "MSSQL_SA_PASSWORD",
            "MSSQL_ENABLE_HADR",
            "ACCEPT_EULA",
            "MSSQL_PID"
        ]
    );
    assert_eq!(
        mssql["env"][0]["valueFrom"]["secretKeyRef"],
        json!({"name": "ms-auth", "key": "username"})
    );
    let ports: Vec<i64> = pod["containers"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|c| {
            c["ports"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| p["containerPort"].as_i64().unwrap())
        })
        .collect();
    assert_eq!(ports, [1433, 5022, 2380, 2379]);
    assert_eq!(
        mssql["securityContext"]["capabilities"],
        json!({"drop": ["ALL"], "add": ["NET_BIND_SERVICE"]})
    );
    assert_eq!(mssql["securityContext"]["runAsUser"], 10001);
    assert_eq!(
        mssql["resources"],
        json!({"requests": {"cpu": "1500m", "memory": "2Gi"}, "limits": {"memory": "4Gi"}})
    );
    assert_eq!(pod["securityContext"]["fsGroup"], 10001);
    assert_eq!(pod["initContainers"][0]["name"], "mssql-init");
    let spread: Vec<&str> = pod["topologySpreadConstraints"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["topologyKey"].as_str().unwrap())
        .collect();
    assert_eq!(
        spread,
        ["topology.kubernetes.io/zone", "kubernetes.io/hostname"]
    );
    assert_eq!(
        pod["topologySpreadConstraints"][0]["whenUnsatisfiable"],
        "ScheduleAnyway"
    );
    let mounts: Vec<&str> = mssql["volumeMounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["mountPath"].as_str().unwrap())
        .collect();
    assert_eq!(
        mounts,
        [
            "/var/opt/mssql",
            "/scripts",
            "/var/opt/mssql/mssql.conf",
            "/var/opt/mssql/certs",
            "/var/opt/mssql/tls",
            "/var/opt/mssql/security/ca-certificates",
            "/var/opt/mssql/endpoint-cert"
        ]
    );
    assert_eq!(
        sts["spec"]["volumeClaimTemplates"][0]["metadata"]["name"],
        "data"
    );
    assert_eq!(
        sts["spec"]["selector"]["matchLabels"]["kubedb.com/petset"],
        "ms"
    );
    // The body is a valid StatefulSet: nothing is lost in a typed round trip.
    let typed: k8s_openapi::api::apps::v1::StatefulSet =
        serde_json::from_value(sts.clone()).unwrap();
    assert!(operator_common::apply::is_subset(
        sts,
        &serde_json::to_value(&typed).unwrap()
    ));
}

#[test]
fn arbiter_and_budgets() {
    let desired = plan_of(&db(ag(2)));
    let arbiter = &statefulset(&desired, "ms-arbiter");
    assert_eq!(arbiter["spec"]["replicas"], 1);
    let containers = arbiter["spec"]["template"]["spec"]["containers"]
        .as_array()
        .unwrap();
    assert_eq!(containers.len(), 1);
    assert_eq!(containers[0]["name"], ARBITER_CONTAINER);
    assert_eq!(
        containers[0]["image"],
        api::fixtures::MSSQL_COORDINATOR_IMAGE
    );
    assert_eq!(
        arbiter["spec"]["volumeClaimTemplates"][0]["spec"]["resources"]["requests"]["storage"],
        "2Gi"
    );
    let cases = [
        (1, false, Budget::MaxUnavailable(1)),
        (2, true, Budget::MinAvailable(1)),
        (3, false, Budget::MinAvailable(2)),
        (4, true, Budget::MinAvailable(2)),
        (5, false, Budget::MinAvailable(3)),
    ];
    for (replicas, arbiter, budget) in cases {
        assert_eq!(member_budget(replicas, arbiter), budget, "{replicas}");
    }
}

#[test]
fn ephemeral_uses_empty_dir() {
    let desired = plan_of(&db(json!({"storageType": "Ephemeral"})));
    let sts = &statefulset(&desired, "ms");
    assert!(sts["spec"].get("volumeClaimTemplates").is_none());
    let volumes = sts["spec"]["template"]["spec"]["volumes"]
        .as_array()
        .unwrap();
    assert!(
        volumes
            .iter()
            .any(|v| v["name"] == "data" && v.get("emptyDir").is_some())
    );
}

#[test]
fn monitoring_and_configuration() {
    let mut spec = json!({"monitor": {"agent": "prometheus.io/operator"}, "configuration": {"inline": {"mssql.conf": "[memory]\nmemorylimitmb = 2048\n"}}});
    spec["serviceTemplates"] = json!([{"alias": "primary", "spec": {"type": "NodePort"}}]);
    let desired = plan_of(&db(spec));
    let stats = child(&desired, crate::plan::ChildKind::Service, "ms-stats");
    assert_eq!(stats.body["metadata"]["labels"]["kubedb.com/role"], "stats");
    assert_eq!(stats.body["spec"]["ports"][0]["port"], 9399);
    let primary = child(&desired, crate::plan::ChildKind::Service, "ms");
    assert_eq!(primary.body["spec"]["type"], "NodePort");
    let config = child(&desired, crate::plan::ChildKind::Secret, "ms-123456");
    assert!(
        config.body["stringData"]["mssql.conf"]
            .as_str()
            .unwrap()
            .contains("memorylimitmb")
    );
    let sts = &statefulset(&desired, "ms");
    let names: Vec<&str> = sts["spec"]["template"]["spec"]["containers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["mssql", "exporter"]);
    assert!(
        sts["spec"]["template"]["spec"]["containers"][0]["volumeMounts"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["mountPath"] == "/var/opt/mssql/mssql.conf" && m["subPath"] == "mssql.conf")
    );
}

#[test]
fn sql_server_offers_tls_with_the_server_certificate() {
    let ours = "[network]\ntlscert = /var/opt/mssql/certs/tls.crt\ntlskey = /var/opt/mssql/certs/tls.key\ntlsprotocols = 1.2\nforceencryption = 0\n";
    let cases: [(Option<&str>, String); 4] = [
        (None, ours.to_owned()),
        (
            Some("[memory]\nmemorylimitmb = 2048\n"),
            format!("[memory]\nmemorylimitmb = 2048\n\n{ours}"),
        ),
        // The user's own network settings win; ours fill the gaps inside their section.
        (
            Some("[network]\nTLSProtocols = 1.3\n\n[memory]\nmemorylimitmb = 2048\n"),
            "[network]\nTLSProtocols = 1.3\ntlscert = /var/opt/mssql/certs/tls.crt\ntlskey = /var/opt/mssql/certs/tls.key\nforceencryption = 0\n\n[memory]\nmemorylimitmb = 2048\n".to_owned(),
        ),
        (
            Some("[network]\ntlscert = /mine.pem\ntlskey = /mine.key\ntlsprotocols = 1.2\nforceencryption = 1\n"),
            "[network]\ntlscert = /mine.pem\ntlskey = /mine.key\ntlsprotocols = 1.2\nforceencryption = 1\n".to_owned(),
        ),
    ];
    for (user, want) in cases {
        assert_eq!(with_tls_network(user), want, "{user:?}");
    }
    // Every database gets it in its config secret, mounted as mssql.conf.
    let desired = plan_of(&db(json!({})));
    let conf = desired
        .secrets
        .iter()
        .find_map(|s| s.string_data.as_ref()?.get("mssql.conf").cloned())
        .expect("an mssql.conf");
    assert_eq!(conf, ours);
}

#[test]
fn availability_group_database_names() {
    let long = "d".repeat(MAX_AG_DATABASE_NAME);
    let too_long = "d".repeat(MAX_AG_DATABASE_NAME + 1);
    let ok: [&[&str]; 4] = [
        &[],
        &["sales", "Orders 2024", "o'k]"],
        &[long.as_str()],
        &["ünïcödé", "日本"],
    ];
    for names in ok {
        let names: Vec<String> = names.iter().map(|s| (*s).to_owned()).collect();
        assert_eq!(check_ag_databases(&names), Ok(()), "{names:?}");
    }
    let bad: [(&[&str], &str); 8] = [
        (&[""], "databases[0] is empty"),
        (&["a", too_long.as_str()], "databases[1] \"ddd"),
        (&["a\nb"], "control character"),
        (&[" sales"], "starts or ends with a blank"),
        (&["sales "], "starts or ends with a blank"),
        (&["MSDB"], "system database"),
        (&["tempdb"], "system database"),
        (
            &["Sales", "orders", "sales"],
            "databases[2] \"sales\" repeats spec.topology.availabilityGroup.databases[0] \"Sales\"",
        ),
    ];
    for (names, expected) in bad {
        let names: Vec<String> = names.iter().map(|s| (*s).to_owned()).collect();
        let err = check_ag_databases(&names).unwrap_err();
        assert_eq!(err.reason, "InvalidSpec", "{names:?}");
        assert!(err.message.contains(expected), "{names:?}: {}", err.message);
    }
    // Through validate: the whole spec is refused with the same message.
    let mut spec = ag(3);
    spec["topology"]["availabilityGroup"] = json!({"databases": ["master"]});
    let err = validate(&db(spec)).unwrap_err();
    assert!(err.message.contains("system database"), "{err}");
}

#[test]
fn validation_errors() {
    let cases = [
        (json!({"replicas": 2}), "standalone must be one"),
        (
            json!({"topology": {"mode": "DistributedAG"}, "replicas": 2}),
            "DistributedAG",
        ),
        (json!({"storage": null}), "spec.storage is required"),
        (
            json!({"podTemplate": {"spec": {"containers": [{"name": "mssql", "env": [{"name": "ACCEPT_EULA", "value": "Y"}]}]}}}),
            "MSSQL_PID",
        ),
        (
            json!({"podTemplate": {"spec": {"containers": [{"name": "mssql", "env": [{"name": "ACCEPT_EULA", "value": "Y"}, {"name": "MSSQL_PID", "value": "x"}, {"name": "MSSQL_SA_PASSWORD", "value": "x"}]}]}}}),
            "MSSQL_SA_PASSWORD",
        ),
        (
            json!({"podTemplate": {"spec": {"containers": [{"name": "mssql", "env": [{"name": "MSSQL_PID", "value": "Developer"}]}]}}}),
            "must set ACCEPT_EULA=Y",
        ),
        (
            json!({"podTemplate": {"spec": {"containers": [{"name": "mssql", "env": [{"name": "ACCEPT_EULA", "value": "N"}, {"name": "MSSQL_PID", "value": "Developer"}]}]}}}),
            "ACCEPT_EULA=\"N\" declines",
        ),
    ];
    for (spec, expected) in cases {
        let mut db = db(spec.clone());
        if spec.get("storage").is_some_and(Value::is_null) {
            db.spec.storage = None;
        }
        let err = validate(&db).unwrap_err();
        assert!(err.message.contains(expected), "{spec}: {err}");
    }
}

#[test]
fn agent_identity_and_permissions() {
    // (spec, pods in the Role, service account of the pods, ServiceAccount created, secrets)
    let cases = [
        (
            ag(3),
            vec!["ms-0", "ms-1", "ms-2"],
            "ms",
            true,
            vec![
                "ms-auth",
                "ms-dbm-login",
                "ms-endpoint-cert",
                "ms-master-key",
            ],
        ),
        (
            ag(2),
            vec!["ms-0", "ms-1", "ms-arbiter-0"],
            "ms",
            true,
            vec![
                "ms-auth",
                "ms-dbm-login",
                "ms-endpoint-cert",
                "ms-master-key",
            ],
        ),
        (
            json!({"replicas": 3, "authSecret": {"name": "my-sa"},
                   "topology": {"mode": "AvailabilityGroup", "availabilityGroup": {
                       "loginSecretName": "my-login", "masterKeySecretName": "my-master"}},
                   "tls": {"issuerRef": {"apiGroup": "cert-manager.io", "kind": "Issuer", "name": "ca"},
                           "certificates": [{"alias": "endpoint", "secretName": "my-endpoint"}]},
                   "podTemplate": {"spec": {"serviceAccountName": "theirs", "containers": [{"name": "mssql", "env": [
                       {"name": "ACCEPT_EULA", "value": "Y"}, {"name": "MSSQL_PID", "value": "Evaluation"}]}]}}}),
            vec!["ms-0", "ms-1", "ms-2"],
            "theirs",
            false,
            vec!["my-endpoint", "my-login", "my-master", "my-sa"],
        ),
    ];
    for (spec, pods, account, creates_account, secrets) in cases {
        let desired = plan_of(&db(spec.clone()));
        let role = child(&desired, crate::plan::ChildKind::Role, "ms").body;
        assert_eq!(role["rules"][0]["resourceNames"], json!(pods), "{spec}");
        assert_eq!(
            role["rules"][1]["resourceNames"],
            json!(["ms-primary"]),
            "{spec}"
        );
        assert_eq!(role["rules"][3]["resourceNames"], json!(secrets), "{spec}");
        let binding = child(&desired, crate::plan::ChildKind::RoleBinding, "ms").body;
        assert_eq!(binding["subjects"][0]["name"], account, "{spec}");
        assert_eq!(
            names_of(&desired, crate::plan::ChildKind::ServiceAccount).len(),
            usize::from(creates_account),
            "{spec}"
        );
        let pod = &statefulset(&desired, "ms")["spec"]["template"]["spec"];
        assert_eq!(pod["serviceAccountName"], account, "{spec}");
        // A token only in the agent container: none for SQL Server, unless the user's template
        // names its own ServiceAccount (which then mounts its token as usual).
        let automount = if creates_account {
            json!(false)
        } else {
            Value::Null
        };
        assert_eq!(pod["automountServiceAccountToken"], automount, "{spec}");
        let token_mounts: Vec<&str> = pod["containers"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| {
                c["volumeMounts"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|m| m["mountPath"] == "/var/run/secrets/kubernetes.io/serviceaccount")
            })
            .map(|c| c["name"].as_str().unwrap())
            .collect();
        assert_eq!(token_mounts, ["mssql-coordinator"], "{spec}");
    }
    let arbiter = &statefulset(&plan_of(&db(ag(2))), "ms-arbiter")["spec"]["template"]["spec"];
    assert_eq!(arbiter["serviceAccountName"], "ms");
    assert_eq!(arbiter["automountServiceAccountToken"], false);
    // A standalone database has no agent: no API token at all, and no RBAC.
    let standalone = plan_of(&db(json!({})));
    let pod = &statefulset(&standalone, "ms")["spec"]["template"]["spec"];
    assert_eq!(pod["automountServiceAccountToken"], false);
    assert!(pod.get("serviceAccountName").is_none());
}

#[test]
fn the_agent_image_runs_in_the_coordinator_and_the_arbiter() {
    let agent = "ghcr.io/kubedb-rs/db-agent:0.1.0";
    let mut with_agent = version();
    MSSQLServer::use_agent_image(&mut with_agent, agent);
    let sources = BTreeMap::new();
    let desired = plan(
        &db(ag(2)),
        &PlanInput {
            version: &with_agent,
            config_sources: &sources,
        },
    )
    .unwrap();
    let images = |set: &str| -> Vec<(String, String)> {
        statefulset(&desired, set)["spec"]["template"]["spec"]["containers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| {
                let name = c["name"].as_str().unwrap().to_owned();
                (name, c["image"].as_str().unwrap().to_owned())
            })
            .collect()
    };
    assert_eq!(
        images("ms"),
        [
            (
                "mssql".to_owned(),
                "mcr.microsoft.com/mssql/server:2022-CU22-ubuntu-22.04".to_owned()
            ),
            ("mssql-coordinator".to_owned(), agent.to_owned())
        ]
    );
    assert_eq!(
        images("ms-arbiter"),
        [(ARBITER_CONTAINER.to_owned(), agent.to_owned())]
    );
}

#[test]
fn the_eula_must_be_accepted() {
    let var = |value: Option<&str>, from_secret: bool| EnvVar {
        name: "ACCEPT_EULA".into(),
        value: value.map(str::to_owned),
        value_from: from_secret.then(k8s_openapi::api::core::v1::EnvVarSource::default),
    };
    let cases = [
        (None, false),
        (Some(var(Some("Y"), false)), true),
        (Some(var(Some("yes"), false)), true),
        (Some(var(Some("1"), false)), true),
        (Some(var(Some("N"), false)), false),
        (Some(var(Some(" no "), false)), false),
        (Some(var(Some("FALSE"), false)), false),
        (Some(var(Some("0"), false)), false),
        (Some(var(Some(""), false)), false),
        (Some(var(None, false)), false),
        (Some(var(None, true)), true),
    ];
    for (var, accepted) in cases {
        assert_eq!(check_eula(var.as_ref()).is_ok(), accepted, "{var:?}");
    }
}

#[test]
fn probes_per_topology_and_the_users_win() {
    let probe_kinds = |container: &Value| -> Vec<(String, Value)> {
        ["startupProbe", "readinessProbe", "livenessProbe"]
            .iter()
            .filter_map(|p| {
                let probe = container.get(*p)?;
                let action = probe
                    .get("httpGet")
                    .map(|h| json!({"http": [h["path"], h["port"]]}))
                    .or_else(|| probe.get("tcpSocket").map(|t| json!({"tcp": t["port"]})))?;
                Some(((*p).to_owned(), action))
            })
            .collect()
    };
    let own = |p: &str, v: Value| (p.to_owned(), v);
    let standalone = plan_of(&db(json!({})));
    let pod = &statefulset(&standalone, "ms")["spec"]["template"]["spec"];
    assert_eq!(
        probe_kinds(&pod["containers"][0]),
        [
            own("startupProbe", json!({"tcp": "db"})),
            own("readinessProbe", json!({"tcp": "db"}))
        ]
    );
    let desired = plan_of(&db(ag(2)));
    let pod = &statefulset(&desired, "ms")["spec"]["template"]["spec"];
    assert_eq!(
        probe_kinds(&pod["containers"][0]),
        [
            own("startupProbe", json!({"tcp": "db"})),
            own("readinessProbe", json!({"http": ["/ready", 2379]}))
        ],
        "SQL Server is ready when its agent says so"
    );
    assert_eq!(
        probe_kinds(&pod["containers"][1]),
        [own(
            "livenessProbe",
            json!({"http": ["/healthz", "coordinatclient"]})
        )]
    );
    let env: Vec<&Value> = pod["containers"][1]["env"]
        .as_array()
        .unwrap()
        .iter()
        .collect();
    assert!(
        env.iter()
            .any(|e| e["name"] == "POD_IP"
                && e["valueFrom"]["fieldRef"]["fieldPath"] == "status.podIP"),
        "{env:?}"
    );
    let arbiter = &statefulset(&desired, "ms-arbiter")["spec"]["template"]["spec"];
    assert!(probe_kinds(&arbiter["containers"][0]).is_empty());
    assert!(
        arbiter["containers"][0]["env"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["name"] == "POD_IP")
    );
    // A probe the user's podTemplate sets replaces ours as a whole; the others stay.
    let mut spec = ag(3);
    spec["podTemplate"] = json!({"spec": {"containers": [
        {"name": "mssql", "env": [{"name": "ACCEPT_EULA", "value": "Y"}, {"name": "MSSQL_PID", "value": "Developer"}],
         "readinessProbe": {"exec": {"command": ["/bin/true"]}, "periodSeconds": 30}},
        {"name": "mssql-coordinator", "livenessProbe": {"tcpSocket": {"port": 2380}}}]}});
    let desired = plan_of(&db(spec));
    let pod = &statefulset(&desired, "ms")["spec"]["template"]["spec"];
    assert_eq!(
        pod["containers"][0]["readinessProbe"],
        json!({"exec": {"command": ["/bin/true"]}, "periodSeconds": 30})
    );
    assert_eq!(
        pod["containers"][0]["startupProbe"]["tcpSocket"]["port"],
        "db"
    );
    assert_eq!(
        pod["containers"][1]["livenessProbe"],
        json!({"tcpSocket": {"port": 2380}})
    );
}
