//! The canonical catalog of reference §4.4 (installer HEAD images) as typed objects, for the
//! catalog chart, tests and the demo.

use kube::api::ObjectMeta;

use crate::catalog::{
    ArchiverAddon, CourierSpec, ImageRef, MSSQLArchiver, MSSQLServerVersion,
    MSSQLServerVersionSpec, SinglestoreVersion, SinglestoreVersionSpec, UpdateConstraints,
    VersionSecurityContext,
};

/// Repository of the in-pod agent's image (`db-agent`).
pub const AGENT_IMAGE_REPOSITORY: &str = "ghcr.io/kubedb-rs/db-agent";
/// The coordinator image of our catalog's MSSQLServerVersions: the in-pod agent of this release
/// (KubeDB's catalog names its closed-source `mssql-coordinator` here instead).
pub const MSSQL_COORDINATOR_IMAGE: &str =
    concat!("ghcr.io/kubedb-rs/db-agent:", env!("CARGO_PKG_VERSION"));
/// MSSQL exporter image.
pub const MSSQL_EXPORTER_IMAGE: &str = "ghcr.io/kubedb/mssql-exporter:1.4.0";
/// `mssql-init` image.
pub const MSSQL_INIT_IMAGE: &str = "ghcr.io/kubedb/mssql-init:v2026.1.19";
/// The coordinator image of our catalog's SinglestoreVersions: the same in-pod agent (KubeDB's
/// catalog names its closed-source `singlestore-coordinator` here instead).
pub const SINGLESTORE_COORDINATOR_IMAGE: &str = MSSQL_COORDINATOR_IMAGE;

fn meta(name: &str) -> ObjectMeta {
    ObjectMeta {
        name: Some(name.to_owned()),
        ..ObjectMeta::default()
    }
}

fn allow(expr: &str) -> Option<UpdateConstraints> {
    Some(UpdateConstraints {
        allowlist: Some(vec![expr.to_owned()]),
        denylist: None,
    })
}

/// The six `MSSQLServerVersion` objects (2022-cu12 … 2025-cu0).
pub fn mssql_versions() -> Vec<MSSQLServerVersion> {
    let entries = [
        (
            "2022-cu12",
            "2022-CU12-ubuntu-22.04",
            ">= 2022-cu12, < 2025-cu1",
        ),
        (
            "2022-cu14",
            "2022-CU14-ubuntu-22.04",
            ">= 2022-cu14, < 2025-cu1",
        ),
        (
            "2022-cu16",
            "2022-CU16-ubuntu-22.04",
            ">= 2022-cu16, < 2025-cu1",
        ),
        (
            "2022-cu19",
            "2022-CU19-ubuntu-22.04",
            ">= 2022-cu19, < 2025-cu1",
        ),
        (
            "2022-cu22",
            "2022-CU22-ubuntu-22.04",
            ">= 2022-cu22, < 2025-cu1",
        ),
        (
            "2025-cu0",
            "2025-RTM-ubuntu-22.04",
            ">= 2025-cu0, < 2025-cu1",
        ),
    ];
    entries
        .into_iter()
        .map(|(name, tag, constraint)| MSSQLServerVersion {
            metadata: meta(name),
            spec: MSSQLServerVersionSpec {
                version: name.to_owned(),
                db: ImageRef::new(format!("mcr.microsoft.com/mssql/server:{tag}")),
                coordinator: ImageRef::new(MSSQL_COORDINATOR_IMAGE),
                exporter: ImageRef::new(MSSQL_EXPORTER_IMAGE),
                init_container: ImageRef::new(MSSQL_INIT_IMAGE),
                security_context: Some(VersionSecurityContext {
                    run_as_user: Some(10001),
                    run_as_group: None,
                }),
                update_constraints: allow(constraint),
                deprecated: None,
                end_of_life: None,
                archiver: Some(MSSQLArchiver {
                    walg: Some(ImageRef::new(
                        "ghcr.io/kubedb/mssqlserver-archiver:v0.21.0-rc.0",
                    )),
                    addon: Some(ArchiverAddon {
                        name: "mssqlserver-addon".to_owned(),
                        tasks: None,
                    }),
                }),
                courier: Some(CourierSpec {
                    cli: Some(ImageRef::new(
                        "ghcr.io/kubedb/kubedb-migrator-mssqlserver:v0.7.0-rc.0",
                    )),
                    status_reporter: Some(ImageRef::new(
                        "ghcr.io/kubedb/kubedb-courier:v0.7.0-rc.0",
                    )),
                }),
                git_syncer: Some(ImageRef::new("registry.k8s.io/git-sync/git-sync:v4.7.0")),
                ui: None,
            },
        })
        .collect()
}

