//! Ops-request kinds `MSSQLServerOpsRequest` and `SinglestoreOpsRequest`
//! (`ops.kubedb.com/v1alpha1`): reference §5.1/§5.2.
//!
//! The spec is immutable after creation (CEL `self == oldSelf`), so a request can neither be
//! retargeted nor edited while the ops-manager works on it.

// kube-derive's repeated `printcolumn(type_ = ...)` arguments trip this lint.
#![allow(clippy::duplicated_attributes)]

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::core::v1::{LocalObjectReference, ResourceRequirements};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::common::{DurationError, SecretReference, TLSConfig, parse_duration};
use crate::conditions::Condition;

/// The operation an ops request performs (`spec.type`).
#[derive(Serialize, Deserialize, JsonSchema, Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OpsRequestType {
    /// Move to another catalog Version.
    UpdateVersion,
    /// Change the number of replicas.
    HorizontalScaling,
    /// Change container resources.
    VerticalScaling,
    /// Grow the PVCs.
    VolumeExpansion,
    /// Restart every pod.
    Restart,
    /// Change the custom configuration.
    Reconfigure,
    /// Add, rotate or remove TLS.
    #[serde(rename = "ReconfigureTLS")]
    ReconfigureTLS,
    /// Rotate the auth secret.
    RotateAuth,
    /// Move the data to another StorageClass.
    StorageMigration,
}

impl OpsRequestType {
    /// The type as written in `spec.type` (also the start condition's type).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::UpdateVersion => "UpdateVersion",
            Self::HorizontalScaling => "HorizontalScaling",
            Self::VerticalScaling => "VerticalScaling",
            Self::VolumeExpansion => "VolumeExpansion",
            Self::Restart => "Restart",
            Self::Reconfigure => "Reconfigure",
            Self::ReconfigureTLS => "ReconfigureTLS",
            Self::RotateAuth => "RotateAuth",
            Self::StorageMigration => "StorageMigration",
        }
    }
}

impl OpsRequestType {
    /// Type (and reason) of the condition that marks the start of the request. It equals the op
    /// type, except that KubeDB's SingleStore Reconfigure writes `Configuration`.
    pub fn start_condition_type(self, singlestore: bool) -> &'static str {
        match self {
            Self::Reconfigure if singlestore => crate::conditions::ops_types::CONFIGURATION,
            other => other.as_str(),
        }
    }
}

impl std::fmt::Display for OpsRequestType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// When the request may run (`spec.apply`).
#[derive(Serialize, Deserialize, JsonSchema, Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ApplyPolicy {
    /// Only while the database phase is `Ready` (default).
    #[default]
    IfReady,
    /// Whatever the phase (recovery).
    Always,
}

/// Phase of an ops request (`status.phase`).
#[derive(Serialize, Deserialize, JsonSchema, Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OpsRequestPhase {
    /// Waiting to run.
    Pending,
    /// Running.
    Progressing,
    /// Finished successfully.
    Successful,
    /// Waiting for approval.
    WaitingForApproval,
    /// Finished with an error.
    Failed,
    /// Approved.
    Approved,
    /// Denied.
    Denied,
    /// Superseded by a newer request of the same type before it started.
    Skipped,
}

impl OpsRequestPhase {
    /// The phase as written in `status.phase`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "Pending",
            Self::Progressing => "Progressing",
            Self::Successful => "Successful",
            Self::WaitingForApproval => "WaitingForApproval",
            Self::Failed => "Failed",
            Self::Approved => "Approved",
            Self::Denied => "Denied",
            Self::Skipped => "Skipped",
        }
    }

    /// Whether the request has finished (Successful, Failed or Skipped).
    pub fn is_final(self) -> bool {
        matches!(self, Self::Successful | Self::Failed | Self::Skipped)
    }
}

impl std::fmt::Display for OpsRequestPhase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The database the request targets (same namespace).
#[derive(Serialize, Deserialize, JsonSchema, Debug, Clone, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct DatabaseRef {
    /// Database name.
    pub name: String,
}

