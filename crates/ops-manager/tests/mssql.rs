//! UpdateVersion of MSSQLServer against kube-sim with the real provisioner and ops-manager.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use api::MSSQLServer;
use api::ops::{MSSQLServerOpsRequest, OpsRequestPhase};
use common::*;
use futures::StreamExt;
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::Pod;
use kube::ResourceExt;
use kube::api::{DeleteParams, ListParams};
use kube::runtime::watcher;
use serde_json::json;

#[test]
fn standalone_2022_cu22_to_2025_cu0() {
    run(standalone_2022_cu22_to_2025_cu0_body());
}

async fn standalone_2022_cu22_to_2025_cu0_body() {
    let env = Env::start().await;
    create(&env, &mssql("ms", "2022-cu22", None)).await;
    wait_mssql_ready(&env, "ms").await;
    let writes_before = env.ops_manager_writes();
    let started = Instant::now();
    msops(&env, "upd", "ms", "2025-cu0", json!({"apply": "IfReady"})).await;
    let req: MSSQLServerOpsRequest =
        wait_phase(&env, "upd", OpsRequestPhase::Successful, WAIT).await;
    let took = started.elapsed();
    let status = req.status.as_ref();
    assert_eq!(
        condition_types(status),
        [
            "UpdateVersion",
            "DatabasePauseSucceeded",
            "UpdatePetSets",
            "GetPod--ms-0",
            "EvictPod--ms-0",
            "CheckPodRunning--ms-0",
            "RestartPods",
            "UpdateDatabase",
            "Successful",
        ]
    );
    let plan = status.unwrap().update_plan.clone().unwrap();
    assert_eq!(plan.pods, ["ms-0"]);
    assert!(
        plan.images
            .iter()
            .any(|c| c.container == "mssql" && c.from == MSSQL_2022 && c.to == MSSQL_2025)
    );

    let db = env.api::<MSSQLServer>().get("ms").await.unwrap();
    assert_eq!(db.spec.version, "2025-cu0");
    assert!(!paused(db.status.as_ref()), "database resumed");
    let sts = env.api::<StatefulSet>().get("ms").await.unwrap();
    let container = |name: &str| {
        sts.spec
            .as_ref()
            .unwrap()
            .template
            .spec
            .as_ref()
            .unwrap()
            .containers
            .iter()
            .find(|c| c.name == name)
            .cloned()
    };
    assert_eq!(
        container("mssql").unwrap().image.as_deref(),
        Some(MSSQL_2025)
    );
    let pod = env.api::<Pod>().get("ms-0").await.unwrap();
    assert_eq!(pod_image(&pod, "mssql").as_deref(), Some(MSSQL_2025));
    assert_eq!(running_image(&pod, "mssql").as_deref(), Some(MSSQL_2025));
    assert_eq!(env.evictions(), 1);
    // The finalizer is gone once the request is over.
    testkit::eventually("finalizer removed", WAIT, || async {
        let r = env.api::<MSSQLServerOpsRequest>().get("upd").await.ok()?;
        r.finalizers().is_empty().then_some(())
    })
    .await;
    let mut text = Vec::new();
    prometheus::Encoder::encode(
        &prometheus::TextEncoder::new(),
        &env.registry.gather(),
        &mut text,
    )
    .unwrap();
    let text = String::from_utf8(text).unwrap();
    let value = |name: &str, labels: &[(&str, &str)]| -> f64 {
        text.lines()
            .filter(|l| l.starts_with(&format!("{name}{{")) || l.starts_with(&format!("{name} ")))
            .filter(|l| {
                labels
                    .iter()
                    .all(|(k, v)| l.contains(&format!("{k}=\"{v}\"")))
            })
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    };
    let kind = ("kind", "MSSQLServer");
    assert_eq!(
        value(
            "kubedb_ops_manager_ops_requests_total",
            &[kind, ("type", "UpdateVersion"), ("result", "Successful")]
        ),
        1.0
    );
    assert_eq!(
        value(
            "kubedb_ops_manager_ops_request_duration_seconds_count",
            &[kind, ("type", "UpdateVersion")]
        ),
        1.0
    );
    assert_eq!(
        value("kubedb_ops_manager_ops_pods_restarted_total", &[kind]),
        1.0
    );
    assert_eq!(
        value(
            "kubedb_ops_manager_ops_step_duration_seconds_count",
            &[kind, ("step", "restart_pod")]
        ),
        1.0
    );
    assert_eq!(
        value("kubedb_ops_manager_ops_requests_in_progress", &[kind]),
        0.0
    );
    let mut by_kind: BTreeMap<String, u64> = BTreeMap::new();
    for r in env.cluster.sim.requests() {
        if r.user_agent.starts_with("ops-manager/")
            && !matches!(r.verb.as_str(), "get" | "list" | "watch")
        {
            *by_kind
                .entry(format!("{} {}/{}", r.verb, r.resource, r.subresource))
                .or_default() += r.count;
        }
    }
    let reads: u64 = env
        .cluster
        .sim
        .requests()
        .iter()
        .filter(|r| {
            r.user_agent.starts_with("ops-manager/") && matches!(r.verb.as_str(), "get" | "list")
        })
        .map(|r| r.count)
        .sum();
    eprintln!(
        "MEASURED standalone writes by verb/resource: {by_kind:?}; reads (get+list, whole process incl. start-up) {reads}"
    );
    eprintln!(
        "MEASURED standalone: request took {took:?}; ops-manager writes {}",
        env.ops_manager_writes() - writes_before
    );
    env.stop().await;
}

