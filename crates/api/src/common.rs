//! Types shared by both database kinds, both ops-request kinds and both catalog kinds.
//!
//! These mirror the kmodules (`kmapi`), offshoot-api v2 and KubeDB `v1alpha2` helper types that
//! KubeDB's Go API embeds. Every optional field is an `Option` that is skipped when absent, so a
//! deserialize → serialize round trip returns the same JSON value. Defaults are never injected by
//! serde: they live in the CRD schema (`default:`) and in accessor methods that return the
//! effective value.

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::core::v1::{
    Affinity, Container, EphemeralContainer, HostAlias, LocalObjectReference, PodDNSConfig, PodOS,
    PodReadinessGate, PodResourceClaim, PodSchedulingGate, PodSecurityContext,
    ResourceRequirements, ServiceSpec, Toleration, TopologySpreadConstraint,
    TypedLocalObjectReference, Volume,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::conditions::Condition;

/// Schema for a field that holds a foreign, open structure we do not model (for example the
/// monitoring AgentSpec): an object whose unknown fields the API server keeps.
pub(crate) fn preserve_unknown_object(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "type": "object",
        "x-kubernetes-preserve-unknown-fields": true,
    })
}

/// Error returned by [`parse_duration`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    /// The string is not a Go duration such as `5m`, `100ms` or `1h30m`.
    #[error(
        "invalid duration {value:?} in {field}: {reason} (expected a Go duration such as \"5m\", \"100ms\" or \"1h30m\")"
    )]
    Invalid {
        /// The field the value came from, e.g. `spec.timeout`.
        field: String,
        /// The offending value.
        value: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The duration is negative.
    #[error("negative duration {value:?} in {field} is not allowed")]
    Negative {
        /// The field the value came from.
        field: String,
        /// The offending value.
        value: String,
    },
}

/// Parses a Kubernetes `metav1.Duration` string (Go `time.ParseDuration` syntax, e.g. `5m`,
/// `100ms`, `1h30m`) into a [`std::time::Duration`].
///
/// `field` names where the value came from and is used in the error message.
pub fn parse_duration(field: &str, value: &str) -> Result<Duration, DurationError> {
    if value.trim().is_empty() {
        return Err(DurationError::Invalid {
            field: field.to_owned(),
            value: value.to_owned(),
            reason: "empty value".to_owned(),
        });
    }
    let parsed: kube::core::Duration =
        value
            .trim()
            .parse()
            .map_err(
                |e: kube::core::duration::ParseError| DurationError::Invalid {
                    field: field.to_owned(),
                    value: value.to_owned(),
                    reason: e.to_string(),
                },
            )?;
    if parsed.is_negative() {
        return Err(DurationError::Negative {
            field: field.to_owned(),
            value: value.to_owned(),
        });
    }
    Ok(parsed.into())
}

/// What happens to the database's resources when the object is deleted (`spec.deletionPolicy`).
#[derive(Serialize, Deserialize, JsonSchema, Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DeletionPolicy {
    /// Keep PVCs and secrets; delete the rest.
    Halt,
    /// Delete everything except the secrets (KubeDB's default).
    #[default]
    Delete,
    /// Delete everything, including PVCs and secrets.
    WipeOut,
    /// Reject deletion.
    DoNotTerminate,
}

/// Whether the data lives on PVCs or on `emptyDir` volumes (`spec.storageType`).
#[derive(Serialize, Deserialize, JsonSchema, Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StorageType {
    /// PersistentVolumeClaims from `spec.storage` (default).
    #[default]
    Durable,
    /// `emptyDir` volumes; data is lost with the pod.
    Ephemeral,
}

/// KubeDB's `SecretReference` (`authSecret`, `licenseSecret`).
#[derive(Serialize, Deserialize, JsonSchema, Debug, Clone, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct SecretReference {
    /// API group of the referenced object (empty for core Secrets).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub api_group: Option<String>,
    /// Kind of the referenced object; KubeDB defaults it to `Secret`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// Name of the secret.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Name of an external secret store (for externally managed secrets).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret_store_name: Option<String>,
    /// Rotate the credentials after this duration (Go duration string).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rotate_after: Option<String>,
    /// Time the current credentials became active (RFC 3339).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub active_from: Option<String>,
    /// The secret is created and rotated by the user, not by the operator.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub externally_managed: Option<bool>,
}

impl SecretReference {
    /// The effective kind (`Secret` when unset).
    pub fn kind(&self) -> &str {
        self.kind.as_deref().unwrap_or("Secret")
    }
}