/// `spec.updateVersion`.
#[derive(Serialize, Deserialize, JsonSchema, Debug, Clone, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct UpdateVersionSpec {
    /// Name of the target catalog Version object.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target_version: Option<String>,
}

/// `spec.restart` (an empty object).
#[derive(Serialize, Deserialize, JsonSchema, Debug, Clone, PartialEq, Default)]
pub struct RestartSpec {}

/// `spec.authentication` (RotateAuth).
#[derive(Serialize, Deserialize, JsonSchema, Debug, Clone, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct AuthenticationSpec {
    /// New credentials; without it a random password is generated.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret_ref: Option<SecretReference>,
}

/// A StorageMigration target.
#[derive(Serialize, Deserialize, JsonSchema, Debug, Clone, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct StorageMigrationSpec {
    /// Target StorageClass.
    pub storage_class_name: String,
    /// Reclaim policy to set on the old PVs.
    #[serde(rename = "oldPVReclaimPolicy", skip_serializing_if = "Option::is_none")]
    pub old_pv_reclaim_policy: Option<String>,
}

/// Node topology selector used by vertical scaling.
#[derive(Serialize, Deserialize, JsonSchema, Debug, Clone, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct NodeTopology {
    /// Node label key.
    pub key: String,
    /// Node label value.
    pub value: String,
}

/// Resources of a pod role (vertical scaling).
#[derive(Serialize, Deserialize, JsonSchema, Debug, Clone, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct PodResources {
    /// New resources.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourceRequirements>,
    /// Node selection policy (`LabelSelector` or `Taint`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node_selection_policy: Option<String>,
    /// Node topology.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub topology: Option<NodeTopology>,
}

/// Resources of a sidecar container (vertical scaling).
#[derive(Serialize, Deserialize, JsonSchema, Debug, Clone, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct ContainerResources {
    /// New resources.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourceRequirements>,
}

/// How vertical scaling applies new resources.
#[derive(Serialize, Deserialize, JsonSchema, Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum VerticalScalingMode {
    /// Restart the pods (default).
    #[default]
    Restart,
    /// Resize in place (`pods/resize`), restarting a pod only when needed.
    InPlace,
}

/// How a volume expansion is applied.
#[derive(Serialize, Deserialize, JsonSchema, Debug, Clone, Copy, PartialEq, Eq)]
pub enum VolumeExpansionMode {
    /// Expand while the pods run.
    Online,
    /// Stop the pods first.
    Offline,
}

/// Whether a reconfiguration restarts the pods.
#[derive(Serialize, Deserialize, JsonSchema, Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ReconfigureRestart {
    /// Restart when the changed settings need it (default).
    #[default]
    #[serde(rename = "auto")]
    Auto,
    /// Always restart.
    #[serde(rename = "true")]
    True,
    /// Never restart.
    #[serde(rename = "false")]
    False,
}

/// `ReconfigurationSpec`.
#[derive(Serialize, Deserialize, JsonSchema, Debug, Clone, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [
    {
        "rule": "has(self.configSecret) || has(self.applyConfig) || (has(self.removeCustomConfig) && self.removeCustomConfig)",
        "message": "one of configSecret, applyConfig or removeCustomConfig is required",
    },
]))]
pub struct ReconfigurationSpec {
    /// A secret with the new configuration.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub config_secret: Option<LocalObjectReference>,
    /// Inline configuration to merge, file name → contents.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub apply_config: Option<BTreeMap<String, String>>,
    /// Remove the custom configuration.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remove_custom_config: Option<bool>,
    /// Restart policy (default `auto`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub restart: Option<ReconfigureRestart>,
}

/// `spec.tls` of a SinglestoreOpsRequest: exactly one of issuer/certificates, rotate or remove.
#[derive(Serialize, Deserialize, JsonSchema, Debug, Clone, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [
    {
        "rule": "[has(self.remove) && self.remove, has(self.rotateCertificates) && self.rotateCertificates, has(self.issuerRef) || has(self.certificates)].filter(x, x).size() == 1",
        "message": "exactly one of remove, rotateCertificates or issuerRef/certificates must be set",
    },
]))]
pub struct TLSSpec {
    /// Issuer and certificates.
    #[serde(flatten)]
    pub tls: TLSConfig,
    /// Rotate the certificates.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rotate_certificates: Option<bool>,
    /// Remove TLS.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remove: Option<bool>,
}

