//! What the step machine sees: plain data views of the request, the database, the catalog and the
//! database's StatefulSets, pods and PodDisruptionBudgets. Built by `observe` (the only place that
//! reads the API), consumed by the pure planning functions.

use std::time::Duration;

use api::DatabasePhase;
use api::conditions::Condition;
use api::ops::{ApplyPolicy, OpsRequestPhase, OpsRequestStatus, OpsRequestType};
use k8s_openapi::jiff::Timestamp;

pub use api::DbKind;

/// What the ops-manager alone says about a database kind: the vocabulary of its step machine and
/// the pod it restarts last.
///
/// These stay here rather than on [`api::DbKind`] because they describe how the ops-manager runs
/// an UpdateVersion, not the kind: the provisioner never uses them. The step names themselves are
/// KubeDB's and live in [`api::conditions::pod_steps`]; only the choice per kind is made here.
pub trait KindSteps {
    /// The per-pod check step: `CheckPodRunning` (MSSQL) or `CheckPodReady` (SingleStore).
    fn check_step(self) -> &'static str;
    /// The words KubeDB uses in the check step's message.
    fn check_words(self) -> &'static str;
    /// The role label value of the pod that must go last in its group: the AG primary, or the
    /// SingleStore master aggregator.
    fn leader_role(self) -> &'static str;
    /// The Lease of the database's agents, on which a switchover is requested: `<db>-primary`
    /// (SQL Server) or `<db>-master` (SingleStore).
    fn leader_lease(self, db: &str) -> String;
    /// Whether the leader's role is handed over through the database's agents before it
    /// restarts (`SwitchoverPrimary--<pod>`): SQL Server availability groups and SingleStore
    /// clusters (db-agent).
    fn switches_over(self) -> bool;
    /// What Ready means for a member of a clustered database, appended to the wait message of
    /// the check step (the seed's "checks between restarts").
    fn readiness_hint(self) -> &'static str;
}

impl KindSteps for DbKind {
    fn check_step(self) -> &'static str {
        match self {
            Self::MSSQLServer => api::conditions::pod_steps::CHECK_POD_RUNNING,
            Self::Singlestore => api::conditions::pod_steps::CHECK_POD_READY,
        }
    }

    fn check_words(self) -> &'static str {
        match self {
            Self::MSSQLServer => "check pod running",
            Self::Singlestore => "check pod ready",
        }
    }

    fn leader_role(self) -> &'static str {
        match self {
            Self::MSSQLServer => api::names::ROLE_PRIMARY,
            Self::Singlestore => SINGLESTORE_MASTER_ROLE,
        }
    }

    fn leader_lease(self, db: &str) -> String {
        match self {
            Self::MSSQLServer => api::names::primary_lease(db),
            Self::Singlestore => api::names::singlestore::master_lease(db),
        }
    }

    fn readiness_hint(self) -> &'static str {
        match self {
            Self::MSSQLServer => {
                " (its agent reports a secondary Ready only once every availability database is SYNCHRONIZED again)"
            }
            Self::Singlestore => {
                " (its agent reports a leaf Ready only once every partition on it is caught up again, an aggregator once it is back in the cluster)"
            }
        }
    }

    fn switches_over(self) -> bool {
        match self {
            // The agents hand the primary (PROMOTE AGGREGATOR ... TO MASTER for SingleStore)
            // over on request.
            Self::MSSQLServer | Self::Singlestore => true,
        }
    }
}

/// Role label value of the SingleStore master aggregator, set by its agent (KubeDB's
/// `DatabasePodMaster`).
pub const SINGLESTORE_MASTER_ROLE: &str = api::names::singlestore::ROLE_MASTER;

/// The ops request, reduced to what the step machine reads.
#[derive(Debug, Clone, PartialEq)]
pub struct RequestView {
    /// Kind.
    pub kind: DbKind,
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
    /// `metadata.generation`.
    pub generation: i64,
    /// `metadata.creationTimestamp`.
    pub created: Timestamp,
    /// `metadata.deletionTimestamp` is set.
    pub deleting: bool,
    /// The ops-manager's finalizer is present.
    pub has_finalizer: bool,
    /// `spec.databaseRef.name`.
    pub database: String,
    /// `spec.type`.
    pub op_type: OpsRequestType,
    /// `spec.updateVersion.targetVersion`.
    pub target_version: Option<String>,
    /// `spec.apply`.
    pub apply: ApplyPolicy,
    /// `spec.timeout`, parsed (an unparsable value is an error message).
    pub timeout: Result<Option<Duration>, String>,
    /// `spec.maxRetries`.
    pub max_retries: i32,
    /// The status as last written.
    pub status: OpsRequestStatus,
}

impl RequestView {
    /// The phase; a request without one counts as Pending.
    pub fn phase(&self) -> OpsRequestPhase {
        self.status.phase.unwrap_or(OpsRequestPhase::Pending)
    }

    /// The message of the database's `Paused` condition while this request holds the pause.
    pub fn pause_message(&self) -> String {
        format!("{} {} is in process", self.kind.ops_kind(), self.name)
    }
}

