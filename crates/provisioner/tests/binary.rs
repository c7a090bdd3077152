//! Smoke test of the built `provisioner` binary against kube-sim: it provisions a database,
//! serves the documented metrics, turns ready, and on SIGTERM exits 0 and releases its Lease.

mod common;

use std::process::Stdio;

use api::{DatabasePhase, MSSQLServer};
use common::*;
use k8s_openapi::api::coordination::v1::Lease;
use kube::Api;
use testkit::{SimOptions, TestCluster};

use testkit::fixtures::{free_port, http_get};

#[test]
fn binary_serves_metrics_and_releases_the_lease_on_sigterm() {
    run(async {
        let cluster = TestCluster::start(SimOptions::default()).await.unwrap();
        cluster.namespace(NS).await.unwrap();
        let addr = format!("127.0.0.1:{}", free_port());
        let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_provisioner"))
            .arg("run")
            .arg("--kubeconfig")
            .arg(cluster.sim.kubeconfig_path())
            .args([
                "--metrics-addr",
                &addr,
                "--identity",
                "smoke",
                "--leader-election-namespace",
                "default",
                "--max-concurrent-reconciles",
                "2",
            ])
            .env("HEALTH_CHECK", "pod-readiness")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("the provisioner binary starts");

        testkit::eventually("/readyz 200", WAIT, || async {
            http_get(&addr, "/readyz")
                .await
                .filter(|(s, _)| *s == 200)
                .map(|_| ())
        })
        .await;
        let leases: Api<Lease> = Api::namespaced(cluster.client.clone(), "default");
        testkit::eventually("the Lease held by smoke", WAIT, || async {
            let lease = leases.get_opt("kubedb-provisioner").await.ok()??;
            (lease.spec?.holder_identity.as_deref() == Some("smoke")).then_some(())
        })
        .await;

        // It provisions: an issuer and a standalone database reach Ready.
        let issuer: kube::api::DynamicObject = serde_json::from_value(serde_json::json!({
            "apiVersion": "cert-manager.io/v1", "kind": "Issuer",
            "metadata": {"name": ISSUER, "namespace": NS}, "spec": {"selfSigned": {}},
        }))
        .unwrap();
        Api::<kube::api::DynamicObject>::namespaced_with(
            cluster.client.clone(),
            NS,
            &issuer_resource(),
        )
        .create(&Default::default(), &issuer)
        .await
        .unwrap();
        let dbs: Api<MSSQLServer> = Api::namespaced(cluster.client.clone(), NS);
        dbs.create(&Default::default(), &mssql("ms", "2022-cu22", None))
            .await
            .unwrap();
        testkit::wait_for_object(&dbs, "ms", "Ready", WAIT, |db: &MSSQLServer| {
            db.status.as_ref().and_then(|s| s.phase) == Some(DatabasePhase::Ready)
        })
        .await;

        let (status, metrics) = http_get(&addr, "/metrics").await.expect("/metrics answers");
        assert_eq!(status, 200);
        for series in [
            "kubedb_provisioner_leader 1",
            "kubedb_provisioner_reconciles_total{kind=\"mssqlserver\",result=\"success\"}",
            "kubedb_provisioner_reconcile_duration_seconds_bucket{kind=\"mssqlserver\"",
            "kubedb_provisioner_databases{kind=\"mssqlserver\",phase=\"Ready\"} 1",
            "kubedb_provisioner_api_writes_total{resource=\"statefulsets\",verb=\"apply\"}",
            "kubedb_provisioner_health_checks_total{kind=\"mssqlserver\",mode=\"pod-readiness\"",
            "kubedb_provisioner_reconciles_waiting 0",
        ] {
            assert!(
                metrics.contains(series),
                "{series} missing from:\n{metrics}"
            );
        }
        assert_eq!(http_get(&addr, "/healthz").await.map(|(s, _)| s), Some(200));

        testkit::fixtures::sigterm_exits_and_releases_lease(
            &mut child,
            &leases,
            "kubedb-provisioner",
        )
        .await;
        cluster.shutdown().await;
    });
}
