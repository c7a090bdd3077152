//! `MSSQLServer` (`kubedb.com/v1alpha2`): reference §2.1.

use k8s_openapi::api::core::v1::{LocalObjectReference, PersistentVolumeClaimSpec};
use kube::CustomResource;
#[allow(unused_imports)]
use kube::core::Rule;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::common::{
    ArbiterSpec, ArchiverSpec, AutoOpsSpec, ConfigurationSpec, DatabaseStatus, DeletionPolicy,
    DurationError, HealthCheckSpec, InitSpec, PodTemplateSpec, SecretReference,
    ServiceTemplateSpec, StorageType, TLSConfig, parse_duration, preserve_unknown_object,
};

/// Spec of an `MSSQLServer`: a standalone SQL Server, an AvailabilityGroup or one side of a
/// DistributedAG.
#[derive(CustomResource, JsonSchema, Serialize, Deserialize, Debug, Clone, PartialEq)]
#[kube(
    group = "kubedb.com",
    version = "v1alpha2",
    kind = "MSSQLServer",
    doc = "MSSQLServer is a Microsoft SQL Server database managed by the KubeDB-compatible provisioner (standalone, AvailabilityGroup or DistributedAG).",
    plural = "mssqlservers",
    singular = "mssqlserver",
    namespaced,
    shortname = "ms",
    category = "datastore",
    category = "kubedb",
    category = "appscode",
    category = "all",
    status = "DatabaseStatus",
    derive = "PartialEq",
    label("app.kubernetes.io/name", "kubedb"),
    annotation("helm.sh/resource-policy", "keep"),
    printcolumn(name = "Version", type_ = "string", json_path = ".spec.version"),
    printcolumn(name = "Status", type_ = "string", json_path = ".status.phase"),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp"),
    validation = Rule::new("self.metadata.name.size() <= 63").message("metadata.name must be at most 63 characters"),
    validation = Rule::new("self.metadata.name.matches('^[a-z]([-a-z0-9]*[a-z0-9])?$')").message("metadata.name must consist of lower-case letters, digits and '-', start with a letter and end with a letter or digit"),
)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [
    {
        "rule": "has(self.topology) || !has(self.replicas) || self.replicas == 1",
        "message": "number of replicas for standalone must be one",
    },
    {
        "rule": "!has(self.replicas) || self.replicas > 0",
        "message": "spec.replicas must be greater than zero",
    },
    {
        "rule": "self.version != ''",
        "message": "spec.version must name an MSSQLServerVersion",
    },
    {
        "rule": "has(self.tls.issuerRef)",
        "message": "spec.tls.issuerRef is required",
    },
    {
        "rule": "!has(self.storageType) || self.storageType != 'Durable' || has(self.storage)",
        "message": "spec.storage is required when spec.storageType is Durable",
    },
]))]
pub struct MSSQLServerSpec {
    /// Name of the `MSSQLServerVersion` to run.
    pub version: String,
    /// Number of AG members (standalone: 1). At most 9: SQL Server availability groups have a
    /// primary and at most eight secondaries.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 9))]
    pub replicas: Option<i32>,
    /// Cluster topology; absent means standalone.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub topology: Option<MSSQLServerTopology>,
    /// Arbiter for AGs with an even number of replicas.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub arbiter: Option<ArbiterSpec>,
    /// Durable (PVCs) or Ephemeral (emptyDir). Default `Durable`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = "Durable"))]
    pub storage_type: Option<StorageType>,
    /// PVC template for the `data` volume.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub storage: Option<PersistentVolumeClaimSpec>,
    /// Secret with the `sa` credentials (default `<db>-auth`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auth_secret: Option<SecretReference>,
    /// Initialization settings.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub init: Option<InitSpec>,
    /// Deprecated: use `configuration.secretName`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub config_secret: Option<LocalObjectReference>,
    /// Custom `mssql.conf`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub configuration: Option<ConfigurationSpec>,
    /// Pod template overrides.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pod_template: Option<PodTemplateSpec>,
    /// Service template overrides (`primary`, `secondary`, `stats`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service_templates: Option<Vec<ServiceTemplateSpec>>,
    /// TLS settings; required, and `issuerRef` is required.
    pub tls: MSSQLServerTLSConfig,
    /// Monitoring agent (monitoring-agent-api `AgentSpec`, not modelled).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "preserve_unknown_object")]
    pub monitor: Option<serde_json::Value>,
    /// Halt the database: delete every offshoot except the PVCs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub halted: Option<bool>,
    /// What deletion removes. Default `Delete`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = "Delete"))]
    pub deletion_policy: Option<DeletionPolicy>,
    /// Health-check settings.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = {"periodSeconds": 10, "timeoutSeconds": 10, "failureThreshold": 1}))]
    pub health_checker: Option<HealthCheckSpec>,
    /// Continuous archiving.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub archiver: Option<ArchiverSpec>,
    /// Recommendation ops settings.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auto_ops: Option<AutoOpsSpec>,
}