/// Records, from a watch of the database's pods, the most members unavailable at once.
fn watch_unavailable(
    env: &Env,
    members: usize,
) -> (Arc<Mutex<usize>>, tokio::task::JoinHandle<()>) {
    let worst = Arc::new(Mutex::new(0usize));
    let out = worst.clone();
    let api = env.api::<Pod>();
    let task = tokio::spawn(async move {
        let mut ready: BTreeMap<String, bool> = BTreeMap::new();
        let mut initialized = false;
        let stream = watcher(
            api,
            watcher::Config::default().labels("app.kubernetes.io/instance=ag"),
        );
        futures::pin_mut!(stream);
        while let Some(Ok(event)) = stream.next().await {
            match event {
                watcher::Event::Apply(p) | watcher::Event::InitApply(p) => {
                    ready.insert(
                        p.name_any(),
                        is_ready(&p) && p.metadata.deletion_timestamp.is_none(),
                    );
                }
                watcher::Event::Delete(p) => {
                    ready.insert(p.name_any(), false);
                }
                watcher::Event::InitDone => initialized = true,
                watcher::Event::Init => {}
            }
            if !initialized {
                continue;
            }
            let up = ready.values().filter(|r| **r).count();
            let down = members.saturating_sub(up);
            let mut w = out.lock().unwrap();
            *w = (*w).max(down);
        }
    });
    (worst, task)
}

#[test]
fn availability_group_restarts_one_at_a_time_primary_last() {
    run(availability_group_restarts_one_at_a_time_primary_last_body());
}

