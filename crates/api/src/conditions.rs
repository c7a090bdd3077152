//! Conditions (kmapi `Condition`) with KubeDB's set semantics, plus typed constants for every
//! condition type and reason the provisioner and the ops-manager write.
//!
//! Semantics of [`set_condition`] (after kmodules `conditions.SetCondition`):
//! - conditions are keyed by `type`: setting a type replaces the existing entry in place;
//! - `lastTransitionTime` moves only when `status` changes;
//! - when status, reason, message and observedGeneration are all unchanged nothing is written;
//! - `observedGeneration` never goes back: a condition carrying an older generation than the
//!   stored one is ignored.
//!
//! The clock is always passed in, so callers and tests are deterministic.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Status of a condition.
#[derive(Serialize, Deserialize, JsonSchema, Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ConditionStatus {
    /// The condition holds.
    True,
    /// The condition does not hold.
    False,
    /// Not known, or requested but not yet acknowledged (the `Paused` handshake).
    Unknown,
}

impl ConditionStatus {
    /// The status as written in the object.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::True => "True",
            Self::False => "False",
            Self::Unknown => "Unknown",
        }
    }
}

impl From<bool> for ConditionStatus {
    fn from(value: bool) -> Self {
        if value { Self::True } else { Self::False }
    }
}

/// kmapi `Condition`: `type`, `status` and `lastTransitionTime` are required.
#[derive(Serialize, Deserialize, JsonSchema, Debug, Clone, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Condition {
    /// Condition type, unique within the list.
    #[serde(rename = "type")]
    pub type_: String,
    /// True, False or Unknown.
    pub status: ConditionStatus,
    /// The `.metadata.generation` this condition was computed for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Severity of a False condition (`Error`, `Warning`, `Info`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub severity: Option<String>,
    /// Last time the status changed.
    pub last_transition_time: Time,
    /// Machine-readable reason in CamelCase.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Human-readable message.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

impl Condition {
    /// A condition of `type_` with the given status, stamped with `now`.
    pub fn new(type_: impl Into<String>, status: ConditionStatus, now: Time) -> Self {
        Self {
            type_: type_.into(),
            status,
            observed_generation: None,
            severity: None,
            last_transition_time: now,
            reason: None,
            message: None,
        }
    }

    /// KubeDB's `NewCondition(reason, message, generation)`: type = reason, status True.
    pub fn from_reason(
        reason: impl Into<String>,
        message: impl Into<String>,
        generation: i64,
        now: Time,
    ) -> Self {
        let reason = reason.into();
        Self::new(reason.clone(), ConditionStatus::True, now)
            .with_reason(reason)
            .with_message(message)
            .with_generation(generation)
    }

    /// Sets the reason.
    pub fn with_reason(mut self, reason: impl Into<String>) -> Self {
        self.reason = Some(reason.into());
        self
    }

    /// Sets the message.
    pub fn with_message(mut self, message: impl Into<String>) -> Self {
        self.message = Some(message.into());
        self
    }

    /// Sets the observed generation.
    pub fn with_generation(mut self, generation: i64) -> Self {
        self.observed_generation = Some(generation);
        self
    }

    /// Whether the condition's status is True.
    pub fn is_true(&self) -> bool {
        self.status == ConditionStatus::True
    }
}

/// Returns what [`set_condition`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SetOutcome {
    /// A new type was appended.
    Added,
    /// An existing entry was replaced.
    Updated,
    /// Nothing changed (same content, or an older generation).
    Unchanged,
}

/// Sets `new` in `conditions` with KubeDB's semantics (see the module documentation).
pub fn set_condition(conditions: &mut Vec<Condition>, mut new: Condition) -> SetOutcome {
    let Some(existing) = conditions.iter_mut().find(|c| c.type_ == new.type_) else {
        conditions.push(new);
        return SetOutcome::Added;
    };
    if let (Some(old), Some(incoming)) = (existing.observed_generation, new.observed_generation)
        && incoming < old
    {
        return SetOutcome::Unchanged;
    }
    if existing.status == new.status
        && existing.reason == new.reason
        && existing.message == new.message
        && existing.observed_generation == new.observed_generation
        && existing.severity == new.severity
    {
        return SetOutcome::Unchanged;
    }
    if existing.status == new.status {
        new.last_transition_time = existing.last_transition_time.clone();
    }
    if new.observed_generation.is_none() {
        new.observed_generation = existing.observed_generation;
    }
    *existing = new;
    SetOutcome::Updated
}

/// Removes the condition of `type_`; returns whether one was present.
pub fn remove_condition(conditions: &mut Vec<Condition>, type_: &str) -> bool {
    let before = conditions.len();
    conditions.retain(|c| c.type_ != type_);
    conditions.len() != before
}