/// Custom configuration (`spec.configuration`): a user secret and/or inline file contents.
#[derive(Serialize, Deserialize, JsonSchema, Debug, Clone, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct ConfigurationSpec {
    /// Name of a secret holding configuration files.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret_name: Option<String>,
    /// Inline configuration, file name → contents.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub inline: Option<BTreeMap<String, String>>,
}

/// kmapi `X509Subject`: the subject of a certificate.
#[derive(Serialize, Deserialize, JsonSchema, Debug, Clone, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct X509Subject {
    /// Organizations (O).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub organizations: Option<Vec<String>>,
    /// Countries (C).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub countries: Option<Vec<String>>,
    /// Organizational units (OU).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub organizational_units: Option<Vec<String>>,
    /// Localities (L).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub localities: Option<Vec<String>>,
    /// Provinces (ST).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub provinces: Option<Vec<String>>,
    /// Street addresses.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub street_addresses: Option<Vec<String>>,
    /// Postal codes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub postal_codes: Option<Vec<String>>,
    /// Serial number.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub serial_number: Option<String>,
}

/// kmapi `CertificatePrivateKey`.
#[derive(Serialize, Deserialize, JsonSchema, Debug, Clone, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct CertificatePrivateKey {
    /// Key encoding: `PKCS1` or `PKCS8`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub encoding: Option<String>,
}

/// kmapi `CertificateSpec`: overrides for one certificate alias (`server`, `client`, ...).
#[derive(Serialize, Deserialize, JsonSchema, Debug, Clone, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct CertificateSpec {
    /// Certificate alias, e.g. `server`, `client`, `endpoint`.
    pub alias: String,
    /// Issuer for this certificate only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub issuer_ref: Option<TypedLocalObjectReference>,
    /// Secret that receives the certificate (default `<db>-<alias>-cert`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret_name: Option<String>,
    /// Certificate subject.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subject: Option<X509Subject>,
    /// Certificate lifetime (Go duration string).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration: Option<String>,
    /// Renew this long before expiry (Go duration string).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub renew_before: Option<String>,
    /// DNS subject alternative names.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dns_names: Option<Vec<String>>,
    /// IP subject alternative names.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ip_addresses: Option<Vec<String>>,
    /// URI subject alternative names.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uris: Option<Vec<String>>,
    /// E-mail subject alternative names.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email_addresses: Option<Vec<String>>,
    /// Private key options.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub private_key: Option<CertificatePrivateKey>,
}

/// kmapi `TLSConfig`: an issuer and per-alias certificate overrides.
#[derive(Serialize, Deserialize, JsonSchema, Debug, Clone, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct TLSConfig {
    /// The cert-manager `Issuer` or `ClusterIssuer` that signs the certificates.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub issuer_ref: Option<TypedLocalObjectReference>,
    /// Per-alias certificate settings.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub certificates: Option<Vec<CertificateSpec>>,
}

/// `HealthCheckSpec` (`spec.healthChecker`). CRD defaults: period 10 s, timeout 10 s, threshold 1.
#[derive(Serialize, Deserialize, JsonSchema, Debug, Clone, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct HealthCheckSpec {
    /// Seconds between health checks (default 10).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = 10))]
    pub period_seconds: Option<i32>,
    /// Seconds before a health check times out (default 10).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = 10))]
    pub timeout_seconds: Option<i32>,
    /// Consecutive failures before the database is marked not ready (default 1).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = 1))]
    pub failure_threshold: Option<i32>,
    /// Skip the write probe (set by the ops-manager while an ops request runs).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disable_write_check: Option<bool>,
}

impl HealthCheckSpec {
    /// Default period between health checks, in seconds.
    pub const DEFAULT_PERIOD_SECONDS: i32 = 10;
    /// Default health-check timeout, in seconds.
    pub const DEFAULT_TIMEOUT_SECONDS: i32 = 10;
    /// Default failure threshold.
    pub const DEFAULT_FAILURE_THRESHOLD: i32 = 1;