async fn availability_group_restarts_one_at_a_time_primary_last_body() {
    let mut env = Env::start().await;
    create(&env, &mssql("ag", "2022-cu22", Some(3))).await;
    wait_mssql_ready(&env, "ag").await;
    // Put the primary on a non-zero ordinal, so that "primary last" differs from ordinal order:
    // if the agents elected ag-0, delete it and let them fail over.
    let first = testkit::eventually("a primary", WAIT, || async {
        let pods = env.pods().await;
        pods.iter()
            .find(|p| role(p).as_deref() == Some("primary"))
            .map(ResourceExt::name_any)
    })
    .await;
    if first == "ag-0" {
        env.api::<Pod>()
            .delete("ag-0", &DeleteParams::default())
            .await
            .unwrap();
    }
    let primary = testkit::eventually("a primary on a non-zero ordinal", WAIT, || async {
        let pods = env.pods().await;
        let all_ready = pods.len() == 3 && pods.iter().all(is_ready);
        let primary = pods
            .iter()
            .find(|p| role(p).as_deref() == Some("primary"))?
            .name_any();
        (all_ready && primary != "ag-0" && pods.iter().all(|p| role(p).is_some()))
            .then_some(primary)
    })
    .await;
    wait_mssql_ready(&env, "ag").await;

    let (worst, watch) = watch_unavailable(&env, 3);
    let (terminations, termination_watch) = watch_terminations(&env, "ag");
    let started = Instant::now();
    msops(&env, "upd", "ag", "2025-cu0", json!({})).await;
    let req: MSSQLServerOpsRequest = wait_phase(
        &env,
        "upd",
        OpsRequestPhase::Successful,
        Duration::from_secs(60),
    )
    .await;
    let took = started.elapsed();
    watch.abort();
    termination_watch.abort();
    let terminations = terminations.lock().unwrap().clone();
    assert_eq!(terminations.len(), 3, "{terminations:?}");
    assert!(
        terminations
            .iter()
            .all(|(_, role)| role.as_deref() == Some("secondary")),
        "no pod was primary when it was evicted: {terminations:?}"
    );

    let status = req.status.as_ref().unwrap();
    let plan = status.update_plan.clone().unwrap();
    assert_eq!(plan.pods.last(), Some(&primary), "primary last in the plan");
    let evicted: Vec<String> = condition_types(Some(status))
        .into_iter()
        .filter_map(|t| t.strip_prefix("EvictPod--").map(str::to_owned))
        .collect();
    assert_eq!(evicted.len(), 3);
    assert_eq!(evicted.last(), Some(&primary), "the primary goes last");
    let secondaries: Vec<&String> = evicted.iter().take(2).collect();
    let mut sorted = secondaries.clone();
    sorted.sort();
    assert_eq!(secondaries, sorted, "secondaries in ordinal order");
    // One pod at a time: each pod's triplet completes before the next pod starts.
    let types = condition_types(Some(status));
    for pod in &evicted {
        let mut i = types
            .iter()
            .position(|t| t == &format!("GetPod--{pod}"))
            .unwrap();
        if pod == &primary {
            // The agents hand the role over before the old primary is evicted.
            i += 1;
            assert_eq!(types[i], format!("SwitchoverPrimary--{pod}"));
            let c = condition(Some(status), &types[i]).unwrap();
            assert_eq!(c.0, api::conditions::ConditionStatus::True, "{c:?}");
        }
        assert_eq!(types[i + 1], format!("EvictPod--{pod}"));
        assert_eq!(types[i + 2], format!("CheckPodRunning--{pod}"));
    }
    assert_eq!(
        *worst.lock().unwrap(),
        1,
        "never more than one member unavailable"
    );
    let pods = env.pods().await;
    assert!(
        pods.iter()
            .all(|p| running_image(p, "mssql").as_deref() == Some(MSSQL_2025))
    );
    let new_primary = pods
        .iter()
        .find(|p| role(p).as_deref() == Some("primary"))
        .unwrap()
        .name_any();
    assert_ne!(new_primary, primary, "the role moved off the old primary");
    assert_eq!(
        env.disruptions(),
        3,
        "every pod taken down exactly once (no PDB refusal needed)"
    );
    let db = env.api::<MSSQLServer>().get("ag").await.unwrap();
    assert_eq!(db.spec.version, "2025-cu0");
    assert!(!paused(db.status.as_ref()));
    // One EvictPod Event per pod, each `related` to its pod (not one series that keeps the
    // first pod's message).
    let events: kube::Api<k8s_openapi::api::events::v1::Event> = env.api();
    let evicted: BTreeSet<String> =
        testkit::eventually("an EvictPod Event per pod", WAIT, || async {
            let list = events.list(&ListParams::default()).await.ok()?;
            let pods: BTreeSet<String> = list
                .items
                .iter()
                .filter(|e| e.reason.as_deref() == Some("EvictPod"))
                .filter(|e| e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some("upd"))
                .filter_map(|e| e.related.as_ref()?.name.clone())
                .collect();
            (pods.len() == 3).then_some(pods)
        })
        .await;
    assert_eq!(
        evicted,
        BTreeSet::from(["ag-0".to_owned(), "ag-1".to_owned(), "ag-2".to_owned()])
    );
    eprintln!(
        "MEASURED AG of 3: request took {took:?}; pods taken down {}",
        env.disruptions()
    );
    env.stop_ops_manager().await;
    env.stop().await;
}

