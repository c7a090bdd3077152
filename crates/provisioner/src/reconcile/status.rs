//! The status step: conditions and phase from what this reconcile observed, applied and
//! checked (computed by the pure [`crate::status`]), written only when they change.

use api::conditions::db_types;
use api::names;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Api, Patch};
use kube::{Resource, ResourceExt};
use serde_json::json;

use super::Context;
use super::apply::Applied;
use super::io::manager_params;
use super::observe::Observed;
use crate::database::{Database, DbRef, conditions_of};
use crate::error::{Error, Result};
use crate::health_check::role_holder;
use crate::status::{self, AgObservation, Health, Observation, SetReadiness};

/// The StatefulSets the plan wants, with their replicas.
fn planned_sets(applied: &Applied) -> &[(String, i32)] {
    match &applied.changes {
        Ok(changes) => &changes.sets,
        Err(_) => &[],
    }
}

/// Whether provisioning has started: it had before, this reconcile created a StatefulSet, or a
/// planned StatefulSet exists.
pub fn provisioning_started<K: Database, V>(
    db: &K,
    observed: &Observed<V>,
    applied: &Applied,
) -> bool {
    api::conditions::is_condition_true(conditions_of(db), db_types::PROVISIONING_STARTED)
        || applied.created_sets
        || planned_sets(applied).iter().any(|(name, _)| {
            observed
                .children
                .sets
                .iter()
                .any(|s| s.meta().name.as_deref() == Some(name))
        })
}

/// Computes the conditions and writes them with the phase.
pub async fn update<K: Database, V>(
    ctx: &Context,
    db: &K,
    r: &DbRef,
    observed: &Observed<V>,
    applied: &Applied,
    started: bool,
    health: Health,
) -> Result<()> {
    let children = &observed.children;
    let sets: Vec<SetReadiness> = planned_sets(applied)
        .iter()
        .map(|(name, replicas)| {
            let live = children
                .sets
                .iter()
                .find(|s| s.meta().name.as_deref() == Some(name));
            SetReadiness {
                name: name.clone(),
                replicas: *replicas,
                ready: live
                    .and_then(|s| s.body()["status"]["readyReplicas"].as_i64())
                    .unwrap_or(0) as i32,
            }
        })
        .collect();
    let ag = db.availability_group().map(|name| AgObservation {
        name,
        primary: role_holder(&children.pods, &db.primary_sets(), names::ROLE_PRIMARY),
    });
    let planned = applied.changes.is_ok();
    let observation = Observation {
        kind: r.kind,
        key: r.key(),
        generation: db.meta().generation.unwrap_or(0),
        blocker: applied.changes.as_ref().err().cloned(),
        missing_certificates: applied.missing_certificates.clone(),
        certificate_problem: applied.certificate_problem.clone(),
        provisioning_started: started && planned,
        halted: db.halted() && planned,
        sets,
        ag,
        health,
        deletion_blocked: None,
        refused: applied.refused.clone(),
        unfinished_update: observed
            .unfinished_update
            .clone()
            .filter(|_| !observed.paused && planned)
            .map(|target| (db.version_name().to_owned(), target)),
    };
    let now = Time(jiff::Timestamp::now());
    let conditions = status::compute_conditions(conditions_of(db), &observation, &now);
    write_status(ctx, db, r, conditions, observation.generation).await
}

/// Writes `status` when it differs (merge patch of `/status` with a resourceVersion precondition,
/// so a concurrent `Paused` request is never lost) and publishes transition Events.
pub async fn write_status<K: Database>(
    ctx: &Context,
    db: &K,
    r: &DbRef,
    conditions: Vec<api::Condition>,
    generation: i64,
) -> Result<()> {
    let current = conditions_of(db);
    let phase = status::phase(&conditions);
    let existing = db.db_status();
    let unchanged = existing.is_some_and(|s| {
        s.conditions() == conditions.as_slice()
            && s.phase == phase
            && s.observed_generation == Some(generation)
    });
    ctx.metrics
        .set_phase(r.kind, r.key(), phase.map(|p| p.as_str()));
    if unchanged {
        return Ok(());
    }
    let patch = json!({
        "metadata": {"resourceVersion": db.resource_version()},
        "status": {
            "phase": phase,
            "observedGeneration": generation,
            "conditions": conditions,
        },
    });
    let api: Api<K> = Api::namespaced(ctx.client.clone(), &r.namespace);
    api.patch_status(&r.name, &manager_params(), &Patch::Merge(&patch))
        .await
        .map_err(|e| Error::kube(format!("writing the status of {}", r.key()), e))?;
    ctx.metrics.write(r.kind.metric_label(), "patch-status");
    for event in status::transition_events(r.kind, current, &conditions) {
        ctx.events.publish(db, event).await;
    }
    Ok(())
}
