//! Idempotency: a converged database causes no writes.

mod common;

use std::time::{Duration, Instant};

use api::{DatabasePhase, MSSQLServer, Singlestore};
use common::*;

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

        // The deliberate measurement window: nothing changes, so nothing may be written.
        let writes = env.provisioner_writes();
        let requests = env.provisioner_requests();
        tokio::time::sleep(Duration::from_secs(10)).await;
        let written = env.provisioner_writes() - writes;
        eprintln!(
            "steady state: {written} writes and {} requests in 10s",
            env.provisioner_requests() - requests
        );
        let rows: Vec<_> = env
            .cluster
            .sim
            .requests()
            .into_iter()
            .filter(|r| {
                r.user_agent.starts_with("provisioner/")
                    && r.verb != "get"
                    && r.verb != "list"
                    && r.verb != "watch"
            })
            .collect();
        assert_eq!(
            written, 0,
            "writes by the provisioner in steady state; totals: {rows:#?}"
        );
        env.stop().await;
    });
}
