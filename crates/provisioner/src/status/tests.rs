use super::*;
use api::conditions::ConditionStatus;

fn now() -> Time {
    Time(jiff::Timestamp::from_second(1_800_000_000).unwrap())
}

fn obs() -> Observation {
    Observation {
        kind: DbKind::MSSQLServer,
        key: "demo/ms".into(),
        generation: 1,
        blocker: None,
        missing_certificates: Some(vec![]),
        provisioning_started: true,
        halted: false,
        sets: vec![SetReadiness {
            name: "ms".into(),
            replicas: 3,
            ready: 3,
        }],
        ag_primary: Some(Some("ms-0".into())),
        ag_name: "ms".into(),
        health: Health {
            accepting: true,
            ready: true,
            message: String::new(),
        },
        deletion_blocked: None,
    }
}

fn types(conditions: &[Condition]) -> Vec<(&str, ConditionStatus)> {
    conditions
        .iter()
        .map(|c| (c.type_.as_str(), c.status))
        .collect()
}

#[test]
fn healthy_ag_gets_kubedb_conditions_in_order() {
    let conditions = compute_conditions(&[], &obs(), &now());
    assert_eq!(
        types(&conditions),
        [
            ("CertificatesIssued", ConditionStatus::True),
            ("ProvisioningStarted", ConditionStatus::True),
            ("ReplicaReady", ConditionStatus::True),
            ("AGPrimaryReplicaReady", ConditionStatus::True),
            ("AcceptingConnection", ConditionStatus::True),
            ("Ready", ConditionStatus::True),
            ("Provisioned", ConditionStatus::True),
        ]
    );
    assert_eq!(phase(&conditions), Some(DatabasePhase::Ready));
    // Idempotent: the same observation changes nothing.
    assert_eq!(compute_conditions(&conditions, &obs(), &now()), conditions);
}

#[test]
fn phases_follow_the_observation() {
    let ready = compute_conditions(&[], &obs(), &now());
    type Change = Box<dyn Fn(&mut Observation)>;
    let table: Vec<(Change, Option<DatabasePhase>)> = vec![
        (
            Box::new(|o| o.sets[0].ready = 2),
            Some(DatabasePhase::Critical),
        ),
        (
            Box::new(|o| {
                o.health = Health {
                    accepting: false,
                    ready: false,
                    message: "down".into(),
                }
            }),
            Some(DatabasePhase::NotReady),
        ),
        (Box::new(|o| o.halted = true), Some(DatabasePhase::Halted)),
        (
            Box::new(|o| o.health.ready = false),
            Some(DatabasePhase::Critical),
        ),
    ];
    for (i, (change, expected)) in table.into_iter().enumerate() {
        let mut o = obs();
        change(&mut o);
        let conditions = compute_conditions(&ready, &o, &now());
        assert_eq!(phase(&conditions), expected, "case {i}");
    }
    // Before the first Ready, not-ready replicas mean Provisioning.
    let mut o = obs();
    o.sets[0].ready = 0;
    o.health.accepting = false;
    assert_eq!(
        phase(&compute_conditions(&[], &o, &now())),
        Some(DatabasePhase::Provisioning)
    );
}

#[test]
fn blocked_database_has_no_phase_and_one_warning() {
    let mut o = obs();
    o.provisioning_started = false;
    o.blocker = Some(Blocker {
        reason: "VersionNotFound".into(),
        message: "MSSQLServerVersion \"9\" does not exist; available versions: 2022-cu22".into(),
    });
    let conditions = compute_conditions(&[], &o, &now());
    assert_eq!(phase(&conditions), None);
    let blocked = get_condition(&conditions, PROVISIONING_BLOCKED).unwrap();
    assert_eq!(blocked.reason.as_deref(), Some("VersionNotFound"));
    let events = transition_events(DbKind::MSSQLServer, &[], &conditions);
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].reason, "VersionNotFound");
    assert!(events[0].note.contains("available versions"));
    // No repeated Event for an unchanged condition.
    assert!(transition_events(DbKind::MSSQLServer, &conditions, &conditions).is_empty());
    // Resolved: the condition goes away.
    let cleared = compute_conditions(&conditions, &obs(), &now());
    assert!(get_condition(&cleared, PROVISIONING_BLOCKED).is_none());
}

#[test]
fn paused_is_acknowledged_and_kept() {
    let ready = compute_conditions(&[], &obs(), &now());
    let mut requested = ready.clone();
    requested.push(
        Condition::new("Paused", ConditionStatus::Unknown, now())
            .with_reason("Paused")
            .with_message("MSSQLServerOpsRequest up is in process"),
    );
    let acked = compute_conditions(&requested, &obs(), &now());
    let paused = get_condition(&acked, "Paused").unwrap();
    assert_eq!(paused.status, ConditionStatus::True);
    assert_eq!(
        paused.message.as_deref(),
        Some("MSSQLServerOpsRequest up is in process")
    );
    assert_eq!(
        phase(&acked),
        Some(DatabasePhase::Ready),
        "Paused does not change the phase"
    );
    let events = transition_events(DbKind::MSSQLServer, &requested, &acked);
    assert_eq!(
        events.iter().map(|e| e.reason.as_str()).collect::<Vec<_>>(),
        ["PauseAcknowledged"]
    );
    // Acknowledged stays acknowledged; the provisioner never removes it.
    assert_eq!(compute_conditions(&acked, &obs(), &now()), acked);
    let deleting = deletion_conditions(&requested, Some("refused".into()), 1, &now());
    assert_eq!(
        get_condition(&deleting, "Paused").unwrap().status,
        ConditionStatus::True
    );
    assert!(get_condition(&deleting, DELETION_BLOCKED).is_some());
}

#[test]
fn transition_events_fire_once() {
    let mut o = obs();
    o.sets[0].ready = 0;
    o.health.accepting = false;
    let provisioning = compute_conditions(&[], &o, &now());
    let reasons = |old: &[Condition], new: &[Condition]| -> Vec<String> {
        transition_events(DbKind::MSSQLServer, old, new)
            .into_iter()
            .map(|e| e.reason)
            .collect()
    };
    assert_eq!(reasons(&[], &provisioning), ["ProvisioningStarted"]);
    let ready = compute_conditions(&provisioning, &obs(), &now());
    assert_eq!(reasons(&provisioning, &ready), ["Ready", "Provisioned"]);
    let mut down = obs();
    down.health = Health {
        accepting: false,
        ready: false,
        message: "no pod".into(),
    };
    let critical = compute_conditions(&ready, &down, &now());
    assert_eq!(reasons(&ready, &critical), ["NotReady"]);
    let mut halted = obs();
    halted.halted = true;
    let h = compute_conditions(&ready, &halted, &now());
    assert_eq!(reasons(&ready, &h), ["Halted"]);
    assert_eq!(
        reasons(&h, &compute_conditions(&h, &obs(), &now())),
        ["Resumed"]
    );
}

#[test]
fn waiting_for_certificates_names_the_secret() {
    let mut o = obs();
    o.provisioning_started = false;
    o.missing_certificates = Some(vec!["ms-server-cert".into()]);
    let conditions = compute_conditions(&[], &o, &now());
    let c = get_condition(&conditions, CERTIFICATES_ISSUED).unwrap();
    assert_eq!(c.status, ConditionStatus::False);
    assert!(c.message.as_deref().unwrap().contains("ms-server-cert"));
}