    /// Effective period in seconds.
    pub fn period_seconds(&self) -> i32 {
        self.period_seconds.unwrap_or(Self::DEFAULT_PERIOD_SECONDS)
    }
    /// Effective timeout in seconds.
    pub fn timeout_seconds(&self) -> i32 {
        self.timeout_seconds
            .unwrap_or(Self::DEFAULT_TIMEOUT_SECONDS)
    }
    /// Effective failure threshold.
    pub fn failure_threshold(&self) -> i32 {
        self.failure_threshold
            .unwrap_or(Self::DEFAULT_FAILURE_THRESHOLD)
    }
    /// Whether the write probe is disabled.
    pub fn disable_write_check(&self) -> bool {
        self.disable_write_check.unwrap_or(false)
    }
}

/// offshoot-api `ObjectMeta` subset used in templates: labels and annotations only.
#[derive(Serialize, Deserialize, JsonSchema, Debug, Clone, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct TemplateMeta {
    /// Labels to add.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub labels: Option<BTreeMap<String, String>>,
    /// Annotations to add.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
}

/// offshoot-api v2 `PodTemplateSpec` (`spec.podTemplate`).
#[derive(Serialize, Deserialize, JsonSchema, Debug, Clone, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct PodTemplateSpec {
    /// Labels and annotations for the pods.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metadata: Option<TemplateMeta>,
    /// Labels and annotations for the controller (PetSet/StatefulSet) object.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub controller: Option<TemplateMeta>,
    /// A partial pod spec merged into the generated one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub spec: Option<PodSpec>,
}

impl PodTemplateSpec {
    /// The container named `name` in `spec.containers`, if any.
    pub fn container(&self, name: &str) -> Option<&Container> {
        self.spec
            .as_ref()?
            .containers
            .as_ref()?
            .iter()
            .find(|c| c.name == name)
    }
}

/// offshoot-api v2 `PodSpec`: every field optional so a partial pod spec (for example only the
/// `mssql` container's `env`) parses. Containers are merged by name into the operator's pod.
#[derive(Serialize, Deserialize, JsonSchema, Debug, Clone, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct PodSpec {
    /// Extra volumes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub volumes: Option<Vec<Volume>>,
    /// Init containers (merged by name).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub init_containers: Option<Vec<Container>>,
    /// Containers (merged by name with `mssql`, `singlestore`, coordinators, ...).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub containers: Option<Vec<Container>>,
    /// Ephemeral containers.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ephemeral_containers: Option<Vec<EphemeralContainer>>,
    /// Restart policy.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub restart_policy: Option<String>,
    /// Grace period for pod termination.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub termination_grace_period_seconds: Option<i64>,
    /// Active deadline.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub active_deadline_seconds: Option<i64>,
    /// DNS policy.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dns_policy: Option<String>,
    /// Node selector.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node_selector: Option<BTreeMap<String, String>>,
    /// Service account for the pods.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service_account_name: Option<String>,
    /// Whether to mount the service-account token.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub automount_service_account_token: Option<bool>,
    /// Request a specific node.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node_name: Option<String>,
    /// Use the host network.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host_network: Option<bool>,
    /// Use the host PID namespace.
    #[serde(rename = "hostPID", skip_serializing_if = "Option::is_none")]
    pub host_pid: Option<bool>,
    /// Use the host IPC namespace.
    #[serde(rename = "hostIPC", skip_serializing_if = "Option::is_none")]
    pub host_ipc: Option<bool>,
    /// Share one process namespace between containers.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub share_process_namespace: Option<bool>,
    /// Pod-level security context.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub security_context: Option<PodSecurityContext>,
    /// Image pull secrets.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image_pull_secrets: Option<Vec<LocalObjectReference>>,
    /// Affinity rules.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub affinity: Option<Affinity>,
    /// Scheduler name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scheduler_name: Option<String>,
    /// Tolerations.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tolerations: Option<Vec<Toleration>>,
    /// Priority class name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub priority_class_name: Option<String>,
    /// Priority value.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub priority: Option<i32>,
    /// DNS configuration.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dns_config: Option<PodDNSConfig>,
    /// Readiness gates.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub readiness_gates: Option<Vec<PodReadinessGate>>,
    /// Runtime class name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub runtime_class_name: Option<String>,
    /// Whether service environment variables are injected.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enable_service_links: Option<bool>,
    /// Preemption policy.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub preemption_policy: Option<String>,
    /// Pod overhead.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub overhead: Option<BTreeMap<String, Quantity>>,
    /// Topology spread constraints.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub topology_spread_constraints: Option<Vec<TopologySpreadConstraint>>,
    /// Host aliases.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host_aliases: Option<Vec<HostAlias>>,
    /// Set the hostname as the FQDN.
    #[serde(rename = "setHostnameAsFQDN", skip_serializing_if = "Option::is_none")]
    pub set_hostname_as_fqdn: Option<bool>,
    /// Target operating system.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub os: Option<PodOS>,
    /// Use the host user namespace.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host_users: Option<bool>,
    /// Scheduling gates.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scheduling_gates: Option<Vec<PodSchedulingGate>>,
    /// Resource claims.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resource_claims: Option<Vec<PodResourceClaim>>,
    /// Pod-level resources.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourceRequirements>,
    /// Reference to a cluster-scoped PetSet `PlacementPolicy` (KubeDB defaults it to `default`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pod_placement_policy: Option<LocalObjectReference>,
}

