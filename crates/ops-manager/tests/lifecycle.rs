//! Validation, IfReady/Always, queueing and robustness of the ops-manager against kube-sim with
//! the real provisioner.

mod common;

use std::time::{Duration, Instant};

use api::MSSQLServer;
use api::catalog::MSSQLServerVersion;
use api::ops::{MSSQLServerOpsRequest, OpsRequestPhase};
use common::*;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::api::events::v1::Event;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube_sim::FaultSpec;
use serde_json::json;

fn warning_reasons(events: &[Event], request: &str) -> Vec<String> {
    events
        .iter()
        .filter(|e| e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(request))
        .filter(|e| e.type_.as_deref() == Some("Warning"))
        .filter_map(|e| e.reason.clone())
        .collect()
}

#[test]
fn rejections_fail_fast_and_leave_the_database_alone() {
    run(rejections_body());
}

async fn rejections_body() {
    let env = Env::start().await;
    // A deprecated catalog entry the current version's constraints would allow.
    let mut deprecated = api::fixtures::mssql_versions()
        .into_iter()
        .find(|v| v.metadata.name.as_deref() == Some("2022-cu22"))
        .unwrap();
    deprecated.metadata.name = Some("2022-cu23".into());
    deprecated.spec.version = "2022-cu23".into();
    deprecated.spec.deprecated = Some(true);
    Api::<MSSQLServerVersion>::all(env.client.clone())
        .create(&PostParams::default(), &deprecated)
        .await
        .unwrap();
    create(&env, &mssql("ms", "2022-cu22", None)).await;
    create(&env, &mssql("new", "2025-cu0", None)).await;
    let cases = [
        ("unknown", "ms", "2099-cu1", json!({}), "VersionNotFound"),
        (
            "deprecated",
            "ms",
            "2022-cu23",
            json!({}),
            "VersionDeprecated",
        ),
        ("denied", "new", "2022-cu22", json!({}), "UpdateNotAllowed"),
        ("same", "ms", "2022-cu22", json!({}), "SameVersion"),
        (
            "missing-db",
            "nope",
            "2025-cu0",
            json!({}),
            "DatabaseNotFound",
        ),
        (
            "restart",
            "ms",
            "2025-cu0",
            json!({"type": "Restart", "restart": {}}),
            "NotSupported",
        ),
    ];
    for (name, db, target, extra, _) in &cases {
        msops(&env, name, db, target, extra.clone()).await;
    }
    for (name, _, _, _, reason) in &cases {
        let req: MSSQLServerOpsRequest =
            wait_phase(&env, name, OpsRequestPhase::Failed, WAIT).await;
        let type_ = if *name == "restart" {
            "Restart"
        } else {
            "UpdateVersion"
        };
        let (status, got, message) = condition(req.status.as_ref(), type_)
            .unwrap_or_else(|| panic!("{name}: no {type_} condition"));
        assert_eq!(
            (status, got.as_deref()),
            (api::ConditionStatus::False, Some(*reason)),
            "{name}: {message:?}"
        );
        assert!(
            req.status.as_ref().unwrap().update_plan.is_none(),
            "{name}: no plan"
        );
    }
    let restart = env
        .api::<MSSQLServerOpsRequest>()
        .get("restart")
        .await
        .unwrap();
    assert!(
        condition(restart.status.as_ref(), "Restart")
            .unwrap()
            .2
            .unwrap()
            .contains("not supported yet")
    );
    let events = testkit::eventually("Warning Events for each rejection", WAIT, || async {
        let events = env
            .api::<Event>()
            .list(&ListParams::default())
            .await
            .ok()?
            .items;
        cases
            .iter()
            .all(|(name, _, _, _, reason)| {
                warning_reasons(&events, name).contains(&reason.to_string())
            })
            .then_some(events)
    })
    .await;
    assert!(!events.is_empty());
    for db in ["ms", "new"] {
        let obj = env.api::<MSSQLServer>().get(db).await.unwrap();
        assert!(!paused(obj.status.as_ref()), "{db} untouched");
    }
    assert_eq!(
        env.api::<MSSQLServer>()
            .get("ms")
            .await
            .unwrap()
            .spec
            .version,
        "2022-cu22"
    );
    assert_eq!(env.evictions(), 0);
    let db_writes: u64 = env
        .cluster
        .sim
        .requests()
        .iter()
        .filter(|r| {
            r.user_agent.starts_with("ops-manager/")
                && r.resource == "mssqlservers"
                && r.verb != "get"
                && r.verb != "list"
                && r.verb != "watch"
        })
        .map(|r| r.count)
        .sum();
    assert_eq!(db_writes, 0, "the databases were not written");
    env.stop().await;
}