/// The six `SinglestoreVersion` objects (8.1.32 … 8.9.3).
pub fn singlestore_versions() -> Vec<SinglestoreVersion> {
    const BOX_8_7: &str =
        "docker.io/singlestore/cluster-in-a-box:alma-8.7.10-95e2357384-4.1.0-1.17.14";
    let entries = [
        (
            "8.1.32",
            "alma-8.1.32-e3d3cde6da",
            "docker.io/singlestore/cluster-in-a-box:alma-8.1.32-e3d3cde6da-4.0.16-1.17.6",
            "ghcr.io/kubedb/singlestore-init:8.1-v2",
            true,
            ">= 8.1.32, <= 8.9.3",
        ),
        (
            "8.5.7",
            "alma-8.5.7-bf633c1a54",
            "docker.io/singlestore/cluster-in-a-box:alma-8.5.7-bf633c1a54-4.0.17-1.17.8",
            "ghcr.io/kubedb/singlestore-init:8.5-v2",
            true,
            ">= 8.5.7, <= 8.9.3",
        ),
        (
            "8.5.30",
            "alma-8.5.30-4f46ab16a5",
            "docker.io/singlestore/cluster-in-a-box:alma-8.5.22-fe61f40cd1-4.1.0-1.17.11",
            "ghcr.io/kubedb/singlestore-init:8.5-v2",
            true,
            ">= 8.5.30, <= 8.9.3",
        ),
        (
            "8.7.10",
            "alma-8.7.10-95e2357384",
            BOX_8_7,
            "ghcr.io/kubedb/singlestore-init:8.7.10-v1",
            false,
            ">= 8.7.10, <= 8.9.3",
        ),
        (
            "8.7.21",
            "alma-8.7.21-f0b8de04d5",
            BOX_8_7,
            "ghcr.io/kubedb/singlestore-init:8.7.10-v1",
            false,
            ">= 8.7.21, <= 8.9.3",
        ),
        (
            "8.9.3",
            "alma-8.9.3-bfa36a984a",
            BOX_8_7,
            "ghcr.io/kubedb/singlestore-init:8.7.10-v1",
            false,
            "8.9.3",
        ),
    ];
    entries
        .into_iter()
        .map(
            |(name, tag, standalone, init, eol, constraint)| SinglestoreVersion {
                metadata: meta(name),
                spec: SinglestoreVersionSpec {
                    version: name.to_owned(),
                    db: ImageRef::new(format!("ghcr.io/appscode-images/singlestore-node:{tag}")),
                    coordinator: ImageRef::new(SINGLESTORE_COORDINATOR_IMAGE),
                    standalone: Some(ImageRef::new(standalone)),
                    init_container: Some(ImageRef::new(init)),
                    security_context: Some(VersionSecurityContext {
                        run_as_user: Some(999),
                        run_as_group: Some(998),
                    }),
                    update_constraints: allow(constraint),
                    deprecated: None,
                    end_of_life: eol.then_some(true),
                    stash: None,
                    git_syncer: Some(ImageRef::new("registry.k8s.io/git-sync/git-sync:v4.4.2")),
                    ui: None,
                },
            },
        )
        .collect()
}
