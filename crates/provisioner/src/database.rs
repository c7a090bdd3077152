//! What the reconciler needs to know about a database kind, implemented for `MSSQLServer` and
//! `Singlestore`, so that one reconcile loop serves both.

use std::collections::BTreeMap;
use std::fmt::Debug;

use api::common::{DatabaseStatus, DeletionPolicy, HealthCheckSpec};
use kube::core::{ClusterResourceScope, NamespaceResourceScope};
use kube::{Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::plan::{Desired, PlanError};

pub use api::DbKind;

/// Identity of one database object, used by the builders.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DbRef {
    /// Kind.
    pub kind: DbKind,
    /// Name.
    pub name: String,
    /// Namespace.
    pub namespace: String,
    /// UID (owner references, config-secret name).
    pub uid: String,
}

impl DbRef {
    /// The identity of `db`.
    pub fn of<K: Database>(db: &K) -> Self {
        Self {
            kind: K::KIND,
            name: db.name_any(),
            namespace: db.namespace().unwrap_or_default(),
            uid: db.uid().unwrap_or_default(),
        }
    }

    /// The offshoot labels of this database's objects.
    pub fn labels(&self) -> BTreeMap<String, String> {
        api::names::offshoot_labels(self.kind.resource_name(), &self.name)
    }

    /// The selector labels of this database's objects.
    pub fn selector(&self) -> BTreeMap<String, String> {
        api::names::selector_labels(self.kind.resource_name(), &self.name)
    }

    /// `namespace/name`.
    pub fn key(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }
}

/// A database kind the provisioner manages.
pub trait Database:
    Resource<DynamicType = (), Scope = NamespaceResourceScope>
    + Clone
    + Debug
    + Serialize
    + DeserializeOwned
    + Send
    + Sync
    + 'static
{
    /// The catalog kind naming this database's images.
    type Version: Resource<DynamicType = (), Scope = ClusterResourceScope>
        + api::catalog::VersionObject
        + Clone
        + Debug
        + DeserializeOwned
        + Send
        + Sync
        + 'static;

    /// Which kind this is.
    const KIND: DbKind;

    /// `status`, if any.
    fn db_status(&self) -> Option<&DatabaseStatus>;
    /// `spec.version`.
    fn version_name(&self) -> &str;
    /// Whether the catalog entry is deprecated (the provisioner refuses it).
    fn version_deprecated(version: &Self::Version) -> bool {
        api::catalog::VersionObject::is_deprecated(version)
    }
    /// Effective `spec.deletionPolicy`.
    fn deletion_policy(&self) -> DeletionPolicy;
    /// Effective `spec.halted`.
    fn halted(&self) -> bool;
    /// Effective `spec.healthChecker`.
    fn health_checker(&self) -> HealthCheckSpec;
    /// Name of the auth secret (`spec.authSecret.name` or `<db>-auth`).
    fn auth_secret_name(&self) -> String;
    /// The user's user name in the auth secret (`sa` or `root`).
    fn admin_user(&self) -> &'static str;
    /// Secrets the user must have created before pods can start, with the key the pods read
    /// (SingleStore's license, key `password`).
    fn required_user_secrets(&self) -> Vec<(String, &'static str)>;
    /// User secrets whose data feeds the rendered configuration (`configuration.secretName`).
    fn config_source_secrets(&self) -> Vec<String>;
    /// Service name and port of the SQL endpoint used by `--health-check=sql`.
    fn sql_endpoint(&self) -> (String, u16);
    /// Names of the StatefulSets whose pods serve the primary endpoint.
    fn primary_sets(&self) -> Vec<String>;
    /// The availability group whose primary is tracked (`AGPrimaryReplicaReady`, the pod
    /// labelled primary behind the primary service), if the database is one.
    fn availability_group(&self) -> Option<String>;
    /// The SQL dialect and topology the `--health-check=sql` probe talks to.
    fn sql_engine(&self) -> crate::health::Engine;
    /// The secret whose `ca.crt` the `--health-check=sql` probe verifies the server's
    /// certificate with, when the server speaks TLS to clients (SingleStore with `spec.tls`).
    /// `None`: the probe does not use TLS.
    fn sql_ca_secret(&self) -> Option<String> {
        None
    }
    /// Builds every child this database should have. Pure.
    fn plan(&self, input: &PlanInput<'_, Self::Version>) -> Result<Desired, PlanError>;
    /// Replaces the Version's coordinator image (every coordinator and arbiter container runs
    /// it) with `image`: the provisioner's `--agent-image`.
    fn use_agent_image(version: &mut Self::Version, image: &str);
}

/// What the builders need beyond the database object itself.
#[derive(Debug, Clone)]
pub struct PlanInput<'a, V> {
    /// The resolved catalog entry.
    pub version: &'a V,
    /// Data of the user's configuration secrets, by secret name (missing secrets absent).
    pub config_sources: &'a BTreeMap<String, BTreeMap<String, String>>,
}

/// Common status accessor.
pub fn conditions_of<K: Database>(db: &K) -> &[api::Condition] {
    db.db_status().map(|s| s.conditions()).unwrap_or_default()
}
