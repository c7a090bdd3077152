//! `make demo`: an embedded cluster, both operators installed with helm, an MSSQL availability
//! group and a SingleStore cluster, and a version update of each, shown as it happens.
//!
//! `demo --keep` leaves the cluster running afterwards (until Ctrl-C) for exploring with kubectl.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use e2e::kubectl::apply_manifest;
use e2e::{Cluster, Helm, SimSettings, operators, view};
use kube::api::{Api, DynamicObject};
use kube::core::ApiResource;
use serde_json::Value;

const NS: &str = "demo";

struct Clock(Instant);

impl Clock {
    fn say(&self, what: impl AsRef<str>) {
        let t = self.0.elapsed().as_secs_f64();
        println!(
            "[{:>3}:{:04.1}] {}",
            (t / 60.0) as u64,
            t % 60.0,
            what.as_ref()
        );
    }
}

#[tokio::main]
async fn main() {
    let keep = std::env::args().skip(1).any(|a| a == "--keep");
    if let Err(err) = run(keep).await {
        eprintln!("demo failed: {err:#}");
        std::process::exit(1);
    }
}

async fn run(keep: bool) -> anyhow::Result<()> {
    let clock = Clock(Instant::now());
    let settings = SimSettings {
        pod_start_delay: "2s".to_owned(),
        ..SimSettings::default()
    };
    clock.say("starting kube-sim (pods take 2s to start; roles come from the db-agent in each AG and SingleStore pod)");
    let cluster = Cluster::start(&settings).await?;
    clock.say(format!("kube-sim ready at {}", cluster.url));
    let helm = Helm::new(&cluster.kubeconfig);

    clock.say(
        "helm install kubedb-crds, kubedb-catalog, provisioner, ops-manager (namespace kubedb)",
    );
    operators::install_all(&cluster, &helm).await?;
    clock.say("both operators are running");

    cluster.namespace(NS).await?;
    for manifest in [
        "issuer.yaml",
        "mssql-ag-cluster.yaml",
        "singlestore-license.yaml",
        "sample-sdb.yaml",
    ] {
        let out = apply_manifest(&cluster.kubeconfig, manifest).await?;
        clock.say(format!(
            "kubectl apply -f e2e/manifests/{manifest}: {}",
            out.trim()
        ));
    }
    let provisioned = Instant::now();
    follow(&cluster, &clock, Duration::from_secs(300), |objs| {
        ["mssql-ag-cluster", "sample-sdb"]
            .iter()
            .all(|db| phase_of(objs, db) == Some("Ready"))
    })
    .await
    .context("waiting for both databases to become Ready")?;
    let provision_time = provisioned.elapsed();
    clock.say(format!(
        "both databases are Ready after {:.1}s",
        provision_time.as_secs_f64()
    ));

    for manifest in ["msops-update-ag-cluster.yaml", "sdbops-update.yaml"] {
        let out = apply_manifest(&cluster.kubeconfig, manifest).await?;
        clock.say(format!(
            "kubectl apply -f e2e/manifests/{manifest}: {}",
            out.trim()
        ));
    }
    let updating = Instant::now();
    follow(&cluster, &clock, Duration::from_secs(600), |objs| {
        ["msops-update-ag-cluster", "sdb-update-patch"]
            .iter()
            .all(|r| matches!(phase_of(objs, r), Some("Successful" | "Failed" | "Skipped")))
    })
    .await
    .context("waiting for both ops requests to finish")?;
    let update_time = updating.elapsed();

    println!();
    println!("Summary");
    println!(
        "  provisioning (both databases Ready): {:.1}s",
        provision_time.as_secs_f64()
    );
    let objs = objects(&cluster).await;
    for (request, db) in [
        ("msops-update-ag-cluster", "mssql-ag-cluster"),
        ("sdb-update-patch", "sample-sdb"),
    ] {
        let duration = request_duration(&objs, request)
            .map(|d| format!("{d:.1}s"))
            .unwrap_or_else(|| "-".into());
        println!(
            "  {request}: {} in {duration}; {db} is now at version {} ({})",
            phase_of(&objs, request).unwrap_or("-"),
            field(&objs, db, "/spec/version").unwrap_or("-"),
            phase_of(&objs, db).unwrap_or("-"),
        );
    }
    println!(
        "  both updates finished {:.1}s after they were requested",
        update_time.as_secs_f64()
    );
    let failed: Vec<_> = ["msops-update-ag-cluster", "sdb-update-patch"]
        .into_iter()
        .filter(|r| phase_of(&objs, r) != Some("Successful"))
        .collect();

    println!();
    println!("Explore with kubectl:");
    println!("  export KUBECONFIG={}", cluster.kubeconfig.display());
    println!("  kubectl get ms,sdb,msops,sdbops -n {NS}");
    println!("  kubectl describe msops msops-update-ag-cluster -n {NS}");
    println!("  kubectl get pods -n {NS} -L kubedb.com/role");
    if keep {
        println!();
        println!("The cluster keeps running (--keep). Press Ctrl-C to stop it.");
        tokio::signal::ctrl_c().await?;
    } else {
        println!("(run `make demo KEEP=1` to keep the cluster running after the demo)");
    }
    cluster.shutdown().await?;
    if !failed.is_empty() {
        bail!("ops request(s) did not succeed: {}", failed.join(", "));
    }
    Ok(())
}