/// `spec.tls` of an MSSQLServerOpsRequest: [`TLSSpec`] plus `clientTLS`.
#[derive(Serialize, Deserialize, JsonSchema, Debug, Clone, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [
    {
        "rule": "[has(self.remove) && self.remove, has(self.rotateCertificates) && self.rotateCertificates, has(self.issuerRef) || has(self.certificates) || has(self.clientTLS)].filter(x, x).size() == 1",
        "message": "exactly one of remove, rotateCertificates or issuerRef/certificates/clientTLS must be set",
    },
]))]
pub struct MSSQLServerTLSSpec {
    /// Issuer and certificates.
    #[serde(flatten)]
    pub tls: TLSConfig,
    /// Require TLS from clients.
    #[serde(rename = "clientTLS", skip_serializing_if = "Option::is_none")]
    pub client_tls: Option<bool>,
    /// Rotate the certificates.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rotate_certificates: Option<bool>,
    /// Remove TLS.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remove: Option<bool>,
}

/// A backup configuration paused while the request runs.
#[derive(Serialize, Deserialize, JsonSchema, Debug, Clone, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct TypedObjectReference {
    /// API group.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub api_group: Option<String>,
    /// Kind.
    pub kind: String,
    /// Name.
    pub name: String,
    /// Namespace.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
}

/// One container image change of an [`UpdatePlan`].
#[derive(Serialize, Deserialize, JsonSchema, Debug, Clone, PartialEq, Eq, Default)]
#[serde(rename_all = "camelCase")]
pub struct ImageChange {
    /// Container name (e.g. `mssql`, `mssql-coordinator`, `mssql-init`).
    pub container: String,
    /// Image before the update.
    pub from: String,
    /// Image after the update.
    pub to: String,
}

/// Beyond KubeDB: the plan of a disruptive request, written to `status.updatePlan` before the
/// first disruptive step so that `kubectl describe` shows what will happen.
///
/// `pods` lists the pods in the order they will be restarted (for MSSQL the primary last; for
/// SingleStore all aggregators, then all leaves); `images` lists every container whose image
/// changes, with the image before and after.
#[derive(Serialize, Deserialize, JsonSchema, Debug, Clone, PartialEq, Eq, Default)]
#[serde(rename_all = "camelCase")]
pub struct UpdatePlan {
    /// Pods in restart order.
    pub pods: Vec<String>,
    /// Image changes.
    pub images: Vec<ImageChange>,
}

/// Status of an ops request.
#[derive(Serialize, Deserialize, JsonSchema, Debug, Clone, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct OpsRequestStatus {
    /// Phase.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phase: Option<OpsRequestPhase>,
    /// The request generation the status describes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Conditions, one per type (start condition, steps, `Successful`/`Failed`).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Option<Vec<Condition>>,
    /// Backup configurations paused by this request (resumed at the end).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub paused_backups: Option<Vec<TypedObjectReference>>,
    /// Beyond KubeDB: the ordered pods to restart and the image changes (see [`UpdatePlan`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub update_plan: Option<UpdatePlan>,
}

impl OpsRequestStatus {
    /// The conditions (empty when unset).
    pub fn conditions(&self) -> &[Condition] {
        self.conditions.as_deref().unwrap_or_default()
    }
    /// Mutable access to the conditions, creating the list when unset.
    pub fn conditions_mut(&mut self) -> &mut Vec<Condition> {
        self.conditions.get_or_insert_with(Vec::new)
    }
}

/// Default retry budget (`spec.maxRetries`).
pub const DEFAULT_MAX_RETRIES: i32 = 1;