/// Which service a [`ServiceTemplateSpec`] applies to.
#[derive(Serialize, Deserialize, JsonSchema, Debug, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub enum ServiceAlias {
    /// The primary service `<db>`.
    Primary,
    /// The standby service.
    Standby,
    /// The stats service `<db>-stats`.
    Stats,
    /// The dashboard service.
    Dashboard,
    /// The secondary service `<db>-secondary`.
    Secondary,
}

/// offshoot-api `ServiceSpec` subset that a service template may override.
pub type ServiceSpecOverride = ServiceSpec;

/// A per-alias service template (`spec.serviceTemplates[]`).
#[derive(Serialize, Deserialize, JsonSchema, Debug, Clone, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ServiceTemplateSpec {
    /// Which service this template applies to.
    pub alias: ServiceAlias,
    /// Labels and annotations for the service.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metadata: Option<TemplateMeta>,
    /// Service spec overrides (type, ports, ...).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub spec: Option<ServiceSpecOverride>,
}

/// A git repository to clone init scripts from (`init.script.git`).
#[derive(Serialize, Deserialize, JsonSchema, Debug, Clone, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct GitRepo {
    /// git-sync arguments.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub args: Option<Vec<String>>,
    /// Environment for git-sync.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub env: Option<Vec<k8s_openapi::api::core::v1::EnvVar>>,
    /// Security context for git-sync.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub security_context: Option<k8s_openapi::api::core::v1::SecurityContext>,
    /// Secret with git credentials.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auth_secret: Option<LocalObjectReference>,
}

/// Init scripts (`init.script`): a volume source plus the path inside it.
#[derive(Serialize, Deserialize, JsonSchema, Debug, Clone, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct ScriptSourceSpec {
    /// Path of the scripts inside the volume.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub script_path: Option<String>,
    /// ConfigMap holding the scripts.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub config_map: Option<k8s_openapi::api::core::v1::ConfigMapVolumeSource>,
    /// Secret holding the scripts.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<k8s_openapi::api::core::v1::SecretVolumeSource>,
    /// PVC holding the scripts.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub persistent_volume_claim:
        Option<k8s_openapi::api::core::v1::PersistentVolumeClaimVolumeSource>,
    /// Empty directory (filled by git-sync).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub empty_dir: Option<k8s_openapi::api::core::v1::EmptyDirVolumeSource>,
    /// Host path holding the scripts.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host_path: Option<k8s_openapi::api::core::v1::HostPathVolumeSource>,
    /// NFS share holding the scripts.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nfs: Option<k8s_openapi::api::core::v1::NFSVolumeSource>,
    /// CSI volume holding the scripts.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub csi: Option<k8s_openapi::api::core::v1::CSIVolumeSource>,
    /// Downward API volume.
    #[serde(rename = "downwardAPI", skip_serializing_if = "Option::is_none")]
    pub downward_api: Option<k8s_openapi::api::core::v1::DownwardAPIVolumeSource>,
    /// Projected volume holding the scripts.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub projected: Option<k8s_openapi::api::core::v1::ProjectedVolumeSource>,
    /// Clone the scripts from git instead.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub git: Option<GitRepo>,
}

/// Database initialization (`spec.init`).
#[derive(Serialize, Deserialize, JsonSchema, Debug, Clone, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct InitSpec {
    /// Set by the operator once the database has been initialized.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub initialized: Option<bool>,
    /// Wait for an external restore before becoming ready.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wait_for_initial_restore: Option<bool>,
    /// Init scripts.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub script: Option<ScriptSourceSpec>,
    /// Point-in-time recovery settings (KubeDB archiver; not modelled).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "preserve_unknown_object")]
    pub archiver: Option<serde_json::Value>,
}

