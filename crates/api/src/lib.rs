//! KubeDB-compatible API types for `MSSQLServer` and `Singlestore`, shared by the provisioner and
//! the ops-manager.
//!
//! - [`mssql`], [`singlestore`]: the database kinds (`kubedb.com/v1alpha2`).
//! - [`ops`]: the ops-request kinds (`ops.kubedb.com/v1alpha1`).
//! - [`catalog`]: the Version kinds (`catalog.kubedb.com/v1alpha1`).
//! - [`common`]: shared spec/status types and the duration parser.
//! - [`conditions`]: the condition type with KubeDB's set semantics and typed constants.
//! - [`phase`]: the database phase calculator.
//! - [`constraints`]: update-constraint evaluation.
//! - [`names`]: derived names, labels, ports, paths and field managers.
//! - [`kind`]: [`DbKind`], the two database kinds and the names each goes by.
//! - [`crds`]: the generated CRDs and their YAML.
//! - [`fixtures`]: the canonical catalog.

#![warn(missing_docs)]

pub mod catalog;
pub mod common;
pub mod conditions;
pub mod constraints;
pub mod crds;
pub mod fixtures;
pub mod kind;
pub mod mssql;
pub mod names;
pub mod ops;
pub mod phase;
pub mod singlestore;

pub use catalog::{MSSQLServerVersion, SinglestoreVersion, VersionObject};
pub use common::{DatabasePhase, DatabaseStatus};
pub use conditions::{Condition, ConditionStatus};
pub use kind::DbKind;
pub use mssql::MSSQLServer;
pub use ops::{MSSQLServerOpsRequest, OpsRequestPhase, OpsRequestStatus, SinglestoreOpsRequest};
pub use singlestore::Singlestore;
