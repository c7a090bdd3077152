use super::*;
use api::conditions::ConditionStatus;
use operator_common::events::EventType;

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
        certificate_problem: None,
        provisioning_started: true,
        halted: false,
        sets: vec![SetReadiness {
            name: "ms".into(),
            replicas: 3,
            ready: 3,
        }],
        ag: Some(AgObservation {
            name: "ms".into(),
            primary: Some("ms-0".into()),
        }),
        health: Health {
            accepting: true,
            ready: true,
            message: String::new(),
        },
        deletion_blocked: None,
        refused: None,
        unfinished_update: None,
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

#[test]
fn a_missing_issuer_is_a_warning_once_per_change() {
    let mut o = obs();
    o.missing_certificates = Some(vec!["ms-server-cert".into()]);
    let waiting = compute_conditions(&[], &o, &now());
    o.certificate_problem = Some(Blocker {
        reason: "IssuerNotFound".into(),
        message: "spec.tls.issuerRef names Issuer \"ca\" in namespace demo, which does not exist"
            .into(),
    });
    let missing = compute_conditions(&waiting, &o, &now());
    let c = get_condition(&missing, CERTIFICATES_ISSUED).unwrap();
    assert_eq!(
        (c.status, c.reason.as_deref()),
        (ConditionStatus::False, Some("IssuerNotFound"))
    );
    assert_eq!(
        c.message.as_deref(),
        Some(
            "the secret ms-server-cert cannot be issued: spec.tls.issuerRef names Issuer \"ca\" in namespace demo, which does not exist"
        )
    );
    let events = transition_events(DbKind::MSSQLServer, &waiting, &missing);
    let warning = events
        .iter()
        .find(|e| e.reason == "IssuerNotFound")
        .expect("a Warning Event");
    assert_eq!(warning.type_, EventType::Warning);
    // Unchanged: no second Event.
    let again = compute_conditions(&missing, &o, &later());
    assert!(
        transition_events(DbKind::MSSQLServer, &missing, &again)
            .iter()
            .all(|e| e.reason != "IssuerNotFound")
    );
    // Fixed: back to waiting (a Normal Event only on becoming False, which it already was).
    o.certificate_problem = None;
    let fixed = compute_conditions(&again, &o, &later());
    assert_eq!(
        get_condition(&fixed, CERTIFICATES_ISSUED)
            .unwrap()
            .reason
            .as_deref(),
        Some(REASON_WAITING_FOR_CERTIFICATE)
    );
    assert!(
        transition_events(DbKind::MSSQLServer, &again, &fixed)
            .iter()
            .all(|e| e.type_ != EventType::Warning)
    );
}

fn later() -> Time {
    Time(jiff::Timestamp::from_second(1_800_000_060).unwrap())
}

fn paused(status: ConditionStatus) -> Condition {
    Condition::new("Paused", status, now())
        .with_reason("Paused")
        .with_message("MSSQLServerOpsRequest up is in process")
}

/// The condition a step sets (panics on Remove/Keep).
fn set(change: Change) -> Condition {
    match change {
        Change::Set(c) => c,
        other => panic!("expected Set, got {other:?}"),
    }
}

#[test]
fn acknowledge_pause_turns_only_a_request_true() {
    let table = [
        (None, None),
        (Some(ConditionStatus::Unknown), Some(ConditionStatus::True)),
        (Some(ConditionStatus::True), None),
        (Some(ConditionStatus::False), None),
    ];
    for (current, expected) in table {
        let conditions: Vec<Condition> = current.into_iter().map(paused).collect();
        let change = acknowledge_pause(&conditions, &later());
        match expected {
            None => assert_eq!(change, Change::Keep, "{current:?}"),
            Some(status) => {
                let ack = set(change);
                assert_eq!(ack.status, status);
                assert_eq!(ack.last_transition_time, later(), "stamped now");
                assert_eq!(ack.reason.as_deref(), Some("Paused"));
                assert_eq!(
                    ack.message.as_deref(),
                    Some("MSSQLServerOpsRequest up is in process")
                );
            }
        }
    }
}

#[test]
fn deletion_blocked_is_set_or_removed() {
    assert_eq!(
        deletion_blocked(None, 1, &now()),
        Change::Remove(DELETION_BLOCKED)
    );
    let c = set(deletion_blocked(Some("refused"), 4, &now()));
    assert_eq!(
        (
            c.type_.as_str(),
            c.status,
            c.reason.as_deref(),
            c.message.as_deref()
        ),
        (
            DELETION_BLOCKED,
            ConditionStatus::True,
            Some(REASON_DO_NOT_TERMINATE),
            Some("refused")
        )
    );
    assert_eq!(c.observed_generation, Some(4));
}

