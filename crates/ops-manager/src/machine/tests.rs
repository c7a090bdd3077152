//! Table tests of the step machine, plus a small simulation that applies its effects to a model
//! world until the request finishes (ordering, one-at-a-time, primary last, crash re-entry).

use super::*;
use crate::model::{DbKind, DbView, PdbView, StsView};
use crate::testutil::*;
use crate::validate::Rejection;
use api::conditions::{get_condition, pod_steps::condition_type};
use api::ops::OpsRequestPhase::*;

fn cfg() -> MachineConfig {
    MachineConfig {
        default_timeout: Duration::from_secs(300),
        poll: Duration::from_secs(1),
        switchover_timeout: Duration::from_secs(30),
    }
}

fn ag_world() -> World {
    let mut db = db("2022-cu22", true);
    db.conditions = vec![];
    World {
        now: at(1000),
        db: Some(db),
        validation: Ok(()),
        images: Some(mssql_target()),
        statefulsets: vec![mssql_sts("db", MSSQL_OLD)],
        pods: vec![
            pod("db-0", "db", 0, MSSQL_OLD, Some("secondary")),
            pod("db-1", "db", 1, MSSQL_OLD, Some("primary")),
            pod("db-2", "db", 2, MSSQL_OLD, Some("secondary")),
        ],
        pdbs: vec![PdbView {
            name: "db".into(),
            pods: vec!["db-0".into(), "db-1".into(), "db-2".into()],
            desired_healthy: 2,
        }],
        peers: vec![],
        handover: None,
        action_error: None,
    }
}

fn paused(world: &mut World, req: &RequestView, status: ConditionStatus) {
    let db = world.db.as_mut().unwrap();
    db.conditions.retain(|c| c.type_ != db_types::PAUSED);
    db.conditions.push(
        Condition::new(db_types::PAUSED, status, Time(at(900)))
            .with_reason("Paused")
            .with_message(req.pause_message()),
    );
}

fn apply_status(req: &mut RequestView, d: &Decision) {
    if let Some(s) = &d.status {
        req.status = s.clone();
    }
}

fn has(req: &RequestView, type_: &str) -> bool {
    is_condition_true(req.status.conditions(), type_)
}

#[test]
fn new_request_becomes_pending_then_fails_fast_on_rejection() {
    let mut req = request("r", 0);
    let mut world = ag_world();
    world.validation = Err(Rejection {
        reason: "VersionNotFound",
        message: "target version \"x\" not found".into(),
    });
    let d = next_action(&req, &world, &cfg());
    assert_eq!(d.status.as_ref().unwrap().phase, Some(Pending));
    apply_status(&mut req, &d);
    let d = next_action(&req, &world, &cfg());
    let status = d.status.clone().unwrap();
    assert_eq!(status.phase, Some(Failed));
    let c = get_condition(status.conditions(), "UpdateVersion").unwrap();
    assert_eq!(
        (c.status, c.reason.as_deref()),
        (ConditionStatus::False, Some("VersionNotFound"))
    );
    assert_eq!(d.effect, Effect::None, "the database is not touched");
    assert_eq!(d.events[0].type_, crate::events::EventType::Warning);
    assert_eq!(d.finished.as_ref().unwrap().phase, Failed);
}

#[test]
fn if_ready_waits_always_proceeds_and_waiting_is_bounded() {
    let mut req = request("r", 0);
    req.status.phase = Some(Pending);
    req.has_finalizer = true;
    let mut world = ag_world();
    world.now = at(10);
    world.db.as_mut().unwrap().phase = Some(api::DatabasePhase::NotReady);
    let d = next_action(&req, &world, &cfg());
    let c = get_condition(d.status.as_ref().unwrap().conditions(), "DatabaseReady").unwrap();
    assert_eq!(
        (c.status, c.reason.as_deref()),
        (ConditionStatus::False, Some("DatabaseNotReady"))
    );
    assert!(c.message.as_deref().unwrap().contains("phase NotReady"));
    assert_eq!(d.requeue, Some(Duration::from_secs(1)));

    world.now = at(301);
    let d = next_action(&req, &world, &cfg());
    assert_eq!(d.status.as_ref().unwrap().phase, Some(Failed));

    req.apply = api::ops::ApplyPolicy::Always;
    let d = next_action(&req, &world, &cfg());
    assert_eq!(d.status.as_ref().unwrap().phase, Some(Progressing));
}