/// Accessors shared by both ops-request specs.
pub trait OpsRequestSpecExt {
    /// `spec.databaseRef.name`.
    fn database_name(&self) -> &str;
    /// `spec.type`.
    fn op_type(&self) -> OpsRequestType;
    /// `spec.apply` (default `IfReady`).
    fn apply(&self) -> ApplyPolicy;
    /// `spec.maxRetries` (default 1).
    fn max_retries(&self) -> i32;
    /// `spec.timeout` parsed; `Ok(None)` when unset.
    fn timeout(&self) -> Result<Option<Duration>, DurationError>;
    /// `spec.updateVersion.targetVersion`.
    fn target_version(&self) -> Option<&str>;
}

macro_rules! impl_spec_ext {
    ($t:ty) => {
        impl OpsRequestSpecExt for $t {
            fn database_name(&self) -> &str {
                &self.database_ref.name
            }
            fn op_type(&self) -> OpsRequestType {
                self.type_
            }
            fn apply(&self) -> ApplyPolicy {
                self.apply.unwrap_or_default()
            }
            fn max_retries(&self) -> i32 {
                self.max_retries.unwrap_or(DEFAULT_MAX_RETRIES)
            }
            fn timeout(&self) -> Result<Option<Duration>, DurationError> {
                self.timeout
                    .as_deref()
                    .map(|t| parse_duration("spec.timeout", t))
                    .transpose()
            }
            fn target_version(&self) -> Option<&str> {
                self.update_version
                    .as_ref()
                    .and_then(|u| u.target_version.as_deref())
            }
        }
    };
}

/// MSSQL `spec.horizontalScaling`.
#[derive(Serialize, Deserialize, JsonSchema, Debug, Clone, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [
    {
        "rule": "has(self.replicas) && self.replicas > 0",
        "message": "horizontalScaling.replicas is required and must be greater than zero",
    },
]))]
pub struct MSSQLServerHorizontalScalingSpec {
    /// New number of AG members.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replicas: Option<i32>,
}

/// MSSQL `spec.verticalScaling`.
#[derive(Serialize, Deserialize, JsonSchema, Debug, Clone, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [
    {
        "rule": "has(self.mssqlserver) || has(self.exporter) || has(self.coordinator) || has(self.arbiter)",
        "message": "verticalScaling needs at least one of mssqlserver, exporter, coordinator or arbiter",
    },
]))]
pub struct MSSQLServerVerticalScalingSpec {
    /// The `mssql` container.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mssqlserver: Option<PodResources>,
    /// The exporter container.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exporter: Option<ContainerResources>,
    /// The coordinator container.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub coordinator: Option<ContainerResources>,
    /// The arbiter pod.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub arbiter: Option<PodResources>,
    /// Restart (default) or InPlace.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mode: Option<VerticalScalingMode>,
}

/// MSSQL `spec.volumeExpansion`.
#[derive(Serialize, Deserialize, JsonSchema, Debug, Clone, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct MSSQLServerVolumeExpansionSpec {
    /// Online or Offline.
    pub mode: VolumeExpansionMode,
    /// New size of the data volume.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mssqlserver: Option<Quantity>,
}