/// The condition of `type_`, if present.
pub fn get_condition<'a>(conditions: &'a [Condition], type_: &str) -> Option<&'a Condition> {
    conditions.iter().find(|c| c.type_ == type_)
}

/// Whether the condition of `type_` is present with status True.
pub fn is_condition_true(conditions: &[Condition], type_: &str) -> bool {
    has_status(conditions, type_, ConditionStatus::True)
}

/// Whether the condition of `type_` is present with status False.
pub fn is_condition_false(conditions: &[Condition], type_: &str) -> bool {
    has_status(conditions, type_, ConditionStatus::False)
}

/// Whether the condition of `type_` is present with `status`.
pub fn has_status(conditions: &[Condition], type_: &str, status: ConditionStatus) -> bool {
    get_condition(conditions, type_).is_some_and(|c| c.status == status)
}

/// Condition types written on database objects (§3) by the provisioner, the PetSet watcher,
/// the health checker and the ops-manager (`Paused`).
pub mod db_types {
    /// A spec change that would cut the database off its data (or change its version outside
    /// an ops request) was refused: the children are left as they are (ours, not KubeDB's:
    /// KubeDB refuses these in its admission webhook).
    pub const SPEC_CHANGE_REFUSED: &str = "SpecChangeRefused";
    /// An UpdateVersion moved the StatefulSets to a version and did not finish (it failed, timed
    /// out or was deleted): pods restarted since run that version, the others the old one
    /// (ours, not KubeDB's).
    pub const VERSION_UPDATE_INCOMPLETE: &str = "VersionUpdateIncomplete";
    /// Provisioning has begun.
    pub const PROVISIONING_STARTED: &str = "ProvisioningStarted";
    /// Every PetSet has readyReplicas == replicas.
    pub const REPLICA_READY: &str = "ReplicaReady";
    /// MSSQL AG: the availability group was created on the primary.
    pub const AG_PRIMARY_REPLICA_READY: &str = "AGPrimaryReplicaReady";
    /// The health checker can connect.
    pub const ACCEPTING_CONNECTION: &str = "AcceptingConnection";
    /// Health checks pass.
    pub const READY: &str = "Ready";
    /// First provisioning finished.
    pub const PROVISIONED: &str = "Provisioned";
    /// `spec.halted` is applied.
    pub const HALTED: &str = "Halted";
    /// An ops request is running (Unknown = requested, True = acknowledged by the provisioner).
    pub const PAUSED: &str = "Paused";
    /// Health checks are suspended.
    pub const HEALTH_CHECK_PAUSED: &str = "HealthCheckPaused";
    /// A restore from backup has started.
    pub const DATA_RESTORE_STARTED: &str = "DataRestoreStarted";
    /// A restore from backup finished (True) or failed (False).
    pub const DATA_RESTORED: &str = "DataRestored";
    /// Read probe result.
    pub const DATABASE_READ_ACCESS: &str = "DatabaseReadAccess";
    /// Write probe result.
    pub const DATABASE_WRITE_ACCESS: &str = "DatabaseWriteAccess";
}

/// Reasons written on database-object conditions (§3).
pub mod db_reasons {
    /// `ProvisioningStarted`.
    pub const DATABASE_PROVISIONING_STARTED_SUCCESSFULLY: &str =
        "DatabaseProvisioningStartedSuccessfully";
    /// `ReplicaReady` True.
    pub const ALL_REPLICAS_READY: &str = "AllReplicasReady";
    /// `ReplicaReady` False.
    pub const SOME_REPLICAS_NOT_READY: &str = "SomeReplicasNotReady";
    /// `AGPrimaryReplicaReady` (KubeDB's spelling kept).
    pub const AVAILABILITY_GROUP_CREATED_IN_PRIMARY: &str = "AvailabilyGroupCreatedInPrimary";
    /// `AcceptingConnection` (docs output).
    pub const ACCEPTING_CONNECTION: &str = "AcceptingConnection";
    /// `AcceptingConnection` True.
    pub const DATABASE_ACCEPTING_CONNECTION_REQUEST: &str = "DatabaseAcceptingConnectionRequest";
    /// `AcceptingConnection` False.
    pub const DATABASE_NOT_ACCEPTING_CONNECTION_REQUEST: &str =
        "DatabaseNotAcceptingConnectionRequest";
    /// `Ready` True.
    pub const READINESS_CHECK_SUCCEEDED: &str = "ReadinessCheckSucceeded";
    /// `Ready` False.
    pub const READINESS_CHECK_FAILED: &str = "ReadinessCheckFailed";
    /// `Provisioned`.
    pub const DATABASE_SUCCESSFULLY_PROVISIONED: &str = "DatabaseSuccessfullyProvisioned";
    /// `Halted`.
    pub const DATABASE_HALTED_SUCCESSFULLY: &str = "DatabaseHaltedSuccessfully";
    /// `Paused`.
    pub const PAUSED: &str = "Paused";
    /// `DataRestoreStarted`.
    pub const DATA_RESTORE_STARTED_BY_EXTERNAL_INITIALIZER: &str =
        "DataRestoreStartedByExternalInitializer";
    /// `DataRestored` True.
    pub const SUCCESSFULLY_DATA_RESTORED: &str = "SuccessfullyDataRestored";
    /// `DataRestored` False.
    pub const FAILED_TO_RESTORE_DATA: &str = "FailedToRestoreData";
    /// `DataRestored` False after an interruption.
    pub const DATA_RESTORE_INTERRUPTED: &str = "DataRestoreInterrupted";
    /// `DatabaseReadAccess` True.
    pub const DATABASE_READ_ACCESS_CHECK_SUCCEEDED: &str = "DatabaseReadAccessCheckSucceeded";
    /// `DatabaseReadAccess` False.
    pub const DATABASE_READ_ACCESS_CHECK_FAILED: &str = "DatabaseReadAccessCheckFailed";
    /// `DatabaseWriteAccess` True.
    pub const DATABASE_WRITE_ACCESS_CHECK_SUCCEEDED: &str = "DatabaseWriteAccessCheckSucceeded";
    /// `DatabaseWriteAccess` False.
    pub const DATABASE_WRITE_ACCESS_CHECK_FAILED: &str = "DatabaseWriteAccessCheckFailed";
}

