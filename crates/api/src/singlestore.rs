//! `Singlestore` (`kubedb.com/v1alpha2`): reference §2.2. The kind is spelled `Singlestore`.

use k8s_openapi::api::core::v1::PersistentVolumeClaimSpec;
use kube::CustomResource;
#[allow(unused_imports)]
use kube::core::Rule;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::common::{
    AutoOpsSpec, ConfigurationSpec, DatabaseStatus, DeletionPolicy, HealthCheckSpec, InitSpec,
    PodTemplateSpec, SecretReference, ServiceTemplateSpec, StorageType, TLSConfig,
    preserve_unknown_object,
};

/// Spec of a `Singlestore`: standalone (cluster-in-a-box) or an aggregator/leaf cluster.
#[derive(CustomResource, JsonSchema, Serialize, Deserialize, Debug, Clone, PartialEq)]
#[kube(
    group = "kubedb.com",
    version = "v1alpha2",
    kind = "Singlestore",
    doc = "Singlestore is a SingleStore database managed by the KubeDB-compatible provisioner (standalone or aggregator/leaf cluster).",
    plural = "singlestores",
    singular = "singlestore",
    namespaced,
    shortname = "sdb",
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
        "rule": "self.version != ''",
        "message": "spec.version must name a SinglestoreVersion",
    },
    {
        "rule": "!has(self.storageType) || self.storageType != 'Durable' || has(self.storage) || has(self.topology)",
        "message": "spec.storage is required for a standalone Singlestore when spec.storageType is Durable",
    },
]))]
pub struct SinglestoreSpec {
    /// Name of the `SinglestoreVersion` to run (required here; KubeDB's schema leaves it optional
    /// but its webhook rejects an empty one).
    pub version: String,
    /// Aggregator/leaf topology; absent means standalone.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub topology: Option<SinglestoreTopology>,
    /// Durable (PVCs) or Ephemeral. Default `Durable`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = "Durable"))]
    pub storage_type: Option<StorageType>,
    /// PVC template (standalone).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub storage: Option<PersistentVolumeClaimSpec>,
    /// Secret with the `root` credentials (default `<db>-auth`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auth_secret: Option<SecretReference>,
    /// Secret holding the SingleStore license (required).
    pub license_secret: SecretReference,
    /// Initialization settings.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub init: Option<InitSpec>,
    /// Custom configuration (standalone).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub configuration: Option<ConfigurationSpec>,
    /// Pod template overrides (standalone).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pod_template: Option<PodTemplateSpec>,
    /// Service template overrides.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service_templates: Option<Vec<ServiceTemplateSpec>>,
    /// TLS settings (aliases `server`, `client`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls: Option<TLSConfig>,
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
    /// Recommendation ops settings.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auto_ops: Option<AutoOpsSpec>,
}

impl SinglestoreSpec {
    /// Standalone means no topology.
    pub fn is_standalone(&self) -> bool {
        self.topology.is_none()
    }
    /// Effective storage type.
    pub fn storage_type(&self) -> StorageType {
        self.storage_type.unwrap_or_default()
    }
    /// Effective deletion policy.
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
    /// Effective aggregator replicas (3 when unset; `None` in standalone mode).
    pub fn aggregator_replicas(&self) -> Option<i32> {
        let topology = self.topology.as_ref()?;
        Some(
            topology
                .aggregator
                .as_ref()
                .and_then(|n| n.replicas)
                .unwrap_or(SinglestoreNode::DEFAULT_AGGREGATOR_REPLICAS),
        )
    }
    /// Effective leaf replicas (2 when unset; `None` in standalone mode).
    pub fn leaf_replicas(&self) -> Option<i32> {
        let topology = self.topology.as_ref()?;
        Some(
            topology
                .leaf
                .as_ref()
                .and_then(|n| n.replicas)
                .unwrap_or(SinglestoreNode::DEFAULT_LEAF_REPLICAS),
        )
    }
}

/// `spec.topology`: both roles are required once the topology is set.
#[derive(Serialize, Deserialize, JsonSchema, Debug, Clone, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [
    {
        "rule": "has(self.aggregator) && has(self.leaf)",
        "message": "spec.topology needs both aggregator and leaf",
    },
]))]
pub struct SinglestoreTopology {
    /// Aggregator nodes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub aggregator: Option<SinglestoreNode>,
    /// Leaf nodes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub leaf: Option<SinglestoreNode>,
}

/// Settings of one SingleStore role (aggregator or leaf).
#[derive(Serialize, Deserialize, JsonSchema, Debug, Clone, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [
    {
        "rule": "!has(self.replicas) || self.replicas > 0",
        "message": "replicas must be greater than zero",
    },
]))]
pub struct SinglestoreNode {
    /// Number of pods (aggregator 3, leaf 2 when unset). At most
    /// [`SinglestoreNode::MAX_REPLICAS`], the most pods per set the agents look for as peers.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 256))]
    pub replicas: Option<i32>,
    /// Inserted into the PetSet name: `<db>-<suffix>-aggregator`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub suffix: Option<String>,
    /// Role-specific configuration.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub configuration: Option<ConfigurationSpec>,
    /// Role-specific PVC template.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub storage: Option<PersistentVolumeClaimSpec>,
    /// Role-specific pod template.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pod_template: Option<PodTemplateSpec>,
}

impl SinglestoreNode {
    /// The most pods of one set (the CRD's `maximum`).
    pub const MAX_REPLICAS: i32 = 256;
    /// Aggregator replicas filled by KubeDB's mutating webhook.
    pub const DEFAULT_AGGREGATOR_REPLICAS: i32 = 3;
    /// Leaf replicas filled by KubeDB's mutating webhook.
    pub const DEFAULT_LEAF_REPLICAS: i32 = 2;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_replica_defaults() {
        let mut spec: SinglestoreSpec = serde_json::from_value(serde_json::json!({
            "version": "8.9.3",
            "licenseSecret": {"name": "license"},
        }))
        .unwrap();
        assert!(spec.is_standalone());
        assert_eq!(spec.aggregator_replicas(), None);
        spec.topology = Some(SinglestoreTopology {
            aggregator: Some(SinglestoreNode::default()),
            leaf: Some(SinglestoreNode {
                replicas: Some(4),
                ..SinglestoreNode::default()
            }),
        });
        assert_eq!(spec.aggregator_replicas(), Some(3));
        assert_eq!(spec.leaf_replicas(), Some(4));
        assert_eq!(spec.deletion_policy(), DeletionPolicy::Delete);
        assert_eq!(spec.storage_type(), StorageType::Durable);
    }
}