#[test]
fn restarted_ops_manager_finishes_without_evicting_twice() {
    run(restarted_ops_manager_finishes_without_evicting_twice_body());
}

async fn restarted_ops_manager_finishes_without_evicting_twice_body() {
    let mut env = Env::start().await;
    create(&env, &mssql("ag", "2022-cu22", Some(3))).await;
    wait_mssql_ready(&env, "ag").await;
    let uids_before: BTreeMap<String, String> = env
        .pods()
        .await
        .iter()
        .map(|p| (p.name_any(), p.uid().unwrap()))
        .collect();
    msops(&env, "upd", "ag", "2025-cu0", json!({})).await;
    // Stop right after the second eviction.
    testkit::eventually("second eviction", WAIT, || async {
        (env.disruptions() >= 2).then_some(())
    })
    .await;
    env.stop_ops_manager().await;
    let evictions_at_stop = env.disruptions();
    env.start_ops_manager().await;
    let req: MSSQLServerOpsRequest =
        wait_phase(&env, "upd", OpsRequestPhase::Successful, WAIT).await;
    assert_eq!(evictions_at_stop, 2);
    assert_eq!(
        env.disruptions(),
        3,
        "three pods, three pods taken down: none twice"
    );
    let status = req.status.as_ref();
    assert_eq!(
        condition_types(status)
            .iter()
            .filter(|t| t.starts_with("EvictPod--"))
            .count(),
        3
    );
    // Each pod was replaced exactly once.
    let pods = env.pods().await;
    for p in &pods {
        assert_ne!(
            Some(&p.uid().unwrap()),
            uids_before.get(&p.name_any()),
            "{} was restarted",
            p.name_any()
        );
        assert_eq!(running_image(p, "mssql").as_deref(), Some(MSSQL_2025));
    }
    env.stop().await;
}

#[test]
fn unpullable_target_image_fails_the_request_and_resumes_the_database() {
    run(unpullable_target_image_fails_the_request_and_resumes_the_database_body());
}