/// Condition types (and reasons, which equal the type) written on ops requests (§5.4).
pub mod ops_types {
    /// Generic: running.
    pub const RUNNING: &str = "Running";
    /// Generic: the request succeeded.
    pub const SUCCESSFUL: &str = "Successful";
    /// Generic: the request failed (also used as the reason of a failed step).
    pub const FAILED: &str = "Failed";
    /// Generic: a step is being retried.
    pub const RETRYING: &str = "Retrying";
    /// The request was skipped in favour of a newer one.
    pub const SKIPPED: &str = "Skipped";
    /// The database is ready.
    pub const DATABASE_READY: &str = "DatabaseReady";
    /// Pause requested.
    pub const PAUSE_DATABASE: &str = "PauseDatabase";
    /// Pause acknowledged.
    pub const DATABASE_PAUSE_SUCCEEDED: &str = "DatabasePauseSucceeded";
    /// Pause failed.
    pub const DATABASE_PAUSE_FAILED: &str = "DatabasePauseFailed";
    /// Resume requested.
    pub const RESUME_DATABASE: &str = "ResumeDatabase";
    /// Resume done.
    pub const DATABASE_RESUME_SUCCEEDED: &str = "DatabaseResumeSucceeded";
    /// Resume failed.
    pub const DATABASE_RESUME_FAILED: &str = "DatabaseResumeFailed";
    /// The database object was patched (e.g. `spec.version`).
    pub const UPDATE_DATABASE: &str = "UpdateDatabase";
    /// Version update.
    pub const VERSION_UPDATE: &str = "VersionUpdate";
    /// Version update started.
    pub const VERSION_UPDATE_STARTED: &str = "VersionUpdateStarted";
    /// Version update succeeded.
    pub const VERSION_UPDATE_SUCCEEDED: &str = "VersionUpdateSucceeded";
    /// Version update failed.
    pub const VERSION_UPDATE_FAILED: &str = "VersionUpdateFailed";
    /// PetSet templates were updated.
    pub const UPDATE_PET_SETS: &str = "UpdatePetSets";
    /// PetSet update succeeded.
    pub const UPDATE_PET_SETS_SUCCEEDED: &str = "UpdatePetSetsSucceeded";
    /// PetSet update failed.
    pub const UPDATE_PET_SETS_FAILED: &str = "UpdatePetSetsFailed";
    /// PetSets are ready.
    pub const READY_PET_SETS: &str = "ReadyPetSets";
    /// PetSets deleted.
    pub const DELETE_PET_SETS: &str = "DeletePetSets";
    /// PetSet pods orphaned.
    pub const ORPHAN_PET_SET_PODS: &str = "OrphanPetSetPods";
    /// Restart.
    pub const RESTART: &str = "Restart";
    /// Nodes restarted.
    pub const RESTART_NODES: &str = "RestartNodes";
    /// Pods restarted.
    pub const RESTART_PODS: &str = "RestartPods";
    /// Pod restart succeeded.
    pub const RESTART_PODS_SUCCEEDED: &str = "RestartPodsSucceeded";
    /// Pod restart failed.
    pub const RESTART_PODS_FAILED: &str = "RestartPodsFailed";
    /// Backups paused.
    pub const PAUSE_BACKUP_CONFIGURATION: &str = "PauseBackupConfiguration";
    /// Backups resumed.
    pub const RESUME_BACKUP_CONFIGURATION: &str = "ResumeBackupConfiguration";
    /// TLS reconfiguration.
    pub const RECONFIGURE_TLS: &str = "ReconfigureTLS";
    /// Certificates issued.
    pub const ISSUE_CERTIFICATES_SUCCEEDED: &str = "IssueCertificatesSucceeded";
    /// Certificates synced.
    pub const CERTIFICATE_SYNCED: &str = "CertificateSynced";
    /// Credential rotation.
    pub const ROTATE_AUTH: &str = "RotateAuth";
    /// Credentials updated.
    pub const UPDATE_CREDENTIAL: &str = "UpdateCredential";
    /// MSSQL: configuration prepared.
    pub const PREPARE_APPLY_CONFIG: &str = "PrepareApplyConfig";
    /// SingleStore: aggregators scaled up.
    pub const SCALE_UP_AGGREGATOR: &str = "ScaleUpAggregator";
    /// SingleStore: aggregators scaled down.
    pub const SCALE_DOWN_AGGREGATOR: &str = "ScaleDownAggregator";
    /// SingleStore: leaves scaled up.
    pub const SCALE_UP_LEAF: &str = "ScaleUpLeaf";
    /// SingleStore: leaves scaled down.
    pub const SCALE_DOWN_LEAF: &str = "ScaleDownLeaf";
    /// SingleStore: aggregator PVCs expanded.
    pub const UPDATE_AGGREGATOR_NODE_PVCS: &str = "UpdateAggregatorNodePVCs";
    /// SingleStore: leaf PVCs expanded.
    pub const UPDATE_LEAF_NODE_PVCS: &str = "UpdateLeafNodePVCs";
    /// SingleStore Reconfigure start condition (docs output).
    pub const CONFIGURATION: &str = "Configuration";
    /// Start condition of UpdateVersion (type = op type).
    pub const UPDATE_VERSION: &str = "UpdateVersion";
    /// Start condition of HorizontalScaling.
    pub const HORIZONTAL_SCALING: &str = "HorizontalScaling";
    /// Start condition of VerticalScaling.
    pub const VERTICAL_SCALING: &str = "VerticalScaling";
    /// Start condition of VolumeExpansion.
    pub const VOLUME_EXPANSION: &str = "VolumeExpansion";
    /// Start condition of Reconfigure.
    pub const RECONFIGURE: &str = "Reconfigure";
    /// Start condition of StorageMigration.
    pub const STORAGE_MIGRATION: &str = "StorageMigration";
}