#[test]
fn deletion_conditions_change_only_pause_and_deletion_blocked() {
    let ready = compute_conditions(&[], &obs(), &now());
    let mut requested = ready.clone();
    requested.push(paused(ConditionStatus::Unknown));
    let refused = deletion_conditions(&requested, Some("refused".into()), 1, &later());
    // Readiness untouched, Paused acknowledged, DeletionBlocked appended.
    assert_eq!(refused[..ready.len()], ready[..]);
    assert_eq!(
        types(&refused[ready.len()..]),
        [
            ("Paused", ConditionStatus::True),
            (DELETION_BLOCKED, ConditionStatus::True)
        ]
    );
    // No longer refused: DeletionBlocked goes, the acknowledgement stays.
    let allowed = deletion_conditions(&refused, None, 1, &later());
    assert_eq!(allowed, refused[..refused.len() - 1]);
}

#[test]
fn provisioning_blocked_carries_the_blockers_reason() {
    assert_eq!(
        provisioning_blocked(None, 1, &now()),
        Change::Remove(PROVISIONING_BLOCKED)
    );
    let blocker = Blocker {
        reason: "InvalidSpec".into(),
        message: "spec.replicas must be positive".into(),
    };
    let c = set(provisioning_blocked(Some(&blocker), 1, &now()));
    assert_eq!(c.type_, PROVISIONING_BLOCKED);
    assert_eq!(c.status, ConditionStatus::True);
    assert_eq!(c.reason.as_deref(), Some("InvalidSpec"));
    assert_eq!(c.message.as_deref(), Some("spec.replicas must be positive"));
}

#[test]
fn certificates_issued_by_missing_secrets() {
    /// The condition's status, reason and message start, or none.
    type Expected = Option<(ConditionStatus, &'static str, &'static str)>;
    let table: [(Option<Vec<String>>, Expected); 4] = [
        (None, None),
        (
            Some(vec![]),
            Some((
                ConditionStatus::True,
                REASON_CERTIFICATES_ISSUED,
                "All TLS certificates are issued.",
            )),
        ),
        (
            Some(vec!["ms-server-cert".to_owned()]),
            Some((
                ConditionStatus::False,
                REASON_WAITING_FOR_CERTIFICATE,
                "waiting for cert-manager to issue the secret ms-server-cert (Certificate of the same name)",
            )),
        ),
        (
            Some(vec!["a-cert".to_owned(), "b-cert".to_owned()]),
            Some((
                ConditionStatus::False,
                REASON_WAITING_FOR_CERTIFICATE,
                "waiting for cert-manager to issue the secret a-cert, b-cert (Certificate of the same name)",
            )),
        ),
    ];
    for (missing, expected) in table {
        let change = certificates_issued(missing.as_deref(), None, 1, &now());
        match expected {
            None => assert_eq!(change, Change::Remove(CERTIFICATES_ISSUED)),
            Some((status, reason, message)) => {
                let c = set(change);
                assert_eq!(c.type_, CERTIFICATES_ISSUED);
                assert_eq!(
                    (c.status, c.reason.as_deref(), c.message.as_deref()),
                    (status, Some(reason), Some(message)),
                    "{missing:?}"
                );
            }
        }
    }
}

#[test]
fn provisioning_started_and_halted_follow_the_flags() {
    let mut o = obs();
    o.provisioning_started = false;
    assert_eq!(
        provisioning_started(&o, &now()),
        Change::Keep,
        "never removed"
    );
    let c = set(provisioning_started(&obs(), &now()));
    assert_eq!(
        c.message.as_deref(),
        Some("The KubeDB operator has started the provisioning of MSSQLServer: demo/ms")
    );
    assert_eq!(halted(&obs(), &now()), Change::Remove(db_types::HALTED));
    let mut o = obs();
    o.halted = true;
    let c = set(halted(&o, &now()));
    assert_eq!(
        (c.type_.as_str(), c.status),
        ("Halted", ConditionStatus::True)
    );
}

