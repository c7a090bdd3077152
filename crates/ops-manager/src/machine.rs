//! The UpdateVersion step machine: `next_action(request, world) -> Decision` (pure).
//!
//! Every step's progress lives in the request's status (conditions and the plan). Each call reads
//! the status and the observed world, and returns at most one status change and one effect. The
//! I/O layer writes the status change *before* performing the effect, so a crash between the two
//! leaves a record of what was about to happen; the records are written so that re-entry is
//! idempotent (an eviction names the pod UID it targets, a retry names the failing UID).
//!
//! Steps of a Progressing request, in order (each is skipped when its condition is True):
//! pause (`DatabasePauseSucceeded`) → plan (`status.updatePlan`) → `UpdatePetSets` → per pod
//! `GetPod--p`, (`SwitchoverPrimary--p` for an AG primary or a SingleStore master), `EvictPod--p`,
//! `CheckPodRunning--p`/`CheckPodReady--p` → `RestartPods` →
//! `UpdateDatabase` → resume → `Successful`.

use std::time::Duration;

use crate::events::EventSpec;
use api::DatabasePhase;
use api::conditions::{
    Condition, ConditionStatus, db_types, get_condition, is_condition_true, ops_types, pod_steps,
    set_condition,
};
use api::ops::{ApplyPolicy, OpsRequestPhase, OpsRequestStatus};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;

use crate::model::{DbView, KindSteps, PodView, RequestView, Target, World};
use crate::plan::{self, StsPatch};
use crate::queue::{self, QueueDecision};
use crate::records::{EvictRecord, RetryRecord};

/// Timing knobs of the machine.
#[derive(Debug, Clone)]
pub struct MachineConfig {
    /// Timeout of a request without `spec.timeout`.
    pub default_timeout: Duration,
    /// How often a waiting request looks again (watch events usually come first).
    pub poll: Duration,
    /// How long a planned switchover may take before the primary is evicted anyway.
    pub switchover_timeout: Duration,
}

impl Default for MachineConfig {
    fn default() -> Self {
        Self {
            default_timeout: Duration::from_secs(600),
            poll: Duration::from_secs(1),
            switchover_timeout: Duration::from_secs(30),
        }
    }
}

/// The one side effect of a decision, performed after the status change is written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    /// Nothing.
    None,
    /// Add the ops-manager's finalizer to the request.
    AddFinalizer,
    /// Remove the finalizer.
    RemoveFinalizer,
    /// Add `Paused=Unknown` to the database status (only if no `Paused` condition exists).
    Pause,
    /// Remove this request's `Paused` condition from the database status.
    Resume,
    /// Set container images on StatefulSet templates.
    PatchStatefulSets(Vec<StsPatch>),
    /// Evict this incarnation of a pod (Eviction API, UID precondition).
    Evict {
        /// Pod.
        pod: String,
        /// UID precondition.
        uid: String,
    },
    /// Delete this incarnation of a failing pod so it is recreated (a retry).
    DeletePod {
        /// Pod.
        pod: String,
        /// UID precondition.
        uid: String,
    },
    /// Set the database's `spec.version`.
    SetDatabaseVersion(String),
    /// Ask the database's agents to hand the primary role away from `pod` until `until` (the
    /// handover annotations of the primary Lease).
    RequestHandover {
        /// The pod about to restart.
        pod: String,
        /// When the request lapses.
        until: Timestamp,
    },
}

impl Effect {
    /// The step (condition type) an effect carries out, for messages; `None` for the effects
    /// that finish a request (resume, finalizer), which must not be cut short.
    pub fn step_name(&self) -> Option<String> {
        match self {
            Self::None | Self::AddFinalizer | Self::RemoveFinalizer | Self::Resume => None,
            Self::Pause => Some(ops_types::DATABASE_PAUSE_SUCCEEDED.to_owned()),
            Self::PatchStatefulSets(_) => Some(ops_types::UPDATE_PET_SETS.to_owned()),
            Self::Evict { pod, .. } | Self::DeletePod { pod, .. } => {
                Some(pod_steps::condition_type(pod_steps::EVICT_POD, pod))
            }
            Self::SetDatabaseVersion(_) => Some(ops_types::UPDATE_DATABASE.to_owned()),
            Self::RequestHandover { pod, .. } => Some(pod_steps::condition_type(
                pod_steps::SWITCHOVER_PRIMARY,
                pod,
            )),
        }
    }
}

/// A finished request, for metrics.
#[derive(Debug, Clone, PartialEq)]
pub struct Finished {
    /// Successful, Failed or Skipped.
    pub phase: OpsRequestPhase,
    /// Time since the request went Progressing (None if it never did).
    pub duration: Option<Duration>,
}