#[test]
fn if_ready_waits_for_a_ready_database_and_always_proceeds() {
    run(if_ready_body());
}

async fn if_ready_body() {
    let env = Env::start().await;
    create(&env, &mssql("ms", "2022-cu22", None)).await;
    wait_mssql_ready(&env, "ms").await;
    // Make the database not Ready: its pod fails readiness.
    env.api::<Pod>()
        .patch(
            "ms-0",
            &PatchParams::default(),
            &Patch::Merge(
                json!({"metadata": {"annotations": {"sim.kube-sim.dev/ready": "false"}}}),
            ),
        )
        .await
        .unwrap();
    testkit::wait_for_object(
        &env.api::<MSSQLServer>(),
        "ms",
        "not Ready",
        WAIT,
        |db: &MSSQLServer| {
            db.status
                .as_ref()
                .and_then(|s| s.phase)
                .is_some_and(|p| p != api::DatabasePhase::Ready)
        },
    )
    .await;
    msops(&env, "wait", "ms", "2025-cu0", json!({"apply": "IfReady"})).await;
    let req = testkit::wait_for_object(
        &env.api::<MSSQLServerOpsRequest>(),
        "wait",
        "DatabaseReady=False",
        WAIT,
        |r: &MSSQLServerOpsRequest| condition(r.status.as_ref(), "DatabaseReady").is_some(),
    )
    .await;
    let (status, reason, message) = condition(req.status.as_ref(), "DatabaseReady").unwrap();
    assert_eq!(
        (status, reason.as_deref()),
        (api::ConditionStatus::False, Some("DatabaseNotReady"))
    );
    assert!(message.unwrap().contains("apply: IfReady"));
    // It keeps waiting (a few poll intervals) and does not touch the database.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let req = env
        .api::<MSSQLServerOpsRequest>()
        .get("wait")
        .await
        .unwrap();
    assert_eq!(phase(&req), Some(OpsRequestPhase::Pending));
    assert!(!paused(
        env.api::<MSSQLServer>()
            .get("ms")
            .await
            .unwrap()
            .status
            .as_ref()
    ));
    // A Pending request can simply be deleted.
    env.api::<MSSQLServerOpsRequest>()
        .delete("wait", &DeleteParams::default())
        .await
        .unwrap();
    testkit::eventually("request gone", WAIT, || async {
        env.api::<MSSQLServerOpsRequest>()
            .get_opt("wait")
            .await
            .ok()?
            .is_none()
            .then_some(())
    })
    .await;

    msops(&env, "always", "ms", "2025-cu0", json!({"apply": "Always"})).await;
    let req: MSSQLServerOpsRequest =
        wait_phase(&env, "always", OpsRequestPhase::Successful, WAIT).await;
    assert!(condition(req.status.as_ref(), "DatabaseReady").is_none());
    assert_eq!(
        env.api::<MSSQLServer>()
            .get("ms")
            .await
            .unwrap()
            .spec
            .version,
        "2025-cu0"
    );
    env.stop().await;
}

#[test]
fn one_progressing_per_database_and_newer_pending_requests_supersede_older_ones() {
    run(queue_body());
}

async fn queue_body() {
    let env = Env::start().await;
    create(&env, &mssql("ms", "2022-cu19", None)).await;
    wait_mssql_ready(&env, "ms").await;
    msops(&env, "r1", "ms", "2022-cu22", json!({})).await;
    wait_phase::<MSSQLServerOpsRequest>(&env, "r1", OpsRequestPhase::Progressing, WAIT).await;
    for name in ["r2", "r3", "r4"] {
        msops(&env, name, "ms", "2025-cu0", json!({})).await;
    }
    for name in ["r2", "r3"] {
        let r: MSSQLServerOpsRequest = wait_phase(&env, name, OpsRequestPhase::Skipped, WAIT).await;
        let (_, reason, message) = condition(r.status.as_ref(), "Skipped").unwrap();
        assert_eq!(reason.as_deref(), Some("Skipped"));
        let message = message.unwrap();
        assert!(
            message.contains(
                "skipped as demo/r4 is the most updated MSSQLServerOpsRequest of type UpdateVersion"
            ),
            "{message}"
        );
    }
    // r4 waits while r1 runs.
    let seen_pending_while_r1_ran = std::sync::atomic::AtomicBool::new(false);
    let r1: MSSQLServerOpsRequest = testkit::eventually("r1 Successful", WAIT, || {
        let env = &env;
        let seen = &seen_pending_while_r1_ran;
        async move {
            let r1 = env.api::<MSSQLServerOpsRequest>().get("r1").await.ok()?;
            let r4 = env.api::<MSSQLServerOpsRequest>().get("r4").await.ok()?;
            if phase(&r1) == Some(OpsRequestPhase::Progressing) {
                assert_eq!(
                    phase(&r4),
                    Some(OpsRequestPhase::Pending),
                    "r4 must wait while r1 is Progressing"
                );
                seen.store(true, std::sync::atomic::Ordering::Relaxed);
            }
            (phase(&r1) == Some(OpsRequestPhase::Successful)).then_some(r1)
        }
    })
    .await;
    assert!(seen_pending_while_r1_ran.load(std::sync::atomic::Ordering::Relaxed));
    let r4: MSSQLServerOpsRequest = wait_phase(&env, "r4", OpsRequestPhase::Successful, WAIT).await;
    let r1_done =
        &api::conditions::get_condition(r1.status.as_ref().unwrap().conditions(), "Successful")
            .unwrap()
            .last_transition_time;
    let r4_started =
        &api::conditions::get_condition(r4.status.as_ref().unwrap().conditions(), "UpdateVersion")
            .unwrap()
            .last_transition_time;
    assert!(r4_started.0 >= r1_done.0, "r4 started after r1 finished");
    assert_eq!(
        env.api::<MSSQLServer>()
            .get("ms")
            .await
            .unwrap()
            .spec
            .version,
        "2025-cu0"
    );
    env.stop().await;
}