#[test]
fn halted_or_not_started_or_blocked_stops_before_readiness() {
    // From Ready, with everything else now failing: only the steps before the early return run.
    let ready = compute_conditions(&[], &obs(), &now());
    let failing = |o: &mut Observation| {
        o.sets[0].ready = 0;
        o.health = Health::default();
    };
    type Tweak = Box<dyn Fn(&mut Observation)>;
    let table: Vec<(Tweak, &str)> = vec![
        (Box::new(|o| o.halted = true), "halted"),
        (Box::new(|o| o.provisioning_started = false), "not started"),
        (
            Box::new(|o| {
                o.blocker = Some(Blocker {
                    reason: "VersionDeprecated".into(),
                    message: "deprecated".into(),
                })
            }),
            "blocked",
        ),
    ];
    for (change, case) in table {
        let mut o = obs();
        failing(&mut o);
        change(&mut o);
        let conditions = compute_conditions(&ready, &o, &later());
        for type_ in [
            db_types::REPLICA_READY,
            db_types::ACCEPTING_CONNECTION,
            db_types::READY,
        ] {
            assert_eq!(
                get_condition(&conditions, type_),
                get_condition(&ready, type_),
                "{case}: {type_} untouched"
            );
        }
    }
}

#[test]
fn replica_ready_names_the_lagging_sets() {
    let set_of = |name: &str, replicas, ready| SetReadiness {
        name: name.into(),
        replicas,
        ready,
    };
    let table = [
        (vec![], ConditionStatus::False, "no StatefulSet exists yet"),
        (
            vec![set_of("ms", 3, 3), set_of("ms-arb", 1, 1)],
            ConditionStatus::True,
            "All desired replicas are ready.",
        ),
        (
            vec![set_of("ms", 3, 1), set_of("ms-arb", 1, 0)],
            ConditionStatus::False,
            "StatefulSet ms has 1/3 ready replicas; StatefulSet ms-arb has 0/1 ready replicas",
        ),
    ];
    for (sets, status, message) in table {
        let c = set(replica_ready(&sets, 1, &now()));
        assert_eq!(c.type_, db_types::REPLICA_READY);
        assert_eq!((c.status, c.message.as_deref()), (status, Some(message)));
    }
}

#[test]
fn ag_primary_ready_is_latched_and_only_for_an_ag() {
    let ag = |primary: Option<&str>| AgObservation {
        name: "msag".into(),
        primary: primary.map(Into::into),
    };
    let existing = |status| {
        vec![Condition::new(
            db_types::AG_PRIMARY_REPLICA_READY,
            status,
            now(),
        )]
    };
    let table: [(Vec<Condition>, Option<AgObservation>, bool); 6] = [
        (vec![], None, false),
        (vec![], Some(ag(None)), false),
        (vec![], Some(ag(Some("ms-1"))), true),
        (
            existing(ConditionStatus::True),
            Some(ag(Some("ms-1"))),
            false,
        ),
        (
            existing(ConditionStatus::False),
            Some(ag(Some("ms-1"))),
            true,
        ),
        // Latched: losing the primary does not turn it back.
        (existing(ConditionStatus::True), Some(ag(None)), false),
    ];
    for (i, (conditions, ag, sets)) in table.into_iter().enumerate() {
        let change = ag_primary_ready(&conditions, ag.as_ref(), 1, &now());
        if !sets {
            assert_eq!(change, Change::Keep, "case {i}");
            continue;
        }
        let c = set(change);
        assert_eq!(c.status, ConditionStatus::True, "case {i}");
        assert_eq!(
            c.message.as_deref(),
            Some("Availability group msag is created on the primary replica")
        );
    }
    // Not an AG: no AGPrimaryReplicaReady at all.
    let mut o = obs();
    o.ag = None;
    let conditions = compute_conditions(&[], &o, &now());
    assert!(get_condition(&conditions, db_types::AG_PRIMARY_REPLICA_READY).is_none());
    assert_eq!(phase(&conditions), Some(DatabasePhase::Ready));
}

#[test]
fn accepting_connection_explains_a_refusal() {
    let c = set(accepting_connection(&obs(), &now()));
    assert_eq!(
        (c.status, c.message.as_deref()),
        (
            ConditionStatus::True,
            Some("MSSQLServer demo/ms is accepting connection requests")
        )
    );
    let mut o = obs();
    o.health = Health {
        accepting: false,
        ready: false,
        message: "login failed".into(),
    };
    let c = set(accepting_connection(&o, &now()));
    assert_eq!(
        (c.status, c.message.as_deref()),
        (
            ConditionStatus::False,
            Some("MSSQLServer demo/ms is not accepting connection requests: login failed")
        )
    );
}