impl MSSQLServerSpec {
    /// Standalone means no topology.
    pub fn is_standalone(&self) -> bool {
        self.topology.is_none()
    }

    /// Mode is AvailabilityGroup.
    pub fn is_availability_group(&self) -> bool {
        self.topology
            .as_ref()
            .is_some_and(|t| t.mode == MSSQLServerMode::AvailabilityGroup)
    }

    /// Mode is DistributedAG and `distributedAG` is set.
    pub fn is_distributed_ag(&self) -> bool {
        self.topology
            .as_ref()
            .is_some_and(|t| t.mode == MSSQLServerMode::DistributedAG && t.distributed_ag.is_some())
    }

    /// Effective replicas (1 when unset).
    pub fn replicas(&self) -> i32 {
        self.replicas.unwrap_or(1)
    }

    /// Effective storage type (`Durable` when unset).
    pub fn storage_type(&self) -> StorageType {
        self.storage_type.unwrap_or_default()
    }

    /// Effective deletion policy (`Delete` when unset).
    pub fn deletion_policy(&self) -> DeletionPolicy {
        self.deletion_policy.unwrap_or_default()
    }

    /// Effective health-check settings.
    pub fn health_checker(&self) -> HealthCheckSpec {
        self.health_checker.clone().unwrap_or_default()
    }

    /// Whether the database is halted.
    pub fn halted(&self) -> bool {
        self.halted.unwrap_or(false)
    }

    /// Whether an arbiter is needed: AG mode with an even number of replicas.
    pub fn needs_arbiter(&self) -> bool {
        self.is_availability_group() && self.replicas() % 2 == 0
    }
}

/// MSSQL cluster mode.
#[derive(Serialize, Deserialize, JsonSchema, Debug, Clone, Copy, PartialEq, Eq)]
pub enum MSSQLServerMode {
    /// One AvailabilityGroup inside this cluster.
    AvailabilityGroup,
    /// One side of a DistributedAG spanning two clusters.
    #[serde(rename = "DistributedAG")]
    DistributedAG,
}

/// `spec.topology`.
#[derive(Serialize, Deserialize, JsonSchema, Debug, Clone, PartialEq)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [
    {
        "rule": "self.mode != 'DistributedAG' || has(self.distributedAG)",
        "message": "spec.topology.distributedAG is required when mode is DistributedAG",
    },
]))]
pub struct MSSQLServerTopology {
    /// Cluster mode.
    pub mode: MSSQLServerMode,
    /// AvailabilityGroup settings.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub availability_group: Option<AvailabilityGroupSpec>,
    /// DistributedAG settings.
    #[serde(rename = "distributedAG", skip_serializing_if = "Option::is_none")]
    pub distributed_ag: Option<DistributedAGSpec>,
}

/// Which replicas accept connections on the secondaries.
#[derive(Serialize, Deserialize, JsonSchema, Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SecondaryAccessMode {
    /// `ALLOW_CONNECTIONS = NO` (default).
    #[default]
    Passive,
    /// `ALLOW_CONNECTIONS = READ_ONLY`.
    ReadOnly,
    /// `ALLOW_CONNECTIONS = ALL`.
    All,
}

impl SecondaryAccessMode {
    /// The value as the spec spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Passive => "Passive",
            Self::ReadOnly => "ReadOnly",
            Self::All => "All",
        }
    }

    /// The value of a spec spelling, if it is one.
    pub fn parse(value: &str) -> Option<Self> {
        [Self::Passive, Self::ReadOnly, Self::All]
            .into_iter()
            .find(|m| m.as_str() == value)
    }

    /// The T-SQL `SECONDARY_ROLE` clause.
    pub fn secondary_role_sql(self) -> &'static str {
        match self {
            Self::Passive => "SECONDARY_ROLE (ALLOW_CONNECTIONS = NO)",
            Self::ReadOnly => "SECONDARY_ROLE (ALLOW_CONNECTIONS = READ_ONLY)",
            Self::All => "SECONDARY_ROLE (ALLOW_CONNECTIONS = ALL)",
        }
    }
}

