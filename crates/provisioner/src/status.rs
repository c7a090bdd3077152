//! Pure status computation: from what the reconciler observed to the database's conditions and
//! phase, and the Events that mark transitions.

use api::common::DatabasePhase;
use api::conditions::{
    Condition, ConditionStatus, db_reasons, db_types, get_condition, remove_condition,
    set_condition,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use operator_common::events::EventSpec;

use crate::database::DbKind;

/// Condition present (True) while the provisioner cannot create the database's children
/// (unknown or deprecated version, invalid spec, missing user secret); its reason says why.
pub const PROVISIONING_BLOCKED: &str = "ProvisioningBlocked";
/// Condition saying whether the TLS certificates the pods mount have been issued.
pub const CERTIFICATES_ISSUED: &str = "CertificatesIssued";
/// Condition present (True) while a deletion is refused by `deletionPolicy: DoNotTerminate`.
pub const DELETION_BLOCKED: &str = "DeletionBlocked";
/// Reason of [`DELETION_BLOCKED`].
pub const REASON_DO_NOT_TERMINATE: &str = "DeletionPolicyDoNotTerminate";
/// Reason of [`CERTIFICATES_ISSUED`] False.
pub const REASON_WAITING_FOR_CERTIFICATE: &str = "WaitingForCertificate";
/// Reason of [`CERTIFICATES_ISSUED`] True.
pub const REASON_CERTIFICATES_ISSUED: &str = "CertificatesIssued";

/// Why provisioning cannot proceed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Blocker {
    /// CamelCase reason (`VersionNotFound`, `VersionDeprecated`, `InvalidSpec`, ...).
    pub reason: String,
    /// What is wrong and how to fix it.
    pub message: String,
}

/// Readiness of one StatefulSet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetReadiness {
    /// StatefulSet name.
    pub name: String,
    /// `spec.replicas`.
    pub replicas: i32,
    /// `status.readyReplicas` (0 when missing).
    pub ready: i32,
}

/// Result of the health check.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Health {
    /// The database accepts connections.
    pub accepting: bool,
    /// Read (and write) checks pass.
    pub ready: bool,
    /// Explanation when not healthy.
    pub message: String,
}

/// An MSSQL availability group as observed by the reconciler.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgObservation {
    /// AG name (for the `AGPrimaryReplicaReady` message).
    pub name: String,
    /// The pod carrying `kubedb.com/role=primary`, if any.
    pub primary: Option<String>,
}

/// Everything the status depends on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observation {
    /// Kind of the database.
    pub kind: DbKind,
    /// `namespace/name`.
    pub key: String,
    /// `metadata.generation`.
    pub generation: i64,
    /// Why provisioning is blocked, if it is.
    pub blocker: Option<Blocker>,
    /// Certificate secrets still missing (empty when TLS is off or issued); `None` without TLS.
    pub missing_certificates: Option<Vec<String>>,
    /// Why the missing certificates cannot come (an issuer absent or not Ready).
    pub certificate_problem: Option<Blocker>,
    /// Children have been created (the database's StatefulSets exist).
    pub provisioning_started: bool,
    /// `spec.halted`.
    pub halted: bool,
    /// Readiness of every desired StatefulSet.
    pub sets: Vec<SetReadiness>,
    /// The availability group, for a database that tracks an AG primary
    /// ([`crate::database::Database::availability_group`]); `None` for every other database.
    pub ag: Option<AgObservation>,
    /// Health check result.
    pub health: Health,
    /// The deletion-refused message, when the object is being deleted under DoNotTerminate.
    pub deletion_blocked: Option<String>,
    /// A spec change refused because it would cut the database off its data (or change its
    /// version outside an ops request); the children were left as they are.
    pub refused: Option<Blocker>,
    /// `(spec.version, the Version an unfinished UpdateVersion moved the StatefulSets to)`,
    /// when they differ and no request is running (the database is not paused).
    pub unfinished_update: Option<(String, String)>,
}