/// Spec of an `MSSQLServerOpsRequest`.
#[derive(CustomResource, JsonSchema, Serialize, Deserialize, Debug, Clone, PartialEq)]
#[kube(
    group = "ops.kubedb.com",
    version = "v1alpha1",
    kind = "MSSQLServerOpsRequest",
    doc = "MSSQLServerOpsRequest is one administrative operation (UpdateVersion, scaling, restart, ...) on an MSSQLServer, run by the ops-manager. The spec is immutable.",
    plural = "mssqlserveropsrequests",
    singular = "mssqlserveropsrequest",
    namespaced,
    shortname = "msops",
    category = "ops",
    category = "kubedb",
    category = "appscode",
    status = "OpsRequestStatus",
    derive = "PartialEq",
    label("app.kubernetes.io/name", "kubedb"),
    annotation("helm.sh/resource-policy", "keep"),
    printcolumn(name = "Type", type_ = "string", json_path = ".spec.type"),
    printcolumn(name = "Status", type_ = "string", json_path = ".status.phase"),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [
    {"rule": "self == oldSelf", "message": "spec is immutable after creation"},
    {"rule": "self.type != 'UpdateVersion' || (has(self.updateVersion) && has(self.updateVersion.targetVersion) && self.updateVersion.targetVersion != '')", "message": "spec.updateVersion.targetVersion is required for type UpdateVersion"},
    {"rule": "self.type != 'HorizontalScaling' || has(self.horizontalScaling)", "message": "spec.horizontalScaling is required for type HorizontalScaling"},
    {"rule": "self.type != 'VerticalScaling' || has(self.verticalScaling)", "message": "spec.verticalScaling is required for type VerticalScaling"},
    {"rule": "self.type != 'VolumeExpansion' || has(self.volumeExpansion)", "message": "spec.volumeExpansion is required for type VolumeExpansion"},
    {"rule": "self.type != 'Reconfigure' || has(self.configuration)", "message": "spec.configuration is required for type Reconfigure"},
    {"rule": "self.type != 'ReconfigureTLS' || has(self.tls)", "message": "spec.tls is required for type ReconfigureTLS"},
    {"rule": "self.type != 'StorageMigration' || (has(self.migration) && has(self.timeout))", "message": "spec.migration and spec.timeout are required for type StorageMigration"},
    {"rule": "!has(self.maxRetries) || self.maxRetries >= 0", "message": "spec.maxRetries must not be negative"},
]))]
pub struct MSSQLServerOpsRequestSpec {
    /// The database (same namespace).
    pub database_ref: DatabaseRef,
    /// The operation.
    #[serde(rename = "type")]
    pub type_: OpsRequestType,
    /// UpdateVersion settings.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub update_version: Option<UpdateVersionSpec>,
    /// HorizontalScaling settings.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub horizontal_scaling: Option<MSSQLServerHorizontalScalingSpec>,
    /// VerticalScaling settings.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vertical_scaling: Option<MSSQLServerVerticalScalingSpec>,
    /// VolumeExpansion settings.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub volume_expansion: Option<MSSQLServerVolumeExpansionSpec>,
    /// Reconfigure settings.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub configuration: Option<ReconfigurationSpec>,
    /// ReconfigureTLS settings.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls: Option<MSSQLServerTLSSpec>,
    /// RotateAuth settings.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub authentication: Option<AuthenticationSpec>,
    /// Restart settings (empty).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub restart: Option<RestartSpec>,
    /// StorageMigration settings.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub migration: Option<StorageMigrationSpec>,
    /// Timeout of each step (Go duration, e.g. `5m`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeout: Option<String>,
    /// IfReady (default) or Always.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = "IfReady"))]
    pub apply: Option<ApplyPolicy>,
    /// Retry budget of a failing step (default 1).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_retries: Option<i32>,
}

impl_spec_ext!(MSSQLServerOpsRequestSpec);

/// SingleStore `spec.horizontalScaling`.
#[derive(Serialize, Deserialize, JsonSchema, Debug, Clone, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [
    {"rule": "has(self.aggregator) || has(self.leaf)", "message": "horizontalScaling needs aggregator or leaf"},
    {"rule": "!has(self.aggregator) || self.aggregator > 0", "message": "horizontalScaling.aggregator must be greater than zero"},
    {"rule": "!has(self.leaf) || self.leaf > 0", "message": "horizontalScaling.leaf must be greater than zero"},
]))]
pub struct SinglestoreHorizontalScalingSpec {
    /// New aggregator count.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub aggregator: Option<i32>,
    /// New leaf count.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub leaf: Option<i32>,
}

/// SingleStore `spec.verticalScaling`.
#[derive(Serialize, Deserialize, JsonSchema, Debug, Clone, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [
    {"rule": "!has(self.node) || !(has(self.aggregator) || has(self.leaf) || has(self.coordinator))", "message": "verticalScaling.node cannot be combined with aggregator, leaf or coordinator"},
    {"rule": "has(self.node) || has(self.aggregator) || has(self.leaf) || has(self.coordinator)", "message": "verticalScaling needs node, aggregator, leaf or coordinator"},
]))]
pub struct SinglestoreVerticalScalingSpec {
    /// Standalone node.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node: Option<PodResources>,
    /// Aggregators.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub aggregator: Option<PodResources>,
    /// Leaves.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub leaf: Option<PodResources>,
    /// Coordinator container.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub coordinator: Option<ContainerResources>,
    /// Restart (default) or InPlace.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mode: Option<VerticalScalingMode>,
}