/// Another request of the same kind for the same database.
#[derive(Debug, Clone, PartialEq)]
pub struct PeerRequest {
    /// Name.
    pub name: String,
    /// Creation time.
    pub created: Timestamp,
    /// Type.
    pub op_type: OpsRequestType,
    /// Phase (None = not yet seen by the ops-manager).
    pub phase: Option<OpsRequestPhase>,
}

/// The database object.
#[derive(Debug, Clone, PartialEq)]
pub struct DbView {
    /// Name.
    pub name: String,
    /// `spec.version`.
    pub version: String,
    /// `status.phase`.
    pub phase: Option<DatabasePhase>,
    /// `status.conditions`.
    pub conditions: Vec<Condition>,
    /// An MSSQL availability group or a SingleStore aggregator/leaf topology.
    pub clustered: bool,
}

/// The images of one catalog Version, by slot.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct VersionImages {
    /// Object name.
    pub name: String,
    /// Database image.
    pub db: String,
    /// Coordinator sidecar.
    pub coordinator: String,
    /// Init container.
    pub init: Option<String>,
    /// Exporter sidecar (MSSQL).
    pub exporter: Option<String>,
    /// Cluster-in-a-box image (SingleStore standalone).
    pub standalone: Option<String>,
}

/// One container's name and image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerImage {
    /// Container name.
    pub name: String,
    /// Image.
    pub image: String,
}

impl ContainerImage {
    /// A container image pair.
    pub fn new(name: impl Into<String>, image: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            image: image.into(),
        }
    }
}

/// A StatefulSet of the database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StsView {
    /// Name.
    pub name: String,
    /// Template containers.
    pub containers: Vec<ContainerImage>,
    /// Template init containers.
    pub init_containers: Vec<ContainerImage>,
}

/// The kubelet's view of one container.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ContainerState {
    /// Container name.
    pub name: String,
    /// Image the kubelet runs.
    pub image: String,
    /// Ready.
    pub ready: bool,
    /// Reason while waiting (ContainerCreating, ImagePullBackOff, ...).
    pub waiting_reason: Option<String>,
    /// Message while waiting.
    pub waiting_message: Option<String>,
}

/// A pod of the database.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PodView {
    /// Name.
    pub name: String,
    /// UID (identifies one incarnation).
    pub uid: String,
    /// Owning StatefulSet.
    pub sts: String,
    /// Ordinal.
    pub ordinal: i32,
    /// `kubedb.com/role`.
    pub role: Option<String>,
    /// Pod condition Ready is True.
    pub ready: bool,
    /// `deletionTimestamp` is set.
    pub terminating: bool,
    /// Spec containers.
    pub containers: Vec<ContainerImage>,
    /// Spec init containers.
    pub init_containers: Vec<ContainerImage>,
    /// Container statuses.
    pub statuses: Vec<ContainerState>,
    /// Init container statuses.
    pub init_statuses: Vec<ContainerState>,
}

impl PodView {
    /// Ready and not terminating (what a PodDisruptionBudget counts as healthy).
    pub fn healthy(&self) -> bool {
        self.ready && !self.terminating
    }
}

/// A PodDisruptionBudget covering some of the database's pods.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PdbView {
    /// Name.
    pub name: String,
    /// Names of the pods it selects.
    pub pods: Vec<String>,
    /// How many of them must stay healthy.
    pub desired_healthy: i32,
}

/// Everything the step machine reads for one decision.
#[derive(Debug, Clone)]
pub struct World {
    /// The clock.
    pub now: Timestamp,
    /// The database (None = not found).
    pub db: Option<DbView>,
    /// Validation of the request against the database and the catalog (decides Pending requests).
    pub validation: Result<(), crate::validate::Rejection>,
    /// Images of the database's current Version and of the target Version, when both exist.
    pub images: Option<Target>,
    /// StatefulSets of the database (loaded only while Progressing).
    pub statefulsets: Vec<StsView>,
    /// Pods of the database (loaded only while Progressing).
    pub pods: Vec<PodView>,
    /// PDBs of the database (loaded only while Progressing).
    pub pdbs: Vec<PdbView>,
    /// Other requests of the same kind for the same database.
    pub peers: Vec<PeerRequest>,
    /// The handover the database's primary Lease requests (pod, until), read while Progressing
    /// for kinds that switch over.
    pub handover: Option<(String, Timestamp)>,
    /// The error of this request's last action, if it failed and no action succeeded since
    /// (the controller's memory; lost on a restart, which only delays a timeout's message).
    pub action_error: Option<String>,
}

/// The images before and after a valid UpdateVersion.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The database's current Version.
    pub current: VersionImages,
    /// The target Version.
    pub target: VersionImages,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn step_vocabulary_of_each_kind() {
        let table = [
            (
                DbKind::MSSQLServer,
                "CheckPodRunning",
                "check pod running",
                "primary",
            ),
            (
                DbKind::Singlestore,
                "CheckPodReady",
                "check pod ready",
                "Master",
            ),
        ];
        for (kind, step, words, leader) in table {
            assert_eq!(kind.check_step(), step, "{kind:?}");
            assert_eq!(kind.check_words(), words, "{kind:?}");
            assert_eq!(kind.leader_role(), leader, "{kind:?}");
        }
    }
}