#[test]
fn start_adds_the_finalizer_before_progressing() {
    let mut req = request("r", 0);
    req.status.phase = Some(Pending);
    let world = ag_world();
    assert_eq!(
        next_action(&req, &world, &cfg()).effect,
        Effect::AddFinalizer
    );
    req.has_finalizer = true;
    let d = next_action(&req, &world, &cfg());
    let s = d.status.unwrap();
    assert_eq!(s.phase, Some(Progressing));
    assert!(is_condition_true(s.conditions(), "UpdateVersion"));
    assert_eq!(
        d.events[0].note,
        "Start processing for MSSQLServerOpsRequest: demo/r"
    );
}

#[test]
fn queued_request_waits_for_the_progressing_one() {
    let mut req = request("b", 10);
    req.status.phase = Some(Pending);
    let mut world = ag_world();
    world.peers = vec![crate::model::PeerRequest {
        name: "a".into(),
        created: at(5),
        op_type: api::ops::OpsRequestType::Restart,
        phase: Some(Progressing),
    }];
    let d = next_action(&req, &world, &cfg());
    assert_eq!((d.status, d.effect), (None, Effect::None));
    assert_eq!(d.waiting.as_deref(), Some("a is Progressing"));
}

fn progressing(name: &str) -> RequestView {
    let mut req = request(name, 0);
    req.has_finalizer = true;
    req.status.phase = Some(Progressing);
    set_condition(
        req.status.conditions_mut(),
        Condition::new("UpdateVersion", ConditionStatus::True, Time(at(900)))
            .with_reason("UpdateVersion"),
    );
    req
}

#[test]
fn pause_handshake() {
    let mut req = progressing("r");
    let mut world = ag_world();
    let d = next_action(&req, &world, &cfg());
    assert_eq!(d.effect, Effect::Pause);
    assert_eq!(d.status, None);

    paused(&mut world, &req, ConditionStatus::Unknown);
    let d = next_action(&req, &world, &cfg());
    assert_eq!(d.effect, Effect::None);
    assert!(d.waiting.unwrap().contains("acknowledge"));

    paused(&mut world, &req, ConditionStatus::True);
    let d = next_action(&req, &world, &cfg());
    apply_status(&mut req, &d);
    assert!(has(&req, "DatabasePauseSucceeded"));

    // Another request's pause is never overwritten.
    let other = progressing("other");
    let mut world2 = ag_world();
    paused(&mut world2, &req, ConditionStatus::True);
    let d = next_action(&other, &world2, &cfg());
    assert_eq!(d.effect, Effect::None);
    assert!(d.waiting.unwrap().contains("already paused"));
}

fn paused_progressing() -> (RequestView, World) {
    let mut req = progressing("r");
    let mut world = ag_world();
    paused(&mut world, &req, ConditionStatus::True);
    let d = next_action(&req, &world, &cfg());
    apply_status(&mut req, &d);
    (req, world)
}

#[test]
fn plan_is_written_before_the_statefulsets_change() {
    let (mut req, mut world) = paused_progressing();
    let d = next_action(&req, &world, &cfg());
    assert_eq!(d.effect, Effect::None);
    let plan = d.status.as_ref().unwrap().update_plan.clone().unwrap();
    assert_eq!(plan.pods, ["db-0", "db-2", "db-1"]);
    apply_status(&mut req, &d);
    let d = next_action(&req, &world, &cfg());
    assert!(matches!(d.effect, Effect::PatchStatefulSets(ref p) if p[0].sts == "db"));
    assert_eq!(d.status, None);
    world.statefulsets = vec![mssql_sts("db", MSSQL_NEW)];
    let d = next_action(&req, &world, &cfg());
    apply_status(&mut req, &d);
    assert!(has(&req, "UpdatePetSets"));
}