/// Per-pod step conditions of the ops-manager: type `<Step>--<podName>`, status True, no reason.
pub mod pod_steps {
    /// Read the pod.
    pub const GET_POD: &str = "GetPod";
    /// Evict the pod.
    pub const EVICT_POD: &str = "EvictPod";
    /// Hand the primary role away from the pod before it restarts (our addition to KubeDB's
    /// steps): status Unknown while the agents work on it, True once another pod is primary,
    /// False when it timed out and the eviction went ahead anyway.
    pub const SWITCHOVER_PRIMARY: &str = "SwitchoverPrimary";
    /// MSSQL: the recreated pod is Running.
    pub const CHECK_POD_RUNNING: &str = "CheckPodRunning";
    /// SingleStore: the recreated pod is Ready.
    pub const CHECK_POD_READY: &str = "CheckPodReady";
    /// The pod is ready.
    pub const IS_POD_READY: &str = "IsPodReady";
    /// The PetSet was patched.
    pub const PATCH_PETSET: &str = "PatchPetset";
    /// A raft node was added.
    pub const ADD_RAFT_NODE: &str = "AddRaftNode";
    /// A raft node was removed.
    pub const REMOVE_RAFT_NODE: &str = "RemoveRaftNode";
    /// A raft node was read.
    pub const GET_RAFT_NODE: &str = "GetRaftNode";
    /// The current leader was read.
    pub const GET_CURRENT_LEADER: &str = "GetCurrentLeader";
    /// A PVC was deleted.
    pub const DELETE_PVC: &str = "DeletePvc";

    /// The condition type of `step` for `pod`: `<step>--<pod>`.
    pub fn condition_type(step: &str, pod: &str) -> String {
        format!("{step}--{pod}")
    }

    /// The step message KubeDB writes, e.g. `evict pod; ConditionStatus:True; PodName:db-0`.
    pub fn message(step_words: &str, status: super::ConditionStatus, pod: &str) -> String {
        format!(
            "{step_words}; ConditionStatus:{}; PodName:{pod}",
            status.as_str()
        )
    }
}