#[test]
fn injected_conflicts_server_errors_and_dropped_watches_do_not_fail_the_request() {
    run(faults_body());
}

async fn faults_body() {
    let env = Env::start().await;
    create(&env, &mssql("ag", "2022-cu22", Some(3))).await;
    wait_mssql_ready(&env, "ag").await;
    let sim = &env.cluster.sim;
    let ops = |verb: &str, code: u16, fraction: f64, seed: u64| FaultSpec {
        verb: Some(verb.into()),
        user_agent: Some("ops-manager/".into()),
        code: Some(code),
        fraction: Some(fraction),
        seed: Some(seed),
        ..FaultSpec::default()
    };
    sim.add_fault(ops("patch", 500, 0.25, 1));
    sim.add_fault(ops("patch", 409, 0.2, 2));
    sim.add_fault(ops("get", 500, 0.15, 3));
    sim.add_fault(FaultSpec {
        verb: Some("create".into()),
        subresource: Some("eviction".into()),
        code: Some(500),
        times: Some(2),
        ..FaultSpec::default()
    });
    // More 429s than the kube client retries by itself (1 + 3 attempts): the ops-manager sees a
    // refused eviction and tries again later instead of failing.
    sim.add_fault(FaultSpec {
        verb: Some("create".into()),
        subresource: Some("eviction".into()),
        code: Some(429),
        times: Some(5),
        ..FaultSpec::default()
    });
    let started = Instant::now();
    msops(&env, "upd", "ag", "2025-cu0", json!({})).await;
    wait_phase::<MSSQLServerOpsRequest>(&env, "upd", OpsRequestPhase::Progressing, WAIT).await;
    for resource in ["pods", "mssqlserveropsrequests", "mssqlservers"] {
        sim.add_fault(FaultSpec {
            resource: Some(resource.into()),
            drop_watches: true,
            ..FaultSpec::default()
        });
    }
    let req: MSSQLServerOpsRequest = wait_phase(
        &env,
        "upd",
        OpsRequestPhase::Successful,
        Duration::from_secs(60),
    )
    .await;
    let applied: Vec<u64> = sim.faults().iter().map(|f| f.applied).collect();
    assert!(
        applied[..4].iter().all(|n| *n > 0),
        "every fault rule fired: {applied:?}"
    );
    assert!(applied[4] > 0, "a watch was dropped: {applied:?}");
    let types = condition_types(req.status.as_ref());
    assert_eq!(
        types
            .iter()
            .filter(|t| t.starts_with("CheckPodRunning--"))
            .count(),
        3
    );
    assert!(
        condition(req.status.as_ref(), "Retrying").is_none(),
        "API errors do not use the retry budget"
    );
    assert_eq!(
        env.api::<MSSQLServer>()
            .get("ag")
            .await
            .unwrap()
            .spec
            .version,
        "2025-cu0"
    );
    eprintln!(
        "MEASURED with faults: request took {:?}; fault hits {applied:?}",
        started.elapsed()
    );
    env.stop().await;
}

/// Issue 20, defect 1: every eviction and pod deletion refused (a persistent 403, as with a
/// chart that lacks the permission) for longer than the request's timeout. The request fails at
/// its timeout naming the step and the error, a Warning Event said what failed meanwhile, and
/// the database is resumed.
#[test]
fn refused_evictions_fail_the_request_at_its_timeout_and_resume_the_database() {
    run(refused_evictions_body());
}

