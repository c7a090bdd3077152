//! The operators and the agent run from their OCI images (target/images, built by `make images`
//! or, in `make test`, from the debug binaries): the three images are unpacked with umoci,
//! kube-sim runs each operator pod and each availability-group agent as the image's entrypoint
//! through the image's own dynamic loader and libraries, the unchanged charts are installed with
//! helm, the image's provisioner and agents bring an MSSQL availability group to Ready, and the
//! image's ops-manager updates its version.
//!
//! Skipped, with the reason printed, when no images were built (unless `E2E_REQUIRE_IMAGES` is
//! set, as `make test` does, which turns that into a failure) and against a real cluster
//! (`E2E_KUBECONFIG`), where every scenario runs the images anyway.

use std::time::Duration;

use api::mssql::MSSQLServer;
use api::ops::MSSQLServerOpsRequest;
use e2e::cluster::{AGENT_IMAGE, OPS_MANAGER_IMAGE, PROVISIONER_IMAGE, TempDir};
use e2e::images::{self, Unpacked};
use e2e::kubectl::apply_manifest;
use e2e::operators::{self, OPS_MANAGER, PROVISIONER};
use e2e::{Cluster, Helm, SimSettings, eventually, wait_for_object};
use kube::api::Api;

const NS: &str = "demo";
const AGENT: &str = "db-agent";
const MSSQL: &str = "mssql-ag-cluster";
const OPS_REQUEST: &str = "msops-update-ag-cluster";
const TIMEOUT: Duration = Duration::from_secs(120);

fn phase<S: serde::Serialize>(status: &Option<S>) -> Option<String> {
    let v = serde_json::to_value(status.as_ref()?).ok()?;
    v.get("phase")?.as_str().map(str::to_owned)
}

/// Why the scenario cannot run here, if it cannot.
fn skip_reason() -> Option<String> {
    if std::env::var_os("E2E_KUBECONFIG").is_some() {
        return Some(
            "runs on kube-sim only; against E2E_KUBECONFIG every scenario runs the images".into(),
        );
    }
    let dir = images::images_dir();
    if images::layout(&dir).is_some() {
        return None;
    }
    let reason = format!(
        "no images in {}: build them with `make images` (release) or \
         `PROFILE=debug BUILD=0 hack/build-images.sh` (after `cargo build --workspace --bins`)",
        dir.display()
    );
    assert!(
        std::env::var_os("E2E_REQUIRE_IMAGES").is_none(),
        "E2E_REQUIRE_IMAGES is set but there are {reason}"
    );
    Some(reason)
}

#[tokio::test]
async fn operators_run_from_their_images() {
    if let Some(reason) = skip_reason() {
        eprintln!("skipped operators_run_from_their_images: {reason}");
        return;
    }
    let layout = images::layout(&images::images_dir()).unwrap();
    let workdir = TempDir::new("e2e-images").unwrap();

    // Unpack the images; each container's command is the image's entrypoint run by the image's
    // loader.
    let mut run_images = Vec::new();
    let mut binaries = Vec::new();
    for (bin, image) in [
        (PROVISIONER, PROVISIONER_IMAGE),
        (OPS_MANAGER, OPS_MANAGER_IMAGE),
        (AGENT, AGENT_IMAGE),
    ] {
        let unpacked = Unpacked::unpack(&layout, bin, &workdir.path().join(bin))
            .await
            .unwrap();
        let entrypoint = format!("/usr/local/bin/{bin}");
        assert_eq!(unpacked.args(), [entrypoint.as_str(), "run"], "{bin}");
        run_images.push((format!("{image}:*"), unpacked.command(&entrypoint).unwrap()));
        binaries.push((
            bin,
            unpacked.rootfs.clone(),
            unpacked.rootfs.join(&entrypoint[1..]),
        ));
    }
    let cluster = Cluster::start(&SimSettings {
        run_images,
        ..SimSettings::default()
    })
    .await
    .unwrap();
    let helm = Helm::new(&cluster.kubeconfig);
    operators::install_all(&cluster, &helm).await.unwrap();

    // Each operator pod is one process running the image's binary, with only the image's
    // shared objects mapped (the loader, libc, libm, libgcc_s from the unpacked rootfs).
    for (bin, rootfs, binary) in binaries.iter().filter(|(bin, ..)| *bin != AGENT) {
        only_image_objects(bin, rootfs, binary, 1).await;
    }

    // The image's provisioner provisions a database, the image's ops-manager updates it.
    cluster.namespace(NS).await.unwrap();
    apply_manifest(&cluster.kubeconfig, "issuer.yaml")
        .await
        .unwrap();
    apply_manifest(&cluster.kubeconfig, "mssql-ag-cluster.yaml")
        .await
        .unwrap();
    let dbs: Api<MSSQLServer> = Api::namespaced(cluster.client.clone(), NS);
    wait_for_object(&dbs, MSSQL, "phase Ready", TIMEOUT, |d| {
        phase(&d.status).as_deref() == Some("Ready")
    })
    .await;
    // The AG of three was formed by three agents running from the agent's image.
    let (bin, rootfs, binary) = binaries
        .iter()
        .find(|(bin, ..)| *bin == AGENT)
        .expect("unpacked above");
    only_image_objects(bin, rootfs, binary, 3).await;
    apply_manifest(&cluster.kubeconfig, "msops-update-ag-cluster.yaml")
        .await
        .unwrap();
    let requests: Api<MSSQLServerOpsRequest> = Api::namespaced(cluster.client.clone(), NS);
    let request = wait_for_object(&requests, OPS_REQUEST, "a final phase", TIMEOUT, |r| {
        matches!(
            phase(&r.status).as_deref(),
            Some("Successful" | "Failed" | "Skipped")
        )
    })
    .await;
    assert_eq!(
        phase(&request.status).as_deref(),
        Some("Successful"),
        "{:#?}",
        request.status
    );
    let db = wait_for_object(&dbs, MSSQL, "phase Ready after the update", TIMEOUT, |d| {
        phase(&d.status).as_deref() == Some("Ready")
    })
    .await;
    assert_eq!(db.spec.version, "2025-cu0");
    cluster.shutdown().await.unwrap();
}

/// Waits for `count` processes of `binary` and checks that each maps libc, and no shared object
/// from outside the image's root filesystem.
async fn only_image_objects(
    bin: &str,
    rootfs: &std::path::Path,
    binary: &std::path::Path,
    count: usize,
) {
    let found = eventually(
        &format!("{count} {bin} process(es) running from the image"),
        Duration::from_secs(30),
        || async {
            let found = images::processes_with_arg(binary);
            (found.len() == count).then_some(found)
        },
    )
    .await;
    for (pid, objects) in found {
        assert!(
            objects.iter().any(|o| o.ends_with("libc.so.6")),
            "{bin} (pid {pid}) maps no libc: {objects:?}"
        );
        let foreign: Vec<_> = objects.iter().filter(|o| !o.starts_with(rootfs)).collect();
        assert!(
            foreign.is_empty(),
            "{bin} (pid {pid}) maps shared objects from outside its image: {foreign:?}"
        );
    }
}
