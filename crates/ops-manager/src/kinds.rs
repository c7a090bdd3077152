//! The two ops-request kinds, their database kinds and Version kinds, behind one trait so the
//! observe/act/controller code is written once.

use std::fmt::Debug;

use api::catalog::{MSSQLServerVersion, SinglestoreVersion};
use api::ops::{MSSQLServerOpsRequest, OpsRequestSpecExt, SinglestoreOpsRequest};
use api::{MSSQLServer, Singlestore, VersionObject};
use kube::core::{ClusterResourceScope, NamespaceResourceScope};
use kube::{Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::controller::FINALIZER;
use crate::model::{DbKind, DbView, RequestView, VersionImages};

/// An ops-request kind handled by the ops-manager.
pub trait OpsKind:
    Resource<DynamicType = (), Scope = NamespaceResourceScope>
    + Clone
    + Debug
    + Serialize
    + DeserializeOwned
    + Send
    + Sync
    + 'static
{
    /// The database kind.
    type Db: Resource<DynamicType = (), Scope = NamespaceResourceScope>
        + Clone
        + Debug
        + Serialize
        + DeserializeOwned
        + Send
        + Sync
        + 'static;
    /// The catalog Version kind.
    type Version: Resource<DynamicType = (), Scope = ClusterResourceScope>
        + VersionObject
        + Clone
        + Debug
        + DeserializeOwned
        + Send
        + Sync
        + 'static;
    /// Which kind.
    const KIND: DbKind;

    /// The request as the step machine sees it.
    fn view(&self) -> RequestView;
    /// `spec.databaseRef.name`.
    fn database(&self) -> &str;
    /// The database as the step machine sees it.
    fn db_view(db: &Self::Db) -> DbView;
    /// The images of a Version.
    fn images(version: &Self::Version) -> VersionImages;
}

fn request_view<K: Resource<DynamicType = ()>>(
    obj: &K,
    kind: DbKind,
    spec: &impl OpsRequestSpecExt,
    status: Option<&api::OpsRequestStatus>,
) -> RequestView {
    let meta = obj.meta();
    RequestView {
        kind,
        namespace: meta.namespace.clone().unwrap_or_default(),
        name: meta.name.clone().unwrap_or_default(),
        generation: meta.generation.unwrap_or(1),
        created: meta
            .creation_timestamp
            .as_ref()
            .map(|t| t.0)
            .unwrap_or_else(k8s_openapi::jiff::Timestamp::now),
        deleting: meta.deletion_timestamp.is_some(),
        has_finalizer: meta
            .finalizers
            .as_ref()
            .is_some_and(|f| f.iter().any(|f| f == FINALIZER)),
        database: spec.database_name().to_owned(),
        op_type: spec.op_type(),
        target_version: spec.target_version().map(str::to_owned),
        apply: spec.apply(),
        timeout: spec.timeout().map_err(|e| e.to_string()),
        max_retries: spec.max_retries().max(0),
        status: status.cloned().unwrap_or_default(),
    }
}

fn db_view(
    name: String,
    version: &str,
    status: Option<&api::DatabaseStatus>,
    clustered: bool,
) -> DbView {
    DbView {
        name,
        version: version.to_owned(),
        phase: status.and_then(|s| s.phase),
        conditions: status.map(|s| s.conditions().to_vec()).unwrap_or_default(),
        clustered,
    }
}

impl OpsKind for MSSQLServerOpsRequest {
    type Db = MSSQLServer;
    type Version = MSSQLServerVersion;
    const KIND: DbKind = DbKind::MSSQLServer;

    fn view(&self) -> RequestView {
        request_view(self, Self::KIND, &self.spec, self.status.as_ref())
    }
    fn database(&self) -> &str {
        self.spec.database_name()
    }
    fn db_view(db: &MSSQLServer) -> DbView {
        let clustered = db.spec.is_availability_group() || db.spec.is_distributed_ag();
        db_view(
            db.name_any(),
            &db.spec.version,
            db.status.as_ref(),
            clustered,
        )
    }
    fn images(v: &MSSQLServerVersion) -> VersionImages {
        VersionImages {
            name: v.name_any(),
            db: v.spec.db.image.clone(),
            coordinator: v.spec.coordinator.image.clone(),
            init: Some(v.spec.init_container.image.clone()),
            exporter: Some(v.spec.exporter.image.clone()),
            standalone: None,
        }
    }
}

impl OpsKind for SinglestoreOpsRequest {
    type Db = Singlestore;
    type Version = SinglestoreVersion;
    const KIND: DbKind = DbKind::Singlestore;

    fn view(&self) -> RequestView {
        request_view(self, Self::KIND, &self.spec, self.status.as_ref())
    }
    fn database(&self) -> &str {
        self.spec.database_name()
    }
    fn db_view(db: &Singlestore) -> DbView {
        db_view(
            db.name_any(),
            &db.spec.version,
            db.status.as_ref(),
            !db.spec.is_standalone(),
        )
    }
    fn images(v: &SinglestoreVersion) -> VersionImages {
        VersionImages {
            name: v.name_any(),
            db: v.spec.db.image.clone(),
            coordinator: v.spec.coordinator.image.clone(),
            init: v.spec.init_container.as_ref().map(|i| i.image.clone()),
            exporter: None,
            standalone: v.spec.standalone.as_ref().map(|i| i.image.clone()),
        }
    }
}
