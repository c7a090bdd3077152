//! UpdateVersion of Singlestore (8.7.21 → 8.9.3) against kube-sim with the real provisioner and
//! ops-manager.

mod common;

use std::time::Instant;

use api::Singlestore;
use api::ops::{OpsRequestPhase, SinglestoreOpsRequest};
use common::*;
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::Pod;
use kube::ResourceExt;
use kube::api::ListParams;
use serde_json::json;

#[test]
fn aggregator_leaf_children_then_leaves_then_master_after_a_planned_move() {
    run(aggregator_leaf_children_then_leaves_then_master_after_a_planned_move_body());
}

async fn aggregator_leaf_children_then_leaves_then_master_after_a_planned_move_body() {
    let env = Env::start().await;
    create_license(&env).await;
    create(&env, &singlestore("sdb", "8.7.21", Some((2, 2)))).await;
    wait_sdb_ready(&env, "sdb").await;
    // Every pod labelled by its agent, with KubeDB's values.
    let master = testkit::eventually("a master aggregator and labelled pods", WAIT, || async {
        let pods = env.pods().await;
        let labelled = pods.len() == 4 && pods.iter().all(|p| role(p).is_some());
        let master = pods
            .iter()
            .find(|p| role(p).as_deref() == Some("Master"))?
            .name_any();
        labelled.then_some(master)
    })
    .await;
    let (terminations, termination_watch) = watch_terminations(&env, "sdb");
    let started = Instant::now();
    sdbops(&env, "upd", "sdb", "8.9.3", json!({})).await;
    let req: SinglestoreOpsRequest =
        wait_phase(&env, "upd", OpsRequestPhase::Successful, WAIT).await;
    let took = started.elapsed();
    termination_watch.abort();
    let status = req.status.as_ref();
    let plan = status.unwrap().update_plan.clone().unwrap();
    let child = if master == "sdb-aggregator-0" {
        "sdb-aggregator-1"
    } else {
        "sdb-aggregator-0"
    };
    assert_eq!(
        plan.pods,
        [child, "sdb-leaf-0", "sdb-leaf-1", master.as_str()]
    );
    let terminations = terminations.lock().unwrap().clone();
    assert_eq!(terminations.len(), 4, "{terminations:?}");
    assert!(
        terminations
            .iter()
            .all(|(_, role)| role.as_deref() != Some("Master")),
        "no pod was the master aggregator when it was evicted: {terminations:?}"
    );
    let types = condition_types(status);
    let switchover = format!("SwitchoverPrimary--{master}");
    let at = types
        .iter()
        .position(|t| *t == switchover)
        .unwrap_or_else(|| panic!("{types:?}"));
    assert_eq!(types[at + 1], format!("EvictPod--{master}"), "{types:?}");
    let c = condition(status, &switchover).unwrap();
    assert_eq!(c.0, api::conditions::ConditionStatus::True, "{c:?}");
    let new_master = testkit::eventually("the Master label on another pod", WAIT, || async {
        let pods = env.pods().await;
        let m = pods.iter().find(|p| role(p).as_deref() == Some("Master"))?;
        Some(m.name_any())
    })
    .await;
    assert_ne!(
        new_master, master,
        "the master role moved before the restart"
    );
    assert!(
        plan.images
            .iter()
            .any(|c| c.container == "singlestore" && c.from == SDB_8_7 && c.to == SDB_8_9)
    );
    let restarted: Vec<String> = types
        .iter()
        .filter_map(|t| t.strip_prefix("CheckPodReady--").map(str::to_owned))
        .collect();
    assert_eq!(
        restarted, plan.pods,
        "restarted in the documented order, checking Ready"
    );
    assert_eq!(types.first().map(String::as_str), Some("UpdateVersion"));
    assert_eq!(
        &types[types.len() - 3..],
        ["RestartPods", "UpdateDatabase", "Successful"].map(str::to_owned)
    );
    let db = env.api::<Singlestore>().get("sdb").await.unwrap();
    assert_eq!(db.spec.version, "8.9.3");
    assert!(!paused(db.status.as_ref()));
    for sts in env
        .api::<StatefulSet>()
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
    {
        let spec = sts.spec.unwrap().template.spec.unwrap();
        let image = spec
            .containers
            .iter()
            .find(|c| c.name == "singlestore")
            .and_then(|c| c.image.clone());
        assert_eq!(
            image.as_deref(),
            Some(SDB_8_9),
            "{}",
            sts.metadata.name.unwrap_or_default()
        );
    }
    for pod in env.pods().await {
        assert_eq!(
            running_image(&pod, "singlestore").as_deref(),
            Some(SDB_8_9),
            "{}",
            pod.name_any()
        );
    }
    assert_eq!(env.evictions(), 4);
    eprintln!(
        "MEASURED SingleStore 2 aggregators + 2 leaves: request took {took:?}; ops-manager writes {}",
        env.ops_manager_writes()
    );
    env.stop().await;
}

