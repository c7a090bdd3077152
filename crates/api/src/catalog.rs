//! Catalog kinds `MSSQLServerVersion` and `SinglestoreVersion` (`catalog.kubedb.com/v1alpha1`,
//! cluster-scoped): reference §4.1/§4.2.

// kube-derive's repeated `printcolumn(type_ = ...)` arguments trip this lint.
#![allow(clippy::duplicated_attributes)]

use std::collections::BTreeMap;

use kube::{CustomResource, ResourceExt};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::common::preserve_unknown_object;

/// An image reference `{image}`.
#[derive(Serialize, Deserialize, JsonSchema, Debug, Clone, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct ImageRef {
    /// Container image.
    pub image: String,
}

impl ImageRef {
    /// An image reference.
    pub fn new(image: impl Into<String>) -> Self {
        Self {
            image: image.into(),
        }
    }
}

/// Allowed and denied update targets, as Masterminds semver constraint expressions (§4.3).
#[derive(Serialize, Deserialize, JsonSchema, Debug, Clone, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct UpdateConstraints {
    /// A target must match at least one entry (an empty list allows every version).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allowlist: Option<Vec<String>>,
    /// A target must match no entry.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub denylist: Option<Vec<String>>,
}

/// The user/group the database containers run as.
#[derive(Serialize, Deserialize, JsonSchema, Debug, Clone, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct VersionSecurityContext {
    /// UID.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub run_as_user: Option<i64>,
    /// GID.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub run_as_group: Option<i64>,
}

/// A named addon task.
#[derive(Serialize, Deserialize, JsonSchema, Debug, Clone, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct AddonTask {
    /// Task name.
    pub name: String,
}

/// KubeStash addon settings of the archiver.
#[derive(Serialize, Deserialize, JsonSchema, Debug, Clone, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct ArchiverAddon {
    /// Addon name, e.g. `mssqlserver-addon`.
    pub name: String,
    /// Tasks by role (`fullBackup`, `fullBackupRestore`, `manifestBackup`, `manifestRestore`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tasks: Option<BTreeMap<String, AddonTask>>,
}

/// Backup/PITR integration of an `MSSQLServerVersion`.
#[derive(Serialize, Deserialize, JsonSchema, Debug, Clone, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct MSSQLArchiver {
    /// WAL-G image.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub walg: Option<ImageRef>,
    /// KubeStash addon.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub addon: Option<ArchiverAddon>,
}

/// Migration tooling images.
#[derive(Serialize, Deserialize, JsonSchema, Debug, Clone, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct CourierSpec {
    /// Migrator CLI image.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cli: Option<ImageRef>,
    /// Status reporter image.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status_reporter: Option<ImageRef>,
}

/// A UI chart shipped with the version.
#[derive(Serialize, Deserialize, JsonSchema, Debug, Clone, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct ChartInfo {
    /// Chart name.
    pub name: String,
    /// Chart version.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// Disable the chart.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disable: Option<bool>,
    /// Chart values (open structure).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "preserve_unknown_object")]
    pub values: Option<serde_json::Value>,
}

/// Spec of an `MSSQLServerVersion`.
#[derive(CustomResource, JsonSchema, Serialize, Deserialize, Debug, Clone, PartialEq)]
#[kube(
    group = "catalog.kubedb.com",
    version = "v1alpha1",
    kind = "MSSQLServerVersion",
    doc = "MSSQLServerVersion is a catalog entry: the images of one SQL Server version and the versions it may be updated to.",
    plural = "mssqlserverversions",
    singular = "mssqlserverversion",
    shortname = "msversion",
    category = "catalog",
    category = "kubedb",
    category = "appscode",
    derive = "PartialEq",
    label("app.kubernetes.io/name", "kubedb"),
    annotation("helm.sh/resource-policy", "keep"),
    printcolumn(name = "Version", type_ = "string", json_path = ".spec.version"),
    printcolumn(name = "DB_IMAGE", type_ = "string", json_path = ".spec.db.image"),
    printcolumn(name = "Deprecated", type_ = "boolean", json_path = ".spec.deprecated"),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct MSSQLServerVersionSpec {
    /// Upstream version, e.g. `2022-cu22` (parsed as a semantic version, §4.3).
    pub version: String,
    /// SQL Server image.
    pub db: ImageRef,
    /// `mssql-coordinator` sidecar image.
    pub coordinator: ImageRef,
    /// Prometheus exporter image.
    pub exporter: ImageRef,
    /// `mssql-init` image.
    pub init_container: ImageRef,
    /// UID the containers run as.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub security_context: Option<VersionSecurityContext>,
    /// Allowed update targets.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub update_constraints: Option<UpdateConstraints>,
    /// The operator does not provision deprecated versions.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deprecated: Option<bool>,
    /// End of life upstream.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub end_of_life: Option<bool>,
    /// Backup/PITR integration.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub archiver: Option<MSSQLArchiver>,
    /// Migration tooling.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub courier: Option<CourierSpec>,
    /// git-sync image.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub git_syncer: Option<ImageRef>,
    /// UI charts.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ui: Option<Vec<ChartInfo>>,
}