async fn unpullable_target_image_fails_the_request_and_resumes_the_database_body() {
    let mut opts = sim_options();
    opts.unpullable_images = vec!["mcr.microsoft.com/mssql/server:2025-*".into()];
    let env = Env::start_with(opts).await;
    create(&env, &mssql("ag", "2022-cu22", Some(3))).await;
    wait_mssql_ready(&env, "ag").await;
    let uids_before: BTreeMap<String, String> = env
        .pods()
        .await
        .iter()
        .map(|p| (p.name_any(), p.uid().unwrap()))
        .collect();
    let started = Instant::now();
    msops(&env, "upd", "ag", "2025-cu0", json!({"timeout": "30s"})).await;
    let req: MSSQLServerOpsRequest = wait_phase(
        &env,
        "upd",
        OpsRequestPhase::Failed,
        Duration::from_secs(40),
    )
    .await;
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "failed within its timeout"
    );
    let status = req.status.as_ref().unwrap();
    let plan = status.update_plan.clone().unwrap();
    let first = plan.pods[0].clone();
    let (s, reason, message) =
        condition(Some(status), &format!("CheckPodRunning--{first}")).unwrap();
    assert_eq!(s, api::ConditionStatus::False);
    assert_eq!(reason.as_deref(), Some("Failed"));
    let message = message.unwrap();
    assert!(
        message.contains(&first) && message.contains("ImagePullBackOff"),
        "{message}"
    );
    assert!(
        condition(Some(status), "Retrying").is_some(),
        "maxRetries 1 retried once"
    );
    testkit::eventually("database resumed", WAIT, || async {
        let db = env.api::<MSSQLServer>().get("ag").await.ok()?;
        (!paused(db.status.as_ref())).then_some(())
    })
    .await;
    let pods = env.pods().await;
    let touched: BTreeSet<String> = pods
        .iter()
        .filter(|p| uids_before.get(&p.name_any()) != p.uid().as_ref())
        .map(ResourceExt::name_any)
        .collect();
    assert_eq!(
        touched,
        BTreeSet::from([first.clone()]),
        "only the first pod was touched"
    );
    assert_eq!(env.evictions(), 1);

    // The templates stay at the target after the failure, even once the provisioner has
    // reconciled the resumed database (proved by it recreating a deleted Service), so the
    // updated pod never falls back to the old version and a new request can finish the job.
    let services = env.api::<k8s_openapi::api::core::v1::Service>();
    let old_uid = services.get("ag").await.unwrap().uid();
    services.delete("ag", &Default::default()).await.unwrap();
    testkit::eventually("the provisioner to recreate the Service", WAIT, || async {
        let svc = services.get_opt("ag").await.ok()??;
        (svc.uid() != old_uid).then_some(())
    })
    .await;
    let sts = env.api::<StatefulSet>().get("ag").await.unwrap();
    assert_eq!(
        sts.annotations()
            .get(api::names::TARGET_VERSION_ANNOTATION)
            .map(String::as_str),
        Some("2025-cu0")
    );
    let image = sts.spec.unwrap().template.spec.unwrap().containers[0]
        .image
        .clone();
    assert_eq!(
        image.as_deref(),
        Some("mcr.microsoft.com/mssql/server:2025-RTM-ubuntu-22.04"),
        "the template must stay at the target after a failed update"
    );
    let db = env.api::<MSSQLServer>().get("ag").await.unwrap();
    assert_eq!(
        db.spec.version, "2022-cu22",
        "spec.version moves only on success"
    );
    env.stop().await;
}

#[test]
fn a_replica_that_does_not_resynchronize_blocks_the_next_restart_until_the_timeout() {
    run(a_replica_that_does_not_resynchronize_body());
}

async fn a_replica_that_does_not_resynchronize_body() {
    let mut env = Env::start().await;
    create(&env, &mssql("ag", "2022-cu22", Some(3))).await;
    wait_mssql_ready(&env, "ag").await;
    let pods = testkit::eventually("every pod labelled", WAIT, || async {
        let pods = env.pods().await;
        (pods.len() == 3 && pods.iter().all(|p| role(p).is_some())).then_some(pods)
    })
    .await;
    // The first pod the plan restarts: the lowest-ordinal secondary. From its next start on,
    // its data never catches up (kube-sim's fault annotation on its PVC).
    let first = pods
        .iter()
        .filter(|p| role(p).as_deref() == Some("secondary"))
        .map(ResourceExt::name_any)
        .min()
        .unwrap();
    let claims = env.api::<k8s_openapi::api::core::v1::PersistentVolumeClaim>();
    claims
        .patch(
            &format!("data-{first}"),
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(json!({"metadata": {"annotations": {
                kube_sim::db::mssql::server::STALLED_ANNOTATION: "true"
            }}})),
        )
        .await
        .unwrap();

    msops(&env, "upd", "ag", "2025-cu0", json!({"timeout": "20s"})).await;
    let blocked = testkit::eventually("the check step names the wait", WAIT, || async {
        let r: MSSQLServerOpsRequest = env.api().get("upd").await.ok()?;
        let c = condition(r.status.as_ref(), &format!("CheckPodRunning--{first}"))?;
        c.2.filter(|m| m.contains("SYNCHRONIZED"))
    })
    .await;
    assert!(blocked.contains(&first), "{blocked}");
    let req: MSSQLServerOpsRequest = wait_phase(
        &env,
        "upd",
        OpsRequestPhase::Failed,
        Duration::from_secs(60),
    )
    .await;
    let status = req.status.as_ref();
    let evicted: Vec<String> = condition_types(status)
        .into_iter()
        .filter_map(|t| t.strip_prefix("EvictPod--").map(str::to_owned))
        .collect();
    assert_eq!(
        evicted,
        std::slice::from_ref(&first),
        "no restart after the stalled one"
    );
    assert_eq!(env.evictions(), 1);
    let failed = condition(status, &format!("CheckPodRunning--{first}")).unwrap();
    assert!(
        failed.2.as_deref().unwrap().contains("timed out after 20s"),
        "{failed:?}"
    );
    let db: MSSQLServer = wait_resumed(&env, "ag", |d: &MSSQLServer| d.status.as_ref()).await;
    assert_eq!(db.spec.version, "2022-cu22", "the version is not changed");
    // The mixed state is shown: one pod on 2025-cu0, the others on 2022-cu22 (issue 20, 7).
    let db = testkit::wait_for_object(
        &env.api::<MSSQLServer>(),
        "ag",
        "VersionUpdateIncomplete",
        WAIT,
        |db: &MSSQLServer| {
            db.status.as_ref().is_some_and(|s| {
                s.conditions()
                    .iter()
                    .any(|c| c.type_ == "VersionUpdateIncomplete")
            })
        },
    )
    .await;
    let incomplete = db
        .status
        .as_ref()
        .unwrap()
        .conditions()
        .iter()
        .find(|c| c.type_ == "VersionUpdateIncomplete")
        .unwrap()
        .message
        .clone()
        .unwrap_or_default();
    assert!(
        incomplete.contains("2025-cu0") && incomplete.contains("2022-cu22"),
        "{incomplete}"
    );
    env.stop_ops_manager().await;
    env.stop().await;
}