fn at_restart() -> (RequestView, World) {
    let (mut req, mut world) = paused_progressing();
    for _ in 0..2 {
        let d = next_action(&req, &world, &cfg());
        apply_status(&mut req, &d);
    }
    world.statefulsets = vec![mssql_sts("db", MSSQL_NEW)];
    let d = next_action(&req, &world, &cfg());
    apply_status(&mut req, &d);
    assert!(has(&req, "UpdatePetSets"));
    (req, world)
}

#[test]
fn eviction_is_recorded_before_it_happens_and_never_repeated_on_a_new_incarnation() {
    let (mut req, mut world) = at_restart();
    let d = next_action(&req, &world, &cfg());
    apply_status(&mut req, &d);
    assert!(has(&req, "GetPod--db-0"));
    let d = next_action(&req, &world, &cfg());
    assert_eq!(
        d.effect,
        Effect::Evict {
            pod: "db-0".into(),
            uid: "db-0-uid".into()
        }
    );
    let recorded =
        get_condition(d.status.as_ref().unwrap().conditions(), "EvictPod--db-0").unwrap();
    assert!(
        recorded
            .message
            .as_deref()
            .unwrap()
            .contains("PodUID:db-0-uid")
    );
    apply_status(&mut req, &d);

    // Crash before the eviction happened: the same incarnation is evicted (no new record).
    let d = next_action(&req, &world, &cfg());
    assert_eq!(
        (d.status.is_none(), d.effect.clone()),
        (
            true,
            Effect::Evict {
                pod: "db-0".into(),
                uid: "db-0-uid".into()
            }
        )
    );

    // The pod is being replaced: wait; it is not evicted again.
    world.pods[0].terminating = true;
    assert_eq!(next_action(&req, &world, &cfg()).effect, Effect::None);
    let mut fresh = pod("db-0", "db", 0, MSSQL_NEW, Some("secondary"));
    fresh.uid = "db-0-new".into();
    fresh.ready = false;
    world.pods[0] = fresh;
    let d = next_action(&req, &world, &cfg());
    assert_eq!((d.effect, d.status.is_none()), (Effect::None, true));
    assert!(d.waiting.unwrap().contains("CheckPodRunning--db-0"));

    world.pods[0].ready = true;
    let d = next_action(&req, &world, &cfg());
    assert!(d.pod_restarted);
    apply_status(&mut req, &d);
    assert!(has(&req, "CheckPodRunning--db-0"));
    assert_eq!(
        get_condition(req.status.conditions(), "CheckPodRunning--db-0")
            .unwrap()
            .message
            .as_deref(),
        Some("check pod running; ConditionStatus:True; PodName:db-0")
    );
}

#[test]
fn a_pod_that_is_not_ready_is_deleted_instead_of_evicted() {
    let (mut req, mut world) = at_restart();
    let d = next_action(&req, &world, &cfg());
    apply_status(&mut req, &d);
    world.pods[0].ready = false;
    let d = next_action(&req, &world, &cfg());
    assert_eq!(
        d.effect,
        Effect::DeletePod {
            pod: "db-0".into(),
            uid: "db-0-uid".into()
        }
    );
    assert!(
        d.status
            .unwrap()
            .conditions()
            .iter()
            .any(|c| c.type_ == "EvictPod--db-0")
    );
}

#[test]
fn a_pod_is_done_only_when_the_database_accepts_connections() {
    let (mut req, mut world) = at_restart();
    for _ in 0..2 {
        let d = next_action(&req, &world, &cfg());
        apply_status(&mut req, &d);
    }
    let mut fresh = pod("db-0", "db", 0, MSSQL_NEW, Some("secondary"));
    fresh.uid = "new".into();
    world.pods[0] = fresh;
    world.db.as_mut().unwrap().conditions.push(
        Condition::new(
            db_types::ACCEPTING_CONNECTION,
            ConditionStatus::False,
            Time(at(990)),
        )
        .with_message("login failed"),
    );
    let d = next_action(&req, &world, &cfg());
    assert_eq!((d.status.is_none(), d.effect.clone()), (true, Effect::None));
    assert!(d.waiting.unwrap().contains("login failed"));
    world
        .db
        .as_mut()
        .unwrap()
        .conditions
        .last_mut()
        .unwrap()
        .status = ConditionStatus::True;
    let d = next_action(&req, &world, &cfg());
    apply_status(&mut req, &d);
    assert!(has(&req, "CheckPodRunning--db-0"));
}