async fn refused_evictions_body() {
    let env = Env::start().await;
    create(&env, &mssql("ag", "2022-cu22", Some(3))).await;
    wait_mssql_ready(&env, "ag").await;
    let uids = |pods: Vec<k8s_openapi::api::core::v1::Pod>| -> Vec<String> {
        pods.iter()
            .map(|p| kube::ResourceExt::uid(p).unwrap_or_default())
            .collect()
    };
    let before = uids(env.pods().await);
    let sim = &env.cluster.sim;
    for (verb, subresource) in [("create", "eviction"), ("delete", "")] {
        sim.add_fault(FaultSpec {
            verb: Some(verb.into()),
            resource: Some("pods".into()),
            subresource: Some(subresource.into()),
            user_agent: Some("ops-manager/".into()),
            code: Some(403),
            message: Some("pods is forbidden: the test refuses it".into()),
            ..FaultSpec::default()
        });
    }
    let started = Instant::now();
    msops(&env, "upd", "ag", "2025-cu0", json!({"timeout": "10s"})).await;
    let req: MSSQLServerOpsRequest = wait_phase(
        &env,
        "upd",
        OpsRequestPhase::Failed,
        Duration::from_secs(40),
    )
    .await;
    let took = started.elapsed();
    let status = req.status.as_ref();
    let failed = status
        .unwrap()
        .conditions()
        .iter()
        .find(|c| c.reason.as_deref() == Some("Failed"))
        .cloned()
        .unwrap();
    assert!(failed.type_.starts_with("EvictPod--"), "{failed:?}");
    let message = failed.message.unwrap_or_default();
    assert!(
        message.contains("timed out after 10s") && message.contains("forbidden"),
        "{message}"
    );
    let events: kube::Api<k8s_openapi::api::events::v1::Event> = env.api();
    let warning = testkit::eventually("an ActionFailed Warning", WAIT, || async {
        events
            .list(&ListParams::default())
            .await
            .ok()?
            .items
            .into_iter()
            .find(|e| e.reason.as_deref() == Some("ActionFailed"))
    })
    .await;
    assert_eq!(warning.type_.as_deref(), Some("Warning"));
    assert!(warning.note.unwrap_or_default().contains("forbidden"));
    wait_resumed(&env, "ag", |d: &MSSQLServer| d.status.as_ref()).await;
    assert_eq!(uids(env.pods().await), before, "no pod was taken down");
    eprintln!("MEASURED refused evictions: Failed {took:?} after the request (timeout 10 s)");
    env.stop().await;
}

#[test]
fn deleting_a_progressing_request_stops_it_and_resumes_the_database() {
    run(delete_body());
}

async fn delete_body() {
    let env = Env::start().await;
    create(&env, &mssql("ag", "2022-cu22", Some(3))).await;
    wait_mssql_ready(&env, "ag").await;
    msops(&env, "upd", "ag", "2025-cu0", json!({})).await;
    let running = testkit::wait_for_object(
        &env.api::<MSSQLServerOpsRequest>(),
        "upd",
        "first eviction recorded",
        WAIT,
        |r: &MSSQLServerOpsRequest| {
            condition_types(r.status.as_ref())
                .iter()
                .any(|t| t.starts_with("EvictPod--"))
        },
    )
    .await;
    assert!(
        running
            .metadata
            .finalizers
            .as_ref()
            .is_some_and(|f| f.iter().any(|f| f == ops_manager::FINALIZER))
    );
    assert!(paused(
        env.api::<MSSQLServer>()
            .get("ag")
            .await
            .unwrap()
            .status
            .as_ref()
    ));
    env.api::<MSSQLServerOpsRequest>()
        .delete("upd", &DeleteParams::default())
        .await
        .unwrap();
    testkit::eventually("request gone", WAIT, || async {
        env.api::<MSSQLServerOpsRequest>()
            .get_opt("upd")
            .await
            .ok()?
            .is_none()
            .then_some(())
    })
    .await;
    let evictions = env.evictions();
    let db = env.api::<MSSQLServer>().get("ag").await.unwrap();
    assert!(
        !paused(db.status.as_ref()),
        "resumed before the request went away"
    );
    assert_eq!(
        db.spec.version, "2022-cu22",
        "the database version is not changed"
    );
    // The provisioner takes over again: the database returns to Ready and no pod is evicted after
    // the request is gone.
    wait_mssql_ready(&env, "ag").await;
    assert_eq!(env.evictions(), evictions);
    assert!(
        (1..3).contains(&evictions),
        "the run stopped before its last pod: {evictions}"
    );
    env.stop().await;
}
