//! The identity and the permissions of a clustered database's pods, for the in-pod agent that runs
//! in the coordinator slot (`crates/db-agent`): ServiceAccount `<db>`, Role `<db>` and RoleBinding
//! `<db>`, and the pod-spec pieces that use them.
//!
//! Least privilege: the Role names this database's own pods, Lease and secrets (`resourceNames`)
//! wherever Kubernetes RBAC can restrict by name, and only the agent container gets an API token
//! (the SQL Server or SingleStore container, the exporter and user sidecars get none, unless the
//! user's pod template asks for one). Standalone databases have no agent, so their pods run with no
//! token at all and get none of these objects (`docs/provisioner.md`, "Identity and RBAC").

use std::collections::{BTreeMap, BTreeSet};

use api::common::PodTemplateSpec;
use api::names;
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::KeyToPath;
use k8s_openapi::api::core::v1::{
    ConfigMapProjection, Container, DownwardAPIProjection, DownwardAPIVolumeFile,
    ObjectFieldSelector, PodSpec, ProjectedVolumeSource, ServiceAccount,
    ServiceAccountTokenProjection, Volume, VolumeProjection,
};
use k8s_openapi::api::rbac::v1::{PolicyRule, Role, RoleBinding, RoleRef, Subject};

use super::meta::child_metadata;
use super::pod::read_only_mount;
use crate::database::DbRef;
use crate::plan::Desired;

/// Volume of the agent's API credentials (token, CA, namespace), mounted into the agent only.
pub const API_ACCESS_VOLUME: &str = "agent-api-access";
/// Where in-cluster clients (kube-rs, client-go) look for the ServiceAccount's credentials.
pub const API_ACCESS_PATH: &str = "/var/run/secrets/kubernetes.io/serviceaccount";
/// Lifetime of the projected token; the kubelet refreshes it (kube-rs rereads the file). 3607 s
/// is what the ServiceAccount admission plugin uses for its own `kube-api-access-*` volume.
const TOKEN_SECONDS: i64 = 3607;

/// What the agents of one database may reach, by name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AgentAccess {
    /// The database's pods that run an agent.
    pub pods: Vec<String>,
    /// The Leases the agents elect with (`<db>-primary` / `<db>-master`).
    pub leases: Vec<String>,
    /// The database's secrets the agents read.
    pub secrets: Vec<String>,
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

/// ServiceAccount `name` of the database's agent pods. It does not automount a token: the pods
/// mount one into the agent container only ([`agent_pod_identity`]).
pub fn service_account(db: &DbRef, name: &str) -> ServiceAccount {
    ServiceAccount {
        metadata: child_metadata(db, name, &BTreeMap::new()),
        automount_service_account_token: Some(false),
        ..ServiceAccount::default()
    }
}

/// Role `<db>`: what the agents of the database may do. Every rule is restricted to the
/// database's own objects by name, except the two that Kubernetes cannot authorize by name:
/// creating a Lease, and Events.
pub fn agent_role(db: &DbRef, access: &AgentAccess) -> Role {
    let rule = |group: &str, resource: &str, names: Option<&[String]>, verbs: &[&str]| PolicyRule {
        api_groups: Some(vec![group.to_owned()]),
        resources: Some(vec![resource.to_owned()]),
        resource_names: names.map(<[String]>::to_vec),
        verbs: strings(verbs),
        ..PolicyRule::default()
    };
    Role {
        metadata: child_metadata(db, &names::agent_role(&db.name), &BTreeMap::new()),
        rules: Some(vec![
            // The database's own pods, by name: an agent finds its peers by reading them one
            // by one and patches the `kubedb.com/role` label of its own pod. No `list` or
            // `watch`: a label-selected list cannot be restricted by name (RBAC applies
            // `resourceNames` to a list only with a `metadata.name` field selector) and would
            // let an agent read every pod of its namespace.
            rule("", "pods", Some(&access.pods), &["get", "patch"]),
            // Primary election: the database's Lease, by name, read and renewed.
            rule(
                "coordination.k8s.io",
                "leases",
                Some(&access.leases),
                &["get", "update", "patch"],
            ),
            // The first agent creates the Lease. `create` cannot be restricted by name (the API
            // server authorizes a create before the object has one), so this allows creating any
            // Lease in the namespace; changing one is limited to the names above.
            rule("coordination.k8s.io", "leases", None, &["create"]),
            // The database's secrets (credentials, AG login and master key, endpoint certificate,
            // SingleStore license), read by name. Never listed, never written.
            rule("", "secrets", Some(&access.secrets), &["get"]),
            // Events about the database (failovers): created, and patched when an Event repeats
            // (its `series`). Event names are generated, so this cannot be restricted by name.
            rule("events.k8s.io", "events", None, &["create", "patch"]),
        ]),
    }
}

