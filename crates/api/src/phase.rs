//! The database phase calculator (KubeDB `pkg/phase.PhaseFromCondition`, reference §3).

use crate::common::DatabasePhase;
use crate::conditions::{
    Condition, db_types, get_condition, is_condition_false, is_condition_true,
};

/// Computes `status.phase` from the database's conditions. The first matching rule wins:
///
/// 1. `HealthCheckPaused` True → `Unknown`.
/// 2. `ProvisioningStarted` True → tentative `Provisioning`.
/// 3. `Halted` True → `Halted`.
/// 4. `DataRestoreStarted` True and no `DataRestored` condition → `DataRestoring`;
///    `DataRestored` False → `NotReady`.
/// 5. `Provisioned` True: `AcceptingConnection` False → `NotReady`; else `ReplicaReady` False →
///    `Critical`; else `Ready` False → `Critical`; else `Ready` True → `Ready`.
/// 6. Otherwise the tentative phase (or `None`).
///
/// `Paused` is deliberately ignored: a database being updated keeps showing `Ready` or
/// `Critical` while its pods restart.
pub fn phase_from_conditions(conditions: &[Condition]) -> Option<DatabasePhase> {
    if is_condition_true(conditions, db_types::HEALTH_CHECK_PAUSED) {
        return Some(DatabasePhase::Unknown);
    }
    let tentative = is_condition_true(conditions, db_types::PROVISIONING_STARTED)
        .then_some(DatabasePhase::Provisioning);
    if is_condition_true(conditions, db_types::HALTED) {
        return Some(DatabasePhase::Halted);
    }
    if is_condition_true(conditions, db_types::DATA_RESTORE_STARTED)
        && get_condition(conditions, db_types::DATA_RESTORED).is_none()
    {
        return Some(DatabasePhase::DataRestoring);
    }
    if is_condition_false(conditions, db_types::DATA_RESTORED) {
        return Some(DatabasePhase::NotReady);
    }
    if is_condition_true(conditions, db_types::PROVISIONED) {
        if is_condition_false(conditions, db_types::ACCEPTING_CONNECTION) {
            return Some(DatabasePhase::NotReady);
        }
        if is_condition_false(conditions, db_types::REPLICA_READY) {
            return Some(DatabasePhase::Critical);
        }
        if is_condition_false(conditions, db_types::READY) {
            return Some(DatabasePhase::Critical);
        }
        if is_condition_true(conditions, db_types::READY) {
            return Some(DatabasePhase::Ready);
        }
    }
    tentative
}
