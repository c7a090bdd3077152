//! Builders for the unit tests of the pure modules.

use api::ops::{ApplyPolicy, OpsRequestStatus, OpsRequestType};
use k8s_openapi::jiff::Timestamp;

use crate::model::*;

pub const MSSQL_OLD: &str = "mcr.microsoft.com/mssql/server:2022-CU22-ubuntu-22.04";
pub const MSSQL_NEW: &str = "mcr.microsoft.com/mssql/server:2025-RTM-ubuntu-22.04";

pub fn at(secs: i64) -> Timestamp {
    Timestamp::from_second(secs).unwrap()
}

pub fn request(name: &str, created_secs: i64) -> RequestView {
    RequestView {
        kind: DbKind::MSSQLServer,
        namespace: "demo".into(),
        name: name.into(),
        generation: 1,
        created: at(created_secs),
        deleting: false,
        has_finalizer: false,
        database: "db".into(),
        op_type: OpsRequestType::UpdateVersion,
        target_version: Some("2025-cu0".into()),
        apply: ApplyPolicy::IfReady,
        timeout: Ok(None),
        max_retries: 1,
        status: OpsRequestStatus::default(),
    }
}

pub fn db(version: &str, clustered: bool) -> DbView {
    DbView {
        name: "db".into(),
        version: version.into(),
        phase: Some(api::DatabasePhase::Ready),
        conditions: Vec::new(),
        clustered,
    }
}

fn mssql_images(name: &str, db: &str) -> VersionImages {
    VersionImages {
        name: name.into(),
        db: db.into(),
        coordinator: api::fixtures::MSSQL_COORDINATOR_IMAGE.into(),
        init: Some(api::fixtures::MSSQL_INIT_IMAGE.into()),
        exporter: Some(api::fixtures::MSSQL_EXPORTER_IMAGE.into()),
        standalone: None,
    }
}

pub fn mssql_target() -> Target {
    Target {
        current: mssql_images("2022-cu22", MSSQL_OLD),
        target: mssql_images("2025-cu0", MSSQL_NEW),
    }
}

pub fn sdb_target() -> Target {
    let images = |name: &str, tag: &str, boxed: &str| VersionImages {
        name: name.into(),
        db: format!("ghcr.io/appscode-images/singlestore-node:{tag}"),
        coordinator: api::fixtures::SINGLESTORE_COORDINATOR_IMAGE.into(),
        init: Some("ghcr.io/kubedb/singlestore-init:8.7.10-v1".into()),
        exporter: None,
        standalone: Some(format!("docker.io/singlestore/cluster-in-a-box:{boxed}")),
    };
    Target {
        current: images("8.7.21", "alma-8.7.21-f0b8de04d5", "old"),
        target: images("8.9.3", "alma-8.9.3-bfa36a984a", "new"),
    }
}

pub fn mssql_sts(name: &str, image: &str) -> StsView {
    StsView {
        name: name.into(),
        containers: vec![
            ContainerImage::new("mssql", image),
            ContainerImage::new("mssql-coordinator", api::fixtures::MSSQL_COORDINATOR_IMAGE),
        ],
        init_containers: vec![ContainerImage::new(
            "mssql-init",
            api::fixtures::MSSQL_INIT_IMAGE,
        )],
    }
}

pub fn sdb_sts(name: &str, image: &str) -> StsView {
    StsView {
        name: name.into(),
        containers: vec![ContainerImage::new("singlestore", image)],
        init_containers: vec![],
    }
}

/// A Ready pod of `sts` whose first container (`mssql` for `db*` sets, else `singlestore`) runs
/// `image`; MSSQL pods also carry the coordinator and init containers of [`mssql_sts`].
pub fn pod(name: &str, sts: &str, ordinal: i32, image: &str, role: Option<&str>) -> PodView {
    let mssql = !sts.starts_with("s-") && !sts.starts_with("s");
    let (containers, init) = if mssql {
        let s = mssql_sts(sts, image);
        (s.containers, s.init_containers)
    } else {
        (vec![ContainerImage::new("singlestore", image)], vec![])
    };
    let state = |c: &ContainerImage| ContainerState {
        name: c.name.clone(),
        image: c.image.clone(),
        ready: true,
        waiting_reason: None,
        waiting_message: None,
    };
    PodView {
        name: name.into(),
        uid: format!("{name}-uid"),
        sts: sts.into(),
        ordinal,
        role: role.map(str::to_owned),
        ready: true,
        terminating: false,
        statuses: containers.iter().map(state).collect(),
        init_statuses: init.iter().map(state).collect(),
        containers,
        init_containers: init,
    }
}
