//! Derived object names, labels and fixed constants (reference §2.1/§2.2), used by both
//! operators so that they agree on every name.

use std::collections::BTreeMap;

/// Finalizer KubeDB puts on database objects.
pub const FINALIZER: &str = "kubedb.com";
/// Field manager of the provisioner's server-side applies.
pub const PROVISIONER_FIELD_MANAGER: &str = "kubedb-provisioner";
/// Field manager of the ops-manager's server-side applies.
pub const OPS_MANAGER_FIELD_MANAGER: &str = "kubedb-ops-manager";

/// Annotation the ops-manager sets on a StatefulSet (in the same apply as its images) naming the
/// Version whose images the template carries during and after an UpdateVersion. While it names a
/// Version other than the database's `spec.version` that the current Version allows as an update
/// target, the provisioner renders that Version's images, so a failed update never rolls the
/// template (and any pod that restarts) back to the old version.
pub const TARGET_VERSION_ANNOTATION: &str = "ops.kubedb.com/target-version";

/// `app.kubernetes.io/name`.
pub const LABEL_NAME: &str = "app.kubernetes.io/name";
/// `app.kubernetes.io/instance`.
pub const LABEL_INSTANCE: &str = "app.kubernetes.io/instance";
/// `app.kubernetes.io/managed-by`.
pub const LABEL_MANAGED_BY: &str = "app.kubernetes.io/managed-by";
/// `app.kubernetes.io/component`.
pub const LABEL_COMPONENT: &str = "app.kubernetes.io/component";
/// Value of `managed-by`.
pub const MANAGED_BY: &str = "kubedb.com";
/// Value of `component` on offshoots.
pub const COMPONENT_DATABASE: &str = "database";
/// Role label key on pods (`primary`, `secondary`, `stats`, ...).
pub const LABEL_ROLE: &str = "kubedb.com/role";
/// PetSet label key.
pub const LABEL_PETSET: &str = "kubedb.com/petset";
/// Role value of the MSSQL primary.
pub const ROLE_PRIMARY: &str = "primary";
/// Role value of an MSSQL secondary.
pub const ROLE_SECONDARY: &str = "secondary";
/// Annotation on a database's primary Lease ([`primary_lease`]) naming the pod the primary role
/// is being handed away from (a planned switchover): written by the ops-manager before it
/// restarts the primary, and by a stopping primary's agent as it frees the Lease.
pub const HANDOVER_FROM_ANNOTATION: &str = "db-agent.kubedb.com/handover-from";
/// Until when (RFC 3339) [`HANDOVER_FROM_ANNOTATION`] holds; the agents ignore it afterwards.
pub const HANDOVER_UNTIL_ANNOTATION: &str = "db-agent.kubedb.com/handover-until";

/// The Lease through which a database's agents elect the primary: `<db>-primary`.
pub fn primary_lease(db: &str) -> String {
    format!("{db}-primary")
}

/// Role value of the stats service.
pub const ROLE_STATS: &str = "stats";
/// Role value of a SingleStore aggregator.
pub const ROLE_AGGREGATOR: &str = "aggregator";
/// Role value of a SingleStore leaf.
pub const ROLE_LEAF: &str = "leaf";

/// Name of the data volume and PVC template.
pub const DATA_VOLUME: &str = "data";

/// `app.kubernetes.io/name` value of MSSQL offshoots.
pub const MSSQL_RESOURCE_NAME: &str = "mssqlservers.kubedb.com";
/// `app.kubernetes.io/name` value of SingleStore offshoots.
pub const SINGLESTORE_RESOURCE_NAME: &str = "singlestores.kubedb.com";

/// Selector labels (`OffshootSelectors`) of a database's objects.
pub fn selector_labels(resource_name: &str, db: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        (LABEL_NAME.to_owned(), resource_name.to_owned()),
        (LABEL_INSTANCE.to_owned(), db.to_owned()),
        (LABEL_MANAGED_BY.to_owned(), MANAGED_BY.to_owned()),
    ])
}

/// Offshoot labels: the selector labels plus `app.kubernetes.io/component=database`.
pub fn offshoot_labels(resource_name: &str, db: &str) -> BTreeMap<String, String> {
    let mut labels = selector_labels(resource_name, db);
    labels.insert(LABEL_COMPONENT.to_owned(), COMPONENT_DATABASE.to_owned());
    labels
}