/// RoleBinding `<db>` of the agent Role to the ServiceAccounts the agent pods run as.
pub fn agent_role_binding(db: &DbRef, service_accounts: &[String]) -> RoleBinding {
    RoleBinding {
        metadata: child_metadata(db, &names::agent_role_binding(&db.name), &BTreeMap::new()),
        role_ref: RoleRef {
            api_group: "rbac.authorization.k8s.io".into(),
            kind: "Role".into(),
            name: names::agent_role(&db.name),
        },
        subjects: Some(
            service_accounts
                .iter()
                .map(|name| Subject {
                    // No `apiGroup`: the API server stores none for ServiceAccount subjects, and
                    // an empty one would differ from the live object on every reconcile.
                    kind: "ServiceAccount".into(),
                    name: name.clone(),
                    namespace: Some(db.namespace.clone()),
                    ..Subject::default()
                })
                .collect(),
        ),
    }
}

/// `automountServiceAccountToken` of a database pod: `false` (the database and the exporter need
/// no API access; the agent gets its own token, [`agent_pod_identity`]) unless the user's
/// template names a ServiceAccount, whose token the pod then mounts as Kubernetes does by default.
/// A value the template sets itself replaces this one in the merge.
pub fn automount_token(template: Option<&PodTemplateSpec>) -> Option<bool> {
    let named = template
        .and_then(|t| t.spec.as_ref())
        .and_then(|s| s.service_account_name.as_deref())
        .is_some_and(|name| !name.is_empty());
    (!named).then_some(false)
}

/// Makes a pod spec an agent pod: ServiceAccount `<db>` (the user's template may name another),
/// and the API credentials of that ServiceAccount mounted into `agent` only, where in-cluster
/// clients look for them.
pub fn agent_pod_identity(pod: &mut PodSpec, db: &DbRef, agent: &str) {
    pod.service_account_name = Some(names::service_account(&db.name));
    pod.volumes
        .get_or_insert_with(Vec::new)
        .push(api_access_volume());
    if let Some(container) = pod.containers.iter_mut().find(|c| c.name == agent) {
        mount_api_access(container);
    }
}

fn mount_api_access(container: &mut Container) {
    container
        .volume_mounts
        .get_or_insert_with(Vec::new)
        .push(read_only_mount(API_ACCESS_VOLUME, API_ACCESS_PATH));
}

/// The projected volume the ServiceAccount admission plugin would add to every container
/// (`kube-api-access-*`): a bound token, the cluster's CA and the namespace.
fn api_access_volume() -> Volume {
    Volume {
        name: API_ACCESS_VOLUME.into(),
        projected: Some(ProjectedVolumeSource {
            sources: Some(vec![
                VolumeProjection {
                    service_account_token: Some(ServiceAccountTokenProjection {
                        path: "token".into(),
                        expiration_seconds: Some(TOKEN_SECONDS),
                        ..ServiceAccountTokenProjection::default()
                    }),
                    ..VolumeProjection::default()
                },
                VolumeProjection {
                    config_map: Some(ConfigMapProjection {
                        name: "kube-root-ca.crt".into(),
                        items: Some(vec![KeyToPath {
                            key: "ca.crt".into(),
                            path: "ca.crt".into(),
                            ..KeyToPath::default()
                        }]),
                        ..ConfigMapProjection::default()
                    }),
                    ..VolumeProjection::default()
                },
                VolumeProjection {
                    downward_api: Some(DownwardAPIProjection {
                        items: Some(vec![DownwardAPIVolumeFile {
                            path: "namespace".into(),
                            field_ref: Some(ObjectFieldSelector {
                                api_version: Some("v1".into()),
                                field_path: "metadata.namespace".into(),
                            }),
                            ..DownwardAPIVolumeFile::default()
                        }]),
                    }),
                    ..VolumeProjection::default()
                },
            ]),
            ..ProjectedVolumeSource::default()
        }),
        ..Volume::default()
    }
}

/// Names of a StatefulSet's pods: `<set>-0` … `<set>-<replicas - 1>`.
pub fn pod_names(set: &StatefulSet) -> Vec<String> {
    let name = set.metadata.name.as_deref().unwrap_or_default();
    let replicas = set.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
    (0..replicas).map(|i| names::pod_name(name, i)).collect()
}