/// What to do now.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    /// The new status, written first (None = unchanged).
    pub status: Option<OpsRequestStatus>,
    /// The effect, performed after the status write.
    pub effect: Effect,
    /// Events to publish after the effect succeeded.
    pub events: Vec<EventSpec>,
    /// When to look again (None = only on a watch event).
    pub requeue: Option<Duration>,
    /// Set when this decision finishes the request.
    pub finished: Option<Finished>,
    /// A step finished: (step label, duration).
    pub step: Option<(&'static str, Duration)>,
    /// A pod was restarted onto the target images.
    pub pod_restarted: bool,
    /// Why the request waits (for logs).
    pub waiting: Option<String>,
}

const NOW: Duration = Duration::ZERO;

impl Decision {
    fn idle() -> Self {
        Self {
            status: None,
            effect: Effect::None,
            events: Vec::new(),
            requeue: None,
            finished: None,
            step: None,
            pod_restarted: false,
            waiting: None,
        }
    }

    fn effect(effect: Effect) -> Self {
        Self {
            effect,
            requeue: Some(NOW),
            ..Self::idle()
        }
    }

    fn status(status: OpsRequestStatus) -> Self {
        Self {
            status: Some(status),
            requeue: Some(NOW),
            ..Self::idle()
        }
    }

    fn wait(why: String, after: Duration) -> Self {
        Self {
            requeue: Some(after),
            waiting: Some(why),
            ..Self::idle()
        }
    }

    fn event(mut self, event: EventSpec) -> Self {
        self.events.push(event);
        self
    }

    fn with_effect(mut self, effect: Effect) -> Self {
        self.effect = effect;
        self
    }
}

/// The outcome of the Progressing steps before timeout handling.
enum Step {
    Act(Box<Decision>),
    Wait { step: String, why: String },
    Fail { step: String, message: String },
}

fn act(d: Decision) -> Step {
    Step::Act(Box::new(d))
}

fn wait(step: impl Into<String>, why: impl Into<String>) -> Step {
    Step::Wait {
        step: step.into(),
        why: why.into(),
    }
}

fn fail(step: impl Into<String>, message: impl Into<String>) -> Step {
    Step::Fail {
        step: step.into(),
        message: message.into(),
    }
}

/// How to take a pod down: a Ready pod through the Eviction API (PodDisruptionBudgets decide);
/// a pod that is not Ready serves nothing, so deleting it cannot lower availability, while a
/// budget could refuse to evict it and block a recovery (`apply: Always`).
fn disrupt(pod: &PodView) -> Effect {
    let (name, uid) = (pod.name.clone(), pod.uid.clone());
    if pod.healthy() {
        Effect::Evict { pod: name, uid }
    } else {
        Effect::DeletePod { pod: name, uid }
    }
}

fn jiff_duration(d: Duration) -> k8s_openapi::jiff::SignedDuration {
    k8s_openapi::jiff::SignedDuration::try_from(d).unwrap_or_default()
}

fn since(now: Timestamp, then: &Time) -> Duration {
    now.duration_since(then.0)
        .try_into()
        .unwrap_or(Duration::ZERO)
}

/// Decides the next action for `request` in `world`.
pub fn next_action(request: &RequestView, world: &World, cfg: &MachineConfig) -> Decision {
    let m = Machine {
        req: request,
        world,
        cfg,
    };
    if request.deleting {
        return m.clean_up();
    }
    match request.phase() {
        p if p.is_final() => m.clean_up(),
        OpsRequestPhase::Pending => m.pending(),
        OpsRequestPhase::Progressing => m.progressing(),
        // Approval phases are not used by this ops-manager.
        _ => Decision::idle(),
    }
}

struct Machine<'a> {
    req: &'a RequestView,
    world: &'a World,
    cfg: &'a MachineConfig,
}