/// Auth secret `<db>-auth`.
pub fn auth_secret(db: &str) -> String {
    format!("{db}-auth")
}
/// Governing (headless) service `<db>-pods`.
pub fn governing_service(db: &str) -> String {
    format!("{db}-pods")
}
/// Primary service `<db>`.
pub fn primary_service(db: &str) -> String {
    db.to_owned()
}
/// MSSQL secondary service `<db>-secondary`.
pub fn secondary_service(db: &str) -> String {
    format!("{db}-secondary")
}
/// Stats service `<db>-stats`.
pub fn stats_service(db: &str) -> String {
    format!("{db}-stats")
}
/// Certificate secret `<db>-<alias>-cert`.
pub fn cert_secret(db: &str, alias: &str) -> String {
    format!("{db}-{alias}-cert")
}
/// Operator-rendered config secret `<db>-<last 6 characters of the UID>`.
pub fn config_secret(db: &str, uid: &str) -> String {
    format!("{db}-{}", uid_suffix(uid))
}
/// SingleStore inline-config secret `<db>-<suffix>-<uid6>` (or `<db>-<uid6>` without suffix).
pub fn singlestore_config_secret(db: &str, suffix: Option<&str>, uid: &str) -> String {
    match suffix.filter(|s| !s.is_empty()) {
        Some(s) => format!("{db}-{s}-{}", uid_suffix(uid)),
        None => config_secret(db, uid),
    }
}
fn uid_suffix(uid: &str) -> &str {
    let start = uid.len().saturating_sub(6);
    uid.get(start..).unwrap_or(uid)
}
/// PVC of a pod: `data-<pod>`.
pub fn data_pvc(pod: &str) -> String {
    format!("{DATA_VOLUME}-{pod}")
}
/// Pod `<petset>-<ordinal>`.
pub fn pod_name(petset: &str, ordinal: i32) -> String {
    format!("{petset}-{ordinal}")
}
/// ServiceAccount `<db>` of a clustered database's pods (KubeDB names it after the database).
pub fn service_account(db: &str) -> String {
    db.to_owned()
}
/// Role `<db>`: what the in-pod agents of a clustered database may do.
pub fn agent_role(db: &str) -> String {
    db.to_owned()
}
/// RoleBinding `<db>` of [`agent_role`] to the pods' ServiceAccount(s).
pub fn agent_role_binding(db: &str) -> String {
    db.to_owned()
}

/// MSSQL names and constants.
pub mod mssql {
    /// Main container.
    pub const CONTAINER: &str = "mssql";
    /// Raft coordinator sidecar (cluster only).
    pub const COORDINATOR_CONTAINER: &str = "mssql-coordinator";
    /// Init container.
    pub const INIT_CONTAINER: &str = "mssql-init";
    /// Exporter container.
    pub const EXPORTER_CONTAINER: &str = "exporter";
    /// Database port and its name.
    pub const DB_PORT: i32 = 1433;
    /// Database port name.
    pub const DB_PORT_NAME: &str = "db";
    /// Mirroring endpoint port.
    pub const MIRRORING_PORT: i32 = 5022;
    /// Mirroring port name (chosen here; the reference does not name it).
    pub const MIRRORING_PORT_NAME: &str = "mirror";
    /// Coordinator raft peer port.
    pub const COORDINATOR_PORT: i32 = 2380;
    /// Coordinator raft peer port name.
    pub const COORDINATOR_PORT_NAME: &str = "coordinator";
    /// Coordinator client port.
    pub const COORDINATOR_CLIENT_PORT: i32 = 2379;
    /// Coordinator client port name (KubeDB's spelling).
    pub const COORDINATOR_CLIENT_PORT_NAME: &str = "coordinatclient";
    /// Exporter port.
    pub const EXPORTER_PORT: i32 = 9399;
    /// Data directory.
    pub const DATA_PATH: &str = "/var/opt/mssql";
    /// Config file path.
    pub const CONFIG_PATH: &str = "/var/opt/mssql/mssql.conf";
    /// Config key in secrets.
    pub const CONFIG_KEY: &str = "mssql.conf";
    /// Init scripts.
    pub const SCRIPTS_PATH: &str = "/scripts";
    /// Endpoint certificate.
    pub const ENDPOINT_CERT_PATH: &str = "/var/opt/mssql/endpoint-cert";
    /// Certificates.
    pub const CERTS_PATH: &str = "/var/opt/mssql/certs";
    /// TLS.
    pub const TLS_PATH: &str = "/var/opt/mssql/tls";
    /// CA certificates.
    pub const CA_CERTS_PATH: &str = "/var/opt/mssql/security/ca-certificates";
    /// System certificates.
    pub const SSL_CERTS_PATH: &str = "/etc/ssl/certs";
    /// `ACCEPT_EULA`.
    pub const ENV_ACCEPT_EULA: &str = "ACCEPT_EULA";
    /// `MSSQL_PID` (required in the mssql container env).
    pub const ENV_PID: &str = "MSSQL_PID";
    /// `MSSQL_ENABLE_HADR` (reserved).
    pub const ENV_ENABLE_HADR: &str = "MSSQL_ENABLE_HADR";
    /// `MSSQL_AGENT_ENABLED` (reserved).
    pub const ENV_AGENT_ENABLED: &str = "MSSQL_AGENT_ENABLED";
    /// `MSSQL_SA_USERNAME` (reserved).
    pub const ENV_SA_USERNAME: &str = "MSSQL_SA_USERNAME";
    /// `MSSQL_SA_PASSWORD` (reserved).
    pub const ENV_SA_PASSWORD: &str = "MSSQL_SA_PASSWORD";
    /// Env names a user may not set on the mssql container.
    pub const RESERVED_ENV: [&str; 5] = [
        ENV_SA_USERNAME,
        ENV_SA_PASSWORD,
        ENV_ENABLE_HADR,
        ENV_AGENT_ENABLED,
        "VERSION",
    ];
    /// The SA user.
    pub const SA_USER: &str = "sa";
    /// Name of the local object of a DistributedAG.
    pub const DISTRIBUTED_AG_NAME: &str = "dag";
    /// Fallback AG name when the DB name has no alphanumeric characters.
    pub const DEFAULT_AG_NAME: &str = "DefaultGroupName";