#[test]
fn never_evicts_below_the_pdb() {
    let (mut req, mut world) = at_restart();
    let d = next_action(&req, &world, &cfg());
    apply_status(&mut req, &d);
    world.pods[2].ready = false;
    let d = next_action(&req, &world, &cfg());
    assert_eq!(d.effect, Effect::None);
    assert!(
        d.waiting
            .unwrap()
            .contains("PodDisruptionBudget db needs 2")
    );
}

#[test]
fn failing_pod_is_retried_then_fails_naming_pod_and_cause() {
    let (mut req, mut world) = at_restart();
    for _ in 0..2 {
        let d = next_action(&req, &world, &cfg());
        apply_status(&mut req, &d);
    }
    let mut broken = pod("db-0", "db", 0, MSSQL_NEW, None);
    broken.uid = "new-1".into();
    broken.ready = false;
    broken.statuses[0].ready = false;
    broken.statuses[0].waiting_reason = Some("ImagePullBackOff".into());
    world.pods[0] = broken.clone();
    let d = next_action(&req, &world, &cfg());
    assert_eq!(
        d.effect,
        Effect::DeletePod {
            pod: "db-0".into(),
            uid: "new-1".into()
        }
    );
    apply_status(&mut req, &d);
    // Re-entry before the delete happened: delete again, no second retry counted.
    let d = next_action(&req, &world, &cfg());
    assert_eq!(
        (d.effect, d.status.is_none()),
        (
            Effect::DeletePod {
                pod: "db-0".into(),
                uid: "new-1".into()
            },
            true
        )
    );
    broken.uid = "new-2".into();
    world.pods[0] = broken;
    let d = next_action(&req, &world, &cfg());
    let s = d.status.unwrap();
    assert_eq!(s.phase, Some(Failed));
    let c = get_condition(s.conditions(), "CheckPodRunning--db-0").unwrap();
    assert_eq!(c.reason.as_deref(), Some("Failed"));
    assert!(
        c.message.as_deref().unwrap().contains("pod demo/db-0")
            && c.message.as_deref().unwrap().contains("ImagePullBackOff")
    );
    assert_eq!(d.effect, Effect::None, "no further pod is touched");
}

#[test]
fn timeout_names_the_step() {
    let (mut req, mut world) = at_restart();
    let d = next_action(&req, &world, &cfg());
    apply_status(&mut req, &d);
    world.now = at(900 + 301);
    world.pods[2].ready = false;
    let d = next_action(&req, &world, &cfg());
    let s = d.status.unwrap();
    assert_eq!(s.phase, Some(Failed));
    let failed: Vec<&Condition> = s
        .conditions()
        .iter()
        .filter(|c| c.reason.as_deref() == Some("Failed"))
        .collect();
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].type_, "EvictPod--db-0", "{failed:?}");
    assert!(
        failed[0]
            .message
            .as_deref()
            .unwrap()
            .contains("timed out after 300s")
    );
}

