//! UpdateVersion of Singlestore (8.7.21 → 8.9.3) against kube-sim with the real provisioner and
//! ops-manager.

mod common;

use std::time::Instant;

use api::Singlestore;
use api::ops::{OpsRequestPhase, SinglestoreOpsRequest};
use common::*;
use k8s_openapi::api::apps::v1::StatefulSet;
use kube::ResourceExt;
use kube::api::ListParams;
use serde_json::json;

#[test]
fn aggregator_leaf_children_then_master_then_leaves() {
    run(aggregator_leaf_children_then_master_then_leaves_body());
}

async fn aggregator_leaf_children_then_master_then_leaves_body() {
    let env = Env::start().await;
    create_license(&env).await;
    create(&env, &singlestore("sdb", "8.7.21", Some((2, 2)))).await;
    wait_sdb_ready(&env, "sdb").await;
    let master = testkit::eventually("a master aggregator", WAIT, || async {
        let pods = env.pods().await;
        pods.iter()
            .find(|p| role(p).as_deref() == Some("master"))
            .map(ResourceExt::name_any)
    })
    .await;
    let started = Instant::now();
    sdbops(&env, "upd", "sdb", "8.9.3", json!({})).await;
    let req: SinglestoreOpsRequest =
        wait_phase(&env, "upd", OpsRequestPhase::Successful, WAIT).await;
    let took = started.elapsed();
    let status = req.status.as_ref();
    let plan = status.unwrap().update_plan.clone().unwrap();
    let child = if master == "sdb-aggregator-0" {
        "sdb-aggregator-1"
    } else {
        "sdb-aggregator-0"
    };
    assert_eq!(
        plan.pods,
        [child, master.as_str(), "sdb-leaf-0", "sdb-leaf-1"]
    );
    assert!(
        plan.images
            .iter()
            .any(|c| c.container == "singlestore" && c.from == SDB_8_7 && c.to == SDB_8_9)
    );
    let types = condition_types(status);
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