    /// PetSet `<db>`.
    pub fn petset(db: &str) -> String {
        db.to_owned()
    }
    /// Arbiter PetSet `<db>-arbiter`.
    pub fn arbiter_petset(db: &str) -> String {
        format!("{db}-arbiter")
    }
    /// Default DBM login secret `<db>-dbm-login`.
    pub fn dbm_login_secret(db: &str) -> String {
        format!("{db}-dbm-login")
    }
    /// Default master-key secret `<db>-master-key`.
    pub fn master_key_secret(db: &str) -> String {
        format!("{db}-master-key")
    }
    /// Default endpoint-cert secret `<db>-endpoint-cert`.
    pub fn endpoint_cert_secret(db: &str) -> String {
        format!("{db}-endpoint-cert")
    }
    /// Lease `<db>-primary`: held by the agent of the availability group's primary.
    pub fn primary_lease(db: &str) -> String {
        format!("{db}-primary")
    }
    /// AG name: the alphanumeric characters of the DB name (`mssql-ag` → `mssqlag`).
    pub fn availability_group(db: &str) -> String {
        let name: String = db.chars().filter(char::is_ascii_alphanumeric).collect();
        if name.is_empty() {
            DEFAULT_AG_NAME.to_owned()
        } else {
            name
        }
    }
}

/// SingleStore names and constants.
pub mod singlestore {
    /// Main container.
    pub const CONTAINER: &str = "singlestore";
    /// Coordinator sidecar (cluster only).
    pub const COORDINATOR_CONTAINER: &str = "singlestore-coordinator";
    /// Init container.
    pub const INIT_CONTAINER: &str = "singlestore-init";
    /// Database port.
    pub const DB_PORT: i32 = 3306;
    /// Database port name.
    pub const DB_PORT_NAME: &str = "db";
    /// Studio port.
    pub const STUDIO_PORT: i32 = 8081;
    /// Studio port name.
    pub const STUDIO_PORT_NAME: &str = "studio";
    /// Exporter port.
    pub const EXPORTER_PORT: i32 = 9104;
    /// Data directory.
    pub const DATA_PATH: &str = "/var/lib/memsql";
    /// Custom configuration directory.
    pub const CONFIG_PATH: &str = "/etc/memsql/conf.d";
    /// TLS directory.
    pub const TLS_PATH: &str = "/etc/memsql/certs";
    /// User init scripts.
    pub const INIT_SCRIPTS_PATH: &str = "/docker-entrypoint-initdb.d";
    /// Internal scripts.
    pub const SCRIPTS_PATH: &str = "/scripts";
    /// Coordinator (agent) client port: the agent's HTTP server (`/healthz`, `/ready`).
    pub const COORDINATOR_CLIENT_PORT: i32 = 2379;
    /// Coordinator client port name (the same spelling as MSSQL's).
    pub const COORDINATOR_CLIENT_PORT_NAME: &str = "coordinatclient";
    /// Root user.
    pub const ROOT_USER: &str = "root";
    /// PetSet type of aggregators.
    pub const PETSET_TYPE_AGGREGATOR: &str = "aggregator";
    /// PetSet type of leaves.
    pub const PETSET_TYPE_LEAF: &str = "leaf";
    /// `kubedb.com/role` of the master aggregator's pod, set by its agent (KubeDB's
    /// `DatabasePodMaster`).
    pub const ROLE_MASTER: &str = "Master";
    /// `kubedb.com/role` of a child aggregator's pod (KubeDB's `DatabasePodAggregator`).
    pub const ROLE_AGGREGATOR: &str = "Aggregator";
    /// `kubedb.com/role` of a leaf's pod (KubeDB's `DatabasePodLeaf`).
    pub const ROLE_LEAF: &str = "Leaf";
    /// Annotation on the [`master_lease`] recording that the cluster was bootstrapped (value:
    /// the master's host at that moment): no agent bootstraps another one while it is there.
    pub const CLUSTER_BOOTSTRAPPED_ANNOTATION: &str = "db-agent.kubedb.com/cluster-bootstrapped";