/// Issue 20, defect 1: an eviction that keeps failing (a persistent 403) does not hold the
/// request past its timeout: it fails naming the step and the error, and the database is
/// resumed. Before the timeout, the failing action is simply retried.
#[test]
fn an_action_that_keeps_failing_fails_the_request_at_its_timeout() {
    let (mut req, mut world) = at_restart();
    let d = next_action(&req, &world, &cfg());
    apply_status(&mut req, &d);
    let d = next_action(&req, &world, &cfg());
    assert!(matches!(d.effect, Effect::Evict { .. }), "{:?}", d.effect);
    apply_status(&mut req, &d);
    let forbidden = "evicting pod demo/db-0: pods \"db-0\" is forbidden".to_owned();
    world.action_error = Some(forbidden.clone());
    // Within the timeout: the eviction is asked again.
    world.now = at(900 + 200);
    let d = next_action(&req, &world, &cfg());
    assert!(matches!(d.effect, Effect::Evict { .. }), "{:?}", d.effect);
    // Past it: Failed, with the step, the timeout and the error.
    world.now = at(900 + 301);
    let d = next_action(&req, &world, &cfg());
    let s = d.status.as_ref().unwrap();
    assert_eq!(s.phase, Some(Failed));
    let c = get_condition(s.conditions(), "EvictPod--db-0").unwrap();
    assert_eq!(c.status, ConditionStatus::False);
    let message = c.message.as_deref().unwrap();
    assert!(
        message.contains("timed out after 300s") && message.contains(&forbidden),
        "{message}"
    );
    assert!(
        d.events
            .iter()
            .any(|e| e.type_ == operator_common::events::EventType::Warning),
        "{:?}",
        d.events
    );
    // Without a recorded failure the same moment keeps acting (the action is making progress).
    world.action_error = None;
    let d = next_action(&req, &world, &cfg());
    assert!(matches!(d.effect, Effect::Evict { .. }), "{:?}", d.effect);
}

#[test]
fn finished_or_deleted_requests_resume_then_drop_the_finalizer() {
    let (mut req, world) = at_restart();
    req.deleting = true;
    let d = next_action(&req, &world, &cfg());
    assert_eq!(d.effect, Effect::Resume);
    assert_eq!(d.events[0].note, "Resuming MSSQLServer database: demo/db");
    let mut resumed = world.clone();
    resumed.db.as_mut().unwrap().conditions.clear();
    assert_eq!(
        next_action(&req, &resumed, &cfg()).effect,
        Effect::RemoveFinalizer
    );
    req.has_finalizer = false;
    assert_eq!(next_action(&req, &resumed, &cfg()), Decision::idle());
    // Failed with the finalizer: same clean-up.
    let (mut failed, world) = at_restart();
    failed.status.phase = Some(Failed);
    assert_eq!(next_action(&failed, &world, &cfg()).effect, Effect::Resume);
}

/// A model cluster that carries out effects: evictions replace pods (new UID, target spec,
/// Ready), the primary role moves to the lowest-ordinal healthy secondary; a handover request
/// moves it the same way unless the agents are `stuck`.
struct Sim {
    world: World,
    evictions: Vec<String>,
    max_down: usize,
    stuck: bool,
    /// The primary at each eviction (pod evicted, pod primary then).
    primary_at_eviction: Vec<(String, Option<String>)>,
}

impl Sim {
    fn primary(&self) -> Option<String> {
        self.world
            .pods
            .iter()
            .find(|p| p.role.as_deref() == Some("primary"))
            .map(|p| p.name.clone())
    }

    fn move_primary_from(&mut self, name: &str) {
        if let Some(p) = self.world.pods.iter_mut().find(|p| p.name == name) {
            p.role = Some("secondary".into());
        }
        let next = self
            .world
            .pods
            .iter_mut()
            .filter(|p| p.name != name && p.healthy())
            .min_by_key(|p| p.ordinal)
            .unwrap();
        next.role = Some("primary".into());
    }
}