#[test]
fn deleting_the_primary_promotes_a_synchronized_secondary_and_the_old_primary_rejoins() {
    run(deleting_the_primary_body());
}

async fn deleting_the_primary_body() {
    let env = Env::start().await;
    create(&env, &mssql("ag", "2022-cu22", Some(3))).await;
    wait_mssql_ready(&env, "ag").await;
    let (old, old_uid) = testkit::eventually("a labelled, Ready AG", WAIT, || async {
        let pods = env.pods().await;
        let all = pods.len() == 3 && pods.iter().all(|p| is_ready(p) && role(p).is_some());
        let primary = pods
            .iter()
            .find(|p| role(p).as_deref() == Some("primary"))?;
        all.then(|| (primary.name_any(), primary.uid().unwrap()))
    })
    .await;
    let deleted_at = Instant::now();
    env.api::<Pod>()
        .delete(&old, &DeleteParams::default())
        .await
        .unwrap();
    let new = testkit::eventually("another pod primary", WAIT, || async {
        let pods = env.pods().await;
        pods.iter()
            .find(|p| role(p).as_deref() == Some("primary") && is_ready(p) && p.name_any() != old)
            .map(ResourceExt::name_any)
    })
    .await;
    let took = deleted_at.elapsed();
    // The old primary's pod comes back on its volume and rejoins as a synchronized secondary.
    testkit::eventually(
        "the old primary back as a Ready secondary",
        WAIT,
        || async {
            let pods = env.pods().await;
            let back = pods.iter().find(|p| p.name_any() == old)?;
            let primaries = pods
                .iter()
                .filter(|p| role(p).as_deref() == Some("primary"))
                .count();
            (back.uid().as_deref() != Some(old_uid.as_str())
                && role(back).as_deref() == Some("secondary")
                && is_ready(back)
                && primaries == 1)
                .then_some(())
        },
    )
    .await;
    // The new primary's agent records the failover on the database.
    let events: kube::Api<k8s_openapi::api::events::v1::Event> = env.api();
    let note = testkit::eventually("a Failover Event on the database", WAIT, || async {
        let list = events.list(&ListParams::default()).await.ok()?;
        list.items
            .into_iter()
            .find(|e| {
                e.reason.as_deref() == Some("Failover")
                    && e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some("ag")
            })
            .and_then(|e| e.note)
    })
    .await;
    assert!(note.contains(&new), "{note}");
    // One availability group, created once, in the simulated SQL Servers.
    let created = env
        .cluster
        .sim
        .state()
        .sql_servers
        .world()
        .ags_created
        .clone();
    assert_eq!(
        created.values().copied().collect::<Vec<_>>(),
        [1],
        "{created:?}"
    );
    eprintln!("MEASURED failover after deleting the primary {old}: {new} primary after {took:?}");
    env.stop().await;
}

