//! [`DbKind`]: the two database kinds, and the names each one goes by in the API, shared by the
//! provisioner and the ops-manager.

use crate::names;

/// The two database kinds.
///
/// Only what is about the kind itself lives here: its spelling in the API, its ops-request and
/// Version kinds, its offshoots' `app.kubernetes.io/name`, its kubectl short name and the
/// provisioner's metric label. What one operator alone says about a kind (the ops-manager's step
/// vocabulary, for example) stays in that operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DbKind {
    /// `MSSQLServer` / `MSSQLServerOpsRequest` / `MSSQLServerVersion`.
    MSSQLServer,
    /// `Singlestore` / `SinglestoreOpsRequest` / `SinglestoreVersion`.
    Singlestore,
}

impl DbKind {
    /// Both kinds, in order.
    pub const ALL: [DbKind; 2] = [DbKind::MSSQLServer, DbKind::Singlestore];

    /// The kind as spelled in the API (`MSSQLServer`, `Singlestore`).
    ///
    /// Also the `kind` label value of the ops-manager's metrics (docs/metrics.md).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::MSSQLServer => "MSSQLServer",
            Self::Singlestore => "Singlestore",
        }
    }

    /// The ops-request kind (`MSSQLServerOpsRequest`, `SinglestoreOpsRequest`).
    pub fn ops_kind(self) -> &'static str {
        match self {
            Self::MSSQLServer => "MSSQLServerOpsRequest",
            Self::Singlestore => "SinglestoreOpsRequest",
        }
    }

    /// The kind of the catalog object naming the images (`MSSQLServerVersion`,
    /// `SinglestoreVersion`).
    pub fn version_kind(self) -> &'static str {
        match self {
            Self::MSSQLServer => "MSSQLServerVersion",
            Self::Singlestore => "SinglestoreVersion",
        }
    }

    /// `app.kubernetes.io/name` of the kind's offshoots ([`names::MSSQL_RESOURCE_NAME`],
    /// [`names::SINGLESTORE_RESOURCE_NAME`]).
    pub fn resource_name(self) -> &'static str {
        match self {
            Self::MSSQLServer => names::MSSQL_RESOURCE_NAME,
            Self::Singlestore => names::SINGLESTORE_RESOURCE_NAME,
        }
    }

    /// Short name used with kubectl in messages (`ms`, `sdb`).
    pub fn short_name(self) -> &'static str {
        match self {
            Self::MSSQLServer => "ms",
            Self::Singlestore => "sdb",
        }
    }

    /// Lower-case `kind` label value of the provisioner's metrics (`mssqlserver`, `singlestore`;
    /// docs/metrics.md). The ops-manager labels its metrics with [`DbKind::as_str`] instead.
    pub fn metric_label(self) -> &'static str {
        match self {
            Self::MSSQLServer => "mssqlserver",
            Self::Singlestore => "singlestore",
        }
    }
}

#[cfg(test)]
mod tests {
    use kube::{CustomResourceExt, Resource};

    use super::*;
    use crate::catalog::{MSSQLServerVersion, SinglestoreVersion};
    use crate::ops::{MSSQLServerOpsRequest, SinglestoreOpsRequest};
    use crate::{MSSQLServer, Singlestore};

    #[test]
    fn names_of_each_kind() {
        // kind, ops kind, version kind, resource name, short name, metric label
        let table = [
            (
                DbKind::MSSQLServer,
                "MSSQLServer",
                "MSSQLServerOpsRequest",
                "MSSQLServerVersion",
                "mssqlservers.kubedb.com",
                "ms",
                "mssqlserver",
            ),
            (
                DbKind::Singlestore,
                "Singlestore",
                "SinglestoreOpsRequest",
                "SinglestoreVersion",
                "singlestores.kubedb.com",
                "sdb",
                "singlestore",
            ),
        ];
        assert_eq!(
            DbKind::ALL.to_vec(),
            table.iter().map(|row| row.0).collect::<Vec<_>>()
        );
        for (kind, api, ops, version, resource, short, label) in table {
            assert_eq!(kind.as_str(), api, "{kind:?}");
            assert_eq!(kind.ops_kind(), ops, "{kind:?}");
            assert_eq!(kind.version_kind(), version, "{kind:?}");
            assert_eq!(kind.resource_name(), resource, "{kind:?}");
            assert_eq!(kind.short_name(), short, "{kind:?}");
            assert_eq!(kind.metric_label(), label, "{kind:?}");
        }
    }

    /// The spellings agree with the CRD types they name.
    #[test]
    fn names_agree_with_the_crds() {
        fn short(
            crd: &k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition,
        ) -> String {
            crd.spec.names.short_names.as_ref().unwrap()[0].clone()
        }
        let ms = DbKind::MSSQLServer;
        assert_eq!(ms.as_str(), MSSQLServer::kind(&()));
        assert_eq!(ms.ops_kind(), MSSQLServerOpsRequest::kind(&()));
        assert_eq!(ms.version_kind(), MSSQLServerVersion::kind(&()));
        assert_eq!(ms.short_name(), short(&MSSQLServer::crd()));
        assert_eq!(ms.metric_label(), MSSQLServer::kind(&()).to_lowercase());
        let sdb = DbKind::Singlestore;
        assert_eq!(sdb.as_str(), Singlestore::kind(&()));
        assert_eq!(sdb.ops_kind(), SinglestoreOpsRequest::kind(&()));
        assert_eq!(sdb.version_kind(), SinglestoreVersion::kind(&()));
        assert_eq!(sdb.short_name(), short(&Singlestore::crd()));
        assert_eq!(sdb.metric_label(), Singlestore::kind(&()).to_lowercase());
    }
}