#[test]
fn standalone_8_7_21_to_8_9_3() {
    run(standalone_8_7_21_to_8_9_3_body());
}

async fn standalone_8_7_21_to_8_9_3_body() {
    let env = Env::start().await;
    create_license(&env).await;
    create(&env, &singlestore("one", "8.7.21", None)).await;
    wait_sdb_ready(&env, "one").await;
    let before = env.pods().await;
    sdbops(&env, "upd", "one", "8.9.3", json!({})).await;
    let req: SinglestoreOpsRequest =
        wait_phase(&env, "upd", OpsRequestPhase::Successful, WAIT).await;
    let status = req.status.as_ref();
    let plan = status.unwrap().update_plan.clone().unwrap();
    let types = condition_types(status);
    // Restart the pod only if some image it runs changes (the catalog's 8.7.21 and 8.9.3 share the
    // cluster-in-a-box image).
    let sts = env.api::<StatefulSet>().get("one").await.unwrap();
    let spec = sts.spec.unwrap().template.spec.unwrap();
    let changed = !plan.images.is_empty();
    if changed {
        assert_eq!(plan.pods, ["one-0"]);
        assert!(
            types.contains(&"CheckPodReady--one-0".to_owned()),
            "{types:?}"
        );
        for c in &plan.images {
            let now = spec
                .containers
                .iter()
                .chain(spec.init_containers.iter().flatten())
                .find(|x| x.name == c.container);
            assert_eq!(
                now.and_then(|x| x.image.clone()).as_deref(),
                Some(c.to.as_str())
            );
        }
    } else {
        assert!(plan.pods.is_empty());
        assert_eq!(
            before[0].uid(),
            env.pods().await[0].uid(),
            "nothing to restart"
        );
    }
    assert_eq!(
        types
            .iter()
            .filter(|t| !t.contains("--"))
            .cloned()
            .collect::<Vec<_>>(),
        [
            "UpdateVersion",
            "DatabasePauseSucceeded",
            "UpdatePetSets",
            "RestartPods",
            "UpdateDatabase",
            "Successful"
        ]
    );
    let db = env.api::<Singlestore>().get("one").await.unwrap();
    assert_eq!(db.spec.version, "8.9.3");
    assert!(!paused(db.status.as_ref()));
    env.stop().await;
}