#[test]
fn readiness_blames_the_replicas_first() {
    let sets = |ready| {
        vec![SetReadiness {
            name: "ms".into(),
            replicas: 3,
            ready,
        }]
    };
    let health = |accepting, ready| Health {
        accepting,
        ready,
        message: "health says no".into(),
    };
    let replicas = "StatefulSet ms has 2/3 ready replicas";
    let table = [
        (sets(3), health(true, true), Ok(())),
        (sets(3), health(true, false), Err("health says no")),
        (sets(3), health(false, true), Err("health says no")),
        (sets(2), health(true, true), Err(replicas)),
        (sets(2), health(false, false), Err(replicas)),
        (vec![], health(true, true), Err("no StatefulSet exists yet")),
    ];
    for (i, (sets, health, expected)) in table.into_iter().enumerate() {
        assert_eq!(
            readiness(&sets, &health),
            expected.map_err(str::to_owned),
            "case {i}"
        );
    }
    let c = set(ready(&Err("why".into()), &obs(), &now()));
    assert_eq!(
        (c.status, c.reason.as_deref(), c.message.as_deref()),
        (
            ConditionStatus::False,
            Some(db_reasons::READINESS_CHECK_FAILED),
            Some("MSSQLServer demo/ms fails the readiness checks: why")
        )
    );
    let c = set(ready(&Ok(()), &obs(), &now()));
    assert_eq!(
        (c.status, c.message.as_deref()),
        (
            ConditionStatus::True,
            Some("MSSQLServer demo/ms passes the readiness checks")
        )
    );
}

#[test]
fn provisioned_is_set_once_when_ready() {
    let existing = |status| vec![Condition::new(db_types::PROVISIONED, status, now())];
    let table = [
        (false, vec![], false),
        (true, vec![], true),
        (true, existing(ConditionStatus::True), false),
        (true, existing(ConditionStatus::False), true),
        // Latched: no longer ready keeps Provisioned True.
        (false, existing(ConditionStatus::True), false),
    ];
    for (i, (is_ready, conditions, sets)) in table.into_iter().enumerate() {
        let change = provisioned(is_ready, &conditions, &obs(), &now());
        if sets {
            let c = set(change);
            assert_eq!(
                (c.status, c.message.as_deref()),
                (
                    ConditionStatus::True,
                    Some("MSSQLServer demo/ms is successfully provisioned")
                ),
                "case {i}"
            );
        } else {
            assert_eq!(change, Change::Keep, "case {i}");
        }
    }
}

#[test]
fn refused_changes_and_unfinished_updates_are_shown_and_go_away() {
    let mut o = obs();
    o.refused = Some(Blocker {
        reason: "StorageChangeRefused".into(),
        message: "the data volumes ... VolumeExpansion".into(),
    });
    o.unfinished_update = Some(("2022-cu22".into(), "2025-cu0".into()));
    let conditions = compute_conditions(&[], &o, &now());
    let refused = get_condition(&conditions, db_types::SPEC_CHANGE_REFUSED).unwrap();
    assert_eq!(refused.reason.as_deref(), Some("StorageChangeRefused"));
    let update = get_condition(&conditions, db_types::VERSION_UPDATE_INCOMPLETE).unwrap();
    let message = update.message.as_deref().unwrap();
    assert!(
        message.contains("2025-cu0")
            && message.contains("2022-cu22")
            && message.contains("UpdateVersion ops request"),
        "{message}"
    );
    // The database keeps its phase from the pods: Ready.
    assert_eq!(phase(&conditions), Some(DatabasePhase::Ready));
    // The refusal is a Warning, once.
    let events = transition_events(DbKind::MSSQLServer, &[], &conditions);
    assert_eq!(
        events
            .iter()
            .filter(|e| e.type_ == EventType::Warning)
            .count(),
        1,
        "{events:?}"
    );
    assert!(transition_events(DbKind::MSSQLServer, &conditions, &conditions).is_empty());
    // Both go once the spec and the children agree again.
    let cleared = compute_conditions(&conditions, &obs(), &later());
    assert!(get_condition(&cleared, db_types::SPEC_CHANGE_REFUSED).is_none());
    assert!(get_condition(&cleared, db_types::VERSION_UPDATE_INCOMPLETE).is_none());
}