/// `spec.topology.availabilityGroup`.
#[derive(Serialize, Deserialize, JsonSchema, Debug, Clone, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct AvailabilityGroupSpec {
    /// Databases created by KubeDB and added to the AG.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub databases: Option<Vec<String>>,
    /// Secondary access mode (default `Passive`).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = "Passive"))]
    pub secondary_access_mode: Option<SecondaryAccessMode>,
    /// Raft settings of the `mssql-coordinator` sidecar.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub leader_election: Option<LeaderElectionConfig>,
    /// Secret with the DBM login (default `<db>-dbm-login`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub login_secret_name: Option<String>,
    /// Secret with the master key (default `<db>-master-key`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub master_key_secret_name: Option<String>,
    /// Secret with the endpoint certificate (default `<db>-endpoint-cert`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub endpoint_cert_secret_name: Option<String>,
}

impl AvailabilityGroupSpec {
    /// Effective secondary access mode.
    pub fn secondary_access_mode(&self) -> SecondaryAccessMode {
        self.secondary_access_mode.unwrap_or_default()
    }

    /// Effective leader-election settings: when the whole object is absent KubeDB's mutating
    /// webhook fills a period of `300ms`; missing fields of a present object take the CRD
    /// defaults (period `100ms`).
    pub fn leader_election(&self) -> LeaderElectionConfig {
        match &self.leader_election {
            Some(le) => le.clone(),
            None => LeaderElectionConfig {
                period: Some(LeaderElectionConfig::WEBHOOK_PERIOD.to_owned()),
                ..LeaderElectionConfig::default()
            },
        }
    }
}

/// Raft leader-election settings (`leaderElection`). Durations are Go duration strings.
#[derive(Serialize, Deserialize, JsonSchema, Debug, Clone, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct LeaderElectionConfig {
    /// Raft tick period (CRD default `100ms`).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = "100ms"))]
    pub period: Option<String>,
    /// Ticks before an election (default 10).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = 10))]
    pub election_tick: Option<i32>,
    /// Ticks between heartbeats (default 1).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = 1))]
    pub heartbeat_tick: Option<i32>,
    /// Interval between leadership-transfer checks (default `1s`).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = "1s"))]
    pub transfer_leadership_interval: Option<String>,
    /// Timeout of a leadership transfer (default `60s`).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = "60s"))]
    pub transfer_leadership_timeout: Option<String>,
}

impl LeaderElectionConfig {
    /// CRD default period.
    pub const DEFAULT_PERIOD: &'static str = "100ms";
    /// Period the mutating webhook fills when the whole object is absent.
    pub const WEBHOOK_PERIOD: &'static str = "300ms";
    /// Default election tick.
    pub const DEFAULT_ELECTION_TICK: i32 = 10;
    /// Default heartbeat tick.
    pub const DEFAULT_HEARTBEAT_TICK: i32 = 1;
    /// Default transfer-leadership interval.
    pub const DEFAULT_TRANSFER_LEADERSHIP_INTERVAL: &'static str = "1s";
    /// Default transfer-leadership timeout.
    pub const DEFAULT_TRANSFER_LEADERSHIP_TIMEOUT: &'static str = "60s";

    /// Effective period.
    pub fn period(&self) -> Result<std::time::Duration, DurationError> {
        parse_duration(
            "leaderElection.period",
            self.period.as_deref().unwrap_or(Self::DEFAULT_PERIOD),
        )
    }
    /// Effective election tick.
    pub fn election_tick(&self) -> i32 {
        self.election_tick.unwrap_or(Self::DEFAULT_ELECTION_TICK)
    }
    /// Effective heartbeat tick.
    pub fn heartbeat_tick(&self) -> i32 {
        self.heartbeat_tick.unwrap_or(Self::DEFAULT_HEARTBEAT_TICK)
    }
    /// Effective transfer-leadership interval.
    pub fn transfer_leadership_interval(&self) -> Result<std::time::Duration, DurationError> {
        parse_duration(
            "leaderElection.transferLeadershipInterval",
            self.transfer_leadership_interval
                .as_deref()
                .unwrap_or(Self::DEFAULT_TRANSFER_LEADERSHIP_INTERVAL),
        )
    }
    /// Effective transfer-leadership timeout.
    pub fn transfer_leadership_timeout(&self) -> Result<std::time::Duration, DurationError> {
        parse_duration(
            "leaderElection.transferLeadershipTimeout",
            self.transfer_leadership_timeout
                .as_deref()
                .unwrap_or(Self::DEFAULT_TRANSFER_LEADERSHIP_TIMEOUT),
        )
    }
}