/// Every database and ops request in the namespace, by name.
async fn objects(cluster: &Cluster) -> Vec<(String, Value)> {
    let mut out = Vec::new();
    for ar in [
        ApiResource::erase::<api::mssql::MSSQLServer>(&()),
        ApiResource::erase::<api::singlestore::Singlestore>(&()),
        ApiResource::erase::<api::ops::MSSQLServerOpsRequest>(&()),
        ApiResource::erase::<api::ops::SinglestoreOpsRequest>(&()),
    ] {
        let api: Api<DynamicObject> = Api::namespaced_with(cluster.client.clone(), NS, &ar);
        if let Ok(list) = api.list(&Default::default()).await {
            for obj in list.items {
                let name = obj.metadata.name.clone().unwrap_or_default();
                out.push((name, serde_json::to_value(obj).unwrap_or_default()));
            }
        }
    }
    out
}

fn field<'a>(objs: &'a [(String, Value)], name: &str, pointer: &str) -> Option<&'a str> {
    objs.iter()
        .find(|(n, _)| n == name)?
        .1
        .pointer(pointer)?
        .as_str()
}

fn phase_of<'a>(objs: &'a [(String, Value)], name: &str) -> Option<&'a str> {
    field(objs, name, "/status/phase")
}

/// Seconds from the request's first condition to its last one.
fn request_duration(objs: &[(String, Value)], name: &str) -> Option<f64> {
    let conditions = objs
        .iter()
        .find(|(n, _)| n == name)?
        .1
        .pointer("/status/conditions")?
        .as_array()?;
    let times: Vec<jiff::Timestamp> = conditions
        .iter()
        .filter_map(|c| c.pointer("/lastTransitionTime")?.as_str()?.parse().ok())
        .collect();
    let span = *times.iter().max()? - *times.iter().min()?;
    span.total(jiff::Unit::Second).ok()
}

/// Prints the lines of the cluster picture that changed, until `done` holds or `timeout` passes.
async fn follow(
    cluster: &Cluster,
    clock: &Clock,
    timeout: Duration,
    done: impl Fn(&[(String, Value)]) -> bool,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + timeout;
    let mut shown = BTreeSet::new();
    loop {
        let lines = view::snapshot(&cluster.client, NS).await;
        for line in &lines {
            if !shown.contains(line) {
                clock.say(line);
            }
        }
        shown = lines.into_iter().collect();
        if done(&objects(cluster).await) {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("gave up after {timeout:?}");
        }
        // A refresh interval for the display, not a stand-in for a condition: `done` decides.
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}