    fn with_suffix(db: &str, suffix: Option<&str>, kind: &str) -> String {
        match suffix.filter(|s| !s.is_empty()) {
            Some(s) => format!("{db}-{s}-{kind}"),
            None => format!("{db}-{kind}"),
        }
    }
    /// Standalone PetSet `<db>`.
    pub fn standalone_petset(db: &str) -> String {
        db.to_owned()
    }
    /// Aggregator PetSet `<db>[-suffix]-aggregator`.
    pub fn aggregator_petset(db: &str, suffix: Option<&str>) -> String {
        with_suffix(db, suffix, PETSET_TYPE_AGGREGATOR)
    }
    /// Leaf PetSet `<db>[-suffix]-leaf`.
    pub fn leaf_petset(db: &str, suffix: Option<&str>) -> String {
        with_suffix(db, suffix, PETSET_TYPE_LEAF)
    }
    /// Lease `<db>-master`: held by the agent of the master aggregator.
    pub fn master_lease(db: &str) -> String {
        format!("{db}-master")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derived_names() {
        assert_eq!(auth_secret("db"), "db-auth");
        assert_eq!(governing_service("db"), "db-pods");
        assert_eq!(secondary_service("db"), "db-secondary");
        assert_eq!(stats_service("db"), "db-stats");
        assert_eq!(cert_secret("db", "server"), "db-server-cert");
        assert_eq!(config_secret("db", "1234-abcdef123456"), "db-123456");
        assert_eq!(
            singlestore_config_secret("db", Some("x"), "abc"),
            "db-x-abc"
        );
        assert_eq!(data_pvc(&pod_name("db", 2)), "data-db-2");
        assert_eq!(mssql::arbiter_petset("db"), "db-arbiter");
        assert_eq!(mssql::dbm_login_secret("db"), "db-dbm-login");
        assert_eq!(mssql::master_key_secret("db"), "db-master-key");
        assert_eq!(mssql::endpoint_cert_secret("db"), "db-endpoint-cert");
        assert_eq!(mssql::primary_lease("db"), "db-primary");
        assert_eq!(singlestore::master_lease("sdb"), "sdb-master");
        assert_eq!(service_account("db"), "db");
        assert_eq!(agent_role("db"), "db");
        assert_eq!(agent_role_binding("db"), "db");
        assert_eq!(
            mssql::availability_group("mssqlserver-ag-cluster"),
            "mssqlserveragcluster"
        );
        assert_eq!(mssql::availability_group("---"), mssql::DEFAULT_AG_NAME);
        assert_eq!(
            singlestore::aggregator_petset("sdb", None),
            "sdb-aggregator"
        );
        assert_eq!(singlestore::leaf_petset("sdb", Some("x")), "sdb-x-leaf");
        assert_eq!(
            singlestore::aggregator_petset("sdb", Some("")),
            "sdb-aggregator"
        );
    }

    #[test]
    fn labels() {
        let sel = selector_labels(MSSQL_RESOURCE_NAME, "db");
        assert_eq!(sel.len(), 3);
        assert_eq!(sel[LABEL_NAME], "mssqlservers.kubedb.com");
        assert_eq!(sel[LABEL_INSTANCE], "db");
        assert_eq!(sel[LABEL_MANAGED_BY], "kubedb.com");
        let off = offshoot_labels(SINGLESTORE_RESOURCE_NAME, "sdb");
        assert_eq!(off[LABEL_COMPONENT], "database");
        assert_eq!(off[LABEL_NAME], "singlestores.kubedb.com");
    }
}