/// SingleStore `spec.volumeExpansion`.
#[derive(Serialize, Deserialize, JsonSchema, Debug, Clone, PartialEq)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [
    {"rule": "!has(self.node) || !(has(self.aggregator) || has(self.leaf))", "message": "volumeExpansion.node cannot be combined with aggregator or leaf"},
    {"rule": "has(self.node) || has(self.aggregator) || has(self.leaf)", "message": "volumeExpansion needs node, aggregator or leaf"},
]))]
pub struct SinglestoreVolumeExpansionSpec {
    /// Online or Offline.
    pub mode: VolumeExpansionMode,
    /// Standalone node size.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node: Option<Quantity>,
    /// Aggregator size.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub aggregator: Option<Quantity>,
    /// Leaf size.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub leaf: Option<Quantity>,
}

/// SingleStore `spec.configuration`.
#[derive(Serialize, Deserialize, JsonSchema, Debug, Clone, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct SinglestoreReconfigurationSpec {
    /// Standalone node.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node: Option<ReconfigurationSpec>,
    /// Aggregators.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub aggregator: Option<ReconfigurationSpec>,
    /// Leaves.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub leaf: Option<ReconfigurationSpec>,
}

/// SingleStore `spec.migration`.
#[derive(Serialize, Deserialize, JsonSchema, Debug, Clone, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct SinglestoreStorageMigrationSpec {
    /// Standalone node.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node: Option<StorageMigrationSpec>,
    /// Aggregators.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub aggregator: Option<StorageMigrationSpec>,
    /// Leaves.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub leaf: Option<StorageMigrationSpec>,
}

/// Spec of a `SinglestoreOpsRequest`.
#[derive(CustomResource, JsonSchema, Serialize, Deserialize, Debug, Clone, PartialEq)]
#[kube(
    group = "ops.kubedb.com",
    version = "v1alpha1",
    kind = "SinglestoreOpsRequest",
    doc = "SinglestoreOpsRequest is one administrative operation (UpdateVersion, scaling, restart, ...) on a Singlestore, run by the ops-manager. The spec is immutable.",
    plural = "singlestoreopsrequests",
    singular = "singlestoreopsrequest",
    namespaced,
    shortname = "sdbops",
    category = "ops",
    category = "kubedb",
    category = "appscode",
    status = "OpsRequestStatus",
    derive = "PartialEq",
    label("app.kubernetes.io/name", "kubedb"),
    annotation("helm.sh/resource-policy", "keep"),
    printcolumn(name = "Type", type_ = "string", json_path = ".spec.type"),
    printcolumn(name = "Status", type_ = "string", json_path = ".status.phase"),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [
    {"rule": "self == oldSelf", "message": "spec is immutable after creation"},
    {"rule": "self.type != 'UpdateVersion' || (has(self.updateVersion) && has(self.updateVersion.targetVersion) && self.updateVersion.targetVersion != '')", "message": "spec.updateVersion.targetVersion is required for type UpdateVersion"},
    {"rule": "self.type != 'HorizontalScaling' || has(self.horizontalScaling)", "message": "spec.horizontalScaling is required for type HorizontalScaling"},
    {"rule": "self.type != 'VerticalScaling' || has(self.verticalScaling)", "message": "spec.verticalScaling is required for type VerticalScaling"},
    {"rule": "self.type != 'VolumeExpansion' || has(self.volumeExpansion)", "message": "spec.volumeExpansion is required for type VolumeExpansion"},
    {"rule": "self.type != 'Reconfigure' || has(self.configuration)", "message": "spec.configuration is required for type Reconfigure"},
    {"rule": "self.type != 'ReconfigureTLS' || has(self.tls)", "message": "spec.tls is required for type ReconfigureTLS"},
    {"rule": "self.type != 'StorageMigration' || (has(self.migration) && has(self.timeout))", "message": "spec.migration and spec.timeout are required for type StorageMigration"},
    {"rule": "!has(self.maxRetries) || self.maxRetries >= 0", "message": "spec.maxRetries must not be negative"},
]))]
pub struct SinglestoreOpsRequestSpec {
    /// The database (same namespace).
    pub database_ref: DatabaseRef,
    /// The operation.
    #[serde(rename = "type")]
    pub type_: OpsRequestType,
    /// UpdateVersion settings.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub update_version: Option<UpdateVersionSpec>,
    /// HorizontalScaling settings.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub horizontal_scaling: Option<SinglestoreHorizontalScalingSpec>,
    /// VerticalScaling settings.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vertical_scaling: Option<SinglestoreVerticalScalingSpec>,
    /// VolumeExpansion settings.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub volume_expansion: Option<SinglestoreVolumeExpansionSpec>,
    /// Reconfigure settings.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub configuration: Option<SinglestoreReconfigurationSpec>,
    /// ReconfigureTLS settings.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls: Option<TLSSpec>,
    /// RotateAuth settings.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub authentication: Option<AuthenticationSpec>,
    /// Restart settings (empty).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub restart: Option<RestartSpec>,
    /// StorageMigration settings.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub migration: Option<SinglestoreStorageMigrationSpec>,
    /// Timeout of each step (Go duration, e.g. `5m`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeout: Option<String>,
    /// IfReady (default) or Always.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = "IfReady"))]
    pub apply: Option<ApplyPolicy>,
    /// Retry budget of a failing step (default 1).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_retries: Option<i32>,
}