/// Adds the agents' ServiceAccount, Role and RoleBinding for the planned StatefulSets named in
/// `agent_sets`: the Role names their pods, `leases` and `secrets`; the RoleBinding binds it to
/// every ServiceAccount their pods run as; ServiceAccount `<db>` is created when one of them uses
/// it (not when every template names the user's own).
pub fn add_agent_rbac(
    desired: &mut Desired,
    db: &DbRef,
    agent_sets: &[&str],
    leases: Vec<String>,
    secrets: Vec<String>,
) {
    let own = names::service_account(&db.name);
    let mut pods = Vec::new();
    let mut accounts = BTreeSet::new();
    for set in desired
        .stateful_sets
        .iter()
        .filter(|s| agent_sets.contains(&s.metadata.name.as_deref().unwrap_or_default()))
    {
        pods.extend(pod_names(set));
        let account = set
            .spec
            .as_ref()
            .and_then(|s| s.template.spec.as_ref())
            .and_then(|p| p.service_account_name.clone())
            .filter(|name| !name.is_empty())
            .unwrap_or_else(|| own.clone());
        accounts.insert(account);
    }
    if accounts.is_empty() {
        return;
    }
    if accounts.contains(&own) {
        desired.service_accounts.push(service_account(db, &own));
    }
    let mut secrets = secrets;
    secrets.sort();
    secrets.dedup();
    desired.roles.push(agent_role(
        db,
        &AgentAccess {
            pods,
            leases,
            secrets,
        },
    ));
    let accounts: Vec<String> = accounts.into_iter().collect();
    desired
        .role_bindings
        .push(agent_role_binding(db, &accounts));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::build::statefulset::{self, StatefulSetParts};
    use crate::database::DbKind;
    use serde_json::{Value, json};

    fn db() -> DbRef {
        super::super::test_db(DbKind::MSSQLServer, "ag", "demo")
    }

    fn json<T: serde::Serialize>(value: T) -> Value {
        serde_json::to_value(value).unwrap()
    }

    fn set(name: &str, replicas: i32, account: Option<&str>) -> StatefulSet {
        statefulset::stateful_set(
            &db(),
            StatefulSetParts {
                name,
                replicas,
                selector: BTreeMap::new(),
                pod_labels: BTreeMap::new(),
                pod_annotations: BTreeMap::new(),
                pod_spec: PodSpec {
                    service_account_name: account.map(str::to_owned),
                    ..PodSpec::default()
                },
                claim: None,
                controller_labels: BTreeMap::new(),
                controller_annotations: BTreeMap::new(),
            },
        )
    }

    #[test]
    fn the_role_names_the_databases_own_objects() {
        let access = AgentAccess {
            pods: strings(&["ag-0", "ag-1"]),
            leases: strings(&["ag-primary"]),
            secrets: strings(&["ag-auth", "ag-dbm-login"]),
        };
        let role = json(agent_role(&db(), &access));
        assert_eq!(role["apiVersion"], "rbac.authorization.k8s.io/v1");
        assert_eq!(role["kind"], "Role");
        assert_eq!(role["metadata"]["name"], "ag");
        assert_eq!(role["metadata"]["namespace"], "demo");
        assert_eq!(role["metadata"]["ownerReferences"][0]["uid"], "uid-123456");
        assert_eq!(
            role["rules"],
            json!([
                {"apiGroups": [""], "resources": ["pods"], "resourceNames": ["ag-0", "ag-1"],
                 "verbs": ["get", "patch"]},
                {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"],
                 "resourceNames": ["ag-primary"], "verbs": ["get", "update", "patch"]},
                {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["create"]},
                {"apiGroups": [""], "resources": ["secrets"], "resourceNames": ["ag-auth", "ag-dbm-login"],
                 "verbs": ["get"]},
                {"apiGroups": ["events.k8s.io"], "resources": ["events"], "verbs": ["create", "patch"]},
            ])
        );
    }

    #[test]
    fn no_rule_without_a_name_grants_more_than_create_or_events() {
        let role = agent_role(&db(), &AgentAccess::default());
        for rule in role.rules.unwrap() {
            if rule.resource_names.is_none() {
                let resources = rule.resources.unwrap_or_default();
                assert!(
                    rule.verbs == ["create"] || resources == ["events"],
                    "{resources:?} {:?} is not restricted by name",
                    rule.verbs
                );
            }
        }
    }

    #[test]
    fn binding_and_service_account() {
        let binding = json(agent_role_binding(&db(), &strings(&["ag", "theirs"])));
        assert_eq!(binding["kind"], "RoleBinding");
        assert_eq!(binding["metadata"]["name"], "ag");
        assert_eq!(
            binding["roleRef"],
            json!({"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "ag"})
        );
        assert_eq!(
            binding["subjects"],
            json!([{"kind": "ServiceAccount", "name": "ag", "namespace": "demo"},
                   {"kind": "ServiceAccount", "name": "theirs", "namespace": "demo"}])
        );
        let account = json(service_account(&db(), "ag"));
        assert_eq!(account["kind"], "ServiceAccount");
        assert_eq!(account["automountServiceAccountToken"], false);
        assert_eq!(
            account["metadata"]["labels"]["app.kubernetes.io/instance"],
            "ag"
        );
    }

    #[test]
    fn only_the_agent_container_mounts_a_token() {
        let mut pod = PodSpec {
            containers: vec![
                Container {
                    name: "mssql".into(),
                    ..Container::default()
                },
                Container {
                    name: "mssql-coordinator".into(),
                    ..Container::default()
                },
            ],
            ..PodSpec::default()
        };
        agent_pod_identity(&mut pod, &db(), "mssql-coordinator");
        let pod = json(pod);
        assert_eq!(pod["serviceAccountName"], "ag");
        assert!(pod["containers"][0].get("volumeMounts").is_none());
        assert_eq!(
            pod["containers"][1]["volumeMounts"],
            json!([{"name": API_ACCESS_VOLUME, "mountPath": API_ACCESS_PATH, "readOnly": true}])
        );
        assert_eq!(
            pod["volumes"][0],
            json!({"name": API_ACCESS_VOLUME, "projected": {"sources": [
                {"serviceAccountToken": {"path": "token", "expirationSeconds": 3607}},
                {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
                {"downwardAPI": {"items": [{"path": "namespace",
                    "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}}]}},
            ]}})
        );
    }

    #[test]
    fn no_token_unless_the_template_names_a_service_account() {
        let template = |spec: Value| -> PodTemplateSpec {
            serde_json::from_value(json!({"spec": spec})).unwrap()
        };
        let cases = [
            (None, Some(false)),
            (Some(template(json!({}))), Some(false)),
            (
                Some(template(json!({"serviceAccountName": ""}))),
                Some(false),
            ),
            (Some(template(json!({"serviceAccountName": "mine"}))), None),
        ];
        for (template, want) in cases {
            assert_eq!(automount_token(template.as_ref()), want, "{template:?}");
        }
    }

    #[test]
    fn rbac_follows_the_agent_sets_and_their_service_accounts() {
        // (sets: name, replicas, account; agent sets; service account created; subjects; pods)
        type Case = (
            Vec<(&'static str, i32, Option<&'static str>)>,
            Vec<&'static str>,
            bool,
            Vec<&'static str>,
            Vec<&'static str>,
        );
        let cases: Vec<Case> = vec![
            (vec![("ag", 1, Some("ag"))], vec![], false, vec![], vec![]),
            (
                vec![("ag", 3, Some("ag"))],
                vec!["ag"],
                true,
                vec!["ag"],
                vec!["ag-0", "ag-1", "ag-2"],
            ),
            (
                vec![("ag", 2, Some("ag")), ("ag-arbiter", 1, Some("ag"))],
                vec!["ag", "ag-arbiter"],
                true,
                vec!["ag"],
                vec!["ag-0", "ag-1", "ag-arbiter-0"],
            ),
            (
                vec![("ag", 2, Some("theirs"))],
                vec!["ag"],
                false,
                vec!["theirs"],
                vec!["ag-0", "ag-1"],
            ),
            (
                vec![("s-aggregator", 1, Some("theirs")), ("s-leaf", 1, None)],
                vec!["s-aggregator", "s-leaf"],
                true,
                vec!["ag", "theirs"],
                vec!["s-aggregator-0", "s-leaf-0"],
            ),
        ];
        for (sets, agent_sets, creates_account, subjects, pods) in cases {
            let mut desired = Desired {
                stateful_sets: sets.iter().map(|(n, r, a)| set(n, *r, *a)).collect(),
                ..Desired::default()
            };
            add_agent_rbac(
                &mut desired,
                &db(),
                &agent_sets,
                strings(&["ag-primary"]),
                strings(&["b", "a", "b"]),
            );
            let what = format!("{sets:?}");
            let accounts: Vec<String> = desired
                .service_accounts
                .iter()
                .filter_map(|a| a.metadata.name.clone())
                .collect();
            assert_eq!(
                accounts,
                if creates_account {
                    vec!["ag".to_owned()]
                } else {
                    vec![]
                },
                "{what}"
            );
            if agent_sets.is_empty() {
                assert!(desired.roles.is_empty() && desired.role_bindings.is_empty());
                continue;
            }
            let binding = json(&desired.role_bindings[0]);
            let names: Vec<&str> = binding["subjects"]
                .as_array()
                .unwrap()
                .iter()
                .map(|s| s["name"].as_str().unwrap())
                .collect();
            assert_eq!(names, subjects, "{what}");
            let role = json(&desired.roles[0]);
            assert_eq!(role["rules"][0]["resourceNames"], json!(pods), "{what}");
            assert_eq!(
                role["rules"][3]["resourceNames"],
                json!(["a", "b"]),
                "sorted, once"
            );
        }
    }
}
