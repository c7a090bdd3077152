//! Idempotency: a converged database causes no writes.

mod common;

use std::time::{Duration, Instant};

use api::{DatabasePhase, MSSQLServer, Singlestore};
use common::*;

fn writes_by_key(env: &Env) -> std::collections::BTreeMap<String, u64> {
    env.cluster
        .sim
        .requests()
        .into_iter()
        .filter(|r| r.user_agent.starts_with("provisioner/"))
        .filter(|r| !matches!(r.verb.as_str(), "get" | "list" | "watch"))
        .map(|r| {
            (
                format!(
                    "{} {}/{} in {}",
                    r.verb, r.resource, r.subresource, r.namespace
                ),
                r.count,
            )
        })
        .collect()
}

#[test]
fn converged_databases_cause_no_writes() {
    run(async {
        let env = Env::start().await;
        create_license(&env).await;
        let before = env.provisioner_requests();
        let started = Instant::now();
        create(&env, &mssql("standalone", "2022-cu22", None)).await;
        create(&env, &mssql("ag", "2022-cu22", Some(3))).await;
        create(&env, &singlestore("cluster", "8.7.21", Some((2, 2)))).await;
        wait_phase::<MSSQLServer>(&env, "standalone", DatabasePhase::Ready).await;
        wait_phase::<MSSQLServer>(&env, "ag", DatabasePhase::Ready).await;
        wait_phase::<Singlestore>(&env, "cluster", DatabasePhase::Ready).await;
        eprintln!(
            "3 databases Ready after {:?}; provisioner requests so far: {} ({} writes)",
            started.elapsed(),
            env.provisioner_requests() - before,
            env.provisioner_writes()
        );

        // The Ready transition's Events are published right after its status write: wait for the
        // last of them (Provisioned, one per database) before measuring.
        let events: kube::Api<k8s_openapi::api::events::v1::Event> = env.api();
        testkit::eventually("three Provisioned events", WAIT, || async {
            let list = events.list(&Default::default()).await.unwrap();
            let provisioned = list
                .items
                .iter()
                .filter(|e| e.reason.as_deref() == Some("Provisioned"))
                .count();
            (provisioned == 3).then_some(())
        })
        .await;

        // The deliberate measurement window: nothing changes, so nothing may be written.
        let before_window = writes_by_key(&env);
        let writes = env.provisioner_writes();
        let requests = env.provisioner_requests();
        tokio::time::sleep(Duration::from_secs(10)).await;
        let written = env.provisioner_writes() - writes;
        eprintln!(
            "steady state: {written} writes and {} requests in 10s",
            env.provisioner_requests() - requests
        );
        let changed: Vec<String> = writes_by_key(&env)
            .into_iter()
            .filter(|(key, count)| before_window.get(key) != Some(count))
            .map(|(key, count)| {
                format!(
                    "{key}: {} -> {count}",
                    before_window.get(&key).copied().unwrap_or(0)
                )
            })
            .collect();
        assert_eq!(
            written, 0,
            "writes by the provisioner in steady state: {changed:#?}"
        );
        env.stop().await;
    });
}