/// Continuous archiving (`spec.archiver`).
#[derive(Serialize, Deserialize, JsonSchema, Debug, Clone, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct ArchiverSpec {
    /// Pause archiving.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pause: Option<bool>,
    /// Reference to the archiver object.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub r#ref: Option<NamespacedReference>,
}

/// A `{name, namespace}` reference.
#[derive(Serialize, Deserialize, JsonSchema, Debug, Clone, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct NamespacedReference {
    /// Object name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Object namespace.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
}

/// Recommendation/auto-ops settings (`spec.autoOps`).
#[derive(Serialize, Deserialize, JsonSchema, Debug, Clone, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct AutoOpsSpec {
    /// Disable generation of recommendation ops requests.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disabled: Option<bool>,
}

/// Resources, node selector and tolerations for a helper pod (MSSQL arbiter).
#[derive(Serialize, Deserialize, JsonSchema, Debug, Clone, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct ArbiterSpec {
    /// Compute resources of the arbiter container.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourceRequirements>,
    /// Node selector of the arbiter pod.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node_selector: Option<BTreeMap<String, String>>,
    /// Tolerations of the arbiter pod.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tolerations: Option<Vec<Toleration>>,
}

/// Phase of a database object (`status.phase`).
#[derive(Serialize, Deserialize, JsonSchema, Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DatabasePhase {
    /// Provisioning has started and has not finished.
    Provisioning,
    /// Data is being restored from a backup.
    DataRestoring,
    /// Provisioned and healthy.
    Ready,
    /// Provisioned, accepting connections, but some replica or check is failing.
    Critical,
    /// Provisioned but not accepting connections (or a restore failed).
    NotReady,
    /// `spec.halted` is applied.
    Halted,
    /// Health checks are paused.
    Unknown,
}

impl DatabasePhase {
    /// The phase as written in `status.phase`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Provisioning => "Provisioning",
            Self::DataRestoring => "DataRestoring",
            Self::Ready => "Ready",
            Self::Critical => "Critical",
            Self::NotReady => "NotReady",
            Self::Halted => "Halted",
            Self::Unknown => "Unknown",
        }
    }
}

impl std::fmt::Display for DatabasePhase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Status of a database object: `{phase, observedGeneration, conditions}`.
#[derive(Serialize, Deserialize, JsonSchema, Debug, Clone, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct DatabaseStatus {
    /// Phase computed from the conditions (see [`crate::phase::phase_from_conditions`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phase: Option<DatabasePhase>,
    /// Most recent generation observed by the provisioner.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Conditions, one per type.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Option<Vec<Condition>>,
}

impl DatabaseStatus {
    /// The conditions (empty when unset).
    pub fn conditions(&self) -> &[Condition] {
        self.conditions.as_deref().unwrap_or_default()
    }
    /// Mutable access to the conditions, creating the list when unset.
    pub fn conditions_mut(&mut self) -> &mut Vec<Condition> {
        self.conditions.get_or_insert_with(Vec::new)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_go_durations() {
        let table = [
            ("5m", Duration::from_secs(300)),
            ("100ms", Duration::from_millis(100)),
            ("1h30m", Duration::from_secs(5400)),
            ("60s", Duration::from_secs(60)),
        ];
        for (input, expected) in table {
            assert_eq!(
                parse_duration("spec.timeout", input),
                Ok(expected),
                "{input}"
            );
        }
    }

    #[test]
    fn duration_errors_name_field_and_value() {
        let err = parse_duration("spec.timeout", "5 minutes").unwrap_err();
        assert!(matches!(err, DurationError::Invalid { .. }));
        let message = err.to_string();
        assert!(
            message.contains("spec.timeout") && message.contains("5 minutes"),
            "{message}"
        );
        assert!(matches!(
            parse_duration("spec.timeout", "-1s"),
            Err(DurationError::Negative { .. })
        ));
        assert!(parse_duration("x", "").is_err());
    }

    #[test]
    fn health_checker_defaults() {
        let hc = HealthCheckSpec::default();
        assert_eq!(
            (
                hc.period_seconds(),
                hc.timeout_seconds(),
                hc.failure_threshold()
            ),
            (10, 10, 1)
        );
        assert!(!hc.disable_write_check());
        let custom = HealthCheckSpec {
            period_seconds: Some(30),
            ..HealthCheckSpec::default()
        };
        assert_eq!(custom.period_seconds(), 30);
    }
}