impl Machine<'_> {
    fn now(&self) -> Time {
        Time(self.world.now)
    }

    fn cond(
        &self,
        type_: &str,
        status: ConditionStatus,
        reason: Option<&str>,
        message: String,
    ) -> Condition {
        let mut c = Condition::new(type_, status, self.now())
            .with_message(message)
            .with_generation(self.req.generation);
        c.reason = reason.map(str::to_owned);
        c
    }

    /// The current status with `conditions` set.
    fn with(&self, conditions: impl IntoIterator<Item = Condition>) -> OpsRequestStatus {
        let mut status = self.req.status.clone();
        for c in conditions {
            set_condition(status.conditions_mut(), c);
        }
        status
    }

    fn conds(&self) -> &[Condition] {
        self.req.status.conditions()
    }

    /// The pod a per-pod step event is also about (`related`), so that each pod's steps are
    /// their own events rather than one series per step type.
    fn pod_ref(&self, pod: &str) -> k8s_openapi::api::core::v1::ObjectReference {
        k8s_openapi::api::core::v1::ObjectReference {
            api_version: Some("v1".to_owned()),
            kind: Some("Pod".to_owned()),
            name: Some(pod.to_owned()),
            namespace: Some(self.req.namespace.clone()),
            ..Default::default()
        }
    }

    fn db_ref(&self) -> String {
        format!("{}/{}", self.req.namespace, self.req.database)
    }

    fn paused_by_us(&self) -> bool {
        let ours = self.req.pause_message();
        self.world.db.as_ref().is_some_and(|db| {
            get_condition(&db.conditions, db_types::PAUSED)
                .is_some_and(|c| c.message.as_deref() == Some(ours.as_str()))
        })
    }

    fn progressing_since(&self) -> Option<&Time> {
        get_condition(self.conds(), self.req.op_type.as_str()).map(|c| &c.last_transition_time)
    }

    fn timeout(&self) -> Duration {
        self.req
            .timeout
            .clone()
            .ok()
            .flatten()
            .unwrap_or(self.cfg.default_timeout)
    }

    fn resume_events(&self) -> [EventSpec; 2] {
        let kind = self.req.kind;
        [
            EventSpec::normal(
                "Starting",
                "ResumeDatabase",
                format!("Resuming {} database: {}", kind.as_str(), self.db_ref()),
            ),
            EventSpec::normal(
                "Successful",
                "ResumeDatabase",
                format!(
                    "Successfully resumed {} database: {} for {}: {}",
                    kind.as_str(),
                    self.db_ref(),
                    kind.ops_kind(),
                    self.req.name
                ),
            ),
        ]
    }

    /// Final or deleted: make sure the database is resumed, then drop the finalizer.
    fn clean_up(&self) -> Decision {
        if !self.req.has_finalizer {
            return Decision::idle();
        }
        if self.paused_by_us() {
            let [a, b] = self.resume_events();
            return Decision::effect(Effect::Resume).event(a).event(b);
        }
        Decision::effect(Effect::RemoveFinalizer)
    }

    fn finish(&self, mut status: OpsRequestStatus, phase: OpsRequestPhase) -> Decision {
        status.phase = Some(phase);
        status.observed_generation = Some(self.req.generation);
        let duration = self.progressing_since().map(|t| since(self.world.now, t));
        Decision {
            finished: Some(Finished { phase, duration }),
            ..Decision::status(status)
        }
    }

    fn failed(&self, step: &str, message: String) -> Decision {
        let status = self.with([self.cond(
            step,
            ConditionStatus::False,
            Some(ops_types::FAILED),
            message.clone(),
        )]);
        self.finish(status, OpsRequestPhase::Failed)
            .event(EventSpec::warning(ops_types::FAILED, step, message))
    }

    fn pending(&self) -> Decision {
        let req = self.req;
        if req.status.phase.is_none() {
            let mut status = req.status.clone();
            status.phase = Some(OpsRequestPhase::Pending);
            status.observed_generation = Some(req.generation);
            return Decision::status(status);
        }
        if let Err(rejection) = &self.world.validation {
            let status = self.with([self.cond(
                req.op_type.as_str(),
                ConditionStatus::False,
                Some(rejection.reason),
                rejection.message.clone(),
            )]);
            return self
                .finish(status, OpsRequestPhase::Failed)
                .event(EventSpec::warning(
                    rejection.reason,
                    "Validate",
                    rejection.message.clone(),
                ));
        }
        match queue::decide(req, &self.world.peers) {
            QueueDecision::Skip { newer, at } => {
                let message = queue::skipped_message(
                    &req.namespace,
                    &newer,
                    req.kind.ops_kind(),
                    req.op_type,
                    at,
                );
                let status = self.with([self.cond(
                    ops_types::SKIPPED,
                    ConditionStatus::True,
                    Some(ops_types::SKIPPED),
                    message.clone(),
                )]);
                return self
                    .finish(status, OpsRequestPhase::Skipped)
                    .event(EventSpec::normal(ops_types::SKIPPED, "Queue", message));
            }
            QueueDecision::Wait { why, .. } => return Decision::wait(why, self.cfg.poll),
            QueueDecision::Run => {}
        }
        let Some(db) = self.world.db.as_ref() else {
            // Validation requires the database; an empty world means it was not observed yet.
            return Decision::wait("the database was not observed".to_owned(), self.cfg.poll);
        };
        let ready = db.phase == Some(DatabasePhase::Ready);
        let mut extra = Vec::new();
        if req.apply == ApplyPolicy::IfReady {
            let phase = db.phase.map_or("unknown".to_owned(), |p| p.to_string());
            if !ready {
                let waited = since(self.world.now, &Time(req.created));
                let why = format!(
                    "waiting for {} {} to be Ready before starting (phase {phase}; apply: IfReady)",
                    req.kind.as_str(),
                    self.db_ref()
                );
                if waited >= self.timeout() {
                    return self.failed(
                        ops_types::DATABASE_READY,
                        format!("timed out after {:?} {why}", self.timeout()),
                    );
                }
                let status = self.with([self.cond(
                    ops_types::DATABASE_READY,
                    ConditionStatus::False,
                    Some("DatabaseNotReady"),
                    why.clone(),
                )]);
                let mut d = Decision::wait(why, self.cfg.poll.min(self.timeout() - waited));
                if status != req.status {
                    d.status = Some(status);
                }
                return d;
            }
        }
        if get_condition(self.conds(), ops_types::DATABASE_READY).is_some() && ready {
            extra.push(self.cond(
                ops_types::DATABASE_READY,
                ConditionStatus::True,
                Some(ops_types::DATABASE_READY),
                format!("{} {} is Ready", req.kind.as_str(), self.db_ref()),
            ));
        }
        if !req.has_finalizer {
            return Decision::effect(Effect::AddFinalizer);
        }
        extra.push(self.cond(
            req.op_type.as_str(),
            ConditionStatus::True,
            Some(req.op_type.as_str()),
            format!(
                "{} ops-request has started to update version",
                req.kind.as_str()
            ),
        ));
        let mut status = self.with(extra);
        status.phase = Some(OpsRequestPhase::Progressing);
        status.observed_generation = Some(req.generation);
        Decision::status(status).event(EventSpec::normal(
            "Starting",
            "Start",
            format!(
                "Start processing for {}: {}/{}",
                req.kind.ops_kind(),
                req.namespace,
                req.name
            ),
        ))
    }

    fn progressing(&self) -> Decision {
        let timeout = self.timeout();
        let started = self
            .progressing_since()
            .cloned()
            .unwrap_or_else(|| self.now());
        let elapsed = since(self.world.now, &started);
        let point_of_no_return = is_condition_true(self.conds(), ops_types::UPDATE_DATABASE);
        match self.steps() {
            // An action that keeps failing (refused evictions, a forbidden patch) makes no
            // progress: the timeout holds for it as for a wait, and says what failed.
            Step::Act(d) if elapsed >= timeout && !point_of_no_return => {
                match (d.effect.step_name(), &self.world.action_error) {
                    (Some(step), Some(error)) => self.failed(
                        &step,
                        format!(
                            "timed out after {timeout:?} (spec.timeout) at step {step}: the action keeps failing: {error}"
                        ),
                    ),
                    _ => *d,
                }
            }
            Step::Act(d) => *d,
            Step::Fail { step, message } => self.failed(&step, message),
            Step::Wait { step, why } => {
                if elapsed >= timeout && !point_of_no_return {
                    self.failed(
                        &step,
                        format!("timed out after {timeout:?} (spec.timeout) at step {step}: {why}"),
                    )
                } else {
                    let left = timeout.saturating_sub(elapsed);
                    let after = if point_of_no_return {
                        self.cfg.poll
                    } else {
                        self.cfg.poll.min(left)
                    };
                    Decision::wait(format!("{step}: {why}"), after)
                }
            }
        }
    }

    fn steps(&self) -> Step {
        let req = self.req;
        let kind = req.kind;
        let Some(db) = self.world.db.as_ref() else {
            return fail(
                req.op_type.as_str(),
                format!(
                    "{} {} was deleted while the request was running",
                    kind.as_str(),
                    self.db_ref()
                ),
            );
        };
        // Pause.
        let paused = get_condition(&db.conditions, db_types::PAUSED);
        let ours = req.pause_message();
        let by_us = paused.is_some_and(|c| c.message.as_deref() == Some(ours.as_str()));
        if !is_condition_true(self.conds(), ops_types::DATABASE_PAUSE_SUCCEEDED) {
            return match paused {
                None => act(Decision::effect(Effect::Pause).event(EventSpec::normal(
                    "Starting",
                    "PauseDatabase",
                    format!("Pausing {} database: {}", kind.as_str(), self.db_ref()),
                ))),
                Some(c) if by_us && c.status == ConditionStatus::True => {
                    let status = self.with([self.cond(
                        ops_types::DATABASE_PAUSE_SUCCEEDED,
                        ConditionStatus::True,
                        Some(ops_types::DATABASE_PAUSE_SUCCEEDED),
                        "Successfully paused database".to_owned(),
                    )]);
                    let mut d = Decision::status(status).event(EventSpec::normal(
                        "Successful",
                        "PauseDatabase",
                        format!(
                            "Successfully paused {} database: {} for {}: {}",
                            kind.as_str(),
                            self.db_ref(),
                            kind.ops_kind(),
                            req.name
                        ),
                    ));
                    d.step = self
                        .progressing_since()
                        .map(|t| ("pause", since(self.world.now, t)));
                    act(d)
                }
                Some(_) if by_us => wait(
                    ops_types::DATABASE_PAUSE_SUCCEEDED,
                    format!(
                        "waiting for the provisioner to acknowledge the pause of {}",
                        self.db_ref()
                    ),
                ),
                Some(c) => wait(
                    ops_types::PAUSE_DATABASE,
                    format!(
                        "{} is already paused ({})",
                        self.db_ref(),
                        c.message.as_deref().unwrap_or("no message")
                    ),
                ),
            };
        }
        let db_updated = is_condition_true(self.conds(), ops_types::UPDATE_DATABASE);
        if !by_us && !db_updated {
            return fail(
                ops_types::DATABASE_PAUSE_SUCCEEDED,
                format!(
                    "the Paused condition of {} was removed while the request was running; stopped so that the provisioner and the ops-manager never change the StatefulSets together",
                    self.db_ref()
                ),
            );
        }
        let Some(images) = self.world.images.as_ref() else {
            return fail(
                req.op_type.as_str(),
                format!(
                    "the Version objects of {} (current {:?}) or the target {:?} no longer exist",
                    self.db_ref(),
                    db.version,
                    req.target_version.as_deref().unwrap_or_default()
                ),
            );
        };
        let standalone = plan::is_standalone_singlestore(kind, db.clustered);
        // Plan.
        let Some(update_plan) = req.status.update_plan.as_ref() else {
            if self.world.statefulsets.is_empty() {
                return fail(
                    ops_types::UPDATE_PET_SETS,
                    format!(
                        "no StatefulSets found for {} (is it halted?)",
                        self.db_ref()
                    ),
                );
            }
            let p = plan::make_plan(
                kind,
                db.clustered,
                &self.world.statefulsets,
                &self.world.pods,
                images,
            );
            let mut status = req.status.clone();
            let images_note = p
                .images
                .iter()
                .map(|c| format!("{}: {} -> {}", c.container, c.from, c.to))
                .collect::<Vec<_>>()
                .join(", ");
            let note = format!(
                "pods in restart order: [{}]; images: [{images_note}]",
                p.pods.join(", ")
            );
            status.update_plan = Some(p);
            return act(Decision::status(status).event(EventSpec::normal(
                "UpdatePlan",
                "Plan",
                note,
            )));
        };
        // UpdatePetSets.
        if !is_condition_true(self.conds(), ops_types::UPDATE_PET_SETS) {
            let patches = plan::sts_patches(&self.world.statefulsets, images, standalone);
            if !patches.is_empty() {
                return act(Decision::effect(Effect::PatchStatefulSets(patches)));
            }
            let message = format!(
                "successfully reconciled the {} with updated version",
                kind.as_str()
            );
            let status = self.with([self.cond(
                ops_types::UPDATE_PET_SETS,
                ConditionStatus::True,
                Some(ops_types::UPDATE_PET_SETS),
                message.clone(),
            )]);
            let mut d = Decision::status(status).event(EventSpec::normal(
                ops_types::UPDATE_PET_SETS,
                "UpdatePetSets",
                message,
            ));
            d.step = get_condition(self.conds(), ops_types::DATABASE_PAUSE_SUCCEEDED).map(|c| {
                (
                    "update_petsets",
                    since(self.world.now, &c.last_transition_time),
                )
            });
            return act(d);
        }
        // Restart pods.
        if !is_condition_true(self.conds(), ops_types::RESTART_PODS) {
            if let Some(step) = self.restart_pods(db, images, standalone, &update_plan.pods) {
                return step;
            }
            let message = format!("Successfully Restarted {} pods", kind.as_str());
            let status = self.with([self.cond(
                ops_types::RESTART_PODS,
                ConditionStatus::True,
                Some(ops_types::RESTART_PODS),
                message.clone(),
            )]);
            let mut d = Decision::status(status).event(EventSpec::normal(
                ops_types::RESTART_PODS,
                "RestartPods",
                message,
            ));
            d.step = get_condition(self.conds(), ops_types::UPDATE_PET_SETS).map(|c| {
                (
                    "restart_pods",
                    since(self.world.now, &c.last_transition_time),
                )
            });
            return act(d);
        }
        // UpdateDatabase.
        let target = images.target.name.clone();
        if !db_updated {
            if db.version != target {
                return act(Decision::effect(Effect::SetDatabaseVersion(target)));
            }
            let message = format!("Successfully updated {}", kind.as_str());
            let status = self.with([self.cond(
                ops_types::UPDATE_DATABASE,
                ConditionStatus::True,
                Some(ops_types::UPDATE_DATABASE),
                message.clone(),
            )]);
            return act(Decision::status(status).event(EventSpec::normal(
                ops_types::UPDATE_DATABASE,
                "UpdateDatabase",
                format!("{message} {} to version {target}", self.db_ref()),
            )));
        }
        // Resume, then Successful.
        if by_us {
            let [a, b] = self.resume_events();
            return act(Decision::effect(Effect::Resume).event(a).event(b));
        }
        let message = format!("Successfully updated {} version", kind.as_str());
        let status = self.with([self.cond(
            ops_types::SUCCESSFUL,
            ConditionStatus::True,
            Some(ops_types::SUCCESSFUL),
            message,
        )]);
        act(self
            .finish(status, OpsRequestPhase::Successful)
            .event(EventSpec::normal(
                ops_types::SUCCESSFUL,
                "UpdateVersion",
                format!(
                    "Successfully updated {} {} to version {target}",
                    kind.as_str(),
                    self.db_ref()
                ),
            )))
    }

    /// The planned switchover before the primary of an availability group (or the master
    /// aggregator of a SingleStore cluster) is evicted (after
    /// CloudNativePG's switchover before the primary restarts): `SwitchoverPrimary--<pod>` is
    /// Unknown while the agents hand the role over (requested through the primary Lease), True
    /// once another Ready pod is primary and this one is not, False when no secondary took over
    /// within the switchover timeout; then the eviction goes ahead, and the stopping agent hands
    /// over as it stops. `None`: nothing to do (not the primary, no other member, or done).
    fn switchover(&self, db: &DbView, pod: &PodView) -> Option<Step> {
        let kind = self.req.kind;
        let leader = kind.leader_role();
        let name = pod.name.as_str();
        let type_ = pod_steps::condition_type(pod_steps::SWITCHOVER_PRIMARY, name);
        let others: Vec<&PodView> = self
            .world
            .pods
            .iter()
            .filter(|p| p.sts == pod.sts && p.name != name)
            .collect();
        let timeout = self.cfg.switchover_timeout;
        let requested_until = |since: &Time| {
            since
                .0
                .checked_add(jiff_duration(timeout))
                .unwrap_or(since.0)
        };
        let Some(cond) = get_condition(self.conds(), &type_) else {
            let applies = db.clustered
                && kind.switches_over()
                && pod.role.as_deref() == Some(leader)
                && !others.is_empty();
            if !applies {
                return None;
            }
            let until = requested_until(&self.now());
            let message = format!(
                "asked the agents to hand the {leader} role over from pod {name} (request lapses at {until})"
            );
            let status = self.with([self.cond(
                &type_,
                ConditionStatus::Unknown,
                Some("SwitchoverRequested"),
                message.clone(),
            )]);
            return Some(act(Decision::status(status)
                .with_effect(Effect::RequestHandover {
                    pod: name.to_owned(),
                    until,
                })
                .event(
                    EventSpec::normal(pod_steps::SWITCHOVER_PRIMARY, "RestartPods", message)
                        .related(self.pod_ref(name)),
                )));
        };
        if cond.status != ConditionStatus::Unknown {
            return None;
        }
        let successor = others
            .iter()
            .find(|p| p.role.as_deref() == Some(leader) && p.healthy());
        if let Some(successor) = successor.filter(|_| pod.role.as_deref() != Some(leader)) {
            let message = format!(
                "the {leader} role moved from pod {name} to pod {}",
                successor.name
            );
            let status = self.with([self.cond(
                &type_,
                ConditionStatus::True,
                Some("SwitchoverSucceeded"),
                message.clone(),
            )]);
            return Some(act(Decision::status(status).event(
                EventSpec::normal(pod_steps::SWITCHOVER_PRIMARY, "RestartPods", message)
                    .related(self.pod_ref(name)),
            )));
        }
        if since(self.world.now, &cond.last_transition_time) >= timeout {
            let message = match kind {
                api::DbKind::MSSQLServer => format!(
                    "no synchronized secondary took the {leader} role from pod {name} within {}s; \
                     evicting it anyway (its agent hands the role over as it stops)",
                    timeout.as_secs()
                ),
                api::DbKind::Singlestore => format!(
                    "no caught-up child aggregator took the {leader} role from pod {name} within \
                     {}s; evicting it anyway (it keeps the role and comes back as the master)",
                    timeout.as_secs()
                ),
            };
            let status = self.with([self.cond(
                &type_,
                ConditionStatus::False,
                Some("SwitchoverTimedOut"),
                message.clone(),
            )]);
            return Some(act(Decision::status(status).event(
                EventSpec::warning("SwitchoverTimedOut", "RestartPods", message)
                    .related(self.pod_ref(name)),
            )));
        }
        // Written but not (or no longer) on the Lease: a crash between the status write and
        // the effect. Ask again, with the deadline recorded in the condition — but only while
        // the pod still carries the role: a new holder clears the request when it takes the
        // Lease, and asking again then would leave a stale request behind.
        if self.world.handover.as_ref().map(|(from, _)| from.as_str()) != Some(name)
            && pod.role.as_deref() == Some(leader)
        {
            return Some(act(Decision::effect(Effect::RequestHandover {
                pod: name.to_owned(),
                until: requested_until(&cond.last_transition_time),
            })));
        }
        Some(wait(
            type_,
            format!(
                "waiting for the agents to hand the {leader} role over from pod {name} to a synchronized secondary"
            ),
        ))
    }

    /// The restart of one pod; None when every planned pod is done.
    fn restart_pods(
        &self,
        db: &DbView,
        images: &Target,
        standalone: bool,
        planned: &[String],
    ) -> Option<Step> {
        let req = self.req;
        let kind = req.kind;
        let check = kind.check_step();
        let conds = self.conds();
        let cond_type = |step: &str, pod: &str| pod_steps::condition_type(step, pod);
        let remaining: Vec<&str> = planned
            .iter()
            .map(String::as_str)
            .filter(|p| !is_condition_true(conds, &cond_type(check, p)))
            .collect();
        if remaining.is_empty() {
            return None;
        }
        let in_flight = remaining.iter().copied().find(|p| {
            get_condition(conds, &cond_type(pod_steps::EVICT_POD, p)).is_some()
                || get_condition(conds, &cond_type(pod_steps::SWITCHOVER_PRIMARY, p))
                    .is_some_and(|c| c.status == ConditionStatus::Unknown)
        });
        let leader = plan::leader(kind, &self.world.pods, db.clustered);
        let set_of = |n: &str| {
            self.world
                .pods
                .iter()
                .find(|p| p.name == n)
                .map(|p| p.sts.as_str())
        };
        let same_set = |a: &str, b: &str| set_of(a).is_some() && set_of(a) == set_of(b);
        let name = plan::next_pod(&remaining, in_flight, leader.as_deref(), same_set)?;
        let pod = self.world.pods.iter().find(|p| p.name == name);
        let targets_of = |p: &PodView| {
            self.world
                .statefulsets
                .iter()
                .find(|s| s.name == p.sts)
                .map(|s| plan::sts_targets(s, images, standalone))
        };
        let step_msg = |words: &str| pod_steps::message(words, ConditionStatus::True, name);
        let evict_cond = get_condition(conds, &cond_type(pod_steps::EVICT_POD, name));
        let record = evict_cond
            .and_then(|c| c.message.as_deref())
            .and_then(EvictRecord::parse);
        let check_type = cond_type(check, name);
        let Some(record) = record else {
            let Some(pod) = pod else {
                return Some(wait(
                    cond_type(pod_steps::GET_POD, name),
                    format!("pod {name} does not exist"),
                ));
            };
            let get_type = cond_type(pod_steps::GET_POD, name);
            if !is_condition_true(conds, &get_type) {
                let msg = step_msg("get pod");
                let status =
                    self.with([self.cond(&get_type, ConditionStatus::True, None, msg.clone())]);
                return Some(act(Decision::status(status).event(
                    EventSpec::normal(pod_steps::GET_POD, "RestartPods", msg)
                        .related(self.pod_ref(name)),
                )));
            }
            let Some(targets) = targets_of(pod) else {
                return Some(fail(
                    check_type,
                    format!("pod {name} belongs to no StatefulSet of {}", self.db_ref()),
                ));
            };
            if plan::pod_updated(pod, &targets) {
                let msg = step_msg(kind.check_words());
                let status =
                    self.with([self.cond(&check_type, ConditionStatus::True, None, msg.clone())]);
                return Some(act(Decision::status(status).event(
                    EventSpec::normal(check, "RestartPods", msg).related(self.pod_ref(name)),
                )));
            }
            if let Some(step) = self.switchover(db, pod) {
                return Some(step);
            }
            if let Err(why) = plan::eviction_allowed(pod, &self.world.pods, &self.world.pdbs) {
                return Some(wait(cond_type(pod_steps::EVICT_POD, name), why));
            }
            let rec = EvictRecord {
                pod: name.to_owned(),
                uid: pod.uid.clone(),
                role: pod.role.clone().unwrap_or_default(),
            };
            let evict_type = cond_type(pod_steps::EVICT_POD, name);
            let status =
                self.with([self.cond(&evict_type, ConditionStatus::True, None, rec.message())]);
            let d = Decision::status(status).with_effect(disrupt(pod)).event(
                EventSpec::normal(pod_steps::EVICT_POD, "RestartPods", step_msg("evict pod"))
                    .related(self.pod_ref(name)),
            );
            return Some(act(d));
        };
        let Some(pod) = pod else {
            return Some(wait(
                check_type,
                format!("waiting for pod {name} to be recreated"),
            ));
        };
        if pod.uid == record.uid {
            if pod.terminating {
                return Some(wait(
                    check_type,
                    format!("waiting for pod {name} to terminate"),
                ));
            }
            // Recorded but not carried out (crash, or refused by a PodDisruptionBudget): evict the
            // same incarnation again; the UID precondition makes this safe.
            if let Err(why) = plan::eviction_allowed(pod, &self.world.pods, &self.world.pdbs) {
                return Some(wait(cond_type(pod_steps::EVICT_POD, name), why));
            }
            return Some(act(Decision::effect(disrupt(pod))));
        }
        let retry = get_condition(conds, ops_types::RETRYING)
            .and_then(|c| c.message.as_deref())
            .and_then(RetryRecord::parse)
            .filter(|r| r.pod == name);
        if let Some(r) = &retry
            && r.uid == pod.uid
        {
            if pod.terminating {
                return Some(wait(
                    check_type,
                    format!("waiting for failing pod {name} to terminate"),
                ));
            }
            return Some(act(Decision::effect(Effect::DeletePod {
                pod: name.to_owned(),
                uid: pod.uid.clone(),
            })));
        }
        if let Some(cause) = plan::pod_failure(pod) {
            let used = retry.as_ref().map_or(0, |r| r.attempt);
            if used < req.max_retries {
                let rec = RetryRecord {
                    attempt: used + 1,
                    of: req.max_retries,
                    pod: name.to_owned(),
                    uid: pod.uid.clone(),
                    cause: cause.clone(),
                };
                let status = self.with([self.cond(
                    ops_types::RETRYING,
                    ConditionStatus::True,
                    Some(ops_types::RETRYING),
                    rec.message(),
                )]);
                let d = Decision::status(status)
                    .with_effect(Effect::DeletePod {
                        pod: name.to_owned(),
                        uid: pod.uid.clone(),
                    })
                    .event(
                        EventSpec::warning(
                            ops_types::RETRYING,
                            "RestartPods",
                            format!(
                                "pod {name} failed on the target images ({cause}); retry {} of {}",
                                rec.attempt, rec.of
                            ),
                        )
                        .related(self.pod_ref(name)),
                    );
                return Some(act(d));
            }
            return Some(fail(
                check_type,
                format!(
                    "pod {}/{name} did not become Ready on the target images: {cause}",
                    req.namespace
                ),
            ));
        }
        let Some(targets) = targets_of(pod) else {
            return Some(fail(
                check_type,
                format!("pod {name} belongs to no StatefulSet of {}", self.db_ref()),
            ));
        };
        if !plan::pod_updated(pod, &targets) {
            let hint = if db.clustered {
                kind.readiness_hint()
            } else {
                ""
            };
            return Some(wait(
                check_type,
                format!("waiting for pod {name} to run the target images and become Ready{hint}"),
            ));
        }
        if db.clustered && record.role == kind.leader_role() {
            let group: Vec<&PodView> = self
                .world
                .pods
                .iter()
                .filter(|p| p.sts == pod.sts && p.name != name)
                .collect();
            if !group.is_empty() {
                let new_leader = group
                    .iter()
                    .find(|p| p.role.as_deref() == Some(kind.leader_role()) && p.healthy());
                let leader_ok = new_leader
                    .is_some_and(|l| targets_of(l).is_some_and(|t| plan::pod_updated(l, &t)));
                if !leader_ok {
                    return Some(wait(
                        check_type,
                        format!(
                            "waiting for the {} role to move to an updated, Ready pod",
                            kind.leader_role()
                        ),
                    ));
                }
                if pod.role.as_deref() == Some(kind.leader_role()) || pod.role.is_none() {
                    return Some(wait(
                        check_type,
                        format!("waiting for pod {name} to rejoin as a follower"),
                    ));
                }
            }
        }
        // The database must answer again: the provisioner keeps AcceptingConnection current while
        // paused (over SQL with `--health-check=sql`, from pod readiness otherwise).
        if let Some(c) = get_condition(&db.conditions, db_types::ACCEPTING_CONNECTION)
            .filter(|c| c.status == ConditionStatus::False)
        {
            return Some(wait(
                check_type,
                format!(
                    "waiting for {} to accept connections again ({})",
                    self.db_ref(),
                    c.message
                        .as_deref()
                        .unwrap_or("AcceptingConnection is False")
                ),
            ));
        }
        let msg = step_msg(kind.check_words());
        let status = self.with([self.cond(&check_type, ConditionStatus::True, None, msg.clone())]);
        let mut d = Decision::status(status)
            .event(EventSpec::normal(check, "RestartPods", msg).related(self.pod_ref(name)));
        d.pod_restarted = true;
        d.step = evict_cond.map(|c| {
            (
                "restart_pod",
                since(self.world.now, &c.last_transition_time),
            )
        });
        Some(act(d))
    }
}

#[cfg(test)]
mod tests;