impl_spec_ext!(SinglestoreOpsRequestSpec);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_defaults_and_final_phases() {
        let spec: SinglestoreOpsRequestSpec = serde_json::from_value(serde_json::json!({
            "databaseRef": {"name": "sdb"},
            "type": "Restart",
        }))
        .unwrap();
        assert_eq!(spec.apply(), ApplyPolicy::IfReady);
        assert_eq!(spec.max_retries(), 1);
        assert_eq!(spec.timeout(), Ok(None));
        assert_eq!(spec.target_version(), None);
        assert_eq!(spec.database_name(), "sdb");
        let finals: Vec<OpsRequestPhase> = [
            OpsRequestPhase::Pending,
            OpsRequestPhase::Progressing,
            OpsRequestPhase::Successful,
            OpsRequestPhase::Failed,
            OpsRequestPhase::Skipped,
        ]
        .into_iter()
        .filter(|p| p.is_final())
        .collect();
        assert_eq!(
            finals,
            [
                OpsRequestPhase::Successful,
                OpsRequestPhase::Failed,
                OpsRequestPhase::Skipped
            ]
        );
    }

    #[test]
    fn start_condition_types() {
        assert_eq!(
            OpsRequestType::UpdateVersion.start_condition_type(false),
            "UpdateVersion"
        );
        assert_eq!(
            OpsRequestType::Reconfigure.start_condition_type(false),
            "Reconfigure"
        );
        assert_eq!(
            OpsRequestType::Reconfigure.start_condition_type(true),
            "Configuration"
        );
        assert_eq!(
            OpsRequestType::ReconfigureTLS.start_condition_type(true),
            "ReconfigureTLS"
        );
    }

    #[test]
    fn update_plan_serializes_under_status() {
        let status = OpsRequestStatus {
            phase: Some(OpsRequestPhase::Progressing),
            update_plan: Some(UpdatePlan {
                pods: vec!["db-1".into(), "db-2".into(), "db-0".into()],
                images: vec![ImageChange {
                    container: "mssql".into(),
                    from: "mcr.microsoft.com/mssql/server:2022-CU22-ubuntu-22.04".into(),
                    to: "mcr.microsoft.com/mssql/server:2025-RTM-ubuntu-22.04".into(),
                }],
            }),
            ..OpsRequestStatus::default()
        };
        let value = serde_json::to_value(&status).unwrap();
        assert_eq!(value["updatePlan"]["pods"][2], "db-0");
        assert_eq!(value["updatePlan"]["images"][0]["container"], "mssql");
        assert_eq!(value.get("conditions"), None);
    }
}
