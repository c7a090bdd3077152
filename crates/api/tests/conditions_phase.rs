//! Condition set semantics and the phase calculator (reference §2.3, §3).

use api::DatabasePhase::{self, *};
use api::conditions::{
    Condition, ConditionStatus, SetOutcome, db_types, get_condition, remove_condition,
    set_condition,
};
use jiff::Timestamp;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

fn at(seconds: i64) -> Time {
    Time(Timestamp::from_second(1_780_000_000 + seconds).unwrap())
}

fn cond(type_: &str, status: ConditionStatus) -> Condition {
    Condition::new(type_, status, at(0))
}

#[test]
fn last_transition_time_is_kept_when_only_the_message_changes() {
    let mut conditions = Vec::new();
    let first = Condition::new(db_types::READY, ConditionStatus::True, at(0))
        .with_reason("ReadinessCheckSucceeded")
        .with_message("ok")
        .with_generation(1);
    assert_eq!(set_condition(&mut conditions, first), SetOutcome::Added);

    let second = Condition::new(db_types::READY, ConditionStatus::True, at(60))
        .with_reason("ReadinessCheckSucceeded")
        .with_message("still ok")
        .with_generation(1);
    assert_eq!(set_condition(&mut conditions, second), SetOutcome::Updated);
    let ready = get_condition(&conditions, db_types::READY).unwrap();
    assert_eq!(ready.message.as_deref(), Some("still ok"));
    assert_eq!(ready.last_transition_time, at(0));
    assert_eq!(conditions.len(), 1, "replaced by type, not appended");
}

#[test]
fn last_transition_time_moves_when_the_status_changes() {
    let mut conditions = vec![cond(db_types::READY, ConditionStatus::True)];
    let failed = Condition::new(db_types::READY, ConditionStatus::False, at(90))
        .with_reason("ReadinessCheckFailed");
    assert_eq!(set_condition(&mut conditions, failed), SetOutcome::Updated);
    let ready = get_condition(&conditions, db_types::READY).unwrap();
    assert_eq!(ready.status, ConditionStatus::False);
    assert_eq!(ready.last_transition_time, at(90));
}

#[test]
fn unchanged_condition_is_not_rewritten() {
    let original = Condition::from_reason("Provisioned", "done", 3, at(0));
    let mut conditions = vec![original.clone()];
    let same_later = Condition::from_reason("Provisioned", "done", 3, at(500));
    assert_eq!(
        set_condition(&mut conditions, same_later),
        SetOutcome::Unchanged
    );
    assert_eq!(conditions, vec![original]);
}

#[test]
fn observed_generation_never_goes_back() {
    let mut conditions =
        vec![Condition::new(db_types::READY, ConditionStatus::True, at(0)).with_generation(5)];
    let stale = Condition::new(db_types::READY, ConditionStatus::False, at(10)).with_generation(4);
    assert_eq!(set_condition(&mut conditions, stale), SetOutcome::Unchanged);
    let ready = get_condition(&conditions, db_types::READY).unwrap();
    assert_eq!(ready.observed_generation, Some(5));
    assert_eq!(ready.status, ConditionStatus::True);

    let newer = Condition::new(db_types::READY, ConditionStatus::False, at(20)).with_generation(6);
    assert_eq!(set_condition(&mut conditions, newer), SetOutcome::Updated);
    assert_eq!(
        get_condition(&conditions, db_types::READY)
            .unwrap()
            .observed_generation,
        Some(6)
    );
}

#[test]
fn from_reason_uses_reason_as_type_and_remove_works() {
    let c = Condition::from_reason(
        "DatabasePauseSucceeded",
        "Successfully paused database",
        1,
        at(0),
    );
    assert_eq!(c.type_, "DatabasePauseSucceeded");
    assert_eq!(c.reason.as_deref(), Some("DatabasePauseSucceeded"));
    assert!(c.is_true());
    let mut conditions = vec![c];
    assert!(remove_condition(&mut conditions, "DatabasePauseSucceeded"));
    assert!(!remove_condition(&mut conditions, "DatabasePauseSucceeded"));
    assert!(conditions.is_empty());
}