/// What one step of the status computation does to one condition.
#[derive(Debug, Clone, PartialEq)]
enum Change {
    /// Set this condition ([`set_condition`]: an unchanged one keeps its transition time).
    Set(Condition),
    /// Remove the condition of this type.
    Remove(&'static str),
    /// Leave the conditions as they are.
    Keep,
}

fn apply(conditions: &mut Vec<Condition>, change: Change) {
    match change {
        Change::Set(condition) => {
            set_condition(conditions, condition);
        }
        Change::Remove(type_) => {
            remove_condition(conditions, type_);
        }
        Change::Keep => {}
    }
}

fn cond(
    type_: &str,
    status: ConditionStatus,
    reason: &str,
    message: String,
    generation: i64,
    now: &Time,
) -> Condition {
    Condition::new(type_, status, now.clone())
        .with_reason(reason)
        .with_message(message)
        .with_generation(generation)
}

/// The readiness message of a set of StatefulSets.
pub fn replica_message(sets: &[SetReadiness]) -> (bool, String) {
    let not_ready: Vec<String> = sets
        .iter()
        .filter(|s| s.ready < s.replicas)
        .map(|s| {
            format!(
                "StatefulSet {} has {}/{} ready replicas",
                s.name, s.ready, s.replicas
            )
        })
        .collect();
    if sets.is_empty() {
        return (false, "no StatefulSet exists yet".to_owned());
    }
    if not_ready.is_empty() {
        (true, "All desired replicas are ready.".to_owned())
    } else {
        (false, not_ready.join("; "))
    }
}

/// Computes the new conditions from the current ones and the observation (KubeDB's set
/// semantics: unchanged conditions keep their transition time).
pub fn compute_conditions(current: &[Condition], obs: &Observation, now: &Time) -> Vec<Condition> {
    let mut conditions = current.to_vec();
    let g = obs.generation;
    apply(&mut conditions, acknowledge_pause(current, now));
    apply(
        &mut conditions,
        deletion_blocked(obs.deletion_blocked.as_deref(), g, now),
    );
    apply(
        &mut conditions,
        provisioning_blocked(obs.blocker.as_ref(), g, now),
    );
    apply(
        &mut conditions,
        spec_change_refused(obs.refused.as_ref(), g, now),
    );
    apply(
        &mut conditions,
        version_update_incomplete(obs.unfinished_update.as_ref(), g, now),
    );
    apply(
        &mut conditions,
        certificates_issued(
            obs.missing_certificates.as_deref(),
            obs.certificate_problem.as_ref(),
            g,
            now,
        ),
    );
    apply(&mut conditions, provisioning_started(obs, now));
    apply(&mut conditions, halted(obs, now));
    // Halted, not yet started or blocked: readiness is left as it was.
    if obs.halted || !obs.provisioning_started || obs.blocker.is_some() {
        return conditions;
    }
    apply(&mut conditions, replica_ready(&obs.sets, g, now));
    let change = ag_primary_ready(&conditions, obs.ag.as_ref(), g, now);
    apply(&mut conditions, change);
    apply(&mut conditions, accepting_connection(obs, now));
    let readiness = readiness(&obs.sets, &obs.health);
    apply(&mut conditions, ready(&readiness, obs, now));
    let change = provisioned(readiness.is_ok(), &conditions, obs, now);
    apply(&mut conditions, change);
    conditions
}

/// Conditions of a database whose deletion waits (DoNotTerminate, or paused): only the Paused
/// acknowledgement and [`DELETION_BLOCKED`] change; readiness stays as it was.
pub fn deletion_conditions(
    current: &[Condition],
    blocked: Option<String>,
    generation: i64,
    now: &Time,
) -> Vec<Condition> {
    let mut conditions = current.to_vec();
    apply(&mut conditions, acknowledge_pause(current, now));
    apply(
        &mut conditions,
        deletion_blocked(blocked.as_deref(), generation, now),
    );
    conditions
}

/// The Paused handshake: a requested pause (`Paused` Unknown) is acknowledged by turning it
/// True, stamped `now`, with its reason and message kept. The provisioner never removes it.
fn acknowledge_pause(current: &[Condition], now: &Time) -> Change {
    match get_condition(current, db_types::PAUSED) {
        Some(paused) if paused.status == ConditionStatus::Unknown => {
            let mut ack = paused.clone();
            ack.status = ConditionStatus::True;
            ack.last_transition_time = now.clone();
            Change::Set(ack)
        }
        _ => Change::Keep,
    }
}

/// [`DELETION_BLOCKED`] True with the refusal message while a deletion is refused; absent
/// otherwise.
fn deletion_blocked(message: Option<&str>, generation: i64, now: &Time) -> Change {
    match message {
        Some(message) => Change::Set(cond(
            DELETION_BLOCKED,
            ConditionStatus::True,
            REASON_DO_NOT_TERMINATE,
            message.to_owned(),
            generation,
            now,
        )),
        None => Change::Remove(DELETION_BLOCKED),
    }
}

/// [`db_types::VERSION_UPDATE_INCOMPLETE`] True naming both versions and what to do; absent once
/// `spec.version` names the version the StatefulSets carry.
fn version_update_incomplete(
    update: Option<&(String, String)>,
    generation: i64,
    now: &Time,
) -> Change {
    match update {
        Some((current, target)) => Change::Set(cond(
            db_types::VERSION_UPDATE_INCOMPLETE,
            ConditionStatus::True,
            "UpdateVersionNotFinished",
            format!(
                "an UpdateVersion moved the StatefulSets to version {target} and did not finish: pods restarted since run {target}, the others still {current} (spec.version), and each pod moves to {target} when it restarts. Create an UpdateVersion ops request to {target} to finish it"
            ),
            generation,
            now,
        )),
        None => Change::Remove(db_types::VERSION_UPDATE_INCOMPLETE),
    }
}

/// [`db_types::SPEC_CHANGE_REFUSED`] True with what was refused and what to do instead; absent
/// when the spec and the children agree again.
fn spec_change_refused(refused: Option<&Blocker>, generation: i64, now: &Time) -> Change {
    match refused {
        Some(r) => Change::Set(cond(
            db_types::SPEC_CHANGE_REFUSED,
            ConditionStatus::True,
            &r.reason,
            r.message.clone(),
            generation,
            now,
        )),
        None => Change::Remove(db_types::SPEC_CHANGE_REFUSED),
    }
}

/// [`PROVISIONING_BLOCKED`] True with the blocker's reason and message; absent without one.
fn provisioning_blocked(blocker: Option<&Blocker>, generation: i64, now: &Time) -> Change {
    match blocker {
        Some(b) => Change::Set(cond(
            PROVISIONING_BLOCKED,
            ConditionStatus::True,
            &b.reason,
            b.message.clone(),
            generation,
            now,
        )),
        None => Change::Remove(PROVISIONING_BLOCKED),
    }
}

/// [`CERTIFICATES_ISSUED`]: absent without TLS, True when nothing is missing, False naming the
/// missing secrets otherwise, with the issuer's problem as reason and message when there is one.
fn certificates_issued(
    missing: Option<&[String]>,
    problem: Option<&Blocker>,
    generation: i64,
    now: &Time,
) -> Change {
    match missing {
        None => Change::Remove(CERTIFICATES_ISSUED),
        Some([]) => Change::Set(cond(
            CERTIFICATES_ISSUED,
            ConditionStatus::True,
            REASON_CERTIFICATES_ISSUED,
            "All TLS certificates are issued.".into(),
            generation,
            now,
        )),
        Some(missing) if let Some(problem) = problem => Change::Set(cond(
            CERTIFICATES_ISSUED,
            ConditionStatus::False,
            &problem.reason,
            format!(
                "the secret {} cannot be issued: {}",
                missing.join(", "),
                problem.message
            ),
            generation,
            now,
        )),
        Some(missing) => Change::Set(cond(
            CERTIFICATES_ISSUED,
            ConditionStatus::False,
            REASON_WAITING_FOR_CERTIFICATE,
            format!(
                "waiting for cert-manager to issue the secret {} (Certificate of the same name)",
                missing.join(", ")
            ),
            generation,
            now,
        )),
    }
}

/// `ProvisioningStarted` True once the children exist; never removed.
fn provisioning_started(obs: &Observation, now: &Time) -> Change {
    if !obs.provisioning_started {
        return Change::Keep;
    }
    Change::Set(cond(
        db_types::PROVISIONING_STARTED,
        ConditionStatus::True,
        db_reasons::DATABASE_PROVISIONING_STARTED_SUCCESSFULLY,
        format!(
            "The KubeDB operator has started the provisioning of {}: {}",
            obs.kind.as_str(),
            obs.key
        ),
        obs.generation,
        now,
    ))
}

/// `Halted` True while `spec.halted`; absent otherwise.
fn halted(obs: &Observation, now: &Time) -> Change {
    if !obs.halted {
        return Change::Remove(db_types::HALTED);
    }
    Change::Set(cond(
        db_types::HALTED,
        ConditionStatus::True,
        db_reasons::DATABASE_HALTED_SUCCESSFULLY,
        format!(
            "{} {} is halted: every child except the PVCs and secrets was removed",
            obs.kind.as_str(),
            obs.key
        ),
        obs.generation,
        now,
    ))
}

/// `ReplicaReady` from the StatefulSets' readiness ([`replica_message`]).
fn replica_ready(sets: &[SetReadiness], generation: i64, now: &Time) -> Change {
    let (all_ready, message) = replica_message(sets);
    Change::Set(if all_ready {
        cond(
            db_types::REPLICA_READY,
            ConditionStatus::True,
            db_reasons::ALL_REPLICAS_READY,
            message,
            generation,
            now,
        )
    } else {
        cond(
            db_types::REPLICA_READY,
            ConditionStatus::False,
            db_reasons::SOME_REPLICAS_NOT_READY,
            message,
            generation,
            now,
        )
    })
}

/// `AGPrimaryReplicaReady` True once an availability group has a primary; latched: never turned
/// back (nor rewritten) once True, and never set for a database that is not an AG.
fn ag_primary_ready(
    conditions: &[Condition],
    ag: Option<&AgObservation>,
    generation: i64,
    now: &Time,
) -> Change {
    let Some(ag) = ag else {
        return Change::Keep;
    };
    if ag.primary.is_none()
        || get_condition(conditions, db_types::AG_PRIMARY_REPLICA_READY)
            .is_some_and(Condition::is_true)
    {
        return Change::Keep;
    }
    Change::Set(cond(
        db_types::AG_PRIMARY_REPLICA_READY,
        ConditionStatus::True,
        db_reasons::AVAILABILITY_GROUP_CREATED_IN_PRIMARY,
        format!(
            "Availability group {} is created on the primary replica",
            ag.name
        ),
        generation,
        now,
    ))
}

/// `AcceptingConnection` from the health check.
fn accepting_connection(obs: &Observation, now: &Time) -> Change {
    let kind = obs.kind.as_str();
    Change::Set(if obs.health.accepting {
        cond(
            db_types::ACCEPTING_CONNECTION,
            ConditionStatus::True,
            db_reasons::DATABASE_ACCEPTING_CONNECTION_REQUEST,
            format!("{kind} {} is accepting connection requests", obs.key),
            obs.generation,
            now,
        )
    } else {
        cond(
            db_types::ACCEPTING_CONNECTION,
            ConditionStatus::False,
            db_reasons::DATABASE_NOT_ACCEPTING_CONNECTION_REQUEST,
            format!(
                "{kind} {} is not accepting connection requests: {}",
                obs.key, obs.health.message
            ),
            obs.generation,
            now,
        )
    })
}

/// Whether the database is ready: every replica ready, accepting connections and passing the
/// read (and write) checks; otherwise why not (the replicas first, then the health message).
fn readiness(sets: &[SetReadiness], health: &Health) -> Result<(), String> {
    let (replicas_ready, replica_msg) = replica_message(sets);
    if !replicas_ready {
        Err(replica_msg)
    } else if health.accepting && health.ready {
        Ok(())
    } else {
        Err(health.message.clone())
    }
}

/// `Ready` from [`readiness`].
fn ready(readiness: &Result<(), String>, obs: &Observation, now: &Time) -> Change {
    let kind = obs.kind.as_str();
    Change::Set(match readiness {
        Ok(()) => cond(
            db_types::READY,
            ConditionStatus::True,
            db_reasons::READINESS_CHECK_SUCCEEDED,
            format!("{kind} {} passes the readiness checks", obs.key),
            obs.generation,
            now,
        ),
        Err(why) => cond(
            db_types::READY,
            ConditionStatus::False,
            db_reasons::READINESS_CHECK_FAILED,
            format!("{kind} {} fails the readiness checks: {why}", obs.key),
            obs.generation,
            now,
        ),
    })
}

/// `Provisioned` True the first time the database is ready; latched: never turned back (nor
/// rewritten) once True.
fn provisioned(ready: bool, conditions: &[Condition], obs: &Observation, now: &Time) -> Change {
    if !ready || get_condition(conditions, db_types::PROVISIONED).is_some_and(Condition::is_true) {
        return Change::Keep;
    }
    Change::Set(cond(
        db_types::PROVISIONED,
        ConditionStatus::True,
        db_reasons::DATABASE_SUCCESSFULLY_PROVISIONED,
        format!(
            "{} {} is successfully provisioned",
            obs.kind.as_str(),
            obs.key
        ),
        obs.generation,
        now,
    ))
}

/// The phase of `conditions` (the api crate's calculator).
pub fn phase(conditions: &[Condition]) -> Option<DatabasePhase> {
    api::phase::phase_from_conditions(conditions)
}

fn status_of(conditions: &[Condition], type_: &str) -> Option<ConditionStatus> {
    get_condition(conditions, type_).map(|c| c.status)
}

/// The Events that mark the transitions from `old` to `new` conditions.
pub fn transition_events(kind: DbKind, old: &[Condition], new: &[Condition]) -> Vec<EventSpec> {
    let mut events = Vec::new();
    let became = |type_: &str, status: ConditionStatus| {
        status_of(new, type_) == Some(status) && status_of(old, type_) != Some(status)
    };
    let message = |type_: &str| {
        get_condition(new, type_)
            .and_then(|c| c.message.clone())
            .unwrap_or_default()
    };
    if became(db_types::PAUSED, ConditionStatus::True) {
        events.push(EventSpec::normal("PauseAcknowledged", "Pause", format!("Paused acknowledged: no child of this {} is changed until the Paused condition is removed ({})", kind.as_str(), message(db_types::PAUSED))));
    }
    if let Some(blocked) = get_condition(new, PROVISIONING_BLOCKED) {
        let previous = get_condition(old, PROVISIONING_BLOCKED);
        if previous.map(|p| (&p.reason, &p.message)) != Some((&blocked.reason, &blocked.message)) {
            events.push(EventSpec::warning(
                blocked.reason.as_deref().unwrap_or("ProvisioningBlocked"),
                "Provision",
                blocked.message.clone().unwrap_or_default(),
            ));
        }
    }
    if let Some(refused) = get_condition(new, db_types::SPEC_CHANGE_REFUSED) {
        let previous = get_condition(old, db_types::SPEC_CHANGE_REFUSED);
        if previous.map(|p| (&p.reason, &p.message)) != Some((&refused.reason, &refused.message)) {
            events.push(EventSpec::warning(
                refused
                    .reason
                    .as_deref()
                    .unwrap_or(db_types::SPEC_CHANGE_REFUSED),
                "Provision",
                refused.message.clone().unwrap_or_default(),
            ));
        }
    }
    if became(DELETION_BLOCKED, ConditionStatus::True) {
        events.push(EventSpec::warning(
            REASON_DO_NOT_TERMINATE,
            "Delete",
            message(DELETION_BLOCKED),
        ));
    }
    let issued =
        get_condition(new, CERTIFICATES_ISSUED).filter(|c| c.status == ConditionStatus::False);
    match issued.and_then(|c| c.reason.as_deref()) {
        // A user's mistake (no such issuer, or one that cannot sign): a Warning, again when
        // what is wrong changes.
        Some(reason) if reason != REASON_WAITING_FOR_CERTIFICATE => {
            let before = get_condition(old, CERTIFICATES_ISSUED)
                .map(|c| (c.status, c.reason.as_deref(), c.message.as_deref()));
            let now_ = issued.map(|c| (c.status, c.reason.as_deref(), c.message.as_deref()));
            if before != now_ {
                events.push(EventSpec::warning(
                    reason,
                    "Provision",
                    message(CERTIFICATES_ISSUED),
                ));
            }
        }
        _ => {
            if became(CERTIFICATES_ISSUED, ConditionStatus::False) {
                events.push(EventSpec::normal(
                    REASON_WAITING_FOR_CERTIFICATE,
                    "Provision",
                    message(CERTIFICATES_ISSUED),
                ));
            }
        }
    }
    if became(db_types::PROVISIONING_STARTED, ConditionStatus::True) {
        events.push(EventSpec::normal(
            "ProvisioningStarted",
            "Provision",
            message(db_types::PROVISIONING_STARTED),
        ));
    }
    if became(db_types::HALTED, ConditionStatus::True) {
        events.push(EventSpec::normal(
            "Halted",
            "Halt",
            message(db_types::HALTED),
        ));
    }
    if status_of(old, db_types::HALTED) == Some(ConditionStatus::True)
        && status_of(new, db_types::HALTED).is_none()
    {
        events.push(EventSpec::normal(
            "Resumed",
            "Resume",
            format!(
                "{} resumed from halt: its children are recreated on the existing PVCs",
                kind.as_str()
            ),
        ));
    }
    if became(db_types::READY, ConditionStatus::True) {
        events.push(EventSpec::normal(
            "Ready",
            "HealthCheck",
            message(db_types::READY),
        ));
    }
    if status_of(old, db_types::READY) == Some(ConditionStatus::True)
        && status_of(new, db_types::READY) == Some(ConditionStatus::False)
    {
        events.push(EventSpec::warning(
            "NotReady",
            "HealthCheck",
            message(db_types::READY),
        ));
    }
    if became(db_types::PROVISIONED, ConditionStatus::True) {
        events.push(EventSpec::normal(
            "Provisioned",
            "Provision",
            message(db_types::PROVISIONED),
        ));
    }
    events
}

#[cfg(test)]
mod tests;