/// Spec of a `SinglestoreVersion`.
#[derive(CustomResource, JsonSchema, Serialize, Deserialize, Debug, Clone, PartialEq)]
#[kube(
    group = "catalog.kubedb.com",
    version = "v1alpha1",
    kind = "SinglestoreVersion",
    doc = "SinglestoreVersion is a catalog entry: the images of one SingleStore version and the versions it may be updated to.",
    plural = "singlestoreversions",
    singular = "singlestoreversion",
    shortname = "sdbv",
    category = "catalog",
    category = "kubedb",
    category = "appscode",
    derive = "PartialEq",
    label("app.kubernetes.io/name", "kubedb"),
    annotation("helm.sh/resource-policy", "keep"),
    printcolumn(name = "Version", type_ = "string", json_path = ".spec.version"),
    printcolumn(name = "DB_IMAGE", type_ = "string", json_path = ".spec.db.image"),
    printcolumn(name = "Deprecated", type_ = "boolean", json_path = ".spec.deprecated"),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct SinglestoreVersionSpec {
    /// Upstream version, e.g. `8.9.3`.
    pub version: String,
    /// Cluster node image.
    pub db: ImageRef,
    /// `singlestore-coordinator` sidecar image.
    pub coordinator: ImageRef,
    /// Cluster-in-a-box image used without topology.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub standalone: Option<ImageRef>,
    /// `singlestore-init` image.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub init_container: Option<ImageRef>,
    /// UID/GID the containers run as.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub security_context: Option<VersionSecurityContext>,
    /// Allowed update targets.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub update_constraints: Option<UpdateConstraints>,
    /// The operator does not provision deprecated versions.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deprecated: Option<bool>,
    /// End of life upstream.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub end_of_life: Option<bool>,
    /// Stash addon settings (not modelled).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "preserve_unknown_object")]
    pub stash: Option<serde_json::Value>,
    /// git-sync image.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub git_syncer: Option<ImageRef>,
    /// UI charts.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ui: Option<Vec<ChartInfo>>,
}

/// What the update-constraint check needs from a catalog object of either kind.
pub trait VersionObject {
    /// The kind, for error messages (`MSSQLServerVersion`, `SinglestoreVersion`).
    const KIND: &'static str;
    /// Whether an update to a deprecated target is rejected (KubeDB's SingleStore webhook does
    /// this; its MSSQL webhook does not).
    const REJECT_DEPRECATED_TARGET: bool;
    /// The object name (what `spec.version` and `targetVersion` refer to).
    fn object_name(&self) -> String;
    /// `spec.version` (may be empty).
    fn spec_version(&self) -> &str;
    /// `spec.updateConstraints`.
    fn update_constraints(&self) -> Option<&UpdateConstraints>;
    /// `spec.deprecated`.
    fn is_deprecated(&self) -> bool;
}

impl VersionObject for MSSQLServerVersion {
    const KIND: &'static str = "MSSQLServerVersion";
    const REJECT_DEPRECATED_TARGET: bool = false;
    fn object_name(&self) -> String {
        self.name_any()
    }
    fn spec_version(&self) -> &str {
        &self.spec.version
    }
    fn update_constraints(&self) -> Option<&UpdateConstraints> {
        self.spec.update_constraints.as_ref()
    }
    fn is_deprecated(&self) -> bool {
        self.spec.deprecated.unwrap_or(false)
    }
}

impl VersionObject for SinglestoreVersion {
    const KIND: &'static str = "SinglestoreVersion";
    const REJECT_DEPRECATED_TARGET: bool = true;
    fn object_name(&self) -> String {
        self.name_any()
    }
    fn spec_version(&self) -> &str {
        &self.spec.version
    }
    fn update_constraints(&self) -> Option<&UpdateConstraints> {
        self.spec.update_constraints.as_ref()
    }
    fn is_deprecated(&self) -> bool {
        self.spec.deprecated.unwrap_or(false)
    }
}