/// Creates database `name` on the master aggregator of Singlestore `db`, over the MySQL protocol
/// at the pod's IP (kube-sim's simulated node), as root with the auth secret's password: its
/// partitions are placed on the leaves.
async fn create_database(env: &Env, db: &str, master: &str, name: &str) {
    use mysql_async::prelude::Queryable;
    // The master's agent registers the leaves: wait until every leaf pod is Ready, which its
    // agent reports only once the master lists it.
    testkit::eventually("the leaves added to the cluster", WAIT, || async {
        let pods = env.pods().await;
        let leaves: Vec<&Pod> = pods
            .iter()
            .filter(|p| {
                p.metadata
                    .name
                    .as_deref()
                    .is_some_and(|n| n.contains("-leaf-"))
            })
            .collect();
        (!leaves.is_empty() && leaves.iter().all(|p| is_ready(p))).then_some(())
    })
    .await;
    let pod = env.api::<Pod>().get(master).await.unwrap();
    let ip = pod.status.unwrap().pod_ip.unwrap();
    let auth = env
        .api::<k8s_openapi::api::core::v1::Secret>()
        .get(&format!("{db}-auth"))
        .await
        .unwrap();
    let password = String::from_utf8(auth.data.unwrap()["password"].0.clone()).unwrap();
    let opts = mysql_async::OptsBuilder::default()
        .ip_or_hostname(ip)
        .tcp_port(3306)
        .user(Some("root"))
        .pass(Some(password))
        .prefer_socket(false);
    let mut conn = mysql_async::Conn::new(opts).await.unwrap();
    conn.query_drop(format!("CREATE DATABASE {name}"))
        .await
        .unwrap();
    conn.disconnect().await.unwrap();
}

/// The seed's check between restarts: a leaf whose partitions do not come back online after its
/// restart (kube-sim's fault on its PVC) is not Ready, so the next pod is not restarted; the
/// request fails at its timeout naming the wait, and the database is resumed.
#[test]
fn a_leaf_whose_partitions_do_not_recover_blocks_the_next_restart() {
    run(a_leaf_whose_partitions_do_not_recover_body());
}

async fn a_leaf_whose_partitions_do_not_recover_body() {
    let env = Env::start().await;
    create_license(&env).await;
    create(&env, &singlestore("sdb", "8.7.21", Some((1, 2)))).await;
    wait_sdb_ready(&env, "sdb").await;
    testkit::eventually("every pod labelled", WAIT, || async {
        let pods = env.pods().await;
        (pods.len() == 3 && pods.iter().all(|p| role(p).is_some())).then_some(())
    })
    .await;
    create_database(&env, "sdb", "sdb-aggregator-0", "app").await;
    env.api::<k8s_openapi::api::core::v1::PersistentVolumeClaim>()
        .patch(
            "data-sdb-leaf-0",
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(json!({"metadata": {"annotations": {
                kube_sim::db::singlestore::server::STALLED_ANNOTATION: "true"
            }}})),
        )
        .await
        .unwrap();
    sdbops(&env, "upd", "sdb", "8.9.3", json!({"timeout": "15s"})).await;
    let blocked = testkit::eventually("the check step names the wait", WAIT, || async {
        let r: SinglestoreOpsRequest = env.api().get("upd").await.ok()?;
        let c = condition(r.status.as_ref(), "CheckPodReady--sdb-leaf-0")?;
        c.2.filter(|m| m.contains("partition"))
    })
    .await;
    assert!(blocked.contains("sdb-leaf-0"), "{blocked}");
    let req: SinglestoreOpsRequest = wait_phase(&env, "upd", OpsRequestPhase::Failed, WAIT).await;
    let status = req.status.as_ref();
    let evicted: Vec<String> = condition_types(status)
        .into_iter()
        .filter_map(|t| t.strip_prefix("EvictPod--").map(str::to_owned))
        .collect();
    assert_eq!(
        evicted,
        ["sdb-leaf-0"],
        "no restart after the leaf that did not recover"
    );
    let failed = condition(status, "CheckPodReady--sdb-leaf-0").unwrap();
    assert!(
        failed.2.as_deref().unwrap().contains("timed out after 15s"),
        "{failed:?}"
    );
    let db: Singlestore = wait_resumed(&env, "sdb", |d: &Singlestore| d.status.as_ref()).await;
    assert_eq!(db.spec.version, "8.7.21", "the version is not changed");
    env.stop().await;
}