/// (rule, conditions as (type, status), expected phase)
type Row = (
    &'static str,
    Vec<(&'static str, ConditionStatus)>,
    Option<DatabasePhase>,
);

#[test]
fn phase_calculator_rules() {
    use ConditionStatus::{False, True, Unknown as U};
    let healthy = [
        (db_types::PROVISIONING_STARTED, True),
        (db_types::REPLICA_READY, True),
        (db_types::ACCEPTING_CONNECTION, True),
        (db_types::READY, True),
        (db_types::PROVISIONED, True),
    ];
    let with = |extra: &[(&'static str, ConditionStatus)]| {
        let mut list: Vec<(&'static str, ConditionStatus)> = healthy.to_vec();
        for (t, s) in extra {
            list.retain(|(existing, _)| existing != t);
            list.push((t, *s));
        }
        list
    };
    let table: Vec<Row> = vec![
        ("no conditions", vec![], None),
        (
            "1: HealthCheckPaused wins",
            with(&[
                (db_types::HEALTH_CHECK_PAUSED, True),
                (db_types::HALTED, True),
            ]),
            Some(Unknown),
        ),
        (
            "2: ProvisioningStarted alone is Provisioning",
            vec![(db_types::PROVISIONING_STARTED, True)],
            Some(Provisioning),
        ),
        (
            "2: Provisioning while replicas come up",
            vec![
                (db_types::PROVISIONING_STARTED, True),
                (db_types::REPLICA_READY, False),
            ],
            Some(Provisioning),
        ),
        ("3: Halted", with(&[(db_types::HALTED, True)]), Some(Halted)),
        (
            "4: DataRestoreStarted without DataRestored",
            vec![
                (db_types::PROVISIONING_STARTED, True),
                (db_types::DATA_RESTORE_STARTED, True),
            ],
            Some(DataRestoring),
        ),
        (
            "4: DataRestored False",
            with(&[
                (db_types::DATA_RESTORE_STARTED, True),
                (db_types::DATA_RESTORED, False),
            ]),
            Some(NotReady),
        ),
        (
            "4: DataRestored True falls through to Ready",
            with(&[
                (db_types::DATA_RESTORE_STARTED, True),
                (db_types::DATA_RESTORED, True),
            ]),
            Some(Ready),
        ),
        (
            "5: AcceptingConnection False",
            with(&[
                (db_types::ACCEPTING_CONNECTION, False),
                (db_types::REPLICA_READY, False),
            ]),
            Some(NotReady),
        ),
        (
            "5: ReplicaReady False",
            with(&[(db_types::REPLICA_READY, False)]),
            Some(Critical),
        ),
        (
            "5: Ready False",
            with(&[(db_types::READY, False)]),
            Some(Critical),
        ),
        ("5: Ready True", healthy.to_vec(), Some(Ready)),
        (
            "6: Paused Unknown does not change the phase",
            with(&[(db_types::PAUSED, U)]),
            Some(Ready),
        ),
        (
            "6: Paused True does not change the phase",
            with(&[(db_types::PAUSED, True), (db_types::READY, False)]),
            Some(Critical),
        ),
        (
            "6: Provisioned without Ready keeps the tentative phase",
            vec![
                (db_types::PROVISIONING_STARTED, True),
                (db_types::PROVISIONED, True),
            ],
            Some(Provisioning),
        ),
    ];
    for (name, list, expected) in table {
        let conditions: Vec<Condition> = list.iter().map(|(t, s)| cond(t, *s)).collect();
        assert_eq!(
            api::phase::phase_from_conditions(&conditions),
            expected,
            "rule {name:?}"
        );
    }
}