/// Role of this side of a DistributedAG.
#[derive(Serialize, Deserialize, JsonSchema, Debug, Clone, Copy, PartialEq, Eq)]
pub enum DistributedAGRole {
    /// The primary side.
    Primary,
    /// The secondary side.
    Secondary,
}

/// `topology.distributedAG`.
#[derive(Serialize, Deserialize, JsonSchema, Debug, Clone, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct DistributedAGSpec {
    /// This side.
    #[serde(rename = "self")]
    pub self_: DistributedAGSelf,
    /// The remote side.
    pub remote: DistributedAGRemote,
}

/// `distributedAG.self`.
#[derive(Serialize, Deserialize, JsonSchema, Debug, Clone, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct DistributedAGSelf {
    /// Role of this side.
    pub role: DistributedAGRole,
    /// Listener endpoint of this side, e.g. `host:5022`.
    pub url: String,
}

/// `distributedAG.remote`.
#[derive(Serialize, Deserialize, JsonSchema, Debug, Clone, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct DistributedAGRemote {
    /// Name of the remote AG.
    pub name: String,
    /// Listener endpoint of the remote side.
    pub url: String,
}

/// `spec.tls` of an MSSQLServer: kmapi TLSConfig plus `clientTLS`.
#[derive(Serialize, Deserialize, JsonSchema, Debug, Clone, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct MSSQLServerTLSConfig {
    /// Issuer and certificates.
    #[serde(flatten)]
    pub tls: TLSConfig,
    /// Require TLS from clients (default false).
    #[serde(rename = "clientTLS", skip_serializing_if = "Option::is_none")]
    pub client_tls: Option<bool>,
}

impl MSSQLServerTLSConfig {
    /// Effective `clientTLS`.
    pub fn client_tls(&self) -> bool {
        self.client_tls.unwrap_or(false)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn leader_election_defaults_follow_webhook_and_crd() {
        // Whole object absent: the mutating webhook's 300ms.
        let ag = AvailabilityGroupSpec::default();
        assert_eq!(
            ag.leader_election().period(),
            Ok(Duration::from_millis(300))
        );
        // Object present, fields absent: the CRD defaults.
        let ag = AvailabilityGroupSpec {
            leader_election: Some(LeaderElectionConfig::default()),
            ..AvailabilityGroupSpec::default()
        };
        let le = ag.leader_election();
        assert_eq!(le.period(), Ok(Duration::from_millis(100)));
        assert_eq!((le.election_tick(), le.heartbeat_tick()), (10, 1));
        assert_eq!(
            le.transfer_leadership_interval(),
            Ok(Duration::from_secs(1))
        );
        assert_eq!(
            le.transfer_leadership_timeout(),
            Ok(Duration::from_secs(60))
        );
        assert_eq!(ag.secondary_access_mode(), SecondaryAccessMode::Passive);
    }

    #[test]
    fn invalid_leader_election_period_is_reported() {
        let le = LeaderElectionConfig {
            period: Some("fast".into()),
            ..LeaderElectionConfig::default()
        };
        let err = le.period().unwrap_err().to_string();
        assert!(err.contains("leaderElection.period"), "{err}");
    }

    #[test]
    fn arbiter_only_for_even_availability_groups() {
        let spec = |replicas: i32, mode: Option<MSSQLServerMode>| MSSQLServerSpec {
            version: "2022-cu22".into(),
            replicas: Some(replicas),
            topology: mode.map(|mode| MSSQLServerTopology {
                mode,
                availability_group: None,
                distributed_ag: None,
            }),
            arbiter: None,
            storage_type: None,
            storage: None,
            auth_secret: None,
            init: None,
            config_secret: None,
            configuration: None,
            pod_template: None,
            service_templates: None,
            tls: MSSQLServerTLSConfig::default(),
            monitor: None,
            halted: None,
            deletion_policy: None,
            health_checker: None,
            archiver: None,
            auto_ops: None,
        };
        assert!(spec(2, Some(MSSQLServerMode::AvailabilityGroup)).needs_arbiter());
        assert!(!spec(3, Some(MSSQLServerMode::AvailabilityGroup)).needs_arbiter());
        assert!(!spec(1, None).needs_arbiter());
        // DistributedAG mode without its section is not a DAG.
        assert!(!spec(2, Some(MSSQLServerMode::DistributedAG)).is_distributed_ag());
    }
}
