//! Smoke test of the built `ops-manager` binary against kube-sim (with the in-process
//! provisioner): it runs an UpdateVersion, serves the documented metrics, turns ready, and on
//! SIGTERM exits 0 and releases its Lease.

mod common;

use std::process::Stdio;

use api::ops::{MSSQLServerOpsRequest, OpsRequestPhase};
use common::*;
use k8s_openapi::api::coordination::v1::Lease;
use kube::Api;
use serde_json::json;

use testkit::fixtures::{free_port, http_get};

#[test]
fn binary_updates_serves_metrics_and_releases_the_lease_on_sigterm() {
    run(async {
        let env = Env::start_provisioner_only(sim_options()).await;
        let addr = format!("127.0.0.1:{}", free_port());
        let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_ops-manager"))
            .arg("run")
            .arg("--kubeconfig")
            .arg(env.cluster.sim.kubeconfig_path())
            .args([
                "--metrics-addr",
                &addr,
                "--identity",
                "smoke",
                "--leader-election-namespace",
                "default",
            ])
            .args(["--namespace", NS, "--poll-interval", "200ms"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("the ops-manager binary starts");
        testkit::eventually("/readyz 200", WAIT, || async {
            http_get(&addr, "/readyz")
                .await
                .filter(|(s, _)| *s == 200)
                .map(|_| ())
        })
        .await;
        let leases: Api<Lease> = Api::namespaced(env.client.clone(), "default");
        testkit::eventually("the Lease held by smoke", WAIT, || async {
            let lease = leases.get_opt("kubedb-ops-manager").await.ok()??;
            (lease.spec?.holder_identity.as_deref() == Some("smoke")).then_some(())
        })
        .await;

        create(&env, &mssql("ms", "2022-cu22", None)).await;
        wait_mssql_ready(&env, "ms").await;
        msops(&env, "upd", "ms", "2025-cu0", json!({})).await;
        wait_phase::<MSSQLServerOpsRequest>(&env, "upd", OpsRequestPhase::Successful, WAIT).await;
        let agents: Vec<String> = env
            .cluster
            .sim
            .requests()
            .iter()
            .filter(|r| r.subresource == "eviction")
            .map(|r| r.user_agent.clone())
            .collect();
        assert!(
            agents.iter().all(|a| a.starts_with("ops-manager/")),
            "{agents:?}"
        );

        // The request's status is written before its metrics are recorded: wait for them.
        let expected = [
            "kubedb_ops_manager_leader 1",
            "kubedb_ops_manager_ops_requests_total{kind=\"MSSQLServer\",result=\"Successful\",type=\"UpdateVersion\"} 1",
            "kubedb_ops_manager_ops_request_duration_seconds_count{kind=\"MSSQLServer\",type=\"UpdateVersion\"} 1",
            "kubedb_ops_manager_ops_step_duration_seconds_bucket{kind=\"MSSQLServer\",step=\"pause\"",
            "kubedb_ops_manager_ops_requests_in_progress{kind=\"MSSQLServer\"} 0",
            "kubedb_ops_manager_ops_pods_restarted_total{kind=\"MSSQLServer\"} 1",
        ];
        testkit::eventually(
            "the documented series at their final values",
            WAIT,
            || async {
                let (status, metrics) = http_get(&addr, "/metrics").await?;
                (status == 200 && expected.iter().all(|s| metrics.contains(s))).then_some(())
            },
        )
        .await;
        assert_eq!(http_get(&addr, "/healthz").await.map(|(s, _)| s), Some(200));

        testkit::fixtures::sigterm_exits_and_releases_lease(
            &mut child,
            &leases,
            "kubedb-ops-manager",
        )
        .await;
        env.stop().await;
    });
}