impl Sim {
    fn apply(&mut self, req: &RequestView, effect: &Effect) {
        match effect {
            Effect::Pause => paused(&mut self.world, req, ConditionStatus::True),
            Effect::Resume => self.world.db.as_mut().unwrap().conditions.clear(),
            Effect::PatchStatefulSets(_) => {
                self.world.statefulsets = vec![mssql_sts("db", MSSQL_NEW)]
            }
            Effect::SetDatabaseVersion(v) => self.world.db.as_mut().unwrap().version = v.clone(),
            Effect::Evict { pod: name, uid } => {
                let i = self
                    .world
                    .pods
                    .iter()
                    .position(|p| &p.name == name)
                    .unwrap();
                assert_eq!(&self.world.pods[i].uid, uid);
                self.evictions.push(name.clone());
                let primary = self.primary();
                self.primary_at_eviction.push((name.clone(), primary));
                let was_primary = self.world.pods[i].role.as_deref() == Some("primary");
                self.world.pods[i].terminating = true;
                self.max_down = self
                    .max_down
                    .max(self.world.pods.iter().filter(|p| !p.healthy()).count());
                let ordinal = self.world.pods[i].ordinal;
                let mut fresh = pod(name, "db", ordinal, MSSQL_NEW, Some("secondary"));
                fresh.uid = format!("{name}-gen{}", self.evictions.len());
                self.world.pods[i] = fresh;
                if was_primary {
                    let next = self
                        .world
                        .pods
                        .iter_mut()
                        .filter(|p| p.name != *name)
                        .min_by_key(|p| p.ordinal)
                        .unwrap();
                    next.role = Some("primary".into());
                }
            }
            Effect::RequestHandover { pod, until } => {
                self.world.handover = Some((pod.clone(), *until));
                if !self.stuck {
                    self.move_primary_from(pod);
                }
            }
            Effect::None
            | Effect::AddFinalizer
            | Effect::RemoveFinalizer
            | Effect::DeletePod { .. } => {}
        }
    }
}

fn run_to_end(req: RequestView, world: World, crash_every: Option<usize>) -> (RequestView, Sim) {
    run_sim(req, world, crash_every, false)
}

fn run_sim(
    mut req: RequestView,
    world: World,
    crash_every: Option<usize>,
    stuck: bool,
) -> (RequestView, Sim) {
    let mut sim = Sim {
        world,
        evictions: vec![],
        max_down: 0,
        stuck,
        primary_at_eviction: vec![],
    };
    for step in 0..200 {
        // Time passes one second per round (the switchover timeout counts it).
        sim.world.now = sim
            .world
            .now
            .checked_add(k8s_openapi::jiff::SignedDuration::from_secs(1))
            .unwrap();
        let d = next_action(&req, &sim.world, &cfg());
        if req.phase() == Successful && d.effect == Effect::RemoveFinalizer {
            return (req, sim);
        }
        apply_status(&mut req, &d);
        // A "crash" drops the effect after the status was written.
        if crash_every.is_some_and(|n| step % n == n - 1) {
            continue;
        }
        sim.apply(&req, &d.effect);
    }
    panic!("did not finish: {:#?}", req.status);
}

#[test]
fn ag_update_runs_one_pod_at_a_time_primary_last() {
    let (req, sim) = run_to_end(progressing("r"), ag_world(), None);
    assert_eq!(req.phase(), Successful);
    assert_eq!(sim.evictions, ["db-0", "db-2", "db-1"]);
    assert_eq!(sim.max_down, 1);
    assert!(
        sim.world
            .pods
            .iter()
            .all(|p| p.containers[0].image == MSSQL_NEW)
    );
    assert_eq!(sim.world.db.as_ref().unwrap().version, "2025-cu0");
    assert!(
        sim.world.db.as_ref().unwrap().conditions.is_empty(),
        "resumed"
    );
    let types: Vec<&str> = req
        .status
        .conditions()
        .iter()
        .map(|c| c.type_.as_str())
        .collect();
    assert_eq!(
        types,
        [
            "UpdateVersion",
            "DatabasePauseSucceeded",
            "UpdatePetSets",
            "GetPod--db-0",
            "EvictPod--db-0",
            "CheckPodRunning--db-0",
            "GetPod--db-2",
            "EvictPod--db-2",
            "CheckPodRunning--db-2",
            "GetPod--db-1",
            "SwitchoverPrimary--db-1",
            "EvictPod--db-1",
            "CheckPodRunning--db-1",
            "RestartPods",
            "UpdateDatabase",
            "Successful",
        ]
    );
    let switchover = get_condition(req.status.conditions(), "SwitchoverPrimary--db-1").unwrap();
    assert_eq!(switchover.status, ConditionStatus::True);
    assert_eq!(
        switchover.message.as_deref(),
        Some("the primary role moved from pod db-1 to pod db-0")
    );
    assert!(
        sim.primary_at_eviction
            .iter()
            .all(|(evicted, primary)| primary.as_deref() != Some(evicted.as_str())),
        "no pod was primary when it was evicted: {:?}",
        sim.primary_at_eviction
    );
}