/// What goes wrong in the middle of a switchover.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Interrupt {
    /// The ops-manager stops and starts again.
    OpsManager,
    /// The primary's agent is SIGKILLed: no stop round, no handover write; the Lease still
    /// names it.
    PrimaryAgent,
}

#[test]
fn an_ops_manager_restarted_mid_switchover_evicts_each_pod_once() {
    run(mid_switchover(Interrupt::OpsManager));
}

#[test]
fn killing_the_primarys_agent_mid_switchover_evicts_each_pod_once() {
    run(mid_switchover(Interrupt::PrimaryAgent));
}

async fn mid_switchover(interrupt: Interrupt) {
    let mut env = Env::start().await;
    create(&env, &mssql("ag", "2022-cu22", Some(3))).await;
    wait_mssql_ready(&env, "ag").await;
    msops(&env, "upd", "ag", "2025-cu0", json!({})).await;
    // Seen while it is still Unknown: the agents are handing over right now.
    let switchover = testkit::eventually("the switchover under way", WAIT, || async {
        let r: MSSQLServerOpsRequest = env.api().get("upd").await.ok()?;
        condition_types(r.status.as_ref()).into_iter().find(|t| {
            t.starts_with("SwitchoverPrimary--")
                && condition(r.status.as_ref(), t)
                    .is_some_and(|c| c.0 == api::conditions::ConditionStatus::Unknown)
        })
    })
    .await;
    let primary = switchover
        .trim_start_matches("SwitchoverPrimary--")
        .to_owned();
    match interrupt {
        Interrupt::OpsManager => {
            env.stop_ops_manager().await;
            assert_eq!(
                env.disruptions(),
                2,
                "stopped before the primary is taken down"
            );
            env.start_ops_manager().await;
        }
        Interrupt::PrimaryAgent => {
            let kubeconfig = env.cluster.sim.kubeconfig_path();
            let pids = testkit::db_agent_pids(kubeconfig, Some(&primary));
            assert_eq!(pids.len(), 1, "the primary's agent process: {pids:?}");
            let killed = std::process::Command::new("kill")
                .args(["-KILL", &pids[0].to_string()])
                .status()
                .unwrap();
            assert!(killed.success());
        }
    }
    let req: MSSQLServerOpsRequest =
        wait_phase(&env, "upd", OpsRequestPhase::Successful, WAIT).await;
    assert_eq!(
        env.disruptions(),
        3,
        "three pods, three pods taken down: none twice"
    );
    // The switchover finished or, for a killed agent, possibly timed out into the eviction;
    // either way the condition says which.
    let c = condition(req.status.as_ref(), &switchover).unwrap();
    match interrupt {
        Interrupt::OpsManager => {
            assert_eq!(c.0, api::conditions::ConditionStatus::True, "{c:?}");
        }
        Interrupt::PrimaryAgent => {
            assert_ne!(c.0, api::conditions::ConditionStatus::Unknown, "{c:?}");
        }
    }
    let pods = env.pods().await;
    let primaries: Vec<String> = pods
        .iter()
        .filter(|p| role(p).as_deref() == Some("primary"))
        .map(|p| p.name_any())
        .collect();
    assert_eq!(primaries.len(), 1, "{primaries:?}");
    assert!(
        pods.iter()
            .all(|p| running_image(p, "mssql").as_deref() == Some(MSSQL_2025))
    );
    eprintln!("MEASURED {interrupt:?} interrupted mid-switchover: switchover condition {c:?}");
    env.stop_ops_manager().await;
    env.stop().await;
}