#[test]
fn a_switchover_that_does_not_happen_falls_back_to_the_eviction_at_its_timeout() {
    let (req, sim) = run_sim(progressing("r"), ag_world(), None, true);
    assert_eq!(req.phase(), Successful);
    assert_eq!(sim.evictions, ["db-0", "db-2", "db-1"]);
    let c = get_condition(req.status.conditions(), "SwitchoverPrimary--db-1").unwrap();
    assert_eq!(
        (c.status, c.reason.as_deref()),
        (ConditionStatus::False, Some("SwitchoverTimedOut"))
    );
    assert!(
        c.message.as_deref().unwrap().contains("within 30s"),
        "{c:?}"
    );
    assert_eq!(
        sim.primary_at_eviction.last(),
        Some(&("db-1".to_owned(), Some("db-1".to_owned()))),
        "the fallback evicts the primary itself"
    );
}

#[test]
fn a_lost_handover_request_is_made_again_with_the_recorded_deadline() {
    let mut req = progressing("r");
    let mut sim = Sim {
        world: ag_world(),
        evictions: vec![],
        max_down: 0,
        stuck: false,
        primary_at_eviction: vec![],
    };
    let mut requests = Vec::new();
    for _ in 0..200 {
        sim.world.now = sim
            .world
            .now
            .checked_add(k8s_openapi::jiff::SignedDuration::from_secs(1))
            .unwrap();
        let d = next_action(&req, &sim.world, &cfg());
        if req.phase() == Successful && d.effect == Effect::RemoveFinalizer {
            break;
        }
        apply_status(&mut req, &d);
        if let Effect::RequestHandover { until, .. } = &d.effect {
            requests.push(*until);
            if requests.len() == 1 {
                // Crash after the status write: the Lease never got the request.
                continue;
            }
        }
        sim.apply(&req, &d.effect);
    }
    assert_eq!(req.phase(), Successful);
    assert_eq!(requests.len(), 2, "asked again once: {requests:?}");
    assert_eq!(requests[0], requests[1], "with the deadline first recorded");
    assert_eq!(
        get_condition(req.status.conditions(), "SwitchoverPrimary--db-1")
            .unwrap()
            .status,
        ConditionStatus::True
    );
}

#[test]
fn crashes_after_status_writes_never_evict_a_pod_twice() {
    for n in [2, 3, 5] {
        let (req, sim) = run_to_end(progressing("r"), ag_world(), Some(n));
        assert_eq!(req.phase(), Successful, "crash every {n}");
        assert_eq!(sim.evictions, ["db-0", "db-2", "db-1"], "crash every {n}");
    }
}

#[test]
fn standalone_singlestore_with_unchanged_images_restarts_nothing() {
    let t = sdb_target();
    let mut world = ag_world();
    world.db = Some(DbView {
        clustered: false,
        ..db("8.7.21", false)
    });
    let mut same = t.clone();
    same.target.standalone = same.current.standalone.clone();
    same.target.db = same.current.db.clone();
    world.images = Some(same);
    world.statefulsets = vec![StsView {
        ..sdb_sts("s", t.current.standalone.as_deref().unwrap())
    }];
    world.pods = vec![pod(
        "s-0",
        "s",
        0,
        t.current.standalone.as_deref().unwrap(),
        None,
    )];
    world.pdbs = vec![];
    let mut req = progressing("r");
    req.kind = DbKind::Singlestore;
    let (req, sim) = run_to_end(req, world, None);
    assert_eq!(req.phase(), Successful);
    assert!(sim.evictions.is_empty());
    assert_eq!(
        req.status.update_plan.as_ref().unwrap().pods,
        Vec::<String>::new()
    );
}

#[test]
fn helpers_compose_condition_types() {
    assert_eq!(condition_type("EvictPod", "db-0"), "EvictPod--db-0");
}
